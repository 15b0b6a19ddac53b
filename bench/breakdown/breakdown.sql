-- breakdown.sql -- the breakdown benchmark: where the ingest time goes.  The
-- same COPY of the event file into tables that add one ingredient of
-- ato.login_events at a time (setup.sql), a warm-up and :runs timed rounds
-- of all of them in turn (round.sql); prints each one's median, the median
-- per row and the single runs.  Fails when a COPY stored fewer rows.
--
--   psql -v events_file=/tmp/x/events.csv -v events=1000000 -f bench/generate.sql
--   psql -v events_file=/tmp/x/events.csv -v events=1000000 -v runs=3 -f bench/breakdown/breakdown.sql
--
-- perf.sql profiles one more COPY into ato.login_events afterwards.

\ir ../lib/prelude.sql
SELECT bench.fail('breakdown.sql: give -v events_file=FILE -v events=N -v runs=N')
 WHERE NOT (:{?events_file} AND :{?events} AND :{?runs});

\ir ../ingest/tables.sql
\ir setup.sql

-- the timed rounds in a session of their own
\connect
\set truncate 'TRUNCATE ato.login_events, bench.plain, bench.plain_indexed, bench.noop_trigger, bench.enrich_off, bench.enrich, bench.enrich_indexed, bench.part, bench.part_indexed, bench.part_indexed_checks;'
\set run 0
\ir round.sql

SELECT bench.fail(format('breakdown: a COPY did not store the %s rows of the file', :events))
  FROM bench.timing WHERE row_count <> :events LIMIT 1;
\echo 'variant              median    per row     runs'
\pset fieldsep ' '
SELECT rpad(variant, 20), to_char(percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds), 'FM990.00') || ' s',
       to_char(percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) * 1e6 / :events, 'FM99990.00') || ' us/row',
       string_agg(to_char(seconds, 'FM990.00'), ' ' ORDER BY run)
  FROM bench.timing WHERE run > 0 GROUP BY variant
  ORDER BY min(recorded_at);
