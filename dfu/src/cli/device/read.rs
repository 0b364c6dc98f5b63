//! `dfu read OUTPUT [--device ...]`: upload the firmware from a device into a file.

use std::path::PathBuf;

use dfu::host::{Backend, DfuHost, Progress};
use dfu::quirks::QuirkTable;

use super::super::{parse_u32, CliError};
use super::{select, usb, Bar};

/// Arguments of `dfu read`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where to write the firmware read from the device.
    pub(crate) output: PathBuf,
    /// Which device: VID:PID (hex), serial number or port path.
    #[arg(long)]
    pub(crate) device: Option<String>,
    /// DFU alternate setting (DfuSe target) to read.
    #[arg(long, default_value_t = 0)]
    pub(crate) alt: u8,
    /// DfuSe: start address (default: start of the target's memory).
    #[arg(long, value_parser = parse_u32)]
    pub(crate) address: Option<u32>,
    /// Bytes to read (default: until the device stops; DfuSe: the whole memory).
    #[arg(long, value_parser = parse_u32)]
    pub(crate) length: Option<u32>,
    /// Restart the device into its application afterwards.
    #[arg(long)]
    pub(crate) reset: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

/// Reads from a device on real USB.
pub(crate) fn run(args: Args) -> Result<(), CliError> {
    let mut bar = Bar::new(args.quiet);
    let result = read_with(&usb()?, &args, &mut bar);
    bar.finish();
    println!("{}", result?);
    Ok(())
}

/// Reads into `args.output`; returns the summary line.
pub(crate) fn read_with<B: Backend>(
    backend: &B,
    args: &Args,
    progress: &mut dyn Progress,
) -> Result<String, CliError> {
    let transport = select(backend, args.device.as_deref())?;
    let fail = |e: dfu::host::DfuError| CliError(format!("reading failed: {e}"));
    let mut host = DfuHost::new(transport, QuirkTable::builtin()).map_err(fail)?;
    host.enter_dfu_mode(progress).map_err(fail)?;
    if args.alt != 0 || host.device().interfaces.len() > 1 {
        host.select_alt(args.alt).map_err(fail)?;
    }
    let length = args.length.map(|l| l as usize);
    let data = if host.interface().functional.is_dfuse() {
        let layout = host.dfuse_layout().map_err(fail)?;
        let start = layout.sectors[0].address;
        let address = args.address.unwrap_or(start);
        let end = u64::from(start) + layout.total_size();
        let len =
            length.unwrap_or(usize::try_from(end.saturating_sub(u64::from(address))).unwrap_or(0));
        host.dfuse_upload(address, len, progress).map_err(fail)?
    } else {
        host.upload(length, progress).map_err(fail)?
    };
    if args.reset {
        host.reset_to_runtime(progress).map_err(fail)?;
    }
    std::fs::write(&args.output, &data).map_err(|e| CliError::about(&args.output, e))?;
    Ok(format!(
        "read {} bytes from {} into {}",
        data.len(),
        host.device().vid_pid(),
        args.output.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(output: PathBuf, device: &str) -> Args {
        Args {
            output,
            device: Some(device.to_owned()),
            alt: 0,
            address: None,
            length: None,
            reset: true,
            quiet: true,
        }
    }

    #[test]
    fn reads_dfu_and_dfuse_devices_into_files() {
        let dir = tempfile::tempdir().unwrap();
        let bus = super::super::testing::bus();
        let np = &mut dfu::host::NoProgress;
        let out = dir.path().join("headset.bin");
        let msg = read_with(&bus, &args(out.clone(), "VH5200-0001"), np).unwrap();
        assert!(msg.starts_with("read 4128 bytes from 1209:0003"), "{msg}");
        let data = std::fs::read(&out).unwrap();
        let h = test_devices::image::validate(&data).unwrap();
        assert_eq!(h.version, test_devices::FirmwareVersion::new(1, 0, 0));

        let out = dir.path().join("id.bin");
        let mut a = args(out.clone(), "SP710-0001");
        a.alt = 1;
        read_with(&bus, &a, np).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), vec![0xFF; 12]);

        let out = dir.path().join("flash.bin");
        let mut a = args(out.clone(), "SP710-0001");
        a.address = Some(0x0800_0000);
        a.length = Some(64);
        read_with(&bus, &a, np).unwrap();
        assert_eq!(&std::fs::read(&out).unwrap()[..4], b"FWIM");
    }

    #[test]
    fn devices_without_upload_give_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let bus = test_devices::VirtualBus::new();
        bus.attach(test_devices::SimDevice::new(
            test_devices::ModelProfile::usb_dongle(),
        ));
        let err = read_with(
            &bus,
            &args(dir.path().join("x"), "OBT600-0001"),
            &mut dfu::host::NoProgress,
        )
        .unwrap_err();
        assert_eq!(
            err.0,
            "reading failed: the device does not support reading firmware back (upload)"
        );
    }
}
