//! HID telephony devices (usage page 0x0B) for inventory: plain data.

use crate::profile::OUR_VID;

/// HID usage page "Telephony".
pub const TELEPHONY_USAGE_PAGE: u16 = 0x0B;

/// Battery information, as different models report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Battery {
    /// Remaining talk time in minutes.
    TalkTimeMinutes(u32),
    /// A rough percentage (models that report levels in steps of 10, 25, ...).
    RoughPercent(u8),
}

/// What an inventory scan sees of a telephony HID device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HidTelephonyInfo {
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
    /// The HID usage page (0x0B for telephony devices).
    pub usage_page: u16,
    /// Manufacturer string.
    pub manufacturer: String,
    /// Product string.
    pub product: String,
    /// Serial number, if the device has one.
    pub serial: Option<String>,
    /// Firmware version as the device reports it.
    pub version: String,
    /// Battery, for wireless devices.
    pub battery: Option<Battery>,
    /// Whether a call is active.
    pub in_call: bool,
    /// Port path on the bus.
    pub port_path: Option<String>,
}

/// A HID-only telephony device (no DFU), e.g. another vendor's headset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HidTelephonyDevice {
    /// Its data; `port_path` is filled in by the bus.
    pub info: HidTelephonyInfo,
}

impl HidTelephonyDevice {
    fn make(
        vendor_id: u16,
        product_id: u16,
        manufacturer: &str,
        product: &str,
        serial: Option<&str>,
        version: &str,
        battery: Option<Battery>,
    ) -> Self {
        Self {
            info: HidTelephonyInfo {
                vendor_id,
                product_id,
                usage_page: TELEPHONY_USAGE_PAGE,
                manufacturer: manufacturer.to_owned(),
                product: product.to_owned(),
                serial: serial.map(str::to_owned),
                version: version.to_owned(),
                battery,
                in_call: false,
                port_path: None,
            },
        }
    }

    /// Our wireless headset reporting talk time in minutes.
    pub fn our_wireless_headset() -> Self {
        Self::make(
            OUR_VID,
            0x0040,
            "Example Audio",
            "Voyage 6200 wireless headset",
            Some("VW6200-0001"),
            "3.1.4",
            Some(Battery::TalkTimeMinutes(540)),
        )
    }

    /// Another vendor's headset with a serial number and a rough battery percentage.
    pub fn other_vendor_headset() -> Self {
        Self::make(
            0x0B0E,
            0x2450,
            "Other Vendor A",
            "Wireless headset 45",
            Some("OVA-45-778812"),
            "1.8.0",
            Some(Battery::RoughPercent(75)),
        )
    }

    /// Another vendor's wired speakerphone without a serial number.
    pub fn other_vendor_speakerphone_no_serial() -> Self {
        Self::make(
            0x1395,
            0x0072,
            "Other Vendor B",
            "Speakerphone 20",
            None,
            "0.9.2",
            None,
        )
    }

    /// Sets the in-call state.
    pub fn with_in_call(mut self, in_call: bool) -> Self {
        self.info.in_call = in_call;
        self
    }
}
