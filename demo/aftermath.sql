-- aftermath.sql: the rest of the incident, as the runbooks in seeds 000-004
-- tell it: the takeover confirmed, which writes the users' notices (seed 004:
-- "as soon as the affected account list is confirmed") and the revocations
-- each downstream application owes (seed 003); the mailer's first sends;
-- the root cause and a follow-up; the retrospective's measures.  demo.sh
-- then writes the incident's HTML report to a file.
\set QUIET on
SELECT id AS incident FROM ato.incidents ORDER BY opened_at DESC LIMIT 1 \gset
SELECT ato.register_downstream_app('Slack', 'Admin console: Manage members, then Sign out of all sessions',
                                   'it-ops@example.com') AS slack \gset
\pset title '(k) ato.advance_incident(confirmed): the notices and the downstream revocations owed are written'
SELECT ato.advance_incident(:'incident', 'confirmed', 'the owners say the logins were not theirs') AS stage;
SELECT count(*) AS notices, count(DISTINCT channel) AS channels, min(subject) AS subject
  FROM ato.user_notifications WHERE incident_id = :'incident';
\pset title '(k) one notice, as the mailer gets it (with a recovery link of its own)'
SELECT user_id, channel, must_do, left(message, 160) AS message
  FROM ato.user_notifications WHERE incident_id = :'incident' ORDER BY user_id LIMIT 1;
\pset title '(k) the mailer claims three notices and reports them sent'
SELECT count(*) AS sent
  FROM (SELECT ato.mark_notification_sent(c.outbox_id, c.attempt, 'demo-mailer')
          FROM ato.claim_notifications(3) c) s;
\pset title '(l) downstream: what is still owed'
SELECT item, name, count(*) AS entries, min(how) AS how
  FROM ato.downstream_outstanding WHERE incident_id = :'incident' GROUP BY 1, 2 ORDER BY 1, 2;
\pset title
SELECT ato.set_root_cause(:'incident', 'credential_stuffing', 'leaked passwords tried from one network') \gset
SELECT ato.add_follow_up(:'incident', 'rate-limit logins per network', 'platform team', current_date + 14) AS follow_up \gset
\pset title '(m) ato.incident_retrospective(): detection gap, containment, scope, notices, recovery'
SELECT section, measure, date_trunc('second', duration) AS duration, amount
  FROM ato.incident_retrospective(:'incident') WHERE section <> 'detection rules';
\pset title '(m) the rules that fired for the incident''s accounts in its window'
SELECT measure AS rule, amount AS alerts
  FROM ato.incident_retrospective(:'incident')
 WHERE section = 'detection rules' AND (detail ->> 'fired')::boolean ORDER BY 1;
\pset title
SELECT count(*) = 0 AS no_notices FROM ato.user_notifications WHERE incident_id = :'incident' \gset
\if :no_notices
DO $$BEGIN RAISE EXCEPTION 'the confirmed incident wrote no notices'; END$$;
\endif
