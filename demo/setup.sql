-- setup.sql -- the extensions the demo uses, in a fresh database.
--   psql -X -q -v ON_ERROR_STOP=1 -f demo/setup.sql

SET client_min_messages = warning;

CREATE EXTENSION ato_response;
CREATE EXTENSION pg_cron;

-- Monthly partitions ahead of time, nightly: the job the README recommends
-- until the extension's own worker does it.
SELECT cron.schedule('ato-partitions', '17 3 * * *',
                     $$SELECT ato.create_event_partitions(now(), now() + interval '3 months')$$) AS job_id \gset
-- The per-account summaries, every minute, so that detection reads little
-- more than its window.
SELECT cron.schedule('ato-summaries', '* * * * *', 'SELECT ato.refresh_summaries()') AS job_id \gset

\pset title 'Installed extensions'
SELECT extname AS extension, extversion AS version, extnamespace::regnamespace AS schema
  FROM pg_extension
 WHERE extname IN ('ato_response', 'pg_cron')
 ORDER BY extname;

\pset title 'pg_cron jobs'
SELECT jobid, jobname, schedule, command FROM cron.job ORDER BY jobid;
\pset title
