//! `updater-server`: the update service and its admin commands (see
//! docs/server.md); the library holds everything, this only sets up logging
//! and prints a failure's causes once.

use std::io::IsTerminal;

use clap::Parser;

/// Logs to standard error: text (coloured only on a terminal) or, with
/// `UPDATER_LOG_FORMAT=json`, one JSON object per line for log shippers.
fn init_logging() -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("UPDATER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let format = std::env::var("UPDATER_LOG_FORMAT").unwrap_or_default();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format.as_str() {
        "" | "text" => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        "json" => builder.json().init(),
        other => {
            return Err(format!(
                "UPDATER_LOG_FORMAT={other:?} is not a log format: use text or json"
            ))
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    if let Err(e) = init_logging() {
        eprintln!("error: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let cli = updater_server::cli::Cli::parse();
    match updater_server::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_report::Report(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}
