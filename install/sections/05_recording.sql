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
