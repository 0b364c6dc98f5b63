//! The workstation agent: configuration and enrollment, durable local state,
//! device discovery, verified downloads and flashing, and the daemon loop.
//!
//! - [`config`]: installer parameters and settings (args > env > file).
//! - [`identity`]: SystemID and machine fingerprint.
//! - [`enroll`]: `POST /api/v1/enroll` and what it stores.
//! - [`state`]: the redb state (staged updates, downloads, event spool, device history).
//! - [`clock`], [`schedule`]: time as an argument; the check-in schedule.
//! - [`daemon`]: scans and the poll schedule in one loop.
//! - [`devices`], [`fetch`], [`staging`], [`flasher`]: the download and install path.
//! - [`client`], [`agent`], [`pipeline`], [`events`]: check-in, verified
//!   assignments, the update pipeline and the event spool.
//! - [`users`], [`ldap`]: the logged-in accounts and their LDAP groups.

pub mod agent;
pub mod client;
pub mod clock;
pub mod config;
#[cfg(unix)]
pub mod control;
pub mod daemon;
pub mod devices;
pub mod enroll;
pub mod events;
pub mod fetch;
pub mod flasher;
mod fsutil;
pub mod identity;
pub mod ldap;
pub mod pipeline;
pub mod prompts;
pub mod schedule;
pub mod staging;
pub mod state;
pub mod status;
pub mod users;
