//! Request parameters over real HTTP, on both stores. Form bodies decode exactly: bytes that are
//! not UTF-8 once percent-decoded are a 400 BadRequest naming the field, never replaced with
//! U+FFFD (which made `%FF%FF` and `%FE%FE` the same passphrase). Parameters come from the query
//! string, a form, a multipart body or JSON, as Onetime Secret clients send them: a body without
//! a Content-Type is sniffed, and a body field wins over the same query field.

use burnbox_core::ErrorKind;
use burnbox_tests::{
    Backend, TestServer, assert_rest_error, captured_logs, json_of, on_both_stores, rest_share,
};
use reqwest::StatusCode;

const FORM: &str = "application/x-www-form-urlencoded";
const BOUNDARY: &str = "------------------------burnboxformdecoding";

async fn post_form(server: &TestServer, path: &str, body: &str) -> (StatusCode, serde_json::Value) {
    let response = server
        .http
        .post(server.api(path))
        .header(reqwest::header::CONTENT_TYPE, FORM)
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    json_of(response).await
}

/// A POST of `body` with no Content-Type header at all.
async fn post_bare(server: &TestServer, path: &str, body: &str) -> (StatusCode, serde_json::Value) {
    let response = server
        .http
        .post(server.api(path))
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    json_of(response).await
}

/// A multipart body as `curl -F` sends it: `(name, filename, value)` per part.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, filename, value) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let headers = match filename {
            Some(filename) => format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
                 Content-Type: text/plain\r\n\r\n"
            ),
            None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"),
        };
        body.extend_from_slice(headers.as_bytes());
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn post_multipart(
    server: &TestServer,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, serde_json::Value) {
    let response = server
        .http
        .post(server.api(path))
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    json_of(response).await
}

/// The secret behind a receipt, revealed with an empty body; asserts the reveal succeeded.
async fn revealed(server: &TestServer, receipt: &serde_json::Value) -> String {
    let key = receipt["secret_key"].as_str().expect("secret key");
    let (status, body) = post_bare(server, &format!("/secret/{key}"), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["value"].as_str().expect("value").to_owned()
}

/// Asserts a 400 BadRequest whose message is `message`.
fn assert_bad_request(answer: &(StatusCode, serde_json::Value), message: &str) {
    assert_rest_error(answer, ErrorKind::BadRequest, None);
    assert_eq!(answer.1["message"], message, "{}", answer.1);
}

async fn form_bytes_that_are_not_utf8_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    for (body, field) in [
        ("secret=%FF%FE", "secret"),
        ("secret=fine&passphrase=%FF%FF", "passphrase"),
        ("secret=fine&recipient=%C3", "recipient"),
    ] {
        let answer = post_form(&server, "/share", body).await;
        assert_rest_error(&answer, ErrorKind::BadRequest, None);
        let message = answer.1["message"].as_str().expect("message");
        assert!(message.contains(field), "{body}: {message}");
    }

    // The collision the lossy decoder allowed: a secret behind passphrase bytes FF FF must not
    // open with FE FE. Such a secret is refused when shared, and a reveal with such bytes is
    // refused before it can count as an attempt.
    let (status, receipt) = rest_share(&server, &[("secret", "v"), ("passphrase", "pass")]).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    let key = receipt["secret_key"].as_str().expect("key");
    let answer = post_form(&server, &format!("/secret/{key}"), "passphrase=%FE%FE").await;
    assert_rest_error(&answer, ErrorKind::BadRequest, None);
    let (status, revealed) = post_form(&server, &format!("/secret/{key}"), "passphrase=pass").await;
    assert_eq!(
        (status, revealed["value"].as_str()),
        (StatusCode::OK, Some("v"))
    );

    // Text that is UTF-8 travels exactly.
    let (status, receipt) = post_form(&server, "/share", "secret=%C3%A9t%C3%A9+%E2%82%AC").await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    let key = receipt["secret_key"].as_str().expect("key");
    let (_, revealed) = post_form(&server, &format!("/secret/{key}"), "").await;
    assert_eq!(revealed["value"].as_str(), Some("été €"));
}

async fn share_via_the_query_string(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, receipt) = post_bare(&server, "/share?secret=from+the%20query&ttl=300", "").await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["ttl"], 300, "{receipt}");
    assert_eq!(receipt["passphrase_required"], false, "{receipt}");
    assert_eq!(revealed(&server, &receipt).await, "from the query");

    // Generate reads the query too.
    let (status, receipt) = post_bare(&server, "/generate?length=20&ttl=600", "").await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["ttl"], 600, "{receipt}");
    assert_eq!(
        receipt["value"].as_str().map(str::len),
        Some(20),
        "{receipt}"
    );

    // The query is checked as forms are, and never quoted back.
    let answer = post_bare(&server, "/share?secret=hunter2%FF", "").await;
    assert_bad_request(
        &answer,
        "the query parameter \"secret\" is not valid UTF-8 once percent-decoded",
    );
    let answer = post_bare(&server, "/share?secret=hunter2&secret=hunter3", "").await;
    assert_bad_request(
        &answer,
        "the query string could not be decoded (each field at most once, text values)",
    );
}

async fn share_via_multipart(backend: Backend) {
    let server = TestServer::start(backend).await;
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    // `curl -F secret=@file -F ttl=3600`: the file part is the secret's text.
    let body = multipart(&[
        ("secret", Some("note.txt"), "été\nsecond line\n".as_bytes()),
        ("passphrase", None, b"multi pass"),
        ("ttl", None, b"3600"),
    ]);
    let (status, receipt) = post_multipart(&server, "/share", &content_type, body).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["ttl"], 3600, "{receipt}");
    assert_eq!(receipt["passphrase_required"], true, "{receipt}");
    let key = receipt["secret_key"].as_str().expect("key");
    let (status, body) = post_multipart(
        &server,
        &format!("/secret/{key}"),
        &content_type,
        multipart(&[("passphrase", None, b"multi pass")]),
    )
    .await;
    assert_eq!(
        (status, body["value"].as_str()),
        (StatusCode::OK, Some("été\nsecond line\n")),
        "{body}"
    );

    // Refusals: no boundary, a part that is not UTF-8, too many parts.
    let answer = post_multipart(
        &server,
        "/share",
        "multipart/form-data",
        multipart(&[("secret", None, b"s")]),
    )
    .await;
    assert_bad_request(
        &answer,
        "a multipart/form-data body needs a boundary in its Content-Type (boundary=...)",
    );
    let answer = post_multipart(
        &server,
        "/share",
        &content_type,
        multipart(&[("secret", None, b"hunter2\xFF")]),
    )
    .await;
    assert_bad_request(&answer, "the multipart field \"secret\" is not valid UTF-8");
    let parts = vec![("unused", None, &b"x"[..]); 33];
    let answer = post_multipart(&server, "/share", &content_type, multipart(&parts)).await;
    assert_bad_request(&answer, "a multipart body has at most 32 parts");
}

async fn bodies_without_a_content_type_are_sniffed(backend: Backend) {
    let server = TestServer::start(backend).await;
    // A form, as `curl -d` without -H sends it.
    let (status, receipt) = post_bare(&server, "/share", "secret=bare+form&ttl=600").await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["ttl"], 600, "{receipt}");
    assert_eq!(revealed(&server, &receipt).await, "bare form");

    // JSON, as Onetime Secret's own scripts send it.
    let (status, receipt) = post_bare(
        &server,
        "/share",
        "\n  {\"secret\": \"bare json\", \"ttl\": 900, \"passphrase\": \"p\"}",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["ttl"], 900, "{receipt}");
    assert_eq!(receipt["passphrase_required"], true, "{receipt}");
    let key = receipt["secret_key"].as_str().expect("key");
    let (status, body) =
        post_bare(&server, &format!("/secret/{key}"), r#"{"passphrase":"p"}"#).await;
    assert_eq!(
        (status, body["value"].as_str()),
        (StatusCode::OK, Some("bare json")),
        "{body}"
    );

    // Sniffed JSON is refused as JSON is, without quoting it.
    let answer = post_bare(&server, "/share", "{\"secret\": \"hunter2\"").await;
    assert_rest_error(&answer, ErrorKind::BadRequest, None);
    let message = answer.1["message"].as_str().expect("message");
    assert!(
        message.starts_with("the body is not valid JSON"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");

    // A Content-Type that is there but not one of ours is still refused.
    let response = server
        .http
        .post(server.api("/share"))
        .header(reqwest::header::CONTENT_TYPE, "text/plain")
        .body("secret=x")
        .send()
        .await
        .expect("request");
    assert_bad_request(
        &json_of(response).await,
        "unsupported content type \"text/plain\": send application/x-www-form-urlencoded, \
         multipart/form-data or application/json",
    );
}

async fn body_fields_win_over_query_fields(backend: Backend) {
    let server = TestServer::start(backend).await;
    // secret in both: the body's; ttl only in the query: the query's.
    let (status, receipt) = post_form(
        &server,
        "/share?secret=from-query&ttl=1200",
        "secret=from-body",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["ttl"], 1200, "{receipt}");
    assert_eq!(revealed(&server, &receipt).await, "from-body");

    // The same with JSON and multipart bodies.
    let response = server
        .http
        .post(server.api("/share?secret=from-query&ttl=1200"))
        .json(&serde_json::json!({"secret": "from-json", "ttl": 1800}))
        .send()
        .await
        .expect("request");
    let (status, receipt) = json_of(response).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["ttl"], 1800, "{receipt}");
    assert_eq!(revealed(&server, &receipt).await, "from-json");
    let (status, receipt) = post_multipart(
        &server,
        "/share?secret=from-query&ttl=1200",
        &format!("multipart/form-data; boundary={BOUNDARY}"),
        multipart(&[("secret", None, b"from-multipart")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["ttl"], 1200, "{receipt}");
    assert_eq!(revealed(&server, &receipt).await, "from-multipart");

    // A field given in the body, even empty, is the body's: an empty secret is refused.
    let answer = post_form(&server, "/share?secret=from-query", "secret=").await;
    assert_rest_error(&answer, ErrorKind::Validation, Some("secret"));
}

async fn reveal_with_the_passphrase_in_the_query(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, receipt) = rest_share(&server, &[("secret", "v"), ("passphrase", "p a&s")]).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    let key = receipt["secret_key"].as_str().expect("key");

    // A wrong passphrase in the query counts as wrong; a right one in the body wins over it.
    let answer = post_bare(&server, &format!("/secret/{key}?passphrase=wrong"), "").await;
    assert_rest_error(&answer, ErrorKind::Validation, Some("passphrase"));
    let (status, body) = post_form(
        &server,
        &format!("/secret/{key}?passphrase=p+a%26s"),
        "passphrase=wrong",
    )
    .await;
    assert_rest_error(&(status, body), ErrorKind::Validation, Some("passphrase"));
    let (status, body) = post_bare(&server, &format!("/secret/{key}?passphrase=p+a%26s"), "").await;
    assert_eq!(
        (status, body["value"].as_str()),
        (StatusCode::OK, Some("v")),
        "{body}"
    );
}

on_both_stores!(
    form_bytes_that_are_not_utf8_are_refused,
    share_via_the_query_string,
    share_via_multipart,
    bodies_without_a_content_type_are_sniffed,
    body_fields_win_over_query_fields,
    reveal_with_the_passphrase_in_the_query,
);

/// A secret and passphrase sent in the query string reach no log line, even at TRACE: the URL
/// is logged by route template only. (The capture is process-wide: the other tests of this
/// binary log into it too, which only widens the search.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_parameters_never_reach_the_logs() {
    let captured = captured_logs();
    let server = TestServer::start(Backend::redis()).await;
    let (secret, passphrase) = ("query-leak-probe-value-51c9", "query-leak-probe-pass-7d2e");
    let (status, receipt) = post_bare(
        &server,
        &format!("/share?secret={secret}&passphrase={passphrase}"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    let key = receipt["secret_key"].as_str().expect("key");
    // Refusals that read the query: a repeated field, bytes that are not UTF-8.
    let answer = post_bare(
        &server,
        &format!("/share?secret={secret}&secret={secret}"),
        "",
    )
    .await;
    assert_rest_error(&answer, ErrorKind::BadRequest, None);
    let answer = post_bare(&server, &format!("/share?secret={secret}%FF"), "").await;
    assert_rest_error(&answer, ErrorKind::BadRequest, None);
    let (status, body) = post_bare(
        &server,
        &format!("/secret/{key}?passphrase={passphrase}"),
        "",
    )
    .await;
    assert_eq!(
        (status, body["value"].as_str()),
        (StatusCode::OK, Some(secret)),
        "{body}"
    );
    server.shutdown().await;

    let logs = captured.text();
    assert!(
        logs.contains("secret revealed") && logs.contains("TRACE"),
        "the capture holds trace logs"
    );
    for needle in [secret, passphrase] {
        let line = logs.lines().find(|line| line.contains(needle));
        assert!(line.is_none(), "{needle:?} appears in the logs: {line:?}");
    }
}
