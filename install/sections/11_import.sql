-- install/sections/11_import.sql: importing identity-provider logs (Okta, Auth0, Microsoft Entra ID): one mapping function per provider, ato.import_events(), ato.import_batch() and the table of rejected events (the bulk import views are 11_import_bulk.sql).
-- A piece of the install script, which the Makefile assembles: not loadable alone.
-- It comes after 10_privileges.sql, so every object here carries its own REVOKE.
-- The import runs as its caller (SECURITY INVOKER: a loader stores only what
-- it may INSERT, and ato.import_rejections records who it was); the pure
-- mapping functions it calls are therefore PUBLIC, ato.import_events() and
-- ato.import_batch() are not.

-- ---------------------------------------------------------------------------
-- Importing identity-provider logs
--
-- Each provider's events are mapped by one SQL function, ato.<provider>_event(jsonb),
-- into one ato.provider_event: a login (ato.login_events) or an audit event
-- (ato.audit_events), or the reason it cannot be stored.  The mappings are
-- plain single-SELECT SQL functions without SET clauses, so that the planner
-- inlines them into the one INSERT that ato.import_batch() runs per batch
-- (which pins search_path and the time zone); they read no table.
--
-- metadata of an imported event (keys without a value are left out):
--   provider          okta, auth0 or entra
--   event_id          the provider's id of the event (Okta uuid, Auth0 log_id, Entra id)
--   event_type        the provider's event type as given (Okta eventType, Auth0 type, Entra
--                     category or activityDisplayName); audit events have it in event_type too
--   provider_outcome  the provider's own outcome (Okta outcome.result, Auth0 type, Entra
--                     status.errorCode or result); outcome_reason its reason
--   user_name         the account's sign-in name (Okta alternateId, Auth0 user_name, Entra
--                     userPrincipalName), where user_id holds the provider's id
--   targets           every target: [{"type", "id", "name"}, ...]; target_type and
--                     target_id hold the first
--   risk              the provider's risk and anonymiser signals: level, detail, proxy,
--                     threat_suspected, behaviors (Okta), event_types, state, aggregated,
--                     anonymizer (Entra), attack_protection, confidence, assessments (Auth0,
--                     whose level is HIGH when its riskAssessment confidence is low)
--   mfa               factor, result (and Entra's requirement): the second factor used;
--                     challenge: sent (a push or code sent: Okta system.push.send_factor_verify_push,
--                     Auth0 gd_send_*, Entra 50074/50076), denied (denied, failed, not answered:
--                     Okta deny_push or a failed auth_via_mfa, Auth0 gd_auth_failed/_rejected,
--                     Entra 500121 or a failed second step) or approved, read by
--                     ato.mfa_fatigue_logins()
--   geo               the provider's own geography: country, city, state, latitude,
--                     longitude; it fills country_code, latitude and longitude only where
--                     GeoIP has no answer for the address (ato.geoip_coverage())
--   network           Okta's securityContext: asn, as_org, isp, domain
--   app, client       the application signed in to
-- ---------------------------------------------------------------------------

CREATE TYPE ato.provider_event AS (
    kind         text,              -- 'login', 'audit', or NULL: rejected for reason
    reason       text,
    occurred_at  timestamptz,
    subject      text,              -- user_id of a login, actor_id of an audit event
    ip_address   inet,
    outcome      text,
    event_type   text,
    user_agent   text,
    session_id   text,
    target_type  text,
    target_id    text,
    country_code text,              -- the provider's geography, used where GeoIP has no answer
    latitude     double precision,
    longitude    double precision,
    metadata     jsonb
);
COMMENT ON TYPE ato.provider_event IS
    'One identity-provider event mapped for the event store: a login, an audit event, or the reason it cannot be stored';

CREATE FUNCTION ato.geoip_coverage(ip_address inet)
RETURNS integer
AS 'MODULE_PATHNAME', 'ato_geoip_coverage'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ato.geoip_coverage(inet) IS
    'What the GeoIP databases know of an address: 1 its country, 2 its location (a bit mask; 0 also when no database is usable); never raises';
-- PUBLIC, as the GeoIP look-ups: it reads nothing, and the import needs it as the caller.

-- A provider's time: an ISO 8601 string (a time without a zone is UTC, the
-- import runs in UTC) or a number of seconds or milliseconds since 1970.
CREATE FUNCTION ato.import_time(value jsonb)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE jsonb_typeof(value)
           -- ISO 8601 only: 'now', 'epoch' or 'tomorrow' are no provider's time
           WHEN 'string' THEN CASE WHEN value #>> '{}' ~ '^\d{4}-\d{2}-\d{2}' THEN (value #>> '{}')::timestamptz END
           WHEN 'number' THEN to_timestamp(CASE WHEN abs((value #>> '{}')::numeric) >= 100000000000
                                                THEN (value #>> '{}')::numeric / 1000
                                                ELSE (value #>> '{}')::numeric END::double precision)
           END
$$;
COMMENT ON FUNCTION ato.import_time(jsonb) IS
    'A provider''s time: ISO 8601 text (UTC when it has no zone) or seconds or milliseconds since 1970; NULL when absent';
-- PUBLIC: it reads nothing and computes only from its arguments; the import runs it as the caller.

-- A provider's coordinate, when it is a number within limit degrees.
CREATE FUNCTION ato.import_degrees(value jsonb, limit_degrees double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN jsonb_typeof(value) = 'number' AND abs(value::double precision) <= limit_degrees
                THEN value::double precision END
$$;
COMMENT ON FUNCTION ato.import_degrees(jsonb, double precision) IS
    'A provider''s latitude or longitude: the number if it lies within the limit, otherwise NULL';
-- PUBLIC: it reads nothing and computes only from its arguments; the import runs it as the caller.

-- Okta's outcome.result (and any provider's in the same words) as an outcome
-- of the event store; anything else is passed on, for the trigger to refuse.
CREATE FUNCTION ato.import_outcome(result text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE upper(result)
           WHEN 'SUCCESS' THEN 'success' WHEN 'ALLOW' THEN 'success'
           WHEN 'FAILURE' THEN 'failure' WHEN 'DENY' THEN 'failure'
           WHEN 'CHALLENGE' THEN 'challenge'
           WHEN 'SKIPPED' THEN 'unknown' WHEN 'UNKNOWN' THEN 'unknown'
           ELSE result END
$$;
COMMENT ON FUNCTION ato.import_outcome(text) IS
    'A provider''s outcome as the event store''s: SUCCESS/ALLOW success, FAILURE/DENY failure, CHALLENGE challenge, SKIPPED/UNKNOWN unknown';
-- PUBLIC: it reads nothing and computes only from its arguments; the import runs it as the caller.

-- ---------------------------------------------------------------------------
-- Okta System Log API (/api/v1/logs): LogEvent objects
-- ---------------------------------------------------------------------------
CREATE FUNCTION ato.okta_event(event jsonb)
RETURNS SETOF ato.provider_event
LANGUAGE sql STABLE PARALLEL SAFE ROWS 1
AS $$
SELECT CASE WHEN x.reason IS NULL THEN
            CASE WHEN x.event_type IN ('user.session.start', 'user.authentication.authenticate')
                 THEN 'login' ELSE 'audit' END END,
       x.reason, x.occurred_at, x.subject, x.ip_address, x.outcome, x.event_type, x.user_agent,
       x.session_id, x.target_type, x.target_id, NULL::text, x.latitude, x.longitude, x.metadata
  FROM (SELECT f.*,
               CASE WHEN NOT f.is_object THEN 'the event is not a JSON object'
                    WHEN f.event_type IS NULL THEN 'the event has no eventType'
                    WHEN f.occurred_at IS NULL THEN 'the event has no published time'
                    WHEN f.subject IS NULL THEN 'the event has no actor id'
               END AS reason
          FROM (SELECT coalesce(jsonb_typeof(event) = 'object', false) AS is_object,
                       nullif(event ->> 'eventType', '') AS event_type,
                       ato.import_time(event -> 'published') AS occurred_at,
                       CASE WHEN coalesce(event #>> '{actor,id}', '') IN ('', 'unknown')
                            THEN nullif(nullif(event #>> '{actor,alternateId}', ''), 'unknown')
                            ELSE event #>> '{actor,id}' END AS subject,
                       nullif(event #>> '{client,ipAddress}', '')::inet AS ip_address,
                       -- a push the user denied is a verification that failed, whatever
                       -- outcome Okta gives the event itself (provider_outcome keeps it)
                       CASE WHEN event ->> 'eventType' LIKE 'user.mfa.okta\_verify.deny\_push%' THEN 'failure'
                            ELSE ato.import_outcome(event #>> '{outcome,result}') END AS outcome,
                       nullif(event #>> '{client,userAgent,rawUserAgent}', '') AS user_agent,
                       nullif(nullif(event #>> '{authenticationContext,externalSessionId}', ''), 'unknown') AS session_id,
                       event #>> '{target,0,type}' AS target_type,
                       event #>> '{target,0,id}' AS target_id,
                       ato.import_degrees(event #> '{client,geographicalContext,geolocation,lat}', 90) AS latitude,
                       ato.import_degrees(event #> '{client,geographicalContext,geolocation,lon}', 180) AS longitude,
                       jsonb_strip_nulls(jsonb_build_object(
                           'provider', 'okta',
                           'event_id', event ->> 'uuid',
                           'event_type', event ->> 'eventType',
                           'provider_outcome', event #>> '{outcome,result}',
                           'outcome_reason', event #>> '{outcome,reason}',
                           'user_name', event #>> '{actor,alternateId}',
                           'display_message', event ->> 'displayMessage',
                           'transaction_id', event #>> '{transaction,id}',
                           'targets', (SELECT jsonb_agg(jsonb_build_object(
                                                 'type', t ->> 'type', 'id', t ->> 'id',
                                                 'name', coalesce(t ->> 'alternateId', t ->> 'displayName')))
                                         FROM jsonb_array_elements(CASE WHEN jsonb_typeof(event -> 'target') = 'array'
                                                                        THEN event -> 'target' END) t),
                           'risk', CASE WHEN num_nonnulls(event #>> '{debugContext,debugData,risk}',
                                                          event #>> '{securityContext,isProxy}',
                                                          event #>> '{debugContext,debugData,threatSuspected}',
                                                          event #>> '{debugContext,debugData,behaviors}') > 0
                                        THEN jsonb_build_object(
                               'level', upper(substring(event #>> '{debugContext,debugData,risk}' FROM 'level=([A-Za-z_]+)')),
                               'detail', event #>> '{debugContext,debugData,risk}',
                               'proxy', CASE WHEN jsonb_typeof(event #> '{securityContext,isProxy}') = 'boolean'
                                             THEN event #> '{securityContext,isProxy}' END,
                               'threat_suspected', CASE lower(event #>> '{debugContext,debugData,threatSuspected}')
                                                   WHEN 'true' THEN true WHEN 'false' THEN false END,
                               'behaviors', event #>> '{debugContext,debugData,behaviors}') END,
                           'mfa', CASE WHEN event #>> '{debugContext,debugData,factor}' IS NOT NULL
                                         OR event ->> 'eventType' LIKE 'user.authentication.auth\_via\_mfa%'
                                         OR event ->> 'eventType' LIKE 'user.mfa.okta\_verify.deny\_push%'
                                         OR event ->> 'eventType' LIKE 'system.%.send\_factor\_verify%'
                                       THEN jsonb_build_object(
                                           'factor', coalesce(event #>> '{debugContext,debugData,factor}',
                                                              event #>> '{authenticationContext,credentialType}'),
                                           'result', event #>> '{outcome,result}',
                                           'challenge', CASE
                                               WHEN event ->> 'eventType' LIKE 'system.%.send\_factor\_verify%' THEN 'sent'
                                               WHEN event ->> 'eventType' LIKE 'user.mfa.okta\_verify.deny\_push%' THEN 'denied'
                                               WHEN upper(event #>> '{outcome,result}') IN ('FAILURE', 'DENY') THEN 'denied'
                                               WHEN upper(event #>> '{outcome,result}') IN ('SUCCESS', 'ALLOW') THEN 'approved' END) END,
                           'geo', CASE WHEN num_nonnulls(event #>> '{client,geographicalContext,country}',
                                                         event #>> '{client,geographicalContext,state}',
                                                         event #>> '{client,geographicalContext,city}',
                                                         event #>> '{client,geographicalContext,geolocation,lat}',
                                                         event #>> '{client,geographicalContext,geolocation,lon}') > 0
                                       THEN jsonb_build_object(
                               'country', event #>> '{client,geographicalContext,country}',
                               'state', event #>> '{client,geographicalContext,state}',
                               'city', event #>> '{client,geographicalContext,city}',
                               'latitude', event #> '{client,geographicalContext,geolocation,lat}',
                               'longitude', event #> '{client,geographicalContext,geolocation,lon}') END,
                           'network', CASE WHEN num_nonnulls(event #>> '{securityContext,asNumber}',
                                                             event #>> '{securityContext,asOrg}',
                                                             event #>> '{securityContext,isp}',
                                                             event #>> '{securityContext,domain}') > 0
                                           THEN jsonb_build_object(
                               'asn', event #> '{securityContext,asNumber}',
                               'as_org', event #> '{securityContext,asOrg}',
                               'isp', event #> '{securityContext,isp}',
                               'domain', event #> '{securityContext,domain}') END,
                           'client', event #>> '{client,id}')) AS metadata OFFSET 0) f) x
$$;
COMMENT ON FUNCTION ato.okta_event(jsonb) IS
    'Maps one Okta System Log event: user.session.start and user.authentication.authenticate are logins, every other eventType an audit event under its own name';
-- PUBLIC: it reads nothing and computes only from its arguments; the import runs it as the caller.

-- ---------------------------------------------------------------------------
-- Auth0 Logs API (/api/v2/logs) and log streams: log objects, bare or as a
-- stream delivers them ({"log_id": ..., "data": {...}})
-- ---------------------------------------------------------------------------
CREATE FUNCTION ato.auth0_event(event jsonb)
RETURNS SETOF ato.provider_event
LANGUAGE sql STABLE PARALLEL SAFE ROWS 1
AS $$
SELECT CASE WHEN x.reason IS NULL THEN
            CASE WHEN x.event_type IN ('s', 'ssa', 'scoa', 'f', 'fp', 'fu', 'fcoa', 'mfar')
                 THEN 'login' ELSE 'audit' END END,
       x.reason, x.occurred_at, x.subject, x.ip_address, x.outcome, x.event_type, x.user_agent,
       x.session_id, NULL::text, NULL::text, x.country_code, x.latitude, x.longitude, x.metadata
  FROM (SELECT f.*,
               CASE WHEN NOT f.is_object THEN 'the event is not a JSON object'
                    WHEN f.event_type IS NULL THEN 'the event has no type'
                    WHEN f.occurred_at IS NULL THEN 'the event has no date'
                    WHEN f.subject IS NULL THEN 'the event has neither user_id nor user_name'
               END AS reason,
               CASE WHEN f.event_type IN ('s', 'ssa', 'scoa') THEN 'success'
                    WHEN f.event_type IN ('f', 'fp', 'fu', 'fcoa') THEN 'failure'
                    WHEN f.event_type = 'mfar' THEN 'challenge'
                    WHEN f.attack_protection THEN 'failure'
                    WHEN f.event_type LIKE 'gd\_%' THEN
                         CASE WHEN f.event_type ~ '(succeed|success|complete)' THEN 'success'
                              WHEN f.event_type ~ '(fail|reject|exceed)' THEN 'failure' END
                    WHEN f.event_type LIKE 's%' THEN 'success'
                    WHEN f.event_type LIKE 'f%' THEN 'failure'
               END AS outcome
          FROM (SELECT e.is_object, e.event_type,
                       ato.import_time(e.log -> 'date') AS occurred_at,
                       coalesce(nullif(e.log ->> 'user_id', ''), nullif(e.log ->> 'user_name', '')) AS subject,
                       nullif(e.log ->> 'ip', '')::inet AS ip_address,
                       nullif(e.log ->> 'user_agent', '') AS user_agent,
                       coalesce(nullif(e.log ->> 'session_id', ''), nullif(e.log #>> '{details,session_id}', ''),
                                nullif(e.log ->> 'sid', '')) AS session_id,
                       e.event_type IN ('limit_wc', 'limit_sul', 'limit_mu', 'limit_delegation',
                                        'pwd_leak', 'signup_pwd_leak', 'reset_pwd_leak') AS attack_protection,
                       CASE WHEN e.log #>> '{location_info,country_code}' ~ '^[A-Za-z]{2}$'
                            THEN e.log #>> '{location_info,country_code}' END AS country_code,
                       ato.import_degrees(e.log #> '{location_info,latitude}', 90) AS latitude,
                       ato.import_degrees(e.log #> '{location_info,longitude}', 180) AS longitude,
                       jsonb_strip_nulls(jsonb_build_object(
                           'provider', 'auth0',
                           'event_id', coalesce(e.log ->> 'log_id', e.log ->> '_id', event ->> 'log_id'),
                           'event_type', e.event_type,
                           'provider_outcome', e.event_type,
                           'outcome_reason', e.log ->> 'description',
                           'user_name', e.log ->> 'user_name',
                           'connection', e.log ->> 'connection',
                           'app', e.log ->> 'client_name',
                           'client', e.log ->> 'client_id',
                           'risk', CASE WHEN e.event_type IN ('limit_wc', 'limit_sul', 'limit_mu', 'limit_delegation', 'pwd_leak',
                                                           'signup_pwd_leak', 'reset_pwd_leak')
                                      OR e.log #> '{details,riskAssessment}' IS NOT NULL THEN jsonb_build_object(
                               'attack_protection', CASE WHEN e.event_type IN ('limit_wc', 'limit_sul', 'limit_mu',
                                                             'limit_delegation', 'pwd_leak', 'signup_pwd_leak',
                                                             'reset_pwd_leak') THEN e.event_type END,
                               -- Auth0's confidence that the login is the user's: low is a likely attack
                               'level', CASE lower(e.log #>> '{details,riskAssessment,confidence}')
                                        WHEN 'low' THEN 'HIGH' WHEN 'medium' THEN 'MEDIUM' WHEN 'high' THEN 'LOW' END,
                               'confidence', e.log #>> '{details,riskAssessment,confidence}',
                               'assessments', e.log #> '{details,riskAssessment,assessments}') END,
                           'mfa', CASE WHEN e.event_type LIKE 'gd\_%' OR e.event_type = 'mfar'
                                       THEN jsonb_build_object(
                                           'factor', coalesce(e.log #>> '{details,authenticator,type}',
                                                              e.log #>> '{details,method}'),
                                           'result', e.event_type,
                                           'challenge', CASE
                                               WHEN e.event_type IN ('gd_send_pn', 'gd_send_sms', 'gd_send_voice', 'gd_send_email') THEN 'sent'
                                               WHEN e.event_type IN ('gd_auth_failed', 'gd_auth_rejected', 'gd_otp_rate_limit_exceed',
                                                                     'gd_webauthn_challenge_failed') THEN 'denied'
                                               WHEN e.event_type = 'gd_auth_succeed' THEN 'approved' END) END,
                           'geo', CASE WHEN num_nonnulls(e.log #>> '{location_info,country_code}',
                                                         e.log #>> '{location_info,city_name}',
                                                         e.log #>> '{location_info,latitude}',
                                                         e.log #>> '{location_info,longitude}') > 0
                                       THEN jsonb_build_object(
                               'country', e.log #>> '{location_info,country_code}',
                               'city', e.log #>> '{location_info,city_name}',
                               'latitude', e.log #> '{location_info,latitude}',
                               'longitude', e.log #> '{location_info,longitude}') END)) AS metadata
                  FROM (SELECT coalesce(jsonb_typeof(l.log) = 'object', false) AS is_object,
                               nullif(l.log ->> 'type', '') AS event_type, l.log
                          FROM (SELECT CASE WHEN jsonb_typeof(event -> 'data') = 'object' AND NOT event ? 'type'
                                            THEN event -> 'data' ELSE event END AS log) l) e OFFSET 0) f) x
$$;
COMMENT ON FUNCTION ato.auth0_event(jsonb) IS
    'Maps one Auth0 log event: s, ssa, scoa (success), f, fp, fu, fcoa (failure) and mfar (challenge) are logins, every other type an audit event under its own code';
-- PUBLIC: it reads nothing and computes only from its arguments; the import runs it as the caller.

-- ---------------------------------------------------------------------------
-- Microsoft Entra ID: Microsoft Graph signIn and directoryAudit resources,
-- bare or as Azure Monitor exports them ({"time", "category", "properties": {...}})
-- ---------------------------------------------------------------------------
CREATE FUNCTION ato.entra_event(event jsonb)
RETURNS SETOF ato.provider_event
LANGUAGE sql STABLE PARALLEL SAFE ROWS 1
AS $$
SELECT CASE WHEN x.reason IS NULL THEN x.kind END,
       x.reason, x.occurred_at, x.subject, x.ip_address, x.outcome, x.event_type, x.user_agent,
       x.session_id, x.target_type, x.target_id, x.country_code, x.latitude, x.longitude, x.metadata
  FROM (SELECT f.*,
               CASE WHEN NOT f.is_object THEN 'the event is not a JSON object'
                    WHEN f.kind IS NULL THEN 'the event is neither a signIn nor a directoryAudit'
                    WHEN f.occurred_at IS NULL THEN 'the event has no createdDateTime, activityDateTime or time'
                    WHEN f.subject IS NULL THEN 'the event names no user (userId, userPrincipalName, servicePrincipalId, initiatedBy)'
               END AS reason
          FROM (SELECT s.is_object, s.kind,
                       ato.import_time(coalesce(s.r -> 'createdDateTime', s.r -> 'activityDateTime',
                                                event -> 'time')) AS occurred_at,
                       CASE s.kind
                       WHEN 'login' THEN coalesce(nullif(s.r ->> 'userId', ''), nullif(s.r ->> 'userPrincipalName', ''),
                                                  nullif(s.r ->> 'servicePrincipalId', ''))
                       ELSE coalesce(nullif(s.r #>> '{initiatedBy,user,id}', ''),
                                     nullif(s.r #>> '{initiatedBy,user,userPrincipalName}', ''),
                                     nullif(s.r #>> '{initiatedBy,app,servicePrincipalId}', ''),
                                     nullif(s.r #>> '{initiatedBy,app,appId}', '')) END AS subject,
                       CASE s.kind
                       WHEN 'login' THEN coalesce(nullif(s.r ->> 'ipAddress', ''), nullif(event ->> 'callerIpAddress', ''))
                       ELSE nullif(s.r #>> '{initiatedBy,user,ipAddress}', '') END::inet AS ip_address,
                       CASE s.kind
                       WHEN 'login' THEN
                            CASE WHEN s.error_code IS NULL THEN NULL
                                 WHEN s.error_code = '0' THEN 'success'
                                 -- interrupts: a second factor or a prompt asked for, not a failed attempt
                                 WHEN s.error_code IN ('50072', '50074', '50076', '50079', '50097', '50125',
                                                       '50140', '50158', '50199') THEN 'challenge'
                                 ELSE 'failure' END
                       ELSE CASE lower(s.r ->> 'result')
                            WHEN 'success' THEN 'success' WHEN 'failure' THEN 'failure'
                            WHEN 'timeout' THEN 'unknown' END END AS outcome,
                       CASE s.kind WHEN 'login' THEN coalesce(event ->> 'category', 'signIn')
                                   ELSE s.r ->> 'activityDisplayName' END AS event_type,
                       nullif(s.r ->> 'userAgent', '') AS user_agent,
                       coalesce(nullif(s.r ->> 'sessionId', ''), nullif(s.r ->> 'correlationId', ''),
                                nullif(event ->> 'correlationId', '')) AS session_id,
                       s.r #>> '{targetResources,0,type}' AS target_type,
                       s.r #>> '{targetResources,0,id}' AS target_id,
                       CASE WHEN s.r #>> '{location,countryOrRegion}' ~ '^[A-Za-z]{2}$'
                            THEN s.r #>> '{location,countryOrRegion}' END AS country_code,
                       ato.import_degrees(s.r #> '{location,geoCoordinates,latitude}', 90) AS latitude,
                       ato.import_degrees(s.r #> '{location,geoCoordinates,longitude}', 180) AS longitude,
                       jsonb_strip_nulls(jsonb_build_object(
                           'provider', 'entra',
                           'event_id', s.r ->> 'id',
                           'event_type', CASE s.kind WHEN 'login' THEN coalesce(event ->> 'category', 'signIn')
                                                     ELSE s.r ->> 'activityDisplayName' END,
                           'provider_outcome', CASE s.kind WHEN 'login' THEN s.error_code ELSE s.r ->> 'result' END,
                           'outcome_reason', coalesce(s.r #>> '{status,failureReason}', s.r ->> 'resultReason'),
                           'user_name', coalesce(s.r ->> 'userPrincipalName', s.r #>> '{initiatedBy,user,userPrincipalName}'),
                           'app', s.r ->> 'appDisplayName',
                           'client', s.r ->> 'clientAppUsed',
                           'correlation_id', coalesce(s.r ->> 'correlationId', event ->> 'correlationId'),
                           'targets', (SELECT jsonb_agg(jsonb_build_object(
                                                 'type', t ->> 'type', 'id', t ->> 'id',
                                                 'name', coalesce(t ->> 'userPrincipalName', t ->> 'displayName')))
                                         FROM jsonb_array_elements(CASE WHEN jsonb_typeof(s.r -> 'targetResources') = 'array'
                                                                        THEN s.r -> 'targetResources' END) t),
                           'risk', CASE WHEN num_nonnulls(s.r ->> 'riskLevelDuringSignIn',
                                                          s.r ->> 'riskLevelAggregated',
                                                          s.r ->> 'riskState',
                                                          s.r ->> 'riskDetail',
                                                          s.r ->> 'riskEventTypes_v2',
                                                          s.r ->> 'riskEventTypes') > 0
                                        THEN jsonb_build_object(
                               'level', s.r ->> 'riskLevelDuringSignIn',
                               'aggregated', s.r ->> 'riskLevelAggregated',
                               'state', s.r ->> 'riskState',
                               'detail', s.r ->> 'riskDetail',
                               'event_types', coalesce(s.r -> 'riskEventTypes_v2', s.r -> 'riskEventTypes'),
                               'anonymizer', CASE WHEN jsonb_typeof(coalesce(s.r -> 'riskEventTypes_v2', s.r -> 'riskEventTypes')) = 'array'
                                                  THEN coalesce(s.r -> 'riskEventTypes_v2', s.r -> 'riskEventTypes')
                                                       ?| ARRAY['anonymizedIPAddress', 'anonymousIPAddress'] END) END,
                           'mfa', CASE WHEN num_nonnulls(s.r ->> 'authenticationRequirement',
                                                         s.r #>> '{mfaDetail,authMethod}',
                                                         s.second_factor,
                                                         CASE WHEN s.error_code IN ('500121', '50074', '50076') THEN 1 END) > 0
                                       THEN jsonb_build_object(
                               'requirement', s.r ->> 'authenticationRequirement',
                               'factor', coalesce(s.r #>> '{mfaDetail,authMethod}', s.second_factor ->> 'authenticationMethod'),
                               'result', s.second_factor -> 'succeeded',
                               -- 500121: the second factor failed (denied, not answered, timed
                               -- out); 50074, 50076: a second factor was asked for
                               'challenge', CASE WHEN s.kind <> 'login' THEN NULL
                                                 WHEN s.error_code = '500121' THEN 'denied'
                                                 WHEN s.error_code IN ('50074', '50076') THEN 'sent'
                                                 WHEN s.second_factor -> 'succeeded' = 'false' THEN 'denied'
                                                 WHEN s.error_code = '0' AND (s.second_factor -> 'succeeded' = 'true'
                                                                              OR s.r #>> '{mfaDetail,authMethod}' IS NOT NULL)
                                                 THEN 'approved' END) END,
                           'geo', CASE WHEN num_nonnulls(s.r #>> '{location,countryOrRegion}',
                                                         s.r #>> '{location,state}',
                                                         s.r #>> '{location,city}',
                                                         s.r #>> '{location,geoCoordinates,latitude}',
                                                         s.r #>> '{location,geoCoordinates,longitude}') > 0
                                       THEN jsonb_build_object(
                               'country', s.r #>> '{location,countryOrRegion}',
                               'state', s.r #>> '{location,state}',
                               'city', s.r #>> '{location,city}',
                               'latitude', s.r #> '{location,geoCoordinates,latitude}',
                               'longitude', s.r #> '{location,geoCoordinates,longitude}') END)) AS metadata
                  FROM (SELECT p.is_object, p.r,
                               CASE WHEN p.r ? 'activityDisplayName' THEN 'audit'
                                    WHEN p.r ? 'createdDateTime' OR p.r ? 'userPrincipalName' OR p.r ? 'userId' THEN 'login'
                               END AS kind,
                               coalesce(p.r #>> '{status,errorCode}', nullif(event ->> 'resultType', '')) AS error_code,
                               (SELECT d FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p.r -> 'authenticationDetails') = 'array'
                                                                        THEN p.r -> 'authenticationDetails' END) d
                                 WHERE d ->> 'authenticationMethod' NOT IN ('Password', 'Previously satisfied')
                                 LIMIT 1) AS second_factor
                          FROM (SELECT coalesce(jsonb_typeof(event) = 'object', false) AS is_object,
                                       CASE WHEN jsonb_typeof(event -> 'properties') = 'object'
                                            THEN event -> 'properties' ELSE event END AS r) p) s OFFSET 0) f) x
$$;
COMMENT ON FUNCTION ato.entra_event(jsonb) IS
    'Maps one Microsoft Entra ID event: a signIn (Graph, or an Azure Monitor SignInLogs record) is a login, a directoryAudit an audit event named by its activityDisplayName';
-- PUBLIC: it reads nothing and computes only from its arguments; the import runs it as the caller.

-- ---------------------------------------------------------------------------
-- Rejected events
-- ---------------------------------------------------------------------------
CREATE SEQUENCE ato.import_rejection_id_seq AS bigint;
COMMENT ON SEQUENCE ato.import_rejection_id_seq IS 'Ids of ato.import_rejections';

CREATE TABLE ato.import_rejections (
    id          bigint      NOT NULL DEFAULT nextval('ato.import_rejection_id_seq') PRIMARY KEY,
    rejected_at timestamptz NOT NULL DEFAULT now(),
    rejected_by text        NOT NULL DEFAULT current_user,
    provider    text        NOT NULL,
    reason      text        NOT NULL,
    sqlstate    text,
    event       jsonb,
    line        text
);
ALTER SEQUENCE ato.import_rejection_id_seq OWNED BY ato.import_rejections.id;
-- ato.apply_retention() deletes the rejections older than ato_response.retention
CREATE INDEX import_rejections_rejected_at_idx ON ato.import_rejections (rejected_at);
COMMENT ON TABLE ato.import_rejections IS
    'Identity-provider events that could not be stored, each kept whole with why: the rest of their import went on without them; kept for ato_response.retention, as the events are';
COMMENT ON COLUMN ato.import_rejections.reason IS
    'Why the event was not stored: what the mapping missed, or the error of the check that refused it';
COMMENT ON COLUMN ato.import_rejections.sqlstate IS
    'The SQLSTATE of the error that refused the event; NULL when its mapping found it unusable';
COMMENT ON COLUMN ato.import_rejections.event IS 'The event exactly as given';
COMMENT ON COLUMN ato.import_rejections.line IS 'A line of a bulk import that is not JSON, as read (event is NULL then)';
REVOKE ALL ON ato.import_rejections FROM PUBLIC;
REVOKE ALL ON SEQUENCE ato.import_rejection_id_seq FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('ato.import_rejections', '');
SELECT pg_catalog.pg_extension_config_dump('ato.import_rejection_id_seq', '');

-- ---------------------------------------------------------------------------
-- The import
-- ---------------------------------------------------------------------------

-- The mapping function of a provider, or an error naming the known ones.
CREATE FUNCTION ato.import_mapping(provider text)
RETURNS regprocedure
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    CASE lower(provider)
    WHEN 'okta' THEN RETURN 'ato.okta_event(jsonb)'::regprocedure;
    WHEN 'auth0' THEN RETURN 'ato.auth0_event(jsonb)'::regprocedure;
    WHEN 'entra' THEN RETURN 'ato.entra_event(jsonb)'::regprocedure;
    ELSE
        RAISE EXCEPTION 'unknown identity provider %', coalesce(quote_literal(provider), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The providers are okta (System Log API), auth0 (Logs API, log streams) and entra (Microsoft Graph signIn and directoryAudit, Azure Monitor exports).';
    END CASE;
END
$$;
COMMENT ON FUNCTION ato.import_mapping(text) IS
    'The mapping function of an identity provider (okta, auth0, entra); an error with the list for any other';
-- PUBLIC: it reads nothing and computes only from its arguments; the import runs it as the caller.

CREATE FUNCTION ato.import_batch(provider text, events jsonb[], lines text[] DEFAULT NULL,
                                 OUT logins bigint, OUT audit_events bigint, OUT rejected bigint,
                                 OUT duplicates bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    mapping regprocedure := ato.import_mapping(provider);
    given integer := coalesce(cardinality(lines), cardinality(events), 0);
    source text;
    half integer;
    l bigint;
    a bigint;
    r bigint;
    d bigint;
    conflict text := '';
    attempt integer;
    message text;
    state text;
    event jsonb;
BEGIN
    provider := lower(provider);
    logins := 0;
    audit_events := 0;
    rejected := 0;
    duplicates := 0;
    IF given = 0 THEN
        RETURN;
    END IF;
    IF NOT (has_table_privilege('ato.login_events', 'INSERT')
            AND has_table_privilege('ato.audit_events', 'INSERT')
            AND has_table_privilege('ato.import_rejections', 'INSERT')
            AND has_sequence_privilege('ato.event_id_seq', 'USAGE')
            AND has_sequence_privilege('ato.import_rejection_id_seq', 'USAGE')) THEN
        RAISE EXCEPTION 'permission denied to import events as %', current_user
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'The importing role needs INSERT on ato.login_events, ato.audit_events and ato.import_rejections and USAGE on ato.event_id_seq and ato.import_rejection_id_seq.';
    END IF;
    -- lines (JSON texts) are parsed once each, in the statement (OFFSET 0
    -- keeps the inlined mapping from parsing a line at every reference)
    source := CASE WHEN lines IS NOT NULL
                   THEN '(SELECT line::jsonb AS event FROM unnest($3::text[]) AS line OFFSET 0) i'
                   ELSE 'unnest($1::jsonb[]) AS i(event)' END;

    -- The whole batch in one statement; an event a check refuses (or a line
    -- that is not JSON) fails it, and then each half is tried on its own,
    -- down to the single event, which is kept in ato.import_rejections with
    -- the error.  An event stored before (its provider, id and time: the
    -- event_id indexes of 03_event_store.sql) fails it with a unique
    -- violation, and the batch is stored again ON CONFLICT DO NOTHING,
    -- skipping what is stored: a first import does not pay for the
    -- speculative insertion ON CONFLICT costs every row (a third of the bulk
    -- path's time), a second one pays it once it has met an event again.
    FOR attempt IN 1 .. 2 LOOP
    BEGIN
        EXECUTE format($sql$
            WITH m AS MATERIALIZED (
                SELECT CASE WHEN p.kind IS NULL OR p.kind NOT IN ('login', 'audit') THEN i.event END AS event, p.*,
                       CASE WHEN p.ip_address IS NOT NULL AND (p.country_code IS NOT NULL OR p.latitude IS NOT NULL)
                            THEN ato.geoip_coverage(p.ip_address) ELSE 3 END AS covered
                  FROM %s
                  LEFT JOIN LATERAL %s(i.event) p ON true),
            l AS (
                INSERT INTO ato.login_events (occurred_at, user_id, ip_address, outcome, user_agent, source,
                                              metadata, country_code, latitude, longitude, session_id)
                SELECT occurred_at, subject, ip_address, outcome, user_agent, $2, metadata,
                       CASE WHEN covered & 1 = 0 THEN country_code END,
                       CASE WHEN covered & 2 = 0 AND longitude IS NOT NULL THEN latitude END,
                       CASE WHEN covered & 2 = 0 AND latitude IS NOT NULL THEN longitude END,
                       session_id
                  FROM m WHERE kind = 'login'
                %3$s
                RETURNING 1),
            a AS (
                INSERT INTO ato.audit_events (occurred_at, actor_id, event_type, ip_address, target_type,
                                              target_id, user_agent, source, metadata, country_code,
                                              latitude, longitude, outcome, session_id)
                SELECT occurred_at, subject, event_type, ip_address, target_type, target_id, user_agent, $2,
                       metadata,
                       CASE WHEN covered & 1 = 0 THEN country_code END,
                       CASE WHEN covered & 2 = 0 AND longitude IS NOT NULL THEN latitude END,
                       CASE WHEN covered & 2 = 0 AND latitude IS NOT NULL THEN longitude END,
                       outcome, session_id
                  FROM m WHERE kind = 'audit'
                %3$s
                RETURNING 1),
            r AS (
                INSERT INTO ato.import_rejections (provider, reason, event)
                SELECT $2, coalesce(reason, 'the mapping gave no row'), event
                  FROM m WHERE kind IS NULL OR kind NOT IN ('login', 'audit')
                RETURNING 1)
            SELECT (SELECT count(*) FROM l), (SELECT count(*) FROM a), (SELECT count(*) FROM r),
                   (SELECT count(*) FROM m WHERE kind IN ('login', 'audit')) - (SELECT count(*) FROM l)
                   - (SELECT count(*) FROM a)
            $sql$, source, mapping::oid::regproc, conflict)
        INTO logins, audit_events, rejected, duplicates
        USING events, provider, lines;
        RETURN;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS message = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
        -- a conflict, a lock timeout, a lack of resources, a cancel or an
        -- internal error says nothing about the events: the import fails,
        -- to be run again, rather than rejecting good events for it
        IF state ~ '^(40|53|55P03|57|58|XX)' THEN
            RAISE;
        END IF;
    END;
    EXIT WHEN state <> '23505' OR conflict <> '';
    conflict := 'ON CONFLICT DO NOTHING';
    END LOOP;

    IF given = 1 THEN
        IF lines IS NULL THEN
            event := events[1];
        ELSE
            BEGIN
                event := lines[1]::jsonb;
            EXCEPTION WHEN OTHERS THEN
                event := NULL;
            END;
        END IF;
        INSERT INTO ato.import_rejections (provider, reason, sqlstate, event, line)
        VALUES (provider, message, state, event, CASE WHEN event IS NULL THEN lines[1] END);
        rejected := 1;
        RETURN;
    END IF;
    half := given / 2;
    SELECT b.logins, b.audit_events, b.rejected, b.duplicates INTO l, a, r, d
      FROM ato.import_batch(provider, events[1:half], lines[1:half]) b;
    logins := l; audit_events := a; rejected := r; duplicates := d;
    SELECT b.logins, b.audit_events, b.rejected, b.duplicates INTO l, a, r, d
      FROM ato.import_batch(provider, events[half + 1:], lines[half + 1:]) b;
    logins := logins + l; audit_events := audit_events + a; rejected := rejected + r; duplicates := duplicates + d;
END
$$;
COMMENT ON FUNCTION ato.import_batch(text, jsonb[], text[]) IS
    'Stores identity-provider events given one per array element, as jsonb (events) or as JSON text (lines, which wins; a line that is not JSON is rejected with its text), skipping those already stored (counted in duplicates): what ato.import_events() and the import views run';
REVOKE ALL ON FUNCTION ato.import_batch(text, jsonb[], text[]) FROM PUBLIC;

CREATE FUNCTION ato.import_events(provider text, events jsonb)
RETURNS TABLE (logins bigint, audit_events bigint, rejected bigint, duplicates bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ato.import_mapping(provider);
    IF events IS NULL THEN
        RAISE EXCEPTION 'events is NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the provider''s events as a JSON array, ''[]'' for none.';
    END IF;
    -- the envelopes the providers' APIs and exports wrap their arrays in:
    -- Microsoft Graph {"value": [...]}, Azure Monitor {"records": [...]}
    IF jsonb_typeof(events) = 'object' AND jsonb_typeof(events -> 'value') = 'array' THEN
        events := events -> 'value';
    ELSIF jsonb_typeof(events) = 'object' AND jsonb_typeof(events -> 'records') = 'array' THEN
        events := events -> 'records';
    END IF;
    IF jsonb_typeof(events) <> 'array' THEN
        RAISE EXCEPTION 'events is a JSON %, not an array', jsonb_typeof(events)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the provider''s events as a JSON array, as its API returns them; put a single event in [ ].';
    END IF;
    RETURN QUERY
        SELECT b.logins, b.audit_events, b.rejected, b.duplicates
          FROM ato.import_batch(provider, ARRAY(SELECT jsonb_array_elements(events))) b;
END
$$;
COMMENT ON FUNCTION ato.import_events(text, jsonb) IS
    'Stores a JSON array of an identity provider''s own events (okta, auth0, entra) as logins and audit events; an event that cannot be stored is counted as rejected and kept in ato.import_rejections, never aborting the others; one stored before (the same provider, event id and time) is counted in duplicates and not stored again';
REVOKE ALL ON FUNCTION ato.import_events(text, jsonb) FROM PUBLIC;
