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
    models()
        .iter()
        .map(|m| import_one(catalog, scratch, m, version, &version.to_string(), now))
        .collect()
}

/// Imports one release of `model` (its vendor file written under
/// `scratch`): the image of `image`, catalogued as version `label`. The two
/// differ only for a broken release — the device flashed with it boots
/// `image`, so it never comes back with `label`. Returns the target name.
pub fn import_one(
    catalog: &mut Catalog,
    scratch: &Path,
    model: &Model,
    image: FirmwareVersion,
    label: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let path = scratch.join(format!("{}-{label}.dfu", model.profile));
    std::fs::write(&path, vendor_file(model, image)?)?;
    let opts = ImportOptions {
        vendor: Some("Acme Audio".into()),
        model: Some(model.name.into()),
        hardware_ids: vec![hardware_id(model)],
        version: Some(label.to_owned()),
        needs_replug: Some(model.needs_replug()),
        silent_capable: Some(true),
        release_notes: Some(format!("{} firmware {label}", model.name)),
        product_family: model.device.family.clone(),
        ..Default::default()
    };
    Ok(catalog.import(&path, &opts, now)?.release.target_name)
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
