
# Copyright (c) ato_response authors
#
# IdpStories.pm -- account-takeover stories told in each identity provider's
# own event shapes, for the TAP tests: Okta System Log LogEvent objects,
# Auth0 log events (Logs API), Microsoft Entra ID signIn and directoryAudit
# resources (Microsoft Graph), each with the fields their documentation's
# full examples show.  Every story has three accounts:
#
#   victim    four weeks of logins from the United States; then six failed
#             logins from four addresses, four second-factor pushes denied
#             and a fifth approved, a success from Russia, and changes that
#             keep the attacker in (a role grant, a new user, MFA factors
#             reset or added, an API credential, a new e-mail)
#   hijacked  a session opened in the United States, used from Russia
#   flagged   a success the provider itself flagged (risk, anonymiser)
#
# story(provider, t0, part) returns the events (array of hashes) of part
# 'history' (the weeks before t0) or 'attack' (t0 to t0 + 40 s); expected()
# lists the alerts each story must raise: [rule, account] pairs.

package IdpStories;

use strict;
use warnings;

use Exporter 'import';
use JSON::PP;
use POSIX qw(strftime);

our @EXPORT = qw(story story_json expected_alerts account_ids);

my $US1 = '8.8.8.8';
my $US2 = '8.8.4.4';
my $ATTACKER = '5.188.10.69';    # RU in the bundled database
my @GUESSERS = ('81.2.69.160', '133.11.0.1', '200.160.2.3', '85.214.132.117');    # GB, JP, BR, DE

my %ids = (
	okta => {
		victim => '00u1vict1m0000000001',
		hijacked => '00u1h1jack000000002',
		flagged => '00u1flagg3d00000003'
	},
	auth0 => {
		victim => 'auth0|66a1f00000000000000000v1',
		hijacked => 'auth0|66a1f00000000000000000h2',
		flagged => 'auth0|66a1f00000000000000000f3'
	},
	entra => {
		victim => '1f0c0a11-0000-4000-8000-00000000v1c7',
		hijacked => '1f0c0a11-0000-4000-8000-00000000h1j2',
		flagged => '1f0c0a11-0000-4000-8000-00000000f1a3'
	});

sub account_ids { my ($provider) = @_; return $ids{$provider}; }

# The alerts every story raises from the default rules.
sub expected_alerts
{
	my ($provider) = @_;
	my $a = $ids{$provider};
	return [
		[ 'failed_login_bursts', $a->{victim} ],
		[ 'mfa_fatigue_logins', $a->{victim} ],
		[ 'new_country_logins', $a->{victim} ],
		[ 'persistence_changes', $a->{victim} ],
		[ 'session_hijacks', $a->{hijacked} ],
		[ 'provider_flagged_logins', $a->{flagged} ]
	];
}

sub iso
{
	my ($t) = @_;
	return strftime('%Y-%m-%dT%H:%M:%S', gmtime(int $t)) . sprintf('.%03dZ', ($t - int $t) * 1000);
}

my $serial = 0;
sub uid { my ($p, $t) = @_; return sprintf('%s-%012d-%06d', $p, int($t), ++$serial); }

# --- Okta --------------------------------------------------------------------
sub okta_event
{
	my (%e) = @_;
	my $user = $e{user};
	my $ip = $e{ip};
	return {
		uuid => $e{uuid},
		published => iso($e{t}),
		eventType => $e{type},
		version => '0',
		severity => $e{severity} // 'INFO',
		legacyEventType => $e{legacy},
		displayMessage => $e{message} // $e{type},
		actor => {
			id => $user,
			type => 'User',
			alternateId => "$user\@example.com",
			displayName => 'Pat Example',
			detailEntry => undef
		},
		client => {
			userAgent => {
				rawUserAgent =>
				  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
				os => 'Windows 10',
				browser => 'CHROME'
			},
			zone => 'null',
			device => 'Computer',
			id => undef,
			ipAddress => $ip,
			geographicalContext => {
				city => undef,
				state => undef,
				country => undef,
				postalCode => undef,
				geolocation => undef
			}
		},
		device => undef,
		authenticationContext => {
			authenticationProvider => undef,
			credentialProvider => undef,
			credentialType => undef,
			issuer => undef,
			interface => undef,
			authenticationStep => 0,
			externalSessionId => $e{session} // 'unknown'
		},
		outcome => { result => $e{result} // 'SUCCESS', reason => $e{reason} },
		target => $e{target} // [],
		transaction => { type => 'WEB', id => "tx$e{uuid}", detail => {} },
		debugContext => {
			debugData => {
				requestId => "rq$e{uuid}",
				requestUri => '/idp/idx/identify',
				url => '/idp/idx/identify?',
				threatSuspected => $e{threat} // 'false',
				($e{risk} ? (risk => $e{risk}) : ()),
				($e{factor} ? (factor => $e{factor}) : ())
			}
		},
		securityContext => {
			asNumber => undef,
			asOrg => undef,
			isp => undef,
			domain => undef,
			isProxy => $e{proxy} ? JSON::PP::true : JSON::PP::false
		},
		request => { ipChain => [ { ip => $ip, version => 'V4', source => undef } ] }
	};
}

sub okta_story
{
	my ($t0, $part) = @_;
	my $a = $ids{okta};
	my @ev;
	my $e = sub { my %x = @_; $x{uuid} //= uid('okta', $x{t}); push @ev, okta_event(%x); };
	if ($part eq 'history')
	{
		for my $day (reverse 1 .. 28)
		{
			for my $who (qw(victim hijacked flagged))
			{
				my $t = $t0 - $day * 86400 - 3600 * 8;
				$e->(t => $t, user => $a->{$who}, ip => $day % 2 ? $US1 : $US2, type => 'user.session.start',
					legacy => 'core.user_auth.login_success', message => 'User login to Okta',
					session => "102hist$day$who");
			}
		}
		return \@ev;
	}
	my $v = $a->{victim};
	for my $i (0 .. 5)
	{
		$e->(t => $t0 + $i * 2, user => $v, ip => $GUESSERS[ $i % 4 ], type => 'user.session.start',
			legacy => 'core.user_auth.login_failed', message => 'User login to Okta',
			result => 'FAILURE', reason => 'INVALID_CREDENTIALS', severity => 'WARN');
	}
	for my $i (0 .. 3)
	{
		$e->(t => $t0 + 12 + $i * 2, user => $v, ip => $ATTACKER, type => 'system.push.send_factor_verify_push',
			message => 'Push notification sent for verification', factor => 'OKTA_VERIFY_PUSH',
			session => '102attack0000001');
		$e->(t => $t0 + 13 + $i * 2, user => $v, ip => $ATTACKER, type => 'user.mfa.okta_verify.deny_push',
			message => 'User rejected Okta push verify', severity => 'WARN', session => '102attack0000001');
	}
	$e->(t => $t0 + 20, user => $v, ip => $ATTACKER, type => 'system.push.send_factor_verify_push',
		message => 'Push notification sent for verification', factor => 'OKTA_VERIFY_PUSH', session => '102attack0000001');
	$e->(t => $t0 + 21, user => $v, ip => $ATTACKER, type => 'user.authentication.auth_via_mfa',
		legacy => 'core.user.factor.attempt_success', message => 'Authentication of user via MFA',
		factor => 'OKTA_VERIFY_PUSH', session => '102attack0000001');
	$e->(t => $t0 + 22, user => $v, ip => $ATTACKER, type => 'user.session.start',
		legacy => 'core.user_auth.login_success', message => 'User login to Okta', session => '102attack0000001');
	my @changes = (
		[ 'user.account.privilege.grant', 'Grant user privilege',
			[ { id => $v, type => 'User', alternateId => "$v\@example.com", displayName => 'Pat Example' },
			  { id => 'SUPER_ADMIN', type => 'ROLE', alternateId => 'unknown', displayName => 'Super administrator' } ] ],
		[ 'user.lifecycle.create', 'Create Okta user',
			[ { id => '00u1backd00r0000004', type => 'User', alternateId => 'helpdesk2@example.com', displayName => 'Help Desk' } ] ],
		[ 'user.mfa.factor.reset_all', 'Reset all factors for user',
			[ { id => $v, type => 'User', alternateId => "$v\@example.com", displayName => 'Pat Example' } ] ],
		[ 'user.mfa.factor.activate', 'Activate factor or authenticator',
			[ { id => 'pfd1attack00000005', type => 'AuthenticatorEnrollment', alternateId => 'unknown', displayName => 'Okta Verify' } ] ],
		[ 'system.api_token.create', 'Create API token',
			[ { id => '00T1t0ken000000006', type => 'Token', alternateId => 'unknown', displayName => 'automation' } ] ]);
	my $i = 0;
	for my $c (@changes)
	{
		$e->(t => $t0 + 24 + $i++, user => $v, ip => $ATTACKER, type => $c->[0], message => $c->[1],
			target => $c->[2], session => '102attack0000001');
	}
	# the hijacked session: opened at home, then used from the attacker's network
	$e->(t => $t0 + 3, user => $a->{hijacked}, ip => $US1, type => 'user.session.start',
		legacy => 'core.user_auth.login_success', message => 'User login to Okta', session => '102stolen0000001');
	$e->(t => $t0 + 30, user => $a->{hijacked}, ip => $ATTACKER, type => 'user.authentication.sso',
		message => 'User single sign on to app', session => '102stolen0000001',
		target => [ { id => '0oa1app00000000007', type => 'AppInstance', alternateId => 'Payroll', displayName => 'Payroll' } ]);
	# Okta's own verdict: an anonymising proxy, risk high
	$e->(t => $t0 + 8, user => $a->{flagged}, ip => $US2, type => 'user.session.start',
		legacy => 'core.user_auth.login_success', message => 'User login to Okta', proxy => 1, threat => 'true',
		risk => '{reasons=Anonymous Proxy, level=HIGH}', session => '102flagged000001');
	return \@ev;
}

# --- Auth0 -------------------------------------------------------------------
sub auth0_event
{
	my (%e) = @_;
	return {
		date => iso($e{t}),
		type => $e{type},
		description => $e{description},
		connection => 'Username-Password-Authentication',
		connection_id => 'con_8Xh2Ld0YqP3mW1Zt',
		client_id => 'Kq4xT8nB2vR6yH1jL0pW3sD5fG7zC9aE',
		client_name => 'My App',
		ip => $e{ip},
		user_agent => 'Chrome 124.0.0 / Windows 10.0.0',
		hostname => 'example.eu.auth0.com',
		user_id => $e{user},
		user_name => 'pat@example.com',
		strategy => 'auth0',
		strategy_type => 'database',
		log_id => $e{log_id},
		isMobile => JSON::PP::false,
		details => $e{details} // {}
	};
}

sub auth0_story
{
	my ($t0, $part) = @_;
	my $a = $ids{auth0};
	my @ev;
	my $e = sub {
		my %x = @_;
		$x{log_id} //= sprintf('900%014d%020d', int($x{t}), ++$serial);
		push @ev, auth0_event(%x);
	};
	if ($part eq 'history')
	{
		for my $day (reverse 1 .. 28)
		{
			for my $who (qw(victim hijacked flagged))
			{
				$e->(t => $t0 - $day * 86400 - 3600 * 8, user => $a->{$who}, ip => $day % 2 ? $US1 : $US2,
					type => 's', description => 'Successful login',
					details => { prompts => [], session_id => "hist$day$who", stats => { loginsCount => 40 - $day } });
			}
		}
		return \@ev;
	}
	my $v = $a->{victim};
	for my $i (0 .. 5)
	{
		$e->(t => $t0 + $i * 2, user => $v, ip => $GUESSERS[ $i % 4 ], type => 'fp',
			description => 'Wrong email or password.', details => { error => { message => 'Wrong email or password.' } });
	}
	for my $i (0 .. 3)
	{
		$e->(t => $t0 + 12 + $i * 2, user => $v, ip => $ATTACKER, type => 'gd_send_pn',
			description => 'Push notification sent', details => { authenticator => { type => 'push' } });
		$e->(t => $t0 + 13 + $i * 2, user => $v, ip => $ATTACKER, type => 'gd_auth_rejected',
			description => 'Push notification was rejected', details => { authenticator => { type => 'push' } });
	}
	$e->(t => $t0 + 20, user => $v, ip => $ATTACKER, type => 'gd_send_pn', description => 'Push notification sent',
		details => { authenticator => { type => 'push' } });
	$e->(t => $t0 + 21, user => $v, ip => $ATTACKER, type => 'gd_auth_succeed',
		description => 'Second factor authentication succeeded', details => { authenticator => { type => 'push' } });
	$e->(t => $t0 + 22, user => $v, ip => $ATTACKER, type => 's', description => 'Successful login',
		details => { prompts => [], session_id => 'atk0000000000001', stats => { loginsCount => 41 } });
	my $i = 0;
	for my $c (
		[ 'sce', 'Successful change email' ],
		[ 'gd_unenroll', 'Second factor unenrolled' ],
		[ 'gd_enrollment_complete', 'Guardian enrollment complete' ])
	{
		$e->(t => $t0 + 24 + $i++, user => $v, ip => $ATTACKER, type => $c->[0], description => $c->[1]);
	}
	$e->(t => $t0 + 3, user => $a->{hijacked}, ip => $US1, type => 's', description => 'Successful login',
		details => { prompts => [], session_id => 'st0len0000000001' });
	$e->(t => $t0 + 30, user => $a->{hijacked}, ip => $ATTACKER, type => 'ssa', description => 'Successful silent authentication',
		details => { prompts => [], session_id => 'st0len0000000001' });
	# Auth0's risk assessment (Adaptive MFA): confidence low is a likely attack
	$e->(t => $t0 + 8, user => $a->{flagged}, ip => $US2, type => 's', description => 'Successful login',
		details => {
			prompts => [],
			session_id => 'fl4gged000000001',
			riskAssessment => {
				confidence => 'low',
				version => '1',
				assessments => {
					UntrustedIP => { confidence => 'low', code => 'found_on_deny_list' },
					NewDevice => { confidence => 'low', code => 'no_match' },
					ImpossibleTravel => { confidence => 'neutral', code => 'missing_geoip' }
				}
			}
		});
	return \@ev;
}

# --- Microsoft Entra ID --------------------------------------------------------
sub entra_signin
{
	my (%e) = @_;
	my $code = $e{code} // 0;
	return {
		id => $e{id},
		createdDateTime => iso($e{t}),
		userDisplayName => 'Pat Example',
		userPrincipalName => 'pat@contoso.com',
		userId => $e{user},
		appId => 'de8bc8b5-d9f9-48b1-a8ad-b748da725064',
		appDisplayName => 'Office 365',
		ipAddress => $e{ip},
		clientAppUsed => 'Browser',
		correlationId => "c0rre1a7-$e{id}",
		($e{session} ? (sessionId => $e{session}) : ()),
		conditionalAccessStatus => 'notApplied',
		isInteractive => JSON::PP::true,
		riskDetail => 'none',
		riskLevelAggregated => $e{risk} // 'none',
		riskLevelDuringSignIn => $e{risk} // 'none',
		riskState => $e{risk} ? 'atRisk' : 'none',
		riskEventTypes => [],
		riskEventTypes_v2 => $e{risk_events} // [],
		resourceDisplayName => 'Office 365 Exchange Online',
		resourceId => '00000002-0000-0ff1-ce00-000000000000',
		status => { errorCode => $code, failureReason => $e{reason} // 'Other.', additionalDetails => undef },
		deviceDetail => {
			deviceId => '',
			displayName => undef,
			operatingSystem => 'Windows 10',
			browser => 'Edge 124.0',
			isCompliant => undef,
			isManaged => undef,
			trustType => undef
		},
		location => { city => undef, state => undef, countryOrRegion => undef, geoCoordinates => undef },
		appliedConditionalAccessPolicies => [],
		($e{requirement} ? (authenticationRequirement => $e{requirement}) : ()),
		($e{details} ? (authenticationDetails => $e{details}) : ()),
		($e{mfa} ? (mfaDetail => { authMethod => $e{mfa}, authDetail => undef }) : ())
	};
}

sub entra_audit
{
	my (%e) = @_;
	return {
		id => $e{id},
		category => $e{category},
		correlationId => "c0rre1a7-$e{id}",
		result => 'success',
		resultReason => '',
		activityDisplayName => $e{activity},
		activityDateTime => iso($e{t}),
		loggedByService => 'Core Directory',
		operationType => $e{operation} // 'Add',
		initiatedBy => {
			user => {
				id => $e{user},
				displayName => undef,
				userPrincipalName => 'pat@contoso.com',
				ipAddress => $e{ip}
			}
		},
		targetResources => $e{targets},
		additionalDetails => []
	};
}

sub entra_story
{
	my ($t0, $part) = @_;
	my $a = $ids{entra};
	my @ev;
	my $s = sub { my %x = @_; $x{id} //= uid('si', $x{t}); push @ev, entra_signin(%x); };
	my $d = sub { my %x = @_; $x{id} //= 'Directory_' . uid('da', $x{t}); push @ev, entra_audit(%x); };
	if ($part eq 'history')
	{
		for my $day (reverse 1 .. 28)
		{
			for my $who (qw(victim hijacked flagged))
			{
				$s->(t => $t0 - $day * 86400 - 3600 * 8, user => $a->{$who}, ip => $day % 2 ? $US1 : $US2,
					session => "5e55hist-$day-$who");
			}
		}
		return \@ev;
	}
	my $v = $a->{victim};
	for my $i (0 .. 5)
	{
		$s->(t => $t0 + $i * 2, user => $v, ip => $GUESSERS[ $i % 4 ], code => 50126,
			reason => 'Error validating credentials due to invalid username or password.');
	}
	my $mfa_failed = [
		{ authenticationMethod => 'Password', succeeded => JSON::PP::true, authenticationStepResultDetail => 'Correct password' },
		{ authenticationMethod => 'Mobile app notification', succeeded => JSON::PP::false,
		  authenticationStepResultDetail => 'MFA denied; user declined the authentication' } ];
	for my $i (0 .. 3)
	{
		$s->(t => $t0 + 12 + $i * 2, user => $v, ip => $ATTACKER, code => 50074,
			reason => 'Strong Authentication is required.', requirement => 'multiFactorAuthentication');
		$s->(t => $t0 + 13 + $i * 2, user => $v, ip => $ATTACKER, code => 500121,
			reason => 'Authentication failed during strong authentication request.',
			requirement => 'multiFactorAuthentication', details => $mfa_failed);
	}
	$s->(t => $t0 + 20, user => $v, ip => $ATTACKER, code => 50074, reason => 'Strong Authentication is required.',
		requirement => 'multiFactorAuthentication');
	$s->(t => $t0 + 22, user => $v, ip => $ATTACKER, session => '5e55a77a-0000-4000-8000-000000000001',
		requirement => 'multiFactorAuthentication', mfa => 'Mobile app notification',
		details => [
			{ authenticationMethod => 'Password', succeeded => JSON::PP::true },
			{ authenticationMethod => 'Mobile app notification', succeeded => JSON::PP::true,
			  authenticationStepResultDetail => 'MFA successfully completed' } ]);
	my $i = 0;
	for my $c (
		[ 'RoleManagement', 'Add member to role', 'Assign',
			[ { id => $v, type => 'User', userPrincipalName => 'pat@contoso.com' },
			  { id => '62e90394-69f5-4237-9190-012177145e10', type => 'Role', displayName => 'Global Administrator' } ] ],
		[ 'UserManagement', 'Add user', 'Add',
			[ { id => '1f0c0a11-0000-4000-8000-0000backd004', type => 'User', userPrincipalName => 'helpdesk2@contoso.com' } ] ],
		[ 'UserManagement', 'User deleted security info', 'Delete',
			[ { id => $v, type => 'User', userPrincipalName => 'pat@contoso.com' } ] ],
		[ 'UserManagement', 'User registered security info', 'Add',
			[ { id => $v, type => 'User', userPrincipalName => 'pat@contoso.com' } ] ],
		[ 'ApplicationManagement', 'Add service principal credentials', 'Update',
			[ { id => '7a0b0c0d-0000-4000-8000-0000000sp005', type => 'ServicePrincipal', displayName => 'automation' } ] ])
	{
		$d->(t => $t0 + 24 + $i++, user => $v, ip => $ATTACKER, category => $c->[0], activity => $c->[1],
			operation => $c->[2], targets => $c->[3]);
	}
	$s->(t => $t0 + 3, user => $a->{hijacked}, ip => $US1, session => '5e55b0b0-0000-4000-8000-000000000002');
	$s->(t => $t0 + 30, user => $a->{hijacked}, ip => $ATTACKER, session => '5e55b0b0-0000-4000-8000-000000000002');
	$s->(t => $t0 + 8, user => $a->{flagged}, ip => $US2, risk => 'high',
		risk_events => [ 'anonymizedIPAddress', 'unfamiliarFeatures' ], session => '5e55f1a9-0000-4000-8000-000000000003');
	return \@ev;
}

sub story
{
	my ($provider, $t0, $part) = @_;
	$serial = 0;    # the same story, the same event ids
	return okta_story($t0, $part) if $provider eq 'okta';
	return auth0_story($t0, $part) if $provider eq 'auth0';
	return entra_story($t0, $part) if $provider eq 'entra';
	die "no story for $provider";
}

sub story_json
{
	my ($provider, $t0, $part) = @_;
	return JSON::PP->new->canonical->encode(story($provider, $t0, $part));
}

1;
