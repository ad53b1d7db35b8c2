//! Exemplars: a reveal sent with a W3C `traceparent` (REST header or gRPC metadata) leaves its
//! trace id on the latency bucket it landed in, in the OpenMetrics scrape of `/metrics` (asked
//! for with `Accept: application/openmetrics-text`); the default scrape stays the Prometheus
//! text format, without exemplars, with the same samples.

use burnbox_tests::{Backend, TestServer, grpc_reveal_request, rest_share};
use reqwest::StatusCode;

const REST_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const GRPC_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

fn traceparent(trace: &str) -> String {
    format!("00-{trace}-{PARENT_SPAN}-01")
}

/// `/metrics` with `accept` (if any): the content type and the text.
async fn scrape(server: &TestServer, accept: Option<&str>) -> (String, String) {
    let mut request = server.http.get(format!("{}/metrics", server.admin_base));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.expect("metrics");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (content_type, response.text().await.expect("metrics text"))
}

/// The bucket lines of `family` whose labels include every one of `labels`.
fn buckets<'a>(text: &'a str, family: &str, labels: &[&str]) -> Vec<&'a str> {
    let prefix = format!("{family}_bucket{{");
    text.lines()
        .filter(|line| line.starts_with(&prefix))
        .filter(|line| {
            let label_part = line.split('}').next().unwrap_or_default();
            labels.iter().all(|label| label_part.contains(label))
        })
        .collect()
}

/// Whether one of `lines` carries `trace` as its exemplar, with a positive bucket count.
fn has_exemplar(lines: &[&str], trace: &str) -> bool {
    let exemplar = format!(r#" # {{trace_id="{trace}"}} "#);
    lines.iter().any(|line| {
        line.split_once(&exemplar).is_some_and(|(sample, value)| {
            let count = sample
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse::<u64>().ok());
            let observed = value.split(' ').next().and_then(|v| v.parse::<f64>().ok());
            count.is_some_and(|count| count >= 1) && observed.is_some_and(|v| v >= 0.0)
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traced_reveals_leave_their_trace_ids_as_exemplars() {
    let server = TestServer::start(Backend::Memory).await;
    let mut keys = Vec::new();
    for secret in ["for rest", "for grpc"] {
        let (status, body) = rest_share(&server, &[("secret", secret)]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        keys.push(body["secret_key"].as_str().expect("secret_key").to_owned());
    }

    let response = server
        .http
        .post(server.api(&format!("/secret/{}", keys[0])))
        .header("traceparent", traceparent(REST_TRACE))
        .send()
        .await
        .expect("REST reveal");
    assert_eq!(response.status(), StatusCode::OK);
    let mut request = tonic::Request::new(grpc_reveal_request(&keys[1], None));
    request.metadata_mut().insert(
        "traceparent",
        traceparent(GRPC_TRACE).parse().expect("ASCII"),
    );
    server
        .grpc()
        .await
        .reveal_secret(request)
        .await
        .expect("gRPC reveal");

    // The metrics sample is taken before the answer leaves: no waiting needed.
    let (content_type, open) = scrape(&server, Some("application/openmetrics-text")).await;
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(open.ends_with("# EOF\n"), "{open}");
    let family = "burnbox_request_duration_seconds";
    let rest = buckets(
        &open,
        family,
        &[r#"operation="reveal""#, r#"transport="rest""#],
    );
    assert!(
        has_exemplar(&rest, REST_TRACE),
        "no REST exemplar in\n{open}"
    );
    let grpc = buckets(
        &open,
        family,
        &[r#"operation="reveal""#, r#"transport="grpc""#],
    );
    assert!(
        has_exemplar(&grpc, GRPC_TRACE),
        "no gRPC exemplar in\n{open}"
    );
    // Each trace is on its own request's series only.
    assert!(!has_exemplar(&rest, GRPC_TRACE) && !has_exemplar(&grpc, REST_TRACE));
    // The store operations the reveals made point at their traces (a bucket keeps the latest:
    // the gRPC reveal's, unless the two landed in different buckets).
    let taken = buckets(
        &open,
        "burnbox_store_operation_duration_seconds",
        &[r#"operation="take_unprotected""#],
    );
    assert!(has_exemplar(&taken, GRPC_TRACE), "{open}");

    let (content_type, plain) = scrape(&server, None).await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    for absent in ["#{", "# {", "# EOF", "# UNIT", REST_TRACE, GRPC_TRACE] {
        assert!(!plain.contains(absent), "{absent} in\n{plain}");
    }
    // The same samples in both formats.
    for line in [
        r#"burnbox_requests_total{operation="reveal",outcome="ok",transport="rest"} 1"#,
        r#"burnbox_requests_total{operation="reveal",outcome="ok",transport="grpc"} 1"#,
        r#"burnbox_request_duration_seconds_count{operation="reveal",transport="rest"} 1"#,
        r#"burnbox_request_duration_seconds_count{operation="reveal",transport="grpc"} 1"#,
        r#"burnbox_secrets_total{event="revealed"} 2"#,
    ] {
        assert!(
            plain.lines().any(|got| got == line),
            "no {line} in\n{plain}"
        );
        assert!(open.lines().any(|got| got == line), "no {line} in\n{open}");
    }
    let plain_rest = buckets(
        &plain,
        family,
        &[r#"operation="reveal""#, r#"transport="rest""#],
    );
    assert_eq!(plain_rest.len(), rest.len(), "{plain}\n{open}");

    // Accept is negotiated: `*/*` and a preferred text/plain get the Prometheus format.
    for accept in [
        "*/*",
        "text/plain;q=0.9, application/openmetrics-text;q=0.5",
        "application/openmetrics-text;q=0",
    ] {
        let (content_type, text) = scrape(&server, Some(accept)).await;
        assert!(
            content_type.starts_with("text/plain"),
            "{accept}: {content_type}"
        );
        assert!(!text.contains("# EOF"), "{accept}");
    }
    let prometheus_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (content_type, _) = scrape(&server, Some(prometheus_accept)).await;
    assert!(content_type.starts_with("application/openmetrics-text"));
}
