//! REST rendering of errors: the documented body `{"error","message","field"?,"error_id"}` with
//! the status from the wire-error table, for handler errors and the framework's own alike.

use burnbox_core::{Error, ErrorKind};
use poem::error::ReadBodyError;
use poem::http::{StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Object};

use crate::wire_error::{new_error_id, report_error, wire_error};

/// The body of every REST error.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// The error type: BadRequest, Unauthorized, Forbidden, NotFound, FormError, RateLimited,
    /// Unavailable, InternalError.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
    /// The request field at fault, for FormError.
    #[oai(skip_serializing_if_is_none)]
    pub field: Option<String>,
    /// On a NotFound from an operation on one key (reveal, look-up, receipt, burn): the key
    /// asked for, as Onetime Secret sends it beside `Unknown secret`.
    #[oai(skip_serializing_if_is_none)]
    pub secret_key: Option<String>,
    /// Quote this when reporting a problem: it finds the request in the server's logs.
    pub error_id: String,
}

/// A handler error on its way to the wire.
#[derive(Debug)]
pub struct ApiError {
    error: Error,
    /// The key the request named, echoed on a NotFound (never logged).
    secret_key: Option<String>,
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        Self {
            error,
            secret_key: None,
        }
    }
}

impl ApiError {
    /// `error` from an operation on `key`: a NotFound answer names the key, as Onetime Secret's
    /// does (`{"message":"Unknown secret","secret_key":…}`).
    pub fn about_key(error: Error, key: &str) -> Self {
        let secret_key = (error.kind() == ErrorKind::NotFound).then(|| key.to_owned());
        Self { error, secret_key }
    }
}

/// The status and body of `err` on the wire; reports it (log line, metrics) on the way.
pub(crate) fn error_body(err: &Error) -> (StatusCode, ErrorBody) {
    let error_id = new_error_id();
    report_error("http", err, &error_id);
    let wire = wire_error(err.kind());
    let body = ErrorBody {
        error: wire.error.to_owned(),
        message: err.message().to_owned(),
        field: err.field().map(str::to_owned),
        secret_key: None,
        error_id,
    };
    (wire.http, body)
}

/// The status and JSON text of `err`'s body, for answers written beneath poem (the connection
/// layer's answer to a request hyper could not parse).
pub fn error_json(err: &Error) -> (StatusCode, String) {
    let (status, body) = error_body(err);
    (status, body.to_json_string())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let err = self.error;
        let (status, mut body) = error_body(&err);
        body.secret_key = self.secret_key;
        let mut response = Json(body).with_status(status).into_response();
        if err.kind() == ErrorKind::Unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                poem::http::HeaderValue::from_static("Basic realm=\"burnbox\""),
            );
        }
        if let Some(retry_after) = err.retry_after() {
            // Whole seconds, rounded up so a client never retries too early.
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<ApiError> for poem::Error {
    fn from(err: ApiError) -> Self {
        poem::Error::from_response(err.into_response())
    }
}

impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        let mut responses: Vec<MetaResponse> = ErrorKind::ALL
            .iter()
            .map(|kind| wire_error(*kind))
            .map(|wire| MetaResponse {
                description: wire.description,
                status: Some(wire.http.as_u16()),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "application/json; charset=utf-8",
                    schema: ErrorBody::schema_ref(),
                }],
                headers: Vec::new(),
            })
            .collect();
        responses.sort_by_key(|response| response.status);
        MetaResponses { responses }
    }

    fn register(registry: &mut Registry) {
        ErrorBody::register(registry);
    }
}

/// Turns an error raised by the framework itself (unknown path, wrong method, unreadable body)
/// into the documented body; errors that already carry our response pass through unchanged.
pub fn render_framework_error(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    if let Some(late) = body_timeout(&err) {
        return ApiError::from(Error::bad_request(late.to_string())).into_response();
    }
    let mapped = match err.status() {
        // Onetime Secret's words for a path it does not serve.
        StatusCode::NOT_FOUND => Error::new(ErrorKind::NotFound, "Not Found"),
        StatusCode::METHOD_NOT_ALLOWED => {
            Error::bad_request("this endpoint does not accept that HTTP method")
        }
        StatusCode::INTERNAL_SERVER_ERROR => Error::internal(err.to_string()),
        status if status.is_client_error() => {
            Error::bad_request(format!("the request could not be read ({status})"))
        }
        status => Error::internal(format!("unexpected framework error {status}: {err}")),
    };
    ApiError::from(mapped).into_response()
}

/// The body-read deadline that `err` (a failed body read) ran into, if it did.
fn body_timeout(err: &poem::Error) -> Option<&BodyTimeout> {
    let ReadBodyError::Io(io) = err.downcast_ref::<ReadBodyError>()? else {
        return None;
    };
    io.get_ref()?.downcast_ref::<BodyTimeout>()
}

/// A request body did not arrive within the body-read timeout.
#[derive(Debug, thiserror::Error)]
#[error(
    "the request body did not arrive within {} seconds (BURNBOX_BODY_READ_TIMEOUT_SECONDS)",
    .0.as_secs_f64()
)]
pub struct BodyTimeout(pub std::time::Duration);
