//! `update-agent run`: the foreground daemon scans the (simulated) devices at
//! start, records them in its state, and exits cleanly on SIGTERM.

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;
use tests::bin;

#[test]
fn daemon_scans_at_start_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    fs::write(
        &config,
        "backend = \"simulated\"\n\
         [[simulated.devices]]\nprofile = \"headset_tolerant\"\n\
         [[simulated.devices]]\nprofile = \"desk_phone_no_pid_change\"\n",
    )
    .unwrap();
    let state = dir.path().join("state");
    let mut child = Command::new(bin("update-agent"))
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("UPDATE_AGENT_STATE_DIR", &state)
        .env("UPDATE_AGENT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    // The first scan logs each device it finds; the check-in is due at start.
    while log
        .iter()
        .filter(|l: &&String| l.contains("device attached"))
        .count()
        < 2
        || !log.iter().any(|l| l.contains("check-in due"))
    {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("agent exited early: {log:#?}"))
            .unwrap();
        log.push(line);
    }
    assert!(log.iter().any(|l| l.contains("not enrolled")), "{log:#?}");
    assert!(
        log.iter().any(|l| l.contains("update-agent running")),
        "{log:#?}"
    );

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status:?}: {rest:#?}");
    assert!(rest.iter().any(|l| l.contains("stopping")), "{rest:#?}");
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:#?}");

    // The scan was committed: status (another process) sees the history.
    let out = Command::new(bin("update-agent"))
        .arg("--config")
        .arg(&config)
        .args(["--state-dir", state.to_str().unwrap(), "status", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let devices = status["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2, "{status:#}");
    for d in devices {
        assert!(d["first_seen"].is_string(), "{d:#}");
        assert_eq!(d["first_seen"], d["last_seen"]);
    }
    assert_eq!(
        status["pending_events"], 2,
        "one device_discovered event each"
    );
    assert_eq!(status["enrollment"], Value::Null);
}
