# lib.sh -- shared by scripts/demo.sh, scripts/test.sh and bench/run.sh:
# installing what the project needs, building it, and throwaway clusters.
# Source it; it defines functions and sets nothing else but ato_root.

ato_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian packages the build, the tests, the demo and the benchmarks need.
ato_packages=(
    build-essential postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-15-plproxy
    libmaxminddb-dev mmdb-bin libmaxmind-db-writer-perl libipc-run-perl npm python3-psycopg
    chromium
)

ato_say() { printf '\n== %s\n' "$*"; }

# Install the packages that are missing (needs root, once per machine).
ato_install_packages() {
    local missing=() p
    for p in "${ato_packages[@]}"; do
        [[ $p == npm ]] && command -v npm >/dev/null && continue
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    if ((EUID != 0)); then
        echo "missing Debian packages: ${missing[*]} (run as root, or apt-get install them)" >&2
        return 1
    fi
    ato_say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The server binaries of the PostgreSQL that pg_config names.
ato_bindir() { pg_config --bindir; }

# Fetch the bundled GeoIP database, build and install the extension.
ato_build_install() {
    ato_say "building and installing ato_response"
    make -C "$ato_root" -s geoip
    make -C "$ato_root" -s
    if ((EUID == 0)); then
        make -C "$ato_root" -s install
    else
        sudo make -C "$ato_root" -s install
    fi
}

# Run a command as the unprivileged account the clusters run under.
ato_as_postgres() {
    if ((EUID == 0)); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# A directory the cluster account can write to.
ato_workdir() {
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/ato_response.XXXXXX")
    ((EUID == 0)) && chown postgres: "$dir"
    chmod 755 "$dir"
    echo "$dir"
}

# ato_start_cluster DIR [postgresql.conf lines...]
#   initdb DIR/data, start it on a Unix socket in DIR only (no TCP), and
#   export PGHOST/PGPORT/PGUSER/PGDATABASE for it.
ato_start_cluster() {
    local dir=$1; shift
    local bindir; bindir=$(ato_bindir)
    ato_as_postgres "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; return 1; }
    {
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$dir'"
        echo "port = 5432"
        echo "fsync = off"
        printf '%s\n' "$@"
    } | ato_as_postgres tee -a "$dir/data/postgresql.conf" >/dev/null
    ato_as_postgres "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { cat "$dir/server.log" >&2; return 1; }
    export PGHOST=$dir PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
}

ato_stop_cluster() {
    local dir=$1
    [[ -f $dir/data/postmaster.pid ]] || return 0
    ato_as_postgres "$(ato_bindir)/pg_ctl" -D "$dir/data" -w -m fast stop >/dev/null 2>&1 || true
}
