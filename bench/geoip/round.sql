-- round.sql -- round :run of the geoip benchmark, then the next ones up
-- to :runs: the timed scan, the timed lookups, both checked against the
-- warm-up's rows and hits.

\set variant scan
\set stmt 'SELECT count(ip) AS n FROM bench.addresses \\gset'
\ir ../lib/timed.sql
\set variant geoip_country
\set stmt 'SELECT count(ato.geoip_country(ip)) AS hits FROM bench.addresses \\gset'
\ir ../lib/timed.sql
SELECT bench.fail('geoip: the SQL runs disagree on the number of rows or hits')
 WHERE NOT (:'n' = :'warm_rows' AND :'hits' = :'warm_hits');

\ir ../lib/next_run.sql
\if :more
\ir round.sql
\endif
