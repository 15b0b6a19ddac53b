/*
 * ato_response--0.1.0.sql
 *     The extension's objects in schema ato: the event store (login and audit
 *     events, partitioned by month), the GeoIP functions and the functions
 *     applications record events with.
 */
\echo Use "CREATE EXTENSION ato_response" to load this file. \quit

-- ---------------------------------------------------------------------------
-- GeoIP
-- ---------------------------------------------------------------------------

CREATE TYPE ato.geoip_result AS (
    country_code text,
    city         text,
    latitude     double precision,
    longitude    double precision,
    asn          bigint,
    as_org       text,
    network      cidr,
    details      jsonb
);
COMMENT ON TYPE ato.geoip_result IS
    'What the configured GeoIP databases know about one address: typed fields, the matched network, and every record as jsonb';

CREATE FUNCTION ato.geoip(ip_address inet)
RETURNS ato.geoip_result
AS 'MODULE_PATHNAME', 'ato_geoip'
LANGUAGE C STRICT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ato.geoip(inet) IS
    'Every field the GeoIP databases (ato_response.geoip_database, ato_response.asn_database) hold for an address; NULL when none knows it';

CREATE FUNCTION ato.geoip_country(ip_address inet)
RETURNS text
AS 'MODULE_PATHNAME', 'ato_geoip_country'
LANGUAGE C STRICT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ato.geoip_country(inet) IS
    'ISO 3166 alpha-2 country of an address from ato_response.geoip_database; NULL when unknown';

CREATE FUNCTION ato.geoip_status(
    OUT database      text,
    OUT setting       text,
    OUT path          text,
    OUT loaded        boolean,
    OUT database_type text,
    OUT built_at      timestamptz,
    OUT ip_version    integer,
    OUT node_count    bigint,
    OUT opened_at     timestamptz,
    OUT problem       text,
    OUT lookups       bigint,
    OUT misses        bigint,
    OUT errors        bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ato_geoip_status'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION ato.geoip_status() IS
    'The GeoIP databases as this session sees them: file, type, build time, when opened, any problem, and this session''s lookup counts';

-- ---------------------------------------------------------------------------
-- Event store
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.login_outcomes()
RETURNS text[]
AS 'MODULE_PATHNAME', 'ato_login_outcomes'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ato.login_outcomes() IS
    'The outcomes a login event may have; any letter case is accepted and stored in lower case';

CREATE FUNCTION ato.enrich_event()
RETURNS trigger
AS 'MODULE_PATHNAME', 'ato_enrich_event'
LANGUAGE C;
COMMENT ON FUNCTION ato.enrich_event() IS
    'Row trigger of the event tables: checks an event, normalises it and adds GeoIP fields (argument: login or audit)';

CREATE SEQUENCE ato.event_id_seq AS bigint CACHE 1000;
COMMENT ON SEQUENCE ato.event_id_seq IS 'Ids of login and audit events';

CREATE TABLE ato.login_events (
    id           bigint      NOT NULL DEFAULT nextval('ato.event_id_seq'),
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    user_id      text        NOT NULL,
    ip_address   inet,
    outcome      text        NOT NULL,
    user_agent   text,
    source       text,
    metadata     jsonb,
    country_code text,
    asn          bigint,
    as_org       text,
    latitude     double precision,
    longitude    double precision,
    recorded_at  timestamptz
) PARTITION BY RANGE (occurred_at);
ALTER SEQUENCE ato.event_id_seq OWNED BY ato.login_events.id;

COMMENT ON TABLE ato.login_events IS
    'Login attempts, one row each, partitioned by month of occurred_at; GeoIP columns are filled on insert';
COMMENT ON COLUMN ato.login_events.outcome IS 'success, failure or challenge (see ato.login_outcomes())';
COMMENT ON COLUMN ato.login_events.source IS 'Free label of where the event came from (application, IdP, import)';
COMMENT ON COLUMN ato.login_events.country_code IS 'ISO 3166 alpha-2 country of ip_address, from GeoIP at insert time';
COMMENT ON COLUMN ato.login_events.asn IS 'Autonomous system number of ip_address, where a GeoIP database has it';
COMMENT ON COLUMN ato.login_events.recorded_at IS
    'When the event was stored (set on insert); a row loaded with it set (a restore) is kept as recorded, not enriched again';

CREATE TABLE ato.audit_events (
    id           bigint      NOT NULL DEFAULT nextval('ato.event_id_seq'),
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    actor_id     text        NOT NULL,
    event_type   text        NOT NULL,
    ip_address   inet,
    target_type  text,
    target_id    text,
    user_agent   text,
    source       text,
    metadata     jsonb,
    country_code text,
    asn          bigint,
    as_org       text,
    latitude     double precision,
    longitude    double precision,
    recorded_at  timestamptz
) PARTITION BY RANGE (occurred_at);

COMMENT ON TABLE ato.audit_events IS
    'Account changes and other audited actions (user.email_changed, user.mfa.factor.activate, ...), partitioned by month of occurred_at';
COMMENT ON COLUMN ato.audit_events.event_type IS 'Dotted event name, as Okta''s System Log: user.password_changed, billing.modified, ...';
COMMENT ON COLUMN ato.audit_events.target_type IS 'Kind of object acted on (user, factor, app, token, ...)';
COMMENT ON COLUMN ato.audit_events.target_id IS 'Id of the object acted on';
COMMENT ON COLUMN ato.audit_events.recorded_at IS
    'When the event was stored (set on insert); a row loaded with it set (a restore) is kept as recorded, not enriched again';

-- The trigger is the one place events are checked (there are no CHECK
-- constraints repeating it, which would cost every COPY a second pass over
-- the same rules).  It also fires on UPDATE, which is checked like an insert
-- but not enriched again.
CREATE TRIGGER enrich_event BEFORE INSERT OR UPDATE ON ato.login_events
    FOR EACH ROW EXECUTE FUNCTION ato.enrich_event('login');
CREATE TRIGGER enrich_event BEFORE INSERT OR UPDATE ON ato.audit_events
    FOR EACH ROW EXECUTE FUNCTION ato.enrich_event('audit');

-- Rows outside every monthly partition are kept here, never rejected;
-- ato.create_partitions() moves them into their month.
CREATE TABLE ato.login_events_default PARTITION OF ato.login_events DEFAULT;
CREATE TABLE ato.audit_events_default PARTITION OF ato.audit_events DEFAULT;

-- The indexes live on the partitions, not on the partitioned tables: an
-- index the extension script put on a partitioned table would be added again
-- to every partition a restore attaches, and collide with the partition's own
-- dumped index.  The default partitions carry them, and ato.create_partitions()
-- copies them (LIKE ... INCLUDING INDEXES) to every month it creates.
--
-- Time windows are read through BRIN: events arrive in time order, the index
-- costs next to nothing at insert, and a window reads only its block ranges.
-- Audit events are also looked up per actor (what did this account do after
-- that login?), hence the B-tree.  Per-account login history is kept apart,
-- small, by the detection functions; add
--   CREATE INDEX ON ato.login_events (user_id, occurred_at);
-- if you need every login of one account over all time, at about twice the
-- cost of a COPY (see bench/README.md).
CREATE INDEX login_events_default_occurred_at_idx
    ON ato.login_events_default USING brin (occurred_at) WITH (pages_per_range = 32);
CREATE INDEX audit_events_default_occurred_at_idx
    ON ato.audit_events_default USING brin (occurred_at) WITH (pages_per_range = 32);
CREATE INDEX audit_events_default_actor_id_idx
    ON ato.audit_events_default (actor_id, occurred_at);
SELECT pg_catalog.pg_extension_config_dump('ato.login_events_default', '');
SELECT pg_catalog.pg_extension_config_dump('ato.audit_events_default', '');
SELECT pg_catalog.pg_extension_config_dump('ato.event_id_seq', '');

-- ---------------------------------------------------------------------------
-- Partitions
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.create_partitions(
    from_time timestamptz,
    to_time   timestamptz DEFAULT now() + interval '3 months')
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parent   text;
    month    timestamptz;
    name     text;
    created  integer := 0;
BEGIN
    IF from_time IS NULL OR to_time IS NULL THEN
        RAISE EXCEPTION 'from_time and to_time must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give the first and last moment the partitions must cover.';
    END IF;
    IF NOT isfinite(from_time) OR NOT isfinite(to_time) THEN
        RAISE EXCEPTION 'from_time and to_time must be finite'
            USING ERRCODE = 'datetime_field_overflow',
                  HINT = 'Monthly partitions are created for a bounded range.';
    END IF;
    IF to_time < from_time THEN
        RAISE EXCEPTION 'to_time % is before from_time %', to_time, from_time
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Swap the arguments.';
    END IF;
    IF to_time - from_time > interval '10 years' THEN
        RAISE EXCEPTION 'range of % is too long', to_time - from_time
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Create at most 10 years of monthly partitions in one call.';
    END IF;

    FOREACH parent IN ARRAY ARRAY['login_events', 'audit_events'] LOOP
        month := date_trunc('month', from_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
        WHILE month <= to_time LOOP
            name := format('%s_p%s', parent, to_char(month AT TIME ZONE 'UTC', 'YYYY_MM'));
            IF to_regclass(format('ato.%I', name)) IS NULL THEN
                -- Build the month apart, move in what the default partition
                -- holds for it, then attach: one transaction, nothing lost.  Its
                -- indexes are those of the default partition.
                EXECUTE format('CREATE TABLE ato.%I (LIKE ato.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)',
                               name, parent || '_default');
                EXECUTE format('WITH moved AS (DELETE FROM ato.%I WHERE occurred_at >= $1 AND occurred_at < $2 RETURNING *) '
                               'INSERT INTO ato.%I SELECT * FROM moved',
                               parent || '_default', name)
                    USING month, month + interval '1 month';
                EXECUTE format('ALTER TABLE ato.%I ATTACH PARTITION ato.%I FOR VALUES FROM (%L) TO (%L)',
                               parent, name, month, month + interval '1 month');
                created := created + 1;
            END IF;
            month := month + interval '1 month';
        END LOOP;
    END LOOP;
    RETURN created;
END
$$;
COMMENT ON FUNCTION ato.create_partitions(timestamptz, timestamptz) IS
    'Creates the missing monthly partitions of both event tables covering [from_time, to_time] (UTC months), moving in rows the default partitions hold for them; returns how many it created';

CREATE FUNCTION ato.drop_partitions(older_than timestamptz)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part     record;
    dropped  integer := 0;
BEGIN
    IF older_than IS NULL OR NOT isfinite(older_than) THEN
        RAISE EXCEPTION 'older_than must be a finite time'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the time before which whole months of events are dropped.';
    END IF;
    FOR part IN
        SELECT p.partition, p.upper_bound
          FROM ato.event_partitions p
         WHERE p.upper_bound IS NOT NULL AND p.upper_bound <= older_than
         ORDER BY p.upper_bound
    LOOP
        EXECUTE format('DROP TABLE %s', part.partition);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END
$$;
COMMENT ON FUNCTION ato.drop_partitions(timestamptz) IS
    'Drops every monthly partition of the event tables that ends at or before older_than: retention at the cost of dropping tables; returns how many it dropped';

CREATE VIEW ato.event_partitions AS
SELECT c.relname::text                      AS parent,
       i.inhrelid::regclass                 AS partition,
       (regexp_match(pg_get_expr(p.relpartbound, p.oid),
                     'FROM \(''([^'']+)''\)'))[1]::timestamptz AS lower_bound,
       (regexp_match(pg_get_expr(p.relpartbound, p.oid),
                     'TO \(''([^'']+)''\)'))[1]::timestamptz   AS upper_bound,
       pg_get_expr(p.relpartbound, p.oid) = 'DEFAULT'          AS is_default,
       pg_total_relation_size(i.inhrelid)   AS total_bytes
  FROM pg_catalog.pg_inherits i
  JOIN pg_catalog.pg_class c ON c.oid = i.inhparent
  JOIN pg_catalog.pg_class p ON p.oid = i.inhrelid
 WHERE c.oid IN ('ato.login_events'::regclass, 'ato.audit_events'::regclass);
COMMENT ON VIEW ato.event_partitions IS
    'The partitions of the event tables with their time bounds and size; rows in a default partition mean a month has no partition yet (see ato.create_partitions())';

-- ---------------------------------------------------------------------------
-- Recording events
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.record_login(
    user_id     text,
    ip_address  inet,
    outcome     text,
    occurred_at timestamptz DEFAULT now(),
    user_agent  text DEFAULT NULL,
    source      text DEFAULT NULL,
    metadata    jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, user_agent, source, metadata)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    RETURNING id
$$;
COMMENT ON FUNCTION ato.record_login(text, inet, text, timestamptz, text, text, jsonb) IS
    'Stores one login attempt (checked and GeoIP-enriched as any INSERT or COPY is) and returns its id';

CREATE FUNCTION ato.record_event(
    actor_id    text,
    event_type  text,
    occurred_at timestamptz DEFAULT now(),
    ip_address  inet DEFAULT NULL,
    target_type text DEFAULT NULL,
    target_id   text DEFAULT NULL,
    user_agent  text DEFAULT NULL,
    source      text DEFAULT NULL,
    metadata    jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address, target_type, target_id,
                                  user_agent, source, metadata)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    RETURNING id
$$;
COMMENT ON FUNCTION ato.record_event(text, text, timestamptz, inet, text, text, text, text, jsonb) IS
    'Stores one audit event (user.email_changed, user.mfa.factor.activate, ...; checked and GeoIP-enriched as any INSERT or COPY is) and returns its id';

-- ---------------------------------------------------------------------------
-- Per-account summaries
-- ---------------------------------------------------------------------------

CREATE TABLE ato.account_countries (
    user_id          text        NOT NULL,
    country_code     text        NOT NULL,
    first_success_at timestamptz NOT NULL,
    last_success_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, country_code)
);
COMMENT ON TABLE ato.account_countries IS
    'Per account, the countries it has logged in from successfully, with the first and last such login: what makes a country familiar, kept by ato.refresh_summaries()';
SELECT pg_catalog.pg_extension_config_dump('ato.account_countries', '');

-- Not dumped: after a restore the watermark starts again at -infinity, and
-- the first refresh folds the whole store in once more (it only ever adds,
-- so that is harmless).
CREATE TABLE ato.summary_state (
    singleton          boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    summarised_until   timestamptz NOT NULL DEFAULT '-infinity',
    refreshed_at       timestamptz,
    last_refresh_pairs bigint
);
INSERT INTO ato.summary_state DEFAULT VALUES;
COMMENT ON TABLE ato.summary_state IS
    'The watermark of the per-account summaries: every successful login before summarised_until is counted, but on the days in ato.summary_late_days';

-- Appended to, never updated, by the transactions that store late events,
-- so that they neither wait for each other nor fail to serialize.
CREATE TABLE ato.summary_late_days (
    day timestamptz NOT NULL
);
COMMENT ON TABLE ato.summary_late_days IS
    'Days behind the watermark on which events were stored after the last refresh (imports, delayed reports, updates); the next refresh folds them in again';

CREATE VIEW ato.summary_status AS
SELECT s.summarised_until,
       (SELECT min(l.day) FROM ato.summary_late_days l) AS late_from,
       s.refreshed_at,
       s.last_refresh_pairs
  FROM ato.summary_state s;
COMMENT ON VIEW ato.summary_status IS
    'How far the per-account summaries reach: counted up to summarised_until except from late_from on; when and with how many changes ato.refresh_summaries() last ran';

CREATE FUNCTION ato.refresh_summaries(until timestamptz DEFAULT now() - interval '5 minutes')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    state     ato.summary_state;
    upto      timestamptz;
    fold_from timestamptz;
    changed   bigint := 0;
BEGIN
    IF until IS NULL OR until = 'infinity' THEN
        RAISE EXCEPTION 'until must be a finite time'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it out to summarise up to five minutes ago.';
    END IF;
    -- Wait for the transactions storing events and keep new ones waiting:
    -- each of them has seen the watermark this refresh replaces, and marked
    -- its late events against it (see src/summary.c).
    LOCK TABLE ato.login_events IN SHARE MODE;
    SELECT * INTO STRICT state FROM ato.summary_state FOR UPDATE;
    -- never backwards, and never within the last minute, which a storing
    -- transaction trusts to be beyond the watermark without reading it
    upto := greatest(state.summarised_until, least(until, now() - interval '1 minute'));
    fold_from := least(state.summarised_until, (SELECT min(l.day) FROM ato.summary_late_days l));
    IF fold_from < upto THEN
        INSERT INTO ato.account_countries AS k (user_id, country_code, first_success_at, last_success_at)
        SELECT e.user_id, e.country_code, min(e.occurred_at), max(e.occurred_at)
          FROM ato.login_events e
         WHERE e.occurred_at >= fold_from AND e.occurred_at < upto
           AND e.outcome = 'success' AND e.country_code IS NOT NULL
         GROUP BY e.user_id, e.country_code
        ON CONFLICT (user_id, country_code) DO UPDATE
           SET first_success_at = least(k.first_success_at, excluded.first_success_at),
               last_success_at = greatest(k.last_success_at, excluded.last_success_at)
         WHERE excluded.first_success_at < k.first_success_at
            OR excluded.last_success_at > k.last_success_at;
        GET DIAGNOSTICS changed = ROW_COUNT;
    END IF;
    DELETE FROM ato.summary_late_days;
    UPDATE ato.summary_state
       SET summarised_until = upto, refreshed_at = now(), last_refresh_pairs = changed;
    RETURN changed;
END
$$;
COMMENT ON FUNCTION ato.refresh_summaries(timestamptz) IS
    'Folds the successful logins stored since the last run (and late ones behind it) into ato.account_countries, up to until (at most a minute ago); returns how many (account, country) pairs it added or moved. Schedule it every minute or so';

-- ---------------------------------------------------------------------------
-- Detection
-- ---------------------------------------------------------------------------
-- C functions (src/detect.c), SECURITY DEFINER so that an investigator needs
-- EXECUTE on them and nothing on the tables; not PUBLIC.

CREATE FUNCTION ato.new_country_logins(
    since         timestamptz DEFAULT now() - interval '1 hour',
    action_window interval    DEFAULT interval '1 hour',
    action_types  text[]      DEFAULT '{user.email_changed,user.password_changed,billing.modified}')
RETURNS TABLE (user_id text, ip_address inet, country_code text, occurred_at timestamptz,
               suspicious_actions bigint)
AS 'MODULE_PATHNAME', 'ato_new_country_logins'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.new_country_logins(timestamptz, interval, text[]) IS
    'Successful logins at or after since from a country the account had never logged in from successfully before since, with the number of action_types audit events by the account within action_window after each; logins with no known country come with country_code NULL';

CREATE FUNCTION ato.cidr_scope(
    cidrs cidr[],
    since timestamptz DEFAULT now() - interval '24 hours')
RETURNS TABLE (user_id text, logins bigint, first_login timestamptz, last_login timestamptz,
               ips inet[], actions jsonb)
AS 'MODULE_PATHNAME', 'ato_cidr_scope'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.cidr_scope(cidr[], timestamptz) IS
    'One row per account with a successful login from any of the networks (IPv4 or IPv6) since then: how many, first and last, from which addresses, and its audit events by type since the first';

CREATE FUNCTION ato.suspicious_action_counts(
    user_ids text[],
    since    timestamptz DEFAULT now() - interval '24 hours')
RETURNS TABLE (event_type text, actions bigint, accounts bigint)
AS 'MODULE_PATHNAME', 'ato_suspicious_action_counts'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.suspicious_action_counts(text[], timestamptz) IS
    'What the given accounts did since then: audit events by type, with how many of the accounts did each, most frequent first';

-- The rest of the hunt kit.

CREATE FUNCTION ato.credential_stuffing(
    since            timestamptz      DEFAULT now() - interval '1 hour',
    min_attempts     integer          DEFAULT 20,
    max_success_rate double precision DEFAULT 0.05)
RETURNS TABLE (source_kind text, source text, attempts bigint, successes bigint,
               success_rate double precision, accounts bigint, suspicious boolean)
AS 'MODULE_PATHNAME', 'ato_credential_stuffing'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.credential_stuffing(timestamptz, integer, double precision) IS
    'Login attempts since then per source (address, IPv4 /24 or IPv6 /48 network, autonomous system) with at least min_attempts: successes, success rate, accounts tried; suspicious when the success rate is at most max_success_rate (credential stuffing succeeds 1-3% of the time)';

CREATE FUNCTION ato.password_spray(
    since                    timestamptz      DEFAULT now() - interval '1 hour',
    min_accounts             integer          DEFAULT 10,
    max_attempts_per_account double precision DEFAULT 3)
RETURNS TABLE (ip_address inet, accounts bigint, failures bigint, successes bigint,
               attempts_per_account double precision, first_attempt timestamptz, last_attempt timestamptz)
AS 'MODULE_PATHNAME', 'ato_password_spray'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.password_spray(timestamptz, integer, double precision) IS
    'Addresses that failed against at least min_accounts accounts since then with at most max_attempts_per_account tries each: one password sprayed over many accounts';

CREATE FUNCTION ato.failed_login_bursts(
    since        timestamptz DEFAULT now() - interval '1 hour',
    min_failures integer     DEFAULT 10,
    burst_window interval    DEFAULT interval '10 minutes')
RETURNS TABLE (user_id text, failures bigint, burst bigint, sources bigint,
               first_failure timestamptz, last_failure timestamptz, later_success timestamptz)
AS 'MODULE_PATHNAME', 'ato_failed_login_bursts'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.failed_login_bursts(timestamptz, integer, interval) IS
    'Accounts with at least min_failures failed logins within some burst_window since then (brute force): the largest burst, from how many addresses, and the first successful login after the first failure, if any';

CREATE TABLE ato.listed_networks (
    network    cidr        NOT NULL,
    label      text        NOT NULL,
    source     text,
    added_at   timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz
);
CREATE INDEX listed_networks_network_idx ON ato.listed_networks USING gist (network inet_ops);
COMMENT ON TABLE ato.listed_networks IS
    'Networks to watch (threat feeds, hosting ranges, Tor exits), filled with COPY: label says what a network is, source where the listing came from; expires_at NULL never expires';
SELECT pg_catalog.pg_extension_config_dump('ato.listed_networks', '');

CREATE FUNCTION ato.listed_network_logins(
    since  timestamptz DEFAULT now() - interval '24 hours',
    labels text[]      DEFAULT NULL)
RETURNS TABLE (user_id text, ip_address inet, occurred_at timestamptz, network cidr, label text, source text)
AS 'MODULE_PATHNAME', 'ato_listed_network_logins'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.listed_network_logins(timestamptz, text[]) IS
    'Successful logins since then from a network of ato.listed_networks that had not expired at the time (only those with one of labels, when given), one row per login and matching listing';

CREATE TABLE ato.persistence_event_types (
    pattern     text    PRIMARY KEY,
    category    text    NOT NULL,
    builtin     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE ato.persistence_event_types IS
    'Audit event types (LIKE patterns) that give an attacker a way back in, by category; add your application''s own';
INSERT INTO ato.persistence_event_types (pattern, category, builtin) VALUES
    ('user.mfa.factor.activate',          'mfa_factor_added',     true),
    ('user.mfa.factor.enroll%',           'mfa_factor_added',     true),
    ('user.mfa.factor.deactivate',        'mfa_factor_removed',   true),
    ('user.mfa.factor.reset_all',         'mfa_factor_removed',   true),
    ('user.mfa.factor.update_phone',      'mfa_phone_changed',    true),
    ('user.mfa.%',                        'mfa_changed',          true),
    ('application.user_membership.add',   'app_granted',          true),
    ('app.oauth2.%consent.grant%',        'oauth_grant',          true),
    ('%oauth%grant%',                     'oauth_grant',          true),
    ('group.user_membership.add',         'group_granted',        true),
    ('user.account.privilege.grant',      'role_granted',         true),
    ('%role%grant%',                      'role_granted',         true),
    ('system.api_token.create',           'api_token_created',    true),
    ('%api_key%creat%',                   'api_token_created',    true),
    ('%recovery%',                        'recovery_changed',     true),
    ('user.email_changed',                'email_changed',        true),
    ('user.account.update_primary_email', 'email_changed',        true),
    ('%identity%link%',                   'identity_linked',      true);
SELECT pg_catalog.pg_extension_config_dump('ato.persistence_event_types', 'WHERE NOT builtin');

CREATE FUNCTION ato.persistence_changes(
    user_ids text[]      DEFAULT NULL,
    since    timestamptz DEFAULT now() - interval '24 hours')
RETURNS TABLE (actor_id text, category text, event_type text, occurred_at timestamptz, ip_address inet,
               country_code text, target_type text, target_id text)
AS 'MODULE_PATHNAME', 'ato_persistence_changes'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.persistence_changes(text[], timestamptz) IS
    'Audit events since then that give an attacker a way back in (MFA factors, phone, app and role grants, API tokens, recovery settings; see ato.persistence_event_types), of the given accounts or of all when user_ids is NULL';

CREATE FUNCTION ato.related_accounts(
    user_ids                 text[],
    since                    timestamptz DEFAULT now() - interval '7 days',
    rare_user_agent_accounts integer     DEFAULT 5)
RETURNS TABLE (user_id text, shared_addresses inet[], shared_user_agents text[], related_to text[],
               logins bigint, first_login timestamptz, last_login timestamptz)
AS 'MODULE_PATHNAME', 'ato_related_accounts'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.related_accounts(text[], timestamptz, integer) IS
    'Other accounts with successful logins since then from an address the given accounts logged in from, or with a user agent of theirs that at most rare_user_agent_accounts accounts used: who else the attacker got into';

-- ---------------------------------------------------------------------------
-- Privileges: the event store holds private data and its writers act on
-- accounts, so nothing is PUBLIC but the GeoIP look-ups.  Grant what a role
-- needs, for example:
--   GRANT USAGE ON SCHEMA ato TO app;
--   GRANT EXECUTE ON FUNCTION ato.record_login(text, inet, text, timestamptz, text, text, jsonb) TO app;
-- (record_login and record_event run as the extension's owner, so the
-- application needs no privilege on the tables), or for bulk loads:
--   GRANT INSERT ON ato.login_events, ato.audit_events TO loader;
--   GRANT USAGE ON SEQUENCE ato.event_id_seq TO loader;
-- ---------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA ato FROM PUBLIC;
REVOKE ALL ON SEQUENCE ato.event_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION ato.record_login(text, inet, text, timestamptz, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION ato.record_event(text, text, timestamptz, inet, text, text, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION ato.create_partitions(timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION ato.drop_partitions(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION ato.enrich_event() FROM PUBLIC;
REVOKE ALL ON FUNCTION ato.geoip_status() FROM PUBLIC;
REVOKE ALL ON FUNCTION ato.refresh_summaries(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION ato.new_country_logins(timestamptz, interval, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION ato.cidr_scope(cidr[], timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION ato.suspicious_action_counts(text[], timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION ato.credential_stuffing(timestamptz, integer, double precision) FROM PUBLIC;
REVOKE ALL ON FUNCTION ato.password_spray(timestamptz, integer, double precision) FROM PUBLIC;
REVOKE ALL ON FUNCTION ato.failed_login_bursts(timestamptz, integer, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION ato.listed_network_logins(timestamptz, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION ato.persistence_changes(text[], timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION ato.related_accounts(text[], timestamptz, integer) FROM PUBLIC;
