//! Measuring a run of requests: the worker pool that drives them, their latency histogram, and
//! what the server process spent meanwhile, read from `/proc` (Linux, server on this host).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// The measurements of one run of requests.
pub struct Measured {
    pub requests: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub latency_micros: Histogram<u64>,
    /// CPU time the server process spent during the timed requests, if its pid is known.
    pub server_cpu: Option<Duration>,
    /// CPU time Redis spent during the timed requests, if it was read.
    pub redis_cpu: Option<Duration>,
}

impl Measured {
    /// Successful requests per second.
    pub fn throughput(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            (self.requests - self.errors) as f64 / seconds
        } else {
            0.0
        }
    }

    /// The latency at `quantile`, in milliseconds.
    pub fn millis(&self, quantile: f64) -> f64 {
        self.latency_micros.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// The slowest request, in milliseconds.
    pub fn max_millis(&self) -> f64 {
        self.latency_micros.max() as f64 / 1000.0
    }

    /// The server's CPU time per request in µs: its own cost, whatever the load generator and
    /// Redis took of the shared machine.
    pub fn server_micros_per_request(&self) -> Option<f64> {
        self.micros_per_request(self.server_cpu?)
    }

    /// Redis's CPU time per request in µs: what the store's side of an operation costs.
    pub fn redis_micros_per_request(&self) -> Option<f64> {
        self.micros_per_request(self.redis_cpu?)
    }

    fn micros_per_request(&self, cpu: Duration) -> Option<f64> {
        (self.requests > 0).then(|| cpu.as_secs_f64() * 1e6 / self.requests as f64)
    }

    /// Adds `other`'s requests to these, as if both runs were one: throughput over the summed
    /// time, percentiles over all latencies, CPU summed (unknown if either's is).
    pub fn absorb(&mut self, other: Self) -> Result<(), String> {
        self.requests += other.requests;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latency_micros
            .add(other.latency_micros)
            .map_err(|err| format!("merging histograms: {err}"))?;
        self.server_cpu = self
            .server_cpu
            .zip(other.server_cpu)
            .map(|(mine, theirs)| mine + theirs);
        self.redis_cpu = self
            .redis_cpu
            .zip(other.redis_cpu)
            .map(|(mine, theirs)| mine + theirs);
        Ok(())
    }
}

/// One request; `Ok(true)` is a success, `Ok(false)` a wrong answer.
pub type Outcome = Result<bool, String>;

/// CPU time (user + system, all threads) of process `pid` so far, from /proc. Linux reports it
/// in USER_HZ ticks, which the kernel fixes at 100 per second for user space whatever its own
/// tick rate; a 10 ms resolution is fine over runs of seconds.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are plain.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// A memory figure of process `pid` from /proc/PID/status, in KiB: `VmRSS` (resident now),
/// `VmHWM` (the peak of it).
pub fn process_memory_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The peak resident set size of `pid` in MiB.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    process_memory_kib(pid, "VmHWM").map(|kib| kib as f64 / 1024.0)
}

/// Runs `requests` calls of `call(worker, index)` on `concurrency` workers (numbered from 0, so
/// a worker can own a connection); returns the measurements, with the CPU time `server` (a
/// pid) spent meanwhile. Memory stays bounded whatever `requests` is: each worker keeps one
/// histogram and a count.
pub async fn drive<F, Fut>(
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
    for worker in 0..concurrency.max(1) {
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
        requests,
        errors,
        elapsed,
        latency_micros,
        server_cpu,
        redis_cpu: None,
    }
}

/// An empty latency histogram: 1 µs to 60 s at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|err| panic!("histogram: {err}"))
}
