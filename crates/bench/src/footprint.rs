//! Bytes per stored secret: what a store holds for a secret nobody has revealed yet, with its
//! receipt and indexes. Redis: `used_memory` of `INFO memory`; the in-process memory store:
//! the server's resident memory (`VmRSS`). Both read before and after N secrets are shared
//! through the server, divided by N.

use crate::load::{Load, Server, store_secrets};
use crate::measure::process_memory_kib;
use crate::redis_info;

/// Shares stored before the first reading, so that what every store and server grows once
/// (connection buffers, allocator arenas, the first pages of its tables) is not charged to the
/// measured secrets.
const WARM_UP: usize = 1000;

/// Where a store's memory is read.
pub enum Gauge {
    /// `used_memory` of the Redis at this URL: what its allocator holds for data and overhead.
    RedisUsedMemory(String),
    /// `VmRSS` of the process with this id.
    ProcessRss(u32),
}

impl Gauge {
    /// How the reading is taken, for the report.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::RedisUsedMemory(_) => "Redis INFO memory used_memory",
            Self::ProcessRss(_) => "server VmRSS",
        }
    }

    async fn read(&self) -> Result<u64, String> {
        match self {
            Self::RedisUsedMemory(url) => redis_info::used_memory(url).await,
            Self::ProcessRss(pid) => process_memory_kib(*pid, "VmRSS")
                .map(|kib| kib * 1024)
                .ok_or_else(|| format!("cannot read VmRSS of process {pid}")),
        }
    }
}

/// One store's footprint: its memory before and after `secrets` shares.
pub struct Footprint {
    /// How the memory was read.
    pub source: &'static str,
    /// Secrets shared between the two readings.
    pub secrets: usize,
    /// Secrets shared before the first reading.
    pub warm_up: usize,
    /// Bytes before.
    pub before: u64,
    /// Bytes after.
    pub after: u64,
}

impl Footprint {
    /// Bytes per secret (negative if the store shrank meanwhile, e.g. on expiries).
    pub fn bytes_per_secret(&self) -> f64 {
        if self.secrets == 0 {
            return 0.0;
        }
        (self.after as f64 - self.before as f64) / self.secrets as f64
    }
}

/// Shares a warm-up, reads `gauge`, shares `secrets` `load.secret_bytes`-byte secrets through
/// `server` (anonymous, ttl one hour, none revealed), reads it again. All of them stay stored.
pub async fn measure(
    gauge: &Gauge,
    server: &Server,
    load: &Load,
    secrets: usize,
) -> Result<Footprint, String> {
    let warm_up = WARM_UP.min(secrets);
    store_secrets(server, load, warm_up).await?;
    let before = gauge.read().await?;
    store_secrets(server, load, secrets).await?;
    let after = gauge.read().await?;
    Ok(Footprint {
        source: gauge.describe(),
        secrets,
        warm_up,
        before,
        after,
    })
}
