//! Installing a verified, staged image on a device: DFU or DfuSe through the
//! `dfu` host, then reading the version back. An update counts as installed
//! only when the device reports the version the signed target promised.

use catalog::package::{UpdateProtocol, Version, VersionFormat};
use catalog::protocol::{DeviceReport, DfuState};
use dfu::file::{DfuFile, Firmware};
use dfu::host::{
    flash, flash_dfuse, Backend, DeviceMatcher, DfuError, DfuseSegment, FlashOptions, FlashOutcome,
    Progress,
};

use crate::devices::{BackendError, DeviceBackend};

/// What an install achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// The device runs the new version (read back and compared).
    Running {
        /// The version the device reports.
        version: String,
    },
    /// Written, but the device must be unplugged and replugged before it runs
    /// the new firmware; register the update only when it comes back with it.
    AwaitingReplug,
}

/// Whether this agent can install images of `protocol`: DFU and DfuSe.
/// Releases of any other protocol (an LVFS vendor protocol) are skipped
/// with [`unsupported_protocol`] as the reason, before any download.
pub fn supports(protocol: &UpdateProtocol) -> bool {
    matches!(protocol, UpdateProtocol::Dfu | UpdateProtocol::Dfuse)
}

/// The skip reason for a release this agent cannot install.
pub fn unsupported_protocol(protocol: &UpdateProtocol) -> String {
    format!("protocol {protocol} is not supported by this agent; skipped")
}

/// Why an install failed. Messages are meant for a help desk.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The device is not attached (any more).
    #[error("the device {0} is not attached")]
    NotAttached(String),
    /// The device cannot be flashed by the agent.
    #[error("the device {0} has no DFU interface; it cannot be updated by the agent")]
    NotFlashable(String),
    /// The image is not a valid DFU/DfuSe file.
    #[error("the staged image is not a valid firmware file: {0}")]
    BadImage(#[from] dfu::file::FileError),
    /// The image is for other hardware.
    #[error("the image is for {file}, not for this device ({device})")]
    WrongDevice {
        /// What the file's DFU suffix names.
        file: String,
        /// The device's ids.
        device: String,
    },
    /// The protocol in the signed target and the file disagree.
    #[error("the signed target says {signed} but the image is {file}")]
    ProtocolMismatch {
        /// From the signed target.
        signed: UpdateProtocol,
        /// From the file.
        file: UpdateProtocol,
    },
    /// The DFU exchange failed.
    #[error("flashing failed: {0}")]
    Dfu(#[from] DfuError),
    /// Enumeration failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// After flashing, the device reports another version.
    #[error("after flashing, the device reports version {found}, expected {expected}")]
    WrongVersion {
        /// The signed version.
        expected: String,
        /// What the device reports.
        found: String,
    },
}

/// How to find `device` again (by serial, else port path), in any mode.
pub fn matcher_for(device: &DeviceReport) -> DeviceMatcher {
    DeviceMatcher {
        vendor_id: Some(device.vendor_id),
        serial: device.serial.clone(),
        port_path: if device.serial.is_some() {
            None
        } else {
            device.port_path.clone()
        },
        ..Default::default()
    }
}

/// The image as the host protocol wants it.
enum Payload {
    Dfu(Vec<u8>),
    DfuSe(Vec<DfuseSegment>),
}

fn payload(
    image: &[u8],
    protocol: UpdateProtocol,
    device: &DeviceReport,
) -> Result<Payload, InstallError> {
    let file = DfuFile::parse_lenient(image)?;
    let s = &file.suffix;
    // In DFU mode a device may enumerate with another PID; the vendor must still match.
    let pid_ok = device.dfu == DfuState::DfuMode
        || s.id_product == dfu::file::ANY
        || s.id_product == device.product_id;
    let vid_ok = s.id_vendor == dfu::file::ANY || s.id_vendor == device.vendor_id;
    if s.is_present() && !(vid_ok && pid_ok) {
        return Err(InstallError::WrongDevice {
            file: format!("{:04x}:{:04x}", s.id_vendor, s.id_product),
            device: format!("{:04x}:{:04x}", device.vendor_id, device.product_id),
        });
    }
    let (file_protocol, payload) = match file.firmware {
        Firmware::Raw(bytes) => (UpdateProtocol::Dfu, Payload::Dfu(bytes)),
        Firmware::DfuSe(img) => (
            UpdateProtocol::Dfuse,
            Payload::DfuSe(
                img.targets
                    .into_iter()
                    .flat_map(|t| {
                        let alt = t.alt_setting;
                        t.elements.into_iter().map(move |e| DfuseSegment {
                            alt_setting: alt,
                            address: e.address,
                            data: e.data,
                        })
                    })
                    .collect(),
            ),
        ),
    };
    if file_protocol != protocol {
        return Err(InstallError::ProtocolMismatch {
            signed: protocol,
            file: file_protocol,
        });
    }
    Ok(payload)
}

/// Whether what a device reports is the expected version. A reported version
/// string is compared in the release's version format; without one, the
/// USB bcdDevice is compared the ways devices encode it (BCD `M.mm`, or
/// major/minor as plain bytes).
pub fn version_matches(expected: &Version, reported: Option<&str>, bcd_device: u16) -> bool {
    if let Some(text) = reported {
        return Version::parse(text, expected.format()).is_ok_and(|v| v == *expected);
    }
    match expected.format() {
        VersionFormat::Bcd => Version::from_bcd_device(bcd_device) == *expected,
        VersionFormat::Hex => Version::parse(&format!("0x{bcd_device:x}"), VersionFormat::Hex)
            .is_ok_and(|v| v == *expected),
        VersionFormat::Plain => {
            let parts: Vec<u64> = expected
                .as_str()
                .split('.')
                .map_while(|p| p.parse().ok())
                .collect();
            let (Some(&major), Some(&minor)) = (parts.first(), parts.get(1)) else {
                return false;
            };
            let (hi, lo) = (u64::from(bcd_device >> 8), u64::from(bcd_device & 0xff));
            let bcd = |n: u64| (n / 10) * 16 + n % 10;
            (hi == major && lo == minor)
                || (major < 100 && minor < 100 && hi == bcd(major) && lo == bcd(minor))
        }
    }
}

/// Flashes `image` onto `device` and checks the result.
pub fn install<B: DeviceBackend>(
    backend: &B,
    device: &DeviceReport,
    image: &[u8],
    protocol: UpdateProtocol,
    expected: &Version,
    options: &FlashOptions,
    progress: &mut dyn Progress,
) -> Result<Installed, InstallError> {
    let id = device.identity();
    if device.dfu == DfuState::None {
        return Err(InstallError::NotFlashable(id));
    }
    let payload = payload(image, protocol, device)?;
    let matcher = matcher_for(device);
    let transport = backend
        .dfu()
        .open(&matcher)
        .map_err(|_| InstallError::NotAttached(id.clone()))?;
    let report = match &payload {
        Payload::Dfu(bytes) => flash(transport, bytes, options, progress)?,
        Payload::DfuSe(segments) => {
            let leave = segments.first().map(|s| s.address);
            flash_dfuse(transport, segments, leave, options, progress)?
        }
    };
    if report.outcome == FlashOutcome::NeedsReplug {
        return Ok(Installed::AwaitingReplug);
    }
    confirm(backend, device, expected)
}

/// Reads the version of `device` as it is attached now and compares it.
pub fn confirm<B: DeviceBackend>(
    backend: &B,
    device: &DeviceReport,
    expected: &Version,
) -> Result<Installed, InstallError> {
    let id = device.identity();
    let now = backend
        .inventory()?
        .into_iter()
        .find(|d| d.identity() == id)
        .ok_or_else(|| InstallError::NotAttached(id.clone()))?;
    let found = now
        .firmware_version
        .clone()
        .unwrap_or_else(|| format!("bcdDevice 0x{:04x}", now.bcd_device));
    if now.dfu == DfuState::Runtime
        && version_matches(expected, now.firmware_version.as_deref(), now.bcd_device)
    {
        Ok(Installed::Running { version: found })
    } else {
        Err(InstallError::WrongVersion {
            expected: expected.to_string(),
            found: if now.dfu == DfuState::DfuMode {
                format!("{found} (still in DFU mode)")
            } else {
                found
            },
        })
    }
}

#[cfg(test)]
mod tests;
