//! One server span and one metrics sample per request, on both transports. The span follows
//! OpenTelemetry's semantic conventions (REST: `http.request.method`, `http.route` as the route
//! template, never the concrete key, `http.response.status_code`; gRPC: `rpc.system`,
//! `rpc.service`, `rpc.method`, `rpc.grpc.status_code`), joins the caller's trace, and is the
//! parent of the core operation and Redis spans beneath it. Metrics and spans name the operation
//! by its one name from [`crate::operations`] (`burnbox.operation`), whatever the transport.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use opentelemetry::trace::TraceContextExt;
use poem::PathPattern;
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::OperationId;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::Metrics;
use crate::operations::{GRPC_SERVICE, Operation};
use crate::request_scope;
use crate::telemetry;

/// The trace id of the request being served, if there is one: its exported span's when spans
/// go to OpenTelemetry, else the one kept in the request scope.
pub fn current_trace_id() -> Option<String> {
    if telemetry::is_exporting() {
        telemetry::trace_id_of(&tracing::Span::current())
    } else {
        request_scope::trace_id()
    }
}

/// The label and span name of a request that matched no operation: whatever path or method a
/// caller invents, it lands in this one series, so no caller can grow `/metrics` or memory.
pub const UNKNOWN_OPERATION: &str = "unknown";

/// The gRPC methods served beside the operations (health and reflection), as (service, method).
/// They are labelled by method name.
const INFRASTRUCTURE_GRPC_METHODS: &[(&str, &str)] = &[
    ("grpc.health.v1.Health", "Check"),
    ("grpc.health.v1.Health", "Watch"),
    (
        "grpc.reflection.v1.ServerReflection",
        "ServerReflectionInfo",
    ),
    (
        "grpc.reflection.v1alpha.ServerReflection",
        "ServerReflectionInfo",
    ),
];

/// A gRPC request path this server serves, as span attributes and metrics label take it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrpcMethod {
    /// `rpc.service`.
    pub service: &'static str,
    /// `rpc.method`.
    pub method: &'static str,
    /// The `operation` label: the operation's one name, or the method's for health and
    /// reflection.
    pub label: &'static str,
}

/// The served method `service`/`method` names, or `None` for any other. Metrics labels and span
/// attributes take their values only from here (or [`UNKNOWN_OPERATION`]), never from the path
/// a caller sent.
pub fn served_grpc_method(service: &str, method: &str) -> Option<GrpcMethod> {
    if service == GRPC_SERVICE {
        let operation = Operation::of_grpc_method(method)?;
        let row = operation.row();
        return Some(GrpcMethod {
            service: GRPC_SERVICE,
            method: row.grpc_method?,
            label: row.name,
        });
    }
    INFRASTRUCTURE_GRPC_METHODS
        .iter()
        .find(|&&(known_service, known_method)| known_service == service && known_method == method)
        .map(|&(service, method)| GrpcMethod {
            service,
            method,
            label: method,
        })
}

/// The served method a gRPC request path (`/service/method`) names, or `None` for any other.
fn known_grpc_method(path: &str) -> Option<GrpcMethod> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    served_grpc_method(service, method)
}

/// Marks a response as a web page's, and names the operation it performed (or the page, for
/// pages that perform none): the middleware counts it under `transport="page"`.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest(pub &'static str);

/// The request method as OpenTelemetry's HTTP conventions name it: one of the standard
/// methods, or `_OTHER` for any method a caller invents.
fn semconv_method(method: &poem::http::Method) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    STANDARD
        .into_iter()
        .find(|name| *name == method.as_str())
        .unwrap_or("_OTHER")
}

/// The REST middleware: wraps the whole REST endpoint.
pub struct ObserveRest<E> {
    inner: E,
    metrics: Arc<Metrics>,
    path_parameters: HashMap<&'static str, Vec<String>>,
}

impl<E> ObserveRest<E> {
    /// Observes `inner` into `metrics`; `path_parameters` names each operation's parameters.
    pub fn new(
        inner: E,
        metrics: Arc<Metrics>,
        path_parameters: HashMap<&'static str, Vec<String>>,
    ) -> Self {
        Self {
            inner,
            metrics,
            path_parameters,
        }
    }
}

/// poem's route pattern, whose parameters poem-openapi numbers (`/api/v1/secret/:param0`), as an
/// OpenTelemetry route template with the parameters' names (`/api/v1/secret/{key}`).
fn route_template(pattern: &str, names: &[String]) -> String {
    pattern
        .split('/')
        .map(|segment| match segment.strip_prefix(':') {
            Some(param) => {
                let name = param
                    .strip_prefix("param")
                    .and_then(|index| names.get(index.parse::<usize>().ok()?))
                    .map_or(param, String::as_str);
                format!("{{{name}}}")
            }
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl<E: Endpoint> Endpoint for ObserveRest<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        let method = semconv_method(request.method());
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = %method,
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = %method,
            http.route = Empty,
            http.response.status_code = Empty,
            url.scheme = "http",
            burnbox.operation = Empty,
            trace_id = Empty,
        );
        let trace_id = telemetry::join_or_start_trace(&span, request.headers());
        // The latency sample's exemplar: the scope keeps its own copy.
        let exemplar_trace = trace_id.clone();
        let started = Instant::now();
        let (result, error_type) =
            request_scope::run(trace_id, self.inner.call(request).instrument(span.clone())).await;
        let response = result.map_or_else(poem::Error::into_response, IntoResponse::into_response);

        let status = response.status();
        span.record("http.response.status_code", status.as_u16());
        let (transport, operation, parameter_names) = match response.data::<PageRequest>() {
            Some(&PageRequest(page)) => ("page", page, &[][..]),
            None => {
                let id = response.data::<OperationId>().map(|id| id.0);
                let operation = id
                    .and_then(Operation::named)
                    .map_or(UNKNOWN_OPERATION, Operation::name);
                let names = id
                    .and_then(|id| self.path_parameters.get(id))
                    .map_or(&[][..], Vec::as_slice);
                ("rest", operation, names)
            }
        };
        span.record("burnbox.operation", operation);
        // The route only names the span: skip building it when nothing records the span.
        if let Some(PathPattern(pattern)) = response
            .data::<PathPattern>()
            .filter(|_| !span.is_disabled())
        {
            let names = parameter_names;
            let route = route_template(pattern, names);
            // The span started before routing knew the route: rename it now.
            span.context()
                .span()
                .update_name(format!("{method} {route}"));
            span.record("http.route", route);
        }
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
        let outcome = error_type.unwrap_or(if status.is_success() { "ok" } else { "error" });
        self.metrics.request(
            transport,
            operation,
            outcome,
            started.elapsed(),
            Some(&exemplar_trace),
        );
        Ok(response)
    }
}

/// The gRPC layer (for `tonic::transport::Server::layer`).
#[derive(Clone)]
pub struct ObserveGrpcLayer {
    metrics: Arc<Metrics>,
}

impl ObserveGrpcLayer {
    /// Observes every gRPC service into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for ObserveGrpcLayer {
    type Service = ObserveGrpc<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ObserveGrpc {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The gRPC middleware service.
#[derive(Clone)]
pub struct ObserveGrpc<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

/// gRPC codes that make a server span an error (OpenTelemetry's rule for servers).
fn is_server_error(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unknown
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Unimplemented
            | tonic::Code::Internal
            | tonic::Code::Unavailable
            | tonic::Code::DataLoss
    )
}

impl<S, RequestBody, ResponseBody> tower::Service<http::Request<RequestBody>> for ObserveGrpc<S>
where
    S: tower::Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    RequestBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        // The clone that was polled ready serves this request; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let metrics = self.metrics.clone();
        let GrpcMethod {
            service,
            method,
            label,
        } = known_grpc_method(request.uri().path()).unwrap_or(GrpcMethod {
            service: UNKNOWN_OPERATION,
            method: UNKNOWN_OPERATION,
            label: UNKNOWN_OPERATION,
        });
        let span = tracing::info_span!(
            "gRPC request",
            otel.name = format_args!("{service}/{method}"),
            otel.kind = "server",
            otel.status_code = Empty,
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.grpc.status_code = Empty,
            burnbox.operation = label,
            trace_id = Empty,
        );
        let trace_id = telemetry::join_or_start_trace(&span, request.headers());
        Box::pin(async move {
            let started = Instant::now();
            let exemplar_trace = trace_id.clone();
            let (result, error_type) =
                request_scope::run(trace_id, inner.call(request).instrument(span.clone())).await;
            if let Ok(response) = &result {
                // Errors travel "trailers-only", in the headers; a success has no status there.
                let code = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok()?.parse::<i32>().ok())
                    .map_or(tonic::Code::Ok, tonic::Code::from_i32);
                span.record("rpc.grpc.status_code", code as i32);
                if is_server_error(code) {
                    span.record("otel.status_code", "ERROR");
                }
                let outcome = match (error_type, code) {
                    (Some(error_type), _) => error_type,
                    (None, tonic::Code::Ok) => "ok",
                    (None, _) => "error",
                };
                metrics.request(
                    "grpc",
                    label,
                    outcome,
                    started.elapsed(),
                    Some(&exemplar_trace),
                );
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_templates_name_their_parameters() {
        let key = ["key".to_owned()];
        assert_eq!(
            route_template("/api/v1/secret/:param0", &key),
            "/api/v1/secret/{key}"
        );
        let metadata_key = ["metadata_key".to_owned()];
        assert_eq!(
            route_template("/api/v1/private/:param0/burn", &metadata_key),
            "/api/v1/private/{metadata_key}/burn"
        );
        assert_eq!(route_template("/api/v1/status", &[]), "/api/v1/status");
        assert_eq!(route_template("/x/:param3", &[]), "/x/{param3}");
    }

    #[test]
    fn only_served_grpc_methods_have_names_of_their_own() {
        assert_eq!(
            known_grpc_method("/burnbox.v1.Secrets/RevealSecret"),
            Some(GrpcMethod {
                service: "burnbox.v1.Secrets",
                method: "RevealSecret",
                label: "reveal",
            })
        );
        assert_eq!(
            known_grpc_method("/grpc.health.v1.Health/Check").map(|known| known.label),
            Some("Check")
        );
        for invented in [
            "/burnbox.v1.Secrets/Nope",
            "/x/RevealSecret",
            "burnbox.v1.Secrets/RevealSecret",
            "/burnbox.v1.Secrets/RevealSecret/extra",
            "/",
            "",
        ] {
            assert_eq!(known_grpc_method(invented), None, "{invented}");
        }
    }
}
