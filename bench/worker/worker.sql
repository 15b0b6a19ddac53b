-- worker.sql -- the SQL of the worker benchmark: the detection worker (every
-- minute) while pgbench records login events (login.pgbench) for
-- :seconds, with a credential-stuffing wave staged in the middle.
-- bench/run.sh runs the steps around pgbench and reads the processes' CPU
-- ticks from /proc:
--
--   psql -v step=setup -f worker.sql     200,000 accounts with a history:
--                                        each one's home login three days
--                                        ago, summarised (a store that
--                                        starts empty makes every account's
--                                        first login of the run a login from
--                                        a new country)
--   psql -f ../lib/await_worker.sql      the worker started, its pid
--   pgbench -n -c 4 -j 2 -R 5000 -T SECONDS -f login.pgbench
--   psql -v step=backends -f worker.sql  the pids of pgbench's backends
--   psql -v step=wave -f worker.sql      the stuffing wave, halfway: 600
--                                        attempts from 5.188.10.0/24, 2%
--                                        successful, and when it came
--   psql -v step=report -v seconds=N -v worker_ticks=N -v ingest_ticks=N -f worker.sql
--                                        how soon the wave's alert was
--                                        raised, each rule's last run, and
--                                        the worker's CPU against the
--                                        ingest backends'

\ir ../lib/prelude.sql
SELECT bench.fail('worker.sql: give -v step=setup, backends, wave or report')
 WHERE NOT :{?step};
SELECT :'step' = 'setup' AS setup, :'step' = 'backends' AS backends, :'step' = 'wave' AS wave,
       :'step' = 'report' AS report \gset

\if :setup
SELECT ato.create_event_partitions(now() - interval '4 days', now() + interval '1 day') \g /dev/null
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
SELECT 'user-' || a, '81.2.69.0'::inet + a % 256, 'success', now() - interval '3 days' + a * interval '100 milliseconds'
  FROM generate_series(1, 200000) a;
SELECT ato.refresh_summaries() \g /dev/null
ANALYZE ato.login_events, ato.account_countries, ato.account_last_logins;
\endif

\if :backends
SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE application_name = 'pgbench';
\endif

\if :wave
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
SELECT 'user-' || a, ('5.188.10.' || (1 + a % 50))::inet, CASE WHEN a % 50 = 7 THEN 'success' ELSE 'failure' END, now()
  FROM generate_series(1, 600) a;
INSERT INTO bench.timing VALUES ('staged', 1, extract(epoch FROM clock_timestamp()), 600);
\endif

\if :report
SELECT format('alert raised %s s after the stuffing wave was staged (interval %s; target: within two intervals)',
              coalesce(round((extract(epoch FROM min(a.first_seen_at)) - t.seconds)::numeric, 1)::text, 'NOT'),
              current_setting('ato_response.detection_interval'))
  FROM bench.timing t LEFT JOIN ato.alerts a ON a.rule = 'credential_stuffing' AND a.finding = 'network 5.188.10.0/24'
 WHERE t.variant = 'staged' GROUP BY t.seconds;
SELECT format('detection rules at their last run: %s; rules that failed: %s',
              string_agg(name || ' ' || round(extract(epoch FROM last_duration) * 1000) || ' ms', ', ' ORDER BY name),
              count(*) FILTER (WHERE last_error IS NOT NULL))
  FROM ato.detection_rules WHERE enabled;
SELECT format('%s events stored; CPU over the same %s s: detection worker %s ticks, the 4 ingest backends %s ticks; worker / ingest %s',
              (SELECT count(*) FROM ato.login_events), :seconds - 5, :worker_ticks, :ingest_ticks,
              round(:worker_ticks::numeric / greatest(:ingest_ticks, 1), 3));
\endif
