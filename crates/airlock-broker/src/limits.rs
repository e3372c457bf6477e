//! Request rate limits: token buckets per agent, per tool, per host, and a default per (agent, tool) pair.
//!
//! Why: a prompt-injected agent in a loop can hammer an API (running up a bill, tripping the provider's abuse
//! detection) or use request volume itself as a channel. Every request that is attributed and parsed is counted
//! — denied ones too, since each denial costs an audit write — and one that finds any of its buckets empty gets
//! 429 with `Retry-After`, before policy or DNS are asked.
//!
//! From `[rate_limits]` in `airlock.toml`: `global` is one bucket for every request the broker serves; `agents.<name>` is one bucket for all of that agent's tools and runs;
//! `tools.<name>` one bucket per tool name; `hosts.<pattern>` one bucket per pattern, shared by everyone;
//! `default` a bucket per (agent, tool) pair that has neither an agent nor a tool rule. `requests_per_minute`
//! is the steady rate and `burst` (default: the per-minute rate) how many may come at once.
//!
//! Buckets are checked one after another; when a later one refuses, the cells earlier ones gave stay spent. That
//! errs toward limiting, never toward letting more through.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use airlock_policy::config::{RateLimit, RateLimits};
use airlock_policy::normalize::{HostName, HostPattern};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::principal::Principal;

/// A refusal: which bucket, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    pub bucket: String,
    pub retry_after: Duration,
}

/// The broker's rate limiter, built from `[rate_limits]`.
pub struct Limiter {
    clock: DefaultClock,
    global: Option<DefaultDirectRateLimiter>,
    default: Option<DefaultKeyedRateLimiter<(String, String)>>,
    agents: HashMap<String, DefaultDirectRateLimiter>,
    tools: HashMap<String, DefaultDirectRateLimiter>,
    hosts: Vec<(HostPattern, String, DefaultDirectRateLimiter)>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("default", &self.default.is_some())
            .field("agents", &self.agents.len())
            .field("tools", &self.tools.len())
            .field("hosts", &self.hosts.len())
            .finish()
    }
}

fn quota(r: &RateLimit) -> Option<Quota> {
    let rpm = NonZeroU32::new(r.requests_per_minute?)?;
    let burst = r.burst.and_then(NonZeroU32::new).unwrap_or(rpm);
    Some(Quota::per_minute(rpm).allow_burst(burst))
}

impl Limiter {
    /// No limits at all.
    pub fn none() -> Limiter {
        Limiter {
            clock: DefaultClock::default(),
            global: None,
            default: None,
            agents: HashMap::new(),
            tools: HashMap::new(),
            hosts: Vec::new(),
        }
    }

    /// From the config section. Host patterns that do not parse were already refused when the config loaded;
    /// here they are skipped.
    pub fn from_config(c: &RateLimits) -> Limiter {
        let mut l = Limiter::none();
        l.global = c.global.as_ref().and_then(quota).map(RateLimiter::direct);
        l.default = c.default.as_ref().and_then(quota).map(RateLimiter::keyed);
        for (name, r) in &c.agents {
            if let Some(q) = quota(r) {
                l.agents.insert(name.get_ref().clone(), RateLimiter::direct(q));
            }
        }
        for (name, r) in &c.tools {
            if let Some(q) = quota(r) {
                l.tools.insert(name.get_ref().clone(), RateLimiter::direct(q));
            }
        }
        for (pattern, r) in &c.hosts {
            if let (Ok(p), Some(q)) = (HostPattern::parse(pattern.get_ref()), quota(r)) {
                l.hosts.push((p, pattern.get_ref().clone(), RateLimiter::direct(q)));
            }
        }
        l
    }

    /// Takes one request from every bucket that applies, or says which one is empty.
    pub fn check(&self, p: &Principal, host: &HostName, port: u16, default_port: bool) -> Result<(), Limited> {
        let now = self.clock.now();
        let refuse = |bucket: String, not_until: governor::NotUntil<_>| Limited {
            bucket,
            retry_after: not_until.wait_time_from(now),
        };
        if let Some(g) = &self.global {
            g.check().map_err(|n| refuse("global".into(), n))?;
        }
        let agent = self.agents.get(&p.agent);
        let tool = self.tools.get(&p.tool);
        if let Some(a) = agent {
            a.check().map_err(|n| refuse(format!("agent {}", p.agent), n))?;
        }
        if let Some(t) = tool {
            t.check().map_err(|n| refuse(format!("tool {}", p.tool), n))?;
        }
        if let (None, None, Some(d)) = (agent, tool, &self.default) {
            d.check_key(&(p.agent.clone(), p.tool.clone()))
                .map_err(|n| refuse(format!("default for {} / {}", p.agent, p.tool), n))?;
        }
        for (pattern, text, bucket) in &self.hosts {
            if pattern.matches(host, port, default_port) {
                bucket.check().map_err(|n| refuse(format!("host {text}"), n))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[rate_limits]` as the policy loader reads it.
    fn limits(section: &str) -> Limiter {
        let doc = crate::load_test_policy(&format!("version = 1\n{section}"));
        Limiter::from_config(&doc.file.rate_limits)
    }

    fn host(h: &str) -> HostName {
        HostName::parse(h).unwrap()
    }

    #[test]
    fn a_burst_then_refusal_with_a_retry_after() {
        let l = limits("[rate_limits.agents.a]\nrequests_per_minute = 60\nburst = 3\n");
        let p = Principal::new("a", "t", "r");
        for _ in 0..3 {
            l.check(&p, &host("x.example.com"), 443, true).unwrap();
        }
        let e = l.check(&p, &host("x.example.com"), 443, true).unwrap_err();
        assert_eq!(e.bucket, "agent a");
        assert!(e.retry_after > Duration::ZERO && e.retry_after <= Duration::from_secs(1), "{e:?}");
        // Another agent has its own (here: no) limit.
        l.check(&Principal::new("b", "t", "r"), &host("x.example.com"), 443, true).unwrap();
    }

    #[test]
    fn default_applies_per_agent_and_tool_pair_and_hosts_are_shared() {
        let l = limits(
            "[rate_limits.default]\nrequests_per_minute = 1\nburst = 1\n\
             [rate_limits.hosts.\"api.example.com\"]\nrequests_per_minute = 2\nburst = 2\n",
        );
        let (a, b) = (Principal::new("a", "t", "r"), Principal::new("b", "t", "r"));
        l.check(&a, &host("api.example.com"), 443, true).unwrap();
        assert_eq!(l.check(&a, &host("other.example.com"), 443, true).unwrap_err().bucket, "default for a / t");
        l.check(&b, &host("api.example.com"), 443, true).unwrap();
        let c = Principal::new("c", "t", "r");
        assert_eq!(l.check(&c, &host("api.example.com"), 443, true).unwrap_err().bucket, "host api.example.com");
    }

    #[test]
    fn the_global_bucket_is_shared_by_everyone() {
        let l = limits("[rate_limits.global]\nrequests_per_minute = 60\nburst = 2\n");
        l.check(&Principal::new("a", "t", "r"), &host("x.example.com"), 443, true).unwrap();
        l.check(&Principal::new("b", "u", "s"), &host("y.example.com"), 80, true).unwrap();
        let e = l.check(&Principal::new("c", "v", "w"), &host("z.example.com"), 443, true).unwrap_err();
        assert_eq!(e.bucket, "global");
    }

    #[test]
    fn no_config_never_limits() {
        let l = Limiter::none();
        for _ in 0..10_000 {
            l.check(&Principal::new("a", "t", "r"), &host("x.example.com"), 443, true).unwrap();
        }
    }
}
