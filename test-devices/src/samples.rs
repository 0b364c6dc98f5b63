//! Sample vendor firmware for the simulated models: the `.dfu` / DfuSe files
//! a vendor of these devices would ship, holding an image each simulated
//! device accepts (see [`crate::image`]). The fleet demo, the server's
//! `demo` command and the `sim-firmware` tool all build theirs here, so
//! sample firmware always fits the simulated models.

use dfu::file::{DfuFile, DfuSeTarget, FileError};

use crate::image::{build, test_payload, FirmwareVersion};
use crate::profile::ModelProfile;

/// A simulated model the samples ship firmware for.
#[derive(Debug, Clone)]
pub struct Model {
    /// The [`ModelProfile`] constructor name (the agent's config name).
    pub profile: &'static str,
    /// What admins call it.
    pub name: &'static str,
    /// The device as it leaves the factory.
    pub device: ModelProfile,
    /// Written as a DfuSe file (else a plain `.dfu`).
    pub dfuse: bool,
}

impl Model {
    /// Whether the device must be unplugged and replugged after flashing.
    pub fn needs_replug(&self) -> bool {
        self.device.needs_replug()
    }
}

/// The sample models: a tolerant headset, one that needs a replug, a DfuSe
/// speakerphone, and a two-piece product (base + dongle, family "Orbit").
pub fn models() -> Vec<Model> {
    let model = |profile, name, device, dfuse| Model {
        profile,
        name,
        device,
        dfuse,
    };
    vec![
        model(
            "headset_tolerant",
            "Voyage 5200",
            ModelProfile::headset_tolerant(),
            false,
        ),
        model(
            "headset_needs_replug",
            "Voyage 3200",
            ModelProfile::headset_needs_replug(),
            false,
        ),
        model(
            "dfuse_speakerphone",
            "Speak 710",
            ModelProfile::dfuse_speakerphone(),
            true,
        ),
        model(
            "base_station",
            "Orbit 8200 base",
            ModelProfile::base_station(),
            false,
        ),
        model(
            "usb_dongle",
            "Orbit BT600 dongle",
            ModelProfile::usb_dongle(),
            false,
        ),
    ]
}

/// The vendor file for `model` at `version`: a `.dfu` (or DfuSe) file whose
/// image the model accepts and then reports `version` from.
pub fn vendor_file(model: &Model, version: FirmwareVersion) -> Result<Vec<u8>, FileError> {
    image_file(&model.device, model.dfuse, version)
}

/// A vendor file for any profile: DfuSe when `dfuse`, else a plain `.dfu`.
pub fn image_file(
    device: &ModelProfile,
    dfuse: bool,
    version: FirmwareVersion,
) -> Result<Vec<u8>, FileError> {
    let seed = u8::try_from(device.runtime_pid & 0xff).unwrap_or(0);
    let image = build(device.runtime_pid, version, &test_payload(48 * 1024, seed));
    let file = if dfuse {
        let target = DfuSeTarget::new(0, Some("Internal Flash"), [(0x0800_0000, image)]);
        DfuFile::new_dfuse(device.vendor_id, device.runtime_pid, 0xffff, vec![target])?
    } else {
        DfuFile::new_raw(device.vendor_id, device.runtime_pid, 0xffff, image)
    };
    file.try_to_bytes()
}
