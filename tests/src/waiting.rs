//! Waiting for something to happen, with a bound that only marks it gone wrong.
//!
//! The one polling loop of the harness. Tests wait for events where the thing waited on offers
//! one (a log line, a channel, a CDP event); this is for conditions that can only be asked about:
//! a store answering again, a secret expiring, a page's DOM reaching a state.

use super::*;

/// The bound of a wait passed without the condition holding.
#[derive(Debug)]
pub struct TimedOut;

/// Repeats `attempt` every `every` until it yields `Some`, for at most `within` (one last
/// attempt is made at the bound); `Err(TimedOut)` otherwise, for the caller to say what it saw.
pub async fn poll_until<T, Fut>(
    within: Duration,
    every: Duration,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T, TimedOut>
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        let last = Instant::now() >= deadline;
        if let Some(done) = attempt().await {
            return Ok(done);
        }
        if last {
            return Err(TimedOut);
        }
        tokio::time::sleep(every.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

/// Repeats `attempt` every 100 ms until it yields `Some`, for at most `within`; panics saying
/// `what` did not happen otherwise.
pub async fn eventually<T, Fut>(within: Duration, what: &str, attempt: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    poll_until(within, Duration::from_millis(100), attempt)
        .await
        .unwrap_or_else(|TimedOut| panic!("{what} did not happen within {within:?}"))
}
