-- example/grants.sql: the grants of ato_response, role by role, complete (the README's
-- Privileges section).  psql variables name the roles:
--   psql -v app=shop_app -v cache=shop_cache -v oncall=shop_oncall -v app_owner=shop_owner -f example/grants.sql
-- sql/roles.sql runs it for the test suite's roles and checks that each role can do its job.
GRANT USAGE ON SCHEMA ato TO :"app", :"cache", :"oncall", :"app_owner";

-- the application: records events, asks the gate at login, checks sessions on each request
-- (one or many at once), reports completed steps, signs out one device
GRANT EXECUTE ON FUNCTION
    ato.record_login(text, inet, text, timestamptz, text, text, jsonb),
    ato.record_event(text, text, timestamptz, inet, text, text, text, text, jsonb),
    ato.login_gate(text, inet),
    ato.session_revoked(text, timestamptz), ato.session_status(text, timestamptz, text),
    ato.session_statuses(text[], timestamptz[], text[]),
    ato.complete_step(text, text, text, text), ato.revoke_session(text, text, text) TO :"app";

-- the service that caches sessions: the outbox of revoked accounts, through the function only
GRANT EXECUTE ON FUNCTION ato.revocations_since(bigint, integer),
                          ato.session_statuses(text[], timestamptz[], text[]) TO :"cache";

-- the responders: the questions of a drill, the response, triage, the evidence
GRANT EXECUTE ON FUNCTION
    ato.new_country_logins(timestamptz, interval, text[]), ato.cidr_scope(cidr[], timestamptz),
    ato.suspicious_action_counts(text[], timestamptz), ato.failed_login_bursts(timestamptz, integer, interval),
    ato.impossible_travel(timestamptz, double precision, double precision, interval),
    ato.credential_stuffing(timestamptz, integer, double precision),
    ato.password_spray(timestamptz, integer, double precision),
    ato.related_accounts(text[], timestamptz, integer), ato.persistence_changes(text[], timestamptz),
    ato.listed_network_logins(timestamptz, text[]),
    ato.revoke_incident(text[], text, boolean, boolean, boolean, boolean, timestamptz, uuid),
    ato.lift_incident(uuid, text[], text), ato.set_account_flags(text[], boolean, boolean, boolean, boolean, text),
    ato.revoke_session(text, text, text),
    ato.block_network(cidr, text, timestamptz), ato.unblock_network(cidr),
    ato.triage_alert(bigint, text, text),
    ato.escalate_alert(bigint, text, boolean, boolean, boolean, boolean, boolean),
    ato.preserve_evidence(uuid, timestamptz, cidr[]), ato.verify_evidence(uuid), ato.export_evidence(uuid),
    ato.incident_timeline(uuid) TO :"oncall";
GRANT SELECT ON ato.incidents, ato.incident_progress, ato.incident_targets, ato.response_log,
                ato.alerts, ato.account_flags, ato.session_revocations,
                ato.evidence_manifests, ato.evidence_rows TO :"oncall";

-- the owner of the application's tables registers them (it needs SELECT and UPDATE, or DELETE,
-- on each, which as their owner it has)
GRANT EXECUTE ON FUNCTION ato.register_revocation_target(regclass, name, text, name, name, name, name, name),
                          ato.unregister_revocation_target(text) TO :"app_owner";

