//! The simulated backend: devices on a `test-devices` virtual bus.

use std::collections::BTreeSet;
use std::path::Path;

use catalog::protocol::Battery;
use test_devices::{
    DeviceStore, FirmwareVersion, HidTelephonyDevice, ModelProfile, SimDevice, VirtualBus,
};

use super::{BackendError, DeviceBackend, TelephonyDevice};
use crate::config::{ConfigError, SimulatedDevice};

/// The DFU model profiles a config may name (`test_devices::ModelProfile` constructors).
pub const PROFILE_NAMES: [&str; 15] = [
    "headset_needs_replug",
    "headset_tolerant",
    "dfuse_speakerphone",
    "base_station",
    "usb_dongle",
    "desk_phone_no_pid_change",
    "slow_conference_bar",
    "bogus_poll_timeout",
    "zero_poll_timeout",
    "manifest_polling",
    "extra_reset",
    "broken_upload",
    "small_blocks",
    "silent_detach",
    "slow_reenumeration",
];

/// The HID-only telephony devices a config may name.
pub const HID_NAMES: [&str; 3] = [
    "our_wireless_headset",
    "other_vendor_headset",
    "other_vendor_speakerphone_no_serial",
];

/// A model profile by constructor name.
pub fn profile_by_name(name: &str) -> Option<ModelProfile> {
    let position = PROFILE_NAMES.iter().position(|n| *n == name)?;
    // `all_profiles` lists the constructors in the order of PROFILE_NAMES.
    test_devices::profile::all_profiles()
        .into_iter()
        .nth(position)
}

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

/// Devices on a virtual bus (tests, the demo, the fleet simulator).
#[derive(Debug, Clone)]
pub struct SimDevices {
    bus: VirtualBus,
}

impl SimDevices {
    /// Reads devices from `bus`.
    pub fn new(bus: VirtualBus) -> Self {
        Self { bus }
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
                    bus.attach_persistent(SimDevice::new(p), &key)
                        .map_err(|e| invalid(e.to_string()))?;
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
                    bus.attach_hid(h);
                }
                _ => {
                    return Err(invalid(
                        "each [[simulated.devices]] names exactly one of profile or hid".into(),
                    ))
                }
            }
        }
        Ok(Self::new(bus))
    }

    /// The bus, for tests that plug and unplug devices.
    pub fn bus(&self) -> &VirtualBus {
        &self.bus
    }
}

impl DeviceBackend for SimDevices {
    type Dfu = VirtualBus;

    fn dfu(&self) -> &VirtualBus {
        &self.bus
    }

    fn telephony(&self) -> Result<Vec<TelephonyDevice>, BackendError> {
        Ok(self
            .bus
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
            .collect())
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
