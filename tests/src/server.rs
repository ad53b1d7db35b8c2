//! The real server on port 0: the store it runs on, its customers, and its listeners'
//! addresses and clients.

use super::*;

/// A master key for tests (base64 of 32 bytes).
pub fn test_master_key() -> String {
    base64::engine::general_purpose::STANDARD.encode([7u8; 32])
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

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The customers of [`TestServer::start_with_customers`]: alice has a plain token, bob's is
/// stored as its SHA-256 (`sha256:HEX`).
pub const ALICE: (&str, &str) = ("alice", "alice-token-1");
/// See [`ALICE`].
pub const BOB: (&str, &str) = ("bob", "bob-token-2");
