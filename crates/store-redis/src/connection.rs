//! Reaching Redis: the topology (one server or a Cluster), TLS (rustls with the ring provider,
//! optionally a custom CA), connecting lazily and reconnecting, the one [`Connection`] type the
//! store sends every command through whichever the topology, and what Redis's errors mean for
//! the store ([`classify`]).
//!
//! Never: print a URL (it may hold an ACL password), build a command or name a key (that is
//! `keys`, `scripts` and the store's business), or make starting the server wait for Redis.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use burnbox_store::StoreError;
use redis::RedisError;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use tokio::sync::Notify;

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

/// A connection to either topology; both connect on first use and reconnect by themselves.
#[derive(Clone)]
pub(crate) enum Connection {
    Standalone(ConnectionManager),
    // Shared, not copied: every command clones the connection, and the client is large.
    Cluster(Arc<LazyCluster>),
}

impl Connection {
    /// Prepares a connection to `topology`, each command and connection attempt bounded by
    /// `timeout`; `ca_certificates` (PEM) replace the system roots for `rediss://`. Redis need
    /// not be up yet: a standalone Redis is connected to on first use, a cluster in the
    /// background from now on.
    pub(crate) fn open(
        topology: &RedisTopology,
        timeout: Duration,
        ca_certificates: Option<&[u8]>,
    ) -> Result<Self, StoreError> {
        // rustls needs one process-wide crypto provider, and the redis crate builds its TLS
        // configuration with the process default. Installing ring's is a no-op when one is
        // installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certificates = ca_certificates.map(|ca| redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca.to_vec()),
        });
        Ok(match topology {
            RedisTopology::Standalone(url) => {
                let client = match certificates {
                    Some(certificates) => redis::Client::build_with_tls(url.as_str(), certificates),
                    None => redis::Client::open(url.as_str()),
                }
                .map_err(|err| StoreError::Internal(format!("invalid Redis URL: {err}")))?;
                let manager_config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(2));
                // Lazy: the first command connects, so the server starts (not ready) while Redis
                // is still coming up, and reconnects by itself from then on.
                Self::Standalone(
                    ConnectionManager::new_lazy_with_config(client, manager_config)
                        .map_err(classify)?,
                )
            }
            RedisTopology::Cluster(nodes) => {
                let mut builder = ClusterClient::builder(nodes.iter().map(String::as_str))
                    .connection_timeout(timeout)
                    .response_timeout(timeout);
                if let Some(certificates) = certificates {
                    builder = builder.certs(certificates);
                }
                let client = builder.build().map_err(|err| {
                    StoreError::Internal(format!("invalid Redis Cluster nodes: {err}"))
                })?;
                Self::Cluster(LazyCluster::start(client, timeout))
            }
        })
    }
}

/// A Redis Cluster connection made in the background, so the server can start (not ready)
/// before the cluster answers, as it can before a standalone Redis does. One task keeps trying
/// until the cluster answers: a command that gives up waiting never cancels an attempt, since a
/// cluster handshake (seed node, slot map, every node) may outlast one command's timeout. Once
/// made, the connection follows the cluster's topology by itself.
pub(crate) struct LazyCluster {
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

/// The store error a Redis error means: full, unavailable for now, or something else wrong.
pub(crate) fn classify(err: RedisError) -> StoreError {
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
