#!/usr/bin/env bash
# Fuzzes the daemon's HTTP API against its own OpenAPI document (docs/openapi.json) with schemathesis, pinned.
#
#   scripts/fuzz-api.sh
#
# The daemon is the real one (`airlock serve`), on a throwaway AIRLOCK_HOME with a vault, a minimal policy and one
# admin agent, on a loopback port; schemathesis talks to nothing else. The admin may use a tool with a capability of a
# provider whose upstream is a loopback port nothing listens on, so capability calls go through the handler and the
# tool's broker to a refused connection (502) rather than stopping at the tool grant; most of them are made as that
# tool, to that provider (a schemathesis.toml of dictionaries), and the script checks afterwards that some got there.
# schemathesis generates requests from the document (valid ones and, for negative testing, invalid ones) and checks
# every answer: no 5xx it does not declare, a status, content type, headers and body the document names for that
# operation, invalid requests refused, valid ones accepted, and operations that need a token refusing requests without
# one. Then the daemon must still be alive and healthy,
# stop with exit 0 on SIGTERM, and leave an audit log that verifies.
#
# Two passes, so that nothing one operation does makes another fail spuriously:
#   1. every operation but PUT /v1/lockdown and POST /v1/runs;
#   2. PUT /v1/lockdown (engage and lift, at random), with the operations that report the lockdown
#      (GET /v1/lockdown, GET /v1/ready), so their engaged shapes are checked too.
# POST /v1/runs is not fuzzed: it runs the command it is given, in the sandbox, and generated commands are not
# something to execute (the sandbox has tests of its own). So nothing starts a run on the throwaway home, and the
# run operations (GET /v1/runs/{id}, POST /v1/runs/{id}/kill|pause|resume) only ever meet ids that name no run; the
# script checks that GET /v1/runs is still empty at the end.
#
# Not checked: `unsupported_method` and `allow_header_conformance`, which expect 405 with an Allow header for a
# method a path does not serve; the daemon answers every request it has no route for, wrong methods included,
# with a 404 problem document (by design: one answer for "nothing here", whatever the method).
#
# Environment:
#   AIRLOCK_BIN          the airlock binary (default target/debug/airlock, built with cargo if missing)
#   FUZZ_API_EXAMPLES    most test cases per operation and phase (default 150)
#   FUZZ_API_SEED        a seed: random generation from it instead of the default deterministic (derandomized)
#                        generation, to explore beyond the fixed set of cases
#   AIRLOCK_MODEL_DIR    the guard's classifier model, if the daemon should score with it (default: none,
#                        heuristics only)
# The schemathesis virtualenv is kept under target/fuzz-api (reused), and so are the JSON reports of the last run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCHEMATHESIS_VERSION=4.32.5
# What decides the generated test cases is pinned too: the same seed (or deterministic mode) gives the same cases.
PY_PINS=("schemathesis==$SCHEMATHESIS_VERSION" hypothesis==6.170.15 jsonschema-rs==0.60.3)
examples=${FUZZ_API_EXAMPLES:-150}
seed=${FUZZ_API_SEED:-}
spec=$PWD/docs/openapi.json
out_dir=$PWD/target/fuzz-api
venv=$out_dir/venv
reports=$out_dir/report
started=$SECONDS

die() {
    printf 'fuzz-api: %s\n' "$*" >&2
    exit 1
}

# --- the binary ------------------------------------------------------------------------------------------------
if [[ -n "${AIRLOCK_BIN:-}" ]]; then
    bin=$AIRLOCK_BIN
else
    bin=$PWD/target/debug/airlock
    if [[ ! -x "$bin" ]]; then
        echo "fuzz-api: building target/debug/airlock"
        locked=()
        [[ "${CI:-}" == "true" ]] && locked=(--locked)
        cargo build "${locked[@]}" -q -p airlock
    fi
fi
[[ -x "$bin" ]] || die "$bin is not an executable"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

# --- schemathesis, pinned --------------------------------------------------------------------------------------
installed() {
    "$venv/bin/python" -c 'import importlib.metadata as m, sys
print(" ".join(f"{p}=={m.version(p)}" for p in sys.argv[1:]))' schemathesis hypothesis jsonschema-rs 2>/dev/null
}
if [[ "$(installed)" != "${PY_PINS[*]}" ]]; then
    echo "fuzz-api: installing ${PY_PINS[*]} into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "${PY_PINS[@]}"
fi
echo "fuzz-api: $("$venv/bin/schemathesis" --version), $("$venv/bin/python" --version)"

# --- a throwaway home and the daemon ---------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/airlock-fuzz-api.XXXXXX")
home=$work/home
daemon_pid=
cleanup() {
    if [[ -n "$daemon_pid" ]] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -KILL "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

passphrase="fuzz-api throwaway passphrase $RANDOM$RANDOM"
# Airlock sees only what this script gives it: no proxy, XDG or AIRLOCK_* variables from the caller.
airlock_env=(env -i "PATH=$PATH" "HOME=$work" "AIRLOCK_HOME=$home" "AIRLOCK_PASSPHRASE=$passphrase")
if [[ -n "${AIRLOCK_MODEL_DIR:-}" ]]; then
    airlock_env+=("AIRLOCK_MODEL_DIR=$AIRLOCK_MODEL_DIR")
fi
al() {
    "${airlock_env[@]}" "$bin" "$@"
}

al init --kek passphrase --insecure-kdf --kdf-memory-mib 8 >/dev/null 2>"$work/init.err" ||
    die "airlock init failed: $(cat "$work/init.err")"
# The fuzz agent is granted a tool with a capability, so that capability calls reach the handler and the tool's broker
# (policy, path prefixes, secret injection, the upstream) instead of stopping at "not granted". The provider's host is
# a name under example.com (reserved, RFC 2606; the broker refuses special-use names such as .invalid before it
# resolves them), pinned by --resolve to a loopback port nothing listens on: a call the broker lets through fails at
# the connection (502), and nothing ever leaves the machine.
upstream_host=fuzz-upstream.example.com
cat >"$home/airlock.toml" <<EOF
version = 1

[network]
allow_private = ["127.0.0.1"]

[agents.worker]
tools = ["t"]

[agents.fuzz]
tools = ["fetch"]

[tools.t]

[tools.fetch]
secrets = ["FUZZ_KEY"]
[[tools.fetch.network]]
hosts = ["$upstream_host:*"]

[secrets.FUZZ_KEY]
hosts = ["$upstream_host:*"]

[providers.fuzz]
base_url = "https://$upstream_host:9"
secret = "FUZZ_KEY"

[providers.fuzz.capabilities.models]
methods = ["GET"]
paths = ["/v1/models"]

[providers.fuzz.capabilities.write]
methods = ["POST", "PUT", "PATCH", "DELETE"]
paths = ["/v1/"]
EOF
printf 'fuzz-throwaway-%s' "$RANDOM$RANDOM$RANDOM" |
    al secret set FUZZ_KEY --raw --host "$upstream_host:9" >/dev/null 2>"$work/secret.err" ||
    die "airlock secret set failed: $(cat "$work/secret.err")"
token=$(al --json agent add fuzz --role admin | "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["token"])')
[[ "$token" == alk_* ]] || die "airlock agent add did not print a token"

: >"$work/serve.out" # made before the daemon starts, so that reading it below never races its creation
"${airlock_env[@]}" "$bin" serve --config "$home/airlock.toml" --listen 127.0.0.1:0 --rate 100000 \
    --resolve "$upstream_host=127.0.0.1" </dev/null >"$work/serve.out" 2>"$work/serve.err" &
daemon_pid=$!
# Its first stdout line says it is ready, and where: "airlock serve: listening on SOCKET and http://ADDR".
url=
for _ in $(seq 300); do
    line=$(head -n 1 "$work/serve.out")
    if [[ "$line" == *" and http://"* ]]; then
        url=${line##* }
        break
    fi
    kill -0 "$daemon_pid" 2>/dev/null || die "airlock serve exited before it was ready: $(cat "$work/serve.err")"
    sleep 0.1
done
[[ -n "$url" ]] || die "airlock serve printed no ready line in 30 s: $(cat "$work/serve.err")"
echo "fuzz-api: daemon pid $daemon_pid at $url (home $home)"
# curl_api PATH [CURL OPTIONS]: the body of the daemon's answer.
curl_api() {
    local path=$1
    shift
    curl -sS --noproxy '*' --max-time 10 -H "Authorization: Bearer $token" "$@" "$url$path"
}
layers=$(curl_api /v1/guard/scan -H 'Content-Type: application/json' -d '{"text":"hello"}' |
    "$venv/bin/python" -c 'import json, sys; print(", ".join(json.load(sys.stdin)["layers"]))') ||
    die "POST /v1/guard/scan did not answer with an assessment"
echo "fuzz-api: the guard scores with: $layers"

# --- schemathesis ----------------------------------------------------------------------------------------------
rm -rf "$reports"
mkdir -p "$reports"
# Random provider, capability and tool names would all be refused before the handler does anything (404, 403): most
# capability calls are made as the granted tool, to the provider and capabilities above, with methods and paths that
# fit them or nearly do (the rest, and every other field, as schemathesis makes them). It reads this file from the
# directory it runs in.
cat >"$work/schemathesis.toml" <<'EOF'
[dictionaries.provider]
values = ["fuzz"]
[dictionaries.capability]
values = ["models", "write"]
[dictionaries.tool]
values = ["fetch"]
[dictionaries.method]
values = ["GET", "POST", "DELETE"]
[dictionaries.path]
values = ["/v1/models", "/v1/models?limit=1", "/v1/files", "/v2/models", "/v1/../admin"]

[[operations]]
include-operation-id = "capabilityInvoke"
[operations.parameters]
"path.provider" = { dictionary = "provider", probability = 0.9 }
"path.capability" = { dictionary = "capability", probability = 0.9 }
"header.X-Airlock-Tool" = { dictionary = "tool", probability = 0.9 }
"body.method" = { dictionary = "method", probability = 0.7 }
"body.path" = { dictionary = "path", probability = 0.7 }
# A call the document allows may still be refused by a rule of the provider's that no schema of the shared envelope
# can say (a header the provider sets itself, the query parameter its credential goes in): 400, as documented. And a
# method the capability does not allow is 405.
[operations.checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "405", "409", "429", "5xx"]
# The upstream is unreachable on purpose: a call that gets that far is a 502 problem document, as documented.
[operations.checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "502"]
EOF
if [[ -n "$seed" ]]; then
    generation=(--seed "$seed")
else
    generation=(--generation-deterministic)
fi
# Loopback only: no proxy may stand in between, and nothing is fetched (the document is a local file).
st_env=(env -u HTTP_PROXY -u HTTPS_PROXY -u ALL_PROXY -u http_proxy -u https_proxy -u all_proxy
    NO_PROXY='*' no_proxy='*')
# Every warning but missing_test_data: the run operations answer 404 on purpose (no run exists; see above).
warnings="missing_auth,base_url_mismatch,validation_mismatch,missing_deserializer,unused_openapi_auth"
warnings+=",unsupported_regex,method_not_allowed,constants_extraction,unmatched_filter,unresolvable_reference"
warnings+=",rate_limited,dictionary_mismatch"
failures=()

# schemathesis PASS_NAME OPTIONS...: one pass, its JSON report kept under target/fuzz-api/report.
schemathesis_pass() {
    local name=$1
    shift
    local cmd=("$venv/bin/schemathesis" --no-color run "$spec" --url "$url"
        -H "Authorization: Bearer $token"
        --checks all --exclude-checks "unsupported_method,allow_header_conformance" --warnings "$warnings"
        --max-examples "$examples" "${generation[@]}" --workers 1
        --request-timeout 30 --report json --report-json-path "$reports/$name.json" "$@")
    printf '\nfuzz-api: pass "%s"\n$ %s\n' "$name" "${cmd[*]/#Authorization: Bearer */Authorization: Bearer <token>}"
    # From the throwaway directory: schemathesis looks for a schemathesis.toml from where it runs.
    if ! (cd "$work" && "${st_env[@]}" "${cmd[@]}"); then
        failures+=("schemathesis pass \"$name\"")
    fi
}

schemathesis_pass api --exclude-operation-id lockdownSet --exclude-operation-id runStart
schemathesis_pass lockdown --include-operation-id lockdownSet --include-operation-id lockdownStatus \
    --include-operation-id ready

# --- afterwards: alive, healthy, stops cleanly, the log verifies -----------------------------------------------
printf '\nfuzz-api: after the run\n'
if ! kill -0 "$daemon_pid" 2>/dev/null; then
    status=0
    wait "$daemon_pid" || status=$?
    daemon_pid=
    if ((status > 128)); then
        failures+=("the daemon died during the run: killed by signal $((status - 128)) ($(kill -l "$status"))")
    else
        failures+=("the daemon died during the run: exit status $status")
    fi
    printf 'daemon stderr:\n%s\n' "$(cat "$work/serve.err")" >&2
else
    health=$(curl_api /v1/health || true)
    if [[ "$health" == *'"status":"ok"'* ]]; then
        echo "GET /v1/health: $health"
    else
        failures+=("GET /v1/health after the run: ${health:-no answer}")
    fi
    runs=$(curl_api /v1/runs || true)
    if [[ "$runs" == '{"runs":[]}' ]]; then
        echo "GET /v1/runs: $runs (the run operations met no run)"
    else
        failures+=("GET /v1/runs after the run: ${runs:-no answer} (expected no runs)")
    fi
    kill -TERM "$daemon_pid"
    status=
    for _ in $(seq 300); do
        if ! kill -0 "$daemon_pid" 2>/dev/null; then
            status=0
            wait "$daemon_pid" || status=$?
            break
        fi
        sleep 0.1
    done
    daemon_pid_was=$daemon_pid
    if [[ -z "$status" ]]; then
        failures+=("the daemon did not stop within 30 s of SIGTERM")
    else
        daemon_pid=
        if [[ "$status" == 0 ]]; then
            echo "SIGTERM: the daemon (pid $daemon_pid_was) exited 0"
        else
            failures+=("the daemon exited $status on SIGTERM")
            cat "$work/serve.err" >&2
        fi
    fi
    if [[ -z "$daemon_pid" ]]; then
        if verify=$(al audit verify 2>&1); then
            echo "airlock audit verify: ok"
            printf '%s\n' "$verify" | sed "s/^/  /"
        else
            failures+=("airlock audit verify failed")
            printf '%s\n' "$verify" >&2
        fi
        # Capability calls that got past the tool grant, as the granted tool: the broker's own records of its
        # decisions, some of them the upstream it could not reach. None would mean the fuzzing never got past the
        # grant, or never past the broker's checks to the upstream.
        if reached=$(al --json audit query --actor fuzz | "$venv/bin/python" -c '
import json, sys
records = [json.loads(line) for line in sys.stdin]
as_tool = [r for r in records if r.get("actor", {}).get("app_name") == "fetch" and "api-tool-grant" not in json.dumps(r)]
upstream = [r for r in as_tool if "could not connect to 127.0.0.1:9" in json.dumps(r)]
print(len(as_tool), len(upstream))'); then
            read -r as_tool upstream <<<"$reached"
            echo "capability calls past the tool grant: $as_tool audit records, $upstream of them at the upstream"
            ((as_tool > 0 && upstream > 0)) || failures+=("no capability call reached the broker and its upstream")
        else
            failures+=("airlock audit query failed")
        fi
    fi
fi

# --- summary ---------------------------------------------------------------------------------------------------
printf '\nfuzz-api: summary (schemathesis %s, %s, at most %s test cases per operation and phase)\n' \
    "$SCHEMATHESIS_VERSION" "$([[ -n "$seed" ]] && echo "seed $seed" || echo "deterministic generation")" "$examples"
# One line per pass from its JSON report; a pass that selected other operations than meant (an operation id
# renamed), left some untested or could not send some requests counts as failed even if schemathesis exited 0.
for pass in api:-2 lockdown:3; do
    name=${pass%%:*}
    if [[ ! -f "$reports/$name.json" ]]; then
        failures+=("pass \"$name\" wrote no report")
        continue
    fi
    if ! "$venv/bin/python" - "$reports/$name.json" "$name" "${pass#*:}" <<'EOF'; then
import json, sys
r = json.load(open(sys.argv[1]))
name, want = sys.argv[2], int(sys.argv[3])
ops, tc = r["operations"], r["test_cases"]
print(f"  {name:<9} {ops['tested']} of {ops['total']} operations, {tc['generated']} test cases, "
      f"{tc['unique_failures']} failure(s), {tc['errored']} error(s), {r['running_time']:.0f} s")
want = ops["total"] + want if want < 0 else want
sys.exit(0 if ops["selected"] == want and ops["tested"] == want and tc["errored"] == 0 else 1)
EOF
        failures+=("pass \"$name\": not every operation meant was tested, or some requests failed to be sent")
    fi
done
printf '  total %ss\n' $((SECONDS - started))
if ((${#failures[@]} > 0)); then
    printf '\nFAILED:\n' >&2
    printf '  %s\n' "${failures[@]}" >&2
    exit 1
fi
printf '\nfuzz-api: no failures\n'
