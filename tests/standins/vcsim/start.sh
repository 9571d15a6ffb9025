#!/usr/bin/env bash
# Start the vcsim stand-in in the foreground (builds it first if needed).
#
#   tests/standins/vcsim/start.sh [esx|vc] [extra vcsim flags, e.g. -listen 127.0.0.1:8989]
#
# Prints VCSIM_URL=https://127.0.0.1:PORT/sdk (user "user", password "pass" unless
# -username/-password say otherwise); stop it with Ctrl-C or SIGTERM to its PID.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=$(bash "$here/build.sh")
mode=${1:-esx}
shift || true
exec "$bin" -mode "$mode" "$@"
