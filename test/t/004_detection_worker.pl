
# Copyright (c) ato_response authors
#
# 004_detection_worker.pl -- the always-on detection: the worker raises an
# alert within two intervals of a staged attack and announces it; a slow rule
# is cut off without stopping the others; a bad rule is reported on its row;
# a long import makes the refresh give up waiting for it, never the other way;
# SIGHUP applies new settings, SIGTERM stops the worker promptly (and the
# postmaster starts it again); SIGKILL in the middle of a run and a restart
# of the server lose no alert and duplicate none; ato.schedule_detection()
# against the real pg_cron; and a database dropped and created again gets a
# new worker while the old one is stopped for good.

use strict;
use warnings;

use IPC::Run;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('detection');
$node->init;
$node->append_conf('postgresql.conf',
	    "fsync = off\n"
	  . "shared_preload_libraries = 'pg_cron,ato_response'\n"
	  . "cron.database_name = 'postgres'\n"
	  . "cron.use_background_workers = on\n"
	  . "max_worker_processes = 16\n"
	  . "restart_after_crash = on\n"
	  . "ato_response.databases = 'postgres'\n"
	  . "ato_response.detection_interval = '2s'\n"
	  . "ato_response.rule_timeout = '3s'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ato_response; CREATE EXTENSION pg_cron;');

my $worker_pid_sql =
  "SELECT pid FROM pg_stat_activity WHERE backend_type = 'ato_response detection worker'";
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($worker_pid_sql) w"),
	'one detection worker runs in the configured database');

# A credential-stuffing run from one /24: 40 accounts, one success.
sub stage_stuffing
{
	my ($network) = @_;
	return $node->safe_psql(
		'postgres', qq{
		INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
		SELECT 'victim-' || a, ('$network.' || (1 + a % 20))::inet,
		       CASE WHEN a = 7 THEN 'success' ELSE 'failure' END, now()
		  FROM generate_series(1, 40) a;
		SELECT clock_timestamp();
	});
}

sub stuffing_alert_sql
{
	my ($network) = @_;
	return "SELECT count(*) = 1 FROM ato.alerts WHERE rule = 'credential_stuffing' AND finding = 'network $network.0/24'";
}

# --- an alert within two intervals, announced --------------------------------
my ($out, $err) = ('', '');
$node->psql(
	'postgres', q{
	LISTEN ato_alerts;
	INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
	SELECT 'victim-' || a, ('5.188.10.' || (1 + a % 20))::inet,
	       CASE WHEN a = 7 THEN 'success' ELSE 'failure' END, now()
	  FROM generate_series(1, 40) a;
	SELECT clock_timestamp() AS staged \gset
	DO $$BEGIN
	    FOR i IN 1 .. 100 LOOP
	        EXIT WHEN EXISTS (SELECT FROM ato.alerts WHERE finding = 'network 5.188.10.0/24');
	        PERFORM pg_sleep(0.1);
	    END LOOP;
	END$$;
	SELECT 'raised after ' || round(extract(epoch FROM first_seen_at - :'staged')::numeric, 1) || ' s'
	  FROM ato.alerts WHERE finding = 'network 5.188.10.0/24';
	SELECT 1;
},
	stdout => \$out,
	stderr => \$err);
my ($after) = $out =~ /raised after (-?[\d.]+) s/;
ok(defined $after && $after <= 4.0, "the stuffing alert was raised within two intervals (after $after s)");
like(
	$out,
	qr/Asynchronous notification "ato_alerts" with payload "\{"alert" : \d+, "rule" : "credential_stuffing", "finding" : "network 5\.188\.10\.0\/24", "accounts" : 0\}"/,
	'and announced on ato_alerts');

# --- the windows of a cycle ------------------------------------------------------
# The runs of a cycle all count as begun at its start, and the summaries
# reach the previous cycle's start less a minute: with a lookback of a
# minute, a rule's next window starts exactly at the watermark.
ok( $node->poll_query_until(
		'postgres', q{
		SELECT count(DISTINCT d.covered_until) = 1
		       AND min(d.covered_until) - s.summarised_until > interval '1 minute'
		       AND min(d.covered_until) - s.summarised_until <= interval '1 minute 10 seconds'
		  FROM ato.detection_rules d, ato.summary_status s
		 WHERE d.enabled AND d.last_error IS NULL
		 GROUP BY s.summarised_until}
	),
	"the rules of a cycle share its start, a minute and one cycle after the summaries' watermark");

# --- a bad rule is reported on its row, the others still run ------------------
$node->safe_psql('postgres',
	q{INSERT INTO ato.detection_rules (name, function, parameters) VALUES ('broken', 'no_such_detection', '{}')});
ok( $node->poll_query_until(
		'postgres', q{SELECT last_error = 'unknown detection "no_such_detection"' FROM ato.detection_rules WHERE name = 'broken'}
	),
	'the worker reports a bad rule on its row');

# --- a slow rule is cut off; the others still raise alerts --------------------
# A session holds ato.listed_networks, so listed_network_logins waits for it
# until ato_response.rule_timeout (3 s) cuts it off.
my $locker = IPC::Run::start(
	[
		'psql', '-X', '-d', $node->connstr('postgres'), '-c',
		'BEGIN; LOCK TABLE ato.listed_networks IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(12); COMMIT;'
	],
	'>', \my $locker_out, '2>', \my $locker_err);
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_locks WHERE relation = 'ato.listed_networks'::regclass AND mode = 'AccessExclusiveLock' AND granted"
);
stage_stuffing('5.188.11');
ok($node->poll_query_until('postgres', stuffing_alert_sql('5.188.11')),
	'while one rule is stuck, the others still raise alerts');
ok( $node->poll_query_until(
		'postgres',
		q{SELECT last_error LIKE '%statement timeout%' FROM ato.detection_rules WHERE name = 'listed_network_logins'}),
	'the stuck rule was cut off by ato_response.rule_timeout and says so on its row');
$locker->finish;

# --- a long import: the refresh gives up waiting, nothing else waits ---------
# An open transaction storing events keeps the worker's refresh waiting for
# it, for a quarter of the interval at most (lock_timeout): the refresh is
# skipped and logged, the rules still raise alerts from the event store, and
# other sessions go on storing events; once the import ends, the next
# refresh folds it in.
my $log_offset = -s $node->logfile;
my $importer = IPC::Run::start(
	[
		'psql', '-X', '-d', $node->connstr('postgres'), '-c',
		q{BEGIN; INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at) VALUES ('importer', '81.2.69.160', 'success', now() - interval '3 days'); SELECT pg_sleep(8); COMMIT;}
	],
	'>', \my $importer_out, '2>', \my $importer_err);
$node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
	   WHERE c.relname LIKE 'login_events%' AND l.mode = 'RowExclusiveLock' AND l.granted});
stage_stuffing('5.188.14');
ok($node->poll_query_until('postgres', stuffing_alert_sql('5.188.14')),
	'while a long import keeps the refresh waiting, other sessions store events and the rules raise alerts');
ok($node->wait_for_log(qr/ato\.refresh_summaries\(\) gave up waiting for the transactions storing login events/, $log_offset),
	'the refresh gave up waiting for the import and the worker logged why');
like( $node->safe_psql(
		'postgres', q{SELECT last_error || ' since ' || (failing_since IS NOT NULL) FROM ato.worker_steps WHERE step = 'summaries'}),
	qr/gave up waiting .* since true$/,
	'and recorded it in ato.worker_steps');
$importer->finish;
ok( $node->poll_query_until(
		'postgres',
		q{SELECT EXISTS (SELECT FROM ato.account_countries WHERE user_id = 'importer') AND late_from IS NULL FROM ato.summary_status}),
	'once the import has ended, a refresh folds it in');
ok( $node->poll_query_until(
		'postgres',
		q{SELECT array_agg(step ORDER BY step) = '{notices,partitions,retention,summaries}'
		     AND bool_and(last_error IS NULL AND failing_since IS NULL) FROM ato.worker_steps}),
	'every step of the worker (partitions, summaries, retention, notices) succeeds again, and says so');

# --- CPU priority: below the backends', also across sessions ---------------
my $pid = $node->safe_psql('postgres', $worker_pid_sql);
SKIP:
{
	skip 'no /proc (not Linux)', 2 unless -e "/proc/$pid/stat";
	# field 19 of /proc/PID/stat is the nice value (the command name, field
	# 2, is in parentheses and may hold spaces)
	my $stat = slurp_file("/proc/$pid/stat");
	$stat =~ s/^.*\) //;
	is((split(/ /, $stat))[16], '10', 'the worker runs at nice 10');
	skip 'no autogroup scheduling in this kernel', 1 unless -e "/proc/$pid/autogroup";
	like(slurp_file("/proc/$pid/autogroup"), qr/ nice 10$/,
		"and so does its session's autogroup, where a nice value counts only within the session");
}

# --- SIGHUP: new settings apply at once ---------------------------------------
$node->safe_psql('postgres', q{ALTER SYSTEM SET ato_response.detection_interval = '1h'; SELECT pg_reload_conf()});
sleep 5;    # the reload wakes the worker for one more cycle, then it sleeps long
my $last_run = $node->safe_psql('postgres',
	"SELECT last_run_at FROM ato.detection_rules WHERE name = 'credential_stuffing'");
sleep 5;    # two and a half of the old intervals
is( $node->safe_psql('postgres',
		"SELECT last_run_at FROM ato.detection_rules WHERE name = 'credential_stuffing'"),
	$last_run,
	'with an interval of 1 hour, no cycle runs');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET ato_response.detection_interval; ALTER SYSTEM SET ato_response.detection_interval = '2s'; SELECT pg_reload_conf()});
ok( $node->poll_query_until(
		'postgres',
		"SELECT last_run_at > '$last_run' FROM ato.detection_rules WHERE name = 'credential_stuffing'"),
	'SIGHUP wakes the worker, which runs at the new interval');
is($node->safe_psql('postgres', $worker_pid_sql), $pid, 'the same worker process, reconfigured');

# --- SIGTERM: the worker stops promptly and is started again -----------------
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid"),
	'SIGTERM stops the worker');
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) = 1 FROM ($worker_pid_sql) w WHERE pid <> $pid"),
	'the postmaster starts it again');

# --- SIGKILL in the middle of a run, then a restart: no alert lost or doubled --
my $alerts_sql = q{SELECT string_agg(rule || ': ' || finding, E'\n' ORDER BY rule, finding) FROM ato.alerts};
my $unique_sql = q{SELECT count(*) = count(DISTINCT (rule, finding)) FROM ato.alerts};
stage_stuffing('5.188.12');
ok($node->poll_query_until('postgres', stuffing_alert_sql('5.188.12')), 'an alert raised before the kill');
$locker = IPC::Run::start(
	[
		'psql', '-X', '-d', $node->connstr('postgres'), '-c',
		'BEGIN; LOCK TABLE ato.listed_networks IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(30); COMMIT;'
	],
	'>', \$locker_out, '2>', \$locker_err);
$node->safe_psql('postgres', q{ALTER SYSTEM SET ato_response.rule_timeout = '60s'; SELECT pg_reload_conf()});
stage_stuffing('5.188.13');
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity
		   WHERE backend_type = 'ato_response detection worker' AND query = 'running detection rule listed_network_logins'
		     AND wait_event_type = 'Lock'}),
	'the worker is in the middle of a run, waiting in a rule');
my $before = $node->safe_psql('postgres', $alerts_sql);
$pid = $node->safe_psql('postgres', $worker_pid_sql);
kill 'KILL', $pid;
$locker->finish;
$node->poll_query_until('postgres', 'SELECT true') or die 'the server did not come back';
$node->safe_psql('postgres', q{ALTER SYSTEM RESET ato_response.rule_timeout; SELECT pg_reload_conf()});
ok($node->poll_query_until('postgres', stuffing_alert_sql('5.188.13')),
	'after the crash, the attack staged before the kill has its alert');
my $after_crash = $node->safe_psql('postgres', $alerts_sql);
is( $after_crash =~ s/\n?credential_stuffing: network 5\.188\.13\.0\/24//r,
	$before =~ s/\n?credential_stuffing: network 5\.188\.13\.0\/24//r,
	'no alert was lost: the same alerts, and the staged one');
is($node->safe_psql('postgres', $unique_sql), 't', 'no alert is doubled');

$node->restart;
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($worker_pid_sql) w"),
	'after a restart the launcher starts the worker again');
my $cycle = $node->safe_psql('postgres', 'SELECT now()');
ok( $node->poll_query_until(
		'postgres', "SELECT last_run_at > '$cycle' FROM ato.detection_rules WHERE name = 'credential_stuffing'"),
	'and it runs the rules');
is($node->safe_psql('postgres', $alerts_sql), $after_crash, 'the alerts are the same after the restart');
is($node->safe_psql('postgres', $unique_sql), 't', 'still none doubled');

# --- pg_cron ------------------------------------------------------------------
# A rule the worker leaves alone (disabled) runs from a pg_cron job.
$node->safe_psql('postgres',
	q{INSERT INTO ato.detection_rules (name, function, enabled) VALUES ('cron stuffing', 'credential_stuffing', false)});
my $job = $node->safe_psql('postgres', q{SELECT ato.schedule_detection('cron stuffing', '* * * * *')});
like($job, qr/^\d+$/, 'schedule_detection returned the pg_cron job id');
is( $node->safe_psql('postgres', "SELECT jobname || ' | ' || schedule || ' | ' || command FROM cron.job WHERE jobid = $job"),
	q{ato_rule:cron stuffing | * * * * * | SELECT ato.run_detection('cron stuffing')},
	'the job runs the rule, its name quoted');
ok( $node->poll_query_until(
		'postgres',
		q{SELECT last_findings > 0 FROM ato.detection_rules WHERE name = 'cron stuffing'}),
	'pg_cron ran the rule within a minute');
is($node->safe_psql('postgres', q{SELECT ato.unschedule_detection('cron stuffing')}), 't', 'unschedule_detection removes the job');
is($node->safe_psql('postgres', q{SELECT count(*) FROM cron.job}), '0', 'and no job is left');
is($node->safe_psql('postgres', q{SELECT ato.unschedule_detection('cron stuffing')}), 'f', 'unscheduling again says there was none');

# --- a database dropped and created again --------------------------------------
# Its worker goes with it: the launcher stops the old one, which the
# postmaster would otherwise start again every ten seconds, to fail at
# connecting, for as long as the server runs; the new database gets its own.
my $in_churn =
  "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ato_response detection worker' AND datname = 'churn'";
$node->safe_psql('postgres', 'CREATE DATABASE churn');
$node->safe_psql('churn', 'CREATE EXTENSION ato_response');
$node->safe_psql('postgres',
	q{ALTER SYSTEM SET ato_response.databases = 'postgres, churn'; SELECT pg_reload_conf()});
ok($node->poll_query_until('postgres', "SELECT ($in_churn) = 1"), 'a database added to the list gets its worker');
my $old_churn = $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'churn'});
$node->safe_psql('postgres', 'DROP DATABASE churn WITH (FORCE)');
$node->safe_psql('postgres', 'CREATE DATABASE churn');
$node->safe_psql('churn', 'CREATE EXTENSION ato_response');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres', "SELECT ($in_churn) = 1"), 'the database created again gets a worker');
is($node->safe_psql('postgres', "SELECT count(*) FROM ($worker_pid_sql) w"), '2',
	'two workers run: the postgres database keeps its own');
my $churn_log_offset = -s $node->logfile;
ok($node->log_contains(qr/database $old_churn was dropped or no longer accepts connections; its detection worker is stopped/),
	'the launcher says it stopped the dropped database\'s worker');
sleep 12;    # longer than the ten seconds after which a failed worker is started again
unlike(
	substr(slurp_file($node->logfile), $churn_log_offset),
	qr/database $old_churn does not exist/,
	'nothing tries to connect to the dropped database any more');
is($node->safe_psql('postgres', "$in_churn"), '1', 'and one worker serves the new one');

# Workers started together each lower their autogroup's priority: the
# kernel takes one such change in a tenth of a second and refuses the next.
$node->restart;
ok($node->poll_query_until('postgres', "SELECT count(*) = 2 FROM ($worker_pid_sql) w"),
	'after a restart both workers run');
SKIP:
{
	my @pids = split(/\n/, $node->safe_psql('postgres', $worker_pid_sql));
	skip 'no autogroup scheduling in this kernel', 1 unless -e "/proc/$pids[0]/autogroup";
	# (a worker may still be taking its turn)
	my $lowered = 0;
	foreach my $try (1 .. 50)
	{
		$lowered = grep { slurp_file("/proc/$_/autogroup") =~ / nice 10$/ } @pids;
		last if $lowered == 2;
		usleep(100_000);
	}
	is($lowered, 2, 'and both of their autogroups are at nice 10');
}
$node->safe_psql('postgres', q{ALTER SYSTEM RESET ato_response.databases; SELECT pg_reload_conf()});

$node->stop;
done_testing();
