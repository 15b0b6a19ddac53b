-- install/sections/13_incident_record.sql: the incident record: its stages, the containment as recorded (ato.record_containment()), root cause, follow-ups, the accounts it holds (ato.incident_accounts, the scope changes 13_incident_scope.sql makes), an append-only history of every change, the preview of a revocation (src/targets.c, src/owner.c; src/revoke.c calls ato.record_containment()).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- The incident record (seed 000: "initial report time, confirmation of ATO,
-- actions taken, root cause, followup actions"; seed 001: detect, contain,
-- investigate, eradicate, recover, improve; seed 004: scope accuracy, the
-- retrospective's questions).
--
-- An incident's record is keyed by the incident's id, and may exist before
-- its containment: ato.report_incident() records the report, and
-- ato.revoke_incident(..., incident_id => that id) contains it (the
-- containment records the stage "contained" itself).  An incident opened
-- by ato.revoke_incident() without a report gets its record then, reported
-- at its opening by whoever opened it.
--
-- Stages, in order: reported, confirmed, contained, eradicated, recovered,
-- closed.  Each is reached once, never undone; "confirmed" may come before
-- or after "contained" (containment on a strong alert need not wait for the
-- user's confirmation); eradicated needs contained, recovered needs
-- eradicated (and no suspension of the incident left, no marking still
-- running), closed needs recovered, or no containment at all (a false
-- alarm).  Nothing changes once closed but follow-ups.  ato.report_incident()
-- and ato.advance_incident() move an incident along (16_incident_lifecycle.sql,
-- above the alerts a report escalates, and the notices and the downstream
-- obligations that confirmation sets off).
--
-- Every change is a row of ato.incident_changes, which no role can change
-- or remove through SQL: who (session_user and the role acted as), when,
-- what.  The scope's changes are rows of ato.incident_scope_changes, as
-- append-only.
-- ---------------------------------------------------------------------------

CREATE TYPE ato.incident_stage AS ENUM ('reported', 'confirmed', 'contained', 'eradicated', 'recovered', 'closed');
COMMENT ON TYPE ato.incident_stage IS
    'The stages of an incident, in order: reported, confirmed, contained (its accounts revoked and flagged), eradicated (the attacker''s ways in closed), recovered (the accounts given back), closed';

CREATE TYPE ato.report_channel AS ENUM ('alert', 'user_report', 'support_ticket', 'third_party_notice');
COMMENT ON TYPE ato.report_channel IS
    'How an incident was reported: an alert (a detection rule), a user''s report, a support ticket, a third party''s notice (a partner, a CERT, a breach notification service)';

CREATE TYPE ato.root_cause AS ENUM ('phishing', 'credential_stuffing', 'session_theft', 'idp_breach', 'leaked_token', 'insider', 'unknown');
COMMENT ON TYPE ato.root_cause IS
    'Why the accounts were taken over: phishing, credential stuffing (passwords from another breach), session theft, a breach of the identity provider, a leaked token or key, an insider, or unknown';

CREATE FUNCTION ato.calling_role()
RETURNS name
AS 'MODULE_PATHNAME', 'ato_calling_role'
LANGUAGE C STABLE;
COMMENT ON FUNCTION ato.calling_role() IS
    'The role the caller acts as (after SET ROLE), which current_user is not inside a SECURITY DEFINER function; the incident record writes it beside session_user, and the registrations of hooks, downstream applications and secrets as who registered them';
REVOKE ALL ON FUNCTION ato.calling_role() FROM PUBLIC;

-- No foreign key to ato.incidents: a record exists before its containment
-- and outlives the incident's row.
CREATE TABLE ato.incident_records (
    incident_id uuid PRIMARY KEY,
    summary text NOT NULL,
    reported_at timestamptz NOT NULL,
    reported_by text NOT NULL,
    report_channel ato.report_channel,
    alert_id bigint,
    stage ato.incident_stage NOT NULL,
    confirmed_at timestamptz,
    contained_at timestamptz,
    eradicated_at timestamptz,
    recovered_at timestamptz,
    closed_at timestamptz,
    root_cause ato.root_cause,
    root_cause_note text,
    recorded_at timestamptz NOT NULL,
    recorded_by name NOT NULL
);
COMMENT ON TABLE ato.incident_records IS
    'One row per incident: its report, its stage and when each stage was reached, its root cause; every change to it is in ato.incident_changes';
COMMENT ON COLUMN ato.incident_records.reported_by IS
    'Who reported it, as given (a user, a support agent, a partner, a detection rule); for an incident opened by ato.revoke_incident() without a report, the role that opened it';
COMMENT ON COLUMN ato.incident_records.report_channel IS
    'How it was reported; NULL for an incident opened by ato.revoke_incident() without a report';
COMMENT ON COLUMN ato.incident_records.stage IS
    'The latest stage reached (ato.incident_stage order); "confirmed" reached after "contained" leaves it "contained"';
COMMENT ON COLUMN ato.incident_records.contained_at IS
    'The incident''s revocation time (ato.incidents.opened_at): its first accounts revoked and flagged';
SELECT pg_catalog.pg_extension_config_dump('ato.incident_records', '');

CREATE TABLE ato.incident_follow_ups (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    incident_id uuid NOT NULL REFERENCES ato.incident_records (incident_id),
    what text NOT NULL,
    owner text NOT NULL,
    due date,
    added_at timestamptz NOT NULL,
    added_by name NOT NULL,
    done_at timestamptz,
    done_by name,
    done_note text
);
CREATE INDEX incident_follow_ups_incident_idx ON ato.incident_follow_ups (incident_id);
COMMENT ON TABLE ato.incident_follow_ups IS
    'What is to be done after an incident (seed 000: "followup actions"; seed 001: update detection, MFA enrolment, training): what, who owns it, when it is due, when and by whom it was done';
SELECT pg_catalog.pg_extension_config_dump('ato.incident_follow_ups', '');
SELECT pg_catalog.pg_extension_config_dump('ato.incident_follow_ups_id_seq', '');

CREATE TABLE ato.incident_scope_changes (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    incident_id uuid NOT NULL,
    user_id text NOT NULL,
    change text NOT NULL CHECK (change IN ('added', 'released')),
    changed_at timestamptz NOT NULL,
    changed_by name NOT NULL,
    changed_as name NOT NULL,
    reason text NOT NULL
);
CREATE INDEX incident_scope_changes_incident_idx ON ato.incident_scope_changes (incident_id, user_id);
COMMENT ON TABLE ato.incident_scope_changes IS
    'The changes of an incident''s scope after its opening, one row per account: added (ato.add_incident_accounts(), contained as the first ones) or released (ato.release_incident_accounts(), found unaffected); append-only; ato.incident_accounts reads them';
SELECT pg_catalog.pg_extension_config_dump('ato.incident_scope_changes', '');
SELECT pg_catalog.pg_extension_config_dump('ato.incident_scope_changes_id_seq', '');

CREATE TABLE ato.incident_changes (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    incident_id uuid NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    changed_by name NOT NULL DEFAULT session_user,
    changed_as name NOT NULL DEFAULT ato.calling_role(),
    change text NOT NULL,
    stage ato.incident_stage,
    detail jsonb NOT NULL DEFAULT '{}',
    note text
);
CREATE INDEX incident_changes_incident_idx ON ato.incident_changes (incident_id, id);
COMMENT ON TABLE ato.incident_changes IS
    'Every change of an incident''s record, append-only: reported, stage (with the stage reached), root_cause, follow_up_added, follow_up_done, accounts_added, accounts_released; who (session_user, and the role acted as) and when; read it with ato.incident_history()';
COMMENT ON COLUMN ato.incident_changes.changed_as IS 'The role the caller acted as (ato.calling_role())';
SELECT pg_catalog.pg_extension_config_dump('ato.incident_changes', '');
SELECT pg_catalog.pg_extension_config_dump('ato.incident_changes_id_seq', '');

CREATE TRIGGER refuse_change BEFORE UPDATE OR DELETE ON ato.incident_changes
    FOR EACH ROW EXECUTE FUNCTION ato.refuse_change('an incident''s history', 'A change to an incident is recorded as a new row by the function that makes it (ato.advance_incident(), ato.set_root_cause(), ...).');
CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON ato.incident_changes
    FOR EACH STATEMENT EXECUTE FUNCTION ato.refuse_change('an incident''s history', 'A change to an incident is recorded as a new row by the function that makes it (ato.advance_incident(), ato.set_root_cause(), ...).');
CREATE TRIGGER refuse_change BEFORE UPDATE OR DELETE ON ato.incident_scope_changes
    FOR EACH ROW EXECUTE FUNCTION ato.refuse_change('an incident''s history', 'A change to an incident is recorded as a new row by the function that makes it (ato.advance_incident(), ato.set_root_cause(), ...).');
CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON ato.incident_scope_changes
    FOR EACH STATEMENT EXECUTE FUNCTION ato.refuse_change('an incident''s history', 'A change to an incident is recorded as a new row by the function that makes it (ato.advance_incident(), ato.set_root_cause(), ...).');

-- Per incident and account: in its first scope or added later, released or not.
CREATE VIEW ato.incident_accounts AS
WITH opening AS (
    SELECT i.id AS incident_id, u.user_id, i.opened_at, i.opened_by
      FROM ato.incidents i CROSS JOIN LATERAL unnest(i.user_ids) AS u(user_id)),
changes AS (
    SELECT c.incident_id, c.user_id,
           min(c.changed_at) FILTER (WHERE c.change = 'added') AS first_added_at,
           (array_agg(c.changed_by ORDER BY c.id) FILTER (WHERE c.change = 'added'))[1] AS first_added_by,
           (array_agg(c.change ORDER BY c.id DESC))[1] AS last_change,
           (array_agg(c.changed_at ORDER BY c.id DESC))[1] AS last_changed_at,
           (array_agg(c.changed_by ORDER BY c.id DESC))[1] AS last_changed_by,
           (array_agg(c.reason ORDER BY c.id DESC))[1] AS last_reason
      FROM ato.incident_scope_changes c
     GROUP BY c.incident_id, c.user_id)
SELECT coalesce(o.incident_id, c.incident_id) AS incident_id,
       coalesce(o.user_id, c.user_id) AS user_id,
       o.user_id IS NOT NULL AS initial,
       coalesce(o.opened_at, c.first_added_at) AS added_at,
       coalesce(o.opened_by, c.first_added_by) AS added_by,
       CASE WHEN c.last_change = 'released' THEN c.last_changed_at END AS released_at,
       CASE WHEN c.last_change = 'released' THEN c.last_changed_by END AS released_by,
       CASE WHEN c.last_change = 'released' THEN c.last_reason END AS release_reason,
       coalesce(c.last_change, 'added') = 'added' AS in_scope
  FROM opening o
  FULL JOIN changes c ON c.incident_id = o.incident_id AND c.user_id = o.user_id;
COMMENT ON VIEW ato.incident_accounts IS
    'Every account an incident held: initial (opened with it) or added later (when, by whom), released (found unaffected: when, by whom, why) or in scope now; the initial scope is ato.incidents.user_ids';
REVOKE ALL ON ato.incident_records, ato.incident_follow_ups, ato.incident_scope_changes, ato.incident_changes,
              ato.incident_accounts FROM PUBLIC;
REVOKE ALL ON SEQUENCE ato.incident_follow_ups_id_seq, ato.incident_scope_changes_id_seq,
              ato.incident_changes_id_seq FROM PUBLIC;

-- The accounts an incident holds now: those it opened with and those added
-- since, but the released ones; what its notices and downstream obligations
-- go to.
CREATE FUNCTION ato.incident_accounts_in_scope(incident_id uuid)
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(a.user_id ORDER BY a.user_id COLLATE "C"), '{}')
      FROM ato.incident_accounts a
     WHERE a.incident_id = incident_accounts_in_scope.incident_id AND a.in_scope
$$;
COMMENT ON FUNCTION ato.incident_accounts_in_scope(uuid) IS
    'The accounts an incident holds now (ato.incident_accounts in scope: its first ones and those added, not those released), sorted: whom its notices and downstream obligations are for';
REVOKE ALL ON FUNCTION ato.incident_accounts_in_scope(uuid) FROM PUBLIC;

-- The one check of an incident record argument: NULL 22004, unknown P0002,
-- closed 55000 unless the caller accepts it.  Locks the row when asked.
CREATE FUNCTION ato.incident_record(caller text, incident_id uuid, lock boolean DEFAULT false,
                                    closed_ok boolean DEFAULT false)
RETURNS ato.incident_records
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rec ato.incident_records;
BEGIN
    IF incident_id IS NULL THEN
        RAISE EXCEPTION '%: incident_id must not be NULL', caller
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the id ato.report_incident() or ato.revoke_incident() returned; the incidents are in ato.incident_records.';
    END IF;
    IF lock THEN
        SELECT * INTO rec FROM ato.incident_records r WHERE r.incident_id = incident_record.incident_id FOR UPDATE;
    ELSE
        SELECT * INTO rec FROM ato.incident_records r WHERE r.incident_id = incident_record.incident_id;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: incident % does not exist', caller, incident_id
            USING ERRCODE = 'no_data_found',
                  HINT = 'The incidents are in ato.incident_records; open one with ato.report_incident() or ato.revoke_incident().';
    END IF;
    IF rec.stage = 'closed' AND NOT closed_ok THEN
        RAISE EXCEPTION '%: incident % is closed', caller, incident_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'A closed incident''s record no longer changes (but its follow-ups); for new findings, report a new incident.';
    END IF;
    RETURN rec;
END;
$$;
COMMENT ON FUNCTION ato.incident_record(text, uuid, boolean, boolean) IS
    'The record of that incident, for the record''s functions: an error naming the caller when the id is NULL (22004), unknown (P0002) or, unless closed_ok, the incident is closed (55000); lock: FOR UPDATE';
REVOKE ALL ON FUNCTION ato.incident_record(text, uuid, boolean, boolean) FROM PUBLIC;

CREATE FUNCTION ato.check_record_text(caller text, argument text, value text, example text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF value IS NULL OR btrim(value) = '' THEN
        RAISE EXCEPTION '%: % must not be %', caller, argument, CASE WHEN value IS NULL THEN 'NULL' ELSE 'empty' END
            USING ERRCODE = CASE WHEN value IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END,
                  HINT = format('For example %s.', example);
    END IF;
END;
$$;
COMMENT ON FUNCTION ato.check_record_text(text, text, text, text) IS
    'Raises 22004 for a NULL and 22023 for an empty (or blank) text argument of the record''s functions, naming the caller, the argument and an example';
REVOKE ALL ON FUNCTION ato.check_record_text(text, text, text, text) FROM PUBLIC;

-- Called by ato.revoke_incident() (src/revoke.c) once it has contained an
-- incident, in its transaction.
CREATE FUNCTION ato.record_containment(incident_id uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    incident ato.incidents;
    rec ato.incident_records;
BEGIN
    SELECT * INTO incident FROM ato.incidents i WHERE i.id = record_containment.incident_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'record_containment: incident % does not exist', incident_id
            USING ERRCODE = 'no_data_found',
                  HINT = 'ato.revoke_incident() calls it once it has opened the incident.';
    END IF;
    SELECT * INTO rec FROM ato.incident_records r WHERE r.incident_id = incident.id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO ato.incident_records (incident_id, summary, reported_at, reported_by, stage, recorded_at, recorded_by)
        VALUES (incident.id, incident.reason, incident.opened_at, incident.opened_by, 'reported', now(), session_user)
        RETURNING * INTO rec;
        INSERT INTO ato.incident_changes (incident_id, change, stage, detail)
        VALUES (incident.id, 'reported', 'reported',
                jsonb_build_object('reported_at', incident.opened_at, 'reported_by', incident.opened_by,
                                   'channel', NULL, 'summary', incident.reason, 'by', 'ato.revoke_incident()'));
    ELSIF rec.stage = 'closed' THEN
        RAISE EXCEPTION 'revoke_incident: incident % is closed', incident.id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'A closed incident is not contained again: open a new one (give no incident_id).';
    ELSIF rec.contained_at IS NOT NULL THEN
        RETURN;
    END IF;
    UPDATE ato.incident_records r
       SET stage = greatest(r.stage, 'contained'), contained_at = incident.opened_at
     WHERE r.incident_id = incident.id;
    INSERT INTO ato.incident_changes (incident_id, change, stage, detail)
    VALUES (incident.id, 'stage', 'contained',
            jsonb_build_object('at', incident.opened_at, 'from', rec.stage, 'accounts', cardinality(incident.user_ids),
                               'suspend', incident.suspend, 'reauth_required', incident.reauth_required,
                               'mfa_reenrollment_required', incident.mfa_reenrollment_required,
                               'password_reset_required', incident.password_reset_required));
    -- Confirmed before it was contained: the notices are not written here,
    -- in the transaction that holds the revocation fence (logins of the
    -- fenced accounts, or of their buckets, would wait for the
    -- application's hooks), but by ato.write_owed_notices() after it: the
    -- detection worker's next cycle, or a call by hand.
    IF rec.confirmed_at IS NOT NULL THEN
        RAISE NOTICE 'incident % was confirmed before it was contained: its notices are written by the detection worker''s next cycle', incident.id
            USING HINT = 'Without the worker, run SELECT ato.write_owed_notices() once this transaction has committed.';
    END IF;
END;
$$;
COMMENT ON FUNCTION ato.record_containment(uuid) IS
    'For ato.revoke_incident(): records the stage contained (at the revocation time) in the incident''s record, creating the record of an incident opened without a report; refuses a closed incident';
REVOKE ALL ON FUNCTION ato.record_containment(uuid) FROM PUBLIC;

CREATE FUNCTION ato.set_root_cause(incident_id uuid, cause ato.root_cause, note text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rec ato.incident_records := ato.incident_record('set_root_cause', incident_id, true);
BEGIN
    IF cause IS NULL THEN
        RAISE EXCEPTION 'set_root_cause: cause must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass phishing, credential_stuffing, session_theft, idp_breach, leaked_token, insider or unknown.';
    END IF;
    UPDATE ato.incident_records r SET root_cause = cause, root_cause_note = note
     WHERE r.incident_id = set_root_cause.incident_id;
    INSERT INTO ato.incident_changes (incident_id, change, stage, detail, note)
    VALUES (incident_id, 'root_cause', rec.stage, jsonb_build_object('from', rec.root_cause, 'to', cause), note);
END;
$$;
COMMENT ON FUNCTION ato.set_root_cause(uuid, ato.root_cause, text) IS
    'Records (or corrects) an incident''s root cause, with a note; the history keeps the earlier one; refused once closed';
REVOKE ALL ON FUNCTION ato.set_root_cause(uuid, ato.root_cause, text) FROM PUBLIC;

CREATE FUNCTION ato.add_follow_up(incident_id uuid, what text, owner text, due date DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rec ato.incident_records := ato.incident_record('add_follow_up', incident_id, true, closed_ok => true);
    new_id bigint;
BEGIN
    PERFORM ato.check_record_text('add_follow_up', 'what', what, '''add impossible_travel to the rules of the VPN logins''');
    PERFORM ato.check_record_text('add_follow_up', 'owner', owner, '''detection team'' or ''alice''');
    IF due < current_date THEN
        RAISE EXCEPTION 'add_follow_up: due is in the past'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a date from today on, or leave it out for no due date.';
    END IF;
    INSERT INTO ato.incident_follow_ups (incident_id, what, owner, due, added_at, added_by)
    VALUES (incident_id, what, owner, due, now(), session_user)
    RETURNING id INTO new_id;
    INSERT INTO ato.incident_changes (incident_id, change, stage, detail)
    VALUES (incident_id, 'follow_up_added', rec.stage,
            jsonb_build_object('follow_up', new_id, 'what', what, 'owner', owner, 'due', due));
    RETURN new_id;
END;
$$;
COMMENT ON FUNCTION ato.add_follow_up(uuid, text, text, date) IS
    'Adds a follow-up to an incident (also a closed one: the retrospective comes after): what, who owns it, when it is due; returns its id';
REVOKE ALL ON FUNCTION ato.add_follow_up(uuid, text, text, date) FROM PUBLIC;

CREATE FUNCTION ato.complete_follow_up(follow_up_id bigint, note text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f ato.incident_follow_ups;
    rec ato.incident_records;
BEGIN
    IF follow_up_id IS NULL THEN
        RAISE EXCEPTION 'complete_follow_up: follow_up_id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the id ato.add_follow_up() returned; the follow-ups are in ato.incident_follow_ups.';
    END IF;
    SELECT * INTO f FROM ato.incident_follow_ups x WHERE x.id = follow_up_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'complete_follow_up: follow-up % does not exist', follow_up_id
            USING ERRCODE = 'no_data_found',
                  HINT = 'The follow-ups are in ato.incident_follow_ups.';
    END IF;
    IF f.done_at IS NOT NULL THEN
        RAISE EXCEPTION 'complete_follow_up: follow-up % was done already', follow_up_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'ato.incident_follow_ups says when and by whom; for more to do, add a follow-up with ato.add_follow_up().';
    END IF;
    rec := ato.incident_record('complete_follow_up', f.incident_id, false, closed_ok => true);
    UPDATE ato.incident_follow_ups x SET done_at = now(), done_by = session_user, done_note = note
     WHERE x.id = follow_up_id;
    INSERT INTO ato.incident_changes (incident_id, change, stage, detail, note)
    VALUES (f.incident_id, 'follow_up_done', rec.stage, jsonb_build_object('follow_up', f.id, 'what', f.what), note);
END;
$$;
COMMENT ON FUNCTION ato.complete_follow_up(bigint, text) IS
    'Marks a follow-up done (when, by whom, a note); an error if it was done already';
REVOKE ALL ON FUNCTION ato.complete_follow_up(bigint, text) FROM PUBLIC;

CREATE FUNCTION ato.incident_history(incident_id uuid)
RETURNS TABLE (at timestamptz, change text, stage ato.incident_stage, changed_by name, changed_as name,
               detail jsonb, note text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    PERFORM ato.incident_record('incident_history', incident_id, false, closed_ok => true);
    RETURN QUERY
    SELECT c.changed_at, c.change, c.stage, c.changed_by, c.changed_as, c.detail, c.note
      FROM ato.incident_changes c WHERE c.incident_id = incident_history.incident_id
     ORDER BY c.id;
END;
$$;
COMMENT ON FUNCTION ato.incident_history(uuid) IS
    'Every change of an incident''s record, in order: when, what (reported, stage, root_cause, follow_up_added, follow_up_done, accounts_added, accounts_released), the stage, who (session_user, and the role acted as), the detail and the note';
REVOKE ALL ON FUNCTION ato.incident_history(uuid) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- The preview of a revocation: what ato.revoke_incident() would do now,
-- changing nothing (seed 004: "premature, overly broad responses cause
-- unnecessary user impact").
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.preview_revocation_targets(user_ids text[], delete_created_after timestamptz DEFAULT NULL)
RETURNS TABLE (target_id integer, target text, action text, rows bigint, mismatched_ids bigint, error text)
AS 'MODULE_PATHNAME', 'ato_preview_revocation_targets'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.preview_revocation_targets(text[], timestamptz) IS
    'For ato.preview_revocation(): per registered table, the rows an incident over these accounts would mark or delete now (counted by the marking''s own condition, as the table''s owner), the ids not of its account column''s type and the error a table would fail with; changes nothing';
REVOKE ALL ON FUNCTION ato.preview_revocation_targets(text[], timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.preview_revocation(
    user_ids text[],
    suspend boolean DEFAULT false,
    reauth_required boolean DEFAULT true,
    mfa_reenrollment_required boolean DEFAULT false,
    password_reset_required boolean DEFAULT false,
    delete_created_after timestamptz DEFAULT NULL)
RETURNS TABLE (item text, name text, rows bigint, would_set jsonb, note text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    accounts text[];
BEGIN
    PERFORM ato.check_account_ids('preview_revocation', 'user_ids', user_ids);
    IF suspend IS NULL OR reauth_required IS NULL OR mfa_reenrollment_required IS NULL OR password_reset_required IS NULL THEN
        RAISE EXCEPTION 'preview_revocation: the flags must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass true or false, as to ato.revoke_incident().';
    END IF;
    IF EXISTS (SELECT FROM unnest(user_ids) u WHERE octet_length(u) > 1000) THEN
        RAISE EXCEPTION 'preview_revocation: an account id is longer than 1000 bytes'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Account ids are between 1 and 1000 bytes.';
    END IF;
    SELECT array_agg(DISTINCT u COLLATE "C" ORDER BY u COLLATE "C") INTO accounts FROM unnest(user_ids) u;
    RETURN QUERY
    SELECT 'table', p.target, p.rows,
           jsonb_build_object('action', p.action) ||
           CASE p.action
               WHEN 'delete' THEN jsonb_build_object('deletes', CASE WHEN t.created_column IS NOT NULL AND preview_revocation.delete_created_after IS NOT NULL
                                                                     THEN format('rows with %s >= %s', t.created_column, preview_revocation.delete_created_after)
                                                                     ELSE 'every row of the accounts' END)
               ELSE jsonb_strip_nulls(jsonb_build_object(
                        t.state_column::text, CASE p.action WHEN 'end' THEN 'the revocation time' WHEN 'revoke' THEN 'true' ELSE 'false' END,
                        coalesce(t.time_column::text, '-'), CASE WHEN t.time_column IS NOT NULL THEN 'the revocation time' END,
                        coalesce(t.reason_column::text, '-'), CASE WHEN t.reason_column IS NOT NULL THEN 'the reason' END,
                        coalesce(t.incident_column::text, '-'), CASE WHEN t.incident_column IS NOT NULL THEN 'the incident id' END))
           END,
           coalesce(p.error,
                    CASE WHEN p.mismatched_ids > 0
                         THEN format('%s of the ids are not values of its account column''s type: no row is marked for them', p.mismatched_ids) END)
      FROM ato.preview_revocation_targets(accounts, preview_revocation.delete_created_after) p
      LEFT JOIN ato.revocation_targets t ON t.id = p.target_id
    UNION ALL
    SELECT 'account', u, NULL::bigint,
           jsonb_build_object('revoked_before', 'the revocation time',
                              'suspended', coalesce(f.suspended, false) OR preview_revocation.suspend,
                              'reauth_required', coalesce(f.reauth_required, false) OR preview_revocation.reauth_required,
                              'mfa_reenrollment_required', coalesce(f.mfa_reenrollment_required, false) OR preview_revocation.mfa_reenrollment_required,
                              'password_reset_required', coalesce(f.password_reset_required, false) OR preview_revocation.password_reset_required),
           nullif(concat_ws('; ',
                  CASE WHEN r.user_id IS NOT NULL THEN format('revoked already until %s by incident %s', r.revoked_at, r.incident_id) END,
                  CASE WHEN f.user_id IS NOT NULL AND (f.suspended OR f.reauth_required OR f.mfa_reenrollment_required OR f.password_reset_required)
                       THEN format('flags set already by %s', coalesce('incident ' || f.incident_id, 'hand')) END,
                  CASE WHEN NOT EXISTS (SELECT FROM ato.account_countries c WHERE c.user_id = u)
                        AND NOT EXISTS (SELECT FROM ato.login_events e WHERE e.user_id = u AND e.outcome = 'success')
                       THEN 'no successful login on record' END), '')
      FROM unnest(accounts) u
      LEFT JOIN ato.account_flags f ON f.user_id = u
      LEFT JOIN ato.account_revocations r ON r.user_id = u
     ORDER BY 1 DESC, 2;
END;
$$;
COMMENT ON FUNCTION ato.preview_revocation(text[], boolean, boolean, boolean, boolean, timestamptz) IS
    'What ato.revoke_incident() with these arguments would do now, changing nothing: per registered table (item table) the rows it would mark or delete and what it would set; per account (item account) the flags it would have afterwards and what is set already (an earlier revocation, flags, no login on record); duplicate ids count once';
REVOKE ALL ON FUNCTION ato.preview_revocation(text[], boolean, boolean, boolean, boolean, timestamptz) FROM PUBLIC;
