
# Copyright (c) ato_response authors
#
# 001_geoip.pl -- GeoIP enrichment and look-ups against generated MaxMind DB
# fixtures (test/geo/write_test_mmdb.pl): both record layouts, every ingest
# path (INSERT, COPY, record_login/record_event), replacing the file on disk
# and changing the setting under a live session, and every way a database
# can be unusable (missing, garbage, empty, corrupt, vanished after a good
# open).  Damage done to a file in place, and corrupt files renamed into
# place, are tested in 005_geoip_file_damage.pl.  The server must survive all of it without a restart.

use strict;
use warnings;

use File::Copy qw(copy);
use FindBin;
use Time::HiRes qw(usleep);

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use AtoSession;

my $root = $ENV{TESTDIR} // "$FindBin::RealBin/../..";

# ---------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------

my $geo = PostgreSQL::Test::Utils::tempdir;
system_or_bail($^X, "$root/test/geo/write_test_mmdb.pl", $geo);
for my $f (qw(city asn flat flat-ipv4-only corrupt garbage))
{
	ok(-s "$geo/$f.mmdb", "fixture $f.mmdb generated");
}
ok(-e "$geo/empty.mmdb" && !-s "$geo/empty.mmdb", 'fixture empty.mmdb is empty');

my $city = "$geo/city.mmdb";
my $asn = "$geo/asn.mmdb";
my $flat = "$geo/flat.mmdb";
my $flat4 = "$geo/flat-ipv4-only.mmdb";
my $corrupt = "$geo/corrupt.mmdb";
my $garbage = "$geo/garbage.mmdb";
my $empty = "$geo/empty.mmdb";

# Replace $dst the way the extension asks for: write beside it, rename over.
sub install_file
{
	my ($src, $dst) = @_;
	copy($src, "$dst.tmp") or die "copy $src to $dst.tmp: $!";
	rename("$dst.tmp", $dst) or die "rename $dst.tmp to $dst: $!";
	return;
}

sub count_of
{
	my ($re, $text) = @_;
	my @m = ($text =~ /$re/g);
	return scalar @m;
}

sub login_count
{
	my ($node) = @_;
	return $node->safe_psql('postgres', 'SELECT count(*) FROM ato.login_events');
}

my $enrichment_cols =
  "coalesce(country_code, '-'), coalesce(asn::text, '-'), coalesce(as_org, '-'), "
  . "coalesce(latitude::text, '-'), coalesce(longitude::text, '-')";

sub logins
{
	my ($node, $pattern, $setup) = @_;
	$setup //= '';
	return $node->safe_psql('postgres',
		"$setup SELECT user_id, $enrichment_cols FROM ato.login_events "
		  . "WHERE user_id LIKE '$pattern' ORDER BY occurred_at, id");
}

# ---------------------------------------------------------------------------
# The node
# ---------------------------------------------------------------------------

my $node = PostgreSQL::Test::Cluster->new('geo');
$node->init;
# The fixtures map documentation ranges, as a database of one's own maps
# private networks to offices: look them up (the default skips them).
$node->append_conf('postgresql.conf', "fsync = off\nato_response.locate_special_addresses = on\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ato_response');
my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

# ---------------------------------------------------------------------------
# 7. A database never configured: the ASN one is '' by default.
# ---------------------------------------------------------------------------

is( $node->safe_psql(
		'postgres',
		q{SELECT database, setting, path IS NULL, loaded, database_type IS NULL,
		         opened_at IS NULL, problem IS NULL, lookups, misses, errors
		    FROM ato.geoip_status() WHERE database = 'asn'}),
	'asn|ato_response.asn_database|t|f|t|t|t|0|0|0',
	'never configured ASN database: not loaded, no path, no problem');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM ato.geoip_status()}),
	'2', 'geoip_status() has one row per database');

# ---------------------------------------------------------------------------
# 1. MaxMind layout: city.mmdb + asn.mmdb from postgresql.conf
# ---------------------------------------------------------------------------

$node->append_conf('postgresql.conf',
	"ato_response.geoip_database = '$city'\nato_response.asn_database = '$asn'\n");
$node->reload;
$node->poll_query_until('postgres',
	"SELECT current_setting('ato_response.asn_database') = '$asn'")
  or die 'reload did not apply the GeoIP settings';

is( $node->safe_psql(
		'postgres',
		q{SET timezone = 'UTC';
		  SELECT database, path, loaded, database_type, built_at, ip_version,
		         node_count > 0, opened_at IS NOT NULL, problem IS NULL
		    FROM ato.geoip_status() ORDER BY database}),
	"asn|$asn|t|ATO-Test-ASN|2024-01-01 00:00:00+00|6|t|t|t\n"
	  . "geoip|$city|t|ATO-Test-City|2024-01-01 00:00:00+00|6|t|t|t",
	'both databases loaded with their metadata');

# INSERT, IPv4 and IPv6, every enrichment column.
$node->safe_psql(
	'postgres', q{
	INSERT INTO ato.login_events (user_id, ip_address, outcome) VALUES
	    ('ins-v4',          '192.0.2.1',         'success'),
	    ('ins-v4-us',       '198.51.100.7',      'failure'),
	    ('ins-v6',          '2001:db8:1::5',     'success'),
	    ('ins-v6-au',       '2001:db8:2::1',     'challenge'),
	    ('ins-v4-mapped',   '::ffff:192.0.2.77', 'success'),
	    ('ins-registered',  '100.64.0.9',        'success'),
	    ('ins-invalid-iso', '100.64.1.1',        'success'),
	    ('ins-unknown',     '10.0.0.1',          'success'),
	    ('ins-no-ip',       NULL,                'success');
	INSERT INTO ato.login_events (user_id, ip_address, outcome, country_code)
	    VALUES ('ins-given-country', '192.0.2.2', 'success', 'ZZ');
	INSERT INTO ato.login_events (user_id, ip_address, outcome, country_code, asn, as_org, latitude, longitude)
	    VALUES ('ins-given-all', '192.0.2.3', 'success', 'YY', 1, 'Given Org', 1.5, 2.5);
});
is( logins($node, 'ins-%'),
	join("\n",
		'ins-v4|GB|64500|Example Transit Ltd|51.5142|-0.0931',
		'ins-v4-us|US|64501|Example Cloud Hosting|40.7128|-74.006',
		'ins-v6|DE|64502|Example IPv6 Net|52.52|13.405',
		'ins-v6-au|AU|-|-|-33.8688|151.2093',
		'ins-v4-mapped|GB|64500|Example Transit Ltd|51.5142|-0.0931',
		'ins-registered|FR|-|-|-|-',
		'ins-invalid-iso|-|-|-|-|-',
		'ins-unknown|-|-|-|-|-',
		'ins-no-ip|-|-|-|-|-',
		'ins-given-country|ZZ|64500|Example Transit Ltd|51.5142|-0.0931',
		'ins-given-all|YY|1|Given Org|1.5|2.5'),
	'INSERT: v4/v6 enrichment, registered_country fallback, invalid code, miss, caller values kept'
);
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FILTER (WHERE latitude = 51.5142 AND longitude = -0.0931),
		         count(*) FILTER (WHERE latitude = 52.52 AND longitude = 13.405)
		    FROM ato.login_events WHERE user_id LIKE 'ins-%'}),
	'3|1', 'coordinates are the exact doubles of the database');

$node->safe_psql(
	'postgres', q{
	INSERT INTO ato.audit_events (actor_id, event_type, ip_address, target_type, target_id)
	VALUES ('aud-ins-v6', 'user.email_changed', '2001:db8:2::9', 'user', 'u1'),
	       ('aud-ins-v4', 'user.mfa.factor.activate', '198.51.100.99', 'factor', 'f1');
});
is( $node->safe_psql(
		'postgres',
		"SELECT actor_id, $enrichment_cols FROM ato.audit_events WHERE actor_id LIKE 'aud-ins-%' ORDER BY id"
	),
	"aud-ins-v6|AU|-|-|-33.8688|151.2093\n"
	  . "aud-ins-v4|US|64501|Example Cloud Hosting|40.7128|-74.006",
	'INSERT into audit_events is enriched too');

# COPY FROM STDIN (psql reads the data from the same script).
my ($ret, $out, $err) = $node->psql(
	'postgres',
	"COPY ato.login_events (user_id, ip_address, outcome, occurred_at) FROM STDIN;\n"
	  . "copy-v4\t192.0.2.10\tSUCCESS\t2024-03-01 10:00:00+00\n"
	  . "copy-v6\t2001:db8:1::abcd\tFailure\t2024-03-01 10:01:00+00\n"
	  . "copy-registered\t100.64.0.200\tchallenge\t2024-03-01 10:02:00+00\n"
	  . "copy-unknown\t10.0.0.1\tsuccess\t2024-03-01 10:03:00+00\n"
	  . "copy-no-ip\t\\N\tsuccess\t2024-03-01 10:04:00+00\n"
	  . "\\.\n");
is($ret, 0, 'COPY FROM STDIN succeeds');
is($err, '', 'COPY FROM STDIN: no warning');
is( $node->safe_psql(
		'postgres',
		"SELECT user_id, outcome, $enrichment_cols FROM ato.login_events WHERE user_id LIKE 'copy-%' ORDER BY id"
	),
	join("\n",
		'copy-v4|success|GB|64500|Example Transit Ltd|51.5142|-0.0931',
		'copy-v6|failure|DE|64502|Example IPv6 Net|52.52|13.405',
		'copy-registered|challenge|FR|-|-|-|-',
		'copy-unknown|success|-|-|-|-|-',
		'copy-no-ip|success|-|-|-|-|-'),
	'COPY FROM STDIN rows are enriched like INSERT');

# COPY FROM a file the server reads.
my $csv = "$geo/audit.csv";
open my $fh, '>', $csv or die "cannot write $csv: $!";
print $fh "copyfile-v4,user.password_changed,198.51.100.1,2024-03-02 00:00:00+00\n";
print $fh "copyfile-v6,user.password_changed,2001:db8:1::1,2024-03-02 00:00:01+00\n";
print $fh "copyfile-unknown,user.password_changed,203.0.113.200,2024-03-02 00:00:02+00\n";
close $fh;
$node->safe_psql('postgres',
	"COPY ato.audit_events (actor_id, event_type, ip_address, occurred_at) FROM '$csv' (FORMAT csv)"
);
is( $node->safe_psql(
		'postgres',
		"SELECT actor_id, $enrichment_cols FROM ato.audit_events WHERE actor_id LIKE 'copyfile-%' ORDER BY id"
	),
	join("\n",
		'copyfile-v4|US|64501|Example Cloud Hosting|40.7128|-74.006',
		'copyfile-v6|DE|64502|Example IPv6 Net|52.52|13.405',
		'copyfile-unknown|BR|-|-|-23.5505|-46.6333'),
	'COPY FROM file rows are enriched');

# record_login / record_event.
is( $node->safe_psql(
		'postgres', qq{
	SELECT ato.record_login('rec-v4', '198.51.100.200', 'FAILURE') AS id \\gset
	SELECT user_id, outcome, $enrichment_cols FROM ato.login_events WHERE id = :id;
	SELECT ato.record_login('rec-v6', '2001:db8:1::77', 'success', '2024-05-05 05:05:05+00') AS id \\gset
	SELECT user_id, outcome, $enrichment_cols FROM ato.login_events WHERE id = :id;
	SELECT ato.record_event('rec-actor', 'user.email_changed', now(), '192.0.2.200', 'user', 'rec-v4') AS id \\gset
	SELECT actor_id, event_type, $enrichment_cols FROM ato.audit_events WHERE id = :id;
	SELECT ato.record_event('rec-actor-noip', 'user.session.revoke') AS id \\gset
	SELECT actor_id, event_type, $enrichment_cols FROM ato.audit_events WHERE id = :id;
	}),
	join("\n",
		'rec-v4|failure|US|64501|Example Cloud Hosting|40.7128|-74.006',
		'rec-v6|success|DE|64502|Example IPv6 Net|52.52|13.405',
		'rec-actor|user.email_changed|GB|64500|Example Transit Ltd|51.5142|-0.0931',
		'rec-actor-noip|user.session.revoke|-|-|-|-|-'),
	'record_login and record_event enrich');

# With the default (off), the same documentation addresses get nothing from
# the database, whatever it maps them to; ato.geoip() still says what it says.
is( $node->safe_psql(
		'postgres', qq{
	SET ato_response.locate_special_addresses = off;
	SELECT ato.record_login('rec-special', '198.51.100.200', 'success') AS id \\gset
	SELECT user_id, $enrichment_cols FROM ato.login_events WHERE id = :id;
	SELECT ato.geoip_country('198.51.100.200');
	}),
	join("\n", 'rec-special|-|-|-|-|-', 'US'),
	'special-purpose addresses get no GeoIP fields by default');

# Explicit look-ups.
is( $node->safe_psql(
		'postgres',
		q{SELECT country_code, city, latitude, longitude, asn, as_org, network FROM ato.geoip('192.0.2.1')}
	),
	'GB|London|51.5142|-0.0931|64500|Example Transit Ltd|192.0.2.0/24',
	'ato.geoip() IPv4: every field');
is( $node->safe_psql(
		'postgres',
		q{SELECT country_code, city, latitude, longitude, asn, as_org, network FROM ato.geoip('2001:db8:1::5')}
	),
	'DE|Berlin|52.52|13.405|64502|Example IPv6 Net|2001:db8:1::/48',
	'ato.geoip() IPv6: every field');
is( $node->safe_psql(
		'postgres',
		q{SELECT country_code, city, latitude, asn, network FROM ato.geoip('::ffff:192.0.2.77')}),
	'GB|London|51.5142|64500|::ffff:192.0.2.0/120',
	'ato.geoip() IPv4-mapped IPv6 is looked up as IPv4');
is( $node->safe_psql(
		'postgres',
		q{SELECT country_code, city IS NULL, latitude IS NULL, asn IS NULL, network FROM ato.geoip('100.64.0.9')}
	),
	'FR|t|t|t|100.64.0.0/24',
	'ato.geoip() registered_country fallback');
is( $node->safe_psql(
		'postgres',
		q{SELECT country_code IS NULL, network FROM ato.geoip('100.64.1.1')}),
	't|100.64.1.0/24',
	'ato.geoip() invalid country code is NULL, record still found');
is( $node->safe_psql(
		'postgres',
		q{SELECT ato.geoip('10.0.0.1') IS NULL, ato.geoip_country('10.0.0.1') IS NULL,
		         ato.geoip(NULL) IS NULL, ato.geoip_country(NULL) IS NULL}),
	't|t|t|t',
	'misses and NULL input are NULL');
is( $node->safe_psql(
		'postgres',
		q{SELECT ato.geoip_country('192.0.2.1'), ato.geoip_country('198.51.100.1'),
		         ato.geoip_country('2001:db8:2::1'), ato.geoip_country('100.64.0.9'),
		         coalesce(ato.geoip_country('100.64.1.1'), '-')}),
	'GB|US|AU|FR|-',
	'ato.geoip_country()');
is( $node->safe_psql(
		'postgres',
		q{SELECT details->'geoip'->'city'->'names'->>'en',
		         details->'geoip'->'location'->>'accuracy_radius',
		         details->'asn'->>'autonomous_system_number',
		         details->'asn'->>'autonomous_system_organization'
		    FROM ato.geoip('192.0.2.1')}),
	'London|10|64500|Example Transit Ltd',
	'ato.geoip() details hold both records');
is( $node->safe_psql(
		'postgres',
		q{SELECT asn IS NULL, details ? 'asn', details ? 'geoip' FROM ato.geoip('2001:db8:2::1')}),
	't|f|t',
	'ato.geoip() details without an ASN record');
is( $node->safe_psql(
		'postgres',
		q{SELECT ato.geoip_country('192.0.2.1'), ato.geoip_country('10.0.0.1') IS NULL;
		  SELECT database, lookups, misses, errors FROM ato.geoip_status() ORDER BY database}),
	"GB|t\nasn|0|0|0\ngeoip|2|1|0",
	'geoip_status() counts this session\'s look-ups and misses');

# The location setting turned off: look-ups refuse (55000), events are
# stored and still get the ASN fields, with no warning.
($ret, $out, $err) = $node->psql(
	'postgres', q{
	\set VERBOSITY verbose
	SET ato_response.geoip_database = '';
	INSERT INTO ato.login_events (user_id, ip_address, outcome) VALUES ('off-v4', '192.0.2.1', 'success');
	SELECT loaded, problem IS NULL, path IS NULL FROM ato.geoip_status() WHERE database = 'geoip';
	SELECT ato.geoip_country('192.0.2.1');
	},
	on_error_stop => 0);
is($out, 'f|t|t', 'empty geoip_database: not loaded, no problem');
like(
	$err,
	qr/ERROR:  55000: no GeoIP database is configured\n.*HINT:  Set ato_response.geoip_database to the path of a MaxMind DB file/s,
	'empty geoip_database: explicit look-up raises 55000 with a hint');
is(count_of(qr/WARNING/, $err), 0, 'empty geoip_database: no warning on insert');
is(logins($node, 'off-%'), 'off-v4|-|64500|Example Transit Ltd|-|-',
	'empty geoip_database: row stored, ASN fields from the ASN database');

# ---------------------------------------------------------------------------
# 2. Flat layout
# ---------------------------------------------------------------------------

my $flat_set = "SET ato_response.geoip_database = '$flat'; SET ato_response.asn_database = '';";
($ret, $out, $err) = $node->psql(
	'postgres', qq{
	$flat_set
	INSERT INTO ato.login_events (user_id, ip_address, outcome) VALUES
	    ('flat-v4', '192.0.2.1', 'success'),
	    ('flat-ca', '198.51.100.7', 'success'),
	    ('flat-v6', '2001:db8:1::5', 'success'),
	    ('flat-mapped', '::ffff:198.51.100.7', 'success'),
	    ('flat-miss', '2001:db8:2::1', 'success');
	});
is($ret, 0, 'flat layout: insert succeeds');
is($err, '', 'flat layout: no warning');
is( logins($node, 'flat-%'),
	join("\n",
		'flat-v4|NL|-|-|-|-', 'flat-ca|CA|-|-|-|-',
		'flat-v6|SE|-|-|-|-', 'flat-mapped|CA|-|-|-|-',
		'flat-miss|-|-|-|-|-'),
	'flat layout: country_code from the flat record');
is( $node->safe_psql(
		'postgres',
		qq{$flat_set
		SELECT country_code, city IS NULL, latitude IS NULL, asn IS NULL, network, details::text
		  FROM ato.geoip('192.0.2.1');
		SELECT ato.geoip_country('2001:db8:1::5');
		SELECT database_type, ip_version FROM ato.geoip_status() WHERE database = 'geoip'}),
	qq{NL|t|t|t|192.0.2.0/24|{"geoip": {"country_code": "NL"}}\nSE\nATO-Test-Flat|6},
	'flat layout: explicit look-ups');

# IPv4-only tree: IPv6 addresses are misses, not errors.
($ret, $out, $err) = $node->psql(
	'postgres', qq{
	SET ato_response.geoip_database = '$flat4'; SET ato_response.asn_database = '';
	INSERT INTO ato.login_events (user_id, ip_address, outcome) VALUES
	    ('v4only-v4', '192.0.2.1', 'success'),
	    ('v4only-v6', '2001:db8:1::5', 'success'),
	    ('v4only-mapped', '::ffff:192.0.2.9', 'success');
	SELECT ato.geoip('2001:db8:1::5') IS NULL, ato.geoip_country('2001:db8:1::5') IS NULL;
	SELECT country_code, network FROM ato.geoip('::ffff:192.0.2.9');
	SELECT ip_version, loaded, problem IS NULL, lookups, misses, errors FROM ato.geoip_status() WHERE database = 'geoip';
	});
is($ret, 0, 'IPv4-only database: statements succeed');
is($err, '', 'IPv4-only database: no warning, no error');
is( $out,
	"t|t\nIE|::ffff:192.0.2.0/120\n4|t|t|6|3|0",
	'IPv4-only database: IPv6 look-ups are misses; mapped addresses answer');
is( logins($node, 'v4only-%'),
	"v4only-v4|IE|-|-|-|-\nv4only-v6|-|-|-|-|-\nv4only-mapped|IE|-|-|-|-",
	'IPv4-only database: IPv6 row stored unenriched');

# ---------------------------------------------------------------------------
# 3. Replacing the file on disk, and changing the setting, under a session
# ---------------------------------------------------------------------------

my $swapdir = PostgreSQL::Test::Utils::tempdir;
my $live = "$swapdir/live.mmdb";
install_file($city, $live);
$node->append_conf('postgresql.conf', "ato_response.geoip_database = '$live'\n");
$node->reload;
$node->poll_query_until('postgres',
	"SELECT current_setting('ato_response.geoip_database') = '$live'")
  or die 'reload did not apply the new path';

my $bg = session($node);
my $pid = bq($bg, 'SELECT pg_backend_pid()');
is(bq($bg, "SELECT ato.geoip_country('192.0.2.1')"), 'GB', 'live file: city answers GB');
my $opened1 = bq($bg,
	"SELECT opened_at FROM ato.geoip_status() WHERE database = 'geoip'");

install_file($flat, $live);
my ($answer, $stderr) = bqe($bg, "SELECT ato.geoip_country('192.0.2.1')");
is($answer, 'NL', 'file renamed over: the same session answers from the new file');
is($stderr, '', 'file renamed over: no warning or error');
is( bq($bg,
		"SELECT path, loaded, database_type, problem IS NULL, opened_at > '$opened1' FROM ato.geoip_status() WHERE database = 'geoip'"
	),
	"$live|t|ATO-Test-Flat|t|t",
	'file renamed over: status shows the new file, reopened');
($answer, $stderr) = bqe($bg,
	"INSERT INTO ato.login_events (user_id, ip_address, outcome) VALUES ('swap-insert', '192.0.2.1', 'success')"
);
is($stderr, '', 'file renamed over: insert without warning');
is(logins($node, 'swap-%'), 'swap-insert|NL|64500|Example Transit Ltd|-|-',
	'file renamed over: enrichment uses the new file (ASN database unchanged)');

# Inside one transaction: the next statement sees the new file.
bq($bg, 'BEGIN');
is(bq($bg, "SELECT ato.geoip_country('2001:db8:1::5')"), 'SE', 'in a transaction: flat answers');
install_file($city, $live);
is(bq($bg, "SELECT ato.geoip_country('2001:db8:1::5')"), 'DE',
	'in a transaction: the next statement answers from the replacement');
bq($bg, 'COMMIT');

# SIGHUP: the setting changes in postgresql.conf, the session follows.
$node->append_conf('postgresql.conf', "ato_response.geoip_database = '$flat4'\n");
$node->reload;
my $seen = '';
for (my $i = 0; $i < 10 * $PostgreSQL::Test::Utils::timeout_default; $i++)
{
	$seen = bq($bg, "SELECT ato.geoip_country('192.0.2.1')");
	last if $seen eq 'IE';
	usleep(100_000);
}
is($seen, 'IE', 'SIGHUP: the live session uses the newly configured database');
is( bq($bg,
		"SELECT current_setting('ato_response.geoip_database'), pg_backend_pid()"),
	"$flat4|$pid",
	'SIGHUP: same backend, new setting');
is( bq($bg,
		"SELECT path, database_type, ip_version FROM ato.geoip_status() WHERE database = 'geoip'"
	),
	"$flat4|ATO-Test-Flat|4",
	'SIGHUP: status shows the new database');
ok( $node->poll_query_until(
		'postgres', "SELECT ato.geoip_country('192.0.2.1')", 'IE'),
	'SIGHUP: new sessions use the new database');
$bg->quit;

# ---------------------------------------------------------------------------
# 4. Unusable files: events are stored, one warning per condition, explicit
#    look-ups raise.
# ---------------------------------------------------------------------------

my $warn_hint =
  qr/HINT:  Point ato_response\.geoip_database at a readable MaxMind DB file; ato\.geoip_status\(\) shows the condition\./;
my $error_hint =
  qr/HINT:  Point ato_response\.geoip_database at a readable MaxMind DB file/;

my @bad = (
	[ 'missing', "$geo/no-such-file.mmdb", '58P01', qr/could not open the file: No such file or directory/ ],
	[ 'garbage', $garbage, 'XX001', qr/not a valid MaxMind DB file: The MaxMind DB file contains invalid metadata/ ],
	[ 'empty', $empty, 'XX001', qr/the file is empty/ ],);

for my $case (@bad)
{
	my ($name, $path, $sqlstate, $problem) = @$case;
	my $before = login_count($node);
	my $s = session($node,
		"SET ato_response.geoip_database = '$path'",
		"SET ato_response.asn_database = ''");

	my (undef, $err1) = bqe($s,
		"INSERT INTO ato.login_events (user_id, ip_address, outcome) VALUES ('$name-1', '192.0.2.1', 'success')"
	);
	like(
		$err1,
		qr/WARNING:  $sqlstate: GeoIP database "\Q$path\E" is not usable: $problem/,
		"$name: insert warns with SQLSTATE $sqlstate");
	like($err1, qr/DETAIL:  Events are stored, without the fields this database would add\./,
		"$name: warning says events are stored");
	like($err1, $warn_hint, "$name: warning hint names the setting");
	is(count_of(qr/WARNING:/, $err1), 1, "$name: exactly one warning for the first insert");
	unlike($err1, qr/ERROR/, "$name: the first insert does not fail");

	my (undef, $err2) = bqe($s,
		"INSERT INTO ato.login_events (user_id, ip_address, outcome) VALUES ('$name-2', '198.51.100.7', 'failure'), ('$name-3', '2001:db8:1::5', 'success')"
	);
	is($err2, '', "$name: the second insert in the session does not warn again");

	my (undef, $err3) = bqe($s,
		"SELECT ato.record_login('$name-4', '192.0.2.5', 'success') > 0");
	is($err3, '', "$name: record_login in the session does not warn again");

	is(bq($s, "SELECT count(*), count(country_code), count(asn), count(latitude) FROM ato.login_events WHERE user_id LIKE '$name-%'"),
		'4|0|0|0', "$name: all rows stored, none enriched");
	is(login_count($node), $before + 4, "$name: the row count grew by 4");

	my $status = bq($s,
		"SELECT loaded, path, problem FROM ato.geoip_status() WHERE database = 'geoip'");
	like($status, qr/^f\|\Q$path\E\|$problem$/, "$name: status not loaded, problem says why");

	my ($o, $e) = bqe($s, "SELECT ato.geoip('192.0.2.1')");
	like(
		$e,
		qr/ERROR:  $sqlstate: GeoIP database "\Q$path\E" is not usable: $problem/,
		"$name: ato.geoip() raises $sqlstate");
	like($e, $error_hint, "$name: ato.geoip() hint names the setting");
	($o, $e) = bqe($s, "SELECT ato.geoip_country('2001:db8:1::5')");
	like($e, qr/ERROR:  $sqlstate: GeoIP database "\Q$path\E" is not usable: $problem/,
		"$name: ato.geoip_country() raises $sqlstate");
	like($e, $error_hint, "$name: ato.geoip_country() hint names the setting");
	$s->quit;

	# A fresh session warns again (once per backend), and COPY is not rejected.
	($ret, $out, $err) = $node->psql(
		'postgres',
		"SET ato_response.geoip_database = '$path';\n"
		  . "COPY ato.login_events (user_id, ip_address, outcome) FROM STDIN;\n"
		  . "$name-copy-1\t192.0.2.1\tsuccess\n"
		  . "$name-copy-2\t2001:db8:1::5\tsuccess\n" . "\\.\n");
	is($ret, 0, "$name: COPY succeeds");
	is(count_of(qr/WARNING:  GeoIP database/, $err), 1, "$name: COPY in a new session warns once");
	is( $node->safe_psql('postgres',
			"SELECT count(*), count(country_code) FROM ato.login_events WHERE user_id LIKE '$name-copy-%'"),
		'2|0',
		"$name: COPY rows stored unenriched");
}

# corrupt.mmdb opens, but its IPv4 search tree is damaged: the whole-file
# check refuses it, so nothing is enriched from it, not even IPv6 rows
# (before the check, IPv4 look-ups failed and IPv6 ones answered).
{
	my $tree_problem = qr/the search tree is corrupt: node \d+ points outside the data section/;
	my $s = session($node,
		"SET ato_response.geoip_database = '$corrupt'",
		"SET ato_response.asn_database = ''");
	my (undef, $err1) = bqe($s,
		"INSERT INTO ato.login_events (user_id, ip_address, outcome) VALUES ('corrupt-1', '192.0.2.1', 'success')"
	);
	like(
		$err1,
		qr/WARNING:  XX001: GeoIP database "\Q$corrupt\E" is not usable: $tree_problem/,
		'corrupt: insert warns (XX001) that the file was refused');
	is(count_of(qr/WARNING:/, $err1), 1, 'corrupt: one warning');
	my (undef, $err2) = bqe($s,
		"INSERT INTO ato.login_events (user_id, ip_address, outcome) VALUES ('corrupt-2', '198.51.100.7', 'success'), ('corrupt-v6', '2001:db8:1::5', 'success')"
	);
	is($err2, '', 'corrupt: no second warning in the session');
	is( logins($node, 'corrupt-%'),
		"corrupt-1|-|-|-|-|-\ncorrupt-2|-|-|-|-|-\ncorrupt-v6|-|-|-|-|-",
		'corrupt: every row stored unenriched');
	like( bq($s,
			"SELECT loaded, database_type IS NULL, refused_size, problem, errors FROM ato.geoip_status() WHERE database = 'geoip'"
		),
		qr/^f\|t\|1747\|$tree_problem\|0$/,
		'corrupt: status not loaded, the refused file and why');
	my ($o, $e) = bqe($s, "SELECT ato.geoip_country('2001:db8:1::5')");
	like($e, qr/ERROR:  XX001: GeoIP database "\Q$corrupt\E" is not usable: $tree_problem/,
		'corrupt: ato.geoip_country() IPv6 raises data_corrupted');
	($o, $e) = bqe($s, "SELECT ato.geoip('192.0.2.1')");
	like($e, qr/ERROR:  XX001: GeoIP database "\Q$corrupt\E" is not usable: $tree_problem/,
		'corrupt: ato.geoip() raises data_corrupted');
	like($e, $error_hint, 'corrupt: the hint names the setting');
	$s->quit;
}

# A missing ASN database: the location fields still come, the ASN ones do
# not; the warning and the error name the ASN setting.
{
	my $noasn = "$geo/no-such-asn.mmdb";
	my $s = session($node,
		"SET ato_response.geoip_database = '$city'",
		"SET ato_response.asn_database = '$noasn'");
	my (undef, $e) = bqe($s,
		"INSERT INTO ato.login_events (user_id, ip_address, outcome) VALUES ('asn-missing-1', '192.0.2.1', 'success')"
	);
	like($e, qr/WARNING:  58P01: GeoIP database "\Q$noasn\E" is not usable: could not open the file: No such file or directory/,
		'missing ASN database: insert warns');
	like($e, qr/HINT:  Point ato_response\.asn_database at a readable MaxMind DB file/,
		'missing ASN database: the hint names ato_response.asn_database');
	is(count_of(qr/WARNING:/, $e), 1, 'missing ASN database: one warning');
	(undef, $e) = bqe($s,
		"INSERT INTO ato.login_events (user_id, ip_address, outcome) VALUES ('asn-missing-2', '2001:db8:1::5', 'success')"
	);
	is($e, '', 'missing ASN database: no second warning');
	is( logins($node, 'asn-missing-%'),
		"asn-missing-1|GB|-|-|51.5142|-0.0931\nasn-missing-2|DE|-|-|52.52|13.405",
		'missing ASN database: rows get the location fields only');
	is( bq($s, "SELECT database, loaded, problem FROM ato.geoip_status() ORDER BY database"),
		"asn|f|could not open the file: No such file or directory\ngeoip|t|",
		'missing ASN database: status shows which database has the problem');
	is(bq($s, "SELECT ato.geoip_country('192.0.2.1')"), 'GB',
		'missing ASN database: geoip_country() does not need it');
	my ($o, $err) = bqe($s, "SELECT ato.geoip('192.0.2.1')");
	like($err, qr/ERROR:  58P01: GeoIP database "\Q$noasn\E" is not usable/,
		'missing ASN database: ato.geoip() raises 58P01');
	like($err, qr/HINT:  Point ato_response\.asn_database at/,
		'missing ASN database: the error hint names ato_response.asn_database');
	$s->quit;
}

# ---------------------------------------------------------------------------
# 5. A good copy outlives its file
# ---------------------------------------------------------------------------

{
	my $stale = "$swapdir/stale.mmdb";
	install_file($city, $stale);
	my $s = session($node,
		"SET ato_response.geoip_database = '$stale'",
		"SET ato_response.asn_database = ''");
	is(bq($s, "SELECT ato.geoip_country('192.0.2.1')"), 'GB', 'stale: good file opened');
	is( bq($s, "SELECT loaded, problem IS NULL FROM ato.geoip_status() WHERE database = 'geoip'"),
		't|t', 'stale: healthy before the file goes');

	unlink $stale or die "unlink $stale: $!";
	my ($o, $e) = bqe($s, "SELECT ato.geoip_country('192.0.2.1'), ato.geoip_country('2001:db8:2::1')");
	is($o, 'GB|AU', 'stale: deleted file, the session still answers from its copy');
	is($e, '', 'stale: explicit look-up from the copy does not raise');
	is( bq($s,
			"SELECT loaded, database_type, problem FROM ato.geoip_status() WHERE database = 'geoip'"),
		't|ATO-Test-City|the file is gone (No such file or directory); still using the copy opened before',
		'stale: status loaded, problem says the file is gone and the copy is used');
	(undef, $e) = bqe($s,
		"INSERT INTO ato.login_events (user_id, ip_address, outcome) VALUES ('stale-1', '192.0.2.1', 'success')"
	);
	like($e, qr/WARNING:  58P01: GeoIP database "\Q$stale\E" is not usable: the file is gone/,
		'stale: insert warns that the file is gone');
	is(count_of(qr/WARNING:/, $e), 1, 'stale: one warning');
	(undef, $e) = bqe($s,
		"INSERT INTO ato.login_events (user_id, ip_address, outcome) VALUES ('stale-2', '2001:db8:1::5', 'success')"
	);
	is($e, '', 'stale: no second warning');

	# A new backend has no copy: it stores unenriched and raises on look-ups.
	($ret, $out, $err) = $node->psql(
		'postgres', qq{
		\\set VERBOSITY verbose
		SET ato_response.geoip_database = '$stale';
		SET ato_response.asn_database = '';
		INSERT INTO ato.login_events (user_id, ip_address, outcome) VALUES ('stale-new-backend', '192.0.2.1', 'success');
		SELECT ato.geoip_country('192.0.2.1');
		},
		on_error_stop => 0);
	like($err, qr/WARNING:  58P01: GeoIP database "\Q$stale\E" is not usable: could not open the file: No such file or directory/,
		'stale: a new backend warns that the file is missing');
	like($err, qr/ERROR:  58P01: .*could not open the file/, 'stale: a new backend raises 58P01 on look-up');

	# Garbage renamed over the path: the old copy keeps answering.
	install_file($garbage, $stale);
	($o, $e) = bqe($s, "SELECT ato.geoip_country('192.0.2.1')");
	is($o, 'GB', 'stale: garbage renamed over, still answering from the old copy');
	is($e, '', 'stale: garbage renamed over, no error');
	is( bq($s,
			"SELECT loaded, database_type, problem FROM ato.geoip_status() WHERE database = 'geoip'"),
		't|ATO-Test-City|not a valid MaxMind DB file: The MaxMind DB file contains invalid metadata; still using the copy opened before',
		'stale: status names the bad replacement and the copy in use');
	(undef, $e) = bqe($s,
		"INSERT INTO ato.login_events (user_id, ip_address, outcome) VALUES ('stale-3', '198.51.100.7', 'success')"
	);
	like($e, qr/WARNING:  XX001: GeoIP database "\Q$stale\E" is not usable: not a valid MaxMind DB file/,
		'stale: a new condition warns again');
	is(count_of(qr/WARNING:/, $e), 1, 'stale: one warning for the new condition');

	# An empty file renamed over it: same.
	install_file($empty, $stale);
	is(bq($s, "SELECT ato.geoip_country('198.51.100.7')"), 'US',
		'stale: empty file renamed over, still answering from the old copy');
	is( bq($s, "SELECT problem FROM ato.geoip_status() WHERE database = 'geoip'"),
		'the file is empty; still using the copy opened before',
		'stale: status says the replacement is empty');

	is( logins($node, 'stale-%'),
		join("\n",
			'stale-1|GB|-|-|51.5142|-0.0931',
			'stale-2|DE|-|-|52.52|13.405',
			'stale-new-backend|-|-|-|-|-',
			'stale-3|US|-|-|40.7128|-74.006'),
		'stale: the session enriched from its copy; the new backend could not');

	# A good file again: back to normal.
	install_file($flat, $stale);
	is(bq($s, "SELECT ato.geoip_country('192.0.2.1')"), 'NL', 'stale: good file renamed over, answers from it');
	is( bq($s, "SELECT loaded, database_type, problem IS NULL FROM ato.geoip_status() WHERE database = 'geoip'"),
		't|ATO-Test-Flat|t', 'stale: healthy again');

	# corrupt.mmdb opens cleanly (only its search tree is damaged), but the
	# whole-file check refuses it: the good copy keeps answering.
	install_file($corrupt, $stale);
	($o, $e) = bqe($s, "SELECT ato.geoip_country('192.0.2.1'), ato.geoip_country('2001:db8:1::5')");
	is($o, 'NL|SE', 'stale: corrupt tree renamed over is refused; the good copy answers');
	is($e, '', 'stale: corrupt tree renamed over; no error');
	like( bq($s, "SELECT database_type, problem FROM ato.geoip_status() WHERE database = 'geoip'"),
		qr/^ATO-Test-Flat\|the search tree is corrupt: .*; still using the copy opened before$/,
		'stale: status says the corrupt file was refused and the copy is used');
	$s->quit;
}

# ---------------------------------------------------------------------------
# 6. The server never restarted
# ---------------------------------------------------------------------------

is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'),
	$started, 'the postmaster never restarted');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal/, 'no backend was terminated by a signal');
unlike($log, qr/server process .* exited with exit code|all server processes terminated/,
	'no backend crashed');

$node->stop;
done_testing();
