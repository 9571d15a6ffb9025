#!/usr/bin/env bash
# Build the vcsim stand-in (main.go) offline from Debian's govmomi source.
#
#   tests/standins/vcsim/build.sh      prints the path of the binary
#
# Needs the Debian packages golang-go and golang-github-vmware-govmomi-dev
# (scripts/setup-system.sh installs them). Builds into $VCSIM_BUILD_DIR (default
# .venv/vcsim, git-ignored) and only when main.go changed since the last build
# (~25 s the first time). GOPATH mode, no modules, no proxy: nothing is downloaded.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=${VCSIM_BUILD_DIR:-$root/.venv/vcsim}
gocode=/usr/share/gocode
bin=$out/vcsim

sum=$(sha256sum "$here/main.go" | cut -d' ' -f1)
if [[ -x "$bin" && "$(cat "$out/main.go.sha256" 2>/dev/null || true)" == "$sum" ]]; then
    echo "$bin"
    exit 0
fi

if ! command -v go >/dev/null || [[ ! -d $gocode/src/github.com/vmware/govmomi/simulator ]]; then
    echo "vcsim: needs the Debian packages golang-go golang-github-vmware-govmomi-dev" >&2
    echo "  run: bash scripts/setup-system.sh (as root)" >&2
    exit 1
fi

mkdir -p "$out/gopath"
echo "vcsim: building $bin from $here/main.go" >&2
cd "$here"
GOPATH="$out/gopath:$gocode" GO111MODULE=off GOPROXY=off GOFLAGS='' GOCACHE="$out/gocache" \
    go build -o "$bin.tmp" .
mv "$bin.tmp" "$bin"
echo "$sum" > "$out/main.go.sha256"
echo "$bin"
