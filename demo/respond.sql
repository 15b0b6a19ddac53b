-- respond.sql -- the response: the application's session, refresh-token and
-- MFA-factor tables (seed 004's and seed 003's shapes) registered once; the
-- accounts the attacker networks got into revoked in one call; the networks
-- blocked; and what the application then sees at login.
--   psql -X -q -v ON_ERROR_STOP=1 -v attacker_cidr=... -v attacker6_cidr=... -f demo/respond.sql
--     (after investigate.sql; scripts/demo.sh runs a LISTEN session meanwhile)

SET client_min_messages = warning;
SET TimeZone = 'UTC';
SELECT setseed(0.7) AS seeded \gset

-- The application's own tables: two sessions and three refresh tokens per
-- account from its history, one more session and token for every login of
-- the attackers, and an authenticator app the attacker enrolled on the
-- victims that changed their account (seed 003's persistence).
DROP SCHEMA IF EXISTS app CASCADE;
CREATE SCHEMA app;
CREATE TABLE app.sessions (id bigserial PRIMARY KEY, user_id text NOT NULL,
    created_at timestamptz NOT NULL, ended_at timestamptz, end_reason text, incident_id uuid);
CREATE TABLE app.refresh_tokens (id bigserial PRIMARY KEY, user_id text NOT NULL,
    revoked boolean NOT NULL DEFAULT false, revoked_at timestamptz, revocation_reason text,
    revocation_incident_id uuid);
CREATE TABLE app.mfa_factors (id bigserial PRIMARY KEY, user_id text NOT NULL, kind text NOT NULL,
    created_at timestamptz NOT NULL);
INSERT INTO app.sessions (user_id, created_at)
SELECT a.user_id, now() - (1 + s) * interval '1 day' FROM demo.accounts a, generate_series(1, 2) s;
INSERT INTO app.refresh_tokens (user_id) SELECT a.user_id FROM demo.accounts a, generate_series(1, 3);
INSERT INTO app.sessions (user_id, created_at)
SELECT user_id, occurred_at FROM ato.login_events
 WHERE outcome = 'success' AND occurred_at >= now() - interval '1 hour'
   AND (ip_address <<= :'attacker_cidr' OR ip_address <<= :'attacker6_cidr');
INSERT INTO app.refresh_tokens (user_id) SELECT user_id FROM app.sessions WHERE created_at >= now() - interval '1 hour';
INSERT INTO app.mfa_factors (user_id, kind, created_at)
SELECT user_id, 'totp', now() - interval '200 days' FROM demo.accounts WHERE random() < 0.5;
INSERT INTO app.mfa_factors (user_id, kind, created_at)
SELECT user_id, 'totp (attacker)', now() - interval '20 minutes' FROM demo.staged
 WHERE role <> 'traveller' AND changed_account;
CREATE INDEX ON app.sessions (user_id);
CREATE INDEX ON app.refresh_tokens (user_id);
CREATE INDEX ON app.mfa_factors (user_id);

\echo
\echo '== (f) respond: register the application''s tables once'
SELECT ato.register_revocation_target('app.sessions', 'user_id', 'end', state_column => 'ended_at',
           reason_column => 'end_reason', incident_column => 'incident_id') AS sessions_target,
       ato.register_revocation_target('app.refresh_tokens', 'user_id', 'revoke', state_column => 'revoked',
           time_column => 'revoked_at', reason_column => 'revocation_reason',
           incident_column => 'revocation_incident_id') AS tokens_target,
       ato.register_revocation_target('app.mfa_factors', 'user_id', 'delete',
           created_column => 'created_at') AS factors_target \gset
\pset title '(f) ato.revocation_targets'
SELECT target, action, user_column, state_column, created_column FROM ato.revocation_targets ORDER BY id;

\echo
\echo '== (g) revoke: every account the attacker networks got into, in one call'
-- SELECT ato.revoke_incident(<accounts>, <reason>, ...): revocation times and
-- flags commit first, then the rows are marked in batches, each recorded in
-- the outbox (ato.revocations_since()) and its position announced on NOTIFY
-- channel ato_revocations.
CREATE TEMP TABLE affected AS
SELECT user_id FROM ato.cidr_scope(ARRAY[:'attacker_cidr', :'attacker6_cidr']::cidr[], now() - interval '24 hours');
SELECT ato.revoke_incident(
           (SELECT array_agg(user_id) FROM affected),
           format('credential stuffing from %s and %s', :'attacker_cidr', :'attacker6_cidr'),
           reauth_required => true, mfa_reenrollment_required => true,
           delete_created_after => now() - interval '24 hours') AS incident \gset
\pset title '(g) ato.incident_progress'
SELECT status, accounts_done, accounts_total, target, rows_touched, failed_batches
  FROM ato.incident_progress WHERE incident_id = :'incident' ORDER BY target;

-- Block the attacker networks for a week.
SELECT ato.block_network(:'attacker_cidr', 'credential stuffing', now() + interval '7 days') AS blocked4,
       ato.block_network(:'attacker6_cidr', 'account takeovers', now() + interval '7 days') AS blocked6 \gset
\pset title '(g) ato.blocked_networks'
SELECT network, reason, expires_at - blocked_at AS blocked_for FROM ato.blocked_networks ORDER BY network;

\echo
\echo '== (h) what the application sees now'
SELECT user_id AS victim FROM affected ORDER BY user_id LIMIT 1 \gset
SELECT user_id AS bystander FROM demo.accounts
 WHERE user_id NOT IN (SELECT user_id FROM demo.staged) ORDER BY user_id LIMIT 1 \gset
\pset title '(h) ato.login_gate(): the victim, the victim from the attacker network, a bystander'
SELECT 'victim' AS who, g.step, g.steps, g.message FROM ato.login_gate(:'victim', '81.2.69.160') g
UNION ALL SELECT 'victim, from ' || :'attacker_cidr', g.step, g.steps, g.message FROM ato.login_gate(:'victim', host(set_masklen(:'attacker_cidr'::cidr, 32))::inet + 9) g
UNION ALL SELECT 'bystander', g.step, g.steps, g.message FROM ato.login_gate(:'bystander', '81.2.69.160') g;
\pset title '(h) ato.session_revoked(): a session the victim opened yesterday, and one opened from now on'
SELECT ato.session_revoked(:'victim', now() - interval '1 day') AS yesterdays_session_revoked,
       ato.session_revoked(:'victim', clock_timestamp() + interval '1 second') AS new_session_revoked;
\pset title

-- Check: no session or token of an affected account is left active, none of
-- anybody else's was touched, the attacker's factors are gone and the
-- victims' own ones are kept, and the revoked accounts are the staged ones.
SELECT
    (SELECT count(*) FROM affected)                                                       AS revoked,
    (SELECT count(*) FROM app.sessions s JOIN affected USING (user_id) WHERE s.ended_at IS NULL)
  + (SELECT count(*) FROM app.refresh_tokens t JOIN affected USING (user_id) WHERE NOT t.revoked)
                                                                                          AS still_active,
    (SELECT count(*) FROM app.sessions WHERE ended_at IS NOT NULL AND user_id NOT IN (SELECT user_id FROM affected))
  + (SELECT count(*) FROM app.refresh_tokens WHERE revoked AND user_id NOT IN (SELECT user_id FROM affected))
                                                                                          AS wrongly_marked,
    (SELECT count(*) FROM app.mfa_factors WHERE kind = 'totp (attacker)')                 AS attacker_factors_left,
    (SELECT count(*) FROM app.mfa_factors WHERE kind = 'totp')                            AS own_factors_kept,
    (SELECT count(*) FROM ((SELECT user_id FROM affected
                            EXCEPT SELECT user_id FROM demo.staged WHERE role <> 'traveller')
                           UNION ALL
                           (SELECT user_id FROM demo.staged WHERE role <> 'traveller'
                            EXCEPT SELECT user_id FROM affected)) x)                      AS revoked_mismatches
\gset
SELECT :still_active + :wrongly_marked + :attacker_factors_left + :revoked_mismatches > 0 AS response_failed \gset
\if :response_failed
\echo 'demo: FAILED: still active' :still_active ', wrongly marked' :wrongly_marked ', attacker factors left' :attacker_factors_left ', accounts not the staged ones' :revoked_mismatches
DO $$BEGIN RAISE EXCEPTION 'the response did not contain exactly the staged accounts'; END$$;
\endif
\set summary 'demo: ' :revoked ' accounts revoked in incident ' :incident ': every session and token ended, the attacker''s MFA factors deleted, the accounts must re-authenticate and re-enrol MFA, and both networks are blocked.'
\echo :summary
