use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use test_devices::{FirmwareVersion, HidTelephonyDevice, ModelProfile, SimDevice, VirtualBus};

use super::*;
use crate::clock::ManualClock;
use crate::devices::SimDevices;
use catalog::window::MaintenanceWindow;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Fails the first `failures` check-ins, records when each was made.
struct FlakyCheckIn {
    failures: u32,
    calls: Arc<Mutex<Vec<DateTime<Utc>>>>,
}

impl CheckIn for FlakyCheckIn {
    fn check_in(&mut self, now: DateTime<Utc>) -> Result<(), CheckInError> {
        self.calls.lock().unwrap().push(now);
        if self.failures > 0 {
            self.failures -= 1;
            return Err(CheckInError::Unreachable("connection refused".into()));
        }
        Ok(())
    }
}

fn daemon(
    bus: &VirtualBus,
    clock: &Arc<ManualClock>,
    failures: u32,
    dir: &std::path::Path,
) -> (Daemon, Arc<Mutex<Vec<DateTime<Utc>>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let check_in = Box::new(FlakyCheckIn {
        failures,
        calls: calls.clone(),
    });
    (daemon_with(bus, clock, dir, check_in), calls)
}

/// A daemon over `bus` polling every 6 h and scanning every minute, with
/// a fixed seed.
fn daemon_with(
    bus: &VirtualBus,
    clock: &Arc<ManualClock>,
    dir: &std::path::Path,
    check_in: Box<dyn CheckIn>,
) -> Daemon {
    Daemon::new(
        State::open_in(dir).unwrap(),
        Box::new(SimDevices::new(bus.clone())),
        clock.clone(),
        check_in,
        Timings {
            poll_interval: Duration::hours(6),
            scan_interval: Duration::seconds(60),
        },
        [3; 16],
    )
}

#[test]
fn scans_record_hotplug_in_device_history() {
    let dir = tempfile::tempdir().unwrap();
    let bus = VirtualBus::new();
    let headset = bus.attach(SimDevice::new(ModelProfile::headset_tolerant()));
    bus.attach_hid(HidTelephonyDevice::other_vendor_headset());
    let clock = Arc::new(ManualClock::new(t0()));
    let (mut d, _) = daemon(&bus, &clock, 0, dir.path());
    let tolerant = format!(
        "1209/serial/{}",
        ModelProfile::headset_tolerant().serial.unwrap()
    );
    let other = "0b0e/serial/OVA-45-778812".to_owned();

    // Start: scan at once, next wake-up is the next scan.
    assert_eq!(d.tick().unwrap(), t0() + Duration::seconds(60));
    assert_eq!(d.state().devices().unwrap().len(), 2);

    bus.unplug(headset);
    clock.advance(Duration::seconds(60));
    let out = d.scan().unwrap().unwrap();
    assert_eq!(out.disappeared, std::slice::from_ref(&tolerant));
    assert_eq!(out.present, std::slice::from_ref(&other));
    assert!(out.first_seen.is_empty());

    bus.plug(headset);
    clock.advance(Duration::seconds(60));
    let out = d.scan().unwrap().unwrap();
    assert_eq!(out.appeared, std::slice::from_ref(&tolerant));
    assert!(out.first_seen.is_empty(), "seen before: not new");

    let history = d.state().devices().unwrap();
    let by_id = |id: &str| history.iter().find(|r| r.identity == id).unwrap().clone();
    assert_eq!(by_id(&tolerant).first_seen, t0());
    assert_eq!(by_id(&tolerant).last_seen, t0() + Duration::seconds(120));
    assert_eq!(by_id(&tolerant).last_version.as_deref(), Some("1.0.0"));
    assert_eq!(by_id(&other).last_seen, t0() + Duration::seconds(120));
    // Two first sightings, two spooled events.
    assert_eq!(d.state().pending_events(10).unwrap().len(), 2);
}

#[test]
fn check_ins_follow_the_schedule_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let bus = VirtualBus::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let (mut d, calls) = daemon(&bus, &clock, 3, dir.path());
    let mut ticks = 0;
    while clock.now() < t0() + Duration::hours(13) {
        let wake = d.tick().unwrap();
        assert!(wake > clock.now(), "always a future wake-up");
        assert!(
            wake <= clock.now() + Duration::seconds(60),
            "scans every minute"
        );
        clock.set(wake);
        ticks += 1;
    }
    let calls = calls.lock().unwrap().clone();
    let offsets: Vec<i64> = calls.iter().map(|c| (*c - t0()).num_seconds()).collect();
    assert_eq!(calls.len(), 6, "{offsets:?}");
    assert_eq!(offsets[0], 0, "at start");
    // Backoff: ~1, ~2, ~4 min after each failure (± 10 %, then the next scan tick).
    let gaps: Vec<i64> = offsets.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, want) in gaps.iter().zip([60, 120, 240]) {
        assert!(
            *gap >= want * 9 / 10 && *gap <= want * 11 / 10 + 1,
            "{gaps:?}"
        );
    }
    // Then every 6 h counted from start, ± 36 min.
    for (k, at) in [(1, offsets[4]), (2, offsets[5])] {
        assert!((at - k * 6 * 3600).abs() <= 36 * 60 + 1, "{offsets:?}");
    }
    assert!(matches!(d.last_check_in(), LastCheckIn::Succeeded { .. }));
    assert!(ticks > 700, "{ticks} ticks");
}

#[test]
fn run_stops_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let bus = VirtualBus::new();
    bus.attach(SimDevice::new(ModelProfile::usb_dongle()));
    let clock = Arc::new(ManualClock::new(t0()));
    let (mut d, calls) = daemon(&bus, &clock, 0, dir.path());
    let (tx, rx) = std::sync::mpsc::channel();
    tx.send(Wake::Stop).unwrap();
    d.run(&rx).unwrap();
    // One tick happened before the stop was seen.
    assert_eq!(calls.lock().unwrap().len(), 1);
    assert_eq!(d.state().devices().unwrap().len(), 1);
}

#[test]
fn stopping_sends_the_event_spool_once() {
    let dir = tempfile::tempdir().unwrap();
    let bus = VirtualBus::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let (mut d, log) = recording_daemon(&bus, &clock, dir.path());
    let (tx, rx) = std::sync::mpsc::channel();
    tx.send(Wake::Stop).unwrap();
    d.run(&rx).unwrap();
    // The first tick sends at start; the stop sends again.
    assert_eq!(seconds_of(&log, "send_events"), [0, 0]);
    assert_eq!(seconds_of(&log, "check_in"), [0]);
}

/// Which hook ran when.
type HookLog = Arc<Mutex<Vec<(&'static str, DateTime<Utc>)>>>;

/// When hook `name` ran, in seconds after `t0()`.
fn seconds_of(log: &HookLog, name: &str) -> Vec<i64> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|(n, _)| *n == name)
        .map(|(_, at)| (*at - t0()).num_seconds())
        .collect()
}

/// A daemon whose check-in is a [`Recording`], and its log.
fn recording_daemon(
    bus: &VirtualBus,
    clock: &Arc<ManualClock>,
    dir: &std::path::Path,
) -> (Daemon, HookLog) {
    let log = HookLog::default();
    let d = daemon_with(bus, clock, dir, Box::new(Recording { log: log.clone() }));
    (d, log)
}

/// Records which hooks ran when; asks for a 30-minute poll interval.
struct Recording {
    log: HookLog,
}

impl CheckIn for Recording {
    fn check_in(&mut self, now: DateTime<Utc>) -> Result<(), CheckInError> {
        self.log.lock().unwrap().push(("check_in", now));
        Ok(())
    }
    fn start(&mut self, now: DateTime<Utc>) {
        self.log.lock().unwrap().push(("start", now));
    }
    fn send_events(&mut self, now: DateTime<Utc>) {
        self.log.lock().unwrap().push(("send_events", now));
    }
    fn poll_interval(&self) -> Option<chrono::Duration> {
        Some(Duration::minutes(30))
    }
    fn act(&mut self, now: DateTime<Utc>) {
        self.log.lock().unwrap().push(("act", now));
    }
}

#[test]
fn start_hook_event_timer_new_devices_and_the_servers_poll_interval() {
    let dir = tempfile::tempdir().unwrap();
    let bus = VirtualBus::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let (mut d, log) = recording_daemon(&bus, &clock, dir.path());
    let s = |secs: i64| t0() + Duration::seconds(secs);
    let mut attached = false;
    while clock.now() < s(400) {
        if !attached && clock.now() > s(150) {
            // Plugged in at 150 s: the scan at 180 s finds it.
            bus.attach(SimDevice::new(ModelProfile::headset_tolerant()));
            attached = true;
        }
        let wake = d.tick().unwrap();
        clock.set(wake);
    }
    let hooks = |name: &str| seconds_of(&log, name);
    assert_eq!(hooks("start"), [0]);
    // At start, and after the scan that found the new device (which also
    // ran a pass at once): a minute or two later, but not within five
    // minutes of the last check-in.
    assert_eq!(hooks("check_in"), [0, 300]);
    assert_eq!(hooks("act"), [180]);
    // At start, every 2 minutes, and at once when a scan (every 60 s) finds a new device.
    assert_eq!(hooks("send_events"), [0, 120, 180, 300]);
    // The server's 30-minute interval replaces the configured 6 hours.
    while hooks("check_in").len() < 3 {
        let wake = d.tick().unwrap();
        clock.set(wake);
    }
    // (The schedule's ticks count from the start.)
    let third = hooks("check_in")[2];
    assert!((27 * 60..=33 * 60 + 60).contains(&third), "{third}");
}

/// A silent update with a nightly window that a guard holds back until
/// `until`; records check-ins, passes and logins.
struct Nightly {
    log: HookLog,
    window: MaintenanceWindow,
    guarded_until: DateTime<Utc>,
    installed_at: Option<DateTime<Utc>>,
    last_act: Option<DateTime<Utc>>,
}

impl CheckIn for Nightly {
    fn check_in(&mut self, now: DateTime<Utc>) -> Result<(), CheckInError> {
        self.log.lock().unwrap().push(("check_in", now));
        self.act(now);
        Ok(())
    }
    fn act(&mut self, now: DateTime<Utc>) {
        self.log.lock().unwrap().push(("act", now));
        self.last_act = Some(now);
        if self.installed_at.is_none()
            && now >= self.guarded_until
            && self.window.active_at(now).is_some()
        {
            self.installed_at = Some(now);
        }
    }
    fn windows(&self, _now: DateTime<Utc>) -> Vec<MaintenanceWindow> {
        if self.installed_at.is_some() {
            return Vec::new();
        }
        vec![self.window.clone()]
    }
    fn retry_soon(&self) -> bool {
        // Held back by the guard inside the window.
        self.installed_at.is_none()
            && self
                .last_act
                .is_some_and(|t| self.window.active_at(t).is_some())
    }
    fn user_session(&mut self, now: DateTime<Utc>) {
        self.log.lock().unwrap().push(("login", now));
    }
}

/// A week of nights in virtual time: a check-in `offset` before every
/// window (Europe/Berlin 02:00, 3 h), a pass when it opens, retries at each
/// scan while the guard holds, none after the install; logins remind.
#[test]
fn a_week_of_windows_pre_window_check_ins_passes_and_retries() {
    use crate::schedule::host::SimulatedHost;
    use crate::schedule::windows::fleet_offset;
    use chrono::TimeZone;

    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let log: HookLog = Arc::new(Mutex::new(Vec::new()));
    let window = MaintenanceWindow::new("0 2 * * *", Duration::hours(3), "Europe/Berlin").unwrap();
    // 02:00 CET is 01:00 UTC; the guard clears at 02:30 UTC on the third night.
    let night = |n: u32, h: u32, m: u32| Utc.with_ymd_and_hms(2026, 11, 20 + n, h, m, 0).unwrap();
    let host = Arc::new(SimulatedHost::new());
    host.login("1");
    let offset = fleet_offset("3f2a9c0d-system", Duration::minutes(10));
    assert!(offset > Duration::zero() && offset < Duration::minutes(10));
    let mut d = Daemon::new(
        State::open_in(dir.path()).unwrap(),
        Box::new(SimDevices::new(VirtualBus::new())),
        clock.clone(),
        Box::new(Nightly {
            log: log.clone(),
            window,
            guarded_until: night(3, 2, 30),
            installed_at: None,
            last_act: None,
        }),
        Timings {
            poll_interval: Duration::hours(24),
            scan_interval: Duration::minutes(10),
        },
        [3; 16],
    )
    .with_window_offset(offset)
    .with_host(host.clone());
    let started = std::time::Instant::now();
    let mut ticks = 0;
    while clock.now() < t0() + Duration::days(7) {
        if clock.now() >= night(2, 7, 0) && host.sessions().len() == 1 {
            host.login("2");
        }
        let wake = d.tick().unwrap();
        assert!(wake >= clock.now());
        clock.set(wake);
        ticks += 1;
    }
    let log = log.lock().unwrap().clone();
    let at = |name: &str| -> Vec<DateTime<Utc>> {
        log.iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .collect()
    };
    // Check-ins: at start (08:00 UTC), then daily (± jitter), and `offset`
    // before each of the three windows until the install.
    let pre: Vec<DateTime<Utc>> = at("check_in")
        .into_iter()
        .filter(|t| (1..=3).any(|n| *t == night(n, 1, 0) - offset))
        .collect();
    assert_eq!(pre, [1, 2, 3].map(|n| night(n, 1, 0) - offset));
    // Passes at every opening up to the install.
    let acts = at("act");
    for n in 1..=3 {
        assert!(acts.contains(&night(n, 1, 0)), "night {n}: {acts:?}");
    }
    // Retried at each scan while the guard held: nights 1 and 2 all window
    // long (3 h of 10-minute scans), night 3 until 02:30 UTC.
    let in_night = |n: u32| {
        acts.iter()
            .filter(|t| **t >= night(n, 1, 0) && **t < night(n, 4, 0))
            .count()
    };
    assert!((17..=20).contains(&in_night(1)), "{}", in_night(1));
    assert!((8..=11).contains(&in_night(3)), "{}", in_night(3));
    // Installed on night 3: nothing at the later windows.
    for n in 4..=6 {
        assert_eq!(in_night(n), 0, "night {n}");
        assert!(!at("check_in").contains(&(night(n, 1, 0) - offset)));
    }
    // The second user's login (the first was there at start).
    assert_eq!(at("login").len(), 1);
    assert!(at("login")[0] >= night(2, 7, 0) && at("login")[0] < night(2, 7, 11));
    // A week of virtual time: one tick per scan at least, no real waiting
    // (the time taken is the state database's fsync per scan).
    assert!(ticks > 1_000, "{ticks}");
    eprintln!("a week in {ticks} ticks, {:?}", started.elapsed());
}

#[test]
fn a_change_of_the_devices_runs_a_pass_and_reports_a_minute_later() {
    let dir = tempfile::tempdir().unwrap();
    let bus = VirtualBus::new();
    let headset = bus.attach(SimDevice::new(ModelProfile::headset_tolerant()));
    let clock = Arc::new(ManualClock::new(t0()));
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut d = daemon_with(
        &bus,
        &clock,
        dir.path(),
        Box::new(Recording { log: log.clone() }),
    );
    let s = |secs: i64| t0() + Duration::seconds(secs);
    let replugged = std::cell::OnceCell::new();
    // (at, what the user does before the scan at that second)
    let mut script: Vec<(i64, Box<dyn Fn()>)> = vec![
        // A replug after a flash: the device comes back with another version.
        (
            240,
            Box::new(|| {
                bus.unplug(headset);
                let id = bus.attach(SimDevice::new(
                    ModelProfile::headset_tolerant().with_version(FirmwareVersion::new(2, 1, 0)),
                ));
                let _ = replugged.set(id);
            }),
        ),
        // Unplugged (the replugged one; the first is gone already).
        (
            600,
            Box::new(|| bus.unplug(replugged.get().copied().unwrap())),
        ),
    ];
    script.reverse();
    while clock.now() < s(1200) {
        if script.last().is_some_and(|(at, _)| clock.now() >= s(*at)) {
            (script.pop().unwrap().1)();
        }
        let wake = d.tick().unwrap();
        clock.set(wake.min(s(1200)));
    }
    let hooks = |name: &str| seconds_of(&log, name);
    // Quiet scans (60, 120, 180 s …) change nothing; each change passes at
    // once and checks in one to two minutes later (spread by the seed), at
    // least five minutes after the previous check-in.
    let spread = |n| {
        crate::schedule::PollSchedule::new(t0(), Duration::hours(6), [3; 16])
            .spread(b"report", n, REPORT_AFTER_CHANGE)
            .num_seconds()
    };
    let (first, second) = (spread(1), spread(2));
    assert!((0..60).contains(&first) && (0..60).contains(&second));
    assert_eq!(hooks("check_in"), [0, 300 + first, 660 + second]);
    assert_eq!(hooks("act"), [240, 600]);
}

#[test]
fn a_device_that_comes_and_goes_never_makes_failing_check_ins_more_frequent() {
    // The same failing server twice: once with a quiet desk, once with a
    // headset that drops off and comes back at every scan.
    let run = |flapping: bool| {
        let dir = tempfile::tempdir().unwrap();
        let bus = VirtualBus::new();
        let headset = bus.attach(SimDevice::new(ModelProfile::headset_tolerant()));
        let clock = Arc::new(ManualClock::new(t0()));
        let (mut d, calls) = daemon(&bus, &clock, u32::MAX, dir.path());
        let mut attached = true;
        while clock.now() < t0() + Duration::hours(3) {
            let wake = d.tick().unwrap();
            if flapping {
                if attached {
                    bus.unplug(headset);
                } else {
                    bus.plug(headset);
                }
                attached = !attached;
            }
            clock.set(wake);
        }
        let times = calls.lock().unwrap().clone();
        times
    };
    let quiet = run(false);
    assert!(quiet.len() >= 3, "{quiet:?}");
    assert_eq!(run(true), quiet);
}

/// Records check-ins and passes; the passes at the seconds listed change
/// the update states the last check-in reported.
struct ChangingStates {
    log: HookLog,
    changing_passes: Vec<i64>,
    due: bool,
}

impl ChangingStates {
    fn pass(&mut self, name: &'static str, now: DateTime<Utc>) {
        self.log.lock().unwrap().push((name, now));
        self.due = self.changing_passes.contains(&(now - t0()).num_seconds());
    }
}

impl CheckIn for ChangingStates {
    fn check_in(&mut self, now: DateTime<Utc>) -> Result<(), CheckInError> {
        self.pass("check_in", now);
        Ok(())
    }
    fn report(&mut self, now: DateTime<Utc>) -> Result<(), CheckInError> {
        self.pass("report", now);
        Ok(())
    }
    fn act(&mut self, now: DateTime<Utc>) {
        self.pass("act", now);
    }
    fn report_due(&self) -> bool {
        self.due
    }
}

#[test]
fn a_pass_that_changes_an_update_is_reported_within_minutes_and_a_quiet_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let bus = VirtualBus::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let log = Arc::new(Mutex::new(Vec::new()));
    // The first check-in's pass stages an update (now waiting for its
    // window); the report at 300 s changes nothing; a user's decision at
    // 1000 s installs it; the one at 2000 s changes nothing.
    let mut d = daemon_with(
        &bus,
        &clock,
        dir.path(),
        Box::new(ChangingStates {
            log: log.clone(),
            changing_passes: vec![0, 1000],
            due: false,
        }),
    );
    let end = t0() + Duration::hours(2);
    while clock.now() < end {
        let secs = (clock.now() - t0()).num_seconds();
        if secs == 1000 || secs == 2000 {
            d.request_act();
        }
        let mut wake = d.tick().unwrap().min(end);
        for decision in [1000, 2000] {
            let at = t0() + Duration::seconds(decision);
            if clock.now() < at && wake > at {
                wake = at;
            }
        }
        clock.set(wake);
    }
    let spread = |n| {
        crate::schedule::PollSchedule::new(t0(), Duration::hours(6), [3; 16])
            .spread(b"report", n, REPORT_AFTER_CHANGE)
            .num_seconds()
    };
    assert_eq!(seconds_of(&log, "act"), [1000, 2000]);
    // Reports (no reminders in their passes): at least five minutes after a
    // check-in, one to two minutes after a later change; nothing more until
    // the regular poll (6 h).
    assert_eq!(seconds_of(&log, "check_in"), [0]);
    assert_eq!(seconds_of(&log, "report"), [300, 1060 + spread(2)]);
}
