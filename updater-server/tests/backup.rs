//! `backup` while the server runs and writes, and `restore`: the restored
//! directory serves the same admins, groups, agents and catalog, and what
//! the backup's manifest says is what is restored. Refusals write nothing.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::blocking::Client;
use serde_json::{json, Value};
use support::{create_admin, create_tenant, login, start, updater};

fn run(data: &Path, args: &[&str]) -> std::process::Output {
    updater(data).args(args).output().unwrap()
}

fn ok(data: &Path, args: &[&str]) -> String {
    let out = run(data, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(data: &Path, args: &[&str]) -> String {
    let out = run(data, args);
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn check_in_body(n: u64) -> Value {
    json!({"agent_version": format!("0.1.{n}"), "platform": "linux", "hostname": "ws-1",
        "users": [{"account": "ann"}],
        "devices": [{"vendor_id": 0x047f, "product_id": 0xc056, "bcd_device": 0x0100,
            "serial": format!("S{n}"), "port_path": "1-4", "firmware_version": "0.9",
            "dfu": "runtime", "telephony": true, "in_call": false}]})
}

/// A scratch directory with a data directory holding one release, and the
/// release's file.
fn data_with_a_release() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let fw = dir.path().join("fw.bin");
    std::fs::write(&fw, vec![7u8; 8192]).unwrap();
    support::import_voyager(&data, &fw);
    (dir, data, fw)
}

/// `backup` and `restore` copy the embedded store. When the server's tests
/// run on PostgreSQL (`UPDATER_TEST_STORE=postgres`), this file checks
/// instead that both refuse and name the database's own tools.
fn refused_on_postgres() -> bool {
    if !support::store_is_postgres() {
        return false;
    }
    let (dir, data, _) = data_with_a_release();
    let dest = dir.path().join("backup");
    let said = refused(&data, &["backup", dest.to_str().unwrap()]);
    assert!(said.contains("pg_dump"), "{said}");
    assert!(!dest.exists());
    let said = refused(
        &dir.path().join("new"),
        &["restore", dest.to_str().unwrap()],
    );
    assert!(said.contains("pg_restore"), "{said}");
    true
}

#[test]
fn a_backup_taken_while_serving_restores_and_serves() {
    if refused_on_postgres() {
        return;
    }
    let (dir, data, _) = data_with_a_release();
    let (tenant, token) = create_tenant(&data, "Acme");
    create_admin(&data, &tenant, "ann@acme.example", "full");
    let server = start(&data, &[], &[]);
    let base = server.base.clone();
    let http = Client::new();
    let session = login(&http, &base, &tenant, "ann@acme.example");
    let agents: Vec<(String, String)> = (0..3)
        .map(|n| support::enroll(&http, &base, &tenant, &token, &format!("{{SYS-{n}}}")))
        .collect();

    // Writes go on while the backups are taken: groups over the API and
    // check-ins with new reports.
    let stop = AtomicBool::new(false);
    let (first_write, written) = std::sync::mpsc::channel();
    let backups: Vec<_> = (0..3)
        .map(|n| dir.path().join(format!("backup-{n}")))
        .collect();
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let r = http
                    .post(format!("{base}/api/v1/tenants/{tenant}/groups"))
                    .bearer_auth(&session)
                    .json(&json!({"name": format!("Group {n}"), "membership": {"kind": "manual"}}))
                    .send()
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.text().unwrap());
                let (agent, credential) = &agents[(n % 3) as usize];
                let r = http
                    .post(format!("{base}/api/v1/agents/{agent}/checkin"))
                    .bearer_auth(credential)
                    .json(&check_in_body(n))
                    .send()
                    .unwrap();
                assert_eq!(r.status(), 200);
                if n == 0 {
                    first_write.send(()).unwrap();
                }
                n += 1;
            }
            n
        });
        // Something is in the store before the first backup begins.
        written.recv().unwrap();
        // The writer stops even when an assertion below fails (else the
        // scope would wait for it forever).
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&stop);
        for b in &backups {
            let said = ok(&data, &["backup", b.to_str().unwrap()]);
            assert!(
                said.starts_with(&format!("backup in {}", b.display())),
                "{said}"
            );
        }
        stop.store(true, Ordering::Relaxed);
        let writes = writer.join().unwrap();
        assert!(writes > 0);
    });
    drop(server);

    // Each backup restores; the newest one serves what it holds.
    for (i, b) in backups.iter().enumerate() {
        let restored = dir.path().join(format!("restored-{i}"));
        let said = ok(&restored, &["restore", b.to_str().unwrap()]);
        assert!(said.contains("every blob verified"), "{said}");
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(b.join("BACKUP.json")).unwrap()).unwrap();
        let server = start(&restored, &[], &[]);
        let base = server.base.clone();
        let session = login(&http, &base, &tenant, "ann@acme.example");
        let groups: Value = http
            .get(format!("{base}/api/v1/tenants/{tenant}/groups"))
            .bearer_auth(&session)
            .send()
            .unwrap()
            .json()
            .unwrap();
        // The listing has the built-in All Users beside the stored groups.
        let stored = groups
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["name"].as_str().unwrap().starts_with("Group "))
            .count() as u64;
        assert_eq!(
            stored,
            manifest["store"]["groups"].as_u64().unwrap(),
            "backup {i}: the groups the manifest counted"
        );
        assert!(stored > 0, "backup {i} was taken while groups were written");
        // The agents' credentials work against the restored server.
        for (agent, credential) in &agents {
            let r = http
                .post(format!("{base}/api/v1/agents/{agent}/checkin"))
                .bearer_auth(credential)
                .json(&check_in_body(1000))
                .send()
                .unwrap();
            assert_eq!(r.status(), 200, "backup {i}");
        }
        let timestamp = http
            .get(format!("{base}/repo/metadata/timestamp.json"))
            .send()
            .unwrap();
        assert_eq!(timestamp.status(), 200);
    }
}

#[test]
fn backup_and_restore_refuse_to_overwrite_or_restore_damage() {
    if refused_on_postgres() {
        return;
    }
    let (dir, data, fw) = data_with_a_release();
    create_tenant(&data, "Acme");

    // A destination with something in it is left alone.
    let busy = dir.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("keep.txt"), b"mine").unwrap();
    let err = refused(&data, &["backup", busy.to_str().unwrap()]);
    assert!(err.contains("is not empty; nothing was written"), "{err}");
    assert_eq!(std::fs::read(busy.join("keep.txt")).unwrap(), b"mine");

    let good = dir.path().join("good");
    ok(&data, &["backup", good.to_str().unwrap()]);
    // Restoring over a data directory in use is refused.
    let err = refused(&data, &["restore", good.to_str().unwrap()]);
    assert!(err.contains("is not empty; nothing was written"), "{err}");

    // A damaged blob, a store that lost records, a directory that is no
    // backup: refused, and the target is not created.
    let damaged = dir.path().join("damaged");
    ok(&data, &["backup", damaged.to_str().unwrap()]);
    let sha = hex_sha256(&std::fs::read(&fw).unwrap());
    let blob = damaged.join(format!("catalog/blobs/sha256/{}/{sha}", &sha[..2]));
    std::fs::remove_file(&blob).unwrap();
    std::fs::write(&blob, vec![8u8; 4096]).unwrap();
    let short = dir.path().join("short");
    ok(&data, &["backup", short.to_str().unwrap()]);
    let path = short.join("BACKUP.json");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    manifest["store"]["tenants"] = json!(2);
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let keyless = dir.path().join("keyless");
    ok(&data, &["backup", keyless.to_str().unwrap()]);
    std::fs::remove_file(keyless.join("keys/timestamp.pem")).unwrap();
    let linked = dir.path().join("linked");
    ok(&data, &["backup", linked.to_str().unwrap()]);
    std::os::unix::fs::symlink("/etc/hostname", linked.join("keys/extra.pem")).unwrap();
    for (backup, words) in [
        (&damaged, "damaged blob"),
        (&keyless, "key files: "),
        (&linked, "is a symbolic link"),
        (
            &short,
            "table tenants: 1 records, the backup's manifest says 2",
        ),
        (&busy, "is not a backup"),
    ] {
        let target = dir.path().join("target");
        let err = refused(&target, &["restore", backup.to_str().unwrap()]);
        assert!(err.contains(words), "{backup:?}: {err}");
        assert!(!target.exists(), "{backup:?}: nothing written");
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
