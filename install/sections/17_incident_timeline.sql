-- install/sections/17_incident_timeline.sql: ato.incident_timeline(): everything that happened in an incident, in order: its window's events, its alerts, the response, the record's changes, the notices and the downstream confirmations.
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- The timeline reads every layer below it: the evidence (the window and its
-- events, 12_evidence.sql), the record (13_incident_record.sql), the notices
-- (ato.notification_timeline(), 14_user_notifications.sql) and the response's
-- log, which the downstream confirmations reach; of the others only the
-- report (19_incident_report.sql) reads it.
-- ---------------------------------------------------------------------------

-- The timeline: one ordered list from the attacker's first event in the
-- window to the lifting.
CREATE FUNCTION ato.incident_timeline(incident_id uuid)
RETURNS TABLE (at timestamptz, kind text, accounts text[], detail text, ref text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    scope record;
    incident ato.incidents;
BEGIN
    incident := ato.check_incident('incident_timeline', incident_id);
    SELECT * INTO scope FROM ato.incident_scope(incident.id);
    RETURN QUERY
    WITH events AS (SELECT * FROM ato.incident_events(incident.id)),
    items AS (
        SELECT (v.e ->> 'occurred_at')::timestamptz AS at, 1 AS ord,
               CASE v.event_table WHEN 'login_events' THEN 'login ' || (v.e ->> 'outcome') ELSE 'account change' END AS kind,
               ARRAY[coalesce(v.e ->> 'user_id', v.e ->> 'actor_id')] AS accounts,
               concat_ws(' ', CASE WHEN v.event_table = 'audit_events' THEN v.e ->> 'event_type' END,
                         'from ' || (v.e ->> 'ip_address'), '(' || (v.e ->> 'country_code') || ')',
                         CASE WHEN v.e ->> 'target_id' IS NOT NULL THEN 'on ' || (v.e ->> 'target_id') END) AS detail,
               v.event_table || ':' || v.event_id AS ref
          FROM events v
        UNION ALL
        SELECT a.first_seen_at, 2, 'alert', a.accounts, a.rule || ': ' || a.finding, 'alerts:' || a.id
          FROM ato.alerts a WHERE a.incident_id = incident.id
        UNION ALL
        SELECT a.triaged_at, 3, 'alert ' || a.status, a.accounts,
               concat_ws(': ', 'by ' || a.triaged_by, a.note), 'alerts:' || a.id
          FROM ato.alerts a WHERE a.incident_id = incident.id AND a.triaged_at IS NOT NULL
        UNION ALL
        SELECT incident.opened_at, 4, 'incident opened', incident.user_ids,
               format('by %s: %s', incident.opened_by, incident.reason), 'incidents:' || incident.id
        UNION ALL
        SELECT o.recorded_at, 5, 'batch marked and announced', o.user_ids,
               format('batch %s of %s, outbox position %s, NOTIFY on %s', o.batch, o.batches, o.position,
                      incident.revocation_channel),
               'revocation_outbox:' || o.position
          FROM ato.revocation_outbox o WHERE o.incident_id = incident.id
        UNION ALL
        SELECT incident.marked_at, 6, 'contained', incident.user_ids,
               format('every batch of %s marked', incident.batches), 'incidents:' || incident.id
         WHERE incident.marked_at IS NOT NULL
        UNION ALL
        -- the response's own steps, and the accounts' recovery since the opening
        SELECT l.logged_at, 7, replace(l.action, '_', ' '), l.user_ids, concat_ws(': ', 'by ' || l.logged_by, l.detail),
               'response_log:' || l.id
          FROM ato.response_log l
         WHERE l.action <> 'incident_opened'
           AND (l.incident_id = incident.id
                OR (l.incident_id IS NULL AND l.logged_at >= incident.opened_at AND l.user_ids && scope.accounts)
                OR (l.action IN ('network_blocked', 'network_unblocked') AND l.logged_at >= scope.window_from
                    AND EXISTS (SELECT FROM unnest(scope.attacker_networks) n
                                 WHERE l.detail = n::text OR l.detail LIKE n::text || ' until %')))
        UNION ALL
        -- the record's changes (13_incident_record.sql): the report, the
        -- stages, the root cause, follow-ups, accounts added and released
        SELECT c.changed_at, 8,
               CASE c.change WHEN 'stage' THEN 'stage ' || c.stage WHEN 'reported' THEN 'reported'
                             ELSE replace(c.change, '_', ' ') END,
               CASE WHEN c.detail ? 'accounts' AND jsonb_typeof(c.detail -> 'accounts') = 'array'
                    THEN ARRAY(SELECT jsonb_array_elements_text(c.detail -> 'accounts')) END,
               concat_ws(': ', 'by ' || c.changed_by || CASE WHEN c.changed_as <> c.changed_by THEN ' as ' || c.changed_as ELSE '' END,
                         CASE c.change
                              WHEN 'reported' THEN concat_ws(', ', 'via ' || (c.detail ->> 'channel'), 'reported by ' || (c.detail ->> 'reported_by'),
                                                             c.detail ->> 'summary')
                              WHEN 'root_cause' THEN c.detail ->> 'to'
                              WHEN 'follow_up_added' THEN concat_ws(', ', c.detail ->> 'what', 'owner ' || (c.detail ->> 'owner'),
                                                                    'due ' || (c.detail ->> 'due'))
                              WHEN 'follow_up_done' THEN c.detail ->> 'what' END,
                         c.note),
               'incident_changes:' || c.id
          FROM ato.incident_changes c WHERE c.incident_id = incident.id
        UNION ALL
        -- the users' notices sent and given up (14_user_notifications.sql)
        SELECT x.at, x.ord, x.kind, x.accounts, x.detail, x.ref FROM ato.notification_timeline(incident.id) x)
    SELECT t.at, t.kind, t.accounts, t.detail, t.ref FROM items t ORDER BY t.at, t.ord, t.ref;
END;
$$;
COMMENT ON FUNCTION ato.incident_timeline(uuid) IS
    'Everything that happened in an incident, in order: the events of its window for its accounts and networks (failed and successful logins, account changes; preserved ones as preserved), its alerts and their triage, the opening, each marked batch and its announcement, containment, the response''s steps (flags, lifting, evidence preserved, networks blocked, users notified, downstream revocations and secret rotations confirmed), each notice sent or given up, the accounts'' recovery, and the record''s changes (the report, each stage, the root cause, follow-ups, accounts added and released)';
REVOKE ALL ON FUNCTION ato.incident_timeline(uuid) FROM PUBLIC;
