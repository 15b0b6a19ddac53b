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
