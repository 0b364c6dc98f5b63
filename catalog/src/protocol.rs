//! Wire types shared by the server and the agent. They live here, in one
//! place, so both ends serialise exactly the same shapes.
//!
//! This module starts with the device inventory an agent reports; enrollment,
//! check-in and assignments join it as the server and agent grow.

use serde::{Deserialize, Serialize};

/// Battery state, as different models report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Battery {
    /// Remaining talk time in minutes.
    TalkTimeMinutes(u32),
    /// A rough percentage (some models report only steps of 10 or 25).
    RoughPercent(u8),
}

/// Whether a device can be flashed by the agent, and in which mode it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DfuState {
    /// Not DFU-capable (inventory only, e.g. another vendor's headset).
    None,
    /// Running its application, with a DFU runtime interface.
    Runtime,
    /// In DFU mode (bootloader), e.g. after an interrupted flash.
    DfuMode,
}

/// One attached device as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceReport {
    /// USB idVendor.
    pub vendor_id: u16,
    /// USB idProduct (as currently enumerated).
    pub product_id: u16,
    /// USB bcdDevice.
    pub bcd_device: u16,
    /// Serial number; devices without one are followed by port path.
    pub serial: Option<String>,
    /// Physical port path (`bus-port.port…`).
    pub port_path: Option<String>,
    /// Manufacturer string.
    pub manufacturer: Option<String>,
    /// Product string.
    pub product: Option<String>,
    /// Firmware version as the device reports it, if it does.
    pub firmware_version: Option<String>,
    /// DFU capability and mode.
    pub dfu: DfuState,
    /// Exposes the HID telephony usage page (0x0B).
    pub telephony: bool,
    /// Battery, for wireless devices that report it.
    pub battery: Option<Battery>,
    /// A call is active on the device.
    pub in_call: bool,
}

impl DeviceReport {
    /// A stable identity across re-enumeration: the serial number when the
    /// device has one (PIDs may change between runtime and DFU mode), else
    /// vendor id plus port path.
    pub fn identity(&self) -> String {
        match (&self.serial, &self.port_path) {
            (Some(s), _) => format!("{:04x}/serial/{s}", self.vendor_id),
            (None, Some(p)) => format!("{:04x}/port/{p}", self.vendor_id),
            (None, None) => format!("{:04x}:{:04x}", self.vendor_id, self.product_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn battery_wire_format() {
        let cases = [
            (
                Battery::TalkTimeMinutes(340),
                r#"{"kind":"talk_time_minutes","value":340}"#,
            ),
            (
                Battery::RoughPercent(75),
                r#"{"kind":"rough_percent","value":75}"#,
            ),
        ];
        for (b, json) in cases {
            assert_eq!(serde_json::to_string(&b).unwrap(), json);
            assert_eq!(serde_json::from_str::<Battery>(json).unwrap(), b);
        }
    }

    #[test]
    fn identity_prefers_serial_then_port() {
        let mut d = DeviceReport {
            vendor_id: 0x1209,
            product_id: 0x0001,
            bcd_device: 0x0100,
            serial: Some("SN1".into()),
            port_path: Some("1-4".into()),
            manufacturer: None,
            product: None,
            firmware_version: None,
            dfu: DfuState::Runtime,
            telephony: true,
            battery: None,
            in_call: false,
        };
        assert_eq!(d.identity(), "1209/serial/SN1");
        d.product_id = 0x0002; // re-enumerated in DFU mode with another PID
        assert_eq!(d.identity(), "1209/serial/SN1");
        d.serial = None;
        assert_eq!(d.identity(), "1209/port/1-4");
        d.port_path = None;
        assert_eq!(d.identity(), "1209:0002");
    }
}
