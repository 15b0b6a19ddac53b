-- load.sql -- one event file (:events_file) into ato.login_events and, with
-- the countries the trigger found, into bench.le; one successful login in
-- eight followed, within half an hour, by an account change of one of six
-- kinds (no later than now) in ato.audit_events and bench.ae; all four vacuumed and analysed.
-- (Login and audit events take their ids from one sequence.)

SELECT coalesce(max(id), 0) AS before FROM ato.login_events \gset
\set table ato.login_events
:copy_events
INSERT INTO bench.le SELECT id, user_id, ip_address, outcome, occurred_at, country_code
  FROM ato.login_events WHERE id > :before;
\ir ../lib/account_changes.sql
INSERT INTO bench.ae SELECT actor_id, event_type, occurred_at FROM ato.audit_events
 WHERE id > :before;
VACUUM ANALYZE ato.login_events;
VACUUM ANALYZE ato.audit_events;
VACUUM ANALYZE bench.le;
VACUUM ANALYZE bench.ae;
