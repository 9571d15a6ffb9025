#!/usr/bin/env bash
# Start a real libvirtd + QEMU (TCG) on a machine without systemd. Idempotent.
#
# Needs root and the packages of scripts/setup-system.sh. Afterwards
# `virsh -c qemu:///system version` answers; tests create their own storage
# pools (dir pools) and diskless `type='qemu'` domains there.
#
#   tests/standins/start-libvirtd.sh           start (or confirm running)
#   tests/standins/start-libvirtd.sh --smoke   also define/start/destroy/undefine a tiny domain
set -euo pipefail

URI=qemu:///system
QEMU_CONF=/etc/libvirt/qemu.conf

log() { echo "start-libvirtd: $*"; }

# Both daemons write a pid file when started as root with -d.
running() {    # running NAME -> true if /run/NAME.pid names a live process
    local pid
    pid=$(cat "/run/$1.pid" 2>/dev/null || true)
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

if [[ "$(id -u)" -ne 0 ]]; then
    log "must run as root (starts /usr/sbin/libvirtd)" >&2
    exit 1
fi
for bin in /usr/sbin/libvirtd /usr/sbin/virtlogd /usr/bin/virsh; do
    if [[ ! -x "$bin" ]]; then
        log "$bin not found; run scripts/setup-system.sh first" >&2
        exit 1
    fi
done

# The QEMU driver refuses to start without this user, even when told to run as root.
if ! id libvirt-qemu >/dev/null 2>&1; then
    log "creating user libvirt-qemu"
    useradd -r -U -M -s /usr/sbin/nologin libvirt-qemu
fi

# Run guests as root with no labelling: no systemd, no AppArmor/SELinux here.
wanted='user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"'
current=$(grep -Ev '^[[:space:]]*(#|$)' "$QEMU_CONF" 2>/dev/null || true)
if [[ "$current" != "$wanted" ]]; then
    log "writing $QEMU_CONF"
    if [[ -f "$QEMU_CONF" && ! -f "$QEMU_CONF.sirocco-orig" ]]; then
        cp -p "$QEMU_CONF" "$QEMU_CONF.sirocco-orig"
    fi
    mkdir -p "$(dirname "$QEMU_CONF")"
    printf '# Written by Sirocco tests/standins/start-libvirtd.sh (original: %s.sirocco-orig)\n%s\n' \
        "$QEMU_CONF" "$wanted" >"$QEMU_CONF"
    if running libvirtd; then
        log "restarting libvirtd to pick up the new configuration"
        kill "$(cat /run/libvirtd.pid)" || true
        for _ in $(seq 100); do running libvirtd || break; sleep 0.1; done
    fi
fi

# dnsmasq: libvirt writes a network's MAC list there when a domain joins it, even on a network without DHCP
# (which never starts dnsmasq, the one thing that would make it); distributions' packages ship it
mkdir -p /var/log/libvirt/qemu /var/lib/libvirt/images /var/lib/libvirt/dnsmasq /run/libvirt

if ! running virtlogd; then
    log "starting virtlogd"
    /usr/sbin/virtlogd -d
fi
if ! running libvirtd; then
    log "starting libvirtd"
    /usr/sbin/libvirtd -d
fi

for _ in $(seq 150); do
    if virsh -c "$URI" version >/dev/null 2>&1; then
        break
    fi
    sleep 0.2
done
if ! virsh -c "$URI" version >/dev/null 2>&1; then
    log "libvirtd did not answer on $URI within 30 s" >&2
    virsh -c "$URI" version >&2 || true
    exit 1
fi
log "libvirtd answers on $URI ($(virsh -c "$URI" version 2>/dev/null | grep -i 'running hypervisor' | sed 's/^ *//'))"

if [[ "${1:-}" == "--smoke" ]]; then
    name="sirocco-smoke-$$"
    xml=$(mktemp)
    trap 'rm -f "$xml"; virsh -c "$URI" destroy "$name" >/dev/null 2>&1 || true; virsh -c "$URI" undefine "$name" >/dev/null 2>&1 || true' EXIT
    cat >"$xml" <<XML
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <interface type='user'><model type='virtio'/></interface>
  </devices>
</domain>
XML
    virsh -c "$URI" define "$xml" >/dev/null
    virsh -c "$URI" start "$name" >/dev/null
    state=$(virsh -c "$URI" domstate "$name")
    virsh -c "$URI" destroy "$name" >/dev/null
    virsh -c "$URI" undefine "$name" >/dev/null
    if [[ "$state" != "running" ]]; then
        log "smoke domain reached state '$state', not 'running'" >&2
        exit 1
    fi
    log "smoke test: diskless qemu domain defined, ran, destroyed, undefined"

    pool="sirocco-smoke-pool-$$"
    pooldir=$(mktemp -d)
    virsh -c "$URI" pool-define-as "$pool" dir --target "$pooldir" >/dev/null
    virsh -c "$URI" pool-start "$pool" >/dev/null
    virsh -c "$URI" vol-create-as "$pool" smoke.qcow2 1M --format qcow2 >/dev/null
    virsh -c "$URI" vol-delete smoke.qcow2 --pool "$pool" >/dev/null
    virsh -c "$URI" pool-destroy "$pool" >/dev/null
    virsh -c "$URI" pool-undefine "$pool" >/dev/null
    rmdir "$pooldir"
    log "smoke test: dir storage pool defined, started, held a qcow2 volume, removed"
fi
