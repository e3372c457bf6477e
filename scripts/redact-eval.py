#!/usr/bin/env python3
"""Score secret scanners against the labels written by scripts/redact-corpus.py (stdlib only).

  redact-eval.py score --labels L.jsonl [--negatives N.jsonl] --tool SPEC [--tool SPEC ...] [--title T] [--detail]
  redact-eval.py noise --bytes N --tool SPEC [--tool SPEC ...] [--top 8]      # findings on a corpus with no labels
  redact-eval.py speed --row 'label|input|threads|bytes|hyperfine.json|bytes-reported' ...   # throughput table

A tool SPEC is  name,format,report,root  where format is one of gitleaks, kingfisher, detect-secrets, airlock;
report is the tool's JSON output, or "missing:<reason>" to print the reason in the tool's rows; root is the
directory the tool scanned (paths in the report are made relative to it).

Matching: a finding matches a label when it names the same file and its line lies in [line, end_line] or is one of
the label's context_lines (the `key: |` line above a YAML block scalar, the rest of a GCP service-account JSON). Findings
are counted per distinct (file, line) position, so a tool that reports two rules on one line, or every line of a
PEM block, is not rewarded or punished for it:
  TP  labels with at least one finding in their range
  FN  labels with none
  FP  distinct finding positions that match no label
  precision = TP / (TP + FP), recall = TP / (TP + FN)
Secrets and PII are scored apart: a false positive counts as PII when its rule maps to a pii-* family.
Per family, TP/FN use the label's family and FP uses the family its rule maps to (RULE_FAMILY below, by substring);
the per-family table is for reading, the overall rows do not depend on the mapping except for the PII split.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys

# substring of a rule id / type (lower case) -> our family; first match wins, so specific entries come first
RULE_FAMILY = [
    ("grafana", "grafana"), ("gcp-service-account", "gcp"), ("service-account", "gcp"), ("service_account", "gcp"), ("serviceaccount", "gcp"),
    ("gcp.service", "gcp"), ("google cloud service", "gcp"),
    ("private-key", "private-key"), ("private_key", "private-key"), ("privatekey", "private-key"),
    ("private key", "private-key"), ("openssh", "private-key"), ("pgp", "private-key"), ("pem", "private-key"),
    ("ssh", "private-key"),
    ("aws", "aws"), ("github", "github"), ("gitlab", "gitlab"), ("slack", "slack"), ("stripe", "stripe"),
    ("openai", "openai"), ("anthropic", "anthropic"), ("claude", "anthropic"),
    ("gcp-api-key", "google"), ("google", "google"), ("gcp", "google"),
    ("huggingface", "huggingface"), ("hugging", "huggingface"), ("replicate", "replicate"), ("groq", "groq"),
    ("npm", "npm"), ("pypi", "pypi"), ("sendgrid", "sendgrid"), ("twilio", "twilio"), ("telegram", "telegram"),
    ("discord", "discord"), ("shopify", "shopify"), ("digitalocean", "digitalocean"), ("doppler", "doppler"),
    ("hashicorp-tf", "terraform"), ("terraform", "terraform"), ("atlas", "terraform"),
    ("vault", "vault"), ("hashicorp", "vault"),
    ("databricks", "databricks"), ("sentry", "sentry"), ("grafana", "grafana"), ("postman", "postman"),
    ("linear", "linear"), ("docker", "dockerhub"), ("age-secret", "age"), ("age secret", "age"), ("age.secret", "age"),
    ("jwt", "jwt"), ("json web token", "jwt"),
    ("postgres", "database"), ("mongo", "database"), ("redis", "database"), ("mysql", "database"),
    ("basic auth", "database"), ("basicauth", "database"), ("uri", "database"), ("connection-string", "azure"),
    ("azure", "azure"),
    ("credit", "pii-card"), ("card", "pii-card"), ("iban", "pii-iban"), ("email", "pii-email"), ("ssn", "pii-ssn"),
    ("generic", "generic"), ("keyword", "generic"), ("entropy", "generic"), ("password", "generic"),
    ("secret", "generic"), ("api-key", "generic"), ("apikey", "generic"), ("token", "generic"), ("curl", "generic"),
    ("auth", "generic"), ("credential", "generic"),
]


def rule_family(rule):
    r = (rule or "").lower()
    for sub, fam in RULE_FAMILY:
        if sub in r:
            return fam
    return "other"


def norm_path(p, root):
    if root:
        for r in (root, os.path.abspath(root), os.path.realpath(root)):
            r = r.rstrip("/") + "/"
            if p.startswith(r):
                p = p[len(r):]
                break
    while p.startswith("./"):
        p = p[2:]
    return p


def load_findings(fmt, report, root):
    """-> list of (file, line, rule, family_or_None)."""
    with open(report, encoding="utf-8") as f:
        text = f.read()
    out = []
    if fmt == "gitleaks":
        data = json.loads(text) if text.strip() else []
        for x in data:
            out.append((norm_path(x.get("File", ""), root), int(x.get("StartLine", 0)), x.get("RuleID", "?"), None))
    elif fmt == "kingfisher":
        docs = []
        try:
            docs = [json.loads(text)]
        except json.JSONDecodeError:
            docs = [json.loads(l) for l in text.splitlines() if l.strip().startswith("{")]
        for d in docs:
            items = d.get("findings", []) if isinstance(d, dict) else d
            if not isinstance(items, list):
                continue
            for x in items:
                rule = x.get("rule", {}) or {}
                fd = x.get("finding", x)
                path = fd.get("path") or fd.get("file") or ""
                out.append((norm_path(path, root), int(fd.get("line", 0) or 0), rule.get("id") or rule.get("name") or "?", None))
    elif fmt == "detect-secrets":
        data = json.loads(text)
        for path, items in (data.get("results") or {}).items():
            for x in items:
                out.append((norm_path(path, root), int(x.get("line_number", 0)), x.get("type", "?"), None))
    elif fmt == "airlock":
        data = json.loads(text)
        for x in data.get("findings", []):
            out.append((norm_path(x.get("path", ""), root), int(x.get("line", 0)), x.get("rule", "?"), x.get("family")))
    else:
        raise SystemExit(f"unknown format {fmt}")
    return out


def parse_spec(spec):
    parts = spec.split(",")
    if len(parts) < 3:
        raise SystemExit(f"bad --tool {spec!r}: want name,format,report[,root]")
    name, fmt, report = parts[0], parts[1], parts[2]
    root = parts[3] if len(parts) > 3 else ""
    return name, fmt, report, root


def read_jsonl(path):
    if not path or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def pct(a, b):
    return f"{100.0 * a / b:.1f}%" if b else "-"


def fmt_pr(tp, fp, fn):
    p = pct(tp, tp + fp)
    r = pct(tp, tp + fn)
    if tp + fp and tp + fn and tp:
        prec, rec = tp / (tp + fp), tp / (tp + fn)
        f1 = f"{2 * prec * rec / (prec + rec):.3f}"
    else:
        f1 = "-"
    return p, r, f1


class Score:
    pass


def score_tool(findings, labels, negatives, known_families):
    by_file = collections.defaultdict(list)
    ctx = collections.defaultdict(list)
    for i, l in enumerate(labels):
        by_file[l["file"]].append((l["line"], l.get("end_line", l["line"]), i))
        for c in l.get("context_lines", []):
            ctx[(l["file"], c)].append(i)
    neg_by_file = collections.defaultdict(list)
    for j, n in enumerate(negatives):
        neg_by_file[n["file"]].append((n["line"], n.get("end_line", n["line"]), j))
    pos = collections.OrderedDict()
    for f, line, rule, fam in findings:
        pos.setdefault((f, line), []).append((rule, fam))
    s = Score()
    s.detected = collections.defaultdict(set)  # label index -> rules
    s.fp = []  # (file, line, rules, family, negative-kind or None)
    s.neg_hit = set()
    s.raw = len(findings)
    s.positions = len(pos)
    for (f, line), rules in pos.items():
        hit = [i for a, b, i in by_file.get(f, ()) if a <= line <= b] or ctx.get((f, line), [])
        if hit:
            for i in hit:
                s.detected[i].update(r for r, _ in rules)
            continue
        fam = None
        for r, own in rules:
            fam = own if own in known_families else rule_family(r)
            if fam != "other":
                break
        negk = None
        for a, b, j in neg_by_file.get(f, ()):
            if a <= line <= b:
                negk = negatives[j]["negative"]
                s.neg_hit.add(j)
                break
        s.fp.append((f, line, sorted({r for r, _ in rules}), fam, negk))
    return s


def cmd_score(a):
    labels = read_jsonl(a.labels)
    negatives = read_jsonl(a.negatives)
    tools = [parse_spec(t) for t in a.tool]
    families = sorted({l["family"] for l in labels}, key=lambda x: (x.startswith("pii"), x))
    known = set(families)
    results = {}
    for name, fmt, report, root in tools:
        if report.startswith("missing:"):
            results[name] = report[len("missing:"):]
            continue
        if not os.path.exists(report):
            results[name] = "no report"
            continue
        results[name] = score_tool(load_findings(fmt, report, root), labels, negatives, known)
    title = a.title or os.path.basename(a.labels)
    n_sec = sum(1 for l in labels if not l["pii"])
    n_pii = len(labels) - n_sec
    print(f"#### {title}: overall\n")
    print(f"{n_sec} secret labels, {n_pii} PII labels, {len(negatives)} planted hard negatives.\n")
    print("| tool | scope | labels | TP | FN | FP | precision | recall | F1 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    summary = {}
    for name, _, _, _ in tools:
        s = results[name]
        if isinstance(s, str):
            print(f"| {name}: {s} | | | | | | | | |")
            continue
        for scope, want_pii in (("secrets", False), ("PII", True), ("all", None)):
            idx = [i for i, l in enumerate(labels) if want_pii is None or l["pii"] == want_pii]
            if not idx:
                continue
            tp = sum(1 for i in idx if i in s.detected)
            fn = len(idx) - tp
            if want_pii is None:
                fp = len(s.fp)
            else:
                fp = sum(1 for x in s.fp if (x[3] or "").startswith("pii") == want_pii)
            p, r, f1 = fmt_pr(tp, fp, fn)
            summary.setdefault(name, {})[scope] = {"tp": tp, "fn": fn, "fp": fp}
            bold = "**" if scope == "secrets" else ""
            print(f"| {name} | {scope} | {len(idx)} | {tp} | {fn} | {fp} | {bold}{p}{bold} | {bold}{r}{bold} | {f1} |")
    live = [n for n, *_ in tools if not isinstance(results[n], str)]
    # per family: recall per tool, and FP attributed to the family by rule mapping
    print(f"\n#### {title}: per family (recall = TP/labels; FP by the family the tool's rule maps to)\n")
    print("| family | labels | " + " | ".join(f"{n} TP / FP / recall" for n in live) + " |")
    print("|---|---:|" + "---:|" * len(live))
    fams = families + sorted({x[3] for n in live for x in results[n].fp} - set(families))
    for fam in fams:
        idx = [i for i, l in enumerate(labels) if l["family"] == fam]
        cells = []
        for n in live:
            s = results[n]
            tp = sum(1 for i in idx if i in s.detected)
            fp = sum(1 for x in s.fp if x[3] == fam)
            cells.append(f"{tp} / {fp} / {pct(tp, len(idx))}")
        print(f"| {fam} | {len(idx)} | " + " | ".join(cells) + " |")
    if negatives:
        print(f"\n#### {title}: hard negatives flagged (instances with a finding / planted)\n")
        kinds = sorted({n["negative"] for n in negatives})
        print("| hard negative | planted | " + " | ".join(live) + " |")
        print("|---|---:|" + "---:|" * len(live))
        for k in kinds:
            idx = [j for j, n in enumerate(negatives) if n["negative"] == k]
            print(f"| {k} | {len(idx)} | " + " | ".join(str(sum(1 for j in idx if j in results[n].neg_hit)) for n in live) + " |")
        print("| *other lines (filler)* | - | " + " | ".join(str(sum(1 for x in results[n].fp if x[4] is None)) for n in live) + " |")
    if a.detail:
        print(f"\n#### {title}: recall per kind\n")
        print("| kind | family | labels | " + " | ".join(live) + " |")
        print("|---|---|---:|" + "---:|" * len(live))
        kinds = sorted({(l["family"], l["kind"]) for l in labels}, key=lambda x: (x[0].startswith("pii"), x))
        for fam, k in kinds:
            idx = [i for i, l in enumerate(labels) if l["kind"] == k]
            print(f"| {k} | {fam} | {len(idx)} | " + " | ".join(
                f"{sum(1 for i in idx if i in results[n].detected)}" for n in live) + " |")
        print(f"\n#### {title}: rules seen (positions on labels / false positives, mapped family)\n")
        for n in live:
            s = results[n]
            tp_rules = collections.Counter(r for rs in s.detected.values() for r in rs)
            fp_rules = collections.Counter(r for x in s.fp for r in x[2])
            allr = sorted(set(tp_rules) | set(fp_rules), key=lambda r: -(tp_rules[r] + fp_rules[r]))
            print(f"- **{n}**: " + "; ".join(f"`{r}` {tp_rules[r]}/{fp_rules[r]} ({rule_family(r)})" for r in allr[:40]))
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"title": title, "summary": summary,
                       "not_run": {n: s for n, s in results.items() if isinstance(s, str)}}, f, indent=2, sort_keys=True)
    print()


def cmd_noise(a):
    tools = [parse_spec(t) for t in a.tool]
    print("| tool | bytes scanned | findings | distinct lines | per MiB | top rules (lines) | top files (lines) |")
    print("|---|---:|---:|---:|---:|---|---|")
    for (name, fmt, report, root), nbytes in zip(tools, a.bytes):
        if report.startswith("missing:"):
            print(f"| {name}: {report[8:]} | | | | | | |")
            continue
        if not os.path.exists(report):
            print(f"| {name}: no report | | | | | | |")
            continue
        fs = load_findings(fmt, report, root)
        pos = {}
        for f, line, rule, _ in fs:
            pos.setdefault((f, line), set()).add(rule)
        rules = collections.Counter(r for rs in pos.values() for r in rs)
        files = collections.Counter(f for f, _ in pos)
        mib = int(nbytes) / 1048576
        tr = ", ".join(f"`{r}` {c}" for r, c in rules.most_common(a.top))
        tf = ", ".join(f"`{f}` {c}" for f, c in files.most_common(a.top))
        print(f"| {name} | {int(nbytes) / 1048576:.1f} MiB | {len(fs)} | {len(pos)} | {len(pos) / mib:.2f} | {tr} | {tf} |")
    print()


def cmd_speed(a):
    """Rows: label|input|threads|bytes|hyperfine-json|bytes-the-tool-says-it-scanned (may be empty)."""
    print("| tool and command | input | threads | wall mean ± sd (s) | MiB/s (wall) | CPU s (user+sys) | MiB per CPU-s | bytes the tool reports |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for row in a.row:
        label, inp, threads, nbytes, path, scanned = (row.split("|") + [""] * 6)[:6]
        if path.startswith("missing:"):
            print(f"| {label} | {inp} | {threads} | {path[8:]} | | | | |")
            continue
        try:
            with open(path) as f:
                r = json.load(f)["results"][0]
        except (OSError, ValueError, KeyError, IndexError):
            print(f"| {label} | {inp} | {threads} | no result | | | | |")
            continue
        mib = int(nbytes) / 1048576
        mean, sd = r["mean"], r.get("stddev") or 0.0
        cpu = (r.get("user") or 0.0) + (r.get("system") or 0.0)
        rep = f"{int(scanned) / 1048576:.1f} MiB" if scanned.strip().isdigit() else (scanned or "-")
        def rate(x):
            return f"{x:.1f}" if x >= 1 else f"{x:.2f}"

        print(f"| {label} | {inp} ({mib:.1f} MiB) | {threads} | {mean:.2f} ± {sd:.2f} | **{rate(mib / mean)}** | {cpu:.2f} | "
              f"{rate(mib / cpu) if cpu else '-'} | {rep} |")
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("score")
    s.add_argument("--labels", required=True)
    s.add_argument("--negatives")
    s.add_argument("--tool", action="append", default=[])
    s.add_argument("--title")
    s.add_argument("--detail", action="store_true")
    s.add_argument("--json-out")
    n = sub.add_parser("noise")
    n.add_argument("--tool", action="append", default=[])
    n.add_argument("--bytes", action="append", default=[], help="bytes scanned, one per --tool, same order")
    n.add_argument("--top", type=int, default=6)
    sp = sub.add_parser("speed")
    sp.add_argument("--row", action="append", default=[])
    a = ap.parse_args()
    if a.cmd == "score":
        cmd_score(a)
    elif a.cmd == "speed":
        cmd_speed(a)
    else:
        if len(a.bytes) != len(a.tool):
            sys.exit("noise: give one --bytes per --tool")
        cmd_noise(a)


if __name__ == "__main__":
    main()
