//! The server's configuration: one struct from CLI flags and `BURNBOX_*` environment variables.
//! Defaults run locally with no configuration at all (memory store, ephemeral master key).

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use burnbox_core::{Keyring, MasterKey, PassphraseRules, Policy};
use clap::Parser;

/// burnbox: one-time secrets. Serves the Onetime Secret v1 REST API, gRPC and web pages; a
/// secret's first reveal returns it and destroys it. Every setting below is a flag or the
/// BURNBOX_* environment variable shown; with none, it runs on an in-memory store.
#[derive(Parser, Clone)]
#[command(name = "burnbox", version)]
pub struct Config {
    /// Address of the REST listener.
    #[arg(long, env = "BURNBOX_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,

    /// Address of the gRPC listener.
    #[arg(long, env = "BURNBOX_GRPC_ADDR", default_value = "0.0.0.0:50051")]
    pub grpc_addr: SocketAddr,

    /// Without Redis: the most memory the in-process store may hold for secrets, receipts and
    /// indexes, in MiB. A share that would go over it is refused (503 Unavailable) until secrets
    /// are revealed, burned or expire.
    #[arg(long, env = "BURNBOX_MEMORY_STORE_MIB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1024 * 1024))]
    pub memory_store_mib: u64,

    /// Address of the admin listener (/livez, /readyz).
    #[arg(long, env = "BURNBOX_ADMIN_ADDR", default_value = "0.0.0.0:9090")]
    pub admin_addr: SocketAddr,

    /// Redis URL (`redis://[user:password@]host:port/db`, or `rediss://` for TLS). Unset: secrets
    /// live in process memory.
    #[arg(long, env = "BURNBOX_REDIS_URL")]
    pub redis_url: Option<String>,

    /// How long to wait for Redis (connect or command) before answering 503, in milliseconds.
    #[arg(long, env = "BURNBOX_REDIS_TIMEOUT_MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub redis_timeout_ms: u64,

    /// Master key for encryption at rest: base64 of 32 random bytes (`openssl rand -base64 32`).
    /// Required with Redis; without Redis an ephemeral key is generated.
    #[arg(long, env = "BURNBOX_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,

    /// The previous master key, during a rotation: secrets written under it still reveal.
    #[arg(long, env = "BURNBOX_MASTER_KEY_PREVIOUS", hide_env_values = true)]
    pub master_key_previous: Option<String>,

    /// The public base URL of the service (`https://secrets.example.com`): links are made with
    /// it and it is returned as `share_domain`. Empty: made from the REST listening address.
    #[arg(long, env = "BURNBOX_PUBLIC_URL", default_value = "")]
    pub public_url: String,

    /// Largest secret accepted, in bytes.
    #[arg(long, env = "BURNBOX_MAX_SECRET_BYTES", default_value_t = 65_536, value_parser = clap::value_parser!(u64).range(1..=16 * 1024 * 1024))]
    pub max_secret_bytes: u64,

    /// Lifetime of a secret shared without a ttl, in seconds (default 7 days).
    #[arg(long, env = "BURNBOX_DEFAULT_TTL", default_value_t = 604_800)]
    pub default_ttl: i64,

    /// Longest lifetime a secret may be given, in seconds (default 30 days).
    #[arg(long, env = "BURNBOX_MAX_TTL", default_value_t = 2_592_000)]
    pub max_ttl: i64,

    /// Shortest passphrase accepted when sharing, in characters (0: any; at most 128).
    #[arg(long, env = "BURNBOX_PASSPHRASE_MIN_LENGTH", default_value_t = 0)]
    pub passphrase_min_length: usize,

    /// Whether every secret must be shared with a passphrase.
    #[arg(long, env = "BURNBOX_PASSPHRASE_REQUIRED", default_value_t = false, action = clap::ArgAction::Set, value_parser = parse_switch)]
    pub passphrase_required: bool,

    /// Failed passphrase attempts after which a secret is burned.
    #[arg(long, env = "BURNBOX_PASSPHRASE_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub passphrase_max_attempts: u32,

    /// Share and generate requests per minute per client address, for callers without valid
    /// credentials (anonymous callers, and failed authentication); 0: off.
    #[arg(long, env = "BURNBOX_RATE_LIMIT_CREATE", default_value_t = 60)]
    pub rate_limit_create: u32,

    /// Reveal, secret status, receipt, burn, recent and authcheck requests per minute per client
    /// address, for callers without valid credentials; 0: off.
    #[arg(long, env = "BURNBOX_RATE_LIMIT_REVEAL", default_value_t = 300)]
    pub rate_limit_reveal: u32,

    /// Share and generate requests per minute per authenticated customer; 0 (the default): no
    /// limit, as Onetime Secret lets its customers create freely (a batch job never sees a 429).
    #[arg(long, env = "BURNBOX_CUSTOMER_RATE_LIMIT_CREATE", default_value_t = 0)]
    pub customer_rate_limit_create: u32,

    /// Reveal, secret status, receipt, burn, recent and authcheck requests per minute per
    /// authenticated customer; 0 (the default): no limit.
    #[arg(long, env = "BURNBOX_CUSTOMER_RATE_LIMIT_REVEAL", default_value_t = 0)]
    pub customer_rate_limit_reveal: u32,

    /// Proxies whose X-Forwarded-For is believed, as a comma-separated CIDR list
    /// (e.g. `10.0.0.0/8,127.0.0.1/32`). Empty: the peer address is the client.
    #[arg(long, env = "BURNBOX_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_cidr)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// File of API tokens, one `custid:token` per line (`custid:sha256:HEX` stores only the
    /// token's hash); re-read on SIGHUP. Unset: no customers, anonymous use only.
    #[arg(long, env = "BURNBOX_API_TOKENS_FILE")]
    pub api_tokens_file: Option<std::path::PathBuf>,

    /// Whether callers without credentials may reveal and look up secrets, and share them unless
    /// BURNBOX_ALLOW_ANONYMOUS_CREATE says otherwise (false: every operation but status needs
    /// credentials).
    #[arg(long, env = "BURNBOX_ALLOW_ANONYMOUS", default_value_t = true, action = clap::ArgAction::Set, value_parser = parse_switch)]
    pub allow_anonymous: bool,

    /// Whether callers without credentials may share and generate secrets; unset: as
    /// BURNBOX_ALLOW_ANONYMOUS. `false` with anonymous use on: only customers create, anyone
    /// with a link reveals.
    #[arg(long, env = "BURNBOX_ALLOW_ANONYMOUS_CREATE", action = clap::ArgAction::Set, value_parser = parse_switch)]
    pub allow_anonymous_create: Option<bool>,

    /// Redis Cluster: comma-separated node URLs (`redis://host:port`); any few nodes will do,
    /// the rest are discovered. Mutually exclusive with BURNBOX_REDIS_URL.
    #[arg(
        long,
        env = "BURNBOX_REDIS_CLUSTER_NODES",
        value_delimiter = ',',
        conflicts_with = "redis_url"
    )]
    pub redis_cluster_nodes: Vec<String>,

    /// PEM file of the CA certificates a `rediss://` Redis must present a certificate from.
    /// Unset: the system's root certificates.
    #[arg(long, env = "BURNBOX_REDIS_CA_FILE")]
    pub redis_ca_file: Option<std::path::PathBuf>,

    /// SMTP server that emails secret links to a share's `recipient` (customers only):
    /// `smtp://[user:password@]host:port` (plain), `smtp://...?tls=required` (STARTTLS) or
    /// `smtps://host:port` (TLS). Unset: no email, and a share with a recipient is refused.
    #[arg(long, env = "BURNBOX_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// The From address of link emails (`burnbox@example.com` or `Burnbox <burnbox@example.com>`);
    /// required with BURNBOX_SMTP_URL.
    #[arg(long, env = "BURNBOX_SMTP_FROM")]
    pub smtp_from: Option<String>,

    /// OTLP endpoint for traces (`http://collector:4318` for http/protobuf, `http://collector:4317`
    /// for grpc). Unset: no export.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_exporter_otlp_endpoint: Option<String>,

    /// OTLP transport.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_PROTOCOL",
        value_enum,
        default_value = "http/protobuf"
    )]
    pub otel_exporter_otlp_protocol: crate::telemetry::OtlpProtocol,

    /// `service.name` of exported spans.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "burnbox")]
    pub otel_service_name: String,

    /// Which traces to record.
    #[arg(
        long,
        env = "OTEL_TRACES_SAMPLER",
        value_enum,
        default_value = "parentbased_always_on"
    )]
    pub otel_traces_sampler: crate::telemetry::SamplerKind,

    /// The ratio of the ratio samplers (0.0 to 1.0).
    #[arg(long, env = "OTEL_TRACES_SAMPLER_ARG", default_value_t = 1.0)]
    pub otel_traces_sampler_arg: f64,

    /// `otlp`: also push the metrics of /metrics over OTLP (same names and attributes).
    #[arg(
        long,
        env = "OTEL_METRICS_EXPORTER",
        value_enum,
        default_value = "none"
    )]
    pub otel_metrics_exporter: crate::telemetry::MetricsExporter,

    /// OTLP endpoint for metrics alone (for http/protobuf the full URL, `…/v1/metrics`). Unset:
    /// OTEL_EXPORTER_OTLP_ENDPOINT, else the local collector.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")]
    pub otel_exporter_otlp_metrics_endpoint: Option<String>,

    /// OTLP transport for metrics. Unset: OTEL_EXPORTER_OTLP_PROTOCOL.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", value_enum)]
    pub otel_exporter_otlp_metrics_protocol: Option<crate::telemetry::OtlpProtocol>,

    /// Milliseconds between two OTLP metrics exports.
    #[arg(long, env = "OTEL_METRIC_EXPORT_INTERVAL", default_value_t = 60_000)]
    pub otel_metric_export_interval: u64,

    /// Log filter in RUST_LOG syntax, e.g. `info` or `burnbox_core=debug,info`.
    #[arg(long, env = "BURNBOX_LOG", default_value = "info")]
    pub log: String,

    /// Log line format.
    #[arg(long, env = "BURNBOX_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// The longest an info or debug log line waits before it is written, in milliseconds: lines
    /// are written in batches, warnings and errors at once, everything pending at exit.
    #[arg(long, env = "BURNBOX_LOG_FLUSH_MS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub log_flush_ms: u64,

    /// How long in-flight requests may take to finish after SIGTERM, in seconds.
    #[arg(long, env = "BURNBOX_SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,

    /// How long a client may take to send a request's line and headers, in seconds: from the
    /// connection's start, or on a kept-alive connection from the first byte of the next
    /// request (REST and admin). gRPC connections must send the HTTP/2 preface within it.
    #[arg(long, env = "BURNBOX_HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_seconds: u64,

    /// How long a REST request's body may take to arrive once its headers have, in seconds; a
    /// late body is answered 400 and its connection closed.
    #[arg(long, env = "BURNBOX_BODY_READ_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_read_timeout_seconds: u64,

    /// How long a kept-alive REST or admin connection may wait for its next request, in
    /// seconds, before it is closed.
    #[arg(long, env = "BURNBOX_IDLE_TIMEOUT_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout_seconds: u64,

    /// Connections each public listener (REST, gRPC) serves at once; further ones wait in the
    /// kernel's accept queue. Lowered at startup, with a warning, if the open-file limit is
    /// too low for it.
    #[arg(long, env = "BURNBOX_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,

    /// Seconds between HTTP/2 pings on a quiet gRPC connection; a peer that does not answer
    /// one within as long (at most 20 seconds) is disconnected.
    #[arg(long, env = "BURNBOX_GRPC_KEEPALIVE_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub grpc_keepalive_seconds: u64,

    /// Age in seconds at which a gRPC connection is asked to close (HTTP/2 GOAWAY): clients
    /// reconnect by themselves (spreading over replicas as they do), calls in flight get
    /// BURNBOX_SHUTDOWN_GRACE_SECONDS to finish.
    #[arg(long, env = "BURNBOX_GRPC_MAX_CONNECTION_AGE_SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub grpc_max_connection_age_seconds: u64,
}

/// Decodes a master key setting: base64 of exactly 32 bytes; unset or blank means none.
fn decode_master_key(
    setting: &'static str,
    value: Option<&str>,
) -> Result<Option<MasterKey>, ConfigError> {
    let Some(encoded) = value.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    let invalid = || ConfigError {
        setting,
        problem: "must be base64 of exactly 32 bytes (generate one with `openssl rand -base64 32`)"
            .into(),
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| invalid())?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| invalid())?;
    Ok(Some(MasterKey::from_bytes(bytes)))
}

/// A CIDR block, or a single address (as a /32 or /128).
fn parse_cidr(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not a CIDR block or an IP address"))
}

/// The start of a certificate in a PEM file.
const CERTIFICATE_PEM: &[u8] = b"-----BEGIN CERTIFICATE-----";

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Whether lines are JSON.
    pub fn is_json(self) -> bool {
        self == Self::Json
    }
}

/// An on/off setting: `true`/`false`, `yes`/`no`, `on`/`off` or `1`/`0`, in any case.
fn parse_switch(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err("expected true or false (also yes/no, on/off, 1/0)".to_owned()),
    }
}

/// A configuration mistake, naming the setting at fault.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {setting}: {problem}")]
pub struct ConfigError {
    /// The environment variable of the setting.
    pub setting: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl Config {
    /// The limits on shared secrets.
    pub fn policy(&self) -> Result<Policy, ConfigError> {
        let max_secret_bytes = usize::try_from(self.max_secret_bytes).map_err(|_| ConfigError {
            setting: "BURNBOX_MAX_SECRET_BYTES",
            problem: "too large for this platform".into(),
        })?;
        let policy =
            Policy::new(self.default_ttl, self.max_ttl, max_secret_bytes).map_err(|problem| {
                ConfigError {
                    setting: if problem.starts_with("default") {
                        "BURNBOX_DEFAULT_TTL"
                    } else {
                        "BURNBOX_MAX_TTL"
                    },
                    problem,
                }
            })?;
        policy
            .with_passphrase_rules(PassphraseRules {
                min_length: self.passphrase_min_length,
                required: self.passphrase_required,
                max_attempts: self.passphrase_max_attempts,
            })
            .map_err(|problem| ConfigError {
                setting: "BURNBOX_PASSPHRASE_MIN_LENGTH",
                problem,
            })
    }

    /// The configured master key, if any.
    pub fn master_key(&self) -> Result<Option<MasterKey>, ConfigError> {
        decode_master_key("BURNBOX_MASTER_KEY", self.master_key.as_deref())
    }

    /// The keyring: the configured key, or (memory store only) an ephemeral one. Returns whether
    /// the key is ephemeral, so startup can warn.
    pub fn keyring(&self) -> Result<(Keyring, bool), ConfigError> {
        let previous = decode_master_key(
            "BURNBOX_MASTER_KEY_PREVIOUS",
            self.master_key_previous.as_deref(),
        )?;
        match (self.master_key()?, self.uses_redis()) {
            (Some(key), _) => Ok((Keyring::new(key, previous), false)),
            (None, false) => Ok((Keyring::new(MasterKey::generate(), None), true)),
            (None, true) => Err(ConfigError {
                setting: "BURNBOX_MASTER_KEY",
                problem: "required with Redis (BURNBOX_REDIS_URL or BURNBOX_REDIS_CLUSTER_NODES) (secrets in Redis must survive restarts); generate one with `openssl rand -base64 32`".into(),
            }),
        }
    }

    /// The authenticator, with the tokens file read.
    pub fn authenticator(&self) -> Result<crate::auth::Authenticator, ConfigError> {
        crate::auth::Authenticator::load(self.api_tokens_file.clone()).map_err(|problem| {
            ConfigError {
                setting: "BURNBOX_API_TOKENS_FILE",
                problem,
            }
        })
    }

    /// What callers without credentials may do.
    pub fn anonymous_access(&self) -> crate::gate::AnonymousAccess {
        crate::gate::AnonymousAccess {
            read: self.allow_anonymous,
            create: self.allow_anonymous_create.unwrap_or(self.allow_anonymous),
        }
    }

    /// The telemetry settings.
    pub fn telemetry(&self) -> crate::telemetry::TelemetryConfig {
        crate::telemetry::TelemetryConfig {
            log_filter: self.log.clone(),
            json_logs: self.log_format.is_json(),
            log_flush_interval: Duration::from_millis(self.log_flush_ms),
            otlp_endpoint: self
                .otel_exporter_otlp_endpoint
                .clone()
                .filter(|endpoint| !endpoint.trim().is_empty()),
            otlp_protocol: self.otel_exporter_otlp_protocol,
            service_name: self.otel_service_name.clone(),
            sampler: self.otel_traces_sampler,
            sampler_ratio: self.otel_traces_sampler_arg,
            metrics: match self.otel_metrics_exporter {
                crate::telemetry::MetricsExporter::None => None,
                crate::telemetry::MetricsExporter::Otlp => {
                    Some(crate::telemetry::MetricsExport::resolve(
                        self.otel_exporter_otlp_metrics_endpoint.as_deref(),
                        self.otel_exporter_otlp_endpoint.as_deref(),
                        self.otel_exporter_otlp_metrics_protocol
                            .unwrap_or(self.otel_exporter_otlp_protocol),
                        // A zero interval would export in a busy loop.
                        std::time::Duration::from_millis(self.otel_metric_export_interval.max(100)),
                    ))
                }
            },
        }
    }

    /// Whether a Redis store (standalone or cluster) is configured.
    pub fn uses_redis(&self) -> bool {
        self.redis_url.is_some() || !self.redis_cluster_nodes.is_empty()
    }

    /// The rate limits.
    pub fn rate_limits(&self) -> crate::gate::RateLimits {
        crate::gate::RateLimits {
            anonymous: crate::gate::ClassLimits {
                create_per_minute: self.rate_limit_create,
                reveal_per_minute: self.rate_limit_reveal,
            },
            customer: crate::gate::ClassLimits {
                create_per_minute: self.customer_rate_limit_create,
                reveal_per_minute: self.customer_rate_limit_reveal,
            },
        }
    }

    /// The memory store's byte budget.
    pub fn memory_store_budget_bytes(&self) -> usize {
        usize::try_from(self.memory_store_mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
    }

    /// The Redis to use, if any, with the setting that names it. A URL that is not `redis://` or
    /// `rediss://` is refused here, naming the setting, before any connection is tried.
    pub fn redis_topology(
        &self,
    ) -> Result<Option<(&'static str, burnbox_store_redis::RedisTopology)>, ConfigError> {
        let check = |setting: &'static str, url: &str| {
            let scheme = url.split_once("://").map(|(scheme, _)| scheme);
            if matches!(scheme, Some("redis" | "rediss")) {
                Ok(())
            } else {
                Err(ConfigError {
                    setting,
                    problem: "must be a redis://host:port or rediss://host:port URL \
                              (rediss for TLS; user:password@ and /db optional)"
                        .into(),
                })
            }
        };
        match (&self.redis_url, self.redis_cluster_nodes.as_slice()) {
            (Some(url), _) => {
                check("BURNBOX_REDIS_URL", url)?;
                Ok(Some((
                    "BURNBOX_REDIS_URL",
                    burnbox_store_redis::RedisTopology::Standalone(url.clone()),
                )))
            }
            (None, []) => Ok(None),
            (None, nodes) => {
                for node in nodes {
                    check("BURNBOX_REDIS_CLUSTER_NODES", node)?;
                }
                Ok(Some((
                    "BURNBOX_REDIS_CLUSTER_NODES",
                    burnbox_store_redis::RedisTopology::Cluster(nodes.to_vec()),
                )))
            }
        }
    }

    /// The CA certificates of `BURNBOX_REDIS_CA_FILE` (PEM), if set: read once at startup, and
    /// only with `rediss://` URLs, which are the only ones they could apply to.
    pub fn redis_ca_certificates(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        let Some(path) = &self.redis_ca_file else {
            return Ok(None);
        };
        let invalid = |problem: String| ConfigError {
            setting: "BURNBOX_REDIS_CA_FILE",
            problem,
        };
        let urls: Vec<&String> = self
            .redis_url
            .iter()
            .chain(&self.redis_cluster_nodes)
            .collect();
        if urls.is_empty() || !urls.iter().all(|url| url.starts_with("rediss://")) {
            return Err(invalid(
                "applies to TLS connections only: BURNBOX_REDIS_URL or every node of \
                 BURNBOX_REDIS_CLUSTER_NODES must be rediss://"
                    .into(),
            ));
        }
        let pem = std::fs::read(path)
            .map_err(|err| invalid(format!("cannot read {}: {err}", path.display())))?;
        if !pem
            .windows(CERTIFICATE_PEM.len())
            .any(|window| window == CERTIFICATE_PEM)
        {
            return Err(invalid(format!(
                "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            )));
        }
        Ok(Some(pem))
    }

    /// How long to wait for Redis.
    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    /// A configuration for tests and embedding: every listener on 127.0.0.1 port 0, memory
    /// store, no rate limits.
    pub fn for_tests() -> Self {
        let mut config = Self::parse_from(["burnbox"]);
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        config.http_addr = loopback;
        config.grpc_addr = loopback;
        config.admin_addr = loopback;
        // Suites make many requests from one address; the rate-limit tests turn limits on.
        config.rate_limit_create = 0;
        config.rate_limit_reveal = 0;
        config
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the master key or Redis credentials.
        f.debug_struct("Config")
            .field("http_addr", &self.http_addr)
            .field("grpc_addr", &self.grpc_addr)
            .field("admin_addr", &self.admin_addr)
            .field("redis", &self.redis_url.as_ref().map(|_| "configured"))
            .field("redis_cluster_nodes", &self.redis_cluster_nodes.len())
            .field("memory_store_mib", &self.memory_store_mib)
            .field("redis_ca_file", &self.redis_ca_file)
            .field("smtp", &self.smtp_url.as_ref().map(|_| "configured"))
            .field("smtp_from", &self.smtp_from)
            .field(
                "otel_exporter_otlp_endpoint",
                &self.otel_exporter_otlp_endpoint,
            )
            .field("otel_metrics_exporter", &self.otel_metrics_exporter)
            .field(
                "otel_exporter_otlp_metrics_endpoint",
                &self.otel_exporter_otlp_metrics_endpoint,
            )
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "configured"),
            )
            .field("public_url", &self.public_url)
            .field("api_tokens_file", &self.api_tokens_file)
            .field("allow_anonymous", &self.allow_anonymous)
            .field("allow_anonymous_create", &self.allow_anonymous_create)
            .field("passphrase_min_length", &self.passphrase_min_length)
            .field("passphrase_required", &self.passphrase_required)
            .field("passphrase_max_attempts", &self.passphrase_max_attempts)
            .field("rate_limit_create", &self.rate_limit_create)
            .field("rate_limit_reveal", &self.rate_limit_reveal)
            .field(
                "customer_rate_limit_create",
                &self.customer_rate_limit_create,
            )
            .field(
                "customer_rate_limit_reveal",
                &self.customer_rate_limit_reveal,
            )
            .field("trusted_proxies", &self.trusted_proxies)
            .field("max_secret_bytes", &self.max_secret_bytes)
            .field("default_ttl", &self.default_ttl)
            .field("max_ttl", &self.max_ttl)
            .field("shutdown_grace_seconds", &self.shutdown_grace_seconds)
            .field(
                "header_read_timeout_seconds",
                &self.header_read_timeout_seconds,
            )
            .field("body_read_timeout_seconds", &self.body_read_timeout_seconds)
            .field("idle_timeout_seconds", &self.idle_timeout_seconds)
            .field("max_connections", &self.max_connections)
            .field("grpc_keepalive_seconds", &self.grpc_keepalive_seconds)
            .field(
                "grpc_max_connection_age_seconds",
                &self.grpc_max_connection_age_seconds,
            )
            .finish()
    }
}
