//! `dfu list`: DFU-capable devices in runtime and DFU mode.

use dfu::host::Backend;

use super::super::CliError;
use super::{describe, usb};

/// Arguments of `dfu list`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Also print each DFU interface (alternate settings, DfuSe memory layouts).
    #[arg(long, short)]
    verbose: bool,
}

/// Lists devices on real USB.
pub(crate) fn run(args: Args) -> Result<(), CliError> {
    print!("{}", render(&usb()?, &args)?);
    Ok(())
}

/// The listing as text.
pub(crate) fn render<B: Backend>(backend: &B, args: &Args) -> Result<String, CliError> {
    let devices = backend
        .devices()
        .map_err(|e| CliError(format!("cannot list USB devices: {e}")))?;
    if devices.is_empty() {
        return Ok("no DFU devices found\n".to_owned());
    }
    let mut out = String::new();
    for d in &devices {
        out.push_str(&describe(d));
        out.push('\n');
        if args.verbose {
            for i in &d.interfaces {
                out.push_str(&format!(
                    "    interface {} alt {}: {}\n",
                    i.number,
                    i.alt_setting,
                    i.name.as_deref().unwrap_or("-")
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_device_and_its_alternate_settings() {
        let bus = super::super::testing::bus();
        let plain = render(&bus, &Args { verbose: false }).unwrap();
        assert_eq!(plain.lines().count(), 2);
        assert!(plain.contains("serial SP710-0001"));
        // In DFU mode the speakerphone shows both DfuSe targets.
        let t = dfu::host::Backend::open(
            &bus,
            &dfu::host::DeviceMatcher::parse_selector("SP710-0001"),
        )
        .unwrap();
        let mut host = dfu::host::DfuHost::with_quirks(t, Default::default()).unwrap();
        host.enter_dfu_mode(&mut dfu::host::NoProgress).unwrap();
        let verbose = render(&bus, &Args { verbose: true }).unwrap();
        assert!(verbose.contains("1209:0006  dfu"), "{verbose}");
        assert!(
            verbose.contains("alt 1: @Device ID /0x1FFF7A10/01*012 a"),
            "{verbose}"
        );
        let empty = test_devices::VirtualBus::new();
        assert_eq!(
            render(&empty, &Args { verbose: false }).unwrap(),
            "no DFU devices found\n"
        );
    }
}
