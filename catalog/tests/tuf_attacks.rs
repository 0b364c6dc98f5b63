//! One test per attack of the TUF specification's threat list (section 1.5.2),
//! plus unsafe names, wrong root versions and wrong snapshot meta hashes.
//! Expiry of each role (indefinite freeze per role) is in `tuf_expiry.rs`.
//!
//! Slow retrieval is not covered here: the core has no clock-driven transfer,
//! so minimum-rate and timeout enforcement belongs to the caller's `Fetcher`
//! (the `tuf-client` binary sets HTTP timeouts).

#[path = "interop/tuf_common.rs"]
mod common;

use std::collections::BTreeMap;
use std::io::Write;

use catalog::tuf::{
    FetchError, Fetcher, Root, Signed, Snapshot, TargetFile, Targets, Timestamp, TufError, Updater,
    UpdaterConfig,
};
use chrono::Duration;
use common::{meta_of, t0, version_only, Env};

const FW: &[u8] = b"firmware image v1 \x00\x01\x02";

fn env_with_target() -> Env {
    let mut env = Env::new();
    env.publish(&[("fw/a.bin", FW), ("fw/b.bin", b"other firmware")], t0());
    env
}

fn now() -> chrono::DateTime<chrono::Utc> {
    t0() + Duration::hours(1)
}

#[test]
fn baseline_download_works() {
    let env = env_with_target();
    assert_eq!(env.fetch_target("fw/a.bin", now()).unwrap(), FW);
    let c = env.client();
    assert_eq!(c.root().version, 1);
    // Only unversioned names are persisted.
    let mut names: Vec<String> = std::fs::read_dir(env.client_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "root.json",
            "snapshot.json",
            "targets.json",
            "timestamp.json"
        ]
    );
    let out = std::fs::read(env.out_dir().join("fw%2Fa.bin")).unwrap();
    assert_eq!(out, FW);
}

#[test]
fn arbitrary_installation() {
    let env = env_with_target();
    // The mirror replaces the blob with attacker content of the same length.
    let evil = vec![b'X'; FW.len()];
    std::fs::write(env.blob_path("fw/a.bin"), &evil).unwrap();
    let err = env.fetch_target("fw/a.bin", now()).unwrap_err();
    assert!(
        matches!(&err, TufError::Mismatch { what, reason } if what == "target fw/a.bin" && reason.contains("sha256")),
        "{err}"
    );
    assert!(!env.out_dir().join("fw%2Fa.bin").exists());
    // A name the repository never signed is not installable at all.
    let mut c = env.client();
    c.refresh(now()).unwrap();
    assert_eq!(c.target_info("fw/evil.bin").unwrap(), None);
}

#[test]
fn endless_data() {
    let env = env_with_target();
    let mut long = FW.to_vec();
    long.extend_from_slice(&[0; 4096]);
    std::fs::write(env.blob_path("fw/a.bin"), &long).unwrap();
    let err = env.fetch_target("fw/a.bin", now()).unwrap_err();
    assert!(
        matches!(&err, TufError::Fetch { source: FetchError::TooLong { max_len, .. }, .. } if *max_len == FW.len() as u64),
        "{err}"
    );
    // Endless timestamp.json: refused at the configured bound.
    let big = vec![b' '; 20_000];
    std::fs::write(env.md().join("timestamp.json"), big).unwrap();
    let err = env.client().refresh(now()).unwrap_err();
    assert!(
        matches!(&err, TufError::Fetch { what, source: FetchError::TooLong { max_len: 16_384, .. } } if what == "timestamp"),
        "{err}"
    );
}

/// A fetcher that ignores `max_len` and writes more than asked for.
struct Greedy(catalog::tuf::FileFetcher);

impl Fetcher for Greedy {
    fn fetch(&self, url: &str, _max: u64) -> Result<Vec<u8>, FetchError> {
        self.0.fetch(url, u64::MAX)
    }
    fn fetch_to(&self, url: &str, max: u64, out: &mut dyn Write) -> Result<u64, FetchError> {
        let mut data = self.0.fetch(url, u64::MAX)?;
        data.extend_from_slice(&vec![0u8; 1000]);
        // Ignores write errors from the bounded writer and claims success.
        let _ = out.write_all(&data);
        let _ = max;
        Ok(data.len() as u64)
    }
}

#[test]
fn endless_data_from_misbehaving_fetcher() {
    let env = env_with_target();
    let mut c = Updater::new(
        &env.client_dir(),
        "metadata",
        Greedy(catalog::tuf::FileFetcher::new(env.repo_dir())),
        UpdaterConfig::default(),
    )
    .unwrap();
    c.refresh(now()).unwrap();
    let tf = c.target_info("fw/a.bin").unwrap().unwrap();
    let err = c
        .download_target("fw/a.bin", &tf, "targets", &env.out_dir())
        .unwrap_err();
    assert!(
        matches!(
            &err,
            TufError::Fetch {
                source: FetchError::TooLong { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(!env.out_dir().join("fw%2Fa.bin").exists());
    // Oversized metadata returned by `fetch` is refused as well.
    let cfg = UpdaterConfig {
        timestamp_max_length: 100,
        ..UpdaterConfig::default()
    };
    let mut c = Updater::new(
        &env.client_dir(),
        "metadata",
        Greedy(catalog::tuf::FileFetcher::new(env.repo_dir())),
        cfg,
    )
    .unwrap();
    let err = c.refresh(now()).unwrap_err();
    assert!(
        matches!(&err, TufError::Fetch { what, source: FetchError::TooLong { max_len: 100, .. } } if what == "timestamp"),
        "{err}"
    );
}

#[test]
fn extraneous_dependencies() {
    // An attacker holding only the snapshot key adds an unrelated target to
    // targets metadata and re-points snapshot at it: targets signature fails.
    let env = env_with_target();
    let mut t = env.targets_doc();
    t.version += 1;
    t.targets.insert(
        "fw/extra.bin".into(),
        TargetFile::from_data(b"malware", None),
    );
    let v = t.version;
    let attacker = catalog::tuf::Ed25519Signer::generate().unwrap();
    let bytes = env.write_signed(&format!("{v}.targets.json"), t, &[&attacker]);
    env.resnapshot(
        BTreeMap::from([("targets.json".into(), meta_of(&bytes, v))]),
        t0(),
    );
    let err = env.fetch_target("fw/extra.bin", now()).unwrap_err();
    assert!(
        matches!(&err, TufError::Threshold { role, valid: 0, threshold: 1 } if role == "targets"),
        "{err}"
    );
    assert!(!env.client_dir().join("targets.json").exists());
}

#[test]
fn fast_forward_attack_and_recovery() {
    let mut env = env_with_target();
    env.client().refresh(now()).unwrap();
    // The timestamp key leaks; the attacker publishes timestamp v1000.
    let mut ts: Timestamp = env.load("timestamp.json");
    let genuine = env.read_md("timestamp.json");
    ts.version = 1000;
    env.write_signed("timestamp.json", ts, &[&env.signer("timestamp")]);
    env.client().refresh(now()).unwrap();
    // The repository restores its timestamp: now a rollback for the client.
    std::fs::write(env.md().join("timestamp.json"), &genuine).unwrap();
    let err = env.client().refresh(now()).unwrap_err();
    assert!(
        matches!(&err, TufError::Rollback { role, trusted: 1000, .. } if role == "timestamp"),
        "{err}"
    );
    // Recovery: rotate the timestamp key in root v2. The fast-forwarded
    // timestamp no longer verifies and is discarded.
    env.repo.rotate_root(&["timestamp"], now()).unwrap();
    let mut c = env.client();
    c.refresh(now()).unwrap();
    assert_eq!(c.root().version, 2);
    assert_eq!(c.timestamp().unwrap().version, env.repo.timestamp().version);
    assert!(c.timestamp().unwrap().version < 1000);
}

#[test]
fn fast_forward_snapshot_recovery() {
    let mut env = env_with_target();
    env.client().refresh(now()).unwrap();
    // Leaked snapshot key: snapshot says targets.json is v999.
    let sv = env.repo.snapshot().version;
    let mut snap: Snapshot = env.load(&format!("{sv}.snapshot.json"));
    snap.version = sv + 1;
    snap.meta.insert("targets.json".into(), version_only(999));
    let file = format!("{}.snapshot.json", sv + 1);
    let bytes = env.write_signed(&file, snap, &[&env.signer("snapshot")]);
    env.retimestamp(meta_of(&bytes, sv + 1), t0());
    // targets v999 does not exist: refresh fails, but the snapshot was trusted.
    let err = env.client().refresh(now()).unwrap_err();
    assert!(
        matches!(&err, TufError::Fetch { what, .. } if what == "targets"),
        "{err}"
    );
    // Recovery: rotate snapshot (and timestamp) keys and publish again.
    env.repo
        .rotate_root(&["snapshot", "timestamp"], now())
        .unwrap();
    env.publish(&[("fw/a.bin", FW)], now());
    assert_eq!(env.fetch_target("fw/a.bin", now()).unwrap(), FW);
}

#[test]
fn fast_forward_targets_recovery() {
    // Spec "targets recovery": rotating the targets key alone must be enough
    // (the client drops its old targets and snapshot); rotating all online keys
    // as well must work too.
    for rotate in [&["targets"][..], &["targets", "snapshot", "timestamp"][..]] {
        let mut env = env_with_target();
        // Leaked keys: targets v50 is published and trusted.
        let mut t = env.targets_doc();
        t.version = 50;
        let bytes = env.write_signed("50.targets.json", t, &[&env.signer("targets")]);
        env.resnapshot(
            BTreeMap::from([("targets.json".into(), meta_of(&bytes, 50))]),
            t0(),
        );
        let mut c = env.client();
        c.refresh(now()).unwrap();
        assert_eq!(c.targets().unwrap().version, 50);
        // Recovery: rotate, republish with the repository's own (lower) versions.
        env.repo.rotate_root(rotate, now()).unwrap();
        env.publish(&[("fw/a.bin", FW)], now());
        let mut c = env.client();
        c.refresh(now()).unwrap();
        assert_eq!(c.root().version, 2, "{rotate:?}");
        let v = c.targets().unwrap().version;
        assert_eq!(v, env.repo.current_targets().version, "{rotate:?}");
        assert!(v < 50, "{rotate:?}");
        assert_eq!(env.fetch_target("fw/a.bin", now()).unwrap(), FW);
    }
}

#[test]
fn indefinite_freeze() {
    let env = env_with_target();
    // The attacker keeps serving today's (valid, signed) metadata forever.
    let err = env
        .fetch_target("fw/a.bin", t0() + Duration::days(2))
        .unwrap_err();
    assert!(
        matches!(&err, TufError::Expired { role, .. } if role == "timestamp"),
        "{err}"
    );
    assert!(!env.client_dir().join("timestamp.json").exists());
}

#[test]
fn mix_and_match() {
    let mut env = env_with_target();
    env.publish(&[("fw/a.bin", b"version two")], t0());
    // The mirror serves targets v2's name with targets v1's content.
    let v = env.repo.current_targets().version;
    let old = env.read_md(&format!("{}.targets.json", v - 1));
    std::fs::write(env.md().join(format!("{v}.targets.json")), &old).unwrap();
    // (v1 is longer than the signed length of v2: refused while reading.)
    let err = env.fetch_target("fw/a.bin", now()).unwrap_err();
    assert!(
        matches!(&err, TufError::Fetch { what, source: FetchError::TooLong { .. } } if what == "targets"),
        "{err}"
    );
    // Same length, other content: the hash check refuses it.
    let signed_len = env.repo.snapshot().meta["targets.json"].length.unwrap();
    let mut same_len = old.clone();
    same_len.truncate(signed_len as usize);
    std::fs::write(env.md().join(format!("{v}.targets.json")), &same_len).unwrap();
    let err = env.fetch_target("fw/a.bin", now()).unwrap_err();
    assert!(
        matches!(&err, TufError::Mismatch { what, reason } if what == "targets" && reason.contains("sha256")),
        "{err}"
    );
    std::fs::write(env.md().join(format!("{v}.targets.json")), &old).unwrap();
    // Without hashes in snapshot meta, the version check catches it.
    env.resnapshot(
        BTreeMap::from([("targets.json".into(), version_only(v))]),
        t0(),
    );
    let err = env.fetch_target("fw/a.bin", now()).unwrap_err();
    assert!(
        matches!(&err, TufError::WrongVersion { role, found, expected } if role == "targets" && *found == v - 1 && *expected == v),
        "{err}"
    );
}

#[test]
fn rollback_attack() {
    let mut env = env_with_target();
    let old_ts = env.read_md("timestamp.json");
    env.publish(&[("fw/a.bin", b"v2")], t0());
    env.client().refresh(now()).unwrap();
    let trusted = env.repo.timestamp().version;
    std::fs::write(env.md().join("timestamp.json"), old_ts).unwrap();
    let err = env.client().refresh(now()).unwrap_err();
    assert!(
        matches!(&err, TufError::Rollback { role, trusted: t, new } if role == "timestamp" && *t == trusted && *new == trusted - 1),
        "{err}"
    );
    // The trusted copy is kept.
    let local: Timestamp =
        Signed::from_slice("t", &common::read(&env.client_dir().join("timestamp.json")))
            .unwrap()
            .signed;
    assert_eq!(local.version, trusted);
}

#[test]
fn rollback_of_targets_version_in_snapshot_meta() {
    let env = env_with_target();
    env.client().refresh(now()).unwrap();
    let tv = env.repo.current_targets().version;
    assert_eq!(tv, 2);
    env.resnapshot(
        BTreeMap::from([("targets.json".into(), version_only(1))]),
        t0(),
    );
    let err = env.client().refresh(now()).unwrap_err();
    assert!(
        matches!(&err, TufError::Rollback { role, trusted: 2, new: 1 } if role == "targets.json in snapshot"),
        "{err}"
    );
}

#[test]
fn wrong_software() {
    let env = env_with_target();
    // Another genuine, signed image is served in place of the requested one.
    let other = common::read(&env.blob_path("fw/b.bin"));
    std::fs::write(env.blob_path("fw/a.bin"), other).unwrap();
    let err = env.fetch_target("fw/a.bin", now()).unwrap_err();
    assert!(
        matches!(&err, TufError::Mismatch { what, reason } if what == "target fw/a.bin" && reason.contains("length")),
        "{err}"
    );
}

#[test]
fn malicious_mirror_cannot_alter_metadata() {
    let env = env_with_target();
    env.client().refresh(now()).unwrap();
    let before = common::read(&env.client_dir().join("timestamp.json"));
    // The mirror edits timestamp.json without the key (bumps version).
    let text = String::from_utf8(env.read_md("timestamp.json")).unwrap();
    let v = env.repo.timestamp().version;
    let edited = text.replace(
        &format!("\"version\": {v}"),
        &format!("\"version\": {}", v + 1),
    );
    assert_ne!(edited, text);
    std::fs::write(env.md().join("timestamp.json"), edited).unwrap();
    let err = env.client().refresh(now()).unwrap_err();
    assert!(
        matches!(&err, TufError::Threshold { role, valid: 0, .. } if role == "timestamp"),
        "{err}"
    );
    assert_eq!(
        common::read(&env.client_dir().join("timestamp.json")),
        before
    );
}

#[test]
fn threshold_with_duplicate_keys() {
    let env = env_with_target();
    let old_root = env.signer("root");
    let second = catalog::tuf::Ed25519Signer::generate().unwrap();
    let mut root: Root = env.load("1.root.json");
    root.version = 2;
    root.keys
        .insert(second.key_id().into(), second.public_key().clone());
    let r = root.roles.get_mut("root").unwrap();
    r.keyids.push(second.key_id().into());
    r.threshold = 2;
    // One key's signature repeated: does not reach the new threshold of 2.
    let mut signed = Signed::sign(root.clone(), &[&old_root, &old_root]).unwrap();
    assert_eq!(signed.signatures.len(), 2);
    let err = signed
        .verify("root", &root.keys, &root.roles["root"].keyids, 2)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            TufError::Threshold {
                valid: 1,
                threshold: 2,
                ..
            }
        ),
        "{err}"
    );
    // As a file, a repeated keyid makes the document invalid (spec: keyids in
    // "signatures" MUST be unique), and the client keeps root v1.
    std::fs::write(
        env.md().join("2.root.json"),
        signed.to_json_bytes().unwrap(),
    )
    .unwrap();
    let mut c = env.client();
    let err = c.refresh(now()).unwrap_err();
    assert!(
        matches!(&err, TufError::Malformed { role, reason } if role == "root v2" && reason.contains("appears twice")),
        "{err}"
    );
    assert_eq!(c.root().version, 1);
    // Two distinct keys do.
    signed = Signed::sign(root, &[&old_root, &second]).unwrap();
    std::fs::write(
        env.md().join("2.root.json"),
        signed.to_json_bytes().unwrap(),
    )
    .unwrap();
    let mut c = env.client();
    c.refresh(now()).unwrap();
    assert_eq!(c.root().version, 2);
}

#[test]
fn bad_target_names_refused() {
    let env = Env::new();
    // A (validly signed) targets role lists names that would escape.
    let bad = [
        "../escape.bin",
        "/etc/passwd",
        "a\\b",
        "a//b",
        "a/./b",
        "nul\0x",
    ];
    let mut t = env.targets_doc();
    t.version += 1;
    for n in bad {
        t.targets
            .insert(n.into(), TargetFile::from_data(b"x", None));
    }
    let v = t.version;
    let bytes = env.write_signed(&format!("{v}.targets.json"), t, &[&env.signer("targets")]);
    env.resnapshot(
        BTreeMap::from([("targets.json".into(), meta_of(&bytes, v))]),
        t0(),
    );
    let mut c = env.client();
    c.refresh(now()).unwrap();
    for n in bad {
        let err = c.target_info(n).unwrap_err();
        assert!(
            matches!(&err, TufError::UnsafeName { kind: "target", .. }),
            "{n:?}: {err}"
        );
        let tf = TargetFile::from_data(b"x", None);
        let err = c
            .download_target(n, &tf, "targets", &env.out_dir())
            .unwrap_err();
        assert!(matches!(&err, TufError::UnsafeName { .. }), "{n:?}: {err}");
    }
    assert!(!env.tmp.path().join("escape.bin").exists());
}

#[test]
fn bad_delegated_role_name_refused() {
    let env = Env::new();
    let mut t = env.targets_doc();
    t.version += 1;
    t.delegations = Some(
        serde_json::from_value(serde_json::json!({
            "keys": {},
            "roles": [{"name": "..", "keyids": [], "threshold": 1, "paths": ["*"]}]
        }))
        .unwrap(),
    );
    let v = t.version;
    let bytes = env.write_signed(&format!("{v}.targets.json"), t, &[&env.signer("targets")]);
    env.resnapshot(
        BTreeMap::from([("targets.json".into(), meta_of(&bytes, v))]),
        t0(),
    );
    let mut c = env.client();
    c.refresh(now()).unwrap();
    let err = c.target_info("x.bin").unwrap_err();
    assert!(
        matches!(&err, TufError::UnsafeName { kind: "role", name, .. } if name == ".."),
        "{err}"
    );
}

#[test]
fn wrong_version_in_versioned_root() {
    let env = env_with_target();
    let mut root: Root = env.load("1.root.json");
    root.version = 3;
    let s = env.signer("root");
    env.write_signed("2.root.json", root, &[&s]);
    let err = env.client().refresh(now()).unwrap_err();
    assert!(
        matches!(&err, TufError::WrongVersion { role, found: 3, expected: 2 } if role == "2.root.json"),
        "{err}"
    );
    let local: Root = Signed::from_slice("r", &common::read(&env.client_dir().join("root.json")))
        .unwrap()
        .signed;
    assert_eq!(local.version, 1);
}

#[test]
fn wrong_hashes_in_snapshot_meta() {
    let env = env_with_target();
    let v = env.repo.current_targets().version;
    let mut m = meta_of(&env.read_md(&format!("{v}.targets.json")), v);
    m.hashes = Some(BTreeMap::from([("sha256".into(), "00".repeat(32))]));
    env.resnapshot(BTreeMap::from([("targets.json".into(), m)]), t0());
    let err = env.fetch_target("fw/a.bin", now()).unwrap_err();
    assert!(
        matches!(&err, TufError::Mismatch { what, reason } if what == "targets" && reason.contains("sha256 mismatch")),
        "{err}"
    );
}

#[test]
fn max_root_rotations_bounded() {
    let mut env = env_with_target();
    for _ in 0..5 {
        env.repo.rotate_root(&["root"], now()).unwrap();
    }
    let cfg = UpdaterConfig {
        max_root_rotations: 3,
        ..UpdaterConfig::default()
    };
    let mut c = env.client_with(cfg.clone());
    c.refresh(now()).unwrap();
    assert_eq!(c.root().version, 4);
    let mut c = env.client_with(cfg);
    c.refresh(now()).unwrap();
    assert_eq!(c.root().version, 6);
}

#[test]
fn targets_signed_by_wrong_role_key() {
    let env = env_with_target();
    let mut t: Targets = env.targets_doc();
    t.version += 1;
    let v = t.version;
    // Signed with the snapshot key, which is not a targets key.
    let bytes = env.write_signed(&format!("{v}.targets.json"), t, &[&env.signer("snapshot")]);
    env.resnapshot(
        BTreeMap::from([("targets.json".into(), meta_of(&bytes, v))]),
        t0(),
    );
    let err = env.fetch_target("fw/a.bin", now()).unwrap_err();
    assert!(
        matches!(&err, TufError::Threshold { role, valid: 0, .. } if role == "targets"),
        "{err}"
    );
}
