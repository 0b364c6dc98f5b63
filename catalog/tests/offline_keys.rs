//! Offline root and targets keys: the serving host holds only snapshot and
//! timestamp, a signing host signs releases and root changes, and the
//! serving host publishes only what verifies. Every way a stolen server (or
//! a tampered transfer medium) could get new firmware accepted is refused.

use std::fs;
use std::path::{Path, PathBuf};

use catalog::assignment::KeyEndorsement;
use catalog::import::ImportOptions;
use catalog::package::Urgency;
use catalog::tuf::{
    Ed25519Signer, FileFetcher, KeyPlacement, MetaFile, RootChange, Signed, Snapshot, TargetFile,
    Targets, Timestamp, TufError, Updater, UpdaterConfig,
};
use catalog::{Catalog, CatalogError};
use chrono::{DateTime, Duration, TimeZone, Utc};
use sha2::{Digest, Sha256};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn opts(version: &str, counter: u32) -> ImportOptions {
    ImportOptions {
        vendor: Some("Acme Audio".into()),
        model: Some("Voyager 8200".into()),
        hardware_ids: vec!["047F:C056".parse().unwrap()],
        version: Some(version.into()),
        security_counter: Some(counter),
        urgency: Some(Urgency::High),
        ..Default::default()
    }
}

/// A serving host (`server/`), its online keys, the offline medium
/// (`offline/keys`) and the signing host's copy of the catalog.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let site = Site { dir };
        let placement = KeyPlacement {
            online: &site.server_keys(),
            offline: Some(&site.offline_keys()),
        };
        Catalog::init_with_keys(&site.server_catalog(), placement, t0()).unwrap();
        copy_dir(&site.server_catalog(), &site.signing_catalog());
        // The client trusts root v1 as an agent pins it at enrollment.
        fs::create_dir_all(site.client_dir()).unwrap();
        fs::copy(
            site.server_catalog().join("repo/metadata/1.root.json"),
            site.client_dir().join("root.json"),
        )
        .unwrap();
        site
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn server_catalog(&self) -> PathBuf {
        self.p("server/catalog")
    }
    fn server_keys(&self) -> PathBuf {
        self.p("server/keys")
    }
    fn offline_keys(&self) -> PathBuf {
        self.p("offline/keys")
    }
    fn signing_catalog(&self) -> PathBuf {
        self.p("offline/catalog")
    }
    fn client_dir(&self) -> PathBuf {
        self.p("client")
    }
    fn server(&self) -> Catalog {
        Catalog::open(&self.server_catalog(), &self.server_keys()).unwrap()
    }
    fn signing(&self) -> Catalog {
        Catalog::open(&self.signing_catalog(), &self.offline_keys()).unwrap()
    }
    fn firmware(&self, name: &str, fill: u8) -> PathBuf {
        let p = self.p(name);
        fs::write(&p, vec![fill; 4096]).unwrap();
        p
    }
    /// What a client sees of the server: refresh and the target's bytes.
    fn client_fetch(&self, name: &str, now: DateTime<Utc>) -> Result<Vec<u8>, TufError> {
        let mut c = Updater::new(
            &self.client_dir(),
            "metadata",
            FileFetcher::new(self.server_catalog().join("repo")),
            UpdaterConfig::default(),
        )?;
        c.refresh(now)?;
        let tf = c
            .target_info(name)?
            .ok_or_else(|| TufError::TargetNotFound(name.into()))?;
        let blob = self
            .server_catalog()
            .join("blobs/sha256")
            .join(&tf.hashes["sha256"][..2])
            .join(&tf.hashes["sha256"]);
        let data = fs::read(blob).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&data)), tf.hashes["sha256"]);
        Ok(data)
    }
    fn server_state(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![self.server_catalog()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else if e.file_name() != ".lock" {
                    out.push((e.path().display().to_string(), fs::read(e.path()).unwrap()));
                }
            }
        }
        out.sort();
        out
    }
}

#[test]
fn keys_are_placed_by_role() {
    let site = Site::new();
    let names = |d: PathBuf| {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(site.server_keys()), ["snapshot.pem", "timestamp.pem"]);
    assert_eq!(names(site.offline_keys()), ["root.pem", "targets.pem"]);
    let repo = site.server().repository().unwrap();
    assert!(repo.can_sign("snapshot") && repo.can_sign("timestamp"));
    assert!(!repo.can_sign("root") && !repo.can_sign("targets"));
}

#[test]
fn releases_signed_offline_are_published_by_the_server() {
    let site = Site::new();
    let fw = site.firmware("v2.bin", 0x22);

    // The server cannot sign a release, and a refused import stores nothing.
    let before = site.server_state();
    let err = site
        .server()
        .import(&fw, &opts("2.0", 1), t0())
        .unwrap_err();
    assert!(matches!(err, CatalogError::SignedElsewhere(_)), "{err}");
    assert!(err.to_string().contains("catalog publish"), "{err}");
    assert_eq!(site.server_state(), before);

    // The signing host signs targets v2 and nothing it has no key for.
    let imported = site
        .signing()
        .import(&fw, &opts("2.0", 1), t0() + Duration::hours(1))
        .unwrap();
    let name = imported.release.target_name;
    let signing_repo = site.signing().repository().unwrap();
    assert_eq!(signing_repo.current_targets().version, 2);
    assert!(!signing_repo.targets_published());

    // Published on the server: verified, adopted, re-snapshotted.
    let mut server = site.server();
    let published = server
        .publish_from(&site.signing_catalog(), t0() + Duration::hours(2))
        .unwrap();
    assert_eq!(published.targets_version, Some(2));
    assert_eq!(published.root_version, None);
    assert_eq!(published.added, std::slice::from_ref(&name));
    assert_eq!(server.releases().len(), 1);
    assert_eq!(
        site.client_fetch(&name, t0() + Duration::hours(3)).unwrap(),
        vec![0x22; 4096]
    );
    // Publishing the same again changes nothing.
    let state = site.server_state();
    let again = server
        .publish_from(&site.signing_catalog(), t0() + Duration::hours(4))
        .unwrap();
    assert_eq!(again, catalog::Published::default());
    assert_eq!(site.server_state(), state);
    // Removal is also the signing host's.
    let err = server.remove(&name, t0()).unwrap_err();
    assert!(matches!(err, CatalogError::SignedElsewhere(_)), "{err}");
}

#[test]
fn stolen_online_keys_cannot_get_new_firmware_accepted() {
    let site = Site::new();
    let now = t0() + Duration::hours(1);
    // The attacker holds everything on the server: its keys and its files.
    let snapshot_key = Ed25519Signer::load(&site.server_keys().join("snapshot.pem")).unwrap();
    let timestamp_key = Ed25519Signer::load(&site.server_keys().join("timestamp.pem")).unwrap();
    let md = site.server_catalog().join("repo/metadata");
    let evil = vec![0xEE; 4096];
    let tf = TargetFile::from_data(&evil, None);
    let sha = tf.hashes["sha256"].clone();
    let blob_dir = site.server_catalog().join("blobs/sha256").join(&sha[..2]);
    fs::create_dir_all(&blob_dir).unwrap();
    fs::write(blob_dir.join(&sha), &evil).unwrap();

    // Forged targets v2 signed with each online key, then a genuine-looking
    // snapshot and timestamp signed with the real online keys.
    for forger in [&snapshot_key, &timestamp_key] {
        let current: Signed<Targets> =
            Signed::from_slice("targets", &fs::read(md.join("1.targets.json")).unwrap()).unwrap();
        let mut t = current.signed.clone();
        t.version = 2;
        t.expires = now + Duration::days(30);
        t.targets
            .insert("acme/evil/9.9/evil.bin".into(), tf.clone());
        let tbytes = Signed::sign(t, &[forger]).unwrap().to_json_bytes().unwrap();
        fs::write(md.join("2.targets.json"), &tbytes).unwrap();
        let ts: Signed<Timestamp> =
            Signed::from_slice("timestamp", &fs::read(md.join("timestamp.json")).unwrap()).unwrap();
        let sv = ts.signed.snapshot_meta().version;
        let mut snap: Snapshot = Signed::from_slice(
            "snapshot",
            &fs::read(md.join(format!("{sv}.snapshot.json"))).unwrap(),
        )
        .unwrap()
        .signed;
        snap.version += 1;
        snap.expires = now + Duration::days(7);
        snap.meta.insert("targets.json".into(), meta_of(&tbytes, 2));
        let sbytes = Signed::sign(snap.clone(), &[&snapshot_key])
            .unwrap()
            .to_json_bytes()
            .unwrap();
        fs::write(md.join(format!("{}.snapshot.json", snap.version)), &sbytes).unwrap();
        let mut ts = ts.signed;
        ts.version += 1;
        ts.expires = now + Duration::days(1);
        ts.meta
            .insert("snapshot.json".into(), meta_of(&sbytes, snap.version));
        let tsbytes = Signed::sign(ts, &[&timestamp_key])
            .unwrap()
            .to_json_bytes()
            .unwrap();
        fs::write(md.join("timestamp.json"), tsbytes).unwrap();

        let err = site
            .client_fetch("acme/evil/9.9/evil.bin", now)
            .unwrap_err();
        assert!(
            matches!(&err, TufError::Threshold { role, valid: 0, .. } if role == "targets"),
            "{err}"
        );
    }
    // Nor through the repository: it will not sign targets without the key.
    let mut repo =
        catalog::tuf::Repository::open(&site.server_catalog().join("repo"), &site.server_keys())
            .unwrap();
    let err = repo
        .publish_targets([("acme/evil/9.9/evil.bin".to_string(), tf)].into(), now)
        .unwrap_err();
    assert!(
        matches!(&err, TufError::MissingKeys { role, found: 0, threshold: 1, .. } if role == "targets"),
        "{err}"
    );
}

fn meta_of(bytes: &[u8], version: u64) -> MetaFile {
    MetaFile {
        version,
        length: Some(bytes.len() as u64),
        hashes: Some([("sha256".to_string(), hex::encode(Sha256::digest(bytes)))].into()),
        extra: Default::default(),
    }
}

#[test]
fn a_tampered_transfer_is_refused_and_changes_nothing() {
    type Tamper = fn(&Site, &str);
    let cases: [(&str, Tamper, &str); 7] = [
        (
            "endorsement record swapped for another key",
            |s, _| {
                let p = s.signing_catalog().join("releases.json");
                let mut index: serde_json::Value =
                    serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
                let theirs = Ed25519Signer::generate().unwrap();
                let swapped = KeyEndorsement::new(TENANT, theirs.public_key().clone()).unwrap();
                index["assignment_keys"][0] = serde_json::to_value(swapped).unwrap();
                fs::write(p, serde_json::to_vec(&index).unwrap()).unwrap();
            },
            "endorses an assignment key that the signed targets do not",
        ),
        (
            "endorsement record dropped",
            |s, _| {
                let p = s.signing_catalog().join("releases.json");
                let mut index: serde_json::Value =
                    serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
                index.as_object_mut().unwrap().remove("assignment_keys");
                fs::write(p, serde_json::to_vec(&index).unwrap()).unwrap();
            },
            "a signed target without a record in the source index",
        ),
        (
            "blob bytes replaced",
            |s, sha| {
                let p = s
                    .signing_catalog()
                    .join("blobs/sha256")
                    .join(&sha[..2])
                    .join(sha);
                fs::write(p, vec![0x66; 4096]).unwrap();
            },
            "not what was signed",
        ),
        (
            "release record changed",
            |s, _| {
                let p = s.signing_catalog().join("releases.json");
                let text = fs::read_to_string(&p).unwrap();
                fs::write(
                    p,
                    text.replace("\"security_counter\": 1", "\"security_counter\": 0"),
                )
                .unwrap();
            },
            "disagrees with its signed target",
        ),
        (
            "targets re-signed by another key",
            |s, _| {
                // v2 has the release, v3 the endorsement too.
                let p = s.signing_catalog().join("repo/metadata/3.targets.json");
                let t: Signed<Targets> =
                    Signed::from_slice("targets", &fs::read(&p).unwrap()).unwrap();
                let other = Ed25519Signer::generate().unwrap();
                let bytes = Signed::sign(t.signed, &[&other])
                    .unwrap()
                    .to_json_bytes()
                    .unwrap();
                fs::write(p, bytes).unwrap();
            },
            "signature threshold not met",
        ),
        (
            "a root not signed by the trusted root",
            |s, _| {
                let p = s.signing_catalog().join("repo/metadata/1.root.json");
                let mut r: Signed<catalog::tuf::Root> =
                    Signed::from_slice("root", &fs::read(p).unwrap()).unwrap();
                let other = Ed25519Signer::generate().unwrap();
                r.signed.version = 2;
                r.signed.roles.get_mut("root").unwrap().keyids = vec![other.key_id().into()];
                r.signed
                    .keys
                    .insert(other.key_id().into(), other.public_key().clone());
                let bytes = Signed::sign(r.signed, &[&other])
                    .unwrap()
                    .to_json_bytes()
                    .unwrap();
                fs::write(s.signing_catalog().join("repo/metadata/2.root.json"), bytes).unwrap();
            },
            "root v2 (by trusted root v1): signature threshold not met",
        ),
        (
            "blob missing",
            |s, sha| {
                fs::remove_file(
                    s.signing_catalog()
                        .join("blobs/sha256")
                        .join(&sha[..2])
                        .join(sha),
                )
                .unwrap();
            },
            "No such file",
        ),
    ];
    for (what, tamper, expect) in cases {
        let site = Site::new();
        let fw = site.firmware("v2.bin", 0x22);
        let r = site
            .signing()
            .import(&fw, &opts("2.0", 1), t0())
            .unwrap()
            .release;
        site.signing().endorse(&endorsement(), t0()).unwrap();
        tamper(&site, &r.sha256.to_hex());
        let before = site.server_state();
        let err = site
            .server()
            .publish_from(&site.signing_catalog(), t0() + Duration::hours(1))
            .expect_err(what);
        assert!(err.to_string().contains(expect), "{what}: {err}");
        assert_eq!(site.server_state(), before, "{what}: the server changed");
    }
}

const TENANT: &str = "00000000000000a1";

fn endorsement() -> KeyEndorsement {
    let key = Ed25519Signer::generate().unwrap();
    KeyEndorsement::new(TENANT, key.public_key().clone()).unwrap()
}

#[test]
fn an_assignment_key_endorsed_offline_is_published_with_its_file() {
    let site = Site::new();
    let e = endorsement();
    let err = site.server().endorse(&e, t0()).unwrap_err();
    assert!(matches!(err, CatalogError::SignedElsewhere(_)), "{err}");
    assert!(site.signing().endorse(&e, t0()).unwrap());
    assert!(!site.signing().endorse(&e, t0()).unwrap(), "the same again");
    let published = site
        .server()
        .publish_from(&site.signing_catalog(), t0())
        .unwrap();
    assert_eq!(published.targets_version, Some(2));
    let server = site.server();
    assert_eq!(server.endorsements(), std::slice::from_ref(&e));
    let repo = server.repository().unwrap();
    let sha = repo.current_targets().targets[&e.target_name()].hashes["sha256"]
        .parse()
        .unwrap();
    assert_eq!(
        fs::read(server.blobs().path_of(&sha)).unwrap(),
        e.to_bytes().unwrap()
    );
    // A gc keeps it: a signed target references it.
    site.server().gc(std::time::SystemTime::now()).unwrap();
    assert!(server.blobs().contains(&sha));
}

#[test]
fn targets_older_than_published_are_a_rollback() {
    let site = Site::new();
    let old_copy = site.p("old-copy");
    copy_dir(&site.signing_catalog(), &old_copy);
    let fw = site.firmware("v2.bin", 0x22);
    site.signing().import(&fw, &opts("2.0", 1), t0()).unwrap();
    let fw3 = site.firmware("v3.bin", 0x33);
    site.signing().import(&fw3, &opts("3.0", 2), t0()).unwrap();
    site.server()
        .publish_from(&site.signing_catalog(), t0())
        .unwrap();
    // A medium holding targets v2 (one release) after v3 was published.
    let stale = site.p("stale");
    copy_dir(&site.signing_catalog(), &stale);
    fs::remove_file(stale.join("repo/metadata/3.targets.json")).unwrap();
    let err = site.server().publish_from(&stale, t0()).unwrap_err();
    assert!(
        matches!(
            &err,
            CatalogError::Tuf(TufError::Rollback {
                trusted: 3,
                new: 2,
                ..
            })
        ),
        "{err}"
    );
}

#[test]
fn server_refreshes_online_roles_and_reports_targets_due_offline() {
    let site = Site::new();
    let mut server = site.server();
    // Day 50: targets (90 days) are due, their key is offline; snapshot and
    // timestamp are re-signed regardless, so clients keep working.
    let at = t0() + Duration::days(50);
    assert!(server.refresh_timestamp(at).unwrap());
    let repo = server.repository().unwrap();
    assert_eq!(repo.current_targets().version, 1);
    assert_eq!(repo.timestamp().expires, at + Duration::days(1));
    assert_eq!(
        repo.targets_due_offline(at),
        Some(t0() + Duration::days(90))
    );
    assert_eq!(repo.targets_due_offline(t0()), None);
    let mut c = Updater::new(
        &site.client_dir(),
        "metadata",
        FileFetcher::new(site.server_catalog().join("repo")),
        UpdaterConfig::default(),
    )
    .unwrap();
    c.refresh(at + Duration::hours(1)).unwrap();
    // The signing host re-signs targets (an empty publish), the server adopts.
    site.signing().publish(at).unwrap();
    let p = server.publish_from(&site.signing_catalog(), at).unwrap();
    assert_eq!(p.targets_version, Some(2));
    assert_eq!(server.repository().unwrap().targets_due_offline(at), None);
}

#[test]
fn thresholds_and_key_changes_on_the_signing_host() {
    let site = Site::new();
    let holder_b = site.p("holder-b");
    let holder_c = site.p("holder-c");
    let mut repo = site.signing().repository().unwrap();
    let now = t0();
    // Root 2-of-2 and targets 2-of-2, one key each on a second holder's medium.
    repo.change_root(
        RootChange::AddKey {
            role: "root",
            dir: &holder_b,
        },
        now,
    )
    .unwrap();
    // Holder B's medium is not mounted: 1 of the 2 keys the new root needs.
    let err = site
        .signing()
        .repository()
        .unwrap()
        .change_root(
            RootChange::Threshold {
                role: "root",
                threshold: 2,
            },
            now,
        )
        .unwrap_err();
    assert!(
        matches!(
            &err,
            TufError::MissingKeys {
                found: 1,
                threshold: 2,
                ..
            }
        ),
        "{err}"
    );
    let mut repo = site
        .signing()
        .with_signing_keys(std::slice::from_ref(&holder_b))
        .repository()
        .unwrap();
    let changed = repo
        .change_root(
            RootChange::Threshold {
                role: "root",
                threshold: 2,
            },
            now,
        )
        .unwrap();
    assert_eq!(changed.version, 3);
    repo.change_root(
        RootChange::AddKey {
            role: "targets",
            dir: &holder_c,
        },
        now,
    )
    .unwrap();
    // Holder C absent: targets would need re-signing by 2 keys, 1 is here.
    let err = site
        .signing()
        .with_signing_keys(std::slice::from_ref(&holder_b))
        .repository()
        .unwrap()
        .change_root(
            RootChange::Threshold {
                role: "targets",
                threshold: 2,
            },
            now,
        )
        .unwrap_err();
    assert!(
        matches!(&err, TufError::MissingKeys { role, .. } if role == "targets"),
        "{err}"
    );
    let signing = || {
        site.signing()
            .with_signing_keys(&[holder_b.clone(), holder_c.clone()])
    };
    let mut repo = signing().repository().unwrap();
    repo.change_root(
        RootChange::Threshold {
            role: "targets",
            threshold: 2,
        },
        now,
    )
    .unwrap();
    assert_eq!(repo.root().roles["targets"].threshold, 2);
    assert_eq!(repo.root().version, 5);

    // One root key alone can no longer change root; a threshold too high is refused.
    let err = site
        .signing()
        .repository()
        .unwrap()
        .change_root(RootChange::Rotate(&[]), now)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            TufError::MissingKeys {
                found: 1,
                threshold: 2,
                ..
            }
        ),
        "{err}"
    );
    let err = repo
        .change_root(
            RootChange::Threshold {
                role: "root",
                threshold: 3,
            },
            now,
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("3 signatures from 2 key(s)"),
        "{err}"
    );

    // A release needs both targets holders.
    let fw = site.firmware("v2.bin", 0x22);
    let err = site
        .signing()
        .with_signing_keys(std::slice::from_ref(&holder_b))
        .import(&fw, &opts("2.0", 1), now)
        .unwrap_err();
    assert!(matches!(err, CatalogError::SignedElsewhere(_)), "{err}");
    let name = signing()
        .import(&fw, &opts("2.0", 1), now)
        .unwrap()
        .release
        .target_name;
    let p = site
        .server()
        .publish_from(&site.signing_catalog(), now)
        .unwrap();
    assert_eq!(p.root_version, Some(5));
    assert_eq!(
        site.client_fetch(&name, now + Duration::hours(1)).unwrap(),
        vec![0x22; 4096]
    );

    // Revoking holder C's targets key (and lowering the threshold) keeps
    // the client working; the revoked key alone signs nothing trusted.
    let c_id = Ed25519Signer::load(&holder_c.join("targets.pem"))
        .unwrap()
        .key_id()
        .to_string();
    let mut repo = signing().repository().unwrap();
    repo.change_root(
        RootChange::Threshold {
            role: "targets",
            threshold: 1,
        },
        now,
    )
    .unwrap();
    repo.change_root(
        RootChange::RevokeKey {
            role: "targets",
            key_id: &c_id[..10],
        },
        now,
    )
    .unwrap();
    assert!(!repo.root().roles["targets"].keyids.contains(&c_id));
    site.server()
        .publish_from(&site.signing_catalog(), now)
        .unwrap();
    site.client_fetch(&name, now + Duration::hours(2)).unwrap();
    let mut t = repo.current_targets().clone();
    t.version += 1;
    let revoked = Ed25519Signer::load(&holder_c.join("targets.pem")).unwrap();
    let bytes = Signed::sign(t, &[&revoked])
        .unwrap()
        .to_json_bytes()
        .unwrap();
    let md = site.signing_catalog().join("repo/metadata");
    let v = repo.current_targets().version + 1;
    fs::write(md.join(format!("{v}.targets.json")), bytes).unwrap();
    let err = site
        .server()
        .publish_from(&site.signing_catalog(), now)
        .unwrap_err();
    assert!(
        err.to_string().contains("signature threshold not met"),
        "{err}"
    );
}

#[test]
fn online_key_rotation_waits_for_the_new_key_on_the_server() {
    let site = Site::new();
    let mut repo = site.signing().repository().unwrap();
    let changed = repo
        .change_root(RootChange::Rotate(&["timestamp"]), t0())
        .unwrap();
    assert_eq!(changed.online_roles_pending, ["timestamp"]);
    let new_key = site.offline_keys().join("timestamp.pem");
    assert_eq!(
        changed.new_keys,
        [("timestamp".to_string(), new_key.clone())]
    );
    // Published before the key was moved: refused, nothing changes.
    let before = site.server_state();
    let err = site
        .server()
        .publish_from(&site.signing_catalog(), t0())
        .unwrap_err();
    assert!(
        matches!(&err, CatalogError::Tuf(TufError::MissingKeys { role, foreign, .. })
            if role == "timestamp" && foreign.contains("does not name")),
        "{err}"
    );
    assert_eq!(site.server_state(), before);
    // The new key moves to the server (and off the medium): published.
    fs::rename(&new_key, site.server_keys().join("timestamp.pem")).unwrap();
    let p = site
        .server()
        .publish_from(&site.signing_catalog(), t0())
        .unwrap();
    assert_eq!(p.root_version, Some(2));
    let mut c = Updater::new(
        &site.client_dir(),
        "metadata",
        FileFetcher::new(site.server_catalog().join("repo")),
        UpdaterConfig::default(),
    )
    .unwrap();
    c.refresh(t0() + Duration::hours(1)).unwrap();
    assert_eq!(c.root().version, 2);
}

#[test]
fn a_serving_host_ignores_targets_files_its_snapshot_does_not_name() {
    let site = Site::new();
    let fw = site.firmware("v2.bin", 0x22);
    site.signing().import(&fw, &opts("2.0", 1), t0()).unwrap();
    // A targets file dropped beside the server's metadata (unsnapshotted).
    fs::copy(
        site.signing_catalog().join("repo/metadata/2.targets.json"),
        site.server_catalog().join("repo/metadata/2.targets.json"),
    )
    .unwrap();
    let server = site.server().repository().unwrap();
    assert_eq!(server.current_targets().version, 1);
    // The signing host, which has no snapshot key, follows its own.
    assert_eq!(
        site.signing()
            .repository()
            .unwrap()
            .current_targets()
            .version,
        2
    );
    // Publishing still adopts it properly.
    let p = site
        .server()
        .publish_from(&site.signing_catalog(), t0())
        .unwrap();
    assert_eq!(p.targets_version, Some(2));
}
