-- Bad input on every way in: a clear error with an SQLSTATE and a hint, or
-- a documented default, and never a partial batch.
SET timezone = 'UTC';
\set VERBOSITY default
\set SHOW_CONTEXT never

-- The SQLSTATE a statement fails with ('ok' when it succeeds).
CREATE FUNCTION pg_temp.sqlstate_of(statement text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;

CREATE TEMP TABLE before_count AS
SELECT (SELECT count(*) FROM ato.login_events) AS logins, (SELECT count(*) FROM ato.audit_events) AS audits;

-- Missing user ids, outcomes and times.
SELECT ato.record_login(NULL, '8.8.8.8', 'success');
SELECT ato.record_login('', '8.8.8.8', 'success');
SELECT ato.record_login('u1', '8.8.8.8', NULL);
SELECT ato.record_login('u1', '8.8.8.8', 'maybe');
SELECT ato.record_login('u1', '8.8.8.8', 'success', NULL);
SELECT ato.record_login('u1', '8.8.8.8', 'success', 'infinity');
INSERT INTO ato.login_events (user_id, outcome, occurred_at) VALUES ('u1', 'success', '-infinity');
SELECT ato.record_event(NULL, 'user.email_changed');
SELECT ato.record_event('u1', NULL);
SELECT ato.record_event('u1', '');

SELECT s.statement, pg_temp.sqlstate_of(s.statement) AS sqlstate
  FROM (VALUES
    ($$SELECT ato.record_login(NULL, '8.8.8.8', 'success')$$),
    ($$SELECT ato.record_login('', '8.8.8.8', 'success')$$),
    ($$SELECT ato.record_login('u1', '8.8.8.8', NULL)$$),
    ($$SELECT ato.record_login('u1', '8.8.8.8', 'succes')$$),
    ($$SELECT ato.record_login('u1', '8.8.8.8', 'success', NULL)$$),
    ($$SELECT ato.record_login('u1', '8.8.8.8', 'success', 'infinity')$$),
    ($$INSERT INTO ato.login_events (user_id, outcome) VALUES (NULL, 'success')$$),
    ($$INSERT INTO ato.login_events (user_id, outcome, occurred_at) VALUES ('u1', 'success', NULL)$$),
    ($$SELECT ato.record_event('u1', '')$$),
    ($$SELECT ato.record_event('', 'user.email_changed')$$),
    ($$SELECT ato.record_login('u1', '300.1.1.1', 'success')$$),
    ($$SELECT ato.record_login('u1', 'not-an-address', 'success')$$),
    ($$SELECT ato.record_login('u1', '', 'success')$$),
    ($$SELECT ato.record_login('u1', '1.2.3.4/33', 'success')$$),
    ($$SELECT ato.record_login('u1', '::g', 'success')$$),
    ($$UPDATE ato.login_events SET outcome = 'bogus' WHERE false$$),
    ($$UPDATE ato.login_events SET outcome = 'bogus'$$),
    ($$UPDATE ato.login_events SET user_id = ''$$)
  ) AS s(statement);

-- Malformed addresses are rejected by inet's own input, with the address named.
SELECT ato.record_login('u1', '300.1.1.1', 'success');
SELECT ato.geoip_country('not-an-address');

-- Outcomes in any letter case are stored in lower case.
SELECT ato.record_login('case-user', '8.8.8.8', o, '2024-02-01 00:00+00') > 0 AS stored
  FROM unnest(ARRAY['SUCCESS', 'Failure', 'cHaLlEnGe']) AS o;
SELECT outcome, count(*) FROM ato.login_events WHERE user_id = 'case-user' GROUP BY outcome ORDER BY outcome;
SELECT ato.login_outcomes();

-- Oversize user agents are cut to ato_response.max_user_agent_length bytes,
-- on a character boundary; the event is kept.
SELECT ato.record_login('ua-user', '8.8.8.8', 'success', '2024-02-01 00:00+00', repeat('a', 100000)) > 0 AS stored;
SELECT ato.record_login('ua-user', '8.8.8.8', 'success', '2024-02-01 00:01+00', repeat('é', 2000)) > 0 AS stored;
SELECT ato.record_login('ua-user', '8.8.8.8', 'success', '2024-02-01 00:02+00', repeat('€', 1000)) > 0 AS stored;
SET ato_response.max_user_agent_length = 100;
SELECT ato.record_login('ua-user', '8.8.8.8', 'success', '2024-02-01 00:03+00', repeat('b', 101)) > 0 AS stored;
SELECT ato.record_login('ua-user', '8.8.8.8', 'success', '2024-02-01 00:04+00', repeat('c', 100)) > 0 AS stored;
RESET ato_response.max_user_agent_length;
SELECT occurred_at, octet_length(user_agent) AS bytes, length(user_agent) AS chars, left(user_agent, 3) AS starts
  FROM ato.login_events WHERE user_id = 'ua-user' ORDER BY occurred_at;
SET ato_response.max_user_agent_length = 10;

-- A batch with one bad row stores nothing: COPY and multi-row INSERT.
SELECT count(*) AS logins_before FROM ato.login_events \gset
COPY ato.login_events (user_id, ip_address, outcome, occurred_at) FROM STDIN WITH (FORMAT csv);
batch-1,8.8.8.8,success,2024-02-01 01:00+00
batch-2,1.1.1.1,failure,2024-02-01 01:01+00
batch-3,81.2.69.160,teleported,2024-02-01 01:02+00
batch-4,8.8.4.4,success,2024-02-01 01:03+00
\.
COPY ato.login_events (user_id, ip_address, outcome, occurred_at) FROM STDIN WITH (FORMAT csv);
batch-1,8.8.8.8,success,2024-02-01 01:00+00
batch-2,999.1.1.1,failure,2024-02-01 01:01+00
\.
COPY ato.login_events (user_id, ip_address, outcome, occurred_at) FROM STDIN WITH (FORMAT csv);
batch-1,8.8.8.8,success,2024-02-01 01:00+00
,1.1.1.1,failure,2024-02-01 01:01+00
\.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
SELECT 'batch-' || g, '8.8.8.8', CASE WHEN g = 5000 THEN 'nope' ELSE 'success' END, '2024-02-01 02:00+00'
  FROM generate_series(1, 10000) g;
SELECT count(*) - :logins_before AS rows_added_by_failed_batches FROM ato.login_events;

-- What was committed before a failure is still there.
BEGIN;
SELECT ato.record_login('kept-user', '8.8.8.8', 'success', '2024-02-01 03:00+00') > 0 AS stored;
COMMIT;
BEGIN;
SELECT ato.record_login('lost-user', '8.8.8.8', 'success', '2024-02-01 03:00+00') > 0 AS stored;
SELECT ato.record_login('lost-user', '8.8.8.8', 'broken', '2024-02-01 03:01+00');
COMMIT;
SELECT user_id, count(*) FROM ato.login_events WHERE user_id IN ('kept-user', 'lost-user') GROUP BY user_id;

-- A large batch (50,000 rows through COPY-like INSERT ... SELECT) is fine.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
SELECT 'bulk-' || (g % 997), ('1.0.' || (g % 256) || '.' || (g % 200))::inet, 'success',
       '2024-02-15 00:00+00'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 50000) g;
SELECT count(*) AS bulk_rows, count(country_code) AS bulk_enriched, count(DISTINCT user_id) AS bulk_users
  FROM ato.login_events WHERE user_id LIKE 'bulk-%';

-- The trigger guards itself when attached where it does not belong.
CREATE TABLE not_events (user_id text, note text);
CREATE TRIGGER wrong BEFORE INSERT ON not_events FOR EACH ROW EXECUTE FUNCTION ato.enrich_event('login');
INSERT INTO not_events VALUES ('u', 'n');
CREATE TRIGGER wrong2 BEFORE INSERT ON not_events FOR EACH ROW EXECUTE FUNCTION ato.enrich_event();
DROP TRIGGER wrong ON not_events;
INSERT INTO not_events VALUES ('u', 'n');
DROP TRIGGER wrong2 ON not_events;
CREATE TRIGGER wrong3 AFTER INSERT ON not_events FOR EACH ROW EXECUTE FUNCTION ato.enrich_event('login');
INSERT INTO not_events VALUES ('u', 'n');
DROP TRIGGER wrong3 ON not_events;
CREATE TRIGGER wrong4 BEFORE INSERT ON not_events FOR EACH ROW EXECUTE FUNCTION ato.enrich_event('logins');
INSERT INTO not_events VALUES ('u', 'n');
DROP TABLE not_events;
SELECT ato.enrich_event();

SELECT (SELECT count(*) FROM ato.login_events) - logins AS logins_added,
       (SELECT count(*) FROM ato.audit_events) - audits AS audits_added
  FROM before_count;
