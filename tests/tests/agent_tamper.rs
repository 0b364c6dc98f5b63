//! A tampered or stale network share, end to end: the real `updater-server`
//! assigns firmware from a share (no fallback to the server), the real
//! `update-agent check-now` refuses what the share holds, says why in its
//! status, and the server's events carry the same reason as
//! `tamper_detected`. The agent library's own tests cover the same cases
//! with an injected `now` (`pipeline::download::tests`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use catalog::tuf::{Ed25519Signer, Signed, Timestamp};
use dfu::file::DfuFile;
use serde_json::{json, Value};
use test_devices::image::{build, test_payload};
use test_devices::FirmwareVersion;
use tests::{agent_command, copy_dir, server_cli, text, Server};

const PASSWORD: &str = "correct horse battery staple";

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            files(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

fn target_file(share: &Path, version: &str) -> PathBuf {
    let mut all = Vec::new();
    files(&share.join("targets"), &mut all);
    all.into_iter()
        .find(|p| p.to_string_lossy().contains(&format!("/{version}/")))
        .unwrap()
}

fn firmware(dir: &Path, version: (u8, u8, u16)) -> PathBuf {
    let image = build(
        0x0003,
        FirmwareVersion::new(version.0, version.1, version.2),
        &test_payload(9_000, version.1),
    );
    let path = dir.join(format!("fw-{}.{}.{}.dfu", version.0, version.1, version.2));
    fs::write(
        &path,
        DfuFile::new_raw(0x1209, 0x0003, 0xffff, image).to_bytes(),
    )
    .unwrap();
    path
}

fn import(data: &Path, fw: &Path, version: &str) {
    tests::import_headset(data, fw, version, &[]);
}

struct Case {
    name: &'static str,
    tamper: fn(&Path, &Path),
    reason: &'static str,
    source: &'static str,
}

fn agent(config: &Path, state: &Path, args: &[&str]) -> Command {
    let mut cmd = agent_command(config, state, args);
    cmd.env("USER", "ann");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

#[test]
fn each_kind_of_tampered_share_is_refused_with_its_reason_in_status_and_server_events() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    import(&data, &firmware(dir, (1, 5, 0)), "1.5.0");
    // Before the shares are exported: the tenant's key endorsement is a new
    // targets version, which a share exported earlier would not have.
    let created = tests::tenant_with_admin(&data, "Acme", "ann@acme.example", PASSWORD);
    let old_share = dir.join("old-share");
    server_cli(
        &data,
        &["catalog", "mirror", old_share.to_str().unwrap()],
        None,
    );
    import(&data, &firmware(dir, (2, 0, 0)), "2.0.0");
    let fresh_share = dir.join("fresh-share");
    server_cli(
        &data,
        &["catalog", "mirror", fresh_share.to_str().unwrap()],
        None,
    );
    let server = Server::start(&data);
    let admin = tests::Admin::login(&server.base, &created.id, "ann@acme.example", PASSWORD);
    let (http, token) = (&admin.http, &admin.token);
    let api = |path: &str| format!("{}/api/v1/tenants/{}/{path}", server.base, created.id);
    let share = dir.join("share");
    let resp = http
        .post(api("policies/firmware"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(
            json!({"name": "Headsets", "model": "1209:0003", "version": "2.0.0",
                   "deployment": "automatic", "enabled": true,
                   "source": {"kind": "share", "path": share.to_str().unwrap()},
                   "fallback_to_server": false})
            .to_string(),
        )
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().unwrap());

    let cases = [
        Case {
            name: "bit-flip",
            tamper: |share, _| {
                let t = target_file(share, "2.0.0");
                let mut b = fs::read(&t).unwrap();
                b[300] ^= 0x04;
                fs::write(&t, b).unwrap();
            },
            reason: "does not match its signed sha256",
            source: "image",
        },
        Case {
            name: "truncation",
            tamper: |share, _| {
                let t = target_file(share, "2.0.0");
                let b = fs::read(&t).unwrap();
                fs::write(&t, &b[..b.len() / 2]).unwrap();
            },
            reason: "source ended after",
            source: "image",
        },
        Case {
            name: "swapped-blob",
            tamper: |share, _| {
                fs::copy(target_file(share, "1.5.0"), target_file(share, "2.0.0")).unwrap();
            },
            reason: "does not match its signed sha256",
            source: "image",
        },
        Case {
            name: "rolled-back-metadata",
            tamper: |share, old| {
                fs::remove_dir_all(share.join("metadata")).unwrap();
                copy_dir(&old.join("metadata"), &share.join("metadata"));
            },
            reason: "rollback: version",
            source: "metadata",
        },
        Case {
            name: "expired-metadata",
            tamper: |share, keys| {
                // A newer timestamp, correctly signed, that expired an hour ago.
                let path = share.join("metadata/timestamp.json");
                let mut ts =
                    Signed::<Timestamp>::from_slice("timestamp", &fs::read(&path).unwrap())
                        .unwrap()
                        .signed;
                ts.version += 1;
                ts.expires =
                    (std::time::SystemTime::now() - std::time::Duration::from_secs(3600)).into();
                let key = Ed25519Signer::load(&keys.join("timestamp.pem")).unwrap();
                fs::write(
                    &path,
                    Signed::sign(ts, &[&key]).unwrap().to_json_bytes().unwrap(),
                )
                .unwrap();
            },
            reason: "timestamp: expired at",
            source: "metadata",
        },
    ];
    for (i, case) in cases.iter().enumerate() {
        if share.exists() {
            fs::remove_dir_all(&share).unwrap();
        }
        copy_dir(&fresh_share, &share);
        let aux = if case.source == "metadata" && case.name.starts_with("rolled") {
            old_share.clone()
        } else {
            data.join("keys")
        };
        (case.tamper)(&share, &aux);

        // A new host with its own headset for each case.
        let serial = format!("HS-{i}");
        let config = dir.join(format!("{}.toml", case.name));
        fs::write(
            &config,
            format!(
                "server_url = \"{}\"\nbackend = \"simulated\"\n\n\
                 [[simulated.devices]]\nprofile = \"headset_tolerant\"\nserial = \"{serial}\"\n",
                server.base
            ),
        )
        .unwrap();
        let state = dir.join(format!("state-{}", case.name));
        let out = run(
            agent(&config, &state, &["enroll", "--tenant-id", &created.id])
                .args(["--machine-fingerprint", &format!("fp-{i}")])
                .env("TENANT_TOKEN", &created.enrollment_token),
        );
        assert!(out.status.success(), "{}: {}", case.name, text(&out.stderr));

        let out = run(&mut agent(&config, &state, &["check-now"]));
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{}: {stdout}", case.name);
        assert!(stdout.contains(case.reason), "{}: {stdout}", case.name);
        assert!(
            stdout.contains("(no fallback to the server)"),
            "{}: {stdout}",
            case.name
        );

        // The agent's status says why.
        let out = run(&mut agent(&config, &state, &["status", "--json"]));
        let status: Value = serde_json::from_slice(&out.stdout).unwrap();
        let pending = status["pending_updates"].as_array().unwrap();
        assert_eq!(pending.len(), 1, "{}: {status}", case.name);
        assert_eq!(pending[0]["status"], "failed", "{}: {status}", case.name);
        let why = pending[0].to_string();
        assert!(why.contains(case.reason), "{}: {why}", case.name);
        assert_eq!(status["pending_events"], 0, "{}: {status}", case.name);

        // The server's events carry the refusal.
        let device = format!("1209/serial/{serial}");
        let resp = http
            .get(api(&format!("events?since=0&limit=100&device={device}")))
            .bearer_auth(token)
            .send()
            .unwrap();
        let events: Value = serde_json::from_slice(&resp.bytes().unwrap()).unwrap();
        let items = events["items"].as_array().unwrap();
        let tamper: Vec<&Value> = items
            .iter()
            .filter(|e| e["event"]["kind"] == "tamper_detected")
            .collect();
        assert_eq!(tamper.len(), 1, "{}: {events}", case.name);
        let detail = &tamper[0]["event"];
        assert_eq!(detail["source"], case.source, "{}: {detail}", case.name);
        assert!(
            detail["reason"].as_str().unwrap().contains(case.reason),
            "{}: {detail}",
            case.name
        );
        let failed = items
            .iter()
            .filter(|e| e["event"]["kind"] == "update_failed")
            .count();
        assert_eq!(failed, 1, "{}: {events}", case.name);
    }
    drop(server);
}
