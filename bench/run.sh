#!/usr/bin/env bash
# run.sh -- the driver of ato_response's benchmarks: each runs the
# extension's way against the plain way in one run on the same data and
# prints the ratio.  What each measures is said at the top of its SQL file:
#
#   ingest         bench/ingest/ingest.sql        COPY into ato.login_events against plain tables
#   geoip          bench/geoip/geoip.sql          ato.geoip_country() against geoip_loop.c
#   breakdown      bench/breakdown/breakdown.sql  where the ingest time goes (and a perf profile)
#   window         bench/window/window.sql        time windows over a year of events, retention
#   detect         bench/detect/detect.sql        the detection functions against seed 004 and plain SQL
#   response       bench/response/response.sql    ato.revoke_incident() against seed 004's loop
#   worker         bench/worker/worker.sql        the detection worker beside pgbench's ingest
#   import         bench/import/import.sql        JSON lines through ato.okta_import against plain COPY
#   login_latency  bench/login_latency/login_latency.sql
#                                                 ato.record_login() alone and beside refreshes
#   bulk_load      bench/bulk_load/bulk_load.sql  a history loaded into a fresh install: the first and later
#                                                 new_country_logins against seed 004, the worker's catch-up
#   proxy          bench/proxy/proxy.sql          two shards and a PL/Proxy node against one node
#
#   bash bench/run.sh [all|ingest|geoip|breakdown|window|detect|response|worker|login_latency|import|bulk_load|proxy]   (default: all = ingest + geoip)
#
# As root on a fresh Debian 12 machine it installs the packages, builds and
# installs the extension, starts a throwaway cluster in a temporary
# directory, writes the data there (bench/generate.sql) and removes it at
# the end.  What is left here is what psql cannot do: the C loop, pgbench,
# the processes' CPU ticks, perf, and the order of the steps.  Sizes can be
# lowered for a smoke run: ATO_BENCH_EVENTS (default 1000000),
# ATO_BENCH_ADDRESSES (5000000), ATO_BENCH_RUNS (timed runs of each
# contender: 5, or 3 in the breakdown and detect), ATO_BENCH_WINDOW_EVENTS
# (50000000), ATO_BENCH_WINDOW_DAYS (365), ATO_BENCH_DETECT_EVENTS
# (10000000: two halves of 30 days), ATO_BENCH_ACCOUNTS (200000, of which
# half are revoked), ATO_BENCH_WORKER_SECONDS (240),
# ATO_BENCH_LATENCY_SECONDS (40), ATO_BENCH_LATE_EVENTS (150000), ATO_BENCH_IMPORT_EVERY (6),
# ATO_BENCH_BULK_EVENTS (5000000), ATO_BENCH_LOAD (copy, or insert),
# ATO_BENCH_PROXY_EVENTS (50000) and ATO_BENCH_PROXY_CALLS (3000).
# Nothing here fails on a time: the ratios are printed, and the run fails
# only when the contenders disagree on the results.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

what=${1:-all}
case $what in
    all | ingest | geoip | breakdown | window | detect | response | worker | login_latency | import | bulk_load | proxy) ;;
    *)
        echo "usage: bash bench/run.sh [all|ingest|geoip|breakdown|window|detect|response|worker|login_latency|import|bulk_load|proxy]" >&2
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
# login_latency starts the worker only for its last phase
[[ $what == login_latency ]] && worker_conf=("shared_preload_libraries = 'ato_response'"
    "ato_response.detection_interval = 5")
# bulk_load runs as in production: the worker every 10 s, and autovacuum
[[ $what == bulk_load ]] && worker_conf=("shared_preload_libraries = 'ato_response'"
    "ato_response.databases = '$db'" "ato_response.detection_interval = 10" "autovacuum = on")
ato_start_cluster "$work/cluster" \
    "shared_buffers = 1GB" "max_wal_size = 4GB" "synchronous_commit = off" \
    "checkpoint_timeout = 1h" "autovacuum = off" "${worker_conf[@]}"
createdb "$db"
export PGDATABASE=$db
psql -qX -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION ato_response'

bench_psql() { psql -qAtX -v ON_ERROR_STOP=1 "$@"; }

generate() { # generate EVENTS ADDRESSES [SPAN_DAYS [OFFSET_DAYS [FILE]]]
    ato_say "generating $1 login events over ${3:-30} days ending ${4:-0} days ago and $2 addresses (seeded, once)"
    bench_psql -v events="$1" -v events_file="${5:-$work/events.csv}" \
        -v addresses="$2" -v addresses_file="$work/addresses.txt" \
        -v span_days="${3:-30}" -v offset_days="${4:-0}" -f "$bench_dir/generate.sql" >/dev/null
}

bench_ingest() {
    ato_say "ingest: a warm-up and $runs rounds of COPY $events rows into a plain table, a plain table with the same BRIN index and ato.login_events"
    bench_psql -v events_file="$work/events.csv" -v events="$events" -v runs="$runs" -f "$bench_dir/ingest/ingest.sql"
}

bench_geoip() {
    local mmdb c_out c_seconds c_hits c_count sql_out sql_count sql_hits scan_seconds sql_seconds
    mmdb=$(bench_psql -c "LOAD 'ato_response'" -c 'SHOW ato_response.geoip_database')
    ato_say "geoip: building bench/geoip/geoip_loop.c"
    cc -O2 -Wall -Wextra -o "$work/geoip_loop" "$bench_dir/geoip/geoip_loop.c" -lmaxminddb

    ato_say "geoip: $addresses lookups in the C loop over $mmdb"
    c_out=$("$work/geoip_loop" "$mmdb" "$work/addresses.txt" "$runs")
    read -r c_seconds c_hits c_count <<<"$c_out"

    ato_say "geoip: the same $addresses lookups in SQL, one backend, no parallel workers"
    sql_out=$(bench_psql -v addresses_file="$work/addresses.txt" -v runs="$runs" -f "$bench_dir/geoip/geoip.sql")
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

bench_breakdown() {
    ato_say "breakdown: a warm-up and $breakdown_runs rounds of COPY $events rows into tables that add one ingredient at a time"
    bench_psql -v events_file="$work/events.csv" -v events="$events" -v runs="$breakdown_runs" \
        -f "$bench_dir/breakdown/breakdown.sql"

    if command -v perf >/dev/null && ((EUID == 0)); then
        ato_say "breakdown: perf profile of one COPY into ato.login_events (share of the backend's CPU samples)"
        bench_psql -v events_file="$work/events.csv" -v perf_data="$work/perf.data" \
            -f "$bench_dir/breakdown/perf.sql" >/dev/null
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

bench_window() {
    ato_say "window: loading $window_events events over $window_days days into ato.login_events and into bench.plain_window (B-tree on occurred_at)"
    bench_psql -v events_file="$work/events.csv" -v window_days="$window_days" -v runs="$runs" \
        -f "$bench_dir/window/window.sql"
}

bench_detect() {
    local half=$((detect_events / 2))
    ato_say "detect: $half login events over the last 30 days into ato.login_events and into plain tables with seed 004's best indexes"
    # detect.sql announces the older half itself, between its two sessions
    bench_psql -v recent_file="$work/recent.csv" -v older_file="$work/older.csv" -v events="$half" \
        -v runs="$detect_runs" -f "$bench_dir/detect/detect.sql"
}

bench_response() {
    ato_say "response: $accounts accounts with 3 sessions and 5 refresh tokens each, three copies (seed loop, ato, plain UPDATE)"
    bench_psql -v accounts="$accounts" -f "$bench_dir/response/response.sql"
}

# cpu_ticks PID: user + system clock ticks the process has used so far
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

bench_worker() {
    local rate=5000 seconds=${ATO_BENCH_WORKER_SECONDS:-240} sql=$bench_dir/worker/worker.sql
    local worker_pid worker_before worker_ticks ingest_pids ingest_ticks=0 pgbench pid
    ato_say "worker: pgbench records $rate login events a second for $seconds s; a stuffing wave is staged halfway"
    bench_psql -v step=setup -f "$sql" >/dev/null
    worker_pid=$(bench_psql -f "$bench_dir/lib/await_worker.sql")
    worker_before=$(cpu_ticks "$worker_pid")

    "$(ato_bindir)/pgbench" -n -c 4 -j 2 -R "$rate" -T "$seconds" -P 30 -f "$bench_dir/worker/login.pgbench" "$db" \
        >"$work/pgbench.out" 2>&1 &
    pgbench=$!
    sleep 2
    ingest_pids=$(bench_psql -v step=backends -f "$sql")
    declare -A ingest_before
    for pid in $ingest_pids; do ingest_before[$pid]=$(cpu_ticks "$pid"); done

    sleep $((seconds / 2 - 2))
    bench_psql -v step=wave -f "$sql"
    # the ingest backends' CPU is read just before pgbench ends them
    sleep $((seconds / 2 - 3))
    for pid in $ingest_pids; do
        ingest_ticks=$((ingest_ticks + $(cpu_ticks "$pid") - ingest_before[$pid]))
    done
    worker_ticks=$(($(cpu_ticks "$worker_pid") - worker_before))
    wait "$pgbench"
    grep -E '^(tps|latency average|number of transactions actually processed)' "$work/pgbench.out" || cat "$work/pgbench.out"
    bench_psql -v step=report -v seconds="$seconds" -v worker_ticks="$worker_ticks" -v ingest_ticks="$ingest_ticks" -f "$sql"
}

# load_latencies PHASE: pgbench's --log files of the phase into bench.login_latency
load_latencies() {
    cat "$work/$1".* | bench_psql -v step=load -v phase="$1" -f "$bench_dir/login_latency/login_latency.sql"
}

# imports_beside PID: a late import every ATO_BENCH_IMPORT_EVERY seconds (6;
# the next one at once if one takes longer) while process PID runs; prints
# how many ran.  The same cadence in the three phases that have imports, so
# that they carry the same imports and differ by what runs beside them.
imports_beside() {
    local pid=$1 every=${ATO_BENCH_IMPORT_EVERY:-6} count=0 started
    while kill -0 "$pid" 2>/dev/null; do
        started=$SECONDS
        # (set -e does not reach into $(...): a failed import fails the caller here)
        bench_psql -v step=import -v late_events="$late" -f "$sql" >/dev/null || return 1
        count=$((count + 1))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS - started < every)); do
            sleep 0.2
        done
    done
    echo "$count"
}

bench_login_latency() {
    local rate=200 seconds=${ATO_BENCH_LATENCY_SECONDS:-40} late=${ATO_BENCH_LATE_EVENTS:-150000}
    local imports imports_only imports_burner pgbench burner
    local sql=$bench_dir/login_latency/login_latency.sql
    local logins=(-n -c 4 -j 2 -R "$rate" -T "$seconds" --log -f "$bench_dir/login_latency/record_login.pgbench" "$db")
    ato_say "login_latency: ato.record_login() at $rate a second for $seconds s alone, $seconds s beside late imports of $late events (no worker yet), $seconds s beside the imports and a busy loop at the worker's priority, then $seconds s beside the worker and the same imports"
    bench_psql -v step=setup -f "$sql" >/dev/null
    "$(ato_bindir)/pgbench" --log-prefix="$work/alone" "${logins[@]}" >"$work/pgbench_alone.out" 2>&1
    load_latencies alone

    # what the imports cost the logins by themselves: on 2 cores an import
    # takes one while it runs, whatever the extension does after it
    "$(ato_bindir)/pgbench" --log-prefix="$work/imports" "${logins[@]}" >"$work/pgbench_imports.out" 2>&1 &
    pgbench=$!
    imports_only=$(imports_beside $pgbench)
    wait "$pgbench"
    load_latencies imports

    # the machine's floor: not the extension, any process that keeps a core
    # busy at the worker's priority (nice 10) beside the same imports; what
    # a background process at that priority costs the logins here whatever
    # it does
    "$(ato_bindir)/pgbench" --log-prefix="$work/burner" "${logins[@]}" >"$work/pgbench_burner.out" 2>&1 &
    pgbench=$!
    # (ends by itself, should this run stop early; in a session of its own
    # whose autogroup is at nice 10, as the worker's: under autogroup
    # scheduling a nice value ranks a process only within its session, see
    # src/detection_worker.c)
    timeout "$((seconds + 5))" setsid sh -c 'echo 10 >/proc/self/autogroup 2>/dev/null; exec nice -n 10 sh -c "while :; do :; done"' &
    burner=$!
    imports_burner=$(imports_beside $pgbench)
    wait "$pgbench"
    kill "$burner" 2>/dev/null || true
    load_latencies burner

    # then the worker, once it has folded in the imports of the phases
    # before, folds them in as they come
    bench_psql -v step=worker -f "$sql" >/dev/null
    poll_until "SELECT late_days = 0 FROM ato.summary_status"
    "$(ato_bindir)/pgbench" --log-prefix="$work/beside" "${logins[@]}" >"$work/pgbench_beside.out" 2>&1 &
    pgbench=$!
    imports=$(imports_beside $pgbench)
    wait "$pgbench"
    load_latencies beside
    bench_psql -v step=report -v late_events="$late" -v imports="$imports" -v imports_only="$imports_only" \
        -v imports_burner="$imports_burner" -f "$sql"
}

# poll_until SQL: until the query answers t (every half second, at most ten
# minutes, then it says so and the run goes on)
poll_until() {
    for _ in $(seq 1200); do
        [[ $(bench_psql -c "$1") == t ]] && return 0
        sleep 0.5
    done
    echo "bench: gave up waiting after ten minutes for: $1" >&2
}

bench_bulk_load() {
    local how=${ATO_BENCH_LOAD:-copy} sql=$bench_dir/bulk_load/bulk_load.sql
    ato_say "bulk_load: ${ATO_BENCH_BULK_EVENTS:-5000000} login events over 90 days by $how into a fresh install, the worker running; nobody calls create_event_partitions or refresh_summaries"
    bench_psql -f "$bench_dir/lib/await_worker.sql" >/dev/null
    bench_psql -v step=load -v how="$how" -v events_file="$work/events.csv" -f "$sql"
    ato_say "bulk_load: waiting for the worker to fold the history into the summaries"
    poll_until "SELECT late_days = 0 AND summarised_until >= (SELECT at FROM bench.marks WHERE name = 'loaded') - interval '2 minutes' FROM ato.summary_status"
    bench_psql -v step=caught_up -f "$sql"
    # the later calls are timed once the worker has also moved every month
    # out of both default partitions: a reader that comes while a month is
    # attached waits for it (src/event_layout.c)
    ato_say "bulk_load: waiting for the worker to move the months out of the default partitions"
    # (read from the catalog: a query of a default partition would hold the
    # lock that the attach of a month takes without waiting, and make it
    # give up)
    poll_until "SELECT NOT EXISTS (SELECT FROM generate_series(date_trunc('month', (SELECT at FROM bench.marks WHERE name = 'first_event'), 'UTC'), now(), interval '1 month') m, unnest(ARRAY['login_events', 'audit_events']) t WHERE to_regclass(format('ato.%s_p%s', t, to_char(m AT TIME ZONE 'UTC', 'YYYY_MM'))) IS NULL)"
    bench_psql -v step=settled -f "$sql"
    ato_say "bulk_load: seed 004's tables with the same rows, then both contenders"
    bench_psql -v step=compare -v how="$how" -v runs="$detect_runs" -f "$sql"
}

# pgbench_latency DATABASE SCRIPT CALLS: the average latency in ms of CALLS calls, one client
pgbench_latency() {
    "$(ato_bindir)/pgbench" -n -c 1 -t "$3" -f "$2" "$1" 2>&1 | awk '/^latency average/ { print $4 }'
}

bench_proxy() {
    local events=${ATO_BENCH_PROXY_EVENTS:-50000} calls=${ATO_BENCH_PROXY_CALLS:-3000} sql=$bench_dir/proxy/proxy.sql
    local node_load proxy_load node_detect proxy_detect script node_ms proxy_ms
    if [[ ! -f $(pg_config --sharedir)/extension/plproxy.control ]]; then
        echo "proxy: plproxy is not installed (apt-get install postgresql-15-plproxy)" >&2
        exit 1
    fi
    ato_say "proxy: databases shard0 and shard1 behind a PL/Proxy database, against one node ($db)"
    for shard in shard0 shard1; do
        createdb "$shard"
        psql -qX -v ON_ERROR_STOP=1 -d "$shard" -c 'CREATE EXTENSION ato_response'
    done
    createdb proxy
    bench_psql -d proxy -v step=proxy_setup -v host="$PGHOST" -v port="$PGPORT" -f "$sql"

    ato_say "proxy: $events logins through ato.record_logins() in calls of 10,000, on one node and through the proxy"
    node_load=$(bench_psql -d "$db" -v step=load -v events="$events" -f "$sql")
    proxy_load=$(bench_psql -d proxy -v step=load -v events="$events" -f "$sql")
    awk -v n="$node_load" -v p="$proxy_load" -v e="$events" 'BEGIN {
        printf "record_logins: %d logins, one node %.2f s, proxy %.2f s; ratio %.2f\n", e, n, p, p / n }'

    ato_say "proxy: fan-out detections over the 50 minutes, $runs runs each"
    node_detect=$(bench_psql -d "$db" -v step=detect -v runs="$runs" -f "$sql")
    proxy_detect=$(bench_psql -d proxy -v step=detect -v runs="$runs" -f "$sql")
    if [[ $(grep '^checksum' <<<"$node_detect") != "$(grep '^checksum' <<<"$proxy_detect")" ]]; then
        echo "proxy: MISMATCH: the detections' answers differ" >&2
        diff <(echo "$node_detect") <(echo "$proxy_detect") >&2 || true
        exit 1
    fi
    join -t '|' <(grep -v '^checksum' <<<"$node_detect") <(grep -v '^checksum' <<<"$proxy_detect") |
        while IFS='|' read -r name node_s proxy_s; do
            rows=$(grep "^checksum|$name|" <<<"$node_detect" | cut -d '|' -f 3)
            awk -v name="$name" -v n="$node_s" -v p="$proxy_s" -v rows="$rows" 'BEGIN {
                printf "%s: one node %.1f ms, proxy %.1f ms (same %d rows); ratio %.2f\n", name, n * 1000, p * 1000, rows, p / n }'
        done

    for script in record_login login_gate; do
        ato_say "proxy: $calls calls of ato.$script() from one pgbench client, on one node and through the proxy"
        node_ms=$(pgbench_latency "$db" "$bench_dir/proxy/$script.pgbench" "$calls")
        proxy_ms=$(pgbench_latency proxy "$bench_dir/proxy/$script.pgbench" "$calls")
        awk -v name="$script" -v n="$node_ms" -v p="$proxy_ms" 'BEGIN {
            printf "%s: one node %.3f ms a call, proxy %.3f ms (+%.3f ms); ratio %.2f\n", name, n, p, p - n, p / n }'
    done
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
    bulk_load)
        generate "${ATO_BENCH_BULK_EVENTS:-5000000}" 0 90
        bench_bulk_load
        ;;
    proxy)
        bench_proxy
        ;;
    import) # bench/import/import.sql: JSON lines through ato.okta_import against plain COPY of the same rows
        bench_psql -v dir="$work" -v events="${ATO_BENCH_IMPORT_EVENTS:-200000}" -v runs="$runs" -f "$bench_dir/import/import.sql"
        ;;
esac
