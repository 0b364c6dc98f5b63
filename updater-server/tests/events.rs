//! Agent events over HTTP against the real binary: authentication,
//! idempotency, limits, paging, update history, metrics, the OpenAPI document.

mod support;

use reqwest::blocking::Client;
use serde_json::{json, Value};
use support::{create_admin, create_tenant, enroll, login, start};

fn event(id: &str, kind: &str, extra: Value) -> Value {
    let mut e = json!({"id": id, "at": "2026-01-02T03:04:05Z", "kind": kind,
                       "device": "047f/serial/SN1", "detail": {"n": 1}});
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
}

fn post(http: &Client, base: &str, agent: &str, auth: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = http
        .post(format!("{base}/api/v1/agents/{agent}/events"))
        .json(body);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let r = req.send().unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

fn get(http: &Client, base: &str, path: &str, token: &str) -> (u16, Value) {
    let r = http
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap())
}

#[test]
fn events_are_stored_once_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (a, a_token) = create_tenant(&data, "Acme");
    let (b, b_token) = create_tenant(&data, "Bravo");
    create_admin(&data, &a, "ann@acme.example", "full");
    create_admin(&data, &b, "bea@bravo.example", "full");
    let server = start(&data, &[], &[]);
    let base = server.base.as_str();
    let http = Client::new();
    let (agent, cred) = enroll(&http, base, &a, &a_token, "{SYS-1}");
    let (other, other_cred) = enroll(&http, base, &a, &a_token, "{SYS-2}");
    let (_, b_cred) = enroll(&http, base, &b, &b_token, "{SYS-1}");
    let ann = login(&http, base, &a, "ann@acme.example");
    let bea = login(&http, base, &b, "bea@bravo.example");
    let bearer = format!("Bearer {cred}");

    let target = json!({"target": "acme/voyager/1.2/fw.bin", "version": "1.2"});
    let batch = json!({"events": [
        event("e1", "agent_started", json!({})),
        event("e2", "update_succeeded", target.clone()),
        event("e3", "update_failed", json!({"target": "acme/voyager/1.3/fw.bin", "version": "1.3", "reason": "verify failed"})),
        event("e1", "device_attached", json!({})),
        event("e4", "device_detached", json!({})),
    ]});
    let (status, ack) = post(&http, base, &agent, Some(&bearer), &batch);
    assert_eq!(status, 200, "{ack}");
    assert_eq!(
        ack,
        json!({"acknowledged": ["e1", "e2", "e3", "e4"], "accepted": 4, "duplicates": 1})
    );
    // The retry answers the same acknowledgement and stores nothing.
    let (status, again) = post(&http, base, &agent, Some(&bearer), &batch);
    assert_eq!(status, 200);
    assert_eq!(
        again,
        json!({"acknowledged": ["e1", "e2", "e3", "e4"], "accepted": 0, "duplicates": 5})
    );
    // The same event ids from another agent are its own events.
    let (status, theirs) = post(
        &http,
        base,
        &other,
        Some(&format!("Bearer {other_cred}")),
        &json!({"events": [event("e1", "agent_started", json!({}))]}),
    );
    assert_eq!((status, theirs["accepted"].clone()), (200, json!(1)));

    // Who may post: only the path's agent, with its current credential.
    let mut tampered = cred.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    let one = json!({"events": [event("x1", "agent_started", json!({}))]});
    for (auth, want) in [
        (None, 401),
        (Some(format!("Bearer {tampered}")), 401),
        (Some(format!("Token {cred}")), 401),
        (Some(format!("Bearer {ann}")), 401),
        (Some(format!("Bearer {a_token}")), 401),
        (Some(format!("Bearer {other_cred}")), 404),
        (Some(format!("Bearer {b_cred}")), 404),
    ] {
        let (status, body) = post(&http, base, &agent, auth.as_deref(), &one);
        assert_eq!(status, want, "{auth:?}: {body}");
        let code = if want == 401 {
            "unauthorized"
        } else {
            "not_found"
        };
        assert_eq!(body["code"], code);
    }
    let (status, _) = post(&http, base, "00000000000000ff", Some(&bearer), &one);
    assert_eq!(status, 404);
    // Re-enrollment replaces the credential: the old one is refused.
    let r = http
        .post(format!("{base}/api/v1/enroll"))
        .json(
            &json!({"tenant": a, "token": a_token, "system_id": "{SYS-1}",
                      "machine_fingerprint": "fp-{SYS-1}", "hostname": "ws-1", "os": "Linux"}),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let new_cred = r.json::<Value>().unwrap()["credential"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(post(&http, base, &agent, Some(&bearer), &one).0, 401);
    let bearer = format!("Bearer {new_cred}");

    // Invalid batches store nothing.
    for (body, want) in [
        (
            json!({"events": [event("ok", "agent_started", json!({})), event("bad id", "agent_started", json!({}))]}),
            422,
        ),
        (
            json!({"events": [event("k", "no_such_kind", json!({}))]}),
            422,
        ),
        (json!({"events": [], "extra": 1}), 422),
        (
            json!({"events": (0..1001).map(|i| event(&format!("m{i}"), "agent_started", json!({}))).collect::<Vec<_>>()}),
            422,
        ),
    ] {
        let (status, body) = post(&http, base, &agent, Some(&bearer), &body);
        assert_eq!(
            (status, &body["code"]),
            (want, &json!("invalid_request")),
            "{body}"
        );
    }
    // Bodies above the server's 64 KiB default are fine here, up to 1 MiB.
    let pad = "p".repeat(1000);
    let big: Vec<Value> = (0..600)
        .map(|i| {
            event(
                &format!("big{i}"),
                "device_attached",
                json!({"detail": {"pad": pad}}),
            )
        })
        .collect();
    let (status, ack) = post(&http, base, &agent, Some(&bearer), &json!({"events": big}));
    assert_eq!((status, ack["accepted"].clone()), (200, json!(600)));
    let huge: Vec<Value> = (0..1000)
        .map(|i| {
            event(
                &format!("huge{i}"),
                "device_attached",
                json!({"detail": {"pad": pad}}),
            )
        })
        .collect();
    // The server answers 413 without reading the body and drops the
    // connection: send these on connections that are not pooled.
    let unpooled = Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let (status, body) = post(
        &unpooled,
        base,
        &agent,
        Some(&bearer),
        &json!({"events": huge}),
    );
    assert_eq!((status, &body["code"]), (413, &json!("payload_too_large")));
    // Other routes keep the default limit.
    let r = unpooled
        .post(format!("{base}/api/v1/login"))
        .header("content-type", "application/json")
        .body(format!("{{\"tenant\":\"{}\"}}", "x".repeat(70_000)))
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);

    // Reading back: receive order, paged, exactly once.
    let (status, page) = get(
        &http,
        base,
        &format!("/api/v1/tenants/{a}/events?limit=3"),
        &ann,
    );
    assert_eq!(status, 200);
    let ids: Vec<(&str, &str)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["agent"].as_str().unwrap(),
                e["event"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            (agent.as_str(), "e1"),
            (agent.as_str(), "e2"),
            (agent.as_str(), "e3")
        ]
    );
    assert_eq!(page["next_since"], 3);
    assert_eq!(page["items"][0]["event"]["kind"], "agent_started");
    assert_eq!(page["items"][0]["seq"], 1);
    let (_, rest) = get(
        &http,
        base,
        &format!("/api/v1/tenants/{a}/events?since=3&limit=1000"),
        &ann,
    );
    let rest = rest["items"].as_array().unwrap();
    assert_eq!(rest.len(), 2 + 600);
    assert_eq!(
        (rest[0]["event"]["id"].clone(), rest[1]["agent"].clone()),
        (json!("e4"), json!(other))
    );
    let (_, end) = get(
        &http,
        base,
        &format!("/api/v1/tenants/{a}/events?since=605"),
        &ann,
    );
    assert_eq!(end, json!({"items": [], "next_since": 605}));
    for bad in ["limit=0", "limit=1001", "since=abc", "since=-1", "cursor=1"] {
        let (status, body) = get(
            &http,
            base,
            &format!("/api/v1/tenants/{a}/events?{bad}"),
            &ann,
        );
        assert_eq!(
            (status, &body["code"]),
            (400, &json!("invalid_request")),
            "{bad}"
        );
    }
    // Tenants see only their own events.
    let (_, theirs) = get(&http, base, &format!("/api/v1/tenants/{b}/events"), &bea);
    assert_eq!(theirs, json!({"items": [], "next_since": 0}));
    assert_eq!(
        get(&http, base, &format!("/api/v1/tenants/{a}/events"), &bea).0,
        404
    );

    let (status, history) = get(
        &http,
        base,
        &format!("/api/v1/tenants/{a}/update-history"),
        &ann,
    );
    assert_eq!(status, 200);
    assert_eq!(
        history,
        json!({"items": [
            {"seq": 2, "agent": agent, "device": "047f/serial/SN1", "target": "acme/voyager/1.2/fw.bin",
             "version": "1.2", "outcome": "succeeded", "reason": null, "at": "2026-01-02T03:04:05Z", "event_id": "e2"},
            {"seq": 3, "agent": agent, "device": "047f/serial/SN1", "target": "acme/voyager/1.3/fw.bin",
             "version": "1.3", "outcome": "failed", "reason": "verify failed", "at": "2026-01-02T03:04:05Z", "event_id": "e3"},
        ], "next_since": 3})
    );
    // Filters by agent and device; the cursor moves past what they skip.
    let (_, theirs) = get(
        &http,
        base,
        &format!("/api/v1/tenants/{a}/events?agent={other}"),
        &ann,
    );
    let seqs: Vec<&Value> = theirs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["seq"])
        .collect();
    assert_eq!(
        (seqs, &theirs["next_since"]),
        (vec![&json!(5)], &json!(605))
    );
    let (_, first) = get(
        &http,
        base,
        &format!("/api/v1/tenants/{a}/update-history?agent={agent}&device=047f/serial/SN1&limit=1"),
        &ann,
    );
    assert_eq!(
        (&first["items"][0]["seq"], &first["next_since"]),
        (&json!(2), &json!(2))
    );
    let (_, none) = get(
        &http,
        base,
        &format!("/api/v1/tenants/{a}/update-history?device=047f/serial/OTHER"),
        &ann,
    );
    assert_eq!(none, json!({"items": [], "next_since": 3}));

    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("\nupdater_events_ingested_total 605\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nupdater_events_duplicate_total 6\n"),
        "{metrics}"
    );

    // The OpenAPI document is public.
    let r = http
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/agents/{agent}/events"]["post"].is_object());

    // Stored durably: a new process on the same data sees the same events.
    drop(server);
    let server = start(&data, &[], &[]);
    let (_, page) = get(
        &http,
        &server.base,
        &format!("/api/v1/tenants/{a}/events?limit=1"),
        &ann,
    );
    assert_eq!(page["items"][0]["event"]["id"], "e1");
}
