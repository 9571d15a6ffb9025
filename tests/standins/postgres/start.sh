#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the daemon's tests (Debian's `postgresql` package). Idempotent.
#
#   tests/standins/postgres/start.sh          start it (or confirm it runs); the last line of
#                                             stdout is its SQLAlchemy URL (also in $DIR/url)
#   tests/standins/postgres/start.sh --stop   stop it, by the PID in its postmaster.pid
#
# The cluster lives in $SIROCCO_PG_DIR (default /tmp/sirocco-postgres-<uid>): initdb'd there
# on first use (as the `postgres` user when run as root: PostgreSQL refuses to run as root),
# listening on 127.0.0.1 only, on a port free at first start and kept in $DIR/port afterwards
# ($SIROCCO_PG_PORT forces one), with its socket in $DIR/run. Durability is switched off
# (fsync, synchronous_commit): this is test data. It holds one user `sirocco` (a random
# password, CREATEDB, so each test can make its own database) owning the database `sirocco`.
# Messages go to stderr; only the URL goes to stdout.
set -euo pipefail

DIR=${SIROCCO_PG_DIR:-/tmp/sirocco-postgres-$(id -u)}
DATA=$DIR/data
RUN=$DIR/run
LOG=$DIR/postgres.log

log() { echo "postgres stand-in: $*" >&2; }
die() { log "$*"; exit 1; }

bindir=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if [[ ! -x "$bindir/initdb" ]]; then
    die "no PostgreSQL server under /usr/lib/postgresql/*/bin: run scripts/setup-system.sh as root (package postgresql)"
fi

# as_owner CMD...: run as the cluster's owner (postgres when we are root, else ourselves)
if [[ "$(id -u)" -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "user postgres missing: install Debian's postgresql package"
    owner=postgres
    as_owner() { runuser -u postgres -- "$@"; }
else
    owner=$(id -un)
    as_owner() { "$@"; }
fi

pid_alive() {   # the postmaster of our data dir runs
    local pid
    pid=$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null || true)
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

# any Python 3 will do for the small helpers below (the Makefile's $PYTHON where python3 is missing)
py=$(command -v "${PYTHON:-python3}" || command -v python3 || command -v python3.11) \
    || die "no Python 3 found (set PYTHON)"

port_free() {
    "$py" - "$1" <<'PY'
import socket, sys
with socket.socket() as s:
    try:
        s.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sys.exit(1)
PY
}

free_port() {
    "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if [[ "${1:-}" == "--stop" ]]; then
    if pid_alive; then
        pid=$(head -n 1 "$DATA/postmaster.pid")
        log "stopping postmaster $pid"
        kill -INT "$pid"  # fast shutdown
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid"
        fi
    else
        log "not running"
    fi
    exit 0
fi

mkdir -p "$DIR"
chmod 0755 "$DIR"
# an initdb cut short leaves a data dir without PG_VERSION: start over
if [[ -d "$DATA" && ! -f "$DATA/PG_VERSION" ]]; then
    log "removing an incomplete data directory"
    rm -rf "$DATA"
fi
if [[ ! -d "$DATA" ]]; then
    log "initdb in $DATA ($bindir)"
    mkdir -p "$DATA" "$RUN"
    chown "$owner" "$DATA" "$RUN"
    chmod 0700 "$DATA"
    as_owner "$bindir/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 --no-sync \
        --auth-local=trust --auth-host=scram-sha-256 >"$DIR/initdb.log" 2>&1 \
        || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    "$py" -c 'import secrets; print(secrets.token_urlsafe(18))' >"$DIR/password"
    chmod 0600 "$DIR/password"
fi
mkdir -p "$RUN"
chown "$owner" "$RUN"

if ! pid_alive; then
    port=${SIROCCO_PG_PORT:-$(cat "$DIR/port" 2>/dev/null || true)}
    if [[ -z "$port" ]] || { [[ -z "${SIROCCO_PG_PORT:-}" ]] && ! port_free "$port"; }; then
        port=$(free_port)
    fi
    echo "$port" >"$DIR/port"
    touch "$LOG" && chown "$owner" "$LOG"
    log "starting on 127.0.0.1:$port"
    opts="-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$RUN -c max_connections=200"
    opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    as_owner "$bindir/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 -o "$opts" start >&2 \
        || { tail -n 20 "$LOG" >&2; die "PostgreSQL did not start (log: $LOG)"; }
fi
port=$(cat "$DIR/port")
for _ in $(seq 100); do
    "$bindir/pg_isready" -q -h "$RUN" -p "$port" -U postgres && break
    sleep 0.1
done
"$bindir/pg_isready" -q -h "$RUN" -p "$port" -U postgres || die "PostgreSQL does not answer (log: $LOG)"

# the user and its database (idempotent: also repairs a cluster whose set-up was cut short)
password=$(cat "$DIR/password")
as_owner "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$RUN" -p "$port" -U postgres -d postgres \
    -v pw="$password" >&2 <<'SQL'
SELECT format('CREATE ROLE sirocco LOGIN CREATEDB PASSWORD %L', :'pw')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sirocco') \gexec
SELECT format('ALTER ROLE sirocco LOGIN CREATEDB PASSWORD %L', :'pw') \gexec
SELECT 'CREATE DATABASE sirocco OWNER sirocco'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'sirocco') \gexec
SQL
url="postgresql+psycopg://sirocco:$password@127.0.0.1:$port/sirocco"
echo "$url" >"$DIR/url"
chmod 0644 "$DIR/url"
log "ready: postgresql://sirocco@127.0.0.1:$port/sirocco (pid $(head -n 1 "$DATA/postmaster.pid"))"
echo "$url"
