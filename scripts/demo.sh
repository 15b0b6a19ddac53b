#!/usr/bin/env bash
# demo.sh -- the README's quick start: from a fresh Debian 12 machine (as
# root), install what is needed, fetch the bundled GeoIP database, build and
# install the extension, start a throwaway cluster, load 30 days of ordinary
# logins, stage a credential-stuffing incident in the last hour and answer the
# "ATO at scale" runbook's first questions with the detection functions, then
# revoke the affected accounts with ato.revoke_incident() while a LISTEN
# session is woken by the notifications and reads the accounts from the
# outbox (ato.revocations_since()); then preserve and verify the evidence,
# confirm the incident (the users' notices, the downstream revocations owed),
# show the retrospective and write the incident's HTML report to a file
# (ATO_DEMO_REPORT, /tmp/ato_response-incident-report.html unless given).
#
#   bash scripts/demo.sh              # everything is removed at the end
#   ATO_KEEP=1 bash scripts/demo.sh   # keep the cluster and print how to connect
#
# The SQL is in demo/: setup.sql, history.sql, incident.sql, investigate.sql,
# respond.sql, evidence.sql, aftermath.sql.
# Exits non-zero if any step fails, including the demo's own check that the
# queries find exactly the takeovers it staged.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

# The staged attackers: a real IPv4 range (RU in the bundled database) and a
# real IPv6 range (NL); none of the demo's accounts lives in either country.
attacker_cidr='5.188.10.0/24'
attacker6_cidr='2a03:b0c0:3::/48'

started=$SECONDS

ato_install_packages
ato_build_install

work=$(ato_workdir)
cleanup() {
    local rc=$?
    if ((rc != 0)) && [[ -f $work/server.log ]]; then
        echo "demo: failed (exit $rc); last lines of the server log:" >&2
        tail -n 20 "$work/server.log" >&2
    fi
    if [[ ${ATO_KEEP:-0} == 1 && -f $work/data/postmaster.pid ]]; then
        ato_say "the demo cluster is still running (ATO_KEEP=1)"
        echo "connect:  psql -h $work -p 5432 -U postgres postgres"
        echo "    (or:  export PGHOST=$work PGPORT=5432 PGUSER=postgres PGDATABASE=postgres; psql)"
        local as_postgres=''
        ((EUID == 0)) && as_postgres='runuser -u postgres -- '
        echo "stop:     ${as_postgres}$(ato_bindir)/pg_ctl -D $work/data stop && rm -rf $work"
    else
        ato_stop_cluster "$work"
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT

ato_say "starting a throwaway cluster in $work"
ato_start_cluster "$work" "shared_preload_libraries = 'pg_cron'" "cron.database_name = 'postgres'"

demo_sql() {
    psql -X -q -v ON_ERROR_STOP=1 -P pager=off \
        -v attacker_cidr="$attacker_cidr" -v attacker6_cidr="$attacker6_cidr" \
        -f "$ato_root/demo/$1"
}

ato_say "CREATE EXTENSION ato_response, pg_cron"
demo_sql setup.sql

ato_say "loading 30 days of ordinary logins and account changes"
t=$SECONDS
demo_sql history.sql
echo "(loaded in $((SECONDS - t)) s)"

ato_say "staging an incident in the last hour"
demo_sql incident.sql

demo_sql investigate.sql

# A consumer, as a service that clears its caches would be: it LISTENs (the
# payloads carry outbox positions, no account), waits for the incident to be
# contained, then reads the accounts from the outbox after the last position
# it had seen (0: none), as it would after reconnecting.
ato_say "a LISTEN session on channel ato_revocations"
psql -X -q -v ON_ERROR_STOP=1 --set=application_name=demo_listener -c 'LISTEN ato_revocations' \
    -c "DO \$\$BEGIN
          FOR i IN 1 .. 600 LOOP
              EXIT WHEN EXISTS (SELECT FROM ato.incidents WHERE status = 'contained');
              PERFORM pg_sleep(0.1);
          END LOOP;
        END\$\$" \
    -c 'SELECT 1' >"$work/listener.out" 2>&1 &
listener=$!
until [[ $(psql -XAtq -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'DO %ato.incidents%' AND pid <> pg_backend_pid()") == 1 ]]; do
    sleep 0.1
done

demo_sql respond.sql
wait "$listener"
notifications=$(grep -c '^Asynchronous notification "ato_revocations"' "$work/listener.out" || true)
positions=$(grep -o '"position":[0-9]*' "$work/listener.out" | cut -d: -f2 | paste -sd, -)
echo "the listener was woken $notifications time(s), for outbox position(s) ${positions:-none}, for example:"
grep -m1 -o 'payload ".*" received' "$work/listener.out" | sed 's/^payload "/  /; s/" received$//'
echo "and reads the accounts from the outbox: SELECT position, user_id FROM ato.revocations_since(0);"
psql -X -q -P footer=off -c "SELECT position, incident_id, batch, revoked_at, user_id FROM ato.revocations_since(0) LIMIT 3"
notified=$(psql -XAtq -c "SELECT count(DISTINCT user_id) FROM ato.revocations_since(0)
                           WHERE position = ANY ('{${positions}}'::bigint[])")
revoked=$(psql -XAtq -c 'SELECT cardinality(user_ids) FROM ato.incidents')
echo "the positions the listener was woken for hold $notified account(s); $revoked were revoked"
if [[ $notified != "$revoked" ]]; then
    echo "demo: FAILED: the listener was told of $notified accounts, $revoked were revoked" >&2
    exit 1
fi

ato_say "the evidence: preserved, verified in the database and, exported, by a script without it"
demo_sql evidence.sql
incident=$(psql -XAtq -c 'SELECT id FROM ato.incidents ORDER BY opened_at DESC LIMIT 1')
psql -XAtq -c "SELECT * FROM ato.export_evidence('$incident')" >"$work/evidence.jsonl"
echo "exported to $work/evidence.jsonl ($(wc -l <"$work/evidence.jsonl") lines); checked without the extension:"
python3 "$ato_root/example/verify_evidence.py" "$work/evidence.jsonl"

ato_say "the aftermath: confirmed, the users told, downstream owed, the retrospective, the report"
demo_sql aftermath.sql
report=${ATO_DEMO_REPORT:-/tmp/ato_response-incident-report.html}
psql -XAtq -c "SELECT ato.incident_report('$incident')" >"$report"
echo "the incident's report, one self-contained HTML page: $report ($(wc -c <"$report") bytes; open it in a browser)"
grep -q '<svg' "$report" || { echo "demo: FAILED: the report has no chart" >&2; exit 1; }

echo
echo "(demo finished in $((SECONDS - started)) s, build and install included)"
