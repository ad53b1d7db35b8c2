//! End to end for the rest of the v1 API: receipts, burn, generate and the aliases Onetime
//! Secret clients use, over REST and gRPC, on both stores.

use std::time::Instant;

use burnbox_core::ErrorKind;
use burnbox_spec::v1 as pb;
use burnbox_tests::{
    Backend, TestServer, assert_grpc_error, assert_rest_error, grpc_reveal_request, json_of,
    on_both_stores, record_key_name, rest_get, rest_reveal, rest_share,
};
use reqwest::StatusCode;
use serde_json::Value;

on_both_stores!(
    receipt_follows_the_secret_over_rest,
    receipt_follows_the_secret_over_grpc,
    burn_destroys_an_unread_secret,
    protected_secrets_need_their_passphrase_to_burn,
    generate_returns_the_password_once,
    onetime_secret_aliases_are_served,
);

async fn rest_post(server: &TestServer, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    json_of(
        server
            .http
            .post(server.api(path))
            .form(form)
            .send()
            .await
            .expect("request"),
    )
    .await
}

/// A receipt whose secret was revealed, burned or expired: it no longer shows the secret key
/// or its ttl, and the secret can be neither revealed nor burned.
async fn assert_secret_gone(
    server: &TestServer,
    receipt: &Value,
    secret_key: &str,
    metadata_key: &str,
) {
    assert!(
        receipt.get("secret_key").is_none() && receipt.get("secret_ttl").is_none(),
        "{receipt}"
    );
    assert_rest_error(
        &rest_reveal(server, secret_key, None).await,
        ErrorKind::NotFound,
        None,
    );
    let burn = rest_post(server, &format!("/private/{metadata_key}/burn"), &[]).await;
    assert_rest_error(&burn, ErrorKind::NotFound, None);
}

fn key(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {value}"))
        .to_owned()
}

/// Asserts that `left` seconds remain of a `ttl` that began after `since`: at most `ttl`, at
/// least `ttl` less the seconds elapsed since (and one for the rounding to whole seconds).
fn assert_seconds_left(left: Option<i64>, ttl: i64, since: Instant) {
    let elapsed = i64::try_from(since.elapsed().as_secs()).expect("seconds fit");
    assert!(
        left.is_some_and(|left| (ttl - elapsed - 1..=ttl).contains(&left)),
        "{left:?} of {ttl} s left after {elapsed} s"
    );
}

async fn receipt_follows_the_secret_over_rest(backend: Backend) {
    let server = TestServer::start(backend).await;
    let shared_at = Instant::now();
    let (_, shared) = rest_share(&server, &[("secret", "tracked"), ("ttl", "600")]).await;
    let (secret_key, metadata_key) = (key(&shared, "secret_key"), key(&shared, "metadata_key"));

    let (status, receipt) = rest_post(&server, &format!("/private/{metadata_key}"), &[]).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(
        (receipt["state"].as_str(), receipt["secret_key"].as_str()),
        (Some("new"), Some(secret_key.as_str()))
    );
    assert_eq!(receipt["metadata_key"], metadata_key.as_str());
    assert_seconds_left(receipt["secret_ttl"].as_i64(), 600, shared_at);
    assert_seconds_left(receipt["metadata_ttl"].as_i64(), 1200, shared_at);
    assert!(
        receipt.get("received").is_none() && receipt.get("value").is_none(),
        "{receipt}"
    );

    assert_eq!(
        rest_reveal(&server, &secret_key, None).await.0,
        StatusCode::OK
    );
    let (status, receipt) = rest_get(&server, &format!("/private/{metadata_key}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(receipt["state"], "received");
    assert!(
        receipt["received"]
            .as_i64()
            .is_some_and(|at| at >= receipt["created"].as_i64().unwrap_or(i64::MAX))
    );
    assert_eq!(receipt["updated"], receipt["received"]);
    assert_secret_gone(&server, &receipt, &secret_key, &metadata_key).await;
}

async fn receipt_follows_the_secret_over_grpc(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut client = server.grpc().await;
    let shared_at = Instant::now();
    let shared = client
        .share_secret(pb::ShareSecretRequest {
            secret: "tracked".into(),
            ttl: Some(600),
            ..Default::default()
        })
        .await
        .expect("share")
        .into_inner();
    let secret_key = shared.secret_key.clone().expect("secret key");
    let get_receipt = pb::GetReceiptRequest {
        metadata_key: shared.metadata_key.clone(),
    };
    let receipt = client
        .get_receipt(get_receipt.clone())
        .await
        .expect("receipt")
        .into_inner();
    assert_eq!(
        (receipt.state.as_str(), receipt.secret_key.as_deref()),
        ("new", Some(secret_key.as_str()))
    );
    assert_seconds_left(receipt.secret_ttl, 600, shared_at);

    client
        .reveal_secret(grpc_reveal_request(&secret_key, None))
        .await
        .expect("reveal");
    let receipt = client
        .get_receipt(get_receipt)
        .await
        .expect("receipt")
        .into_inner();
    assert_eq!(receipt.state, "received");
    assert!(
        receipt.received.is_some() && receipt.secret_key.is_none() && receipt.secret_ttl.is_none()
    );

    let status = client
        .reveal_secret(grpc_reveal_request(&secret_key, None))
        .await
        .expect_err("gone");
    assert_grpc_error(&status, ErrorKind::NotFound, None);
    let burn = pb::BurnSecretRequest {
        metadata_key: shared.metadata_key,
        passphrase: None,
    };
    let status = client.burn_secret(burn).await.expect_err("already read");
    assert_grpc_error(&status, ErrorKind::NotFound, None);
}

async fn burn_destroys_an_unread_secret(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut client = server.grpc().await;

    // Shared over REST, burned over REST.
    let (_, shared) = rest_share(&server, &[("secret", "never to be read")]).await;
    let (secret_key, metadata_key) = (key(&shared, "secret_key"), key(&shared, "metadata_key"));
    let (status, burned) = rest_post(&server, &format!("/private/{metadata_key}/burn"), &[]).await;
    assert_eq!(status, StatusCode::OK, "{burned}");
    assert_eq!(burned["secret_shortkey"], secret_key[..8]);
    assert_eq!(burned["state"]["state"], "burned");
    assert!(burned["state"]["burned"].as_i64().is_some());
    assert!(burned["state"].get("secret_key").is_none(), "{burned}");
    assert_rest_error(
        &rest_reveal(&server, &secret_key, None).await,
        ErrorKind::NotFound,
        None,
    );
    let again = rest_post(&server, &format!("/private/{metadata_key}/burn"), &[]).await;
    assert_rest_error(&again, ErrorKind::NotFound, None);
    let (_, receipt) = rest_get(&server, &format!("/private/{metadata_key}")).await;
    assert_eq!(receipt["state"], "burned");

    // Shared over gRPC, burned over gRPC.
    let shared = client
        .share_secret(burnbox_tests::grpc_share_request("never either"))
        .await
        .expect("share")
        .into_inner();
    let secret_key = shared.secret_key.expect("key");
    let burned = client
        .burn_secret(pb::BurnSecretRequest {
            metadata_key: shared.metadata_key.clone(),
            passphrase: None,
        })
        .await
        .expect("burn")
        .into_inner();
    assert_eq!(burned.secret_shortkey, secret_key[..8]);
    assert_eq!(burned.state.expect("receipt").state, "burned");
    let status = client
        .reveal_secret(grpc_reveal_request(&secret_key, None))
        .await
        .expect_err("burned");
    assert_grpc_error(&status, ErrorKind::NotFound, None);
}

async fn protected_secrets_need_their_passphrase_to_burn(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut client = server.grpc().await;
    let (_, shared) = rest_share(
        &server,
        &[("secret", "guarded"), ("passphrase", "burn-word")],
    )
    .await;
    let (secret_key, metadata_key) = (key(&shared, "secret_key"), key(&shared, "metadata_key"));
    let path = format!("/private/{metadata_key}/burn");

    assert_rest_error(
        &rest_post(&server, &path, &[]).await,
        ErrorKind::Validation,
        Some("passphrase"),
    );
    assert_rest_error(
        &rest_post(&server, &path, &[("passphrase", "wrong")]).await,
        ErrorKind::Validation,
        Some("passphrase"),
    );
    let wrong = pb::BurnSecretRequest {
        metadata_key: metadata_key.clone(),
        passphrase: Some("wrong".into()),
    };
    assert_grpc_error(
        &client.burn_secret(wrong).await.expect_err("wrong"),
        ErrorKind::Validation,
        Some("passphrase"),
    );
    let (_, receipt) = rest_get(&server, &format!("/private/{metadata_key}")).await;
    assert_eq!(
        receipt["state"], "new",
        "failed burns leave the secret in place"
    );

    let right = pb::BurnSecretRequest {
        metadata_key,
        passphrase: Some("burn-word".into()),
    };
    let burned = client.burn_secret(right).await.expect("burn").into_inner();
    assert_eq!(burned.state.expect("receipt").state, "burned");
    let revealed = rest_reveal(&server, &secret_key, Some("burn-word")).await;
    assert_rest_error(&revealed, ErrorKind::NotFound, None);
}

async fn generate_returns_the_password_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut client = server.grpc().await;

    let (status, generated) = rest_post(&server, "/generate", &[]).await;
    assert_eq!(status, StatusCode::OK, "{generated}");
    let password = key(&generated, "value");
    assert_eq!(password.chars().count(), 12);
    assert_eq!(generated["state"], "new");
    let (_, receipt) = rest_get(
        &server,
        &format!("/private/{}", key(&generated, "metadata_key")),
    )
    .await;
    assert!(
        receipt.get("value").is_none(),
        "the password is shown in the generate answer only"
    );
    let (status, revealed) = rest_reveal(&server, &key(&generated, "secret_key"), None).await;
    assert_eq!(
        (status, revealed["value"].as_str()),
        (StatusCode::OK, Some(password.as_str()))
    );

    let generated = client
        .generate_secret(pb::GenerateSecretRequest {
            length: Some(40),
            passphrase: Some("pw".into()),
            ttl: Some(300),
        })
        .await
        .expect("generate")
        .into_inner();
    let password = generated.value.expect("value");
    assert_eq!(
        (
            password.chars().count(),
            generated.ttl,
            generated.passphrase_required
        ),
        (40, 300, true)
    );
    let revealed = client
        .reveal_secret(grpc_reveal_request(
            &generated.secret_key.expect("key"),
            Some("pw"),
        ))
        .await
        .expect("reveal");
    assert_eq!(revealed.into_inner().value, password);

    for length in ["3", "129", "lots"] {
        let answer = rest_post(&server, "/generate", &[("length", length)]).await;
        assert_rest_error(&answer, ErrorKind::Validation, Some("length"));
    }
    let status = client
        .generate_secret(pb::GenerateSecretRequest {
            length: Some(3),
            ..Default::default()
        })
        .await
        .expect_err("too short");
    assert_grpc_error(&status, ErrorKind::Validation, Some("length"));
}

async fn onetime_secret_aliases_are_served(backend: Backend) {
    let server = TestServer::start(backend).await;
    for prefix in ["private", "receipt", "metadata"] {
        let (_, shared) = rest_post(&server, "/create", &[("secret", "aliased")]).await;
        let metadata_key = key(&shared, "metadata_key");
        let (status, by_post) = rest_post(&server, &format!("/{prefix}/{metadata_key}"), &[]).await;
        let (_, by_get) = rest_get(&server, &format!("/{prefix}/{metadata_key}")).await;
        assert_eq!(
            (status, by_post["state"].as_str()),
            (StatusCode::OK, Some("new")),
            "{prefix}"
        );
        assert_eq!(by_get["metadata_key"], metadata_key.as_str(), "{prefix}");
        let (status, burned) =
            rest_post(&server, &format!("/{prefix}/{metadata_key}/burn"), &[]).await;
        assert_eq!(
            (status, burned["state"]["state"].as_str()),
            (StatusCode::OK, Some("burned")),
            "{prefix}"
        );
    }
}

#[tokio::test]
async fn unknown_and_malformed_metadata_keys_are_not_found() {
    let server = TestServer::start(Backend::Memory).await;
    let mut client = server.grpc().await;
    for metadata_key in ["0".repeat(burnbox_core::KEY_LENGTH), "nope".into()] {
        assert_rest_error(
            &rest_get(&server, &format!("/private/{metadata_key}")).await,
            ErrorKind::NotFound,
            None,
        );
        let burn = rest_post(&server, &format!("/private/{metadata_key}/burn"), &[]).await;
        assert_rest_error(&burn, ErrorKind::NotFound, None);
        let status = client
            .get_receipt(pb::GetReceiptRequest {
                metadata_key: metadata_key.clone(),
            })
            .await
            .expect_err("unknown");
        assert_grpc_error(&status, ErrorKind::NotFound, None);
        let status = client
            .burn_secret(pb::BurnSecretRequest {
                metadata_key,
                passphrase: None,
            })
            .await
            .expect_err("unknown");
        assert_grpc_error(&status, ErrorKind::NotFound, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_that_expired_unread_shows_as_expired() {
    let server = TestServer::start(Backend::redis()).await;
    let (_, shared) = rest_share(&server, &[("secret", "too late")]).await;
    let (secret_key, metadata_key) = (key(&shared, "secret_key"), key(&shared, "metadata_key"));
    // Expire the record the way Redis does at its TTL: it disappears, the receipt stays.
    let Backend::Redis(redis) = &server.backend else {
        unreachable!()
    };
    let mut connection = redis.connection().await;
    let deleted: i64 = redis::cmd("DEL")
        .arg(record_key_name(&secret_key))
        .query_async(&mut connection)
        .await
        .expect("DEL");
    assert_eq!(deleted, 1, "the record was there");

    let (status, receipt) = rest_get(&server, &format!("/private/{metadata_key}")).await;
    assert_eq!(
        (status, receipt["state"].as_str()),
        (StatusCode::OK, Some("expired"))
    );
    assert_secret_gone(&server, &receipt, &secret_key, &metadata_key).await;
}
