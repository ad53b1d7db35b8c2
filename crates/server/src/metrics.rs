//! burnbox's metrics, served on the admin listener's `/metrics`: in the Prometheus text format
//! (0.0.4) by default, and in OpenMetrics when the scraper asks for it, where the latency
//! histograms carry the trace id of a request that landed in each bucket as an exemplar. With
//! OTLP metrics on ([`crate::telemetry`]), every sample is also recorded into OpenTelemetry
//! instruments of the same names and attributes, which the meter provider pushes.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use burnbox_store::MemoryStore;
use opentelemetry::KeyValue;
use opentelemetry::metrics::ObservableGauge;
use opentelemetry::metrics::{Counter as OtelCounter, Gauge as OtelGauge, Histogram, Meter};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

/// Latency buckets from 0.5 ms to 10 s: a reveal is about one Redis round trip, a share with a
/// passphrase pays for argon2.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The content type of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = prometheus_text::CONTENT_TYPE;

/// The content type of OpenMetrics text.
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A label set of `&'static str` values. The encoders print labels in field order: fields are
/// declared in alphabetical order, the order scrapes (and the tests) have always seen.
///
/// A family finds a sample's series by hashing its labels with SipHash under the family's lock,
/// several times per request; the set hashes as one word ([`label_fingerprint`]) instead of
/// every byte of every value. That word is easy to collide on purpose, which is harmless here:
/// values are `&'static str` from the server's own fixed sets, never a caller's text.
macro_rules! label_set {
    ($name:ident { $($field:ident),+ $(,)? }) => {
        #[derive(Clone, Debug, PartialEq, Eq, EncodeLabelSet)]
        struct $name {
            $($field: &'static str),+
        }

        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                state.write_u64(label_fingerprint(&[$(self.$field),+]));
            }
        }
    };
}

label_set!(RequestLabels {
    operation,
    outcome,
    transport
});
label_set!(RouteLabels {
    operation,
    transport
});
label_set!(EventLabels { event });
label_set!(StoreLabels { operation });
label_set!(StoreErrorLabels { kind, operation });
label_set!(ClassLabels { class });

/// One word of `values`: each one's length and first and last bytes. Equal values give equal
/// words, as `Hash` must; label values come from small fixed sets that these few bytes tell
/// apart (a test holds it for the operation names), and two that collide would only cost a
/// comparison more.
fn label_fingerprint(values: &[&str]) -> u64 {
    values.iter().fold(0, |word: u64, value| {
        let bytes = value.as_bytes();
        let first = bytes.first().copied().unwrap_or_default();
        let last = bytes.last().copied().unwrap_or_default();
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX) & 0xffff;
        word.rotate_left(21) ^ (u64::from(first) << 24 | u64::from(last) << 16 | len)
    })
}

/// An exemplar's labels: the trace that made the observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TraceExemplar {
    trace_id: String,
}

/// A latency histogram whose buckets each keep the latest traced observation (one exemplar per
/// bucket and series, so memory stays bounded by the series count).
type TracedHistogram = HistogramWithExemplars<TraceExemplar>;

fn traced_histogram() -> TracedHistogram {
    HistogramWithExemplars::new(LATENCY_BUCKETS.iter().copied())
}

/// The memory store's gauges, read when scraped; nothing while no memory store is watched (the
/// store is Redis).
#[derive(Clone, Default)]
struct MemoryStoreGauges(Arc<OnceLock<Arc<MemoryStore>>>);

impl std::fmt::Debug for MemoryStoreGauges {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MemoryStoreGauges")
            .field("watching", &self.0.get().is_some())
            .finish()
    }
}

/// The memory store's gauges: (name, help, value).
fn memory_store_gauges(store: &MemoryStore) -> [(&'static str, &'static str, usize); 2] {
    let (used, budget) = store.usage();
    [
        (
            "burnbox_memory_store_used_bytes",
            "Bytes the in-process store counts against its budget (secrets, receipts, indexes).",
            used,
        ),
        (
            "burnbox_memory_store_budget_bytes",
            "The in-process store's budget (BURNBOX_MEMORY_STORE_MIB); shares over it are refused.",
            budget,
        ),
    ]
}

impl Collector for MemoryStoreGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(store) = self.0.get() else {
            return Ok(());
        };
        for (name, help, value) in memory_store_gauges(store) {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

/// The same metrics as OpenTelemetry instruments, for OTLP export.
struct OtelInstruments {
    requests: OtelCounter<u64>,
    request_seconds: Histogram<f64>,
    secrets: OtelCounter<u64>,
    store_seconds: Histogram<f64>,
    store_errors: OtelCounter<u64>,
    rate_limited: OtelCounter<u64>,
    ready: OtelGauge<i64>,
    // Held so the memory store's gauges stay registered with the meter.
    _memory_store: [ObservableGauge<u64>; 2],
}

impl OtelInstruments {
    fn new(meter: &Meter, memory_store: &MemoryStoreGauges) -> Self {
        let counter = |name: &'static str, help: &'static str| {
            meter.u64_counter(name).with_description(help).build()
        };
        let histogram = |name: &'static str, help: &'static str| {
            meter
                .f64_histogram(name)
                .with_description(help)
                .with_unit("s")
                .with_boundaries(LATENCY_BUCKETS.to_vec())
                .build()
        };
        let memory_gauge = |index: usize| {
            let watched = memory_store.clone();
            let name = [
                "burnbox_memory_store_used_bytes",
                "burnbox_memory_store_budget_bytes",
            ][index];
            meter
                .u64_observable_gauge(name)
                .with_unit("By")
                .with_callback(move |observer| {
                    if let Some(store) = watched.0.get() {
                        let (_, _, value) = memory_store_gauges(store)[index];
                        observer.observe(u64::try_from(value).unwrap_or(u64::MAX), &[]);
                    }
                })
                .build()
        };
        Self {
            requests: counter("burnbox_requests_total", REQUESTS_HELP),
            request_seconds: histogram("burnbox_request_duration_seconds", REQUEST_SECONDS_HELP),
            secrets: counter("burnbox_secrets_total", SECRETS_HELP),
            store_seconds: histogram(
                "burnbox_store_operation_duration_seconds",
                STORE_SECONDS_HELP,
            ),
            store_errors: counter("burnbox_store_errors_total", STORE_ERRORS_HELP),
            rate_limited: counter("burnbox_rate_limited_total", RATE_LIMITED_HELP),
            ready: meter
                .i64_gauge("burnbox_ready")
                .with_description(READY_HELP)
                .build(),
            _memory_store: [memory_gauge(0), memory_gauge(1)],
        }
    }
}

// Help texts, the same for /metrics and OTLP (the registry adds the full stop).
const REQUESTS_HELP: &str =
    "Requests by transport (rest, grpc), operation and outcome (ok or the error type)";
const REQUEST_SECONDS_HELP: &str = "Time to answer a request";
const SECRETS_HELP: &str =
    "Secrets by event: shared, revealed, burned (by request or by failed passphrases)";
const STORE_SECONDS_HELP: &str = "Time of one store operation (one Redis round trip, mostly)";
const STORE_ERRORS_HELP: &str = "Failed store operations by kind (unavailable, internal)";
const RATE_LIMITED_HELP: &str = "Requests refused by a rate limit, by action class";
const READY_HELP: &str =
    "The latest readiness check (/readyz): 1 ready, 0 not (the store did not answer)";

/// burnbox's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, TracedHistogram, fn() -> TracedHistogram>,
    secrets: Family<EventLabels, Counter>,
    store_seconds: Family<StoreLabels, TracedHistogram, fn() -> TracedHistogram>,
    store_errors: Family<StoreErrorLabels, Counter>,
    rate_limited: Family<ClassLabels, Counter>,
    ready: Gauge,
    memory_store: MemoryStoreGauges,
    otel: Option<OtelInstruments>,
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::default();
        let request_seconds = Family::new_with_constructor(traced_histogram as fn() -> _);
        let secrets = Family::default();
        let store_seconds = Family::new_with_constructor(traced_histogram as fn() -> _);
        let store_errors = Family::default();
        let rate_limited = Family::default();
        let ready = Gauge::default();
        let memory_store = MemoryStoreGauges::default();
        // Counter names go without `_total` (the encoders add it); the registry ends every help
        // text with a full stop.
        registry.register("burnbox_requests", REQUESTS_HELP, requests.clone());
        registry.register(
            "burnbox_request_duration_seconds",
            REQUEST_SECONDS_HELP,
            request_seconds.clone(),
        );
        registry.register("burnbox_secrets", SECRETS_HELP, secrets.clone());
        registry.register(
            "burnbox_store_operation_duration_seconds",
            STORE_SECONDS_HELP,
            store_seconds.clone(),
        );
        registry.register(
            "burnbox_store_errors",
            STORE_ERRORS_HELP,
            store_errors.clone(),
        );
        registry.register(
            "burnbox_rate_limited",
            RATE_LIMITED_HELP,
            rate_limited.clone(),
        );
        registry.register("burnbox_ready", READY_HELP, ready.clone());
        registry.register_collector(Box::new(memory_store.clone()));
        let otel = crate::telemetry::is_exporting_metrics()
            .then(|| OtelInstruments::new(&opentelemetry::global::meter("burnbox"), &memory_store));
        Self {
            registry,
            requests,
            request_seconds,
            secrets,
            store_seconds,
            store_errors,
            rate_limited,
            ready,
            memory_store,
            otel,
        }
    }

    /// Exports `store`'s counted bytes and budget as gauges, read at each scrape. Only the first
    /// store watched counts (a server has one).
    pub fn watch_memory_store(&self, store: Arc<MemoryStore>) {
        let _ = self.memory_store.0.set(store);
    }

    /// Records the result of a readiness check.
    pub fn ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
        if let Some(otel) = &self.otel {
            otel.ready.record(i64::from(ready), &[]);
        }
    }

    /// Counts one answered request; `trace_id` (the request's) becomes the exemplar of the
    /// latency bucket it lands in.
    pub fn request(
        &self,
        transport: &'static str,
        operation: &'static str,
        outcome: &'static str,
        elapsed: Duration,
        trace_id: Option<&str>,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                operation,
                outcome,
                transport,
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabels {
                operation,
                transport,
            })
            .observe(elapsed.as_secs_f64(), exemplar(trace_id), None);
        if let Some(otel) = &self.otel {
            let route = [
                KeyValue::new("operation", operation),
                KeyValue::new("transport", transport),
            ];
            otel.request_seconds.record(elapsed.as_secs_f64(), &route);
            let [operation, transport] = route;
            otel.requests.add(
                1,
                &[operation, KeyValue::new("outcome", outcome), transport],
            );
        }
    }

    /// Counts a secret event (`shared`, `revealed`, `burned`).
    pub fn secret(&self, event: &'static str) {
        self.secrets.get_or_create(&EventLabels { event }).inc();
        if let Some(otel) = &self.otel {
            otel.secrets.add(1, &[KeyValue::new("event", event)]);
        }
    }

    /// Times one store operation (with the trace it served, if any, as its exemplar), and
    /// counts it if it failed (`error_kind`).
    pub fn store_operation(
        &self,
        operation: &'static str,
        elapsed: Duration,
        error_kind: Option<&'static str>,
        trace_id: Option<&str>,
    ) {
        self.store_seconds
            .get_or_create(&StoreLabels { operation })
            .observe(elapsed.as_secs_f64(), exemplar(trace_id), None);
        if let Some(kind) = error_kind {
            self.store_errors
                .get_or_create(&StoreErrorLabels { kind, operation })
                .inc();
        }
        if let Some(otel) = &self.otel {
            let operation = KeyValue::new("operation", operation);
            otel.store_seconds
                .record(elapsed.as_secs_f64(), std::slice::from_ref(&operation));
            if let Some(kind) = error_kind {
                otel.store_errors
                    .add(1, &[KeyValue::new("kind", kind), operation]);
            }
        }
    }

    /// Counts a request refused by the rate limit of `class`.
    pub fn rate_limited(&self, class: &'static str) {
        self.rate_limited
            .get_or_create(&ClassLabels { class })
            .inc();
        if let Some(otel) = &self.otel {
            otel.rate_limited.add(1, &[KeyValue::new("class", class)]);
        }
    }

    /// Every metric in the Prometheus text format (no exemplars).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.registry);
        text
    }

    /// Every metric in OpenMetrics text, with exemplars, ending in `# EOF`.
    pub fn render_openmetrics(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = text::encode(&mut text, &self.registry);
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn exemplar(trace_id: Option<&str>) -> Option<TraceExemplar> {
    trace_id.map(|trace_id| TraceExemplar {
        trace_id: trace_id.to_owned(),
    })
}

/// Whether a scraper's `Accept` header prefers OpenMetrics: an explicit
/// `application/openmetrics-text` range with a quality above zero and at least that of any range
/// the Prometheus text format matches (`text/plain`, `text/*`, `*/*`). No header, `*/*` alone, or
/// anything unreadable gets the Prometheus text format.
pub fn prefers_openmetrics(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let mut openmetrics = 0.0_f64;
    let mut plain = 0.0_f64;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media_type = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|parameter| {
                let (name, value) = parameter.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| value.trim().parse::<f64>().ok())?
            })
            .next()
            .unwrap_or(1.0);
        let quality = if quality.is_finite() {
            quality.clamp(0.0, 1.0)
        } else {
            0.0
        };
        match media_type.as_str() {
            "application/openmetrics-text" => openmetrics = openmetrics.max(quality),
            "text/plain" | "text/*" | "*/*" => plain = plain.max(quality),
            _ => {}
        }
    }
    openmetrics > 0.0 && openmetrics >= plain
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::operations::OPERATIONS;

    #[test]
    fn label_sets_of_the_operations_hash_apart() {
        let mut words = HashSet::new();
        for row in &OPERATIONS {
            for transport in ["rest", "grpc"] {
                let labels = [row.name, transport];
                assert!(
                    words.insert(label_fingerprint(&labels)),
                    "{labels:?} shares its word with another operation's"
                );
            }
        }
        // Equal sets give equal words, whatever their addresses.
        let owned = String::from("reveal");
        assert_eq!(
            label_fingerprint(&["reveal", "rest"]),
            label_fingerprint(&[owned.as_str(), "rest"])
        );
    }

    #[test]
    fn accept_headers_choose_the_format() {
        for (accept, openmetrics) in [
            (None, false),
            (Some(""), false),
            (Some("*/*"), false),
            (Some("text/plain"), false),
            (Some("text/plain; version=0.0.4"), false),
            (Some("application/json"), false),
            (Some("application/openmetrics-text"), true),
            (Some("Application/OpenMetrics-Text; version=1.0.0"), true),
            (
                Some("application/openmetrics-text; version=1.0.0; charset=utf-8"),
                true,
            ),
            // What Prometheus sends.
            (
                Some(
                    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                ),
                true,
            ),
            (
                Some("text/plain;q=0.9, application/openmetrics-text;q=0.5"),
                false,
            ),
            (Some("application/openmetrics-text;q=0"), false),
            (Some("application/openmetrics-text;q=0.2, */*;q=0.1"), true),
            (Some("application/openmetrics-text;q=0.2, */*"), false),
            (Some("application/openmetrics-text;q=nonsense"), true),
        ] {
            assert_eq!(prefers_openmetrics(accept), openmetrics, "{accept:?}");
        }
    }

    fn observed() -> Metrics {
        let metrics = Metrics::new();
        metrics.request(
            "rest",
            "reveal",
            "ok",
            Duration::from_millis(3),
            Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        );
        metrics.request(
            "grpc",
            "share",
            "BadRequest",
            Duration::from_millis(1),
            None,
        );
        metrics.secret("shared");
        metrics.store_operation(
            "create",
            Duration::from_micros(300),
            Some("full"),
            Some("0af7651916cd43dd8448eb211c80319c"),
        );
        metrics.rate_limited("create");
        metrics
    }

    #[test]
    fn the_prometheus_format_keeps_names_labels_and_buckets() {
        let text = observed().render();
        for line in [
            "# HELP burnbox_requests_total Requests by transport (rest, grpc), operation and outcome (ok or the error type).",
            "# TYPE burnbox_requests_total counter",
            r#"burnbox_requests_total{operation="reveal",outcome="ok",transport="rest"} 1"#,
            r#"burnbox_requests_total{operation="share",outcome="BadRequest",transport="grpc"} 1"#,
            "# TYPE burnbox_request_duration_seconds histogram",
            r#"burnbox_request_duration_seconds_bucket{operation="reveal",transport="rest",le="0.0025"} 0"#,
            r#"burnbox_request_duration_seconds_bucket{operation="reveal",transport="rest",le="0.005"} 1"#,
            r#"burnbox_request_duration_seconds_bucket{operation="reveal",transport="rest",le="10"} 1"#,
            r#"burnbox_request_duration_seconds_bucket{operation="reveal",transport="rest",le="+Inf"} 1"#,
            r#"burnbox_request_duration_seconds_count{operation="reveal",transport="rest"} 1"#,
            r#"burnbox_secrets_total{event="shared"} 1"#,
            r#"burnbox_store_operation_duration_seconds_bucket{operation="create",le="0.0005"} 1"#,
            r#"burnbox_store_errors_total{kind="full",operation="create"} 1"#,
            r#"burnbox_rate_limited_total{class="create"} 1"#,
        ] {
            assert!(text.lines().any(|got| got == line), "no {line} in\n{text}");
        }
        for absent in [
            "#{",
            "# {",
            "# EOF",
            "# UNIT",
            "# TYPE burnbox_requests counter",
        ] {
            assert!(!text.contains(absent), "{absent} in\n{text}");
        }
    }

    #[test]
    fn gauges_follow_readiness_and_the_memory_store() {
        let metrics = Metrics::new();
        let text = metrics.render();
        assert!(text.lines().any(|line| line == "burnbox_ready 0"), "{text}");
        assert!(!text.contains("burnbox_memory_store"), "{text}");
        metrics.ready(true);
        metrics.watch_memory_store(Arc::new(MemoryStore::with_budget(4096)));
        let text = metrics.render();
        for line in [
            "# TYPE burnbox_ready gauge",
            "burnbox_ready 1",
            "# TYPE burnbox_memory_store_used_bytes gauge",
            "burnbox_memory_store_used_bytes 0",
            "burnbox_memory_store_budget_bytes 4096",
        ] {
            assert!(text.lines().any(|got| got == line), "no {line} in\n{text}");
        }
        assert!(
            metrics
                .render_openmetrics()
                .lines()
                .any(|line| line == "burnbox_memory_store_budget_bytes 4096")
        );
    }

    #[test]
    fn openmetrics_carries_trace_exemplars() {
        let text = observed().render_openmetrics();
        for line in [
            r#"burnbox_request_duration_seconds_bucket{le="0.005",operation="reveal",transport="rest"} 1 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 0.003"#,
            r#"burnbox_store_operation_duration_seconds_bucket{le="0.0005",operation="create"} 1 # {trace_id="0af7651916cd43dd8448eb211c80319c"} 0.0003"#,
            r#"burnbox_requests_total{operation="reveal",outcome="ok",transport="rest"} 1"#,
        ] {
            assert!(text.lines().any(|got| got == line), "no {line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        // Only traced observations have exemplars.
        assert!(
            text.lines()
                .filter(|line| line.contains(r#"transport="grpc""#))
                .all(|line| !line.contains(" # {")),
            "{text}"
        );
    }
}
