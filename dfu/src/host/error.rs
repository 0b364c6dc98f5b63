//! Typed errors of the host protocol.

use thiserror::Error;

use super::descriptor::DescriptorError;
use super::layout::LayoutError;
use super::transport::TransportError;
use super::types::{DfuState, DfuStatus};

/// The device reported a non-OK status.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}{} (device status {status}, state {state})", status.help(), said(.description))]
pub struct DeviceError {
    /// The status code.
    pub status: DfuStatus,
    /// The state the device was in when it reported it.
    pub state: DfuState,
    /// What the device itself said about it: the string its GETSTATUS
    /// `iString` names, when it names one (vendor-specific, often the most
    /// precise reason there is).
    pub description: Option<String>,
}

fn said(description: &Option<String>) -> String {
    description
        .as_deref()
        .map(|d| format!(" The device says: {d}."))
        .unwrap_or_default()
}

/// Everything that can go wrong talking DFU.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DfuError {
    /// A USB request failed.
    #[error("USB {op} failed: {source}")]
    Transport {
        /// What the host was doing.
        op: &'static str,
        /// The transport's error.
        #[source]
        source: TransportError,
    },
    /// The device reported an error status.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The device is in a state the operation cannot continue from.
    #[error("the device is in an unexpected state ({state}) while {during}")]
    UnexpectedState {
        /// What the host was doing.
        during: &'static str,
        /// The state found.
        state: DfuState,
    },
    /// A malformed reply.
    #[error("the device sent a malformed reply to {0}")]
    Protocol(&'static str),
    /// The device has no DFU interface (or not the requested alternate setting).
    #[error("the device has no DFU interface{}", alt.map(|a| format!(" with alternate setting {a}")).unwrap_or_default())]
    NoDfuInterface {
        /// The alternate setting that was asked for.
        alt: Option<u8>,
    },
    /// The device cannot do what was asked.
    #[error("the device does not support {0}")]
    NotSupported(&'static str),
    /// The device did not come back after a detach or reset.
    #[error("the device did not come back after {during}: {source}")]
    Reenumeration {
        /// What the host was doing.
        during: &'static str,
        /// The transport's error.
        #[source]
        source: TransportError,
    },
    /// The device vanished while installing and did not come back.
    #[error("the device disconnected while installing the firmware and did not come back")]
    VanishedDuringManifestation,
    /// Read-back data differ from the image.
    #[error("verification failed: read-back firmware differs from the image at byte {offset}")]
    VerifyMismatch {
        /// The first differing offset (or the shorter length).
        offset: usize,
    },
    /// A functional descriptor could not be parsed.
    #[error(transparent)]
    Descriptor(#[from] DescriptorError),
    /// The DfuSe memory layout could not be parsed.
    #[error("bad DfuSe memory layout: {0}")]
    Layout(#[from] LayoutError),
    /// A DfuSe write or read outside the memory layout, or into a read-only sector.
    #[error("address {address:#010x} is outside the device's writable memory")]
    BadAddress {
        /// The offending address.
        address: u32,
    },
    /// The image is empty.
    #[error("the firmware image is empty")]
    EmptyImage,
}

impl DfuError {
    /// Wraps a transport error with the operation that failed.
    pub fn transport(op: &'static str) -> impl FnOnce(TransportError) -> Self {
        move |source| Self::Transport { op, source }
    }

    /// The device status code, if this error came from the device.
    pub fn device_status(&self) -> Option<DfuStatus> {
        match self {
            Self::Device(e) => Some(e.status),
            _ => None,
        }
    }
}
