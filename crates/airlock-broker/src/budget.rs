//! Egress budgets: how much one run may send in total, and how many bytes an hour may go out per agent, tool or
//! host.
//!
//! Why: request-rate limits ([`crate::limits`]) count requests per minute, so a prompt-injected tool that trickles
//! data out slowly stays under them forever. Budgets give exfiltration a ceiling whatever its pace: over a run's
//! whole life, the bytes it sends upstream, the requests it makes and the distinct hosts it reaches are capped, and
//! `egress_bytes_per_hour` caps the byte rate.
//!
//! From `airlock.toml`:
//! - `[budgets] run`: per run (one agent running one tool in one run, as the broker attributes it), for the run's
//!   whole life: `egress_bytes`, `requests`, `distinct_hosts`.
//! - `[budgets.hosts.<pattern>]`: per run *and* pattern, counting only traffic to matching hosts.
//! - `[rate_limits] egress_bytes_per_hour`: a byte bucket holding an hour's worth and refilling steadily, keyed
//!   like the request buckets: `agents.<name>` one for the agent, `tools.<name>` one per tool name, `hosts.<pattern>`
//!   one per pattern shared by everyone, `default` one per (agent, tool) pair with no agent or tool byte bucket.
//!
//! Bytes are what goes upstream: the request line and headers as sent, the body as sent, and what a tool writes
//! into a CONNECT tunnel. [`Budgets::admit`] is called once per request or tunnel, after the decision and before
//! anything is sent; the [`Meter`] it returns charges the body as it goes, and the caller cuts the stream when it
//! refuses. A refusal changes no counter (a blocked run does not drift further over its budget); bytes charged
//! before it stay charged.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_policy::config::{self, RateLimit, RateLimits};
use airlock_policy::normalize::{HostName, HostPattern};

use crate::lock;
use crate::principal::Principal;

/// Most runs (and most (agent, tool) byte buckets) tracked at once. Runs are named by the broker's attribution, not
/// by the tool, but a daemon that serves runs for weeks must still not grow without bound.
pub const MAX_RUNS: usize = 65_536;

/// When the table is full, runs idle this long are forgotten. Forgetting a run resets its budget, so only runs that
/// have most likely ended may go, and never one with a request or tunnel still open.
pub const IDLE_EVICTION: Duration = Duration::from_secs(3600);

/// Nanoseconds in an hour: byte buckets count in bytes × this, so an hourly rate needs no rounding.
const HOUR_NS: u128 = 3_600_000_000_000;

/// A refusal: which budget, and for the hourly buckets, when enough will have refilled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    /// Human-readable: `run egress_bytes (50 MiB)`, `hosts.api.openai.com requests (1000)`,
    /// `tools.fetch egress_bytes_per_hour (10 MiB)`, `budget table full`.
    pub budget: String,
    /// Some only for the hourly buckets: a whole-life budget never comes back.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "egress budget exhausted: {}", self.budget)
    }
}

/// The broker's egress budgets, built from `[budgets]` and `[rate_limits]`.
pub struct Budgets {
    /// None when nothing is configured, so that the per-request cost is one branch.
    inner: Option<Arc<Inner>>,
}

impl fmt::Debug for Budgets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(i) = &self.inner else { return f.write_str("Budgets(none)") };
        f.debug_struct("Budgets")
            .field("run", &i.run)
            .field("hosts", &i.hosts.len())
            .field("agents", &i.agents.len())
            .field("tools", &i.tools.len())
            .field("default_per_hour", &i.default_per_hour)
            .field("runs", &lock(&i.runs).len())
            .finish()
    }
}

/// Whole-life limits of one budget.
#[derive(Debug, Clone, Copy, Default)]
struct Limits {
    bytes: Option<u64>,
    requests: Option<u64>,
    distinct_hosts: Option<u32>,
}

impl Limits {
    fn of(b: &config::Budget) -> Limits {
        Limits { bytes: b.egress_bytes.map(|s| s.0), requests: b.requests, distinct_hosts: b.distinct_hosts }
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_none() && self.requests.is_none() && self.distinct_hosts.is_none()
    }
}

/// A host pattern with a per-run budget, an hourly byte bucket shared by everyone, or both.
struct HostRule {
    pattern: HostPattern,
    text: String,
    limits: Limits,
    hourly: Option<ByteBucket>,
}

struct Inner {
    clock: Clock,
    max_runs: usize,
    run: Limits,
    hosts: Vec<HostRule>,
    agents: HashMap<String, Arc<ByteBucket>>,
    tools: HashMap<String, Arc<ByteBucket>>,
    default_per_hour: Option<u64>,
    /// The `default` bucket of each (agent, tool) pair seen; runs hold them, so they are found once per run.
    pairs: Mutex<HashMap<(String, String), Arc<ByteBucket>>>,
    runs: Mutex<HashMap<Principal, Arc<Run>>>,
}

/// One run's counters. The table hands out the `Arc`, so a request locks the table only to find its run.
struct Run {
    /// The agent, tool or default byte buckets this run's bytes go to, found when the run is first seen.
    hourly: Vec<Arc<ByteBucket>>,
    state: Mutex<RunState>,
}

struct RunState {
    requests: u64,
    bytes: u64,
    /// Hosts reached, kept only when a `distinct_hosts` budget exists; it never holds more than that budget.
    hosts_seen: HashSet<HostName>,
    /// Per [`HostRule`] index; empty until the run first reaches a host some rule matches.
    per_host: Vec<HostUse>,
    last_active: Instant,
}

#[derive(Debug, Clone, Copy, Default)]
struct HostUse {
    requests: u64,
    bytes: u64,
}

/// Indices of the host rules a destination matches. None (no allocation) when it matches none.
#[derive(Clone, Default)]
struct Matches(Option<Arc<[u32]>>);

impl Matches {
    fn iter(&self) -> impl Iterator<Item = usize> + Clone + '_ {
        self.0.iter().flat_map(|m| m.iter()).map(|i| *i as usize)
    }
}

impl Budgets {
    /// No budgets at all.
    pub fn none() -> Budgets {
        Budgets { inner: None }
    }

    /// From the config sections. Host patterns that do not parse were already refused when the config loaded; here
    /// they are skipped.
    pub fn from_config(rate: &RateLimits, budgets: &config::Budgets) -> Budgets {
        Budgets::with_max_runs(rate, budgets, MAX_RUNS)
    }

    /// As [`Budgets::from_config`], tracking at most `max_runs` runs (and (agent, tool) pairs).
    pub fn with_max_runs(rate: &RateLimits, budgets: &config::Budgets, max_runs: usize) -> Budgets {
        let clock = Clock::default();
        let now = clock.now();
        let mut hosts: Vec<HostRule> = Vec::new();
        for (text, b) in &budgets.hosts {
            let limits = Limits::of(b);
            if let (Ok(pattern), false) = (HostPattern::parse(text.get_ref()), limits.is_empty()) {
                hosts.push(HostRule { pattern, text: text.get_ref().clone(), limits, hourly: None });
            }
        }
        for (text, r) in &rate.hosts {
            let (Ok(pattern), Some(n)) = (HostPattern::parse(text.get_ref()), r.egress_bytes_per_hour) else {
                continue;
            };
            let n = n.0;
            let bucket =
                ByteBucket::new(n, format!("hosts.{} egress_bytes_per_hour ({})", text.get_ref(), human(n)), now);
            match hosts.iter_mut().find(|h| h.text == *text.get_ref()) {
                Some(rule) => rule.hourly = Some(bucket),
                None => hosts.push(HostRule {
                    pattern,
                    text: text.get_ref().clone(),
                    limits: Limits::default(),
                    hourly: Some(bucket),
                }),
            }
        }
        let inner = Inner {
            run: budgets.run.as_ref().map(|r| Limits::of(r.get_ref())).unwrap_or_default(),
            hosts,
            agents: named("agents", rate.agents.iter().map(|(k, r)| (k.get_ref(), r)), now),
            tools: named("tools", rate.tools.iter().map(|(k, r)| (k.get_ref(), r)), now),
            default_per_hour: rate.default.as_ref().and_then(|r| r.egress_bytes_per_hour).map(|s| s.0),
            pairs: Mutex::new(HashMap::new()),
            runs: Mutex::new(HashMap::new()),
            max_runs,
            clock,
        };
        let empty = inner.run.is_empty()
            && inner.hosts.is_empty()
            && inner.agents.is_empty()
            && inner.tools.is_empty()
            && inner.default_per_hour.is_none();
        Budgets { inner: (!empty).then(|| Arc::new(inner)) }
    }

    /// True when nothing is configured: every request is admitted with [`Meter::unmetered`].
    pub fn is_empty(&self) -> bool {
        self.inner.is_none()
    }

    /// Called once per request (and once per CONNECT tunnel) after the decision, before anything is sent upstream.
    /// Counts the request and the host toward the `requests` and `distinct_hosts` budgets and refuses if any is
    /// spent; a refused request is not counted, so a blocked run does not keep drifting. `head_bytes` (the request
    /// line and headers as they will be sent) is charged at once, and a head that does not fit refuses the request.
    pub fn admit(
        &self,
        p: &Principal,
        host: &HostName,
        port: u16,
        default_port: bool,
        head_bytes: u64,
    ) -> Result<Meter, Exceeded> {
        let Some(inner) = &self.inner else { return Ok(Meter::unmetered()) };
        let now = inner.clock.now();
        let run = inner.run_for(p, now)?;
        let matches = inner.matching(host, port, default_port);
        {
            let mut st = lock(&run.state);
            // An attempt, even a refused one, keeps the run from being evicted (which would reset its budget).
            st.last_active = now;
            inner.check_counts(&st, host, &matches)?;
            inner.charge_locked(&run, &mut st, &matches, head_bytes, now)?;
            // Nothing can refuse past this point: count the request.
            st.requests += 1;
            if matches.0.is_some() && st.per_host.is_empty() {
                st.per_host = vec![HostUse::default(); inner.hosts.len()];
            }
            for i in matches.iter() {
                st.per_host[i].requests += 1;
            }
            if inner.run.distinct_hosts.is_some() && !st.hosts_seen.contains(host) {
                st.hosts_seen.insert(host.clone());
            }
        }
        Ok(Meter { m: Some(Metered { inner: inner.clone(), run, matches }) })
    }
}

/// The `egress_bytes_per_hour` buckets of `[rate_limits.agents]` or `[rate_limits.tools]`, by name.
fn named<'a>(
    section: &str,
    entries: impl Iterator<Item = (&'a String, &'a RateLimit)>,
    now: Instant,
) -> HashMap<String, Arc<ByteBucket>> {
    let buckets = entries.filter_map(|(name, r)| {
        let n = r.egress_bytes_per_hour?.0;
        let label = format!("{section}.{name} egress_bytes_per_hour ({})", human(n));
        Some((name.clone(), Arc::new(ByteBucket::new(n, label, now))))
    });
    buckets.collect()
}

impl Inner {
    /// The run's entry, made on first sight. When the table is full, idle runs go; if none can, the request is
    /// refused: a run the broker cannot count must not go uncounted.
    fn run_for(&self, p: &Principal, now: Instant) -> Result<Arc<Run>, Exceeded> {
        let mut runs = lock(&self.runs);
        if let Some(r) = runs.get(p) {
            return Ok(r.clone());
        }
        if runs.len() >= self.max_runs {
            // strong_count 1: only the table holds it, so no request or tunnel of that run is in flight. Clones are
            // made only under this lock (or from a live Meter), so the count cannot rise while we look.
            runs.retain(|_, r| {
                Arc::strong_count(r) > 1 || now.saturating_duration_since(lock(&r.state).last_active) <= IDLE_EVICTION
            });
            if runs.len() >= self.max_runs {
                return Err(table_full());
            }
        }
        let run = Arc::new(Run { hourly: self.principal_buckets(p, now)?, state: Mutex::new(RunState::new(now)) });
        runs.insert(p.clone(), run.clone());
        Ok(run)
    }

    /// The agent's and the tool's byte buckets, or, when neither has one, the pair's `default` bucket.
    fn principal_buckets(&self, p: &Principal, now: Instant) -> Result<Vec<Arc<ByteBucket>>, Exceeded> {
        let mut out: Vec<Arc<ByteBucket>> =
            self.agents.get(&p.agent).into_iter().chain(self.tools.get(&p.tool)).cloned().collect();
        if out.is_empty()
            && let Some(n) = self.default_per_hour
        {
            let mut pairs = lock(&self.pairs);
            let key = (p.agent.clone(), p.tool.clone());
            if let Some(b) = pairs.get(&key) {
                out.push(b.clone());
            } else {
                if pairs.len() >= self.max_runs {
                    // A bucket no run holds that has refilled completely is the same as a new one: forgetting it
                    // loses nothing.
                    pairs.retain(|_, b| Arc::strong_count(b) > 1 || !b.is_unused(now));
                    if pairs.len() >= self.max_runs {
                        return Err(table_full());
                    }
                }
                let label = format!("default egress_bytes_per_hour ({}) for {} / {}", human(n), p.agent, p.tool);
                let b = Arc::new(ByteBucket::new(n, label, now));
                pairs.insert(key, b.clone());
                out.push(b);
            }
        }
        Ok(out)
    }

    fn matching(&self, host: &HostName, port: u16, default_port: bool) -> Matches {
        if self.hosts.is_empty() {
            return Matches(None);
        }
        let found: Vec<u32> = (0..self.hosts.len() as u32)
            .filter(|i| self.hosts[*i as usize].pattern.matches(host, port, default_port))
            .collect();
        Matches((!found.is_empty()).then(|| found.into()))
    }

    /// Would one more request to `host` fit the run's and the matching host rules' request and host budgets?
    fn check_counts(&self, st: &RunState, host: &HostName, matches: &Matches) -> Result<(), Exceeded> {
        if let Some(max) = self.run.requests
            && st.requests >= max
        {
            return Err(whole_life(format!("run requests ({max})")));
        }
        if let Some(max) = self.run.distinct_hosts
            && st.hosts_seen.len() >= max as usize
            && !st.hosts_seen.contains(host)
        {
            return Err(whole_life(format!("run distinct_hosts ({max})")));
        }
        for i in matches.iter() {
            let rule = &self.hosts[i];
            let used = st.per_host.get(i).map_or(0, |u| u.requests);
            if let Some(max) = rule.limits.requests
                && used >= max
            {
                return Err(whole_life(format!("hosts.{} requests ({max})", rule.text)));
            }
        }
        Ok(())
    }

    /// Charges `n` bytes to every bytes budget of the run and destination, or to none of them. The caller holds the
    /// run's lock; the hourly buckets are shared, so each is taken under its own lock and given back if a later one
    /// refuses (a concurrent request may then see one refuse a moment early: that errs toward limiting).
    fn charge_locked(
        &self,
        run: &Run,
        st: &mut RunState,
        matches: &Matches,
        n: u64,
        now: Instant,
    ) -> Result<(), Exceeded> {
        if n == 0 {
            return Ok(());
        }
        let total = st.bytes.saturating_add(n);
        if let Some(max) = self.run.bytes
            && total > max
        {
            return Err(whole_life(format!("run egress_bytes ({})", human(max))));
        }
        for i in matches.iter() {
            let rule = &self.hosts[i];
            let used = st.per_host.get(i).map_or(0, |u| u.bytes);
            if let Some(max) = rule.limits.bytes
                && used.saturating_add(n) > max
            {
                return Err(whole_life(format!("hosts.{} egress_bytes ({})", rule.text, human(max))));
            }
        }
        let hourly =
            run.hourly.iter().map(|b| &**b).chain(matches.iter().filter_map(|i| self.hosts[i].hourly.as_ref()));
        for (taken, bucket) in hourly.clone().enumerate() {
            if let Err(e) = bucket.take(n, now) {
                for earlier in hourly.clone().take(taken) {
                    earlier.refund(n);
                }
                return Err(e);
            }
        }
        st.bytes = total;
        if matches.0.is_some() && st.per_host.is_empty() {
            st.per_host = vec![HostUse::default(); self.hosts.len()];
        }
        for i in matches.iter() {
            st.per_host[i].bytes = st.per_host[i].bytes.saturating_add(n);
        }
        Ok(())
    }
}

impl RunState {
    fn new(now: Instant) -> RunState {
        RunState { requests: 0, bytes: 0, hosts_seen: HashSet::new(), per_host: Vec::new(), last_active: now }
    }
}

fn whole_life(budget: String) -> Exceeded {
    Exceeded { budget, retry_after: None }
}

fn table_full() -> Exceeded {
    whole_life("budget table full".into())
}

/// Charges the bytes of one admitted request or tunnel. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Meter {
    m: Option<Metered>,
}

#[derive(Clone)]
struct Metered {
    inner: Arc<Inner>,
    run: Arc<Run>,
    matches: Matches,
}

impl fmt::Debug for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.m.is_some() { "Meter" } else { "Meter(unmetered)" })
    }
}

impl Meter {
    /// Charges `n` more bytes. Errs once any bytes budget (run, host, or hourly bucket) would be exceeded, charging
    /// nothing for this call; the caller then cuts the body or tunnel. Bytes already charged stay charged.
    pub fn charge(&self, n: u64) -> Result<(), Exceeded> {
        let Some(m) = &self.m else { return Ok(()) };
        if n == 0 {
            return Ok(());
        }
        let now = m.inner.clock.now();
        let mut st = lock(&m.run.state);
        st.last_active = now;
        m.inner.charge_locked(&m.run, &mut st, &m.matches, n, now)
    }

    /// A meter that never refuses and never locks, for when no budgets are configured.
    pub fn unmetered() -> Meter {
        Meter { m: None }
    }

    /// False for [`Meter::unmetered`]: the caller may skip counting bytes at all.
    pub fn is_metered(&self) -> bool {
        self.m.is_some()
    }
}

/// Where a body that ran out of budget leaves the refusal, for the proxy to answer with.
pub type ExceededSlot = Arc<Mutex<Option<Exceeded>>>;

/// A request body charged to a [`Meter`] frame by frame. A frame the budget cannot pay for is not sent: the body
/// fails (the upstream request is aborted) and the refusal is left in the slot.
pub struct MeteredBody {
    inner: crate::upstream::Body,
    meter: Meter,
    exceeded: ExceededSlot,
}

impl MeteredBody {
    pub fn new(inner: crate::upstream::Body, meter: Meter, exceeded: ExceededSlot) -> MeteredBody {
        MeteredBody { inner, meter, exceeded }
    }
}

impl hyper::body::Body for MeteredBody {
    type Data = bytes::Bytes;
    type Error = crate::upstream::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
            && let Err(e) = this.meter.charge(data.len() as u64)
        {
            let message = e.to_string();
            *lock(&this.exceeded) = Some(e);
            return std::task::Poll::Ready(Some(Err(message.into())));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A byte bucket that holds `per_hour` bytes and refills at `per_hour` an hour. Its own refill rather than
/// governor's, because governor counts in `u32` cells and an hour's bytes do not fit.
struct ByteBucket {
    per_hour: u64,
    label: String,
    level: Mutex<Level>,
}

struct Level {
    /// Bytes in the bucket × [`HOUR_NS`]; refilling `per_hour` bytes an hour drains `per_hour` units a nanosecond.
    used: u128,
    at: Instant,
}

impl ByteBucket {
    fn new(per_hour: u64, label: String, now: Instant) -> ByteBucket {
        ByteBucket { per_hour, label, level: Mutex::new(Level { used: 0, at: now }) }
    }

    fn drain(&self, l: &mut Level, now: Instant) {
        let elapsed = now.saturating_duration_since(l.at).as_nanos();
        l.used = l.used.saturating_sub(elapsed.saturating_mul(u128::from(self.per_hour)));
        l.at = l.at.max(now);
    }

    fn take(&self, n: u64, now: Instant) -> Result<(), Exceeded> {
        let mut l = lock(&self.level);
        self.drain(&mut l, now);
        let cap = u128::from(self.per_hour) * HOUR_NS;
        let want = u128::from(n) * HOUR_NS;
        // No overflow: used <= cap < 2^64 * 2^42, and so is want.
        if l.used + want <= cap {
            l.used += want;
            return Ok(());
        }
        // When enough will have drained. More than the whole bucket never fits: a full refill is the honest answer.
        let wait_ns = if want > cap || self.per_hour == 0 {
            HOUR_NS
        } else {
            (l.used + want - cap).div_ceil(u128::from(self.per_hour))
        };
        let retry = Duration::from_nanos(u64::try_from(wait_ns).unwrap_or(u64::MAX));
        Err(Exceeded { budget: self.label.clone(), retry_after: Some(retry) })
    }

    fn refund(&self, n: u64) {
        let mut l = lock(&self.level);
        l.used = l.used.saturating_sub(u128::from(n) * HOUR_NS);
    }

    /// Refilled completely: indistinguishable from a new bucket.
    fn is_unused(&self, now: Instant) -> bool {
        let mut l = lock(&self.level);
        self.drain(&mut l, now);
        l.used == 0
    }
}

/// The clock, which tests can move forward instead of sleeping.
#[derive(Default)]
struct Clock {
    #[cfg(test)]
    skew_ns: std::sync::atomic::AtomicU64,
}

impl Clock {
    #[cfg(not(test))]
    fn now(&self) -> Instant {
        Instant::now()
    }

    #[cfg(test)]
    fn now(&self) -> Instant {
        Instant::now() + Duration::from_nanos(self.skew_ns.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// A size as it was most likely written: `50 MiB`, `1 GB`, `1500 B`.
fn human(n: u64) -> String {
    const UNITS: [(u64, &str); 8] = [
        (1 << 10, "KiB"),
        (1 << 20, "MiB"),
        (1 << 30, "GiB"),
        (1 << 40, "TiB"),
        (1_000, "KB"),
        (1_000_000, "MB"),
        (1_000_000_000, "GB"),
        (1_000_000_000_000, "TB"),
    ];
    let best = UNITS.iter().filter(|(u, _)| n >= *u && n.is_multiple_of(*u)).min_by_key(|(u, _)| n / u);
    match best {
        Some((u, name)) => format!("{} {name}", n / u),
        None => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[rate_limits]` and `[budgets]` as the policy loader reads them (validated, as the broker gets them).
    fn budgets(sections: &str, max_runs: usize) -> Budgets {
        let text = format!("version = 1\n[agents.a]\n[agents.b]\n[tools.t]\n[tools.fetch]\n{sections}");
        let doc = crate::load_test_policy(&text);
        let (model, _) = airlock_policy::model::build(&doc).unwrap();
        Budgets::with_max_runs(&model.file.rate_limits, &model.file.budgets, max_runs)
    }

    fn host(h: &str) -> HostName {
        HostName::parse(h).unwrap()
    }

    fn run(r: &str) -> Principal {
        Principal::new("a", "t", r)
    }

    /// A request to `h` on 443 with a head of `head` bytes.
    fn admit(b: &Budgets, p: &Principal, h: &str, head: u64) -> Result<Meter, Exceeded> {
        b.admit(p, &host(h), 443, true, head)
    }

    fn advance(b: &Budgets, d: Duration) {
        let clock = &b.inner.as_ref().unwrap().clock;
        clock.skew_ns.fetch_add(d.as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
    }

    #[test]
    fn requests_stop_at_exactly_the_budget_and_runs_are_separate() {
        let b = budgets("[budgets]\nrun = { requests = 3 }\n", MAX_RUNS);
        for _ in 0..3 {
            admit(&b, &run("r1"), "x.example.com", 10).unwrap();
        }
        let e = admit(&b, &run("r1"), "x.example.com", 10).unwrap_err();
        assert_eq!(e, Exceeded { budget: "run requests (3)".into(), retry_after: None });
        // Another run, and the same run id under another tool, have budgets of their own.
        admit(&b, &run("r2"), "x.example.com", 10).unwrap();
        admit(&b, &Principal::new("a", "fetch", "r1"), "x.example.com", 10).unwrap();
    }

    #[test]
    fn bytes_stop_where_a_charge_would_cross_the_budget_and_a_refused_charge_costs_nothing() {
        let b = budgets("[budgets]\nrun = { egress_bytes = 100 }\n", MAX_RUNS);
        let m = admit(&b, &run("r"), "x.example.com", 40).unwrap();
        let e = m.charge(61).unwrap_err();
        assert_eq!(e.budget, "run egress_bytes (100 B)");
        assert_eq!(e.retry_after, None);
        m.charge(60).unwrap(); // exactly at the budget: the refused 61 took nothing
        assert!(m.charge(1).is_err());
        m.charge(0).unwrap();
        // A new request's head no longer fits either, and a clone of the meter shares the count.
        assert_eq!(admit(&b, &run("r"), "x.example.com", 1).unwrap_err().budget, "run egress_bytes (100 B)");
        assert!(m.clone().charge(1).is_err());
        admit(&b, &run("other"), "x.example.com", 100).unwrap();
    }

    #[test]
    fn distinct_hosts_counts_new_hosts_only_and_a_refused_one_is_not_remembered() {
        let b = budgets("[budgets]\nrun = { distinct_hosts = 2, requests = 6 }\n", MAX_RUNS);
        let r = run("r");
        admit(&b, &r, "a.example.com", 1).unwrap();
        admit(&b, &r, "b.example.com", 1).unwrap();
        admit(&b, &r, "a.example.com", 1).unwrap();
        b.admit(&r, &host("a.example.com"), 8443, false, 1).unwrap(); // another port is the same host
        assert_eq!(admit(&b, &r, "c.example.com", 1).unwrap_err().budget, "run distinct_hosts (2)");
        assert!(admit(&b, &r, "c.example.com", 1).is_err(), "a refused host must not be remembered");
        // The refused requests were not counted toward `requests` either: two of six remain.
        admit(&b, &r, "b.example.com", 1).unwrap();
        admit(&b, &r, "b.example.com", 1).unwrap();
        assert_eq!(admit(&b, &r, "b.example.com", 1).unwrap_err().budget, "run requests (6)");
    }

    #[test]
    fn host_budgets_apply_per_run_and_only_to_matching_hosts() {
        let b = budgets(
            "[budgets]\nrun = { requests = 4 }\n[budgets.hosts.\"*.example.com\"]\nrequests = 2\negress_bytes = \"1KiB\"\n",
            MAX_RUNS,
        );
        let r = run("r");
        let m = admit(&b, &r, "x.example.com", 24).unwrap();
        m.charge(1000).unwrap();
        assert_eq!(m.charge(1).unwrap_err().budget, "hosts.*.example.com egress_bytes (1 KiB)");
        // The pattern's budget is shared by the hosts it matches, within the run.
        assert_eq!(admit(&b, &r, "y.example.com", 1).unwrap_err().budget, "hosts.*.example.com egress_bytes (1 KiB)");
        admit(&b, &r, "y.example.com", 0).unwrap();
        assert_eq!(admit(&b, &r, "z.example.com", 0).unwrap_err().budget, "hosts.*.example.com requests (2)");
        // Other hosts only meet the run budget: the refused requests above were not counted toward it.
        let other = admit(&b, &r, "example.org", 10).unwrap();
        other.charge(1 << 20).unwrap();
        admit(&b, &r, "example.com", 10).unwrap(); // not strictly below example.com
        assert_eq!(admit(&b, &r, "example.org", 10).unwrap_err().budget, "run requests (4)");
        // Another run starts afresh.
        admit(&b, &run("r2"), "x.example.com", 1000).unwrap();
    }

    #[test]
    fn a_host_pattern_without_a_port_matches_only_the_default_port() {
        let b = budgets("[budgets.hosts.\"api.example.com\"]\nrequests = 1\n", MAX_RUNS);
        let r = run("r");
        admit(&b, &r, "api.example.com", 1).unwrap();
        b.admit(&r, &host("api.example.com"), 8443, false, 1).unwrap();
        assert!(admit(&b, &r, "api.example.com", 1).is_err());
    }

    #[test]
    fn hourly_buckets_refuse_with_a_retry_after_and_refill() {
        let b = budgets("[rate_limits.tools.fetch]\negress_bytes_per_hour = 3600\n", MAX_RUNS);
        let (p, q) = (Principal::new("a", "fetch", "r1"), Principal::new("b", "fetch", "r2"));
        let m = admit(&b, &p, "x.example.com", 600).unwrap();
        m.charge(3000).unwrap();
        let e = m.charge(2).unwrap_err();
        assert_eq!(e.budget, "tools.fetch egress_bytes_per_hour (3600 B)");
        // One byte a second refills; two bytes need two seconds (less the few nanoseconds already gone).
        let retry = e.retry_after.unwrap();
        assert!(retry > Duration::from_millis(1900) && retry <= Duration::from_secs(2), "{retry:?}");
        // The bucket is per tool name, shared by every agent and run; another tool has none.
        assert!(admit(&b, &q, "x.example.com", 1).unwrap_err().retry_after.is_some());
        admit(&b, &run("r3"), "x.example.com", 1 << 30).unwrap();
        advance(&b, Duration::from_secs(2));
        m.charge(2).unwrap();
        advance(&b, Duration::from_secs(3600));
        m.charge(3600).unwrap();
        // More than the whole bucket never fits: come back after a full refill.
        advance(&b, Duration::from_secs(3600));
        assert_eq!(m.charge(3601).unwrap_err().retry_after, Some(Duration::from_secs(3600)));
    }

    #[test]
    fn hourly_buckets_take_all_or_nothing_and_the_default_is_per_pair_without_its_own() {
        let b = budgets(
            "[rate_limits.default]\negress_bytes_per_hour = 10\n\
             [rate_limits.agents.a]\negress_bytes_per_hour = 100\n\
             [rate_limits.tools.fetch]\negress_bytes_per_hour = 50\n\
             [rate_limits.hosts.\"api.example.com\"]\negress_bytes_per_hour = \"16TiB\"\n",
            MAX_RUNS,
        );
        // a/fetch meets the agent bucket (100) and the tool bucket (50): 60 fails at the tool and the agent's
        // share is given back, so a/t (agent bucket only) can still send all 100.
        let e = admit(&b, &Principal::new("a", "fetch", "r"), "x.example.com", 60).unwrap_err();
        assert_eq!(e.budget, "tools.fetch egress_bytes_per_hour (50 B)");
        admit(&b, &Principal::new("a", "t", "r"), "x.example.com", 100).unwrap();
        // b/t has neither: the default, per (agent, tool) pair, shared by that pair's runs.
        admit(&b, &Principal::new("b", "t", "r1"), "x.example.com", 10).unwrap();
        let e = admit(&b, &Principal::new("b", "t", "r2"), "x.example.com", 1).unwrap_err();
        assert_eq!(e.budget, "default egress_bytes_per_hour (10 B) for b / t");
        admit(&b, &Principal::new("c", "t", "r1"), "x.example.com", 10).unwrap();
        // Large hourly values work in u64 bytes: 16 TiB is more than a u32 of anything.
        let m = admit(&b, &Principal::new("c", "u", "r"), "api.example.com", 0).unwrap();
        assert!(m.charge(16 << 40).is_err(), "the pair's default (10 B) still applies");
        let big = budgets("[rate_limits.hosts.\"api.example.com\"]\negress_bytes_per_hour = \"16TiB\"\n", MAX_RUNS);
        let m = admit(&big, &run("r"), "api.example.com", 0).unwrap();
        m.charge(16 << 40).unwrap();
        assert_eq!(m.charge(1 << 20).unwrap_err().budget, "hosts.api.example.com egress_bytes_per_hour (16 TiB)");
    }

    #[test]
    fn no_budgets_never_refuse_and_cost_no_state() {
        for b in [Budgets::none(), budgets("[rate_limits.default]\nrequests_per_minute = 5\n", MAX_RUNS)] {
            assert!(b.is_empty(), "{b:?}");
            for i in 0..1000 {
                let m = admit(&b, &run(&i.to_string()), "x.example.com", u64::MAX).unwrap();
                assert!(!m.is_metered());
                m.charge(u64::MAX).unwrap();
            }
        }
        Meter::unmetered().charge(u64::MAX).unwrap();
        assert!(!budgets("[budgets]\nrun = { requests = 1 }\n", MAX_RUNS).is_empty());
    }

    #[test]
    fn a_full_table_evicts_idle_runs_only_and_otherwise_fails_closed() {
        let b = budgets("[budgets]\nrun = { requests = 1 }\n", 2);
        admit(&b, &run("r1"), "x.example.com", 1).unwrap();
        let open = admit(&b, &run("r2"), "x.example.com", 1).unwrap(); // a tunnel still open
        let e = admit(&b, &run("r3"), "x.example.com", 1).unwrap_err();
        assert_eq!(e, Exceeded { budget: "budget table full".into(), retry_after: None });
        // Known runs are still served (and refused) as before.
        assert_eq!(admit(&b, &run("r1"), "x.example.com", 1).unwrap_err().budget, "run requests (1)");
        advance(&b, IDLE_EVICTION + Duration::from_secs(1));
        // r1 idled past the limit and goes; r2 has a live meter and stays, its budget intact.
        admit(&b, &run("r3"), "x.example.com", 1).unwrap();
        assert!(admit(&b, &run("r4"), "x.example.com", 1).is_err());
        assert_eq!(admit(&b, &run("r2"), "x.example.com", 1).unwrap_err().budget, "run requests (1)");
        drop(open);
        // r2 was just active (its refused attempt counts), so nothing is idle yet.
        assert_eq!(admit(&b, &run("r4"), "x.example.com", 1).unwrap_err().budget, "budget table full");
    }

    #[test]
    fn the_default_pair_table_is_bounded_too() {
        let b = budgets("[rate_limits.default]\negress_bytes_per_hour = 100\n", 2);
        let p = |agent: &str| Principal::new(agent, "t", "r");
        let m1 = admit(&b, &p("x1"), "x.example.com", 50).unwrap();
        admit(&b, &p("x2"), "x.example.com", 50).unwrap();
        advance(&b, IDLE_EVICTION + Duration::from_secs(1));
        drop(m1);
        // Both runs are idle and go; both pairs' buckets have refilled and go with them.
        admit(&b, &p("x3"), "x.example.com", 1).unwrap();
        admit(&b, &p("x4"), "x.example.com", 1).unwrap();
        let inner = b.inner.as_ref().unwrap();
        assert_eq!(lock(&inner.pairs).len(), 2);
    }

    #[test]
    fn concurrent_charges_never_exceed_the_budget() {
        let b = budgets("[budgets]\nrun = { egress_bytes = 5000 }\n", MAX_RUNS);
        let m = admit(&b, &run("r"), "x.example.com", 0).unwrap();
        let ok: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let m = m.clone();
                    s.spawn(move || (0..1000).filter(|_| m.charge(1).is_ok()).count())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(ok, 5000);
    }

    #[test]
    fn sizes_are_named_the_way_they_were_written() {
        assert_eq!(human(50 << 20), "50 MiB");
        assert_eq!(human(1_000_000_000_000), "1 TB");
        assert_eq!(human(100_000_000), "100 MB");
        assert_eq!(human(1536), "1536 B");
        assert_eq!(human(3 << 10), "3 KiB");
        assert_eq!(human(0), "0 B");
        fn send_sync<T: Send + Sync + Clone>() {}
        send_sync::<Meter>();
        assert_eq!(
            Exceeded { budget: "run requests (1)".into(), retry_after: None }.to_string(),
            "egress budget exhausted: run requests (1)"
        );
    }
}
