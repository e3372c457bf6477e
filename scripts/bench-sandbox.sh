#!/usr/bin/env bash
# End-to-end benchmark of the sandbox (`airlock run`). Prints markdown tables for docs/benchmarks.md:
#   1. launch overhead: `airlock run -- true` vs plain `true` vs bubblewrap (`bwrap --ro-bind / / --dev /dev
#      --proc /proc --unshare-all true`), with `hyperfine -N`, side by side in one run;
#   2. download throughput out of the sandbox: `curl` inside `airlock run` vs the same `curl` through
#      `airlock proxy` without a sandbox (both through the broker, so the ratio is the sandbox's cost), one nginx
#      upstream on loopback;
#   3. `airlock kill --all` stopping 50 running sandboxed processes, and the kill records in the audit log.
#
#   scripts/bench-sandbox.sh                       # as root on a fresh Debian: apt-get installs the tools
#   SKIP_INSTALL=1 ONLY=launch RUNS=50 scripts/bench-sandbox.sh
#
# Environment:
#   ONLY          comma list: launch, throughput, kill (default all)
#   RUNS          hyperfine runs per command (default 200)
#   SIZE_MB       download size for the throughput test (default 512)
#   KILL_N        runs started for the kill test (default 50)
#   SKIP_INSTALL  1: never run apt-get
#   AIRLOCK_BIN   use this airlock binary instead of building one
#
# Everything it writes lives in one mktemp -d directory, removed on exit; every process it starts is stopped.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ONLY=${ONLY:-launch,throughput,kill}
RUNS=${RUNS:-200}
SIZE_MB=${SIZE_MB:-512}
KILL_N=${KILL_N:-50}
export PATH="$PATH:/usr/sbin:/sbin"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
    printf 'bench: error: %s\n' "$*" >&2
    exit 1
}
want() { [[ ",$ONLY," == *",$1,"* ]]; }

if [[ "${SKIP_INSTALL:-}" != 1 ]]; then
    need=()
    for p in hyperfine bubblewrap nginx curl; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
    done
    if ((${#need[@]})); then
        log "installing ${need[*]}"
        sudo_=""
        [[ $(id -u) -eq 0 ]] || sudo_=sudo
        $sudo_ apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
    fi
fi
for t in hyperfine bwrap nginx curl; do command -v "$t" >/dev/null || die "$t not found"; done

if [[ -n "${AIRLOCK_BIN:-}" ]]; then
    AIRLOCK=$(realpath "$AIRLOCK_BIN")
else
    log "building airlock (release)"
    cargo build --release -q -p airlock --manifest-path "$ROOT/Cargo.toml"
    AIRLOCK=$ROOT/target/release/airlock
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [[ -f "$WORK/nginx.pid" ]]; then kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true; fi
    AIRLOCK_HOME=$WORK/home "$AIRLOCK" kill --all --grace 100ms >/dev/null 2>&1 || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

export AIRLOCK_HOME=$WORK/home
mkdir -p "$WORK/ws" "$WORK/www"
"$AIRLOCK" init --kek "keyfile:$WORK/vault.key" >/dev/null
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NGINX_PORT=$(port)
cat >"$WORK/ws/airlock.toml" <<EOF
version = 1
[network]
allow_private = ["127.0.0.1"]
[agents.bench]
tools = ["t"]
[tools.t]
[tools.t.fs]
read = ["\${WORKSPACE}"]
write = ["\${WORKSPACE}"]
[tools.t.exec]
allow = ["true", "curl", "sleep"]
[[tools.t.network]]
hosts = ["127.0.0.1:$NGINX_PORT"]
EOF
CONFIG=$WORK/ws/airlock.toml
run() { (cd "$WORK/ws" && "$AIRLOCK" run --config "$CONFIG" --agent bench --tool t "$@"); }

emit() { printf '%s\n' "$@"; }
emit "## Sandbox (\`airlock run\`)" "" "Machine: $(nproc) cores, $(uname -r), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); running as uid $(id -u)." ""
"$AIRLOCK" run --config "$CONFIG" --agent bench --tool t --check >"$WORK/check.txt" 2>&1 || true
emit '```' "$(cat "$WORK/check.txt")" '```' ""

if want launch; then
    log "launch overhead (hyperfine -N, $RUNS runs each)"
    (cd "$WORK/ws" && hyperfine -N --warmup 10 --runs "$RUNS" --export-json "$WORK/launch.json" \
        -n true "true" \
        -n bwrap "bwrap --ro-bind / / --dev /dev --proc /proc --unshare-all true" \
        -n "airlock run" "$AIRLOCK run --config $CONFIG --agent bench --tool t -- true" >/dev/null)
    python3 - "$WORK/launch.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
base = r["true"]["median"]
print("| command | median | mean ± σ | overhead over `true` (median) |")
print("|---|---|---|---|")
for name in ["true", "bwrap", "airlock run"]:
    x = r[name]
    print(f"| `{name}` | {x['median']*1e3:.2f} ms | {x['mean']*1e3:.2f} ± {x['stddev']*1e3:.2f} ms | {(x['median']-base)*1e3:+.2f} ms |")
ratio = (r["airlock run"]["median"] - base) / max(r["bwrap"]["median"] - base, 1e-9)
print()
print(f"`airlock run` overhead is {ratio:.1f}x bubblewrap's. Target: under 8 ms median overhead.")
PY
    emit ""
    # Where the time goes, from the run record: the supervisor's own setup (policy, vault, audit log, broker, stage 1
    # in its cgroup) and the sandbox itself (spec handed over -> namespaces, root, Landlock, seccomp -> `true` ->
    # reaped).
    (cd "$WORK/ws" && for _ in $(seq 30); do "$AIRLOCK" --json run --config "$CONFIG" --agent bench --tool t -- true; done) >"$WORK/records.jsonl"
    python3 - "$WORK/records.jsonl" <<'PY'
import json, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
setup = statistics.median(r["setup_ms"] for r in recs)
sandbox = statistics.median(r["duration_ms"] for r in recs)
print(f"Breakdown over {len(recs)} runs of `airlock --json run -- true` (medians from the run records): supervisor "
      f"setup {setup:.0f} ms (policy, vault, shared audit log, broker, stage 1 joining its cgroup; done in parallel "
      f"where independent), sandbox {sandbox:.0f} ms (spec handed over, namespaces, new root, Landlock, seccomp, "
      f"`true`, reaped). The rest of the wall time is process start and the audit records of launch and exit.")
PY
    emit ""
fi

if want throughput; then
    log "throughput: ${SIZE_MB} MiB downloads through the broker, with and without the sandbox"
    head -c "$((SIZE_MB << 20))" /dev/zero >"$WORK/www/big.bin"
    # nginx's workers run as another user (www-data) when started as root.
    chmod 755 "$WORK" "$WORK/www"
    chmod 644 "$WORK/www/big.bin"
    cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 64; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $WORK/nginx-body;
    proxy_temp_path $WORK/nginx-proxy;
    fastcgi_temp_path $WORK/nginx-fastcgi;
    uwsgi_temp_path $WORK/nginx-uwsgi;
    scgi_temp_path $WORK/nginx-scgi;
    server { listen 127.0.0.1:$NGINX_PORT; root $WORK/www; }
}
EOF
    nginx -c "$WORK/nginx.conf"
    PROXY_PORT=$(port)
    "$AIRLOCK" proxy --config "$CONFIG" --agent bench --tool t --listen "127.0.0.1:$PROXY_PORT" >"$WORK/proxy.out" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PROXY_PORT/" && break || sleep 0.1; done
    url="http://127.0.0.1:$NGINX_PORT/big.bin"
    got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "$url")
    [[ $got == "200 $((SIZE_MB << 20))" ]] || die "nginx does not serve big.bin: $got"
    got=$(run -- curl -s -o /dev/null -w '%{http_code} %{size_download}' "$url")
    [[ $got == "200 $((SIZE_MB << 20))" ]] || die "the sandboxed curl does not get big.bin: $got"
    speeds() { # label, then the command printing one speed in bytes/s per run
        local label=$1
        shift
        local out=()
        for _ in 1 2 3 4 5; do out+=("$("$@")"); done
        printf '%s\n' "${out[@]}" | sort -n | awk -v l="$label" '{a[NR]=$1} END {print l, a[int((NR+1)/2)]}'
    }
    direct=$(speeds direct curl -s -o /dev/null -w '%{speed_download}' "$url")
    proxied=$(speeds proxy curl -s -o /dev/null -w '%{speed_download}' -x "http://127.0.0.1:$PROXY_PORT" "$url")
    sandboxed=$(speeds sandbox run -- curl -s -o /dev/null -w '%{speed_download}' "$url")
    python3 - "$direct" "$proxied" "$sandboxed" "$SIZE_MB" <<'PY'
import sys
d, p, s = (float(a.split()[1]) for a in sys.argv[1:4])
mb = 1 << 20
print(f"{sys.argv[4]} MiB downloads from nginx on loopback with `curl`, median of 5:")
print()
print("| path | throughput | vs `airlock proxy` |")
print("|---|---|---|")
print(f"| curl → nginx (no proxy) | {d/mb:.0f} MiB/s | |")
print(f"| curl → `airlock proxy` → nginx | {p/mb:.0f} MiB/s | 100% |")
print(f"| `airlock run -- curl` → sandbox loopback listener → per-run broker → nginx | {s/mb:.0f} MiB/s | {100*s/p:.0f}% |")
print()
print("Target: the sandboxed download at least 85% of the unsandboxed one.")
PY
    emit ""
fi

if want kill; then
    log "kill: $KILL_N sandboxed sleeps, then airlock kill --all"
    for _ in $(seq "$KILL_N"); do
        run -- sleep 600 >/dev/null 2>>"$WORK/kill-runs.err" &
        PIDS+=($!)
    done
    for _ in $(seq 600); do
        n=$("$AIRLOCK" --json ps | python3 -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin)["runs"] if r.get("sandbox_pid")))')
        [[ $n -ge $KILL_N ]] && break
        sleep 0.1
    done
    [[ $n -ge $KILL_N ]] || die "only $n of $KILL_N runs started: $(head -5 "$WORK/kill-runs.err")"
    before=$(grep -c 'killed by `airlock kill`' <("$AIRLOCK" audit tail -n 100000 2>/dev/null) || true)
    t0=$(date +%s%N)
    "$AIRLOCK" kill --all --grace 1s >"$WORK/kill.out"
    t1=$(date +%s%N)
    wait "${PIDS[@]: -$KILL_N}" 2>/dev/null || true
    left=$(pgrep -f 'sleep 600' | wc -l || true)
    after=$(grep -c 'killed by `airlock kill`' <("$AIRLOCK" audit tail -n 100000 2>/dev/null) || true)
    emit "| runs | \`airlock kill --all\` wall time | stopped | still running after | kill records in the audit log |"
    emit "|---|---|---|---|---|"
    emit "| $KILL_N | $(((t1 - t0) / 1000000)) ms | $(grep -c -E 'terminated|killed' "$WORK/kill.out") | $left | $((after - before)) |"
    emit "" "Target: under 1 s, audited."
fi
