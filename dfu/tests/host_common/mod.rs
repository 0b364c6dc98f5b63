//! Shared helpers for the host protocol tests (simulated bus and devices).
#![allow(dead_code, unreachable_pub)]

use dfu::host::{FlashOptions, Phase};
use dfu::quirks::QuirkTable;
use test_devices::image::{self, FirmwareVersion};
use test_devices::{DeviceId, ModelProfile, SimDevice, VirtualBus};

/// A bus with one device of `profile` attached.
pub fn bus_with(profile: ModelProfile) -> (VirtualBus, DeviceId) {
    let bus = VirtualBus::new();
    let id = bus.attach(SimDevice::new(profile));
    (bus, id)
}

/// A valid image for `profile` with `version` and a payload of `len` bytes.
pub fn image_for(profile: &ModelProfile, version: FirmwareVersion, len: usize) -> Vec<u8> {
    image::build(profile.runtime_pid, version, &image::test_payload(len, 42))
}

/// Flash options using the simulator's quirk table.
pub fn options() -> FlashOptions {
    FlashOptions {
        quirks: test_devices::profile::quirk_table(),
        ..FlashOptions::default()
    }
}

/// Flash options with no quirks at all.
pub fn options_without_quirks() -> FlashOptions {
    FlashOptions {
        quirks: QuirkTable::new(),
        ..FlashOptions::default()
    }
}

/// Records progress reports.
#[derive(Debug, Default)]
pub struct Recorder {
    pub reports: Vec<(Phase, u64, u64)>,
}

impl Recorder {
    pub fn phases(&self) -> Vec<Phase> {
        let mut v: Vec<Phase> = Vec::new();
        for (p, _, _) in &self.reports {
            if v.last() != Some(p) {
                v.push(*p);
            }
        }
        v
    }
}

impl dfu::host::Progress for Recorder {
    fn report(&mut self, phase: Phase, done: u64, total: u64) {
        self.reports.push((phase, done, total));
    }
}

pub const V2: FirmwareVersion = FirmwareVersion::new(2, 14, 3);
