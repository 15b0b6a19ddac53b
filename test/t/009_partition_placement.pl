
# Copyright (c) ato_response authors
#
# 009_partition_placement.pl -- a fresh install gets its monthly partitions
# from the detection worker alone: 90 days of history loaded (COPY, and
# INSERT ... SELECT) before any month exists wait in the default partitions,
# and the worker moves them into their months, and creates the month of
# now() and those ahead, while an application keeps storing logins; nothing
# is lost or stored twice (count and sum of ids), every row ends in the
# partition of its month, and no write of the application fails; and the
# worker alone folds the history into the summaries, exactly.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('placement');
$node->init;
$node->append_conf('postgresql.conf',
	    "fsync = off\n"
	  . "shared_preload_libraries = 'ato_response'\n"
	  . "ato_response.databases = 'postgres'\n"
	  . "ato_response.detection_interval = '2s'\n");
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION ato_response');

# The application, from the start: two clients storing 2500 logins of now()
# each, one a transaction, into the default partition until the month of
# now() exists and into that month then.
my $script = $node->basedir . '/login.sql';
open(my $fh, '>', $script) or die "could not write $script: $!";
print $fh "INSERT INTO ato.login_events (user_id, ip_address, outcome) VALUES ('app-' || :client_id, '8.8.8.8', 'success');\n";
close $fh;
my ($bench_out, $bench_err) = ('', '');
my $bench = IPC::Run::start(
	[
		'pgbench', '-n', '-c', '2', '-t', '2500', '-f', $script,
		'-h', $node->host, '-p', $node->port, 'postgres'
	],
	'>', \$bench_out, '2>', \$bench_err);

# The history: a login a minute and an account change an hour, for the 90
# days up to now.  The logins go through COPY, from a file written here.
my $history = $node->basedir . '/history.csv';
$node->safe_psql(
	'postgres', qq{
	SET timezone = 'UTC';
	COPY (SELECT 'history-' || (i % 500), '81.2.69.' || (1 + i % 200),
	             CASE WHEN i % 7 = 0 THEN 'failure' ELSE 'success' END,
	             now() - interval '90 days' + i * interval '1 minute'
	        FROM generate_series(1, 90 * 24 * 60) i) TO '$history' WITH (FORMAT csv);
	COPY ato.login_events (user_id, ip_address, outcome, occurred_at) FROM '$history' WITH (FORMAT csv);
	INSERT INTO ato.audit_events (actor_id, event_type, occurred_at)
	SELECT 'history-' || (i % 500), 'user.password_changed', now() - interval '90 days' + i * interval '1 hour'
	  FROM generate_series(1, 90 * 24) i;
});
my $totals = q{
	SELECT (SELECT count(*) || ' ' || sum(id) FROM ato.login_events WHERE user_id LIKE 'history-%')
	       || ' / ' || (SELECT count(*) || ' ' || sum(id) FROM ato.audit_events)};
my $before = $node->safe_psql('postgres', $totals);
like($before, qr/^129600 \d+ \/ 2160 \d+$/, "90 days of history stored: $before");

# No one calls create_event_partitions: the worker empties the default
# partitions (a past month once its rows have stopped coming for a while).
ok( $node->poll_query_until(
		'postgres', q{
		SELECT NOT EXISTS (SELECT FROM ato.login_events_default)
		   AND NOT EXISTS (SELECT FROM ato.audit_events_default)}),
	'the worker moved every row of the default partitions into its month');

$bench->finish;
is($?, 0, 'pgbench: every write of the application succeeded')
  or diag("pgbench: $bench_out $bench_err");
is($node->safe_psql('postgres', "SELECT count(*) FROM ato.login_events WHERE user_id LIKE 'app-%'"),
	'5000', 'the application\'s 5000 logins are all stored');

is($node->safe_psql('postgres', $totals), $before, 'nothing lost, nothing duplicated: same counts and sums of ids');

# Every row is in the partition of its month, and the months cover the 90
# days and the three months ahead.
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM (SELECT tableoid, occurred_at FROM ato.login_events
		                      UNION ALL SELECT tableoid, occurred_at FROM ato.audit_events) e
		  JOIN ato.event_partitions p ON p.partition = e.tableoid
		 WHERE p.is_default OR NOT (e.occurred_at >= p.lower_bound AND e.occurred_at < p.upper_bound)}),
	'0', 'every event is in the monthly partition of its month');
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM generate_series(date_trunc('month', now() - interval '90 days', 'UTC'),
		                                     now() + interval '3 months', interval '1 month') m,
		                     unnest(ARRAY['login_events', 'audit_events']) t
		 WHERE NOT EXISTS (SELECT FROM ato.event_partitions p
		                    WHERE p.parent = t AND p.lower_bound = m)}),
	'0', 'each table has a partition for every month of the history and the three months ahead');
is($node->safe_psql('postgres', "SELECT count(*) FROM ato.worker_steps WHERE step = 'partitions' AND last_error IS NOT NULL"),
	'0', 'the partitions step of the worker never failed');

# Nor does anyone call refresh_summaries: the worker folds the 90 days in, a
# month per step, and the summaries are then exactly the store's first
# success per account and country.
ok( $node->poll_query_until(
		'postgres', q{
		SELECT summarised_until > now() - interval '5 minutes' AND late_days = 0 FROM ato.summary_status}),
	'the worker brought the summaries up to its last cycle');
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM (
		    (SELECT user_id, country_code, first_success_at FROM ato.account_countries
		     EXCEPT ALL
		     SELECT user_id, country_code, min(occurred_at) FROM ato.login_events, ato.summary_watermark
		      WHERE outcome = 'success' AND country_code IS NOT NULL AND occurred_at < summarised_until
		      GROUP BY 1, 2)
		    UNION ALL
		    (SELECT user_id, country_code, min(occurred_at) FROM ato.login_events, ato.summary_watermark
		      WHERE outcome = 'success' AND country_code IS NOT NULL AND occurred_at < summarised_until
		      GROUP BY 1, 2
		     EXCEPT ALL
		     SELECT user_id, country_code, first_success_at FROM ato.account_countries)) d}),
	'0', 'the summaries the worker folded are exact');
is($node->safe_psql('postgres', "SELECT count(*) > 0 FROM ato.account_countries WHERE user_id LIKE 'history-%'"),
	't', 'the history\'s accounts have their countries');
is($node->safe_psql('postgres', "SELECT count(*) FROM ato.worker_steps WHERE step = 'summaries' AND last_error IS NOT NULL"),
	'0', 'the summaries step of the worker never failed');

$node->stop;
done_testing();
