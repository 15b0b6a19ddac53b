-- install/sections/04_partitions.sql: monthly partitions of the event store: creating, dropping, listing and maintaining them.
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- Partitions
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.create_event_partitions(
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
COMMENT ON FUNCTION ato.create_event_partitions(timestamptz, timestamptz) IS
    'Creates the missing monthly partitions of both event tables covering [from_time, to_time] (UTC months), moving in rows the default partitions hold for them; returns how many it created';
REVOKE ALL ON FUNCTION ato.create_event_partitions(timestamptz, timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.drop_event_partitions(older_than timestamptz)
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
        -- kept while an open incident's window reaches into it (12_evidence.sql)
        CONTINUE WHEN ato.partition_held(part.partition, part.upper_bound);
        EXECUTE format('DROP TABLE %s', part.partition);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END
$$;
COMMENT ON FUNCTION ato.drop_event_partitions(timestamptz) IS
    'Drops every monthly partition of the event tables that ends at or before older_than, but those an open incident''s window reaches into (a NOTICE says which: see ato.partition_held()): retention at the cost of dropping tables; returns how many it dropped';
REVOKE ALL ON FUNCTION ato.drop_event_partitions(timestamptz) FROM PUBLIC;

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

CREATE FUNCTION ato.maintain_event_partitions(OUT ranges_summarised integer, OUT partitions_analyzed integer)
LANGUAGE plpgsql
-- a histogram of ten buckets is enough to tell how many events a window
-- holds, and its sample of 3,000 rows is cheap to take every minute
SET default_statistics_target = 10
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part record;
BEGIN
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
END
$$;
COMMENT ON FUNCTION ato.maintain_event_partitions() IS
    'Keeps the event partitions that take live events fast to read: summarises their new BRIN block ranges (a range not yet summarised is read by every time window) and refreshes the planner''s statistics of occurred_at where about a thousand events or more came since the last ANALYZE (windows of the last minutes are then planned for their real size); skips a partition that VACUUM is busy with. The detection worker calls it every cycle';
REVOKE ALL ON FUNCTION ato.maintain_event_partitions() FROM PUBLIC;
