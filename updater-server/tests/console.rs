//! The console's authorization on the real binary, walking its route table
//! (`http::console::PAGES`) like the API's auth matrix: signed out, read
//! only, forged CSRF tokens and origins, another tenant's records, an API
//! token pasted into the cookie; and the security headers of every page.

mod support;

use reqwest::blocking::{Client, Response};
use reqwest::redirect::Policy;
use serde_json::{json, Value};
use support::{create_admin, create_tenant, login, start, PASSWORD};
use updater_server::http::api::{Access, Method};
use updater_server::http::console::PAGES;

fn client() -> Client {
    Client::builder().redirect(Policy::none()).build().unwrap()
}

/// A console session: its cookie and CSRF token (read from a page).
struct Session {
    cookie: String,
    csrf: String,
}

fn sign_in(http: &Client, base: &str, tenant: &str, email: &str) -> Session {
    let r = http
        .post(format!("{base}/console/signin"))
        .form(&[("tenant", tenant), ("email", email), ("password", PASSWORD)])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303, "sign in {email}");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(attribute), "{set}");
    }
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = http
        .get(format!("{base}/console/settings"))
        .header("cookie", &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    Session { cookie, csrf }
}

/// The path with its parameters filled in.
fn concrete(path: &str, group: &str) -> String {
    path.replace("{file}", "console.css")
        .replace("{kind}", "versions")
        .replace("{action}", "pause")
        .replace("{id}", group)
}

fn post(http: &Client, url: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Response {
    let mut req = http.post(url).form(form);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().unwrap()
}

#[test]
fn every_console_page_for_every_caller() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (tenant, _) = create_tenant(data, "Acme");
    let (other, _) = create_tenant(data, "Globex");
    create_admin(data, &tenant, "ann@example.com", "full");
    create_admin(data, &tenant, "rob@example.com", "read-only");
    create_admin(data, &other, "eve@example.com", "full");
    // Acme may change the catalog, so that only CSRF and origin refuse ann.
    let server = start(data, &["--catalog-managers", &tenant], &[]);
    let base = &server.base;
    let http = client();

    // A group of the other tenant: its id must mean nothing to Acme's admins.
    let eve = login(&http, base, &other, "eve@example.com");
    let victim: Value = http
        .post(format!("{base}/api/v1/tenants/{other}/groups"))
        .bearer_auth(&eve)
        .json(&json!({"name": "Globex pilots", "membership": {"kind": "manual", "members": []}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let victim = victim["id"].as_str().unwrap().to_owned();

    let ann = sign_in(&http, base, "acme", "ann@example.com");
    let rob = sign_in(&http, base, &tenant, "rob@example.com");

    for page in PAGES {
        let url = format!("{base}{}", concrete(page.path, &victim));
        let what = format!("{} {}", page.method.as_str(), page.path);
        let r = match page.method {
            Method::Get => http.get(&url).send().unwrap(),
            _ => post(&http, &url, None, &[]),
        };
        let csp = r
            .headers()
            .get("content-security-policy")
            .map(|v| v.to_str().unwrap().to_owned());
        assert!(
            csp.is_some_and(|c| c.contains("script-src 'self'") && !c.contains("unsafe")),
            "{what}: CSP"
        );
        let Some(access) = page.access else {
            continue;
        };
        // Signed out: GETs go to the sign-in page, anything else is 401.
        match page.method {
            Method::Get => {
                assert_eq!(r.status(), 303, "{what} signed out");
                let to = r.headers()["location"].to_str().unwrap();
                assert!(to.starts_with("/console/signin?next="), "{what}: {to}");
            }
            _ => assert_eq!(r.status(), 401, "{what} signed out"),
        }
        if page.method == Method::Get {
            // Another tenant's record is not found, never shown.
            let r = http.get(&url).header("cookie", &ann.cookie).send().unwrap();
            assert!(
                [200, 404].contains(&r.status().as_u16()),
                "{what} as ann: {}",
                r.status()
            );
            if page.path.contains("{id}") {
                assert_eq!(r.status(), 404, "{what}: another tenant's id");
            }
            let body = r.text().unwrap();
            assert!(!body.contains("Globex pilots"), "{what} leaks a name");
            continue;
        }
        // A read-only admin with a valid token: refused where writing is
        // needed (not signed out here: the session is used on).
        if page.path == "/console/signout" {
            continue;
        }
        let r = post(
            &http,
            &url,
            Some(&rob.cookie),
            &[("csrf", &rob.csrf), ("name", "x")],
        );
        let refused = r.status() == 403;
        assert_eq!(
            refused,
            access != Access::Read && access != Access::Admin,
            "{what} as read-only: {}",
            r.status()
        );
        if refused {
            assert!(
                r.text().unwrap().contains("cannot change anything") || access != Access::Write
            );
        }
        // A full admin without the CSRF token, with a wrong one, or from
        // another origin: refused before anything runs.
        for (form, headers, why) in [
            (vec![("name", "x")], vec![], "out of date"),
            (
                vec![("csrf", "0123456789abcdef0123456789abcdef"), ("name", "x")],
                vec![],
                "out of date",
            ),
            (
                vec![("name", "x")],
                vec![("x-csrf-token", "nope")],
                "out of date",
            ),
            (
                vec![("csrf", ann.csrf.as_str()), ("name", "x")],
                vec![("origin", "http://evil.example")],
                "another site",
            ),
            (
                vec![("csrf", ann.csrf.as_str()), ("name", "x")],
                vec![("sec-fetch-site", "cross-site")],
                "another site",
            ),
            (
                vec![("csrf", ann.csrf.as_str()), ("name", "x")],
                vec![("origin", "null")],
                "another site",
            ),
            // The other session's token does not pass for this one.
            (
                vec![("csrf", rob.csrf.as_str()), ("name", "x")],
                vec![],
                "out of date",
            ),
        ] {
            let mut req = http.post(&url).form(&form).header("cookie", &ann.cookie);
            for (k, v) in &headers {
                req = req.header(*k, *v);
            }
            let r = req.send().unwrap();
            assert_eq!(r.status(), 403, "{what} {form:?} {headers:?}");
            let body = r.text().unwrap();
            assert!(body.contains(why), "{what}: {body}");
        }
    }

    // The forged requests changed nothing.
    let bearer = login(&http, base, &tenant, "ann@example.com");
    let groups: Value = http
        .get(format!("{base}/api/v1/tenants/{tenant}/groups"))
        .bearer_auth(&bearer)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        groups.as_array().unwrap().len(),
        1,
        "only All Users: {groups}"
    );
}

#[test]
fn sessions_tokens_and_escaping() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (tenant, _) = create_tenant(data, "Acme");
    create_admin(data, &tenant, "ann@example.com", "full");
    let server = start(data, &[], &[]);
    let base = &server.base;
    let http = client();

    // Wrong credentials: the API's words and status; the typed tenant kept.
    let r = post(
        &http,
        &format!("{base}/console/signin"),
        None,
        &[
            ("tenant", "Acme"),
            ("email", "ann@example.com"),
            ("password", "wrong"),
        ],
    );
    assert_eq!(r.status(), 401);
    let body = r.text().unwrap();
    assert!(body.contains("wrong tenant, e-mail or password"), "{body}");
    assert!(body.contains("value=\"Acme\""));

    // Where sign-in sends the browser: console paths only.
    for (next, to) in [
        (
            "/console/devices?status=outdated",
            "/console/devices?status=outdated",
        ),
        ("https://evil.example/", "/console"),
        ("//evil.example/console", "/console"),
        ("/console//evil.example", "/console"),
        ("/consolex", "/console"),
        ("/api/v1/login", "/console"),
    ] {
        let r = post(
            &http,
            &format!("{base}/console/signin"),
            None,
            &[
                ("tenant", &tenant),
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("next", next),
            ],
        );
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], to, "next={next}");
    }

    // An API token (or a tampered session) in the cookie is no session.
    let bearer = login(&http, base, &tenant, "ann@example.com");
    let token: Value = http
        .post(format!("{base}/api/v1/tenants/{tenant}/api-tokens"))
        .bearer_auth(&bearer)
        .json(&json!({"name": "ci", "scope": "full"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let api_token = token["token"].as_str().unwrap();
    let mut tampered = bearer.clone();
    let last = if tampered.pop() == Some('a') {
        'b'
    } else {
        'a'
    };
    tampered.push(last);
    for cookie in [
        format!("updater_session={api_token}"),
        format!("updater_session={tampered}"),
        "updater_session=".to_owned(),
    ] {
        let r = http
            .get(format!("{base}/console"))
            .header("cookie", &cookie)
            .send()
            .unwrap();
        assert_eq!(r.status(), 303, "{cookie}");
    }

    // Names are escaped wherever they appear.
    let ann = sign_in(&http, base, &tenant, "ann@example.com");
    let r = post(
        &http,
        &format!("{base}/console/groups"),
        Some(&ann.cookie),
        &[
            ("csrf", &ann.csrf),
            ("name", "<script>alert(1)</script>"),
            ("kind", "manual"),
            ("members", "\"><img src=x onerror=alert(1)>"),
        ],
    );
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    for path in [to.as_str(), "/console/groups"] {
        let page = http
            .get(format!("{base}{path}"))
            .header("cookie", &ann.cookie)
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(!page.contains("<script>alert"), "{path}");
        assert!(!page.contains("<img src=x"), "{path}");
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}"
        );
    }

    // A refused form keeps what was typed and says why, with the API's words.
    let r = post(
        &http,
        &format!("{base}/console/groups"),
        Some(&ann.cookie),
        &[
            ("csrf", &ann.csrf),
            ("name", "Sales"),
            ("kind", "ldap"),
            ("filter", "(sAMAccountName=alice)"),
        ],
    );
    assert_eq!(r.status(), 422);
    let body = r.text().unwrap();
    assert!(body.contains("must contain $user$"), "{body}");
    assert!(body.contains("value=\"Sales\""));

    // Sign-out ends the API session too.
    let r = post(
        &http,
        &format!("{base}/console/signout"),
        Some(&ann.cookie),
        &[("csrf", &ann.csrf)],
    );
    assert_eq!(r.status(), 303);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let r = http
        .get(format!("{base}/console"))
        .header("cookie", &ann.cookie)
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
}
