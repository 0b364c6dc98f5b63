//! Model profiles: everything that makes one simulated model behave differently.
//! `README.md` of this crate documents each built-in profile.

use std::time::Duration;

use dfu::quirks::{PollTimeoutPolicy, QuirkEntry, QuirkTable, Quirks};

use crate::image::FirmwareVersion;

/// Our (simulated) vendor id: pid.codes' open VID; the PIDs below are made up for tests.
pub const OUR_VID: u16 = 0x1209;

/// The DfuSe side of a profile: one memory per alternate setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DfuseProfile {
    /// Layout strings, index = alternate setting.
    pub layouts: Vec<String>,
    /// Busy time of one page erase.
    pub erase_time: Duration,
}

/// A simulated model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelProfile {
    /// Marketing name (USB product string).
    pub name: String,
    /// Product family; pieces of one multi-piece product share it.
    pub family: Option<String>,
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct in runtime mode.
    pub runtime_pid: u16,
    /// idProduct in DFU mode (equal to `runtime_pid` for "no PID change" models).
    pub dfu_pid: u16,
    /// Serial number (None: the model reports none).
    pub serial: Option<String>,
    /// Firmware installed at first attach.
    pub initial_version: FirmwareVersion,
    /// bcdDevice of the bootloader in DFU mode.
    pub bootloader_bcd: u16,
    /// wTransferSize as advertised.
    pub transfer_size: u16,
    /// Largest block the device really accepts (larger ones stall); None = `transfer_size`.
    pub max_block: Option<u16>,
    /// bwPollTimeout reported while a block is being written.
    pub poll_timeout: Duration,
    /// How long writing one block really takes.
    pub block_busy: Duration,
    /// Manifestation time (reported as bwPollTimeout in dfuMANIFEST).
    pub manifest_time: Duration,
    /// bitManifestationTolerant as advertised.
    pub manifestation_tolerant: bool,
    /// Advertises non-tolerant, but really returns to dfuIDLE and only finishes
    /// manifesting while the host polls GETSTATUS (needs the `manifest_polling` quirk).
    pub manifest_needs_polling: bool,
    /// A USB reset after manifestation boots the new firmware; false: only a power cycle
    /// (unplug/replug) does.
    pub reset_after_manifest: bool,
    /// bitWillDetach as advertised.
    pub will_detach: bool,
    /// Detaches by itself on DETACH even though `will_detach` is false, and is confused
    /// by a host reset in appDETACH (needs the `will_detach` quirk).
    pub detaches_silently: bool,
    /// wDetachTimeOut in ms.
    pub detach_timeout_ms: u16,
    /// bitCanUpload as advertised.
    pub can_upload: bool,
    /// Stalls UPLOAD although it advertises it.
    pub upload_broken: bool,
    /// Needs a second USB reset to leave DFU mode.
    pub needs_extra_reset: bool,
    /// Time from disappearing to coming back on the bus.
    pub reenumeration_delay: Duration,
    /// Flash size for DFU 1.1 images.
    pub flash_size: usize,
    /// DfuSe memories (makes the device DfuSe, bcdDFUVersion 0x011A).
    pub dfuse: Option<DfuseProfile>,
    /// Quirks the host needs for this model (see [`quirk_table`]).
    pub quirks: Quirks,
    /// HID telephony interface (usage page 0x0B) in runtime mode.
    pub telephony: bool,
}

impl ModelProfile {
    /// Whether the device must be unplugged and replugged after flashing
    /// to run the new firmware (it neither stays nor resets itself).
    pub fn needs_replug(&self) -> bool {
        !self.manifestation_tolerant && !self.reset_after_manifest
    }

    fn base(name: &str, runtime_pid: u16, dfu_pid: u16, serial: &str) -> Self {
        Self {
            name: name.to_owned(),
            family: None,
            vendor_id: OUR_VID,
            runtime_pid,
            dfu_pid,
            serial: Some(serial.to_owned()),
            initial_version: FirmwareVersion::new(1, 0, 0),
            bootloader_bcd: 0x0100,
            transfer_size: 1024,
            max_block: None,
            poll_timeout: Duration::from_millis(5),
            block_busy: Duration::from_millis(5),
            manifest_time: Duration::from_millis(100),
            manifestation_tolerant: true,
            manifest_needs_polling: false,
            reset_after_manifest: true,
            will_detach: false,
            detaches_silently: false,
            detach_timeout_ms: 1000,
            can_upload: true,
            upload_broken: false,
            needs_extra_reset: false,
            reenumeration_delay: Duration::from_millis(500),
            flash_size: 512 * 1024,
            dfuse: None,
            quirks: Quirks::default(),
            telephony: true,
        }
    }

    /// A USB headset that must be unplugged and replugged after flashing: not
    /// manifestation-tolerant, and a USB reset does not restart it.
    pub fn headset_needs_replug() -> Self {
        Self {
            manifestation_tolerant: false,
            reset_after_manifest: false,
            can_upload: false,
            manifest_time: Duration::from_millis(200),
            ..Self::base("Voyage 3200 USB headset", 0x0001, 0x0002, "VH3200-0001")
        }
    }

    /// A manifestation-tolerant USB headset with upload (read-back) support.
    pub fn headset_tolerant() -> Self {
        Self {
            transfer_size: 2048,
            poll_timeout: Duration::from_millis(2),
            block_busy: Duration::from_millis(2),
            ..Self::base("Voyage 5200 USB headset", 0x0003, 0x0004, "VH5200-0001")
        }
    }

    /// A DfuSe speakerphone (STM32-style layout); leaves DFU mode by itself.
    pub fn dfuse_speakerphone() -> Self {
        Self {
            transfer_size: 2048,
            will_detach: true,
            poll_timeout: Duration::from_millis(3),
            block_busy: Duration::from_millis(3),
            dfuse: Some(DfuseProfile {
                layouts: vec![
                    "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg".to_owned(),
                    "@Device ID /0x1FFF7A10/01*012 a".to_owned(),
                ],
                erase_time: Duration::from_millis(25),
            }),
            ..Self::base("Speak 710 speakerphone", 0x0005, 0x0006, "SP710-0001")
        }
    }

    /// The base station of a two-piece product (pairs with [`Self::usb_dongle`]).
    pub fn base_station() -> Self {
        Self {
            family: Some("Orbit".to_owned()),
            ..Self::base("Orbit 8200 base", 0x0007, 0x0008, "OB8200-0001")
        }
    }

    /// The USB Bluetooth dongle of the two-piece product; not tolerant, a USB reset
    /// restarts it.
    pub fn usb_dongle() -> Self {
        Self {
            family: Some("Orbit".to_owned()),
            manifestation_tolerant: false,
            can_upload: false,
            transfer_size: 256,
            ..Self::base("Orbit BT600 dongle", 0x0009, 0x000A, "OBT600-0001")
        }
    }

    /// A desk phone that keeps its PID in DFU mode and has no serial number.
    pub fn desk_phone_no_pid_change() -> Self {
        Self {
            serial: None,
            quirks: Quirks {
                no_pid_change: true,
                ..Quirks::default()
            },
            ..Self::base("Desk 10 phone", 0x000B, 0x000B, "")
        }
    }

    /// A slow conference bar: long dfuDNBUSY (several polls per block), long manifestation,
    /// 20 s re-enumeration.
    pub fn slow_conference_bar() -> Self {
        Self {
            transfer_size: 512,
            poll_timeout: Duration::from_millis(100),
            block_busy: Duration::from_millis(350),
            manifest_time: Duration::from_secs(3),
            reenumeration_delay: Duration::from_secs(20),
            quirks: Quirks {
                reenumeration_timeout: Some(Duration::from_secs(30)),
                ..Quirks::default()
            },
            ..Self::base("Meet 50 conference bar", 0x000C, 0x000D, "MB50-0001")
        }
    }

    /// Reports a bogus 2 s poll timeout but is ready at once (`poll_timeout: Ignore`).
    pub fn bogus_poll_timeout() -> Self {
        Self {
            poll_timeout: Duration::from_secs(2),
            block_busy: Duration::ZERO,
            manifest_time: Duration::ZERO,
            quirks: Quirks {
                poll_timeout: PollTimeoutPolicy::Ignore,
                ..Quirks::default()
            },
            ..Self::base("Legacy 100 headset", 0x0010, 0x0011, "LG100-0001")
        }
    }

    /// Reports a zero poll timeout but is busy 10 ms per block (`poll_timeout: AtLeast`).
    pub fn zero_poll_timeout() -> Self {
        Self {
            poll_timeout: Duration::ZERO,
            block_busy: Duration::from_millis(10),
            quirks: Quirks {
                poll_timeout: PollTimeoutPolicy::AtLeast(Duration::from_millis(10)),
                ..Quirks::default()
            },
            ..Self::base("Legacy 200 headset", 0x0012, 0x0013, "LG200-0001")
        }
    }

    /// Claims non-tolerant but finishes manifestation only while polled (`manifest_polling`).
    pub fn manifest_polling() -> Self {
        Self {
            manifestation_tolerant: false,
            manifest_needs_polling: true,
            quirks: Quirks {
                manifest_polling: true,
                ..Quirks::default()
            },
            ..Self::base("Legacy 300 headset", 0x0014, 0x0015, "LG300-0001")
        }
    }

    /// Needs two USB resets to leave DFU mode (`extra_reset_on_attach`).
    pub fn extra_reset() -> Self {
        Self {
            needs_extra_reset: true,
            quirks: Quirks {
                extra_reset_on_attach: true,
                ..Quirks::default()
            },
            ..Self::base("Legacy 400 headset", 0x0016, 0x0017, "LG400-0001")
        }
    }

    /// Advertises upload but stalls it (`no_upload`).
    pub fn broken_upload() -> Self {
        Self {
            upload_broken: true,
            quirks: Quirks {
                no_upload: true,
                ..Quirks::default()
            },
            ..Self::base("Legacy 500 headset", 0x0018, 0x0019, "LG500-0001")
        }
    }

    /// Advertises 4096-byte blocks but stalls anything over 64 (`transfer_size: 64`).
    pub fn small_blocks() -> Self {
        Self {
            transfer_size: 4096,
            max_block: Some(64),
            quirks: Quirks {
                transfer_size: Some(64),
                ..Quirks::default()
            },
            ..Self::base("Legacy 600 headset", 0x001A, 0x001B, "LG600-0001")
        }
    }

    /// Detaches by itself without advertising bitWillDetach (`will_detach: Some(true)`).
    pub fn silent_detach() -> Self {
        Self {
            detaches_silently: true,
            quirks: Quirks {
                will_detach: Some(true),
                ..Quirks::default()
            },
            ..Self::base("Legacy 700 headset", 0x001C, 0x001D, "LG700-0001")
        }
    }

    /// Takes 45 s to re-enumerate (`reenumeration_timeout: 60 s`).
    pub fn slow_reenumeration() -> Self {
        Self {
            reenumeration_delay: Duration::from_secs(45),
            quirks: Quirks {
                reenumeration_timeout: Some(Duration::from_secs(60)),
                ..Quirks::default()
            },
            ..Self::base("Legacy 800 headset", 0x001E, 0x001F, "LG800-0001")
        }
    }

    /// A zero-latency device for benchmarks: no busy time, no poll timeouts.
    pub fn zero_latency(flash_size: usize) -> Self {
        Self {
            transfer_size: 4096,
            poll_timeout: Duration::ZERO,
            block_busy: Duration::ZERO,
            manifest_time: Duration::ZERO,
            reenumeration_delay: Duration::ZERO,
            flash_size,
            ..Self::base("Bench device", 0x00F0, 0x00F1, "BENCH-0001")
        }
    }

    /// Returns the profile with another serial number.
    pub fn with_serial(mut self, serial: &str) -> Self {
        self.serial = Some(serial.to_owned());
        self
    }

    /// Returns the profile with another initial firmware version.
    pub fn with_version(mut self, version: FirmwareVersion) -> Self {
        self.initial_version = version;
        self
    }

    /// The quirk table rows for this model (runtime and DFU PID).
    pub fn quirk_entries(&self) -> Vec<QuirkEntry> {
        if self.quirks == Quirks::default() {
            return Vec::new();
        }
        let mut pids = vec![self.runtime_pid];
        if self.dfu_pid != self.runtime_pid {
            pids.push(self.dfu_pid);
        }
        pids.into_iter()
            .map(|pid| QuirkEntry {
                vendor_id: self.vendor_id,
                product_id: pid,
                bcd_device: None,
                quirks: self.quirks.clone(),
            })
            .collect()
    }
}

/// The DFU model profiles a config may name (the [`ModelProfile`] constructors), in the order of [`all_profiles`].
pub const PROFILE_NAMES: [&str; 15] = [
    "headset_needs_replug",
    "headset_tolerant",
    "dfuse_speakerphone",
    "base_station",
    "usb_dongle",
    "desk_phone_no_pid_change",
    "slow_conference_bar",
    "bogus_poll_timeout",
    "zero_poll_timeout",
    "manifest_polling",
    "extra_reset",
    "broken_upload",
    "small_blocks",
    "silent_detach",
    "slow_reenumeration",
];

/// A built-in profile by its constructor name (one of [`PROFILE_NAMES`]).
pub fn by_name(name: &str) -> Option<ModelProfile> {
    let position = PROFILE_NAMES.iter().position(|n| *n == name)?;
    all_profiles().into_iter().nth(position)
}

/// Every built-in profile.
pub fn all_profiles() -> Vec<ModelProfile> {
    vec![
        ModelProfile::headset_needs_replug(),
        ModelProfile::headset_tolerant(),
        ModelProfile::dfuse_speakerphone(),
        ModelProfile::base_station(),
        ModelProfile::usb_dongle(),
        ModelProfile::desk_phone_no_pid_change(),
        ModelProfile::slow_conference_bar(),
        ModelProfile::bogus_poll_timeout(),
        ModelProfile::zero_poll_timeout(),
        ModelProfile::manifest_polling(),
        ModelProfile::extra_reset(),
        ModelProfile::broken_upload(),
        ModelProfile::small_blocks(),
        ModelProfile::silent_detach(),
        ModelProfile::slow_reenumeration(),
    ]
}

/// A quirk table covering every built-in profile (plus the dfu crate's built-in rows).
pub fn quirk_table() -> QuirkTable {
    let mut t = QuirkTable::builtin();
    for p in all_profiles() {
        for e in p.quirk_entries() {
            t.add(e);
        }
    }
    t
}
