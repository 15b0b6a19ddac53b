-- tables.sql -- copy :copy (seed, ato or plain) of seed 004's sessions and
-- refresh_tokens, 3 and 5 per account of bench.accounts, created round by
-- round (so an account's rows are spread over the table as they are when
-- created over time), with B-trees on user_id; and the view :copy_marked,
-- one line per marked row's account, that the copies are compared by.

\set sessions bench. :copy _sessions
\set tokens bench. :copy _refresh_tokens
CREATE TABLE :sessions (id bigserial PRIMARY KEY, user_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), ended_at timestamptz, end_reason text, incident_id uuid);
CREATE TABLE :tokens (id bigserial PRIMARY KEY, user_id text NOT NULL,
    revoked boolean NOT NULL DEFAULT false, revoked_at timestamptz, revocation_reason text, revocation_incident_id uuid);
INSERT INTO :sessions (user_id) SELECT a.user_id FROM generate_series(1, 3) r, bench.accounts a ORDER BY r, a.n;
INSERT INTO :tokens (user_id) SELECT a.user_id FROM generate_series(1, 5) r, bench.accounts a ORDER BY r, a.n;
CREATE INDEX ON :sessions (user_id);
CREATE INDEX ON :tokens (user_id);
VACUUM ANALYZE :sessions;
VACUUM ANALYZE :tokens;
\set marked bench. :copy _marked
CREATE VIEW :marked AS
SELECT 's' AS row_kind, user_id FROM :sessions WHERE ended_at IS NOT NULL
UNION ALL
SELECT 't', user_id FROM :tokens WHERE revoked;
