//! Without Redis, the in-process store holds at most `BURNBOX_MEMORY_STORE_MIB`: a share that
//! would go over it is refused with 503 Unavailable (gRPC UNAVAILABLE) and counted in
//! `/metrics`, reveals keep working, and a revealed secret's space comes back.

use burnbox_core::ErrorKind;
use burnbox_tests::{
    Backend, TestServer, assert_grpc_error, assert_rest_error, grpc_share_request, rest_reveal,
    rest_share,
};
use reqwest::StatusCode;

const SECRET_BYTES: usize = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_memory_store_refuses_shares_until_space_comes_back() {
    let server = TestServer::start_with(Backend::Memory, |config| {
        config.memory_store_mib = 1;
    })
    .await;
    let value = "s".repeat(SECRET_BYTES);
    let mut keys = Vec::new();
    let refusal = loop {
        let answer = rest_share(&server, &[("secret", &value)]).await;
        if answer.0 != StatusCode::OK {
            break answer;
        }
        keys.push(answer.1["secret_key"].as_str().expect("key").to_owned());
        assert!(
            keys.len() <= 16,
            "1 MiB held more than 16 secrets of 64 KiB"
        );
    };
    assert!(
        keys.len() >= 8,
        "only {} secrets of 64 KiB fit in 1 MiB",
        keys.len()
    );
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

    // Reveals keep working, and give their space back.
    let (status, revealed) = rest_reveal(&server, &keys[0], None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(revealed["value"].as_str().map(str::len), Some(SECRET_BYTES));
    let (status, receipt) = rest_share(&server, &[("secret", &value)]).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");

    let metrics = server
        .http
        .get(format!("{}/metrics", server.admin_base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let line = r#"burnbox_store_errors_total{kind="full",operation="create"} 2"#;
    assert!(metrics.contains(line), "no {line} in\n{metrics}");
}
