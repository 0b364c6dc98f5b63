//! The maintenance-window preview over the API: the same answers as the CLI
//! (`windows preview --json`), across a DST change, for a read-only admin.

mod support;

use serde_json::{json, Value};
use support::{create_admin, create_tenant, login, start};

#[test]
fn preview_over_the_api_follows_the_dst_rules() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (tenant, _) = create_tenant(&data, "Acme");
    create_admin(&data, &tenant, "ro@acme.example", "read-only");
    create_admin(&data, &tenant, "full@acme.example", "full");
    let server = start(&data, &[], &[]);
    let http = reqwest::blocking::Client::new();
    let token = login(&http, &server.base, &tenant, "ro@acme.example");
    let full = login(&http, &server.base, &tenant, "full@acme.example");
    let url = format!("{}/api/v1/tenants/{tenant}/windows/preview", server.base);
    let post = |body: Value| {
        http.post(&url)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .unwrap()
    };

    // 02:30 Berlin: a normal night, then the spring-forward night, where
    // 02:30 does not exist and the window opens at 03:00 CEST (01:00Z).
    let r = post(json!({
        "cron": "30 2 * * *", "duration_minutes": 90, "tz": "Europe/Berlin",
        "from": "2026-03-28T00:00:00Z", "count": 3
    }));
    assert_eq!(r.status(), 200);
    let got: Value = r.json().unwrap();
    assert_eq!(
        got,
        json!([
            {"start": "2026-03-28T01:30:00Z", "end": "2026-03-28T03:00:00Z"},
            {"start": "2026-03-29T01:00:00Z", "end": "2026-03-29T02:30:00Z"},
            {"start": "2026-03-30T00:30:00Z", "end": "2026-03-30T02:00:00Z"},
        ])
    );

    // The policy's window shape, code and wording: a window a policy
    // refuses is refused here the same way.
    let cases = [
        (
            json!({"cron": "0 24 * * *", "duration_minutes": 60, "tz": "UTC"}),
            "hour: 24 is out of range 0-23",
        ),
        (
            json!({"cron": "0 1 * * *", "duration_minutes": 60, "tz": "Mars/Olympus"}),
            "Mars/Olympus",
        ),
        (
            json!({"cron": "0 1 * * *", "duration_minutes": 9 * 24 * 60, "tz": "UTC"}),
            "7 days",
        ),
        (
            json!({"cron": "0 1 * * *", "duration_minutes": 60, "tz": "UTC", "count": 0}),
            "count: must be 1 to 100",
        ),
        (
            json!({"cron": "0 1 * * *", "duration": "1h", "tz": "UTC"}),
            "unknown field `duration`",
        ),
    ];
    let policies = format!("{}/api/v1/tenants/{tenant}/policies/firmware", server.base);
    for (body, want) in cases {
        let r = post(body.clone());
        assert_eq!(r.status(), 422, "{body}");
        let err: Value = r.json().unwrap();
        assert_eq!(err["code"], "invalid_request", "{body}");
        let message = err["message"].as_str().unwrap();
        assert!(message.contains(want), "{body}: {message}");
        assert!(!message.contains("Failed to"), "{body}: {message}");
        if body.get("count").is_some() || body.get("duration").is_some() {
            continue;
        }
        // The same window in a policy: same code, same reason, under `window`.
        let policy = json!({"name": "p", "model": "1209:0003", "deployment": "silent",
                            "window": body});
        let r = http
            .post(&policies)
            .bearer_auth(&full)
            .json(&policy)
            .send()
            .unwrap();
        let err: Value = r.json().unwrap();
        assert_eq!(err["code"], "invalid_request", "{policy}");
        let policy_message = err["message"].as_str().unwrap();
        assert_eq!(policy_message, format!("window: {message}"), "{policy}");
    }
}
