//! The `burnbox` binary: parse the configuration, start logging, serve until SIGTERM/SIGINT.

use std::process::ExitCode;

use burnbox_server::{Application, Config, StartupError, telemetry};
use clap::Parser;
use clap::error::{ContextKind, ErrorKind};

/// mimalloc: glibc's allocator spent a fifth of a reveal's CPU in malloc and its arena locks
/// under load (measured with perf; see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::try_parse() {
        Ok(config) => config,
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            err.exit()
        }
        Err(err) => {
            eprintln!(
                "burnbox: invalid configuration: {}",
                describe_clap_error(&err)
            );
            return ExitCode::from(2);
        }
    };
    let telemetry = match telemetry::init(&config.telemetry()) {
        Ok(telemetry) => telemetry,
        Err(problem) => {
            eprintln!("burnbox: invalid configuration: OTEL_EXPORTER_OTLP_ENDPOINT: {problem}");
            return ExitCode::from(2);
        }
    };
    let shutdown = match shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(err) => {
            eprintln!("burnbox: cannot install signal handlers: {err}");
            return ExitCode::FAILURE;
        }
    };
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(err) => {
            // One line on stderr, naming the setting; not also a log line.
            eprintln!("burnbox: {err}");
            return ExitCode::from(match err {
                StartupError::Config(_) => 2,
                StartupError::Store { .. } | StartupError::Bind { .. } => 1,
            });
        }
    };
    tracing::info!(
        http = %app.http_addr(),
        grpc = %app.grpc_addr(),
        admin = %app.admin_addr(),
        "burnbox listening"
    );
    // Whoever waits for the server to listen reads it now, not a flush interval later.
    telemetry.flush_logs();
    let code = match app.run(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(%err, "server failed");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}

/// One line naming the setting (as its environment variable) and what is wrong with it.
fn describe_clap_error(err: &clap::Error) -> String {
    let problem = err
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_owned();
    let setting = err.get(ContextKind::InvalidArg).map(|arg| {
        let flag = arg.to_string();
        let name = flag
            .trim_start_matches('-')
            .split([' ', '='])
            .next()
            .unwrap_or_default();
        format!("BURNBOX_{}", name.replace('-', "_").to_uppercase())
    });
    match setting {
        Some(setting) => format!("{setting}: {problem}"),
        None => problem,
    }
}

/// Completes on SIGTERM (Kubernetes) or SIGINT (Ctrl-C). The handlers are installed before this
/// returns, so a signal that arrives once the server says it listens is never lost.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
    })
}

/// Completes on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
