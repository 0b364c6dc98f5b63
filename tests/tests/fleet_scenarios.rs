//! Fleet scenarios on the accelerated clock: the real server (its router
//! and redb store, on loopback HTTP) and real agents (the `update-agent`
//! library with simulated devices), driven by `fleet-sim`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use fleet_sim::firmware::{hardware_id, models, Model, FACTORY_VERSION, NEW_VERSION};
use fleet_sim::fleet::Fleet;
use fleet_sim::host::HostSpec;
use fleet_sim::world::{Tenant, World};
use serde_json::{json, Value};
use update_agent::daemon::Timings;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn model(profile: &str) -> Model {
    models().into_iter().find(|m| m.profile == profile).unwrap()
}

fn specs(prefix: &str, profiles: &[&str]) -> Vec<HostSpec> {
    profiles
        .iter()
        .enumerate()
        .map(|(i, p)| HostSpec {
            name: format!("{prefix}-{i:02}"),
            user: format!("{prefix}user{i:02}"),
            models: vec![model(p)],
        })
        .collect()
}

const TIMINGS: Timings = Timings {
    poll_interval: Duration::hours(6),
    scan_interval: Duration::minutes(30),
};

/// A world at `start` with the demo firmware imported and one tenant.
fn world(dir: &std::path::Path, start: DateTime<Utc>) -> (World, Tenant) {
    let w = World::start(dir, start).unwrap();
    w.import(NEW_VERSION).unwrap();
    let t = w.create_tenant("Scenario Corp").unwrap();
    (w, t)
}

fn policy(w: &World, t: &Tenant, profile: &str, deployment: &str, window: Option<Value>) {
    let mut body = json!({
        "name": format!("{profile} {deployment}"),
        "model": hardware_id(&model(profile)).to_string(),
        "version": "latest",
        "deployment": deployment,
        "enabled": true,
    });
    if let Some(w) = window {
        body["window"] = w;
    }
    w.admin(t)
        .unwrap()
        .post("policies/firmware", &body)
        .unwrap();
}

fn run(w: &mut World, fleet: &mut Fleet, until: DateTime<Utc>) {
    fleet
        .run_until(until, &mut |_, _| w.refresh_timestamp())
        .unwrap();
}

/// Succeeded update-history records per device, with their times.
fn installs(w: &World, t: &Tenant) -> BTreeMap<String, Vec<DateTime<Utc>>> {
    let history = w
        .admin(t)
        .unwrap()
        .get("update-history?limit=1000")
        .unwrap();
    let mut out: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
    for r in history["items"].as_array().unwrap() {
        if r["outcome"] == "succeeded" {
            out.entry(r["device"].as_str().unwrap().to_owned())
                .or_default()
                .push(at(r["at"].as_str().unwrap()));
        }
    }
    out
}

fn all_new(fleet: &Fleet) -> bool {
    fleet
        .hosts()
        .iter()
        .flat_map(|h| h.versions())
        .all(|(_, v)| v == Some(NEW_VERSION))
}

#[test]
fn silent_rollout_across_the_spring_forward_night_installs_only_inside_the_window() {
    // 2027-03-28 in Berlin: 02:00 CET jumps to 03:00 CEST. A window at
    // 02:30 (in the gap) opens at 03:00 CEST = 01:00 UTC and lasts 90 min
    // of elapsed time.
    let dir = tempfile::tempdir().unwrap();
    let (mut w, t) = world(dir.path(), at("2027-03-27T17:00:00Z"));
    for p in [
        "headset_tolerant",
        "dfuse_speakerphone",
        "headset_needs_replug",
    ] {
        policy(
            &w,
            &t,
            p,
            "silent",
            Some(json!({"cron": "30 2 * * *", "duration_minutes": 90, "tz": "Europe/Berlin"})),
        );
    }
    let hosts = w
        .enroll(
            &t,
            &specs(
                "dst",
                &[
                    "headset_tolerant",
                    "dfuse_speakerphone",
                    "headset_tolerant",
                    "dfuse_speakerphone",
                ],
            ),
            TIMINGS,
            7,
            &mut || {},
        )
        .unwrap();
    let mut fleet = Fleet::new(hosts, w.clock().clone(), 2);
    run(&mut w, &mut fleet, at("2027-03-28T00:59:00Z"));
    assert!(
        fleet
            .hosts()
            .iter()
            .flat_map(|h| h.versions())
            .all(|(_, v)| v == Some(FACTORY_VERSION)),
        "nothing may install before the window"
    );
    run(&mut w, &mut fleet, at("2027-03-28T06:00:00Z"));
    assert!(all_new(&fleet));
    let installs = installs(&w, &t);
    assert_eq!(installs.len(), 4, "{installs:?}");
    for (device, times) in &installs {
        assert_eq!(times.len(), 1, "{device}: {times:?}");
        let t = times[0];
        assert!(
            t >= at("2027-03-28T01:00:00Z") && t < at("2027-03-28T02:30:00Z"),
            "{device} installed at {t}, outside 01:00–02:30 UTC"
        );
    }
}

#[test]
fn automatic_policy_installs_at_agent_start_without_a_window() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, t) = world(dir.path(), at("2027-06-01T10:00:00Z"));
    policy(&w, &t, "headset_tolerant", "automatic", None);
    let hosts = w
        .enroll(
            &t,
            &specs("auto", &["headset_tolerant", "headset_tolerant"]),
            TIMINGS,
            1,
            &mut || {},
        )
        .unwrap();
    let mut fleet = Fleet::new(hosts, w.clock().clone(), 2);
    // The first tick is the agent's start: check-in and pass at once.
    run(&mut w, &mut fleet, at("2027-06-01T10:01:00Z"));
    assert!(all_new(&fleet));
    let installs = installs(&w, &t);
    assert_eq!(installs.len(), 2);
    assert!(installs
        .values()
        .all(|t| t.len() == 1 && t[0] == at("2027-06-01T10:00:00Z")));
}

#[test]
fn server_restart_mid_rollout_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, t) = world(dir.path(), at("2027-06-01T18:00:00Z"));
    let window = json!({"cron": "0 1 * * *", "duration_minutes": 240, "tz": "UTC"});
    policy(&w, &t, "headset_tolerant", "silent", Some(window.clone()));
    policy(&w, &t, "dfuse_speakerphone", "silent", Some(window));
    let names: Vec<&str> = (0..8)
        .map(|i| {
            if i % 2 == 0 {
                "headset_tolerant"
            } else {
                "dfuse_speakerphone"
            }
        })
        .collect();
    let hosts = w
        .enroll(&t, &specs("rs", &names), TIMINGS, 3, &mut || {})
        .unwrap();
    let mut fleet = Fleet::new(hosts, w.clock().clone(), 2);
    run(&mut w, &mut fleet, at("2027-06-02T00:50:00Z"));
    // The server goes down just before the window and comes back inside it.
    // Without a fresh catalog refresh nothing is installed (TUF: no update
    // on stale metadata); agents keep retrying and spool their events.
    w.stop();
    run(&mut w, &mut fleet, at("2027-06-02T02:00:00Z"));
    let flashed_while_down = fleet
        .hosts()
        .iter()
        .flat_map(|h| h.versions())
        .filter(|(_, v)| *v == Some(NEW_VERSION))
        .count();
    w.restart().unwrap();
    run(&mut w, &mut fleet, at("2027-06-02T08:00:00Z"));
    assert!(all_new(&fleet));
    let installs = installs(&w, &t);
    assert_eq!(installs.len(), 8, "{installs:?}");
    assert!(
        installs.values().all(|t| t.len() == 1
            && t[0] >= at("2027-06-02T02:00:00Z")
            && t[0] < at("2027-06-02T05:00:00Z")),
        "one install per device, after the restart and inside the window: {installs:?}"
    );
    for h in fleet.hosts() {
        assert_eq!(
            h.state().pending_events(10).unwrap(),
            vec![],
            "{}",
            h.name()
        );
    }
    assert_eq!(flashed_while_down, 0);
}

#[test]
fn two_tenants_never_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, a) = world(dir.path(), at("2027-06-01T10:00:00Z"));
    let b = w.create_tenant("Other Corp").unwrap();
    for t in [&a, &b] {
        policy(&w, t, "headset_tolerant", "automatic", None);
    }
    let mut hosts = w
        .enroll(
            &a,
            &specs("alpha", &["headset_tolerant"; 3]),
            TIMINGS,
            1,
            &mut || {},
        )
        .unwrap();
    hosts.extend(
        w.enroll(
            &b,
            &specs("beta", &["headset_tolerant"; 2]),
            TIMINGS,
            9,
            &mut || {},
        )
        .unwrap(),
    );
    let mut fleet = Fleet::new(hosts, w.clock().clone(), 2);
    run(&mut w, &mut fleet, at("2027-06-01T10:05:00Z"));
    assert!(all_new(&fleet));
    for (t, mine, theirs, n) in [(&a, "alpha-", "beta-", 3), (&b, "beta-", "alpha-", 2)] {
        let admin = w.admin(t).unwrap();
        let inventory = admin.get_text("reports/inventory?format=csv").unwrap();
        assert_eq!(
            inventory.lines().filter(|l| l.contains(mine)).count(),
            n,
            "{inventory}"
        );
        assert!(!inventory.contains(theirs), "{inventory}");
        assert_eq!(installs(&w, t).len(), n);
    }
    // A's admin asking for B's data is refused as if it did not exist.
    let a_token = {
        let resp = reqwest::blocking::Client::new()
            .post(format!("{}/api/v1/login", w.url()))
            .header("content-type", "application/json")
            .body(
                json!({"tenant": a.id, "email": fleet_sim::world::ADMIN_EMAIL,
                       "password": fleet_sim::world::ADMIN_PASSWORD})
                .to_string(),
            )
            .send()
            .unwrap();
        let v: Value = serde_json::from_slice(&resp.bytes().unwrap()).unwrap();
        v["token"].as_str().unwrap().to_owned()
    };
    let resp = reqwest::blocking::Client::new()
        .get(format!(
            "{}/api/v1/tenants/{}/reports/inventory",
            w.url(),
            b.id
        ))
        .bearer_auth(a_token)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}

fn one_host(w: &World, t: &Tenant, prefix: &str) -> Fleet {
    let hosts = w
        .enroll(
            t,
            &specs(prefix, &["headset_tolerant"]),
            TIMINGS,
            5,
            &mut || {},
        )
        .unwrap();
    Fleet::new(hosts, w.clock().clone(), 1)
}

fn version(fleet: &Fleet) -> Option<test_devices::FirmwareVersion> {
    fleet.hosts()[0].versions()[0].1
}

#[test]
fn optional_update_declined_is_not_offered_again_but_a_newer_one_is() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, t) = world(dir.path(), at("2027-06-01T09:00:00Z"));
    policy(&w, &t, "headset_tolerant", "optional", None);
    let mut fleet = one_host(&w, &t, "opt");
    run(&mut w, &mut fleet, at("2027-06-01T09:05:00Z"));
    let prompts = fleet.hosts()[0].prompts().unwrap();
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert_eq!(prompts[0].version, NEW_VERSION.to_string());
    let now = w.clock().now();
    fleet.hosts_mut()[0]
        .decide(
            &prompts[0].id,
            update_agent::prompts::Decision::Decline,
            now,
        )
        .unwrap();
    // Two more polls: the declined version is neither installed nor asked again.
    run(&mut w, &mut fleet, at("2027-06-01T22:00:00Z"));
    assert_eq!(fleet.hosts()[0].prompts().unwrap(), vec![]);
    assert_eq!(version(&fleet), Some(FACTORY_VERSION));
    // A newer release is offered.
    let newer = test_devices::FirmwareVersion::new(2, 2, 0);
    w.import(newer).unwrap();
    run(&mut w, &mut fleet, at("2027-06-02T10:00:00Z"));
    let prompts = fleet.hosts()[0].prompts().unwrap();
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert_eq!(prompts[0].version, newer.to_string());
    let now = w.clock().now();
    fleet.hosts_mut()[0]
        .decide(&prompts[0].id, update_agent::prompts::Decision::Accept, now)
        .unwrap();
    run(&mut w, &mut fleet, now + Duration::minutes(5));
    assert_eq!(version(&fleet), Some(newer));
}

#[test]
fn persistent_update_is_reminded_at_every_poll_until_done_and_deferrals_are_limited() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, t) = world(dir.path(), at("2027-06-01T09:00:00Z"));
    w.admin(&t)
        .unwrap()
        .post(
            "policies/firmware",
            &json!({"name": "persistent", "model": hardware_id(&model("headset_tolerant")).to_string(),
                    "version": "latest", "deployment": "persistent", "max_deferrals": 2, "enabled": true}),
        )
        .unwrap();
    let mut fleet = one_host(&w, &t, "per");
    let mut until = at("2027-06-01T09:05:00Z");
    for deferred in 0..2 {
        run(&mut w, &mut fleet, until);
        let prompts = fleet.hosts()[0].prompts().unwrap();
        assert_eq!(prompts.len(), 1, "reminded at every poll: {prompts:?}");
        assert_eq!(prompts[0].deferrals, deferred);
        assert_eq!(prompts[0].max_deferrals, Some(2));
        assert_eq!(version(&fleet), Some(FACTORY_VERSION));
        let now = w.clock().now();
        fleet.hosts_mut()[0]
            .decide(&prompts[0].id, update_agent::prompts::Decision::Defer, now)
            .unwrap();
        // The next poll (6 h) reminds the user again.
        until = now + Duration::hours(7);
    }
    // Both deferrals used: the next poll installs without asking again.
    run(&mut w, &mut fleet, until);
    assert_eq!(version(&fleet), Some(NEW_VERSION));
    assert_eq!(fleet.hosts()[0].prompts().unwrap(), vec![]);
}

#[test]
fn silent_rollout_across_the_fall_back_night_opens_once_at_the_first_occurrence() {
    // 2027-11-07 in New York: 01:30 happens twice (EDT = 05:30 UTC, then EST
    // = 06:30 UTC). The window opens once, at the first, for 45 minutes.
    let dir = tempfile::tempdir().unwrap();
    let (mut w, t) = world(dir.path(), at("2027-11-06T20:00:00Z"));
    policy(
        &w,
        &t,
        "headset_tolerant",
        "silent",
        Some(json!({"cron": "30 1 * * *", "duration_minutes": 45, "tz": "America/New_York"})),
    );
    let hosts = w
        .enroll(
            &t,
            &specs("nyc", &["headset_tolerant"; 3]),
            TIMINGS,
            11,
            &mut || {},
        )
        .unwrap();
    let mut fleet = Fleet::new(hosts, w.clock().clone(), 2);
    run(&mut w, &mut fleet, at("2027-11-07T05:29:00Z"));
    assert!(fleet
        .hosts()
        .iter()
        .flat_map(|h| h.versions())
        .all(|(_, v)| v == Some(FACTORY_VERSION)));
    run(&mut w, &mut fleet, at("2027-11-07T09:00:00Z"));
    assert!(all_new(&fleet));
    let installs = installs(&w, &t);
    assert_eq!(installs.len(), 3, "{installs:?}");
    for (device, times) in &installs {
        assert_eq!(times.len(), 1, "{device}: {times:?}");
        assert!(
            times[0] >= at("2027-11-07T05:30:00Z") && times[0] < at("2027-11-07T06:15:00Z"),
            "{device} installed at {}, outside the first 01:30 EDT + 45 min",
            times[0]
        );
    }
}
