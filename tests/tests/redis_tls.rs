//! Redis over TLS (`rediss://`) with a CA of the test's own making, as an ACL user allowed only
//! the commands burnbox needs (the ACL documented in `k8s/overlays/production/redis-user.acl`),
//! and the clear refusals when the CA or the password is wrong. (Its own test binary: it
//! installs the process-wide log subscriber to read what the server says.)

use std::time::Duration;

use burnbox_core::ErrorKind;
use burnbox_server::{Application, Config, StartupError};
use burnbox_tests::{
    ALICE, Backend, TestServer, TestTlsRedis, TestTlsRedisCluster, assert_rest_error, basic_auth,
    captured_logs, eventually, json_of, rest_get, rest_reveal, rest_share, test_master_key,
    text_field,
};
use reqwest::StatusCode;

/// The ACL rules of the documented `burnbox` user, with `password` in place of the
/// placeholder (every rule after `user burnbox`).
fn documented_acl_rules(password: &str) -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../k8s/overlays/production/redis-user.acl"
    );
    let text = std::fs::read_to_string(path).expect("the documented ACL");
    let line = text
        .lines()
        .find(|line| line.starts_with("user burnbox "))
        .expect("a `user burnbox` line");
    line.split_whitespace()
        .skip(2)
        .map(|rule| {
            if rule.starts_with('#') || rule.starts_with('>') {
                format!(">{password}")
            } else {
                rule.to_owned()
            }
        })
        .collect()
}

/// Creates the documented `burnbox` user with `password` on `redis`, and clears the ACL log.
async fn add_burnbox_user(redis: &TestTlsRedis, password: &str) {
    add_burnbox_user_on(&mut redis.connection().await, password).await;
}

/// The ACL entries of commands Redis denied, on the node behind `admin`.
async fn denied_commands(admin: &mut redis::aio::MultiplexedConnection) -> Vec<redis::Value> {
    redis::cmd("ACL")
        .arg("LOG")
        .query_async(admin)
        .await
        .expect("ACL LOG")
}

async fn add_burnbox_user_on(admin: &mut redis::aio::MultiplexedConnection, password: &str) {
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg("burnbox")
        .arg(documented_acl_rules(password))
        .exec_async(admin)
        .await
        .expect("ACL SETUSER");
    redis::cmd("ACL")
        .arg("LOG")
        .arg("RESET")
        .exec_async(admin)
        .await
        .expect("ACL LOG RESET");
}

/// Points a test configuration at `url`, trusting `ca_file` if given.
fn on_tls_redis(url: String, ca_file: Option<std::path::PathBuf>) -> impl FnOnce(&mut Config) {
    move |config| {
        config.redis_url = Some(url);
        config.redis_ca_file = ca_file;
        config.master_key = Some(test_master_key());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_works_over_tls_as_the_documented_acl_user() {
    captured_logs();
    let redis = TestTlsRedis::start();
    add_burnbox_user(&redis, "burnbox-acl-pass-4c1d").await;
    let server = TestServer::start_with_customers(Backend::Memory, |config| {
        on_tls_redis(
            redis.url_as("burnbox", "burnbox-acl-pass-4c1d"),
            Some(redis.ca_file()),
        )(config);
        // alice's shares count against the customer limit.
        config.customer_rate_limit_create = 4;
        config.customer_rate_limit_reveal = 100;
    })
    .await;
    assert_eq!(server.readiness().await, StatusCode::OK, "{}", redis.log());
    let alice = basic_auth(ALICE.0, ALICE.1);
    let share = |form: Vec<(&'static str, &'static str)>| {
        let request = server
            .http
            .post(server.api("/share"))
            .header("authorization", &alice)
            .form(&form);
        async move { json_of(request.send().await.expect("share")).await }
    };

    // Share, look up and reveal.
    let (status, plain) = share(vec![("secret", "over tls")]).await;
    assert_eq!(status, StatusCode::OK, "{plain}");
    let (status, looked_up) = rest_get(
        &server,
        &format!("/secret/{}/status", text_field(&plain, "secret_key")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{looked_up}");
    let (status, revealed) = rest_reveal(&server, &text_field(&plain, "secret_key"), None).await;
    assert_eq!(
        (status, revealed["value"].as_str()),
        (StatusCode::OK, Some("over tls"))
    );

    // A wrong passphrase is counted, the right one reveals.
    let (_, guarded) = share(vec![("secret", "guarded"), ("passphrase", "pw")]).await;
    let guarded_key = text_field(&guarded, "secret_key");
    assert_rest_error(
        &rest_reveal(&server, &guarded_key, Some("wrong")).await,
        ErrorKind::Validation,
        Some("passphrase"),
    );
    let (status, revealed) = rest_reveal(&server, &guarded_key, Some("pw")).await;
    assert_eq!(
        (status, revealed["value"].as_str()),
        (StatusCode::OK, Some("guarded"))
    );

    // Burn, receipts, the recent list.
    let (_, burned) = share(vec![("secret", "to burn")]).await;
    let burn = server
        .http
        .post(server.api(&format!(
            "/private/{}/burn",
            text_field(&burned, "metadata_key")
        )))
        .header("authorization", &alice)
        .send()
        .await
        .expect("burn");
    let (status, burn) = json_of(burn).await;
    assert_eq!(
        (status, burn["state"]["state"].as_str()),
        (StatusCode::OK, Some("burned"))
    );
    let receipt = server
        .http
        .get(server.api(&format!("/private/{}", text_field(&plain, "metadata_key"))))
        .header("authorization", &alice)
        .send()
        .await
        .expect("receipt");
    let (status, receipt) = json_of(receipt).await;
    assert_eq!(
        (status, receipt["state"].as_str()),
        (StatusCode::OK, Some("received"))
    );
    let recent = server
        .http
        .get(server.api("/private/recent"))
        .header("authorization", &alice)
        .send()
        .await
        .expect("recent");
    let (status, recent) = json_of(recent).await;
    assert_eq!(status, StatusCode::OK, "{recent}");
    assert_eq!(recent.as_array().map(Vec::len), Some(3), "{recent}");

    // The rate limit: three shares counted, one more allowed, the fifth refused.
    assert_eq!(share(vec![("secret", "4th")]).await.0, StatusCode::OK);
    assert_rest_error(
        &share(vec![("secret", "5th")]).await,
        ErrorKind::RateLimited,
        None,
    );

    // Redis denied burnbox nothing, and burnbox was connected as that user.
    let mut admin = redis.connection().await;
    let denied = denied_commands(&mut admin).await;
    assert!(denied.is_empty(), "commands denied by the ACL: {denied:?}");
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut admin)
        .await
        .expect("CLIENT LIST");
    assert!(clients.contains("user=burnbox"), "{clients}");
    assert!(
        !captured_logs().text().contains("burnbox-acl-pass-4c1d"),
        "the Redis password was logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_ca_the_server_is_unready_and_says_why() {
    captured_logs();
    let redis = TestTlsRedis::start();
    let server = TestServer::start_with(Backend::Memory, on_tls_redis(redis.url(), None)).await;
    assert_eq!(server.readiness().await, StatusCode::SERVICE_UNAVAILABLE);
    assert_rest_error(
        &rest_share(&server, &[("secret", "s")]).await,
        ErrorKind::Unavailable,
        None,
    );
    // The system's roots do not know the test's CA, and the log says so.
    eventually(
        Duration::from_secs(10),
        "a log line naming the certificate",
        || async {
            captured_logs()
                .text()
                .lines()
                .any(|line| {
                    line.contains("WARN")
                        && line.contains("invalid peer certificate: UnknownIssuer")
                })
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_redis_password_is_a_clear_unready_error_and_never_logged() {
    captured_logs();
    let redis = TestTlsRedis::start();
    add_burnbox_user(&redis, "the-right-pass-0e7a").await;
    let server = TestServer::start_with(
        Backend::Memory,
        on_tls_redis(
            redis.url_as("burnbox", "a-wrong-pass-b5f2"),
            Some(redis.ca_file()),
        ),
    )
    .await;
    let readiness = server
        .http
        .get(format!("{}/readyz", server.admin_base))
        .send()
        .await
        .expect("readyz");
    let (status, body) = json_of(readiness).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_rest_error(
        &rest_share(&server, &[("secret", "s")]).await,
        ErrorKind::Unavailable,
        None,
    );
    eventually(
        Duration::from_secs(10),
        "a log line naming the refusal",
        || async {
            captured_logs()
                .text()
                .lines()
                .any(|line| {
                    line.contains("WARN") && line.contains("Password authentication failed")
                })
                .then_some(())
        },
    )
    .await;
    assert!(!body.to_string().contains("a-wrong-pass-b5f2"), "{body}");
    assert!(
        !captured_logs().text().contains("a-wrong-pass-b5f2"),
        "the Redis password was logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ca_file_must_be_a_pem_certificate_for_a_tls_url() {
    let redis = TestTlsRedis::start();
    let not_pem = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(not_pem.path(), "not a certificate").expect("write");
    let missing = redis.ca_file().with_file_name("missing.pem");
    let cases = [
        ("redis://127.0.0.1:1/".to_owned(), redis.ca_file()),
        // No Redis at all: the memory store.
        (String::new(), redis.ca_file()),
        (redis.url(), not_pem.path().to_owned()),
        (redis.url(), missing),
    ];
    for (url, ca_file) in cases {
        let mut config = Config::for_tests();
        on_tls_redis(url.clone(), Some(ca_file.clone()))(&mut config);
        config.redis_url = Some(url.clone()).filter(|url| !url.is_empty());
        match Application::build(config).await {
            Err(StartupError::Config(err)) => {
                assert_eq!(err.setting, "BURNBOX_REDIS_CA_FILE", "{err}");
            }
            Err(err) => panic!(
                "{url} with {}: not a config error: {err}",
                ca_file.display()
            ),
            Ok(_) => panic!("{url} with {} started", ca_file.display()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_works_as_the_documented_acl_user() {
    captured_logs();
    let cluster = TestTlsRedisCluster::start();
    let mut nodes = cluster.node_connections().await;
    for node in &mut nodes {
        add_burnbox_user_on(node, "cluster-acl-pass-91d3").await;
    }
    let server = TestServer::start_with_customers(Backend::Memory, |config| {
        config.redis_cluster_nodes = cluster.urls_as("burnbox", "cluster-acl-pass-91d3");
        config.redis_ca_file = Some(cluster.ca_file());
        config.master_key = Some(test_master_key());
        config.rate_limit_create = 100;
    })
    .await;
    eventually(
        Duration::from_secs(30),
        "readiness on the TLS cluster",
        || async { (server.readiness().await == StatusCode::OK).then_some(()) },
    )
    .await;
    let alice = basic_auth(ALICE.0, ALICE.1);
    let mut shared = Vec::new();
    // Several secrets, so that their keys spread over the nodes.
    for index in 0..6 {
        let request = server
            .http
            .post(server.api("/share"))
            .header("authorization", &alice)
            .form(&[("secret", format!("clustered {index}"))]);
        let (status, receipt) = json_of(request.send().await.expect("share")).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        shared.push(receipt);
    }
    for (index, receipt) in shared.iter().enumerate() {
        let (status, revealed) =
            rest_reveal(&server, &text_field(receipt, "secret_key"), None).await;
        let expected = format!("clustered {index}");
        assert_eq!(
            (status, revealed["value"].as_str()),
            (StatusCode::OK, Some(expected.as_str()))
        );
    }
    let recent = server
        .http
        .get(server.api("/private/recent"))
        .header("authorization", &alice)
        .send()
        .await
        .expect("recent");
    let (status, recent) = json_of(recent).await;
    assert_eq!(status, StatusCode::OK, "{recent}");
    assert_eq!(recent.as_array().map(Vec::len), Some(6), "{recent}");
    for node in &mut nodes {
        let denied = denied_commands(node).await;
        assert!(denied.is_empty(), "commands denied by the ACL: {denied:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_redis_url_is_refused_without_echoing_its_password() {
    for url in [
        "rediss://burnbox:url-pass-77aa@/",
        "redis://burnbox:url-pass-77aa@127.0.0.1:1/not-a-database",
    ] {
        let mut config = Config::for_tests();
        on_tls_redis(url.to_owned(), None)(&mut config);
        let err = match Application::build(config).await {
            Err(err) => err.to_string(),
            Ok(_) => panic!("started with a bad URL"),
        };
        assert!(err.contains("invalid Redis URL"), "{err}");
        assert!(!err.contains("url-pass-77aa"), "{err}");
    }
}
