//! gRPC requests that tonic refuses before any handler runs — bytes that are not the message,
//! a string that is not UTF-8, a truncated or missing message, a compressed flag without
//! `grpc-encoding`, an unsupported compression, an unknown method — answer through the one error
//! table with an `error_id`, as REST answers a malformed body, and count as the caller's error.
//! Sent as raw bytes over a real HTTP/2 connection.

use burnbox_core::ErrorKind;
use burnbox_tests::{Backend, TestServer, assert_grpc_error};
use prost::Message;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};

const REVEAL: &str = "/burnbox.v1.Secrets/RevealSecret";

/// A gRPC frame: the compressed flag, the declared length, then `payload`.
fn frame(compressed: bool, declared_len: usize, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![u8::from(compressed)];
    bytes.extend_from_slice(&u32::try_from(declared_len).expect("length").to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

fn whole_frame(payload: &[u8]) -> Vec<u8> {
    frame(false, payload.len(), payload)
}

/// Posts `body` to `path` as a gRPC request and returns the status the server answered
/// "trailers-only" (in the headers, as every error is), with the response headers.
async fn call(
    server: &TestServer,
    path: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (tonic::Status, HeaderMap) {
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .expect("HTTP/2 client");
    let mut request = client
        .post(format!("http://{}{path}", server.grpc_addr))
        .header(CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .body(body);
    if let Some(encoding) = encoding {
        request = request.header("grpc-encoding", encoding);
    }
    let response = request.send().await.expect("the server answers");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let headers = response.headers().clone();
    let status = tonic::Status::from_header_map(&headers)
        .unwrap_or_else(|| panic!("an error status in the headers: {headers:?}"));
    (status, headers)
}

/// `status` as if it had the table's code for `kind`, for the refusals whose code gRPC itself
/// prescribes.
fn with_table_code(status: &tonic::Status, kind: ErrorKind) -> tonic::Status {
    let code = burnbox_server::wire_error::wire_error(kind).grpc;
    tonic::Status::with_details(code, status.message(), status.details().to_vec().into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_messages_are_bad_requests_with_an_error_id() {
    let server = TestServer::start(Backend::Memory).await;
    // Field 1 (key) as a length-delimited string holding bytes that are not UTF-8.
    let not_utf8 = [0x0a, 0x02, 0xff, 0xfe];
    let cases: [(&str, Vec<u8>); 5] = [
        ("malformed protobuf", whole_frame(&[0xff, 0xff, 0xff, 0xff])),
        ("a string that is not UTF-8", whole_frame(&not_utf8)),
        ("a truncated frame", frame(false, 10, &[0x0a, 0x01])),
        (
            "the compressed flag without grpc-encoding",
            frame(true, 3, b"abc"),
        ),
        ("an empty body", Vec::new()),
    ];
    for (case, body) in cases {
        let (status, _) = call(&server, REVEAL, None, body).await;
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{case}: {status:?}"
        );
        assert_grpc_error(&status, ErrorKind::BadRequest, None);
    }

    let metrics = server.metrics_text().await;
    let line =
        r#"burnbox_requests_total{operation="reveal",outcome="BadRequest",transport="grpc"} 5"#;
    assert!(metrics.contains(line), "no {line} in\n{metrics}");
    assert!(!metrics.contains(r#"outcome="InternalError""#), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_requests_are_served_and_other_compressions_refused_with_details() {
    use std::io::Write;
    let server = TestServer::start(Backend::Memory).await;
    let message = burnbox_spec::v1::RevealSecretRequest {
        key: "0".repeat(burnbox_core::KEY_LENGTH),
        passphrase: None,
    }
    .encode_to_vec();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&message).expect("compress");
    let compressed = gzip.finish().expect("compress");

    // Decoded and answered by the handler: no such secret.
    let (status, _) = call(
        &server,
        REVEAL,
        Some("gzip"),
        frame(true, compressed.len(), &compressed),
    )
    .await;
    assert_grpc_error(&status, ErrorKind::NotFound, None);

    let (status, headers) = call(
        &server,
        REVEAL,
        Some("zstd"),
        frame(true, compressed.len(), &compressed),
    )
    .await;
    assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");
    assert_grpc_error(
        &with_table_code(&status, ErrorKind::BadRequest),
        ErrorKind::BadRequest,
        None,
    );
    let accepted = headers
        .get("grpc-accept-encoding")
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    assert!(
        String::from_utf8_lossy(accepted).contains("gzip"),
        "{headers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_method_is_unimplemented_with_details() {
    let server = TestServer::start(Backend::Memory).await;
    for path in ["/burnbox.v1.Secrets/NoSuchMethod", "/no.such.Service/Call"] {
        let (status, _) = call(&server, path, None, whole_frame(&[])).await;
        assert_eq!(
            status.code(),
            tonic::Code::Unimplemented,
            "{path}: {status:?}"
        );
        assert_grpc_error(
            &with_table_code(&status, ErrorKind::NotFound),
            ErrorKind::NotFound,
            None,
        );
    }
}
