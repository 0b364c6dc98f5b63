//! Manual group members edited without replacing the list, by the CLI
//! (`group edit`, also from a CSV file) and the API (JSON or text/csv),
//! up to 100,000 members, while a policy names the group; a check-in of a
//! member of the big group follows the group.

mod support;

use std::fmt::Write as _;

use reqwest::blocking::Client;
use serde_json::{json, Value};
use support::{create_admin, create_tenant, login, start, updater};

fn cli(data: &std::path::Path, args: &[&str]) -> Value {
    let out = updater(data).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn members(group: &Value) -> Vec<&str> {
    group["membership"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect()
}

#[test]
fn members_are_edited_in_place_up_to_a_hundred_thousand() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (a, enrollment) = create_tenant(&data, "Acme");
    create_admin(&data, &a, "ann@acme.example", "full");
    let t = ["--tenant", a.as_str()];

    // A group a policy names: editing its members is not in the way.
    cli(
        &data,
        &[
            &["group", "create"][..],
            &t,
            &["--name", "Sales", "--member", "ann", "--json"],
        ]
        .concat(),
    );
    cli(
        &data,
        &[
            &["policy", "firmware", "create"][..],
            &t,
            &[
                "--name",
                "Sales headsets",
                "--model",
                "047F:C056",
                "--group",
                "sales",
                "--json",
            ],
        ]
        .concat(),
    );
    let g = cli(
        &data,
        &[
            &["group", "edit"][..],
            &t,
            &[
                "SALES", "--add", "bob", "--add", "Ann", "--remove", "ANN", "--json",
            ],
        ]
        .concat(),
    );
    assert_eq!(members(&g), ["bob"]);

    // A directory export: header, quoted cells, other columns.
    let mut csv = String::from("User,Department\n");
    for i in 0..99_998 {
        writeln!(csv, "user-{i:05},\"Sales, EMEA\"").unwrap();
    }
    let file = dir.path().join("sales.csv");
    std::fs::write(&file, csv).unwrap();
    let g = cli(
        &data,
        &[
            &["group", "edit"][..],
            &t,
            &["Sales", "--add-csv", file.to_str().unwrap(), "--json"],
        ]
        .concat(),
    );
    let m = members(&g);
    assert_eq!(
        (m.len(), m[0], m[1], m[99_998]),
        (99_999, "bob", "user-00000", "user-99997")
    );

    let server = start(&data, &[], &[]);
    let http = Client::new();
    let ann = login(&http, &server.base, &a, "ann@acme.example");
    let url = |group: &str| format!("{}/api/v1/tenants/{a}/groups/{group}/members", server.base);
    let post_json = |group: &str, body: Value| {
        let r = http
            .post(url(group))
            .bearer_auth(&ann)
            .json(&body)
            .send()
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().unwrap())
    };
    let (s, g) = post_json("Sales", json!({"add": ["carol"]}));
    assert_eq!((s, members(&g).len()), (200, 100_000));
    let (s, v) = post_json("Sales", json!({"add": ["dave"], "remove": ["nobody"]}));
    assert_eq!(
        (
            s,
            v["code"].as_str().unwrap(),
            v["message"].as_str().unwrap()
        ),
        (
            422,
            "invalid_request",
            "invalid members: at most 100000 (this list has 100001)"
        )
    );
    let (s, g) = post_json("Sales", json!({"add": ["dave"], "remove": ["carol"]}));
    assert_eq!(
        (s, members(&g).len(), *members(&g).last().unwrap()),
        (200, 100_000, "dave")
    );

    // A CSV file over HTTP, larger than the default 64 KiB body limit.
    let (s, _) = post_json("x", json!({}));
    assert_eq!(s, 404, "no group x");
    let kiosks = cli(
        &data,
        &[
            &["group", "create"][..],
            &t,
            &["--name", "Kiosks", "--json"],
        ]
        .concat(),
    );
    let mut csv = String::new();
    for i in 0..20_000 {
        writeln!(csv, "kiosk-{i:05}@ws-{i:05}").unwrap();
    }
    assert!(csv.len() > 64 * 1024);
    let r = http
        .post(url(kiosks["id"].as_str().unwrap()))
        .bearer_auth(&ann)
        .header("content-type", "text/csv; charset=utf-8")
        .body(csv)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(members(&r.json::<Value>().unwrap()).len(), 20_000);
    let r = http
        .post(url("Kiosks"))
        .bearer_auth(&ann)
        .header("content-type", "text/plain")
        .body("kiosk-1")
        .send()
        .unwrap();
    assert_eq!(r.status(), 415);

    // An LDAP group's members come from the directory.
    cli(
        &data,
        &[
            &["group", "create"][..],
            &t,
            &[
                "--name",
                "Engineers",
                "--ldap-filter",
                "(uid=$user$)",
                "--json",
            ],
        ]
        .concat(),
    );
    let (s, v) = post_json("engineers", json!({"add": ["eve"]}));
    assert_eq!(
        (s, v["message"].as_str().unwrap()),
        (
            422,
            "invalid members: Engineers is an LDAP group: its members come from the directory"
        )
    );

    // A check-in of one of the 100,000: the host follows Sales (its policy
    // applies; the catalog has no release for the model yet).
    let (agent, credential) = support::enroll(&http, &server.base, &a, &enrollment, "{SYS-1}");
    let r = http
        .post(format!("{}/api/v1/agents/{agent}/checkin", server.base))
        .bearer_auth(&credential)
        .json(
            &json!({"agent_version": "0.1.0", "platform": "linux", "hostname": "ws-1",
            "users": [{"account": "user-54321"}],
            "devices": [{"vendor_id": 0x047f, "product_id": 0xc056, "bcd_device": 0x0100,
                "serial": "S1", "port_path": "1-4", "firmware_version": "1.0", "dfu": "runtime",
                "telephony": true, "in_call": false}],
            "update_states": []}),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().unwrap();
    assert_eq!(
        answer["assignments"]["signed"]["not_assigned"]["047f/serial/S1"],
        "no release: policy \"Sales headsets\" applies, but the catalog has no release for this device"
    );
}
