//! Metrics: `/metrics` on the admin port counts requests by transport, operation and outcome,
//! secrets shared, revealed and burned, store latency and errors, and rate-limit rejections.

use burnbox_spec::v1 as pb;
use burnbox_tests::{Backend, TestRedis, TestServer, grpc_reveal_request, rest_reveal, rest_share};
use reqwest::StatusCode;

async fn metrics(server: &TestServer) -> String {
    let response = server
        .http
        .get(format!("{}/metrics", server.admin_base))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers().get("content-type").cloned();
    assert!(content_type.is_some_and(|value| value.as_bytes().starts_with(b"text/plain")));
    response.text().await.expect("metrics text")
}

/// The value of the sample `name{labels}` (labels in the order Prometheus prints them).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_secrets_store_and_limits() {
    let mut server = TestServer::start_with(Backend::Redis(TestRedis::start_own()), |config| {
        config.rate_limit_create = 3;
    })
    .await;
    let mut client = server.grpc().await;

    let (_, first) = rest_share(&server, &[("secret", "one")]).await;
    let (_, second) = rest_share(&server, &[("secret", "two")]).await;
    let first_key = first["secret_key"].as_str().expect("key");
    assert_eq!(
        rest_reveal(&server, first_key, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        rest_reveal(&server, first_key, None).await.0,
        StatusCode::NOT_FOUND
    );
    client
        .reveal_secret(grpc_reveal_request(first_key, None))
        .await
        .expect_err("gone");
    let burn = pb::BurnSecretRequest {
        metadata_key: second["metadata_key"].as_str().expect("key").to_owned(),
        passphrase: None,
    };
    client.burn_secret(burn).await.expect("burn");
    let shared = client
        .share_secret(burnbox_tests::grpc_share_request("three"))
        .await
        .expect("share");
    client
        .reveal_secret(grpc_reveal_request(
            &shared.into_inner().secret_key.expect("key"),
            None,
        ))
        .await
        .expect("reveal");
    assert_eq!(
        rest_share(&server, &[("secret", "four")]).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );

    let text = metrics(&server).await;
    let count = |series: &str| {
        sample(&text, series).unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
    };
    let expected = [
        (
            r#"burnbox_requests_total{operation="share",outcome="ok",transport="rest"}"#,
            2.0,
        ),
        (
            r#"burnbox_requests_total{operation="share",outcome="RateLimited",transport="rest"}"#,
            1.0,
        ),
        (
            r#"burnbox_requests_total{operation="reveal",outcome="ok",transport="rest"}"#,
            1.0,
        ),
        (
            r#"burnbox_requests_total{operation="reveal",outcome="NotFound",transport="rest"}"#,
            1.0,
        ),
        (
            r#"burnbox_requests_total{operation="reveal",outcome="NotFound",transport="grpc"}"#,
            1.0,
        ),
        (
            r#"burnbox_requests_total{operation="reveal",outcome="ok",transport="grpc"}"#,
            1.0,
        ),
        (
            r#"burnbox_requests_total{operation="burn",outcome="ok",transport="grpc"}"#,
            1.0,
        ),
        (
            r#"burnbox_request_duration_seconds_count{operation="reveal",transport="rest"}"#,
            2.0,
        ),
        (r#"burnbox_secrets_total{event="shared"}"#, 3.0),
        (r#"burnbox_secrets_total{event="revealed"}"#, 2.0),
        (r#"burnbox_secrets_total{event="burned"}"#, 1.0),
        (r#"burnbox_rate_limited_total{class="create"}"#, 1.0),
    ];
    for (series, value) in expected {
        assert_eq!(count(series), value, "{series}");
    }
    assert!(
        count(r#"burnbox_store_operation_duration_seconds_count{operation="take_unprotected"}"#)
            >= 3.0
    );

    server.backend.test_redis().expect("redis").stop();
    assert_eq!(
        rest_reveal(&server, first_key, None).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let text = metrics(&server).await;
    assert!(
        text.lines()
            .any(|line| line.starts_with("burnbox_store_errors_total{")
                && line.contains(r#"kind="unavailable""#)),
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"burnbox_requests_total{operation="reveal",outcome="Unavailable",transport="rest"}"#
        ) == Some(1.0),
        "{text}"
    );
}

/// Every operation of the table, called on each transport that serves it (REST route, gRPC
/// method, each page), is counted under its one name, with the transport apart; and the table's
/// routes are the served ones (a route that answered with another name would fail here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_operation_has_one_name_on_every_transport() {
    use burnbox_server::operations::{GRPC_SERVICE, OPERATIONS};

    let server = TestServer::start(Backend::Memory).await;
    let grpc = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .expect("HTTP/2 client");
    // Keys that name nothing: the answer may be a refusal; the name it is counted under may not.
    let concrete = |template: &str| {
        template
            .replace("{key}", "nosuchkey")
            .replace("{metadata_key}", "nosuchreceipt")
    };
    let mut expected = Vec::new();
    for row in &OPERATIONS {
        let (method, path) = row.rest;
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let url = format!("{}{}", server.http_base, concrete(path));
        server
            .http
            .request(method, url)
            .send()
            .await
            .expect("REST answers");
        expected.push(("rest", row.name));
        for (method, path) in row.pages {
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let url = format!("{}{}", server.http_base, concrete(path));
            server
                .http
                .request(method, url)
                .header("content-type", "application/x-www-form-urlencoded")
                .send()
                .await
                .expect("the page answers");
            expected.push(("page", row.name));
        }
        if let Some(method) = row.grpc_method {
            // An empty message: every request field at its default.
            let response = grpc
                .post(format!(
                    "http://{}/{GRPC_SERVICE}/{method}",
                    server.grpc_addr
                ))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(vec![0u8; 5])
                .send()
                .await
                .expect("gRPC answers");
            assert_eq!(response.status(), StatusCode::OK, "{method}");
            expected.push(("grpc", row.name));
        }
    }

    let text = metrics(&server).await;
    for (transport, name) in expected {
        let series = format!(
            r#"burnbox_request_duration_seconds_count{{operation="{name}",transport="{transport}"}}"#
        );
        let count = sample(&text, &series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
        assert!(count >= 1.0, "{series} {count}");
    }
    for line in text
        .lines()
        .filter(|line| line.starts_with("burnbox_request_duration_seconds_count"))
    {
        assert!(
            !line.contains(r#"operation="unknown""#),
            "a table route was not recognised: {line}"
        );
    }
}
