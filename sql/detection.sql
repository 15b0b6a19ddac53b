-- Detection functions against independent plain-SQL definitions on the same
-- data: ato.new_country_logins, ato.cidr_scope, ato.suspicious_action_counts,
-- with the per-account summaries before any refresh, partly refreshed, with
-- late arrivals behind the watermark, and fully refreshed.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
SET client_min_messages = warning;
-- a store of its own, without the earlier tests' events
DROP EXTENSION ato_response CASCADE;
CREATE EXTENSION ato_response;
SELECT ato.create_event_partitions('2024-03-01', '2024-04-30') AS created;

-- 40 accounts with text, numeric, uuid and e-mail ids; each has a home
-- address, and one login in five comes from somewhere else (IPv4 and IPv6,
-- addresses no database knows among them).  One login in eight fails.
CREATE TEMP TABLE places (n int PRIMARY KEY, ip inet);
INSERT INTO places VALUES
    (0, '8.8.8.8'), (1, '81.2.69.160'), (2, '1.1.1.1'), (3, '85.214.132.117'),
    (4, '2a02:2770::1'), (5, '10.0.0.1'), (6, '2001:4860:4860::8888'), (7, '192.0.2.1'),
    (8, '133.11.0.1'), (9, '::1');
CREATE TEMP TABLE accounts AS
SELECT u, (ARRAY['user-' || u, (100000 + u)::text, md5(u::text)::uuid::text, 'p' || u || '@example.com'])[1 + u % 4] AS id
  FROM generate_series(0, 39) u;

INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
SELECT a.id,
       (SELECT ip FROM places WHERE n = CASE WHEN hashint4(i * 7) % 5 = 0 THEN abs(hashint4(i)) % 10 ELSE a.u % 5 END),
       CASE WHEN abs(hashint4(i * 3)) % 8 = 0 THEN 'failure' ELSE 'success' END,
       timestamptz '2024-03-01' + i * interval '17 minutes'
  FROM generate_series(0, 2999) i
  JOIN accounts a ON a.u = abs(hashint4(i * 11)) % 40;

INSERT INTO ato.audit_events (actor_id, event_type, occurred_at)
SELECT a.id,
       (ARRAY['user.email_changed', 'user.password_changed', 'billing.modified', 'user.mfa.factor.activate', 'app.viewed'])
           [1 + abs(hashint4(i * 5)) % 5],
       timestamptz '2024-03-01' + i * interval '23 minutes' + interval '3 minutes'
  FROM generate_series(0, 1999) i
  JOIN accounts a ON a.u = abs(hashint4(i * 13)) % 40;

SELECT count(*) AS logins, count(country_code) AS located, count(DISTINCT user_id) AS users,
       count(*) FILTER (WHERE family(ip_address) = 6) AS ipv6
  FROM ato.login_events;

-- The definitions, written plainly over the whole store.
CREATE FUNCTION pg_temp.plain_new_country_logins(since timestamptz, action_window interval, action_types text[])
RETURNS TABLE (user_id text, ip_address inet, country_code text, occurred_at timestamptz, suspicious_actions bigint)
LANGUAGE sql AS $$
    SELECT l.user_id, l.ip_address, l.country_code, l.occurred_at,
           (SELECT count(*) FROM ato.audit_events a
             WHERE a.actor_id = l.user_id AND a.event_type = ANY (action_types)
               AND a.occurred_at BETWEEN l.occurred_at AND l.occurred_at + action_window)
      FROM ato.login_events l
     WHERE l.outcome = 'success' AND l.occurred_at >= since
       AND (l.country_code IS NULL OR l.country_code NOT IN (
              SELECT e.country_code FROM ato.login_events e
               WHERE e.user_id = l.user_id AND e.outcome = 'success' AND e.occurred_at < since
                 AND e.country_code IS NOT NULL))
$$;

CREATE FUNCTION pg_temp.plain_cidr_scope(cidrs cidr[], since timestamptz)
RETURNS TABLE (user_id text, logins bigint, first_login timestamptz, last_login timestamptz, ips inet[], actions jsonb)
LANGUAGE sql AS $$
    SELECT l.user_id, count(*), min(l.occurred_at), max(l.occurred_at),
           array_agg(DISTINCT l.ip_address ORDER BY l.ip_address),
           coalesce((SELECT jsonb_object_agg(t.event_type, t.n)
                       FROM (SELECT a.event_type, count(*) AS n FROM ato.audit_events a
                              WHERE a.actor_id = l.user_id AND a.occurred_at >= min(l.occurred_at)
                              GROUP BY a.event_type) t), '{}')
      FROM ato.login_events l
     WHERE l.outcome = 'success' AND l.occurred_at >= since
       AND EXISTS (SELECT FROM unnest(cidrs) c WHERE l.ip_address <<= c)
     GROUP BY l.user_id
$$;

CREATE FUNCTION pg_temp.plain_suspicious_action_counts(user_ids text[], since timestamptz)
RETURNS TABLE (event_type text, actions bigint, accounts bigint)
LANGUAGE sql AS $$
    SELECT a.event_type, count(*), count(DISTINCT a.actor_id)
      FROM ato.audit_events a
     WHERE a.occurred_at >= since AND a.actor_id IN (SELECT unnest(user_ids))
     GROUP BY a.event_type
$$;

-- Rows in one answer and not the other (EXCEPT ALL both ways), and how
-- many rows the function returned: a comparison that found nothing to
-- compare would prove nothing.
CREATE FUNCTION pg_temp.compare_new_country(since timestamptz,
                                            action_window interval DEFAULT '1 hour',
                                            action_types text[] DEFAULT '{user.email_changed,user.password_changed,billing.modified}')
RETURNS TABLE (rows bigint, unlocated bigint, flagged bigint, differences bigint)
LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM ato.new_country_logins(since, action_window, action_types)),
           (SELECT count(*) FROM ato.new_country_logins(since, action_window, action_types) WHERE country_code IS NULL),
           (SELECT count(*) FROM ato.new_country_logins(since, action_window, action_types) WHERE suspicious_actions > 0),
           (SELECT count(*) FROM (
                (SELECT * FROM ato.new_country_logins(since, action_window, action_types)
                 EXCEPT ALL SELECT * FROM pg_temp.plain_new_country_logins(since, action_window, action_types))
                UNION ALL
                (SELECT * FROM pg_temp.plain_new_country_logins(since, action_window, action_types)
                 EXCEPT ALL SELECT * FROM ato.new_country_logins(since, action_window, action_types))) d)
$$;

CREATE FUNCTION pg_temp.compare_cidr_scope(cidrs cidr[], since timestamptz)
RETURNS TABLE (rows bigint, differences bigint)
LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM ato.cidr_scope(cidrs, since)),
           (SELECT count(*) FROM (
                (SELECT user_id, logins, first_login, last_login, ips, actions FROM ato.cidr_scope(cidrs, since)
                 EXCEPT ALL SELECT * FROM pg_temp.plain_cidr_scope(cidrs, since))
                UNION ALL
                (SELECT * FROM pg_temp.plain_cidr_scope(cidrs, since)
                 EXCEPT ALL SELECT user_id, logins, first_login, last_login, ips, actions FROM ato.cidr_scope(cidrs, since))) d)
$$;

CREATE FUNCTION pg_temp.compare_action_counts(user_ids text[], since timestamptz)
RETURNS TABLE (rows bigint, differences bigint)
LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM ato.suspicious_action_counts(user_ids, since)),
           (SELECT count(*) FROM (
                (SELECT * FROM ato.suspicious_action_counts(user_ids, since)
                 EXCEPT ALL SELECT * FROM pg_temp.plain_suspicious_action_counts(user_ids, since))
                UNION ALL
                (SELECT * FROM pg_temp.plain_suspicious_action_counts(user_ids, since)
                 EXCEPT ALL SELECT * FROM ato.suspicious_action_counts(user_ids, since))) d)
$$;

-- The windows (the data runs from 1 March to 5 April 2024): from the second
-- day, from later that day, from a login's exact time, from the very
-- beginning, and one in the future.
CREATE TEMP TABLE windows (label text, since timestamptz);
INSERT INTO windows VALUES
    ('day 3', '2024-03-03 00:00+00'), ('day 3, 10:00', '2024-03-03 10:00+00'),
    ('at a login', timestamptz '2024-03-01' + 2000 * interval '17 minutes'),
    ('from the start', '2024-03-01 00:00+00'), ('future', '2030-01-01 00:00+00');

-- 1. Nothing summarised yet: everything is read from the event store.
SELECT w.label, c.* FROM windows w, pg_temp.compare_new_country(w.since) c ORDER BY w.since;

-- 2. Summarised up to the middle of the data.
SELECT ato.refresh_summaries('2024-03-02 12:00+00') > 0 AS summarised;
SELECT summarised_until, late_from FROM ato.summary_status;
SELECT w.label, c.* FROM windows w, pg_temp.compare_new_country(w.since) c ORDER BY w.since;

-- 3. Summarised to the end, then late events behind the watermark: a login
-- from a new country for an account, weeks before its other logins, and one
-- from its home country; the trigger marks their days for the next refresh.
SELECT ato.refresh_summaries('2024-04-01 00:00+00') > 0 AS summarised;
SELECT summarised_until, late_from FROM ato.summary_status;
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ((SELECT id FROM accounts WHERE u = 3), '85.214.132.117', 'success', '2024-03-02 06:00+00'),
       ((SELECT id FROM accounts WHERE u = 7), '2a02:2770::1', 'success', '2024-03-01 08:00+00');
SELECT summarised_until, late_from FROM ato.summary_status;
SELECT w.label, c.* FROM windows w, pg_temp.compare_new_country(w.since) c ORDER BY w.since;

-- 4. A refresh folds the late days in and clears the mark.
SELECT ato.refresh_summaries('2024-04-01 00:00+00') >= 0 AS summarised;
SELECT summarised_until, late_from FROM ato.summary_status;
SELECT w.label, c.* FROM windows w, pg_temp.compare_new_country(w.since) c ORDER BY w.since;
-- The summaries are exactly the store's successful logins per country up
-- to the watermark (the data runs on into April).
SELECT count(*) AS differences FROM (
    (SELECT user_id, country_code, first_success_at FROM ato.account_countries
     EXCEPT ALL
     SELECT user_id, country_code, min(occurred_at) FROM ato.login_events
      WHERE outcome = 'success' AND country_code IS NOT NULL AND occurred_at < '2024-04-01' GROUP BY 1, 2)
    UNION ALL
    (SELECT user_id, country_code, min(occurred_at) FROM ato.login_events
      WHERE outcome = 'success' AND country_code IS NOT NULL AND occurred_at < '2024-04-01' GROUP BY 1, 2
     EXCEPT ALL
     SELECT user_id, country_code, first_success_at FROM ato.account_countries)) d;

-- Other windows and action types.
SELECT c.* FROM pg_temp.compare_new_country('2024-03-02 00:00+00', '10 minutes', '{app.viewed}') c;
SELECT c.* FROM pg_temp.compare_new_country('2024-03-02 00:00+00', '0', '{}') c;
SELECT c.* FROM pg_temp.compare_new_country('2024-03-02 00:00+00', '3 days', '{NULL,billing.modified}') c;

-- Seed 004's query, with its geo_events join read as the country column and
-- its earlier logins restricted to successful ones, returns the same rows as
-- the function filtered on suspicious_actions > 0.
SELECT count(*) AS seed_rows,
       count(*) FILTER (WHERE f.user_id IS NULL) AS missing_from_function
  FROM (SELECT le.user_id, le.ip_address, le.country_code, le.occurred_at, count(ae.id) AS suspicious_actions
          FROM ato.login_events le
          LEFT JOIN ato.audit_events ae ON
               ae.actor_id = le.user_id AND
               ae.event_type IN ('user.email_changed', 'user.password_changed', 'billing.modified') AND
               ae.occurred_at BETWEEN le.occurred_at AND le.occurred_at + interval '1 hour'
         WHERE le.outcome = 'success' AND le.occurred_at >= '2024-03-02 00:00+00'
           AND le.country_code NOT IN (
                 SELECT DISTINCT le2.country_code FROM ato.login_events le2
                  WHERE le2.user_id = le.user_id AND le2.occurred_at < '2024-03-02 00:00+00'
                    AND le2.outcome = 'success' AND le2.country_code IS NOT NULL)
         GROUP BY le.user_id, le.ip_address, le.country_code, le.occurred_at
        HAVING count(ae.id) > 0) s
  LEFT JOIN ato.new_country_logins('2024-03-02 00:00+00') f USING (user_id, ip_address, country_code, occurred_at, suspicious_actions);
SELECT count(*) AS function_rows_not_in_seed
  FROM ato.new_country_logins('2024-03-02 00:00+00') f
 WHERE f.suspicious_actions > 0 AND f.country_code IS NOT NULL
   AND NOT EXISTS (
       SELECT FROM ato.login_events le2
        WHERE le2.user_id = f.user_id AND le2.occurred_at < '2024-03-02 00:00+00' AND le2.outcome = 'success'
          AND le2.country_code = f.country_code)
   AND f.suspicious_actions <> (
       SELECT count(*) FROM ato.audit_events ae
        WHERE ae.actor_id = f.user_id
          AND ae.event_type IN ('user.email_changed', 'user.password_changed', 'billing.modified')
          AND ae.occurred_at BETWEEN f.occurred_at AND f.occurred_at + interval '1 hour');

-- An attacker's failed attempts do not make his country familiar: a user at
-- home fails twice from Germany, then gets in from there.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ('victim', '8.8.8.8', 'success', '2024-03-05 00:00+00'),
       ('victim', '85.214.132.117', 'failure', '2024-03-06 00:00+00'),
       ('victim', '85.214.132.117', 'failure', '2024-03-06 00:01+00'),
       ('victim', '85.214.132.117', 'success', '2024-03-06 00:05+00');
SELECT user_id, ip_address, country_code, occurred_at, suspicious_actions
  FROM ato.new_country_logins('2024-03-06 00:02+00') WHERE user_id = 'victim';

-- cidr_scope: IPv4 and IPv6 networks, a network nobody came from, NULL
-- elements, an empty list, a huge list.
SELECT c.* FROM pg_temp.compare_cidr_scope('{85.214.0.0/16}', '2024-03-02 00:00+00') c;
SELECT c.* FROM pg_temp.compare_cidr_scope('{2a02:2770::/32, 2001:4860::/32, 1.1.1.0/24}', '2024-03-01 00:00+00') c;
SELECT c.* FROM pg_temp.compare_cidr_scope('{203.0.113.0/24}', '2024-03-01 00:00+00') c;
SELECT c.* FROM pg_temp.compare_cidr_scope('{NULL, 8.8.8.0/24}', '2024-03-03 00:00+00') c;
SELECT c.* FROM pg_temp.compare_cidr_scope('{}', '2024-03-01 00:00+00') c;
SELECT c.* FROM pg_temp.compare_cidr_scope(
    (SELECT array_agg(('11.' || i / 256 || '.' || i % 256 || '.0/24')::cidr) || '{1.1.1.1/32}'::cidr[]
       FROM generate_series(0, 9999) i),
    '2024-03-01 00:00+00') c;
-- Duplicate, covered and overlapping networks of both families, in no
-- order (cidr_scope keeps only the networks nothing else covers): the same
-- answer as the plain definition, which tests every network.
SELECT c.* FROM pg_temp.compare_cidr_scope(
    '{85.214.132.0/24, 85.214.0.0/16, NULL, 85.214.0.0/16, 85.214.132.117/32, 2a02:2770::/32, 2a02:2770:0:1::/64, 2a02:2770::/32, 2a02::/16, 1.1.1.0/24, 1.1.1.1/32, 1.1.0.0/23, 8.8.8.8/32, 8.8.8.8/32}', '2024-03-01 00:00+00') c;
SELECT user_id, logins, ips, actions FROM ato.cidr_scope('{85.214.0.0/16}', '2024-03-06 00:00+00') ORDER BY user_id;

-- suspicious_action_counts: the accounts cidr_scope found, duplicates,
-- unknown ids, NULL elements, no ids.
SELECT c.* FROM pg_temp.compare_action_counts(
    (SELECT array_agg(user_id) FROM ato.cidr_scope('{85.214.0.0/16}', '2024-03-02 00:00+00')), '2024-03-02 00:00+00') c;
SELECT c.* FROM pg_temp.compare_action_counts((SELECT array_agg(id) || array_agg(id) FROM accounts), '2024-03-01 00:00+00') c;
SELECT c.* FROM pg_temp.compare_action_counts('{nobody, NULL}', '2024-03-01 00:00+00') c;
SELECT c.* FROM pg_temp.compare_action_counts('{}', '2024-03-01 00:00+00') c;
SELECT * FROM ato.suspicious_action_counts((SELECT array_agg(id) FROM accounts WHERE u < 4), '2024-03-08 00:00+00');

-- The recent summaries.  Refreshed up to 4 April 12:00, they hold the
-- logins from 2 April 12:00 on (two days, whole UTC hours): the young pairs'
-- logins for new_country_logins, per address and hour for cidr_scope.
SELECT ato.refresh_summaries('2024-04-04 12:00+00') >= 0 AS summarised;
SELECT summarised_until, late_from, recent_from FROM ato.summary_status;
-- Rows in each recent summary and not in its plain definition, both ways.
CREATE FUNCTION pg_temp.compare_recent_summaries()
RETURNS TABLE (young_logins bigint, young_differences bigint, buckets bigint, bucket_differences bigint)
LANGUAGE sql AS $$
    WITH s AS (SELECT recent_from, summarised_until FROM ato.summary_watermark),
    young AS (
        SELECT l.id, l.user_id, l.ip_address, l.country_code, l.occurred_at,
               (SELECT min(e.occurred_at) FROM ato.login_events e
                 WHERE e.user_id = l.user_id AND e.country_code = l.country_code AND e.outcome = 'success')
          FROM ato.login_events l, s
         WHERE l.outcome = 'success' AND l.occurred_at >= s.recent_from AND l.occurred_at < s.summarised_until
           AND (l.country_code IS NULL OR NOT EXISTS (
                  SELECT FROM ato.login_events e
                   WHERE e.user_id = l.user_id AND e.country_code = l.country_code
                     AND e.outcome = 'success' AND e.occurred_at < s.recent_from))),
    buckets AS (
        SELECT l.ip_address, l.user_id, date_trunc('hour', l.occurred_at, 'UTC') AS hour,
               count(*) AS logins, min(l.occurred_at) AS first_login, max(l.occurred_at) AS last_login
          FROM ato.login_events l, s
         WHERE l.outcome = 'success' AND l.ip_address IS NOT NULL
           AND l.occurred_at >= s.recent_from AND l.occurred_at < s.summarised_until
         GROUP BY 1, 2, 3)
    SELECT (SELECT count(*) FROM ato.recent_new_country_logins),
           (SELECT count(*) FROM ((SELECT * FROM ato.recent_new_country_logins EXCEPT ALL SELECT * FROM young)
                                  UNION ALL
                                  (SELECT * FROM young EXCEPT ALL SELECT * FROM ato.recent_new_country_logins)) d),
           (SELECT count(*) FROM ato.recent_address_logins),
           (SELECT count(*) FROM ((SELECT * FROM ato.recent_address_logins EXCEPT ALL SELECT * FROM buckets)
                                  UNION ALL
                                  (SELECT * FROM buckets EXCEPT ALL SELECT * FROM ato.recent_address_logins)) d)
$$;
SELECT * FROM pg_temp.compare_recent_summaries();
-- Windows inside the recent stretch (from its first hour, from the middle of
-- an hour, from a login's exact time, from the watermark's own hour), one
-- after the watermark and one before the stretch; networks that cover every
-- address, that overlap, and that nobody came from.
CREATE TEMP TABLE recent_windows (label text, since timestamptz);
INSERT INTO recent_windows VALUES
    ('stretch start', '2024-04-02 12:00+00'), ('mid-hour', '2024-04-03 10:30+00'),
    ('at a login', timestamptz '2024-03-01' + 2800 * interval '17 minutes'),
    ('last hour', '2024-04-04 11:30+00'), ('after watermark', '2024-04-04 13:00+00'),
    ('before stretch', '2024-04-01 00:00+00');
CREATE FUNCTION pg_temp.compare_recent_windows()
RETURNS TABLE (label text, new_country bigint, new_country_differences bigint,
               everything bigint, everything_differences bigint, overlapping bigint, overlapping_differences bigint,
               unused_differences bigint)
LANGUAGE sql AS $$
    SELECT w.label, n.rows, n.differences, a.rows, a.differences, o.rows, o.differences, u.differences
      FROM recent_windows w,
           pg_temp.compare_new_country(w.since) n,
           pg_temp.compare_cidr_scope('{0.0.0.0/0, ::/0}', w.since) a,
           pg_temp.compare_cidr_scope('{8.8.8.0/24, 81.2.0.0/16, 81.2.69.160/32, 2a02:2770::/32, 2a02:2770::1/128}', w.since) o,
           pg_temp.compare_cidr_scope('{NULL, 10.0.0.0/8, 203.0.113.0/24}', w.since) u
     ORDER BY w.since
$$;
SELECT * FROM pg_temp.compare_recent_windows();
-- The same duplicate and covered networks against the recent summaries.
SELECT w.label, c.* FROM recent_windows w, pg_temp.compare_cidr_scope(
    '{85.214.132.0/24, 85.214.0.0/16, NULL, 85.214.0.0/16, 85.214.132.117/32, 2a02:2770::/32, 2a02:2770:0:1::/64, 2a02:2770::/32, 2a02::/16, 1.1.1.0/24, 1.1.1.1/32, 1.1.0.0/23, 8.8.8.8/32, 8.8.8.8/32}', w.since) c
 ORDER BY w.since;
-- Late events inside the stretch (first logins from Brazil, which no
-- account knows, and one from a familiar place) and one before it that
-- makes Brazil familiar to one of the two accounts: until the next refresh
-- the windows read the store from the late day on; the refresh builds the
-- stretch again from there.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ((SELECT id FROM accounts WHERE u = 10), '200.160.0.8', 'success', '2024-04-03 05:30+00'),
       ((SELECT id FROM accounts WHERE u = 11), '81.2.69.160', 'success', '2024-04-03 05:40+00'),
       ((SELECT id FROM accounts WHERE u = 12), '200.160.0.8', 'success', '2024-04-03 06:00+00'),
       ((SELECT id FROM accounts WHERE u = 12), '200.160.0.8', 'success', '2024-03-10 06:00+00');
SELECT summarised_until, late_from, recent_from FROM ato.summary_status;
SELECT * FROM pg_temp.compare_recent_windows();
SELECT ato.refresh_summaries('2024-04-04 12:00+00') >= 0 AS summarised;
SELECT summarised_until, late_from, recent_from FROM ato.summary_status;
SELECT * FROM pg_temp.compare_recent_summaries();
SELECT * FROM pg_temp.compare_recent_windows();
SELECT user_id, ip_address, country_code, occurred_at FROM ato.new_country_logins('2024-04-03 05:00+00')
 WHERE user_id IN (SELECT id FROM accounts WHERE u IN (10, 12)) AND country_code = 'BR';
-- A late event older than the stretch can make a young pair old (Brazil
-- for the first account, on 12 March): its recent logins follow.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ((SELECT id FROM accounts WHERE u = 10), '200.160.0.8', 'success', '2024-03-12 06:00+00');
SELECT ato.refresh_summaries('2024-04-04 12:00+00') >= 0 AS summarised;
SELECT * FROM pg_temp.compare_recent_summaries();
SELECT * FROM pg_temp.compare_recent_windows();
SELECT user_id, ip_address, country_code, occurred_at FROM ato.new_country_logins('2024-04-03 05:00+00')
 WHERE user_id IN (SELECT id FROM accounts WHERE u IN (10, 12)) AND country_code = 'BR';
-- The functions do read them: emptied, the windows inside the stretch lose
-- their summarised rows, the window before it does not.
TRUNCATE ato.recent_new_country_logins, ato.recent_address_logins;
SELECT label, new_country_differences > 0 AS new_country_differ, everything_differences > 0 AS cidr_scope_differs
  FROM pg_temp.compare_recent_windows() WHERE label IN ('stretch start', 'before stretch');
-- A refresh after late events older than the stretch does not rebuild it.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ((SELECT id FROM accounts WHERE u = 13), '8.8.8.8', 'success', '2024-03-12 06:00+00');
SELECT ato.refresh_summaries('2024-04-04 12:00+00') >= 0 AS summarised;
SELECT young_logins, buckets FROM pg_temp.compare_recent_summaries();

-- Bad arguments: an error with an SQLSTATE and a hint, never a crash.
\set VERBOSITY default
SELECT * FROM ato.new_country_logins(NULL);
SELECT * FROM ato.new_country_logins('-infinity');
SELECT * FROM ato.new_country_logins('2024-03-02', NULL);
SELECT * FROM ato.new_country_logins('2024-03-02', '-1 hour');
SELECT * FROM ato.new_country_logins('2024-03-02', '1 hour', NULL);
SELECT * FROM ato.new_country_logins('2024-03-02', '1 hour', '{{a,b},{c,d}}');
SELECT * FROM ato.cidr_scope(NULL);
SELECT * FROM ato.cidr_scope('{192.0.2.0/24}', NULL);
SELECT * FROM ato.cidr_scope('{192.0.2.1/24}');
SELECT * FROM ato.suspicious_action_counts(NULL);
SELECT * FROM ato.suspicious_action_counts('{a}', NULL);
SELECT ato.refresh_summaries(NULL);
SELECT ato.refresh_summaries('infinity');
-- A window starting in the future, after the summaries: nothing, quietly.
SELECT count(*) FROM ato.new_country_logins('infinity');

-- Before a refresh the detection functions say the summaries lag.
SET client_min_messages = notice;
UPDATE ato.summary_watermark SET summarised_until = '2024-03-01';
TRUNCATE ato.summary_late_days;
SELECT count(*) > 0 AS rows FROM ato.new_country_logins('2024-03-06 00:00+00');
