//! Fleet scenarios on the real binaries where the user at the desk matters:
//! a device unplugged across the opening of its window, a two-piece
//! product, a call, a replug after flashing. One `updater-server` process and
//! `update-agent run` processes with simulated devices on one accelerated
//! clock (`tests::sim_fleet`); the test acts as the user through the
//! simulated devices' action files (`update_agent::devices::queue_action`),
//! which the running agent applies at its next device scan.
//!
//! Every "why not now" is checked where an administrator sees it: the Policy
//! Compliance report, which carries the reason the agent gave at its last
//! check-in.

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use fleet_sim::firmware::{FACTORY_VERSION, NEW_VERSION};
use serde_json::{json, Value};
use test_devices::FirmwareVersion;
use tests::sim_fleet::{at, SimAgent, SimFleet};
use update_agent::devices::{queue_action, SimAction, REJECTED_SUFFIX};

/// Simulated seconds per real second: an hour takes 4 s.
const SPEED: u32 = 900;

/// A server holding the new release of every model, serving from
/// simulated `start` on.
fn fleet_from(dir: &std::path::Path, start: &str) -> SimFleet {
    SimFleet::start(dir, at(start), SPEED, &[NEW_VERSION])
}

/// A silent policy's window: daily at 01:00 UTC for two hours.
fn night_window() -> Value {
    json!({"window": {"cron": "0 1 * * *", "duration_minutes": 120, "tz": "UTC"}})
}

/// Does `action` as the user at `agent`'s desk: queues it and waits until
/// the running agent has applied it (its file is gone, and was not
/// rejected). Returns the simulated time it was queued: it cannot have
/// taken effect before.
fn act(fleet: &SimFleet, agent: &SimAgent, action: SimAction) -> DateTime<Utc> {
    let queued_at = fleet.now();
    let file = queue_action(agent.devices_dir(), &action).expect("queue the action");
    let rejected = PathBuf::from(format!("{}{REJECTED_SUFFIX}", file.display()));
    fleet.wait_until(
        &format!("`{action}` applied by the agent"),
        queued_at + Duration::hours(1),
        || {
            if file.exists() {
                return Err("still pending".into());
            }
            assert!(!rejected.exists(), "the agent rejected `{action}`");
            Ok(())
        },
    );
    queued_at
}

/// The device's update history as `(outcome, at)`, in storage order.
fn outcomes(fleet: &SimFleet, serial: &str) -> Vec<(String, DateTime<Utc>)> {
    fleet
        .history(serial)
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str().unwrap_or_default().to_owned(),
                at(r["at"].as_str().unwrap_or_default()),
            )
        })
        .collect()
}

/// The times of the device's history records with `outcome`.
fn times_of(fleet: &SimFleet, serial: &str, outcome: &str) -> Vec<DateTime<Utc>> {
    outcomes(fleet, serial)
        .into_iter()
        .filter(|(o, _)| o == outcome)
        .map(|(_, t)| t)
        .collect()
}

/// Waits until the device's compliance row has `status` and a detail
/// containing `reason`; returns the detail.
fn wait_for_compliance(
    fleet: &SimFleet,
    serial: &str,
    status: &str,
    reason: &str,
    by: DateTime<Utc>,
) -> String {
    fleet.wait_until(
        &format!("{serial} reported as {status} ({reason})"),
        by,
        || match fleet.compliance(serial) {
            Some(row)
                if row["status"] == status
                    && row["detail"].as_str().is_some_and(|d| d.contains(reason)) =>
            {
                Ok(row["detail"].as_str().unwrap_or_default().to_owned())
            }
            other => Err(format!("{other:?}")),
        },
    )
}

fn version_of(agent: &SimAgent, serial: &str) -> Option<FirmwareVersion> {
    agent.versions().get(serial).copied().flatten()
}

#[test]
fn device_unplugged_when_the_window_opens_is_installed_once_plugged_back_inside_it() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet_from(dir.path(), "2026-06-01T00:20:00Z");
    fleet.policy("headset_tolerant", "silent", night_window());
    let serial = "SN-roam-1";
    let mut agent = fleet.agent("roam-1", "user-roam-1", &[("headset_tolerant", serial)]);
    agent.start();
    // Staged at the first check-in, waiting for the window.
    fleet.wait_until(
        "the update staged",
        at("2026-06-01T00:50:00Z"),
        || match times_of(&fleet, serial, "staged").as_slice() {
            [_] => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    act(
        &fleet,
        &agent,
        SimAction::Unplug {
            serial: serial.into(),
        },
    );
    fleet.pass_time_until(at("2026-06-01T01:40:00Z"));
    // The window has been open for 40 minutes without the device.
    assert_eq!(version_of(&agent, serial), Some(FACTORY_VERSION));
    let history = outcomes(&fleet, serial);
    assert!(
        history.iter().all(|(o, _)| o == "staged"),
        "nothing but staging while unplugged: {history:?}"
    );

    // Plugged back between two polls (01:20 and 02:20, ± 6 min): the pass
    // that finds it begins after the plug.
    let plugged_at = act(
        &fleet,
        &agent,
        SimAction::Plug {
            serial: serial.into(),
        },
    );
    let installs = fleet.wait_for_installs(1, at("2026-06-01T04:00:00Z"));
    assert_eq!(version_of(&agent, serial), Some(NEW_VERSION));
    let times = &installs[&format!("1209/serial/{serial}")];
    assert_eq!(times.len(), 1, "{installs:?}");
    assert!(
        times[0] >= plugged_at && times[0] < at("2026-06-01T03:00:00Z"),
        "installed at {}, plugged back at {plugged_at}, window 01:00–03:00",
        times[0]
    );
    // It restarts by itself after the flash: nothing to ask the user.
    assert_eq!(agent.prompts(), Ok(Vec::new()));
    assert!(times_of(&fleet, serial, "awaiting_replug").is_empty());
}

#[test]
fn two_piece_product_waits_in_a_window_with_both_pieces_and_installs_in_the_next_with_one() {
    // Windows every three hours for 90 minutes: 00:00–01:30, 03:00–04:30.
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet_from(dir.path(), "2026-06-01T23:40:00Z");
    let window = json!({"window": {"cron": "0 */3 * * *", "duration_minutes": 90, "tz": "UTC"}});
    fleet.policy("base_station", "silent", window.clone());
    fleet.policy("usb_dongle", "silent", window);
    let (base, dongle) = ("SN-base-1", "SN-dongle-1");
    let mut agent = fleet.agent(
        "orbit-1",
        "user-orbit-1",
        &[("base_station", base), ("usb_dongle", dongle)],
    );
    agent.start();

    // In the first window each piece waits for the other; the reason names
    // the other piece.
    for (me, other) in [(base, dongle), (dongle, base)] {
        let detail = wait_for_compliance(
            &fleet,
            me,
            "waiting",
            "another piece of the same product is attached",
            at("2026-06-02T01:30:00Z"),
        );
        // The check-in clips the agent's reason; its log has all of it.
        assert!(
            detail.starts_with("another piece of the same product is attached (1209/serial/SN-"),
            "{me}: {detail}"
        );
        assert!(
            agent.logs().contains(&format!(
                "waiting: another piece of the same product is attached (1209/serial/{other}, "
            )),
            "the agent log names {other} as what holds {me} back"
        );
    }
    fleet.pass_time_until(at("2026-06-02T01:30:00Z"));
    assert_eq!(version_of(&agent, base), Some(FACTORY_VERSION));
    assert_eq!(version_of(&agent, dongle), Some(FACTORY_VERSION));
    for serial in [base, dongle] {
        let history = outcomes(&fleet, serial);
        assert!(
            history.iter().all(|(o, _)| o == "staged"),
            "{serial} not flashed in the first window: {history:?}"
        );
    }

    // The user takes the dongle away: the base is the only piece left.
    let unplugged_at = act(
        &fleet,
        &agent,
        SimAction::Unplug {
            serial: dongle.into(),
        },
    );
    assert!(unplugged_at < at("2026-06-02T03:00:00Z"));
    let installs = fleet.wait_for_installs(1, at("2026-06-02T05:00:00Z"));
    let times = &installs[&format!("1209/serial/{base}")];
    assert_eq!(installs.len(), 1, "only the base: {installs:?}");
    assert_eq!(times.len(), 1, "{installs:?}");
    assert!(
        times[0] >= at("2026-06-02T03:00:00Z") && times[0] < at("2026-06-02T04:30:00Z"),
        "base installed at {}, outside the second window 03:00–04:30",
        times[0]
    );
    assert_eq!(version_of(&agent, base), Some(NEW_VERSION));
    assert_eq!(version_of(&agent, dongle), Some(FACTORY_VERSION));
}

#[test]
fn headset_in_a_call_is_not_flashed_until_the_call_ends_inside_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet_from(dir.path(), "2026-06-01T00:30:00Z");
    fleet.policy("headset_tolerant", "silent", night_window());
    let serial = "SN-call-1";
    let mut agent = fleet.agent("call-1", "user-call-1", &[("headset_tolerant", serial)]);
    agent.start();
    act(
        &fleet,
        &agent,
        SimAction::Call {
            serial: serial.into(),
            active: true,
        },
    );
    assert!(
        fleet.now() < at("2026-06-01T01:00:00Z"),
        "in the call before the window"
    );

    let detail = wait_for_compliance(
        &fleet,
        serial,
        "waiting",
        "in a call",
        at("2026-06-01T02:30:00Z"),
    );
    assert_eq!(
        detail,
        "the device is in a call; no update starts during a call"
    );
    assert!(fleet.now() >= at("2026-06-01T01:00:00Z"));
    // Held back inside the open window: not started, not flashed.
    assert_eq!(version_of(&agent, serial), Some(FACTORY_VERSION));
    let history = outcomes(&fleet, serial);
    assert!(
        history.iter().all(|(o, _)| o == "staged"),
        "nothing started during the call: {history:?}"
    );
    assert!(agent.logs().contains("waiting: the device is in a call"));

    let call_ended = act(
        &fleet,
        &agent,
        SimAction::Call {
            serial: serial.into(),
            active: false,
        },
    );
    let installs = fleet.wait_for_installs(1, at("2026-06-01T04:00:00Z"));
    assert_eq!(version_of(&agent, serial), Some(NEW_VERSION));
    let times = &installs[&format!("1209/serial/{serial}")];
    assert_eq!(times.len(), 1, "{installs:?}");
    // Exact order: the agent applied the end of the call, then flashed, once.
    let logs = agent.logs();
    let ended = logs
        .find(&format!("action=call {serial} off"))
        .expect("the end of the call in the agent log");
    let flashing = format!("flashing device=1209/serial/{serial}");
    assert_eq!(logs.matches(&flashing).count(), 1, "flashed once");
    assert!(
        logs.find(&flashing) > Some(ended),
        "flashed after the call ended"
    );
    // The agent stamps a pass's events with the time the pass began, and a
    // retry pass may begin just before it reads the action (its guard reads
    // the devices again right before flashing): one scan interval of slack.
    let started = times_of(&fleet, serial, "started");
    assert_eq!(started.len(), 1, "{:?}", outcomes(&fleet, serial));
    for t in [started[0], times[0]] {
        assert!(
            t > call_ended - Duration::minutes(10) && t < at("2026-06-01T03:00:00Z"),
            "{t}: not after the call ended at {call_ended} inside the window 01:00–03:00"
        );
    }
}

#[test]
fn silent_flash_of_a_model_that_needs_a_replug_is_registered_only_after_the_user_replugs() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet_from(dir.path(), "2026-06-01T00:40:00Z");
    fleet.policy("headset_needs_replug", "silent", night_window());
    let serial = "SN-replug-1";
    let mut agent = fleet.agent(
        "replug-1",
        "user-replug-1",
        &[("headset_needs_replug", serial)],
    );
    agent.start();

    // Flashed in the window; the headset does not restart by itself, so the
    // agent asks the user.
    let prompt = fleet.wait_until(
        "a replug prompt",
        at("2026-06-01T02:00:00Z"),
        || match agent.prompts()?.as_slice() {
            [p] if p["kind"] == "replug" => Ok(p.clone()),
            other => Err(format!("{other:?}")),
        },
    );
    assert_eq!(prompt["version"], NEW_VERSION.to_string());
    assert!(
        prompt["device"].as_str().unwrap().ends_with(serial),
        "{prompt}"
    );
    // The host's next check-in tells the server why it is not done yet.
    let state = fleet.wait_until(
        "the host reports the device awaiting its replug",
        at("2026-06-01T03:00:00Z"),
        || match fleet.update_state(serial) {
            Some(s)
                if s["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("awaiting replug")) =>
            {
                Ok(s)
            }
            other => Err(format!("{other:?}")),
        },
    );
    assert_eq!(state["phase"], "awaiting_replug", "{state}");
    assert!(
        state["message"]
            .as_str()
            .unwrap()
            .contains("unplug and replug"),
        "{state}"
    );
    // Flashed, not installed: the server has the awaiting_replug event and
    // no success.
    let before = outcomes(&fleet, serial);
    assert!(
        before.iter().any(|(o, _)| o == "awaiting_replug"),
        "{before:?}"
    );
    assert!(!before.iter().any(|(o, _)| o == "succeeded"), "{before:?}");
    assert!(fleet.installs().is_empty());

    let replugged_at = act(
        &fleet,
        &agent,
        SimAction::Replug {
            serial: serial.into(),
        },
    );
    // Confirmed by the agent's next pass (its next poll), not by the user.
    let installs = fleet.wait_for_installs(1, replugged_at + Duration::hours(2));
    assert_eq!(installs.len(), 1, "{installs:?}");
    assert_eq!(version_of(&agent, serial), Some(NEW_VERSION));
    let history = outcomes(&fleet, serial);
    let succeeded = times_of(&fleet, serial, "succeeded");
    assert_eq!(succeeded.len(), 1, "one success: {history:?}");
    // Recorded after the replug: `before` (read once the flash was reported,
    // before the replug was queued) had none. Its timestamp is not compared
    // with the queueing time: the agent stamps a pass's events with the
    // time the pass began, which on the accelerated clock may precede the
    // queueing by a few simulated seconds.
    let awaiting = history
        .iter()
        .position(|(o, _)| o == "awaiting_replug")
        .expect("awaiting_replug recorded");
    let success = history
        .iter()
        .position(|(o, _)| o == "succeeded")
        .expect("success recorded");
    assert!(awaiting < success, "{history:?}");
    assert!(history[awaiting].1 < replugged_at, "{history:?}");
    // The replug request is answered by the device itself.
    fleet.wait_until(
        "the replug prompt resolved",
        fleet.now() + Duration::hours(1),
        || match agent.prompts()?.as_slice() {
            [] => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    wait_for_compliance(
        &fleet,
        serial,
        "compliant",
        "",
        fleet.now() + Duration::hours(2),
    );
}

#[test]
fn device_awaiting_its_replug_is_listed_as_awaiting_replug_in_the_compliance_report() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet_from(dir.path(), "2026-06-01T00:40:00Z");
    fleet.policy("headset_needs_replug", "silent", night_window());
    let serial = "SN-replug-2";
    let mut agent = fleet.agent(
        "replug-2",
        "user-replug-2",
        &[("headset_needs_replug", serial)],
    );
    agent.start();
    fleet.wait_until(
        "a replug prompt",
        at("2026-06-01T02:00:00Z"),
        || match agent.prompts()?.as_slice() {
            [p] if p["kind"] == "replug" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    // Left in DFU mode (another product id) until the user replugs it, the
    // device is still under its model's policy.
    let detail = wait_for_compliance(
        &fleet,
        serial,
        "awaiting_replug",
        "awaiting replug",
        at("2026-06-01T03:00:00Z"),
    );
    assert!(detail.contains("unplug and replug"), "{detail}");
}
