-- install/sections/16_incident_lifecycle.sql: an incident's way through its stages: its report, ato.report_incident() (reported, escalating the alert it names), ato.advance_incident() (confirmed, eradicated, recovered, closed), and what a confirmed and contained incident sets off: ato.on_incident_confirmed() and ato.write_owed_notices() (the users' notices, the downstream obligations).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- The stages and the record they are written to are the incident record's
-- (13_incident_record.sql).  A report marks the alert it names escalated
-- (ato.alerts, 09_rules.sql), and the rules' escalation contains incidents
-- through src/revoke.c, which records the containment in the record.
-- Reaching "confirmed" tells the users (14_user_notifications.sql) and
-- writes what downstream applications and secrets are owed
-- (15_downstream.sql).  So moving an incident along comes after all of
-- them, and none of them calls it.
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.report_incident(summary text, reported_by text, channel ato.report_channel,
                                    reported_at timestamptz DEFAULT NULL, alert_id bigint DEFAULT NULL,
                                    incident_id uuid DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id uuid := coalesce(incident_id, gen_random_uuid());
    at timestamptz := coalesce(reported_at, now());
BEGIN
    PERFORM ato.check_record_text('report_incident', 'summary', summary, '''user reports a login they did not make''');
    PERFORM ato.check_record_text('report_incident', 'reported_by', reported_by, '''alice@example.com'' or ''support ticket 4711''');
    IF channel IS NULL THEN
        RAISE EXCEPTION 'report_incident: channel must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Say how it was reported: alert, user_report, support_ticket or third_party_notice.';
    END IF;
    IF NOT isfinite(at) OR at > now() THEN
        RAISE EXCEPTION 'report_incident: reported_at must be a finite time, not in the future'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give when the report came in, or leave it out for now.';
    END IF;
    IF alert_id IS NOT NULL AND NOT EXISTS (SELECT FROM ato.alerts a WHERE a.id = report_incident.alert_id) THEN
        RAISE EXCEPTION 'report_incident: alert % does not exist', alert_id
            USING ERRCODE = 'no_data_found',
                  HINT = 'The alerts are in ato.alerts.';
    END IF;
    IF EXISTS (SELECT FROM ato.incident_records r WHERE r.incident_id = new_id)
       OR EXISTS (SELECT FROM ato.incidents i WHERE i.id = new_id) THEN
        RAISE EXCEPTION 'report_incident: incident % exists already', new_id
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Its record is in ato.incident_records; leave incident_id out for a new incident.';
    END IF;
    INSERT INTO ato.incident_records (incident_id, summary, reported_at, reported_by, report_channel, alert_id,
                                      stage, recorded_at, recorded_by)
    VALUES (new_id, summary, at, reported_by, channel, alert_id, 'reported', now(), session_user);
    -- the alert is escalated into the incident (its evidence sets the
    -- incident's window and attacker networks), unless it is in one already
    UPDATE ato.alerts a
       SET status = 'escalated', incident_id = new_id, triaged_by = session_user, triaged_at = now()
     WHERE a.id = report_incident.alert_id AND a.incident_id IS NULL;
    IF alert_id IS NOT NULL AND NOT FOUND THEN
        RAISE NOTICE 'report_incident: alert % belongs to incident % already and is left to it', alert_id,
            (SELECT a.incident_id FROM ato.alerts a WHERE a.id = report_incident.alert_id)
            USING HINT = 'The new incident''s record names the alert all the same.';
    END IF;
    INSERT INTO ato.incident_changes (incident_id, change, stage, detail)
    VALUES (new_id, 'reported', 'reported',
            jsonb_build_object('reported_at', at, 'reported_by', reported_by, 'channel', channel,
                               'alert_id', alert_id, 'summary', summary));
    RETURN new_id;
END;
$$;
COMMENT ON FUNCTION ato.report_incident(text, text, ato.report_channel, timestamptz, bigint, uuid) IS
    'Opens an incident''s record at stage reported: what was reported, by whom, how (alert, user_report, support_ticket, third_party_notice), when (default now) and the alert, if one (escalated into the incident unless it is in one already); returns its id, which ato.revoke_incident(..., incident_id => id) contains';
REVOKE ALL ON FUNCTION ato.report_incident(text, text, ato.report_channel, timestamptz, bigint, uuid) FROM PUBLIC;

-- What a confirmed and contained incident sets off (seed 004: tell the
-- users as soon as the affected accounts are confirmed, not once the root
-- cause is known; seed 003: each downstream application owes its own
-- revocation).  Both calls are idempotent, so whichever comes second of
-- confirmation and containment writes them.  A failure there (an
-- application's hook) is a warning: it must not undo the confirmation or
-- the containment, and the call can be repeated by hand.
CREATE FUNCTION ato.on_incident_confirmed(incident_id uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    notices bigint;
    owed bigint;
BEGIN
    IF NOT EXISTS (SELECT FROM ato.incident_records r
                    WHERE r.incident_id = on_incident_confirmed.incident_id
                      AND r.confirmed_at IS NOT NULL AND r.contained_at IS NOT NULL) THEN
        RETURN;
    END IF;
    BEGIN
        notices := ato.notify_users(incident_id);
        owed := ato.record_downstream_obligations(incident_id);
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'incident % confirmed, but its notices and downstream obligations were not written: %', incident_id, SQLERRM
            USING HINT = format('Fix the cause, then run SELECT ato.notify_users(%L), ato.record_downstream_obligations(%L).',
                                incident_id, incident_id);
    END;
END;
$$;
COMMENT ON FUNCTION ato.on_incident_confirmed(uuid) IS
    'Called when an incident is confirmed (ato.advance_incident()) and by ato.write_owed_notices(): once it is confirmed and contained, writes the users'' notices (ato.notify_users()) and the downstream revocations owed (ato.record_downstream_obligations()), each once per account; a failure there is a warning, not an error';

-- The notices that containment (or an account added) left owed: every
-- incident confirmed and contained, not closed, with an account in scope
-- that has no notice yet.  The detection worker calls it every cycle, in
-- its own transaction, after any revocation fence is gone.
CREATE FUNCTION ato.write_owed_notices()
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    incident uuid;
    incidents integer := 0;
BEGIN
    FOR incident IN
        SELECT r.incident_id FROM ato.incident_records r
         WHERE r.confirmed_at IS NOT NULL AND r.contained_at IS NOT NULL AND r.closed_at IS NULL
           AND EXISTS (SELECT FROM unnest(ato.incident_accounts_in_scope(r.incident_id)) u
                        WHERE NOT EXISTS (SELECT FROM ato.user_notifications n
                                           WHERE n.incident_id = r.incident_id AND n.user_id = u COLLATE "C"))
         ORDER BY r.confirmed_at, r.incident_id
    LOOP
        PERFORM ato.on_incident_confirmed(incident);
        incidents := incidents + 1;
    END LOOP;
    RETURN incidents;
END;
$$;
COMMENT ON FUNCTION ato.write_owed_notices() IS
    'Writes the notices and downstream obligations still owed by incidents that are confirmed and contained (contained after confirmation, or with accounts added since): the detection worker calls it every cycle; returns how many incidents it wrote for';
REVOKE ALL ON FUNCTION ato.write_owed_notices() FROM PUBLIC;
REVOKE ALL ON FUNCTION ato.on_incident_confirmed(uuid) FROM PUBLIC;

CREATE FUNCTION ato.advance_incident(incident_id uuid, stage ato.incident_stage, note text DEFAULT NULL,
                                     at timestamptz DEFAULT NULL)
RETURNS ato.incident_stage
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rec ato.incident_records := ato.incident_record('advance_incident', incident_id, true);
    incident ato.incidents;
    reached timestamptz;
    latest timestamptz;
    suspended integer;
    open_follow_ups integer;
    new_stage ato.incident_stage;
BEGIN
    IF stage IS NULL THEN
        RAISE EXCEPTION 'advance_incident: stage must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass confirmed, eradicated, recovered or closed.';
    END IF;
    IF stage IN ('reported', 'contained') THEN
        RAISE EXCEPTION 'advance_incident: stage % is recorded by %', stage,
                        CASE stage WHEN 'reported' THEN 'ato.report_incident()' ELSE 'ato.revoke_incident()' END
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = CASE stage WHEN 'reported' THEN 'Every incident is reported when its record opens.'
                         ELSE format('Contain it with SELECT ato.revoke_incident(accounts, reason, incident_id => %L).', incident_id) END;
    END IF;
    reached := CASE stage WHEN 'confirmed' THEN rec.confirmed_at WHEN 'eradicated' THEN rec.eradicated_at
                          WHEN 'recovered' THEN rec.recovered_at ELSE rec.closed_at END;
    IF reached IS NOT NULL THEN
        RAISE EXCEPTION 'advance_incident: incident % was % already', incident_id, stage
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Each stage is reached once; ato.incident_history() shows when and who recorded it.';
    END IF;
    IF stage < rec.stage AND NOT (stage = 'confirmed' AND rec.stage = 'contained') THEN
        RAISE EXCEPTION 'advance_incident: incident % is % already: % would go back', incident_id, rec.stage, stage
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Stages go forward: reported, confirmed, contained, eradicated, recovered, closed (confirmed may also follow contained).';
    END IF;
    SELECT * INTO incident FROM ato.incidents i WHERE i.id = advance_incident.incident_id;
    IF stage = 'eradicated' AND rec.contained_at IS NULL THEN
        RAISE EXCEPTION 'advance_incident: incident % cannot be eradicated before it is contained', incident_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Contain it first with SELECT ato.revoke_incident(accounts, reason, incident_id => %L).', incident_id);
    END IF;
    IF stage = 'recovered' THEN
        IF rec.eradicated_at IS NULL THEN
            RAISE EXCEPTION 'advance_incident: incident % cannot be recovered before it is eradicated', incident_id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Close the attacker''s ways in first (rotate secrets, remove the factors and grants they added), then record eradicated.';
        END IF;
        IF incident.status = 'marking' THEN
            RAISE EXCEPTION 'advance_incident: incident % is still marking the application''s rows', incident_id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Wait until ato.incident_progress shows it contained.';
        END IF;
        SELECT count(*) INTO suspended FROM ato.account_flags f
         WHERE f.incident_id = advance_incident.incident_id AND f.suspended;
        IF suspended > 0 THEN
            RAISE EXCEPTION 'advance_incident: % accounts are still suspended by incident %', suspended, incident_id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Reactivate them (ato.lift_incident(), in stages if need be) before recording recovered.';
        END IF;
    END IF;
    IF stage = 'closed' AND rec.recovered_at IS NULL AND rec.contained_at IS NOT NULL THEN
        RAISE EXCEPTION 'advance_incident: incident % was contained and is not recovered', incident_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Record eradicated and recovered first; only an incident never contained (a false alarm) closes straight away.';
    END IF;
    IF stage = 'closed' AND rec.contained_at IS NULL AND (note IS NULL OR btrim(note) = '') THEN
        RAISE EXCEPTION 'advance_incident: closing incident % without containment needs a note', incident_id
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Say why it closes uncontained, for example ''the user confirmed it was their own login''.';
    END IF;

    latest := greatest(rec.reported_at, rec.confirmed_at, rec.contained_at, rec.eradicated_at, rec.recovered_at);
    at := coalesce(at, now());
    IF NOT isfinite(at) OR at > now() OR at < latest THEN
        RAISE EXCEPTION 'advance_incident: at must be between the time of the last stage and now'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give when the stage was reached (ato.incident_records has the earlier stages'' times), or leave it out for now.';
    END IF;

    new_stage := greatest(rec.stage, stage);
    UPDATE ato.incident_records r
       SET stage = new_stage,
           confirmed_at = CASE WHEN advance_incident.stage = 'confirmed' THEN at ELSE r.confirmed_at END,
           eradicated_at = CASE WHEN advance_incident.stage = 'eradicated' THEN at ELSE r.eradicated_at END,
           recovered_at = CASE WHEN advance_incident.stage = 'recovered' THEN at ELSE r.recovered_at END,
           closed_at = CASE WHEN advance_incident.stage = 'closed' THEN at ELSE r.closed_at END
     WHERE r.incident_id = advance_incident.incident_id;
    INSERT INTO ato.incident_changes (incident_id, change, stage, detail, note)
    VALUES (incident_id, 'stage', stage, jsonb_build_object('at', at, 'from', rec.stage), note);
    IF stage = 'confirmed' THEN
        PERFORM ato.on_incident_confirmed(incident_id);
    END IF;
    IF stage = 'closed' THEN
        SELECT count(*) INTO open_follow_ups FROM ato.incident_follow_ups f
         WHERE f.incident_id = advance_incident.incident_id AND f.done_at IS NULL;
        IF open_follow_ups > 0 THEN
            RAISE NOTICE 'advance_incident: incident % is closed with % follow-ups still open', incident_id, open_follow_ups
                USING HINT = 'They stay open: complete them with ato.complete_follow_up() as they are done.';
        END IF;
    END IF;
    RETURN new_stage;
END;
$$;
COMMENT ON FUNCTION ato.advance_incident(uuid, ato.incident_stage, text, timestamptz) IS
    'Records that an incident reached a stage (confirmed, eradicated, recovered, closed; at: when, default now), with a note, in its record and its history; refuses a stage reached already, one that goes back, and skips: eradicated needs contained, recovered needs eradicated, no suspension left and no marking running, closed needs recovered or no containment (with a note); confirmed calls ato.on_incident_confirmed(); returns the record''s stage';
REVOKE ALL ON FUNCTION ato.advance_incident(uuid, ato.incident_stage, text, timestamptz) FROM PUBLIC;
