//! `dfu flash FILE [--device VID:PID|serial|port]`.

use std::path::PathBuf;

use dfu::file::{DfuFile, Firmware};
use dfu::host::{
    flash, flash_dfuse, Backend, DfuseSegment, FlashOptions, FlashOutcome, FlashReport, Progress,
    Transport,
};

use super::super::CliError;
use super::{select, usb, Bar};

/// Arguments of `dfu flash`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The firmware: a .dfu file, a DfuSe file, or a raw image (no suffix).
    pub(crate) file: PathBuf,
    /// Which device: VID:PID (hex), serial number or port path. Needed when several
    /// DFU devices are attached.
    #[arg(long)]
    pub(crate) device: Option<String>,
    /// Do not read the firmware back to verify it.
    #[arg(long)]
    pub(crate) no_verify: bool,
    /// Leave the device in DFU mode instead of restarting it.
    #[arg(long)]
    pub(crate) no_reset: bool,
    /// Flash even if the file's DFU suffix names another VID:PID.
    #[arg(long)]
    pub(crate) force: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

/// Flashes a device on real USB.
pub(crate) fn run(args: Args) -> Result<(), CliError> {
    let mut bar = Bar::new(args.quiet);
    let result = flash_with(&usb()?, &args, &mut bar);
    bar.finish();
    println!("{}", result?);
    Ok(())
}

/// Flashes the selected device; returns the summary line.
pub(crate) fn flash_with<B: Backend>(
    backend: &B,
    args: &Args,
    progress: &mut dyn Progress,
) -> Result<String, CliError> {
    let bytes = std::fs::read(&args.file).map_err(|e| CliError::about(&args.file, e))?;
    let file = DfuFile::parse_lenient(&bytes).map_err(|e| CliError::about(&args.file, e))?;
    let transport = select(backend, args.device.as_deref())?;
    let dev = transport.device().clone();
    let s = &file.suffix;
    if s.is_present() && !args.force && !s.matches(dev.vendor_id, dev.product_id, s.bcd_device) {
        return Err(CliError(format!(
            "{} is for {:04x}:{:04x}, not for {} (use --force to flash anyway)",
            args.file.display(),
            s.id_vendor,
            s.id_product,
            dev.vid_pid()
        )));
    }
    let options = FlashOptions {
        verify: !args.no_verify,
        reset_after: !args.no_reset,
        ..FlashOptions::default()
    };
    let report = match &file.firmware {
        Firmware::Raw(image) => flash(transport, image, &options, progress),
        Firmware::DfuSe(img) => {
            let segments: Vec<DfuseSegment> = img
                .targets
                .iter()
                .flat_map(|t| {
                    t.elements.iter().map(|e| DfuseSegment {
                        alt_setting: t.alt_setting,
                        address: e.address,
                        data: e.data.clone(),
                    })
                })
                .collect();
            let leave = (!args.no_reset)
                .then(|| segments.first().map(|s| s.address))
                .flatten();
            flash_dfuse(transport, &segments, leave, &options, progress)
        }
    }
    .map_err(|e| CliError(format!("flashing {} failed: {e}", dev.vid_pid())))?;
    Ok(summary(&report))
}

fn summary(r: &FlashReport) -> String {
    let who = match &r.device.serial {
        Some(s) => format!("{} ({s})", r.device.vid_pid()),
        None => r.device.vid_pid(),
    };
    let verified = if r.verified { ", verified" } else { "" };
    match r.outcome {
        FlashOutcome::Running => format!(
            "flashed {} bytes{verified}; {who} is running, bcdDevice {:04x}",
            r.bytes, r.device.bcd_device
        ),
        FlashOutcome::NeedsReplug => format!(
            "flashed {} bytes{verified}; unplug {who} and plug it back in to finish the update",
            r.bytes
        ),
        FlashOutcome::InDfuMode => {
            format!(
                "flashed {} bytes{verified}; {who} is still in DFU mode",
                r.bytes
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfu::file::DfuSeTarget;
    use test_devices::image::{self, FirmwareVersion};

    fn args(file: PathBuf, device: Option<&str>) -> Args {
        Args {
            file,
            device: device.map(str::to_owned),
            no_verify: false,
            no_reset: false,
            force: false,
            quiet: true,
        }
    }

    #[test]
    fn flashes_dfu_raw_and_dfuse_files() {
        let dir = tempfile::tempdir().unwrap();
        let v = FirmwareVersion::new(2, 5, 0);
        let app = image::build(0x0003, v, &image::test_payload(5000, 1));
        let dfu_path = dir.path().join("headset.dfu");
        std::fs::write(
            &dfu_path,
            DfuFile::new_raw(0x1209, 0x0003, 0xFFFF, app.clone()).to_bytes(),
        )
        .unwrap();
        let raw_path = dir.path().join("headset.bin");
        std::fs::write(&raw_path, &app).unwrap();
        let se_app = image::build(0x0005, v, &image::test_payload(3000, 2));
        let se_path = dir.path().join("speaker.dfu");
        let se = DfuFile::new_dfuse(
            0x1209,
            0x0005,
            0xFFFF,
            vec![DfuSeTarget::new(
                0,
                Some("Internal Flash"),
                [(0x0800_0000, se_app)],
            )],
        )
        .unwrap();
        std::fs::write(&se_path, se.to_bytes()).unwrap();

        let bus = super::super::testing::bus();
        let np = &mut dfu::host::NoProgress;
        let msg = flash_with(&bus, &args(dfu_path.clone(), Some("VH5200-0001")), np).unwrap();
        assert_eq!(
            msg,
            "flashed 5032 bytes, verified; 1209:0003 (VH5200-0001) is running, bcdDevice 0205"
        );
        let msg = flash_with(&bus, &args(raw_path, Some("1209:0003")), np).unwrap();
        assert!(msg.ends_with("bcdDevice 0205"), "{msg}");
        let msg = flash_with(&bus, &args(se_path, Some("SP710-0001")), np).unwrap();
        assert_eq!(
            msg,
            "flashed 3032 bytes, verified; 1209:0005 (SP710-0001) is running, bcdDevice 0205"
        );
        // The .dfu suffix names the headset; the speakerphone refuses it without --force.
        let err = flash_with(&bus, &args(dfu_path, Some("SP710-0001")), np).unwrap_err();
        assert!(
            err.0.contains("is for 1209:0003, not for 1209:0005"),
            "{}",
            err.0
        );
    }

    #[test]
    fn replug_devices_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let bus = test_devices::VirtualBus::new();
        bus.attach(test_devices::SimDevice::new(
            test_devices::ModelProfile::headset_needs_replug(),
        ));
        let path = dir.path().join("fw.bin");
        std::fs::write(
            &path,
            image::build(0x0001, FirmwareVersion::new(3, 0, 0), &[1; 900]),
        )
        .unwrap();
        let msg = flash_with(&bus, &args(path, None), &mut dfu::host::NoProgress).unwrap();
        assert_eq!(msg, "flashed 932 bytes; unplug 1209:0002 (VH3200-0001) and plug it back in to finish the update");
    }
}
