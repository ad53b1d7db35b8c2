//! Measurements that only mean something side by side: the same load on the server as deployed
//! and as tuned, and the same reveals with few and with many secrets stored.

use crate::load::{Load, Scenario, Server, Stored, run, store_secrets};
use crate::measure::Measured;

/// One scenario on the tuned server and on the server as deployed, same Redis, same load.
pub struct DeployedPair {
    pub scenario: Scenario,
    /// Runs per server.
    pub rounds: usize,
    pub tuned: Measured,
    pub deployed: Measured,
}

impl DeployedPair {
    /// The deployed server's throughput as a fraction of the tuned one's.
    pub fn throughput_ratio(&self) -> Option<f64> {
        ratio(self.deployed.throughput(), self.tuned.throughput())
    }

    /// The deployed server's CPU per request as a multiple of the tuned one's.
    pub fn cpu_ratio(&self) -> Option<f64> {
        ratio(
            self.deployed.server_micros_per_request()?,
            self.tuned.server_micros_per_request()?,
        )
    }
}

fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0).then(|| numerator / denominator)
}

/// Measures `scenario` `rounds` times on each server, in the order tuned, deployed, deployed,
/// tuned, tuned, deployed…: a drift of the machine's speed over the run (another process
/// starting, the VM's host getting busy) then falls on both alike; with an even number of
/// rounds a steady drift cancels exactly, where strict alternation would favour the first.
pub async fn as_deployed_vs_tuned(
    scenario: Scenario,
    tuned: &Server,
    deployed: &Server,
    load: &Load,
    rounds: usize,
) -> Result<DeployedPair, String> {
    let mut tuned_total: Option<Measured> = None;
    let mut deployed_total: Option<Measured> = None;
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [(tuned, &mut tuned_total), (deployed, &mut deployed_total)]
        } else {
            [(deployed, &mut deployed_total), (tuned, &mut tuned_total)]
        };
        for (server, total) in order {
            let measured = run(scenario, server, load).await?;
            match total {
                Some(sum) => sum.absorb(measured)?,
                None => *total = Some(measured),
            }
        }
    }
    match (tuned_total, deployed_total) {
        (Some(tuned), Some(deployed)) => Ok(DeployedPair {
            scenario,
            rounds,
            tuned,
            deployed,
        }),
        (None, _) | (_, None) => Err("no rounds to compare".to_owned()),
    }
}

/// REST reveals with few secrets stored, then with many.
pub struct SizePair {
    pub small_stored: usize,
    pub small: Measured,
    pub large_stored: usize,
    pub large: Measured,
    /// The shares that filled the store from small to large.
    pub top_up: Stored,
}

impl SizePair {
    /// Throughput with many stored as a fraction of with few.
    pub fn throughput_ratio(&self) -> Option<f64> {
        ratio(self.large.throughput(), self.small.throughput())
    }

    /// p99 latency with many stored as a multiple of with few.
    pub fn p99_ratio(&self) -> Option<f64> {
        ratio(self.large.millis(0.99), self.small.millis(0.99))
    }
}

/// Stores secrets through `server` until `small` are stored, measures REST reveals, stores
/// more until `large` are, measures again. `stored` counts the secrets this run has left
/// unrevealed in the server's store so far, and is kept up to date.
pub async fn flat_with_size(
    server: &Server,
    load: &Load,
    small: usize,
    large: usize,
    stored: &mut usize,
) -> Result<SizePair, String> {
    let filled = store_secrets(server, load, small.saturating_sub(*stored)).await?;
    *stored += filled.count;
    let small_stored = *stored;
    let small = run(Scenario::RevealRest, server, load).await?;
    eprintln!(
        "burnbox-bench: storing {} more secrets (to {large})…",
        large.saturating_sub(*stored)
    );
    let top_up = store_secrets(server, load, large.saturating_sub(*stored)).await?;
    *stored += top_up.count;
    let large_stored = *stored;
    let large = run(Scenario::RevealRest, server, load).await?;
    Ok(SizePair {
        small_stored,
        small,
        large_stored,
        large,
        top_up,
    })
}
