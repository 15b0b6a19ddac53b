-- The rest of the hunt kit against independent plain-SQL definitions on the
-- same data: credential stuffing, password spray, failed-login bursts,
-- listed networks, persistence changes, related accounts.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION ato_response CASCADE;
CREATE EXTENSION ato_response;
SELECT ato.create_event_partitions('2024-05-01', '2024-05-31') AS created;

-- Ordinary traffic: 200 accounts logging in from home over a day, each from
-- an address of its own, with the few browsers everybody has.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, user_agent)
SELECT 'u' || (i % 200), '198.18.0.0'::inet + (i % 200),
       CASE WHEN i % 17 = 0 THEN 'failure' ELSE 'success' END,
       timestamptz '2024-05-10' + i * interval '1 minute',
       'Mozilla/5.0 Chrome/' || (120 + i % 3)
  FROM generate_series(0, 1439) i;
-- Credential stuffing from 5.188.10.0/24: 600 attempts on 400 accounts, 2% succeed.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, user_agent)
SELECT 'u' || (i % 400), ('5.188.10.' || (1 + i % 50))::inet,
       CASE WHEN i % 50 = 7 THEN 'success' ELSE 'failure' END,
       timestamptz '2024-05-10 12:00' + i * interval '5 seconds', 'python-requests/2.31'
  FROM generate_series(0, 599) i;
-- A password spray from one IPv6 address: 40 accounts, one try each, all fail.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
SELECT 'u' || i, '2001:4860:4860::8888', 'failure', timestamptz '2024-05-10 13:00' + i * interval '30 seconds'
  FROM generate_series(0, 39) i;
-- One account gets in through a Tor exit.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ('u20', '2001:4860:4860::1', 'success', '2024-05-10 13:30');
-- Brute force: 15 failures against one account in 4 minutes, then a success;
-- and a slow one: 12 failures over 2 hours, never more than 3 in 10 minutes.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
SELECT 'u7', ('133.11.0.' || (1 + i % 3))::inet, 'failure', timestamptz '2024-05-10 14:00' + i * interval '16 seconds'
  FROM generate_series(0, 14) i;
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ('u7', '133.11.0.9', 'success', '2024-05-10 14:05');
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
SELECT 'u8', '133.11.0.5', 'failure', timestamptz '2024-05-10 15:00' + i * interval '10 minutes'
  FROM generate_series(0, 11) i;
-- Rare user agents: the attacker's tool, used by u11 and u12 only.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, user_agent)
VALUES ('u11', '203.0.113.50', 'success', '2024-05-10 16:00', 'AttackTool/0.9'),
       ('u12', '198.51.100.70', 'success', '2024-05-10 16:10', 'AttackTool/0.9');

-- Audit events: persistence and ordinary ones.
INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address, target_type, target_id) VALUES
    ('u1', 'user.mfa.factor.activate', '2024-05-10 12:30', '5.188.10.8', 'factor', 'f-1'),
    ('u1', 'user.mfa.factor.update_phone', '2024-05-10 12:31', '5.188.10.8', 'factor', 'f-2'),
    ('u1', 'system.api_token.create', '2024-05-10 12:32', '5.188.10.8', 'token', 't-1'),
    ('u2', 'application.user_membership.add', '2024-05-10 12:40', '5.188.10.9', 'app', 'payroll'),
    ('u2', 'user.account.update_recovery_email', '2024-05-10 12:41', '5.188.10.9', 'user', 'u2'),
    ('u2', 'app.viewed', '2024-05-10 12:42', '5.188.10.9', 'app', 'payroll'),
    ('u3', 'user.mfa.factor.deactivate', '2024-05-09 10:00', '8.8.8.8', 'factor', 'f-3'),
    ('u3', 'user.session.start', '2024-05-10 10:00', '8.8.8.8', NULL, NULL);

-- Listed networks, loaded as a feed would be.
COPY ato.listed_networks (network, label, source, expires_at) FROM STDIN;
5.188.10.0/24	stuffing-botnet	internal	\N
133.11.0.0/16	hosting	vendor-feed	2024-05-10 14:03+00
2001:4860::/32	tor-exit	torproject	\N
203.0.113.0/24	old-entry	vendor-feed	2024-01-01 00:00+00
\.

-- credential_stuffing: three plain GROUP BYs.
CREATE FUNCTION pg_temp.plain_stuffing(since timestamptz, min_attempts int, max_rate float8)
RETURNS TABLE (source_kind text, source text, attempts bigint, successes bigint, success_rate float8, accounts bigint, suspicious boolean)
LANGUAGE sql AS $$
    WITH g AS (
        SELECT 'address' AS k, host(ip_address) AS s, count(*) AS n, count(*) FILTER (WHERE outcome = 'success') AS ok,
               count(DISTINCT user_id) AS a
          FROM ato.login_events WHERE occurred_at >= since AND ip_address IS NOT NULL GROUP BY ip_address
        UNION ALL
        SELECT 'network', network(set_masklen(ip_address, CASE family(ip_address) WHEN 4 THEN 24 ELSE 48 END))::text,
               count(*), count(*) FILTER (WHERE outcome = 'success'), count(DISTINCT user_id)
          FROM ato.login_events WHERE occurred_at >= since AND ip_address IS NOT NULL GROUP BY 2
        UNION ALL
        SELECT 'asn', 'AS' || asn, count(*), count(*) FILTER (WHERE outcome = 'success'), count(DISTINCT user_id)
          FROM ato.login_events WHERE occurred_at >= since AND ip_address IS NOT NULL AND asn IS NOT NULL GROUP BY asn)
    SELECT k, s, n, ok, ok::float8 / n, a, ok::float8 / n <= max_rate FROM g WHERE n >= min_attempts
$$;
CREATE FUNCTION pg_temp.plain_spray(since timestamptz, min_accounts int, max_per_account float8)
RETURNS TABLE (ip_address inet, accounts bigint, failures bigint, successes bigint, attempts_per_account float8,
               first_attempt timestamptz, last_attempt timestamptz)
LANGUAGE sql AS $$
    SELECT l.ip_address,
           (SELECT count(DISTINCT f.user_id) FROM ato.login_events f
             WHERE f.ip_address = l.ip_address AND f.occurred_at >= since AND f.outcome = 'failure'),
           count(*) FILTER (WHERE l.outcome = 'failure'), count(*) FILTER (WHERE l.outcome = 'success'),
           count(*)::float8 / count(DISTINCT l.user_id), min(l.occurred_at), max(l.occurred_at)
      FROM ato.login_events l WHERE l.occurred_at >= since AND l.ip_address IS NOT NULL
     GROUP BY l.ip_address
    HAVING (SELECT count(DISTINCT f.user_id) FROM ato.login_events f
             WHERE f.ip_address = l.ip_address AND f.occurred_at >= since AND f.outcome = 'failure') >= min_accounts
       AND count(*)::float8 / count(DISTINCT l.user_id) <= max_per_account
$$;
CREATE FUNCTION pg_temp.plain_bursts(since timestamptz, min_failures int, burst_window interval)
RETURNS TABLE (user_id text, failures bigint, burst bigint, sources bigint, first_failure timestamptz,
               last_failure timestamptz, later_success timestamptz)
LANGUAGE sql AS $$
    WITH f AS (SELECT * FROM ato.login_events WHERE occurred_at >= since AND outcome = 'failure'),
         per_failure AS (
             SELECT f.user_id, f.occurred_at,
                    (SELECT count(*) FROM f g WHERE g.user_id = f.user_id
                       AND g.occurred_at BETWEEN f.occurred_at - burst_window AND f.occurred_at) AS in_burst
               FROM f)
    SELECT p.user_id, (SELECT count(*) FROM f WHERE f.user_id = p.user_id), max(p.in_burst),
           (SELECT count(DISTINCT ip_address) FROM f WHERE f.user_id = p.user_id),
           min(p.occurred_at), max(p.occurred_at),
           (SELECT min(s.occurred_at) FROM ato.login_events s
             WHERE s.user_id = p.user_id AND s.outcome = 'success' AND s.occurred_at >= min(p.occurred_at)
               AND s.occurred_at >= since)
      FROM per_failure p GROUP BY p.user_id HAVING max(p.in_burst) >= min_failures
$$;
CREATE FUNCTION pg_temp.plain_listed(since timestamptz, labels text[])
RETURNS TABLE (user_id text, ip_address inet, occurred_at timestamptz, network cidr, label text, source text)
LANGUAGE sql AS $$
    SELECT l.user_id, l.ip_address, l.occurred_at, n.network, n.label, n.source
      FROM ato.login_events l, ato.listed_networks n
     WHERE l.occurred_at >= since AND l.outcome = 'success' AND l.ip_address <<= n.network
       AND coalesce(n.expires_at > l.occurred_at, true) AND (labels IS NULL OR n.label IN (SELECT unnest(labels)))
$$;
CREATE FUNCTION pg_temp.plain_persistence(user_ids text[], since timestamptz)
RETURNS TABLE (actor_id text, category text, event_type text, occurred_at timestamptz, ip_address inet,
               country_code text, target_type text, target_id text)
LANGUAGE sql AS $$
    SELECT a.actor_id,
           (SELECT p.category FROM ato.persistence_event_types p WHERE a.event_type LIKE p.pattern
             ORDER BY length(p.pattern) DESC, p.pattern LIMIT 1),
           a.event_type, a.occurred_at, a.ip_address, a.country_code, a.target_type, a.target_id
      FROM ato.audit_events a
     WHERE a.occurred_at >= since AND (user_ids IS NULL OR a.actor_id IN (SELECT unnest(user_ids)))
       AND EXISTS (SELECT FROM ato.persistence_event_types p WHERE a.event_type LIKE p.pattern)
$$;
CREATE FUNCTION pg_temp.plain_related(user_ids text[], since timestamptz, rare int)
RETURNS TABLE (user_id text, shared_addresses inet[], shared_user_agents text[], related_to text[],
               logins bigint, first_login timestamptz, last_login timestamptz)
LANGUAGE sql AS $$
    WITH s AS (SELECT * FROM ato.login_events WHERE occurred_at >= since AND outcome = 'success'),
         rare_ua AS (SELECT user_agent FROM s GROUP BY user_agent HAVING count(DISTINCT user_id) <= rare),
         pairs AS (
             SELECT o.id, o.user_id, o.occurred_at, g.user_id AS given,
                    CASE WHEN o.ip_address = g.ip_address THEN o.ip_address END AS addr,
                    CASE WHEN o.user_agent = g.user_agent AND o.user_agent IN (SELECT user_agent FROM rare_ua)
                         THEN o.user_agent END AS ua
               FROM s o JOIN s g ON g.user_id IN (SELECT unnest(user_ids))
                                AND (o.ip_address = g.ip_address
                                     OR (o.user_agent = g.user_agent AND o.user_agent IN (SELECT user_agent FROM rare_ua)))
              WHERE o.user_id NOT IN (SELECT u FROM unnest(user_ids) u WHERE u IS NOT NULL))
    SELECT user_id,
           coalesce(array_agg(DISTINCT addr ORDER BY addr) FILTER (WHERE addr IS NOT NULL), '{}'),
           coalesce(array_agg(DISTINCT ua ORDER BY ua) FILTER (WHERE ua IS NOT NULL), '{}'),
           array_agg(DISTINCT given ORDER BY given), count(DISTINCT id), min(occurred_at), max(occurred_at)
      FROM pairs GROUP BY user_id
$$;

-- diff(a, b): rows of one query's answer missing from the other's, both ways
CREATE FUNCTION pg_temp.differences(a text, b text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM ((%s EXCEPT ALL %s) UNION ALL (%s EXCEPT ALL %s)) d', a, b, b, a) INTO n;
    RETURN n;
END $$;

SELECT label, (SELECT count(*) FROM ato.credential_stuffing(since, m, r)) AS rows,
       (SELECT count(*) FROM ato.credential_stuffing(since, m, r) WHERE suspicious) AS suspicious,
       pg_temp.differences(format('SELECT * FROM ato.credential_stuffing(%L, %s, %s)', since, m, r),
                           format('SELECT * FROM pg_temp.plain_stuffing(%L, %s, %s)', since, m, r)) AS differences
  FROM (VALUES ('defaults', timestamptz '2024-05-10', 20, 0.05::float8),
               ('every source', '2024-05-10', 1, 1), ('strict', '2024-05-10 12:00', 100, 0.01),
               ('future', '2030-01-01', 1, 0.5)) v(label, since, m, r);
SELECT source_kind, source, attempts, successes, round(success_rate::numeric, 3) AS rate, accounts, suspicious
  FROM ato.credential_stuffing('2024-05-10', 300, 0.05);

SELECT label, (SELECT count(*) FROM ato.password_spray(since, m, r)) AS rows,
       pg_temp.differences(format('SELECT * FROM ato.password_spray(%L, %s, %s)', since, m, r),
                           format('SELECT * FROM pg_temp.plain_spray(%L, %s, %s)', since, m, r)) AS differences
  FROM (VALUES ('defaults', timestamptz '2024-05-10', 10, 3::float8), ('loose', '2024-05-10', 2, 100),
               ('strict', '2024-05-10', 30, 1), ('future', '2030-01-01', 1, 3)) v(label, since, m, r);
SELECT ip_address, accounts, failures, successes, attempts_per_account
  FROM ato.password_spray('2024-05-10', 30, 1.5);

SELECT label, (SELECT count(*) FROM ato.failed_login_bursts(since, m, w)) AS rows,
       pg_temp.differences(format('SELECT * FROM ato.failed_login_bursts(%L, %s, %L)', since, m, w),
                           format('SELECT * FROM pg_temp.plain_bursts(%L, %s, %L)', since, m, w)) AS differences
  FROM (VALUES ('defaults', timestamptz '2024-05-10', 10, interval '10 minutes'),
               ('two hours', '2024-05-10', 10, '2 hours'), ('any failure', '2024-05-10', 1, '0'),
               ('from 14:02', '2024-05-10 14:02', 5, '10 minutes')) v(label, since, m, w);
SELECT user_id, failures, burst, sources, first_failure, later_success
  FROM ato.failed_login_bursts('2024-05-10', 10, '10 minutes');

SELECT label, (SELECT count(*) FROM ato.listed_network_logins(since, l)) AS rows,
       pg_temp.differences(format('SELECT * FROM ato.listed_network_logins(%L, %L)', since, l),
                           format('SELECT * FROM pg_temp.plain_listed(%L, %L)', since, l)) AS differences
  FROM (VALUES ('all', timestamptz '2024-05-10', NULL::text[]), ('tor only', '2024-05-10', '{tor-exit}'),
               ('no labels', '2024-05-10', '{}'), ('unknown label', '2024-05-10', '{nothing}')) v(label, since, l);
-- the hosting listing expired at 14:03, before u7's successful login at 14:05;
-- the old entry expired before u11 came from its network
SELECT label, count(*) FROM ato.listed_network_logins('2024-05-10') GROUP BY label ORDER BY label;
-- with nothing listed there is nothing to find (and the window is not read)
BEGIN;
DELETE FROM ato.listed_networks;
SELECT count(*) AS nothing_listed FROM ato.listed_network_logins('2024-05-10');
ROLLBACK;

SELECT label, (SELECT count(*) FROM ato.persistence_changes(u, since)) AS rows,
       pg_temp.differences(format('SELECT * FROM ato.persistence_changes(%L, %L)', u, since),
                           format('SELECT * FROM pg_temp.plain_persistence(%L, %L)', u, since)) AS differences
  FROM (VALUES ('everyone', NULL::text[], timestamptz '2024-05-01'), ('u1 and u2', '{u1,u2,u2}', '2024-05-10'),
               ('nobody', '{}', '2024-05-01'), ('NULL element', '{NULL,u3}', '2024-05-01')) v(label, u, since);
SELECT actor_id, category, event_type, target_id FROM ato.persistence_changes(NULL, '2024-05-01');
INSERT INTO ato.persistence_event_types (pattern, category) VALUES ('app.viewed', 'custom');
SELECT actor_id, category, event_type FROM ato.persistence_changes('{u2}', '2024-05-01') WHERE category = 'custom';

SELECT label, (SELECT count(*) FROM ato.related_accounts(u, since, r)) AS rows,
       pg_temp.differences(format('SELECT * FROM ato.related_accounts(%L, %L, %s)', u, since, r),
                           format('SELECT * FROM pg_temp.plain_related(%L, %L, %s)', u, since, r)) AS differences
  FROM (VALUES ('a stuffed account', '{u7}'::text[], timestamptz '2024-05-10', 5),
               ('the attacker tool', '{u11}', '2024-05-10', 5), ('common agents too', '{u11}', '2024-05-10', 1000),
               ('duplicates and NULL', '{u7,u7,NULL,nobody}', '2024-05-10', 5), ('none', '{}', '2024-05-10', 5))
       v(label, u, since, r);
SELECT user_id, shared_addresses, shared_user_agents, related_to, logins
  FROM ato.related_accounts('{u11}', '2024-05-10', 5);

-- Impossible travel.  The bundled database has countries but no coordinates,
-- so logins are placed at their country's centre.  A traveller goes from
-- Britain to Australia in an hour; a commuter from Germany to the
-- Netherlands (close); a slow traveller from Britain to Australia in 23
-- hours; a VPN user hops between two countries he has long used; a new
-- account logs in once.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at) VALUES
    ('vpn', '8.8.8.8', 'success', '2024-05-05 09:00'), ('vpn', '85.214.132.117', 'success', '2024-05-05 10:00'),
    ('traveller', '81.2.69.160', 'success', '2024-05-11 10:00'), ('traveller', '1.1.1.1', 'success', '2024-05-11 11:00'),
    ('traveller', '1.1.1.1', 'failure', '2024-05-11 11:05'), ('traveller', '81.2.69.160', 'success', '2024-05-11 11:30'),
    ('commuter', '85.214.132.117', 'success', '2024-05-11 10:00'), ('commuter', '2a02:2770::1', 'success', '2024-05-11 10:30'),
    ('slow', '81.2.69.160', 'success', '2024-05-11 00:00'), ('slow', '1.1.1.1', 'success', '2024-05-11 23:00'),
    ('vpn', '8.8.8.8', 'success', '2024-05-11 09:00'), ('vpn', '85.214.132.117', 'success', '2024-05-11 09:10'),
    ('vpn', '8.8.8.8', 'success', '2024-05-11 09:20'), ('fresh', '133.11.0.1', 'success', '2024-05-11 12:00');
-- Coordinates given with the event (as a city database would give them) are
-- used as they are: Paris, then New York an hour later.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, latitude, longitude) VALUES
    ('located', '192.0.2.10', 'success', '2024-05-11 10:00', 48.8566, 2.3522),
    ('located', '192.0.2.11', 'success', '2024-05-11 11:00', 40.7128, -74.0060);
CREATE FUNCTION pg_temp.plain_travel(since timestamptz, max_speed float8, min_distance float8, lookback interval)
RETURNS TABLE (user_id text, from_ip inet, from_country text, from_at timestamptz, to_ip inet, to_country text,
               to_at timestamptz, distance_km numeric, speed_kmh numeric, approximate boolean)
LANGUAGE sql AS $$
    WITH l AS (
        SELECT e.id, e.user_id, e.ip_address, e.country_code, e.occurred_at,
               coalesce(e.latitude, c.latitude) AS lat, coalesce(e.longitude, c.longitude) AS lon,
               e.latitude IS NULL OR e.longitude IS NULL AS approx
          FROM ato.login_events e LEFT JOIN ato.country_centroids c ON c.country_code = e.country_code
         WHERE e.outcome = 'success' AND e.occurred_at >= since - lookback
           AND coalesce(e.latitude, c.latitude) IS NOT NULL),
    legs AS (
        SELECT b.user_id, a.ip_address AS from_ip, a.country_code AS from_country, a.occurred_at AS from_at,
               b.ip_address AS to_ip, b.country_code AS to_country, b.occurred_at AS to_at, a.approx OR b.approx AS approx,
               -- spherical law of cosines, not the haversine of the function
               6371.0088 * acos(least(1, sin(radians(a.lat)) * sin(radians(b.lat))
                                      + cos(radians(a.lat)) * cos(radians(b.lat)) * cos(radians(b.lon - a.lon)))) AS km,
               greatest(extract(epoch FROM b.occurred_at - a.occurred_at)::float8, 1) / 3600 AS hours
          FROM l b JOIN l a ON a.user_id = b.user_id AND (a.occurred_at, a.id) < (b.occurred_at, b.id)
         WHERE b.occurred_at >= since
           AND NOT EXISTS (SELECT FROM l m WHERE m.user_id = b.user_id
                              AND (m.occurred_at, m.id) > (a.occurred_at, a.id) AND (m.occurred_at, m.id) < (b.occurred_at, b.id)))
    SELECT user_id, from_ip, from_country, from_at, to_ip, to_country, to_at,
           round(km::numeric, 3), round((km / hours)::numeric, 3), approx
      FROM legs
     WHERE km >= min_distance AND km / hours > max_speed
       AND (to_country IS NULL OR to_country NOT IN (
              SELECT e.country_code FROM ato.login_events e WHERE e.user_id = legs.user_id AND e.outcome = 'success'
                 AND e.occurred_at < since AND e.country_code IS NOT NULL))
$$;
SELECT label, (SELECT count(*) FROM ato.impossible_travel(since, v, d, b)) AS rows,
       pg_temp.differences(
           format('SELECT user_id, from_ip, from_country, from_at, to_ip, to_country, to_at, round(distance_km::numeric, 3), round(speed_kmh::numeric, 3), approximate FROM ato.impossible_travel(%L, %s, %s, %L)', since, v, d, b),
           format('SELECT * FROM pg_temp.plain_travel(%L, %s, %s, %L)', since, v, d, b)) AS differences
  FROM (VALUES ('defaults', timestamptz '2024-05-11', 900::float8, 500::float8, interval '24 hours'),
               ('slower', '2024-05-11', 100, 500, '24 hours'), ('any distance', '2024-05-11', 100, 0, '24 hours'),
               ('long lookback', '2024-05-11', 900, 500, '30 days'), ('future', '2030-01-01', 900, 500, '1 day'))
       v(label, since, v, d, b);
-- Again with the summaries up to 2024-05-11 and up to 10:30 on it: from the
-- watermark on, each account's login before it comes from
-- ato.account_last_logins (the 30-day lookback reaches the VPN user's logins
-- of 5 May there), before it from the event store.
SELECT ato.refresh_summaries('2024-05-11') > 0 AS summarised;
SELECT user_id, country_code, occurred_at, approximate FROM ato.account_last_logins ORDER BY user_id;
SELECT label, (SELECT count(*) FROM ato.impossible_travel(since, v, d, b)) AS rows,
       pg_temp.differences(
           format('SELECT user_id, from_ip, from_country, from_at, to_ip, to_country, to_at, round(distance_km::numeric, 3), round(speed_kmh::numeric, 3), approximate FROM ato.impossible_travel(%L, %s, %s, %L)', since, v, d, b),
           format('SELECT * FROM pg_temp.plain_travel(%L, %s, %s, %L)', since, v, d, b)) AS differences
  FROM (VALUES ('summarised: defaults', timestamptz '2024-05-11', 900::float8, 500::float8, interval '24 hours'),
               ('summarised: any distance', '2024-05-11', 100, 0, '24 hours'),
               ('summarised: long lookback', '2024-05-11', 900, 500, '30 days'),
               ('summarised: long lookback, any distance', '2024-05-11', 100, 0, '30 days'),
               ('summarised: later since', '2024-05-11 10:15', 100, 0, '30 days'))
       v(label, since, v, d, b);
SELECT ato.refresh_summaries('2024-05-11 10:30') > 0 AS summarised_further;
SELECT label, pg_temp.differences(
           format('SELECT user_id, from_ip, from_country, from_at, to_ip, to_country, to_at, round(distance_km::numeric, 3), round(speed_kmh::numeric, 3), approximate FROM ato.impossible_travel(%L, %s, %s, %L)', since, v, d, b),
           format('SELECT * FROM pg_temp.plain_travel(%L, %s, %s, %L)', since, v, d, b)) AS differences
  FROM (VALUES ('since before the watermark', timestamptz '2024-05-11', 100::float8, 0::float8, interval '30 days'),
               ('since after it', '2024-05-11 10:45', 100, 0, '30 days'))
       v(label, since, v, d, b);
SELECT user_id, from_country, to_country, to_at, round(distance_km) AS km, round(speed_kmh) AS kmh, approximate
  FROM ato.impossible_travel('2024-05-11');
SELECT user_id, from_country, to_country, round(distance_km) AS km
  FROM ato.impossible_travel('2024-05-11', 100, 0) ORDER BY user_id, to_at;

-- Bad arguments.
\set VERBOSITY default
SELECT * FROM ato.credential_stuffing(NULL);
SELECT * FROM ato.credential_stuffing('2024-05-10', 0);
SELECT * FROM ato.credential_stuffing('2024-05-10', 10, 1.5);
SELECT * FROM ato.credential_stuffing('2024-05-10', 10, 'NaN');
SELECT * FROM ato.password_spray('2024-05-10', NULL);
SELECT * FROM ato.password_spray('2024-05-10', 5, 0.5);
SELECT * FROM ato.failed_login_bursts('2024-05-10', 5, '-1 minute');
SELECT * FROM ato.failed_login_bursts('2024-05-10', -5);
SELECT * FROM ato.listed_network_logins(NULL);
SELECT * FROM ato.listed_network_logins('2024-05-10', '{{tor},{vpn}}');
SELECT * FROM ato.persistence_changes('{{a},{b}}');
SELECT * FROM ato.related_accounts(NULL);
SELECT * FROM ato.related_accounts('{u1}', '2024-05-10', 0);
SELECT * FROM ato.impossible_travel('2024-05-11', 0);
SELECT * FROM ato.impossible_travel('2024-05-11', 900, -1);
SELECT * FROM ato.impossible_travel('2024-05-11', 900, 500, NULL);

-- Listing by hand: replacing a listing, refusing bad input, unlisting.
SELECT ato.list_network('203.0.113.0/24', 'manual', 'drill');
SELECT ato.list_network('203.0.113.0/24', 'manual', 'drill, again', now() + interval '1 day');
SELECT network, label, source, expires_at IS NOT NULL AS expires FROM ato.listed_networks WHERE label = 'manual';
SELECT ato.list_network(NULL, 'manual');
SELECT ato.list_network('203.0.113.0/24', '');
SELECT ato.list_network('203.0.113.0/24', 'manual', NULL, '2000-01-01 00:00+00');
SELECT ato.unlist_network('203.0.113.0/24', 'other label');
SELECT ato.unlist_network('203.0.113.0/24');

-- What the identity provider itself says: a success it flagged (risk high,
-- an anonymising proxy, a suspected threat), and one session used from two
-- networks at once.  Stored as ato.import_events() stores them (metadata's
-- risk; session_id).  NULL windows are refused.
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, session_id, metadata) VALUES
    ('flagged-1', '81.2.69.160', 'success', '2024-05-20 10:00', 's-a', '{"provider": "okta", "risk": {"level": "HIGH", "proxy": false}}'),
    ('flagged-2', '81.2.69.161', 'success', '2024-05-20 10:01', NULL, '{"provider": "okta", "risk": {"level": "LOW", "proxy": true}}'),
    ('flagged-3', '81.2.69.162', 'success', '2024-05-20 10:02', NULL, '{"provider": "entra", "risk": {"level": "none", "anonymizer": true}}'),
    ('calm-1',    '81.2.69.163', 'success', '2024-05-20 10:03', NULL, '{"provider": "okta", "risk": {"level": "LOW", "proxy": false}}'),
    ('denied-1',  '81.2.69.164', 'failure', '2024-05-20 10:04', NULL, '{"provider": "okta", "risk": {"level": "HIGH"}}'),
    ('hijacked',  '81.2.69.165', 'success', '2024-05-20 11:00', 's-b', NULL),
    ('hijacked',  '8.8.8.8',     'success', '2024-05-20 11:20', 's-b', NULL),
    ('steady',    '81.2.69.166', 'success', '2024-05-20 11:00', 's-c', NULL),
    ('steady',    '81.2.69.167', 'success', '2024-05-20 11:30', 's-c', NULL);
SELECT user_id, risk_level, proxy, anonymizer FROM ato.provider_flagged_logins('2024-05-20') ORDER BY occurred_at;
SELECT session_id, user_id, networks, countries FROM ato.session_hijacks('2024-05-20');
-- the same by plain SQL: sessions with more than one country among their events
SELECT session_id, count(DISTINCT country_code) AS countries FROM ato.login_events
 WHERE occurred_at >= '2024-05-20' AND session_id IS NOT NULL GROUP BY 1 HAVING count(DISTINCT country_code) > 1;
SELECT ato.provider_flagged_logins(NULL);
SELECT ato.session_hijacks(NULL);
-- both are rules, on by default: a hunt over the day raises their alerts
SELECT ato.run_detection('session_hijacks', hunt_since => '2024-05-20') AS hijack_findings,
       ato.run_detection('provider_flagged_logins', hunt_since => '2024-05-20') AS flagged_findings;
SELECT rule, finding, accounts FROM ato.alerts
 WHERE rule IN ('session_hijacks', 'provider_flagged_logins') ORDER BY rule, finding;

-- MFA fatigue: second-factor prompts as the import records them (metadata
-- mfa.challenge sent, denied, approved), on audit events (Okta, Auth0) and
-- on logins (Entra), against a plain definition by correlated subqueries on
-- the same data: for each approval, the prompts of its account after the
-- previous approval and within the window before it.  (No two events of an
-- account share a time here: the function puts an approval after the
-- prompts of its instant.)
CREATE FUNCTION pg_temp.prompt(u text, t text, c text, ip text DEFAULT '81.2.69.170', login boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF login THEN
        INSERT INTO ato.login_events (user_id, occurred_at, ip_address, outcome, metadata)
        VALUES (u, ('2024-05-21 ' || t)::timestamptz, ip::inet,
                CASE c WHEN 'approved' THEN 'success' WHEN 'sent' THEN 'challenge' ELSE 'failure' END,
                jsonb_build_object('provider', 'entra', 'mfa', jsonb_build_object('challenge', c)));
    ELSE
        INSERT INTO ato.audit_events (actor_id, occurred_at, ip_address, event_type, outcome, metadata)
        VALUES (u, ('2024-05-21 ' || t)::timestamptz, ip::inet, 'mfa.' || c,
                CASE c WHEN 'approved' THEN 'success' WHEN 'denied' THEN 'failure' END,
                jsonb_build_object('provider', 'okta', 'mfa', jsonb_build_object('challenge', c)));
    END IF;
END $$;
\o /dev/null
-- four pushes denied, the fifth approved, then the login it let through
SELECT pg_temp.prompt('fatigued', t, c, '5.188.10.' || (1 + n % 3))
  FROM (VALUES (1, '09:00', 'sent'), (2, '09:00:20', 'denied'), (3, '09:01', 'sent'), (4, '09:01:20', 'denied'),
               (5, '09:02', 'sent'), (6, '09:02:20', 'denied'), (7, '09:03', 'sent'), (8, '09:03:20', 'denied'),
               (9, '09:04', 'sent'), (10, '09:04:10', 'approved')) v(n, t, c);
INSERT INTO ato.login_events (user_id, occurred_at, ip_address, outcome)
VALUES ('fatigued', '2024-05-21 09:04:20', '5.188.10.1', 'success');
-- four pushes never answered (Auth0 logs only gd_send_pn), then one approved
SELECT pg_temp.prompt('ignored', t, c)
  FROM (VALUES ('10:00', 'sent'), ('10:01', 'sent'), ('10:02', 'sent'), ('10:03', 'sent'), ('10:05', 'approved')) v(t, c);
-- denials too far apart for the default window
SELECT pg_temp.prompt('slow', t, 'denied') FROM unnest('{12:00,12:06,12:12}'::text[]) t;
SELECT pg_temp.prompt('slow', '12:15', 'approved');
-- an owner who mistyped a code twice
SELECT pg_temp.prompt('typo', t, c) FROM (VALUES ('11:00', 'denied'), ('11:00:30', 'denied'), ('11:01', 'approved')) v(t, c);
-- Entra: sign-ins failing MFA (500121), then one getting through
SELECT pg_temp.prompt('entra-user', t, c, login => true)
  FROM (VALUES ('13:00', 'denied'), ('13:01', 'denied'), ('13:02', 'denied'), ('13:03', 'approved')) v(t, c);
-- approvals in between split the denials into runs too short
SELECT pg_temp.prompt('split', t, c)
  FROM (VALUES ('14:00', 'denied'), ('14:01', 'denied'), ('14:02', 'approved'), ('14:03', 'denied'),
               ('14:04', 'denied'), ('14:05', 'approved')) v(t, c);
-- denials never approved
SELECT pg_temp.prompt('refused', '15:0' || n, 'denied') FROM generate_series(0, 5) n;

\o
SELECT count(*) AS prompts FROM ato.audit_events WHERE metadata ? 'mfa';

CREATE FUNCTION pg_temp.plain_fatigue(since timestamptz, m int, w interval)
RETURNS TABLE (user_id text, approved_at timestamptz, denials bigint, unanswered bigint, first_prompt timestamptz, last_prompt timestamptz)
LANGUAGE sql AS $$
    WITH ev AS (
        SELECT actor_id AS u, occurred_at AS t, metadata #>> '{mfa,challenge}' AS c FROM ato.audit_events
         WHERE metadata #>> '{mfa,challenge}' IN ('sent', 'denied', 'approved')
        UNION ALL
        SELECT user_id, occurred_at, CASE WHEN outcome = 'success' THEN 'approved' ELSE metadata #>> '{mfa,challenge}' END
          FROM ato.login_events
         WHERE outcome = 'success' OR metadata #>> '{mfa,challenge}' IN ('sent', 'denied', 'approved')),
    ap AS (
        SELECT a.u, a.t, greatest(a.t - w, (SELECT max(p.t) FROM ev p WHERE p.u = a.u AND p.c = 'approved' AND p.t < a.t)) AS after
          FROM ev a WHERE a.c = 'approved' AND a.t >= since),
    counted AS (
        SELECT ap.u, ap.t,
               (SELECT count(*) FROM ev d WHERE d.u = ap.u AND d.c = 'denied' AND d.t > ap.after AND d.t < ap.t) AS denied,
               (SELECT count(*) FROM ev d WHERE d.u = ap.u AND d.c = 'sent' AND d.t > ap.after AND d.t < ap.t) AS sent,
               (SELECT min(d.t) FROM ev d WHERE d.u = ap.u AND d.c <> 'approved' AND d.t > ap.after AND d.t < ap.t) AS first_t,
               (SELECT max(d.t) FROM ev d WHERE d.u = ap.u AND d.c <> 'approved' AND d.t > ap.after AND d.t < ap.t) AS last_t
          FROM ap)
    SELECT u, t, denied, greatest(sent - 1, 0), first_t, last_t FROM counted WHERE greatest(denied, sent - 1) >= m
$$;
SELECT label, (SELECT count(*) FROM ato.mfa_fatigue_logins(since, m, w)) AS rows,
       pg_temp.differences(
           format('SELECT user_id, approved_at, denials, unanswered, first_prompt, last_prompt FROM ato.mfa_fatigue_logins(%L, %s, %L)', since, m, w),
           format('SELECT * FROM pg_temp.plain_fatigue(%L, %s, %L)', since, m, w)) AS differences
  FROM (VALUES ('defaults', timestamptz '2024-05-21', 3, interval '10 minutes'),
               ('since after the denials', '2024-05-21 09:04', 3, '10 minutes'),
               ('since after the approval', '2024-05-21 09:05', 3, '10 minutes'),
               ('two', '2024-05-21', 2, '10 minutes'),
               ('one, in 20 minutes', '2024-05-21', 1, '20 minutes'),
               ('strict', '2024-05-21', 5, '1 minute')) v(label, since, m, w);
SELECT user_id, approved_at, approval, ip_address, denials, unanswered, first_prompt, last_prompt, prompt_ips, provider
  FROM ato.mfa_fatigue_logins('2024-05-21');
SELECT user_id, approved_at, denials FROM ato.mfa_fatigue_logins('2024-05-21', 2, '20 minutes') ORDER BY approved_at;
\set VERBOSITY default
SELECT * FROM ato.mfa_fatigue_logins(NULL);
SELECT * FROM ato.mfa_fatigue_logins('2024-05-21', NULL);
SELECT * FROM ato.mfa_fatigue_logins('2024-05-21', -3);
SELECT * FROM ato.mfa_fatigue_logins('2024-05-21', 0);
SELECT * FROM ato.mfa_fatigue_logins('2024-05-21', 3, '-10 minutes');
SELECT * FROM ato.mfa_fatigue_logins('2024-05-21', 3, '0');
SELECT * FROM ato.mfa_fatigue_logins('infinity');
-- a rule, on by default: a hunt raises one alert per approval, naming its account
SELECT enabled, parameters, lookback FROM ato.detection_rules WHERE name = 'mfa_fatigue_logins';
SELECT ato.run_detection('mfa_fatigue_logins', hunt_since => '2024-05-21') AS fatigue_findings,
       ato.run_detection('mfa_fatigue_logins', hunt_since => '2024-05-21') AS again;
SELECT rule, finding, accounts, evidence ->> 'denials' AS denials FROM ato.alerts
 WHERE rule = 'mfa_fatigue_logins' ORDER BY finding;
