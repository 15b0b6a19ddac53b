
# Copyright (c) ato_response authors
#
# 013_incident_report.pl -- the incident report in a real browser: the page
# ato.incident_report() writes (psql -XAt, as the README says) renders in
# Debian's headless chromium with no console message (no script error, no
# load the page's Content-Security-Policy refused), its DOM holds the attack
# curve's SVG and the attacker's "<script>" user agent as text, not as an
# element; and a screenshot of it is kept in the test's log directory
# (tmp_check/log/013_incident_report.png, beside the page).  A control page
# with a failing script shows that the console check would catch one.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Copy;

my ($chromium) = grep { -x $_ } map { "$_/chromium" } split(/:/, $ENV{PATH} // ''), '/usr/bin';
plan skip_all => 'chromium is not installed (apt-get install chromium); the report is not rendered'
  unless $chromium;

my $node = PostgreSQL::Test::Cluster->new('report');
$node->init;
$node->append_conf('postgresql.conf', "fsync = off\n");
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION ato_response;
	INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, user_agent)
	SELECT 'u' || (g % 7), ('198.51.100.' || (g % 5 + 1))::inet,
	       CASE WHEN g % 23 = 0 THEN 'success' ELSE 'failure' END,
	       now() - interval '40 minutes' + g * interval '4 seconds',
	       CASE WHEN g = 3 THEN '<script>console.error("xss")</script>'
	            WHEN g = 4 THEN '"><img src=x onerror=console.error(1)>' ELSE 'python-requests/2.31' END
	  FROM generate_series(1, 500) g;
	INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address, target_type, target_id) VALUES
	    ('u0', 'user.email_changed', now() - interval '20 minutes', '198.51.100.1', 'user', '<svg onload=alert(1)>');
	SELECT ato.block_network('198.51.100.0/24', 'credential stuffing');
	SELECT ato.register_downstream_app('Slack', 'admin.users.session.reset');
	SELECT ato.register_secret('deploy API key', 'api_key', 'rotate in the CI secrets store');
});
my $incident = $node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	SELECT ato.revoke_incident(ARRAY['u0', 'u1', 'u2', 'u3', 'u4', 'u5', 'u6'], 'credential stuffing <b>bold?</b>',
	                           mfa_reenrollment_required => true);
});
$node->safe_psql('postgres', qq{
	SELECT ato.notify_users('$incident');
	SELECT ato.record_downstream_obligations('$incident');
	SELECT ato.confirm_downstream_revocation('$incident', 'Slack', '{u0,u1}', 'ticket IR-1');
});

my $dir = $PostgreSQL::Test::Utils::log_path;
my $page = "$dir/013_incident_report.html";
my $shot = "$dir/013_incident_report.png";
my $home = PostgreSQL::Test::Utils::tempdir;

my ($ret, $html, $stderr) = $node->psql('postgres', "SELECT ato.incident_report('$incident')",
	extra_params => [ '-X', '-A', '-t' ]);
is($ret, 0, 'the report is written') or diag($stderr);
open(my $fh, '>:raw', $page) or die "$page: $!";
print $fh $html;
close $fh;
like($html, qr/^<!DOCTYPE html>/, 'it is an HTML page');
unlike($html, qr/<script/i, 'it carries no script');
unlike($html, qr/<[^>]*\s(?:src|href)\s*=/i, 'it loads nothing');

sub chromium
{
	my ($url, @args) = @_;
	my ($out, $err) = ('', '');
	local $ENV{HOME} = $home;
	IPC::Run::run(
		[
			$chromium, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
			'--disable-extensions', '--enable-logging=stderr', '--v=0',
			"--user-data-dir=$home/profile", @args, $url
		],
		'>', \$out, '2>', \$err,
		IPC::Run::timeout(180));
	return ($? >> 8, $out, $err);
}
sub console_lines
{
	my ($err) = @_;
	return grep { /CONSOLE|Uncaught|Refused to/ } split /\n/, $err;
}

# The check is sound: a page whose script fails is caught.
my $control = "$home/control.html";
open(my $ch, '>', $control) or die "$control: $!";
print $ch '<!DOCTYPE html><html><body><script>throw new Error("control failure")</script></body></html>';
close $ch;
my ($crc, $cdom, $cerr) = chromium("file://$control", '--dump-dom');
ok((grep { /control failure/ } console_lines($cerr)), 'a failing script on a control page shows on the console')
  or diag($cerr);

my ($rc, $dom, $err) = chromium("file://$page", '--dump-dom');
is($rc, 0, 'chromium renders the report') or diag($err);
my @console = console_lines($err);
is(scalar(@console), 0, 'with nothing on the console: no script error, nothing refused') or diag(join("\n", @console));
like($dom, qr/<svg[^>]*id="attack-curve"/, 'the DOM holds the attack curve');
like($dom, qr/<rect class="successes"/, 'with its successes');
like($dom, qr/<line class="contained"/, 'and the containment moment');
like($dom, qr/<tr class="contained">/, 'which the timeline marks too');
unlike($dom, qr/<script/i, 'the attacker\'s user agent made no script element');
like($dom, qr/&lt;script&gt;console\.error\("xss"\)&lt;\/script&gt;/, 'it is shown as text');
unlike($dom, qr/<img/i, 'nor did the attribute breaker make an image');
unlike($dom, qr/<svg onload/i, 'nor the event field an svg');
like($dom, qr/credential stuffing &lt;b&gt;bold\?&lt;\/b&gt;/, 'the reason is text too');
like($dom, qr/Slack/, 'the outstanding downstream revocations are listed');

unlink $shot;
my ($src, $sout, $serr) = chromium("file://$page", "--screenshot=$shot", '--window-size=1280,2400',
	'--hide-scrollbars');
is($src, 0, 'chromium takes a screenshot') or diag($serr);
ok(-s $shot && -s $shot > 20000, "the screenshot is kept: $shot") or diag($serr);
open(my $png, '<:raw', $shot) or die "$shot: $!";
read($png, my $head, 24);
close $png;
is(substr($head, 0, 8), "\x89PNG\r\n\x1a\n", 'it is a PNG');
is(join('x', unpack('NN', substr($head, 16, 8))), '1280x2400', 'of the window\'s size');
note("report: $page, screenshot: $shot");

$node->stop;
done_testing();
