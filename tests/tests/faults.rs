//! Redis faults under load: Redis is killed while clients reveal over REST and gRPC, then
//! restarted. While Redis is down every answer is a documented 503/UNAVAILABLE, readiness
//! follows Redis, the service recovers without a restart, and over the whole run no secret is
//! revealed twice and no reveal returns a wrong value. (Redis runs with `appendfsync always`, so
//! what it acknowledged survives the crash: a burned secret must stay burned, an unread one
//! readable.)
//!
//! Every phase of the crash test is driven by events the test observes (reveals done, answers
//! given during the outage, readiness), never by how much the machine gets done in a time window,
//! so it asserts the same on a slow machine as on a fast one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use burnbox_core::ErrorKind;
use burnbox_spec::v1::secrets_client::SecretsClient;
use burnbox_tests::{
    Backend, TestRedis, TestServer, assert_grpc_error, assert_rest_error, eventually,
    grpc_reveal_request, json_of, rest_share,
};
use reqwest::StatusCode;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tonic::transport::Channel;

const SECRETS: usize = 400;
const WORKERS: usize = 16;
/// Redis is killed once this many secrets have been revealed: mid-run, with reveals in flight.
const REVEALS_BEFORE_CRASH: usize = SECRETS / 8;
/// Far above any Redis answer time on a loaded machine, so a 503 while Redis is up is a failure
/// rather than a slow disk; it plays no part in the outage, where a killed Redis refuses
/// connections at once.
const REDIS_TIMEOUT_MS: u64 = 10_000;
/// Upper bound for one answer: only there to fail a hung request instead of hanging the test.
/// That answers do not wait for Redis to come back is shown exactly: Redis stays down until every
/// worker has been answered during the outage.
const ANSWER_BOUND: Duration = Duration::from_secs(30);
/// Upper bound for each phase of the test (reveals before the crash, answers during the outage,
/// recovery), again only there to fail instead of hanging.
const PHASE_BOUND: Duration = Duration::from_secs(120);

/// Where the crash test is, set by the test around each step it takes on Redis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// Redis is up.
    #[default]
    Up,
    /// Redis is being killed: requests sent now may or may not reach it.
    Crashing,
    /// Redis is dead.
    Down,
    /// Redis is being started again.
    Restarting,
    /// Readiness has reported the store back.
    Recovered,
}

/// What a reveal got back (error answers are checked against the wire table on the way).
enum Answer {
    Value(String),
    NotFound,
    Unavailable,
}

/// Everything the workers observed, and the phase, shared through a watch channel so the test
/// can wait for what it needs.
#[derive(Default)]
struct Ledger {
    phase: Phase,
    /// How many times each key's value was returned.
    revealed: HashMap<String, usize>,
    /// Keys whose reveal was sent before Redis died and answered 503: Redis may have run its
    /// `GETDEL` without the answer reaching the server, the only way a secret may be lost.
    failed_at_crash: HashSet<String>,
    /// Workers answered for a request sent and answered while Redis was dead.
    answered_in_outage: HashSet<usize>,
    unavailable: usize,
    not_found: usize,
}

/// One caller revealing over both transports.
#[derive(Clone)]
struct Revealer {
    http: reqwest::Client,
    api: String,
    grpc: SecretsClient<Channel>,
}

impl Revealer {
    /// Reveals `key` over REST or gRPC, failing a hung request after [`ANSWER_BOUND`].
    async fn reveal(&mut self, key: &str, over_rest: bool) -> Answer {
        let answer = async {
            if over_rest {
                self.reveal_over_rest(key).await
            } else {
                self.reveal_over_grpc(key).await
            }
        };
        tokio::time::timeout(ANSWER_BOUND, answer)
            .await
            .unwrap_or_else(|_| panic!("a reveal got no answer within {ANSWER_BOUND:?}"))
    }

    async fn reveal_over_rest(&self, key: &str) -> Answer {
        let response = self
            .http
            .post(format!("{}/secret/{key}", self.api))
            .send()
            .await
            .expect("REST answers");
        let answer = json_of(response).await;
        match answer.0 {
            StatusCode::OK => Answer::Value(answer.1["value"].as_str().expect("value").to_owned()),
            StatusCode::NOT_FOUND => {
                assert_rest_error(&answer, ErrorKind::NotFound, None);
                Answer::NotFound
            }
            _ => {
                assert_rest_error(&answer, ErrorKind::Unavailable, None);
                Answer::Unavailable
            }
        }
    }

    async fn reveal_over_grpc(&mut self, key: &str) -> Answer {
        match self
            .grpc
            .reveal_secret(grpc_reveal_request(key, None))
            .await
        {
            Ok(revealed) => Answer::Value(revealed.into_inner().value),
            Err(status) if status.code() == tonic::Code::NotFound => {
                assert_grpc_error(&status, ErrorKind::NotFound, None);
                Answer::NotFound
            }
            Err(status) => {
                assert_grpc_error(&status, ErrorKind::Unavailable, None);
                Answer::Unavailable
            }
        }
    }
}

/// Reveals every key in turn, round after round, alternating transports, until the service has
/// answered it (not 503) after recovery. Every answer is checked against the phases it spans.
async fn worker(
    worker: usize,
    keys: Arc<Vec<String>>,
    expected: Arc<HashMap<String, String>>,
    ledger: Arc<watch::Sender<Ledger>>,
    mut revealer: Revealer,
) {
    let phase = || ledger.borrow().phase;
    let mut over_rest = worker.is_multiple_of(2);
    loop {
        for key in keys.iter() {
            over_rest = !over_rest;
            let sent = phase();
            let answer = revealer.reveal(key, over_rest).await;
            let answered = phase();
            let in_outage = sent == Phase::Down && answered == Phase::Down;
            match &answer {
                Answer::Value(value) => assert_eq!(
                    Some(value),
                    expected.get(key),
                    "a reveal returned a wrong value"
                ),
                Answer::Unavailable => assert!(
                    !(sent == Phase::Up && answered == Phase::Up) && sent != Phase::Recovered,
                    "503/UNAVAILABLE while Redis was up (sent {sent:?}, answered {answered:?})"
                ),
                Answer::NotFound => {}
            }
            assert!(
                !in_outage || matches!(answer, Answer::Unavailable),
                "only 503/UNAVAILABLE while Redis is dead"
            );
            ledger.send_modify(|ledger| {
                match answer {
                    Answer::Value(_) => *ledger.revealed.entry(key.clone()).or_default() += 1,
                    Answer::NotFound => ledger.not_found += 1,
                    Answer::Unavailable => {
                        ledger.unavailable += 1;
                        if matches!(sent, Phase::Up | Phase::Crashing) {
                            ledger.failed_at_crash.insert(key.clone());
                        }
                    }
                }
                if in_outage {
                    ledger.answered_in_outage.insert(worker);
                }
            });
            if sent == Phase::Recovered {
                return;
            }
        }
    }
}

/// Waits until the ledger satisfies `done`. A worker that fails meanwhile fails the test with
/// its own message.
async fn wait_for(
    ledger: &watch::Sender<Ledger>,
    workers: &mut JoinSet<()>,
    what: &str,
    done: impl FnMut(&Ledger) -> bool,
) {
    let mut changes = ledger.subscribe();
    tokio::select! {
        reached = tokio::time::timeout(PHASE_BOUND, changes.wait_for(done)) => {
            reached
                .unwrap_or_else(|_| panic!("{what} did not happen within {PHASE_BOUND:?}"))
                .expect("the ledger outlives the test");
        }
        Some(ended) = workers.join_next() => {
            if let Err(failure) = ended {
                std::panic::resume_unwind(failure.into_panic());
            }
            panic!("a worker stopped before {what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_crash_and_restart_under_load_reveal_nothing_twice_and_recover() {
    let mut server = TestServer::start_with(Backend::Redis(TestRedis::start_durable()), |config| {
        config.redis_timeout_ms = REDIS_TIMEOUT_MS;
    })
    .await;
    let mut expected = HashMap::new();
    for index in 0..SECRETS {
        let value = format!("fault-value-{index}");
        let (status, receipt) = rest_share(&server, &[("secret", &value)]).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        expected.insert(
            receipt["secret_key"].as_str().expect("key").to_owned(),
            value,
        );
    }
    let expected = Arc::new(expected);
    let keys: Arc<Vec<String>> = Arc::new(expected.keys().cloned().collect());
    let ledger = Arc::new(watch::Sender::new(Ledger::default()));
    let revealer = Revealer {
        http: server.http.clone(),
        api: server.api(""),
        grpc: SecretsClient::new(server.grpc_channel().await),
    };
    let set_phase = |phase| ledger.send_modify(|ledger| ledger.phase = phase);

    // Every worker tries every key, in the same order, so reveals of one key race each other
    // over both transports.
    let mut workers = JoinSet::new();
    for index in 0..WORKERS {
        workers.spawn(worker(
            index,
            keys.clone(),
            expected.clone(),
            ledger.clone(),
            revealer.clone(),
        ));
    }

    wait_for(
        &ledger,
        &mut workers,
        "the reveals before the crash",
        |ledger| ledger.revealed.len() >= REVEALS_BEFORE_CRASH,
    )
    .await;
    set_phase(Phase::Crashing);
    server.backend.test_redis().expect("redis").stop();
    set_phase(Phase::Down);
    // Readiness follows Redis.
    assert_eq!(server.readiness().await, StatusCode::SERVICE_UNAVAILABLE);
    // Redis stays down until every worker has been answered during the outage: no request waits
    // for Redis to come back.
    wait_for(
        &ledger,
        &mut workers,
        "an answer to every worker during the outage",
        |ledger| ledger.answered_in_outage.len() == WORKERS,
    )
    .await;
    set_phase(Phase::Restarting);
    server.backend.test_redis().expect("redis").restart();
    eventually(PHASE_BOUND, "readiness after the crash", || async {
        (server.readiness().await == StatusCode::OK).then_some(())
    })
    .await;
    set_phase(Phase::Recovered);
    // Each worker stops once the recovered service has answered it.
    tokio::time::timeout(PHASE_BOUND, async {
        while let Some(ended) = workers.join_next().await {
            if let Err(failure) = ended {
                std::panic::resume_unwind(failure.into_panic());
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the workers were not answered within {PHASE_BOUND:?} of recovery"));

    // A final sweep reveals every key once more. A key a worker revealed must be gone; any
    // other must still be there with its value, unless Redis took it in the crash: its reveal
    // was in flight when Redis died after running GETDEL but before answering (the client got a
    // 503). At most once is the safe side for a one-time secret, and each worker has at most
    // one reveal in flight.
    // The workers are done: the ledger is final.
    let ledger = ledger.send_replace(Ledger::default());
    let twice: Vec<_> = ledger
        .revealed
        .iter()
        .filter(|(_, count)| **count > 1)
        .collect();
    assert!(twice.is_empty(), "revealed more than once: {twice:?}");
    let mut sweeper = revealer.clone();
    let mut lost = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        match sweeper.reveal(key, index.is_multiple_of(2)).await {
            Answer::Value(value) => {
                assert_eq!(
                    Some(&value),
                    expected.get(key),
                    "a wrong value in the sweep"
                );
                assert!(
                    !ledger.revealed.contains_key(key),
                    "revealed again after the crash: {key}"
                );
            }
            Answer::NotFound => {
                if !ledger.revealed.contains_key(key) {
                    lost.push(key);
                }
            }
            Answer::Unavailable => panic!("503/UNAVAILABLE after recovery"),
        }
    }
    assert!(
        lost.iter().all(|key| ledger.failed_at_crash.contains(*key)),
        "secrets gone without a reveal that failed at the crash"
    );
    assert!(
        lost.len() <= WORKERS,
        "{} secrets lost, more than the {WORKERS} reveals in flight at the crash",
        lost.len()
    );
    eprintln!(
        "revealed by workers {}, failed at the crash {}, lost in flight {}, \
         unavailable answers {}, not-found answers {}",
        ledger.revealed.len(),
        ledger.failed_at_crash.len(),
        lost.len(),
        ledger.unavailable,
        ledger.not_found
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_before_redis_is_unready_then_serves() {
    let mut redis = TestRedis::start_own();
    redis.stop();
    let mut server = TestServer::start(Backend::Redis(redis)).await;
    assert_rest_error(
        &rest_share(&server, &[("secret", "early")]).await,
        ErrorKind::Unavailable,
        None,
    );
    let mut client = server.grpc().await;
    let status = client
        .reveal_secret(grpc_reveal_request(
            &"0".repeat(burnbox_core::KEY_LENGTH),
            None,
        ))
        .await
        .expect_err("no store yet");
    assert_grpc_error(&status, ErrorKind::Unavailable, None);
    let ready = server.readiness().await;
    assert_eq!(ready, StatusCode::SERVICE_UNAVAILABLE);

    server.backend.test_redis().expect("redis").restart();
    server.assert_recovers("once redis is up").await;
}

/// A connection that waits for answers as long as they take: DEBUG RELOAD answers only once
/// loading is over, and a loaded machine may take longer than the client's default 500 ms.
async fn patient_connection(redis: &TestRedis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .expect("valid URL")
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new().set_response_timeout(None),
        )
        .await
        .expect("connect to test redis")
}

/// A Redis that is up but still loading its data (after a restart with a large dataset) answers
/// `LOADING`: that is an outage that passes by itself, a 503 like a Redis that is down, never a
/// 500, and the service serves again once loading ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_loading_its_data_is_unavailable_then_serves() {
    let redis = TestRedis::start_with_args(&[
        "--enable-debug-command",
        "yes",
        "--loading-process-events-interval-bytes",
        "1024",
    ]);
    let mut admin = patient_connection(&redis).await;
    let mut reloading = patient_connection(&redis).await;
    let server = TestServer::start(Backend::Redis(redis)).await;
    let (status, shared) = rest_share(&server, &[("secret", "kept across the reload")]).await;
    assert_eq!(status, StatusCode::OK, "{shared}");
    let key = shared["secret_key"]
        .as_str()
        .expect("secret_key")
        .to_owned();
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(100_000)
        .query_async(&mut admin)
        .await
        .expect("DEBUG POPULATE");
    // A millisecond per key: loading lasts far longer than the test needs (it ends it early), and
    // Redis still answers other clients between keys.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("key-load-delay")
        .arg(1_000)
        .query_async(&mut admin)
        .await
        .expect("CONFIG SET key-load-delay");
    let reload = tokio::spawn(async move {
        redis::cmd("DEBUG")
            .arg("RELOAD")
            .query_async::<()>(&mut reloading)
            .await
    });
    eventually(Duration::from_secs(30), "Redis loading", || {
        let mut admin = admin.clone();
        async move {
            let answer = redis::cmd("PING").query_async::<String>(&mut admin).await;
            answer
                .is_err_and(|err| err.code() == Some("LOADING"))
                .then_some(())
        }
    })
    .await;

    assert_rest_error(
        &rest_share(&server, &[("secret", "while loading")]).await,
        ErrorKind::Unavailable,
        None,
    );
    let status = server
        .grpc()
        .await
        .reveal_secret(grpc_reveal_request(&key, None))
        .await
        .expect_err("Redis is loading");
    assert_grpc_error(&status, ErrorKind::Unavailable, None);
    assert_eq!(server.readiness().await, StatusCode::SERVICE_UNAVAILABLE);

    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("key-load-delay")
        .arg(0)
        .query_async(&mut admin)
        .await
        .expect("CONFIG SET key-load-delay during loading");
    reload.await.expect("reload task").expect("DEBUG RELOAD");
    server.assert_recovers("once loading is done").await;
    let (status, revealed) = burnbox_tests::rest_reveal(&server, &key, None).await;
    assert_eq!(status, StatusCode::OK, "{revealed}");
    assert_eq!(revealed["value"], "kept across the reload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_master_key_found_late_touches_no_secret() {
    let redis = TestRedis::start_durable();
    let url = redis.url();
    let mut right = TestServer::start(Backend::Redis(redis)).await;
    let (_, shared) = rest_share(&right, &[("secret", "keep me")]).await;
    let key = shared["secret_key"].as_str().expect("key").to_owned();

    // A server with a foreign key starts while Redis is down, so it cannot check its key yet.
    right.backend.test_redis().expect("redis").stop();
    let wrong = TestServer::start_with(Backend::Memory, |config| {
        config.redis_url = Some(url);
        config.master_key = Some(base64_of([9u8; 32]));
    })
    .await;
    right.backend.test_redis().expect("redis").restart();
    let answer = eventually(Duration::from_secs(30), "Redis coming back", || async {
        let answer = burnbox_tests::rest_reveal(&wrong, &key, None).await;
        (answer.0 != StatusCode::SERVICE_UNAVAILABLE).then_some(answer)
    })
    .await;
    assert_rest_error(&answer, ErrorKind::Internal, None);
    let ready = wrong.readiness().await;
    assert_eq!(
        ready,
        StatusCode::SERVICE_UNAVAILABLE,
        "never ready with the wrong key"
    );
    // The right server (reconnecting on its own) still finds the secret untouched.
    let (status, revealed) = eventually(
        Duration::from_secs(30),
        "the right server reconnecting",
        || async {
            let answer = burnbox_tests::rest_reveal(&right, &key, None).await;
            (answer.0 != StatusCode::SERVICE_UNAVAILABLE).then_some(answer)
        },
    )
    .await;
    assert_eq!(
        (status, revealed["value"].as_str()),
        (StatusCode::OK, Some("keep me"))
    );
}

fn base64_of(bytes: [u8; 32]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
