//! The agent survives `kill -9`: the real `update-agent run` process is
//! killed with SIGKILL at 50 points chosen by a seeded RNG (printed; set
//! `CRASH_SEED` to replay one run) during downloads and flashes, and
//! restarted each time. The simulated devices keep their state in files, as
//! real devices keep their flash. At the end every device runs the newest
//! release, and the server holds every event the agent ever spooled exactly
//! once.
//!
//! Kill points are exact, not timed: a download kill stalls the web mirror
//! at byte k and waits for the partial file to hold k bytes; a flash kill
//! sets `[simulated] freeze_after_bytes_written` so the bus stops right
//! after the block that reaches it was saved, and waits for its marker.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dfu::file::DfuFile;
use serde_json::json;
use test_devices::image::{build, test_payload};
use test_devices::{DeviceStore, FirmwareVersion};
use tests::{server_cli, text, Admin, MirrorServer, Server};
use update_agent::staging::CHECKPOINT_BYTES;
use update_agent::state::State;

const PASSWORD: &str = "correct horse battery staple";
const KILLS: usize = 50;
const SERIALS: [&str; 2] = ["HS-1", "HS-2"];
const PAYLOAD: usize = 60_000;

/// splitmix64: small, seedable, the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct World {
    dir: PathBuf,
    data: PathBuf,
    config: PathBuf,
    state: PathBuf,
    devices: PathBuf,
    mirror_dir: PathBuf,
    server_base: String,
    mirror: MirrorServer,
    runs: usize,
    /// Ids of every event seen in the agent's spool between runs.
    spooled: BTreeSet<String>,
}

impl World {
    fn write_config(&self, freeze_after: Option<u64>) {
        let mut text = format!(
            "server_url = \"{}\"\nbackend = \"simulated\"\n\n[simulated]\nstate_dir = \"{}\"\n",
            self.server_base,
            self.devices.display()
        );
        if let Some(n) = freeze_after {
            text.push_str(&format!("freeze_after_bytes_written = {n}\n"));
        }
        for s in SERIALS {
            text.push_str(&format!(
                "\n[[simulated.devices]]\nprofile = \"headset_tolerant\"\nserial = \"{s}\"\n"
            ));
        }
        fs::write(&self.config, text).unwrap();
    }

    fn agent(&self, args: &[&str]) -> Command {
        let mut cmd = tests::agent_command(&self.config, &self.state, args);
        cmd.env("USER", "ann");
        cmd
    }

    fn start(&mut self) -> Child {
        self.runs += 1;
        let log = fs::File::create(self.dir.join(format!("agent-{:03}.log", self.runs))).unwrap();
        self.agent(&["run"])
            .env("UPDATE_AGENT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap()
    }

    fn last_log(&self) -> String {
        fs::read_to_string(self.dir.join(format!("agent-{:03}.log", self.runs))).unwrap_or_default()
    }

    /// SIGKILL, then what the dead agent left in its spool.
    fn kill(&mut self, mut child: Child) {
        child.kill().unwrap();
        child.wait().unwrap();
        let state = State::open_in(&self.state).unwrap();
        for e in state.pending_events(100_000).unwrap() {
            self.spooled.insert(e.id);
        }
    }

    fn staging_partial(&self) -> Option<u64> {
        fs::read_dir(self.state.join("staging"))
            .ok()?
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .and_then(|e| e.metadata().ok())
            .map(|m| m.len())
    }

    /// (lifetime bytes written by all devices, per serial: (mode, version)).
    fn devices_now(&self) -> (u64, BTreeMap<String, (String, Option<String>)>) {
        let all = DeviceStore::open(&self.devices).unwrap().all().unwrap();
        let total = all.iter().map(|(_, s)| s.bytes_written).sum();
        let each = all
            .into_iter()
            .map(|(k, s)| {
                let serial = k.rsplit('-').next().unwrap_or("").to_owned();
                (
                    format!("HS-{serial}"),
                    (format!("{:?}", s.mode), s.app.map(|v| v.to_string())),
                )
            })
            .collect();
        (total, each)
    }
}

fn firmware(dir: &Path, version: (u8, u8, u16)) -> PathBuf {
    let image = build(
        0x0003,
        FirmwareVersion::new(version.0, version.1, version.2),
        &test_payload(PAYLOAD, version.0),
    );
    let path = dir.join(format!("fw-{}.{}.{}.dfu", version.0, version.1, version.2));
    fs::write(
        &path,
        DfuFile::new_raw(0x1209, 0x0003, 0xffff, image).to_bytes(),
    )
    .unwrap();
    path
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Download,
    Flash,
}

#[test]
fn the_agent_survives_sigkill_during_downloads_and_flashes() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_2026_u64);
    println!("agent_crash seed: {seed} (replay with CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let started = Instant::now();

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let data = dir.join("data");
    let mirror_dir = dir.join("mirror");
    let created = tests::tenant_with_admin(&data, "Acme", "ann@acme.example", PASSWORD);
    let server = Server::start(&data);
    let admin = Admin::login(&server.base, &created.id, "ann@acme.example", PASSWORD);
    fs::create_dir_all(&mirror_dir).unwrap();
    let mirror = MirrorServer::start(&mirror_dir);
    admin.post(
        "policies/firmware",
        &json!({"name": "Headsets", "model": "1209:0003", "version": "latest",
                "deployment": "automatic", "enabled": true,
                "source": {"kind": "web", "url": mirror.base}, "fallback_to_server": true}),
    );
    let mut w = World {
        config: dir.join("agent.toml"),
        state: dir.join("state"),
        devices: dir.join("devices"),
        dir: dir.clone(),
        data: data.clone(),
        mirror_dir,
        server_base: server.base.clone(),
        mirror,
        runs: 0,
        spooled: BTreeSet::new(),
    };
    w.write_config(None);
    let out = w
        .agent(&["enroll", "--tenant-id", &created.id])
        .env("TENANT_TOKEN", &created.enrollment_token)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    let mut kills: Vec<(Phase, u64)> = Vec::new();
    let mut release = 1u8;
    let mut targets = Vec::new();
    while kills.len() < KILLS {
        release += 1;
        let version = format!("{release}.0.0");
        let fw = firmware(&dir, (release, 0, 0));
        let out = tests::import_headset(
            &w.data,
            &fw,
            &version,
            &["--security-counter", &release.to_string()],
        );
        let target = text(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("imported: "))
            .unwrap()
            .trim()
            .to_owned();
        server_cli(
            &w.data,
            &["catalog", "mirror", w.mirror_dir.to_str().unwrap()],
            None,
        );
        // The signed target as the mirror holds it (what is downloaded).
        let on_mirror = w.mirror_dir.join(format!("targets/acme/headset/{version}"));
        let image_len = fs::read_dir(&on_mirror)
            .unwrap()
            .flatten()
            .map(|e| e.metadata().unwrap().len())
            .next()
            .unwrap();

        // Downloads: 1–4 kills at increasing offsets of this release's image.
        let n = rng.range(1, 4).min((KILLS - kills.len()) as u64);
        let mut floor = 0;
        // Bytes fetched again after a kill: those past the last checkpoint.
        let mut refetched = 0;
        for i in 0..n {
            let room = (image_len - 1 - floor) / (n - i);
            let k = rng.range(floor + 1, floor + room.max(1));
            w.mirror.stall_targets_at(Some(k));
            let before = w.mirror.served().len();
            let child = w.start();
            wait_for(
                &format!("the partial download to reach {k} bytes"),
                Duration::from_secs(60),
                || (w.staging_partial() == Some(k)).then_some(()),
            );
            w.kill(child);
            // It resumed where the previous attempt had recorded its progress.
            let first = w.mirror.served()[before..]
                .iter()
                .find(|s| s.path.starts_with("/targets/"))
                .cloned()
                .unwrap_or_else(|| panic!("no target request: {}", w.last_log()));
            assert_eq!(
                first.start,
                floor / CHECKPOINT_BYTES * CHECKPOINT_BYTES,
                "{first:?}"
            );
            kills.push((Phase::Download, k));
            refetched += k - k / CHECKPOINT_BYTES * CHECKPOINT_BYTES;
            floor = k;
        }
        w.mirror.stall_targets_at(None);

        // Flashes: kill while some device still has to be flashed.
        let n = rng.range(2, 6).min((KILLS - kills.len()) as u64);
        for _ in 0..n {
            let (total, each) = w.devices_now();
            let left = each
                .values()
                .filter(|(_, v)| v.as_deref() != Some(&*version))
                .count() as u64;
            if left == 0 {
                break;
            }
            // A flash restarts from its first block: `left` whole images remain.
            let at = total + rng.range(1, left * image_len.min(PAYLOAD as u64) - 1);
            w.write_config(Some(at));
            let child = w.start();
            let marker = w.devices.join(test_devices::persist::FROZEN_MARKER);
            wait_for(
                &format!("the bus to freeze at {at} bytes written"),
                Duration::from_secs(60),
                || marker.exists().then_some(()),
            );
            w.kill(child);
            fs::remove_file(&marker).unwrap();
            kills.push((Phase::Flash, at));
        }
        w.write_config(None);

        // Then the release completes, with its events on the server.
        let child = w.start();
        wait_for(
            &format!("{version} installed and reported"),
            Duration::from_secs(60),
            || {
                let (_, each) = w.devices_now();
                let done = each
                    .values()
                    .all(|(m, v)| m == "Runtime" && v.as_deref() == Some(&*version));
                let history = w_history(&admin, &target);
                (done && history == SERIALS.len()).then_some(())
            },
        );
        w.kill(child);
        // The mirror served the image once, plus what each kill cost.
        let prefix = format!("/targets/acme/headset/{version}/");
        let served: u64 = w
            .mirror
            .served()
            .iter()
            .filter(|s| s.path.starts_with(&prefix))
            .map(|s| s.bytes)
            .sum();
        assert_eq!(served, image_len + refetched, "{version}");
        targets.push(target);
    }

    // The points spread over both phases.
    let downloads = kills.iter().filter(|(p, _)| *p == Phase::Download).count();
    let flashes = kills.len() - downloads;
    println!(
        "{} kills: {downloads} during downloads, {flashes} during flashes, {} releases, {:?}",
        kills.len(),
        targets.len(),
        started.elapsed()
    );
    println!("kill points: {kills:?}");
    assert_eq!(kills.len(), KILLS);
    assert!(downloads >= 10 && flashes >= 10, "{kills:?}");

    // Every device runs the newest release.
    let newest = format!("{release}.0.0");
    let (_, each) = w.devices_now();
    assert_eq!(each.len(), SERIALS.len());
    for (serial, (mode, version)) in &each {
        assert_eq!(
            (mode.as_str(), version.as_deref()),
            ("Runtime", Some(newest.as_str())),
            "{serial}"
        );
    }

    // Nothing lost: every event ever spooled reached the server; nothing
    // duplicated: each id once, and per device and release one staged and
    // one succeeded (a flash cut short is started again, so more starts).
    let events = admin.all("events");
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an event id twice");
    let missing: Vec<&String> = w
        .spooled
        .iter()
        .filter(|id| !unique.contains(id.as_str()))
        .collect();
    assert!(missing.is_empty(), "spooled but never stored: {missing:?}");
    let discovered = events
        .iter()
        .filter(|e| e["event"]["kind"] == "device_discovered")
        .count();
    assert_eq!(discovered, SERIALS.len());
    let history = admin.all("update-history");
    let starts = history.iter().filter(|h| h["outcome"] == "started").count();
    println!(
        "{} events stored, {} seen spooled between runs, {starts} flash starts for {} installs",
        events.len(),
        w.spooled.len(),
        targets.len() * SERIALS.len()
    );
    assert!(
        starts > targets.len() * SERIALS.len(),
        "no flash was cut short"
    );
    for target in &targets {
        for serial in SERIALS {
            let device = format!("1209/serial/{serial}");
            let count = |outcome: &str| {
                history
                    .iter()
                    .filter(|h| {
                        h["target"] == target.as_str()
                            && h["device"] == device.as_str()
                            && h["outcome"] == outcome
                    })
                    .count()
            };
            assert_eq!(count("staged"), 1, "{target} {serial}");
            assert_eq!(count("succeeded"), 1, "{target} {serial}");
            assert_eq!(count("failed"), 0, "{target} {serial}");
            assert!(count("started") >= 1, "{target} {serial}");
        }
    }
    let state = State::open_in(&w.state).unwrap();
    assert!(state.pending_events(10).unwrap().is_empty());
    assert!(
        state.downloads().unwrap().is_empty(),
        "download records left behind"
    );
    drop(server);
}

/// How many devices the server's update history shows as succeeded on `target`.
fn w_history(admin: &Admin, target: &str) -> usize {
    admin
        .all("update-history")
        .iter()
        .filter(|h| h["target"] == target && h["outcome"] == "succeeded")
        .count()
}
