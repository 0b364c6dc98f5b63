//! The simulated backend: devices on a `test-devices` virtual bus.

use catalog::protocol::Battery;
use test_devices::{FirmwareVersion, HidTelephonyDevice, ModelProfile, SimDevice, VirtualBus};

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
        let invalid = |why: String| ConfigError::Invalid {
            what: "simulated device",
            why,
        };
        let bus = VirtualBus::new();
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
                    bus.attach(SimDevice::new(p));
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
