//! Admins' passwords: changing one's own, a full admin's reset, the CLI's
//! reset on the server host, with the real binary.

mod support;

use std::io::Write;
use std::process::Stdio;

use reqwest::blocking::Client;
use serde_json::{json, Value};
use support::{create_admin, create_tenant, start, updater, PASSWORD};

fn code(r: reqwest::blocking::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().unwrap())
}

/// An admin changes their own password (the current one checked, their
/// other sessions ended); a full admin resets another's (all its sessions
/// ended); neither a read-only admin nor an API token can; the CLI resets
/// one on the server host.
#[test]
fn admins_change_their_password_and_full_admins_reset_others() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (a, _) = create_tenant(&data, "Acme");
    create_admin(&data, &a, "ann@acme.example", "full");
    create_admin(&data, &a, "rob@acme.example", "read-only");
    let server = start(&data, &[], &[]);
    let http = Client::new();
    let base = server.base.clone();
    let log_in = |email: &str, password: &str| -> Option<String> {
        let r = http
            .post(format!("{base}/api/v1/login"))
            .json(&json!({"tenant": a, "email": email, "password": password}))
            .send()
            .unwrap();
        (r.status() == 200).then(|| {
            r.json::<Value>().unwrap()["token"]
                .as_str()
                .unwrap()
                .to_owned()
        })
    };
    let works = |token: &str| {
        http.get(format!("{base}/api/v1/tenants/{a}"))
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let own = format!("{base}/api/v1/tenants/{a}/password");
    let change = |token: &str, current: &str, new: &str| {
        code(
            http.post(&own)
                .bearer_auth(token)
                .json(&json!({"current_password": current, "new_password": new}))
                .send()
                .unwrap(),
        )
    };
    let ann = log_in("ann@acme.example", PASSWORD).unwrap();
    let ann_elsewhere = log_in("ann@acme.example", PASSWORD).unwrap();
    let new = "a brand new long password";

    // (current, new, status, code, message)
    let refusals = [
        (
            "not my password at all",
            new,
            400,
            "invalid_request",
            "invalid current_password: is not your current password",
        ),
        (
            PASSWORD,
            "too short",
            400,
            "invalid_request",
            "invalid password: must be at least 12 characters",
        ),
    ];
    for (current, next, status, want_code, message) in refusals {
        let (s, v) = change(&ann, current, next);
        assert_eq!(
            (
                s,
                v["code"].as_str().unwrap(),
                v["message"].as_str().unwrap()
            ),
            (status, want_code, message)
        );
    }
    assert_eq!(works(&ann_elsewhere), 200, "refusals change nothing");
    let r = http
        .post(&own)
        .bearer_auth(&ann)
        .json(&json!({"current_password": PASSWORD, "new_password": new}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(works(&ann), 200, "the session that changed it goes on");
    assert_eq!(works(&ann_elsewhere), 401, "other sessions end");
    assert_eq!(log_in("ann@acme.example", PASSWORD), None);
    let ann = log_in("ann@acme.example", new).unwrap();

    // A full admin resets rob's; rob's session ends. Rob cannot reset ann's.
    let rob = log_in("rob@acme.example", PASSWORD).unwrap();
    let admins: Value = http
        .get(format!("{base}/api/v1/tenants/{a}/admins"))
        .bearer_auth(&ann)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id_of = |email: &str| {
        admins
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["email"] == email)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let reset = |token: &str, id: &str, password: &str| {
        http.put(format!("{base}/api/v1/tenants/{a}/admins/{id}/password"))
            .bearer_auth(token)
            .json(&json!({ "password": password }))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        reset(&rob, &id_of("ann@acme.example"), "rob wants ann's account"),
        403
    );
    assert_eq!(
        reset(&ann, "00000000000000aa", "nobody has this id here"),
        404
    );
    assert_eq!(
        reset(&ann, &id_of("rob@acme.example"), "rob's new password"),
        204
    );
    assert_eq!(works(&rob), 401);
    assert!(log_in("rob@acme.example", "rob's new password").is_some());

    // An API token has no password to change.
    let r = http
        .post(format!("{base}/api/v1/tenants/{a}/api-tokens"))
        .bearer_auth(&ann)
        .json(&json!({"name": "app", "scope": "full"}))
        .send()
        .unwrap();
    let app: Value = r.json().unwrap();
    let (s, v) = change(app["token"].as_str().unwrap(), PASSWORD, new);
    assert_eq!((s, v["code"].as_str().unwrap()), (403, "forbidden"));

    // The CLI on the host, by e-mail: ann's sessions end, the new one works.
    let mut cli = updater(&data)
        .args([
            "admin",
            "set-password",
            "--tenant",
            &a,
            "ANN@acme.example",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    cli.stdin
        .take()
        .unwrap()
        .write_all(b"set on the server host\n")
        .unwrap();
    let out = cli.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "password of ann@acme.example set; their sessions have ended\n"
    );
    assert_eq!(works(&ann), 401);
    assert!(log_in("ann@acme.example", "set on the server host").is_some());
}

/// Wrong passwords from one address lock that address out of the account
/// (429 with `Retry-After`), not the admin signing in from another one; the
/// console's sign-in shares the count.
#[test]
fn guessing_from_one_address_does_not_lock_out_the_admin_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (a, _) = create_tenant(&data, "Acme");
    create_admin(&data, &a, "ann@acme.example", "full");
    let server = start(&data, &[], &[]);
    let base = server.base.clone();
    // Loopback is 127.0.0.0/8: a second source address on this host.
    let from = |ip: [u8; 4]| {
        Client::builder()
            .local_address(std::net::IpAddr::from(ip))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    };
    let (attacker, admin) = (from([127, 0, 0, 2]), from([127, 0, 0, 1]));
    let login = |http: &Client, password: &str| {
        let r = http
            .post(format!("{base}/api/v1/login"))
            .json(&json!({"tenant": a, "email": "ann@acme.example", "password": password}))
            .send()
            .unwrap();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        (r.status().as_u16(), retry)
    };
    for _ in 0..9 {
        assert_eq!(login(&attacker, "not the password"), (401, None));
    }
    // The tenth guess through the console's form.
    let r = attacker
        .post(format!("{base}/console/signin"))
        .form(&[
            ("tenant", a.as_str()),
            ("email", "ann@acme.example"),
            ("password", "not the password"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    let (status, retry) = login(&attacker, PASSWORD);
    assert_eq!(status, 429, "locked, even with the right password");
    let retry: u64 = retry.unwrap().parse().unwrap();
    assert!((890..=900).contains(&retry), "{retry}");
    assert_eq!(login(&admin, PASSWORD), (200, None), "the admin elsewhere");
}
