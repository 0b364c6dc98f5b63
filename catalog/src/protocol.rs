//! Wire types shared by the server and the agent. They live here, in one
//! place, so both ends serialise exactly the same shapes.
//!
//! This module starts with the device inventory an agent reports and agent
//! enrollment; check-in and assignments join it as the server and agent grow.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::tuf::PublicKey;

/// `POST /api/v1/enroll`: what the agent sends. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The tenant id (installer parameter `TENANT_ID`).
    pub tenant: String,
    /// The tenant's enrollment token (installer parameter `TENANT_TOKEN`).
    pub token: String,
    /// The SystemID the host was given at install.
    pub system_id: String,
    /// What identifies the machine itself, to detect cloned images.
    pub machine_fingerprint: String,
    /// Host name.
    pub hostname: String,
    /// Operating system, human-readable.
    pub os: String,
}

/// The tenant's online assignment-signing key, as given at enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentKey {
    /// The TUF key id of `key`.
    pub keyid: String,
    /// The public key.
    pub key: PublicKey,
}

/// Which catalog root the server currently publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogRootRef {
    /// The root's version.
    pub version: u64,
    /// Hex SHA-256 of the server's `root.json` file.
    pub sha256: String,
    /// Path of the versioned root on the server (`/repo/metadata/N.root.json`).
    pub url: String,
}

/// `POST /api/v1/enroll`: the answer (201 on first enrollment, 200 on a
/// re-enrollment of the same SystemID from the same machine).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The agent id.
    pub id: String,
    /// The SystemID, as sent.
    pub system_id: String,
    /// Host name, as sent.
    pub hostname: String,
    /// Operating system, as sent.
    pub os: String,
    /// First enrollment of this agent.
    pub enrolled_at: DateTime<Utc>,
    /// When the credential below was issued.
    pub credential_issued_at: DateTime<Utc>,
    /// Another machine enrolled first with the same SystemID.
    pub suspected_clone: bool,
    /// The agent this one is a suspected clone of.
    pub clone_of: Option<String>,
    /// The agent credential (shown once; a re-enrollment replaces it).
    pub credential: String,
    /// The same agent enrolled again (same SystemID, same machine).
    pub reenrolled: bool,
    /// The tenant id.
    pub tenant: String,
    /// The tenant's assignment-signing key.
    pub assignment_key: AssignmentKey,
    /// Which root the catalog publishes.
    pub catalog_root: CatalogRootRef,
    /// The catalog's `root.json` envelope, for the agent to verify and pin.
    pub root: serde_json::Value,
}

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
    fn enroll_request_refuses_unknown_fields() {
        let ok = r#"{"tenant":"t","token":"upde_x","system_id":"s","machine_fingerprint":"f","hostname":"h","os":"Linux"}"#;
        let req: EnrollRequest = serde_json::from_str(ok).unwrap();
        assert_eq!(req.machine_fingerprint, "f");
        assert_eq!(serde_json::to_string(&req).unwrap(), ok);
        let extra = ok.replace(r#""os":"Linux""#, r#""os":"Linux","admin":true"#);
        assert!(serde_json::from_str::<EnrollRequest>(&extra).is_err());
    }

    #[test]
    fn enroll_response_wire_format() {
        let json = serde_json::json!({
            "id": "a1", "system_id": "s", "hostname": "h", "os": "Linux",
            "enrolled_at": "2026-01-02T03:04:05Z",
            "credential_issued_at": "2026-01-02T03:04:05Z",
            "suspected_clone": true, "clone_of": "a0",
            "credential": "upda_x", "reenrolled": false, "tenant": "t",
            "assignment_key": {"keyid": "k1", "key": {
                "keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "ab"}}},
            "catalog_root": {"version": 1, "sha256": "00", "url": "/repo/metadata/1.root.json"},
            "root": {"signed": {}, "signatures": []},
        });
        let r: EnrollResponse = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(r.clone_of.as_deref(), Some("a0"));
        assert!(r.suspected_clone);
        assert_eq!(r.assignment_key.key.keytype, "ed25519");
        assert_eq!(r.catalog_root.version, 1);
        assert_eq!(serde_json::to_value(&r).unwrap(), json);
    }

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
