//! The fleet simulator: a real `updater-server` and hundreds of real agents
//! (the `update-agent` library, each with its own state directory and a
//! virtual USB bus of `test-devices`) on one accelerated clock, in one
//! process. It drives the README's demo and the scenario tests.
//!
//! - [`clock`]: the world's clock, read by server and agents.
//! - [`server`]: the service in-process on a loopback port; [`world`]: it,
//!   its tenants and the clock, for the demo and scenario tests.
//! - [`firmware`]: sample vendor files for the simulated models.
//! - [`host`]: one workstation with its agent; [`fleet`]: all of them, stepped.
//! - [`admin`]: the admin's HTTP client; [`reports`]: the reports it prints.
//! - [`scenario`], [`demo`]: who is in the demo fleet and the story it runs.

pub mod admin;
pub mod clock;
pub mod demo;
pub mod firmware;
pub mod fleet;
pub mod host;
pub mod progress;
pub mod reports;
pub mod scenario;
pub mod server;
pub mod staged;
pub mod world;
