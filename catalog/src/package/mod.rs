//! The firmware package model: what the catalog knows about one release.

mod version;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use version::{Version, VersionError, VersionFormat, MAX_VERSION_LEN};

use crate::digest::Sha256Digest;

/// Longest vendor / model / file name accepted.
pub const MAX_NAME_LEN: usize = 128;
/// Longest release notes accepted.
pub const MAX_NOTES_LEN: usize = 16 * 1024;
/// Most hardware ids one release may name.
pub const MAX_HARDWARE_IDS: usize = 64;

/// A field of a release that is out of bounds or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A hardware id that is not `VID:PID[@LO-HI]`.
    #[error("bad hardware id {0:?}: expected VID:PID in hex (e.g. 047F:C056), optionally @LO-HI bcdDevice range")]
    HardwareId(String),
    /// A field that is empty, too long or has bad characters.
    #[error("bad {field}: {why}")]
    Field {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
    /// A version problem.
    #[error(transparent)]
    Version(#[from] VersionError),
}

/// A USB hardware id a firmware is for: vendor and product id, optionally
/// limited to a range of `bcdDevice` (hardware revision) values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HardwareId {
    /// USB idVendor.
    pub vid: u16,
    /// USB idProduct.
    pub pid: u16,
    /// Inclusive `bcdDevice` range, if the firmware fits only some revisions.
    pub bcd_range: Option<(u16, u16)>,
}

impl HardwareId {
    /// A hardware id for every revision of a product.
    pub fn new(vid: u16, pid: u16) -> Self {
        Self {
            vid,
            pid,
            bcd_range: None,
        }
    }

    /// Whether a device with these ids is covered.
    pub fn matches(&self, vid: u16, pid: u16, bcd_device: u16) -> bool {
        self.vid == vid
            && self.pid == pid
            && self
                .bcd_range
                .is_none_or(|(lo, hi)| (lo..=hi).contains(&bcd_device))
    }

    /// The `VID:PID` part, without a range.
    pub fn model_key(&self) -> String {
        format!("{:04X}:{:04X}", self.vid, self.pid)
    }
}

impl fmt::Display for HardwareId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}:{:04X}", self.vid, self.pid)?;
        if let Some((lo, hi)) = self.bcd_range {
            write!(f, "@{lo:04X}-{hi:04X}")?;
        }
        Ok(())
    }
}

impl FromStr for HardwareId {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ModelError::HardwareId(s.chars().take(40).collect());
        let hex16 = |t: &str| {
            let t = t
                .strip_prefix("0x")
                .or_else(|| t.strip_prefix("0X"))
                .unwrap_or(t);
            if t.is_empty() || t.len() > 4 {
                return None;
            }
            u16::from_str_radix(t, 16).ok()
        };
        let (ids, range) = match s.split_once('@') {
            Some((ids, range)) => (ids, Some(range)),
            None => (s, None),
        };
        let (vid, pid) = ids.split_once(':').ok_or_else(bad)?;
        let bcd_range = match range {
            None => None,
            Some(r) => {
                let (lo, hi) = r.split_once('-').ok_or_else(bad)?;
                let (lo, hi) = (hex16(lo).ok_or_else(bad)?, hex16(hi).ok_or_else(bad)?);
                if lo > hi {
                    return Err(bad());
                }
                Some((lo, hi))
            }
        };
        Ok(Self {
            vid: hex16(vid).ok_or_else(bad)?,
            pid: hex16(pid).ok_or_else(bad)?,
            bcd_range,
        })
    }
}

impl Serialize for HardwareId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HardwareId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// How the image is written to the device.
///
/// On the wire and in the catalog a protocol is its name: `dfu`, `dfuse`,
/// or the LVFS protocol id of any other (`com.jabra.gnp`, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum UpdateProtocol {
    /// USB DFU 1.1.
    #[default]
    Dfu,
    /// ST DfuSe (DFU 1.1a with addressed elements).
    Dfuse,
    /// Another protocol, by its LVFS id: stored, signed and served like the
    /// others, installed only by agents that implement it.
    Other(String),
}

/// Longest protocol id accepted.
const MAX_PROTOCOL_LEN: usize = 64;

impl UpdateProtocol {
    /// The protocol's name: `dfu`, `dfuse`, or the LVFS id.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Dfu => "dfu",
            Self::Dfuse => "dfuse",
            Self::Other(id) => id,
        }
    }
}

impl fmt::Display for UpdateProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UpdateProtocol {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let id = s.trim().to_ascii_lowercase();
        match id.as_str() {
            "dfu" | "org.usb.dfu" => Ok(Self::Dfu),
            "dfuse" | "com.st.dfuse" => Ok(Self::Dfuse),
            _ if id.is_empty()
                || id.len() > MAX_PROTOCOL_LEN
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) =>
            {
                Err(ModelError::Field {
                    field: "protocol",
                    why: format!(
                        "{s:?} is not dfu, dfuse or a protocol id (letters, digits, '.', '_', '-'; at most {MAX_PROTOCOL_LEN})"
                    ),
                })
            }
            _ => Ok(Self::Other(id)),
        }
    }
}

impl Serialize for UpdateProtocol {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for UpdateProtocol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// How urgently a release should be installed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    /// Nice to have.
    Low,
    /// The default.
    #[default]
    Medium,
    /// Fixes an important problem.
    High,
    /// Fixes a security or data-loss problem.
    Critical,
}

impl FromStr for Urgency {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Self::Low),
            "medium" | "unknown" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            "critical" => Ok(Self::Critical),
            other => Err(ModelError::Field {
                field: "urgency",
                why: format!("{other:?} is not low, medium, high or critical"),
            }),
        }
    }
}

/// What an install of this release may do and needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct InstallCapabilities {
    /// The device must be reset (unplugged and replugged) after flashing.
    pub needs_replug: bool,
    /// May be installed silently in a maintenance window.
    pub silent_capable: bool,
    /// May be installed automatically at agent start.
    pub automatic_capable: bool,
    /// Expected install time in seconds (a silent flash is not started with
    /// less time left in the window).
    pub install_duration_secs: u32,
}

/// Which file the release came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// A raw image with metadata given by the admin.
    Raw,
    /// A `.dfu` file (DFU suffix).
    Dfu,
    /// A DfuSe container.
    Dfuse,
    /// An LVFS cabinet.
    Cab,
}

/// What an LVFS cabinet said about the release, kept for reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LvfsInfo {
    /// The AppStream component id.
    pub component_id: String,
    /// GUIDs from `<provides><firmware>`.
    pub guids: Vec<String>,
    /// The payload's file name inside the cabinet.
    pub payload_name: String,
    /// The vendor signature (a `.jcat` in the cabinet) that verified with
    /// a trusted vendor key; `None`: none did, or no key is trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_signature: Option<crate::import::VendorSignature>,
}

/// One firmware release in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareRelease {
    /// The TUF target name (`vendor/model/version/file`).
    pub target_name: String,
    /// Vendor display name.
    pub vendor: String,
    /// Model display name.
    pub model: String,
    /// The devices it is for.
    pub hardware_ids: Vec<HardwareId>,
    /// Its version, with the format that says how to compare it.
    pub version: Version,
    /// Anti-downgrade counter: an agent refuses anything below the installed one.
    pub security_counter: u32,
    /// How it is written to the device.
    pub protocol: UpdateProtocol,
    /// What installing it may do and needs.
    pub capabilities: InstallCapabilities,
    /// How urgent it is.
    pub urgency: Urgency,
    /// Release notes (plain text).
    pub release_notes: String,
    /// Length of the stored image in bytes.
    pub size: u64,
    /// SHA-256 of the stored image: its blob name.
    pub sha256: Sha256Digest,
    /// The file it was imported from.
    pub source_format: SourceFormat,
    /// LVFS metadata, for cabinet imports.
    pub lvfs: Option<LvfsInfo>,
    /// The product this model is one piece of (a base, its headset and its
    /// dongle share one family): a silent update waits while another piece
    /// of the same family is attached. `None`: a one-piece product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_family: Option<String>,
    /// When it was imported (RFC 3339, UTC).
    pub imported_at: chrono::DateTime<chrono::Utc>,
}

/// Checks a short display field (vendor, model, file name).
pub fn check_name(field: &'static str, value: &str) -> Result<(), ModelError> {
    let why = if value.trim().is_empty() {
        Some("must not be empty".to_owned())
    } else if value.len() > MAX_NAME_LEN {
        Some(format!("longer than {MAX_NAME_LEN} bytes"))
    } else if value.chars().any(char::is_control) {
        Some("contains control characters".to_owned())
    } else {
        None
    };
    match why {
        Some(why) => Err(ModelError::Field { field, why }),
        None => Ok(()),
    }
}

/// Turns a display name into a safe path component: ASCII letters, digits,
/// `.`, `_` and `-`, never `.` or `..`.
pub fn slug(value: &str) -> String {
    let mut out: String = value
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while out.starts_with('.') {
        out.remove(0);
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

impl FirmwareRelease {
    /// Checks every bounded field; importers call this before storing anything.
    pub fn validate(&self) -> Result<(), ModelError> {
        check_name("vendor", &self.vendor)?;
        check_name("model", &self.model)?;
        if self.hardware_ids.is_empty() {
            return Err(ModelError::Field {
                field: "hardware ids",
                why: "at least one VID:PID is required".into(),
            });
        }
        if self.hardware_ids.len() > MAX_HARDWARE_IDS {
            return Err(ModelError::Field {
                field: "hardware ids",
                why: format!("more than {MAX_HARDWARE_IDS}"),
            });
        }
        if self.release_notes.len() > MAX_NOTES_LEN {
            return Err(ModelError::Field {
                field: "release notes",
                why: format!("longer than {MAX_NOTES_LEN} bytes"),
            });
        }
        if let Some(family) = &self.product_family {
            check_name("product family", family)?;
        }
        Ok(())
    }

    /// Whether this release is for a device with these ids.
    pub fn fits(&self, vid: u16, pid: u16, bcd_device: u16) -> bool {
        self.hardware_ids
            .iter()
            .any(|h| h.matches(vid, pid, bcd_device))
    }

    /// The TUF target `custom` object: everything an agent needs to decide
    /// whether and how to install, signed together with hash and length.
    pub fn target_custom(&self) -> serde_json::Value {
        let mut custom = serde_json::json!({
            "firmware": {
                "vendor": self.vendor,
                "model": self.model,
                "hardware_ids": self.hardware_ids,
                "version": self.version.as_str(),
                "version_format": self.version.format(),
                "security_counter": self.security_counter,
                "protocol": self.protocol,
                "needs_replug": self.capabilities.needs_replug,
                "silent_capable": self.capabilities.silent_capable,
                "automatic_capable": self.capabilities.automatic_capable,
                "install_duration_secs": self.capabilities.install_duration_secs,
                "urgency": self.urgency,
            }
        });
        // Only when set, so the targets of one-piece products keep the
        // shape (and hashes) they had before families existed.
        if let Some(family) = &self.product_family {
            custom["firmware"]["product_family"] = family.as_str().into();
        }
        if let Some(sig) = self.lvfs.as_ref().and_then(|l| l.vendor_signature.as_ref()) {
            custom["firmware"]["vendor_signature"] = serde_json::json!(sig);
        }
        custom
    }
}

/// The firmware fields carried in a TUF target's `custom` object, as an
/// agent reads them back after verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetFirmware {
    /// Vendor display name.
    pub vendor: String,
    /// Model display name.
    pub model: String,
    /// The devices it is for.
    pub hardware_ids: Vec<HardwareId>,
    /// Version text.
    pub version: String,
    /// Version format.
    pub version_format: VersionFormat,
    /// Anti-downgrade counter.
    pub security_counter: u32,
    /// Update protocol.
    pub protocol: UpdateProtocol,
    /// Needs a replug after flashing.
    pub needs_replug: bool,
    /// Silent-capable.
    pub silent_capable: bool,
    /// Automatic-capable.
    pub automatic_capable: bool,
    /// Expected install time.
    pub install_duration_secs: u32,
    /// Urgency.
    pub urgency: Urgency,
    /// The product family (see [`FirmwareRelease::product_family`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_family: Option<String>,
}

impl TargetFirmware {
    /// Reads the firmware fields from a target's `custom` object.
    pub fn from_custom(custom: &serde_json::Value) -> Option<Self> {
        serde_json::from_value(custom.get("firmware")?.clone()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_protocol_names_table() {
        // (text, parsed name or None for a refusal)
        let table = [
            ("dfu", Some("dfu")),
            ("org.usb.dfu", Some("dfu")),
            ("DFUSE", Some("dfuse")),
            ("com.st.dfuse", Some("dfuse")),
            ("com.jabra.gnp", Some("com.jabra.gnp")),
            ("Com.Vendor.Proto_2", Some("com.vendor.proto_2")),
            ("", None),
            ("com.vendor/../x", None),
            ("com vendor", None),
            ("com.vendor.\u{7}", None),
        ];
        for (text, want) in table {
            let got = text.parse::<UpdateProtocol>().ok();
            assert_eq!(got.as_ref().map(UpdateProtocol::as_str), want, "{text:?}");
            if let Some(p) = got {
                let json = serde_json::to_string(&p).unwrap();
                assert_eq!(json, format!("\"{}\"", p.as_str()));
                assert_eq!(serde_json::from_str::<UpdateProtocol>(&json).unwrap(), p);
            }
        }
        assert!("x".repeat(65).parse::<UpdateProtocol>().is_err());
    }

    #[test]
    fn hardware_id_parse_table() {
        let ok = [
            ("047F:C056", HardwareId::new(0x047f, 0xc056)),
            ("047f:c056", HardwareId::new(0x047f, 0xc056)),
            ("0x0483:0xdf11", HardwareId::new(0x0483, 0xdf11)),
            (
                "047F:C056@0100-01FF",
                HardwareId {
                    vid: 0x047f,
                    pid: 0xc056,
                    bcd_range: Some((0x100, 0x1ff)),
                },
            ),
        ];
        for (s, want) in ok {
            assert_eq!(s.parse::<HardwareId>().unwrap(), want, "{s}");
        }
        for bad in [
            "",
            "047F",
            "047F:",
            ":C056",
            "12345:1",
            "047F:C056@",
            "047F:C056@02-01",
            "zz:01",
        ] {
            assert!(bad.parse::<HardwareId>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            "047f:c056@100-1ff"
                .parse::<HardwareId>()
                .unwrap()
                .to_string(),
            "047F:C056@0100-01FF"
        );
    }

    #[test]
    fn hardware_id_matching() {
        let h: HardwareId = "047F:C056@0100-01FF".parse().unwrap();
        assert!(h.matches(0x047f, 0xc056, 0x0100));
        assert!(h.matches(0x047f, 0xc056, 0x01ff));
        assert!(!h.matches(0x047f, 0xc056, 0x0200));
        assert!(!h.matches(0x047f, 0xc057, 0x0150));
        assert!(HardwareId::new(1, 2).matches(1, 2, 0xffff));
    }

    #[test]
    fn slugs_are_safe_path_components() {
        let cases = [
            ("Acme Corp", "acme-corp"),
            ("..", "_"),
            ("../etc", "-etc"),
            ("Voyager 8200 UC", "voyager-8200-uc"),
            ("a/b\\c", "a-b-c"),
            ("", "_"),
            ("v1.2_x", "v1.2_x"),
        ];
        for (input, want) in cases {
            assert_eq!(slug(input), want, "{input:?}");
        }
    }

    #[test]
    fn name_checks() {
        assert!(check_name("vendor", "Acme").is_ok());
        assert!(check_name("vendor", " ").is_err());
        assert!(check_name("vendor", "a\nb").is_err());
        assert!(check_name("vendor", &"x".repeat(MAX_NAME_LEN + 1)).is_err());
    }
}
