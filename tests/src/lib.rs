//! Test harness for burnbox's end-to-end suites: a real `redis-server` on a free port, the real
//! server on port 0 with real sockets, a real HTTP client and the generated tonic client.
//!
//! Set `BURNBOX_TEST_REDIS_URL` to use an existing Redis instead of starting one (tests that stop
//! and restart Redis always start their own).

pub mod browser;
pub mod conformance;

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use burnbox_server::{Application, Config};
use burnbox_spec::v1::secrets_client::SecretsClient;
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// A master key for tests (base64 of 32 bytes).
pub fn test_master_key() -> String {
    base64::engine::general_purpose::STANDARD.encode([7u8; 32])
}

/// Starts `redis-server` on `port` with its files in `dir`, persisting nothing, and waits until
/// it accepts connections. `None` if it exited (the port was taken) or never came up.
fn spawn_redis(port: u16, dir: &std::path::Path, extra_args: &[&str]) -> Option<Child> {
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
fn free_cluster_port() -> u16 {
    reserve_cluster_port().0
}

/// A free port whose cluster bus port (+10000) is free too, both held bound until the
/// listeners are dropped.
fn reserve_cluster_port() -> (u16, [StdTcpListener; 2]) {
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

fn cluster_urls(ports: &[u16]) -> Vec<String> {
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
fn spawn_cluster_node(port: u16, dir: &std::path::Path) -> Option<Child> {
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
fn create_cluster(ports: &[u16], cli_args: &[String]) {
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
fn hold_port(port: u16) -> tokio::net::TcpSocket {
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    // The crashed Redis's side of its connections may linger in TIME_WAIT on this port.
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket
        .bind(([127, 0, 0, 1], port).into())
        .unwrap_or_else(|err| panic!("cannot hold the stopped Redis's port {port}: {err}"));
    socket
}

fn free_port() -> u16 {
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

/// Which store a test server runs on.
pub enum Backend {
    /// The embedded memory store.
    Memory,
    /// A real Redis.
    Redis(TestRedis),
}

impl Backend {
    /// A backend on a fresh Redis.
    pub fn redis() -> Self {
        Self::Redis(TestRedis::start())
    }

    /// The Redis behind this backend, if any.
    pub fn test_redis(&mut self) -> Option<&mut TestRedis> {
        match self {
            Self::Memory => None,
            Self::Redis(redis) => Some(redis),
        }
    }
}

/// The real server on port 0, with clients for both transports. Shut down when dropped.
pub struct TestServer {
    /// The store it runs on.
    pub backend: Backend,
    /// `http://127.0.0.1:PORT`.
    pub http_base: String,
    /// The gRPC address.
    pub grpc_addr: SocketAddr,
    /// The admin base URL.
    pub admin_base: String,
    /// An HTTP client (keep-alive, no proxy).
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    tokens_file: Option<tempfile::NamedTempFile>,
}

impl TestServer {
    /// Starts a server with the default test configuration on `backend`.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a server on `backend` after `adjust` changed the configuration.
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::for_tests();
        if let Backend::Redis(redis) = &backend {
            config.redis_url = Some(redis.url());
            config.master_key = Some(test_master_key());
            config.redis_timeout_ms = 500;
        }
        config.public_url = "https://burnbox.test".into();
        adjust(&mut config);
        let app = Application::build(config).await.expect("server starts");
        let http_base = format!("http://{}", app.http_addr());
        let admin_base = format!("http://{}", app.admin_addr());
        let grpc_addr = app.grpc_addr();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            app.run(async {
                let _ = stopped.await;
            })
            .await
            .expect("server runs");
        });
        Self {
            backend,
            http_base,
            grpc_addr,
            admin_base,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("HTTP client"),
            stop: Some(stop),
            task: Some(task),
            tokens_file: None,
        }
    }

    /// A URL under the REST API prefix.
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.http_base)
    }

    /// A new gRPC client on its own HTTP/2 connection.
    pub async fn grpc(&self) -> SecretsClient<Channel> {
        SecretsClient::new(self.grpc_channel().await)
    }

    /// A new HTTP/2 channel to the gRPC listener.
    pub async fn grpc_channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc_addr))
            .expect("valid URI")
            .connect()
            .await
            .expect("gRPC connects")
    }

    /// Stops the server gracefully and waits until it has.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task ends cleanly");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// For each scenario `async fn name(backend: Backend)`, generates a module `name` with two
/// tests: `name::memory_store` and `name::redis_store`.
#[macro_export]
macro_rules! on_both_stores {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn memory_store() {
                    super::$scenario($crate::Backend::Memory).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis_store() {
                    super::$scenario($crate::Backend::redis()).await;
                }
            }
        )+
    };
}

/// A share over REST with a form body; returns the status and the JSON body.
pub async fn rest_share(
    server: &TestServer,
    form: &[(&str, &str)],
) -> (reqwest::StatusCode, serde_json::Value) {
    let response = server
        .http
        .post(server.api("/share"))
        .form(form)
        .send()
        .await
        .expect("share request");
    json_of(response).await
}

/// A reveal over REST, with an optional passphrase (as a form field).
pub async fn rest_reveal(
    server: &TestServer,
    key: &str,
    passphrase: Option<&str>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut request = server.http.post(server.api(&format!("/secret/{key}")));
    if let Some(passphrase) = passphrase {
        request = request.form(&[("passphrase", passphrase)]);
    }
    json_of(request.send().await.expect("reveal request")).await
}

/// `GET path` under the API prefix: the status and the JSON body.
pub async fn rest_get(server: &TestServer, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
    json_of(
        server
            .http
            .get(server.api(path))
            .send()
            .await
            .expect("GET request"),
    )
    .await
}

/// The status and JSON body of a response (panics on a non-JSON body: every answer is JSON).
pub async fn json_of(response: reqwest::Response) -> (reqwest::StatusCode, serde_json::Value) {
    let status = response.status();
    let text = response.text().await.expect("response body");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|err| panic!("non-JSON body ({err}): {text}"));
    (status, body)
}

/// A ShareSecret request with just a secret.
pub fn grpc_share_request(secret: &str) -> burnbox_spec::v1::ShareSecretRequest {
    burnbox_spec::v1::ShareSecretRequest {
        secret: secret.to_owned(),
        ..Default::default()
    }
}

/// A RevealSecret request.
pub fn grpc_reveal_request(
    key: &str,
    passphrase: Option<&str>,
) -> burnbox_spec::v1::RevealSecretRequest {
    burnbox_spec::v1::RevealSecretRequest {
        key: key.to_owned(),
        passphrase: passphrase.map(str::to_owned),
    }
}

/// Asserts a REST error answer: the status and `error` from the wire table for `kind`, the
/// `field`, a message, a trace-id-shaped `error_id`, and nothing else in the body but, on a
/// NotFound, the `secret_key` asked for (as Onetime Secret sends it).
pub fn assert_rest_error(
    answer: &(reqwest::StatusCode, serde_json::Value),
    kind: burnbox_core::ErrorKind,
    field: Option<&str>,
) {
    let wire = burnbox_server::wire_error::wire_error(kind);
    let (status, body) = answer;
    assert_eq!(
        status.as_u16(),
        wire.http.as_u16(),
        "status for {kind:?}: {body}"
    );
    assert_eq!(body["error"], wire.error, "{body}");
    assert_eq!(
        body.get("field").and_then(|field| field.as_str()),
        field,
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|message| !message.is_empty()),
        "{body}"
    );
    let error_id = body["error_id"].as_str().unwrap_or_default();
    assert!(
        error_id.len() == 32 && error_id.bytes().all(|byte| byte.is_ascii_hexdigit()),
        "{body}"
    );
    let allowed = ["error", "message", "field", "error_id"];
    let object = body.as_object().expect("error body is an object");
    assert!(
        object.keys().all(|key| allowed.contains(&key.as_str())
            || (key == "secret_key" && kind == burnbox_core::ErrorKind::NotFound)),
        "{body}"
    );
}

/// Asserts a gRPC error: the code from the wire table for `kind`, ErrorInfo with the same error
/// type, domain, message and an error_id, and BadRequest naming `field`.
pub fn assert_grpc_error(
    status: &tonic::Status,
    kind: burnbox_core::ErrorKind,
    field: Option<&str>,
) {
    use tonic_types::StatusExt;
    let wire = burnbox_server::wire_error::wire_error(kind);
    assert_eq!(status.code(), wire.grpc, "code for {kind:?}: {status:?}");
    assert!(!status.message().is_empty());
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo detail");
    assert_eq!(info.reason, wire.error);
    assert_eq!(info.domain, "burnbox");
    assert_eq!(
        info.metadata.get("message").map(String::as_str),
        Some(status.message())
    );
    let error_id = info.metadata.get("error_id").expect("error_id");
    assert!(error_id.len() == 32 && error_id.bytes().all(|byte| byte.is_ascii_hexdigit()));
    let violated = details
        .bad_request()
        .and_then(|bad_request| bad_request.field_violations.first())
        .map(|violation| violation.field.as_str());
    assert_eq!(violated, field, "{status:?}");
}

/// The Authorization header value for `custid:token` (REST header and gRPC metadata alike).
pub fn basic_auth(custid: &str, token: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{custid}:{token}"))
    )
}

/// A gRPC request carrying `authorization` metadata when given.
pub fn grpc_request<T>(message: T, authorization: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(value) = authorization {
        request.metadata_mut().insert(
            "authorization",
            value.parse().expect("ASCII metadata value"),
        );
    }
    request
}

/// The customers of [`TestServer::start_with_customers`]: alice has a plain token, bob's is
/// stored as its SHA-256 (`sha256:HEX`).
pub const ALICE: (&str, &str) = ("alice", "alice-token-1");
/// See [`ALICE`].
pub const BOB: (&str, &str) = ("bob", "bob-token-2");

impl TestServer {
    /// Starts a server on `backend` with customers [`ALICE`] and [`BOB`] in its tokens file;
    /// `adjust` may change the configuration further. The file lives as long as the server.
    pub async fn start_with_customers(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        let bob_digest: String = {
            use sha2::Digest;
            sha2::Sha256::digest(BOB.1.as_bytes())
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect()
        };
        let file = tempfile::NamedTempFile::new().expect("tokens file");
        std::fs::write(
            file.path(),
            format!(
                "# test customers\n{}:{}\n{}:sha256:{bob_digest}\n",
                ALICE.0, ALICE.1, BOB.0
            ),
        )
        .expect("write tokens");
        let path = file.path().to_owned();
        let mut server = Self::start_with(backend, |config| {
            config.api_tokens_file = Some(path);
            adjust(config);
        })
        .await;
        server.tokens_file = Some(file);
        server
    }
}

/// Whether `needle` occurs in `haystack`.
pub fn bytes_contain(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// Repeats `attempt` every 100 ms until it yields `Some`, for at most `within`; panics saying
/// `what` did not happen otherwise.
pub async fn eventually<T, Fut>(within: Duration, what: &str, mut attempt: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(done) = attempt().await {
            return done;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl TestServer {
    /// The status of the admin listener's `/readyz`.
    pub async fn readiness(&self) -> reqwest::StatusCode {
        self.http
            .get(format!("{}/readyz", self.admin_base))
            .send()
            .await
            .expect("readyz answers")
            .status()
    }

    /// Waits until the store answers again (every attempt meanwhile must be a documented 503),
    /// then proves the service whole: `secret` shared over REST reveals over gRPC, and the
    /// server is ready.
    pub async fn assert_recovers(&self, secret: &str) {
        let key = eventually(
            Duration::from_secs(30),
            "recovery after Redis came back",
            || async {
                let (status, body) = rest_share(self, &[("secret", secret)]).await;
                if status == reqwest::StatusCode::OK {
                    return Some(body["secret_key"].as_str().expect("secret_key").to_owned());
                }
                assert_rest_error(&(status, body), burnbox_core::ErrorKind::Unavailable, None);
                None
            },
        )
        .await;
        let revealed = self
            .grpc()
            .await
            .reveal_secret(grpc_reveal_request(&key, None))
            .await
            .expect("reveal after recovery");
        assert_eq!(revealed.into_inner().value, secret);
        assert_eq!(self.readiness().await, reqwest::StatusCode::OK);
    }
}

impl TestServer {
    /// Generates a password over gRPC as `authorization`. Returns the metadata key and the
    /// strings that must never be found anywhere but in answers: password, secret key and
    /// metadata key.
    pub async fn generate_sensitive(&self, authorization: &str) -> (String, [String; 3]) {
        let generated = self
            .grpc()
            .await
            .generate_secret(grpc_request(
                burnbox_spec::v1::GenerateSecretRequest::default(),
                Some(authorization),
            ))
            .await
            .expect("generate")
            .into_inner();
        let metadata_key = generated.metadata_key;
        let sensitive = [
            generated.value.expect("password"),
            generated.secret_key.expect("secret key"),
            metadata_key.clone(),
        ];
        (metadata_key, sensitive)
    }
}

/// The naming keys of [`test_master_key`], for a `RedisStore` that names things as a test
/// server does.
pub fn test_naming_keys() -> burnbox_store::NamingKeys {
    burnbox_core::Keyring::new(burnbox_core::MasterKey::from_bytes([7u8; 32]), None).naming_keys()
}

/// A certificate authority and a server certificate it signed for `127.0.0.1` and `localhost`,
/// made for one test and written as PEM files (`ca.pem`, `server.pem`, `server.key`) into a
/// temp dir.
pub struct TestCertificates {
    dir: tempfile::TempDir,
}

impl TestCertificates {
    /// Makes a fresh CA and server certificate.
    pub fn generate() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "burnbox test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_certificate = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, &ca_key);
        let server_key = KeyPair::generate().expect("server key");
        let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server parameters")
            .signed_by(&server_key, &issuer)
            .expect("server certificate");
        let certificates = Self {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        for (path, pem) in [
            (certificates.ca_file(), ca_certificate.pem()),
            (certificates.cert_file(), server.pem()),
            (certificates.key_file(), server_key.serialize_pem()),
        ] {
            std::fs::write(path, pem).expect("write PEM");
        }
        certificates
    }

    /// The CA certificate (PEM).
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server certificate (PEM).
    pub fn cert_file(&self) -> std::path::PathBuf {
        self.dir.path().join("server.pem")
    }

    /// The server's private key (PEM).
    pub fn key_file(&self) -> std::path::PathBuf {
        self.dir.path().join("server.key")
    }

    /// The `redis-server` arguments serving TLS with these certificates, without asking
    /// clients for certificates of their own.
    /// redis-server arguments to serve TLS only, on `port`, with these certificates.
    fn tls_only_args(&self, port: u16) -> Vec<String> {
        let path = |path: std::path::PathBuf| path.display().to_string();
        vec![
            "--tls-cert-file".into(),
            path(self.cert_file()),
            "--tls-key-file".into(),
            path(self.key_file()),
            "--tls-ca-cert-file".into(),
            path(self.ca_file()),
            "--tls-auth-clients".into(),
            "no".into(),
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
        ]
    }

    /// A TLS connection, as the default user, to the redis-server on `port` that serves these
    /// certificates.
    async fn connect(&self, port: u16) -> redis::aio::MultiplexedConnection {
        let ca = std::fs::read(self.ca_file()).expect("read CA");
        redis::Client::build_with_tls(
            format!("rediss://127.0.0.1:{port}/"),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca),
            },
        )
        .expect("TLS client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to a test redis over TLS")
    }
}

/// A `redis-server` child that speaks only TLS (`--port 0 --tls-port`), on a free loopback port
/// with a certificate from its own [`TestCertificates`], persisting nothing. Killed when dropped.
pub struct TestTlsRedis {
    port: u16,
    child: Child,
    certificates: TestCertificates,
    dir: tempfile::TempDir,
}

impl TestTlsRedis {
    /// Starts one.
    pub fn start() -> Self {
        let certificates = TestCertificates::generate();
        let dir = tempfile::tempdir().expect("temp dir");
        // A port picked free can be taken before redis binds it: retry with another.
        for _ in 0..5 {
            let port = free_port();
            let args = certificates.tls_only_args(port);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            if let Some(child) = spawn_redis(port, dir.path(), &args) {
                return Self {
                    port,
                    child,
                    certificates,
                    dir,
                };
            }
        }
        panic!(
            "redis-server with TLS did not start on any of 5 free ports; see {}",
            dir.path().display()
        );
    }

    /// `rediss://127.0.0.1:PORT/`, as the default user.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}/", self.port)
    }

    /// The URL as the ACL user `user` with `password`.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        format!("rediss://{user}:{password}@127.0.0.1:{}/", self.port)
    }

    /// The PEM file of the CA that signed the server's certificate.
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.certificates.ca_file()
    }

    /// What redis-server logged (for a test's failure message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("redis-{}.log", self.port)))
            .unwrap_or_default()
    }

    /// A TLS connection as the default user, for setting up and inspecting the server.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        self.certificates.connect(self.port).await
    }
}

impl Drop for TestTlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A three-node Redis Cluster that speaks only TLS, between its nodes too (`--tls-cluster`),
/// with certificates from its own [`TestCertificates`]. Killed when dropped.
pub struct TestTlsRedisCluster {
    ports: Vec<u16>,
    children: Vec<Child>,
    certificates: TestCertificates,
    _dir: tempfile::TempDir,
}

impl TestTlsRedisCluster {
    /// Starts three nodes and joins them into one cluster covering all 16384 slots.
    pub fn start() -> Self {
        let certificates = TestCertificates::generate();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cluster = Self {
            ports: Vec::new(),
            children: Vec::new(),
            certificates,
            _dir: dir,
        };
        while cluster.children.len() < 3 {
            let port = free_cluster_port();
            let config = format!("nodes-{port}.conf");
            let mut args = cluster.certificates.tls_only_args(port);
            args.extend(
                [
                    "--tls-cluster",
                    "yes",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &config,
                    "--cluster-node-timeout",
                    "5000",
                ]
                .map(str::to_owned),
            );
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            if let Some(child) = spawn_redis(port, cluster._dir.path(), &args) {
                cluster.ports.push(port);
                cluster.children.push(child);
            }
        }
        let ca = cluster.ca_file().display().to_string();
        create_cluster(
            &cluster.ports,
            &["--tls".to_owned(), "--cacert".to_owned(), ca],
        );
        cluster
    }

    /// The node URLs as the ACL user `user` with `password`.
    pub fn urls_as(&self, user: &str, password: &str) -> Vec<String> {
        self.ports
            .iter()
            .map(|port| format!("rediss://{user}:{password}@127.0.0.1:{port}/"))
            .collect()
    }

    /// The PEM file of the CA that signed the nodes' certificate.
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.certificates.ca_file()
    }

    /// A TLS connection to each node as the default user (ACLs are set per node).
    pub async fn node_connections(&self) -> Vec<redis::aio::MultiplexedConnection> {
        let mut connections = Vec::new();
        for port in &self.ports {
            connections.push(self.certificates.connect(*port).await);
        }
        connections
    }
}

impl Drop for TestTlsRedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Everything the process logs at TRACE, kept in memory to be searched: installs the
/// process-wide subscriber on first use (so a test binary using it logs nowhere else).
pub fn captured_logs() -> &'static CapturedLog {
    static LOGS: std::sync::OnceLock<CapturedLog> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = CapturedLog::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_env_filter("trace")
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        captured
    })
}

/// A log writer that keeps what is written.
#[derive(Clone, Default)]
pub struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLog {
    /// What was logged so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock()).into_owned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The text field `name` of a JSON answer (panics, showing the answer, when there is none).
pub fn text_field(value: &serde_json::Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {value}"))
        .to_owned()
}

impl TestServer {
    /// The text of `/metrics` on the admin listener.
    pub async fn metrics_text(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.admin_base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }
}
