//! The one error type of the handler. Transports turn an [`ErrorKind`] into their wire status
//! through the server's single error table; messages here are safe to show to any caller.

use std::time::Duration;

/// What kind of failure happened; each kind has exactly one HTTP status and one gRPC code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request could not be understood (unparseable body, wrong content type, wrong method).
    BadRequest,
    /// Credentials are missing or wrong.
    Unauthorized,
    /// The caller is known but may not do this.
    Forbidden,
    /// No such secret or receipt (never existed, revealed, burned or expired).
    NotFound,
    /// A field's value breaks a rule (ttl, size, passphrase…); [`Error::field`] names it.
    Validation,
    /// Too many requests; [`Error::retry_after`] says when to try again.
    RateLimited,
    /// The store cannot be reached right now.
    Unavailable,
    /// Anything else; the cause is logged, never shown.
    Internal,
}

impl ErrorKind {
    /// Every kind, for tests and documentation that must cover them all.
    pub const ALL: [ErrorKind; 8] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::Validation,
        Self::RateLimited,
        Self::Unavailable,
        Self::Internal,
    ];
}

/// The message of a secret or receipt that is not there (Onetime Secret's text).
pub const UNKNOWN_SECRET: &str = "Unknown secret";

/// The message of every 401 (Onetime Secret's text).
pub const NOT_AUTHORIZED: &str = "Not authorized";

/// The message of every 429 (Onetime Secret's text, which its clients match on); when to retry
/// is in the answer's `Retry-After`.
pub const RATE_LIMITED: &str = "Apologies dear citizen! You have been rate limited.";

/// A failed operation: a kind, a message for the caller, optionally the offending field.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    field: Option<&'static str>,
    retry_after: Option<Duration>,
    /// The cause of an internal or unavailable error: for the log, never for the caller.
    detail: Option<String>,
}

impl Error {
    /// An error of `kind` with a caller-facing `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: None,
            retry_after: None,
            detail: None,
        }
    }

    /// A [`ErrorKind::Validation`] error about `field`.
    pub fn validation(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            ..Self::new(ErrorKind::Validation, message)
        }
    }

    /// A [`ErrorKind::BadRequest`] error.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// The one answer for every secret that cannot be revealed, whatever the reason (never
    /// shared, already revealed, burned or expired), so a caller learns nothing about which keys
    /// ever existed. The message is Onetime Secret's, which its clients match on.
    pub fn secret_not_found() -> Self {
        Self::new(ErrorKind::NotFound, UNKNOWN_SECRET)
    }

    /// The one answer for every receipt that cannot be read: Onetime Secret's v1 API answers
    /// a missing receipt with the same `Unknown secret`.
    pub fn receipt_not_found() -> Self {
        Self::new(ErrorKind::NotFound, UNKNOWN_SECRET)
    }

    /// The one answer for every authentication failure (no credentials where they are needed,
    /// or credentials that prove nobody), in Onetime Secret's words, which its clients match on.
    /// `why` goes to the log only: the answer does not tell a token guesser which part was
    /// wrong.
    pub fn not_authorized(why: &'static str) -> Self {
        Self {
            detail: Some(why.to_owned()),
            ..Self::new(ErrorKind::Unauthorized, NOT_AUTHORIZED)
        }
    }

    /// An internal error: the caller sees a generic message, `detail` goes to the log only.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self {
            detail: Some(detail.into()),
            ..Self::new(ErrorKind::Internal, "internal error")
        }
    }

    /// Attaches the time after which a rate-limited caller may retry.
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(retry_after);
        self
    }

    /// The kind, which decides the wire status.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The caller-facing message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The field a validation error is about.
    pub fn field(&self) -> Option<&'static str> {
        self.field
    }

    /// How long a rate-limited caller should wait.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The logged-only cause of an internal, unavailable or unauthorized error.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl From<burnbox_store::StoreError> for Error {
    fn from(err: burnbox_store::StoreError) -> Self {
        match err {
            burnbox_store::StoreError::Unavailable(detail) => Self {
                detail: Some(detail),
                ..Self::new(
                    ErrorKind::Unavailable,
                    "the secret store is unavailable; try again shortly",
                )
            },
            burnbox_store::StoreError::Full => Self {
                detail: Some("the store's byte budget is used up".to_owned()),
                ..Self::new(
                    ErrorKind::Unavailable,
                    "the secret store is full; try again later",
                )
            },
            burnbox_store::StoreError::Internal(detail) => Self::internal(detail),
        }
    }
}
