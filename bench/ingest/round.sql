-- round.sql -- round :run of the ingest benchmark, then the next ones up
-- to :runs: each table emptied (:truncate) and loaded by one timed COPY,
-- the plain table, the plain one with BRIN, ato.login_events.

\set variant plain
\set table bench.plain
\ir ../lib/timed_copy.sql
\set variant plain_indexed
\set table bench.plain_indexed
\ir ../lib/timed_copy.sql
\set variant ato
\set table ato.login_events
\ir ../lib/timed_copy.sql

\ir ../lib/next_run.sql
\if :more
\ir round.sql
\endif
