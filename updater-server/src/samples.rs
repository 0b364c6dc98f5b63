//! Sample firmware for the simulated models (`test_devices::samples`),
//! imported the way an admin would: the `demo` command seeds it, and the
//! fleet simulator imports every version of its story through it, so the
//! sample releases always fit the simulated devices.

use std::path::Path;

use ::catalog::import::ImportOptions;
use ::catalog::package::HardwareId;
use ::catalog::Catalog;
use chrono::{DateTime, Utc};
use test_devices::samples::{models, vendor_file, Model};
use test_devices::FirmwareVersion;

/// The version every simulated device ships with.
pub const FACTORY_VERSION: FirmwareVersion = FirmwareVersion::new(1, 0, 0);
/// The version the demo seeds and the fleet demo rolls out.
pub const NEW_VERSION: FirmwareVersion = FirmwareVersion::new(2, 1, 0);

/// `VID:PID` of a sample model in runtime mode, as policies name it.
pub fn hardware_id(model: &Model) -> HardwareId {
    HardwareId::new(model.device.vendor_id, model.device.runtime_pid)
}

/// Imports `version` of every sample model (vendor files written under
/// `scratch`); returns the target names.
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
            hardware_ids: vec![hardware_id(&m)],
            version: Some(version.to_string()),
            needs_replug: Some(m.needs_replug()),
            silent_capable: Some(true),
            release_notes: Some(format!("{} firmware {version}", m.name)),
            product_family: m.device.family.clone(),
            ..Default::default()
        };
        names.push(catalog.import(&path, &opts, now)?.release.target_name);
    }
    Ok(names)
}

/// The `demo` command's seed: [`NEW_VERSION`] of every sample model, if
/// the catalog has no release yet.
pub(crate) fn seed(catalog: &mut Catalog, now: DateTime<Utc>) -> anyhow::Result<()> {
    if !catalog.releases().is_empty() {
        println!(
            "catalog already holds {} releases",
            catalog.releases().len()
        );
        return Ok(());
    }
    let scratch = tempfile::tempdir()?;
    for name in import_all(catalog, scratch.path(), NEW_VERSION, now)? {
        println!("imported {name}");
    }
    Ok(())
}
