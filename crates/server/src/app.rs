//! Assembling and running the server: the store, the one handler, and the REST, gRPC and admin
//! listeners in one process and one runtime, with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use burnbox_core::{LinkMailer, MasterKeyCheck, Secrets, Settings};
use burnbox_spec::v1::secrets_server::SecretsServer;
use burnbox_store::{KeyCheck, MemoryStore, RateLimiter, SecretStore, StoreError};
use burnbox_store_redis::{RedisConfig, RedisStore, RedisTopology};
use poem::EndpointExt;
use poem::endpoint::ToDynEndpoint;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::config::{Config, ConfigError};
use crate::gate::Gate;
use crate::grpc::{GrpcSecrets, render_protocol_refusal};
use crate::listener::{self, Listener};
use crate::metered_store::MeteredStore;
use crate::metrics::Metrics;
use crate::observe::{ObserveGrpcLayer, ObserveRest};
use crate::{admin, rest};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The configuration is invalid (exit code 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be reached (exit code 1).
    #[error("{setting}: cannot connect to Redis: {source}")]
    Store {
        /// The setting naming the Redis that failed.
        setting: &'static str,
        /// Why.
        source: StoreError,
    },
    /// A listener could not be bound (exit code 1).
    #[error("{setting}: cannot listen on {addr}: {source}")]
    Bind {
        /// The setting of the listener's address.
        setting: &'static str,
        /// The address that failed.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Why a running server stopped other than by a shutdown signal.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The gRPC reflection service could not be built.
    #[error("gRPC reflection: {0}")]
    Reflection(String),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Grpc(String),
}

/// A server with its listeners bound, ready to run.
pub struct Application {
    config: Config,
    secrets: Arc<Secrets>,
    auth: Arc<Authenticator>,
    gate: Arc<Gate>,
    metrics: Arc<Metrics>,
    http: Listener,
    grpc: Listener,
    admin: Listener,
}

/// The longest a gRPC peer has to answer a keepalive ping (with shorter intervals: the interval).
const GRPC_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Binds a listener whose connections send small writes at once: Linux passes TCP_NODELAY on
/// to accepted sockets, and without it a gRPC answer (headers, data and trailers written apart)
/// waited ~40 ms for a delayed ACK (seen as the p99 of burnbox-bench's gRPC reveals).
async fn bind(setting: &'static str, addr: SocketAddr) -> Result<TcpListener, StartupError> {
    let failed = |source| StartupError::Bind {
        setting,
        addr,
        source,
    };
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(failed)?;
    socket.set_reuseaddr(true).map_err(failed)?;
    socket.set_nodelay(true).map_err(failed)?;
    socket.bind(addr).map_err(failed)?;
    socket.listen(1024).map_err(failed)
}

/// The base URL links are made with: `configured` (without a trailing slash), or with none
/// configured, the REST listener's own address: `localhost` for a loopback or unspecified
/// address, so that links open on the machine the server runs on.
fn public_url(configured: &str, listening: SocketAddr) -> String {
    if !configured.is_empty() {
        return configured.trim_end_matches('/').to_owned();
    }
    let port = listening.port();
    let ip = listening.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        format!("http://localhost:{port}")
    } else {
        // SocketAddr writes an IPv6 address in brackets, as URLs need.
        format!("http://{listening}")
    }
}

impl Application {
    /// Validates the configuration, connects the store and binds all three listeners (port 0
    /// picks free ports; read them back with the `*_addr` methods). Raises the open-file limit
    /// as far as the connection caps need (see [`listener::fit_caps_to_open_file_limit`]).
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let policy = config.policy()?;
        let max_connections = usize::try_from(config.max_connections).unwrap_or(usize::MAX);
        let caps = listener::fit_caps_to_open_file_limit(max_connections)?;
        // Before the key: a Redis URL that is not one is the mistake to report first.
        let topology = config.redis_topology()?;
        let (keyring, ephemeral_key) = config.keyring()?;
        let mailer = crate::mail::SmtpMailer::configured(&config)?.map(|mailer| {
            tracing::info!(?mailer, "email: secret links are sent to share recipients");
            Arc::new(mailer) as Arc<dyn LinkMailer>
        });
        let auth = Arc::new(config.authenticator()?);
        let metrics = Arc::new(Metrics::new());
        let ca_certificates = config.redis_ca_certificates()?;
        // One store, measured, handed to each of its roles: the handler keeps secrets and checks
        // the master key in it, the gate counts requests in it.
        let store = Arc::new(match topology {
            Some((setting, topology)) => {
                let cluster = matches!(topology, RedisTopology::Cluster(_));
                let custom_ca = ca_certificates.is_some();
                let store = RedisStore::connect(&RedisConfig {
                    topology,
                    timeout: config.redis_timeout(),
                    naming: keyring.naming_keys(),
                    ca_certificates,
                })
                .await
                .map_err(|source| StartupError::Store { setting, source })?;
                tracing::info!(cluster, custom_ca, "store: Redis");
                MeteredStore::new(Arc::new(store), metrics.clone())
            }
            None => {
                tracing::info!(
                    budget_mib = config.memory_store_mib,
                    "store: in-process memory (no BURNBOX_REDIS_URL); secrets are lost on restart"
                );
                let store = Arc::new(MemoryStore::with_budget(config.memory_store_budget_bytes()));
                metrics.watch_memory_store(store.clone());
                MeteredStore::new(store, metrics.clone())
            }
        });
        if ephemeral_key {
            tracing::warn!("no BURNBOX_MASTER_KEY: using an ephemeral master key for this process");
        }
        let gate = Arc::new(Gate::new(
            auth.clone(),
            config.anonymous_access(),
            store.clone() as Arc<dyn RateLimiter>,
            config.rate_limits(),
            config.trusted_proxies.clone(),
            metrics.clone(),
        ));
        // Bound first: without BURNBOX_PUBLIC_URL, links are made from its address.
        let http = bind("BURNBOX_HTTP_ADDR", config.http_addr).await?;
        let public_url = public_url(
            &config.public_url,
            http.local_addr().map_err(|source| StartupError::Bind {
                setting: "BURNBOX_HTTP_ADDR",
                addr: config.http_addr,
                source,
            })?,
        );
        if config.public_url.is_empty() {
            tracing::warn!(
                public_url,
                "no BURNBOX_PUBLIC_URL: links are made from the listening address; set it to the address people reach this service at"
            );
        }
        let secrets = Arc::new(Secrets::new(
            store.clone() as Arc<dyn SecretStore>,
            store as Arc<dyn KeyCheck>,
            Settings {
                policy,
                keyring,
                public_url,
                mailer,
            },
        ));
        match secrets.check_master_key().await {
            Ok(MasterKeyCheck::Matches) => {}
            Ok(MasterKeyCheck::Rotated) => {
                tracing::info!(
                    "master key rotated: data is now checked against the new BURNBOX_MASTER_KEY"
                )
            }
            Ok(MasterKeyCheck::Mismatch) => {
                return Err(StartupError::Config(ConfigError {
                    setting: "BURNBOX_MASTER_KEY",
                    problem: "neither it nor BURNBOX_MASTER_KEY_PREVIOUS is the key this Redis's secrets were written with; \
                              serving would destroy secrets it cannot decrypt"
                        .into(),
                }));
            }
            // Redis is not up yet: serve anyway, not ready, and check on first contact.
            Err(err) => tracing::warn!(
                detail = err.detail(),
                "the store does not answer yet: not ready until it does"
            ),
        }
        Ok(Self {
            http: Listener::new("rest", http, caps.http),
            grpc: Listener::new(
                "grpc",
                bind("BURNBOX_GRPC_ADDR", config.grpc_addr).await?,
                caps.grpc,
            ),
            admin: Listener::new(
                "admin",
                bind("BURNBOX_ADMIN_ADDR", config.admin_addr).await?,
                caps.admin,
            ),
            secrets,
            auth,
            gate,
            metrics,
            config,
        })
    }

    /// The bound REST address.
    pub fn http_addr(&self) -> SocketAddr {
        local_addr(&self.http)
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        local_addr(&self.grpc)
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        local_addr(&self.admin)
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
    /// (up to the configured grace period) and returns.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let stop = CancellationToken::new();
        let grace = Duration::from_secs(self.config.shutdown_grace_seconds);
        let max_body = self.secrets.policy().max_request_bytes();
        let timeouts = crate::listener::http::HttpTimeouts::of(&self.config);
        let keepalive = Duration::from_secs(self.config.grpc_keepalive_seconds);
        let max_connection_age = Duration::from_secs(self.config.grpc_max_connection_age_seconds);

        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<SecretsServer<GrpcSecrets>>().await;
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(burnbox_spec::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_error =
            |err: tonic_reflection::server::Error| ServeError::Reflection(err.to_string());
        let reflection_v1 = reflection().build_v1().map_err(reflection_error)?;
        let reflection_v1alpha = reflection().build_v1alpha().map_err(reflection_error)?;
        let grpc_service = GrpcSecrets::new(self.secrets.clone(), self.gate.clone())
            .into_server()
            .max_decoding_message_size(max_body);
        let grpc = tonic::transport::Server::builder()
            // A dead peer is noticed within a ping and its timeout; a live one is asked to
            // reconnect now and then (GOAWAY), which also closes connections idle for long.
            .http2_keepalive_interval(Some(keepalive))
            .http2_keepalive_timeout(Some(keepalive.min(GRPC_KEEPALIVE_TIMEOUT)))
            // No `max_connection_age_grace`: tonic 0.14.9 then skips the GOAWAY and closes the
            // connection hard when age and grace have passed, failing the calls in flight. The
            // connection closes itself at age + grace instead (listener::grpc).
            .max_connection_age(max_connection_age)
            .layer(ObserveGrpcLayer::new(self.metrics.clone()))
            // Inside the observer, so the rendered error carries the request's trace id.
            .layer(tower::util::MapResponseLayer::new(move |response| {
                render_protocol_refusal(response, max_body)
            }))
            // Innermost, in front of the router: the service's calls skip it.
            .layer(tower::layer::layer_fn({
                let secrets = grpc_service.clone();
                move |routes| crate::grpc_lane::SecretsLane::new(routes, secrets.clone())
            }))
            .add_service(grpc_service)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .serve_with_incoming_shutdown(
                listener::grpc::incoming(
                    self.grpc,
                    timeouts.header_read,
                    max_connection_age + grace,
                ),
                stop.clone().cancelled_owned(),
            );

        let rest_endpoint = ObserveRest::new(
            rest::endpoint(self.secrets.clone(), self.gate.clone(), {
                let (secrets, gate) = (self.secrets.clone(), self.gate.clone());
                |route| crate::pages::add_routes(route, secrets, gate)
            }),
            self.metrics.clone(),
            rest::path_parameters(),
        );
        let http = listener::http::serve(
            self.http,
            Arc::new(ToDynEndpoint(rest_endpoint.map_to_response())),
            timeouts,
            stop.clone(),
            grace,
        );
        let admin = listener::http::serve(
            self.admin,
            Arc::new(ToDynEndpoint(admin::endpoint(
                self.secrets.clone(),
                self.metrics.clone(),
            ))),
            timeouts,
            stop.clone(),
            grace,
        );

        reload_tokens_on_sighup(self.auth.clone(), stop.clone());

        let trigger = stop.clone();
        let health_on_stop = health.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, finishing in-flight requests");
            health_on_stop
                .set_not_serving::<SecretsServer<GrpcSecrets>>()
                .await;
            trigger.cancel();
        });

        let grpc = async {
            let result = grpc.await;
            // If the gRPC server failed on its own, stop the others too.
            stop.cancel();
            result
        };
        // tonic waits for every connection to close; past the grace period the process does
        // not wait for it any longer (its connections end with the runtime).
        let grpc = async {
            tokio::select! {
                result = grpc => result.map(|()| true),
                () = async { stop.cancelled().await; tokio::time::sleep(grace).await } => Ok(false),
            }
        };
        let (grpc_result, (), ()) = tokio::join!(grpc, http, admin);
        match grpc_result {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                "gRPC connections still open after the shutdown grace period: not waiting for them"
            ),
            Err(err) => return Err(ServeError::Grpc(err.to_string())),
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Re-reads the API tokens file on every SIGHUP until the server stops. A file that fails to
/// parse is reported and the tokens in force stay.
fn reload_tokens_on_sighup(auth: Arc<Authenticator>, stop: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGHUP: API tokens reload only on restart");
                return;
            }
        };
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    received = hangups.recv() => {
                        if received.is_none() {
                            return;
                        }
                        match auth.reload() {
                            Ok(customers) => tracing::info!(customers, "API tokens reloaded"),
                            Err(problem) => tracing::error!(%problem, "API tokens not reloaded; keeping the previous ones"),
                        }
                    }
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (auth, stop);
}

fn local_addr(listener: &Listener) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}
