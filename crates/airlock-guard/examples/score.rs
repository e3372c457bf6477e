//! Scores texts for `scripts/guard-eval.py`.
//!
//! - default: one JSON string per line on stdin; one JSON object per line out: `risk`, the evidence ids, and the
//!   microseconds the assessment took.
//! - `--latency`: builds 1 KB and 100 KB texts from the stdin texts and prints p50/p99 assessment times for each
//!   (heuristics and normalisation; 2,000 and 200 runs).

use std::io::{BufRead, Write};
use std::time::Instant;

use airlock_guard::heuristics::Heuristics;
use airlock_guard::score::{Thresholds, assess};

fn main() {
    let h = Heuristics::builtin();
    let texts: Vec<String> = std::io::stdin()
        .lock()
        .lines()
        .map(|l| serde_json::from_str(&l.expect("stdin is readable")).expect("a JSON string per line"))
        .collect();
    if std::env::args().any(|a| a == "--latency") {
        for (size, runs) in [(1_000usize, 2_000usize), (100_000, 200)] {
            let samples = samples(&texts, size, 20);
            let mut times: Vec<f64> = (0..runs)
                .map(|i| {
                    let t = Instant::now();
                    std::hint::black_box(assess(h, &samples[i % samples.len()], None, Thresholds::DEFAULT));
                    t.elapsed().as_secs_f64() * 1e6
                })
                .collect();
            times.sort_by(f64::total_cmp);
            let pick = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
            println!(
                "{{\"bytes\": {size}, \"runs\": {runs}, \"p50_us\": {:.1}, \"p99_us\": {:.1}}}",
                pick(0.5),
                pick(0.99)
            );
        }
        return;
    }
    let mut out = std::io::BufWriter::new(std::io::stdout());
    for text in &texts {
        let t = Instant::now();
        let a = assess(h, text, None, Thresholds::DEFAULT);
        let us = t.elapsed().as_secs_f64() * 1e6;
        let ids: Vec<&str> = a.evidence.iter().map(|e| e.id.as_str()).collect();
        writeln!(out, "{}", serde_json::json!({ "risk": a.risk, "evidence": ids, "us": us })).expect("stdout");
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
