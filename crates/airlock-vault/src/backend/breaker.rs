//! Retries with backoff, and a circuit breaker, for backends that talk to a server.
//!
//! # Why
//! A secret read sits on the path of every injected request. When the store is slow or down, each caller must
//! learn so quickly and boundedly, not pile up on timeouts: so retries are few, spaced out with jitter (so that many
//! brokers do not retry in lockstep), bounded in number and in total time; and after
//! [`BreakerPolicy::failure_threshold`] consecutive failures the breaker **opens**: calls fail at once, without
//! touching the network, for [`BreakerPolicy::cool_down`]. Then one call is let through as a probe (**half-open**):
//! its success closes the breaker, its failure opens it for another cool-down. Calls made while the probe is out
//! fail at once too.
//!
//! Only failures that say nothing about the request count against the server (connection errors, timeouts, 5xx,
//! 429, a sealed server): a 403 or a 404 is an answer, and a server that answers is healthy.
//!
//! An open breaker reports the last failure it saw: a sealed server stays "sealed" in the error, an unreachable one
//! "unavailable".

use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::BackendError;
use super::cache::Clock;

/// When a breaker opens, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive transient failures (each attempt counts, retries included) that open the breaker. Zero turns
    /// the breaker off.
    pub failure_threshold: u32,
    /// How long an open breaker refuses calls before letting one probe through.
    pub cool_down: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy { failure_threshold: 5, cool_down: Duration::from_secs(10) }
    }
}

/// How often, and how patiently, a failed request is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1: no retries).
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles for each further one, up to `max_backoff`. Each wait is drawn
    /// at random between half of that and all of it ("equal jitter").
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// No retry starts once this much time has passed since the first attempt (each attempt is itself bounded by
    /// the backend's request timeout).
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based), jitter included.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        let ceiling = self.initial_backoff.saturating_mul(1u32 << doublings).min(self.max_backoff);
        let millis = u32::try_from(ceiling.as_millis()).unwrap_or(u32::MAX);
        if millis < 2 {
            return ceiling;
        }
        let half = millis / 2;
        Duration::from_millis(u64::from(half + airlock_crypto::random::below(millis - half + 1)))
    }
}

/// What a breaker is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; this many transient failures in a row so far.
    Closed { consecutive_failures: u32 },
    /// Calls fail at once until the cool-down ends.
    Open,
    /// One probe is out; other calls fail at once.
    HalfOpen,
}

#[derive(Clone)]
struct LastFailure {
    sealed: bool,
    reason: String,
}

enum State {
    Closed { failures: u32 },
    Open { until: Instant, last: LastFailure, failures: u32 },
    HalfOpen { last: LastFailure, failures: u32 },
}

/// A circuit breaker for one server. See the module docs.
pub struct CircuitBreaker {
    policy: BreakerPolicy,
    clock: Clock,
    /// Names the server in errors (e.g. `bao https://vault.example:8200`).
    backend: String,
    state: Mutex<State>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("backend", &self.backend)
            .field("policy", &self.policy)
            .field("state", &self.state())
            .finish()
    }
}

/// Leave to make one call. Record its outcome with [`Permit::record`]; a probe permit dropped without an outcome
/// counts as a failure (the breaker must not stay half-open forever).
#[must_use]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    done: bool,
}

impl CircuitBreaker {
    pub fn new(policy: BreakerPolicy, clock: Clock, backend: impl Into<String>) -> CircuitBreaker {
        CircuitBreaker { policy, clock, backend: backend.into(), state: Mutex::new(State::Closed { failures: 0 }) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn state(&self) -> BreakerState {
        match &*self.lock() {
            State::Closed { failures } => BreakerState::Closed { consecutive_failures: *failures },
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Leave to call the server, or the error to return without calling it.
    pub fn admit(&self) -> Result<Permit<'_>, BackendError> {
        if self.policy.failure_threshold == 0 {
            return Ok(Permit { breaker: self, probe: false, done: false });
        }
        let now = self.clock.now();
        let mut state = self.lock();
        match &*state {
            State::Closed { .. } => Ok(Permit { breaker: self, probe: false, done: false }),
            State::Open { until, last, failures } => {
                if now < *until {
                    let wait = until.saturating_duration_since(now);
                    return Err(self.refusal(last, *failures, &format!("next attempt in {}", seconds(wait))));
                }
                *state = State::HalfOpen { last: last.clone(), failures: *failures };
                Ok(Permit { breaker: self, probe: true, done: false })
            }
            State::HalfOpen { last, failures } => {
                Err(self.refusal(last, *failures, "a probe is checking whether it is back"))
            }
        }
    }

    fn refusal(&self, last: &LastFailure, failures: u32, when: &str) -> BackendError {
        let reason =
            format!("{} (circuit breaker open after {failures} consecutive failures; not asked; {when})", last.reason);
        if last.sealed {
            BackendError::Sealed { backend: self.backend.clone(), reason }
        } else {
            BackendError::Unavailable { backend: self.backend.clone(), reason }
        }
    }

    fn succeeded(&self) {
        *self.lock() = State::Closed { failures: 0 };
    }

    fn failed(&self, probe: bool, error: &BackendError) {
        let last = LastFailure {
            sealed: matches!(error, BackendError::Sealed { .. }),
            reason: match error {
                BackendError::Sealed { reason, .. } | BackendError::Unavailable { reason, .. } => reason.clone(),
                other => other.to_string(),
            },
        };
        let now = self.clock.now();
        let mut state = self.lock();
        let failures = match &*state {
            State::Closed { failures } | State::Open { failures, .. } | State::HalfOpen { failures, .. } => {
                failures.saturating_add(1)
            }
        };
        let open = match &*state {
            State::Closed { .. } => failures >= self.policy.failure_threshold,
            // A late failure of a call admitted before the breaker opened keeps it open, and so does a failed probe.
            State::Open { .. } => true,
            State::HalfOpen { .. } => probe,
        };
        *state = if open {
            State::Open { until: now + self.policy.cool_down, last, failures }
        } else if let State::HalfOpen { .. } = &*state {
            State::HalfOpen { last, failures }
        } else {
            State::Closed { failures }
        };
    }
}

impl Permit<'_> {
    /// Whether this call is the half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Records how the call went: transient errors count against the server; anything else (success, or an
    /// answer such as not found) shows it is alive.
    pub fn record<T>(self, outcome: &Result<T, BackendError>) {
        match outcome {
            Ok(_) => self.succeed(),
            Err(e) => self.fail(e),
        }
    }

    /// The server answered.
    pub fn succeed(mut self) {
        self.done = true;
        self.breaker.succeeded();
    }

    /// The call failed with `error`: counted against the server if transient, else the server answered.
    pub fn fail(mut self, error: &BackendError) {
        self.done = true;
        if error.is_transient() {
            self.breaker.failed(self.probe, error);
        } else {
            self.breaker.succeeded();
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done && self.probe {
            let e = BackendError::Unavailable {
                backend: self.breaker.backend.clone(),
                reason: "the probe call did not complete".into(),
            };
            self.breaker.failed(true, &e);
        }
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// One attempt's failure, and whether the request may be sent again.
#[derive(Debug)]
pub struct Failed {
    pub error: BackendError,
    pub retry: bool,
}

/// Runs `attempt` through `breaker` under `retry`: at most `max_attempts` times, with backoff between them, while
/// the failure is retryable, the breaker admits the call and the total time allows. Every attempt's outcome is
/// recorded with the breaker.
pub fn with_retries<T>(
    breaker: &CircuitBreaker,
    retry: &RetryPolicy,
    mut attempt: impl FnMut() -> Result<T, Failed>,
) -> Result<T, BackendError> {
    let started = Instant::now();
    let mut n = 0u32;
    loop {
        n += 1;
        let permit = breaker.admit()?;
        match attempt() {
            Ok(v) => {
                permit.succeed();
                return Ok(v);
            }
            Err(Failed { error, retry: may_retry }) => {
                permit.fail(&error);
                let wait = retry.backoff(n);
                if !may_retry
                    || !error.is_transient()
                    || n >= retry.max_attempts.max(1)
                    || started.elapsed().saturating_add(wait) > retry.max_elapsed
                {
                    return Err(error);
                }
                std::thread::sleep(wait);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::backend::cache::ManualClock;

    fn down() -> BackendError {
        BackendError::Unavailable { backend: "bao".into(), reason: "connection refused".into() }
    }

    fn breaker(clock: &ManualClock, threshold: u32) -> CircuitBreaker {
        CircuitBreaker::new(
            BreakerPolicy { failure_threshold: threshold, cool_down: Duration::from_secs(10) },
            clock.clock(),
            "bao test",
        )
    }

    fn fail(b: &CircuitBreaker, e: BackendError) {
        b.admit().unwrap().record::<()>(&Err(e));
    }

    #[test]
    fn opens_after_the_threshold_then_lets_one_probe_through_after_the_cool_down() {
        let clock = ManualClock::new();
        let b = breaker(&clock, 3);
        fail(&b, down());
        fail(&b, down());
        assert_eq!(b.state(), BreakerState::Closed { consecutive_failures: 2 });
        fail(&b, down());
        assert_eq!(b.state(), BreakerState::Open);
        let e = b.admit().err().expect("open");
        assert!(e.to_string().contains("circuit breaker open") && e.is_transient(), "{e}");
        clock.advance(Duration::from_secs(10));
        let probe = b.admit().expect("a probe after the cool-down");
        assert!(probe.is_probe());
        assert!(b.admit().is_err(), "only one probe at a time");
        probe.record::<()>(&Err(down()));
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.admit().is_err());
        clock.advance(Duration::from_secs(10));
        b.admit().unwrap().record::<()>(&Ok(()));
        assert_eq!(b.state(), BreakerState::Closed { consecutive_failures: 0 });
    }

    #[test]
    fn answers_that_are_not_transient_keep_it_closed() {
        let clock = ManualClock::new();
        let b = breaker(&clock, 2);
        fail(&b, down());
        fail(&b, BackendError::NotFound("bao://kv/a#f".into()));
        fail(&b, down());
        assert_eq!(b.state(), BreakerState::Closed { consecutive_failures: 1 });
    }

    #[test]
    fn an_open_breaker_keeps_the_sealed_reason() {
        let clock = ManualClock::new();
        let b = breaker(&clock, 1);
        fail(&b, BackendError::Sealed { backend: "bao".into(), reason: "Vault is sealed".into() });
        let e = b.admit().err().unwrap();
        assert!(matches!(e, BackendError::Sealed { .. }) && e.to_string().contains("sealed"), "{e}");
    }

    #[test]
    fn an_abandoned_probe_reopens_it() {
        let clock = ManualClock::new();
        let b = breaker(&clock, 1);
        fail(&b, down());
        clock.advance(Duration::from_secs(10));
        drop(b.admit().unwrap());
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn retries_are_bounded_and_stop_when_the_breaker_opens() {
        let clock = ManualClock::new();
        let quick = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
            max_elapsed: Duration::from_secs(60),
        };
        let calls = Cell::new(0);
        let b = breaker(&clock, 100);
        let r: Result<(), _> = with_retries(&b, &quick, || {
            calls.set(calls.get() + 1);
            Err(Failed { error: down(), retry: true })
        });
        assert!(r.is_err());
        assert_eq!(calls.get(), 5);

        // Not retryable: one attempt.
        calls.set(0);
        let r: Result<(), _> = with_retries(&b, &quick, || {
            calls.set(calls.get() + 1);
            Err(Failed { error: down(), retry: false })
        });
        assert!(r.is_err());
        assert_eq!(calls.get(), 1);

        // A breaker that opens on the second failure ends the retries there.
        calls.set(0);
        let b = breaker(&clock, 2);
        let r: Result<(), _> = with_retries(&b, &quick, || {
            calls.set(calls.get() + 1);
            Err(Failed { error: down(), retry: true })
        });
        assert!(r.unwrap_err().to_string().contains("circuit breaker open"));
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            max_elapsed: Duration::from_secs(60),
        };
        for _ in 0..50 {
            let first = p.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
            let third = p.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400), "{third:?}");
            let late = p.backoff(30);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_millis(1000), "{late:?}");
        }
    }
}
