//! A full store refuses new secrets with 503 Unavailable ("full"; gRPC UNAVAILABLE), counted in
//! `/metrics`, while reveals keep working and a revealed secret's space comes back: the
//! in-process store at `BURNBOX_MEMORY_STORE_MIB`, and Redis at its `maxmemory` with the
//! `noeviction` policy (never a 500, and never an evicted secret).

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
    })
    .await;
    fill_refuse_and_recover(&server, 16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_redis_refuses_shares_until_space_comes_back() {
    let redis =
        TestRedis::start_with_args(&["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"]);
    let server = TestServer::start(Backend::Redis(redis)).await;
    fill_refuse_and_recover(&server, 64).await;
}

/// Shares 64 KiB secrets until the store is full (at most `at_most` fit), then checks the
/// refusal on both transports, a reveal, the space it gives back, and the metric.
async fn fill_refuse_and_recover(server: &TestServer, at_most: usize) {
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
