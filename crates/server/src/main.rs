//! The `burnbox` binary: parse the configuration, start logging, serve until SIGTERM/SIGINT.

use std::process::ExitCode;

use burnbox_server::{Application, Config, StartupError, telemetry};
use clap::Parser;
use clap::error::{ContextKind, ErrorKind};

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
    telemetry::init(&config.log, config.log_format.is_json());
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(err) => {
            eprintln!("burnbox: {err}");
            tracing::error!(%err, "startup failed");
            return ExitCode::from(match err {
                StartupError::Config(_) => 2,
                StartupError::Store(_)
                | StartupError::Bind { .. }
                | StartupError::Reflection(_) => 1,
            });
        }
    };
    tracing::info!(
        http = %app.http_addr(),
        grpc = %app.grpc_addr(),
        admin = %app.admin_addr(),
        "burnbox listening"
    );
    match app.run(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(%err, "server failed");
            ExitCode::FAILURE
        }
    }
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

/// Completes on SIGTERM (Kubernetes) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
