#!/usr/bin/env bash
# Stop Sirocco's OpenStack stand-in: every process start.sh recorded, by its PID.
#
#   tests/standins/openstack/stop.sh     (same SIROCCO_OPENSTACK_DIR as start.sh)
#
# SIGTERM first, SIGKILL for what is left after 10 s: the services, MariaDB, RabbitMQ and
# its epmd, the claim on the port range. The state directory stays for reading logs (with
# the base start.sh chose, in "port"); the next start.sh removes it.
set -euo pipefail
STATE=${SIROCCO_OPENSTACK_DIR:-/var/tmp/sirocco-openstack}
[[ -d "$STATE/pids" ]] || exit 0
base=$(cat "$STATE/port" 2>/dev/null || true)
rm -f "$STATE/ready"

pids=()
for pidfile in "$STATE"/pids/*.pid; do
    [[ -f "$pidfile" ]] || continue
    pid=$(cat "$pidfile")
    # each service runs in its own session (setsid): signal its whole process group
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        pids+=("$pid")
    fi
    rm -f "$pidfile"
done
for _ in $(seq 50); do
    left=()
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null && left+=("$pid")
    done
    [[ ${#left[@]} -eq 0 ]] && break
    pids=("${left[@]}")
    sleep 0.2
done
for pid in "${left[@]}"; do
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
done
# databases kept in memory (/dev/shm) are freed; the next start makes them anew
if [[ -f "$STATE/mysql-data" && "$(cat "$STATE/mysql-data")" == /dev/shm/sirocco-openstack-* ]]; then
    rm -rf "$(dirname "$(cat "$STATE/mysql-data")")"
fi
echo "openstack-standin: stopped${base:+ (ports $base-$((base + 9)), state in $STATE)}"
