//! The workstation agent: device discovery, check-in, verified downloads and
//! flashing. This crate grows with the agent issues; today it holds the
//! download path: untrusted sources ([`fetch`]) and verified, resumable
//! staging ([`staging`]).

pub mod devices;
pub mod fetch;
pub mod flasher;
pub mod staging;
