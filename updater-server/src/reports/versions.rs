//! Version Status: per model in the inventory, the latest release in the
//! catalog and how many devices run each installed version.
//!
//! A device is `up_to_date` when its version is the latest release that fits
//! it (hardware ids and `bcdDevice` range) or newer, `outdated` when older,
//! `unknown` when it reports no version or one that does not parse in the
//! release's version format, and `no_release` when the catalog has nothing
//! for it (other vendors' devices, models not imported yet). Deleted devices
//! are left out.

use std::collections::{BTreeMap, HashMap};

use catalog::package::{FirmwareRelease, Version};
use serde::Serialize;
use serde_json::json;

use super::{model_key, Built, ReportKind, Snapshot};
use crate::fleet::inventory::Device;
use crate::fleet::VersionSpec;

/// How a device's version compares with the latest release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    /// The latest release or newer.
    UpToDate,
    /// Older than the latest release.
    Outdated,
    /// No version reported, or one that cannot be compared.
    Unknown,
    /// The catalog has no release for the device.
    NoRelease,
}

impl VersionStatus {
    fn as_str(self) -> &'static str {
        match self {
            VersionStatus::UpToDate => "up_to_date",
            VersionStatus::Outdated => "outdated",
            VersionStatus::Unknown => "unknown",
            VersionStatus::NoRelease => "no_release",
        }
    }
}

/// Devices of one model running one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionCount {
    /// The installed version (`None`: not reported).
    pub version: Option<String>,
    /// Against the latest release.
    pub status: VersionStatus,
    /// How many devices.
    pub devices: usize,
}

/// One model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelStatus {
    /// `VID:PID`.
    pub model: String,
    /// Model name.
    pub model_name: String,
    /// The highest version in the catalog for the model (any revision).
    pub latest_version: Option<String>,
    /// Devices of the model.
    pub devices: usize,
    /// Of which up to date.
    pub up_to_date: usize,
    /// Outdated.
    pub outdated: usize,
    /// Unknown version.
    pub unknown: usize,
    /// Without a release.
    pub no_release: usize,
    /// Per installed version, newest status first then by version text.
    pub versions: Vec<VersionCount>,
}

/// The CSV columns: one row per model and installed version.
pub const COLUMNS: &[&str] = &[
    "model",
    "model_name",
    "latest_version",
    "installed_version",
    "status",
    "devices",
];

fn latest(
    releases: &[FirmwareRelease],
    keep: impl Fn(&FirmwareRelease) -> bool,
) -> Option<&FirmwareRelease> {
    let candidates: Vec<&FirmwareRelease> = releases.iter().filter(|r| keep(r)).collect();
    VersionSpec::Latest.select(&candidates)
}

/// A device's status against the latest release that fits it.
pub fn status(releases: &[FirmwareRelease], d: &Device) -> VersionStatus {
    status_of(
        releases,
        (d.vendor_id, d.product_id, d.bcd_device),
        d.firmware_version.as_deref(),
    )
}

/// The status of `version` on hardware `(vid, pid, bcdDevice)`.
fn status_of(
    releases: &[FirmwareRelease],
    (vid, pid, bcd): (u16, u16, u16),
    version: Option<&str>,
) -> VersionStatus {
    let Some(latest) = latest(releases, |r| r.fits(vid, pid, bcd)) else {
        return VersionStatus::NoRelease;
    };
    match version.and_then(|v| Version::parse(v, latest.version.format()).ok()) {
        None => VersionStatus::Unknown,
        Some(v) if v >= latest.version => VersionStatus::UpToDate,
        Some(_) => VersionStatus::Outdated,
    }
}

/// The models, by `VID:PID`.
pub fn models(s: &Snapshot) -> Vec<ModelStatus> {
    // Devices counted per hardware and version first: the status is then
    // worked out once per distinct pair, not once per device.
    type Hardware = (u16, u16, u16);
    type Counted<'a> = (Hardware, Option<&'a str>, usize);
    let mut same: HashMap<(Hardware, Option<&str>), usize> = HashMap::new();
    for d in s.devices.iter().filter(|d| d.deleted_at.is_none()) {
        let hardware = (d.vendor_id, d.product_id, d.bcd_device);
        *same
            .entry((hardware, d.firmware_version.as_deref()))
            .or_default() += 1;
    }
    let mut by_model: BTreeMap<(u16, u16), Vec<Counted<'_>>> = BTreeMap::new();
    for ((hardware, version), n) in same {
        by_model
            .entry((hardware.0, hardware.1))
            .or_default()
            .push((hardware, version, n));
    }
    by_model
        .into_iter()
        .map(|((vid, pid), devices)| {
            let latest_version = latest(&s.releases, |r| {
                r.hardware_ids.iter().any(|h| h.vid == vid && h.pid == pid)
            })
            .map(|r| r.version.as_str().to_owned());
            let mut counts: BTreeMap<(VersionStatus, Option<String>), usize> = BTreeMap::new();
            for &(hardware, version, n) in &devices {
                *counts
                    .entry((
                        status_of(&s.releases, hardware, version),
                        version.map(str::to_owned),
                    ))
                    .or_default() += n;
            }
            let count = |st: VersionStatus| {
                counts
                    .iter()
                    .filter(|((s, _), _)| *s == st)
                    .map(|(_, n)| n)
                    .sum()
            };
            ModelStatus {
                model: model_key(vid, pid),
                model_name: s.model_name(vid, pid),
                latest_version,
                devices: devices.iter().map(|(_, _, n)| n).sum(),
                up_to_date: count(VersionStatus::UpToDate),
                outdated: count(VersionStatus::Outdated),
                unknown: count(VersionStatus::Unknown),
                no_release: count(VersionStatus::NoRelease),
                versions: counts
                    .iter()
                    .map(|((status, version), n)| VersionCount {
                        version: version.clone(),
                        status: *status,
                        devices: *n,
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The report.
pub fn build(s: &Snapshot) -> Built {
    let models = models(s);
    let mut rows = Vec::new();
    for m in &models {
        for v in &m.versions {
            rows.push(vec![
                m.model.clone(),
                m.model_name.clone(),
                m.latest_version.clone().unwrap_or_default(),
                v.version.clone().unwrap_or_default(),
                v.status.as_str().to_owned(),
                v.devices.to_string(),
            ]);
        }
    }
    let json = json!({
        "report": ReportKind::Versions,
        "tenant": s.tenant,
        "generated_at": s.now,
        "models": models,
    });
    Built::tabled(ReportKind::Versions, COLUMNS, json, rows)
}

#[cfg(test)]
mod tests {
    use catalog::package::HardwareId;

    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn status_against_the_latest_fitting_release() {
        let mut old_rev = release(VOYAGER, "Voyager", "3.0");
        old_rev.hardware_ids = vec![HardwareId {
            bcd_range: Some((0x0200, 0x02ff)),
            ..HardwareId::new(VOYAGER.0, VOYAGER.1)
        }];
        let releases = vec![
            release(VOYAGER, "Voyager", "1.10"),
            release(VOYAGER, "Voyager", "1.9"),
            old_rev,
        ];
        // (firmware version, bcdDevice, model, expected)
        let cases = [
            (Some("1.10"), 0x0100, VOYAGER, VersionStatus::UpToDate),
            (Some("1.11"), 0x0100, VOYAGER, VersionStatus::UpToDate),
            (Some("1.9"), 0x0100, VOYAGER, VersionStatus::Outdated),
            (Some("1.2"), 0x0100, VOYAGER, VersionStatus::Outdated),
            (Some("2.5"), 0x0210, VOYAGER, VersionStatus::Outdated),
            (Some("3.0"), 0x0210, VOYAGER, VersionStatus::UpToDate),
            (None, 0x0100, VOYAGER, VersionStatus::Unknown),
            (
                Some("not a version!"),
                0x0100,
                VOYAGER,
                VersionStatus::Unknown,
            ),
            (Some("1.0"), 0x0100, BLACKWIRE, VersionStatus::NoRelease),
            (None, 0x0100, OTHER, VersionStatus::NoRelease),
        ];
        for (fw, bcd, model, want) in cases {
            let mut d = device("d", model, Some("S"), fw);
            d.bcd_device = bcd;
            assert_eq!(status(&releases, &d), want, "{fw:?} {bcd:04x} {model:?}");
        }
    }

    #[test]
    fn counts_per_model_and_version() {
        let mut s = snapshot();
        s.releases = vec![
            release(VOYAGER, "Voyager", "1.0"),
            release(VOYAGER, "Voyager", "2.0"),
        ];
        let mut gone = device("d9", VOYAGER, Some("S9"), Some("1.0"));
        gone.deleted_at = Some(day(11));
        s.devices = vec![
            device("d1", VOYAGER, Some("S1"), Some("2.0")),
            device("d2", VOYAGER, Some("S2"), Some("1.0")),
            device("d3", VOYAGER, Some("S3"), Some("1.0")),
            device("d4", VOYAGER, Some("S4"), None),
            device("d5", OTHER, None, Some("7.1")),
            gone,
        ];
        let models = models(&s);
        let summary: Vec<_> = models
            .iter()
            .map(|m| {
                (
                    m.model.as_str(),
                    m.latest_version.as_deref(),
                    m.devices,
                    m.up_to_date,
                    m.outdated,
                    m.unknown,
                    m.no_release,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("047F:C056", Some("2.0"), 4, 1, 2, 1, 0),
                ("0B0E:0422", None, 1, 0, 0, 0, 1),
            ]
        );
        let built = build(&s);
        assert_eq!(
            built.rows(),
            [
                ["047F:C056", "Voyager", "2.0", "2.0", "up_to_date", "1"],
                ["047F:C056", "Voyager", "2.0", "1.0", "outdated", "2"],
                ["047F:C056", "Voyager", "2.0", "", "unknown", "1"],
                ["0B0E:0422", "Product d5", "", "7.1", "no_release", "1"],
            ]
        );
        assert_eq!(
            built.json()["models"][0]["versions"][1]["status"],
            "outdated"
        );
        assert_eq!(built.json()["models"][0]["versions"][1]["devices"], 2);
    }
}
