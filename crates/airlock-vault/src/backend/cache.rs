//! A bounded cache of secret values for remote backends, and the clock that ages it.
//!
//! # Why
//! A remote store (OpenBao, Vault) costs a network round trip per read, and a broker resolves a secret on every
//! injected request. The cache keeps recently read values in zeroizing memory ([`SecretBytes`]) for a
//! [`CachePolicy::ttl`], so a hit costs a hash lookup and a copy.
//!
//! # Fail closed
//! A cached value is served:
//! - within its time to live, without asking the backend (so a value rotated in the backend is seen at most one
//!   TTL late);
//! - past its time to live but within [`CachePolicy::stale_while_revalidate`], **only** when the backend cannot be
//!   asked just now (an error for which [`BackendError::is_transient`] holds: sealed, unreachable, circuit open),
//!   marked [`Fetched::stale`];
//! - never beyond that: the read fails with the backend's error.
//!
//! A definite answer from the backend (not found, access denied) drops the entry at once: a deleted secret or a
//! revoked grant is not papered over by the cache. Writes drop the entry too (see [`ValueCache::invalidate`]).
//!
//! "Stale-while-revalidate" here means stale-if-unavailable: every read past the TTL asks the backend first (the
//! revalidation is in the caller's thread, bounded by the backend's own timeouts, retries and circuit breaker);
//! the stale value is the fallback when that fails, not a reply sent before it. No background thread.
//!
//! A `ttl` of zero, or `max_entries` of zero, turns the cache off.
//!
//! # Bounds
//! At most [`CachePolicy::max_entries`] values; the least recently used goes first. Entries past TTL + SWR are
//! dropped when next looked up.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use airlock_crypto::SecretBytes;

use super::{BackendError, CachePolicy, Fetched};

/// The monotonic clock that ages cache entries, times circuit-breaker cool-downs and tracks token leases.
/// [`Clock::system`] in production; [`ManualClock`] in tests, so that behaviour over time is checked without
/// sleeping.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Instant + Send + Sync>);

impl Clock {
    /// [`Instant::now`].
    pub fn system() -> Clock {
        Clock(Arc::new(Instant::now))
    }

    /// Any source of instants (it must never go backwards).
    pub fn from_fn(f: impl Fn() -> Instant + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(f))
    }

    pub fn now(&self) -> Instant {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// A clock that moves only when [`ManualClock::advance`] is called. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    base: Instant,
    offset_nanos: Arc<AtomicU64>,
}

impl ManualClock {
    pub fn new() -> ManualClock {
        ManualClock { base: Instant::now(), offset_nanos: Arc::new(AtomicU64::new(0)) }
    }

    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.offset_nanos.fetch_add(nanos, Ordering::SeqCst);
    }

    pub fn now(&self) -> Instant {
        self.base + Duration::from_nanos(self.offset_nanos.load(Ordering::SeqCst))
    }

    /// A [`Clock`] reading this one.
    pub fn clock(&self) -> Clock {
        let me = self.clone();
        Clock::from_fn(move || me.now())
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

/// What a cache has done since it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Reads answered from the cache within the time to live.
    pub hits: u64,
    /// Reads that asked the backend.
    pub misses: u64,
    /// Reads answered with a stale value because the backend could not be asked.
    pub stale: u64,
    /// Values held now.
    pub entries: usize,
}

struct Entry {
    value: SecretBytes,
    version: Option<u64>,
    fetched_at: SystemTime,
    stored: Instant,
    tick: u64,
}

struct Inner<K> {
    map: HashMap<K, Entry>,
    /// Recency: tick -> key; the smallest tick is the least recently used.
    order: BTreeMap<u64, K>,
    tick: u64,
    /// Bumped by every invalidation, so a read that started before one does not store what it fetched.
    generation: u64,
    hits: u64,
    misses: u64,
    stale: u64,
}

/// A bounded, time-limited cache of secret values. See the module docs for what it serves and when.
pub struct ValueCache<K> {
    policy: CachePolicy,
    clock: Clock,
    inner: Mutex<Inner<K>>,
}

impl<K> fmt::Debug for ValueCache<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.inner.lock().unwrap_or_else(|e| e.into_inner()).map.len();
        f.debug_struct("ValueCache").field("policy", &self.policy).field("entries", &entries).finish()
    }
}

impl<K: Eq + Hash + Clone> ValueCache<K> {
    pub fn new(policy: CachePolicy, clock: Clock) -> ValueCache<K> {
        ValueCache {
            policy,
            clock,
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: BTreeMap::new(),
                tick: 0,
                generation: 0,
                hits: 0,
                misses: 0,
                stale: 0,
            }),
        }
    }

    pub fn policy(&self) -> CachePolicy {
        self.policy
    }

    /// Whether values are kept at all.
    pub fn enabled(&self) -> bool {
        !self.policy.ttl.is_zero() && self.policy.max_entries > 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K>> {
        // A panic while holding the lock leaves the map consistent (every update is a few plain assignments).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value at `key`, from the cache within its time to live, else from `fetch` (stored on success). If
    /// `fetch` fails with a transient error, a value within its stale-while-revalidate window is served instead,
    /// marked stale; past that window the error is returned. Any other error drops the cached value.
    pub fn read_through(
        &self,
        key: &K,
        fetch: impl FnOnce() -> Result<Fetched, BackendError>,
    ) -> Result<Fetched, BackendError> {
        if !self.enabled() {
            self.lock().misses += 1;
            return fetch();
        }
        let generation = {
            let mut inner = self.lock();
            if let Some(hit) = self.fresh(&mut inner, key) {
                inner.hits += 1;
                return Ok(hit);
            }
            inner.misses += 1;
            inner.generation
        };
        match fetch() {
            Ok(fetched) => {
                let mut inner = self.lock();
                if inner.generation == generation {
                    self.store(&mut inner, key.clone(), &fetched);
                }
                Ok(fetched)
            }
            Err(e) if e.is_transient() => {
                let mut inner = self.lock();
                match self.stale(&mut inner, key) {
                    Some(stale) => {
                        inner.stale += 1;
                        Ok(stale)
                    }
                    None => Err(e),
                }
            }
            Err(e) => {
                let mut inner = self.lock();
                remove(&mut inner, key);
                Err(e)
            }
        }
    }

    /// Drops every entry whose key matches (for a KV backend: all fields of one secret path).
    pub fn invalidate(&self, matches: impl Fn(&K) -> bool) {
        let mut inner = self.lock();
        inner.generation += 1;
        let keys: Vec<K> = inner.map.keys().filter(|k| matches(k)).cloned().collect();
        for k in keys {
            remove(&mut inner, &k);
        }
    }

    /// Drops everything.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.map.clear();
        inner.order.clear();
    }

    pub fn stats(&self) -> CacheStats {
        let inner = self.lock();
        CacheStats { hits: inner.hits, misses: inner.misses, stale: inner.stale, entries: inner.map.len() }
    }

    fn fresh(&self, inner: &mut Inner<K>, key: &K) -> Option<Fetched> {
        let now = self.clock.now();
        let tick = next_tick(inner);
        let entry = inner.map.get_mut(key)?;
        if now.saturating_duration_since(entry.stored) >= self.policy.ttl {
            return None;
        }
        let old = std::mem::replace(&mut entry.tick, tick);
        let fetched =
            Fetched { value: entry.value.clone(), version: entry.version, fetched_at: entry.fetched_at, stale: false };
        if let Some(k) = inner.order.remove(&old) {
            inner.order.insert(tick, k);
        }
        Some(fetched)
    }

    fn stale(&self, inner: &mut Inner<K>, key: &K) -> Option<Fetched> {
        let now = self.clock.now();
        let entry = inner.map.get(key)?;
        let age = now.saturating_duration_since(entry.stored);
        if age >= self.policy.ttl.saturating_add(self.policy.stale_while_revalidate) {
            remove(inner, key);
            return None;
        }
        let fetched = Fetched {
            value: entry.value.clone(),
            version: entry.version,
            fetched_at: entry.fetched_at,
            // Within the TTL it is simply fresh (another thread may have stored it meanwhile).
            stale: age >= self.policy.ttl,
        };
        Some(fetched)
    }

    fn store(&self, inner: &mut Inner<K>, key: K, fetched: &Fetched) {
        remove(inner, &key);
        while inner.map.len() >= self.policy.max_entries {
            let Some((_, lru)) = inner.order.pop_first() else { break };
            inner.map.remove(&lru);
        }
        let tick = next_tick(inner);
        inner.order.insert(tick, key.clone());
        inner.map.insert(
            key,
            Entry {
                value: fetched.value.clone(),
                version: fetched.version,
                fetched_at: fetched.fetched_at,
                stored: self.clock.now(),
                tick,
            },
        );
    }
}

fn next_tick<K>(inner: &mut Inner<K>) -> u64 {
    inner.tick += 1;
    inner.tick
}

fn remove<K: Eq + Hash>(inner: &mut Inner<K>, key: &K) {
    if let Some(e) = inner.map.remove(key) {
        inner.order.remove(&e.tick);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn value(v: &[u8], version: u64) -> Result<Fetched, BackendError> {
        Ok(Fetched {
            value: SecretBytes::copy_from(v),
            version: Some(version),
            fetched_at: SystemTime::now(),
            stale: false,
        })
    }

    fn sealed() -> Result<Fetched, BackendError> {
        Err(BackendError::Sealed { backend: "bao".into(), reason: "test".into() })
    }

    fn policy(ttl: u64, swr: u64, max: usize) -> CachePolicy {
        CachePolicy {
            ttl: Duration::from_secs(ttl),
            stale_while_revalidate: Duration::from_secs(swr),
            max_entries: max,
        }
    }

    #[test]
    fn fresh_values_are_served_without_asking_and_expire_at_the_ttl() {
        let clock = ManualClock::new();
        let cache = ValueCache::new(policy(10, 0, 8), clock.clock());
        let asked = Cell::new(0);
        let fetch = |v: &'static [u8], n| {
            asked.set(asked.get() + 1);
            value(v, n)
        };
        assert_eq!(cache.read_through(&"a", || fetch(b"one", 1)).unwrap().version, Some(1));
        clock.advance(Duration::from_millis(9_999));
        let hit = cache.read_through(&"a", || fetch(b"two", 2)).unwrap();
        assert_eq!((hit.value.expose(), hit.version, hit.stale, asked.get()), (&b"one"[..], Some(1), false, 1));
        clock.advance(Duration::from_millis(1));
        assert_eq!(cache.read_through(&"a", || fetch(b"two", 2)).unwrap().version, Some(2));
        assert_eq!(asked.get(), 2);
        assert_eq!(cache.stats(), CacheStats { hits: 1, misses: 2, stale: 0, entries: 1 });
    }

    #[test]
    fn a_transient_failure_is_covered_only_within_the_stale_window_and_never_past_it() {
        let clock = ManualClock::new();
        let cache = ValueCache::new(policy(10, 5, 8), clock.clock());
        cache.read_through(&"a", || value(b"one", 1)).unwrap();
        // Within the TTL the backend is not even asked.
        assert!(!cache.read_through(&"a", sealed).unwrap().stale);
        clock.advance(Duration::from_secs(12));
        let stale = cache.read_through(&"a", sealed).unwrap();
        assert!(stale.stale && stale.value.expose() == b"one");
        clock.advance(Duration::from_secs(3));
        let e = cache.read_through(&"a", sealed).unwrap_err();
        assert!(matches!(e, BackendError::Sealed { .. }), "{e}");
        // And it is gone: coming back into a window is impossible.
        assert_eq!(cache.stats().entries, 0);
    }

    #[test]
    fn without_a_stale_window_nothing_is_served_past_the_ttl() {
        let clock = ManualClock::new();
        let cache = ValueCache::new(policy(10, 0, 8), clock.clock());
        cache.read_through(&"a", || value(b"one", 1)).unwrap();
        clock.advance(Duration::from_secs(10));
        assert!(cache.read_through(&"a", sealed).is_err());
    }

    #[test]
    fn a_definite_answer_drops_the_cached_value() {
        let clock = ManualClock::new();
        let cache = ValueCache::new(policy(10, 100, 8), clock.clock());
        cache.read_through(&"a", || value(b"one", 1)).unwrap();
        clock.advance(Duration::from_secs(11));
        let gone = cache.read_through(&"a", || Err(BackendError::NotFound("bao://kv/a#f".into())));
        assert!(matches!(gone, Err(BackendError::NotFound(_))));
        // Even a transient failure now finds nothing to serve.
        assert!(cache.read_through(&"a", sealed).is_err());
    }

    #[test]
    fn the_least_recently_used_value_goes_first() {
        let clock = ManualClock::new();
        let cache = ValueCache::new(policy(10, 0, 2), clock.clock());
        cache.read_through(&"a", || value(b"a", 1)).unwrap();
        cache.read_through(&"b", || value(b"b", 1)).unwrap();
        cache.read_through(&"a", || value(b"x", 2)).unwrap(); // a hit: now b is the oldest
        cache.read_through(&"c", || value(b"c", 1)).unwrap();
        assert_eq!(cache.stats().entries, 2);
        assert_eq!(cache.read_through(&"a", sealed).unwrap().value.expose(), b"a");
        assert!(cache.read_through(&"b", sealed).is_err(), "b was evicted");
    }

    #[test]
    fn invalidation_drops_entries_and_a_read_racing_it_does_not_store() {
        let clock = ManualClock::new();
        let cache = ValueCache::new(policy(10, 0, 8), clock.clock());
        cache.read_through(&"a", || value(b"one", 1)).unwrap();
        cache.invalidate(|k| *k == "a");
        assert!(cache.read_through(&"a", sealed).is_err());
        // A fetch that began before an invalidation returns its value but does not cache it.
        let got = cache
            .read_through(&"a", || {
                cache.invalidate(|_| true);
                value(b"old", 1)
            })
            .unwrap();
        assert_eq!(got.value.expose(), b"old");
        assert_eq!(cache.stats().entries, 0);
    }

    #[test]
    fn a_zero_ttl_turns_the_cache_off() {
        let cache = ValueCache::new(policy(0, 100, 8), Clock::system());
        cache.read_through(&"a", || value(b"one", 1)).unwrap();
        assert!(cache.read_through(&"a", sealed).is_err());
        assert_eq!(cache.stats().entries, 0);
    }
}
