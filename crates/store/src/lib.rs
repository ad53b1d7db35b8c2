//! burnbox's storage seam: the traits every store implements ([`SecretStore`] for secrets and
//! receipts, [`RateLimiter`] for request counting, [`KeyCheck`] for the master-key check blob),
//! the ids and records they speak in, and [`MemoryStore`], the embedded default. The Redis
//! implementation lives in its own crate (`burnbox-store-redis`), so nothing that depends on this
//! one (core above all) can reach Redis.
//!
//! A store keeps opaque, already-sealed bytes and offers atomic operations on them: create a
//! secret with its receipt, take a secret exactly once, read a receipt. It knows nothing of
//! policy, crypto or transports. What it does own is the addressing: records are addressed by a
//! domain-separated SHA-256 of their keys ([`SecretId`], [`ReceiptId`]), so no storage key ever
//! contains a secret key or metadata key.
//!
//! Ids of guessable subjects ([`OwnerId`] of a customer id, [`RateKey`] of a client address)
//! are named in a shared store through a keyed hash with a [`NamingKey`] derived from the master
//! key, so a reader of the store cannot test guesses against them. [`SecretId`] and
//! [`ReceiptId`] stay plain SHA-256: they hash ~160-bit random keys nobody can guess, and must
//! not move when the master key rotates.
//!
//! Never: depend on a store client (Redis or any other), see a plaintext, a key, a passphrase or
//! a token, or decide policy.

mod memory;

use std::time::Duration;

use async_trait::async_trait;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub use memory::{DEFAULT_MEMORY_BUDGET_BYTES, MemoryStore};

/// Seconds since the Unix epoch.
pub type UnixSeconds = i64;

/// Where a secret and its receipt live: SHA-256 over a domain tag and the secret key.
///
/// Independent of the master key, so rotating the master key never moves a record; the secret
/// key carries at least 128 bits of entropy, so the id cannot be turned back into a link.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretId([u8; 32]);

impl SecretId {
    /// Derives the storage id of the secret revealed by `secret_key`.
    pub fn from_secret_key(secret_key: &str) -> Self {
        Self(domain_hash(b"burnbox/v1/secret-id", secret_key))
    }

    /// The id from its 32 raw bytes, as a store reads it back (a receipt's pointer names its
    /// secret by id).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The id as 32 raw bytes (bound as associated data by the crypto in core).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SecretId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The id is not secret, but a short prefix is all a log reader needs.
        write!(f, "SecretId({}…)", short_hex(&self.0))
    }
}

/// Where the pointer from a metadata key to its secret lives: SHA-256 over a domain tag and
/// the metadata key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReceiptId([u8; 32]);

impl ReceiptId {
    /// Derives the storage id of the receipt read with `metadata_key`.
    pub fn from_metadata_key(metadata_key: &str) -> Self {
        Self(domain_hash(b"burnbox/v1/receipt-id", metadata_key))
    }

    /// The id as 32 raw bytes (what a store names the receipt pointer by).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for ReceiptId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReceiptId({}…)", short_hex(&self.0))
    }
}

/// Whose index of recent secrets: SHA-256 over a domain tag and the custid. A customer id is
/// easily guessed, so Redis names the index by a keyed hash of this id ([`NamingKey`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OwnerId([u8; 32]);

impl OwnerId {
    /// Derives the storage id of `custid`'s recent-secrets index.
    pub fn from_custid(custid: &str) -> Self {
        Self(domain_hash(b"burnbox/v1/owner-id", custid))
    }

    /// The id as 32 raw bytes (bound as associated data by the crypto in core).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for OwnerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnerId({}…)", short_hex(&self.0))
    }
}

/// Whose requests a rate limit counts, per action class: SHA-256 over a domain tag, the class
/// and the caller (a customer id or a client address). Addresses are few enough to enumerate,
/// so Redis names the window by a keyed hash of this id ([`NamingKey`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateKey([u8; 32]);

impl RateKey {
    /// The key counting `caller`'s requests of action class `class`.
    pub fn new(class: &str, caller: &str) -> Self {
        Self(domain_hash(
            b"burnbox/v1/rate",
            &format!("{class}\0{caller}"),
        ))
    }

    /// The key as 32 raw bytes. Guessable: a shared store names its window by
    /// [`NamingKey::name`] of these, never by the bytes themselves.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for RateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RateKey({}…)", short_hex(&self.0))
    }
}

/// The key of the keyed hash naming guessable ids in Redis ([`OwnerId`], [`RateKey`]). Derived
/// from the master key by core; without it, a name cannot be linked to a customer or address.
/// Never printed, zeroized on drop.
#[derive(Clone)]
pub struct NamingKey(Zeroizing<[u8; 32]>);

impl NamingKey {
    /// Wraps 32 bytes of key material.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// HMAC-SHA256 of `id` under this key: the name of a guessable id ([`OwnerId::as_bytes`],
    /// [`RateKey::as_bytes`]). The ids hashed are already domain-separated digests, so one key
    /// serves every kind of id.
    pub fn name(&self, id: &[u8; 32]) -> [u8; 32] {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(self.0.as_slice())
            .unwrap_or_else(|_| unreachable!("HMAC accepts 32-byte keys"));
        mac.update(id);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for NamingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NamingKey(..)")
    }
}

/// The naming keys in force, one per configured master key: names are written with `current`;
/// during a master-key rotation, indexes named with `previous` are still read.
#[derive(Clone, Debug)]
pub struct NamingKeys {
    /// Names everything written.
    pub current: NamingKey,
    /// The naming key of the previous master key, while one is configured.
    pub previous: Option<NamingKey>,
}

/// What [`RateLimiter::rate_limit`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    /// Within the limit: `granted` requests (at least one, at most the lease's count) were
    /// counted.
    Allowed {
        /// How many requests were counted for the caller to use.
        granted: u32,
    },
    /// Over the limit; nothing counted. The oldest counted request leaves the window after this.
    Limited {
        /// When a request would be allowed again.
        retry_after: Duration,
    },
}

/// How many requests one [`RateLimiter::rate_limit`] call counts, and for how long the caller
/// may go on using them.
///
/// A replica that counts several requests at once (a lease) spends them locally, without asking
/// the store again, within `hold` of asking. So the store keeps each lease counted for
/// `window + hold` from the moment it granted it: every request spent from a lease is then still
/// counted a whole window after it was spent, and the limit holds over any window, whichever
/// replica spent which request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// How many requests to count, at most: fewer are granted when fewer are left in the window.
    pub count: u32,
    /// How long after asking the caller may spend them.
    pub hold: Duration,
}

impl Lease {
    /// One request, spent at once: the plain sliding-window count.
    pub const ONE: Self = Self {
        count: 1,
        hold: Duration::ZERO,
    };
}

/// What [`SecretStore::fail_attempt`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailedAttempt {
    /// Counted; this many failures are left before the secret is burned.
    Remaining(u32),
    /// That was the last allowed failure: the secret is burned and its receipt says so.
    Burned,
    /// The secret is gone already.
    Missing,
}

/// The first 12 hex digits of an id: enough for a log reader to tell ids apart.
fn short_hex(bytes: &[u8; 32]) -> String {
    hex::encode(&bytes[..6])
}

fn domain_hash(domain: &[u8], key: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    // Length-prefixed domain so no (domain, key) pair can collide with another.
    hasher.update((domain.len() as u64).to_be_bytes());
    hasher.update(domain);
    hasher.update(key.as_bytes());
    hasher.finalize().into()
}

/// A stored secret: sealed bytes plus the facts the store must see without opening them.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretRecord {
    /// Whether revealing needs a passphrase; a protected record is never burned by
    /// [`SecretStore::take_unprotected`].
    pub protected: bool,
    /// Whether the value is end-to-end encrypted (the `bbx1` format): pages then know, before
    /// revealing, that only a client holding the link's key can show it.
    pub end_to_end: bool,
    /// The encrypted record, opaque to the store.
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRecord")
            .field("protected", &self.protected)
            .field("end_to_end", &self.end_to_end)
            .field("sealed_len", &self.sealed.len())
            .finish()
    }
}

/// The lifecycle state a store tracks for a receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptState {
    /// Shared, not yet revealed.
    New,
    /// Revealed once; the secret is gone.
    Received,
    /// Destroyed unread.
    Burned,
}

/// A receipt as stored: the sealed immutable part plus the state the store updates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReceipt {
    /// Where the receipt's secret lives (and lived, once taken).
    pub secret_id: SecretId,
    /// The immutable receipt fields, sealed by core, opaque to the store.
    pub sealed: Vec<u8>,
    /// Current state.
    pub state: ReceiptState,
    /// When the state last changed (creation time at first).
    pub updated: UnixSeconds,
    /// When the secret was taken, once it was.
    pub received: Option<UnixSeconds>,
    /// When the secret was burned, once it was.
    pub burned: Option<UnixSeconds>,
    /// Time left before the receipt expires.
    pub receipt_ttl: Duration,
    /// Time left before the secret expires; `None` once it is gone (taken, burned or expired).
    pub secret_ttl: Option<Duration>,
}

/// Everything [`SecretStore::create`] writes, in one go.
#[derive(Debug)]
pub struct NewSecret {
    /// Where the secret lives.
    pub secret_id: SecretId,
    /// Where the receipt pointer lives.
    pub receipt_id: ReceiptId,
    /// The secret record.
    pub record: SecretRecord,
    /// The sealed immutable part of the receipt.
    pub receipt: Vec<u8>,
    /// Creation time, the receipt's first `updated`.
    pub created: UnixSeconds,
    /// Lifetime of the secret.
    pub secret_ttl: Duration,
    /// Lifetime of the receipt (and its pointer).
    pub receipt_ttl: Duration,
    /// An entry for the owner's index of recent secrets, for authenticated owners.
    pub recent: Option<RecentEntry>,
}

/// One entry of a customer's index of recent secrets.
#[derive(Debug)]
pub struct RecentEntry {
    /// Whose index.
    pub owner: OwnerId,
    /// The sealed entry (core seals the metadata key in it), opaque to the store.
    pub sealed: Vec<u8>,
    /// How long the index keeps entries: older ones are dropped when this one is added.
    pub retain: Duration,
}

/// What [`SecretStore::inspect`] sees of a stored secret, without its sealed bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordStatus {
    /// Whether revealing needs a passphrase.
    pub protected: bool,
    /// Whether the value is end-to-end encrypted.
    pub end_to_end: bool,
    /// Time left before the secret expires.
    pub ttl: Duration,
}

/// What [`SecretStore::take_unprotected`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Take {
    /// The record was unprotected: it is now deleted and its receipt marked received.
    Taken(SecretRecord),
    /// The record needs a passphrase: it is returned untouched, still stored.
    Protected(SecretRecord),
    /// No such record (never existed, already taken, burned or expired).
    Missing,
}

/// Why a store operation failed. Messages never contain keys or values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backing store cannot be reached right now; retrying later may work.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store is full: nothing new can be stored until secrets are revealed, burned or
    /// expire.
    #[error("store full")]
    Full,
    /// The store answered with something it should not have.
    #[error("store failure: {0}")]
    Internal(String),
}

/// Atomic storage operations on secrets and receipts.
///
/// Implementations must guarantee, for any number of concurrent callers in any number of
/// processes sharing the store: a record is returned by a taking operation at most once, and
/// every record and receipt disappears by itself when its TTL runs out.
#[async_trait]
pub trait SecretStore: Send + Sync + 'static {
    /// Writes a new secret, its receipt (state new) and the receipt pointer.
    async fn create(&self, new: NewSecret) -> Result<(), StoreError>;

    /// Takes the record if it is unprotected (one round trip on the hot path): deletes it and
    /// marks its receipt received at `now`. A protected record is returned without change.
    async fn take_unprotected(&self, id: &SecretId, now: UnixSeconds) -> Result<Take, StoreError>;

    /// Takes the record whatever its protection (after core verified the passphrase): deletes
    /// it and marks its receipt received at `now`. `None` when it is already gone.
    async fn take(
        &self,
        id: &SecretId,
        now: UnixSeconds,
    ) -> Result<Option<SecretRecord>, StoreError>;

    /// Reads a record without taking it. `None` when it is gone.
    async fn peek(&self, id: &SecretId) -> Result<Option<SecretRecord>, StoreError>;

    /// Whether a record is there, whether it is protected and how long it has left, without
    /// reading its sealed bytes or changing anything (no attempt counted, receipt untouched).
    /// `None` when it is gone.
    async fn inspect(&self, id: &SecretId) -> Result<Option<RecordStatus>, StoreError>;

    /// Deletes the record unread and marks its receipt burned at `now`. `false` when the record
    /// was already gone (revealed, burned or expired), in which case nothing changes.
    async fn burn(&self, id: &SecretId, now: UnixSeconds) -> Result<bool, StoreError>;

    /// Counts a failed passphrase attempt on a secret. At `max_attempts` failures the secret is
    /// burned (its receipt marked burned at `now`). The count expires with the secret.
    async fn fail_attempt(
        &self,
        id: &SecretId,
        max_attempts: u32,
        now: UnixSeconds,
    ) -> Result<FailedAttempt, StoreError>;

    /// Reads a receipt through its pointer. `None` when the receipt expired or never existed.
    async fn receipt(&self, id: &ReceiptId) -> Result<Option<StoredReceipt>, StoreError>;

    /// The sealed entries of `owner`'s recent-secrets index created at or after `since`, newest
    /// first, at most `limit`.
    async fn recent(
        &self,
        owner: &OwnerId,
        since: UnixSeconds,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Checks that the store answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Sliding-window request counting, for the gate's rate limits. Kept in the same backend as the
/// secrets, so every process sharing a store shares the counts.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts up to `lease.count` requests under `key`, as many as keep the count within `limit`
    /// over the last `window` (a sliding window: at most `limit` in any `window`, all at once
    /// included). Each grant stays counted for `window + lease.hold`. Nothing is counted when
    /// none is left. Shared by every process using the same store.
    async fn rate_limit(
        &self,
        key: &RateKey,
        limit: u32,
        window: Duration,
        lease: Lease,
    ) -> Result<RateDecision, StoreError>;
}

/// The master-key check blob: one value per store, with no expiry, telling a starting server
/// whether its master keys are the ones the stored secrets were sealed with.
#[async_trait]
pub trait KeyCheck: Send + Sync + 'static {
    /// Stores `proposed` as the master-key check blob unless one is stored already, and returns
    /// the stored one (with `replace`, stores `proposed` in any case). Core seals a known text
    /// in it, so a server whose master key cannot open it refuses to start instead of failing
    /// every secret it touches.
    async fn key_check(&self, proposed: Vec<u8>, replace: bool) -> Result<Vec<u8>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_only_a_short_prefix_of_their_hex() {
        let id = SecretId::from_secret_key("k");
        let full = hex::encode(id.as_bytes());
        let printed = format!("{id:?}");
        assert_eq!(printed, format!("SecretId({}…)", &full[..12]));
        let receipt = ReceiptId::from_metadata_key("m");
        let printed = format!("{receipt:?}");
        assert_eq!(
            printed,
            format!("ReceiptId({}…)", &hex::encode(receipt.as_bytes())[..12])
        );
    }
}
