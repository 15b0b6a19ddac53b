-- Attacks on the extension from roles that hold only what they were granted:
-- a table owner's code run by an incident, operators planted in a writable
-- schema, and over-long identifiers stored to break the summaries.  Each
-- reproduces an attack that once worked; the outcome shown is the defence.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
\set VERBOSITY default
CREATE ROLE regress_ato_tenant;     -- owns an application table
CREATE ROLE regress_ato_responder;  -- may revoke, nothing else
CREATE ROLE regress_ato_writer;     -- may only record logins
GRANT USAGE ON SCHEMA ato TO regress_ato_responder, regress_ato_writer;
GRANT EXECUTE ON FUNCTION ato.revoke_incident(text[], text, boolean, boolean, boolean, boolean, timestamptz, uuid)
    TO regress_ato_responder;
GRANT EXECUTE ON FUNCTION ato.record_login(text, inet, text, timestamptz, text, text, jsonb),
                          ato.record_event(text, text, timestamptz, inet, text, text, text, text, jsonb)
    TO regress_ato_writer;
CREATE SCHEMA app AUTHORIZATION regress_ato_tenant;
-- the default before PostgreSQL 15: anyone may create in public
GRANT CREATE ON SCHEMA public TO PUBLIC;

-- 1. A registered table's trigger tries to make its owner superuser.
SET ROLE regress_ato_tenant;
CREATE TABLE app.sessions (user_id text NOT NULL, ended_at timestamptz);
CREATE TABLE app.trigger_runs (acting_as name, superuser boolean, escalation text);
CREATE FUNCTION app.escalate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    outcome text := 'escalated';
BEGIN
    BEGIN
        EXECUTE 'ALTER ROLE regress_ato_tenant SUPERUSER';
    EXCEPTION WHEN OTHERS THEN
        outcome := SQLSTATE || ' ' || SQLERRM;
    END;
    INSERT INTO app.trigger_runs
    SELECT current_user, r.rolsuper, outcome FROM pg_catalog.pg_roles r WHERE r.rolname = current_user;
    RETURN NEW;
END $$;
CREATE TRIGGER escalate BEFORE UPDATE ON app.sessions FOR EACH ROW EXECUTE FUNCTION app.escalate();
INSERT INTO app.sessions VALUES ('alice', NULL), ('bob', NULL);
RESET ROLE;
SELECT ato.register_revocation_target('app.sessions', 'user_id', 'end', state_column => 'ended_at') > 0 AS registered;

SET ROLE regress_ato_responder;
SELECT ato.revoke_incident(ARRAY['alice'], 'drill: trigger escalation') IS NOT NULL AS revoked;
RESET ROLE;
-- the trigger ran as the table's owner, who is still no superuser
SELECT acting_as, superuser, escalation FROM app.trigger_runs;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_ato_tenant';
SELECT user_id, ended_at IS NOT NULL AS ended FROM app.sessions ORDER BY user_id;

-- A deferred trigger would fire at commit, as whoever commits: PostgreSQL
-- refuses it inside the restricted operation, so that table fails alone
-- (the accounts are contained all the same, the other tables are marked).
SET ROLE regress_ato_tenant;
CREATE TABLE app.tokens (user_id text NOT NULL, revoked boolean NOT NULL DEFAULT false);
CREATE FUNCTION app.later() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO app.trigger_runs VALUES (current_user, NULL, 'deferred');
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER later AFTER UPDATE ON app.tokens DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION app.later();
INSERT INTO app.tokens VALUES ('bob');
RESET ROLE;
SELECT ato.register_revocation_target('app.tokens', 'user_id', 'revoke', state_column => 'revoked') > 0 AS registered;
TRUNCATE app.trigger_runs;
SET ROLE regress_ato_responder;
SELECT ato.revoke_incident(ARRAY['bob'], 'drill: deferred trigger') IS NOT NULL AS revoked;
RESET ROLE;
SELECT count(*) AS deferred_runs FROM app.trigger_runs WHERE escalation = 'deferred';
SELECT it.target_name, it.rows_touched, it.failed_batches, it.last_error
  FROM ato.incident_targets it JOIN ato.incidents i ON i.id = it.incident_id
 WHERE i.reason = 'drill: deferred trigger' ORDER BY it.target_name;
SELECT user_id, revoked FROM app.tokens;
SELECT ato.unregister_revocation_target('app.tokens');

-- A role that row-level security limits to its own tenant's rows may not
-- register the table: incidents would act on every tenant's rows as the owner.
SET ROLE regress_ato_tenant;
CREATE TABLE app.shared_sessions (tenant name NOT NULL, user_id text NOT NULL, ended_at timestamptz);
ALTER TABLE app.shared_sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_tenant ON app.shared_sessions USING (tenant = current_user);
GRANT USAGE ON SCHEMA app TO regress_ato_writer;
GRANT SELECT, UPDATE ON app.shared_sessions TO regress_ato_writer;
RESET ROLE;
GRANT EXECUTE ON FUNCTION ato.register_revocation_target(regclass, name, text, name, name, name, name, name)
    TO regress_ato_writer;
SET ROLE regress_ato_writer;
SELECT ato.register_revocation_target('app.shared_sessions', 'user_id', 'end', state_column => 'ended_at');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION ato.register_revocation_target(regclass, name, text, name, name, name, name, name)
    FROM regress_ato_writer;

-- A table's trigger that raises a serialization failure (or any error but a
-- cancel) fails that table alone: it cannot roll the incident's containment back.
SET ROLE regress_ato_tenant;
CREATE TABLE app.flaky (user_id text NOT NULL, active boolean NOT NULL DEFAULT true);
CREATE FUNCTION app.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'not now' USING ERRCODE = 'serialization_failure';
END $$;
CREATE TRIGGER refuse BEFORE UPDATE ON app.flaky FOR EACH ROW EXECUTE FUNCTION app.refuse();
INSERT INTO app.flaky VALUES ('erin');
RESET ROLE;
SET client_min_messages = warning;
SELECT ato.register_revocation_target('app.flaky', 'user_id', 'deactivate', state_column => 'active') > 0 AS registered;
RESET client_min_messages;
SET ROLE regress_ato_responder;
SELECT ato.revoke_incident(ARRAY['erin'], 'drill: flaky table') IS NOT NULL AS revoked;
RESET ROLE;
SELECT count(*) AS erin_revoked FROM ato.account_revocations WHERE user_id = 'erin';
SELECT it.target_name, it.failed_batches, it.last_error
  FROM ato.incident_targets it JOIN ato.incidents i ON i.id = it.incident_id
 WHERE i.reason = 'drill: flaky table' AND it.target_name = 'app.flaky';
SELECT ato.unregister_revocation_target('app.flaky');

-- 2. An operator planted in public for the user-id column's types.
SET ROLE regress_ato_tenant;
CREATE TABLE app.devices (user_id varchar(40) NOT NULL, active boolean NOT NULL DEFAULT true);
INSERT INTO app.devices VALUES ('carol'), ('dave');
RESET ROLE;
SELECT ato.register_revocation_target('app.devices', 'user_id', 'deactivate', state_column => 'active') > 0 AS registered;
SET ROLE regress_ato_writer;
CREATE FUNCTION public.planted_eq(varchar, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE WARNING 'planted operator called as %', current_user;
    RETURN $1::text = $2;
END $$;
CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = text, FUNCTION = public.planted_eq);
RESET ROLE;
SET search_path = public, pg_catalog;
SET ROLE regress_ato_responder;
-- no WARNING: the planted operator is never called
SELECT ato.revoke_incident(ARRAY['carol'], 'drill: planted operator') IS NOT NULL AS revoked;
RESET ROLE;
RESET search_path;
SELECT user_id, active FROM app.devices ORDER BY user_id;
DROP OPERATOR public.= (varchar, text);
DROP FUNCTION public.planted_eq(varchar, text);

-- 3. Over-long identifiers are refused as they are stored, whichever way.
SET ROLE regress_ato_writer;
SELECT ato.record_login(repeat('u', 1000), '81.2.69.160', 'success', '2024-03-01 00:00+00') > 0 AS longest_stored;
SELECT ato.record_login(repeat('u', 1001), '81.2.69.160', 'success', '2024-03-01 00:00+00');
SELECT ato.record_login(repeat('u', 3200), '81.2.69.160', 'success', '2024-03-01 00:00+00');
SELECT ato.record_login(repeat('u', 10000000), '81.2.69.160', 'success', '2024-03-01 00:00+00');
SELECT ato.record_login('u', '81.2.69.160', 'success', '2024-03-01 00:00+00', source => repeat('s', 201));
SELECT ato.record_event(repeat('a', 1001), 'user.email_changed');
SELECT ato.record_event('a', repeat('e', 201));
SELECT ato.record_event('a', 'user.email_changed', target_type => repeat('t', 201));
SELECT ato.record_event('a', 'user.email_changed', target_id => repeat('t', 1001));
SELECT ato.record_event('a', 'user.email_changed', target_type => 'user', target_id => repeat('t', 1000)) > 0 AS longest_stored;
RESET ROLE;
-- the same rules hold for INSERT and COPY, and for a multibyte id of 1001 bytes
INSERT INTO ato.login_events (user_id, outcome) VALUES (repeat('é', 500) || 'x', 'success');
COPY ato.login_events (user_id, outcome) FROM stdin;
uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu	success
\.
-- A place that no distance can be computed from would make impossible_travel
-- fail at every run: coordinates must be degrees, countries two letters.
INSERT INTO ato.login_events (user_id, outcome, latitude, longitude) VALUES ('u', 'success', 'Infinity', 0);
INSERT INTO ato.login_events (user_id, outcome, latitude, longitude) VALUES ('u', 'success', 'NaN', 0);
INSERT INTO ato.login_events (user_id, outcome, latitude, longitude) VALUES ('u', 'success', 1e308, 0);
INSERT INTO ato.login_events (user_id, outcome, latitude, longitude) VALUES ('u', 'success', 0, -180.5);
INSERT INTO ato.login_events (user_id, outcome, country_code) VALUES ('u', 'success', repeat('X', 3000));
INSERT INTO ato.login_events (user_id, outcome, country_code) VALUES ('u', 'success', 'É');
INSERT INTO ato.login_events (user_id, outcome, country_code) VALUES ('u', 'success', '');
INSERT INTO ato.audit_events (actor_id, event_type, country_code) VALUES ('u', 'user.email_changed', 'U1');
-- the largest degrees are places, and a lower-case code is stored in upper case
INSERT INTO ato.login_events (user_id, outcome, occurred_at, latitude, longitude, country_code)
VALUES ('edge', 'success', '2024-03-01 00:00+00', -90, 180, 'nz'),
       ('edge', 'success', '2024-03-01 00:10+00', 90, -180, 'Us')
RETURNING country_code, latitude, longitude;
-- A writer dates a login tomorrow, so that it counts before it happens:
-- refused beyond ato_response.max_future_skew (5 minutes), whichever way in.
SET ROLE regress_ato_writer;
SELECT ato.record_login('future', '81.2.69.160', 'success', '2999-01-01 00:00+00');
RESET ROLE;
-- (only the SQLSTATE of errors that name a time relative to now)
\set VERBOSITY sqlstate
INSERT INTO ato.login_events (user_id, outcome, occurred_at) VALUES ('future', 'success', now() + interval '1 day');
SELECT ato.record_event('future', 'user.email_changed', now() + interval '1 hour');
SELECT ato.record_login('future', NULL, 'success', now() + interval '4 minutes') > 0 AS within_the_skew;
SET ato_response.max_future_skew = 0;
SELECT ato.record_login('future', NULL, 'success', now() + interval '1 second');
SET ato_response.max_future_skew = -1;
SELECT ato.record_login('future', NULL, 'success', '2999-01-01 00:00+00') > 0 AS any_time_when_off;
RESET ato_response.max_future_skew;
\set VERBOSITY default
-- a row loaded again with its recorded_at (a restore) keeps its time
INSERT INTO ato.login_events (user_id, outcome, occurred_at, recorded_at)
VALUES ('future', 'success', '2999-01-01 00:00+00', '2999-01-01 00:00+00');
DELETE FROM ato.login_events WHERE user_id = 'future';
-- the longest id that was stored does not stop the summaries
SELECT ato.refresh_summaries('2024-03-02') >= 1 AS refreshed;
SELECT octet_length(user_id), country_code FROM ato.account_countries WHERE user_id LIKE 'uuu%';

-- 4. A session of an account suspended outside any incident is refused,
-- however recent, and lives again when the suspension is lifted.
SELECT ato.set_account_flags(ARRAY['suspect'], suspended => true, reason => 'drill');
SELECT ato.session_revoked('suspect', now()) AS suspended_session_refused,
       ato.session_revoked('suspect-not', now()) AS other_account_refused;
SELECT ato.set_account_flags(ARRAY['suspect'], suspended => false);
SELECT ato.session_revoked('suspect', now()) AS lifted_session_refused;

RESET ROLE;
SELECT ato.unregister_revocation_target('app.sessions');
SELECT ato.unregister_revocation_target('app.devices');
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
DROP SCHEMA app CASCADE;
DROP OWNED BY regress_ato_tenant, regress_ato_responder, regress_ato_writer;
DROP ROLE regress_ato_tenant;
DROP ROLE regress_ato_responder;
DROP ROLE regress_ato_writer;
