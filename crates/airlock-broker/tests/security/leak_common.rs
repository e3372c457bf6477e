//! A broker that knows one secret and one canary, for the exfiltration tests.

use std::sync::Arc;

use airlock_broker::leak::{LeakScanner, Source};

use crate::common::{self, Harness};

/// What a tool must never get out, whatever the encoding.
pub const SECRET: &str = "sk-live-7Hq2Zr9PbX4mK8vN1cW5";
pub const CANARY: &str = "AIRLOCK-CANARY-5f1e2d3c4b5a6978";

pub fn harness() -> Harness {
    Harness::with(common::POLICY, |c| {
        let mut b = LeakScanner::builder();
        b.add(Source::Secret("default/OPENAI_API_KEY".into()), SECRET.as_bytes());
        b.add(Source::Canary("canary-1".into()), CANARY.as_bytes());
        c.leaks = Arc::new(b.build().unwrap());
    })
}

/// No request the upstream saw holds any 8-byte piece of the secret, in any field.
pub fn upstream_never_saw_the_secret(h: &Harness) {
    for seen in h.upstream.seen.lock().unwrap().iter() {
        let mut all = seen.uri.clone().into_bytes();
        for (k, v) in &seen.headers {
            all.extend_from_slice(k.as_bytes());
            all.extend_from_slice(v.as_bytes());
        }
        all.extend_from_slice(&seen.body);
        for piece in SECRET.as_bytes().windows(8) {
            assert!(!all.windows(8).any(|w| w == piece), "the upstream saw part of the secret: {seen:?}");
        }
    }
}
