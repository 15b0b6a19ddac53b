
# Copyright (c) ato_response authors
#
# 003_incidents.pl -- revoke_incident as a listener and the background worker
# see it: every revoked account in exactly one notification, payloads under
# the limit; a large incident marked by the worker while the call returns at
# once; and the marking resumed, nothing done twice and nothing missed,
# after the worker is killed with SIGKILL (a crash of the server), after
# SIGTERM, and across a clean restart.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('incidents');
$node->init;
$node->append_conf('postgresql.conf',
	    "fsync = off\n"
	  . "shared_preload_libraries = 'ato_response'\n"
	  . "ato_response.databases = 'postgres'\n"
	  . "restart_after_crash = on\n");
$node->start;

# The application's sessions, with a log of every update of a row, so that
# a row marked twice shows; a statement-level pause makes batches slow
# enough to be interrupted.  The trigger functions set their own
# search_path: an incident runs a table's code with pg_catalog, pg_temp.
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION ato_response;
	CREATE TABLE sessions (id bigserial PRIMARY KEY, user_id text NOT NULL,
	                       ended_at timestamptz, end_reason text, incident_id uuid);
	CREATE INDEX ON sessions (user_id);
	CREATE TABLE session_updates (session_id bigint, incident_id uuid);
	CREATE FUNCTION log_update() RETURNS trigger LANGUAGE plpgsql SET search_path = public AS $$
	BEGIN
	    INSERT INTO session_updates VALUES (NEW.id, NEW.incident_id);
	    RETURN NEW;
	END $$;
	CREATE TRIGGER log_update AFTER UPDATE ON sessions FOR EACH ROW EXECUTE FUNCTION log_update();
	CREATE TABLE pause (seconds float8 NOT NULL);
	INSERT INTO pause VALUES (0);
	CREATE FUNCTION pause() RETURNS trigger LANGUAGE plpgsql SET search_path = public AS $$
	BEGIN
	    PERFORM pg_sleep(seconds) FROM pause;
	    RETURN NULL;
	END $$;
	CREATE TRIGGER pause BEFORE UPDATE ON sessions FOR EACH STATEMENT EXECUTE FUNCTION pause();
	SELECT ato.register_revocation_target('sessions', 'user_id', 'end', state_column => 'ended_at',
	           reason_column => 'end_reason', incident_column => 'incident_id');
});

# Accounts with long ids (so that a batch needs several notifications), in
# groups: group g's accounts are "g-<n>-" padded to 120 bytes.
sub add_accounts
{
	my ($group, $count) = @_;
	$node->safe_psql(
		'postgres', qq{
		INSERT INTO sessions (user_id)
		SELECT rpad('$group-' || a || '-', 120, 'x') FROM generate_series(1, $count) a, generate_series(1, 3);
	});
}

sub accounts_sql
{
	my ($group, $count) = @_;
	return "ARRAY(SELECT rpad('$group-' || a || '-', 120, 'x') FROM generate_series(1, $count) a)";
}

# Give a group accounts and open an incident over them past the background
# threshold, in batches of 20; returns its id.
sub start_background_incident
{
	my ($group, $count, $reason, $options) = @_;
	add_accounts($group, $count);
	$options = defined $options ? ", $options" : '';
	return $node->safe_psql(
		'postgres', qq{
		SET client_min_messages = warning;
		SET ato_response.background_threshold = 100;
		SET ato_response.revocation_batch_size = 20;
		SELECT ato.revoke_incident(@{[ accounts_sql($group, $count) ]}, '$reason'$options);
	});
}

sub wait_batches
{
	my ($incident, $batches) = @_;
	return $node->poll_query_until('postgres',
		"SELECT batches_done >= $batches FROM ato.incidents WHERE id = '$incident'");
}

sub wait_contained
{
	my ($incident) = @_;
	return $node->poll_query_until('postgres',
		"SELECT status = 'contained' FROM ato.incidents WHERE id = '$incident'");
}

# Every session of the group ended by the incident, each updated exactly once.
sub check_marks
{
	my ($group, $count, $incident, $what) = @_;
	my $result = $node->safe_psql(
		'postgres', qq{
		SELECT count(*), count(*) FILTER (WHERE s.incident_id = '$incident'),
		       count(*) FILTER (WHERE u.updates = 1)
		  FROM sessions s
		  LEFT JOIN (SELECT session_id, count(*) AS updates FROM session_updates GROUP BY 1) u
		         ON u.session_id = s.id
		 WHERE s.user_id LIKE '$group-%';
	});
	my $sessions = 3 * $count;
	is($result, "$sessions|$sessions|$sessions",
		"$what: all $sessions sessions ended by the incident, each updated exactly once");
}

# --- Notifications -------------------------------------------------------
# 1,200 accounts in batches of 500, inline: 3 batches, each split into
# several payloads; a listener in the same session receives them at commit.
add_accounts('n', 1200);
my ($out, $err) = ('', '');
$node->psql(
	'postgres', qq{
	LISTEN ato_revocations;
	SET client_min_messages = warning;
	SET ato_response.background_threshold = 100000;
	SELECT ato.revoke_incident(@{[ accounts_sql('n', 1200) ]}, 'notify test');
	SELECT 1;
},
	stdout => \$out,
	stderr => \$err);
my @payloads = $out =~ /Asynchronous notification "ato_revocations" with payload "(.*?)" received/g;
ok(@payloads > 3, 'the 3 batches needed ' . scalar(@payloads) . ' notifications');
ok(!(grep { length($_) >= 8000 } @payloads), 'every payload is under the 8000-byte limit');
my %seen;
my %batches;
for my $payload (@payloads)
{
	my ($batch) = $payload =~ /"batch":(\d+)/;
	$batches{$batch} = 1;
	$seen{$_}++ for $payload =~ /"(n-\d+-x*)"/g;
}
is(scalar(keys %seen), 1200, 'every revoked account is in a notification');
ok(!(grep { $_ != 1 } values %seen), 'and in exactly one');
is(join(',', sort keys %batches), '1,2,3', 'notifications name batches 1 to 3');

# Nothing is sent for an incident that rolls back.
($out, $err) = ('', '');
$node->psql(
	'postgres', q{
	LISTEN ato_revocations;
	SET client_min_messages = warning;
	BEGIN;
	SELECT ato.revoke_incident(ARRAY['n-rolled-back'], 'rolled back') IS NOT NULL;
	ROLLBACK;
	SELECT 1;
},
	stdout => \$out,
	stderr => \$err);
unlike($out, qr/Asynchronous notification/, 'a rolled-back incident sends nothing');

# --- The background worker -------------------------------------------------
# 2,000 accounts in batches of 20 (100 batches), past the threshold: the call
# returns once the accounts are contained and the worker marks the rows.
$node->safe_psql('postgres', 'UPDATE pause SET seconds = 0.05');
my $incident = start_background_incident('k', 2000, 'worker test', 'suspend => true');
like($incident, qr/^[0-9a-f-]{36}$/, 'revoke_incident returned the incident id');
is( $node->safe_psql(
		'postgres', qq{
		SELECT count(*) FROM ato.account_revocations r JOIN ato.account_flags f USING (user_id)
		 WHERE r.incident_id = '$incident' AND f.suspended}),
	'2000',
	'on return, all 2,000 accounts are revoked and suspended');

# pg_stat_activity shows the worker at work; then kill it with SIGKILL in
# the middle of the run, which makes the postmaster restart every backend.
ok( $node->poll_query_until(
		'postgres', q{
		SELECT count(*) > 0 FROM pg_stat_activity
		 WHERE backend_type = 'ato_response incident worker' AND query LIKE 'marking batch % of 100 of incident %'}
	),
	'pg_stat_activity shows the worker marking');
wait_batches($incident, 10);
my $pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'ato_response incident worker'");
my $done_before = $node->safe_psql('postgres',
	"SELECT batches_done FROM ato.incidents WHERE id = '$incident'");
ok($pid =~ /^\d+$/ && $done_before < 100, "killing the worker (pid $pid) after $done_before of 100 batches");
kill 'KILL', $pid;
$node->poll_query_until('postgres', 'SELECT true')
  or die 'the server did not come back after the crash';
ok(wait_contained($incident), 'after the crash the worker resumed and finished the incident');
check_marks('k', 2000, $incident, 'after SIGKILL');
is( $node->safe_psql(
		'postgres', qq{
		SELECT accounts_done || '/' || accounts_total || ' ' || rows_touched
		  FROM ato.incident_progress WHERE incident_id = '$incident'}),
	'2000/2000 6000',
	'the progress view counts every account and row once');

# SIGTERM: the worker stops promptly and is started again.
$incident = start_background_incident('t', 1000, 'sigterm test');
wait_batches($incident, 5);
$node->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'ato_response incident worker'");
ok(wait_contained($incident), 'after SIGTERM the worker was started again and finished');
check_marks('t', 1000, $incident, 'after SIGTERM');

# A clean restart in the middle: the launcher resumes the incident.
$incident = start_background_incident('r', 1000, 'restart test');
wait_batches($incident, 5);
$node->restart;
ok(wait_contained($incident), 'after a restart the launcher resumed the incident');
check_marks('r', 1000, $incident, 'after a restart');
ok( $node->safe_psql(
		'postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ato_response launcher'") ==
	  1,
	'the launcher is running');

$node->stop;
done_testing();
