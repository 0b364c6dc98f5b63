//! The update pipeline end to end: the real `updater-server` with a firmware
//! release and an automatic policy, the real `update-agent` binary with a
//! simulated headset, `update-agent check-now`, and the new version seen by
//! the server.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use dfu::file::DfuFile;
use serde_json::{json, Value};
use test_devices::image::{build, test_payload};
use test_devices::FirmwareVersion;
use tests::{agent_command, bin, server_cli, text, Admin, Server};

const PASSWORD: &str = "correct horse battery staple";

fn agent(config: &Path, state: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = agent_command(config, state, args);
    cmd.env("USER", "ann").envs(env.iter().copied());
    cmd.output().unwrap()
}

/// A `.dfu` file the simulated model with runtime product id `pid` accepts.
fn firmware(dir: &Path, pid: u16, version: (u8, u8, u16)) -> std::path::PathBuf {
    let image = build(
        pid,
        FirmwareVersion::new(version.0, version.1, version.2),
        &test_payload(12_000, 9),
    );
    let path = dir.join(format!(
        "fw-{pid:04x}-{}.{}.{}.dfu",
        version.0, version.1, version.2
    ));
    fs::write(
        &path,
        DfuFile::new_raw(0x1209, pid, 0xffff, image).to_bytes(),
    )
    .unwrap();
    path
}

/// A server with two releases and policies (automatic for the headset,
/// optional for the dongle) and an enrolled agent with both devices simulated.
struct Setup {
    dir: tempfile::TempDir,
    server: Server,
    admin: Admin,
    config: std::path::PathBuf,
    state: std::path::PathBuf,
    target: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let fw = firmware(dir.path(), 0x0003, (2, 0, 0));
    let out = tests::import_headset(&data, &fw, "2.0.0", &["--security-counter", "2"]);
    let stdout = text(&out.stdout);
    let target = stdout
        .lines()
        .find_map(|l| l.strip_prefix("imported: "))
        .unwrap_or_else(|| panic!("{stdout}"))
        .trim()
        .to_owned();
    let dongle_fw = firmware(dir.path(), 0x0009, (1, 5, 0));
    server_cli(
        &data,
        &[
            "catalog",
            "import",
            dongle_fw.to_str().unwrap(),
            "--vendor",
            "Acme",
            "--model",
            "Dongle",
            "--hardware-id",
            "1209:0009",
            "--version",
            "1.5.0",
        ],
        None,
    );
    let created = tests::tenant_with_admin(&data, "Acme", "ann@acme.example", PASSWORD);
    let (tenant_id, token) = (created.id, created.enrollment_token);
    let server = Server::start(&data);
    let admin = Admin::login(&server.base, &tenant_id, "ann@acme.example", PASSWORD);
    admin.post(
        "policies/firmware",
        &json!({"name": "Headsets", "model": "1209:0003", "version": "latest",
                "deployment": "automatic", "enabled": true}),
    );
    admin.post(
        "policies/firmware",
        &json!({"name": "Dongles", "model": "1209:0009", "version": "latest",
                "deployment": "optional", "enabled": true}),
    );

    let config = dir.path().join("agent.toml");
    fs::write(
        &config,
        format!(
            "server_url = \"{}\"\nbackend = \"simulated\"\n\n\
             [[simulated.devices]]\nprofile = \"headset_tolerant\"\nserial = \"HS-0001\"\n\n\
             [[simulated.devices]]\nprofile = \"usb_dongle\"\nserial = \"DG-0001\"\n",
            server.base
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let out = agent(
        &config,
        &state,
        &["enroll", "--tenant-id", &tenant_id],
        &[("TENANT_TOKEN", &token)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    Setup {
        dir,
        server,
        admin,
        config,
        state,
        target,
    }
}

#[test]
fn check_now_installs_the_assigned_firmware_and_the_server_sees_it() {
    let Setup {
        dir: _dir,
        server: _server,
        admin,
        config,
        state,
        target,
    } = setup();
    let out = agent(&config, &state, &["check-now"], &[]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout),
        "1209/serial/DG-0001: waiting: waiting for user consent (optional update)\n\
         1209/serial/HS-0001: installed 2.0.0 (read back)\n"
    );

    // The server's inventory shows the new version, reported by the agent.
    let devices = admin.get("devices");
    let items = devices
        .as_array()
        .or_else(|| devices["items"].as_array())
        .unwrap_or_else(|| panic!("{devices}"));
    let headset = items
        .iter()
        .find(|d| d["serial"] == "HS-0001")
        .unwrap_or_else(|| panic!("{devices}"));
    assert_eq!(headset["firmware_version"], "2.0.0", "{headset}");

    // …and the update history the agent's events became.
    let history = admin.get("update-history?since=0&limit=100");
    let outcomes: Vec<(&str, &str, &str)> = history["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{history}"))
        .iter()
        .map(|i| {
            (
                i["outcome"].as_str().unwrap(),
                i["target"].as_str().unwrap(),
                i["version"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            // The optional update is staged (and waits for the user).
            ("staged", "acme/dongle/1.5.0/fw-0009-1.5.0.dfu", "1.5.0"),
            ("staged", target.as_str(), "2.0.0"),
            ("started", target.as_str(), "2.0.0"),
            ("succeeded", target.as_str(), "2.0.0")
        ]
    );

    // The agent's own view: the optional update waits for consent, and says
    // so; nothing is left to send.
    let out = agent(&config, &state, &["status", "--json"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pending = status["pending_updates"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "{status}");
    assert_eq!(pending[0]["device"], "1209/serial/DG-0001");
    assert_eq!(pending[0]["status"], "waiting");
    assert_eq!(
        pending[0]["waiting_for"],
        "waiting for user consent (optional update)"
    );
    assert_eq!(status["pending_events"], 0);
    let out = agent(&config, &state, &["status"], &[]);
    assert!(
        text(&out.stdout).contains("waiting for user consent (optional update)"),
        "{}",
        text(&out.stdout)
    );

    // An unknown credential (revoked, or replaced by a re-enrollment) is
    // refused with a clear message and exit status 1.
    fs::write(state.join("credential"), "upda_not_a_valid_credential").unwrap();
    let out = agent(&config, &state, &["check-now"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("agent credential rejected; re-enroll"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_daemon_checks_in_installs_and_reports_then_stops_on_sigterm() {
    use std::io::BufRead;
    let st = setup();
    let mut child = Command::new(bin("update-agent"))
        .arg("--config")
        .arg(&st.config)
        .arg("--state-dir")
        .arg(&st.state)
        .arg("run")
        .env("UPDATE_AGENT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let seen = |log: &[String], what: &str| log.iter().any(|l| l.contains(what));
    // Both assignments handled in the first pass (in either order).
    while !(seen(&log, "installed and read back")
        && seen(&log, "waiting: waiting for user consent (optional update)"))
    {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("agent exited early: {log:#?}"))
            .unwrap();
        log.push(line);
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status:?}: {rest:#?}");

    // The pass sent its events before the daemon went back to waiting.
    let history = st.admin.get("update-history?since=0&limit=100");
    let succeeded: Vec<&Value> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["outcome"] == "succeeded")
        .collect();
    assert_eq!(succeeded.len(), 1, "{history}");
    assert_eq!(succeeded[0]["target"], st.target.as_str());
    assert_eq!(succeeded[0]["device"], "1209/serial/HS-0001");
    let out = agent(&st.config, &st.state, &["status", "--json"], &[]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["pending_updates"].as_array().unwrap().len(), 1);
    drop(st.dir);
}

/// The prompts of a running daemon over its control socket, with the real
/// binary on both ends: `prompts --json` lists the optional dongle update,
/// `accept ID` is committed and wakes the daemon, which installs it at once.
#[test]
fn prompts_and_accept_against_a_running_daemon() {
    use std::io::BufRead;
    let st = setup();
    let mut child = Command::new(bin("update-agent"))
        .arg("--config")
        .arg(&st.config)
        .arg("--state-dir")
        .arg(&st.state)
        .arg("run")
        .env("UPDATE_AGENT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    // Reads the log until one line has all of `what`.
    let mut read_until = |log: &mut Vec<String>, what: &[&str]| {
        while !log.iter().any(|l| what.iter().all(|w| l.contains(w))) {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("agent exited early: {log:#?}"))
                .unwrap();
            log.push(line);
        }
    };
    read_until(
        &mut log,
        &["waiting: waiting for user consent (optional update)"],
    );

    let out = agent(&st.config, &st.state, &["prompts", "--json"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let prompts: Value = serde_json::from_slice(&out.stdout).unwrap();
    let prompts = prompts.as_array().unwrap();
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert_eq!(prompts[0]["kind"], "update_available");
    assert_eq!(prompts[0]["device"], "1209/serial/DG-0001");
    assert_eq!(prompts[0]["version"], "1.5.0");
    let id = prompts[0]["id"].as_str().unwrap().to_owned();

    // Unknown ids and impossible answers are refused with the reason.
    let out = agent(&st.config, &st.state, &["defer", "0000000000"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no prompt 0000000000"),
        "{}",
        text(&out.stderr)
    );

    let out = agent(&st.config, &st.state, &["accept", &id], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("{id}: Accepted")),
        "{}",
        text(&out.stdout)
    );
    read_until(&mut log, &["the user chose to accept", &id]);
    read_until(
        &mut log,
        &["installed and read back", "1209/serial/DG-0001"],
    );
    let out = agent(&st.config, &st.state, &["prompts"], &[]);
    assert_eq!(text(&out.stdout).trim(), "no prompts");

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status:?}: {rest:#?}");
    // Stopped: the socket is gone and the commands say so.
    let out = agent(&st.config, &st.state, &["prompts"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("the agent is not running"),
        "{}",
        text(&out.stderr)
    );
    drop(st.dir);
}
