//! The simulated backend: devices on a `test-devices` virtual bus.
//!
//! With `[simulated] state_dir`, a test in another process acts as the user
//! at the desk through `<state_dir>/actions/` (see [`queue_action`]): the
//! backend applies the pending action files at every scan, so the real
//! `update-agent run` binary sees a replug or a call as it would on a desk.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use catalog::protocol::{Battery, DeviceReport};
use dfu::host::Backend;
use test_devices::{
    DeviceId, DeviceStore, FirmwareVersion, HidTelephonyDevice, SimDevice, VirtualBus,
};

use super::{merge, BackendError, DeviceBackend, TelephonyDevice};
use crate::config::{ConfigError, SimulatedDevice};

pub use test_devices::profile::{by_name as profile_by_name, PROFILE_NAMES};

/// The HID-only telephony devices a config may name.
pub const HID_NAMES: [&str; 3] = [
    "our_wireless_headset",
    "other_vendor_headset",
    "other_vendor_speakerphone_no_serial",
];

/// A HID telephony device by constructor name.
pub fn hid_by_name(name: &str) -> Option<HidTelephonyDevice> {
    match name {
        "our_wireless_headset" => Some(HidTelephonyDevice::our_wireless_headset()),
        "other_vendor_headset" => Some(HidTelephonyDevice::other_vendor_headset()),
        "other_vendor_speakerphone_no_serial" => {
            Some(HidTelephonyDevice::other_vendor_speakerphone_no_serial())
        }
        _ => None,
    }
}

fn parse_version(v: &str) -> Option<FirmwareVersion> {
    let mut parts = v.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next()?.parse().ok()?;
    parts
        .next()
        .is_none()
        .then(|| FirmwareVersion::new(major, minor, patch))
}

/// The directory under `[simulated] state_dir` that holds pending user actions.
pub const ACTIONS_DIR: &str = "actions";
/// The suffix of a pending action file; anything else in the directory is left alone.
pub const ACTION_SUFFIX: &str = ".action";
/// Appended to an action file the backend could not apply.
pub const REJECTED_SUFFIX: &str = ".rejected";
/// What an action file is renamed to while one process applies it.
const CLAIMED_SUFFIX: &str = ".applying";
/// An action is one short line.
const MAX_ACTION_BYTES: u64 = 256;

/// What the user at the desk does to a simulated device, named by its serial
/// (the `[[simulated.devices]] serial`, else the model's own).
///
/// One action file holds one line, as `Display` writes it and `FromStr` reads it:
/// `unplug SERIAL`, `plug SERIAL`, `replug SERIAL`, `call SERIAL on`, `call SERIAL off`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimAction {
    /// Pulls the cable: the device loses power and leaves the bus.
    Unplug {
        /// The device's serial.
        serial: String,
    },
    /// Plugs it back in: it powers on (the application its flash holds if
    /// valid, else the bootloader) and enumerates.
    Plug {
        /// The device's serial.
        serial: String,
    },
    /// Unplugs and plugs it again (what the agent asks for after some flashes).
    Replug {
        /// The device's serial.
        serial: String,
    },
    /// A call starts (`active`) or ends on the device; the agent's in-call
    /// guard reads this through the device's telephony interface.
    Call {
        /// The device's serial.
        serial: String,
        /// Whether a call is active from now on.
        active: bool,
    },
}

impl SimAction {
    /// The serial of the device the action is for.
    pub fn serial(&self) -> &str {
        match self {
            Self::Unplug { serial }
            | Self::Plug { serial }
            | Self::Replug { serial }
            | Self::Call { serial, .. } => serial,
        }
    }

    fn verb(&self) -> &'static str {
        match self {
            Self::Unplug { .. } => "unplug",
            Self::Plug { .. } => "plug",
            Self::Replug { .. } => "replug",
            Self::Call { .. } => "call",
        }
    }

    fn apply(&self, bus: &VirtualBus, id: DeviceId) {
        match self {
            Self::Unplug { .. } => bus.unplug(id),
            Self::Plug { .. } => bus.plug(id),
            Self::Replug { .. } => bus.replug(id),
            // The slot's call state is what the telephony view (and so the
            // inventory's `in_call`, which the guard reads) reports.
            Self::Call { active, .. } => bus.set_in_call(id, *active),
        }
    }
}

impl fmt::Display for SimAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb(), self.serial())?;
        match self {
            Self::Call { active: true, .. } => f.write_str(" on"),
            Self::Call { active: false, .. } => f.write_str(" off"),
            _ => Ok(()),
        }
    }
}

/// Why a line is not a [`SimAction`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseActionError {
    /// Nothing but white space.
    #[error("empty action")]
    Empty,
    /// More than one non-empty line (one action per file).
    #[error("more than one line; one action per file")]
    SeveralLines,
    /// The first word is not an action.
    #[error("unknown action {0:?}; one of unplug, plug, replug, call")]
    UnknownVerb(String),
    /// The words after the action do not fit it.
    #[error("{line:?} does not fit `{usage}`")]
    Usage {
        /// The line.
        line: String,
        /// What fits.
        usage: &'static str,
    },
}

impl FromStr for SimAction {
    type Err = ParseActionError;

    /// One action; surrounding white space (a trailing newline) is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut lines = s.lines().filter(|l| !l.trim().is_empty());
        let line = lines.next().ok_or(ParseActionError::Empty)?.trim();
        if lines.next().is_some() {
            return Err(ParseActionError::SeveralLines);
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let usage = |usage| ParseActionError::Usage {
            line: line.to_owned(),
            usage,
        };
        let serial = |s: &str| s.to_owned();
        match words.as_slice() {
            ["unplug", s] => Ok(Self::Unplug { serial: serial(s) }),
            ["plug", s] => Ok(Self::Plug { serial: serial(s) }),
            ["replug", s] => Ok(Self::Replug { serial: serial(s) }),
            ["call", s, "on"] => Ok(Self::Call {
                serial: serial(s),
                active: true,
            }),
            ["call", s, "off"] => Ok(Self::Call {
                serial: serial(s),
                active: false,
            }),
            ["unplug", ..] => Err(usage("unplug SERIAL")),
            ["plug", ..] => Err(usage("plug SERIAL")),
            ["replug", ..] => Err(usage("replug SERIAL")),
            ["call", ..] => Err(usage("call SERIAL on|off")),
            [verb, ..] => Err(ParseActionError::UnknownVerb((*verb).to_owned())),
            [] => Err(ParseActionError::Empty),
        }
    }
}

/// Why an action could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum QueueActionError {
    /// The serial would not survive the one-line format.
    #[error("serial {0:?} is empty or contains white space")]
    Serial(String),
    /// The actions directory or the file could not be written.
    #[error("cannot queue an action in {path}: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// `<state_dir>/actions`: where [`queue_action`] drops action files for the
/// simulated devices kept in `state_dir` (`[simulated] state_dir`).
pub fn actions_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(ACTIONS_DIR)
}

/// Queues `action` for the agent whose `[simulated] state_dir` is
/// `state_dir`, as the user at the desk would do it; the agent applies it at
/// its next device scan (within a scan interval, or at once before a pass).
///
/// The file is written under a temporary name and linked into place as
/// `NNNNNN-<verb>.action`, numbered after every file already there, so the
/// agent never reads half a line and applies actions in the order they were
/// queued. Returns the file's path; once the agent has applied it the file
/// is gone, and if it could not (an unknown serial) it is renamed to
/// `<name>.rejected` and the agent logs a warning.
pub fn queue_action(state_dir: &Path, action: &SimAction) -> Result<PathBuf, QueueActionError> {
    let serial = action.serial();
    if serial.is_empty() || serial.chars().any(char::is_whitespace) {
        return Err(QueueActionError::Serial(serial.to_owned()));
    }
    let dir = actions_dir(state_dir);
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| QueueActionError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let mut next = last_number(&dir).map_err(io_err(&dir))? + 1;
    // tempfile's names start with `.tmp` and never end in `.action`.
    let mut file = tempfile::NamedTempFile::new_in(&dir).map_err(io_err(&dir))?;
    file.write_all(format!("{action}\n").as_bytes())
        .and_then(|()| file.as_file().sync_all())
        .map_err(io_err(file.path()))?;
    loop {
        let path = dir.join(format!("{next:06}-{}{ACTION_SUFFIX}", action.verb()));
        // No-clobber: another queuer that took this number keeps its file.
        match file.persist_noclobber(&path) {
            Ok(_) => return Ok(path),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
                file = e.file;
                next += 1;
            }
            Err(e) => return Err(io_err(&path)(e.error)),
        }
    }
}

/// The highest leading number of a file name in `dir` (0 if none).
fn last_number(dir: &Path) -> io::Result<u64> {
    let mut last = 0;
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let digits: String = name
            .to_string_lossy()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(n) = digits.parse::<u64>() {
            last = last.max(n);
        }
    }
    Ok(last)
}

/// The actions channel of a bus opened with a state directory.
#[derive(Debug)]
struct Actions {
    dir: PathBuf,
    /// The configured devices by the serial they report.
    serials: BTreeMap<String, Vec<DeviceId>>,
    /// One pass at a time: clones of the backend (the daemon's scan and the
    /// pipeline) share the bus, and an action must be applied once.
    pass: Mutex<()>,
}

impl Actions {
    /// Applies the pending action files in file-name order; returns what was applied.
    fn apply(&self, bus: &VirtualBus) -> Vec<SimAction> {
        let _pass = self.pass.lock().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<String> = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(ACTION_SUFFIX))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read the simulated devices' actions");
                return Vec::new();
            }
        };
        names.sort();
        let mut applied = Vec::new();
        for name in names {
            let path = self.dir.join(&name);
            // Claimed by a rename before anything else: of several
            // processes (the daemon, `status`), one applies it, once; one
            // that cannot be claimed is left alone, never applied again.
            let claimed = self.dir.join(format!("{name}{CLAIMED_SUFFIX}"));
            if std::fs::rename(&path, &claimed).is_err() {
                continue;
            }
            match self.action(&claimed) {
                Ok((action, id)) => {
                    action.apply(bus, id);
                    tracing::info!(file = %name, %action, "simulated user action applied");
                    if let Err(e) = std::fs::remove_file(&claimed) {
                        tracing::warn!(file = %claimed.display(), error = %e, "cannot remove an applied simulated action");
                    }
                    applied.push(action);
                }
                Err(why) => {
                    let rejected = self.dir.join(format!("{name}{REJECTED_SUFFIX}"));
                    tracing::warn!(file = %path.display(), reason = %why, "simulated action rejected; renamed to {REJECTED_SUFFIX}");
                    if let Err(e) = std::fs::rename(&claimed, &rejected) {
                        tracing::warn!(file = %claimed.display(), error = %e, "cannot rename a rejected simulated action");
                    }
                }
            }
        }
        applied
    }

    /// The action in file `path` and the device it is for, or why not.
    fn action(&self, path: &Path) -> Result<(SimAction, DeviceId), String> {
        // A regular file of one short line: never a link out of the
        // directory, a device or a pipe.
        let meta = std::fs::symlink_metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
        if !meta.file_type().is_file() {
            return Err("not a regular file".into());
        }
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_ACTION_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| format!("cannot read it: {e}"))?;
        if bytes.len() as u64 > MAX_ACTION_BYTES {
            return Err(format!("longer than {MAX_ACTION_BYTES} bytes"));
        }
        let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
        let action: SimAction = text.parse().map_err(|e: ParseActionError| e.to_string())?;
        match self.serials.get(action.serial()).map(Vec::as_slice) {
            Some([id]) => Ok((action, *id)),
            Some(ids) => Err(format!(
                "serial {:?} names {} simulated devices",
                action.serial(),
                ids.len()
            )),
            None => Err(format!(
                "no simulated device has serial {:?}; known: {}",
                action.serial(),
                self.serials.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }
}

/// Devices on a virtual bus (tests, the demo, the fleet simulator).
#[derive(Debug, Clone)]
pub struct SimDevices {
    bus: VirtualBus,
    actions: Option<Arc<Actions>>,
}

impl SimDevices {
    /// Reads devices from `bus`.
    pub fn new(bus: VirtualBus) -> Self {
        Self { bus, actions: None }
    }

    /// A new bus with the devices a config lists (`[[simulated.devices]]`).
    pub fn from_config(devices: &[SimulatedDevice]) -> Result<Self, ConfigError> {
        Self::open(devices, None, None)
    }

    /// A new bus with the devices a config lists; with `state_dir`, each DFU
    /// device keeps its state there (mode, flash, version, download
    /// progress: what a real device keeps when the host crashes), loaded at
    /// start and written atomically on every change. `freeze_after` is the
    /// crash-test hook of [`DeviceStore::freeze_after_bytes_written`].
    ///
    /// With `state_dir`, every scan first applies the actions queued in
    /// `<state_dir>/actions` ([`queue_action`]).
    pub fn open(
        devices: &[SimulatedDevice],
        state_dir: Option<&Path>,
        freeze_after: Option<u64>,
    ) -> Result<Self, ConfigError> {
        let invalid = |why: String| ConfigError::Invalid {
            what: "simulated device",
            why,
        };
        let bus = match state_dir {
            None if freeze_after.is_some() => {
                return Err(ConfigError::Invalid {
                    what: "simulated.freeze_after_bytes_written",
                    why: "needs simulated.state_dir".into(),
                })
            }
            None => VirtualBus::new(),
            Some(dir) => {
                let store = DeviceStore::open(dir).map_err(|e| ConfigError::Invalid {
                    what: "simulated.state_dir",
                    why: e.to_string(),
                })?;
                VirtualBus::with_store(match freeze_after {
                    Some(n) => store.freeze_after_bytes_written(n),
                    None => store,
                })
            }
        };
        let mut keys = BTreeSet::new();
        let mut serials: BTreeMap<String, Vec<DeviceId>> = BTreeMap::new();
        for d in devices {
            match (&d.profile, &d.hid) {
                (Some(name), None) => {
                    let mut p = profile_by_name(name).ok_or_else(|| {
                        invalid(format!(
                            "unknown profile {name:?}; one of {}",
                            PROFILE_NAMES.join(", ")
                        ))
                    })?;
                    if let Some(serial) = &d.serial {
                        p = p.with_serial(serial);
                    }
                    if let Some(v) = &d.version {
                        let v = parse_version(v).ok_or_else(|| {
                            invalid(format!("version {v:?} is not major.minor.patch"))
                        })?;
                        p = p.with_version(v);
                    }
                    // One state per physical device: vendor, product and serial.
                    let key = format!(
                        "{:04x}-{:04x}-{}",
                        p.vendor_id,
                        p.runtime_pid,
                        p.serial.as_deref().unwrap_or(name)
                    );
                    if state_dir.is_some() && !keys.insert(key.clone()) {
                        return Err(invalid(format!(
                            "two simulated devices are both {key}; give them different serials"
                        )));
                    }
                    let serial = p.serial.clone();
                    let id = bus
                        .attach_persistent(SimDevice::new(p), &key)
                        .map_err(|e| invalid(e.to_string()))?;
                    if let Some(serial) = serial {
                        serials.entry(serial).or_default().push(id);
                    }
                }
                (None, Some(name)) => {
                    let mut h = hid_by_name(name).ok_or_else(|| {
                        invalid(format!(
                            "unknown hid device {name:?}; one of {}",
                            HID_NAMES.join(", ")
                        ))
                    })?;
                    if let Some(serial) = &d.serial {
                        h.info.serial = Some(serial.clone());
                    }
                    if let Some(v) = &d.version {
                        h.info.version = v.clone();
                    }
                    let serial = h.info.serial.clone();
                    let id = bus.attach_hid(h);
                    if let Some(serial) = serial {
                        serials.entry(serial).or_default().push(id);
                    }
                }
                _ => {
                    return Err(invalid(
                        "each [[simulated.devices]] names exactly one of profile or hid".into(),
                    ))
                }
            }
        }
        Ok(Self {
            bus,
            actions: state_dir.map(|dir| {
                Arc::new(Actions {
                    dir: actions_dir(dir),
                    serials,
                    pass: Mutex::new(()),
                })
            }),
        })
    }

    /// The bus, for tests that plug and unplug devices.
    pub fn bus(&self) -> &VirtualBus {
        &self.bus
    }

    /// Applies the actions queued for this bus ([`queue_action`]), in
    /// file-name order, removing each file once applied and renaming one that
    /// cannot be applied to `<name>.rejected` (with a warning). Every scan
    /// does this first; nothing happens without `[simulated] state_dir` or
    /// without an actions directory. Returns the actions applied.
    pub fn apply_actions(&self) -> Vec<SimAction> {
        self.actions
            .as_ref()
            .map(|a| a.apply(&self.bus))
            .unwrap_or_default()
    }

    fn telephony_view(&self) -> Vec<TelephonyDevice> {
        self.bus
            .telephony_devices()
            .into_iter()
            .map(|(_, t)| TelephonyDevice {
                vendor_id: t.vendor_id,
                product_id: t.product_id,
                bcd_device: 0,
                manufacturer: Some(t.manufacturer),
                product: Some(t.product),
                serial: t.serial,
                version: Some(t.version),
                battery: t.battery.map(|b| match b {
                    test_devices::Battery::TalkTimeMinutes(m) => Battery::TalkTimeMinutes(m),
                    test_devices::Battery::RoughPercent(p) => Battery::RoughPercent(p),
                }),
                in_call: t.in_call,
                port_path: t.port_path,
            })
            .collect()
    }
}

impl DeviceBackend for SimDevices {
    type Dfu = VirtualBus;

    fn dfu(&self) -> &VirtualBus {
        &self.bus
    }

    fn telephony(&self) -> Result<Vec<TelephonyDevice>, BackendError> {
        self.apply_actions();
        Ok(self.telephony_view())
    }

    /// Applies queued actions once, then reads both views of the same bus
    /// state (the default would read the DFU view before the actions).
    fn inventory(&self) -> Result<Vec<DeviceReport>, BackendError> {
        self.apply_actions();
        Ok(merge(&self.bus.devices()?, &self.telephony_view()))
    }
}

#[cfg(test)]
mod persist_tests {
    use catalog::protocol::DfuState;
    use dfu::host::DfuMode;
    use test_devices::DeviceSnapshot;

    use super::*;
    use crate::devices::DeviceBackend;

    fn headset(serial: &str) -> SimulatedDevice {
        SimulatedDevice {
            profile: Some("headset_tolerant".into()),
            serial: Some(serial.into()),
            ..SimulatedDevice::default()
        }
    }

    #[test]
    fn simulated_devices_keep_their_state_in_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let devices = [headset("HS-1"), headset("HS-2")];
        let sim = SimDevices::open(&devices, Some(dir.path()), None).unwrap();
        assert_eq!(sim.inventory().unwrap().len(), 2);
        let store = DeviceStore::open(dir.path()).unwrap();
        let keys: Vec<String> = store.all().unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["1209-0003-HS-1", "1209-0003-HS-2"]);

        // HS-2 was left in DFU mode without an application by a killed process.
        let path = store.path("1209-0003-HS-2");
        let mut saved = DeviceSnapshot::read(&path).unwrap();
        saved.mode = DfuMode::Dfu;
        saved.app = None;
        saved.write(&path).unwrap();
        let again = SimDevices::open(&devices, Some(dir.path()), None).unwrap();
        let states: Vec<(Option<String>, DfuState)> = again
            .inventory()
            .unwrap()
            .into_iter()
            .map(|d| (d.serial, d.dfu))
            .collect();
        assert_eq!(
            states,
            [
                (Some("HS-1".into()), DfuState::Runtime),
                (Some("HS-2".into()), DfuState::DfuMode)
            ]
        );
    }

    #[test]
    fn persistence_settings_that_cannot_work_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let twice = [headset("HS-1"), headset("HS-1")];
        let e = SimDevices::open(&twice, Some(dir.path()), None).unwrap_err();
        assert!(e.to_string().contains("both 1209-0003-HS-1"), "{e}");
        let e = SimDevices::open(&[headset("HS-1")], None, Some(10)).unwrap_err();
        assert!(e.to_string().contains("needs simulated.state_dir"), "{e}");
        // A corrupt saved state is an error, not a fresh device.
        std::fs::write(dir.path().join("1209-0003-HS-1.simdev"), b"garbage").unwrap();
        let e = SimDevices::open(&[headset("HS-1")], Some(dir.path()), None).unwrap_err();
        assert!(
            e.to_string().contains("not a simulated device state"),
            "{e}"
        );
    }
}
