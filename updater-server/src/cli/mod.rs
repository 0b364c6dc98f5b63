//! The `updater-server` command line: the service and its admin commands.

mod catalog;
mod demo;
mod windows;

use std::net::SocketAddr;
use std::path::PathBuf;

use ::catalog::Catalog;
use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

pub use self::catalog::{CatalogCommand, ImportArgs, KeysCommand};

/// Firmware distribution and device update service.
#[derive(Debug, Parser)]
#[command(name = "updater-server", version)]
pub struct Cli {
    /// Data directory: the embedded store (catalog, blobs, keys).
    #[arg(
        long,
        env = "UPDATER_DATA_DIR",
        default_value = "updater-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service on the embedded store (created on first run).
    Serve {
        /// Address to listen on. Plain HTTP is only allowed on loopback.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Seed sample firmware for simulated headsets (first run only), then serve.
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// The firmware catalog.
    Catalog {
        /// The catalog command.
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Maintenance windows: preview when a window opens.
    Windows {
        /// The windows command.
        #[command(subcommand)]
        command: windows::WindowsCommand,
    },
}

/// The layout of a data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Wraps a data directory path.
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// `<data>/catalog`.
    pub fn catalog(&self) -> PathBuf {
        self.root.join("catalog")
    }

    /// `<data>/keys`: signing keys, never published.
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// Opens the catalog, creating it (and its keys) on first use.
    pub fn open_catalog(&self, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<Catalog> {
        Catalog::open_or_init(&self.catalog(), &self.keys(), now)
            .with_context(|| format!("opening the catalog in {}", self.catalog().display()))
    }

    /// Opens an existing catalog.
    pub fn open_existing(&self) -> anyhow::Result<Catalog> {
        Ok(Catalog::open(&self.catalog(), &self.keys())?)
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let data = DataDir::new(cli.data_dir);
    match cli.command {
        Command::Serve { listen } => {
            check_listen(listen)?;
            let catalog = data.open_catalog(chrono::Utc::now())?;
            runtime()?.block_on(crate::http::serve(catalog, listen))
        }
        Command::Demo { listen } => {
            check_listen(listen)?;
            let mut catalog = data.open_catalog(chrono::Utc::now())?;
            demo::seed(&mut catalog, chrono::Utc::now())?;
            println!("data directory: {}", data.root.display());
            println!(
                "explore: updater-server --data-dir {} catalog list",
                data.root.display()
            );
            runtime()?.block_on(crate::http::serve(catalog, listen))
        }
        Command::Catalog { command } => catalog::run(&data, command),
        Command::Windows { command } => windows::run(command),
    }
}

fn check_listen(listen: SocketAddr) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() {
        bail!(
            "refusing to serve plain HTTP on {listen}: only loopback addresses are allowed without TLS"
        );
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
