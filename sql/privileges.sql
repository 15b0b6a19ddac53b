-- Privileges: nothing that reads, writes or manages events is PUBLIC; the
-- GeoIP look-ups are, and so are the mappings of identity-provider events,
-- which compute only from their argument.  Roles get exactly what they are granted.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
CREATE ROLE regress_ato_nobody;
CREATE ROLE regress_ato_app;
GRANT USAGE ON SCHEMA ato TO regress_ato_nobody, regress_ato_app;
GRANT EXECUTE ON FUNCTION ato.record_login(text, inet, text, timestamptz, text, text, jsonb) TO regress_ato_app;
GRANT INSERT ON ato.login_events TO regress_ato_app;
GRANT USAGE ON SEQUENCE ato.event_id_seq TO regress_ato_app;

-- What PUBLIC may execute in schema ato.
SELECT p.oid::regprocedure AS function
  FROM pg_proc p
 WHERE p.pronamespace = 'ato'::regnamespace
   AND has_function_privilege('regress_ato_nobody', p.oid, 'EXECUTE')
 ORDER BY p.oid::regprocedure::text;
-- Tables and views PUBLIC can touch: none.
SELECT c.oid::regclass FROM pg_class c
 WHERE c.relnamespace = 'ato'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'S')
   AND (has_table_privilege('regress_ato_nobody', c.oid, 'SELECT')
        OR has_table_privilege('regress_ato_nobody', c.oid, 'INSERT')
        OR has_table_privilege('regress_ato_nobody', c.oid, 'UPDATE')
        OR has_table_privilege('regress_ato_nobody', c.oid, 'DELETE'));

-- Every function of schema ato, called by a role with no grant: refused
-- (42501) but for the GeoIP look-ups, the list of login outcomes and the
-- import's pure mapping functions (which read nothing; import_mapping's
-- 22023 is its answer to a NULL provider),
-- whatever the arguments (given as sub-selects, so that the planner cannot
-- fold a strict function's call away before its privilege is checked).
-- Trigger functions cannot be called at all.
SET ROLE regress_ato_nobody;
DO $$
DECLARE
    f record;
    outcome text;
BEGIN
    FOR f IN SELECT p.oid::regprocedure AS signature, p.proname,
                    (SELECT string_agg('(SELECT NULL::' || format_type(t, NULL) || ')', ', ' ORDER BY n)
                       FROM unnest(p.proargtypes) WITH ORDINALITY AS a(t, n)) AS args
               FROM pg_catalog.pg_proc p
              WHERE p.pronamespace = 'ato'::regnamespace AND p.prorettype <> 'trigger'::regtype
              ORDER BY p.oid::regprocedure::text
    LOOP
        BEGIN
            EXECUTE format('SELECT ato.%I(%s)', f.proname, coalesce(f.args, ''));
            outcome := 'allowed';
        EXCEPTION WHEN OTHERS THEN
            outcome := SQLSTATE;
        END;
        IF outcome <> '42501' THEN
            RAISE NOTICE '% by a role without grants: %', f.signature, outcome;
        END IF;
    END LOOP;
END $$;
-- Nothing of schema ato may be created, nor operators found there.
SELECT has_schema_privilege('regress_ato_nobody', 'ato', 'CREATE') AS may_create_in_ato;
SELECT count(*) AS operators_in_ato FROM pg_operator WHERE oprnamespace = 'ato'::regnamespace;
-- Settings that name files or change how events are stored, announced or
-- kept are the superuser's (or the server's) to set.
SELECT name, context FROM pg_settings WHERE name LIKE 'ato\_response.%' ORDER BY name;
SELECT ato.geoip_country('8.8.8.8');
SELECT ato.record_login('mallory', '8.8.8.8', 'success');
INSERT INTO ato.login_events (user_id, outcome) VALUES ('mallory', 'success');
SELECT count(*) FROM ato.login_events;
SELECT ato.create_event_partitions(now(), now());
SELECT ato.drop_event_partitions(now());
SELECT * FROM ato.geoip_status();
SET ato_response.geoip_database = '/etc/passwd';
RESET ROLE;

-- An application role records logins (record_login runs as the extension's
-- owner) and may bulk-insert, but cannot read events back.
SET ROLE regress_ato_app;
SELECT ato.record_login('app-user', '8.8.8.8', 'success', '2024-02-02 00:00+00') > 0 AS stored;
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ('app-user', '1.1.1.1', 'failure', '2024-02-02 00:01+00');
SELECT count(*) FROM ato.login_events;
SELECT ato.record_event('app-user', 'user.email_changed');
RESET ROLE;
SELECT user_id, outcome, country_code FROM ato.login_events WHERE user_id = 'app-user' ORDER BY occurred_at;

-- A role that may only insert stores a login behind the summaries'
-- watermark: the trigger marks it for the next refresh as the extension's
-- owner, and the role still cannot read or change the summaries.
SELECT ato.refresh_summaries() >= 0 AS refreshed;
SET ROLE regress_ato_app;
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ('app-user', '81.2.69.160', 'success', '2024-02-03 00:00+00');
SELECT * FROM ato.summary_watermark;
SELECT * FROM ato.account_countries;
SELECT ato.refresh_summaries();
RESET ROLE;
SELECT late_from FROM ato.summary_status;

-- Investigators are granted the detection functions, nothing on the tables.
CREATE ROLE regress_ato_oncall;
GRANT USAGE ON SCHEMA ato TO regress_ato_oncall;
GRANT EXECUTE ON FUNCTION ato.cidr_scope(cidr[], timestamptz) TO regress_ato_oncall;
SET ROLE regress_ato_oncall;
SELECT user_id, logins FROM ato.cidr_scope('{81.2.69.0/24}', '2024-02-01');
SELECT * FROM ato.new_country_logins('2024-02-01');
SELECT * FROM ato.suspicious_action_counts('{app-user}', '2024-02-01');
SELECT count(*) FROM ato.login_events;
RESET ROLE;

-- SECURITY DEFINER functions pin search_path.
SELECT p.oid::regprocedure AS security_definer, p.proconfig FROM pg_proc p
 WHERE p.pronamespace = 'ato'::regnamespace AND p.prosecdef ORDER BY p.oid::regprocedure::text;
SELECT p.oid::regprocedure FROM pg_proc p
 WHERE p.pronamespace = 'ato'::regnamespace AND p.prosecdef
   AND NOT coalesce(p.proconfig::text[] @> ARRAY['search_path=pg_catalog, pg_temp'], false);

-- Every function and table has a comment.
SELECT p.oid::regprocedure AS uncommented FROM pg_proc p
 WHERE p.pronamespace = 'ato'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL;
SELECT c.oid::regclass AS uncommented FROM pg_class c
 WHERE c.relnamespace = 'ato'::regnamespace AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition
   AND obj_description(c.oid, 'pg_class') IS NULL;

DROP OWNED BY regress_ato_nobody, regress_ato_app, regress_ato_oncall;
DROP ROLE regress_ato_nobody;
DROP ROLE regress_ato_app;
DROP ROLE regress_ato_oncall;
