//! The pipeline against a real catalog exported to directories (the
//! "server" and a share), and simulated devices.

use std::path::{Path, PathBuf};

use catalog::assignment::{DownloadSource, KeyEndorsement};
use catalog::import::ImportOptions;
use catalog::mirror::{self, ExportFilter};
use catalog::package::FirmwareRelease;
use catalog::tuf::FileFetcher;
use catalog::window::MaintenanceWindow;
use catalog::Catalog;
use chrono::{Duration, TimeZone};
use dfu::file::DfuFile;
use test_devices::image::{build, test_payload};
use test_devices::{DeviceId, Fault, FirmwareVersion, ModelProfile, SimDevice, VirtualBus};

use super::*;
use crate::devices::SimDevices;
use crate::fetch::ShareFetcher;

/// The tenant of the fixture's assignment sets.
pub(crate) const TENANT: &str = "00000000000000a1";

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

pub(crate) struct Fx {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) catalog: Catalog,
    pub(crate) state: Arc<State>,
    pub(crate) sim: SimDevices,
    pub(crate) id: DeviceId,
    pub(crate) profile: ModelProfile,
    /// The product family [`Fx::import`] gives its releases.
    pub(crate) family: Option<String>,
    /// The assignment key the catalog endorses for [`TENANT`].
    pub(crate) assignment_key: PublicKey,
}

impl Fx {
    pub(crate) fn new(profile: ModelProfile) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::init(
            &dir.path().join("catalog"),
            &dir.path().join("keys"),
            t0() - Duration::days(1),
        )
        .unwrap();
        let assignment_key = catalog::tuf::Ed25519Signer::generate()
            .unwrap()
            .public_key()
            .clone();
        let endorsement = KeyEndorsement::new(TENANT, assignment_key.clone()).unwrap();
        catalog
            .endorse(&endorsement, t0() - Duration::days(1))
            .unwrap();
        let agent = dir.path().join("agent");
        std::fs::create_dir_all(agent.join("metadata")).unwrap();
        std::fs::copy(
            catalog.metadata_dir().join("1.root.json"),
            agent.join("metadata/root.json"),
        )
        .unwrap();
        let state = Arc::new(State::open_in(&agent).unwrap());
        let bus = VirtualBus::new();
        let id = bus.attach(SimDevice::new(profile.clone()));
        Self {
            dir,
            catalog,
            state,
            sim: SimDevices::new(bus),
            id,
            profile,
            family: None,
            assignment_key,
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Imports a `.dfu` with a simulator image at `version`, and exports the
    /// catalog to `server/` and `share/`.
    pub(crate) fn import(&mut self, version: (u8, u8, u16), counter: u32) -> FirmwareRelease {
        let (ma, mi, pa) = version;
        let p = &self.profile;
        let image = build(
            p.runtime_pid,
            FirmwareVersion::new(ma, mi, pa),
            &test_payload(8_000, ma),
        );
        let file = DfuFile::new_raw(p.vendor_id, p.runtime_pid, 0xffff, image).to_bytes();
        let text = format!("{ma}.{mi}.{pa}");
        let path = self.path(&format!("fw-{text}.dfu"));
        std::fs::write(&path, file).unwrap();
        let opts = ImportOptions {
            vendor: Some("Acme".into()),
            model: Some("Headset".into()),
            hardware_ids: vec![format!("{:04X}:{:04X}", p.vendor_id, p.runtime_pid)
                .parse()
                .unwrap()],
            version: Some(text),
            security_counter: Some(counter),
            product_family: self.family.clone(),
            ..Default::default()
        };
        self.import_file(&path, &opts)
    }

    /// Imports `path` with `opts`, and exports the catalog to `server/` and
    /// `share/`.
    pub(crate) fn import_file(&mut self, path: &Path, opts: &ImportOptions) -> FirmwareRelease {
        let release = self
            .catalog
            .import(path, opts, t0() - Duration::hours(1))
            .unwrap()
            .release;
        self.export();
        release
    }

    pub(crate) fn device(&self) -> DeviceReport {
        self.sim
            .inventory()
            .unwrap()
            .into_iter()
            .find(|d| d.vendor_id == self.profile.vendor_id && d.dfu != DfuState::None)
            .unwrap()
    }

    pub(crate) fn assignment(
        &self,
        release: &FirmwareRelease,
        deployment: DeploymentType,
        source: DownloadSource,
        fallback_to_server: bool,
    ) -> Assignment {
        Assignment {
            device: self.device().identity(),
            hardware_id: release.hardware_ids[0],
            target_name: release.target_name.clone(),
            sha256: release.sha256,
            length: release.size,
            deployment,
            window: None,
            source,
            fallback_to_server,
            policy: "p1".into(),
            allow_downgrade: false,
        }
    }

    /// Endorses `signer`'s key for [`TENANT`] instead of the fixture's own,
    /// and exports the catalog to `server/` and `share/`.
    pub(crate) fn endorse(&mut self, signer: &catalog::tuf::Ed25519Signer) {
        let e = KeyEndorsement::new(TENANT, signer.public_key().clone()).unwrap();
        self.catalog.endorse(&e, t0() - Duration::hours(2)).unwrap();
        self.assignment_key = signer.public_key().clone();
        self.export();
    }

    /// Exports the catalog to `server/` and `share/`.
    pub(crate) fn export(&self) {
        for dest in ["server", "share"] {
            mirror::export(
                &self.catalog,
                &self.path(dest),
                &ExportFilter::default(),
                &mut |_| {},
            )
            .unwrap();
        }
    }

    pub(crate) fn pipeline(&self) -> Pipeline<SimDevices> {
        let agent = self.path("agent");
        let remote = Remote {
            metadata: Box::new(FileFetcher::new(self.path("server/metadata"))),
            metadata_base: String::new(),
            server: Box::new(ShareFetcher::new(self.path("server"))),
            server_base: String::new(),
            web: Box::new(ShareFetcher::new(self.path("nowhere"))),
        };
        Pipeline::new(
            self.state.clone(),
            self.sim.clone(),
            Staging::open(agent.join("staging")).unwrap(),
            agent.join("metadata"),
            remote,
            FlashOptions {
                quirks: test_devices::profile::quirk_table(),
                ..Default::default()
            },
            self.assignment_key.clone(),
        )
    }

    pub(crate) fn share(&self) -> DownloadSource {
        DownloadSource::Share {
            path: self.path("share").to_string_lossy().into_owned(),
        }
    }

    /// The firmware files under `share/targets/` (the assignment key
    /// endorsements left out).
    pub(crate) fn share_targets(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.ends_with(catalog::assignment::ENDORSEMENT_DIR) {
                    continue;
                }
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.path("share/targets"), &mut out);
        out
    }

    pub(crate) fn event_kinds(&self) -> Vec<String> {
        let events = self.state.pending_events(1000).unwrap();
        events.into_iter().map(|e| e.kind).collect()
    }

    pub(crate) fn version_on_bus(&self) -> String {
        self.sim
            .bus()
            .telephony_devices()
            .into_iter()
            .find(|(id, _)| *id == self.id)
            .map(|(_, t)| t.version)
            .unwrap_or_else(|| "not running".into())
    }
}

pub(crate) fn set(assignments: Vec<Assignment>) -> AssignmentSet {
    AssignmentSet::new(
        TENANT,
        "agent-1",
        1,
        t0() + Duration::days(7),
        3600,
        assignments,
    )
}

fn one(report: &PassReport) -> Outcome {
    assert_eq!(report.outcomes.len(), 1, "{report:?}");
    report.outcomes.values().next().unwrap().clone()
}

fn update_of(fx: &Fx, a: &Assignment) -> StagedUpdate {
    fx.state
        .update(&a.sha256.to_hex(), &a.device)
        .unwrap()
        .unwrap()
}

#[test]
fn automatic_update_is_downloaded_flashed_read_back_and_reported() {
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let release = fx.import((2, 0, 0), 3);
    let a = fx.assignment(
        &release,
        DeploymentType::Automatic,
        DownloadSource::Server,
        false,
    );
    let mut p = fx.pipeline();
    let report = p.run(&set(vec![a.clone()]), t0()).unwrap();
    assert_eq!(
        one(&report),
        Outcome::Installed {
            version: "2.0.0".into()
        }
    );
    assert_eq!(fx.version_on_bus(), "2.0.0");
    let u = update_of(&fx, &a);
    assert_eq!((u.status, u.reason), (UpdateStatus::Installed, None));
    let installed = fx.state.installed(&a.device).unwrap().unwrap();
    assert_eq!(
        (installed.version.as_str(), installed.security_counter),
        ("2.0.0", 3)
    );
    assert_eq!(
        fx.event_kinds(),
        ["update_staged", "update_started", "update_succeeded"]
    );
    // The staged image is kept while assigned; the next pass changes nothing.
    assert!(p.staging.staged(&a.sha256).is_some());
    let again = p
        .run(&set(vec![a.clone()]), t0() + Duration::hours(1))
        .unwrap();
    assert_eq!(one(&again), Outcome::UpToDate);
    assert_eq!(fx.event_kinds().len(), 3);
    // An assignment set without it: the image is superseded and removed.
    p.run(&set(vec![]), t0() + Duration::hours(2)).unwrap();
    assert!(p.staging.staged(&a.sha256).is_none());
    // The installed record stays (it is the device's history).
    assert_eq!(update_of(&fx, &a).status, UpdateStatus::Installed);
}

/// A release of a protocol this agent cannot flash (an LVFS vendor
/// protocol) is skipped with that reason: nothing downloaded, nothing
/// flashed, no failure reported.
#[test]
fn another_protocol_is_skipped_with_the_reason_before_any_download() {
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let path = fx.path("evolve.bin");
    std::fs::write(&path, b"vendor protocol image").unwrap();
    let p = &fx.profile;
    let opts = ImportOptions {
        vendor: Some("Acme".into()),
        model: Some("Headset".into()),
        hardware_ids: vec![format!("{:04X}:{:04X}", p.vendor_id, p.runtime_pid)
            .parse()
            .unwrap()],
        version: Some("2.0.0".into()),
        protocol: Some("com.jabra.gnp".parse().unwrap()),
        ..Default::default()
    };
    let release = fx.import_file(&path, &opts);
    let a = fx.assignment(
        &release,
        DeploymentType::Automatic,
        DownloadSource::Server,
        false,
    );
    let mut p = fx.pipeline();
    let report = p.run(&set(vec![a.clone()]), t0()).unwrap();
    let why = "protocol com.jabra.gnp is not supported by this agent; skipped";
    assert_eq!(one(&report), Outcome::Waiting(why.into()));
    let u = update_of(&fx, &a);
    assert_eq!(
        (u.status, u.reason.as_deref()),
        (UpdateStatus::Waiting, Some(why))
    );
    assert!(p.staging.staged(&a.sha256).is_none(), "nothing downloaded");
    assert_eq!(fx.version_on_bus(), "1.0.0");
    assert!(fx.event_kinds().is_empty(), "{:?}", fx.event_kinds());
}

/// A headset offered 2.0.0 silently, in a window from 01:00 to 03:00 UTC
/// (the tests start at noon, outside it).
fn silent_at_night() -> (Fx, Assignment) {
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let release = fx.import((2, 0, 0), 0);
    let mut a = fx.assignment(
        &release,
        DeploymentType::Silent,
        DownloadSource::Server,
        false,
    );
    a.window = Some(MaintenanceWindow::new("0 1 * * *", Duration::hours(2), "UTC").unwrap());
    (fx, a)
}

#[test]
fn silent_waits_for_the_window_and_optional_for_consent() {
    let (fx, a) = silent_at_night();
    let mut p = fx.pipeline();
    // 12:00: outside the 01:00–03:00 window: staged, waiting, not flashed.
    let report = p.run(&set(vec![a.clone()]), t0()).unwrap();
    let why =
        "silent update: outside the maintenance window (next opens 2026-11-21T01:00:00+00:00)";
    assert_eq!(one(&report), Outcome::Waiting(why.into()));
    let u = update_of(&fx, &a);
    assert_eq!(
        (u.status, u.reason.as_deref()),
        (UpdateStatus::Waiting, Some(why))
    );
    assert_eq!(fx.version_on_bus(), "1.0.0");
    assert!(p.staging.staged(&a.sha256).is_some());
    // 01:30 the next day: inside, installed.
    let inside = Utc.with_ymd_and_hms(2026, 11, 21, 1, 30, 0).unwrap();
    let report = p.run(&set(vec![a.clone()]), inside).unwrap();
    assert_eq!(
        one(&report),
        Outcome::Installed {
            version: "2.0.0".into()
        }
    );
    assert_eq!(fx.version_on_bus(), "2.0.0");

    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let release = fx.import((2, 0, 0), 0);
    for (deployment, why) in [
        (
            DeploymentType::Optional,
            "waiting for user consent (optional update)",
        ),
        (
            DeploymentType::Persistent,
            "waiting for user consent (persistent update)",
        ),
    ] {
        let a = fx.assignment(&release, deployment, DownloadSource::Server, false);
        let report = fx.pipeline().run(&set(vec![a.clone()]), t0()).unwrap();
        assert_eq!(one(&report), Outcome::Waiting(why.into()));
        assert_eq!(update_of(&fx, &a).reason.as_deref(), Some(why));
    }
    assert_eq!(fx.version_on_bus(), "1.0.0");
    assert_eq!(fx.state.pending_updates().unwrap().len(), 1);
    // No longer assigned: the waiting update is forgotten, the image removed.
    let mut p = fx.pipeline();
    p.run(&set(vec![]), t0()).unwrap();
    assert_eq!(fx.state.pending_updates().unwrap(), []);
    assert!(p.staging.staged(&release.sha256).is_none());
}

#[test]
fn tampered_share_is_refused_reported_and_the_server_used() {
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let release = fx.import((2, 0, 0), 0);
    let targets = fx.share_targets();
    assert_eq!(targets.len(), 1);
    let mut bytes = std::fs::read(&targets[0]).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&targets[0], &bytes).unwrap();
    let a = fx.assignment(&release, DeploymentType::Automatic, fx.share(), true);
    let report = fx.pipeline().run(&set(vec![a.clone()]), t0()).unwrap();
    assert_eq!(
        one(&report),
        Outcome::Installed {
            version: "2.0.0".into()
        }
    );
    let events = fx.state.pending_events(100).unwrap();
    let tamper = events.iter().find(|e| e.kind == "tamper_detected").unwrap();
    assert_eq!(tamper.detail["source"], "image");
    let reason = tamper.detail["reason"].as_str().unwrap();
    assert!(reason.starts_with("share "), "{reason}");
    assert!(
        reason.contains("does not match its signed sha256"),
        "{reason}"
    );
    assert_eq!(tamper.device.as_deref(), Some(a.device.as_str()));
    let u = update_of(&fx, &a);
    assert_eq!(u.status, UpdateStatus::Installed);
}

#[test]
fn tampered_or_missing_share_without_fallback_fails() {
    for damage in ["flip", "remove", "extend"] {
        let mut fx = Fx::new(ModelProfile::headset_tolerant());
        let release = fx.import((2, 0, 0), 0);
        let target = fx.share_targets().remove(0);
        match damage {
            "flip" => {
                let mut bytes = std::fs::read(&target).unwrap();
                bytes[0] ^= 1;
                std::fs::write(&target, bytes).unwrap();
            }
            "remove" => std::fs::remove_file(&target).unwrap(),
            _ => {
                let mut bytes = std::fs::read(&target).unwrap();
                bytes.extend_from_slice(b"more");
                std::fs::write(&target, bytes).unwrap();
            }
        }
        let a = fx.assignment(&release, DeploymentType::Automatic, fx.share(), false);
        let report = fx.pipeline().run(&set(vec![a.clone()]), t0()).unwrap();
        let Outcome::Failed(why) = one(&report) else {
            panic!("{damage}: {report:?}")
        };
        assert!(
            why.ends_with("(no fallback to the server)"),
            "{damage}: {why}"
        );
        let u = update_of(&fx, &a);
        assert_eq!((u.status, u.reason), (UpdateStatus::Failed, Some(why)));
        assert_eq!(
            fx.event_kinds(),
            ["tamper_detected", "update_failed"],
            "{damage}"
        );
        assert_eq!(fx.version_on_bus(), "1.0.0");
    }
}

#[test]
fn replug_device_waits_for_the_user_then_counts_as_installed() {
    let mut fx = Fx::new(ModelProfile::headset_needs_replug());
    let release = fx.import((3, 1, 0), 0);
    let a = fx.assignment(
        &release,
        DeploymentType::Automatic,
        DownloadSource::Server,
        false,
    );
    let mut p = fx.pipeline();
    let report = p.run(&set(vec![a.clone()]), t0()).unwrap();
    assert_eq!(one(&report), Outcome::AwaitingReplug);
    assert_eq!(update_of(&fx, &a).status, UpdateStatus::AwaitingReplug);
    assert!(fx.state.installed(&a.device).unwrap().is_none());
    // A restart before the replug does not flash it again.
    assert_eq!(p.recover(t0()).unwrap(), PassReport::default());
    // Not replugged yet: still waiting.
    let report = p
        .run(&set(vec![a.clone()]), t0() + Duration::minutes(5))
        .unwrap();
    assert_eq!(one(&report), Outcome::AwaitingReplug);
    fx.sim.bus().replug(fx.id);
    let report = p
        .run(&set(vec![a.clone()]), t0() + Duration::minutes(10))
        .unwrap();
    assert_eq!(
        one(&report),
        Outcome::Installed {
            version: "3.1.0".into()
        }
    );
    assert_eq!(
        fx.event_kinds(),
        [
            "update_staged",
            "update_started",
            "awaiting_replug",
            "update_succeeded"
        ]
    );
    assert_eq!(
        fx.state.installed(&a.device).unwrap().unwrap().version,
        "3.1.0"
    );
}

#[test]
fn device_left_in_dfu_mode_is_recovered_at_start_from_the_staged_image() {
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let release = fx.import((2, 0, 0), 0);
    let a = fx.assignment(
        &release,
        DeploymentType::Automatic,
        DownloadSource::Server,
        false,
    );
    fx.sim
        .bus()
        .with_device(fx.id, |d| d.inject(Fault::PowerLossAfter { bytes: 4096 }));
    let report = fx.pipeline().run(&set(vec![a.clone()]), t0()).unwrap();
    assert!(matches!(one(&report), Outcome::Failed(_)), "{report:?}");
    // Let the device come back (in DFU mode, no valid application).
    fx.sim.bus().advance(std::time::Duration::from_secs(5));
    assert_eq!(fx.device().dfu, DfuState::DfuMode);
    assert_eq!(fx.device().identity(), a.device);
    // The agent restarts: no network is needed for recovery.
    let mut restarted = fx.pipeline();
    restarted.remote.server = Box::new(ShareFetcher::new(fx.path("gone")));
    let report = restarted.recover(t0() + Duration::minutes(1)).unwrap();
    assert_eq!(
        one(&report),
        Outcome::Installed {
            version: "2.0.0".into()
        }
    );
    assert_eq!(fx.version_on_bus(), "2.0.0");
    assert_eq!(update_of(&fx, &a).status, UpdateStatus::Installed);
}

#[test]
fn assignments_that_disagree_with_the_catalog_or_downgrade_are_refused() {
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let release = fx.import((2, 0, 0), 2);
    // Security counter 5 is installed: counter 2 would be a downgrade.
    let device = fx.device().identity();
    let base = fx.assignment(
        &release,
        DeploymentType::Automatic,
        DownloadSource::Server,
        false,
    );
    fx.state
        .record_installed(
            &InstalledFirmware {
                device: device.clone(),
                target: "acme/headset/2.5.0/fw.dfu".into(),
                version: "2.5.0".into(),
                security_counter: 5,
                at: t0() - Duration::days(3),
            },
            &StagedUpdate {
                digest: "00".repeat(32),
                target: "acme/headset/2.5.0/fw.dfu".into(),
                device: device.clone(),
                status: UpdateStatus::Installed,
                reason: None,
                updated_at: t0() - Duration::days(3),
                firmware: None,
            },
            None,
        )
        .unwrap();
    let Outcome::Failed(why) = one(&fx.pipeline().run(&set(vec![base.clone()]), t0()).unwrap())
    else {
        panic!()
    };
    assert!(
        why.contains("security counter 2, below the installed 5"),
        "{why}"
    );
    assert_eq!(fx.event_kinds(), ["update_failed"]);

    // Wrong length / unknown target: refused as tampering, nothing downloaded.
    let mut wrong_len = base.clone();
    wrong_len.length += 1;
    let mut unknown = base.clone();
    unknown.target_name = "Acme/Headset/9.9.9/fw.dfu".into();
    for (a, want) in [
        (wrong_len, "assignment says length"),
        (unknown, "is not in the signed catalog"),
    ] {
        let fx = Fx::new(ModelProfile::headset_tolerant());
        let mut fx = fx;
        fx.import((2, 0, 0), 2);
        let Outcome::Failed(why) = one(&fx.pipeline().run(&set(vec![a.clone()]), t0()).unwrap())
        else {
            panic!()
        };
        assert!(why.contains(want), "{why}");
        assert_eq!(fx.event_kinds(), ["tamper_detected", "update_failed"]);
        assert_eq!(fx.version_on_bus(), "1.0.0");
    }
}

#[test]
fn web_mirror_is_used_and_a_missing_file_falls_back_to_the_server() {
    // The "web" fetcher reads below the temp dir, so `{url}/targets/…` with
    // url = "share" is the exported mirror, and url = "empty" has nothing.
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let release = fx.import((2, 0, 0), 0);
    std::fs::create_dir_all(fx.path("empty")).unwrap();
    let web = |url: &str| DownloadSource::Web { url: url.into() };
    let pipeline = |fx: &Fx| {
        let mut p = fx.pipeline();
        // The server is unreachable for the first assignment: only the mirror can serve it.
        p.remote.web = Box::new(ShareFetcher::new(fx.dir.path()));
        p
    };
    let a = fx.assignment(&release, DeploymentType::Optional, web("share"), false);
    let mut p = pipeline(&fx);
    p.remote.server = Box::new(ShareFetcher::new(fx.path("gone")));
    let report = p.run(&set(vec![a.clone()]), t0()).unwrap();
    assert!(matches!(one(&report), Outcome::Waiting(_)), "{report:?}");
    assert_eq!(
        update_of(&fx, &a).reason.as_deref(),
        Some("waiting for user consent (optional update)")
    );
    assert_eq!(fx.event_kinds(), ["update_staged"]);

    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let release = fx.import((2, 0, 0), 0);
    std::fs::create_dir_all(fx.path("empty")).unwrap();
    let a = fx.assignment(&release, DeploymentType::Automatic, web("empty"), true);
    let report = pipeline(&fx).run(&set(vec![a.clone()]), t0()).unwrap();
    assert_eq!(
        one(&report),
        Outcome::Installed {
            version: "2.0.0".into()
        }
    );
    let events = fx.state.pending_events(100).unwrap();
    assert_eq!(events[0].kind, "tamper_detected");
    let reason = events[0].detail["reason"].as_str().unwrap();
    // The mirror's own metadata is read first: an empty mirror has none.
    assert!(reason.starts_with("mirror empty: metadata: "), "{reason}");
    assert!(reason.contains("empty/metadata/timestamp.json"), "{reason}");
    assert_eq!(events[0].detail["source"], "metadata");
    assert_eq!(
        fx.event_kinds()[1..],
        ["update_staged", "update_started", "update_succeeded"]
    );
}

#[test]
fn a_staged_image_changed_on_disk_is_never_flashed() {
    let (fx, a) = silent_at_night();
    let mut p = fx.pipeline();
    // Staged and verified at noon, waiting for the window.
    let report = p.run(&set(vec![a.clone()]), t0()).unwrap();
    assert!(matches!(one(&report), Outcome::Waiting(_)), "{report:?}");
    let staged = p.staging.staged(&a.sha256).unwrap();
    let mut bytes = std::fs::read(&staged).unwrap();
    bytes[200] ^= 0x40;
    std::fs::write(&staged, &bytes).unwrap();
    // In the window: hashed again before flashing, refused, removed.
    let inside = Utc.with_ymd_and_hms(2026, 11, 21, 1, 30, 0).unwrap();
    let Outcome::Failed(why) = one(&p.run(&set(vec![a.clone()]), inside).unwrap()) else {
        panic!()
    };
    assert!(
        why.contains("changed on disk since it was verified"),
        "{why}"
    );
    assert_eq!(fx.version_on_bus(), "1.0.0");
    assert!(p.staging.staged(&a.sha256).is_none());
    let events = fx.state.pending_events(100).unwrap();
    let tamper = events.iter().find(|e| e.kind == "tamper_detected").unwrap();
    assert_eq!(tamper.detail["source"], "staged");
    // The next pass downloads and verifies it again, and installs.
    let later = inside + Duration::minutes(5);
    assert_eq!(
        one(&p.run(&set(vec![a.clone()]), later).unwrap()),
        Outcome::Installed {
            version: "2.0.0".into()
        }
    );
}

#[test]
fn an_older_version_is_installed_only_when_the_assignment_allows_it() {
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    assert_eq!(fx.version_on_bus(), "1.0.0");
    let older = fx.import((0, 9, 0), 0);
    let mut a = fx.assignment(
        &older,
        DeploymentType::Automatic,
        DownloadSource::Server,
        false,
    );
    let Outcome::Failed(why) = one(&fx.pipeline().run(&set(vec![a.clone()]), t0()).unwrap()) else {
        panic!()
    };
    assert!(
        why.contains("version 0.9.0 is older than the 1.0.0"),
        "{why}"
    );
    assert_eq!(fx.event_kinds(), ["update_failed"]);
    assert_eq!(fx.version_on_bus(), "1.0.0");
    // Allowed (signed into the assignment): installed, and recorded.
    a.allow_downgrade = true;
    let later = t0() + Duration::minutes(1);
    assert_eq!(
        one(&fx.pipeline().run(&set(vec![a.clone()]), later).unwrap()),
        Outcome::Installed {
            version: "0.9.0".into()
        }
    );
    let events = fx.state.pending_events(100).unwrap();
    let started = events.iter().find(|e| e.kind == "update_started").unwrap();
    assert_eq!(started.detail["downgrade_from"], "1.0.0");
}
