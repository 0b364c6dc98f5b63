//! Fleet scenarios on the real binaries: one `updater-server` process and
//! `update-agent run` processes with simulated devices, all on one
//! accelerated clock (`tests::sim_fleet`), talking HTTP over loopback.
//! Each scenario's simulated hours take a few real seconds.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use fleet_sim::firmware::{FACTORY_VERSION, NEW_VERSION};
use serde_json::{json, Value};
use test_devices::FirmwareVersion;
use tests::sim_fleet::{at, installs, SimAgent, SimFleet};
use tests::Admin;

/// Simulated seconds per real second: an hour takes 6 s, and a real
/// scheduling hiccup of 100 ms on a loaded machine is a simulated minute.
const SPEED: u32 = 600;

/// A server holding the new release of every model, serving from
/// simulated `start` on.
fn fleet_from(dir: &std::path::Path, start: &str) -> SimFleet {
    SimFleet::start(dir, at(start), SPEED, &[NEW_VERSION])
}

/// Every device of every agent, by `agent/serial`.
fn versions(agents: &[SimAgent]) -> BTreeMap<String, Option<FirmwareVersion>> {
    agents
        .iter()
        .flat_map(|a| {
            let name = a.root().file_name().unwrap().to_string_lossy().into_owned();
            a.versions()
                .into_iter()
                .map(move |(serial, v)| (format!("{name}/{serial}"), v))
        })
        .collect()
}

fn all_at(agents: &[SimAgent], version: FirmwareVersion) -> Result<(), String> {
    let v = versions(agents);
    if !v.is_empty() && v.values().all(|v| *v == Some(version)) {
        Ok(())
    } else {
        Err(format!("{v:?}"))
    }
}

fn start_all(agents: &mut [SimAgent]) {
    for a in agents {
        a.start();
    }
}

/// One agent per `(name, profile)`, each with one device `SN-<name>`.
fn desks(fleet: &SimFleet, desks: &[(&str, &str)]) -> Vec<SimAgent> {
    desks
        .iter()
        .map(|(name, profile)| {
            fleet.agent(
                name,
                &format!("user-{name}"),
                &[(profile, &format!("SN-{name}"))],
            )
        })
        .collect()
}

/// Asserts one successful install per device, each in `[from, to)`.
fn assert_installed_once_within(
    installs: &BTreeMap<String, Vec<DateTime<Utc>>>,
    devices: usize,
    from: &str,
    to: &str,
) {
    assert_eq!(installs.len(), devices, "{installs:?}");
    for (device, times) in installs {
        assert_eq!(
            times.len(),
            1,
            "{device} installed more than once: {times:?}"
        );
        assert!(
            times[0] >= at(from) && times[0] < at(to),
            "{device} installed at {}, outside {from} – {to}",
            times[0]
        );
    }
}

/// The agent's single prompt once it is shown.
fn wait_for_prompt(fleet: &SimFleet, agent: &SimAgent, version: &str, by: DateTime<Utc>) -> Value {
    fleet.wait_until(&format!("a prompt for {version}"), by, || {
        let prompts = agent.prompts()?;
        match prompts.as_slice() {
            [p] if p["version"] == version => Ok(p.clone()),
            other => Err(format!("{other:?}")),
        }
    })
}

fn decide(agent: &SimAgent, decision: &str, prompt: &Value) {
    let id = prompt["id"].as_str().unwrap();
    let out = agent.cli(&[decision, id]);
    assert!(
        out.status.success(),
        "{decision} {id}: {}",
        tests::text(&out.stderr)
    );
}

fn events(admin: &Admin) -> Vec<Value> {
    admin.all("events")
}

#[test]
fn silent_rollout_across_berlins_spring_forward_night_installs_only_inside_the_window() {
    // 2026-03-29 in Berlin: 02:00 CET jumps to 03:00 CEST (01:00 UTC). A
    // window at 02:30 falls in the gap; it opens at 03:00 CEST and lasts
    // 120 minutes of elapsed time: 01:00–03:00 UTC.
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet_from(dir.path(), "2026-03-28T21:00:00Z");
    let window =
        json!({"window": {"cron": "30 2 * * *", "duration_minutes": 120, "tz": "Europe/Berlin"}});
    fleet.policy("headset_tolerant", "silent", window.clone());
    fleet.policy("dfuse_speakerphone", "silent", window);
    let mut agents = desks(
        &fleet,
        &[
            ("berlin-1", "headset_tolerant"),
            ("berlin-2", "dfuse_speakerphone"),
            ("berlin-3", "headset_tolerant"),
            ("berlin-4", "dfuse_speakerphone"),
        ],
    );
    start_all(&mut agents);
    fleet.wait_until(
        "every device on the new version",
        at("2026-03-29T04:00:00Z"),
        || all_at(&agents, NEW_VERSION),
    );
    assert_installed_once_within(
        &fleet.wait_for_installs(4, at("2026-03-29T05:00:00Z")),
        4,
        "2026-03-29T01:00:00Z",
        "2026-03-29T03:00:00Z",
    );
}

#[test]
fn server_killed_mid_rollout_and_restarted_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut fleet = fleet_from(dir.path(), "2026-06-01T22:00:00Z");
    let window = json!({"window": {"cron": "0 1 * * *", "duration_minutes": 240, "tz": "UTC"}});
    fleet.policy("headset_tolerant", "silent", window.clone());
    fleet.policy("dfuse_speakerphone", "silent", window);
    let names: Vec<(String, &str)> = (0..8)
        .map(|i| {
            let profile = if i % 2 == 0 {
                "headset_tolerant"
            } else {
                "dfuse_speakerphone"
            };
            (format!("rs-{i}"), profile)
        })
        .collect();
    let named: Vec<(&str, &str)> = names.iter().map(|(n, p)| (n.as_str(), *p)).collect();
    let mut agents = desks(&fleet, &named);
    start_all(&mut agents);
    // SIGKILL as soon as the first install reached the server: the other
    // agents are downloading, flashing or reporting.
    fleet.wait_until(
        "a first install on the server",
        at("2026-06-02T04:00:00Z"),
        || {
            let n = fleet.installs().len();
            if n > 0 {
                Ok(())
            } else {
                Err("none yet".into())
            }
        },
    );
    fleet.kill_server();
    let killed_at = fleet.now();
    fleet.pass_time_until(killed_at + Duration::minutes(30));
    fleet.restart_server();
    fleet.wait_until(
        "every device on the new version",
        at("2026-06-02T05:00:00Z"),
        || all_at(&agents, NEW_VERSION),
    );
    assert_installed_once_within(
        &fleet.wait_for_installs(8, at("2026-06-02T06:00:00Z")),
        8,
        "2026-06-02T01:00:00Z",
        "2026-06-02T05:00:00Z",
    );
    let events = events(fleet.admin());
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an event was stored twice");
    let succeeded = events
        .iter()
        .filter(|e| e["event"]["kind"] == "update_succeeded")
        .count();
    assert_eq!(succeeded, 8);
    // Everything the agents spooled while the server was away arrived.
    for a in &mut agents {
        a.stop();
    }
    for a in &agents {
        let status = a.status();
        assert_eq!(status["pending_events"], 0, "{}", a.root().display());
    }
}

#[test]
fn automatic_policy_installs_when_the_agent_starts() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet_from(dir.path(), "2026-06-01T10:00:00Z");
    fleet.policy("headset_tolerant", "automatic", json!({}));
    // Polls six hours apart: an install within two hours came with the start.
    fleet.admin().put(
        "settings",
        &json!({"all_users_poll_interval_secs": 6 * 3600}),
    );
    let mut agents = desks(
        &fleet,
        &[
            ("auto-1", "headset_tolerant"),
            ("auto-2", "headset_tolerant"),
        ],
    );
    let started = fleet.now();
    start_all(&mut agents);
    fleet.wait_until(
        "both devices on the new version",
        started + Duration::hours(2),
        || all_at(&agents, NEW_VERSION),
    );
    let installs = fleet.wait_for_installs(2, started + Duration::hours(3));
    for times in installs.values() {
        assert!(times[0] - started < Duration::hours(2), "{times:?}");
    }
}

#[test]
fn two_tenants_on_one_server_never_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet_from(dir.path(), "2026-06-01T10:00:00Z");
    let other = fleet.add_tenant("Other Corp");
    let other_admin = fleet.admin_of(&other);
    fleet.policy("headset_tolerant", "automatic", json!({}));
    fleet.policy_in(&other_admin, "headset_tolerant", "automatic", json!({}));
    let mut agents = desks(
        &fleet,
        &[
            ("alpha-1", "headset_tolerant"),
            ("alpha-2", "headset_tolerant"),
        ],
    );
    agents.push(fleet.agent_in(
        &other,
        "beta-1",
        "user-beta-1",
        &[("headset_tolerant", "SN-beta-1")],
    ));
    start_all(&mut agents);
    fleet.wait_until(
        "every device updated",
        fleet.now() + Duration::hours(1),
        || all_at(&agents, NEW_VERSION),
    );
    for (admin, mine, theirs, n) in [
        (fleet.admin(), "alpha-", "beta-", 2),
        (&other_admin, "beta-", "alpha-", 1),
    ] {
        fleet.wait_until(
            "the tenant's installs",
            fleet.now() + Duration::hours(2),
            || match installs(admin).len() {
                i if i == n => Ok(()),
                i => Err(format!("{i} of {n}")),
            },
        );
        let hosts = admin.get("hosts");
        assert_eq!(hosts.as_array().map(Vec::len), Some(n), "{hosts}");
        let devices = admin.get("devices").to_string();
        assert_eq!(
            devices.matches(&format!("\"serial\":\"SN-{mine}")).count(),
            n,
            "{devices}"
        );
        assert!(!devices.contains(&format!("SN-{theirs}")), "{devices}");
        let events = events(admin);
        assert!(!events.is_empty());
        let agents: BTreeSet<&str> = events
            .iter()
            .map(|e| e["agent"].as_str().unwrap())
            .collect();
        assert_eq!(
            agents.len(),
            n,
            "events from other tenants' agents: {agents:?}"
        );
    }
    // One tenant's admin asking for the other's data is answered as if it
    // did not exist.
    for path in ["hosts", "events", "reports/inventory", "policies/firmware"] {
        let resp = fleet
            .admin()
            .http
            .get(format!(
                "{}/api/v1/tenants/{}/{path}",
                fleet.base(),
                other.id
            ))
            .bearer_auth(&fleet.admin().token)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{path}");
    }
}

#[test]
fn optional_update_declined_is_not_asked_again_but_a_newer_release_is() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet_from(dir.path(), "2026-06-01T09:00:00Z");
    fleet.policy("headset_tolerant", "optional", json!({}));
    let mut agents = desks(&fleet, &[("opt-1", "headset_tolerant")]);
    start_all(&mut agents);
    let agent = &agents[0];
    let prompt = wait_for_prompt(
        &fleet,
        agent,
        &NEW_VERSION.to_string(),
        at("2026-06-01T10:00:00Z"),
    );
    decide(agent, "decline", &prompt);
    // Three hourly polls later the declined version is neither installed
    // nor asked again.
    fleet.pass_time_until(at("2026-06-01T13:30:00Z"));
    assert_eq!(agent.prompts(), Ok(Vec::new()));
    assert_eq!(all_at(&agents, FACTORY_VERSION), Ok(()));
    let newer = FirmwareVersion::new(2, 2, 0);
    fleet.import("headset_tolerant", newer);
    let prompt = wait_for_prompt(
        &fleet,
        agent,
        &newer.to_string(),
        fleet.now() + Duration::hours(2),
    );
    decide(agent, "accept", &prompt);
    fleet.wait_until(
        "the newer release installed",
        fleet.now() + Duration::hours(1),
        || all_at(&agents, newer),
    );
    // The decline reached the server once.
    fleet.wait_until(
        "the decline reported",
        fleet.now() + Duration::hours(2),
        || {
            let kinds: Vec<Value> = events(fleet.admin())
                .into_iter()
                .map(|e| e["event"]["kind"].clone())
                .collect();
            match kinds.iter().filter(|k| *k == "user_declined").count() {
                1 => Ok(()),
                _ => Err(format!("{kinds:?}")),
            }
        },
    );
}

#[test]
fn persistent_update_is_reminded_at_every_poll_and_installs_once_deferrals_run_out() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet_from(dir.path(), "2026-06-01T09:00:00Z");
    fleet.policy(
        "headset_tolerant",
        "persistent",
        json!({"max_deferrals": 2}),
    );
    let mut agents = desks(&fleet, &[("per-1", "headset_tolerant")]);
    start_all(&mut agents);
    let agent = &agents[0];
    let version = NEW_VERSION.to_string();
    let mut by = at("2026-06-01T10:00:00Z");
    let mut reminded_at: Vec<DateTime<Utc>> = Vec::new();
    for deferred in 0..2 {
        // A reminder: the prompt shown (notified) again after the last answer.
        let prompt = fleet.wait_until("a reminder", by, || match agent.prompts()?.as_slice() {
            [p] if p["version"] == version.as_str()
                && p["deferrals"] == deferred
                && p["notified_at"].as_str().map(at) > reminded_at.last().copied() =>
            {
                Ok(p.clone())
            }
            other => Err(format!("{other:?}")),
        });
        assert_eq!(prompt["max_deferrals"], 2);
        assert_eq!(all_at(&agents, FACTORY_VERSION), Ok(()));
        reminded_at.push(at(prompt["notified_at"].as_str().unwrap()));
        decide(agent, "defer", &prompt);
        by = fleet.now() + Duration::hours(3);
    }
    // Reminded at the next poll, not at once.
    assert!(
        reminded_at[1] - reminded_at[0] >= Duration::minutes(50),
        "{reminded_at:?}"
    );
    // The device runs the new firmware (its simulated flash) a moment before
    // the agent has recorded the install and closed the prompt: wait for both.
    fleet.wait_until("installed without asking, the prompt closed", by, || {
        all_at(&agents, NEW_VERSION)?;
        match agent.prompts()?.as_slice() {
            [] => Ok(()),
            open => Err(format!("prompts still open: {open:?}")),
        }
    });
    let deferred = events(fleet.admin())
        .into_iter()
        .filter(|e| e["event"]["kind"] == "user_deferred")
        .count();
    assert_eq!(deferred, 2);
}

/// Requests the server answered for firmware images (its own metrics).
fn image_downloads(fleet: &SimFleet) -> u64 {
    let text = reqwest::blocking::get(format!("{}/metrics", fleet.base()))
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("updater_http_requests_total{")
                && l.contains("route=\"/repo/targets/{*path}\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|n| n as u64)
        .sum()
}

fn agent_events(fleet: &SimFleet, agent: &SimAgent, kind: &str) -> Vec<Value> {
    let id = update_agent::enroll::load(&agent.root().join("state"))
        .unwrap()
        .unwrap()
        .agent_id;
    events(fleet.admin())
        .into_iter()
        .filter(|e| e["agent"] == id.as_str() && e["event"]["kind"] == kind)
        .collect()
}

#[test]
fn branch_shares_serve_the_image_and_a_tampered_share_falls_back_to_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet_from(dir.path(), "2026-06-01T09:00:00Z");
    let model =
        fleet_sim::firmware::hardware_id(&tests::sim_fleet::model("headset_tolerant")).to_string();
    // Each branch has its own share, exported with the admin CLI; the
    // second one's copy of the image has one bit flipped.
    let (intact, tampered) = (dir.path().join("share-a"), dir.path().join("share-b"));
    for share in [&intact, &tampered] {
        let dest = share.to_str().unwrap();
        tests::server_cli(
            fleet.data(),
            &["catalog", "mirror", dest, "--model", &model],
            None,
        );
    }
    let image = find_file(
        &tampered.join("targets"),
        &format!("headset_tolerant-{NEW_VERSION}.dfu"),
    )
    .expect("the image in the exported share");
    let mut bytes = std::fs::read(&image).unwrap();
    bytes[1000] ^= 0x01;
    std::fs::write(&image, bytes).unwrap();
    for (priority, branch, share) in [(1, "a", &intact), (2, "b", &tampered)] {
        let group = fleet.admin().post(
            "groups",
            &json!({"name": format!("Branch {branch}"), "priority": priority,
                    "membership": {"kind": "manual", "members": [format!("user-branch-{branch}")]}}),
        );
        fleet.policy(
            "headset_tolerant",
            "automatic",
            json!({"name": format!("Branch {branch} share"), "group": group["id"],
                   "source": {"kind": "share", "path": share.to_str().unwrap()},
                   "fallback_to_server": true}),
        );
    }
    let mut agents = desks(
        &fleet,
        &[
            ("branch-a", "headset_tolerant"),
            ("branch-b", "headset_tolerant"),
        ],
    );
    // Branch A: from its share; the server serves no image.
    agents[0].start();
    fleet.wait_until("branch A updated", fleet.now() + Duration::hours(2), || {
        all_at(&agents[..1], NEW_VERSION)
    });
    fleet.wait_for_installs(1, fleet.now() + Duration::hours(2));
    assert_eq!(image_downloads(&fleet), 0);
    // Branch B: the share's image fails verification; refused, reported,
    // and taken from the server instead.
    agents[1].start();
    fleet.wait_until("branch B updated", fleet.now() + Duration::hours(2), || {
        all_at(&agents, NEW_VERSION)
    });
    fleet.wait_for_installs(2, fleet.now() + Duration::hours(2));
    assert!(image_downloads(&fleet) >= 1);
    let tamper = fleet.wait_until(
        "the tamper report",
        fleet.now() + Duration::hours(2),
        || match agent_events(&fleet, &agents[1], "tamper_detected").as_slice() {
            [one] => Ok(one.clone()),
            other => Err(format!("{other:?}")),
        },
    );
    assert_eq!(tamper["event"]["source"], "image", "{tamper}");
    assert!(
        tamper["event"]["reason"]
            .as_str()
            .unwrap()
            .contains(tampered.to_str().unwrap()),
        "{tamper}"
    );
    assert_eq!(
        agent_events(&fleet, &agents[0], "tamper_detected"),
        Vec::<Value>::new()
    );
}

/// The file under `dir` whose name ends in `suffix`.
fn find_file(dir: &std::path::Path, suffix: &str) -> Option<std::path::PathBuf> {
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let p = e.path();
        if p.is_dir() {
            find_file(&p, suffix)
        } else {
            p.to_string_lossy().ends_with(suffix).then_some(p)
        }
    })
}

#[test]
fn a_device_the_host_restarts_after_flashing_is_installed_without_a_replug() {
    // The Orbit BT600 dongle is not manifestation-tolerant, but a USB reset
    // restarts it: the agent waits for it to come back by itself.
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet_from(dir.path(), "2026-06-01T22:00:00Z");
    let window = json!({"window": {"cron": "0 1 * * *", "duration_minutes": 120, "tz": "UTC"}});
    fleet.policy("usb_dongle", "silent", window);
    let mut agents = desks(&fleet, &[("dongle-1", "usb_dongle")]);
    start_all(&mut agents);
    fleet.wait_until(
        "the dongle on the new version",
        at("2026-06-02T04:00:00Z"),
        || all_at(&agents, NEW_VERSION),
    );
    assert_installed_once_within(
        &fleet.wait_for_installs(1, at("2026-06-02T05:00:00Z")),
        1,
        "2026-06-02T01:00:00Z",
        "2026-06-02T03:00:00Z",
    );
    assert_eq!(agents[0].prompts(), Ok(Vec::new()), "no replug prompt");
    assert_eq!(
        agent_events(&fleet, &agents[0], "awaiting_replug"),
        Vec::<Value>::new()
    );
}
