
# Copyright (c) ato_response authors
#
# 012_evidence.pl -- chain of custody from the outside: an incident's
# evidence exported with psql (as the README says) is checked by
# example/verify_evidence.py, which knows nothing of the extension; a body
# with non-ASCII text hashes as its UTF-8 bytes (in a LATIN1 database too);
# a line changed, removed or moved in the file, a wrong expected manifest
# hash, and a row changed in the database by a superuser behind disabled
# triggers are each caught.
# And retention says which open incident it keeps a month for.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;

my $python = '/usr/bin/python3';
plan skip_all => 'python3 is needed' unless -x $python;

my $root = $ENV{TESTDIR} // "$FindBin::RealBin/../..";
my $verifier = "$root/example/verify_evidence.py";

my $node = PostgreSQL::Test::Cluster->new('evidence');
$node->init;
$node->append_conf('postgresql.conf', "fsync = off\n");
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION ato_response;
	SELECT ato.create_event_partitions('2024-01-01', '2024-06-30');
	INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, user_agent) VALUES
	    ('u1', '198.51.100.7', 'failure', '2024-03-15 10:00+00', 'curl'),
	    ('u1', '198.51.100.7', 'success', '2024-03-15 10:01+00', 'Mozilla/5.0 (Käse; 東京) "quoted" \ back'),
	    ('u2', '198.51.100.8', 'failure', '2024-03-15 10:02+00', NULL),
	    ('u9', '203.0.113.1', 'success', '2024-03-15 10:03+00', NULL),
	    ('u1', '198.51.100.7', 'success', '2024-01-15 10:00+00', NULL);
	INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address, metadata) VALUES
	    ('u1', 'user.email_changed', '2024-03-15 10:05+00', '198.51.100.7', '{"new": "mallory@example.org", "note": "ü\n"}');
});
my $incident = $node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	SELECT ato.revoke_incident('{u1}', 'takeover of u1 from 198.51.100.0/24');
});
my $preserved = $node->safe_psql('postgres',
	"SELECT ato.preserve_evidence('$incident', since => '2024-03-01', networks => '{198.51.100.0/24}')");
is($preserved, 4, 'the window\'s events of u1 and of the network are preserved');
my $manifest_hash = $node->safe_psql('postgres',
	"SELECT encode(hash, 'hex') FROM ato.evidence_manifests WHERE incident_id = '$incident'");

my $dir = PostgreSQL::Test::Utils::tempdir;
sub export_to
{
	my ($file) = @_;
	my $out = $node->safe_psql('postgres', "SELECT * FROM ato.export_evidence('$incident')");
	open(my $fh, '>:raw', $file) or die "$file: $!";
	print $fh $out, "\n";
	close $fh;
	return $out;
}
sub check
{
	my (@args) = @_;
	my ($stdout, $stderr) = ('', '');
	IPC::Run::run([ $python, $verifier, @args ], '>', \$stdout, '2>', \$stderr);
	return ($? >> 8, $stdout . $stderr);
}
sub rewrite
{
	my ($from, $to, $edit) = @_;
	open(my $in, '<:raw', $from) or die "$from: $!";
	my @lines = <$in>;
	close $in;
	@lines = $edit->(@lines);
	open(my $out, '>:raw', $to) or die "$to: $!";
	print $out @lines;
	close $out;
}

my $export = export_to("$dir/evidence.jsonl");
is(scalar(split /\n/, $export), 1 + 1 + 4, 'the export is a header, the manifest and the four rows');
like($export, qr/東京/, 'non-ASCII text is exported as it is');

my ($rc, $out) = check("$dir/evidence.jsonl");
is($rc, 0, 'the export verifies without the extension') or diag($out);
like($out, qr/^ok: 4 rows, 1 manifests, last manifest hash $manifest_hash$/m, 'with the manifest hash recorded');
($rc, $out) = check("$dir/evidence.jsonl", $manifest_hash);
is($rc, 0, 'and against the manifest hash recorded at preservation') or diag($out);
($rc, $out) = check("$dir/evidence.jsonl", '00' x 32);
is($rc, 1, 'a different expected manifest hash fails');

# Changes to the file: each fails at its line.
rewrite("$dir/evidence.jsonl", "$dir/changed.jsonl",
	sub { my @l = @_; $l[3] =~ s/198\.51\.100\.7/198.51.100.9/; @l });
($rc, $out) = check("$dir/changed.jsonl");
is($rc, 1, 'a row changed in the file fails');
like($out, qr/^FAILED: line 4: row 2 does not match its hash/m, 'at its line');
rewrite("$dir/evidence.jsonl", "$dir/removed.jsonl", sub { my @l = @_; splice(@l, 4, 1); @l });
($rc, $out) = check("$dir/removed.jsonl");
like($out, qr/^FAILED: line 5: row 4 where row 3 was expected/m, 'a row removed from the file fails');
rewrite("$dir/evidence.jsonl", "$dir/moved.jsonl", sub { my @l = @_; @l[2, 3] = @l[3, 2]; @l });
($rc, $out) = check("$dir/moved.jsonl");
like($out, qr/^FAILED: line 3: row 2 where row 1 was expected/m, 'rows swapped in the file fail');
rewrite("$dir/evidence.jsonl", "$dir/truncated.jsonl", sub { my @l = @_; pop @l; @l });
($rc, $out) = check("$dir/truncated.jsonl");
like($out, qr/^FAILED: line 2: manifest 1's head is not the hash of row 4/m, 'the last row removed fails');
rewrite("$dir/evidence.jsonl", "$dir/manifest.jsonl",
	sub { my @l = @_; $l[1] =~ s/2024-03-01T/2024-02-01T/ ? @l : die 'no manifest text to change' });
($rc, $out) = check("$dir/manifest.jsonl");
like($out, qr/^FAILED: line 2: manifest 1 does not match its hash/m, 'a manifest changed in the file fails');

# A superuser changes a row behind disabled triggers: verify_evidence()
# and the next export's verification both catch it.
$node->safe_psql('postgres', q{
	ALTER TABLE ato.evidence_rows DISABLE TRIGGER ALL;
	UPDATE ato.evidence_rows SET body = replace(body, 'mallory', 'alice') WHERE n = 4;
	ALTER TABLE ato.evidence_rows ENABLE TRIGGER ALL;
});
my ($vrc, $vout, $verr) = $node->psql('postgres', "SELECT ok, rows, first_bad FROM ato.verify_evidence('$incident')");
is($vout, 'f|4|4', 'verify_evidence catches the changed row');
like($verr, qr/WARNING:  verify_evidence: the incident's evidence is not intact: position 4/, 'and says where');
$export = export_to("$dir/tampered.jsonl");
like($export, qr/"verified": false/, 'the export of tampered evidence says it does not verify');
($rc, $out) = check("$dir/tampered.jsonl", $manifest_hash);
is($rc, 1, 'and the outside check fails');
like($out, qr/^FAILED: line 6: row 4 does not match its hash/m, 'at the changed row');

# In a LATIN1 database the hashes are over the UTF-8 bytes all the same: an
# export in UTF-8 verifies.
$node->safe_psql('postgres',
	q{CREATE DATABASE latin ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0});
my $latin_incident;
{
	local $ENV{PGCLIENTENCODING} = 'UTF8';
	$latin_incident = $node->safe_psql('latin', q{
		SET client_min_messages = warning;
		CREATE EXTENSION ato_response;
		INSERT INTO ato.login_events (user_id, ip_address, outcome, user_agent)
		VALUES ('jörg', '198.51.100.7', 'success', 'Mozilla/5.0 (Käse; Ü)');
		SELECT ato.revoke_incident('{jörg}', 'takeover of jörg');
	});
	is($node->safe_psql('latin', "SELECT ato.preserve_evidence('$latin_incident')"), 1,
		'LATIN1: the event is preserved');
	my $latin = $node->safe_psql('latin', "SELECT * FROM ato.export_evidence('$latin_incident')");
	open(my $fh, '>:raw', "$dir/latin.jsonl") or die "$dir/latin.jsonl: $!";
	print $fh $latin, "\n";
	close $fh;
}
($rc, $out) = check("$dir/latin.jsonl");
is($rc, 0, 'LATIN1: the UTF-8 export verifies without the extension') or diag($out);

# Retention keeps the months of the open incident's window, and says why.
my ($drc, $dout, $derr) = $node->psql('postgres', q{SET timezone = 'UTC'; SELECT ato.drop_event_partitions('2024-07-01')});
is($dout, 4, 'January and February go');
like($derr, qr/NOTICE:  drop_event_partitions: ato\.login_events_p2024_03 is kept: it holds events of the window of open incident $incident \(from 2024-03-01/,
	'March stays, and the NOTICE names the incident');
like($derr, qr/HINT:  No destructive cleanup during an active incident/, 'with a hint');
($drc, $dout, $derr) = $node->psql('postgres', q{SET ato_response.retention = '30d'; SELECT ato.apply_retention()});
is($dout, 0, 'apply_retention keeps them too');
like($derr, qr/ato\.audit_events_p2024_06 is kept/, 'and says so');

$node->stop;
done_testing();
