//! The `dfu` command-line tool: inspect and build `.dfu` / DfuSe files.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

/// Inspect and build USB DFU (`.dfu`) and ST DfuSe firmware files.
#[derive(Debug, Parser)]
#[command(name = "dfu", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// One variant per subcommand; each dispatches to `cli::<name>::run`.
#[derive(Debug, Subcommand)]
enum Command {
    /// Show what a .dfu or DfuSe file contains.
    Inspect(cli::inspect::Args),
    /// Wrap a raw image into a .dfu or DfuSe file.
    Build(cli::build::Args),
    /// List DFU-capable USB devices (runtime and DFU mode).
    List(cli::device::list::Args),
    /// Flash a .dfu, DfuSe or raw firmware file into a device.
    Flash(cli::device::flash::Args),
    /// Read the firmware from a device into a file.
    Read(cli::device::read::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => cli::inspect::run(args),
        Command::Build(args) => cli::build::run(args),
        Command::List(args) => cli::device::list::run(args),
        Command::Flash(args) => cli::device::flash::run(args),
        Command::Read(args) => cli::device::read::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dfu: {e}");
            ExitCode::FAILURE
        }
    }
}
