-- The second half of an incident (issue 16): its events preserved in an
-- append-only copy chained by SHA-256, proved intact (and caught when a
-- superuser changed or removed a row behind the triggers), exported for
-- chain of custody; retention holding off while the incident is open; and
-- one timeline from the attacker's first failure to the lifting.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION ato_response CASCADE;
CREATE EXTENSION ato_response;
SET client_min_messages = notice;

-- The story: u1 and u2 log in from home (GB).  Half an hour ago three
-- failures for u1 from 5.188.10.7 (RU), then a success, then an e-mail
-- change from there; the same address tries u3.  u4 logs in from home.
-- u3's old failure from that address, 45 days ago, is outside the window.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
SELECT u, '81.2.69.160', 'success', now() - interval '3 days' FROM unnest('{u1,u2,u4}'::text[]) u;
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at) VALUES
    ('u3', '5.188.10.7', 'failure', now() - interval '45 days'),
    ('u1', '5.188.10.7', 'failure', now() - interval '30 minutes'),
    ('u1', '5.188.10.7', 'failure', now() - interval '29 minutes'),
    ('u1', '5.188.10.7', 'failure', now() - interval '28 minutes'),
    ('u1', '5.188.10.7', 'success', now() - interval '27 minutes'),
    ('u3', '5.188.10.7', 'failure', now() - interval '26 minutes'),
    ('u4', '81.2.69.160', 'success', now() - interval '10 minutes');
INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address, target_type, target_id) VALUES
    ('u1', 'user.email_changed', now() - interval '25 minutes', '5.188.10.7', 'user', 'u1');

-- The rule finds u1's new-country login; the responder escalates it and
-- blocks the network.
SELECT ato.run_detection('new_country_logins') AS findings;
SELECT id AS alert FROM ato.alerts WHERE finding = 'u1 RU' \gset
SET client_min_messages = warning;
SELECT ato.escalate_alert(:alert, suspend => true) AS incident \gset
SET client_min_messages = notice;
SELECT ato.block_network('5.188.10.0/24', 'takeover of u1');

-- The window and scope: 24 hours before the alert's evidence, to now; the
-- incident's account; the alert's address and the blocked network.
SELECT s.window_from = a.evidence_at - interval '24 hours' AS window_from_day_before_evidence,
       s.window_to = now() AS window_to_now, s.accounts, s.attacker_networks, s.is_open
  FROM ato.incident_scope(:'incident') s, ato.alerts a WHERE a.id = :alert;

-- Preserving copies u1's events of the window and the network's (u3's
-- failure), not u4's, nor the login 45 days ago.
SELECT ato.preserve_evidence(:'incident') AS preserved;
SELECT n, manifest, event_table, body::jsonb -> 'event' ->> 'user_id' AS user_id,
       body::jsonb -> 'event' ->> 'actor_id' AS actor_id,
       body::jsonb -> 'event' ->> 'outcome' AS outcome, body::jsonb -> 'event' ->> 'country_code' AS country,
       octet_length(hash) AS hash_bytes
  FROM ato.evidence_rows WHERE incident_id = :'incident' ORDER BY n;
-- The chain: row n's hash is sha256(row n-1's hash || its body), from the
-- genesis sha256('ato_response evidence ' || incident).
WITH RECURSIVE c AS (
    SELECT 0::bigint AS n, sha256(convert_to('ato_response evidence ' || :'incident', 'UTF8')) AS hash
    UNION ALL
    SELECT r.n, sha256(c.hash || convert_to(r.body, 'UTF8'))
      FROM c JOIN ato.evidence_rows r ON r.incident_id = :'incident' AND r.n = c.n + 1)
SELECT bool_and(c.hash = r.hash) AS chain_recomputed, count(*) AS rows
  FROM c JOIN ato.evidence_rows r ON r.incident_id = :'incident' AND r.n = c.n;
-- The manifest: who, when, the query, the window, how many rows, the head;
-- its hash is sha256 of its body.
SELECT m.manifest, m.preserved_by = session_user AS by_me, m.preserved_at <= now() AS preserved_at,
       m.user_ids, m.networks, m.first_row, m.rows,
       m.head = (SELECT r.hash FROM ato.evidence_rows r WHERE r.incident_id = m.incident_id AND r.n = 6) AS head_is_last_row,
       m.hash = sha256(convert_to(m.body, 'UTF8')) AS hash_of_body,
       m.query = ato.evidence_query() AS query_recorded,
       (m.body::jsonb ->> 'rows')::int AS body_rows, m.body::jsonb ->> 'previous' AS previous,
       m.body::jsonb ->> 'head' = encode(m.head, 'hex') AS body_head
  FROM ato.evidence_manifests m WHERE m.incident_id = :'incident';
SELECT action, detail LIKE 'manifest 1: 6 events (positions 1 to 6) from %' AS detail
  FROM ato.response_log WHERE action = 'evidence_preserved';
SELECT * FROM ato.verify_evidence(:'incident');

-- Again: nothing new, so nothing added.
SELECT ato.preserve_evidence(:'incident') AS preserved_again;
SELECT count(*) AS manifests FROM ato.evidence_manifests;
-- The attacker acts again (a late event): the second call adds it under a
-- second manifest that continues the chain.
INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address)
VALUES ('u1', 'user.mfa.factor.activate', now() - interval '1 minute', '5.188.10.7');
SELECT ato.preserve_evidence(:'incident') AS preserved_late;
SELECT manifest, first_row, rows,
       body::jsonb ->> 'previous' = (SELECT encode(hash, 'hex') FROM ato.evidence_manifests p
                                      WHERE p.incident_id = m.incident_id AND p.manifest = 1) AS follows_first
  FROM ato.evidence_manifests m WHERE incident_id = :'incident' ORDER BY manifest;
SELECT * FROM ato.verify_evidence(:'incident');

-- Append-only: no UPDATE, DELETE or TRUNCATE, not even by a superuser.
UPDATE ato.evidence_rows SET body = '{}' WHERE n = 2;
DELETE FROM ato.evidence_rows WHERE n = 2;
TRUNCATE ato.evidence_rows;
UPDATE ato.evidence_manifests SET rows = 1;
DELETE FROM ato.evidence_manifests;
TRUNCATE ato.evidence_manifests;
TRUNCATE ato.incidents, ato.evidence_manifests CASCADE;
SELECT count(*) AS rows_left FROM ato.evidence_rows;
-- Nobody has any privilege on them but their owner.
SELECT c.relname, c.relacl FROM pg_class c
 WHERE c.oid IN ('ato.evidence_rows'::regclass, 'ato.evidence_manifests'::regclass) ORDER BY 1;

-- A superuser who disables the triggers and changes a row's event is
-- caught at that row; put back, the copy is intact again.
CREATE TEMP TABLE original AS SELECT * FROM ato.evidence_rows WHERE incident_id = :'incident';
ALTER TABLE ato.evidence_rows DISABLE TRIGGER ALL;
UPDATE ato.evidence_rows SET body = replace(body, '5.188.10.7', '81.2.69.160') WHERE n = 3;
ALTER TABLE ato.evidence_rows ENABLE TRIGGER ALL;
SELECT * FROM ato.verify_evidence(:'incident');
-- The same with the hashes recomputed from the changed row on: the chain
-- holds, the manifests' heads do not.
ALTER TABLE ato.evidence_rows DISABLE TRIGGER ALL;
UPDATE ato.evidence_rows r SET hash = c.hash
  FROM (SELECT x.n, ato.evidence_chain(ato.evidence_genesis(x.incident_id), x.body)
                     OVER (ORDER BY x.n ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS hash
          FROM ato.evidence_rows x WHERE x.incident_id = :'incident') c
 WHERE r.incident_id = :'incident' AND r.n = c.n;
SELECT * FROM ato.verify_evidence(:'incident');
-- A column outside the body (the event's time) changed alone.
UPDATE ato.evidence_rows r SET body = o.body, hash = o.hash FROM original o WHERE o.n = r.n;
UPDATE ato.evidence_rows SET occurred_at = occurred_at - interval '1 hour' WHERE n = 5;
SELECT * FROM ato.verify_evidence(:'incident');
UPDATE ato.evidence_rows r SET occurred_at = o.occurred_at FROM original o WHERE o.n = r.n;
-- A row deleted in the middle, then the last one.
DELETE FROM ato.evidence_rows WHERE n = 4;
SELECT * FROM ato.verify_evidence(:'incident');
INSERT INTO ato.evidence_rows SELECT * FROM original WHERE n = 4;
DELETE FROM ato.evidence_rows WHERE n = 7;
SELECT * FROM ato.verify_evidence(:'incident');
INSERT INTO ato.evidence_rows SELECT * FROM original WHERE n = 7;
-- A row added behind the manifests' back.
INSERT INTO ato.evidence_rows (incident_id, n, manifest, event_table, event_id, occurred_at, body, hash)
SELECT incident_id, 8, 2, event_table, event_id + 1000, occurred_at, body, hash FROM original WHERE n = 7;
SELECT * FROM ato.verify_evidence(:'incident');
ALTER TABLE ato.evidence_rows ENABLE TRIGGER ALL;
-- (as the superuser who added it, with the triggers off again)
ALTER TABLE ato.evidence_rows DISABLE TRIGGER ALL;
DELETE FROM ato.evidence_rows WHERE n = 8;
ALTER TABLE ato.evidence_rows ENABLE TRIGGER ALL;
-- A manifest changed.
ALTER TABLE ato.evidence_manifests DISABLE TRIGGER ALL;
UPDATE ato.evidence_manifests SET body = replace(body, '"rows": 1', '"rows": 2') WHERE manifest = 2;
SELECT * FROM ato.verify_evidence(:'incident');
UPDATE ato.evidence_manifests SET body = replace(body, '"rows": 2', '"rows": 1') WHERE manifest = 2;
ALTER TABLE ato.evidence_manifests ENABLE TRIGGER ALL;
SELECT * FROM ato.verify_evidence(:'incident');

-- The export: a header, one line per manifest and one per row, each line
-- a JSON object with its body and hash.
SELECT line::jsonb ->> 'format' AS format, (line::jsonb ->> 'rows')::int AS rows,
       (line::jsonb ->> 'manifests')::int AS manifests, (line::jsonb ->> 'verified')::boolean AS verified,
       line::jsonb ->> 'manifest_hash' = (SELECT encode(hash, 'hex') FROM ato.evidence_manifests WHERE manifest = 2) AS manifest_hash,
       line::jsonb ->> 'genesis' = encode(ato.evidence_genesis(:'incident'), 'hex') AS genesis
  FROM ato.export_evidence(:'incident') WITH ORDINALITY AS e(line, k) WHERE k = 1;
SELECT k, coalesce(line::jsonb ->> 'manifest', line::jsonb ->> 'n') AS number,
       line::jsonb ->> 'body' = coalesce((SELECT m.body FROM ato.evidence_manifests m WHERE k <= 3 AND m.manifest = k - 1),
                                         (SELECT r.body FROM ato.evidence_rows r WHERE r.n = k - 3)) AS body,
       length(line::jsonb ->> 'hash') AS hash_hex
  FROM ato.export_evidence(:'incident') WITH ORDINALITY AS e(line, k) WHERE k > 1 ORDER BY k;

-- The timeline: the attacker's first failure, the success, the account
-- changes, the alert and its escalation, the opening, the marked batch,
-- containment, the block, the evidence, and (below) the lifting.
SELECT ato.lift_incident(:'incident', note => 'u1 verified by phone') AS lifted;
SELECT kind, accounts,
       replace(detail, session_user, 'me') AS detail,
       split_part(ref, ':', 1) AS source
  FROM ato.incident_timeline(:'incident')
 WHERE kind <> 'evidence preserved';
SELECT count(*) AS evidence_steps FROM ato.incident_timeline(:'incident') WHERE kind = 'evidence preserved';
SELECT bool_and(at IS NOT NULL) AS every_step_timed,
       array_agg(at ORDER BY ordinality) = array_agg(at ORDER BY at) AS in_order
  FROM ato.incident_timeline(:'incident') WITH ORDINALITY;

-- Retention never removes events of an open incident's window.  r1's
-- incident is open and its evidence was preserved from 2024-03-10: the
-- months from March 2024 on stay, the older ones go; lifted, they go too.
SELECT ato.create_event_partitions('2024-01-01', '2024-06-30') AS created;
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at) VALUES
    ('r1', '5.188.10.9', 'success', '2024-01-15'), ('r1', '5.188.10.9', 'success', '2024-03-15'),
    ('r1', '5.188.10.9', 'success', '2024-05-15');
SET client_min_messages = warning;
SELECT ato.revoke_incident('{r1}', 'historical takeover') AS old_incident \gset
SET client_min_messages = notice;
SELECT ato.preserve_evidence(:'old_incident', since => '2024-03-10', networks => '{5.188.10.9/32}') AS preserved;
SELECT s.window_from AS held_from FROM ato.incident_scope(:'old_incident') s;
SET client_min_messages = warning;   -- the NOTICEs name the incident (test/t/010 reads them)
SELECT ato.partition_held('ato.login_events_p2024_02', '2024-03-01') AS feb_held,
       ato.partition_held('ato.login_events_p2024_03', '2024-04-01') AS march_held;
SELECT ato.drop_event_partitions('2024-07-01') AS dropped;
SET ato_response.retention = '30d';
SELECT ato.apply_retention() AS dropped_by_retention;
SET client_min_messages = notice;
SELECT partition, lower_bound FROM ato.event_partitions WHERE NOT is_default ORDER BY 1;
SELECT ato.lift_incident(:'old_incident') AS lifted;
SELECT ato.apply_retention() AS dropped_once_lifted;
RESET ato_response.retention;
SELECT count(*) AS months_left FROM ato.event_partitions WHERE NOT is_default;
-- The evidence outlives the partitions it was copied from.
SELECT * FROM ato.verify_evidence(:'old_incident');
SELECT count(*) AS preserved_events FROM ato.evidence_rows WHERE incident_id = :'old_incident';

-- Bad input: SQLSTATE and hint as the README's table of errors says.
CREATE FUNCTION pg_temp.sqlstate_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
SELECT s.statement, pg_temp.sqlstate_of(s.statement) AS sqlstate
  FROM (VALUES ($$SELECT ato.preserve_evidence(NULL)$$),
               ($$SELECT ato.preserve_evidence('00000000-0000-0000-0000-000000000000')$$),
               ($$SELECT * FROM ato.verify_evidence(NULL)$$),
               ($$SELECT * FROM ato.verify_evidence('00000000-0000-0000-0000-000000000000')$$),
               ($$SELECT * FROM ato.export_evidence(NULL)$$),
               ($$SELECT * FROM ato.export_evidence('00000000-0000-0000-0000-000000000000')$$),
               ($$SELECT * FROM ato.incident_timeline(NULL)$$),
               ($$SELECT * FROM ato.incident_timeline('00000000-0000-0000-0000-000000000000')$$),
               ($$SELECT * FROM ato.incident_scope(NULL)$$),
               ($$SELECT ato.partition_held(NULL, now())$$)) AS s(statement);
SELECT ato.preserve_evidence(NULL);
SELECT ato.preserve_evidence('00000000-0000-0000-0000-000000000000');
SELECT ato.preserve_evidence(:'incident', since => 'infinity');
SELECT ato.preserve_evidence(:'incident', since => now() + interval '1 day');
SELECT ato.preserve_evidence(:'incident', networks => ARRAY[NULL::cidr]);
SELECT * FROM ato.verify_evidence(NULL);
SELECT * FROM ato.verify_evidence('00000000-0000-0000-0000-000000000000');
SELECT * FROM ato.export_evidence(NULL);
SELECT * FROM ato.export_evidence('00000000-0000-0000-0000-000000000000');
SELECT * FROM ato.incident_timeline(NULL);
SELECT * FROM ato.incident_timeline('00000000-0000-0000-0000-000000000000');
SELECT ato.partition_held(NULL, now());
-- An incident with nothing preserved verifies as not ok, and has no export.
SET client_min_messages = warning;
SELECT ato.revoke_incident('{nobody-here}', 'nothing to preserve') AS empty_incident \gset
SET client_min_messages = notice;
SELECT * FROM ato.verify_evidence(:'empty_incident');
SELECT * FROM ato.export_evidence(:'empty_incident');
-- None of it is PUBLIC.
SELECT p.oid::regprocedure FROM pg_proc p
 WHERE p.pronamespace = 'ato'::regnamespace AND p.proname ~ 'evidence|incident_scope|incident_timeline|partition_held|check_incident'
   AND has_function_privilege('public', p.oid, 'EXECUTE');
