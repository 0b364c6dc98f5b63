//! The check-in fast path against the real binary: a repeated check-in gets
//! the same answer (304 with its `ETag`), and every change that answers
//! depend on reaches the next repeat at once, also when another process (the
//! admin CLI) made it while the server was running; a replaced credential is
//! refused at once although credentials checks are cached.

mod support;

use std::path::Path;

use reqwest::blocking::Client;
use serde_json::{json, Value};
use support::{cli_json, create_admin, create_tenant, login, start, updater};

fn import(data: &Path, dir: &Path, version: &str) {
    let fw = dir.join(format!("voyager-{version}.bin"));
    std::fs::write(&fw, format!("Voyager firmware {version}").repeat(100)).unwrap();
    let out = updater(data)
        .args(["catalog", "import"])
        .arg(&fw)
        .args(["--vendor", "Acme", "--model", "Voyager"])
        .args(["--hardware-id", "047F:C056", "--version", version])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Status, `ETag`, and the answer (null for 304).
fn check_in(
    http: &Client,
    url: &str,
    credential: &str,
    body: &Value,
    etag: Option<&str>,
) -> (u16, String, Value) {
    let mut r = http.post(url).bearer_auth(credential).json(body);
    if let Some(e) = etag {
        r = r.header("if-none-match", e);
    }
    let r = r.send().unwrap();
    let status = r.status().as_u16();
    // Errors carry no ETag: empty, and the status says what happened.
    let etag = r
        .headers()
        .get("etag")
        .map_or_else(String::new, |e| e.to_str().unwrap().to_owned());
    let bytes = r.bytes().unwrap();
    (
        status,
        etag,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The target names in an answer's signed assignments.
fn targets(answer: &Value) -> Vec<String> {
    answer["assignments"]["signed"]["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["target_name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn repeats_are_answered_alike_and_every_change_reaches_the_next_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    import(&data, dir.path(), "1.0");
    let (tenant, token) = create_tenant(&data, "Acme");
    create_admin(&data, &tenant, "ann@acme.example", "full");
    let server = start(&data, &[], &[]);
    let base = server.base.as_str();
    let http = Client::new();
    let session = login(&http, base, &tenant, "ann@acme.example");
    let api = |method: reqwest::Method, path: &str, body: Value| {
        let r = http
            .request(method, format!("{base}/api/v1/tenants/{tenant}/{path}"))
            .bearer_auth(&session)
            .json(&body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    };
    api(
        reqwest::Method::POST,
        "policies/firmware",
        json!({"name": "Voyager latest", "model": "047F:C056", "version": "latest"}),
    );
    let (agent, credential) = support::enroll(&http, base, &tenant, &token, "{SYS-1}");
    let url = format!("{base}/api/v1/agents/{agent}/checkin");
    let body = json!({"agent_version": "0.1.0", "platform": "linux", "hostname": "ws-1",
        "users": [{"account": "ann"}],
        "devices": [{"vendor_id": 0x047f, "product_id": 0xc056, "bcd_device": 0x0100,
            "serial": "S1", "port_path": "1-4", "firmware_version": "0.9", "dfu": "runtime",
            "telephony": true, "in_call": false}]});

    let (s, e1, first) = check_in(&http, &url, &credential, &body, None);
    assert_eq!(s, 200);
    let t = targets(&first);
    assert!(t.len() == 1 && t[0].contains("/1.0/"), "{t:?}");
    // Repeats: 304 with the ETag, and the very same answer without it.
    let (s, e, _) = check_in(&http, &url, &credential, &body, Some(&e1));
    assert_eq!((s, e.as_str()), (304, e1.as_str()));
    let (s, e, again) = check_in(&http, &url, &credential, &body, None);
    assert_eq!((s, e.as_str(), &again), (200, e1.as_str(), &first));

    // A release imported by the CLI while the server runs.
    import(&data, dir.path(), "1.1");
    let (s, e2, answer) = check_in(&http, &url, &credential, &body, Some(&e1));
    assert_eq!(s, 200, "a new release changes the answer");
    let t = targets(&answer);
    assert!(t.len() == 1 && t[0].contains("/1.1/"), "{t:?}");

    // A group created by the CLI: ann's effective group and poll interval.
    cli_json(
        &data,
        &[
            "group",
            "create",
            "--tenant",
            &tenant,
            "--name",
            "Sales",
            "--member",
            "ann",
            "--poll-interval-secs",
            "3600",
            "--json",
        ],
    );
    let (s, e3, answer) = check_in(&http, &url, &credential, &body, Some(&e2));
    assert_eq!(
        (s, answer["poll_interval_secs"].as_u64()),
        (200, Some(3600)),
        "{answer}"
    );

    // Settings changed over the API.
    api(
        reqwest::Method::PUT,
        "settings",
        json!({"excluded_accounts": ["svc-backup"]}),
    );
    let (s, e4, _) = check_in(&http, &url, &credential, &body, Some(&e3));
    assert_eq!(s, 200, "the account rules are part of the answer");
    let (s, e, _) = check_in(&http, &url, &credential, &body, Some(&e4));
    assert_eq!((s, e.as_str()), (304, e4.as_str()));

    // A different report is a different request: 200 unless the answer is
    // the same, and the inventory records it.
    let mut moved = body.clone();
    moved["hostname"] = json!("ws-2");
    let (s, e, _) = check_in(&http, &url, &credential, &moved, Some(&e4));
    assert_eq!((s, e.as_str()), (304, e4.as_str()), "same answer");
    let hosts: Value = http
        .get(format!("{base}/api/v1/tenants/{tenant}/hosts"))
        .bearer_auth(&session)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(hosts[0]["hostname"], "ws-2");

    // A re-enrollment replaces the credential: the old one is refused at
    // once, though it was just accepted for a cached repeat.
    let (s, _, _) = check_in(&http, &url, &credential, &body, Some(&e4));
    assert_eq!(s, 304);
    let r: Value = http
        .post(format!("{base}/api/v1/enroll"))
        .json(
            &json!({"tenant": tenant, "token": token, "system_id": "{SYS-1}",
            "machine_fingerprint": "fp-{SYS-1}", "hostname": "ws-1", "os": "Linux"}),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(r["id"].as_str(), Some(agent.as_str()), "{r}");
    let new_credential = r["credential"].as_str().unwrap().to_owned();
    let r = http
        .post(&url)
        .bearer_auth(&credential)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401, "the replaced credential is dead");
    let (s, _, _) = check_in(&http, &url, &new_credential, &body, None);
    assert_eq!(s, 200);
    let credential = new_credential;

    // The body is still checked when the cache could answer: a repeat with
    // the wrong content type is refused.
    let r = http
        .post(&url)
        .bearer_auth(&credential)
        .header("content-type", "text/plain")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status(), 415);
}

/// Check-ins of one agent at the same moment (a retry while the first is in
/// flight, two processes sharing a credential), each with a report the
/// server has not seen: every one is answered, none with an error, and the
/// inventory holds the agent's devices once.
#[test]
fn concurrent_check_ins_of_one_agent_are_all_answered() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    import(&data, dir.path(), "1.0");
    let (tenant, token) = create_tenant(&data, "Acme");
    create_admin(&data, &tenant, "ann@acme.example", "full");
    let server = start(&data, &[], &[]);
    let base = server.base.clone();
    let http = Client::new();
    const AT_ONCE: usize = 8;
    for round in 0..5 {
        let (agent, credential) =
            support::enroll(&http, &base, &tenant, &token, &format!("{{SYS-{round}}}"));
        let url = format!("{base}/api/v1/agents/{agent}/checkin");
        let barrier = std::sync::Barrier::new(AT_ONCE);
        let statuses: Vec<(u16, Value)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..AT_ONCE)
                .map(|n| {
                    let (http, url, credential, barrier) = (&http, &url, &credential, &barrier);
                    s.spawn(move || {
                        // Reports that differ (the cache answers none of them)
                        // but name the same devices and user.
                        let body = json!({"agent_version": format!("0.1.{n}"),
                            "platform": "linux", "hostname": "ws-1",
                            "users": [{"account": "ann"}],
                            "devices": [{"vendor_id": 0x047f, "product_id": 0xc056,
                                "bcd_device": 0x0100, "serial": format!("S{round}"),
                                "port_path": "1-4", "firmware_version": "0.9",
                                "dfu": "runtime", "telephony": true, "in_call": false}]});
                        barrier.wait();
                        let (status, _, answer) = check_in(http, url, credential, &body, None);
                        (status, answer)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (status, answer) in &statuses {
            assert_eq!(*status, 200, "round {round}: {answer}");
        }
    }
    let session = login(&http, &base, &tenant, "ann@acme.example");
    let devices: Value = http
        .get(format!("{base}/api/v1/tenants/{tenant}/devices"))
        .bearer_auth(&session)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut serials: Vec<&str> = devices
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["serial"].as_str())
        .collect();
    serials.sort_unstable();
    assert_eq!(serials, ["S0", "S1", "S2", "S3", "S4"], "{devices}");
}
