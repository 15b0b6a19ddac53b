-- evidence.sql: after the response, the evidence (seed 004: "preserve all
-- logs from the incident period before doing any cleanup"): the incident's
-- events copied into the append-only, hash-chained store, verified, and its
-- timeline, from the attacker's first event to the containment.
\set QUIET on
SELECT id AS incident FROM ato.incidents ORDER BY opened_at DESC LIMIT 1 \gset
\pset title '(i) ato.preserve_evidence(): the events of the incident''s window, for its accounts and networks'
SELECT ato.preserve_evidence(:'incident', networks => ARRAY[:'attacker_cidr', :'attacker6_cidr']::cidr[]) AS rows_preserved;
\pset title '(i) ato.verify_evidence(): the chain recomputed'
SELECT * FROM ato.verify_evidence(:'incident');
\pset title '(j) ato.incident_timeline(): what happened, in order (first and last lines)'
(SELECT at, kind, left(detail, 90) AS detail FROM ato.incident_timeline(:'incident') ORDER BY at LIMIT 6)
UNION ALL
(SELECT at, kind, left(detail, 90) FROM ato.incident_timeline(:'incident') ORDER BY at DESC LIMIT 4)
ORDER BY 1;
\pset title
SELECT NOT ok AS evidence_failed FROM ato.verify_evidence(:'incident') \gset
\if :evidence_failed
DO $$BEGIN RAISE EXCEPTION 'the preserved evidence does not verify'; END$$;
\endif
