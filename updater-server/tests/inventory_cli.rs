//! `updater-server inventory …`, run as the real binary next to a running
//! server that recorded a check-in: listings and the deletion rules.

mod support;

use std::path::Path;
use std::process::Output;

use reqwest::blocking::Client;
use serde_json::{json, Value};
use support::{cli_json, create_tenant, enroll, start, updater};

fn run(data: &Path, args: &[&str]) -> Output {
    updater(data).args(args).output().unwrap()
}

fn device(serial: Option<&str>, port: &str) -> Value {
    json!({"vendor_id": 0x047f, "product_id": 0xc056, "bcd_device": 0x0100, "serial": serial,
        "port_path": port, "manufacturer": "Acme", "product": "Voyager",
        "firmware_version": "1.0", "dfu": "runtime", "telephony": true,
        "battery": null, "in_call": false})
}

#[test]
fn lists_and_deletes_hosts_and_devices() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (t, token) = create_tenant(&data, "Acme");
    let server = start(&data, &[], &[]);
    let http = Client::new();
    let (agent, credential) = enroll(&http, &server.base, &t, &token, "{SYS-1}");
    let r = http
        .post(format!("{}/api/v1/agents/{agent}/checkin", server.base))
        .bearer_auth(&credential)
        .json(
            &json!({"agent_version": "0.1.0", "platform": "linux", "hostname": "ws-1",
            "users": [{"account": "ann"}],
            "devices": [device(Some("SN1"), "1-1"), device(None, "1-2")]}),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    let inv = |what: &str| cli_json(&data, &["inventory", what, "--tenant", &t, "--json"]);
    let hosts = inv("hosts");
    assert_eq!(
        (
            hosts.as_array().unwrap().len(),
            hosts[0]["id"].as_str(),
            hosts[0]["hostname"].as_str(),
            hosts[0]["agent_version"].as_str()
        ),
        (1, Some(agent.as_str()), Some("ws-1"), Some("0.1.0"))
    );
    let users = inv("users");
    assert_eq!(
        users
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["ann"]
    );
    let devices = inv("devices");
    let id_of = |serial: Value| {
        devices
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["serial"] == serial)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (with_serial, without) = (id_of(json!("SN1")), id_of(Value::Null));
    let text =
        String::from_utf8(run(&data, &["inventory", "devices", "--tenant", &t]).stdout).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("047F:C056") && text.contains("SN1"), "{text}");

    // Devices: with a serial, marked deleted; without, erased.
    let out = run(
        &data,
        &["inventory", "delete-device", "--tenant", &t, &with_serial],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        &data,
        &["inventory", "delete-device", "--tenant", &t, &without],
    );
    assert!(out.status.success());
    let devices = inv("devices");
    assert_eq!(devices.as_array().unwrap().len(), 1);
    assert_eq!(devices[0]["id"].as_str(), Some(with_serial.as_str()));
    assert!(devices[0]["deleted_at"].is_string(), "{devices}");

    // Refusals: unknown ids and tenants change nothing.
    for (args, want) in [
        (
            vec!["inventory", "delete-device", "--tenant", &t, &with_serial],
            "no device",
        ),
        (
            vec!["inventory", "delete-host", "--tenant", &t, "nope"],
            "no host nope",
        ),
        (
            vec!["inventory", "delete-host", "--tenant", "other", &agent],
            "no tenant other",
        ),
        (
            vec!["inventory", "hosts", "--tenant", "other"],
            "no tenant other",
        ),
    ] {
        let out = run(&data, &args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert_eq!(inv("hosts"), hosts);

    // A host's deletion keeps its users and devices.
    let out = run(&data, &["inventory", "delete-host", "--tenant", &t, &agent]);
    assert!(out.status.success());
    assert_eq!(inv("hosts"), json!([]));
    assert_eq!(inv("users").as_array().unwrap().len(), 1);
    assert_eq!(inv("devices"), devices);
}
