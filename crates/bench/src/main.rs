//! `burnbox-bench`: how close a reveal gets to its floor (one Redis round trip, and a bare server
//! doing nothing else), and what the server costs as operators run it.
//!
//! Against a running server and its Redis it measures, with the same client concurrency:
//! shares over REST; reveals over REST (HTTP/1.1 keep-alive) and over gRPC (HTTP/2, a few
//! connections), each on secrets created beforehand (untimed: a secret reveals only once); and
//! the baseline, raw `GETDEL` on the same Redis. Given more servers, or asked, it also measures:
//!
//! - as deployed vs tuned: the same reveals on a second server on the same Redis that runs the
//!   defaults (logging at info, rate limits on), alternating with the first; with both reveals
//!   measured so, the tuned server's CPU per gRPC reveal as a multiple of its CPU per REST one;
//! - tuned vs floor: REST reveals on the tuned server and on a bare server that only answers
//!   them with `GETDEL` on the same Redis, alternating: how much of a reveal's CPU is burnbox's;
//! - bytes per stored secret: Redis's `used_memory`, and a memory-store server's resident
//!   memory, before and after N shares;
//! - flat with size: REST reveals from a store with few secrets stored and from a second one
//!   (a second tuned server on a second Redis) with many, alternating.
//!
//! Each pair alternates its two sides in rounds (first, second, second, first…) so that a drift
//! of the machine's speed cancels. It prints throughput, latency percentiles, errors, each
//! reveal's throughput as a ratio of the baseline's, the CPU time per request of Redis (from
//! its `INFO`) and, given their pids, of the servers (their own cost, apart from what the load
//! generator and Redis take of a shared machine), and the servers' peak memory, as tables or as
//! JSON. It exits non-zero when any measured request failed.

mod compare;
mod footprint;
mod load;
mod measure;
mod redis_info;
mod report;
mod rest;

use clap::Parser;

use crate::compare::{Store, as_deployed_vs_tuned, flat_with_size, tuned_vs_floor};
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
/// the one at --memory-grpc runs without Redis, limits off; those at --large-* and --small-*
/// are tuned, each on a Redis of its own. crates/bench/run.sh starts them all, and a floor when given one. The
/// secrets it shares for bytes per secret, --preload and --flat-with-size stay stored (an hour).
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
    /// Runs of --requests per side of each pair (as deployed vs tuned, tuned vs floor, small vs
    /// large store), in the order tuned, deployed, deployed, tuned… (an even number cancels a
    /// steady drift of the machine's speed); 0: no deployed or floor pair.
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
    /// REST base URL of a floor: a bare server on the same Redis (--redis) that answers
    /// `POST /api/v1/secret/{key}` with `GETDEL key`, 200 `{"value":…}` or 404, and does nothing
    /// else. REST reveals then run on the tuned server and on it, alternating, and the report
    /// gives the ratios tuned/floor of CPU per request and of throughput.
    #[arg(long)]
    floor_http: Option<String>,
    /// Process id of the floor (its CPU per request and peak memory).
    #[arg(long, requires = "floor_http")]
    floor_pid: Option<u32>,
    /// First of all, REST reveals from the small store (--small-*, or the tuned server's) with
    /// --stored-small secrets stored and from the large one (--large-*) with --stored-large,
    /// alternating: throughput and p99 should not move with size.
    #[arg(
        long,
        requires = "large_http",
        requires = "large_grpc",
        requires = "large_redis"
    )]
    flat_with_size: bool,
    /// Secrets stored in the small store for --flat-with-size.
    #[arg(long, default_value_t = 10_000)]
    stored_small: usize,
    /// Secrets stored in the large store for --flat-with-size.
    #[arg(long, default_value_t = 1_000_000)]
    stored_large: usize,
    /// REST base URL of the large store's server for --flat-with-size: tuned as the one at
    /// --http, on a Redis of its own (--large-redis).
    #[arg(long, requires = "flat_with_size")]
    large_http: Option<String>,
    /// gRPC URL of the large store's server.
    #[arg(long, requires = "flat_with_size")]
    large_grpc: Option<String>,
    /// Process id of the large store's server (its CPU per request and peak memory).
    #[arg(long, requires = "flat_with_size")]
    large_pid: Option<u32>,
    /// The Redis the large store's server uses (its CPU per request).
    #[arg(long, requires = "flat_with_size")]
    large_redis: Option<String>,
    /// REST base URL of the small store's server for --flat-with-size (default: the tuned
    /// server at --http). A server of its own, on a Redis of its own (--small-redis), leaves
    /// the tuned server's Redis as fresh for bytes per secret as without --flat-with-size: the
    /// size pair's secrets would otherwise fill it past a doubling of Redis's key tables.
    #[arg(
        long,
        requires = "flat_with_size",
        requires = "small_grpc",
        requires = "small_redis"
    )]
    small_http: Option<String>,
    /// gRPC URL of the small store's server.
    #[arg(long, requires = "small_http")]
    small_grpc: Option<String>,
    /// Process id of the small store's server.
    #[arg(long, requires = "small_http")]
    small_pid: Option<u32>,
    /// The Redis the small store's server uses.
    #[arg(long, requires = "small_http")]
    small_redis: Option<String>,
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
        if self.flat_with_size && self.pair_rounds == 0 {
            return Err("--flat-with-size needs --pair-rounds of at least 1".into());
        }
        Ok(())
    }
}

/// Runs every measurement the arguments ask for, in an order that keeps each meaningful:
/// the size pair first (its small store is the tuned server's, which bytes per secret and the
/// preload then fill), then bytes per secret (before rate-limit entries of the deployed server
/// come and go in the same Redis), the preload, the tuned server's scenarios, the deployed pair
/// and the floor pair.
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
        let large = Server {
            http: args
                .large_http
                .clone()
                .ok_or("--flat-with-size needs --large-http")?,
            grpc: args
                .large_grpc
                .clone()
                .ok_or("--flat-with-size needs --large-grpc")?,
            pid: args.large_pid,
            redis: Some(
                args.large_redis
                    .clone()
                    .ok_or("--flat-with-size needs --large-redis")?,
            ),
        };
        if large.redis.as_deref() == Some(args.redis.as_str()) {
            eprintln!(
                "burnbox-bench: the large store is the tuned server's Redis: flat with size measures nothing"
            );
        }
        eprintln!(
            "burnbox-bench: flat with size: {} secrets stored in one store, {} in the other, {} runs each",
            args.stored_small, args.stored_large, args.pair_rounds
        );
        // Secrets this run left stored in the large store, and in the small one if it is not
        // the tuned server's.
        let mut large_stored = 0;
        let mut small_stored = 0;
        let own_small = args
            .small_http
            .clone()
            .zip(args.small_grpc.clone())
            .map(|(http, grpc)| Server {
                http,
                grpc,
                pid: args.small_pid,
                redis: args.small_redis.clone(),
            });
        let small = match &own_small {
            Some(server) => Store {
                server,
                stored: &mut small_stored,
            },
            None => Store {
                server: &tuned,
                stored: &mut stored,
            },
        };
        let pair = flat_with_size(
            small,
            Store {
                server: &large,
                stored: &mut large_stored,
            },
            &load,
            args.stored_small,
            args.stored_large,
            args.pair_rounds,
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

    let mut floor = None;
    if let Some(http) = &args.floor_http
        && args.pair_rounds > 0
    {
        let floor_server = Server {
            http: http.clone(),
            grpc: String::new(),
            pid: args.floor_pid,
            redis: Some(args.redis.clone()),
        };
        eprintln!(
            "burnbox-bench: tuned vs floor, {} runs each",
            args.pair_rounds
        );
        let pair = tuned_vs_floor(&tuned, &floor_server, &load, args.pair_rounds)
            .await
            .map_err(|problem| format!("tuned vs floor: {problem}"))?;
        floor = Some(pair);
    }

    let mut peaks = vec![("tuned", args.server_pid.and_then(peak_rss_mib))];
    if deployed.is_some() {
        peaks.push(("as deployed", args.deployed_pid.and_then(peak_rss_mib)));
    }
    if args.memory_grpc.is_some() && args.bytes_per_secret > 0 {
        peaks.push(("memory store", args.memory_pid.and_then(peak_rss_mib)));
    }
    if args.flat_with_size {
        if args.small_http.is_some() {
            peaks.push(("small store", args.small_pid.and_then(peak_rss_mib)));
        }
        peaks.push(("large store", args.large_pid.and_then(peak_rss_mib)));
    }
    if args.floor_http.is_some() {
        peaks.push(("floor", args.floor_pid.and_then(peak_rss_mib)));
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
        floor,
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Args;

    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("burnbox-bench").chain(extra.iter().copied()))
    }

    const LARGE: [&str; 8] = [
        "--large-http",
        "http://127.0.0.1:1",
        "--large-grpc",
        "http://127.0.0.1:2",
        "--large-redis",
        "redis://127.0.0.1:3/",
        "--large-pid",
        "4",
    ];

    #[test]
    fn flat_with_size_needs_the_large_store() {
        assert!(parse(&["--flat-with-size"]).is_err());
        // The pid is optional, as the tuned server's is.
        let without_pid = &LARGE[..6];
        let args = parse(&[&["--flat-with-size"], without_pid].concat()).expect("parses");
        assert!(args.flat_with_size && args.large_pid.is_none());
        for missing in [0, 2, 4] {
            let mut partial = LARGE.to_vec();
            partial.drain(missing..missing + 2);
            partial.push("--flat-with-size");
            assert!(
                parse(&partial).is_err(),
                "{} was not missed",
                LARGE[missing]
            );
        }
    }

    #[test]
    fn the_large_store_is_only_for_flat_with_size() {
        assert!(parse(&LARGE).is_err());
        let args = parse(&[&LARGE[..], &["--flat-with-size"]].concat()).expect("parses");
        assert_eq!(args.large_pid, Some(4));
        assert!(args.check().is_ok());
    }

    #[test]
    fn flat_with_size_needs_a_round() {
        let args = parse(&[&LARGE[..], &["--flat-with-size", "--pair-rounds", "0"]].concat())
            .expect("parses");
        assert!(args.check().is_err());
    }

    #[test]
    fn the_floor_is_optional_and_its_pid_needs_its_url() {
        assert!(parse(&[]).expect("parses").floor_http.is_none());
        assert!(parse(&["--floor-pid", "7"]).is_err());
        let args =
            parse(&["--floor-http", "http://127.0.0.1:5", "--floor-pid", "7"]).expect("parses");
        assert_eq!(args.floor_http.as_deref(), Some("http://127.0.0.1:5"));
        assert_eq!(args.floor_pid, Some(7));
    }
}
