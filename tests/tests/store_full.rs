//! A full store refuses new secrets with 503 Unavailable ("full"; gRPC UNAVAILABLE), counted in
//! `/metrics`, while reveals keep working and a revealed secret's space comes back: the
//! in-process store at `BURNBOX_MEMORY_STORE_MIB`, and Redis at its `maxmemory` with the
//! `noeviction` policy (never a 500, and never an evicted secret). A full store still counts
//! rate limits and failed passphrases: filling it must not open unlimited guessing.

use burnbox_core::ErrorKind;
use burnbox_tests::{
    Backend, TestRedis, TestServer, assert_grpc_error, assert_rest_error, grpc_share_request,
    rest_reveal, rest_share,
};
use reqwest::StatusCode;

const SECRET_BYTES: usize = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_memory_store_refuses_shares_until_space_comes_back() {
    let server = TestServer::start_with(Backend::Memory, |config| {
        config.memory_store_mib = 1;
        limits_on(config);
    })
    .await;
    fill_refuse_and_recover(&server, 16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_redis_refuses_shares_until_space_comes_back() {
    let redis =
        TestRedis::start_with_args(&["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"]);
    let server = TestServer::start_with(Backend::Redis(redis), limits_on).await;
    fill_refuse_and_recover(&server, 64).await;
}

const MAX_ATTEMPTS: u32 = 2;

/// Rate limits on (too high to trip here) and a passphrase attempt limit of two: both are
/// counted in the store, so both must keep counting when it is full.
fn limits_on(config: &mut burnbox_server::Config) {
    config.rate_limit_create = 10_000;
    config.rate_limit_reveal = 10_000;
    config.passphrase_max_attempts = MAX_ATTEMPTS;
}

/// Shares 64 KiB secrets until the store is full (at most `at_most` fit), then checks the
/// refusal on both transports, that failed passphrases still count, a reveal, the space it gives
/// back, and the metric.
async fn fill_refuse_and_recover(server: &TestServer, at_most: usize) {
    let (status, guarded) =
        rest_share(server, &[("secret", "guarded"), ("passphrase", "right")]).await;
    assert_eq!(status, StatusCode::OK, "{guarded}");
    let guarded = guarded["secret_key"].as_str().expect("key").to_owned();
    let value = "s".repeat(SECRET_BYTES);
    let mut keys = Vec::new();
    let refusal = loop {
        let answer = rest_share(server, &[("secret", &value)]).await;
        if answer.0 != StatusCode::OK {
            break answer;
        }
        keys.push(answer.1["secret_key"].as_str().expect("key").to_owned());
        assert!(
            keys.len() <= at_most,
            "more than {at_most} secrets of 64 KiB fit"
        );
    };
    assert!(keys.len() >= 4, "only {} secrets of 64 KiB fit", keys.len());
    assert_rest_error(&refusal, ErrorKind::Unavailable, None);
    assert!(
        refusal.1["message"]
            .as_str()
            .is_some_and(|message| message.contains("full")),
        "{}",
        refusal.1
    );
    let mut client = server.grpc().await;
    let status = client
        .share_secret(grpc_share_request(&value))
        .await
        .expect_err("full over gRPC too");
    assert_grpc_error(&status, ErrorKind::Unavailable, None);

    // Wrong passphrases are still counted: the last allowed one burns the secret, and the
    // right passphrase comes too late.
    for _ in 0..MAX_ATTEMPTS {
        let answer = rest_reveal(server, &guarded, Some("wrong")).await;
        assert_rest_error(&answer, ErrorKind::Validation, Some("passphrase"));
    }
    let answer = rest_reveal(server, &guarded, Some("right")).await;
    assert_rest_error(&answer, ErrorKind::NotFound, None);

    // Reveals keep working, and give their space back (half of them: Redis may have gone a
    // write past its maxmemory before it started refusing).
    for key in &keys[..keys.len() / 2] {
        let (status, revealed) = rest_reveal(server, key, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(revealed["value"].as_str().map(str::len), Some(SECRET_BYTES));
    }
    let (status, receipt) = rest_share(server, &[("secret", &value)]).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");

    let metrics = server.metrics_text().await;
    let line = r#"burnbox_store_errors_total{kind="full",operation="create"} 2"#;
    assert!(metrics.contains(line), "no {line} in\n{metrics}");
}
