-- install/sections/18_incident_retrospective.sql: ato.incident_retrospective(): an incident's retrospective, one row per measure (detection, containment, scope, recovery, the rules that fired).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- It reads the record (13_incident_record.sql), the evidence's window and scope
-- (ato.incident_scope(), 12_evidence.sql) and the notices (14_user_notifications.sql).

-- ---------------------------------------------------------------------------
-- The retrospective (seed 004: detection gap, scope accuracy, recovery
-- effectiveness; seed 001: feed what was learned back into detection).
-- One row per measure: section, measure, a duration or an amount, detail;
-- a new measure is a new row (a UNION ALL branch), the shape stays.
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.incident_retrospective(incident_id uuid)
RETURNS TABLE (section text, measure text, duration interval, amount numeric, detail jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    rec ato.incident_records := ato.incident_record('incident_retrospective', incident_id, false, closed_ok => true);
    incident ato.incidents;
    window_from timestamptz;
    window_to timestamptz;
    scope_accounts text[] := '{}';
    scope_networks cidr[] := '{}';
    first_event timestamptz;
    first_event_ref text;
    first_alert timestamptz;
    first_alert_id bigint;
    all_marked timestamptz;
    v_initial text[] := '{}';
    v_final text[];
    v_added text[];
    v_released text[];
    kept integer;
    pending integer;
BEGIN
    SELECT * INTO incident FROM ato.incidents i WHERE i.id = incident_retrospective.incident_id;
    IF FOUND THEN
        SELECT s.window_from, s.window_to, s.accounts, s.attacker_networks
          INTO window_from, window_to, scope_accounts, scope_networks
          FROM ato.incident_scope(incident.id) s;
        v_initial := incident.user_ids;
    ELSE
        window_from := rec.reported_at - interval '24 hours';
        window_to := now();
    END IF;
    window_to := least(window_to, coalesce(rec.closed_at, window_to));

    -- the attacker's first event in the window: from its networks
    SELECT x.at, x.ref INTO first_event, first_event_ref FROM (
        SELECT l.occurred_at AS at, 'login_events:' || l.id AS ref FROM ato.login_events l
         WHERE l.occurred_at >= window_from AND l.occurred_at <= window_to AND l.ip_address <<= ANY (scope_networks)
        UNION ALL
        SELECT a.occurred_at, 'audit_events:' || a.id FROM ato.audit_events a
         WHERE a.occurred_at >= window_from AND a.occurred_at <= window_to AND a.ip_address <<= ANY (scope_networks)) x
     ORDER BY x.at, x.ref LIMIT 1;
    -- the first alert about it: its own, or one on its accounts in the window
    SELECT a.first_seen_at, a.id INTO first_alert, first_alert_id FROM ato.alerts a
     WHERE (a.incident_id = incident_retrospective.incident_id OR a.id = rec.alert_id
            OR (a.accounts && scope_accounts AND a.last_seen_at >= window_from AND a.first_seen_at <= window_to))
     ORDER BY a.first_seen_at, a.id LIMIT 1;

    SELECT coalesce(array_agg(a.user_id ORDER BY a.user_id COLLATE "C") FILTER (WHERE a.in_scope), '{}'),
           coalesce(array_agg(a.user_id ORDER BY a.user_id COLLATE "C") FILTER (WHERE NOT a.initial), '{}'),
           coalesce(array_agg(a.user_id ORDER BY a.user_id COLLATE "C") FILTER (WHERE NOT a.in_scope), '{}'),
           count(*) FILTER (WHERE a.initial AND a.in_scope)
      INTO v_final, v_added, v_released, kept
      FROM ato.incident_accounts a WHERE a.incident_id = incident_retrospective.incident_id;
    all_marked := CASE WHEN incident.status <> 'marking'
                       THEN greatest(incident.marked_at,
                                     (SELECT max(c.changed_at) FROM ato.incident_scope_changes c
                                       WHERE c.incident_id = incident.id AND c.change = 'added')) END;
    SELECT count(*) INTO pending FROM ato.account_flags f
     WHERE f.incident_id = incident_retrospective.incident_id
       AND (f.suspended OR f.reauth_required OR f.mfa_reenrollment_required OR f.password_reset_required);

    RETURN QUERY
    SELECT 'detection', 'first attacker event to first alert', first_alert - first_event, NULL::numeric,
           jsonb_build_object('first_attacker_event', first_event, 'event', first_event_ref,
                              'first_alert', first_alert, 'alert_id', first_alert_id,
                              'attacker_networks', to_jsonb(scope_networks::text[]))
    UNION ALL
    SELECT 'detection', 'first attacker event to opening', rec.reported_at - first_event, NULL,
           jsonb_build_object('first_attacker_event', first_event, 'opened_at', rec.reported_at,
                              'channel', rec.report_channel)
    UNION ALL
    SELECT 'containment', 'opening to containment', rec.contained_at - rec.reported_at, NULL,
           jsonb_build_object('opened_at', rec.reported_at, 'contained_at', rec.contained_at)
    UNION ALL
    SELECT 'containment', 'containment to every row marked', all_marked - rec.contained_at, NULL,
           jsonb_build_object('contained_at', rec.contained_at, 'every_row_marked_at', all_marked,
                              'status', incident.status,
                              'rows_marked', (SELECT sum(t.rows_touched) FROM ato.incident_targets t WHERE t.incident_id = incident.id),
                              'failed_batches', (SELECT sum(t.failed_batches) FROM ato.incident_targets t WHERE t.incident_id = incident.id))
    UNION ALL
    SELECT 'scope', 'initial accounts', NULL, cardinality(v_initial)::numeric, jsonb_build_object('opened_at', incident.opened_at)
    UNION ALL
    SELECT 'scope', 'final accounts', NULL, cardinality(v_final)::numeric, '{}'::jsonb
    UNION ALL
    SELECT 'scope', 'accounts added', NULL, cardinality(v_added)::numeric, jsonb_build_object('accounts', to_jsonb(v_added))
    UNION ALL
    SELECT 'scope', 'accounts released', NULL, cardinality(v_released)::numeric, jsonb_build_object('accounts', to_jsonb(v_released))
    UNION ALL
    SELECT 'scope', 'final scope found initially', NULL,
           CASE WHEN cardinality(v_final) > 0 THEN round(coalesce(kept, 0)::numeric / cardinality(v_final), 3) END,
           jsonb_build_object('initial_and_final', kept, 'final', cardinality(v_final))
    UNION ALL
    SELECT 'scope', 'initial scope affected', NULL,
           CASE WHEN cardinality(v_initial) > 0 THEN round(coalesce(kept, 0)::numeric / cardinality(v_initial), 3) END,
           jsonb_build_object('initial_and_final', kept, 'initial', cardinality(v_initial))
    UNION ALL
    -- the users' notices (14_user_notifications.sql): written at confirmation,
    -- sent when the application's mailer delivered them
    SELECT 'notification', 'confirmation to notices sent',
           (SELECT max(o.sent_at) FROM ato.notification_outbox o WHERE o.incident_id = rec.incident_id)
               - rec.confirmed_at,
           (SELECT count(*) FROM ato.notification_outbox o WHERE o.incident_id = rec.incident_id AND o.sent_at IS NOT NULL),
           jsonb_build_object('written', (SELECT count(*) FROM ato.user_notifications n WHERE n.incident_id = rec.incident_id),
                              'first_written_at', (SELECT min(n.written_at) FROM ato.user_notifications n
                                                    WHERE n.incident_id = rec.incident_id),
                              'first_sent_at', (SELECT min(o.sent_at) FROM ato.notification_outbox o
                                                 WHERE o.incident_id = rec.incident_id),
                              'given_up', (SELECT count(*) FROM ato.notification_outbox o
                                            WHERE o.incident_id = rec.incident_id AND o.failed_at IS NOT NULL AND o.sent_at IS NULL))
    UNION ALL
    SELECT 'recovery', 'containment to recovery', rec.recovered_at - rec.contained_at, NULL,
           jsonb_build_object('eradicated_at', rec.eradicated_at, 'recovered_at', rec.recovered_at,
                              'accounts_with_steps_pending', pending)
    UNION ALL
    SELECT 'recovery', 'opening to close', rec.closed_at - rec.reported_at, NULL,
           jsonb_build_object('closed_at', rec.closed_at, 'root_cause', rec.root_cause,
                              'follow_ups', (SELECT count(*) FROM ato.incident_follow_ups f WHERE f.incident_id = rec.incident_id),
                              'follow_ups_open', (SELECT count(*) FROM ato.incident_follow_ups f
                                                   WHERE f.incident_id = rec.incident_id AND f.done_at IS NULL));
    -- every rule: whether it fired for the incident's accounts in its window
    RETURN QUERY
    SELECT 'detection rules', r.name, min(a.first_seen_at) - first_event, count(a.id)::numeric,
           jsonb_build_object('fired', count(a.id) > 0, 'enabled', r.enabled, 'function', r.function,
                              'first_alert', min(a.first_seen_at),
                              'alert_ids', coalesce(jsonb_agg(a.id ORDER BY a.id) FILTER (WHERE a.id IS NOT NULL), '[]'),
                              'ran_in_window', r.covered_until >= window_from)
      FROM ato.detection_rules r
      LEFT JOIN ato.alerts a
        ON a.rule = r.name
       AND (a.incident_id = incident_retrospective.incident_id OR a.id = rec.alert_id
            OR (a.accounts && scope_accounts AND a.last_seen_at >= window_from AND a.first_seen_at <= window_to))
     GROUP BY r.name, r.enabled, r.function, r.covered_until
     ORDER BY r.name;
END;
$$;
COMMENT ON FUNCTION ato.incident_retrospective(uuid) IS
    'An incident''s retrospective, one row per measure (section, measure, duration or amount, detail): detection (first attacker event, from its networks in its window, to the first alert and to the opening), containment (opening to containment, containment to every row marked, added accounts included), scope (initial, final, added and released accounts, the share of the final scope found initially and of the initial scope affected), recovery (containment to recovery, opening to close), and per detection rule whether it fired for the incident''s accounts in its window; a new measure is a new row';
REVOKE ALL ON FUNCTION ato.incident_retrospective(uuid) FROM PUBLIC;
