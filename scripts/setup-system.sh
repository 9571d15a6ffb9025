#!/usr/bin/env bash
# Install the Debian packages Sirocco needs to build, test and demo.
#
#   scripts/setup-system.sh            install what is missing (needs root)
#   scripts/setup-system.sh --check    only report; exit 1 if something is missing
#
# As root: runs `apt-get update` once, then installs only the missing packages
# (non-interactive, no recommends). Not root: prints the exact apt-get line
# to run and exits non-zero if anything is missing. Idempotent.
set -euo pipefail

PACKAGES=(
    # build libvirt-python against the system libvirt
    gcc libvirt-dev pkg-config
    # real libvirtd + QEMU (TCG) stand-in, see tests/standins/start-libvirtd.sh
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils
    # libvirtd sets up its network firewall once at start: without iptables, creating a network fails
    iptables
    # a libvirt network with addresses (create_network's cidr) gets its DHCP from libvirt's dnsmasq
    dnsmasq-base
    # vSphere stand-in: govmomi's simulator built from Debian's Go source, see tests/standins/vcsim/
    golang-go golang-github-vmware-govmomi-dev
    # OpenStack stand-in's database and message bus, see tests/standins/openstack/
    mariadb-server mariadb-client rabbitmq-server
    # lets the `shellcheck` test of ansible-test sanity run instead of skipping
    shellcheck
    # test certificates for the TLS tests of siroccod and the cimi connector
    openssl
    # the daemon's CMDB on PostgreSQL: a throwaway cluster, see tests/standins/postgres/start.sh
    postgresql
    # the image factory (plugins/module_utils/images): mmdebstrap from this machine's apt sources, the root
    # file system by mke2fs -d (+ debugfs in its tests), GPT by sfdisk, GRUB's BIOS and EFI images by
    # grub-mkimage, the ESP by mkfs.fat + mtools, conversions by qemu-img; OVMF boots it with UEFI in the tests
    mmdebstrap debian-archive-keyring e2fsprogs fdisk grub-pc-bin grub-efi-amd64-bin dosfstools mtools ovmf
    # the controller's side of a play inside guests (ansible's ssh connection) and the demo's SSH key
    openssh-client
)
# Debian's own python3.11 (rather than a separately built one) needs its venv
# module and headers split out into packages.
python=$(command -v "${PYTHON:-python3.11}" || true)
if [[ "$(readlink -f "$python")" == /usr/bin/python3* ]]; then
    PACKAGES+=(python3.11-venv python3.11-dev)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "setup-system: all ${#PACKAGES[@]} Debian packages present"
    exit 0
fi

install_line="apt-get install -y --no-install-recommends ${missing[*]}"

if [[ "${1:-}" == "--check" || "$(id -u)" -ne 0 ]]; then
    echo "setup-system: missing Debian packages: ${missing[*]}" >&2
    echo "Run as root:" >&2
    echo "  apt-get update && $install_line"
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "setup-system: installing ${missing[*]}"
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup-system: done"
