//! USB DFU 1.1 and ST DfuSe.
//!
//! This crate does no IO of its own: file formats work on byte slices, and the
//! host protocol (added by the dfu issue) drives a `Transport` trait. It knows
//! nothing of tokio or HTTP.

pub mod file;
pub mod host;
pub mod quirks;
#[cfg(feature = "usb")]
pub mod usb;
