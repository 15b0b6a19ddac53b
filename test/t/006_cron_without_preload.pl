
# Copyright (c) ato_response authors
#
# 006_cron_without_preload.pl -- the scheduled path where the library is not
# in shared_preload_libraries (the README says it need not be): a pg_cron
# job's session has not loaded it when the job starts, and the rule must run
# all the same, with the settings' defaults.  (004 tests pg_cron with the
# library preloaded.)

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
$node->append_conf('postgresql.conf',
	    "fsync = off\n"
	  . "shared_preload_libraries = 'pg_cron'\n"
	  . "cron.database_name = 'postgres'\n"
	  . "cron.use_background_workers = on\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ato_response; CREATE EXTENSION pg_cron;');

# A fresh session that has not loaded the library runs the rules and the
# retention, as a job would.
is( $node->safe_psql(
		'postgres',
		"SET client_min_messages = warning; SELECT count(*) FROM ato.run_detections() WHERE error IS NOT NULL"),
	'0',
	'run_detections in a session without the library loaded');
is($node->safe_psql('postgres', 'SELECT ato.apply_retention()'),
	'0', 'apply_retention in a session without the library loaded');

# A credential-stuffing run for the job to find.
$node->safe_psql(
	'postgres', q{
	INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
	SELECT 'victim-' || a, ('198.18.0.' || (a % 200))::inet, CASE WHEN a = 1 THEN 'success' ELSE 'failure' END,
	       now() - interval '30 seconds'
	  FROM generate_series(1, 40) a;
	INSERT INTO ato.detection_rules (name, function, enabled, parameters)
	VALUES ('cron stuffing', 'credential_stuffing', false, '{"min_attempts": 20}');
});
my $job = $node->safe_psql('postgres', q{SELECT ato.schedule_detection('cron stuffing', '* * * * *')});
like($job, qr/^\d+$/, 'the rule is scheduled');

ok( $node->poll_query_until(
		'postgres', "SELECT count(*) > 0 FROM cron.job_run_details WHERE jobid = $job AND status IN ('succeeded', 'failed')"),
	'pg_cron ran the job');
is( $node->safe_psql(
		'postgres', "SELECT string_agg(status || ': ' || coalesce(return_message, ''), '; ') FROM cron.job_run_details WHERE jobid = $job"),
	'succeeded: SELECT 1',
	'the job succeeded without the library preloaded');
is( $node->safe_psql(
		'postgres', q{SELECT last_error IS NULL AND last_findings >= 1 FROM ato.detection_rules WHERE name = 'cron stuffing'}),
	't', 'and the rule found the attack');

$node->stop;
done_testing();
