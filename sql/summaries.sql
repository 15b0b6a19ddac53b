-- The per-account summaries refreshed in steps (max_span) and their late
-- days folded in a day each, checked after every step against plain-SQL
-- definitions on the same data: a step is committed and exact up to where
-- it stopped, and the steps end where one refresh ends.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
SET client_min_messages = warning;
-- a store of its own
DROP EXTENSION ato_response CASCADE;
CREATE EXTENSION ato_response;
SELECT ato.create_event_partitions('2024-01-01', '2024-04-30') AS created;

-- 60 days of logins of 30 accounts; one in four from somewhere else, one
-- in seven fails.
CREATE TEMP TABLE places (n int PRIMARY KEY, ip inet);
INSERT INTO places VALUES (0, '8.8.8.8'), (1, '81.2.69.160'), (2, '1.1.1.1'), (3, '85.214.132.117'),
                          (4, '2a02:2770::1'), (5, '133.11.0.1'), (6, '10.0.0.1');
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
SELECT 'user-' || (abs(hashint4(i * 11)) % 30),
       (SELECT ip FROM places WHERE n = CASE WHEN hashint4(i * 7) % 4 = 0 THEN abs(hashint4(i)) % 7
                                             ELSE abs(hashint4(i * 11)) % 30 % 4 END),
       CASE WHEN abs(hashint4(i * 3)) % 7 = 0 THEN 'failure' ELSE 'success' END,
       timestamptz '2024-01-01' + i * interval '29 minutes'
  FROM generate_series(0, 2979) i;

-- What the summaries must hold up to the watermark, by plain SQL, and how
-- many rows differ, per table.
CREATE FUNCTION pg_temp.differences() RETURNS TABLE (summary text, differences bigint)
LANGUAGE sql AS $$
    WITH w AS (SELECT summarised_until AS upto, recent_from FROM ato.summary_watermark),
    countries AS (
        SELECT e.user_id, e.country_code, min(e.occurred_at) AS first_success_at
          FROM ato.login_events e, w
         WHERE e.outcome = 'success' AND e.country_code IS NOT NULL AND e.occurred_at < w.upto
         GROUP BY 1, 2),
    last_logins AS (
        SELECT DISTINCT ON (e.user_id) e.user_id, e.id AS event_id
          FROM ato.located_logins e, w
         WHERE e.outcome = 'success' AND e.occurred_at < w.upto
         ORDER BY e.user_id, e.occurred_at DESC, e.id DESC),
    addresses AS (
        SELECT e.ip_address, e.user_id, date_trunc('hour', e.occurred_at) AS hour, count(*) AS logins
          FROM ato.login_events e, w
         WHERE e.outcome = 'success' AND e.ip_address IS NOT NULL
           AND e.occurred_at >= w.recent_from AND e.occurred_at < w.upto
         GROUP BY 1, 2, 3)
    SELECT 'account_countries', count(*) FROM (
        (SELECT * FROM countries EXCEPT ALL SELECT user_id, country_code, first_success_at FROM ato.account_countries)
        UNION ALL
        (SELECT user_id, country_code, first_success_at FROM ato.account_countries EXCEPT ALL SELECT * FROM countries)) d
    UNION ALL
    SELECT 'account_last_logins', count(*) FROM (
        (SELECT * FROM last_logins EXCEPT ALL SELECT user_id, event_id FROM ato.account_last_logins)
        UNION ALL
        (SELECT user_id, event_id FROM ato.account_last_logins EXCEPT ALL SELECT * FROM last_logins)) d
    UNION ALL
    SELECT 'recent_address_logins', count(*) FROM (
        (SELECT * FROM addresses EXCEPT ALL SELECT ip_address, user_id, hour, logins FROM ato.recent_address_logins)
        UNION ALL
        (SELECT ip_address, user_id, hour, logins FROM ato.recent_address_logins EXCEPT ALL SELECT * FROM addresses)) d
$$;

-- 1. A first refresh in steps of 20 days: each step stops short, and what
-- it folded is exact; ato.summary_status shows where it is and where it is
-- going.
CREATE TEMP TABLE steps (step int, summarised_until timestamptz, refreshing_to timestamptz, exact boolean);
DO $$
BEGIN
    FOR step IN 1 .. 10 LOOP
        PERFORM ato.refresh_summaries('2024-03-01 00:00+00', max_span => '20 days');
        INSERT INTO steps
        SELECT step, s.summarised_until, s.refreshing_to,
               (SELECT sum(d.differences) = 0 FROM pg_temp.differences() d)
          FROM ato.summary_status s;
        EXIT WHEN (SELECT summarised_until = refreshing_to FROM ato.summary_status);
    END LOOP;
END
$$;
SELECT * FROM steps ORDER BY step;
SELECT * FROM pg_temp.differences();
SELECT count(*) AS pairs, sum(hashtext(user_id || country_code || first_success_at)) AS checksum
  FROM ato.account_countries \gset stepped_

-- 2. The same history in one refresh gives the same summaries.
TRUNCATE ato.account_countries, ato.account_last_logins, ato.recent_new_country_logins,
         ato.recent_address_logins, ato.summary_late_days;
UPDATE ato.summary_watermark SET summarised_until = '-infinity', recent_from = '-infinity';
SELECT ato.refresh_summaries('2024-03-01 00:00+00') > 0 AS summarised;
SELECT count(*) = :stepped_pairs AS same_pairs,
       sum(hashtext(user_id || country_code || first_success_at)) = :stepped_checksum AS same_summaries
  FROM ato.account_countries;

-- 3. Late logins behind the watermark, stored in one transaction out of
-- order, by accounts never seen: each day is listed once (the middle one too),
-- and consecutive days are folded as one stretch.
BEGIN;
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at) VALUES
    ('late-1', '133.11.0.1', 'success', '2024-01-20 10:00+00'),
    ('late-2', '133.11.0.1', 'success', '2024-01-05 10:00+00'),
    ('late-2', '81.2.69.160', 'success', '2024-01-06 11:00+00'),
    ('late-3', '2a02:2770::1', 'success', '2024-01-12 10:00+00');
COMMIT;
SELECT day FROM ato.summary_late_days ORDER BY day;
SELECT late_from, late_days FROM ato.summary_status;
-- a step of one day folds the earliest late day only, and leaves the others
SELECT ato.refresh_summaries('2024-03-01 00:00+00', max_span => '1 day') AS pairs;
SELECT late_from, late_days, summarised_until FROM ato.summary_status;
SELECT user_id, country_code, first_success_at FROM ato.account_countries WHERE user_id LIKE 'late-%' ORDER BY 1, 2;
SELECT ato.refresh_summaries('2024-03-01 00:00+00') AS pairs;
SELECT late_from, late_days FROM ato.summary_status;
SELECT user_id, country_code, first_success_at FROM ato.account_countries WHERE user_id LIKE 'late-%' ORDER BY 1, 2;
SELECT * FROM pg_temp.differences();

-- 4. Bad steps.
SELECT ato.refresh_summaries('2024-03-01 00:00+00', max_span => '0 days');
SELECT ato.refresh_summaries('2024-03-01 00:00+00', max_span => '-1 day');
SELECT ato.refresh_summaries('2024-03-01 00:00+00', max_span => NULL) AS pairs;
