//! Waiting for something to happen, with a bound that only marks it gone wrong.

use super::*;

/// Repeats `attempt` every 100 ms until it yields `Some`, for at most `within`; panics saying
/// `what` did not happen otherwise.
pub async fn eventually<T, Fut>(within: Duration, what: &str, mut attempt: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(done) = attempt().await {
            return done;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
