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
