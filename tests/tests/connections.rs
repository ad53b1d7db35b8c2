//! Connection hygiene with real sockets: slow or idle clients are cut off by the header-read,
//! body-read and idle deadlines, a full listener makes new connections wait while it keeps
//! serving (and the admin listener answers), gRPC connections must send their preface in time
//! and are recycled at their maximum age, and requests too malformed to parse get the
//! documented error body and headers.
//!
//! The deadlines are short here (1 s) so the tests run fast; every wait for the server to act
//! is bounded by [`PATIENCE`], far above them, and every timing assertion is a lower bound.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use burnbox_core::ErrorKind;
use burnbox_server::Config;
use burnbox_tests::{Backend, TestServer, assert_rest_error, grpc_share_request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::Code;

/// The upper bound of every wait for the server to do something: a failure, not a timing.
const PATIENCE: Duration = Duration::from_secs(30);

/// A server whose connections have the given deadlines, in seconds.
async fn server_with(
    header: u64,
    body: u64,
    idle: u64,
    adjust: impl FnOnce(&mut Config),
) -> TestServer {
    TestServer::start_with(Backend::Memory, |config| {
        config.header_read_timeout_seconds = header;
        config.body_read_timeout_seconds = body;
        config.idle_timeout_seconds = idle;
        adjust(config);
    })
    .await
}

fn host_port(base: &str) -> &str {
    base.trim_start_matches("http://")
}

async fn connect(base: &str) -> TcpStream {
    TcpStream::connect(host_port(base))
        .await
        .expect("connect to the server")
}

/// Reads until the server closes the connection (end of stream or reset); returns what it
/// sent meanwhile. Panics if it is still open after [`PATIENCE`].
async fn wait_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let read_all = async {
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(read) => received.extend_from_slice(&chunk[..read]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, read_all)
        .await
        .expect("the server closes the connection");
    received
}

/// An HTTP/1.1 answer read off a raw socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// As the harness's error assertions take it.
    fn json(&self) -> (reqwest::StatusCode, serde_json::Value) {
        let body = serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("non-JSON body ({err}): {self:?}"));
        (
            reqwest::StatusCode::from_u16(self.status).expect("status"),
            body,
        )
    }
}

/// Parses one answer (head and a Content-Length body) from the start of `bytes`.
fn parse_answer(bytes: &[u8]) -> Option<(Answer, usize)> {
    let text = String::from_utf8_lossy(bytes);
    let head_end = text.find("\r\n\r\n")?;
    let mut lines = text[..head_end].split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map_or(Some(0), |(_, value)| value.parse().ok())?;
    let end = head_end + 4 + length;
    let body = bytes.get(head_end + 4..end)?;
    let answer = Answer {
        status,
        headers,
        body: String::from_utf8_lossy(body).into_owned(),
    };
    Some((answer, end))
}

/// Reads one complete answer; panics if the connection ends first or it takes [`PATIENCE`].
async fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut received = Vec::new();
    let read = async {
        let mut chunk = [0u8; 8192];
        loop {
            if let Some((answer, _)) = parse_answer(&received) {
                return answer;
            }
            let read = stream.read(&mut chunk).await.expect("read the answer");
            assert!(read > 0, "connection closed mid-answer: {received:?}");
            received.extend_from_slice(&chunk[..read]);
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("the server answers")
}

/// How fast a slow client sends: one byte per [`TRICKLE_PACE`]. The pace is the scenario, not a
/// wait for anything: bytes must keep coming (so only a deadline on the whole head or body can
/// stop them) but too slowly to finish within it.
const TRICKLE_PACE: Duration = Duration::from_millis(100);

/// Sends `byte` at [`TRICKLE_PACE`] until the server closes; answers how many it sent.
fn trickle(
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    byte: u8,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut sent = 0usize;
        while writer.write_all(&[byte]).await.is_ok() {
            sent += 1;
            tokio::time::sleep(TRICKLE_PACE).await;
        }
        sent
    })
}

const STATUS_REQUEST: &[u8] = b"GET /api/v1/status HTTP/1.1\r\nHost: burnbox\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_headers_are_cut_off_after_the_header_read_timeout() {
    let server = server_with(1, 30, 60, |_| {}).await;
    // Lower bounds are measured from before the server can start its clock.
    let started = Instant::now();
    let mut stream = connect(&server.http_base).await;
    stream
        .write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: burnbox\r\n")
        .await
        .expect("request line");
    let (mut reader, writer) = stream.into_split();
    // Header bytes keep arriving; headers never do.
    let trickle = trickle(writer, b'x');
    let mut received = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, reader.read_to_end(&mut received)).await;
    assert!(closed.is_ok(), "the slowloris connection is still open");
    assert!(
        received.is_empty(),
        "no answer to a request that never came"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "not before the deadline"
    );
    let sent = trickle.await.expect("trickle task");
    assert!(sent > 1, "bytes were still arriving when it was cut off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_after_the_header_read_timeout() {
    let server = server_with(1, 30, 60, |_| {}).await;
    let mut rest = connect(&server.http_base).await;
    let mut admin = connect(&server.admin_base).await;
    assert!(wait_closed(&mut rest).await.is_empty());
    assert!(wait_closed(&mut admin).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    // The idle timeout is longer than the header timeout, and it is the one that applies.
    let server = server_with(1, 30, 3, |_| {}).await;
    let mut stream = connect(&server.http_base).await;
    stream.write_all(STATUS_REQUEST).await.expect("request");
    let sent = Instant::now();
    let answer = read_answer(&mut stream).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    // Kept alive: a second request on it is served.
    let sent_again = Instant::now();
    stream.write_all(STATUS_REQUEST).await.expect("request");
    assert_eq!(read_answer(&mut stream).await.status, 200);
    assert!(wait_closed(&mut stream).await.is_empty());
    let lived = sent_again.elapsed();
    assert!(
        lived >= Duration::from_secs(3),
        "closed {lived:?} after the last request: before the idle timeout"
    );
    assert!(sent.elapsed() >= lived);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_body_is_cut_off_with_a_documented_400() {
    let server = server_with(10, 1, 60, |_| {}).await;
    let started = Instant::now();
    let mut stream = connect(&server.http_base).await;
    stream
        .write_all(
            b"POST /api/v1/share HTTP/1.1\r\nHost: burnbox\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nsecret=",
        )
        .await
        .expect("request head and a little body");
    let (mut reader, writer) = stream.into_split();
    // Body bytes keep arriving; the body never does.
    let trickle = trickle(writer, b'a');
    let mut received = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, reader.read_to_end(&mut received)).await;
    trickle.abort();
    assert!(closed.is_ok(), "the connection is still open");
    let (answer, _) = parse_answer(&received)
        .unwrap_or_else(|| panic!("an answer before the close: {received:?}"));
    assert_rest_error(&answer.json(), ErrorKind::BadRequest, None);
    assert!(
        answer.body.contains("did not arrive within 1 seconds"),
        "{answer:?}"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    // The server serves on.
    let status = server
        .http
        .get(server.api("/status"))
        .send()
        .await
        .expect("status");
    assert_eq!(status.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_new_connections_wait_while_existing_ones_and_admin_are_served() {
    const CAP: usize = 8;
    let server = server_with(10, 30, 60, |config| config.max_connections = CAP as u64).await;
    let mut held = Vec::new();
    for _ in 0..CAP {
        let mut stream = connect(&server.http_base).await;
        stream.write_all(STATUS_REQUEST).await.expect("request");
        assert_eq!(read_answer(&mut stream).await.status, 200);
        held.push(stream);
    }
    // The kernel completes the handshake (the listen backlog), but the server does not take
    // the connection while all its slots are held.
    let mut waiting = connect(&server.http_base).await;
    waiting.write_all(STATUS_REQUEST).await.expect("request");
    let mut early = [0u8; 1];
    let answered_early =
        tokio::time::timeout(Duration::from_secs(1), waiting.read(&mut early)).await;
    assert!(
        answered_early.is_err(),
        "a connection over the cap was served at once: {answered_early:?}"
    );
    // The connections it holds are still served, and so is the admin listener.
    held[0].write_all(STATUS_REQUEST).await.expect("request");
    assert_eq!(read_answer(&mut held[0]).await.status, 200);
    let livez = server
        .http
        .get(format!("{}/livez", server.admin_base))
        .send()
        .await
        .expect("livez answers while REST is full");
    assert_eq!(livez.status(), 200);
    // One slot frees: the waiting connection is taken and answered.
    drop(held.remove(0));
    let answer = read_answer(&mut waiting).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// The HTTP/2 client connection preface and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// The types of the HTTP/2 frames in `bytes`.
fn h2_frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let length =
            usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        types.push(bytes[3]);
        bytes = bytes.get(9 + length..).unwrap_or_default();
    }
    types
}

const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_connection_without_its_preface_is_closed_after_the_header_read_timeout() {
    let server = server_with(1, 30, 60, |_| {}).await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(server.grpc_addr).await.expect("connect");
    let mut partial = TcpStream::connect(server.grpc_addr).await.expect("connect");
    partial
        .write_all(&H2_PREFACE[..10])
        .await
        .expect("part of the preface");
    wait_closed(&mut silent).await;
    wait_closed(&mut partial).await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    // A client that sends its preface is served as ever.
    let shared = server
        .grpc()
        .await
        .share_secret(grpc_share_request("still served"))
        .await;
    assert!(shared.is_ok(), "{shared:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_connections_are_asked_to_close_at_their_maximum_age() {
    let server = server_with(10, 30, 60, |config| {
        config.grpc_max_connection_age_seconds = 1;
    })
    .await;
    let started = Instant::now();
    let mut idle = TcpStream::connect(server.grpc_addr).await.expect("connect");
    idle.write_all(H2_PREFACE).await.expect("preface");
    let read_until_goaway = async {
        let mut received = Vec::new();
        let mut chunk = [0u8; 4096];
        while !h2_frame_types(&received).contains(&GOAWAY) {
            let read = idle.read(&mut chunk).await.expect("read frames");
            assert!(
                read > 0,
                "closed without GOAWAY: {:?}",
                h2_frame_types(&received)
            );
            received.extend_from_slice(&chunk[..read]);
        }
    };
    tokio::time::timeout(PATIENCE, read_until_goaway)
        .await
        .expect("the server sends GOAWAY");
    assert!(started.elapsed() >= Duration::from_secs(1));
    // A real client reconnects by itself: calls on one channel across several connection ages
    // all succeed. One race is HTTP/2's own: a call the client starts as the GOAWAY reaches it
    // can land after the server's final GOAWAY, unprocessed, and fail as cancelled; gRPC
    // clients retry such a call (tonic does not), so this one does, once, and at most once per
    // connection age. Seen only on a loaded machine.
    let (channel, connections) = counted_grpc_channel(server.grpc_addr).await;
    let mut client = burnbox_spec::v1::secrets_client::SecretsClient::new(channel);
    // Calls until the channel has opened its third connection: two ages have ended under it.
    let ages = 3;
    let mut calls = 0;
    let mut retried = 0;
    let across_ages = async {
        while connections.load(Ordering::SeqCst) < ages {
            let mut shared = client.share_secret(grpc_share_request("across ages")).await;
            if let Err(status) = &shared
                && matches!(status.code(), Code::Cancelled | Code::Unavailable)
            {
                retried += 1;
                shared = client.share_secret(grpc_share_request("across ages")).await;
            }
            assert!(shared.is_ok(), "call {calls}: {shared:?}");
            calls += 1;
        }
    };
    tokio::time::timeout(PATIENCE, across_ages)
        .await
        .expect("the channel reconnects as each connection ages out");
    assert!(
        retried <= ages,
        "{retried} of {calls} calls needed a retry: more than one per connection age ({ages})"
    );
}

/// A gRPC channel to `addr` and the number of TCP connections it has opened so far.
async fn counted_grpc_channel(addr: SocketAddr) -> (tonic::transport::Channel, Arc<AtomicUsize>) {
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let connector = tower::service_fn(move |_: http::Uri| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            TcpStream::connect(addr)
                .await
                .map(hyper_util::rt::TokioIo::new)
        }
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid URI")
        .connect_with_connector(connector)
        .await
        .expect("gRPC connects");
    (channel, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_stream_kept_open_past_the_maximum_age_and_grace_is_cut_off() {
    let server = server_with(10, 30, 60, |config| {
        config.grpc_max_connection_age_seconds = 1;
        config.shutdown_grace_seconds = 1;
    })
    .await;
    let started = Instant::now();
    let channel = server.grpc_channel().await;
    // A health watch never ends by itself: the client keeps it open whatever GOAWAY says.
    let mut watch = tonic_health::pb::health_client::HealthClient::new(channel)
        .watch(tonic_health::pb::HealthCheckRequest {
            service: "burnbox.v1.Secrets".to_owned(),
        })
        .await
        .expect("watch")
        .into_inner();
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            match watch.message().await {
                Ok(Some(_)) => {}
                Ok(None) => return "ended",
                Err(_) => return "failed",
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream is still open after {PATIENCE:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "not before the age and its grace"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_peer_that_does_not_answer_pings_is_disconnected() {
    let server = server_with(10, 30, 60, |config| {
        config.grpc_keepalive_seconds = 1;
    })
    .await;
    let started = Instant::now();
    let mut deaf = TcpStream::connect(server.grpc_addr).await.expect("connect");
    deaf.write_all(H2_PREFACE).await.expect("preface");
    let frames = h2_frame_types(&wait_closed(&mut deaf).await);
    assert!(
        frames.contains(&PING),
        "pinged before the close: {frames:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "an interval and a timeout"
    );
}

/// Sends `request` on a fresh connection to `base` and reads the answer up to the close.
async fn refused(base: &str, request: &[u8]) -> Answer {
    let mut stream = connect(base).await;
    stream.write_all(request).await.expect("request");
    let received = wait_closed(&mut stream).await;
    parse_answer(&received)
        .unwrap_or_else(|| panic!("an answer: {:?}", String::from_utf8_lossy(&received)))
        .0
}

/// The headers every answer carries.
fn assert_security_headers(answer_headers: impl Fn(&str) -> Option<String>, what: &str) {
    for (name, value) in [
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
    ] {
        assert_eq!(
            answer_headers(name).as_deref(),
            Some(value),
            "{name} on {what}"
        );
    }
    let csp = answer_headers("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("frame-ancestors 'none'"),
        "CSP on {what}: {csp:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_too_malformed_to_parse_get_the_documented_body_and_headers() {
    let server = server_with(10, 30, 60, |_| {}).await;
    let long_uri = format!(
        "GET /api/v1/{} HTTP/1.1\r\nHost: burnbox\r\n\r\n",
        "a".repeat(70_000)
    );
    let many_headers = format!(
        "GET /api/v1/status HTTP/1.1\r\nHost: burnbox\r\n{}\r\n",
        (0..101)
            .map(|n| format!("X-Header-{n}: {n}\r\n"))
            .collect::<String>()
    );
    let cases: [(&str, &[u8]); 5] = [
        (
            "a bad header name",
            b"GET /api/v1/status HTTP/1.1\r\nHost: burnbox\r\nBad Header: 1\r\n\r\n",
        ),
        (
            "Content-Length: -1",
            b"POST /api/v1/share HTTP/1.1\r\nHost: burnbox\r\nContent-Length: -1\r\n\r\n",
        ),
        ("a garbage request line", b"GARBAGE\r\n\r\n"),
        ("a URI over 64 KB", long_uri.as_bytes()),
        ("101 headers", many_headers.as_bytes()),
    ];
    for (what, request) in cases {
        let answer = refused(&server.http_base, request).await;
        assert_rest_error(&answer.json(), ErrorKind::BadRequest, None);
        assert_security_headers(|name| answer.header(name).map(str::to_owned), what);
        assert_eq!(
            answer.header("content-type"),
            Some("application/json; charset=utf-8"),
            "{what}"
        );
    }
    let admin = refused(&server.admin_base, b"GARBAGE\r\n\r\n").await;
    assert_rest_error(&admin.json(), ErrorKind::BadRequest, None);
    // The server serves on.
    let mut stream = connect(&server.http_base).await;
    stream.write_all(STATUS_REQUEST).await.expect("request");
    assert_eq!(read_answer(&mut stream).await.status, 200);
}

/// What a reqwest answer's header says.
fn header_of(response: &reqwest::Response) -> impl Fn(&str) -> Option<String> + '_ {
    |name| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_answers_errors_in_the_documented_body_with_security_headers() {
    let server = TestServer::start(Backend::Memory).await;
    let livez = server
        .http
        .get(format!("{}/livez", server.admin_base))
        .send()
        .await
        .expect("livez");
    assert_eq!(livez.status(), 200);
    assert_security_headers(header_of(&livez), "/livez");
    let unknown = server
        .http
        .get(format!("{}/no-such-path", server.admin_base))
        .send()
        .await
        .expect("unknown path");
    assert_security_headers(header_of(&unknown), "an unknown admin path");
    let answer = burnbox_tests::json_of(unknown).await;
    assert_rest_error(&answer, ErrorKind::NotFound, None);
    let wrong_method = server
        .http
        .post(format!("{}/livez", server.admin_base))
        .send()
        .await
        .expect("wrong method");
    assert_rest_error(
        &burnbox_tests::json_of(wrong_method).await,
        ErrorKind::BadRequest,
        None,
    );
}

/// The contents of a page's inline scripts, in order.
fn inline_scripts(mut page: &str) -> Vec<String> {
    let mut scripts = Vec::new();
    while let Some(start) = page.find("<script") {
        let (_, text) = page[start..].split_once('>').expect("a whole tag");
        let (script, rest) = text.split_once("</script>").expect("a closed script");
        scripts.push(script.to_owned());
        page = rest;
    }
    scripts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_runs_only_its_own_scripts_and_cannot_be_framed() {
    use base64::Engine;
    use sha2::Digest;
    let server = TestServer::start(Backend::Memory).await;
    let docs = server
        .http
        .get(format!("{}/docs/", server.http_base))
        .send()
        .await
        .expect("docs");
    assert_eq!(docs.status(), 200);
    assert_security_headers(header_of(&docs), "/docs");
    let csp = header_of(&docs)("content-security-policy").unwrap_or_default();
    let page = docs.text().await.expect("page");
    let scripts = inline_scripts(&page);
    assert!(scripts.len() >= 2, "the bundle and its start-up script");
    for script in &scripts {
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script));
        assert!(
            csp.contains(&format!("'sha256-{hash}'")),
            "a script of /docs is not allowed by its CSP: {csp}"
        );
    }
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-eval") && !csp.contains("script-src 'unsafe-inline'"));
    // Every other answer loads nothing at all.
    let status = server
        .http
        .get(server.api("/status"))
        .send()
        .await
        .expect("status");
    assert_eq!(
        header_of(&status)("content-security-policy").as_deref(),
        Some("default-src 'none'; frame-ancestors 'none'")
    );
}
