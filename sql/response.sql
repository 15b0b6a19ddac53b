-- Response: registering the application's tables, revoke_incident's
-- containment and marking (compared with what plain UPDATEs would do), the
-- account flags behind login_gate, blocked networks, staged lifting, and the
-- bad input each of them refuses.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
-- a fresh extension: no summaries or incidents left by the earlier tests
SET client_min_messages = warning;
DROP EXTENSION ato_response CASCADE;
CREATE EXTENSION ato_response;
SET client_min_messages = notice;

-- The four shapes of the application's tables, with text, bigint and uuid
-- account ids.  Seed 004's sessions and refresh tokens:
CREATE TABLE app_sessions (id serial PRIMARY KEY, user_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz, end_reason text, incident_id uuid);
CREATE TABLE app_refresh_tokens (id serial PRIMARY KEY, user_id bigint NOT NULL,
    revoked boolean NOT NULL DEFAULT false, revoked_at timestamptz,
    revocation_reason text, revocation_incident_id text);
-- Ory Kratos's sessions (an active flag, uuid identities):
CREATE TABLE app_kratos_sessions (id serial PRIMARY KEY, identity_id uuid NOT NULL,
    active boolean NOT NULL DEFAULT true);
-- MFA factors to delete, those enrolled after a time only:
CREATE TABLE app_mfa_factors (id serial PRIMARY KEY, user_id text NOT NULL, created_at timestamptz NOT NULL);
CREATE INDEX ON app_sessions (user_id);
CREATE INDEX ON app_refresh_tokens (user_id);

-- Accounts 1..20 (text ids 'u1'.., numeric ids 1.., uuids ...0001..), three
-- sessions and two tokens each, one session already ended.
INSERT INTO app_sessions (user_id, ended_at)
SELECT 'u' || a, CASE WHEN s = 3 THEN timestamptz '2024-01-01' END
  FROM generate_series(1, 20) a, generate_series(1, 3) s;
INSERT INTO app_refresh_tokens (user_id) SELECT a FROM generate_series(1, 20) a, generate_series(1, 2);
INSERT INTO app_kratos_sessions (identity_id)
SELECT lpad(to_hex(a), 32, '0')::uuid FROM generate_series(1, 20) a;
INSERT INTO app_mfa_factors (user_id, created_at)
SELECT 'u' || a, t FROM generate_series(1, 20) a,
       unnest(ARRAY[timestamptz '2023-06-01', timestamptz '2024-05-10']) t;

SELECT ato.register_revocation_target('app_sessions', 'user_id', 'end', state_column => 'ended_at',
           reason_column => 'end_reason', incident_column => 'incident_id') AS sessions_target;
SELECT ato.register_revocation_target('app_refresh_tokens', 'user_id', 'revoke', state_column => 'revoked',
           time_column => 'revoked_at', reason_column => 'revocation_reason',
           incident_column => 'revocation_incident_id') AS tokens_target;
SELECT ato.register_revocation_target('app_kratos_sessions', 'identity_id', 'deactivate',
           state_column => 'active') AS kratos_target;
SELECT ato.register_revocation_target('app_mfa_factors', 'user_id', 'delete',
           created_column => 'created_at') AS factors_target;
SELECT target, target_name, action, state_column FROM ato.revocation_targets ORDER BY id;

-- Registration refuses what it could not run, naming the table and column.
SELECT ato.register_revocation_target(NULL, 'user_id', 'end');
SELECT ato.register_revocation_target('app_sessions', 'user_id', 'expire', state_column => 'ended_at');
SELECT ato.register_revocation_target('app_sessions', 'account', 'end', state_column => 'ended_at');
SELECT ato.register_revocation_target('app_sessions', 'user_id', 'end');
SELECT ato.register_revocation_target('app_sessions', 'user_id', 'end', state_column => 'end_reason');
SELECT ato.register_revocation_target('app_refresh_tokens', 'user_id', 'revoke', state_column => 'revoked_at');
SELECT ato.register_revocation_target('app_sessions', 'created_at', 'end', state_column => 'ended_at');
SELECT ato.register_revocation_target('app_mfa_factors', 'user_id', 'delete', state_column => 'created_at');
SELECT ato.register_revocation_target('app_sessions', 'user_id', 'end', state_column => 'ended_at',
           created_column => 'created_at');
SELECT ato.register_revocation_target('ato.incidents', 'opened_by', 'delete');
CREATE VIEW app_session_view AS SELECT * FROM app_sessions;
SELECT ato.register_revocation_target('app_session_view', 'user_id', 'end', state_column => 'ended_at');
SELECT ato.register_revocation_target('"; DROP TABLE app_sessions; --', 'user_id', 'delete');
-- A column name that needs quoting is quoted, not spliced.
CREATE TABLE "app ""odd"" tokens" ("user id" text, "Revoked?" boolean NOT NULL DEFAULT false);
INSERT INTO "app ""odd"" tokens" VALUES ('u1'), ('u2'), ('u19');
SELECT ato.register_revocation_target('"app ""odd"" tokens"', 'user id', 'revoke', state_column => 'Revoked?') > 0 AS registered;

-- revoke_incident refuses bad account lists and reasons, and stores nothing.
SELECT ato.revoke_incident(NULL, 'x');
SELECT ato.revoke_incident('{}', 'x');
SELECT ato.revoke_incident('{{u1,u2},{u3,u4}}', 'x');
SELECT ato.revoke_incident(ARRAY['u1', NULL], 'x');
SELECT ato.revoke_incident(ARRAY['u1', ''], 'x');
SELECT ato.revoke_incident(ARRAY[repeat('x', 1001)], 'x');
SELECT ato.revoke_incident(ARRAY['u1'], NULL);
SELECT ato.revoke_incident(ARRAY['u1'], '');
SELECT ato.revoke_incident(ARRAY['u1'], 'x', suspend => NULL);
SELECT count(*) AS incidents, (SELECT count(*) FROM ato.account_revocations) AS revocations FROM ato.incidents;

-- An incident over accounts 1..5 in every id form, with duplicates, an id
-- nobody has, and a reason with quotes, a newline and 10 kB of text.
-- Factors enrolled since 2024-01-01 are deleted (seed 003).
SELECT ato.revoke_incident(
           ARRAY['u3', 'u1', 'u2', 'u1', 'u4', 'u5', '1', '2', '3', '4', '5',
                 '00000000-0000-0000-0000-000000000001', '00000000000000000000000000000002',
                 'nobody', 'u3'],
           E'stuffing from 192.0.2.0/24: "it''s them"\n' || repeat('x', 10000),
           suspend => true, mfa_reenrollment_required => true,
           delete_created_after => '2024-01-01') AS incident \gset
SELECT opened_by = session_user AS by_caller, reason = E'stuffing from 192.0.2.0/24: "it''s them"\n' || repeat('x', 10000) AS reason_as_given,
       user_ids, duplicate_ids, unknown_ids, status, batches, batches_done, in_background
  FROM ato.incidents WHERE id = :'incident';

-- The marks, against what plain statements select for the same accounts.
SELECT count(*) AS sessions_ended,
       count(*) FILTER (WHERE end_reason LIKE 'stuffing from%' AND incident_id = :'incident') AS stamped
  FROM app_sessions WHERE ended_at > '2024-01-01';
SELECT array_agg(DISTINCT user_id ORDER BY user_id) AS accounts_ended
  FROM app_sessions WHERE incident_id = :'incident';
SELECT count(*) AS tokens_revoked FROM app_refresh_tokens
 WHERE revoked AND revocation_incident_id = :'incident'
   AND revoked_at = (SELECT opened_at FROM ato.incidents WHERE id = :'incident')
   AND user_id IN (1, 2, 3, 4, 5);
SELECT count(*) AS tokens_wrongly_revoked FROM app_refresh_tokens WHERE revoked AND user_id > 5;
SELECT array_agg(id ORDER BY id) AS kratos_inactive FROM app_kratos_sessions WHERE NOT active;
SELECT user_id, created_at FROM app_mfa_factors WHERE user_id IN ('u1', 'u2', 'u6') ORDER BY 1, 2;
SELECT "user id" FROM "app ""odd"" tokens" WHERE "Revoked?" ORDER BY 1;
SELECT target, rows_touched, failed_batches, last_error, mismatched_ids, accounts_done, accounts_total
  FROM ato.incident_progress WHERE incident_id = :'incident' ORDER BY target;

-- Revocation is by time: what was issued before the incident is rejected,
-- what is issued after it is not, but for a suspended account (u1 is:
-- every session of it is rejected until the suspension is lifted); an
-- unknown issue time is rejected.
SELECT ato.session_revoked('u1', (SELECT opened_at FROM ato.incidents WHERE id = :'incident') - interval '1 second') AS before,
       ato.session_revoked('u1', (SELECT opened_at FROM ato.incidents WHERE id = :'incident')) AS at_the_time,
       ato.session_revoked('u1', (SELECT opened_at FROM ato.incidents WHERE id = :'incident') + interval '1 second') AS after,
       ato.session_revoked('u1', NULL) AS unknown_time,
       ato.session_revoked('u9', '2000-01-01') AS other_account;
SELECT ato.session_revoked(NULL, now());
-- Why: the typed status, one by one and for many sessions in one call (in
-- their order), agreeing with session_revoked; a single session or device
-- revoked on its own.
SELECT refused, verdict, incident_id = :'incident' AS by_the_incident, left(reason, 20) AS reason
  FROM ato.session_status('u1', now());
SELECT ato.revoke_session('u9', 'phone-1', 'device reported lost') AS revoked,
       ato.revoke_session('u9', 'phone-1', 'again') AS again;
SELECT n, user_id, session_id, refused, verdict, incident_id = :'incident' AS by_the_incident, left(reason, 20) AS reason,
       refused = (ato.session_status(user_id, issued_at, session_id)).refused AS agrees
  FROM ato.session_statuses(ARRAY['u1', 'u9', 'u9', 'u9', 'u2'],
                            ARRAY[now(), now(), now(), NULL, '2000-01-01']::timestamptz[],
                            ARRAY[NULL, 'phone-1', 'laptop', NULL, NULL]);
SELECT ato.session_statuses(ARRAY['u1', 'u2'], ARRAY[now()]);
SELECT ato.session_statuses(ARRAY['u1'], NULL);
SELECT ato.session_status('', now());
SELECT ato.revoke_session('u9', '', 'x');

-- login_gate: suspension first; blocked networks before anything.
SELECT step, message, steps, incident_id IS NOT NULL AS by_incident FROM ato.login_gate('u1');
SELECT step, message, steps, incident_id IS NOT NULL AS by_incident FROM ato.login_gate('u9');
SELECT step, message, steps, incident_id IS NOT NULL AS by_incident FROM ato.login_gate('u9', '192.0.2.7');
SELECT ato.block_network('192.0.2.0/24', 'stuffing source', now() + interval '1 day');
SELECT step, message, steps, incident_id IS NOT NULL AS by_incident FROM ato.login_gate('u9', '192.0.2.7');
SELECT step, message, steps, incident_id IS NOT NULL AS by_incident FROM ato.login_gate('u9', '2001:db8::1');
SELECT ato.block_network('2001:db8::/32', 'expired block', now() + interval '1 day');
UPDATE ato.blocked_networks SET expires_at = now() - interval '1 minute' WHERE network = '2001:db8::/32';
SELECT step, message, steps, incident_id IS NOT NULL AS by_incident FROM ato.login_gate('u9', '2001:db8::1');
SELECT ato.unblock_network('192.0.2.0/24') AS unblocked, ato.unblock_network('192.0.2.0/24') AS again;
SELECT step, message, steps, incident_id IS NOT NULL AS by_incident FROM ato.login_gate('u9', '192.0.2.7');
SELECT ato.login_gate(NULL);
SELECT ato.login_gate('');
SELECT ato.block_network(NULL, 'x');
SELECT ato.block_network('10.0.0.0/8', 'x', '2000-01-01');

-- Lifting in stages (seed 001): two accounts first, then the rest; each
-- stage is recorded, and the incident is lifted when no suspension is left.
SELECT ato.lift_incident(:'incident', ARRAY['u1', 'u2', 'u9']) AS first_stage;
SELECT step, message, steps, incident_id IS NOT NULL AS by_incident FROM ato.login_gate('u1');
SELECT step, message, steps, incident_id IS NOT NULL AS by_incident FROM ato.login_gate('u3');
SELECT status FROM ato.incidents WHERE id = :'incident';
SELECT ato.lift_incident(:'incident', note => 'all clear') AS second_stage;
-- lifted: what was issued before the incident is still revoked, by it
SELECT refused, verdict, incident_id = :'incident' AS by_the_incident, left(reason, 20) AS reason
  FROM ato.session_status('u3', '2000-01-01');
SELECT refused, verdict FROM ato.session_status('u3', now());
SELECT status FROM ato.incidents WHERE id = :'incident';
SELECT action, user_ids, detail FROM ato.response_log WHERE action = 'lifted' ORDER BY id;
SELECT ato.lift_incident('00000000-0000-0000-0000-000000000000');
SELECT ato.lift_incident(NULL);

-- The user completes the step login_gate asked for, saying how and who.
SELECT ato.complete_step('u1', 'mfa_reenrollment_required', 'webauthn', 'u1') AS cleared,
       ato.complete_step('u1', 'mfa_reenrollment_required') AS cleared_again;
SELECT action, user_ids, detail FROM ato.response_log WHERE action = 'step_completed' ORDER BY id;
-- the clock to stamp on a session is the database's, the revocations' clock
SELECT issued_at >= now() AND issued_at <= clock_timestamp() AS issued_now FROM ato.login_gate('u1');
SELECT step, message, steps, incident_id IS NOT NULL AS by_incident FROM ato.login_gate('u1');
SELECT ato.complete_step('u1', 'suspended');
SELECT ato.complete_step('u1', 'anything');
SELECT ato.complete_step(NULL, 'reauth_required');

-- Flags set outside an incident, and their bad input.
SELECT ato.set_account_flags(ARRAY['u7', 'u8', 'u7'], password_reset_required => true, reason => 'helpdesk') AS flagged;
SELECT step, message, steps, incident_id IS NOT NULL AS by_incident FROM ato.login_gate('u7');
SELECT ato.set_account_flags(ARRAY['u7'], password_reset_required => false) AS unflagged;
SELECT step, message, steps, incident_id IS NOT NULL AS by_incident FROM ato.login_gate('u7');
SELECT ato.set_account_flags(NULL);
SELECT ato.set_account_flags('{}');
SELECT ato.set_account_flags(ARRAY[NULL::text]);

-- Revoking again is harmless: nothing is marked twice and the revocation
-- time moves on.  A dropped and an altered table fail alone, named, and
-- the other tables are still marked.
ALTER TABLE app_kratos_sessions RENAME COLUMN active TO is_active;
DROP TABLE app_mfa_factors;
SELECT ato.revoke_incident(ARRAY['u1', 'u6', '6'], 'second wave') AS second \gset
SELECT target, rows_touched, failed_batches, last_error
  FROM ato.incident_progress WHERE incident_id = :'second' ORDER BY target;
SELECT count(*) FILTER (WHERE incident_id = :'incident') AS first_incident,
       count(*) FILTER (WHERE incident_id = :'second') AS second_incident
  FROM app_sessions;
SELECT r.incident_id = :'second' AS latest_incident FROM ato.account_revocations r WHERE user_id = 'u1';
-- A dropped table is unregistered by the name it was registered under.
SELECT ato.unregister_revocation_target('public.app_mfa_factors') AS dropped_one,
       ato.unregister_revocation_target('public.app_kratos_sessions') AS altered_one,
       ato.unregister_revocation_target('public.app_kratos_sessions') AS again,
       ato.unregister_revocation_target(NULL) AS null_name;

-- Batches: 45 accounts in batches of 10 are 5 batches, and all are marked.
SET ato_response.revocation_batch_size = 10;
CREATE TABLE app_many_sessions (user_id text, ended_at timestamptz);
INSERT INTO app_many_sessions SELECT 'm' || a FROM generate_series(1, 45) a, generate_series(1, 2);
SELECT ato.register_revocation_target('app_many_sessions', 'user_id', 'end', state_column => 'ended_at') > 0 AS registered;
SELECT ato.revoke_incident(ARRAY(SELECT 'm' || a FROM generate_series(1, 45) a), 'batches') AS third \gset
SELECT batches, batches_done, status FROM ato.incidents WHERE id = :'third';
SELECT count(*) FILTER (WHERE ended_at IS NULL) AS still_open, count(*) AS sessions FROM app_many_sessions;
RESET ato_response.revocation_batch_size;
SELECT ato.unregister_revocation_target('app_many_sessions') AS unregistered,
       ato.unregister_revocation_target('app_many_sessions') AS again;

-- The outbox: the five batches at five consecutive positions, in batch
-- order, each with its accounts and the incident's revocation time; read
-- on from any position, each account at exactly one position.
SELECT min(position) - 1 AS before_third FROM ato.revocation_outbox WHERE incident_id = :'third' \gset
SELECT o.position - :before_third AS position, o.batch, o.batches, cardinality(o.user_ids) AS accounts,
       o.revoked_at = i.opened_at AS at_revocation_time
  FROM ato.revocation_outbox o JOIN ato.incidents i ON i.id = o.incident_id
 WHERE o.incident_id = :'third' ORDER BY o.position;
SELECT count(*) AS rows, count(DISTINCT user_id) AS accounts, count(DISTINCT (position, user_id)) AS distinct_rows,
       (SELECT count(*) FROM (SELECT unnest(user_ids) FROM ato.incidents WHERE id = :'third'
                              EXCEPT SELECT user_id FROM ato.revocations_since(:before_third)) x) AS missing
  FROM ato.revocations_since(:before_third) WHERE incident_id = :'third';
SELECT position - :before_third AS position, count(*) AS accounts
  FROM ato.revocations_since(:before_third + 1, max_positions => 2) GROUP BY 1 ORDER BY 1;
SELECT count(*) = max(position) AND min(position) = 1 AS positions_without_gaps,
       max(position) = (SELECT last_position FROM ato.revocation_outbox_state) AS last_given_out
  FROM ato.revocation_outbox;
-- A rolled-back incident gives its position back: the next one takes it.
SELECT last_position AS last FROM ato.revocation_outbox_state \gset
BEGIN;
SELECT ato.revoke_incident(ARRAY['rolled-back'], 'rolled back') IS NOT NULL AS opened;
SELECT last_position - :last AS taken FROM ato.revocation_outbox_state;
ROLLBACK;
SELECT ato.revoke_incident(ARRAY['u12'], 'after a rollback') AS fourth \gset
SELECT position - :last AS position, user_id FROM ato.revocations_since(:last);
-- Bad positions: NULL, negative, never given out, a bad bound.
SELECT * FROM ato.revocations_since(NULL);
SELECT * FROM ato.revocations_since(-1);
SELECT * FROM ato.revocations_since(:last + 2);
SELECT * FROM ato.revocations_since(0, 0);
SELECT * FROM ato.revocations_since(0, NULL);
-- Retention removes the batches older than ato_response.retention, as a
-- prefix of positions; asking for a removed position is an error that says
-- what to do, asking from there on is not.
SET ato_response.retention = '400d';
UPDATE ato.revocation_outbox SET recorded_at = now() - interval '401 days' WHERE position <= :before_third + 2;
SELECT ato.apply_retention() AS partitions_dropped;
SELECT discarded_through - :before_third AS discarded_through FROM ato.revocation_outbox_state;
SELECT min(position) - :before_third AS first_kept FROM ato.revocation_outbox;
SELECT count(*) FROM ato.revocations_since(:before_third + 1);
SELECT count(*) AS rows_after_the_removed FROM ato.revocations_since(:before_third + 2);
RESET ato_response.retention;

-- "No successful login on record" counts what the event store holds, not
-- only the summaries: a login after their watermark, or one stored late
-- behind it, is on record before the next refresh.  Failures and logins
-- from addresses no database places are not counted.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ('k-summarised', '81.2.69.160', 'success', now() - interval '3 hours');
SELECT ato.refresh_summaries(now() - interval '1 hour') >= 0 AS summarised;
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ('k-after-watermark', '81.2.69.160', 'success', now()),
       ('k-late', '81.2.69.160', 'success', now() - interval '2 hours'),
       ('k-failed', '81.2.69.160', 'failure', now()),
       ('k-unlocated', '10.0.0.1', 'success', now());
SELECT (SELECT count(*) FROM ato.account_countries WHERE user_id LIKE 'k-%') AS summarised_accounts,
       late_from IS NOT NULL AS late_events_noted
  FROM ato.summary_status;
SELECT ato.revoke_incident(ARRAY['k-summarised', 'k-after-watermark', 'k-late', 'k-failed', 'k-unlocated',
                                 'k-never', 'k-never'], 'known and unknown') AS known_unknown \gset
SELECT unknown_ids, duplicate_ids FROM ato.incidents WHERE id = :'known_unknown';
SELECT detail FROM ato.response_log WHERE incident_id = :'known_unknown' AND action = 'incident_opened';

-- Settings keep their bounds.
SET ato_response.revocation_channel = '';
SET ato_response.revocation_channel = 'x123456789x123456789x123456789x123456789x123456789x123456789xxxx';
SET ato_response.revocation_batch_size = 0;

-- Nothing of this is PUBLIC; a role granted revoke_incident can revoke but
-- not read the incidents, and registering needs the role's own privilege.
CREATE ROLE regress_ato_responder;
GRANT USAGE ON SCHEMA ato TO regress_ato_responder;
GRANT EXECUTE ON FUNCTION ato.revoke_incident(text[], text, boolean, boolean, boolean, boolean, timestamptz, uuid),
                          ato.register_revocation_target(regclass, name, text, name, name, name, name, name)
   TO regress_ato_responder;
CREATE TABLE app_api_keys (user_id text);
SET ROLE regress_ato_responder;
SELECT ato.revoke_incident(ARRAY['u11'], 'responder') IS NOT NULL AS revoked;
SELECT count(*) FROM ato.incidents;
SELECT ato.register_revocation_target('app_api_keys', 'user_id', 'delete');
SELECT ato.login_gate('u11');
SELECT ato.lift_incident(:'incident');
SELECT count(*) FROM ato.revocations_since(0);
RESET ROLE;
DROP TABLE app_api_keys;
DROP OWNED BY regress_ato_responder;
DROP ROLE regress_ato_responder;
-- The outbox is read by the role it is granted to (a cache's), through the
-- function only; the others (and PUBLIC) may not read it.
CREATE ROLE regress_ato_cache;
GRANT USAGE ON SCHEMA ato TO regress_ato_cache;
GRANT EXECUTE ON FUNCTION ato.revocations_since(bigint, integer) TO regress_ato_cache;
SET ROLE regress_ato_cache;
SELECT count(*) > 0 AS reads_the_outbox FROM ato.revocations_since(:before_third + 2);
SELECT count(*) FROM ato.revocation_outbox;
SELECT count(*) FROM ato.account_revocations;
RESET ROLE;
DROP OWNED BY regress_ato_cache;
DROP ROLE regress_ato_cache;
-- E-mail addresses for a table keyed by bigint: nothing of it can match,
-- and the incident says so for that table, loudly, and counts them.
SELECT ato.revoke_incident(ARRAY['alice@example.com', 'bob@example.com'], 'e-mails for numeric ids') IS NOT NULL AS opened;
SELECT it.target_name, it.rows_touched, it.mismatched_ids
  FROM ato.incident_targets it JOIN ato.incidents i ON i.id = it.incident_id
 WHERE i.reason = 'e-mails for numeric ids' AND it.mismatched_ids > 0 ORDER BY 1;
-- One transaction passes at most 16 accounts through the gate (one login's
-- transaction gates one): no session can hold the gates of many accounts and
-- keep their revocations waiting.  Gating one account again does not count.
BEGIN;
SELECT count(*) AS gated FROM generate_series(1, 16) g, LATERAL ato.login_gate('many-' || g);
SELECT step FROM ato.login_gate('many-1');
SELECT step FROM ato.login_gate('many-17');
ROLLBACK;
-- One incident id given by the caller (a proxy opening one incident across
-- shards): the incident takes it; a retry with the same id and accounts does
-- nothing again; the same id for other accounts is refused.
SELECT ato.revoke_incident(ARRAY['retry-1', 'retry-2'], 'retried', incident_id => '6d1f3a52-0000-4000-8000-000000000001')
       AS opened;
SELECT ato.revoke_incident(ARRAY['retry-2', 'retry-1', 'retry-1'], 'retried', incident_id => '6d1f3a52-0000-4000-8000-000000000001')
       AS retried;
SELECT count(*) AS incidents, (SELECT count(*) FROM ato.revocation_outbox o
                                WHERE o.incident_id = '6d1f3a52-0000-4000-8000-000000000001') AS batches
  FROM ato.incidents WHERE id = '6d1f3a52-0000-4000-8000-000000000001';
SELECT ato.revoke_incident(ARRAY['retry-3'], 'retried', incident_id => '6d1f3a52-0000-4000-8000-000000000001');
