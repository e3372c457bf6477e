//! Scores texts for `scripts/guard-eval.py`.
//!
//! - default: one JSON string per line on stdin; one JSON object per line out: `risk` (combined), `heuristic_risk`
//!   (heuristics alone), `classifier` (the probability, or null without a model), the evidence ids, and the
//!   microseconds each assessment took.
//! - `--latency`: builds 1 KB and 100 KB texts from the stdin texts and prints p50/p99 assessment times for each,
//!   heuristics alone and combined (2,000 and 200 runs).
//!
//! The classifier is used when `AIRLOCK_MODEL_DIR` names the model (see `scripts/setup-model.sh`).

use std::io::{BufRead, Write};
use std::time::Instant;

use airlock_guard::classifier::{Classifier, model_dir};
use airlock_guard::heuristics::Heuristics;
use airlock_guard::score::{Thresholds, assess};

fn main() {
    let h = Heuristics::builtin();
    let classifier = std::env::var_os("AIRLOCK_MODEL_DIR")
        .and_then(|_| model_dir(None))
        .map(|dir| Classifier::load(&dir).expect("the classifier loads").0);
    let texts: Vec<String> = std::io::stdin()
        .lock()
        .lines()
        .map(|l| serde_json::from_str(&l.expect("stdin is readable")).expect("a JSON string per line"))
        .collect();
    if std::env::args().any(|a| a == "--latency") {
        for (size, runs) in [(1_000usize, 2_000usize), (100_000, 200)] {
            let samples = samples(&texts, size, 20);
            for layers in ["heuristics", "combined"] {
                let c = match (layers, &classifier) {
                    ("heuristics", _) => None,
                    (_, Some(c)) => Some(c),
                    (_, None) => continue,
                };
                let mut times: Vec<f64> = (0..runs)
                    .map(|i| {
                        let text = &samples[i % samples.len()];
                        let t = Instant::now();
                        let score = c.map(|c| c.score(text));
                        std::hint::black_box(assess(h, text, score, Thresholds::DEFAULT));
                        t.elapsed().as_secs_f64() * 1e6
                    })
                    .collect();
                times.sort_by(f64::total_cmp);
                let pick = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
                println!(
                    "{}",
                    serde_json::json!({"layers": layers, "bytes": size, "runs": runs,
                        "p50_us": pick(0.5), "p99_us": pick(0.99)})
                );
            }
        }
        return;
    }
    let mut out = std::io::BufWriter::new(std::io::stdout());
    for text in &texts {
        let t = Instant::now();
        let heuristic = assess(h, text, None, Thresholds::DEFAULT);
        let us = t.elapsed().as_secs_f64() * 1e6;
        let score = classifier.as_ref().map(|c| c.score(text));
        let probability = score.as_ref().map(|s| s.probability);
        let a = assess(h, text, score, Thresholds::DEFAULT);
        let ids: Vec<&str> = a.evidence.iter().map(|e| e.id.as_str()).collect();
        let row = serde_json::json!({ "risk": a.risk, "heuristic_risk": heuristic.risk, "classifier": probability,
            "evidence": ids, "us": us });
        writeln!(out, "{row}").expect("stdout");
    }
}

/// `n` texts of about `size` bytes, each texts concatenated from a different starting point.
fn samples(texts: &[String], size: usize, n: usize) -> Vec<String> {
    (0..n)
        .map(|k| {
            let mut s = String::with_capacity(size + 1024);
            let mut i = k * 97;
            while s.len() < size {
                s.push_str(&texts[i % texts.len()]);
                s.push('\n');
                i += 1;
            }
            let mut cut = size;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s
        })
        .collect()
}
