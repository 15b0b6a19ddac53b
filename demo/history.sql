-- history.sql -- 30 days of ordinary traffic in the event store: ~2,000
-- accounts in 8 home countries, each logging in from one or two addresses of
-- real ISP ranges of its country (a few over IPv6, an office of ~180 behind one
-- NAT'd /28), mostly successfully, with password, e-mail, MFA and billing
-- changes at low background rates.  Events go in with plain INSERT ... SELECT,
-- so the extension's trigger fills country_code from the bundled GeoIP
-- database exactly as it would for an application's writes or a COPY.
--
--   psql -X -q -v ON_ERROR_STOP=1 -f demo/history.sql      (after setup.sql)
--
-- Deterministic: every random() comes from one seeded sequence, drawn in a
-- fixed order; only the times move with the clock (they are offsets before
-- now()).  No event falls within minutes of "1 hour ago" or "24 hours ago", so
-- the window counts of investigate.sql do not depend on how long the demo
-- takes to get there.

SET client_min_messages = warning;
SET TimeZone = 'UTC';
\if :{?accounts}
\else
\set accounts 2000
\endif

SELECT setseed(0.2024) AS seeded \gset
SELECT ato.create_event_partitions(now() - interval '35 days', now() + interval '1 month') AS partitions_created \gset

DROP SCHEMA IF EXISTS demo CASCADE;
CREATE SCHEMA demo;
COMMENT ON SCHEMA demo IS 'Scaffolding of scripts/demo.sh: the staged accounts and what was staged, to check the answers against';

-- Home ranges: real allocations of residential ISPs and mobile carriers,
-- each checked against the bundled database (mmdblookup) for its country.
CREATE TABLE demo.homes (
    country text PRIMARY KEY,
    v4      cidr[] NOT NULL,
    v6      cidr   NOT NULL
);
INSERT INTO demo.homes VALUES
    ('US', '{73.162.0.0/16, 24.4.0.0/16, 98.207.0.0/16}',   '2601:600::/32'),
    ('GB', '{86.150.0.0/16, 86.180.0.0/16, 81.2.64.0/18}',  '2a00:23c4::/32'),
    ('DE', '{79.200.0.0/16, 91.10.0.0/16, 84.150.0.0/16}',  '2003:e0::/32'),
    ('FR', '{90.20.0.0/16, 78.200.0.0/16, 82.64.0.0/14}',   '2a01:cb00::/32'),
    ('JP', '{126.10.0.0/16, 153.200.0.0/16, 60.100.0.0/16}','240b:10::/32'),
    ('BR', '{177.10.0.0/17, 189.10.0.0/19, 201.10.0.0/18}', '2804:14c::/32'),
    ('IN', '{49.36.0.0/16, 117.200.0.0/16, 106.200.0.0/16}','2409:4050::/32'),
    ('AU', '{1.120.0.0/16, 101.160.0.0/16, 110.140.0.0/16}','2001:8003::/32');

-- An address inside net, picked by r in [0, 1): any host of an IPv4 net,
-- random-looking low bits for an IPv6 net (prefix length a multiple of 16).
CREATE FUNCTION demo.host_in(net cidr, r double precision) RETURNS inet
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE family(net)
        WHEN 4 THEN host(net + (1 + floor(r * (2 ^ (32 - masklen(net)) - 2)))::bigint)::inet
        ELSE host(net | ('::' || regexp_replace(substr(md5(r::text) || md5(r::text || 'x'), 1, (128 - masklen(net)) / 4),
                                                '(....)(?!$)', '\1:', 'g'))::inet)::inet
    END
$$;

-- The accounts: ids in the styles applications and identity providers mix
-- (uuids, numbers, e-mail addresses), a home country, one or two addresses.
CREATE TABLE demo.accounts AS
WITH draw AS MATERIALIZED (
    SELECT n, random() AS r_home, random() AS r_kind, random() AS r_net1, random() AS r_ip1,
           random() AS r_second, random() AS r_net2, random() AS r_ip2, random() AS r_rate, random() AS r_ua
      FROM generate_series(1, :accounts) AS n
), homed AS (
    SELECT d.*,
           CASE WHEN r_home < 0.28 THEN 'US' WHEN r_home < 0.40 THEN 'GB' WHEN r_home < 0.52 THEN 'DE'
                WHEN r_home < 0.62 THEN 'FR' WHEN r_home < 0.70 THEN 'JP' WHEN r_home < 0.80 THEN 'BR'
                WHEN r_home < 0.91 THEN 'IN' ELSE 'AU' END AS home,
           CASE WHEN r_kind < 0.05 THEN 'ipv6'
                WHEN r_kind < 0.35 AND r_home < 0.28 THEN 'office'
                ELSE 'home' END AS kind
      FROM draw d
)
SELECT n,
       CASE n % 3
           WHEN 0 THEN overlay(overlay(md5('ato-demo/' || n) PLACING '4' FROM 13) PLACING '9' FROM 17)::uuid::text
           WHEN 1 THEN (1000000 + n * 7919)::text
           ELSE (ARRAY['james', 'maria', 'yuki', 'priya', 'lukas', 'chloe', 'oliver', 'ana', 'arjun', 'sophie',
                       'kenji', 'lena', 'lucas', 'emma', 'rahul', 'isla', 'mateus', 'hannah', 'noah', 'camille'])[1 + n % 20]
                || '.' ||
                (ARRAY['smith', 'silva', 'tanaka', 'sharma', 'mueller', 'martin', 'jones', 'santos', 'patel',
                       'dubois', 'sato', 'schmidt', 'brown', 'kumar', 'wilson', 'lefebvre', 'costa'])[1 + (n / 20) % 17]
                || (n / 3)::text || '@' ||
                (ARRAY['gmail.com', 'outlook.com', 'yahoo.com', 'icloud.com', 'proton.me', 'gmx.de', 'orange.fr',
                       'bigpond.com'])[1 + (n / 7) % 8]
       END AS user_id,
       home,
       kind,
       CASE kind
           WHEN 'ipv6'   THEN demo.host_in(h.v6, r_ip1)
           WHEN 'office' THEN host('73.231.40.0/28'::cidr + (1 + floor(r_ip1 * 14))::int)::inet   -- the office's NAT
           ELSE demo.host_in(h.v4[1 + floor(r_net1 * 3)::int], r_ip1)
       END AS ip1,
       CASE WHEN kind = 'office' OR r_second < 0.5
            THEN demo.host_in(h.v4[1 + floor(r_net2 * 3)::int], r_ip2)        -- home broadband or mobile
       END AS ip2,
       0.3 + 2.7 * r_rate AS logins_per_day,
       (ARRAY['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
              'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
              'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
              'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
              'ExampleApp/5.12.0 (iPhone; iOS 17.4.1)',
              'ExampleApp/5.12.0 (Android 14; Pixel 8)'])[1 + floor(r_ua * 6)::int] AS user_agent,
       (ARRAY['web', 'web', 'web', 'web', 'ios', 'android'])[1 + floor(r_ua * 6)::int] AS source
  FROM homed
  JOIN demo.homes h ON h.country = homed.home
 ORDER BY n;
ALTER TABLE demo.accounts ADD PRIMARY KEY (user_id);
COMMENT ON TABLE demo.accounts IS 'The demo''s accounts: home country and the addresses they log in from';

-- 30 days of logins (offsets in seconds before now), 5% failed and 1% sent to
-- an MFA challenge; after a few of the successful ones, an account change
-- from the same address within 20 minutes.
WITH attempt AS MATERIALIZED (
    SELECT a.user_id, a.ip1, a.ip2, a.user_agent, a.source,
           floor(random() * 30 * 86400)::int AS off, random() AS r_ip, random() AS r_outcome,
           random() AS r_change, (30 + floor(random() * 1170))::int AS change_delay, random() AS r_target
      FROM demo.accounts a
     CROSS JOIN LATERAL generate_series(1, ceil(a.logins_per_day * 30)::int) AS g
     ORDER BY a.n, g
), kept AS (
    SELECT *,
           CASE WHEN ip2 IS NOT NULL AND r_ip < 0.3 THEN ip2 ELSE ip1 END AS ip,
           CASE WHEN r_outcome < 0.05 THEN 'failure' WHEN r_outcome < 0.06 THEN 'challenge' ELSE 'success' END AS outcome
      FROM attempt
     WHERE off >= 30
       AND off NOT BETWEEN 3600 - 300 AND 3600 + 60
       AND off NOT BETWEEN 86400 - 300 AND 86400 + 60
), logins AS (
    INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, user_agent, source)
    SELECT user_id, ip, outcome, now() - make_interval(secs => off), user_agent, source
      FROM kept
)
INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address, target_type, target_id)
SELECT user_id, event_type, now() - make_interval(secs => off - change_delay), ip, target_type,
       CASE target_type
           WHEN 'user'           THEN user_id
           WHEN 'factor'         THEN 'totp-' || substr(md5(r_target::text), 1, 12)
           WHEN 'payment_method' THEN 'pm_' || substr(md5(r_target::text), 1, 16)
       END
  FROM (SELECT k.*,
               CASE WHEN r_change < 0.0020 THEN 'user.password_changed'
                    WHEN r_change < 0.0027 THEN 'user.email_changed'
                    WHEN r_change < 0.0037 THEN 'user.mfa.factor.activate'
                    WHEN r_change < 0.0077 THEN 'billing.modified' END AS event_type,
               CASE WHEN r_change < 0.0027 THEN 'user'
                    WHEN r_change < 0.0037 THEN 'factor'
                    ELSE 'payment_method' END AS target_type
          FROM kept k
         WHERE outcome = 'success' AND r_change < 0.0077) c
 WHERE off - change_delay >= 30
   AND off - change_delay NOT BETWEEN 3600 - 300 AND 3600 + 60
   AND off - change_delay NOT BETWEEN 86400 - 300 AND 86400 + 60;

ANALYZE ato.login_events, ato.audit_events, demo.accounts;

\pset title 'The event store after loading the history'
SELECT 'ato.login_events' AS "table", count(DISTINCT user_id) AS accounts, count(*) AS events,
       count(*) FILTER (WHERE outcome = 'success') AS successes,
       count(*) FILTER (WHERE family(ip_address) = 6) AS over_ipv6,
       min(occurred_at)::date AS first_day
  FROM ato.login_events
UNION ALL
SELECT 'ato.audit_events', count(DISTINCT actor_id), count(*), NULL, count(*) FILTER (WHERE family(ip_address) = 6),
       min(occurred_at)::date
  FROM ato.audit_events;

\pset title 'Accounts by home country (addresses from real ranges of that country; the office NAT is 73.231.40.0/28)'
SELECT a.home AS country, count(*) AS accounts,
       count(*) FILTER (WHERE a.kind = 'ipv6') AS on_ipv6,
       count(*) FILTER (WHERE a.kind = 'office') AS behind_office_nat,
       array_to_string(h.v4, ', ') || ', ' || h.v6 AS ranges
  FROM demo.accounts a
  JOIN demo.homes h ON h.country = a.home
 GROUP BY a.home, h.v4, h.v6
 ORDER BY accounts DESC, country;
\pset title
