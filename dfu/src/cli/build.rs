//! `dfu build`: wrap a raw image into a `.dfu` or DfuSe file.

use std::path::PathBuf;

use dfu::file::{has_dfu_suffix, DfuFile, DfuSeTarget, ANY};

use super::{parse_u16, parse_u32, parse_u8, CliError};

/// Arguments of `dfu build`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// USB vendor id for the suffix (0xffff = any).
    #[arg(long, value_parser = parse_u16, default_value = "0xffff")]
    vid: u16,
    /// USB product id for the suffix (0xffff = any).
    #[arg(long, value_parser = parse_u16, default_value = "0xffff")]
    pid: u16,
    /// bcdDevice (firmware release) for the suffix (0xffff = any).
    #[arg(long, value_parser = parse_u16, default_value = "0xffff")]
    bcd_device: u16,
    /// Write a DfuSe file (one target, one element) instead of plain DFU.
    #[arg(long, requires = "address")]
    dfuse: bool,
    /// DfuSe: load address of the image.
    #[arg(long, value_parser = parse_u32, requires = "dfuse")]
    address: Option<u32>,
    /// DfuSe: alternate setting of the target.
    #[arg(long, value_parser = parse_u8, default_value = "0", requires = "dfuse")]
    alt: u8,
    /// DfuSe: target name.
    #[arg(long, requires = "dfuse")]
    name: Option<String>,
    /// The raw firmware image (without a DFU suffix).
    image: PathBuf,
    /// Where to write the result.
    #[arg(short, long)]
    output: PathBuf,
}

/// Builds the file and writes it to `--output`.
pub(crate) fn run(args: Args) -> Result<(), CliError> {
    let image = std::fs::read(&args.image).map_err(|e| CliError::about(&args.image, e))?;
    if has_dfu_suffix(&image) {
        return Err(CliError::about(
            &args.image,
            "already ends with a DFU suffix; give the raw image (dfu-suffix -D removes it)",
        ));
    }
    let file = match args.address {
        Some(address) if args.dfuse => {
            let name = args.name.as_deref().filter(|n| !n.is_empty());
            let target = DfuSeTarget::new(args.alt, name, [(address, image)]);
            DfuFile::new_dfuse(args.vid, args.pid, args.bcd_device, vec![target])
                .map_err(|e| CliError(e.to_string()))?
        }
        _ => DfuFile::new_raw(args.vid, args.pid, args.bcd_device, image),
    };
    let bytes = file.try_to_bytes().map_err(|e| CliError(e.to_string()))?;
    std::fs::write(&args.output, &bytes).map_err(|e| CliError::about(&args.output, e))?;
    let any = |v: u16| if v == ANY { " (any)" } else { "" };
    eprintln!(
        "wrote {} ({} bytes, {} for {:04x}{}:{:04x}{} device {:04x}{})",
        args.output.display(),
        bytes.len(),
        if file.is_dfuse() { "DfuSe" } else { "DFU" },
        args.vid,
        any(args.vid),
        args.pid,
        any(args.pid),
        args.bcd_device,
        any(args.bcd_device),
    );
    Ok(())
}
