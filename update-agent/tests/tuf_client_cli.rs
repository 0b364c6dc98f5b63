//! The `tuf-client` command-line contract (tuf-conformance CLIENT-CLI): exit
//! codes and what `init` leaves in the metadata directory.

use std::fs;
use std::process::Command;

fn tuf_client() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tuf-client"))
}

#[test]
fn init_trusts_a_valid_root_and_refuses_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let keys = dir.path().join("keys");
    let now = chrono::Utc::now();
    catalog::tuf::Repository::create(&repo, &keys, now).unwrap();
    let root = repo.join("metadata/1.root.json");

    let meta = dir.path().join("meta");
    fs::create_dir(&meta).unwrap();
    let status = tuf_client()
        .arg("--metadata-dir")
        .arg(&meta)
        .arg("init")
        .arg(&root)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        fs::read(meta.join("root.json")).unwrap(),
        fs::read(&root).unwrap()
    );

    let garbage = dir.path().join("garbage.json");
    fs::write(&garbage, b"{\"signed\": 1}").unwrap();
    let meta2 = dir.path().join("meta2");
    fs::create_dir(&meta2).unwrap();
    let out = tuf_client()
        .arg("--metadata-dir")
        .arg(&meta2)
        .arg("init")
        .arg(&garbage)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!out.stderr.is_empty());
    assert!(
        !meta2.join("root.json").exists(),
        "an untrusted root must not be stored"
    );
}

#[test]
fn refresh_without_a_server_fails_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    catalog::tuf::Repository::create(&repo, &dir.path().join("keys"), chrono::Utc::now()).unwrap();
    let meta = dir.path().join("meta");
    fs::create_dir(&meta).unwrap();
    fs::copy(repo.join("metadata/1.root.json"), meta.join("root.json")).unwrap();
    // Port 9 (discard) on loopback: nothing listens there in the test sandbox.
    let out = tuf_client()
        .arg("--metadata-dir")
        .arg(&meta)
        .args(["--metadata-url", "http://127.0.0.1:9/metadata", "refresh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!meta.join("timestamp.json").exists());
}
