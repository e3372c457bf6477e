#!/usr/bin/env bash
# End-to-end benchmark of the egress broker (`airlock proxy`) against tinyproxy and squid, all in front of one
# nginx upstream on loopback. Prints markdown tables (and the environment) for docs/benchmarks.md.
#
#   scripts/bench-broker.sh                                  # as root on a fresh Debian: apt-get installs the tools
#   SKIP_INSTALL=1 DURATION=2s ONLY=http1k,latency scripts/bench-broker.sh
#
# Environment:
#   DURATION      wrk duration per throughput run (default 10s)
#   SKIP_INSTALL  1: never run apt-get (tools must be on PATH already)
#   ONLY          comma list of measurements: http1k, http1m, latency, tunnel, memory, https (or 1..6); default all
#   MITM_VENV     where mitmproxy (pinned, from PyPI) is installed for the https comparison
#                 (default target/airlock-bench-mitm)
#   CONNS         idle connections for the memory measurement (default 10000)
#   IDLE_HOLD     seconds those connections stay idle before the second reading (default 5)
#   AIRLOCK_BIN   use this airlock binary instead of building one (e.g. a CI artifact)
#   FLOOR         1 (default): also measure `bare_forward` (crates/airlock-broker/examples) in the plain HTTP tables:
#                 the same hyper server, upstream pool and runtime with no pipeline at all, the floor under airlock
#   BARE_BIN      use this bare_forward binary instead of building one
#   TUNNEL_LOAD_BIN  use this tunnel_load binary (the HTTPS load client) instead of building one
#
# Every process it starts is stopped on exit; everything it writes lives in one mktemp -d directory, removed on
# exit. It listens on 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10s}
ONLY=${ONLY:-http1k,http1m,latency,tunnel,memory,https}
CONNS=${CONNS:-10000}
IDLE_HOLD=${IDLE_HOLD:-5}
THREADS=2
CONNECTIONS=32
# Debian keeps nginx and squid in sbin, which a normal user's PATH often lacks.
export PATH="$PATH:/usr/sbin:/sbin"
# A proxy from the caller's environment would sit between curl and everything measured here.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
    printf 'bench: error: %s\n' "$*" >&2
    exit 1
}

# ONLY accepts names or the numbers of the brief's list; normalise to names.
selected=","
IFS=, read -ra only_items <<<"$ONLY"
for item in "${only_items[@]}"; do
    case "$item" in
    1 | http1k) selected+="http1k," ;;
    2 | http1m) selected+="http1m," ;;
    3 | latency) selected+="latency," ;;
    4 | tunnel) selected+="tunnel," ;;
    5 | memory) selected+="memory," ;;
    6 | https) selected+="https," ;;
    "") ;;
    *) die "ONLY: unknown measurement '$item' (http1k, http1m, latency, tunnel, memory, https)" ;;
    esac
done
want() { [[ $selected == *",$1,"* ]]; }

# wrk wants a duration like 10s; `timeout` around it needs seconds, so accept only what both understand.
case "$DURATION" in
*[0-9]s) dur_s=${DURATION%s} ;;
*[0-9]m) dur_s=$((${DURATION%m} * 60)) ;;
*[0-9]) dur_s=$DURATION DURATION="${DURATION}s" ;;
*) die "DURATION: expected e.g. 10s, 2m or 30, got '$DURATION'" ;;
esac
[[ $dur_s =~ ^[0-9]+$ ]] || die "DURATION: expected a whole number of seconds or minutes, got '$DURATION'"
[[ $CONNS =~ ^[1-9][0-9]*$ ]] || die "CONNS: expected a positive number, got '$CONNS'"
[[ $IDLE_HOLD =~ ^[0-9]+$ ]] || die "IDLE_HOLD: expected whole seconds, got '$IDLE_HOLD'"

# ---------------------------------------------------------------------------------------------------------------
# Tools

need_cmds=(nginx wrk tinyproxy squid curl openssl python3)
install_tools() {
    local missing=() c
    for c in "${need_cmds[@]}"; do command -v "$c" >/dev/null || missing+=("$c"); done
    ((${#missing[@]} == 0)) && return 0
    if [[ ${SKIP_INSTALL:-0} == 1 || $EUID -ne 0 ]]; then
        die "missing: ${missing[*]}; install them (apt-get install nginx wrk tinyproxy squid curl openssl python3), or run as root to have this script do it"
    fi
    log "installing nginx wrk tinyproxy squid curl openssl python3 (apt-get)"
    # Debian's postinst scripts would start nginx, squid and tinyproxy as services on public ports; policy-rc.d
    # answering 101 stops that. Only a file we created is removed again.
    local made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    local rc=0
    {
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends \
                nginx wrk tinyproxy squid curl openssl python3 ca-certificates
    } >&2 || rc=$?
    ((made_policy)) && rm -f /usr/sbin/policy-rc.d
    ((rc == 0)) || die "apt-get failed ($rc)"
    for c in "${need_cmds[@]}"; do command -v "$c" >/dev/null || die "$c is still missing after apt-get"; done
}
install_tools
[[ -n ${AIRLOCK_BIN:-} ]] || command -v cargo >/dev/null || die "cargo is needed to build airlock (or set AIRLOCK_BIN)"

# ---------------------------------------------------------------------------------------------------------------
# Processes and cleanup

WORK=$(mktemp -d "${TMPDIR:-/tmp}/airlock-bench.XXXXXX")
PIDS=()
cleanup() {
    local pid i
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    # Give them 10 s to exit cleanly (airlock signs its audit log on SIGTERM), then force.
    for pid in "${PIDS[@]}"; do
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME LOGFILE CMD...: runs CMD in the background and remembers its pid in LAST_PID.
start() {
    local name=$1 logfile=$2
    shift 2
    "$@" >"$logfile" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    log "started $name (pid $LAST_PID)"
}

stop() {
    local pid=$1 i keep=()
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for i in "${PIDS[@]}"; do [[ $i == "$pid" ]] || keep+=("$i"); done
    PIDS=("${keep[@]}")
}

# wait_port NAME PORT PID LOGFILE: until something accepts on 127.0.0.1:PORT, at most 60 s.
wait_port() {
    local name=$1 port=$2 pid=$3 logfile=$4 deadline=$((SECONDS + 60))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            sed 's/^/    /' "$logfile" >&2 || true
            die "$name exited before listening on 127.0.0.1:$port (log above)"
        fi
        if ((SECONDS >= deadline)); then
            sed 's/^/    /' "$logfile" >&2 || true
            die "$name did not listen on 127.0.0.1:$port within 60 s (log above)"
        fi
        sleep 0.1
    done
}

# Open files: 10,000 idle client connections need as many descriptors in the proxy and in the client. Children
# inherit this shell's limit. Raise to 65536 if allowed, else to the hard limit.
need_fds=$((CONNS + 1024))
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
have_fds=$(ulimit -n)
if want memory && [[ $have_fds != unlimited ]] && ((have_fds < need_fds)); then
    die "the open-files limit is $have_fds (hard limit $(ulimit -Hn)) but $CONNS idle connections need $need_fds: raise the hard limit (run as root, or limits.conf), or set CONNS lower"
fi

# A free loopback port (for processes started after the first batch below).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Every port at once, with all sockets held until all are chosen, so no two are the same.
read -r NGINX_PORT TLS_PORT AIRLOCK_PORT TINY_PORT SQUID_PORT < <(python3 -c '
import socket
s = [socket.socket() for _ in range(5)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')

# As root, nginx workers and squid drop privileges: they must be able to reach their files under WORK, and
# nothing else needs to be listable there.
if ((EUID == 0)); then chmod 711 "$WORK"; fi

# ---------------------------------------------------------------------------------------------------------------
# Build

# Where cargo puts builds: CARGO_TARGET_DIR or .cargo/config.toml may move the target directory.
target_dir() {
    (cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
}
# example_bin NAME: builds crates/airlock-broker/examples/NAME.rs (release) and prints the binary's path.
example_bin() {
    log "building $1 (cargo build --release -p airlock-broker --example $1)"
    (cd "$ROOT" && cargo build --release -p airlock-broker --example "$1" >&2)
    echo "$(target_dir)/release/examples/$1"
}

if [[ -n ${AIRLOCK_BIN:-} ]]; then
    AIRLOCK=$AIRLOCK_BIN
    [[ -x $AIRLOCK ]] || die "AIRLOCK_BIN: $AIRLOCK is not an executable"
else
    log "building airlock (cargo build --release -p airlock)"
    (cd "$ROOT" && cargo build --release -p airlock >&2)
    AIRLOCK="$(target_dir)/release/airlock"
    [[ -x $AIRLOCK ]] || die "no binary at $AIRLOCK after the build"
fi
AIRLOCK_DESC="$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo "unknown commit"), release build"
[[ -n ${AIRLOCK_BIN:-} ]] && AIRLOCK_DESC="$("$AIRLOCK" --version 2>/dev/null | head -n 1) from AIRLOCK_BIN"

# ---------------------------------------------------------------------------------------------------------------
# Upstream: nginx, one worker, plain HTTP and HTTPS

mkdir -p "$WORK/www" "$WORK/nginx/tmp" "$WORK/tls"
chmod 755 "$WORK/www"
head -c 1024 /dev/urandom >"$WORK/www/1k.bin"
head -c 1048576 /dev/urandom >"$WORK/www/1m.bin"
# Contents do not matter to TLS or to any proxy here; a sparse file costs no disk.
truncate -s 100M "$WORK/www/100m.bin"
chmod 644 "$WORK/www/"*.bin

# The certificate names the address (clients send no SNI for an IP) and a name, for when airlock must be asked by
# name: airlock pins the name to 127.0.0.1 itself (--resolve), tinyproxy and squid are always asked by address.
UP_NAME=bench.example.com
# A CA and a leaf it signs (rustls, like browsers, refuses a self-signed CA certificate as a server's own).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=airlock-bench-ca \
    -keyout "$WORK/tls/ca.key" -out "$WORK/tls/ca.pem" 2>/dev/null || die "openssl could not make a CA"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=airlock-bench \
    -keyout "$WORK/tls/key.pem" -out "$WORK/tls/leaf.csr" 2>/dev/null || die "openssl could not make a key"
printf 'subjectAltName=IP:127.0.0.1,DNS:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$UP_NAME" \
    >"$WORK/tls/leaf.ext"
openssl x509 -req -in "$WORK/tls/leaf.csr" -CA "$WORK/tls/ca.pem" -CAkey "$WORK/tls/ca.key" -CAcreateserial \
    -days 2 -extfile "$WORK/tls/leaf.ext" -out "$WORK/tls/cert.pem" 2>/dev/null || die "openssl could not sign"
CERT="$WORK/tls/ca.pem"

# The credential section 6 injects; nginx serves /auth/ only to requests that carry it, so a proxy that failed to
# swap the surrogate for it gets 401s, which the load client counts as errors.
REAL_TOKEN="bench_live_$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 30000; }
http {
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 600s;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/www;
    }
    server {
        listen 127.0.0.1:$TLS_PORT ssl;
        ssl_certificate $WORK/tls/cert.pem;
        ssl_certificate_key $WORK/tls/key.pem;
        root $WORK/www;
        location /auth/ {
            if (\$http_authorization != "Bearer $REAL_TOKEN") { return 401; }
            alias $WORK/www/;
        }
    }
}
EOF
# -e: nginx opens its compiled-in error log before reading the config; a normal user cannot write that one.
start nginx "$WORK/nginx/stdout.log" nginx -e "$WORK/nginx/error.log" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;'
NGINX_PID=$LAST_PID
wait_port nginx "$NGINX_PORT" "$NGINX_PID" "$WORK/nginx/error.log"
wait_port nginx-tls "$TLS_PORT" "$NGINX_PID" "$WORK/nginx/error.log"

# ---------------------------------------------------------------------------------------------------------------
# airlock proxy, on a throwaway vault, with the audit log at its defaults

export AIRLOCK_HOME="$WORK/airlock-home"
mkdir -m 700 "$AIRLOCK_HOME"
AIRLOCK_PASSPHRASE=$(head -c 24 /dev/urandom | base64)
export AIRLOCK_PASSPHRASE
# The tests' fast KDF: unlocking is not what is measured.
"$AIRLOCK" init --kek passphrase --insecure-kdf --kdf-memory-mib 8 >"$WORK/airlock-init.log" 2>&1 ||
    { cat "$WORK/airlock-init.log" >&2; die "airlock init failed"; }
# Builds that can open (intercept) CONNECT tunnels do so by default; the tunnel measurement is of a plain tunnel,
# which is also what tinyproxy and squid do. Older builds reject the key, so it is only written when known.
tls_line="" TUNNEL_NOTE="this build does not intercept tunnels"
if "$AIRLOCK" policy schema 2>/dev/null | grep -q '"tls_inspect"'; then
    tls_line='tls_inspect = "off"' TUNNEL_NOTE='tls_inspect = "off": tunnels are decided, SSRF- and SNI-checked, not opened'
fi
# [audit] is left out on purpose: the defaults (record_allows = true, fail_closed = true) are what is measured.
cat >"$WORK/airlock.toml" <<EOF
version = 1
default_profile = "dev"

[network]
allow_private = ["127.0.0.1"]
$tls_line

[agents.bench]
tools = ["fetch"]

[tools.fetch]
[[tools.fetch.network]]
hosts = ["127.0.0.1:*", "$UP_NAME:*"]
EOF
AUDIT_NOTE="audit log at its defaults (record_allows = true, fail_closed = true): every allowed request is recorded"

start_airlock() {
    start airlock "$WORK/airlock.log" "$AIRLOCK" proxy --listen "127.0.0.1:$AIRLOCK_PORT" --agent bench --tool fetch \
        --config "$WORK/airlock.toml" --resolve "$UP_NAME=127.0.0.1" --max-connections "$((CONNS + 64))"
    AIRLOCK_PID=$LAST_PID
    wait_port airlock "$AIRLOCK_PORT" "$AIRLOCK_PID" "$WORK/airlock.log"
}
start_airlock

# ---------------------------------------------------------------------------------------------------------------
# tinyproxy and squid

mkdir -p "$WORK/tinyproxy" "$WORK/squid"
tiny_user=""
if ((EUID == 0)); then
    # Both drop privileges as root and then write their logs and pid files.
    chown nobody "$WORK/tinyproxy"
    tiny_user=$'User nobody\nGroup nogroup'
fi
# tinyproxy has no switch for its access log; LogLevel Critical keeps per-request lines out of it.
cat >"$WORK/tinyproxy/tinyproxy.conf" <<EOF
Port $TINY_PORT
Listen 127.0.0.1
Timeout 600
MaxClients 4096
LogLevel Critical
LogFile "$WORK/tinyproxy/tinyproxy.log"
PidFile "$WORK/tinyproxy/tinyproxy.pid"
Allow 127.0.0.1
DisableViaHeader Yes
$tiny_user
EOF
start tinyproxy "$WORK/tinyproxy/stdout.log" tinyproxy -d -c "$WORK/tinyproxy/tinyproxy.conf"
TINY_PID=$LAST_PID
wait_port tinyproxy "$TINY_PORT" "$TINY_PID" "$WORK/tinyproxy/stdout.log"

squid_user=""
if ((EUID == 0)); then
    # squid refuses to serve as root; Debian's package runs it as proxy.
    squid_run_as=proxy
    id "$squid_run_as" >/dev/null 2>&1 || squid_run_as=nobody
    chown "$squid_run_as" "$WORK/squid"
    squid_user="cache_effective_user $squid_run_as"
fi
# No cache_dir at all (no disk cache) and `cache deny all` (no memory cache either): a pure forwarding proxy.
cat >"$WORK/squid/squid.conf" <<EOF
http_port 127.0.0.1:$SQUID_PORT
http_access allow localhost
http_access deny all
cache deny all
cache_mem 0 MB
access_log none
cache_store_log none
cache_log $WORK/squid/cache.log
pid_filename $WORK/squid/squid.pid
coredump_dir $WORK/squid
netdb_filename none
pinger_enable off
logfile_rotate 0
shutdown_lifetime 1 seconds
max_filedescriptors ${have_fds/unlimited/65536}
$squid_user
EOF
start squid "$WORK/squid/stdout.log" squid -N -f "$WORK/squid/squid.conf"
SQUID_PID=$LAST_PID
wait_port squid "$SQUID_PORT" "$SQUID_PID" "$WORK/squid/stdout.log"

# ---------------------------------------------------------------------------------------------------------------
# Check every path once before measuring: a proxy that answers 403 or a short body would make fast nonsense.

# check NAME PROXY_OR_EMPTY URL SIZE [curl args]: fails loudly unless the answer is 200 with SIZE bytes.
check() {
    local name=$1 proxy=$2 url=$3 size=$4 out
    shift 4
    local via=(--noproxy '*')
    [[ -n $proxy ]] && via=(-x "$proxy")
    out=$(curl -sS --max-time 120 "${via[@]}" "$@" -o "$WORK/check.body" -w '%{http_code} %{size_download}' "$url" 2>&1) || true
    if [[ $out != "200 $size" ]]; then
        log "$name: GET $url answered '$out', expected '200 $size'; the body begins:"
        head -c 600 "$WORK/check.body" >&2 2>/dev/null || true
        echo >&2
        return 1
    fi
}

PROXIES=(airlock tinyproxy squid)
# The plain HTTP tables also show the floor, when it is measured.
HTTP_TARGETS=("${PROXIES[@]}")
if [[ ${FLOOR:-1} == 1 ]] && { want http1k || want http1m || want latency; }; then
    BARE=${BARE_BIN:-$(example_bin bare_forward)}
    BARE_PORT=$(free_port)
    start bare_forward "$WORK/bare.log" "$BARE" "127.0.0.1:$BARE_PORT"
    wait_port bare_forward "$BARE_PORT" "$LAST_PID" "$WORK/bare.log"
    HTTP_TARGETS+=(bare_forward)
fi
declare -A PROXY_URL=(
    [airlock]="http://127.0.0.1:$AIRLOCK_PORT"
    [tinyproxy]="http://127.0.0.1:$TINY_PORT"
    [squid]="http://127.0.0.1:$SQUID_PORT"
    [bare_forward]="http://127.0.0.1:${BARE_PORT:-0}"
)
# The upstream host each proxy is asked for (airlock may be switched to UP_NAME below).
declare -A UP_HOST=([direct]=127.0.0.1 [airlock]=127.0.0.1 [tinyproxy]=127.0.0.1 [squid]=127.0.0.1 [bare_forward]=127.0.0.1)
declare -A PROXY_LOG=(
    [airlock]="$WORK/airlock.log"
    [tinyproxy]="$WORK/tinyproxy/tinyproxy.log"
    [squid]="$WORK/squid/cache.log"
    [bare_forward]="$WORK/bare.log"
)
fail_with_log() {
    log "$1 log:"
    tail -n 20 "${PROXY_LOG[$1]}" | sed 's/^/    /' >&2 || true
    die "$2"
}
# airlock's policy layer may refuse a literal private address even when [network] allow_private lists it (the
# SSRF layer would pass it); then ask it by a name it resolves to the same address, as real clients do.
HOST_NOTE="every proxy is asked for http://127.0.0.1:PORT/"
if ! check airlock "${PROXY_URL[airlock]}" "http://127.0.0.1:$NGINX_PORT/1k.bin" 1024 2>"$WORK/check.err"; then
    cat "$WORK/check.err" >&2
    grep -q '"kind":"policy"' "$WORK/check.body" 2>/dev/null || fail_with_log airlock "airlock refused a proxied GET"
    log "airlock refused http://127.0.0.1:PORT/ by policy; asking it for http://$UP_NAME:PORT/ (pinned to 127.0.0.1)"
    UP_HOST[airlock]=$UP_NAME
    HOST_NOTE="airlock is asked for http://$UP_NAME:PORT/ (--resolve $UP_NAME=127.0.0.1), because its policy refused http://127.0.0.1:PORT/ (\"$(sed -n 's/.*"reason":"\([^"]*\)".*/\1/p' "$WORK/check.body")\"); tinyproxy and squid for http://127.0.0.1:PORT/"
fi
for size in 1k:1024 1m:1048576; do
    file=${size%%:*}.bin bytes=${size#*:}
    check direct "" "http://127.0.0.1:$NGINX_PORT/$file" "$bytes" || die "nginx does not serve $file"
    for p in "${HTTP_TARGETS[@]}"; do
        url="http://${UP_HOST[$p]}:$NGINX_PORT/$file"
        check "$p" "${PROXY_URL[$p]}" "$url" "$bytes" || fail_with_log "$p" "$p does not forward $url"
    done
done

# ---------------------------------------------------------------------------------------------------------------
# Measurement helpers

# wrk through a forward proxy: wrk has no proxy support, but a request whose target is an absolute URL, sent to
# the proxy's own address, is exactly what a proxy client sends.
abs_lua() { # HOST FILE -> path of a wrk script
    local f="$WORK/abs-$1-${2%.bin}.lua"
    cat >"$f" <<EOF
wrk.path = "http://$1:$NGINX_PORT/$2"
wrk.headers["Host"] = "$1:$NGINX_PORT"
EOF
    echo "$f"
}

# run_wrk TARGET FILE OUT WRK_ARGS...: TARGET is direct or a proxy name; wrk's report goes to OUT.
run_wrk() {
    local target=$1 file=$2 out=$3
    shift 3
    local where=(http://127.0.0.1:"$NGINX_PORT/$file")
    [[ $target != direct ]] && where=(-s "$(abs_lua "${UP_HOST[$target]}" "$file")" "${PROXY_URL[$target]}/")
    # The bound: the longest duration used here (DURATION or 5 s) plus time to connect and to report.
    timeout $((dur_s + 65)) wrk "$@" "${where[@]}" >"$out" 2>&1 || {
        cat "$out" >&2
        die "wrk against $target failed"
    }
}

# Fields of a wrk report: requests/s, the p50 latency in µs (with --latency), and errors as one short string.
wrk_rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
wrk_p50_us() {
    awk '$1 == "50%" {
        v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
        f = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1000000 : (u == "m") ? 60000000 : -1
        printf "%.0f\n", v * f }' "$1"
}
wrk_errors() {
    awk '/Non-2xx or 3xx responses:/ {n = $NF}
         /Socket errors:/ {s = $0; sub(/^ *Socket errors: /, "", s)}
         END { out = ""
               if (n) out = n " non-2xx"
               if (s != "" && s != "connect 0, read 0, write 0, timeout 0") out = out (out ? "; " : "") s
               print (out ? out : "none") }' "$1"
}
# tinyproxy closes the client connection after every response; wrk then counts a read error and reconnects.
closes_note() { # WRK_REPORT_OF_TINYPROXY
    if grep -q 'Socket errors:.*read [1-9]' "$1"; then
        emit "" "tinyproxy closes the client connection after every response, so each of its requests includes a new TCP connection, and wrk counts each close as a read error."
    fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
fmt0() { awk -v a="$1" 'BEGIN { printf "%.0f", a }'; }

TABLES="$WORK/tables.md"
: >"$TABLES"
emit() { printf '%s\n' "$@" >>"$TABLES"; }

# ---------------------------------------------------------------------------------------------------------------
# 1 and 2: keep-alive throughput

throughput() { # FILE BYTES TITLE
    local file=$1 bytes=$2 title=$3 t out direct_rps rps
    emit "### $title" "" "\`wrk -t$THREADS -c$CONNECTIONS -d$DURATION\`, keep-alive, GET /$file; MB/s is payload, 10^6 bytes." ""
    emit "| target | requests/s | MB/s | vs direct | errors |" "|---|---|---|---|---|"
    for t in direct "${HTTP_TARGETS[@]}"; do
        log "$title: $t"
        out="$WORK/wrk-$file-$t.txt"
        run_wrk "$t" "$file" "$out" -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION"
        rps=$(wrk_rps "$out")
        [[ $t == direct ]] && direct_rps=$rps
        emit "| $t | $(fmt0 "$rps") | $(awk -v r="$rps" -v b="$bytes" 'BEGIN { printf "%.1f", r * b / 1e6 }') | $(ratio "$rps" "$direct_rps") | $(wrk_errors "$out") |"
    done
    closes_note "$WORK/wrk-$file-tinyproxy.txt"
    emit ""
}
want http1k && throughput 1k.bin 1024 "1. Plain HTTP keep-alive, 1 KiB"
want http1m && throughput 1m.bin 1048576 "2. Plain HTTP keep-alive, 1 MiB"

# ---------------------------------------------------------------------------------------------------------------
# 3: added latency on one reused connection

if want latency; then
    emit "### 3. Added p50 latency, one reused connection, 1 KiB" "" "\`wrk -t1 -c1 -d5s --latency\`, GET /1k.bin." ""
    emit "| target | p50 µs | added p50 µs | errors |" "|---|---|---|---|"
    for t in direct "${HTTP_TARGETS[@]}"; do
        log "latency: $t"
        out="$WORK/wrk-lat-$t.txt"
        run_wrk "$t" 1k.bin "$out" -t1 -c1 -d5s --latency
        p50=$(wrk_p50_us "$out")
        [[ $t == direct ]] && direct_p50=$p50
        emit "| $t | $p50 | $(awk -v a="$p50" -v b="$direct_p50" 'BEGIN { printf "%+d", a - b }') | $(wrk_errors "$out") |"
    done
    closes_note "$WORK/wrk-lat-tinyproxy.txt"
    emit ""
fi

# ---------------------------------------------------------------------------------------------------------------
# 4: CONNECT tunnel throughput

# best_speed PROXY_OR_EMPTY URL [curl args]: best of 3 downloads of 100 MiB. Prints "ok MB/s", or "error WHAT"
# at the first failed run.
best_speed() {
    local proxy=$1 url=$2 best=0 i out code size speed
    shift 2
    local via=(--noproxy '*')
    [[ -n $proxy ]] && via=(-x "$proxy")
    for i in 1 2 3; do
        out=$(curl -sS --max-time 300 "${via[@]}" --cacert "$CERT" "$@" -o /dev/null \
            -w '%{http_code} %{size_download} %{speed_download}' "$url" 2>&1) || true
        read -r code size speed <<<"$out" || true
        if [[ $code != 200 || $size != 104857600 ]]; then
            echo "error run $i: $(tr '\n' ' ' <<<"$out")"
            return 0
        fi
        best=$(awk -v a="$best" -v b="$speed" 'BEGIN { print (b > a) ? b : a }')
    done
    awk -v b="$best" 'BEGIN { printf "ok %.1f\n", b / 1e6 }'
}

if want tunnel; then
    emit "### 4. CONNECT tunnel, 100 MiB over HTTPS" "" \
        "\`curl --cacert CERT [-x PROXY] https://127.0.0.1:PORT/100m.bin\` (curl tunnels https through CONNECT); best of 3; MB/s is 10^6 bytes." ""
    emit "| target | MB/s | vs direct | note |" "|---|---|---|---|"
    log "tunnel: direct"
    read -r status direct_speed <<<"$(best_speed "" "https://127.0.0.1:$TLS_PORT/100m.bin")"
    [[ $status == ok ]] || die "direct HTTPS download failed: $direct_speed"
    emit "| direct | $direct_speed | 1.00 | |"
    for t in "${PROXIES[@]}"; do
        log "tunnel: $t"
        host=${UP_HOST[$t]} note=""
        [[ $host == "$UP_NAME" ]] && note="by name $UP_NAME"
        [[ $t == airlock ]] && note+="${note:+; }$TUNNEL_NOTE"
        read -r status speed <<<"$(best_speed "${PROXY_URL[$t]}" "https://$host:$TLS_PORT/100m.bin")"
        if [[ $status != ok && $host != "$UP_NAME" ]]; then
            # A tunnel to an address carries no SNI; if a proxy refuses that, try a name it resolves itself (airlock
            # pins it with --resolve) so that the ClientHello names the CONNECT host.
            log "$t: the tunnel to 127.0.0.1 failed ($speed); trying $UP_NAME"
            tail -n 5 "${PROXY_LOG[$t]}" | sed 's/^/    /' >&2 || true
            note="CONNECT 127.0.0.1 failed ($speed); by name $UP_NAME${note:+; $note}"
            read -r status speed <<<"$(best_speed "${PROXY_URL[$t]}" "https://$UP_NAME:$TLS_PORT/100m.bin")"
        fi
        [[ $status == ok ]] || fail_with_log "$t" "$t: the tunnel to $host failed: $speed"
        emit "| $t | $speed | $(ratio "$speed" "$direct_speed") | $note |"
    done
    emit ""
fi

# ---------------------------------------------------------------------------------------------------------------
# 5: airlock's memory at CONNS idle keep-alive connections

if want memory; then
    # A fresh proxy, so the baseline is not whatever the load above left in its allocator.
    log "memory: restarting airlock"
    stop "$AIRLOCK_PID"
    start_airlock
    check airlock "${PROXY_URL[airlock]}" "http://${UP_HOST[airlock]}:$NGINX_PORT/1k.bin" 1024 ||
        fail_with_log airlock "airlock does not forward after a restart"
    sleep 1
    rss_before=$(awk '/^VmRSS:/ {print $2}' "/proc/$AIRLOCK_PID/status")
    log "memory: opening $CONNS connections"
    mem_out="$WORK/idle.txt"
    # Each connection sends one complete proxied request, reads the whole answer, then stays open and idle.
    timeout $((IDLE_HOLD + 600)) python3 - "$AIRLOCK_PORT" "${UP_HOST[airlock]}" "$NGINX_PORT" "$CONNS" "$AIRLOCK_PID" "$IDLE_HOLD" >"$mem_out" <<'PY' ||
import asyncio, collections, re, sys

proxy_port, up_host = int(sys.argv[1]), sys.argv[2]
up_port, n, pid, hold = (int(a) for a in sys.argv[3:7])
REQ = (f"GET http://{up_host}:{up_port}/1k.bin HTTP/1.1\r\n"
       f"Host: {up_host}:{up_port}\r\n\r\n").encode()
outcomes = collections.Counter()

def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        return int(next(l.split()[1] for l in f if l.startswith("VmRSS:")))

async def one(gate):
    async with gate:  # a few hundred handshakes at a time, well inside the listen backlog
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", proxy_port), 10)
        except Exception as e:
            outcomes[f"connect: {type(e).__name__}"] += 1
            return None
        try:
            w.write(REQ)
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 30)
            status = head.split(b" ", 2)[1].decode()
            m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            body = await asyncio.wait_for(r.readexactly(int(m.group(1)) if m else 0), 30)
            if status != "200" or len(body) != 1024:
                outcomes[f"answer {status}, {len(body)} bytes"] += 1
                w.close()
                return None
            outcomes["ok"] += 1
            return r, w
        except asyncio.IncompleteReadError:
            outcomes["closed without an answer"] += 1
        except Exception as e:
            outcomes[type(e).__name__] += 1
        w.close()
        return None

async def main():
    gate = asyncio.Semaphore(200)
    conns = [c for c in await asyncio.gather(*(one(gate) for _ in range(n))) if c]
    at_open = rss_kib()
    await asyncio.sleep(hold)
    still = sum(1 for r, _ in conns if not r.at_eof())
    held = rss_kib()
    print(f"ok={outcomes['ok']} open_after_hold={still} rss_at_open={at_open} rss_after_hold={held}")
    print("outcomes=" + "; ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())))
    for _, w in conns:
        w.close()

asyncio.run(main())
PY
        {
            cat "$mem_out" >&2
            fail_with_log airlock "the idle-connection client failed"
        }
    read -r ok open_after rss_open rss_held < <(sed -n '1s/[a-z_]*=//gp' "$mem_out")
    outcomes=$(sed -n 's/^outcomes=//p' "$mem_out")
    per_conn=$(awk -v a="$rss_open" -v b="$rss_before" -v n="$ok" 'BEGIN { if (n > 0) printf "%.1f", (a - b) / n; else print "n/a" }')
    emit "### 5. airlock memory at $CONNS idle keep-alive connections" "" \
        "Each connection sends one proxied GET /1k.bin, reads the answer, then stays idle; VmRSS of the proxy process." ""
    emit "| state | connections open | VmRSS MiB |" "|---|---|---|"
    emit "| fresh proxy, after one request | 0 | $(awk -v k="$rss_before" 'BEGIN { printf "%.1f", k / 1024 }') |"
    emit "| all $CONNS attempted (served: $ok) | $ok | $(awk -v k="$rss_open" 'BEGIN { printf "%.1f", k / 1024 }') |"
    emit "| after $IDLE_HOLD s idle | $open_after | $(awk -v k="$rss_held" 'BEGIN { printf "%.1f", k / 1024 }') |"
    emit "" "Per served connection, at open: $per_conn KiB. Outcomes: $outcomes." ""
fi

# ---------------------------------------------------------------------------------------------------------------
# 6: intercepted HTTPS with credential injection, against mitmproxy doing the same header rewrite

if want https; then
    MITM_VENV=${MITM_VENV:-$ROOT/target/airlock-bench-mitm}
    if [[ ! -x $MITM_VENV/bin/mitmdump ]]; then
        log "installing mitmproxy==11.0.2 into $MITM_VENV (pip)"
        python3 -m venv "$MITM_VENV" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
        timeout 900 "$MITM_VENV/bin/pip" install -q mitmproxy==11.0.2 >&2 || die "pip install mitmproxy failed"
    fi
    LOAD=${TUNNEL_LOAD_BIN:-$(example_bin tunnel_load)}
    [[ -x $LOAD ]] || die "no load client at $LOAD"

    log "https: restarting airlock with interception and the secret"
    stop "$AIRLOCK_PID"
    # The secret: stored in the vault, pinned to the upstream's name; the client holds only the surrogate.
    printf %s "$REAL_TOKEN" | "$AIRLOCK" secret set BENCH_TOKEN --host "$UP_NAME:$TLS_PORT" >"$WORK/secret.log" 2>&1 ||
        { cat "$WORK/secret.log" >&2; die "airlock secret set failed"; }
    cat >"$WORK/airlock-https.toml" <<EOF
version = 1
default_profile = "dev"

[network]
allow_private = ["127.0.0.1"]
tls_inspect = "credentials"

[agents.bench]
tools = ["fetch"]

[tools.fetch]
secrets = ["BENCH_TOKEN"]
[[tools.fetch.network]]
hosts = ["$UP_NAME:*"]

[secrets.BENCH_TOKEN]
hosts = ["$UP_NAME:*"]
EOF
    start airlock "$WORK/airlock-https.log" "$AIRLOCK" proxy --listen "127.0.0.1:$AIRLOCK_PORT" --agent bench \
        --tool fetch --config "$WORK/airlock-https.toml" --resolve "$UP_NAME=127.0.0.1" --upstream-ca "$CERT"
    AIRLOCK_PID=$LAST_PID
    wait_port airlock "$AIRLOCK_PORT" "$AIRLOCK_PID" "$WORK/airlock-https.log"
    SURROGATE=$(sed -n 's/^BENCH_TOKEN=//p' "$WORK/airlock-https.log" | head -n 1)
    [[ -n $SURROGATE ]] || fail_with_log airlock "airlock printed no surrogate for BENCH_TOKEN"
    AIRLOCK_CA="$AIRLOCK_HOME/ca/cert.pem"

    # mitmproxy: the same rewrite (surrogate -> real value in Authorization), upstream verified against the same CA.
    MITM_PORT=$(free_port)
    mkdir -p "$WORK/mitm"
    cat >"$WORK/mitm/rewrite.py" <<EOF
SURROGATE = "$SURROGATE"
REAL = "$REAL_TOKEN"

def request(flow):
    v = flow.request.headers.get("authorization")
    if v and SURROGATE in v:
        flow.request.headers["authorization"] = v.replace(SURROGATE, REAL)
EOF
    start mitmproxy "$WORK/mitm/mitmdump.log" "$MITM_VENV/bin/mitmdump" -q --listen-host 127.0.0.1 -p "$MITM_PORT" \
        --set confdir="$WORK/mitm" --set ssl_verify_upstream_trusted_ca="$CERT" -s "$WORK/mitm/rewrite.py"
    MITM_PID=$LAST_PID
    wait_port mitmproxy "$MITM_PORT" "$MITM_PID" "$WORK/mitm/mitmdump.log"
    PROXY_LOG[mitmproxy]="$WORK/mitm/mitmdump.log"
    PROXY_LOG[airlock]="$WORK/airlock-https.log"

    # load NAME CONNECTIONS SECONDS: one JSON line from the load client.
    load() {
        local name=$1 conns=$2 secs=$3 args
        case $name in
        direct) args=(--connect "127.0.0.1:$TLS_PORT" --ca "$CERT" --header "authorization: Bearer $REAL_TOKEN") ;;
        airlock) args=(--proxy "127.0.0.1:$AIRLOCK_PORT" --connect "$UP_NAME:$TLS_PORT" --ca "$AIRLOCK_CA"
            --header "authorization: Bearer $SURROGATE") ;;
        mitmproxy) args=(--proxy "127.0.0.1:$MITM_PORT" --connect "127.0.0.1:$TLS_PORT" --ca "$WORK/mitm/mitmproxy-ca-cert.pem"
            --header "authorization: Bearer $SURROGATE") ;;
        esac
        timeout $((secs + 60)) "$LOAD" "${args[@]}" --sni "$UP_NAME" --path /auth/1k.bin --connections "$conns" --seconds "$secs"
    }
    field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
    emit "### 6. Intercepted HTTPS with credential injection, 1 KiB" "" \
        "The client sends \`Authorization: Bearer SURROGATE\` over TLS through the proxy (trusting the proxy's CA); the proxy swaps in the real value and forwards over TLS verified against the upstream's CA. mitmproxy 11.0.2 (\`mitmdump\` with a 6-line addon) does the same rewrite. The upstream answers 401 unless it gets the real value. Load: \`tunnel_load\` (crates/airlock-broker/examples), keep-alive, GET /auth/1k.bin; throughput at 16 connections for $DURATION, latency on 1 connection for 5 s." ""
    emit "| target | requests/s (16 conns) | vs direct | p50 µs (1 conn) | added p50 µs | errors |" "|---|---|---|---|---|---|"
    for t in direct airlock mitmproxy; do
        log "https: $t"
        thr=$(load "$t" 16 "$dur_s") || fail_with_log "${t/direct/airlock}" "the load client failed against $t"
        lat=$(load "$t" 1 5) || fail_with_log "${t/direct/airlock}" "the load client failed against $t"
        rps=$(field "$thr" rps) p50=$(field "$lat" p50_us)
        errs=$(( $(field "$thr" errors) + $(field "$lat" errors) ))
        (( errs == 0 )) || log "$t: $errs errors, first: $(field "$thr" first_error) $(field "$lat" first_error)"
        [[ $t == direct ]] && { https_direct_rps=$rps https_direct_p50=$p50; }
        [[ $t == airlock ]] && airlock_https_rps=$rps
        [[ $t == mitmproxy ]] && mitm_https_rps=$rps
        emit "| $t | $rps | $(ratio "$rps" "$https_direct_rps") | $p50 | $(awk -v a="$p50" -v b="$https_direct_p50" 'BEGIN { printf "%+d", a - b }') | $errs |"
    done
    emit "" "airlock / mitmproxy throughput: $(ratio "$airlock_https_rps" "$mitm_https_rps")x." ""
    stop "$MITM_PID"
fi

# ---------------------------------------------------------------------------------------------------------------
# Report

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
ver() { "$@" 2>&1 | head -n 1 || true; }
audit_mb=$(du -sk "$AIRLOCK_HOME/audit" 2>/dev/null | awk '{ printf "%.1f", $1 / 1024 }')
echo "## Broker benchmarks ($(date -u +%Y-%m-%d))"
echo
echo "| environment | |"
echo "|---|---|"
echo "| CPU | ${cpu:-unknown} |"
echo "| nproc | $(nproc) |"
echo "| kernel | $(uname -r) |"
echo "| nginx | $(ver nginx -v | sed 's/^nginx version: //') (1 worker) |"
echo "| wrk | $(ver wrk -v | awk '{print $1, $2}') |"
echo "| tinyproxy | $(ver tinyproxy -v) |"
echo "| squid | $(ver squid -v | sed 's/^Squid Cache: //') (no cache) |"
echo "| airlock | $AIRLOCK_DESC |"
echo "| audit | $AUDIT_NOTE; the log grew to ${audit_mb:-?} MiB |"
echo "| upstream | $HOST_NOTE |"
echo
cat "$TABLES"
