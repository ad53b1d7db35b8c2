//! What a run found, printed as tables or as one JSON document.

use serde_json::{Value, json};

use crate::compare::{DeployedPair, FloorPair, SizePair, grpc_over_rest_cpu};
use crate::footprint::Footprint;
use crate::load::{Scenario, Stored};
use crate::measure::Measured;

/// The load every measurement shared.
pub struct Settings {
    pub concurrency: usize,
    pub requests: usize,
    pub secret_bytes: usize,
    pub grpc_connections: usize,
    pub baseline_connections: usize,
    /// Secrets stored (not revealed) before the timed scenarios, by `--preload`.
    pub preload: usize,
}

/// One store's bytes per secret, with what was already stored when it was measured.
pub struct StoreFootprint {
    /// "Redis" or "memory store".
    pub store: &'static str,
    /// Secrets this run had left stored there before the warm-up.
    pub already_stored: usize,
    pub footprint: Footprint,
}

/// Everything a run measured.
pub struct Report {
    pub settings: Settings,
    /// The tuned server's scenarios, in the order run.
    pub scenarios: Vec<(Scenario, Measured)>,
    pub pairs: Vec<DeployedPair>,
    /// REST reveals on the tuned server and on a floor, if one was given.
    pub floor: Option<FloorPair>,
    pub footprints: Vec<StoreFootprint>,
    pub size: Option<SizePair>,
    /// Peak resident memory per server ("tuned", "as deployed", "memory store", "large store",
    /// "floor"), in MiB.
    pub peak_rss_mib: Vec<(&'static str, Option<f64>)>,
}

/// Targets from the issue that set them, printed next to what they judge.
const DEPLOYED_TARGET: f64 = 0.9;
const SIZE_TOLERANCE: f64 = 0.1;

impl Report {
    /// Requests that failed across every timed measurement.
    pub fn errors(&self) -> usize {
        let scenarios = self.scenarios.iter().map(|(_, measured)| measured.errors);
        let pairs = self
            .pairs
            .iter()
            .map(|pair| pair.tuned.errors + pair.deployed.errors);
        let floor = self
            .floor
            .iter()
            .map(|pair| pair.tuned.errors + pair.floor.errors);
        let size = self
            .size
            .iter()
            .map(|size| size.small.errors + size.large.errors);
        scenarios.chain(pairs).chain(floor).chain(size).sum()
    }

    fn baseline_throughput(&self) -> Option<f64> {
        self.scenarios
            .iter()
            .find(|(scenario, _)| *scenario == Scenario::Baseline)
            .map(|(_, measured)| measured.throughput())
            .filter(|baseline| *baseline > 0.0)
    }

    fn ratio_to_baseline(&self, scenario: Scenario, measured: &Measured) -> Option<f64> {
        match scenario {
            Scenario::RevealRest | Scenario::RevealGrpc => self
                .baseline_throughput()
                .map(|baseline| measured.throughput() / baseline),
            Scenario::ShareRest | Scenario::Baseline => None,
        }
    }

    /// The whole report as one JSON document.
    pub fn json(&self) -> Value {
        let settings = &self.settings;
        let results: Vec<Value> = self
            .scenarios
            .iter()
            .map(|(scenario, measured)| {
                let mut row = measured_json(measured);
                row["scenario"] = json!(scenario.name());
                row["ratio_to_baseline"] = json!(self.ratio_to_baseline(*scenario, measured));
                row
            })
            .collect();
        let pairs: Vec<Value> = self
            .pairs
            .iter()
            .map(|pair| {
                json!({
                    "scenario": pair.scenario.name(),
                    "rounds_per_server": pair.rounds,
                    "tuned": measured_json(&pair.tuned),
                    "deployed": measured_json(&pair.deployed),
                    "throughput_ratio": pair.throughput_ratio(),
                    "server_cpu_ratio": pair.cpu_ratio(),
                    "target_throughput_ratio": DEPLOYED_TARGET,
                })
            })
            .collect();
        let floor = self.floor.as_ref().map(|pair| {
            json!({
                "scenario": Scenario::RevealRest.name(),
                "rounds_per_server": pair.rounds,
                "tuned": measured_json(&pair.tuned),
                "floor": measured_json(&pair.floor),
                "server_cpu_ratio": pair.cpu_ratio(),
                "throughput_ratio": pair.throughput_ratio(),
            })
        });
        let mut footprints = serde_json::Map::new();
        for store in &self.footprints {
            let footprint = &store.footprint;
            footprints.insert(
                store.store.to_lowercase().replace(' ', "_"),
                json!({
                    "source": footprint.source,
                    "secrets": footprint.secrets,
                    "warm_up": footprint.warm_up,
                    "already_stored": store.already_stored,
                    "bytes_before": footprint.before,
                    "bytes_after": footprint.after,
                    "bytes_per_secret": footprint.bytes_per_secret(),
                }),
            );
        }
        let size = self.size.as_ref().map(|size| {
            let mut small = measured_json(&size.small);
            small["stored"] = json!(size.small_stored);
            let mut large = measured_json(&size.large);
            large["stored"] = json!(size.large_stored);
            json!({
                "scenario": Scenario::RevealRest.name(),
                "rounds_per_store": size.rounds,
                "small": small,
                "large": large,
                "throughput_ratio": size.throughput_ratio(),
                "p99_ratio": size.p99_ratio(),
                "tolerance": SIZE_TOLERANCE,
                "fill": {
                    "small": stored_json(&size.small_fill),
                    "large": stored_json(&size.large_fill),
                },
            })
        });
        let peak_rss: serde_json::Map<String, Value> = self
            .peak_rss_mib
            .iter()
            .map(|(server, mib)| (server.replace(' ', "_"), json!(mib)))
            .collect();
        json!({
            "concurrency": settings.concurrency,
            "requests": settings.requests,
            "grpc_connections": settings.grpc_connections,
            "baseline_connections": settings.baseline_connections,
            "secret_bytes": settings.secret_bytes,
            "preload": settings.preload,
            "results": results,
            "server_peak_rss_mib": self.peak_rss_mib.first().and_then(|(_, mib)| *mib),
            "peak_rss_mib": peak_rss,
            "as_deployed_vs_tuned": pairs,
            "tuned_grpc_over_rest_server_cpu_ratio": grpc_over_rest_cpu(&self.pairs),
            "tuned_vs_floor": floor,
            "bytes_per_secret": footprints,
            "flat_with_size": size,
        })
    }

    /// The report as tables.
    pub fn print_tables(&self) {
        let settings = &self.settings;
        if !self.scenarios.is_empty() {
            println!(
                "tuned server: concurrency {}, {} requests per scenario, {}-byte secrets, {} gRPC connections, {} baseline Redis connections{}",
                settings.concurrency,
                settings.requests,
                settings.secret_bytes,
                settings.grpc_connections,
                settings.baseline_connections,
                if settings.preload > 0 {
                    format!(", {} more secrets preloaded", settings.preload)
                } else {
                    String::new()
                }
            );
            println!("{:<16} {} {:>10}", "scenario", HEADER, "/baseline");
            for (scenario, measured) in &self.scenarios {
                println!(
                    "{:<16} {} {:>10}",
                    scenario.name(),
                    measured_cells(measured),
                    self.ratio_to_baseline(*scenario, measured)
                        .map_or_else(|| "-".to_owned(), |ratio| format!("{:.0}%", ratio * 100.0)),
                );
            }
        }
        if let Some(pair) = self.pairs.first() {
            println!();
            println!(
                "as deployed vs tuned: same Redis, same load, {} runs of {} requests on each server (tuned, deployed, deployed, tuned, …)",
                pair.rounds, settings.requests
            );
            println!("{:<28} {}", "scenario / server", HEADER);
        }
        for pair in &self.pairs {
            print_sides(
                pair.scenario.name(),
                [("tuned", &pair.tuned), ("as deployed", &pair.deployed)],
            );
            println!(
                "{:<28} deployed/tuned: {} req/s (target ≥ {DEPLOYED_TARGET:.2}), {} server CPU per request",
                "",
                times(pair.throughput_ratio()),
                times(pair.cpu_ratio()),
            );
        }
        if let Some(grpc_over_rest) = grpc_over_rest_cpu(&self.pairs) {
            println!(
                "{:<28} tuned, gRPC/REST: {} server CPU per reveal (target ≤ 1.00)",
                "",
                times(Some(grpc_over_rest)),
            );
        }
        if let Some(pair) = &self.floor {
            println!();
            println!(
                "tuned vs floor (a bare GETDEL server): same Redis, same client, same load, {} runs of {} requests on each server (tuned, floor, floor, tuned, …)",
                pair.rounds, settings.requests
            );
            println!("{:<28} {}", "scenario / server", HEADER);
            print_sides(
                Scenario::RevealRest.name(),
                [("tuned", &pair.tuned), ("floor", &pair.floor)],
            );
            println!(
                "{:<28} tuned/floor: {} server CPU per request, {} req/s",
                "",
                times(pair.cpu_ratio()),
                times(pair.throughput_ratio()),
            );
        }
        if let Some(size) = &self.size {
            println!();
            println!(
                "flat with size: {}, {} runs of {} requests on each store (small, large, large, small, …), one with {} and one with {} secrets stored, each also holding the {} its runs reveal (stored before the first run)",
                Scenario::RevealRest.name(),
                size.rounds,
                settings.requests,
                size.small_stored,
                size.large_stored,
                size.rounds * settings.requests
            );
            println!("{:<16} {}", "stored", HEADER);
            println!("{:<16} {}", size.small_stored, measured_cells(&size.small));
            println!("{:<16} {}", size.large_stored, measured_cells(&size.large));
            println!(
                "{:<16} {}/{}: {} req/s, {} p99 (target: both within {:.0} %)",
                "",
                size.large_stored,
                size.small_stored,
                times(size.throughput_ratio()),
                times(size.p99_ratio()),
                SIZE_TOLERANCE * 100.0,
            );
            println!(
                "{:<16} filled: the small store with {}, the large one with {}",
                "",
                filled(&size.small_fill),
                filled(&size.large_fill),
            );
        }
        if let Some(first) = self.footprints.first() {
            println!();
            println!(
                "bytes per stored secret: {} {}-byte secrets (anonymous, ttl 3600, not revealed) shared through the server after {} to warm up",
                first.footprint.secrets, settings.secret_bytes, first.footprint.warm_up
            );
        }
        for store in &self.footprints {
            let footprint = &store.footprint;
            println!(
                "{:<16} {:>8.0} B/secret  ({}: {:.1} → {:.1} MiB; {} secrets already stored)",
                store.store,
                footprint.bytes_per_secret(),
                footprint.source,
                mib(footprint.before),
                mib(footprint.after),
                store.already_stored,
            );
        }
        let peaks: Vec<String> = self
            .peak_rss_mib
            .iter()
            .filter_map(|(server, peak)| peak.map(|peak| format!("{server} {peak:.1} MiB")))
            .collect();
        if !peaks.is_empty() {
            println!();
            println!("server peak RSS: {}", peaks.join(", "));
        }
    }
}

/// The columns [`measured_cells`] fills.
const HEADER: &str =
    "     req/s  errors    p50 ms    p90 ms    p99 ms    max ms server µs/req Redis µs/req";

/// One row per side of a pair: the scenario and the side's name, then its measurements.
fn print_sides(scenario: &str, sides: [(&str, &Measured); 2]) {
    for (side, measured) in sides {
        println!(
            "{:<28} {}",
            format!("{scenario}, {side}"),
            measured_cells(measured)
        );
    }
}

fn measured_cells(measured: &Measured) -> String {
    format!(
        "{:>10.0} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>13} {:>12}",
        measured.throughput(),
        measured.errors,
        measured.millis(0.50),
        measured.millis(0.90),
        measured.millis(0.99),
        measured.max_millis(),
        micros(measured.server_micros_per_request()),
        micros(measured.redis_micros_per_request()),
    )
}

fn micros(per_request: Option<f64>) -> String {
    per_request.map_or_else(|| "-".to_owned(), |micros| format!("{micros:.1}"))
}

fn measured_json(measured: &Measured) -> Value {
    json!({
        "requests": measured.requests,
        "errors": measured.errors,
        "seconds": measured.elapsed.as_secs_f64(),
        "throughput_per_second": measured.throughput(),
        "latency_ms": {
            "p50": measured.millis(0.50),
            "p90": measured.millis(0.90),
            "p99": measured.millis(0.99),
            "max": measured.max_millis(),
        },
        "server_cpu_us_per_request": measured.server_micros_per_request(),
        "redis_cpu_us_per_request": measured.redis_micros_per_request(),
    })
}

fn stored_json(stored: &Stored) -> Value {
    json!({
        "secrets": stored.count,
        "seconds": stored.elapsed.as_secs_f64(),
        "per_second": stored.rate(),
    })
}

fn filled(stored: &Stored) -> String {
    format!(
        "{} secrets in {:.1} s ({:.0}/s)",
        stored.count,
        stored.elapsed.as_secs_f64(),
        stored.rate()
    )
}

fn times(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "-".to_owned(), |ratio| format!("{ratio:.2}×"))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
