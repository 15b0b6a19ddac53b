-- generate.sql -- the benchmark data, written once per run as server-side
-- files so that every contender reads the very same bytes.
--
--   psql -v events_file=/path/events.csv -v events=1000000 \
--        -v addresses_file=/path/addresses.txt -v addresses=5000000 -f generate.sql
--
-- Deterministic: random() is seeded, and user ids, home addresses and agents
-- derive from the user number through hashint8().  Only occurred_at depends
-- on the day of the run (the :span_days days, 30 unless given, that end
-- :offset_days days, 0 unless given, before it).  Either file is skipped
-- when its count is 0.

\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS bench;

-- A public-looking IPv4 address from two numbers: the first octet from
-- 1-223 without 0, 10 (private) and 127 (loopback), the other 24 bits free.
-- A few addresses land in 100.64/10, 169.254/16, 172.16/12 or 192.168/16
-- and miss in GeoIP, as some addresses do in real logs.
CREATE OR REPLACE FUNCTION bench.v4(octet_pick bigint, rest bigint) RETURNS inet
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT '0.0.0.0'::inet + ((o + (o >= 10)::int + (o + (o >= 10)::int >= 127)::int)::bigint << 24)
                           + (rest & 16777215)
      FROM (SELECT 1 + (octet_pick & 2147483647) % 221 AS o) k
$$;

-- A public IPv6 address inside one of 24 large real allocations (ISPs,
-- mobile carriers, clouds on five continents), the low 96 bits free.
CREATE OR REPLACE FUNCTION bench.v6(prefix_pick bigint, a bigint, b bigint) RETURNS inet
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT format('%s:%s:%s:%s:%s:%s:%s',
                  (ARRAY['2a02:8108', '2003:e5', '2a01:4f8', '2a01:e0a', '2a01:cb00', '2a00:23c5',
                         '2a02:a44a', '2001:14ba', '2a00:1fa0', '2a02:e0', '2a02:2f0c', '2600:1700',
                         '2601:1c0', '2607:f8b0', '2406:da00', '2804:14c', '2806:2f0', '2001:1388',
                         '240e:3b0', '2409:8a00', '2401:4900', '2405:201', '2400:4050', '2402:800'])
                      [1 + (prefix_pick & 2147483647) % 24],
                  to_hex((a >> 48) & 65535), to_hex((a >> 32) & 65535), to_hex((a >> 16) & 65535),
                  to_hex(a & 65535), to_hex((b >> 16) & 65535), to_hex(b & 65535))::inet
$$;

-- hashint8 as a non-negative 62-bit number (two 31-bit halves)
CREATE OR REPLACE FUNCTION bench.h(x bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT ((hashint8(x)::bigint & 2147483647) << 31) | (hashint8(x # 6148914691236517205)::bigint & 2147483647)
$$;

-- The account behind user number u: uuid-ish (half), numeric (3/10) or
-- e-mail (1/5) ids, as identity providers and applications mix them.
CREATE OR REPLACE FUNCTION bench.user_id(u int) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN u % 10 < 5 THEN md5('user-' || u)::uuid::text
        WHEN u % 10 < 8 THEN (10000000 + u * 37)::text
        ELSE lower((ARRAY['anna', 'ben', 'chloe', 'david', 'elif', 'farid', 'grace', 'hiro', 'ines', 'jonas',
                          'kemal', 'lucia', 'mei', 'nils', 'olga', 'pedro', 'quinn', 'rania', 'sven', 'tariq'])
                       [1 + u % 20]
                   || '.' ||
                   (ARRAY['smith', 'mueller', 'garcia', 'rossi', 'kowalski', 'nguyen', 'tanaka', 'silva',
                          'johansson', 'dubois', 'ivanova', 'yilmaz', 'okafor', 'patel', 'kim', 'novak'])
                       [1 + (u / 20) % 16]
                   || (u / 320)::text || '@' ||
                   (ARRAY['gmail.com', 'outlook.com', 'yahoo.com', 'icloud.com', 'proton.me',
                          'web.de', 'example.org', 'corp.example.com'])[1 + (u / 7) % 8])
    END
$$;

-- A browser or app user agent (92-160 bytes), v picking the template and w
-- the version numbers.
CREATE OR REPLACE FUNCTION bench.user_agent(v bigint, w bigint) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT format((ARRAY[
        'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%s.0.%s.%s Safari/537.36',
        'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%s.0.%s.%s Safari/537.36 Edg/%1$s.0.%2$s.%3$s',
        'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%s.0.%s.%s Safari/537.36',
        'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.%s Safari/605.1.15 (%s.%s)',
        'Mozilla/5.0 (iPhone; CPU iPhone OS 17_%s like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.%s Mobile/15E148 Safari/604.1 (%s)',
        'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%s.0.%s.%s Mobile Safari/537.36',
        'Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%s.0.%s.%s Mobile Safari/537.36',
        'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:%s.0) Gecko/20100101 Firefox/%1$s.0 (build %s.%s)',
        'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%s.0.%s.%s Safari/537.36',
        'ExampleBank/%s.%s.%s (iPhone; iOS 17.4.1; Scale/3.00) Alamofire/5.8.1 CFNetwork/1494.0.7 Darwin/23.4.0',
        'ExampleBank/%s.%s.%s (Android 14; SM-A546B; Build/UP1A.231005.007) okhttp/4.12.0 Dalvik/2.1.0',
        'okta-auth-js/7.%s.%s okta-signin-widget-7.%s.0 Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36'])
        [1 + v % 12],
        100 + w % 26, 4000 + (w / 26) % 2000, (w / 52000) % 200)
$$;

\if :{?events}
\else
\set events 0
\endif
\if :{?addresses}
\else
\set addresses 0
\endif
\if :{?span_days}
\else
\set span_days 30
\endif
\if :{?offset_days}
\else
\set offset_days 0
\endif

-- ---------------------------------------------------------------------------
-- Login events: occurred_at, user_id, ip_address, outcome, user_agent,
-- source, metadata -- in time order over the span_days before this hour, as an
-- export of a login log is.  200,000 accounts; three quarters of an
-- account's logins come from its home address (one in eight homes on IPv6),
-- the rest from anywhere (one in ten of those on IPv6).  90% success.
-- ---------------------------------------------------------------------------
SELECT :events > 0 AS want_events \gset
\if :want_events
SELECT setseed(0.4242) \gset
COPY (
    SELECT occurred_at, bench.user_id(u), ip, outcome,
           bench.user_agent(bench.h(u) + (CASE WHEN r_ua < 0.15 THEN 1 ELSE 0 END), bench.h(u + 7) + i / 200000),
           (ARRAY['web', 'web', 'web', 'ios', 'android', 'api', 'okta'])[1 + (bench.h(u) / 13) % 7],
           CASE WHEN outcome = 'failure'
                    THEN jsonb_build_object('reason', (ARRAY['bad_password', 'bad_password', 'unknown_user', 'locked', 'mfa_failed'])
                                                      [1 + floor(r_meta * 5)::int])
                WHEN r_meta < 0.3
                    THEN jsonb_build_object('mfa', (ARRAY['totp', 'push', 'sms', 'webauthn'])[1 + floor(r_meta * 13)::int],
                                            'session', substr(md5(i::text), 1, 16))
           END
      FROM (SELECT i, u,
                   date_trunc('hour', now()) - (:span_days + :offset_days) * interval '1 day'
                       + (i + random()) * (:span_days * interval '1 day' / :events) AS occurred_at,
                   CASE WHEN r_home < 0.75 THEN
                            CASE WHEN bench.h(u) % 8 = 0
                                 THEN bench.v6(bench.h(u + 1), bench.h(u + 2), bench.h(u + 3))
                                 ELSE bench.v4(bench.h(u + 1), bench.h(u + 2)) END
                        WHEN r_v6 < 0.1 THEN bench.v6(floor(random() * 2147483647)::bigint,
                                                       floor(random() * 4611686018427387903)::bigint,
                                                       floor(random() * 4294967295)::bigint)
                        ELSE bench.v4(floor(random() * 2147483647)::bigint, floor(random() * 16777216)::bigint)
                   END AS ip,
                   CASE WHEN r_out < 0.9 THEN 'success' ELSE 'failure' END AS outcome,
                   r_ua, r_meta
              FROM (SELECT i, floor(random() * 200000)::int AS u, random() AS r_home, random() AS r_v6,
                           random() AS r_out, random() AS r_ua, random() AS r_meta
                      FROM generate_series(0, :events - 1) i) draws
           ) e
) TO :'events_file' (FORMAT csv);
\endif

-- ---------------------------------------------------------------------------
-- Addresses for the lookup benchmark, one per line: 90% IPv4 anywhere in
-- 1-223 (as above), 10% IPv6 in the same allocations.
-- ---------------------------------------------------------------------------
SELECT :addresses > 0 AS want_addresses \gset
\if :want_addresses
SELECT setseed(0.1717) \gset
COPY (
    SELECT CASE WHEN random() < 0.1
                THEN bench.v6(floor(random() * 2147483647)::bigint,
                              floor(random() * 4611686018427387903)::bigint,
                              floor(random() * 4294967295)::bigint)
                ELSE bench.v4(floor(random() * 2147483647)::bigint, floor(random() * 16777216)::bigint)
           END
      FROM generate_series(1, :addresses)
) TO :'addresses_file';
\endif
