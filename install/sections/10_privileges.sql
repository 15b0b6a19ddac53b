-- install/sections/10_privileges.sql: the closing privileges: no table or sequence of schema ato for PUBLIC (each function's REVOKE stands next to it).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- Privileges: the event store holds private data and its writers act on
-- accounts, so nothing is PUBLIC but the GeoIP look-ups.  Grant what a role
-- needs, for example:
--   GRANT USAGE ON SCHEMA ato TO app;
--   GRANT EXECUTE ON FUNCTION ato.record_login(text, inet, text, timestamptz, text, text, jsonb) TO app;
-- (record_login and record_event run as the extension's owner, so the
-- application needs no privilege on the tables), or for bulk loads:
--   GRANT INSERT ON ato.login_events, ato.audit_events TO loader;
--   GRANT USAGE ON SEQUENCE ato.event_id_seq TO loader;
-- ---------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA ato FROM PUBLIC;
REVOKE ALL ON SEQUENCE ato.event_id_seq FROM PUBLIC;
REVOKE ALL ON SEQUENCE ato.summary_refresh_bound FROM PUBLIC;
