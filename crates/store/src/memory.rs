//! The embedded store: everything in one process, behind one mutex, with the same guarantees as
//! Redis (exactly-once take, expiry by TTL) so `cargo run` works on a bare machine. It holds at
//! most a byte budget of secrets, receipts and indexes: a share that would go over it is refused
//! with [`StoreError::Full`] (after expired entries are swept out), and space comes back as
//! secrets are revealed, burned or expire.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::{
    FailedAttempt, KeyCheck, Lease, NewSecret, OwnerId, RateDecision, RateKey, RateLimiter,
    ReceiptId, ReceiptState, RecordStatus, SecretId, SecretRecord, SecretStore, StoreError,
    StoredReceipt, Take, UnixSeconds,
};

/// How often expired entries are swept out; between sweeps they are only invisible.
const PURGE_INTERVAL: Duration = Duration::from_secs(30);

/// The byte budget of [`MemoryStore::new`]: 256 MiB.
pub const DEFAULT_MEMORY_BUDGET_BYTES: usize = 256 * 1024 * 1024;

/// What one map entry costs beyond its sealed bytes: the slot, its 32-byte key, the expiry and
/// the allocation's header, rounded up. An estimate, so the budget bounds the process's memory
/// rather than matching it to the byte.
const ENTRY_OVERHEAD: usize = 128;

/// In-process [`SecretStore`], [`RateLimiter`] and [`KeyCheck`]; everything is lost when the
/// process exits.
pub struct MemoryStore {
    state: Mutex<State>,
    budget_bytes: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store holding at most [`DEFAULT_MEMORY_BUDGET_BYTES`].
    pub fn new() -> Self {
        Self::with_budget(DEFAULT_MEMORY_BUDGET_BYTES)
    }

    /// An empty store holding at most `budget_bytes` of secrets, receipts and indexes.
    pub fn with_budget(budget_bytes: usize) -> Self {
        Self {
            state: Mutex::default(),
            budget_bytes,
        }
    }

    /// The bytes counted against the budget now, and the budget: what the server exports as
    /// gauges, so an operator sees the store filling before shares are refused.
    pub fn usage(&self) -> (usize, usize) {
        (self.lock().used_bytes, self.budget_bytes)
    }
}

#[derive(Default)]
struct State {
    /// The estimated bytes held by `records`, `receipts`, `pointers` and `recent`.
    used_bytes: usize,
    records: HashMap<SecretId, Expiring<SecretRecord>>,
    receipts: HashMap<SecretId, Expiring<ReceiptEntry>>,
    pointers: HashMap<ReceiptId, Expiring<SecretId>>,
    recent: HashMap<OwnerId, Expiring<RecentIndex>>,
    failures: HashMap<SecretId, u32>,
    key_check: Option<Vec<u8>>,
    rate_windows: HashMap<RateKey, RateWindow>,
    next_purge: Option<Instant>,
}

/// The grants counted in a rate-limit window, oldest first: when each stops counting, and how
/// many requests it counted; with their sum.
struct RateWindow {
    counted: VecDeque<(Instant, u32)>,
    total: u64,
}

/// A customer's recent entries, oldest first, with their creation times.
type RecentIndex = Vec<(UnixSeconds, Vec<u8>)>;

struct Expiring<T> {
    value: T,
    expires_at: Instant,
}

impl<T> Expiring<T> {
    fn new(value: T, ttl: Duration, now: Instant) -> Self {
        Self {
            value,
            expires_at: now + ttl,
        }
    }

    fn live(&self, now: Instant) -> bool {
        self.expires_at > now
    }
}

struct ReceiptEntry {
    sealed: Vec<u8>,
    state: ReceiptState,
    updated: UnixSeconds,
    received: Option<UnixSeconds>,
    burned: Option<UnixSeconds>,
}

fn record_bytes(record: &SecretRecord) -> usize {
    record.sealed.len() + ENTRY_OVERHEAD
}

fn receipt_bytes(receipt: &ReceiptEntry) -> usize {
    receipt.sealed.len() + ENTRY_OVERHEAD
}

fn recent_bytes(index: &RecentIndex) -> usize {
    ENTRY_OVERHEAD
        + index
            .iter()
            .map(|(_, sealed)| sealed.len() + std::mem::size_of::<(UnixSeconds, Vec<u8>)>())
            .sum::<usize>()
}

fn live<'map, K: std::hash::Hash + Eq, V>(
    map: &'map HashMap<K, Expiring<V>>,
    key: &K,
    now: Instant,
) -> Option<&'map Expiring<V>> {
    map.get(key).filter(|entry| entry.live(now))
}

impl State {
    fn purge_if_due(&mut self, now: Instant) {
        if self.next_purge.is_some_and(|due| due > now) {
            return;
        }
        self.purge(now);
    }

    /// Sweeps out every expired entry, giving back its bytes.
    fn purge(&mut self, now: Instant) {
        let mut freed = 0;
        self.records.retain(|_, entry| {
            entry.live(now) || {
                freed += record_bytes(&entry.value);
                false
            }
        });
        self.receipts.retain(|_, entry| {
            entry.live(now) || {
                freed += receipt_bytes(&entry.value);
                false
            }
        });
        self.pointers.retain(|_, entry| {
            entry.live(now) || {
                freed += ENTRY_OVERHEAD;
                false
            }
        });
        self.recent.retain(|_, entry| {
            entry.live(now) || {
                freed += recent_bytes(&entry.value);
                false
            }
        });
        self.used_bytes = self.used_bytes.saturating_sub(freed);
        let records = &self.records;
        self.failures.retain(|id, _| records.contains_key(id));
        self.rate_windows
            .retain(|_, window| window.counted.back().is_some_and(|(until, _)| *until > now));
        self.next_purge = Some(now + PURGE_INTERVAL);
    }

    /// Removes a live record and moves its receipt to `state` (received or burned) at `at`.
    fn finish(
        &mut self,
        id: &SecretId,
        now: Instant,
        at: UnixSeconds,
        state: ReceiptState,
    ) -> Option<SecretRecord> {
        let record = self.records.remove(id).filter(|removed| {
            self.used_bytes = self.used_bytes.saturating_sub(record_bytes(&removed.value));
            removed.live(now)
        });
        self.failures.remove(id);
        let record = record?;
        if let Some(receipt) = self.receipts.get_mut(id).filter(|entry| entry.live(now)) {
            let receipt = &mut receipt.value;
            receipt.state = state;
            receipt.updated = at;
            match state {
                ReceiptState::Received => receipt.received = Some(at),
                ReceiptState::Burned => receipt.burned = Some(at),
                ReceiptState::New => {}
            }
        }
        Some(record.value)
    }
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that breaks
        // exactly-once (each operation is one insert or one remove), so poisoning is ignored.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl SecretStore for MemoryStore {
    async fn create(&self, new: NewSecret) -> Result<(), StoreError> {
        let now = Instant::now();
        let receipt = ReceiptEntry {
            sealed: new.receipt,
            state: ReceiptState::New,
            updated: new.created,
            received: None,
            burned: None,
        };
        let mut needed = record_bytes(&new.record) + receipt_bytes(&receipt) + ENTRY_OVERHEAD;
        if let Some(recent) = &new.recent {
            needed += recent.sealed.len() + std::mem::size_of::<(UnixSeconds, Vec<u8>)>();
        }
        let mut state = self.lock();
        state.purge_if_due(now);
        if state.used_bytes + needed > self.budget_bytes {
            // Expired entries may still hold the space; only a store full of live ones refuses.
            state.purge(now);
            if state.used_bytes + needed > self.budget_bytes {
                return Err(StoreError::Full);
            }
        }
        state.used_bytes += record_bytes(&new.record) + receipt_bytes(&receipt) + ENTRY_OVERHEAD;
        state.records.insert(
            new.secret_id,
            Expiring::new(new.record, new.secret_ttl, now),
        );
        state
            .receipts
            .insert(new.secret_id, Expiring::new(receipt, new.receipt_ttl, now));
        state.pointers.insert(
            new.receipt_id,
            Expiring::new(new.secret_id, new.receipt_ttl, now),
        );
        if let Some(recent) = new.recent {
            let retain_seconds = i64::try_from(recent.retain.as_secs()).unwrap_or(i64::MAX);
            let oldest_kept = new.created.saturating_sub(retain_seconds);
            let mut entries = match state.recent.remove(&recent.owner) {
                Some(index) => {
                    state.used_bytes = state.used_bytes.saturating_sub(recent_bytes(&index.value));
                    if index.live(now) {
                        index.value
                    } else {
                        Vec::new()
                    }
                }
                None => Vec::new(),
            };
            entries.retain(|(created, _)| *created >= oldest_kept);
            entries.push((new.created, recent.sealed));
            state.used_bytes += recent_bytes(&entries);
            state
                .recent
                .insert(recent.owner, Expiring::new(entries, recent.retain, now));
        }
        Ok(())
    }

    async fn take_unprotected(&self, id: &SecretId, at: UnixSeconds) -> Result<Take, StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        match live(&state.records, id, now) {
            None => Ok(Take::Missing),
            Some(entry) if entry.value.protected => Ok(Take::Protected(entry.value.clone())),
            Some(_) => Ok(state
                .finish(id, now, at, ReceiptState::Received)
                .map_or(Take::Missing, Take::Taken)),
        }
    }

    async fn take(
        &self,
        id: &SecretId,
        at: UnixSeconds,
    ) -> Result<Option<SecretRecord>, StoreError> {
        Ok(self
            .lock()
            .finish(id, Instant::now(), at, ReceiptState::Received))
    }

    async fn peek(&self, id: &SecretId) -> Result<Option<SecretRecord>, StoreError> {
        let state = self.lock();
        Ok(live(&state.records, id, Instant::now()).map(|entry| entry.value.clone()))
    }

    async fn inspect(&self, id: &SecretId) -> Result<Option<RecordStatus>, StoreError> {
        let now = Instant::now();
        let state = self.lock();
        Ok(live(&state.records, id, now).map(|entry| RecordStatus {
            protected: entry.value.protected,
            end_to_end: entry.value.end_to_end,
            ttl: entry.expires_at - now,
        }))
    }

    async fn burn(&self, id: &SecretId, at: UnixSeconds) -> Result<bool, StoreError> {
        let burned = self
            .lock()
            .finish(id, Instant::now(), at, ReceiptState::Burned);
        Ok(burned.is_some())
    }

    async fn fail_attempt(
        &self,
        id: &SecretId,
        max_attempts: u32,
        at: UnixSeconds,
    ) -> Result<FailedAttempt, StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        if live(&state.records, id, now).is_none() {
            return Ok(FailedAttempt::Missing);
        }
        let failures = state.failures.entry(*id).or_default();
        *failures += 1;
        let failures = *failures;
        if failures < max_attempts {
            return Ok(FailedAttempt::Remaining(max_attempts - failures));
        }
        state.finish(id, now, at, ReceiptState::Burned);
        Ok(FailedAttempt::Burned)
    }

    async fn recent(
        &self,
        owner: &OwnerId,
        since: UnixSeconds,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let state = self.lock();
        let Some(index) = live(&state.recent, owner, Instant::now()) else {
            return Ok(Vec::new());
        };
        // Entries are kept in insertion order: newest first is the reverse.
        Ok(index
            .value
            .iter()
            .rev()
            .filter(|(created, _)| *created >= since)
            .take(limit)
            .map(|(_, sealed)| sealed.clone())
            .collect())
    }

    async fn receipt(&self, id: &ReceiptId) -> Result<Option<StoredReceipt>, StoreError> {
        let now = Instant::now();
        let state = self.lock();
        let Some(pointer) = live(&state.pointers, id, now) else {
            return Ok(None);
        };
        let secret_id = pointer.value;
        let Some(receipt) = live(&state.receipts, &secret_id, now) else {
            return Ok(None);
        };
        let secret_ttl =
            live(&state.records, &secret_id, now).map(|record| record.expires_at - now);
        Ok(Some(StoredReceipt {
            secret_id,
            sealed: receipt.value.sealed.clone(),
            state: receipt.value.state,
            updated: receipt.value.updated,
            received: receipt.value.received,
            burned: receipt.value.burned,
            receipt_ttl: receipt.expires_at - now,
            secret_ttl,
        }))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl RateLimiter for MemoryStore {
    async fn rate_limit(
        &self,
        key: &RateKey,
        limit: u32,
        window: Duration,
        lease: Lease,
    ) -> Result<RateDecision, StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        state.purge_if_due(now);
        let entry = state
            .rate_windows
            .entry(*key)
            .or_insert_with(|| RateWindow {
                counted: VecDeque::new(),
                total: 0,
            });
        while let Some(&(until, count)) = entry.counted.front()
            && until <= now
        {
            entry.counted.pop_front();
            entry.total -= u64::from(count);
        }
        let left = u64::from(limit).saturating_sub(entry.total);
        if left == 0 {
            let oldest = entry.counted.front().map_or(now, |&(until, _)| until);
            return Ok(RateDecision::Limited {
                retry_after: oldest.saturating_duration_since(now),
            });
        }
        // A lease asks for at least one request.
        let wanted = lease.count.max(1);
        // Fits in u32: at most `wanted`.
        let granted = u32::try_from(left.min(u64::from(wanted))).unwrap_or(wanted);
        // Grants held for different times need not end in the order they were made.
        let until = now + window + lease.hold;
        let position = entry.counted.partition_point(|&(other, _)| other <= until);
        entry.counted.insert(position, (until, granted));
        entry.total += u64::from(granted);
        Ok(RateDecision::Allowed { granted })
    }
}

#[async_trait]
impl KeyCheck for MemoryStore {
    async fn key_check(&self, proposed: Vec<u8>, replace: bool) -> Result<Vec<u8>, StoreError> {
        let mut state = self.lock();
        if replace || state.key_check.is_none() {
            state.key_check = Some(proposed);
        }
        Ok(state.key_check.clone().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: usize = 1024;

    fn secret(index: usize, ttl: Duration) -> NewSecret {
        NewSecret {
            secret_id: SecretId::from_secret_key(&format!("key-{index}")),
            receipt_id: ReceiptId::from_metadata_key(&format!("meta-{index}")),
            record: SecretRecord {
                protected: false,
                end_to_end: false,
                sealed: vec![7; 16 * KIB],
            },
            receipt: vec![9; 100],
            created: 1_000,
            secret_ttl: ttl,
            receipt_ttl: ttl,
            recent: Some(crate::RecentEntry {
                owner: OwnerId::from_custid("alice"),
                sealed: vec![3; 60],
                retain: ttl,
            }),
        }
    }

    /// Fills `store` with 16 KiB secrets of `ttl` until it refuses one; returns how many it took.
    async fn fill(store: &MemoryStore, ttl: Duration) -> usize {
        for index in 0.. {
            match store.create(secret(index, ttl)).await {
                Ok(()) => {}
                Err(StoreError::Full) => return index,
                Err(other) => panic!("unexpected {other}"),
            }
        }
        unreachable!("the loop ends when the store is full")
    }

    #[tokio::test]
    async fn a_full_store_refuses_shares_and_takes_still_work() {
        let store = MemoryStore::with_budget(256 * KIB);
        let held = fill(&store, Duration::from_secs(3600)).await;
        // 16 KiB each plus bookkeeping: fewer than 16 fit, and most of the budget is used.
        assert!((12..16).contains(&held), "{held} secrets held");
        assert!(matches!(
            store.create(secret(1_000, Duration::from_secs(3600))).await,
            Err(StoreError::Full)
        ));
        let taken = store
            .take_unprotected(&SecretId::from_secret_key("key-0"), 2_000)
            .await
            .expect("take");
        assert!(matches!(taken, Take::Taken(_)));
        // The revealed secret's bytes came back.
        store
            .create(secret(1_001, Duration::from_secs(3600)))
            .await
            .expect("room again after a reveal");
    }

    #[tokio::test]
    async fn expired_secrets_give_their_space_back() {
        let store = MemoryStore::with_budget(256 * KIB);
        let short = Duration::from_millis(50);
        let held = fill(&store, short).await;
        assert!(held > 0);
        // Waits for the expiry itself (no fixed sleep): once the entries are past their TTL,
        // the refused share fits again because the store sweeps before refusing.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match store.create(secret(held, short)).await {
                Ok(()) => break,
                Err(StoreError::Full) if Instant::now() < deadline => {
                    tokio::task::yield_now().await;
                }
                Err(other) => panic!("still refused after the TTL: {other}"),
            }
        }
        // Every byte is given back once everything has expired: the count returns to zero.
        let expected = 0;
        loop {
            let used = {
                let mut state = store.lock();
                state.purge(Instant::now());
                state.used_bytes
            };
            if used == expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{used} bytes counted, {expected} expected"
            );
            tokio::task::yield_now().await;
        }
    }
}
