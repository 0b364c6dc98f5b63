//! No downgrade by version: an offer older than what a device runs is
//! installed only when the signed assignment says so. The security counter
//! ([`super::check_against_target`]) stays a floor even then.

use super::{Assignment, AssignmentError};
use crate::package::{Version, VersionFormat};
use crate::protocol::DeviceReport;

/// The version a device runs, in `format`: its reported version text, else
/// its `bcdDevice` where the format defines one (`bcd`, `hex`). `None` when
/// neither says (a plain-format model that reports no text): no
/// comparison is possible and the counter alone guards.
pub fn running_version(device: &DeviceReport, format: VersionFormat) -> Option<Version> {
    if let Some(text) = device.firmware_version.as_deref() {
        return Version::parse(text, format).ok();
    }
    match format {
        VersionFormat::Bcd => Some(Version::from_bcd_device(device.bcd_device)),
        VersionFormat::Hex => Version::parse(&format!("0x{:x}", device.bcd_device), format).ok(),
        VersionFormat::Plain => None,
    }
}

/// Refuses `offered` when it is older than the version the device runs,
/// unless `assignment.allow_downgrade`. Returns the running version when
/// the offer is an allowed downgrade (for the event that records it).
pub fn check_not_older(
    assignment: &Assignment,
    offered: &Version,
    device: &DeviceReport,
) -> Result<Option<Version>, AssignmentError> {
    let Some(running) = running_version(device, offered.format()) else {
        return Ok(None);
    };
    if *offered >= running {
        return Ok(None);
    }
    if assignment.allow_downgrade {
        return Ok(Some(running));
    }
    Err(AssignmentError::OlderVersion {
        target: assignment.target_name.clone(),
        offered: offered.to_string(),
        running: running.to_string(),
    })
}
