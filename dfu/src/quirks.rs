//! Per-model quirks, keyed by VID:PID and optionally a bcdDevice range.
//!
//! The quirk names follow the behaviours seen in the field (dfu-util and fwupd
//! document similar ones); the table entries below are our own.

use std::ops::RangeInclusive;
use std::time::Duration;

/// How to treat bwPollTimeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PollTimeoutPolicy {
    /// Wait exactly what the device asks for, including zero.
    #[default]
    AsReported,
    /// The device reports bogus values; do not wait at all (poll right away).
    Ignore,
    /// The device asks for zero (or too little) but needs at least this much.
    AtLeast(Duration),
}

/// Behaviour overrides for one model.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Quirks {
    /// Poll-timeout handling.
    pub poll_timeout: PollTimeoutPolicy,
    /// Poll GETSTATUS through manifestation even if the device is not
    /// manifestation-tolerant (it only finishes manifesting while polled).
    pub manifest_polling: bool,
    /// Runtime and DFU mode share one PID: match the DFU-mode device by the same VID:PID.
    pub no_pid_change: bool,
    /// UPLOAD is broken even if the descriptor claims it.
    pub no_upload: bool,
    /// Override bitWillDetach.
    pub will_detach: Option<bool>,
    /// The device needs a second USB reset to leave DFU mode for its application.
    pub extra_reset_on_attach: bool,
    /// Override wTransferSize.
    pub transfer_size: Option<u16>,
    /// How long the device may take to disappear and come back (default 5 s, at most 60 s).
    pub reenumeration_timeout: Option<Duration>,
}

/// The default wait for re-enumeration.
pub const DEFAULT_REENUMERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest re-enumeration wait a quirk may ask for.
pub const MAX_REENUMERATION_TIMEOUT: Duration = Duration::from_secs(60);

impl Quirks {
    /// The re-enumeration wait to use, capped at [`MAX_REENUMERATION_TIMEOUT`].
    pub fn reenumeration_timeout(&self) -> Duration {
        self.reenumeration_timeout
            .unwrap_or(DEFAULT_REENUMERATION_TIMEOUT)
            .min(MAX_REENUMERATION_TIMEOUT)
    }

    /// Applies the poll-timeout policy to a device-reported value.
    pub fn poll_wait(&self, reported: Duration) -> Duration {
        match self.poll_timeout {
            PollTimeoutPolicy::AsReported => reported,
            PollTimeoutPolicy::Ignore => Duration::ZERO,
            PollTimeoutPolicy::AtLeast(min) => reported.max(min),
        }
    }

    /// Adds `other`'s settings on top of `self` (later entries win).
    pub fn merge(&mut self, other: &Quirks) {
        if other.poll_timeout != PollTimeoutPolicy::AsReported {
            self.poll_timeout = other.poll_timeout;
        }
        self.manifest_polling |= other.manifest_polling;
        self.no_pid_change |= other.no_pid_change;
        self.no_upload |= other.no_upload;
        self.extra_reset_on_attach |= other.extra_reset_on_attach;
        self.will_detach = other.will_detach.or(self.will_detach);
        self.transfer_size = other.transfer_size.or(self.transfer_size);
        self.reenumeration_timeout = other.reenumeration_timeout.or(self.reenumeration_timeout);
    }
}

/// One table row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuirkEntry {
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct (runtime or DFU mode; add a row for each).
    pub product_id: u16,
    /// Only for these bcdDevice values, if given.
    pub bcd_device: Option<RangeInclusive<u16>>,
    /// The quirks.
    pub quirks: Quirks,
}

/// A quirk table: entries matching a device are merged in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuirkTable {
    entries: Vec<QuirkEntry>,
}

impl QuirkTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in table.
    pub fn builtin() -> Self {
        let mut t = Self::new();
        // Openmoko-family DFU bootloaders (VID 0x1d50, PIDs 0x5119, 0x6001 ... ) report
        // poll timeouts far longer than they need.
        for pid in [0x5119, 0x6001, 0x6002, 0x6003] {
            t.add(QuirkEntry {
                vendor_id: 0x1d50,
                product_id: pid,
                bcd_device: None,
                quirks: Quirks {
                    poll_timeout: PollTimeoutPolicy::Ignore,
                    ..Quirks::default()
                },
            });
        }
        // STM32 system bootloader (DfuSe): runtime and DFU share the DfuSe PID when
        // started via BOOT0; leaving DFU takes a while to re-enumerate.
        t.add(QuirkEntry {
            vendor_id: 0x0483,
            product_id: 0xdf11,
            bcd_device: None,
            quirks: Quirks {
                no_pid_change: true,
                reenumeration_timeout: Some(Duration::from_secs(10)),
                ..Quirks::default()
            },
        });
        t
    }

    /// Appends an entry.
    pub fn add(&mut self, entry: QuirkEntry) -> &mut Self {
        self.entries.push(entry);
        self
    }

    /// The entries.
    pub fn entries(&self) -> &[QuirkEntry] {
        &self.entries
    }

    /// The merged quirks for a device.
    pub fn lookup(&self, vendor_id: u16, product_id: u16, bcd_device: u16) -> Quirks {
        let mut q = Quirks::default();
        for e in &self.entries {
            if e.vendor_id == vendor_id
                && e.product_id == product_id
                && e.bcd_device
                    .as_ref()
                    .is_none_or(|r| r.contains(&bcd_device))
            {
                q.merge(&e.quirks);
            }
        }
        q
    }
}
