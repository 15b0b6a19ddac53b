-- install/sections/12_evidence.sql: an incident's evidence: its window and scope, an append-only copy of its events chained by SHA-256, verification, the export for chain of custody, the hold on retention, the events of its window.
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- Evidence (seed 004: "preserve all logs from the incident period before
-- doing any cleanup ... chain of custody ... write protection").
--
-- An incident's window runs from 24 hours before the earliest of its
-- opening and its linked alerts' evidence (or from the since given to
-- ato.preserve_evidence(), or from an earlier preservation's window, if
-- earlier) to now; its scope is its accounts and its attacker networks (the
-- networks given, or those of its alerts' evidence and of the networks
-- blocked since the window began).
--
-- The copy is a chain: row n's hash is
--     sha256(hash of row n-1 || UTF-8 bytes of row n's body)
-- where the hash before row 1 (the genesis) is
--     sha256(UTF-8 bytes of 'ato_response evidence ' || the incident's uuid)
-- and a body is the text of a JSON object {"event": <the event row>,
-- "table": "login_events" | "audit_events"}, stored as text (never
-- re-rendered).  Each preservation adds a manifest whose body (JSON text)
-- says who, when, the query, the window, the scope, the rows' positions and
-- the chain's head after them, and the previous manifest's hash; its hash is
-- sha256 of its body.  Anyone can recompute both from an export
-- (example/verify_evidence.py).
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.evidence_link(state bytea, genesis bytea, body text)
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.sha256(COALESCE(state, genesis) || pg_catalog.convert_to(body, 'UTF8')) $$;
COMMENT ON FUNCTION ato.evidence_link(bytea, bytea, text) IS
    'One link of an evidence chain: sha256 of the previous hash (genesis before the first row) and the UTF-8 bytes of the body; the state function of ato.evidence_chain()';
REVOKE ALL ON FUNCTION ato.evidence_link(bytea, bytea, text) FROM PUBLIC;

CREATE AGGREGATE ato.evidence_chain(genesis bytea, body text) (
    SFUNC = ato.evidence_link,
    STYPE = bytea
);
COMMENT ON AGGREGATE ato.evidence_chain(bytea, text) IS
    'The hash of an evidence chain over bodies in order, from genesis; as a running window aggregate, each row''s hash';
REVOKE ALL ON FUNCTION ato.evidence_chain(bytea, text) FROM PUBLIC;

CREATE FUNCTION ato.evidence_genesis(incident_id uuid)
RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.sha256(pg_catalog.convert_to('ato_response evidence ' || incident_id::text, 'UTF8')) $$;
COMMENT ON FUNCTION ato.evidence_genesis(uuid) IS
    'The hash before the first row of an incident''s evidence chain: sha256 of ''ato_response evidence '' and the incident''s uuid (lower case, with hyphens)';
REVOKE ALL ON FUNCTION ato.evidence_genesis(uuid) FROM PUBLIC;

-- No foreign key to ato.incidents: evidence outlives its incident's row (and
-- a key would stop a TRUNCATE of the incidents).
CREATE TABLE ato.evidence_manifests (
    incident_id uuid NOT NULL,
    manifest integer NOT NULL,
    preserved_at timestamptz NOT NULL,
    preserved_by name NOT NULL,
    window_from timestamptz NOT NULL,
    window_to timestamptz NOT NULL,
    user_ids text[] NOT NULL,
    networks cidr[] NOT NULL,
    query text NOT NULL,
    first_row bigint NOT NULL,
    rows bigint NOT NULL,
    head bytea NOT NULL,
    body text NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (incident_id, manifest)
);
COMMENT ON TABLE ato.evidence_manifests IS
    'One row per ato.preserve_evidence() that copied events: who, when, the query, the window and scope, the chain positions it added and the chain''s head after them; append-only';
COMMENT ON COLUMN ato.evidence_manifests.body IS
    'The manifest as JSON text (these columns and the previous manifest''s hash); hash is sha256 of its UTF-8 bytes';
COMMENT ON COLUMN ato.evidence_manifests.head IS 'The hash of the chain''s row first_row + rows - 1';
SELECT pg_catalog.pg_extension_config_dump('ato.evidence_manifests', '');

CREATE TABLE ato.evidence_rows (
    incident_id uuid NOT NULL,
    n bigint NOT NULL,
    manifest integer NOT NULL,
    event_table text NOT NULL,
    event_id bigint NOT NULL,
    occurred_at timestamptz NOT NULL,
    body text NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (incident_id, n),
    UNIQUE (incident_id, event_table, event_id)
);
COMMENT ON TABLE ato.evidence_rows IS
    'The preserved events of each incident, one chain per incident (position n from 1), each row''s hash chained to the previous one; append-only';
COMMENT ON COLUMN ato.evidence_rows.body IS
    'The event as JSON text, {"event": {...}, "table": "login_events"}, as copied; hash is sha256 of the previous row''s hash and its UTF-8 bytes';
SELECT pg_catalog.pg_extension_config_dump('ato.evidence_rows', '');

CREATE TRIGGER refuse_change BEFORE UPDATE OR DELETE ON ato.evidence_manifests
    FOR EACH ROW EXECUTE FUNCTION ato.refuse_change('evidence', 'Preserved evidence is never changed or removed; ato.preserve_evidence() adds to it, ato.verify_evidence() proves it intact.');
CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON ato.evidence_manifests
    FOR EACH STATEMENT EXECUTE FUNCTION ato.refuse_change('evidence', 'Preserved evidence is never changed or removed; ato.preserve_evidence() adds to it, ato.verify_evidence() proves it intact.');
CREATE TRIGGER refuse_change BEFORE UPDATE OR DELETE ON ato.evidence_rows
    FOR EACH ROW EXECUTE FUNCTION ato.refuse_change('evidence', 'Preserved evidence is never changed or removed; ato.preserve_evidence() adds to it, ato.verify_evidence() proves it intact.');
CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON ato.evidence_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ato.refuse_change('evidence', 'Preserved evidence is never changed or removed; ato.preserve_evidence() adds to it, ato.verify_evidence() proves it intact.');
-- (10_privileges.sql ran before these tables existed)
REVOKE ALL ON ato.evidence_manifests, ato.evidence_rows FROM PUBLIC;

-- The one check of an incident argument: NULL 22004, unknown P0002.
CREATE FUNCTION ato.check_incident(caller text, incident_id uuid)
RETURNS ato.incidents
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    incident ato.incidents;
BEGIN
    IF incident_id IS NULL THEN
        RAISE EXCEPTION '%: incident_id must not be NULL', caller
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the id ato.revoke_incident() returned; the incidents are in ato.incidents.';
    END IF;
    SELECT * INTO incident FROM ato.incidents i WHERE i.id = check_incident.incident_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: incident % does not exist', caller, incident_id
            USING ERRCODE = 'no_data_found',
                  HINT = 'The incidents are in ato.incidents.';
    END IF;
    RETURN incident;
END;
$$;
COMMENT ON FUNCTION ato.check_incident(text, uuid) IS
    'The incident of that id, for the evidence functions: an error naming the caller when it is NULL (22004) or unknown (P0002)';
REVOKE ALL ON FUNCTION ato.check_incident(text, uuid) FROM PUBLIC;

-- The window and scope of an incident, one definition for preserving,
-- holding retention off and the timeline.
CREATE FUNCTION ato.incident_scope(incident_id uuid, since timestamptz DEFAULT NULL, networks cidr[] DEFAULT NULL,
                                   OUT window_from timestamptz, OUT window_to timestamptz,
                                   OUT accounts text[], OUT attacker_networks cidr[], OUT is_open boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    incident ato.incidents := ato.check_incident('incident_scope', incident_id);
BEGIN
    IF NOT isfinite(since) OR since > now() THEN
        RAISE EXCEPTION 'preserve_evidence: since must be a finite time in the past'
            USING ERRCODE = 'datetime_field_overflow',
                  HINT = 'Leave it out for 24 hours before the incident''s first evidence, or give when the attack began.';
    END IF;
    IF array_position(networks, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'preserve_evidence: networks must not contain NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the attacker''s networks, for example ''{192.0.2.0/24}'', or leave them out for the networks of the incident''s alerts and blocks.';
    END IF;
    -- its first accounts and those added later (ato.incident_accounts,
    -- 13_incident_record.sql), released or not: preserving more is the
    -- safe side
    accounts := ARRAY(SELECT a.user_id FROM ato.incident_accounts a WHERE a.incident_id = incident.id
                       ORDER BY a.user_id COLLATE "C");
    is_open := incident.status <> 'lifted';
    window_to := now();
    window_from := coalesce(since,
        least((SELECT least(min(a.evidence_at), min(a.first_seen_at)) FROM ato.alerts a WHERE a.incident_id = incident.id),
              incident.opened_at) - interval '24 hours');
    IF since IS NULL THEN
        window_from := least(window_from, (SELECT min(m.window_from) FROM ato.evidence_manifests m
                                            WHERE m.incident_id = incident.id));
    END IF;
    IF networks IS NOT NULL THEN
        attacker_networks := networks;
    ELSE
        SELECT coalesce(array_agg(DISTINCT x.network ORDER BY x.network), '{}') INTO attacker_networks
          FROM (SELECT CASE WHEN a.evidence ? 'network' THEN (a.evidence ->> 'network')::cidr
                            WHEN a.evidence ->> 'source_kind' IN ('address', 'network') THEN (a.evidence ->> 'source')::cidr
                            ELSE set_masklen((a.evidence ->> 'ip_address')::inet,
                                             CASE WHEN family((a.evidence ->> 'ip_address')::inet) = 4 THEN 32 ELSE 128 END)::cidr
                            END AS network
                  FROM ato.alerts a
                 WHERE a.incident_id = incident.id
                   AND (a.evidence ? 'network' OR a.evidence ->> 'source_kind' IN ('address', 'network')
                        OR a.evidence ->> 'ip_address' IS NOT NULL)
                UNION
                SELECT b.network FROM ato.blocked_networks b WHERE b.blocked_at >= window_from
                UNION
                SELECT unnest(m.networks) FROM ato.evidence_manifests m WHERE m.incident_id = incident.id) x
         WHERE x.network IS NOT NULL;
    END IF;
END;
$$;
COMMENT ON FUNCTION ato.incident_scope(uuid, timestamptz, cidr[]) IS
    'An incident''s window (from since, or 24 hours before the earliest of its opening and its alerts'' evidence and first sightings, or an earlier preservation''s window, to now), its accounts (those added later included), its attacker networks (those given, or its alerts'' addresses and networks, the networks blocked since the window began and those of earlier preservations) and whether it is open (not lifted)';
REVOKE ALL ON FUNCTION ato.incident_scope(uuid, timestamptz, cidr[]) FROM PUBLIC;

-- The query a preservation runs, recorded as it is in its manifest: $1 the
-- incident, $2 window_from, $3 window_to, $4 its accounts, $5 its networks.
CREATE FUNCTION ato.evidence_query()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $q$ SELECT $$SELECT e.event_table, e.event_id, e.occurred_at, e.body
  FROM (SELECT 'login_events' AS event_table, l.id AS event_id, l.occurred_at,
               jsonb_build_object('table', 'login_events', 'event', to_jsonb(l))::text AS body
          FROM ato.login_events l
         WHERE l.occurred_at >= $2 AND l.occurred_at <= $3
           AND (l.user_id = ANY ($4) OR l.ip_address <<= ANY ($5))
        UNION ALL
        SELECT 'audit_events', a.id, a.occurred_at,
               jsonb_build_object('table', 'audit_events', 'event', to_jsonb(a))::text
          FROM ato.audit_events a
         WHERE a.occurred_at >= $2 AND a.occurred_at <= $3
           AND (a.actor_id = ANY ($4) OR a.target_id = ANY ($4) OR a.ip_address <<= ANY ($5))) e
 WHERE NOT EXISTS (SELECT FROM ato.evidence_rows r
                    WHERE r.incident_id = $1 AND r.event_table = e.event_table AND r.event_id = e.event_id)
 ORDER BY e.occurred_at, e.event_table, e.event_id$$ $q$;
COMMENT ON FUNCTION ato.evidence_query() IS
    'The query ato.preserve_evidence() runs and records in each manifest: the events of the window for the accounts (actor or target) and the networks not preserved yet, in time order ($1 incident, $2 window_from, $3 window_to, $4 accounts, $5 networks)';
REVOKE ALL ON FUNCTION ato.evidence_query() FROM PUBLIC;

CREATE FUNCTION ato.preserve_evidence(incident_id uuid, since timestamptz DEFAULT NULL, networks cidr[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    scope record;
    evidence_sql text := ato.evidence_query();
    number integer;
    before bigint;
    previous bytea;
    previous_manifest bytea;
    copied bigint;
    head bytea;
    body text;
BEGIN
    PERFORM ato.check_incident('preserve_evidence', incident_id);
    -- no month attached under the copy (src/event_layout.c)
    PERFORM ato.hold_event_layout();
    -- one preservation of an incident at a time: each continues the chain
    PERFORM FROM ato.incidents i WHERE i.id = preserve_evidence.incident_id FOR UPDATE;
    SELECT * INTO scope FROM ato.incident_scope(incident_id, since, networks);

    SELECT coalesce(max(m.manifest), 0) + 1 INTO number
      FROM ato.evidence_manifests m WHERE m.incident_id = preserve_evidence.incident_id;
    SELECT m.first_row + m.rows - 1, m.head, m.hash INTO before, previous, previous_manifest
      FROM ato.evidence_manifests m
     WHERE m.incident_id = preserve_evidence.incident_id AND m.manifest = number - 1;
    before := coalesce(before, 0);
    previous := coalesce(previous, ato.evidence_genesis(incident_id));

    EXECUTE format($i$
        INSERT INTO ato.evidence_rows (incident_id, n, manifest, event_table, event_id, occurred_at, body, hash)
        SELECT $1, $6 + q.position, $7, q.event_table, q.event_id, q.occurred_at, q.body,
               ato.evidence_chain($8, q.body) OVER (ORDER BY q.position ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
          FROM (SELECT s.*, row_number() OVER (ORDER BY s.occurred_at, s.event_table, s.event_id) AS position
                  FROM (%s) s) q$i$, evidence_sql)
      USING incident_id, scope.window_from, scope.window_to, scope.accounts, scope.attacker_networks,
            before, number, previous;
    GET DIAGNOSTICS copied = ROW_COUNT;
    IF copied = 0 THEN
        RAISE NOTICE 'preserve_evidence: every event of the incident''s window and scope is already preserved'
            USING DETAIL = format('%s events preserved under %s manifests; the scope: %s accounts, %s networks.',
                                  before, number - 1, cardinality(scope.accounts), cardinality(scope.attacker_networks)),
                  HINT = 'Nothing was added. ato.verify_evidence() proves the copy intact, ato.export_evidence() exports it.';
        RETURN 0;
    END IF;

    SELECT r.hash INTO head FROM ato.evidence_rows r
     WHERE r.incident_id = preserve_evidence.incident_id AND r.n = before + copied;
    body := jsonb_build_object(
        'incident', incident_id, 'manifest', number,
        'preserved_at', now(), 'preserved_by', session_user,
        'window_from', scope.window_from, 'window_to', scope.window_to,
        'user_ids', to_jsonb(scope.accounts), 'networks', to_jsonb(scope.attacker_networks::text[]),
        'query', evidence_sql, 'first_row', before + 1, 'rows', copied,
        'head', encode(head, 'hex'), 'previous', encode(previous_manifest, 'hex'))::text;
    INSERT INTO ato.evidence_manifests (incident_id, manifest, preserved_at, preserved_by, window_from, window_to,
                                        user_ids, networks, query, first_row, rows, head, body, hash)
    VALUES (incident_id, number, now(), session_user, scope.window_from, scope.window_to,
            scope.accounts, scope.attacker_networks, evidence_sql, before + 1, copied, head, body,
            sha256(convert_to(body, 'UTF8')));
    INSERT INTO ato.response_log (action, incident_id, detail)
    VALUES ('evidence_preserved', incident_id,
            format('manifest %s: %s events (positions %s to %s) from %s to %s, head %s, manifest hash %s',
                   number, copied, before + 1, before + copied, scope.window_from, scope.window_to,
                   encode(head, 'hex'), encode(sha256(convert_to(body, 'UTF8')), 'hex')));
    RETURN copied;
END;
$$;
COMMENT ON FUNCTION ato.preserve_evidence(uuid, timestamptz, cidr[]) IS
    'Copies the events of the incident''s window (see ato.incident_scope(); since and networks override its start and attacker networks) for its accounts and networks into ato.evidence_rows, chained by SHA-256, with a manifest in ato.evidence_manifests; called again, adds the events not preserved yet under a new manifest (none: a NOTICE and no manifest); returns the events copied';
REVOKE ALL ON FUNCTION ato.preserve_evidence(uuid, timestamptz, cidr[]) FROM PUBLIC;

CREATE FUNCTION ato.verify_evidence(incident_id uuid)
RETURNS TABLE (ok boolean, rows bigint, first_bad bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    genesis bytea;
    stored bigint;
    bad_row bigint;
    m record;
    j jsonb;
    expected_first bigint := 1;
    previous bytea;
    manifest_bad bigint;
    problem text;
BEGIN
    IF incident_id IS NULL THEN
        RAISE EXCEPTION 'verify_evidence: incident_id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the id of an incident whose evidence ato.preserve_evidence() preserved.';
    END IF;
    IF NOT EXISTS (SELECT FROM ato.incidents i WHERE i.id = verify_evidence.incident_id)
       AND NOT EXISTS (SELECT FROM ato.evidence_manifests x WHERE x.incident_id = verify_evidence.incident_id)
       AND NOT EXISTS (SELECT FROM ato.evidence_rows x WHERE x.incident_id = verify_evidence.incident_id) THEN
        RAISE EXCEPTION 'verify_evidence: incident % does not exist', incident_id
            USING ERRCODE = 'no_data_found',
                  HINT = 'The incidents are in ato.incidents, their evidence in ato.evidence_manifests.';
    END IF;
    genesis := ato.evidence_genesis(incident_id);

    -- the rows: each at its position, its columns those of its body, its
    -- hash the chain's, recomputed from the bodies
    WITH r AS (
        SELECT x.n, row_number() OVER (ORDER BY x.n) AS pos, x.hash, x.body, x.event_table, x.event_id, x.occurred_at,
               ato.evidence_chain(genesis, x.body) OVER (ORDER BY x.n ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS expected
          FROM ato.evidence_rows x WHERE x.incident_id = verify_evidence.incident_id)
    SELECT count(*),
           min(r.pos) FILTER (WHERE r.n <> r.pos OR r.hash <> r.expected
                                 OR r.event_table IS DISTINCT FROM r.body::jsonb ->> 'table'
                                 OR r.event_id IS DISTINCT FROM (r.body::jsonb -> 'event' ->> 'id')::bigint
                                 OR r.occurred_at IS DISTINCT FROM (r.body::jsonb -> 'event' ->> 'occurred_at')::timestamptz)
      INTO stored, bad_row
      FROM r;
    IF bad_row IS NOT NULL THEN
        problem := format('position %s does not hold the row preserved there (changed, removed or moved)', bad_row);
    END IF;

    -- the manifests: each its body's hash, its columns those of its body,
    -- following the previous one, its head the hash stored at its last
    -- position (which the rows' check compared with the chain's)
    FOR m IN SELECT * FROM ato.evidence_manifests x WHERE x.incident_id = verify_evidence.incident_id ORDER BY x.manifest LOOP
        j := m.body::jsonb;
        IF m.hash <> sha256(convert_to(m.body, 'UTF8'))
           OR m.first_row <> expected_first OR m.rows <= 0
           OR (j ->> 'incident')::uuid IS DISTINCT FROM m.incident_id
           OR (j ->> 'manifest')::integer IS DISTINCT FROM m.manifest
           OR (j ->> 'first_row')::bigint IS DISTINCT FROM m.first_row
           OR (j ->> 'rows')::bigint IS DISTINCT FROM m.rows
           OR j ->> 'head' IS DISTINCT FROM encode(m.head, 'hex')
           OR j ->> 'previous' IS DISTINCT FROM encode(previous, 'hex')
           OR m.head IS DISTINCT FROM (SELECT x.hash FROM ato.evidence_rows x
                                        WHERE x.incident_id = m.incident_id AND x.n = m.first_row + m.rows - 1) THEN
            manifest_bad := least(m.first_row, expected_first);
            problem := coalesce(problem, format('manifest %s does not match its hash, its rows or the previous manifest', m.manifest));
            EXIT;
        END IF;
        previous := m.hash;
        expected_first := m.first_row + m.rows;
    END LOOP;
    IF manifest_bad IS NULL AND stored <> expected_first - 1 THEN
        -- rows missing at the end, or rows no manifest accounts for
        manifest_bad := least(stored, expected_first - 1) + 1;
        problem := coalesce(problem, format('the manifests account for %s rows, %s are stored', expected_first - 1, stored));
    END IF;
    first_bad := least(bad_row, manifest_bad);
    rows := stored;
    ok := first_bad IS NULL AND stored > 0;
    IF stored = 0 AND first_bad IS NULL THEN
        RAISE NOTICE 'verify_evidence: no evidence of the incident is preserved'
            USING HINT = 'Preserve it with ato.preserve_evidence().';
    ELSIF NOT ok THEN
        RAISE WARNING 'verify_evidence: the incident''s evidence is not intact: %', problem
            USING HINT = 'Compare with the last export (ato.export_evidence()), checked by example/verify_evidence.py.';
    END IF;
    RETURN NEXT;
END;
$$;
COMMENT ON FUNCTION ato.verify_evidence(uuid) IS
    'Proves an incident''s preserved evidence intact: recomputes the SHA-256 chain from the rows'' bodies and checks every row''s position, columns and hash, and every manifest''s hash, head and row count; ok, the rows stored, and the first chain position that does not hold its preserved row (NULL when intact)';
REVOKE ALL ON FUNCTION ato.verify_evidence(uuid) FROM PUBLIC;

CREATE FUNCTION ato.export_evidence(incident_id uuid)
RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    check_ record;
BEGIN
    IF incident_id IS NULL THEN
        RAISE EXCEPTION 'export_evidence: incident_id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the id of an incident whose evidence ato.preserve_evidence() preserved.';
    END IF;
    IF NOT EXISTS (SELECT FROM ato.evidence_manifests m WHERE m.incident_id = export_evidence.incident_id)
       AND NOT EXISTS (SELECT FROM ato.evidence_rows r WHERE r.incident_id = export_evidence.incident_id) THEN
        RAISE EXCEPTION 'export_evidence: no evidence of the incident is preserved'
            USING ERRCODE = 'no_data_found',
                  HINT = 'Preserve it first with ato.preserve_evidence().';
    END IF;
    SELECT * INTO check_ FROM ato.verify_evidence(incident_id);
    RETURN QUERY
    SELECT x.line FROM (
        SELECT 0 AS part, 0::bigint AS n,
               jsonb_build_object('format', 'ato_response evidence 1', 'incident', export_evidence.incident_id,
                                  'exported_at', now(), 'exported_by', session_user,
                                  'genesis', encode(ato.evidence_genesis(export_evidence.incident_id), 'hex'),
                                  'rows', check_.rows, 'verified', check_.ok,
                                  'manifests', (SELECT count(*) FROM ato.evidence_manifests m WHERE m.incident_id = export_evidence.incident_id),
                                  'manifest_hash', (SELECT encode(m.hash, 'hex') FROM ato.evidence_manifests m
                                                     WHERE m.incident_id = export_evidence.incident_id
                                                     ORDER BY m.manifest DESC LIMIT 1))::text AS line
        UNION ALL
        SELECT 1, m.manifest, jsonb_build_object('manifest', m.manifest, 'body', m.body, 'hash', encode(m.hash, 'hex'))::text
          FROM ato.evidence_manifests m WHERE m.incident_id = export_evidence.incident_id
        UNION ALL
        SELECT 2, r.n, jsonb_build_object('n', r.n, 'body', r.body, 'hash', encode(r.hash, 'hex'))::text
          FROM ato.evidence_rows r WHERE r.incident_id = export_evidence.incident_id) x
     ORDER BY x.part, x.n;
END;
$$;
COMMENT ON FUNCTION ato.export_evidence(uuid) IS
    'The incident''s evidence for chain of custody, as JSON lines: a header (incident, genesis, rows, whether it verified, the last manifest''s hash), one line per manifest and one per row, each with its body and hash; example/verify_evidence.py checks it without the extension (psql -XAt -c "SELECT * FROM ato.export_evidence(...)" > file)';
REVOKE ALL ON FUNCTION ato.export_evidence(uuid) FROM PUBLIC;

-- Retention: a partition that may hold events of an open incident's window
-- is kept (seed 004: no destructive cleanup during an active incident).
-- ato.drop_event_partitions() asks, and so ato.apply_retention().
CREATE FUNCTION ato.partition_held(relation regclass, upper_bound timestamptz)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    holder record;
BEGIN
    IF relation IS NULL OR upper_bound IS NULL THEN
        RAISE EXCEPTION 'partition_held: relation and upper_bound must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass a partition of ato.event_partitions and its upper bound.';
    END IF;
    SELECT i.id, s.window_from INTO holder
      FROM ato.incidents i CROSS JOIN LATERAL ato.incident_scope(i.id) s
     WHERE i.status <> 'lifted' AND s.window_from < upper_bound
     ORDER BY s.window_from, i.id
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    RAISE NOTICE 'drop_event_partitions: % is kept: it holds events of the window of open incident % (from %)',
        relation, holder.id, holder.window_from
        USING HINT = 'No destructive cleanup during an active incident: it is dropped once the incident is lifted (ato.lift_incident()); preserve its evidence with ato.preserve_evidence().';
    RETURN true;
END;
$$;
COMMENT ON FUNCTION ato.partition_held(regclass, timestamptz) IS
    'True, with a NOTICE saying which incident, when an open (not lifted) incident''s window reaches into the partition ending at upper_bound: ato.drop_event_partitions() keeps it';
REVOKE ALL ON FUNCTION ato.partition_held(regclass, timestamptz) FROM PUBLIC;

-- The events of an incident's window for its accounts and networks: what
-- its timeline and its report show.
CREATE FUNCTION ato.incident_events(incident_id uuid)
RETURNS TABLE (event_table text, event_id bigint, e jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    scope record;
    incident ato.incidents;
BEGIN
    incident := ato.check_incident('incident_events', incident_id);
    SELECT * INTO scope FROM ato.incident_scope(incident.id);
    -- (accounts are matched through a hashed IN: = ANY of a variable would
    -- compare every event with every account)
    RETURN QUERY
    -- preserved events, as preserved (they outlive retention), then the
    -- window's events not preserved yet
    SELECT r.event_table, r.event_id, r.body::jsonb -> 'event' AS e
      FROM ato.evidence_rows r WHERE r.incident_id = incident.id
    UNION ALL
    SELECT 'login_events', l.id, to_jsonb(l)
      FROM ato.login_events l
     WHERE l.occurred_at >= scope.window_from AND l.occurred_at <= scope.window_to
       AND (l.user_id IN (SELECT u FROM unnest(scope.accounts) u) OR l.ip_address <<= ANY (scope.attacker_networks))
       AND NOT EXISTS (SELECT FROM ato.evidence_rows r
                        WHERE r.incident_id = incident.id AND r.event_table = 'login_events' AND r.event_id = l.id)
    UNION ALL
    SELECT 'audit_events', a.id, to_jsonb(a)
      FROM ato.audit_events a
     WHERE a.occurred_at >= scope.window_from AND a.occurred_at <= scope.window_to
       AND (a.actor_id IN (SELECT u FROM unnest(scope.accounts) u) OR a.target_id IN (SELECT u FROM unnest(scope.accounts) u)
            OR a.ip_address <<= ANY (scope.attacker_networks))
       AND NOT EXISTS (SELECT FROM ato.evidence_rows r
                        WHERE r.incident_id = incident.id AND r.event_table = 'audit_events' AND r.event_id = a.id);
END;
$$;
COMMENT ON FUNCTION ato.incident_events(uuid) IS
    'The events of an incident''s window (ato.incident_scope()) for its accounts (actor or target) and attacker networks, each as its row in JSON: the preserved ones as preserved (they outlive retention), then those not preserved yet; what ato.incident_timeline() and ato.incident_report() show';
REVOKE ALL ON FUNCTION ato.incident_events(uuid) FROM PUBLIC;
