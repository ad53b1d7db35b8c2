//! End to end over real sockets: the real server on port 0, a real HTTP client and the
//! generated tonic client, on the memory store and on a real Redis.

use burnbox_core::ErrorKind;
use burnbox_tests::{
    Backend, TestServer, assert_grpc_error, assert_rest_error, bytes_contain, eventually,
    grpc_reveal_request, grpc_share_request, json_of, on_both_stores, record_key_name, rest_reveal,
    rest_share,
};
use reqwest::StatusCode;

on_both_stores! {
    share_and_reveal_over_rest,
    share_and_reveal_over_grpc,
    transports_are_interchangeable,
    second_reveal_is_not_found_on_both_transports,
    passphrase_is_checked_before_the_burn,
    json_and_form_bodies_are_equivalent,
    concurrent_reveals_succeed_exactly_once,
    out_of_range_ttls_are_clamped_on_both_transports,
}

async fn share_and_reveal_over_rest(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, receipt) =
        rest_share(&server, &[("secret", "correct horse"), ("ttl", "3600")]).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["custid"], "anon");
    assert_eq!(receipt["state"], "new");
    assert_eq!(
        (receipt["ttl"].as_i64(), receipt["secret_ttl"].as_i64()),
        (Some(3600), Some(3600))
    );
    assert_eq!(receipt["metadata_ttl"].as_i64(), Some(7200));
    assert_eq!(receipt["passphrase_required"], false);
    // Onetime Secret's meaning: a custom domain, empty for the server's own.
    assert_eq!(receipt["share_domain"], "");
    let metadata_key = receipt["metadata_key"].as_str().expect("metadata_key");
    assert_eq!(
        receipt["metadata_url"],
        format!("https://burnbox.test/private/{metadata_key}")
    );
    assert_eq!(receipt["recipient"], serde_json::json!([]));
    assert_eq!(receipt["created"], receipt["updated"]);
    let key = receipt["secret_key"].as_str().expect("secret_key");
    assert_ne!(key, receipt["metadata_key"].as_str().expect("metadata_key"));

    let (status, revealed) = rest_reveal(&server, key, None).await;
    assert_eq!(status, StatusCode::OK, "{revealed}");
    assert_eq!(
        revealed,
        serde_json::json!({"value": "correct horse", "secret_key": key, "share_domain": "https://burnbox.test"})
    );
}

/// A ttl outside [60 s, max] is clamped, as Onetime Secret does, on both transports alike; the
/// receipt reports the lifetime given (the harness's max TTL is the default 30 days).
async fn out_of_range_ttls_are_clamped_on_both_transports(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut client = server.grpc().await;
    for (asked, given) in [
        (1, 60),
        (-1, 60),
        (0, 60),
        (59, 60),
        (2_592_001, 2_592_000),
        (99_999_999, 2_592_000),
    ] {
        let (status, receipt) =
            rest_share(&server, &[("secret", "s"), ("ttl", &asked.to_string())]).await;
        assert_eq!(status, StatusCode::OK, "ttl={asked}: {receipt}");
        assert_eq!(
            (receipt["ttl"].as_i64(), receipt["secret_ttl"].as_i64()),
            (Some(given), Some(given)),
            "ttl={asked}"
        );
        let mut request = grpc_share_request("s");
        request.ttl = Some(asked);
        let receipt = client
            .share_secret(request)
            .await
            .expect("share")
            .into_inner();
        assert_eq!(
            (receipt.ttl, receipt.secret_ttl),
            (given, Some(given)),
            "ttl={asked}"
        );
    }
    // A ttl that is not a number is still a field error.
    let answer = rest_share(&server, &[("secret", "s"), ("ttl", "soon")]).await;
    assert_rest_error(&answer, ErrorKind::Validation, Some("ttl"));
}

async fn share_and_reveal_over_grpc(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut client = server.grpc().await;
    let mut request = grpc_share_request("über geheim ✓");
    request.ttl = Some(120);
    let receipt = client
        .share_secret(request)
        .await
        .expect("share")
        .into_inner();
    assert_eq!(
        (receipt.state.as_str(), receipt.ttl, receipt.secret_ttl),
        ("new", 120, Some(120))
    );
    assert_eq!(
        (receipt.custid.as_str(), receipt.metadata_ttl),
        ("anon", 240)
    );
    let key = receipt.secret_key.expect("secret_key");
    let revealed = client
        .reveal_secret(grpc_reveal_request(&key, None))
        .await
        .expect("reveal")
        .into_inner();
    assert_eq!(revealed.value, "über geheim ✓");
    assert_eq!(revealed.secret_key, key);
    // The reveal answer's share_domain is the base URL with its scheme (Onetime Secret's).
    assert_eq!(revealed.share_domain, "https://burnbox.test");
    let status = client
        .status(burnbox_spec::v1::StatusRequest {})
        .await
        .expect("status");
    assert_eq!(status.into_inner().status, "nominal");
}

async fn transports_are_interchangeable(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut client = server.grpc().await;

    let (_, receipt) = rest_share(&server, &[("secret", "from rest")]).await;
    let key = receipt["secret_key"].as_str().expect("key");
    let revealed = client
        .reveal_secret(grpc_reveal_request(key, None))
        .await
        .expect("reveal");
    assert_eq!(revealed.into_inner().value, "from rest");

    let receipt = client
        .share_secret(grpc_share_request("from grpc"))
        .await
        .expect("share");
    let key = receipt.into_inner().secret_key.expect("key");
    let (status, revealed) = rest_reveal(&server, &key, None).await;
    assert_eq!(
        (status, revealed["value"].as_str()),
        (StatusCode::OK, Some("from grpc"))
    );
}

async fn second_reveal_is_not_found_on_both_transports(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut client = server.grpc().await;
    let (_, receipt) = rest_share(&server, &[("secret", "once")]).await;
    let key = receipt["secret_key"].as_str().expect("key");
    assert_eq!(rest_reveal(&server, key, None).await.0, StatusCode::OK);

    let again = rest_reveal(&server, key, None).await;
    assert_rest_error(&again, ErrorKind::NotFound, None);
    assert!(
        !again.1["message"]
            .as_str()
            .unwrap_or_default()
            .contains(key),
        "{}",
        again.1
    );
    let status = client
        .reveal_secret(grpc_reveal_request(key, None))
        .await
        .expect_err("gone");
    assert_grpc_error(&status, ErrorKind::NotFound, None);
}

async fn passphrase_is_checked_before_the_burn(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut client = server.grpc().await;
    let (status, receipt) = rest_share(
        &server,
        &[("secret", "guarded"), ("passphrase", "open sesame")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(receipt["passphrase_required"], true);
    let key = receipt["secret_key"].as_str().expect("key");

    // Missing and wrong passphrases, over both transports, leave the secret in place.
    assert_rest_error(
        &rest_reveal(&server, key, None).await,
        ErrorKind::Validation,
        Some("passphrase"),
    );
    assert_rest_error(
        &rest_reveal(&server, key, Some("")).await,
        ErrorKind::Validation,
        Some("passphrase"),
    );
    assert_rest_error(
        &rest_reveal(&server, key, Some("wrong")).await,
        ErrorKind::Validation,
        Some("passphrase"),
    );
    let status = client
        .reveal_secret(grpc_reveal_request(key, Some("wrong")))
        .await
        .expect_err("wrong");
    assert_grpc_error(&status, ErrorKind::Validation, Some("passphrase"));
    let status = client
        .reveal_secret(grpc_reveal_request(key, None))
        .await
        .expect_err("missing");
    assert_grpc_error(&status, ErrorKind::Validation, Some("passphrase"));

    let revealed = client
        .reveal_secret(grpc_reveal_request(key, Some("open sesame")))
        .await
        .expect("right passphrase");
    assert_eq!(revealed.into_inner().value, "guarded");
    assert_rest_error(
        &rest_reveal(&server, key, Some("open sesame")).await,
        ErrorKind::NotFound,
        None,
    );
}

async fn json_and_form_bodies_are_equivalent(backend: Backend) {
    let server = TestServer::start(backend).await;
    let response = server
        .http
        .post(server.api("/create"))
        .json(&serde_json::json!({"secret": "json secret", "ttl": "600", "passphrase": "pw"}))
        .send()
        .await
        .expect("share");
    let (status, receipt) = json_of(response).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(
        (
            receipt["ttl"].as_i64(),
            receipt["passphrase_required"].as_bool()
        ),
        (Some(600), Some(true))
    );
    let key = receipt["secret_key"].as_str().expect("key");
    let response = server
        .http
        .post(server.api(&format!("/secret/{key}")))
        .json(&serde_json::json!({"passphrase": "pw"}))
        .send()
        .await
        .expect("reveal");
    let (status, revealed) = json_of(response).await;
    assert_eq!(
        (status, revealed["value"].as_str()),
        (StatusCode::OK, Some("json secret"))
    );
}

async fn concurrent_reveals_succeed_exactly_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, receipt) = rest_share(&server, &[("secret", "only one may read this")]).await;
    let key = receipt["secret_key"].as_str().expect("key").to_owned();
    let channels = [server.grpc_channel().await, server.grpc_channel().await];

    let mut attempts = tokio::task::JoinSet::new();
    for attempt in 0..200 {
        let key = key.clone();
        if attempt % 2 == 0 {
            let http = server.http.clone();
            let url = server.api(&format!("/secret/{key}"));
            attempts.spawn(async move {
                let (status, body) = json_of(http.post(url).send().await.expect("reveal")).await;
                match status {
                    StatusCode::OK => Some(body["value"].as_str().map(str::to_owned)),
                    StatusCode::NOT_FOUND => None,
                    other => panic!("unexpected REST status {other}: {body}"),
                }
            });
        } else {
            let mut client = burnbox_spec::v1::secrets_client::SecretsClient::new(
                channels[attempt % 4 / 2].clone(),
            );
            attempts.spawn(async move {
                match client.reveal_secret(grpc_reveal_request(&key, None)).await {
                    Ok(revealed) => Some(Some(revealed.into_inner().value)),
                    Err(status) if status.code() == tonic::Code::NotFound => None,
                    Err(status) => panic!("unexpected gRPC status {status:?}"),
                }
            });
        }
    }
    let outcomes = attempts.join_all().await;
    let winners: Vec<_> = outcomes.into_iter().flatten().collect();
    assert_eq!(winners, vec![Some("only one may read this".to_owned())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keeps_nothing_readable_and_nothing_after_the_reveal() {
    let server = TestServer::start(Backend::redis()).await;
    let value = "plaintext-that-must-never-be-stored-9f2c";
    let (_, receipt) = rest_share(
        &server,
        &[("secret", value), ("passphrase", "pass-phrase-4711")],
    )
    .await;
    let key = receipt["secret_key"].as_str().expect("key").to_owned();
    let metadata_key = receipt["metadata_key"]
        .as_str()
        .expect("metadata key")
        .to_owned();
    let Backend::Redis(redis) = &server.backend else {
        unreachable!()
    };

    let record_name = record_key_name(&key);
    let record = |dump: &[(String, Vec<u8>)]| {
        dump.iter()
            .find(|(name, _)| *name == record_name)
            .map(|(_, bytes)| bytes.clone())
    };
    let dump = redis.dump().await;
    let sealed = record(&dump).expect("the record is stored");
    assert!(sealed.len() > 64, "a sealed record: {} bytes", sealed.len());
    for needle in [value, "pass-phrase-4711", &key, &metadata_key] {
        assert!(
            !dump
                .iter()
                .any(|(name, bytes)| name.contains(needle) || bytes_contain(bytes, needle)),
            "{needle} stored"
        );
    }

    assert_eq!(
        rest_reveal(&server, &key, Some("pass-phrase-4711")).await.0,
        StatusCode::OK
    );
    let dump = redis.dump().await;
    // What is left under the record's name is its tombstone: `R` and the time of the reveal.
    let tombstone = record(&dump).expect("the record's tombstone");
    assert!(
        tombstone.first() == Some(&b'R') && tombstone.len() <= 11,
        "record burned, tombstone left: {tombstone:?}"
    );
    assert!(!dump.iter().any(|(_, bytes)| bytes_contain(bytes, value)));
}

#[tokio::test]
async fn grpc_health_and_reflection_are_served() {
    use tokio_stream::StreamExt;
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    use tonic_reflection::pb::{v1, v1alpha};

    let server = TestServer::start(Backend::Memory).await;
    let channel = server.grpc_channel().await;
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "burnbox.v1.Secrets".into(),
        })
        .await
        .expect("health check")
        .into_inner();
    assert_eq!(health.status, ServingStatus::Serving as i32);

    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers = v1::server_reflection_client::ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection v1")
        .into_inner();
    let answer = answers.next().await.expect("an answer").expect("ok");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("unexpected reflection answer {answer:?}");
    };
    let names: Vec<_> = list
        .service
        .iter()
        .map(|service| service.name.as_str())
        .collect();
    assert!(
        names.contains(&"burnbox.v1.Secrets") && names.contains(&"grpc.health.v1.Health"),
        "{names:?}"
    );

    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "burnbox.v1.Secrets".into(),
            ),
        ),
    };
    let mut answers = v1alpha::server_reflection_client::ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection v1alpha")
        .into_inner();
    let answer = answers.next().await.expect("an answer").expect("ok");
    assert!(
        matches!(
            answer.message_response,
            Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
        ),
        "{answer:?}"
    );
}

#[tokio::test]
async fn admin_endpoints_report_liveness_and_readiness() {
    let server = TestServer::start(Backend::Memory).await;
    for path in ["/livez", "/readyz"] {
        let response = server
            .http
            .get(format!("{}{path}", server.admin_base))
            .send()
            .await
            .expect("admin");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    // Only there to fail instead of hanging.
    let bound = std::time::Duration::from_secs(30);
    let server = TestServer::start(Backend::Memory).await;
    let addr = server.http_base.trim_start_matches("http://").to_owned();

    // A request is in flight once the server asks for its body (100 Continue): it has read the
    // headers and is waiting for the rest, which the test holds back until shutdown has begun.
    let body = "secret=finished+after+shutdown";
    let mut in_flight = TcpStream::connect(&addr).await.expect("connect");
    in_flight
        .write_all(
            format!(
                "POST /api/v1/share HTTP/1.1\r\nHost: {addr}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
                 Expect: 100-continue\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .expect("send the headers");
    let go_ahead = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut interim = vec![0; go_ahead.len()];
    tokio::time::timeout(bound, in_flight.read_exact(&mut interim))
        .await
        .expect("the server asks for the body")
        .expect("read 100 Continue");
    assert_eq!(interim, go_ahead);

    let stopping = tokio::spawn(server.shutdown());
    // Shutdown has begun once the listener is closed: no new connections.
    eventually(bound, "the listener closing", || async {
        TcpStream::connect(&addr).await.is_err().then_some(())
    })
    .await;
    in_flight
        .write_all(body.as_bytes())
        .await
        .expect("send the body");
    let mut answer = String::new();
    tokio::time::timeout(bound, in_flight.read_to_string(&mut answer))
        .await
        .expect("the in-flight request is answered")
        .expect("read the answer");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.contains("\"secret_key\""), "{answer}");
    tokio::time::timeout(bound, stopping)
        .await
        .expect("shutdown completes once the request is answered")
        .expect("shutdown task");
}
