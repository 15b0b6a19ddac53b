-- install/sections/03_event_store.sql: ato.login_events and ato.audit_events, their trigger (src/ingest.c), default partitions and indexes.
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
