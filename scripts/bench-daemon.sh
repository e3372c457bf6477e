#!/usr/bin/env bash
# Load and fault benchmark of the daemon, `airlock serve` (issue 9). Prints markdown tables for docs/benchmarks.md:
#   1. runs:  200 concurrent `POST /v1/runs` against `--max-runs 8`: all exit 0 with their own output; wall time,
#             runs/s, time per run, how many were queued, and the peak number of `airlock run` processes (from /proc)
#             which must never exceed 8;
#   2. api:   1,000 requests/s for 60 s, open loop, over keep-alive connections on the Unix socket (whoami, guard
#             scan, redact, and 4% invalid-token requests: 40/s, within the daemon's 50/s budget of audited
#             refusals); achieved rate, latency, errors, daemon RSS before / middle / after; then
#             `airlock audit verify`, and every 401 answered has its own record;
#   3. fault: kill -9 of the daemon under audited load with sandboxed runs alive (3 rounds): no run survives it, the log
#             verifies (a torn tail repaired is allowed and counted), every 401 answered before the kill is in the
#             log, the vault opens, `airlock ps` is empty, and a restarted daemon serves and runs.
#
#   scripts/bench-daemon.sh                         # everything, about 2 minutes
#   scripts/bench-daemon.sh --duration 5            # a quick check (under a minute)
#   AIRLOCK_BIN=target/release/airlock scripts/bench-daemon.sh --only api --rate 2000
#
# Arguments are passed to scripts/bench-daemon.py (--help lists them: --only runs,api,fault, --runs, --max-runs,
# --rate, --duration, --conns, --unauth-fraction, --fault-rounds, --fault-after, --fault-rate, --fault-runs,
# --fault-churn, --kdf-memory-mib).
#
# Environment:
#   AIRLOCK_BIN   use this airlock binary instead of building one (cargo build --release -p airlock)
#
# Needs Linux (it reads /proc), Python 3 (standard library only) and what `airlock run` needs for its sandbox.
# Everything it writes lives in one mktemp -d directory, removed on exit; every daemon it starts is stopped. The
# exit status is 0 when every check passed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

log() { printf 'bench-daemon: %s\n' "$*" >&2; }
die() {
    printf 'bench-daemon: error: %s\n' "$*" >&2
    exit 1
}

command -v python3 >/dev/null || die "python3 not found"
[[ -d /proc/self ]] || die "/proc is needed (Linux)"

if [[ -n "${AIRLOCK_BIN:-}" ]]; then
    AIRLOCK=$(realpath "$AIRLOCK_BIN")
else
    log "building airlock (release)"
    cargo build --release -q -p airlock --manifest-path "$ROOT/Cargo.toml"
    AIRLOCK=$ROOT/target/release/airlock
fi
[[ -x "$AIRLOCK" ]] || die "$AIRLOCK is not an executable"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/airlock-bench-daemon.XXXXXX")
cleanup() {
    # The driver stops its daemons; if it was interrupted, stop any it left, by pid, only if it still is one of
    # ours (its command line names a file in $WORK).
    if [[ -f "$WORK/pids" ]]; then
        while read -r pid; do
            if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$WORK/"; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done <"$WORK/pids"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# In the background, so that a signal to this script reaches the driver at once (it stops its daemons on SIGTERM).
python3 "$ROOT/scripts/bench-daemon.py" --airlock "$AIRLOCK" --work "$WORK" "$@" &
DRIVER=$!
trap 'kill -TERM "$DRIVER" 2>/dev/null || true' INT TERM
status=0
wait "$DRIVER" || status=$?
# A signal interrupts the first wait; the second collects the driver's own exit.
if kill -0 "$DRIVER" 2>/dev/null; then
    wait "$DRIVER" || status=$?
fi
exit "$status"
