//! Secrets written in the previous Redis key layout (three keys per secret, 64-hex-digit names:
//! `crates/store-redis/src/legacy.rs`) stay revealable once, readable, burnable and counted
//! after the upgrade, on a standalone Redis and on a Redis Cluster, while new secrets are
//! written in the compact layout beside them. The old keys are written here with raw commands,
//! exactly as the previous version's `create` wrote them:
//!
//! ```text
//! SET     burnbox:{<secret id hex>}:record   <flag byte><sealed record>   PX <secret ttl ms>
//! HMSET   burnbox:{<secret id hex>}:receipt  sealed <sealed receipt> state new updated <created>
//! PEXPIRE burnbox:{<secret id hex>}:receipt  <receipt ttl ms>
//! SET     burnbox:pointer:<receipt id hex>   <secret id hex>              PX <receipt ttl ms>
//! ```
//!
//! and a failure counted by a replica still on the previous version as its script counted it
//! (`INCR`, then `PEXPIRE` to the record's TTL, on `burnbox:{<secret id hex>}:failures`).
//!
//! Delete this file with `legacy.rs`.

use std::sync::Arc;
use std::time::Duration;

use burnbox_store::{
    FailedAttempt, ReceiptId, ReceiptState, RecordStatus, SecretId, SecretRecord, SecretStore, Take,
};
use burnbox_store_redis::{RedisConfig, RedisStore, RedisTopology};
use burnbox_tests::conformance::{HOUR, new_secret, unique};
use burnbox_tests::{
    Backend, TestRedis, TestRedisCluster, TestServer, json_of, record_key_name, rest_get,
    rest_reveal, rest_share, test_naming_keys,
};
use redis::aio::ConnectionLike;
use reqwest::StatusCode;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A secret as the previous version stored it.
struct OldSecret {
    secret_key: String,
    metadata_key: String,
    protected: bool,
    /// The record's flag byte and sealed bytes (the previous record value).
    record: Vec<u8>,
    receipt: Vec<u8>,
    created: i64,
}

impl OldSecret {
    fn new(label: &str, protected: bool) -> Self {
        let secret_key = unique(label);
        Self {
            record: [
                vec![u8::from(protected)],
                format!("sealed-{secret_key}").into_bytes(),
            ]
            .concat(),
            receipt: format!("receipt-{secret_key}").into_bytes(),
            metadata_key: format!("meta-{secret_key}"),
            secret_key,
            protected,
            created: 1_000,
        }
    }

    fn id(&self) -> SecretId {
        SecretId::from_secret_key(&self.secret_key)
    }

    fn receipt_id(&self) -> ReceiptId {
        ReceiptId::from_metadata_key(&self.metadata_key)
    }

    fn name(&self, suffix: &str) -> String {
        format!("burnbox:{{{}}}:{suffix}", hex(self.id().as_bytes()))
    }

    fn record(&self) -> SecretRecord {
        SecretRecord {
            protected: self.protected,
            end_to_end: false,
            sealed: self.record[1..].to_vec(),
        }
    }
}

async fn command<C: ConnectionLike + Send, T: redis::FromRedisValue>(
    connection: &mut C,
    command: &redis::Cmd,
) -> T {
    command
        .query_async(connection)
        .await
        .unwrap_or_else(|err| panic!("{command:?}: {err}"))
}

/// Writes `secret` as the previous version's `create` did (one command at a time: on a cluster
/// the pointer lives in another slot).
async fn write_old<C: ConnectionLike + Send>(connection: &mut C, secret: &OldSecret) {
    let secret_ms = HOUR.as_millis() as u64;
    let receipt_ms = 2 * secret_ms;
    let () = command(
        connection,
        redis::cmd("SET")
            .arg(secret.name("record"))
            .arg(&secret.record)
            .arg("PX")
            .arg(secret_ms),
    )
    .await;
    let () = command(
        connection,
        redis::cmd("HMSET")
            .arg(secret.name("receipt"))
            .arg("sealed")
            .arg(&secret.receipt)
            .arg("state")
            .arg("new")
            .arg("updated")
            .arg(secret.created.to_string()),
    )
    .await;
    let _: i64 = command(
        connection,
        redis::cmd("PEXPIRE")
            .arg(secret.name("receipt"))
            .arg(receipt_ms),
    )
    .await;
    let () = command(
        connection,
        redis::cmd("SET")
            .arg(format!(
                "burnbox:pointer:{}",
                hex(secret.receipt_id().as_bytes())
            ))
            .arg(hex(secret.id().as_bytes()))
            .arg("PX")
            .arg(receipt_ms),
    )
    .await;
}

/// The receipt hash's fields as the previous version reads them.
async fn old_receipt_fields<C: ConnectionLike + Send>(
    connection: &mut C,
    secret: &OldSecret,
) -> std::collections::HashMap<String, String> {
    command(
        connection,
        redis::cmd("HGETALL").arg(secret.name("receipt")),
    )
    .await
}

async fn receipt_of(
    store: &Arc<dyn SecretStore>,
    secret: &OldSecret,
) -> burnbox_store::StoredReceipt {
    store
        .receipt(&secret.receipt_id())
        .await
        .expect("read the receipt")
        .expect("the receipt is there")
}

/// Every operation on old secrets, with `connection` writing and reading the old keys.
async fn old_secrets_keep_working<C: ConnectionLike + Send>(
    store: Arc<dyn SecretStore>,
    mut connection: C,
) {
    // Revealed once: the receipt follows, in the old hash, as an old replica would see it.
    let plain = OldSecret::new("old-plain", false);
    write_old(&mut connection, &plain).await;
    // A new secret beside it, in the new layout.
    let fresh = new_secret(&unique("new-beside"), false, HOUR, 2 * HOUR);
    let fresh_id = fresh.secret_id;
    let fresh_record = fresh.record.clone();
    store.create(fresh).await.expect("create");
    let receipt = receipt_of(&store, &plain).await;
    assert_eq!(receipt.secret_id, plain.id());
    assert_eq!(receipt.sealed, plain.receipt);
    assert_eq!(
        (
            receipt.state,
            receipt.updated,
            receipt.received,
            receipt.burned
        ),
        (ReceiptState::New, plain.created, None, None)
    );
    assert!(receipt.receipt_ttl > HOUR && receipt.receipt_ttl <= 2 * HOUR);
    assert!(receipt.secret_ttl.is_some_and(|ttl| ttl <= HOUR));
    assert_eq!(
        store.peek(&plain.id()).await.expect("peek"),
        Some(plain.record())
    );
    let status = store
        .inspect(&plain.id())
        .await
        .expect("inspect")
        .expect("there");
    assert!(matches!(
        status,
        RecordStatus {
            protected: false,
            end_to_end: false,
            ..
        }
    ));
    assert_eq!(
        store
            .take_unprotected(&plain.id(), 5_000)
            .await
            .expect("take"),
        Take::Taken(plain.record())
    );
    assert_eq!(
        store
            .take_unprotected(&plain.id(), 5_001)
            .await
            .expect("take"),
        Take::Missing
    );
    assert_eq!(store.take(&plain.id(), 5_002).await.expect("take"), None);
    assert_eq!(store.peek(&plain.id()).await.expect("peek"), None);
    assert_eq!(store.inspect(&plain.id()).await.expect("inspect"), None);
    let receipt = receipt_of(&store, &plain).await;
    assert_eq!(
        (receipt.state, receipt.received, receipt.updated),
        (ReceiptState::Received, Some(5_000), 5_000)
    );
    assert_eq!(receipt.secret_ttl, None);
    let fields = old_receipt_fields(&mut connection, &plain).await;
    assert_eq!(
        fields.get("state").map(String::as_str),
        Some("received"),
        "{fields:?}"
    );
    let exists: i64 = command(
        &mut connection,
        redis::cmd("EXISTS").arg(plain.name("record")),
    )
    .await;
    assert_eq!(exists, 0, "the old record is deleted");
    // The new secret is untouched by all of it.
    assert_eq!(
        store
            .take_unprotected(&fresh_id, 6_000)
            .await
            .expect("take"),
        Take::Taken(fresh_record)
    );

    // Burned unread, once.
    let burned = OldSecret::new("old-burned", false);
    write_old(&mut connection, &burned).await;
    assert!(store.burn(&burned.id(), 7_000).await.expect("burn"));
    assert!(!store.burn(&burned.id(), 7_001).await.expect("burn again"));
    assert_eq!(
        store
            .take_unprotected(&burned.id(), 7_002)
            .await
            .expect("take"),
        Take::Missing
    );
    let receipt = receipt_of(&store, &burned).await;
    assert_eq!(
        (receipt.state, receipt.burned, receipt.updated),
        (ReceiptState::Burned, Some(7_000), 7_000)
    );

    // Protected: left in place, failures counted in the old counter (one by an old replica),
    // burned at the limit.
    let guarded = OldSecret::new("old-guarded", true);
    write_old(&mut connection, &guarded).await;
    assert_eq!(
        store
            .take_unprotected(&guarded.id(), 8_000)
            .await
            .expect("take"),
        Take::Protected(guarded.record())
    );
    let counted_by_old_replica: i64 = command(
        &mut connection,
        redis::cmd("INCR").arg(guarded.name("failures")),
    )
    .await;
    assert_eq!(counted_by_old_replica, 1);
    let _: i64 = command(
        &mut connection,
        redis::cmd("PEXPIRE")
            .arg(guarded.name("failures"))
            .arg(HOUR.as_millis() as u64),
    )
    .await;
    assert_eq!(
        store
            .fail_attempt(&guarded.id(), 3, 8_001)
            .await
            .expect("fail"),
        FailedAttempt::Remaining(1)
    );
    let failures: i64 = command(
        &mut connection,
        redis::cmd("GET").arg(guarded.name("failures")),
    )
    .await;
    assert_eq!(failures, 2, "counted in the old counter");
    assert_eq!(
        store
            .fail_attempt(&guarded.id(), 3, 8_002)
            .await
            .expect("fail"),
        FailedAttempt::Burned
    );
    assert_eq!(
        store
            .fail_attempt(&guarded.id(), 3, 8_003)
            .await
            .expect("fail"),
        FailedAttempt::Missing
    );
    assert_eq!(store.take(&guarded.id(), 8_004).await.expect("take"), None);
    let receipt = receipt_of(&store, &guarded).await;
    assert_eq!(
        (receipt.state, receipt.burned),
        (ReceiptState::Burned, Some(8_002))
    );

    // Revealed with its passphrase (taken whatever its protection).
    let opened = OldSecret::new("old-opened", true);
    write_old(&mut connection, &opened).await;
    assert_eq!(
        store.take(&opened.id(), 9_000).await.expect("take"),
        Some(opened.record())
    );
    assert_eq!(store.take(&opened.id(), 9_001).await.expect("take"), None);
    assert_eq!(
        receipt_of(&store, &opened).await.state,
        ReceiptState::Received
    );

    // Expired unread: the record gone at its TTL, the receipt staying.
    let expired = OldSecret::new("old-expired", false);
    write_old(&mut connection, &expired).await;
    let _: i64 = command(
        &mut connection,
        redis::cmd("DEL").arg(expired.name("record")),
    )
    .await;
    let receipt = receipt_of(&store, &expired).await;
    assert_eq!(
        (receipt.state, receipt.secret_ttl),
        (ReceiptState::New, None)
    );
}

fn store_config(topology: RedisTopology) -> RedisConfig {
    RedisConfig {
        topology,
        timeout: Duration::from_secs(2),
        naming: test_naming_keys(),
        ca_certificates: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_secrets_keep_working_on_a_standalone_redis() {
    let redis = TestRedis::start();
    let store = RedisStore::connect(&store_config(RedisTopology::Standalone(redis.url())))
        .await
        .expect("connect");
    old_secrets_keep_working(Arc::new(store), redis.connection().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_secrets_keep_working_on_a_redis_cluster() {
    let cluster = TestRedisCluster::start();
    let store = RedisStore::connect(&store_config(RedisTopology::Cluster(cluster.urls())))
        .await
        .expect("connect");
    let connection = redis::cluster::ClusterClient::new(cluster.urls())
        .expect("cluster client")
        .get_async_connection()
        .await
        .expect("connect to the cluster");
    old_secrets_keep_working(Arc::new(store), connection).await;
}

/// Moves a secret the server just shared into the previous layout: the same sealed record and
/// receipt, under the old names, as the previous version would have stored them.
async fn move_to_old_layout(redis: &TestRedis, secret_key: &str, metadata_key: &str) {
    let mut connection = redis.connection().await;
    let record_name = record_key_name(secret_key);
    let receipt_name = receipt_key_name(metadata_key);
    let record: Vec<u8> = command(&mut connection, redis::cmd("GETDEL").arg(&record_name)).await;
    let receipt: Vec<u8> = command(&mut connection, redis::cmd("GETDEL").arg(&receipt_name)).await;
    // The compact record: flag byte, 4 bytes of how long the receipt outlives it, sealed bytes.
    // The compact receipt: layout byte, secret id, created (8 bytes), sealed fields.
    let (created, sealed_receipt) = receipt[33..].split_at(8);
    let created = i64::from_be_bytes(created.try_into().expect("8 bytes"));
    let old = OldSecret {
        secret_key: secret_key.to_owned(),
        metadata_key: metadata_key.to_owned(),
        protected: record[0] & 1 == 1,
        record: [&record[..1], &record[5..]].concat(),
        receipt: sealed_receipt.to_vec(),
        created,
    };
    assert_eq!(&receipt[1..33], old.id().as_bytes());
    write_old(&mut connection, &old).await;
}

/// The name of the receipt `metadata_key` reads, in the compact layout.
fn receipt_key_name(metadata_key: &str) -> String {
    use base64::Engine;
    let id = ReceiptId::from_metadata_key(metadata_key);
    let name = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&id.as_bytes()[..15]);
    format!("burnbox:p:{name}")
}

fn text(value: &serde_json::Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {value}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_reveals_reads_and_burns_old_secrets() {
    let redis = TestRedis::start_own();
    let server = TestServer::start_with(Backend::Redis(redis), |config| {
        config.passphrase_max_attempts = 2;
    })
    .await;
    let Backend::Redis(redis) = &server.backend else {
        unreachable!("the server runs on Redis")
    };
    let mut shared = Vec::new();
    for form in [
        vec![("secret", "old plain")],
        vec![("secret", "old to burn")],
        vec![("secret", "old guarded"), ("passphrase", "right")],
    ] {
        let (status, receipt) = rest_share(&server, &form).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        let (secret_key, metadata_key) =
            (text(&receipt, "secret_key"), text(&receipt, "metadata_key"));
        move_to_old_layout(redis, &secret_key, &metadata_key).await;
        shared.push((secret_key, metadata_key));
    }
    let names = redis.keys("*").await;
    assert!(
        names.iter().all(|name| name.ends_with(":record")
            || name.ends_with(":receipt")
            || name.starts_with("burnbox:pointer:")
            || name == "burnbox:key-check"),
        "only old keys: {names:?}"
    );

    // Revealed once; the receipt says received.
    let (plain_key, plain_meta) = &shared[0];
    let (status, revealed) = rest_reveal(&server, plain_key, None).await;
    assert_eq!(
        (status, revealed["value"].as_str()),
        (StatusCode::OK, Some("old plain"))
    );
    assert_eq!(
        rest_reveal(&server, plain_key, None).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, receipt) = rest_get(&server, &format!("/private/{plain_meta}")).await;
    assert_eq!(
        (status, receipt["state"].as_str()),
        (StatusCode::OK, Some("received"))
    );

    // Burned through its receipt.
    let (burn_key, burn_meta) = &shared[1];
    let (status, receipt) = rest_get(&server, &format!("/private/{burn_meta}")).await;
    assert_eq!(
        (status, receipt["state"].as_str()),
        (StatusCode::OK, Some("new"))
    );
    let burn = server
        .http
        .post(server.api(&format!("/private/{burn_meta}/burn")))
        .send()
        .await
        .expect("burn");
    let (status, burned) = json_of(burn).await;
    assert_eq!(
        (status, burned["state"]["state"].as_str()),
        (StatusCode::OK, Some("burned")),
        "{burned}"
    );
    assert_eq!(
        rest_reveal(&server, burn_key, None).await.0,
        StatusCode::NOT_FOUND
    );

    // A wrong passphrase counted, the second burns it, the right one comes too late.
    let (guarded_key, guarded_meta) = &shared[2];
    for _ in 0..2 {
        assert_eq!(
            rest_reveal(&server, guarded_key, Some("wrong")).await.0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    assert_eq!(
        rest_reveal(&server, guarded_key, Some("right")).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, receipt) = rest_get(&server, &format!("/private/{guarded_meta}")).await;
    assert_eq!(
        (status, receipt["state"].as_str()),
        (StatusCode::OK, Some("burned"))
    );
}
