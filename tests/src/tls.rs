//! Redis over TLS for the tests: certificates made by the test, a TLS `redis-server` and a
//! TLS Cluster, and the naming keys a test server uses.

use super::*;

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
    process: RedisProcess,
    certificates: TestCertificates,
    /// Redis's working directory (and the copy of its log), removed when dropped.
    _dir: tempfile::TempDir,
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
            if let Some(process) = spawn_redis(port, dir.path(), &args) {
                return Self {
                    port,
                    process,
                    certificates,
                    _dir: dir,
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
        self.process.log_text()
    }

    /// A TLS connection as the default user, for setting up and inspecting the server.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        self.certificates.connect(self.port).await
    }
}

/// A three-node Redis Cluster that speaks only TLS, between its nodes too (`--tls-cluster`),
/// with certificates from its own [`TestCertificates`]. Killed when dropped.
pub struct TestTlsRedisCluster {
    ports: Vec<u16>,
    nodes: Vec<RedisProcess>,
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
            nodes: Vec::new(),
            certificates,
            _dir: dir,
        };
        while cluster.nodes.len() < 3 {
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
            if let Some(node) = spawn_redis(port, cluster._dir.path(), &args) {
                cluster.ports.push(port);
                cluster.nodes.push(node);
            }
        }
        let ca = cluster.ca_file().display().to_string();
        create_cluster(
            &cluster.ports,
            &cluster.nodes,
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
