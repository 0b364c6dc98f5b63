//! Sample firmware for the demo: a few simulated headset models, written as
//! real `.dfu` / DfuSe files and imported like an admin would.

use ::catalog::import::ImportOptions;
use ::catalog::package::HardwareId;
use ::catalog::Catalog;
use chrono::{DateTime, Utc};
use dfu::file::{DfuFile, DfuSeTarget};

struct Sample {
    model: &'static str,
    vid: u16,
    pid: u16,
    version: &'static str,
    dfuse: bool,
    needs_replug: bool,
    notes: &'static str,
}

const SAMPLES: &[Sample] = &[
    Sample {
        model: "Voyager 8200 UC",
        vid: 0x047f,
        pid: 0xc056,
        version: "2.14.0",
        dfuse: false,
        needs_replug: false,
        notes: "Improves wideband audio stability.",
    },
    Sample {
        model: "Blackwire 5220",
        vid: 0x047f,
        pid: 0xc0a1,
        version: "1.7.2",
        dfuse: false,
        needs_replug: true,
        notes: "Fixes mute sync. The headset must be unplugged and replugged after the update.",
    },
    Sample {
        model: "Savi 8220 Base",
        vid: 0x047f,
        pid: 0xac28,
        version: "4.2.0",
        dfuse: true,
        needs_replug: false,
        notes: "Base station firmware (DfuSe).",
    },
];

/// Deterministic image bytes for a sample, so every demo run imports the same blobs.
fn image(sample: &Sample, len: usize) -> Vec<u8> {
    let seed = u32::from(sample.pid) ^ sample.version.bytes().map(u32::from).sum::<u32>();
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed).to_le_bytes()[1])
        .collect()
}

/// Imports the sample firmware if the catalog has none yet.
pub(crate) fn seed(catalog: &mut Catalog, now: DateTime<Utc>) -> anyhow::Result<()> {
    if !catalog.releases().is_empty() {
        println!(
            "catalog already holds {} releases",
            catalog.releases().len()
        );
        return Ok(());
    }
    let scratch = tempfile::tempdir()?;
    for s in SAMPLES {
        let file = if s.dfuse {
            let target = DfuSeTarget::new(
                0,
                Some("Internal Flash"),
                [(0x0800_0000, image(s, 96 * 1024))],
            );
            DfuFile::new_dfuse(s.vid, s.pid, 0xffff, vec![target])?
        } else {
            DfuFile::new_raw(s.vid, s.pid, 0xffff, image(s, 128 * 1024))
        };
        let path = scratch.path().join(format!("{}.dfu", s.version));
        std::fs::write(&path, file.try_to_bytes()?)?;
        let opts = ImportOptions {
            vendor: Some("Acme Audio".into()),
            model: Some(s.model.into()),
            hardware_ids: vec![HardwareId::new(s.vid, s.pid)],
            version: Some(s.version.into()),
            needs_replug: Some(s.needs_replug),
            silent_capable: Some(true),
            release_notes: Some(s.notes.into()),
            ..Default::default()
        };
        let r = catalog.import(&path, &opts, now)?.release;
        println!("imported {} ({} bytes)", r.target_name, r.size);
    }
    Ok(())
}
