-- One behaviour for bad arguments across the application's and the
-- responders' functions and the event trigger: a NULL where a value is
-- needed is 22004, an empty or malformed value 22023, an unknown object
-- P0002 (the README's table of error codes).
SET timezone = 'UTC';
SET client_min_messages = warning;
\set SHOW_CONTEXT never
CREATE TEMP TABLE stored_before AS
SELECT (SELECT count(*) FROM ato.login_events) AS logins, (SELECT count(*) FROM ato.audit_events) AS audit,
       (SELECT count(*) FROM ato.incidents) AS incidents, (SELECT count(*) FROM ato.account_flags) AS flags;
CREATE FUNCTION pg_temp.sqlstate_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
SELECT s.statement, pg_temp.sqlstate_of(s.statement) AS sqlstate
  FROM (VALUES
    -- the application's functions
    ($$SELECT ato.record_login(NULL, '192.0.2.1', 'success')$$),
    ($$SELECT ato.record_login('', '192.0.2.1', 'success')$$),
    ($$SELECT ato.record_login('u1', '192.0.2.1', NULL)$$),
    ($$SELECT ato.record_event(NULL, 'user.email_changed')$$),
    ($$SELECT ato.record_event('', 'user.email_changed')$$),
    ($$SELECT ato.record_event('u1', NULL)$$),
    ($$INSERT INTO ato.login_events (user_id, outcome) VALUES (NULL, 'success')$$),
    ($$INSERT INTO ato.login_events (user_id, outcome) VALUES ('', 'success')$$),
    ($$SELECT ato.login_gate(NULL)$$),
    ($$SELECT ato.login_gate('')$$),
    ($$SELECT ato.session_revoked(NULL, now())$$),
    ($$SELECT ato.session_revoked('', now())$$),
    ($$SELECT ato.complete_step(NULL, 'reauth_required')$$),
    ($$SELECT ato.complete_step('', 'reauth_required')$$),
    ($$SELECT ato.complete_step('u1', NULL)$$),
    ($$SELECT ato.complete_step('u1', 'flying')$$),
    ($$SELECT ato.revocations_since(NULL)$$),
    ($$SELECT ato.revocations_since(-1)$$),
    -- the responders'
    ($$SELECT ato.revoke_incident(NULL, 'r')$$),
    ($$SELECT ato.revoke_incident('{}', 'r')$$),
    ($$SELECT ato.revoke_incident(ARRAY['u1', NULL], 'r')$$),
    ($$SELECT ato.revoke_incident(ARRAY['u1', ''], 'r')$$),
    ($$SELECT ato.revoke_incident(ARRAY['u1'], NULL)$$),
    ($$SELECT ato.revoke_incident(ARRAY['u1'], '')$$),
    ($$SELECT ato.set_account_flags(NULL, suspended => true)$$),
    ($$SELECT ato.set_account_flags('{}', suspended => true)$$),
    ($$SELECT ato.set_account_flags(ARRAY['u1', NULL], suspended => true)$$),
    ($$SELECT ato.set_account_flags(ARRAY['u1', ''], suspended => true)$$),
    ($$SELECT ato.lift_incident(NULL)$$),
    ($$SELECT ato.lift_incident('00000000-0000-0000-0000-000000000000')$$),
    ($$SELECT ato.block_network(NULL, 'r')$$),
    ($$SELECT ato.block_network('192.0.2.0/24', NULL)$$),
    ($$SELECT ato.block_network('192.0.2.0/24', '')$$),
    ($$SELECT ato.triage_alert(NULL, 'dismissed')$$),
    ($$SELECT ato.triage_alert(1, NULL)$$),
    ($$SELECT ato.escalate_alert(NULL, 'r')$$),
    ($$SELECT ato.escalate_alert(-1, 'r')$$),
    ($$SELECT ato.run_detection(NULL)$$),
    ($$SELECT ato.run_detection('no such rule')$$),
    ($$SELECT ato.preserve_evidence(NULL)$$),
    ($$SELECT ato.preserve_evidence('00000000-0000-0000-0000-000000000000')$$),
    ($$SELECT ato.verify_evidence(NULL)$$),
    ($$SELECT ato.verify_evidence('00000000-0000-0000-0000-000000000000')$$),
    ($$SELECT ato.export_evidence(NULL)$$),
    ($$SELECT ato.export_evidence('00000000-0000-0000-0000-000000000000')$$),
    ($$SELECT ato.incident_timeline(NULL)$$),
    ($$SELECT ato.incident_timeline('00000000-0000-0000-0000-000000000000')$$)
  ) AS s(statement);
-- the messages name the function and the argument
SELECT ato.login_gate('');
SELECT ato.set_account_flags(ARRAY['u1', NULL], suspended => true);
-- nothing above was stored
SELECT (SELECT count(*) FROM ato.login_events) = b.logins AS no_login, (SELECT count(*) FROM ato.audit_events) = b.audit AS no_audit,
       (SELECT count(*) FROM ato.incidents) = b.incidents AS no_incident, (SELECT count(*) FROM ato.account_flags) = b.flags AS no_flags
  FROM stored_before b;
