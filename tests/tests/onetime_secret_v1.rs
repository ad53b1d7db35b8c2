//! Onetime Secret v1 conformance: every request of Onetime Secret's own v1 validation capture
//! (its `v1-capture.sh` list: status, authcheck, share, generate, create, the creation edge
//! cases, reveal, receipts through every alias and method, recent, burn, passphrases, bad and
//! missing credentials, and the content types), replayed in its order against the real server,
//! each answer held to burnbox's documented one. Every receipt is checked field by field and
//! type by type against a table of Onetime Secret's v1 receipt response schema, written here.

use burnbox_tests::{ALICE, Backend, TestServer, basic_auth, json_of, on_both_stores};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

on_both_stores! {
    the_capture_list_gets_the_documented_answers,
}

/// The public URL the harness configures.
const PUBLIC_URL: &str = "https://burnbox.test";

/// How a capture request sends its parameters.
enum Body {
    /// No body at all.
    Empty,
    /// `Content-Type: application/json`.
    Json(Value),
    /// `Content-Type: application/x-www-form-urlencoded`.
    Form(&'static str),
    /// A body with no Content-Type header (the capture's last case; JSON too).
    Untyped(String),
    /// `multipart/form-data`, as `curl -F` sends.
    Multipart(Vec<(&'static str, &'static str)>),
}

/// Whose credentials a request carries.
#[derive(Clone, Copy)]
enum Auth {
    Customer,
    Anonymous,
    Wrong,
}

/// A v1 client replaying requests: a method, a path under `/api/v1`, credentials and a body.
struct Client<'a> {
    server: &'a TestServer,
}

impl Client<'_> {
    async fn call(&self, method: &str, path: &str, auth: Auth, body: Body) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .server
            .http
            .request(method, self.server.api(path))
            .header("accept", "application/json");
        request = match auth {
            Auth::Customer => request.header("authorization", basic_auth(ALICE.0, ALICE.1)),
            Auth::Wrong => request.header(
                "authorization",
                basic_auth("baduser@example.com", "invalidtoken"),
            ),
            Auth::Anonymous => request,
        };
        request = match body {
            Body::Empty => request,
            Body::Json(value) => request
                .header(CONTENT_TYPE, "application/json")
                .body(value.to_string()),
            Body::Form(form) => request
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form),
            Body::Untyped(text) => request.body(text),
            Body::Multipart(parts) => {
                // As curl -F writes it: one part per field, CRLF line ends.
                const BOUNDARY: &str = "------------------------burnbox0capture";
                let mut body = String::new();
                for (name, value) in parts {
                    body.push_str(&format!(
                        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                    ));
                }
                body.push_str(&format!("--{BOUNDARY}--\r\n"));
                request
                    .header(
                        CONTENT_TYPE,
                        format!("multipart/form-data; boundary={BOUNDARY}"),
                    )
                    .body(body)
            }
        };
        json_of(request.send().await.expect("request")).await
    }

    /// A customer's creation at `path` (share, generate, create) with `body`: its receipt,
    /// checked against the schema.
    async fn created(&self, path: &str, body: Body) -> Value {
        let (status, receipt) = self.call("POST", path, Auth::Customer, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {receipt}");
        check_receipt(&receipt);
        assert_eq!(receipt["custid"], ALICE.0, "{receipt}");
        assert_eq!(receipt["state"], "new", "{receipt}");
        receipt
    }

    /// A customer's share of `form`: its receipt, checked against the schema.
    async fn share(&self, form: &'static str) -> Value {
        let (status, receipt) = self
            .call("POST", "/share", Auth::Customer, Body::Form(form))
            .await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        check_receipt(&receipt);
        receipt
    }
}

/// One field of Onetime Secret's v1 receipt response schema.
struct SchemaField {
    name: &'static str,
    kind: Kind,
    /// Must be present.
    required: bool,
    /// May be `null`.
    nullable: bool,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Text,
    Integer,
    Boolean,
    Texts,
    State,
}

const fn field(name: &'static str, kind: Kind, required: bool, nullable: bool) -> SchemaField {
    SchemaField {
        name,
        kind,
        required,
        nullable,
    }
}

/// Onetime Secret's v1 receipt response (its v0.23 names plus the v0.24 names it requires):
/// unknown fields are allowed (its schema objects do not reject them).
const RECEIPT_SCHEMA: &[SchemaField] = &[
    field("custid", Kind::Text, true, false),
    field("metadata_key", Kind::Text, true, false),
    field("secret_key", Kind::Text, false, false),
    field("state", Kind::State, true, false),
    field("created", Kind::Integer, true, true),
    field("updated", Kind::Integer, true, true),
    field("received", Kind::Integer, false, false),
    field("ttl", Kind::Integer, true, true),
    field("metadata_ttl", Kind::Integer, true, true),
    field("secret_ttl", Kind::Integer, false, true),
    field("metadata_url", Kind::Text, false, true),
    field("share_domain", Kind::Text, true, false),
    field("recipient", Kind::Texts, true, false),
    field("passphrase_required", Kind::Boolean, false, false),
    field("value", Kind::Text, false, false),
    field("identifier", Kind::Text, true, false),
    field("secret_identifier", Kind::Text, false, false),
    field("has_passphrase", Kind::Boolean, false, false),
    field("recipients", Kind::Texts, true, false),
    field("receipt_ttl", Kind::Integer, true, true),
    field("receipt_url", Kind::Text, false, true),
    field("secret_value", Kind::Text, false, false),
];

/// The states of Onetime Secret's v1 vocabulary.
const STATES: &[&str] = &["new", "received", "viewed", "burned", "expired", "orphaned"];

fn has_kind(value: &Value, kind: Kind) -> bool {
    match kind {
        Kind::Text => value.is_string(),
        Kind::Integer => value.is_i64(),
        Kind::Boolean => value.is_boolean(),
        Kind::Texts => value
            .as_array()
            .is_some_and(|items| items.iter().all(Value::is_string)),
        Kind::State => value.as_str().is_some_and(|state| STATES.contains(&state)),
    }
}

/// Holds `receipt` to the schema, type by type, and to burnbox's values: every second name
/// equals its first, `share_domain` is empty (no custom domain), the receipt URL is the
/// receipt page.
fn check_receipt(receipt: &Value) {
    let object = receipt.as_object().expect("a receipt is an object");
    for field in RECEIPT_SCHEMA {
        match object.get(field.name) {
            None => assert!(!field.required, "{} missing: {receipt}", field.name),
            Some(Value::Null) => assert!(field.nullable, "{} is null: {receipt}", field.name),
            Some(value) => assert!(
                has_kind(value, field.kind),
                "{} is not {:?}: {receipt}",
                field.name,
                field.kind
            ),
        }
    }
    for (second, first) in [
        ("identifier", "metadata_key"),
        ("secret_identifier", "secret_key"),
        ("has_passphrase", "passphrase_required"),
        ("recipients", "recipient"),
        ("receipt_ttl", "metadata_ttl"),
        ("receipt_url", "metadata_url"),
        ("secret_value", "value"),
    ] {
        assert_eq!(object.get(second), object.get(first), "{second}: {receipt}");
    }
    assert_eq!(receipt["share_domain"], "", "{receipt}");
    let metadata_key = receipt["metadata_key"].as_str().expect("metadata_key");
    assert_eq!(
        receipt["metadata_url"],
        format!("{PUBLIC_URL}/private/{metadata_key}"),
        "{receipt}"
    );
    // Onetime Secret's rule: a received secret's receipt has no secret key or ttl, and only it
    // has `received`.
    let received = receipt["state"] == "received";
    assert_eq!(object.contains_key("received"), received, "{receipt}");
    if received {
        assert!(!object.contains_key("secret_key"), "{receipt}");
        assert!(!object.contains_key("secret_ttl"), "{receipt}");
    }
}

/// Holds an error answer to burnbox's body (`error`, `message`, `error_id`, on a NotFound the
/// `secret_key` asked for) with `status` and Onetime Secret's `message`.
fn check_error(answer: &(StatusCode, Value), status: StatusCode, message: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["message"], message, "{body}");
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(body["error_id"].as_str().map(str::len), Some(32), "{body}");
}

fn text<'a>(value: &'a Value, name: &str) -> &'a str {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: {value}"))
}

async fn the_capture_list_gets_the_documented_answers(backend: Backend) {
    let server = TestServer::start_with_customers(backend, |_| {}).await;
    let client = Client { server: &server };
    let customer = Auth::Customer;
    let status_body = json!({"status": "nominal", "locale": "en"});

    // 1. Status and health.
    let answer = client.call("GET", "/status", customer, Body::Empty).await;
    assert_eq!(answer, (StatusCode::OK, status_body.clone()), "01 status");
    let answer = client
        .call("GET", "/authcheck", customer, Body::Empty)
        .await;
    assert_eq!(
        answer,
        (StatusCode::OK, status_body.clone()),
        "02 authcheck"
    );
    let answer = client
        .call("GET", "/authcheck", Auth::Anonymous, Body::Empty)
        .await;
    check_error(&answer, StatusCode::UNAUTHORIZED, "Not authorized");

    // 2. Creation.
    let minimal = client
        .created(
            "/share",
            Body::Json(json!({"secret": "test secret value for capture", "ttl": 300})),
        )
        .await;
    assert_eq!(
        (minimal["ttl"].as_i64(), minimal["secret_ttl"].as_i64()),
        (Some(300), Some(300))
    );
    assert_eq!(minimal["metadata_ttl"], 600, "{minimal}");
    assert_eq!(minimal["passphrase_required"], false, "{minimal}");
    assert!(minimal.get("value").is_none(), "{minimal}");

    let full = client
        .created(
            "/share",
            Body::Json(json!({"secret": "full param test", "ttl": 600,
                              "passphrase": "testpass123", "recipient": ""})),
        )
        .await;
    assert_eq!(full["passphrase_required"], true, "{full}");
    assert_eq!(full["recipient"], json!([]), "{full}");

    let generated = client.created("/generate", Body::Json(json!({}))).await;
    assert_eq!(generated["ttl"], 604_800, "the default ttl: {generated}");
    assert_eq!(text(&generated, "value").chars().count(), 12, "{generated}");
    let generated = client
        .created("/generate", Body::Json(json!({"ttl": 3600})))
        .await;
    assert_eq!(generated["ttl"], 3600, "{generated}");
    client
        .created("/create", Body::Form("secret=testing+create+alias&ttl=300"))
        .await;

    // 3. Creation edge cases: an empty or missing secret is refused in Onetime Secret's words;
    // out-of-range ttls are clamped, as it does; any text and passphrase of up to 128 characters
    // is a secret.
    for body in [json!({"secret": "", "ttl": 300}), json!({"ttl": 300})] {
        let answer = client
            .call("POST", "/share", customer, Body::Json(body))
            .await;
        check_error(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "You did not provide anything to share",
        );
        assert_eq!(answer.1["field"], "secret");
    }
    for (asked, given) in [(1, 60), (99_999_999, 2_592_000)] {
        let receipt = client
            .created(
                "/share",
                Body::Json(json!({"secret": "ttl test", "ttl": asked})),
            )
            .await;
        assert_eq!(
            (receipt["ttl"].as_i64(), receipt["secret_ttl"].as_i64()),
            (Some(given), Some(given))
        );
    }
    let unicode_text = "emoji 🔑 and CJK 秘密 and diacritics über";
    let unicode = client
        .created(
            "/share",
            Body::Json(json!({"secret": unicode_text, "ttl": 300})),
        )
        .await;
    let large = client
        .created(
            "/share",
            Body::Json(json!({"secret": "A".repeat(2048), "ttl": 300})),
        )
        .await;
    for passphrase in [
        "ab",
        "abcdefghijklmnopqrstuvwxyz1234567890ABCDEFGHIJKLMNOPQRSTUVWXYZ!@#$%^&*()_+",
    ] {
        let receipt = client
            .created(
                "/share",
                Body::Json(json!({"secret": "pass test", "ttl": 300, "passphrase": passphrase})),
            )
            .await;
        assert_eq!(receipt["passphrase_required"], true);
    }

    // 4. Reveal: with or without `continue`, the first POST reveals; then the secret is unknown.
    let to_reveal = client.share("secret=retrieval+test+secret&ttl=300").await;
    let key = text(&to_reveal, "secret_key");
    let reveal_path = format!("/secret/{key}");
    let answer = client
        .call("POST", &reveal_path, customer, Body::Empty)
        .await;
    assert_eq!(
        answer,
        (
            StatusCode::OK,
            json!({"value": "retrieval test secret", "secret_key": key, "share_domain": PUBLIC_URL})
        ),
        "30 reveal"
    );
    let again = client
        .call(
            "POST",
            &reveal_path,
            customer,
            Body::Json(json!({"continue": "true"})),
        )
        .await;
    check_error(&again, StatusCode::NOT_FOUND, "Unknown secret");
    assert_eq!(again.1["secret_key"], key, "{}", again.1);
    let nonexistent = client
        .call(
            "POST",
            "/secret/nonexistent_key_12345",
            customer,
            Body::Json(json!({"continue": "true"})),
        )
        .await;
    check_error(&nonexistent, StatusCode::NOT_FOUND, "Unknown secret");
    assert_eq!(nonexistent.1["secret_key"], "nonexistent_key_12345");
    for (receipt, value) in [
        (&unicode, unicode_text.to_owned()),
        (&large, "A".repeat(2048)),
    ] {
        let path = format!("/secret/{}", text(receipt, "secret_key"));
        let (status, revealed) = client.call("POST", &path, customer, Body::Empty).await;
        assert_eq!(
            (status, &revealed["value"]),
            (StatusCode::OK, &json!(value))
        );
    }

    // 5. Receipts through every alias, GET and POST alike.
    let receipt = client.share("secret=metadata+test+secret&ttl=300").await;
    let metadata_key = text(&receipt, "metadata_key");
    for alias in ["private", "metadata", "receipt"] {
        for method in ["GET", "POST"] {
            let path = format!("/{alias}/{metadata_key}");
            let (status, read) = client.call(method, &path, customer, Body::Empty).await;
            assert_eq!(status, StatusCode::OK, "{method} {path}: {read}");
            check_receipt(&read);
            assert_eq!(
                (&read["state"], &read["secret_key"]),
                (&json!("new"), &receipt["secret_key"])
            );
        }
    }
    for alias in ["private", "metadata"] {
        let path = format!("/{alias}/nonexistent_metadata_key");
        let answer = client.call("GET", &path, customer, Body::Empty).await;
        check_error(&answer, StatusCode::NOT_FOUND, "Unknown secret");
        assert_eq!(answer.1["secret_key"], "nonexistent_metadata_key");
    }

    // 6. Recent, through every alias: the customer's receipts, newest first, without keys.
    for alias in ["private", "metadata", "receipt"] {
        let path = format!("/{alias}/recent");
        let (status, recent) = client.call("GET", &path, customer, Body::Empty).await;
        assert_eq!(status, StatusCode::OK, "{path}: {recent}");
        let receipts = recent.as_array().expect("a list");
        assert_eq!(
            receipts.first().map(|first| &first["metadata_key"]),
            Some(&json!(metadata_key))
        );
        for listed in receipts {
            check_receipt(listed);
            assert!(listed.get("secret_key").is_none(), "{listed}");
        }
    }

    // 7. Burn, through both paths; then the receipt says burned and a second burn is unknown.
    for alias in ["private", "receipt"] {
        let to_burn = client.share("secret=burn+test+secret&ttl=300").await;
        let metadata_key = text(&to_burn, "metadata_key");
        let path = format!("/{alias}/{metadata_key}/burn");
        let (status, burned) = client.call("POST", &path, customer, Body::Empty).await;
        assert_eq!(status, StatusCode::OK, "{path}: {burned}");
        check_receipt(&burned["state"]);
        assert_eq!(burned["state"]["state"], "burned", "{burned}");
        assert_eq!(
            text(&burned, "secret_shortkey"),
            &text(&to_burn, "secret_key")[..8]
        );
        let (status, after) = client
            .call(
                "GET",
                &format!("/private/{metadata_key}"),
                customer,
                Body::Empty,
            )
            .await;
        assert_eq!(
            (status, &after["state"]),
            (StatusCode::OK, &json!("burned")),
            "{after}"
        );
        check_receipt(&after);
        let again = client.call("POST", &path, customer, Body::Empty).await;
        check_error(&again, StatusCode::NOT_FOUND, "Unknown secret");
    }
    let answer = client
        .call(
            "POST",
            "/private/nonexistent_burn_key/burn",
            customer,
            Body::Empty,
        )
        .await;
    check_error(&answer, StatusCode::NOT_FOUND, "Unknown secret");

    // 8. A passphrase: none and wrong are refused (a real 422 naming the field, where Onetime
    // Secret says Unknown secret), and the secret stays until the right one.
    let protected = client
        .share("secret=passphrase+protected+secret&ttl=300&passphrase=correct-horse-battery")
        .await;
    let path = format!("/secret/{}", text(&protected, "secret_key"));
    let none = client
        .call(
            "POST",
            &path,
            customer,
            Body::Json(json!({"continue": "true"})),
        )
        .await;
    assert_eq!(
        (none.0, &none.1["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("passphrase"))
    );
    let wrong = client
        .call(
            "POST",
            &path,
            customer,
            Body::Json(json!({"continue": "true", "passphrase": "wrong-pass"})),
        )
        .await;
    assert_eq!(wrong.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", wrong.1);
    assert!(
        text(&wrong.1, "message").starts_with("Incorrect passphrase"),
        "{}",
        wrong.1
    );
    let right = client
        .call(
            "POST",
            &path,
            customer,
            Body::Json(json!({"continue": "true", "passphrase": "correct-horse-battery"})),
        )
        .await;
    assert_eq!(
        (right.0, &right.1["value"]),
        (StatusCode::OK, &json!("passphrase protected secret"))
    );
    let (status, after) = client
        .call(
            "GET",
            &format!("/private/{}", text(&protected, "metadata_key")),
            customer,
            Body::Empty,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{after}");
    check_receipt(&after);
    assert_eq!(
        (&after["state"], &after["passphrase_required"]),
        (&json!("received"), &json!(true))
    );

    // 9. Credentials: wrong ones are refused everywhere they are looked at; none are anonymous.
    for (method, path, body) in [
        ("GET", "/authcheck", Body::Empty),
        (
            "POST",
            "/share",
            Body::Json(json!({"secret": "should fail", "ttl": 300})),
        ),
    ] {
        let answer = client.call(method, path, Auth::Wrong, body).await;
        check_error(&answer, StatusCode::UNAUTHORIZED, "Not authorized");
    }
    let answer = client
        .call("GET", "/status", Auth::Anonymous, Body::Empty)
        .await;
    assert_eq!(answer, (StatusCode::OK, status_body), "82 status");
    let (status, anonymous) = client
        .call(
            "POST",
            "/share",
            Auth::Anonymous,
            Body::Json(json!({"secret": "anonymous test", "ttl": 300})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{anonymous}");
    check_receipt(&anonymous);
    assert_eq!(anonymous["custid"], "anon");
    let answer = client
        .call("GET", "/authcheck", Auth::Anonymous, Body::Empty)
        .await;
    check_error(&answer, StatusCode::UNAUTHORIZED, "Not authorized");

    // 10. Content types: a form, a body with no Content-Type (form or JSON), multipart, and the
    // query string (the body wins over it).
    for body in [
        Body::Form("secret=form+encoded+secret&ttl=300"),
        Body::Untyped("secret=no+content+type&ttl=300".to_owned()),
        Body::Untyped(json!({"secret": "no content type", "ttl": 300}).to_string()),
        Body::Multipart(vec![("secret", "multipart"), ("ttl", "300")]),
    ] {
        let receipt = client.created("/share", body).await;
        assert_eq!(receipt["ttl"], 300, "{receipt}");
    }
    let from_query = client
        .created("/share?secret=from+the+query&ttl=300", Body::Empty)
        .await;
    assert_eq!(from_query["ttl"], 300, "{from_query}");
    let body_wins = client
        .created("/share?secret=q&ttl=300", Body::Form("ttl=600"))
        .await;
    assert_eq!(body_wins["ttl"], 600, "{body_wins}");
    let path = format!("/secret/{}", text(&from_query, "secret_key"));
    let (status, revealed) = client.call("POST", &path, customer, Body::Empty).await;
    assert_eq!(
        (status, &revealed["value"]),
        (StatusCode::OK, &json!("from the query"))
    );
}
