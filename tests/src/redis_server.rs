//! Real Redis for the tests: a `redis-server` on a free port (stopped, restarted and
//! inspected by the tests), and a three-node Redis Cluster created with `redis-cli`.

use std::sync::{Arc, Condvar, Mutex};

use super::*;

/// How long a `redis-server` may take to say it is ready, or a cluster to say it serves. Only a
/// bound that turns a hang into a failure (with the log's tail): nothing waits for it to pass.
const REDIS_START_BOUND: Duration = Duration::from_secs(60);

/// A running `redis-server` child and what it has logged so far. Killed (and waited for, so its
/// port is free again) when dropped.
pub(crate) struct RedisProcess {
    child: Child,
    log: Arc<RedisLog>,
}

impl RedisProcess {
    /// Waits until the log has a line containing `needle`; panics with the log's tail if the
    /// process exits first or [`REDIS_START_BOUND`] passes.
    pub(crate) fn wait_for_log(&self, needle: &str, what: &str) {
        match self.log.wait_for(needle, REDIS_START_BOUND) {
            LogWait::Found => {}
            LogWait::Ended => panic!(
                "{what}: redis-server exited first; its log ends:\n{}",
                self.log.tail()
            ),
            LogWait::TimedOut => panic!(
                "{what}: not within {REDIS_START_BOUND:?}; redis-server's log ends:\n{}",
                self.log.tail()
            ),
        }
    }

    /// Everything logged so far.
    pub(crate) fn log_text(&self) -> String {
        self.log.lock().lines.join("\n")
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines a `redis-server` wrote to its stdout, as a reader thread receives them.
struct RedisLog {
    state: Mutex<LogState>,
    /// Notified on every new line and at the end of the output.
    changed: Condvar,
}

struct LogState {
    lines: Vec<String>,
    /// The output ended: the process exited.
    ended: bool,
}

/// How [`RedisLog::wait_for`] ended.
enum LogWait {
    Found,
    Ended,
    TimedOut,
}

impl RedisLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        // A reader thread that panicked leaves the lines as they were: still worth showing.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Blocks until a line contains `needle`, the output ends, or `within` passes.
    fn wait_for(&self, needle: &str, within: Duration) -> LogWait {
        let seen = |state: &LogState| state.lines.iter().any(|line| line.contains(needle));
        let (state, _) = self
            .changed
            .wait_timeout_while(self.lock(), within, |state| !state.ended && !seen(state))
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen(&state) {
            LogWait::Found
        } else if state.ended {
            LogWait::Ended
        } else {
            LogWait::TimedOut
        }
    }

    /// The last lines, for a failure message.
    fn tail(&self) -> String {
        let state = self.lock();
        let from = state.lines.len().saturating_sub(20);
        state.lines[from..].join("\n")
    }
}

/// Starts `redis-server` on `port` with its files in `dir`, persisting nothing, and waits until
/// it logs that it accepts connections. `None` if it exited first (the port was taken).
///
/// Redis logs to a pipe (`--logfile ""`) that a thread reads to its end, copying each line to
/// `dir/redis-PORT.log` for a post-mortem; its readiness line is the event waited for.
pub(crate) fn spawn_redis(
    port: u16,
    dir: &std::path::Path,
    extra_args: &[&str],
) -> Option<RedisProcess> {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .args(["--logfile", ""])
        .args(extra_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!(
            "redis-server is not installed or not on PATH; the tests need it. \
             Install it (Debian/Ubuntu: `apt-get install redis-server`, macOS: `brew install redis`) \
             or point BURNBOX_TEST_REDIS_URL at a running Redis."
        ),
        Err(err) => panic!("cannot run redis-server: {err}"),
    };
    let stdout = child.stdout.take().expect("redis-server's piped stdout");
    let log = Arc::new(RedisLog {
        state: Mutex::new(LogState {
            lines: Vec::new(),
            ended: false,
        }),
        changed: Condvar::new(),
    });
    let mut copy = std::fs::File::create(dir.join(format!("redis-{port}.log"))).ok();
    let reader_log = Arc::clone(&log);
    // Reads to the end, so that Redis never blocks on a full pipe however long it runs.
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(file) = &mut copy {
                let _ = writeln!(file, "{line}");
            }
            reader_log.lock().lines.push(line);
            reader_log.changed.notify_all();
        }
        reader_log.lock().ended = true;
        reader_log.changed.notify_all();
    });
    let process = RedisProcess { child, log };
    // Redis 7.0 logs "Ready to accept connections", 7.2 and later add " tcp" or " tls".
    match process
        .log
        .wait_for("Ready to accept connections", REDIS_START_BOUND)
    {
        LogWait::Found => Some(process),
        LogWait::Ended => {
            // Shown with the test's output if it fails; a caller retries on another port.
            eprintln!(
                "redis-server on port {port} exited before it was ready; its log ends:\n{}",
                process.log.tail()
            );
            None
        }
        LogWait::TimedOut => panic!(
            "redis-server on port {port} was not ready within {REDIS_START_BOUND:?}; its log ends:\n{}",
            process.log.tail()
        ),
    }
}

/// A three-node Redis Cluster (no replicas) of `redis-server` children on free loopback ports,
/// created with `redis-cli --cluster create`. Killed when dropped.
pub struct TestRedisCluster {
    ports: Vec<u16>,
    nodes: Vec<RedisProcess>,
    _dir: tempfile::TempDir,
}

/// A free port whose cluster bus port (+10000) is free too.
pub(crate) fn free_cluster_port() -> u16 {
    reserve_cluster_port().0
}

/// A free port whose cluster bus port (+10000) is free too, both held bound until the
/// listeners are dropped.
pub(crate) fn reserve_cluster_port() -> (u16, [StdTcpListener; 2]) {
    loop {
        let listener =
            StdTcpListener::bind("127.0.0.1:0").expect("the OS has a free loopback port");
        let port = listener.local_addr().expect("bound address").port();
        if port > 55_535 {
            continue;
        }
        if let Ok(bus) = StdTcpListener::bind(("127.0.0.1", port + 10_000)) {
            return (port, [listener, bus]);
        }
    }
}

pub(crate) fn cluster_urls(ports: &[u16]) -> Vec<String> {
    ports
        .iter()
        .map(|port| format!("redis://127.0.0.1:{port}/"))
        .collect()
}

/// Ports (and their cluster bus ports) held for [`TestRedisCluster::start_on`].
pub struct ReservedClusterPorts {
    ports: Vec<u16>,
    held: Vec<StdTcpListener>,
}

impl ReservedClusterPorts {
    /// The node URLs the cluster will have.
    pub fn urls(&self) -> Vec<String> {
        cluster_urls(&self.ports)
    }
}

/// One cluster-enabled `redis-server` on `port`, or `None` if it could not start there.
pub(crate) fn spawn_cluster_node(port: u16, dir: &std::path::Path) -> Option<RedisProcess> {
    let config = format!("nodes-{port}.conf");
    let args = [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        &config,
        "--cluster-node-timeout",
        "5000",
    ];
    spawn_redis(port, dir, &args)
}

impl TestRedisCluster {
    /// Starts three nodes and joins them into one cluster covering all 16384 slots.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut ports = Vec::new();
        let mut nodes = Vec::new();
        while nodes.len() < 3 {
            let port = free_cluster_port();
            if let Some(node) = spawn_cluster_node(port, dir.path()) {
                ports.push(port);
                nodes.push(node);
            }
        }
        Self::join(ports, nodes, dir)
    }

    /// Reserves ports for a cluster that [`TestRedisCluster::start_on`] starts later, so a server
    /// can be pointed at a cluster before it exists.
    pub fn reserve() -> ReservedClusterPorts {
        let mut ports = Vec::new();
        let mut held = Vec::new();
        while ports.len() < 3 {
            let (port, listeners) = reserve_cluster_port();
            ports.push(port);
            held.extend(listeners);
        }
        ReservedClusterPorts { ports, held }
    }

    /// Starts the cluster on the `reserved` ports.
    pub fn start_on(reserved: ReservedClusterPorts) -> Self {
        let ReservedClusterPorts { ports, held } = reserved;
        // Released only now, for the nodes to bind at once.
        drop(held);
        let dir = tempfile::tempdir().expect("temp dir");
        let nodes = ports
            .iter()
            .map(|port| {
                spawn_cluster_node(*port, dir.path())
                    .unwrap_or_else(|| panic!("a cluster node could not start on port {port}"))
            })
            .collect();
        Self::join(ports, nodes, dir)
    }

    /// Joins the started nodes into one cluster and waits until it serves.
    fn join(ports: Vec<u16>, nodes: Vec<RedisProcess>, dir: tempfile::TempDir) -> Self {
        // Made first, so that the nodes are killed if joining them fails.
        let cluster = Self {
            ports,
            nodes,
            _dir: dir,
        };
        create_cluster(&cluster.ports, &cluster.nodes, &[]);
        cluster
    }

    /// The node URLs.
    pub fn urls(&self) -> Vec<String> {
        cluster_urls(&self.ports)
    }
}

/// Joins the started `nodes` (listening on `ports`) into one cluster covering all 16384 slots
/// and waits until every node says it serves; `cli_args` go to `redis-cli` (the TLS options for a
/// TLS cluster).
pub(crate) fn create_cluster(ports: &[u16], nodes: &[RedisProcess], cli_args: &[String]) {
    let addresses: Vec<String> = ports
        .iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect();
    let created = Command::new("redis-cli")
        .args(cli_args)
        .arg("--cluster")
        .arg("create")
        .args(&addresses)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli (it comes with redis-server) runs");
    assert!(
        created.status.success(),
        "cluster create failed: {}",
        String::from_utf8_lossy(&created.stdout)
    );
    // A node logs each change of its cluster state, the very state CLUSTER INFO reports as
    // `cluster_state`: its first "ok" is the event that it serves, no polling needed.
    for (node, address) in nodes.iter().zip(&addresses) {
        node.wait_for_log(
            "Cluster state changed: ok",
            &format!("the Redis Cluster node {address} serving"),
        );
    }
}

/// A `redis-server` child process on a free loopback port, in its own temp dir, persisting
/// nothing. Killed when dropped.
pub struct TestRedis {
    port: u16,
    // Before `dir`: fields drop in order, and Redis must be gone before its directory is.
    process: Option<RedisProcess>,
    dir: tempfile::TempDir,
    external_url: Option<String>,
    extra_args: &'static [&'static str],
    /// While stopped, the port stays bound (not listening) by this socket: connections are
    /// refused as by a crashed Redis, and no other listener of this test process can take the
    /// port and answer in Redis's place when it restarts.
    port_holder: Option<tokio::net::TcpSocket>,
}

/// Binds `port` on loopback without listening on it, so that it is reserved but refuses
/// connections, and the kernel hands it to no `bind(0)`. Dropped before Redis binds it again.
pub(crate) fn hold_port(port: u16) -> tokio::net::TcpSocket {
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    // The crashed Redis's side of its connections may linger in TIME_WAIT on this port.
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket
        .bind(([127, 0, 0, 1], port).into())
        .unwrap_or_else(|err| panic!("cannot hold the stopped Redis's port {port}: {err}"));
    socket
}

pub(crate) fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("the OS has a free loopback port")
}

impl TestRedis {
    /// `BURNBOX_TEST_REDIS_URL` if set, else a fresh redis-server.
    pub fn start() -> Self {
        match std::env::var("BURNBOX_TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => Self {
                port: 0,
                dir: tempfile::tempdir().expect("temp dir"),
                process: None,
                port_holder: None,
                external_url: Some(url),
                extra_args: &[],
            },
            _ => Self::start_own(),
        }
    }

    /// Always a fresh redis-server owned by this test (for tests that stop and restart it).
    pub fn start_own() -> Self {
        Self::start_with_args(&[])
    }

    /// A fresh redis-server that keeps its data across [`TestRedis::restart`]: every write is
    /// in the append-only file before Redis answers (`appendfsync always`).
    pub fn start_durable() -> Self {
        Self::start_with_args(&["--appendonly", "yes", "--appendfsync", "always"])
    }

    /// A fresh redis-server started with `extra_args` added to its command line.
    pub fn start_with_args(extra_args: &'static [&'static str]) -> Self {
        let mut redis = Self {
            port: 0,
            dir: tempfile::tempdir().expect("temp dir"),
            process: None,
            external_url: None,
            extra_args,
            port_holder: None,
        };
        // A port picked free can be taken before redis binds it: retry with another.
        for _ in 0..5 {
            redis.port = free_port();
            if redis.spawn() {
                return redis;
            }
        }
        panic!(
            "redis-server did not start on any of 5 free ports; see {}",
            redis.dir.path().display()
        );
    }

    fn spawn(&mut self) -> bool {
        self.port_holder = None;
        match spawn_redis(self.port, self.dir.path(), self.extra_args) {
            Some(process) => {
                self.process = Some(process);
                true
            }
            None => false,
        }
    }

    /// The URL to connect to.
    pub fn url(&self) -> String {
        self.external_url
            .clone()
            .unwrap_or_else(|| format!("redis://127.0.0.1:{}/", self.port))
    }

    /// Kills the server (a crash, as far as clients can tell).
    pub fn stop(&mut self) {
        assert!(self.external_url.is_none(), "cannot stop an external Redis");
        // Dropping the process kills it and waits until it is gone, its port free.
        if let Some(process) = self.process.take() {
            drop(process);
            self.port_holder = Some(hold_port(self.port));
        }
    }

    /// Starts the server again on the same port (empty, unless started durable).
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.spawn(),
            "redis-server did not restart on port {}",
            self.port
        );
    }

    /// A plain connection for inspecting what is stored.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("valid URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to test redis")
    }

    /// The names of the keys matching `pattern` (Redis `KEYS`).
    pub async fn keys(&self, pattern: &str) -> Vec<String> {
        redis::cmd("KEYS")
            .arg(pattern)
            .query_async(&mut self.connection().await)
            .await
            .expect("KEYS")
    }

    /// Every key with the bytes stored under it (a string's value, a hash's fields and values, a
    /// sorted set's members), read back plainly: what someone holding a dump of this Redis sees.
    pub async fn dump(&self) -> Vec<(String, Vec<u8>)> {
        let mut connection = self.connection().await;
        let mut dump = Vec::new();
        for name in self.keys("*").await {
            let kind: String = redis::cmd("TYPE")
                .arg(&name)
                .query_async(&mut connection)
                .await
                .expect("TYPE");
            let values: Vec<Vec<u8>> = match kind.as_str() {
                "string" => vec![
                    redis::cmd("GET")
                        .arg(&name)
                        .query_async(&mut connection)
                        .await
                        .expect("GET"),
                ],
                "hash" => redis::cmd("HGETALL")
                    .arg(&name)
                    .query_async(&mut connection)
                    .await
                    .expect("HGETALL"),
                "zset" => redis::cmd("ZRANGE")
                    .arg(&name)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut connection)
                    .await
                    .expect("ZRANGE"),
                other => panic!("unexpected key type {other} for {name}"),
            };
            dump.push((name, values.concat()));
        }
        dump
    }
}

/// The name burnbox's Redis store gives the record of the secret `secret_key` reveals (the
/// layout in `crates/store-redis/src/keys.rs`): `burnbox:{T}`, `T` the base64url of the first
/// 15 bytes of the secret id.
pub fn record_key_name(secret_key: &str) -> String {
    use base64::Engine;
    let id = burnbox_store::SecretId::from_secret_key(secret_key);
    let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&id.as_bytes()[..15]);
    format!("burnbox:{{{tag}}}")
}
