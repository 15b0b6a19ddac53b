-- detect.sql -- the detect benchmark: the detection functions against seed
-- 004's query and plain SQL with the best indexes for them (bench.le,
-- bench.ae), on the login events of 30 days (:recent_file), then again
-- with the 30 days before (:older_file) loaded behind the same 24-hour
-- window.  Each contender: a warm-up and :runs timed runs.  Prints the
-- medians and ratios; fails when a function and its plain query disagree.
--
--   psql -v events_file=/tmp/x/recent.csv -v events=5000000 -f bench/generate.sql
--   psql -v events_file=/tmp/x/older.csv -v events=5000000 -v offset_days=30 -f bench/generate.sql
--   psql -v recent_file=/tmp/x/recent.csv -v older_file=/tmp/x/older.csv -v events=5000000 \
--        -v runs=3 -f bench/detect/detect.sql
--
-- (-v events: the events of each file, for the line that announces the
-- older half, printed as bench/run.sh prints its steps)

\ir ../lib/prelude.sql
SELECT bench.fail('detect.sql: give -v recent_file=FILE -v older_file=FILE -v events=N -v runs=N')
 WHERE NOT (:{?recent_file} AND :{?older_file} AND :{?events} AND :{?runs});

-- The contenders, read with the window's start :since (and :cidrs,
-- :accounts) where they are used: new_country_logins and seed 004's query
-- (lib/new_country_contenders.sql), cidr_scope and suspicious_action_counts
-- and their plain queries.
\ir ../lib/new_country_contenders.sql
\set cidr_ato_sql 'SELECT * FROM ato.cidr_scope(:''cidrs'', :''since'')'
SELECT $$WITH hits AS (SELECT user_id, ip_address, occurred_at FROM bench.le
     WHERE occurred_at >= :'since' AND outcome = 'success' AND ip_address <<= ANY (:'cidrs'::inet[])),
 accounts AS (SELECT user_id, count(*) AS logins, min(occurred_at) AS first_login, max(occurred_at) AS last_login,
                     array_agg(DISTINCT ip_address ORDER BY ip_address) AS ips FROM hits GROUP BY user_id)
SELECT c.user_id, c.logins, c.first_login, c.last_login, c.ips,
       coalesce((SELECT jsonb_object_agg(event_type, n ORDER BY event_type)
                   FROM (SELECT a.event_type, count(*) AS n FROM bench.ae a
                          WHERE a.actor_id = c.user_id AND a.occurred_at >= c.first_login GROUP BY a.event_type) x), '{}'::jsonb)
  FROM accounts c$$ AS cidr_plain_sql \gset
\set counts_ato_sql 'SELECT * FROM ato.suspicious_action_counts(:''accounts'', :''since'')'
SELECT $$SELECT event_type, count(*) AS actions, count(DISTINCT actor_id) AS accounts FROM bench.ae
 WHERE actor_id = ANY (:'accounts'::text[]) AND occurred_at >= :'since' GROUP BY event_type$$ AS counts_plain_sql \gset

SELECT ato.create_event_partitions(date_trunc('hour', now()) - interval '61 days', now()) AS created \gset
CREATE TABLE bench.le (id bigint, user_id text, ip_address inet, outcome text, occurred_at timestamptz, country_code text);
CREATE TABLE bench.ae (actor_id text, event_type text, occurred_at timestamptz);
CREATE INDEX ON bench.le (occurred_at);
CREATE INDEX ON bench.le (user_id, occurred_at) INCLUDE (country_code, outcome);
CREATE INDEX ON bench.le USING gist (ip_address inet_ops);
CREATE INDEX ON bench.ae (actor_id, event_type, occurred_at);
CREATE INDEX ON bench.ae (actor_id, occurred_at);
\set events_file :recent_file
\ir load.sql

-- 30 days: each timed part in a session of its own
\connect
\set history recent
\set size 5m
\set what 'detect: new_country_logins against seed 004'
\ir new_country.sql
\set ncl_suspicious :answer_a_n
SELECT count(*) AS all_rows, count(*) FILTER (WHERE country_code IS NULL) AS unlocated
  FROM ato.new_country_logins(:'since') \gset ncl_
-- networks to scope: the /16s of twenty addresses seen in the window
SELECT array_agg(DISTINCT network(set_masklen(ip_address, 16)))::text AS cidrs
  FROM (SELECT ip_address FROM bench.le WHERE occurred_at >= :'since' AND family(ip_address) = 4
         ORDER BY id LIMIT 20) s \gset
\set variant cidr_ato
\set stmt :cidr_ato_sql ' \\g /dev/null'
\set run 0
\ir ../lib/timed_runs.sql
\set variant cidr_plain
\set stmt :cidr_plain_sql ' \\g /dev/null'
\set run 0
\ir ../lib/timed_runs.sql
\set what 'detect: cidr_scope against its plain query'
\set query_a :cidr_ato_sql
\set query_b :cidr_plain_sql
\ir ../lib/agree.sql
\set cidr_accounts :answer_a_n
SELECT array_agg(user_id)::text AS accounts FROM ato.cidr_scope(:'cidrs', :'since') \gset
\set variant counts_ato
\set stmt :counts_ato_sql ' \\g /dev/null'
\set run 0
\ir ../lib/timed_runs.sql
\set variant counts_plain
\set stmt :counts_plain_sql ' \\g /dev/null'
\set run 0
\ir ../lib/timed_runs.sql
\set what 'detect: suspicious_action_counts against its plain query'
\set query_a :counts_ato_sql
\set query_b :counts_plain_sql
\ir ../lib/agree.sql
SELECT format('new_country_logins, 24 h window over %s events of 30 days: %s logins from a new country (%s with no known country), %s of them followed by a suspicious action',
              (SELECT count(*) FROM ato.login_events), :'ncl_all_rows', :'ncl_unlocated', :'ncl_suspicious');
SELECT format('new_country_logins: ato median %s ms; seed 004 query (best indexes) median %s ms; ratio (seed/ato time) %s (target >= 30); refresh_summaries() over the whole store took %s s for %s pairs',
              round((a * 1000)::numeric, 1), round((s * 1000)::numeric, 1), round((s / a)::numeric, 1),
              round(r::numeric, 2), :'refresh_pairs')
  FROM (SELECT bench.median('ncl_ato_5m') AS a, bench.median('ncl_seed_5m') AS s, bench.median('refresh_recent') AS r) m;
SELECT format('cidr_scope over %s networks: %s accounts; ato median %s ms; plain (B-tree, GiST) median %s ms; ratio (plain/ato time) %s (target >= 1)',
              cardinality(:'cidrs'::cidr[]), :'cidr_accounts', round((a * 1000)::numeric, 1), round((p * 1000)::numeric, 1), round((p / a)::numeric, 2))
  FROM (SELECT bench.median('cidr_ato') AS a, bench.median('cidr_plain') AS p) m;
SELECT format('suspicious_action_counts for %s accounts: ato median %s ms; plain (B-tree) median %s ms; ratio (plain/ato time) %s (target >= 1)',
              cardinality(:'accounts'::text[]), round((a * 1000)::numeric, 1), round((p * 1000)::numeric, 1), round((p / a)::numeric, 2))
  FROM (SELECT bench.median('counts_ato') AS a, bench.median('counts_plain') AS p) m;

-- the 30 days before, behind the same window: twice the history
\echo
\echo '== detect:' :events 'older events (the 30 days before) into both: twice the history behind the same window'
\connect
\set events_file :older_file
\ir load.sql
\connect
\set history older
\set size 10m
\set what 'detect: new_country_logins against seed 004 over twice the history'
\ir new_country.sql
SELECT format('new_country_logins over twice the history (%s events): ato median %s ms (%s%% of the time over half of it; target < +20%%); seed 004 query median %s ms; ratio (seed/ato time) %s; refresh_summaries() folding in the older 30 days took %s s',
              (SELECT count(*) FROM ato.login_events), round((a2 * 1000)::numeric, 1),
              to_char(100 * (a2 / a1 - 1), 'SG990'), round((s2 * 1000)::numeric, 1), round((s2 / a2)::numeric, 1), round(r::numeric, 2))
  FROM (SELECT bench.median('ncl_ato_5m') AS a1, bench.median('ncl_ato_10m') AS a2, bench.median('ncl_seed_10m') AS s2,
               bench.median('refresh_older') AS r) m;
