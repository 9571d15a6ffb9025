#!/usr/bin/env bash
# Install Sirocco's OpenStack stand-in. Idempotent: a stamp file records what is installed.
#
#   tests/standins/openstack/install.sh
#
# From Debian (as root, when missing): mariadb-server, mariadb-client, rabbitmq-server.
# From PyPI: Keystone, Nova, Glance, Placement, Cinder, gunicorn, PyMySQL into their own venv
# (SIROCCO_OPENSTACK_VENV, default <repo>/.venv-openstack, ~500 MB): their pins conflict
# with Sirocco's own dependencies. requirements.txt names the services' releases and
# constraints.txt pins every other package, so the result does not depend on the day.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
VENV=${SIROCCO_OPENSTACK_VENV:-$repo/.venv-openstack}
PYTHON=${PYTHON:-python3.11}
STAMP=$VENV/.sirocco-openstack.stamp
DEBIAN_PACKAGES=(mariadb-server mariadb-client rabbitmq-server)

log() { echo "openstack-install: $*" >&2; }

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ "$(id -u)" -ne 0 ]]; then
        log "missing Debian packages: ${missing[*]}; as root run:"
        log "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
        exit 1
    fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

want="$(cat "$here/requirements.txt" "$here/constraints.txt" | cksum) $PYTHON"
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    log "up to date ($VENV)"
    exit 0
fi
start=$SECONDS
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
log "installing the OpenStack services into $VENV"
PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install -q \
    -r "$here/requirements.txt" -c "$here/constraints.txt"
echo "$want" >"$STAMP"
log "done in $((SECONDS - start)) s"
