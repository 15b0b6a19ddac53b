
# Copyright (c) ato_response authors
#
# 002_dump_restore.pl -- pg_dump and restore keep every event: rows in the
# monthly partitions ato.create_event_partitions() made, rows in the default
# partitions (extension configuration tables, dumped through
# pg_extension_config_dump), the id sequence, and an incident's evidence (which
# still verifies).

use strict;
use warnings;

use FindBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = $ENV{TESTDIR} // "$FindBin::RealBin/../..";

my $geo = PostgreSQL::Test::Utils::tempdir;
system_or_bail($^X, "$root/test/geo/write_test_mmdb.pl", $geo);

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf',
	    "fsync = off\n"
	  . "ato_response.locate_special_addresses = on\n"    # the fixtures map documentation ranges
	  . "ato_response.geoip_database = '$geo/city.mmdb'\n"
	  . "ato_response.asn_database = '$geo/asn.mmdb'\n");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql(
	'src', q{
	CREATE EXTENSION ato_response;
	SELECT ato.create_event_partitions(now() - interval '2 months', now() + interval '1 month');
});

# Events in partitioned months, far in the past and far in the future
# (default partitions), through every ingest path.
$node->safe_psql(
	'src', q{
	SET ato_response.max_future_skew = -1;  -- rows dated 2100, for the default partition
	INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, user_agent, source, metadata)
	VALUES ('alice', '192.0.2.1',     'success',   now(),                      'Mozilla/5.0', 'app', '{"mfa": true}'),
	       ('alice', '2001:db8:1::5', 'failure',   now() - interval '1 month', 'curl/8.0',    'app', NULL),
	       ('bob',   '198.51.100.7',  'challenge', now() - interval '40 days', NULL,          'idp', '{"k": [1, 2]}'),
	       ('bob',   '10.0.0.1',      'success',   '2001-02-03 04:05:06+00',   NULL,          NULL,  NULL),
	       ('carol', NULL,            'failure',   '1999-12-31 23:59:59+00',   NULL,          'import', NULL),
	       ('carol', '2001:db8:2::1', 'success',   '2100-01-01 00:00:00+00',   NULL,          NULL,  NULL);
	INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, country_code)
	VALUES ('dave', '192.0.2.9', 'success', now(), 'ZZ'),
	       ('dave', '192.0.2.9', 'success', '2002-06-01 00:00:00+00', 'ZZ');
	SELECT ato.record_login('erin', '198.51.100.8', 'SUCCESS');
	SELECT ato.record_login('erin', '192.0.2.2', 'failure', '2003-03-03 03:03:03+00', 'UA', 'sso', '{"x": 1}');
	SELECT ato.record_event('admin', 'user.email_changed', now(), '192.0.2.1', 'user', 'alice');
	SELECT ato.record_event('admin', 'user.mfa.factor.activate', now() - interval '1 month', '2001:db8:1::9', 'factor', 'f1');
	SELECT ato.record_event('admin', 'user.password_changed', '2001-01-01 00:00:00+00', '198.51.100.1', 'user', 'bob', NULL, 'import', '{"old": true}');
	SELECT ato.record_event('system', 'user.session.revoke', '2100-06-01 00:00:00+00');
	COPY ato.login_events (user_id, ip_address, outcome, occurred_at) FROM STDIN;
frank	203.0.113.5	success	2004-04-04 04:04:04+00
frank	203.0.113.200	failure	2004-04-05 04:04:04+00
\.
});

# Events stored while GeoIP was off (or its file missing), and a user agent
# stored under a larger ato_response.max_user_agent_length: a dump must bring
# them back as they were, not as the restoring server would store them today.
$node->safe_psql(
	'src', q{
	SET ato_response.geoip_database = '';
	SET ato_response.asn_database = '';
	SELECT ato.record_login('outage', '192.0.2.1', 'success');
	SELECT ato.record_login('outage', '198.51.100.7', 'failure', '2001-05-05 05:05:05+00');
	RESET ato_response.geoip_database;
	RESET ato_response.asn_database;
	SET ato_response.max_user_agent_length = 4096;
	SELECT ato.record_login('long-ua', '192.0.2.1', 'success', now(), repeat('Mozilla/5.0 ', 200));
});

my $per_partition = q{
	SELECT 'login' AS tab, tableoid::regclass::text AS part, count(*), md5(string_agg(t::text, ';' ORDER BY id))
	  FROM ato.login_events t GROUP BY tableoid
	UNION ALL
	SELECT 'audit', tableoid::regclass::text, count(*), md5(string_agg(t::text, ';' ORDER BY id))
	  FROM ato.audit_events t GROUP BY tableoid
	ORDER BY tab, part
};
my $totals = q{
	SELECT (SELECT count(*) FROM ato.login_events), (SELECT count(*) FROM ato.audit_events),
	       (SELECT count(*) FROM ato.login_events_default), (SELECT count(*) FROM ato.audit_events_default),
	       (SELECT count(*) FROM ato.event_partitions WHERE NOT is_default)
};

my $src_rows = $node->safe_psql('src', $per_partition);
my $src_totals = $node->safe_psql('src', $totals);
is($src_totals, '15|4|8|2|8',
	'source: 15 logins, 4 audit events, 8+2 in the default partitions, 8 monthly partitions');
like($src_rows, qr/login\|ato\.login_events_default\|8\|/, 'source: default login partition used');
like($src_rows, qr/login\|ato\.login_events_p\d{4}_\d\d\|/, 'source: monthly login partitions used');
is( $node->safe_psql('src',
		"SELECT country_code, asn FROM ato.login_events WHERE user_id = 'alice' ORDER BY occurred_at"),
	"DE|64502\nGB|64500",
	'source: rows enriched');
is( $node->safe_psql('src',
		"SELECT count(*), count(country_code), count(asn) FROM ato.login_events WHERE user_id = 'outage'"),
	'2|0|0', 'source: rows stored while GeoIP was off are unenriched');
is( $node->safe_psql('src',
		"SELECT length(user_agent) FROM ato.login_events WHERE user_id = 'long-ua'"),
	'2400', 'source: long user agent stored whole under the larger limit');

my $all_rows = q{
	SELECT 'login', id, t::text FROM ato.login_events t
	UNION ALL
	SELECT 'audit', id, t::text FROM ato.audit_events t
	ORDER BY 1, 2
};
my %src_row = map { (split /\|/, $_, 3)[1] => $_ } split /\n/, $node->safe_psql('src', $all_rows);

my $indexes = q{
	SELECT c.relname, pg_get_indexdef(c.oid), coalesce(i.inhparent::regclass::text, '-')
	  FROM pg_class c
	  JOIN pg_index x ON x.indexrelid = c.oid
	  LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
	 WHERE c.relnamespace = 'ato'::regnamespace
	 ORDER BY 1
};
my $src_indexes = $node->safe_psql('src', $indexes);
is(scalar(() = $src_indexes =~ /\n/g) + 1, 78,
	'source: 2 indexes on each of the 5 login partitions (BRIN, imported event ids), 3 on each of the 5 audit partitions (and by actor), 53 on the other tables');

# The per-account summaries, folded up to a minute ago.
$node->safe_psql('src', q{SELECT ato.refresh_summaries('2010-01-01')});
my $summaries = q{
	SELECT user_id, country_code, first_success_at
	  FROM ato.account_countries ORDER BY user_id, country_code
};
my $src_summaries = $node->safe_psql('src', $summaries);
like($src_summaries, qr/^frank\|JP\|2004-04-04 04:04:04\+00/m, 'source: summaries hold the countries of successful logins');

# The response's state: a registered table of the application, an incident
# with its revocation time and flags, a blocked network; and an event an
# import rejected.
$node->safe_psql(
	'src', q{
	CREATE TABLE app_sessions (user_id text, ended_at timestamptz);
	INSERT INTO app_sessions VALUES ('alice', NULL), ('bob', NULL);
	SELECT ato.register_revocation_target('app_sessions', 'user_id', 'end', state_column => 'ended_at');
	SET client_min_messages = warning;
	SELECT ato.revoke_incident(ARRAY['alice'], 'dump test', suspend => true);
	SELECT ato.block_network('192.0.2.0/24', 'dump test');
	SELECT * FROM ato.import_events('okta', '[1]');
	SELECT ato.preserve_evidence(id, since => '2000-01-01') FROM ato.incidents;
});
my $response = q{
	SELECT (SELECT string_agg(target::text || ':' || action, ',') FROM ato.revocation_targets),
	       (SELECT string_agg(reason || ':' || status || ':' || user_ids::text || ':' || opened_at, ',') FROM ato.incidents),
	       (SELECT string_agg(user_id || ':' || revoked_at, ',') FROM ato.account_revocations),
	       (SELECT string_agg(user_id || ':' || suspended, ',') FROM ato.account_flags),
	       (SELECT string_agg(network::text, ',') FROM ato.blocked_networks),
	       (SELECT count(*) FROM ato.response_log),
	       (SELECT string_agg(position || ':' || batch || ':' || user_ids::text, ',') FROM ato.revocation_outbox),
	       (SELECT last_position FROM ato.revocation_outbox_state),
	       (SELECT string_agg(id || ':' || provider || ':' || reason || ':' || event::text, ',') FROM ato.import_rejections),
	       (SELECT string_agg(v.ok || ':' || v.rows || ':' || encode(m.hash, 'hex'), ',')
	          FROM ato.evidence_manifests m, ato.verify_evidence(m.incident_id) v)
};
my $src_response = $node->safe_psql('src', $response);
like($src_response, qr/^app_sessions:end\|dump test:contained:\{alice\}:.*\|alice:.*\|alice:true\|192\.0\.2\.0\/24\|3\|1:1:\{alice\}\|1\|1:okta:the event is not a JSON object:1\|true:[1-9][0-9]*:[0-9a-f]{64}$/,
	'source: a registered table, an incident, its revocation and flags, a blocked network, the outbox, a rejected event, the evidence');

my $src_last = $node->safe_psql('src',
	'SELECT greatest((SELECT max(id) FROM ato.login_events), (SELECT max(id) FROM ato.audit_events))');

my $tmp = PostgreSQL::Test::Utils::tempdir;

# Run a client program against the node: (success, stdout, stderr).
sub run_client
{
	my @cmd = @_;
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	my ($stdout, $stderr) = ('', '');
	my $ok = IPC::Run::run(\@cmd, '<', \'', '>', \$stdout, '2>', \$stderr);
	return ($ok, $stdout, $stderr);
}

# The error and warning lines of a client's stderr, at most 3 and a count.
sub first_errors
{
	my ($stderr) = @_;
	my @lines = grep { /ERROR|WARNING|error:|warning:/ } split /\n/, $stderr;
	return '' unless @lines;
	my $more = @lines > 3 ? "\n... " . (@lines - 3) . ' more' : '';
	return join("\n", @lines[ 0 .. ($#lines < 2 ? $#lines : 2) ]) . $more;
}

# Long values (user agents) cut in the middle for diagnostics.
sub shorten
{
	my ($text) = @_;
	$text =~ s/(.{60})(.{80,})(.{60})/$1 . '...[' . length($2) . ' chars]...' . $3/e;
	return $text;
}

# Show which rows differ between the source and a restored database.
sub diag_row_differences
{
	my ($db) = @_;
	my %dst_row = map { (split /\|/, $_, 3)[1] => $_ } split /\n/, $node->safe_psql($db, $all_rows);
	for my $id (sort { $a <=> $b } keys %src_row)
	{
		my $was = $src_row{$id};
		my $now = $dst_row{$id} // '(missing)';
		diag("id $id\n  dumped:   " . shorten($was) . "\n  restored: " . shorten($now))
		  if $was ne $now;
	}
	for my $id (sort { $a <=> $b } grep { !exists $src_row{$_} } keys %dst_row)
	{
		diag("id $id only in the restored database: " . shorten($dst_row{$id}));
	}
	return;
}

# Check one restored database against the source.
sub check_restored
{
	my ($db, $how) = @_;
	is($node->safe_psql($db, $totals), $src_totals,
		"$how: the same row counts and partitions");
	is($node->safe_psql($db, $per_partition), $src_rows,
		"$how: every partition holds the same rows (count and checksum)")
	  or diag_row_differences($db);
	is( $node->safe_psql($db,
			"SELECT count(*), count(country_code), count(asn) FROM ato.login_events WHERE user_id = 'outage'"),
		'2|0|0',
		"$how: rows stored without GeoIP are restored without GeoIP (not re-enriched)");
	is( $node->safe_psql($db,
			"SELECT length(user_agent) FROM ato.login_events WHERE user_id = 'long-ua'"),
		'2400',
		"$how: the long user agent is restored whole (not cut again)");
	is($node->safe_psql($db, $indexes), $src_indexes,
		"$how: the same indexes on the same partitions");
	is( $node->safe_psql(
			$db,
			q{SELECT count(*) FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
			   WHERE e.extname = 'ato_response' AND d.deptype = 'e'
			     AND d.objid IN ('ato.login_events_default'::regclass, 'ato.audit_events_default'::regclass,
			                     'ato.event_id_seq'::regclass)}),
		'3',
		"$how: default partitions and sequence still belong to the extension");
	is($node->safe_psql($db, $summaries), $src_summaries,
		"$how: the per-account summaries are restored");
	is( $node->safe_psql($db, 'SELECT summarised_until FROM ato.summary_watermark'),
		'-infinity', "$how: the summaries' watermark starts again from the beginning");
	$node->safe_psql($db, q{SELECT ato.refresh_summaries('2010-01-01')});
	is($node->safe_psql($db, $summaries), $src_summaries,
		"$how: folding the restored store in again changes no summary");
	is($node->safe_psql($db, $response), $src_response,
		"$how: the response's tables are restored: targets, incidents, revocations, flags, blocked networks, the outbox and its position, the evidence (still verifying)");
	is( $node->safe_psql(
			$db, q{
			SET client_min_messages = warning;
			SELECT ato.revoke_incident(ARRAY['bob'], 'after restore') IS NOT NULL;
			SELECT string_agg(user_id, ',' ORDER BY user_id) FROM app_sessions WHERE ended_at IS NOT NULL;
			SELECT ato.register_revocation_target('app_sessions', 'user_id', 'delete');}),
		"t\nalice,bob\n1",
		"$how: a new incident marks the restored registered table, which can be registered again");
	my $next = $node->safe_psql($db,
		q{SELECT ato.record_login('after-restore', '192.0.2.1', 'success')});
	cmp_ok($next, '>', $src_last, "$how: new ids continue after the restored ones");
	is( $node->safe_psql($db,
			"SELECT country_code, tableoid::regclass FROM ato.login_events WHERE id = $next"),
		'GB|ato.login_events_p' . $node->safe_psql($db, q{SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')}),
		"$how: new events are enriched and land in their monthly partition");
	is($node->safe_psql($db, q{SELECT ato.create_event_partitions('2001-01-01', '2001-03-01')}), '6',
		"$how: create_event_partitions() still works on the restored tables");
	is( $node->safe_psql(
			$db,
			q{SELECT count(*) FROM ato.login_events_default WHERE occurred_at >= '2001-01-01' AND occurred_at < '2001-04-01';
			  SELECT count(*) FROM ato.login_events_p2001_02;
			  SELECT count(*) FROM ato.audit_events_p2001_01}),
		"0\n1\n1",
		"$how: create_event_partitions() moved restored rows out of the default partitions");
	return;
}

# Custom format, pg_restore.
my $dumpfile = "$tmp/src.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dumpfile, '-d', 'src' ], 'pg_dump -Fc');
$node->safe_psql('postgres', 'CREATE DATABASE dst_custom');
# Not --exit-on-error: a failed step is reported, and the data checks below
# still show what made it.
my ($ok, $stdout, $stderr) = run_client('pg_restore', '-d', 'dst_custom', $dumpfile);
ok($ok, 'pg_restore exits with success');
is(first_errors($stderr), '', 'pg_restore: no errors or warnings');
check_restored('dst_custom', 'pg_restore');

# Plain format, psql.
my $sqlfile = "$tmp/src.sql";
$node->command_ok([ 'pg_dump', '-f', $sqlfile, '-d', 'src' ], 'pg_dump (plain)');
$node->safe_psql('postgres', 'CREATE DATABASE dst_plain');
my ($ret, $out, $err) = run_client('psql', '-X', '-q', '-d', 'dst_plain', '-f', $sqlfile);
ok($ret, 'psql -f dump.sql exits with success');
is(first_errors($err), '', 'psql -f dump.sql: no errors or warnings');
check_restored('dst_plain', 'psql -f');

# Impossible travel with the city database's coordinates (not country
# centres): London, then Tokyo an hour later, about 9,560 km.
$node->safe_psql('postgres', 'CREATE DATABASE travel');
$node->safe_psql(
	'travel', q{
	CREATE EXTENSION ato_response;
	SELECT ato.record_login('jet', '192.0.2.5', 'success', '2024-06-01 10:00+00');
	SELECT ato.record_login('jet', '203.0.113.5', 'success', '2024-06-01 11:00+00');
});
is( $node->safe_psql(
		'travel',
		q{SELECT from_country, to_country, round(distance_km / 10) * 10, approximate
		    FROM ato.impossible_travel('2024-06-01 09:00+00')}),
	'GB|JP|9560|f',
	'impossible_travel uses the city database coordinates');

$node->stop;
done_testing();
