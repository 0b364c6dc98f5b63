//! Groups, policies, the agent check-in with signed assignments, and the
//! inventory, against the real binary.

mod support;

use std::path::Path;

use catalog::assignment::{check_against_target, verify_assignments, DeploymentType};
use catalog::protocol::DeviceReport;
use catalog::tuf::{PublicKey, TargetFile};
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};
use support::{cli_json, create_admin, create_tenant, login, start, updater};

fn import(data: &Path, dir: &Path, model: &str, hwid: &str, version: &str, extra: &[&str]) {
    let fw = dir.join(format!("{model}-{version}.bin"));
    std::fs::write(&fw, format!("{model} firmware {version}").repeat(100)).unwrap();
    let out = updater(data)
        .args(["catalog", "import"])
        .arg(&fw)
        .args(["--vendor", "Acme", "--model", model, "--hardware-id", hwid])
        .args(["--version", version])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn status_code(r: Response) -> (u16, Value) {
    let s = r.status().as_u16();
    let bytes = r.bytes().unwrap();
    (s, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

struct Enrolled {
    id: String,
    credential: String,
    key: PublicKey,
}

fn enroll(
    http: &Client,
    base: &str,
    tenant: &str,
    token: &str,
    system: &str,
    machine: &str,
) -> Enrolled {
    let r = http
        .post(format!("{base}/api/v1/enroll"))
        .json(
            &json!({"tenant": tenant, "token": token, "system_id": system,
            "machine_fingerprint": machine, "hostname": "ws-17", "os": "Linux"}),
        )
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let v: Value = r.json().unwrap();
    Enrolled {
        id: v["id"].as_str().unwrap().to_owned(),
        credential: v["credential"].as_str().unwrap().to_owned(),
        key: serde_json::from_value(v["assignment_key"]["key"].clone()).unwrap(),
    }
}

fn device(vid: u16, pid: u16, serial: Option<&str>, fw: &str, dfu: &str) -> Value {
    json!({"vendor_id": vid, "product_id": pid, "bcd_device": 0x0100, "serial": serial,
        "port_path": "1-4", "manufacturer": "Vendor", "product": "Headset",
        "firmware_version": fw, "dfu": dfu, "telephony": true,
        "battery": {"kind": "rough_percent", "value": 75}, "in_call": false})
}

/// The catalog's signed targets, read from the newest `N.targets.json` served.
fn signed_targets(http: &Client, base: &str) -> serde_json::Map<String, Value> {
    let ts: Value = http
        .get(format!("{base}/repo/metadata/timestamp.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let sv = ts["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    let snap: Value = http
        .get(format!("{base}/repo/metadata/{sv}.snapshot.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let tv = snap["signed"]["meta"]["targets.json"]["version"]
        .as_u64()
        .unwrap();
    let t: Value = http
        .get(format!("{base}/repo/metadata/{tv}.targets.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    t["signed"]["targets"].as_object().unwrap().clone()
}

#[test]
fn groups_policies_checkin_and_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    import(
        &data,
        dir.path(),
        "Voyager",
        "047F:C056",
        "1.0",
        &["--silent-capable", "--security-counter", "1"],
    );
    import(
        &data,
        dir.path(),
        "Voyager",
        "047F:C056",
        "1.1",
        &["--silent-capable", "--security-counter", "2"],
    );
    import(
        &data,
        dir.path(),
        "Blackwire",
        "047F:02EE",
        "3.0",
        &["--no-automatic"],
    );
    let (a, token) = create_tenant(&data, "Acme");
    let (b, token_b) = create_tenant(&data, "Bravo");
    create_admin(&data, &a, "ann@acme.example", "full");
    create_admin(&data, &a, "rob@acme.example", "read-only");

    // The CLI creates and lists groups in the same store.
    let g = cli_json(
        &data,
        &[
            "group",
            "create",
            "--tenant",
            &a,
            "--name",
            "Sales",
            "--priority",
            "1",
            "--member",
            "ann",
            "--json",
        ],
    );
    let sales = g["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (g["priority"].as_u64(), g["poll_interval_secs"].as_u64()),
        (Some(1), Some(21600))
    );
    let server = start(&data, &[], &[]);
    let http = Client::new();
    let base = server.base.as_str();
    let ann = login(&http, base, &a, "ann@acme.example");
    let rob = login(&http, base, &a, "rob@acme.example");
    let t = |p: &str| format!("{base}/api/v1/tenants/{a}/{p}");
    let post = |p: &str, body: Value| {
        status_code(
            http.post(t(p))
                .bearer_auth(&ann)
                .json(&body)
                .send()
                .unwrap(),
        )
    };
    let put = |p: &str, body: Value| {
        status_code(http.put(t(p)).bearer_auth(&ann).json(&body).send().unwrap())
    };

    // Groups: unique priorities, LDAP filter syntax, poll interval bounds.
    let (s, v) = post(
        "groups",
        json!({"name": "Dup", "priority": 1, "membership": {"kind": "manual"}}),
    );
    assert_eq!((s, v["code"].as_str()), (409, Some("conflict")));
    let (s, v) = post(
        "groups",
        json!({"name": "Bad", "membership": {"kind": "ldap", "filter": "(uid=bob)"}}),
    );
    assert_eq!(
        (s, v["message"].as_str()),
        (422, Some("invalid filter: must contain $user$"))
    );
    let (s, _) = post(
        "groups",
        json!({"name": "Fast", "poll_interval_secs": 60, "membership": {"kind": "manual"}}),
    );
    assert_eq!(s, 422);
    let (s, pilot) = post(
        "groups",
        json!({"name": "Pilot", "poll_interval_secs": 3600,
        "membership": {"kind": "ldap", "filter": "(&(objectClass=user)(sAMAccountName=$user$))",
            "server": {"host": "dc1.acme.example", "port": 636, "tls": true, "directory": "active_directory"}}}),
    );
    assert_eq!((s, pilot["priority"].as_u64()), (201, Some(2)));
    let pilot = pilot["id"].as_str().unwrap().to_owned();
    let r = http
        .post(t("groups"))
        .bearer_auth(&rob)
        .json(&json!({"name": "X", "membership": {"kind": "manual"}}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let groups: Value = http
        .get(t("groups"))
        .bearer_auth(&rob)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let names: Vec<_> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["All Users", "Sales", "Pilot"]);

    // Policies: capability refusals at creation, silent needs a window.
    let (s, all) = post(
        "policies/firmware",
        json!({"name": "Voyager latest", "model": "047F:C056", "version": "latest"}),
    );
    assert_eq!(s, 201, "{all}");
    let (s, v) = post(
        "policies/firmware",
        json!({"name": "BW auto", "model": "047F:02EE", "version": "latest", "deployment": "automatic"}),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (422, Some("unsupported_deployment")),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("not automatic-capable"),
        "{v}"
    );
    let (s, v) = post(
        "policies/firmware",
        json!({"name": "BW silent", "model": "047F:02EE", "version": "3.0", "deployment": "silent",
        "window": {"cron": "0 2 * * *", "duration_minutes": 120, "tz": "Europe/Berlin"}}),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (422, Some("unsupported_deployment"))
    );
    let (s, v) = post(
        "policies/firmware",
        json!({"name": "V silent", "model": "047F:C056", "version": "1.0", "deployment": "silent"}),
    );
    assert_eq!(
        (s, v["message"].as_str()),
        (
            422,
            Some("invalid window: a silent policy needs a maintenance window")
        )
    );
    let (s, _) = post(
        "policies/firmware",
        json!({"name": "Unknown model", "model": "1209:0001", "version": "latest", "deployment": "silent",
        "window": {"cron": "0 2 * * *", "duration_minutes": 120, "tz": "UTC"}}),
    );
    assert_eq!(s, 201, "a model without releases is accepted");
    let window = json!({"cron": "0 2 * * *", "duration_minutes": 120, "tz": "Europe/Berlin"});
    let (s, sales_pol) = post(
        "policies/firmware",
        json!({"name": "Sales pinned", "model": "047F:C056", "group": sales,
        "version": "1.0", "deployment": "silent", "window": window, "source": {"kind": "web", "url": "https://mirror.acme.example/fw"}}),
    );
    assert_eq!(s, 201, "{sales_pol}");
    let sales_pol = sales_pol["id"].as_str().unwrap().to_owned();
    let (s, v) = post(
        "policies/firmware",
        json!({"name": "Second", "model": "047F:C056", "group": "SALES", "version": "latest"}),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (409, Some("conflict")),
        "one enabled policy per model and group (named in any case)"
    );
    // Groups are named by id or by name, everywhere.
    let (s, copy) = post(
        &format!("policies/firmware/{sales_pol}/copy"),
        json!({"group": "Pilot"}),
    );
    assert_eq!(
        (s, copy["enabled"].as_bool(), copy["group"].as_str()),
        (201, Some(false), Some(pilot.as_str()))
    );
    for by in [sales.as_str(), "Sales"] {
        let (s, v) = status_code(
            http.delete(t(&format!("groups/{by}")))
                .bearer_auth(&ann)
                .send()
                .unwrap(),
        );
        assert_eq!(
            (s, v["code"].as_str()),
            (409, Some("conflict")),
            "a policy names the group ({by})"
        );
    }
    let (s, v) = post(
        "policies/firmware",
        json!({"name": "Nowhere", "model": "047F:02EE", "group": "Marketing", "version": "latest"}),
    );
    assert_eq!(
        (s, v["code"].as_str(), v["message"].as_str()),
        (
            422,
            Some("invalid_request"),
            Some("invalid group: no group Marketing")
        )
    );
    let (s, sw) = post(
        "policies/software",
        json!({"name": "Agent", "platform": "linux", "version": "latest"}),
    );
    assert_eq!((s, sw["version"].as_str()), (201, Some("latest")));

    // Enroll and check in: ann is in Sales, so the pinned silent policy applies.
    let agent = enroll(&http, base, &a, &token, "{SYS-1}", "m1");
    let checkin_url = format!("{base}/api/v1/agents/{}/checkin", agent.id);
    let body = json!({"agent_version": "0.1.0", "platform": "linux", "hostname": "ws-17",
        "users": [{"account": "ann"}, {"account": "svc-backup"}],
        "devices": [device(0x047f, 0xc056, Some("S1"), "0.9", "runtime"),
                    device(0x0b0e, 0x0422, Some("J1"), "2.0", "none"),
                    device(0x047f, 0x02ee, None, "3.0", "runtime")],
        "update_states": [{"device": "047f/serial/S1", "installed_security_counter": 1}]});
    let (s, _) = put("settings", json!({"excluded_accounts": ["svc-backup"]}));
    assert_eq!(s, 200);
    let check_in = |body: &Value, etag: Option<&str>| {
        let mut r = http
            .post(&checkin_url)
            .bearer_auth(&agent.credential)
            .json(body);
        if let Some(e) = etag {
            r = r.header("if-none-match", e);
        }
        r.send().unwrap()
    };
    let r = check_in(&body, None);
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let answer: catalog::checkin::CheckInResponse = r.json().unwrap();
    assert_eq!(answer.poll_interval_secs, 21600);
    let now = chrono::Utc::now();
    let doc = serde_json::to_vec(&answer.assignments).unwrap();
    let set = verify_assignments(&doc, &agent.key, &agent.id, 0, now).unwrap();
    assert_eq!(
        (set.version, set.tenant.as_str(), set.poll_interval_secs),
        (1, a.as_str(), 21600)
    );
    assert!(set.expires > now + chrono::TimeDelta::hours(23));
    assert_eq!(set.assignments.len(), 1, "{:?}", set.assignments);
    let asg = &set.assignments[0];
    assert_eq!(
        (asg.device.as_str(), asg.deployment, asg.policy.as_str()),
        ("047f/serial/S1", DeploymentType::Silent, sales_pol.as_str())
    );
    assert!(asg.target_name.contains("/1.0/"), "{}", asg.target_name);
    let targets = signed_targets(&http, base);
    let target: TargetFile = serde_json::from_value(targets[&asg.target_name].clone()).unwrap();
    let dev: DeviceReport =
        serde_json::from_value(device(0x047f, 0xc056, Some("S1"), "0.9", "runtime")).unwrap();
    let (fw, version) = check_against_target(asg, &target, &dev, 1).unwrap();
    assert_eq!((fw.security_counter, version.as_str()), (1, "1.0"));
    // Another agent's key or id is refused.
    assert!(verify_assignments(&doc, &agent.key, "someone-else", 0, now).is_err());

    // The same check-in again: 304 with If-None-Match, same ETag without.
    let r = check_in(&body, Some(&etag));
    assert_eq!(
        (r.status().as_u16(), r.headers()["etag"].to_str().unwrap()),
        (304, etag.as_str())
    );
    let r = check_in(&body, None);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);

    // A policy change bumps the version; the new pin is assigned.
    let (s, _) = put(
        &format!("policies/firmware/{sales_pol}"),
        json!({"name": "Sales pinned", "model": "047F:C056", "group": sales,
        "version": "1.1", "deployment": "silent", "window": window}),
    );
    assert_eq!(s, 200);
    let r = check_in(&body, Some(&etag));
    assert_eq!(r.status(), 200);
    let answer: catalog::checkin::CheckInResponse = r.json().unwrap();
    let set = verify_assignments(
        &serde_json::to_vec(&answer.assignments).unwrap(),
        &agent.key,
        &agent.id,
        1,
        now,
    )
    .unwrap();
    assert_eq!(set.version, 2);
    assert!(set.assignments[0].target_name.contains("/1.1/"));
    assert_eq!(
        set.assignments[0].source,
        catalog::assignment::DownloadSource::Server
    );

    // Pilot membership reported by the agent: Pilot's policy is the disabled
    // copy, so All Users' latest applies, and Pilot's poll interval (1 h).
    let mut pilot_body = body.clone();
    pilot_body["ldap_memberships"] = json!({"ann": [pilot]});
    let r = check_in(&pilot_body, None);
    let answer: catalog::checkin::CheckInResponse = r.json().unwrap();
    assert_eq!(
        answer.poll_interval_secs, 21600,
        "Sales (priority 1) still wins over Pilot"
    );

    // Credentials: none, wrong, another agent's path, another tenant's agent, replaced.
    let r = http.post(&checkin_url).json(&body).send().unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(&checkin_url)
        .bearer_auth(format!("{}x", agent.credential))
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    let other = enroll(&http, base, &b, &token_b, "{SYS-9}", "m9");
    let r = http
        .post(&checkin_url)
        .bearer_auth(&other.credential)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    let again = enroll(&http, base, &a, &token, "{SYS-1}", "m1");
    assert_eq!(again.id, agent.id);
    let r = check_in(&body, None);
    assert_eq!(r.status(), 401, "the replaced credential is dead");
    let r = http
        .post(&checkin_url)
        .bearer_auth(&again.credential)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(&checkin_url)
        .bearer_auth(&again.credential)
        .json(&json!({"platform": "linux"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 422);

    // Inventory: the excluded account is not a user; the other vendor's
    // telephony device is listed.
    let get = |p: &str| -> Value {
        http.get(t(p))
            .bearer_auth(&rob)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let users = get("users");
    assert_eq!(
        users
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["ann"]
    );
    let hosts = get("hosts");
    assert_eq!(hosts[0]["id"], agent.id.as_str());
    assert_eq!(hosts[0]["group"], sales.as_str());
    assert_eq!(hosts[0]["suspected_clone_of"], Value::Null);
    assert_eq!(
        hosts[0]["update_states"][0]["installed_security_counter"],
        1
    );
    assert_eq!(hosts[0]["skipped"][0][0], "0b0e/serial/J1");
    assert_eq!(hosts[0]["skipped"][0][1]["reason"], "not_updatable");
    let devices = get("devices");
    assert_eq!(devices.as_array().unwrap().len(), 3);
    let jabra = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["serial"] == "J1")
        .unwrap();
    assert_eq!(
        (jabra["vendor_id"].as_u64(), jabra["dfu"].as_str()),
        (Some(0x0b0e), Some("none"))
    );

    // Deleting ann: the host goes (no other user), S1 and J1 are marked
    // deleted, the serial-less Blackwire is erased. Seen again: revived.
    let ann_id = users[0]["id"].as_str().unwrap();
    let r = http
        .delete(t(&format!("users/{ann_id}")))
        .bearer_auth(&ann)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(get("hosts"), json!([]));
    let devices = get("devices");
    assert_eq!(devices.as_array().unwrap().len(), 2);
    assert!(devices
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["deleted_at"].is_string()));
    http.post(&checkin_url)
        .bearer_auth(&again.credential)
        .json(&body)
        .send()
        .unwrap();
    let devices = get("devices");
    assert_eq!(devices.as_array().unwrap().len(), 3);
    assert!(devices
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["deleted_at"].is_null()));
    // Deleting the host keeps devices and users.
    let r = http
        .delete(t(&format!("hosts/{}", agent.id)))
        .bearer_auth(&ann)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        (
            get("devices").as_array().unwrap().len(),
            get("users").as_array().unwrap().len()
        ),
        (3, 1)
    );

    // A clone (same SystemID, another machine) is its own host, flagged.
    let clone = enroll(&http, base, &a, &token, "{SYS-1}", "m2");
    let r = http
        .post(format!("{base}/api/v1/agents/{}/checkin", clone.id))
        .bearer_auth(&clone.credential)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let hosts = get("hosts");
    let flagged = hosts
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == clone.id.as_str())
        .unwrap();
    assert_eq!(flagged["suspected_clone_of"], agent.id.as_str());

    // The CLI lists and deletes groups; a group a policy names stays.
    let listed = cli_json(&data, &["group", "list", "--tenant", &a, "--json"]);
    let ids: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, [sales.clone(), pilot.clone()]);
    let out = updater(&data)
        .args(["group", "delete", "--tenant", &a, &sales])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is used by a policy"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (s, _) = status_code(
        http.delete(t(&format!(
            "policies/firmware/{}",
            copy["id"].as_str().unwrap()
        )))
        .bearer_auth(&ann)
        .send()
        .unwrap(),
    );
    assert_eq!(s, 204);
    let out = updater(&data)
        .args(["group", "delete", "--tenant", &a, &pilot])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = cli_json(&data, &["group", "list", "--tenant", &a, "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
}
