//! Configuration: the installer parameters (`TENANT_ID`, `SERVER_URL`,
//! `TENANT_TOKEN`), the state directory, the device backend and timings.
//!
//! Each setting comes from the first of: a command-line argument, the
//! environment, the TOML config file (`--config FILE`, written by an
//! installer), a built-in default. Empty values count as unset.
//!
//! ```toml
//! tenant_id = "3f2a9c0d4e5b6a71"
//! server_url = "https://updates.example.com"
//! tenant_token = "upde_…"
//! state_dir = "/var/lib/update-agent"     # default
//! ca_cert = "/etc/update-agent/ca.pem"    # optional: trust this CA/certificate too
//! backend = "hardware"                    # or "simulated"
//! poll_interval_secs = 21600              # default 6 h
//! scan_interval_secs = 60                 # default 1 min
//! window_spread_secs = 600                # check in up to this long before a maintenance window
//! notify_command = ["/usr/libexec/acme-notify", "--app", "updates"]  # optional; no shell
//!
//! [simulated]                             # only with backend = "simulated"
//! state_dir = "/var/lib/update-agent/sim" # optional: devices keep their flash across restarts;
//!                                         # tests act as the user through <state_dir>/actions/
//!
//! [simulated.clock]                       # optional: run `speed` times faster than real time,
//! start = "2027-03-27T22:00:00Z"          # from `start` at `real_start` (the server gets the
//! real_start = "2026-11-23T04:00:00Z"     # same values as `serve --simulated-clock`)
//! speed = 600
//!
//! [[simulated.devices]]
//! profile = "headset_tolerant"            # a test_devices::ModelProfile constructor
//! serial = "SN-1"                         # optional
//! version = "1.2.0"                       # optional initial firmware
//! [[simulated.devices]]
//! hid = "other_vendor_headset"            # a HidTelephonyDevice constructor
//! ```
//!
//! With `[simulated] state_dir`, a test in another process acts as the user
//! at the desk through `<state_dir>/actions/`: one file per action, written
//! under a temporary name and renamed to `NNNNNN-anything.action`, holding
//! one line: `unplug SERIAL`, `plug SERIAL`, `replug SERIAL`,
//! `call SERIAL on` or `call SERIAL off` (SERIAL as in
//! `[[simulated.devices]] serial`, else the model's own). The agent applies
//! pending files in file-name order at every device scan and removes them; a
//! file it cannot apply (malformed, unknown serial) becomes
//! `<name>.rejected`, with a warning. Every process opening the simulated
//! devices with this `state_dir` takes the pending actions, `status` and
//! `check-now` included. [`crate::devices::queue_action`] writes one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Environment variable names (the installer parameters keep their names).
pub mod env {
    /// The tenant id.
    pub const TENANT_ID: &str = "TENANT_ID";
    /// The server's base URL.
    pub const SERVER_URL: &str = "SERVER_URL";
    /// The tenant's enrollment token.
    pub const TENANT_TOKEN: &str = "TENANT_TOKEN";
    /// The fingerprint of the catalog's first root (`catalog keys list`).
    pub const CATALOG_ROOT_SHA256: &str = "CATALOG_ROOT_SHA256";
    /// The SHA-256 of the server's TLS certificate (DER), checked at enrollment.
    pub const SERVER_CERT_SHA256: &str = "SERVER_CERT_SHA256";
    /// The state directory.
    pub const STATE_DIR: &str = "UPDATE_AGENT_STATE_DIR";
    /// The config file.
    pub const CONFIG: &str = "UPDATE_AGENT_CONFIG";
}

/// The state directory when nothing names one.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/update-agent";
/// Seconds between device scans when nothing says otherwise.
pub const DEFAULT_SCAN_INTERVAL_SECS: u64 = 60;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The config file is not valid.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// An installer parameter is missing.
    #[error("{name} is not set: pass --{flag}, set the environment variable {name}, or put {key} in the config file")]
    Missing {
        /// The parameter (environment) name.
        name: &'static str,
        /// The command-line flag.
        flag: &'static str,
        /// The config file key.
        key: &'static str,
    },
    /// A setting has a value that cannot work.
    #[error("invalid {what}: {why}")]
    Invalid {
        /// The setting.
        what: &'static str,
        /// Why.
        why: String,
    },
}

/// Which devices the agent sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// Real USB and HID devices.
    #[default]
    Hardware,
    /// A simulated bus populated from `[[simulated.devices]]`.
    Simulated,
}

/// One simulated device: either a DFU model `profile` or a HID-only
/// telephony device `hid`, by constructor name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatedDevice {
    /// A `test_devices::ModelProfile` constructor name, e.g. `headset_tolerant`.
    pub profile: Option<String>,
    /// A `test_devices::HidTelephonyDevice` constructor name, e.g. `other_vendor_headset`.
    pub hid: Option<String>,
    /// Overrides the profile's serial number.
    pub serial: Option<String>,
    /// Overrides the profile's initial firmware version (`major.minor.patch`).
    pub version: Option<String>,
}

/// The `[simulated]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatedConfig {
    /// The devices on the simulated bus.
    #[serde(default)]
    pub devices: Vec<SimulatedDevice>,
    /// Where the simulated devices keep their state (mode, flash, version)
    /// across agent restarts, as real devices keep theirs; none: they start
    /// fresh with every process.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Crash-test hook: the simulated bus freezes (the agent hangs) once the
    /// devices' lifetime bytes written reach this many, right after that
    /// state was saved, and writes `frozen` into `state_dir`.
    #[serde(default)]
    pub freeze_after_bytes_written: Option<u64>,
    /// Simulation hook: an accelerated clock shared with a server started
    /// with the same `--simulated-clock`, so a night passes in seconds.
    /// Used only with `backend = "simulated"`.
    #[serde(default)]
    pub clock: Option<catalog::sim_clock::AcceleratedTime>,
}

/// The config file, as written by an installer. Every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `TENANT_ID`.
    pub tenant_id: Option<String>,
    /// `SERVER_URL`.
    pub server_url: Option<String>,
    /// `TENANT_TOKEN`.
    pub tenant_token: Option<String>,
    /// `CATALOG_ROOT_SHA256`.
    pub catalog_root_sha256: Option<String>,
    /// `SERVER_CERT_SHA256`.
    pub server_cert_sha256: Option<String>,
    /// The state directory.
    pub state_dir: Option<PathBuf>,
    /// An extra trusted certificate (PEM) for the server's TLS.
    pub ca_cert: Option<PathBuf>,
    /// The device backend.
    pub backend: Option<BackendKind>,
    /// Seconds between check-ins.
    pub poll_interval_secs: Option<u64>,
    /// Seconds between device scans.
    pub scan_interval_secs: Option<u64>,
    /// Longest time before a maintenance window this agent checks in
    /// (its own offset is derived from the SystemID).
    pub window_spread_secs: Option<u64>,
    /// Program and arguments run for each prompt (the prompt's kind and id
    /// are appended; the prompt is JSON on stdin). Never run through a shell.
    pub notify_command: Option<Vec<String>>,
    /// The simulated bus.
    #[serde(default)]
    pub simulated: SimulatedConfig,
}

impl FileConfig {
    /// Parses TOML text (`path` only names the file in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Reads and parses a config file.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }
}

/// What the command line gave (each `None` when the flag was absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--tenant-id`.
    pub tenant_id: Option<String>,
    /// `--server-url`.
    pub server_url: Option<String>,
    /// `--tenant-token`.
    pub tenant_token: Option<String>,
    /// `--catalog-root-sha256`.
    pub catalog_root_sha256: Option<String>,
    /// `--server-cert-sha256`.
    pub server_cert_sha256: Option<String>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
}

/// The effective configuration (its `Debug` output hides the token).
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// `TENANT_ID`, if given anywhere.
    pub tenant_id: Option<String>,
    /// `SERVER_URL`, if given anywhere.
    pub server_url: Option<String>,
    /// `TENANT_TOKEN`, if given anywhere.
    pub tenant_token: Option<String>,
    /// `CATALOG_ROOT_SHA256`, if given anywhere.
    pub catalog_root_sha256: Option<String>,
    /// `SERVER_CERT_SHA256`, if given anywhere.
    pub server_cert_sha256: Option<String>,
    /// The state directory.
    pub state_dir: PathBuf,
    /// An extra trusted certificate for the server.
    pub ca_cert: Option<PathBuf>,
    /// The device backend.
    pub backend: BackendKind,
    /// The simulated devices (with `backend = "simulated"`).
    pub simulated: Vec<SimulatedDevice>,
    /// `[simulated] state_dir`: where simulated devices keep their state.
    pub simulated_state_dir: Option<PathBuf>,
    /// `[simulated] freeze_after_bytes_written` (crash tests).
    pub simulated_freeze_after: Option<u64>,
    /// Time between check-ins.
    pub poll_interval: Duration,
    /// Time between device scans.
    pub scan_interval: Duration,
    /// Pre-window check-ins are spread over this long before the window.
    pub window_spread: Duration,
    /// The notification command, if any.
    pub notify_command: Option<Vec<String>>,
    /// The accelerated clock of `[simulated.clock]`.
    pub simulated_clock: Option<catalog::sim_clock::AcceleratedTime>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("tenant_id", &self.tenant_id)
            .field("server_url", &self.server_url)
            .field(
                "tenant_token",
                &self.tenant_token.as_ref().map(|_| "<redacted>"),
            )
            .field("catalog_root_sha256", &self.catalog_root_sha256)
            .field("server_cert_sha256", &self.server_cert_sha256)
            .field("state_dir", &self.state_dir)
            .field("ca_cert", &self.ca_cert)
            .field("backend", &self.backend)
            .field("simulated", &self.simulated)
            .field("simulated_state_dir", &self.simulated_state_dir)
            .field("simulated_freeze_after", &self.simulated_freeze_after)
            .field("poll_interval", &self.poll_interval)
            .field("scan_interval", &self.scan_interval)
            .field("window_spread", &self.window_spread)
            .field("notify_command", &self.notify_command)
            .field("simulated_clock", &self.simulated_clock)
            .finish()
    }
}

/// The three installer parameters, all present.
#[derive(Clone, PartialEq, Eq)]
pub struct InstallerParams {
    /// `TENANT_ID`.
    pub tenant_id: String,
    /// `SERVER_URL`, without a trailing slash.
    pub server_url: String,
    /// `TENANT_TOKEN`.
    pub tenant_token: String,
    /// `CATALOG_ROOT_SHA256`: the fingerprint of the catalog's first root
    /// (hex SHA-256 of its canonical `signed` object). With it, enrollment
    /// trusts only a root that chains from that one; without it, the first
    /// enrollment trusts the root the server sends (over TLS).
    pub catalog_root_sha256: Option<String>,
    /// `SERVER_CERT_SHA256`: the hex SHA-256 of the server's TLS
    /// certificate (DER); with it, enrollment talks only to that
    /// certificate (besides the usual chain and host name checks).
    pub server_cert_sha256: Option<String>,
}

impl std::fmt::Debug for InstallerParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallerParams")
            .field("tenant_id", &self.tenant_id)
            .field("server_url", &self.server_url)
            .field("tenant_token", &"<redacted>")
            .field("catalog_root_sha256", &self.catalog_root_sha256)
            .field("server_cert_sha256", &self.server_cert_sha256)
            .finish()
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

impl Config {
    /// Combines the sources: `args` > `env` > `file` > defaults. `env` looks
    /// up one variable (the real environment, or a table in tests).
    pub fn resolve(
        args: &Overrides,
        env: impl Fn(&str) -> Option<String>,
        file: FileConfig,
    ) -> Self {
        let pick = |arg: &Option<String>, name: &str, from_file: Option<String>| {
            non_empty(arg.clone())
                .or_else(|| non_empty(env(name)))
                .or_else(|| non_empty(from_file))
        };
        let state_dir = args
            .state_dir
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .or_else(|| non_empty(env(env::STATE_DIR)).map(PathBuf::from))
            .or(file.state_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        let secs = |v: Option<u64>, default: u64| Duration::from_secs(v.unwrap_or(default).max(1));
        Self {
            tenant_id: pick(&args.tenant_id, env::TENANT_ID, file.tenant_id),
            server_url: pick(&args.server_url, env::SERVER_URL, file.server_url),
            tenant_token: pick(&args.tenant_token, env::TENANT_TOKEN, file.tenant_token),
            catalog_root_sha256: pick(
                &args.catalog_root_sha256,
                env::CATALOG_ROOT_SHA256,
                file.catalog_root_sha256,
            ),
            server_cert_sha256: pick(
                &args.server_cert_sha256,
                env::SERVER_CERT_SHA256,
                file.server_cert_sha256,
            ),
            state_dir,
            ca_cert: file.ca_cert,
            backend: file.backend.unwrap_or_default(),
            simulated: file.simulated.devices,
            simulated_state_dir: file.simulated.state_dir,
            simulated_freeze_after: file.simulated.freeze_after_bytes_written,
            simulated_clock: file.simulated.clock,
            poll_interval: secs(
                file.poll_interval_secs,
                crate::schedule::DEFAULT_POLL_INTERVAL
                    .num_seconds()
                    .unsigned_abs(),
            ),
            scan_interval: secs(file.scan_interval_secs, DEFAULT_SCAN_INTERVAL_SECS),
            window_spread: Duration::from_secs(
                file.window_spread_secs.unwrap_or(
                    crate::schedule::windows::DEFAULT_WINDOW_SPREAD
                        .num_seconds()
                        .unsigned_abs(),
                ),
            ),
            notify_command: file.notify_command.filter(|argv| !argv.is_empty()),
        }
    }

    /// The clock the agent runs on: the system's, or the simulation's
    /// accelerated one, which only the simulated backend may use (a real
    /// device must never be scheduled by a fake time).
    pub fn clock(&self) -> Result<std::sync::Arc<dyn crate::clock::Clock>, ConfigError> {
        match (self.simulated_clock, self.backend) {
            (None, _) => Ok(std::sync::Arc::new(crate::clock::SystemClock)),
            (Some(t), BackendKind::Simulated) => {
                Ok(std::sync::Arc::new(crate::clock::AcceleratedClock(t)))
            }
            (Some(_), BackendKind::Hardware) => Err(ConfigError::Invalid {
                what: "[simulated.clock]",
                why: "an accelerated clock needs backend = \"simulated\"".into(),
            }),
        }
    }

    /// Reads the config file (if any) and the process environment.
    pub fn load(args: &Overrides, config_file: Option<&Path>) -> Result<Self, ConfigError> {
        let file = match config_file {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        Ok(Self::resolve(args, |name| std::env::var(name).ok(), file))
    }

    /// The installer parameters, or which one is missing.
    pub fn installer(&self) -> Result<InstallerParams, ConfigError> {
        let need = |v: &Option<String>, name, flag, key| {
            v.clone().ok_or(ConfigError::Missing { name, flag, key })
        };
        let tenant_id = need(&self.tenant_id, env::TENANT_ID, "tenant-id", "tenant_id")?;
        let server_url = need(
            &self.server_url,
            env::SERVER_URL,
            "server-url",
            "server_url",
        )?;
        let tenant_token = need(
            &self.tenant_token,
            env::TENANT_TOKEN,
            "tenant-token",
            "tenant_token",
        )?;
        let server_url = server_url.trim().trim_end_matches('/').to_owned();
        check_server_url(&server_url)?;
        let catalog_root_sha256 = sha256_pin(
            self.catalog_root_sha256.as_deref(),
            env::CATALOG_ROOT_SHA256,
            "`updater-server catalog keys list` prints it",
        )?;
        let server_cert_sha256 = sha256_pin(
            self.server_cert_sha256.as_deref(),
            env::SERVER_CERT_SHA256,
            "`openssl x509 -in cert.pem -outform der | sha256sum` computes it",
        )?;
        if server_cert_sha256.is_some() && !server_url.starts_with("https://") {
            return Err(ConfigError::Invalid {
                what: env::SERVER_CERT_SHA256,
                why: format!("a certificate pin needs an https SERVER_URL, not {server_url}"),
            });
        }
        Ok(InstallerParams {
            tenant_id: tenant_id.trim().to_owned(),
            server_url,
            tenant_token: tenant_token.trim().to_owned(),
            catalog_root_sha256,
            server_cert_sha256,
        })
    }
}

/// A hex SHA-256 pin (64 digits, any case, trimmed), lower-cased; `hint`
/// says where to get it.
fn sha256_pin(
    value: Option<&str>,
    what: &'static str,
    hint: &str,
) -> Result<Option<String>, ConfigError> {
    let Some(pin) = value else {
        return Ok(None);
    };
    let pin = pin.trim().to_ascii_lowercase();
    if pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ConfigError::Invalid {
            what,
            why: format!("{pin:?} is not 64 hexadecimal digits ({hint})"),
        });
    }
    Ok(Some(pin))
}

/// `SERVER_URL` must be https, except on a loopback address (a test or a
/// server on the same host): the enrollment token and the agent's
/// credential never cross a network in clear text.
pub fn check_server_url(server_url: &str) -> Result<(), ConfigError> {
    let invalid = |why: String| ConfigError::Invalid {
        what: "SERVER_URL",
        why,
    };
    let url = reqwest::Url::parse(server_url)
        .map_err(|e| invalid(format!("{server_url:?} is not a URL: {e}")))?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback());
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(invalid(format!(
            "{server_url:?}: plain http is allowed only to a loopback address; use https://"
        ))),
        _ => Err(invalid(format!(
            "{server_url:?} is not an http:// or https:// URL"
        ))),
    }
}

#[cfg(test)]
mod tests;
