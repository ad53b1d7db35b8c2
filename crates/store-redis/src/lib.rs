//! burnbox's Redis store: [`RedisStore`] implements burnbox-store's [`SecretStore`],
//! [`RateLimiter`] and [`KeyCheck`] on a standalone Redis or a Redis Cluster, over TLS when the
//! URLs say `rediss://`.
//!
//! - `connection`: the topology, TLS, connecting and reconnecting, and what Redis errors mean;
//! - `keys`: the key layout (names, hash tags) and the bytes stored under each key;
//! - `scripts`: the Lua scripts that make each multi-step change atomic, and their invocation;
//! - `legacy`: the previous key layout, read until the last secret written in it expires;
//! - here: the store's operations, each one round trip (a command, a pipeline per slot, or a
//!   script) on the current layout, and one more on the previous layout when the current one
//!   has nothing for the id.
//!
//! A secret is two keys: its record, and its receipt (found by the receipt id). Taking or
//! burning a record leaves a tombstone in its place that is the receipt's state, so one script
//! takes the record and marks the receipt in a single round trip, on one key (one Redis Cluster
//! slot). Everything but the master-key check carries a TTL: the record its own, the receipt
//! and the tombstone twice that. No sweeper is needed. After a master-key rotation a customer's
//! recent list is read under the previous naming key too, until its entries expire; rate-limit
//! windows (one minute) simply start afresh.
//!
//! Never: see a plaintext, a key, a passphrase or a token (records arrive sealed, ids hashed);
//! decide policy; be depended on by core (only the server, which picks the store, knows it).

mod connection;
mod keys;
mod legacy;
mod scripts;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use burnbox_store::{
    FailedAttempt, KeyCheck, Lease, NamingKeys, NewSecret, OwnerId, RateDecision, RateKey,
    RateLimiter, ReceiptId, ReceiptState, RecordStatus, SecretId, SecretRecord, SecretStore,
    StoreError, StoredReceipt, Take, UnixSeconds,
};
use redis::AsyncCommands;

pub use connection::RedisTopology;

use connection::{Connection, classify};
use keys::{
    KEY_CHECK, RecordSlot, SecretKeys, decode_flags, is_tombstone, parse_receipt_value,
    parse_record_slot, parse_tombstone, rate_keys, receipt_key, receipt_value, recent_key,
    record_value, unkeyed_recent_key,
};
use legacy::Legacy;
use scripts::{Scripts, TakeMode, TakeOutcome};

/// How [`RedisStore`] connects.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// Where Redis is.
    pub topology: RedisTopology,
    /// Longest wait for one command's answer (or for a connection) before failing as unavailable.
    pub timeout: Duration,
    /// The keys naming customers' recent lists and rate-limit windows.
    pub naming: NamingKeys,
    /// PEM certificates of the CAs a `rediss://` server must chain to; `None`: the system's
    /// root certificates.
    pub ca_certificates: Option<Vec<u8>>,
}

/// [`SecretStore`], [`RateLimiter`] and [`KeyCheck`] on a standalone Redis or a Redis Cluster,
/// reconnecting by itself after Redis restarts.
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    naming: NamingKeys,
    scripts: Scripts,
    legacy: Legacy,
}

impl RedisStore {
    /// Prepares the connection. Redis need not be up yet: a standalone Redis is connected to on
    /// first use, a cluster in the background from now on.
    pub async fn connect(config: &RedisConfig) -> Result<Self, StoreError> {
        let connection = Connection::open(
            &config.topology,
            config.timeout,
            config.ca_certificates.as_deref(),
        )?;
        Ok(Self {
            connection,
            naming: config.naming.clone(),
            scripts: Scripts::new(),
            legacy: Legacy::new(),
        })
    }

    /// The entries of the recent list named `name` created at or after `since`, newest first, at
    /// most `limit`, with their scores (creation time in µs).
    async fn read_recent(
        &self,
        name: String,
        since: UnixSeconds,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, f64)>, StoreError> {
        let mut connection = self.connection.clone();
        redis::cmd("ZREVRANGEBYSCORE")
            .arg(name)
            .arg("+inf")
            .arg(seconds_to_micros(since))
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut connection)
            .await
            .map_err(classify)
    }

    /// Takes the record of `id` as `mode` allows: in the current layout (one script), else in
    /// the previous one.
    async fn take_as(
        &self,
        id: &SecretId,
        mode: TakeMode,
        at: UnixSeconds,
    ) -> Result<Option<(TakeOutcome, SecretRecord)>, StoreError> {
        let taken = self
            .scripts
            .take(&self.connection, &SecretKeys::of(id), mode, at)
            .await?;
        match taken {
            Some((outcome, bytes)) => match parse_record_slot(&bytes)? {
                RecordSlot::Live(record) => Ok(Some((outcome, record))),
                // The script never returns a tombstone.
                RecordSlot::Gone(..) => Err(StoreError::Internal(
                    "the take script returned a tombstone".into(),
                )),
            },
            None => self.legacy.take(&self.connection, id, mode, at).await,
        }
    }
}

#[async_trait]
impl SecretStore for RedisStore {
    #[tracing::instrument(name = "redis create", skip_all, fields(otel.name = "PIPELINE", otel.kind = "client", db.system = "redis", db.operation.name = "PIPELINE"))]
    async fn create(&self, new: NewSecret) -> Result<(), StoreError> {
        // The record, the receipt and the recent index each live in their own slot, so three
        // requests (a cluster refuses pipelines across slots). They are sent together on the
        // multiplexed connection, so this is still about one round trip.
        let mut record = redis::cmd("SET");
        record
            .arg(SecretKeys::of(&new.secret_id).record())
            .arg(record_value(
                new.record,
                new.receipt_ttl.saturating_sub(new.secret_ttl),
            ))
            .arg("PX")
            .arg(millis(new.secret_ttl));
        let mut receipt = redis::cmd("SET");
        receipt
            .arg(receipt_key(&new.receipt_id))
            .arg(receipt_value(&new.secret_id, new.created, &new.receipt))
            .arg("PX")
            .arg(millis(new.receipt_ttl));
        let mut index = redis::pipe();
        if let Some(recent) = new.recent {
            let key = recent_key(&self.naming.current, &recent.owner);
            let score = now_micros();
            let retain_micros = i64::try_from(recent.retain.as_micros()).unwrap_or(i64::MAX);
            index
                .zadd(&key, recent.sealed, score)
                .ignore()
                .cmd("ZREMRANGEBYSCORE")
                .arg(&key)
                .arg("-inf")
                .arg(format!("({}", score.saturating_sub(retain_micros)))
                .ignore()
                .pexpire(&key, millis(recent.retain) as i64)
                .ignore();
        }
        let (mut for_record, mut for_receipt, mut for_index) = (
            self.connection.clone(),
            self.connection.clone(),
            self.connection.clone(),
        );
        tokio::try_join!(
            record.exec_async(&mut for_record),
            receipt.exec_async(&mut for_receipt),
            async {
                if index.is_empty() {
                    Ok(())
                } else {
                    index.exec_async(&mut for_index).await
                }
            },
        )
        .map(drop)
        .map_err(classify)
    }

    #[tracing::instrument(name = "redis take_unprotected", skip_all, fields(otel.name = "EVALSHA", otel.kind = "client", db.system = "redis", db.operation.name = "EVALSHA"))]
    async fn take_unprotected(&self, id: &SecretId, at: UnixSeconds) -> Result<Take, StoreError> {
        Ok(match self.take_as(id, TakeMode::Unprotected, at).await? {
            None => Take::Missing,
            Some((TakeOutcome::Taken, record)) => Take::Taken(record),
            Some((TakeOutcome::Protected, record)) => Take::Protected(record),
        })
    }

    #[tracing::instrument(name = "redis take", skip_all, fields(otel.name = "EVALSHA", otel.kind = "client", db.system = "redis", db.operation.name = "EVALSHA"))]
    async fn take(
        &self,
        id: &SecretId,
        at: UnixSeconds,
    ) -> Result<Option<SecretRecord>, StoreError> {
        Ok(self
            .take_as(id, TakeMode::Any, at)
            .await?
            .map(|(_, record)| record))
    }

    #[tracing::instrument(name = "redis peek", skip_all, fields(otel.name = "GET", otel.kind = "client", db.system = "redis", db.operation.name = "GET"))]
    async fn peek(&self, id: &SecretId) -> Result<Option<SecretRecord>, StoreError> {
        let mut connection = self.connection.clone();
        let bytes: Option<Vec<u8>> = connection
            .get(SecretKeys::of(id).record())
            .await
            .map_err(classify)?;
        match bytes.as_deref().map(parse_record_slot).transpose()? {
            Some(RecordSlot::Live(record)) => Ok(Some(record)),
            Some(RecordSlot::Gone(..)) => Ok(None),
            None => self.legacy.peek(&self.connection, id).await,
        }
    }

    #[tracing::instrument(name = "redis inspect", skip_all, fields(otel.name = "EVALSHA", otel.kind = "client", db.system = "redis", db.operation.name = "EVALSHA"))]
    async fn inspect(&self, id: &SecretId) -> Result<Option<RecordStatus>, StoreError> {
        let (head, pttl) = self
            .scripts
            .record_state(&self.connection, SecretKeys::of(id).record())
            .await?;
        match head.first() {
            None => {
                self.legacy
                    .inspect(&self.connection, &self.scripts, id)
                    .await
            }
            Some(&first) if is_tombstone(first) => Ok(None),
            Some(&flags) => record_status(flags, pttl),
        }
    }

    #[tracing::instrument(name = "redis burn", skip_all, fields(otel.name = "EVALSHA", otel.kind = "client", db.system = "redis", db.operation.name = "EVALSHA"))]
    async fn burn(&self, id: &SecretId, at: UnixSeconds) -> Result<bool, StoreError> {
        if self
            .scripts
            .burn(&self.connection, &SecretKeys::of(id), at)
            .await?
        {
            return Ok(true);
        }
        self.legacy.burn(&self.connection, id, at).await
    }

    #[tracing::instrument(name = "redis fail_attempt", skip_all, fields(otel.name = "EVALSHA", otel.kind = "client", db.system = "redis", db.operation.name = "EVALSHA"))]
    async fn fail_attempt(
        &self,
        id: &SecretId,
        max_attempts: u32,
        at: UnixSeconds,
    ) -> Result<FailedAttempt, StoreError> {
        let mut left = self
            .scripts
            .fail_attempt(&self.connection, &SecretKeys::of(id), max_attempts, at)
            .await?;
        if left < 0 {
            left = self
                .legacy
                .fail_attempt(&self.connection, id, max_attempts, at)
                .await?;
        }
        Ok(match u32::try_from(left) {
            Err(_) => FailedAttempt::Missing,
            Ok(0) => FailedAttempt::Burned,
            Ok(left) => FailedAttempt::Remaining(left),
        })
    }

    #[tracing::instrument(name = "redis recent", skip_all, fields(otel.name = "ZREVRANGEBYSCORE", otel.kind = "client", db.system = "redis", db.operation.name = "ZREVRANGEBYSCORE"))]
    async fn recent(
        &self,
        owner: &OwnerId,
        since: UnixSeconds,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        // The list under the current name, and where older entries may still be: under the
        // previous master key's name during a rotation, and under the unkeyed name of old.
        let read = |name: String| self.read_recent(name, since, limit);
        let (current, previous, unkeyed) = tokio::try_join!(
            read(recent_key(&self.naming.current, owner)),
            async {
                match &self.naming.previous {
                    Some(previous) => read(recent_key(previous, owner)).await,
                    None => Ok(Vec::new()),
                }
            },
            read(unkeyed_recent_key(owner)),
        )?;
        let mut entries: Vec<(Vec<u8>, f64)> =
            current.into_iter().chain(previous).chain(unkeyed).collect();
        // Newest first; an entry found under two names is listed once.
        entries.sort_by(|(_, a), (_, b)| b.total_cmp(a));
        let mut seen = std::collections::HashSet::new();
        entries.retain(|(entry, _)| seen.insert(entry.clone()));
        entries.truncate(limit);
        Ok(entries.into_iter().map(|(entry, _)| entry).collect())
    }

    #[tracing::instrument(name = "redis receipt", skip_all, fields(otel.name = "PIPELINE", otel.kind = "client", db.system = "redis", db.operation.name = "PIPELINE"))]
    async fn receipt(&self, id: &ReceiptId) -> Result<Option<StoredReceipt>, StoreError> {
        let mut connection = self.connection.clone();
        let name = receipt_key(id);
        let (value, receipt_pttl): (Option<Vec<u8>>, i64) = redis::pipe()
            .get(&name)
            .pttl(&name)
            .query_async(&mut connection)
            .await
            .map_err(classify)?;
        let Some(value) = value else {
            return self.legacy.receipt(&self.connection, id).await;
        };
        let Some(receipt_ttl) = remaining(receipt_pttl) else {
            // Expired between the two commands.
            return Ok(None);
        };
        let receipt = parse_receipt_value(&value)?;
        let (head, record_pttl) = self
            .scripts
            .record_state(
                &self.connection,
                SecretKeys::of(&receipt.secret_id).record(),
            )
            .await?;
        let mut stored = StoredReceipt {
            secret_id: receipt.secret_id,
            sealed: receipt.sealed,
            state: ReceiptState::New,
            updated: receipt.created,
            received: None,
            burned: None,
            receipt_ttl,
            secret_ttl: None,
        };
        match head.first() {
            // Gone unread: expired.
            None => {}
            Some(&first) if is_tombstone(first) => {
                let (state, at) = parse_tombstone(&head)
                    .ok_or_else(|| StoreError::Internal("malformed tombstone".into()))?;
                stored.state = state;
                stored.updated = at;
                match state {
                    ReceiptState::Received => stored.received = Some(at),
                    ReceiptState::Burned => stored.burned = Some(at),
                    ReceiptState::New => {}
                }
            }
            Some(&flags) => {
                decode_flags(flags)?;
                stored.secret_ttl = remaining(record_pttl);
            }
        }
        Ok(Some(stored))
    }

    #[tracing::instrument(name = "redis ping", skip_all, fields(otel.name = "PING", otel.kind = "client", db.system = "redis", db.operation.name = "PING"))]
    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(drop)
            .map_err(classify)
    }
}

#[async_trait]
impl RateLimiter for RedisStore {
    #[tracing::instrument(name = "redis rate_limit", skip_all, fields(otel.name = "EVALSHA", otel.kind = "client", db.system = "redis", db.operation.name = "EVALSHA"))]
    async fn rate_limit(
        &self,
        key: &RateKey,
        limit: u32,
        window: Duration,
        lease: Lease,
    ) -> Result<RateDecision, StoreError> {
        let (granted, wait_ms) = self
            .scripts
            .rate_limit(
                &self.connection,
                rate_keys(&self.naming.current, key),
                limit,
                window,
                lease,
            )
            .await?;
        Ok(match granted {
            0 => RateDecision::Limited {
                retry_after: Duration::from_millis(wait_ms),
            },
            granted => RateDecision::Allowed { granted },
        })
    }
}

#[async_trait]
impl KeyCheck for RedisStore {
    #[tracing::instrument(name = "redis key_check", skip_all, fields(otel.name = "PIPELINE", otel.kind = "client", db.system = "redis", db.operation.name = "PIPELINE"))]
    async fn key_check(&self, proposed: Vec<u8>, replace: bool) -> Result<Vec<u8>, StoreError> {
        let mut connection = self.connection.clone();
        let mut set = redis::cmd("SET");
        set.arg(KEY_CHECK).arg(proposed);
        if !replace {
            set.arg("NX");
        }
        let (_, stored): ((), Vec<u8>) = redis::pipe()
            .add_command(set)
            .get(KEY_CHECK)
            .query_async(&mut connection)
            .await
            .map_err(classify)?;
        Ok(stored)
    }
}

fn millis(duration: Duration) -> u64 {
    // Redis rejects a zero expiry; a secret always lives at least a millisecond.
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// What a status look-up reports of a live record with `flags` and `pttl` left (either layout).
fn record_status(flags: u8, pttl: i64) -> Result<Option<RecordStatus>, StoreError> {
    let Some(ttl) = remaining(pttl) else {
        return Ok(None);
    };
    let (protected, end_to_end) = decode_flags(flags)?;
    Ok(Some(RecordStatus {
        protected,
        end_to_end,
        ttl,
    }))
}

/// PTTL's answer as a duration: negative answers mean "no such key" (-2) or "no expiry" (-1).
fn remaining(pttl: i64) -> Option<Duration> {
    u64::try_from(pttl).ok().map(Duration::from_millis)
}

/// Microseconds since the epoch on this process's clock: the score of recent-index entries, fine
/// enough that entries created one after the other never tie.
fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX)
        })
}

fn seconds_to_micros(seconds: i64) -> i64 {
    seconds.saturating_mul(1_000_000)
}
