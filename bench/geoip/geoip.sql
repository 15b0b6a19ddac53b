-- geoip.sql -- the SQL side of the geoip benchmark: ato.geoip_country()
-- over every address of the file, in one backend without parallel
-- workers, against count(ip) as the scan baseline.  After a warm-up,
-- :runs timed rounds (round.sql) of both; fails when the rounds disagree
-- on the rows or hits.  Prints one line for bench/run.sh to set beside the
-- C loop (geoip_loop.c, over the same file):
--
--   <addresses> <hits> <median seconds of the scan> <median seconds of the lookups>
--
--   psql -v addresses_file=/tmp/x/addresses.txt -v addresses=5000000 -f bench/generate.sql
--   psql -v addresses_file=/tmp/x/addresses.txt -v runs=5 -f bench/geoip/geoip.sql

\ir ../lib/prelude.sql
SELECT bench.fail('geoip.sql: give -v addresses_file=FILE -v runs=N')
 WHERE NOT (:{?addresses_file} AND :{?runs});

CREATE TABLE bench.addresses (ip inet);
COPY bench.addresses FROM :'addresses_file';
VACUUM ANALYZE bench.addresses;
SET max_parallel_workers_per_gather = 0;
-- warm up: the table into shared buffers, the database file into the mapping
SELECT count(ip) AS rows, count(ato.geoip_country(ip)) AS hits FROM bench.addresses \gset warm_
\set run 1
\ir round.sql
\pset fieldsep ' '
SELECT :n, :hits, bench.median('scan'), bench.median('geoip_country');
