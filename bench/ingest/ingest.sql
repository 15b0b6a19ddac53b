-- ingest.sql -- the ingest benchmark: COPY of the event file into
-- ato.login_events (trigger, partitions, BRIN index) against a plain table
-- of the same columns, without and with the same BRIN index on
-- occurred_at.  A warm-up and :runs timed rounds, the three in turn; prints
-- the medians and the ratios (plain time / ato time), the single runs, and
-- what the trigger made of the rows.  Fails when a COPY stored fewer rows.
--
--   psql -v events_file=/tmp/x/events.csv -v events=1000000 -f bench/generate.sql
--   psql -v events_file=/tmp/x/events.csv -v events=1000000 -v runs=5 -f bench/ingest/ingest.sql
--
-- (the file is written and read by the server: a directory it can use)

\ir ../lib/prelude.sql
SELECT bench.fail('ingest.sql: give -v events_file=FILE -v events=N -v runs=N')
 WHERE NOT (:{?events_file} AND :{?events} AND :{?runs});

\ir tables.sql

-- the timed rounds in a session of their own
\connect
\set truncate 'TRUNCATE bench.plain,bench.plain_indexed,ato.login_events;'
\set run 0
\ir round.sql

SELECT bench.fail(format('ingest: a COPY did not store the %s rows of the file', :events))
  FROM bench.timing WHERE variant IN ('plain', 'plain_indexed', 'ato') AND row_count <> :events LIMIT 1;
SELECT format('ingest: plain COPY %s rows median %s s; ato COPY median %s s; ratio (plain/ato time) %s (target >= 0.5)',
              :events, round(p::numeric, 2), round(a::numeric, 2), round((p / a)::numeric, 2))
       || E'\n' ||
       format('ingest: plain+BRIN COPY %s rows median %s s; ato COPY median %s s; ratio (plain/ato time) %s (target >= 0.5)',
              :events, round(pi::numeric, 2), round(a::numeric, 2), round((pi / a)::numeric, 2))
  FROM (SELECT bench.median('plain') AS p, bench.median('plain_indexed') AS pi, bench.median('ato') AS a) m;
\pset fieldsep ' '
SELECT 'ingest: runs (s):', string_agg(variant || ' ' || secs, '; ' ORDER BY array_position(ARRAY['plain', 'plain_indexed', 'ato'], variant))
  FROM (SELECT variant, string_agg(to_char(seconds, 'FM990.00'), ' ' ORDER BY run) AS secs
          FROM bench.timing WHERE variant IN ('plain', 'plain_indexed', 'ato') AND run > 0 GROUP BY variant) v;
SELECT format('ingest: ato rows with a country %s%%; in the default partition %s; monthly partitions holding rows %s',
              round(100.0 * count(country_code) / count(*), 1),
              (SELECT count(*) FROM ato.login_events_default),
              count(DISTINCT tableoid))
  FROM ato.login_events;
