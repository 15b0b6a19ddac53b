-- The incident record (issue 16): its lifecycle from the report to the
-- close, with every change in an append-only history; its scope changing
-- (accounts added are contained as the first ones, accounts found
-- unaffected are released); the preview of a revocation, which changes
-- nothing and counts what the revocation then does; the retrospective.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION ato_response CASCADE;
CREATE EXTENSION ato_response;
DROP TABLE IF EXISTS rec_sessions, rec_tokens, rec_factors;
SET client_min_messages = notice;

-- The application: sessions ended, refresh tokens (bigint ids) revoked,
-- factors enrolled in the last hour deleted.
CREATE TABLE rec_sessions (id serial PRIMARY KEY, user_id text NOT NULL, ended_at timestamptz,
                           end_reason text, incident uuid);
CREATE TABLE rec_tokens (id serial PRIMARY KEY, user_id bigint NOT NULL, revoked boolean NOT NULL DEFAULT false);
CREATE TABLE rec_factors (id serial PRIMARY KEY, user_id text NOT NULL, created_at timestamptz NOT NULL);
SELECT ato.register_revocation_target('rec_sessions', 'user_id', 'end', state_column => 'ended_at',
                                      reason_column => 'end_reason', incident_column => 'incident') AS sessions_target;
SELECT ato.register_revocation_target('rec_tokens', 'user_id', 'revoke', state_column => 'revoked') AS tokens_target;
SELECT ato.register_revocation_target('rec_factors', 'user_id', 'delete', created_column => 'created_at') AS factors_target;
INSERT INTO rec_sessions (user_id) SELECT u FROM unnest('{u1,u1,u2,u3,u4,u5,u6}'::text[]) u;
INSERT INTO rec_sessions (user_id, ended_at) VALUES ('u1', now() - interval '1 day');
INSERT INTO rec_tokens (user_id) VALUES (1), (1), (2), (7);
INSERT INTO rec_factors (user_id, created_at) VALUES
    ('u1', now() - interval '10 minutes'), ('u1', now() - interval '30 days'), ('u2', now() - interval '5 minutes');

-- The story: the attacker's network 5.188.10.0/24 fails on u1 and gets in,
-- changes u1's e-mail; u2 and u3 log in from home; the rule finds u1.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
SELECT u, '81.2.69.160', 'success', now() - interval '3 days' FROM unnest('{u1,u2,u3}'::text[]) u;
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at) VALUES
    ('u1', '5.188.10.7', 'failure', now() - interval '40 minutes'),
    ('u1', '5.188.10.7', 'success', now() - interval '38 minutes'),
    ('u2', '5.188.10.8', 'success', now() - interval '20 minutes');
INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address, target_type, target_id) VALUES
    ('u1', 'user.email_changed', now() - interval '35 minutes', '5.188.10.7', 'user', 'u1');
SELECT ato.run_detection('new_country_logins') AS findings;
SELECT id AS alert FROM ato.alerts WHERE finding = 'u1 RU' \gset

-- ---------------------------------------------------------------------------
-- The report, and its bad input
-- ---------------------------------------------------------------------------
\set incident 11111111-1111-1111-1111-111111111111
SELECT ato.report_incident('u1 logged in from RU and changed its e-mail', 'new_country_logins', 'alert',
                           alert_id => :alert, incident_id => :'incident') = :'incident' AS reported;
SELECT stage, report_channel, reported_by, alert_id = :alert AS alert_linked, contained_at IS NULL AS not_contained
  FROM ato.incident_records WHERE incident_id = :'incident';
SELECT ato.report_incident(NULL, 'alice', 'user_report');
SELECT ato.report_incident(' ', 'alice', 'user_report');
SELECT ato.report_incident('x', NULL, 'user_report');
SELECT ato.report_incident('x', 'alice', NULL);
SELECT ato.report_incident('x', 'alice', 'carrier_pigeon');
SELECT ato.report_incident('x', 'alice', 'user_report', reported_at => now() + interval '1 hour');
SELECT ato.report_incident('x', 'alice', 'user_report', reported_at => 'infinity');
SELECT ato.report_incident('x', 'alice', 'alert', alert_id => -1);
SELECT ato.report_incident('x', 'alice', 'user_report', incident_id => :'incident');

-- Not contained yet: the stages after containment, and scope changes, wait.
SELECT ato.advance_incident(:'incident', 'eradicated');
SELECT ato.advance_incident(:'incident', 'contained');
SELECT ato.advance_incident(:'incident', 'reported');
SELECT ato.add_incident_accounts(:'incident', '{u2}', 'same network');
SELECT ato.release_incident_accounts(:'incident', '{u1}', 'not affected');
-- unknown and NULL incidents
SELECT ato.advance_incident('00000000-0000-0000-0000-000000000000', 'confirmed');
SELECT ato.advance_incident(NULL, 'confirmed');
SELECT ato.advance_incident(:'incident', NULL);
SELECT ato.set_root_cause('00000000-0000-0000-0000-000000000000', 'phishing');
SELECT ato.add_incident_accounts(NULL, '{u2}', 'x');
SELECT * FROM ato.incident_history('00000000-0000-0000-0000-000000000000');

-- ---------------------------------------------------------------------------
-- The preview: what revoke_incident would do, changing nothing
-- ---------------------------------------------------------------------------
CREATE TEMP TABLE before_preview AS
SELECT (SELECT md5(string_agg(s::text, ',' ORDER BY s.id)) FROM rec_sessions s) AS sessions,
       (SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM rec_tokens t) AS tokens,
       (SELECT md5(string_agg(f::text, ',' ORDER BY f.id)) FROM rec_factors f) AS factors,
       (SELECT count(*) FROM ato.account_flags) AS flags,
       (SELECT count(*) FROM ato.account_revocations) AS revocations,
       (SELECT count(*) FROM ato.incidents) AS incidents,
       (SELECT count(*) FROM ato.revocation_outbox) AS outbox,
       (SELECT count(*) FROM ato.response_log) AS log;
SELECT item, name, rows, would_set - 'deletes' AS would_set, would_set ? 'deletes' AS deletes, note
  FROM ato.preview_revocation('{u1,u1,1,u9}', suspend => true, delete_created_after => now() - interval '1 hour');
CREATE TEMP TABLE preview AS
SELECT name, rows FROM ato.preview_revocation('{u1,1,u9}', suspend => true,
                                              delete_created_after => now() - interval '1 hour')
 WHERE item = 'table';
SELECT (SELECT md5(string_agg(s::text, ',' ORDER BY s.id)) FROM rec_sessions s) = b.sessions AS sessions_unchanged,
       (SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM rec_tokens t) = b.tokens AS tokens_unchanged,
       (SELECT md5(string_agg(f::text, ',' ORDER BY f.id)) FROM rec_factors f) = b.factors AS factors_unchanged,
       (SELECT count(*) FROM ato.account_flags) = b.flags AS flags_unchanged,
       (SELECT count(*) FROM ato.account_revocations) = b.revocations AS revocations_unchanged,
       (SELECT count(*) FROM ato.incidents) = b.incidents AS incidents_unchanged,
       (SELECT count(*) FROM ato.revocation_outbox) = b.outbox AS outbox_unchanged,
       (SELECT count(*) FROM ato.response_log) = b.log AS log_unchanged
  FROM before_preview b;
SELECT * FROM ato.preview_revocation(NULL);
SELECT * FROM ato.preview_revocation('{}');
SELECT * FROM ato.preview_revocation('{u1,NULL}');
SELECT * FROM ato.preview_revocation('{u1}', suspend => NULL);
SELECT count(*) FROM ato.preview_revocation(ARRAY[repeat('x', 1001)]);

-- ---------------------------------------------------------------------------
-- Containment records the stage itself; the preview's counts are what it did
-- ---------------------------------------------------------------------------
SELECT ato.revoke_incident('{u1,1,u9}', 'takeover of u1', suspend => true,
                           delete_created_after => now() - interval '1 hour', incident_id => :'incident') = :'incident' AS contained;
SELECT p.name, p.rows AS previewed, t.rows_touched AS touched, p.rows = t.rows_touched AS same
  FROM preview p JOIN ato.incident_targets t ON t.incident_id = :'incident' AND t.target_name = p.name
 ORDER BY p.name;
SELECT stage, contained_at = (SELECT opened_at FROM ato.incidents WHERE id = :'incident') AS contained_at_revocation
  FROM ato.incident_records WHERE incident_id = :'incident';
-- confirmed may follow contained; the stage stays contained.  Confirmed and
-- contained, the users' notices are written, once per account
SELECT count(*) AS notices_before FROM ato.user_notifications WHERE incident_id = :'incident';
SELECT ato.advance_incident(:'incident', 'confirmed', 'the user confirms: not them') AS stage;
SELECT ato.advance_incident(:'incident', 'confirmed');
SELECT user_id, count(*) AS notices FROM ato.user_notifications WHERE incident_id = :'incident' GROUP BY 1 ORDER BY 1;
-- an incident opened without a report gets its record at containment
\set other 22222222-2222-2222-2222-222222222222
SELECT ato.revoke_incident('{u5}', 'support says u5 is phished', incident_id => :'other') = :'other' AS opened;
-- reported and confirmed before it is contained: the notices come after
-- containment (never in its fenced transaction), from write_owed_notices()
\set early 44444444-4444-4444-4444-444444444444
SELECT ato.report_incident('u6 lost their phone to a thief', 'helpdesk', 'support_ticket', incident_id => :'early') = :'early' AS reported;
SELECT ato.advance_incident(:'early', 'confirmed', 'u6 confirms') AS stage;
SELECT count(*) AS notices_before_containment FROM ato.user_notifications WHERE incident_id = :'early';
SELECT ato.revoke_incident('{u6}', 'u6''s phone', incident_id => :'early') = :'early' AS contained;
SELECT count(*) AS notices_at_containment FROM ato.user_notifications WHERE incident_id = :'early';
SELECT ato.write_owed_notices() AS incidents_written_for;
SELECT user_id, count(*) AS notices FROM ato.user_notifications WHERE incident_id = :'early' GROUP BY 1 ORDER BY 1;
SELECT stage, report_channel IS NULL AS no_channel, reported_by = session_user AS reported_by_opener,
       reported_at = contained_at AS reported_at_opening
  FROM ato.incident_records WHERE incident_id = :'other';

-- ---------------------------------------------------------------------------
-- Scope: an account added late is contained as the first ones were
-- ---------------------------------------------------------------------------
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at) VALUES ('u2', '5.188.10.8', 'success', now());
SELECT ato.add_incident_accounts(:'incident', '{u2,u1,u7}', 'logged in from the attacker''s network') AS added;
SELECT user_id, suspended, reauth_required, incident_id = :'incident' AS this_incident, reason
  FROM ato.account_flags WHERE user_id IN ('u1', 'u2') ORDER BY user_id;
SELECT user_id, revoked_at > (SELECT opened_at FROM ato.incidents WHERE id = :'incident') AS revoked_after_opening,
       incident_id = :'incident' AS this_incident
  FROM ato.account_revocations WHERE user_id IN ('u1', 'u2') ORDER BY user_id;
-- u2's session ended with the incident's reason and id, its new factor deleted
SELECT user_id, ended_at IS NOT NULL AS ended, end_reason, incident = :'incident' AS this_incident
  FROM rec_sessions WHERE user_id = 'u2';
SELECT user_id, count(*) AS factors FROM rec_factors GROUP BY user_id ORDER BY user_id;
SELECT batch, batches, user_ids, incident_id = :'incident' AS this_incident
  FROM ato.revocation_outbox ORDER BY position;
SELECT target_name, rows_touched FROM ato.incident_targets WHERE incident_id = :'incident' ORDER BY target_name;
SELECT status, batches_done, batches, user_ids AS initial_scope FROM ato.incidents WHERE id = :'incident';
-- the gate asks u2 for the incident's steps
SELECT step, incident_id = :'incident' AS this_incident FROM ato.login_gate('u2');
-- again: nothing to add
SELECT ato.add_incident_accounts(:'incident', '{u2}', 'again') AS added;
-- bad input
SELECT ato.add_incident_accounts(:'incident', NULL, 'x');
SELECT ato.add_incident_accounts(:'incident', '{}', 'x');
SELECT ato.add_incident_accounts(:'incident', '{u3,NULL}', 'x');
SELECT ato.add_incident_accounts(:'incident', '{u3,""}', 'x');
SELECT ato.add_incident_accounts(:'incident', '{{u3},{u4}}', 'x');
SELECT ato.add_incident_accounts(:'incident', '{u3,u4,u3}', 'x');
SELECT ato.add_incident_accounts(:'incident', '{u3}', NULL);
SELECT ato.add_incident_accounts(:'incident', '{u3}', '');
SELECT ato.add_incident_accounts(:'incident', ARRAY(SELECT 'h' || g FROM generate_series(1, 1025) g), 'too many');
SELECT count(*) AS huge_left_no_trace FROM ato.account_flags WHERE user_id LIKE 'h%';

-- Released: found unaffected, their suspension lifted as lifting does
SELECT ato.release_incident_accounts(:'incident', '{1}', 'token owner 1 was the tester') AS released;
SELECT user_id, suspended, reauth_required FROM ato.account_flags WHERE user_id = '1';
SELECT ato.release_incident_accounts(:'incident', '{1}', 'again') AS released;
SELECT ato.release_incident_accounts(:'incident', '{u3}', 'never in it');
SELECT ato.release_incident_accounts(:'incident', '{u2,u2}', 'twice');
SELECT ato.release_incident_accounts(:'incident', '{u2}', NULL);
SELECT incident_id = :'incident' AS this_incident, user_id, initial, added_by = session_user AS added_by_me,
       released_at IS NOT NULL AS released, release_reason, in_scope
  FROM ato.incident_accounts WHERE incident_id = :'incident' ORDER BY user_id;
-- evidence and the timeline take in the added account
SELECT accounts FROM ato.incident_scope(:'incident');
-- the incident is confirmed: the accounts added since are owed a notice,
-- which the worker's step writes (not the addition, which holds the fence)
SELECT ato.incident_accounts_in_scope(:'incident') AS in_scope;
SELECT user_id FROM ato.user_notifications WHERE incident_id = :'incident' ORDER BY user_id;
SELECT ato.write_owed_notices() AS incidents_written_for;
SELECT user_id FROM ato.user_notifications WHERE incident_id = :'incident' ORDER BY user_id;
SELECT ato.write_owed_notices() AS nothing_owed;
-- lifting the whole incident lifts the added account too
SELECT ato.lift_incident(:'incident', '{u2}', 'u2 re-verified') AS lifted;
SELECT user_id, suspended FROM ato.account_flags WHERE user_id IN ('u1', 'u2') ORDER BY user_id;

-- ---------------------------------------------------------------------------
-- The rest of the lifecycle, and what makes no sense
-- ---------------------------------------------------------------------------
SELECT ato.set_root_cause(:'incident', 'credential_stuffing', 'password from an old breach');
SELECT ato.set_root_cause(:'incident', 'phishing', 'the user entered it on a look-alike page');
SELECT ato.set_root_cause(:'incident', NULL);
SELECT ato.set_root_cause(:'incident', 'bad_luck');
SELECT ato.add_follow_up(:'incident', 'push MFA enrolment to u1 and u2', 'support', current_date + 7) AS follow_up \gset
SELECT ato.add_follow_up(:'incident', 'alert on e-mail changes from new countries', 'detection team') AS follow_up2 \gset
SELECT ato.add_follow_up(:'incident', NULL, 'x');
SELECT ato.add_follow_up(:'incident', 'x', '');
SELECT ato.add_follow_up(:'incident', 'x', 'y', current_date - 1);
SELECT ato.complete_follow_up(:follow_up, 'mails sent');
SELECT ato.complete_follow_up(:follow_up);
SELECT ato.complete_follow_up(-1);
SELECT ato.complete_follow_up(NULL);
-- skipping and going back
SELECT ato.advance_incident(:'incident', 'recovered');
SELECT ato.advance_incident(:'incident', 'closed');
SELECT ato.advance_incident(:'incident', 'eradicated', 'secrets rotated, attacker''s factor removed') AS stage;
SELECT ato.advance_incident(:'incident', 'eradicated');
SELECT ato.advance_incident(:'incident', 'confirmed');
-- recovery waits for the suspensions to be lifted
SELECT ato.advance_incident(:'incident', 'recovered');
SELECT ato.lift_incident(:'incident', note => 'stage 2: everyone') AS lifted;
SELECT ato.advance_incident(:'incident', 'recovered', at => now() - interval '1 day');
SELECT ato.advance_incident(:'incident', 'recovered', at => now() + interval '1 day');
SELECT ato.advance_incident(:'incident', 'recovered') AS stage;
-- an account found after recovery is a new incident
SELECT ato.add_incident_accounts(:'incident', '{u6}', 'late');
SELECT ato.advance_incident(:'incident', 'closed', 'retrospective held') AS stage;
-- closed: nothing changes but follow-ups
SELECT ato.advance_incident(:'incident', 'closed');
SELECT ato.set_root_cause(:'incident', 'insider');
SELECT ato.add_incident_accounts(:'incident', '{u6}', 'late');
SELECT ato.release_incident_accounts(:'incident', '{u1}', 'late');
-- (a retry of its containment does nothing again)
SELECT ato.revoke_incident('{1,u1,u9}', 'takeover of u1', incident_id => :'incident') = :'incident' AS retried;
SELECT ato.complete_follow_up(:follow_up2, 'rule added');
SELECT done_at IS NOT NULL AS completed_after_close FROM ato.incident_follow_ups WHERE id = :follow_up2;
SELECT ato.add_follow_up(:'incident', 'rehearse the runbook', 'on-call') > 0 AS added_after_close;
-- a false alarm closes uncontained, with a note
\set alarm 33333333-3333-3333-3333-333333333333
SELECT ato.report_incident('u4 says someone logged in', 'u4', 'user_report', incident_id => :'alarm') = :'alarm' AS reported;
SELECT ato.advance_incident(:'alarm', 'closed');
SELECT ato.advance_incident(:'alarm', 'closed', 'u4 forgot the login from their tablet') AS stage;
-- and is not contained afterwards
SELECT ato.revoke_incident('{u4}', 'second thoughts', incident_id => :'alarm');
SELECT count(*) AS u4_untouched FROM ato.account_flags WHERE user_id = 'u4';

-- ---------------------------------------------------------------------------
-- The history: every change, who and when, append-only
-- ---------------------------------------------------------------------------
SELECT change, stage, changed_by = session_user AS by_me, changed_as = current_user AS as_me,
       detail - 'at' - 'reported_at' - 'due' AS detail, (detail ->> 'due')::date = current_date + 7 AS due_in_a_week, note
  FROM ato.incident_history(:'incident');
SELECT bool_and(h.at >= r.reported_at - interval '1 second') AS in_time_order
  FROM ato.incident_history(:'incident') h, ato.incident_records r WHERE r.incident_id = :'incident';
UPDATE ato.incident_changes SET note = 'rewritten' WHERE incident_id = :'incident';
DELETE FROM ato.incident_changes WHERE incident_id = :'incident';
TRUNCATE ato.incident_changes;
DELETE FROM ato.incident_scope_changes;
-- who: the role acted as, beside the session's
CREATE ROLE regress_record_oncall;
GRANT USAGE ON SCHEMA ato TO regress_record_oncall;
GRANT EXECUTE ON FUNCTION ato.add_follow_up(uuid, text, text, date) TO regress_record_oncall;
SET ROLE regress_record_oncall;
SELECT ato.add_follow_up(:'incident', 'write the post-mortem', 'oncall') > 0 AS added;
SELECT ato.set_root_cause(:'incident', 'unknown');
SELECT * FROM ato.incident_records;
RESET ROLE;
SELECT changed_by = session_user AS by_session, changed_as FROM ato.incident_changes
 WHERE incident_id = :'incident' ORDER BY id DESC LIMIT 1;
DROP OWNED BY regress_record_oncall;
DROP ROLE regress_record_oncall;

-- ---------------------------------------------------------------------------
-- The timeline and the retrospective
-- ---------------------------------------------------------------------------
SELECT kind, accounts, regexp_replace(replace(detail, 'by ' || session_user, 'by me'), 'due [0-9-]+', 'due <date>') AS detail
  FROM ato.incident_timeline(:'incident')
 WHERE ref LIKE 'incident_changes:%' OR kind IN ('incident opened', 'alert', 'contained');
SELECT section, measure, duration IS NOT NULL AS has_duration, duration >= interval '0' AS not_negative, amount,
       detail ->> 'fired' AS fired
  FROM ato.incident_retrospective(:'incident');
-- the measures from the record: the gap from the first failure (40 minutes
-- ago) to the alert and to the opening; the scope's accuracy
SELECT r.duration BETWEEN interval '39 minutes' AND interval '41 minutes' AS gap_to_opening_about_40_minutes
  FROM ato.incident_retrospective(:'incident') r WHERE r.measure = 'first attacker event to opening';
SELECT r.measure, r.detail - 'opened_at' AS detail FROM ato.incident_retrospective(:'incident') r
 WHERE r.section = 'scope' ORDER BY r.measure;
SELECT section, measure, duration IS NOT NULL AS has_duration, amount
  FROM ato.incident_retrospective(:'alarm') WHERE section <> 'detection rules';
SELECT * FROM ato.incident_retrospective(NULL);
SELECT * FROM ato.incident_retrospective('00000000-0000-0000-0000-000000000000');

-- ---------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC
-- ---------------------------------------------------------------------------
SELECT p.oid::regprocedure AS function_public
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'ato' AND has_function_privilege('public', p.oid, 'EXECUTE')
   AND p.proname IN ('report_incident', 'advance_incident', 'set_root_cause', 'add_follow_up', 'complete_follow_up',
                     'incident_history', 'add_incident_accounts', 'release_incident_accounts', 'contain_incident_accounts',
                     'preview_revocation', 'preview_revocation_targets', 'incident_retrospective', 'on_incident_confirmed',
                     'record_containment', 'calling_role', 'incident_record', 'check_scope_change', 'check_record_text',
                     'refuse_change');
SELECT c.relname AS table_public FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'ato' AND c.relname LIKE 'incident_%'
   AND (has_table_privilege('public', c.oid, 'SELECT') OR has_table_privilege('public', c.oid, 'INSERT'));
SELECT p.oid::regprocedure AS uncommented
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'ato' AND obj_description(p.oid, 'pg_proc') IS NULL;
SELECT p.oid::regprocedure AS definer_without_search_path
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'ato' AND p.prosecdef
   AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c = 'search_path=pg_catalog, pg_temp');

DROP TABLE rec_sessions, rec_tokens, rec_factors;
