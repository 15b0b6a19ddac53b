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
