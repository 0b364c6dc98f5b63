//! Every tenant-scoped route × every kind of caller, against the real binary.
//!
//! The routes come from `updater_server::http::api::TENANT_ROUTES`, the table
//! the router is built from, so a new route is walked without editing this file.

mod support;

use std::path::Path;

use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{json, Value};
use support::{create_admin, create_tenant, login, start, updater, PASSWORD};
use updater_server::http::api::{Access, Method, Route, TENANT_ROUTES};

/// How a caller presents itself.
#[derive(Debug, Clone)]
enum Caller {
    Nobody,
    Bearer(String),
    /// The raw `Authorization` header value.
    Header(String),
}

struct Column {
    name: &'static str,
    caller: Caller,
    /// The expected status for a route, given its access level and success status.
    expect: fn(Access, u16) -> u16,
}

/// A release of the Voyager (047F:C056, which the route examples name).
fn import_release(data: &Path, dir: &Path, version: &str) {
    import_model(data, dir, "Voyager", "047F:C056", version);
}

/// Release `version` of `model` (`id`: its `VID:PID`).
fn import_model(data: &Path, dir: &Path, model: &str, id: &str, version: &str) {
    let fw = dir.join("fw.bin");
    std::fs::write(&fw, format!("image {model} {version}").repeat(512)).unwrap();
    let out = updater(data)
        .args(["catalog", "import"])
        .arg(&fw)
        .args([
            "--vendor",
            "Acme",
            "--model",
            model,
            "--hardware-id",
            id,
            "--version",
            version,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn send(
    http: &Client,
    base: &str,
    route: &Route,
    path: &str,
    caller: &Caller,
    column: usize,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
    if route.method == Method::Post && route.path.ends_with("/catalog/releases") {
        // The upload: the body is a firmware file and the options are the
        // query. Each column uploads its own version, so that both columns
        // allowed to upload add a release.
        let req = http
            .request(
                method,
                format!("{base}{path}?vendor=Acme&model=Voyager&hardware-id=047F:C056&version=3.{column}&file-name=fw.bin"),
            )
            .header("content-type", "application/octet-stream")
            .body(format!("uploaded image {column}").into_bytes());
        return finish(req, caller, path);
    }
    let mut req: RequestBuilder = http.request(method, format!("{base}{path}"));
    // Changing one's own password needs the caller's real one (every admin
    // here has the same); they keep it, so later columns still log in.
    let body = if route.access == Access::Admin {
        format!(r#"{{"current_password":"{PASSWORD}","new_password":"{PASSWORD}"}}"#)
    } else {
        route.example_body.to_owned()
    };
    if !body.is_empty() {
        req = req.header("content-type", "application/json").body(body);
    }
    finish(req, caller, path)
}

fn finish(req: RequestBuilder, caller: &Caller, path: &str) -> (u16, Value) {
    let req = match caller {
        Caller::Nobody => req,
        Caller::Bearer(t) => req.bearer_auth(t),
        Caller::Header(h) => req.header("authorization", h),
    };
    let r = req.send().unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{path}: not JSON ({e})"))
    };
    (status, body)
}

fn tampered(token: &str) -> String {
    let mut t = token.as_bytes().to_vec();
    let last = t.len() - 1;
    t[last] = if t[last] == b'0' { b'1' } else { b'0' };
    String::from_utf8(t).unwrap()
}

#[test]
fn every_tenant_route_for_every_caller() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // 1.0 stays; 0.1 and 0.2 are the two removals' victims.
    for version in ["1.0", "0.1", "0.2"] {
        import_release(&data, dir.path(), version);
    }
    // The victim rollouts update another model than the route example's.
    import_model(&data, dir.path(), "Orbit", "047F:0A0A", "1.0");
    let (a, a_enroll) = create_tenant(&data, "Acme");
    let (b, _) = create_tenant(&data, "Bravo");
    create_admin(&data, &a, "ann@acme.example", "full");
    create_admin(&data, &a, "rob@acme.example", "read-only");
    create_admin(&data, &a, "gone@acme.example", "full");
    let victim_admin = create_admin(&data, &a, "victim@acme.example", "read-only");
    create_admin(&data, &b, "bea@bravo.example", "full");
    let http = Client::new();

    // A session that expires at once: log in under a zero idle timeout. The
    // deadline is stored with the session, so it stays expired afterwards.
    let expired = {
        let server = start(&data, &[], &[("UPDATER_SESSION_IDLE_SECS", "0")]);
        let token = login(&http, &server.base, &a, "ann@acme.example");
        let r = http
            .get(format!("{}/api/v1/tenants/{a}", server.base))
            .bearer_auth(&token)
            .send()
            .unwrap();
        assert_eq!(r.status(), 401);
        token
    };

    // Tenant A may change the catalog (B may not: catalog_upload.rs).
    let server = start(&data, &["--catalog-managers", &a], &[]);
    let base = server.base.as_str();
    let ann = login(&http, base, &a, "ann@acme.example");
    let rob = login(&http, base, &a, "rob@acme.example");
    let bea = login(&http, base, &b, "bea@bravo.example");
    let gone = login(&http, base, &a, "gone@acme.example");
    // An agent of tenant A, with one update reported (for the event routes).
    let (agent, agent_cred) = support::enroll(&http, base, &a, &a_enroll, "{SYS-1}");
    let r = http
        .post(format!("{base}/api/v1/agents/{agent}/events"))
        .bearer_auth(&agent_cred)
        .json(
            &json!({"events": [{"id": "ev1", "at": "2026-01-02T03:04:05Z",
            "kind": "update_succeeded", "target": "acme/voyager/1.0/fw.bin", "version": "1.0"}]}),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    let new_token = |scope: &str| -> (String, String) {
        let r = http
            .post(format!("{base}/api/v1/tenants/{a}/api-tokens"))
            .bearer_auth(&ann)
            .json(&json!({ "name": format!("app {scope}"), "scope": scope }))
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().unwrap();
        (
            v["id"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    };
    let (_, api_read) = new_token("read");
    let (_, api_full) = new_token("full");
    let (revoked_id, revoked) = new_token("full");
    let (victim_token, _) = new_token("read");
    let r = http
        .delete(format!("{base}/api/v1/tenants/{a}/api-tokens/{revoked_id}"))
        .bearer_auth(&ann)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    // Deleted while the server runs (the CLI shares the store): its session dies.
    let gone_id = support::cli_json(&data, &["admin", "list", "--tenant", &a, "--json"])
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["email"] == "gone@acme.example")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = updater(&data)
        .args(["admin", "delete", "--tenant", &a, &gone_id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let victims = fleet_victims(&http, base, &a, &a_enroll, &ann);

    let unauthorized: fn(Access, u16) -> u16 = |_, _| 401;
    let columns = [
        Column {
            name: "no credentials",
            caller: Caller::Nobody,
            expect: unauthorized,
        },
        Column {
            name: "other tenant's full admin",
            caller: Caller::Bearer(bea.clone()),
            expect: |_, _| 404,
        },
        Column {
            name: "read-only admin",
            caller: Caller::Bearer(rob.clone()),
            expect: |access, ok| match access {
                Access::Read | Access::Admin => ok,
                _ => 403,
            },
        },
        Column {
            name: "read api token",
            caller: Caller::Bearer(api_read.clone()),
            expect: |access, ok| if access == Access::Read { ok } else { 403 },
        },
        Column {
            name: "full api token",
            caller: Caller::Bearer(api_full.clone()),
            expect: |access, ok| match access {
                Access::FullAdmin | Access::Admin => 403,
                _ => ok,
            },
        },
        Column {
            name: "revoked api token",
            caller: Caller::Bearer(revoked),
            expect: unauthorized,
        },
        Column {
            name: "expired session",
            caller: Caller::Bearer(expired),
            expect: unauthorized,
        },
        Column {
            name: "deleted admin's session",
            caller: Caller::Bearer(gone),
            expect: unauthorized,
        },
        Column {
            name: "agent credential",
            caller: Caller::Bearer(agent_cred.clone()),
            expect: unauthorized,
        },
        Column {
            name: "tampered session",
            caller: Caller::Bearer(tampered(&ann)),
            expect: unauthorized,
        },
        Column {
            name: "session in a Token header",
            caller: Caller::Header(format!("Token {ann}")),
            expect: unauthorized,
        },
        Column {
            name: "session without a scheme",
            caller: Caller::Header(ann.clone()),
            expect: unauthorized,
        },
        // Last: its writes succeed and use up the DELETE targets.
        Column {
            name: "full admin",
            caller: Caller::Bearer(ann.clone()),
            expect: |_, ok| ok,
        },
    ];

    assert!(TENANT_ROUTES.len() >= 30);
    for (n, column) in columns.iter().enumerate() {
        for route in TENANT_ROUTES {
            let path = route.path.replace("{tenant}", &a);
            let path = if route.path.contains("/admins/{id}") {
                path.replace("{id}", &victim_admin)
            } else if route.path.contains("/api-tokens/{id}") {
                path.replace("{id}", &victim_token)
            } else if let Some((_, ids)) = victims
                .iter()
                .find(|(prefix, _)| route.path.contains(&format!("/{prefix}/{{id}}")))
            {
                // Write routes succeed for two columns: each gets its own record.
                path.replace("{id}", &ids[usize::from(column.name == "full admin")])
            } else {
                path
            };
            assert!(
                !path.contains('{'),
                "no test value for a parameter of {}",
                route.path
            );
            let (status, body) = send(&http, base, route, &path, &column.caller, n);
            let want = (column.expect)(route.access, route.success);
            assert_eq!(
                status,
                want,
                "{} {} as {}: {body}",
                route.method.as_str(),
                route.path,
                column.name
            );
            let code = match status {
                401 => Some("unauthorized"),
                403 => Some("forbidden"),
                404 => Some("not_found"),
                _ => None,
            };
            if let Some(code) = code {
                assert_eq!(body["code"], code, "{} as {}", route.path, column.name);
            }
        }
    }

    // The full admin's answers carry the real data (and never secrets).
    let get = |path: &str| -> Value {
        let r = http
            .get(format!("{base}{path}"))
            .bearer_auth(&ann)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().unwrap()
    };
    let info = get(&format!("/api/v1/tenants/{a}"));
    assert_eq!(info["name"], "Acme");
    assert_eq!(info["enrollment_token"]["active"], true);
    assert!(!info.to_string().contains("upde_"));
    let root_version = info["catalog_root"]["version"].as_u64().unwrap();
    let root = http
        .get(format!("{base}/repo/metadata/{root_version}.root.json"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(
        info["catalog_root"]["sha256"],
        hex_sha256(&root),
        "tenant info names the served root"
    );
    // The two removals took 0.1 and 0.2; the two uploads added theirs.
    let releases = get(&format!("/api/v1/tenants/{a}/catalog/releases"));
    let versions: Vec<&str> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"]["version"].as_str().unwrap())
        .collect();
    let full_token = columns
        .iter()
        .position(|c| c.name == "full api token")
        .unwrap();
    assert_eq!(
        versions,
        [
            "1.0".to_owned(),
            "1.0".to_owned(),
            format!("3.{full_token}"),
            format!("3.{}", columns.len() - 1)
        ]
    );
    let admins = get(&format!("/api/v1/tenants/{a}/admins"));
    let emails: Vec<_> = admins
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["email"].clone())
        .collect();
    assert!(
        emails.contains(&json!("new-admin@example.com")),
        "{emails:?}"
    );
    assert!(!emails.contains(&json!("victim@acme.example")));
    assert!(!admins.to_string().contains("argon2"));
    let events = get(&format!("/api/v1/tenants/{a}/events"));
    assert_eq!(events["items"][0]["event"]["id"], "ev1");
    assert_eq!(events["items"][0]["agent"], agent.as_str());
    let history = get(&format!("/api/v1/tenants/{a}/update-history"));
    assert_eq!(history["items"][0]["outcome"], "succeeded");
    assert_eq!(history["items"][0]["version"], "1.0");
    let tokens = get(&format!("/api/v1/tenants/{a}/api-tokens"));
    assert!(!tokens.to_string().contains("updt_"));
    let victim = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == victim_token.as_str())
        .unwrap();
    assert!(victim["revoked_at"].is_string());

    // Tenant B's admin gets the same 404 for A as for a tenant that does not exist.
    for tenant in [a.as_str(), "00000000000000ff", "%ff", "..%2f"] {
        let r = http
            .get(format!("{base}/api/v1/tenants/{tenant}"))
            .bearer_auth(&bea)
            .send()
            .unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(
            r.json::<Value>().unwrap(),
            json!({"code": "not_found", "message": "no such tenant or resource"})
        );
    }
}

/// Two records per kind for the `{id}` routes of groups, policies and the
/// inventory (the inventory comes from two agents' check-ins).
fn fleet_victims(
    http: &Client,
    base: &str,
    tenant: &str,
    enrollment: &str,
    admin: &str,
) -> Vec<(&'static str, [String; 2])> {
    let t = |p: &str| format!("{base}/api/v1/tenants/{tenant}/{p}");
    let create = |p: &str, body: Value| -> String {
        let r = http
            .post(t(p))
            .bearer_auth(admin)
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 201, "{p}");
        r.json::<Value>().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let two = |p: &str, body: Value| [create(p, body.clone()), create(p, body)];
    let groups = two(
        "groups",
        json!({"name": "victim", "membership": {"kind": "manual"}}),
    );
    let fw = two(
        "policies/firmware",
        json!({"name": "victim", "model": "047F:C056", "version": "latest", "enabled": false}),
    );
    let sw = two(
        "policies/software",
        json!({"name": "victim", "platform": "linux", "version": "latest", "enabled": false}),
    );
    let mut agents = Vec::new();
    for n in 0..2 {
        let r = http
            .post(format!("{base}/api/v1/enroll"))
            .json(&json!({"tenant": tenant, "token": enrollment, "system_id": format!("SYS-{n}"),
                "machine_fingerprint": format!("m{n}"), "hostname": format!("ws-{n}"), "os": "Linux"}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().unwrap();
        let id = v["id"].as_str().unwrap().to_owned();
        let r = http
            .post(format!("{base}/api/v1/agents/{id}/checkin"))
            .bearer_auth(v["credential"].as_str().unwrap())
            .json(&json!({"agent_version": "0.1.0", "platform": "linux", "hostname": format!("ws-{n}"),
                "users": [{"account": format!("user{n}")}],
                "devices": [{"vendor_id": 0x047f, "product_id": 0xc056, "bcd_device": 0x100,
                    "serial": format!("SN{n}"), "port_path": "1-1", "manufacturer": null,
                    "product": null, "firmware_version": "1.0", "dfu": "runtime",
                    "telephony": true, "battery": null, "in_call": false}]}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        agents.push(id);
    }
    let list = |p: &str, field: &str, want: [String; 2]| -> [String; 2] {
        let v: Value = http
            .get(t(p))
            .bearer_auth(admin)
            .send()
            .unwrap()
            .json()
            .unwrap();
        want.map(|w| {
            v.as_array()
                .unwrap()
                .iter()
                .find(|x| x[field] == w.as_str())
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
    };
    // Rollouts of another model than the route example's, one per victim
    // group (targets that do not overlap), each waiting for an approval so
    // that pause, resume, approve, cancel and delete all apply in turn.
    let rollouts = [0, 1].map(|n| {
        create(
            "rollouts",
            json!({"name": format!("victim {n}"), "model": "047F:0A0A", "version": "1.0",
                   "groups": [groups[n]],
                   "waves": [{"percent": 50}, {"rest": true, "start": "approval"}]}),
        )
    });
    let devices = list("devices", "serial", ["SN0".into(), "SN1".into()]);
    let users = list("users", "name", ["user0".into(), "user1".into()]);
    let releases: Value = http
        .get(t("catalog/releases"))
        .bearer_auth(admin)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let release = |version: &str| -> String {
        releases
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["version"]["version"] == version)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    vec![
        ("catalog/releases", [release("0.1"), release("0.2")]),
        ("groups", groups),
        ("policies/firmware", fw),
        ("policies/software", sw),
        ("devices", devices),
        ("hosts", [agents[0].clone(), agents[1].clone()]),
        ("users", users),
        ("rollouts", rollouts),
    ]
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
