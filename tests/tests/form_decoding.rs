//! Form bodies decode exactly: bytes that are not UTF-8 once percent-decoded are a 400
//! BadRequest naming the field, never replaced with U+FFFD (which made `%FF%FF` and `%FE%FE` the
//! same passphrase). On both stores, over real HTTP.

use burnbox_core::ErrorKind;
use burnbox_tests::{Backend, TestServer, assert_rest_error, json_of, on_both_stores, rest_share};
use reqwest::StatusCode;

const FORM: &str = "application/x-www-form-urlencoded";

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

on_both_stores!(form_bytes_that_are_not_utf8_are_refused);
