-- install/sections/05_recording.sql: ato.record_login() and ato.record_event(), the application's way in, and ato.record_logins(), its bulk form.
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

-- The bulk form, for imports through a proxy (which cannot pass COPY on):
-- one array per column, element i of each making login i.  Each row is
-- checked and enriched by the table's trigger as record_login's is.
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
    hint constant text := 'Pass one array per column, all of the same length: element i of each is login i (ips, times, user_agents, sources and metadata may be NULL for none).';
    n integer;
    recorded bigint;
BEGIN
    IF user_ids IS NULL OR outcomes IS NULL THEN
        RAISE EXCEPTION 'record_logins: % must not be NULL', CASE WHEN user_ids IS NULL THEN 'user_ids' ELSE 'outcomes' END
            USING ERRCODE = 'null_value_not_allowed', HINT = hint;
    END IF;
    IF array_ndims(user_ids) > 1 OR array_ndims(ips) > 1 OR array_ndims(outcomes) > 1 OR array_ndims(times) > 1
       OR array_ndims(user_agents) > 1 OR array_ndims(sources) > 1 OR array_ndims(metadata) > 1 THEN
        RAISE EXCEPTION 'record_logins: every array must be one-dimensional'
            USING ERRCODE = 'array_subscript_error', HINT = hint;
    END IF;
    n := cardinality(user_ids);
    IF n > 100000 THEN
        RAISE EXCEPTION 'record_logins: % logins in one call, more than 100000', n
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'Send the import in calls of at most 100000 logins (each call is one transaction).';
    END IF;
    IF cardinality(outcomes) <> n OR coalesce(cardinality(ips), n) <> n OR coalesce(cardinality(times), n) <> n
       OR coalesce(cardinality(user_agents), n) <> n OR coalesce(cardinality(sources), n) <> n
       OR coalesce(cardinality(metadata), n) <> n THEN
        RAISE EXCEPTION 'record_logins: the arrays differ in length (user_ids has %, outcomes %, ips %, times %, user_agents %, sources %, metadata %)',
                        n, cardinality(outcomes), coalesce(cardinality(ips)::text, 'NULL'),
                        coalesce(cardinality(times)::text, 'NULL'), coalesce(cardinality(user_agents)::text, 'NULL'),
                        coalesce(cardinality(sources)::text, 'NULL'), coalesce(cardinality(metadata)::text, 'NULL')
            USING ERRCODE = 'array_subscript_error', HINT = hint;
    END IF;
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
