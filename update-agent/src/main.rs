//! `update-agent`: the workstation daemon and its CLI.
//!
//! ```text
//! update-agent [--config FILE] [--state-dir DIR] enroll [--tenant-id T] [--server-url U] [--tenant-token K]
//! update-agent [--config FILE] [--state-dir DIR] status [--json]
//! update-agent [--config FILE] [--state-dir DIR] run
//! update-agent [--config FILE] [--state-dir DIR] check-now
//! update-agent [--config FILE] [--state-dir DIR] prompts [--json]
//! update-agent [--config FILE] [--state-dir DIR] accept|decline|defer ID
//! ```

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use update_agent::agent::AgentCore;
use update_agent::config::{self, BackendKind, Config, Overrides};
use update_agent::daemon::{CheckIn, CheckInNotAvailable, Daemon, Inventory, Timings};
use update_agent::devices::{DeviceBackend, SimDevices};
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
        /// Fingerprint of the catalog's first root, as `updater-server catalog keys list` prints it [env CATALOG_ROOT_SHA256; config catalog_root_sha256].
        #[arg(long)]
        catalog_root_sha256: Option<String>,
        /// SHA-256 of the server's TLS certificate (DER); enrollment then talks only to that certificate [env SERVER_CERT_SHA256; config server_cert_sha256].
        #[arg(long)]
        server_cert_sha256: Option<String>,
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
    /// Check in once, install what is due, send the events, and exit
    /// (status 1 with the reason when the check-in or an update failed).
    CheckNow,
    /// List the questions the running agent has for the user (updates to
    /// accept, decline or defer; devices to unplug and replug).
    Prompts {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Accept a prompt: install the update now (or: the device was replugged).
    Accept {
        /// The prompt's id (see `prompts`).
        id: String,
    },
    /// Decline an optional update: this version is not offered again.
    Decline {
        /// The prompt's id.
        id: String,
    },
    /// Defer a prompt to the next poll or login (persistent updates: a limited number of times).
    Defer {
        /// The prompt's id.
        id: String,
    },
}

fn backend_name(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Hardware => "hardware",
        BackendKind::Simulated => "simulated",
    }
}

fn open_devices(config: &Config) -> anyhow::Result<Box<dyn Inventory>> {
    match config.backend {
        BackendKind::Simulated => Ok(Box::new(sim_devices(config)?)),
        #[cfg(feature = "hardware")]
        BackendKind::Hardware => Ok(Box::new(update_agent::devices::UsbDevices::new()?)),
        #[cfg(not(feature = "hardware"))]
        BackendKind::Hardware => {
            anyhow::bail!("this build has no hardware backend (feature `hardware`); use backend = \"simulated\"")
        }
    }
}

/// The simulated bus the config describes (devices, and where they keep their state).
fn sim_devices(config: &Config) -> Result<SimDevices, config::ConfigError> {
    SimDevices::open(
        &config.simulated,
        config.simulated_state_dir.as_deref(),
        config.simulated_freeze_after,
    )
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
    let e = enroll::enroll(&config.state_dir, &opts, config.clock()?.now())?;
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
        .map_err(|e| error_report::chain(e.as_ref()));
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

/// The host's power state and sessions (logind's files on Linux).
fn host_state() -> Arc<dyn update_agent::schedule::host::HostState> {
    #[cfg(target_os = "linux")]
    {
        Arc::new(update_agent::schedule::host::LogindFiles::default())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Arc::new(update_agent::schedule::host::AlwaysAwake)
    }
}

/// The configured notification command, else the log.
fn notifier(config: &Config) -> anyhow::Result<Arc<dyn update_agent::prompts::Notifier>> {
    Ok(match &config.notify_command {
        Some(argv) => Arc::new(update_agent::prompts::CommandNotifier::new(argv.clone())?),
        None => Arc::new(update_agent::prompts::LogNotifier),
    })
}

#[cfg(unix)]
fn prompts_cmd(config: &Config, json: bool) -> anyhow::Result<()> {
    use update_agent::control::{request, Request};
    let r = request(&config.state_dir, &Request::Prompts)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r.prompts)?);
        return Ok(());
    }
    if r.prompts.is_empty() {
        println!("no prompts");
    }
    for p in &r.prompts {
        let mut line = format!("{}  {:?}  {}", p.id, p.kind, p.message);
        if let Some(left) = p.deferrals_left() {
            line.push_str(&format!(" [{left} deferral(s) left]"));
        }
        if let Some(why) = &p.blocked_by {
            line.push_str(&format!(" (waiting: {why})"));
        }
        println!("{line}");
    }
    Ok(())
}

#[cfg(unix)]
fn decide_cmd(config: &Config, id: String, decision: &str) -> anyhow::Result<()> {
    use update_agent::control::{request, Request};
    let req = match decision {
        "accept" => Request::Accept { id },
        "decline" => Request::Decline { id },
        _ => Request::Defer { id },
    };
    let r = request(&config.state_dir, &req)?;
    if let Some(p) = r.prompt {
        println!("{}: {:?} ({})", p.id, p.state, p.device);
    }
    Ok(())
}

#[cfg(not(unix))]
fn prompts_cmd(_config: &Config, _json: bool) -> anyhow::Result<()> {
    anyhow::bail!("the control channel is only available on Unix in this version")
}

#[cfg(not(unix))]
fn decide_cmd(_config: &Config, _id: String, _decision: &str) -> anyhow::Result<()> {
    anyhow::bail!("the control channel is only available on Unix in this version")
}

fn run_cmd(config: &Config) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    init_logging();
    let state = Arc::new(State::open_in(&config.state_dir)?);
    let (devices, check_in): (Box<dyn Inventory>, Box<dyn CheckIn>) = match enroll::load(
        &config.state_dir,
    )? {
        Some(e) => {
            tracing::info!(agent = %e.agent_id, tenant = %e.tenant, server = %e.server_url, "enrolled");
            open_core(config, state.clone())?
        }
        None => {
            tracing::warn!("not enrolled: run `update-agent enroll`; only devices are inventoried");
            (open_devices(config)?, Box::new(CheckInNotAvailable))
        }
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let control_tx = tx.clone();
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .context("installing signal handlers")?;
    let handle = signals.handle();
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            tracing::info!(signal = sig, "stopping");
            let _ = tx.send(update_agent::daemon::Wake::Stop);
        }
    });
    let mut seed = [0u8; 16];
    hex::decode_to_slice(identity::random_hex128(), &mut seed)?;
    let timings = Timings {
        poll_interval: chrono::Duration::from_std(config.poll_interval)?,
        scan_interval: chrono::Duration::from_std(config.scan_interval)?,
    };
    let clock = config.clock()?;
    if let Some(t) = config.simulated_clock {
        tracing::warn!(clock = %t, "simulation: running on an accelerated clock");
    }
    #[cfg(unix)]
    let control = update_agent::control::ControlServer::bind(&config.state_dir)?.serve(
        state.clone(),
        clock.clone(),
        control_tx,
    );
    let system_id = identity::SystemId::load(&config.state_dir)?
        .map_or_else(|| hex::encode(seed), |s| s.to_string());
    let offset = update_agent::schedule::windows::fleet_offset(
        &system_id,
        chrono::Duration::from_std(config.window_spread)?,
    );
    let mut daemon = Daemon::new(state, devices, clock, check_in, timings, seed)
        .with_window_offset(offset)
        .with_host(host_state());
    tracing::info!(
        state_dir = %config.state_dir.display(),
        backend = backend_name(config.backend),
        "update-agent running"
    );
    daemon.run(&rx)?;
    #[cfg(unix)]
    control.stop();
    handle.close();
    tracing::info!("stopped");
    Ok(())
}

fn flash_options(config: &Config) -> dfu::host::FlashOptions {
    match config.backend {
        // The simulated models need the quirks the test-devices table lists.
        BackendKind::Simulated => dfu::host::FlashOptions {
            quirks: test_devices::profile::quirk_table(),
            ..Default::default()
        },
        BackendKind::Hardware => dfu::host::FlashOptions::default(),
    }
}

fn core<B: DeviceBackend + Send + 'static>(
    config: &Config,
    state: Arc<State>,
    backend: B,
) -> anyhow::Result<AgentCore<B>> {
    let mut core = AgentCore::open(
        &config.state_dir,
        state,
        backend,
        config.ca_cert.as_deref(),
        flash_options(config),
    )?;
    core.set_hooks(host_state(), notifier(config)?);
    Ok(core)
}

/// The configured devices twice: for the daemon's scans and for the agent
/// core (the simulated bus is one bus shared by both handles).
fn open_core(
    config: &Config,
    state: Arc<State>,
) -> anyhow::Result<(Box<dyn Inventory>, Box<dyn CheckIn>)> {
    match config.backend {
        BackendKind::Simulated => {
            let sim = sim_devices(config)?;
            Ok((Box::new(sim.clone()), Box::new(core(config, state, sim)?)))
        }
        #[cfg(feature = "hardware")]
        BackendKind::Hardware => {
            use update_agent::devices::UsbDevices;
            let inventory = Box::new(UsbDevices::new()?);
            Ok((
                inventory,
                Box::new(core(config, state, UsbDevices::new()?)?),
            ))
        }
        #[cfg(not(feature = "hardware"))]
        BackendKind::Hardware => open_devices(config).map(|_| unreachable!()),
    }
}

fn check_now_with<B: DeviceBackend + Send + 'static>(
    config: &Config,
    state: Arc<State>,
    backend: B,
) -> anyhow::Result<()> {
    let now = config.clock()?.now();
    state.record_scan(&backend.inventory()?, now)?;
    let mut core = core(config, state, backend)?;
    let recovered = core.recover(now)?;
    let report = core.check_in_and_update(now)?;
    let mut failures = recovered.failures();
    failures.extend(report.failures());
    let mut pass = recovered;
    pass.outcomes.extend(report.outcomes);
    for (device, decision) in core.decisions(&pass, now)? {
        println!("{device}: {decision}");
    }
    if core.states_changed()? {
        // Report what this pass changed now rather than at the next check-in.
        core.check_in_only(now)?;
    }
    if let Err(e) = core.flush() {
        eprintln!("update-agent: warning: events not sent (kept spooled): {e}");
    }
    if !failures.is_empty() {
        anyhow::bail!("{}", failures.join("; "));
    }
    Ok(())
}

fn check_now_cmd(config: &Config) -> anyhow::Result<()> {
    init_logging();
    if enroll::load(&config.state_dir)?.is_none() {
        anyhow::bail!("not enrolled: run `update-agent enroll` first");
    }
    let state = Arc::new(State::open_in(&config.state_dir)?);
    match config.backend {
        BackendKind::Simulated => check_now_with(config, state, sim_devices(config)?),
        #[cfg(feature = "hardware")]
        BackendKind::Hardware => {
            check_now_with(config, state, update_agent::devices::UsbDevices::new()?)
        }
        #[cfg(not(feature = "hardware"))]
        BackendKind::Hardware => open_devices(config).map(|_| ()),
    }
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
        catalog_root_sha256,
        server_cert_sha256,
        machine_fingerprint,
    } = &cli.command
    {
        overrides.tenant_id = tenant_id.clone();
        overrides.server_url = server_url.clone();
        overrides.tenant_token = tenant_token.clone();
        overrides.catalog_root_sha256 = catalog_root_sha256.clone();
        overrides.server_cert_sha256 = server_cert_sha256.clone();
        fingerprint = machine_fingerprint.clone();
    }
    let config = Config::load(&overrides, cli.config.as_deref())?;
    match cli.command {
        Command::Enroll { .. } => enroll_cmd(&config, fingerprint),
        Command::Status { json } => status_cmd(&config, json),
        Command::Run => run_cmd(&config),
        Command::CheckNow => check_now_cmd(&config),
        Command::Prompts { json } => prompts_cmd(&config, json),
        Command::Accept { id } => decide_cmd(&config, id, "accept"),
        Command::Decline { id } => decide_cmd(&config, id, "decline"),
        Command::Defer { id } => decide_cmd(&config, id, "defer"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("update-agent: error: {}", error_report::Report(e.as_ref()));
            ExitCode::from(1)
        }
    }
}
