-- investigate.sql -- what the on-call engineer asks first, over the event
-- store: the "ATO at scale" runbook's detection query and scope queries in
-- plain SQL.  Each answer is one query, written so that it can become a call
-- of the extension's detection functions (a later issue) without changing
-- what is shown.  The demo.* tables are used only for the last step, which
-- checks the answers against what incident.sql staged.
--
--   psql -X -q -v ON_ERROR_STOP=1 -v attacker_cidr=5.188.10.0/24 \
--        -v attacker6_cidr=2a03:b0c0:3::/48 -f demo/investigate.sql

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
\pset null '-'

\echo
\echo '== enrichment: country_code was filled in by the extension at insert time'

\pset title 'A few stored login events (times in UTC)'
SELECT (ARRAY['home broadband', 'office NAT', 'IPv6 user', 'stuffing run', 'IPv6 attacker'])[pick.what] AS "example of",
       to_char(le.occurred_at, 'MM-DD HH24:MI') AS occurred_at, le.user_id, le.ip_address, le.outcome, le.country_code
  FROM (SELECT DISTINCT ON (what) what, id
          FROM (SELECT id, CASE WHEN ip_address <<= :'attacker_cidr'  THEN 4
                                WHEN ip_address <<= :'attacker6_cidr' THEN 5
                                WHEN ip_address <<= '73.231.40.0/28'  THEN 2
                                WHEN family(ip_address) = 6           THEN 3
                                ELSE 1 END AS what
                  FROM ato.login_events
                 WHERE outcome = 'success') k
         ORDER BY what, id) pick
  JOIN ato.login_events le ON le.id = pick.id
 ORDER BY pick.what;

\pset title 'Login events by country'
SELECT country_code, count(*) AS logins, count(DISTINCT user_id) AS user_ids,
       count(*) FILTER (WHERE outcome = 'failure') AS failures,
       count(*) FILTER (WHERE occurred_at > now() - interval '1 hour') AS in_last_hour
  FROM ato.login_events
 GROUP BY country_code
 ORDER BY logins DESC, country_code;

\pset title 'ato.geoip(<an attacker address>)'
SELECT * FROM ato.geoip(host(:'attacker_cidr'::cidr + 23)::inet);

\pset title 'ato.geoip_status()'
SELECT database, path, loaded, database_type, built_at FROM ato.geoip_status();

\echo
\echo '== (a) accounts with a successful login from a new country in the last hour, then an e-mail, password or billing change within the hour'
-- The runbook's first query over the store: country_code is on the login
-- itself, and "new" means no earlier successful login of the account from that
-- country.  Later: SELECT * FROM ato.<detection function>(interval '1 hour').
CREATE TEMP TABLE new_country_then_changed AS
SELECT le.user_id, le.ip_address, le.country_code, le.occurred_at,
       count(ae.id) AS suspicious_actions,
       string_agg(DISTINCT ae.event_type, ', ' ORDER BY ae.event_type) AS actions
  FROM ato.login_events le
  JOIN ato.audit_events ae
    ON ae.actor_id = le.user_id
   AND ae.event_type IN ('user.email_changed', 'user.password_changed', 'billing.modified')
   AND ae.occurred_at BETWEEN le.occurred_at AND le.occurred_at + interval '1 hour'
 WHERE le.outcome = 'success'
   AND le.occurred_at > now() - interval '1 hour'
   AND le.country_code IS NOT NULL
   AND NOT EXISTS (SELECT FROM ato.login_events prior
                    WHERE prior.user_id = le.user_id
                      AND prior.outcome = 'success'
                      AND prior.country_code = le.country_code
                      AND prior.occurred_at < le.occurred_at)
 GROUP BY le.user_id, le.ip_address, le.country_code, le.occurred_at;

\pset title '(a) by where the logins came from (IPv4 /24, IPv6 /48)'
SELECT network(set_masklen(ip_address, CASE family(ip_address) WHEN 4 THEN 24 ELSE 48 END)) AS network,
       country_code, count(DISTINCT user_id) AS accounts, sum(suspicious_actions) AS suspicious_actions,
       to_char(min(occurred_at), 'HH24:MI') AS first_login, to_char(max(occurred_at), 'HH24:MI') AS last_login
  FROM new_country_then_changed
 GROUP BY 1, 2
 ORDER BY accounts DESC, network;

SELECT count(*) AS flagged_logins, count(DISTINCT user_id) AS flagged_accounts FROM new_country_then_changed \gset
\set title '(a) the first 12 of ' :flagged_accounts ' accounts (times in UTC)'
\pset title :title
SELECT user_id, ip_address, country_code, to_char(occurred_at, 'HH24:MI:SS') AS login_at, suspicious_actions, actions
  FROM new_country_then_changed
 ORDER BY suspicious_actions DESC, occurred_at, user_id
 LIMIT 12;

\echo
\echo '== (b) how many accounts logged in successfully from the attacker networks in the last 24 hours'
-- The runbook's scope query, once per observed network.
\pset title '(b) affected accounts'
SELECT attacker_network,
       (SELECT COUNT(DISTINCT user_id)
          FROM ato.login_events
         WHERE outcome = 'success'
           AND occurred_at > NOW() - INTERVAL '24 hours'
           AND ip_address <<= attacker_network) AS affected_accounts
  FROM (VALUES (:'attacker_cidr'::cidr), (:'attacker6_cidr'::cidr)) AS observed(attacker_network);

\echo
\echo '== (c) what those accounts did in the last 24 hours'
\pset title '(c) audit events of the affected accounts, by type'
SELECT ae.event_type, COUNT(*) AS count, COUNT(DISTINCT ae.actor_id) AS accounts,
       COUNT(*) FILTER (WHERE ae.ip_address <<= :'attacker_cidr' OR ae.ip_address <<= :'attacker6_cidr') AS from_attacker_networks
  FROM ato.audit_events ae
 WHERE ae.actor_id IN (SELECT DISTINCT user_id FROM ato.login_events
                        WHERE outcome = 'success'
                          AND occurred_at > NOW() - INTERVAL '24 hours'
                          AND (ip_address <<= :'attacker_cidr' OR ip_address <<= :'attacker6_cidr'))
   AND ae.occurred_at > NOW() - INTERVAL '24 hours'
 GROUP BY ae.event_type
 ORDER BY count DESC, ae.event_type;

\echo
\echo '== (d) the credential-stuffing signal: attempts and success rate per network in the last hour'
\pset title '(d) top 5 networks by attempts (IPv4 /24, IPv6 /48)'
SELECT network(set_masklen(ip_address, CASE family(ip_address) WHEN 4 THEN 24 ELSE 48 END)) AS network,
       min(country_code) AS country,
       count(*) AS attempts,
       count(*) FILTER (WHERE outcome = 'success') AS successes,
       round(100.0 * count(*) FILTER (WHERE outcome = 'success') / count(*), 1) AS success_pct,
       count(DISTINCT user_id) AS accounts_tried
  FROM ato.login_events
 WHERE occurred_at > now() - interval '1 hour'
   AND ip_address IS NOT NULL
 GROUP BY 1
 ORDER BY attempts DESC, network
 LIMIT 5;
\pset title

-- Check the answers against what incident.sql staged: (a) must flag exactly
-- the staged accounts that changed e-mail, password or billing after a login
-- from a new country, and (b) exactly the accounts the stuffing run got into.
SELECT
    (SELECT count(*) FROM demo.staged WHERE role = 'stuffing victim')                     AS staged_stuffing,
    (SELECT count(*) FROM demo.staged WHERE role = 'ipv6 victim')                         AS staged_v6,
    (SELECT count(*) FROM demo.staged WHERE role <> 'traveller' AND changed_account)      AS staged_changed,
    (SELECT count(DISTINCT user_id) FROM ato.login_events
      WHERE outcome = 'success' AND occurred_at > now() - interval '24 hours'
        AND ip_address <<= :'attacker_cidr')                                              AS scoped,
    (SELECT count(*) FROM (SELECT DISTINCT user_id FROM ato.login_events
                            WHERE outcome = 'success' AND occurred_at > now() - interval '24 hours'
                              AND ip_address <<= :'attacker_cidr'
                           EXCEPT SELECT user_id FROM demo.staged WHERE role = 'stuffing victim') x)
  + (SELECT count(*) FROM (SELECT user_id FROM demo.staged WHERE role = 'stuffing victim'
                           EXCEPT SELECT user_id FROM ato.login_events
                            WHERE outcome = 'success' AND occurred_at > now() - interval '24 hours'
                              AND ip_address <<= :'attacker_cidr') x)                    AS scope_mismatches,
    (SELECT count(*) FROM ((SELECT DISTINCT user_id FROM new_country_then_changed
                            EXCEPT SELECT user_id FROM demo.staged WHERE changed_account)
                           UNION ALL
                           (SELECT user_id FROM demo.staged WHERE changed_account
                            EXCEPT SELECT user_id FROM new_country_then_changed)) x)     AS detection_mismatches,
    (SELECT count(*) FROM new_country_then_changed f JOIN demo.staged s USING (user_id)
      WHERE s.role = 'traveller')                                                         AS flagged_travellers,
    (SELECT count(*) FROM demo.staged WHERE role = 'stuffing victim' AND NOT changed_account) AS unchanged_stuffing
\gset

SELECT :scope_mismatches > 0 AS scope_wrong, :detection_mismatches > 0 AS detection_wrong \gset
\if :scope_wrong
\echo 'demo: FAILED: (b) does not match the staged stuffing victims;' :scope_mismatches 'account(s) differ'
\endif
\if :detection_wrong
\echo 'demo: FAILED: (a) does not match the staged takeovers;' :detection_mismatches 'account(s) differ'
\endif
SELECT :scope_mismatches + :detection_mismatches > 0 AS demo_failed \gset
\if :demo_failed
DO $$BEGIN RAISE EXCEPTION 'the answers do not match what incident.sql staged (see demo.staged)'; END$$;
\endif

\echo
\echo '== summary'
SELECT CASE :flagged_travellers WHEN 1 THEN 'traveller' ELSE 'travellers' END AS travellers_word \gset
\set check 'check: (a) flagged all ' :staged_changed ' staged takeovers that went on to change e-mail, password or billing, plus ' :flagged_travellers ' genuine ' :travellers_word ' who did so abroad (to review by hand); (b) found all ' :staged_stuffing ' accounts the /24 got into, ' :unchanged_stuffing ' of which made no such change and are invisible to (a).'
\echo :check
\set summary 'demo: ' :scoped ' accounts compromised from ' :attacker_cidr ' (and ' :staged_v6 ' from ' :attacker6_cidr '), detected; revocation comes with ato.revoke_incident (issue 4): nothing has been revoked.'
\echo :summary
