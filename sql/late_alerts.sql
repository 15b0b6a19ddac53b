-- Late alerts over evidence an incident already answered (issue 18): a
-- responder contains accounts by hand, one of them recovers and gets a fresh
-- session, then the rules find the same attack.  The alerts say which
-- incident handled them, escalating one joins that incident and undoes no
-- recovery, and new evidence after the recovery still escalates into a new
-- incident that revokes.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION ato_response CASCADE;
CREATE EXTENSION ato_response;
SET client_min_messages = notice;

-- u7 and u8 log in from home (GB); two minutes ago both were taken over
-- from 5.188.10.0/24 (RU) and changed their e-mail address.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
SELECT u, '81.2.69.160', 'success', now() - interval '3 days' FROM unnest('{u7,u8,u9}'::text[]) u;
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at) VALUES
    ('u7', '5.188.10.7', 'success', now() - interval '2 minutes'),
    ('u8', '5.188.10.8', 'success', now() - interval '2 minutes');
INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address) VALUES
    ('u7', 'user.email_changed', now() - interval '110 seconds', '5.188.10.7'),
    ('u8', 'user.email_changed', now() - interval '110 seconds', '5.188.10.8');

-- The responder finds it by hand before any rule has run, and contains both.
SELECT ato.revoke_incident('{u7,u8}', 'takeovers from 5.188.10.0/24, found by hand') AS manual \gset
-- u7 signs in again with its second factor: the application clears the step
-- and issues a fresh session, which the incident does not revoke.
SELECT ato.complete_step('u7', 'reauth_required') AS u7_recovered;
SELECT clock_timestamp() AS fresh \gset
SELECT ato.session_revoked('u7', :'fresh') AS fresh_revoked, step FROM ato.login_gate('u7');

-- The rule runs late, over the same evidence: its alerts say they were
-- handled by the manual incident instead of staying open and unlinked.
SELECT ato.run_detection('new_country_logins') AS findings;
SELECT finding, accounts, status, incident_id = :'manual' AS in_manual_incident,
       evidence_at = (evidence ->> 'occurred_at')::timestamptz AS evidence_at_is_the_login
  FROM ato.alerts ORDER BY finding;
SELECT ato.covering_incident('{u7}', now() - interval '2 minutes') = :'manual' AS u7_covered,
       ato.covering_incident('{u7,u9}', now() - interval '2 minutes') AS u7_u9_covered,
       ato.covering_incident('{u7}', now()) AS covered_from_now;

-- Escalating u7's alert joins the manual incident and returns its id: the
-- fresh session stays valid and reauth_required stays cleared.
SELECT id AS u7_alert FROM ato.alerts WHERE finding = 'u7 RU' \gset
SELECT id AS u8_alert FROM ato.alerts WHERE finding = 'u8 RU' \gset
SELECT ato.escalate_alert(:u7_alert) = :'manual' AS joined_manual;
SELECT ato.session_revoked('u7', :'fresh') AS fresh_revoked, f.reauth_required, f.incident_id = :'manual' AS flags_by_manual
  FROM ato.account_flags f WHERE f.user_id = 'u7';
SELECT step FROM ato.login_gate('u7');
SELECT count(*) AS incidents FROM ato.incidents;
SELECT status, incident_id = :'manual' AS in_manual_incident, triaged_by = session_user AS by_caller
  FROM ato.alerts WHERE id = :u7_alert;
-- Again: the same answer, still one incident.
SELECT ato.escalate_alert(:u7_alert, suspend => true) = :'manual' AS joined_again;
SELECT count(*) AS incidents FROM ato.incidents;
SELECT suspended, reauth_required FROM ato.account_flags WHERE user_id = 'u7';

-- u8 has not recovered: joining leaves its flags and revocation as the
-- incident set them.  force => true opens a new incident all the same, and
-- says that it revokes again what the manual incident already revoked.
SELECT ato.escalate_alert(:u8_alert) = :'manual' AS u8_joined;
SELECT ato.escalate_alert(:u8_alert, force => true) AS forced \gset
SELECT :'forced' <> :'manual' AS new_incident, i.user_ids, a.status, a.incident_id = :'forced' AS linked
  FROM ato.incidents i JOIN ato.alerts a ON a.incident_id = i.id WHERE a.id = :u8_alert;

-- The attacker is back at u7 after its recovery: a new login from RU and
-- another change.  The rule finds the same finding again with newer
-- evidence, which the manual incident did not answer: the alert is open
-- again (the incident that handled its earlier evidence still named), and
-- escalating it opens a new incident that revokes the session issued since
-- and sets reauth_required again, with no notice about a recovery undone.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ('u7', '5.188.10.7', 'success', clock_timestamp());
INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address)
VALUES ('u7', 'user.password_changed', clock_timestamp(), '5.188.10.7');
SELECT ato.run_detection('new_country_logins') AS findings;
SELECT status, incident_id = :'manual' AS earlier_evidence_by_manual,
       evidence_at > (SELECT opened_at FROM ato.incidents WHERE id = :'manual') AS newer_than_manual,
       evidence ->> 'suspicious_actions' AS actions
  FROM ato.alerts WHERE id = :u7_alert;
SELECT ato.escalate_alert(:u7_alert) AS back \gset
SELECT :'back' <> :'manual' AS new_incident, ato.session_revoked('u7', :'fresh') AS fresh_revoked,
       f.reauth_required, f.incident_id = :'back' AS flags_by_new
  FROM ato.account_flags f WHERE f.user_id = 'u7';
SELECT status, incident_id = :'back' AS linked FROM ato.alerts WHERE id = :u7_alert;
-- Found again with that evidence, it stays with the new incident.
SELECT ato.run_detection('new_country_logins') AS findings;
SELECT status, incident_id = :'back' AS linked FROM ato.alerts WHERE id = :u7_alert;

-- Evidence newer than an incident but older than a recovery (u9: taken
-- over, contained, the attacker active again before the reset, then the
-- reset): escalating revokes (the incident did not answer that evidence)
-- and says that it undoes u9's recovery.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ('u9', '5.188.10.9', 'success', clock_timestamp() - interval '1 minute');
SELECT ato.revoke_incident('{u9}', 'u9 by hand', password_reset_required => true) AS u9_manual \gset
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ('u9', '5.188.10.9', 'success', clock_timestamp());
INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address)
VALUES ('u9', 'billing.modified', clock_timestamp(), '5.188.10.9');
SELECT ato.complete_step('u9', 'password_reset_required') AS u9_recovered;
SELECT ato.run_detection('new_country_logins') AS findings;
SELECT id AS u9_alert, status FROM ato.alerts WHERE finding = 'u9 RU' \gset
SELECT :'status' AS u9_status;
SELECT ato.escalate_alert(:u9_alert) <> :'u9_manual' AS u9_new_incident;

-- An alert over two accounts, one of them (u8) in an incident opened after
-- its evidence: only the other is revoked, and the notice says who was left
-- out.
INSERT INTO ato.alerts (rule, finding, accounts, evidence, evidence_at, first_seen_at, last_seen_at)
VALUES ('by hand', 'u8 and u10', '{u10,u8}', '{}', now() - interval '2 minutes', now(), now())
RETURNING id AS pair_alert \gset
SELECT ato.covering_incident('{u10,u8}', now() - interval '2 minutes') AS pair_covered;
SELECT ato.escalate_alert(:pair_alert) AS pair \gset
SELECT i.user_ids, :'pair' NOT IN (:'manual', :'forced') AS new_incident
  FROM ato.incidents i WHERE i.id = :'pair';

-- Bad arguments.
SELECT ato.escalate_alert(:u7_alert, force => NULL);
SELECT ato.covering_incident(NULL, now());
SELECT ato.covering_incident('{u7}', NULL);
SELECT ato.recovered_accounts('{u7,u8,u9}', now() - interval '1 hour') AS recovered;
SELECT ato.triage_alert(:u7_alert, 'covered');
