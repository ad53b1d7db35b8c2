//! What an attacker gets: a Redis dump holds nothing readable, master keys rotate, guessing a
//! passphrase burns the secret, floods are rate limited across replicas, bodies are capped.

use burnbox_core::ErrorKind;
use burnbox_spec::v1 as pb;
use burnbox_tests::{
    ALICE, BOB, Backend, TestRedis, TestServer, assert_grpc_error, assert_rest_error, basic_auth,
    bytes_contain, grpc_reveal_request, json_of, rest_reveal, rest_share, test_master_key,
    text_field,
};
use reqwest::StatusCode;
use tonic_types::StatusExt;

fn other_master_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([9u8; 32])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_dump_holds_no_value_passphrase_or_key() {
    let server =
        TestServer::start_with_customers(Backend::Redis(TestRedis::start_own()), |_| {}).await;
    let alice = basic_auth(ALICE.0, ALICE.1);
    let mut sensitive = vec![ALICE.1.to_owned()];
    let cases = [
        (
            Some(alice.as_str()),
            vec![("secret", "plain-value-of-alice-1c9e")],
        ),
        (
            Some(alice.as_str()),
            vec![
                ("secret", "guarded-value-of-alice-77f0"),
                ("passphrase", "alice-pass-phrase-3d2a"),
            ],
        ),
        (None, vec![("secret", "anonymous-value-5b61")]),
        (
            None,
            vec![
                ("secret", "anonymous-guarded-value-e04d"),
                ("passphrase", "anon-pass-phrase-8812"),
            ],
        ),
    ];
    for (authorization, form) in cases {
        let mut request = server.http.post(server.api("/share")).form(&form);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let (status, receipt) = json_of(request.send().await.expect("share")).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        sensitive.extend(form.iter().map(|(_, value)| (*value).to_owned()));
        sensitive.push(text_field(&receipt, "secret_key"));
        sensitive.push(text_field(&receipt, "metadata_key"));
    }
    sensitive.extend(server.generate_sensitive(&alice).await.1);

    let Backend::Redis(redis) = &server.backend else {
        unreachable!()
    };
    let everything: Vec<u8> = redis
        .dump()
        .await
        .into_iter()
        .flat_map(|(name, bytes)| [name.into_bytes(), bytes])
        .flatten()
        .collect();
    assert!(
        everything.len() > 1000,
        "the dump holds the stored secrets ({} bytes)",
        everything.len()
    );
    for needle in &sensitive {
        assert!(
            !bytes_contain(&everything, needle),
            "the Redis dump contains {needle:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_written_under_the_previous_master_key_still_reveal() {
    let redis = TestRedis::start_own();
    let url = redis.url();
    let old = TestServer::start(Backend::Redis(redis)).await;
    let (_, before) = rest_share(&old, &[("secret", "written before the rotation")]).await;
    let (_, guarded) =
        rest_share(&old, &[("secret", "guarded before"), ("passphrase", "pw")]).await;

    let with_url = |url: String, current: String, previous: Option<String>| {
        move |config: &mut burnbox_server::Config| {
            config.redis_url = Some(url);
            config.master_key = Some(current);
            config.master_key_previous = previous;
        }
    };
    let rotated = TestServer::start_with(
        Backend::Memory,
        with_url(url.clone(), other_master_key(), Some(test_master_key())),
    )
    .await;
    let (status, receipt) = json_of(
        rotated
            .http
            .get(rotated.api(&format!("/private/{}", text_field(&before, "metadata_key"))))
            .send()
            .await
            .expect("receipt"),
    )
    .await;
    assert_eq!(
        (status, receipt["state"].as_str()),
        (StatusCode::OK, Some("new"))
    );
    let (status, revealed) = rest_reveal(&rotated, &text_field(&before, "secret_key"), None).await;
    assert_eq!(
        (status, revealed["value"].as_str()),
        (StatusCode::OK, Some("written before the rotation"))
    );
    let (status, revealed) =
        rest_reveal(&rotated, &text_field(&guarded, "secret_key"), Some("pw")).await;
    assert_eq!(
        (status, revealed["value"].as_str()),
        (StatusCode::OK, Some("guarded before"))
    );

    // New secrets are sealed with the new key: a server that knows only it reveals them.
    let (_, after) = rest_share(&rotated, &[("secret", "written after the rotation")]).await;
    let new_only =
        TestServer::start_with(Backend::Memory, with_url(url, other_master_key(), None)).await;
    let (status, revealed) = rest_reveal(&new_only, &text_field(&after, "secret_key"), None).await;
    assert_eq!(
        (status, revealed["value"].as_str()),
        (StatusCode::OK, Some("written after the rotation"))
    );
    drop(old);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_passphrase_attempts_burn_the_secret() {
    for backend in [Backend::Memory, Backend::redis()] {
        let server =
            TestServer::start_with(backend, |config| config.passphrase_max_attempts = 3).await;
        let mut client = server.grpc().await;
        let (_, shared) = rest_share(
            &server,
            &[("secret", "brute me"), ("passphrase", "the right one")],
        )
        .await;
        let (secret_key, metadata_key) = (
            text_field(&shared, "secret_key"),
            text_field(&shared, "metadata_key"),
        );

        let first = rest_reveal(&server, &secret_key, Some("guess 1")).await;
        assert_rest_error(&first, ErrorKind::Validation, Some("passphrase"));
        assert!(
            first.1["message"]
                .as_str()
                .unwrap_or_default()
                .contains("2 attempt(s) left"),
            "{}",
            first.1
        );
        let second = client
            .reveal_secret(grpc_reveal_request(&secret_key, Some("guess 2")))
            .await
            .expect_err("wrong");
        assert_grpc_error(&second, ErrorKind::Validation, Some("passphrase"));
        let burn = json_of(
            server
                .http
                .post(server.api(&format!("/private/{metadata_key}/burn")))
                .form(&[("passphrase", "guess 3")])
                .send()
                .await
                .expect("burn"),
        )
        .await;
        assert_rest_error(&burn, ErrorKind::Validation, Some("passphrase"));
        assert!(
            burn.1["message"]
                .as_str()
                .unwrap_or_default()
                .contains("has been burned"),
            "{}",
            burn.1
        );

        assert_rest_error(
            &rest_reveal(&server, &secret_key, Some("the right one")).await,
            ErrorKind::NotFound,
            None,
        );
        let receipt = client
            .get_receipt(pb::GetReceiptRequest { metadata_key })
            .await
            .expect("receipt")
            .into_inner();
        assert_eq!(receipt.state, "burned");
        assert!(receipt.burned.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passphrase_rules_apply_to_new_secrets() {
    let server = TestServer::start_with(Backend::Memory, |config| {
        config.passphrase_required = true;
        config.passphrase_min_length = 10;
    })
    .await;
    let mut client = server.grpc().await;
    assert_rest_error(
        &rest_share(&server, &[("secret", "s")]).await,
        ErrorKind::Validation,
        Some("passphrase"),
    );
    let short = rest_share(&server, &[("secret", "s"), ("passphrase", "too short")]).await;
    assert_rest_error(&short, ErrorKind::Validation, Some("passphrase"));
    let status = client
        .generate_secret(pb::GenerateSecretRequest::default())
        .await
        .expect_err("needs a passphrase");
    assert_grpc_error(&status, ErrorKind::Validation, Some("passphrase"));
    let (status, _) = rest_share(&server, &[("secret", "s"), ("passphrase", "long enough!")]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_shared_by_replicas_on_one_redis() {
    let redis = TestRedis::start_own();
    let url = redis.url();
    let limits = |config: &mut burnbox_server::Config| {
        config.rate_limit_create = 5;
        config.rate_limit_reveal = 100;
    };
    let first = TestServer::start_with(Backend::Redis(redis), limits).await;
    let second = TestServer::start_with_customers(Backend::Memory, |config| {
        limits(config);
        config.redis_url = Some(url);
        config.master_key = Some(test_master_key());
    })
    .await;

    for server in [&first, &first, &first, &second, &second] {
        assert_eq!(
            rest_share(server, &[("secret", "s")]).await.0,
            StatusCode::OK
        );
    }
    // The sixth create from this address within the minute, on either replica, is refused.
    let response = second
        .http
        .post(second.api("/share"))
        .form(&[("secret", "s")])
        .send()
        .await
        .expect("share");
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok()?.parse().ok())
        .expect("Retry-After seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_rest_error(&json_of(response).await, ErrorKind::RateLimited, None);
    let status = first
        .grpc()
        .await
        .share_secret(burnbox_tests::grpc_share_request("s"))
        .await
        .expect_err("limited");
    assert_grpc_error(&status, ErrorKind::RateLimited, None);
    let retry = status
        .get_error_details()
        .retry_info()
        .and_then(|info| info.retry_delay);
    assert!(
        retry.is_some_and(|delay| delay > std::time::Duration::ZERO),
        "{status:?}"
    );

    // Reveals are another class, and a customer has a budget of their own.
    let (_, shared) = {
        let authorization = basic_auth(ALICE.0, ALICE.1);
        let request = second
            .http
            .post(second.api("/share"))
            .header("authorization", authorization)
            .form(&[("secret", "alice's")]);
        json_of(request.send().await.expect("share")).await
    };
    assert_eq!(shared["custid"], "alice", "{shared}");
    assert_eq!(
        rest_reveal(&first, &text_field(&shared, "secret_key"), None)
            .await
            .0,
        StatusCode::OK
    );
}

/// The rate-limit round trips a server made to its store so far.
async fn rate_limit_round_trips(server: &TestServer) -> u64 {
    let metrics = server.metrics_text().await;
    metrics
        .lines()
        .find(|line| {
            line.starts_with("burnbox_store_operation_duration_seconds_count")
                && line.contains(r#"operation="rate_limit""#)
        })
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_callers_lease_their_limit_in_batches_and_two_replicas_never_exceed_it() {
    // 512 a minute: leases of up to 8 (a 64th), so each replica holds at most 7 unspent.
    const LIMIT: u32 = 512;
    const MOST_UNSPENT: u32 = 2 * 7;
    let redis = TestRedis::start_own();
    let url = redis.url();
    let limits = |config: &mut burnbox_server::Config| config.rate_limit_reveal = LIMIT;
    let first = TestServer::start_with(Backend::Redis(redis), limits).await;
    let second = TestServer::start_with(Backend::Memory, |config| {
        limits(config);
        config.redis_url = Some(url);
        config.master_key = Some(test_master_key());
    })
    .await;
    let replicas = [&first, &second];
    async fn reveal(server: &TestServer) -> (StatusCode, serde_json::Value) {
        rest_reveal(server, "nosuchsecretkeyforratelimits", None).await
    }

    // Well within the limit, alternating replicas: every request is admitted (a 404: there is
    // no such secret), and most are admitted from a lease, without a store round trip. Leases
    // may be spent for 5 s; these requests take milliseconds.
    let within = LIMIT - MOST_UNSPENT;
    for index in 0..within {
        let (status, body) = reveal(replicas[index as usize % 2]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "request {index}: {body}");
    }
    let round_trips = rate_limit_round_trips(&first).await + rate_limit_round_trips(&second).await;
    assert!(
        round_trips * 4 <= u64::from(within),
        "{round_trips} limiter round trips for {within} requests"
    );

    // Past the limit: across both replicas, never more than the limit is admitted.
    let mut admitted = within;
    for index in 0..2 * MOST_UNSPENT {
        let answer = reveal(replicas[index as usize % 2]).await;
        if answer.0 == StatusCode::NOT_FOUND {
            admitted += 1;
        } else {
            assert_rest_error(&answer, ErrorKind::RateLimited, None);
        }
    }
    assert!(admitted <= LIMIT, "{admitted} admitted of {LIMIT}");
    for replica in replicas {
        assert_eq!(reveal(replica).await.0, StatusCode::TOO_MANY_REQUESTS);
    }
}

/// Anonymous callers are limited per address; customers have limits of their own, off by
/// default (as Onetime Secret lets customers create freely), so a batch job sees no 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_have_limits_of_their_own() {
    let share_as = |server: &TestServer, authorization: Option<String>| {
        let mut request = server.http.post(server.api("/share"));
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let request = request.form(&[("secret", "s")]);
        async move { json_of(request.send().await.expect("share")).await }
    };
    let alice = || Some(basic_auth(ALICE.0, ALICE.1));
    let bob = || Some(basic_auth(BOB.0, BOB.1));

    let server = TestServer::start_with_customers(Backend::Memory, |config| {
        config.rate_limit_create = 2;
    })
    .await;
    for _ in 0..2 {
        assert_eq!(share_as(&server, None).await.0, StatusCode::OK);
    }
    let refused = share_as(&server, None).await;
    assert_rest_error(&refused, ErrorKind::RateLimited, None);
    assert_eq!(
        refused.1["message"],
        "Apologies dear citizen! You have been rate limited."
    );
    // A customer's batch from the same address is not counted against it, nor limited.
    for _ in 0..25 {
        let (status, receipt) = share_as(&server, alice()).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
    }
    server.shutdown().await;

    let server = TestServer::start_with_customers(Backend::Memory, |config| {
        config.rate_limit_create = 2;
        config.customer_rate_limit_create = 3;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(share_as(&server, alice()).await.0, StatusCode::OK);
    }
    assert_rest_error(
        &share_as(&server, alice()).await,
        ErrorKind::RateLimited,
        None,
    );
    // Each customer counts alone, and the address's anonymous budget is untouched.
    assert_eq!(share_as(&server, bob()).await.0, StatusCode::OK);
    assert_eq!(share_as(&server, None).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let limited = |trusted: Vec<ipnet::IpNet>| {
        move |config: &mut burnbox_server::Config| {
            config.rate_limit_create = 1;
            config.trusted_proxies = trusted;
        }
    };
    let behind_proxy = TestServer::start_with(
        Backend::Memory,
        limited(vec!["127.0.0.0/8".parse().expect("CIDR")]),
    )
    .await;
    for client in ["203.0.113.1", "203.0.113.2"] {
        let request = behind_proxy
            .http
            .post(behind_proxy.api("/share"))
            .header("x-forwarded-for", client)
            .form(&[("secret", "s")]);
        assert_eq!(
            request.send().await.expect("share").status(),
            StatusCode::OK,
            "{client} has its own budget"
        );
    }
    let again = behind_proxy
        .http
        .post(behind_proxy.api("/share"))
        .header("x-forwarded-for", "203.0.113.1")
        .form(&[("secret", "s")]);
    assert_eq!(
        again.send().await.expect("share").status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    let untrusted = TestServer::start_with(Backend::Memory, limited(Vec::new())).await;
    let first = untrusted
        .http
        .post(untrusted.api("/share"))
        .header("x-forwarded-for", "203.0.113.1")
        .form(&[("secret", "s")]);
    assert_eq!(first.send().await.expect("share").status(), StatusCode::OK);
    let spoofed = untrusted
        .http
        .post(untrusted.api("/share"))
        .header("x-forwarded-for", "203.0.113.2")
        .form(&[("secret", "s")]);
    assert_eq!(
        spoofed.send().await.expect("share").status(),
        StatusCode::TOO_MANY_REQUESTS,
        "spoofed header ignored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_capped_from_the_max_secret_size() {
    let server =
        TestServer::start_with(Backend::Memory, |config| config.max_secret_bytes = 1024).await;
    let mut client = server.grpc().await;
    let oversized = "x".repeat(1025);
    assert_rest_error(
        &rest_share(&server, &[("secret", &oversized)]).await,
        ErrorKind::Validation,
        Some("secret"),
    );
    let status = client
        .share_secret(burnbox_tests::grpc_share_request(&oversized))
        .await
        .expect_err("too big");
    assert_grpc_error(&status, ErrorKind::Validation, Some("secret"));

    let far_beyond = "x".repeat(1024 * 1024);
    let answer = rest_share(&server, &[("secret", &far_beyond)]).await;
    assert_rest_error(&answer, ErrorKind::BadRequest, None);
    let trace_id = "0b5e55ed0b5e55ed0b5e55ed0b5e55ed";
    let mut request = tonic::Request::new(burnbox_tests::grpc_share_request(&far_beyond));
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .expect("ASCII"),
    );
    let status = client.share_secret(request).await.expect_err("refused");
    // tonic refuses it while decoding, before the handler; the refusal still reads like REST's,
    // with the caller's trace id as its error_id.
    assert_grpc_error(&status, ErrorKind::BadRequest, None);
    let error_id = status
        .get_error_details()
        .error_info()
        .and_then(|info| info.metadata.get("error_id").cloned());
    assert_eq!(error_id.as_deref(), Some(trace_id));
    assert!(
        status.message().contains("larger than this server accepts"),
        "{status:?}"
    );
    // The server is unharmed.
    assert_eq!(
        rest_share(&server, &[("secret", "small")]).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn rest_answers_forbid_caching_sniffing_and_referrers() {
    let server = TestServer::start(Backend::Memory).await;
    let ok = server
        .http
        .post(server.api("/share"))
        .form(&[("secret", "s")])
        .send()
        .await
        .expect("share");
    let not_found = server
        .http
        .post(server.api("/secret/nope"))
        .send()
        .await
        .expect("reveal");
    for response in [ok, not_found] {
        let headers = response.headers();
        assert_eq!(
            headers.get("cache-control").map(|value| value.as_bytes()),
            Some(b"no-store".as_slice())
        );
        assert_eq!(
            headers
                .get("x-content-type-options")
                .map(|value| value.as_bytes()),
            Some(b"nosniff".as_slice())
        );
        assert_eq!(
            headers.get("referrer-policy").map(|value| value.as_bytes()),
            Some(b"no-referrer".as_slice())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_master_key_refuses_to_start_instead_of_destroying_secrets() {
    let redis = TestRedis::start_own();
    let url = redis.url();
    let server = TestServer::start(Backend::Redis(redis)).await;
    let (_, shared) = rest_share(&server, &[("secret", "needs the right key")]).await;

    let mut config = burnbox_server::Config::for_tests();
    config.redis_url = Some(url);
    config.master_key = Some(other_master_key());
    let Err(err) = burnbox_server::Application::build(config).await else {
        panic!("a server with a foreign master key started");
    };
    assert!(
        matches!(err, burnbox_server::StartupError::Config(_)),
        "{err}"
    );
    assert!(err.to_string().contains("BURNBOX_MASTER_KEY"), "{err}");
    let (status, revealed) = rest_reveal(&server, &text_field(&shared, "secret_key"), None).await;
    assert_eq!(
        (status, revealed["value"].as_str()),
        (StatusCode::OK, Some("needs the right key"))
    );
}
