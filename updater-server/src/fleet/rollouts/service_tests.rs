//! Rollouts through the store and the real check-in, on an injected clock.

use std::sync::{Arc, Mutex};

use catalog::checkin::{CheckIn, CheckInResponse};
use catalog::import::ImportOptions;
use catalog::package::HardwareId;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;
use crate::auth::{Accounts, Clock, Enrollment, SessionPolicy};
use crate::fleet::inventory;
use crate::fleet::rollouts::MemberState;
use crate::fleet::{GroupInput, Membership};
use crate::store::{Agent, RedbStore};

#[derive(Debug)]
struct ManualClock(Mutex<DateTime<Utc>>);

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

struct World {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    accounts: Accounts,
    fleet: Fleet,
    tenant: String,
    token: String,
    agents: Vec<Agent>,
}

const MODEL: (u16, u16) = (0x047f, 0xc056);

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap()
}

impl World {
    /// A tenant with a Pilot group (user "pia"), release 2.0 of the model
    /// in the catalog, and `hosts` agents with one device each on 1.0 (the
    /// first two used by pia).
    fn new(hosts: usize) -> World {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock(Mutex::new(start())));
        let store = Arc::new(RedbStore::open(&dir.path().join("s.redb")).unwrap());
        let keys = dir.path().join("keys");
        let accounts = Accounts::new(store, clock.clone(), keys.clone(), SessionPolicy::default());
        let cat_dir = dir.path().join("catalog");
        let mut catalog = catalog::Catalog::init(&cat_dir, &keys, start()).unwrap();
        let image = dir.path().join("fw-2.0.bin");
        std::fs::write(&image, vec![0x5a; 4096]).unwrap();
        catalog
            .import(
                &image,
                &ImportOptions {
                    vendor: Some("Acme".into()),
                    model: Some("Voyage".into()),
                    hardware_ids: vec![HardwareId::new(MODEL.0, MODEL.1)],
                    version: Some("2.0".into()),
                    silent_capable: Some(true),
                    ..Default::default()
                },
                start(),
            )
            .unwrap();
        let (t, token) = accounts.create_tenant("Acme").unwrap();
        let fleet = Fleet::new(accounts.clone(), cat_dir, keys);
        fleet
            .create_group(
                &t.id,
                &GroupInput {
                    name: "Pilot".into(),
                    priority: None,
                    poll_interval_secs: None,
                    membership: Membership::Manual {
                        members: vec!["pia".into()],
                    },
                },
            )
            .unwrap();
        let mut w = World {
            _dir: dir,
            clock,
            accounts,
            fleet,
            tenant: t.id,
            token,
            agents: Vec::new(),
        };
        for i in 0..hosts {
            w.enroll(i);
            w.check_in(i, "1.0", None);
        }
        w
    }

    fn enroll(&mut self, i: usize) {
        let e = self
            .accounts
            .enroll(&Enrollment {
                tenant: self.tenant.clone(),
                token: self.token.clone(),
                system_id: format!("SYS-{i}"),
                machine_fingerprint: format!("m{i}"),
                hostname: format!("ws-{i}"),
                os: "Linux".into(),
            })
            .unwrap();
        self.agents.push(e.agent);
    }

    fn user(i: usize) -> String {
        if i < 2 {
            "pia".into()
        } else {
            format!("user{i}")
        }
    }

    /// Host `i` checks in with its device on `version` and, optionally, an
    /// update state `(phase, message)` for release 2.0; returns the
    /// assigned targets and the explanation for its device.
    fn check_in(
        &self,
        i: usize,
        version: &str,
        state: Option<(&str, &str)>,
    ) -> (Vec<(String, String)>, Option<String>) {
        let states = match state {
            Some((phase, message)) => format!(
                r#"[{{"device":"047f/serial/SN-{i}","target_name":"{}","phase":"{phase}","message":"{message}"}}]"#,
                self.target()
            ),
            None => "[]".into(),
        };
        let body: CheckIn = serde_json::from_str(&format!(
            r#"{{"agent_version":"0.1.0","platform":"linux","hostname":"ws-{i}",
                "users":[{{"account":"{}"}}],
                "devices":[{{"vendor_id":{},"product_id":{},"bcd_device":256,"serial":"SN-{i}",
                             "firmware_version":"{version}","dfu":"runtime","telephony":false,
                             "in_call":false}}],
                "update_states":{states}}}"#,
            Self::user(i),
            MODEL.0,
            MODEL.1
        ))
        .unwrap();
        let answer = self.fleet.check_in(&self.agents[i], &body).unwrap();
        let r: CheckInResponse = serde_json::from_str(&answer.body).unwrap();
        let signed = &r.assignments["signed"];
        let assigned = signed["assignments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["target_name"].as_str().unwrap().to_owned(),
                    a["policy"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let why = signed["not_assigned"][format!("047f/serial/SN-{i}")]
            .as_str()
            .map(str::to_owned);
        (assigned, why)
    }

    fn target(&self) -> String {
        self.fleet.releases().unwrap()[0].target_name.clone()
    }

    fn advance(&self, minutes: i64) {
        *self.clock.0.lock().unwrap() += TimeDelta::minutes(minutes);
    }

    /// The inventory id of host `i`'s headset.
    fn device_id(&self, i: usize) -> String {
        inventory::device_id_of_identity(&self.agents[i].id, &format!("047f/serial/SN-{i}"))
    }

    fn member(&self, rollout: &str, i: usize) -> Member {
        let device = self.device_id(i);
        self.fleet
            .rollout_members(&self.tenant, rollout)
            .unwrap()
            .into_iter()
            .find(|(d, _)| *d == device)
            .map(|(_, m)| m)
            .unwrap()
    }
}

fn spec(json: &str) -> RolloutInput {
    serde_json::from_str(json).unwrap()
}

const STAGED: &str = r#"{"name":"Voyage 2.0","model":"047F:C056","version":"latest",
    "deployment":"persistent",
    "waves":[{"group":"Pilot"},{"percent":50,"error_threshold_percent":5},
              {"rest":true,"start":"approval"}]}"#;

#[test]
fn a_staged_rollout_through_real_check_ins() {
    let mut w = World::new(24);
    let r = w
        .fleet
        .create_rollout(&w.tenant, spec(STAGED), "ann@example.com")
        .unwrap();
    assert_eq!(r.release.version, "2.0");
    assert_eq!(r.started(), [true, false, false], "{:?}", r.log);
    let policy = format!("rollout:{}", r.id);
    let status = |w: &World| {
        let r = w.fleet.rollout(&w.tenant, &r.id).unwrap();
        let f = w.fleet.rollout_figures(&r).unwrap();
        (r, f)
    };
    let (_, f) = status(&w);
    assert_eq!(f[0].devices, 2, "the two pilot hosts");
    assert_eq!(f.iter().map(|f| f.devices).sum::<u64>(), 24);
    assert!(f[1].devices > 0 && f[2].devices > 0, "{f:?}");
    let in_wave = |w: &World, wave: u16| {
        (0..w.agents.len())
            .filter(|&i| w.member(&r.id, i).wave == wave)
            .collect::<Vec<_>>()
    };
    let wave2 = in_wave(&w, 1);
    let wave3 = in_wave(&w, 2);

    // The pilot gets the release, wave 2 waits, in words.
    assert_eq!(w.check_in(0, "1.0", None).0, [(w.target(), policy.clone())]);
    assert_eq!(w.member(&r.id, 0).state, MemberState::Downloading);
    let (assigned, why) = w.check_in(wave2[0], "1.0", None);
    assert!(assigned.is_empty());
    let why = why.unwrap();
    assert!(
        why.starts_with(
            "held back: rollout \"Voyage 2.0\": the device is in Wave 2, which has not begun"
        ),
        "{why}"
    );

    // The pilot installs: wave 2 begins at the next evaluation.
    w.advance(60);
    w.check_in(0, "2.0", None);
    w.check_in(1, "2.0", None);
    assert_eq!(w.member(&r.id, 1).state, MemberState::Installed);
    assert_eq!(
        w.fleet.evaluate_rollouts(&w.tenant).unwrap(),
        [r.id.as_str()]
    );
    let (now, f) = status(&w);
    assert_eq!(now.started(), [true, true, false]);
    assert_eq!((f[0].installed, f[0].devices), (2, 2));
    assert_eq!(
        w.check_in(wave2[0], "1.0", None).0,
        [(w.target(), policy.clone())]
    );

    // A device that appears now joins the running wave 2.
    w.enroll(24);
    w.check_in(24, "1.0", None);
    assert_eq!(w.member(&r.id, 24).wave, 1);

    // One failure in wave 2 crosses its 10 % error threshold (one device
    // of at most ten): the rollout pauses and says why.
    w.advance(60);
    let failing = wave2[1];
    w.check_in(
        failing,
        "1.0",
        Some(("failed", "the device did not come back after the flash")),
    );
    assert_eq!(w.member(&r.id, failing).state, MemberState::Failed);
    w.fleet.evaluate_rollouts(&w.tenant).unwrap();
    let (paused, f) = status(&w);
    assert_eq!(paused.state, RolloutState::Paused);
    let pause = paused.pause.clone().unwrap();
    assert_eq!(pause.wave, Some(1));
    assert_eq!(pause.failing_devices, [w.device_id(failing)]);
    assert_eq!(f[1].failed.values().sum::<u64>(), 1);
    // Paused: nothing is assigned, and the hosts are told why.
    let (assigned, why) = w.check_in(wave2[2], "1.0", None);
    assert!(assigned.is_empty());
    assert!(why.unwrap().contains("is paused (Wave 2: 1 of"));
    // Wave 3 never begins while paused, approved or not.
    w.fleet
        .rollout_action(&w.tenant, &r.id, RolloutAction::Approve, "ann@example.com")
        .unwrap();
    for i in &wave2 {
        w.check_in(*i, "2.0", None);
    }
    w.check_in(24, "2.0", None);
    w.fleet.evaluate_rollouts(&w.tenant).unwrap();
    assert_eq!(status(&w).0.started(), [true, true, false]);
    assert!(w.check_in(wave3[0], "1.0", None).0.is_empty());

    // Resumed (the failure acknowledged), wave 2 has succeeded, wave 3 was
    // approved: it begins, and the rollout completes once it installs.
    let resumed = w
        .fleet
        .rollout_action(&w.tenant, &r.id, RolloutAction::Resume, "ann@example.com")
        .unwrap();
    assert_eq!(resumed.state, RolloutState::Running);
    assert_eq!(resumed.started(), [true, true, true], "{:?}", resumed.log);
    assert_eq!(
        w.check_in(wave3[0], "1.0", None).0,
        [(w.target(), policy.clone())]
    );
    for i in &wave3 {
        w.check_in(*i, "2.0", None);
    }
    w.fleet.evaluate_rollouts(&w.tenant).unwrap();
    let (done, f) = status(&w);
    assert_eq!(done.state, RolloutState::Completed, "{:?}", done.log);
    assert_eq!(f.iter().map(|f| f.installed).sum::<u64>(), 25);

    // The status report agrees with the figures, and its CSV too.
    let report = super::super::report::build(&done, &f);
    assert_eq!(
        (report.devices, report.installed, report.failed),
        (25, 25, 0)
    );
    let rows = super::super::report::csv_rows(&report);
    assert!(rows.iter().all(|r| r[5] == "installed"), "{rows:?}");

    // Completed, it still decides: a policy pinning 1.0 would not undo it,
    // and cancelling hands the devices back (no policy: nothing).
    let cancelled = w
        .fleet
        .rollout_action(&w.tenant, &r.id, RolloutAction::Cancel, "ann@example.com")
        .unwrap();
    assert_eq!(cancelled.state, RolloutState::Cancelled);
    let (_, why) = w.check_in(3, "2.0", None);
    assert!(why.unwrap().starts_with("no policy"));
    w.fleet.delete_rollout(&w.tenant, &r.id).unwrap();
    assert!(w
        .fleet
        .rollout_members(&w.tenant, &r.id)
        .unwrap()
        .is_empty());
}

#[test]
fn refused_rollouts_say_why() {
    let w = World::new(1);
    let other = |json: &str| {
        w.fleet
            .create_rollout(&w.tenant, spec(json), "ann@example.com")
            .unwrap_err()
            .to_string()
    };
    for (json, expected) in [
        (
            r#"{"name":"x","model":"1234:5678","version":"latest","waves":[{"percent":100}]}"#,
            "the catalog has no release for 1234:5678",
        ),
        (
            r#"{"name":"x","model":"047F:C056","version":"9.9","waves":[{"percent":100}]}"#,
            "the catalog has no version 9.9 for 047F:C056",
        ),
        (
            r#"{"name":"x","model":"047F:C056","version":"latest","groups":["Pilot"],"waves":[{"group":"Nobody"}]}"#,
            "wave 1: no group Nobody",
        ),
        (
            r#"{"name":"x","model":"047F:C056","version":"latest","groups":["Nobody"],"waves":[{"percent":100}]}"#,
            "no group Nobody",
        ),
        (
            r#"{"name":"x","model":"047F:C056","version":"latest","deployment":"silent","waves":[{"percent":100}]}"#,
            "wave 1 is silent and needs a maintenance window",
        ),
        (
            r#"{"name":"x","model":"047F:C056","version":"latest","waves":[{"percent":5},{"percent":25}]}"#,
            "the percentages add up to 30, not 100",
        ),
        (
            r#"{"name":"x","model":"047F:C056","version":"latest","waves":[{"percent":5,"rest":true}]}"#,
            "wave 1 needs exactly one of percent, rest or group",
        ),
        (
            r#"{"name":"x","model":"047F:C056","version":"latest","waves":[{"rest":true,"start":"after_previous"}]}"#,
            "the first wave has no previous wave to wait for",
        ),
        (
            r#"{"name":"x","model":"047F:C056","version":"latest","waves":[{"percent":100,"error_threshold_percent":0}]}"#,
            "wave 1: must be 1 to 100",
        ),
        (
            r#"{"name":"x","model":"047F:C056","version":"latest","waves":[]}"#,
            "a rollout has 1 to 20 waves",
        ),
    ] {
        let e = other(json);
        assert!(e.contains(expected), "{json}: {e}");
    }
    // A second running rollout for the model in an overlapping target.
    let first = w
        .fleet
        .create_rollout(
            &w.tenant,
            spec(
                r#"{"name":"a","model":"047F:C056","version":"latest","waves":[{"percent":100}]}"#,
            ),
            "ann@example.com",
        )
        .unwrap();
    let e = other(
        r#"{"name":"b","model":"047F:C056","version":"latest","groups":["Pilot"],"waves":[{"percent":100}]}"#,
    );
    assert!(e.starts_with("conflict: rollout \"a\""), "{e}");
    assert!(e.contains("cancel it or let it complete first"), "{e}");
    // A running one cannot be deleted.
    let e = w
        .fleet
        .delete_rollout(&w.tenant, &first.id)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cancel it before deleting it"), "{e}");
}

#[test]
fn a_writer_holding_an_old_revision_is_refused() {
    let w = World::new(1);
    let r = w
        .fleet
        .create_rollout(
            &w.tenant,
            spec(r#"{"name":"a","model":"047F:C056","version":"latest","waves":[{"percent":100},{"rest":true}]}"#),
            "ann@example.com",
        )
        .unwrap_err();
    // 100 % and a rest wave: refused before anything is written.
    assert!(r.to_string().contains("more than the whole target"), "{r}");
    let r = w
        .fleet
        .create_rollout(
            &w.tenant,
            spec(r#"{"name":"a","model":"047F:C056","version":"latest","waves":[{"percent":50},{"rest":true,"start":"approval"}]}"#),
            "ann@example.com",
        )
        .unwrap();
    let mut stale = w.fleet.rollout(&w.tenant, &r.id).unwrap();
    w.fleet
        .rollout_action(&w.tenant, &r.id, RolloutAction::Pause, "ann@example.com")
        .unwrap();
    let before = stale.revision;
    let e = w
        .fleet
        .save_rollout(before, &mut stale, Vec::new())
        .unwrap_err();
    assert!(matches!(e, FleetError::Conflict(_)), "{e}");
    assert_eq!(
        w.fleet.rollout(&w.tenant, &r.id).unwrap().state,
        RolloutState::Paused
    );
}

/// Events `(id, kind, reason)`, then a check-in's `(phase, message)`, and
/// the member state they leave.
type Step<'a> = (
    &'a [(&'a str, &'a str, Option<&'a str>)],
    Option<(&'a str, &'a str)>,
    MemberState,
);

#[test]
fn update_events_set_states_a_check_in_cannot_see() {
    let w = World::new(3);
    let r = w
        .fleet
        .create_rollout(
            &w.tenant,
            spec(
                r#"{"name":"a","model":"047F:C056","version":"latest","waves":[{"percent":100}]}"#,
            ),
            "ann@example.com",
        )
        .unwrap();
    let event = |id: &str, kind: &str, reason: Option<&str>| -> catalog::events::Event {
        let mut e = serde_json::json!({"id": id, "at": "2026-12-01T09:00:00Z", "kind": kind,
            "target": w.target(), "version": "2.0", "device": "047f/serial/SN-0"});
        if let Some(r) = reason {
            e["reason"] = serde_json::json!(r);
        }
        serde_json::from_value(e).unwrap()
    };
    let agent = w.agents[0].id.clone();
    // (events, then a check-in's observation) → the stored state.
    let table: &[Step<'_>] = &[
        (
            &[("e1", "update_started", None)],
            None,
            MemberState::Installing,
        ),
        (
            &[("e2", "update_failed", Some("crc mismatch"))],
            None,
            MemberState::Failed,
        ),
        // The agent waits for the next window to retry: still a failure.
        (
            &[],
            Some(("waiting", "outside the maintenance window")),
            MemberState::Failed,
        ),
        (
            &[
                ("e3", "update_started", None),
                ("e4", "update_succeeded", None),
            ],
            None,
            MemberState::Installed,
        ),
    ];
    for (events, check_in, expected) in table {
        let batch: Vec<_> = events.iter().map(|(id, k, r)| event(id, k, *r)).collect();
        w.fleet
            .record_rollout_events(&w.tenant, &agent, &batch)
            .unwrap();
        if let Some(state) = check_in {
            w.check_in(0, "1.0", Some(*state));
        }
        assert_eq!(
            w.member(&r.id, 0).state,
            *expected,
            "{events:?} {check_in:?}"
        );
    }
    assert_eq!(
        w.member(&r.id, 1).state,
        MemberState::Pending,
        "other devices untouched"
    );
    // Another release's events change nothing.
    let mut other = event("e5", "update_failed", Some("x"));
    other.kind = serde_json::from_value(serde_json::json!({"kind": "update_failed",
        "target": "acme/other/1.0/fw.bin", "version": "1.0", "reason": "x"}))
    .unwrap();
    w.fleet
        .record_rollout_events(&w.tenant, &agent, &[other])
        .unwrap();
    assert_eq!(w.member(&r.id, 0).state, MemberState::Installed);
}
