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
//!
//! Maintenance windows: the daemon checks in shortly before each window of a
//! pending silent update opens (`offset` before the start, from the
//! SystemID within the configured spread; see [`crate::schedule::windows`]),
//! runs a pass when it opens, and while a guard holds an update back (a
//! call, the host going down, another piece attached) retries at every scan.
//! A new user session (login) shows persistent prompts and replug requests
//! again. A user's decision on the control socket wakes it at once
//! ([`Wake::Act`]).
//!
//! When a scan finds the devices changed (one attached or detached, or
//! running another version), the daemon runs a pass at once (a replugged
//! device is confirmed) and checks in [`REPORT_AFTER_CHANGE`] later, so the
//! server's inventory and reports follow within minutes instead of at the
//! next poll. The same goes for a pass that changed the update states the
//! last check-in reported (installed, failed, started waiting for a window
//! or a guard): [`CheckIn::report_due`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;

use catalog::protocol::DeviceReport;
use catalog::window::MaintenanceWindow;
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::devices::{BackendError, DeviceBackend};
use crate::schedule::host::{AlwaysAwake, HostState};
use crate::schedule::windows::{next_opening, next_window};
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

/// How long after a change of the attached devices the agent checks in
/// (changes within it, e.g. a dock's devices, go out together), plus up to
/// as much again spread by the SystemID seed, so a fleet whose devices all
/// re-enumerate as a window opens does not report in the same second.
pub const REPORT_AFTER_CHANGE: chrono::Duration = chrono::Duration::minutes(1);

/// Change reports come at most this often after a successful check-in, and
/// never while check-ins fail (the backoff decides then): a device that
/// comes and goes at every scan cannot make the agent hammer the server.
pub const MIN_REPORT_SPACING: chrono::Duration = chrono::Duration::minutes(5);

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

    /// An early check-in that reports a change (of the devices, or of the
    /// update states after a pass) before the next regular one. Like
    /// [`CheckIn::check_in`], except that its pass does not remind the
    /// user of open prompts: reminders come with regular polls and logins.
    fn report(&mut self, now: DateTime<Utc>) -> Result<(), CheckInError> {
        self.check_in(now)
    }

    /// Once, before the first check-in: finish what a restart interrupted.
    fn start(&mut self, _now: DateTime<Utc>) {}

    /// Sends the event spool (failures are logged; events stay spooled).
    fn send_events(&mut self, _now: DateTime<Utc>) {}

    /// The poll interval the server asked for, once known.
    fn poll_interval(&self) -> Option<chrono::Duration> {
        None
    }

    /// A pass on what is already assigned, without a check-in (a window
    /// opened, a user decided, a guard may have cleared).
    fn act(&mut self, _now: DateTime<Utc>) {}

    /// The maintenance windows of updates still pending.
    fn windows(&self, _now: DateTime<Utc>) -> Vec<MaintenanceWindow> {
        Vec::new()
    }

    /// The last pass held an update back only by a guard: pass again soon.
    fn retry_soon(&self) -> bool {
        false
    }

    /// A user logged in.
    fn user_session(&mut self, _now: DateTime<Utc>) {}

    /// The last pass changed the update states since the last check-in
    /// reported them: report them soon (see [`REPORT_AFTER_CHANGE`]).
    fn report_due(&self) -> bool {
        false
    }
}

/// What wakes [`Daemon::run`] early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Stop (SIGTERM, Ctrl-C).
    Stop,
    /// A user decided on a prompt: pass now.
    Act,
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
    /// Attached at both scans, running another firmware version now.
    pub version_changed: Vec<String>,
}

impl ScanOutcome {
    /// Anything attached, detached or re-versioned since the previous scan.
    pub fn changed(&self) -> bool {
        !(self.appeared.is_empty()
            && self.disappeared.is_empty()
            && self.version_changed.is_empty())
    }
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
    /// Attached devices and their versions at the last scan (`None` before it).
    present: Option<BTreeMap<String, Option<String>>>,
    /// A check-in asked for by a change of the devices.
    report_at: Option<DateTime<Utc>>,
    /// Change reports so far (spreads each one differently).
    reports: i64,
    host: Arc<dyn HostState>,
    sessions: Option<BTreeSet<String>>,
    window_offset: chrono::Duration,
    /// Pre-window check-ins and openings up to here are done.
    window_checked: DateTime<Utc>,
    window_opened: DateTime<Utc>,
    act_now: bool,
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
            present: None,
            report_at: None,
            reports: 0,
            host: Arc::new(AlwaysAwake),
            sessions: None,
            window_offset: chrono::Duration::zero(),
            window_checked: now,
            window_opened: now,
            act_now: false,
        }
    }

    /// Checks in `offset` before each maintenance window (see
    /// [`crate::schedule::windows::fleet_offset`]).
    pub fn with_window_offset(mut self, offset: chrono::Duration) -> Self {
        self.window_offset = offset.max(chrono::Duration::zero());
        self
    }

    /// Watches `host` for user sessions (a new one is a login).
    pub fn with_host(mut self, host: Arc<dyn HostState>) -> Self {
        self.host = host;
        self
    }

    /// Asks for a pass at the next tick (a user's decision).
    pub fn request_act(&mut self) {
        self.act_now = true;
    }

    /// A new session since the last look (the first look only learns them).
    fn new_session(&mut self) -> bool {
        let now: BTreeSet<String> = self.host.sessions().into_iter().collect();
        let new = self
            .sessions
            .as_ref()
            .is_some_and(|known| now.difference(known).next().is_some());
        self.sessions = Some(now);
        new
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
        let present: BTreeMap<String, Option<String>> = reports
            .iter()
            .map(|d| (d.identity(), d.firmware_version.clone()))
            .collect();
        let before = self.present.clone().unwrap_or_default();
        let appeared: Vec<String> = present
            .keys()
            .filter(|id| !before.contains_key(*id))
            .cloned()
            .collect();
        let disappeared: Vec<String> = before
            .keys()
            .filter(|id| !present.contains_key(*id))
            .cloned()
            .collect();
        let version_changed: Vec<String> = present
            .iter()
            .filter(|(id, v)| before.get(*id).is_some_and(|old| old != *v))
            .map(|(id, _)| id.clone())
            .collect();
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
        let ids = present.keys().cloned().collect();
        self.present = Some(present);
        Ok(Some(ScanOutcome {
            present: ids,
            appeared,
            disappeared,
            first_seen,
            version_changed,
        }))
    }

    /// Schedules a check-in after a change of the devices, if the last
    /// check-in succeeded and none is scheduled yet (see
    /// [`REPORT_AFTER_CHANGE`], [`MIN_REPORT_SPACING`]).
    fn ask_for_report(&mut self, now: DateTime<Utc>) {
        let LastCheckIn::Succeeded { at } = self.last_check_in else {
            return;
        };
        if self.report_at.is_some() {
            return;
        }
        self.reports += 1;
        let spread = self
            .schedule
            .spread(b"report", self.reports, REPORT_AFTER_CHANGE);
        self.report_at = Some((now + REPORT_AFTER_CHANGE + spread).max(at + MIN_REPORT_SPACING));
    }

    /// Does whatever is due now (scan, check-in) and returns when to wake next.
    pub fn tick(&mut self) -> Result<DateTime<Utc>, DaemonError> {
        let now = self.clock.now();
        if !self.started {
            self.started = true;
            self.check_in.start(now);
        }
        let mut act = std::mem::take(&mut self.act_now);
        if now >= self.next_scan {
            let first = self.present.is_none();
            let found = self.scan()?;
            self.next_scan = now + self.scan_interval;
            if found.as_ref().is_some_and(|o| !o.first_seen.is_empty()) {
                // Registrations go out at once.
                self.next_events = now;
            }
            if !first && found.as_ref().is_some_and(ScanOutcome::changed) {
                act = true;
                self.ask_for_report(now);
            }
            if self.new_session() {
                self.check_in.user_session(now);
            }
            act |= self.check_in.retry_soon();
        }
        let windows = self.check_in.windows(now);
        // A regular check-in (the poll, or before a window) or an early report.
        let mut regular = self.schedule.next_attempt(now, self.last_check_in) <= now;
        let report_due = self.report_at.is_some_and(|at| at <= now);
        if let Some(o) = next_window(&windows, self.window_checked, self.window_offset) {
            if o.start - self.window_offset <= now {
                tracing::info!(window = %o.start.to_rfc3339(), "checking in before the maintenance window");
                self.window_checked = o.start - self.window_offset;
                regular = true;
            }
        }
        if let Some(opens) = next_opening(&windows, self.window_opened) {
            if opens <= now {
                tracing::info!(window = %opens.to_rfc3339(), "maintenance window open");
                self.window_opened = opens;
                act = true;
            }
        }
        if regular || report_due {
            // Failures retry on the schedule's backoff, not on the change.
            self.report_at = None;
            let outcome = if regular {
                self.check_in.check_in(now)
            } else {
                self.check_in.report(now)
            };
            self.last_check_in = match outcome {
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
        // A successful check-in ran a pass already.
        let passed = matches!(self.last_check_in, LastCheckIn::Succeeded { at } if at == now);
        if act && !passed {
            self.check_in.act(now);
        }
        if (act || passed) && self.check_in.report_due() {
            self.ask_for_report(now);
        }
        if now >= self.next_events {
            self.check_in.send_events(now);
            self.next_events = now + EVENT_INTERVAL;
        }
        let next_check_in = self
            .schedule
            .next_attempt(now, self.last_check_in)
            .min(self.report_at.unwrap_or(DateTime::<Utc>::MAX_UTC));
        let windows = self.check_in.windows(now);
        let mut wake = self.next_scan.min(next_check_in).min(self.next_events);
        if let Some(o) = next_window(&windows, self.window_checked, self.window_offset) {
            wake = wake.min((o.start - self.window_offset).max(now));
        }
        if let Some(opens) = next_opening(&windows, self.window_opened) {
            wake = wake.min(opens.max(now));
        }
        Ok(wake)
    }

    /// Runs until `wake` receives [`Wake::Stop`] (or its senders are
    /// dropped), waking for each tick on the real time the clock reports,
    /// and at once for [`Wake::Act`]. Before returning it sends the event
    /// spool once: events of the last pass would otherwise wait for the
    /// next start (a host shut down for days reports nothing meanwhile).
    pub fn run(&mut self, wake: &Receiver<Wake>) -> Result<(), DaemonError> {
        loop {
            let at = self.tick()?;
            let wait = self.clock.real_wait(at - self.clock.now());
            match wake.recv_timeout(wait) {
                Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    self.check_in.send_events(self.clock.now());
                    return Ok(());
                }
                Ok(Wake::Act) => self.request_act(),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
