#!/usr/bin/env bash
# Evaluates the prompt-injection detector (crates/airlock-guard) and prints markdown tables:
#   precision, recall, F1 on the s-labs and neuralchemy VALIDATION splits (and on their injections set inside
#   benign paragraphs), over-defence (false-positive rate) on a benign corpus with trigger words assembled from
#   local documentation, per-family firing counts, and latency; for the heuristics alone and, with the classifier
#   model installed (scripts/setup-model.sh; AIRLOCK_MODEL_DIR, default target/model), for the combined detector.
# Test splits are not used (they are not in ../shared/data either). Nothing here tunes anything.
#
#   scripts/guard-eval.sh            # a few minutes
#
# Environment: DATA (default ../shared/data/prompt-injection), OUT (default target/guard-eval).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${DATA:-$ROOT/../shared/data/prompt-injection}
OUT=${OUT:-$ROOT/target/guard-eval}
mkdir -p "$OUT"
if [[ ! -x $OUT/venv/bin/python ]]; then
    python3 -m venv "$OUT/venv"
    "$OUT/venv/bin/pip" install -q pyarrow==21.0.0
fi
export AIRLOCK_MODEL_DIR=${AIRLOCK_MODEL_DIR:-$ROOT/target/model}
[[ -f $AIRLOCK_MODEL_DIR/model.safetensors ]] || "$ROOT/scripts/setup-model.sh" "$AIRLOCK_MODEL_DIR"
cargo build --release -q -p airlock-guard --features classifier --example score --manifest-path "$ROOT/Cargo.toml"
exec "$OUT/venv/bin/python" "$ROOT/scripts/guard-eval.py" --data "$DATA" --out "$OUT" \
    --scorer "$ROOT/target/release/examples/score"
