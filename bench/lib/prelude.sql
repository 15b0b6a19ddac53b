-- prelude.sql -- included first by every benchmark file: stop at the first
-- error, print bare values (as "psql -qAtX" does, which bench/run.sh runs),
-- and the schema bench with what the benchmarks share:
--
--   bench.timing          one row per timed statement (lib/timed.sql)
--   bench.median(variant) the median seconds of a variant's runs, run 0
--                         (the warm-up) left out
--   bench.fail(message)   raises the message: the run fails
--   :copy_events          the COPY of the event file :events_file (written
--                         by bench/generate.sql) into :table; both are read
--                         where :copy_events is used

\set ON_ERROR_STOP on
\set QUIET on
\pset format unaligned
\pset tuples_only on
-- created once: the steps of a benchmark that run beside measured work
-- (login_latency's imports) change no catalog
SELECT to_regclass('bench.timing') IS NULL AS bench_missing \gset
\if :bench_missing
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS bench;
-- recorded_at orders the variants as they ran
CREATE TABLE bench.timing (variant text, run int, seconds float8, row_count bigint,
                           recorded_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE FUNCTION bench.median(variant text) RETURNS float8 LANGUAGE sql STABLE AS $$
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds)
      FROM bench.timing t WHERE t.variant = median.variant AND t.run > 0
$$;
CREATE FUNCTION bench.fail(message text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', message;
END
$$;
RESET client_min_messages;
\endif

\set copy_events 'COPY :table (occurred_at, user_id, ip_address, outcome, user_agent, source, metadata) FROM :''events_file'' (FORMAT csv);'
