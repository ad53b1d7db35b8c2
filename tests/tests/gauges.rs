//! The gauges the alert rules read: `burnbox_ready` follows the latest `/readyz` check (1, then 0
//! once Redis is gone), and the memory store's counted bytes and budget are exported when the
//! store is the in-process one, and only then.

use burnbox_tests::{Backend, TestRedis, TestServer, rest_reveal, rest_share};
use reqwest::StatusCode;

/// The value of the unlabelled sample `name`.
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_gauge_follows_the_latest_check() {
    let mut server = TestServer::start(Backend::Redis(TestRedis::start_own())).await;
    assert_eq!(server.readiness().await, StatusCode::OK);
    let text = server.metrics_text().await;
    assert_eq!(gauge(&text, "burnbox_ready"), Some(1.0), "{text}");
    // Redis-backed: no memory store gauges.
    assert!(!text.contains("burnbox_memory_store_"), "{text}");

    server.backend.test_redis().expect("redis").stop();
    assert_eq!(server.readiness().await, StatusCode::SERVICE_UNAVAILABLE);
    let text = server.metrics_text().await;
    assert_eq!(gauge(&text, "burnbox_ready"), Some(0.0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_gauges_move_with_shares() {
    let server = TestServer::start_with(Backend::Memory, |config| {
        config.memory_store_mib = 3;
    })
    .await;
    let text = server.metrics_text().await;
    assert_eq!(
        gauge(&text, "burnbox_memory_store_budget_bytes"),
        Some(3.0 * 1024.0 * 1024.0),
        "{text}"
    );
    let empty = gauge(&text, "burnbox_memory_store_used_bytes").expect("used bytes");
    assert_eq!(empty, 0.0, "{text}");

    let (status, body) = rest_share(&server, &[("secret", &"x".repeat(2000))]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let text = server.metrics_text().await;
    let holding = gauge(&text, "burnbox_memory_store_used_bytes").expect("used bytes");
    assert!(
        holding > 2000.0,
        "{holding} after a 2000-byte secret\n{text}"
    );

    let key = body["secret_key"].as_str().expect("secret_key");
    assert_eq!(rest_reveal(&server, key, None).await.0, StatusCode::OK);
    let text = server.metrics_text().await;
    let after = gauge(&text, "burnbox_memory_store_used_bytes").expect("used bytes");
    assert!(
        after < holding,
        "{after} after the reveal, {holding} before"
    );
}
