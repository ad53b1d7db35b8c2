//! Assertions on answers: REST and gRPC errors held to the one error table, and byte
//! searches for things that must never be found.

/// Asserts a REST error answer: the status and `error` from the wire table for `kind`, the
/// `field`, a message, a trace-id-shaped `error_id`, and nothing else in the body but, on a
/// NotFound, the `secret_key` asked for (as Onetime Secret sends it).
pub fn assert_rest_error(
    answer: &(reqwest::StatusCode, serde_json::Value),
    kind: burnbox_core::ErrorKind,
    field: Option<&str>,
) {
    let wire = burnbox_server::wire_error::wire_error(kind);
    let (status, body) = answer;
    assert_eq!(
        status.as_u16(),
        wire.http.as_u16(),
        "status for {kind:?}: {body}"
    );
    assert_eq!(body["error"], wire.error, "{body}");
    assert_eq!(
        body.get("field").and_then(|field| field.as_str()),
        field,
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|message| !message.is_empty()),
        "{body}"
    );
    let error_id = body["error_id"].as_str().unwrap_or_default();
    assert!(
        error_id.len() == 32 && error_id.bytes().all(|byte| byte.is_ascii_hexdigit()),
        "{body}"
    );
    let allowed = ["error", "message", "field", "error_id"];
    let object = body.as_object().expect("error body is an object");
    assert!(
        object.keys().all(|key| allowed.contains(&key.as_str())
            || (key == "secret_key" && kind == burnbox_core::ErrorKind::NotFound)),
        "{body}"
    );
}

/// Asserts a gRPC error: the code from the wire table for `kind`, ErrorInfo with the same error
/// type, domain, message and an error_id, and BadRequest naming `field`.
pub fn assert_grpc_error(
    status: &tonic::Status,
    kind: burnbox_core::ErrorKind,
    field: Option<&str>,
) {
    use tonic_types::StatusExt;
    let wire = burnbox_server::wire_error::wire_error(kind);
    assert_eq!(status.code(), wire.grpc, "code for {kind:?}: {status:?}");
    assert!(!status.message().is_empty());
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo detail");
    assert_eq!(info.reason, wire.error);
    assert_eq!(info.domain, "burnbox");
    assert_eq!(
        info.metadata.get("message").map(String::as_str),
        Some(status.message())
    );
    let error_id = info.metadata.get("error_id").expect("error_id");
    assert!(error_id.len() == 32 && error_id.bytes().all(|byte| byte.is_ascii_hexdigit()));
    let violated = details
        .bad_request()
        .and_then(|bad_request| bad_request.field_violations.first())
        .map(|violation| violation.field.as_str());
    assert_eq!(violated, field, "{status:?}");
}

/// Whether `needle` occurs in `haystack`.
pub fn bytes_contain(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}
