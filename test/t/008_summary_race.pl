
# Copyright (c) ato_response authors
#
# 008_summary_race.pl -- the per-account summaries stay exact while
# refreshes race transactions that store logins: pgbench sessions store a
# login reported as it happens (just under a minute old, which a writer
# takes as on time and reads nothing for) or a late one, and stay open up
# to two seconds, some rolling a savepoint back, while another session
# refreshes back to back.  Afterwards every summary equals its plain
# definition over the event store.  Without the refresh's wait for the
# writers that began before it, the on-time logins of open transactions are
# lost (dozens in a run); the test cannot prove their absence, only find it.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('summary_race');
$node->init;
$node->append_conf('postgresql.conf', "fsync = off\nmax_connections = 30\n");
$node->start;
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION ato_response;
	SELECT ato.create_event_partitions(now() - interval '4 days', now() + interval '1 day');
	INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
	SELECT 'u' || g, '81.2.69.160', 'success', now() - interval '3 days' FROM generate_series(1, 500) g;
	SELECT ato.refresh_summaries(now());
});

my $dir = PostgreSQL::Test::Utils::tempdir;
open(my $fh, '>', "$dir/writer.sql") or die;
print $fh q{\set a random(1, 500)
\set ip random(1, 3)
\set kind random(1, 10)
BEGIN;
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ('u' || :a, CASE :ip WHEN 1 THEN '81.2.69.160'::inet WHEN 2 THEN '8.8.8.8'::inet ELSE '10.0.0.1'::inet END,
        'success', now() - interval '59.5 seconds');
SAVEPOINT s;
\if :kind = 1
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ('u' || :a, '8.8.8.8', 'success', now() - random() * interval '2 days');
\elif :kind = 2
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ('u' || :a, '81.2.69.160', 'success', now() - interval '50 seconds');
ROLLBACK TO SAVEPOINT s;
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ('u' || :a, '10.0.0.2', 'success', now() - interval '59 seconds');
\endif
SELECT pg_sleep(random() * 2);
COMMIT;
};
close($fh);
open($fh, '>', "$dir/refresher.sql") or die;
print $fh "SELECT ato.refresh_summaries(now());\n";
close($fh);

my $seconds = 15;
my @writers = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '6', '-j', '2', '-T', $seconds, '-f', "$dir/writer.sql", $node->connstr('postgres') ],
	'>', \my $writers_out, '2>', \my $writers_err);
my @refresher = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '1', '-T', $seconds, '-f', "$dir/refresher.sql", $node->connstr('postgres') ],
	'>', \my $refresher_out, '2>', \my $refresher_err);
$writers[0]->finish;
$refresher[0]->finish;
like($writers_out, qr/number of failed transactions: 0 /, 'the writers ran without a failure');
my ($refreshes) = $refresher_out =~ /number of transactions actually processed: (\d+)/;
ok(defined $refreshes && $refreshes > 5, 'refreshes ran beside them (' . ($refreshes // 'none') . ')');

# One more refresh, alone: what is left behind the watermark is folded in.
$node->safe_psql('postgres', 'SELECT ato.refresh_summaries(now())');
is($node->safe_psql('postgres', 'SELECT late_from IS NULL FROM ato.summary_status'), 't', 'no late day is left');

sub differences
{
	my ($plain, $summary) = @_;
	return $node->safe_psql(
		'postgres', qq{
		WITH w AS (SELECT summarised_until AS wm, recent_from AS rf FROM ato.summary_watermark),
		plain AS ($plain), summary AS ($summary)
		SELECT (SELECT count(*) FROM (SELECT * FROM plain EXCEPT SELECT * FROM summary) m) || ' missing, '
		    || (SELECT count(*) FROM (SELECT * FROM summary EXCEPT SELECT * FROM plain) x) || ' extra'});
}

is( differences(
		q{SELECT e.user_id, e.country_code, min(e.occurred_at) FROM ato.login_events e, w
		   WHERE e.outcome = 'success' AND e.country_code IS NOT NULL AND e.occurred_at < w.wm GROUP BY 1, 2},
		q{SELECT user_id, country_code, first_success_at FROM ato.account_countries}),
	'0 missing, 0 extra',
	'ato.account_countries equals its definition');
is( differences(
		q{SELECT DISTINCT ON (e.user_id) e.user_id, e.id, e.occurred_at FROM ato.located_logins e, w
		   WHERE e.outcome = 'success' AND e.occurred_at < w.wm ORDER BY e.user_id, e.occurred_at DESC, e.id DESC},
		q{SELECT user_id, event_id, occurred_at FROM ato.account_last_logins}),
	'0 missing, 0 extra',
	'ato.account_last_logins equals its definition');
is( differences(
		q{SELECT e.ip_address, e.user_id, date_trunc('hour', e.occurred_at, 'UTC'), count(*), min(e.occurred_at), max(e.occurred_at)
		    FROM ato.login_events e, w
		   WHERE e.outcome = 'success' AND e.ip_address IS NOT NULL AND e.occurred_at >= w.rf AND e.occurred_at < w.wm
		   GROUP BY 1, 2, 3},
		q{SELECT ip_address, user_id, hour, logins, first_login, last_login FROM ato.recent_address_logins}),
	'0 missing, 0 extra',
	'ato.recent_address_logins equals its definition');

$node->stop;
done_testing();
