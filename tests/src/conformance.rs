//! The store conformance suite: one set of assertions that every store must pass as a
//! `SecretStore` and a `RateLimiter`, run on MemoryStore, on RedisStore against a standalone
//! redis-server and against a Redis Cluster.

use std::sync::Arc;
use std::time::{Duration, Instant};

use burnbox_store::{
    FailedAttempt, Lease, NewSecret, OwnerId, RateDecision, RateKey, RateLimiter, ReceiptId,
    ReceiptState, RecentEntry, SecretId, SecretRecord, SecretStore, Take,
};

/// The stored receipt of the secret made by [`new_secret`] from `key`.
async fn receipt_of(store: &Arc<dyn SecretStore>, key: &str) -> burnbox_store::StoredReceipt {
    store
        .receipt(&ReceiptId::from_metadata_key(&format!("meta-{key}")))
        .await
        .expect("read the receipt")
        .expect("the receipt exists")
}

/// An hour.
pub const HOUR: Duration = Duration::from_secs(3600);

/// Upper bound for an expiry to be observed: only there to fail instead of hanging.
const EXPIRY_BOUND: Duration = Duration::from_secs(60);

/// Redis keeps time in whole milliseconds of the wall clock, the tests measure the monotonic
/// clock: comparisons between the two allow this much. A rounding allowance, not a speed margin.
const CLOCK_SLACK: Duration = Duration::from_millis(10);

/// A secret `key` (metadata key `meta-{key}`) with recognisable sealed bytes.
pub fn new_secret(
    key: &str,
    protected: bool,
    secret_ttl: Duration,
    receipt_ttl: Duration,
) -> NewSecret {
    NewSecret {
        secret_id: SecretId::from_secret_key(key),
        receipt_id: ReceiptId::from_metadata_key(&format!("meta-{key}")),
        record: SecretRecord {
            protected,
            end_to_end: false,
            sealed: format!("sealed-{key}").into_bytes(),
        },
        receipt: format!("receipt-{key}").into_bytes(),
        created: 1_000,
        secret_ttl,
        receipt_ttl,
        recent: None,
    }
}

/// `label` made unique, so suites can share one Redis.
pub fn unique(label: &str) -> String {
    format!("{label}-{}", rand_suffix())
}

fn rand_suffix() -> u128 {
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    nanos ^ u128::from(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

async fn create_then_receipt_is_new(store: Arc<dyn SecretStore>) {
    let key = unique("new");
    let new = new_secret(&key, false, HOUR, 2 * HOUR);
    let expected_record = new.record.clone();
    let started = Instant::now();
    store.create(new).await.expect("create");
    let receipt = receipt_of(&store, &key).await;
    // The secret's hour began after `started`.
    let elapsed = started.elapsed();
    assert_eq!(receipt.secret_id, SecretId::from_secret_key(&key));
    assert_eq!(receipt.sealed, format!("receipt-{key}").into_bytes());
    assert_eq!(receipt.state, ReceiptState::New);
    assert_eq!(
        (receipt.updated, receipt.received, receipt.burned),
        (1_000, None, None)
    );
    assert!(
        receipt.receipt_ttl > HOUR && receipt.receipt_ttl <= 2 * HOUR,
        "{:?}",
        receipt.receipt_ttl
    );
    let secret_ttl = receipt.secret_ttl.expect("secret still there");
    assert!(
        secret_ttl + elapsed + CLOCK_SLACK >= HOUR && secret_ttl <= HOUR,
        "{secret_ttl:?} left after {elapsed:?}"
    );
    // Reading the receipt did not consume anything.
    assert_eq!(
        store
            .take_unprotected(&SecretId::from_secret_key(&key), 2_000)
            .await
            .expect("take"),
        Take::Taken(expected_record)
    );
}

async fn take_is_exactly_once_and_marks_the_receipt(store: Arc<dyn SecretStore>) {
    let key = unique("once");
    let new = new_secret(&key, false, HOUR, 2 * HOUR);
    let record = new.record.clone();
    store.create(new).await.expect("create");
    let id = SecretId::from_secret_key(&key);
    assert_eq!(
        store.take_unprotected(&id, 5_000).await.expect("take"),
        Take::Taken(record)
    );
    assert_eq!(
        store.take_unprotected(&id, 5_001).await.expect("take"),
        Take::Missing
    );
    assert_eq!(store.take(&id, 5_002).await.expect("take"), None);
    let receipt = receipt_of(&store, &key).await;
    assert_eq!(receipt.state, ReceiptState::Received);
    assert_eq!((receipt.received, receipt.updated), (Some(5_000), 5_000));
    assert_eq!(receipt.secret_ttl, None);
}

async fn protected_records_are_left_in_place_until_taken(store: Arc<dyn SecretStore>) {
    let key = unique("protected");
    let new = new_secret(&key, true, HOUR, 2 * HOUR);
    let record = new.record.clone();
    store.create(new).await.expect("create");
    let id = SecretId::from_secret_key(&key);
    for _ in 0..3 {
        assert_eq!(
            store.take_unprotected(&id, 10).await.expect("peek"),
            Take::Protected(record.clone())
        );
    }
    let receipt_id = ReceiptId::from_metadata_key(&format!("meta-{key}"));
    let receipt = store
        .receipt(&receipt_id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(receipt.state, ReceiptState::New);
    assert_eq!(store.take(&id, 20).await.expect("take"), Some(record));
    assert_eq!(store.take(&id, 21).await.expect("take"), None);
    assert_eq!(
        store.take_unprotected(&id, 22).await.expect("take"),
        Take::Missing
    );
    let receipt = store
        .receipt(&receipt_id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        (receipt.state, receipt.received),
        (ReceiptState::Received, Some(20))
    );
}

async fn unknown_ids_are_missing(store: Arc<dyn SecretStore>) {
    let id = SecretId::from_secret_key(&unique("never"));
    assert_eq!(
        store.take_unprotected(&id, 1).await.expect("take"),
        Take::Missing
    );
    assert_eq!(store.take(&id, 1).await.expect("take"), None);
    let receipt = store
        .receipt(&ReceiptId::from_metadata_key(&unique("never")))
        .await;
    assert_eq!(receipt.expect("read"), None);
    store.ping().await.expect("ping");
}

async fn everything_expires_by_ttl(store: Arc<dyn SecretStore>) {
    // The receipt must be seen after its secret expired and before it expires itself. That is
    // only decided if this machine read it within the receipt's lifetime, measured, not assumed:
    // otherwise the scenario runs again with longer lifetimes.
    let mut secret_ttl = Duration::from_millis(300);
    let receipt_id = loop {
        let receipt_ttl = 3 * secret_ttl;
        let key = unique("expiring");
        let id = SecretId::from_secret_key(&key);
        let receipt_id = ReceiptId::from_metadata_key(&format!("meta-{key}"));
        let started = Instant::now();
        store
            .create(new_secret(&key, false, secret_ttl, receipt_ttl))
            .await
            .expect("create");
        crate::eventually(EXPIRY_BOUND, "the secret expiring", || async {
            store.peek(&id).await.expect("peek").is_none().then_some(())
        })
        .await;
        assert_eq!(store.inspect(&id).await.expect("inspect"), None);
        assert_eq!(
            store.take_unprotected(&id, 1).await.expect("take"),
            Take::Missing
        );
        let receipt = store.receipt(&receipt_id).await.expect("read");
        if started.elapsed() + CLOCK_SLACK >= receipt_ttl {
            secret_ttl *= 2;
            assert!(
                secret_ttl < EXPIRY_BOUND,
                "this machine is too slow to tell"
            );
            continue;
        }
        let receipt = receipt.expect("the receipt outlives its secret");
        assert_eq!(
            (receipt.state, receipt.secret_ttl),
            (ReceiptState::New, None)
        );
        break receipt_id;
    };
    crate::eventually(EXPIRY_BOUND, "the receipt expiring", || async {
        store
            .receipt(&receipt_id)
            .await
            .expect("read")
            .is_none()
            .then_some(())
    })
    .await;
}

async fn concurrent_takes_succeed_exactly_once(store: Arc<dyn SecretStore>) {
    let key = unique("race");
    store
        .create(new_secret(&key, false, HOUR, 2 * HOUR))
        .await
        .expect("create");
    let id = SecretId::from_secret_key(&key);
    let takers: Vec<_> = (0..100)
        .map(|attempt| {
            let store = store.clone();
            tokio::spawn(async move {
                if attempt % 2 == 0 {
                    matches!(
                        store.take_unprotected(&id, 7).await.expect("take"),
                        Take::Taken(_)
                    )
                } else {
                    store.take(&id, 7).await.expect("take").is_some()
                }
            })
        })
        .collect();
    let mut winners = 0;
    for taker in takers {
        winners += usize::from(taker.await.expect("task"));
    }
    assert_eq!(winners, 1);
}

async fn peek_reads_without_taking(store: Arc<dyn SecretStore>) {
    let key = unique("peek");
    let new = new_secret(&key, false, HOUR, 2 * HOUR);
    let record = new.record.clone();
    store.create(new).await.expect("create");
    let id = SecretId::from_secret_key(&key);
    assert_eq!(store.peek(&id).await.expect("peek"), Some(record.clone()));
    assert_eq!(store.peek(&id).await.expect("peek"), Some(record.clone()));
    assert_eq!(store.take(&id, 3).await.expect("take"), Some(record));
    assert_eq!(store.peek(&id).await.expect("peek"), None);
}

async fn inspect_sees_protection_and_time_left_without_taking(store: Arc<dyn SecretStore>) {
    for (protected, end_to_end) in [(false, false), (true, false), (false, true), (true, true)] {
        let key = unique("inspect");
        let mut new = new_secret(&key, protected, HOUR, 2 * HOUR);
        new.record.end_to_end = end_to_end;
        let record = new.record.clone();
        let started = Instant::now();
        store.create(new).await.expect("create");
        let id = SecretId::from_secret_key(&key);
        for _ in 0..3 {
            let status = store
                .inspect(&id)
                .await
                .expect("inspect")
                .expect("the record is there");
            // The secret's hour began after `started`.
            let elapsed = started.elapsed();
            assert_eq!(status.protected, protected);
            assert_eq!(status.end_to_end, end_to_end);
            assert!(
                status.ttl + elapsed + CLOCK_SLACK >= HOUR && status.ttl <= HOUR,
                "{:?} left after {elapsed:?}",
                status.ttl
            );
        }
        // Nothing changed: the receipt is new, the record takes whole (an unprotected one
        // without its passphrase, whatever its other flags).
        assert_eq!(receipt_of(&store, &key).await.state, ReceiptState::New);
        let taken = if protected {
            store.take(&id, 3).await.expect("take")
        } else {
            match store.take_unprotected(&id, 3).await.expect("take") {
                Take::Taken(taken) => Some(taken),
                other @ (Take::Protected(_) | Take::Missing) => {
                    panic!("an unprotected record is taken at once, got {other:?}")
                }
            }
        };
        assert_eq!(taken, Some(record));
        assert_eq!(store.inspect(&id).await.expect("inspect"), None);
    }
    let never = SecretId::from_secret_key(&unique("never"));
    assert_eq!(store.inspect(&never).await.expect("inspect"), None);
}

async fn burn_is_exactly_once_and_marks_the_receipt(store: Arc<dyn SecretStore>) {
    let key = unique("burn");
    store
        .create(new_secret(&key, true, HOUR, 2 * HOUR))
        .await
        .expect("create");
    let id = SecretId::from_secret_key(&key);
    assert!(store.burn(&id, 40).await.expect("burn"));
    assert!(!store.burn(&id, 41).await.expect("burn again"));
    assert_eq!(store.take(&id, 42).await.expect("take"), None);
    let receipt = receipt_of(&store, &key).await;
    assert_eq!(receipt.state, ReceiptState::Burned);
    assert_eq!(
        (receipt.burned, receipt.received, receipt.updated),
        (Some(40), None, 40)
    );
    assert_eq!(receipt.secret_ttl, None);

    // A taken secret cannot be burned, and its receipt stays received.
    let key = unique("taken-then-burned");
    store
        .create(new_secret(&key, false, HOUR, 2 * HOUR))
        .await
        .expect("create");
    let id = SecretId::from_secret_key(&key);
    assert!(matches!(
        store.take_unprotected(&id, 50).await.expect("take"),
        Take::Taken(_)
    ));
    assert!(!store.burn(&id, 51).await.expect("burn"));
    let receipt = receipt_of(&store, &key).await;
    assert_eq!(
        (receipt.state, receipt.burned),
        (ReceiptState::Received, None)
    );
}

async fn recent_lists_an_owners_entries_newest_first(store: Arc<dyn SecretStore>) {
    let owner = OwnerId::from_custid(&unique("owner"));
    let other = OwnerId::from_custid(&unique("other-owner"));
    let with_entry = |key: &str, owner: OwnerId, created: i64, retain: Duration| NewSecret {
        created,
        recent: Some(RecentEntry {
            owner,
            sealed: format!("entry-{key}").into_bytes(),
            retain,
        }),
        ..new_secret(key, false, HOUR, 2 * HOUR)
    };
    let now = now_seconds();
    let month = Duration::from_secs(30 * 24 * 3600);
    for (index, key) in ["first", "second", "third"].iter().enumerate() {
        let created = now + i64::try_from(index).expect("small");
        store
            .create(with_entry(&unique(key), owner, created, month))
            .await
            .expect("create");
    }
    store
        .create(with_entry(&unique("theirs"), other, now, month))
        .await
        .expect("create");

    let entries = store.recent(&owner, now - 60, 10).await.expect("recent");
    let labels: Vec<String> = entries
        .iter()
        .map(|entry| {
            String::from_utf8_lossy(entry)
                .split('-')
                .nth(1)
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(labels, ["third", "second", "first"]);
    assert_eq!(
        store
            .recent(&owner, now - 60, 2)
            .await
            .expect("recent")
            .len(),
        2
    );
    assert_eq!(
        store
            .recent(&other, now - 60, 10)
            .await
            .expect("recent")
            .len(),
        1
    );
    let unknown = OwnerId::from_custid(&unique("nobody"));
    assert!(
        store
            .recent(&unknown, 0, 10)
            .await
            .expect("recent")
            .is_empty()
    );
    // `since` cuts off older entries (one hour in the future: none are that new).
    assert!(
        store
            .recent(&owner, now + 3600, 10)
            .await
            .expect("recent")
            .is_empty()
    );
}

fn now_seconds() -> i64 {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(elapsed.as_secs()).expect("fits")
}

async fn failed_attempts_burn_the_secret_at_the_limit(store: Arc<dyn SecretStore>) {
    let key = unique("attempts");
    store
        .create(new_secret(&key, true, HOUR, 2 * HOUR))
        .await
        .expect("create");
    let id = SecretId::from_secret_key(&key);
    assert_eq!(
        store.fail_attempt(&id, 3, 60).await.expect("fail"),
        FailedAttempt::Remaining(2)
    );
    assert_eq!(
        store.fail_attempt(&id, 3, 61).await.expect("fail"),
        FailedAttempt::Remaining(1)
    );
    assert!(
        store.peek(&id).await.expect("peek").is_some(),
        "still there before the limit"
    );
    assert_eq!(
        store.fail_attempt(&id, 3, 62).await.expect("fail"),
        FailedAttempt::Burned
    );
    assert_eq!(store.peek(&id).await.expect("peek"), None);
    assert_eq!(
        store.fail_attempt(&id, 3, 63).await.expect("fail"),
        FailedAttempt::Missing
    );
    let receipt = receipt_of(&store, &key).await;
    assert_eq!(
        (receipt.state, receipt.burned),
        (ReceiptState::Burned, Some(62))
    );

    // Counts belong to one secret; a reveal in between does not reset another's count.
    let other = unique("other-attempts");
    store
        .create(new_secret(&other, true, HOUR, 2 * HOUR))
        .await
        .expect("create");
    let other_id = SecretId::from_secret_key(&other);
    assert_eq!(
        store.fail_attempt(&other_id, 2, 70).await.expect("fail"),
        FailedAttempt::Remaining(1)
    );
    assert_eq!(
        store
            .take(&other_id, 71)
            .await
            .expect("take")
            .map(|record| record.protected),
        Some(true)
    );
}

async fn rate_limits_count_a_sliding_window_per_key(store: Arc<dyn RateLimiter>) {
    // The fourth request is limited only if all four fall inside one window. That is only
    // decided if this machine made them within the window, measured, not assumed: otherwise the
    // scenario runs again with a longer window.
    let mut window = Duration::from_millis(400);
    let (key, retry_after) = loop {
        let key = RateKey::new("create", &unique("caller"));
        let started = Instant::now();
        for _ in 0..3 {
            assert_eq!(
                store
                    .rate_limit(&key, 3, window, Lease::ONE)
                    .await
                    .expect("count"),
                RateDecision::Allowed { granted: 1 }
            );
        }
        let fourth = store
            .rate_limit(&key, 3, window, Lease::ONE)
            .await
            .expect("count");
        if started.elapsed() + CLOCK_SLACK >= window {
            window *= 2;
            assert!(window < EXPIRY_BOUND, "this machine is too slow to tell");
            continue;
        }
        let RateDecision::Limited { retry_after } = fourth else {
            panic!("the fourth request in the window must be limited");
        };
        break (key, retry_after);
    };
    assert!(
        retry_after > Duration::ZERO && retry_after <= window,
        "{retry_after:?}"
    );
    let other = RateKey::new("create", &unique("other-caller"));
    assert_eq!(
        store
            .rate_limit(&other, 3, window, Lease::ONE)
            .await
            .expect("count"),
        RateDecision::Allowed { granted: 1 }
    );
    // Waiting as told (and the clock allowance) is enough: the oldest request has left the
    // window by then.
    tokio::time::sleep(retry_after + CLOCK_SLACK).await;
    assert_eq!(
        store
            .rate_limit(&key, 3, window, Lease::ONE)
            .await
            .expect("count"),
        RateDecision::Allowed { granted: 1 }
    );
}

async fn rate_limit_leases_grant_what_is_left_and_count_for_the_window_and_hold(
    store: Arc<dyn RateLimiter>,
) {
    let window = Duration::from_secs(60);
    let lease = |count| Lease {
        count,
        hold: Duration::from_secs(5),
    };
    let key = RateKey::new("read", &unique("leasing-caller"));
    let started = Instant::now();
    // Four, four, then the two left of ten: a lease gets what is left, and a plain request
    // after it none.
    for granted in [4, 4, 2] {
        assert_eq!(
            store
                .rate_limit(&key, 10, window, lease(4))
                .await
                .expect("lease"),
            RateDecision::Allowed { granted }
        );
    }
    let RateDecision::Limited { retry_after } = store
        .rate_limit(&key, 10, window, Lease::ONE)
        .await
        .expect("count")
    else {
        panic!("ten of ten are counted");
    };
    // The first lease counts for the window and its hold from when it was granted, whatever
    // time has passed since.
    let counted_for = window + Duration::from_secs(5);
    assert!(
        retry_after <= counted_for && retry_after + started.elapsed() + CLOCK_SLACK >= counted_for,
        "{retry_after:?}"
    );
}

/// Runs every conformance scenario against `store`, in both its roles.
pub async fn conformance<S: SecretStore + RateLimiter>(store: Arc<S>) {
    let rate_limiter: Arc<dyn RateLimiter> = store.clone();
    let store: Arc<dyn SecretStore> = store;
    failed_attempts_burn_the_secret_at_the_limit(store.clone()).await;
    rate_limits_count_a_sliding_window_per_key(rate_limiter.clone()).await;
    rate_limit_leases_grant_what_is_left_and_count_for_the_window_and_hold(rate_limiter).await;
    peek_reads_without_taking(store.clone()).await;
    inspect_sees_protection_and_time_left_without_taking(store.clone()).await;
    burn_is_exactly_once_and_marks_the_receipt(store.clone()).await;
    recent_lists_an_owners_entries_newest_first(store.clone()).await;
    create_then_receipt_is_new(store.clone()).await;
    take_is_exactly_once_and_marks_the_receipt(store.clone()).await;
    protected_records_are_left_in_place_until_taken(store.clone()).await;
    unknown_ids_are_missing(store.clone()).await;
    concurrent_takes_succeed_exactly_once(store.clone()).await;
    everything_expires_by_ttl(store).await;
}
