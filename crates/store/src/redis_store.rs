//! The Redis store. Layout (every name is derived from hashes, never from a key itself):
//!
//! - `burnbox:{<secret id>}:record`   string: one flag byte (bit 0 protected, bit 1 end-to-end)
//!   + the sealed record
//! - `burnbox:{<secret id>}:receipt`  hash: `sealed`, `state`, `updated`, `received`, `burned`
//! - `burnbox:pointer:<receipt id>`   string: the secret id (hex) of the receipt's secret
//! - `burnbox:{<secret id>}:failures` integer: failed passphrase attempts, expiring with the record
//! - `burnbox:rate:<keyed rate key>`  sorted set: request times of one caller and action class
//! - `burnbox:key-check`             string: a known text sealed with the master key (no TTL)
//! - `burnbox:recent:<keyed owner id>` sorted set: sealed entries scored by creation time (µs)
//!
//! A keyed name is the HMAC-SHA256 of the id under the current [`NamingKey`] (from the master
//! key): customer ids and client addresses are guessable, their plain hashes would not hide them.
//! After a master-key rotation a customer's recent list is read under the previous naming key
//! too, until its entries expire; rate-limit windows (one minute) simply start afresh.
//!
//! The record and the receipt share a hash tag, so one script burns the record with `GETDEL` and
//! marks the receipt in a single round trip, inside one Redis Cluster slot. Everything carries a
//! TTL: the record its own, the receipt and pointer twice that. No sweeper is needed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, RedisError, Script};
use tokio::sync::Notify;

use crate::{
    FailedAttempt, NamingKey, NamingKeys, NewSecret, OwnerId, RateDecision, RateKey, ReceiptId,
    ReceiptState, RecordStatus, SecretId, SecretRecord, SecretStore, StoreError, StoredReceipt,
    Take, UnixSeconds, hex32,
};

/// Takes a record atomically and marks its receipt received.
///
/// KEYS[1] record, KEYS[2] receipt; ARGV[1] "unprotected" to leave protected records in place
/// (returned untouched) or "any"; ARGV[2] the time of the take (Unix seconds).
/// Returns nil when there is no record, else {"taken" | "protected", record}.
const TAKE_SCRIPT: &str = r#"
if ARGV[1] == 'unprotected' then
  local peeked = redis.call('GET', KEYS[1])
  if not peeked then return false end
  if string.byte(peeked, 1) % 2 == 1 then return {'protected', peeked} end
end
local record = redis.call('GETDEL', KEYS[1])
if not record then return false end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'state', 'received', 'received', ARGV[2], 'updated', ARGV[2])
end
return {'taken', record}
"#;

/// Burns a record unread and marks its receipt burned.
///
/// KEYS[1] record, KEYS[2] receipt; ARGV[1] the time of the burn. Returns 1 if burned, else 0.
const BURN_SCRIPT: &str = r#"
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'state', 'burned', 'burned', ARGV[1], 'updated', ARGV[1])
end
return 1
"#;

/// Counts a failed passphrase attempt; burns the secret at the limit.
///
/// KEYS[1] record, KEYS[2] receipt, KEYS[3] failure count; ARGV[1] max failures, ARGV[2] now.
/// Returns -1 if the record is gone, 0 if this failure burned it, else the failures left.
///
/// `allow-oom`: a Redis at `maxmemory` (policy `noeviction`) refuses the `INCR` of a script
/// without it; the failure would go uncounted, and filling Redis would open unlimited guessing.
/// The counter is a few bytes.
const FAIL_ATTEMPT_SCRIPT: &str = r#"#!lua flags=allow-oom
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return -1 end
local failures = redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], ttl)
local max = tonumber(ARGV[1])
if failures < max then return max - failures end
redis.call('DEL', KEYS[1], KEYS[3])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'state', 'burned', 'burned', ARGV[2], 'updated', ARGV[2])
end
return 0
"#;

/// A sliding-window rate limit on Redis's clock, so every replica counts alike.
///
/// KEYS[1] the window (sorted set of request times in ms); ARGV[1] limit, ARGV[2] window in ms,
/// ARGV[3] a unique member for this request. Returns 0 if counted, else the ms until the oldest
/// counted request leaves the window.
///
/// `allow-oom`: a Redis at `maxmemory` (policy `noeviction`) would refuse the `ZADD`, and with it
/// every reveal, status and burn, so the store could not drain; a window is a few bytes a request.
const RATE_LIMIT_SCRIPT: &str = r#"#!lua flags=allow-oom
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"#;

/// Which Redis deployment to use. URLs may carry an ACL user (`redis://user:password@…`) and
/// may be `rediss://` for TLS; they are never printed.
#[derive(Clone)]
pub enum RedisTopology {
    /// One server: `redis[s]://[user:password@]host:port[/db]` or `redis+unix://`.
    Standalone(String),
    /// A Redis Cluster, reached through any of these node URLs (all `redis://` or all
    /// `rediss://`).
    Cluster(Vec<String>),
}

impl std::fmt::Debug for RedisTopology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // URLs may hold a password.
        match self {
            Self::Standalone(_) => f.write_str("Standalone(..)"),
            Self::Cluster(nodes) => write!(f, "Cluster({} nodes)", nodes.len()),
        }
    }
}

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

/// A connection to either topology; both connect on first use and reconnect by themselves.
#[derive(Clone)]
enum Connection {
    Standalone(ConnectionManager),
    // Shared, not copied: every command clones the connection, and the client is large.
    Cluster(Arc<LazyCluster>),
}

/// A Redis Cluster connection made in the background, so the server can start (not ready)
/// before the cluster answers, as it can before a standalone Redis does. One task keeps trying
/// until the cluster answers: a command that gives up waiting never cancels an attempt, since a
/// cluster handshake (seed node, slot map, every node) may outlast one command's timeout. Once
/// made, the connection follows the cluster's topology by itself.
struct LazyCluster {
    connection: OnceLock<ClusterConnection>,
    connected: Notify,
    /// Why the last attempt failed, for the error a waiting command gets.
    last_failure: Mutex<String>,
    /// The longest a command waits for the connection.
    timeout: Duration,
}

impl LazyCluster {
    /// Starts connecting to the cluster behind `client`.
    fn start(client: ClusterClient, timeout: Duration) -> Arc<Self> {
        let lazy = Arc::new(Self {
            connection: OnceLock::new(),
            connected: Notify::new(),
            last_failure: Mutex::new("not connected yet".to_owned()),
            timeout,
        });
        let weak = Arc::downgrade(&lazy);
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(100);
            loop {
                let attempt = client.get_async_connection().await;
                // The store is gone: nobody needs the connection any more.
                let Some(lazy) = weak.upgrade() else {
                    return;
                };
                match attempt {
                    Ok(connection) => {
                        let _ = lazy.connection.set(connection);
                        lazy.connected.notify_waiters();
                        tracing::info!("connected to the Redis Cluster");
                        return;
                    }
                    Err(err) => {
                        tracing::debug!(error = %err, "the Redis Cluster does not answer yet");
                        *lazy
                            .last_failure
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = err.to_string();
                    }
                }
                drop(lazy);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        });
        lazy
    }

    /// The connection, once made; waits for it at most the timeout.
    async fn connection(&self) -> Result<ClusterConnection, RedisError> {
        let made = async {
            loop {
                // Created before the check, so a connection made in between still wakes it.
                let connected = self.connected.notified();
                if let Some(connection) = self.connection.get() {
                    return connection.clone();
                }
                connected.await;
            }
        };
        tokio::time::timeout(self.timeout, made).await.map_err(|_| {
            let failure = self
                .last_failure
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no connection to the Redis Cluster yet ({failure})"),
            ))
        })
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Standalone(connection) => connection.req_packed_command(cmd),
            Self::Cluster(lazy) => {
                Box::pin(async move { lazy.connection().await?.req_packed_command(cmd).await })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Standalone(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(lazy) => Box::pin(async move {
                lazy.connection()
                    .await?
                    .req_packed_commands(pipeline, offset, count)
                    .await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Standalone(connection) => connection.get_db(),
            // A cluster has only database 0.
            Self::Cluster(_) => 0,
        }
    }
}

/// [`SecretStore`] on a standalone Redis or a Redis Cluster, reconnecting by itself after Redis
/// restarts.
#[derive(Clone)]
pub struct RedisStore {
    connection: Connection,
    naming: NamingKeys,
    take_script: Script,
    burn_script: Script,
    fail_attempt_script: Script,
    rate_limit_script: Script,
}

impl RedisStore {
    /// Prepares the connection. Redis need not be up yet: a standalone Redis is connected to on
    /// first use, a cluster in the background from now on.
    pub async fn connect(config: &RedisConfig) -> Result<Self, StoreError> {
        // rustls needs one process-wide crypto provider, and the redis crate builds its TLS
        // configuration with the process default. Installing ring's is a no-op when one is
        // installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certificates = config
            .ca_certificates
            .as_ref()
            .map(|ca| redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.clone()),
            });
        let connection = match &config.topology {
            RedisTopology::Standalone(url) => {
                let client = match certificates {
                    Some(certificates) => redis::Client::build_with_tls(url.as_str(), certificates),
                    None => redis::Client::open(url.as_str()),
                }
                .map_err(|err| StoreError::Internal(format!("invalid Redis URL: {err}")))?;
                let manager_config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(config.timeout))
                    .set_response_timeout(Some(config.timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(2));
                // Lazy: the first command connects, so the server starts (not ready) while Redis
                // is still coming up, and reconnects by itself from then on.
                Connection::Standalone(
                    ConnectionManager::new_lazy_with_config(client, manager_config)
                        .map_err(classify)?,
                )
            }
            RedisTopology::Cluster(nodes) => {
                let mut builder = ClusterClient::builder(nodes.iter().map(String::as_str))
                    .connection_timeout(config.timeout)
                    .response_timeout(config.timeout);
                if let Some(certificates) = certificates {
                    builder = builder.certs(certificates);
                }
                let client = builder.build().map_err(|err| {
                    StoreError::Internal(format!("invalid Redis Cluster nodes: {err}"))
                })?;
                Connection::Cluster(LazyCluster::start(client, config.timeout))
            }
        };
        Ok(Self {
            connection,
            naming: config.naming.clone(),
            take_script: Script::new(TAKE_SCRIPT),
            burn_script: Script::new(BURN_SCRIPT),
            fail_attempt_script: Script::new(FAIL_ATTEMPT_SCRIPT),
            rate_limit_script: Script::new(RATE_LIMIT_SCRIPT),
        })
    }

    async fn run_take(
        &self,
        id: &SecretId,
        mode: &str,
        at: UnixSeconds,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let mut connection = self.connection.clone();
        let keys = SecretKeys::of(id);
        self.take_script
            .key(keys.record())
            .key(keys.receipt())
            .arg(mode)
            .arg(at)
            .invoke_async(&mut connection)
            .await
            .map_err(classify)
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
}

/// The names of one secret's keys, all under one hash tag (so one cluster slot): the id's hex,
/// encoded once for all of them.
struct SecretKeys(String);

impl SecretKeys {
    fn of(id: &SecretId) -> Self {
        Self(id.to_hex())
    }

    fn record(&self) -> String {
        format!("burnbox:{{{}}}:record", self.0)
    }

    fn receipt(&self) -> String {
        format!("burnbox:{{{}}}:receipt", self.0)
    }

    fn failures(&self) -> String {
        format!("burnbox:{{{}}}:failures", self.0)
    }
}

fn pointer_key(id: &ReceiptId) -> String {
    format!("burnbox:pointer:{}", id.to_hex())
}

/// The one key without a TTL: it must outlive every secret.
const KEY_CHECK: &str = "burnbox:key-check";

fn rate_key(naming: &NamingKey, key: &RateKey) -> String {
    format!("burnbox:rate:{}", hex32(&naming.name(&key.0)))
}

fn recent_key(naming: &NamingKey, owner: &OwnerId) -> String {
    format!("burnbox:recent:{}", hex32(&naming.name(&owner.0)))
}

/// Where recent lists were kept before their names were keyed: read (never written) so that
/// lists from before the upgrade stay whole until their entries expire, 30 days after it.
fn unkeyed_recent_key(owner: &OwnerId) -> String {
    format!("burnbox:recent:{}", owner.to_hex())
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

/// A member unique to this request among those counted in the same microsecond: the process id
/// and a counter (not random: unique is all a sliding-window member needs).
fn unique_member() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    u64::from(std::process::id()) << 32 | (COUNTER.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff)
}

fn seconds_to_micros(seconds: i64) -> i64 {
    seconds.saturating_mul(1_000_000)
}

/// The record's flag byte: bit 0 protected (the take script reads it), bit 1 end-to-end.
const PROTECTED: u8 = 1;
const END_TO_END: u8 = 2;

fn record_to_bytes(record: SecretRecord) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(record.sealed.len() + 1);
    let flags = if record.protected { PROTECTED } else { 0 }
        | if record.end_to_end { END_TO_END } else { 0 };
    bytes.push(flags);
    bytes.extend_from_slice(&record.sealed);
    bytes
}

/// `(protected, end_to_end)` from a flag byte; an unknown bit means a record this version
/// cannot have written.
fn decode_flags(flags: u8) -> Result<(bool, bool), StoreError> {
    if flags & !(PROTECTED | END_TO_END) != 0 {
        return Err(StoreError::Internal("malformed secret record".into()));
    }
    Ok((flags & PROTECTED != 0, flags & END_TO_END != 0))
}

fn record_from_bytes(bytes: Vec<u8>) -> Result<SecretRecord, StoreError> {
    let Some((&flags, sealed)) = bytes.split_first() else {
        return Err(StoreError::Internal("malformed secret record".into()));
    };
    let (protected, end_to_end) = decode_flags(flags)?;
    Ok(SecretRecord {
        protected,
        end_to_end,
        sealed: sealed.to_vec(),
    })
}

/// Whether Redis answered (alone or within a pipeline) with an error whose code is one of
/// `codes`.
fn has_server_error(err: &RedisError, codes: &[&str]) -> bool {
    err.clone().into_server_errors().is_some_and(|errors| {
        errors
            .iter()
            .any(|(_, error)| codes.contains(&error.code()))
    })
}

/// Answers of a Redis that is up but cannot serve for now: loading its data after a restart,
/// a failover or a cluster resharding in progress. They pass by themselves, like an outage.
const PASSING_SERVER_ERRORS: &[&str] = &[
    "LOADING",
    "TRYAGAIN",
    "MASTERDOWN",
    "CLUSTERDOWN",
    "READONLY",
];

fn classify(err: RedisError) -> StoreError {
    // A write refused at `maxmemory` under `noeviction`: the store is full, like the memory
    // store at its budget, not failing.
    if has_server_error(&err, &["OOM"]) {
        return StoreError::Full;
    }
    if err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_unrecoverable_error()
        || has_server_error(&err, PASSING_SERVER_ERRORS)
    {
        StoreError::Unavailable(err.to_string())
    } else {
        StoreError::Internal(err.to_string())
    }
}

fn millis(duration: Duration) -> u64 {
    // Redis rejects a zero expiry; a secret always lives at least a millisecond.
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// PTTL's answer as a duration: negative answers mean "no such key" (-2) or "no expiry" (-1).
fn remaining(pttl: i64) -> Option<Duration> {
    u64::try_from(pttl).ok().map(Duration::from_millis)
}

fn parse_timestamp(
    fields: &HashMap<String, Vec<u8>>,
    name: &str,
) -> Result<Option<UnixSeconds>, StoreError> {
    fields
        .get(name)
        .map(|raw| {
            std::str::from_utf8(raw)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| StoreError::Internal(format!("malformed receipt field {name}")))
        })
        .transpose()
}

#[async_trait]
impl SecretStore for RedisStore {
    #[tracing::instrument(name = "redis create", skip_all, fields(otel.name = "PIPELINE", otel.kind = "client", db.system = "redis", db.operation.name = "PIPELINE"))]
    async fn create(&self, new: NewSecret) -> Result<(), StoreError> {
        let keys = SecretKeys::of(&new.secret_id);
        let receipt = keys.receipt();
        let receipt_ms = millis(new.receipt_ttl);
        // One pipeline per slot (a cluster refuses pipelines across slots): the record and its
        // receipt share one, the pointer and the recent index have their own. They are sent
        // together on the multiplexed connection, so this is still about one round trip.
        let mut secret = redis::pipe();
        secret
            .cmd("SET")
            .arg(keys.record())
            .arg(record_to_bytes(new.record))
            .arg("PX")
            .arg(millis(new.secret_ttl))
            .ignore()
            .hset_multiple(
                &receipt,
                &[
                    ("sealed", new.receipt),
                    ("state", ReceiptState::New.as_str().as_bytes().to_vec()),
                    ("updated", new.created.to_string().into_bytes()),
                ],
            )
            .ignore()
            .pexpire(&receipt, receipt_ms as i64)
            .ignore();
        let mut pointer = redis::cmd("SET");
        pointer
            .arg(pointer_key(&new.receipt_id))
            .arg(new.secret_id.to_hex())
            .arg("PX")
            .arg(receipt_ms);
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
        let (mut for_secret, mut for_pointer, mut for_index) = (
            self.connection.clone(),
            self.connection.clone(),
            self.connection.clone(),
        );
        tokio::try_join!(
            secret.exec_async(&mut for_secret),
            pointer.exec_async(&mut for_pointer),
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
        match self.run_take(id, "unprotected", at).await? {
            None => Ok(Take::Missing),
            Some((kind, bytes)) => {
                let record = record_from_bytes(bytes)?;
                match kind.as_str() {
                    "taken" => Ok(Take::Taken(record)),
                    "protected" => Ok(Take::Protected(record)),
                    other => Err(StoreError::Internal(format!(
                        "unexpected take result {other:?}"
                    ))),
                }
            }
        }
    }

    #[tracing::instrument(name = "redis take", skip_all, fields(otel.name = "EVALSHA", otel.kind = "client", db.system = "redis", db.operation.name = "EVALSHA"))]
    async fn take(
        &self,
        id: &SecretId,
        at: UnixSeconds,
    ) -> Result<Option<SecretRecord>, StoreError> {
        self.run_take(id, "any", at)
            .await?
            .map(|(_, bytes)| record_from_bytes(bytes))
            .transpose()
    }

    #[tracing::instrument(name = "redis peek", skip_all, fields(otel.name = "GET", otel.kind = "client", db.system = "redis", db.operation.name = "GET"))]
    async fn peek(&self, id: &SecretId) -> Result<Option<SecretRecord>, StoreError> {
        let mut connection = self.connection.clone();
        let bytes: Option<Vec<u8>> = connection
            .get(SecretKeys::of(id).record())
            .await
            .map_err(classify)?;
        bytes.map(record_from_bytes).transpose()
    }

    #[tracing::instrument(name = "redis inspect", skip_all, fields(otel.name = "PIPELINE", otel.kind = "client", db.system = "redis", db.operation.name = "PIPELINE"))]
    async fn inspect(&self, id: &SecretId) -> Result<Option<RecordStatus>, StoreError> {
        let mut connection = self.connection.clone();
        let record = SecretKeys::of(id).record();
        // The flag byte alone: the sealed value never leaves Redis for a look-up. The two
        // commands may straddle a take; either one seeing the record gone means it is gone.
        let (flag, pttl): (Vec<u8>, i64) = redis::pipe()
            .getrange(&record, 0, 0)
            .pttl(&record)
            .query_async(&mut connection)
            .await
            .map_err(classify)?;
        let (Some(&flags), Some(ttl)) = (flag.first(), remaining(pttl)) else {
            return Ok(None);
        };
        let (protected, end_to_end) = decode_flags(flags)?;
        Ok(Some(RecordStatus {
            protected,
            end_to_end,
            ttl,
        }))
    }

    #[tracing::instrument(name = "redis burn", skip_all, fields(otel.name = "EVALSHA", otel.kind = "client", db.system = "redis", db.operation.name = "EVALSHA"))]
    async fn burn(&self, id: &SecretId, at: UnixSeconds) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let keys = SecretKeys::of(id);
        let burned: i64 = self
            .burn_script
            .key(keys.record())
            .key(keys.receipt())
            .arg(at)
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        Ok(burned == 1)
    }

    #[tracing::instrument(name = "redis fail_attempt", skip_all, fields(otel.name = "EVALSHA", otel.kind = "client", db.system = "redis", db.operation.name = "EVALSHA"))]
    async fn fail_attempt(
        &self,
        id: &SecretId,
        max_attempts: u32,
        at: UnixSeconds,
    ) -> Result<FailedAttempt, StoreError> {
        let mut connection = self.connection.clone();
        let keys = SecretKeys::of(id);
        let left: i64 = self
            .fail_attempt_script
            .key(keys.record())
            .key(keys.receipt())
            .key(keys.failures())
            .arg(max_attempts)
            .arg(at)
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        Ok(match u32::try_from(left) {
            Err(_) => FailedAttempt::Missing,
            Ok(0) => FailedAttempt::Burned,
            Ok(left) => FailedAttempt::Remaining(left),
        })
    }

    #[tracing::instrument(name = "redis rate_limit", skip_all, fields(otel.name = "EVALSHA", otel.kind = "client", db.system = "redis", db.operation.name = "EVALSHA"))]
    async fn rate_limit(
        &self,
        key: &RateKey,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StoreError> {
        let mut connection = self.connection.clone();
        let member = format!("{}-{}", now_micros(), unique_member());
        let wait_ms: u64 = self
            .rate_limit_script
            .key(rate_key(&self.naming.current, key))
            .arg(limit)
            .arg(millis(window))
            .arg(member)
            .invoke_async(&mut connection)
            .await
            .map_err(classify)?;
        Ok(match wait_ms {
            0 => RateDecision::Allowed,
            wait => RateDecision::Limited {
                retry_after: Duration::from_millis(wait),
            },
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

    #[tracing::instrument(name = "redis receipt", skip_all, fields(otel.name = "GET", otel.kind = "client", db.system = "redis", db.operation.name = "GET"))]
    async fn receipt(&self, id: &ReceiptId) -> Result<Option<StoredReceipt>, StoreError> {
        let mut connection = self.connection.clone();
        let pointer: Option<String> = connection.get(pointer_key(id)).await.map_err(classify)?;
        let Some(secret_id) = pointer.as_deref().and_then(parse_secret_id) else {
            return Ok(None);
        };
        let keys = SecretKeys::of(&secret_id);
        let receipt = keys.receipt();
        let (fields, receipt_pttl, record_pttl): (HashMap<String, Vec<u8>>, i64, i64) =
            redis::pipe()
                .hgetall(&receipt)
                .pttl(&receipt)
                .pttl(keys.record())
                .query_async(&mut connection)
                .await
                .map_err(classify)?;
        let (Some(receipt_ttl), Some(sealed), Some(state)) = (
            remaining(receipt_pttl),
            fields.get("sealed"),
            fields.get("state"),
        ) else {
            return Ok(None);
        };
        let state = std::str::from_utf8(state)
            .ok()
            .and_then(ReceiptState::parse)
            .ok_or_else(|| StoreError::Internal("malformed receipt state".into()))?;
        Ok(Some(StoredReceipt {
            secret_id,
            sealed: sealed.clone(),
            state,
            updated: parse_timestamp(&fields, "updated")?.unwrap_or_default(),
            received: parse_timestamp(&fields, "received")?,
            burned: parse_timestamp(&fields, "burned")?,
            receipt_ttl,
            secret_ttl: remaining(record_pttl),
        }))
    }

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

fn parse_secret_id(hex_id: &str) -> Option<SecretId> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_id, &mut bytes).ok()?;
    Some(SecretId(bytes))
}
