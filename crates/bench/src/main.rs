//! `burnbox-bench`: how close a reveal gets to its floor, one Redis round trip, and what the
//! server costs as operators run it.
//!
//! Against a running server and its Redis it measures, with the same client concurrency:
//! shares over REST; reveals over REST (HTTP/1.1 keep-alive) and over gRPC (HTTP/2, a few
//! connections), each on secrets created beforehand (untimed: a secret reveals only once); and
//! the baseline, raw `GETDEL` on the same Redis. Given more servers, or asked, it also measures:
//!
//! - as deployed vs tuned: the same reveals on a second server on the same Redis that runs the
//!   defaults (logging at info, rate limits on), alternating with the first;
//! - bytes per stored secret: Redis's `used_memory`, and a memory-store server's resident
//!   memory, before and after N shares;
//! - flat with size: REST reveals with few secrets stored, then with many.
//!
//! It prints throughput, latency percentiles, errors, each reveal's throughput as a ratio of the
//! baseline's, the CPU time per request of Redis (from its `INFO`) and, given their pids, of the
//! servers (their own cost, apart from what the load generator and Redis take of a shared
//! machine), and the servers' peak memory, as tables or as JSON. It exits non-zero when any
//! measured request failed.

mod compare;
mod footprint;
mod load;
mod measure;
mod redis_info;
mod report;
mod rest;

use clap::Parser;

use crate::compare::{as_deployed_vs_tuned, flat_with_size};
use crate::footprint::Gauge;
use crate::load::{Load, Scenario, Server, baseline, run, store_secrets};
use crate::measure::peak_rss_mib;
use crate::report::{Report, Settings, StoreFootprint};

/// The generator's allocator matches the server's, so neither pays glibc's arena locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// burnbox's load generator: reveal and share throughput, latency and server CPU per request
/// over REST and gRPC against raw Redis GETDEL; as deployed vs tuned; bytes per stored secret;
/// reveals with few and many secrets stored.
///
/// The server at --http/--grpc is the tuned one: rate limits off (BURNBOX_RATE_LIMIT_CREATE=0,
/// BURNBOX_RATE_LIMIT_REVEAL=0). The one at --deployed-* keeps them on but too high to trip;
/// the one at --memory-grpc runs without Redis, limits off. crates/bench/run.sh starts all
/// three. The secrets it shares for bytes per secret and --preload stay stored (an hour).
#[derive(Parser, Debug)]
#[command(name = "burnbox-bench", version)]
struct Args {
    /// The (tuned) server's REST base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    http: String,
    /// The (tuned) server's gRPC URL.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    grpc: String,
    /// The Redis the servers use (for the baseline and bytes per secret).
    #[arg(long, default_value = "redis://127.0.0.1:6379/")]
    redis: String,
    /// Requests per scenario and per run (and secrets created for each reveal run).
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Concurrent clients.
    #[arg(long, short = 'c', default_value_t = 50)]
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
    /// Scenarios to run on the tuned server, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "baseline,reveal-rest,reveal-grpc,share-rest"
    )]
    scenarios: Vec<Scenario>,
    /// The tuned server's process id, to report its CPU time per request and its peak resident
    /// memory (Linux, server on this host).
    #[arg(long)]
    server_pid: Option<u32>,
    /// REST base URL of a second server on the same Redis, as deployed (default logging, rate
    /// limits on but too high to trip): the --pair-scenarios run on both, alternating, and the
    /// report gives the ratio deployed/tuned.
    #[arg(long, requires = "deployed_grpc")]
    deployed_http: Option<String>,
    /// gRPC URL of the server as deployed.
    #[arg(long, requires = "deployed_http")]
    deployed_grpc: Option<String>,
    /// Process id of the server as deployed (its CPU per request and peak memory).
    #[arg(long)]
    deployed_pid: Option<u32>,
    /// Scenarios measured on both servers (not the baseline).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "reveal-rest,reveal-grpc"
    )]
    pair_scenarios: Vec<Scenario>,
    /// Runs of --requests per server and pair scenario, in the order tuned, deployed, deployed,
    /// tuned… (an even number cancels a steady drift of the machine's speed); 0: no pair.
    #[arg(long, default_value_t = 2)]
    pair_rounds: usize,
    /// Secrets shared (and left stored) to measure bytes per secret: Redis's `INFO memory`
    /// used_memory through the tuned server, and, with --memory-grpc, the memory-store
    /// server's VmRSS; 0: not measured.
    #[arg(long, default_value_t = 100_000)]
    bytes_per_secret: usize,
    /// gRPC URL of a server with no Redis (memory store, rate limits off), for its bytes per
    /// secret.
    #[arg(long, requires = "memory_pid")]
    memory_grpc: Option<String>,
    /// Process id of the memory-store server (its RSS is the measure).
    #[arg(long, requires = "memory_grpc")]
    memory_pid: Option<u32>,
    /// Secrets to store through the tuned server (untimed, concurrently, never revealed) before
    /// the timed scenarios.
    #[arg(long, default_value_t = 0)]
    preload: usize,
    /// First of all, REST reveals on the tuned server with --stored-small secrets stored, then,
    /// topped up, with --stored-large: throughput and p99 should not move with size.
    #[arg(long)]
    flat_with_size: bool,
    /// Secrets stored for the first run of --flat-with-size.
    #[arg(long, default_value_t = 10_000)]
    stored_small: usize,
    /// Secrets stored for the second run of --flat-with-size.
    #[arg(long, default_value_t = 1_000_000)]
    stored_large: usize,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

impl Args {
    fn check(&self) -> Result<(), String> {
        if self.pair_scenarios.contains(&Scenario::Baseline) {
            return Err("--pair-scenarios: the baseline runs on Redis alone, not a server".into());
        }
        if self.flat_with_size && self.stored_large < self.stored_small {
            return Err("--stored-large must be at least --stored-small".into());
        }
        Ok(())
    }
}

/// Runs every measurement the arguments ask for, in an order that keeps each meaningful:
/// the size pair first (it needs few secrets stored), then bytes per secret (before rate-limit
/// entries of the deployed server come and go in the same Redis), the preload, the tuned
/// server's scenarios, and the deployed pair.
async fn measure_all(args: &Args) -> Result<Report, String> {
    let load = Load {
        requests: args.requests,
        concurrency: args.concurrency,
        grpc_connections: args.grpc_connections,
        secret_bytes: args.secret_bytes,
    };
    let tuned = Server {
        http: args.http.clone(),
        grpc: args.grpc.clone(),
        pid: args.server_pid,
        redis: Some(args.redis.clone()),
    };
    // Secrets this run left stored (not revealed) in the servers' Redis.
    let mut stored = 0;

    let size = if args.flat_with_size {
        eprintln!(
            "burnbox-bench: flat with size: {} then {} secrets stored",
            args.stored_small, args.stored_large
        );
        let pair = flat_with_size(
            &tuned,
            &load,
            args.stored_small,
            args.stored_large,
            &mut stored,
        )
        .await
        .map_err(|problem| format!("flat with size: {problem}"))?;
        Some(pair)
    } else {
        None
    };

    let mut footprints = Vec::new();
    if args.bytes_per_secret > 0 {
        eprintln!(
            "burnbox-bench: bytes per secret over {} secrets",
            args.bytes_per_secret
        );
        let gauge = Gauge::RedisUsedMemory(args.redis.clone());
        let footprint = footprint::measure(&gauge, &tuned, &load, args.bytes_per_secret)
            .await
            .map_err(|problem| format!("bytes per secret in Redis: {problem}"))?;
        let already_stored = stored;
        stored += footprint.warm_up + footprint.secrets;
        footprints.push(StoreFootprint {
            store: "Redis",
            already_stored,
            footprint,
        });
        if let (Some(grpc), Some(pid)) = (&args.memory_grpc, args.memory_pid) {
            // Only shared to, over gRPC.
            let memory = Server {
                http: String::new(),
                grpc: grpc.clone(),
                pid: Some(pid),
                redis: None,
            };
            let footprint =
                footprint::measure(&Gauge::ProcessRss(pid), &memory, &load, args.bytes_per_secret)
                    .await
                    .map_err(|problem| {
                        format!(
                            "bytes per secret in the memory store: {problem} (does BURNBOX_MEMORY_STORE_MIB, 256 by default, hold them?)"
                        )
                    })?;
            footprints.push(StoreFootprint {
                store: "memory store",
                already_stored: 0,
                footprint,
            });
        }
    }

    if args.preload > 0 {
        eprintln!("burnbox-bench: preloading {} secrets", args.preload);
        let preloaded = store_secrets(&tuned, &load, args.preload)
            .await
            .map_err(|problem| format!("preload: {problem}"))?;
        stored += preloaded.count;
        eprintln!(
            "burnbox-bench: preloaded {} secrets in {:.1} s ({:.0}/s), {stored} stored",
            preloaded.count,
            preloaded.elapsed.as_secs_f64(),
            preloaded.rate()
        );
    }

    let baseline_connections = args.baseline_connections.unwrap_or(args.concurrency);
    let mut scenarios = Vec::new();
    for &scenario in &args.scenarios {
        let measured = match scenario {
            Scenario::Baseline => baseline(&args.redis, baseline_connections, &load).await,
            Scenario::ShareRest | Scenario::RevealRest | Scenario::RevealGrpc => {
                run(scenario, &tuned, &load).await
            }
        }
        .map_err(|problem| format!("{}: {problem}", scenario.name()))?;
        scenarios.push((scenario, measured));
    }

    let mut pairs = Vec::new();
    let deployed = args
        .deployed_http
        .as_ref()
        .zip(args.deployed_grpc.as_ref())
        .map(|(http, grpc)| Server {
            http: http.clone(),
            grpc: grpc.clone(),
            pid: args.deployed_pid,
            redis: Some(args.redis.clone()),
        });
    if let Some(deployed) = &deployed
        && args.pair_rounds > 0
    {
        for &scenario in &args.pair_scenarios {
            let pair = as_deployed_vs_tuned(scenario, &tuned, deployed, &load, args.pair_rounds)
                .await
                .map_err(|problem| {
                    format!("as deployed vs tuned, {}: {problem}", scenario.name())
                })?;
            pairs.push(pair);
        }
    }

    let mut peaks = vec![("tuned", args.server_pid.and_then(peak_rss_mib))];
    if deployed.is_some() {
        peaks.push(("as deployed", args.deployed_pid.and_then(peak_rss_mib)));
    }
    if args.memory_grpc.is_some() && args.bytes_per_secret > 0 {
        peaks.push(("memory store", args.memory_pid.and_then(peak_rss_mib)));
    }
    Ok(Report {
        settings: Settings {
            concurrency: args.concurrency,
            requests: args.requests,
            secret_bytes: args.secret_bytes,
            grpc_connections: args.grpc_connections,
            baseline_connections,
            preload: args.preload,
        },
        scenarios,
        pairs,
        footprints,
        size,
        peak_rss_mib: peaks,
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Err(problem) = args.check() {
        eprintln!("burnbox-bench: {problem}");
        return std::process::ExitCode::FAILURE;
    }
    let report = match measure_all(&args).await {
        Ok(report) => report,
        Err(problem) => {
            eprintln!("burnbox-bench: {problem}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if args.json {
        println!("{:#}", report.json());
    } else {
        report.print_tables();
    }
    let errors = report.errors();
    if errors > 0 {
        eprintln!("burnbox-bench: {errors} requests failed");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
