use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use test_devices::{HidTelephonyDevice, ModelProfile, SimDevice, VirtualBus};

use super::*;
use crate::clock::ManualClock;
use crate::devices::SimDevices;

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
    let d = Daemon::new(
        State::open_in(dir).unwrap(),
        Box::new(SimDevices::new(bus.clone())),
        clock.clone(),
        Box::new(FlakyCheckIn {
            failures,
            calls: calls.clone(),
        }),
        Timings {
            poll_interval: Duration::hours(6),
            scan_interval: Duration::seconds(60),
        },
        [3; 16],
    );
    (d, calls)
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
    tx.send(()).unwrap();
    d.run(&rx).unwrap();
    // One tick happened before the stop was seen.
    assert_eq!(calls.lock().unwrap().len(), 1);
    assert_eq!(d.state().devices().unwrap().len(), 1);
}

/// Which hook ran when.
type HookLog = Arc<Mutex<Vec<(&'static str, DateTime<Utc>)>>>;

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
}

#[test]
fn start_hook_event_timer_new_devices_and_the_servers_poll_interval() {
    let dir = tempfile::tempdir().unwrap();
    let bus = VirtualBus::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut d = Daemon::new(
        State::open_in(dir.path()).unwrap(),
        Box::new(SimDevices::new(bus.clone())),
        clock.clone(),
        Box::new(Recording { log: log.clone() }),
        Timings {
            poll_interval: Duration::hours(6),
            scan_interval: Duration::seconds(60),
        },
        [3; 16],
    );
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
    let hooks = |name: &str| -> Vec<i64> {
        log.lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, at)| (*at - t0()).num_seconds())
            .collect()
    };
    assert_eq!(hooks("start"), [0]);
    assert_eq!(hooks("check_in"), [0]);
    // At start, every 2 minutes, and at once when a scan (every 60 s) finds a new device.
    assert_eq!(hooks("send_events"), [0, 120, 180, 300]);
    // The server's 30-minute interval replaces the configured 6 hours.
    while hooks("check_in").len() < 2 {
        let wake = d.tick().unwrap();
        clock.set(wake);
    }
    let second = hooks("check_in")[1];
    assert!((27 * 60..=33 * 60 + 60).contains(&second), "{second}");
}
