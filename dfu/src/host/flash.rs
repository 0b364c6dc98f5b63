//! One-call updates: [`flash`] for DFU 1.1 images, [`flash_dfuse`] for DfuSe segments.

use std::time::Duration;

use super::descriptor::{DeviceInfo, DfuMode};
use super::dfuse::DfuseSegment;
use super::download::ManifestOutcome;
use super::error::DfuError;
use super::progress::Progress;
use super::session::{DfuHost, DEFAULT_CONTROL_TIMEOUT};
use super::transport::Transport;
use crate::quirks::QuirkTable;

/// Options for [`flash`] and [`flash_dfuse`].
#[derive(Debug, Clone)]
pub struct FlashOptions {
    /// Quirks looked up by the device's VID:PID (runtime and DFU mode).
    pub quirks: QuirkTable,
    /// The DFU alternate setting to write (DFU 1.1 images).
    pub alt_setting: u8,
    /// Read the image back and compare, when the device allows it.
    pub verify: bool,
    /// After a successful download, reset the device into its application and wait for it.
    pub reset_after: bool,
    /// Timeout of single control transfers.
    pub control_timeout: Duration,
}

impl Default for FlashOptions {
    fn default() -> Self {
        Self {
            quirks: QuirkTable::builtin(),
            alt_setting: 0,
            verify: true,
            reset_after: true,
            control_timeout: DEFAULT_CONTROL_TIMEOUT,
        }
    }
}

/// Where the device ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashOutcome {
    /// Running the new firmware (it re-enumerated in runtime mode).
    Running,
    /// The firmware is written but the device needs to be unplugged and plugged back in
    /// (it did not come back after a USB reset). Register the update only after it returns.
    NeedsReplug,
    /// Still in DFU mode: `reset_after` was off, or the device came back in DFU mode.
    InDfuMode,
}

/// The result of a successful [`flash`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashReport {
    /// Bytes downloaded.
    pub bytes: usize,
    /// How manifestation ended.
    pub manifest: ManifestOutcome,
    /// Where the device is now.
    pub outcome: FlashOutcome,
    /// Whether the image was read back and matched.
    pub verified: bool,
    /// The device as last enumerated (with the new bcdDevice if it is running).
    pub device: DeviceInfo,
    /// Total poll time the device asked for and the host waited.
    pub poll_wait: Duration,
}

impl FlashReport {
    /// True when the user must unplug and replug the device.
    pub fn needs_replug(&self) -> bool {
        self.outcome == FlashOutcome::NeedsReplug
    }
}

/// Flashes a raw DFU 1.1 image (without `.dfu` suffix): detach if in runtime mode, download,
/// manifest, verify where possible, and reset into the application.
pub fn flash<T: Transport>(
    transport: T,
    image: &[u8],
    options: &FlashOptions,
    progress: &mut dyn Progress,
) -> Result<FlashReport, DfuError> {
    let mut host = DfuHost::new(transport, options.quirks.clone())?;
    host.set_control_timeout(options.control_timeout);
    host.enter_dfu_mode(progress)?;
    if options.alt_setting != 0 || host.device().interfaces.len() > 1 {
        host.select_alt(options.alt_setting)?;
    }
    let manifest = host.download(image, progress)?;
    let mut verified = false;
    if manifest == ManifestOutcome::Complete && options.verify && host.can_upload() {
        host.verify(image, progress)?;
        verified = true;
    }
    let outcome = finish(&mut host, manifest, options.reset_after, progress)?;
    Ok(FlashReport {
        bytes: image.len(),
        manifest,
        outcome,
        verified,
        device: host.device().clone(),
        poll_wait: host.total_poll_wait(),
    })
}

fn finish<T: Transport>(
    host: &mut DfuHost<T>,
    manifest: ManifestOutcome,
    reset_after: bool,
    progress: &mut dyn Progress,
) -> Result<FlashOutcome, DfuError> {
    let mode_outcome = |h: &DfuHost<T>| match h.mode() {
        DfuMode::Runtime => FlashOutcome::Running,
        DfuMode::Dfu => FlashOutcome::InDfuMode,
    };
    match manifest {
        ManifestOutcome::DeviceReset => Ok(mode_outcome(host)),
        ManifestOutcome::Complete if !reset_after => Ok(FlashOutcome::InDfuMode),
        ManifestOutcome::Complete => {
            host.reset_to_runtime(progress)?;
            Ok(mode_outcome(host))
        }
        ManifestOutcome::NeedsReset if !reset_after => Ok(FlashOutcome::NeedsReplug),
        ManifestOutcome::NeedsReset => match host.reset_to_runtime(progress) {
            Ok(_) => Ok(mode_outcome(host)),
            Err(DfuError::Reenumeration { .. }) => Ok(FlashOutcome::NeedsReplug),
            Err(e) => Err(e),
        },
    }
}

/// Flashes DfuSe segments (erasing only the sectors written), verifies where possible and
/// leaves DFU mode at `leave_address` (usually the first segment's address) if given.
pub fn flash_dfuse<T: Transport>(
    transport: T,
    segments: &[DfuseSegment],
    leave_address: Option<u32>,
    options: &FlashOptions,
    progress: &mut dyn Progress,
) -> Result<FlashReport, DfuError> {
    let mut host = DfuHost::new(transport, options.quirks.clone())?;
    host.set_control_timeout(options.control_timeout);
    host.enter_dfu_mode(progress)?;
    let mut bytes = 0;
    let mut verified = options.verify && host.can_upload() && !segments.is_empty();
    for seg in segments {
        host.select_alt(seg.alt_setting)?;
        host.dfuse_download(seg.address, &seg.data, progress)?;
        bytes += seg.data.len();
        if options.verify && host.can_upload() {
            host.dfuse_verify(seg.address, &seg.data, progress)?;
        } else {
            verified = false;
        }
    }
    let (manifest, outcome) = match leave_address {
        Some(addr) => {
            if let Some(first) = segments.first() {
                host.select_alt(first.alt_setting)?;
            }
            let m = host.dfuse_leave(addr)?;
            let mut any = host.reenumeration_matcher(DfuMode::Runtime);
            any.mode = None;
            any.product_id = None;
            host.follow(&any, "leaving update mode")?;
            let outcome = match host.mode() {
                DfuMode::Runtime => FlashOutcome::Running,
                DfuMode::Dfu => FlashOutcome::InDfuMode,
            };
            (m, outcome)
        }
        None => (ManifestOutcome::Complete, FlashOutcome::InDfuMode),
    };
    Ok(FlashReport {
        bytes,
        manifest,
        outcome,
        verified,
        device: host.device().clone(),
        poll_wait: host.total_poll_wait(),
    })
}
