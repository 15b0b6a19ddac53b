-- response.sql -- the response benchmark: revoking every second of
-- :accounts accounts (3 sessions and 5 refresh tokens each, in three
-- identical copies of seed 004's tables, tables.sql): the time until
-- ato.revoke_incident() returns with every account unusable against seed
-- 004's loop (batches of 500, one notification per account, as a PL/pgSQL
-- procedure), and the background worker's marking of the rows against one
-- plain UPDATE per table.  One run each; prints both ratios; fails when
-- the copies end with different rows marked.
--
--   psql -v accounts=200000 -f bench/response/response.sql

\ir ../lib/prelude.sql
SELECT bench.fail('response.sql: give -v accounts=N')
 WHERE NOT :{?accounts};

CREATE TABLE bench.accounts AS SELECT n, 'user-' || lpad(n::text, 8, '0') AS user_id FROM generate_series(1, :accounts) n;
-- every second account is revoked, in no particular order
CREATE TABLE bench.revoked AS SELECT user_id FROM bench.accounts WHERE n % 2 = 0 ORDER BY hashint4(n);
-- seed 004's revokeAffectedSessions and publishBatch
CREATE PROCEDURE bench.seed_revoke(ids text[], reason text) LANGUAGE plpgsql AS $$
DECLARE
    v_incident uuid := gen_random_uuid();
    v_revoked_at timestamptz := now();
    v_batch text[];
BEGIN
    FOR i IN 0 .. (cardinality(ids) - 1) / 500 LOOP
        v_batch := ids[i * 500 + 1 : (i + 1) * 500];
        UPDATE bench.seed_refresh_tokens
           SET revoked = true, revoked_at = v_revoked_at, revocation_reason = reason,
               revocation_incident_id = v_incident
         WHERE user_id = ANY (v_batch) AND revoked = false;
        UPDATE bench.seed_sessions
           SET ended_at = v_revoked_at, end_reason = 'incident_revocation', incident_id = v_incident
         WHERE user_id = ANY (v_batch) AND ended_at IS NULL;
        COMMIT;
        PERFORM pg_notify('seed_revocations',
                          json_build_object('type', 'user.sessions_revoked', 'user_id', u,
                                            'incident_id', v_incident, 'reason', reason)::text)
           FROM unnest(v_batch) u;
        COMMIT;
    END LOOP;
END $$;
\set copy seed
\ir tables.sql
\set copy ato
\ir tables.sql
\set copy plain
\ir tables.sql
SELECT ato.register_revocation_target('bench.ato_sessions', 'user_id', 'end', state_column => 'ended_at',
           reason_column => 'end_reason', incident_column => 'incident_id') \g /dev/null
SELECT ato.register_revocation_target('bench.ato_refresh_tokens', 'user_id', 'revoke', state_column => 'revoked',
           time_column => 'revoked_at', reason_column => 'revocation_reason', incident_column => 'revocation_incident_id') \g /dev/null

-- the timed part in a session of its own
\connect
SELECT array_agg(user_id)::text AS ids FROM bench.revoked \gset
SET client_min_messages = warning;
\set run 1
\set variant seed_loop
\set stmt 'CALL bench.seed_revoke(:''ids'', ''credential stuffing'');'
\ir ../lib/timed.sql
\set variant ato_containment
\set stmt 'SELECT ato.revoke_incident(:''ids'', ''credential stuffing'', suspend => true) AS incident \\gset'
\ir ../lib/timed.sql
SELECT clock_timestamp() AS returned_at \gset
SELECT count(*) AS unusable FROM ato.account_revocations r JOIN ato.account_flags f USING (user_id)
 WHERE r.incident_id = :'incident' AND f.suspended \gset
DO $$
BEGIN
    WHILE EXISTS (SELECT FROM ato.incidents WHERE status = 'marking') LOOP
        PERFORM pg_sleep(0.01);
    END LOOP;
END $$;
SELECT extract(epoch FROM marked_at - :'returned_at'::timestamptz) AS marking FROM ato.incidents WHERE id = :'incident' \gset
SELECT sum(rows_touched) AS ato_rows FROM ato.incident_targets WHERE incident_id = :'incident' \gset
\set variant plain_update
\set stmt 'UPDATE bench.plain_refresh_tokens SET revoked = true, revoked_at = now(), revocation_reason = ''credential stuffing'', revocation_incident_id = gen_random_uuid() WHERE user_id = ANY (:''ids''::text[]) AND revoked = false; UPDATE bench.plain_sessions SET ended_at = now(), end_reason = ''credential stuffing'', incident_id = gen_random_uuid() WHERE user_id = ANY (:''ids''::text[]) AND ended_at IS NULL;'
\ir ../lib/timed.sql
\set what 'response: rows marked by ato against the seed 004 loop'
\set query_a 'SELECT * FROM bench.ato_marked'
\set query_b 'SELECT * FROM bench.seed_marked'
\ir ../lib/agree.sql
\set marked_rows :answer_a_n
\set what 'response: rows marked by ato against the plain UPDATE'
\set query_b 'SELECT * FROM bench.plain_marked'
\ir ../lib/agree.sql
SELECT format('revoking %s of %s accounts (%s sessions and tokens): every account unusable after %s s with ato.revoke_incident() (%s accounts revoked and suspended) against %s s for seed 004''s loop to finish; ratio (seed/ato time) %s (target >= 10)',
              :accounts / 2, :accounts, :'marked_rows', round(c::numeric, 2), :'unusable', round(s::numeric, 2), round((s / c)::numeric, 1))
  FROM (SELECT bench.median('ato_containment') AS c, bench.median('seed_loop') AS s) m;
SELECT format('marking the same rows: the background worker took %s s for %s rows (%s rows/s); one plain UPDATE per table took %s s; throughput ratio (plain time/ato time) %s (target >= 0.8)',
              round(:'marking'::numeric, 2), :'ato_rows', round(:'ato_rows' / :'marking'::numeric), round(p::numeric, 2),
              round((p / :'marking'::numeric)::numeric, 2))
  FROM (SELECT bench.median('plain_update') AS p) m;
