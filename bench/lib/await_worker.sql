-- await_worker.sql -- starts the detection worker of this database and
-- prints its process id: the database was created after the server
-- started, so a reload of the configuration (which names it in
-- ato_response.databases) starts its worker now; this waits until it runs.

\ir prelude.sql
SELECT pg_reload_conf() AS reloaded \gset
DO $$
BEGIN
    WHILE NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity WHERE backend_type = 'ato_response detection worker') LOOP
        PERFORM pg_catalog.pg_sleep(0.2);
        PERFORM pg_catalog.pg_stat_clear_snapshot();
    END LOOP;
END
$$;
SELECT pid FROM pg_stat_activity WHERE backend_type = 'ato_response detection worker';
