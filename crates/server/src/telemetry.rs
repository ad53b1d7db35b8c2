//! Logs, traces and OTLP metrics. Logs go to stdout (text or JSON), filtered by `BURNBOX_LOG`,
//! as [`crate::logs`] writes them. Traces go to OpenTelemetry: every request gets a server span
//! that joins the caller's trace (W3C `traceparent`/`tracestate` from HTTP headers or gRPC
//! metadata), and are exported over OTLP (gRPC or HTTP/protobuf) when an endpoint is configured.
//! Trace ids exist even without export: they are the `error_id` of every error and appear in
//! every log line of a request. With `OTEL_METRICS_EXPORTER=otlp` the metrics of `/metrics` are
//! also pushed over OTLP, periodically, by an OpenTelemetry meter provider installed as the
//! global one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::logs::LogWriter;

/// How OTLP export speaks.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP over gRPC (default port 4317).
    #[value(name = "grpc")]
    Grpc,
    /// OTLP over HTTP with protobuf bodies (default port 4318).
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

/// Where metrics go besides `/metrics` (the values of `OTEL_METRICS_EXPORTER`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsExporter {
    /// Only `/metrics`.
    #[value(name = "none")]
    None,
    /// Also pushed over OTLP.
    #[value(name = "otlp")]
    Otlp,
}

/// How metrics are pushed over OTLP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsExport {
    /// The full endpoint: for HTTP the URL metrics are posted to (`…/v1/metrics`), for gRPC the
    /// collector's address.
    pub endpoint: String,
    /// How export speaks.
    pub protocol: OtlpProtocol,
    /// The time between two exports.
    pub interval: Duration,
}

impl MetricsExport {
    /// The export that the standard settings describe: the metrics endpoint as given, else the
    /// general endpoint (for HTTP with `/v1/metrics` appended), else the local collector's
    /// default port for the protocol.
    pub fn resolve(
        metrics_endpoint: Option<&str>,
        endpoint: Option<&str>,
        protocol: OtlpProtocol,
        interval: Duration,
    ) -> Self {
        fn present(value: Option<&str>) -> Option<&str> {
            value.map(str::trim).filter(|value| !value.is_empty())
        }
        let endpoint = match (present(metrics_endpoint), present(endpoint), protocol) {
            (Some(metrics), _, _) => metrics.to_owned(),
            (None, Some(base), OtlpProtocol::Grpc) => base.to_owned(),
            (None, Some(base), OtlpProtocol::HttpProtobuf) => {
                format!("{}/v1/metrics", base.trim_end_matches('/'))
            }
            (None, None, OtlpProtocol::Grpc) => "http://localhost:4317".to_owned(),
            (None, None, OtlpProtocol::HttpProtobuf) => {
                "http://localhost:4318/v1/metrics".to_owned()
            }
        };
        Self {
            endpoint,
            protocol,
            interval,
        }
    }
}

/// Which traces are recorded (the values of `OTEL_TRACES_SAMPLER`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplerKind {
    /// Every trace.
    #[value(name = "always_on")]
    AlwaysOn,
    /// No trace.
    #[value(name = "always_off")]
    AlwaysOff,
    /// A ratio of traces (`OTEL_TRACES_SAMPLER_ARG`).
    #[value(name = "traceidratio")]
    TraceIdRatio,
    /// As the caller decided, else every trace.
    #[value(name = "parentbased_always_on")]
    ParentBasedAlwaysOn,
    /// As the caller decided, else none.
    #[value(name = "parentbased_always_off")]
    ParentBasedAlwaysOff,
    /// As the caller decided, else a ratio.
    #[value(name = "parentbased_traceidratio")]
    ParentBasedTraceIdRatio,
}

/// Everything telemetry needs to start.
#[derive(Clone, Debug)]
pub struct TelemetryConfig {
    /// Log filter in RUST_LOG syntax.
    pub log_filter: String,
    /// JSON log lines instead of text.
    pub json_logs: bool,
    /// The longest an info line waits to be written (batched with others).
    pub log_flush_interval: Duration,
    /// Where to export spans; `None`: no export (trace ids are still made).
    pub otlp_endpoint: Option<String>,
    /// How to export them.
    pub otlp_protocol: OtlpProtocol,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// Which traces to record.
    pub sampler: SamplerKind,
    /// The ratio for the ratio samplers.
    pub sampler_ratio: f64,
    /// OTLP metrics export; `None`: metrics are only on `/metrics`.
    pub metrics: Option<MetricsExport>,
}

/// The running telemetry; shut it down before the process exits. Dropping it (also on a
/// failing exit) still writes every pending log line.
pub struct Telemetry {
    provider: SdkTracerProvider,
    meters: Option<SdkMeterProvider>,
    /// `None` where an earlier [`init`] installed the process's logging.
    logs: Option<LogWriter>,
}

impl Telemetry {
    /// Writes every log line logged so far, now.
    pub fn flush_logs(&self) {
        if let Some(logs) = &self.logs {
            logs.flush();
        }
    }

    /// Exports every finished span, and the metrics when they are pushed, now; writes every
    /// pending log line.
    pub fn flush(&self) {
        self.flush_logs();
        if let Err(err) = self.provider.force_flush() {
            tracing::warn!(%err, "flushing spans failed");
        }
        if let Some(meters) = &self.meters
            && let Err(err) = meters.force_flush()
        {
            tracing::warn!(%err, "exporting metrics failed");
        }
    }

    /// Flushes and stops the exporters, then writes every pending log line (later lines are
    /// written as they come).
    pub fn shutdown(self) {
        if let Err(err) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            eprintln!("burnbox: flushing spans at shutdown failed: {err}");
        }
        // Shutting the meter provider down exports what was measured since the last export.
        if let Some(meters) = self.meters
            && let Err(err) = meters.shutdown_with_timeout(Duration::from_secs(5))
        {
            eprintln!("burnbox: exporting metrics at shutdown failed: {err}");
        }
        if let Some(logs) = self.logs {
            logs.close();
        }
    }
}

fn sampler(config: &TelemetryConfig) -> Sampler {
    let ratio = || Sampler::TraceIdRatioBased(config.sampler_ratio.clamp(0.0, 1.0));
    match config.sampler {
        SamplerKind::AlwaysOn => Sampler::AlwaysOn,
        SamplerKind::AlwaysOff => Sampler::AlwaysOff,
        SamplerKind::TraceIdRatio => ratio(),
        SamplerKind::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        SamplerKind::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        SamplerKind::ParentBasedTraceIdRatio => Sampler::ParentBased(Box::new(ratio())),
    }
}

fn exporter(
    endpoint: &str,
    protocol: OtlpProtocol,
) -> Result<opentelemetry_otlp::SpanExporter, String> {
    let built = match protocol {
        OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build(),
        OtlpProtocol::HttpProtobuf => {
            // As OTEL_EXPORTER_OTLP_ENDPOINT specifies: the base URL, traces under /v1/traces.
            let base = endpoint.trim_end_matches('/');
            let url = if base.ends_with("/v1/traces") {
                base.to_owned()
            } else {
                format!("{base}/v1/traces")
            };
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(url)
                .build()
        }
    };
    built.map_err(|err| format!("OTLP exporter: {err}"))
}

fn metric_exporter(export: &MetricsExport) -> Result<opentelemetry_otlp::MetricExporter, String> {
    let built = match export.protocol {
        OtlpProtocol::Grpc => opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(export.endpoint.clone())
            .build(),
        OtlpProtocol::HttpProtobuf => opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(export.endpoint.clone())
            .build(),
    };
    built.map_err(|err| format!("OTLP metrics exporter: {err}"))
}

/// A meter provider pushing to `export`, installed as the global one (which
/// the server's metrics record into).
fn install_meter_provider(
    export: &MetricsExport,
    resource: Resource,
) -> Result<SdkMeterProvider, String> {
    let reader = PeriodicReader::builder(metric_exporter(export)?)
        .with_interval(export.interval)
        .build();
    let provider = SdkMeterProvider::builder()
        .with_reader(reader)
        .with_resource(resource)
        .build();
    opentelemetry::global::set_meter_provider(provider.clone());
    EXPORTING_METRICS.store(true, Ordering::Relaxed);
    Ok(provider)
}

/// Installs logging and tracing for the process. Fails only on an unusable OTLP endpoint.
/// Calling it again (as test binaries may) keeps the first subscriber.
pub fn init(config: &TelemetryConfig) -> Result<Telemetry, String> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    let meters = config
        .metrics
        .as_ref()
        .map(|export| install_meter_provider(export, resource.clone()))
        .transpose()?;
    let mut provider = SdkTracerProvider::builder()
        .with_sampler(sampler(config))
        .with_resource(resource);
    if let Some(endpoint) = &config.otlp_endpoint {
        provider = provider.with_batch_exporter(exporter(endpoint, config.otlp_protocol)?);
    }
    let provider = provider.build();
    let tracer = provider.tracer("burnbox");

    let log_filter =
        EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let log_writer = LogWriter::new(
        std::io::stdout(),
        config.json_logs,
        config.log_flush_interval,
    );
    // Spans are burnbox's own (requests, core operations, Redis commands), whatever the log level.
    let traced = Targets::new()
        .with_target("burnbox", tracing::Level::INFO)
        .with_target("burnbox_server", tracing::Level::INFO)
        .with_target("burnbox_core", tracing::Level::INFO)
        .with_target("burnbox_store", tracing::Level::INFO)
        .with_target("burnbox_store_redis", tracing::Level::INFO);
    // Without an exporter the OpenTelemetry layer would build spans nobody sees: leave it out
    // (a third of a reveal's tracing cost) and keep trace ids in the request scope instead.
    let traces = config.otlp_endpoint.as_ref().map(|_| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(traced)
    });
    // Not an `Option` layer: an absent one would ask for every span, and the log lines want none.
    let installed = match traces {
        Some(traces) => tracing_subscriber::registry()
            .with(log_writer.layer(log_filter))
            .with(traces)
            .try_init(),
        None => tracing_subscriber::registry()
            .with(log_writer.layer(log_filter))
            .try_init(),
    }
    .is_ok();
    let logs = installed.then(|| {
        EXPORTING.store(config.otlp_endpoint.is_some(), Ordering::Relaxed);
        log_writer.start();
        log_writer
    });
    Ok(Telemetry {
        provider,
        meters,
        logs,
    })
}

/// Reads W3C trace context from HTTP headers (gRPC metadata travels as HTTP/2 headers too).
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Whether spans go to OpenTelemetry (set once, by [`init`] with an exporter).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether metrics are pushed over OTLP (set by [`init`] with `OTEL_METRICS_EXPORTER=otlp`).
static EXPORTING_METRICS: AtomicBool = AtomicBool::new(false);

/// Whether metrics are pushed over OTLP through the global meter provider.
pub fn is_exporting_metrics() -> bool {
    EXPORTING_METRICS.load(Ordering::Relaxed)
}

/// The trace a request belongs to: the caller's (W3C `traceparent` in `headers`), else a new
/// one. When spans are exported, `span` becomes a child of the caller's span. The trace id is
/// recorded in the span's `trace_id` field; log lines take it from the request scope.
pub fn join_or_start_trace(span: &tracing::Span, headers: &http::HeaderMap) -> String {
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let caller = parent.span().span_context().clone();
    let trace_id = if EXPORTING.load(Ordering::Relaxed) {
        if caller.is_valid() {
            // Fails only when the span is disabled, and then there is nothing to join.
            let _ = span.set_parent(parent);
        }
        trace_id_of(span)
    } else {
        caller.is_valid().then(|| trace_id_hex(caller.trace_id()))
    };
    let trace_id = trace_id
        .unwrap_or_else(|| trace_id_hex(opentelemetry::trace::TraceId::from_bytes(rand::random())));
    span.record("trace_id", trace_id.as_str());
    trace_id
}

/// The trace id of `span` as exported to OpenTelemetry, if it has one.
pub fn trace_id_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| trace_id_hex(span_context.trace_id()))
}

/// `id` as 32 lowercase hex digits, as its `Display` writes it, but through a table instead of
/// the formatting machinery, which cost a request more than making the id.
fn trace_id_hex(id: opentelemetry::trace::TraceId) -> String {
    let mut digits = [0u8; 32];
    // Cannot fail: the buffer holds two digits for each of the id's 16 bytes.
    let _ = hex::encode_to_slice(id.to_bytes(), &mut digits);
    String::from_utf8(digits.to_vec()).unwrap_or_default()
}

/// Whether spans go to OpenTelemetry (an exporter is configured).
pub fn is_exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_written_as_opentelemetry_writes_them() {
        for bytes in [
            [0u8; 16],
            [0xff; 16],
            *b"\x00\x01\x02\x0a\x10\xab\xcdEFGHIJKLM",
        ] {
            let id = opentelemetry::trace::TraceId::from_bytes(bytes);
            assert_eq!(trace_id_hex(id), id.to_string());
        }
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            http::HeaderValue::from_static(
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
        );
        let joined = join_or_start_trace(&tracing::Span::none(), &headers);
        assert_eq!(joined, "0af7651916cd43dd8448eb211c80319c");
        let started = join_or_start_trace(&tracing::Span::none(), &http::HeaderMap::new());
        assert_eq!(started.len(), 32);
        assert!(
            started
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    #[test]
    fn metrics_endpoints_resolve_as_the_otlp_settings_say() {
        let second = Duration::from_secs(1);
        let resolve = |metrics, base, protocol| {
            MetricsExport::resolve(metrics, base, protocol, second).endpoint
        };
        use OtlpProtocol::{Grpc, HttpProtobuf};
        // The signal's own endpoint is taken as it is.
        assert_eq!(
            resolve(
                Some("http://m:4318/custom"),
                Some("http://c:4318"),
                HttpProtobuf
            ),
            "http://m:4318/custom"
        );
        // The general one is a base URL for HTTP, an address for gRPC.
        assert_eq!(
            resolve(None, Some("http://c:4318/"), HttpProtobuf),
            "http://c:4318/v1/metrics"
        );
        assert_eq!(
            resolve(Some(" "), Some("http://c:4317"), Grpc),
            "http://c:4317"
        );
        // Neither: the local collector.
        assert_eq!(
            resolve(None, None, HttpProtobuf),
            "http://localhost:4318/v1/metrics"
        );
        assert_eq!(resolve(None, Some(""), Grpc), "http://localhost:4317");
    }
}
