-- bulk_load.sql -- the bulk_load benchmark: a fresh install, the detection
-- worker running as in production, and a history of :events login events
-- over 90 days loaded at once (:how = copy or insert, i.e. COPY or INSERT ...
-- SELECT from a staging table), before any month has a partition.  Nobody
-- calls create_event_partitions or refresh_summaries.  It times
--   the load itself;
--   the first ato.new_country_logins() over the last 24 hours right after
--     the load (whatever the worker has done by then), and one plain read
--     of the history before the window after it, the floor of that call;
--   how long the worker takes until the summaries cover the history
--     (run.sh polls ato.summary_status between the steps);
--   seed 004's query on plain tables holding the same rows, loaded into
--     its best indexes (detect.sql's contender): once after that load and
--     an ANALYZE, as the first call was after ours, then warm after a
--     VACUUM ANALYZE, and the later calls;
-- and prints the ratios; it fails when the two answers differ.
--
--   psql -v events_file=/tmp/x/events.csv -v events=5000000 -v span_days=90 -f bench/generate.sql
--   psql -v step=load -v how=copy -v events_file=/tmp/x/events.csv -f bench/bulk_load/bulk_load.sql
--   (until SELECT late_days = 0 AND summarised_until >= loaded_at - interval '2 minutes' ...)
--   psql -v step=caught_up -f bench/bulk_load/bulk_load.sql
--   (until both default partitions are empty ...)
--   psql -v step=settled -f bench/bulk_load/bulk_load.sql
--   psql -v step=compare -v runs=3 -f bench/bulk_load/bulk_load.sql

\ir ../lib/prelude.sql
SELECT bench.fail('bulk_load.sql: give -v step=load|caught_up|settled|compare') WHERE NOT :{?step};
SET max_parallel_workers_per_gather = 0;

\if :{?how}
\else
\set how copy
\endif

SELECT :'step' = 'load' AS loading, :'step' = 'caught_up' AS caught_up, :'step' = 'settled' AS settled,
       :'step' = 'compare' AS comparing \gset

\if :loading
CREATE TABLE bench.marks (name text PRIMARY KEY, at timestamptz NOT NULL, note text);
INSERT INTO bench.marks VALUES ('since', date_trunc('hour', now()) - interval '24 hours', NULL);
SELECT at AS since FROM bench.marks WHERE name = 'since' \gset
\endif
\if :caught_up
\else
SELECT at AS since FROM bench.marks WHERE name = 'since' \gset
\endif

-- The contenders, as in detect.sql: the function, and seed 004's first
-- query on the plain tables
\ir ../lib/new_country_contenders.sql

\if :loading
-- the load: the logins, then one successful login in eight followed by an
-- account change (as detect/load.sql), all behind the watermark the worker
-- has already moved on the empty store
SELECT :'how' = 'insert' AS by_insert \gset
\if :by_insert
CREATE UNLOGGED TABLE bench.staging (occurred_at timestamptz, user_id text, ip_address inet, outcome text,
                                     user_agent text, source text, metadata jsonb);
\set table bench.staging
:copy_events
\set stmt 'INSERT INTO ato.login_events (occurred_at, user_id, ip_address, outcome, user_agent, source, metadata) SELECT * FROM bench.staging;'
\else
\set table ato.login_events
\set stmt :copy_events
\endif
\set variant load
\set run 1
\ir ../lib/timed.sql
\set before 0
\ir ../lib/account_changes.sql
INSERT INTO bench.marks VALUES ('loaded', clock_timestamp(),
    (SELECT format('%s of %s login rows in default partitions; the summaries reach %s, %s late days',
                   (SELECT count(*) FROM ONLY ato.login_events_default), (SELECT count(*) FROM ato.login_events),
                   s.summarised_until, s.late_days) FROM ato.summary_status s));
-- the first question, at once
\set variant ncl_first
\set stmt :ato_sql ' \\g /dev/null'
\set run 1
\ir ../lib/timed.sql
-- the floor of that first call: one read of the successful logins before
-- the window, which an answer without a per-account index of the history
-- (the summaries not built yet) cannot do without.  Read after it, warm:
-- the first call has set the new rows' hint bits, so the floor is low
\set variant history_read
\set stmt 'SELECT count(*) FROM ato.login_events WHERE outcome = ''success'' AND occurred_at < ' :'since' ' \\g /dev/null'
\ir ../lib/timed.sql
-- where the history begins: run.sh waits for its months
INSERT INTO bench.marks SELECT 'first_event', min(occurred_at), NULL FROM ato.login_events;
\endif

\if :caught_up
INSERT INTO bench.marks VALUES ('caught_up', clock_timestamp(),
    (SELECT format('%s login rows left in default partitions; the summaries reach %s', 
                   (SELECT count(*) FROM ONLY ato.login_events_default), s.summarised_until)
       FROM ato.summary_status s));
\endif

\if :settled
INSERT INTO bench.marks VALUES ('settled', clock_timestamp(), NULL);
\endif

\if :comparing
-- seed 004's side: the same rows, with the countries the trigger found,
-- loaded the same way into tables that have seed 004's best indexes
-- already (an application's tables have theirs before a load comes);
-- timed (the index upkeep is the load's)
-- (autovacuum kept off them: the state each timing names is the one timed)
CREATE TABLE bench.le (id bigint, user_id text, ip_address inet, outcome text, occurred_at timestamptz, country_code text)
    WITH (autovacuum_enabled = off);
CREATE TABLE bench.ae (actor_id text, event_type text, occurred_at timestamptz) WITH (autovacuum_enabled = off);
CREATE INDEX ON bench.le (occurred_at);
CREATE INDEX ON bench.le (user_id, occurred_at) INCLUDE (country_code, outcome);
CREATE INDEX ON bench.ae (actor_id, event_type, occurred_at);
\set variant seed_load
\set stmt 'INSERT INTO bench.le SELECT id, user_id, ip_address, outcome, occurred_at, country_code FROM ato.login_events; INSERT INTO bench.ae SELECT actor_id, event_type, occurred_at FROM ato.audit_events;'
\set run 1
\ir ../lib/timed.sql
-- its statistics, timed: what autovacuum gives a table within a minute of
-- a load (without them the planner knows nothing of the rows, and one run
-- of the query below took 101 s); ANALYZE reads a sample, not every row
\set variant seed_analyze
\set stmt 'ANALYZE bench.le; ANALYZE bench.ae;'
\set run 1
\ir ../lib/timed.sql
-- the same read of the rows that followed ours (the account changes are
-- drawn from the logins): it sets their hint bits, as it did ours
SELECT count(*) FROM bench.le \g /dev/null
-- seed 004's first query after that load, as the function's first call
-- was: no VACUUM yet, so its index-only scans still visit the table
\set variant ncl_seed_first
\set stmt :seed_sql ' \\g /dev/null'
\set run 1
\ir ../lib/timed.sql
-- then what makes it as fast as it gets, timed
\set variant seed_vacuum
\set stmt 'VACUUM ANALYZE bench.le; VACUUM ANALYZE bench.ae;'
\set run 1
\ir ../lib/timed.sql
\set variant ncl_seed
\set stmt :seed_sql ' \\g /dev/null'
\set run 0
\ir ../lib/timed_runs.sql
\set variant ncl_later
\set stmt :ato_sql ' \\g /dev/null'
\set run 0
\ir ../lib/timed_runs.sql
\set what 'bulk_load: new_country_logins against seed 004'
\set query_a :ato_sql
\set query_b :seed_sql
\ir ../lib/agree.sql
SELECT format('bulk_load (%s): %s login events over 90 days loaded in %s s (%s rows a second) into a fresh install; then %s',
              :'how', (SELECT count(*) FROM ato.login_events),
              round(l::numeric, 1), round(((SELECT count(*) FROM ato.login_events) / l)::numeric),
              (SELECT note FROM bench.marks WHERE name = 'loaded'))
  FROM (SELECT bench.median('load') AS l) m;
SELECT format('bulk_load: the worker alone had the summaries over the history %s s after the load (target <= 60); %s',
              round(extract(epoch FROM c.at - l.at)::numeric, 1), c.note)
  FROM bench.marks l, bench.marks c WHERE l.name = 'loaded' AND c.name = 'caught_up';
SELECT format('bulk_load: the worker had moved every month out of both default partitions %s s after the load (the later calls below are timed after it)',
              round(extract(epoch FROM c.at - l.at)::numeric, 1))
  FROM bench.marks l, bench.marks c WHERE l.name = 'loaded' AND c.name = 'settled';
SELECT format('bulk_load: new_country_logins over 24 h, %s rows: first call right after the load %s ms; seed 004''s first query after the same load into its indexed tables and an ANALYZE %s ms; ratio (seed first/first) %s (target >= 1)',
              :'answer_a_n', round((f * 1000)::numeric, 1), round((sf * 1000)::numeric, 1), round((sf / f)::numeric, 2))
  FROM (SELECT (SELECT seconds FROM bench.timing WHERE variant = 'ncl_first') AS f,
               (SELECT seconds FROM bench.timing WHERE variant = 'ncl_seed_first') AS sf) m;
SELECT format('bulk_load: seed 004''s tables took %s s to load with its indexes, by INSERT ... SELECT of rows in memory (ours %s s by %s of the CSV through the trigger), its ANALYZE %s s; then VACUUM ANALYZE %s s; after it, its query median %s ms: against that, the first call''s ratio (seed warm/first) is %s',
              round(sl::numeric, 1), round(l::numeric, 1), :'how', round(sa::numeric, 1), round(si::numeric, 1), round((s * 1000)::numeric, 1), round((s / f)::numeric, 2))
  FROM (SELECT (SELECT seconds FROM bench.timing WHERE variant = 'seed_load') AS sl, bench.median('load') AS l,
               (SELECT seconds FROM bench.timing WHERE variant = 'seed_analyze') AS sa,
               (SELECT seconds FROM bench.timing WHERE variant = 'seed_vacuum') AS si,
               (SELECT seconds FROM bench.timing WHERE variant = 'ncl_first') AS f, bench.median('ncl_seed') AS s) m;
SELECT format('bulk_load: the first call read the unsummarised history: one plain read of it, warm (after the first call set the rows'' hint bits), takes %s ms, so the first call is at most %s such reads (seed 004 reads its index instead)',
              round((h * 1000)::numeric, 1), round((f / h)::numeric, 1))
  FROM (SELECT (SELECT seconds FROM bench.timing WHERE variant = 'ncl_first') AS f,
               (SELECT seconds FROM bench.timing WHERE variant = 'history_read') AS h) m;
SELECT format('bulk_load: later calls median %s ms; ratio (seed/later) %s (target >= 30)',
              round((a * 1000)::numeric, 1), round((s / a)::numeric, 1))
  FROM (SELECT bench.median('ncl_later') AS a, bench.median('ncl_seed') AS s) m;
\endif
