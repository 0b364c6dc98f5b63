//! The publishing side: layout, key files, open, publish, timestamp refresh,
//! root rotation, and signature checks over the exact received `signed` object.

#[path = "interop/tuf_common.rs"]
mod common;

use std::collections::BTreeMap;

use catalog::tuf::{
    canonical_json, consistent_target_path, Ed25519Signer, Repository, Root, Signed, Snapshot,
    TargetFile, Timestamp, TufError,
};
use chrono::Duration;
use common::{t0, Env};
use sha2::{Digest, Sha256};

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn create_layout_and_key_files() {
    let env = Env::new();
    assert_eq!(
        files(&env.md()),
        [
            "1.root.json",
            "1.snapshot.json",
            "1.targets.json",
            "root.json",
            "timestamp.json"
        ]
    );
    assert_eq!(
        files(&env.keys_dir()),
        ["root.pem", "snapshot.pem", "targets.pem", "timestamp.pem"]
    );
    #[cfg(unix)]
    for f in files(&env.keys_dir()) {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.keys_dir().join(&f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let root: Root = env.load("root.json");
    assert!(root.consistent_snapshot);
    assert_eq!(root.version, 1);
    assert_eq!(root.expires, t0() + Duration::days(365));
    assert_eq!(root.keys.len(), 4);
    for role in ["root", "targets", "snapshot", "timestamp"] {
        let r = &root.roles[role];
        assert_eq!(r.threshold, 1);
        assert_eq!(r.keyids, [env.signer(role).key_id().to_string()]);
    }
    let ts: Timestamp = env.load("timestamp.json");
    assert_eq!(ts.expires, t0() + Duration::days(1));
    // Timestamp pins snapshot length and sha256.
    let snap_bytes = env.read_md("1.snapshot.json");
    let m = ts.snapshot_meta();
    assert_eq!(m.length, Some(snap_bytes.len() as u64));
    assert_eq!(
        m.hashes.as_ref().unwrap()["sha256"],
        hex::encode(Sha256::digest(&snap_bytes))
    );
    // No repository over an existing one; keys never inside the repository.
    assert!(Repository::create(&env.repo_dir(), &env.keys_dir(), t0()).is_err());
    let tmp = tempfile::tempdir().unwrap();
    let err = Repository::create(tmp.path(), &tmp.path().join("keys"), t0()).unwrap_err();
    assert!(matches!(err, TufError::Key { .. }), "{err}");
}

#[test]
fn publish_then_open() {
    let mut env = Env::new();
    env.publish(&[("fw/a.bin", b"one")], t0());
    env.publish(
        &[("fw/a.bin", b"two"), ("fw/b.bin", b"three")],
        t0() + Duration::hours(2),
    );
    assert_eq!(env.repo.current_targets().version, 3);
    assert_eq!(env.repo.snapshot().version, 3);
    assert_eq!(env.repo.timestamp().version, 3);
    for f in [
        "1.targets.json",
        "2.targets.json",
        "3.targets.json",
        "3.snapshot.json",
    ] {
        assert!(env.md().join(f).exists(), "{f}");
    }
    let snap: Snapshot = env.load("3.snapshot.json");
    let tb = env.read_md("3.targets.json");
    assert_eq!(snap.meta["targets.json"].length, Some(tb.len() as u64));
    let reopened = Repository::open(&env.repo_dir(), &env.keys_dir()).unwrap();
    assert_eq!(reopened.current_targets(), env.repo.current_targets());
    assert_eq!(reopened.timestamp().version, 3);
    let t = &reopened.current_targets().targets["fw/b.bin"];
    assert_eq!(t.length, 5);
    assert_eq!(t.custom, Some(serde_json::json!({"hw": "1209:0001"})));
    // The client sees the newest content.
    assert_eq!(
        env.fetch_target("fw/a.bin", t0() + Duration::hours(3))
            .unwrap(),
        b"two"
    );
}

#[test]
fn a_foreign_key_is_never_used_and_named_when_signing_fails() {
    let env = Env::new();
    Ed25519Signer::generate()
        .unwrap()
        .save(&env.keys_dir().join("snapshot.pem"))
        .unwrap();
    let mut repo = Repository::open(&env.repo_dir(), &env.keys_dir()).unwrap();
    assert!(!repo.can_sign("snapshot"));
    let err = repo
        .publish_targets(BTreeMap::new(), t0() + Duration::hours(1))
        .unwrap_err();
    assert!(
        matches!(&err, TufError::MissingKeys { role, found: 0, foreign, .. }
            if role == "snapshot" && foreign.contains("snapshot.pem holds key")),
        "{err}"
    );
}

#[test]
fn publish_refuses_unsafe_or_unhashed_targets() {
    let mut env = Env::new();
    let tf = TargetFile::from_data(b"x", None);
    let err = env
        .repo
        .publish_targets(BTreeMap::from([("../x".to_string(), tf.clone())]), t0())
        .unwrap_err();
    assert!(matches!(err, TufError::UnsafeName { .. }), "{err}");
    let mut no_sha = tf;
    no_sha.hashes = BTreeMap::from([("sha512".to_string(), "00".repeat(64))]);
    let err = env
        .repo
        .publish_targets(BTreeMap::from([("x".to_string(), no_sha)]), t0())
        .unwrap_err();
    assert!(matches!(err, TufError::Malformed { .. }), "{err}");
    assert_eq!(env.repo.current_targets().version, 1);
}

#[test]
fn refresh_timestamp_resigns_only_when_due() {
    let mut env = Env::new();
    env.publish(&[("fw/a.bin", b"one")], t0());
    let (ts, sn, tg) = (2, 2, 2);
    assert!(!env
        .repo
        .refresh_timestamp(t0() + Duration::hours(11))
        .unwrap());
    assert_eq!(env.repo.timestamp().version, ts);
    // Less than half of the 1-day timestamp period left: new timestamp only.
    let at = t0() + Duration::hours(13);
    assert!(env.repo.refresh_timestamp(at).unwrap());
    assert_eq!(env.repo.timestamp().version, ts + 1);
    assert_eq!(env.repo.timestamp().expires, at + Duration::days(1));
    assert_eq!(env.repo.snapshot().version, sn);
    // Snapshot (7 days) due after 3.5 days: snapshot and timestamp.
    let at = t0() + Duration::days(4);
    assert!(env.repo.refresh_timestamp(at).unwrap());
    assert_eq!(env.repo.snapshot().version, sn + 1);
    assert_eq!(env.repo.timestamp().version, ts + 2);
    assert_eq!(env.repo.current_targets().version, tg);
    assert_eq!(
        env.fetch_target("fw/a.bin", at + Duration::hours(1))
            .unwrap(),
        b"one"
    );
    // Targets (90 days) due after 45 days: everything.
    let at = t0() + Duration::days(46);
    assert!(env.repo.refresh_timestamp(at).unwrap());
    assert_eq!(env.repo.current_targets().version, tg + 1);
    assert_eq!(
        env.fetch_target("fw/a.bin", at + Duration::hours(1))
            .unwrap(),
        b"one"
    );
}

#[test]
fn root_rotation_chains_and_retires_keys() {
    let mut env = Env::new();
    env.publish(&[("fw/a.bin", b"one")], t0());
    env.client().refresh(t0()).unwrap();
    let old_root = env.signer("root").key_id().to_string();
    let old_targets = env.signer("targets").key_id().to_string();
    env.repo.rotate_root(&["root", "targets"], t0()).unwrap();
    let r2: Root = env.load("2.root.json");
    assert_eq!(r2.version, 2);
    assert_eq!(env.load::<Root>("root.json"), r2);
    let new_root = env.signer("root").key_id().to_string();
    assert_ne!(new_root, old_root);
    assert_eq!(r2.roles["root"].keyids, std::slice::from_ref(&new_root));
    assert!(!r2.keys.contains_key(&old_targets));
    let signed = Signed::<Root>::from_slice("root", &env.read_md("2.root.json")).unwrap();
    let ids: Vec<&str> = signed.signatures.iter().map(|s| s.keyid.as_str()).collect();
    assert_eq!(ids, [old_root.as_str(), new_root.as_str()]);
    assert!(env.keys_dir().join("root.pem.retired-v1").exists());
    assert!(env.keys_dir().join("targets.pem.retired-v1").exists());
    // Targets were re-signed with the new key; the client chains 1 -> 2.
    assert_eq!(env.repo.current_targets().version, 3);
    let mut c = env.client();
    c.refresh(t0() + Duration::hours(1)).unwrap();
    assert_eq!(c.root().version, 2);
    assert_eq!(c.targets().unwrap().version, 3);
    // The repository reopens with the rotated keys.
    Repository::open(&env.repo_dir(), &env.keys_dir()).unwrap();
}

#[test]
fn signatures_cover_unknown_fields_as_received() {
    let env = Env::new();
    let signer = env.signer("timestamp");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&env.read_md("timestamp.json")).unwrap();
    doc["signed"]["x-vendor-field"] = serde_json::json!({"b": [1, 2], "a": "é"});
    let sig = signer.sign(&canonical_json(&doc["signed"]).unwrap());
    doc["signatures"] = serde_json::json!([sig]);
    let bytes = serde_json::to_vec(&doc).unwrap();
    let parsed = Signed::<Timestamp>::from_slice("timestamp", &bytes).unwrap();
    assert_eq!(
        parsed.signed.extra["x-vendor-field"],
        serde_json::json!({"b": [1, 2], "a": "é"})
    );
    let root: Root = env.load("root.json");
    let r = &root.roles["timestamp"];
    parsed
        .verify("timestamp", &root.keys, &r.keyids, r.threshold)
        .unwrap();
    // Dropping the unknown field invalidates the signature.
    doc["signed"]
        .as_object_mut()
        .unwrap()
        .remove("x-vendor-field");
    let stripped =
        Signed::<Timestamp>::from_slice("timestamp", &serde_json::to_vec(&doc).unwrap()).unwrap();
    assert!(stripped
        .verify("timestamp", &root.keys, &r.keyids, r.threshold)
        .is_err());
}

#[test]
fn consistent_target_path_helper() {
    let tf = TargetFile::from_data(b"abc", None);
    assert_eq!(
        consistent_target_path("vendor/dev/fw.bin", &tf).unwrap(),
        "vendor/dev/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.fw.bin"
    );
}
