//! Measurements that only mean something side by side, each measured in alternating rounds: the
//! same load on the server as deployed and as tuned, REST reveals on the tuned server and on a
//! bare floor server, and the same reveals with few and with many secrets stored.

use crate::load::{
    Load, Prepared, Scenario, Server, Stored, prepare, prepare_floor, store_secrets,
};
use crate::measure::Measured;

/// One side of a pair of measurements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The side measured first in the first round (the tuned server, the small store).
    First,
    /// The other one.
    Second,
}

/// The order of round `round`'s two runs: first then second in even rounds, second then first
/// in odd ones. Over rounds that gives first, second, second, first, first, second…: a drift of
/// the machine's speed over the run (another process starting, the VM's host getting busy) then
/// falls on both sides alike, and with an even number of rounds a steady drift cancels exactly,
/// where strict alternation would favour the side that always runs first.
fn round_order(round: usize) -> [Side; 2] {
    if round.is_multiple_of(2) {
        [Side::First, Side::Second]
    } else {
        [Side::Second, Side::First]
    }
}

/// Prepares `rounds` runs for each side (`prepare(side)`, untimed), then times them
/// (`measure(side, prepared)`) in [`round_order`], and returns each side's runs merged into one
/// measurement, first then second. Every pair uses it, so all alternate alike, and none times a
/// run while the other side's setup is still being paid for (see [`crate::load::Prepared`]).
pub async fn alternate<P, F, G>(
    rounds: usize,
    mut prepare: F,
    mut measure: G,
) -> Result<(Measured, Measured), String>
where
    F: AsyncFnMut(Side) -> Result<P, String>,
    G: AsyncFnMut(Side, P) -> Result<Measured, String>,
{
    let mut prepared = Vec::with_capacity(rounds * 2);
    for round in 0..rounds {
        for side in round_order(round) {
            prepared.push((side, prepare(side).await?));
        }
    }
    let mut first: Option<Measured> = None;
    let mut second: Option<Measured> = None;
    for (side, run) in prepared {
        let measured = measure(side, run).await?;
        let total = match side {
            Side::First => &mut first,
            Side::Second => &mut second,
        };
        match total {
            Some(sum) => sum.absorb(measured)?,
            None => *total = Some(measured),
        }
    }
    first
        .zip(second)
        .ok_or_else(|| "no rounds to compare".to_owned())
}

/// [`alternate`] over server runs: `prepare(side)` sets each up on its side's server, and each
/// is timed with `load` as it was prepared.
async fn alternate_runs<'a, F>(
    rounds: usize,
    load: &Load,
    prepare: F,
) -> Result<(Measured, Measured), String>
where
    F: AsyncFnMut(Side) -> Result<Prepared<'a>, String>,
{
    alternate(rounds, prepare, async |_, prepared: Prepared<'a>| {
        prepared.run(load).await
    })
    .await
}

/// The first value as a fraction (or multiple) of the second; none when the second is 0.
fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0).then(|| numerator / denominator)
}

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

/// The tuned server's CPU per gRPC reveal as a multiple of its CPU per REST reveal, from the
/// tuned sides of the two reveal pairs (each measured alternately with the server as deployed,
/// so both under the same conditions); none unless both pairs ran.
pub fn grpc_over_rest_cpu(pairs: &[DeployedPair]) -> Option<f64> {
    let tuned_cpu = |scenario| {
        pairs
            .iter()
            .find(|pair| pair.scenario == scenario)?
            .tuned
            .server_micros_per_request()
    };
    ratio(
        tuned_cpu(Scenario::RevealGrpc)?,
        tuned_cpu(Scenario::RevealRest)?,
    )
}

/// Measures `scenario` `rounds` times on each server, tuned first (see [`round_order`]).
pub async fn as_deployed_vs_tuned(
    scenario: Scenario,
    tuned: &Server,
    deployed: &Server,
    load: &Load,
    rounds: usize,
) -> Result<DeployedPair, String> {
    let (tuned, deployed) = alternate_runs(rounds, load, async |side| match side {
        Side::First => prepare(scenario, tuned, load).await,
        Side::Second => prepare(scenario, deployed, load).await,
    })
    .await?;
    Ok(DeployedPair {
        scenario,
        rounds,
        tuned,
        deployed,
    })
}

/// REST reveals on the tuned server and on a floor (a bare `GETDEL` server), same Redis, same
/// client, same load. The ratio of their CPU per request is how much of a reveal's server cost
/// is burnbox's own, a figure that carries across machines of different speeds.
pub struct FloorPair {
    /// Runs per server.
    pub rounds: usize,
    pub tuned: Measured,
    pub floor: Measured,
}

impl FloorPair {
    /// The tuned server's CPU per request as a multiple of the floor's.
    pub fn cpu_ratio(&self) -> Option<f64> {
        ratio(
            self.tuned.server_micros_per_request()?,
            self.floor.server_micros_per_request()?,
        )
    }

    /// The tuned server's throughput as a fraction of the floor's.
    pub fn throughput_ratio(&self) -> Option<f64> {
        ratio(self.tuned.throughput(), self.floor.throughput())
    }
}

/// Measures REST reveals `rounds` times on the tuned server and on the floor, tuned first.
pub async fn tuned_vs_floor(
    tuned: &Server,
    floor: &Server,
    load: &Load,
    rounds: usize,
) -> Result<FloorPair, String> {
    let (tuned, floor) = alternate_runs(rounds, load, async |side| match side {
        Side::First => prepare(Scenario::RevealRest, tuned, load).await,
        Side::Second => prepare_floor(floor, load).await,
    })
    .await?;
    Ok(FloorPair {
        rounds,
        tuned,
        floor,
    })
}

/// A store to reveal from and what this run has left stored in it (not revealed) so far.
pub struct Store<'a> {
    pub server: &'a Server,
    pub stored: &'a mut usize,
}

impl Store<'_> {
    /// Stores secrets through the server until this run has left `count` there; returns the
    /// shares that took (none if there were already as many).
    async fn fill_to(&mut self, load: &Load, count: usize) -> Result<Stored, String> {
        let filled = store_secrets(self.server, load, count.saturating_sub(*self.stored)).await?;
        *self.stored += filled.count;
        Ok(filled)
    }
}

/// REST reveals from a store with few secrets stored and from one with many, same load.
pub struct SizePair {
    /// Runs per store.
    pub rounds: usize,
    pub small_stored: usize,
    pub small: Measured,
    pub large_stored: usize,
    pub large: Measured,
    /// The shares that filled the small store.
    pub small_fill: Stored,
    /// The shares that filled the large store.
    pub large_fill: Stored,
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

/// Fills `small` to `small_count` secrets and `large` to `large_count` (each counting what the
/// run already left there), then measures REST reveals `rounds` times on each, small first.
/// Two stores rather than one topped up between two runs, so that the reveals alternate and a
/// drift of the machine's speed does not pass for an effect of size.
pub async fn flat_with_size(
    mut small: Store<'_>,
    mut large: Store<'_>,
    load: &Load,
    small_count: usize,
    large_count: usize,
    rounds: usize,
) -> Result<SizePair, String> {
    let small_fill = small.fill_to(load, small_count).await?;
    eprintln!(
        "burnbox-bench: storing {} secrets in the large store (to {large_count})…",
        large_count.saturating_sub(*large.stored)
    );
    let large_fill = large.fill_to(load, large_count).await?;
    let (small_server, large_server) = (small.server, large.server);
    let (small_measured, large_measured) = alternate_runs(rounds, load, async |side| match side {
        Side::First => prepare(Scenario::RevealRest, small_server, load).await,
        Side::Second => prepare(Scenario::RevealRest, large_server, load).await,
    })
    .await?;
    Ok(SizePair {
        rounds,
        small_stored: *small.stored,
        small: small_measured,
        large_stored: *large.stored,
        large: large_measured,
        small_fill,
        large_fill,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::measure::new_histogram;

    /// A run of `requests` requests of which `errors` failed, one second long.
    fn measured(requests: usize, errors: usize) -> Measured {
        Measured {
            requests,
            errors,
            elapsed: Duration::from_secs(1),
            latency_micros: new_histogram(),
            server_cpu: None,
            redis_cpu: None,
        }
    }

    #[test]
    fn rounds_alternate_first_second_second_first() {
        use Side::{First, Second};
        let order: Vec<Side> = (0..4).flat_map(round_order).collect();
        assert_eq!(
            order,
            [First, Second, Second, First, First, Second, Second, First]
        );
    }

    #[tokio::test]
    async fn alternate_prepares_every_run_then_times_each_side_once_a_round() {
        // What happened, in order: (preparing?, side, run index).
        let events = std::cell::RefCell::new(Vec::new());
        let (first, second) = alternate(
            3,
            async |side| {
                let mut events = events.borrow_mut();
                let index = events.len();
                events.push((true, side, index));
                Ok((side, index))
            },
            async |side, prepared_for| {
                events.borrow_mut().push((false, side, prepared_for.1));
                assert_eq!(
                    side, prepared_for.0,
                    "each run gets what was prepared for it"
                );
                Ok(match side {
                    Side::First => measured(10, 1),
                    Side::Second => measured(20, 0),
                })
            },
        )
        .await
        .expect("three rounds measure");
        use Side::{First, Second};
        let order = [First, Second, Second, First, First, Second];
        let expected: Vec<_> = order
            .iter()
            .enumerate()
            .map(|(index, &side)| (true, side, index))
            .chain(
                order
                    .iter()
                    .enumerate()
                    .map(|(index, &side)| (false, side, index)),
            )
            .collect();
        assert_eq!(events.into_inner(), expected);
        assert_eq!((first.requests, first.errors), (30, 3));
        assert_eq!((second.requests, second.errors), (60, 0));
        assert_eq!(first.elapsed, Duration::from_secs(3));
    }

    #[tokio::test]
    async fn alternate_stops_at_the_first_failure() {
        let mut calls = 0;
        let result = alternate(
            2,
            async |_| Ok(()),
            async |side, ()| {
                calls += 1;
                match side {
                    Side::First => Ok(measured(1, 0)),
                    Side::Second => Err("unreachable".to_owned()),
                }
            },
        )
        .await;
        assert!(matches!(result, Err(problem) if problem == "unreachable"));
        assert_eq!(calls, 2);
    }

    #[tokio::test]
    async fn no_rounds_is_an_error_not_an_empty_pair() {
        let result = alternate(0, async |_| Ok(()), async |_, ()| Ok(measured(1, 0))).await;
        assert!(result.is_err());
    }

    #[test]
    fn floor_ratios_are_tuned_over_floor() {
        let mut tuned = measured(100, 0);
        tuned.server_cpu = Some(Duration::from_millis(6));
        let mut floor = measured(200, 0);
        floor.server_cpu = Some(Duration::from_millis(6));
        let pair = FloorPair {
            rounds: 1,
            tuned,
            floor,
        };
        // 60 µs against 30 µs per request; 100 against 200 requests per second.
        assert_eq!(pair.cpu_ratio(), Some(2.0));
        assert_eq!(pair.throughput_ratio(), Some(0.5));
    }

    #[test]
    fn grpc_over_rest_is_of_the_tuned_sides() {
        let pair = |scenario, tuned_cpu_ms, deployed_cpu_ms| {
            let mut tuned = measured(100, 0);
            tuned.server_cpu = Some(Duration::from_millis(tuned_cpu_ms));
            let mut deployed = measured(100, 0);
            deployed.server_cpu = Some(Duration::from_millis(deployed_cpu_ms));
            DeployedPair {
                scenario,
                rounds: 1,
                tuned,
                deployed,
            }
        };
        let rest = pair(Scenario::RevealRest, 4, 40);
        let grpc = pair(Scenario::RevealGrpc, 6, 1);
        // 60 µs per gRPC reveal against 40 µs per REST reveal, the deployed sides ignored.
        assert_eq!(grpc_over_rest_cpu(&[rest, grpc]), Some(1.5));
        assert_eq!(
            grpc_over_rest_cpu(&[pair(Scenario::RevealRest, 4, 4)]),
            None
        );
    }
}
