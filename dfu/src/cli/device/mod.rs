//! Subcommands that talk to devices: `dfu list`, `dfu flash`, `dfu read`.
//!
//! Each is generic over [`Backend`] so the same code runs against real USB
//! ([`UsbBackend`]) and, in tests, the simulated bus of `test-devices`.

pub(crate) mod flash;
pub(crate) mod list;
pub(crate) mod read;

use std::fmt::Write as _;

use dfu::host::{Backend, DeviceInfo, DeviceMatcher, DfuMode, Phase, Progress};
use dfu::usb::UsbBackend;
use indicatif::{ProgressBar, ProgressStyle};

use super::CliError;

/// Opens libusb.
pub(crate) fn usb() -> Result<UsbBackend, CliError> {
    UsbBackend::new().map_err(|e| CliError(format!("cannot open USB: {e}")))
}

/// One line describing a device.
pub(crate) fn describe(d: &DeviceInfo) -> String {
    let mut s = format!(
        "{}  {:<7}",
        d.vid_pid(),
        match d.mode() {
            Some(DfuMode::Runtime) => "runtime",
            Some(DfuMode::Dfu) => "dfu",
            None => "?",
        }
    );
    let _ = write!(s, "  bcdDevice {:04x}", d.bcd_device);
    if let Some(serial) = &d.serial {
        let _ = write!(s, "  serial {serial}");
    }
    if let Some(port) = &d.port_path {
        let _ = write!(s, "  port {port}");
    }
    if let Some(i) = d.interfaces.first() {
        let f = &i.functional;
        let _ = write!(
            s,
            "  {}transfer {}{}{}",
            if f.is_dfuse() { "DfuSe  " } else { "" },
            f.transfer_size,
            if f.attributes.can_upload {
                "  upload"
            } else {
                ""
            },
            if f.attributes.manifestation_tolerant {
                ""
            } else {
                "  needs-reset"
            },
        );
    }
    if let Some(p) = &d.product {
        let _ = write!(s, "  \"{p}\"");
    }
    s
}

/// Picks the device to work on: the one matching `selector` (`VID:PID`, serial number or
/// port path), or the only DFU device attached.
pub(crate) fn select<B: Backend>(
    backend: &B,
    selector: Option<&str>,
) -> Result<B::Transport, CliError> {
    let devices = backend
        .devices()
        .map_err(|e| CliError(format!("cannot list USB devices: {e}")))?;
    let matching: Vec<&DeviceInfo> = match selector {
        Some(sel) => {
            let m = DeviceMatcher::parse_selector(sel);
            devices
                .iter()
                .filter(|d| m.matches(d) || d.port_path.as_deref() == Some(sel))
                .collect()
        }
        None => devices.iter().collect(),
    };
    let chosen = match matching.as_slice() {
        [] => {
            return Err(CliError(match selector {
                Some(sel) => format!("no DFU device matches {sel:?} (see `dfu list`)"),
                None => "no DFU device found".to_owned(),
            }))
        }
        [one] => *one,
        many => {
            let list: Vec<String> = many.iter().map(|d| format!("  {}", describe(d))).collect();
            return Err(CliError(format!(
                "{} DFU devices found; choose one with --device VID:PID, serial or port:\n{}",
                many.len(),
                list.join("\n")
            )));
        }
    };
    let exact = DeviceMatcher {
        vendor_id: Some(chosen.vendor_id),
        product_id: Some(chosen.product_id),
        serial: chosen.serial.clone(),
        port_path: chosen.port_path.clone(),
        mode: chosen.mode(),
    };
    backend
        .open(&exact)
        .map_err(|e| CliError(format!("cannot open {}: {e}", chosen.vid_pid())))
}

/// A progress bar on stderr, one phase at a time.
#[derive(Debug)]
pub(crate) struct Bar {
    bar: ProgressBar,
    phase: Option<Phase>,
}

impl Bar {
    /// A bar (hidden when `quiet`).
    pub(crate) fn new(quiet: bool) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(0)
        };
        bar.set_style(
            ProgressStyle::with_template("{msg:>12} [{bar:40}] {bytes}/{total_bytes}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Self { bar, phase: None }
    }

    /// Ends the bar.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn report(&mut self, phase: Phase, done: u64, total: u64) {
        if self.phase != Some(phase) {
            self.phase = Some(phase);
            self.bar.set_message(phase.to_string());
            self.bar.set_length(total);
        }
        self.bar.set_position(done);
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use test_devices::{ModelProfile, SimDevice, VirtualBus};

    /// A bus with the tolerant headset and the DfuSe speakerphone.
    pub(crate) fn bus() -> VirtualBus {
        let bus = VirtualBus::new();
        bus.attach(SimDevice::new(ModelProfile::headset_tolerant()));
        bus.attach(SimDevice::new(ModelProfile::dfuse_speakerphone()));
        bus
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_by_serial_vid_pid_port_or_the_only_device() {
        let bus = testing::bus();
        let cases = [
            (Some("VH5200-0001"), Ok("1209:0003")),
            (Some("1209:0005"), Ok("1209:0005")),
            (Some("1-2"), Ok("1209:0005")),
            (
                Some("nope"),
                Err("no DFU device matches \"nope\" (see `dfu list`)"),
            ),
        ];
        for (sel, want) in cases {
            let got = select(&bus, sel)
                .map(|t| dfu::host::Transport::device(&t).vid_pid())
                .map_err(|e| e.0);
            assert_eq!(got.as_deref().map_err(String::as_str), want, "{sel:?}");
        }
        let err = select(&bus, None).unwrap_err().0;
        assert!(err.starts_with("2 DFU devices found"), "{err}");
        let one = test_devices::VirtualBus::new();
        one.attach(test_devices::SimDevice::new(
            test_devices::ModelProfile::usb_dongle(),
        ));
        assert!(select(&one, None).is_ok());
    }

    #[test]
    fn describe_shows_ids_mode_serial_and_capabilities() {
        let bus = testing::bus();
        let d = bus.dfu_devices();
        assert_eq!(
            describe(&d[0].1),
            "1209:0003  runtime  bcdDevice 0100  serial VH5200-0001  port 1-1  transfer 2048  upload  \"Voyage 5200 USB headset\""
        );
        assert!(describe(&d[1].1).contains("DfuSe  transfer 2048"));
    }
}
