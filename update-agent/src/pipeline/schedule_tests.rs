//! Deployment types, guards and replug, with the injected `now` (no sleeps):
//! prompts and their durable decisions, windows with time left, calls, power,
//! multi-piece products, automatic re-enumeration and user replugs.

use std::sync::Mutex;

use catalog::assignment::DownloadSource;
use catalog::window::MaintenanceWindow;
use chrono::{Duration, TimeZone};
use test_devices::{FirmwareVersion, ModelProfile, SimDevice};

use super::tests::{set, t0, Fx};
use super::*;
use crate::devices::SimDevices;
use crate::prompts::{Decision, DecisionError, Prompt, PromptKind, PromptState};
use crate::schedule::host::{PowerState, SimulatedHost};
use crate::state::DecideError;

/// Records what would have been shown.
#[derive(Default)]
struct Shown(Mutex<Vec<Prompt>>);

impl Notifier for Shown {
    fn notify(&self, prompt: &Prompt) {
        self.0.lock().unwrap().push(prompt.clone());
    }
}

impl Shown {
    fn ids(&self) -> Vec<(PromptKind, String)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|p| (p.kind, p.id.clone()))
            .collect()
    }
}

fn pipeline(fx: &Fx, shown: &Arc<Shown>, host: &Arc<SimulatedHost>) -> Pipeline<SimDevices> {
    fx.pipeline()
        .with_notifier(shown.clone())
        .with_host(host.clone())
}

fn only(report: &PassReport) -> Outcome {
    assert_eq!(report.outcomes.len(), 1, "{report:?}");
    report.outcomes.values().next().unwrap().clone()
}

fn installed(v: &str) -> Outcome {
    Outcome::Installed { version: v.into() }
}

#[test]
fn optional_prompt_accept_decline_and_a_newer_version() {
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let r2 = fx.import((2, 0, 0), 0);
    let a2 = fx.assignment(&r2, DeploymentType::Optional, DownloadSource::Server, false);
    let (shown, host) = (Arc::new(Shown::default()), Arc::new(SimulatedHost::new()));
    let mut p = pipeline(&fx, &shown, &host);

    let waiting = Outcome::Waiting("waiting for user consent (optional update)".into());
    assert_eq!(only(&p.run(&set(vec![a2.clone()]), t0()).unwrap()), waiting);
    let prompts = fx.state.shown_prompts().unwrap();
    assert_eq!(prompts.len(), 1);
    let id = prompts[0].id.clone();
    assert_eq!(prompts[0].kind, PromptKind::UpdateAvailable);
    assert_eq!(prompts[0].version, "2.0.0");
    assert_eq!(shown.ids(), [(PromptKind::UpdateAvailable, id.clone())]);
    // Shown once: later polls do not nag about an optional update.
    assert_eq!(
        only(
            &p.run(&set(vec![a2.clone()]), t0() + Duration::hours(6))
                .unwrap()
        ),
        waiting
    );
    assert_eq!(shown.ids().len(), 1);

    // Declined (durably): never offered again, not installed.
    fx.state.decide(&id, Decision::Decline, t0()).unwrap();
    for h in [7, 13, 19] {
        let out = only(
            &p.run(&set(vec![a2.clone()]), t0() + Duration::hours(h))
                .unwrap(),
        );
        assert_eq!(
            out,
            Outcome::Waiting("declined by the user; this version is not offered again".into())
        );
    }
    assert_eq!(shown.ids().len(), 1);
    assert!(fx.state.shown_prompts().unwrap().is_empty());
    assert_eq!(fx.version_on_bus(), "1.0.0");

    // A newer version is offered; accepting installs it at the next pass.
    let r3 = fx.import((3, 0, 0), 0);
    let a3 = fx.assignment(&r3, DeploymentType::Optional, DownloadSource::Server, false);
    assert_eq!(
        only(
            &p.run(&set(vec![a3.clone()]), t0() + Duration::hours(20))
                .unwrap()
        ),
        waiting
    );
    let newer = fx.state.shown_prompts().unwrap();
    assert_eq!(newer.len(), 1);
    assert_ne!(newer[0].id, id);
    assert_eq!(newer[0].version, "3.0.0");
    // A decision on an unknown or closed prompt is refused, nothing changes.
    assert!(matches!(
        fx.state.decide("nope", Decision::Accept, t0()),
        Err(DecideError::Refused(DecisionError::NoSuchPrompt(_)))
    ));
    assert!(matches!(
        fx.state.decide(&id, Decision::Accept, t0()),
        Err(DecideError::Refused(DecisionError::Closed { .. }))
    ));
    fx.state
        .decide(&newer[0].id, Decision::Accept, t0() + Duration::hours(21))
        .unwrap();
    let out = only(
        &p.act(&set(vec![a3.clone()]), t0() + Duration::hours(21))
            .unwrap(),
    );
    assert_eq!(out, installed("3.0.0"));
    assert_eq!(
        fx.state.prompt(&newer[0].id).unwrap().unwrap().state,
        PromptState::Done
    );
    // The declined one stays declined.
    assert_eq!(
        fx.state.prompt(&id).unwrap().unwrap().state,
        PromptState::Declined
    );
}

#[test]
fn persistent_reminds_every_poll_counts_deferrals_and_installs_at_the_limit() {
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let r = fx.import((2, 0, 0), 0);
    let a = fx.assignment(
        &r,
        DeploymentType::Persistent,
        DownloadSource::Server,
        false,
    );
    let mut s = set(vec![a.clone()]);
    s.extra.insert(
        "max_deferrals".into(),
        serde_json::json!({ a.device.clone(): 2 }),
    );
    let (shown, host) = (Arc::new(Shown::default()), Arc::new(SimulatedHost::new()));
    let mut p = pipeline(&fx, &shown, &host);

    let base = "waiting for user consent (persistent update)";
    for h in [0, 6] {
        let out = only(&p.run(&s, t0() + Duration::hours(h)).unwrap());
        assert_eq!(out, Outcome::Waiting(base.into()));
    }
    // Reminded at every poll.
    assert_eq!(shown.ids().len(), 2);
    let id = shown.ids()[0].1.clone();
    assert_eq!(
        fx.state.prompt(&id).unwrap().unwrap().max_deferrals,
        Some(2)
    );
    // A pass after a decision (act) does not remind; a poll does.
    let at = t0() + Duration::hours(7);
    let p1 = fx.state.decide(&id, Decision::Defer, at).unwrap();
    assert_eq!((p1.state, p1.deferrals), (PromptState::Deferred, 1));
    let out = only(&p.act(&s, at).unwrap());
    assert_eq!(
        out,
        Outcome::Waiting(format!("{base}: deferred 1 of 2 times"))
    );
    assert_eq!(shown.ids().len(), 2);
    let out = only(&p.run(&s, at + Duration::minutes(1)).unwrap());
    assert_eq!(
        out,
        Outcome::Waiting(format!("{base}: deferred 1 of 2 times"))
    );
    assert_eq!(shown.ids().len(), 3);
    // The last deferral holds until the next poll.
    let at = t0() + Duration::hours(8);
    fx.state.decide(&id, Decision::Defer, at).unwrap();
    let out = only(&p.act(&s, at).unwrap());
    assert_eq!(
        out,
        Outcome::Waiting(format!("{base}: deferred 2 of 2 times"))
    );
    // A login shows it again as well.
    assert_eq!(p.remind(t0() + Duration::hours(10)).unwrap(), 1);
    assert_eq!(shown.ids().len(), 4);
    // The limit: a third deferral is refused, and the next poll installs.
    let err = fx
        .state
        .decide(&id, Decision::Defer, t0() + Duration::hours(11))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("prompt {id}: no deferrals left (2 of 2 used); the update will be installed")
    );
    let out = only(&p.run(&s, t0() + Duration::hours(12)).unwrap());
    assert_eq!(out, installed("2.0.0"));
    assert_eq!(
        fx.state.prompt(&id).unwrap().unwrap().state,
        PromptState::Done
    );
}

/// Signed firmware fields as a pass reads them from the catalog target.
fn firmware(
    install_duration_secs: u32,
    automatic_capable: bool,
) -> catalog::package::TargetFirmware {
    serde_json::from_value(serde_json::json!({
        "vendor": "Acme", "model": "Headset", "hardware_ids": [], "version": "2.0.0",
        "version_format": "plain", "security_counter": 0, "protocol": "dfu",
        "needs_replug": false, "silent_capable": true,
        "automatic_capable": automatic_capable,
        "install_duration_secs": install_duration_secs, "urgency": "low"
    }))
    .unwrap()
}

#[test]
fn automatic_is_skipped_with_a_reason_on_models_without_it() {
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let r = fx.import((2, 0, 0), 0);
    let a = fx.assignment(&r, DeploymentType::Automatic, DownloadSource::Server, false);
    let (shown, host) = (Arc::new(Shown::default()), Arc::new(SimulatedHost::new()));
    let p = pipeline(&fx, &shown, &host);
    let ctx = PassContext {
        remind: false,
        devices: fx.sim.inventory().unwrap(),
        max_deferrals: Default::default(),
        multi_piece_guard_off: Default::default(),
        families: Default::default(),
        guarded: std::cell::Cell::new(false),
    };
    let why = p
        .gate(&a, &firmware(0, false), &fx.device(), &ctx, t0())
        .unwrap();
    assert_eq!(
        why.as_deref(),
        Some("Acme Headset does not support automatic updates; skipped")
    );
    assert_eq!(
        p.gate(&a, &firmware(0, true), &fx.device(), &ctx, t0())
            .unwrap(),
        None
    );
}

#[test]
fn silent_rule_table() {
    let w = MaintenanceWindow::new("0 1 * * *", Duration::hours(2), "UTC").unwrap();
    let at = |h, m| Utc.with_ymd_and_hms(2026, 11, 21, h, m, 0).unwrap();
    let ten = Duration::minutes(10);
    let cases: [(Option<&MaintenanceWindow>, DateTime<Utc>, Option<&str>); 5] = [
        (None, at(1, 30), Some("silent update without a maintenance window")),
        (Some(&w), at(0, 59), Some("silent update: outside the maintenance window (next opens 2026-11-21T01:00:00+00:00)")),
        (Some(&w), at(1, 0), None),
        (Some(&w), at(2, 50), None),
        (Some(&w), at(2, 51), Some("silent update: 9m left in the maintenance window, the install takes about 10m; retried in the next window (opens 2026-11-22T01:00:00+00:00)")),
    ];
    for (w, now, want) in cases {
        assert_eq!(silent_rule(w, ten, now).as_deref(), want, "{now}");
    }
    let fw_secs = |s| firmware(s, true);
    // The signed duration wins; without one, a minute plus the image at 16 KiB/s.
    assert_eq!(
        install_duration(&fw_secs(90), 1 << 20),
        Duration::seconds(90)
    );
    assert_eq!(
        install_duration(&fw_secs(0), 1 << 20),
        Duration::seconds(60 + 64)
    );
    assert_eq!(estimated_install_duration(0), Duration::seconds(60));
}

/// A silent update over a week of nights: held back by a call, a shutdown
/// and a second piece of the product in turn, installed on the fourth night.
#[test]
fn silent_retries_each_window_until_the_guards_let_it_through() {
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    // The headset and the Orbit dongle are pieces of one product.
    import_piece(&mut fx, &ModelProfile::usb_dongle(), "Orbit");
    fx.family = Some("Orbit".into());
    let r = fx.import((2, 0, 0), 0);
    let mut a = fx.assignment(&r, DeploymentType::Silent, DownloadSource::Server, false);
    a.window =
        Some(MaintenanceWindow::new("0 2 * * *", Duration::hours(3), "Europe/Berlin").unwrap());
    let (shown, host) = (Arc::new(Shown::default()), Arc::new(SimulatedHost::new()));
    let mut p = pipeline(&fx, &shown, &host);
    let s = set(vec![a.clone()]);
    // 02:30 CET = 01:30 UTC, nights from the 21st; the catalog's timestamp
    // is re-signed each evening, as the server does.
    let night = |fx: &mut Fx, n: u32| {
        let t = Utc.with_ymd_and_hms(2026, 11, 20 + n, 1, 30, 0).unwrap();
        fx.catalog.publish(t - Duration::hours(3)).unwrap();
        catalog::mirror::export(
            &fx.catalog,
            &fx.path("server"),
            &catalog::mirror::ExportFilter::default(),
            &mut |_| {},
        )
        .unwrap();
        t
    };

    // Daytime: outside the window.
    let out = only(&p.run(&s, t0()).unwrap());
    assert!(
        matches!(&out, Outcome::Waiting(w) if w.contains("outside the maintenance window")),
        "{out:?}"
    );

    // Night 1: in a call.
    fx.sim.bus().set_in_call(fx.id, true);
    let report = p.act(&s, night(&mut fx, 1)).unwrap();
    assert_eq!(
        only(&report),
        Outcome::Waiting("the device is in a call; no update starts during a call".into())
    );
    assert!(report.retry_soon);
    fx.sim.bus().set_in_call(fx.id, false);

    // Night 2: the host is shutting down.
    host.set_power(PowerState::ShuttingDown);
    let out = only(&p.act(&s, night(&mut fx, 2)).unwrap());
    assert_eq!(
        out,
        Outcome::Waiting("the host is shutting down; the update waits until it is back".into())
    );
    host.set_power(PowerState::Awake);

    // Night 3: the other piece of a two-piece product is attached.
    let dongle = fx
        .sim
        .bus()
        .attach(SimDevice::new(ModelProfile::usb_dongle()));
    let out = only(&p.act(&s, night(&mut fx, 3)).unwrap());
    match &out {
        Outcome::Waiting(w) => assert!(
            w.starts_with("another piece of the same product is attached (1209/serial/OBT600-0001, Orbit BT600 dongle)"),
            "{w}"
        ),
        other => panic!("{other:?}"),
    }
    let u = fx
        .state
        .update(&a.sha256.to_hex(), &a.device)
        .unwrap()
        .unwrap();
    assert_eq!(u.status, UpdateStatus::Waiting);
    assert!(u.reason.unwrap().contains("multi-piece"));
    fx.sim.bus().unplug(dongle);
    assert_eq!(fx.version_on_bus(), "1.0.0");

    // Night 4: installed; nights after: up to date.
    assert_eq!(
        only(&p.act(&s, night(&mut fx, 4)).unwrap()),
        installed("2.0.0")
    );
    assert_eq!(
        only(&p.act(&s, night(&mut fx, 5)).unwrap()),
        Outcome::UpToDate
    );
    // Nothing was ever shown to a user.
    assert!(shown.ids().is_empty());
}

#[test]
fn a_call_holds_back_an_accepted_update_and_the_prompt_says_why() {
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let r = fx.import((2, 0, 0), 0);
    let a = fx.assignment(&r, DeploymentType::Optional, DownloadSource::Server, false);
    let (shown, host) = (Arc::new(Shown::default()), Arc::new(SimulatedHost::new()));
    let mut p = pipeline(&fx, &shown, &host);
    let s = set(vec![a.clone()]);
    p.run(&s, t0()).unwrap();
    let id = shown.ids()[0].1.clone();
    fx.state.decide(&id, Decision::Accept, t0()).unwrap();
    fx.sim.bus().set_in_call(fx.id, true);
    let report = p.act(&s, t0()).unwrap();
    let why = "the device is in a call; no update starts during a call";
    assert_eq!(only(&report), Outcome::Waiting(why.into()));
    assert!(report.retry_soon);
    assert_eq!(
        fx.state.prompt(&id).unwrap().unwrap().blocked_by.as_deref(),
        Some(why)
    );
    fx.sim.bus().set_in_call(fx.id, false);
    assert_eq!(
        only(&p.act(&s, t0() + Duration::minutes(1)).unwrap()),
        installed("2.0.0")
    );
}

#[test]
fn automatic_reenumeration_needs_no_replug() {
    let mut fx = Fx::new(ModelProfile::slow_reenumeration());
    let r = fx.import((2, 0, 0), 0);
    let a = fx.assignment(&r, DeploymentType::Automatic, DownloadSource::Server, false);
    let (shown, host) = (Arc::new(Shown::default()), Arc::new(SimulatedHost::new()));
    let mut p = pipeline(&fx, &shown, &host);
    let before = fx.sim.bus().now();
    assert_eq!(
        only(&p.run(&set(vec![a]), t0()).unwrap()),
        installed("2.0.0")
    );
    // The model's 45 s re-enumeration passed in virtual time.
    assert!(fx.sim.bus().now() - before >= std::time::Duration::from_secs(45));
    assert!(shown.ids().is_empty());
}

fn replug_case(profile: ModelProfile) -> (Fx, Assignment, Arc<Shown>, Pipeline<SimDevices>) {
    let mut fx = Fx::new(profile);
    let r = fx.import((3, 1, 0), 0);
    let a = fx.assignment(&r, DeploymentType::Automatic, DownloadSource::Server, false);
    let (shown, host) = (Arc::new(Shown::default()), Arc::new(SimulatedHost::new()));
    let mut p = pipeline(&fx, &shown, &host);
    assert_eq!(
        only(&p.run(&set(vec![a.clone()]), t0()).unwrap()),
        Outcome::AwaitingReplug
    );
    let u = fx
        .state
        .update(&a.sha256.to_hex(), &a.device)
        .unwrap()
        .unwrap();
    assert_eq!(u.status, UpdateStatus::AwaitingReplug);
    assert!(u.reason.unwrap().starts_with("awaiting replug"));
    let prompts = fx.state.shown_prompts().unwrap();
    assert_eq!(prompts.len(), 1);
    assert_eq!(prompts[0].kind, PromptKind::Replug);
    assert_eq!(shown.ids(), [(PromptKind::Replug, prompts[0].id.clone())]);
    (fx, a, shown, p)
}

#[test]
fn user_replug_registers_the_update_followed_by_serial_across_the_pid_change() {
    let (fx, a, shown, mut p) = replug_case(ModelProfile::headset_needs_replug());
    // In DFU mode it enumerates with another PID; same identity (serial).
    let in_dfu = fx.device();
    assert_eq!(in_dfu.product_id, fx.profile.dfu_pid);
    assert_eq!(in_dfu.identity(), a.device);
    // The next login is asked again.
    assert_eq!(p.remind(t0() + Duration::hours(1)).unwrap(), 1);
    assert_eq!(shown.ids().len(), 2);
    assert_eq!(
        only(
            &p.run(&set(vec![a.clone()]), t0() + Duration::hours(1))
                .unwrap()
        ),
        Outcome::AwaitingReplug
    );
    fx.sim.bus().replug(fx.id);
    assert_eq!(
        only(
            &p.act(&set(vec![a.clone()]), t0() + Duration::hours(2))
                .unwrap()
        ),
        installed("3.1.0")
    );
    assert!(fx.state.shown_prompts().unwrap().is_empty());
    assert_eq!(
        fx.state.installed(&a.device).unwrap().unwrap().version,
        "3.1.0"
    );
}

#[test]
fn a_replug_is_confirmed_when_the_server_no_longer_assigns_the_update() {
    // Once flashed, the device reports its DFU-mode id, then the new
    // version: the server's next answers leave it out. The stored record
    // still says what to read back.
    let (fx, a, _shown, mut p) = replug_case(ModelProfile::headset_needs_replug());
    let still_waiting = p.run(&set(vec![]), t0() + Duration::hours(1)).unwrap();
    assert_eq!(only(&still_waiting), Outcome::AwaitingReplug);
    fx.sim.bus().replug(fx.id);
    assert_eq!(
        only(&p.run(&set(vec![]), t0() + Duration::hours(2)).unwrap()),
        installed("3.1.0")
    );
    assert_eq!(
        fx.state.installed(&a.device).unwrap().unwrap().version,
        "3.1.0"
    );
    assert!(fx.state.shown_prompts().unwrap().is_empty());
    let kinds = fx.event_kinds();
    assert_eq!(kinds.last().map(String::as_str), Some("update_succeeded"));
    // Nothing more to confirm at the next pass.
    assert!(p
        .run(&set(vec![]), t0() + Duration::hours(3))
        .unwrap()
        .outcomes
        .is_empty());
}

#[test]
fn an_update_awaiting_its_replug_is_dropped_once_a_newer_one_is_installed() {
    let (fx, a, _shown, mut p) = replug_case(ModelProfile::headset_needs_replug());
    // Later, another release was installed on the device (say by another
    // assignment); the old record must not turn into a failure.
    let newer = StagedUpdate {
        digest: "ab".repeat(32),
        target: "acme/headset/3.2.0/fw.dfu".into(),
        device: a.device.clone(),
        status: UpdateStatus::Installed,
        reason: None,
        updated_at: t0() + Duration::hours(1),
        firmware: None,
    };
    let installed = crate::state::InstalledFirmware {
        device: a.device.clone(),
        target: newer.target.clone(),
        version: "3.2.0".into(),
        security_counter: 0,
        at: t0() + Duration::hours(1),
    };
    fx.state.record_installed(&installed, &newer, None).unwrap();
    let events_before = fx.event_kinds().len();
    let report = p.run(&set(vec![]), t0() + Duration::hours(2)).unwrap();
    assert!(report.outcomes.is_empty(), "{report:?}");
    assert!(fx
        .state
        .update(&a.sha256.to_hex(), &a.device)
        .unwrap()
        .is_none());
    assert!(fx.state.shown_prompts().unwrap().is_empty());
    assert_eq!(fx.event_kinds().len(), events_before, "no update_failed");
}

#[test]
fn replug_without_a_serial_is_followed_by_port_path() {
    let mut profile = ModelProfile::headset_needs_replug();
    profile.serial = None;
    let (fx, a, _shown, mut p) = replug_case(profile);
    assert!(a.device.starts_with("1209/port/"), "{}", a.device);
    fx.sim.bus().replug(fx.id);
    assert_eq!(
        only(&p.act(&set(vec![a]), t0() + Duration::hours(2)).unwrap()),
        installed("3.1.0")
    );
}

#[test]
fn replug_with_the_old_version_is_a_failure() {
    let (fx, a, _shown, mut p) = replug_case(ModelProfile::headset_needs_replug());
    // What comes back (same serial) still runs 1.0.0.
    fx.sim.bus().unplug(fx.id);
    fx.sim.bus().attach(SimDevice::new(
        ModelProfile::headset_needs_replug().with_version(FirmwareVersion::new(1, 0, 0)),
    ));
    let out = only(
        &p.act(&set(vec![a.clone()]), t0() + Duration::hours(2))
            .unwrap(),
    );
    assert_eq!(
        out,
        Outcome::Failed(
            "the device came back with version 1.0.0, not 3.1.0: the update did not take".into()
        )
    );
    assert!(fx.state.installed(&a.device).unwrap().is_none());
    assert!(fx.state.shown_prompts().unwrap().is_empty());
    let kinds = fx.event_kinds();
    assert_eq!(kinds.last().map(String::as_str), Some("update_failed"));
}

#[test]
fn automatic_applies_to_devices_attached_when_the_agent_started() {
    let started: std::collections::HashSet<String> = ["1209/serial/A".to_owned()].into();
    let later = "automatic updates apply to devices attached when the agent starts; this one was \
                 plugged in later and is updated at the next start";
    let unsupported = "Acme Headset does not support automatic updates; skipped";
    for (capable, started_with, device, want) in [
        (true, Some(&started), "1209/serial/A", None),
        (true, Some(&started), "1209/serial/B", Some(later)),
        // Before the first pass everything attached counts as "at start".
        (true, None, "1209/serial/B", None),
        (false, Some(&started), "1209/serial/A", Some(unsupported)),
        (false, None, "1209/serial/B", Some(unsupported)),
    ] {
        assert_eq!(
            decide::automatic_rule(&firmware(0, capable), started_with, device).as_deref(),
            want,
            "{capable} {started_with:?} {device}"
        );
    }
}

/// Imports a release for `piece`'s model as a piece of `family`.
fn import_piece(fx: &mut Fx, piece: &ModelProfile, family: &str) {
    let path = fx.path(&format!("piece-{:04x}.bin", piece.runtime_pid));
    std::fs::write(&path, b"piece image").unwrap();
    let opts = catalog::import::ImportOptions {
        vendor: Some("Acme".into()),
        model: Some(piece.name.clone()),
        hardware_ids: vec![format!("{:04X}:{:04X}", piece.vendor_id, piece.runtime_pid)
            .parse()
            .unwrap()],
        version: Some("1.0.0".into()),
        product_family: Some(family.into()),
        ..Default::default()
    };
    fx.import_file(&path, &opts);
}

/// (family of the headset, devices attached beside it, guard off, held back by).
type PieceCase = (
    Option<&'static str>,
    Vec<ModelProfile>,
    bool,
    Option<&'static str>,
);

/// A silent update waits for another piece of its product only: a device
/// of the same vendor that is no piece of it (a speakerphone, a second
/// headset model) does not hold it back, and a policy can turn the guard off.
#[test]
fn only_pieces_of_the_same_product_hold_a_silent_update_back() {
    // (family of the headset, devices attached beside it, guard off, held back by)
    let table: Vec<PieceCase> = vec![
        (None, vec![ModelProfile::dfuse_speakerphone()], false, None),
        (None, vec![ModelProfile::usb_dongle()], false, None),
        (
            Some("Orbit"),
            vec![ModelProfile::dfuse_speakerphone()],
            false,
            None,
        ),
        (
            Some("Orbit"),
            vec![
                ModelProfile::dfuse_speakerphone(),
                ModelProfile::usb_dongle(),
            ],
            false,
            Some("1209/serial/OBT600-0001"),
        ),
        (Some("Orbit"), vec![ModelProfile::usb_dongle()], true, None),
    ];
    for (family, beside, guard_off, held_by) in table {
        let mut fx = Fx::new(ModelProfile::headset_tolerant());
        import_piece(&mut fx, &ModelProfile::usb_dongle(), "Orbit");
        fx.family = family.map(str::to_owned);
        let r = fx.import((2, 0, 0), 0);
        let mut a = fx.assignment(&r, DeploymentType::Silent, DownloadSource::Server, false);
        a.window = Some(MaintenanceWindow::new("0 1 * * *", Duration::hours(3), "UTC").unwrap());
        for p in &beside {
            fx.sim.bus().attach(SimDevice::new(p.clone()));
        }
        let mut s = set(vec![a.clone()]);
        if guard_off {
            s.extra.insert(
                "multi_piece_guard_off".into(),
                serde_json::json!([a.device.clone()]),
            );
        }
        let (shown, host) = (Arc::new(Shown::default()), Arc::new(SimulatedHost::new()));
        let mut p = pipeline(&fx, &shown, &host);
        let inside = Utc.with_ymd_and_hms(2026, 11, 21, 1, 30, 0).unwrap();
        let report = p.act(&s, inside).unwrap();
        let case = format!("{family:?} beside {} guard off {guard_off}", beside.len());
        match (held_by, &report.outcomes[&a.device]) {
            (Some(piece), Outcome::Waiting(w)) => {
                assert!(
                    w.starts_with(&format!(
                        "another piece of the same product is attached ({piece}, "
                    )),
                    "{case}: {w}"
                );
                assert!(w.contains("retried when it is unplugged"), "{case}: {w}");
                assert!(report.retry_soon, "{case}");
            }
            (None, Outcome::Installed { version }) => assert_eq!(version, "2.0.0", "{case}"),
            (_, other) => panic!("{case}: {other:?}"),
        }
    }
}
