//! DFU 1.1 request codes, device states and status codes (DFU 1.1 §6.1.2, §6.1.2 table).

use std::fmt;
use std::time::Duration;

/// Class-specific DFU requests (DFU 1.1 table 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Request {
    /// DFU_DETACH: ask a runtime device to enter DFU mode on the next reset.
    Detach = 0,
    /// DFU_DNLOAD: one firmware block host → device (zero length ends the download).
    Dnload = 1,
    /// DFU_UPLOAD: one firmware block device → host.
    Upload = 2,
    /// DFU_GETSTATUS: status, poll timeout, state.
    GetStatus = 3,
    /// DFU_CLRSTATUS: leave dfuERROR.
    ClrStatus = 4,
    /// DFU_GETSTATE: state only, no state change.
    GetState = 5,
    /// DFU_ABORT: back to dfuIDLE from an idle download/upload state.
    Abort = 6,
}

impl Request {
    /// Decodes a `bRequest` value.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Detach,
            1 => Self::Dnload,
            2 => Self::Upload,
            3 => Self::GetStatus,
            4 => Self::ClrStatus,
            5 => Self::GetState,
            6 => Self::Abort,
            _ => return None,
        })
    }
}

/// `bmRequestType` of host-to-device class requests to an interface.
pub const REQUEST_TYPE_OUT: u8 = 0x21;
/// `bmRequestType` of device-to-host class requests to an interface.
pub const REQUEST_TYPE_IN: u8 = 0xA1;

/// The 11 DFU device states (DFU 1.1 §6.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DfuState {
    /// Running normal application firmware.
    AppIdle = 0,
    /// DETACH received; waiting for a USB reset.
    AppDetach = 1,
    /// DFU mode, waiting for requests.
    DfuIdle = 2,
    /// A block arrived; waiting for GETSTATUS.
    DfuDnloadSync = 3,
    /// Programming a block; host must wait bwPollTimeout.
    DfuDnbusy = 4,
    /// Block done; waiting for the next DNLOAD.
    DfuDnloadIdle = 5,
    /// Zero-length DNLOAD received; waiting for GETSTATUS to start manifestation.
    DfuManifestSync = 6,
    /// Manifesting the new firmware.
    DfuManifest = 7,
    /// Manifested; only a USB reset or power cycle gets it running.
    DfuManifestWaitReset = 8,
    /// Upload in progress.
    DfuUploadIdle = 9,
    /// An error occurred; CLRSTATUS clears it.
    DfuError = 10,
}

impl DfuState {
    /// Decodes a `bState` value.
    pub fn from_u8(v: u8) -> Option<Self> {
        use DfuState::*;
        Some(match v {
            0 => AppIdle,
            1 => AppDetach,
            2 => DfuIdle,
            3 => DfuDnloadSync,
            4 => DfuDnbusy,
            5 => DfuDnloadIdle,
            6 => DfuManifestSync,
            7 => DfuManifest,
            8 => DfuManifestWaitReset,
            9 => DfuUploadIdle,
            10 => DfuError,
            _ => return None,
        })
    }

    /// All states, in numeric order.
    pub const ALL: [DfuState; 11] = [
        Self::AppIdle,
        Self::AppDetach,
        Self::DfuIdle,
        Self::DfuDnloadSync,
        Self::DfuDnbusy,
        Self::DfuDnloadIdle,
        Self::DfuManifestSync,
        Self::DfuManifest,
        Self::DfuManifestWaitReset,
        Self::DfuUploadIdle,
        Self::DfuError,
    ];

    /// The spec's name, e.g. `dfuDNLOAD-IDLE`.
    pub fn name(self) -> &'static str {
        use DfuState::*;
        match self {
            AppIdle => "appIDLE",
            AppDetach => "appDETACH",
            DfuIdle => "dfuIDLE",
            DfuDnloadSync => "dfuDNLOAD-SYNC",
            DfuDnbusy => "dfuDNBUSY",
            DfuDnloadIdle => "dfuDNLOAD-IDLE",
            DfuManifestSync => "dfuMANIFEST-SYNC",
            DfuManifest => "dfuMANIFEST",
            DfuManifestWaitReset => "dfuMANIFEST-WAIT-RESET",
            DfuUploadIdle => "dfuUPLOAD-IDLE",
            DfuError => "dfuERROR",
        }
    }

    /// True for the runtime (application) states.
    pub fn is_runtime(self) -> bool {
        matches!(self, Self::AppIdle | Self::AppDetach)
    }
}

impl fmt::Display for DfuState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The 16 DFU status codes (DFU 1.1 §6.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DfuStatus {
    /// No error.
    Ok = 0x00,
    /// File is not targeted for this device.
    ErrTarget = 0x01,
    /// File is for this device but fails a vendor-specific check.
    ErrFile = 0x02,
    /// Device is unable to write memory.
    ErrWrite = 0x03,
    /// Memory erase failed.
    ErrErase = 0x04,
    /// Memory erase check failed.
    ErrCheckErased = 0x05,
    /// Program memory function failed.
    ErrProg = 0x06,
    /// Programmed memory failed verification.
    ErrVerify = 0x07,
    /// Cannot program memory due to received address out of range.
    ErrAddress = 0x08,
    /// Zero-length DNLOAD received but the device thinks it has not got all data.
    ErrNotDone = 0x09,
    /// Firmware is corrupt; cannot return to runtime.
    ErrFirmware = 0x0A,
    /// Vendor-specific error (iString).
    ErrVendor = 0x0B,
    /// Unexpected USB reset.
    ErrUsbr = 0x0C,
    /// Unexpected power-on reset.
    ErrPor = 0x0D,
    /// Unknown error.
    ErrUnknown = 0x0E,
    /// Device stalled an unexpected request.
    ErrStalledPkt = 0x0F,
}

impl DfuStatus {
    /// All 16 status codes, in numeric order.
    pub const ALL: [DfuStatus; 16] = [
        Self::Ok,
        Self::ErrTarget,
        Self::ErrFile,
        Self::ErrWrite,
        Self::ErrErase,
        Self::ErrCheckErased,
        Self::ErrProg,
        Self::ErrVerify,
        Self::ErrAddress,
        Self::ErrNotDone,
        Self::ErrFirmware,
        Self::ErrVendor,
        Self::ErrUsbr,
        Self::ErrPor,
        Self::ErrUnknown,
        Self::ErrStalledPkt,
    ];

    /// Decodes a `bStatus` value.
    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.get(usize::from(v)).copied()
    }

    /// The spec's name, e.g. `errVERIFY`.
    pub fn name(self) -> &'static str {
        use DfuStatus::*;
        match self {
            Ok => "OK",
            ErrTarget => "errTARGET",
            ErrFile => "errFILE",
            ErrWrite => "errWRITE",
            ErrErase => "errERASE",
            ErrCheckErased => "errCHECK_ERASED",
            ErrProg => "errPROG",
            ErrVerify => "errVERIFY",
            ErrAddress => "errADDRESS",
            ErrNotDone => "errNOTDONE",
            ErrFirmware => "errFIRMWARE",
            ErrVendor => "errVENDOR",
            ErrUsbr => "errUSBR",
            ErrPor => "errPOR",
            ErrUnknown => "errUNKNOWN",
            ErrStalledPkt => "errSTALLEDPKT",
        }
    }

    /// A sentence a help-desk person can read out to a user.
    pub fn help(self) -> &'static str {
        use DfuStatus::*;
        match self {
            Ok => "The device reports no error.",
            ErrTarget => "The firmware file is meant for a different device model; check that the right file was chosen.",
            ErrFile => "The device rejected the firmware file: it is not in the format this device accepts, or not made for it; check that the release is for this model.",
            ErrWrite => "The device could not write to its memory; try again, and if it keeps failing the device needs service.",
            ErrErase => "The device could not erase its memory; try again, and if it keeps failing the device needs service.",
            ErrCheckErased => "The device's memory was not blank after erasing; try again, and if it keeps failing the device needs service.",
            ErrProg => "The device failed while storing the firmware; try the update again.",
            ErrVerify => "The device checked the new firmware and refused it: the image is damaged, or not in the format this device accepts.",
            ErrAddress => "The firmware does not fit the device's memory; it is probably for another model or hardware revision.",
            ErrNotDone => "The update stopped before the device received the whole firmware; try the update again.",
            ErrFirmware => "The device has no working firmware and stays in update mode until it is updated successfully.",
            ErrVendor => "The device reported a manufacturer-specific problem; contact support with the device model.",
            ErrUsbr => "The device was reset unexpectedly during the update; keep it plugged in and try again.",
            ErrPor => "The device lost power during the update; keep it plugged in and try again.",
            ErrUnknown => "The device reported an unknown problem; unplug it, plug it back in and try again.",
            ErrStalledPkt => "The device refused an unexpected command; unplug it, plug it back in and try again.",
        }
    }
}

impl fmt::Display for DfuStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The 6-byte DFU_GETSTATUS response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusResponse {
    /// bStatus.
    pub status: DfuStatus,
    /// bwPollTimeout: how long the host must wait before the next GETSTATUS.
    pub poll_timeout: Duration,
    /// bState.
    pub state: DfuState,
    /// iString: index of a status description string (0 = none).
    pub string_index: u8,
}

impl StatusResponse {
    /// Wire length of a GETSTATUS response.
    pub const LEN: usize = 6;

    /// Parses a GETSTATUS response; `None` if short or holding unknown codes.
    pub fn parse(b: &[u8]) -> Option<Self> {
        if b.len() < Self::LEN {
            return None;
        }
        let ms = u32::from(b[1]) | (u32::from(b[2]) << 8) | (u32::from(b[3]) << 16);
        Some(Self {
            status: DfuStatus::from_u8(b[0])?,
            poll_timeout: Duration::from_millis(u64::from(ms)),
            state: DfuState::from_u8(b[4])?,
            string_index: b[5],
        })
    }

    /// Encodes the response (poll timeout saturates at 24 bits of milliseconds).
    pub fn to_bytes(&self) -> [u8; 6] {
        let ms = u32::try_from(self.poll_timeout.as_millis())
            .unwrap_or(u32::MAX)
            .min(0x00FF_FFFF);
        let m = ms.to_le_bytes();
        [
            self.status as u8,
            m[0],
            m[1],
            m[2],
            self.state as u8,
            self.string_index,
        ]
    }
}
