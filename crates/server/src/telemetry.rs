//! Logging: `tracing` to stdout, filtered by `BURNBOX_LOG`, as text or JSON.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `filter` uses RUST_LOG syntax; `json` selects JSON lines.
/// Calling it again (as tests do) keeps the first subscriber.
pub fn init(filter: &str, json: bool) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for people: log collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let _already_set = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
