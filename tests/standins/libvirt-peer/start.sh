#!/usr/bin/env bash
# A second libvirt host on this machine, for real live migrations from and to qemu:///system.
#
# libvirt refuses to migrate a domain to the host it runs on, telling hosts apart by their host
# UUID. This starts a *session* libvirtd (QEMU driver, TCG guests) as the dedicated unprivileged
# user sirocco-peer, with its own XDG directories, its own socket and its own host_uuid in its
# libvirtd.conf: to libvirt it is another host. Idempotent; prints the URI to reach it last:
#
#   qemu+unix:///session?socket=/var/lib/sirocco-libvirt-peer/run/libvirt/libvirt-sock
#
#   tests/standins/libvirt-peer/start.sh          start (or confirm running)
#   tests/standins/libvirt-peer/start.sh --stop   stop it
#
# Needs root (to create the user and start the daemon as it) and the packages of
# scripts/setup-system.sh; the system libvirtd comes from tests/standins/start-libvirtd.sh.
set -euo pipefail

PEER_USER=sirocco-peer
BASE=/var/lib/sirocco-libvirt-peer
SOCKET=$BASE/run/libvirt/libvirt-sock
PIDFILE=$BASE/run/libvirt/libvirtd.pid
URI="qemu+unix:///session?socket=$SOCKET"

log() { echo "libvirt-peer: $*" >&2; }

running() {
    local pid
    pid=$(cat "$PIDFILE" 2>/dev/null || true)
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

if [[ "$(id -u)" -ne 0 ]]; then
    log "must run as root (creates the user $PEER_USER, starts libvirtd as it)"
    exit 1
fi

if [[ "${1:-}" == "--stop" ]]; then
    if running; then
        kill "$(cat "$PIDFILE")"
        for _ in $(seq 100); do running || break; sleep 0.1; done
        log "stopped"
    fi
    exit 0
fi

for bin in /usr/sbin/libvirtd /usr/bin/virsh /usr/bin/qemu-system-x86_64; do
    if [[ ! -x "$bin" ]]; then
        log "$bin not found; run scripts/setup-system.sh first"
        exit 1
    fi
done

if ! id "$PEER_USER" >/dev/null 2>&1; then
    log "creating user $PEER_USER"
    useradd -r -M -s /usr/sbin/nologin -d "$BASE" "$PEER_USER"
fi

mkdir -p "$BASE"/{run,config/libvirt,cache,data}
if [[ ! -s "$BASE/config/libvirt/libvirtd.conf" ]]; then
    # its own host UUID: the one thing that makes libvirt see another host
    printf '# Written by Sirocco tests/standins/libvirt-peer/start.sh\nhost_uuid = "%s"\n' \
        "$(cat /proc/sys/kernel/random/uuid)" >"$BASE/config/libvirt/libvirtd.conf"
fi
chown -R "$PEER_USER": "$BASE"
chmod 700 "$BASE" "$BASE/run"

if ! running; then
    log "starting a session libvirtd as $PEER_USER"
    rm -f "$SOCKET"
    (cd "$BASE" && setpriv --reuid "$PEER_USER" --regid "$(id -g "$PEER_USER")" --init-groups \
        env -i HOME="$BASE" XDG_RUNTIME_DIR="$BASE/run" XDG_CONFIG_HOME="$BASE/config" \
        XDG_CACHE_HOME="$BASE/cache" XDG_DATA_HOME="$BASE/data" PATH=/usr/sbin:/usr/bin:/bin \
        setsid /usr/sbin/libvirtd --timeout 0 >"$BASE/libvirtd.log" 2>&1 </dev/null &)
fi

for _ in $(seq 150); do
    if virsh -c "$URI" version >/dev/null 2>&1; then
        break
    fi
    sleep 0.2
done
if ! virsh -c "$URI" version >/dev/null 2>&1; then
    log "the peer libvirtd did not answer on $URI within 30 s; its log:"
    tail -20 "$BASE/libvirtd.log" >&2 || true
    exit 1
fi
# whole outputs first: `virsh ... | grep -m1` would kill virsh with SIGPIPE, fatal under pipefail
host_uuid() { sed -n 's|.*<uuid>\(.*\)</uuid>.*|\1|p' <<<"$1" | head -n1; }
system=$(host_uuid "$(virsh -c qemu:///system capabilities 2>/dev/null || true)")
peer=$(host_uuid "$(virsh -c "$URI" capabilities)")
if [[ "$system" == "$peer" ]]; then
    log "the peer has the system libvirtd's host UUID ($peer): migration between them would be refused"
    exit 1
fi
log "answers on $URI (host $peer)"
echo "$URI"
