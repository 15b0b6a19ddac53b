
# Copyright (c) ato_response authors
#
# 010_example_app.pl -- the README's integration guide, run: the example
# shop (example/shop.py, Debian's python3-psycopg) with its own tables and
# least-privilege roles (example/grants.sql, example/schema.sql) goes through
# an incident drill (example/drill.py): 300 users, 40 taken over from one
# network, revoked in one call, every attacker session refused and every
# bystander's kept, the cache of revoked accounts caught up after a
# reconnect and listening for the next one.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;

my $python = '/usr/bin/python3';
plan skip_all => 'Debian\'s python3 with python3-psycopg is needed'
  unless system("$python -c 'import psycopg' 2>/dev/null") == 0;

my $node = PostgreSQL::Test::Cluster->new('example');
$node->init;
$node->append_conf('postgresql.conf', "fsync = off\n");
$node->start;

my $root = $ENV{TESTDIR} // "$FindBin::RealBin/../..";
my $example = "$root/example";

$node->safe_psql('postgres', q{
	CREATE EXTENSION ato_response;
	CREATE ROLE shop_app LOGIN;
	CREATE ROLE shop_cache LOGIN;
	CREATE ROLE shop_oncall LOGIN;
	CREATE ROLE shop_owner LOGIN;
	GRANT CREATE ON DATABASE postgres TO shop_owner;
});
my ($rc, $out, $err) = $node->psql('postgres', undef,
	extra_params => [ '-v', 'ON_ERROR_STOP=1', '-v', 'app=shop_app', '-v', 'cache=shop_cache',
		'-v', 'oncall=shop_oncall', '-v', 'app_owner=shop_owner', '-f', "$example/grants.sql" ]);
is($rc, 0, 'example/grants.sql gives the roles their grants') or diag($err);
($rc, $out, $err) = $node->psql('postgres', undef,
	extra_params => [ '-U', 'shop_owner', '-v', 'ON_ERROR_STOP=1', '-v', 'app=shop_app',
		'-f', "$example/schema.sql" ]);
is($rc, 0, 'the owner creates and registers the shop\'s tables') or diag($err);

my $dsn = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';
my ($stdout, $stderr) = ('', '');
my $ok = IPC::Run::run([ $python, "$example/drill.py", "$dsn user=shop_app",
		"$dsn user=shop_cache", "$dsn user=shop_oncall" ],
	'>', \$stdout, '2>', \$stderr);
note($stdout);
diag($stderr) if $stderr ne '';
ok($ok, 'the drill passes every check');
unlike($stdout, qr/^FAILED/m, 'no check of the drill failed');
like($stdout, qr/^ok +all 50 attacker sessions are refused as revoked$/m, 'the attacker is out');
like($stdout, qr/^ok +the 260 bystanders' sessions work$/m, 'the bystanders are not');
like($stdout, qr/^session check, one per request/m, 'it measures the check');

$node->stop;
done_testing();
