-- new_country.sql -- how a timed session of the detect benchmark starts,
-- for the :history (recent or older) loaded last: the window's start
-- (:since) and the one-backend rule; ato.refresh_summaries() timed once
-- (refresh_:history, its pairs in :refresh_pairs) and the summary tables
-- analysed after it (autovacuum is off in the benchmark's cluster; in a
-- running database it analyses them as they grow, as the plain tables are
-- analysed after their load); then new_country_logins against seed 004's
-- query (ncl_ato_:size, ncl_seed_:size) and their answers compared (:what).

SELECT date_trunc('hour', now()) - interval '24 hours' AS since \gset
SET max_parallel_workers_per_gather = 0;
\set variant refresh_ :history
\set stmt 'SELECT ato.refresh_summaries() AS pairs \\gset refresh_'
\set run 1
\ir ../lib/timed.sql
ANALYZE ato.account_countries, ato.account_last_logins, ato.recent_new_country_logins, ato.recent_address_logins;
\set variant ncl_ato_ :size
\set stmt :ato_sql ' \\g /dev/null'
\set run 0
\ir ../lib/timed_runs.sql
\set variant ncl_seed_ :size
\set stmt :seed_sql ' \\g /dev/null'
\set run 0
\ir ../lib/timed_runs.sql
\set query_a :ato_sql
\set query_b :seed_sql
\ir ../lib/agree.sql
