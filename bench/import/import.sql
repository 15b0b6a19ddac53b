-- import.sql -- the import benchmark: a JSON-lines file of Okta System Log
-- events loaded through the bulk path (COPY into ato.okta_import, which maps
-- each event with ato.okta_event() and stores it through the trigger),
-- against a plain COPY of the very rows that import stores (a CSV file of
-- their columns) into ato.login_events, through the same trigger.
--
--   psql -v dir=/server/side/dir [-v events=200000] [-v runs=3] -f import.sql
--
-- :dir must be writable by the server (the files are written and read
-- server-side, as generate.sql's are).  Every event is a login
-- (user.session.start), so both contenders store the same rows in the same
-- table; each run starts from empty monthly partitions, after a CHECKPOINT.
-- Run 0 is a warm-up that the medians leave out (and the one whose stored
-- rows become the plain contender's file).  Nothing fails on a time: the run
-- fails only when the two contenders store different rows.
\set ON_ERROR_STOP on
\if :{?dir}
\else
\echo 'import.sql: give -v dir=DIRECTORY (server-side, writable by the server)'
\quit
\endif
\if :{?events}
\else
\set events 200000
\endif
\if :{?runs}
\else
\set runs 3
\endif
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS bench;
SELECT :'dir' || '/okta.jsonl' AS jsonl_file, :'dir' || '/okta_rows.csv' AS csv_file \gset

-- Okta events as its System Log API writes them (about 1.3 kB each): one
-- login every few seconds over the last 20 days, 20,000 accounts, their
-- home addresses and a share from anywhere, 10% failures, the client,
-- geography, session, security context and risk fields Okta fills in.
SELECT setseed(0.15);
COPY (
    SELECT jsonb_build_object(
        'uuid', md5('event-' || n)::uuid,
        'published', to_char((now() - interval '20 days' + n * (interval '20 days' / :events)) AT TIME ZONE 'UTC',
                             'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'eventType', 'user.session.start', 'version', '0', 'severity', 'INFO',
        'legacyEventType', CASE WHEN fail THEN 'core.user_auth.login_failed' ELSE 'core.user_auth.login_success' END,
        'displayMessage', 'User login to Okta',
        'actor', jsonb_build_object('id', '00u' || substr(md5('user-' || u), 1, 17), 'type', 'User',
                                    'alternateId', 'user' || u || '@example.com', 'displayName', 'User ' || u,
                                    'detailEntry', NULL),
        'client', jsonb_build_object(
            'userAgent', jsonb_build_object(
                'rawUserAgent', (ARRAY['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
                                       'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15',
                                       'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
                                       'Okta Verify/9.13.0 (Android 14; Pixel 8)'])[1 + u % 4],
                'os', (ARRAY['Windows 10', 'Mac OS X', 'iOS', 'Android'])[1 + u % 4],
                'browser', (ARRAY['CHROME', 'SAFARI', 'SAFARI', 'UNKNOWN'])[1 + u % 4]),
            'zone', 'null', 'device', 'Computer', 'id', NULL, 'ipAddress', ip::text,
            'geographicalContext', jsonb_build_object(
                'city', 'City ' || (u % 500), 'state', 'State ' || (u % 50), 'country', 'Country ' || (u % 40),
                'postalCode', lpad((u % 99999)::text, 5, '0'),
                'geolocation', jsonb_build_object('lat', round((u % 140 - 70 + 0.1234)::numeric, 4),
                                                  'lon', round((u % 340 - 170 + 0.5678)::numeric, 4)))),
        'outcome', jsonb_build_object('result', CASE WHEN fail THEN 'FAILURE' ELSE 'SUCCESS' END,
                                      'reason', CASE WHEN fail THEN 'INVALID_CREDENTIALS' END),
        'target', '[]'::jsonb,
        'transaction', jsonb_build_object('type', 'WEB', 'id', substr(md5('tx-' || n), 1, 27), 'detail', '{}'::jsonb),
        'debugContext', jsonb_build_object('debugData', jsonb_build_object(
            'requestId', substr(md5('tx-' || n), 1, 27), 'requestUri', '/idp/idx/identify', 'url', '/idp/idx/identify?',
            'risk', CASE WHEN n % 7 = 0 THEN '{reasons=New Device, level=MEDIUM}' ELSE '{level=LOW}' END,
            'threatSuspected', 'false',
            'behaviors', '{New Geo-Location=NEGATIVE, New Device=' || CASE WHEN n % 7 = 0 THEN 'POSITIVE' ELSE 'NEGATIVE' END
                         || ', New IP=NEGATIVE, Velocity=NEGATIVE}')),
        'authenticationContext', jsonb_build_object('authenticationProvider', NULL, 'credentialProvider', NULL,
            'credentialType', NULL, 'issuer', NULL, 'interface', NULL, 'authenticationStep', 0,
            'externalSessionId', '102' || substr(md5('session-' || u || '-' || n / 50), 1, 22)),
        'securityContext', jsonb_build_object('asNumber', 7922 + u % 50, 'asOrg', 'isp ' || u % 50, 'isp', 'isp ' || u % 50,
                                              'domain', 'isp' || u % 50 || '.example', 'isProxy', false),
        'request', jsonb_build_object('ipChain', jsonb_build_array(jsonb_build_object('ip', ip::text, 'version', 'V4')))
    )::text
      FROM (SELECT n, u, random() < 0.1 AS fail,
                   CASE WHEN random() < 0.75 THEN '81.2.0.0'::inet + (u * 7919) % 65536
                        ELSE '5.0.0.0'::inet + (random() * 200000000)::bigint END AS ip
              FROM (SELECT n, (random() * 19999)::int AS u FROM generate_series(1, :events) n) g) e
) TO :'jsonl_file' (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');

SELECT ato.create_event_partitions(now() - interval '21 days', now()) >= 0 AS partitions;
CREATE TABLE bench.import_timing (variant text, run int, mark text, at timestamptz);

-- One run of a contender: empty the table, checkpoint, COPY between two
-- time stamps (each its own statement, so its own transaction).
CREATE FUNCTION pg_temp.run_sql(variant text, run int, copy text) RETURNS SETOF text
LANGUAGE sql AS $$
    VALUES ('TRUNCATE ato.login_events, ato.audit_events, ato.import_rejections'),
           ('CHECKPOINT'),
           (format('INSERT INTO bench.import_timing VALUES (%L, %s, ''start'', clock_timestamp())', variant, run)),
           (copy),
           (format('INSERT INTO bench.import_timing VALUES (%L, %s, ''end'', clock_timestamp())', variant, run))
$$;

-- the warm-up import, whose rows make the plain contender's file
SELECT pg_temp.run_sql('import', 0,
           format('COPY ato.okta_import FROM %L (FORMAT csv, QUOTE E''\x01'', DELIMITER E''\x02'')', :'jsonl_file')) \gexec
SELECT count(*) = :events AS all_stored, (SELECT count(*) FROM ato.import_rejections) = 0 AS none_rejected
  FROM ato.login_events \gset
\if :all_stored
\else
\echo 'import.sql: not every event was stored'
SELECT 1 / 0;
\endif
\if :none_rejected
\else
\echo 'import.sql: the import rejected events'
SELECT 1 / 0;
\endif
COPY (SELECT occurred_at, user_id, ip_address, outcome, user_agent, source, metadata, session_id, latitude, longitude
        FROM ato.login_events ORDER BY id) TO :'csv_file' (FORMAT csv);
SELECT md5(string_agg(concat_ws('|', occurred_at, user_id, ip_address, outcome, user_agent, source, metadata,
                                session_id, country_code, latitude, longitude), ';' ORDER BY id)) AS import_digest
  FROM ato.login_events \gset

-- a plain warm-up, then import and plain by turns
SELECT r.sql
  FROM generate_series(0, :runs) run,
       LATERAL (SELECT * FROM pg_temp.run_sql('import', run,
                    format('COPY ato.okta_import FROM %L (FORMAT csv, QUOTE E''\x01'', DELIMITER E''\x02'')', :'jsonl_file'))
                 WHERE run > 0
                UNION ALL
                SELECT * FROM pg_temp.run_sql('plain', run,
                    format('COPY ato.login_events (occurred_at, user_id, ip_address, outcome, user_agent, source, metadata, session_id, latitude, longitude) FROM %L (FORMAT csv)', :'csv_file'))
               ) r(sql) \gexec
-- the last run was a plain COPY: it stored what the import stores
SELECT md5(string_agg(concat_ws('|', occurred_at, user_id, ip_address, outcome, user_agent, source, metadata,
                                session_id, country_code, latitude, longitude), ';' ORDER BY id)) = :'import_digest'
       AS same_rows
  FROM ato.login_events \gset
\if :same_rows
\else
\echo 'import.sql: the plain COPY stored other rows than the import'
SELECT 1 / 0;
\endif

\pset footer off
WITH t AS (
    SELECT variant, run, extract(epoch FROM max(at) FILTER (WHERE mark = 'end') - max(at) FILTER (WHERE mark = 'start')) AS seconds
      FROM bench.import_timing WHERE run > 0 GROUP BY variant, run),
     m AS (
    SELECT variant, percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS seconds FROM t GROUP BY variant)
SELECT variant, round(seconds::numeric, 2) AS median_seconds, round((:events / seconds)::numeric) AS events_per_second,
       (SELECT count(*) FROM t WHERE t.variant = m.variant) AS runs
  FROM m ORDER BY variant DESC;
WITH t AS (
    SELECT variant, run, extract(epoch FROM max(at) FILTER (WHERE mark = 'end') - max(at) FILTER (WHERE mark = 'start')) AS seconds
      FROM bench.import_timing WHERE run > 0 GROUP BY variant, run),
     m AS (
    SELECT variant, percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS seconds FROM t GROUP BY variant)
SELECT format('import: %s Okta events (%s MB of JSON lines) through COPY ato.okta_import, against plain COPY of the same rows into ato.login_events: ratio plain/import = %s',
              :events, round((pg_stat_file(:'jsonl_file')).size / 1e6, 1),
              round(((SELECT seconds FROM m WHERE variant = 'plain') / (SELECT seconds FROM m WHERE variant = 'import'))::numeric, 3))
       AS result;
DROP TABLE bench.import_timing;
