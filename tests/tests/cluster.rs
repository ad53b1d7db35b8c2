//! Redis Cluster: the store conformance suite and the service end to end against a real
//! three-node cluster that the harness starts, so every atomic operation stays in one slot; and
//! a server started before its cluster, which waits unready instead of failing.

use std::sync::Arc;
use std::time::Duration;

use burnbox_core::ErrorKind;
use burnbox_store_redis::{RedisConfig, RedisStore, RedisTopology};
use burnbox_tests::conformance::conformance;
use burnbox_tests::{
    ALICE, Backend, TestRedisCluster, TestServer, assert_rest_error, basic_auth,
    grpc_reveal_request, json_of, rest_reveal, rest_share, test_master_key,
};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_conforms_on_a_redis_cluster() {
    let cluster = TestRedisCluster::start();
    let store = RedisStore::connect(&RedisConfig {
        topology: RedisTopology::Cluster(cluster.urls()),
        timeout: Duration::from_secs(2),
        naming: burnbox_tests::test_naming_keys(),
        ca_certificates: None,
    })
    .await
    .expect("connect to the cluster");
    conformance(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_on_a_redis_cluster() {
    let cluster = TestRedisCluster::start();
    let nodes = cluster.urls();
    let server = TestServer::start_with_customers(Backend::Memory, |config| {
        config.redis_cluster_nodes = nodes;
        config.master_key = Some(test_master_key());
        config.passphrase_max_attempts = 2;
        config.rate_limit_create = 50;
    })
    .await;
    let mut client = server.grpc().await;
    let alice = basic_auth(ALICE.0, ALICE.1);

    let mut metadata_keys = Vec::new();
    for index in 0..10 {
        let secret = format!("clustered secret {index}");
        let request = server
            .http
            .post(server.api("/share"))
            .header("authorization", &alice)
            .form(&[("secret", &secret)]);
        let (status, shared) = json_of(request.send().await.expect("share")).await;
        assert_eq!(status, StatusCode::OK, "{shared}");
        metadata_keys.push(shared["metadata_key"].as_str().expect("key").to_owned());
        let key = shared["secret_key"].as_str().expect("key");
        let revealed = client
            .reveal_secret(grpc_reveal_request(key, None))
            .await
            .expect("reveal")
            .into_inner();
        assert_eq!(revealed.value, secret);
        assert_eq!(
            rest_reveal(&server, key, None).await.0,
            StatusCode::NOT_FOUND
        );
    }
    let (status, recent) = json_of(
        server
            .http
            .get(server.api("/private/recent"))
            .header("authorization", &alice)
            .send()
            .await
            .expect("recent"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<&str> = recent
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|receipt| receipt["metadata_key"].as_str())
        .collect();
    metadata_keys.reverse();
    assert_eq!(listed, metadata_keys);
    assert!(
        recent
            .as_array()
            .expect("list")
            .iter()
            .all(|receipt| receipt["state"] == "received")
    );

    // Passphrase attempts and burns: scripts over the record, receipt and counter of one slot.
    let (_, guarded) = rest_share(&server, &[("secret", "guarded"), ("passphrase", "right")]).await;
    let key = guarded["secret_key"].as_str().expect("key");
    assert_eq!(
        rest_reveal(&server, key, Some("wrong")).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        rest_reveal(&server, key, Some("wrong")).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        rest_reveal(&server, key, Some("right")).await.0,
        StatusCode::NOT_FOUND,
        "burned after 2 failures"
    );
    let receipt_url = server.api(&format!(
        "/private/{}",
        guarded["metadata_key"].as_str().expect("key")
    ));
    let (_, receipt) = json_of(server.http.get(receipt_url).send().await.expect("receipt")).await;
    assert_eq!(receipt["state"], "burned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_waits_for_a_cluster_that_is_not_up_yet() {
    let reserved = TestRedisCluster::reserve();
    let server = TestServer::start_with(Backend::Memory, |config| {
        config.redis_cluster_nodes = reserved.urls();
        config.master_key = Some(test_master_key());
    })
    .await;
    // Up but unready, and every request a documented 503 rather than a guess.
    assert_eq!(server.readiness().await, StatusCode::SERVICE_UNAVAILABLE);
    assert_rest_error(
        &rest_share(&server, &[("secret", "too early")]).await,
        ErrorKind::Unavailable,
        None,
    );

    let _cluster = TestRedisCluster::start_on(reserved);
    server.assert_recovers("once the cluster is up").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_to_a_silent_cluster_fail_within_the_timeout() {
    // A "node" that accepts connections and never answers: each connection attempt lasts the
    // whole Redis timeout, and a request must not wait for more than one of them.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let node = format!("redis://{}/", silent.local_addr().expect("address"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let timeout = Duration::from_millis(300);
    let server = TestServer::start_with(Backend::Memory, |config| {
        config.redis_cluster_nodes = vec![node];
        config.master_key = Some(test_master_key());
        config.redis_timeout_ms = 300;
    })
    .await;

    let server = Arc::new(server);
    let mut requests = tokio::task::JoinSet::new();
    for index in 0..40 {
        let server = server.clone();
        requests.spawn(async move {
            let sent = std::time::Instant::now();
            let answer = rest_share(&server, &[("secret", &format!("queued {index}"))]).await;
            (answer, sent.elapsed())
        });
    }
    while let Some(joined) = requests.join_next().await {
        let (answer, waited) = joined.expect("request task");
        assert_rest_error(&answer, ErrorKind::Unavailable, None);
        // Each waits about one timeout for the connection, not for the connection attempts of
        // the requests before it (up to 40 timeouts). Ten timeouts leave room for a slow machine.
        assert!(
            waited < timeout * 10,
            "a request waited {waited:?} for a silent cluster"
        );
    }
}
