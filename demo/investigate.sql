-- investigate.sql -- what the on-call engineer asks first, answered by the
-- extension's detection functions: the "ATO at scale" runbook's detection
-- and scope questions, then the rest of the hunt kit.  The demo.* tables
-- are used only for the last step, which checks the answers against what
-- incident.sql staged.
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
\echo '== the per-account summaries: folded in by ato.refresh_summaries() (pg_cron runs it every minute)'
\pset title 'ato.refresh_summaries(), then ato.summary_status'
SELECT ato.refresh_summaries() AS pairs_added \gset
SELECT :pairs_added AS pairs_added, to_char(summarised_until, 'MM-DD HH24:MI') AS summarised_until,
       late_from, (SELECT count(*) FROM ato.account_countries) AS account_countries
  FROM ato.summary_status;

\echo
\echo '== (a) accounts with a successful login from a new country in the last hour, then an e-mail, password or billing change within the hour'
-- SELECT * FROM ato.new_country_logins() answers the runbook's first query:
-- a login is from a new country when the account had no successful login
-- from there before the window.  The demo keeps those followed by a change.
CREATE TEMP TABLE new_country_then_changed AS
SELECT f.user_id, f.ip_address, f.country_code, f.occurred_at, f.suspicious_actions,
       (SELECT string_agg(DISTINCT ae.event_type, ', ' ORDER BY ae.event_type)
          FROM ato.audit_events ae
         WHERE ae.actor_id = f.user_id
           AND ae.event_type IN ('user.email_changed', 'user.password_changed', 'billing.modified')
           AND ae.occurred_at BETWEEN f.occurred_at AND f.occurred_at + interval '1 hour') AS actions
  FROM ato.new_country_logins(now() - interval '1 hour') f
 WHERE f.suspicious_actions > 0 AND f.country_code IS NOT NULL;

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
\echo '== (b) which accounts the attacker networks got into in the last 24 hours'
-- SELECT * FROM ato.cidr_scope('{<networks>}'): one row per account.
CREATE TEMP TABLE scoped AS
SELECT * FROM ato.cidr_scope(ARRAY[:'attacker_cidr', :'attacker6_cidr']::cidr[], now() - interval '24 hours');
\pset title '(b) affected accounts per network'
SELECT n.network AS attacker_network,
       count(DISTINCT s.user_id) FILTER (WHERE EXISTS (SELECT FROM unnest(s.ips) ip WHERE ip <<= n.network)) AS affected_accounts
  FROM (VALUES (:'attacker_cidr'::cidr), (:'attacker6_cidr'::cidr)) AS n(network), scoped s
 GROUP BY n.network ORDER BY affected_accounts DESC;
\pset title '(b) ato.cidr_scope(...), the first 5 accounts'
SELECT user_id, logins, to_char(first_login, 'HH24:MI') AS first_login, ips, actions
  FROM scoped ORDER BY first_login, user_id LIMIT 5;

\echo
\echo '== (c) what those accounts did in the last 24 hours'
\pset title '(c) ato.suspicious_action_counts(<the scoped accounts>)'
SELECT * FROM ato.suspicious_action_counts((SELECT array_agg(user_id) FROM scoped), now() - interval '24 hours');

\echo
\echo '== (d) the credential-stuffing signal: attempts and success rate per source in the last hour'
\pset title '(d) ato.credential_stuffing(): the 5 networks with the most attempts'
SELECT source AS network, attempts, successes, round(100 * success_rate::numeric, 1) AS success_pct,
       accounts AS accounts_tried, suspicious
  FROM ato.credential_stuffing(now() - interval '1 hour', 1)
 WHERE source_kind = 'network'
 ORDER BY attempts DESC, source
 LIMIT 5;

\echo
\echo '== (e) the rest of the kit'
\pset title '(e) ato.persistence_changes(<the scoped accounts>): ways back in, by kind'
SELECT category, count(*) AS events, count(DISTINCT actor_id) AS accounts
  FROM ato.persistence_changes((SELECT array_agg(user_id) FROM scoped), now() - interval '24 hours')
 GROUP BY category ORDER BY events DESC, category;
\pset title '(e) ato.impossible_travel() in the last 24 hours, by route'
SELECT from_country, to_country, count(*) AS legs, round(avg(speed_kmh)) AS avg_kmh, bool_and(approximate) AS approximate
  FROM ato.impossible_travel()
 GROUP BY 1, 2 ORDER BY legs DESC, 1, 2 LIMIT 5;
\pset title '(e) ato.related_accounts(<the scoped accounts>): who else shares their addresses'
SELECT count(*) AS related_accounts FROM ato.related_accounts((SELECT array_agg(user_id) FROM scoped), now() - interval '24 hours');
\pset title

-- Check the answers against what incident.sql staged: (a) must flag exactly
-- the staged accounts that changed e-mail, password or billing after a login
-- from a new country, and (b) exactly the accounts the stuffing run got into.
SELECT
    (SELECT count(*) FROM demo.staged WHERE role = 'stuffing victim')                     AS staged_stuffing,
    (SELECT count(*) FROM demo.staged WHERE role = 'ipv6 victim')                         AS staged_v6,
    (SELECT count(*) FROM demo.staged WHERE role <> 'traveller' AND changed_account)      AS staged_changed,
    (SELECT count(*) FROM scoped WHERE EXISTS (SELECT FROM unnest(ips) ip WHERE ip <<= :'attacker_cidr'))
                                                                                          AS scoped,
    (SELECT count(*) FROM (SELECT user_id FROM scoped
                            WHERE EXISTS (SELECT FROM unnest(ips) ip WHERE ip <<= :'attacker_cidr')
                           EXCEPT SELECT user_id FROM demo.staged WHERE role = 'stuffing victim') x)
  + (SELECT count(*) FROM (SELECT user_id FROM demo.staged WHERE role = 'stuffing victim'
                           EXCEPT SELECT user_id FROM scoped
                            WHERE EXISTS (SELECT FROM unnest(ips) ip WHERE ip <<= :'attacker_cidr')) x)
                                                                                          AS scope_mismatches,
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
\echo '== the always-on rules, as the worker or a pg_cron job runs them: a hunt over the last two hours'
\pset title 'ato.run_detections(since): the rules that raised alerts (ato.alerts)'
SELECT rule, findings FROM ato.run_detections(now() - interval '2 hours') WHERE findings > 0 ORDER BY rule;
\pset title

\echo
\echo '== summary'
SELECT CASE :flagged_travellers WHEN 1 THEN 'traveller' ELSE 'travellers' END AS travellers_word \gset
\set check 'check: (a) flagged all ' :staged_changed ' staged takeovers that went on to change e-mail, password or billing, plus ' :flagged_travellers ' genuine ' :travellers_word ' who did so abroad (to review by hand); (b) found all ' :staged_stuffing ' accounts the /24 got into, ' :unchanged_stuffing ' of which made no such change and are invisible to (a).'
\echo :check
\set summary 'demo: ' :scoped ' accounts compromised from ' :attacker_cidr ' (and ' :staged_v6 ' from ' :attacker6_cidr '), detected.'
\echo :summary
