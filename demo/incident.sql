-- incident.sql -- an account-takeover incident in the last hour, on top of
-- history.sql's traffic:
--
--   * credential stuffing from one /24 (:attacker_cidr): a combo list of
--     4,000 ids (1,400 of them our accounts, the rest unknown e-mails), tried
--     once or twice each from ~60 rotating addresses between 50 and 10 minutes
--     ago, ~1.7% of attempts succeeding (reused passwords); most of the taken
--     accounts then change their e-mail, password, billing or MFA within
--     minutes, a few are only checked;
--   * three more accounts taken from an IPv6 network (:attacker6_cidr) after a
--     few failed guesses each, then re-pointed (e-mail, MFA, billing);
--   * four genuine travellers logging in from a country new to them, one of
--     whom changes their password abroad (the detection's honest false positive).
--
-- What was staged is kept in demo.staged, so investigate.sql can check its
-- answers.  Deterministic like history.sql.
--
--   psql -X -q -v ON_ERROR_STOP=1 -v attacker_cidr=5.188.10.0/24 \
--        -v attacker6_cidr=2a03:b0c0:3::/48 -f demo/incident.sql

SET client_min_messages = warning;
SET TimeZone = 'UTC';
\if :{?attacker_cidr}
\else
\set attacker_cidr '5.188.10.0/24'
\endif
\if :{?attacker6_cidr}
\else
\set attacker6_cidr '2a03:b0c0:3::/48'
\endif

SELECT setseed(0.0404) AS seeded \gset

DROP TABLE IF EXISTS demo.staged, demo.stuffing_targets, demo.stuffing_attempts;

CREATE TABLE demo.staged (
    user_id         text PRIMARY KEY,
    role            text NOT NULL,   -- stuffing victim, ipv6 victim, traveller
    network         cidr NOT NULL,   -- where the login came from
    changed_account boolean NOT NULL -- changed e-mail, password or billing afterwards
);
COMMENT ON TABLE demo.staged IS 'Ground truth of incident.sql: the accounts it took over (or sent travelling)';

-- The combo list: our accounts (a random 1,400) and e-mails we have never seen.
CREATE TABLE demo.stuffing_targets AS
WITH ours AS MATERIALIZED (
    SELECT user_id, random() AS r FROM demo.accounts ORDER BY n
), picked AS (
    SELECT user_id, row_number() OVER (ORDER BY r, user_id) AS rank FROM ours
)
SELECT rank AS seq, user_id, rank <= 96 AS reused_password
  FROM picked
 WHERE rank <= 1400
UNION ALL
SELECT 1400 + i,
       (ARRAY['alex', 'sam', 'kim', 'max', 'dana', 'li', 'ivan', 'sara', 'tom', 'nina', 'omar', 'eva'])[1 + i % 12]
       || (ARRAY['', '_', '.'])[1 + (i / 12) % 3]
       || (ARRAY['wolf', 'star', 'k', 'ray', 'fox', 'moon', 'j', 'lee', 'pro'])[1 + (i / 36) % 9]
       || (1960 + i % 47)::text || '@'
       || (ARRAY['mail.ru', 'yahoo.com', 'hotmail.com', 'gmail.com', 'aol.com', 'web.de', 'live.fr'])[1 + (i / 7) % 7],
       false
  FROM generate_series(1, 2600) AS i;

-- Every attempt: one or two per id, 2-20 s apart, from rotating addresses.
CREATE TABLE demo.stuffing_attempts AS
WITH t AS MATERIALIZED (
    SELECT seq, user_id, reused_password,
           random() AS r_twice, 600 + floor(random() * 2400)::int AS off1, 2 + floor(random() * 18)::int AS gap,
           random() AS r_ip1, random() AS r_ip2, random() AS r_ua
      FROM demo.stuffing_targets
     ORDER BY seq
)
SELECT user_id, k AS try, off1 - CASE k WHEN 2 THEN gap ELSE 0 END AS off,
       host(:'attacker_cidr'::cidr + (10 + floor(CASE k WHEN 1 THEN r_ip1 ELSE r_ip2 END * 60))::int)::inet AS ip,
       CASE WHEN reused_password AND k = tries THEN 'success' ELSE 'failure' END AS outcome,
       CASE WHEN r_ua < 0.7
            THEN 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36'
            ELSE 'Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:102.0) Gecko/20100101 Firefox/102.0' END AS user_agent
  FROM t
 CROSS JOIN LATERAL (SELECT CASE WHEN r_twice < 0.35 THEN 2 ELSE 1 END AS tries) n
 CROSS JOIN LATERAL generate_series(1, n.tries) AS k;

INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, user_agent, source)
SELECT user_id, ip, outcome, now() - make_interval(secs => off), user_agent, 'web'
  FROM demo.stuffing_attempts
 ORDER BY off DESC, user_id, try;

-- What the attacker did with the accounts it got into, minutes after each login.
WITH v AS MATERIALIZED (
    SELECT user_id, off, ip, user_agent,
           random() AS r_check, random() AS r_email, random() AS r_password, random() AS r_billing, random() AS r_mfa,
           random() AS r_delay, random() AS r_target
      FROM demo.stuffing_attempts
     WHERE outcome = 'success'
     ORDER BY user_id
), acts AS (
    SELECT v.*, a.event_type, a.target_type, a.step
      FROM v
     CROSS JOIN LATERAL (VALUES
         ('user.email_changed',       'user',           1, r_email < 0.85),
         ('user.password_changed',    'user',           2, r_password < 0.6 OR r_email >= 0.85),
         ('user.mfa.factor.activate', 'factor',         3, r_mfa < 0.3),
         ('billing.modified',         'payment_method', 4, r_billing < 0.35)
     ) AS a(event_type, target_type, step, wanted)
     WHERE r_check >= 0.1 AND a.wanted           -- one in ten is only checked, not used (yet)
), audit AS (
    INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address, target_type, target_id, user_agent, source)
    SELECT user_id, event_type, now() - make_interval(secs => off - 45 - floor(r_delay * 240)::int - step * 60),
           ip, target_type,
           CASE target_type
               WHEN 'user'           THEN user_id
               WHEN 'factor'         THEN 'totp-' || substr(md5(r_target::text), 1, 12)
               WHEN 'payment_method' THEN 'pm_' || substr(md5(r_target::text), 1, 16)
           END,
           user_agent, 'web'
      FROM acts
     ORDER BY off DESC, step
)
INSERT INTO demo.staged
SELECT v.user_id, 'stuffing victim', :'attacker_cidr'::cidr,
       EXISTS (SELECT FROM acts WHERE acts.user_id = v.user_id AND acts.event_type <> 'user.mfa.factor.activate')
  FROM v;

-- Three accounts taken over from the IPv6 network, none of them in the combo list.
WITH v AS MATERIALIZED (
    SELECT user_id, random() AS r FROM demo.accounts a
     WHERE NOT EXISTS (SELECT FROM demo.stuffing_targets t WHERE t.user_id = a.user_id)
     ORDER BY n
), chosen AS (
    SELECT user_id, row_number() OVER (ORDER BY r, user_id) AS i FROM v ORDER BY r, user_id LIMIT 3
), tries AS MATERIALIZED (
    SELECT c.user_id, c.i, k, 1200 + c.i * 420 + (3 - k) * 25 AS off,
           demo.host_in(:'attacker6_cidr'::cidr, random()) AS ip
      FROM chosen c
     CROSS JOIN generate_series(0, 3) AS k
     ORDER BY c.i, k
), logins AS (
    INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, user_agent, source)
    SELECT user_id, ip, CASE k WHEN 3 THEN 'success' ELSE 'failure' END, now() - make_interval(secs => off),
           'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Safari/537.36',
           'web'
      FROM tries
     ORDER BY off DESC
), audit AS (
    INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address, target_type, target_id, source)
    SELECT t.user_id, a.event_type, now() - make_interval(secs => t.off - a.after), t.ip, a.target_type,
           CASE a.target_type WHEN 'user' THEN t.user_id ELSE 'totp-' || substr(md5(t.user_id), 1, 12) END, 'web'
      FROM tries t
     CROSS JOIN LATERAL (VALUES ('user.email_changed', 'user', 100),
                                ('user.mfa.factor.activate', 'factor', 190),
                                ('billing.modified', 'payment_method', 280)) AS a(event_type, target_type, after)
     WHERE t.k = 3 AND (a.event_type <> 'billing.modified' OR t.i = 1)
)
INSERT INTO demo.staged
SELECT user_id, 'ipv6 victim', :'attacker6_cidr'::cidr, true FROM chosen;

-- Four genuine travellers, in a country new to them; the first changes their password there.
WITH v AS MATERIALIZED (
    SELECT user_id, home, random() AS r FROM demo.accounts a
     WHERE kind = 'home'
       AND NOT EXISTS (SELECT FROM demo.stuffing_targets t WHERE t.user_id = a.user_id)
       AND NOT EXISTS (SELECT FROM demo.staged s WHERE s.user_id = a.user_id)
     ORDER BY n
), chosen AS (
    SELECT v.user_id, row_number() OVER (ORDER BY r, user_id) AS i, abroad.country, abroad.net
      FROM v
     CROSS JOIN LATERAL (SELECT h.country, h.v4[1] AS net FROM demo.homes h
                          WHERE h.country <> v.home ORDER BY md5(v.user_id || h.country) LIMIT 1) AS abroad
     ORDER BY r, user_id
     LIMIT 4
), trip AS MATERIALIZED (
    SELECT c.*, 900 + c.i * 480 AS off, demo.host_in(c.net, random()) AS ip FROM chosen c ORDER BY c.i
), logins AS (
    INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at, user_agent, source)
    SELECT user_id, ip, 'success', now() - make_interval(secs => off), 'ExampleApp/5.12.0 (iPhone; iOS 17.4.1)', 'ios'
      FROM trip
), audit AS (
    INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address, target_type, target_id, source)
    SELECT user_id, 'user.password_changed', now() - make_interval(secs => off - 300), ip, 'user', user_id, 'ios'
      FROM trip WHERE i = 1
)
INSERT INTO demo.staged
SELECT user_id, 'traveller', network(set_masklen(ip, 24)), i = 1 FROM trip;

ANALYZE ato.login_events, ato.audit_events;

\pset title 'Staged in the last hour (ground truth, kept in demo.staged)'
SELECT s.role, string_agg(DISTINCT s.network::text, ', ') AS networks,
       string_agg(DISTINCT ato.geoip_country(host(s.network)::inet), ', ') AS countries,
       count(*) AS accounts, count(*) FILTER (WHERE s.changed_account) AS then_changed_account
  FROM demo.staged s
 GROUP BY s.role
 ORDER BY accounts DESC, role;

\pset title 'The credential-stuffing run'
SELECT count(DISTINCT user_id) AS ids_tried,
       count(DISTINCT user_id) FILTER (WHERE EXISTS (SELECT FROM demo.accounts a WHERE a.user_id = t.user_id)) AS of_them_ours,
       count(*) AS attempts, count(*) FILTER (WHERE outcome = 'success') AS successes,
       count(DISTINCT ip) AS source_addresses,
       to_char(now() - make_interval(secs => max(off)), 'HH24:MI') || ' - ' ||
       to_char(now() - make_interval(secs => min(off)), 'HH24:MI') AS "window (UTC)"
  FROM demo.stuffing_attempts t;
\pset title
