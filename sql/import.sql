-- Importing identity-provider logs: ato.import_events() over the providers'
-- own event objects, shaped as their documentation shows them (Okta's
-- System Log LogEvent, Auth0's log objects and log-stream deliveries,
-- Microsoft Graph signIn and directoryAudit, Azure Monitor's SignInLogs
-- record), then an account takeover told by Okta, then bad input.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
SELECT ato.create_event_partitions('2019-03-01', '2019-04-01') >= 0 AS created;
SELECT ato.create_event_partitions('2024-05-01', '2024-06-01') >= 0 AS created;

-- ---------------------------------------------------------------------------
-- Okta: the documentation's example login, with its session, risk and
-- anonymiser fields, and an MFA verification.
-- ---------------------------------------------------------------------------
SELECT * FROM ato.import_events('okta', $$[
{"uuid": "f5e2b7c4-2b1c-11ee-9a1d-3d5c8e0b1a22", "published": "2024-05-02T14:41:07.339Z",
 "eventType": "user.session.start", "version": "0", "severity": "INFO",
 "legacyEventType": "core.user_auth.login_success", "displayMessage": "User login to Okta",
 "actor": {"id": "00u1qw2ertYUio3pa4s5", "type": "User", "alternateId": "jane.doe@example.com",
           "displayName": "Jane Doe", "detailEntry": null},
 "client": {"userAgent": {"rawUserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
                          "os": "Windows 10", "browser": "CHROME"},
            "zone": "null", "device": "Computer", "id": null, "ipAddress": "8.8.8.8",
            "geographicalContext": {"city": "Mountain View", "state": "California", "country": "United States",
                                    "postalCode": "94043", "geolocation": {"lat": 37.4043, "lon": -122.0748}}},
 "outcome": {"result": "SUCCESS", "reason": null},
 "target": [{"id": "0oa1gjh63g214q0Hq0g4", "type": "AppInstance", "alternateId": "Okta Admin Console",
             "displayName": "Okta Admin Console", "detailEntry": null}],
 "transaction": {"type": "WEB", "id": "ZjOmY3kH1cQ7-dWbJz0xTQAAA8k", "detail": {}},
 "debugContext": {"debugData": {"requestId": "ZjOmY3kH1cQ7-dWbJz0xTQAAA8k", "requestUri": "/idp/idx/identify",
                                "url": "/idp/idx/identify?", "risk": "{reasons=Anomalous Device, level=MEDIUM}",
                                "threatSuspected": "false",
                                "behaviors": "{New Geo-Location=NEGATIVE, New Device=POSITIVE, New IP=NEGATIVE}"}},
 "authenticationContext": {"authenticationProvider": null, "credentialProvider": null, "credentialType": null,
                           "issuer": null, "interface": null, "authenticationStep": 0,
                           "externalSessionId": "102dQ8ZwC7fR3KbqNwY3L9xZg"},
 "securityContext": {"asNumber": 15169, "asOrg": "google", "isp": "google", "domain": "google.com", "isProxy": false},
 "request": {"ipChain": [{"ip": "8.8.8.8", "geographicalContext": {"city": "Mountain View", "country": "United States"},
                          "version": "V4", "source": null}]}},
{"uuid": "0b7e8a90-2b1d-11ee-8c51-77e2f5a4c3d1", "published": "2024-05-02T14:41:19.802Z",
 "eventType": "user.authentication.auth_via_mfa", "version": "0", "severity": "INFO",
 "displayMessage": "Authentication of user via MFA",
 "actor": {"id": "00u1qw2ertYUio3pa4s5", "type": "User", "alternateId": "jane.doe@example.com", "displayName": "Jane Doe"},
 "client": {"userAgent": {"rawUserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "os": "Windows 10", "browser": "CHROME"},
            "ipAddress": "8.8.8.8"},
 "outcome": {"result": "SUCCESS"},
 "target": [{"id": "pfd1x2c3v4b5n6m7", "type": "AuthenticatorEnrollment", "alternateId": "unknown",
             "displayName": "Okta Verify"}],
 "debugContext": {"debugData": {"factor": "OKTA_VERIFY_PUSH", "factorIntent": "AUTHENTICATION"}},
 "authenticationContext": {"authenticationStep": 0, "externalSessionId": "102dQ8ZwC7fR3KbqNwY3L9xZg",
                           "credentialType": "OTP"},
 "securityContext": {"isProxy": false}}
]$$);
SELECT user_id, ip_address, outcome, occurred_at, country_code, latitude, longitude, source, session_id,
       metadata ->> 'event_type' AS event_type, metadata -> 'risk' AS risk, metadata ->> 'user_name' AS user_name
  FROM ato.login_events WHERE source = 'okta' ORDER BY id;
SELECT actor_id, event_type, outcome, occurred_at, target_type, target_id, session_id,
       metadata -> 'mfa' AS mfa, metadata -> 'targets' AS targets
  FROM ato.audit_events WHERE source = 'okta' ORDER BY id;

-- ---------------------------------------------------------------------------
-- Auth0: a successful login as the Logs API returns it, failures with a
-- wrong password and an unknown user, a brute-force block (attack
-- protection), an MFA success and a password change delivered by a log
-- stream ({"log_id", "data"}).
-- ---------------------------------------------------------------------------
SELECT * FROM ato.import_events('auth0', $$[
{"date": "2024-05-03T09:12:44.532Z", "type": "s", "description": "Successful login",
 "connection": "Username-Password-Authentication", "connection_id": "con_8Xh2Ld0YqP3mW1Zt",
 "client_id": "Kq4xT8nB2vR6yH1jL0pW3sD5fG7zC9aE", "client_name": "My App", "ip": "81.2.69.160",
 "user_agent": "Chrome 124.0.0 / Windows 10.0.0", "hostname": "example.eu.auth0.com",
 "user_id": "auth0|6634f1e2a9b8c7d6e5f40312", "user_name": "max@example.com", "strategy": "auth0",
 "strategy_type": "database", "log_id": "90020240503091244532000000000000001",
 "details": {"prompts": [], "session_id": "sX3k9QmT2vLp8RwN", "stats": {"loginsCount": 12}},
 "isMobile": false,
 "location_info": {"country_code": "GB", "country_code3": "GBR", "country_name": "United Kingdom",
                   "city_name": "London", "latitude": 51.5142, "longitude": -0.0931,
                   "time_zone": "Europe/London", "continent_code": "EU"}},
{"date": "2024-05-03T09:10:02.118Z", "type": "fp", "description": "Wrong email or password.",
 "connection": "Username-Password-Authentication", "client_name": "My App", "ip": "5.188.10.69",
 "user_agent": "python-requests/2.31.0", "user_id": "auth0|6634f1e2a9b8c7d6e5f40312",
 "user_name": "max@example.com", "log_id": "90020240503091002118000000000000002", "details": {"error": {"message": "Wrong email or password."}}},
{"date": "2024-05-03T09:10:30.000Z", "type": "fu", "description": "Wrong email or password.",
 "ip": "5.188.10.69", "user_name": "nobody@example.com", "log_id": "90020240503091030000000000000000003"},
{"date": "2024-05-03T09:11:00.000Z", "type": "limit_wc", "description": "An IP was blocked for 10 failed login attempts",
 "ip": "5.188.10.69", "user_id": "auth0|6634f1e2a9b8c7d6e5f40312", "user_name": "max@example.com",
 "log_id": "90020240503091100000000000000000004"},
{"date": "2024-05-03T09:12:50.100Z", "type": "gd_auth_succeed", "description": "Second factor authentication succeeded",
 "ip": "81.2.69.160", "user_id": "auth0|6634f1e2a9b8c7d6e5f40312", "log_id": "90020240503091250100000000000000005",
 "details": {"authenticator": {"type": "otp"}}},
{"log_id": "90020240503093000000000000000000006",
 "data": {"date": "2024-05-03T09:30:00.000Z", "type": "scp", "description": "Successful change password",
          "ip": "81.2.69.160", "user_id": "auth0|6634f1e2a9b8c7d6e5f40312", "user_name": "max@example.com"}}
]$$);
SELECT user_id, ip_address, outcome, occurred_at, country_code, session_id,
       metadata ->> 'event_type' AS event_type, metadata ->> 'user_name' AS user_name
  FROM ato.login_events WHERE source = 'auth0' ORDER BY id;
SELECT actor_id, event_type, outcome, occurred_at, metadata -> 'risk' AS risk, metadata -> 'mfa' AS mfa,
       metadata ->> 'event_id' AS event_id
  FROM ato.audit_events WHERE source = 'auth0' ORDER BY id;

-- ---------------------------------------------------------------------------
-- Microsoft Entra ID: Graph's list response ({"value": [...]}) with a
-- signIn as its documentation shows one, a wrong password, an MFA
-- interrupt and a risky sign-in from an anonymiser; then Azure Monitor's
-- export ({"records": [...]}) of a user's and a service principal's
-- sign-in and of two directory audits.
-- Its times come in three spellings.
-- ---------------------------------------------------------------------------
SELECT * FROM ato.import_events('entra', $${"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns",
 "value": [
{"id": "66ea54eb-6301-4ee5-be62-ff5a759b0100", "createdDateTime": "2024-05-04T16:03:35Z",
 "userDisplayName": "Test Contoso", "userPrincipalName": "testaccount1@contoso.com",
 "userId": "26be570a-ae82-4189-b4e2-a37c6808512d", "appId": "de8bc8b5-d9f9-48b1-a8ad-b748da725064",
 "appDisplayName": "Graph Explorer", "ipAddress": "133.11.0.1", "clientAppUsed": "Browser",
 "correlationId": "d79f5bee-5860-4832-928f-3133e22ae912", "conditionalAccessStatus": "notApplied",
 "isInteractive": true, "riskDetail": "none", "riskLevelAggregated": "none", "riskLevelDuringSignIn": "none",
 "riskState": "none", "riskEventTypes": [], "riskEventTypes_v2": [], "resourceDisplayName": "Microsoft Graph",
 "resourceId": "00000003-0000-0000-c000-000000000000",
 "status": {"errorCode": 0, "failureReason": "Other.", "additionalDetails": null},
 "deviceDetail": {"deviceId": "", "displayName": null, "operatingSystem": "Windows 10", "browser": "Edge 80.0.361",
                  "isCompliant": null, "isManaged": null, "trustType": null},
 "location": {"city": "Tokyo", "state": "Tokyo", "countryOrRegion": "JP",
              "geoCoordinates": {"altitude": null, "latitude": 35.6895, "longitude": 139.6917}},
 "appliedConditionalAccessPolicies": []},
{"id": "7a1c2d3e-0000-4ee5-be62-ff5a759b0101", "createdDateTime": "2024-05-04T16:01:02.1234567Z",
 "userPrincipalName": "testaccount1@contoso.com", "userId": "26be570a-ae82-4189-b4e2-a37c6808512d",
 "appDisplayName": "Graph Explorer", "ipAddress": "200.160.2.3", "correlationId": "e1f2a3b4-0000-4832-928f-3133e22ae913",
 "status": {"errorCode": 50126, "failureReason": "Error validating credentials due to invalid username or password."},
 "location": {"city": "Sao Paulo", "countryOrRegion": "BR", "geoCoordinates": {"latitude": -23.5475, "longitude": -46.6361}},
 "riskLevelDuringSignIn": "low", "riskEventTypes_v2": []},
{"id": "8b2d3e4f-0000-4ee5-be62-ff5a759b0102", "createdDateTime": "2024-05-04T16:02:10+00:00",
 "userPrincipalName": "testaccount1@contoso.com", "userId": "26be570a-ae82-4189-b4e2-a37c6808512d",
 "ipAddress": "133.11.0.1", "correlationId": "f2a3b4c5-0000-4832-928f-3133e22ae914",
 "status": {"errorCode": 50074, "failureReason": "Strong Authentication is required."},
 "authenticationRequirement": "multiFactorAuthentication",
 "authenticationDetails": [{"authenticationMethod": "Password", "succeeded": true},
                           {"authenticationMethod": "Mobile app notification", "succeeded": false}]},
{"id": "9c3e4f50-0000-4ee5-be62-ff5a759b0103", "createdDateTime": "2024-05-05T02:14:00Z",
 "userPrincipalName": "testaccount1@contoso.com", "userId": "26be570a-ae82-4189-b4e2-a37c6808512d",
 "ipAddress": "10.0.0.1", "sessionId": "00a1b2c3-d4e5-f607-1829-3a4b5c6d7e8f",
 "correlationId": "a3b4c5d6-0000-4832-928f-3133e22ae915",
 "status": {"errorCode": 0}, "riskLevelDuringSignIn": "high", "riskLevelAggregated": "high", "riskState": "atRisk",
 "riskEventTypes_v2": ["anonymizedIPAddress", "unfamiliarFeatures"],
 "location": {"city": "Amsterdam", "countryOrRegion": "NL", "geoCoordinates": {"latitude": 52.374, "longitude": 4.8897}},
 "mfaDetail": {"authMethod": "OATH verification code", "authDetail": null}}
]}$$);
SELECT * FROM ato.import_events('entra', $${"records": [
{"time": "2019-03-12T16:02:15.5522137Z", "resourceId": "/tenants/6a5b4c3d-0000-0000-0000-000000000000/providers/Microsoft.aadiam",
 "operationName": "Sign-in activity", "operationVersion": "1.0", "category": "SignInLogs",
 "tenantId": "6a5b4c3d-0000-0000-0000-000000000000", "resultType": "50140", "resultSignature": "None",
 "resultDescription": "This error occurred due to 'Keep me signed in' interrupt when the user was signing-in.",
 "durationMs": 0, "callerIpAddress": "81.2.69.160", "correlationId": "a75a10bd-c126-486b-9742-c03110d36262",
 "identity": "Timothy Perkins", "Level": 4, "location": "GB",
 "properties": {"id": "0231f922-93fa-4005-bb11-b344eca03c01", "createdDateTime": "2019-03-12T16:02:15.5522137+00:00",
                "userDisplayName": "Timothy Perkins", "userPrincipalName": "timothy.perkins@contoso.com",
                "userId": "5d3c2b1a-0000-0000-0000-000000000001", "appDisplayName": "Azure Portal",
                "ipAddress": "81.2.69.160",
                "status": {"errorCode": 50140, "failureReason": "This error occurred due to 'Keep me signed in' interrupt when the user was signing-in."},
                "clientAppUsed": "Browser", "deviceDetail": {"operatingSystem": "Windows 10", "browser": "Chrome 72.0.3626"},
                "location": {"city": "London", "state": "England", "countryOrRegion": "GB",
                             "geoCoordinates": {"latitude": 51.5, "longitude": -0.12}},
                "correlationId": "a75a10bd-c126-486b-9742-c03110d36262", "conditionalAccessStatus": "notApplied",
                "riskDetail": "none", "riskLevelAggregated": "none", "riskLevelDuringSignIn": "none", "riskState": "none"}},
{"time": "2019-03-12T16:10:00Z", "category": "ServicePrincipalSignInLogs", "resultType": "0",
 "callerIpAddress": "81.2.69.160",
 "properties": {"id": "1b2c3d4e-0000-0000-0000-00000000sp01", "createdDateTime": "2019-03-12T16:10:00Z",
                "servicePrincipalId": "9f8e7d6c-0000-0000-0000-0000000000sp", "servicePrincipalName": "backup-job",
                "appId": "0a1b2c3d-0000-0000-0000-000000000app", "ipAddress": "81.2.69.160", "status": {"errorCode": 0}}},
{"time": "2019-03-12T16:20:00.0000000Z", "category": "AuditLogs", "operationName": "Add member to role",
 "resultType": "", "correlationId": "b86b21ce-0000-486b-9742-c03110d36263",
 "properties": {"id": "Directory_b86b21ce", "category": "RoleManagement", "correlationId": "b86b21ce-0000-486b-9742-c03110d36263",
                "result": "success", "resultReason": "", "activityDisplayName": "Add member to role",
                "activityDateTime": "2019-03-12T16:20:00.0000000+00:00", "loggedByService": "Core Directory",
                "operationType": "Assign",
                "initiatedBy": {"user": {"id": "5d3c2b1a-0000-0000-0000-000000000001", "displayName": null,
                                         "userPrincipalName": "timothy.perkins@contoso.com", "ipAddress": "81.2.69.160"}},
                "targetResources": [{"id": "5d3c2b1a-0000-0000-0000-000000000002", "displayName": null, "type": "User",
                                     "userPrincipalName": "helper@contoso.com"},
                                    {"id": "62e90394-69f5-4237-9190-012177145e10", "displayName": "Global Administrator",
                                     "type": "Role"}]}},
{"time": "2019-03-12T16:21:00Z", "category": "AuditLogs", "operationName": "Add user",
 "properties": {"id": "Directory_c97c32df", "category": "UserManagement", "result": "failure",
                "resultReason": "Insufficient privileges", "activityDisplayName": "Add user",
                "activityDateTime": "2019-03-12T16:21:00Z",
                "initiatedBy": {"user": {"id": "5d3c2b1a-0000-0000-0000-000000000001", "ipAddress": ""}},
                "targetResources": [{"id": "5d3c2b1a-0000-0000-0000-000000000003", "type": "User",
                                     "userPrincipalName": "backdoor@contoso.com"}]}}
]}$$);
-- The provider's geography fills only what GeoIP has no answer for: the
-- bundled database knows countries, not places, and nothing of 10.0.0.1.
SELECT user_id, ip_address, outcome, occurred_at, country_code, latitude, longitude, session_id,
       metadata ->> 'event_type' AS event_type, metadata ->> 'provider_outcome' AS provider_outcome,
       metadata -> 'risk' AS risk, metadata -> 'mfa' AS mfa
  FROM ato.login_events WHERE source = 'entra' ORDER BY occurred_at;
SELECT actor_id, event_type, outcome, ip_address, target_type, target_id, session_id,
       metadata -> 'targets' AS targets, metadata ->> 'outcome_reason' AS outcome_reason
  FROM ato.audit_events WHERE source = 'entra' ORDER BY occurred_at;

-- ---------------------------------------------------------------------------
-- An account takeover told by Okta: US logins for weeks; then nine failed
-- logins from four addresses in nine minutes, a success from a new country
-- through a proxy, a privilege grant Okta denied, one it allowed, and a user
-- the attacker created.  The detections see it as it happened, and the
-- denied grant is not counted as a grant.
-- ---------------------------------------------------------------------------
CREATE TEMP TABLE story (n int, published text, event_type text, ip text, result text, proxy boolean);
INSERT INTO story
SELECT n, to_char(timestamptz '2024-05-01 08:00+00' + (n - 1) * interval '3 days', 'YYYY-MM-DD"T"HH24:MI:SS".000Z"'),
       'user.session.start', CASE WHEN n % 2 = 0 THEN '8.8.8.8' ELSE '8.8.4.4' END, 'SUCCESS', false
  FROM generate_series(1, 6) n
UNION ALL
SELECT 6 + n, to_char(timestamptz '2024-05-20 03:00+00' + (n - 1) * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS".000Z"'),
       'user.session.start', (ARRAY['81.2.69.160', '133.11.0.1', '200.160.2.3', '85.214.132.117'])[1 + n % 4], 'FAILURE', false
  FROM generate_series(1, 9) n
UNION ALL VALUES
    (16, '2024-05-20T03:09:30.000Z', 'user.session.start', '5.188.10.69', 'SUCCESS', true),
    (17, '2024-05-20T03:11:00.000Z', 'user.account.privilege.grant', '5.188.10.69', 'DENY', true),
    (18, '2024-05-20T03:12:00.000Z', 'user.account.privilege.grant', '5.188.10.69', 'SUCCESS', true),
    (19, '2024-05-20T03:14:00.000Z', 'user.lifecycle.create', '5.188.10.69', 'SUCCESS', true);
SELECT * FROM ato.import_events('okta', (
    SELECT jsonb_agg(jsonb_build_object(
               'uuid', 'story-' || n, 'published', published, 'eventType', event_type, 'version', '0',
               'actor', jsonb_build_object('id', '00uvictim0000000001', 'type', 'User',
                                           'alternateId', 'victim@example.com'),
               'client', jsonb_build_object('ipAddress', ip, 'userAgent',
                                            jsonb_build_object('rawUserAgent', 'Mozilla/5.0')),
               'outcome', jsonb_build_object('result', result,
                                             'reason', CASE result WHEN 'FAILURE' THEN 'INVALID_CREDENTIALS' END),
               'target', CASE WHEN event_type = 'user.session.start' THEN '[]'::jsonb
                              ELSE jsonb_build_array(jsonb_build_object('id', '00uattacker0000000' || n, 'type', 'User'),
                                                     jsonb_build_object('id', 'SUPER_ADMIN', 'type', 'ROLE')) END,
               'authenticationContext', jsonb_build_object('externalSessionId', 'idx-session-' || (n / 16)),
               'securityContext', jsonb_build_object('isProxy', proxy),
               'debugContext', jsonb_build_object('debugData', jsonb_build_object(
                   'risk', CASE WHEN proxy THEN '{reasons=Anonymous Proxy, New Geo-Location, level=HIGH}' END,
                   'threatSuspected', CASE WHEN proxy THEN 'true' END))) ORDER BY n)
      FROM story));
SELECT ato.refresh_summaries('2024-05-20 03:00+00') >= 0 AS refreshed;
SELECT user_id, failures, sources FROM ato.failed_login_bursts('2024-05-20', min_failures => 9)
 WHERE user_id = '00uvictim0000000001';
SELECT user_id, ip_address, country_code, suspicious_actions
  FROM ato.new_country_logins('2024-05-20', action_types => '{user.account.privilege.grant,user.lifecycle.create}')
 WHERE user_id = '00uvictim0000000001';
SELECT category, event_type, occurred_at, target_id
  FROM ato.persistence_changes('{00uvictim0000000001}', '2024-05-20');
SELECT outcome, count(*), count(DISTINCT ip_address) AS addresses, min(session_id), max(session_id)
  FROM ato.login_events WHERE user_id = '00uvictim0000000001' GROUP BY outcome ORDER BY outcome;

-- ---------------------------------------------------------------------------
-- Second-factor prompts, as each provider logs them, recorded as
-- metadata's mfa.challenge (sent, denied, approved) for
-- ato.mfa_fatigue_logins(): Okta's push sent, denied (deny_push, and a
-- failed auth_via_mfa "User rejected Okta push verify"), approved; Auth0's
-- gd_send_pn, gd_auth_rejected, gd_auth_succeed; Entra's 50074 (a second
-- factor asked for) and 500121 (it failed: declined, not answered).  A denied
-- push is a failed verification, never an MFA change.
-- ---------------------------------------------------------------------------
SELECT * FROM ato.import_events('okta', $$[
{"uuid": "6f1e2d3c-4b5a-11ef-9a1d-000000000001", "published": "2024-05-25T07:00:00.000Z",
 "eventType": "system.push.send_factor_verify_push", "version": "0", "severity": "INFO",
 "displayMessage": "Push notification sent for verification",
 "actor": {"id": "00upush0000000000001", "type": "User", "alternateId": "pat@example.com", "displayName": "Pat"},
 "client": {"ipAddress": "5.188.10.69", "userAgent": {"rawUserAgent": "python-requests/2.31.0"}},
 "outcome": {"result": "SUCCESS"},
 "target": [{"id": "opf1push000000000001", "type": "AuthenticatorEnrollment", "displayName": "Okta Verify"}],
 "debugContext": {"debugData": {"factor": "OKTA_VERIFY_PUSH", "factorIntent": "AUTHENTICATION"}},
 "authenticationContext": {"externalSessionId": "idxPush0000000000001"}},
{"uuid": "6f1e2d3c-4b5a-11ef-9a1d-000000000002", "published": "2024-05-25T07:00:30.000Z",
 "eventType": "user.mfa.okta_verify.deny_push", "version": "0", "severity": "WARN",
 "displayMessage": "User rejected Okta push verify",
 "actor": {"id": "00upush0000000000001", "type": "User", "alternateId": "pat@example.com", "displayName": "Pat"},
 "client": {"ipAddress": "5.188.10.69"}, "outcome": {"result": "SUCCESS"},
 "authenticationContext": {"externalSessionId": "idxPush0000000000001"}},
{"uuid": "6f1e2d3c-4b5a-11ef-9a1d-000000000003", "published": "2024-05-25T07:00:31.000Z",
 "eventType": "user.authentication.auth_via_mfa", "version": "0", "severity": "INFO",
 "legacyEventType": "core.user.factor.attempt_fail", "displayMessage": "Authentication of user via MFA",
 "actor": {"id": "00upush0000000000001", "type": "User", "alternateId": "pat@example.com", "displayName": "Pat"},
 "client": {"ipAddress": "5.188.10.69"}, "outcome": {"result": "FAILURE", "reason": "User rejected Okta push verify"},
 "debugContext": {"debugData": {"factor": "OKTA_VERIFY_PUSH"}},
 "authenticationContext": {"externalSessionId": "idxPush0000000000001", "credentialType": "OTP"}},
{"uuid": "6f1e2d3c-4b5a-11ef-9a1d-000000000004", "published": "2024-05-25T07:02:00.000Z",
 "eventType": "user.authentication.auth_via_mfa", "version": "0", "severity": "INFO",
 "legacyEventType": "core.user.factor.attempt_success", "displayMessage": "Authentication of user via MFA",
 "actor": {"id": "00upush0000000000001", "type": "User", "alternateId": "pat@example.com", "displayName": "Pat"},
 "client": {"ipAddress": "5.188.10.69"}, "outcome": {"result": "SUCCESS"},
 "debugContext": {"debugData": {"factor": "OKTA_VERIFY_PUSH"}},
 "authenticationContext": {"externalSessionId": "idxPush0000000000001"}}
]$$);
SELECT * FROM ato.import_events('auth0', $$[
{"date": "2024-05-25T07:10:00.000Z", "type": "gd_send_pn", "description": "Push notification sent",
 "ip": "5.188.10.69", "user_id": "auth0|push0000000000000001", "user_name": "pat@example.com",
 "log_id": "90020240525071000000000000000000001", "details": {"authenticator": {"type": "push"}}},
{"date": "2024-05-25T07:10:20.000Z", "type": "gd_auth_rejected", "description": "Push notification was rejected",
 "ip": "5.188.10.69", "user_id": "auth0|push0000000000000001", "log_id": "90020240525071020000000000000000002",
 "details": {"authenticator": {"type": "push"}}},
{"date": "2024-05-25T07:11:00.000Z", "type": "gd_auth_succeed", "description": "Second factor authentication succeeded",
 "ip": "5.188.10.69", "user_id": "auth0|push0000000000000001", "log_id": "90020240525071100000000000000000003",
 "details": {"authenticator": {"type": "push"}}}
]$$);
SELECT * FROM ato.import_events('entra', $${"value": [
{"id": "5e0d1c2b-0000-4ee5-be62-000000000001", "createdDateTime": "2024-05-25T07:20:00Z",
 "userPrincipalName": "pat@contoso.com", "userId": "4d3c2b1a-0000-0000-0000-00000000push",
 "appDisplayName": "Office 365", "ipAddress": "5.188.10.69", "correlationId": "c0000000-0000-0000-0000-000000000001",
 "status": {"errorCode": 50074, "failureReason": "Strong Authentication is required."},
 "authenticationRequirement": "multiFactorAuthentication"},
{"id": "5e0d1c2b-0000-4ee5-be62-000000000002", "createdDateTime": "2024-05-25T07:20:40Z",
 "userPrincipalName": "pat@contoso.com", "userId": "4d3c2b1a-0000-0000-0000-00000000push",
 "appDisplayName": "Office 365", "ipAddress": "5.188.10.69", "correlationId": "c0000000-0000-0000-0000-000000000001",
 "status": {"errorCode": 500121, "failureReason": "Authentication failed during strong authentication request."},
 "authenticationRequirement": "multiFactorAuthentication",
 "authenticationDetails": [{"authenticationMethod": "Password", "succeeded": true},
                           {"authenticationMethod": "Mobile app notification", "succeeded": false,
                            "authenticationStepResultDetail": "MFA denied; user declined the authentication"}]},
{"id": "5e0d1c2b-0000-4ee5-be62-000000000003", "createdDateTime": "2024-05-25T07:22:00Z",
 "userPrincipalName": "pat@contoso.com", "userId": "4d3c2b1a-0000-0000-0000-00000000push",
 "appDisplayName": "Office 365", "ipAddress": "5.188.10.69", "correlationId": "c0000000-0000-0000-0000-000000000002",
 "status": {"errorCode": 0}, "authenticationRequirement": "multiFactorAuthentication",
 "mfaDetail": {"authMethod": "Mobile app notification", "authDetail": null},
 "authenticationDetails": [{"authenticationMethod": "Password", "succeeded": true},
                           {"authenticationMethod": "Mobile app notification", "succeeded": true}]}
]}$$);
SELECT 'audit' AS kind, actor_id AS account, event_type, outcome, metadata #>> '{mfa,challenge}' AS challenge,
       metadata #>> '{mfa,factor}' AS factor
  FROM ato.audit_events WHERE actor_id IN ('00upush0000000000001', 'auth0|push0000000000000001')
UNION ALL
SELECT 'login', user_id, metadata ->> 'provider_outcome', outcome, metadata #>> '{mfa,challenge}', metadata #>> '{mfa,factor}'
  FROM ato.login_events WHERE user_id = '4d3c2b1a-0000-0000-0000-00000000push'
 ORDER BY 1, 2, 3, 4;
SELECT count(*) AS mfa_changes FROM ato.persistence_changes('{00upush0000000000001}', '2024-05-25');
SELECT user_id, approved_at, approval, denials, unanswered
  FROM ato.mfa_fatigue_logins('2024-05-25', min_denials => 1) ORDER BY approved_at;

-- ---------------------------------------------------------------------------
-- Importing the same export again stores nothing twice: each provider's
-- events are known by their own id (Okta uuid, Auth0 log_id, Entra id) and
-- time, and the second call counts them as duplicates, not as rejections.
-- Events without an id are stored each time (nothing says they are the same).
-- ---------------------------------------------------------------------------
CREATE TEMP TABLE stored_before AS
SELECT source, count(*) AS events FROM (SELECT source FROM ato.login_events UNION ALL SELECT source FROM ato.audit_events) e
 GROUP BY source;
SELECT * FROM ato.import_events('okta', (SELECT jsonb_agg(metadata_event) FROM (
    SELECT jsonb_build_object('uuid', metadata ->> 'event_id', 'published', to_char(occurred_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                              'eventType', event_type, 'actor', jsonb_build_object('id', actor_id),
                              'outcome', jsonb_build_object('result', metadata ->> 'provider_outcome')) AS metadata_event
      FROM ato.audit_events WHERE actor_id = '00upush0000000000001') x));
SELECT * FROM ato.import_events('auth0', $$[
{"date": "2024-05-25T07:10:00.000Z", "type": "gd_send_pn", "ip": "5.188.10.69", "user_id": "auth0|push0000000000000001",
 "log_id": "90020240525071000000000000000000001"},
{"log_id": "90020240525071020000000000000000002",
 "data": {"date": "2024-05-25T07:10:20.000Z", "type": "gd_auth_rejected", "ip": "5.188.10.69", "user_id": "auth0|push0000000000000001"}},
{"date": "2024-05-25T07:11:00.000Z", "type": "gd_auth_succeed", "ip": "5.188.10.69", "user_id": "auth0|push0000000000000001",
 "_id": "90020240525071100000000000000000003"},
{"date": "2024-05-25T07:12:00.000Z", "type": "s", "ip": "5.188.10.69", "user_id": "auth0|push0000000000000001",
 "log_id": "90020240525071200000000000000000004"},
{"date": "2024-05-25T07:12:00.000Z", "type": "s", "ip": "5.188.10.69", "user_id": "auth0|push0000000000000001",
 "log_id": "90020240525071200000000000000000004"}
]$$);
SELECT * FROM ato.import_events('entra', (SELECT jsonb_build_object('value', jsonb_agg(jsonb_build_object(
           'id', metadata ->> 'event_id', 'createdDateTime', occurred_at, 'userId', user_id,
           'ipAddress', host(ip_address), 'status', jsonb_build_object('errorCode', (metadata ->> 'provider_outcome')::int))))
      FROM ato.login_events WHERE user_id = '4d3c2b1a-0000-0000-0000-00000000push'));
SELECT b.source, b.events AS before, n.events AS after
  FROM stored_before b
  JOIN (SELECT source, count(*) AS events FROM (SELECT source FROM ato.login_events UNION ALL SELECT source FROM ato.audit_events) e
         GROUP BY source) n USING (source)
 ORDER BY 1;
SELECT count(*) AS rejected_as_duplicates FROM ato.import_rejections;

-- ---------------------------------------------------------------------------
-- Bad input.  The call itself is refused (with an SQLSTATE and a hint) only
-- when the provider or the array is wrong; an event that cannot be stored
-- is counted, kept with its reason, and never stops the others.
-- ---------------------------------------------------------------------------
-- (each refusal's SQLSTATE is echoed: VERBOSITY verbose would also print
-- the source line that raised it, which changes with every release)
SELECT * FROM ato.import_events('onelogin', '[]');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ato.import_events(NULL, '[]');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ato.import_events('okta', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ato.import_events('okta', '{"eventType": "user.session.start"}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ato.import_events('okta', '"[]"');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM ato.import_events('okta', '[]');
SELECT * FROM ato.import_events('OKTA', '{"value": []}');
TRUNCATE ato.import_rejections;
SELECT * FROM ato.import_events('okta', ($$[
 {"uuid": "good-1", "published": "2024-05-21T10:00:00Z", "eventType": "user.session.start",
  "actor": {"id": "00ugood"}, "client": {"ipAddress": "8.8.8.8"}, "outcome": {"result": "ALLOW"}},
 {"uuid": "bad-ip", "published": "2024-05-21T10:00:01Z", "eventType": "user.session.start",
  "actor": {"id": "00ugood"}, "client": {"ipAddress": "300.1.1.1"}, "outcome": {"result": "SUCCESS"}},
 {"uuid": "bad-time", "published": "yesterday-ish", "eventType": "user.session.start", "actor": {"id": "00ugood"},
  "outcome": {"result": "SUCCESS"}},
 {"uuid": "future", "published": "2999-01-01T00:00:00Z", "eventType": "user.session.start", "actor": {"id": "00ugood"},
  "outcome": {"result": "SUCCESS"}},
 {"uuid": "bad-outcome", "published": "2024-05-21T10:00:03Z", "eventType": "user.session.start",
  "actor": {"id": "00ugood"}, "outcome": {"result": "MAYBE"}},
 {"uuid": "no-outcome", "published": "2024-05-21T10:00:03Z", "eventType": "user.session.start",
  "actor": {"id": "00ugood"}},
 {"uuid": "skipped", "published": "2024-05-21T10:00:04Z", "eventType": "user.session.start",
  "actor": {"id": "00ugood"}, "outcome": {"result": "SKIPPED"}},
 {"uuid": "long-id", "published": "2024-05-21T10:00:05Z", "eventType": "user.session.start",
  "actor": {"id": "00u$$ || repeat('x', 1001) || $$"}, "outcome": {"result": "SUCCESS"}},
 {"uuid": "no-actor", "published": "2024-05-21T10:00:06Z", "eventType": "user.session.start", "actor": {"id": "unknown"}},
 {"uuid": "no-type", "published": "2024-05-21T10:00:07Z", "actor": {"id": "00ugood"}},
 {"uuid": "bad-geo", "published": "2024-05-21T10:00:08Z", "eventType": "user.session.start", "actor": {"id": "00ugood"},
  "outcome": {"result": "DENY"}, "client": {"ipAddress": "10.1.2.3",
  "geographicalContext": {"geolocation": {"lat": 123.4, "lon": "east"}}}},
 {"uuid": "bad-target", "published": "2024-05-21T10:00:09Z", "eventType": "user.lifecycle.create",
  "actor": {"id": "00ugood"}, "outcome": {"result": "SUCCESS"}, "target": {"id": "not-an-array"}},
 {"uuid": "numbers", "published": 1716285610000, "eventType": "user.lifecycle.create",
  "actor": {"id": 42}, "outcome": {"result": 7}},
 42, "a string", null, [], {},
 {"uuid": "good-2", "published": "2024-05-21T10:00:10.123456789Z", "eventType": "user.session.start",
  "actor": {"id": "00ugood"}, "client": {"ipAddress": "2a02:2770::1"}, "outcome": {"result": "CHALLENGE"}}
]$$)::jsonb);
SELECT user_id, ip_address, outcome, occurred_at, latitude, longitude, metadata ->> 'event_id' AS event_id
  FROM ato.login_events WHERE user_id = '00ugood' ORDER BY id;
SELECT actor_id, event_type, outcome, occurred_at, target_type, metadata -> 'targets' AS targets
  FROM ato.audit_events WHERE metadata ->> 'event_id' IN ('bad-target', 'numbers') ORDER BY id;
SELECT provider, left(reason, 90) AS reason, sqlstate, left(event::text, 40) AS event,
       rejected_by = current_user AS by_me, rejected_at <= now() AS dated
  FROM ato.import_rejections ORDER BY id;

-- A huge array, with bad events in it: every good one is stored.
SELECT * FROM ato.import_events('auth0', (
    SELECT jsonb_agg(CASE WHEN n IN (7, 12345, 19999) THEN jsonb_build_object('type', 's', 'date', 'never')
                          ELSE jsonb_build_object('type', CASE WHEN n % 10 = 0 THEN 'fp' ELSE 's' END,
                                                  'date', timestamptz '2024-05-22 00:00+00' + n * interval '1 second',
                                                  'user_id', 'auth0|bulk' || n % 1000,
                                                  'ip', '81.2.69.' || n % 256) END)
      FROM generate_series(1, 20000) n));
SELECT outcome, count(*), count(DISTINCT user_id) FROM ato.login_events WHERE user_id LIKE 'auth0|bulk%'
 GROUP BY outcome ORDER BY outcome;
SELECT count(*), min(event ->> 'date'), max(sqlstate) FROM ato.import_rejections WHERE provider = 'auth0';

-- ---------------------------------------------------------------------------
-- The bulk path: JSON lines through COPY into a provider's import view.
-- Backslashes and escapes arrive intact; a line that is not JSON, one that
-- jsonb refuses (\u0000) and an event a check refuses are rejected, a blank
-- line is skipped, and everything else is stored.
-- ---------------------------------------------------------------------------
TRUNCATE ato.import_rejections;
COPY ato.okta_import FROM STDIN (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
{"uuid": "bulk-1", "published": "2024-05-24T08:00:00Z", "eventType": "user.session.start", "actor": {"id": "00ubulk", "alternateId": "C:\\Users\\bulk \"quoted\""}, "client": {"ipAddress": "8.8.8.8", "userAgent": {"rawUserAgent": "tab\there \u00e9"}}, "outcome": {"result": "SUCCESS"}}
{"uuid": "bulk-2", "published": "2024-05-24T08:01:00Z", "eventType": "user.session.start", "actor": {"id": "00ubulk"}, "outcome": {"result": "DENY"}}
{"uuid": "bulk-3", "published": "2024-05-24T08:02:00Z", "eventType": "user.account.update_password", "actor": {"id": "00ubulk"}, "outcome": {"result": "SUCCESS"}}
this is not JSON
{"uuid": "bulk-nul", "published": "2024-05-24T08:03:00Z", "eventType": "user.session.start", "actor": {"id": "00ubulk\u0000"}}

{"uuid": "bulk-ip", "published": "2024-05-24T08:04:00Z", "eventType": "user.session.start", "actor": {"id": "00ubulk"}, "client": {"ipAddress": "8.8.8.888"}, "outcome": {"result": "SUCCESS"}}
\.
-- the same lines again: nothing stored twice, the rejected ones rejected again
COPY ato.okta_import FROM STDIN (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
{"uuid": "bulk-1", "published": "2024-05-24T08:00:00Z", "eventType": "user.session.start", "actor": {"id": "00ubulk", "alternateId": "C:\\Users\\bulk \"quoted\""}, "client": {"ipAddress": "8.8.8.8", "userAgent": {"rawUserAgent": "tab\there \u00e9"}}, "outcome": {"result": "SUCCESS"}}
{"uuid": "bulk-2", "published": "2024-05-24T08:01:00Z", "eventType": "user.session.start", "actor": {"id": "00ubulk"}, "outcome": {"result": "DENY"}}
{"uuid": "bulk-3", "published": "2024-05-24T08:02:00Z", "eventType": "user.account.update_password", "actor": {"id": "00ubulk"}, "outcome": {"result": "SUCCESS"}}
{"uuid": "bulk-ip", "published": "2024-05-24T08:04:00Z", "eventType": "user.session.start", "actor": {"id": "00ubulk"}, "client": {"ipAddress": "8.8.8.888"}, "outcome": {"result": "SUCCESS"}}
\.
SELECT user_id, outcome, ip_address, user_agent, metadata ->> 'user_name' AS user_name
  FROM ato.login_events WHERE user_id = '00ubulk' ORDER BY occurred_at;
SELECT actor_id, event_type, outcome FROM ato.audit_events WHERE actor_id = '00ubulk';
SELECT left(reason, 60) AS reason, sqlstate, line, event ->> 'uuid' AS uuid FROM ato.import_rejections ORDER BY id;
-- INSERT works as COPY does, one provider per view.
INSERT INTO ato.entra_import
SELECT jsonb_build_object('createdDateTime', '2024-05-24T09:00:00Z', 'userId', 'entra-bulk', 'ipAddress', '81.2.69.160',
                          'status', jsonb_build_object('errorCode', CASE WHEN n < 3 THEN 50126 ELSE 0 END))::text
  FROM generate_series(1, 3) n;
SELECT outcome, count(*) FROM ato.login_events WHERE user_id = 'entra-bulk' GROUP BY outcome ORDER BY outcome;
-- A load that fails inside a savepoint leaves no lines behind for the next.
BEGIN;
SAVEPOINT before_load;
INSERT INTO ato.auth0_import
SELECT CASE WHEN n = 3 THEN (1 / 0)::text
            ELSE jsonb_build_object('type', 's', 'date', '2024-05-24T10:00:00Z', 'user_id', 'auth0|stale' || n)::text END
  FROM generate_series(1, 3) n;
ROLLBACK TO SAVEPOINT before_load;
INSERT INTO ato.auth0_import VALUES ('{"type": "s", "date": "2024-05-24T10:01:00Z", "user_id": "auth0|fresh"}');
COMMIT;
SELECT user_id FROM ato.login_events WHERE user_id IN ('auth0|stale1', 'auth0|stale2', 'auth0|fresh');
-- The views hold nothing; their triggers fire only as the views' triggers.
SELECT count(*) FROM ato.okta_import;
CREATE TABLE regress_not_a_view (event text);
CREATE TRIGGER t BEFORE INSERT ON regress_not_a_view FOR EACH ROW EXECUTE FUNCTION ato.import_line('okta');
INSERT INTO regress_not_a_view VALUES ('{}');
\echo :LAST_ERROR_SQLSTATE
DROP TABLE regress_not_a_view;

-- ---------------------------------------------------------------------------
-- Privileges: not PUBLIC; a loader needs what a bulk load needs, and is told
-- so; it cannot read what it rejected unless granted.
-- ---------------------------------------------------------------------------
CREATE ROLE regress_ato_idp_loader;
GRANT USAGE ON SCHEMA ato TO regress_ato_idp_loader;
SET ROLE regress_ato_idp_loader;
SELECT * FROM ato.import_events('okta', '[]');
RESET ROLE;
GRANT EXECUTE ON FUNCTION ato.import_events(text, jsonb), ato.import_batch(text, jsonb[], text[]) TO regress_ato_idp_loader;
SET ROLE regress_ato_idp_loader;
SELECT * FROM ato.import_events('okta', '[{"published": "2024-05-23T00:00:00Z"}]');
RESET ROLE;
GRANT INSERT ON ato.login_events, ato.audit_events, ato.import_rejections TO regress_ato_idp_loader;
GRANT USAGE ON SEQUENCE ato.event_id_seq, ato.import_rejection_id_seq TO regress_ato_idp_loader;
SET ROLE regress_ato_idp_loader;
SELECT * FROM ato.import_events('okta', '[{"published": "2024-05-23T00:00:00Z", "eventType": "user.session.start",
                                           "actor": {"id": "00uloaded"}, "outcome": {"result": "SUCCESS"}}, 1]');
COPY ato.okta_import FROM STDIN (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
{"published": "2024-05-23T00:00:01Z", "eventType": "user.session.start", "actor": {"id": "00uloaded"}, "outcome": {"result": "SUCCESS"}}
\.
RESET ROLE;
GRANT INSERT ON ato.okta_import TO regress_ato_idp_loader;
SET ROLE regress_ato_idp_loader;
COPY ato.okta_import FROM STDIN (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
{"published": "2024-05-23T00:00:01Z", "eventType": "user.session.start", "actor": {"id": "00uloaded"}, "outcome": {"result": "SUCCESS"}}
\.
SELECT count(*) FROM ato.import_rejections;
RESET ROLE;
SELECT rejected_by, reason FROM ato.import_rejections WHERE rejected_by <> current_user;
SELECT count(*) FROM ato.login_events WHERE user_id = '00uloaded';
SELECT has_table_privilege('public', 'ato.import_rejections', 'SELECT') AS public_reads_rejections,
       has_function_privilege('public', 'ato.import_events(text, jsonb)', 'EXECUTE') AS public_imports,
       has_table_privilege('public', 'ato.okta_import', 'INSERT') AS public_bulk_imports;
DROP OWNED BY regress_ato_idp_loader;
DROP ROLE regress_ato_idp_loader;
