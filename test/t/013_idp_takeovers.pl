
# Copyright (c) ato_response authors
#
# 013_idp_takeovers.pl -- each identity provider's takeover story
# (test/lib/IdpStories.pm: Okta System Log, Auth0 logs, Entra sign-ins and
# directory audits, in their own shapes) raises its alerts from the default
# rules, with nothing configured:
#   live:         weeks of history imported, then the attack as it happens:
#                 one worker cycle raises every expected alert, each naming
#                 the right account;
#   retroactive:  the same stories imported weeks late into another
#                 database: ato.run_detections(since) raises the same
#                 alerts, and a second hunt adds none.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use IdpStories;

my @providers = qw(okta auth0 entra);

my $node = PostgreSQL::Test::Cluster->new('idp');
$node->init;
$node->append_conf('postgresql.conf',
	    "fsync = off\n"
	  . "shared_preload_libraries = 'ato_response'\n"
	  . "ato_response.databases = 'postgres'\n"
	  . "ato_response.detection_interval = '2s'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ato_response');
$node->safe_psql('postgres', 'CREATE DATABASE hunt');
$node->safe_psql('hunt', 'CREATE EXTENSION ato_response');

sub import_part
{
	my ($db, $provider, $t0, $part) = @_;
	my $json = story_json($provider, $t0, $part);
	return $node->safe_psql($db,
		"SELECT logins || ' ' || audit_events || ' ' || rejected || ' ' || duplicates FROM ato.import_events('$provider', \$json\$$json\$json\$)");
}

# the alerts of a database, as "rule: accounts" lines
my $alerts_sql = q{SELECT string_agg(rule || ': ' || array_to_string(accounts, ','), E'\n' ORDER BY rule, accounts::text)
                     FROM (SELECT DISTINCT rule, accounts FROM ato.alerts) a};

sub expected_lines
{
	my @lines;
	for my $provider (@providers)
	{
		push @lines, map { "$_->[0]: $_->[1]" } @{ expected_alerts($provider) };
	}
	return @lines;
}

# --- live ----------------------------------------------------------------------
my $now = int($node->safe_psql('postgres', 'SELECT extract(epoch FROM now())'));
for my $provider (@providers)
{
	like(import_part('postgres', $provider, $now, 'history'), qr/^\d+ \d+ 0 0$/, "$provider: four weeks of history imported");
}
# the worker folds the history into the summaries before the attack
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 9 FROM (SELECT DISTINCT user_id FROM ato.account_countries) a}),
	'the worker has summarised the history of the nine accounts');

$now = $node->safe_psql('postgres', 'SELECT extract(epoch FROM now())') - 35;
for my $provider (@providers)
{
	like(import_part('postgres', $provider, $now, 'attack'), qr/^\d+ \d+ 0 0$/, "$provider: the attack imported as it happens");
}
my $cycle = $node->safe_psql('postgres', 'SELECT now()');
ok( $node->poll_query_until(
		'postgres',
		"SELECT bool_and(last_run_at > '$cycle' AND last_error IS NULL) FROM ato.detection_rules WHERE enabled"),
	'one worker cycle has run every enabled rule since');
my $live = $node->safe_psql('postgres', $alerts_sql);
diag("alerts raised live:\n$live");
for my $line (expected_lines())
{
	like($live, qr/^\Q$line\E$/m, "live: $line");
}
my %story_accounts = map { $_ => 1 } map { values %{ account_ids($_) } } @providers;
my @strangers = grep { !$story_accounts{$_} }
  split /\n/, $node->safe_psql('postgres', 'SELECT DISTINCT unnest(accounts) FROM ato.alerts');
is_deeply(\@strangers, [], 'no alert names an account outside the stories');

# --- retroactive ----------------------------------------------------------------
my $then = $now - 20 * 86400;
for my $provider (@providers)
{
	import_part('hunt', $provider, $then, 'history');
	like(import_part('hunt', $provider, $then, 'attack'), qr/^\d+ \d+ 0 0$/, "$provider: the story imported 20 days late");
}
is($node->safe_psql('hunt', 'SELECT count(*) FROM ato.alerts'), '0', 'no alert before the hunt');
my $hunt_since = "to_timestamp($then) - interval '1 day'";
is( $node->safe_psql('hunt',
		"SELECT count(*) FROM ato.run_detections(since => $hunt_since) WHERE error IS NOT NULL"),
	'0',
	'the hunt runs every enabled rule without an error');
my $retro = $node->safe_psql('hunt', $alerts_sql);
diag("alerts raised by the hunt:\n$retro");
for my $line (expected_lines())
{
	like($retro, qr/^\Q$line\E$/m, "retroactive: $line");
}
is($retro, $live, 'the hunt raises the same alerts as the live cycles');
my $before = $node->safe_psql('hunt', q{SELECT count(*) || ' ' || max(id) FROM ato.alerts});
$node->safe_psql('hunt', "SELECT count(*) FROM ato.run_detections(since => $hunt_since)");
is($node->safe_psql('hunt', q{SELECT count(*) || ' ' || max(id) FROM ato.alerts}), $before, 'a second hunt adds no alert');

# importing the same history again stores nothing twice
for my $provider (@providers)
{
	like(import_part('hunt', $provider, $then, 'attack'), qr/^0 0 0 \d+$/, "$provider: the story imported again is all duplicates");
}

$node->stop;
done_testing();
