//! One conformance suite for every `SecretStore` (in `burnbox_tests::conformance`): the same
//! assertions on the embedded MemoryStore and on RedisStore against a real redis-server.

use std::sync::Arc;
use std::time::Duration;

use burnbox_store::{KeyCheck, MemoryStore, SecretId, SecretStore};
use burnbox_store_redis::{RedisConfig, RedisStore, RedisTopology};
use burnbox_tests::conformance::{HOUR, conformance, new_secret, unique};
use burnbox_tests::{TestRedis, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms() {
    conformance(Arc::new(MemoryStore::new())).await;
}

async fn redis_store(redis: &TestRedis) -> RedisStore {
    RedisStore::connect(&RedisConfig {
        topology: RedisTopology::Standalone(redis.url()),
        timeout: Duration::from_secs(2),
        naming: burnbox_tests::test_naming_keys(),
        ca_certificates: None,
    })
    .await
    .expect("connect to test redis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_conforms() {
    let redis = TestRedis::start();
    conformance(Arc::new(redis_store(&redis).await)).await;
}

#[tokio::test]
async fn redis_key_names_hold_no_key_and_everything_has_a_ttl() {
    let redis = TestRedis::start_own();
    let store = redis_store(&redis).await;
    let secret_key = unique("visible-secret-key");
    let new = new_secret(&secret_key, false, HOUR, 2 * HOUR);
    store.create(new).await.expect("create");
    let names = redis.keys("*").await;
    let mut connection = redis.connection().await;
    assert_eq!(names.len(), 2, "record, receipt: {names:?}");
    for name in &names {
        assert!(
            !name.contains(&secret_key),
            "{name} contains the secret key"
        );
        assert!(!name.contains("meta-"), "{name} contains the metadata key");
        let ttl: i64 = redis::cmd("PTTL")
            .arg(name)
            .query_async(&mut connection)
            .await
            .expect("PTTL");
        assert!(ttl > 0, "{name} has no expiry ({ttl})");
    }
    // The record holds its receipt's state (as its tombstone once taken) under one hash tag, so
    // one script touches one cluster slot; the receipt is found by its own name.
    let tags: std::collections::HashSet<_> = names
        .iter()
        .filter_map(|name| Some(name.split_once('{')?.1.split_once('}')?.0.to_owned()))
        .collect();
    assert_eq!(tags.len(), 1, "{names:?}");
}

#[tokio::test]
async fn redis_store_reports_unavailable_when_redis_is_gone() {
    let mut redis = TestRedis::start_own();
    let store = redis_store(&redis).await;
    store.ping().await.expect("up");
    redis.stop();
    let id = SecretId::from_secret_key("k");
    let err = store
        .take_unprotected(&id, 1)
        .await
        .expect_err("redis is down");
    assert!(
        matches!(err, burnbox_store::StoreError::Unavailable(_)),
        "{err:?}"
    );
    redis.restart();
    // The connection manager reconnects by itself.
    eventually(
        Duration::from_secs(30),
        "the store reconnecting",
        || async { store.ping().await.ok() },
    )
    .await;
}

/// The key-check blob: the first proposal is kept, later ones only replace it when asked.
async fn key_check_keeps_the_first_blob_unless_replaced(store: Arc<dyn KeyCheck>) {
    assert_eq!(
        store
            .key_check(b"first".to_vec(), false)
            .await
            .expect("check"),
        b"first"
    );
    assert_eq!(
        store
            .key_check(b"second".to_vec(), false)
            .await
            .expect("check"),
        b"first"
    );
    assert_eq!(
        store
            .key_check(b"third".to_vec(), true)
            .await
            .expect("check"),
        b"third"
    );
    assert_eq!(
        store
            .key_check(b"fourth".to_vec(), false)
            .await
            .expect("check"),
        b"third"
    );
}

#[tokio::test]
async fn key_check_conforms_on_both_stores() {
    key_check_keeps_the_first_blob_unless_replaced(Arc::new(MemoryStore::new())).await;
    // Its own Redis: the blob is global, and other suites' servers check it at startup.
    let redis = TestRedis::start_own();
    key_check_keeps_the_first_blob_unless_replaced(Arc::new(redis_store(&redis).await)).await;
}
