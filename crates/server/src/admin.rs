//! The admin listener: liveness and readiness for Kubernetes probes, and Prometheus metrics.
//! It has its own small connection budget (`listener::ADMIN_MAX_CONNECTIONS`), so it answers
//! while the public listeners are full.

use std::sync::Arc;

use burnbox_core::Secrets;
use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Response, Route, get, handler};
use serde_json::json;

use crate::metrics::Metrics;

/// Live while the process serves requests at all.
#[handler]
fn livez() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready while the store answers; 503 otherwise, so traffic goes to healthy replicas.
#[handler]
async fn readyz(secrets: Data<&Arc<Secrets>>, registry: Data<&Arc<Metrics>>) -> Response {
    let ready = secrets.ready().await;
    // Exported as `burnbox_ready`, so alerts see flapping between scrapes of /readyz.
    registry.ready(ready.is_ok());
    match ready {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(err) => {
            tracing::warn!(detail = err.detail(), "not ready: store unavailable");
            Json(json!({ "status": "not ready", "reason": err.message() }))
                .with_status(StatusCode::SERVICE_UNAVAILABLE)
                .into_response()
        }
    }
}

/// Every metric: in OpenMetrics (with trace exemplars) when the scraper's `Accept` prefers it,
/// else in the Prometheus text format.
#[handler]
fn metrics(request: &poem::Request, metrics: Data<&Arc<Metrics>>) -> Response {
    let accept = request
        .headers()
        .get(poem::http::header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let (content_type, body) = if crate::metrics::prefers_openmetrics(accept) {
        (
            crate::metrics::OPENMETRICS_TEXT,
            metrics.render_openmetrics(),
        )
    } else {
        (crate::metrics::PROMETHEUS_TEXT, metrics.render())
    };
    Response::builder()
        .content_type(content_type)
        .header(poem::http::header::VARY, "accept")
        .body(body)
}

/// The admin routes, answering errors (an unknown path, a wrong method) in the documented error
/// body and with the same security headers as the REST API.
pub fn endpoint(
    secrets: Arc<Secrets>,
    metrics_registry: Arc<Metrics>,
) -> impl poem::Endpoint<Output = Response> {
    crate::rest::documented(
        Route::new()
            .at("/livez", get(livez))
            .at("/readyz", get(readyz))
            .at("/metrics", get(metrics))
            .data(secrets)
            .data(metrics_registry),
    )
}
