# Copyright (c) ato_response authors
#
# 011_proxy.pl -- ato_response across two shards behind a PL/Proxy node
# (ato_response_proxy): the same events loaded into one reference node and,
# split by ato.shard_hash(), into the shards; every function of the proxy
# checked against the reference node, a credential-stuffing source, a
# password spray and a rare user agent spread over the shards under the
# thresholds on each (the two-phase and three-step detections), a
# revocation whose accounts are split by shard, one with a shard down and
# one with a shard failing, retried for the missing part, and which shards
# the proxy shows done; each shard's range of event ids; the shard's name in
# notifications and outbox rows; the bulk writer on one node and through
# the proxy; the cross-shard rules on the proxy.  Skipped when plproxy is
# not installed.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;

my $root = $ENV{TESTDIR} // "$FindBin::RealBin/../..";

my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
plan skip_all => "plproxy is not installed ($sharedir/extension/plproxy.control is missing; "
  . "apt-get install postgresql-15-plproxy)"
  unless -f "$sharedir/extension/plproxy.control";

my $geo = PostgreSQL::Test::Utils::tempdir;
system_or_bail($^X, "$root/test/geo/write_test_mmdb.pl", $geo);

# The reference node and the two shards run ato_response on the same GeoIP
# databases; the proxy runs ato_response_proxy only.
my %node;
for my $name (qw(reference shard0 shard1 proxy))
{
	my $n = PostgreSQL::Test::Cluster->new($name);
	$n->init;
	$n->append_conf('postgresql.conf', "fsync = off\n");
	$n->append_conf('postgresql.conf',
		"ato_response.geoip_database = '$geo/city.mmdb'\nato_response.asn_database = '$geo/asn.mmdb'\n"
		  # the fixtures map documentation ranges: look them up (the default skips them)
		  . "ato_response.locate_special_addresses = on\n")
	  unless $name eq 'proxy';
	# the shards are named, the reference node is a single server
	$n->append_conf('postgresql.conf', "ato_response.shard_name = '$name'\n") if $name =~ /^shard/;
	$n->start;
	$node{$name} = $n;
}
my ($ref, $proxy) = @node{qw(reference proxy)};
my @shards = @node{qw(shard0 shard1)};
my @data = ($ref, @shards);

$_->safe_psql('postgres', 'CREATE EXTENSION ato_response') for @data;

my $user = $proxy->safe_psql('postgres', 'SELECT current_user');
my $partitions = join(', ',
	map { "p$_ 'host=" . $shards[$_]->host . ' port=' . $shards[$_]->port . " dbname=postgres'" } 0 .. 1);
$proxy->safe_psql(
	'postgres', qq{
	CREATE EXTENSION ato_response_proxy CASCADE;
	CREATE SERVER ato_cluster FOREIGN DATA WRAPPER plproxy OPTIONS ($partitions);
	CREATE USER MAPPING FOR PUBLIC SERVER ato_cluster OPTIONS (user '$user');
});

# Event ids: each shard its own range, set from the proxy before any event.
my $range = sub { my $k = shift; ((($k + 1) << 48) + 1, (($k + 2) << 48) - 1) };
is($proxy->safe_psql('postgres', 'SELECT * FROM ato.set_shard_event_ids()'),
	join("\n", map { "$_|" . ($range->($_))[0] } 0 .. 1), 'set_shard_event_ids: partition p from ((p + 1) << 48) + 1 on');

# ---------------------------------------------------------------------------
# The routing function
# ---------------------------------------------------------------------------

is( $proxy->safe_psql(
		'postgres', q{
		SELECT count(*) FROM generate_series(1, 2000) i, LATERAL (SELECT hashtext('a' || i) AS h, ato.shard_hash('a' || i) AS r) x
		 WHERE (r & 1) <> CASE WHEN h < 0 THEN 0 ELSE 1 END}),
	'0',
	'two partitions: p0 holds the negative hashes, p1 the others (Citus\'s two ranges)');
is( $proxy->safe_psql(
		'postgres', q{
		SELECT count(*) FROM generate_series(1, 2000) i, LATERAL (SELECT hashtext('a' || i) AS h, ato.shard_hash('a' || i) AS r) x
		 WHERE (r & 3) <> (ARRAY[0, 2, 1, 3])[((h::bigint + 2147483648) >> 30) + 1]}),
	'0',
	'four partitions: partition p holds Citus hash range reverse_2(p)');
is($proxy->safe_psql('postgres', 'SELECT ato.shard_hash(NULL)'), '0', 'a NULL account goes to partition 0');

# ---------------------------------------------------------------------------
# The same events on the reference node and, split, on the shards
# ---------------------------------------------------------------------------

my @users = map { sprintf('u%03d', $_) } 1 .. 60;
my @of_shard = map {
	[ split /,/,
		$proxy->safe_psql('postgres',
			"SELECT string_agg(u, ',' ORDER BY u) FROM unnest('{" . join(',', @users) . "}'::text[]) u WHERE ato.shard_hash(u) & 1 = $_") ]
} 0 .. 1;
is(scalar(@{ $of_shard[0] }) + scalar(@{ $of_shard[1] }), 60, 'every account has one shard');
cmp_ok(scalar(@{ $of_shard[$_] }), '>', 10, "shard $_ holds a fair share of the accounts") for 0 .. 1;

my $base = $ref->safe_psql('postgres', "SELECT date_trunc('second', now())");
my $B = "'$base'::timestamptz";

sub load
{
	my ($n, $ids) = @_;
	my $accounts = "'{" . join(',', @$ids) . "}'::text[]";
	my $u = "(SELECT i, format('u%s', lpad(i::text, 3, '0')) AS id FROM generate_series(1, 60) i) u";
	$n->safe_psql(
		'postgres', qq{
		SELECT ato.list_network('203.0.113.0/24', 'hosting', 'test feed');
		-- history: every account from the United Kingdom three days ago
		INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, user_agent)
		SELECT id, format('192.0.2.%s', i)::inet, 'success', $B - interval '3 days' + i * interval '1 second', 'ua-' || i
		  FROM $u WHERE id = ANY ($accounts);
		-- new country (United States), then account changes
		INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
		SELECT id, format('198.51.100.%s', i)::inet, 'success', $B - interval '30 minutes' + i * interval '1 second'
		  FROM $u WHERE i <= 10 AND id = ANY ($accounts);
		INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address)
		SELECT id, 'user.email_changed', $B - interval '25 minutes' + i * interval '1 second', format('198.51.100.%s', i)::inet
		  FROM $u WHERE i <= 10 AND id = ANY ($accounts);
		INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, target_type, target_id)
		SELECT id, CASE WHEN i <= 5 THEN 'user.mfa.factor.activate' ELSE 'system.api_token.create' END,
		       $B - interval '20 minutes' + i * interval '1 second', 'factor', 'f-' || i
		  FROM $u WHERE i <= 8 AND id = ANY ($accounts);
		INSERT INTO ato.audit_events (actor_id, event_type, occurred_at)
		SELECT id, 'billing.modified', $B - interval '10 minutes' + i * interval '1 second'
		  FROM $u WHERE i <= 30 AND id = ANY ($accounts);
		-- impossible travel: London, then Tokyo half an hour later
		INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
		SELECT id, a.ip, 'success', $B - a.ago + i * interval '1 second'
		  FROM $u, (VALUES ('192.0.2.200'::inet, interval '2 hours'), ('203.0.113.10', interval '90 minutes')) a(ip, ago)
		 WHERE i BETWEEN 11 AND 16 AND id = ANY ($accounts);
		-- bursts of failures from Brazil, half of them followed by a success
		INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
		SELECT id, '203.0.113.200', 'failure', $B - interval '40 minutes' + k * interval '20 seconds' + i * interval '1 second'
		  FROM $u, generate_series(1, 12) k WHERE i BETWEEN 17 AND 24 AND id = ANY ($accounts);
		INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
		SELECT id, '203.0.113.200', 'success', $B - interval '30 minutes' + i * interval '1 second'
		  FROM $u WHERE i BETWEEN 17 AND 24 AND i % 2 = 0 AND id = ANY ($accounts);
		-- credential stuffing: one address, 30 accounts, one success
		INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
		SELECT id, '198.51.100.77', CASE WHEN i = 33 THEN 'success' ELSE 'failure' END,
		       $B - interval '15 minutes' + i * interval '1 second'
		  FROM $u WHERE i BETWEEN 21 AND 50 AND id = ANY ($accounts);
	});
}
load($ref, \@users);
load($shards[$_], $of_shard[$_]) for 0 .. 1;

# The spread cases of issue 17, on accounts picked by shard: a source making
# 30 attempts, 12 against accounts of shard 0 and 18 against shard 1's, one
# of them a success (both shares under min_attempts 20); a spray of one
# failure each over 16 accounts, 9 + 7 (both under min_accounts 10); and two
# user agents, one used by 3 + 3 accounts (common on one node, rare on each
# shard alone), one by 2 + 2 (rare everywhere).
my @s0 = @{ $of_shard[0] };
my @s1 = @{ $of_shard[1] };
cmp_ok(scalar(@s0), '>=', 12, 'shard 0 has the 12 accounts of the spread stuffing');
cmp_ok(scalar(@s1), '>=', 18, 'shard 1 has the 18 accounts of the spread stuffing');
sub spread
{
	my ($n, @mine) = @_;
	my $mine = "'{" . join(',', @mine) . "}'::text[]";
	# every account its own time and address, the same on every node
	my $each = sub { "unnest('{" . join(',', @_) . "}'::text[]) WITH ORDINALITY a(u, n) WHERE u = ANY ($mine)" };
	$n->safe_psql(
		'postgres', qq{
		INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
		SELECT u, '198.51.100.88', CASE WHEN u = '$s1[17]' THEN 'success' ELSE 'failure' END,
		       $B - interval '12 minutes' + n * interval '1 second'
		  FROM @{[ $each->(@s0[0 .. 11], @s1[0 .. 17]) ]};
		INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
		SELECT u, '203.0.113.99', 'failure', $B - interval '11 minutes' + n * interval '1 second'
		  FROM @{[ $each->(@s0[0 .. 8], @s1[0 .. 6]) ]};
		INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, user_agent)
		SELECT u, ('192.0.2.' || (100 + n))::inet, 'success', $B - interval '2 days' + n * interval '1 second', 'ua-wide'
		  FROM @{[ $each->(@s0[0 .. 2], @s1[0 .. 2]) ]};
		INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, user_agent)
		SELECT u, ('192.0.2.' || (110 + n))::inet, 'success', $B - interval '2 days' + n * interval '1 second', 'ua-few'
		  FROM @{[ $each->(@s0[3 .. 4], @s1[3 .. 4]) ]};
	});
}
spread($ref, @users);
spread($shards[$_], @{ $of_shard[$_] }) for 0 .. 1;

for my $k (0 .. 1)
{
	is( $shards[$k]->safe_psql(
			'postgres',
			"SELECT count(*) FROM ato.login_events WHERE NOT user_id = ANY ('{"
			  . join(',', @{ $of_shard[$k] }) . "}')"),
		'0',
		"shard $k holds only its own accounts' logins");
}
is( $ref->safe_psql('postgres', 'SELECT count(*) FROM ato.login_events'),
	$shards[0]->safe_psql('postgres', 'SELECT count(*) FROM ato.login_events')
	  + $shards[1]->safe_psql('postgres', 'SELECT count(*) FROM ato.login_events'),
	'the shards together hold the reference node\'s logins');

# ---------------------------------------------------------------------------
# Detections: through the proxy as on one node, row for row and in order
# ---------------------------------------------------------------------------

my $some = "'{" . join(',', map { sprintf('u%03d', $_) } 1 .. 30) . "}'::text[]";
my @detections = (
	"ato.new_country_logins($B - interval '1 hour')",
	"ato.new_country_logins($B - interval '1 hour', interval '1 minute', '{user.email_changed}')",
	"ato.cidr_scope('{198.51.100.0/24,203.0.113.0/25}', $B - interval '1 day')",
	"ato.failed_login_bursts($B - interval '1 hour')",
	"ato.failed_login_bursts($B - interval '1 hour', 5, interval '2 minutes')",
	"ato.impossible_travel($B - interval '1 day')",
	"ato.listed_network_logins($B - interval '1 day')",
	"ato.listed_network_logins($B - interval '1 day', '{hosting}')",
	"ato.persistence_changes(NULL, $B - interval '1 day')",
	"ato.persistence_changes('{u001,u002,u007,u040}', $B - interval '1 day')",
	"ato.suspicious_action_counts($some, $B - interval '1 day')",
	"ato.credential_stuffing($B - interval '1 hour')",
	"ato.credential_stuffing($B - interval '1 hour', 5, 0.5)",
	"ato.credential_stuffing($B - interval '1 day', 1, 1)",
	"ato.credential_stuffing($B - interval '1 day', 13, 0.01)",
	"ato.credential_stuffing_counts($B - interval '1 hour')",
	"ato.credential_stuffing_counts($B - interval '1 hour', 25, '{address 198.51.100.88,network 198.51.100.0/24,address 192.0.2.1}')",
	"ato.password_spray($B - interval '1 hour')",
	"ato.password_spray($B - interval '1 hour', 3, 20)",
	"ato.password_spray($B - interval '1 day', 1, 1e9)",
	"ato.password_spray_counts($B - interval '1 hour')",
	"ato.password_spray_counts($B - interval '1 day', 5, '{203.0.113.99,203.0.113.200,192.0.2.1}')",
	"ato.related_accounts('{$s0[0],$s0[3]}', $B - interval '7 days')",
	"ato.related_accounts('{$s0[0],$s0[3]}', $B - interval '7 days', 10)",
	"ato.related_accounts('{$s1[0],u018,u033}', $B - interval '7 days', 1)",
	"ato.related_accounts('{$s1[4]}', $B - interval '7 days')");
for my $call (@detections)
{
	my $expected = $ref->safe_psql('postgres', "SELECT * FROM $call");
	isnt($expected, '', "reference node: $call has rows");
	is($proxy->safe_psql('postgres', "SELECT * FROM $call"), $expected, "proxy: $call as on one node");
}

# The stuffing source spread over the shards: under min_attempts on each.
my $stuffing = "SELECT attempts, successes, accounts, suspicious FROM ato.credential_stuffing($B - interval '1 hour')"
  . " WHERE source = '198.51.100.77'";
is($ref->safe_psql('postgres', $stuffing), '30|1|30|t', 'one node: the spread source is credential stuffing');
is($shards[$_]->safe_psql('postgres', $stuffing), '', "shard $_ alone sees the source under the threshold")
  for 0 .. 1;
is($proxy->safe_psql('postgres', $stuffing), '30|1|30|t', 'proxy: the attempts of both shards counted together');

# The spread cases of the issue: on one node, on neither shard alone, and
# through the proxy as on one node.
my @spread = (
	[ "SELECT attempts, successes, accounts, suspicious FROM ato.credential_stuffing($B - interval '1 hour')"
		  . " WHERE source = '198.51.100.88'",
		'30|1|30|t', 'the stuffing 12 + 18' ],
	[ "SELECT accounts, failures, successes, attempts_per_account FROM ato.password_spray($B - interval '1 hour')"
		  . " WHERE ip_address = '203.0.113.99'",
		'16|16|0|1', 'the spray 9 + 7' ],
	[ "SELECT user_id, shared_user_agents FROM ato.related_accounts('{$s0[0],$s0[3]}', $B - interval '7 days')"
		  . " WHERE shared_user_agents <> '{}' ORDER BY user_id",
		join("\n", map { "$_|{ua-few}" } sort ($s0[4], @s1[3, 4])), 'the rare user agent 2 + 2 (the one of 3 + 3 is common)' ]);
for my $case (@spread)
{
	my ($query, $whole, $what) = @$case;
	is($ref->safe_psql('postgres', $query), $whole, "one node: $what");
	isnt($shards[$_]->safe_psql('postgres', $query), $whole, "shard $_ alone: not $what") for 0 .. 1;
	is($proxy->safe_psql('postgres', $query), $whole, "proxy: $what, as on one node");
}
is( $shards[0]->safe_psql('postgres',
		"SELECT count(*) FROM ato.credential_stuffing($B - interval '1 hour') WHERE source = '198.51.100.88'")
	  . $shards[1]->safe_psql('postgres',
		"SELECT count(*) FROM ato.credential_stuffing($B - interval '1 hour') WHERE source = '198.51.100.88'")
	  . $shards[0]->safe_psql('postgres',
		"SELECT count(*) FROM ato.password_spray($B - interval '1 hour') WHERE ip_address = '203.0.113.99'")
	  . $shards[1]->safe_psql('postgres',
		"SELECT count(*) FROM ato.password_spray($B - interval '1 hour') WHERE ip_address = '203.0.113.99'"),
	'0000', 'each shard alone is under the thresholds');

# The phases' arguments are checked at the proxy as one node checks them.
for my $bad (
	[ "ato.password_spray($B, NULL)", qr/min_accounts must not be NULL/ ],
	[ "ato.password_spray($B, 0)", qr/min_accounts must be at least 1/ ],
	[ "ato.password_spray($B, 10, 0.5)", qr/max_attempts_per_account must be between 1 and 1e\+09/ ],
	[ "ato.password_spray(NULL)", qr/since must not be NULL/ ],
	[ "ato.related_accounts(NULL)", qr/user_ids must not be NULL/ ],
	[ "ato.related_accounts('{u001}', $B, 0)", qr/rare_user_agent_accounts must be at least 1/ ],
	[ "ato.password_spray_counts($B, -1)", qr/min_accounts must not be negative/ ],
	[ "ato.credential_stuffing_counts($B, 0)", qr/min_attempts must be at least 1/ ])
{
	my ($call, $re) = @$bad;
	my (undef, undef, $e1) = $ref->psql('postgres', "SELECT * FROM $call");
	my (undef, undef, $e2) = $proxy->psql('postgres', "SELECT * FROM $call");
	like($e1, $re, "one node refuses $call");
	like($e2, $re, "the proxy refuses $call");
}
my (undef, undef, $seen_err) = $ref->psql('postgres',
	"SELECT * FROM ato.related_accounts_to('{u001}', $B, '{u001}', '{}', '{}')");
like($seen_err, qr/seen_ids, seen_addresses and seen_user_agents have 1, 0 and 0 elements/,
	'related_accounts_to: seen arrays of different lengths are refused');

# A NULL window fails as on one node.
my ($rc, $out, $err) = $proxy->psql('postgres', "SELECT * FROM ato.credential_stuffing(NULL)");
like($err, qr/since must not be NULL/, 'credential_stuffing: a NULL since is refused through the proxy');
($rc, $out, $err) = $proxy->psql('postgres', "SELECT * FROM ato.credential_stuffing($B, 0)");
like($err, qr/min_attempts must be at least 1/, 'credential_stuffing: min_attempts 0 is refused at the proxy');

# ---------------------------------------------------------------------------
# The enum types match the shards'
# ---------------------------------------------------------------------------

for my $type (qw(ato.login_step ato.session_verdict))
{
	is( $proxy->safe_psql('postgres', "SELECT enum_range(NULL::$type)::text"),
		$shards[0]->safe_psql('postgres', "SELECT enum_range(NULL::$type)::text"),
		"$type has the shards' labels in their order");
}

# ---------------------------------------------------------------------------
# Response: revoke_incident split by shard, then the per-account calls
# ---------------------------------------------------------------------------

my @revoked = qw(u001 u002 u003 u017 u040);
my $revoke = "ato.revoke_incident('{" . join(',', @revoked) . "}', 'proxy test', suspend => false)";

# A bad account fails the whole call before any shard is asked.
($rc, $out, $err) = $proxy->psql('postgres', "SELECT * FROM ato.revoke_incident('{u001,u002,NULL}', 'proxy test')");
like($err, qr/revoke_incident: user_ids\[3\] is NULL/, 'revoke_incident: a NULL account is refused at the proxy');
($rc, $out, $err) = $proxy->psql('postgres', "SELECT * FROM ato.revoke_incident('{}', 'proxy test')");
like($err, qr/revoke_incident: user_ids is empty/, 'revoke_incident: no accounts is refused at the proxy');
is($shards[$_]->safe_psql('postgres', 'SELECT count(*) FROM ato.incidents'), '0',
	"shard $_: the refused calls opened no incident")
  for 0 .. 1;

$ref->safe_psql('postgres', "SELECT $revoke");
my %on_shard;
for my $k (0 .. 1)
{
	my %mine = map { $_ => 1 } @{ $of_shard[$k] };
	$on_shard{$k} = [ grep { $mine{$_} } @revoked ];
}
my $shards_hit = grep { @{ $on_shard{$_} } } 0 .. 1;
my $one_incident = $proxy->safe_psql('postgres', "SELECT $revoke");
like($one_incident, qr/^[0-9a-f-]{36}$/, 'revoke_incident: one incident id');
for my $k (0 .. 1)
{
	is( $shards[$k]->safe_psql('postgres', 'SELECT string_agg(user_ids::text, \' \') FROM ato.incidents'),
		@{ $on_shard{$k} } ? '{' . join(',', @{ $on_shard{$k} }) . '}' : '',
		"shard $k: the incident holds exactly its own accounts");
	is( $shards[$k]->safe_psql('postgres', 'SELECT string_agg(id::text, \' \') FROM ato.incidents'),
		@{ $on_shard{$k} } ? $one_incident : '',
		"shard $k: under the one incident id");
}

my $everyone = "unnest('{" . join(',', @users) . "}'::text[]) u";
# A login's transaction gates one account (at most 16): each account's gate
# in a statement, and a transaction, of its own (psql's \gexec).
my @per_account = (
	"SELECT format('SELECT %L, g.step, g.message, g.steps, g.incident_id IS NOT NULL, g.issued_at IS NOT NULL"
	  . " FROM ato.login_gate(%L, ''198.51.100.1'') g', u, u) FROM $everyone ORDER BY u \\gexec",
	"SELECT format('SELECT %L, g.step, g.steps FROM ato.login_gate(%L, ''203.0.113.5'') g', u, u)"
	  . " FROM $everyone ORDER BY u \\gexec",
	"SELECT u, s.refused, s.verdict, s.incident_id IS NOT NULL, s.revoked_at IS NOT NULL, s.reason"
	  . " FROM $everyone, LATERAL ato.session_status(u, $B - interval '1 hour', 's-1') s ORDER BY u",
	"SELECT u, ato.session_revoked(u, $B - interval '1 hour'), ato.session_revoked(u, now() + interval '1 hour')"
	  . " FROM $everyone ORDER BY u");
for my $query (@per_account)
{
	my $expected = $ref->safe_psql('postgres', $query);
	like($expected, qr/\bu017\|(reauth_required|t)/, 'reference node: a revoked account in ' . substr($query, 0, 60));
	is($proxy->safe_psql('postgres', $query), $expected, 'proxy as on one node: ' . substr($query, 0, 60));
}

for my $call ("ato.complete_step('u017', 'reauth_required', 'totp', 'user')",
	"ato.complete_step('u018', 'reauth_required')")
{
	is($proxy->safe_psql('postgres', "SELECT $call"), $ref->safe_psql('postgres', "SELECT $call"),
		"proxy as on one node: $call");
}
is( $proxy->safe_psql('postgres', "SELECT step FROM ato.login_gate('u017')"),
	'ok', 'login_gate: the completed step is cleared on the account\'s shard');

# ---------------------------------------------------------------------------
# A revocation with one shard down: no atomic commit across shards
# ---------------------------------------------------------------------------

# Accounts of each shard not revoked so far: two for a shard that is down,
# two for a shard that answers with an error.
my (@down, @failing);
for my $k (0 .. 1)
{
	my @left = grep { !/^u0(0[123]|17|40)$/ } @{ $of_shard[$k] };
	$down[$k] = [ @left[ 0, 1 ] ];
	$failing[$k] = [ @left[ 2, 3 ] ];
}
my $incidents_of = sub {
	my ($k, $accounts) = @_;
	return $shards[$k]->safe_psql('postgres',
		"SELECT count(*) FROM ato.incidents WHERE user_ids && '{" . join(',', @$accounts) . "}'");
};
my $revoke_sql = sub { "SELECT * FROM ato.revoke_incident('{" . join(',', @_) . "}', 'shard trouble')" };

# Shard 1 down: the call fails.  Whether shard 0 ran it depends on whether the
# proxy's connection to it was open already, so only shard 1 is retried.
$shards[1]->stop;
($rc, $out, $err) = $proxy->psql('postgres', $revoke_sql->(@{ $down[0] }, @{ $down[1] }));
isnt($rc, 0, 'revoke_incident with a shard down fails');
like($err, qr/connection to server/, 'the error says the proxy could not reach the shard');
$shards[1]->start;
is($proxy->safe_psql('postgres', 'SELECT count(*) FROM (' . $revoke_sql->(@{ $down[1] }) . ') r'),
	'1', 'retried for the down shard\'s accounts, once it is back: one incident');
is($incidents_of->(1, $down[1]), '1', 'shard 1 revoked its accounts on the retry');

# Shard 1 answers with an error: it waits for a lock a session of its own
# holds, past its lock_timeout, so that shard 0 has committed its part
# before the error comes (PL/Proxy cancels the shards still running when one
# fails).  The proxy shows which shards are done; the call is retried with
# the same incident id and all the accounts: shard 0 does nothing again,
# shard 1 its part, and the incident has one id on both.
my $retried = '4c1f3a52-0000-4000-8000-00000000d011';
my $revoke_with_id = sub { "SELECT * FROM ato.revoke_incident('{" . join(',', @_) . "}', 'shard trouble', incident_id => '$retried')" };
my $progress = "SELECT partition_number, accounts, done, error IS NOT NULL FROM ato.incident_progress('$retried', '{"
  . join(',', @{ $failing[0] }, @{ $failing[1] }) . "}')";
my $expect_progress = sub {
	join("\n", map { "$_|{" . join(',', sort @{ $failing[$_] }) . "}|$_[$_]|f" } 0 .. 1);
};
$shards[1]->safe_psql('postgres', "ALTER SYSTEM SET lock_timeout = '3s'; SELECT pg_reload_conf()");
my $holder = $shards[1]->background_psql('postgres');
$holder->query_safe('BEGIN; LOCK TABLE ato.incidents IN ACCESS EXCLUSIVE MODE');
($rc, $out, $err) = $proxy->psql('postgres', $revoke_with_id->(@{ $failing[0] }, @{ $failing[1] }));
isnt($rc, 0, 'revoke_incident with a failing shard fails');
like($err, qr/lock timeout/, 'the error is the failing shard\'s');
$holder->query_safe('COMMIT');
$holder->quit;
$shards[1]->safe_psql('postgres', 'ALTER SYSTEM RESET lock_timeout; SELECT pg_reload_conf()');
is($incidents_of->(0, $failing[0]), '1', 'shard 0 revoked its accounts all the same: no atomic commit across shards');
is($incidents_of->(1, $failing[1]), '0', 'the failing shard revoked nothing');
is($proxy->safe_psql('postgres', $progress), $expect_progress->('t', 'f'),
	'incident_progress: shard 0 done, shard 1 not');
is($proxy->safe_psql('postgres', $revoke_with_id->(@{ $failing[0] }, @{ $failing[1] })),
	$retried, 'retried with the same id and accounts: the same incident');
is($incidents_of->(0, $failing[0]) . ' ' . $incidents_of->(1, $failing[1]), '1 1',
	'each shard has revoked its accounts once');
is( join(' ', map { $_->safe_psql('postgres', "SELECT count(*) FROM ato.incidents WHERE id = '$retried'") } @shards),
	'1 1', 'under the one incident id on both shards');
is($proxy->safe_psql('postgres', $progress), $expect_progress->('t', 't'), 'incident_progress: both shards done');
$shards[1]->stop;
is( $proxy->safe_psql('postgres',
		"SELECT partition_number, done, error ~ 'connection' FROM ato.incident_progress('$retried', '{"
		  . join(',', @{ $failing[0] }, @{ $failing[1] }) . "}')"),
	"0|t|\n1||t", 'incident_progress: a shard down is reported, not raised');
$shards[1]->start;

# ---------------------------------------------------------------------------
# Recording: on the account's shard only
# ---------------------------------------------------------------------------

my %home = map { my $k = $_; map { $_ => $k } @{ $of_shard[$k] } } 0 .. 1;
my $logins = "SELECT count(*) FROM ato.login_events WHERE user_id = 'u060'";
my $events = "SELECT count(*) FROM ato.audit_events WHERE actor_id = 'u059'";
my @before = map { [ $_->safe_psql('postgres', $logins), $_->safe_psql('postgres', $events) ] } @shards;
like($proxy->safe_psql('postgres', "SELECT ato.record_login('u060', '198.51.100.9', 'success')"),
	qr/^\d+$/, 'record_login returns the shard\'s event id');
like($proxy->safe_psql('postgres', "SELECT ato.record_event('u059', 'user.password_changed')"),
	qr/^\d+$/, 'record_event returns the shard\'s event id');
for my $k (0 .. 1)
{
	is($shards[$k]->safe_psql('postgres', $logins) - $before[$k][0], $home{u060} == $k ? 1 : 0,
		"record_login: shard $k got " . ($home{u060} == $k ? 'the login of its account' : 'nothing'));
	is($shards[$k]->safe_psql('postgres', $events) - $before[$k][1], $home{u059} == $k ? 1 : 0,
		"record_event: shard $k got " . ($home{u059} == $k ? 'the event of its account' : 'nothing'));
}
is( $shards[ $home{u060} ]->safe_psql('postgres',
		"SELECT country_code FROM ato.login_events WHERE user_id = 'u060' ORDER BY id DESC LIMIT 1"),
	'US', 'record_login: enriched on the shard');

($rc, $out, $err) = $proxy->psql('postgres', "SELECT ato.record_login(NULL, '198.51.100.9', 'success')");
like($err, qr/login event has no user_id/, 'record_login: a NULL account is refused as on one node');


# ---------------------------------------------------------------------------
# Event ids never collide across shards
# ---------------------------------------------------------------------------

my $ids = 'SELECT id FROM ato.login_events UNION ALL SELECT id FROM ato.audit_events';
for my $k (0 .. 1)
{
	my ($first, $last) = $range->($k);
	is( $shards[$k]->safe_psql('postgres',
			"SELECT count(*) > 0, count(*) FILTER (WHERE id NOT BETWEEN $first AND $last) FROM ($ids) e"),
		't|0', "shard $k: every event id in its range (top 16 bits " . ($k + 1) . ')');
}
is( $shards[0]->safe_psql('postgres', "SELECT max(id) FROM ($ids) e") < $shards[1]->safe_psql('postgres', "SELECT min(id) FROM ($ids) e")
	  ? 'disjoint' : 'overlap',
	'disjoint', 'the two shards\' ids are disjoint');
my $new_id = $proxy->safe_psql('postgres', "SELECT ato.record_login('$s1[0]', '198.51.100.9', 'success')");
is($new_id >> 48, 2, 'record_login through the proxy: an id of shard 1\'s range');
my $last_value = $shards[1]->safe_psql('postgres', 'SELECT last_value FROM ato.event_id_seq');
$proxy->safe_psql('postgres', 'SELECT * FROM ato.set_shard_event_ids()');
is($shards[1]->safe_psql('postgres', 'SELECT last_value FROM ato.event_id_seq'), $last_value,
	'set_shard_event_ids again changes nothing');
for my $bad ([ 'NULL', qr/shard_number must not be NULL/ ], [ '-1', qr/between 0 and 32766/ ], [ '32767', qr/between 0 and 32766/ ])
{
	my (undef, undef, $e) = $ref->psql('postgres', "SELECT ato.set_shard_event_ids($bad->[0])");
	like($e, $bad->[1], "set_shard_event_ids($bad->[0]) is refused");
}

# ---------------------------------------------------------------------------
# The shard's name in every notification and outbox row
# ---------------------------------------------------------------------------

for my $case ([ $ref, undef, 'u055' ], [ $shards[0], 'shard0', $s0[-1] ], [ $shards[1], 'shard1', $s1[-1] ])
{
	my ($n, $name, $account) = @$case;
	my $label = $name // 'one node';
	my ($o, $e) = ('', '');
	$n->psql(
		'postgres', qq{
		LISTEN ato_revocations;
		LISTEN ato_alerts;
		SELECT ato.revoke_incident('{$account}', 'named');
		SELECT ato.run_detection('failed_login_bursts', NULL, $B - interval '1 hour') > 0;
		SELECT 1;
	},
		stdout => \$o,
		stderr => \$e);
	my @revocations = $o =~ /notification "ato_revocations" with payload "(.*?)" received/g;
	my @alerts = $o =~ /notification "ato_alerts" with payload "(.*?)" received/g;
	cmp_ok(scalar(@revocations), '>=', 1, "$label: revocations announced");
	cmp_ok(scalar(@alerts), '>=', 1, "$label: alerts announced");
	if (defined $name)
	{
		ok(!(grep { !/^\{"incident":"[0-9a-f-]{36}",.*,"shard":"$name"\}$/ } @revocations),
			"$name: every revocation payload names the shard");
		ok(!(grep { !/^\{"alert" : \d+, .*, "shard" : "$name"\}$/ } @alerts), "$name: every alert payload names the shard");
	}
	else
	{
		ok(!(grep { /shard/ } @revocations, @alerts), 'one node: no payload names a shard');
	}
	is( $n->safe_psql('postgres',
			"SELECT string_agg(DISTINCT coalesce(shard, 'NULL'), ',') FROM ato.revocation_outbox"),
		$name // 'NULL', "$label: the outbox rows carry " . ($name ? 'the shard\'s name' : 'no name'));
	is( $n->safe_psql('postgres',
			"SELECT string_agg(DISTINCT coalesce(shard, 'NULL'), ',') FROM ato.revocations_since(0, 1000)"),
		$name // 'NULL', "$label: and so does revocations_since");
}
my (undef, undef, $long) = $ref->psql('postgres',
	"LOAD 'ato_response';\nSET ato_response.shard_name = '" . ('x' x 201) . "'");
like($long, qr/at most 200 bytes/, 'a shard name too long for a notification is refused');

# ---------------------------------------------------------------------------
# The bulk writer: on one node, and through the proxy split by shard
# ---------------------------------------------------------------------------

my @bulk = map { sprintf('u%03d', $_) } 41 .. 60;
my $bulk_call = "ato.record_logins('{" . join(',', @bulk) . "}',"
  . " ARRAY(SELECT ('198.51.100.' || i)::inet FROM generate_series(141, 160) i),"
  . " array_fill('failure'::text, ARRAY[20]),"
  . " ARRAY(SELECT $B - interval '5 minutes' + i * interval '1 second' FROM generate_series(1, 20) i),"
  . " array_fill('ua-bulk'::text, ARRAY[20]), array_fill('bulk'::text, ARRAY[20]), NULL)";
is($ref->safe_psql('postgres', "SELECT $bulk_call"), '20', 'record_logins on one node: 20 logins');
is($proxy->safe_psql('postgres', "SELECT $bulk_call"), '20', 'record_logins through the proxy: 20 logins');
my $bulk_rows = "SELECT user_id, ip_address, outcome, occurred_at, user_agent, country_code, metadata"
  . " FROM ato.login_events WHERE source = 'bulk'";
is( join("\n", sort map { split /\n/, $_->safe_psql('postgres', $bulk_rows) } @shards),
	join("\n", sort split /\n/, $ref->safe_psql('postgres', $bulk_rows)),
	'the shards together hold the rows one node holds, enriched alike');
for my $k (0 .. 1)
{
	my ($first, $last) = $range->($k);
	is( $shards[$k]->safe_psql('postgres',
			"SELECT count(*) FILTER (WHERE NOT user_id = ANY ('{" . join(',', @{ $of_shard[$k] }) . "}')),"
			  . " count(*) FILTER (WHERE id NOT BETWEEN $first AND $last) FROM ato.login_events WHERE source = 'bulk'"),
		'0|0', "record_logins: shard $k got only its own accounts, with ids of its range");
}
is($ref->safe_psql('postgres', "SELECT array_agg(user_id ORDER BY id) = '{" . join(',', @bulk) . "}' FROM ato.login_events WHERE source = 'bulk'"),
	't', 'record_logins: the ids follow the arrays\' order');
is($ref->safe_psql('postgres', "SELECT ato.record_logins('{a1,a2}', NULL, '{success,failure}')"), '2',
	'record_logins: ips and times may be NULL');
for my $n ($ref, $proxy)
{
	my $where = $n == $ref ? 'one node' : 'proxy';
	is($n->safe_psql('postgres', "SELECT ato.record_logins('{}', '{}', '{}')"), '0', "$where: empty arrays record nothing");
	for my $bad (
		[ "ato.record_logins(NULL, '{}', '{}')", '22004', qr/user_ids must not be NULL/ ],
		[ "ato.record_logins('{a}', '{}', NULL)", '22004', qr/outcomes must not be NULL/ ],
		[ "ato.record_logins('{a,b}', '{192.0.2.1}', '{success,failure}')", '2202E',
			qr/the arrays differ in length \(user_ids 2, outcomes 2, ips 1, times NULL/ ],
		[ "ato.record_logins('{a}', NULL, '{success}', '{}')", '2202E', qr/the arrays differ in length/ ],
		[ "ato.record_logins('{{a},{b}}', NULL, '{{success},{failure}}')", '2202E', qr/one-dimensional/ ],
		[ "ato.record_logins(array_fill('a'::text, ARRAY[100001]), NULL, array_fill('success'::text, ARRAY[100001]))",
			'54000', qr/100001 events in one call, more than 100000/ ],
		[ "ato.record_logins('{a,NULL}', NULL, '{success,failure}')", '22004', qr/login event has no user_id/ ])
	{
		my ($call, $code, $re) = @$bad;
		my (undef, undef, $e) = $n->psql('postgres', "\\set VERBOSITY verbose\nSELECT $call");
		like($e, qr/ERROR:  $code: /, "$where: $call fails with $code");
		like($e, $re, "$where: $call says why");
		like($e, qr/HINT:  /, "$where: $call gives a hint")
	}
}
# The audit events' bulk writer, the same way.
my $events_call = "ato.record_events('{" . join(',', @bulk) . "}', array_fill('user.email_changed'::text, ARRAY[20]),"
  . " ARRAY(SELECT $B - interval '4 minutes' + i * interval '1 second' FROM generate_series(1, 20) i),"
  . " ARRAY(SELECT ('198.51.100.' || i)::inet FROM generate_series(141, 160) i),"
  . " NULL, NULL, NULL, array_fill('bulk'::text, ARRAY[20]), NULL)";
is($ref->safe_psql('postgres', "SELECT $events_call"), '20', 'record_events on one node: 20 events');
is($proxy->safe_psql('postgres', "SELECT $events_call"), '20', 'record_events through the proxy: 20 events');
my $bulk_events = "SELECT actor_id, event_type, occurred_at, ip_address, country_code FROM ato.audit_events WHERE source = 'bulk'";
is( join("\n", sort map { split /\n/, $_->safe_psql('postgres', $bulk_events) } @shards),
	join("\n", sort split /\n/, $ref->safe_psql('postgres', $bulk_events)),
	'record_events: the shards together hold the events one node holds');
for my $k (0 .. 1)
{
	is( $shards[$k]->safe_psql('postgres',
			"SELECT count(*) FROM ato.audit_events WHERE source = 'bulk' AND NOT actor_id = ANY ('{"
			  . join(',', @{ $of_shard[$k] }) . "}')"),
		'0', "record_events: shard $k got only its own accounts' events");
}
for my $n ($ref, $proxy)
{
	my $where = $n == $ref ? 'one node' : 'proxy';
	is($n->safe_psql('postgres', "SELECT ato.record_events('{}', '{}')"), '0', "$where: record_events of nothing");
	for my $bad (
		[ "ato.record_events(NULL, '{}')", '22004', qr/record_events: actor_ids must not be NULL/ ],
		[ "ato.record_events('{a}', '{x.y}', NULL, '{}')", '2202E', qr/the arrays differ in length \(actor_ids 1, event_types 1, times NULL, ips 0/ ],
		[ "ato.record_events(array_fill('a'::text, ARRAY[100001]), array_fill('x'::text, ARRAY[100001]))",
			'54000', qr/record_events: 100001 events in one call/ ])
	{
		my ($call, $code, $re) = @$bad;
		my (undef, undef, $e) = $n->psql('postgres', "\\set VERBOSITY verbose\nSELECT $call");
		like($e, qr/ERROR:  $code: /, "$where: $call fails with $code");
		like($e, $re, "$where: $call says why");
		like($e, qr/HINT:  /, "$where: $call gives a hint");
	}
}
is($ref->safe_psql('postgres', "SELECT count(*) FROM ato.login_events WHERE user_id IN ('a', 'b')"), '0',
	'record_logins: a refused call stores nothing');
is($ref->safe_psql('postgres', "SELECT ato.record_logins(array_fill('big'::text, ARRAY[100000]), NULL, array_fill('failure'::text, ARRAY[100000]))"),
	'100000', 'record_logins: 100000 logins in one call');

# ---------------------------------------------------------------------------
# Cross-shard rules on the proxy
# ---------------------------------------------------------------------------

my ($o, $e) = ('', '');
$proxy->psql('postgres', "LISTEN ato_proxy_alerts;\nSELECT ato.run_proxy_rules(interval '1 hour');\nSELECT 1;",
	stdout => \$o, stderr => \$e);
my @found = $o =~ /notification "ato_proxy_alerts" with payload "(.*?)" received/g;
my $expected_alerts = $ref->safe_psql('postgres',
	"SELECT 'credential_stuffing|' || source_kind || ' ' || source FROM ato.credential_stuffing(now() - interval '1 hour') WHERE suspicious"
	  . " UNION ALL SELECT 'password_spray|' || host(ip_address) FROM ato.password_spray(now() - interval '1 hour') ORDER BY 1");
like($expected_alerts, qr/credential_stuffing\|address 198\.51\.100\.88.*password_spray\|203\.0\.113\.99/s,
	'one node: the spread stuffing and spray are found');
is($proxy->safe_psql('postgres', 'SELECT rule || \'|\' || finding FROM ato.alerts ORDER BY 1'), $expected_alerts,
	'run_proxy_rules: the proxy\'s alerts are one node\'s findings');
is(scalar(@found), scalar(split /\n/, $expected_alerts), 'run_proxy_rules: each new alert announced on the proxy');
is($proxy->safe_psql('postgres', "SELECT ato.run_proxy_rules(interval '1 hour')"), '0', 'run_proxy_rules again: nothing new');
is($proxy->safe_psql('postgres', 'SELECT count(*) = count(*) FILTER (WHERE last_seen_at >= first_seen_at) FROM ato.alerts'),
	't', 'run_proxy_rules again: the alerts seen again');
(undef, undef, $e) = $proxy->psql('postgres', 'SELECT ato.run_proxy_rules(NULL)');
like($e, qr/lookback must not be NULL/, 'run_proxy_rules: a NULL lookback is refused');

# A restored shard whose sequence lost its range: set again, it goes on after
# the ids of its range already taken.
$ref->safe_psql('postgres',
	"INSERT INTO ato.login_events (id, user_id, ip_address, outcome) VALUES ((3::bigint << 48) + 5, 'restored', '192.0.2.1', 'success')");
is($ref->safe_psql('postgres', 'SELECT ato.set_shard_event_ids(2)'), (3 << 48) + 1, 'set_shard_event_ids(2): range 3');
is($ref->safe_psql('postgres', "SELECT ato.record_login('restored', '192.0.2.1', 'success')"), (3 << 48) + 6,
	'set_shard_event_ids: the next id is after those of the range already taken');

$_->stop for values %node;
done_testing();
