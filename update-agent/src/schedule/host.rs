//! The host's side of the guards: whether it is about to sleep or shut down
//! (a flash must not start then), and which user sessions exist (a new one
//! is a login: persistent updates and replug requests are shown again).
//!
//! [`HostState`] is a trait so tests use [`SimulatedHost`]. On Linux,
//! [`LogindFiles`] reads the files systemd-logind keeps under `/run/systemd`
//! (a scheduled shutdown in `/run/systemd/shutdown/scheduled`, the sessions
//! in `/run/systemd/sessions/<id>`) and asks logind for its
//! `PreparingForSleep` / `PreparingForShutdown` properties with `busctl`
//! (systemd's own D-Bus client, present wherever logind runs) when a flash
//! is about to start: one short process per decision instead of a D-Bus
//! library in the agent. Without `busctl` (or logind), only the files count.

use std::path::PathBuf;
use std::sync::Mutex;

/// Whether the host can finish a flash started now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    /// On and staying on.
    #[default]
    Awake,
    /// About to suspend.
    GoingToSleep,
    /// Shutting down or rebooting (also: one is scheduled).
    ShuttingDown,
}

impl PowerState {
    /// Why no flash starts, if one must not.
    pub fn guard(self) -> Option<&'static str> {
        match self {
            Self::Awake => None,
            Self::GoingToSleep => {
                Some("the host is going to sleep; the update waits until it is awake")
            }
            Self::ShuttingDown => {
                Some("the host is shutting down; the update waits until it is back")
            }
        }
    }
}

/// The host's power state and user sessions.
pub trait HostState: Send + Sync {
    /// The power state now.
    fn power(&self) -> PowerState;

    /// Ids of the user sessions that exist now (a new id is a login).
    fn sessions(&self) -> Vec<String>;
}

/// Never sleeping, no sessions known (platforms without an implementation).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysAwake;

impl HostState for AlwaysAwake {
    fn power(&self) -> PowerState {
        PowerState::Awake
    }

    fn sessions(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A host the test sets (power state, sessions).
#[derive(Debug, Default)]
pub struct SimulatedHost {
    inner: Mutex<(PowerState, Vec<String>)>,
}

impl SimulatedHost {
    /// An awake host without sessions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the power state.
    pub fn set_power(&self, power: PowerState) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0 = power;
    }

    /// A user logs in (session `id`).
    pub fn login(&self, id: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !g.1.iter().any(|s| s == id) {
            g.1.push(id.to_owned());
        }
    }

    /// Session `id` ends.
    pub fn logout(&self, id: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .retain(|s| s != id);
    }
}

impl HostState for SimulatedHost {
    fn power(&self) -> PowerState {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    fn sessions(&self) -> Vec<String> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }
}

/// systemd-logind's runtime files (Linux). See the module docs for what is
/// and is not detected.
#[derive(Debug, Clone)]
pub struct LogindFiles {
    root: PathBuf,
    /// Reads a boolean property of logind's manager object (`None`: unknown).
    property: fn(&str) -> Option<bool>,
}

impl Default for LogindFiles {
    fn default() -> Self {
        Self::new("/run/systemd")
    }
}

impl LogindFiles {
    /// Reads the files under `root` (normally `/run/systemd`) and asks
    /// logind over `busctl`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            property: busctl_property,
        }
    }

    /// Reads logind's properties with `property` instead of `busctl` (tests).
    pub fn with_property_reader(mut self, property: fn(&str) -> Option<bool>) -> Self {
        self.property = property;
        self
    }
}

/// `busctl get-property` of a boolean on logind's manager; `None` when
/// busctl or logind is not there or answers something else.
fn busctl_property(name: &str) -> Option<bool> {
    let out = std::process::Command::new("busctl")
        .args([
            "get-property",
            "org.freedesktop.login1",
            "/org/freedesktop/login1",
            "org.freedesktop.login1.Manager",
            name,
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_busctl_bool(&String::from_utf8_lossy(&out.stdout))
}

/// `b true` / `b false`, as `busctl get-property` prints a boolean.
fn parse_busctl_bool(out: &str) -> Option<bool> {
    match out.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["b", "true"] => Some(true),
        ["b", "false"] => Some(false),
        _ => None,
    }
}

impl HostState for LogindFiles {
    fn power(&self) -> PowerState {
        if self.root.join("shutdown/scheduled").exists()
            || (self.property)("PreparingForShutdown") == Some(true)
        {
            PowerState::ShuttingDown
        } else if (self.property)("PreparingForSleep") == Some(true) {
            PowerState::GoingToSleep
        } else {
            PowerState::Awake
        }
    }

    fn sessions(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.root.join("sessions")) else {
            return Vec::new();
        };
        let mut out: Vec<String> = dir
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            // `<id>.ref` files are references, not sessions.
            .filter(|n| !n.contains('.'))
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busctl_booleans_are_parsed_and_anything_else_is_unknown() {
        for (out, want) in [
            ("b true\n", Some(true)),
            ("b false\n", Some(false)),
            ("b  true", Some(true)),
            ("s \"true\"\n", None),
            ("", None),
            ("b maybe", None),
            ("b true extra", None),
        ] {
            assert_eq!(parse_busctl_bool(out), want, "{out:?}");
        }
    }

    #[test]
    fn logind_sleep_and_shutdown_properties_hold_a_flash() {
        let dir = tempfile::tempdir().unwrap();
        let host = |reader: fn(&str) -> Option<bool>| {
            LogindFiles::new(dir.path())
                .with_property_reader(reader)
                .power()
        };
        assert_eq!(host(|_| None), PowerState::Awake);
        assert_eq!(host(|_| Some(false)), PowerState::Awake);
        assert_eq!(
            host(|p| Some(p == "PreparingForSleep")),
            PowerState::GoingToSleep
        );
        assert_eq!(
            host(|p| Some(p == "PreparingForShutdown")),
            PowerState::ShuttingDown
        );
        // A scheduled shutdown counts even when logind cannot be asked.
        std::fs::create_dir_all(dir.path().join("shutdown")).unwrap();
        std::fs::write(dir.path().join("shutdown/scheduled"), "USEC=1\n").unwrap();
        assert_eq!(host(|_| None), PowerState::ShuttingDown);
    }

    #[test]
    fn logind_files_give_sessions_and_scheduled_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let host = LogindFiles::new(dir.path());
        assert_eq!(host.power(), PowerState::Awake);
        assert!(host.sessions().is_empty());
        std::fs::create_dir_all(dir.path().join("sessions")).unwrap();
        for f in ["3", "c1", "3.ref"] {
            std::fs::write(dir.path().join("sessions").join(f), "UID=1000\n").unwrap();
        }
        assert_eq!(host.sessions(), ["3", "c1"]);
        std::fs::create_dir_all(dir.path().join("shutdown")).unwrap();
        std::fs::write(
            dir.path().join("shutdown/scheduled"),
            "USEC=1\nMODE=poweroff\n",
        )
        .unwrap();
        assert_eq!(host.power(), PowerState::ShuttingDown);
    }

    #[test]
    fn simulated_host_and_guard_texts() {
        let h = SimulatedHost::new();
        h.login("1");
        h.login("1");
        h.login("2");
        h.logout("1");
        assert_eq!(h.sessions(), ["2"]);
        let cases = [
            (PowerState::Awake, None),
            (
                PowerState::GoingToSleep,
                Some("the host is going to sleep; the update waits until it is awake"),
            ),
            (
                PowerState::ShuttingDown,
                Some("the host is shutting down; the update waits until it is back"),
            ),
        ];
        for (p, want) in cases {
            h.set_power(p);
            assert_eq!(h.power().guard(), want);
        }
        assert_eq!(AlwaysAwake.power(), PowerState::Awake);
    }
}
