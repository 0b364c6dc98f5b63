//! Login, logout, tokens, CLI account commands and metrics, with the real binary.

mod support;

use std::io::Write;
use std::process::Stdio;

use reqwest::blocking::Client;
use serde_json::{json, Value};
use support::{cli_json, create_admin, create_tenant, login, start, updater, PASSWORD};

fn code(r: reqwest::blocking::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().unwrap())
}

#[test]
fn login_and_logout() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (a, _) = create_tenant(&data, "Acme");
    let (b, _) = create_tenant(&data, "Bravo");
    create_admin(&data, &a, "Ann@Acme.example", "full");
    let server = start(&data, &[], &[]);
    let http = Client::new();
    let url = format!("{}/api/v1/login", server.base);

    // Every wrong input answers the same.
    for body in [
        json!({"tenant": a, "email": "ann@acme.example", "password": "wrong password, long"}),
        json!({"tenant": a, "email": "nobody@acme.example", "password": PASSWORD}),
        json!({"tenant": b, "email": "ann@acme.example", "password": PASSWORD}),
        json!({"tenant": "0000000000000000", "email": "ann@acme.example", "password": PASSWORD}),
    ] {
        let (status, v) = code(http.post(&url).json(&body).send().unwrap());
        assert_eq!(status, 401, "{body}");
        assert_eq!(
            v,
            json!({"code": "invalid_credentials", "message": "wrong tenant, e-mail or password"})
        );
    }
    // Malformed requests get JSON errors too.
    for (body, status, want) in [
        ("{not json", 400, "invalid_request"),
        (r#"{"tenant":"x"}"#, 422, "invalid_request"),
        (
            r#"{"tenant":"x","email":"e","password":"p","extra":1}"#,
            422,
            "invalid_request",
        ),
    ] {
        let r = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        let (s, v) = code(r);
        assert_eq!((s, v["code"].as_str().unwrap()), (status, want), "{body}");
    }
    let (s, v) = code(http.post(&url).body(vec![b' '; 100_000]).send().unwrap());
    assert_eq!((s, v["code"].as_str().unwrap()), (413, "payload_too_large"));

    // E-mail matching ignores case; the session works until logout.
    let login_body = json!({"tenant": a, "email": "ANN@acme.EXAMPLE", "password": PASSWORD});
    let v: Value = http
        .post(&url)
        .json(&login_body)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = v["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with(&format!("upds_{a}_")));
    assert_eq!(v["token_type"], "Bearer");
    let idle =
        chrono::DateTime::parse_from_rfc3339(v["idle_expires_at"].as_str().unwrap()).unwrap();
    let abs = chrono::DateTime::parse_from_rfc3339(v["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(abs - idle, chrono::TimeDelta::hours(11));
    let info = format!("{}/api/v1/tenants/{a}", server.base);
    assert_eq!(
        http.get(&info).bearer_auth(&token).send().unwrap().status(),
        200
    );
    let logout = format!("{}/api/v1/logout", server.base);
    assert_eq!(http.post(&logout).send().unwrap().status(), 401);
    assert_eq!(
        http.post(&logout)
            .bearer_auth(&token)
            .send()
            .unwrap()
            .status(),
        204
    );
    let r = http.get(&info).bearer_auth(&token).send().unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        http.post(&logout)
            .bearer_auth(&token)
            .send()
            .unwrap()
            .status(),
        401
    );

    // Ten wrong passwords lock the account (in this server process) for 15 minutes.
    let wrong = json!({"tenant": a, "email": "ann@acme.example", "password": "not the password!"});
    for _ in 0..10 {
        assert_eq!(http.post(&url).json(&wrong).send().unwrap().status(), 401);
    }
    let r = http.post(&url).json(&login_body).send().unwrap();
    let retry: u32 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((800..=900).contains(&retry), "{retry}");
    let (s, v) = code(r);
    assert_eq!((s, v["code"].as_str().unwrap()), (429, "too_many_attempts"));
}

#[test]
fn admin_and_token_management_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (a, first_enroll) = create_tenant(&data, "Acme");
    create_admin(&data, &a, "ann@acme.example", "full");
    let server = start(&data, &[], &[]);
    let http = Client::new();
    let base = server.base.as_str();
    let ann = login(&http, base, &a, "ann@acme.example");

    let admins = format!("{base}/api/v1/tenants/{a}/admins");
    let new = |email: &str, primary: bool| {
        http.post(&admins)
            .bearer_auth(&ann)
            .json(&json!({"email": email, "role": "read-only", "password": PASSWORD, "primary": primary}))
            .send()
            .unwrap()
    };
    let (s, v) = code(new("Rob@acme.example", true));
    assert_eq!(s, 201);
    assert_eq!(
        (
            v["email"].as_str(),
            v["role"].as_str(),
            v["primary"].as_bool()
        ),
        (Some("rob@acme.example"), Some("read-only"), Some(true))
    );
    let (s, v) = code(new("rob@acme.example", false));
    assert_eq!((s, v["code"].as_str().unwrap()), (409, "email_taken"));
    let (s, v) = code(new("sue@acme.example", true));
    assert_eq!((s, v["code"].as_str().unwrap()), (409, "primary_exists"));
    let (s, v) = code(
        http.post(&admins)
            .bearer_auth(&ann)
            .json(&json!({"email": "x@acme.example", "role": "owner", "password": PASSWORD}))
            .send()
            .unwrap(),
    );
    assert_eq!((s, v["code"].as_str().unwrap()), (422, "invalid_request"));
    let (s, v) = code(
        http.post(&admins)
            .bearer_auth(&ann)
            .json(&json!({"email": "x@acme.example", "role": "full", "password": "short"}))
            .send()
            .unwrap(),
    );
    assert_eq!((s, v["code"].as_str().unwrap()), (400, "invalid_request"));

    // Rotating the enrollment token returns a new one; tenant info shows it active.
    let rotate = format!("{base}/api/v1/tenants/{a}/enrollment-token/rotate");
    let v: Value = http
        .post(&rotate)
        .bearer_auth(&ann)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let rotated = v["token"].as_str().unwrap();
    assert!(rotated.starts_with(&format!("upde_{a}_")));
    assert_ne!(rotated, first_enroll);

    // Deleting an unknown token or admin is a 404, never a 500.
    for path in ["api-tokens/00000000000000aa", "admins/00000000000000aa"] {
        let r = http
            .delete(format!("{base}/api/v1/tenants/{a}/{path}"))
            .bearer_auth(&ann)
            .send()
            .unwrap();
        assert_eq!(
            code(r),
            (
                404,
                json!({"code": "not_found", "message": "no such tenant or resource"})
            )
        );
    }

    // Metrics count requests under their route template, not the raw path.
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(metrics.contains(
        "updater_http_requests_total{method=\"POST\",route=\"/api/v1/tenants/{tenant}/admins\",status=\"409\"} 2\n"
    ), "{metrics}");
    assert!(metrics.contains(
        "updater_http_requests_total{method=\"DELETE\",route=\"/api/v1/tenants/{tenant}/admins/{id}\",status=\"404\"} 1\n"
    ), "{metrics}");
    assert!(!metrics.contains(&a), "tenant ids stay out of labels");
    assert!(metrics.contains("process_start_time_seconds "));
}

#[test]
fn tenant_and_admin_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let created = cli_json(&data, &["tenant", "create", "--name", "Acme", "--json"]);
    let id = created["id"].as_str().unwrap().to_owned();
    let key = data.join("keys/tenants").join(&id).join("assignments.pem");
    assert!(key.is_file());
    assert_eq!(created["assignment_key_id"].as_str().unwrap().len(), 64);
    let root = std::fs::read(data.join("catalog/repo/metadata/1.root.json")).unwrap();
    let root = catalog::tuf::verify_self_signed_root("root", &root).unwrap();
    assert_eq!(
        created["catalog_root_sha256"],
        catalog::tuf::root_fingerprint(&root)
    );

    let rotated = cli_json(&data, &["tenant", "rotate-token", &id, "--json"]);
    assert_ne!(rotated["enrollment_token"], created["enrollment_token"]);
    let out = updater(&data)
        .args(["tenant", "revoke-token", &id])
        .output()
        .unwrap();
    assert!(out.status.success());
    let list = cli_json(&data, &["tenant", "list", "--json"]);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["enrollment_token_active"], false);
    let text = updater(&data).args(["tenant", "list"]).output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.lines().nth(1).unwrap().contains("revoked"), "{text}");
    let out = updater(&data)
        .args(["tenant", "rotate-token", "ffffffffffffffff"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tenant ffffffffffffffff"));

    // The password never comes from the command line.
    let out = updater(&data)
        .args([
            "admin",
            "create",
            "--tenant",
            &id,
            "--email",
            "a@x.example",
            "--role",
            "full",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--password-stdin or UPDATER_ADMIN_PASSWORD")
    );
    let out = updater(&data)
        .args([
            "admin",
            "create",
            "--tenant",
            &id,
            "--email",
            "a@x.example",
            "--role",
            "full",
        ])
        .args(["--password", PASSWORD])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "no --password flag");

    let mut child = updater(&data)
        .args([
            "admin",
            "create",
            "--tenant",
            &id,
            "--email",
            "a@x.example",
            "--role",
            "full",
        ])
        .args(["--primary", "--password-stdin", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let admin: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (admin["primary"].as_bool(), admin["role"].as_str()),
        (Some(true), Some("full"))
    );

    let out = updater(&data)
        .args([
            "admin",
            "create",
            "--tenant",
            &id,
            "--email",
            "b@x.example",
            "--role",
            "read-only",
            "--primary",
        ])
        .env("UPDATER_ADMIN_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("already has a primary contact"));

    // The CLI writes while a server has the store open; the server sees it.
    let server = start(&data, &[], &[]);
    let (b, _) = create_tenant(&data, "Bravo");
    create_admin(&data, &b, "bea@bravo.example", "read-only");
    let http = Client::new();
    let bea = login(&http, &server.base, &b, "bea@bravo.example");
    let v: Value = http
        .get(format!("{}/api/v1/tenants/{b}", server.base))
        .bearer_auth(&bea)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["name"], "Bravo");
    // And the CLI can still read the store while the server holds it open.
    let listed = cli_json(&data, &["admin", "list", "--tenant", &b, "--json"]);
    assert_eq!(listed[0]["email"], "bea@bravo.example");

    // The embedded store's file holds password hashes: private.
    #[cfg(unix)]
    if !support::store_is_postgres() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("server.redb"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn agents_enroll_with_the_tenant_token_and_clones_are_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (a, token) = create_tenant(&data, "Acme");
    create_admin(&data, &a, "ann@acme.example", "read-only");
    let server = start(&data, &[], &[]);
    let http = Client::new();
    let base = server.base.as_str();
    let enroll = |token: &str, machine: &str| {
        http.post(format!("{base}/api/v1/enroll"))
            .json(&json!({
                "tenant": a, "token": token, "system_id": "{6F9619FF-8B86-D011-B42D-00C04FC964FF}",
                "machine_fingerprint": machine, "hostname": "ws-17", "os": "Windows 11",
            }))
            .send()
            .unwrap()
    };
    let (s, first) = code(enroll(&token, "aa01"));
    assert_eq!(s, 201);
    assert!(first["credential"]
        .as_str()
        .unwrap()
        .starts_with(&format!("upda_{a}_")));
    assert_eq!(first["suspected_clone"], false);
    // The root the agent pins is the one the repository serves.
    let served: Value = http
        .get(format!("{base}/repo/metadata/root.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(first["root"], served);
    assert_eq!(
        first["catalog_root"]["version"],
        served["signed"]["version"]
    );
    assert_eq!(first["assignment_key"]["key"]["keytype"], "ed25519");
    // The agent credential is no admin credential.
    let r = http
        .get(format!("{base}/api/v1/tenants/{a}/agents"))
        .bearer_auth(first["credential"].as_str().unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);

    let (s, again) = code(enroll(&token, "aa01"));
    assert_eq!((s, again["reenrolled"].as_bool()), (200, Some(true)));
    assert_eq!(again["id"], first["id"]);
    let (s, clone) = code(enroll(&token, "bb02"));
    assert_eq!(s, 201);
    assert_eq!(clone["suspected_clone"], true);
    assert_eq!(clone["clone_of"], first["id"]);

    let (s, v) = code(enroll(&format!("{token}0"), "cc03"));
    assert_eq!(
        (s, v["code"].as_str().unwrap()),
        (401, "invalid_enrollment_token")
    );
    let (s, v) = code(
        http.post(format!("{base}/api/v1/enroll"))
            .json(&json!({"tenant": a, "token": token, "system_id": "x y",
                "machine_fingerprint": "m", "hostname": "h", "os": "o"}))
            .send()
            .unwrap(),
    );
    assert_eq!((s, v["code"].as_str().unwrap()), (400, "invalid_request"));

    let ann = login(&http, base, &a, "ann@acme.example");
    let agents: Value = http
        .get(format!("{base}/api/v1/tenants/{a}/agents"))
        .bearer_auth(&ann)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let agents = agents.as_array().unwrap();
    assert_eq!(agents.len(), 2);
    assert_eq!(
        agents
            .iter()
            .filter(|x| x["suspected_clone"] == true)
            .count(),
        1
    );
    assert!(!Value::Array(agents.clone()).to_string().contains("upda_"));
}
