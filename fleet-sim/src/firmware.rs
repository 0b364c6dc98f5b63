//! Sample firmware for the simulated models, written as the `.dfu` / DfuSe
//! files a vendor ships and imported the way an admin would.

use std::path::Path;

use catalog::import::ImportOptions;
use catalog::package::HardwareId;
use catalog::Catalog;
use chrono::{DateTime, Utc};
use dfu::file::{DfuFile, DfuSeTarget};
use test_devices::image::{build, test_payload};
use test_devices::{FirmwareVersion, ModelProfile};

/// A simulated model the demo ships firmware for.
#[derive(Debug, Clone)]
pub struct Model {
    /// The `test_devices::ModelProfile` constructor name (the agent's config name).
    pub profile: &'static str,
    /// What admins call it.
    pub name: &'static str,
    /// The device as it leaves the factory.
    pub device: ModelProfile,
    /// Written as a DfuSe file (else a plain `.dfu`).
    pub dfuse: bool,
}

impl Model {
    /// `VID:PID` of the model in runtime mode, as policies name it.
    pub fn hardware_id(&self) -> HardwareId {
        HardwareId::new(self.device.vendor_id, self.device.runtime_pid)
    }

    /// Whether the device must be unplugged and replugged after flashing.
    pub fn needs_replug(&self) -> bool {
        !self.device.manifestation_tolerant && !self.device.reset_after_manifest
    }
}

/// The models of the demo fleet: a tolerant headset, one that needs a
/// replug, a DfuSe speakerphone, and a two-piece product (base + dongle).
pub fn models() -> Vec<Model> {
    vec![
        Model {
            profile: "headset_tolerant",
            name: "Voyage 5200",
            device: ModelProfile::headset_tolerant(),
            dfuse: false,
        },
        Model {
            profile: "headset_needs_replug",
            name: "Voyage 3200",
            device: ModelProfile::headset_needs_replug(),
            dfuse: false,
        },
        Model {
            profile: "dfuse_speakerphone",
            name: "Speak 710",
            device: ModelProfile::dfuse_speakerphone(),
            dfuse: true,
        },
        Model {
            profile: "base_station",
            name: "Orbit 8200 base",
            device: ModelProfile::base_station(),
            dfuse: false,
        },
        Model {
            profile: "usb_dongle",
            name: "Orbit BT600 dongle",
            device: ModelProfile::usb_dongle(),
            dfuse: false,
        },
    ]
}

/// The version every device ships with.
pub const FACTORY_VERSION: FirmwareVersion = FirmwareVersion::new(1, 0, 0);
/// The version the demo rolls out.
pub const NEW_VERSION: FirmwareVersion = FirmwareVersion::new(2, 1, 0);

/// The vendor file for `model` at `version`.
pub fn vendor_file(model: &Model, version: FirmwareVersion) -> anyhow::Result<Vec<u8>> {
    let seed = u8::try_from(model.device.runtime_pid & 0xff).unwrap_or(0);
    let image = build(
        model.device.runtime_pid,
        version,
        &test_payload(48 * 1024, seed),
    );
    let d = &model.device;
    let file = if model.dfuse {
        let target = DfuSeTarget::new(0, Some("Internal Flash"), [(0x0800_0000, image)]);
        DfuFile::new_dfuse(d.vendor_id, d.runtime_pid, 0xffff, vec![target])?
    } else {
        DfuFile::new_raw(d.vendor_id, d.runtime_pid, 0xffff, image)
    };
    Ok(file.try_to_bytes()?)
}

/// Imports `version` of every model; returns the target names.
pub fn import_all(
    catalog: &mut Catalog,
    scratch: &Path,
    version: FirmwareVersion,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for m in models() {
        let path = scratch.join(format!("{}-{version}.dfu", m.profile));
        std::fs::write(&path, vendor_file(&m, version)?)?;
        let opts = ImportOptions {
            vendor: Some("Acme Audio".into()),
            model: Some(m.name.into()),
            hardware_ids: vec![m.hardware_id()],
            version: Some(version.to_string()),
            needs_replug: Some(m.needs_replug()),
            silent_capable: Some(true),
            release_notes: Some(format!("{} firmware {version}", m.name)),
            ..Default::default()
        };
        names.push(catalog.import(&path, &opts, now)?.release.target_name);
    }
    Ok(names)
}
