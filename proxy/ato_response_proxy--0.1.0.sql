/*
 * ato_response_proxy--0.1.0.sql
 *     ato_response's functions on a PL/Proxy node, in schema ato under the
 *     names they have on one node: the routing function, the two enum types
 *     the functions return, the per-account calls (run on the shard of the
 *     account) and the bulk writers (split by shard), the detections that are
 *     exact as a union of the shards' answers (run on every shard), those
 *     re-aggregated here (suspicious_action_counts; credential_stuffing and
 *     password_spray in two phases; related_accounts in three steps),
 *     revoke_incident (the accounts checked here, then split by shard) and
 *     which shards have done their part, each shard's range of event ids,
 *     and the cross-shard rules with their own alerts.  Every shard runs
 *     ato_response; the cluster is the foreign server ato_cluster.
 */
\echo Use "CREATE EXTENSION ato_response_proxy" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Routing.  PL/Proxy sends a call to partition (hash & (partitions - 1));
-- Citus gives shard i of n the i-th of n equal ranges of the signed 32-bit
-- hash.  ato.shard_hash() is hashtext(user_id) with its sign bit flipped and
-- its 32 bits reversed, so the low bits PL/Proxy reads are the high bits
-- Citus reads: the accounts of a partition are exactly those of one Citus
-- hash range (partition p of 2^k holds range reverse_k(p)), and doubling the
-- partitions splits each range in two halves.  A NULL id goes to partition 0,
-- whose ato_response then rejects it as one node does.
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.shard_hash(user_id text)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(
        pg_catalog.reverse(
            pg_catalog.int4xor(pg_catalog.hashtext(user_id), -2147483648)::pg_catalog.bit(32)::pg_catalog.text
        )::pg_catalog.bit(32)::pg_catalog.int4,
        0)
$$;
COMMENT ON FUNCTION ato.shard_hash(text) IS
    'The hash every call of an account is routed by: hashtext(user_id) with the sign bit flipped and the bits reversed, so that PL/Proxy partition p of 2^k holds the accounts of Citus hash range reverse_k(p) (for two, p0 the negative hashes, p1 the others); load each shard with the accounts whose shard_hash(user_id) & (partitions - 1) is its number';
GRANT EXECUTE ON FUNCTION ato.shard_hash(text) TO PUBLIC;

-- The shards' enum types, label for label (PL/Proxy passes values as text).

CREATE TYPE ato.login_step AS ENUM
    ('ok', 'blocked_network', 'suspended', 'password_reset_required', 'mfa_reenrollment_required', 'reauth_required');
COMMENT ON TYPE ato.login_step IS
    'What ato.login_gate() asks of a login: the shards'' type of the same name, label for label';

CREATE TYPE ato.session_verdict AS ENUM ('valid', 'suspended', 'revoked', 'session_revoked');
COMMENT ON TYPE ato.session_verdict IS
    'What ato.session_status() says of a session: the shards'' type of the same name, label for label';

-- ---------------------------------------------------------------------------
-- Per-account calls: on the shard of the account, in a transaction of their
-- own there (PL/Proxy commits each remote call when it returns).
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
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON ato.shard_hash(user_id);
$$;
COMMENT ON FUNCTION ato.record_login(text, inet, text, timestamptz, text, text, jsonb) IS
    'ato.record_login() on the shard of the account; returns the event''s id there (ids are per shard and may repeat across shards)';
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
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON ato.shard_hash(actor_id);
$$;
COMMENT ON FUNCTION ato.record_event(text, text, timestamptz, inet, text, text, text, text, jsonb) IS
    'ato.record_event() on the shard of the acting account (beside its logins); returns the event''s id there (ids are per shard and may repeat across shards)';
REVOKE ALL ON FUNCTION ato.record_event(text, text, timestamptz, inet, text, text, text, text, jsonb) FROM PUBLIC;

-- The bulk writers: each shard gets the elements of its accounts (PL/Proxy's
-- SPLIT, one call per shard, in parallel), each shard's part one
-- transaction there.  The arrays are checked here first, as one node checks
-- them (ato.bulk_length(), a copy of the shards'), so that a malformed call
-- reaches no shard.
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
    'For the bulk writers: the common length of their arrays, checked as the shards check it (a copy of their ato.bulk_length())';
REVOKE ALL ON FUNCTION ato.bulk_length(text, text[], integer, integer[], integer[], text) FROM PUBLIC;

CREATE FUNCTION ato.record_logins_shards(
    user_ids text[], ips inet[], outcomes text[], times timestamptz[],
    user_agents text[], sources text[], metadata jsonb[])
RETURNS SETOF bigint
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    SPLIT ALL;
    RUN ON ato.shard_hash(user_ids);
    TARGET ato.record_logins;
$$;
COMMENT ON FUNCTION ato.record_logins_shards(text[], inet[], text[], timestamptz[], text[], text[], jsonb[]) IS
    'For ato.record_logins(): ato.record_logins() on every shard holding some of the accounts, given the elements of its own';
REVOKE ALL ON FUNCTION ato.record_logins_shards(text[], inet[], text[], timestamptz[], text[], text[], jsonb[]) FROM PUBLIC;

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
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n constant integer := ato.bulk_length(
        'record_logins', '{user_ids,outcomes,ips,times,user_agents,sources,metadata}', 2,
        ARRAY[cardinality(user_ids), cardinality(outcomes), cardinality(ips), cardinality(times),
              cardinality(user_agents), cardinality(sources), cardinality(metadata)],
        ARRAY[array_ndims(user_ids), array_ndims(outcomes), array_ndims(ips), array_ndims(times),
              array_ndims(user_agents), array_ndims(sources), array_ndims(metadata)],
        'Pass one array per column, all of the same length: element i of each is login i (ips, times, user_agents, sources and metadata may be NULL for none).');
BEGIN
    IF n = 0 THEN
        RETURN 0;
    END IF;
    -- every array split alike: the missing ones as arrays of NULLs, the
    -- missing times as the proxy's now() (one node's default)
    RETURN (SELECT coalesce(sum(c), 0)::bigint
              FROM ato.record_logins_shards(
                       user_ids, coalesce(ips, array_fill(NULL::inet, ARRAY[n])), outcomes,
                       coalesce(times, array_fill(now(), ARRAY[n])),
                       coalesce(user_agents, array_fill(NULL::text, ARRAY[n])),
                       coalesce(sources, array_fill(NULL::text, ARRAY[n])),
                       coalesce(metadata, array_fill(NULL::jsonb, ARRAY[n]))) c);
END;
$$;
COMMENT ON FUNCTION ato.record_logins(text[], inet[], text[], timestamptz[], text[], text[], jsonb[]) IS
    'ato.record_logins() through the proxy: the arrays checked here as one node checks them, then each shard given the elements of its accounts; returns how many the shards stored; each shard commits its part alone, so a row one shard refuses leaves the other shards'' parts stored (resend that shard''s part only)';
REVOKE ALL ON FUNCTION ato.record_logins(text[], inet[], text[], timestamptz[], text[], text[], jsonb[]) FROM PUBLIC;

CREATE FUNCTION ato.record_events_shards(
    actor_ids text[], event_types text[], times timestamptz[], ips inet[], target_types text[],
    target_ids text[], user_agents text[], sources text[], metadata jsonb[])
RETURNS SETOF bigint
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    SPLIT ALL;
    RUN ON ato.shard_hash(actor_ids);
    TARGET ato.record_events;
$$;
COMMENT ON FUNCTION ato.record_events_shards(text[], text[], timestamptz[], inet[], text[], text[], text[], text[], jsonb[]) IS
    'For ato.record_events(): ato.record_events() on every shard holding some of the acting accounts, given the elements of its own';
REVOKE ALL ON FUNCTION ato.record_events_shards(text[], text[], timestamptz[], inet[], text[], text[], text[], text[], jsonb[]) FROM PUBLIC;

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
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n constant integer := ato.bulk_length(
        'record_events', '{actor_ids,event_types,times,ips,target_types,target_ids,user_agents,sources,metadata}', 2,
        ARRAY[cardinality(actor_ids), cardinality(event_types), cardinality(times), cardinality(ips),
              cardinality(target_types), cardinality(target_ids), cardinality(user_agents), cardinality(sources),
              cardinality(metadata)],
        ARRAY[array_ndims(actor_ids), array_ndims(event_types), array_ndims(times), array_ndims(ips),
              array_ndims(target_types), array_ndims(target_ids), array_ndims(user_agents), array_ndims(sources),
              array_ndims(metadata)],
        'Pass one array per column, all of the same length: element i of each is event i (all but actor_ids and event_types may be NULL for none).');
BEGIN
    IF n = 0 THEN
        RETURN 0;
    END IF;
    RETURN (SELECT coalesce(sum(c), 0)::bigint
              FROM ato.record_events_shards(
                       actor_ids, event_types, coalesce(times, array_fill(now(), ARRAY[n])),
                       coalesce(ips, array_fill(NULL::inet, ARRAY[n])),
                       coalesce(target_types, array_fill(NULL::text, ARRAY[n])),
                       coalesce(target_ids, array_fill(NULL::text, ARRAY[n])),
                       coalesce(user_agents, array_fill(NULL::text, ARRAY[n])),
                       coalesce(sources, array_fill(NULL::text, ARRAY[n])),
                       coalesce(metadata, array_fill(NULL::jsonb, ARRAY[n]))) c);
END;
$$;
COMMENT ON FUNCTION ato.record_events(text[], text[], timestamptz[], inet[], text[], text[], text[], text[], jsonb[]) IS
    'ato.record_events() through the proxy: the arrays checked here as one node checks them, then each shard given the events of its acting accounts; returns how many the shards stored; each shard commits its part alone (resend only the part of a shard that refused a row)';
REVOKE ALL ON FUNCTION ato.record_events(text[], text[], timestamptz[], inet[], text[], text[], text[], text[], jsonb[]) FROM PUBLIC;

CREATE FUNCTION ato.login_gate(user_id text, ip_address inet DEFAULT NULL,
                               OUT step ato.login_step, OUT message text, OUT steps ato.login_step[],
                               OUT incident_id uuid, OUT issued_at timestamptz)
RETURNS record
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON ato.shard_hash(user_id);
$$;
COMMENT ON FUNCTION ato.login_gate(text, inet) IS
    'ato.login_gate() on the shard of the account; its hold on the account''s gate ends when the remote call commits, not with the caller''s transaction (see the README, Across servers)';
REVOKE ALL ON FUNCTION ato.login_gate(text, inet) FROM PUBLIC;

CREATE FUNCTION ato.session_revoked(user_id text, issued_at timestamptz)
RETURNS boolean
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON ato.shard_hash(user_id);
$$;
COMMENT ON FUNCTION ato.session_revoked(text, timestamptz) IS
    'ato.session_revoked() on the shard of the account';
REVOKE ALL ON FUNCTION ato.session_revoked(text, timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.session_status(user_id text, issued_at timestamptz, session_id text DEFAULT NULL,
                                   OUT refused boolean, OUT verdict ato.session_verdict,
                                   OUT incident_id uuid, OUT revoked_at timestamptz, OUT reason text)
RETURNS record
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON ato.shard_hash(user_id);
$$;
COMMENT ON FUNCTION ato.session_status(text, timestamptz, text) IS
    'ato.session_status() on the shard of the account';
REVOKE ALL ON FUNCTION ato.session_status(text, timestamptz, text) FROM PUBLIC;

CREATE FUNCTION ato.complete_step(user_id text, step text, method text DEFAULT NULL, proven_by text DEFAULT NULL)
RETURNS boolean
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON ato.shard_hash(user_id);
$$;
COMMENT ON FUNCTION ato.complete_step(text, text, text, text) IS
    'ato.complete_step() on the shard of the account';
REVOKE ALL ON FUNCTION ato.complete_step(text, text, text, text) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Detections whose answer is the union of the shards' answers: every row is
-- about one account, and everything it is computed from lives on that
-- account's shard.  Each is a PL/Proxy function ato.<name>_shards() run on
-- every shard, and ato.<name>() orders the union as one node orders its rows
-- (ties that one node breaks by event id come in no fixed order).
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.new_country_logins_shards(
    since timestamptz, action_window interval, action_types text[])
RETURNS TABLE (user_id text, ip_address inet, country_code text, occurred_at timestamptz,
               suspicious_actions bigint)
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON ALL;
    TARGET ato.new_country_logins;
$$;
COMMENT ON FUNCTION ato.new_country_logins_shards(timestamptz, interval, text[]) IS
    'For ato.new_country_logins(): every shard''s rows, unordered';
REVOKE ALL ON FUNCTION ato.new_country_logins_shards(timestamptz, interval, text[]) FROM PUBLIC;

CREATE FUNCTION ato.new_country_logins(
    since         timestamptz DEFAULT now() - interval '1 hour',
    action_window interval    DEFAULT interval '1 hour',
    action_types  text[]      DEFAULT '{user.email_changed,user.password_changed,billing.modified}')
RETURNS TABLE (user_id text, ip_address inet, country_code text, occurred_at timestamptz,
               suspicious_actions bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.* FROM ato.new_country_logins_shards(since, action_window, action_types) s
     ORDER BY s.occurred_at, s.user_id
$$;
COMMENT ON FUNCTION ato.new_country_logins(timestamptz, interval, text[]) IS
    'ato.new_country_logins() of every shard, in one node''s order';
REVOKE ALL ON FUNCTION ato.new_country_logins(timestamptz, interval, text[]) FROM PUBLIC;

CREATE FUNCTION ato.cidr_scope_shards(cidrs cidr[], since timestamptz)
RETURNS TABLE (user_id text, logins bigint, first_login timestamptz, last_login timestamptz,
               ips inet[], actions jsonb)
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON ALL;
    TARGET ato.cidr_scope;
$$;
COMMENT ON FUNCTION ato.cidr_scope_shards(cidr[], timestamptz) IS
    'For ato.cidr_scope(): every shard''s rows, unordered';
REVOKE ALL ON FUNCTION ato.cidr_scope_shards(cidr[], timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.cidr_scope(
    cidrs cidr[],
    since timestamptz DEFAULT now() - interval '24 hours')
RETURNS TABLE (user_id text, logins bigint, first_login timestamptz, last_login timestamptz,
               ips inet[], actions jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.* FROM ato.cidr_scope_shards(cidrs, since) s
     ORDER BY s.first_login, s.user_id
$$;
COMMENT ON FUNCTION ato.cidr_scope(cidr[], timestamptz) IS
    'ato.cidr_scope() of every shard, in one node''s order';
REVOKE ALL ON FUNCTION ato.cidr_scope(cidr[], timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.failed_login_bursts_shards(since timestamptz, min_failures integer, burst_window interval)
RETURNS TABLE (user_id text, failures bigint, burst bigint, sources bigint,
               first_failure timestamptz, last_failure timestamptz, later_success timestamptz)
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON ALL;
    TARGET ato.failed_login_bursts;
$$;
COMMENT ON FUNCTION ato.failed_login_bursts_shards(timestamptz, integer, interval) IS
    'For ato.failed_login_bursts(): every shard''s rows, unordered';
REVOKE ALL ON FUNCTION ato.failed_login_bursts_shards(timestamptz, integer, interval) FROM PUBLIC;

CREATE FUNCTION ato.failed_login_bursts(
    since        timestamptz DEFAULT now() - interval '1 hour',
    min_failures integer     DEFAULT 10,
    burst_window interval    DEFAULT interval '10 minutes')
RETURNS TABLE (user_id text, failures bigint, burst bigint, sources bigint,
               first_failure timestamptz, last_failure timestamptz, later_success timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.* FROM ato.failed_login_bursts_shards(since, min_failures, burst_window) s
     ORDER BY s.burst DESC, s.user_id
$$;
COMMENT ON FUNCTION ato.failed_login_bursts(timestamptz, integer, interval) IS
    'ato.failed_login_bursts() of every shard, in one node''s order';
REVOKE ALL ON FUNCTION ato.failed_login_bursts(timestamptz, integer, interval) FROM PUBLIC;

CREATE FUNCTION ato.impossible_travel_shards(
    since timestamptz, max_speed_kmh double precision, min_distance_km double precision, lookback interval)
RETURNS TABLE (user_id text, from_ip inet, from_country text, from_at timestamptz,
               to_ip inet, to_country text, to_at timestamptz,
               distance_km double precision, speed_kmh double precision, approximate boolean)
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON ALL;
    TARGET ato.impossible_travel;
$$;
COMMENT ON FUNCTION ato.impossible_travel_shards(timestamptz, double precision, double precision, interval) IS
    'For ato.impossible_travel(): every shard''s rows, unordered';
REVOKE ALL ON FUNCTION ato.impossible_travel_shards(timestamptz, double precision, double precision, interval) FROM PUBLIC;

CREATE FUNCTION ato.impossible_travel(
    since           timestamptz      DEFAULT now() - interval '24 hours',
    max_speed_kmh   double precision DEFAULT 900,
    min_distance_km double precision DEFAULT 500,
    lookback        interval         DEFAULT interval '24 hours')
RETURNS TABLE (user_id text, from_ip inet, from_country text, from_at timestamptz,
               to_ip inet, to_country text, to_at timestamptz,
               distance_km double precision, speed_kmh double precision, approximate boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.* FROM ato.impossible_travel_shards(since, max_speed_kmh, min_distance_km, lookback) s
     ORDER BY s.to_at, s.user_id
$$;
COMMENT ON FUNCTION ato.impossible_travel(timestamptz, double precision, double precision, interval) IS
    'ato.impossible_travel() of every shard, in one node''s order';
REVOKE ALL ON FUNCTION ato.impossible_travel(timestamptz, double precision, double precision, interval) FROM PUBLIC;

CREATE FUNCTION ato.listed_network_logins_shards(since timestamptz, labels text[])
RETURNS TABLE (user_id text, ip_address inet, occurred_at timestamptz, network cidr, label text, source text)
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON ALL;
    TARGET ato.listed_network_logins;
$$;
COMMENT ON FUNCTION ato.listed_network_logins_shards(timestamptz, text[]) IS
    'For ato.listed_network_logins(): every shard''s rows, unordered (each shard reads its own ato.listed_networks, so list a network on every shard)';
REVOKE ALL ON FUNCTION ato.listed_network_logins_shards(timestamptz, text[]) FROM PUBLIC;

CREATE FUNCTION ato.listed_network_logins(
    since  timestamptz DEFAULT now() - interval '24 hours',
    labels text[]      DEFAULT NULL)
RETURNS TABLE (user_id text, ip_address inet, occurred_at timestamptz, network cidr, label text, source text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.* FROM ato.listed_network_logins_shards(since, labels) s
     ORDER BY s.occurred_at, s.user_id, s.network, s.label
$$;
COMMENT ON FUNCTION ato.listed_network_logins(timestamptz, text[]) IS
    'ato.listed_network_logins() of every shard, in one node''s order; each shard matches its own ato.listed_networks, so the same list must be on every shard';
REVOKE ALL ON FUNCTION ato.listed_network_logins(timestamptz, text[]) FROM PUBLIC;

CREATE FUNCTION ato.persistence_changes_shards(user_ids text[], since timestamptz)
RETURNS TABLE (actor_id text, category text, event_type text, occurred_at timestamptz, ip_address inet,
               country_code text, target_type text, target_id text)
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON ALL;
    TARGET ato.persistence_changes;
$$;
COMMENT ON FUNCTION ato.persistence_changes_shards(text[], timestamptz) IS
    'For ato.persistence_changes(): every shard''s rows, unordered';
REVOKE ALL ON FUNCTION ato.persistence_changes_shards(text[], timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.persistence_changes(
    user_ids text[]      DEFAULT NULL,
    since    timestamptz DEFAULT now() - interval '24 hours')
RETURNS TABLE (actor_id text, category text, event_type text, occurred_at timestamptz, ip_address inet,
               country_code text, target_type text, target_id text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.* FROM ato.persistence_changes_shards(user_ids, since) s
     ORDER BY s.occurred_at
$$;
COMMENT ON FUNCTION ato.persistence_changes(text[], timestamptz) IS
    'ato.persistence_changes() of every shard, in time order (each shard reads its own ato.persistence_event_types, so keep them alike)';
REVOKE ALL ON FUNCTION ato.persistence_changes(text[], timestamptz) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Detections re-aggregated at the proxy: the shards count their own accounts
-- (disjoint across shards), the proxy adds the counts up.
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.suspicious_action_counts_shards(user_ids text[], since timestamptz)
RETURNS TABLE (event_type text, actions bigint, accounts bigint)
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON ALL;
    TARGET ato.suspicious_action_counts;
$$;
COMMENT ON FUNCTION ato.suspicious_action_counts_shards(text[], timestamptz) IS
    'For ato.suspicious_action_counts(): every shard''s counts of its own accounts';
REVOKE ALL ON FUNCTION ato.suspicious_action_counts_shards(text[], timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.suspicious_action_counts(
    user_ids text[],
    since    timestamptz DEFAULT now() - interval '24 hours')
RETURNS TABLE (event_type text, actions bigint, accounts bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.event_type, sum(s.actions)::bigint AS actions, sum(s.accounts)::bigint AS accounts
      FROM ato.suspicious_action_counts_shards(user_ids, since) s
     GROUP BY s.event_type
     ORDER BY actions DESC, s.event_type
$$;
COMMENT ON FUNCTION ato.suspicious_action_counts(text[], timestamptz) IS
    'ato.suspicious_action_counts() over every shard: each shard''s counts of its accounts, added up';
REVOKE ALL ON FUNCTION ato.suspicious_action_counts(text[], timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.shard_count()
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    SELECT count(*) INTO n
      FROM pg_catalog.pg_foreign_server s, unnest(s.srvoptions) o
     WHERE s.srvname = 'ato_cluster' AND o ~ '^p[0-9]+=';
    IF n = 0 THEN
        RAISE EXCEPTION 'ato.shard_count: the foreign server ato_cluster has no partitions'
            USING ERRCODE = 'undefined_object',
                  HINT = 'Create it: CREATE SERVER ato_cluster FOREIGN DATA WRAPPER plproxy OPTIONS (p0 ''...'', p1 ''...'').';
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION ato.shard_count() IS
    'How many partitions (p0, p1, ...) the foreign server ato_cluster has: the divisor of the two-phase detections';
GRANT EXECUTE ON FUNCTION ato.shard_count() TO PUBLIC;

-- Two phases for the detections of sources.  A source with at least m
-- attempts (or m accounts) over n shards has at least ceil(m / n) on one of
-- them: the first phase asks every shard for the sources over that share
-- (the candidates), the second for the exact counts of the candidates on
-- every shard, added up here with the thresholds applied to the sums.  The
-- shards report only the candidates, and a source spread over the shards
-- under the threshold on each is found as on one node.  The phases read the
-- shards at two moments: an attempt recorded in between may count in the
-- second phase without making a candidate in the first.

CREATE FUNCTION ato.credential_stuffing_counts_shards(since timestamptz, min_attempts integer, sources text[])
RETURNS TABLE (source_kind text, source text, attempts bigint, successes bigint, accounts bigint)
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON ALL;
    TARGET ato.credential_stuffing_counts;
$$;
COMMENT ON FUNCTION ato.credential_stuffing_counts_shards(timestamptz, integer, text[]) IS
    'For ato.credential_stuffing(): every shard''s ato.credential_stuffing_counts()';
REVOKE ALL ON FUNCTION ato.credential_stuffing_counts_shards(timestamptz, integer, text[]) FROM PUBLIC;

CREATE FUNCTION ato.credential_stuffing_counts(
    since        timestamptz,
    min_attempts integer DEFAULT 1,
    sources      text[]  DEFAULT NULL)
RETURNS TABLE (source_kind text, source text, attempts bigint, successes bigint, accounts bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF min_attempts IS NULL OR min_attempts < 1 THEN
        RAISE EXCEPTION 'ato.credential_stuffing_counts: min_attempts must %',
                        CASE WHEN min_attempts IS NULL THEN 'not be NULL' ELSE 'be at least 1' END
            USING ERRCODE = CASE WHEN min_attempts IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END,
                  HINT = 'Give a whole number of at least 1.';
    END IF;
    RETURN QUERY
    SELECT s.source_kind, s.source, sum(s.attempts)::bigint, sum(s.successes)::bigint, sum(s.accounts)::bigint
      FROM ato.credential_stuffing_counts_shards(since, 1, sources) s
     GROUP BY s.source_kind, s.source
    HAVING sum(s.attempts) >= credential_stuffing_counts.min_attempts
     ORDER BY s.source_kind, s.source;
END;
$$;
COMMENT ON FUNCTION ato.credential_stuffing_counts(timestamptz, integer, text[]) IS
    'ato.credential_stuffing_counts() over every shard: each shard''s counts of the sources added up, then min_attempts applied to the sums';
REVOKE ALL ON FUNCTION ato.credential_stuffing_counts(timestamptz, integer, text[]) FROM PUBLIC;

CREATE FUNCTION ato.credential_stuffing(
    since            timestamptz      DEFAULT now() - interval '1 hour',
    min_attempts     integer          DEFAULT 20,
    max_success_rate double precision DEFAULT 0.05)
RETURNS TABLE (source_kind text, source text, attempts bigint, successes bigint,
               success_rate double precision, accounts bigint, suspicious boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    shards constant integer := ato.shard_count();
    candidates text[];
BEGIN
    -- the shards check since; the thresholds are checked here, as one node does
    IF min_attempts IS NULL OR max_success_rate IS NULL THEN
        RAISE EXCEPTION 'ato.credential_stuffing: % must not be NULL',
                        CASE WHEN min_attempts IS NULL THEN 'min_attempts' ELSE 'max_success_rate' END
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = CASE WHEN min_attempts IS NULL THEN 'Give a whole number of at least 1.' ELSE 'Give a number.' END;
    END IF;
    IF min_attempts < 1 THEN
        RAISE EXCEPTION 'ato.credential_stuffing: min_attempts must be at least 1'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give a whole number of at least 1.';
    END IF;
    IF max_success_rate = 'NaN' OR max_success_rate < 0 OR max_success_rate > 1 THEN
        RAISE EXCEPTION 'ato.credential_stuffing: max_success_rate must be between 0 and 1'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give a number in that range.';
    END IF;
    -- phase 1: the sources over their share of the threshold on some shard
    SELECT array_agg(DISTINCT s.source_kind || ' ' || s.source) INTO candidates
      FROM ato.credential_stuffing_counts_shards(since, (min_attempts - 1) / shards + 1, NULL) s;
    IF candidates IS NULL THEN
        RETURN;
    END IF;
    -- phase 2: their exact counts on every shard
    RETURN QUERY
    SELECT g.source_kind, g.source, g.attempts, g.successes, g.successes::float8 / g.attempts,
           g.accounts, g.successes::float8 / g.attempts <= credential_stuffing.max_success_rate
      FROM (SELECT s.source_kind, s.source, sum(s.attempts)::bigint AS attempts,
                   sum(s.successes)::bigint AS successes, sum(s.accounts)::bigint AS accounts
              FROM ato.credential_stuffing_counts_shards(since, 1, candidates) s
             GROUP BY s.source_kind, s.source) g
     WHERE g.attempts >= credential_stuffing.min_attempts
     ORDER BY g.attempts DESC, g.source_kind, g.source;
END;
$$;
COMMENT ON FUNCTION ato.credential_stuffing(timestamptz, integer, double precision) IS
    'ato.credential_stuffing() over every shard, in two phases: the sources with ceil(min_attempts / shards) attempts on some shard, then their attempts, successes and accounts on every shard added up, with min_attempts and max_success_rate applied to the sums: one node''s answer';
REVOKE ALL ON FUNCTION ato.credential_stuffing(timestamptz, integer, double precision) FROM PUBLIC;

CREATE FUNCTION ato.password_spray_counts_shards(since timestamptz, min_accounts integer, addresses inet[])
RETURNS TABLE (ip_address inet, accounts bigint, accounts_tried bigint, attempts bigint, failures bigint,
               successes bigint, first_attempt timestamptz, last_attempt timestamptz)
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON ALL;
    TARGET ato.password_spray_counts;
$$;
COMMENT ON FUNCTION ato.password_spray_counts_shards(timestamptz, integer, inet[]) IS
    'For ato.password_spray(): every shard''s ato.password_spray_counts()';
REVOKE ALL ON FUNCTION ato.password_spray_counts_shards(timestamptz, integer, inet[]) FROM PUBLIC;

CREATE FUNCTION ato.password_spray_counts(
    since        timestamptz,
    min_accounts integer DEFAULT 0,
    addresses    inet[]  DEFAULT NULL)
RETURNS TABLE (ip_address inet, accounts bigint, accounts_tried bigint, attempts bigint, failures bigint,
               successes bigint, first_attempt timestamptz, last_attempt timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF min_accounts IS NULL OR min_accounts < 0 THEN
        RAISE EXCEPTION 'ato.password_spray_counts: min_accounts must %',
                        CASE WHEN min_accounts IS NULL THEN 'not be NULL' ELSE 'not be negative' END
            USING ERRCODE = CASE WHEN min_accounts IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END,
                  HINT = 'Give a whole number, 0 for every address.';
    END IF;
    RETURN QUERY
    SELECT s.ip_address, sum(s.accounts)::bigint, sum(s.accounts_tried)::bigint, sum(s.attempts)::bigint,
           sum(s.failures)::bigint, sum(s.successes)::bigint, min(s.first_attempt), max(s.last_attempt)
      FROM ato.password_spray_counts_shards(since, 0, addresses) s
     GROUP BY s.ip_address
    HAVING sum(s.accounts) >= password_spray_counts.min_accounts
     ORDER BY s.ip_address;
END;
$$;
COMMENT ON FUNCTION ato.password_spray_counts(timestamptz, integer, inet[]) IS
    'ato.password_spray_counts() over every shard: each shard''s counts per address added up (first and last attempt the extremes), then min_accounts applied to the sums';
REVOKE ALL ON FUNCTION ato.password_spray_counts(timestamptz, integer, inet[]) FROM PUBLIC;

CREATE FUNCTION ato.password_spray(
    since                    timestamptz      DEFAULT now() - interval '1 hour',
    min_accounts             integer          DEFAULT 10,
    max_attempts_per_account double precision DEFAULT 3)
RETURNS TABLE (ip_address inet, accounts bigint, failures bigint, successes bigint,
               attempts_per_account double precision, first_attempt timestamptz, last_attempt timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    shards constant integer := ato.shard_count();
    candidates inet[];
BEGIN
    IF min_accounts IS NULL OR max_attempts_per_account IS NULL THEN
        RAISE EXCEPTION 'ato.password_spray: % must not be NULL',
                        CASE WHEN min_accounts IS NULL THEN 'min_accounts' ELSE 'max_attempts_per_account' END
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = CASE WHEN min_accounts IS NULL THEN 'Give a whole number of at least 1.' ELSE 'Give a number.' END;
    END IF;
    IF min_accounts < 1 THEN
        RAISE EXCEPTION 'ato.password_spray: min_accounts must be at least 1'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give a whole number of at least 1.';
    END IF;
    IF max_attempts_per_account = 'NaN' OR max_attempts_per_account < 1 OR max_attempts_per_account > 1e9 THEN
        RAISE EXCEPTION 'ato.password_spray: max_attempts_per_account must be between 1 and 1e+09'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give a number in that range.';
    END IF;
    -- phase 1: the addresses that failed against their share of min_accounts on some shard
    SELECT array_agg(DISTINCT s.ip_address) INTO candidates
      FROM ato.password_spray_counts_shards(since, (min_accounts - 1) / shards + 1, NULL) s;
    IF candidates IS NULL THEN
        RETURN;
    END IF;
    -- phase 2: every attempt of theirs on every shard, the rate from the sums
    RETURN QUERY
    SELECT g.ip_address, g.accounts, g.failures, g.successes, g.attempts::float8 / g.accounts_tried,
           g.first_attempt, g.last_attempt
      FROM (SELECT s.ip_address, sum(s.accounts)::bigint AS accounts, sum(s.accounts_tried)::bigint AS accounts_tried,
                   sum(s.attempts)::bigint AS attempts, sum(s.failures)::bigint AS failures,
                   sum(s.successes)::bigint AS successes, min(s.first_attempt) AS first_attempt,
                   max(s.last_attempt) AS last_attempt
              FROM ato.password_spray_counts_shards(since, 0, candidates) s
             GROUP BY s.ip_address) g
     WHERE g.accounts >= password_spray.min_accounts
       AND g.attempts::float8 / g.accounts_tried <= password_spray.max_attempts_per_account
     ORDER BY g.accounts DESC, g.ip_address;
END;
$$;
COMMENT ON FUNCTION ato.password_spray(timestamptz, integer, double precision) IS
    'ato.password_spray() over every shard, in two phases: the addresses that failed against ceil(min_accounts / shards) accounts on some shard, then their counts on every shard added up, with min_accounts and max_attempts_per_account applied to the sums: one node''s answer';
REVOKE ALL ON FUNCTION ato.password_spray(timestamptz, integer, double precision) FROM PUBLIC;

-- related_accounts in three steps: what the given accounts used (on their
-- shards), how many accounts used those user agents (added up, the rare
-- ones kept), then every shard's accounts related to all of it.

CREATE FUNCTION ato.related_accounts_seen(user_ids text[], since timestamptz)
RETURNS TABLE (given_id text, ip_address inet, user_agent text)
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON ALL;
$$;
COMMENT ON FUNCTION ato.related_accounts_seen(text[], timestamptz) IS
    'ato.related_accounts_seen() of every shard, unordered';
REVOKE ALL ON FUNCTION ato.related_accounts_seen(text[], timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.user_agent_accounts_shards(user_agents text[], since timestamptz)
RETURNS TABLE (user_agent text, accounts bigint)
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON ALL;
    TARGET ato.user_agent_accounts;
$$;
COMMENT ON FUNCTION ato.user_agent_accounts_shards(text[], timestamptz) IS
    'For ato.related_accounts(): every shard''s ato.user_agent_accounts()';
REVOKE ALL ON FUNCTION ato.user_agent_accounts_shards(text[], timestamptz) FROM PUBLIC;

CREATE FUNCTION ato.related_accounts_to_shards(
    user_ids text[], since timestamptz, seen_ids text[], seen_addresses inet[], seen_user_agents text[])
RETURNS TABLE (user_id text, shared_addresses inet[], shared_user_agents text[], related_to text[],
               logins bigint, first_login timestamptz, last_login timestamptz)
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON ALL;
    TARGET ato.related_accounts_to;
$$;
COMMENT ON FUNCTION ato.related_accounts_to_shards(text[], timestamptz, text[], inet[], text[]) IS
    'For ato.related_accounts(): every shard''s ato.related_accounts_to()';
REVOKE ALL ON FUNCTION ato.related_accounts_to_shards(text[], timestamptz, text[], inet[], text[]) FROM PUBLIC;

CREATE FUNCTION ato.related_accounts(
    user_ids                 text[],
    since                    timestamptz DEFAULT now() - interval '7 days',
    rare_user_agent_accounts integer     DEFAULT 5)
RETURNS TABLE (user_id text, shared_addresses inet[], shared_user_agents text[], related_to text[],
               logins bigint, first_login timestamptz, last_login timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ids text[];
    addresses inet[];
    agents text[];
    rare text[];
BEGIN
    IF rare_user_agent_accounts IS NULL THEN
        RAISE EXCEPTION 'ato.related_accounts: rare_user_agent_accounts must not be NULL'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Give a whole number of at least 1.';
    END IF;
    IF rare_user_agent_accounts < 1 THEN
        RAISE EXCEPTION 'ato.related_accounts: rare_user_agent_accounts must be at least 1'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give a whole number of at least 1.';
    END IF;
    -- the shards check user_ids and since
    SELECT coalesce(array_agg(s.given_id), '{}'), coalesce(array_agg(s.ip_address), '{}'),
           coalesce(array_agg(s.user_agent), '{}')
      INTO ids, addresses, agents
      FROM ato.related_accounts_seen(user_ids, since) s;
    -- a user agent relates accounts when few used it, on all shards together
    IF EXISTS (SELECT FROM unnest(agents) a WHERE a IS NOT NULL) THEN
        rare := ARRAY(SELECT c.user_agent
                        FROM ato.user_agent_accounts_shards(
                                 ARRAY(SELECT DISTINCT a FROM unnest(agents) a WHERE a IS NOT NULL), since) c
                       GROUP BY c.user_agent
                      HAVING sum(c.accounts) <= rare_user_agent_accounts);
        agents := ARRAY(SELECT CASE WHEN u.a = ANY (rare) THEN u.a END
                          FROM unnest(agents) WITH ORDINALITY u(a, n) ORDER BY u.n);
    END IF;
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT r.* FROM ato.related_accounts_to_shards(user_ids, since, ids, addresses, agents) r
     ORDER BY cardinality(r.related_to) DESC, r.user_id;
END;
$$;
COMMENT ON FUNCTION ato.related_accounts(text[], timestamptz, integer) IS
    'ato.related_accounts() over every shard, in three steps: what the given accounts used on their shards, how many accounts of every shard used those user agents (the rare ones kept), then every shard''s accounts related to all of it, in one node''s order';
REVOKE ALL ON FUNCTION ato.related_accounts(text[], timestamptz, integer) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Response.  Each shard gets exactly its accounts and opens an incident of
-- its own: one row per shard, each its own id, each atomic on its shard only.
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.revoke_incident_shards(
    user_ids text[], reason text, suspend boolean, reauth_required boolean,
    mfa_reenrollment_required boolean, password_reset_required boolean, delete_created_after timestamptz,
    incident_id uuid)
RETURNS SETOF uuid
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    SPLIT user_ids;
    RUN ON ato.shard_hash(user_ids);
    TARGET ato.revoke_incident;
$$;
COMMENT ON FUNCTION ato.revoke_incident_shards(text[], text, boolean, boolean, boolean, boolean, timestamptz, uuid) IS
    'For ato.revoke_incident(): ato.revoke_incident() on every shard holding some of the accounts, given only its own and the one incident id, in parallel';
REVOKE ALL ON FUNCTION ato.revoke_incident_shards(text[], text, boolean, boolean, boolean, boolean, timestamptz, uuid) FROM PUBLIC;

-- The accounts are checked here, as one node checks them, before any shard
-- is called: a bad element would fail on its shard alone and leave the
-- other shards' accounts revoked.  The other arguments fail on every shard
-- alike.
CREATE FUNCTION ato.revoke_incident(
    user_ids text[],
    reason text,
    suspend boolean DEFAULT false,
    reauth_required boolean DEFAULT true,
    mfa_reenrollment_required boolean DEFAULT false,
    password_reset_required boolean DEFAULT false,
    delete_created_after timestamptz DEFAULT NULL,
    incident_id uuid DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hint constant text := 'Pass the affected accounts, for example ARRAY[''alice'', ''bob''] or the user_id column of a detection.';
    bytes integer;
    -- one id on every shard: a retry with it (and the same accounts) does
    -- nothing again where it was done, and the rest where it was not
    incident uuid := coalesce(revoke_incident.incident_id, gen_random_uuid());
BEGIN
    IF user_ids IS NULL THEN
        RAISE EXCEPTION 'revoke_incident: user_ids must not be NULL'
            USING ERRCODE = 'null_value_not_allowed', HINT = hint;
    END IF;
    IF array_ndims(user_ids) > 1 THEN
        RAISE EXCEPTION 'revoke_incident: user_ids must be a one-dimensional array'
            USING ERRCODE = 'array_subscript_error', HINT = hint;
    END IF;
    IF cardinality(user_ids) = 0 THEN
        RAISE EXCEPTION 'revoke_incident: user_ids is empty'
            USING ERRCODE = 'invalid_parameter_value', HINT = hint;
    END IF;
    FOR i IN 1 .. cardinality(user_ids) LOOP
        IF user_ids[array_lower(user_ids, 1) + i - 1] IS NULL THEN
            RAISE EXCEPTION 'revoke_incident: user_ids[%] is NULL', i
                USING ERRCODE = 'null_value_not_allowed',
                      HINT = 'Remove the NULL elements, for example with array_remove(ids, NULL).';
        END IF;
        bytes := octet_length(user_ids[array_lower(user_ids, 1) + i - 1]);
        IF bytes = 0 OR bytes > 1000 THEN
            RAISE EXCEPTION 'revoke_incident: user_ids[%] is %', i,
                            CASE WHEN bytes = 0 THEN 'empty' ELSE 'longer than 1000 bytes' END
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Account ids are between 1 and 1000 bytes.';
        END IF;
    END LOOP;
    PERFORM FROM ato.revoke_incident_shards(user_ids, reason, suspend, reauth_required,
                                            mfa_reenrollment_required, password_reset_required,
                                            delete_created_after, incident);
    RETURN incident;
END;
$$;
COMMENT ON FUNCTION ato.revoke_incident(text[], text, boolean, boolean, boolean, boolean, timestamptz, uuid) IS
    'ato.revoke_incident() on every shard holding some of the accounts, each given only its own, after checking the accounts as one node does, under one incident id (incident_id, or a new one), which it returns; each shard commits alone: when one fails the others stay revoked, and a call again with the same id and accounts does nothing again where it was done and the rest where it was not';
REVOKE ALL ON FUNCTION ato.revoke_incident(text[], text, boolean, boolean, boolean, boolean, timestamptz, uuid) FROM PUBLIC;

-- The proxy's view of an incident's progress: per partition, the accounts
-- of the call that belong there and whether that shard has revoked them
-- under the id.  A shard that cannot be reached is reported, not raised.
CREATE FUNCTION ato.incident_accounts_on(partition_number integer, incident_id uuid)
RETURNS text[]
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON partition_number;
    SELECT (SELECT i.user_ids FROM ato.incidents i WHERE i.id = $2);
$$;
COMMENT ON FUNCTION ato.incident_accounts_on(integer, uuid) IS
    'For ato.incident_progress(): the accounts of the incident on partition partition_number (NULL when it has no such incident); the role of the user mapping reads ato.incidents there';
REVOKE ALL ON FUNCTION ato.incident_accounts_on(integer, uuid) FROM PUBLIC;

CREATE FUNCTION ato.incident_progress(incident_id uuid, user_ids text[])
RETURNS TABLE (partition_number integer, accounts text[], done boolean, error text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    shards constant integer := ato.shard_count();
    mine text[];
    got text[];
BEGIN
    IF incident_id IS NULL OR user_ids IS NULL THEN
        RAISE EXCEPTION 'incident_progress: % must not be NULL', CASE WHEN incident_id IS NULL THEN 'incident_id' ELSE 'user_ids' END
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the incident id and the accounts of the ato.revoke_incident() call.';
    END IF;
    FOR p IN 0 .. shards - 1 LOOP
        mine := ARRAY(SELECT DISTINCT u FROM unnest(user_ids) u
                       WHERE u IS NOT NULL AND ato.shard_hash(u) & (shards - 1) = p ORDER BY u);
        CONTINUE WHEN cardinality(mine) = 0;
        partition_number := p;
        accounts := mine;
        BEGIN
            got := ato.incident_accounts_on(p, incident_progress.incident_id);
            done := got IS NOT NULL AND mine <@ got;
            error := NULL;
        EXCEPTION WHEN OTHERS THEN
            done := NULL;
            error := SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION ato.incident_progress(uuid, text[]) IS
    'Which shards have done their part of a revocation: per partition holding some of user_ids, its accounts and whether its shard has revoked them under incident_id (done NULL, and the error, when the shard cannot be asked); retry ato.revoke_incident() with the same id and accounts until every row is done';
REVOKE ALL ON FUNCTION ato.incident_progress(uuid, text[]) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Event ids: each shard its own range (ato.set_shard_event_ids() on the
-- shards, which says which bits), set from here once the cluster is defined.
-- ---------------------------------------------------------------------------

CREATE FUNCTION ato.set_shard_event_ids_on(partition_number integer)
RETURNS bigint
LANGUAGE plproxy
AS $$
    CLUSTER 'ato_cluster';
    RUN ON partition_number;
    SELECT ato.set_shard_event_ids($1);
$$;
COMMENT ON FUNCTION ato.set_shard_event_ids_on(integer) IS
    'For ato.set_shard_event_ids(): ato.set_shard_event_ids(partition_number) on that partition''s shard';
REVOKE ALL ON FUNCTION ato.set_shard_event_ids_on(integer) FROM PUBLIC;

CREATE FUNCTION ato.set_shard_event_ids()
RETURNS TABLE (partition_number integer, first_id bigint)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p, ato.set_shard_event_ids_on(p) FROM generate_series(0, ato.shard_count() - 1) p ORDER BY p
$$;
COMMENT ON FUNCTION ato.set_shard_event_ids() IS
    'Gives every shard of ato_cluster its own range of event ids (partition p: from ((p + 1) << 48) + 1 on), so that ids never collide across shards; returns each range''s first id; call it once after CREATE SERVER, and again after adding partitions or restoring a shard';
REVOKE ALL ON FUNCTION ato.set_shard_event_ids() FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Cross-shard rules: the detections of sources (credential stuffing,
-- password spray), which no shard can run alone, run here; their alerts stay
-- here.  Per-account rules stay on the shards' own workers.
-- ---------------------------------------------------------------------------

CREATE TABLE ato.alerts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule text NOT NULL CHECK (rule IN ('credential_stuffing', 'password_spray')),
    finding text NOT NULL,
    evidence jsonb NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (rule, finding)
);
COMMENT ON TABLE ato.alerts IS
    'The proxy''s alerts: what the cross-shard rules (ato.run_proxy_rules()) found over every shard, one row per rule and finding (the source), its latest evidence and when it was first and last seen';
SELECT pg_catalog.pg_extension_config_dump('ato.alerts', '');
REVOKE ALL ON TABLE ato.alerts FROM PUBLIC;

CREATE FUNCTION ato.run_proxy_rules(
    lookback                 interval         DEFAULT interval '1 hour',
    min_attempts             integer          DEFAULT 20,
    max_success_rate         double precision DEFAULT 0.05,
    min_accounts             integer          DEFAULT 10,
    max_attempts_per_account double precision DEFAULT 3)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    since constant timestamptz := now() - lookback;
    new_alerts integer := 0;
    n integer;
BEGIN
    IF lookback IS NULL OR lookback < interval '0' THEN
        RAISE EXCEPTION 'run_proxy_rules: lookback must %', CASE WHEN lookback IS NULL THEN 'not be NULL' ELSE 'not be negative' END
            USING ERRCODE = CASE WHEN lookback IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END,
                  HINT = 'Give how far back each run reads, such as interval ''1 hour''.';
    END IF;
    -- the detections check their thresholds; the findings are upserted, the
    -- new ones announced on channel ato_proxy_alerts (of the proxy)
    WITH found AS (
        SELECT 'credential_stuffing' AS rule, r.source_kind || ' ' || r.source AS finding, to_jsonb(r) AS evidence
          FROM ato.credential_stuffing(since, min_attempts, max_success_rate) r WHERE r.suspicious
        UNION ALL
        SELECT 'password_spray', host(r.ip_address), to_jsonb(r)
          FROM ato.password_spray(since, min_accounts, max_attempts_per_account) r),
    upserted AS (
        INSERT INTO ato.alerts AS a (rule, finding, evidence)
        SELECT f.rule, f.finding, f.evidence FROM found f
        ON CONFLICT (rule, finding) DO UPDATE SET evidence = excluded.evidence, last_seen_at = now()
        RETURNING a.id, a.rule, a.finding, (a.xmax = 0) AS inserted)
    SELECT count(*) FILTER (WHERE u.inserted),
           count(pg_notify('ato_proxy_alerts', json_build_object('alert', u.id, 'rule', u.rule, 'finding', left(u.finding, 200))::text))
               FILTER (WHERE u.inserted)
      INTO new_alerts, n
      FROM upserted u;
    RETURN new_alerts;
END;
$$;
COMMENT ON FUNCTION ato.run_proxy_rules(interval, integer, double precision, integer, double precision) IS
    'Runs the cross-shard rules once over the events since now() - lookback on every shard: credential_stuffing (the suspicious sources) and password_spray, with their thresholds; upserts the findings into ato.alerts of the proxy and announces the new ones on channel ato_proxy_alerts; returns how many are new; schedule it with pg_cron on the proxy';
REVOKE ALL ON FUNCTION ato.run_proxy_rules(interval, integer, double precision, integer, double precision) FROM PUBLIC;
