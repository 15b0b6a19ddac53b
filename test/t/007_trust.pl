
# Copyright (c) ato_response authors
#
# 007_trust.pl -- the incident worker, which acts with the extension's
# rights and has no SET clause of its own, marks an application's table as
# that table's owner, restricted, and never resolves an operator planted in
# a writable schema: the attacks of sql/attacks.sql, on the worker's path.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('trust');
$node->init;
$node->append_conf('postgresql.conf',
	"fsync = off\nshared_preload_libraries = 'ato_response'\nato_response.databases = 'postgres'\n");
$node->start;

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION ato_response;
	CREATE ROLE tenant LOGIN;
	CREATE ROLE responder LOGIN;
	CREATE ROLE attacker LOGIN;
	GRANT USAGE ON SCHEMA ato TO responder;
	GRANT EXECUTE ON FUNCTION ato.revoke_incident(text[], text, boolean, boolean, boolean, boolean, timestamptz, uuid)
	    TO responder;
	-- the default before PostgreSQL 15
	GRANT CREATE ON SCHEMA public TO PUBLIC;
	CREATE SCHEMA app AUTHORIZATION tenant;
});

# The tenant's table: a varchar user column (so that varchar = text is the
# operator to plant), and a trigger that tries to make its owner superuser.
$node->safe_psql(
	'postgres', q{
	SET ROLE tenant;
	CREATE TABLE app.devices (user_id varchar(40) NOT NULL, active boolean NOT NULL DEFAULT true);
	INSERT INTO app.devices SELECT 'user-' || a FROM generate_series(1, 30) a;
	CREATE TABLE app.trigger_runs (acting_as name, restricted_error text);
	CREATE FUNCTION app.escalate() RETURNS trigger LANGUAGE plpgsql AS $$
	DECLARE
	    outcome text;
	BEGIN
	    BEGIN
	        EXECUTE 'ALTER ROLE tenant SUPERUSER';
	    EXCEPTION WHEN OTHERS THEN
	        outcome := SQLSTATE;
	    END;
	    INSERT INTO app.trigger_runs VALUES (current_user, outcome);
	    RETURN NEW;
	END $$;
	CREATE TRIGGER escalate BEFORE UPDATE ON app.devices FOR EACH ROW EXECUTE FUNCTION app.escalate();
});
$node->safe_psql('postgres',
	"SELECT ato.register_revocation_target('app.devices', 'user_id', 'deactivate', state_column => 'active')");

# The attacker's operator, which would make the attacker superuser if it
# ever ran with the worker's rights.
$node->safe_psql(
	'postgres', q{
	SET ROLE attacker;
	CREATE TABLE public.planted_calls (called_as name);
	GRANT INSERT ON public.planted_calls TO PUBLIC;
	CREATE FUNCTION public.planted_eq(varchar, text) RETURNS boolean LANGUAGE plpgsql AS $$
	BEGIN
	    INSERT INTO public.planted_calls VALUES (current_user);
	    BEGIN
	        EXECUTE 'ALTER ROLE attacker SUPERUSER';
	    EXCEPTION WHEN OTHERS THEN
	        NULL;
	    END;
	    RETURN $1::text = $2;
	END $$;
	CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = text, FUNCTION = public.planted_eq);
});

# The responder opens an incident above the background threshold: the
# incident worker marks its rows, five accounts a batch.
my $incident = $node->safe_psql(
	'postgres', q{
	SET ato_response.inline_marking_limit = 10;
	SET ato_response.revocation_batch_size = 5;
	SET search_path = public, pg_catalog;
	SET ROLE responder;
	SELECT ato.revoke_incident(ARRAY(SELECT 'user-' || a FROM generate_series(1, 30) a), 'drill: worker path');
});
like($incident, qr/^[0-9a-f-]{36}$/, 'the incident is opened');

ok( $node->poll_query_until(
		'postgres', "SELECT status = 'contained' FROM ato.incidents WHERE id = '$incident'"),
	'the worker marks every batch');

is($node->safe_psql('postgres', 'SELECT count(*) FROM app.devices WHERE active'),
	'0', 'every account\'s device is deactivated');
is($node->safe_psql('postgres', 'SELECT count(*) FROM public.planted_calls'),
	'0', 'the planted operator is never called');
is($node->safe_psql('postgres', "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolsuper"),
	'postgres', 'no role became superuser') or diag `whoami`;
is( $node->safe_psql(
		'postgres', 'SELECT acting_as || \' \' || count(*) FROM app.trigger_runs GROUP BY acting_as'),
	'tenant 30',
	'the table\'s trigger ran as its owner, once per row');
is($node->safe_psql('postgres', 'SELECT DISTINCT restricted_error FROM app.trigger_runs'),
	'42501', 'and could not escalate');

$node->stop;
done_testing();
