-- setup.sql -- the tables of the breakdown benchmark (breakdown.sql): each
-- adds one ingredient of ato.login_events to a plain table of its columns,
-- so that the COPY times tell what each ingredient costs.  Included after
-- the ingest tables exist (../ingest/tables.sql: bench.plain,
-- bench.plain_indexed, the monthly partitions of ato.login_events).
--
--   plain                 columns and defaults only (COPY uses multi-insert)
--   noop_trigger          + a PL/pgSQL BEFORE ROW trigger that returns NEW:
--                           what any row trigger costs (COPY falls back to
--                           one heap_insert per row), nearly nothing else
--   enrich_off            + ato.enrich_event('login') with GeoIP turned off
--                           (the run sets ato_response.geoip_database = ''):
--                           the checks and normalisation of the trigger
--   enrich                + ato.enrich_event('login'): the whole trigger
--   plain_indexed         plain + the BRIN index on occurred_at
--   enrich_indexed        plain + the BRIN index + the whole trigger
--   part                  partitioned as ato.login_events (same months and
--                           a default partition), no index, no trigger
--   part_indexed          + the BRIN index
--   part_indexed_checks   + the CHECK constraints of ato.login_events
--   ato                   ato.login_events itself (all of the above)

SET client_min_messages = warning;

CREATE FUNCTION bench.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;

CREATE TABLE bench.noop_trigger (LIKE ato.login_events INCLUDING DEFAULTS);
CREATE TRIGGER noop BEFORE INSERT ON bench.noop_trigger FOR EACH ROW EXECUTE FUNCTION bench.noop();

CREATE TABLE bench.enrich_off (LIKE ato.login_events INCLUDING DEFAULTS);
CREATE TRIGGER enrich_event BEFORE INSERT ON bench.enrich_off
    FOR EACH ROW EXECUTE FUNCTION ato.enrich_event('login');

CREATE TABLE bench.enrich (LIKE ato.login_events INCLUDING DEFAULTS);
CREATE TRIGGER enrich_event BEFORE INSERT ON bench.enrich
    FOR EACH ROW EXECUTE FUNCTION ato.enrich_event('login');

CREATE TABLE bench.enrich_indexed (LIKE ato.login_events INCLUDING DEFAULTS);
CREATE INDEX ON bench.enrich_indexed USING brin (occurred_at) WITH (pages_per_range = 32);
CREATE TRIGGER enrich_event BEFORE INSERT ON bench.enrich_indexed
    FOR EACH ROW EXECUTE FUNCTION ato.enrich_event('login');

-- partitioned copies of ato.login_events' layout, month for month
CREATE TABLE bench.part (LIKE ato.login_events INCLUDING DEFAULTS) PARTITION BY RANGE (occurred_at);
CREATE TABLE bench.part_indexed (LIKE ato.login_events INCLUDING DEFAULTS) PARTITION BY RANGE (occurred_at);
CREATE TABLE bench.part_indexed_checks (LIKE ato.login_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (occurred_at);
DO $$
DECLARE
    tab text;
    p record;
BEGIN
    FOREACH tab IN ARRAY ARRAY['part', 'part_indexed', 'part_indexed_checks'] LOOP
        FOR p IN SELECT lower_bound, upper_bound, is_default FROM ato.event_partitions
                  WHERE parent = 'login_events' ORDER BY lower_bound NULLS LAST LOOP
            IF p.is_default THEN
                EXECUTE format('CREATE TABLE bench.%I PARTITION OF bench.%I DEFAULT', tab || '_default', tab);
            ELSE
                EXECUTE format('CREATE TABLE bench.%I PARTITION OF bench.%I FOR VALUES FROM (%L) TO (%L)',
                               tab || to_char(p.lower_bound AT TIME ZONE 'UTC', '_pYYYY_MM'), tab,
                               p.lower_bound, p.upper_bound);
            END IF;
        END LOOP;
    END LOOP;
END
$$;
CREATE INDEX ON bench.part_indexed USING brin (occurred_at) WITH (pages_per_range = 32);
CREATE INDEX ON bench.part_indexed_checks USING brin (occurred_at) WITH (pages_per_range = 32);
