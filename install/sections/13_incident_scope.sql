-- install/sections/13_incident_scope.sql: an incident's scope after its opening: accounts added (contained by src/revoke.c as its first ones), accounts released, and the lifting of an incident's suspensions in stages (ato.lift_incident()).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- It comes after the record (13_incident_record.sql), whose changes and
-- ato.incident_scope_changes it writes: the containment in src/revoke.c
-- records its stage in the record, and is called from here, not from there.

-- ---------------------------------------------------------------------------
-- Scope changes: accounts added to an open incident are contained as its
-- first ones were (src/revoke.c: the fence, a revocation time, the
-- incident's flags and reason, its tables marked under its id and announced
-- in the outbox); accounts found unaffected are released (their suspension
-- lifted as ato.lift_incident() lifts it).
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.contain_incident_accounts(incident_id uuid, user_ids text[])
RETURNS integer
AS 'MODULE_PATHNAME', 'ato_contain_incident_accounts'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.contain_incident_accounts(uuid, text[]) IS
    'For ato.add_incident_accounts(): contains the accounts as the incident''s first ones were (fence, revocation time now, the incident''s flags and reason, its tables marked in its batches, in this transaction), at most 1024 at a time; returns how many';
REVOKE ALL ON FUNCTION ato.contain_incident_accounts(uuid, text[]) FROM PUBLIC;

CREATE FUNCTION ato.check_scope_change(caller text, user_ids text[], reason text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    repeated text;
BEGIN
    PERFORM ato.check_account_ids(caller, 'user_ids', user_ids);
    IF array_ndims(user_ids) > 1 THEN
        RAISE EXCEPTION '%: user_ids must be a one-dimensional array', caller
            USING ERRCODE = 'array_subscript_error',
                  HINT = 'Pass the accounts, for example ARRAY[''alice'', ''bob''].';
    END IF;
    SELECT u INTO repeated FROM unnest(user_ids) u GROUP BY u HAVING count(*) > 1 ORDER BY u LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '%: account % is given more than once', caller, repeated
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass each account once, for example ARRAY(SELECT DISTINCT unnest(ids)).';
    END IF;
    PERFORM ato.check_record_text(caller, 'reason', reason, '''same device fingerprint as the attacker''s''');
END;
$$;
COMMENT ON FUNCTION ato.check_scope_change(text, text[], text) IS
    'The checks of a scope change''s arguments: accounts (NULL 22004, empty 22023, not one-dimensional 2202E, an account twice 22023) and a reason';
REVOKE ALL ON FUNCTION ato.check_scope_change(text, text[], text) FROM PUBLIC;

CREATE FUNCTION ato.add_incident_accounts(incident_id uuid, user_ids text[], reason text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rec ato.incident_records := ato.incident_record('add_incident_accounts', incident_id, true);
    incident ato.incidents;
    added text[];
    present text[];
BEGIN
    PERFORM ato.check_scope_change('add_incident_accounts', user_ids, reason);
    SELECT * INTO incident FROM ato.incidents i WHERE i.id = add_incident_accounts.incident_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'add_incident_accounts: incident % is not contained yet', incident_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Contain its accounts first: SELECT ato.revoke_incident(accounts, reason, incident_id => %L).', incident_id);
    END IF;
    IF rec.stage >= 'recovered' THEN
        RAISE EXCEPTION 'add_incident_accounts: incident % is recovered already', incident_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Accounts found after recovery are a new incident: open one with ato.revoke_incident().';
    END IF;
    SELECT coalesce(array_agg(u ORDER BY u COLLATE "C") FILTER (WHERE a.user_id IS NULL), '{}'),
           coalesce(array_agg(u ORDER BY u COLLATE "C") FILTER (WHERE a.user_id IS NOT NULL), '{}')
      INTO added, present
      FROM unnest(user_ids) u
      LEFT JOIN ato.incident_accounts a
        ON a.incident_id = add_incident_accounts.incident_id AND a.user_id = u AND a.in_scope;
    IF cardinality(present) > 0 THEN
        RAISE NOTICE 'add_incident_accounts: % of the accounts are in the incident''s scope already and are left as they are: %',
            cardinality(present), array_to_string(present[1:10], ', ') || CASE WHEN cardinality(present) > 10 THEN ', ...' ELSE '' END
            USING HINT = 'ato.incident_accounts lists the scope.';
    END IF;
    IF cardinality(added) = 0 THEN
        RETURN 0;
    END IF;
    PERFORM ato.contain_incident_accounts(incident_id, added);
    INSERT INTO ato.incident_scope_changes (incident_id, user_id, change, changed_at, changed_by, changed_as, reason)
    SELECT incident_id, u, 'added', now(), session_user, ato.calling_role(), reason FROM unnest(added) u;
    INSERT INTO ato.incident_changes (incident_id, change, stage, detail, note)
    VALUES (incident_id, 'accounts_added', rec.stage,
            jsonb_build_object('accounts', to_jsonb(added), 'count', cardinality(added),
                               'already_in_scope', cardinality(present)), reason);
    -- suspended again: the incident is no longer lifted
    IF incident.suspend THEN
        UPDATE ato.incidents i SET status = 'contained' WHERE i.id = incident.id AND i.status = 'lifted';
    END IF;
    RETURN cardinality(added);
END;
$$;
COMMENT ON FUNCTION ato.add_incident_accounts(uuid, text[], text) IS
    'Adds accounts to a contained incident that is not recovered yet and contains them exactly as its first ones (the revocation fence, a revocation time of now, the incident''s flags, its registered tables marked under its id and announced in ato.revocation_outbox), at most 1024 per call, in this transaction; accounts in the scope already are left out (a NOTICE), an account given twice is an error; records the change in ato.incident_scope_changes and the history; returns the accounts added';
REVOKE ALL ON FUNCTION ato.add_incident_accounts(uuid, text[], text) FROM PUBLIC;

-- Lifting an incident's suspensions, in stages.  Its accounts are the ones
-- it opened with and those added since (ato.incident_scope_changes); a
-- release (below) lifts the released ones this way.
CREATE FUNCTION ato.lift_incident(incident_id uuid, user_ids text[] DEFAULT NULL, note text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    incident ato.incidents;
    stage text[];
    outsiders integer;
BEGIN
    IF incident_id IS NULL THEN
        RAISE EXCEPTION 'lift_incident: incident_id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the id ato.revoke_incident() returned; the incidents are in ato.incidents.';
    END IF;
    SELECT * INTO incident FROM ato.incidents i WHERE i.id = lift_incident.incident_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lift_incident: incident % does not exist', coalesce(incident_id::text, 'NULL')
            USING ERRCODE = 'no_data_found',
                  HINT = 'The incidents are in ato.incidents.';
    END IF;
    IF user_ids IS NOT NULL THEN
        -- the incident's accounts: its first ones and those added later
        -- (13_incident_record.sql)
        SELECT count(*) INTO outsiders FROM unnest(user_ids) u
         WHERE u IS NULL OR (NOT u COLLATE "C" = ANY (incident.user_ids)
                             AND NOT EXISTS (SELECT FROM ato.incident_scope_changes c
                                              WHERE c.incident_id = incident.id AND c.user_id = u));
        IF outsiders > 0 THEN
            RAISE NOTICE 'lift_incident: % of the ids are not accounts of the incident; they are left as they are',
                outsiders;
        END IF;
    END IF;
    -- the flag rows in account order, as every writer of them takes them
    PERFORM FROM ato.account_flags f
      WHERE f.incident_id = incident.id AND f.suspended
        AND (lift_incident.user_ids IS NULL OR f.user_id = ANY (lift_incident.user_ids))
      ORDER BY f.user_id FOR UPDATE;
    WITH lifted AS (
        UPDATE ato.account_flags f
           SET suspended = false, updated_at = now()
         WHERE f.incident_id = incident.id
           AND f.suspended
           AND (lift_incident.user_ids IS NULL OR f.user_id = ANY (lift_incident.user_ids))
        RETURNING f.user_id)
    SELECT coalesce(array_agg(l.user_id ORDER BY l.user_id), '{}') INTO stage FROM lifted l;
    INSERT INTO ato.response_log (action, incident_id, user_ids, detail)
    VALUES ('lifted', incident.id, stage, note);
    IF NOT EXISTS (SELECT FROM ato.account_flags f WHERE f.incident_id = incident.id AND f.suspended) THEN
        UPDATE ato.incidents i SET status = 'lifted' WHERE i.id = incident.id AND i.status = 'contained';
    END IF;
    RETURN cardinality(stage);
END;
$$;
COMMENT ON FUNCTION ato.lift_incident(uuid, text[], text) IS
    'One stage of a controlled reactivation: lifts the suspension the incident set on the given accounts (NULL: all of them, those added later included), records the stage in ato.response_log and returns how many were lifted; other flags stay until the account completes its steps';
REVOKE ALL ON FUNCTION ato.lift_incident(uuid, text[], text) FROM PUBLIC;

CREATE FUNCTION ato.release_incident_accounts(incident_id uuid, user_ids text[], reason text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rec ato.incident_records := ato.incident_record('release_incident_accounts', incident_id, true);
    released text[];
    gone text[];
    strangers text[];
    lifted integer;
BEGIN
    PERFORM ato.check_scope_change('release_incident_accounts', user_ids, reason);
    IF NOT EXISTS (SELECT FROM ato.incidents i WHERE i.id = release_incident_accounts.incident_id) THEN
        RAISE EXCEPTION 'release_incident_accounts: incident % is not contained yet', incident_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'It holds no accounts to release; an incident found to be a false alarm is closed with ato.advance_incident(id, ''closed'', note).';
    END IF;
    SELECT coalesce(array_agg(u ORDER BY u COLLATE "C") FILTER (WHERE a.in_scope), '{}'),
           coalesce(array_agg(u ORDER BY u COLLATE "C") FILTER (WHERE NOT a.in_scope), '{}'),
           coalesce(array_agg(u ORDER BY u COLLATE "C") FILTER (WHERE a.user_id IS NULL), '{}')
      INTO released, gone, strangers
      FROM unnest(user_ids) u
      LEFT JOIN ato.incident_accounts a
        ON a.incident_id = release_incident_accounts.incident_id AND a.user_id = u;
    IF cardinality(strangers) > 0 THEN
        RAISE EXCEPTION 'release_incident_accounts: % of the accounts were never in incident %: %', cardinality(strangers),
            incident_id, array_to_string(strangers[1:10], ', ') || CASE WHEN cardinality(strangers) > 10 THEN ', ...' ELSE '' END
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Release only accounts of the incident; ato.incident_accounts lists them.';
    END IF;
    IF cardinality(gone) > 0 THEN
        RAISE NOTICE 'release_incident_accounts: % of the accounts were released already: %',
            cardinality(gone), array_to_string(gone[1:10], ', ') || CASE WHEN cardinality(gone) > 10 THEN ', ...' ELSE '' END
            USING HINT = 'ato.incident_accounts says when and by whom.';
    END IF;
    IF cardinality(released) = 0 THEN
        RETURN 0;
    END IF;
    lifted := ato.lift_incident(incident_id, released, 'released: ' || reason);
    INSERT INTO ato.incident_scope_changes (incident_id, user_id, change, changed_at, changed_by, changed_as, reason)
    SELECT incident_id, u, 'released', now(), session_user, ato.calling_role(), reason FROM unnest(released) u;
    INSERT INTO ato.incident_changes (incident_id, change, stage, detail, note)
    VALUES (incident_id, 'accounts_released', rec.stage,
            jsonb_build_object('accounts', to_jsonb(released), 'count', cardinality(released),
                               'suspensions_lifted', lifted), reason);
    RETURN cardinality(released);
END;
$$;
COMMENT ON FUNCTION ato.release_incident_accounts(uuid, text[], text) IS
    'Releases accounts of an incident found unaffected: lifts the suspension the incident set on them as ato.lift_incident() does (their other steps stay until completed; revoked sessions stay revoked), records the change in ato.incident_scope_changes and the history; an account never in the incident is an error, one released already a NOTICE; returns the accounts released';
REVOKE ALL ON FUNCTION ato.release_incident_accounts(uuid, text[], text) FROM PUBLIC;
