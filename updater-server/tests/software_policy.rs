//! Software policies in the check-in, against the real binary: the agent
//! update offer is signed into the assignment document, follows the group's
//! policy, and never offers a version at or below the running agent's.

mod support;

use catalog::assignment::{verify_assignments, AssignmentSet, DeploymentType};
use catalog::checkin::CheckInResponse;
use catalog::protocol::EnrollResponse;
use reqwest::blocking::Client;
use serde_json::{json, Value};
use support::{cli_json, create_admin, create_tenant, login, start};

#[test]
fn check_in_offers_the_agent_update_of_the_group_policy_and_never_downgrades() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (tenant, token) = create_tenant(&data, "Acme");
    create_admin(&data, &tenant, "ann@acme.example", "full");
    let g = cli_json(
        &data,
        &[
            "group", "create", "--tenant", &tenant, "--name", "Pilot", "--member", "bob", "--json",
        ],
    );
    let pilot = g["id"].as_str().unwrap().to_owned();
    let server = start(&data, &[], &[]);
    let http = Client::new();
    let base = server.base.as_str();
    let ann = login(&http, base, &tenant, "ann@acme.example");
    let t = |p: &str| format!("{base}/api/v1/tenants/{tenant}/{p}");
    let send = |r: reqwest::blocking::RequestBuilder, body: Value| {
        let r = r.bearer_auth(&ann).json(&body).send().unwrap();
        let s = r.status().as_u16();
        (s, r.json::<Value>().unwrap_or(Value::Null))
    };

    // The enrollment answer is the shared wire type.
    let r = http
        .post(format!("{base}/api/v1/enroll"))
        .json(
            &json!({"tenant": tenant, "token": token, "system_id": "{SYS-9}",
            "machine_fingerprint": "m9", "hostname": "ws-9", "os": "Linux"}),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let enrolled: EnrollResponse = r.json().unwrap();
    assert_eq!(
        (
            enrolled.tenant.as_str(),
            enrolled.hostname.as_str(),
            enrolled.reenrolled,
            enrolled.suspected_clone
        ),
        (tenant.as_str(), "ws-9", false, false)
    );
    assert_eq!(
        enrolled.assignment_key.keyid,
        enrolled.assignment_key.key.key_id().unwrap()
    );
    assert_eq!(enrolled.catalog_root.version, 1);

    let (s, all_users) = send(
        http.post(t("policies/software")),
        json!({"name": "Agent pin", "platform": "linux", "version": "0.2.0",
            "deployment": "persistent"}),
    );
    assert_eq!(s, 201, "{all_users}");
    let (s, v) = send(
        http.post(t("policies/software")),
        json!({"name": "Bad", "platform": "linux", "group": pilot, "version": "1..2"}),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (422, Some("invalid_request")),
        "{v}"
    );
    let (s, pilot_pol) = send(
        http.post(t("policies/software")),
        json!({"name": "Pilot latest", "platform": "linux", "group": pilot, "version": "latest"}),
    );
    assert_eq!(s, 201, "{pilot_pol}");

    let mut trusted = 0;
    let mut check_in = |account: &str, platform: &str, running: &str| -> AssignmentSet {
        let r = http
            .post(format!("{base}/api/v1/agents/{}/checkin", enrolled.id))
            .bearer_auth(&enrolled.credential)
            .json(&json!({"agent_version": running, "platform": platform,
                "hostname": "ws-9", "users": [{"account": account}]}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let answer: CheckInResponse = r.json().unwrap();
        let doc = serde_json::to_vec(&answer.assignments).unwrap();
        let set = verify_assignments(
            &doc,
            &enrolled.assignment_key.key,
            &enrolled.id,
            trusted,
            chrono::Utc::now(),
        )
        .unwrap();
        trusted = set.version;
        set
    };
    let this_build = env!("CARGO_PKG_VERSION");
    // (user, platform, running agent version, expected offer: version, deployment, policy)
    type Offer<'a> = Option<(&'a str, DeploymentType, &'a Value)>;
    let cases: Vec<(&str, &str, &str, Offer<'_>)> = vec![
        (
            "ann",
            "linux",
            "0.1.0",
            Some(("0.2.0", DeploymentType::Persistent, &all_users["id"])),
        ),
        ("ann", "linux", "0.2.0", None),
        ("ann", "linux", "0.3.1", None),
        ("ann", "windows", "0.0.1", None),
        (
            "bob",
            "linux",
            "0.0.1",
            Some((this_build, DeploymentType::Optional, &pilot_pol["id"])),
        ),
        ("bob", "linux", this_build, None),
        ("bob", "linux", "99.0", None),
    ];
    for (user, platform, running, want) in cases {
        let set = check_in(user, platform, running);
        let got = set
            .software
            .as_ref()
            .map(|o| (o.version.as_str(), o.deployment, json!(o.policy)));
        let want = want.map(|(v, d, p)| (v, d, p.clone()));
        assert_eq!(got, want, "{user} on {platform} running {running}");
        if let Some(o) = &set.software {
            assert_eq!(o.platform, platform);
            assert_eq!(o.package, None, "the catalog holds no agent packages");
        }
    }
}
