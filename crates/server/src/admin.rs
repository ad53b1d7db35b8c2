//! The admin listener: liveness and readiness for Kubernetes probes.

use std::sync::Arc;

use burnbox_core::Secrets;
use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Response, Route, get, handler};
use serde_json::json;

/// Live while the process serves requests at all.
#[handler]
fn livez() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready while the store answers; 503 otherwise, so traffic goes to healthy replicas.
#[handler]
async fn readyz(secrets: Data<&Arc<Secrets>>) -> Response {
    match secrets.ready().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(err) => {
            tracing::warn!(detail = err.detail(), "not ready: store unavailable");
            Json(json!({ "status": "not ready", "reason": err.message() }))
                .with_status(StatusCode::SERVICE_UNAVAILABLE)
                .into_response()
        }
    }
}

/// The admin routes.
pub fn endpoint(secrets: Arc<Secrets>) -> impl poem::Endpoint {
    Route::new()
        .at("/livez", get(livez))
        .at("/readyz", get(readyz))
        .data(secrets)
}
