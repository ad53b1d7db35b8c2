//! Nothing sensitive reaches the logs: with every crate logging at TRACE (spans included), a
//! session of share, secret status, wrong passphrase, reveal, receipt, burn, generate and recent
//! over REST and gRPC on Redis leaves no secret value, passphrase, secret key, metadata key or API
//! token in the captured output. (Its own test binary: it installs the process-wide subscriber.)

use burnbox_spec::v1 as pb;
use burnbox_tests::{ALICE, Backend, TestServer, basic_auth, captured_logs, grpc_request, json_of};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_hold_no_secret_passphrase_key_or_token() {
    let captured = captured_logs();

    let server = TestServer::start_with_customers(Backend::redis(), |_| {}).await;
    let alice = basic_auth(ALICE.0, ALICE.1);
    let post = |path: &str, form: &[(&str, &str)], authorization: Option<&str>| {
        let mut request = server.http.post(server.api(path)).form(form);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        request.send()
    };
    let mut sensitive = vec![
        ALICE.1.to_owned(),
        "leak-probe-value-6e1f".to_owned(),
        "leak-probe-passphrase-90ab".to_owned(),
    ];

    let (status, shared) = json_of(
        post(
            "/share",
            &[("secret", &sensitive[1]), ("passphrase", &sensitive[2])],
            Some(&alice),
        )
        .await
        .expect("share"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let secret_key = shared["secret_key"].as_str().expect("key").to_owned();
    let metadata_key = shared["metadata_key"].as_str().expect("key").to_owned();
    sensitive.extend([secret_key.clone(), metadata_key.clone()]);

    // The secret status, on its route and on the secret's own URL: the key is in the path.
    for path in [
        format!("/secret/{secret_key}/status"),
        format!("/secret/{secret_key}"),
    ] {
        let status = server.http.get(server.api(&path)).send().await;
        assert_eq!(status.expect("status").status(), StatusCode::OK);
    }
    let wrong = post(
        &format!("/secret/{secret_key}"),
        &[("passphrase", "leak-probe-wrong-guess")],
        None,
    )
    .await
    .expect("reveal");
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    sensitive.push("leak-probe-wrong-guess".to_owned());
    let receipt = server
        .http
        .get(server.api(&format!("/private/{metadata_key}")))
        .header("authorization", &alice)
        .send()
        .await;
    assert_eq!(receipt.expect("receipt").status(), StatusCode::OK);
    let revealed = post(
        &format!("/secret/{secret_key}"),
        &[("passphrase", &sensitive[2])],
        None,
    )
    .await
    .expect("reveal");
    assert_eq!(revealed.status(), StatusCode::OK);
    let refused = post(
        "/share",
        &[("secret", "x")],
        Some(&basic_auth(ALICE.0, "leak-probe-bad-token")),
    )
    .await
    .expect("share");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    sensitive.push("leak-probe-bad-token".to_owned());

    let (generated_metadata_key, generated) = server.generate_sensitive(&alice).await;
    sensitive.extend(generated);
    let mut client = server.grpc().await;
    let burn = pb::BurnSecretRequest {
        metadata_key: generated_metadata_key,
        passphrase: None,
    };
    client
        .burn_secret(grpc_request(burn, Some(&alice)))
        .await
        .expect("burn");
    let shared = client
        .share_secret(grpc_request(
            pb::ShareSecretRequest {
                secret: "leak-probe-grpc-value-c3d4".into(),
                ..Default::default()
            },
            None,
        ))
        .await
        .expect("share")
        .into_inner();
    sensitive.push("leak-probe-grpc-value-c3d4".to_owned());
    let key = shared.secret_key.expect("key");
    sensitive.extend([key.clone(), shared.metadata_key]);
    client
        .get_secret_status(pb::GetSecretStatusRequest { key: key.clone() })
        .await
        .expect("status");
    client
        .reveal_secret(pb::RevealSecretRequest {
            key,
            passphrase: None,
        })
        .await
        .expect("reveal");
    client
        .list_recent_receipts(grpc_request(pb::ListRecentReceiptsRequest {}, Some(&alice)))
        .await
        .expect("recent");
    server.shutdown().await;

    let logs = captured.text();
    assert!(
        logs.contains("secret revealed") && logs.contains("TRACE"),
        "the capture holds trace logs"
    );
    for needle in &sensitive {
        let line = logs.lines().find(|line| line.contains(needle.as_str()));
        assert!(line.is_none(), "{needle:?} appears in the logs: {line:?}");
    }
}
