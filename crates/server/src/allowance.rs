//! Per-replica allowances: the requests a replica may admit without asking the shared rate
//! limiter, leased from it in batches, so a busy caller's requests cost no extra store round
//! trip while the limit stays shared by every replica.
//!
//! A caller's first request in a while asks the limiter for one request, as before. Each time a
//! lease is spent before it runs out, the next one asks for twice as many, up to a cap of a
//! 64th of the limit (at most [`MAX_LEASE`]), so a limit of 60 a minute is never leased in
//! batches and 300 (the anonymous reveal default) in batches of up to 4. A lease may be spent for
//! [`hold`] after it was asked for; what is left then is dropped, and the next lease is half as
//! large.
//!
//! What is exact and what is approximate, with `R` replicas and a lease cap `B`:
//! - **Never more than the limit**, over any window, across all replicas: the limiter counts a
//!   lease in full when it grants it and keeps it counted for the window plus the hold, so every
//!   request spent from it is still counted a whole window after it was spent.
//! - **Refused early, by a bounded amount**: requests leased but not spent count too. A caller
//!   may be refused when up to `R × (B − 1)` requests are leased to replicas it is not talking to,
//!   and requests spent from a lease count up to a hold longer than a window. Limits of 64 or
//!   less are never leased in batches, so they count exactly as a plain sliding window does.
//! - `Retry-After` is the limiter's: when its oldest counted grant stops counting.
//!
//! Memory is bounded: at most [`MAX_CALLERS`] callers hold a lease at once; beyond that, callers
//! without one are counted one request at a time.
//!
//! Callers are told apart here by a [`Counted`] key that is cheap to hash for every request (a
//! class and an address, say); the shared limiter's [`RateKey`], a SHA-256, is made from it only
//! when the limiter is asked.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use burnbox_store::{Lease, RateDecision, RateKey, RateLimiter, StoreError};

/// The largest lease: at a 50 000 requests/s from one caller, one limiter round trip per 256
/// requests.
pub const MAX_LEASE: u32 = 256;

/// How many callers may hold a lease at once on one replica.
pub const MAX_CALLERS: usize = 10_000;

/// Leases are capped at this fraction of the limit, so what replicas hold unspent stays small
/// next to it.
const LIMIT_SHARE_PER_LEASE: u32 = 64;

/// How long a replica may spend a lease: a twelfth of the window (5 s of a one-minute window).
pub fn hold(window: Duration) -> Duration {
    window / 12
}

/// The largest lease for `limit`: a 64th of it, at least one and at most [`MAX_LEASE`].
pub fn lease_cap(limit: u32) -> u32 {
    (limit / LIMIT_SHARE_PER_LEASE).clamp(1, MAX_LEASE)
}

/// Whose requests a limit counts, as this replica tells callers apart.
pub trait Counted: Hash + Eq + Clone {
    /// The key the shared limiter counts these requests under: equal for equal keys, on every
    /// replica.
    fn rate_key(&self) -> RateKey;
}

/// One caller's lease on this replica.
struct Allowance {
    /// Requests left to admit locally.
    left: u32,
    /// When what is left may no longer be spent.
    spend_by: Instant,
    /// How many to ask for next time.
    next_lease: u32,
    /// Held while asking the limiter, so concurrent requests of one caller wait for one lease
    /// instead of each asking for their own.
    asking: Arc<tokio::sync::Mutex<()>>,
}

/// The allowances of every caller on this replica, leased from a shared [`RateLimiter`].
pub struct Allowances<K> {
    limiter: Arc<dyn RateLimiter>,
    callers: Mutex<Callers<K>>,
}

/// The callers holding an allowance, and when the map was last swept of spent-out ones.
struct Callers<K> {
    by_key: HashMap<K, Allowance>,
    swept: Option<Instant>,
}

/// How often a full map may be swept: a sweep walks every caller, so a flood of new callers must
/// not set one off per request.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

impl<K: Counted> Allowances<K> {
    /// Allowances leased from `limiter`.
    pub fn new(limiter: Arc<dyn RateLimiter>) -> Self {
        Self {
            limiter,
            callers: Mutex::new(Callers {
                by_key: HashMap::new(),
                swept: None,
            }),
        }
    }

    /// Admits one request counted under `key` if the caller is within `limit` per `window`:
    /// from this replica's allowance when it has one, else by leasing from the limiter.
    pub async fn admit(
        &self,
        key: &K,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StoreError> {
        let cap = lease_cap(limit);
        if cap == 1 {
            return self
                .limiter
                .rate_limit(&key.rate_key(), limit, window, Lease::ONE)
                .await;
        }
        let asking = match self.spend_or_wait(key, Instant::now()) {
            Spent::Admitted => return Ok(RateDecision::Allowed { granted: 1 }),
            Spent::Ask(asking) => asking,
            Spent::Untracked => {
                return self
                    .limiter
                    .rate_limit(&key.rate_key(), limit, window, Lease::ONE)
                    .await;
            }
        };
        let _asking = asking.lock().await;
        // Whoever asked while this request waited may have left some.
        let wanted = match self.spend_or_wait(key, Instant::now()) {
            Spent::Admitted => return Ok(RateDecision::Allowed { granted: 1 }),
            Spent::Ask(_) => self.next_lease(key).min(cap),
            Spent::Untracked => 1,
        };
        let hold = hold(window);
        // The lease may be spent for `hold` from before it was asked for: never later than the
        // limiter's count of it ends.
        let asked = Instant::now();
        let decision = self
            .limiter
            .rate_limit(
                &key.rate_key(),
                limit,
                window,
                Lease {
                    count: wanted,
                    hold,
                },
            )
            .await?;
        if let RateDecision::Allowed { granted } = decision
            && let Some(allowance) = self.lock().by_key.get_mut(key)
        {
            // Spent to the last before it ran out: this caller is busy, lease more next time.
            allowance.next_lease = if granted == wanted {
                wanted.saturating_mul(2).min(cap)
            } else {
                wanted
            };
            allowance.left = granted - 1;
            allowance.spend_by = asked + hold;
        }
        Ok(decision)
    }

    /// Spends one request of `key`'s allowance if it has one; else says whom to wait for before
    /// asking the limiter (making room for the caller when it is new).
    fn spend_or_wait(&self, key: &K, now: Instant) -> Spent {
        let mut callers = self.lock();
        if let Some(allowance) = callers.by_key.get_mut(key) {
            if allowance.left > 0 && now < allowance.spend_by {
                allowance.left -= 1;
                return Spent::Admitted;
            }
            if allowance.left > 0 {
                // Ran out of time, not of requests: this caller is slower than its leases.
                allowance.next_lease = (allowance.next_lease / 2).max(1);
                allowance.left = 0;
            }
            return Spent::Ask(allowance.asking.clone());
        }
        if callers.by_key.len() >= MAX_CALLERS {
            if callers
                .swept
                .is_some_and(|swept| now < swept + SWEEP_INTERVAL)
            {
                return Spent::Untracked;
            }
            callers.swept = Some(now);
            callers
                .by_key
                .retain(|_, allowance| now < allowance.spend_by);
            if callers.by_key.len() >= MAX_CALLERS {
                return Spent::Untracked;
            }
        }
        let asking = Arc::new(tokio::sync::Mutex::new(()));
        callers.by_key.insert(
            key.clone(),
            Allowance {
                left: 0,
                spend_by: now,
                next_lease: 1,
                asking: asking.clone(),
            },
        );
        Spent::Ask(asking)
    }

    fn next_lease(&self, key: &K) -> u32 {
        self.lock()
            .by_key
            .get(key)
            .map_or(1, |allowance| allowance.next_lease)
    }

    fn lock(&self) -> MutexGuard<'_, Callers<K>> {
        // The map holds counts only; one a panicking thread left half-updated is still usable.
        self.callers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What [`Allowances::spend_or_wait`] did.
enum Spent {
    /// One request of the allowance was spent.
    Admitted,
    /// None left: ask the limiter, holding this lock.
    Ask(Arc<tokio::sync::Mutex<()>>),
    /// Too many callers hold leases: count this one at the limiter, one request at a time.
    Untracked,
}

#[cfg(test)]
mod tests {
    use burnbox_store::MemoryStore;

    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    /// These tests name callers by their shared key directly.
    impl Counted for RateKey {
        fn rate_key(&self) -> RateKey {
            *self
        }
    }

    fn key(caller: &str) -> RateKey {
        RateKey::new("read", caller)
    }

    #[test]
    fn leases_are_a_64th_of_the_limit_at_most() {
        assert_eq!(lease_cap(0), 1);
        assert_eq!(lease_cap(60), 1);
        assert_eq!(lease_cap(64), 1);
        assert_eq!(lease_cap(300), 4);
        assert_eq!(lease_cap(u32::MAX), MAX_LEASE);
        assert_eq!(hold(MINUTE), Duration::from_secs(5));
    }

    /// The memory store's limiter, counting how often it is asked.
    #[derive(Default)]
    struct CountingLimiter {
        store: MemoryStore,
        asked: std::sync::atomic::AtomicU32,
    }

    #[async_trait::async_trait]
    impl RateLimiter for CountingLimiter {
        async fn rate_limit(
            &self,
            key: &RateKey,
            limit: u32,
            window: Duration,
            lease: Lease,
        ) -> Result<RateDecision, StoreError> {
            self.asked
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.store.rate_limit(key, limit, window, lease).await
        }
    }

    #[tokio::test]
    async fn a_busy_caller_asks_the_limiter_less_and_less_often_but_never_exceeds_the_limit() {
        let limiter = Arc::new(CountingLimiter::default());
        let allowances = Allowances::new(limiter.clone());
        // Leases of up to 16.
        let limit = 64 * 16;
        for request in 0..limit {
            assert!(
                matches!(
                    allowances.admit(&key("busy"), limit, MINUTE).await,
                    Ok(RateDecision::Allowed { .. })
                ),
                "request {request} of {limit}"
            );
        }
        // 1 + 2 + 4 + 8, then leases of 16.
        let asked = limiter.asked.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(asked, 4 + (limit - 15).div_ceil(16), "limiter round trips");
        // All of it is counted at the limiter: neither this replica nor another gets more.
        let other_replica = Allowances::new(limiter);
        for replica in [&allowances, &other_replica] {
            assert!(matches!(
                replica.admit(&key("busy"), limit, MINUTE).await,
                Ok(RateDecision::Limited { .. })
            ));
        }
    }

    #[tokio::test]
    async fn small_limits_are_counted_one_request_at_a_time() {
        let store = Arc::new(MemoryStore::new());
        let (first, second) = (Allowances::new(store.clone()), Allowances::new(store));
        for replica in [&first, &second, &first] {
            assert!(matches!(
                replica.admit(&key("small"), 3, MINUTE).await,
                Ok(RateDecision::Allowed { granted: 1 })
            ));
        }
        for replica in [&first, &second] {
            assert!(matches!(
                replica.admit(&key("small"), 3, MINUTE).await,
                Ok(RateDecision::Limited { .. })
            ));
        }
    }
}
