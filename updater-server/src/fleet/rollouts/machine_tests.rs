use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;
use crate::fleet::rollouts::{RolloutRelease, WaveProgress};
use crate::fleet::Stamps;

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap() + TimeDelta::minutes(minutes)
}

fn rollout(waves: &str) -> Rollout {
    let spec: super::super::RolloutInput = serde_json::from_str(&format!(
        r#"{{"name":"Voyage 2.14","model":"047F:C056","version":"2.14","waves":{waves}}}"#
    ))
    .unwrap();
    spec.validate().unwrap();
    Rollout {
        tenant: "t".into(),
        id: "r".into(),
        waves: vec![WaveProgress::default(); spec.waves.len()],
        spec,
        release: RolloutRelease {
            target_name: "acme/voyage/2.14/fw.bin".into(),
            version: "2.14".into(),
        },
        state: RolloutState::Running,
        pause: None,
        revision: 1,
        log: Vec::new(),
        stamps: Stamps {
            created_at: t(0),
            updated_at: t(0),
        },
    }
}

/// Figures: (devices, installed, failures by reason).
fn fig(devices: u64, installed: u64, failed: &[(&str, u64)]) -> WaveFigures {
    let failed: BTreeMap<String, u64> = failed.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect();
    let failing_devices = failed
        .iter()
        .map(|(r, n)| (r.clone(), (0..*n).map(|i| format!("{r}-dev-{i}")).collect()))
        .collect();
    WaveFigures {
        devices,
        installed,
        pending: devices - installed - failed.values().sum::<u64>(),
        failed,
        failing_devices,
        ..WaveFigures::default()
    }
}

fn started(r: &Rollout) -> Vec<bool> {
    r.started()
}

const STAGED: &str = r#"[{"percent":5},{"percent":25},{"rest":true}]"#;

#[test]
fn waves_begin_in_turn_as_each_succeeds_then_the_rollout_completes() {
    let mut r = rollout(STAGED);
    // (minute, figures per wave, waves begun after the step, state)
    let table: &[(i64, [WaveFigures; 3], [bool; 3], RolloutState)] = &[
        (
            0,
            [fig(5, 0, &[]), fig(25, 0, &[]), fig(70, 0, &[])],
            [true, false, false],
            RolloutState::Running,
        ),
        (
            60,
            [fig(5, 4, &[]), fig(25, 0, &[]), fig(70, 0, &[])],
            [true, false, false],
            RolloutState::Running,
        ),
        // 5 of 5 ≥ 95 %: wave 2 begins in the same step.
        (
            120,
            [fig(5, 5, &[]), fig(25, 0, &[]), fig(70, 0, &[])],
            [true, true, false],
            RolloutState::Running,
        ),
        // 24 of 25 = 96 % ≥ 95 %.
        (
            180,
            [fig(5, 5, &[]), fig(25, 24, &[]), fig(70, 0, &[])],
            [true, true, true],
            RolloutState::Running,
        ),
        (
            240,
            [fig(5, 5, &[]), fig(25, 24, &[]), fig(70, 67, &[])],
            [true, true, true],
            RolloutState::Completed,
        ),
    ];
    for (minute, figures, begun, state) in table {
        step(&mut r, figures, t(*minute));
        assert_eq!(started(&r), begun, "minute {minute}");
        assert_eq!(r.state, *state, "minute {minute}");
    }
    assert_eq!(r.waves[0].started_at, Some(t(0)));
    assert_eq!(r.waves[0].succeeded_at, Some(t(120)));
    assert_eq!(r.waves[0].ended_at, Some(t(120)));
    assert_eq!(r.waves[1].started_at, Some(t(120)));
    assert_eq!(r.waves[1].succeeded_at, Some(t(180)));
    assert_eq!(
        r.waves[1].ended_at, None,
        "one device of wave 2 never installed"
    );
    assert_eq!(r.waves[2].started_at, Some(t(180)));
    // A completed rollout stays so, and still records when waves end.
    step(
        &mut r,
        &[fig(5, 5, &[]), fig(25, 25, &[]), fig(70, 70, &[])],
        t(300),
    );
    assert_eq!(r.state, RolloutState::Completed);
    assert_eq!(r.waves[1].ended_at, Some(t(300)));
    let log: Vec<&str> = r.log.iter().map(|l| l.what.as_str()).collect();
    assert_eq!(log[0], "Wave 1 began (at once)");
    assert!(log.contains(&"Wave 2 began (when the previous wave reached its success threshold)"));
    let completed = log.iter().position(|l| l.starts_with("completed")).unwrap();
    assert_eq!(
        log[completed + 1..],
        [
            "Wave 2 ended: 25 installed, 0 failed",
            "Wave 3 ended: 70 installed, 0 failed"
        ]
    );
}

#[test]
fn failures_for_one_reason_pause_the_rollout_and_later_waves_never_begin() {
    let mut r = rollout(STAGED);
    step(
        &mut r,
        &[fig(10, 0, &[]), fig(30, 0, &[]), fig(60, 0, &[])],
        t(0),
    );
    // (failures in wave 1, paused?) with the default 10 % threshold:
    // one reason at 1 of 10 = 10 % pauses; two reasons at 5 % each of 20 do not.
    let table: &[(WaveFigures, bool)] = &[
        (fig(10, 3, &[]), false),
        (fig(20, 3, &[("crc", 1), ("timeout", 1)]), false),
        (fig(10, 3, &[("device did not come back", 1)]), true),
    ];
    for (wave1, paused) in table {
        let figures = [wave1.clone(), fig(30, 0, &[]), fig(60, 0, &[])];
        step(&mut r, &figures, t(30));
        assert_eq!(r.state == RolloutState::Paused, *paused, "{wave1:?}");
    }
    let p = r.pause.clone().unwrap();
    assert_eq!(p.by, None);
    assert_eq!(p.wave, Some(0));
    assert_eq!(p.failure.as_deref(), Some("device did not come back"));
    assert_eq!(p.failing_devices, ["device did not come back-dev-0"]);
    assert_eq!(
        p.reason,
        "Wave 1: 1 of 10 devices failed with \"device did not come back\" (10 %, error threshold 10 %)"
    );
    // Paused: nothing moves, even when wave 1 succeeds meanwhile.
    let done = [fig(10, 10, &[]), fig(30, 0, &[]), fig(60, 0, &[])];
    assert!(!step(&mut r, &done, t(60)));
    assert_eq!(started(&r), [true, false, false]);

    // Resuming acknowledges the failure seen; a new one pauses again.
    let seen = [
        fig(10, 3, &[("device did not come back", 1)]),
        fig(30, 0, &[]),
        fig(60, 0, &[]),
    ];
    resume(&mut r, "ann@example.com", &seen, t(90)).unwrap();
    step(&mut r, &seen, t(91));
    assert_eq!(r.state, RolloutState::Running);
    let again = [
        fig(10, 3, &[("device did not come back", 2)]),
        fig(30, 0, &[]),
        fig(60, 0, &[]),
    ];
    step(&mut r, &again, t(92));
    assert_eq!(r.state, RolloutState::Paused);
}

#[test]
fn start_conditions() {
    // (second wave's start, approved?, minute of the step, begun?)
    let table: &[(&str, bool, i64, bool)] = &[
        (r#""immediately""#, false, 0, true),
        (r#""approval""#, false, 600, false),
        (r#""approval""#, true, 600, true),
        (r#"{"at":"2026-12-01T05:00:00Z"}"#, false, 299, false),
        (r#"{"at":"2026-12-01T05:00:00Z"}"#, false, 300, true),
        (r#""after_previous""#, false, 600, false),
    ];
    for (start, approve_it, minute, begun) in table {
        let mut r = rollout(&format!(
            r#"[{{"percent":50}},{{"rest":true,"start":{start}}}]"#
        ));
        let figures = [fig(10, 0, &[]), fig(10, 0, &[])];
        step(&mut r, &figures, t(0));
        if *approve_it {
            assert_eq!(approve(&mut r, "ann@example.com", t(1)).unwrap(), 1);
        }
        step(&mut r, &figures, t(*minute));
        assert_eq!(r.waves[1].started_at.is_some(), *begun, "{start} {minute}");
    }
}

#[test]
fn empty_waves_begin_and_succeed_in_one_step() {
    let mut r = rollout(STAGED);
    step(
        &mut r,
        &[fig(0, 0, &[]), fig(0, 0, &[]), fig(0, 0, &[])],
        t(0),
    );
    assert_eq!(started(&r), [true, true, true]);
    assert_eq!(r.state, RolloutState::Completed);
}

#[test]
fn actions_refused_in_the_wrong_state() {
    let mut r = rollout(r#"[{"percent":50},{"rest":true,"start":"approval"}]"#);
    let by = "ann@example.com";
    assert!(matches!(
        resume(&mut r, by, &[], t(0)),
        Err(FleetError::Conflict(_))
    ));
    // The next wave (the first) starts at once, not on approval.
    let e = approve(&mut r, by, t(0)).unwrap_err().to_string();
    assert!(e.contains("Wave 1, starts at once, not on approval"), "{e}");
    pause(&mut r, by, t(1)).unwrap();
    assert_eq!(
        r.pause.as_ref().unwrap().reason,
        "paused by ann@example.com"
    );
    assert!(matches!(
        pause(&mut r, by, t(2)),
        Err(FleetError::Conflict(_))
    ));
    resume(&mut r, by, &[], t(3)).unwrap();
    step(&mut r, &[fig(1, 0, &[]), fig(1, 0, &[])], t(4));
    assert_eq!(approve(&mut r, by, t(5)).unwrap(), 1);
    let e = approve(&mut r, by, t(6)).unwrap_err().to_string();
    assert!(e.contains("already approved"), "{e}");
    cancel(&mut r, by, t(7)).unwrap();
    for result in [
        pause(&mut r, by, t(8)),
        resume(&mut r, by, &[], t(8)),
        cancel(&mut r, by, t(8)),
        approve(&mut r, by, t(8)).map(|_| ()),
    ] {
        let e = result.unwrap_err().to_string();
        assert!(e.contains("the rollout is cancelled"), "{e}");
    }
    assert!(!step(&mut r, &[fig(1, 1, &[]), fig(1, 1, &[])], t(9)));
}
