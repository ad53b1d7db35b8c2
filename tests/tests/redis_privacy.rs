//! What a Redis reader learns: key names that cannot be tested against guessed customer ids or
//! client addresses (they are keyed by the master key, and rotate with it without losing a
//! customer's recent list), and records whose size shows a size bucket, not a secret's length.

use std::time::Duration;

use base64::Engine;
use burnbox_core::{Keyring, MasterKey};
use burnbox_store::{NewSecret, OwnerId, RecentEntry, SecretStore};
use burnbox_store_redis::{RedisConfig, RedisStore, RedisTopology};
use burnbox_tests::conformance::{HOUR, new_secret, unique};
use burnbox_tests::{
    ALICE, BOB, Backend, TestRedis, TestServer, basic_auth, json_of, record_key_name, rest_share,
    test_master_key,
};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn other_master_key() -> String {
    base64::engine::general_purpose::STANDARD.encode([9u8; 32])
}

/// The name an attacker computes for a guess: the unkeyed, domain-separated SHA-256 burnbox used
/// to name customers' recent lists (`burnbox/v1/owner-id`) and rate-limit windows
/// (`burnbox/v1/rate`, over `class\0caller`).
fn unkeyed_name(prefix: &str, domain: &str, subject: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update((domain.len() as u64).to_be_bytes());
    hasher.update(domain.as_bytes());
    hasher.update(subject.as_bytes());
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("burnbox:{prefix}:{digest}")
}

/// Every name a dictionary attack on customer ids and client addresses tries.
fn guessed_names(custids: &[&str], addresses: &[&str]) -> Vec<String> {
    let mut names = Vec::new();
    for custid in custids {
        names.push(unkeyed_name("recent", "burnbox/v1/owner-id", custid));
    }
    let callers = custids
        .iter()
        .map(|custid| format!("customer:{custid}"))
        .chain(addresses.iter().map(|address| format!("address:{address}")));
    for caller in callers {
        for class in ["create", "reveal"] {
            let name = unkeyed_name("rate", "burnbox/v1/rate", &format!("{class}\0{caller}"));
            // A window is its grants and their sum, under the hash tag of the same digest.
            let tagged = name.replacen("burnbox:rate:", "burnbox:rate:{", 1) + "}";
            names.push(format!("{tagged}:sum"));
            names.extend([name, tagged]);
        }
    }
    names
}

/// Shares `secret` as `authorization` (anonymously without); returns the receipt.
async fn share_as(server: &TestServer, authorization: Option<&str>, secret: &str) -> Value {
    let mut request = server
        .http
        .post(server.api("/share"))
        .form(&[("secret", secret)]);
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let (status, receipt) = json_of(request.send().await.expect("share")).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    receipt
}

/// The metadata keys of the caller's recent list, newest first.
async fn recent_metadata_keys(server: &TestServer, authorization: &str) -> Vec<String> {
    let (status, recent) = json_of(
        server
            .http
            .get(server.api("/private/recent"))
            .header("authorization", authorization)
            .send()
            .await
            .expect("recent"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{recent}");
    recent
        .as_array()
        .expect("a list")
        .iter()
        .map(|receipt| receipt["metadata_key"].as_str().expect("key").to_owned())
        .collect()
}

fn redis_of(server: &TestServer) -> &TestRedis {
    match &server.backend {
        Backend::Redis(redis) => redis,
        Backend::Memory => unreachable!("the server runs on Redis"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_ids_and_client_addresses_cannot_be_found_by_guessing_key_names() {
    let server =
        TestServer::start_with_customers(Backend::Redis(TestRedis::start_own()), |config| {
            config.rate_limit_create = 1000;
            config.rate_limit_reveal = 1000;
            config.customer_rate_limit_create = 1000;
        })
        .await;
    let alice = basic_auth(ALICE.0, ALICE.1);
    share_as(&server, Some(&alice), "alice's").await;
    share_as(&server, None, "anonymous").await;

    let names = redis_of(&server).keys("*").await;
    // Something to find: alice's recent list, and the windows (grants and sum) counting alice
    // and this address.
    let count = |prefix: &str| names.iter().filter(|name| name.starts_with(prefix)).count();
    assert_eq!(count("burnbox:recent:"), 1, "{names:?}");
    assert_eq!(count("burnbox:rate:"), 4, "{names:?}");
    let guesses = guessed_names(
        &[ALICE.0, BOB.0, "anon"],
        &["127.0.0.1", "::1", "0.0.0.0", "unknown"],
    );
    let found: Vec<&String> = names.iter().filter(|name| guesses.contains(name)).collect();
    assert!(
        found.is_empty(),
        "guessing customer ids and addresses finds {found:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_names_depend_on_the_master_key() {
    let mut names = Vec::new();
    for master_key in [test_master_key(), other_master_key()] {
        let server =
            TestServer::start_with_customers(Backend::Redis(TestRedis::start_own()), |config| {
                config.master_key = Some(master_key);
                config.customer_rate_limit_create = 1000;
            })
            .await;
        share_as(&server, Some(&basic_auth(ALICE.0, ALICE.1)), "s").await;
        let mut stored = redis_of(&server).keys("burnbox:r*").await;
        stored.sort();
        names.push(stored);
        server.shutdown().await;
    }
    // alice's recent list and rate-limit window (grants and sum), under either master key.
    assert_eq!(names[0].len(), 3, "{names:?}");
    assert_eq!(names[1].len(), 3, "{names:?}");
    assert!(
        names[0].iter().all(|name| !names[1].contains(name)),
        "the same names under two master keys: {names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_lists_survive_a_master_key_rotation() {
    let redis = TestRedis::start_own();
    let url = redis.url();
    let alice = basic_auth(ALICE.0, ALICE.1);
    let old = TestServer::start_with_customers(Backend::Redis(redis), |_| {}).await;
    let before = share_as(&old, Some(&alice), "shared before the rotation").await;

    let rotated = TestServer::start_with_customers(Backend::Memory, |config| {
        config.redis_url = Some(url);
        config.master_key = Some(other_master_key());
        config.master_key_previous = Some(test_master_key());
    })
    .await;
    let after = share_as(&rotated, Some(&alice), "shared after the rotation").await;
    // Written under the new key's name, read under both, newest first.
    assert_eq!(redis_of(&old).keys("burnbox:recent:*").await.len(), 2);
    assert_eq!(
        recent_metadata_keys(&rotated, &alice).await,
        [&after["metadata_key"], &before["metadata_key"]].map(|key| key.as_str().expect("key"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_lists_written_before_keyed_names_are_still_listed() {
    let alice = basic_auth(ALICE.0, ALICE.1);
    let server =
        TestServer::start_with_customers(Backend::Redis(TestRedis::start_own()), |_| {}).await;
    let older = share_as(&server, Some(&alice), "s1").await;
    // Where a server before keyed names kept this list.
    let redis = redis_of(&server);
    let [keyed] = <[String; 1]>::try_from(redis.keys("burnbox:recent:*").await).expect("one list");
    redis::cmd("RENAME")
        .arg(&keyed)
        .arg(unkeyed_name("recent", "burnbox/v1/owner-id", ALICE.0))
        .exec_async(&mut redis.connection().await)
        .await
        .expect("RENAME");
    let newer = share_as(&server, Some(&alice), "s2").await;
    assert_eq!(
        recent_metadata_keys(&server, &alice).await,
        [&newer["metadata_key"], &older["metadata_key"]].map(|key| key.as_str().expect("key"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_records_show_a_size_bucket_not_a_length() {
    let server = TestServer::start(Backend::Redis(TestRedis::start_own())).await;
    // The record plaintext adds 3 bytes and the padding 4: 57 bytes fill the smallest bucket.
    let secrets = ["a".to_owned(), "b".repeat(57), "c".repeat(58)];
    let mut record_names = Vec::new();
    for secret in &secrets {
        let (status, receipt) = rest_share(&server, &[("secret", secret.as_str())]).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        let secret_key = receipt["secret_key"].as_str().expect("secret_key");
        record_names.push(record_key_name(secret_key));
    }
    let dump = redis_of(&server).dump().await;
    let stored_size = |name: &String| {
        dump.iter()
            .find(|(stored, _)| stored == name)
            .map(|(_, bytes)| bytes.len())
            .unwrap_or_else(|| panic!("no {name} in the dump"))
    };
    let sizes: Vec<usize> = record_names.iter().map(stored_size).collect();
    assert_eq!(
        sizes[0], sizes[1],
        "1 and 57 bytes share the smallest bucket"
    );
    assert!(
        sizes[2] > sizes[1],
        "58 bytes take the next bucket: {sizes:?}"
    );
    // Flag byte, how long the receipt outlives the record, format byte, nonce, 64 padded bytes,
    // tag: small secrets cost little.
    assert_eq!(sizes[0], 1 + 4 + 1 + 12 + 64 + 16);
}

/// A store on `redis` naming with `current` (and reading `previous`) master keys' naming keys.
async fn store_naming_with(redis: &TestRedis, current: u8, previous: Option<u8>) -> RedisStore {
    let keyring = Keyring::new(
        MasterKey::from_bytes([current; 32]),
        previous.map(|previous| MasterKey::from_bytes([previous; 32])),
    );
    RedisStore::connect(&RedisConfig {
        topology: RedisTopology::Standalone(redis.url()),
        timeout: Duration::from_secs(2),
        naming: keyring.naming_keys(),
        ca_certificates: None,
    })
    .await
    .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_store_merges_both_lists_newest_first_within_the_limit() {
    let redis = TestRedis::start_own();
    let old = store_naming_with(&redis, 1, None).await;
    let rotated = store_naming_with(&redis, 2, Some(1)).await;
    let owner = OwnerId::from_custid(&unique("owner"));
    let add = |store: &RedisStore, entry: &str| {
        let new = NewSecret {
            recent: Some(RecentEntry {
                owner,
                sealed: entry.as_bytes().to_vec(),
                retain: 2 * HOUR,
            }),
            ..new_secret(&unique(entry), false, HOUR, 2 * HOUR)
        };
        let store = store.clone();
        async move { store.create(new).await.expect("create") }
    };
    // Interleaved between the two names; one entry (as if written twice) under both.
    add(&old, "1").await;
    add(&rotated, "2").await;
    add(&old, "3").await;
    add(&rotated, "3").await;
    add(&rotated, "4").await;
    let listed = |limit| {
        let rotated = rotated.clone();
        async move {
            let entries = rotated.recent(&owner, 0, limit).await.expect("recent");
            entries
                .into_iter()
                .map(|entry| String::from_utf8(entry).expect("text"))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(10).await, ["4", "3", "2", "1"]);
    assert_eq!(listed(2).await, ["4", "3"]);
    // The store that knows only the old key reads its own list alone.
    let old_only = old.recent(&owner, 0, 10).await.expect("recent");
    assert_eq!(old_only, [b"3".to_vec(), b"1".to_vec()]);
}
