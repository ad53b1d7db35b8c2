//! The one wire-error table: every [`ErrorKind`] has exactly one HTTP status, one gRPC code and
//! one error type, here and nowhere else. Both transports render errors through this module, so a
//! failure reads the same over REST (`{"error","message","field"?,"error_id"}`) and over gRPC
//! (the same type, message, field and error_id in google.rpc details).

use std::collections::HashMap;

use burnbox_core::{Error, ErrorKind};
use poem::http::StatusCode;
use tonic_types::{ErrorDetails, StatusExt};

/// The google.rpc ErrorInfo domain of every burnbox error.
pub const ERROR_DOMAIN: &str = "burnbox";

/// How one [`ErrorKind`] appears on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireError {
    /// HTTP status on REST.
    pub http: StatusCode,
    /// gRPC status code.
    pub grpc: tonic::Code,
    /// The `error` field on REST, the ErrorInfo reason on gRPC.
    pub error: &'static str,
    /// What the status means, for the OpenAPI document.
    pub description: &'static str,
}

/// The error table (the README's "Errors" section). Exhaustive and wildcard-free: a new kind does not compile until
/// it has its row.
#[rustfmt::skip]
pub fn wire_error(kind: ErrorKind) -> WireError {
    use StatusCode as Http;
    use tonic::Code as Grpc;
    let (http, grpc, error, description) = match kind {
        ErrorKind::BadRequest => (Http::BAD_REQUEST, Grpc::InvalidArgument, "BadRequest", "the request could not be understood"),
        ErrorKind::Unauthorized => (Http::UNAUTHORIZED, Grpc::Unauthenticated, "Unauthorized", "credentials are missing or wrong"),
        ErrorKind::Forbidden => (Http::FORBIDDEN, Grpc::PermissionDenied, "Forbidden", "the caller may not do this"),
        ErrorKind::NotFound => (Http::NOT_FOUND, Grpc::NotFound, "NotFound", "unknown, revealed, burned or expired"),
        ErrorKind::Validation => (Http::UNPROCESSABLE_ENTITY, Grpc::InvalidArgument, "FormError", "a field is invalid; `field` names it"),
        ErrorKind::RateLimited => (Http::TOO_MANY_REQUESTS, Grpc::ResourceExhausted, "RateLimited", "too many requests; see Retry-After"),
        ErrorKind::Unavailable => (Http::SERVICE_UNAVAILABLE, Grpc::Unavailable, "Unavailable", "the secret store is unavailable"),
        ErrorKind::Internal => (Http::INTERNAL_SERVER_ERROR, Grpc::Internal, "InternalError", "internal error"),
    };
    WireError { http, grpc, error, description }
}

/// The id of an error: the request's trace id, so a report from a user leads to the trace and
/// the log lines of that request (a random id of the same shape outside any trace).
pub fn new_error_id() -> String {
    crate::observe::current_trace_id().unwrap_or_else(|| {
        let bytes: [u8; 16] = rand::random();
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    })
}

/// Reports an error on its way to the wire: logs it with its id (internal and unavailable errors
/// with their hidden cause at warn/error level, caller mistakes at debug) and notes its type for
/// the request's metrics sample. Both transports render errors through here.
pub fn report_error(transport: &'static str, err: &Error, error_id: &str) {
    let error = wire_error(err.kind()).error;
    crate::request_scope::record_error_type(error);
    match err.kind() {
        ErrorKind::Internal => {
            tracing::error!(
                transport,
                error,
                error_id,
                detail = err.detail(),
                "request failed"
            );
        }
        ErrorKind::Unavailable => {
            tracing::warn!(
                transport,
                error,
                error_id,
                detail = err.detail(),
                "request failed"
            );
        }
        ErrorKind::BadRequest
        | ErrorKind::Unauthorized
        | ErrorKind::Forbidden
        | ErrorKind::NotFound
        | ErrorKind::Validation
        | ErrorKind::RateLimited => {
            tracing::debug!(
                transport,
                error,
                error_id,
                message = err.message(),
                field = err.field(),
                why = err.detail(),
                "request refused"
            );
        }
    }
}

/// Renders `err` as a gRPC status with ErrorInfo (reason, domain, error_id, message), BadRequest
/// (the field) and RetryInfo (when rate limited) details.
pub fn to_grpc_status(err: &Error) -> tonic::Status {
    to_grpc_status_with_code(err, wire_error(err.kind()).grpc)
}

/// Renders `err` as [`to_grpc_status`] does, but with `code`: for the few refusals whose code the
/// gRPC protocol itself prescribes (`UNIMPLEMENTED` for an unknown method or an unsupported
/// compression), which keep that code and carry the table's details.
pub fn to_grpc_status_with_code(err: &Error, code: tonic::Code) -> tonic::Status {
    let error_id = new_error_id();
    report_error("grpc", err, &error_id);
    let wire = wire_error(err.kind());
    let mut details = ErrorDetails::new();
    details.set_error_info(
        wire.error,
        ERROR_DOMAIN,
        HashMap::from([
            ("error_id".to_owned(), error_id),
            ("message".to_owned(), err.message().to_owned()),
        ]),
    );
    if let Some(field) = err.field() {
        details.add_bad_request_violation(field, err.message());
    }
    if let Some(retry_after) = err.retry_after() {
        details.set_retry_info(Some(retry_after));
    }
    tonic::Status::with_error_details(code, err.message(), details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_row() {
        let errors: std::collections::HashSet<_> = ErrorKind::ALL
            .iter()
            .map(|kind| wire_error(*kind).error)
            .collect();
        assert_eq!(errors.len(), ErrorKind::ALL.len());
        let statuses: std::collections::HashSet<_> = ErrorKind::ALL
            .iter()
            .map(|kind| wire_error(*kind).http)
            .collect();
        assert_eq!(statuses.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn no_row_uses_out_of_range() {
        // grpc::render_protocol_refusal relies on it: OUT_OF_RANGE is only ever tonic's refusal
        // of an over-cap message.
        for kind in ErrorKind::ALL {
            assert_ne!(wire_error(kind).grpc, tonic::Code::OutOfRange, "{kind:?}");
        }
    }

    #[test]
    fn error_ids_are_trace_id_shaped() {
        let id = new_error_id();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert_ne!(id, new_error_id());
    }
}
