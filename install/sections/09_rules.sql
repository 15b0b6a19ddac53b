-- install/sections/09_rules.sql: always-on detection: rules as data, alerts, triage, pg_cron scheduling (run by src/detection_worker.c).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- Always-on detection: rules as data, alerts, triage
-- (run by src/detection_worker.c every ato_response.detection_interval, or by
-- pg_cron through ato.schedule_detection())
-- ---------------------------------------------------------------------------

CREATE TABLE ato.detection_rules (
    name text PRIMARY KEY,
    function text NOT NULL,
    parameters jsonb NOT NULL DEFAULT '{}',
    lookback interval NOT NULL DEFAULT interval '5 minutes',
    enabled boolean NOT NULL DEFAULT true,
    builtin boolean NOT NULL DEFAULT false,
    covered_until timestamptz,
    last_run_at timestamptz,
    last_duration interval,
    last_findings integer,
    last_error text
);
COMMENT ON TABLE ato.detection_rules IS
    'Detections the worker (or pg_cron) runs: a detection function of schema ato, its arguments besides since as a JSON object, and how far back each run looks';
COMMENT ON COLUMN ato.detection_rules.function IS
    'new_country_logins, credential_stuffing, password_spray, failed_login_bursts, impossible_travel, listed_network_logins, persistence_changes, cidr_scope, related_accounts, suspicious_action_counts, provider_flagged_logins, session_hijacks or mfa_fatigue_logins';
COMMENT ON COLUMN ato.detection_rules.parameters IS
    'Named arguments of the function, for example {"min_attempts": 50}; the ones left out keep the function''s defaults';
COMMENT ON COLUMN ato.detection_rules.lookback IS
    'Each run reads the events since the last successful run began, less lookback (for late events and for windows that reach back, such as the actions after a new-country login); the first run reads lookback back from now';
COMMENT ON COLUMN ato.detection_rules.covered_until IS
    'When the last successful run began (or its cycle, see ato.run_detection()): the next one reads from there, less lookback (at most a day and lookback back)';
COMMENT ON COLUMN ato.detection_rules.builtin IS
    'Shipped with the extension (pg_dump keeps only the rules you add: copy a built-in rule under a new name to keep your changes to it)';
COMMENT ON COLUMN ato.detection_rules.last_error IS 'Why the last run failed, or NULL';
SELECT pg_catalog.pg_extension_config_dump('ato.detection_rules', 'WHERE NOT builtin');

INSERT INTO ato.detection_rules (name, function, parameters, lookback, enabled, builtin) VALUES
    -- a new country followed, within the day, by a change of credentials or
    -- anything that keeps an attacker in, under our names and Okta's, Entra's
    -- and Auth0's (the function's own default counts only e-mail, password
    -- and billing changes within the hour: an imported takeover's grant, new
    -- user or factor reset raised nothing)
    ('new_country_logins',    'new_country_logins',
     '{"action_window": "1 day",
       "action_types": ["user.email_changed", "user.password_changed", "billing.modified",
                        "user.account.update_primary_email", "user.account.update_password",
                        "user.account.privilege.grant", "user.lifecycle.create",
                        "user.mfa.factor.activate", "user.mfa.factor.deactivate", "user.mfa.factor.reset_all",
                        "user.mfa.factor.update_phone", "system.api_token.create",
                        "application.user_membership.add", "group.user_membership.add",
                        "app.oauth2.as.consent.grant",
                        "Add user", "Add member to role", "User registered security info",
                        "User deleted security info", "Admin registered security info",
                        "Add service principal credentials", "Consent to application",
                        "sce", "scp", "gd_enrollment_complete", "gd_unenroll"]}',
     interval '1 hour', true, true),
    ('credential_stuffing',   'credential_stuffing',   '{}', interval '1 minute',   true,  true),
    ('password_spray',        'password_spray',        '{}', interval '1 minute',   true,  true),
    -- 5 failures in 10 minutes, as the industry's rule packs (Keycloak locks at 30)
    ('failed_login_bursts',   'failed_login_bursts',   '{"min_failures": 5}', interval '5 minutes',  true,  true),
    ('impossible_travel',     'impossible_travel',     '{}', interval '1 minute',   true,  true),
    ('listed_network_logins', 'listed_network_logins', '{}', interval '1 minute',   true,  true),
    -- every account's: a grant, a new user, a factor, a token is how an attacker stays
    ('persistence_changes',   'persistence_changes',   '{}', interval '1 minute',   true,  true),
    ('cidr_scope',            'cidr_scope',            '{"cidrs": []}', interval '1 minute', false, true),
    ('related_accounts',      'related_accounts',      '{"user_ids": []}', interval '24 hours', false, true),
    ('suspicious_action_counts', 'suspicious_action_counts', '{"user_ids": []}', interval '1 hour', false, true),
    ('provider_flagged_logins', 'provider_flagged_logins', '{}', interval '1 minute', true, true),
    ('session_hijacks',       'session_hijacks',       '{}', interval '1 hour',     true,  true),
    -- 3 prompts not approved in 10 minutes, then an approval (see the function's comment)
    ('mfa_fatigue_logins',    'mfa_fatigue_logins',    '{}', interval '5 minutes',  true,  true);

CREATE TABLE ato.alerts (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    rule text NOT NULL,
    finding text NOT NULL,
    accounts text[] NOT NULL,
    evidence jsonb NOT NULL,
    first_seen_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    status text NOT NULL DEFAULT 'open',
    note text,
    triaged_by name,
    triaged_at timestamptz,
    incident_id uuid,
    evidence_at timestamptz NOT NULL,
    UNIQUE (rule, finding),
    CHECK (status IN ('open', 'acknowledged', 'dismissed', 'escalated', 'covered'))
);
CREATE INDEX alerts_open_idx ON ato.alerts (last_seen_at) WHERE status = 'open';
COMMENT ON TABLE ato.alerts IS
    'What the detection rules found: one row per rule and finding (the same finding found again updates last_seen_at and evidence), then triaged';
COMMENT ON COLUMN ato.alerts.finding IS 'What makes the finding one: the account and country, the source network, ... (see ato.run_detection())';
COMMENT ON COLUMN ato.alerts.evidence IS 'The detection function''s row, as last found (of several rows of one finding, the latest)';
COMMENT ON COLUMN ato.alerts.evidence_at IS
    'When the latest event of the evidence found so far happened (the login, the change, the last failure; the run''s time for detections whose rows carry no time): an incident opened at or after it answered the evidence';
COMMENT ON COLUMN ato.alerts.status IS
    'open, acknowledged, dismissed (a false positive), escalated (into an incident, or joined to one, by ato.escalate_alert()) or covered (its accounts were already in an incident opened at or after evidence_at when it was found: incident_id names it)';
COMMENT ON COLUMN ato.alerts.incident_id IS
    'The incident it was escalated into or is covered by; on an alert open again, the incident that answered its earlier evidence (its newer evidence is not answered)';
SELECT pg_catalog.pg_extension_config_dump('ato.alerts', '');
SELECT pg_catalog.pg_extension_config_dump('ato.alerts_id_seq', '');

-- How a detection's rows become alerts: what identifies a finding, its
-- accounts, and which rows count.  Fixed SQL per detection, never caller input.
-- evidence_at is when the row's latest event happened, the attacker's way in
-- (a new-country login counts from the login: the actions it counts came
-- through the session that login opened); rows that carry no time count as
-- found now, so that no incident is taken to have answered them.
CREATE FUNCTION ato.detection_finding(function text, OUT finding text, OUT accounts text, OUT keep text,
                                      OUT evidence_at text)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT v.finding, v.accounts, v.keep, v.evidence_at
      FROM (VALUES
        ('new_country_logins',    $f$r.user_id || ' ' || coalesce(r.country_code, '(unknown country)')$f$, 'ARRAY[r.user_id]', 'r.suspicious_actions > 0', 'r.occurred_at'),
        ('credential_stuffing',   $f$r.source_kind || ' ' || r.source$f$, $f$'{}'::text[]$f$, 'r.suspicious', 'now()'),
        ('password_spray',        'host(r.ip_address)', $f$'{}'::text[]$f$, 'true', 'r.last_attempt'),
        ('failed_login_bursts',   $f$r.user_id || ' ' || r.first_failure::date$f$, 'ARRAY[r.user_id]', 'true', 'greatest(r.last_failure, r.later_success)'),
        ('impossible_travel',     $f$r.user_id || ' ' || r.from_country || '>' || r.to_country || ' ' || r.to_at$f$, 'ARRAY[r.user_id]', 'true', 'r.to_at'),
        ('listed_network_logins', $f$r.user_id || ' ' || r.network$f$, 'ARRAY[r.user_id]', 'true', 'r.occurred_at'),
        ('persistence_changes',   $f$r.actor_id || ' ' || r.event_type || ' ' || r.occurred_at$f$, 'ARRAY[r.actor_id]', 'true', 'r.occurred_at'),
        ('cidr_scope',            'r.user_id', 'ARRAY[r.user_id]', 'true', 'r.last_login'),
        ('related_accounts',      'r.user_id', 'ARRAY[r.user_id]', 'true', 'r.last_login'),
        ('suspicious_action_counts', 'r.event_type', $f$'{}'::text[]$f$, 'true', 'now()'),
        ('provider_flagged_logins', $f$r.user_id || ' ' || r.occurred_at$f$, 'ARRAY[r.user_id]', 'true', 'r.occurred_at'),
        ('session_hijacks',       'r.session_id', 'ARRAY[r.user_id]', 'true', 'r.last_seen'),
        ('mfa_fatigue_logins',    $f$r.user_id || ' ' || r.approved_at$f$, 'ARRAY[r.user_id]', 'true', 'r.approved_at')
      ) AS v(function, finding, accounts, keep, evidence_at)
     WHERE v.function = $1;
$$;
COMMENT ON FUNCTION ato.detection_finding(text) IS
    'How the rows of a detection function become alerts: the finding''s key, its accounts, the rows that count and when a row''s latest event happened (SQL over the row r)';
REVOKE ALL ON FUNCTION ato.detection_finding(text) FROM PUBLIC;

-- What the detection worker does besides the rules, and how it went: a step
-- that fails (a refresh that gave up waiting for a long import, a partition
-- that could not be dropped) is recorded here and skipped until the next
-- cycle; the rules run all the same.
CREATE TABLE ato.worker_steps (
    step          text        PRIMARY KEY,
    last_run_at   timestamptz NOT NULL,
    last_duration interval    NOT NULL,
    last_error    text,
    failing_since timestamptz
);
COMMENT ON TABLE ato.worker_steps IS
    'The detection worker''s steps besides the rules (partitions, summaries, retention, notices): when each last ran, how long it took, and why it failed, since when it has been failing';

CREATE FUNCTION ato.record_worker_step(step text, started timestamptz, error text)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO ato.worker_steps AS w (step, last_run_at, last_duration, last_error, failing_since)
    VALUES (step, started, clock_timestamp() - started, error, CASE WHEN error IS NOT NULL THEN started END)
    ON CONFLICT ON CONSTRAINT worker_steps_pkey DO UPDATE
       SET last_run_at = excluded.last_run_at, last_duration = excluded.last_duration,
           last_error = excluded.last_error,
           failing_since = CASE WHEN excluded.last_error IS NULL THEN NULL
                                ELSE coalesce(w.failing_since, excluded.last_run_at) END
$$;
COMMENT ON FUNCTION ato.record_worker_step(text, timestamptz, text) IS
    'Records how a step of the detection worker begun at started went (error NULL: it succeeded); used by the worker';
REVOKE ALL ON FUNCTION ato.record_worker_step(text, timestamptz, text) FROM PUBLIC;

-- The one writer of a failed run: run_detection() for the errors it catches,
-- the detection worker for the runs it cuts off (a timeout, a cancel), which
-- no PL/pgSQL handler sees.
CREATE FUNCTION ato.record_rule_failure(rule text, started timestamptz, error text)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE ato.detection_rules d
       SET last_run_at = started, last_duration = clock_timestamp() - started,
           last_findings = NULL, last_error = error
     WHERE d.name = rule
$$;
COMMENT ON FUNCTION ato.record_rule_failure(text, timestamptz, text) IS
    'Records on a rule that its run begun at started failed with error (the rule''s window does not move on); used by ato.run_detection() and the detection worker';
REVOKE ALL ON FUNCTION ato.record_rule_failure(text, timestamptz, text) FROM PUBLIC;

-- Which incident already answered an alert's evidence: one opened at or
-- after its latest event (its revocation time then covers every session the
-- attacker got through that evidence) holding the alert's accounts, every
-- one of them in such an incident.  Read by ato.run_detection(), which marks
-- the alerts it finds covered, and by ato.escalate_alert(), which joins the
-- incident instead of revoking again.
CREATE FUNCTION ato.covering_incident(accounts text[], evidence_at timestamptz)
RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF accounts IS NULL OR evidence_at IS NULL THEN
        RAISE EXCEPTION 'covering_incident: accounts and evidence_at must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass an alert''s accounts and evidence_at, for example SELECT ato.covering_incident(a.accounts, a.evidence_at) FROM ato.alerts a.';
    END IF;
    RETURN (SELECT i.id FROM ato.incidents i
             WHERE i.opened_at >= evidence_at AND i.user_ids && accounts
               AND NOT EXISTS (SELECT FROM unnest(accounts) u
                                WHERE NOT EXISTS (SELECT FROM ato.incidents j
                                                   WHERE j.opened_at >= evidence_at AND u = ANY (j.user_ids)))
             ORDER BY i.opened_at DESC, i.id
             LIMIT 1);
END;
$$;
COMMENT ON FUNCTION ato.covering_incident(text[], timestamptz) IS
    'The incident that already answered evidence of the accounts as new as evidence_at: every account is in an incident opened at or after it; of those holding any of them, the latest; NULL if an account is in none (or there are no accounts)';
REVOKE ALL ON FUNCTION ato.covering_incident(text[], timestamptz) FROM PUBLIC;

-- Recovery, as ato.response_log records it: a step completed
-- (ato.complete_step()), a suspension lifted (ato.lift_incident()), a flag
-- cleared by hand (ato.set_account_flags() with a flag false).
CREATE FUNCTION ato.recovered_accounts(accounts text[], since timestamptz)
RETURNS text[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF accounts IS NULL OR since IS NULL THEN
        RAISE EXCEPTION 'recovered_accounts: accounts and since must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the accounts and the time from which a recovery counts, for example an alert''s evidence_at.';
    END IF;
    RETURN (SELECT coalesce(array_agg(DISTINCT u ORDER BY u), '{}')
              FROM unnest(accounts) u
             WHERE EXISTS (SELECT FROM ato.response_log l
                            WHERE l.logged_at >= since AND u = ANY (l.user_ids)
                              AND (l.action IN ('step_completed', 'lifted')
                                   OR (l.action = 'flags_set'
                                       AND l.detail ~ '(^|, )(suspended|reauth_required|mfa_reenrollment_required|password_reset_required)=false'))));
END;
$$;
COMMENT ON FUNCTION ato.recovered_accounts(text[], timestamptz) IS
    'Those of the accounts (sorted) that took a recovery step since then, as ato.response_log has it: a step completed, a suspension lifted, a flag cleared by ato.set_account_flags()';
REVOKE ALL ON FUNCTION ato.recovered_accounts(text[], timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.run_detection(rule text, cycle_start timestamptz DEFAULT NULL, hunt_since timestamptz DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r ato.detection_rules;
    how record;
    fn regprocedure;
    arg record;
    args text := '';
    started timestamptz := clock_timestamp();
    since timestamptz;
    found_rows integer;
    inserted bigint[];
    touched bigint[];
    reopened bigint[];
    channel text := ato.setting('ato_response.alert_channel');
    -- announcements name the shard (NULL, and no key, on a single server)
    shard_label text := ato.shard_name();
BEGIN
    -- no month attached under the rule's statements (src/event_layout.c)
    PERFORM ato.hold_event_layout();
    IF rule IS NULL THEN
        RAISE EXCEPTION 'run_detection: rule must not be NULL'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Name a rule of ato.detection_rules.';
    END IF;
    IF NOT isfinite(hunt_since) OR hunt_since > started THEN
        RAISE EXCEPTION 'run_detection: hunt_since must be a past time'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the time from which a retroactive hunt reads the events, for example now() - interval ''30 days''.';
    END IF;
    IF NOT isfinite(cycle_start) OR cycle_start > started THEN
        RAISE EXCEPTION 'run_detection: cycle_start must be a past time'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it out, or give when the cycle of runs this one belongs to began.';
    END IF;
    -- one run of a rule at a time (the worker and a pg_cron job may meet)
    SELECT * INTO r FROM ato.detection_rules d WHERE d.name = run_detection.rule FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run_detection: no rule "%"', rule
            USING ERRCODE = 'no_data_found', HINT = 'The rules are in ato.detection_rules.';
    END IF;

    -- the events since the last successful run began, less lookback; a rule
    -- that kept failing catches up at most a day
    since := greatest(coalesce(r.covered_until, now()), now() - interval '1 day') - r.lookback;
    -- a retroactive hunt (after an import of history) reads from where it
    -- is told, once, and leaves the rule's own progress as it was
    IF hunt_since IS NOT NULL THEN
        since := hunt_since;
    END IF;

    BEGIN
        SELECT * INTO how FROM ato.detection_finding(r.function);
        IF how.finding IS NULL THEN
            RAISE EXCEPTION 'unknown detection "%"', r.function
                USING ERRCODE = 'undefined_function',
                      HINT = 'Use one of the detection functions of schema ato, such as credential_stuffing.';
        END IF;
        SELECT p.oid INTO fn FROM pg_proc p
         WHERE p.pronamespace = 'ato'::regnamespace AND p.proname = r.function;
        IF jsonb_typeof(r.parameters) <> 'object' THEN
            RAISE EXCEPTION 'parameters must be a JSON object, not %', jsonb_typeof(r.parameters)
                USING ERRCODE = 'invalid_parameter_value', HINT = 'For example {"min_attempts": 50}.';
        END IF;
        -- each parameter must be an argument of the function; its value is
        -- passed as the argument's type, never spliced
        FOR arg IN
            SELECT k.key, a.type
              FROM jsonb_object_keys(r.parameters) AS k(key)
              LEFT JOIN (SELECT n.name, n.type::regtype AS type
                           FROM pg_proc p,
                                unnest(p.proargnames[1:p.pronargs], p.proargtypes::oid[]) AS n(name, type)
                          WHERE p.oid = fn) a ON a.name = k.key
             ORDER BY k.key
        LOOP
            IF arg.key = 'since' THEN
                RAISE EXCEPTION 'parameter "since" is set by each run'
                    USING ERRCODE = 'invalid_parameter_value', HINT = 'Set lookback instead.';
            ELSIF arg.type IS NULL THEN
                RAISE EXCEPTION 'ato.%() has no parameter "%"', r.function, arg.key
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = format('Its parameters are: %s.', pg_get_function_arguments(fn));
            ELSIF arg.type::text LIKE '%[]' THEN
                args := args || format(', %I => (SELECT array_agg(v) FROM jsonb_array_elements_text($2 -> %L) v)::%s',
                                       arg.key, arg.key, arg.type);
            ELSE
                args := args || format(', %I => ($2 ->> %L)::%s', arg.key, arg.key, arg.type);
            END IF;
        END LOOP;

        -- of several rows of one finding, the latest is its evidence
        EXECUTE format(
            $q$WITH found AS (
                   SELECT DISTINCT ON (finding) %s AS finding, %s AS accounts, to_jsonb(r) AS evidence,
                          coalesce(%s, now()) AS evidence_at
                     FROM ato.%I(since => $1%s) r
                    WHERE %s
                    ORDER BY finding, evidence_at DESC),
               upserted AS (
                   INSERT INTO ato.alerts AS a (rule, finding, accounts, evidence, evidence_at, first_seen_at, last_seen_at)
                   SELECT $3, f.finding, f.accounts, f.evidence, f.evidence_at, now(), now() FROM found f
                   ON CONFLICT (rule, finding) DO UPDATE
                      SET last_seen_at = excluded.last_seen_at, evidence = excluded.evidence,
                          evidence_at = greatest(a.evidence_at, excluded.evidence_at),
                          accounts = ARRAY(SELECT DISTINCT u FROM unnest(a.accounts || excluded.accounts) u ORDER BY 1)
                   RETURNING a.id, (a.xmax = 0) AS inserted)
               SELECT count(*)::int, coalesce(array_agg(u.id) FILTER (WHERE u.inserted), '{}'),
                      coalesce(array_agg(u.id), '{}')
                 FROM upserted u$q$,
            how.finding, how.accounts, how.evidence_at, r.function, args, how.keep)
          INTO found_rows, inserted, touched
          USING since, r.parameters, r.name;

        -- An open alert whose accounts an incident opened since its evidence
        -- already holds is covered by it (a late alert over what a responder
        -- handled); an alert covered or escalated whose evidence grew newer
        -- than its incident is open again, unless a newer incident covers it.
        -- (evidence newer than the latest incident is covered by none: the
        -- usual case, read without a look at the incidents per alert)
        WITH candidates AS (
            SELECT a.id, a.status,
                   CASE WHEN a.evidence_at <= l.latest THEN ato.covering_incident(a.accounts, a.evidence_at) END AS covering
              FROM ato.alerts a, (SELECT max(i.opened_at) AS latest FROM ato.incidents i) l
             WHERE a.id = ANY (touched) AND cardinality(a.accounts) > 0
               AND (a.status = 'open'
                    OR (a.status IN ('covered', 'escalated')
                        AND a.evidence_at > (SELECT i.opened_at FROM ato.incidents i WHERE i.id = a.incident_id)))),
        changed AS (
            UPDATE ato.alerts a
               SET status = CASE WHEN c.covering IS NULL THEN 'open' ELSE 'covered' END,
                   incident_id = coalesce(c.covering, a.incident_id)
              FROM candidates c
             WHERE a.id = c.id AND (c.covering IS NOT NULL OR c.status <> 'open')
            RETURNING a.id, a.status)
        SELECT coalesce(array_agg(c.id) FILTER (WHERE c.status = 'open'), '{}') INTO reopened FROM changed c;

        -- new alerts are announced (with the incident that covers them, if
        -- one does), and so are those open again
        PERFORM pg_notify(channel, CASE WHEN shard_label IS NULL THEN n.payload
                                        ELSE left(n.payload, -1) || ', "shard" : ' || to_json(shard_label)::text || '}' END)
           FROM (SELECT CASE WHEN a.id = ANY (reopened)
                             THEN json_build_object('alert', a.id, 'rule', a.rule, 'finding', left(a.finding, 200),
                                                    'accounts', cardinality(a.accounts), 'reopened', true)
                             WHEN a.status = 'covered'
                             THEN json_build_object('alert', a.id, 'rule', a.rule, 'finding', left(a.finding, 200),
                                                    'accounts', cardinality(a.accounts), 'incident', a.incident_id)
                             ELSE json_build_object('alert', a.id, 'rule', a.rule, 'finding', left(a.finding, 200),
                                                    'accounts', cardinality(a.accounts)) END::text AS payload
                   FROM ato.alerts a
                  WHERE a.id = ANY (inserted || reopened)
                  ORDER BY a.id) n;
        -- the next run reads from here, less lookback: from the start of the
        -- cycle when there is one, so that the rules of a cycle share their
        -- windows (and the worker can summarise up to where they begin)
        UPDATE ato.detection_rules d
           SET covered_until = CASE WHEN hunt_since IS NULL THEN coalesce(cycle_start, started) ELSE d.covered_until END,
               last_run_at = started,
               last_duration = clock_timestamp() - started, last_findings = found_rows, last_error = NULL
         WHERE d.name = r.name;
        RETURN found_rows;
    EXCEPTION WHEN OTHERS THEN
        -- a bad rule is reported on its row and skipped; cancels and timeouts
        -- are not caught here (OTHERS does not include them)
        PERFORM ato.record_rule_failure(r.name, started, SQLERRM);
        RAISE WARNING 'run_detection: rule "%" failed: %', r.name, SQLERRM
            USING HINT = 'Fix the rule in ato.detection_rules; the error is kept in its last_error.';
        RETURN NULL;
    END;
END;
$$;
COMMENT ON FUNCTION ato.run_detection(text, timestamptz, timestamptz) IS
    'Runs one rule now: its detection over the events since its last successful run began (less lookback), findings upserted into ato.alerts (covered when an incident opened since their evidence already holds their accounts, open again when their evidence grows newer than their incident; new and reopened ones announced on ato_response.alert_channel, with the shard''s name when ato_response.shard_name is set); returns the findings, or NULL after recording the error on the rule. cycle_start, when given, counts as the run''s start: the rules run together (by the worker, or by ato.run_detections()) then share one. hunt_since, when given, makes it a retroactive hunt: the events from then on, once, the rule''s own progress left as it was';
REVOKE ALL ON FUNCTION ato.run_detection(text, timestamptz, timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.run_detections(since timestamptz DEFAULT NULL)
RETURNS TABLE (rule text, findings integer, error text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    name text;
BEGIN
    FOR name IN SELECT d.name FROM ato.detection_rules d WHERE d.enabled ORDER BY d.name LOOP
        rule := name;
        findings := ato.run_detection(name, now(), run_detections.since);
        SELECT d.last_error INTO error FROM ato.detection_rules d WHERE d.name = rule;
        RETURN NEXT;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION ato.run_detections(timestamptz) IS
    'Runs every enabled rule once, in this transaction (the worker runs each in its own, under ato_response.rule_timeout); with since, as a retroactive hunt over the events from then on (after an import of history), recording alerts as the worker would (a second hunt finds the same alerts again and adds none) and leaving the rules'' own progress as it was';
REVOKE ALL ON FUNCTION ato.run_detections(timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.triage_alert(alert_id bigint, status text, note text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF status IS NULL OR status NOT IN ('acknowledged', 'dismissed', 'open') THEN
        RAISE EXCEPTION 'triage_alert: status must be acknowledged, dismissed or open, not %', coalesce(status, 'NULL')
            USING ERRCODE = CASE WHEN status IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END,
                  HINT = 'To escalate an alert into an incident, call ato.escalate_alert().';
    END IF;
    IF status = 'dismissed' AND coalesce(note, '') = '' THEN
        RAISE EXCEPTION 'triage_alert: dismissing an alert needs a note'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Say why it is a false positive, for example ''the user was travelling''.';
    END IF;
    UPDATE ato.alerts a
       SET status = triage_alert.status, note = coalesce(triage_alert.note, a.note),
           triaged_by = session_user, triaged_at = now()
     WHERE a.id = alert_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'triage_alert: alert % does not exist', coalesce(alert_id::text, 'NULL')
            USING ERRCODE = CASE WHEN alert_id IS NULL THEN 'null_value_not_allowed' ELSE 'no_data_found' END,
                  HINT = 'The alerts are in ato.alerts.';
    END IF;
END;
$$;
COMMENT ON FUNCTION ato.triage_alert(bigint, text, text) IS
    'Acknowledges an alert, dismisses it as a false positive (with a note saying why), or opens it again';
REVOKE ALL ON FUNCTION ato.triage_alert(bigint, text, text) FROM PUBLIC;

-- Escalating never revokes again what an incident already answered without
-- being told to: accounts in an incident opened since the alert's evidence
-- are joined to it, not revoked anew (a new revocation would end the sessions
-- an account got since it recovered and set its flags again); force => true
-- revokes them all the same.  Evidence newer than every such incident is
-- not answered yet and escalates into a new incident, saying so when it
-- undoes a recovery completed after the evidence.
CREATE FUNCTION ato.escalate_alert(
    alert_id bigint,
    reason text DEFAULT NULL,
    suspend boolean DEFAULT false,
    reauth_required boolean DEFAULT true,
    mfa_reenrollment_required boolean DEFAULT false,
    password_reset_required boolean DEFAULT false,
    force boolean DEFAULT false)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    alert ato.alerts;
    incident uuid;
    answered text[];
    unanswered text[];
    revoked text[];
    recovered text[];
BEGIN
    IF force IS NULL THEN
        RAISE EXCEPTION 'escalate_alert: force must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass false (the default) to join the incident that already answered the alert''s evidence, true to revoke and flag its accounts again all the same.';
    END IF;
    SELECT * INTO alert FROM ato.alerts a WHERE a.id = alert_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'escalate_alert: alert % does not exist', coalesce(alert_id::text, 'NULL')
            USING ERRCODE = CASE WHEN alert_id IS NULL THEN 'null_value_not_allowed' ELSE 'no_data_found' END,
                  HINT = 'The alerts are in ato.alerts.';
    END IF;
    IF cardinality(alert.accounts) = 0 THEN
        RAISE EXCEPTION 'escalate_alert: alert % names no accounts', alert.id
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Alerts about a source (credential stuffing, password spray) count accounts without naming them: find them with ato.cidr_scope() and call ato.revoke_incident().';
    END IF;

    -- the accounts an incident opened at or after the evidence holds
    SELECT coalesce(array_agg(x.u ORDER BY x.u) FILTER (WHERE x.answered), '{}'),
           coalesce(array_agg(x.u ORDER BY x.u) FILTER (WHERE NOT x.answered), '{}')
      INTO answered, unanswered
      FROM (SELECT u, EXISTS (SELECT FROM ato.incidents i
                               WHERE i.opened_at >= alert.evidence_at AND u = ANY (i.user_ids)) AS answered
              FROM unnest(alert.accounts) u) x;

    IF NOT force AND cardinality(unanswered) = 0 THEN
        incident := ato.covering_incident(alert.accounts, alert.evidence_at);
        recovered := ato.recovered_accounts(alert.accounts, alert.evidence_at);
        UPDATE ato.alerts a
           SET status = 'escalated', incident_id = incident, triaged_by = session_user, triaged_at = now()
         WHERE a.id = alert.id;
        RAISE NOTICE 'escalate_alert: the accounts of alert % are already in an incident opened after its evidence: the alert joins it (its id is returned) and no account is revoked or flagged again',
            alert.id
            USING DETAIL = CASE WHEN cardinality(recovered) > 0
                                THEN format('Recovered since the evidence, and keeping the sessions they got since: %s.',
                                            array_to_string(recovered, ', '))
                                ELSE 'None of them has recovered since the evidence: the incident''s revocation and flags stand.' END,
                  HINT = 'To revoke and flag them again all the same, call ato.escalate_alert() with force => true. Evidence newer than the incident opens the alert again, and escalating it then opens a new incident.';
        RETURN incident;
    END IF;

    revoked := CASE WHEN force THEN alert.accounts ELSE unanswered END;
    recovered := ato.recovered_accounts(revoked, alert.evidence_at);
    incident := ato.revoke_incident(revoked,
                                    coalesce(reason, format('alert %s (%s): %s', alert.id, alert.rule, alert.finding)),
                                    suspend, reauth_required, mfa_reenrollment_required, password_reset_required);
    UPDATE ato.alerts a
       SET status = 'escalated', incident_id = incident, triaged_by = session_user, triaged_at = now()
     WHERE a.id = alert.id;
    IF cardinality(answered) > 0 THEN
        IF force THEN
            RAISE NOTICE 'escalate_alert: the new incident revokes and flags again accounts of alert % that an incident opened after its evidence already holds: %',
                alert.id, array_to_string(answered, ', ')
                USING HINT = 'force => true was given; without it they would have been left to that incident.';
        ELSE
            RAISE NOTICE 'escalate_alert: accounts of alert % that an incident opened after its evidence already holds are left out of the new incident: %',
                alert.id, array_to_string(answered, ', ')
                USING HINT = 'To revoke and flag them again all the same, call ato.escalate_alert() with force => true.';
        END IF;
    END IF;
    IF cardinality(recovered) > 0 THEN
        RAISE NOTICE 'escalate_alert: the new incident undoes the recovery of accounts that recovered after the evidence of alert %: %',
            alert.id, array_to_string(recovered, ', ')
            USING DETAIL = 'The sessions they got since their recovery are revoked and their flags are set again.',
                  HINT = 'If their recovery stands, clear the flags with ato.set_account_flags(); they sign in again.';
    END IF;
    RETURN incident;
END;
$$;
COMMENT ON FUNCTION ato.escalate_alert(bigint, text, boolean, boolean, boolean, boolean, boolean) IS
    'Escalates an alert into ato.revoke_incident() for its accounts in one call and returns the incident''s id; accounts an incident opened since the alert''s evidence already holds are not revoked again (force => true: they are): when that is all of them the alert joins that incident (ato.covering_incident()) and its id is returned, with a NOTICE naming the accounts that recovered since';
REVOKE ALL ON FUNCTION ato.escalate_alert(bigint, text, boolean, boolean, boolean, boolean, boolean) FROM PUBLIC;

CREATE FUNCTION ato.schedule_detection(rule text, schedule text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job bigint;
BEGIN
    IF NOT EXISTS (SELECT FROM ato.detection_rules d WHERE d.name = rule) THEN
        RAISE EXCEPTION 'schedule_detection: no rule "%"', coalesce(rule, 'NULL')
            USING ERRCODE = CASE WHEN rule IS NULL THEN 'null_value_not_allowed' ELSE 'no_data_found' END,
                  HINT = 'The rules are in ato.detection_rules.';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'schedule_detection: pg_cron is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Install it (Debian: apt-get install postgresql-15-cron), add pg_cron to shared_preload_libraries, set cron.database_name to this database, restart, then CREATE EXTENSION pg_cron. Or let the extension''s own worker run the rules (ato_response.databases).';
    END IF;
    EXECUTE 'SELECT cron.schedule($1, $2, $3)'
       INTO job
      USING 'ato_rule:' || rule, schedule, format('SELECT ato.run_detection(%L)', rule);
    RETURN job;
END;
$$;
COMMENT ON FUNCTION ato.schedule_detection(text, text) IS
    'Creates (or replaces) a pg_cron job named ato_rule:<rule> that runs the rule on the cron schedule; returns the job id';
REVOKE ALL ON FUNCTION ato.schedule_detection(text, text) FROM PUBLIC;

CREATE FUNCTION ato.unschedule_detection(rule text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    removed boolean;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'unschedule_detection: pg_cron is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Without pg_cron there is nothing to unschedule.';
    END IF;
    IF NOT EXISTS (SELECT FROM cron.job j WHERE j.jobname = 'ato_rule:' || rule) THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT cron.unschedule($1)' INTO removed USING 'ato_rule:' || rule;
    RETURN removed;
END;
$$;
COMMENT ON FUNCTION ato.unschedule_detection(text) IS
    'Removes the pg_cron job of a rule made by ato.schedule_detection(); false if there was none';
REVOKE ALL ON FUNCTION ato.unschedule_detection(text) FROM PUBLIC;
