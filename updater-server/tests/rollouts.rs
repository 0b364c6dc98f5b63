//! Staged rollouts through the real binary: the API, the CLI on the shared
//! store, and a pause that survives a server restart.

mod support;

use reqwest::blocking::Client;
use serde_json::{json, Value};
use support::{create_admin, create_tenant, enroll, login, start, updater};

struct Fleet {
    http: Client,
    base: String,
    tenant: String,
    admin: String,
    agents: Vec<(String, String)>,
}

impl Fleet {
    fn url(&self, path: &str) -> String {
        format!("{}/api/v1/tenants/{}/{path}", self.base, self.tenant)
    }

    fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.admin)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().unwrap()
    }

    fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).bearer_auth(&self.admin);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().unwrap();
        (r.status().as_u16(), r.json().unwrap())
    }

    /// Agent `n` checks in with its headset on `version`; returns the
    /// signed assignments' targets and why its device got none.
    fn check_in(&self, n: usize, version: &str) -> (Vec<String>, Option<String>) {
        let (id, cred) = &self.agents[n];
        let r = self
            .http
            .post(format!("{}/api/v1/agents/{id}/checkin", self.base))
            .bearer_auth(cred)
            .json(&json!({"agent_version": "0.1.0", "platform": "linux", "hostname": format!("ws-{n}"),
                "users": [{"account": format!("user{n}")}],
                "devices": [{"vendor_id": 0x047f, "product_id": 0xc056, "bcd_device": 0x100,
                    "serial": format!("SN{n}"), "firmware_version": version, "dfu": "runtime",
                    "telephony": true, "in_call": false}]}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().unwrap();
        let signed = &v["assignments"]["signed"];
        let targets = signed["assignments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["target_name"].as_str().unwrap().to_owned())
            .collect();
        let why = signed["not_assigned"][format!("047f/serial/SN{n}")]
            .as_str()
            .map(str::to_owned);
        (targets, why)
    }
}

fn cli(data: &std::path::Path, args: &[&str]) -> String {
    let out = updater(data).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn rollouts_over_the_api_and_the_cli_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let fw = dir.path().join("fw.bin");
    std::fs::write(&fw, vec![9u8; 4096]).unwrap();
    support::import_voyager(&data, &fw);
    let (tenant, enrollment) = create_tenant(&data, "Acme");
    create_admin(&data, &tenant, "ann@acme.example", "full");
    let mut server = start(&data, &[], &[]);
    let http = Client::new();
    let admin = login(&http, &server.base, &tenant, "ann@acme.example");
    let agents = (0..4)
        .map(|n| {
            enroll(
                &http,
                &server.base,
                &tenant,
                &enrollment,
                &format!("SYS-{n}"),
            )
        })
        .collect();
    let mut f = Fleet {
        http,
        base: server.base.clone(),
        tenant: tenant.clone(),
        admin,
        agents,
    };
    for n in 0..4 {
        assert_eq!(
            f.check_in(n, "1.0").1.as_deref().map(|w| &w[..9]),
            Some("no policy")
        );
    }

    // Refused bodies say what is wrong, as 422 / 400.
    for (body, status, needle) in [
        (
            json!({"name": "x", "model": "047F:C056", "version": "2.0", "waves": [{"percent": 50}]}),
            422,
            "the percentages add up to 50, not 100",
        ),
        (
            json!({"name": "x", "model": "047F:C056", "version": "3.0", "waves": [{"percent": 100}]}),
            422,
            "the catalog has no version 3.0 for 047F:C056",
        ),
        (
            json!({"name": "x", "model": "047F:C056", "version": "2.0", "waves": [{"percent": 100, "colour": "red"}]}),
            422,
            "colour",
        ),
        (
            json!({"name": "x", "model": "047F:C056", "version": "2.0", "deployment": "silent", "waves": [{"rest": true}]}),
            422,
            "needs a maintenance window",
        ),
    ] {
        let (s, v) = f.post("rollouts", Some(body.clone()));
        assert_eq!(s, status, "{body}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(needle),
            "{body}: {v}"
        );
    }

    // Everyone at once, but the second half only on approval.
    let (s, r) = f.post(
        "rollouts",
        Some(
            json!({"name": "Voyager 2.0", "model": "047F:C056", "version": "latest",
            "deployment": "persistent",
            "waves": [{"percent": 50}, {"rest": true, "start": "approval"}]}),
        ),
    );
    assert_eq!(s, 201, "{r}");
    let id = r["id"].as_str().unwrap().to_owned();
    assert_eq!(r["state"], "running");
    assert_eq!(r["release"]["version"], "2.0");
    assert_eq!(r["status"]["devices"], 4);
    let first: Vec<usize> = (0..4)
        .filter(|&n| !f.check_in(n, "1.0").0.is_empty())
        .collect();
    assert_eq!(
        first.len() as u64,
        r["status"]["waves"][0]["figures"]["devices"]
            .as_u64()
            .unwrap(),
        "exactly the first wave's devices are assigned"
    );
    let list = f.get("rollouts");
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["waves_begun"], 1);

    // The status as CSV.
    let csv = f
        .http
        .get(f.url(&format!("rollouts/{id}/status?format=csv")))
        .bearer_auth(&f.admin)
        .send()
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().unwrap();
    assert!(
        csv.starts_with("wave,name,started_at,succeeded_at,ended_at,state,reason,devices\n"),
        "{csv}"
    );
    assert!(csv.contains(",pending,,") || first.len() == 4, "{csv}");

    // Pause over the API; the CLI on the same store sees it, and the pause
    // survives a restart of the server.
    let (s, paused) = f.post(&format!("rollouts/{id}/pause"), None);
    assert_eq!(s, 200);
    assert_eq!(paused["pause"]["by"], "ann@acme.example");
    let (s, again) = f.post(&format!("rollouts/{id}/pause"), None);
    assert_eq!((s, again["code"].as_str()), (409, Some("conflict")));
    assert!(again["message"]
        .as_str()
        .unwrap()
        .contains("the rollout is paused"));
    let status = cli(&data, &["rollout", "status", "--tenant", &tenant, &id]);
    assert!(
        status.contains("paused: paused by ann@acme.example"),
        "{status}"
    );
    server.kill();
    let server = start(&data, &[], &[]);
    f.base = server.base.clone();
    f.admin = login(&f.http, &f.base, &tenant, "ann@acme.example");
    // A pause holds every device of the rollout, whichever wave its bucket
    // put it in (the first wave may hold none of four devices).
    let held = f.check_in(0, "1.0");
    assert!(held.0.is_empty());
    assert!(held
        .1
        .unwrap()
        .contains("is paused (paused by ann@acme.example)"));

    // Resumed and approved from the CLI: every device is assigned.
    cli(&data, &["rollout", "resume", "--tenant", &tenant, &id]);
    let out = cli(&data, &["rollout", "approve", "--tenant", &tenant, &id]);
    assert!(out.contains("running"), "{out}");
    for n in 0..4 {
        assert_eq!(f.check_in(n, "1.0").0.len(), 1, "device {n}");
    }
    let (s, v) = f.post(&format!("rollouts/{id}/approve"), None);
    assert_eq!(s, 409);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("nothing to approve"),
        "{v}"
    );
    let shown = f.get(&format!("rollouts/{id}"));
    let log: Vec<&str> = shown["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["what"].as_str().unwrap())
        .collect();
    assert!(
        log.contains(&"Wave 2 approved by the server's command line"),
        "{log:?}"
    );

    // Every device installs: the status says so, as JSON.
    for n in 0..4 {
        f.check_in(n, "2.0");
    }
    let st = f.get(&format!("rollouts/{id}/status"));
    assert_eq!(
        (st["installed"].as_u64(), st["failed"].as_u64()),
        (Some(4), Some(0))
    );
    // Deleting needs it cancelled or completed first.
    let r = f
        .http
        .delete(f.url(&format!("rollouts/{id}")))
        .bearer_auth(&f.admin)
        .send()
        .unwrap();
    assert_eq!(r.status(), 409);
    let (s, _) = f.post(&format!("rollouts/{id}/cancel"), None);
    assert_eq!(s, 200);
    let r = f
        .http
        .delete(f.url(&format!("rollouts/{id}")))
        .bearer_auth(&f.admin)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = f
        .http
        .get(f.url(&format!("rollouts/{id}")))
        .bearer_auth(&f.admin)
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
}
