//! The foreground daemon (`update-agent run`): scans devices at start and
//! every scan interval (recording first/last seen in the device history),
//! and keeps the check-in schedule. All timing goes through a [`Clock`], and
//! one [`Daemon::tick`] does whatever is due and says when to wake next, so
//! tests drive it with a manual clock and no sleeps.
//!
//! [`CheckIn`] is where the server conversation plugs in
//! ([`crate::agent::AgentCore`]): the check-in and update pipeline when due,
//! recovery at start, and the event spool at start, every
//! [`EVENT_INTERVAL`] and right after a scan found new devices.

use std::collections::BTreeSet;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;

use catalog::protocol::DeviceReport;
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::devices::{BackendError, DeviceBackend};
use crate::schedule::{LastCheckIn, PollSchedule};
use crate::state::{State, StateError};

/// Anything that lists attached devices (object-safe view of a [`DeviceBackend`]).
pub trait Inventory: Send {
    /// Everything attached, one report per physical device.
    fn scan(&self) -> Result<Vec<DeviceReport>, BackendError>;
}

impl<B: DeviceBackend + Send> Inventory for B {
    fn scan(&self) -> Result<Vec<DeviceReport>, BackendError> {
        self.inventory()
    }
}

/// How often the event spool is sent when nothing else sends it.
pub const EVENT_INTERVAL: chrono::Duration = chrono::Duration::minutes(2);

/// Why a check-in failed (every kind is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum CheckInError {
    /// The server could not be reached.
    #[error("server unreachable: {0}")]
    Unreachable(String),
    /// The server or the agent refused the exchange (credential, signature, …).
    #[error("{0}")]
    Refused(String),
}

/// One check-in with the server.
pub trait CheckIn: Send {
    /// Reports and fetches what is due.
    fn check_in(&mut self, now: DateTime<Utc>) -> Result<(), CheckInError>;

    /// Once, before the first check-in: finish what a restart interrupted.
    fn start(&mut self, _now: DateTime<Utc>) {}

    /// Sends the event spool (failures are logged; events stay spooled).
    fn send_events(&mut self, _now: DateTime<Utc>) {}

    /// The poll interval the server asked for, once known.
    fn poll_interval(&self) -> Option<chrono::Duration> {
        None
    }
}

/// The check-in until the server has an endpoint for it: logs and succeeds.
#[derive(Debug, Default)]
pub struct CheckInNotAvailable;

impl CheckIn for CheckInNotAvailable {
    fn check_in(&mut self, _now: DateTime<Utc>) -> Result<(), CheckInError> {
        tracing::info!("check-in due (not available yet in this version)");
        Ok(())
    }
}

/// Why the daemon stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The state database failed; the agent must not go on without it.
    #[error(transparent)]
    State(#[from] StateError),
}

/// What one scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOutcome {
    /// Identities attached now.
    pub present: Vec<String>,
    /// Attached now, not at the previous scan (hotplug).
    pub appeared: Vec<String>,
    /// Attached at the previous scan, gone now.
    pub disappeared: Vec<String>,
    /// Never seen before on this host.
    pub first_seen: Vec<String>,
}

/// Timings of the daemon.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// Between check-ins.
    pub poll_interval: chrono::Duration,
    /// Between device scans.
    pub scan_interval: chrono::Duration,
}

/// The daemon's state between ticks.
pub struct Daemon {
    state: Arc<State>,
    devices: Box<dyn Inventory>,
    clock: Arc<dyn Clock>,
    check_in: Box<dyn CheckIn>,
    schedule: PollSchedule,
    scan_interval: chrono::Duration,
    last_check_in: LastCheckIn,
    next_scan: DateTime<Utc>,
    next_events: DateTime<Utc>,
    started: bool,
    present: BTreeSet<String>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("state", &self.state)
            .field("last_check_in", &self.last_check_in)
            .field("next_scan", &self.next_scan)
            .field("present", &self.present)
            .finish_non_exhaustive()
    }
}

impl Daemon {
    /// A daemon started now (by `clock`); `seed` spreads the fleet's check-ins.
    pub fn new(
        state: impl Into<Arc<State>>,
        devices: Box<dyn Inventory>,
        clock: Arc<dyn Clock>,
        check_in: Box<dyn CheckIn>,
        timings: Timings,
        seed: [u8; 16],
    ) -> Self {
        let now = clock.now();
        Self {
            state: state.into(),
            devices,
            schedule: PollSchedule::new(now, timings.poll_interval, seed),
            clock,
            check_in,
            scan_interval: timings.scan_interval.max(chrono::Duration::seconds(1)),
            last_check_in: LastCheckIn::Never,
            next_scan: now,
            next_events: now,
            started: false,
            present: BTreeSet::new(),
        }
    }

    /// The state database.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The outcome of the last check-in.
    pub fn last_check_in(&self) -> LastCheckIn {
        self.last_check_in
    }

    /// Scans devices now and records them (committed before this returns).
    /// A backend failure is logged and changes nothing.
    pub fn scan(&mut self) -> Result<Option<ScanOutcome>, DaemonError> {
        let now = self.clock.now();
        let reports = match self.devices.scan() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("device scan failed: {e}");
                return Ok(None);
            }
        };
        let first_seen = self.state.record_scan(&reports, now)?;
        let present: BTreeSet<String> = reports.iter().map(DeviceReport::identity).collect();
        let appeared: Vec<String> = present.difference(&self.present).cloned().collect();
        let disappeared: Vec<String> = self.present.difference(&present).cloned().collect();
        for d in &reports {
            if appeared.contains(&d.identity()) {
                tracing::info!(
                    device = %d.identity(),
                    product = d.product.as_deref().unwrap_or("?"),
                    version = d.firmware_version.as_deref().unwrap_or("?"),
                    "device attached"
                );
            }
        }
        for id in &disappeared {
            tracing::info!(device = %id, "device detached");
        }
        self.present = present;
        Ok(Some(ScanOutcome {
            present: self.present.iter().cloned().collect(),
            appeared,
            disappeared,
            first_seen,
        }))
    }

    /// Does whatever is due now (scan, check-in) and returns when to wake next.
    pub fn tick(&mut self) -> Result<DateTime<Utc>, DaemonError> {
        let now = self.clock.now();
        if !self.started {
            self.started = true;
            self.check_in.start(now);
        }
        if now >= self.next_scan {
            let found = self.scan()?;
            self.next_scan = now + self.scan_interval;
            if found.is_some_and(|o| !o.first_seen.is_empty()) {
                // Registrations go out at once.
                self.next_events = now;
            }
        }
        let due = self.schedule.next_attempt(now, self.last_check_in);
        if due <= now {
            self.last_check_in = match self.check_in.check_in(now) {
                Ok(()) => {
                    if let Some(interval) = self.check_in.poll_interval() {
                        self.schedule.set_interval(interval);
                    }
                    LastCheckIn::Succeeded { at: now }
                }
                Err(e) => {
                    let consecutive = match self.last_check_in {
                        LastCheckIn::Failed { consecutive, .. } => consecutive.saturating_add(1),
                        _ => 1,
                    };
                    tracing::warn!("check-in failed ({consecutive} in a row): {e}");
                    LastCheckIn::Failed {
                        at: now,
                        consecutive,
                    }
                }
            };
        }
        if now >= self.next_events {
            self.check_in.send_events(now);
            self.next_events = now + EVENT_INTERVAL;
        }
        let next_check_in = self.schedule.next_attempt(now, self.last_check_in);
        Ok(self.next_scan.min(next_check_in).min(self.next_events))
    }

    /// Runs until `stop` receives (or its sender is dropped), waking for
    /// each tick on the real time the clock reports.
    pub fn run(&mut self, stop: &Receiver<()>) -> Result<(), DaemonError> {
        loop {
            let wake = self.tick()?;
            let wait = (wake - self.clock.now())
                .to_std()
                .unwrap_or(std::time::Duration::ZERO);
            match stop.recv_timeout(wait) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
