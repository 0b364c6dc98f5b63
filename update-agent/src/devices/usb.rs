//! Real hardware: DFU devices through libusb (rusb), telephony devices
//! through hidapi (hidraw on Linux).

use std::sync::Mutex;

use dfu::usb::UsbBackend;

use super::{BackendError, DeviceBackend, TelephonyDevice, TELEPHONY_USAGE_PAGE};

/// Devices attached to this machine.
pub struct UsbDevices {
    usb: UsbBackend,
    hid: Mutex<hidapi::HidApi>,
}

impl std::fmt::Debug for UsbDevices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsbDevices").finish_non_exhaustive()
    }
}

impl UsbDevices {
    /// Opens libusb and hidapi.
    pub fn new() -> Result<Self, BackendError> {
        let usb = UsbBackend::new()?;
        let hid = hidapi::HidApi::new().map_err(|e| BackendError::Hid(e.to_string()))?;
        Ok(Self {
            usb,
            hid: Mutex::new(hid),
        })
    }
}

impl DeviceBackend for UsbDevices {
    type Dfu = UsbBackend;

    fn dfu(&self) -> &UsbBackend {
        &self.usb
    }

    fn telephony(&self) -> Result<Vec<TelephonyDevice>, BackendError> {
        let mut hid = self.hid.lock().unwrap_or_else(|p| p.into_inner());
        hid.refresh_devices()
            .map_err(|e| BackendError::Hid(e.to_string()))?;
        let mut out: Vec<TelephonyDevice> = Vec::new();
        for d in hid.device_list() {
            if d.usage_page() != TELEPHONY_USAGE_PAGE {
                continue;
            }
            let serial = d
                .serial_number()
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            // One physical device exposes several HID collections; report it once.
            if out.iter().any(|o| {
                o.vendor_id == d.vendor_id() && o.product_id == d.product_id() && o.serial == serial
            }) {
                continue;
            }
            let bcd = d.release_number();
            out.push(TelephonyDevice {
                vendor_id: d.vendor_id(),
                product_id: d.product_id(),
                bcd_device: bcd,
                manufacturer: d.manufacturer_string().map(str::to_owned),
                product: d.product_string().map(str::to_owned),
                serial,
                // Standard HID has no version report; bcdDevice is what every device gives.
                version: Some(format!("{:x}.{:02x}", bcd >> 8, bcd & 0xff)),
                battery: None,
                in_call: false,
                port_path: None,
            });
        }
        Ok(out)
    }
}
