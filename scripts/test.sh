#!/usr/bin/env bash
# test.sh -- the whole test suite from a fresh Debian 12 machine: installs
# what is needed, fetches the bundled GeoIP database, builds and installs
# the extension, then runs the pg_regress and isolation suites against a
# throwaway cluster and the TAP suite (which starts clusters of its own).
# The throwaway cluster reads a small GeoIP database the suite writes itself
# (regress.mmdb of test/geo/write_test_mmdb.pl), so the expected output does
# not follow the bundled file; only sql/geoip_bundled.sql reads that one.
# Run as root (or as a user with the packages installed and sudo for
# "make install").
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ato_install_packages
ato_build_install
make -C "$ato_root" -s check-version check-install-script

work=$(ato_workdir)
cleanup() { ato_stop_cluster "$work/cluster"; rm -rf "$work"; }
trap cleanup EXIT

# pg_regress and prove write into the tree they run in: give the cluster
# account a copy of it instead of the checkout.
ato_say "copying the tree for the test run"
mkdir -p "$work/tree" "$work/cluster"
tar -C "$ato_root" --exclude=.git --exclude=./results --exclude=./tmp_check -cf - . | tar -C "$work/tree" -xf -
((EUID == 0)) && chown -R postgres: "$work/tree" "$work/cluster"

ato_say "writing the GeoIP database of the pg_regress and isolation suites"
ato_as_postgres perl "$work/tree/test/geo/write_test_mmdb.pl" "$work/geo"

ato_say "starting a throwaway cluster for pg_regress"
ato_start_cluster "$work/cluster" "ato_response.geoip_database = '$work/geo/regress.mmdb'"

status=0
ato_say "pg_regress and TAP suites"
ato_as_postgres env PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER="$PGUSER" \
    make -C "$work/tree" -s installcheck 2>&1 | tee "$work/installcheck.log" || status=1
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1

if ((status != 0)); then
    ato_say "failures"
    [[ -f $work/tree/regression.diffs ]] && cat "$work/tree/regression.diffs"
    for log in "$work"/tree/tmp_check/log/*; do
        [[ -f $log ]] || continue
        echo "--- $log (last 40 lines)"
        tail -n 40 "$log"
    done
fi

regress_passed=$(grep -cE '^(ok|test) .* ok|^ok ' "$work/installcheck.log" || true)
regress_failed=$(grep -cE '\.\.\. FAILED|^not ok ' "$work/installcheck.log" || true)
tap_line=$(grep -E '^Files=[0-9]+, Tests=[0-9]+' "$work/installcheck.log" | tail -n 1 || true)
echo
echo "pg_regress: $regress_passed passed, $regress_failed failed; TAP: ${tap_line:-no summary}"
exit $status
