//! Traces: an in-test OTLP collector (gRPC) receives the spans of REST and gRPC reveals sent
//! with a W3C `traceparent`, and they join the caller's trace with the semantic-convention
//! attributes; `error_id` is the trace id; no attribute holds a secret value or key.
//! (Its own test binary: telemetry is process-wide.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use burnbox_core::ErrorKind;
use burnbox_server::telemetry::{self, OtlpProtocol, SamplerKind, TelemetryConfig};
use burnbox_spec::v1 as pb;
use burnbox_tests::{Backend, TestServer, assert_rest_error, eventually, json_of, rest_share};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans);
        self.0.lock().expect("collector lock").extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Collector {
    fn spans(&self) -> Vec<Span> {
        self.0.lock().expect("collector lock").clone()
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(text) => Some(text.clone()),
            AnyValue::IntValue(number) => Some(number.to_string()),
            AnyValue::BoolValue(flag) => Some(flag.to_string()),
            AnyValue::DoubleValue(number) => Some(number.to_string()),
            AnyValue::ArrayValue(_)
            | AnyValue::KvlistValue(_)
            | AnyValue::BytesValue(_)
            | AnyValue::StringValueStrindex(_) => None,
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

const REST_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const GRPC_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const ERROR_TRACE: &str = "1c1d1e1f202122232425262728292a2b";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_join_the_callers_trace_with_semantic_attributes() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind collector");
    let collector_addr = listener.local_addr().expect("collector address");
    let service = TraceServiceServer::new(collector.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .expect("collector runs");
    });
    let telemetry = telemetry::init(&TelemetryConfig {
        log_filter: "warn".into(),
        json_logs: false,
        log_flush_interval: std::time::Duration::from_millis(5),
        otlp_endpoint: Some(format!("http://{collector_addr}")),
        otlp_protocol: OtlpProtocol::Grpc,
        service_name: "burnbox-test".into(),
        sampler: SamplerKind::ParentBasedAlwaysOn,
        sampler_ratio: 1.0,
        metrics: None,
    })
    .expect("telemetry starts");

    let server = TestServer::start(Backend::redis()).await;
    let traceparent = |trace: &str| format!("00-{trace}-{PARENT_SPAN}-01");
    let mut sensitive = Vec::new();

    // REST reveal, inside the caller's trace.
    let (_, shared) = rest_share(&server, &[("secret", "otel-probe-rest-value")]).await;
    let key = shared["secret_key"].as_str().expect("key").to_owned();
    sensitive.extend([
        "otel-probe-rest-value".to_owned(),
        key.clone(),
        shared["metadata_key"].as_str().expect("key").to_owned(),
    ]);
    let response = server
        .http
        .post(server.api(&format!("/secret/{key}")))
        .header("traceparent", traceparent(REST_TRACE))
        .send()
        .await
        .expect("reveal");
    assert_eq!(response.status(), reqwest::StatusCode::OK);

    // gRPC reveal, inside another trace.
    let mut client = server.grpc().await;
    let shared = client
        .share_secret(pb::ShareSecretRequest {
            secret: "otel-probe-grpc-value".into(),
            ..Default::default()
        })
        .await
        .expect("share")
        .into_inner();
    let grpc_key = shared.secret_key.expect("key");
    sensitive.extend([
        "otel-probe-grpc-value".to_owned(),
        grpc_key.clone(),
        shared.metadata_key,
    ]);
    let mut request = tonic::Request::new(pb::RevealSecretRequest {
        key: grpc_key.clone(),
        passphrase: None,
    });
    request.metadata_mut().insert(
        "traceparent",
        traceparent(GRPC_TRACE).parse().expect("ASCII"),
    );
    client.reveal_secret(request).await.expect("reveal");

    // Errors carry the trace id as error_id, on both transports.
    let answer = json_of(
        server
            .http
            .post(server.api(&format!("/secret/{key}")))
            .header("traceparent", traceparent(ERROR_TRACE))
            .send()
            .await
            .expect("reveal again"),
    )
    .await;
    assert_rest_error(&answer, ErrorKind::NotFound, None);
    assert_eq!(answer.1["error_id"], ERROR_TRACE);
    let mut request = tonic::Request::new(pb::RevealSecretRequest {
        key: grpc_key,
        passphrase: None,
    });
    request.metadata_mut().insert(
        "traceparent",
        traceparent(ERROR_TRACE).parse().expect("ASCII"),
    );
    let status = client.reveal_secret(request).await.expect_err("gone");
    use tonic_types::StatusExt;
    let error_id = status
        .get_error_details()
        .error_info()
        .and_then(|info| info.metadata.get("error_id").cloned());
    assert_eq!(error_id.as_deref(), Some(ERROR_TRACE));

    server.shutdown().await;
    // Every span has ended; wait until the collector has the server spans of all the requests
    // above (a server span ends after its children, so they are exported no later).
    let spans = eventually(
        Duration::from_secs(30),
        "the spans reaching the collector",
        || async {
            telemetry.flush();
            let spans = collector.spans();
            let server_spans = |trace: &str| {
                spans
                    .iter()
                    .filter(|span| {
                        hex(&span.trace_id) == trace && span.kind == SpanKind::Server as i32
                    })
                    .count()
            };
            let complete = server_spans(REST_TRACE) == 1
                && server_spans(GRPC_TRACE) == 1
                && server_spans(ERROR_TRACE) == 2;
            complete.then_some(spans)
        },
    )
    .await;

    let rest = spans
        .iter()
        .find(|span| hex(&span.trace_id) == REST_TRACE && span.kind == SpanKind::Server as i32)
        .expect("the REST server span");
    assert_eq!(hex(&rest.parent_span_id), PARENT_SPAN);
    assert_eq!(rest.name, "POST /api/v1/secret/{key}");
    assert_eq!(
        attribute(rest, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        attribute(rest, "http.route").as_deref(),
        Some("/api/v1/secret/{key}")
    );
    assert_eq!(
        attribute(rest, "http.response.status_code").as_deref(),
        Some("200")
    );
    // The operation's one name, the same on both transports.
    assert_eq!(
        attribute(rest, "burnbox.operation").as_deref(),
        Some("reveal")
    );
    let core = spans
        .iter()
        .find(|span| span.name == "secrets.reveal" && hex(&span.trace_id) == REST_TRACE)
        .expect("the core span");
    assert_eq!(core.parent_span_id, rest.span_id);
    let redis = spans
        .iter()
        .find(|span| {
            hex(&span.trace_id) == REST_TRACE
                && attribute(span, "db.system").as_deref() == Some("redis")
        })
        .expect("a Redis span");
    assert_eq!(redis.kind, SpanKind::Client as i32);
    assert_eq!(redis.parent_span_id, core.span_id);
    assert_eq!(
        attribute(redis, "db.operation.name").as_deref(),
        Some("EVALSHA")
    );

    let grpc = spans
        .iter()
        .find(|span| hex(&span.trace_id) == GRPC_TRACE && span.kind == SpanKind::Server as i32)
        .expect("the gRPC server span");
    assert_eq!(hex(&grpc.parent_span_id), PARENT_SPAN);
    assert_eq!(grpc.name, "burnbox.v1.Secrets/RevealSecret");
    assert_eq!(attribute(grpc, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(
        attribute(grpc, "rpc.service").as_deref(),
        Some("burnbox.v1.Secrets")
    );
    assert_eq!(
        attribute(grpc, "rpc.method").as_deref(),
        Some("RevealSecret")
    );
    assert_eq!(
        attribute(grpc, "rpc.grpc.status_code").as_deref(),
        Some("0")
    );
    assert_eq!(
        attribute(grpc, "burnbox.operation").as_deref(),
        Some("reveal")
    );

    let failed = spans
        .iter()
        .filter(|span| hex(&span.trace_id) == ERROR_TRACE && span.kind == SpanKind::Server as i32)
        .count();
    assert_eq!(
        failed, 2,
        "one server span per transport for the failed reveals"
    );

    for span in &spans {
        for kv in &span.attributes {
            let value = format!("{:?}", kv.value);
            for needle in &sensitive {
                assert!(
                    !value.contains(needle.as_str()),
                    "span {} attribute {} holds {needle}",
                    span.name,
                    kv.key
                );
            }
        }
        for needle in &sensitive {
            assert!(
                !span.name.contains(needle.as_str()),
                "span name {} holds {needle}",
                span.name
            );
        }
    }
    telemetry.shutdown();
}
