-- login_latency.sql -- the SQL of the login_latency benchmark:
-- ato.record_login() (record_login.pgbench, pgbench -R 200 --log) for a
-- period alone, then for the same period beside late imports (one every
-- 6 s) with no worker (what the imports cost by themselves), then beside
-- the same imports and a busy loop at the worker's priority (nice 10; the
-- machine's floor: what any process keeping a core busy at that priority
-- costs the logins here), then beside the detection worker's cycles and the same
-- imports.  bench/run.sh runs the
-- steps around pgbench:
--
--   psql -v step=setup    a week of history for 50,000 accounts (350,000
--                         logins), summarised, and the table of latencies
--   psql -v step=load -v phase=alone|imports|burner|beside < pgbench's --log lines
--                         the latencies of one phase into bench.login_latency
--   psql -v step=worker   the detection worker started for this database
--                         (ALTER SYSTEM, as for the last phase)
--   psql -v step=import   a late import: :late_events successful logins
--                         spread over the last three days, stored in one
--                         transaction; the worker's next cycle (every 5 s
--                         here) folds them in again from their first late
--                         day, as it would in production
--   psql -v step=report   p50, p99 and the slowest login of each phase
--                         from bench.login_latency, and their ratios
--                         (-v imports=N, imports_only=M, imports_burner=K:
--                         how many imports ran beside the worker, alone,
--                         and beside the busy loop)

\ir ../lib/prelude.sql
SELECT bench.fail('login_latency.sql: give -v step=setup, load, worker, import or report')
 WHERE NOT :{?step};
SELECT :'step' = 'setup' AS setup, :'step' = 'load' AS load, :'step' = 'worker' AS worker,
       :'step' = 'import' AS import, :'step' = 'report' AS report \gset

\if :setup
SELECT ato.create_event_partitions(now() - interval '8 days', now() + interval '1 day') >= 0 AS created;
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
SELECT 'user-' || a % 50000, '81.2.69.0'::inet + a % 256, 'success',
       now() - interval '7 days' + a * interval '1728 milliseconds'
  FROM generate_series(1, 350000) a;
SELECT ato.refresh_summaries() >= 0 AS refreshed;
VACUUM ANALYZE ato.login_events, ato.account_countries, ato.account_last_logins;
CREATE TABLE bench.login_latency (phase text, client int, tx bigint, usecs bigint, script int,
                                  epoch bigint, epoch_usecs bigint, lag_usecs bigint);
\endif

\if :load
CREATE TEMP TABLE log (client int, tx bigint, usecs bigint, script int, epoch bigint, epoch_usecs bigint, lag_usecs bigint);
\copy log FROM pstdin WITH (DELIMITER ' ')
INSERT INTO bench.login_latency SELECT :'phase', * FROM log;
\endif

\if :worker
ALTER SYSTEM SET ato_response.databases = :'DBNAME';
\ir ../lib/await_worker.sql
\endif

\if :import
BEGIN;
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, source)
SELECT 'user-' || (a::bigint * 7919) % 50000, '81.2.69.0'::inet + a % 256, 'success',
       now() - interval '3 days' + (a::bigint * 104729 % :late_events) * (interval '3 days' / :late_events), 'import'
  FROM generate_series(1, :late_events) a;
COMMIT;
\endif

\if :report
CREATE TEMP TABLE p AS
SELECT phase, count(*) AS logins,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
       max(ms) AS slowest,
       count(*) FILTER (WHERE ms > 100) AS over_100ms
  FROM (SELECT phase, usecs / 1000.0 AS ms FROM bench.login_latency) l
 GROUP BY phase;
SELECT format('%s: %s logins; p50 %s ms, p99 %s ms, slowest %s ms; slower than 100 ms: %s',
              phase, logins, round(p50::numeric, 2), round(p99::numeric, 2), round(slowest::numeric, 1), over_100ms)
  FROM p ORDER BY phase;
SELECT format('p99 beside / alone: %s (target <= 2); slowest beside / alone: %s; logins slower than 100 ms beside: %s, alone: %s (target: none that is not slow alone)',
              round((b.p99 / a.p99)::numeric, 2), round((b.slowest / a.slowest)::numeric, 1), b.over_100ms, a.over_100ms)
  FROM p a, p b WHERE a.phase = 'alone' AND b.phase = 'beside';
SELECT format('the imports alone (%s, no worker): p99 imports / alone %s; what the worker adds: p99 beside / imports %s',
              :imports_only, round((i.p99 / a.p99)::numeric, 2), round((b.p99 / i.p99)::numeric, 2))
  FROM p a, p i, p b WHERE a.phase = 'alone' AND i.phase = 'imports' AND b.phase = 'beside';
SELECT format('the machine''s floor, a busy loop at the worker''s priority (nice 10) beside the same imports (%s) instead of the worker: p99 burner / alone %s; the worker against it: p99 beside / burner %s',
              :imports_burner, round((f.p99 / a.p99)::numeric, 2), round((b.p99 / f.p99)::numeric, 2))
  FROM p a, p f, p b WHERE a.phase = 'alone' AND f.phase = 'burner' AND b.phase = 'beside';
SELECT format('beside the logins: %s late imports of %s events, folded in by the worker''s refreshes; the summaries at the end: watermark %s, late days pending %s',
              :imports, :late_events,
              (SELECT summarised_until FROM ato.summary_status), (SELECT count(*) FROM ato.summary_late_days))
\endif
