//! The look-up of a secret that takes nothing (`GET /api/v1/secret/{key}/status`, its alias
//! `GET /api/v1/secret/{key}`, gRPC `GetSecretStatus`), and anonymous creation and reveal
//! configured apart (`BURNBOX_ALLOW_ANONYMOUS`, `BURNBOX_ALLOW_ANONYMOUS_CREATE`).

use burnbox_core::ErrorKind;
use burnbox_server::Config;
use burnbox_spec::v1 as pb;
use burnbox_tests::{
    ALICE, BOB, Backend, TestRedis, TestServer, assert_grpc_error, assert_rest_error, basic_auth,
    grpc_request, grpc_reveal_request, grpc_share_request, json_of, on_both_stores, rest_get,
    rest_reveal, rest_share, test_master_key,
};
use reqwest::StatusCode;
use reqwest::header::{RETRY_AFTER, USER_AGENT, WWW_AUTHENTICATE};
use serde_json::Value;

on_both_stores!(
    status_of_a_new_secret_over_rest_and_grpc,
    end_to_end_values_are_flagged_and_revealed_as_stored,
    status_never_burns,
    status_is_never_a_passphrase_attempt,
    gone_secrets_are_the_same_not_found_as_a_reveal,
    get_and_head_of_secret_urls_never_burn,
    status_is_rate_limited_with_reveals,
    access_matrix,
);

const HOUR: i64 = 3600;

fn text(body: &Value, field: &str) -> String {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {body}"))
        .to_owned()
}

/// Shares `secret` over REST for an hour, with a passphrase when given; returns the receipt.
async fn share(server: &TestServer, secret: &str, passphrase: Option<&str>) -> Value {
    let mut form = vec![("secret", secret), ("ttl", "3600")];
    if let Some(passphrase) = passphrase {
        form.push(("passphrase", passphrase));
    }
    let (status, receipt) = rest_share(server, &form).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    receipt
}

async fn rest_status(server: &TestServer, key: &str) -> (StatusCode, Value) {
    rest_get(server, &format!("/secret/{key}/status")).await
}

async fn grpc_status(server: &TestServer, key: &str) -> Result<pb::SecretStatus, tonic::Status> {
    server
        .grpc()
        .await
        .get_secret_status(pb::GetSecretStatusRequest {
            key: key.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Asserts a status answer over REST: exactly these fields, the secret there and unread.
fn assert_rest_status(answer: &(StatusCode, Value), key: &str, passphrase_required: bool) {
    let (status, body) = answer;
    assert_eq!(*status, StatusCode::OK, "{body}");
    let fields: std::collections::BTreeSet<&str> = body
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        [
            "end_to_end",
            "passphrase_required",
            "secret_key",
            "secret_ttl",
            "state"
        ]
        .into(),
        "{body}"
    );
    assert_eq!(body["end_to_end"], false, "{body}");
    assert_eq!(body["secret_key"], key, "{body}");
    assert_eq!(body["state"], "new", "{body}");
    assert_eq!(body["passphrase_required"], passphrase_required, "{body}");
    let ttl = body["secret_ttl"].as_i64().expect("secret_ttl seconds");
    assert!((1..=HOUR).contains(&ttl), "{body}");
}

fn assert_grpc_status(status: &pb::SecretStatus, key: &str, passphrase_required: bool) {
    assert_eq!(status.secret_key, key, "{status:?}");
    assert_eq!(status.state, "new", "{status:?}");
    assert_eq!(
        status.passphrase_required, passphrase_required,
        "{status:?}"
    );
    assert!((1..=HOUR).contains(&status.secret_ttl), "{status:?}");
    assert!(!status.end_to_end, "{status:?}");
}

/// A value in the `bbx1` format (what the page and the CLI share) is flagged end-to-end in the
/// status over both transports, whichever transport shared it; a plain API client that reveals
/// it gets the ciphertext as stored, and anything else is not flagged.
async fn end_to_end_values_are_flagged_and_revealed_as_stored(backend: Backend) {
    let server = TestServer::start(backend).await;
    // 12-byte nonce + 5-byte text + 16-byte tag, in base64url: the shape, not a real ciphertext.
    let sealed = format!("bbx1:{}", "Q".repeat(44));
    let over_rest = text(&share(&server, &sealed, None).await, "secret_key");
    let over_grpc = server
        .grpc()
        .await
        .share_secret(grpc_share_request(&sealed))
        .await
        .expect("share")
        .into_inner()
        .secret_key
        .expect("secret key");
    for key in [&over_rest, &over_grpc] {
        let (status, body) = rest_status(&server, key).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["end_to_end"], true, "{body}");
        let status = grpc_status(&server, key).await.expect("GetSecretStatus");
        assert!(status.end_to_end, "{status:?}");
    }
    let (status, revealed) = rest_reveal(&server, &over_rest, None).await;
    assert_eq!(status, StatusCode::OK, "{revealed}");
    assert_eq!(revealed["value"], sealed.as_str());
    for almost in [
        format!("bbx1:{}", "Q".repeat(37)),
        format!("bbx1 {}", "Q".repeat(44)),
    ] {
        let key = text(&share(&server, &almost, None).await, "secret_key");
        let (_, body) = rest_status(&server, &key).await;
        assert_eq!(body["end_to_end"], false, "{almost}: {body}");
    }
}

async fn status_of_a_new_secret_over_rest_and_grpc(backend: Backend) {
    let server = TestServer::start(backend).await;
    for passphrase in [None, Some("correct horse")] {
        let required = passphrase.is_some();
        let key = text(
            &share(&server, "the launch codes", passphrase).await,
            "secret_key",
        );
        assert_rest_status(&rest_status(&server, &key).await, &key, required);
        assert_rest_status(
            &rest_get(&server, &format!("/secret/{key}")).await,
            &key,
            required,
        );
        let status = grpc_status(&server, &key).await.expect("GetSecretStatus");
        assert_grpc_status(&status, &key, required);
    }
    // A secret shared over gRPC is looked up the same way.
    let receipt = server
        .grpc()
        .await
        .share_secret(pb::ShareSecretRequest {
            ttl: Some(HOUR),
            ..grpc_share_request("over gRPC")
        })
        .await
        .expect("share")
        .into_inner();
    let key = receipt.secret_key.expect("secret key");
    assert_rest_status(&rest_status(&server, &key).await, &key, false);
}

async fn status_never_burns(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = text(&share(&server, "still here", None).await, "secret_key");
    for _ in 0..5 {
        assert_rest_status(&rest_status(&server, &key).await, &key, false);
        assert_rest_status(
            &rest_get(&server, &format!("/secret/{key}")).await,
            &key,
            false,
        );
        assert_grpc_status(
            &grpc_status(&server, &key).await.expect("status"),
            &key,
            false,
        );
    }
    let (status, revealed) = rest_reveal(&server, &key, None).await;
    assert_eq!(
        (status, revealed["value"].as_str()),
        (StatusCode::OK, Some("still here"))
    );
    assert_rest_error(&rest_status(&server, &key).await, ErrorKind::NotFound, None);
}

async fn status_is_never_a_passphrase_attempt(backend: Backend) {
    // One wrong passphrase burns a secret here: a look-up counted as an attempt would burn it.
    let server = TestServer::start_with(backend, |config| config.passphrase_max_attempts = 1).await;
    let receipt = share(&server, "guarded", Some("correct horse")).await;
    let key = text(&receipt, "secret_key");
    let metadata_key = text(&receipt, "metadata_key");
    for _ in 0..3 {
        assert_rest_status(&rest_status(&server, &key).await, &key, true);
        // A passphrase sent along is not checked either.
        let with_passphrase = server
            .http
            .get(server.api(&format!("/secret/{key}/status?passphrase=wrong")))
            .send()
            .await
            .expect("status");
        assert_rest_status(&json_of(with_passphrase).await, &key, true);
        assert_grpc_status(
            &grpc_status(&server, &key).await.expect("status"),
            &key,
            true,
        );
    }
    // The receipt did not change.
    let (status, after) = rest_get(&server, &format!("/private/{metadata_key}")).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(after["state"], "new", "{after}");
    assert_eq!(after["updated"], receipt["created"], "{after}");
    assert_eq!(after.get("received"), None, "{after}");
    let (status, revealed) = rest_reveal(&server, &key, Some("correct horse")).await;
    assert_eq!(
        (status, revealed["value"].as_str()),
        (StatusCode::OK, Some("guarded"))
    );

    // The limit is really one: after the look-ups, a single wrong passphrase burns a secret.
    let key = text(
        &share(&server, "guarded", Some("correct horse")).await,
        "secret_key",
    );
    assert_rest_status(&rest_status(&server, &key).await, &key, true);
    let wrong = rest_reveal(&server, &key, Some("wrong")).await;
    assert_rest_error(&wrong, ErrorKind::Validation, Some("passphrase"));
    assert_rest_error(&rest_status(&server, &key).await, ErrorKind::NotFound, None);
}

async fn gone_secrets_are_the_same_not_found_as_a_reveal(backend: Backend) {
    let server = TestServer::start(backend).await;
    let revealed = text(&share(&server, "read once", None).await, "secret_key");
    assert_eq!(
        rest_reveal(&server, &revealed, None).await.0,
        StatusCode::OK
    );
    let burned_receipt = share(&server, "burned", None).await;
    let burned = text(&burned_receipt, "secret_key");
    let burn = server
        .http
        .post(server.api(&format!(
            "/private/{}/burn",
            text(&burned_receipt, "metadata_key")
        )))
        .send()
        .await
        .expect("burn");
    assert_eq!(burn.status(), StatusCode::OK);
    let never_shared = "0123456789abcdefghijklmnopqrstu".to_owned();
    let malformed = "not-a-key".to_owned();

    for key in [revealed, burned, never_shared, malformed] {
        let reveal = rest_reveal(&server, &key, None).await;
        assert_rest_error(&reveal, ErrorKind::NotFound, None);
        for path in [format!("/secret/{key}/status"), format!("/secret/{key}")] {
            let status = rest_get(&server, &path).await;
            assert_rest_error(&status, ErrorKind::NotFound, None);
            assert_eq!(status.1["message"], reveal.1["message"], "{path}");
        }
        let grpc_reveal = server
            .grpc()
            .await
            .reveal_secret(grpc_reveal_request(&key, None))
            .await
            .expect_err("gone");
        let grpc_status = grpc_status(&server, &key).await.expect_err("gone");
        assert_grpc_error(&grpc_status, ErrorKind::NotFound, None);
        assert_eq!(grpc_status.message(), grpc_reveal.message());
        assert_eq!(grpc_status.message(), reveal.1["message"]);
    }
}

/// What link unfurlers and mail scanners send: Slack, Facebook, and Microsoft Defender's Safe
/// Links, which fetches as a desktop Chrome.
const BOT_USER_AGENTS: [&str; 4] = [
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
     Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
    "Twitterbot/1.0",
];

async fn get_and_head_of_secret_urls_never_burn(backend: Backend) {
    let server = TestServer::start(backend).await;
    for passphrase in [None, Some("correct horse")] {
        let value = "do not unfurl me";
        let key = text(&share(&server, value, passphrase).await, "secret_key");
        let looked_up = [
            format!("{}/api/v1/secret/{key}", server.http_base),
            format!("{}/api/v1/secret/{key}/status", server.http_base),
            format!(
                "{}/api/v1/secret/{key}?passphrase=correct+horse",
                server.http_base
            ),
        ];
        // The link people are sent: the page that says a secret is waiting, never its value.
        let page = format!("{}/secret/{key}", server.http_base);
        let elsewhere = [format!("{}/api/v1/secret/{key}/", server.http_base)];
        for user_agent in BOT_USER_AGENTS {
            for url in looked_up.iter().chain([&page]).chain(&elsewhere) {
                let get = server
                    .http
                    .get(url)
                    .header(USER_AGENT, user_agent)
                    .send()
                    .await
                    .expect("GET");
                let status = get.status();
                let body = get.text().await.expect("body");
                assert!(!body.contains(value), "GET {url} showed the value: {body}");
                if looked_up.contains(url) {
                    let body: Value = serde_json::from_str(&body).expect("JSON");
                    assert_rest_status(&(status, body), &key, passphrase.is_some());
                } else if url == &page {
                    assert_eq!(status, StatusCode::OK, "GET {url}: {body}");
                    assert!(
                        body.contains("id=\"one-time-warning\""),
                        "GET {url}: {body}"
                    );
                } else {
                    assert_eq!(status, StatusCode::NOT_FOUND, "GET {url}: {body}");
                }
                let head = server
                    .http
                    .head(url)
                    .header(USER_AGENT, user_agent)
                    .send()
                    .await
                    .expect("HEAD");
                let expected = if looked_up.contains(url) || url == &page {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                };
                assert_eq!(head.status(), expected, "HEAD {url}");
            }
        }
        let (status, revealed) = rest_reveal(&server, &key, passphrase).await;
        assert_eq!(
            (status, revealed["value"].as_str()),
            (StatusCode::OK, Some(value)),
            "the secret survived every GET and HEAD"
        );
    }
}

async fn status_is_rate_limited_with_reveals(backend: Backend) {
    // Rate limits are counted per client address in the store: a Redis of this test's own, so
    // no other suite's requests from this address count here.
    let backend = match backend {
        Backend::Redis(_) => Backend::Redis(TestRedis::start_own()),
        memory => memory,
    };
    // Three reveal-class requests per minute: the ones below take well under a second, so the
    // window cannot slide under them even on a machine many times slower.
    let server = TestServer::start_with(backend, |config| {
        config.rate_limit_reveal = 3;
        config.rate_limit_create = 0;
    })
    .await;
    let key = text(&share(&server, "limited", None).await, "secret_key");
    assert_rest_status(&rest_status(&server, &key).await, &key, false);
    assert_grpc_status(
        &grpc_status(&server, &key).await.expect("status"),
        &key,
        false,
    );
    assert_rest_status(
        &rest_get(&server, &format!("/secret/{key}")).await,
        &key,
        false,
    );

    let limited = server
        .http
        .get(server.api(&format!("/secret/{key}/status")))
        .send()
        .await
        .expect("status");
    let retry_after: u64 = limited
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok()?.parse().ok())
        .expect("Retry-After seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_rest_error(&json_of(limited).await, ErrorKind::RateLimited, None);
    let status = grpc_status(&server, &key).await.expect_err("limited");
    assert_grpc_error(&status, ErrorKind::RateLimited, None);
    // Look-ups and reveals share one budget: a reveal is refused too, before it burns anything.
    assert_rest_error(
        &rest_reveal(&server, &key, None).await,
        ErrorKind::RateLimited,
        None,
    );
    // Creating is another class.
    share(&server, "another class", None).await;
}

/// Starts a server with customers on the store of `backend` (which the caller keeps, so that
/// several servers can use one Redis in turn).
async fn start_on(backend: &Backend, adjust: impl FnOnce(&mut Config)) -> TestServer {
    let redis_url = match backend {
        Backend::Redis(redis) => Some(redis.url()),
        Backend::Memory => None,
    };
    TestServer::start_with_customers(Backend::Memory, |config| {
        if let Some(url) = redis_url {
            config.redis_url = Some(url);
            config.master_key = Some(test_master_key());
            config.redis_timeout_ms = 500;
        }
        adjust(config);
    })
    .await
}

/// A REST answer with the header that says how to authenticate.
struct Answer {
    status: StatusCode,
    body: Value,
    www_authenticate: Option<String>,
}

async fn send(request: reqwest::RequestBuilder, authorization: Option<&str>) -> Answer {
    let request = match authorization {
        Some(value) => request.header("authorization", value),
        None => request,
    };
    let response = request.send().await.expect("request");
    let www_authenticate = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|value| value.to_str().expect("text").to_owned());
    let (status, body) = json_of(response).await;
    Answer {
        status,
        body,
        www_authenticate,
    }
}

/// Asserts that an anonymous REST call passed (`allowed`) or was a 401 asking for Basic.
fn assert_rest_allowed(answer: &Answer, allowed: bool, what: &str) {
    if allowed {
        assert_eq!(answer.status, StatusCode::OK, "{what}: {}", answer.body);
    } else {
        assert_rest_error(
            &(answer.status, answer.body.clone()),
            ErrorKind::Unauthorized,
            None,
        );
        assert!(
            answer
                .www_authenticate
                .as_deref()
                .is_some_and(|value| value.starts_with("Basic")),
            "{what}: {:?}",
            answer.www_authenticate
        );
    }
}

fn assert_grpc_allowed<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
    allowed: bool,
    what: &str,
) {
    match result {
        Ok(_) => assert!(allowed, "{what} passed anonymously"),
        Err(status) if allowed => panic!("{what}: {status:?}"),
        Err(status) => assert_grpc_error(&status, ErrorKind::Unauthorized, None),
    }
}

async fn access_matrix(backend: Backend) {
    let alice = basic_auth(ALICE.0, ALICE.1);
    let bob = basic_auth(BOB.0, BOB.1);
    // (BURNBOX_ALLOW_ANONYMOUS, BURNBOX_ALLOW_ANONYMOUS_CREATE, anonymous creation in effect)
    let cases = [
        (true, None, true),
        (true, Some(true), true),
        (true, Some(false), false),
        (false, None, false),
        (false, Some(false), false),
        (false, Some(true), true),
    ];
    for (read, create_setting, create) in cases {
        let case = format!("anonymous={read} anonymous_create={create_setting:?}");
        let server = start_on(&backend, |config| {
            config.allow_anonymous = read;
            config.allow_anonymous_create = create_setting;
        })
        .await;
        let mut client = server.grpc().await;

        // The service status is open to anyone, always.
        let status = send(server.http.get(server.api("/status")), None).await;
        assert_rest_allowed(&status, true, &case);
        assert_grpc_allowed(
            client
                .status(grpc_request(pb::StatusRequest {}, None))
                .await,
            true,
            &case,
        );

        // Creating, anonymously.
        let share = || {
            server
                .http
                .post(server.api("/share"))
                .form(&[("secret", "anonymous")])
        };
        assert_rest_allowed(&send(share(), None).await, create, &case);
        let generate = send(server.http.post(server.api("/generate")), None).await;
        assert_rest_allowed(&generate, create, &case);
        assert_grpc_allowed(
            client
                .share_secret(grpc_request(grpc_share_request("anonymous"), None))
                .await,
            create,
            &case,
        );
        assert_grpc_allowed(
            client
                .generate_secret(grpc_request(pb::GenerateSecretRequest::default(), None))
                .await,
            create,
            &case,
        );
        // Wrong credentials are never anonymous use.
        assert_rest_allowed(
            &send(share(), Some(&basic_auth(ALICE.0, "wrong"))).await,
            false,
            &case,
        );

        // A customer creates in every mode.
        let by_alice = send(share(), Some(&alice)).await;
        assert_rest_allowed(&by_alice, true, &case);
        let rest_key = text(&by_alice.body, "secret_key");
        let generated = client
            .generate_secret(grpc_request(
                pb::GenerateSecretRequest::default(),
                Some(&alice),
            ))
            .await
            .expect("alice generates")
            .into_inner();
        let grpc_key = generated.secret_key.expect("secret key");

        // Looking up and revealing, anonymously: whoever holds the link, when reading is open.
        let looked_up = send(
            server
                .http
                .get(server.api(&format!("/secret/{rest_key}/status"))),
            None,
        )
        .await;
        assert_rest_allowed(&looked_up, read, &case);
        assert_grpc_allowed(
            client
                .get_secret_status(grpc_request(
                    pb::GetSecretStatusRequest {
                        key: grpc_key.clone(),
                    },
                    None,
                ))
                .await,
            read,
            &case,
        );
        let revealed = send(
            server.http.post(server.api(&format!("/secret/{rest_key}"))),
            None,
        )
        .await;
        assert_rest_allowed(&revealed, read, &case);
        assert_grpc_allowed(
            client
                .reveal_secret(grpc_request(grpc_reveal_request(&grpc_key, None), None))
                .await,
            read,
            &case,
        );
        if !read {
            // Refused callers burned nothing: another customer reveals both.
            let revealed = send(
                server.http.post(server.api(&format!("/secret/{rest_key}"))),
                Some(&bob),
            )
            .await;
            assert_eq!(revealed.body["value"], "anonymous", "{case}");
            client
                .reveal_secret(grpc_request(
                    grpc_reveal_request(&grpc_key, None),
                    Some(&bob),
                ))
                .await
                .expect("bob reveals");
        }
        server.shutdown().await;
    }
}
