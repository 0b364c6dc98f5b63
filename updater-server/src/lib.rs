//! `updater-server`: the firmware update service and its admin CLI.
//!
//! The binary is a thin wrapper around [`cli::run`]; the HTTP service lives in
//! [`http`], tenants and credentials in [`auth`], and their storage behind the
//! [`store::Store`] trait.

pub mod auth;
pub mod cli;
pub mod events;
pub mod fleet;
pub mod http;
pub mod import_flags;
pub mod reports;
pub mod samples;
pub mod store;
