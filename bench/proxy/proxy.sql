-- proxy.sql -- ato_response through a PL/Proxy node (ato_response_proxy)
-- against one node, on the same rows: two shards and the proxy are three
-- databases of the benchmark's cluster (shard0, shard1, proxy; partitions
-- p0 and p1 on its Unix socket), the one node is the database ato_bench.
-- bench/run.sh runs the steps in order and, between them, pgbench's
-- per-account calls (record_login.pgbench, login_gate.pgbench) against the
-- one node and the proxy; it compares the detections' answers and prints
-- the ratios (proxy time / one node's).
--
--   -v step=proxy_setup -v host=... -v port=...   in proxy: the extension, the cluster, the id ranges
--   -v step=load -v events=N                     in ato_bench, then proxy: N logins of 5,000 accounts in
--                                                the last 50 minutes through ato.record_logins(), in calls
--                                                of 10,000; prints the seconds
--   -v step=detect -v runs=R                     in either: R timed runs (and a warm-up) of the fan-out
--                                                detections; prints "name seconds checksum" per detection

\ir ../lib/prelude.sql

\if :{?step}
\else
SELECT bench.fail('proxy.sql: give -v step=proxy_setup, load or detect');
\endif

SELECT :'step' = 'proxy_setup' AS proxy_setup, :'step' = 'load' AS load, :'step' = 'detect' AS detect \gset

\if :proxy_setup
SET client_min_messages = warning;
CREATE EXTENSION ato_response_proxy CASCADE;
SELECT format('CREATE SERVER ato_cluster FOREIGN DATA WRAPPER plproxy OPTIONS (p0 %L, p1 %L)',
              format('host=%s port=%s dbname=shard0', :'host', :'port'),
              format('host=%s port=%s dbname=shard1', :'host', :'port')) \gexec
SELECT format('CREATE USER MAPPING FOR PUBLIC SERVER ato_cluster OPTIONS (user %L)', current_user) \gexec
SELECT count(*) FROM ato.set_shard_event_ids() \gset
\endif

\if :load
-- the same rows on both sides: every fifth attempt from one of 8 stuffing
-- addresses (i % 40, i a multiple of 5), each over its own run of accounts,
-- the others from an account's own address, 3% successes
SELECT clock_timestamp() AS t0 \gset
SELECT sum(ato.record_logins(
           ARRAY(SELECT 'user-' || (1 + CASE WHEN i % 5 = 0 THEN i / 5 ELSE i * 7919 END % 5000)
                   FROM generate_series(c * 10000, least(c * 10000 + 9999, :events - 1)) i ORDER BY i),
           ARRAY(SELECT CASE WHEN i % 5 = 0 THEN '203.0.113.0'::inet + i % 40 ELSE '198.51.100.0'::inet + (i * 7919) % 5000 % 250 END
                   FROM generate_series(c * 10000, least(c * 10000 + 9999, :events - 1)) i ORDER BY i),
           ARRAY(SELECT CASE WHEN i % 33 = 0 THEN 'success' ELSE 'failure' END
                   FROM generate_series(c * 10000, least(c * 10000 + 9999, :events - 1)) i ORDER BY i),
           ARRAY(SELECT date_trunc('minute', now()) - interval '50 minutes' + i * (interval '50 minutes' / :events)
                   FROM generate_series(c * 10000, least(c * 10000 + 9999, :events - 1)) i ORDER BY i)))
  FROM generate_series(0, (:events - 1) / 10000) c \gset loaded_
SELECT bench.fail(format('proxy.sql: %s logins loaded, not %s', :'loaded_sum', :'events')) WHERE :loaded_sum <> :events;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 3);
\endif

\if :detect
-- the window's start is fixed, so that both sides count the same rows
SELECT date_trunc('minute', now()) - interval '55 minutes' AS since \gset
\set q1 'SELECT * FROM ato.credential_stuffing(' :'since' ')'
-- (the stuffing addresses are sprays too, a few attempts an account; an
-- account's own attempts are spread over the 50 minutes: bursts of 3 an hour)
\set q2 'SELECT * FROM ato.password_spray(' :'since' ', 5, 3)'
\set q3 'SELECT * FROM ato.failed_login_bursts(' :'since' ', 3, interval ''1 hour'')'
-- one timed run: the query's rows counted on the server (no rows to the client)
CREATE FUNCTION pg_temp.timed(query text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    n bigint;
BEGIN
    EXECUTE 'SELECT count(*) FROM (' || query || ') q' INTO n;
    RETURN extract(epoch FROM clock_timestamp() - t0);
END
$$;
CREATE TEMP TABLE detect_timing (name text, run int, seconds float8);
SELECT format('INSERT INTO detect_timing VALUES (%L, %s, pg_temp.timed(%L))', q.name, r, q.query)
  FROM (VALUES ('credential_stuffing', :'q1'), ('password_spray', :'q2'), ('failed_login_bursts', :'q3')) q(name, query),
       generate_series(0, :runs) r
 ORDER BY r, q.name \gexec
SELECT name, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds)::numeric, 4) FROM detect_timing
 WHERE run > 0 GROUP BY name ORDER BY name;
-- the answers, to be compared with the other side's
SELECT 'checksum', name, count, sum FROM (
    SELECT 'credential_stuffing' AS name, count(*), md5(string_agg(r::text, ';' ORDER BY r::text)) AS sum FROM (:q1) r
    UNION ALL SELECT 'password_spray', count(*), md5(string_agg(r::text, ';' ORDER BY r::text)) FROM (:q2) r
    UNION ALL SELECT 'failed_login_bursts', count(*), md5(string_agg(r::text, ';' ORDER BY r::text)) FROM (:q3) r) c
 ORDER BY name;
\endif
