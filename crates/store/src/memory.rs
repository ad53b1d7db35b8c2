//! The embedded store: everything in one process, behind one mutex, with the same guarantees as
//! Redis (exactly-once take, expiry by TTL) so `cargo run` works on a bare machine.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::{
    FailedAttempt, NewSecret, OwnerId, RateDecision, RateKey, ReceiptId, ReceiptState, SecretId,
    SecretRecord, SecretStore, StoreError, StoredReceipt, Take, UnixSeconds,
};

/// How often expired entries are swept out; between sweeps they are only invisible.
const PURGE_INTERVAL: Duration = Duration::from_secs(30);

/// In-process [`SecretStore`]; secrets are lost when the process exits.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Default)]
struct State {
    records: HashMap<SecretId, Expiring<SecretRecord>>,
    receipts: HashMap<SecretId, Expiring<ReceiptEntry>>,
    pointers: HashMap<ReceiptId, Expiring<SecretId>>,
    recent: HashMap<OwnerId, Expiring<RecentIndex>>,
    failures: HashMap<SecretId, u32>,
    key_check: Option<Vec<u8>>,
    rate_windows: HashMap<RateKey, RateWindow>,
    next_purge: Option<Instant>,
}

/// The times of the requests counted in a rate-limit window, oldest first.
struct RateWindow {
    counted: VecDeque<Instant>,
    window: Duration,
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
        self.records.retain(|_, entry| entry.live(now));
        self.receipts.retain(|_, entry| entry.live(now));
        self.pointers.retain(|_, entry| entry.live(now));
        self.recent.retain(|_, entry| entry.live(now));
        let records = &self.records;
        self.failures.retain(|id, _| records.contains_key(id));
        self.rate_windows.retain(|_, window| {
            window
                .counted
                .back()
                .is_some_and(|last| *last + window.window > now)
        });
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
        let record = self.records.remove(id).filter(|entry| entry.live(now));
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
        let mut state = self.lock();
        state.purge_if_due(now);
        state.records.insert(
            new.secret_id,
            Expiring::new(new.record, new.secret_ttl, now),
        );
        let receipt = ReceiptEntry {
            sealed: new.receipt,
            state: ReceiptState::New,
            updated: new.created,
            received: None,
            burned: None,
        };
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
            let mut entries = state
                .recent
                .remove(&recent.owner)
                .filter(|index| index.live(now))
                .map(|index| index.value)
                .unwrap_or_default();
            entries.retain(|(created, _)| *created >= oldest_kept);
            entries.push((new.created, recent.sealed));
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

    async fn rate_limit(
        &self,
        key: &RateKey,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        state.purge_if_due(now);
        let entry = state
            .rate_windows
            .entry(*key)
            .or_insert_with(|| RateWindow {
                counted: VecDeque::new(),
                window,
            });
        entry.window = window;
        while entry
            .counted
            .front()
            .is_some_and(|oldest| *oldest + window <= now)
        {
            entry.counted.pop_front();
        }
        if entry.counted.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
            let oldest = entry.counted.front().copied().unwrap_or(now);
            return Ok(RateDecision::Limited {
                retry_after: (oldest + window).saturating_duration_since(now),
            });
        }
        entry.counted.push_back(now);
        Ok(RateDecision::Allowed)
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

    async fn key_check(&self, proposed: Vec<u8>, replace: bool) -> Result<Vec<u8>, StoreError> {
        let mut state = self.lock();
        if replace || state.key_check.is_none() {
            state.key_check = Some(proposed);
        }
        Ok(state.key_check.clone().unwrap_or_default())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
