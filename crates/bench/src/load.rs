//! The load itself: the scenarios (REST and gRPC reveals, REST shares, raw `GETDEL`), each run
//! against one server with one load shape, REST reveals on a bare floor server, and the untimed
//! setup they need (secrets to reveal, plain Redis keys, secrets left stored).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use burnbox_spec::v1::secrets_client::SecretsClient;
use burnbox_spec::v1::{RevealSecretRequest, ShareSecretRequest};
use bytes::Bytes;
use clap::ValueEnum;
use http::StatusCode;
use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;
use tonic::transport::Channel;

use crate::measure::{Measured, Outcome, drive};
use crate::redis_info;
use crate::rest::RestConnection;

/// What to measure.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Timed shares over REST.
    ShareRest,
    /// Timed reveals over REST.
    RevealRest,
    /// Timed reveals over gRPC.
    RevealGrpc,
    /// Timed raw GETDEL on Redis: the store's part of a reveal, with no server at all.
    Baseline,
}

impl Scenario {
    /// The scenario's name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::ShareRest => "share REST",
            Self::RevealRest => "reveal REST",
            Self::RevealGrpc => "reveal gRPC",
            Self::Baseline => "GETDEL baseline",
        }
    }
}

/// One server under test.
#[derive(Clone, Debug)]
pub struct Server {
    /// Its REST base URL.
    pub http: String,
    /// Its gRPC URL.
    pub grpc: String,
    /// Its process id, for its CPU time and memory (Linux, server on this host).
    pub pid: Option<u32>,
    /// The URL of the Redis it uses, for Redis's CPU time per request.
    pub redis: Option<String>,
}

/// The shape of the load, the same for every server it is put on.
#[derive(Clone, Debug)]
pub struct Load {
    /// Timed requests per run.
    pub requests: usize,
    /// Concurrent clients (one REST connection each).
    pub concurrency: usize,
    /// HTTP/2 connections the gRPC clients share.
    pub grpc_connections: usize,
    /// Size of each secret, in bytes.
    pub secret_bytes: usize,
}

/// Runs `scenario` (not the baseline, which has no server) once against `server`.
pub async fn run(scenario: Scenario, server: &Server, load: &Load) -> Result<Measured, String> {
    prepare(scenario, server, load).await?.run(load).await
}

/// A run on one server whose untimed setup is done: what it will reveal is already stored. A
/// pair prepares every run of both sides before it times any, so Redis's key tables grow (and
/// start rehashing, which costs Redis CPU for a while after each doubling) before anything is
/// timed, rather than inside whichever side's run happens to follow a doubling.
pub struct Prepared<'a> {
    server: &'a Server,
    targets: Targets,
}

/// What a prepared run asks for.
enum Targets {
    /// REST shares: nothing to set up.
    ShareRest,
    /// REST reveals of secrets shared through the server: (key, value) by index.
    RevealRest(Arc<Vec<(String, String)>>),
    /// gRPC reveals of secrets shared through the server.
    RevealGrpc(Arc<Vec<(String, String)>>),
    /// REST reveals on a floor of plain Redis keys.
    RevealFloor(Arc<PlainKeys>),
}

/// Sets up one run of `scenario` (not the baseline) on `server`, untimed.
pub async fn prepare<'a>(
    scenario: Scenario,
    server: &'a Server,
    load: &Load,
) -> Result<Prepared<'a>, String> {
    let targets = match scenario {
        Scenario::ShareRest => Targets::ShareRest,
        Scenario::RevealRest => {
            Targets::RevealRest(create_secrets(server, load, load.requests).await?)
        }
        Scenario::RevealGrpc => {
            Targets::RevealGrpc(create_secrets(server, load, load.requests).await?)
        }
        Scenario::Baseline => {
            return Err("the baseline runs against Redis, not a server".to_owned());
        }
    };
    Ok(Prepared { server, targets })
}

/// Sets up one run of REST reveals on a floor: a bare server that answers
/// `POST /api/v1/secret/{key}` with `GETDEL key` on `server.redis` and nothing else. Its keys
/// are plain Redis strings, as large as burnbox's records; the requests, connections and checks
/// are then the tuned server's, so the two differ only in the server.
pub async fn prepare_floor<'a>(server: &'a Server, load: &Load) -> Result<Prepared<'a>, String> {
    // Every run of a pair is prepared before the first is timed, so each needs keys of its own.
    static PREPARED: AtomicUsize = AtomicUsize::new(0);
    let redis = server
        .redis
        .as_deref()
        .ok_or_else(|| "the floor's Redis is not known".to_owned())?;
    let connection = redis_connection(&redis_client(redis)?, redis).await?;
    let run = PREPARED.fetch_add(1, Ordering::Relaxed);
    let prefix = format!("bench:{}:floor:{run}:", std::process::id());
    let keys = set_plain_keys(&connection, prefix, load).await?;
    Ok(Prepared {
        server,
        targets: Targets::RevealFloor(Arc::new(keys)),
    })
}

impl Prepared<'_> {
    /// Times the run with `load` (the load it was prepared with).
    pub async fn run(self, load: &Load) -> Result<Measured, String> {
        let server = self.server;
        match self.targets {
            Targets::ShareRest => share_rest(server, load).await,
            Targets::RevealRest(secrets) => rest_reveals(server, load, secrets).await,
            Targets::RevealGrpc(secrets) => grpc_reveals(server, load, secrets).await,
            Targets::RevealFloor(keys) => rest_reveals(server, load, keys).await,
        }
    }
}

/// A secret value of `bytes` bytes (at least its index's digits), distinct per index.
fn secret_value(index: usize, bytes: usize) -> String {
    let mut value = format!("bench-{index}-");
    value.extend(std::iter::repeat_n('x', bytes.saturating_sub(value.len())));
    value
}

async fn grpc_clients(server: &Server, load: &Load) -> Result<Vec<SecretsClient<Channel>>, String> {
    let mut clients = Vec::new();
    for _ in 0..load.grpc_connections.max(1) {
        let channel = Channel::from_shared(server.grpc.clone())
            .map_err(|err| format!("gRPC URL: {err}"))?
            .connect()
            .await
            .map_err(|err| format!("cannot reach gRPC at {}: {err}", server.grpc))?;
        clients.push(SecretsClient::new(channel));
    }
    Ok(clients)
}

/// Shares `count` secrets through `server` over gRPC (untimed): value [`secret_value`], an hour
/// to live, `load.concurrency` shares in flight on `load.grpc_connections` connections. Hands
/// each share's index, key and value to `keep`; returns how many shares failed.
async fn share_secrets<K>(
    server: &Server,
    load: &Load,
    count: usize,
    keep: K,
) -> Result<usize, String>
where
    K: Fn(usize, String, String) -> Result<(), String> + Clone + Send + Sync + 'static,
{
    let clients = Arc::new(grpc_clients(server, load).await?);
    let bytes = load.secret_bytes;
    let measured = drive(count, load.concurrency, None, move |_, index| {
        let mut client = clients[index % clients.len()].clone();
        let keep = keep.clone();
        async move {
            let value = secret_value(index, bytes);
            let request = ShareSecretRequest {
                secret: value.clone(),
                ttl: Some(3600),
                ..Default::default()
            };
            let receipt = client
                .share_secret(request)
                .await
                .map_err(|status| status.to_string())?;
            keep(
                index,
                receipt.into_inner().secret_key.unwrap_or_default(),
                value,
            )?;
            Ok(true)
        }
    })
    .await;
    Ok(measured.errors)
}

/// Creates `count` secrets over gRPC (untimed) and returns their keys with their values.
async fn create_secrets(
    server: &Server,
    load: &Load,
    count: usize,
) -> Result<Arc<Vec<(String, String)>>, String> {
    let created = Arc::new(std::sync::Mutex::new(vec![
        (String::new(), String::new());
        count
    ]));
    let created_ref = created.clone();
    let errors = share_secrets(server, load, count, move |index, key, value| {
        created_ref.lock().map_err(|_| "lock poisoned".to_owned())?[index] = (key, value);
        Ok(())
    })
    .await?;
    if errors > 0 {
        return Err(format!(
            "{errors} of {count} secrets could not be created at {} (are rate limits off or high enough?)",
            server.grpc
        ));
    }
    let created = std::mem::take(&mut *created.lock().map_err(|_| "lock poisoned".to_owned())?);
    Ok(Arc::new(created))
}

/// What storing secrets without revealing them took.
pub struct Stored {
    /// How many were stored.
    pub count: usize,
    /// How long it took.
    pub elapsed: Duration,
}

impl Stored {
    /// Secrets stored per second.
    pub fn rate(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.count as f64 / seconds
        } else {
            0.0
        }
    }
}

/// Stores `count` secrets through `server` (untimed, forgetting their keys): what stays in the
/// store is what the server keeps of a secret nobody reveals. gRPC, `load.concurrency` shares
/// in flight on `load.grpc_connections` HTTP/2 connections: each read and write then carries
/// many shares, which cost the server about a quarter less CPU per share than one HTTP/1.1
/// share per connection at a time (measured on a busy 2-core machine: 51–72 µs against
/// 85–92), and the server sees no more concurrency than under the timed load. The generator's
/// memory does not grow with `count`. Fails if any share does.
pub async fn store_secrets(server: &Server, load: &Load, count: usize) -> Result<Stored, String> {
    let started = Instant::now();
    if count > 0 {
        let errors = share_secrets(server, load, count, |_, _, _| Ok(())).await?;
        if errors > 0 {
            return Err(format!(
                "{errors} of {count} secrets could not be stored at {}",
                server.grpc
            ));
        }
    }
    Ok(Stored {
        count,
        elapsed: started.elapsed(),
    })
}

/// One REST connection per client, each behind a lock only its own worker takes.
async fn rest_connections(
    server: &Server,
    load: &Load,
) -> Result<Arc<Vec<Mutex<RestConnection>>>, String> {
    let mut connections = Vec::with_capacity(load.concurrency);
    for _ in 0..load.concurrency.max(1) {
        connections.push(Mutex::new(RestConnection::connect(&server.http).await?));
    }
    Ok(Arc::new(connections))
}

/// The part of a reveal's JSON answer the generator checks.
#[derive(serde::Deserialize)]
struct Revealed {
    value: String,
}

/// [`drive`] with the CPU time `redis` (if any) spent meanwhile: read from its `INFO` just
/// before the first request and just after the last, so no setup is counted.
async fn timed<F, Fut>(
    redis: Option<&str>,
    requests: usize,
    concurrency: usize,
    server: Option<u32>,
    call: F,
) -> Measured
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Outcome> + Send,
{
    // An unreadable Redis CPU leaves that column empty rather than failing the measurement.
    let before = match redis {
        Some(url) => redis_info::cpu(url).await.ok(),
        None => None,
    };
    let mut measured = drive(requests, concurrency, server, call).await;
    let after = match redis {
        Some(url) => redis_info::cpu(url).await.ok(),
        None => None,
    };
    measured.redis_cpu = after
        .zip(before)
        .map(|(after, before)| after.saturating_sub(before));
    measured
}

/// What a run of REST reveals asks for: request `index`'s path, and the value its answer must
/// hold.
trait RevealTargets: Send + Sync + 'static {
    /// `/api/v1/secret/{key}`, built in the timed loop (one allocation, whatever the targets).
    fn path(&self, index: usize) -> String;
    /// The value the reveal must answer.
    fn value(&self, index: usize) -> &str;
}

/// Secrets shared through a server: (key, value) by index.
impl RevealTargets for Vec<(String, String)> {
    fn path(&self, index: usize) -> String {
        format!("/api/v1/secret/{}", self[index].0)
    }

    fn value(&self, index: usize) -> &str {
        &self[index].1
    }
}

impl RevealTargets for PlainKeys {
    fn path(&self, index: usize) -> String {
        format!("/api/v1/secret/{}{index}", self.prefix)
    }

    /// Every key holds the same value.
    fn value(&self, _index: usize) -> &str {
        &self.value
    }
}

/// `load.requests` timed REST reveals of `targets` on `server`: one keep-alive connection per
/// client, the key in the path, an empty body; a success is a 200 whose JSON `value` is the
/// one expected.
async fn rest_reveals(
    server: &Server,
    load: &Load,
    targets: Arc<impl RevealTargets>,
) -> Result<Measured, String> {
    let connections = rest_connections(server, load).await?;
    Ok(timed(
        server.redis.as_deref(),
        load.requests,
        load.concurrency,
        server.pid,
        move |worker, index| {
            let (connections, targets) = (connections.clone(), targets.clone());
            async move {
                let path = targets.path(index);
                let mut connection = connections[worker].lock().await;
                let response = connection.post(&path, None, Bytes::new()).await?;
                if response.status != StatusCode::OK {
                    return Ok(false);
                }
                let revealed: Revealed =
                    serde_json::from_slice(&response.body).map_err(|err| err.to_string())?;
                Ok(revealed.value == targets.value(index))
            }
        },
    )
    .await)
}

/// `load.requests` timed gRPC reveals of `secrets` on `server`; a success is an answer holding
/// the value expected.
async fn grpc_reveals(
    server: &Server,
    load: &Load,
    secrets: Arc<Vec<(String, String)>>,
) -> Result<Measured, String> {
    let clients = Arc::new(grpc_clients(server, load).await?);
    Ok(timed(
        server.redis.as_deref(),
        load.requests,
        load.concurrency,
        server.pid,
        move |_, index| {
            let mut client = clients[index % clients.len()].clone();
            let secrets = secrets.clone();
            async move {
                let request = RevealSecretRequest {
                    key: secrets[index].0.clone(),
                    passphrase: None,
                };
                let revealed = client
                    .reveal_secret(request)
                    .await
                    .map_err(|status| status.to_string())?;
                Ok(revealed.into_inner().value == secrets[index].1)
            }
        },
    )
    .await)
}

async fn share_rest(server: &Server, load: &Load) -> Result<Measured, String> {
    let connections = rest_connections(server, load).await?;
    let bytes = load.secret_bytes;
    Ok(timed(
        server.redis.as_deref(),
        load.requests,
        load.concurrency,
        server.pid,
        move |worker, index| {
            let connections = connections.clone();
            async move {
                let value = secret_value(index, bytes);
                let form =
                    serde_urlencoded::to_string([("secret", value.as_str()), ("ttl", "3600")])
                        .map_err(|err| err.to_string())?;
                let mut connection = connections[worker].lock().await;
                let response = connection
                    .post(
                        "/api/v1/share",
                        Some("application/x-www-form-urlencoded"),
                        Bytes::from(form),
                    )
                    .await?;
                Ok(response.status.is_success())
            }
        },
    )
    .await)
}

fn redis_client(redis: &str) -> Result<redis::Client, String> {
    redis::Client::open(redis).map_err(|err| format!("Redis URL: {err}"))
}

async fn redis_connection(
    client: &redis::Client,
    redis: &str,
) -> Result<MultiplexedConnection, String> {
    client
        .get_multiplexed_async_connection()
        .await
        .map_err(|err| format!("cannot reach Redis at {redis}: {err}"))
}

/// Keys set as plain Redis strings for raw reads: `{prefix}{index}` for each index of a run,
/// each holding `value`.
struct PlainKeys {
    prefix: String,
    value: String,
}

impl PlainKeys {
    /// The key of request `index`.
    fn key(&self, index: usize) -> String {
        format!("{}{index}", self.prefix)
    }
}

/// Sets `load.requests` keys under `prefix` (untimed, pipelined, an hour to live), each to a
/// value as large as the server's records: the sealed secret plus nonce, tag and framing. A
/// prefix used again overwrites what a previous run left.
async fn set_plain_keys(
    connection: &MultiplexedConnection,
    prefix: String,
    load: &Load,
) -> Result<PlainKeys, String> {
    let keys = PlainKeys {
        prefix,
        value: "y".repeat(load.secret_bytes + 64),
    };
    let mut start = 0;
    while start < load.requests {
        let end = (start + 1000).min(load.requests);
        let mut pipe = redis::pipe();
        for index in start..end {
            pipe.cmd("SET")
                .arg(keys.key(index))
                .arg(&keys.value)
                .arg("EX")
                .arg(3600)
                .ignore();
        }
        let mut setup = connection.clone();
        pipe.exec_async(&mut setup)
            .await
            .map_err(|err| err.to_string())?;
        start = end;
    }
    Ok(keys)
}

/// Raw `GETDEL` on `redis` with `load`'s clients over `connections` Redis connections, on keys
/// as large as the server's records, set beforehand (untimed).
pub async fn baseline(redis: &str, connections: usize, load: &Load) -> Result<Measured, String> {
    let client = redis_client(redis)?;
    let mut opened = Vec::new();
    for _ in 0..connections.max(1) {
        opened.push(redis_connection(&client, redis).await?);
    }
    let connections = Arc::new(opened);
    let prefix = format!("bench:{}:", std::process::id());
    let keys = Arc::new(set_plain_keys(&connections[0], prefix, load).await?);
    Ok(timed(
        Some(redis),
        load.requests,
        load.concurrency,
        // The server has no part in the baseline.
        None,
        move |_, index| {
            let mut connection = connections[index % connections.len()].clone();
            let keys = keys.clone();
            async move {
                let value: Option<Vec<u8>> = redis::cmd("GETDEL")
                    .arg(keys.key(index))
                    .query_async(&mut connection)
                    .await
                    .map_err(|err| err.to_string())?;
                Ok(value.is_some())
            }
        },
    )
    .await)
}
