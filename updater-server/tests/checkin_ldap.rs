//! The check-in answer carries the tenant's LDAP group definitions and
//! account rules (and only the agent's own tenant's), and its `ETag` changes
//! when they do.

mod support;

use catalog::checkin::{CheckInResponse, DirectoryKind};
use reqwest::blocking::Client;
use serde_json::{json, Value};
use support::{cli_json, create_admin, create_tenant, enroll, login, start};

const SALES: &str =
    "(&(objectCategory=person)(objectClass=user)(sAMAccountName=$user$)(memberof=CN=Sales,OU=Groups,DC=x,DC=com))";

fn group(data: &std::path::Path, tenant: &str, name: &str, args: &[&str]) -> String {
    let mut all = vec!["group", "create", "--tenant", tenant, "--name", name];
    all.extend_from_slice(args);
    all.push("--json");
    cli_json(data, &all)["id"].as_str().unwrap().to_owned()
}

/// The LDAP groups signed into the answer's assignment document (and none
/// beside it).
fn ldap_groups(answer: &CheckInResponse) -> Vec<catalog::checkin::LdapGroupDefinition> {
    let beside = serde_json::to_value(answer).unwrap();
    assert!(beside.get("ldap_groups").is_none(), "{beside}");
    serde_json::from_value(answer.assignments["signed"]["ldap_groups"].clone()).unwrap_or_default()
}

#[test]
fn check_in_sends_the_tenants_ldap_groups_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (a, token_a) = create_tenant(&data, "Acme");
    let (b, token_b) = create_tenant(&data, "Bravo");
    create_admin(&data, &a, "ann@acme.example", "full");
    let manual = group(&data, &a, "Pilot", &["--priority", "1", "--member", "ann"]);
    let sales = group(
        &data,
        &a,
        "Sales",
        &["--priority", "3", "--ldap-filter", SALES],
    );
    let bravo = group(&data, &b, "Ops", &["--ldap-filter", "(uid=$user$)"]);
    let server = start(&data, &[], &[]);
    let http = Client::new();
    let base = server.base.as_str();
    let admin = login(&http, base, &a, "ann@acme.example");
    let t = |p: &str| format!("{base}/api/v1/tenants/{a}/{p}");
    let r = http
        .post(t("groups"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Eng", "priority": 2,
            "membership": {"kind": "ldap", "filter": "(&(uid=$user$)(memberOf=cn=eng,ou=groups,dc=x,dc=com))",
            "server": {"host": "ldap.x.example", "port": 636, "tls": true, "base_dn": "dc=x,dc=com",
                "bind_dn": "cn=reader,dc=x,dc=com", "directory": "open_ldap"}}}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let eng = r.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = http
        .put(t("settings"))
        .bearer_auth(&admin)
        .json(&json!({"shared_accounts": ["kiosk"], "excluded_accounts": ["svc-backup"]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    let body = json!({"agent_version": "0.1.0", "platform": "linux", "hostname": "ws-1"});
    let check_in = |agent: &(String, String), etag: Option<&str>| {
        let mut r = http
            .post(format!("{base}/api/v1/agents/{}/checkin", agent.0))
            .bearer_auth(&agent.1)
            .json(&body);
        if let Some(e) = etag {
            r = r.header("if-none-match", e);
        }
        r.send().unwrap()
    };

    let agent_a = enroll(&http, base, &a, &token_a, "{SYS-A}");
    let r = check_in(&agent_a, None);
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let answer: CheckInResponse = r.json().unwrap();
    let groups = ldap_groups(&answer);
    let got: Vec<(&str, u32, &str)> = groups
        .iter()
        .map(|g| (g.id.as_str(), g.priority, g.filter.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                eng.as_str(),
                2,
                "(&(uid=$user$)(memberOf=cn=eng,ou=groups,dc=x,dc=com))"
            ),
            (sales.as_str(), 3, SALES),
        ],
        "LDAP groups by priority; the manual group {manual} and tenant B's {bravo} are not sent"
    );
    let s = &groups[0].server;
    assert_eq!(
        (
            s.host.as_deref(),
            s.port,
            s.tls,
            s.base_dn.as_deref(),
            s.bind_dn.as_deref(),
            s.bind_password.as_deref(),
            s.directory,
        ),
        (
            Some("ldap.x.example"),
            Some(636),
            true,
            Some("dc=x,dc=com"),
            Some("cn=reader,dc=x,dc=com"),
            None,
            DirectoryKind::OpenLdap
        )
    );
    assert_eq!(groups[1].server, Default::default());
    assert_eq!(
        (
            answer.accounts.shared.clone(),
            answer.accounts.excluded.clone()
        ),
        (vec!["kiosk".to_owned()], vec!["svc-backup".to_owned()])
    );
    // Unchanged: 304 on the ETag.
    assert_eq!(check_in(&agent_a, Some(&etag)).status(), 304);

    // Tenant B's agent sees only B's group.
    let agent_b = enroll(&http, base, &b, &token_b, "{SYS-B}");
    let r = check_in(&agent_b, None);
    assert_eq!(r.status(), 200);
    let answer_b: CheckInResponse = r.json().unwrap();
    let groups_b = ldap_groups(&answer_b);
    let ids: Vec<&str> = groups_b.iter().map(|g| g.id.as_str()).collect();
    assert_eq!(ids, vec![bravo.as_str()]);
    assert!(answer_b.accounts.is_empty());

    // A changed filter changes the answer and its ETag although the
    // assignments did not change.
    let r = http
        .put(t(&format!("groups/{sales}")))
        .bearer_auth(&admin)
        .json(&json!({"name": "Sales", "priority": 3,
            "membership": {"kind": "ldap", "filter": "(sAMAccountName=$user$)"}}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = check_in(&agent_a, Some(&etag));
    assert_eq!(r.status(), 200, "the definitions changed");
    assert_ne!(r.headers()["etag"].to_str().unwrap(), etag);
    let answer: CheckInResponse = r.json().unwrap();
    assert_eq!(ldap_groups(&answer)[1].filter, "(sAMAccountName=$user$)");
}
