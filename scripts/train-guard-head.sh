#!/usr/bin/env bash
# Trains the guard classifier's head, crates/airlock-guard/model/head.safetensors, from:
#   - the TRAIN splits of ../shared/data/prompt-injection (s-labs train.csv, neuralchemy core-train.parquet);
#   - benign prose and code from the Rust toolchain's own books (rustup's rust-docs component: The Book,
#     the Reference, Cargo, rustc, rustdoc, Rust by Example, ...), so that documentation and code read as benign.
# Validation splits and the over-defence corpus of scripts/guard-eval.sh (crate docs and Python docstrings) are
# not used. The same inputs (toolchain 1.95.0 docs, the data files, the pinned model) give the same weights.
#
#   scripts/train-guard-head.sh          # a few minutes; then scripts/guard-eval.sh to measure
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${DATA:-$ROOT/../shared/data/prompt-injection}
OUT=${OUT:-$ROOT/target/guard-train}
MODEL=${AIRLOCK_MODEL_DIR:-$ROOT/target/model}
mkdir -p "$OUT"
[[ -f $MODEL/model.safetensors ]] || "$ROOT/scripts/setup-model.sh" "$MODEL"
if [[ ! -x $OUT/venv/bin/python ]]; then
    python3 -m venv "$OUT/venv"
    "$OUT/venv/bin/pip" install -q pyarrow==21.0.0
fi
DOCS=$(rustc --print sysroot)/share/doc/rust/html
"$OUT/venv/bin/python" - "$DATA" "$DOCS" "$OUT/train.jsonl" <<'PY'
import csv, glob, html, json, os, random, re, sys
import pyarrow.parquet as pq
data, docs, out = sys.argv[1:]
rows = []
with open(os.path.join(data, "s-labs", "train.csv"), newline="", encoding="utf-8") as f:
    rows += [(r["text"], int(r["label"])) for r in csv.DictReader(f)]
rows += [(r["text"], int(r["label"]))
         for r in pq.read_table(os.path.join(data, "neuralchemy", "core-train.parquet")).to_pylist()]
books = ["book", "cargo", "reference", "rust-by-example", "rustc", "rustdoc", "nomicon", "edition-guide",
         "embedded-book", "style-guide", "clippy", "unstable-book"]
paras = set()
for book in books:
    for fn in sorted(glob.glob(f"{docs}/{book}/**/*.html", recursive=True)):
        if fn.endswith("print.html"):
            continue
        text = open(fn, encoding="utf-8", errors="replace").read()
        for p in re.findall(r"<(?:p|li|pre)(?: [^>]*)?>(.*?)</(?:p|li|pre)>", text, re.S):
            p = re.sub(r"[ \t]+", " ", html.unescape(re.sub(r"<[^>]+>", "", p))).strip()
            if 40 <= len(p) <= 1500:
                paras.add(p)
paras = sorted(paras)
random.Random(11).shuffle(paras)
if len(paras) < 5000:
    sys.exit(f"only {len(paras)} paragraphs under {docs}: is rustup's rust-docs component installed?")
rows += [(p, 0) for p in paras[:12000]]
with open(out, "w", encoding="utf-8") as f:
    for text, label in rows:
        f.write(json.dumps({"text": text, "label": label}) + "\n")
print(f"{len(rows)} training texts ({sum(l for _, l in rows)} injections)", file=sys.stderr)
PY
cargo run --release -q -p airlock-guard --features classifier --example train_head --manifest-path "$ROOT/Cargo.toml" \
    -- "$MODEL" "$OUT/train.jsonl" "$ROOT/crates/airlock-guard/model/head.safetensors"
