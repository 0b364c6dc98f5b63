//! `update-agent`: the workstation daemon and its CLI.
//!
//! ```text
//! update-agent [--config FILE] [--state-dir DIR] enroll [--tenant-id T] [--server-url U] [--tenant-token K]
//! update-agent [--config FILE] [--state-dir DIR] status [--json]
//! update-agent [--config FILE] [--state-dir DIR] run
//! ```

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use update_agent::clock::SystemClock;
use update_agent::config::{self, BackendKind, Config, Overrides};
use update_agent::daemon::{CheckInNotAvailable, Daemon, Inventory, Timings};
use update_agent::devices::SimDevices;
use update_agent::enroll::{self, EnrollOptions};
use update_agent::identity;
use update_agent::state::State;
use update_agent::status::StatusReport;

#[derive(Debug, Parser)]
#[command(
    name = "update-agent",
    version,
    about = "Firmware update agent for USB headsets and speakerphones"
)]
struct Cli {
    /// TOML config file (written by the installer).
    #[arg(long, global = true, env = config::env::CONFIG)]
    config: Option<PathBuf>,
    /// State directory [env UPDATE_AGENT_STATE_DIR; default /var/lib/update-agent].
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enroll this host with the server (again: same SystemID, new credential).
    Enroll {
        /// Tenant id [env TENANT_ID; config tenant_id].
        #[arg(long)]
        tenant_id: Option<String>,
        /// Server base URL [env SERVER_URL; config server_url].
        #[arg(long)]
        server_url: Option<String>,
        /// Enrollment token [env TENANT_TOKEN; config tenant_token] (prefer those: arguments are visible to other users).
        #[arg(long)]
        tenant_token: Option<String>,
        /// Send this machine fingerprint instead of this machine's (for testing cloned images).
        #[arg(long, hide = true)]
        machine_fingerprint: Option<String>,
    },
    /// Show enrollment, attached devices, staged and pending updates.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the daemon in the foreground (for systemd); stops on SIGTERM or Ctrl-C.
    Run,
}

fn backend_name(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Hardware => "hardware",
        BackendKind::Simulated => "simulated",
    }
}

fn open_devices(config: &Config) -> anyhow::Result<Box<dyn Inventory>> {
    match config.backend {
        BackendKind::Simulated => Ok(Box::new(SimDevices::from_config(&config.simulated)?)),
        #[cfg(feature = "hardware")]
        BackendKind::Hardware => Ok(Box::new(update_agent::devices::UsbDevices::new()?)),
        #[cfg(not(feature = "hardware"))]
        BackendKind::Hardware => {
            anyhow::bail!("this build has no hardware backend (feature `hardware`); use backend = \"simulated\"")
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("UPDATE_AGENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn enroll_cmd(config: &Config, fingerprint: Option<String>) -> anyhow::Result<()> {
    let params = config.installer()?;
    let opts = EnrollOptions {
        params,
        ca_cert: config.ca_cert.clone(),
        machine_fingerprint: fingerprint.unwrap_or_else(identity::machine_fingerprint),
        hostname: identity::hostname(),
        os: identity::os_name(),
    };
    let e = enroll::enroll(&config.state_dir, &opts)?;
    let verb = if e.reenrolled {
        "re-enrolled"
    } else {
        "enrolled"
    };
    println!("{verb} as agent {} in tenant {}", e.agent_id, e.tenant);
    println!("system id:   {}", e.system_id);
    println!("pinned root: version {}", e.pinned_root_version);
    println!("state:       {}", config.state_dir.display());
    if e.suspected_clone {
        eprintln!(
            "update-agent: warning: the server flagged this host as a suspected clone of agent {} \
             (same SystemID from another machine); remove {} and enroll again to get a new SystemID",
            e.clone_of.as_deref().unwrap_or("?"),
            config.state_dir.join(identity::SYSTEM_ID_FILE).display()
        );
    }
    Ok(())
}

fn status_cmd(config: &Config, json: bool) -> anyhow::Result<()> {
    let scan = open_devices(config)
        .and_then(|d| Ok(d.scan()?))
        .map_err(|e| format!("{e:#}"));
    let report = StatusReport::collect(&config.state_dir, backend_name(config.backend), scan)?;
    let text = if json {
        format!("{}\n", serde_json::to_string_pretty(&report)?)
    } else {
        report.to_text()
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A closed pipe (`status | head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn run_cmd(config: &Config) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    init_logging();
    let state = State::open_in(&config.state_dir)?;
    match enroll::load(&config.state_dir)? {
        Some(e) => {
            tracing::info!(agent = %e.agent_id, tenant = %e.tenant, server = %e.server_url, "enrolled")
        }
        None => {
            tracing::warn!("not enrolled: run `update-agent enroll`; only devices are inventoried")
        }
    }
    let devices = open_devices(config)?;
    let (tx, rx) = std::sync::mpsc::channel();
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .context("installing signal handlers")?;
    let handle = signals.handle();
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            tracing::info!(signal = sig, "stopping");
            let _ = tx.send(());
        }
    });
    let mut seed = [0u8; 16];
    hex::decode_to_slice(identity::random_hex128(), &mut seed)?;
    let timings = Timings {
        poll_interval: chrono::Duration::from_std(config.poll_interval)?,
        scan_interval: chrono::Duration::from_std(config.scan_interval)?,
    };
    let mut daemon = Daemon::new(
        state,
        devices,
        Arc::new(SystemClock),
        Box::new(CheckInNotAvailable),
        timings,
        seed,
    );
    tracing::info!(
        state_dir = %config.state_dir.display(),
        backend = backend_name(config.backend),
        "update-agent running"
    );
    daemon.run(&rx)?;
    handle.close();
    tracing::info!("stopped");
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut overrides = Overrides {
        state_dir: cli.state_dir,
        ..Overrides::default()
    };
    let mut fingerprint = None;
    if let Command::Enroll {
        tenant_id,
        server_url,
        tenant_token,
        machine_fingerprint,
    } = &cli.command
    {
        overrides.tenant_id = tenant_id.clone();
        overrides.server_url = server_url.clone();
        overrides.tenant_token = tenant_token.clone();
        fingerprint = machine_fingerprint.clone();
    }
    let config = Config::load(&overrides, cli.config.as_deref())?;
    match cli.command {
        Command::Enroll { .. } => enroll_cmd(&config, fingerprint),
        Command::Status { json } => status_cmd(&config, json),
        Command::Run => run_cmd(&config),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("update-agent: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
