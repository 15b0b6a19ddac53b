-- install/sections/06_summaries.sql: the per-account and recent summaries, their watermark and ato.refresh_summaries() (write side in src/summary.c).
-- A piece of the install script, which the Makefile assembles: not loadable alone.

-- ---------------------------------------------------------------------------
-- Per-account summaries
-- ---------------------------------------------------------------------------

CREATE TABLE ato.account_countries (
    user_id          text        NOT NULL,
    country_code     text        NOT NULL,
    first_success_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, country_code)
);
-- the pairs first seen in a window: what makes new_country_logins cost the
-- window and not the number of accounts
CREATE INDEX account_countries_first_success_at_idx ON ato.account_countries (first_success_at);
COMMENT ON TABLE ato.account_countries IS
    'Per account, the countries it has logged in from successfully, with the first such login: what makes a country familiar, kept by ato.refresh_summaries()';
SELECT pg_catalog.pg_extension_config_dump('ato.account_countries', '');

-- Not dumped: after a restore the watermark starts again at -infinity, and
-- the first refresh folds the whole store in once more (it only ever adds,
-- so that is harmless).  Each refresh rewrites the row of every account that
-- logged in since the last one: half-full pages let those updates stay on
-- their page (HOT) instead of adding an index entry each time.  The same
-- holds for the per-hour rows of ato.recent_address_logins.
CREATE TABLE ato.account_last_logins (
    user_id      text             PRIMARY KEY,
    event_id     bigint           NOT NULL,
    occurred_at  timestamptz      NOT NULL,
    ip_address   inet,
    country_code text,
    latitude     double precision NOT NULL,
    longitude    double precision NOT NULL,
    approximate  boolean          NOT NULL
) WITH (fillfactor = 50);
COMMENT ON TABLE ato.account_last_logins IS
    'Per account, its latest successful login with a place (coordinates, or a country centre when approximate) before the summaries'' watermark; ato.impossible_travel() takes the previous login from here instead of re-reading the history';
SELECT pg_catalog.pg_extension_config_dump('ato.account_last_logins', '');

-- The recent summaries: the last two days of successful logins in the shapes
-- two questions need, so that they read what they return instead of every
-- login of their window.  Rows older than summary_watermark.recent_from are
-- pruned at each refresh; a window starting before it reads the event store.
-- Not dumped, like the watermark they hang on.
CREATE TABLE ato.recent_new_country_logins (
    event_id         bigint      NOT NULL,
    user_id          text        NOT NULL,
    ip_address       inet,
    country_code     text,
    occurred_at      timestamptz NOT NULL,
    first_success_at timestamptz -- the pair's, as in ato.account_countries
);
CREATE INDEX recent_new_country_logins_occurred_at_idx ON ato.recent_new_country_logins (occurred_at);
COMMENT ON TABLE ato.recent_new_country_logins IS
    'The successful logins since ato.summary_watermark.recent_from whose (account, country) pair was first seen since then, with that first time, and those with no known country: what ato.new_country_logins() reads for the summarised part of its window';

CREATE TABLE ato.recent_address_logins (
    ip_address  inet        NOT NULL,
    user_id     text        NOT NULL,
    hour        timestamptz NOT NULL,
    logins      bigint      NOT NULL,
    first_login timestamptz NOT NULL,
    last_login  timestamptz NOT NULL,
    PRIMARY KEY (ip_address, user_id, hour)
) WITH (fillfactor = 50);
CREATE INDEX recent_address_logins_hour_idx ON ato.recent_address_logins (hour);
COMMENT ON TABLE ato.recent_address_logins IS
    'Successful logins since ato.summary_watermark.recent_from per address, account and hour: what ato.cidr_scope() reads, by address, for the summarised whole hours of its window';

CREATE TABLE ato.summary_watermark (
    singleton          boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    summarised_until   timestamptz NOT NULL DEFAULT '-infinity',
    recent_from        timestamptz NOT NULL DEFAULT '-infinity',
    refreshed_at       timestamptz,
    last_refresh_pairs bigint
);
INSERT INTO ato.summary_watermark DEFAULT VALUES;
COMMENT ON TABLE ato.summary_watermark IS
    'The watermark of the per-account summaries: every successful login before summarised_until is counted, but on the days in ato.summary_late_days; the recent summaries hold what lies between recent_from and the watermark';

-- Appended to, never updated, by the transactions that store late events,
-- so that they neither wait for each other nor fail to serialize.
CREATE TABLE ato.summary_late_days (
    day timestamptz NOT NULL
);
COMMENT ON TABLE ato.summary_late_days IS
    'Days behind the watermark on which events were stored after the last refresh (imports, delayed reports, updates); the next refresh folds them in again';

-- Written by ato.refresh_summaries() before it waits for the transactions
-- storing events, outside its transaction, and read by them without waiting
-- (see src/summary.c).  Not dumped, like the watermark.
CREATE SEQUENCE ato.summary_refresh_bound AS bigint
    MINVALUE -9223372036854775808 START WITH -9223372036854775808 NO CYCLE;
COMMENT ON SEQUENCE ato.summary_refresh_bound IS
    'The watermark the running (or last) ato.refresh_summaries() moves to, as a timestamptz''s microseconds since 2000 (the minimum: -infinity); a login stored behind it gets its late day';

CREATE FUNCTION ato.summary_refresh_begin(until timestamptz)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'ato_summary_refresh_begin'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION ato.summary_refresh_begin(timestamptz) IS
    'The start of ato.refresh_summaries(): takes the refresh lock, publishes the watermark it moves to (returned) and waits for the transactions then storing login events, without making any transaction wait';
REVOKE ALL ON FUNCTION ato.summary_refresh_begin(timestamptz) FROM PUBLIC;

CREATE VIEW ato.summary_status AS
SELECT s.summarised_until,
       (SELECT min(l.day) FROM ato.summary_late_days l) AS late_from,
       s.recent_from,
       s.refreshed_at,
       s.last_refresh_pairs,
       CASE WHEN b.last_value = -9223372036854775808 THEN '-infinity'::timestamptz
            ELSE timestamptz '2000-01-01 00:00+00' + b.last_value * interval '1 microsecond' END AS refreshing_to,
       (SELECT count(DISTINCT l.day) FROM ato.summary_late_days l) AS late_days
  FROM ato.summary_watermark s, ato.summary_refresh_bound b;
COMMENT ON VIEW ato.summary_status IS
    'How far the per-account summaries reach: counted up to summarised_until except on the late_days days from late_from on, the recent ones from recent_from; when and with how many changes ato.refresh_summaries() last ran; refreshing_to, where the last or running refresh moves the watermark (a refresh folding a history in steps of max_span is done when summarised_until reaches it)';

CREATE FUNCTION ato.refresh_summaries(until    timestamptz DEFAULT now() - interval '5 minutes',
                                      max_span interval    DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    state       ato.summary_watermark;
    upto        timestamptz;   -- the watermark this refresh moves to (published)
    reach       timestamptz;   -- where this call stops: upto, or short of it when max_span runs out
    budget      interval := max_span;
    stretch_from timestamptz;
    keep_from   timestamptz;
    recent_fold timestamptz;
    late        record;
    late_rows   tid[] := '{}';
    late_touch  timestamptz;   -- the earliest late day folded that the recent summaries cover
    ranges      tstzrange[] := '{}';
    fold        tstzrange;
    folded_late boolean := false;
    changed     bigint := 0;
    n           bigint;
BEGIN
    IF until IS NULL OR until = 'infinity' THEN
        RAISE EXCEPTION 'until must be a finite time'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it out to summarise up to five minutes ago.';
    END IF;
    IF max_span IS NOT NULL AND NOT (max_span > interval '0') THEN
        RAISE EXCEPTION 'max_span must be positive, not %', max_span
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the stretch of history one call may fold, such as ''7 days'', or leave it out to fold everything.';
    END IF;
    -- One refresh at a time; publish the watermark this one moves to (never
    -- backwards, never within the last minute, which a storing transaction
    -- trusts to be beyond it without reading anything), and wait for the
    -- transactions storing events without making any wait: one that began
    -- before has ended, one that began since has marked its late logins
    -- against what was published (see src/summary.c).  Every statement
    -- below reads with a snapshot taken after the wait.
    -- no month attached under the statements below (src/event_layout.c)
    PERFORM ato.hold_event_layout();
    upto := ato.summary_refresh_begin(until);
    SELECT * INTO STRICT state FROM ato.summary_watermark FOR UPDATE;
    -- The recent summaries keep the two days (whole UTC hours) before the
    -- watermark this refresh moves to, also when a call stops short of it.
    keep_from := greatest(state.recent_from, date_trunc('hour', upto - interval '48 hours', 'UTC'));

    -- What to fold, oldest first.  The late days behind the watermark, a day
    -- each (a writer lists every day it stored a late login on): the
    -- per-account summaries only ever take a minimum or a maximum, so
    -- folding a day again is exact, and nothing else needs reading.  They
    -- are deleted at the end: exactly those read, since writers may append
    -- more meanwhile.  A day at or past the watermark is in the stretch
    -- below.  max_span counts a day for each.
    FOR late IN SELECT l.day, array_agg(l.ctid) AS rows FROM ato.summary_late_days l GROUP BY l.day ORDER BY l.day LOOP
        EXIT WHEN budget IS NOT NULL AND budget <= interval '0';
        IF late.day < state.summarised_until THEN
            -- consecutive days are folded as one stretch (a history imported
            -- behind the watermark is a run of days)
            IF folded_late AND upper(ranges[cardinality(ranges)]) = late.day THEN
                ranges[cardinality(ranges)] := tstzrange(lower(ranges[cardinality(ranges)]),
                                                         least(late.day + interval '24 hours', state.summarised_until));
            ELSE
                ranges := ranges || tstzrange(late.day, least(late.day + interval '24 hours', state.summarised_until));
            END IF;
            folded_late := true;
            IF late_touch IS NULL AND late.day + interval '24 hours' > keep_from THEN
                late_touch := late.day;
            END IF;
        END IF;
        late_rows := late_rows || late.rows;
        budget := budget - interval '24 hours';
    END LOOP;
    -- Then the stretch from the watermark on, as far as max_span allows (a
    -- first refresh of a history begins at its first success).
    reach := upto;
    IF budget IS NOT NULL THEN
        stretch_from := state.summarised_until;
        IF stretch_from = '-infinity' THEN
            SELECT min(e.occurred_at) INTO stretch_from
              FROM ato.login_events e WHERE e.occurred_at < upto AND e.outcome = 'success';
        END IF;
        IF budget <= interval '0' THEN
            reach := state.summarised_until;
        ELSIF stretch_from IS NOT NULL THEN
            reach := least(upto, greatest(stretch_from + budget, state.summarised_until));
        END IF;
    END IF;
    IF state.summarised_until < reach THEN
        ranges := ranges || tstzrange(state.summarised_until, reach);
    END IF;

    FOREACH fold IN ARRAY ranges LOOP
        -- Only new pairs and earlier first logins are written: a known pair
        -- is skipped before the insert, since ON CONFLICT would lock its row
        -- (a write) even where it changes nothing.
        INSERT INTO ato.account_countries AS k (user_id, country_code, first_success_at)
        SELECT g.user_id, g.country_code, g.first_success_at
          FROM (SELECT e.user_id, e.country_code, min(e.occurred_at) AS first_success_at
                  FROM ato.login_events e
                 WHERE e.occurred_at >= lower(fold) AND e.occurred_at < upper(fold)
                   AND e.outcome = 'success' AND e.country_code IS NOT NULL
                 GROUP BY e.user_id, e.country_code) g
         WHERE NOT EXISTS (SELECT FROM ato.account_countries p
                            WHERE p.user_id = g.user_id AND p.country_code = g.country_code
                              AND p.first_success_at <= g.first_success_at)
        ON CONFLICT (user_id, country_code) DO UPDATE
           SET first_success_at = excluded.first_success_at
         WHERE excluded.first_success_at < k.first_success_at;
        GET DIAGNOSTICS n = ROW_COUNT;
        changed := changed + n;
        -- Most accounts have a row already: one UPDATE moves those (cheaper
        -- than an INSERT ... ON CONFLICT per account), the INSERT adds the
        -- others (it sees the table as it was before the statement).  The
        -- accounts are sorted by their bytes: the order does not matter, and
        -- sorting by the database's collation costs a fifth more.
        WITH latest AS MATERIALIZED (
            SELECT DISTINCT ON (e.user_id COLLATE "C") e.user_id, e.id, e.occurred_at, e.ip_address,
                   e.country_code, e.lat, e.lon, e.approximate
              FROM ato.located_logins e
             WHERE e.occurred_at >= lower(fold) AND e.occurred_at < upper(fold) AND e.outcome = 'success'
             ORDER BY e.user_id COLLATE "C", e.occurred_at DESC, e.id DESC),
        moved AS (
            UPDATE ato.account_last_logins k
               SET event_id = n.id, occurred_at = n.occurred_at, ip_address = n.ip_address,
                   country_code = n.country_code, latitude = n.lat, longitude = n.lon, approximate = n.approximate
              FROM latest n
             WHERE k.user_id = n.user_id AND (n.occurred_at, n.id) > (k.occurred_at, k.event_id))
        INSERT INTO ato.account_last_logins (user_id, event_id, occurred_at, ip_address, country_code,
                                             latitude, longitude, approximate)
        SELECT n.user_id, n.id, n.occurred_at, n.ip_address, n.country_code, n.lat, n.lon, n.approximate
          FROM latest n
         WHERE NOT EXISTS (SELECT FROM ato.account_last_logins k WHERE k.user_id = n.user_id);
    END LOOP;
    -- Only late events can move a pair's first success earlier.  Moved
    -- before the recent stretch, the pair is no longer young: its recent
    -- logins go.  Moved within it, they go too, and come back with the
    -- stretch built again below from the late day on.
    IF folded_late THEN
        DELETE FROM ato.recent_new_country_logins r
         USING ato.account_countries k
         WHERE k.user_id = r.user_id AND k.country_code = r.country_code
           AND k.first_success_at < r.first_success_at;
    END IF;

    -- The recent summaries are added to from the old watermark on; when a
    -- late day folded in lies in their stretch, it is built again from that
    -- day, since counts cannot be folded in twice.
    recent_fold := greatest(state.summarised_until, keep_from);
    IF late_touch IS NOT NULL THEN
        recent_fold := greatest(late_touch, keep_from);
        DELETE FROM ato.recent_address_logins WHERE hour >= recent_fold;
        DELETE FROM ato.recent_new_country_logins WHERE occurred_at >= recent_fold;
    END IF;
    IF recent_fold < reach THEN
        INSERT INTO ato.recent_address_logins AS k (ip_address, user_id, hour, logins, first_login, last_login)
        SELECT e.ip_address, e.user_id, date_trunc('hour', e.occurred_at, 'UTC'), count(*), min(e.occurred_at), max(e.occurred_at)
          FROM ato.login_events e
         WHERE e.occurred_at >= recent_fold AND e.occurred_at < reach
           AND e.outcome = 'success' AND e.ip_address IS NOT NULL
         GROUP BY 1, 2, 3
        ON CONFLICT (ip_address, user_id, hour) DO UPDATE
           SET logins = k.logins + excluded.logins,
               first_login = least(k.first_login, excluded.first_login),
               last_login = greatest(k.last_login, excluded.last_login);
        -- a login's pair is young when first seen since keep_from: any
        -- window starting at or after it finds its new pairs here
        INSERT INTO ato.recent_new_country_logins (event_id, user_id, ip_address, country_code, occurred_at,
                                                   first_success_at)
        SELECT e.id, e.user_id, e.ip_address, e.country_code, e.occurred_at, young.first_success_at
          FROM ato.login_events e
          LEFT JOIN (SELECT p.user_id, p.country_code, p.first_success_at FROM ato.account_countries p
                      WHERE p.first_success_at >= keep_from) young
                 ON young.user_id = e.user_id AND young.country_code = e.country_code
         WHERE e.occurred_at >= recent_fold AND e.occurred_at < reach AND e.outcome = 'success'
           AND (e.country_code IS NULL OR young.user_id IS NOT NULL);
    END IF;
    DELETE FROM ato.recent_address_logins WHERE hour < keep_from;
    DELETE FROM ato.recent_new_country_logins WHERE occurred_at < keep_from;

    DELETE FROM ato.summary_late_days WHERE ctid = ANY (late_rows);
    UPDATE ato.summary_watermark
       SET summarised_until = reach, recent_from = keep_from,
           refreshed_at = now(), last_refresh_pairs = changed;
    RETURN changed;
END
$$;
COMMENT ON FUNCTION ato.refresh_summaries(timestamptz, interval) IS
    'Folds the successful logins stored since the last run (and the late days behind it) into ato.account_countries and the other summaries, up to until (at most a minute ago); returns how many (account, country) pairs it added or moved. With max_span, folds at most that much history (a late day counts as a day) and stops short, to be called again: each call commits what it folded, and ato.summary_status shows how far it is. It waits for the transactions already storing events and never makes one wait; one runs at a time, at READ COMMITTED. Schedule it every minute or so, or let the detection worker run it';
REVOKE ALL ON FUNCTION ato.refresh_summaries(timestamptz, interval) FROM PUBLIC;
