//! Customers: API tokens over REST (HTTP Basic) and gRPC (`authorization` metadata),
//! authcheck, ownership of receipts, the recent list, and closing the server to anonymous use.

use burnbox_core::ErrorKind;
use burnbox_spec::v1 as pb;
use burnbox_tests::{
    ALICE, BOB, Backend, TestServer, assert_grpc_error, assert_rest_error, basic_auth,
    grpc_request, grpc_share_request, json_of, on_both_stores,
};
use reqwest::StatusCode;
use serde_json::Value;

on_both_stores!(
    authcheck_accepts_only_valid_credentials,
    receipts_belong_to_their_customer,
    recent_lists_only_the_callers_receipts,
);

fn alice() -> String {
    basic_auth(ALICE.0, ALICE.1)
}

fn bob() -> String {
    basic_auth(BOB.0, BOB.1)
}

async fn send(
    request: reqwest::RequestBuilder,
    authorization: Option<&str>,
) -> (StatusCode, Value) {
    let request = match authorization {
        Some(value) => request.header("authorization", value),
        None => request,
    };
    json_of(request.send().await.expect("request")).await
}

async fn authcheck_accepts_only_valid_credentials(backend: Backend) {
    let server = TestServer::start_with_customers(backend, |_| {}).await;
    let url = server.api("/authcheck");
    let (status, body) = send(server.http.get(&url), Some(&alice())).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("nominal"))
    );
    assert_eq!(
        send(server.http.get(&url), Some(&bob())).await.0,
        StatusCode::OK,
        "hashed token"
    );

    let refused = [
        None,
        Some(basic_auth(ALICE.0, "wrong")),
        Some(basic_auth("mallory", ALICE.1)),
        Some(basic_auth(ALICE.0, BOB.1)),
        Some("Bearer alice-token-1".to_owned()),
        Some("Basic not-base64!".to_owned()),
    ];
    for authorization in refused {
        let response = server
            .http
            .get(&url)
            .header("authorization", authorization.clone().unwrap_or_default())
            .send()
            .await
            .expect("authcheck");
        let challenge = response.headers().get("www-authenticate").cloned();
        let answer = json_of(response).await;
        assert_rest_error(&answer, ErrorKind::Unauthorized, None);
        assert_eq!(
            challenge.as_ref().and_then(|value| value.to_str().ok()),
            Some("Basic realm=\"burnbox\"")
        );
        assert!(!answer.1.to_string().contains(ALICE.1), "{authorization:?}");
    }

    // Wrong credentials are never treated as anonymous, on either transport.
    let (status, _) = send(
        server
            .http
            .post(server.api("/share"))
            .form(&[("secret", "s")]),
        Some(&basic_auth(ALICE.0, "wrong")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mut client = server.grpc().await;
    let status = client
        .share_secret(grpc_request(
            grpc_share_request("s"),
            Some(&basic_auth(ALICE.0, "wrong")),
        ))
        .await
        .expect_err("wrong token");
    assert_grpc_error(&status, ErrorKind::Unauthorized, None);
    let receipt = client
        .share_secret(grpc_request(grpc_share_request("s"), Some(&alice())))
        .await
        .expect("right token")
        .into_inner();
    assert_eq!(receipt.custid, "alice");
}

async fn receipts_belong_to_their_customer(backend: Backend) {
    let server = TestServer::start_with_customers(backend, |_| {}).await;
    let mut client = server.grpc().await;
    let (status, shared) = send(
        server
            .http
            .post(server.api("/share"))
            .form(&[("secret", "alice's")]),
        Some(&alice()),
    )
    .await;
    assert_eq!(
        (status, shared["custid"].as_str()),
        (StatusCode::OK, Some("alice"))
    );
    let metadata_key = shared["metadata_key"]
        .as_str()
        .expect("metadata key")
        .to_owned();
    let receipt_url = server.api(&format!("/private/{metadata_key}"));
    let burn_url = server.api(&format!("/private/{metadata_key}/burn"));

    assert_rest_error(
        &send(server.http.get(&receipt_url), None).await,
        ErrorKind::Unauthorized,
        None,
    );
    assert_rest_error(
        &send(server.http.get(&receipt_url), Some(&bob())).await,
        ErrorKind::Forbidden,
        None,
    );
    assert_rest_error(
        &send(server.http.post(&burn_url), None).await,
        ErrorKind::Unauthorized,
        None,
    );
    assert_rest_error(
        &send(server.http.post(&burn_url), Some(&bob())).await,
        ErrorKind::Forbidden,
        None,
    );
    let get = || pb::GetReceiptRequest {
        metadata_key: metadata_key.clone(),
    };
    assert_grpc_error(
        &client
            .get_receipt(grpc_request(get(), None))
            .await
            .expect_err("anonymous"),
        ErrorKind::Unauthorized,
        None,
    );
    assert_grpc_error(
        &client
            .get_receipt(grpc_request(get(), Some(&bob())))
            .await
            .expect_err("bob"),
        ErrorKind::Forbidden,
        None,
    );
    let burn = || pb::BurnSecretRequest {
        metadata_key: metadata_key.clone(),
        passphrase: None,
    };
    assert_grpc_error(
        &client
            .burn_secret(grpc_request(burn(), Some(&bob())))
            .await
            .expect_err("bob"),
        ErrorKind::Forbidden,
        None,
    );

    let receipt = client
        .get_receipt(grpc_request(get(), Some(&alice())))
        .await
        .expect("alice")
        .into_inner();
    assert_eq!(
        (receipt.state.as_str(), receipt.custid.as_str()),
        ("new", "alice")
    );
    let (status, burned) = send(server.http.post(&burn_url), Some(&alice())).await;
    assert_eq!(
        (status, burned["state"]["state"].as_str()),
        (StatusCode::OK, Some("burned"))
    );

    // An anonymous receipt is anyone's who holds its key, customers included.
    let (_, anonymous) = send(
        server
            .http
            .post(server.api("/share"))
            .form(&[("secret", "anyone's")]),
        None,
    )
    .await;
    assert_eq!(anonymous["custid"], "anon");
    let url = server.api(&format!(
        "/private/{}",
        anonymous["metadata_key"].as_str().expect("key")
    ));
    assert_eq!(
        send(server.http.get(&url), Some(&bob())).await.0,
        StatusCode::OK
    );
    assert_eq!(send(server.http.get(&url), None).await.0, StatusCode::OK);
}

async fn recent_lists_only_the_callers_receipts(backend: Backend) {
    let server = TestServer::start_with_customers(backend, |_| {}).await;
    let mut client = server.grpc().await;
    let mut alices = Vec::new();
    for secret in ["one", "two", "three"] {
        let (_, shared) = send(
            server
                .http
                .post(server.api("/share"))
                .form(&[("secret", secret)]),
            Some(&alice()),
        )
        .await;
        alices.push(shared["metadata_key"].as_str().expect("key").to_owned());
    }
    let generated = client
        .generate_secret(grpc_request(
            pb::GenerateSecretRequest::default(),
            Some(&alice()),
        ))
        .await
        .expect("generate")
        .into_inner();
    alices.push(generated.metadata_key);
    send(
        server
            .http
            .post(server.api("/share"))
            .form(&[("secret", "bob's")]),
        Some(&bob()),
    )
    .await;
    send(
        server
            .http
            .post(server.api("/share"))
            .form(&[("secret", "nobody's")]),
        None,
    )
    .await;
    // A revealed secret stays in the list, as received.
    let (_, first) = send(
        server
            .http
            .get(server.api(&format!("/private/{}", alices[0]))),
        Some(&alice()),
    )
    .await;
    let first_secret_key = first["secret_key"].as_str().expect("secret key");
    send(
        server
            .http
            .post(server.api(&format!("/secret/{first_secret_key}"))),
        None,
    )
    .await;

    alices.reverse();
    for path in ["/private/recent", "/receipt/recent", "/metadata/recent"] {
        let (status, recent) = send(server.http.get(server.api(path)), Some(&alice())).await;
        assert_eq!(status, StatusCode::OK, "{path}: {recent}");
        let receipts = recent.as_array().expect("a list");
        let keys: Vec<_> = receipts
            .iter()
            .map(|receipt| receipt["metadata_key"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(keys, alices, "{path}: newest first, alice's only");
        assert!(
            receipts.iter().all(
                |receipt| receipt.get("secret_key").is_none() && receipt.get("value").is_none()
            )
        );
        assert_eq!(
            receipts.last().map(|receipt| receipt["state"].as_str()),
            Some(Some("received"))
        );
    }
    let listed = client
        .list_recent_receipts(grpc_request(
            pb::ListRecentReceiptsRequest {},
            Some(&alice()),
        ))
        .await
        .expect("recent")
        .into_inner();
    let keys: Vec<_> = listed
        .receipts
        .iter()
        .map(|receipt| receipt.metadata_key.as_str())
        .collect();
    assert_eq!(keys, alices);
    assert!(
        listed
            .receipts
            .iter()
            .all(|receipt| receipt.secret_key.is_none())
    );

    let (_, bobs) = send(server.http.get(server.api("/private/recent")), Some(&bob())).await;
    assert_eq!(bobs.as_array().map(Vec::len), Some(1));
    assert_rest_error(
        &send(server.http.get(server.api("/private/recent")), None).await,
        ErrorKind::Unauthorized,
        None,
    );
    let status = client
        .list_recent_receipts(grpc_request(pb::ListRecentReceiptsRequest {}, None))
        .await
        .expect_err("anonymous");
    assert_grpc_error(&status, ErrorKind::Unauthorized, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_anonymous_use_everything_but_status_needs_credentials() {
    let server =
        TestServer::start_with_customers(Backend::Memory, |config| config.allow_anonymous = false)
            .await;
    let mut client = server.grpc().await;
    let (status, body) = send(server.http.get(server.api("/status")), None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("nominal"))
    );
    client
        .status(grpc_request(pb::StatusRequest {}, None))
        .await
        .expect("status stays open");

    let share = send(
        server
            .http
            .post(server.api("/share"))
            .form(&[("secret", "s")]),
        None,
    )
    .await;
    assert_rest_error(&share, ErrorKind::Unauthorized, None);
    let generate = send(server.http.post(server.api("/generate")), None).await;
    assert_rest_error(&generate, ErrorKind::Unauthorized, None);
    let status = client
        .share_secret(grpc_request(grpc_share_request("s"), None))
        .await
        .expect_err("closed");
    assert_grpc_error(&status, ErrorKind::Unauthorized, None);

    let (status, shared) = send(
        server
            .http
            .post(server.api("/share"))
            .form(&[("secret", "s")]),
        Some(&alice()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let reveal_url = server.api(&format!(
        "/secret/{}",
        shared["secret_key"].as_str().expect("key")
    ));
    assert_rest_error(
        &send(server.http.post(&reveal_url), None).await,
        ErrorKind::Unauthorized,
        None,
    );
    let (status, revealed) = send(server.http.post(&reveal_url), Some(&bob())).await;
    assert_eq!(
        (status, revealed["value"].as_str()),
        (StatusCode::OK, Some("s")),
        "any customer may reveal"
    );
}
