/*
 * ato_response--0.1.0.sql
 *     The extension's objects in schema ato, assembled by the Makefile from
 *     install/sections/ (edit those, then run make): settings, GeoIP, the
 *     event store and its partitions, recording events, the per-account
 *     summaries, detection, the response to incidents, the always-on rules,
 *     and the closing privileges.  Each function's REVOKE stands next to it.
 */
\echo Use "CREATE EXTENSION ato_response" to load this file. \quit
-- install/sections/01_arguments.sql: the one rule for account ids passed to the functions (NULL: 22004, empty: 22023; src/arguments.c).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- Arguments
-- ---------------------------------------------------------------------------

-- Written once, in src/arguments.c, which the C functions call directly.
CREATE FUNCTION ato.check_account_id(caller text, argument text, user_id text)
RETURNS void
AS 'MODULE_PATHNAME', 'ato_check_account_id_sql'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ato.check_account_id(text, text, text) IS
    'Raises 22004 for a NULL account id and 22023 for an empty one, naming the calling function and its argument; what the SQL functions check their account ids with';
REVOKE ALL ON FUNCTION ato.check_account_id(text, text, text) FROM PUBLIC;

CREATE FUNCTION ato.check_account_ids(caller text, argument text, user_ids text[])
RETURNS void
AS 'MODULE_PATHNAME', 'ato_check_account_ids_sql'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION ato.check_account_ids(text, text, text[]) IS
    'Raises 22004 for a NULL array or element and 22023 for an empty array or element, naming the calling function and its argument';
REVOKE ALL ON FUNCTION ato.check_account_ids(text, text, text[]) FROM PUBLIC;
-- install/sections/01_settings.sql: ato.setting(), through which the SQL functions read the ato_response.* settings (ato_response.c).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- Settings
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.setting(name text)
RETURNS text
AS 'MODULE_PATHNAME', 'ato_setting'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION ato.setting(text) IS
    'The value of an ato_response.* setting, with the module loaded first: what the SQL functions read their settings through, so that they work in a session that has not loaded the library (a pg_cron job)';
REVOKE ALL ON FUNCTION ato.setting(text) FROM PUBLIC;

CREATE FUNCTION ato.shard_name()
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN nullif(ato.setting('ato_response.shard_name'), '');
COMMENT ON FUNCTION ato.shard_name() IS
    'This server''s name among the shards (ato_response.shard_name), NULL on a single server: the label notification and outbox rows carry';
REVOKE ALL ON FUNCTION ato.shard_name() FROM PUBLIC;
-- install/sections/02_geoip.sql: the GeoIP look-up functions and ato.geoip_status() (src/geoip*.c).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

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
    OUT file_size     bigint,
    OUT file_modified timestamptz,
    OUT load_ms       double precision,
    OUT refused_at    timestamptz,
    OUT refused_size  bigint,
    OUT refused_reason text,
    OUT problem       text,
    OUT lookups       bigint,
    OUT misses        bigint,
    OUT errors        bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ato_geoip_status'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION ato.geoip_status() IS
    'The GeoIP databases as this session sees them: the verified private copy in use (type, build time, when loaded, size and mtime of the file it was read from, milliseconds to read and verify it), the last file refused and why, any problem, and this session''s lookup counts';
REVOKE ALL ON FUNCTION ato.geoip_status() FROM PUBLIC;

CREATE FUNCTION ato.is_special_purpose(address inet)
RETURNS boolean
AS 'MODULE_PATHNAME', 'ato_is_special_purpose'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION ato.is_special_purpose(inet) IS
    'True for an address of the IANA special-purpose registries that is not globally reachable, or for documentation or benchmarking (private, CGNAT, loopback, link-local, unique-local, multicast, ...): stored events from it get no GeoIP fields, whatever the database says (ato.geoip() still says what the database says)';
-- install/sections/03_event_store.sql: ato.login_events and ato.audit_events, their trigger (src/ingest.c), default partitions and indexes, and a shard's range of event ids.
-- A piece of the install script, which the Makefile assembles: not loadable alone.

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
REVOKE ALL ON FUNCTION ato.enrich_event() FROM PUBLIC;

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
    recorded_at  timestamptz,
    session_id   text
) PARTITION BY RANGE (occurred_at);
ALTER SEQUENCE ato.event_id_seq OWNED BY ato.login_events.id;

COMMENT ON TABLE ato.login_events IS
    'Login attempts, one row each, partitioned by month of occurred_at; GeoIP columns are filled on insert';
COMMENT ON COLUMN ato.login_events.outcome IS
    'success, failure, challenge or unknown (see ato.login_outcomes()); unknown: the identity provider did not say (Okta''s UNKNOWN, SKIPPED)';
COMMENT ON COLUMN ato.login_events.source IS 'Free label of where the event came from (application, IdP, import)';
COMMENT ON COLUMN ato.login_events.country_code IS 'ISO 3166 alpha-2 country of ip_address, from GeoIP at insert time';
COMMENT ON COLUMN ato.login_events.asn IS 'Autonomous system number of ip_address, where a GeoIP database has it';
COMMENT ON COLUMN ato.login_events.recorded_at IS
    'When the event was stored (set on insert); a row loaded with it set (a restore) is kept as recorded, not enriched again';
COMMENT ON COLUMN ato.login_events.session_id IS
    'The session the login opened or belongs to, where the writer knows it (Okta''s externalSessionId, Entra''s sessionId)';

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
    recorded_at  timestamptz,
    outcome      text,
    session_id   text
) PARTITION BY RANGE (occurred_at);

COMMENT ON TABLE ato.audit_events IS
    'Account changes and other audited actions (user.email_changed, user.mfa.factor.activate, ...), partitioned by month of occurred_at';
COMMENT ON COLUMN ato.audit_events.event_type IS 'Dotted event name, as Okta''s System Log: user.password_changed, billing.modified, ...';
COMMENT ON COLUMN ato.audit_events.target_type IS 'Kind of object acted on (user, factor, app, token, ...)';
COMMENT ON COLUMN ato.audit_events.target_id IS 'Id of the object acted on';
COMMENT ON COLUMN ato.audit_events.recorded_at IS
    'When the event was stored (set on insert); a row loaded with it set (a restore) is kept as recorded, not enriched again';
COMMENT ON COLUMN ato.audit_events.outcome IS
    'Whether the action happened: success, failure, challenge or unknown (as ato.login_outcomes()); NULL: not said, taken as done. A denied grant is a failure, not a grant';
COMMENT ON COLUMN ato.audit_events.session_id IS
    'The session the action was taken in, where the writer knows it';

-- The trigger is the one place events are checked (there are no CHECK
-- constraints repeating it, which would cost every COPY a second pass over
-- the same rules).  It also fires on UPDATE, which is checked like an insert
-- but not enriched again.
CREATE TRIGGER enrich_event BEFORE INSERT OR UPDATE ON ato.login_events
    FOR EACH ROW EXECUTE FUNCTION ato.enrich_event('login');
CREATE TRIGGER enrich_event BEFORE INSERT OR UPDATE ON ato.audit_events
    FOR EACH ROW EXECUTE FUNCTION ato.enrich_event('audit');

-- Rows outside every monthly partition are kept here, never rejected;
-- ato.add_event_partition() (the detection worker's, every cycle) and
-- ato.create_event_partitions() move them into their month (see
-- 04_partitions.sql).
CREATE TABLE ato.login_events_default PARTITION OF ato.login_events DEFAULT;
CREATE TABLE ato.audit_events_default PARTITION OF ato.audit_events DEFAULT;

-- The indexes live on the partitions, not on the partitioned tables: an
-- index the extension script put on a partitioned table would be added again
-- to every partition a restore attaches, and collide with the partition's own
-- dumped index.  The default partitions carry them, and ato.attach_event_month()
-- copies them (LIKE ... INCLUDING INDEXES) to every month it creates.
--
-- Time windows are read through BRIN: events arrive in time order, the index
-- costs next to nothing at insert, and a window reads only its block ranges,
-- once they are summarised.  Until then a range matches every window, so
-- each range is summarised as soon as it is full: by autovacuum
-- (autosummarize) and by ato.maintain_event_partitions(), which the
-- detection worker calls every cycle.  (A VACUUM of a big monthly partition
-- comes only after a fifth of it is new, and every window would read all of
-- that.)
-- Audit events are also looked up per actor (what did this account do after
-- that login?), hence the B-tree.  Per-account login history is kept apart,
-- small, by the detection functions; add
--   CREATE INDEX ON ato.login_events (user_id, occurred_at);
-- if you need every login of one account over all time, at about twice the
-- cost of a COPY (see bench/README.md).
CREATE INDEX login_events_default_occurred_at_idx
    ON ato.login_events_default USING brin (occurred_at) WITH (pages_per_range = 32, autosummarize = on);
CREATE INDEX audit_events_default_occurred_at_idx
    ON ato.audit_events_default USING brin (occurred_at) WITH (pages_per_range = 32, autosummarize = on);
CREATE INDEX audit_events_default_actor_id_idx
    ON ato.audit_events_default (actor_id, occurred_at);
-- An identity provider's event is stored once: ato.import_events() and the
-- bulk views insert ON CONFLICT DO NOTHING against these (a second import of
-- the same export skips what is stored and counts it as a duplicate).  The
-- key is the provider (source), its event id (Okta uuid, Auth0 log_id,
-- Entra id, kept in metadata) and occurred_at, which the partitioning needs
-- in every unique key; an event is always at the same time, so it always
-- meets itself in the same partition.  Only imported rows (source okta,
-- auth0 or entra, with an event id) are in them: an application's own
-- events are never refused for an id.  The text keys compare bytewise
-- (COLLATE "C"): equality is all the key is for, and a locale's comparison
-- costs more at every insert.  The index costs a COPY of imported rows a
-- few microseconds a row (bench/import); rows outside it cost only the
-- predicate.
CREATE UNIQUE INDEX login_events_default_event_id_idx
    ON ato.login_events_default (source COLLATE "C", (metadata ->> 'event_id') COLLATE "C", occurred_at)
 WHERE source IN ('okta', 'auth0', 'entra') AND metadata ? 'event_id';
CREATE UNIQUE INDEX audit_events_default_event_id_idx
    ON ato.audit_events_default (source COLLATE "C", (metadata ->> 'event_id') COLLATE "C", occurred_at)
 WHERE source IN ('okta', 'auth0', 'entra') AND metadata ? 'event_id';
SELECT pg_catalog.pg_extension_config_dump('ato.login_events_default', '');
SELECT pg_catalog.pg_extension_config_dump('ato.audit_events_default', '');
SELECT pg_catalog.pg_extension_config_dump('ato.event_id_seq', '');

-- A shard's range of event ids.  Ids are bigint: the top 16 bits (the sign
-- bit always 0) hold the shard's partition number plus 1, the low 48 its own
-- count, so shard p of a PL/Proxy cluster gives out ((p + 1) << 48) + 1 on
-- (2^48 ids, 281 trillion) and never an id of another shard.  Range 0 (ids
-- below 2^48) is a single server's: the events a move to shards carries over
-- keep their ids, and no shard gives one of them out again.  Citus does the
-- same for a bigint sequence on a worker (its group id << 48, plus 1), so
-- shard p becoming Citus group p + 1 keeps every id where it is.
CREATE FUNCTION ato.set_shard_event_ids(shard_number integer)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    first_id bigint;
    last_id bigint;
    current_id bigint;
    used bigint;
BEGIN
    IF shard_number IS NULL OR shard_number < 0 OR shard_number > 32766 THEN
        RAISE EXCEPTION 'set_shard_event_ids: shard_number must %',
                        CASE WHEN shard_number IS NULL THEN 'not be NULL' ELSE 'be between 0 and 32766' END
            USING ERRCODE = CASE WHEN shard_number IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END,
                  HINT = 'Give the shard''s partition number in the cluster (p0 is 0): its ids carry it, plus 1, in their top 16 bits.';
    END IF;
    first_id := ((shard_number + 1)::bigint << 48) + 1;
    last_id := first_id + ((1::bigint << 48) - 2);
    SELECT s.last_value INTO current_id FROM ato.event_id_seq s;
    IF current_id BETWEEN first_id AND last_id THEN
        -- called before: the sequence goes on where it is
        EXECUTE format('ALTER SEQUENCE ato.event_id_seq MINVALUE %s MAXVALUE %s START WITH %s',
                       first_id, last_id, first_id);
    ELSE
        -- ids of the range already taken (a restore, or events copied from a shard)
        SELECT max(m.id) INTO used
          FROM (SELECT max(l.id) AS id FROM ato.login_events l WHERE l.id BETWEEN first_id AND last_id
                UNION ALL
                SELECT max(a.id) FROM ato.audit_events a WHERE a.id BETWEEN first_id AND last_id) m;
        EXECUTE format('ALTER SEQUENCE ato.event_id_seq MINVALUE %s MAXVALUE %s START WITH %s RESTART WITH %s',
                       first_id, last_id, first_id, coalesce(used + 1, first_id));
    END IF;
    RETURN first_id;
END;
$$;
COMMENT ON FUNCTION ato.set_shard_event_ids(integer) IS
    'Makes this server give out the event ids of shard shard_number (its partition number, p0 is 0): from ((shard_number + 1) << 48) + 1 on, 2^48 of them, so that no two shards give out one id and none gives out a single server''s (below 2^48); returns the range''s first id; called again it changes nothing; after a restore of a dump, call it again (a dump keeps the sequence''s value, not its range)';
REVOKE ALL ON FUNCTION ato.set_shard_event_ids(integer) FROM PUBLIC;
-- install/sections/04_partitions.sql: monthly partitions of the event store: creating, listing and maintaining them.
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- Partitions
-- ---------------------------------------------------------------------------

-- Lock rules (PostgreSQL 15) that shape everything here.  An INSERT or
-- COPY into an event table takes ROW EXCLUSIVE on the table and on each
-- partition a row is routed to, nothing else.  ATTACH PARTITION takes SHARE
-- UPDATE EXCLUSIVE on the table (which no writer conflicts with) but ACCESS
-- EXCLUSIVE on the default partition, which it scans.  DROP TABLE (and plain
-- DETACH) of a partition takes ACCESS EXCLUSIVE on the table and on the
-- default partition; DETACH ... CONCURRENTLY is refused while a default
-- partition exists.  So every strong lock below is asked for with NOWAIT:
-- it is granted only when no transaction holds any lock on the table, and
-- never joins a queue that writers would then wait behind; when refused,
-- the step is left for the next call.

-- The event layout lock (src/event_layout.c): the extension's readers of the
-- event store hold it in share mode before they plan, and the attach of a
-- month that moves rows out of a default partition takes it in exclusive
-- mode, without waiting, so that no reader plans without the new partition
-- and then reads after the rows have left the default one.
CREATE FUNCTION ato.hold_event_layout()
RETURNS void
AS 'MODULE_PATHNAME', 'ato_hold_event_layout_sql'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION ato.hold_event_layout() IS
    'Takes the event layout lock in share mode to the end of the transaction (waiting for a month being attached): what a reader of the event store calls before its statements, so that it never misses the rows of a month moved into its partition meanwhile';
REVOKE ALL ON FUNCTION ato.hold_event_layout() FROM PUBLIC;

CREATE FUNCTION ato.try_change_event_layout()
RETURNS boolean
AS 'MODULE_PATHNAME', 'ato_try_change_event_layout'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION ato.try_change_event_layout() IS
    'Takes the event layout lock in exclusive mode to the end of the transaction if no reader holds it, without waiting; returns whether it did. Used by ato.attach_event_month()';
REVOKE ALL ON FUNCTION ato.try_change_event_layout() FROM PUBLIC;

-- Creates the month of parent beginning at month, moving into it the rows
-- the default partition holds for it.  First, under ROW EXCLUSIVE on the
-- default partition only (writers go on), the month is built apart and the
-- rows moved; then SHARE UPDATE EXCLUSIVE on the table and ACCESS EXCLUSIVE
-- on the default partition, both NOWAIT, the rows stored meanwhile are
-- moved too and the month attached (a scan of the default partition).  All
-- in one transaction: a reader sees the rows in the default partition or
-- in their month, never in neither.  Returns NULL when it cannot without
-- waiting (then nothing is done), or when the month exists.
--
-- A statement that routed its first row before the attach but stores a row
-- of the month in the default partition after it fails ("violates partition
-- constraint": PostgreSQL checks the default partition's bounds again).
-- Hence: the months ahead are created before any row can be routed to them;
-- a past month, when settled is given, only once no row of it was stored
-- for that long (not in the middle of an import of it); and the month of
-- now(), whose live events would be such statements, under ACCESS EXCLUSIVE
-- on the table, so that they wait for the attach and are then routed anew.
CREATE FUNCTION ato.attach_event_month(parent text, month timestamptz, settled interval DEFAULT NULL)
RETURNS regclass
LANGUAGE plpgsql
-- months are UTC months: + interval '1 month' must not be taken in the
-- caller's time zone
SET TimeZone = 'UTC'
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part     text := format('%s_p%s', parent, to_char(month AT TIME ZONE 'UTC', 'YYYY_MM'));
    dflt     text := parent || '_default';
    live     boolean := month = date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    waiting  text := current_setting('lock_timeout');
    move_sql text;
    busy     boolean;
BEGIN
    IF parent IS NULL OR parent NOT IN ('login_events', 'audit_events') THEN
        RAISE EXCEPTION 'parent must be login_events or audit_events, not %', coalesce(parent, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name one of the event tables.';
    END IF;
    IF month IS NULL OR NOT isfinite(month)
       OR month <> date_trunc('month', month AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' THEN
        RAISE EXCEPTION 'month must be the finite beginning of a UTC month, not %', coalesce(month::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give date_trunc(''month'', t AT TIME ZONE ''UTC'') AT TIME ZONE ''UTC''.';
    END IF;
    IF to_regclass(format('ato.%I', part)) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    IF NOT live THEN
        -- Someone holds a lock on the default partition (a transaction
        -- storing rows there, a reader of the whole table): the NOWAIT
        -- below would fail, so do not move a month of rows only to roll
        -- it back.
        IF EXISTS (SELECT FROM pg_catalog.pg_locks l
                    WHERE l.locktype = 'relation'
                      AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())
                      AND l.relation = format('ato.%I', dflt)::regclass
                      AND l.pid <> pg_backend_pid()) THEN
            RETURN NULL;
        END IF;
        IF settled IS NOT NULL THEN
            EXECUTE format('SELECT EXISTS (SELECT FROM ONLY ato.%I WHERE occurred_at >= $1 AND occurred_at < $2 AND recorded_at > now() - $3)',
                           dflt)
               INTO busy USING month, month + interval '1 month', settled;
            IF busy THEN
                RETURN NULL;
            END IF;
        END IF;
    END IF;
    move_sql := format('WITH moved AS (DELETE FROM ONLY ato.%I WHERE occurred_at >= $1 AND occurred_at < $2 RETURNING *) '
                       'INSERT INTO ato.%I SELECT * FROM moved', dflt, part);
    BEGIN
        -- its indexes are those of the default partition; the table's row
        -- triggers come with ATTACH (none fires on the rows moved)
        EXECUTE format('CREATE TABLE ato.%I (LIKE ato.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)',
                       part, dflt);
        -- the month's bounds, checked as the rows come in: ATTACH then takes
        -- them as proven instead of reading every moved row again while it
        -- holds the locks below (dropped once attached, the partition's own
        -- constraint saying the same)
        EXECUTE format('ALTER TABLE ato.%I ADD CONSTRAINT %I CHECK (occurred_at >= %L AND occurred_at < %L)',
                       part, part || '_month', month, month + interval '1 month');
        EXECUTE move_sql USING month, month + interval '1 month';
        IF live THEN
            -- Live events keep the table locked, one short transaction
            -- after another, so NOWAIT would never succeed: wait for those
            -- in progress, but no more than 20 ms (the writers that come
            -- meanwhile queue behind this request for that long).
            PERFORM set_config('lock_timeout', '20ms', true);
            EXECUTE format('LOCK TABLE ONLY ato.%I IN ACCESS EXCLUSIVE MODE', parent);
            PERFORM set_config('lock_timeout', waiting, true);
        ELSE
            EXECUTE format('LOCK TABLE ONLY ato.%I IN SHARE UPDATE EXCLUSIVE MODE NOWAIT', parent);
            -- Readers keep their lock on the table (ACCESS SHARE, which this
            -- does not block): one planning now would list the partitions
            -- without this month, wait for the default partition, and read
            -- once the rows are gone from it.  The extension's readers take
            -- the layout lock first; while one runs, the month waits.
            -- (raised, not returned: the handler below undoes the move)
            IF NOT ato.try_change_event_layout() THEN
                RAISE EXCEPTION 'a reader holds the event layout' USING ERRCODE = 'lock_not_available';
            END IF;
        END IF;
        EXECUTE format('LOCK TABLE ato.%I IN ACCESS EXCLUSIVE MODE NOWAIT', dflt);
        -- nobody else holds the default partition now: what was stored for
        -- the month since the first move is committed, and moves now
        EXECUTE move_sql USING month, month + interval '1 month';
        EXECUTE format('ALTER TABLE ato.%I ATTACH PARTITION ato.%I FOR VALUES FROM (%L) TO (%L)',
                       parent, part, month, month + interval '1 month');
        EXECUTE format('ALTER TABLE ato.%I DROP CONSTRAINT %I', part, part || '_month');
        RETURN format('ato.%I', part)::regclass;
    EXCEPTION
        -- not free; another session creating it at the same time; a row
        -- this snapshot did not see (a caller in REPEATABLE READ); a
        -- partition under another name covering part of the month
        WHEN lock_not_available OR duplicate_table OR check_violation OR invalid_object_definition THEN
            RETURN NULL;
    END;
END
$$;
COMMENT ON FUNCTION ato.attach_event_month(text, timestamptz, interval) IS
    'Creates the monthly partition of one event table (login_events or audit_events) beginning at month, moving in the rows its default partition holds for it, without waiting for a lock (see the README''s section on partitions); with settled, a past month only if none of its rows was stored for that long; returns the partition, or NULL when it exists or cannot be created now';
REVOKE ALL ON FUNCTION ato.attach_event_month(text, timestamptz, interval) FROM PUBLIC;

CREATE FUNCTION ato.create_event_partitions(
    from_time timestamptz,
    to_time   timestamptz DEFAULT now() + interval '3 months')
RETURNS integer
LANGUAGE plpgsql
-- months are UTC months: + interval '1 month' must not be taken in the
-- caller's time zone
SET TimeZone = 'UTC'
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parent   text;
    month    timestamptz;
    live_month timestamptz := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
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

    -- The month of now() last, for both tables: attaching it holds the
    -- table in ACCESS EXCLUSIVE until this transaction commits, which must
    -- then come at once, not after the other months' rows are moved.
    FOREACH parent IN ARRAY ARRAY['login_events', 'audit_events'] LOOP
        month := date_trunc('month', from_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
        WHILE month <= to_time LOOP
            IF month <> live_month AND ato.attach_event_month(parent, month) IS NOT NULL THEN
                created := created + 1;
            END IF;
            month := month + interval '1 month';
        END LOOP;
    END LOOP;
    IF live_month >= date_trunc('month', from_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
       AND live_month <= to_time THEN
        FOREACH parent IN ARRAY ARRAY['login_events', 'audit_events'] LOOP
            IF ato.attach_event_month(parent, live_month) IS NOT NULL THEN
                created := created + 1;
            END IF;
        END LOOP;
    END IF;
    RETURN created;
END
$$;
COMMENT ON FUNCTION ato.create_event_partitions(timestamptz, timestamptz) IS
    'Creates the missing monthly partitions of both event tables covering [from_time, to_time] (UTC months), moving in rows the default partitions hold for them; a month it cannot create without waiting for a lock is left (the detection worker creates it later, see ato.add_event_partition()); returns how many it created';
REVOKE ALL ON FUNCTION ato.create_event_partitions(timestamptz, timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.add_event_partition()
RETURNS regclass
LANGUAGE plpgsql
-- months are UTC months: + interval '1 month' must not be taken in the
-- caller's time zone
SET TimeZone = 'UTC'
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tbl     text;
    month   timestamptz;
    added   regclass;
    tried   timestamptz[];
BEGIN
    FOREACH tbl IN ARRAY ARRAY['login_events', 'audit_events'] LOOP
        -- the month of now() and the next three, before their events come
        -- (a month ahead is created while no row can be routed to it:
        -- ato_response.max_future_skew rejects events from the future)
        FOR month IN
            SELECT m FROM generate_series(date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                                          now() + interval '3 months', interval '1 month') m
             WHERE NOT EXISTS (SELECT FROM ato.event_partitions p
                                WHERE p.parent = tbl AND NOT p.is_default
                                  AND p.lower_bound <= m AND p.upper_bound > m)
             ORDER BY m
        LOOP
            added := ato.attach_event_month(tbl, month);
            IF added IS NOT NULL THEN
                RETURN added;
            END IF;
        END LOOP;
        -- then a month whose rows wait in the default partition (a history
        -- loaded before its months existed), once they have stopped coming
        -- for 10 s: the first row found of a month not tried yet tells
        -- (not the month of now(), tried above)
        tried := ARRAY[date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'];
        FOR attempt IN 1 .. 4 LOOP
            EXECUTE format('SELECT s.m FROM (SELECT date_trunc(''month'', e.occurred_at AT TIME ZONE ''UTC'') AT TIME ZONE ''UTC'' AS m '
                           '                   FROM ONLY ato.%I e '
                           '                  WHERE e.occurred_at >= ''0001-01-01 00:00+00'' AND e.occurred_at < ''10000-01-01 00:00+00'') s '
                           ' WHERE s.m <> ALL ($2) '
                           '   AND to_regclass(format(''ato.%%I'', format(''%%s_p%%s'', $1::text, to_char(s.m AT TIME ZONE ''UTC'', ''YYYY_MM'')))) IS NULL '
                           ' LIMIT 1', tbl || '_default')
               INTO month USING tbl, tried;
            EXIT WHEN month IS NULL;
            added := ato.attach_event_month(tbl, month, interval '10 seconds');
            IF added IS NOT NULL THEN
                RETURN added;
            END IF;
            tried := tried || month;
        END LOOP;
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION ato.add_event_partition() IS
    'Creates one monthly partition the event store lacks: the month of now() and the next three first, then a month whose rows wait in a default partition, none of them stored in the last 10 s (moving them in), without waiting for a lock; returns it, or NULL when none is missing or none can be created now. The detection worker calls it until NULL every cycle, one transaction each; so does ato.maintain_event_partitions(), once';
REVOKE ALL ON FUNCTION ato.add_event_partition() FROM PUBLIC;

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
    'The partitions of the event tables with their time bounds and size; rows in a default partition mean a month has no partition yet (see ato.create_event_partitions())';

CREATE FUNCTION ato.maintain_event_partitions(add_month boolean DEFAULT true,
                                               OUT ranges_summarised integer, OUT partitions_analyzed integer,
                                               OUT partition_added regclass)
LANGUAGE plpgsql
-- a histogram of ten buckets is enough to tell how many events a window
-- holds, and its sample of 3,000 rows is cheap to take every minute
SET default_statistics_target = 10
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part record;
BEGIN
    IF add_month IS NULL THEN
        RAISE EXCEPTION 'maintain_event_partitions: add_month must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Leave it out (true: one missing month is created), or pass false.';
    END IF;
    ranges_summarised := 0;
    partitions_analyzed := 0;
    -- the partitions that take live events: the default ones, and the
    -- months not over a day ago (older ones are left to autovacuum)
    FOR part IN
        SELECT p.partition,
               -- grown by ten pages (about a thousand events) since the
               -- last ANALYZE (or VACUUM) counted them
               pg_relation_size(p.partition) / current_setting('block_size')::bigint
                   - (SELECT c.relpages FROM pg_class c WHERE c.oid = p.partition) >= 10 AS grown,
               (SELECT array_agg(x.indexrelid::regclass ORDER BY x.indexrelid::regclass::text)
                  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am a ON a.oid = i.relam
                 WHERE x.indrelid = p.partition AND a.amname = 'brin') AS brin_indexes
          FROM ato.event_partitions p
         WHERE p.is_default OR p.upper_bound > now() - interval '1 day'
         ORDER BY p.partition::text
    LOOP
        BEGIN
            -- Never wait for a VACUUM of the partition: waiting would cancel
            -- it, every cycle.  It summarises the ranges itself, and the
            -- statistics wait for the next call.
            EXECUTE format('LOCK TABLE %s IN SHARE UPDATE EXCLUSIVE MODE NOWAIT', part.partition);
            ranges_summarised := ranges_summarised
                + coalesce((SELECT sum(brin_summarize_new_values(i))::integer FROM unnest(part.brin_indexes) i), 0);
            -- The newest events are past the histogram of the last ANALYZE,
            -- so the planner takes a window of the last minutes for a few
            -- rows and sorts or probes where it should hash.
            IF part.grown THEN
                EXECUTE format('ANALYZE %s (occurred_at)', part.partition);
                partitions_analyzed := partitions_analyzed + 1;
            END IF;
        EXCEPTION WHEN lock_not_available THEN
            NULL;
        END;
    END LOOP;
    -- last, so that the lock it may take on a default partition is held
    -- only to the commit; whatever goes wrong there must not undo the
    -- summaries and statistics above (the detection worker passes false:
    -- it adds the months itself, after the refresh of the summaries)
    IF NOT add_month THEN
        RETURN;
    END IF;
    BEGIN
        partition_added := ato.add_event_partition();
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'maintain_event_partitions: no month added: %', SQLERRM
            USING ERRCODE = SQLSTATE,
                  HINT = 'ato.add_event_partition() alone shows the error with its context.';
    END;
END
$$;
COMMENT ON FUNCTION ato.maintain_event_partitions(boolean) IS
    'Keeps the event partitions that take live events fast to read: summarises their new BRIN block ranges (a range not yet summarised is read by every time window) and refreshes the planner''s statistics of occurred_at where about a thousand events or more came since the last ANALYZE (windows of the last minutes are then planned for their real size); skips a partition that VACUUM is busy with; then, unless add_month is false, creates one missing month, as ato.add_event_partition() (partition_added). The detection worker calls it every cycle, with add_month false';
REVOKE ALL ON FUNCTION ato.maintain_event_partitions(boolean) FROM PUBLIC;
-- install/sections/05_recording.sql: ato.record_login() and ato.record_event(), the application's way in, and their bulk forms ato.record_logins() and ato.record_events().
-- A piece of the install script, which the Makefile assembles: not loadable alone.

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
REVOKE ALL ON FUNCTION ato.record_login(text, inet, text, timestamptz, text, text, jsonb) FROM PUBLIC;

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
REVOKE ALL ON FUNCTION ato.record_event(text, text, timestamptz, inet, text, text, text, text, jsonb) FROM PUBLIC;

-- The bulk forms, for imports through a proxy (which cannot pass COPY on):
-- one array per column, element i of each making event i.  Each row is
-- checked and enriched by the table's trigger as the one-row form's is.

-- The arrays' shape, checked alike by both bulk writers (and by the
-- proxy's, which has a copy): the required ones given, all one-dimensional,
-- of one length, at most 100000.  names and lengths (cardinality(), NULL
-- for a NULL array) in the caller's order, the first "required" required.
CREATE FUNCTION ato.bulk_length(caller text, names text[], required integer, lengths integer[], dims integer[],
                                hint text)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n constant integer := lengths[1];
BEGIN
    FOR i IN 1 .. required LOOP
        IF lengths[i] IS NULL THEN
            RAISE EXCEPTION '%: % must not be NULL', caller, names[i]
                USING ERRCODE = 'null_value_not_allowed', HINT = hint;
        END IF;
    END LOOP;
    IF EXISTS (SELECT FROM unnest(dims) d WHERE d > 1) THEN
        RAISE EXCEPTION '%: every array must be one-dimensional', caller
            USING ERRCODE = 'array_subscript_error', HINT = hint;
    END IF;
    IF n > 100000 THEN
        RAISE EXCEPTION '%: % events in one call, more than 100000', caller, n
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'Send the import in calls of at most 100000 events (each call is one transaction on each server).';
    END IF;
    IF EXISTS (SELECT FROM unnest(lengths) l WHERE l <> n) THEN
        RAISE EXCEPTION '%: the arrays differ in length (%)', caller,
                        (SELECT string_agg(format('%s %s', u.name, coalesce(u.length::text, 'NULL')), ', ' ORDER BY u.k)
                           FROM unnest(names, lengths) WITH ORDINALITY u(name, length, k))
            USING ERRCODE = 'array_subscript_error', HINT = hint;
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION ato.bulk_length(text, text[], integer, integer[], integer[], text) IS
    'For the bulk writers (ato.record_logins(), ato.record_events()): the common length of their arrays, after checking that the required ones are given, that all are one-dimensional, of one length and at most 100000 long';
REVOKE ALL ON FUNCTION ato.bulk_length(text, text[], integer, integer[], integer[], text) FROM PUBLIC;

CREATE FUNCTION ato.record_logins(
    user_ids    text[],
    ips         inet[],
    outcomes    text[],
    times       timestamptz[] DEFAULT NULL,
    user_agents text[]        DEFAULT NULL,
    sources     text[]        DEFAULT NULL,
    metadata    jsonb[]       DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    recorded bigint;
BEGIN
    PERFORM ato.bulk_length(
        'record_logins', '{user_ids,outcomes,ips,times,user_agents,sources,metadata}', 2,
        ARRAY[cardinality(user_ids), cardinality(outcomes), cardinality(ips), cardinality(times),
              cardinality(user_agents), cardinality(sources), cardinality(metadata)],
        ARRAY[array_ndims(user_ids), array_ndims(outcomes), array_ndims(ips), array_ndims(times),
              array_ndims(user_agents), array_ndims(sources), array_ndims(metadata)],
        'Pass one array per column, all of the same length: element i of each is login i (ips, times, user_agents, sources and metadata may be NULL for none).');
    -- in the arrays' order, so that the ids follow it
    INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, user_agent, source, metadata)
    SELECT u.user_id, u.ip, u.outcome, CASE WHEN times IS NULL THEN now() ELSE u.occurred_at END,
           u.user_agent, u.source, u.metadata
      FROM unnest(user_ids, ips, outcomes, times, user_agents, sources, metadata)
           WITH ORDINALITY AS u(user_id, ip, outcome, occurred_at, user_agent, source, metadata, n)
     ORDER BY u.n;
    GET DIAGNOSTICS recorded = ROW_COUNT;
    RETURN recorded;
END;
$$;
COMMENT ON FUNCTION ato.record_logins(text[], inet[], text[], timestamptz[], text[], text[], jsonb[]) IS
    'Stores many login attempts in one call, element i of every array making one (times NULL: now(); ips, user_agents, sources, metadata NULL: none), each checked and GeoIP-enriched as record_login''s, in one transaction (a bad row fails the call); at most 100000 a call; returns how many it stored';
REVOKE ALL ON FUNCTION ato.record_logins(text[], inet[], text[], timestamptz[], text[], text[], jsonb[]) FROM PUBLIC;

CREATE FUNCTION ato.record_events(
    actor_ids    text[],
    event_types  text[],
    times        timestamptz[] DEFAULT NULL,
    ips          inet[]        DEFAULT NULL,
    target_types text[]        DEFAULT NULL,
    target_ids   text[]        DEFAULT NULL,
    user_agents  text[]        DEFAULT NULL,
    sources      text[]        DEFAULT NULL,
    metadata     jsonb[]       DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    recorded bigint;
BEGIN
    PERFORM ato.bulk_length(
        'record_events', '{actor_ids,event_types,times,ips,target_types,target_ids,user_agents,sources,metadata}', 2,
        ARRAY[cardinality(actor_ids), cardinality(event_types), cardinality(times), cardinality(ips),
              cardinality(target_types), cardinality(target_ids), cardinality(user_agents), cardinality(sources),
              cardinality(metadata)],
        ARRAY[array_ndims(actor_ids), array_ndims(event_types), array_ndims(times), array_ndims(ips),
              array_ndims(target_types), array_ndims(target_ids), array_ndims(user_agents), array_ndims(sources),
              array_ndims(metadata)],
        'Pass one array per column, all of the same length: element i of each is event i (all but actor_ids and event_types may be NULL for none).');
    INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address, target_type, target_id,
                                  user_agent, source, metadata)
    SELECT u.actor_id, u.event_type, CASE WHEN times IS NULL THEN now() ELSE u.occurred_at END, u.ip,
           u.target_type, u.target_id, u.user_agent, u.source, u.metadata
      FROM unnest(actor_ids, event_types, times, ips, target_types, target_ids, user_agents, sources, metadata)
           WITH ORDINALITY AS u(actor_id, event_type, occurred_at, ip, target_type, target_id, user_agent, source,
                                metadata, n)
     ORDER BY u.n;
    GET DIAGNOSTICS recorded = ROW_COUNT;
    RETURN recorded;
END;
$$;
COMMENT ON FUNCTION ato.record_events(text[], text[], timestamptz[], inet[], text[], text[], text[], text[], jsonb[]) IS
    'Stores many audit events in one call, element i of every array making one (times NULL: now(); the other optional arrays NULL: none), each checked and GeoIP-enriched as record_event''s, in one transaction (a bad row fails the call); at most 100000 a call; returns how many it stored';
REVOKE ALL ON FUNCTION ato.record_events(text[], text[], timestamptz[], inet[], text[], text[], text[], text[], jsonb[]) FROM PUBLIC;
-- install/sections/06_summaries.sql: the per-account and recent summaries, their watermark and ato.refresh_summaries() (write side in src/summary.c).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- Per-account summaries
-- ---------------------------------------------------------------------------

CREATE TABLE ato.account_countries (
    user_id          text        NOT NULL,
    country_code     text        NOT NULL,
    first_success_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, country_code)
);
-- the pairs first seen in a window: what makes new_country_logins cost the
-- window and not the number of accounts
CREATE INDEX account_countries_first_success_at_idx ON ato.account_countries (first_success_at);
COMMENT ON TABLE ato.account_countries IS
    'Per account, the countries it has logged in from successfully, with the first such login: what makes a country familiar, kept by ato.refresh_summaries()';
SELECT pg_catalog.pg_extension_config_dump('ato.account_countries', '');

-- Not dumped: after a restore the watermark starts again at -infinity, and
-- the first refresh folds the whole store in once more (it only ever adds,
-- so that is harmless).  Each refresh rewrites the row of every account that
-- logged in since the last one: half-full pages let those updates stay on
-- their page (HOT) instead of adding an index entry each time.  The same
-- holds for the per-hour rows of ato.recent_address_logins.
CREATE TABLE ato.account_last_logins (
    user_id      text             PRIMARY KEY,
    event_id     bigint           NOT NULL,
    occurred_at  timestamptz      NOT NULL,
    ip_address   inet,
    country_code text,
    latitude     double precision NOT NULL,
    longitude    double precision NOT NULL,
    approximate  boolean          NOT NULL
) WITH (fillfactor = 50);
COMMENT ON TABLE ato.account_last_logins IS
    'Per account, its latest successful login with a place (coordinates, or a country centre when approximate) before the summaries'' watermark; ato.impossible_travel() takes the previous login from here instead of re-reading the history';
SELECT pg_catalog.pg_extension_config_dump('ato.account_last_logins', '');

-- The recent summaries: the last two days of successful logins in the shapes
-- two questions need, so that they read what they return instead of every
-- login of their window.  Rows older than summary_watermark.recent_from are
-- pruned at each refresh; a window starting before it reads the event store.
-- Not dumped, like the watermark they hang on.
CREATE TABLE ato.recent_new_country_logins (
    event_id         bigint      NOT NULL,
    user_id          text        NOT NULL,
    ip_address       inet,
    country_code     text,
    occurred_at      timestamptz NOT NULL,
    first_success_at timestamptz -- the pair's, as in ato.account_countries
);
CREATE INDEX recent_new_country_logins_occurred_at_idx ON ato.recent_new_country_logins (occurred_at);
COMMENT ON TABLE ato.recent_new_country_logins IS
    'The successful logins since ato.summary_watermark.recent_from whose (account, country) pair was first seen since then, with that first time, and those with no known country: what ato.new_country_logins() reads for the summarised part of its window';

CREATE TABLE ato.recent_address_logins (
    ip_address  inet        NOT NULL,
    user_id     text        NOT NULL,
    hour        timestamptz NOT NULL,
    logins      bigint      NOT NULL,
    first_login timestamptz NOT NULL,
    last_login  timestamptz NOT NULL,
    PRIMARY KEY (ip_address, user_id, hour)
) WITH (fillfactor = 50);
CREATE INDEX recent_address_logins_hour_idx ON ato.recent_address_logins (hour);
COMMENT ON TABLE ato.recent_address_logins IS
    'Successful logins since ato.summary_watermark.recent_from per address, account and hour: what ato.cidr_scope() reads, by address, for the summarised whole hours of its window';

CREATE TABLE ato.summary_watermark (
    singleton          boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    summarised_until   timestamptz NOT NULL DEFAULT '-infinity',
    recent_from        timestamptz NOT NULL DEFAULT '-infinity',
    refreshed_at       timestamptz,
    last_refresh_pairs bigint
);
INSERT INTO ato.summary_watermark DEFAULT VALUES;
COMMENT ON TABLE ato.summary_watermark IS
    'The watermark of the per-account summaries: every successful login before summarised_until is counted, but on the days in ato.summary_late_days; the recent summaries hold what lies between recent_from and the watermark';

-- Appended to, never updated, by the transactions that store late events,
-- so that they neither wait for each other nor fail to serialize.
CREATE TABLE ato.summary_late_days (
    day timestamptz NOT NULL
);
COMMENT ON TABLE ato.summary_late_days IS
    'Days behind the watermark on which events were stored after the last refresh (imports, delayed reports, updates); the next refresh folds them in again';

-- Written by ato.refresh_summaries() before it waits for the transactions
-- storing events, outside its transaction, and read by them without waiting
-- (see src/summary.c).  Not dumped, like the watermark.
CREATE SEQUENCE ato.summary_refresh_bound AS bigint
    MINVALUE -9223372036854775808 START WITH -9223372036854775808 NO CYCLE;
COMMENT ON SEQUENCE ato.summary_refresh_bound IS
    'The watermark the running (or last) ato.refresh_summaries() moves to, as a timestamptz''s microseconds since 2000 (the minimum: -infinity); a login stored behind it gets its late day';

CREATE FUNCTION ato.summary_refresh_begin(until timestamptz)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'ato_summary_refresh_begin'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION ato.summary_refresh_begin(timestamptz) IS
    'The start of ato.refresh_summaries(): takes the refresh lock, publishes the watermark it moves to (returned) and waits for the transactions then storing login events, without making any transaction wait';
REVOKE ALL ON FUNCTION ato.summary_refresh_begin(timestamptz) FROM PUBLIC;

CREATE VIEW ato.summary_status AS
SELECT s.summarised_until,
       (SELECT min(l.day) FROM ato.summary_late_days l) AS late_from,
       s.recent_from,
       s.refreshed_at,
       s.last_refresh_pairs,
       CASE WHEN b.last_value = -9223372036854775808 THEN '-infinity'::timestamptz
            ELSE timestamptz '2000-01-01 00:00+00' + b.last_value * interval '1 microsecond' END AS refreshing_to,
       (SELECT count(DISTINCT l.day) FROM ato.summary_late_days l) AS late_days
  FROM ato.summary_watermark s, ato.summary_refresh_bound b;
COMMENT ON VIEW ato.summary_status IS
    'How far the per-account summaries reach: counted up to summarised_until except on the late_days days from late_from on, the recent ones from recent_from; when and with how many changes ato.refresh_summaries() last ran; refreshing_to, where the last or running refresh moves the watermark (a refresh folding a history in steps of max_span is done when summarised_until reaches it)';

CREATE FUNCTION ato.refresh_summaries(until    timestamptz DEFAULT now() - interval '5 minutes',
                                      max_span interval    DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    state       ato.summary_watermark;
    upto        timestamptz;   -- the watermark this refresh moves to (published)
    reach       timestamptz;   -- where this call stops: upto, or short of it when max_span runs out
    budget      interval := max_span;
    stretch_from timestamptz;
    keep_from   timestamptz;
    recent_fold timestamptz;
    late        record;
    late_rows   tid[] := '{}';
    late_touch  timestamptz;   -- the earliest late day folded that the recent summaries cover
    ranges      tstzrange[] := '{}';
    fold        tstzrange;
    folded_late boolean := false;
    changed     bigint := 0;
    n           bigint;
BEGIN
    IF until IS NULL OR until = 'infinity' THEN
        RAISE EXCEPTION 'until must be a finite time'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it out to summarise up to five minutes ago.';
    END IF;
    IF max_span IS NOT NULL AND NOT (max_span > interval '0') THEN
        RAISE EXCEPTION 'max_span must be positive, not %', max_span
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the stretch of history one call may fold, such as ''7 days'', or leave it out to fold everything.';
    END IF;
    -- One refresh at a time; publish the watermark this one moves to (never
    -- backwards, never within the last minute, which a storing transaction
    -- trusts to be beyond it without reading anything), and wait for the
    -- transactions storing events without making any wait: one that began
    -- before has ended, one that began since has marked its late logins
    -- against what was published (see src/summary.c).  Every statement
    -- below reads with a snapshot taken after the wait.
    -- no month attached under the statements below (src/event_layout.c)
    PERFORM ato.hold_event_layout();
    upto := ato.summary_refresh_begin(until);
    SELECT * INTO STRICT state FROM ato.summary_watermark FOR UPDATE;
    -- The recent summaries keep the two days (whole UTC hours) before the
    -- watermark this refresh moves to, also when a call stops short of it.
    keep_from := greatest(state.recent_from, date_trunc('hour', upto - interval '48 hours', 'UTC'));

    -- What to fold, oldest first.  The late days behind the watermark, a day
    -- each (a writer lists every day it stored a late login on): the
    -- per-account summaries only ever take a minimum or a maximum, so
    -- folding a day again is exact, and nothing else needs reading.  They
    -- are deleted at the end: exactly those read, since writers may append
    -- more meanwhile.  A day at or past the watermark is in the stretch
    -- below.  max_span counts a day for each.
    FOR late IN SELECT l.day, array_agg(l.ctid) AS rows FROM ato.summary_late_days l GROUP BY l.day ORDER BY l.day LOOP
        EXIT WHEN budget IS NOT NULL AND budget <= interval '0';
        IF late.day < state.summarised_until THEN
            -- consecutive days are folded as one stretch (a history imported
            -- behind the watermark is a run of days)
            IF folded_late AND upper(ranges[cardinality(ranges)]) = late.day THEN
                ranges[cardinality(ranges)] := tstzrange(lower(ranges[cardinality(ranges)]),
                                                         least(late.day + interval '24 hours', state.summarised_until));
            ELSE
                ranges := ranges || tstzrange(late.day, least(late.day + interval '24 hours', state.summarised_until));
            END IF;
            folded_late := true;
            IF late_touch IS NULL AND late.day + interval '24 hours' > keep_from THEN
                late_touch := late.day;
            END IF;
        END IF;
        late_rows := late_rows || late.rows;
        budget := budget - interval '24 hours';
    END LOOP;
    -- Then the stretch from the watermark on, as far as max_span allows (a
    -- first refresh of a history begins at its first success).
    reach := upto;
    IF budget IS NOT NULL THEN
        stretch_from := state.summarised_until;
        IF stretch_from = '-infinity' THEN
            SELECT min(e.occurred_at) INTO stretch_from
              FROM ato.login_events e WHERE e.occurred_at < upto AND e.outcome = 'success';
        END IF;
        IF budget <= interval '0' THEN
            reach := state.summarised_until;
        ELSIF stretch_from IS NOT NULL THEN
            reach := least(upto, greatest(stretch_from + budget, state.summarised_until));
        END IF;
    END IF;
    IF state.summarised_until < reach THEN
        ranges := ranges || tstzrange(state.summarised_until, reach);
    END IF;

    FOREACH fold IN ARRAY ranges LOOP
        -- Only new pairs and earlier first logins are written: a known pair
        -- is skipped before the insert, since ON CONFLICT would lock its row
        -- (a write) even where it changes nothing.
        INSERT INTO ato.account_countries AS k (user_id, country_code, first_success_at)
        SELECT g.user_id, g.country_code, g.first_success_at
          FROM (SELECT e.user_id, e.country_code, min(e.occurred_at) AS first_success_at
                  FROM ato.login_events e
                 WHERE e.occurred_at >= lower(fold) AND e.occurred_at < upper(fold)
                   AND e.outcome = 'success' AND e.country_code IS NOT NULL
                 GROUP BY e.user_id, e.country_code) g
         WHERE NOT EXISTS (SELECT FROM ato.account_countries p
                            WHERE p.user_id = g.user_id AND p.country_code = g.country_code
                              AND p.first_success_at <= g.first_success_at)
        ON CONFLICT (user_id, country_code) DO UPDATE
           SET first_success_at = excluded.first_success_at
         WHERE excluded.first_success_at < k.first_success_at;
        GET DIAGNOSTICS n = ROW_COUNT;
        changed := changed + n;
        -- Most accounts have a row already: one UPDATE moves those (cheaper
        -- than an INSERT ... ON CONFLICT per account), the INSERT adds the
        -- others (it sees the table as it was before the statement).  The
        -- accounts are sorted by their bytes: the order does not matter, and
        -- sorting by the database's collation costs a fifth more.
        WITH latest AS MATERIALIZED (
            SELECT DISTINCT ON (e.user_id COLLATE "C") e.user_id, e.id, e.occurred_at, e.ip_address,
                   e.country_code, e.lat, e.lon, e.approximate
              FROM ato.located_logins e
             WHERE e.occurred_at >= lower(fold) AND e.occurred_at < upper(fold) AND e.outcome = 'success'
             ORDER BY e.user_id COLLATE "C", e.occurred_at DESC, e.id DESC),
        moved AS (
            UPDATE ato.account_last_logins k
               SET event_id = n.id, occurred_at = n.occurred_at, ip_address = n.ip_address,
                   country_code = n.country_code, latitude = n.lat, longitude = n.lon, approximate = n.approximate
              FROM latest n
             WHERE k.user_id = n.user_id AND (n.occurred_at, n.id) > (k.occurred_at, k.event_id))
        INSERT INTO ato.account_last_logins (user_id, event_id, occurred_at, ip_address, country_code,
                                             latitude, longitude, approximate)
        SELECT n.user_id, n.id, n.occurred_at, n.ip_address, n.country_code, n.lat, n.lon, n.approximate
          FROM latest n
         WHERE NOT EXISTS (SELECT FROM ato.account_last_logins k WHERE k.user_id = n.user_id);
    END LOOP;
    -- Only late events can move a pair's first success earlier.  Moved
    -- before the recent stretch, the pair is no longer young: its recent
    -- logins go.  Moved within it, they go too, and come back with the
    -- stretch built again below from the late day on.
    IF folded_late THEN
        DELETE FROM ato.recent_new_country_logins r
         USING ato.account_countries k
         WHERE k.user_id = r.user_id AND k.country_code = r.country_code
           AND k.first_success_at < r.first_success_at;
    END IF;

    -- The recent summaries are added to from the old watermark on; when a
    -- late day folded in lies in their stretch, it is built again from that
    -- day, since counts cannot be folded in twice.
    recent_fold := greatest(state.summarised_until, keep_from);
    IF late_touch IS NOT NULL THEN
        recent_fold := greatest(late_touch, keep_from);
        DELETE FROM ato.recent_address_logins WHERE hour >= recent_fold;
        DELETE FROM ato.recent_new_country_logins WHERE occurred_at >= recent_fold;
    END IF;
    IF recent_fold < reach THEN
        INSERT INTO ato.recent_address_logins AS k (ip_address, user_id, hour, logins, first_login, last_login)
        SELECT e.ip_address, e.user_id, date_trunc('hour', e.occurred_at, 'UTC'), count(*), min(e.occurred_at), max(e.occurred_at)
          FROM ato.login_events e
         WHERE e.occurred_at >= recent_fold AND e.occurred_at < reach
           AND e.outcome = 'success' AND e.ip_address IS NOT NULL
         GROUP BY 1, 2, 3
        ON CONFLICT (ip_address, user_id, hour) DO UPDATE
           SET logins = k.logins + excluded.logins,
               first_login = least(k.first_login, excluded.first_login),
               last_login = greatest(k.last_login, excluded.last_login);
        -- a login's pair is young when first seen since keep_from: any
        -- window starting at or after it finds its new pairs here
        INSERT INTO ato.recent_new_country_logins (event_id, user_id, ip_address, country_code, occurred_at,
                                                   first_success_at)
        SELECT e.id, e.user_id, e.ip_address, e.country_code, e.occurred_at, young.first_success_at
          FROM ato.login_events e
          LEFT JOIN (SELECT p.user_id, p.country_code, p.first_success_at FROM ato.account_countries p
                      WHERE p.first_success_at >= keep_from) young
                 ON young.user_id = e.user_id AND young.country_code = e.country_code
         WHERE e.occurred_at >= recent_fold AND e.occurred_at < reach AND e.outcome = 'success'
           AND (e.country_code IS NULL OR young.user_id IS NOT NULL);
    END IF;
    DELETE FROM ato.recent_address_logins WHERE hour < keep_from;
    DELETE FROM ato.recent_new_country_logins WHERE occurred_at < keep_from;

    DELETE FROM ato.summary_late_days WHERE ctid = ANY (late_rows);
    UPDATE ato.summary_watermark
       SET summarised_until = reach, recent_from = keep_from,
           refreshed_at = now(), last_refresh_pairs = changed;
    RETURN changed;
END
$$;
COMMENT ON FUNCTION ato.refresh_summaries(timestamptz, interval) IS
    'Folds the successful logins stored since the last run (and the late days behind it) into ato.account_countries and the other summaries, up to until (at most a minute ago); returns how many (account, country) pairs it added or moved. With max_span, folds at most that much history (a late day counts as a day) and stops short, to be called again: each call commits what it folded, and ato.summary_status shows how far it is. It waits for the transactions already storing events and never makes one wait; one runs at a time, at READ COMMITTED. Schedule it every minute or so, or let the detection worker run it';
REVOKE ALL ON FUNCTION ato.refresh_summaries(timestamptz, interval) FROM PUBLIC;
-- install/sections/07_detection.sql: the detection functions (src/detect.c) and the data they read: listed networks, persistence event types, country centres.
-- A piece of the install script, which the Makefile assembles: not loadable alone.

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
REVOKE ALL ON FUNCTION ato.new_country_logins(timestamptz, interval, text[]) FROM PUBLIC;

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
REVOKE ALL ON FUNCTION ato.cidr_scope(cidr[], timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.suspicious_action_counts(
    user_ids text[],
    since    timestamptz DEFAULT now() - interval '24 hours')
RETURNS TABLE (event_type text, actions bigint, accounts bigint)
AS 'MODULE_PATHNAME', 'ato_suspicious_action_counts'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.suspicious_action_counts(text[], timestamptz) IS
    'What the given accounts did since then: audit events by type, with how many of the accounts did each, most frequent first';
REVOKE ALL ON FUNCTION ato.suspicious_action_counts(text[], timestamptz) FROM PUBLIC;

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
REVOKE ALL ON FUNCTION ato.credential_stuffing(timestamptz, integer, double precision) FROM PUBLIC;

-- What credential_stuffing counts, in a shape that adds up across shards
-- (ato_response_proxy): the counts without the rate, every source or some.
CREATE FUNCTION ato.credential_stuffing_counts(
    since        timestamptz,
    min_attempts integer DEFAULT 1,
    sources      text[]  DEFAULT NULL)
RETURNS TABLE (source_kind text, source text, attempts bigint, successes bigint, accounts bigint)
AS 'MODULE_PATHNAME', 'ato_credential_stuffing_counts'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.credential_stuffing_counts(timestamptz, integer, text[]) IS
    'This server''s login attempts, successes and accounts per source since then (as ato.credential_stuffing() groups them), for the sources with at least min_attempts, of those named in sources (''<kind> <source>'') or of all when it is NULL: the shards'' counts add up to one node''s (accounts are disjoint across shards)';
REVOKE ALL ON FUNCTION ato.credential_stuffing_counts(timestamptz, integer, text[]) FROM PUBLIC;

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
REVOKE ALL ON FUNCTION ato.password_spray(timestamptz, integer, double precision) FROM PUBLIC;

-- What password_spray counts, in a shape that adds up across shards.
CREATE FUNCTION ato.password_spray_counts(
    since        timestamptz,
    min_accounts integer DEFAULT 0,
    addresses    inet[]  DEFAULT NULL)
RETURNS TABLE (ip_address inet, accounts bigint, accounts_tried bigint, attempts bigint, failures bigint,
               successes bigint, first_attempt timestamptz, last_attempt timestamptz)
AS 'MODULE_PATHNAME', 'ato_password_spray_counts'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.password_spray_counts(timestamptz, integer, inet[]) IS
    'This server''s login attempts per address since then, for the addresses that failed against at least min_accounts accounts (0: every address), of those in addresses or of all when it is NULL: accounts failed against, accounts tried, attempts, failures, successes, first and last attempt; the shards'' counts add up to one node''s, and ato.password_spray()''s attempts_per_account is attempts / accounts_tried of the sums';
REVOKE ALL ON FUNCTION ato.password_spray_counts(timestamptz, integer, inet[]) FROM PUBLIC;

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
REVOKE ALL ON FUNCTION ato.failed_login_bursts(timestamptz, integer, interval) FROM PUBLIC;

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

-- The way to list and unlist one network by hand, as block_network() and
-- unblock_network() are for blocking; feeds still arrive by COPY.
CREATE FUNCTION ato.list_network(network cidr, label text, source text DEFAULT NULL,
                                 expires_at timestamptz DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF network IS NULL OR label IS NULL OR label = '' THEN
        RAISE EXCEPTION 'list_network: network and label must not be NULL or empty'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'For example SELECT ato.list_network(''198.51.100.0/24'', ''hosting'', ''abuse feed'').';
    END IF;
    IF expires_at <= now() THEN
        RAISE EXCEPTION 'list_network: expires_at % is not in the future', expires_at
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a later time, or NULL to list it until ato.unlist_network() is called.';
    END IF;
    DELETE FROM ato.listed_networks n
     WHERE n.network = list_network.network AND n.label = list_network.label;
    INSERT INTO ato.listed_networks (network, label, source, expires_at)
    VALUES (network, label, source, expires_at);
END;
$$;
COMMENT ON FUNCTION ato.list_network(cidr, text, text, timestamptz) IS
    'Lists a network under a label for ato.listed_network_logins() until expires_at (NULL: until unlisted); listing it again under the same label replaces source and expiry';
REVOKE ALL ON FUNCTION ato.list_network(cidr, text, text, timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.unlist_network(network cidr, label text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    removed integer;
BEGIN
    DELETE FROM ato.listed_networks n
     WHERE n.network = unlist_network.network
       AND (unlist_network.label IS NULL OR n.label = unlist_network.label);
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END;
$$;
COMMENT ON FUNCTION ato.unlist_network(cidr, text) IS
    'Removes a network''s listing under label (NULL: under every label); returns how many were removed';
REVOKE ALL ON FUNCTION ato.unlist_network(cidr, text) FROM PUBLIC;

CREATE FUNCTION ato.listed_network_logins(
    since  timestamptz DEFAULT now() - interval '24 hours',
    labels text[]      DEFAULT NULL)
RETURNS TABLE (user_id text, ip_address inet, occurred_at timestamptz, network cidr, label text, source text)
AS 'MODULE_PATHNAME', 'ato_listed_network_logins'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.listed_network_logins(timestamptz, text[]) IS
    'Successful logins since then from a network of ato.listed_networks that had not expired at the time (only those with one of labels, when given), one row per login and matching listing';
REVOKE ALL ON FUNCTION ato.listed_network_logins(timestamptz, text[]) FROM PUBLIC;

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
    ('%identity%link%',                   'identity_linked',      true),
    -- a new account is a way back in that survives the victim's password reset
    ('user.lifecycle.create',             'account_created',      true),
    -- the same changes under Microsoft Entra ID's and Auth0's own names (ato.import_events())
    ('Add user',                          'account_created',      true),
    ('Add member to role',                'role_granted',         true),
    ('User registered security info',     'mfa_factor_added',     true),
    ('User deleted security info',        'mfa_factor_removed',   true),
    ('Add service principal credentials', 'api_token_created',    true),
    ('gd_enrollment_complete',            'mfa_factor_added',     true),
    ('gd_unenroll',                       'mfa_factor_removed',   true),
    ('sce',                               'email_changed',        true);
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
REVOKE ALL ON FUNCTION ato.persistence_changes(text[], timestamptz) FROM PUBLIC;

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
REVOKE ALL ON FUNCTION ato.related_accounts(text[], timestamptz, integer) FROM PUBLIC;

-- related_accounts in three steps that compose across shards: what the
-- given accounts used, how many accounts used those user agents, and the
-- accounts related to what every shard saw.
CREATE FUNCTION ato.related_accounts_seen(user_ids text[], since timestamptz)
RETURNS TABLE (given_id text, ip_address inet, user_agent text)
AS 'MODULE_PATHNAME', 'ato_related_accounts_seen'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.related_accounts_seen(text[], timestamptz) IS
    'The addresses and user agents of the given accounts'' successful logins since then on this server, one row per distinct triple: the first step of ato.related_accounts() across shards';
REVOKE ALL ON FUNCTION ato.related_accounts_seen(text[], timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.user_agent_accounts(user_agents text[], since timestamptz)
RETURNS TABLE (user_agent text, accounts bigint)
AS 'MODULE_PATHNAME', 'ato_user_agent_accounts'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.user_agent_accounts(text[], timestamptz) IS
    'How many accounts of this server logged in successfully since then with each of the given user agents (the shards'' counts add up): the second step of ato.related_accounts() across shards, which keeps the rare ones';
REVOKE ALL ON FUNCTION ato.user_agent_accounts(text[], timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.related_accounts_to(
    user_ids         text[],
    since            timestamptz,
    seen_ids         text[],
    seen_addresses   inet[],
    seen_user_agents text[])
RETURNS TABLE (user_id text, shared_addresses inet[], shared_user_agents text[], related_to text[],
               logins bigint, first_login timestamptz, last_login timestamptz)
AS 'MODULE_PATHNAME', 'ato_related_accounts_to'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.related_accounts_to(text[], timestamptz, text[], inet[], text[]) IS
    'ato.related_accounts() of this server''s accounts, given what the accounts used on every shard (element i of the seen arrays: a given account, an address it logged in from, and a rare user agent it used or NULL): the last step across shards; the union over the shards is one node''s answer';
REVOKE ALL ON FUNCTION ato.related_accounts_to(text[], timestamptz, text[], inet[], text[]) FROM PUBLIC;

-- Impossible travel.  Where GeoIP has no coordinates, a login is placed at
-- the rough centre of its country (one decimal, written for this purpose:
-- good for "Paris to Sydney in an hour", not for neighbouring towns).
CREATE TABLE ato.country_centroids (
    country_code text             PRIMARY KEY,
    latitude     double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude    double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180)
);
COMMENT ON TABLE ato.country_centroids IS
    'Rough geographic centre of each country (ISO 3166 alpha-2), where ato.impossible_travel() places a login that has a country but no coordinates';
INSERT INTO ato.country_centroids (country_code, latitude, longitude) VALUES
    ('AD', 42.5, 1.6), ('AE', 23.9, 54.0), ('AF', 33.9, 67.7), ('AG', 17.1, -61.8),
    ('AI', 18.2, -63.1), ('AL', 41.2, 20.2), ('AM', 40.1, 45.0), ('AO', -11.2, 17.9),
    ('AQ', -75.3, 0.0), ('AR', -38.4, -63.6), ('AS', -14.3, -170.7), ('AT', 47.5, 14.6),
    ('AU', -25.3, 133.8), ('AW', 12.5, -70.0), ('AX', 60.2, 20.0), ('AZ', 40.1, 47.6),
    ('BA', 43.9, 17.7), ('BB', 13.2, -59.5), ('BD', 23.7, 90.4), ('BE', 50.5, 4.5),
    ('BF', 12.2, -1.6), ('BG', 42.7, 25.5), ('BH', 26.0, 50.6), ('BI', -3.4, 29.9),
    ('BJ', 9.3, 2.3), ('BL', 17.9, -62.8), ('BM', 32.3, -64.8), ('BN', 4.5, 114.7),
    ('BO', -16.3, -63.6), ('BQ', 12.2, -68.3), ('BR', -14.2, -51.9), ('BS', 25.0, -77.4),
    ('BT', 27.5, 90.4), ('BW', -22.3, 24.7), ('BY', 53.7, 28.0), ('BZ', 17.2, -88.5),
    ('CA', 56.1, -106.3), ('CC', -12.2, 96.9), ('CD', -4.0, 21.8), ('CF', 6.6, 20.9),
    ('CG', -0.2, 15.8), ('CH', 46.8, 8.2), ('CI', 7.5, -5.5), ('CK', -21.2, -159.8),
    ('CL', -35.7, -71.5), ('CM', 7.4, 12.4), ('CN', 35.9, 104.2), ('CO', 4.6, -74.3),
    ('CR', 9.7, -83.8), ('CU', 21.5, -77.8), ('CV', 16.0, -24.0), ('CW', 12.2, -69.0),
    ('CX', -10.5, 105.7), ('CY', 35.1, 33.4), ('CZ', 49.8, 15.5), ('DE', 51.2, 10.5),
    ('DJ', 11.8, 42.6), ('DK', 56.3, 9.5), ('DM', 15.4, -61.4), ('DO', 18.7, -70.2),
    ('DZ', 28.0, 1.7), ('EC', -1.8, -78.2), ('EE', 58.6, 25.0), ('EG', 26.8, 30.8),
    ('EH', 24.2, -12.9), ('ER', 15.2, 39.8), ('ES', 40.5, -3.7), ('ET', 9.1, 40.5),
    ('FI', 61.9, 25.7), ('FJ', -17.7, 178.1), ('FK', -51.8, -59.5), ('FM', 7.4, 150.6),
    ('FO', 61.9, -6.9), ('FR', 46.2, 2.2), ('GA', -0.8, 11.6), ('GB', 55.4, -3.4),
    ('GD', 12.1, -61.7), ('GE', 42.3, 43.4), ('GF', 3.9, -53.1), ('GG', 49.5, -2.6),
    ('GH', 7.9, -1.0), ('GI', 36.1, -5.4), ('GL', 71.7, -42.6), ('GM', 13.4, -15.3),
    ('GN', 9.9, -9.7), ('GP', 16.3, -61.6), ('GQ', 1.7, 10.3), ('GR', 39.1, 21.8),
    ('GT', 15.8, -90.2), ('GU', 13.4, 144.8), ('GW', 11.8, -15.2), ('GY', 4.9, -58.9),
    ('HK', 22.4, 114.1), ('HN', 15.2, -86.2), ('HR', 45.1, 15.2), ('HT', 19.0, -72.3),
    ('HU', 47.2, 19.5), ('ID', -0.8, 113.9), ('IE', 53.4, -8.2), ('IL', 31.0, 34.9),
    ('IM', 54.2, -4.5), ('IN', 20.6, 79.0), ('IO', -6.3, 71.9), ('IQ', 33.2, 43.7),
    ('IR', 32.4, 53.7), ('IS', 65.0, -19.0), ('IT', 41.9, 12.6), ('JE', 49.2, -2.1),
    ('JM', 18.1, -77.3), ('JO', 30.6, 36.2), ('JP', 36.2, 138.3), ('KE', -0.0, 37.9),
    ('KG', 41.2, 74.8), ('KH', 12.6, 105.0), ('KI', 1.9, -157.4), ('KM', -11.9, 43.9),
    ('KN', 17.4, -62.8), ('KP', 40.3, 127.5), ('KR', 35.9, 127.8), ('KW', 29.3, 47.5),
    ('KY', 19.3, -81.3), ('KZ', 48.0, 66.9), ('LA', 19.9, 102.5), ('LB', 33.9, 35.9),
    ('LC', 13.9, -61.0), ('LI', 47.2, 9.6), ('LK', 7.9, 80.8), ('LR', 6.4, -9.4),
    ('LS', -29.6, 28.2), ('LT', 55.2, 23.9), ('LU', 49.8, 6.1), ('LV', 56.9, 24.6),
    ('LY', 26.3, 17.2), ('MA', 31.8, -7.1), ('MC', 43.7, 7.4), ('MD', 47.4, 28.4),
    ('ME', 42.7, 19.4), ('MF', 18.1, -63.1), ('MG', -18.8, 46.9), ('MH', 7.1, 171.2),
    ('MK', 41.6, 21.7), ('ML', 17.6, -4.0), ('MM', 21.9, 96.0), ('MN', 46.9, 103.8),
    ('MO', 22.2, 113.5), ('MP', 15.2, 145.7), ('MQ', 14.6, -61.0), ('MR', 21.0, -10.9),
    ('MS', 16.7, -62.2), ('MT', 35.9, 14.4), ('MU', -20.3, 57.6), ('MV', 3.2, 73.2),
    ('MW', -13.3, 34.3), ('MX', 23.6, -102.6), ('MY', 4.2, 102.0), ('MZ', -18.7, 35.5),
    ('NA', -22.9, 18.5), ('NC', -20.9, 165.6), ('NE', 17.6, 8.1), ('NF', -29.0, 168.0),
    ('NG', 9.1, 8.7), ('NI', 12.9, -85.2), ('NL', 52.1, 5.3), ('NO', 60.5, 8.5),
    ('NP', 28.4, 84.1), ('NR', -0.5, 166.9), ('NU', -19.1, -169.9), ('NZ', -40.9, 174.9),
    ('OM', 21.5, 55.9), ('PA', 8.5, -80.8), ('PE', -9.2, -75.0), ('PF', -17.7, -149.4),
    ('PG', -6.3, 143.9), ('PH', 12.9, 121.8), ('PK', 30.4, 69.3), ('PL', 51.9, 19.1),
    ('PM', 46.9, -56.3), ('PN', -24.7, -127.4), ('PR', 18.2, -66.6), ('PS', 31.9, 35.2),
    ('PT', 39.4, -8.2), ('PW', 7.5, 134.6), ('PY', -23.4, -58.4), ('QA', 25.4, 51.2),
    ('RE', -21.1, 55.5), ('RO', 45.9, 25.0), ('RS', 44.0, 21.0), ('RU', 61.5, 105.3),
    ('RW', -1.9, 29.9), ('SA', 23.9, 45.1), ('SB', -9.6, 160.2), ('SC', -4.7, 55.5),
    ('SD', 12.9, 30.2), ('SE', 60.1, 18.6), ('SG', 1.4, 103.8), ('SH', -15.9, -5.7),
    ('SI', 46.2, 15.0), ('SJ', 77.6, 23.7), ('SK', 48.7, 19.7), ('SL', 8.5, -11.8),
    ('SM', 43.9, 12.5), ('SN', 14.5, -14.5), ('SO', 5.2, 46.2), ('SR', 3.9, -56.0),
    ('SS', 6.9, 31.3), ('ST', 0.2, 6.6), ('SV', 13.8, -88.9), ('SX', 18.0, -63.1),
    ('SY', 34.8, 39.0), ('SZ', -26.5, 31.5), ('TC', 21.7, -71.8), ('TD', 15.5, 18.7),
    ('TF', -49.3, 69.3), ('TG', 8.6, 0.8), ('TH', 15.9, 101.0), ('TJ', 38.9, 71.3),
    ('TK', -9.2, -171.8), ('TL', -8.9, 125.7), ('TM', 39.0, 59.6), ('TN', 33.9, 9.5),
    ('TO', -21.2, -175.2), ('TR', 39.0, 35.2), ('TT', 10.7, -61.2), ('TV', -7.1, 177.6),
    ('TW', 23.7, 121.0), ('TZ', -6.4, 34.9), ('UA', 48.4, 31.2), ('UG', 1.4, 32.3),
    ('UM', 19.3, 166.6), ('US', 37.1, -95.7), ('UY', -32.5, -55.8), ('UZ', 41.4, 64.6),
    ('VA', 41.9, 12.5), ('VC', 13.3, -61.2), ('VE', 6.4, -66.6), ('VG', 18.4, -64.6),
    ('VI', 18.3, -64.9), ('VN', 14.1, 108.3), ('VU', -15.4, 166.9), ('WF', -13.8, -177.2),
    ('WS', -13.8, -172.1), ('XK', 42.6, 20.9), ('YE', 15.6, 48.5), ('YT', -12.8, 45.2),
    ('ZA', -30.6, 22.9), ('ZM', -13.1, 27.8), ('ZW', -19.0, 29.2);

CREATE VIEW ato.located_logins AS
SELECT l.id, l.user_id, l.ip_address, l.country_code, l.occurred_at, l.outcome,
       coalesce(l.latitude, c.latitude) AS lat, coalesce(l.longitude, c.longitude) AS lon,
       l.latitude IS NULL OR l.longitude IS NULL AS approximate
  FROM ato.login_events l
  LEFT JOIN ato.country_centroids c ON c.country_code = l.country_code
 WHERE (l.latitude IS NOT NULL AND l.longitude IS NOT NULL) OR c.country_code IS NOT NULL;
COMMENT ON VIEW ato.located_logins IS
    'Login events with a place: their own coordinates, or their country''s centre (approximate); what ato.impossible_travel() and ato.account_last_logins measure distances between';

CREATE FUNCTION ato.impossible_travel(
    since         timestamptz      DEFAULT now() - interval '24 hours',
    max_speed_kmh double precision DEFAULT 900,
    min_distance_km double precision DEFAULT 500,
    lookback      interval         DEFAULT interval '24 hours')
RETURNS TABLE (user_id text, from_ip inet, from_country text, from_at timestamptz,
               to_ip inet, to_country text, to_at timestamptz,
               distance_km double precision, speed_kmh double precision, approximate boolean)
AS 'MODULE_PATHNAME', 'ato_impossible_travel'
LANGUAGE C STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.impossible_travel(timestamptz, double precision, double precision, interval) IS
    'Consecutive successful logins of an account, the later one since then (the earlier up to lookback before), at least min_distance_km apart and faster than max_speed_kmh, into a country the account had not logged in from before since (so that VPN and carrier hops between its usual places stay quiet); approximate when a country centre stood in for coordinates';
REVOKE ALL ON FUNCTION ato.impossible_travel(timestamptz, double precision, double precision, interval) FROM PUBLIC;

-- Two detections over what an identity provider tells (src/import's metadata
-- layout, install/sections/11_import.sql): plain SQL over the event store.
CREATE FUNCTION ato.provider_flagged_logins(since timestamptz DEFAULT now() - interval '1 hour')
RETURNS TABLE (user_id text, occurred_at timestamptz, ip_address inet, provider text,
               risk_level text, proxy boolean, anonymizer boolean, threat_suspected boolean, event_id bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF since IS NULL THEN
        RAISE EXCEPTION 'ato.provider_flagged_logins: since must not be NULL'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Give the start of the window, for example now() - interval ''1 hour''.';
    END IF;
    RETURN QUERY
    SELECT e.user_id, e.occurred_at, e.ip_address, e.metadata ->> 'provider',
           upper(e.metadata #>> '{risk,level}'),
           (e.metadata #>> '{risk,proxy}')::boolean,
           (e.metadata #>> '{risk,anonymizer}')::boolean,
           (e.metadata #>> '{risk,threat_suspected}')::boolean,
           e.id
      FROM ato.login_events e
     WHERE e.occurred_at >= since AND e.outcome = 'success' AND e.metadata ? 'risk'
       AND (upper(e.metadata #>> '{risk,level}') = 'HIGH'
            OR e.metadata #>> '{risk,proxy}' = 'true'
            OR e.metadata #>> '{risk,anonymizer}' = 'true'
            OR e.metadata #>> '{risk,threat_suspected}' = 'true')
     ORDER BY e.occurred_at, e.id;
END;
$$;
COMMENT ON FUNCTION ato.provider_flagged_logins(timestamptz) IS
    'Successful logins since then that the identity provider itself flagged: risk level high (Okta debugData risk, Entra riskLevelDuringSignIn), an anonymising proxy (Okta securityContext.isProxy, Entra anonymizedIPAddress) or a suspected threat (Okta threatSuspected)';
REVOKE ALL ON FUNCTION ato.provider_flagged_logins(timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.session_hijacks(since timestamptz DEFAULT now() - interval '1 hour')
RETURNS TABLE (session_id text, user_id text, networks bigint, countries text[], asns bigint[],
               ips inet[], first_seen timestamptz, last_seen timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF since IS NULL THEN
        RAISE EXCEPTION 'ato.session_hijacks: since must not be NULL'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Give the start of the window, for example now() - interval ''1 hour''.';
    END IF;
    -- a session's network is its ASN where known, else its country: one
    -- session from two of them at once is a stolen cookie or token
    RETURN QUERY
    SELECT s.session_id, min(s.user_id), count(DISTINCT s.network),
           array_agg(DISTINCT s.country_code ORDER BY s.country_code) FILTER (WHERE s.country_code IS NOT NULL),
           array_agg(DISTINCT s.asn ORDER BY s.asn) FILTER (WHERE s.asn IS NOT NULL),
           array_agg(DISTINCT s.ip_address ORDER BY s.ip_address),
           min(s.occurred_at), max(s.occurred_at)
      FROM (SELECT e.session_id, e.user_id, e.ip_address, e.country_code, e.asn, e.occurred_at,
                   coalesce('AS' || e.asn, e.country_code) AS network
              FROM ato.login_events e
             WHERE e.occurred_at >= since AND e.session_id IS NOT NULL AND e.outcome = 'success'
            UNION ALL
            SELECT a.session_id, a.actor_id, a.ip_address, a.country_code, a.asn, a.occurred_at,
                   coalesce('AS' || a.asn, a.country_code)
              FROM ato.audit_events a
             WHERE a.occurred_at >= since AND a.session_id IS NOT NULL) s
     WHERE s.network IS NOT NULL
     GROUP BY s.session_id
    HAVING count(DISTINCT s.network) > 1
     ORDER BY min(s.occurred_at), s.session_id;
END;
$$;
COMMENT ON FUNCTION ato.session_hijacks(timestamptz) IS
    'Sessions (the identity provider''s session id: Okta externalSessionId, Entra sessionId) used since then from more than one network (its ASN, else its country): a stolen session cookie or token';
REVOKE ALL ON FUNCTION ato.session_hijacks(timestamptz) FROM PUBLIC;

-- MFA fatigue (push bombing, MITRE ATT&CK T1621): an attacker who has the
-- password asks for second factors until the owner, worn down, approves one.
-- The prompts are what the import records as metadata's mfa.challenge (sent,
-- denied, approved; see 11_import.sql), which an application's own events may
-- carry too.  A row is an approval (an approved challenge, or any successful
-- login) after at least min_denials prompts that were not approved within
-- denial_window before it and since the account's previous approval: the
-- denied ones (denied, failed, timed out), or the prompts sent but never
-- answered (all sent but the approved one), whichever is more.
-- Defaults: 3 in 10 minutes.  Elastic's rule "Potential Abuse of Repeated MFA
-- Push Notifications" raises on two denied Okta pushes then a sign-in within
-- 10 minutes, its hunting query "Rapid MFA Deny Push Notifications" on more
-- than 5 denials in 10 minutes without an approval, Splunk's "Azure AD
-- Multiple Denied MFA Requests For User" on more than 9 in 10 minutes
-- without one; an approval after 3 is the middle ground, one more than an
-- owner's mistyped code and a retry.
CREATE FUNCTION ato.mfa_fatigue_logins(
    since         timestamptz DEFAULT now() - interval '1 hour',
    min_denials   integer     DEFAULT 3,
    denial_window interval    DEFAULT interval '10 minutes')
RETURNS TABLE (user_id text, approved_at timestamptz, approval text, ip_address inet, denials bigint,
               unanswered bigint, first_prompt timestamptz, last_prompt timestamptz, prompt_ips inet[],
               provider text, event_id bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF since IS NULL OR min_denials IS NULL OR denial_window IS NULL THEN
        RAISE EXCEPTION 'ato.mfa_fatigue_logins: since, min_denials and denial_window must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Leave out an argument to keep its default: min_denials 3, denial_window interval ''10 minutes''.';
    END IF;
    IF NOT isfinite(since) THEN
        RAISE EXCEPTION 'ato.mfa_fatigue_logins: since must be a finite time'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give the start of the window, for example now() - interval ''1 hour''.';
    END IF;
    IF min_denials < 1 THEN
        RAISE EXCEPTION 'ato.mfa_fatigue_logins: min_denials must be at least 1'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give a whole number of at least 1.';
    END IF;
    IF denial_window <= interval '0' OR denial_window > interval '1 day' THEN
        RAISE EXCEPTION 'ato.mfa_fatigue_logins: denial_window must be more than 0 and at most a day'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give a length of time such as interval ''10 minutes''.';
    END IF;
    RETURN QUERY
    WITH prompts AS (
        SELECT a.actor_id AS user_id, a.occurred_at, a.id, a.ip_address, a.event_type,
               a.metadata #>> '{mfa,challenge}' AS challenge, a.metadata ->> 'provider' AS provider
          FROM ato.audit_events a
         WHERE a.occurred_at >= since - denial_window AND a.metadata #>> '{mfa,challenge}' IS NOT NULL
        UNION ALL
        SELECT l.user_id, l.occurred_at, l.id, l.ip_address, coalesce(l.metadata ->> 'event_type', 'login'),
               CASE WHEN l.outcome = 'success' THEN 'approved' ELSE l.metadata #>> '{mfa,challenge}' END,
               l.metadata ->> 'provider'
          FROM ato.login_events l
         WHERE l.occurred_at >= since - denial_window
           AND (l.outcome = 'success' OR l.metadata #>> '{mfa,challenge}' IS NOT NULL)),
    -- the account's approvals so far number its runs of prompts: a run ends
    -- in its approval, if it has one yet (the sort and the window functions
    -- are one pass each: no prompt is read again per approval)
    runs AS (
        SELECT p.*, count(*) FILTER (WHERE p.challenge = 'approved')
                        OVER (PARTITION BY p.user_id ORDER BY p.occurred_at, p.challenge = 'approved', p.id
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS run
          FROM prompts p
         WHERE p.challenge IN ('sent', 'denied', 'approved')),
    closed AS (
        SELECT r.*, max(r.occurred_at) FILTER (WHERE r.challenge = 'approved')
                        OVER (PARTITION BY r.user_id, r.run) AS run_approved_at
          FROM runs r),
    found AS (
        SELECT c.user_id, c.run_approved_at,
               (array_agg(c.event_type) FILTER (WHERE c.challenge = 'approved'))[1] AS approval,
               (array_agg(c.ip_address) FILTER (WHERE c.challenge = 'approved'))[1] AS approval_ip,
               (array_agg(c.provider) FILTER (WHERE c.challenge = 'approved'))[1] AS approval_provider,
               (array_agg(c.id) FILTER (WHERE c.challenge = 'approved'))[1] AS approval_id,
               count(*) FILTER (WHERE c.challenge = 'denied' AND c.occurred_at > c.run_approved_at - denial_window) AS n_denied,
               count(*) FILTER (WHERE c.challenge = 'sent' AND c.occurred_at > c.run_approved_at - denial_window) AS n_sent,
               min(c.occurred_at) FILTER (WHERE c.challenge <> 'approved' AND c.occurred_at > c.run_approved_at - denial_window) AS first_at,
               max(c.occurred_at) FILTER (WHERE c.challenge <> 'approved' AND c.occurred_at > c.run_approved_at - denial_window) AS last_at,
               array_agg(DISTINCT c.ip_address ORDER BY c.ip_address)
                   FILTER (WHERE c.challenge <> 'approved' AND c.occurred_at > c.run_approved_at - denial_window
                             AND c.ip_address IS NOT NULL) AS ips
          FROM closed c
         WHERE c.run_approved_at >= since
         GROUP BY c.user_id, c.run, c.run_approved_at)
    SELECT f.user_id, f.run_approved_at, f.approval, f.approval_ip, f.n_denied, greatest(f.n_sent - 1, 0),
           f.first_at, f.last_at, f.ips, f.approval_provider, f.approval_id
      FROM found f
     WHERE greatest(f.n_denied, f.n_sent - 1) >= min_denials
     ORDER BY f.run_approved_at, f.approval_id;
END;
$$;
COMMENT ON FUNCTION ato.mfa_fatigue_logins(timestamptz, integer, interval) IS
    'MFA fatigue (push bombing): approvals since then (an approved second factor or a successful login) after at least min_denials second-factor prompts not approved within denial_window before and since the previous approval (denied, failed or timed out, or sent and never answered; metadata mfa.challenge as ato.import_events() records it). Defaults 3 in 10 minutes, after Elastic''s Okta push rules (2 denials then a sign-in in 10 minutes; more than 5 denials in 10 minutes) and Splunk''s Azure AD rule (more than 9 in 10 minutes)';
REVOKE ALL ON FUNCTION ato.mfa_fatigue_logins(timestamptz, integer, interval) FROM PUBLIC;
-- install/sections/08_response.sql: incidents, per-account revocation, the application's tables to mark, account flags, blocked networks (src/revoke.c, src/targets.c, src/incident_worker.c).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- Response: incidents, per-account revocation, the application's tables to
-- mark, account flags, blocked networks (src/revoke.c, src/targets.c,
-- src/incident_worker.c)
-- ---------------------------------------------------------------------------

CREATE TABLE ato.revocation_targets (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    target regclass NOT NULL UNIQUE,
    target_name text NOT NULL,
    user_column name NOT NULL,
    action text NOT NULL,
    state_column name,
    time_column name,
    reason_column name,
    incident_column name,
    created_column name,
    registered_at timestamptz NOT NULL DEFAULT now(),
    registered_by name NOT NULL
);
COMMENT ON TABLE ato.revocation_targets IS
    'The application''s tables an incident marks, one row each (see ato.register_revocation_target())';
COMMENT ON COLUMN ato.revocation_targets.target_name IS
    'The table''s name when it was registered, for messages after it was dropped';
COMMENT ON COLUMN ato.revocation_targets.action IS
    'end: set state_column (a time) where it is NULL; revoke: set the boolean state_column to true; deactivate: set it to false; delete: delete the rows';
SELECT pg_catalog.pg_extension_config_dump('ato.revocation_targets', '');
SELECT pg_catalog.pg_extension_config_dump('ato.revocation_targets_id_seq', '');

CREATE TABLE ato.incidents (
    id uuid PRIMARY KEY,
    opened_at timestamptz NOT NULL,
    opened_by name NOT NULL,
    reason text NOT NULL,
    user_ids text[] NOT NULL,
    duplicate_ids integer NOT NULL,
    unknown_ids integer NOT NULL,
    suspend boolean NOT NULL,
    reauth_required boolean NOT NULL,
    mfa_reenrollment_required boolean NOT NULL,
    password_reset_required boolean NOT NULL,
    delete_created_after timestamptz,
    revocation_channel text NOT NULL,
    batch_size integer NOT NULL,
    batches integer NOT NULL,
    batches_done integer NOT NULL DEFAULT 0,
    in_background boolean NOT NULL,
    marked_at timestamptz,
    status text NOT NULL
);
CREATE INDEX incidents_marking_idx ON ato.incidents (opened_at) WHERE status = 'marking';
COMMENT ON TABLE ato.incidents IS
    'One row per ato.revoke_incident() call: who opened it, why, its accounts (sorted, without duplicates) and how far the marking of the application''s rows has got';
COMMENT ON COLUMN ato.incidents.opened_at IS 'The revocation time: sessions and tokens issued at or before it are revoked';
COMMENT ON COLUMN ato.incidents.opened_by IS 'session_user of the call';
COMMENT ON COLUMN ato.incidents.unknown_ids IS 'Accounts with no successful login from a located address in the event store (the summaries and the events after them) when the incident opened; revoked all the same';
COMMENT ON COLUMN ato.incidents.status IS
    'marking: rows are being marked; contained: every batch is done; lifted: every account the incident suspended was lifted';
SELECT pg_catalog.pg_extension_config_dump('ato.incidents', '');

CREATE TABLE ato.incident_targets (
    incident_id uuid NOT NULL REFERENCES ato.incidents (id) ON DELETE CASCADE,
    target_id integer NOT NULL,
    target_name text NOT NULL,
    rows_touched bigint NOT NULL DEFAULT 0,
    failed_batches integer NOT NULL DEFAULT 0,
    last_error text,
    mismatched_ids bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (incident_id, target_id)
);
COMMENT ON TABLE ato.incident_targets IS
    'Per incident and registered table: rows marked so far, batches that failed on it and the last error';
COMMENT ON COLUMN ato.incident_targets.mismatched_ids IS
    'Ids of the incident that are not valid values of the table''s account column type (an e-mail address where it holds bigint): no row of the table was marked for them';
SELECT pg_catalog.pg_extension_config_dump('ato.incident_targets', '');

CREATE VIEW ato.incident_progress AS
SELECT i.id AS incident_id, i.status, i.opened_at,
       cardinality(i.user_ids) AS accounts_total,
       least(i.batches_done::bigint * i.batch_size, cardinality(i.user_ids)) AS accounts_done,
       i.batches_done, i.batches, i.in_background,
       t.target_name AS target, t.rows_touched, t.failed_batches, t.last_error, t.mismatched_ids
  FROM ato.incidents i
  LEFT JOIN ato.incident_targets t ON t.incident_id = i.id;
COMMENT ON VIEW ato.incident_progress IS
    'How far each incident''s marking has got: accounts done of total, and per registered table the rows touched and failures';

CREATE TABLE ato.account_revocations (
    user_id text COLLATE "C" PRIMARY KEY,
    revoked_at timestamptz NOT NULL,
    incident_id uuid
);
COMMENT ON TABLE ato.account_revocations IS
    'Per account, the time before which every session and token is revoked (as Firebase''s tokensValidAfterTime); read it with ato.session_revoked()';
SELECT pg_catalog.pg_extension_config_dump('ato.account_revocations', '');

-- The outbox of the batches' announcements: a NOTIFY is lost to a listener
-- that is not connected (and a crash drops every listener), this is not.
CREATE TABLE ato.revocation_outbox (
    position bigint PRIMARY KEY,
    incident_id uuid NOT NULL,
    batch integer NOT NULL,
    batches integer NOT NULL,
    revoked_at timestamptz NOT NULL,
    user_ids text[] NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    shard text
);
COMMENT ON TABLE ato.revocation_outbox IS
    'One row per marked batch of an incident, written in the batch''s own transaction: its accounts and the revocation time, at a position that grows by one in commit order; read it with ato.revocations_since()';
COMMENT ON COLUMN ato.revocation_outbox.shard IS
    'The name of the shard that wrote the row (ato_response.shard_name), NULL on a single server';
SELECT pg_catalog.pg_extension_config_dump('ato.revocation_outbox', '');

-- Its one row is updated by every batch that writes the outbox and so stays
-- locked until that batch commits: the next writer takes the next position
-- only after the previous one is visible.  Dumped, so that a restored
-- database goes on from the same position.
CREATE TABLE ato.revocation_outbox_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_position bigint NOT NULL,
    discarded_through bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE ato.revocation_outbox_state IS
    'The outbox''s last position given out, and the last one retention removed (ato.apply_retention()); no row until the first batch';
SELECT pg_catalog.pg_extension_config_dump('ato.revocation_outbox_state', '');

CREATE TABLE ato.account_flags (
    user_id text COLLATE "C" PRIMARY KEY,
    suspended boolean NOT NULL DEFAULT false,
    reauth_required boolean NOT NULL DEFAULT false,
    mfa_reenrollment_required boolean NOT NULL DEFAULT false,
    password_reset_required boolean NOT NULL DEFAULT false,
    incident_id uuid,
    reason text,
    updated_at timestamptz NOT NULL
);
COMMENT ON TABLE ato.account_flags IS
    'Steps an account must take before it may sign in again; ato.login_gate() reads them';
COMMENT ON COLUMN ato.account_flags.incident_id IS 'The incident that set the flags last, if any; ato.lift_incident() only lifts its own';
SELECT pg_catalog.pg_extension_config_dump('ato.account_flags', '');

CREATE TABLE ato.response_log (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    logged_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    logged_by name NOT NULL DEFAULT session_user,
    action text NOT NULL,
    incident_id uuid,
    user_ids text[],
    detail text
);
COMMENT ON TABLE ato.response_log IS
    'Every response step: incidents opened, flags set and cleared, lifting stages, networks blocked and unblocked';
SELECT pg_catalog.pg_extension_config_dump('ato.response_log', '');
SELECT pg_catalog.pg_extension_config_dump('ato.response_log_id_seq', '');

CREATE TABLE ato.blocked_networks (
    network cidr PRIMARY KEY,
    reason text NOT NULL,
    blocked_at timestamptz NOT NULL,
    blocked_by name NOT NULL,
    expires_at timestamptz
);
CREATE INDEX blocked_networks_network_idx ON ato.blocked_networks USING gist (network inet_ops);
COMMENT ON TABLE ato.blocked_networks IS
    'Networks ato.login_gate() refuses, until expires_at (NULL: until unblocked)';
SELECT pg_catalog.pg_extension_config_dump('ato.blocked_networks', '');

CREATE FUNCTION ato.register_revocation_target(
    target regclass,
    user_column name,
    action text,
    state_column name DEFAULT NULL,
    time_column name DEFAULT NULL,
    reason_column name DEFAULT NULL,
    incident_column name DEFAULT NULL,
    created_column name DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'ato_register_revocation_target'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.register_revocation_target(regclass, name, text, name, name, name, name, name) IS
    'Registers a table of the application whose rows an incident marks or deletes; action is end, revoke, deactivate or delete; the caller must be allowed to UPDATE (DELETE) it; returns the target''s id';
REVOKE ALL ON FUNCTION ato.register_revocation_target(regclass, name, text, name, name, name, name, name) FROM PUBLIC;

CREATE FUNCTION ato.unregister_revocation_target(target text)
RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM ato.revocation_targets t
         WHERE $1 IN (t.target_name, t.target::text)
        RETURNING t.id)
    SELECT count(*) > 0 FROM gone;
$$;
COMMENT ON FUNCTION ato.unregister_revocation_target(text) IS
    'Stops incidents from marking a table, named as in ato.revocation_targets.target_name (which also works once it was dropped); true if it was registered';
REVOKE ALL ON FUNCTION ato.unregister_revocation_target(text) FROM PUBLIC;

CREATE FUNCTION ato.revoke_incident(
    user_ids text[],
    reason text,
    suspend boolean DEFAULT false,
    reauth_required boolean DEFAULT true,
    mfa_reenrollment_required boolean DEFAULT false,
    password_reset_required boolean DEFAULT false,
    delete_created_after timestamptz DEFAULT NULL,
    incident_id uuid DEFAULT NULL)
RETURNS uuid
AS 'MODULE_PATHNAME', 'ato_revoke_incident'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.revoke_incident(text[], text, boolean, boolean, boolean, boolean, timestamptz, uuid) IS
    'Opens an incident: revokes every session and token of the accounts issued until now and sets their flags (one commit), then marks the registered tables in batches, each recorded in ato.revocation_outbox with a NOTIFY of its position, in this transaction or, past ato_response.inline_marking_limit accounts, in a background worker; returns the incident''s id (incident_id, when given: one id for an incident across shards, and a retry with the same id and accounts does nothing again)';
REVOKE ALL ON FUNCTION ato.revoke_incident(text[], text, boolean, boolean, boolean, boolean, timestamptz, uuid) FROM PUBLIC;

CREATE FUNCTION ato.resume_incidents()
RETURNS boolean
AS 'MODULE_PATHNAME', 'ato_resume_incidents'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.resume_incidents() IS
    'Starts a background worker that finishes the marking of every incident still marking in this database (needed after a restart when the library is not preloaded); false if none could be started';
REVOKE ALL ON FUNCTION ato.resume_incidents() FROM PUBLIC;

-- Single sessions or devices revoked on their own (a lost phone, "sign out
-- this device"), by the id the application gives them.
CREATE TABLE ato.session_revocations (
    user_id text COLLATE "C" NOT NULL,
    session_id text COLLATE "C" NOT NULL,
    revoked_at timestamptz NOT NULL,
    revoked_by name NOT NULL,
    reason text NOT NULL,
    PRIMARY KEY (user_id, session_id)
);
COMMENT ON TABLE ato.session_revocations IS
    'Single sessions or devices of an account revoked by ato.revoke_session(), by the application''s own id for them';
SELECT pg_catalog.pg_extension_config_dump('ato.session_revocations', '');

CREATE TYPE ato.session_verdict AS ENUM ('valid', 'suspended', 'revoked', 'session_revoked');
COMMENT ON TYPE ato.session_verdict IS
    'Why a session or token is accepted or refused: valid; suspended (the account is, whenever the session was issued); revoked (issued at or before the account''s revocation time); session_revoked (this session or device was revoked on its own)';

-- The one rule for sessions (src/sessions.c), in every request's path.
CREATE FUNCTION ato.session_status(user_id text, issued_at timestamptz, session_id text DEFAULT NULL,
                                   OUT refused boolean, OUT verdict ato.session_verdict,
                                   OUT incident_id uuid, OUT revoked_at timestamptz, OUT reason text)
RETURNS record
AS 'MODULE_PATHNAME', 'ato_session_status'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.session_status(text, timestamptz, text) IS
    'Whether a session or token of the account, issued at issued_at (and with the application''s session or device id, if given), must be refused, and why: the verdict (suspended before session_revoked before revoked), the incident, when and the reason';
REVOKE ALL ON FUNCTION ato.session_status(text, timestamptz, text) FROM PUBLIC;

CREATE FUNCTION ato.session_statuses(user_ids text[], issued_ats timestamptz[], session_ids text[] DEFAULT NULL)
RETURNS TABLE (n integer, user_id text, issued_at timestamptz, session_id text,
               refused boolean, verdict ato.session_verdict, incident_id uuid, revoked_at timestamptz, reason text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    PERFORM ato.check_account_ids('session_statuses', 'user_ids', user_ids);
    IF issued_ats IS NULL OR cardinality(issued_ats) <> cardinality(user_ids)
       OR cardinality(session_ids) <> cardinality(user_ids) THEN
        RAISE EXCEPTION 'session_statuses: issued_ats (and session_ids, if given) must have one element per user id'
            USING ERRCODE = CASE WHEN issued_ats IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END,
                  HINT = 'Pass arrays of the same length, element i describing session i; a NULL issue time counts as revoked when the account was.';
    END IF;
    RETURN QUERY
    SELECT q.n::integer, q.user_id, q.issued_at, q.session_id,
           s.refused, s.verdict, s.incident_id, s.revoked_at, s.reason
      FROM unnest(user_ids, issued_ats, coalesce(session_ids, array_fill(NULL::text, ARRAY[cardinality(user_ids)])))
           WITH ORDINALITY AS q(user_id, issued_at, session_id, n)
     CROSS JOIN LATERAL ato.session_status(q.user_id, q.issued_at, q.session_id) s
     ORDER BY q.n;
END;
$$;
COMMENT ON FUNCTION ato.session_statuses(text[], timestamptz[], text[]) IS
    'ato.session_status() for many sessions or tokens in one call (element i of each array is session i): one row each, in their order';
REVOKE ALL ON FUNCTION ato.session_statuses(text[], timestamptz[], text[]) FROM PUBLIC;

CREATE FUNCTION ato.session_revoked(user_id text, issued_at timestamptz)
RETURNS boolean
AS 'MODULE_PATHNAME', 'ato_session_revoked'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.session_revoked(text, timestamptz) IS
    'True if a session or token of the account issued at issued_at must be rejected: an incident revoked the account at or after that time (an unknown issue time counts as revoked), or the account is suspended; ato.session_status() says why';
REVOKE ALL ON FUNCTION ato.session_revoked(text, timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.revoke_session(user_id text, session_id text, reason text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ato.check_account_id('revoke_session', 'user_id', user_id);
    IF session_id IS NULL OR reason IS NULL OR session_id = '' OR reason = '' THEN
        RAISE EXCEPTION 'revoke_session: session_id and reason must not be %',
                        CASE WHEN session_id IS NULL OR reason IS NULL THEN 'NULL' ELSE 'empty' END
            USING ERRCODE = CASE WHEN session_id IS NULL OR reason IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END,
                  HINT = 'Pass the application''s id of the session or device and say why, for example ''device reported lost''.';
    END IF;
    INSERT INTO ato.session_revocations AS r (user_id, session_id, revoked_at, revoked_by, reason)
    VALUES (user_id, session_id, now(), session_user, reason)
    ON CONFLICT ON CONSTRAINT session_revocations_pkey DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO ato.response_log (action, user_ids, detail)
    VALUES ('session_revoked', ARRAY[user_id], format('session %s: %s', session_id, reason));
    RETURN true;
END;
$$;
COMMENT ON FUNCTION ato.revoke_session(text, text, text) IS
    'Revokes one session or device of an account by the application''s id for it (its other sessions stay): ato.session_status() refuses it from now on; false if it was revoked already';
REVOKE ALL ON FUNCTION ato.revoke_session(text, text, text) FROM PUBLIC;

CREATE FUNCTION ato.revocations_since(after bigint, max_positions integer DEFAULT 100)
RETURNS TABLE ("position" bigint, incident_id uuid, batch integer, batches integer,
               revoked_at timestamptz, user_id text, shard text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    state ato.revocation_outbox_state;
BEGIN
    IF after IS NULL OR after < 0 THEN
        RAISE EXCEPTION 'revocations_since: after must be a position, 0 or more'
            USING ERRCODE = CASE WHEN after IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END,
                  HINT = 'Pass the last position this function returned to you, or 0 to read from the start.';
    END IF;
    IF max_positions IS NULL OR max_positions < 1 THEN
        RAISE EXCEPTION 'revocations_since: max_positions must be 1 or more'
            USING ERRCODE = CASE WHEN max_positions IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END,
                  HINT = 'It bounds how many batches one call returns; call again from the last position to read on.';
    END IF;
    -- one snapshot (a STABLE function): the state and the rows agree
    SELECT * INTO state FROM ato.revocation_outbox_state s;
    IF after < coalesce(state.discarded_through, 0) THEN
        RAISE EXCEPTION 'revocations_since: the positions after % up to % were removed by retention', after, state.discarded_through
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Rebuild the cache from ato.account_revocations (every revoked account and its time), then read on after position %s.',
                                state.discarded_through);
    END IF;
    IF after > coalesce(state.last_position, 0) THEN
        RAISE EXCEPTION 'revocations_since: position % was never given out (the last is %)', after, coalesce(state.last_position, 0)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass a position this function returned, not one from a NOTIFY payload; after a restore from an older backup, rebuild the cache from ato.account_revocations.';
    END IF;
    RETURN QUERY
    SELECT o.position, o.incident_id, o.batch, o.batches, o.revoked_at, u.user_id, o.shard
      FROM (SELECT * FROM ato.revocation_outbox b
             WHERE b.position > after ORDER BY b.position LIMIT max_positions) o
     CROSS JOIN LATERAL unnest(o.user_ids) WITH ORDINALITY AS u(user_id, n)
     ORDER BY o.position, u.n;
END;
$$;
COMMENT ON FUNCTION ato.revocations_since(bigint, integer) IS
    'Every revoked account announced after position "after", one row per account, up to max_positions batches in position order; positions are given out in commit order without gaps, so whoever read through position P and asks from P misses nothing and gets nothing twice (at-least-once with a consumer that ignores positions it has seen); an error for positions retention removed; shard: the name of this server among the shards, NULL on a single server (positions are per shard)';
REVOKE ALL ON FUNCTION ato.revocations_since(bigint, integer) FROM PUBLIC;

-- The revocation fence (src/fence.c): the gate's side and the side of the
-- SQL functions that set flags.
CREATE FUNCTION ato.login_gate_flags(user_id text)
RETURNS ato.account_flags
AS 'MODULE_PATHNAME', 'ato_login_gate_flags'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.login_gate_flags(text) IS
    'For ato.login_gate(): holds the account''s gate lock to the end of the transaction (a revocation of the account in flight is waited for, and one that starts later waits for this transaction), then reads its flags with the newest snapshot; NULL when it has none';
REVOKE ALL ON FUNCTION ato.login_gate_flags(text) FROM PUBLIC;

CREATE FUNCTION ato.hold_login_gates(user_ids text[])
RETURNS void
AS 'MODULE_PATHNAME', 'ato_hold_login_gates'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.hold_login_gates(text[]) IS
    'Waits for the logins of these accounts that passed ato.login_gate() and are still in their transaction, then makes every later one wait until this transaction ends; flag changes call it before they take effect';
REVOKE ALL ON FUNCTION ato.hold_login_gates(text[]) FROM PUBLIC;

CREATE TYPE ato.login_step AS ENUM
    ('ok', 'blocked_network', 'suspended', 'password_reset_required', 'mfa_reenrollment_required', 'reauth_required');
COMMENT ON TYPE ato.login_step IS
    'What ato.login_gate() asks of a login, in this order of precedence: ok, or a step the account must take first';

CREATE FUNCTION ato.login_gate(user_id text, ip_address inet DEFAULT NULL,
                               OUT step ato.login_step, OUT message text, OUT steps ato.login_step[],
                               OUT incident_id uuid, OUT issued_at timestamptz)
RETURNS record
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    flags ato.account_flags;
BEGIN
    -- checks the id (NULL 22004, empty 22023), waits for a revocation of
    -- the account in flight, and holds off the next one until the caller's
    -- transaction (which issues the session) ends: see src/fence.c
    flags := ato.login_gate_flags(user_id);
    steps := ARRAY[]::ato.login_step[];
    IF ip_address IS NOT NULL AND EXISTS (
           SELECT FROM ato.blocked_networks b
            WHERE b.network >>= ip_address
              AND (b.expires_at IS NULL OR b.expires_at > now())) THEN
        steps := steps || 'blocked_network'::ato.login_step;
    END IF;
    IF flags.suspended THEN
        steps := steps || 'suspended'::ato.login_step;
    END IF;
    IF flags.password_reset_required THEN
        steps := steps || 'password_reset_required'::ato.login_step;
    END IF;
    IF flags.mfa_reenrollment_required THEN
        steps := steps || 'mfa_reenrollment_required'::ato.login_step;
    END IF;
    IF flags.reauth_required THEN
        steps := steps || 'reauth_required'::ato.login_step;
    END IF;
    step := coalesce(steps[1], 'ok');
    -- a default the application may replace with its own, by step
    message := CASE step
        WHEN 'blocked_network' THEN 'Sign-in from this network is blocked.'
        WHEN 'suspended' THEN 'This account is suspended while a security incident is investigated.'
        WHEN 'password_reset_required' THEN 'For your security, reset your password through the recovery flow.'
        WHEN 'mfa_reenrollment_required' THEN 'For your security, please re-enrol your two-factor authentication.'
        WHEN 'reauth_required' THEN 'Please sign in again with your second factor.'
        END;
    incident_id := CASE WHEN step NOT IN ('ok', 'blocked_network') THEN flags.incident_id END;
    -- the time to stamp on a session issued in this transaction: the
    -- database's clock, the one revocation times are taken from, read after
    -- the gate's lock (a revocation taken before it is visible above; one
    -- taken after waits for this transaction and is later than it)
    issued_at := clock_timestamp();
END;
$$;
COMMENT ON FUNCTION ato.login_gate(text, inet) IS
    'What an application asks at each login, in the transaction that issues the session: step is ok or the first step the account must take (steps lists every one due, in order: blocked_network, suspended, password_reset_required, mfa_reenrollment_required, reauth_required), message a default text for it, incident_id the incident that set the flags, issued_at the time to stamp on the session; waits while a revocation of the account is in flight';
REVOKE ALL ON FUNCTION ato.login_gate(text, inet) FROM PUBLIC;

CREATE FUNCTION ato.set_account_flags(
    user_ids text[],
    suspended boolean DEFAULT NULL,
    reauth_required boolean DEFAULT NULL,
    mfa_reenrollment_required boolean DEFAULT NULL,
    password_reset_required boolean DEFAULT NULL,
    reason text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    accounts text[];
    changed integer;
BEGIN
    PERFORM ato.check_account_ids('set_account_flags', 'user_ids', user_ids);
    SELECT array_agg(DISTINCT u COLLATE "C" ORDER BY u COLLATE "C") INTO accounts FROM unnest(user_ids) u;
    IF suspended OR reauth_required OR mfa_reenrollment_required OR password_reset_required THEN
        -- no login that passed the gate before this commits may outlive it
        PERFORM ato.hold_login_gates(accounts);
    END IF;
    INSERT INTO ato.account_flags AS f (user_id, suspended, reauth_required,
                                        mfa_reenrollment_required, password_reset_required,
                                        reason, updated_at)
    SELECT u, coalesce(set_account_flags.suspended, false),
           coalesce(set_account_flags.reauth_required, false),
           coalesce(set_account_flags.mfa_reenrollment_required, false),
           coalesce(set_account_flags.password_reset_required, false),
           set_account_flags.reason, now()
      FROM unnest(accounts) u
    ON CONFLICT ON CONSTRAINT account_flags_pkey DO UPDATE
       SET suspended = coalesce(set_account_flags.suspended, f.suspended),
           reauth_required = coalesce(set_account_flags.reauth_required, f.reauth_required),
           mfa_reenrollment_required = coalesce(set_account_flags.mfa_reenrollment_required, f.mfa_reenrollment_required),
           password_reset_required = coalesce(set_account_flags.password_reset_required, f.password_reset_required),
           reason = coalesce(set_account_flags.reason, f.reason),
           updated_at = now();
    GET DIAGNOSTICS changed = ROW_COUNT;
    INSERT INTO ato.response_log (action, user_ids, detail)
    VALUES ('flags_set', accounts,
            concat_ws(', ', 'suspended=' || set_account_flags.suspended,
                      'reauth_required=' || set_account_flags.reauth_required,
                      'mfa_reenrollment_required=' || set_account_flags.mfa_reenrollment_required,
                      'password_reset_required=' || set_account_flags.password_reset_required,
                      'reason=' || set_account_flags.reason));
    RETURN changed;
END;
$$;
COMMENT ON FUNCTION ato.set_account_flags(text[], boolean, boolean, boolean, boolean, text) IS
    'Sets or clears account flags outside an incident (NULL leaves a flag as it is); returns the number of accounts';
REVOKE ALL ON FUNCTION ato.set_account_flags(text[], boolean, boolean, boolean, boolean, text) FROM PUBLIC;

CREATE FUNCTION ato.complete_step(user_id text, step text, method text DEFAULT NULL, proven_by text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cleared boolean;
BEGIN
    PERFORM ato.check_account_id('complete_step', 'user_id', user_id);
    IF step IS NULL THEN
        RAISE EXCEPTION 'complete_step: step must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the step the account completed, for example ''mfa_reenrollment_required''.';
    END IF;
    IF step NOT IN ('reauth_required', 'mfa_reenrollment_required', 'password_reset_required') THEN
        RAISE EXCEPTION 'complete_step: "%" is not a step an account completes', step
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = CASE WHEN step = 'suspended'
                              THEN 'Suspensions are lifted by a responder with ato.lift_incident() or ato.set_account_flags().'
                              ELSE 'The steps are reauth_required, mfa_reenrollment_required and password_reset_required.' END;
    END IF;
    UPDATE ato.account_flags f
       SET reauth_required = f.reauth_required AND step <> 'reauth_required',
           mfa_reenrollment_required = f.mfa_reenrollment_required AND step <> 'mfa_reenrollment_required',
           password_reset_required = f.password_reset_required AND step <> 'password_reset_required',
           updated_at = now()
     WHERE f.user_id = complete_step.user_id COLLATE "C"
       AND CASE step WHEN 'reauth_required' THEN f.reauth_required
                     WHEN 'mfa_reenrollment_required' THEN f.mfa_reenrollment_required
                     ELSE f.password_reset_required END;
    cleared := FOUND;
    IF cleared THEN
        INSERT INTO ato.response_log (action, user_ids, detail)
        VALUES ('step_completed', ARRAY[user_id],
                concat_ws(', ', step, 'method=' || method, 'proven_by=' || proven_by));
    END IF;
    RETURN cleared;
END;
$$;
COMMENT ON FUNCTION ato.complete_step(text, text, text, text) IS
    'What an application calls when an account has completed a step login_gate asked for (reauth_required, mfa_reenrollment_required, password_reset_required), saying how it was proven (method: webauthn, totp, recovery e-mail, support call, ...) and by whom (the user, or the support agent who verified them); clears the flag, records the step in ato.response_log and returns true if it was set';
REVOKE ALL ON FUNCTION ato.complete_step(text, text, text, text) FROM PUBLIC;

CREATE FUNCTION ato.block_network(network cidr, reason text, expires_at timestamptz DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF network IS NULL OR reason IS NULL THEN
        RAISE EXCEPTION 'block_network: network and reason must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'For example SELECT ato.block_network(''192.0.2.0/24'', ''credential stuffing'', now() + interval ''7 days'').';
    END IF;
    IF reason = '' THEN
        RAISE EXCEPTION 'block_network: reason must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Say why, for example ''credential stuffing''; it is shown to whoever reviews the blocks.';
    END IF;
    IF expires_at <= now() THEN
        RAISE EXCEPTION 'block_network: expires_at % is not in the future', expires_at
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a later time, or NULL to block until ato.unblock_network() is called.';
    END IF;
    INSERT INTO ato.blocked_networks AS b (network, reason, blocked_at, blocked_by, expires_at)
    VALUES (network, reason, now(), session_user, expires_at)
    ON CONFLICT ON CONSTRAINT blocked_networks_pkey DO UPDATE
       SET reason = excluded.reason, blocked_at = excluded.blocked_at,
           blocked_by = excluded.blocked_by, expires_at = excluded.expires_at;
    INSERT INTO ato.response_log (action, detail)
    VALUES ('network_blocked', format('%s until %s: %s', network, coalesce(expires_at::text, 'unblocked'), reason));
END;
$$;
COMMENT ON FUNCTION ato.block_network(cidr, text, timestamptz) IS
    'Makes ato.login_gate() refuse logins from the network until expires_at (NULL: until unblocked); blocking it again replaces reason and expiry';
REVOKE ALL ON FUNCTION ato.block_network(cidr, text, timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.unblock_network(network cidr)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM ato.blocked_networks b WHERE b.network = unblock_network.network;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO ato.response_log (action, detail) VALUES ('network_unblocked', network::text);
    RETURN true;
END;
$$;
COMMENT ON FUNCTION ato.unblock_network(cidr) IS
    'Removes a blocked network; true if it was blocked';
REVOKE ALL ON FUNCTION ato.unblock_network(cidr) FROM PUBLIC;
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
-- install/sections/10_privileges.sql: the closing privileges: no table or sequence of schema ato for PUBLIC (each function's REVOKE stands next to it).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

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
REVOKE ALL ON SEQUENCE ato.summary_refresh_bound FROM PUBLIC;
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
-- install/sections/11_import_bulk.sql: the bulk import of identity-provider logs: the views ato.okta_import, ato.auth0_import and ato.entra_import that COPY loads one JSON event a line into, and their triggers (src/import.c), which store the lines in batches with ato.import_batch().
-- A piece of the install script, which the Makefile assembles: not loadable alone.
-- It comes after 10_privileges.sql, so every object here carries its own REVOKE,
-- and after 11_import.sql, whose ato.import_batch() src/import.c calls.

-- ---------------------------------------------------------------------------
-- The bulk path: JSON lines through COPY
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.import_line()
RETURNS trigger
AS 'MODULE_PATHNAME', 'ato_import_line'
LANGUAGE C;
COMMENT ON FUNCTION ato.import_line() IS
    'INSTEAD OF INSERT row trigger of the import views: keeps the line for the next batch (argument: the provider)';
REVOKE ALL ON FUNCTION ato.import_line() FROM PUBLIC;

CREATE FUNCTION ato.import_lines_end()
RETURNS trigger
AS 'MODULE_PATHNAME', 'ato_import_lines_end'
LANGUAGE C;
COMMENT ON FUNCTION ato.import_lines_end() IS
    'AFTER INSERT statement trigger of the import views: stores the last batch and reports what was imported (argument: the provider)';
REVOKE ALL ON FUNCTION ato.import_lines_end() FROM PUBLIC;

-- One view per provider, one event (a JSON text) per row:
--   \copy ato.okta_import FROM 'okta.jsonl' (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02')
-- (JSON text never holds the control characters \x01 and \x02 unescaped, so
-- CSV with them as quote and delimiter reads each line whole, backslashes
-- and all.)  Nothing is stored in the view: the lines go to the event
-- tables and ato.import_rejections, in batches of 10,000.
CREATE VIEW ato.okta_import AS SELECT NULL::text AS event WHERE false;
CREATE VIEW ato.auth0_import AS SELECT NULL::text AS event WHERE false;
CREATE VIEW ato.entra_import AS SELECT NULL::text AS event WHERE false;
COMMENT ON VIEW ato.okta_import IS
    'Bulk import of Okta System Log events: COPY or INSERT one JSON event per row (a JSON-lines file); reads back nothing';
COMMENT ON VIEW ato.auth0_import IS
    'Bulk import of Auth0 log events: COPY or INSERT one JSON event per row (a JSON-lines file); reads back nothing';
COMMENT ON VIEW ato.entra_import IS
    'Bulk import of Microsoft Entra ID sign-in and audit events: COPY or INSERT one JSON event per row (a JSON-lines file); reads back nothing';
CREATE TRIGGER import_line INSTEAD OF INSERT ON ato.okta_import
    FOR EACH ROW EXECUTE FUNCTION ato.import_line('okta');
CREATE TRIGGER import_line INSTEAD OF INSERT ON ato.auth0_import
    FOR EACH ROW EXECUTE FUNCTION ato.import_line('auth0');
CREATE TRIGGER import_line INSTEAD OF INSERT ON ato.entra_import
    FOR EACH ROW EXECUTE FUNCTION ato.import_line('entra');
CREATE TRIGGER import_lines_end AFTER INSERT ON ato.okta_import
    FOR EACH STATEMENT EXECUTE FUNCTION ato.import_lines_end('okta');
CREATE TRIGGER import_lines_end AFTER INSERT ON ato.auth0_import
    FOR EACH STATEMENT EXECUTE FUNCTION ato.import_lines_end('auth0');
CREATE TRIGGER import_lines_end AFTER INSERT ON ato.entra_import
    FOR EACH STATEMENT EXECUTE FUNCTION ato.import_lines_end('entra');
REVOKE ALL ON ato.okta_import, ato.auth0_import, ato.entra_import FROM PUBLIC;
-- install/sections/12_append_only.sql: the one rule of the append-only tables (the evidence, an incident's history): a trigger that refuses every UPDATE, DELETE and TRUNCATE, whoever asks.
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- Its arguments: what the table holds, as the message says it ("evidence",
-- "an incident's history"), and the hint: what to do instead.
CREATE FUNCTION ato.refuse_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '% of %.% refused: % is append-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_ARGV[0]
        USING ERRCODE = 'insufficient_privilege', HINT = TG_ARGV[1];
END;
$$;
COMMENT ON FUNCTION ato.refuse_change() IS
    'Trigger of the append-only tables (the evidence, an incident''s history), with what the table holds and a hint as arguments: refuses every UPDATE, DELETE and TRUNCATE, whoever asks';
REVOKE ALL ON FUNCTION ato.refuse_change() FROM PUBLIC;
-- install/sections/12_evidence.sql: an incident's evidence: its window and scope, an append-only copy of its events chained by SHA-256, verification, the export for chain of custody, the hold on retention, the events of its window.
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- Evidence (seed 004: "preserve all logs from the incident period before
-- doing any cleanup ... chain of custody ... write protection").
--
-- An incident's window runs from 24 hours before the earliest of its
-- opening and its linked alerts' evidence (or from the since given to
-- ato.preserve_evidence(), or from an earlier preservation's window, if
-- earlier) to now; its scope is its accounts and its attacker networks (the
-- networks given, or those of its alerts' evidence and of the networks
-- blocked since the window began).
--
-- The copy is a chain: row n's hash is
--     sha256(hash of row n-1 || UTF-8 bytes of row n's body)
-- where the hash before row 1 (the genesis) is
--     sha256(UTF-8 bytes of 'ato_response evidence ' || the incident's uuid)
-- and a body is the text of a JSON object {"event": <the event row>,
-- "table": "login_events" | "audit_events"}, stored as text (never
-- re-rendered).  Each preservation adds a manifest whose body (JSON text)
-- says who, when, the query, the window, the scope, the rows' positions and
-- the chain's head after them, and the previous manifest's hash; its hash is
-- sha256 of its body.  Anyone can recompute both from an export
-- (example/verify_evidence.py).
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.evidence_link(state bytea, genesis bytea, body text)
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.sha256(COALESCE(state, genesis) || pg_catalog.convert_to(body, 'UTF8')) $$;
COMMENT ON FUNCTION ato.evidence_link(bytea, bytea, text) IS
    'One link of an evidence chain: sha256 of the previous hash (genesis before the first row) and the UTF-8 bytes of the body; the state function of ato.evidence_chain()';
REVOKE ALL ON FUNCTION ato.evidence_link(bytea, bytea, text) FROM PUBLIC;

CREATE AGGREGATE ato.evidence_chain(genesis bytea, body text) (
    SFUNC = ato.evidence_link,
    STYPE = bytea
);
COMMENT ON AGGREGATE ato.evidence_chain(bytea, text) IS
    'The hash of an evidence chain over bodies in order, from genesis; as a running window aggregate, each row''s hash';
REVOKE ALL ON FUNCTION ato.evidence_chain(bytea, text) FROM PUBLIC;

CREATE FUNCTION ato.evidence_genesis(incident_id uuid)
RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.sha256(pg_catalog.convert_to('ato_response evidence ' || incident_id::text, 'UTF8')) $$;
COMMENT ON FUNCTION ato.evidence_genesis(uuid) IS
    'The hash before the first row of an incident''s evidence chain: sha256 of ''ato_response evidence '' and the incident''s uuid (lower case, with hyphens)';
REVOKE ALL ON FUNCTION ato.evidence_genesis(uuid) FROM PUBLIC;

-- No foreign key to ato.incidents: evidence outlives its incident's row (and
-- a key would stop a TRUNCATE of the incidents).
CREATE TABLE ato.evidence_manifests (
    incident_id uuid NOT NULL,
    manifest integer NOT NULL,
    preserved_at timestamptz NOT NULL,
    preserved_by name NOT NULL,
    window_from timestamptz NOT NULL,
    window_to timestamptz NOT NULL,
    user_ids text[] NOT NULL,
    networks cidr[] NOT NULL,
    query text NOT NULL,
    first_row bigint NOT NULL,
    rows bigint NOT NULL,
    head bytea NOT NULL,
    body text NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (incident_id, manifest)
);
COMMENT ON TABLE ato.evidence_manifests IS
    'One row per ato.preserve_evidence() that copied events: who, when, the query, the window and scope, the chain positions it added and the chain''s head after them; append-only';
COMMENT ON COLUMN ato.evidence_manifests.body IS
    'The manifest as JSON text (these columns and the previous manifest''s hash); hash is sha256 of its UTF-8 bytes';
COMMENT ON COLUMN ato.evidence_manifests.head IS 'The hash of the chain''s row first_row + rows - 1';
SELECT pg_catalog.pg_extension_config_dump('ato.evidence_manifests', '');

CREATE TABLE ato.evidence_rows (
    incident_id uuid NOT NULL,
    n bigint NOT NULL,
    manifest integer NOT NULL,
    event_table text NOT NULL,
    event_id bigint NOT NULL,
    occurred_at timestamptz NOT NULL,
    body text NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (incident_id, n),
    UNIQUE (incident_id, event_table, event_id)
);
COMMENT ON TABLE ato.evidence_rows IS
    'The preserved events of each incident, one chain per incident (position n from 1), each row''s hash chained to the previous one; append-only';
COMMENT ON COLUMN ato.evidence_rows.body IS
    'The event as JSON text, {"event": {...}, "table": "login_events"}, as copied; hash is sha256 of the previous row''s hash and its UTF-8 bytes';
SELECT pg_catalog.pg_extension_config_dump('ato.evidence_rows', '');

CREATE TRIGGER refuse_change BEFORE UPDATE OR DELETE ON ato.evidence_manifests
    FOR EACH ROW EXECUTE FUNCTION ato.refuse_change('evidence', 'Preserved evidence is never changed or removed; ato.preserve_evidence() adds to it, ato.verify_evidence() proves it intact.');
CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON ato.evidence_manifests
    FOR EACH STATEMENT EXECUTE FUNCTION ato.refuse_change('evidence', 'Preserved evidence is never changed or removed; ato.preserve_evidence() adds to it, ato.verify_evidence() proves it intact.');
CREATE TRIGGER refuse_change BEFORE UPDATE OR DELETE ON ato.evidence_rows
    FOR EACH ROW EXECUTE FUNCTION ato.refuse_change('evidence', 'Preserved evidence is never changed or removed; ato.preserve_evidence() adds to it, ato.verify_evidence() proves it intact.');
CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON ato.evidence_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ato.refuse_change('evidence', 'Preserved evidence is never changed or removed; ato.preserve_evidence() adds to it, ato.verify_evidence() proves it intact.');
-- (10_privileges.sql ran before these tables existed)
REVOKE ALL ON ato.evidence_manifests, ato.evidence_rows FROM PUBLIC;

-- The one check of an incident argument: NULL 22004, unknown P0002.
CREATE FUNCTION ato.check_incident(caller text, incident_id uuid)
RETURNS ato.incidents
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    incident ato.incidents;
BEGIN
    IF incident_id IS NULL THEN
        RAISE EXCEPTION '%: incident_id must not be NULL', caller
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the id ato.revoke_incident() returned; the incidents are in ato.incidents.';
    END IF;
    SELECT * INTO incident FROM ato.incidents i WHERE i.id = check_incident.incident_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: incident % does not exist', caller, incident_id
            USING ERRCODE = 'no_data_found',
                  HINT = 'The incidents are in ato.incidents.';
    END IF;
    RETURN incident;
END;
$$;
COMMENT ON FUNCTION ato.check_incident(text, uuid) IS
    'The incident of that id, for the evidence functions: an error naming the caller when it is NULL (22004) or unknown (P0002)';
REVOKE ALL ON FUNCTION ato.check_incident(text, uuid) FROM PUBLIC;

-- The window and scope of an incident, one definition for preserving,
-- holding retention off and the timeline.
CREATE FUNCTION ato.incident_scope(incident_id uuid, since timestamptz DEFAULT NULL, networks cidr[] DEFAULT NULL,
                                   OUT window_from timestamptz, OUT window_to timestamptz,
                                   OUT accounts text[], OUT attacker_networks cidr[], OUT is_open boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    incident ato.incidents := ato.check_incident('incident_scope', incident_id);
BEGIN
    IF NOT isfinite(since) OR since > now() THEN
        RAISE EXCEPTION 'preserve_evidence: since must be a finite time in the past'
            USING ERRCODE = 'datetime_field_overflow',
                  HINT = 'Leave it out for 24 hours before the incident''s first evidence, or give when the attack began.';
    END IF;
    IF array_position(networks, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'preserve_evidence: networks must not contain NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the attacker''s networks, for example ''{192.0.2.0/24}'', or leave them out for the networks of the incident''s alerts and blocks.';
    END IF;
    -- its first accounts and those added later (ato.incident_accounts,
    -- 13_incident_record.sql), released or not: preserving more is the
    -- safe side
    accounts := ARRAY(SELECT a.user_id FROM ato.incident_accounts a WHERE a.incident_id = incident.id
                       ORDER BY a.user_id COLLATE "C");
    is_open := incident.status <> 'lifted';
    window_to := now();
    window_from := coalesce(since,
        least((SELECT least(min(a.evidence_at), min(a.first_seen_at)) FROM ato.alerts a WHERE a.incident_id = incident.id),
              incident.opened_at) - interval '24 hours');
    IF since IS NULL THEN
        window_from := least(window_from, (SELECT min(m.window_from) FROM ato.evidence_manifests m
                                            WHERE m.incident_id = incident.id));
    END IF;
    IF networks IS NOT NULL THEN
        attacker_networks := networks;
    ELSE
        SELECT coalesce(array_agg(DISTINCT x.network ORDER BY x.network), '{}') INTO attacker_networks
          FROM (SELECT CASE WHEN a.evidence ? 'network' THEN (a.evidence ->> 'network')::cidr
                            WHEN a.evidence ->> 'source_kind' IN ('address', 'network') THEN (a.evidence ->> 'source')::cidr
                            ELSE set_masklen((a.evidence ->> 'ip_address')::inet,
                                             CASE WHEN family((a.evidence ->> 'ip_address')::inet) = 4 THEN 32 ELSE 128 END)::cidr
                            END AS network
                  FROM ato.alerts a
                 WHERE a.incident_id = incident.id
                   AND (a.evidence ? 'network' OR a.evidence ->> 'source_kind' IN ('address', 'network')
                        OR a.evidence ->> 'ip_address' IS NOT NULL)
                UNION
                SELECT b.network FROM ato.blocked_networks b WHERE b.blocked_at >= window_from
                UNION
                SELECT unnest(m.networks) FROM ato.evidence_manifests m WHERE m.incident_id = incident.id) x
         WHERE x.network IS NOT NULL;
    END IF;
END;
$$;
COMMENT ON FUNCTION ato.incident_scope(uuid, timestamptz, cidr[]) IS
    'An incident''s window (from since, or 24 hours before the earliest of its opening and its alerts'' evidence and first sightings, or an earlier preservation''s window, to now), its accounts (those added later included), its attacker networks (those given, or its alerts'' addresses and networks, the networks blocked since the window began and those of earlier preservations) and whether it is open (not lifted)';
REVOKE ALL ON FUNCTION ato.incident_scope(uuid, timestamptz, cidr[]) FROM PUBLIC;

-- The query a preservation runs, recorded as it is in its manifest: $1 the
-- incident, $2 window_from, $3 window_to, $4 its accounts, $5 its networks.
CREATE FUNCTION ato.evidence_query()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $q$ SELECT $$SELECT e.event_table, e.event_id, e.occurred_at, e.body
  FROM (SELECT 'login_events' AS event_table, l.id AS event_id, l.occurred_at,
               jsonb_build_object('table', 'login_events', 'event', to_jsonb(l))::text AS body
          FROM ato.login_events l
         WHERE l.occurred_at >= $2 AND l.occurred_at <= $3
           AND (l.user_id = ANY ($4) OR l.ip_address <<= ANY ($5))
        UNION ALL
        SELECT 'audit_events', a.id, a.occurred_at,
               jsonb_build_object('table', 'audit_events', 'event', to_jsonb(a))::text
          FROM ato.audit_events a
         WHERE a.occurred_at >= $2 AND a.occurred_at <= $3
           AND (a.actor_id = ANY ($4) OR a.target_id = ANY ($4) OR a.ip_address <<= ANY ($5))) e
 WHERE NOT EXISTS (SELECT FROM ato.evidence_rows r
                    WHERE r.incident_id = $1 AND r.event_table = e.event_table AND r.event_id = e.event_id)
 ORDER BY e.occurred_at, e.event_table, e.event_id$$ $q$;
COMMENT ON FUNCTION ato.evidence_query() IS
    'The query ato.preserve_evidence() runs and records in each manifest: the events of the window for the accounts (actor or target) and the networks not preserved yet, in time order ($1 incident, $2 window_from, $3 window_to, $4 accounts, $5 networks)';
REVOKE ALL ON FUNCTION ato.evidence_query() FROM PUBLIC;

CREATE FUNCTION ato.preserve_evidence(incident_id uuid, since timestamptz DEFAULT NULL, networks cidr[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    scope record;
    evidence_sql text := ato.evidence_query();
    number integer;
    before bigint;
    previous bytea;
    previous_manifest bytea;
    copied bigint;
    head bytea;
    body text;
BEGIN
    PERFORM ato.check_incident('preserve_evidence', incident_id);
    -- no month attached under the copy (src/event_layout.c)
    PERFORM ato.hold_event_layout();
    -- one preservation of an incident at a time: each continues the chain
    PERFORM FROM ato.incidents i WHERE i.id = preserve_evidence.incident_id FOR UPDATE;
    SELECT * INTO scope FROM ato.incident_scope(incident_id, since, networks);

    SELECT coalesce(max(m.manifest), 0) + 1 INTO number
      FROM ato.evidence_manifests m WHERE m.incident_id = preserve_evidence.incident_id;
    SELECT m.first_row + m.rows - 1, m.head, m.hash INTO before, previous, previous_manifest
      FROM ato.evidence_manifests m
     WHERE m.incident_id = preserve_evidence.incident_id AND m.manifest = number - 1;
    before := coalesce(before, 0);
    previous := coalesce(previous, ato.evidence_genesis(incident_id));

    EXECUTE format($i$
        INSERT INTO ato.evidence_rows (incident_id, n, manifest, event_table, event_id, occurred_at, body, hash)
        SELECT $1, $6 + q.position, $7, q.event_table, q.event_id, q.occurred_at, q.body,
               ato.evidence_chain($8, q.body) OVER (ORDER BY q.position ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
          FROM (SELECT s.*, row_number() OVER (ORDER BY s.occurred_at, s.event_table, s.event_id) AS position
                  FROM (%s) s) q$i$, evidence_sql)
      USING incident_id, scope.window_from, scope.window_to, scope.accounts, scope.attacker_networks,
            before, number, previous;
    GET DIAGNOSTICS copied = ROW_COUNT;
    IF copied = 0 THEN
        RAISE NOTICE 'preserve_evidence: every event of the incident''s window and scope is already preserved'
            USING DETAIL = format('%s events preserved under %s manifests; the scope: %s accounts, %s networks.',
                                  before, number - 1, cardinality(scope.accounts), cardinality(scope.attacker_networks)),
                  HINT = 'Nothing was added. ato.verify_evidence() proves the copy intact, ato.export_evidence() exports it.';
        RETURN 0;
    END IF;

    SELECT r.hash INTO head FROM ato.evidence_rows r
     WHERE r.incident_id = preserve_evidence.incident_id AND r.n = before + copied;
    body := jsonb_build_object(
        'incident', incident_id, 'manifest', number,
        'preserved_at', now(), 'preserved_by', session_user,
        'window_from', scope.window_from, 'window_to', scope.window_to,
        'user_ids', to_jsonb(scope.accounts), 'networks', to_jsonb(scope.attacker_networks::text[]),
        'query', evidence_sql, 'first_row', before + 1, 'rows', copied,
        'head', encode(head, 'hex'), 'previous', encode(previous_manifest, 'hex'))::text;
    INSERT INTO ato.evidence_manifests (incident_id, manifest, preserved_at, preserved_by, window_from, window_to,
                                        user_ids, networks, query, first_row, rows, head, body, hash)
    VALUES (incident_id, number, now(), session_user, scope.window_from, scope.window_to,
            scope.accounts, scope.attacker_networks, evidence_sql, before + 1, copied, head, body,
            sha256(convert_to(body, 'UTF8')));
    INSERT INTO ato.response_log (action, incident_id, detail)
    VALUES ('evidence_preserved', incident_id,
            format('manifest %s: %s events (positions %s to %s) from %s to %s, head %s, manifest hash %s',
                   number, copied, before + 1, before + copied, scope.window_from, scope.window_to,
                   encode(head, 'hex'), encode(sha256(convert_to(body, 'UTF8')), 'hex')));
    RETURN copied;
END;
$$;
COMMENT ON FUNCTION ato.preserve_evidence(uuid, timestamptz, cidr[]) IS
    'Copies the events of the incident''s window (see ato.incident_scope(); since and networks override its start and attacker networks) for its accounts and networks into ato.evidence_rows, chained by SHA-256, with a manifest in ato.evidence_manifests; called again, adds the events not preserved yet under a new manifest (none: a NOTICE and no manifest); returns the events copied';
REVOKE ALL ON FUNCTION ato.preserve_evidence(uuid, timestamptz, cidr[]) FROM PUBLIC;

CREATE FUNCTION ato.verify_evidence(incident_id uuid)
RETURNS TABLE (ok boolean, rows bigint, first_bad bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    genesis bytea;
    stored bigint;
    bad_row bigint;
    m record;
    j jsonb;
    expected_first bigint := 1;
    previous bytea;
    manifest_bad bigint;
    problem text;
BEGIN
    IF incident_id IS NULL THEN
        RAISE EXCEPTION 'verify_evidence: incident_id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the id of an incident whose evidence ato.preserve_evidence() preserved.';
    END IF;
    IF NOT EXISTS (SELECT FROM ato.incidents i WHERE i.id = verify_evidence.incident_id)
       AND NOT EXISTS (SELECT FROM ato.evidence_manifests x WHERE x.incident_id = verify_evidence.incident_id)
       AND NOT EXISTS (SELECT FROM ato.evidence_rows x WHERE x.incident_id = verify_evidence.incident_id) THEN
        RAISE EXCEPTION 'verify_evidence: incident % does not exist', incident_id
            USING ERRCODE = 'no_data_found',
                  HINT = 'The incidents are in ato.incidents, their evidence in ato.evidence_manifests.';
    END IF;
    genesis := ato.evidence_genesis(incident_id);

    -- the rows: each at its position, its columns those of its body, its
    -- hash the chain's, recomputed from the bodies
    WITH r AS (
        SELECT x.n, row_number() OVER (ORDER BY x.n) AS pos, x.hash, x.body, x.event_table, x.event_id, x.occurred_at,
               ato.evidence_chain(genesis, x.body) OVER (ORDER BY x.n ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS expected
          FROM ato.evidence_rows x WHERE x.incident_id = verify_evidence.incident_id)
    SELECT count(*),
           min(r.pos) FILTER (WHERE r.n <> r.pos OR r.hash <> r.expected
                                 OR r.event_table IS DISTINCT FROM r.body::jsonb ->> 'table'
                                 OR r.event_id IS DISTINCT FROM (r.body::jsonb -> 'event' ->> 'id')::bigint
                                 OR r.occurred_at IS DISTINCT FROM (r.body::jsonb -> 'event' ->> 'occurred_at')::timestamptz)
      INTO stored, bad_row
      FROM r;
    IF bad_row IS NOT NULL THEN
        problem := format('position %s does not hold the row preserved there (changed, removed or moved)', bad_row);
    END IF;

    -- the manifests: each its body's hash, its columns those of its body,
    -- following the previous one, its head the hash stored at its last
    -- position (which the rows' check compared with the chain's)
    FOR m IN SELECT * FROM ato.evidence_manifests x WHERE x.incident_id = verify_evidence.incident_id ORDER BY x.manifest LOOP
        j := m.body::jsonb;
        IF m.hash <> sha256(convert_to(m.body, 'UTF8'))
           OR m.first_row <> expected_first OR m.rows <= 0
           OR (j ->> 'incident')::uuid IS DISTINCT FROM m.incident_id
           OR (j ->> 'manifest')::integer IS DISTINCT FROM m.manifest
           OR (j ->> 'first_row')::bigint IS DISTINCT FROM m.first_row
           OR (j ->> 'rows')::bigint IS DISTINCT FROM m.rows
           OR j ->> 'head' IS DISTINCT FROM encode(m.head, 'hex')
           OR j ->> 'previous' IS DISTINCT FROM encode(previous, 'hex')
           OR m.head IS DISTINCT FROM (SELECT x.hash FROM ato.evidence_rows x
                                        WHERE x.incident_id = m.incident_id AND x.n = m.first_row + m.rows - 1) THEN
            manifest_bad := least(m.first_row, expected_first);
            problem := coalesce(problem, format('manifest %s does not match its hash, its rows or the previous manifest', m.manifest));
            EXIT;
        END IF;
        previous := m.hash;
        expected_first := m.first_row + m.rows;
    END LOOP;
    IF manifest_bad IS NULL AND stored <> expected_first - 1 THEN
        -- rows missing at the end, or rows no manifest accounts for
        manifest_bad := least(stored, expected_first - 1) + 1;
        problem := coalesce(problem, format('the manifests account for %s rows, %s are stored', expected_first - 1, stored));
    END IF;
    first_bad := least(bad_row, manifest_bad);
    rows := stored;
    ok := first_bad IS NULL AND stored > 0;
    IF stored = 0 AND first_bad IS NULL THEN
        RAISE NOTICE 'verify_evidence: no evidence of the incident is preserved'
            USING HINT = 'Preserve it with ato.preserve_evidence().';
    ELSIF NOT ok THEN
        RAISE WARNING 'verify_evidence: the incident''s evidence is not intact: %', problem
            USING HINT = 'Compare with the last export (ato.export_evidence()), checked by example/verify_evidence.py.';
    END IF;
    RETURN NEXT;
END;
$$;
COMMENT ON FUNCTION ato.verify_evidence(uuid) IS
    'Proves an incident''s preserved evidence intact: recomputes the SHA-256 chain from the rows'' bodies and checks every row''s position, columns and hash, and every manifest''s hash, head and row count; ok, the rows stored, and the first chain position that does not hold its preserved row (NULL when intact)';
REVOKE ALL ON FUNCTION ato.verify_evidence(uuid) FROM PUBLIC;

CREATE FUNCTION ato.export_evidence(incident_id uuid)
RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    check_ record;
BEGIN
    IF incident_id IS NULL THEN
        RAISE EXCEPTION 'export_evidence: incident_id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the id of an incident whose evidence ato.preserve_evidence() preserved.';
    END IF;
    IF NOT EXISTS (SELECT FROM ato.evidence_manifests m WHERE m.incident_id = export_evidence.incident_id)
       AND NOT EXISTS (SELECT FROM ato.evidence_rows r WHERE r.incident_id = export_evidence.incident_id) THEN
        RAISE EXCEPTION 'export_evidence: no evidence of the incident is preserved'
            USING ERRCODE = 'no_data_found',
                  HINT = 'Preserve it first with ato.preserve_evidence().';
    END IF;
    SELECT * INTO check_ FROM ato.verify_evidence(incident_id);
    RETURN QUERY
    SELECT x.line FROM (
        SELECT 0 AS part, 0::bigint AS n,
               jsonb_build_object('format', 'ato_response evidence 1', 'incident', export_evidence.incident_id,
                                  'exported_at', now(), 'exported_by', session_user,
                                  'genesis', encode(ato.evidence_genesis(export_evidence.incident_id), 'hex'),
                                  'rows', check_.rows, 'verified', check_.ok,
                                  'manifests', (SELECT count(*) FROM ato.evidence_manifests m WHERE m.incident_id = export_evidence.incident_id),
                                  'manifest_hash', (SELECT encode(m.hash, 'hex') FROM ato.evidence_manifests m
                                                     WHERE m.incident_id = export_evidence.incident_id
                                                     ORDER BY m.manifest DESC LIMIT 1))::text AS line
        UNION ALL
        SELECT 1, m.manifest, jsonb_build_object('manifest', m.manifest, 'body', m.body, 'hash', encode(m.hash, 'hex'))::text
          FROM ato.evidence_manifests m WHERE m.incident_id = export_evidence.incident_id
        UNION ALL
        SELECT 2, r.n, jsonb_build_object('n', r.n, 'body', r.body, 'hash', encode(r.hash, 'hex'))::text
          FROM ato.evidence_rows r WHERE r.incident_id = export_evidence.incident_id) x
     ORDER BY x.part, x.n;
END;
$$;
COMMENT ON FUNCTION ato.export_evidence(uuid) IS
    'The incident''s evidence for chain of custody, as JSON lines: a header (incident, genesis, rows, whether it verified, the last manifest''s hash), one line per manifest and one per row, each with its body and hash; example/verify_evidence.py checks it without the extension (psql -XAt -c "SELECT * FROM ato.export_evidence(...)" > file)';
REVOKE ALL ON FUNCTION ato.export_evidence(uuid) FROM PUBLIC;

-- Retention: a partition that may hold events of an open incident's window
-- is kept (seed 004: no destructive cleanup during an active incident).
-- ato.drop_event_partitions() asks, and so ato.apply_retention().
CREATE FUNCTION ato.partition_held(relation regclass, upper_bound timestamptz)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    holder record;
BEGIN
    IF relation IS NULL OR upper_bound IS NULL THEN
        RAISE EXCEPTION 'partition_held: relation and upper_bound must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass a partition of ato.event_partitions and its upper bound.';
    END IF;
    SELECT i.id, s.window_from INTO holder
      FROM ato.incidents i CROSS JOIN LATERAL ato.incident_scope(i.id) s
     WHERE i.status <> 'lifted' AND s.window_from < upper_bound
     ORDER BY s.window_from, i.id
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    RAISE NOTICE 'drop_event_partitions: % is kept: it holds events of the window of open incident % (from %)',
        relation, holder.id, holder.window_from
        USING HINT = 'No destructive cleanup during an active incident: it is dropped once the incident is lifted (ato.lift_incident()); preserve its evidence with ato.preserve_evidence().';
    RETURN true;
END;
$$;
COMMENT ON FUNCTION ato.partition_held(regclass, timestamptz) IS
    'True, with a NOTICE saying which incident, when an open (not lifted) incident''s window reaches into the partition ending at upper_bound: ato.drop_event_partitions() keeps it';
REVOKE ALL ON FUNCTION ato.partition_held(regclass, timestamptz) FROM PUBLIC;

-- The events of an incident's window for its accounts and networks: what
-- its timeline and its report show.
CREATE FUNCTION ato.incident_events(incident_id uuid)
RETURNS TABLE (event_table text, event_id bigint, e jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    scope record;
    incident ato.incidents;
BEGIN
    incident := ato.check_incident('incident_events', incident_id);
    SELECT * INTO scope FROM ato.incident_scope(incident.id);
    -- (accounts are matched through a hashed IN: = ANY of a variable would
    -- compare every event with every account)
    RETURN QUERY
    -- preserved events, as preserved (they outlive retention), then the
    -- window's events not preserved yet
    SELECT r.event_table, r.event_id, r.body::jsonb -> 'event' AS e
      FROM ato.evidence_rows r WHERE r.incident_id = incident.id
    UNION ALL
    SELECT 'login_events', l.id, to_jsonb(l)
      FROM ato.login_events l
     WHERE l.occurred_at >= scope.window_from AND l.occurred_at <= scope.window_to
       AND (l.user_id IN (SELECT u FROM unnest(scope.accounts) u) OR l.ip_address <<= ANY (scope.attacker_networks))
       AND NOT EXISTS (SELECT FROM ato.evidence_rows r
                        WHERE r.incident_id = incident.id AND r.event_table = 'login_events' AND r.event_id = l.id)
    UNION ALL
    SELECT 'audit_events', a.id, to_jsonb(a)
      FROM ato.audit_events a
     WHERE a.occurred_at >= scope.window_from AND a.occurred_at <= scope.window_to
       AND (a.actor_id IN (SELECT u FROM unnest(scope.accounts) u) OR a.target_id IN (SELECT u FROM unnest(scope.accounts) u)
            OR a.ip_address <<= ANY (scope.attacker_networks))
       AND NOT EXISTS (SELECT FROM ato.evidence_rows r
                        WHERE r.incident_id = incident.id AND r.event_table = 'audit_events' AND r.event_id = a.id);
END;
$$;
COMMENT ON FUNCTION ato.incident_events(uuid) IS
    'The events of an incident''s window (ato.incident_scope()) for its accounts (actor or target) and attacker networks, each as its row in JSON: the preserved ones as preserved (they outlive retention), then those not preserved yet; what ato.incident_timeline() and ato.incident_report() show';
REVOKE ALL ON FUNCTION ato.incident_events(uuid) FROM PUBLIC;
-- install/sections/13_incident_record.sql: the incident record: its stages, the containment as recorded (ato.record_containment()), root cause, follow-ups, the accounts it holds (ato.incident_accounts, the scope changes 13_incident_scope.sql makes), an append-only history of every change, the preview of a revocation (src/targets.c, src/owner.c; src/revoke.c calls ato.record_containment()).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- The incident record (seed 000: "initial report time, confirmation of ATO,
-- actions taken, root cause, followup actions"; seed 001: detect, contain,
-- investigate, eradicate, recover, improve; seed 004: scope accuracy, the
-- retrospective's questions).
--
-- An incident's record is keyed by the incident's id, and may exist before
-- its containment: ato.report_incident() records the report, and
-- ato.revoke_incident(..., incident_id => that id) contains it (the
-- containment records the stage "contained" itself).  An incident opened
-- by ato.revoke_incident() without a report gets its record then, reported
-- at its opening by whoever opened it.
--
-- Stages, in order: reported, confirmed, contained, eradicated, recovered,
-- closed.  Each is reached once, never undone; "confirmed" may come before
-- or after "contained" (containment on a strong alert need not wait for the
-- user's confirmation); eradicated needs contained, recovered needs
-- eradicated (and no suspension of the incident left, no marking still
-- running), closed needs recovered, or no containment at all (a false
-- alarm).  Nothing changes once closed but follow-ups.  ato.report_incident()
-- and ato.advance_incident() move an incident along (16_incident_lifecycle.sql,
-- above the alerts a report escalates, and the notices and the downstream
-- obligations that confirmation sets off).
--
-- Every change is a row of ato.incident_changes, which no role can change
-- or remove through SQL: who (session_user and the role acted as), when,
-- what.  The scope's changes are rows of ato.incident_scope_changes, as
-- append-only.
-- ---------------------------------------------------------------------------

CREATE TYPE ato.incident_stage AS ENUM ('reported', 'confirmed', 'contained', 'eradicated', 'recovered', 'closed');
COMMENT ON TYPE ato.incident_stage IS
    'The stages of an incident, in order: reported, confirmed, contained (its accounts revoked and flagged), eradicated (the attacker''s ways in closed), recovered (the accounts given back), closed';

CREATE TYPE ato.report_channel AS ENUM ('alert', 'user_report', 'support_ticket', 'third_party_notice');
COMMENT ON TYPE ato.report_channel IS
    'How an incident was reported: an alert (a detection rule), a user''s report, a support ticket, a third party''s notice (a partner, a CERT, a breach notification service)';

CREATE TYPE ato.root_cause AS ENUM ('phishing', 'credential_stuffing', 'session_theft', 'idp_breach', 'leaked_token', 'insider', 'unknown');
COMMENT ON TYPE ato.root_cause IS
    'Why the accounts were taken over: phishing, credential stuffing (passwords from another breach), session theft, a breach of the identity provider, a leaked token or key, an insider, or unknown';

CREATE FUNCTION ato.calling_role()
RETURNS name
AS 'MODULE_PATHNAME', 'ato_calling_role'
LANGUAGE C STABLE;
COMMENT ON FUNCTION ato.calling_role() IS
    'The role the caller acts as (after SET ROLE), which current_user is not inside a SECURITY DEFINER function; the incident record writes it beside session_user, and the registrations of hooks, downstream applications and secrets as who registered them';
REVOKE ALL ON FUNCTION ato.calling_role() FROM PUBLIC;

-- No foreign key to ato.incidents: a record exists before its containment
-- and outlives the incident's row.
CREATE TABLE ato.incident_records (
    incident_id uuid PRIMARY KEY,
    summary text NOT NULL,
    reported_at timestamptz NOT NULL,
    reported_by text NOT NULL,
    report_channel ato.report_channel,
    alert_id bigint,
    stage ato.incident_stage NOT NULL,
    confirmed_at timestamptz,
    contained_at timestamptz,
    eradicated_at timestamptz,
    recovered_at timestamptz,
    closed_at timestamptz,
    root_cause ato.root_cause,
    root_cause_note text,
    recorded_at timestamptz NOT NULL,
    recorded_by name NOT NULL
);
COMMENT ON TABLE ato.incident_records IS
    'One row per incident: its report, its stage and when each stage was reached, its root cause; every change to it is in ato.incident_changes';
COMMENT ON COLUMN ato.incident_records.reported_by IS
    'Who reported it, as given (a user, a support agent, a partner, a detection rule); for an incident opened by ato.revoke_incident() without a report, the role that opened it';
COMMENT ON COLUMN ato.incident_records.report_channel IS
    'How it was reported; NULL for an incident opened by ato.revoke_incident() without a report';
COMMENT ON COLUMN ato.incident_records.stage IS
    'The latest stage reached (ato.incident_stage order); "confirmed" reached after "contained" leaves it "contained"';
COMMENT ON COLUMN ato.incident_records.contained_at IS
    'The incident''s revocation time (ato.incidents.opened_at): its first accounts revoked and flagged';
SELECT pg_catalog.pg_extension_config_dump('ato.incident_records', '');

CREATE TABLE ato.incident_follow_ups (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    incident_id uuid NOT NULL REFERENCES ato.incident_records (incident_id),
    what text NOT NULL,
    owner text NOT NULL,
    due date,
    added_at timestamptz NOT NULL,
    added_by name NOT NULL,
    done_at timestamptz,
    done_by name,
    done_note text
);
CREATE INDEX incident_follow_ups_incident_idx ON ato.incident_follow_ups (incident_id);
COMMENT ON TABLE ato.incident_follow_ups IS
    'What is to be done after an incident (seed 000: "followup actions"; seed 001: update detection, MFA enrolment, training): what, who owns it, when it is due, when and by whom it was done';
SELECT pg_catalog.pg_extension_config_dump('ato.incident_follow_ups', '');
SELECT pg_catalog.pg_extension_config_dump('ato.incident_follow_ups_id_seq', '');

CREATE TABLE ato.incident_scope_changes (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    incident_id uuid NOT NULL,
    user_id text NOT NULL,
    change text NOT NULL CHECK (change IN ('added', 'released')),
    changed_at timestamptz NOT NULL,
    changed_by name NOT NULL,
    changed_as name NOT NULL,
    reason text NOT NULL
);
CREATE INDEX incident_scope_changes_incident_idx ON ato.incident_scope_changes (incident_id, user_id);
COMMENT ON TABLE ato.incident_scope_changes IS
    'The changes of an incident''s scope after its opening, one row per account: added (ato.add_incident_accounts(), contained as the first ones) or released (ato.release_incident_accounts(), found unaffected); append-only; ato.incident_accounts reads them';
SELECT pg_catalog.pg_extension_config_dump('ato.incident_scope_changes', '');
SELECT pg_catalog.pg_extension_config_dump('ato.incident_scope_changes_id_seq', '');

CREATE TABLE ato.incident_changes (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    incident_id uuid NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    changed_by name NOT NULL DEFAULT session_user,
    changed_as name NOT NULL DEFAULT ato.calling_role(),
    change text NOT NULL,
    stage ato.incident_stage,
    detail jsonb NOT NULL DEFAULT '{}',
    note text
);
CREATE INDEX incident_changes_incident_idx ON ato.incident_changes (incident_id, id);
COMMENT ON TABLE ato.incident_changes IS
    'Every change of an incident''s record, append-only: reported, stage (with the stage reached), root_cause, follow_up_added, follow_up_done, accounts_added, accounts_released; who (session_user, and the role acted as) and when; read it with ato.incident_history()';
COMMENT ON COLUMN ato.incident_changes.changed_as IS 'The role the caller acted as (ato.calling_role())';
SELECT pg_catalog.pg_extension_config_dump('ato.incident_changes', '');
SELECT pg_catalog.pg_extension_config_dump('ato.incident_changes_id_seq', '');

CREATE TRIGGER refuse_change BEFORE UPDATE OR DELETE ON ato.incident_changes
    FOR EACH ROW EXECUTE FUNCTION ato.refuse_change('an incident''s history', 'A change to an incident is recorded as a new row by the function that makes it (ato.advance_incident(), ato.set_root_cause(), ...).');
CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON ato.incident_changes
    FOR EACH STATEMENT EXECUTE FUNCTION ato.refuse_change('an incident''s history', 'A change to an incident is recorded as a new row by the function that makes it (ato.advance_incident(), ato.set_root_cause(), ...).');
CREATE TRIGGER refuse_change BEFORE UPDATE OR DELETE ON ato.incident_scope_changes
    FOR EACH ROW EXECUTE FUNCTION ato.refuse_change('an incident''s history', 'A change to an incident is recorded as a new row by the function that makes it (ato.advance_incident(), ato.set_root_cause(), ...).');
CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON ato.incident_scope_changes
    FOR EACH STATEMENT EXECUTE FUNCTION ato.refuse_change('an incident''s history', 'A change to an incident is recorded as a new row by the function that makes it (ato.advance_incident(), ato.set_root_cause(), ...).');

-- Per incident and account: in its first scope or added later, released or not.
CREATE VIEW ato.incident_accounts AS
WITH opening AS (
    SELECT i.id AS incident_id, u.user_id, i.opened_at, i.opened_by
      FROM ato.incidents i CROSS JOIN LATERAL unnest(i.user_ids) AS u(user_id)),
changes AS (
    SELECT c.incident_id, c.user_id,
           min(c.changed_at) FILTER (WHERE c.change = 'added') AS first_added_at,
           (array_agg(c.changed_by ORDER BY c.id) FILTER (WHERE c.change = 'added'))[1] AS first_added_by,
           (array_agg(c.change ORDER BY c.id DESC))[1] AS last_change,
           (array_agg(c.changed_at ORDER BY c.id DESC))[1] AS last_changed_at,
           (array_agg(c.changed_by ORDER BY c.id DESC))[1] AS last_changed_by,
           (array_agg(c.reason ORDER BY c.id DESC))[1] AS last_reason
      FROM ato.incident_scope_changes c
     GROUP BY c.incident_id, c.user_id)
SELECT coalesce(o.incident_id, c.incident_id) AS incident_id,
       coalesce(o.user_id, c.user_id) AS user_id,
       o.user_id IS NOT NULL AS initial,
       coalesce(o.opened_at, c.first_added_at) AS added_at,
       coalesce(o.opened_by, c.first_added_by) AS added_by,
       CASE WHEN c.last_change = 'released' THEN c.last_changed_at END AS released_at,
       CASE WHEN c.last_change = 'released' THEN c.last_changed_by END AS released_by,
       CASE WHEN c.last_change = 'released' THEN c.last_reason END AS release_reason,
       coalesce(c.last_change, 'added') = 'added' AS in_scope
  FROM opening o
  FULL JOIN changes c ON c.incident_id = o.incident_id AND c.user_id = o.user_id;
COMMENT ON VIEW ato.incident_accounts IS
    'Every account an incident held: initial (opened with it) or added later (when, by whom), released (found unaffected: when, by whom, why) or in scope now; the initial scope is ato.incidents.user_ids';
REVOKE ALL ON ato.incident_records, ato.incident_follow_ups, ato.incident_scope_changes, ato.incident_changes,
              ato.incident_accounts FROM PUBLIC;
REVOKE ALL ON SEQUENCE ato.incident_follow_ups_id_seq, ato.incident_scope_changes_id_seq,
              ato.incident_changes_id_seq FROM PUBLIC;

-- The accounts an incident holds now: those it opened with and those added
-- since, but the released ones; what its notices and downstream obligations
-- go to.
CREATE FUNCTION ato.incident_accounts_in_scope(incident_id uuid)
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(a.user_id ORDER BY a.user_id COLLATE "C"), '{}')
      FROM ato.incident_accounts a
     WHERE a.incident_id = incident_accounts_in_scope.incident_id AND a.in_scope
$$;
COMMENT ON FUNCTION ato.incident_accounts_in_scope(uuid) IS
    'The accounts an incident holds now (ato.incident_accounts in scope: its first ones and those added, not those released), sorted: whom its notices and downstream obligations are for';
REVOKE ALL ON FUNCTION ato.incident_accounts_in_scope(uuid) FROM PUBLIC;

-- The one check of an incident record argument: NULL 22004, unknown P0002,
-- closed 55000 unless the caller accepts it.  Locks the row when asked.
CREATE FUNCTION ato.incident_record(caller text, incident_id uuid, lock boolean DEFAULT false,
                                    closed_ok boolean DEFAULT false)
RETURNS ato.incident_records
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rec ato.incident_records;
BEGIN
    IF incident_id IS NULL THEN
        RAISE EXCEPTION '%: incident_id must not be NULL', caller
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the id ato.report_incident() or ato.revoke_incident() returned; the incidents are in ato.incident_records.';
    END IF;
    IF lock THEN
        SELECT * INTO rec FROM ato.incident_records r WHERE r.incident_id = incident_record.incident_id FOR UPDATE;
    ELSE
        SELECT * INTO rec FROM ato.incident_records r WHERE r.incident_id = incident_record.incident_id;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: incident % does not exist', caller, incident_id
            USING ERRCODE = 'no_data_found',
                  HINT = 'The incidents are in ato.incident_records; open one with ato.report_incident() or ato.revoke_incident().';
    END IF;
    IF rec.stage = 'closed' AND NOT closed_ok THEN
        RAISE EXCEPTION '%: incident % is closed', caller, incident_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'A closed incident''s record no longer changes (but its follow-ups); for new findings, report a new incident.';
    END IF;
    RETURN rec;
END;
$$;
COMMENT ON FUNCTION ato.incident_record(text, uuid, boolean, boolean) IS
    'The record of that incident, for the record''s functions: an error naming the caller when the id is NULL (22004), unknown (P0002) or, unless closed_ok, the incident is closed (55000); lock: FOR UPDATE';
REVOKE ALL ON FUNCTION ato.incident_record(text, uuid, boolean, boolean) FROM PUBLIC;

CREATE FUNCTION ato.check_record_text(caller text, argument text, value text, example text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF value IS NULL OR btrim(value) = '' THEN
        RAISE EXCEPTION '%: % must not be %', caller, argument, CASE WHEN value IS NULL THEN 'NULL' ELSE 'empty' END
            USING ERRCODE = CASE WHEN value IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END,
                  HINT = format('For example %s.', example);
    END IF;
END;
$$;
COMMENT ON FUNCTION ato.check_record_text(text, text, text, text) IS
    'Raises 22004 for a NULL and 22023 for an empty (or blank) text argument of the record''s functions, naming the caller, the argument and an example';
REVOKE ALL ON FUNCTION ato.check_record_text(text, text, text, text) FROM PUBLIC;

-- Called by ato.revoke_incident() (src/revoke.c) once it has contained an
-- incident, in its transaction.
CREATE FUNCTION ato.record_containment(incident_id uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    incident ato.incidents;
    rec ato.incident_records;
BEGIN
    SELECT * INTO incident FROM ato.incidents i WHERE i.id = record_containment.incident_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'record_containment: incident % does not exist', incident_id
            USING ERRCODE = 'no_data_found',
                  HINT = 'ato.revoke_incident() calls it once it has opened the incident.';
    END IF;
    SELECT * INTO rec FROM ato.incident_records r WHERE r.incident_id = incident.id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO ato.incident_records (incident_id, summary, reported_at, reported_by, stage, recorded_at, recorded_by)
        VALUES (incident.id, incident.reason, incident.opened_at, incident.opened_by, 'reported', now(), session_user)
        RETURNING * INTO rec;
        INSERT INTO ato.incident_changes (incident_id, change, stage, detail)
        VALUES (incident.id, 'reported', 'reported',
                jsonb_build_object('reported_at', incident.opened_at, 'reported_by', incident.opened_by,
                                   'channel', NULL, 'summary', incident.reason, 'by', 'ato.revoke_incident()'));
    ELSIF rec.stage = 'closed' THEN
        RAISE EXCEPTION 'revoke_incident: incident % is closed', incident.id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'A closed incident is not contained again: open a new one (give no incident_id).';
    ELSIF rec.contained_at IS NOT NULL THEN
        RETURN;
    END IF;
    UPDATE ato.incident_records r
       SET stage = greatest(r.stage, 'contained'), contained_at = incident.opened_at
     WHERE r.incident_id = incident.id;
    INSERT INTO ato.incident_changes (incident_id, change, stage, detail)
    VALUES (incident.id, 'stage', 'contained',
            jsonb_build_object('at', incident.opened_at, 'from', rec.stage, 'accounts', cardinality(incident.user_ids),
                               'suspend', incident.suspend, 'reauth_required', incident.reauth_required,
                               'mfa_reenrollment_required', incident.mfa_reenrollment_required,
                               'password_reset_required', incident.password_reset_required));
    -- Confirmed before it was contained: the notices are not written here,
    -- in the transaction that holds the revocation fence (logins of the
    -- fenced accounts, or of their buckets, would wait for the
    -- application's hooks), but by ato.write_owed_notices() after it: the
    -- detection worker's next cycle, or a call by hand.
    IF rec.confirmed_at IS NOT NULL THEN
        RAISE NOTICE 'incident % was confirmed before it was contained: its notices are written by the detection worker''s next cycle', incident.id
            USING HINT = 'Without the worker, run SELECT ato.write_owed_notices() once this transaction has committed.';
    END IF;
END;
$$;
COMMENT ON FUNCTION ato.record_containment(uuid) IS
    'For ato.revoke_incident(): records the stage contained (at the revocation time) in the incident''s record, creating the record of an incident opened without a report; refuses a closed incident';
REVOKE ALL ON FUNCTION ato.record_containment(uuid) FROM PUBLIC;

CREATE FUNCTION ato.set_root_cause(incident_id uuid, cause ato.root_cause, note text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rec ato.incident_records := ato.incident_record('set_root_cause', incident_id, true);
BEGIN
    IF cause IS NULL THEN
        RAISE EXCEPTION 'set_root_cause: cause must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass phishing, credential_stuffing, session_theft, idp_breach, leaked_token, insider or unknown.';
    END IF;
    UPDATE ato.incident_records r SET root_cause = cause, root_cause_note = note
     WHERE r.incident_id = set_root_cause.incident_id;
    INSERT INTO ato.incident_changes (incident_id, change, stage, detail, note)
    VALUES (incident_id, 'root_cause', rec.stage, jsonb_build_object('from', rec.root_cause, 'to', cause), note);
END;
$$;
COMMENT ON FUNCTION ato.set_root_cause(uuid, ato.root_cause, text) IS
    'Records (or corrects) an incident''s root cause, with a note; the history keeps the earlier one; refused once closed';
REVOKE ALL ON FUNCTION ato.set_root_cause(uuid, ato.root_cause, text) FROM PUBLIC;

CREATE FUNCTION ato.add_follow_up(incident_id uuid, what text, owner text, due date DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rec ato.incident_records := ato.incident_record('add_follow_up', incident_id, true, closed_ok => true);
    new_id bigint;
BEGIN
    PERFORM ato.check_record_text('add_follow_up', 'what', what, '''add impossible_travel to the rules of the VPN logins''');
    PERFORM ato.check_record_text('add_follow_up', 'owner', owner, '''detection team'' or ''alice''');
    IF due < current_date THEN
        RAISE EXCEPTION 'add_follow_up: due is in the past'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a date from today on, or leave it out for no due date.';
    END IF;
    INSERT INTO ato.incident_follow_ups (incident_id, what, owner, due, added_at, added_by)
    VALUES (incident_id, what, owner, due, now(), session_user)
    RETURNING id INTO new_id;
    INSERT INTO ato.incident_changes (incident_id, change, stage, detail)
    VALUES (incident_id, 'follow_up_added', rec.stage,
            jsonb_build_object('follow_up', new_id, 'what', what, 'owner', owner, 'due', due));
    RETURN new_id;
END;
$$;
COMMENT ON FUNCTION ato.add_follow_up(uuid, text, text, date) IS
    'Adds a follow-up to an incident (also a closed one: the retrospective comes after): what, who owns it, when it is due; returns its id';
REVOKE ALL ON FUNCTION ato.add_follow_up(uuid, text, text, date) FROM PUBLIC;

CREATE FUNCTION ato.complete_follow_up(follow_up_id bigint, note text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f ato.incident_follow_ups;
    rec ato.incident_records;
BEGIN
    IF follow_up_id IS NULL THEN
        RAISE EXCEPTION 'complete_follow_up: follow_up_id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the id ato.add_follow_up() returned; the follow-ups are in ato.incident_follow_ups.';
    END IF;
    SELECT * INTO f FROM ato.incident_follow_ups x WHERE x.id = follow_up_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'complete_follow_up: follow-up % does not exist', follow_up_id
            USING ERRCODE = 'no_data_found',
                  HINT = 'The follow-ups are in ato.incident_follow_ups.';
    END IF;
    IF f.done_at IS NOT NULL THEN
        RAISE EXCEPTION 'complete_follow_up: follow-up % was done already', follow_up_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'ato.incident_follow_ups says when and by whom; for more to do, add a follow-up with ato.add_follow_up().';
    END IF;
    rec := ato.incident_record('complete_follow_up', f.incident_id, false, closed_ok => true);
    UPDATE ato.incident_follow_ups x SET done_at = now(), done_by = session_user, done_note = note
     WHERE x.id = follow_up_id;
    INSERT INTO ato.incident_changes (incident_id, change, stage, detail, note)
    VALUES (f.incident_id, 'follow_up_done', rec.stage, jsonb_build_object('follow_up', f.id, 'what', f.what), note);
END;
$$;
COMMENT ON FUNCTION ato.complete_follow_up(bigint, text) IS
    'Marks a follow-up done (when, by whom, a note); an error if it was done already';
REVOKE ALL ON FUNCTION ato.complete_follow_up(bigint, text) FROM PUBLIC;

CREATE FUNCTION ato.incident_history(incident_id uuid)
RETURNS TABLE (at timestamptz, change text, stage ato.incident_stage, changed_by name, changed_as name,
               detail jsonb, note text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    PERFORM ato.incident_record('incident_history', incident_id, false, closed_ok => true);
    RETURN QUERY
    SELECT c.changed_at, c.change, c.stage, c.changed_by, c.changed_as, c.detail, c.note
      FROM ato.incident_changes c WHERE c.incident_id = incident_history.incident_id
     ORDER BY c.id;
END;
$$;
COMMENT ON FUNCTION ato.incident_history(uuid) IS
    'Every change of an incident''s record, in order: when, what (reported, stage, root_cause, follow_up_added, follow_up_done, accounts_added, accounts_released), the stage, who (session_user, and the role acted as), the detail and the note';
REVOKE ALL ON FUNCTION ato.incident_history(uuid) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- The preview of a revocation: what ato.revoke_incident() would do now,
-- changing nothing (seed 004: "premature, overly broad responses cause
-- unnecessary user impact").
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.preview_revocation_targets(user_ids text[], delete_created_after timestamptz DEFAULT NULL)
RETURNS TABLE (target_id integer, target text, action text, rows bigint, mismatched_ids bigint, error text)
AS 'MODULE_PATHNAME', 'ato_preview_revocation_targets'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.preview_revocation_targets(text[], timestamptz) IS
    'For ato.preview_revocation(): per registered table, the rows an incident over these accounts would mark or delete now (counted by the marking''s own condition, as the table''s owner), the ids not of its account column''s type and the error a table would fail with; changes nothing';
REVOKE ALL ON FUNCTION ato.preview_revocation_targets(text[], timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.preview_revocation(
    user_ids text[],
    suspend boolean DEFAULT false,
    reauth_required boolean DEFAULT true,
    mfa_reenrollment_required boolean DEFAULT false,
    password_reset_required boolean DEFAULT false,
    delete_created_after timestamptz DEFAULT NULL)
RETURNS TABLE (item text, name text, rows bigint, would_set jsonb, note text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    accounts text[];
BEGIN
    PERFORM ato.check_account_ids('preview_revocation', 'user_ids', user_ids);
    IF suspend IS NULL OR reauth_required IS NULL OR mfa_reenrollment_required IS NULL OR password_reset_required IS NULL THEN
        RAISE EXCEPTION 'preview_revocation: the flags must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass true or false, as to ato.revoke_incident().';
    END IF;
    IF EXISTS (SELECT FROM unnest(user_ids) u WHERE octet_length(u) > 1000) THEN
        RAISE EXCEPTION 'preview_revocation: an account id is longer than 1000 bytes'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Account ids are between 1 and 1000 bytes.';
    END IF;
    SELECT array_agg(DISTINCT u COLLATE "C" ORDER BY u COLLATE "C") INTO accounts FROM unnest(user_ids) u;
    RETURN QUERY
    SELECT 'table', p.target, p.rows,
           jsonb_build_object('action', p.action) ||
           CASE p.action
               WHEN 'delete' THEN jsonb_build_object('deletes', CASE WHEN t.created_column IS NOT NULL AND preview_revocation.delete_created_after IS NOT NULL
                                                                     THEN format('rows with %s >= %s', t.created_column, preview_revocation.delete_created_after)
                                                                     ELSE 'every row of the accounts' END)
               ELSE jsonb_strip_nulls(jsonb_build_object(
                        t.state_column::text, CASE p.action WHEN 'end' THEN 'the revocation time' WHEN 'revoke' THEN 'true' ELSE 'false' END,
                        coalesce(t.time_column::text, '-'), CASE WHEN t.time_column IS NOT NULL THEN 'the revocation time' END,
                        coalesce(t.reason_column::text, '-'), CASE WHEN t.reason_column IS NOT NULL THEN 'the reason' END,
                        coalesce(t.incident_column::text, '-'), CASE WHEN t.incident_column IS NOT NULL THEN 'the incident id' END))
           END,
           coalesce(p.error,
                    CASE WHEN p.mismatched_ids > 0
                         THEN format('%s of the ids are not values of its account column''s type: no row is marked for them', p.mismatched_ids) END)
      FROM ato.preview_revocation_targets(accounts, preview_revocation.delete_created_after) p
      LEFT JOIN ato.revocation_targets t ON t.id = p.target_id
    UNION ALL
    SELECT 'account', u, NULL::bigint,
           jsonb_build_object('revoked_before', 'the revocation time',
                              'suspended', coalesce(f.suspended, false) OR preview_revocation.suspend,
                              'reauth_required', coalesce(f.reauth_required, false) OR preview_revocation.reauth_required,
                              'mfa_reenrollment_required', coalesce(f.mfa_reenrollment_required, false) OR preview_revocation.mfa_reenrollment_required,
                              'password_reset_required', coalesce(f.password_reset_required, false) OR preview_revocation.password_reset_required),
           nullif(concat_ws('; ',
                  CASE WHEN r.user_id IS NOT NULL THEN format('revoked already until %s by incident %s', r.revoked_at, r.incident_id) END,
                  CASE WHEN f.user_id IS NOT NULL AND (f.suspended OR f.reauth_required OR f.mfa_reenrollment_required OR f.password_reset_required)
                       THEN format('flags set already by %s', coalesce('incident ' || f.incident_id, 'hand')) END,
                  CASE WHEN NOT EXISTS (SELECT FROM ato.account_countries c WHERE c.user_id = u)
                        AND NOT EXISTS (SELECT FROM ato.login_events e WHERE e.user_id = u AND e.outcome = 'success')
                       THEN 'no successful login on record' END), '')
      FROM unnest(accounts) u
      LEFT JOIN ato.account_flags f ON f.user_id = u
      LEFT JOIN ato.account_revocations r ON r.user_id = u
     ORDER BY 1 DESC, 2;
END;
$$;
COMMENT ON FUNCTION ato.preview_revocation(text[], boolean, boolean, boolean, boolean, timestamptz) IS
    'What ato.revoke_incident() with these arguments would do now, changing nothing: per registered table (item table) the rows it would mark or delete and what it would set; per account (item account) the flags it would have afterwards and what is set already (an earlier revocation, flags, no login on record); duplicate ids count once';
REVOKE ALL ON FUNCTION ato.preview_revocation(text[], boolean, boolean, boolean, boolean, timestamptz) FROM PUBLIC;
-- install/sections/13_incident_scope.sql: an incident's scope after its opening: accounts added (contained by src/revoke.c as its first ones), accounts released, and the lifting of an incident's suspensions in stages (ato.lift_incident()).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- It comes after the record (13_incident_record.sql), whose changes and
-- ato.incident_scope_changes it writes: the containment in src/revoke.c
-- records its stage in the record, and is called from here, not from there.

-- ---------------------------------------------------------------------------
-- Scope changes: accounts added to an open incident are contained as its
-- first ones were (src/revoke.c: the fence, a revocation time, the
-- incident's flags and reason, its tables marked under its id and announced
-- in the outbox); accounts found unaffected are released (their suspension
-- lifted as ato.lift_incident() lifts it).
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.contain_incident_accounts(incident_id uuid, user_ids text[])
RETURNS integer
AS 'MODULE_PATHNAME', 'ato_contain_incident_accounts'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION ato.contain_incident_accounts(uuid, text[]) IS
    'For ato.add_incident_accounts(): contains the accounts as the incident''s first ones were (fence, revocation time now, the incident''s flags and reason, its tables marked in its batches, in this transaction), at most 1024 at a time; returns how many';
REVOKE ALL ON FUNCTION ato.contain_incident_accounts(uuid, text[]) FROM PUBLIC;

CREATE FUNCTION ato.check_scope_change(caller text, user_ids text[], reason text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    repeated text;
BEGIN
    PERFORM ato.check_account_ids(caller, 'user_ids', user_ids);
    IF array_ndims(user_ids) > 1 THEN
        RAISE EXCEPTION '%: user_ids must be a one-dimensional array', caller
            USING ERRCODE = 'array_subscript_error',
                  HINT = 'Pass the accounts, for example ARRAY[''alice'', ''bob''].';
    END IF;
    SELECT u INTO repeated FROM unnest(user_ids) u GROUP BY u HAVING count(*) > 1 ORDER BY u LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '%: account % is given more than once', caller, repeated
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass each account once, for example ARRAY(SELECT DISTINCT unnest(ids)).';
    END IF;
    PERFORM ato.check_record_text(caller, 'reason', reason, '''same device fingerprint as the attacker''s''');
END;
$$;
COMMENT ON FUNCTION ato.check_scope_change(text, text[], text) IS
    'The checks of a scope change''s arguments: accounts (NULL 22004, empty 22023, not one-dimensional 2202E, an account twice 22023) and a reason';
REVOKE ALL ON FUNCTION ato.check_scope_change(text, text[], text) FROM PUBLIC;

CREATE FUNCTION ato.add_incident_accounts(incident_id uuid, user_ids text[], reason text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rec ato.incident_records := ato.incident_record('add_incident_accounts', incident_id, true);
    incident ato.incidents;
    added text[];
    present text[];
BEGIN
    PERFORM ato.check_scope_change('add_incident_accounts', user_ids, reason);
    SELECT * INTO incident FROM ato.incidents i WHERE i.id = add_incident_accounts.incident_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'add_incident_accounts: incident % is not contained yet', incident_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Contain its accounts first: SELECT ato.revoke_incident(accounts, reason, incident_id => %L).', incident_id);
    END IF;
    IF rec.stage >= 'recovered' THEN
        RAISE EXCEPTION 'add_incident_accounts: incident % is recovered already', incident_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Accounts found after recovery are a new incident: open one with ato.revoke_incident().';
    END IF;
    SELECT coalesce(array_agg(u ORDER BY u COLLATE "C") FILTER (WHERE a.user_id IS NULL), '{}'),
           coalesce(array_agg(u ORDER BY u COLLATE "C") FILTER (WHERE a.user_id IS NOT NULL), '{}')
      INTO added, present
      FROM unnest(user_ids) u
      LEFT JOIN ato.incident_accounts a
        ON a.incident_id = add_incident_accounts.incident_id AND a.user_id = u AND a.in_scope;
    IF cardinality(present) > 0 THEN
        RAISE NOTICE 'add_incident_accounts: % of the accounts are in the incident''s scope already and are left as they are: %',
            cardinality(present), array_to_string(present[1:10], ', ') || CASE WHEN cardinality(present) > 10 THEN ', ...' ELSE '' END
            USING HINT = 'ato.incident_accounts lists the scope.';
    END IF;
    IF cardinality(added) = 0 THEN
        RETURN 0;
    END IF;
    PERFORM ato.contain_incident_accounts(incident_id, added);
    INSERT INTO ato.incident_scope_changes (incident_id, user_id, change, changed_at, changed_by, changed_as, reason)
    SELECT incident_id, u, 'added', now(), session_user, ato.calling_role(), reason FROM unnest(added) u;
    INSERT INTO ato.incident_changes (incident_id, change, stage, detail, note)
    VALUES (incident_id, 'accounts_added', rec.stage,
            jsonb_build_object('accounts', to_jsonb(added), 'count', cardinality(added),
                               'already_in_scope', cardinality(present)), reason);
    -- suspended again: the incident is no longer lifted
    IF incident.suspend THEN
        UPDATE ato.incidents i SET status = 'contained' WHERE i.id = incident.id AND i.status = 'lifted';
    END IF;
    RETURN cardinality(added);
END;
$$;
COMMENT ON FUNCTION ato.add_incident_accounts(uuid, text[], text) IS
    'Adds accounts to a contained incident that is not recovered yet and contains them exactly as its first ones (the revocation fence, a revocation time of now, the incident''s flags, its registered tables marked under its id and announced in ato.revocation_outbox), at most 1024 per call, in this transaction; accounts in the scope already are left out (a NOTICE), an account given twice is an error; records the change in ato.incident_scope_changes and the history; returns the accounts added';
REVOKE ALL ON FUNCTION ato.add_incident_accounts(uuid, text[], text) FROM PUBLIC;

-- Lifting an incident's suspensions, in stages.  Its accounts are the ones
-- it opened with and those added since (ato.incident_scope_changes); a
-- release (below) lifts the released ones this way.
CREATE FUNCTION ato.lift_incident(incident_id uuid, user_ids text[] DEFAULT NULL, note text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    incident ato.incidents;
    stage text[];
    outsiders integer;
BEGIN
    IF incident_id IS NULL THEN
        RAISE EXCEPTION 'lift_incident: incident_id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the id ato.revoke_incident() returned; the incidents are in ato.incidents.';
    END IF;
    SELECT * INTO incident FROM ato.incidents i WHERE i.id = lift_incident.incident_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lift_incident: incident % does not exist', coalesce(incident_id::text, 'NULL')
            USING ERRCODE = 'no_data_found',
                  HINT = 'The incidents are in ato.incidents.';
    END IF;
    IF user_ids IS NOT NULL THEN
        -- the incident's accounts: its first ones and those added later
        -- (13_incident_record.sql)
        SELECT count(*) INTO outsiders FROM unnest(user_ids) u
         WHERE u IS NULL OR (NOT u COLLATE "C" = ANY (incident.user_ids)
                             AND NOT EXISTS (SELECT FROM ato.incident_scope_changes c
                                              WHERE c.incident_id = incident.id AND c.user_id = u));
        IF outsiders > 0 THEN
            RAISE NOTICE 'lift_incident: % of the ids are not accounts of the incident; they are left as they are',
                outsiders;
        END IF;
    END IF;
    -- the flag rows in account order, as every writer of them takes them
    PERFORM FROM ato.account_flags f
      WHERE f.incident_id = incident.id AND f.suspended
        AND (lift_incident.user_ids IS NULL OR f.user_id = ANY (lift_incident.user_ids))
      ORDER BY f.user_id FOR UPDATE;
    WITH lifted AS (
        UPDATE ato.account_flags f
           SET suspended = false, updated_at = now()
         WHERE f.incident_id = incident.id
           AND f.suspended
           AND (lift_incident.user_ids IS NULL OR f.user_id = ANY (lift_incident.user_ids))
        RETURNING f.user_id)
    SELECT coalesce(array_agg(l.user_id ORDER BY l.user_id), '{}') INTO stage FROM lifted l;
    INSERT INTO ato.response_log (action, incident_id, user_ids, detail)
    VALUES ('lifted', incident.id, stage, note);
    IF NOT EXISTS (SELECT FROM ato.account_flags f WHERE f.incident_id = incident.id AND f.suspended) THEN
        UPDATE ato.incidents i SET status = 'lifted' WHERE i.id = incident.id AND i.status = 'contained';
    END IF;
    RETURN cardinality(stage);
END;
$$;
COMMENT ON FUNCTION ato.lift_incident(uuid, text[], text) IS
    'One stage of a controlled reactivation: lifts the suspension the incident set on the given accounts (NULL: all of them, those added later included), records the stage in ato.response_log and returns how many were lifted; other flags stay until the account completes its steps';
REVOKE ALL ON FUNCTION ato.lift_incident(uuid, text[], text) FROM PUBLIC;

CREATE FUNCTION ato.release_incident_accounts(incident_id uuid, user_ids text[], reason text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rec ato.incident_records := ato.incident_record('release_incident_accounts', incident_id, true);
    released text[];
    gone text[];
    strangers text[];
    lifted integer;
BEGIN
    PERFORM ato.check_scope_change('release_incident_accounts', user_ids, reason);
    IF NOT EXISTS (SELECT FROM ato.incidents i WHERE i.id = release_incident_accounts.incident_id) THEN
        RAISE EXCEPTION 'release_incident_accounts: incident % is not contained yet', incident_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'It holds no accounts to release; an incident found to be a false alarm is closed with ato.advance_incident(id, ''closed'', note).';
    END IF;
    SELECT coalesce(array_agg(u ORDER BY u COLLATE "C") FILTER (WHERE a.in_scope), '{}'),
           coalesce(array_agg(u ORDER BY u COLLATE "C") FILTER (WHERE NOT a.in_scope), '{}'),
           coalesce(array_agg(u ORDER BY u COLLATE "C") FILTER (WHERE a.user_id IS NULL), '{}')
      INTO released, gone, strangers
      FROM unnest(user_ids) u
      LEFT JOIN ato.incident_accounts a
        ON a.incident_id = release_incident_accounts.incident_id AND a.user_id = u;
    IF cardinality(strangers) > 0 THEN
        RAISE EXCEPTION 'release_incident_accounts: % of the accounts were never in incident %: %', cardinality(strangers),
            incident_id, array_to_string(strangers[1:10], ', ') || CASE WHEN cardinality(strangers) > 10 THEN ', ...' ELSE '' END
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Release only accounts of the incident; ato.incident_accounts lists them.';
    END IF;
    IF cardinality(gone) > 0 THEN
        RAISE NOTICE 'release_incident_accounts: % of the accounts were released already: %',
            cardinality(gone), array_to_string(gone[1:10], ', ') || CASE WHEN cardinality(gone) > 10 THEN ', ...' ELSE '' END
            USING HINT = 'ato.incident_accounts says when and by whom.';
    END IF;
    IF cardinality(released) = 0 THEN
        RETURN 0;
    END IF;
    lifted := ato.lift_incident(incident_id, released, 'released: ' || reason);
    INSERT INTO ato.incident_scope_changes (incident_id, user_id, change, changed_at, changed_by, changed_as, reason)
    SELECT incident_id, u, 'released', now(), session_user, ato.calling_role(), reason FROM unnest(released) u;
    INSERT INTO ato.incident_changes (incident_id, change, stage, detail, note)
    VALUES (incident_id, 'accounts_released', rec.stage,
            jsonb_build_object('accounts', to_jsonb(released), 'count', cardinality(released),
                               'suspensions_lifted', lifted), reason);
    RETURN cardinality(released);
END;
$$;
COMMENT ON FUNCTION ato.release_incident_accounts(uuid, text[], text) IS
    'Releases accounts of an incident found unaffected: lifts the suspension the incident set on them as ato.lift_incident() does (their other steps stay until completed; revoked sessions stay revoked), records the change in ato.incident_scope_changes and the history; an account never in the incident is an error, one released already a NOTICE; returns the accounts released';
REVOKE ALL ON FUNCTION ato.release_incident_accounts(uuid, text[], text) FROM PUBLIC;
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
-- install/sections/15_downstream.sql: downstream applications and secrets: what each incident still owes them (a revocation per application and account, a rotation per secret), who confirmed it and when, what is outstanding (the confirmations reach the timeline through ato.response_log).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- Downstream (seed 003: "Okta revocation does not propagate to downstream
-- apps automatically. For each app the user accessed, you need a separate
-- revocation action"; seed 001: the API keys and signing keys the accounts
-- could reach are rotated).
--
-- ato.record_downstream_obligations() writes, per incident, one owed
-- revocation per registered application and account that uses it, and one
-- owed rotation per registered secret one of its accounts could reach; each
-- is owed until someone confirms it was done.
-- ---------------------------------------------------------------------------

CREATE TABLE ato.downstream_apps (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE,
    revocation text NOT NULL,
    owner_contact text,
    uses_hook regprocedure,
    registered_at timestamptz NOT NULL DEFAULT now(),
    registered_by name NOT NULL
);
COMMENT ON TABLE ato.downstream_apps IS
    'The applications behind the identity provider that keep their own sessions and tokens (Microsoft 365, Google Workspace, Salesforce, Slack, GitHub, AWS ...): what revoking an account there takes, and who owns it';
COMMENT ON COLUMN ato.downstream_apps.revocation IS 'What to do there, for example ''Graph API revokeSignInSessions''';
COMMENT ON COLUMN ato.downstream_apps.uses_hook IS
    'The application''s function (account id text -> boolean) saying whether the account uses the app; NULL: every account does';
SELECT pg_catalog.pg_extension_config_dump('ato.downstream_apps', '');
SELECT pg_catalog.pg_extension_config_dump('ato.downstream_apps_id_seq', '');

CREATE TABLE ato.downstream_secrets (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE,
    kind text NOT NULL,
    rotation text NOT NULL,
    owner_contact text,
    reachable_hook regprocedure,
    registered_at timestamptz NOT NULL DEFAULT now(),
    registered_by name NOT NULL
);
COMMENT ON TABLE ato.downstream_secrets IS
    'Secrets an account could reach and an attacker in it could have copied (API keys, signing keys, OAuth client secrets, admin tokens): how to rotate each';
COMMENT ON COLUMN ato.downstream_secrets.reachable_hook IS
    'The application''s function (account id text -> boolean) saying whether the account could reach the secret; NULL: any account could';
SELECT pg_catalog.pg_extension_config_dump('ato.downstream_secrets', '');
SELECT pg_catalog.pg_extension_config_dump('ato.downstream_secrets_id_seq', '');

-- No foreign keys: an obligation is history, and stays when its app is
-- unregistered (app_name keeps the name).
CREATE TABLE ato.downstream_revocations (
    incident_id uuid NOT NULL,
    app_id integer NOT NULL,
    app_name text NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    shard text,
    owed_since timestamptz NOT NULL,
    confirmed_at timestamptz,
    confirmed_by name,
    reference text,
    PRIMARY KEY (incident_id, app_id, user_id)
);
CREATE INDEX downstream_revocations_owed_idx ON ato.downstream_revocations (incident_id) WHERE confirmed_at IS NULL;
COMMENT ON TABLE ato.downstream_revocations IS
    'Per incident, downstream app and account, the revocation owed there, and who confirmed it and when (ato.confirm_downstream_revocation())';
COMMENT ON COLUMN ato.downstream_revocations.reference IS 'What the confirmer gave as proof: a ticket, the API call''s request id';
COMMENT ON COLUMN ato.downstream_revocations.shard IS 'ato.shard_name() of the server that wrote it';
SELECT pg_catalog.pg_extension_config_dump('ato.downstream_revocations', '');

CREATE TABLE ato.secret_rotations (
    incident_id uuid NOT NULL,
    secret_id integer NOT NULL,
    secret_name text NOT NULL,
    user_ids text[] NOT NULL,
    shard text,
    owed_since timestamptz NOT NULL,
    confirmed_at timestamptz,
    confirmed_by name,
    reference text,
    PRIMARY KEY (incident_id, secret_id)
);
COMMENT ON TABLE ato.secret_rotations IS
    'Per incident and secret that one of its accounts could reach (user_ids: which), the rotation owed, and who confirmed it and when (ato.confirm_secret_rotation())';
COMMENT ON COLUMN ato.secret_rotations.shard IS 'ato.shard_name() of the server that wrote it';
SELECT pg_catalog.pg_extension_config_dump('ato.secret_rotations', '');
REVOKE ALL ON ato.downstream_apps, ato.downstream_secrets, ato.downstream_revocations, ato.secret_rotations FROM PUBLIC;

CREATE FUNCTION ato.register_downstream_app(name text, revocation text, owner_contact text DEFAULT NULL,
                                            uses_hook regprocedure DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id integer;
BEGIN
    PERFORM ato.check_short_text('register_downstream_app', 'name', name, 200);
    PERFORM ato.check_short_text('register_downstream_app', 'revocation', revocation, 2000);
    PERFORM ato.check_short_text('register_downstream_app', 'owner_contact', owner_contact, 200, true);
    IF uses_hook IS NOT NULL THEN
        PERFORM ato.check_hook(uses_hook, 'boolean'::regtype, 'register_downstream_app');
    END IF;
    INSERT INTO ato.downstream_apps AS a (name, revocation, owner_contact, uses_hook, registered_by)
    VALUES (name, revocation, owner_contact, uses_hook, ato.calling_role())
    ON CONFLICT ON CONSTRAINT downstream_apps_name_key DO UPDATE
       SET revocation = excluded.revocation, owner_contact = excluded.owner_contact, uses_hook = excluded.uses_hook,
           registered_at = now(), registered_by = excluded.registered_by
    RETURNING a.id INTO id;
    RETURN id;
END;
$$;
COMMENT ON FUNCTION ato.register_downstream_app(text, text, text, regprocedure) IS
    'Registers (or updates) a downstream application whose sessions an incident must revoke separately: its name, what the revocation takes, who owns it, and optionally the application''s function (account id text -> boolean, called as its owner) saying which accounts use it; returns its id';
REVOKE ALL ON FUNCTION ato.register_downstream_app(text, text, text, regprocedure) FROM PUBLIC;

CREATE FUNCTION ato.register_secret(name text, kind text, rotation text, owner_contact text DEFAULT NULL,
                                    reachable_hook regprocedure DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id integer;
BEGIN
    PERFORM ato.check_short_text('register_secret', 'name', name, 200);
    PERFORM ato.check_short_text('register_secret', 'kind', kind, 63);
    PERFORM ato.check_short_text('register_secret', 'rotation', rotation, 2000);
    PERFORM ato.check_short_text('register_secret', 'owner_contact', owner_contact, 200, true);
    IF reachable_hook IS NOT NULL THEN
        PERFORM ato.check_hook(reachable_hook, 'boolean'::regtype, 'register_secret');
    END IF;
    INSERT INTO ato.downstream_secrets AS s (name, kind, rotation, owner_contact, reachable_hook, registered_by)
    VALUES (name, kind, rotation, owner_contact, reachable_hook, ato.calling_role())
    ON CONFLICT ON CONSTRAINT downstream_secrets_name_key DO UPDATE
       SET kind = excluded.kind, rotation = excluded.rotation, owner_contact = excluded.owner_contact,
           reachable_hook = excluded.reachable_hook, registered_at = now(), registered_by = excluded.registered_by
    RETURNING s.id INTO id;
    RETURN id;
END;
$$;
COMMENT ON FUNCTION ato.register_secret(text, text, text, text, regprocedure) IS
    'Registers (or updates) a secret an incident''s accounts could reach (kind: api_key, signing_key, oauth_client_secret, admin_token ...): how to rotate it, who owns it, and optionally the application''s function (account id text -> boolean, called as its owner) saying which accounts could reach it; returns its id';
REVOKE ALL ON FUNCTION ato.register_secret(text, text, text, text, regprocedure) FROM PUBLIC;

CREATE FUNCTION ato.unregister_downstream(name text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    gone integer;
BEGIN
    PERFORM ato.check_short_text('unregister_downstream', 'name', name, 200);
    DELETE FROM ato.downstream_apps a WHERE a.name = unregister_downstream.name;
    GET DIAGNOSTICS gone = ROW_COUNT;
    IF gone = 0 THEN
        DELETE FROM ato.downstream_secrets s WHERE s.name = unregister_downstream.name;
        GET DIAGNOSTICS gone = ROW_COUNT;
    END IF;
    RETURN gone > 0;
END;
$$;
COMMENT ON FUNCTION ato.unregister_downstream(text) IS
    'Removes a downstream application or secret by name (new incidents owe it nothing; what earlier ones owe stays); true if it was registered';
REVOKE ALL ON FUNCTION ato.unregister_downstream(text) FROM PUBLIC;

CREATE FUNCTION ato.record_downstream_obligations(incident_id uuid)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    incident ato.incidents := ato.check_incident('record_downstream_obligations', incident_id);
    -- its first accounts and those added since, not those released
    in_scope text[] := ato.incident_accounts_in_scope(incident_id);
    app ato.downstream_apps;
    secret ato.downstream_secrets;
    account text;
    reach text[];
    added bigint := 0;
    n bigint;
BEGIN
    FOR app IN SELECT * FROM ato.downstream_apps a ORDER BY a.id LOOP
        FOREACH account IN ARRAY in_scope LOOP
            CONTINUE WHEN app.uses_hook IS NOT NULL
                      AND NOT coalesce(ato.call_hook(app.uses_hook, 'boolean', account)::boolean, false);
            INSERT INTO ato.downstream_revocations (incident_id, app_id, app_name, user_id, shard, owed_since)
            VALUES (incident.id, app.id, app.name, account, ato.shard_name(), now())
            ON CONFLICT ON CONSTRAINT downstream_revocations_pkey DO NOTHING;
            GET DIAGNOSTICS n = ROW_COUNT;
            added := added + n;
        END LOOP;
    END LOOP;
    FOR secret IN SELECT * FROM ato.downstream_secrets s ORDER BY s.id LOOP
        reach := '{}';
        FOREACH account IN ARRAY in_scope LOOP
            IF secret.reachable_hook IS NULL
               OR coalesce(ato.call_hook(secret.reachable_hook, 'boolean', account)::boolean, false) THEN
                reach := reach || account;
            END IF;
        END LOOP;
        CONTINUE WHEN cardinality(reach) = 0;
        -- accounts that reach it and were not known to: added to the rotation
        -- still owed; a rotation confirmed stays as confirmed
        INSERT INTO ato.secret_rotations AS r (incident_id, secret_id, secret_name, user_ids, shard, owed_since)
        VALUES (incident.id, secret.id, secret.name, reach, ato.shard_name(), now())
        ON CONFLICT ON CONSTRAINT secret_rotations_pkey DO UPDATE
           SET user_ids = excluded.user_ids
         WHERE r.confirmed_at IS NULL AND NOT r.user_ids @> excluded.user_ids;
        GET DIAGNOSTICS n = ROW_COUNT;
        added := added + n;
    END LOOP;
    IF added > 0 THEN
        INSERT INTO ato.response_log (action, incident_id, detail)
        VALUES ('downstream_owed', incident.id, format('%s downstream revocations and secret rotations owed', added));
    END IF;
    RETURN added;
END;
$$;
COMMENT ON FUNCTION ato.record_downstream_obligations(uuid) IS
    'Writes what the incident owes downstream: a revocation per registered application and account that uses it, a rotation per registered secret one of its accounts could reach; called again (more accounts, more apps), adds only what is missing; returns the rows added or extended';
REVOKE ALL ON FUNCTION ato.record_downstream_obligations(uuid) FROM PUBLIC;

CREATE FUNCTION ato.confirm_downstream_revocation(incident_id uuid, app text, user_ids text[] DEFAULT NULL,
                                                  reference text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    incident ato.incidents := ato.check_incident('confirm_downstream_revocation', incident_id);
    app_key integer;
    confirmed text[];
    outsiders integer;
BEGIN
    PERFORM ato.check_short_text('confirm_downstream_revocation', 'app', app, 200);
    PERFORM ato.check_short_text('confirm_downstream_revocation', 'reference', reference, 500, true);
    SELECT coalesce((SELECT a.id FROM ato.downstream_apps a WHERE a.name = app),
                    (SELECT min(r.app_id) FROM ato.downstream_revocations r
                      WHERE r.incident_id = incident.id AND r.app_name = app))
      INTO app_key;
    IF app_key IS NULL THEN
        RAISE EXCEPTION 'confirm_downstream_revocation: no downstream application "%"', app
            USING ERRCODE = 'no_data_found',
                  HINT = 'The applications are in ato.downstream_apps; register one with ato.register_downstream_app().';
    END IF;
    IF user_ids IS NOT NULL THEN
        PERFORM ato.check_account_ids('confirm_downstream_revocation', 'user_ids', user_ids);
        SELECT count(*) INTO outsiders FROM unnest(user_ids) u
         WHERE NOT u COLLATE "C" = ANY ((ato.incident_scope(incident.id)).accounts);
        IF outsiders > 0 THEN
            RAISE EXCEPTION 'confirm_downstream_revocation: % of the accounts are not accounts of incident %', outsiders, incident.id
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Confirm the incident''s own accounts (ato.incident_accounts), or leave user_ids out for all of them.';
        END IF;
    END IF;
    WITH done AS (
        UPDATE ato.downstream_revocations r
           SET confirmed_at = clock_timestamp(), confirmed_by = session_user,
               reference = confirm_downstream_revocation.reference
         WHERE r.incident_id = incident.id AND r.app_id = app_key
           AND r.confirmed_at IS NULL
           AND (confirm_downstream_revocation.user_ids IS NULL
                OR r.user_id = ANY (confirm_downstream_revocation.user_ids))
        RETURNING r.user_id)
    SELECT coalesce(array_agg(d.user_id::text ORDER BY d.user_id), '{}') INTO confirmed FROM done d;
    IF cardinality(confirmed) > 0 THEN
        INSERT INTO ato.response_log (action, incident_id, user_ids, detail)
        VALUES ('downstream_revoked', incident.id, confirmed, concat_ws(': ', app, reference));
    END IF;
    RETURN cardinality(confirmed);
END;
$$;
COMMENT ON FUNCTION ato.confirm_downstream_revocation(uuid, text, text[], text) IS
    'Records that the revocation owed at a downstream application was done, for the given accounts of the incident (NULL: all still owed), by session_user now, with a reference (ticket, request id); returns how many were confirmed (0 when none was owed: a repeat changes nothing)';
REVOKE ALL ON FUNCTION ato.confirm_downstream_revocation(uuid, text, text[], text) FROM PUBLIC;

CREATE FUNCTION ato.confirm_secret_rotation(incident_id uuid, secret text, reference text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    incident ato.incidents := ato.check_incident('confirm_secret_rotation', incident_id);
BEGIN
    PERFORM ato.check_short_text('confirm_secret_rotation', 'secret', secret, 200);
    PERFORM ato.check_short_text('confirm_secret_rotation', 'reference', reference, 500, true);
    IF NOT EXISTS (SELECT FROM ato.downstream_secrets s WHERE s.name = secret)
       AND NOT EXISTS (SELECT FROM ato.secret_rotations r WHERE r.incident_id = incident.id AND r.secret_name = secret) THEN
        RAISE EXCEPTION 'confirm_secret_rotation: no secret "%"', secret
            USING ERRCODE = 'no_data_found',
                  HINT = 'The secrets are in ato.downstream_secrets; register one with ato.register_secret().';
    END IF;
    UPDATE ato.secret_rotations r
       SET confirmed_at = clock_timestamp(), confirmed_by = session_user, reference = confirm_secret_rotation.reference
     WHERE r.incident_id = incident.id AND r.secret_name = secret AND r.confirmed_at IS NULL;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO ato.response_log (action, incident_id, detail)
    VALUES ('secret_rotated', incident.id, concat_ws(': ', secret, reference));
    RETURN true;
END;
$$;
COMMENT ON FUNCTION ato.confirm_secret_rotation(uuid, text, text) IS
    'Records that a secret the incident owed a rotation was rotated, by session_user now, with a reference; false when none was owed (not reachable by its accounts, or confirmed already)';
REVOKE ALL ON FUNCTION ato.confirm_secret_rotation(uuid, text, text) FROM PUBLIC;

CREATE VIEW ato.downstream_outstanding AS
SELECT r.incident_id, 'revocation'::text AS item, r.app_name AS name, ARRAY[r.user_id::text] AS user_ids,
       a.revocation AS how, a.owner_contact, r.owed_since, now() - r.owed_since AS owed_for, r.shard
  FROM ato.downstream_revocations r
  LEFT JOIN ato.downstream_apps a ON a.id = r.app_id
 WHERE r.confirmed_at IS NULL
UNION ALL
SELECT s.incident_id, 'rotation', s.secret_name, s.user_ids,
       d.rotation, d.owner_contact, s.owed_since, now() - s.owed_since, s.shard
  FROM ato.secret_rotations s
  LEFT JOIN ato.downstream_secrets d ON d.id = s.secret_id
 WHERE s.confirmed_at IS NULL;
COMMENT ON VIEW ato.downstream_outstanding IS
    'What incidents still owe downstream: each unconfirmed revocation (per app and account) and rotation (per secret, with the accounts that could reach it), what it takes, who owns it and for how long it has been owed';
REVOKE ALL ON ato.downstream_outstanding FROM PUBLIC;
-- install/sections/16_incident_lifecycle.sql: an incident's way through its stages: its report, ato.report_incident() (reported, escalating the alert it names), ato.advance_incident() (confirmed, eradicated, recovered, closed), and what a confirmed and contained incident sets off: ato.on_incident_confirmed() and ato.write_owed_notices() (the users' notices, the downstream obligations).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- The stages and the record they are written to are the incident record's
-- (13_incident_record.sql).  A report marks the alert it names escalated
-- (ato.alerts, 09_rules.sql), and the rules' escalation contains incidents
-- through src/revoke.c, which records the containment in the record.
-- Reaching "confirmed" tells the users (14_user_notifications.sql) and
-- writes what downstream applications and secrets are owed
-- (15_downstream.sql).  So moving an incident along comes after all of
-- them, and none of them calls it.
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.report_incident(summary text, reported_by text, channel ato.report_channel,
                                    reported_at timestamptz DEFAULT NULL, alert_id bigint DEFAULT NULL,
                                    incident_id uuid DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id uuid := coalesce(incident_id, gen_random_uuid());
    at timestamptz := coalesce(reported_at, now());
BEGIN
    PERFORM ato.check_record_text('report_incident', 'summary', summary, '''user reports a login they did not make''');
    PERFORM ato.check_record_text('report_incident', 'reported_by', reported_by, '''alice@example.com'' or ''support ticket 4711''');
    IF channel IS NULL THEN
        RAISE EXCEPTION 'report_incident: channel must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Say how it was reported: alert, user_report, support_ticket or third_party_notice.';
    END IF;
    IF NOT isfinite(at) OR at > now() THEN
        RAISE EXCEPTION 'report_incident: reported_at must be a finite time, not in the future'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give when the report came in, or leave it out for now.';
    END IF;
    IF alert_id IS NOT NULL AND NOT EXISTS (SELECT FROM ato.alerts a WHERE a.id = report_incident.alert_id) THEN
        RAISE EXCEPTION 'report_incident: alert % does not exist', alert_id
            USING ERRCODE = 'no_data_found',
                  HINT = 'The alerts are in ato.alerts.';
    END IF;
    IF EXISTS (SELECT FROM ato.incident_records r WHERE r.incident_id = new_id)
       OR EXISTS (SELECT FROM ato.incidents i WHERE i.id = new_id) THEN
        RAISE EXCEPTION 'report_incident: incident % exists already', new_id
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Its record is in ato.incident_records; leave incident_id out for a new incident.';
    END IF;
    INSERT INTO ato.incident_records (incident_id, summary, reported_at, reported_by, report_channel, alert_id,
                                      stage, recorded_at, recorded_by)
    VALUES (new_id, summary, at, reported_by, channel, alert_id, 'reported', now(), session_user);
    -- the alert is escalated into the incident (its evidence sets the
    -- incident's window and attacker networks), unless it is in one already
    UPDATE ato.alerts a
       SET status = 'escalated', incident_id = new_id, triaged_by = session_user, triaged_at = now()
     WHERE a.id = report_incident.alert_id AND a.incident_id IS NULL;
    IF alert_id IS NOT NULL AND NOT FOUND THEN
        RAISE NOTICE 'report_incident: alert % belongs to incident % already and is left to it', alert_id,
            (SELECT a.incident_id FROM ato.alerts a WHERE a.id = report_incident.alert_id)
            USING HINT = 'The new incident''s record names the alert all the same.';
    END IF;
    INSERT INTO ato.incident_changes (incident_id, change, stage, detail)
    VALUES (new_id, 'reported', 'reported',
            jsonb_build_object('reported_at', at, 'reported_by', reported_by, 'channel', channel,
                               'alert_id', alert_id, 'summary', summary));
    RETURN new_id;
END;
$$;
COMMENT ON FUNCTION ato.report_incident(text, text, ato.report_channel, timestamptz, bigint, uuid) IS
    'Opens an incident''s record at stage reported: what was reported, by whom, how (alert, user_report, support_ticket, third_party_notice), when (default now) and the alert, if one (escalated into the incident unless it is in one already); returns its id, which ato.revoke_incident(..., incident_id => id) contains';
REVOKE ALL ON FUNCTION ato.report_incident(text, text, ato.report_channel, timestamptz, bigint, uuid) FROM PUBLIC;

-- What a confirmed and contained incident sets off (seed 004: tell the
-- users as soon as the affected accounts are confirmed, not once the root
-- cause is known; seed 003: each downstream application owes its own
-- revocation).  Both calls are idempotent, so whichever comes second of
-- confirmation and containment writes them.  A failure there (an
-- application's hook) is a warning: it must not undo the confirmation or
-- the containment, and the call can be repeated by hand.
CREATE FUNCTION ato.on_incident_confirmed(incident_id uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    notices bigint;
    owed bigint;
BEGIN
    IF NOT EXISTS (SELECT FROM ato.incident_records r
                    WHERE r.incident_id = on_incident_confirmed.incident_id
                      AND r.confirmed_at IS NOT NULL AND r.contained_at IS NOT NULL) THEN
        RETURN;
    END IF;
    BEGIN
        notices := ato.notify_users(incident_id);
        owed := ato.record_downstream_obligations(incident_id);
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'incident % confirmed, but its notices and downstream obligations were not written: %', incident_id, SQLERRM
            USING HINT = format('Fix the cause, then run SELECT ato.notify_users(%L), ato.record_downstream_obligations(%L).',
                                incident_id, incident_id);
    END;
END;
$$;
COMMENT ON FUNCTION ato.on_incident_confirmed(uuid) IS
    'Called when an incident is confirmed (ato.advance_incident()) and by ato.write_owed_notices(): once it is confirmed and contained, writes the users'' notices (ato.notify_users()) and the downstream revocations owed (ato.record_downstream_obligations()), each once per account; a failure there is a warning, not an error';

-- The notices that containment (or an account added) left owed: every
-- incident confirmed and contained, not closed, with an account in scope
-- that has no notice yet.  The detection worker calls it every cycle, in
-- its own transaction, after any revocation fence is gone.
CREATE FUNCTION ato.write_owed_notices()
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    incident uuid;
    incidents integer := 0;
BEGIN
    FOR incident IN
        SELECT r.incident_id FROM ato.incident_records r
         WHERE r.confirmed_at IS NOT NULL AND r.contained_at IS NOT NULL AND r.closed_at IS NULL
           AND EXISTS (SELECT FROM unnest(ato.incident_accounts_in_scope(r.incident_id)) u
                        WHERE NOT EXISTS (SELECT FROM ato.user_notifications n
                                           WHERE n.incident_id = r.incident_id AND n.user_id = u COLLATE "C"))
         ORDER BY r.confirmed_at, r.incident_id
    LOOP
        PERFORM ato.on_incident_confirmed(incident);
        incidents := incidents + 1;
    END LOOP;
    RETURN incidents;
END;
$$;
COMMENT ON FUNCTION ato.write_owed_notices() IS
    'Writes the notices and downstream obligations still owed by incidents that are confirmed and contained (contained after confirmation, or with accounts added since): the detection worker calls it every cycle; returns how many incidents it wrote for';
REVOKE ALL ON FUNCTION ato.write_owed_notices() FROM PUBLIC;
REVOKE ALL ON FUNCTION ato.on_incident_confirmed(uuid) FROM PUBLIC;

CREATE FUNCTION ato.advance_incident(incident_id uuid, stage ato.incident_stage, note text DEFAULT NULL,
                                     at timestamptz DEFAULT NULL)
RETURNS ato.incident_stage
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rec ato.incident_records := ato.incident_record('advance_incident', incident_id, true);
    incident ato.incidents;
    reached timestamptz;
    latest timestamptz;
    suspended integer;
    open_follow_ups integer;
    new_stage ato.incident_stage;
BEGIN
    IF stage IS NULL THEN
        RAISE EXCEPTION 'advance_incident: stage must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass confirmed, eradicated, recovered or closed.';
    END IF;
    IF stage IN ('reported', 'contained') THEN
        RAISE EXCEPTION 'advance_incident: stage % is recorded by %', stage,
                        CASE stage WHEN 'reported' THEN 'ato.report_incident()' ELSE 'ato.revoke_incident()' END
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = CASE stage WHEN 'reported' THEN 'Every incident is reported when its record opens.'
                         ELSE format('Contain it with SELECT ato.revoke_incident(accounts, reason, incident_id => %L).', incident_id) END;
    END IF;
    reached := CASE stage WHEN 'confirmed' THEN rec.confirmed_at WHEN 'eradicated' THEN rec.eradicated_at
                          WHEN 'recovered' THEN rec.recovered_at ELSE rec.closed_at END;
    IF reached IS NOT NULL THEN
        RAISE EXCEPTION 'advance_incident: incident % was % already', incident_id, stage
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Each stage is reached once; ato.incident_history() shows when and who recorded it.';
    END IF;
    IF stage < rec.stage AND NOT (stage = 'confirmed' AND rec.stage = 'contained') THEN
        RAISE EXCEPTION 'advance_incident: incident % is % already: % would go back', incident_id, rec.stage, stage
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Stages go forward: reported, confirmed, contained, eradicated, recovered, closed (confirmed may also follow contained).';
    END IF;
    SELECT * INTO incident FROM ato.incidents i WHERE i.id = advance_incident.incident_id;
    IF stage = 'eradicated' AND rec.contained_at IS NULL THEN
        RAISE EXCEPTION 'advance_incident: incident % cannot be eradicated before it is contained', incident_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Contain it first with SELECT ato.revoke_incident(accounts, reason, incident_id => %L).', incident_id);
    END IF;
    IF stage = 'recovered' THEN
        IF rec.eradicated_at IS NULL THEN
            RAISE EXCEPTION 'advance_incident: incident % cannot be recovered before it is eradicated', incident_id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Close the attacker''s ways in first (rotate secrets, remove the factors and grants they added), then record eradicated.';
        END IF;
        IF incident.status = 'marking' THEN
            RAISE EXCEPTION 'advance_incident: incident % is still marking the application''s rows', incident_id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Wait until ato.incident_progress shows it contained.';
        END IF;
        SELECT count(*) INTO suspended FROM ato.account_flags f
         WHERE f.incident_id = advance_incident.incident_id AND f.suspended;
        IF suspended > 0 THEN
            RAISE EXCEPTION 'advance_incident: % accounts are still suspended by incident %', suspended, incident_id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Reactivate them (ato.lift_incident(), in stages if need be) before recording recovered.';
        END IF;
    END IF;
    IF stage = 'closed' AND rec.recovered_at IS NULL AND rec.contained_at IS NOT NULL THEN
        RAISE EXCEPTION 'advance_incident: incident % was contained and is not recovered', incident_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Record eradicated and recovered first; only an incident never contained (a false alarm) closes straight away.';
    END IF;
    IF stage = 'closed' AND rec.contained_at IS NULL AND (note IS NULL OR btrim(note) = '') THEN
        RAISE EXCEPTION 'advance_incident: closing incident % without containment needs a note', incident_id
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Say why it closes uncontained, for example ''the user confirmed it was their own login''.';
    END IF;

    latest := greatest(rec.reported_at, rec.confirmed_at, rec.contained_at, rec.eradicated_at, rec.recovered_at);
    at := coalesce(at, now());
    IF NOT isfinite(at) OR at > now() OR at < latest THEN
        RAISE EXCEPTION 'advance_incident: at must be between the time of the last stage and now'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give when the stage was reached (ato.incident_records has the earlier stages'' times), or leave it out for now.';
    END IF;

    new_stage := greatest(rec.stage, stage);
    UPDATE ato.incident_records r
       SET stage = new_stage,
           confirmed_at = CASE WHEN advance_incident.stage = 'confirmed' THEN at ELSE r.confirmed_at END,
           eradicated_at = CASE WHEN advance_incident.stage = 'eradicated' THEN at ELSE r.eradicated_at END,
           recovered_at = CASE WHEN advance_incident.stage = 'recovered' THEN at ELSE r.recovered_at END,
           closed_at = CASE WHEN advance_incident.stage = 'closed' THEN at ELSE r.closed_at END
     WHERE r.incident_id = advance_incident.incident_id;
    INSERT INTO ato.incident_changes (incident_id, change, stage, detail, note)
    VALUES (incident_id, 'stage', stage, jsonb_build_object('at', at, 'from', rec.stage), note);
    IF stage = 'confirmed' THEN
        PERFORM ato.on_incident_confirmed(incident_id);
    END IF;
    IF stage = 'closed' THEN
        SELECT count(*) INTO open_follow_ups FROM ato.incident_follow_ups f
         WHERE f.incident_id = advance_incident.incident_id AND f.done_at IS NULL;
        IF open_follow_ups > 0 THEN
            RAISE NOTICE 'advance_incident: incident % is closed with % follow-ups still open', incident_id, open_follow_ups
                USING HINT = 'They stay open: complete them with ato.complete_follow_up() as they are done.';
        END IF;
    END IF;
    RETURN new_stage;
END;
$$;
COMMENT ON FUNCTION ato.advance_incident(uuid, ato.incident_stage, text, timestamptz) IS
    'Records that an incident reached a stage (confirmed, eradicated, recovered, closed; at: when, default now), with a note, in its record and its history; refuses a stage reached already, one that goes back, and skips: eradicated needs contained, recovered needs eradicated, no suspension left and no marking running, closed needs recovered or no containment (with a note); confirmed calls ato.on_incident_confirmed(); returns the record''s stage';
REVOKE ALL ON FUNCTION ato.advance_incident(uuid, ato.incident_stage, text, timestamptz) FROM PUBLIC;
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
-- install/sections/19_incident_report.sql: ato.incident_report(): an incident as one self-contained HTML page (inline SVG and CSS, no script, no external asset) with its attack curve, countries and networks, timeline, scope and what is outstanding.
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- The report.  Every value that reaches the page goes through
-- ato.html_escape(): user agents, event types, reasons and notes are the
-- attacker's or anyone's text.  The page carries a Content-Security-Policy
-- that allows no script and no load from anywhere, so that a value that did
-- get through could do nothing.
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.html_escape(value text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN replace(replace(replace(replace(replace(value, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;');
COMMENT ON FUNCTION ato.html_escape(text) IS
    'The text with & < > " and '' replaced by their HTML entities: safe in an element and in a quoted attribute';
REVOKE ALL ON FUNCTION ato.html_escape(text) FROM PUBLIC;

-- The attack curve: attempts and successes per minute (per 5, 15, 60 ...
-- minutes when the attack is longer than 12 hours), with the opening and the
-- containment marked.
CREATE FUNCTION ato.report_attack_curve(incident ato.incidents, minutes jsonb)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    first_at timestamptz;
    last_at timestamptz;
    step integer;
    buckets integer;
    top bigint;
    w constant integer := 900;
    h constant integer := 260;
    left_ constant integer := 50;
    bottom constant integer := 230;
    plot_h constant integer := 200;
    bar numeric;
    svg text;
    marks text := '';
    x numeric;
BEGIN
    SELECT min((m ->> 'at')::timestamptz), max((m ->> 'at')::timestamptz) INTO first_at, last_at
      FROM jsonb_array_elements(minutes) m;
    IF first_at IS NULL THEN
        RETURN '<p class="empty">No login attempts in the incident''s window.</p>';
    END IF;
    first_at := date_trunc('minute', first_at);
    last_at := greatest(last_at, coalesce(incident.marked_at, incident.opened_at), incident.opened_at);
    -- the step: a minute, or the first of 5, 15, 60, 240, 1440 minutes that
    -- keeps the curve under 720 bars
    step := (SELECT s FROM unnest(ARRAY[1, 5, 15, 60, 240, 1440]) s
              WHERE extract(epoch FROM last_at - first_at) / 60 / s < 720 ORDER BY s LIMIT 1);
    step := coalesce(step, 1440);
    buckets := floor(extract(epoch FROM last_at - first_at) / 60 / step)::integer + 1;
    bar := (w - left_ - 10)::numeric / buckets;
    WITH b AS (
        SELECT floor(extract(epoch FROM (m ->> 'at')::timestamptz - first_at) / 60 / step)::integer AS k,
               (m ->> 'a')::bigint AS a, (m ->> 's')::bigint AS s
          FROM jsonb_array_elements(minutes) m)
    SELECT jsonb_agg(jsonb_build_object('k', c.k, 'a', c.a, 's', c.s) ORDER BY c.k), max(c.a)
      INTO minutes, top
      FROM (SELECT b.k, sum(b.a) AS a, sum(b.s) AS s FROM b GROUP BY b.k) c;
    SELECT string_agg(
               format('<rect class="attempts" x="%s" y="%s" width="%s" height="%s"><title>%s: %s attempts, %s successes</title></rect>',
                      round(left_ + k * bar, 2), round(bottom - attempts::numeric * plot_h / top, 2),
                      greatest(round(bar - 0.5, 2), 0.5), round(attempts::numeric * plot_h / top, 2),
                      to_char(first_at + make_interval(mins => k * step), 'YYYY-MM-DD HH24:MI'), attempts, successes)
               || CASE WHEN successes > 0 THEN
                      format('<rect class="successes" x="%s" y="%s" width="%s" height="%s"/>',
                             round(left_ + k * bar, 2), round(bottom - successes::numeric * plot_h / top, 2),
                             greatest(round(bar - 0.5, 2), 0.5), greatest(round(successes::numeric * plot_h / top, 2), 1))
                    ELSE '' END, '' ORDER BY k)
      INTO svg
      FROM (SELECT (c ->> 'k')::integer AS k, (c ->> 'a')::bigint AS attempts, (c ->> 's')::bigint AS successes
              FROM jsonb_array_elements(minutes) c) counts;
    x := round(left_ + extract(epoch FROM incident.opened_at - first_at) / 60 / step * bar, 2);
    marks := format('<line class="opened" x1="%s" y1="20" x2="%s" y2="%s"/><text x="%s" y="14" class="mark" text-anchor="%s">opened %s</text>',
                    x, x, bottom, x, CASE WHEN x > w * 0.6 THEN 'end' ELSE 'start' END, to_char(incident.opened_at, 'HH24:MI:SS'));
    IF incident.marked_at IS NOT NULL THEN
        x := round(left_ + extract(epoch FROM incident.marked_at - first_at) / 60 / step * bar, 2);
        marks := marks || format('<line class="contained" x1="%s" y1="20" x2="%s" y2="%s"/><text x="%s" y="%s" class="mark contained-label" text-anchor="%s">contained %s</text>',
                                 x, x, bottom, x, bottom + 28, CASE WHEN x > w * 0.6 THEN 'end' ELSE 'start' END,
                                 to_char(incident.marked_at, 'HH24:MI:SS'));
    END IF;
    RETURN format('<svg xmlns="http://www.w3.org/2000/svg" id="attack-curve" role="img" viewBox="0 0 %s %s" width="100%%" preserveAspectRatio="xMinYMin meet">'
                  '<title>Login attempts and successes per %s</title>'
                  '<line class="axis" x1="%s" y1="%s" x2="%s" y2="%s"/><line class="axis" x1="%s" y1="20" x2="%s" y2="%s"/>'
                  '<text x="%s" y="30" class="tick" text-anchor="end">%s</text><text x="%s" y="%s" class="tick" text-anchor="end">0</text>'
                  '<text x="%s" y="%s" class="tick">%s</text><text x="%s" y="%s" class="tick" text-anchor="end">%s</text>'
                  '%s%s</svg>',
                  w, h + 10, CASE step WHEN 1 THEN 'minute' ELSE step || ' minutes' END,
                  left_, bottom, w - 10, bottom, left_, left_, bottom,
                  left_ - 4, top, left_ - 4, bottom,
                  left_, bottom + 14, to_char(first_at, 'YYYY-MM-DD HH24:MI'),
                  w - 10, bottom + 14, to_char(first_at + make_interval(mins => (buckets - 1) * step), 'YYYY-MM-DD HH24:MI'),
                  svg, marks);
END;
$$;
COMMENT ON FUNCTION ato.report_attack_curve(ato.incidents, jsonb) IS
    'For ato.incident_report(): the SVG bar chart of login attempts and successes per minute (from [{"at", "a", "s"}] per minute; coarser past 12 hours) from the first attempt, with the opening and containment marked';
REVOKE ALL ON FUNCTION ato.report_attack_curve(ato.incidents, jsonb) FROM PUBLIC;

-- Horizontal bars, one per label (already escaped by the caller's query).
CREATE FUNCTION ato.report_bars(title text, items jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN jsonb_array_length(items) = 0 THEN '<p class="empty">None.</p>' ELSE
           format('<svg xmlns="http://www.w3.org/2000/svg" class="bars" role="img" viewBox="0 0 520 %s" width="520" height="%s"><title>%s</title>%s</svg>',
                  jsonb_array_length(items) * 22 + 4, jsonb_array_length(items) * 22 + 4, ato.html_escape(title),
                  string_agg(format('<text x="0" y="%s" class="label">%s</text><rect class="bar" x="180" y="%s" width="%s" height="16"/><text x="%s" y="%s" class="count">%s</text>',
                                    n * 22 - 6, ato.html_escape(left(i ->> 'label', 28)), n * 22 - 18,
                                    greatest(round((i ->> 'count')::numeric * 200 / max_count, 1), 1),
                                    186 + greatest(round((i ->> 'count')::numeric * 200 / max_count, 1), 1), n * 22 - 6,
                                    ato.html_escape(i ->> 'count') || coalesce(' (' || ato.html_escape(i ->> 'extra') || ')', '')),
                             '' ORDER BY n)) END
      FROM jsonb_array_elements(items) WITH ORDINALITY AS x(i, n),
           LATERAL (SELECT max((j ->> 'count')::numeric) AS max_count FROM jsonb_array_elements(items) j) m;
$$;
COMMENT ON FUNCTION ato.report_bars(text, jsonb) IS
    'For ato.incident_report(): an SVG of horizontal bars from [{"label", "count", "extra"}], every text escaped';
REVOKE ALL ON FUNCTION ato.report_bars(text, jsonb) FROM PUBLIC;

CREATE FUNCTION ato.incident_report(incident_id uuid, max_timeline_rows integer DEFAULT 500)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    incident ato.incidents := ato.check_incident('incident_report', incident_id);
    -- its first accounts and those added since, not those released
    in_scope text[] := ato.incident_accounts_in_scope(incident_id);
    scope record;
    minutes jsonb;
    ts constant text := 'YYYY-MM-DD HH24:MI:SS';
    html text;
    summary text;
    countries jsonb;
    networks jsonb;
    timeline text;
    timeline_total bigint;
    timeline_events bigint;
    scope_rows text;
    agents text;
    outstanding text;
    notices text;
    n_attempts bigint;
    n_successes bigint;
    owed bigint;
    unsent bigint;
BEGIN
    IF max_timeline_rows IS NULL OR max_timeline_rows NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'incident_report: max_timeline_rows must be 1 to 100000'
            USING ERRCODE = CASE WHEN max_timeline_rows IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END,
                  HINT = 'It bounds the timeline''s rows on the page (the attack curve counts every event); the default is 500.';
    END IF;
    SELECT * INTO scope FROM ato.incident_scope(incident.id);
    -- the window's logins read once, in one statement: per minute, per
    -- country, network and user agent
    WITH l AS MATERIALIZED (
        SELECT (v.e ->> 'occurred_at')::timestamptz AS at, v.e ->> 'outcome' AS outcome,
               v.e ->> 'country_code' AS country, coalesce(nullif(concat_ws(' ', 'AS' || (v.e ->> 'asn'), v.e ->> 'as_org'), ''),
                   set_masklen((v.e ->> 'ip_address')::inet,
                               CASE WHEN family((v.e ->> 'ip_address')::inet) = 4 THEN 24 ELSE 48 END)::cidr::text) AS net,
               left(v.e ->> 'user_agent', 300) AS agent
          FROM ato.incident_events(incident.id) v WHERE v.event_table = 'login_events')
    SELECT (SELECT count(*) FROM l), (SELECT count(*) FROM l WHERE l.outcome = 'success'),
           (SELECT coalesce(jsonb_agg(jsonb_build_object('at', m.at, 'a', m.a, 's', m.s)), '[]')
              FROM (SELECT date_trunc('minute', l.at) AS at, count(*) AS a, count(*) FILTER (WHERE l.outcome = 'success') AS s
                      FROM l GROUP BY 1) m),
           (SELECT coalesce(jsonb_agg(jsonb_build_object('label', c.label, 'count', c.n, 'extra', c.ok || ' ok') ORDER BY c.n DESC, c.label), '[]')
              FROM (SELECT coalesce(l.country, 'unknown') AS label, count(*) AS n, count(*) FILTER (WHERE l.outcome = 'success') AS ok
                      FROM l GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 15) c),
           (SELECT coalesce(jsonb_agg(jsonb_build_object('label', c.label, 'count', c.n, 'extra', c.ok || ' ok') ORDER BY c.n DESC, c.label), '[]')
              FROM (SELECT coalesce(l.net, 'unknown') AS label, count(*) AS n, count(*) FILTER (WHERE l.outcome = 'success') AS ok
                      FROM l GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 15) c),
           (SELECT string_agg(format('<tr><td>%s</td><td>%s</td><td>%s</td></tr>', ato.html_escape(a.agent), a.n, a.ok),
                              '' ORDER BY a.n DESC, a.agent)
              FROM (SELECT coalesce(l.agent, '(none)') AS agent, count(*) AS n, count(*) FILTER (WHERE l.outcome = 'success') AS ok
                      FROM l GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10) a)
      INTO n_attempts, n_successes, minutes, countries, networks, agents;

    -- the timeline: the response's own items all, the failed logins and the
    -- other events (successes, account changes) each up to the limit
    SELECT string_agg(format('<tr class="%s"><td class="at">%s</td><td>%s</td><td class="accounts">%s</td><td>%s</td></tr>',
                             CASE WHEN t.kind = 'contained' THEN 'contained'
                                  WHEN t.kind = 'incident opened' THEN 'opened'
                                  WHEN t.kind LIKE 'login %' OR t.kind = 'account change' THEN 'event'
                                  ELSE 'response' END,
                             to_char(t.at, ts), ato.html_escape(t.kind),
                             ato.html_escape(CASE WHEN cardinality(t.accounts) > 5
                                                  THEN array_to_string(t.accounts[1:5], ', ') || format(' and %s more', cardinality(t.accounts) - 5)
                                                  ELSE array_to_string(t.accounts, ', ') END),
                             ato.html_escape(t.detail)), '' ORDER BY t.n)
                FILTER (WHERE NOT (t.kind LIKE 'login %' OR t.kind = 'account change') OR t.nk <= max_timeline_rows),
           count(*), count(*) FILTER (WHERE t.kind LIKE 'login %' OR t.kind = 'account change')
      INTO timeline, timeline_total, timeline_events
      FROM (SELECT x.*, row_number() OVER (PARTITION BY x.kind = 'login failure', x.kind LIKE 'login %' OR x.kind = 'account change'
                                           ORDER BY x.n) AS nk
              FROM ato.incident_timeline(incident.id) WITH ORDINALITY AS x(at, kind, accounts, detail, ref, n)) t;

    SELECT string_agg(format('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
                             ato.html_escape(u), CASE WHEN f.suspended THEN 'suspended' ELSE '' END,
                             ato.html_escape(concat_ws(', ', CASE WHEN f.password_reset_required THEN 'password reset' END,
                                                       CASE WHEN f.mfa_reenrollment_required THEN 'MFA re-enrolment' END,
                                                       CASE WHEN f.reauth_required THEN 'sign in again' END)),
                             ato.html_escape(coalesce(n.channel, 'not written')),
                             CASE WHEN n.delivered_at IS NOT NULL THEN 'sent ' || to_char(n.delivered_at, ts)
                                  WHEN o.status IS NOT NULL THEN ato.html_escape(o.status) ELSE '' END),
                      '' ORDER BY u)
      INTO scope_rows
      FROM unnest(in_scope) u
      LEFT JOIN ato.account_flags f ON f.user_id = u AND f.incident_id = incident.id
      LEFT JOIN ato.user_notifications n ON n.incident_id = incident.id AND n.user_id = u
      LEFT JOIN ato.notification_outbox o ON o.incident_id = incident.id AND o.user_id = u;

    SELECT count(*), string_agg(format('<tr><td>%s</td><td>%s</td><td class="accounts">%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
                                       ato.html_escape(d.item), ato.html_escape(d.name),
                                       ato.html_escape(array_to_string(d.user_ids, ', ')), ato.html_escape(d.how),
                                       ato.html_escape(d.owner_contact), to_char(d.owed_since, ts)),
                                '' ORDER BY d.item, d.name, d.user_ids)
      INTO owed, outstanding
      FROM ato.downstream_outstanding d WHERE d.incident_id = incident.id;
    SELECT count(*), string_agg(format('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
                                       ato.html_escape(o.user_id), ato.html_escape(o.channel), ato.html_escape(o.status),
                                       o.attempts, ato.html_escape(o.last_error)), '' ORDER BY o.user_id)
      INTO unsent, notices
      FROM ato.notification_outbox o WHERE o.incident_id = incident.id AND o.status <> 'sent';

    summary := format('<dl class="summary">'
                      '<div><dt>Attempts</dt><dd>%s</dd></div><div><dt>Successes</dt><dd class="bad">%s</dd></div>'
                      '<div><dt>Accounts</dt><dd>%s</dd></div><div><dt>Countries</dt><dd>%s</dd></div>'
                      '<div><dt>Time to contain</dt><dd>%s</dd></div><div><dt>Notices sent</dt><dd>%s of %s</dd></div>'
                      '<div><dt>Downstream owed</dt><dd class="%s">%s</dd></div></dl>',
                      n_attempts, n_successes, cardinality(in_scope),
                      (SELECT count(*) FROM jsonb_array_elements(countries) c WHERE c ->> 'label' <> 'unknown'),
                      coalesce(ato.html_escape(date_trunc('second', incident.marked_at - incident.opened_at)::text), 'not yet'),
                      (SELECT count(*) FROM ato.user_notifications n WHERE n.incident_id = incident.id AND n.delivered_at IS NOT NULL),
                      cardinality(in_scope),
                      CASE WHEN owed > 0 THEN 'bad' ELSE 'good' END, owed);

    html := '<!DOCTYPE html>' || E'\n' || '<html lang="en"><head><meta charset="utf-8">'
        || '<meta http-equiv="Content-Security-Policy" content="default-src ''none''; style-src ''unsafe-inline''; img-src data:">'
        || '<meta name="viewport" content="width=device-width, initial-scale=1">'
        || format('<title>Incident %s</title>', incident.id)
        || '<style>'
        || 'body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}'
        || 'header{background:#1b1f24;color:#fff;padding:18px 28px}header h1{margin:0;font-size:20px}header p{margin:4px 0 0;color:#c9d1d9}'
        || 'main{padding:18px 28px;max-width:1200px}section{background:#fff;border:1px solid #d8dee4;border-radius:6px;padding:14px 18px;margin:0 0 16px}'
        || 'h2{font-size:16px;margin:0 0 10px}.summary{display:flex;flex-wrap:wrap;gap:10px;margin:0}.summary div{background:#fff;border:1px solid #d8dee4;border-radius:6px;padding:8px 14px;min-width:110px}'
        || 'dt{font-size:12px;color:#57606a}dd{margin:0;font-size:22px;font-weight:600}.bad{color:#cf222e}.good{color:#1a7f37}'
        || 'table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eaeef2;vertical-align:top;overflow-wrap:anywhere}'
        || 'th{background:#f6f8fa}tr.event td{color:#57606a}tr.contained td{background:#dafbe1;font-weight:600}tr.opened td{background:#fff8c5;font-weight:600}'
        || 'td.at{white-space:nowrap;font-variant-numeric:tabular-nums}.cols{display:flex;flex-wrap:wrap;gap:16px}.cols section{flex:1;min-width:540px}'
        || 'rect.attempts{fill:#8c959f}rect.successes{fill:#cf222e}rect.bar{fill:#0969da}line.axis{stroke:#57606a}'
        || 'line.opened{stroke:#bf8700;stroke-width:2;stroke-dasharray:4 3}line.contained{stroke:#1a7f37;stroke-width:2}'
        || 'text{font:11px system-ui,sans-serif;fill:#1b1f24}text.mark{font-weight:600}text.contained-label{fill:#1a7f37}.legend span{margin-right:14px}'
        || '.swatch{display:inline-block;width:10px;height:10px;margin-right:4px}.empty{color:#57606a}.note{color:#57606a;font-size:12px}'
        || '</style></head><body>'
        || format('<header><h1>Incident %s</h1><p>%s &middot; opened %s by %s &middot; status %s%s</p></header>',
                  incident.id, ato.html_escape(incident.reason), to_char(incident.opened_at, ts),
                  ato.html_escape(incident.opened_by), ato.html_escape(incident.status),
                  coalesce(' &middot; shard ' || ato.html_escape(ato.shard_name()), ''))
        || '<main>' || summary
        || '<section id="curve"><h2>Attack curve</h2>'
        || '<p class="legend"><span><i class="swatch" style="background:#8c959f"></i>attempts</span>'
        || '<span><i class="swatch" style="background:#cf222e"></i>successes</span>'
        || '<span><i class="swatch" style="background:#bf8700"></i>opened</span>'
        || '<span><i class="swatch" style="background:#1a7f37"></i>contained</span></p>'
        || ato.report_attack_curve(incident, minutes) || '</section>'
        || '<div class="cols"><section id="countries"><h2>Countries</h2>' || ato.report_bars('Login attempts by country', countries) || '</section>'
        || '<section id="networks"><h2>Networks</h2>' || ato.report_bars('Login attempts by network', networks) || '</section></div>'
        || '<section id="agents"><h2>User agents</h2><table><thead><tr><th>User agent</th><th>Attempts</th><th>Successes</th></tr></thead><tbody>'
        || coalesce(agents, '') || '</tbody></table></section>'
        || format('<section id="scope"><h2>Scope: %s accounts, %s attacker networks</h2>', cardinality(in_scope),
                  cardinality(scope.attacker_networks))
        || format('<p>Window %s to %s. Networks: %s.</p>', to_char(scope.window_from, ts), to_char(scope.window_to, ts),
                  coalesce(nullif(ato.html_escape(array_to_string(scope.attacker_networks::text[], ', ')), ''), 'none known'))
        || '<table><thead><tr><th>Account</th><th>Suspended</th><th>Must</th><th>Notice channel</th><th>Notice</th></tr></thead><tbody>'
        || coalesce(scope_rows, '') || '</tbody></table></section>'
        || format('<section id="outstanding"><h2>Outstanding: %s downstream, %s notices not sent</h2>', owed, unsent)
        || CASE WHEN owed > 0 THEN '<table><thead><tr><th>Item</th><th>Where</th><th>Accounts</th><th>What it takes</th><th>Owner</th><th>Owed since</th></tr></thead><tbody>'
                                   || outstanding || '</tbody></table>'
                ELSE '<p class="empty">Nothing owed downstream.</p>' END
        || CASE WHEN unsent > 0 THEN '<h2>Notices not sent</h2><table><thead><tr><th>Account</th><th>Channel</th><th>Status</th><th>Attempts</th><th>Last error</th></tr></thead><tbody>'
                                    || notices || '</tbody></table>'
                ELSE '' END
        || '</section>'
        || format('<section id="timeline"><h2>Timeline (%s items)</h2>', timeline_total)
        || CASE WHEN timeline_events > max_timeline_rows
                THEN format('<p class="note">Of %s events, the first %s failed logins and the first %s other events are shown; the response''s steps all are.</p>',
                            timeline_events, max_timeline_rows, max_timeline_rows)
                ELSE '' END
        || '<table><thead><tr><th>When (UTC)</th><th>What</th><th>Accounts</th><th>Detail</th></tr></thead><tbody>'
        || coalesce(timeline, '') || '</tbody></table></section>'
        || format('<p class="note">Written %s by ato_response for %s.</p>', to_char(now(), ts), ato.html_escape(session_user))
        || '</main></body></html>' || E'\n';
    RETURN html;
END;
$$;
COMMENT ON FUNCTION ato.incident_report(uuid, integer) IS
    'The incident as one self-contained HTML page (inline SVG and CSS, no script, no external asset, every value escaped): the attack curve (attempts and successes per minute, the opening and containment marked), countries, networks and user agents, scope and each account''s flags and notice, what is outstanding downstream and in the outbox, and the timeline (at most max_timeline_rows failed logins and as many other events; the response''s steps all); psql -XAt -c "SELECT ato.incident_report(...)" > report.html';
REVOKE ALL ON FUNCTION ato.incident_report(uuid, integer) FROM PUBLIC;
-- install/sections/20_retention.sql: retention: ato.apply_retention(), which removes what is older than ato_response.retention, and ato.drop_event_partitions(), which drops the event store's old months but those an open incident's window reaches into.
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- Retention comes after the layers whose data it removes: the event store's
-- months (04_partitions.sql, whose lock rules the drop follows), the
-- evidence's hold on them (ato.partition_held(), 12_evidence.sql), the
-- revocation outbox (08_response.sql), the import's rejected events
-- (11_import.sql) and the notification outbox (ato.apply_notification_retention(),
-- 14_user_notifications.sql).  The detection worker calls ato.apply_retention().
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.drop_event_partitions(older_than timestamptz)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part     record;
    dflt     regclass;
    dropped  integer := 0;
    has_rows boolean;
BEGIN
    IF older_than IS NULL OR NOT isfinite(older_than) THEN
        RAISE EXCEPTION 'older_than must be a finite time'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the time before which whole months of events are dropped.';
    END IF;
    FOR part IN
        SELECT p.parent, p.partition, p.upper_bound
          FROM ato.event_partitions p
         WHERE p.upper_bound IS NOT NULL AND p.upper_bound <= older_than
         ORDER BY p.upper_bound, p.parent
    LOOP
        -- kept while an open incident's window reaches into it (12_evidence.sql):
        -- neither dropped nor emptied
        CONTINUE WHEN ato.partition_held(part.partition, part.upper_bound);
        BEGIN
            -- DROP TABLE locks these three (in this order): only if they
            -- are free, so that no writer waits behind a request
            EXECUTE format('LOCK TABLE ONLY ato.%I IN ACCESS EXCLUSIVE MODE NOWAIT', part.parent);
            FOR dflt IN SELECT p.partition FROM ato.event_partitions p WHERE p.parent = part.parent AND p.is_default LOOP
                EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE NOWAIT', dflt);
            END LOOP;
            EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE NOWAIT', part.partition);
            EXECUTE format('DROP TABLE %s', part.partition);
            dropped := dropped + 1;
        EXCEPTION WHEN lock_not_available THEN
            -- The table is in use (by every transaction storing events, and
            -- by readers).  Empty the month instead, which locks it alone:
            -- an old month takes no live events.  It is dropped, empty, by
            -- a later call that finds the table free.
            BEGIN
                EXECUTE format('SELECT EXISTS (SELECT FROM %s)', part.partition) INTO has_rows;
                IF has_rows THEN
                    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE NOWAIT', part.partition);
                    EXECUTE format('TRUNCATE %s', part.partition);
                END IF;
            EXCEPTION WHEN lock_not_available THEN
                NULL;               -- being read: the next call
            END;
        END;
    END LOOP;
    RETURN dropped;
END
$$;
COMMENT ON FUNCTION ato.drop_event_partitions(timestamptz) IS
    'Drops every monthly partition of the event tables that ends at or before older_than, each only if the table is free of locks (no waiting, so no writer queues behind it); a month it cannot drop now it empties (TRUNCATE, a lock on that month alone), for a later call to drop; a month an open incident''s window reaches into is kept whole (a NOTICE says which: see ato.partition_held()); returns how many it dropped';
REVOKE ALL ON FUNCTION ato.drop_event_partitions(timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.apply_retention()
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keep interval := ato.setting('ato_response.retention')::interval;
    dropped integer;
BEGIN
    IF keep = interval '0' THEN
        RETURN 0;
    END IF;
    -- the partitions first: an incident takes the outbox's counter after it
    -- has read the event store, so taking them in the other order could
    -- deadlock with it
    dropped := ato.drop_event_partitions(now() - keep);
    -- the outbox's batches as old, as a prefix of its positions
    WITH old AS (
        SELECT max(o.position) AS through FROM ato.revocation_outbox o WHERE o.recorded_at < now() - keep),
    noted AS (
        UPDATE ato.revocation_outbox_state s SET discarded_through = greatest(s.discarded_through, old.through)
          FROM old WHERE old.through IS NOT NULL
        RETURNING old.through)
    DELETE FROM ato.revocation_outbox o USING noted WHERE o.position <= noted.through;
    -- the import's rejected events as old (few, and read by hand: row by row)
    DELETE FROM ato.import_rejections r WHERE r.rejected_at < now() - keep;
    -- the notices sent or given up as long ago, but an open incident's
    PERFORM ato.apply_notification_retention(keep);
    RETURN dropped;
END;
$$;
COMMENT ON FUNCTION ato.apply_retention() IS
    'Drops the months of events older than ato_response.retention (whole partitions, never row by row), the outbox''s batches and the import''s rejected events (ato.import_rejections) as old, and the notification outbox''s rows sent or given up as long ago but an open incident''s (ato.apply_notification_retention()); the worker calls it every interval, or schedule it with pg_cron; returns the partitions dropped';
REVOKE ALL ON FUNCTION ato.apply_retention() FROM PUBLIC;
