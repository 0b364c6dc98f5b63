//! Mirror metadata checks, download progress records and once-per-reason
//! reporting, against a real catalog exported to directories.

use std::path::Path;

use catalog::assignment::{DeploymentType, DownloadSource};
use catalog::tuf::{Ed25519Signer, FileFetcher, Signed, Timestamp};
use chrono::{DateTime, Duration, Utc};
use test_devices::ModelProfile;

use super::super::tests::{set, t0, Fx};
use super::super::{Outcome, PassReport};

fn only(report: &PassReport) -> Outcome {
    assert_eq!(report.outcomes.len(), 1, "{report:?}");
    report.outcomes.values().next().unwrap().clone()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Replaces the share's timestamp with version+1 signed by the repository's
/// timestamp key, expiring at `expires`.
fn newer_timestamp_expiring(fx: &Fx, expires: DateTime<Utc>) {
    let path = fx.path("share/metadata/timestamp.json");
    let mut ts = Signed::<Timestamp>::from_slice("timestamp", &std::fs::read(&path).unwrap())
        .unwrap()
        .signed;
    ts.version += 1;
    ts.expires = expires;
    let key = Ed25519Signer::load(&fx.path("keys/timestamp.pem")).unwrap();
    let bytes = Signed::sign(ts, &[&key]).unwrap().to_json_bytes().unwrap();
    std::fs::write(&path, bytes).unwrap();
}

type Tamper = fn(&Fx);

#[test]
fn a_tampered_or_stale_share_is_refused_with_its_reason_and_reported_once() {
    // (case, what is done to the share, pass time, reason, tamper source)
    let cases: [(&str, Tamper, Duration, &str, &str); 6] = [
        (
            "bit flip",
            |fx| {
                let t = &fx.share_targets()[0];
                let mut b = std::fs::read(t).unwrap();
                b[200] ^= 0x01;
                std::fs::write(t, b).unwrap();
            },
            Duration::zero(),
            "does not match its signed sha256",
            "image",
        ),
        (
            "truncation",
            |fx| {
                let t = &fx.share_targets()[0];
                let b = std::fs::read(t).unwrap();
                std::fs::write(t, &b[..b.len() - 10]).unwrap();
            },
            Duration::zero(),
            "source ended after",
            "image",
        ),
        (
            "swapped blob",
            |fx| {
                // Another genuine image (the 1.5.0 release) under 2.0.0's name.
                let targets = fx.share_targets();
                let (old, new): (Vec<_>, Vec<_>) = targets
                    .iter()
                    .partition(|p| p.to_string_lossy().contains("/1.5.0/"));
                std::fs::copy(old[0], new[0]).unwrap();
            },
            Duration::zero(),
            "does not match its signed sha256",
            "image",
        ),
        (
            "rolled-back metadata",
            |fx| {
                std::fs::remove_dir_all(fx.path("share/metadata")).unwrap();
                copy_dir(&fx.path("old-metadata"), &fx.path("share/metadata"));
            },
            Duration::zero(),
            "rollback: version",
            "metadata",
        ),
        (
            "expired metadata",
            |fx| newer_timestamp_expiring(fx, t0() + Duration::hours(1)),
            Duration::hours(2),
            "timestamp: expired at",
            "metadata",
        ),
        (
            "metadata unsigned by the repository's key",
            |fx| {
                let path = fx.path("share/metadata/timestamp.json");
                let text = std::fs::read_to_string(&path).unwrap();
                std::fs::write(&path, text.replacen("\"version\":", "\"version\": 1", 1)).unwrap();
            },
            Duration::zero(),
            "metadata: ",
            "metadata",
        ),
    ];
    for (case, tamper, later, want, source) in cases {
        let mut fx = Fx::new(ModelProfile::headset_tolerant());
        fx.import((1, 5, 0), 0);
        copy_dir(&fx.path("share/metadata"), &fx.path("old-metadata"));
        let release = fx.import((2, 0, 0), 0);
        tamper(&fx);
        let now = t0() + later;
        let a = fx.assignment(&release, DeploymentType::Automatic, fx.share(), false);
        let mut p = fx.pipeline();
        let report = p.run(&set(vec![a.clone()]), now).unwrap();
        let Outcome::Failed(reason) = only(&report) else {
            panic!("{case}: {report:?}");
        };
        assert!(reason.starts_with("share "), "{case}: {reason}");
        assert!(reason.contains(want), "{case}: {reason}");
        assert!(
            reason.ends_with("(no fallback to the server)"),
            "{case}: {reason}"
        );
        let events = fx.state.pending_events(100).unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["tamper_detected", "update_failed"], "{case}");
        assert_eq!(events[0].detail["source"], source, "{case}");
        assert!(
            events[0].detail["reason"].as_str().unwrap().contains(want),
            "{case}: {}",
            events[0].detail
        );
        assert_eq!(fx.version_on_bus(), "1.0.0", "{case}: nothing was flashed");

        // The same refusal at the next pass reports nothing new.
        let again = p.run(&set(vec![a.clone()]), now).unwrap();
        assert_eq!(only(&again), Outcome::Failed(reason.clone()), "{case}");
        assert_eq!(fx.state.pending_events(100).unwrap().len(), 2, "{case}");

        // With fallback allowed, the server's copy is installed.
        let mut fallback = a.clone();
        fallback.fallback_to_server = true;
        let report = fx.pipeline().run(&set(vec![fallback]), now).unwrap();
        assert_eq!(
            only(&report),
            Outcome::Installed {
                version: "2.0.0".into()
            },
            "{case}"
        );
    }
}

#[test]
fn a_failing_catalog_refresh_spools_one_update_failed_per_distinct_reason() {
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let release = fx.import((2, 0, 0), 0);
    let a = fx.assignment(
        &release,
        DeploymentType::Automatic,
        DownloadSource::Server,
        true,
    );
    let mut p = fx.pipeline();
    p.remote.metadata = Box::new(FileFetcher::new(fx.path("gone")));
    for pass in 0..3 {
        let report = p
            .run(&set(vec![a.clone()]), t0() + Duration::minutes(pass))
            .unwrap();
        assert!(matches!(only(&report), Outcome::Failed(_)), "{report:?}");
    }
    assert_eq!(fx.event_kinds(), ["update_failed"]);
    // Another reason is another event.
    std::fs::create_dir_all(fx.path("broken")).unwrap();
    std::fs::write(fx.path("broken/timestamp.json"), b"{").unwrap();
    p.remote.metadata = Box::new(FileFetcher::new(fx.path("broken")));
    p.run(&set(vec![a.clone()]), t0()).unwrap();
    p.run(&set(vec![a.clone()]), t0()).unwrap();
    assert_eq!(fx.event_kinds(), ["update_failed", "update_failed"]);
    let reasons: Vec<String> = fx
        .state
        .pending_events(10)
        .unwrap()
        .iter()
        .map(|e| e.detail["reason"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(reasons[0].contains("not found"), "{reasons:?}");
    assert!(reasons[1].contains("timestamp"), "{reasons:?}");
    // Once the catalog answers, the update goes through.
    p.remote.metadata = Box::new(FileFetcher::new(fx.path("server/metadata")));
    let report = p.run(&set(vec![a]), t0()).unwrap();
    assert!(
        matches!(only(&report), Outcome::Installed { .. }),
        "{report:?}"
    );
}

#[test]
fn a_download_records_its_progress_and_forgets_it_once_staged() {
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let release = fx.import((2, 0, 0), 0);
    let a = fx.assignment(
        &release,
        DeploymentType::Optional,
        DownloadSource::Server,
        true,
    );
    // A record from an interrupted attempt of another image length is ignored,
    // one of this image is where the download starts (nothing is on disk, so 0).
    fx.state
        .set_download(&crate::state::DownloadProgress {
            digest: a.sha256.to_hex(),
            target: a.target_name.clone(),
            length: release.size,
            received: 4096,
            updated_at: t0(),
        })
        .unwrap();
    let report = fx.pipeline().run(&set(vec![a.clone()]), t0()).unwrap();
    assert!(matches!(only(&report), Outcome::Waiting(_)), "{report:?}");
    assert!(fx.state.downloads().unwrap().is_empty());
}

#[test]
fn reasons_compare_without_the_reference_time() {
    use super::reason_key;
    let cases = [
        (
            "catalog metadata: timestamp: expired at 2026-11-20T12:00:00Z (now 2026-11-21T08:00:00Z)",
            "catalog metadata: timestamp: expired at 2026-11-20T12:00:00Z",
        ),
        ("share /s: metadata: a (now x) and b (now y)!", "share /s: metadata: a and b!"),
        ("no time here", "no time here"),
        ("unclosed (now 2026", "unclosed"),
    ];
    for (reason, key) in cases {
        assert_eq!(reason_key(reason), key, "{reason}");
    }
}
