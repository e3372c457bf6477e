#!/usr/bin/env bash
# Runs the redaction engine's fuzz targets for SECONDS each (default 60).
# Needs the nightly toolchain (`rustup toolchain install nightly`) and `cargo install cargo-fuzz`.
set -euo pipefail
cd "$(dirname "$0")/../crates/airlock-redact"
secs="${1:-60}"
for target in scan stream_split rule_file; do
    echo "== fuzz target $target, ${secs}s"
    cargo +nightly fuzz run "$target" -- -max_total_time="$secs" -max_len=65536 -rss_limit_mb=4096
done
