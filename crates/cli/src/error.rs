//! Every failure, and the exit code it maps to. A failure is one line on stderr; stdout stays
//! empty, so a script never mistakes an error for a secret.

/// The documented exit codes (also in `--help` and the README).
pub const EXIT_CODES: &str = "\
Exit codes:
  0  ok
  1  anything else (a secret that does not decrypt, a server error, ...)
  2  usage (a bad flag or argument, nothing to share, missing settings)
  3  not found: the secret was never shared, or was already revealed, burned or expired
  4  unauthorized or forbidden: check the customer id and token
  5  rate limited: retry later
  6  the server is unreachable or unavailable";

/// What went wrong.
#[derive(Debug)]
pub enum CliError {
    /// The command line or the settings are wrong (exit 2).
    Usage(String),
    /// The server answered with an error.
    Server(ServerError),
    /// The server could not be reached, or said it is unavailable (exit 6).
    Unreachable(String),
    /// Anything else (exit 1).
    Other(String),
}

/// The kinds of server errors that have exit codes of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerErrorKind {
    /// 404 / NOT_FOUND.
    NotFound,
    /// 401, 403 / UNAUTHENTICATED, PERMISSION_DENIED.
    Unauthorized,
    /// 429 / RESOURCE_EXHAUSTED.
    RateLimited,
    /// 502, 503, 504 / UNAVAILABLE.
    Unavailable,
    /// Anything else (422, 400, 500, ...).
    Other,
}

/// An error answer: the server's own words and the `error_id` to quote to its operators.
#[derive(Debug)]
pub struct ServerError {
    /// Which exit code it gets.
    pub kind: ServerErrorKind,
    /// The server's error type (`NotFound`, `FormError`, ...) or the HTTP status.
    pub error: String,
    /// The server's message.
    pub message: String,
    /// The server's `error_id`, when it sent one.
    pub error_id: Option<String>,
    /// Seconds to wait, from `Retry-After`.
    pub retry_after: Option<String>,
}

impl CliError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Server(error) => match error.kind {
                ServerErrorKind::NotFound => 3,
                ServerErrorKind::Unauthorized => 4,
                ServerErrorKind::RateLimited => 5,
                ServerErrorKind::Unavailable => 6,
                ServerErrorKind::Other => 1,
            },
            Self::Unreachable(_) => 6,
            Self::Other(_) => 1,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Usage(message) | Self::Unreachable(message) | Self::Other(message) => {
                formatter.write_str(message)
            }
            Self::Server(error) => {
                let hint = match error.kind {
                    ServerErrorKind::NotFound => "",
                    ServerErrorKind::Unauthorized => {
                        " (check the customer id and token: --custid, BURNBOX_CUSTID, BURNBOX_TOKEN)"
                    }
                    ServerErrorKind::RateLimited => " (too many requests: retry later)",
                    ServerErrorKind::Unavailable => " (the server is unavailable: retry later)",
                    ServerErrorKind::Other => "",
                };
                write!(formatter, "{}: {}{hint}", error.error, error.message)?;
                if let Some(seconds) = &error.retry_after {
                    write!(formatter, " [retry after {seconds} s]")?;
                }
                if let Some(error_id) = &error.error_id {
                    write!(formatter, " [error_id {error_id}]")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for CliError {}

/// The message of `error` and all its causes, for transport errors whose top line alone
/// ("error sending request") does not say what to do.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    // One line, whatever a cause put in its message.
    text.replace(['\n', '\r'], " ")
}
