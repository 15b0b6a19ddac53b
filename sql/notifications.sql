-- Telling the users and the downstream applications (issue 16): one notice
-- per account and incident, written with the application's hooks (called
-- as their owner), delivered through an outbox with retries and a recovery
-- token kept only as its hash; what each downstream application and secret
-- is still owed, and who confirmed it; all of it on the timeline and in the
-- HTML report, with the attacker's text escaped; and bad input refused.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION ato_response CASCADE;
CREATE EXTENSION ato_response;
SET client_min_messages = notice;
SET ato_response.shard_name = 'eu-1';

-- The application: its accounts (owned by its own role), a detail of each
-- that a phisher would not have, and a phone number for SMS where it has one.
CREATE ROLE regress_notify_app;
CREATE ROLE regress_notify_other;
CREATE SCHEMA app AUTHORIZATION regress_notify_app;
SET ROLE regress_notify_app;
CREATE TABLE app.accounts (user_id text PRIMARY KEY, card_last4 text, phone text, github boolean);
INSERT INTO app.accounts VALUES ('u1', '4242', '+44 7700 900123', true), ('u2', '1881', NULL, false);
CREATE FUNCTION app.account_hint(user_id text) RETURNS text LANGUAGE sql STABLE
    RETURN (SELECT 'the card on file ends in ' || a.card_last4 FROM app.accounts a WHERE a.user_id = account_hint.user_id);
CREATE FUNCTION app.sms(user_id text) RETURNS text LANGUAGE sql STABLE
    RETURN (SELECT a.phone FROM app.accounts a WHERE a.user_id = sms.user_id);
CREATE FUNCTION app.uses_github(user_id text) RETURNS boolean LANGUAGE sql STABLE
    RETURN (SELECT a.github FROM app.accounts a WHERE a.user_id = uses_github.user_id);
CREATE FUNCTION app.reaches_signing_key(user_id text) RETURNS boolean LANGUAGE sql STABLE
    RETURN user_id = 'u2';
-- a hook that reads what its owner may not: it must fail, since it runs as
-- its owner and not as the extension's
CREATE FUNCTION app.peek(user_id text) RETURNS text LANGUAGE plpgsql STABLE
    AS $$ BEGIN RETURN (SELECT count(*)::text FROM ato.incidents); END $$;
-- and one that would leave something behind: refused in a security-restricted operation
CREATE FUNCTION app.sneaky(user_id text) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN CREATE TEMP TABLE left_behind (x int); RETURN 'x'; END $$;
CREATE FUNCTION app.wrong_shape(user_id text, extra int) RETURNS text LANGUAGE sql RETURN NULL;
CREATE FUNCTION app.huge(user_id text) RETURNS text LANGUAGE sql RETURN repeat('x', 5000);
CREATE FUNCTION app.backup_email(user_id text) RETURNS text LANGUAGE sql RETURN NULL;
RESET ROLE;

-- The story: u1 and u2 log in from home (GB).  Half an hour ago
-- 5.188.10.7 (RU) fails three times on u1 (one user agent carries a
-- script), succeeds, changes u1's e-mail address and adds a factor; it
-- fails on u2.  u4, not in the incident, logs in from home.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, user_agent)
SELECT u, '81.2.69.160', 'success', now() - interval '3 days', 'Firefox' FROM unnest('{u1,u2,u4}'::text[]) u;
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, user_agent) VALUES
    ('u1', '5.188.10.7', 'failure', now() - interval '30 minutes', '<script>alert(1)</script>'),
    ('u1', '5.188.10.7', 'failure', now() - interval '29 minutes', 'python-requests'),
    ('u1', '5.188.10.7', 'failure', now() - interval '29 minutes', 'python-requests'),
    ('u1', '5.188.10.7', 'success', now() - interval '27 minutes', 'python-requests'),
    ('u2', '5.188.10.7', 'failure', now() - interval '26 minutes', '"><img src=x onerror=alert(2)>'),
    ('u4', '81.2.69.160', 'success', now() - interval '10 minutes', 'Firefox');
INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address, target_type, target_id) VALUES
    ('u1', 'user.email_changed', now() - interval '25 minutes', '5.188.10.7', 'user', 'u1'),
    ('u1', 'user.mfa.factor.activate', now() - interval '24 minutes', '5.188.10.7', 'factor', '<b>f1</b>');
SELECT ato.refresh_summaries() IS NOT NULL AS refreshed;
SELECT ato.block_network('5.188.10.0/24', 'takeover of u1');
SET client_min_messages = warning;
SELECT ato.revoke_incident('{u1,u2}', 'credential stuffing from 5.188.10.0/24',
                           mfa_reenrollment_required => true, password_reset_required => true) AS incident \gset
SET client_min_messages = notice;

-- The hooks: only a hook's owner may register it (it runs as its owner), of
-- the right shape, from the application's schema.
GRANT USAGE ON SCHEMA ato, app TO regress_notify_other;
GRANT EXECUTE ON FUNCTION ato.register_account_detail(regprocedure) TO regress_notify_other;
SET ROLE regress_notify_other;
SELECT ato.register_account_detail('app.account_hint(text)');
RESET ROLE;
SELECT ato.register_account_detail('app.wrong_shape(text, int)');
SELECT ato.register_account_detail('pg_catalog.lower(text)');
SELECT ato.register_account_detail(NULL);
SELECT ato.register_contact_channel('primary', 'app.sms(text)');
SELECT ato.register_contact_channel(repeat('c', 64), 'app.sms(text)');
SELECT ato.register_contact_channel('sms', 'app.uses_github(text)');
-- a hook that reads the extension's tables is refused them (it is not the
-- extension's owner that calls it), one that creates a temporary table is
-- refused it (a security-restricted operation), one that returns too much
-- is refused: each stops notify_users with nothing written
SELECT ato.register_account_detail('app.peek(text)');
SELECT ato.notify_users(:'incident');
SELECT ato.register_account_detail('app.sneaky(text)');
SELECT ato.notify_users(:'incident');
SELECT ato.register_account_detail('app.huge(text)');
SELECT ato.notify_users(:'incident');
SELECT count(*) AS notices_after_failures FROM ato.user_notifications;
SELECT ato.register_account_detail('app.account_hint(text)');
SELECT ato.register_contact_channel('sms', 'app.sms(text)', priority => 10);
-- the hook's owner registers its own (registered_by: the role, as SET ROLE made it)
GRANT USAGE ON SCHEMA ato TO regress_notify_app;
GRANT EXECUTE ON FUNCTION ato.register_contact_channel(text, regprocedure, integer) TO regress_notify_app;
SET ROLE regress_notify_app;
SELECT ato.register_contact_channel('secondary_email', 'app.backup_email(text)', priority => 20);
RESET ROLE;
SELECT name, kind, hook, priority, registered_by FROM ato.notification_hooks ORDER BY name;

-- One notice per account, once: a second call writes none.
SELECT ato.notify_users(:'incident') AS written;
SELECT ato.notify_users(:'incident') AS written_again;
SELECT user_id, shard, channel, address, account_detail, must_do,
       happened ->> 'sign_ins' AS sign_ins, happened ->> 'failed_attempts' AS failures,
       happened -> 'countries' AS countries,
       (SELECT array_agg(c ->> 'event_type' ORDER BY c ->> 'at') FROM jsonb_array_elements(happened -> 'changes') c) AS changes,
       done ->> 'password_disabled' AS password_disabled, done ->> 'factors_removed' AS factors_removed,
       token_hash IS NULL AS no_token_yet
  FROM ato.user_notifications ORDER BY user_id;
SELECT regexp_replace(message, '\d{4}-\d\d-\d\d \d\d:\d\d UTC', 'T', 'g') AS message
  FROM ato.user_notifications WHERE user_id = 'u1';
SELECT user_id, shard, channel, status, attempts FROM ato.notification_outbox ORDER BY user_id;

-- The mailer: claims (each row once), gets a fresh token, marks sent or
-- failed; a failure comes back after a minute, then with a new token.
SELECT outbox_id AS o1, attempt AS a1, recovery_token AS t1 FROM ato.claim_notifications(1) \gset
SELECT user_id, channel, address, length(:'t1') AS token_length, :'t1' ~ '^[0-9a-f]{64}$' AS hex,
       token_hash = sha256(convert_to(:'t1', 'UTF8')) AS only_hash_stored
  FROM ato.user_notifications WHERE token_hash IS NOT NULL;
SELECT outbox_id AS o2, attempt AS a2, recovery_token AS t2 FROM ato.claim_notifications(10) \gset
SELECT count(*) AS nothing_left_to_claim FROM ato.claim_notifications(10);
SELECT ato.mark_notification_sent(:o1, :a1, 'provider-msg-1');
SELECT ato.mark_notification_sent(:o1, :a1);
SELECT ato.mark_notification_failed(:o2, :a2, 'mailbox unavailable') - now() AS retry_in;
SELECT count(*) AS not_due_yet FROM ato.claim_notifications(10);
UPDATE ato.notification_outbox SET next_attempt_at = now() WHERE id = :o2;
SELECT attempt AS a2b, recovery_token AS t2b FROM ato.claim_notifications(10) \gset
SELECT :a2b AS second_attempt, :'t2b' <> :'t2' AS new_token;
SELECT ato.mark_notification_failed(:o2, :a2, 'late word of the first attempt');
SELECT ato.mark_notification_failed(:o2, :a2b, 'no such mailbox', retry => false) AS next_attempt;
SELECT user_id, status, attempts, provider_ref, last_error, sent_at IS NOT NULL AS sent,
       failed_at IS NOT NULL AS failed FROM ato.notification_outbox ORDER BY user_id;

-- The recovery link: the token is good once; the replaced one is not.
SELECT status, user_id, incident_id = :'incident' AS of_incident FROM ato.redeem_recovery_token(:'t1');
SELECT status, user_id, incident_id = :'incident' AS of_incident FROM ato.redeem_recovery_token(:'t1');
SELECT status, user_id, incident_id = :'incident' AS of_incident FROM ato.redeem_recovery_token(:'t2');
SELECT status, user_id, incident_id = :'incident' AS of_incident FROM ato.redeem_recovery_token('not a token');
SELECT status, user_id, incident_id = :'incident' AS of_incident FROM ato.redeem_recovery_token(NULL);

-- Downstream: Microsoft 365 for every account, GitHub for those that use
-- it, a signing key u2 could reach and an API key any account could.
SELECT ato.register_downstream_app('Microsoft 365', 'Graph API revokeSignInSessions', 'it-identity@example.com') > 0 AS registered;
SELECT ato.register_downstream_app('GitHub', 'revoke SSO sessions and tokens at the org level', NULL, 'app.uses_github(text)') > 0 AS registered;
SELECT ato.register_secret('token signing key', 'signing_key', 'generate a new RSA key and restart', NULL, 'app.reaches_signing_key(text)') > 0 AS registered;
SELECT ato.register_secret('deploy API key', 'api_key', 'rotate in the CI secrets store') > 0 AS registered;
SELECT ato.record_downstream_obligations(:'incident') AS owed;
SELECT ato.record_downstream_obligations(:'incident') AS owed_again;
SELECT item, name, user_ids, how, owner_contact, shard FROM ato.downstream_outstanding ORDER BY item, name, user_ids;
SELECT ato.confirm_downstream_revocation(:'incident', 'GitHub', reference => 'ticket IR-7') AS confirmed;
SELECT ato.confirm_downstream_revocation(:'incident', 'GitHub') AS confirmed_again;
SELECT ato.confirm_downstream_revocation(:'incident', 'Microsoft 365', '{u2}', 'request 8f3a') AS confirmed;
SELECT ato.confirm_secret_rotation(:'incident', 'token signing key', 'kid 2026-12') AS rotated;
SELECT ato.confirm_secret_rotation(:'incident', 'token signing key') AS rotated_again;
SELECT app_name, user_id, confirmed_by, reference, confirmed_at IS NOT NULL AS confirmed
  FROM ato.downstream_revocations ORDER BY app_name, user_id;
SELECT item, name, user_ids FROM ato.downstream_outstanding ORDER BY item, name, user_ids;

-- The timeline: the notices written, sent and given up, the confirmations.
SELECT kind, accounts, regexp_replace(detail, 'by \w+', 'by R') AS detail
  FROM ato.incident_timeline(:'incident')
 WHERE kind IN ('users notified', 'notice sent', 'notice failed', 'downstream owed', 'downstream revoked',
                'secret rotated', 'recovery link used')
 ORDER BY at, kind;

-- The report: one page, no script, the attacker's text escaped.
SELECT ato.incident_report(:'incident') AS report \gset
SELECT left(:'report', 15) AS starts, :'report' LIKE '%<svg%id="attack-curve"%' AS curve,
       :'report' ~* '<script' AS has_script, :'report' LIKE '%&lt;script&gt;alert(1)&lt;/script&gt;%' AS ua_escaped,
       :'report' LIKE '%&quot;&gt;&lt;img src=x onerror=alert(2)&gt;%' AS attribute_breaker_escaped,
       :'report' ~* '<img' AS has_img, :'report' ~* '<[^>]*\s(src|href)\s*=' AS loads_anything,
       :'report' LIKE '%class="contained"%' AS containment_marked,
       :'report' LIKE '%Microsoft 365%deploy API key%' OR :'report' LIKE '%deploy API key%Microsoft 365%' AS outstanding_listed,
       :'report' LIKE '%&lt;b&gt;f1&lt;/b&gt;%' AS event_field_escaped;
SELECT ato.html_escape('<a href="x">&''</a>');

-- Retention: an open incident's delivered notices stay; once lifted, they go
-- (the notices themselves stay, so that no one is told twice).
UPDATE ato.notification_outbox SET sent_at = sent_at - interval '2 days', failed_at = failed_at - interval '2 days';
SELECT ato.apply_notification_retention('1 day') AS removed_while_open;
SELECT ato.lift_incident(:'incident') AS lifted;
SELECT ato.apply_notification_retention('1 day') AS removed_after_lifting;
SELECT count(*) AS notices_kept FROM ato.user_notifications;
SELECT ato.notify_users(:'incident') AS written_after_retention;

-- ato.apply_retention() applies it too.
UPDATE ato.incidents SET status = 'contained' WHERE id = :'incident';
UPDATE ato.notification_outbox SET status = 'sent', sent_at = now() - interval '2 days';
INSERT INTO ato.notification_outbox (incident_id, user_id, channel, status, sent_at)
VALUES (:'incident', 'u1-again', 'primary', 'sent', now() - interval '2 days');
SET ato_response.retention = '1d';
SELECT ato.apply_retention() AS partitions_dropped;
SELECT count(*) AS kept_while_open FROM ato.notification_outbox;
UPDATE ato.incidents SET status = 'lifted' WHERE id = :'incident';
SELECT ato.apply_retention() AS partitions_dropped;
SELECT count(*) AS kept_after_lifting FROM ato.notification_outbox;
RESET ato_response.retention;

-- An incident with no event in its scope yet: the page says so.
SELECT ato.unblock_network('5.188.10.0/24') AS unblocked;
SET client_min_messages = warning;
SELECT ato.revoke_incident('{quiet}', 'reported by the user, nothing seen') AS quiet \gset
SET client_min_messages = notice;
SELECT ato.incident_report(:'quiet') AS quiet_report \gset
SELECT :'quiet_report' LIKE '%No login attempts in the incident%' AS says_no_attempts,
       :'quiet_report' LIKE '%<p class="empty">None.</p>%' AS no_countries,
       :'quiet_report' LIKE '%Nothing owed downstream%' AS nothing_owed;

-- Bad input: NULL 22004, unknown P0002, empty 22023, too long 22001, each
-- with a hint.
CREATE FUNCTION pg_temp.error_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    message text;
    hint text;
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS message = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN format('%s %s; hint: %s', SQLSTATE, regexp_replace(message, '[0-9a-f-]{36}', 'I', 'g'), nullif(hint, ''));
END $$;
SELECT pg_temp.error_of(s) AS error FROM (VALUES
    ($$SELECT ato.notify_users(NULL)$$),
    ($$SELECT ato.notify_users('00000000-0000-0000-0000-000000000000')$$),
    ($$SELECT ato.incident_report(NULL)$$),
    ($$SELECT ato.incident_report('00000000-0000-0000-0000-000000000000')$$),
    (format($$SELECT ato.incident_report(%L, 0)$$, :'incident')),
    ($$SELECT ato.record_downstream_obligations(NULL)$$),
    ($$SELECT ato.record_downstream_obligations('00000000-0000-0000-0000-000000000000')$$),
    (format($$SELECT ato.confirm_downstream_revocation(%L, 'Slack')$$, :'incident')),
    (format($$SELECT ato.confirm_downstream_revocation(%L, NULL)$$, :'incident')),
    (format($$SELECT ato.confirm_downstream_revocation(%L, 'GitHub', '{u9}')$$, :'incident')),
    (format($$SELECT ato.confirm_downstream_revocation(%L, 'GitHub', '{u1,NULL}')$$, :'incident')),
    (format($$SELECT ato.confirm_downstream_revocation(%L, 'GitHub', '{u1}', repeat('r', 100000))$$, :'incident')),
    (format($$SELECT ato.confirm_secret_rotation(%L, 'no such key')$$, :'incident')),
    ($$SELECT ato.confirm_secret_rotation(NULL, 'deploy API key')$$),
    ($$SELECT ato.register_downstream_app(repeat('n', 1000000), 'x')$$),
    ($$SELECT ato.register_downstream_app('', 'x')$$),
    ($$SELECT ato.register_downstream_app('Slack', 'admin.users.session.reset', NULL, 'app.sms(text)')$$),
    ($$SELECT ato.register_secret('k', 'api_key', NULL)$$),
    ($$SELECT ato.unregister_downstream(NULL)$$),
    ($$SELECT ato.claim_notifications(0)$$),
    ($$SELECT ato.claim_notifications(NULL)$$),
    ($$SELECT ato.claim_notifications(1, interval '-1 minute')$$),
    ($$SELECT ato.mark_notification_sent(NULL, 1)$$),
    ($$SELECT ato.mark_notification_sent(999999, 1)$$),
    ($$SELECT ato.mark_notification_sent(999999, 1, repeat('p', 501))$$),
    ($$SELECT ato.mark_notification_failed(999999, 1, repeat('e', 3000))$$),
    ($$SELECT ato.mark_notification_failed(999999, 1, NULL)$$),
    ($$SELECT ato.apply_notification_retention(NULL)$$)) AS x(s);

SET client_min_messages = warning;
DROP SCHEMA app CASCADE;
RESET client_min_messages;
REVOKE ALL ON SCHEMA ato FROM regress_notify_other, regress_notify_app;
REVOKE ALL ON FUNCTION ato.register_contact_channel(text, regprocedure, integer) FROM regress_notify_app;
REVOKE ALL ON FUNCTION ato.register_account_detail(regprocedure) FROM regress_notify_other;
DROP ROLE regress_notify_app;
DROP ROLE regress_notify_other;
