//! Logs and traces. Logs go to stdout (text or JSON), filtered by `BURNBOX_LOG`. Traces go to
//! OpenTelemetry: every request gets a server span that joins the caller's trace (W3C
//! `traceparent`/`tracestate` from HTTP headers or gRPC metadata), and are exported over OTLP
//! (gRPC or HTTP/protobuf) when an endpoint is configured. Trace ids exist even without export:
//! they are the `error_id` of every error and appear in every log line of a request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

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
}

/// The running telemetry; flush it before the process exits.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Exports every finished span now.
    pub fn flush(&self) {
        if let Err(err) = self.provider.force_flush() {
            tracing::warn!(%err, "flushing spans failed");
        }
    }

    /// Flushes and stops the exporter.
    pub fn shutdown(self) {
        if let Err(err) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            eprintln!("burnbox: flushing spans at shutdown failed: {err}");
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

/// Installs logging and tracing for the process. Fails only on an unusable OTLP endpoint.
/// Calling it again (as test binaries may) keeps the first subscriber.
pub fn init(config: &TelemetryConfig) -> Result<Telemetry, String> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let mut provider = SdkTracerProvider::builder()
        .with_sampler(sampler(config))
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        );
    if let Some(endpoint) = &config.otlp_endpoint {
        provider = provider.with_batch_exporter(exporter(endpoint, config.otlp_protocol)?);
    }
    let provider = provider.build();
    let tracer = provider.tracer("burnbox");

    let log_filter =
        EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for people: log collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let logs = if config.json_logs {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_filter(log_filter)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_filter(log_filter)
            .boxed()
    };
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
    if tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .is_ok()
    {
        EXPORTING.store(config.otlp_endpoint.is_some(), Ordering::Relaxed);
    }
    Ok(Telemetry { provider })
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

/// The trace a request belongs to: the caller's (W3C `traceparent` in `headers`), else a new
/// one. When spans are exported, `span` becomes a child of the caller's span. The trace id is
/// recorded in the span's `trace_id` field, so every log line of the request carries it.
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
        caller.is_valid().then(|| caller.trace_id().to_string())
    };
    let trace_id = trace_id.unwrap_or_else(|| {
        let bytes: [u8; 16] = rand::random();
        opentelemetry::trace::TraceId::from_bytes(bytes).to_string()
    });
    span.record("trace_id", trace_id.as_str());
    trace_id
}

/// The trace id of `span` as exported to OpenTelemetry, if it has one.
pub fn trace_id_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// Whether spans go to OpenTelemetry (an exporter is configured).
pub fn is_exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}
