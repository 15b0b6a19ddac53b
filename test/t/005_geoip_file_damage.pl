
# Copyright (c) ato_response authors
#
# 005_geoip_file_damage.pl -- a GeoIP file damaged under a live session: the
# file truncated or rewritten in place (the backend must not die of SIGBUS:
# it answers from the private copy it verified), and corrupt files renamed
# into place (each is refused whole, the previous database keeps answering,
# ato.geoip_status() says what was refused and why).  Also: a record whose
# map key and string value are not valid UTF-8 gives valid JSON.

use strict;
use warnings;

use File::Copy qw(copy);
use FindBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use AtoSession;

my $root = $ENV{TESTDIR} // "$FindBin::RealBin/../..";

my $geo = PostgreSQL::Test::Utils::tempdir;
system_or_bail($^X, "$root/test/geo/write_test_mmdb.pl", $geo);
my $city = "$geo/city.mmdb";
my $flat = "$geo/flat.mmdb";
my $many = "$geo/many.mmdb";

sub slurp_bytes
{
	my ($path) = @_;
	open my $fh, '<:raw', $path or die "cannot open $path: $!";
	local $/;
	my $bytes = <$fh>;
	close $fh;
	return $bytes;
}

# Write into the existing file, keeping its inode (as cp onto it does).
sub write_in_place
{
	my ($path, $bytes) = @_;
	open my $fh, '+<:raw', $path or die "cannot open $path: $!";
	truncate($fh, 0) or die "truncate $path: $!";
	print {$fh} $bytes or die "write $path: $!";
	close $fh or die "close $path: $!";
	return;
}

# Replace the file the way the extension asks for: write beside, rename over.
sub install_bytes
{
	my ($path, $bytes) = @_;
	open my $fh, '>:raw', "$path.tmp" or die "cannot open $path.tmp: $!";
	print {$fh} $bytes or die "write $path.tmp: $!";
	close $fh or die "close $path.tmp: $!";
	rename("$path.tmp", $path) or die "rename $path.tmp: $!";
	return;
}

my $node = PostgreSQL::Test::Cluster->new('geodamage');
$node->init;
# the fixtures map documentation ranges: look them up (the default skips them)
$node->append_conf('postgresql.conf', "fsync = off\nato_response.locate_special_addresses = on\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ato_response');
my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

my $dir = PostgreSQL::Test::Utils::tempdir;
my $live = "$dir/live.mmdb";
my $city_bytes = slurp_bytes($city);
my $flat_bytes = slurp_bytes($flat);
my $many_bytes = slurp_bytes($many);

# ---------------------------------------------------------------------------
# 1. The file truncated in place under a session that has looked up
# ---------------------------------------------------------------------------

install_bytes($live, $city_bytes);
my $s = session($node,
	"SET ato_response.geoip_database = '$live'",
	"SET ato_response.asn_database = ''");
my $pid = bq($s, 'SELECT pg_backend_pid()');
is(bq($s, "SELECT ato.geoip_country('192.0.2.1'), ato.geoip_country('2001:db8:2::1')"),
	'GB|AU', 'live file: the session answers');

truncate($live, 1000) or die "truncate $live: $!";
my ($out, $err) = bqe($s,
	"SELECT ato.geoip_country('198.51.100.7'), ato.geoip_country('2001:db8:1::5'), pg_backend_pid()");
is($out, "US|DE|$pid",
	'truncated to 1000 bytes in place: the same backend answers from its copy');
is($err, '', 'truncated in place: the look-up does not raise');
is( bq($s,
		q{SELECT loaded, database_type, problem, refused_reason, refused_size,
		         refused_at IS NOT NULL, file_size > 1000
		    FROM ato.geoip_status() WHERE database = 'geoip'}),
	"t|ATO-Test-City|not a valid MaxMind DB file: The MaxMind DB file contains invalid metadata; "
	  . "still using the copy opened before|"
	  . "not a valid MaxMind DB file: The MaxMind DB file contains invalid metadata|1000|t|t",
	'truncated in place: status shows the copy in use and the refused file');

open my $fh, '>', $live or die "cannot empty $live: $!";
close $fh;
($out, $err) = bqe($s,
	"SELECT ato.geoip_country('203.0.113.200'), (ato.geoip('192.0.2.1')).city, pg_backend_pid()");
is($out, "BR|London|$pid", 'emptied in place (: > file): the same backend answers from its copy');
is($err, '', 'emptied in place: no error');
is( bq($s,
		q{SELECT loaded, problem, refused_reason, refused_size
		    FROM ato.geoip_status() WHERE database = 'geoip'}),
	't|the file is empty; still using the copy opened before|the file is empty|0',
	'emptied in place: status says the file is empty and the copy is used');
($out, $err) = bqe($s,
	"INSERT INTO ato.login_events (user_id, ip_address, outcome) VALUES ('trunc-1', '192.0.2.1', 'success') RETURNING country_code"
);
is($out, 'GB', 'emptied in place: enrichment uses the copy');
like($err, qr/WARNING:  XX001: GeoIP database "\Q$live\E" is not usable: the file is empty; still using the copy/,
	'emptied in place: enrichment warns once about the file');

# A good file written in place (same inode) is picked up; so is a second one.
write_in_place($live, $flat_bytes);
($out, $err) = bqe($s, "SELECT ato.geoip_country('192.0.2.1'), pg_backend_pid()");
is($out, "NL|$pid", 'a good file written in place is loaded');
is($err, '', 'a good file written in place: no error');
is( bq($s,
		q{SELECT database_type, problem IS NULL, file_size FROM ato.geoip_status() WHERE database = 'geoip'}),
	'ATO-Test-Flat|t|' . length($flat_bytes),
	'a good file written in place: status shows it, healthy');

# A new backend while the file is truncated has no copy: a clear error.
truncate($live, 1000) or die "truncate $live: $!";
is(bq($s, "SELECT ato.geoip_country('192.0.2.1'), pg_backend_pid()"), "NL|$pid",
	'truncated again: the session still answers');
my ($ret, $o, $e) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSET ato_response.geoip_database = '$live';\nSELECT ato.geoip_country('192.0.2.1');",
	on_error_stop => 0);
like($e, qr/ERROR:  XX001: GeoIP database "\Q$live\E" is not usable: not a valid MaxMind DB file/,
	'truncated: a new backend raises data_corrupted');
$s->quit;

# The same with a file of several pages: the answers need pages that a
# shared mapping would have lost.
my $big = "$dir/big.mmdb";
install_bytes($big, $many_bytes);
$s = session($node,
	"SET ato_response.geoip_database = '$big'",
	"SET ato_response.asn_database = ''");
$pid = bq($s, 'SELECT pg_backend_pid()');
my $q = "SELECT string_agg(coalesce(ato.geoip_country(('100.' || b || '.' || c || '.1')::inet), '-'), '') "
  . "FROM generate_series(65, 68) b, generate_series(0, 255, 15) c";
my $expect = bq($s, $q);
like($expect, qr/^[A-Z]{144}$/, 'many networks: every sampled address answers');
truncate($big, 1000) or die "truncate $big: $!";
is(bq($s, "SELECT ($q) || '|' || pg_backend_pid()"), "$expect|$pid",
	'a file of several pages truncated to 1000 bytes: the same answers, same backend');
open $fh, '>', $big or die "cannot empty $big: $!";
close $fh;
is(bq($s, "SELECT ($q) || '|' || pg_backend_pid()"), "$expect|$pid",
	'the same file emptied: the same answers, same backend');
$s->quit;

is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'),
	$started, 'truncation in place: the postmaster did not restart');

# ---------------------------------------------------------------------------
# 2. Corrupt files renamed into place: refused whole, the previous copy
#    keeps answering, status names the refused file and the reason.
# ---------------------------------------------------------------------------

install_bytes($live, $city_bytes);
$s = session($node,
	"SET ato_response.geoip_database = '$live'",
	"SET ato_response.asn_database = ''");
$pid = bq($s, 'SELECT pg_backend_pid()');
my $good = 'GB|US|DE|AU|FR';
my $probe = "SELECT ato.geoip_country('192.0.2.1'), ato.geoip_country('198.51.100.7'), "
  . "ato.geoip_country('2001:db8:1::5'), ato.geoip_country('2001:db8:2::1'), ato.geoip_country('100.64.0.9')";
is(bq($s, $probe), $good, 'corruption: the good file answers');
my $nodes = bq($s, "SELECT node_count FROM ato.geoip_status() WHERE database = 'geoip'");
my $tree = 7 * $nodes;    # 28-bit records: 7 bytes a node
my $marker = rindex($city_bytes, "\xAB\xCD\xEFMaxMind.com");
die "no metadata marker in city.mmdb" if $marker < 0;

# A 28-bit left record of node $n set to $value.
sub set_left_record
{
	my ($bytes, $n, $value) = @_;
	my $at = 7 * $n;
	substr($bytes, $at, 3) = pack('C3', ($value >> 16) & 0xFF, ($value >> 8) & 0xFF, $value & 0xFF);
	my $middle = ord(substr($bytes, $at + 3, 1)) & 0x0F;
	substr($bytes, $at + 3, 1) = chr($middle | (($value >> 20) & 0xF0));
	return $bytes;
}

sub left_record
{
	my ($bytes, $n) = @_;
	my @b = unpack('C4', substr($bytes, 7 * $n, 4));
	return (($b[3] & 0xF0) << 20) | ($b[0] << 16) | ($b[1] << 8) | $b[2];
}

my $mid = int($nodes / 2);
my $record_size_at = index($city_bytes, "record_size", $marker);
my @variants = (
	[ 'tree: a node overwritten with 0xFF',
		sub { my $b = shift; substr($b, 7 * $mid, 7) = "\xFF" x 7; $b },
		qr/^(node \d+: The MaxMind DB file's search tree is corrupt|the search tree is corrupt: node $mid points outside the data section)$/ ],
	[ 'tree: a record pointing at the root',
		sub { set_left_record(shift, $mid, 0) },
		qr/^(node \d+: The MaxMind DB file's search tree is corrupt|the search tree is corrupt: node $mid points back to the root)$/ ],
	[ 'tree: a record pointing at its own node',
		sub { set_left_record(shift, $mid, $mid) },
		qr/^the search tree is corrupt: node \d+ leads back to itself$/ ],
	[ 'tree: a record redirected to another subtree',
		sub { my $b = shift; set_left_record($b, 1, left_record($b, $mid)) },
		qr/^the search tree is corrupt: \d+ of its $nodes nodes cannot be reached from the root$/ ],
	[ 'tree: the separator after it not zero',
		sub { my $b = shift; substr($b, $tree + 5, 1) = "\x01"; $b },
		qr/^the 16 bytes after the search tree are not zero \(byte \d+\)$/ ],
	[ 'data: the first record turned into a string',
		sub { my $b = shift; my $c = ord(substr($b, $tree + 16, 1)); substr($b, $tree + 16, 1) = chr(0x40 | ($c & 0x1F)); $b },
		qr/^the record at data offset 0 is damaged: The MaxMind DB file's data section contains bad data/ ],
	[ 'data: the first record given an unknown type',
		sub { my $b = shift; substr($b, $tree + 16, 2) = "\x00\xFF"; $b },
		qr/^the record at data offset 0 is damaged: / ],
	[ 'metadata: the marker damaged',
		sub { my $b = shift; substr($b, $marker + 6, 1) = 'Q'; $b },
		qr/^not a valid MaxMind DB file: The MaxMind DB file contains invalid metadata$/ ],
	[ 'metadata: record_size 28 made 24',
		sub { my $b = shift; substr($b, $record_size_at + 12, 1) = chr(24); $b },
		qr/^the 16 bytes after the search tree are not zero \(byte \d+\)$/ ],
	[ 'a truncated copy (the first half)',
		sub { substr(shift, 0, int(length($city_bytes) / 2)) },
		qr/^not a valid MaxMind DB file: The MaxMind DB file contains invalid metadata$/ ],);

die "record_size not found in the metadata" if $record_size_at < 0;
is(ord(substr($city_bytes, $record_size_at + 12, 1)), 28, 'corruption: record_size located in the metadata');

for my $v (@variants)
{
	my ($name, $damage, $reason) = @$v;
	my $bytes = $damage->($city_bytes);
	isnt($bytes, $city_bytes, "$name: the bytes differ");
	install_bytes($live, $bytes);
	my ($answer, $errors) = bqe($s, "$probe, pg_backend_pid()");
	is($answer, "$good|$pid", "$name: refused, the previous copy answers");
	is($errors, '', "$name: the look-ups do not raise");
	my $status = bq($s,
		"SELECT loaded, database_type, refused_size, refused_reason, problem "
		  . "FROM ato.geoip_status() WHERE database = 'geoip'");
	my ($loaded, $type, $size, $why, $problem) = split /\|/, $status, 5;
	is("$loaded|$type|$size", 't|ATO-Test-City|' . length($bytes),
		"$name: status still shows the good copy, and the refused file's size");
	like($why, $reason, "$name: status says why it was refused");
	is($problem, "$why; still using the copy opened before", "$name: problem names the copy in use");

	# a backend with no copy cannot use it: a clear error
	my ($r, $o, $e) = $node->psql('postgres',
		"\\set VERBOSITY verbose\nSET ato_response.geoip_database = '$live';\nSELECT ato.geoip_country('192.0.2.1');",
		on_error_stop => 0);
	like($e, qr/ERROR:  XX001: GeoIP database "\Q$live\E" is not usable: /,
		"$name: a new backend raises data_corrupted");
}

# A node count whose tree size wraps 32 bits: libmaxminddb computes the
# tree's size as node_count * record bytes in 32 bits, so with 24-bit
# records (6 bytes a node) node_count + 2^31 comes back to the real size and
# the file opens as if whole; a walk trusting node_count reads gigabytes past
# the copy (on the code before this check, a SIGSEGV: the server restarts).
my $v4 = slurp_bytes("$geo/flat-ipv4-only.mmdb");
my $v4_marker = rindex($v4, "\xAB\xCD\xEFMaxMind.com");
my $node_count_at = index($v4, "node_count", $v4_marker);
die "node_count not found in flat-ipv4-only.mmdb" if $v4_marker < 0 || $node_count_at < 0;
my $control = ord(substr($v4, $node_count_at + 10, 1));
die "node_count is not a uint32" if ($control & 0xE0) != 0xC0;
my $v4_nodes = unpack('N', ("\0" x 4 . substr($v4, $node_count_at + 11, $control & 0x1F)) =~ s/^.*(.{4})$/$1/sr);
my $wrapped = $v4;
substr($wrapped, $node_count_at + 10, 1 + ($control & 0x1F)) = pack('C N', 0xC4, $v4_nodes + 2**31);
install_bytes($live, $wrapped);
my ($answer, $errors) = bqe($s, "$probe, pg_backend_pid()");
is($answer, "$good|$pid", 'a node count that wraps 32 bits: refused, the previous copy answers');
like( bq($s, "SELECT refused_reason FROM ato.geoip_status() WHERE database = 'geoip'"),
	qr/^the metadata's node count \(\d+ nodes of 6 bytes\) does not fit the file's \d+ bytes$/,
	'a node count that wraps 32 bits: status says why');
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'),
	$started, 'a node count that wraps 32 bits: the postmaster did not restart');

# The good file again: loaded, healthy, the last refusal still shown.
install_bytes($live, $flat_bytes);
is(bq($s, "SELECT ato.geoip_country('192.0.2.1'), pg_backend_pid()"), "NL|$pid",
	'corruption: a good file renamed over is loaded');
is( bq($s,
		"SELECT database_type, problem IS NULL, refused_reason IS NOT NULL FROM ato.geoip_status() WHERE database = 'geoip'"
	),
	'ATO-Test-Flat|t|t',
	'corruption: healthy again; the last refusal is still shown');
$s->quit;

# ---------------------------------------------------------------------------
# 3. Map keys and strings that are not valid UTF-8: valid JSON
# ---------------------------------------------------------------------------

my $badutf8 = "$geo/bad-utf8.mmdb";
$node->safe_psql('postgres',
	"CREATE DATABASE utf8db ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
$node->safe_psql('postgres',
	"CREATE DATABASE latin1db ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
for my $db (qw(utf8db latin1db))
{
	$node->safe_psql($db, 'CREATE EXTENSION ato_response');
}
is( $node->safe_psql(
		'utf8db',
		"SET ato_response.geoip_database = '$badutf8'; SET ato_response.asn_database = '';
		 SELECT country_code, details ->> 'geoip' FROM ato.geoip('192.0.2.1')"),
	"PT|{\"k\xEF\xBF\xBD(ey!\": \"v\xEF\xBF\xBDal\xEF\xBF\xBD\xEF\xBF\xBD\", \"country_code\": \"PT\"}",
	'invalid UTF-8 in a key and a value: valid JSON, bad bytes as U+FFFD (UTF8 database)');
is( $node->safe_psql(
		'latin1db',
		"SET client_encoding = 'UTF8'; SET ato_response.geoip_database = '$badutf8'; SET ato_response.asn_database = '';
		 SELECT details ->> 'geoip' FROM ato.geoip('192.0.2.1')"),
	'{"k?(ey!": "v?al??", "country_code": "PT"}',
	'invalid UTF-8 in a key and a value: valid JSON, bad bytes as ? (LATIN1 database)');
is( $node->safe_psql(
		'latin1db',
		"SET client_encoding = 'UTF8'; SET ato_response.geoip_database = '$city'; SET ato_response.asn_database = '';
		 SELECT details -> 'geoip' -> 'city' ->> 'names' FROM ato.geoip('192.0.2.1')"),
	'{"en": "London"}',
	'valid records are unchanged in a LATIN1 database');

is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'),
	$started, 'the postmaster never restarted');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal/, 'no backend was terminated by a signal');

$node->stop;
done_testing();
