//! `store migrate`: an embedded store copied into PostgreSQL (the test
//! database, `UPDATER_TEST_POSTGRES`) serves the same fleet afterwards.

mod support;

use std::path::Path;
use std::process::Output;

use reqwest::blocking::Client;
use serde_json::{json, Value};
use support::{create_admin, create_tenant, enroll, login, start, updater};

fn test_url() -> String {
    std::env::var("UPDATER_TEST_POSTGRES")
        .expect("UPDATER_TEST_POSTGRES is unset (.cargo/config.toml sets it)")
}

fn fresh_schema() -> String {
    let mut bytes = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    format!("migrated_{}", hex::encode(bytes))
}

fn migrate(from: &Path, to: &str, schema: &str) -> Output {
    let mut cmd = updater(from);
    cmd.args(["store", "migrate", "--from"])
        .arg(from)
        .args(["--to", to, "--store-schema", schema]);
    cmd.output().unwrap()
}

fn check_in(http: &Client, base: &str, agent: &str, credential: &str, serial: &str) {
    let r = http
        .post(format!("{base}/api/v1/agents/{agent}/checkin"))
        .bearer_auth(credential)
        .json(
            &json!({"agent_version": "0.1.0", "platform": "linux", "hostname": "ws-1",
            "users": [{"account": "ann"}],
            "devices": [{"vendor_id": 0x047f, "product_id": 0xc056, "bcd_device": 0x0100,
                "serial": serial, "port_path": "1-4", "firmware_version": "0.9",
                "dfu": "runtime", "telephony": true, "in_call": false}]}),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn get(http: &Client, base: &str, path: &str, session: &str) -> Value {
    let r = http
        .get(format!("{base}{path}"))
        .bearer_auth(session)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().unwrap()
}

#[test]
fn an_embedded_store_moves_to_postgres_and_serves_the_same_fleet() {
    support::use_embedded_store();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let fw = dir.path().join("fw.bin");
    std::fs::write(&fw, vec![7u8; 4096]).unwrap();
    support::import_voyager(&data, &fw);
    let (tenant, token) = create_tenant(&data, "Acme");
    create_admin(&data, &tenant, "ann@acme.example", "full");

    // A fleet on the embedded store: agents, inventory, a group, events.
    let http = Client::new();
    let agents: Vec<(String, String)> = {
        let server = start(&data, &[], &[]);
        let base = server.base.as_str();
        let session = login(&http, base, &tenant, "ann@acme.example");
        let r = http
            .post(format!("{base}/api/v1/tenants/{tenant}/groups"))
            .bearer_auth(&session)
            .json(&json!({"name": "Sales", "membership": {"kind": "manual"}}))
            .send()
            .unwrap();
        assert!(r.status().is_success());
        let agents: Vec<_> = (0..3)
            .map(|n| enroll(&http, base, &tenant, &token, &format!("{{SYS-{n}}}")))
            .collect();
        for (n, (agent, credential)) in agents.iter().enumerate() {
            check_in(&http, base, agent, credential, &format!("SN{n}"));
        }
        let (agent, credential) = &agents[0];
        let r = http
            .post(format!("{base}/api/v1/agents/{agent}/events"))
            .bearer_auth(credential)
            .json(&json!({"events": [
                {"id": "e1", "at": "2026-01-02T03:04:05Z", "kind": "agent_started"},
                {"id": "e2", "at": "2026-01-02T03:04:06Z", "kind": "update_succeeded",
                 "device": "047f/serial/SN0", "target": "acme/voyager/2.0/fw.bin", "version": "2.0"},
            ]}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().unwrap());
        agents
    };

    let schema = fresh_schema();
    let url = test_url();
    let out = migrate(&data, &url, &schema);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tables = &summary["tables"];
    for (table, n) in [
        ("tenants", 1),
        ("admins", 1),
        ("agents", 3),
        ("groups", 1),
        ("inventory_hosts", 3),
        ("inventory_devices", 3),
        ("events", 2),
        ("update_history", 1),
    ] {
        assert_eq!(tables[table], n, "{table}: {summary}");
    }
    let records: u64 = tables
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    // Fewer than 200 per table: every record was compared.
    assert_eq!(summary["sampled"], records);

    // A second migration into the same schema would mix two copies.
    let again = migrate(&data, &url, &schema);
    assert!(!again.status.success());
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(said.contains("not empty"), "{said}");

    // Without its embedded file, the data directory serves from PostgreSQL:
    // same admin, group, inventory, events, agent credentials.
    std::fs::rename(data.join("server.redb"), dir.path().join("old.redb")).unwrap();
    let server = start(
        &data,
        &[],
        &[("UPDATER_STORE", &url), ("UPDATER_STORE_SCHEMA", &schema)],
    );
    assert!(!data.join("server.redb").exists());
    let base = server.base.as_str();
    let session = login(&http, base, &tenant, "ann@acme.example");
    let groups = get(
        &http,
        base,
        &format!("/api/v1/tenants/{tenant}/groups"),
        &session,
    );
    assert!(groups
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["name"] == "Sales"));
    let hosts = get(
        &http,
        base,
        &format!("/api/v1/tenants/{tenant}/hosts"),
        &session,
    );
    assert_eq!(hosts.as_array().map(Vec::len), Some(3), "{hosts}");
    let events = get(
        &http,
        base,
        &format!("/api/v1/tenants/{tenant}/events"),
        &session,
    );
    let ids: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["e1", "e2"], "{events}");
    for (n, (agent, credential)) in agents.iter().enumerate() {
        check_in(&http, base, agent, credential, &format!("SN{n}"));
    }
}

#[test]
fn migrate_refuses_a_missing_source_and_a_target_that_is_not_postgres() {
    support::use_embedded_store();
    let dir = tempfile::tempdir().unwrap();
    let out = migrate(&dir.path().join("nothing"), &test_url(), &fresh_schema());
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("does not exist: nothing to migrate"),
        "{said}"
    );

    let data = dir.path().join("data");
    create_tenant(&data, "Acme");
    let out = migrate(&data, "/srv/other", &fresh_schema());
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("takes a postgres:// URL"), "{said}");
}
