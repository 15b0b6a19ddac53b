
# Copyright (c) ato_response authors
#
# 003_incidents.pl -- revoke_incident as a listener and the background worker
# see it: one notification per batch carrying its outbox position and no
# account, every revoked account at exactly one position of the outbox; a
# large incident marked by the worker while the call returns at once; the
# marking resumed, nothing done twice and nothing missed, after the worker is
# killed with SIGKILL (a crash of the server), after SIGTERM, and across a
# clean restart; and a consumer that reconnects after the worker was killed
# between a batch's commit and its delivery reading every account exactly
# once from the outbox.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('incidents');
$node->init;
$node->append_conf('postgresql.conf',
	    "fsync = off\n"
	  . "shared_preload_libraries = 'ato_response'\n"
	  . "ato_response.databases = 'postgres'\n"
	  . "restart_after_crash = on\n");
$node->start;

# The application's sessions, with a log of every update of a row, so that
# a row marked twice shows; a statement-level pause makes batches slow
# enough to be interrupted.  The trigger functions set their own
# search_path: an incident runs a table's code with pg_catalog, pg_temp.
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION ato_response;
	CREATE TABLE sessions (id bigserial PRIMARY KEY, user_id text NOT NULL,
	                       ended_at timestamptz, end_reason text, incident_id uuid);
	CREATE INDEX ON sessions (user_id);
	CREATE TABLE session_updates (session_id bigint, incident_id uuid);
	CREATE FUNCTION log_update() RETURNS trigger LANGUAGE plpgsql SET search_path = public AS $$
	BEGIN
	    INSERT INTO session_updates VALUES (NEW.id, NEW.incident_id);
	    RETURN NEW;
	END $$;
	CREATE TRIGGER log_update AFTER UPDATE ON sessions FOR EACH ROW EXECUTE FUNCTION log_update();
	CREATE TABLE pause (seconds float8 NOT NULL);
	INSERT INTO pause VALUES (0);
	CREATE FUNCTION pause() RETURNS trigger LANGUAGE plpgsql SET search_path = public AS $$
	BEGIN
	    PERFORM pg_sleep(seconds) FROM pause;
	    RETURN NULL;
	END $$;
	CREATE TRIGGER pause BEFORE UPDATE ON sessions FOR EACH STATEMENT EXECUTE FUNCTION pause();
	SELECT ato.register_revocation_target('sessions', 'user_id', 'end', state_column => 'ended_at',
	           reason_column => 'end_reason', incident_column => 'incident_id');
});

# Accounts with long ids (so that a batch needs several notifications), in
# groups: group g's accounts are "g-<n>-" padded to 120 bytes.
sub add_accounts
{
	my ($group, $count) = @_;
	$node->safe_psql(
		'postgres', qq{
		INSERT INTO sessions (user_id)
		SELECT rpad('$group-' || a || '-', 120, 'x') FROM generate_series(1, $count) a, generate_series(1, 3);
	});
}

sub accounts_sql
{
	my ($group, $count) = @_;
	return "ARRAY(SELECT rpad('$group-' || a || '-', 120, 'x') FROM generate_series(1, $count) a)";
}

# Give a group accounts and open an incident over them past the background
# threshold, in batches of 20; returns its id.
sub start_background_incident
{
	my ($group, $count, $reason, $options) = @_;
	add_accounts($group, $count);
	$options = defined $options ? ", $options" : '';
	return $node->safe_psql(
		'postgres', qq{
		SET client_min_messages = warning;
		SET ato_response.inline_marking_limit = 100;
		SET ato_response.revocation_batch_size = 20;
		SELECT ato.revoke_incident(@{[ accounts_sql($group, $count) ]}, '$reason'$options);
	});
}

sub wait_batches
{
	my ($incident, $batches) = @_;
	return $node->poll_query_until('postgres',
		"SELECT batches_done >= $batches FROM ato.incidents WHERE id = '$incident'");
}

sub wait_contained
{
	my ($incident) = @_;
	return $node->poll_query_until('postgres',
		"SELECT status = 'contained' FROM ato.incidents WHERE id = '$incident'");
}

# Every session of the group ended by the incident, each updated exactly once.
sub check_marks
{
	my ($group, $count, $incident, $what) = @_;
	my $result = $node->safe_psql(
		'postgres', qq{
		SELECT count(*), count(*) FILTER (WHERE s.incident_id = '$incident'),
		       count(*) FILTER (WHERE u.updates = 1)
		  FROM sessions s
		  LEFT JOIN (SELECT session_id, count(*) AS updates FROM session_updates GROUP BY 1) u
		         ON u.session_id = s.id
		 WHERE s.user_id LIKE '$group-%';
	});
	my $sessions = 3 * $count;
	is($result, "$sessions|$sessions|$sessions",
		"$what: all $sessions sessions ended by the incident, each updated exactly once");
}

# --- Notifications and the outbox ------------------------------------------
# 1,000 accounts in batches of 400, inline (up to 1,024 a revocation fences
# account by account, and marks inline): 3 batches, one notification each
# carrying the batch's outbox position and no account id; a listener in the
# same session receives them at commit and reads the accounts from the outbox.
add_accounts('n', 1000);
my ($out, $err) = ('', '');
$node->psql(
	'postgres', qq{
	LISTEN ato_revocations;
	SET client_min_messages = warning;
	SET ato_response.inline_marking_limit = 100000;
	SET ato_response.revocation_batch_size = 400;
	SELECT ato.revoke_incident(@{[ accounts_sql('n', 1000) ]}, 'notify test');
	SELECT 1;
},
	stdout => \$out,
	stderr => \$err);
my ($notify_incident) = $out =~ /^([0-9a-f-]{36})$/m;
my @payloads = $out =~ /Asynchronous notification "ato_revocations" with payload "(.*?)" received/g;
is(scalar(@payloads), 3, 'the 3 batches sent 3 notifications');
ok(!(grep { /n-\d+-x/ } @payloads), 'no payload names an account');
my @positions = map { /"position":(\d+)/ ? $1 : 'none' } @payloads;
is(join(',', @positions), '1,2,3', 'the payloads carry the positions 1, 2 and 3');
ok(!(grep { !/^\{"incident":"$notify_incident","position":\d+,"batch":\d,"batches":3,"accounts":\d+\}$/ } @payloads),
	'and the incident, the batch and its number of accounts');
my %seen;
for my $row (split /\n/,
	$node->safe_psql('postgres', 'SELECT position, user_id FROM ato.revocations_since(0)'))
{
	my ($position, $account) = split /\|/, $row;
	$seen{$account}{$position} = 1;
}
is(scalar(keys %seen), 1000, 'ato.revocations_since(0) returns every revoked account');
ok(!(grep { keys %$_ != 1 } values %seen), 'each at exactly one position');

# Nothing is sent for an incident that rolls back.
($out, $err) = ('', '');
$node->psql(
	'postgres', q{
	LISTEN ato_revocations;
	SET client_min_messages = warning;
	BEGIN;
	SELECT ato.revoke_incident(ARRAY['n-rolled-back'], 'rolled back') IS NOT NULL;
	ROLLBACK;
	SELECT 1;
},
	stdout => \$out,
	stderr => \$err);
unlike($out, qr/Asynchronous notification/, 'a rolled-back incident sends nothing');

# --- The background worker -------------------------------------------------
# 2,000 accounts in batches of 20 (100 batches), past the threshold: the call
# returns once the accounts are contained and the worker marks the rows.
$node->safe_psql('postgres', 'UPDATE pause SET seconds = 0.05');
my $incident = start_background_incident('k', 2000, 'worker test', 'suspend => true');
like($incident, qr/^[0-9a-f-]{36}$/, 'revoke_incident returned the incident id');
is( $node->safe_psql(
		'postgres', qq{
		SELECT count(*) FROM ato.account_revocations r JOIN ato.account_flags f USING (user_id)
		 WHERE r.incident_id = '$incident' AND f.suspended}),
	'2000',
	'on return, all 2,000 accounts are revoked and suspended');

# pg_stat_activity shows the worker at work; then kill it with SIGKILL in
# the middle of the run, which makes the postmaster restart every backend.
ok( $node->poll_query_until(
		'postgres', q{
		SELECT count(*) > 0 FROM pg_stat_activity
		 WHERE backend_type = 'ato_response incident worker' AND query LIKE 'marking batch % of 100 of incident %'}
	),
	'pg_stat_activity shows the worker marking');
wait_batches($incident, 10);
my $pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'ato_response incident worker'");
my $done_before = $node->safe_psql('postgres',
	"SELECT batches_done FROM ato.incidents WHERE id = '$incident'");
ok($pid =~ /^\d+$/ && $done_before < 100, "killing the worker (pid $pid) after $done_before of 100 batches");
kill 'KILL', $pid;
$node->poll_query_until('postgres', 'SELECT true')
  or die 'the server did not come back after the crash';
ok(wait_contained($incident), 'after the crash the worker resumed and finished the incident');
check_marks('k', 2000, $incident, 'after SIGKILL');
is( $node->safe_psql(
		'postgres', qq{
		SELECT accounts_done || '/' || accounts_total || ' ' || rows_touched
		  FROM ato.incident_progress WHERE incident_id = '$incident'}),
	'2000/2000 6000',
	'the progress view counts every account and row once');

# SIGTERM: the worker stops promptly and is started again.
$incident = start_background_incident('t', 1000, 'sigterm test');
wait_batches($incident, 5);
$node->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'ato_response incident worker'");
ok(wait_contained($incident), 'after SIGTERM the worker was started again and finished');
check_marks('t', 1000, $incident, 'after SIGTERM');

# A clean restart in the middle: the launcher resumes the incident.
$incident = start_background_incident('r', 1000, 'restart test');
wait_batches($incident, 5);
$node->restart;
ok(wait_contained($incident), 'after a restart the launcher resumed the incident');
check_marks('r', 1000, $incident, 'after a restart');
ok( $node->safe_psql(
		'postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ato_response launcher'") ==
	  1,
	'the launcher is running');

# --- Announcements that survive a crash -------------------------------------
# A cache's consumer: LISTEN, and on every wake-up read the outbox on from the
# last position it applied.  It applies the first batches of a 600-account
# incident (30 batches of 20), then is busy in a transaction (notifications
# wait for its end) when the worker is killed with SIGKILL right after a
# batch commits: the crash restart drops the consumer, and that batch's
# notification is never delivered to anyone.  A new consumer connects after
# the restart, LISTENs, and reads on from a position one batch older than the
# last one it applied (as if its cursor was saved late): it must end with
# every account of the incident exactly once, skipping the positions it had
# applied already.
$node->safe_psql('postgres', 'UPDATE pause SET seconds = 0.2');
my %applied;          # position => its accounts, as the cache applied them
my @woken_by;         # the positions the consumers' notifications named
my $skipped = 0;      # positions read again and skipped
my $cursor = 0;
sub consume
{
	my ($session) = @_;
	my $rows = $session->query_safe("SELECT position, user_id FROM ato.revocations_since($cursor)");
	my %batch;
	for my $row (split /\n/, $rows)
	{
		push @woken_by, $1 if $row =~ /^Asynchronous notification .*"position":(\d+)/;
		next unless $row =~ /^(\d+)\|(.+)$/;
		$batch{$1}{$2}++;
	}
	for my $position (sort { $a <=> $b } keys %batch)
	{
		if (exists $applied{$position})        # at least once: skip what was applied
		{
			$skipped++;
			next;
		}
		$applied{$position} = $batch{$position};
		$cursor = $position if $position > $cursor;
	}
}
$cursor = $node->safe_psql('postgres', 'SELECT coalesce(max(position), 0) FROM ato.revocation_outbox');
my $first_position = $cursor + 1;
my $consumer = $node->background_psql('postgres');
$consumer->query_safe('LISTEN ato_revocations');
$incident = start_background_incident('o', 600, 'outbox test');
wait_batches($incident, 3);
consume($consumer);
ok($cursor >= $first_position + 2, "the consumer applied positions $first_position to $cursor before the crash");
$consumer->query_safe('BEGIN');
$consumer->query_safe('SELECT 1');
$pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'ato_response incident worker'");
my $before = $node->safe_psql('postgres', "SELECT batches_done FROM ato.incidents WHERE id = '$incident'");
$node->poll_query_until('postgres',
	"SELECT batches_done > $before FROM ato.incidents WHERE id = '$incident'");
my $committed = $node->safe_psql('postgres', "SELECT batches_done FROM ato.incidents WHERE id = '$incident'");
kill 'KILL', $pid;
$node->poll_query_until('postgres', 'SELECT true')
  or die 'the server did not come back after the crash';
ok($committed > $before && $committed < 30,
	"the worker (pid $pid) was killed right after batch $committed of 30 committed");
my $killed_position = $first_position + $committed - 1;
eval { $consumer->quit };

# The new consumer: LISTEN first, then catch up, then follow the wake-ups
# until the incident is contained and the outbox is read to its end.
my $resumed_from = $cursor - 1;
$cursor = $resumed_from;
$consumer = $node->background_psql('postgres');
$consumer->query_safe('LISTEN ato_revocations');
my $contained = 0;
for (my $i = 0; $i < 1200 && !$contained; $i++)
{
	$contained = $node->safe_psql('postgres', "SELECT status = 'contained' FROM ato.incidents WHERE id = '$incident'") eq 't';
	consume($consumer);
	$consumer->query_safe('SELECT pg_sleep(0.1)') unless $contained;
}
consume($consumer);
ok($contained, "the worker resumed after the crash and finished the incident");
$consumer->quit;
ok(!(grep { $_ == $killed_position } @woken_by),
	"no consumer was woken for position $killed_position, the batch committed just before the kill");
my %accounts;
for my $position (keys %applied)
{
	next if $position < $first_position;
	$accounts{$_} += $applied{$position}{$_} for keys %{ $applied{$position} };
}
is(scalar(grep { /^o-/ } keys %accounts), 600,
	"read on from position $resumed_from, the new consumer has every one of the 600 accounts");
ok(!(grep { $_ != 1 } values %accounts), 'each applied exactly once');
is($skipped, 1, 'the position applied before the crash was read again and skipped');
is(join(',', sort { $a <=> $b } grep { $_ >= $first_position } keys %applied),
	join(',', $first_position .. $first_position + 29), 'from 30 consecutive positions');
check_marks('o', 600, $incident, 'after SIGKILL between commit and delivery');

$node->stop;
done_testing();
