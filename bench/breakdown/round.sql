-- round.sql -- round :run of the breakdown benchmark, then the next ones up
-- to :runs: every table emptied (:truncate) and loaded by one timed COPY,
-- one table after the other in the order the report prints them.  The
-- variant is the table's name in schema bench, but for ato itself.

\set variant plain
\set table bench.plain
\ir ../lib/timed_copy.sql
\set variant noop_trigger
\set table bench.noop_trigger
\ir ../lib/timed_copy.sql
-- enrich_off: the same trigger as enrich with GeoIP turned off
\set variant enrich_off
\set table bench.enrich_off
SET ato_response.geoip_database = '';
\ir ../lib/timed_copy.sql
RESET ato_response.geoip_database;
\set variant enrich
\set table bench.enrich
\ir ../lib/timed_copy.sql
\set variant plain_indexed
\set table bench.plain_indexed
\ir ../lib/timed_copy.sql
\set variant enrich_indexed
\set table bench.enrich_indexed
\ir ../lib/timed_copy.sql
\set variant part
\set table bench.part
\ir ../lib/timed_copy.sql
\set variant part_indexed
\set table bench.part_indexed
\ir ../lib/timed_copy.sql
\set variant part_indexed_checks
\set table bench.part_indexed_checks
\ir ../lib/timed_copy.sql
\set variant ato
\set table ato.login_events
\ir ../lib/timed_copy.sql

\ir ../lib/next_run.sql
\if :more
\ir round.sql
\endif
