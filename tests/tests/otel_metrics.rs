//! OTLP metrics: with `OTEL_METRICS_EXPORTER=otlp` an in-test OTLP collector (gRPC) receives the
//! metrics of `/metrics` under the same names and attributes, pushed every export interval, and
//! what was measured since the last push arrives at shutdown. (Its own test binary: telemetry
//! is process-wide.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use burnbox_server::Config;
use burnbox_server::telemetry::{self, MetricsExporter, OtlpProtocol};
use burnbox_tests::{Backend, TestServer, eventually, grpc_reveal_request, rest_share};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;

/// One exported data point: its metric's name, its attributes, and its value (a number's, or a
/// histogram's count) with the histogram's bounds.
#[derive(Clone, Debug)]
struct Point {
    metric: String,
    attributes: BTreeMap<String, String>,
    value: f64,
    bounds: Vec<f64>,
}

/// Every point received, in arrival order (cumulative: the latest of a series is its value).
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Point>>>);

fn attributes(pairs: &[KeyValue]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(text) => Some((kv.key.clone(), text.clone())),
            AnyValue::BoolValue(_)
            | AnyValue::IntValue(_)
            | AnyValue::DoubleValue(_)
            | AnyValue::ArrayValue(_)
            | AnyValue::KvlistValue(_)
            | AnyValue::BytesValue(_)
            | AnyValue::StringValueStrindex(_) => None,
        })
        .collect()
}

fn number(value: Option<Number>) -> f64 {
    match value {
        // Counts in a test are far below 2^53.
        #[allow(clippy::cast_precision_loss)]
        Some(Number::AsInt(int)) => int as f64,
        Some(Number::AsDouble(double)) => double,
        None => f64::NAN,
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let mut points = Vec::new();
        let metrics = request
            .into_inner()
            .resource_metrics
            .into_iter()
            .flat_map(|resource| resource.scope_metrics)
            .flat_map(|scope| scope.metrics);
        for metric in metrics {
            let point = |attributes, value, bounds| Point {
                metric: metric.name.clone(),
                attributes,
                value,
                bounds,
            };
            match metric.data {
                Some(Data::Sum(sum)) => points.extend(
                    sum.data_points
                        .into_iter()
                        .map(|p| point(attributes(&p.attributes), number(p.value), Vec::new())),
                ),
                Some(Data::Gauge(gauge)) => points.extend(
                    gauge
                        .data_points
                        .into_iter()
                        .map(|p| point(attributes(&p.attributes), number(p.value), Vec::new())),
                ),
                #[allow(clippy::cast_precision_loss)]
                Some(Data::Histogram(histogram)) => {
                    points.extend(histogram.data_points.into_iter().map(|p| {
                        point(attributes(&p.attributes), p.count as f64, p.explicit_bounds)
                    }));
                }
                Some(Data::ExponentialHistogram(_) | Data::Summary(_)) | None => {}
            }
        }
        self.0.lock().expect("collector lock").extend(points);
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

impl Collector {
    /// The latest point of `metric` with exactly `labels`, if one arrived.
    fn latest(&self, metric: &str, labels: &[(&str, &str)]) -> Option<Point> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        self.0
            .lock()
            .expect("collector lock")
            .iter()
            .rev()
            .find(|point| point.metric == metric && point.attributes == wanted)
            .cloned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_reach_an_otlp_collector_with_their_prometheus_names() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind collector");
    let collector_addr = listener.local_addr().expect("collector address");
    let service = MetricsServiceServer::new(collector.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .expect("collector runs");
    });
    // The settings as the environment gives them: metrics alone go to the collector, over gRPC
    // (traces keep their default, off), every 300 ms.
    let mut settings = Config::for_tests();
    settings.log = "warn".into();
    settings.otel_metrics_exporter = MetricsExporter::Otlp;
    settings.otel_exporter_otlp_metrics_endpoint = Some(format!("http://{collector_addr}"));
    settings.otel_exporter_otlp_metrics_protocol = Some(OtlpProtocol::Grpc);
    settings.otel_metric_export_interval = 300;
    let telemetry = telemetry::init(&settings.telemetry()).expect("telemetry starts");

    let server = TestServer::start(Backend::Memory).await;
    let mut keys = Vec::new();
    for secret in ["one", "two", "three"] {
        let (_, shared) = rest_share(&server, &[("secret", secret)]).await;
        keys.push(shared["secret_key"].as_str().expect("key").to_owned());
    }
    let revealed = server
        .http
        .post(server.api(&format!("/secret/{}", keys[0])))
        .send()
        .await
        .expect("reveal");
    assert_eq!(revealed.status(), reqwest::StatusCode::OK);
    server
        .grpc()
        .await
        .reveal_secret(grpc_reveal_request(&keys[1], None))
        .await
        .expect("gRPC reveal");
    assert_eq!(server.readiness().await, reqwest::StatusCode::OK);

    let rest_reveals = [
        ("operation", "reveal"),
        ("outcome", "ok"),
        ("transport", "rest"),
    ];
    eventually(
        Duration::from_secs(20),
        "burnbox_requests_total at the collector",
        || async {
            collector
                .latest("burnbox_requests_total", &rest_reveals)
                .filter(|point| point.value >= 1.0)
        },
    )
    .await;
    let grpc_reveals = [
        ("operation", "reveal"),
        ("outcome", "ok"),
        ("transport", "grpc"),
    ];
    let latency = [("operation", "reveal"), ("transport", "grpc")];
    let (grpc, histogram, ready, budget) = eventually(
        Duration::from_secs(20),
        "the other metrics at the collector",
        || async {
            Some((
                collector.latest("burnbox_requests_total", &grpc_reveals)?,
                collector.latest("burnbox_request_duration_seconds", &latency)?,
                collector.latest("burnbox_ready", &[])?,
                collector.latest("burnbox_memory_store_budget_bytes", &[])?,
            ))
        },
    )
    .await;
    assert_eq!(grpc.value, 1.0);
    assert_eq!(histogram.value, 1.0);
    // The buckets of /metrics.
    assert_eq!(histogram.bounds.first(), Some(&0.0005));
    assert_eq!(histogram.bounds.last(), Some(&10.0));
    assert_eq!(histogram.bounds.len(), 14);
    assert_eq!(ready.value, 1.0);
    assert_eq!(budget.value, 256.0 * 1024.0 * 1024.0);
    let shared = collector
        .latest("burnbox_secrets_total", &[("event", "shared")])
        .expect("secrets shared");
    assert_eq!(shared.value, 3.0);

    // Measured just before shutdown: pushed by the shutdown, not left behind.
    let (status, _) = rest_share(&server, &[("secret", "four")]).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    server.shutdown().await;
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .expect("telemetry shuts down");
    let shared = collector
        .latest("burnbox_secrets_total", &[("event", "shared")])
        .expect("secrets shared");
    assert_eq!(shared.value, 4.0);
}
