//! Readings from a Redis's `INFO`: what it holds (`used_memory`) and the CPU it has spent.

use std::time::Duration;

/// The value of `field` in `INFO section` of the Redis at `url`.
async fn info_field(url: &str, section: &str, field: &str) -> Result<String, String> {
    let client = redis::Client::open(url).map_err(|err| format!("Redis URL: {err}"))?;
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|err| format!("cannot reach Redis at {url}: {err}"))?;
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(&mut connection)
        .await
        .map_err(|err| format!("INFO {section}: {err}"))?;
    info.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .map(|value| value.trim().to_owned())
        .ok_or_else(|| format!("INFO {section} has no {field}"))
}

/// Bytes Redis's allocator holds for data and overhead (`used_memory`).
pub async fn used_memory(url: &str) -> Result<u64, String> {
    let value = info_field(url, "memory", "used_memory").await?;
    value
        .parse()
        .map_err(|_| format!("used_memory is not a number: {value:?}"))
}

/// CPU time (user + system, all its threads) the Redis at `url` has spent since it started.
pub async fn cpu(url: &str) -> Result<Duration, String> {
    let mut total = 0.0;
    for field in ["used_cpu_user", "used_cpu_sys"] {
        let value = info_field(url, "cpu", field).await?;
        let seconds: f64 = value
            .parse()
            .map_err(|_| format!("{field} is not a number: {value:?}"))?;
        total += seconds;
    }
    Duration::try_from_secs_f64(total).map_err(|err| format!("Redis CPU time: {err}"))
}
