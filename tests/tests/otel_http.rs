//! Traces over OTLP/HTTP (protobuf): an in-test collector on `/v1/traces` receives the spans of a
//! REST reveal sent with a `traceparent`, proving the HTTP exporter works under the batch
//! processor. (Its own test binary: telemetry is process-wide.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use burnbox_server::telemetry::{self, OtlpProtocol, SamplerKind, TelemetryConfig};
use burnbox_tests::{Backend, TestServer, eventually, rest_share};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use poem::web::Data;
use poem::{EndpointExt, Route, handler, post};
use prost::Message;

type Received = Arc<Mutex<Vec<Span>>>;

#[handler]
fn traces(body: Vec<u8>, received: Data<&Received>) -> poem::http::StatusCode {
    let Ok(request) = ExportTraceServiceRequest::decode(body.as_slice()) else {
        return poem::http::StatusCode::BAD_REQUEST;
    };
    let spans = request
        .resource_spans
        .into_iter()
        .flat_map(|resource| resource.scope_spans)
        .flat_map(|scope| scope.spans);
    received.lock().expect("collector lock").extend(spans);
    poem::http::StatusCode::OK
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_http_collector() {
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind collector");
    let collector_addr = listener.local_addr().expect("collector address");
    let app = Route::new()
        .at("/v1/traces", post(traces))
        .data(received.clone());
    let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).expect("acceptor");
    tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
    });
    let telemetry = telemetry::init(&TelemetryConfig {
        log_filter: "warn".into(),
        json_logs: false,
        log_flush_interval: std::time::Duration::from_millis(5),
        otlp_endpoint: Some(format!("http://{collector_addr}")),
        otlp_protocol: OtlpProtocol::HttpProtobuf,
        service_name: "burnbox-test".into(),
        sampler: SamplerKind::ParentBasedAlwaysOn,
        sampler_ratio: 1.0,
        metrics: None,
    })
    .expect("telemetry starts");

    let server = TestServer::start(Backend::Memory).await;
    let (_, shared) = rest_share(&server, &[("secret", "over http")]).await;
    let key = shared["secret_key"].as_str().expect("key");
    let trace_id = "3f1b6c9e2a4d48f0b5c7e9a1d3f5b7c9";
    let response = server
        .http
        .post(server.api(&format!("/secret/{key}")))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .expect("reveal");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    server.shutdown().await;

    // The server span ends after its children, so they are exported no later.
    let is_server_span =
        |span: &Span| hex(&span.trace_id) == trace_id && span.name == "POST /api/v1/secret/{key}";
    let spans = eventually(
        Duration::from_secs(30),
        "the spans reaching the HTTP collector",
        || async {
            telemetry.flush();
            let spans = received.lock().expect("collector lock").clone();
            spans.iter().any(is_server_span).then_some(spans)
        },
    )
    .await;
    let server_span = spans
        .iter()
        .find(|span| is_server_span(span))
        .expect("the server span");
    assert!(
        spans
            .iter()
            .any(|span| span.name == "secrets.reveal" && span.parent_span_id == server_span.span_id),
        "no core span under the server span: {spans:?}"
    );
    telemetry.shutdown();
}
