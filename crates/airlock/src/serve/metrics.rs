//! Prometheus metrics for the daemon, in the text exposition format.
//!
//! Hand-written rather than a metrics crate: a few counters and one histogram family, kept under one mutex that is
//! held for a map update. Labels are route templates (`/v1/runs/{id}`), never raw paths, so a client cannot grow
//! the series without bound.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Default)]
struct Latency {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    total: u64,
}

#[derive(Default)]
struct Series {
    requests: BTreeMap<(&'static str, &'static str, u16), u64>,
    decisions: BTreeMap<&'static str, u64>,
    latency: BTreeMap<&'static str, Latency>,
    verdicts: BTreeMap<&'static str, u64>,
    tls_handshakes: BTreeMap<&'static str, u64>,
}

#[derive(Default)]
pub struct Metrics {
    series: Mutex<Series>,
}

/// What became of a request, for `airlock_api_decisions_total`.
pub fn decision(status: u16) -> &'static str {
    match status {
        200..=399 => "allow",
        401 | 403 | 429 => "deny",
        400..=499 => "invalid",
        _ => "error",
    }
}

impl Metrics {
    pub fn observe(&self, method: &'static str, route: &'static str, status: u16, took: Duration) {
        let mut s = super::lock(&self.series);
        *s.requests.entry((method, route, status)).or_default() += 1;
        *s.decisions.entry(decision(status)).or_default() += 1;
        let l = s.latency.entry(route).or_default();
        let secs = took.as_secs_f64();
        for (i, &b) in BUCKETS.iter().enumerate() {
            if secs <= b {
                l.counts[i] += 1;
            }
        }
        l.sum += secs;
        l.total += 1;
    }

    /// A guard verdict given through the API (`allow`, `flag`, `block`).
    pub fn verdict(&self, verdict: &'static str) {
        *super::lock(&self.series).verdicts.entry(verdict).or_default() += 1;
    }

    /// A TLS handshake on the mutual-TLS listener: `ok`, `no-certificate`, `bad-certificate`, `protocol`,
    /// `timeout` or `closed`.
    pub fn tls_handshake(&self, outcome: &'static str) {
        *super::lock(&self.series).tls_handshakes.entry(outcome).or_default() += 1;
    }

    /// The exposition text; `gauges` are sampled by the caller at scrape time (name, help, value).
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let s = super::lock(&self.series);
        let mut out = String::new();
        out.push_str("# HELP airlock_api_requests_total API requests by method, route and status.\n");
        out.push_str("# TYPE airlock_api_requests_total counter\n");
        for ((method, route, status), n) in &s.requests {
            let _ = writeln!(
                out,
                "airlock_api_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP airlock_api_decisions_total API requests by outcome: allow, deny, invalid, error.\n");
        out.push_str("# TYPE airlock_api_decisions_total counter\n");
        for (d, n) in &s.decisions {
            let _ = writeln!(out, "airlock_api_decisions_total{{decision=\"{d}\"}} {n}");
        }
        out.push_str("# HELP airlock_guard_verdicts_total Prompt-injection verdicts given through the API.\n");
        out.push_str("# TYPE airlock_guard_verdicts_total counter\n");
        for (v, n) in &s.verdicts {
            let _ = writeln!(out, "airlock_guard_verdicts_total{{verdict=\"{v}\"}} {n}");
        }
        if !s.tls_handshakes.is_empty() {
            out.push_str(
                "# HELP airlock_api_tls_handshakes_total TLS handshakes on the mutual-TLS listener by outcome.\n",
            );
            out.push_str("# TYPE airlock_api_tls_handshakes_total counter\n");
            for (o, n) in &s.tls_handshakes {
                let _ = writeln!(out, "airlock_api_tls_handshakes_total{{outcome=\"{o}\"}} {n}");
            }
        }
        out.push_str("# HELP airlock_api_request_duration_seconds API request latency by route.\n");
        out.push_str("# TYPE airlock_api_request_duration_seconds histogram\n");
        for (route, l) in &s.latency {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "airlock_api_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                    l.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "airlock_api_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                l.total
            );
            let _ = writeln!(out, "airlock_api_request_duration_seconds_sum{{route=\"{route}\"}} {}", l.sum);
            let _ = writeln!(out, "airlock_api_request_duration_seconds_count{{route=\"{route}\"}} {}", l.total);
        }
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_latency_are_counted_by_route_template() {
        let m = Metrics::default();
        m.observe("GET", "/v1/runs/{id}", 200, Duration::from_millis(3));
        m.observe("GET", "/v1/runs/{id}", 404, Duration::from_millis(700));
        m.observe("POST", "/v1/guard/scan", 401, Duration::from_micros(100));
        let text = m.render(&[("airlock_runs_active", "Runs now running.", 2.0)]);
        assert!(text.contains("airlock_api_requests_total{method=\"GET\",route=\"/v1/runs/{id}\",status=\"404\"} 1"));
        assert!(text.contains("airlock_api_decisions_total{decision=\"deny\"} 1"));
        assert!(text.contains("airlock_api_decisions_total{decision=\"allow\"} 1"));
        assert!(text.contains("airlock_api_decisions_total{decision=\"invalid\"} 1"));
        // 3 ms is under the 5 ms bucket but not the 2.5 ms one; 700 ms only from 1 s up.
        assert!(text.contains("airlock_api_request_duration_seconds_bucket{route=\"/v1/runs/{id}\",le=\"0.0025\"} 0"));
        assert!(text.contains("airlock_api_request_duration_seconds_bucket{route=\"/v1/runs/{id}\",le=\"0.005\"} 1"));
        assert!(text.contains("airlock_api_request_duration_seconds_bucket{route=\"/v1/runs/{id}\",le=\"1\"} 2"));
        assert!(text.contains("airlock_api_request_duration_seconds_count{route=\"/v1/runs/{id}\"} 2"));
        assert!(text.contains("airlock_runs_active 2"));
    }
}
