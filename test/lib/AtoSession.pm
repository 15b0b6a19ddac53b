
# Copyright (c) ato_response authors
#
# AtoSession.pm -- background psql sessions for the TAP tests that watch one
# backend across changes under it (the GeoIP tests): a session that keeps
# going after errors and shows SQLSTATEs, and statements whose stderr is
# their own.

package AtoSession;

use strict;
use warnings;

use Exporter 'import';
our @EXPORT = qw(bqe bq session);

# Run one statement in a background session; return its stdout and the
# stderr it alone produced (BackgroundPsql accumulates stderr otherwise).
sub bqe
{
	my ($session, $sql) = @_;
	$session->{stderr} = '';
	my ($out) = $session->query($sql);
	my $err = $session->{stderr};
	$session->{stderr} = '';
	return ($out, $err);
}

# The same, stdout only.
sub bq
{
	my ($out) = bqe(@_);
	return $out;
}

# A background session on database postgres of node that keeps going after
# errors, shows SQLSTATEs, runs in UTC and has run each of @settings.
sub session
{
	my ($node, @settings) = @_;
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	bq($s, '\set VERBOSITY verbose');
	bq($s, "SET timezone = 'UTC'");
	for my $set (@settings)
	{
		my (undef, $err) = bqe($s, $set);
		die "$set failed: $err" if $err ne '';
	}
	return $s;
}

1;
