//! Simulated devices for tests and the demo: the device side of DFU 1.1 and DfuSe
//! (with model profiles, quirks and fault injection), HID telephony inventory devices,
//! and a thread-safe virtual USB bus with hotplug events and virtual time.
//!
//! The DFU host talks to simulated devices through [`BusTransport`], which implements
//! [`dfu::host::Transport`]; [`VirtualBus`] implements [`dfu::host::Backend`].

pub mod bus;
pub mod device;
pub mod fault;
pub mod hid;
pub mod image;
pub mod persist;
pub mod profile;
pub mod samples;
mod transport;

pub use bus::{BusDevice, BusEvent, BusTransport, DeviceId, VirtualBus};
pub use device::{Failure, SimDevice};
pub use fault::Fault;
pub use hid::{Battery, HidTelephonyDevice, HidTelephonyInfo, TELEPHONY_USAGE_PAGE};
pub use image::FirmwareVersion;
pub use persist::{DeviceSnapshot, DeviceStore, PersistError};
pub use profile::{ModelProfile, OUR_VID};
