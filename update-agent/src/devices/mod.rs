//! Finding devices: DFU-capable USB devices (to flash) and HID telephony
//! devices (usage page 0x0B, ours and other vendors', for inventory), merged
//! into one [`DeviceReport`] per physical device.
//!
//! A [`DeviceBackend`] supplies both views. [`UsbDevices`] reads real hardware
//! (rusb + hidapi); [`SimDevices`] reads the `test-devices` virtual bus, for
//! tests and the demo. Which one runs is configuration, not code.

mod sim;
#[cfg(feature = "hardware")]
mod usb;

use std::collections::BTreeMap;

use catalog::protocol::{Battery, DeviceReport, DfuState};
use dfu::host::{Backend, DeviceInfo, DfuMode, TransportError};

pub use sim::{
    actions_dir, hid_by_name, profile_by_name, queue_action, ParseActionError, QueueActionError,
    SimAction, SimDevices, ACTIONS_DIR, ACTION_SUFFIX, HID_NAMES, PROFILE_NAMES, REJECTED_SUFFIX,
};
#[cfg(feature = "hardware")]
pub use usb::UsbDevices;

/// HID usage page "Telephony".
pub const TELEPHONY_USAGE_PAGE: u16 = 0x0B;

/// A HID device on the telephony usage page, as a scan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelephonyDevice {
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
    /// bcdDevice.
    pub bcd_device: u16,
    /// Manufacturer string.
    pub manufacturer: Option<String>,
    /// Product string.
    pub product: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// Firmware version the device reports (vendor protocol), if known.
    pub version: Option<String>,
    /// Battery, if the device reports it.
    pub battery: Option<Battery>,
    /// A call is active.
    pub in_call: bool,
    /// Port path.
    pub port_path: Option<String>,
}

/// Why a scan failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The USB layer failed.
    #[error("USB: {0}")]
    Usb(#[from] TransportError),
    /// The HID layer failed.
    #[error("HID: {0}")]
    Hid(String),
}

/// Where devices come from.
pub trait DeviceBackend {
    /// The DFU side (enumerate, open, hotplug).
    type Dfu: Backend;

    /// The DFU backend, to open devices for flashing.
    fn dfu(&self) -> &Self::Dfu;

    /// HID devices on the telephony usage page.
    fn telephony(&self) -> Result<Vec<TelephonyDevice>, BackendError>;

    /// Everything attached, one report per physical device.
    fn inventory(&self) -> Result<Vec<DeviceReport>, BackendError> {
        Ok(merge(&self.dfu().devices()?, &self.telephony()?))
    }
}

/// Merges the DFU and HID views: a device seen by both (same vendor and
/// serial, or same vendor and port path) becomes one report.
pub fn merge(dfu: &[DeviceInfo], hid: &[TelephonyDevice]) -> Vec<DeviceReport> {
    let mut out: BTreeMap<String, DeviceReport> = BTreeMap::new();
    for d in dfu {
        let report = DeviceReport {
            vendor_id: d.vendor_id,
            product_id: d.product_id,
            bcd_device: d.bcd_device,
            serial: d.serial.clone(),
            port_path: d.port_path.clone(),
            manufacturer: None,
            product: d.product.clone(),
            firmware_version: None,
            dfu: match d.mode() {
                Some(DfuMode::Runtime) => DfuState::Runtime,
                Some(DfuMode::Dfu) => DfuState::DfuMode,
                None => DfuState::None,
            },
            telephony: false,
            battery: None,
            in_call: false,
        };
        out.insert(report.identity(), report);
    }
    for h in hid {
        let report = DeviceReport {
            vendor_id: h.vendor_id,
            product_id: h.product_id,
            bcd_device: h.bcd_device,
            serial: h.serial.clone(),
            port_path: h.port_path.clone(),
            manufacturer: h.manufacturer.clone(),
            product: h.product.clone(),
            firmware_version: h.version.clone(),
            dfu: DfuState::None,
            telephony: true,
            battery: h.battery,
            in_call: h.in_call,
        };
        match out.get_mut(&report.identity()) {
            Some(existing) => {
                existing.telephony = true;
                existing.manufacturer = report.manufacturer;
                existing.product = report.product.or(existing.product.take());
                existing.firmware_version = report.firmware_version;
                existing.battery = report.battery;
                existing.in_call = report.in_call;
            }
            None => {
                out.insert(report.identity(), report);
            }
        }
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests;
