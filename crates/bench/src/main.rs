//! `burnbox-bench`: how close a reveal gets to its floor, one Redis round trip.
//!
//! Against a running server and its Redis it measures, with the same client concurrency:
//! shares over REST; reveals over REST (HTTP/1.1 keep-alive) and over gRPC (HTTP/2, a few
//! connections), each on secrets created beforehand (untimed: a secret reveals only once); and
//! the baseline, raw `GETDEL` on the same Redis. It prints throughput, latency percentiles,
//! errors, each reveal's throughput as a ratio of the baseline's and, given the server's pid,
//! the server's CPU time per request (its own cost, apart from what the load generator and
//! Redis take of a shared machine), as a table or as JSON. It exits non-zero when any measured
//! request failed.

mod rest;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use burnbox_spec::v1::secrets_client::SecretsClient;
use burnbox_spec::v1::{RevealSecretRequest, ShareSecretRequest};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use tokio::sync::Mutex;
use tonic::transport::Channel;

use crate::rest::RestConnection;

/// The generator's allocator matches the server's, so neither pays glibc's arena locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What to measure.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// Timed shares over REST.
    ShareRest,
    /// Timed reveals over REST.
    RevealRest,
    /// Timed reveals over gRPC.
    RevealGrpc,
    /// Timed raw GETDEL on Redis: the floor.
    Baseline,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::ShareRest => "share REST",
            Self::RevealRest => "reveal REST",
            Self::RevealGrpc => "reveal gRPC",
            Self::Baseline => "GETDEL baseline",
        }
    }
}

/// Load generator for burnbox (rate limits must be off on the server: BURNBOX_RATE_LIMIT_*=0).
#[derive(Parser, Debug)]
#[command(name = "burnbox-bench", version, about)]
struct Args {
    /// The server's REST base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    http: String,
    /// The server's gRPC URL.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    grpc: String,
    /// The Redis the server uses (for the baseline).
    #[arg(long, default_value = "redis://127.0.0.1:6379/")]
    redis: String,
    /// Requests per scenario (and secrets created for each reveal scenario).
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Concurrent clients.
    #[arg(long, short = 'c', default_value_t = 64)]
    concurrency: usize,
    /// HTTP/2 connections the gRPC clients share.
    #[arg(long, default_value_t = 4)]
    grpc_connections: usize,
    /// Redis connections the baseline's clients use: by default one per client, as each REST
    /// client has its own connection; 1 multiplexes them all on one (pipelining, as the server
    /// does), which is Redis's ceiling rather than a client's floor.
    #[arg(long)]
    baseline_connections: Option<usize>,
    /// Size of each secret, in bytes.
    #[arg(long, default_value_t = 64)]
    secret_bytes: usize,
    /// Scenarios to run, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "baseline,reveal-rest,reveal-grpc,share-rest"
    )]
    scenarios: Vec<Scenario>,
    /// The server's process id, to report its CPU time per request and its peak resident
    /// memory (Linux, server on this host).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The measurements of one scenario.
struct Measured {
    scenario: Scenario,
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latency_micros: Histogram<u64>,
    /// CPU time the server process spent during the timed requests, if its pid is known.
    server_cpu: Option<Duration>,
}

impl Measured {
    fn throughput(&self) -> f64 {
        (self.requests - self.errors) as f64 / self.elapsed.as_secs_f64()
    }

    fn millis(&self, quantile: f64) -> f64 {
        self.latency_micros.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// The server's CPU time per request in µs: its own cost, whatever the load generator and
    /// Redis took of the shared machine.
    fn server_micros_per_request(&self) -> Option<f64> {
        let cpu = self.server_cpu?;
        (self.requests > 0).then(|| cpu.as_secs_f64() * 1e6 / self.requests as f64)
    }
}

/// One request of a scenario; `Ok(true)` is a success, `Ok(false)` a wrong answer.
type Outcome = Result<bool, String>;

/// CPU time (user + system, all threads) of process `pid` so far, from /proc. Linux reports it
/// in USER_HZ ticks, which the kernel fixes at 100 per second for user space whatever its own
/// tick rate; a 10 ms resolution is fine over runs of seconds.
fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are plain.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Runs `requests` calls of `call(worker, index)` on `concurrency` workers (numbered from 0, so
/// a worker can own a connection); returns the measurements, with the CPU time `server` (a
/// pid) spent meanwhile.
async fn drive<F, Fut>(
    scenario: Scenario,
    requests: usize,
    concurrency: usize,
    server: Option<u32>,
    call: F,
) -> Measured
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Outcome> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let server_cpu_before = server.and_then(process_cpu);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let (next, call) = (next.clone(), call.clone());
        workers.spawn(async move {
            let mut latency = new_histogram();
            let mut errors = 0;
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= requests {
                    break;
                }
                let sent = Instant::now();
                let ok = matches!(call(worker, index).await, Ok(true));
                // Saturate rather than fail on a pathological latency.
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                latency.saturating_record(micros);
                errors += usize::from(!ok);
            }
            (latency, errors)
        });
    }
    let mut latency_micros = new_histogram();
    let mut errors = 0;
    while let Some(joined) = workers.join_next().await {
        let (latency, worker_errors) =
            joined.unwrap_or_else(|err| panic!("a worker panicked: {err}"));
        latency_micros
            .add(latency)
            .unwrap_or_else(|err| panic!("merging histograms: {err}"));
        errors += worker_errors;
    }
    let elapsed = started.elapsed();
    let server_cpu = server
        .and_then(process_cpu)
        .zip(server_cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    Measured {
        scenario,
        requests,
        errors,
        elapsed,
        latency_micros,
        server_cpu,
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 60 s at 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|err| panic!("histogram: {err}"))
}

fn secret_value(index: usize, bytes: usize) -> String {
    let mut value = format!("bench-{index}-");
    value.extend(std::iter::repeat_n('x', bytes.saturating_sub(value.len())));
    value
}

async fn grpc_clients(args: &Args) -> Result<Vec<SecretsClient<Channel>>, String> {
    let mut clients = Vec::new();
    for _ in 0..args.grpc_connections.max(1) {
        let channel = Channel::from_shared(args.grpc.clone())
            .map_err(|err| format!("gRPC URL: {err}"))?
            .connect()
            .await
            .map_err(|err| format!("cannot reach gRPC at {}: {err}", args.grpc))?;
        clients.push(SecretsClient::new(channel));
    }
    Ok(clients)
}

/// Creates `count` secrets over gRPC (untimed) and returns their keys with their values.
async fn create_secrets(args: &Args, count: usize) -> Result<Arc<Vec<(String, String)>>, String> {
    let clients = Arc::new(grpc_clients(args).await?);
    let created = Arc::new(std::sync::Mutex::new(vec![
        (String::new(), String::new());
        count
    ]));
    let bytes = args.secret_bytes;
    let (clients_ref, created_ref) = (clients.clone(), created.clone());
    let measured = drive(
        Scenario::ShareRest,
        count,
        args.concurrency,
        None,
        move |_, index| {
            let mut client = clients_ref[index % clients_ref.len()].clone();
            let created = created_ref.clone();
            async move {
                let value = secret_value(index, bytes);
                let request = ShareSecretRequest {
                    secret: value.clone(),
                    ttl: Some(3600),
                    ..Default::default()
                };
                let receipt = client
                    .share_secret(request)
                    .await
                    .map_err(|status| status.to_string())?;
                let key = receipt.into_inner().secret_key.unwrap_or_default();
                created.lock().map_err(|_| "lock poisoned".to_owned())?[index] = (key, value);
                Ok(true)
            }
        },
    )
    .await;
    if measured.errors > 0 {
        return Err(format!(
            "{} of {count} secrets could not be created (are rate limits off?)",
            measured.errors
        ));
    }
    let created = std::mem::take(&mut *created.lock().map_err(|_| "lock poisoned".to_owned())?);
    Ok(Arc::new(created))
}

/// One REST connection per client, each behind a lock only its own worker takes.
async fn rest_connections(args: &Args) -> Result<Arc<Vec<Mutex<RestConnection>>>, String> {
    let mut connections = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        connections.push(Mutex::new(RestConnection::connect(&args.http).await?));
    }
    Ok(Arc::new(connections))
}

/// The part of a reveal's JSON answer the generator checks.
#[derive(serde::Deserialize)]
struct Revealed {
    value: String,
}

async fn reveal_rest(args: &Args) -> Result<Measured, String> {
    let secrets = create_secrets(args, args.requests).await?;
    let connections = rest_connections(args).await?;
    Ok(drive(
        Scenario::RevealRest,
        args.requests,
        args.concurrency,
        args.server_pid,
        move |worker, index| {
            let (connections, secrets) = (connections.clone(), secrets.clone());
            async move {
                let (key, value) = &secrets[index];
                let path = format!("/api/v1/secret/{key}");
                let mut connection = connections[worker].lock().await;
                let response = connection.post(&path, None, Bytes::new()).await?;
                if !response.status.is_success() {
                    return Ok(false);
                }
                let revealed: Revealed =
                    serde_json::from_slice(&response.body).map_err(|err| err.to_string())?;
                Ok(revealed.value == *value)
            }
        },
    )
    .await)
}

async fn reveal_grpc(args: &Args) -> Result<Measured, String> {
    let secrets = create_secrets(args, args.requests).await?;
    let clients = Arc::new(grpc_clients(args).await?);
    Ok(drive(
        Scenario::RevealGrpc,
        args.requests,
        args.concurrency,
        args.server_pid,
        move |_, index| {
            let mut client = clients[index % clients.len()].clone();
            let secrets = secrets.clone();
            async move {
                let request = RevealSecretRequest {
                    key: secrets[index].0.clone(),
                    passphrase: None,
                };
                let revealed = client
                    .reveal_secret(request)
                    .await
                    .map_err(|status| status.to_string())?;
                Ok(revealed.into_inner().value == secrets[index].1)
            }
        },
    )
    .await)
}

async fn share_rest(args: &Args) -> Result<Measured, String> {
    let connections = rest_connections(args).await?;
    let bytes = args.secret_bytes;
    Ok(drive(
        Scenario::ShareRest,
        args.requests,
        args.concurrency,
        args.server_pid,
        move |worker, index| {
            let connections = connections.clone();
            async move {
                let value = secret_value(index, bytes);
                let form =
                    serde_urlencoded::to_string([("secret", value.as_str()), ("ttl", "3600")])
                        .map_err(|err| err.to_string())?;
                let mut connection = connections[worker].lock().await;
                let response = connection
                    .post(
                        "/api/v1/share",
                        Some("application/x-www-form-urlencoded"),
                        Bytes::from(form),
                    )
                    .await?;
                Ok(response.status.is_success())
            }
        },
    )
    .await)
}

async fn baseline(args: &Args) -> Result<Measured, String> {
    let client =
        redis::Client::open(args.redis.as_str()).map_err(|err| format!("Redis URL: {err}"))?;
    let mut connections = Vec::new();
    for _ in 0..args.baseline_connections.unwrap_or(args.concurrency).max(1) {
        connections.push(
            client
                .get_multiplexed_async_connection()
                .await
                .map_err(|err| format!("cannot reach Redis at {}: {err}", args.redis))?,
        );
    }
    let connections = Arc::new(connections);
    let connection = connections[0].clone();
    // Records as large as the server's: the sealed secret plus nonce, tag and framing.
    let stored = "y".repeat(args.secret_bytes + 64);
    let run = std::process::id();
    for chunk in (0..args.requests).collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for index in chunk {
            pipe.cmd("SET")
                .arg(format!("bench:{run}:{index}"))
                .arg(&stored)
                .arg("EX")
                .arg(3600)
                .ignore();
        }
        let mut setup = connection.clone();
        pipe.exec_async(&mut setup)
            .await
            .map_err(|err| err.to_string())?;
    }
    Ok(drive(
        Scenario::Baseline,
        args.requests,
        args.concurrency,
        // The server has no part in the baseline.
        None,
        move |_, index| {
            let mut connection = connections[index % connections.len()].clone();
            async move {
                let value: Option<Vec<u8>> = redis::cmd("GETDEL")
                    .arg(format!("bench:{run}:{index}"))
                    .query_async(&mut connection)
                    .await
                    .map_err(|err| err.to_string())?;
                Ok(value.is_some())
            }
        },
    )
    .await)
}

/// The peak resident set size of `pid` in MiB, from /proc.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn report(args: &Args, results: &[Measured]) {
    let baseline = results
        .iter()
        .find(|measured| measured.scenario == Scenario::Baseline)
        .map(Measured::throughput);
    let ratio = |measured: &Measured| match (measured.scenario, baseline) {
        (Scenario::RevealRest | Scenario::RevealGrpc, Some(floor)) if floor > 0.0 => {
            Some(measured.throughput() / floor)
        }
        (
            Scenario::RevealRest | Scenario::RevealGrpc | Scenario::ShareRest | Scenario::Baseline,
            _,
        ) => None,
    };
    let rss = args.server_pid.and_then(peak_rss_mib);
    if args.json {
        let rows: Vec<_> = results
            .iter()
            .map(|measured| {
                serde_json::json!({
                    "scenario": measured.scenario.name(),
                    "requests": measured.requests,
                    "errors": measured.errors,
                    "seconds": measured.elapsed.as_secs_f64(),
                    "throughput_per_second": measured.throughput(),
                    "latency_ms": {
                        "p50": measured.millis(0.50),
                        "p90": measured.millis(0.90),
                        "p99": measured.millis(0.99),
                        "max": measured.latency_micros.max() as f64 / 1000.0,
                    },
                    "ratio_to_baseline": ratio(measured),
                    "server_cpu_us_per_request": measured.server_micros_per_request(),
                })
            })
            .collect();
        let document = serde_json::json!({
            "concurrency": args.concurrency,
            "grpc_connections": args.grpc_connections,
            "baseline_connections": args.baseline_connections.unwrap_or(args.concurrency),
            "secret_bytes": args.secret_bytes,
            "results": rows,
            "server_peak_rss_mib": rss,
        });
        println!("{document:#}");
        return;
    }
    println!(
        "concurrency {}, {} requests per scenario, {}-byte secrets, {} gRPC connections, {} baseline Redis connections",
        args.concurrency,
        args.requests,
        args.secret_bytes,
        args.grpc_connections,
        args.baseline_connections.unwrap_or(args.concurrency)
    );
    println!(
        "{:<16} {:>10} {:>7} {:>9} {:>9} {:>9} {:>9} {:>10} {:>13}",
        "scenario",
        "req/s",
        "errors",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "/baseline",
        "server µs/req"
    );
    for measured in results {
        println!(
            "{:<16} {:>10.0} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10} {:>13}",
            measured.scenario.name(),
            measured.throughput(),
            measured.errors,
            measured.millis(0.50),
            measured.millis(0.90),
            measured.millis(0.99),
            measured.latency_micros.max() as f64 / 1000.0,
            ratio(measured)
                .map_or_else(|| "-".to_owned(), |ratio| format!("{:.0}%", ratio * 100.0)),
            measured
                .server_micros_per_request()
                .map_or_else(|| "-".to_owned(), |micros| format!("{micros:.1}")),
        );
    }
    if let Some(rss) = rss {
        println!("server peak RSS: {rss:.1} MiB");
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut results = Vec::new();
    for scenario in &args.scenarios {
        let measured = match scenario {
            Scenario::ShareRest => share_rest(&args).await,
            Scenario::RevealRest => reveal_rest(&args).await,
            Scenario::RevealGrpc => reveal_grpc(&args).await,
            Scenario::Baseline => baseline(&args).await,
        };
        match measured {
            Ok(measured) => results.push(measured),
            Err(problem) => {
                eprintln!("burnbox-bench: {}: {problem}", scenario.name());
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    report(&args, &results);
    let errors: usize = results.iter().map(|measured| measured.errors).sum();
    if errors > 0 {
        eprintln!("burnbox-bench: {errors} requests failed");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
