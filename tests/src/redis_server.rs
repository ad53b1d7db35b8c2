//! Real Redis for the tests: a `redis-server` on a free port (stopped, restarted and
//! inspected by the tests), and a three-node Redis Cluster created with `redis-cli`.

use super::*;

/// Starts `redis-server` on `port` with its files in `dir`, persisting nothing, and waits until
/// it accepts connections. `None` if it exited (the port was taken) or never came up.
pub(crate) fn spawn_redis(port: u16, dir: &std::path::Path, extra_args: &[&str]) -> Option<Child> {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(dir.join(format!("redis-{port}.log")))
        .args(extra_args)
        .stdout(Stdio::null())
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A three-node Redis Cluster (no replicas) of `redis-server` children on free loopback ports,
/// created with `redis-cli --cluster create`. Killed when dropped.
pub struct TestRedisCluster {
    ports: Vec<u16>,
    children: Vec<Child>,
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
pub(crate) fn spawn_cluster_node(port: u16, dir: &std::path::Path) -> Option<Child> {
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
        let mut children = Vec::new();
        while children.len() < 3 {
            let port = free_cluster_port();
            if let Some(child) = spawn_cluster_node(port, dir.path()) {
                ports.push(port);
                children.push(child);
            }
        }
        Self::join(ports, children, dir)
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
        let children = ports
            .iter()
            .map(|port| {
                spawn_cluster_node(*port, dir.path())
                    .unwrap_or_else(|| panic!("a cluster node could not start on port {port}"))
            })
            .collect();
        Self::join(ports, children, dir)
    }

    /// Joins the started nodes into one cluster and waits until it serves.
    fn join(ports: Vec<u16>, children: Vec<Child>, dir: tempfile::TempDir) -> Self {
        // Made first, so that the nodes are killed if joining them fails.
        let cluster = Self {
            ports,
            children,
            _dir: dir,
        };
        create_cluster(&cluster.ports, &[]);
        cluster
    }

    /// The node URLs.
    pub fn urls(&self) -> Vec<String> {
        cluster_urls(&self.ports)
    }
}

impl Drop for TestRedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Joins the started nodes on `ports` into one cluster covering all 16384 slots and waits until
/// it serves; `cli_args` go to every `redis-cli` call (the TLS options for a TLS cluster).
pub(crate) fn create_cluster(ports: &[u16], cli_args: &[String]) {
    let nodes: Vec<String> = ports
        .iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect();
    let created = Command::new("redis-cli")
        .args(cli_args)
        .arg("--cluster")
        .arg("create")
        .args(&nodes)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli (it comes with redis-server) runs");
    assert!(
        created.status.success(),
        "cluster create failed: {}",
        String::from_utf8_lossy(&created.stdout)
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = ports.iter().all(|port| {
            Command::new("redis-cli")
                .args(cli_args)
                .args(["-p", &port.to_string(), "cluster", "info"])
                .output()
                .is_ok_and(|info| {
                    String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok")
                })
        });
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the Redis Cluster did not become ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `redis-server` child process on a free loopback port, in its own temp dir, persisting
/// nothing. Killed when dropped.
pub struct TestRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
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
                child: None,
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
            child: None,
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
            Some(child) => {
                self.child = Some(child);
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
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
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

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
