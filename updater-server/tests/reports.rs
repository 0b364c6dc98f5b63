//! The five reports against the real binary on loopback: agents enroll and
//! check in with devices and update states, send update events, and the
//! reports show those rows, as JSON and CSV, per tenant; the `report` CLI
//! prints the same CSV from the data directory (its refusals:
//! `report_cli.rs`).

mod reports_support;
mod support;

use reports_support::{
    cell, check_in, check_schemas, csv_of, device, events, get, import, json_of, row,
};
use reqwest::blocking::Client;
use serde_json::{json, Value};
use support::{create_admin, create_tenant, enroll, login, start, updater};

#[test]
fn reports_from_real_check_ins_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    import(&data, dir.path(), "Voyager", "047F:C056", "1.0");
    import(&data, dir.path(), "Voyager", "047F:C056", "2.0");
    let (a, a_token) = create_tenant(&data, "Acme");
    let (b, b_token) = create_tenant(&data, "Bravo");
    create_admin(&data, &a, "ann@acme.example", "read-only");
    create_admin(&data, &a, "root@acme.example", "full");
    create_admin(&data, &b, "bea@bravo.example", "full");
    let server = start(&data, &[], &[]);
    let base = server.base.as_str();
    let http = Client::new();
    let ann = login(&http, base, &a, "ann@acme.example");
    let root = login(&http, base, &a, "root@acme.example");
    let bea = login(&http, base, &b, "bea@bravo.example");

    let releases: Value = get(
        &http,
        &format!("{base}/api/v1/tenants/{a}/catalog/releases"),
        &ann,
        None,
    )
    .json()
    .unwrap();
    let target_2 = releases
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["version"]["version"] == "2.0")
        .unwrap_or_else(|| panic!("{releases}"))["target_name"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = http
        .post(format!("{base}/api/v1/tenants/{a}/policies/firmware"))
        .bearer_auth(&root)
        .json(
            &json!({"name": "Voyager latest", "model": "047F:C056", "version": "latest",
                      "deployment": "optional"}),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let policy: Value = r.json().unwrap();

    // Tenant A: four hosts.
    let evil_host = "=HYPERLINK(\"http://x.example\",\"y\")";
    let a1 = enroll(&http, base, &a, &a_token, "{SYS-1}");
    check_in(
        &http,
        base,
        &a1,
        &json!({"agent_version": "0.1.0", "platform": "linux", "hostname": evil_host,
            "users": [{"account": "ann"}],
            "devices": [device(Some("SN1"), 0xc056, 0x047f, Some("1.0"), "runtime"),
                        device(None, 0x0422, 0x0b0e, None, "none")],
            "update_states": [{"device": "047f/serial/SN1", "target_name": target_2,
                               "phase": "failed", "message": "verify failed: CRC mismatch, at 0x800"}]}),
    );
    let a2 = enroll(&http, base, &a, &a_token, "{SYS-2}");
    check_in(
        &http,
        base,
        &a2,
        &json!({"agent_version": "0.1.0", "platform": "linux", "hostname": "ws-2",
            "users": [{"account": "+bob"}],
            "devices": [device(Some("SN2"), 0xc056, 0x047f, Some("2.0"), "runtime")]}),
    );
    let a3 = enroll(&http, base, &a, &a_token, "{SYS-3}");
    check_in(
        &http,
        base,
        &a3,
        &json!({"agent_version": "0.1.0", "platform": "linux", "hostname": "ws-3",
            "users": [{"account": "carol"}],
            "devices": [device(Some("SN3"), 0xc056, 0x047f, Some("1.0"), "runtime")],
            "update_states": [{"device": "047f/serial/SN3", "target_name": target_2,
                               "phase": "staged", "message": "waiting for user consent (optional update)"}]}),
    );
    let a4 = enroll(&http, base, &a, &a_token, "{SYS-4}");
    check_in(
        &http,
        base,
        &a4,
        &json!({"agent_version": "0.1.0", "platform": "linux", "hostname": "ws-4",
            "users": [{"account": "dave"}]}),
    );
    events(
        &http,
        base,
        &a1,
        json!([
            {"id": "f1", "at": "2026-01-05T10:00:00Z", "kind": "update_failed", "device": "047f/serial/SN1",
             "target": target_2, "version": "2.0", "reason": "-1+2 bytes short"},
            {"id": "s0", "at": "2026-01-05T11:00:00Z", "kind": "agent_started"},
        ]),
    );
    events(
        &http,
        base,
        &a2,
        json!([{"id": "s1", "at": "2026-02-10T09:00:00Z", "kind": "update_succeeded",
                "device": "047f/serial/SN2", "target": target_2, "version": "2.0"}]),
    );
    // Tenant B: one device that A's reports must never show.
    let b1 = enroll(&http, base, &b, &b_token, "{SYS-B}");
    check_in(
        &http,
        base,
        &b1,
        &json!({"agent_version": "0.1.0", "platform": "linux", "hostname": "bravo-ws",
            "users": [{"account": "bea"}],
            "devices": [device(Some("SN-B"), 0xc056, 0x047f, Some("1.0"), "runtime")]}),
    );
    events(
        &http,
        base,
        &b1,
        json!([{"id": "b1", "at": "2026-01-06T10:00:00Z", "kind": "update_succeeded",
                "device": "047f/serial/SN-B", "target": target_2, "version": "2.0"}]),
    );

    let url = |t: &str, report: &str| format!("{base}/api/v1/tenants/{t}/reports/{report}");

    // Device Inventory.
    let inv = json_of(get(&http, &url(&a, "inventory"), &ann, None));
    assert_eq!(inv["report"], "inventory");
    assert_eq!(inv["tenant"], a.as_str());
    assert_eq!(inv["devices"], 4);
    let rows = inv["rows"].as_array().unwrap();
    let sn1 = rows.iter().find(|r| r["serial"] == "SN1").unwrap();
    assert_eq!(
        (
            &sn1["model"],
            &sn1["model_name"],
            &sn1["firmware_version"],
            &sn1["hostname"],
            &sn1["users"],
            &sn1["other_vendor"]
        ),
        (
            &json!("047F:C056"),
            &json!("Voyager"),
            &json!("1.0"),
            &json!(evil_host),
            &json!(["ann"]),
            &json!(false)
        )
    );
    let other = rows.iter().find(|r| r["vendor_id"] == "0b0e").unwrap();
    assert_eq!(
        (
            &other["other_vendor"],
            &other["updatable"],
            &other["serial"]
        ),
        (&json!(true), &json!(false), &Value::Null)
    );
    assert!(rows.iter().all(|r| r["serial"] != "SN-B"));
    let (text, csv) = csv_of(
        get(
            &http,
            &format!("{}?format=csv", url(&a, "inventory")),
            &ann,
            None,
        ),
        &format!("device-inventory-{a}"),
    );
    assert_eq!(
        csv[0][..4],
        ["device_id", "identity", "model", "model_name"]
    );
    assert_eq!(csv.len(), 5);
    let r = row(&csv, "serial", "SN1");
    // The agent's host name arrives as text, not as a formula.
    assert_eq!(cell(&csv, r, "hostname"), format!("'{evil_host}"));
    assert!(!text.contains(",=HYPERLINK"), "{text}");
    let bob = row(&csv, "serial", "SN2");
    assert_eq!(cell(&csv, bob, "users"), "'+bob");
    assert_eq!(cell(&csv, bob, "deleted"), "false");
    // Accept: text/csv gives the same file; the query wins over Accept.
    let (text2, _) = csv_of(
        get(&http, &url(&a, "inventory"), &ann, Some("text/csv")),
        "device-inventory",
    );
    assert_eq!(text2, text);
    let j = get(
        &http,
        &format!("{}?format=json", url(&a, "inventory")),
        &ann,
        Some("text/csv"),
    );
    assert_eq!(j.headers()["content-type"], "application/json");

    // The CLI prints the same CSV from the data directory.
    let out = updater(&data)
        .args(["report", "inventory", "--tenant", &a, "--format", "csv"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);

    // Version Status.
    let ver = json_of(get(&http, &url(&a, "versions"), &ann, None));
    let models = ver["models"].as_array().unwrap();
    assert_eq!(models.len(), 2, "{ver}");
    let voyager = &models[0];
    assert_eq!(
        (
            &voyager["model"],
            &voyager["latest_version"],
            &voyager["devices"],
            &voyager["up_to_date"],
            &voyager["outdated"]
        ),
        (
            &json!("047F:C056"),
            &json!("2.0"),
            &json!(3),
            &json!(1),
            &json!(2)
        )
    );
    let (_, csv) = csv_of(
        get(
            &http,
            &format!("{}?format=csv", url(&a, "versions")),
            &ann,
            None,
        ),
        "version-status",
    );
    assert_eq!(
        csv,
        [
            [
                "model",
                "model_name",
                "latest_version",
                "installed_version",
                "status",
                "devices"
            ],
            ["047F:C056", "Voyager", "2.0", "2.0", "up_to_date", "1"],
            ["047F:C056", "Voyager", "2.0", "1.0", "outdated", "2"],
            ["0B0E:0422", "Voyager 4320", "", "", "no_release", "1"],
        ]
    );

    // Policy Compliance.
    let comp = json_of(get(&http, &url(&a, "compliance"), &ann, None));
    assert_eq!(
        (
            &comp["devices"],
            &comp["compliant"],
            &comp["non_compliant"],
            &comp["without_policy"]
        ),
        (&json!(4), &json!(1), &json!(2), &json!(1))
    );
    // The other vendor's headset (no DFU interface): no policy covers it,
    // and the report lists it all the same.
    let uncovered: Vec<&Value> = comp["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["policy"].is_null())
        .collect();
    assert_eq!(uncovered.len(), 1, "{comp}");
    assert_eq!(
        (&uncovered[0]["model"], &uncovered[0]["status"]),
        (&json!("0B0E:0422"), &json!("not_updatable"))
    );
    let by_serial = |s: &str| {
        comp["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["serial"] == s)
            .unwrap_or_else(|| panic!("{s}: {comp}"))
            .clone()
    };
    let sn1 = by_serial("SN1");
    assert_eq!(
        (
            &sn1["status"],
            &sn1["detail"],
            &sn1["target_version"],
            &sn1["installed_version"]
        ),
        (
            &json!("failed"),
            &json!("verify failed: CRC mismatch, at 0x800"),
            &json!("2.0"),
            &json!("1.0")
        )
    );
    assert_eq!(sn1["policy"], policy["id"]);
    assert_eq!(sn1["policy_name"], "Voyager latest");
    assert_eq!(sn1["deployment"], "optional");
    assert_eq!(by_serial("SN2")["status"], "compliant");
    assert_eq!(by_serial("SN3")["status"], "waiting_for_consent");
    let (_, csv) = csv_of(
        get(&http, &url(&a, "compliance"), &ann, Some("text/csv;q=1.0")),
        "policy-compliance",
    );
    let r = row(&csv, "serial", "SN1");
    assert_eq!(cell(&csv, r, "status"), "failed");
    assert_eq!(cell(&csv, r, "compliant"), "false");
    assert_eq!(
        cell(&csv, r, "detail"),
        "verify failed: CRC mismatch, at 0x800"
    );
    assert_eq!(cell(&csv, row(&csv, "serial", "SN2"), "compliant"), "true");

    // Editing the policy: hosts not seen since are reported as such.
    let r = http
        .put(format!(
            "{base}/api/v1/tenants/{a}/policies/firmware/{}",
            policy["id"].as_str().unwrap()
        ))
        .bearer_auth(&root)
        .json(
            &json!({"name": "Voyager latest", "model": "047F:C056", "version": "latest",
                      "deployment": "persistent"}),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let comp = json_of(get(&http, &url(&a, "compliance"), &ann, None));
    let statuses: Vec<(&str, &str)> = comp["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["policy"].is_null())
        .map(|r| (r["serial"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    let mut statuses = statuses;
    statuses.sort();
    assert_eq!(
        statuses,
        [
            ("SN1", "not_seen_since_policy_change"),
            ("SN2", "compliant"),
            ("SN3", "not_seen_since_policy_change"),
        ]
    );

    // Device Distribution: dave has no device and is listed.
    let dist = json_of(get(&http, &url(&a, "distribution"), &ann, None));
    let all = &dist["groups"][0];
    assert_eq!(
        (
            &all["group"],
            &all["users"],
            &all["users_without_devices"],
            &all["devices"]
        ),
        (&json!("all-users"), &json!(4), &json!(1), &json!(4))
    );
    let (_, csv) = csv_of(
        get(
            &http,
            &format!("{}?format=csv", url(&a, "distribution")),
            &ann,
            None,
        ),
        "device-distribution",
    );
    let dave = row(&csv, "user", "dave");
    assert_eq!(
        (cell(&csv, dave, "model"), cell(&csv, dave, "devices")),
        ("", "0")
    );
    assert_eq!(cell(&csv, row(&csv, "user", "'+bob"), "devices"), "1");
    assert!(csv.iter().all(|r| !r.contains(&"bea".to_owned())));

    // Update History, whole and in January only.
    let hist = json_of(get(&http, &url(&a, "history"), &ann, None));
    assert_eq!(
        (&hist["entries"], &hist["truncated"]),
        (&json!(2), &json!(false))
    );
    assert_eq!(hist["rows"][0]["hostname"], evil_host);
    assert_eq!(hist["rows"][1]["outcome"], "succeeded");
    let (_, csv) = csv_of(
        get(
            &http,
            &format!(
                "{}?format=csv&from=2026-01-01&to=2026-01-31",
                url(&a, "history")
            ),
            &ann,
            None,
        ),
        "update-history",
    );
    assert_eq!(csv.len(), 2, "{csv:?}");
    let f1 = row(&csv, "event_id", "f1");
    assert_eq!(cell(&csv, f1, "reason"), "'-1+2 bytes short");
    assert_eq!(cell(&csv, f1, "hostname"), format!("'{evil_host}"));
    assert_eq!(cell(&csv, f1, "at"), "2026-01-05T10:00:00Z");
    let out = updater(&data)
        .args(["report", "history", "--tenant", &a, "--from", "2026-02-01"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli["entries"], 1);
    assert_eq!(cli["rows"][0]["event_id"], "s1");

    // The JSON answers match their OpenAPI schemas; a wrong one does not.
    let samples = [
        ("InventoryReport", &inv),
        ("VersionStatusReport", &ver),
        ("ComplianceReport", &comp),
        ("DistributionReport", &dist),
        ("UpdateHistoryReport", &hist),
    ];
    if let Err(e) = check_schemas(&http, base, dir.path(), &samples) {
        panic!("report answers against the OpenAPI schemas (jsonschema comes with `pip install -r .ci/requirements.txt`): {e}");
    }
    let mut wrong = comp.clone();
    wrong["rows"][0]["status"] = json!("fine");
    let e = check_schemas(&http, base, dir.path(), &[("ComplianceReport", &wrong)]).unwrap_err();
    assert!(e.contains("ComplianceReport: 'fine' is not one of"), "{e}");

    // Tenant B sees only its own.
    let inv_b = json_of(get(&http, &url(&b, "inventory"), &bea, None));
    assert_eq!(inv_b["devices"], 1);
    assert_eq!(inv_b["rows"][0]["serial"], "SN-B");
    let hist_b = json_of(get(&http, &url(&b, "history"), &bea, None));
    assert_eq!(hist_b["rows"][0]["event_id"], "b1");
    assert_eq!(hist_b["entries"], 1);
    let r = get(&http, &url(&a, "inventory"), &bea, None);
    assert_eq!(r.status(), 404);

    // Bad parameters: 400 with a JSON error, nothing else.
    for query in [
        "inventory?format=xlsx",
        "inventory?from=2026-01-01",
        "history?from=yesterday",
        "history?from=2026-02-01&to=2026-01-01",
    ] {
        let r = get(
            &http,
            &format!("{base}/api/v1/tenants/{a}/reports/{query}"),
            &ann,
            None,
        );
        assert_eq!(r.status(), 400, "{query}");
        let e: Value = r.json().unwrap();
        assert_eq!(e["code"], "invalid_request", "{query}");
    }
}
