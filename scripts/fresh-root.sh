#!/usr/bin/env bash
# shellcheck disable=SC2317  # the clean-up functions are reached only through the EXIT trap
# Run a command on a clean clone of this repository inside a brand-new, minimal
# Debian 12 root, to check that the project's own set-up (Makefile, scripts/)
# installs everything it needs. A run on a long-used workstation cannot show
# that: packages installed by hand there months ago hide missing steps.
#
#   scripts/fresh-root.sh                      # `make test` (the default command)
#   scripts/fresh-root.sh make demo            # any command; words are passed as-is
#   scripts/fresh-root.sh bash -c 'make unit; echo $?'
#   FRESH_ROOT_KEEP=1 scripts/fresh-root.sh    # keep the root afterwards to look inside
#   FRESH_ROOT_REBUILD=1 scripts/fresh-root.sh # rebuild the cached base first
#
# The root starts as what a new contributor's bare Debian 12 has: python3, make,
# git and ca-certificates, nothing else. Only this machine's apt and pip
# configuration, local CA certificates, resolv.conf and hosts are copied in, so
# it reaches the same package registries. Only *committed* work is tested: HEAD
# is cloned into /root/project. The command runs there as root, with CI=true.
# The root shares this machine's network: stop your own stand-in services first
# if they listen on fixed ports.
#
# Needs root (it mounts file systems and chroots). Exit status: the command's.
# The last line of output always reads
#   fresh-root: '<command>' exited <rc> after <m> min <s> s on commit <hash>
set -euo pipefail

readonly CACHE_DIR=/var/tmp/sirocco-fresh-root
readonly SUITE=bookworm
# A bare machine of a new contributor; the project must install everything else.
readonly BASE_PACKAGES=python3,make,git,ca-certificates
readonly BASE_MAX_AGE_MIN=$((7 * 24 * 60))
readonly STD_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { printf 'fresh-root: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

if (( EUID != 0 )); then
    die "needs root: it builds a Debian root, mounts /proc, /sys and /dev into it and chroots (try: sudo $0 $*)"
fi

(( $# > 0 )) || set -- make test
cmd_text="$*"

# The repository is the one this script belongs to. Running as root (sudo) on a
# checkout owned by someone else would trip git's ownership check: trust this one path.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
git_repo() { git -c safe.directory="$repo" -C "$repo" "$@"; }
command -v git >/dev/null || die "git is needed to clone the repository"
[[ $(git_repo rev-parse --show-toplevel 2>/dev/null) == "$repo" ]] \
    || die "$repo is not the top of a git repository"
head=$(git_repo rev-parse --verify HEAD)
head_short=$(git_repo rev-parse --short HEAD)

# State read by the exit trap.
root=''            # the fresh root, once created
partial=''         # a base tarball being built
started=''         # PID of the command, once started
start=0            # $SECONDS when it started
cmd_seconds=''     # how long it ran

# ---------------------------------------------------------------------------
# clean-up: runs on every exit, including Ctrl-C and kill
# ---------------------------------------------------------------------------

# PIDs of processes whose root directory is the fresh root or below it.
# `-ef` compares device and inode, so it also sees processes that entered
# their own mount namespace inside the root (as libvirt's QEMU driver does).
pids_inside() {
    local p link
    for p in /proc/[0-9]*; do
        link=$(readlink "$p/root" 2>/dev/null) || continue
        if [[ $link == "$root" || $link == "$root"/* || $p/root -ef $root ]]; then
            printf '%s\n' "${p#/proc/}"
        fi
    done
}

stop_processes() {
    local sig pids tries
    for sig in TERM KILL KILL; do
        mapfile -t pids < <(pids_inside)
        (( ${#pids[@]} )) || return 0
        say "sending SIG$sig to ${#pids[@]} process(es) still running in the fresh root"
        kill -s "$sig" "${pids[@]}" 2>/dev/null || true
        # give them up to 10 s to go before the next, harder round
        for (( tries = 0; tries < 50; tries++ )); do
            [[ -z $(pids_inside) ]] && return 0
            sleep 0.2
        done
    done
    say "some processes in the fresh root would not die"
}

mounts_inside() {
    # /proc/self/mounts escapes blanks as octal (\040): decode before use.
    local m
    while read -r _ m _; do
        m=$(printf '%b' "$m")
        [[ $m == "$root" || $m == "$root"/* ]] && printf '%s\n' "$m"
    done </proc/self/mounts | LC_ALL=C sort -r   # reversed, children come before their parents
}

unmount_all() {
    local m round
    for (( round = 0; round < 5; round++ )); do
        mapfile -t mounts < <(mounts_inside)
        (( ${#mounts[@]} )) || return 0
        for m in "${mounts[@]}"; do
            umount -l "$m" 2>/dev/null || true
        done
    done
    [[ -z $(mounts_inside) ]]
}

on_exit() {
    local rc=$? what
    set +e
    trap - EXIT INT TERM HUP
    # time the command only, not the clean-up (it may have been interrupted)
    [[ -n $started && -z $cmd_seconds ]] && cmd_seconds=$((SECONDS - start))
    [[ -n $partial ]] && rm -f "$partial"
    if [[ -n $root && -d $root ]]; then
        stop_processes
        if ! unmount_all; then
            say "still mounted under $root, not removing it"
        elif [[ ${FRESH_ROOT_KEEP:-0} == 1 ]]; then
            say "kept $root (FRESH_ROOT_KEEP=1); remove it with: rm -rf --one-file-system $root"
        else
            # --one-file-system: never follow anything still mounted into the root
            rm -rf --one-file-system "$root"
        fi
    fi
    if [[ -n $started ]]; then
        what="exited $rc after $((cmd_seconds / 60)) min $((cmd_seconds % 60)) s"
    else
        what="did not run: set-up failed with status $rc"
    fi
    printf "fresh-root: '%s' %s on commit %s\n" "$cmd_text" "$what" "$head_short"
    exit "$rc"
}
trap on_exit EXIT
# Turn signals into an ordinary exit so that on_exit cleans up.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---------------------------------------------------------------------------
# the cached base: a minbase tarball, rebuilt when a week old
# ---------------------------------------------------------------------------

mkdir -p "$CACHE_DIR"
chmod 700 "$CACHE_DIR"   # the base and the roots hold copies of machine configuration
# The package list is part of the name, so changing it builds a new base.
base="$CACHE_DIR/$SUITE-minbase-$(printf '%s' "$BASE_PACKAGES" | sha256sum | cut -c1-10).tar"

base_is_stale() {
    [[ ${FRESH_ROOT_REBUILD:-0} == 1 || ! -s $base ]] && return 0
    [[ -n $(find "$base" -mmin +"$BASE_MAX_AGE_MIN") ]]
}

build_base() {
    command -v mmdebstrap >/dev/null || {
        say "installing mmdebstrap (apt-get)"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
    }
    # The mirror is whatever this machine's apt uses: pass its sources files
    # (deb822 and one-line) to mmdebstrap as they are.
    local f mirrors=()
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] && grep -qEv '^[[:space:]]*(#|$)' "$f" && mirrors+=("$f")
    done
    (( ${#mirrors[@]} )) || die "no apt sources found in /etc/apt on this machine"
    # Download options (proxy, date checks of a snapshot mirror) come from this
    # machine's apt too; index-target settings are left at apt's defaults.
    local acquire="$CACHE_DIR/acquire.conf.$$"
    ( umask 077; apt-config dump Acquire | grep -v '^Acquire::IndexTargets' >"$acquire" )
    partial="${base%.tar}.partial-$$.tar"
    say "building a minimal Debian 12 root ($BASE_PACKAGES) once; cached in $CACHE_DIR for 7 days"
    # The hooks run later, in mmdebstrap's shell, where $1 is the new root.
    # shellcheck disable=SC2016
    mmdebstrap --quiet --variant=minbase --format=tar --include="$BASE_PACKAGES" \
        --aptopt="$acquire" \
        --customize-hook='test "$(cut -d. -f1 "$1/etc/debian_version")" = 12' \
        --customize-hook='rm -f "$1"/etc/apt/apt.conf.d/99mmdebstrap "$1"/etc/apt/sources.list "$1"/etc/apt/sources.list.d/*' \
        "$SUITE" "$partial" "${mirrors[@]}" || { rm -f "$acquire"; die "mmdebstrap failed"; }
    # (the last hook keeps the cache free of machine configuration: each run copies it afresh)
    rm -f "$acquire"
    mv -f "$partial" "$base"
    partial=''
}

# One build at a time when several runs start together.
exec {lock_fd}>"$CACHE_DIR/base.lock"
flock "$lock_fd"
if base_is_stale; then build_base; else say "reusing the cached base $(basename "$base")"; fi
flock -u "$lock_fd"
exec {lock_fd}>&-

# ---------------------------------------------------------------------------
# the fresh root
# ---------------------------------------------------------------------------

SECONDS=0
root=$(mktemp -d "$CACHE_DIR/root.XXXXXX")
# mktemp's 0700 would stop daemons that drop root (postgres, libvirt-qemu) at /.
chmod 755 "$root"
# A mount point of its own, as / is on a real machine (libvirt's QEMU driver
# insists), and private, so nothing mounted inside leaks out to other namespaces.
mount --bind "$root" "$root"
mount --make-private "$root"
tar -C "$root" --numeric-owner -xpf "$base"

# Reach the same registries as this machine: copy its configuration, silently.
cp -a /etc/apt/. "$root/etc/apt/"
[[ -f /etc/pip.conf ]] && cp -a /etc/pip.conf "$root/etc/pip.conf"
[[ -d /etc/xdg/pip ]] && mkdir -p "$root/etc/xdg" && cp -a /etc/xdg/pip "$root/etc/xdg/"
user_pip="${XDG_CONFIG_HOME:-${HOME:-/root}/.config}/pip"
[[ -d $user_pip ]] && mkdir -p "$root/root/.config" && cp -a "$user_pip" "$root/root/.config/"
[[ -f ${HOME:-/root}/.pip/pip.conf ]] && mkdir -p "$root/root/.pip" && cp -a "${HOME:-/root}/.pip/pip.conf" "$root/root/.pip/"
cp --remove-destination -L /etc/resolv.conf "$root/etc/resolv.conf"
cp --remove-destination -L /etc/hosts "$root/etc/hosts"
# Site CA certificates (a TLS-inspecting proxy's, say) go where Debian looks for
# local ones; update-ca-certificates adds them once the root is mounted.
local_cas=0
if compgen -G '/usr/local/share/ca-certificates/*' >/dev/null; then
    cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
    local_cas=1
fi

# The caller's proxy, pip and certificate settings travel with the command.
pass_env=()
while IFS= read -r name; do
    lname=${name,,}
    if [[ $lname =~ ^(http|https|ftp|all|no)_proxy$ || $name == PIP_* \
          || $name =~ ^(SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|GIT_SSL_CAINFO|NODE_EXTRA_CA_CERTS)$ ]]; then
        pass_env+=("$name")
    fi
done < <(compgen -e)

# Files that pip settings or those variables point at (a certificate bundle, a constraints
# file) but that a fresh root lacks are copied in. Directories (a local index or wheel
# directory) are not: a new machine would not have them either, and pip then uses the
# registry itself. Caches are not brought in: the fresh root must download for itself.
referenced_paths() {
    local name conf
    for name in "${pass_env[@]}"; do
        [[ $name =~ ^PIP_(CACHE_DIR|LOG|SRC|TARGET|PREFIX|ROOT|BUILD)$ ]] && continue
        printf '%s\n' "${!name}"
    done
    for conf in "$root/etc/pip.conf" "$root"/etc/xdg/pip/*.conf "$root/root/.config/pip/pip.conf" "$root/root/.pip/pip.conf"; do
        [[ -f $conf ]] || continue
        # values of the input-path keys, including their continuation lines
        awk '/^[[:space:]]*[#;]/ { next }
             /^[^[:space:]]/ { key = $0; sub(/[[:space:]]*=.*/, "", key) }
             key ~ /^(index-url|extra-index-url|find-links|cert|client-cert|constraint|constraints|requirement|requirements)$/ {
                 line = $0; if (line ~ /^[^[:space:]]/) sub(/^[^=]*=/, "", line); print line }' "$conf"
    done
}
while IFS= read -r path; do
    [[ $path == /* && $path != //* && -f $path && ! -e $root$path ]] || continue
    mkdir -p "$(dirname "$root$path")"
    cp -aL "$path" "$root$path"
done < <(referenced_paths | sed 's#file://##g' | tr -s ' \t,:' '\n' | sort -u)

mount -t proc proc "$root/proc"
# rslave: mounts come in from the host, but unmounting ours never propagates back.
mount --rbind /sys "$root/sys"
mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"
mkdir -m 1777 "$root/run/lock"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"

if (( local_cas )); then
    chroot "$root" /usr/sbin/update-ca-certificates >/dev/null 2>&1 || say "update-ca-certificates failed in the fresh root"
fi

# Only commits are tested: clone HEAD, not the working tree.
if [[ -n $(git_repo status --porcelain) ]]; then
    say "warning: the working tree has uncommitted changes; they are NOT in the fresh root (only commit $head_short is)"
fi
git_repo clone --quiet --no-hardlinks "$repo" "$root/root/project"
if [[ $(git -C "$root/root/project" rev-parse HEAD) != "$head" ]]; then
    git -C "$root/root/project" checkout --quiet --detach "$head"
fi

say "root ready in ${SECONDS} s: $root"
say "running '$cmd_text' in /root/project on commit $head_short"

# ---------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------

env_args=(HOME=/root "PATH=$STD_PATH" LANG=C.UTF-8 CI=true)
[[ -n ${TERM:-} ]] && env_args+=("TERM=$TERM")
for name in "${pass_env[@]}"; do env_args+=("$name=${!name}"); done

# Started in the background so that a signal reaches our trap at once
# instead of after the command ends; stdin is handed over explicitly.
exec 3<&0
start=$SECONDS
chroot "$root" /usr/bin/env -i "${env_args[@]}" \
    /bin/sh -c 'cd /root/project && exec "$@"' fresh-root "$@" <&3 3<&- &
started=$!
exec 3<&-
rc=0
wait "$started" || rc=$?
cmd_seconds=$((SECONDS - start))
exit "$rc"
