-- install/sections/14_user_notifications.sql: telling the users: the application's hooks (src/hooks.c), one notice per account and incident, its outbox for the application's mailer, recovery tokens, retention, the notices on the timeline.
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- User notifications (seed 004: "sent as soon as the affected account list
-- is confirmed ... what happened ... what you have done ... what the user
-- should do ... a direct link to the recovery flow ... account-identifying
-- information that a phisher would not have"; seeds 000 and 002: notify
-- out-of-band, on a secondary channel).
--
-- ato.notify_users() writes one notice per account and incident, exactly
-- once however often or concurrently it is called, and one outbox row for
-- it.  The application's mailer claims outbox rows (SKIP LOCKED, with a
-- lease), sends them and marks them sent or failed; a failure is retried
-- with backoff.  The recovery token is made when a row is claimed and handed
-- to the mailer only: the database keeps its SHA-256, and the application's
-- recovery endpoint redeems it with ato.redeem_recovery_token().
-- ---------------------------------------------------------------------------

-- The hooks: src/hooks.c checks and calls them.
CREATE FUNCTION ato.check_hook(hook regprocedure, returns regtype, caller text)
RETURNS void
AS 'MODULE_PATHNAME', 'ato_check_hook'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION ato.check_hook(regprocedure, regtype, text) IS
    'An error unless the hook is a function of the application of one text argument returning that type, owned by the role that asks (as SET ROLE made it): the registration functions'' check';
REVOKE ALL ON FUNCTION ato.check_hook(regprocedure, regtype, text) FROM PUBLIC;

CREATE FUNCTION ato.call_hook(hook regprocedure, returns regtype, user_id text)
RETURNS text
AS 'MODULE_PATHNAME', 'ato_call_hook'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION ato.call_hook(regprocedure, regtype, text) IS
    'The hook''s value for the account, as text, called as the hook''s owner in a security-restricted operation with search_path pinned (at most 2000 bytes)';
REVOKE ALL ON FUNCTION ato.call_hook(regprocedure, regtype, text) FROM PUBLIC;

CREATE TABLE ato.notification_hooks (
    name text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('account_detail', 'contact')),
    hook regprocedure NOT NULL,
    priority integer NOT NULL DEFAULT 100,
    registered_at timestamptz NOT NULL DEFAULT now(),
    registered_by name NOT NULL,
    CHECK ((kind = 'account_detail') = (name = 'account_detail'))
);
COMMENT ON TABLE ato.notification_hooks IS
    'The application''s functions a notice is written with: account_detail (what identifies the account to its user) and the contact channels (a secondary e-mail address, a phone for SMS), tried in priority order';
COMMENT ON COLUMN ato.notification_hooks.name IS 'account_detail, or the channel''s name (sms, secondary_email, ...), which the mailer reads in the outbox';
SELECT pg_catalog.pg_extension_config_dump('ato.notification_hooks', '');

CREATE FUNCTION ato.check_short_text(caller text, argument text, value text, max_length integer, may_be_null boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF value IS NULL AND NOT may_be_null THEN
        RAISE EXCEPTION '%: % must not be NULL', caller, argument
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = format('Pass %s as text of at most %s characters.', argument, max_length);
    END IF;
    IF value = '' THEN
        RAISE EXCEPTION '%: % must not be empty', caller, argument
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Pass %s as text of at most %s characters%s.', argument, max_length,
                                CASE WHEN may_be_null THEN ', or leave it out' ELSE '' END);
    END IF;
    IF length(value) > max_length THEN
        RAISE EXCEPTION '%: % is % characters long, more than %', caller, argument, length(value), max_length
            USING ERRCODE = 'string_data_right_truncation',
                  HINT = format('Shorten it to %s characters; it is shown to responders as it is.', max_length);
    END IF;
    RETURN value;
END;
$$;
COMMENT ON FUNCTION ato.check_short_text(text, text, text, integer, boolean) IS
    'The one check of a short text argument of the notification and downstream functions: NULL 22004 (unless allowed), empty 22023, longer than max_length 22001, naming caller and argument; returns the value';
REVOKE ALL ON FUNCTION ato.check_short_text(text, text, text, integer, boolean) FROM PUBLIC;

CREATE FUNCTION ato.register_account_detail(hook regprocedure)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ato.check_hook(hook, 'text'::regtype, 'register_account_detail');
    INSERT INTO ato.notification_hooks AS h (name, kind, hook, registered_by)
    VALUES ('account_detail', 'account_detail', hook, ato.calling_role())
    ON CONFLICT ON CONSTRAINT notification_hooks_pkey DO UPDATE
       SET hook = excluded.hook, registered_at = now(), registered_by = excluded.registered_by;
END;
$$;
COMMENT ON FUNCTION ato.register_account_detail(regprocedure) IS
    'Registers the application''s function (account id text -> text) that says what identifies the account to its user and a phisher would not know (the last digits of the card on file, the month the account was opened); each notice quotes it; called as its owner, whom only its owner may register; replaces the one before';
REVOKE ALL ON FUNCTION ato.register_account_detail(regprocedure) FROM PUBLIC;

CREATE FUNCTION ato.register_contact_channel(channel text, hook regprocedure, priority integer DEFAULT 100)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ato.check_short_text('register_contact_channel', 'channel', channel, 63);
    IF channel IN ('account_detail', 'primary') THEN
        RAISE EXCEPTION 'register_contact_channel: "%" is not a channel name one can register', channel
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'primary is where a notice goes without a secondary channel; name the channel, for example sms or secondary_email.';
    END IF;
    IF priority IS NULL THEN
        RAISE EXCEPTION 'register_contact_channel: priority must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Channels are tried in ascending priority; the default is 100.';
    END IF;
    PERFORM ato.check_hook(hook, 'text'::regtype, 'register_contact_channel');
    INSERT INTO ato.notification_hooks AS h (name, kind, hook, priority, registered_by)
    VALUES (channel, 'contact', hook, priority, ato.calling_role())
    ON CONFLICT ON CONSTRAINT notification_hooks_pkey DO UPDATE
       SET hook = excluded.hook, priority = excluded.priority, registered_at = now(),
           registered_by = excluded.registered_by;
END;
$$;
COMMENT ON FUNCTION ato.register_contact_channel(text, regprocedure, integer) IS
    'Registers a secondary channel to reach a user out of band: the application''s function (account id text -> text) gives the account''s address on it, NULL where it has none; a notice goes to the first channel (ascending priority) with an address, else to the primary one (address NULL: the mailer''s own); called as its owner, whom only its owner may register';
REVOKE ALL ON FUNCTION ato.register_contact_channel(text, regprocedure, integer) FROM PUBLIC;

CREATE FUNCTION ato.unregister_notification_hook(name text)
RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (DELETE FROM ato.notification_hooks h WHERE h.name = $1 RETURNING 1)
    SELECT count(*) > 0 FROM gone;
$$;
COMMENT ON FUNCTION ato.unregister_notification_hook(text) IS
    'Removes the account_detail hook or a contact channel by name; true if it was registered';
REVOKE ALL ON FUNCTION ato.unregister_notification_hook(text) FROM PUBLIC;

-- No foreign key to ato.incidents: what the users were told outlives the
-- incident's row.
CREATE TABLE ato.user_notifications (
    incident_id uuid NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    shard text,
    written_at timestamptz NOT NULL,
    written_by name NOT NULL,
    happened jsonb NOT NULL,
    done jsonb NOT NULL,
    must_do text[] NOT NULL,
    account_detail text,
    channel text NOT NULL,
    address text,
    subject text NOT NULL,
    message text NOT NULL,
    token_hash bytea UNIQUE,
    token_expires_at timestamptz,
    token_used_at timestamptz,
    delivered_at timestamptz,
    PRIMARY KEY (incident_id, user_id)
);
COMMENT ON TABLE ato.user_notifications IS
    'One notice per account and incident (ato.notify_users()): what happened, what was done, what the user must do, the detail that shows it is genuine, the channel, and the hash of its recovery token; kept when its outbox row is removed';
COMMENT ON COLUMN ato.user_notifications.shard IS 'ato.shard_name() of the server that wrote it';
COMMENT ON COLUMN ato.user_notifications.happened IS
    'From the event store, in the incident''s window: the suspicious sign-ins (first and last, countries, networks) and the account changes made in them';
COMMENT ON COLUMN ato.user_notifications.done IS 'What ato.revoke_incident() did to the account: the revocation time, the tables marked, the flags set';
COMMENT ON COLUMN ato.user_notifications.message IS
    'The notice as plain text; {recovery_link} stands where the mailer puts its recovery URL with the token ato.claim_notifications() hands it';
COMMENT ON COLUMN ato.user_notifications.token_hash IS 'sha256 of the recovery token last handed to the mailer (the token itself is never stored)';
SELECT pg_catalog.pg_extension_config_dump('ato.user_notifications', '');

CREATE TABLE ato.notification_outbox (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    incident_id uuid NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    shard text,
    channel text NOT NULL,
    address text,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 8,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz,
    claimed_by name,
    sent_at timestamptz,
    failed_at timestamptz,
    provider_ref text,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (incident_id, user_id)
);
CREATE INDEX notification_outbox_due_idx ON ato.notification_outbox (next_attempt_at) WHERE status IN ('pending', 'sending');
COMMENT ON TABLE ato.notification_outbox IS
    'The delivery of each notice, which the application''s mailer claims (ato.claim_notifications()) and marks sent or failed; a failure is retried after 1, 2, 4 ... minutes (at most an hour) until max_attempts';
COMMENT ON COLUMN ato.notification_outbox.status IS
    'pending: due at next_attempt_at; sending: claimed until lease_until (claimed again after it); sent; failed: given up after max_attempts';
COMMENT ON COLUMN ato.notification_outbox.shard IS 'ato.shard_name() of the server that wrote it';
SELECT pg_catalog.pg_extension_config_dump('ato.notification_outbox', '');
SELECT pg_catalog.pg_extension_config_dump('ato.notification_outbox_id_seq', '');
REVOKE ALL ON ato.notification_hooks, ato.user_notifications, ato.notification_outbox FROM PUBLIC;

-- What the accounts' notices say, from the store and the incident: one
-- pass over the window for all of them (an account is matched through a
-- hashed IN, as in ato.incident_events()).
CREATE FUNCTION ato.notice_contents(incident ato.incidents, window_from timestamptz, window_to timestamptz,
                                    nets cidr[], accounts text[])
RETURNS TABLE (user_id text, happened jsonb, done jsonb, must_do text[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
#variable_conflict use_column
DECLARE
    done_ jsonb;
BEGIN
    done_ := jsonb_build_object(
        'sessions_revoked_at', incident.opened_at,
        'suspended', incident.suspend,
        'password_disabled', incident.password_reset_required,
        'factors_removed', incident.mfa_reenrollment_required,
        'sign_in_again', incident.reauth_required,
        'created_after_deleted', incident.delete_created_after,
        'marked', (SELECT coalesce(jsonb_agg(jsonb_build_object('table', t.target_name, 'action', r.action)
                                             ORDER BY t.target_name), '[]')
                     FROM ato.incident_targets t
                     LEFT JOIN ato.revocation_targets r ON r.id = t.target_id
                    WHERE t.incident_id = incident.id AND t.rows_touched > 0));
    RETURN QUERY
    -- the suspicious events: from the attacker's networks where they are
    -- known, else from countries the account had not signed in from before
    -- the window; the account changes made from their addresses (or the
    -- networks) in the window
    WITH accts AS (SELECT DISTINCT u COLLATE "C" AS user_id FROM unnest(accounts) u),
    logins AS (
        SELECT l.user_id, l.occurred_at, l.ip_address, l.country_code, l.outcome,
               nullif(concat_ws(' ', 'AS' || l.asn, l.as_org), '') AS network
          FROM ato.login_events l
         WHERE l.user_id IN (SELECT a.user_id FROM accts a)
           AND l.occurred_at >= window_from AND l.occurred_at <= window_to
           AND CASE WHEN cardinality(nets) > 0 THEN l.ip_address <<= ANY (nets)
                    ELSE l.country_code IS NOT NULL AND NOT EXISTS (
                             SELECT FROM ato.account_countries c
                              WHERE c.user_id = l.user_id AND c.country_code = l.country_code
                                AND c.first_success_at < window_from) END),
    lg AS (
        SELECT g.user_id,
               min(g.occurred_at) FILTER (WHERE g.outcome = 'success') AS first_sign_in,
               max(g.occurred_at) FILTER (WHERE g.outcome = 'success') AS last_sign_in,
               count(*) FILTER (WHERE g.outcome = 'success') AS sign_ins,
               count(*) FILTER (WHERE g.outcome = 'failure') AS failed_attempts,
               jsonb_agg(DISTINCT g.country_code) FILTER (WHERE g.country_code IS NOT NULL) AS countries,
               jsonb_agg(DISTINCT g.network) FILTER (WHERE g.network IS NOT NULL) AS networks,
               jsonb_agg(DISTINCT host(g.ip_address)) FILTER (WHERE g.ip_address IS NOT NULL) AS addresses
          FROM logins g GROUP BY g.user_id),
    ch AS (
        SELECT a.user_id, jsonb_agg(jsonb_build_object('at', e.occurred_at, 'event_type', e.event_type)
                                    ORDER BY e.occurred_at, e.event_type) AS changes
          FROM ato.audit_events e
          JOIN accts a ON a.user_id IN (e.actor_id, e.target_id)
         WHERE (e.actor_id IN (SELECT x.user_id FROM accts x) OR e.target_id IN (SELECT x.user_id FROM accts x))
           AND e.occurred_at >= window_from AND e.occurred_at <= window_to
           AND coalesce(e.outcome, 'success') = 'success'
           AND ((cardinality(nets) > 0 AND e.ip_address <<= ANY (nets))
                OR EXISTS (SELECT FROM logins g WHERE g.user_id = a.user_id AND g.ip_address = e.ip_address))
         GROUP BY a.user_id)
    SELECT a.user_id::text,
           jsonb_build_object(
               'first_sign_in', lg.first_sign_in, 'last_sign_in', lg.last_sign_in,
               'sign_ins', coalesce(lg.sign_ins, 0), 'failed_attempts', coalesce(lg.failed_attempts, 0),
               'countries', coalesce(lg.countries, '[]'), 'networks', coalesce(lg.networks, '[]'),
               'addresses', coalesce(lg.addresses, '[]'), 'changes', coalesce(ch.changes, '[]')),
           done_,
           array_remove(ARRAY[
               CASE WHEN incident.password_reset_required THEN 'reset_password' END,
               CASE WHEN incident.mfa_reenrollment_required THEN 're_enrol_mfa' END,
               CASE WHEN incident.reauth_required THEN 'sign_in_again' END,
               CASE WHEN incident.suspend THEN 'verify_identity' END,
               CASE WHEN ch.changes IS NOT NULL THEN 'review_changes' END], NULL)
      FROM accts a
      LEFT JOIN lg ON lg.user_id = a.user_id
      LEFT JOIN ch ON ch.user_id = a.user_id
     ORDER BY a.user_id;
END;
$$;
COMMENT ON FUNCTION ato.notice_contents(ato.incidents, timestamptz, timestamptz, cidr[], text[]) IS
    'For ato.notify_users(), one row per account: what happened to it (from the events of the incident''s window: its attacker networks, else countries new to the account; the account changes made from there), what the incident did and what the user must do';
REVOKE ALL ON FUNCTION ato.notice_contents(ato.incidents, timestamptz, timestamptz, cidr[], text[]) FROM PUBLIC;

CREATE FUNCTION ato.notice_text(happened jsonb, done jsonb, must_do text[], account_detail text,
                                OUT subject text, OUT message text)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text := '';
    ts text := 'YYYY-MM-DD HH24:MI "UTC"';
BEGIN
    subject := 'Security notice: we secured your account';
    IF account_detail IS NOT NULL THEN
        t := format(E'So that you can tell this message comes from us: %s\n\n', account_detail);
    END IF;
    t := t || E'What happened\n';
    IF (happened ->> 'sign_ins')::bigint > 0 THEN
        t := t || format(E'Someone signed in to your account %s time(s) between %s and %s from %s (network %s).\n',
                         happened ->> 'sign_ins',
                         to_char((happened ->> 'first_sign_in')::timestamptz AT TIME ZONE 'UTC', ts),
                         to_char((happened ->> 'last_sign_in')::timestamptz AT TIME ZONE 'UTC', ts),
                         coalesce(nullif((SELECT string_agg(c, ', ') FROM jsonb_array_elements_text(happened -> 'countries') c), ''), 'an unknown country'),
                         coalesce(nullif((SELECT string_agg(n, ', ') FROM jsonb_array_elements_text(happened -> 'networks') n), ''), 'unknown'));
    ELSE
        t := t || E'Your account was among those targeted in an attack on our service.\n';
    END IF;
    IF (happened ->> 'failed_attempts')::bigint > 0 THEN
        t := t || format(E'There were %s failed attempts to sign in.\n', happened ->> 'failed_attempts');
    END IF;
    IF jsonb_array_length(happened -> 'changes') > 0 THEN
        t := t || E'Changes made to your account in that time:\n'
               || (SELECT string_agg(format(E'  - %s at %s', c ->> 'event_type',
                                            to_char((c ->> 'at')::timestamptz AT TIME ZONE 'UTC', ts)), E'\n')
                     FROM jsonb_array_elements(happened -> 'changes') c) || E'\n';
    END IF;
    t := t || format(E'\nWhat we did\nWe ended every session and sign-in of your account made until %s.\n',
                     to_char((done ->> 'sessions_revoked_at')::timestamptz AT TIME ZONE 'UTC', ts));
    IF (done ->> 'factors_removed')::boolean THEN
        t := t || E'We removed the two-factor methods of your account.\n';
    END IF;
    IF (done ->> 'password_disabled')::boolean THEN
        t := t || E'We disabled your password.\n';
    END IF;
    IF (done ->> 'suspended')::boolean THEN
        t := t || E'We suspended your account until we have verified that you are its owner.\n';
    END IF;
    t := t || E'\nWhat you must do\n';
    t := t || coalesce((SELECT string_agg('  - ' || CASE s
                                  WHEN 'reset_password' THEN 'Choose a new password through the link below.'
                                  WHEN 're_enrol_mfa' THEN 'Set up two-factor authentication again when you sign in.'
                                  WHEN 'sign_in_again' THEN 'Sign in again.'
                                  WHEN 'verify_identity' THEN 'Confirm your identity with our support team through the link below.'
                                  WHEN 'review_changes' THEN 'Check the changes listed above and undo those you did not make.'
                                  END, E'\n' ORDER BY n)
                          FROM unnest(must_do) WITH ORDINALITY AS m(s, n)), '  - Nothing more.') || E'\n';
    t := t || E'\nRecover your account here (this link is for you only and expires): {recovery_link}\n'
           || E'We will never ask for your password by e-mail or phone.\n';
    message := t;
END;
$$;
COMMENT ON FUNCTION ato.notice_text(jsonb, jsonb, text[], text) IS
    'The plain-text subject and message of a notice from its parts (times in UTC), with {recovery_link} where the mailer puts the recovery URL';
REVOKE ALL ON FUNCTION ato.notice_text(jsonb, jsonb, text[], text) FROM PUBLIC;

CREATE FUNCTION ato.notify_users(incident_id uuid)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    incident ato.incidents := ato.check_incident('notify_users', incident_id);
    scope record;
    detail_hook regprocedure;
    account text;
    c record;
    t record;
    detail text;
    chan text;
    addr text;
    channel_hook record;
    written bigint := 0;
    missing text[];
    accounts text[] := '{}';
BEGIN
    -- Exactly once is the primary key's: a second call at the same time
    -- inserts in the same (account) order, waits on the first notice the
    -- first call has not committed, and then writes none that it wrote.  (No
    -- lock on the incident's row: that would hold up its marking batches.)
    SELECT * INTO scope FROM ato.incident_scope(incident.id);
    SELECT h.hook INTO detail_hook FROM ato.notification_hooks h WHERE h.kind = 'account_detail';
    SELECT coalesce(array_agg(u ORDER BY u), '{}') INTO missing
      FROM unnest(ato.incident_accounts_in_scope(incident.id)) u
     WHERE NOT EXISTS (SELECT FROM ato.user_notifications n WHERE n.incident_id = incident.id AND n.user_id = u COLLATE "C");
    FOR c IN SELECT * FROM ato.notice_contents(incident, scope.window_from, scope.window_to, scope.attacker_networks, missing) LOOP
        account := c.user_id;
        detail := CASE WHEN detail_hook IS NOT NULL THEN ato.call_hook(detail_hook, 'text', account) END;
        chan := 'primary';
        addr := NULL;
        FOR channel_hook IN SELECT * FROM ato.notification_hooks x WHERE x.kind = 'contact' ORDER BY x.priority, x.name LOOP
            addr := ato.call_hook(channel_hook.hook, 'text', account);
            IF addr IS NOT NULL AND addr <> '' THEN
                chan := channel_hook.name;
                EXIT;
            END IF;
            addr := NULL;
        END LOOP;
        t := ato.notice_text(c.happened, c.done, c.must_do, detail);
        INSERT INTO ato.user_notifications (incident_id, user_id, shard, written_at, written_by, happened, done, must_do,
                                            account_detail, channel, address, subject, message)
        VALUES (incident.id, account, ato.shard_name(), clock_timestamp(), session_user, c.happened, c.done, c.must_do,
                detail, chan, addr, t.subject, t.message)
        ON CONFLICT ON CONSTRAINT user_notifications_pkey DO NOTHING;
        CONTINUE WHEN NOT FOUND;
        INSERT INTO ato.notification_outbox (incident_id, user_id, shard, channel, address)
        VALUES (incident.id, account, ato.shard_name(), chan, addr);
        written := written + 1;
        accounts := accounts || account;
    END LOOP;
    IF written > 0 THEN
        INSERT INTO ato.response_log (action, incident_id, user_ids, detail)
        VALUES ('users_notified', incident.id, accounts, format('%s notices written for the mailer', written));
    END IF;
    RETURN written;
END;
$$;
COMMENT ON FUNCTION ato.notify_users(uuid) IS
    'Writes the notice of every account of the incident that has none yet (ato.user_notifications: what happened, what was done, what to do, the account_detail hook''s value, the first contact channel with an address) and its outbox row, exactly once per account and incident however often or concurrently called; returns the notices written';
REVOKE ALL ON FUNCTION ato.notify_users(uuid) FROM PUBLIC;

CREATE FUNCTION ato.claim_notifications(max_rows integer DEFAULT 10, lease interval DEFAULT '5 minutes',
                                        token_lifetime interval DEFAULT '72 hours')
RETURNS TABLE (outbox_id bigint, attempt integer, incident_id uuid, user_id text, channel text, address text,
               subject text, message text, content jsonb, recovery_token text, token_expires_at timestamptz, shard text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    r record;
    token text;
BEGIN
    IF max_rows IS NULL OR lease IS NULL OR token_lifetime IS NULL THEN
        RAISE EXCEPTION 'claim_notifications: max_rows, lease and token_lifetime must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Leave them out for 10 rows, a 5 minute lease and tokens valid for 72 hours.';
    END IF;
    IF max_rows NOT BETWEEN 1 AND 10000 OR lease <= interval '0' OR token_lifetime <= interval '0' THEN
        RAISE EXCEPTION 'claim_notifications: max_rows must be 1 to 10000, lease and token_lifetime positive'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The lease is how long a claimed row is the mailer''s before another may claim it.';
    END IF;
    -- claimed as often as it may be, and its lease gone without a word: a
    -- mailer that dies on this notice; it is given up, not sent forever
    UPDATE ato.notification_outbox o
       SET status = 'failed', failed_at = now(),
           last_error = format('claimed %s times, and the mailer never said how it went', o.attempts)
     WHERE o.status = 'sending' AND o.lease_until <= now() AND o.attempts >= o.max_attempts;
    FOR r IN
        WITH due AS (
            SELECT o.id FROM ato.notification_outbox o
             WHERE ((o.status = 'pending' AND o.next_attempt_at <= now())
                    OR (o.status = 'sending' AND o.lease_until <= now()))
               -- a row whose every attempt was claimed (a mailer that died
               -- on it each time) is given up below, never claimed again
               AND o.attempts < o.max_attempts
             ORDER BY o.next_attempt_at, o.id
             LIMIT max_rows
               FOR UPDATE SKIP LOCKED)
        UPDATE ato.notification_outbox o
           SET status = 'sending', attempts = o.attempts + 1, lease_until = now() + lease,
               claimed_by = session_user
          FROM due WHERE o.id = due.id
        RETURNING o.*
    LOOP
        -- 64 hex digits from two random UUIDs (pg_strong_random): only its
        -- hash is kept; a new claim makes the previous token useless
        token := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
        UPDATE ato.user_notifications n
           SET token_hash = sha256(convert_to(token, 'UTF8')), token_expires_at = now() + token_lifetime,
               token_used_at = NULL
         WHERE n.incident_id = r.incident_id AND n.user_id = r.user_id;
        RETURN QUERY
        SELECT r.id, r.attempts, r.incident_id, r.user_id::text, r.channel, r.address, n.subject, n.message,
               jsonb_build_object('happened', n.happened, 'done', n.done, 'must_do', to_jsonb(n.must_do),
                                  'account_detail', n.account_detail),
               token, n.token_expires_at, r.shard
          FROM ato.user_notifications n
         WHERE n.incident_id = r.incident_id AND n.user_id = r.user_id;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION ato.claim_notifications(integer, interval, interval) IS
    'What the application''s mailer calls: claims up to max_rows due notices (FOR UPDATE SKIP LOCKED: mailers in parallel never get the same row) for the lease, and returns each with its channel, address, text, content and a fresh recovery token (only its hash is kept; valid for token_lifetime); mark each with ato.mark_notification_sent() or ato.mark_notification_failed() and its attempt';
REVOKE ALL ON FUNCTION ato.claim_notifications(integer, interval, interval) FROM PUBLIC;

CREATE FUNCTION ato.claimed_notification(caller text, outbox_id bigint, attempt integer)
RETURNS ato.notification_outbox
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o ato.notification_outbox;
BEGIN
    IF outbox_id IS NULL OR attempt IS NULL THEN
        RAISE EXCEPTION '%: outbox_id and attempt must not be NULL', caller
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the outbox_id and attempt ato.claim_notifications() returned.';
    END IF;
    SELECT * INTO o FROM ato.notification_outbox x WHERE x.id = outbox_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: no notice % in the outbox', caller, outbox_id
            USING ERRCODE = 'no_data_found',
                  HINT = 'Pass an outbox_id ato.claim_notifications() returned.';
    END IF;
    IF o.status <> 'sending' OR o.attempts <> attempt THEN
        RAISE EXCEPTION '%: attempt % of notice % is not the one in flight (status %, attempt %)',
                        caller, attempt, outbox_id, o.status, o.attempts
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'The lease ran out and another claim took the notice over; its result is the one that counts.';
    END IF;
    RETURN o;
END;
$$;
COMMENT ON FUNCTION ato.claimed_notification(text, bigint, integer) IS
    'The outbox row of a claimed notice, locked, if that attempt is the one in flight; an error naming the caller otherwise';
REVOKE ALL ON FUNCTION ato.claimed_notification(text, bigint, integer) FROM PUBLIC;

CREATE FUNCTION ato.mark_notification_sent(outbox_id bigint, attempt integer, provider_ref text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o ato.notification_outbox;
BEGIN
    PERFORM ato.check_short_text('mark_notification_sent', 'provider_ref', provider_ref, 500, true);
    o := ato.claimed_notification('mark_notification_sent', outbox_id, attempt);
    UPDATE ato.notification_outbox x
       SET status = 'sent', sent_at = clock_timestamp(), lease_until = NULL,
           provider_ref = mark_notification_sent.provider_ref
     WHERE x.id = o.id;
    UPDATE ato.user_notifications n SET delivered_at = clock_timestamp()
     WHERE n.incident_id = o.incident_id AND n.user_id = o.user_id;
END;
$$;
COMMENT ON FUNCTION ato.mark_notification_sent(bigint, integer, text) IS
    'The mailer''s word that it sent a claimed notice (provider_ref: its provider''s message id); an error if that attempt is no longer the one in flight';
REVOKE ALL ON FUNCTION ato.mark_notification_sent(bigint, integer, text) FROM PUBLIC;

CREATE FUNCTION ato.mark_notification_failed(outbox_id bigint, attempt integer, error text, retry boolean DEFAULT true)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o ato.notification_outbox;
    next_at timestamptz;
BEGIN
    PERFORM ato.check_short_text('mark_notification_failed', 'error', error, 2000);
    o := ato.claimed_notification('mark_notification_failed', outbox_id, attempt);
    IF retry AND o.attempts < o.max_attempts THEN
        next_at := now() + least(interval '1 minute' * power(2, o.attempts - 1), interval '1 hour');
    END IF;
    UPDATE ato.notification_outbox x
       SET status = CASE WHEN next_at IS NULL THEN 'failed' ELSE 'pending' END,
           failed_at = CASE WHEN next_at IS NULL THEN clock_timestamp() END,
           next_attempt_at = coalesce(next_at, x.next_attempt_at), lease_until = NULL,
           last_error = mark_notification_failed.error
     WHERE x.id = o.id;
    RETURN next_at;
END;
$$;
COMMENT ON FUNCTION ato.mark_notification_failed(bigint, integer, text, boolean) IS
    'The mailer''s word that a claimed notice could not be sent: it is due again after 1, 2, 4 ... minutes (at most an hour) and the time is returned, or, after max_attempts or with retry => false (an address that does not exist), it is failed and NULL is returned';
REVOKE ALL ON FUNCTION ato.mark_notification_failed(bigint, integer, text, boolean) FROM PUBLIC;

CREATE FUNCTION ato.redeem_recovery_token(token text, OUT status text, OUT user_id text, OUT incident_id uuid)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    n ato.user_notifications;
BEGIN
    IF token IS NULL THEN
        RAISE EXCEPTION 'redeem_recovery_token: token must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the token of the recovery link as the user followed it.';
    END IF;
    IF token !~ '^[0-9a-f]{64}$' THEN
        status := 'unknown';
        RETURN;
    END IF;
    SELECT * INTO n FROM ato.user_notifications x WHERE x.token_hash = sha256(convert_to(token, 'UTF8')) FOR UPDATE;
    IF NOT FOUND THEN
        status := 'unknown';
        RETURN;
    END IF;
    user_id := n.user_id;
    incident_id := n.incident_id;
    IF n.token_used_at IS NOT NULL THEN
        status := 'used';
    ELSIF n.token_expires_at <= now() THEN
        status := 'expired';
    ELSE
        status := 'valid';
        UPDATE ato.user_notifications x SET token_used_at = now()
         WHERE x.incident_id = n.incident_id AND x.user_id = n.user_id;
        INSERT INTO ato.response_log (action, incident_id, user_ids, detail)
        VALUES ('recovery_link_used', n.incident_id, ARRAY[n.user_id::text], 'the notice''s recovery token was redeemed');
    END IF;
END;
$$;
COMMENT ON FUNCTION ato.redeem_recovery_token(text) IS
    'What the application''s recovery endpoint calls with the token of a notice''s link: status valid (the token is used up now; user_id and incident_id say whose it is: verify the user, then let them reset), used, expired or unknown';
REVOKE ALL ON FUNCTION ato.redeem_recovery_token(text) FROM PUBLIC;

-- Retention: what an open incident's timeline shows stays.
CREATE FUNCTION ato.apply_notification_retention(keep interval)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    removed bigint;
BEGIN
    IF keep IS NULL OR keep <= interval '0' THEN
        RAISE EXCEPTION 'apply_notification_retention: keep must be a positive interval'
            USING ERRCODE = CASE WHEN keep IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END,
                  HINT = 'ato.apply_retention() passes ato_response.retention.';
    END IF;
    DELETE FROM ato.notification_outbox o
     WHERE o.status IN ('sent', 'failed')
       AND coalesce(o.sent_at, o.failed_at) < now() - keep
       AND NOT EXISTS (SELECT FROM ato.incidents i
                        WHERE i.id = o.incident_id AND (SELECT s.is_open FROM ato.incident_scope(i.id) s));
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END;
$$;
COMMENT ON FUNCTION ato.apply_notification_retention(interval) IS
    'Removes the outbox rows sent or given up longer than keep ago, except those of open incidents, whose timeline shows them; the notices themselves stay (a new ato.notify_users() must not write them again); ato.apply_retention() calls it';
REVOKE ALL ON FUNCTION ato.apply_notification_retention(interval) FROM PUBLIC;

-- The notices on the incident's timeline (ato.incident_timeline()).
CREATE FUNCTION ato.notification_timeline(incident_id uuid)
RETURNS TABLE (at timestamptz, ord integer, kind text, accounts text[], detail text, ref text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT o.sent_at, 9, 'notice sent', ARRAY[o.user_id::text],
           concat_ws(', ', 'on ' || o.channel, 'attempt ' || o.attempts, 'provider ref ' || o.provider_ref),
           'notification_outbox:' || o.id
      FROM ato.notification_outbox o WHERE o.incident_id = $1 AND o.status = 'sent'
    UNION ALL
    SELECT o.failed_at, 9, 'notice failed', ARRAY[o.user_id::text],
           format('on %s, given up after %s attempts: %s', o.channel, o.attempts, o.last_error),
           'notification_outbox:' || o.id
      FROM ato.notification_outbox o WHERE o.incident_id = $1 AND o.status = 'failed';
$$;
COMMENT ON FUNCTION ato.notification_timeline(uuid) IS
    'The incident''s notices as timeline items: each one sent, each one given up (their writing is in ato.response_log)';
REVOKE ALL ON FUNCTION ato.notification_timeline(uuid) FROM PUBLIC;
