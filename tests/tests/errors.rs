//! Error parity: the documented error table, and every error reachable today answered with the
//! paired status over REST and gRPC, in the one documented shape.

use burnbox_core::ErrorKind;
use burnbox_server::wire_error::wire_error;
use burnbox_spec::v1::ShareSecretRequest;
use burnbox_tests::{
    Backend, TestServer, assert_grpc_error, assert_rest_error, grpc_reveal_request, json_of,
    rest_reveal, rest_share,
};
use reqwest::StatusCode;
use tonic::Code;

/// The README's error table, written out: the table in code must say exactly this.
#[test]
fn the_wire_table_is_the_documented_one() {
    let documented = [
        (
            ErrorKind::BadRequest,
            400,
            Code::InvalidArgument,
            "BadRequest",
        ),
        (
            ErrorKind::Unauthorized,
            401,
            Code::Unauthenticated,
            "Unauthorized",
        ),
        (
            ErrorKind::Forbidden,
            403,
            Code::PermissionDenied,
            "Forbidden",
        ),
        (ErrorKind::NotFound, 404, Code::NotFound, "NotFound"),
        (
            ErrorKind::Validation,
            422,
            Code::InvalidArgument,
            "FormError",
        ),
        (
            ErrorKind::RateLimited,
            429,
            Code::ResourceExhausted,
            "RateLimited",
        ),
        (
            ErrorKind::Unavailable,
            503,
            Code::Unavailable,
            "Unavailable",
        ),
        (ErrorKind::Internal, 500, Code::Internal, "InternalError"),
    ];
    assert_eq!(documented.len(), ErrorKind::ALL.len());
    for (kind, http, grpc, error) in documented {
        let wire = wire_error(kind);
        assert_eq!(
            (wire.http.as_u16(), wire.grpc, wire.error),
            (http, grpc, error),
            "{kind:?}"
        );
    }
}

/// A share that must fail the same way over both transports.
struct ShareCase {
    form: Vec<(&'static str, String)>,
    grpc: ShareSecretRequest,
    field: &'static str,
}

fn share_cases(max_secret_bytes: usize) -> Vec<ShareCase> {
    let share = |secret: &str| ShareSecretRequest {
        secret: secret.to_owned(),
        ..Default::default()
    };
    let oversized = "x".repeat(max_secret_bytes + 1);
    vec![
        ShareCase {
            form: vec![],
            grpc: share(""),
            field: "secret",
        },
        ShareCase {
            form: vec![("secret", String::new())],
            grpc: share(""),
            field: "secret",
        },
        ShareCase {
            form: vec![("secret", oversized.clone())],
            grpc: share(&oversized),
            field: "secret",
        },
        ShareCase {
            form: vec![("secret", "s".into()), ("passphrase", "p".repeat(129))],
            grpc: ShareSecretRequest {
                passphrase: Some("p".repeat(129)),
                ..share("s")
            },
            field: "passphrase",
        },
        ShareCase {
            form: vec![
                ("secret", "s".into()),
                ("recipient", "someone@example.com".into()),
            ],
            grpc: ShareSecretRequest {
                recipient: vec!["someone@example.com".into()],
                ..share("s")
            },
            field: "recipient",
        },
        ShareCase {
            form: vec![
                ("secret", "s".into()),
                ("share_domain", "elsewhere.example".into()),
            ],
            grpc: ShareSecretRequest {
                share_domain: Some("elsewhere.example".into()),
                ..share("s")
            },
            field: "share_domain",
        },
    ]
}

burnbox_tests::on_both_stores!(
    validation_errors_match_over_both_transports,
    not_found_matches_over_both_transports
);

async fn validation_errors_match_over_both_transports(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut client = server.grpc().await;
    // The limit the server runs with: the test configuration's own.
    let max_secret_bytes = usize::try_from(burnbox_server::Config::for_tests().max_secret_bytes)
        .expect("fits in memory");
    for case in share_cases(max_secret_bytes) {
        let form: Vec<(&str, &str)> = case
            .form
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        let answer = rest_share(&server, &form).await;
        assert_rest_error(&answer, ErrorKind::Validation, Some(case.field));
        let status = client.share_secret(case.grpc).await.expect_err("refused");
        assert_grpc_error(&status, ErrorKind::Validation, Some(case.field));
    }
}

async fn not_found_matches_over_both_transports(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut client = server.grpc().await;
    let well_formed_unknown = "0".repeat(burnbox_core::KEY_LENGTH);
    for key in [
        well_formed_unknown.as_str(),
        "not-a-key",
        "UPPERCASE",
        &"z".repeat(500),
    ] {
        assert_rest_error(
            &rest_reveal(&server, key, None).await,
            ErrorKind::NotFound,
            None,
        );
        let status = client
            .reveal_secret(grpc_reveal_request(key, None))
            .await
            .expect_err("unknown");
        assert_grpc_error(&status, ErrorKind::NotFound, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outage_is_unavailable_over_both_transports_and_recovers() {
    let redis_timeout_ms = 500;
    let mut server = TestServer::start_with(
        Backend::Redis(burnbox_tests::TestRedis::start_own()),
        |config| config.redis_timeout_ms = redis_timeout_ms,
    )
    .await;
    let mut client = server.grpc().await;
    let (_, receipt) = rest_share(&server, &[("secret", "survives nothing")]).await;
    let key = receipt["secret_key"].as_str().expect("key").to_owned();

    server.backend.test_redis().expect("redis").stop();
    // Failing fast: every answer comes while Redis is still down (it restarts only below), each
    // within ten Redis timeouts, a bound only an answer that waits for Redis exceeds.
    let bound = 10 * std::time::Duration::from_millis(redis_timeout_ms);
    assert_rest_error(
        &within(bound, rest_share(&server, &[("secret", "s")])).await,
        ErrorKind::Unavailable,
        None,
    );
    assert_rest_error(
        &within(bound, rest_reveal(&server, &key, None)).await,
        ErrorKind::Unavailable,
        None,
    );
    let status = within(bound, client.reveal_secret(grpc_reveal_request(&key, None)))
        .await
        .expect_err("down");
    assert_grpc_error(&status, ErrorKind::Unavailable, None);
    let ready = within(bound, server.readiness()).await;
    assert_eq!(ready, StatusCode::SERVICE_UNAVAILABLE);

    // Redis comes back (empty: it persists nothing) and the server recovers without a restart.
    server.backend.test_redis().expect("redis").restart();
    server.assert_recovers("after the outage").await;
}

/// `answer`, which must come within `bound`.
async fn within<T>(bound: std::time::Duration, answer: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(bound, answer)
        .await
        .unwrap_or_else(|_| panic!("no answer within {bound:?}"))
}

#[tokio::test]
async fn framework_errors_use_the_documented_body() {
    let server = TestServer::start(Backend::Memory).await;
    let http = &server.http;
    let cases = [
        (http.get(server.api("/no/such/route")), ErrorKind::NotFound),
        (
            http.get(server.http_base.clone() + "/no-such-page"),
            ErrorKind::NotFound,
        ),
        (http.get(server.api("/share")), ErrorKind::BadRequest),
        (
            http.delete(server.api("/secret/abc")),
            ErrorKind::BadRequest,
        ),
        (
            http.post(server.api("/share"))
                .header("content-type", "application/json")
                .body("{\"secret\":"),
            ErrorKind::BadRequest,
        ),
        (
            http.post(server.api("/share"))
                .header("content-type", "application/json")
                .body("{\"secret\": 42}"),
            ErrorKind::BadRequest,
        ),
        (
            http.post(server.api("/share"))
                .header("content-type", "text/plain")
                .body("secret"),
            ErrorKind::BadRequest,
        ),
        (
            http.post(server.api("/share"))
                // No Content-Type: sniffed as JSON (it starts with `{`), and not valid JSON.
                .body("{secret=no-content-type"),
            ErrorKind::BadRequest,
        ),
    ];
    for (request, kind) in cases {
        let answer = json_of(request.send().await.expect("request")).await;
        assert_rest_error(&answer, kind, None);
    }
}

#[tokio::test]
async fn error_ids_are_the_callers_trace_id() {
    let server = TestServer::start(Backend::Memory).await;
    let trace_id = "5e1e5e1e5e1e5e1e5e1e5e1e5e1e5e1e";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let answer = json_of(
        server
            .http
            .post(server.api("/secret/unknown"))
            .header("traceparent", &traceparent)
            .send()
            .await
            .expect("reveal"),
    )
    .await;
    assert_rest_error(&answer, ErrorKind::NotFound, None);
    assert_eq!(answer.1["error_id"], trace_id);

    let mut request = tonic::Request::new(burnbox_tests::grpc_reveal_request("unknown", None));
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().expect("ASCII"));
    let status = server
        .grpc()
        .await
        .reveal_secret(request)
        .await
        .expect_err("unknown");
    use tonic_types::StatusExt;
    let error_id = status
        .get_error_details()
        .error_info()
        .and_then(|info| info.metadata.get("error_id").cloned());
    assert_eq!(error_id.as_deref(), Some(trace_id));

    // Without a traceparent every request has a trace of its own.
    let first = json_of(
        server
            .http
            .post(server.api("/secret/unknown"))
            .send()
            .await
            .expect("reveal"),
    )
    .await;
    let second = json_of(
        server
            .http
            .post(server.api("/secret/unknown"))
            .send()
            .await
            .expect("reveal"),
    )
    .await;
    assert_ne!(first.1["error_id"], second.1["error_id"]);
}
