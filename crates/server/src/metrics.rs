//! Prometheus metrics, served as text on the admin listener's `/metrics`.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// Latency buckets from 0.5 ms to 10 s: a reveal is about one Redis round trip, a share with a
/// passphrase pays for argon2.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// burnbox's metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    secrets: IntCounterVec,
    store_seconds: HistogramVec,
    store_errors: IntCounterVec,
    rate_limited: IntCounterVec,
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|err| panic!("metric {name}: {err}"))
}

fn histogram(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )
    .unwrap_or_else(|err| panic!("metric {name}: {err}"))
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let metrics = Self {
            registry: Registry::new(),
            requests: counter(
                "burnbox_requests_total",
                "Requests by transport (rest, grpc), operation and outcome (ok or the error type).",
                &["transport", "operation", "outcome"],
            ),
            request_seconds: histogram(
                "burnbox_request_duration_seconds",
                "Time to answer a request.",
                &["transport", "operation"],
            ),
            secrets: counter(
                "burnbox_secrets_total",
                "Secrets by event: shared, revealed, burned (by request or by failed passphrases).",
                &["event"],
            ),
            store_seconds: histogram(
                "burnbox_store_operation_duration_seconds",
                "Time of one store operation (one Redis round trip, mostly).",
                &["operation"],
            ),
            store_errors: counter(
                "burnbox_store_errors_total",
                "Failed store operations by kind (unavailable, internal).",
                &["operation", "kind"],
            ),
            rate_limited: counter(
                "burnbox_rate_limited_total",
                "Requests refused by a rate limit, by action class.",
                &["class"],
            ),
        };
        for collector in [
            Box::new(metrics.requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.request_seconds.clone()),
            Box::new(metrics.secrets.clone()),
            Box::new(metrics.store_seconds.clone()),
            Box::new(metrics.store_errors.clone()),
            Box::new(metrics.rate_limited.clone()),
        ] {
            metrics
                .registry
                .register(collector)
                .unwrap_or_else(|err| panic!("registering a metric: {err}"));
        }
        metrics
    }

    /// Counts one answered request.
    pub fn request(&self, transport: &str, operation: &str, outcome: &str, elapsed: Duration) {
        self.requests
            .with_label_values(&[transport, operation, outcome])
            .inc();
        self.request_seconds
            .with_label_values(&[transport, operation])
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a secret event (`shared`, `revealed`, `burned`).
    pub fn secret(&self, event: &str) {
        self.secrets.with_label_values(&[event]).inc();
    }

    /// Times one store operation, and counts it if it failed (`error_kind`).
    pub fn store_operation(&self, operation: &str, elapsed: Duration, error_kind: Option<&str>) {
        self.store_seconds
            .with_label_values(&[operation])
            .observe(elapsed.as_secs_f64());
        if let Some(kind) = error_kind {
            self.store_errors
                .with_label_values(&[operation, kind])
                .inc();
        }
    }

    /// Counts a request refused by the rate limit of `class`.
    pub fn rate_limited(&self, class: &str) {
        self.rate_limited.with_label_values(&[class]).inc();
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut text);
        String::from_utf8(text).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
