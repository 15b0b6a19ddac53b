#!/usr/bin/env bash
# run.sh -- the benchmarks of ato_response, each the extension's way against
# the plain way in one run on the same data, printing the ratio:
#
#   ingest     COPY of 1M login events into ato.login_events (trigger,
#              partitions, BRIN index) against a plain table of the same
#              columns, without and with the same BRIN index on occurred_at
#   geoip      ato.geoip_country() over 5M addresses against the same
#              lookups in a C loop over libmaxminddb
#   breakdown  where the ingest time goes: the same COPY into tables that add
#              one ingredient at a time (and a perf profile of the ato COPY
#              when perf is installed); not part of the default run
#   window     time-window queries over a year of history (50M login events
#              by default) in ato.login_events against one plain table with a
#              B-tree on occurred_at, and dropping the oldest month against
#              DELETE; not part of the default run (about 15 minutes, 30 GB)
#   detect     the detection functions against seed 004's query and plain
#              SQL with the best indexes for them, on 5M login events of 30
#              days, then again with 30 more days of history behind the same
#              window; not part of the default run
#   response   revoking 100k of 200k accounts with 3 sessions and 5 refresh
#              tokens each: the time until ato.revoke_incident() returns with
#              every account unusable against seed 004's loop (batches of
#              500, one notification per account, as a PL/pgSQL procedure),
#              and the background worker's marking of the rows against one
#              plain UPDATE per table; not part of the default run
#   worker     the detection worker (every minute) while pgbench records 5,000
#              login events a second for four minutes, with a credential-
#              stuffing wave staged in the middle: how soon its alert is
#              raised, whether every cycle ends within the interval, and the
#              worker's CPU time against the ingest backends'; not part of
#              the default run
#
#   login_latency
#              ato.record_login() at a fixed rate (pgbench -R, 200 a second)
#              for a period alone, then for the same period beside the
#              detection worker's cycles (every 5 s) and late imports of
#              150,000 events, each followed by ato.refresh_summaries(),
#              back to back: p50, p99 and the slowest login of both, and the
#              ratio of the p99s; not part of the default run
#
#   bash bench/run.sh [all|ingest|geoip|breakdown|window|detect|response|worker|login_latency]   (default: all = ingest + geoip)
#
# As root on a fresh Debian 12 machine it installs the packages, builds and
# installs the extension, starts a throwaway cluster in a temporary
# directory and removes it at the end.  Sizes can be lowered for a smoke
# run: ATO_BENCH_EVENTS (default 1000000), ATO_BENCH_ADDRESSES (5000000),
# ATO_BENCH_RUNS (timed runs of each contender: 5, or 3 in the breakdown),
# ATO_BENCH_WINDOW_EVENTS (50000000), ATO_BENCH_WINDOW_DAYS (365) and
# ATO_BENCH_DETECT_EVENTS (10000000: two halves of 30 days),
# ATO_BENCH_ACCOUNTS (200000, of which half are revoked).
# Nothing here fails on a time: the ratios are printed, and the run fails
# only when the contenders disagree on the results.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

what=${1:-all}
case $what in
    all | ingest | geoip | breakdown | window | detect | response | worker | login_latency | import) ;;
    *)
        echo "usage: bash bench/run.sh [all|ingest|geoip|breakdown|window|detect|response|worker|login_latency]" >&2
        exit 2
        ;;
esac

events=${ATO_BENCH_EVENTS:-1000000}
addresses=${ATO_BENCH_ADDRESSES:-5000000}
runs=${ATO_BENCH_RUNS:-5}
breakdown_runs=${ATO_BENCH_RUNS:-3}
window_events=${ATO_BENCH_WINDOW_EVENTS:-50000000}
window_days=${ATO_BENCH_WINDOW_DAYS:-365}
detect_events=${ATO_BENCH_DETECT_EVENTS:-10000000}
detect_runs=${ATO_BENCH_RUNS:-3}
accounts=${ATO_BENCH_ACCOUNTS:-200000}
bench_dir=$ato_root/bench
db=ato_bench

ato_install_packages
ato_build_install

work=$(ato_workdir)
cleanup() { ato_stop_cluster "$work/cluster"; rm -rf "$work"; }
trap cleanup EXIT
mkdir "$work/cluster"
((EUID == 0)) && chown postgres: "$work/cluster"

# Autovacuum is off so that no worker takes the second core in the middle of
# a timed COPY (each COPY leaves a freshly filled table behind); checkpoints
# are taken by hand before every timed statement, never by the timeout.
ato_say "starting a throwaway cluster in $work"
# Only the worker benchmark preloads the library: elsewhere a detection
# worker would take CPU in the middle of timed statements.
worker_conf=()
[[ $what == worker ]] && worker_conf=("shared_preload_libraries = 'ato_response'"
    "ato_response.databases = '$db'")
# login_latency starts the worker only for its second phase
[[ $what == login_latency ]] && worker_conf=("shared_preload_libraries = 'ato_response'"
    "ato_response.detection_interval = 5")
ato_start_cluster "$work/cluster" \
    "shared_buffers = 1GB" "max_wal_size = 4GB" "synchronous_commit = off" \
    "checkpoint_timeout = 1h" "autovacuum = off" "${worker_conf[@]}"
createdb "$db"
export PGDATABASE=$db
psql -qX -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION ato_response' -c 'CREATE SCHEMA bench' \
    -c 'CREATE TABLE bench.timing (variant text, run int, seconds float8, row_count bigint)'

bench_psql() { psql -qAtX -v ON_ERROR_STOP=1 "$@"; }

# timed VARIANT RUN SQL...: psql input that checkpoints and flushes the
# kernel's dirty pages (so that no write-back of an earlier run lands in this
# one), then runs the SQL with the time from just before to just after it
# (one round trip of SELECTs on a Unix socket, ~0.1 ms) recorded in
# bench.timing, with the row count the last statement reported (a COPY's
# rows).  Run 0 is a warm-up that the medians leave out: the first COPYs of
# a cluster also create its WAL segments, which later ones recycle.
timed() {
    local variant=$1 run=$2; shift 2
    printf 'CHECKPOINT;\n'
    printf '\\! sync\n'
    printf 'SELECT clock_timestamp() AS t0 \\gset\n'
    printf '%s\n' "$@"
    printf "INSERT INTO bench.timing VALUES ('%s', %d, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz), :ROW_COUNT);\n" \
        "$variant" "$run"
}

median_sql() { # median_sql VARIANT: the median seconds of a variant, as SQL
    printf "(SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) FROM bench.timing WHERE variant = '%s' AND run > 0)" "$1"
}

# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------
generate() { # generate EVENTS ADDRESSES [SPAN_DAYS [OFFSET_DAYS [FILE]]]
    ato_say "generating $1 login events over ${3:-30} days ending ${4:-0} days ago and $2 addresses (seeded, once)"
    bench_psql -v events="$1" -v events_file="${5:-$work/events.csv}" \
        -v addresses="$2" -v addresses_file="$work/addresses.txt" \
        -v span_days="${3:-30}" -v offset_days="${4:-0}" -f "$bench_dir/generate.sql" >/dev/null
}

# The tables the ingest benchmark loads: ato.login_events with monthly
# partitions covering the data, and plain tables of the same columns and
# defaults (so the same nextval() per row) without constraints or triggers.
setup_ingest_tables() {
    bench_psql <<'SQL'
SELECT ato.create_event_partitions(date_trunc('hour', now()) - interval '31 days', now()) AS created \gset
CREATE TABLE bench.plain (LIKE ato.login_events INCLUDING DEFAULTS);
CREATE TABLE bench.plain_indexed (LIKE ato.login_events INCLUDING DEFAULTS);
CREATE INDEX ON bench.plain_indexed USING brin (occurred_at) WITH (pages_per_range = 32);
SQL
}

copy_sql() { # copy_sql TABLE [FILE]: the COPY of the event file into TABLE
    printf "COPY %s (occurred_at, user_id, ip_address, outcome, user_agent, source, metadata) FROM '%s' (FORMAT csv);" \
        "$1" "${2:-$work/events.csv}"
}

truncate_sql() { # truncate_sql TABLE...: empty every table before a timed COPY
    local IFS=,
    printf 'TRUNCATE %s;' "$*"
}

# ---------------------------------------------------------------------------
# ingest
# ---------------------------------------------------------------------------
bench_ingest() {
    local tables=(bench.plain bench.plain_indexed ato.login_events)
    local variants=(plain plain_indexed ato)
    local run i script

    setup_ingest_tables
    ato_say "ingest: a warm-up and $runs rounds of COPY $events rows into a plain table, a plain table with the same BRIN index and ato.login_events"
    script=$(
        for ((run = 0; run <= runs; run++)); do
            for i in 0 1 2; do
                truncate_sql "${tables[@]}"
                echo
                timed "${variants[$i]}" "$run" "$(copy_sql "${tables[$i]}")"
            done
        done
        cat <<SQL
SELECT count(*) = 0 AS rows_ok FROM bench.timing
 WHERE variant IN ('plain', 'plain_indexed', 'ato') AND row_count <> $events \gset
\if :rows_ok
\else
DO \$\$ BEGIN RAISE EXCEPTION 'ingest: a COPY did not store the $events rows of the file'; END \$\$;
\endif
SELECT format('ingest: plain COPY %s rows median %s s; ato COPY median %s s; ratio (plain/ato time) %s (target >= 0.5)',
              $events, round(p::numeric, 2), round(a::numeric, 2), round((p / a)::numeric, 2))
       || E'\\n' ||
       format('ingest: plain+BRIN COPY %s rows median %s s; ato COPY median %s s; ratio (plain/ato time) %s (target >= 0.5)',
              $events, round(pi::numeric, 2), round(a::numeric, 2), round((pi / a)::numeric, 2))
  FROM (SELECT $(median_sql plain) AS p, $(median_sql plain_indexed) AS pi, $(median_sql ato) AS a) m;
\pset fieldsep ' '
SELECT 'ingest: runs (s):', string_agg(variant || ' ' || secs, '; ' ORDER BY array_position(ARRAY['plain', 'plain_indexed', 'ato'], variant))
  FROM (SELECT variant, string_agg(to_char(seconds, 'FM990.00'), ' ' ORDER BY run) AS secs
          FROM bench.timing WHERE variant IN ('plain', 'plain_indexed', 'ato') AND run > 0 GROUP BY variant) v;
SELECT format('ingest: ato rows with a country %s%%; in the default partition %s; monthly partitions holding rows %s',
              round(100.0 * count(country_code) / count(*), 1),
              (SELECT count(*) FROM ato.login_events_default),
              count(DISTINCT tableoid))
  FROM ato.login_events;
SQL
    )
    bench_psql <<<"$script"
}

# ---------------------------------------------------------------------------
# geoip
# ---------------------------------------------------------------------------
bench_geoip() {
    local mmdb c_out c_seconds c_hits c_count sql_out run script

    mmdb=$(bench_psql -c "LOAD 'ato_response'" -c 'SHOW ato_response.geoip_database')
    ato_say "geoip: building bench/geoip_loop.c"
    cc -O2 -Wall -Wextra -o "$work/geoip_loop" "$bench_dir/geoip_loop.c" -lmaxminddb

    ato_say "geoip: $addresses lookups in the C loop over $mmdb"
    c_out=$("$work/geoip_loop" "$mmdb" "$work/addresses.txt" "$runs")
    read -r c_seconds c_hits c_count <<<"$c_out"

    ato_say "geoip: the same $addresses lookups in SQL, one backend, no parallel workers"
    script=$(
        cat <<SQL
CREATE TABLE bench.addresses (ip inet);
COPY bench.addresses FROM '$work/addresses.txt';
VACUUM ANALYZE bench.addresses;
SET max_parallel_workers_per_gather = 0;
-- warm up: the table into shared buffers, the database file into the mapping
SELECT count(ip) AS rows, count(ato.geoip_country(ip)) AS hits FROM bench.addresses \gset warm_
SQL
        for ((run = 1; run <= runs; run++)); do
            timed scan "$run" 'SELECT count(ip) AS n FROM bench.addresses \gset'
            timed geoip_country "$run" 'SELECT count(ato.geoip_country(ip)) AS hits FROM bench.addresses \gset'
            cat <<'SQL'
SELECT :'n' = :'warm_rows' AND :'hits' = :'warm_hits' AS same \gset
\if :same
\else
DO $$ BEGIN RAISE EXCEPTION 'geoip: the SQL runs disagree on the number of rows or hits'; END $$;
\endif
SQL
        done
        printf 'SELECT :n, :hits, %s, %s;\n' "$(median_sql scan)" "$(median_sql geoip_country)"
    )
    sql_out=$(bench_psql -F ' ' <<<"$script")
    read -r sql_count sql_hits scan_seconds sql_seconds <<<"$sql_out"

    if [[ $sql_count != "$c_count" || $sql_hits != "$c_hits" ]]; then
        echo "geoip: MISMATCH: the C loop found $c_hits hits in $c_count addresses, SQL $sql_hits in $sql_count" >&2
        exit 1
    fi
    awk -v n="$c_count" -v hits="$c_hits" -v c="$c_seconds" -v s="$sql_seconds" -v scan="$scan_seconds" 'BEGIN {
        printf "geoip_country: C loop %d lookups %.2f s; SQL %.2f s; ratio %.2f (target >= 0.3)\n", n, c, s, c / s
        printf "geoip_country: both found %d of %d addresses; SQL scan baseline count(ip) %.2f s, so the function costs %.0f ns a call against %.0f ns a lookup in the C loop\n",
            hits, n, scan, (s - scan) / n * 1e9, c / n * 1e9
    }'
}

# ---------------------------------------------------------------------------
# breakdown (not part of the default run)
# ---------------------------------------------------------------------------
bench_breakdown() {
    ato_say "breakdown: a warm-up and $breakdown_runs rounds of COPY $events rows into tables that add one ingredient at a time"
    setup_ingest_tables
    bench_psql -f "$bench_dir/breakdown_setup.sql"
    local variants tables run i script
    # variant name = table name in schema bench, but for ato itself
    variants=(plain noop_trigger enrich_off enrich plain_indexed enrich_indexed part part_indexed part_indexed_checks ato)
    script=$(
        for ((run = 0; run <= breakdown_runs; run++)); do
            for v in "${variants[@]}"; do
                local t=bench.$v
                local pre=''
                [[ $v == ato ]] && t=ato.login_events
                # enrich_off: the same trigger with GeoIP turned off
                [[ $v == enrich_off ]] && pre="SET ato_response.geoip_database = '';"
                echo "TRUNCATE ato.login_events, bench.plain, bench.plain_indexed, bench.noop_trigger, bench.enrich_off, bench.enrich, bench.enrich_indexed, bench.part, bench.part_indexed, bench.part_indexed_checks;"
                echo "$pre"
                timed "$v" "$run" "$(copy_sql "$t")"
                [[ -n $pre ]] && echo "RESET ato_response.geoip_database;"
            done
        done
        cat <<SQL
SELECT count(*) = 0 AS rows_ok FROM bench.timing WHERE row_count <> $events \gset
\if :rows_ok
\else
DO \$\$ BEGIN RAISE EXCEPTION 'breakdown: a COPY did not store the $events rows of the file'; END \$\$;
\endif
SQL
        printf '\\pset fieldsep '"'"' '"'"'\n'
        echo "SELECT rpad(variant, 20), to_char(percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds), 'FM990.00') || ' s',"
        echo "       to_char(percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) * 1e6 / $events, 'FM99990.00') || ' us/row',"
        echo "       string_agg(to_char(seconds, 'FM990.00'), ' ' ORDER BY run)"
        echo "  FROM bench.timing WHERE run > 0 GROUP BY variant"
        printf "  ORDER BY array_position(ARRAY[%s], variant);\n" "$(printf "'%s'," "${variants[@]}" | sed 's/,$//')"
    )
    echo "variant              median    per row     runs"
    bench_psql <<<"$script"

    if command -v perf >/dev/null && ((EUID == 0)); then
        ato_say "breakdown: perf profile of one COPY into ato.login_events (share of the backend's CPU samples)"
        bench_psql >/dev/null <<SQL
TRUNCATE ato.login_events;
CHECKPOINT;
SELECT pg_backend_pid() AS pid \gset
\setenv BENCH_PID :pid
\! perf record -q --call-graph dwarf,16384 -F 499 -o $work/perf.data -p "\$BENCH_PID" >/dev/null 2>&1 & echo \$! > $work/perf.pid; sleep 1
$(copy_sql ato.login_events)
\! kill -INT "\$(cat $work/perf.pid)"; while kill -0 "\$(cat $work/perf.pid)" 2>/dev/null; do sleep 0.2; done
SQL
        local report=(perf report -i "$work/perf.data" --stdio -g none)
        echo "-- self time by shared object --"
        "${report[@]}" --no-children --sort dso 2>/dev/null | grep -E '^ +[0-9.]+%' | head -n 8 || true
        echo "-- self time by function (top 25; postgres is stripped, so its static functions show as addresses) --"
        "${report[@]}" --no-children --sort dso,symbol 2>/dev/null | grep -E '^ +[0-9.]+%' | sed 's/ *- *- *$//' | head -n 25 || true
        echo "-- time including callees (children, self) --"
        "${report[@]}" --children --sort symbol 2>/dev/null | grep -E '^ +[0-9.]+% +[0-9.]+%' | sed 's/ *- *- *$//' |
            grep -E ' (CopyFrom|NextCopyFrom|NextCopyFromRawFields|InputFunctionCall|ExecBRInsertTriggers|ato_enrich_event|geo_lookup|geo_find|geo_ready|geo_refresh|MMDB_lookup_sockaddr|MMDB_aget_value|heap_modify_tuple|ExecInsertIndexTuples|btinsert|_bt_doinsert|_bt_compare|heap_insert|heap_multi_insert|CopyMultiInsertBufferFlush|ExecFindPartition|ExecConstraints|ExecCheck|nextval_internal|XLogInsert|jsonb_in|inet_in|timestamptz_in|lookup_rowtype_tupdesc|ReadBufferExtended|RelationGetBufferForTuple)$' |
            head -n 40 || true
    fi
}

# ---------------------------------------------------------------------------
# window (not part of the default run)
# ---------------------------------------------------------------------------
bench_window() {
    local run w script windows=(last_hour last_day old_day)

    ato_say "window: loading $window_events events over $window_days days into ato.login_events and into bench.plain_window (B-tree on occurred_at)"
    bench_psql <<SQL
SELECT ato.create_event_partitions(now() - interval '$window_days days', now()) AS created \gset
$(copy_sql ato.login_events)
CREATE TABLE bench.plain_window (LIKE ato.login_events INCLUDING DEFAULTS);
$(copy_sql bench.plain_window)
CREATE INDEX ON bench.plain_window (occurred_at);
VACUUM ANALYZE ato.login_events;
VACUUM ANALYZE bench.plain_window;
SQL

    # The windows: the last hour, the last day, and a day half a year back,
    # counted back from the newest event (the data ends at the hour its
    # generation began, which a long load leaves behind now()).
    script=$(
        cat <<'SQL'
SELECT max(occurred_at) + interval '1 microsecond' AS hi FROM bench.plain_window \gset
SELECT :'hi'::timestamptz - interval '1 hour' AS last_hour_lo, :'hi'::timestamptz - interval '1 day' AS last_day_lo,
       :'hi'::timestamptz - interval '183 days' AS old_day_lo, :'hi'::timestamptz - interval '182 days' AS old_day_hi \gset
\set last_hour_hi :hi
\set last_day_hi :hi
SET max_parallel_workers_per_gather = 0;
-- the buffers (shared hits and reads) a query's plan touched
CREATE FUNCTION bench.blocks_read(query text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    plan json;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ' || query INTO plan;
    RETURN (plan->0->'Plan'->>'Shared Hit Blocks')::bigint + (plan->0->'Plan'->>'Shared Read Blocks')::bigint;
END
$$;
SQL
        for w in "${windows[@]}"; do
            for t in ato.login_events bench.plain_window; do
                printf "SELECT count(*) AS n, count(DISTINCT user_id) AS users FROM %s WHERE occurred_at >= :'%s_lo' AND occurred_at < :'%s_hi' AND outcome = 'success' \\gset %s_%s_\n" \
                    "$t" "$w" "$w" "$w" "${t#*.}"
            done
            cat <<SQL
SELECT :'${w}_login_events_n' = :'${w}_plain_window_n' AND :'${w}_login_events_users' = :'${w}_plain_window_users' AS same \gset
\if :same
\else
DO \$\$ BEGIN RAISE EXCEPTION 'window: the two tables disagree on window $w'; END \$\$;
\endif
SQL
            for ((run = 0; run <= runs; run++)); do
                for t in ato.login_events bench.plain_window; do
                    timed "${w}_${t#*.}" "$run" \
                        "SELECT count(*), count(DISTINCT user_id) FROM $t WHERE occurred_at >= :'${w}_lo' AND occurred_at < :'${w}_hi' AND outcome = 'success' \\g /dev/null"
                done
            done
            for t in ato.login_events bench.plain_window; do
                printf "SELECT bench.blocks_read(format('SELECT count(*), count(DISTINCT user_id) FROM %s WHERE occurred_at >= %%L AND occurred_at < %%L AND outcome = %%L', :'%s_lo', :'%s_hi', 'success')) AS %s_%s_blocks \\gset\n" \
                    "$t" "$w" "$w" "$w" "${t#*.}"
            done
            cat <<SQL
SELECT format('window %s: %s successful logins of %s accounts; ato median %s ms reading %s blocks; plain (B-tree) median %s ms reading %s blocks; ratio (plain/ato time) %s',
              '$w', :'${w}_login_events_n', :'${w}_login_events_users',
              round((a * 1000)::numeric, 1), ab, round((p * 1000)::numeric, 1), pb, round((p / a)::numeric, 2))
  FROM (SELECT $(median_sql "${w}_login_events") AS a, $(median_sql "${w}_plain_window") AS p,
               :'${w}_login_events_blocks' AS ab, :'${w}_plain_window_blocks' AS pb) m;
SQL
        done
        # Retention: drop the oldest whole month, against deleting the same rows.
        cat <<'SQL'
SELECT min(upper_bound) AS month_end FROM ato.event_partitions WHERE parent = 'login_events' AND NOT is_default \gset
SELECT count(*) AS month_rows FROM ato.login_events WHERE occurred_at < :'month_end' \gset
SQL
        timed drop_ato 1 "SELECT ato.drop_event_partitions(:'month_end') \\g /dev/null"
        timed drop_plain 1 "DELETE FROM bench.plain_window WHERE occurred_at < :'month_end';"
        cat <<SQL
SELECT format('retention: dropping the oldest month (%s rows) with ato.drop_event_partitions %s ms; DELETE from the plain table %s ms; ratio (delete/drop time) %s',
              :'month_rows', round((a * 1000)::numeric, 1), round((p * 1000)::numeric, 1), round((p / a)::numeric, 0))
  FROM (SELECT $(median_sql drop_ato) AS a, $(median_sql drop_plain) AS p) m;
SQL
    )
    bench_psql <<<"$script"
}

# ---------------------------------------------------------------------------
# detect (not part of the default run)
# ---------------------------------------------------------------------------
# answers_agree WHAT PREFIX_A SQL_A PREFIX_B SQL_B: psql input that sets
# PREFIX_n and PREFIX_sum (row count, checksum) for both queries' answers
# and fails the run when the checksums differ.
answers_agree() {
    local what=$1 pa=$2 qa=$3 pb=$4 qb=$5
    cat <<SQL
SELECT count(*) AS n, coalesce(md5(string_agg(r::text, ';' ORDER BY r::text)), 'no rows') AS sum FROM ($qa) r \gset ${pa}
SELECT count(*) AS n, coalesce(md5(string_agg(r::text, ';' ORDER BY r::text)), 'no rows') AS sum FROM ($qb) r \gset ${pb}
SELECT :'${pa}sum' = :'${pb}sum' AS same \gset
\if :same
\else
\echo 'detect: $what: rows' :${pa}n 'against' :${pb}n
DO \$\$ BEGIN RAISE EXCEPTION 'detect: $what: the answers differ'; END \$\$;
\endif
SQL
}

# detect_session_start: psql input fixing the window and the one-backend rule
detect_session_start() {
    cat <<'SQL'
SELECT date_trunc('hour', now()) - interval '24 hours' AS since \gset
SET max_parallel_workers_per_gather = 0;
SQL
}

# summaries_analyzed: psql input analysing the summary tables after a refresh
# (autovacuum is off here; in a running database it analyses them as they
# grow, as the plain tables are analysed after their load)
summaries_analyzed() {
    echo 'ANALYZE ato.account_countries, ato.account_last_logins, ato.recent_new_country_logins, ato.recent_address_logins;'
}

# detect_timed VARIANT SQL: the timed rounds of one contender
detect_timed() {
    local variant=$1 sql=$2 run
    for ((run = 0; run <= detect_runs; run++)); do
        timed "$variant" "$run" "$sql"
    done
}

# detect_load FILE: load one events file into ato.login_events and the
# plain copy, with its audit events, and vacuum both.
detect_load() {
    bench_psql <<SQL
CREATE TEMP TABLE loaded AS SELECT coalesce(max(id), 0) AS before FROM ato.login_events;
$(copy_sql ato.login_events "$1")
INSERT INTO bench.le SELECT id, user_id, ip_address, outcome, occurred_at, country_code
  FROM ato.login_events WHERE id > (SELECT before FROM loaded);
-- one successful login in eight is followed, within half an hour, by an
-- account change of one of six kinds
INSERT INTO ato.audit_events (actor_id, event_type, occurred_at, ip_address)
SELECT user_id,
       (ARRAY['user.email_changed', 'user.password_changed', 'billing.modified', 'user.mfa.factor.activate',
              'app.viewed', 'user.session.start'])[1 + abs(hashint8(id)) % 6],
       occurred_at + abs(hashint8(id + 1)) % 1800 * interval '1 second', ip_address
  FROM ato.login_events
 WHERE id > (SELECT before FROM loaded) AND outcome = 'success' AND abs(hashint8(id)) % 8 = 0;
INSERT INTO bench.ae SELECT actor_id, event_type, occurred_at FROM ato.audit_events
 WHERE id > (SELECT before FROM loaded);
VACUUM ANALYZE ato.login_events;
VACUUM ANALYZE ato.audit_events;
VACUUM ANALYZE bench.le;
VACUUM ANALYZE bench.ae;
SQL
}

bench_detect() {
    local half=$((detect_events / 2)) script
    # seed 004's first query on the plain tables, its geo_events join read as
    # the country column (an inner join: a login needs a country) and its
    # earlier logins restricted to successful ones (the difference the issue
    # asks for)
    local seed_sql="SELECT le.user_id, le.ip_address, le.country_code, le.occurred_at, count(ae.event_type) AS suspicious_actions
  FROM bench.le le
  LEFT JOIN bench.ae ae ON ae.actor_id = le.user_id
       AND ae.event_type IN ('user.email_changed', 'user.password_changed', 'billing.modified')
       AND ae.occurred_at BETWEEN le.occurred_at AND le.occurred_at + interval '1 hour'
 WHERE le.outcome = 'success' AND le.occurred_at >= :'since' AND le.country_code IS NOT NULL
   AND le.country_code NOT IN (SELECT DISTINCT le2.country_code FROM bench.le le2
                                WHERE le2.user_id = le.user_id AND le2.occurred_at < :'since'
                                  AND le2.outcome = 'success' AND le2.country_code IS NOT NULL)
 GROUP BY le.user_id, le.ip_address, le.country_code, le.occurred_at
HAVING count(ae.event_type) > 0"
    local ato_sql="SELECT * FROM ato.new_country_logins(:'since') WHERE suspicious_actions > 0 AND country_code IS NOT NULL"
    local cidr_plain="WITH hits AS (SELECT user_id, ip_address, occurred_at FROM bench.le
     WHERE occurred_at >= :'since' AND outcome = 'success' AND ip_address <<= ANY (:'cidrs'::inet[])),
 accounts AS (SELECT user_id, count(*) AS logins, min(occurred_at) AS first_login, max(occurred_at) AS last_login,
                     array_agg(DISTINCT ip_address ORDER BY ip_address) AS ips FROM hits GROUP BY user_id)
SELECT c.user_id, c.logins, c.first_login, c.last_login, c.ips,
       coalesce((SELECT jsonb_object_agg(event_type, n ORDER BY event_type)
                   FROM (SELECT a.event_type, count(*) AS n FROM bench.ae a
                          WHERE a.actor_id = c.user_id AND a.occurred_at >= c.first_login GROUP BY a.event_type) x), '{}'::jsonb)
  FROM accounts c"
    local counts_plain="SELECT event_type, count(*) AS actions, count(DISTINCT actor_id) AS accounts FROM bench.ae
 WHERE actor_id = ANY (:'accounts'::text[]) AND occurred_at >= :'since' GROUP BY event_type"

    ato_say "detect: $half login events over the last 30 days into ato.login_events and into plain tables with seed 004's best indexes"
    bench_psql <<SQL
SELECT ato.create_event_partitions(date_trunc('hour', now()) - interval '61 days', now()) AS created \gset
CREATE TABLE bench.le (id bigint, user_id text, ip_address inet, outcome text, occurred_at timestamptz, country_code text);
CREATE TABLE bench.ae (actor_id text, event_type text, occurred_at timestamptz);
CREATE INDEX ON bench.le (occurred_at);
CREATE INDEX ON bench.le (user_id, occurred_at) INCLUDE (country_code, outcome);
CREATE INDEX ON bench.le USING gist (ip_address inet_ops);
CREATE INDEX ON bench.ae (actor_id, event_type, occurred_at);
CREATE INDEX ON bench.ae (actor_id, occurred_at);
SQL
    detect_load "$work/recent.csv"

    script=$(
        detect_session_start
        timed refresh_recent 1 "SELECT ato.refresh_summaries() AS pairs \\gset refresh_recent_"
        summaries_analyzed
        detect_timed ncl_ato_5m "$ato_sql \\g /dev/null"
        detect_timed ncl_seed_5m "$seed_sql \\g /dev/null"
        answers_agree "new_country_logins against seed 004" ato_ "$ato_sql" seed_ "$seed_sql"
        cat <<SQL
SELECT count(*) AS all_rows, count(*) FILTER (WHERE country_code IS NULL) AS unlocated
  FROM ato.new_country_logins(:'since') \gset ncl_
-- networks to scope: the /16s of twenty addresses seen in the window
SELECT array_agg(DISTINCT network(set_masklen(ip_address, 16)))::text AS cidrs
  FROM (SELECT ip_address FROM bench.le WHERE occurred_at >= :'since' AND family(ip_address) = 4
         ORDER BY id LIMIT 20) s \gset
SQL
        detect_timed cidr_ato "SELECT * FROM ato.cidr_scope(:'cidrs', :'since') \\g /dev/null"
        detect_timed cidr_plain "$cidr_plain \\g /dev/null"
        answers_agree "cidr_scope against its plain query" \
            cidr_ato_ "SELECT * FROM ato.cidr_scope(:'cidrs', :'since')" cidr_plain_ "$cidr_plain"
        cat <<SQL
SELECT array_agg(user_id)::text AS accounts FROM ato.cidr_scope(:'cidrs', :'since') \gset
SQL
        detect_timed counts_ato "SELECT * FROM ato.suspicious_action_counts(:'accounts', :'since') \\g /dev/null"
        detect_timed counts_plain "$counts_plain \\g /dev/null"
        answers_agree "suspicious_action_counts against its plain query" \
            counts_ato_ "SELECT * FROM ato.suspicious_action_counts(:'accounts', :'since')" counts_plain_ "$counts_plain"
        cat <<SQL
SELECT format('new_country_logins, 24 h window over %s events of 30 days: %s logins from a new country (%s with no known country), %s of them followed by a suspicious action',
              (SELECT count(*) FROM ato.login_events), :'ncl_all_rows', :'ncl_unlocated', :'ato_n');
SELECT format('new_country_logins: ato median %s ms; seed 004 query (best indexes) median %s ms; ratio (seed/ato time) %s (target >= 30); refresh_summaries() over the whole store took %s s for %s pairs',
              round((a * 1000)::numeric, 1), round((s * 1000)::numeric, 1), round((s / a)::numeric, 1),
              round(r::numeric, 2), :'refresh_recent_pairs')
  FROM (SELECT $(median_sql ncl_ato_5m) AS a, $(median_sql ncl_seed_5m) AS s, $(median_sql refresh_recent) AS r) m;
SELECT format('cidr_scope over %s networks: %s accounts; ato median %s ms; plain (B-tree, GiST) median %s ms; ratio (plain/ato time) %s (target >= 1)',
              cardinality(:'cidrs'::cidr[]), :'cidr_ato_n', round((a * 1000)::numeric, 1), round((p * 1000)::numeric, 1), round((p / a)::numeric, 2))
  FROM (SELECT $(median_sql cidr_ato) AS a, $(median_sql cidr_plain) AS p) m;
SELECT format('suspicious_action_counts for %s accounts: ato median %s ms; plain (B-tree) median %s ms; ratio (plain/ato time) %s (target >= 1)',
              cardinality(:'accounts'::text[]), round((a * 1000)::numeric, 1), round((p * 1000)::numeric, 1), round((p / a)::numeric, 2))
  FROM (SELECT $(median_sql counts_ato) AS a, $(median_sql counts_plain) AS p) m;
SQL
    )
    bench_psql <<<"$script"

    ato_say "detect: $half older events (the 30 days before) into both: twice the history behind the same window"
    detect_load "$work/older.csv"
    script=$(
        detect_session_start
        timed refresh_older 1 "SELECT ato.refresh_summaries() AS pairs \\gset refresh_older_"
        summaries_analyzed
        detect_timed ncl_ato_10m "$ato_sql \\g /dev/null"
        detect_timed ncl_seed_10m "$seed_sql \\g /dev/null"
        answers_agree "new_country_logins against seed 004 over twice the history" ato_ "$ato_sql" seed_ "$seed_sql"
        cat <<SQL
SELECT format('new_country_logins over twice the history (%s events): ato median %s ms (%s%% of the time over half of it; target < +20%%); seed 004 query median %s ms; ratio (seed/ato time) %s; refresh_summaries() folding in the older 30 days took %s s',
              (SELECT count(*) FROM ato.login_events), round((a2 * 1000)::numeric, 1),
              to_char(100 * (a2 / a1 - 1), 'SG990'), round((s2 * 1000)::numeric, 1), round((s2 / a2)::numeric, 1), round(r::numeric, 2))
  FROM (SELECT $(median_sql ncl_ato_5m) AS a1, $(median_sql ncl_ato_10m) AS a2, $(median_sql ncl_seed_10m) AS s2,
               $(median_sql refresh_older) AS r) m;
SQL
    )
    bench_psql <<<"$script"
}

# ---------------------------------------------------------------------------
# response
# ---------------------------------------------------------------------------
# response_tables PREFIX: seed 004's sessions and refresh_tokens, 3 and 5 per
# account, created round by round (so an account's rows are spread over the
# table as they are when created over time), with B-trees on user_id.
response_tables() {
    cat <<SQL
CREATE TABLE bench.$1_sessions (id bigserial PRIMARY KEY, user_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), ended_at timestamptz, end_reason text, incident_id uuid);
CREATE TABLE bench.$1_refresh_tokens (id bigserial PRIMARY KEY, user_id text NOT NULL,
    revoked boolean NOT NULL DEFAULT false, revoked_at timestamptz, revocation_reason text, revocation_incident_id uuid);
INSERT INTO bench.$1_sessions (user_id) SELECT a.user_id FROM generate_series(1, 3) r, bench.accounts a ORDER BY r, a.n;
INSERT INTO bench.$1_refresh_tokens (user_id) SELECT a.user_id FROM generate_series(1, 5) r, bench.accounts a ORDER BY r, a.n;
CREATE INDEX ON bench.$1_sessions (user_id);
CREATE INDEX ON bench.$1_refresh_tokens (user_id);
VACUUM ANALYZE bench.$1_sessions;
VACUUM ANALYZE bench.$1_refresh_tokens;
SQL
}

# marked_sql PREFIX: one line per marked row's account, to compare contenders
marked_sql() {
    printf "SELECT 's', user_id FROM bench.%s_sessions WHERE ended_at IS NOT NULL UNION ALL SELECT 't', user_id FROM bench.%s_refresh_tokens WHERE revoked" "$1" "$1"
}

bench_response() {
    local revoked=$((accounts / 2)) script
    ato_say "response: $accounts accounts with 3 sessions and 5 refresh tokens each, three copies (seed loop, ato, plain UPDATE)"
    {
        cat <<SQL
CREATE TABLE bench.accounts AS SELECT n, 'user-' || lpad(n::text, 8, '0') AS user_id FROM generate_series(1, $accounts) n;
-- every second account is revoked, in no particular order
CREATE TABLE bench.revoked AS SELECT user_id FROM bench.accounts WHERE n % 2 = 0 ORDER BY hashint4(n);
CREATE PROCEDURE bench.seed_revoke(ids text[], reason text) LANGUAGE plpgsql AS \$\$
DECLARE
    v_incident uuid := gen_random_uuid();
    v_revoked_at timestamptz := now();
    v_batch text[];
BEGIN
    FOR i IN 0 .. (cardinality(ids) - 1) / 500 LOOP
        v_batch := ids[i * 500 + 1 : (i + 1) * 500];
        UPDATE bench.seed_refresh_tokens
           SET revoked = true, revoked_at = v_revoked_at, revocation_reason = reason,
               revocation_incident_id = v_incident
         WHERE user_id = ANY (v_batch) AND revoked = false;
        UPDATE bench.seed_sessions
           SET ended_at = v_revoked_at, end_reason = 'incident_revocation', incident_id = v_incident
         WHERE user_id = ANY (v_batch) AND ended_at IS NULL;
        COMMIT;
        PERFORM pg_notify('seed_revocations',
                          json_build_object('type', 'user.sessions_revoked', 'user_id', u,
                                            'incident_id', v_incident, 'reason', reason)::text)
           FROM unnest(v_batch) u;
        COMMIT;
    END LOOP;
END \$\$;
SQL
        response_tables seed
        response_tables ato
        response_tables plain
        cat <<'SQL'
SELECT ato.register_revocation_target('bench.ato_sessions', 'user_id', 'end', state_column => 'ended_at',
           reason_column => 'end_reason', incident_column => 'incident_id');
SELECT ato.register_revocation_target('bench.ato_refresh_tokens', 'user_id', 'revoke', state_column => 'revoked',
           time_column => 'revoked_at', reason_column => 'revocation_reason', incident_column => 'revocation_incident_id');
SQL
    } | bench_psql >/dev/null

    script=$(
        cat <<'SQL'
SELECT array_agg(user_id)::text AS ids FROM bench.revoked \gset
SET client_min_messages = warning;
SQL
        timed seed_loop 1 "CALL bench.seed_revoke(:'ids', 'credential stuffing');"
        timed ato_containment 1 "SELECT ato.revoke_incident(:'ids', 'credential stuffing', suspend => true) AS incident \gset"
        cat <<'SQL'
SELECT clock_timestamp() AS returned_at \gset
SELECT count(*) AS unusable FROM ato.account_revocations r JOIN ato.account_flags f USING (user_id)
 WHERE r.incident_id = :'incident' AND f.suspended \gset
DO $$
BEGIN
    WHILE EXISTS (SELECT FROM ato.incidents WHERE status = 'marking') LOOP
        PERFORM pg_sleep(0.01);
    END LOOP;
END $$;
SELECT extract(epoch FROM marked_at - :'returned_at'::timestamptz) AS marking FROM ato.incidents WHERE id = :'incident' \gset
SELECT sum(rows_touched) AS ato_rows FROM ato.incident_targets WHERE incident_id = :'incident' \gset
SQL
        timed plain_update 1 "UPDATE bench.plain_refresh_tokens SET revoked = true, revoked_at = now(), revocation_reason = 'credential stuffing', revocation_incident_id = gen_random_uuid() WHERE user_id = ANY (:'ids'::text[]) AND revoked = false;"             "UPDATE bench.plain_sessions SET ended_at = now(), end_reason = 'credential stuffing', incident_id = gen_random_uuid() WHERE user_id = ANY (:'ids'::text[]) AND ended_at IS NULL;"
        answers_agree "response: rows marked by ato against the seed 004 loop" ato_ "$(marked_sql ato)" seed_ "$(marked_sql seed)"
        answers_agree "response: rows marked by ato against the plain UPDATE" ato2_ "$(marked_sql ato)" plain_ "$(marked_sql plain)"
        cat <<SQL
SELECT format('revoking %s of %s accounts (%s sessions and tokens): every account unusable after %s s with ato.revoke_incident() (%s accounts revoked and suspended) against %s s for seed 004''s loop to finish; ratio (seed/ato time) %s (target >= 10)',
              $revoked, $accounts, :'ato_n', round(c::numeric, 2), :'unusable', round(s::numeric, 2), round((s / c)::numeric, 1))
  FROM (SELECT $(median_sql ato_containment) AS c, $(median_sql seed_loop) AS s) m;
SELECT format('marking the same rows: the background worker took %s s for %s rows (%s rows/s); one plain UPDATE per table took %s s; throughput ratio (plain time/ato time) %s (target >= 0.8)',
              round(:'marking'::numeric, 2), :'ato_rows', round(:'ato_rows' / :'marking'::numeric), round(p::numeric, 2),
              round((p / :'marking'::numeric)::numeric, 2))
  FROM (SELECT $(median_sql plain_update) AS p) m;
SQL
    )
    bench_psql <<<"$script"
}

# ---------------------------------------------------------------------------
# worker
# ---------------------------------------------------------------------------
# cpu_ticks PID: user + system clock ticks the process has used so far
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

bench_worker() {
    local rate=5000 seconds=${ATO_BENCH_WORKER_SECONDS:-240} worker_pid worker_before ingest_ticks=0 pid script
    ato_say "worker: pgbench records $rate login events a second for $seconds s; a stuffing wave is staged halfway"
    # accounts with a history: each one's home login three days ago, summarised
    # (a store that starts empty makes every account's first login of the run
    # a login from a new country)
    bench_psql >/dev/null <<'SQL'
SELECT ato.create_event_partitions(now() - interval '4 days', now() + interval '1 day');
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
SELECT 'user-' || a, '81.2.69.0'::inet + a % 256, 'success', now() - interval '3 days' + a * interval '100 milliseconds'
  FROM generate_series(1, 200000) a;
SELECT ato.refresh_summaries();
ANALYZE ato.login_events, ato.account_countries, ato.account_last_logins;
SQL
    cat >"$work/login.sql" <<'SQL'
\set account random(1, 200000)
\set attempt random(1, 10)
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
VALUES ('user-' || :account, '81.2.69.0'::inet + :account % 256, CASE WHEN :attempt = 1 THEN 'failure' ELSE 'success' END, now());
SQL
    # the database was created after the server started: a reload starts its worker now
    bench_psql -c 'SELECT pg_reload_conf()' >/dev/null
    until [[ $(bench_psql -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ato_response detection worker'") == 1 ]]; do
        sleep 0.2
    done
    worker_pid=$(bench_psql -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'ato_response detection worker'")
    worker_before=$(cpu_ticks "$worker_pid")

    "$(ato_bindir)/pgbench" -n -c 4 -j 2 -R "$rate" -T "$seconds" -P 30 -f "$work/login.sql" "$db" >"$work/pgbench.out" 2>&1 &
    local pgbench=$!
    sleep 2
    local ingest_pids
    ingest_pids=$(bench_psql -c "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE application_name = 'pgbench'")
    declare -A ingest_before
    for pid in $ingest_pids; do ingest_before[$pid]=$(cpu_ticks "$pid"); done

    sleep $((seconds / 2 - 2))
    bench_psql <<'SQL'
INSERT INTO ato.login_events (user_id, ip_address, outcome, occurred_at)
SELECT 'user-' || a, ('5.188.10.' || (1 + a % 50))::inet, CASE WHEN a % 50 = 7 THEN 'success' ELSE 'failure' END, now()
  FROM generate_series(1, 600) a;
INSERT INTO bench.timing VALUES ('staged', 1, extract(epoch FROM clock_timestamp()), 600);
SQL
    # the ingest backends' CPU is read just before pgbench ends them
    sleep $((seconds / 2 - 3))
    for pid in $ingest_pids; do
        ingest_ticks=$((ingest_ticks + $(cpu_ticks "$pid") - ingest_before[$pid]))
    done
    local worker_ticks=$(($(cpu_ticks "$worker_pid") - worker_before))
    wait "$pgbench"
    grep -E '^(tps|latency average|number of transactions actually processed)' "$work/pgbench.out" || cat "$work/pgbench.out"

    script=$(
        cat <<SQL
SELECT format('alert raised %s s after the stuffing wave was staged (interval %s; target: within two intervals)',
              coalesce(round((extract(epoch FROM min(a.first_seen_at)) - t.seconds)::numeric, 1)::text, 'NOT'),
              current_setting('ato_response.detection_interval'))
  FROM bench.timing t LEFT JOIN ato.alerts a ON a.rule = 'credential_stuffing' AND a.finding = 'network 5.188.10.0/24'
 WHERE t.variant = 'staged' GROUP BY t.seconds;
SELECT format('detection rules at their last run: %s; rules that failed: %s',
              string_agg(name || ' ' || round(extract(epoch FROM last_duration) * 1000) || ' ms', ', ' ORDER BY name),
              count(*) FILTER (WHERE last_error IS NOT NULL))
  FROM ato.detection_rules WHERE enabled;
SELECT format('%s events stored; CPU over the same %s s: detection worker %s ticks, the 4 ingest backends %s ticks; worker / ingest %s',
              (SELECT count(*) FROM ato.login_events), $seconds - 5, $worker_ticks, $ingest_ticks,
              round($worker_ticks::numeric / greatest($ingest_ticks, 1), 3));
SQL
    )
    bench_psql <<<"$script"
}

# ---------------------------------------------------------------------------
# login_latency
# ---------------------------------------------------------------------------
# load_latencies PHASE PREFIX: pgbench's --log files PREFIX.* into bench.login_latency
load_latencies() {
    cat "$2".* | sed "s/^/$1 /" | bench_psql -c "\copy bench.login_latency FROM STDIN WITH (DELIMITER ' ')"
}

bench_login_latency() {
    local rate=200 seconds=${ATO_BENCH_LATENCY_SECONDS:-40} late=${ATO_BENCH_LATE_EVENTS:-150000} imports=0 pgbench
    ato_say "login_latency: ato.record_login() at $rate a second for $seconds s alone, then $seconds s beside the worker and late imports of $late events"
    bench_psql -v step=setup -f "$bench_dir/login_latency.sql" >/dev/null
    cat >"$work/record_login.sql" <<'SQL'
\set account random(1, 50000)
SELECT ato.record_login('user-' || :account, '81.2.69.0'::inet + :account % 256, 'success');
SQL
    "$(ato_bindir)/pgbench" -n -c 4 -j 2 -R "$rate" -T "$seconds" --log --log-prefix="$work/alone" \
        -f "$work/record_login.sql" "$db" >"$work/pgbench_alone.out" 2>&1
    load_latencies alone "$work/alone"

    # the database was created after the server started: a reload starts its worker now
    bench_psql -c "ALTER SYSTEM SET ato_response.databases = '$db'" -c 'SELECT pg_reload_conf()' >/dev/null
    until [[ $(bench_psql -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ato_response detection worker'") == 1 ]]; do
        sleep 0.2
    done
    "$(ato_bindir)/pgbench" -n -c 4 -j 2 -R "$rate" -T "$seconds" --log --log-prefix="$work/beside" \
        -f "$work/record_login.sql" "$db" >"$work/pgbench_beside.out" 2>&1 &
    pgbench=$!
    while kill -0 "$pgbench" 2>/dev/null; do
        bench_psql -v step=import -v late_events="$late" -f "$bench_dir/login_latency.sql" >/dev/null
        imports=$((imports + 1))
    done
    wait "$pgbench"
    load_latencies beside "$work/beside"
    bench_psql -v step=report -v late_events="$late" -v imports="$imports" -f "$bench_dir/login_latency.sql"
}

case $what in
    all)
        generate "$events" "$addresses"
        bench_ingest
        bench_geoip
        ;;
    ingest)
        generate "$events" 0
        bench_ingest
        ;;
    geoip)
        generate 0 "$addresses"
        bench_geoip
        ;;
    breakdown)
        generate "$events" 0
        bench_breakdown
        ;;
    window)
        generate "$window_events" 0 "$window_days"
        bench_window
        ;;
    detect)
        generate $((detect_events / 2)) 0 30 0 "$work/recent.csv"
        generate $((detect_events / 2)) 0 30 30 "$work/older.csv"
        bench_detect
        ;;
    response)
        bench_response
        ;;
    worker)
        bench_worker
        ;;
    login_latency)
        bench_login_latency
        ;;
    import) # bench/import.sql: JSON lines through ato.okta_import against plain COPY of the same rows
        bench_psql -v dir="$work" -v events="${ATO_BENCH_IMPORT_EVENTS:-200000}" -v runs="$runs" -f "$bench_dir/import.sql"
        ;;
esac
