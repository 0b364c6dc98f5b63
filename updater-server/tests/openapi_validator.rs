//! The served OpenAPI document against an independent validator
//! (`openapi-spec-validator`, installed by CI from `.ci/requirements.txt`), and
//! real answers of the running server against the document's own schemas
//! (JSON Schema 2020-12, with `jsonschema`). If `python3` or the packages are
//! missing, the test fails saying so; it never passes silently.

mod support;

use std::process::Command;

use reqwest::blocking::Client;
use serde_json::{json, Value};
use support::{create_admin, create_tenant, enroll, login, start};

/// Validates `doc` as OpenAPI, then each `(schema name, instance)` against
/// `#/components/schemas/<name>`; prints nothing on success.
const CHECK: &str = r##"
import json, sys
from openapi_spec_validator import validate
from jsonschema import Draft202012Validator
doc = json.load(open(sys.argv[1]))
validate(doc)
for name, instance in json.load(open(sys.argv[2])):
    schema = {"components": doc["components"], "$ref": "#/components/schemas/" + name}
    errors = list(Draft202012Validator(schema).iter_errors(instance))
    if errors:
        sys.exit(f"{name}: {errors[0].message} at {list(errors[0].absolute_path)}")
"##;

#[test]
fn the_document_validates_and_describes_real_answers() {
    let probe = Command::new("python3")
        .args(["-c", "import openapi_spec_validator, jsonschema"])
        .output()
        .unwrap_or_else(|e| panic!("python3 is required for this test (CI installs it): {e}"));
    assert!(
        probe.status.success(),
        "openapi-spec-validator is required; install it with `pip install -r .ci/requirements.txt`: {}",
        String::from_utf8_lossy(&probe.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (tenant, token) = create_tenant(&data, "Acme");
    create_admin(&data, &tenant, "ann@acme.example", "full");
    let server = start(&data, &["--catalog-managers", &tenant], &[]);
    let base = server.base.as_str();
    let http = Client::new();
    let mut samples: Vec<(&str, Value)> = Vec::new();

    let enrolled: Value = http
        .post(format!("{base}/api/v1/enroll"))
        .json(
            &json!({"tenant": tenant, "token": token, "system_id": "{SYS-9}",
                      "machine_fingerprint": "fp", "hostname": "ws", "os": "Linux"}),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    samples.push(("EnrollResponse", enrolled));
    let (agent, cred) = enroll(&http, base, &tenant, &token, "{SYS-1}");
    let batch = json!({"events": [
        {"id": "a", "at": "2026-01-02T03:04:05Z", "kind": "agent_started", "detail": {"v": 1}},
        {"id": "b", "at": "2026-01-02T03:04:06Z", "kind": "update_failed", "device": "047f/serial/S",
         "target": "acme/voyager/1.2/fw.bin", "version": "1.2", "reason": "verify failed"},
        {"id": "c", "at": "2026-01-02T03:04:07Z", "kind": "tamper_detected", "source": "image", "reason": "hash"},
        {"id": "d", "at": "2026-01-02T03:04:08Z", "kind": "user_deferred",
         "target": "acme/voyager/1.2/fw.bin", "version": "1.2"},
    ]});
    samples.push(("EventBatch", batch.clone()));
    let ack: Value = http
        .post(format!("{base}/api/v1/agents/{agent}/events"))
        .bearer_auth(&cred)
        .json(&batch)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(ack["accepted"], 4);
    samples.push(("EventAck", ack));

    let login_answer: Value = http
        .post(format!("{base}/api/v1/login"))
        .json(
            &json!({"tenant": tenant, "email": "ann@acme.example", "password": support::PASSWORD}),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    samples.push(("LoginResponse", login_answer));
    let ann = login(&http, base, &tenant, "ann@acme.example");
    for (schema, path) in [
        ("TenantInfo", format!("/api/v1/tenants/{tenant}")),
        ("AdminList", format!("/api/v1/tenants/{tenant}/admins")),
        ("AgentList", format!("/api/v1/tenants/{tenant}/agents")),
        ("EventPage", format!("/api/v1/tenants/{tenant}/events")),
        (
            "UpdateHistoryPage",
            format!("/api/v1/tenants/{tenant}/update-history"),
        ),
        ("Health", "/healthz".to_owned()),
    ] {
        let v: Value = http
            .get(format!("{base}{path}"))
            .bearer_auth(&ann)
            .send()
            .unwrap()
            .json()
            .unwrap();
        samples.push((schema, v));
    }
    // A release uploaded over the API, then listed and shown.
    let uploaded: Value = http
        .post(format!(
            "{base}/api/v1/tenants/{tenant}/catalog/releases?vendor=Acme&model=Voyager&hardware-id=047F:C056@0100-0200&version=1.2&file-name=fw.bin&product-family=Voyager"
        ))
        .bearer_auth(&ann)
        .header("content-type", "application/octet-stream")
        .body(vec![9u8; 1000])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = uploaded["id"].as_str().unwrap().to_owned();
    samples.push(("Release", uploaded));
    for (schema, path) in [
        (
            "ReleaseList",
            format!("/api/v1/tenants/{tenant}/catalog/releases"),
        ),
        (
            "Release",
            format!("/api/v1/tenants/{tenant}/catalog/releases/{id}"),
        ),
    ] {
        let v: Value = http
            .get(format!("{base}{path}"))
            .bearer_auth(&ann)
            .send()
            .unwrap()
            .json()
            .unwrap();
        samples.push((schema, v));
    }
    // A rollout of the uploaded release, its list and status.
    let rollout = json!({"name": "Voyager 1.2", "model": "047F:C056", "version": "latest",
        "waves": [{"percent": 5}, {"rest": true, "start": "approval"}]});
    samples.push(("RolloutInput", rollout.clone()));
    let created: Value = http
        .post(format!("{base}/api/v1/tenants/{tenant}/rollouts"))
        .bearer_auth(&ann)
        .json(&rollout)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let rollout_id = created["id"].as_str().unwrap().to_owned();
    samples.push(("Rollout", created));
    for (schema, path) in [
        ("RolloutList", format!("/api/v1/tenants/{tenant}/rollouts")),
        (
            "RolloutStatus",
            format!("/api/v1/tenants/{tenant}/rollouts/{rollout_id}/status"),
        ),
    ] {
        let v: Value = http
            .get(format!("{base}{path}"))
            .bearer_auth(&ann)
            .send()
            .unwrap()
            .json()
            .unwrap();
        samples.push((schema, v));
    }
    let error: Value = http
        .get(format!("{base}/api/v1/tenants/{tenant}/events?limit=0"))
        .bearer_auth(&ann)
        .send()
        .unwrap()
        .json()
        .unwrap();
    samples.push(("Error", error));
    // A wrong sample must fail, or the check proves nothing.
    let mut wrong = samples.clone();
    wrong.push((
        "EventAck",
        json!({"acknowledged": ["a"], "accepted": "one"}),
    ));

    let doc = http
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let doc_path = dir.path().join("openapi.json");
    std::fs::write(&doc_path, &doc).unwrap();
    let run = |samples: &[(&str, Value)]| {
        let path = dir.path().join("samples.json");
        std::fs::write(&path, serde_json::to_vec(samples).unwrap()).unwrap();
        Command::new("python3")
            .arg("-c")
            .arg(CHECK)
            .arg(&doc_path)
            .arg(&path)
            .output()
            .unwrap()
    };
    let out = run(&samples);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&wrong);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("EventAck:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
