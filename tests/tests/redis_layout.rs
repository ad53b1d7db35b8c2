//! The compact Redis layout (`crates/store-redis/src/keys.rs`) keeps its promises: revealing a
//! secret it wrote is one script call and never looks at the previous layout, and the tombstone
//! a take or a burn leaves (the receipt's state) lasts as long as the receipt.

use std::collections::HashMap;
use std::time::Duration;

use burnbox_store::{FailedAttempt, ReceiptId, SecretId, SecretStore, Take};
use burnbox_store_redis::{RedisConfig, RedisStore, RedisTopology};
use burnbox_tests::conformance::{HOUR, new_secret, unique};
use burnbox_tests::{TestRedis, record_key_name, test_naming_keys};

async fn store_on(redis: &TestRedis) -> RedisStore {
    RedisStore::connect(&RedisConfig {
        topology: RedisTopology::Standalone(redis.url()),
        timeout: Duration::from_secs(2),
        naming: test_naming_keys(),
        ca_certificates: None,
    })
    .await
    .expect("connect")
}

/// The calls of each command since the last `CONFIG RESETSTAT` (`INFO commandstats`), commands
/// run by scripts included.
async fn command_calls(redis: &TestRedis) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut redis.connection().await)
        .await
        .expect("INFO");
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats
                .split(',')
                .find_map(|stat| stat.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

async fn reset_stats(redis: &TestRedis) {
    let () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut redis.connection().await)
        .await
        .expect("CONFIG RESETSTAT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reveal_is_one_script_call_and_a_miss_one_more() {
    let redis = TestRedis::start_own();
    let store = store_on(&redis).await;
    // Loads the scripts, so that each call below is one EVALSHA.
    let warm = new_secret(&unique("warm-up"), false, HOUR, 2 * HOUR);
    let warm_id = warm.secret_id;
    store.create(warm).await.expect("create");
    store.take_unprotected(&warm_id, 1).await.expect("take");
    store
        .take_unprotected(&SecretId::from_secret_key("never shared"), 1)
        .await
        .expect("take");
    let secret = new_secret(&unique("once"), false, HOUR, 2 * HOUR);
    let id = secret.secret_id;
    store.create(secret).await.expect("create");

    reset_stats(&redis).await;
    assert!(matches!(
        store.take_unprotected(&id, 2).await.expect("take"),
        Take::Taken(_)
    ));
    let calls = command_calls(&redis).await;
    assert_eq!(calls.get("evalsha"), Some(&1), "{calls:?}");
    // Inside the script: the record read and replaced by its tombstone, nothing else.
    assert_eq!(
        calls.get("getdel"),
        None,
        "the previous layout's script ran"
    );
    assert_eq!(calls.get("hset"), None, "the previous layout's script ran");

    // Not found: the current layout, then the previous one.
    reset_stats(&redis).await;
    assert_eq!(
        store.take_unprotected(&id, 3).await.expect("take"),
        Take::Missing
    );
    let calls = command_calls(&redis).await;
    assert_eq!(calls.get("evalsha"), Some(&2), "{calls:?}");
}

/// The remaining lifetimes of the tombstone of `secret_key` and of the receipt it reads, in ms.
async fn lifetimes(redis: &TestRedis, secret_key: &str) -> (i64, i64) {
    use base64::Engine;
    let receipt_id = ReceiptId::from_metadata_key(&format!("meta-{secret_key}"));
    let receipt_tag =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&receipt_id.as_bytes()[..15]);
    let mut connection = redis.connection().await;
    redis::pipe()
        .pttl(record_key_name(secret_key))
        .pttl(format!("burnbox:p:{receipt_tag}"))
        .query_async(&mut connection)
        .await
        .expect("PTTL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_last_as_long_as_their_receipts() {
    let redis = TestRedis::start_own();
    let store = store_on(&redis).await;
    let (taken, burned, guessed) = (unique("taken"), unique("burned"), unique("guessed"));
    for (key, protected) in [(&taken, false), (&burned, false), (&guessed, true)] {
        store
            .create(new_secret(key, protected, HOUR, 2 * HOUR))
            .await
            .expect("create");
    }
    let id = SecretId::from_secret_key;
    assert!(matches!(
        store.take_unprotected(&id(&taken), 1).await.expect("take"),
        Take::Taken(_)
    ));
    assert!(store.burn(&id(&burned), 1).await.expect("burn"));
    assert_eq!(
        store.fail_attempt(&id(&guessed), 1, 1).await.expect("fail"),
        FailedAttempt::Burned
    );
    for key in [&taken, &burned, &guessed] {
        let (tombstone, receipt) = lifetimes(&redis, key).await;
        // The receipt's hour beyond the record's, and the second more the record adds.
        assert!(receipt > HOUR.as_millis() as i64, "{key}: {receipt} ms");
        assert!(
            tombstone >= receipt && tombstone <= receipt + 2_000,
            "{key}: the tombstone has {tombstone} ms, the receipt {receipt} ms"
        );
    }
}
