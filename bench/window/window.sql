-- window.sql -- the window benchmark: time-window queries over the event
-- file (a year of history at full size) in ato.login_events against one
-- plain table with a B-tree on occurred_at, for the last hour, the last
-- day and a day half a year back (one_window.sql); then dropping the
-- oldest month against DELETE of the same rows.  Prints each window's
-- medians, blocks read and ratio, and the retention's.  Fails when the
-- tables disagree on a window.
--
--   psql -v events_file=/tmp/x/events.csv -v events=50000000 -v span_days=365 -f bench/generate.sql
--   psql -v events_file=/tmp/x/events.csv -v window_days=365 -v runs=5 -f bench/window/window.sql

\ir ../lib/prelude.sql
SELECT bench.fail('window.sql: give -v events_file=FILE -v window_days=N -v runs=N')
 WHERE NOT (:{?events_file} AND :{?window_days} AND :{?runs});

SELECT ato.create_event_partitions(now() - :window_days * interval '1 day', now()) AS created \gset
\set table ato.login_events
:copy_events
CREATE TABLE bench.plain_window (LIKE ato.login_events INCLUDING DEFAULTS);
\set table bench.plain_window
:copy_events
CREATE INDEX ON bench.plain_window (occurred_at);
VACUUM ANALYZE ato.login_events;
VACUUM ANALYZE bench.plain_window;

-- the queries in a session of their own
\connect
SET max_parallel_workers_per_gather = 0;
-- the buffers (shared hits and reads) a query's plan touched
CREATE FUNCTION bench.blocks_read(query text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    plan json;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ' || query INTO plan;
    RETURN (plan->0->'Plan'->>'Shared Hit Blocks')::bigint + (plan->0->'Plan'->>'Shared Read Blocks')::bigint;
END
$$;
-- the query of a window, for format(): the table, the window's start and end
\set window_query 'SELECT count(*) AS n, count(DISTINCT user_id) AS users FROM %s WHERE occurred_at >= %L AND occurred_at < %L AND outcome = ''success'''

-- The windows are counted back from the newest event (the data ends at the
-- hour its generation began, which a long load leaves behind now()).
SELECT max(occurred_at) + interval '1 microsecond' AS newest FROM bench.plain_window \gset
\set w last_hour
SELECT :'newest'::timestamptz - interval '1 hour' AS lo, :'newest' AS hi \gset
\ir one_window.sql
\set w last_day
SELECT :'newest'::timestamptz - interval '1 day' AS lo, :'newest' AS hi \gset
\ir one_window.sql
\set w old_day
SELECT :'newest'::timestamptz - interval '183 days' AS lo, :'newest'::timestamptz - interval '182 days' AS hi \gset
\ir one_window.sql

-- Retention: drop the oldest whole month, against deleting the same rows.
SELECT min(upper_bound) AS month_end FROM ato.event_partitions WHERE parent = 'login_events' AND NOT is_default \gset
SELECT count(*) AS month_rows FROM ato.login_events WHERE occurred_at < :'month_end' \gset
\set run 1
\set variant drop_ato
\set stmt 'SELECT ato.drop_event_partitions(:''month_end'') \\g /dev/null'
\ir ../lib/timed.sql
\set variant drop_plain
\set stmt 'DELETE FROM bench.plain_window WHERE occurred_at < :''month_end'';'
\ir ../lib/timed.sql
SELECT format('retention: dropping the oldest month (%s rows) with ato.drop_event_partitions %s ms; DELETE from the plain table %s ms; ratio (delete/drop time) %s',
              :'month_rows', round((a * 1000)::numeric, 1), round((p * 1000)::numeric, 1), round((p / a)::numeric, 0))
  FROM (SELECT bench.median('drop_ato') AS a, bench.median('drop_plain') AS p) m;
