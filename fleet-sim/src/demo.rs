//! The fleet demo: one server, a pilot night, then everyone; the fleet must
//! converge as each kind of host expects.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use catalog::mirror::{export, ExportFilter};
use catalog::window::{MaintenanceWindow, Occurrence};
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{json, Value};
use update_agent::daemon::Timings;
use update_agent::state::UpdateStatus;

use crate::admin::AdminClient;
use crate::firmware::{hardware_id, models, Model, FACTORY_VERSION, NEW_VERSION};
use crate::fleet::Fleet;
use crate::host::SimHost;
use crate::progress::Progress;
use crate::scenario::{plan, HostKind, PlannedHost};
use crate::world::World;

pub use crate::world::{ADMIN_EMAIL, ADMIN_PASSWORD};
/// The nightly window: 01:00 for four hours, local time.
pub const WINDOW_CRON: &str = "0 1 * * *";
/// Its length.
pub const WINDOW_HOURS: i64 = 4;
/// A file marking a directory as the demo's own (so a rerun may clear it).
const MARKER: &str = ".fleet-demo";

/// How to run the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the server, agents and share live (cleared if a previous demo's).
    pub data: PathBuf,
    /// Number of simulated hosts.
    pub hosts: usize,
    /// The IANA zone of the maintenance window.
    pub zone: String,
    /// Threads running agents.
    pub threads: usize,
    /// Draw progress bars.
    pub progress: bool,
    /// Serve on this address, and keep serving after the story
    /// ([`DemoOutcome::world`]); `None`: a free port, stopped at the end.
    pub serve: Option<std::net::SocketAddr>,
}

/// What became of one host.
#[derive(Debug, Clone)]
pub struct HostOutcome {
    /// Host name.
    pub host: String,
    /// Its kind.
    pub kind: HostKind,
    /// Devices on the new version / devices.
    pub updated: (usize, usize),
    /// Why it is not what the kind expects (`None`: as expected).
    pub unexpected: Option<String>,
}

/// The demo's result.
#[derive(Debug)]
pub struct DemoOutcome {
    /// Per host.
    pub hosts: Vec<HostOutcome>,
    /// Pilot hosts converged after the first night.
    pub pilot_converged: bool,
    /// What went otherwise than expected in the staged rollouts of 2.2.0.
    pub staged: Vec<String>,
    /// The tenant id (for the CLI hints).
    pub tenant: String,
    /// The server's data directory.
    pub server_data: PathBuf,
    /// Reports as printed (Version Status, Policy Compliance).
    pub reports: Vec<(String, String)>,
    /// The world, still serving, when [`DemoOptions::serve`] asked for it
    /// (its clock stands at the end of the story).
    pub world: Option<World>,
}

impl DemoOutcome {
    /// The fleet ended as every kind of host expects.
    pub fn converged(&self) -> bool {
        self.pilot_converged
            && self.staged.is_empty()
            && self.hosts.iter().all(|h| h.unexpected.is_none())
    }
}

/// Clears `dir` if it is a previous demo's, refuses anything else that is not empty.
fn prepare(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)?.next().is_none();
        if !empty {
            anyhow::ensure!(
                dir.join(MARKER).exists(),
                "{} exists and is not a previous demo's directory; choose another --data",
                dir.display()
            );
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("clearing the previous demo in {}", dir.display()))?;
        }
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join(MARKER),
        "created by fleet-sim demo; safe to delete\n",
    )?;
    Ok(())
}

pub(crate) fn window_json(zone: &str) -> Value {
    json!({"cron": WINDOW_CRON, "duration_minutes": WINDOW_HOURS * 60, "tz": zone})
}

/// The first window opening at least two hours after `t`.
pub(crate) fn next_window(w: &MaintenanceWindow, t: DateTime<Utc>) -> Occurrence {
    w.next_or_current(t + Duration::hours(2))
}

fn policy(m: &Model, name: &str, group: Option<&str>, zone: &str, source: Value) -> Value {
    let mut p = json!({
        "name": name,
        "model": hardware_id(m).to_string(),
        "version": "latest",
        "deployment": "silent",
        "window": window_json(zone),
        "source": source,
        "fallback_to_server": true,
        "enabled": true,
    });
    if let Some(g) = group {
        p["group"] = json!(g);
    }
    p
}

/// Devices of a host on the new version, and in all.
fn updated(h: &SimHost) -> (usize, usize) {
    let v = h.versions();
    (
        v.iter().filter(|(_, v)| *v == Some(NEW_VERSION)).count(),
        v.len(),
    )
}

fn count_updated(fleet: &Fleet) -> (usize, usize) {
    fleet
        .hosts()
        .iter()
        .map(updated)
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// The morning after: users whose agent asks for a replug unplug and replug
/// the headset.
fn users_replug(fleet: &mut Fleet) -> anyhow::Result<usize> {
    let mut replugged = 0;
    for h in fleet.hosts_mut() {
        let waiting = h
            .state()
            .updates()?
            .iter()
            .any(|u| u.status == UpdateStatus::AwaitingReplug);
        if waiting {
            for (id, m) in h.devices() {
                if m.needs_replug() {
                    h.bus().replug(*id);
                    replugged += 1;
                }
            }
        }
    }
    Ok(replugged)
}

/// Runs the demo; progress goes to stderr, the story to stdout.
pub fn run(opts: &DemoOptions) -> anyhow::Result<DemoOutcome> {
    let planned = plan(opts.hosts)?;
    prepare(&opts.data)?;
    let start = Utc::now().duration_trunc(Duration::minutes(1))?;
    let window = MaintenanceWindow::new(WINDOW_CRON, Duration::hours(WINDOW_HOURS), &opts.zone)
        .with_context(|| format!("the demo window in {}", opts.zone))?;
    let mut world = World::start_on(&opts.data, start, opts.serve)?;
    let clock = world.clock().clone();
    let server_data = world.server_data();
    println!(
        "updater-server listening on {} (data: {})",
        world.url(),
        server_data.display()
    );
    let targets = world.import(NEW_VERSION)?;
    println!(
        "imported {} firmware releases ({NEW_VERSION}): {}",
        targets.len(),
        targets.join(", ")
    );
    let tenant = world.create_tenant("Demo Corp")?;
    let admin = world.admin(&tenant)?;
    let members = |f: &dyn Fn(&PlannedHost) -> bool| -> Vec<String> {
        planned
            .iter()
            .filter(|h| f(h))
            .map(|h| h.spec.user.clone())
            .collect()
    };
    let pilot = admin.post(
        "groups",
        &json!({"name": "Pilot", "priority": 10,
                "membership": {"kind": "manual", "members": members(&|h| h.pilot)}}),
    )?;
    let pilot_id = pilot["id"].as_str().context("group id")?.to_owned();
    for m in models() {
        admin.post(
            "policies/firmware",
            &policy(
                &m,
                &format!("{} pilot", m.name),
                Some(&pilot_id),
                &opts.zone,
                json!({"kind": "server"}),
            ),
        )?;
    }
    println!(
        "tenant {} with group Pilot ({} users) and silent policies: window {WINDOW_CRON} for {WINDOW_HOURS} h in {}",
        tenant.id,
        planned.iter().filter(|h| h.pilot).count(),
        opts.zone
    );

    let progress = Progress::new(opts.progress);
    let timings = Timings {
        poll_interval: Duration::hours(6),
        scan_interval: Duration::minutes(30),
    };
    let bar = progress.counter("enrolling", planned.len());
    let specs: Vec<_> = planned.iter().map(|p| p.spec.clone()).collect();
    let hosts = world.enroll(&tenant, &specs, timings, 0, &mut || bar.inc(1))?;
    bar.finish();
    let devices: usize = hosts.iter().map(|h| h.devices().len()).sum();
    println!(
        "enrolled {} agents with {devices} simulated devices",
        hosts.len()
    );
    let mut fleet = Fleet::new(hosts, clock.clone(), opts.threads);

    // Night 1: the pilot group.
    let night1 = next_window(&window, clock.now());
    run_night(
        &mut world,
        &mut fleet,
        &progress,
        "night 1 (pilot)",
        night1,
        &opts.zone,
        &mut |_, _| Ok(()),
    )?;
    let pilot_converged = planned
        .iter()
        .zip(fleet.hosts())
        .filter(|(p, _)| p.pilot)
        .all(|(_, h)| updated(h).0 == updated(h).1);
    let (done, all) = count_updated(&fleet);
    println!("after night 1: {done}/{all} devices updated; pilot converged: {pilot_converged}");

    // Then everyone: All Users policies, and a branch office on a share.
    let admin = world.admin(&tenant)?;
    let branch_users = members(&|h| h.kind == HostKind::TamperedShare);
    let branch = admin.post(
        "groups",
        &json!({"name": "Branch office", "priority": 20,
                "membership": {"kind": "manual", "members": branch_users}}),
    )?;
    let branch_id = branch["id"].as_str().context("group id")?.to_owned();
    let share = opts.data.join("branch-share");
    export(
        &world.catalog()?,
        &share,
        &ExportFilter::default(),
        &mut |_| {},
    )?;
    let tampered = tamper_share(&share)?;
    println!(
        "branch share exported to {} and one image tampered ({tampered})",
        share.display()
    );
    for m in models() {
        admin.post(
            "policies/firmware",
            &policy(
                &m,
                &format!("{} everyone", m.name),
                None,
                &opts.zone,
                json!({"kind": "server"}),
            ),
        )?;
        admin.post(
            "policies/firmware",
            &policy(
                &m,
                &format!("{} branch", m.name),
                Some(&branch_id),
                &opts.zone,
                json!({"kind": "share", "path": share.to_string_lossy()}),
            ),
        )?;
    }
    println!("rollout extended to All Users");

    // Night 2: everyone; one user is in a call when the window opens.
    let night2 = next_window(&window, night1.end);
    let in_call: Vec<usize> = planned
        .iter()
        .enumerate()
        .filter(|(_, p)| p.kind == HostKind::InCall)
        .map(|(i, _)| i)
        .collect();
    let call = (
        night2.start - Duration::minutes(30),
        night2.start + Duration::minutes(90),
    );
    let watched: Vec<usize> = planned
        .iter()
        .enumerate()
        .filter(|(_, p)| matches!(p.kind, HostKind::TwoPiece | HostKind::InCall))
        .map(|(i, _)| i)
        .collect();
    let mut seen: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    let mut night2_actions = |now: DateTime<Utc>, fleet: &mut Fleet| -> anyhow::Result<()> {
        for &i in &in_call {
            let h = &fleet.hosts()[i];
            let active = now >= call.0 && now < call.1;
            for (id, _) in h.devices() {
                h.bus().set_in_call(*id, active);
            }
        }
        // What the special hosts said while the window was open.
        if now >= night2.start && now < night2.end {
            for &i in &watched {
                for u in fleet.hosts()[i].state().updates()? {
                    if let Some(r) = u.reason {
                        seen.entry(i).or_default().insert(r);
                    }
                }
            }
        }
        Ok(())
    };
    run_night(
        &mut world,
        &mut fleet,
        &progress,
        "night 2 (everyone)",
        night2,
        &opts.zone,
        &mut night2_actions,
    )?;

    let hosts = evaluate(&world.admin(&tenant)?, &planned, &fleet, &seen)?;
    let reports = crate::reports::fetch(&world.admin(&tenant)?)?;

    // Then 2.2.0, staged over three nights, and a broken release.
    let staged = crate::staged::run(
        &mut world,
        &mut fleet,
        &progress,
        &crate::staged::Setting {
            tenant: &tenant,
            pilot_group: &pilot_id,
            planned: &planned,
            window: &window,
            zone: &opts.zone,
            after: night2,
        },
    )?;
    Ok(DemoOutcome {
        hosts,
        pilot_converged,
        staged,
        tenant: tenant.id,
        server_data,
        reports,
        world: opts.serve.map(|_| world),
    })
}

/// Runs from now to three hours after the window closes; users replug
/// in the morning (two hours after the window).
pub(crate) fn run_night(
    world: &mut World,
    fleet: &mut Fleet,
    progress: &Progress,
    title: &str,
    window: Occurrence,
    zone: &str,
    actions: &mut dyn FnMut(DateTime<Utc>, &mut Fleet) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let begin = fleet.clock().now();
    let morning = window.end + Duration::hours(2);
    let end = window.end + Duration::hours(3);
    let tz: chrono_tz::Tz = zone.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let (_, total) = count_updated(fleet);
    let bars = progress.night(
        title,
        (end - begin).num_minutes().max(1) as u64,
        total as u64,
    );
    let mut replugged = false;
    fleet.run_until(end, &mut |now, fleet| {
        world.refresh_timestamp()?;
        world.evaluate_rollouts()?;
        actions(now, fleet)?;
        if now >= morning && !replugged {
            replugged = true;
            let n = users_replug(fleet)?;
            bars.note(&format!("morning: {n} users replugged their headset"));
        }
        bars.update(
            (now - begin).num_minutes().max(0) as u64,
            count_updated(fleet).0 as u64,
            &now.with_timezone(&tz).format("%a %H:%M %Z").to_string(),
        );
        Ok(())
    })?;
    bars.finish();
    Ok(())
}

/// Flips one byte in the first image of the share, as a broken copy or a
/// meddling hand would; returns the file's name.
fn tamper_share(share: &Path) -> anyhow::Result<String> {
    let mut stack = vec![share.join("targets")];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().contains("voyage-5200") {
                let mut bytes = std::fs::read(&path)?;
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x01;
                std::fs::write(&path, bytes)?;
                return Ok(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    anyhow::bail!("no Voyage 5200 image on the share to tamper with")
}

/// Each host against what its kind expects.
fn evaluate(
    admin: &AdminClient,
    planned: &[PlannedHost],
    fleet: &Fleet,
    seen: &BTreeMap<usize, BTreeSet<String>>,
) -> anyhow::Result<Vec<HostOutcome>> {
    planned
        .iter()
        .zip(fleet.hosts())
        .enumerate()
        .map(|(i, (p, h))| {
            let (done, all) = updated(h);
            let said = seen.get(&i).cloned().unwrap_or_default();
            let waiting: Vec<String> = h
                .state()
                .updates()?
                .into_iter()
                .filter(|u| u.status != UpdateStatus::Installed)
                .filter_map(|u| u.reason)
                .collect();
            let unexpected = match p.kind {
                HostKind::Desk => (done != all)
                    .then(|| format!("{done}/{all} devices updated; waiting: {waiting:?}")),
                HostKind::InCall => {
                    if done != all {
                        Some(format!("{done}/{all} devices updated after the call; waiting: {waiting:?}"))
                    } else if !said.iter().any(|r| r.contains("call")) {
                        Some(format!("never waited for the call to end (said {said:?})"))
                    } else {
                        None
                    }
                }
                HostKind::TwoPiece => {
                    let still_old = h.versions().iter().all(|(_, v)| *v == Some(FACTORY_VERSION));
                    let says_why = said.iter().any(|w| w.contains("another piece of the same product"));
                    (!(still_old && says_why)).then(|| {
                        format!("expected to wait for the other piece; {done}/{all} updated, said {said:?}")
                    })
                }
                HostKind::TamperedShare => {
                    let agent = update_agent::enroll::load(h.state_dir())?
                        .context("enrollment")?
                        .agent_id;
                    let events = admin.get(&format!("events?agent={agent}&limit=500"))?;
                    let tamper = events["items"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|e| e["event"]["kind"] == "tamper_detected");
                    if done != all {
                        Some(format!("{done}/{all} devices updated (fallback to the server expected)"))
                    } else if !tamper {
                        Some("the tampered share was not reported to the server".into())
                    } else {
                        None
                    }
                }
            };
            Ok(HostOutcome {
                host: h.name().to_owned(),
                kind: p.kind,
                updated: (done, all),
                unexpected,
            })
        })
        .collect()
}
