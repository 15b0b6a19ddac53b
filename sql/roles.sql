-- The grants of example/grants.sql (the README's, role by role): each role
-- does its whole job with them and nothing more.
SET timezone = 'UTC';
SET client_min_messages = warning;
\set SHOW_CONTEXT never
CREATE ROLE regress_app;
CREATE ROLE regress_cache;
CREATE ROLE regress_oncall;
CREATE ROLE regress_app_owner;
\set app regress_app
\set cache regress_cache
\set oncall regress_oncall
\set app_owner regress_app_owner
\i example/grants.sql

-- The table owner registers its sessions table; the registration names it.
CREATE SCHEMA regress_shop AUTHORIZATION regress_app_owner;
SET ROLE regress_app_owner;
CREATE TABLE regress_shop.sessions (id text PRIMARY KEY, user_id text NOT NULL, issued_at timestamptz NOT NULL,
                                    revoked boolean NOT NULL DEFAULT false);
SELECT ato.register_revocation_target('regress_shop.sessions', 'user_id', 'revoke', 'revoked') > 0 AS registered;
RESET ROLE;
SELECT target_name, registered_by FROM ato.revocation_targets WHERE target_name = 'regress_shop.sessions';
GRANT USAGE ON SCHEMA regress_shop TO regress_app;
GRANT INSERT, SELECT ON regress_shop.sessions TO regress_app;

-- The application: a login, the gate, a session issued in its transaction.
SET ROLE regress_app;
SELECT ato.record_login('shopper', '203.0.113.9', 'success') > 0 AS recorded,
       ato.record_event('shopper', 'user.email_changed') > 0 AS event_recorded;
BEGIN;
SELECT step FROM ato.login_gate('shopper', '203.0.113.9');
INSERT INTO regress_shop.sessions SELECT 's1', 'shopper', issued_at FROM ato.login_gate('shopper');
COMMIT;
SELECT refused, verdict FROM ato.session_status('shopper', (SELECT issued_at FROM regress_shop.sessions WHERE id = 's1'));
SELECT ato.revoke_incident(ARRAY['shopper'], 'app may not');
SELECT * FROM ato.incidents;
RESET ROLE;

-- A responder: the drill's questions, the response, its progress, lifting.
SET ROLE regress_oncall;
SELECT count(*) >= 1 AS found FROM ato.cidr_scope('{203.0.113.0/24}', now() - interval '1 hour');
SELECT count(*) >= 0 AS asked FROM ato.new_country_logins(now() - interval '1 hour');
SELECT count(*) >= 0 AS asked FROM ato.failed_login_bursts(now() - interval '1 hour');
SELECT ato.revoke_incident(ARRAY['shopper'], 'drill', suspend => true) IS NOT NULL AS opened;
SELECT target, rows_touched, mismatched_ids FROM ato.incident_progress
 WHERE incident_id = (SELECT id FROM ato.incidents WHERE reason = 'drill');
SELECT ato.preserve_evidence((SELECT id FROM ato.incidents WHERE reason = 'drill'), networks => '{}') AS preserved;
SELECT ok, rows FROM ato.verify_evidence((SELECT id FROM ato.incidents WHERE reason = 'drill'));
SELECT count(*) AS export_lines FROM ato.export_evidence((SELECT id FROM ato.incidents WHERE reason = 'drill'));
SELECT ato.lift_incident((SELECT id FROM ato.incidents WHERE reason = 'drill')) AS lifted;
SELECT kind FROM ato.incident_timeline((SELECT id FROM ato.incidents WHERE reason = 'drill'))
 WHERE kind NOT LIKE 'login %' AND kind NOT IN ('account change', 'network blocked', 'network unblocked');
-- the evidence is read, never changed
UPDATE ato.evidence_rows SET body = '{}';
INSERT INTO ato.evidence_manifests SELECT * FROM ato.evidence_manifests;
SET ato_response.inline_marking_limit = 0;
RESET ROLE;
GRANT SET ON PARAMETER ato_response.inline_marking_limit TO regress_oncall;
SET ROLE regress_oncall;
SET ato_response.inline_marking_limit = 0;
RESET ato_response.inline_marking_limit;
-- but not read the application's tables
SELECT * FROM regress_shop.sessions;
RESET ROLE;

-- The application sees the revocation; the cache reads it from the outbox.
SET ROLE regress_app;
SELECT id, revoked, ato.session_revoked(user_id, issued_at) AS refused FROM regress_shop.sessions;
SELECT n, verdict FROM ato.session_statuses(ARRAY['shopper', 'other'], ARRAY[now(), now()]::timestamptz[]);
SELECT step, steps FROM ato.login_gate('shopper');
SELECT ato.complete_step('shopper', 'reauth_required', 'totp', 'shopper') AS completed,
       ato.revoke_session('shopper', 'tablet', 'signed out by the user') AS device_signed_out;
SELECT ato.lift_incident(NULL);
RESET ROLE;
SET ROLE regress_cache;
SELECT batch, batches, user_id FROM ato.revocations_since(0, 1000) WHERE user_id = 'shopper';
SELECT ato.login_gate('shopper');
RESET ROLE;

REVOKE SET ON PARAMETER ato_response.inline_marking_limit FROM regress_oncall;
SELECT ato.unregister_revocation_target('regress_shop.sessions');
DROP SCHEMA regress_shop CASCADE;
DROP OWNED BY regress_app, regress_cache, regress_oncall, regress_app_owner;
DROP ROLE regress_app, regress_cache, regress_oncall, regress_app_owner;
