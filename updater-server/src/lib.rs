//! `updater-server`: the firmware update service and its admin CLI.
//!
//! The binary is a thin wrapper around [`cli::run`]; the HTTP service lives in
//! [`http`].

pub mod cli;
pub mod http;
