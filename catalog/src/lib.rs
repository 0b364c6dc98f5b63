//! The firmware catalog: a content-addressed blob store, the firmware package
//! model and importers, the TUF-signed repository and mirrors.
//!
//! Invariant: this crate does no networking. Callers hand it bytes, readers and
//! paths; fetching over HTTP is the agent's and server's job.

pub mod assignment;
pub mod blob;
pub mod checkin;
pub mod digest;
pub mod events;
pub mod fsutil;
pub mod import;
pub mod mirror;
pub mod package;
pub mod protocol;
pub mod sim_clock;
pub mod store;
pub mod tuf;
pub mod window;

pub use store::{Catalog, CatalogBackup, CatalogError, Imported, Published};
