use catalog::protocol::{DeviceReport, DfuState};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::*;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn device(serial: &str, version: &str) -> DeviceReport {
    DeviceReport {
        vendor_id: 0x1209,
        product_id: 0x0003,
        bcd_device: 0x0100,
        serial: Some(serial.into()),
        port_path: Some("1-4".into()),
        manufacturer: None,
        product: Some("Headset".into()),
        firmware_version: Some(version.into()),
        dfu: DfuState::Runtime,
        telephony: true,
        battery: None,
        in_call: false,
    }
}

fn update(digest: &str, device: &str, status: UpdateStatus) -> StagedUpdate {
    StagedUpdate {
        digest: digest.into(),
        target: format!("example/headset/2.0.0/{digest}.dfu"),
        device: device.into(),
        status,
        reason: None,
        updated_at: t0(),
        firmware: None,
    }
}

#[test]
fn staged_updates_round_trip_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    {
        let s = State::open(&path).unwrap();
        s.put_update(&update("aa", "1209/serial/A", UpdateStatus::Staged))
            .unwrap();
        s.put_update(&update("aa", "1209/serial/B", UpdateStatus::Staged))
            .unwrap();
        s.put_update(&update("bb", "1209/serial/A", UpdateStatus::Installed))
            .unwrap();
        let w = s
            .set_update_status(
                "aa",
                "1209/serial/B",
                UpdateStatus::Waiting,
                Some("outside the maintenance window"),
                t0() + Duration::minutes(5),
            )
            .unwrap();
        assert_eq!(w.status, UpdateStatus::Waiting);
        let e = s
            .set_update_status("cc", "x", UpdateStatus::Failed, None, t0())
            .unwrap_err();
        assert!(matches!(e, StateError::NoSuchUpdate { .. }), "{e}");
    }
    let s = State::open(&path).unwrap();
    let all = s.updates().unwrap();
    assert_eq!(all.len(), 3);
    let waiting = all.iter().find(|u| u.device == "1209/serial/B").unwrap();
    assert_eq!(waiting.status, UpdateStatus::Waiting);
    assert_eq!(
        waiting.reason.as_deref(),
        Some("outside the maintenance window")
    );
    assert_eq!(waiting.updated_at, t0() + Duration::minutes(5));
    let pending: Vec<_> = s
        .pending_updates()
        .unwrap()
        .into_iter()
        .map(|u| (u.digest, u.device))
        .collect();
    assert_eq!(
        pending,
        [
            ("aa".to_owned(), "1209/serial/A".to_owned()),
            ("aa".to_owned(), "1209/serial/B".to_owned())
        ]
    );
    assert!(s.remove_update("aa", "1209/serial/A").unwrap());
    assert!(!s.remove_update("aa", "1209/serial/A").unwrap());
    assert_eq!(s.updates().unwrap().len(), 2);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn download_progress_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let s = State::open_in(dir.path()).unwrap();
    let mut p = DownloadProgress {
        digest: "aa".into(),
        target: "t".into(),
        length: 1000,
        received: 0,
        updated_at: t0(),
    };
    s.set_download(&p).unwrap();
    p.received = 640;
    s.set_download(&p).unwrap();
    drop(s);
    let s = State::open_in(dir.path()).unwrap();
    assert_eq!(s.download("aa").unwrap(), Some(p.clone()));
    assert_eq!(s.download("bb").unwrap(), None);
    assert_eq!(s.downloads().unwrap(), vec![p]);
    assert!(s.remove_download("aa").unwrap());
    assert_eq!(s.downloads().unwrap(), vec![]);
}

#[test]
fn spool_survives_reopen_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let first = Event::new("agent_started", None, json!({"version": "0.1.0"}), t0());
    let second = Event::new(
        "update_installed",
        Some("1209/serial/A"),
        json!({"version": "2.0.0"}),
        t0() + Duration::seconds(1),
    );
    assert_ne!(first.id, second.id);
    assert_eq!(first.id.len(), 32);
    {
        let s = State::open_in(dir.path()).unwrap();
        assert!(s.spool(&first).unwrap());
        assert!(s.spool(&second).unwrap());
        assert!(!s.spool(&first).unwrap(), "same id: not spooled twice");
    }
    let s = State::open_in(dir.path()).unwrap();
    let pending = s.pending_events(100).unwrap();
    let ids: Vec<&str> = pending.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [first.id.as_str(), second.id.as_str()], "oldest first");
    assert_eq!(pending[1].detail, json!({"version": "2.0.0"}));
    assert_eq!(pending[1].device.as_deref(), Some("1209/serial/A"));
    assert_eq!(s.pending_events(1).unwrap().len(), 1);

    assert_eq!(s.acknowledge(&[first.id.as_str(), "unknown"]).unwrap(), 1);
    assert_eq!(
        s.acknowledge(&[first.id.as_str()]).unwrap(),
        0,
        "acking twice is harmless"
    );
    // A late re-send of an acknowledged event would be spooled again: ids are
    // what the server de-duplicates on.
    let third = Event::new("x", None, json!(null), t0());
    assert!(s.spool(&third).unwrap());
    drop(s);
    let s = State::open_in(dir.path()).unwrap();
    let ids: Vec<String> = s
        .pending_events(10)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, [second.id.clone(), third.id.clone()]);
    assert_eq!(s.acknowledge(&ids).unwrap(), 2);
    assert!(s.pending_events(10).unwrap().is_empty());
}

#[test]
fn device_history_first_and_last_seen() {
    let dir = tempfile::tempdir().unwrap();
    let s = State::open_in(dir.path()).unwrap();
    let a = device("A", "1.0.0");
    let b = device("B", "1.0.0");
    assert_eq!(
        s.record_scan(&[a.clone(), b.clone()], t0()).unwrap(),
        ["1209/serial/A", "1209/serial/B"]
    );
    // A was updated and seen again later; B is gone.
    let a2 = device("A", "2.0.0");
    let later = t0() + Duration::hours(1);
    assert!(s.record_scan(&[a2], later).unwrap().is_empty());
    drop(s);
    let s = State::open_in(dir.path()).unwrap();
    let devices = s.devices().unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[0].identity, "1209/serial/A");
    assert_eq!(devices[0].first_seen, t0());
    assert_eq!(devices[0].last_seen, later);
    assert_eq!(devices[0].last_version.as_deref(), Some("2.0.0"));
    assert_eq!(devices[1].first_seen, t0());
    assert_eq!(devices[1].last_seen, t0());
    assert_eq!(devices[1].last_version.as_deref(), Some("1.0.0"));
    // Each first sighting spooled one event, in the same transaction.
    let events = s.pending_events(10).unwrap();
    let kinds: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.device.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("device_discovered", Some("1209/serial/A")),
            ("device_discovered", Some("1209/serial/B"))
        ]
    );
    assert_eq!(events[0].detail["serial"], "A");
}

#[test]
fn two_handles_share_the_file() {
    // The daemon keeps the database open while `status` reads it.
    let dir = tempfile::tempdir().unwrap();
    let daemon = State::open_in(dir.path()).unwrap();
    let status = State::open_in(dir.path()).unwrap();
    daemon
        .put_update(&update("aa", "d", UpdateStatus::Staged))
        .unwrap();
    assert_eq!(status.updates().unwrap().len(), 1);
}

#[test]
fn a_users_decline_or_deferral_is_spooled_for_the_admin_with_the_decision() {
    use crate::prompts::{Decision, Prompt, PromptKind, PromptSubject};
    let dir = tempfile::tempdir().unwrap();
    let state = State::open_in(dir.path()).unwrap();
    let subject = PromptSubject {
        device: "1209/serial/SN-1",
        product: Some("Voyage 5200 USB headset"),
        target: "acme/headset/2.0.0/fw.dfu",
        version: "2.0.0",
        digest: "ab12",
    };
    // (kind, decision) -> spooled event kind
    let cases = [
        (
            PromptKind::UpdateAvailable,
            Decision::Decline,
            Some("user_declined"),
        ),
        (
            PromptKind::UpdateRequired,
            Decision::Defer,
            Some("user_deferred"),
        ),
        (PromptKind::UpdateAvailable, Decision::Accept, None),
        (PromptKind::Replug, Decision::Defer, None),
    ];
    for (kind, decision, expected) in cases {
        let prompt = Prompt::new(kind, &subject, Some(3), t0());
        state.put_prompt(&prompt).unwrap();
        let before = state.pending_events(100).unwrap().len();
        state.decide(&prompt.id, decision, t0()).unwrap();
        let events = state.pending_events(100).unwrap();
        let new: Vec<_> = events[before..].iter().collect();
        match expected {
            Some(k) => {
                assert_eq!(new.len(), 1, "{decision:?}: {new:?}");
                assert_eq!(new[0].kind, k);
                assert_eq!(new[0].device.as_deref(), Some("1209/serial/SN-1"));
                assert_eq!(new[0].detail["version"], "2.0.0");
                assert_eq!(new[0].detail["target"], "acme/headset/2.0.0/fw.dfu");
                let wire = crate::events::to_wire(new[0]).unwrap();
                assert!(matches!(
                    wire.kind,
                    catalog::events::EventKind::UserDeclined { .. }
                        | catalog::events::EventKind::UserDeferred { .. }
                ));
            }
            None => assert!(new.is_empty(), "{decision:?}: {new:?}"),
        }
    }
    // A refused decision spools nothing.
    let before = state.pending_events(100).unwrap().len();
    assert!(state
        .decide("no-such-prompt", Decision::Decline, t0())
        .is_err());
    assert_eq!(state.pending_events(100).unwrap().len(), before);
}
