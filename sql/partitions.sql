-- Monthly partitions: creating them (moving in what the default partition
-- holds), listing them, dropping old months, and bad arguments.
SET timezone = 'UTC';
\set SHOW_CONTEXT never

-- Rows for months with no partition wait in the default partition.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ('part-user', '8.8.8.8', 'success', '2023-05-10 00:00+00'),
       ('part-user', '8.8.8.8', 'success', '2023-05-31 23:59:59.999999+00'),
       ('part-user', '8.8.8.8', 'failure', '2023-06-01 00:00+00'),
       ('part-user', '8.8.8.8', 'success', '2023-07-04 00:00+00');
INSERT INTO ato.audit_events (actor_id, event_type, occurred_at)
VALUES ('part-user', 'user.password_changed', '2023-05-11 00:00+00');
SELECT tableoid::regclass, count(*) FROM ato.login_events WHERE user_id = 'part-user' GROUP BY 1;

-- Creating May and June moves exactly their rows out of the default.
SELECT ato.create_event_partitions('2023-05-20', '2023-06-01');
SELECT occurred_at, tableoid::regclass FROM ato.login_events WHERE user_id = 'part-user' ORDER BY occurred_at;
SELECT occurred_at, tableoid::regclass FROM ato.audit_events WHERE actor_id = 'part-user';
-- Running it again creates nothing and moves nothing.
SELECT ato.create_event_partitions('2023-05-01', '2023-06-30');

-- New partitions carry the trigger of the parent and the indexes of the
-- default partition.
SELECT ato.record_login('part-user', '81.2.69.160', 'success', '2023-06-15 00:00+00') > 0 AS stored;
SELECT country_code, tableoid::regclass FROM ato.login_events
 WHERE user_id = 'part-user' AND occurred_at = '2023-06-15 00:00+00';
SELECT tablename, regexp_replace(indexdef, 'INDEX \S+ ON \S+', 'INDEX ON') AS index
  FROM pg_indexes
 WHERE schemaname = 'ato' AND tablename IN ('login_events_p2023_06', 'audit_events_p2023_06')
 ORDER BY 1, 2;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'ato.login_events_p2023_06'::regclass;

-- Dropping old months costs a DROP TABLE; the default partition stays.
SELECT ato.drop_event_partitions('2023-06-01');
SELECT partition FROM ato.event_partitions WHERE lower_bound < '2023-08-01' ORDER BY 1;
SELECT occurred_at FROM ato.login_events WHERE user_id = 'part-user' ORDER BY 1;
SELECT ato.drop_event_partitions('2023-06-01') AS nothing_left_to_drop;

-- Months are UTC months whatever the caller's time zone.
SET timezone = 'America/Los_Angeles';
SELECT ato.create_event_partitions('2021-01-15 00:00+00', '2021-03-01 00:00+00');
SET timezone = 'UTC';
SELECT partition, lower_bound, upper_bound FROM ato.event_partitions
 WHERE parent = 'login_events' AND lower_bound >= '2021-01-01' AND upper_bound <= '2021-04-01' ORDER BY 2;
SELECT ato.drop_event_partitions('2021-04-01');

-- Bad arguments.
SELECT ato.create_event_partitions(NULL, '2024-01-01');
SELECT ato.create_event_partitions('2024-01-01', NULL);
SELECT ato.create_event_partitions('2024-02-01', '2024-01-01');
SELECT ato.create_event_partitions('-infinity', '2024-01-01');
SELECT ato.create_event_partitions('2000-01-01', '2011-01-01');
SELECT ato.drop_event_partitions(NULL);
SELECT ato.drop_event_partitions('infinity');

-- Block ranges are summarised as soon as they are full, so that a window
-- reads only its own: the new partitions' BRIN indexes ask autovacuum to
-- (autosummarize, shown above), and ato.maintain_event_partitions() does it
-- for the partitions taking live events, whose statistics of occurred_at it
-- also brings up to date.  Here a current month of a few thousand logins:
-- the first call summarises its ranges and analyzes it, the second finds
-- nothing new.
SELECT ato.create_event_partitions(now(), now()) >= 0 AS current_month;
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
SELECT 'range-user', '8.8.8.8', 'success', date_trunc('month', now()) + i * interval '1 second'
  FROM generate_series(1, 3000) i;
SELECT partition AS live_partition FROM ato.event_partitions
 WHERE parent = 'login_events' AND now() >= lower_bound AND now() < upper_bound \gset
SELECT reltuples < 0 AS never_analyzed FROM pg_class WHERE oid = :'live_partition'::regclass;
SELECT ranges_summarised > 0 AS summarised, partitions_analyzed >= 1 AS analyzed FROM ato.maintain_event_partitions();
SELECT reltuples >= 3000 AS counted FROM pg_class WHERE oid = :'live_partition'::regclass;
SELECT histogram_bounds::text::timestamptz[] IS NOT NULL AS occurred_at_histogram
  FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename
 WHERE s.schemaname = 'ato' AND c.oid = :'live_partition'::regclass AND s.attname = 'occurred_at';
SELECT ranges_summarised, partitions_analyzed FROM ato.maintain_event_partitions() AS nothing_new;
-- add_month (false: the months are left to the caller, as the detection
-- worker does) must not be NULL
SELECT * FROM ato.maintain_event_partitions(NULL);
DELETE FROM ato.login_events WHERE user_id = 'range-user';

-- Nobody has to call create_event_partitions(): ato.add_event_partition(),
-- which the detection worker calls until it returns NULL (one transaction
-- each) and ato.maintain_event_partitions() once, creates the month of now()
-- and the three ahead, then each month whose rows wait in the default
-- partition, once none of them was stored in the last 10 s (not in the
-- middle of an import of it).  A history restored with its recorded_at
-- moves at once; a month being stored now waits.  (In one transaction,
-- rolled back, without the rows earlier tests left in the default
-- partitions.)
BEGIN;
DELETE FROM ONLY ato.login_events_default;
DELETE FROM ONLY ato.audit_events_default;
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, recorded_at)
SELECT 'history-user', '8.8.8.8', 'success', '2022-02-01 00:00+00'::timestamptz + i * interval '1 hour',
       now() - interval '1 hour'
  FROM generate_series(0, 27 * 24) i;
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
SELECT 'history-user', '8.8.8.8', 'failure', '2022-04-01 00:00+00'::timestamptz + i * interval '1 day'
  FROM generate_series(0, 29) i;
SELECT count(*) AS events, sum(id) AS ids FROM ato.login_events WHERE user_id = 'history-user' \gset before_
-- (the months ahead are there already, for an output that does not depend
-- on the date)
SELECT ato.create_event_partitions(now(), now() + interval '3 months') >= 0 AS months_ahead;
SELECT ato.add_event_partition() AS added;
SELECT ato.add_event_partition() AS april_still_coming;
SELECT tableoid::regclass, min(occurred_at), max(occurred_at), count(*)
  FROM ato.login_events WHERE user_id = 'history-user' GROUP BY 1 ORDER BY 2;
-- ten seconds later, as it were
UPDATE ato.login_events SET recorded_at = recorded_at - interval '1 minute'
 WHERE user_id = 'history-user' AND occurred_at >= '2022-04-01';
SELECT ato.add_event_partition() AS added;
SELECT ato.add_event_partition() AS nothing_more;
SELECT tableoid::regclass, min(occurred_at), max(occurred_at), count(*)
  FROM ato.login_events WHERE user_id = 'history-user' GROUP BY 1 ORDER BY 2;
SELECT count(*) = :before_events AS same_count, sum(id) = :before_ids AS same_ids
  FROM ato.login_events WHERE user_id = 'history-user';
ROLLBACK;
