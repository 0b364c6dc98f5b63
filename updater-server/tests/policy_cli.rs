//! `updater-server policy …` and `settings …`, run as the real binary:
//! what they store, and refusals that leave the data unchanged.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use support::{cli_json, create_tenant, updater};

fn run(data: &Path, args: &[&str]) -> Output {
    updater(data).args(args).output().unwrap()
}

/// Runs a command that must fail; returns its stderr.
fn refused(data: &Path, args: &[&str]) -> String {
    let out = run(data, args);
    assert!(
        !out.status.success(),
        "{args:?} should fail, printed {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

fn import(data: &Path, dir: &Path, model: &str, hwid: &str, version: &str) {
    let fw = dir.join(format!("{model}-{version}.bin"));
    std::fs::write(&fw, format!("{model} firmware {version}").repeat(100)).unwrap();
    let out = updater(data)
        .args(["catalog", "import"])
        .arg(&fw)
        .args(["--vendor", "Acme", "--model", model, "--hardware-id", hwid])
        .args(["--version", version])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(extra).copied().collect()
}

#[test]
fn firmware_policies_create_edit_copy_delete_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Voyager is not silent-capable (no --silent-capable at import).
    import(&data, dir.path(), "Voyager", "047F:C056", "1.0");
    let (t, _) = create_tenant(&data, "Acme");
    let g = cli_json(
        &data,
        &[
            "group", "create", "--tenant", &t, "--name", "Sales", "--member", "ann", "--json",
        ],
    );
    let sales = g["id"].as_str().unwrap().to_owned();
    let fw = |extra: &[&str]| -> Vec<String> {
        ["policy", "firmware"]
            .iter()
            .chain(extra)
            .map(|s| (*s).to_owned())
            .collect()
    };
    let json = |args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        cli_json(&data, &a)
    };
    let list = || json(fw(&["list", "--tenant", &t, "--json"]));

    let p = json(fw(&[
        "create",
        "--tenant",
        &t,
        "--name",
        "Voyager latest",
        "--model",
        "047f:c056",
        "--json",
    ]));
    let id = p["id"].as_str().unwrap().to_owned();
    // (field, value) of the stored policy: the defaults filled in.
    for (field, want) in [
        ("name", Value::from("Voyager latest")),
        ("model", Value::from("047F:C056")),
        ("group", Value::Null),
        ("version", Value::from("latest")),
        ("deployment", Value::from("optional")),
        ("source", serde_json::json!({"kind": "server"})),
        ("fallback_to_server", Value::from(true)),
        ("enabled", Value::from(true)),
    ] {
        assert_eq!(p[field], want, "{field}");
    }
    let before = list();
    assert_eq!(before.as_array().unwrap().len(), 1);

    // Refusals: nothing is stored.
    let window = [
        "--window-cron",
        "0 2 * * 1-5",
        "--window-duration",
        "2h",
        "--window-tz",
        "Europe/Berlin",
    ];
    let create = [
        "policy", "firmware", "create", "--tenant", &t, "--name", "X",
    ];
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "silent for a model that does not support it",
            with(
                &with(
                    &create,
                    &[
                        "--model",
                        "047F:C056",
                        "--deployment",
                        "silent",
                        "--group",
                        &sales,
                    ],
                ),
                &window,
            ),
            "is not silent-capable: silent deployment is refused",
        ),
        (
            "unknown group",
            with(&create, &["--model", "047F:C056", "--group", "Nope"]),
            "invalid group: no group Nope",
        ),
        (
            "bad cron",
            with(
                &create,
                &[
                    "--model",
                    "1234:5678",
                    "--window-cron",
                    "61 2 * * *",
                    "--window-duration",
                    "2h",
                    "--window-tz",
                    "UTC",
                ],
            ),
            "invalid maintenance window",
        ),
        (
            "bad time zone",
            with(
                &create,
                &[
                    "--model",
                    "1234:5678",
                    "--window-cron",
                    "0 2 * * *",
                    "--window-duration",
                    "2h",
                    "--window-tz",
                    "Mars/Olympus",
                ],
            ),
            "invalid maintenance window",
        ),
        (
            "bad duration",
            with(
                &create,
                &[
                    "--model",
                    "1234:5678",
                    "--window-cron",
                    "0 2 * * *",
                    "--window-duration",
                    "9d",
                    "--window-tz",
                    "UTC",
                ],
            ),
            "invalid maintenance window",
        ),
        (
            "silent without a window",
            with(&create, &["--model", "1234:5678", "--deployment", "silent"]),
            "a silent policy needs a maintenance window",
        ),
        (
            "a second enabled policy for the model and group",
            with(&create, &["--model", "047F:C056"]),
            "an enabled policy for 047F:C056 and this group exists",
        ),
        (
            "unknown deployment type",
            with(
                &create,
                &["--model", "047F:C056", "--deployment", "sometimes"],
            ),
            "expected optional, persistent, automatic or silent",
        ),
        (
            "bad model",
            with(&create, &["--model", "voyager"]),
            "--model",
        ),
        (
            "unknown tenant",
            vec![
                "policy",
                "firmware",
                "create",
                "--tenant",
                "nope",
                "--name",
                "X",
                "--model",
                "047F:C056",
            ],
            "no tenant nope",
        ),
    ];
    for (what, args, want) in &cases {
        let err = refused(&data, args);
        assert!(err.contains(want), "{what}: {err}");
        assert_eq!(list(), before, "{what}: nothing stored");
    }

    // A model nobody has yet may be targeted, silent included.
    let unseen = json(fw(&with(
        &[
            "create",
            "--tenant",
            &t,
            "--name",
            "Future",
            "--model",
            "1234:5678",
            "--deployment",
            "silent",
            "--group",
            "sales",
            "--json",
        ],
        &window,
    )));
    assert_eq!(
        (
            unseen["group"].as_str(),
            unseen["deployment"].as_str(),
            unseen["window"]["tz"].as_str()
        ),
        (Some(sales.as_str()), Some("silent"), Some("Europe/Berlin")),
        "{unseen}"
    );

    // Edit changes only what is given; refused edits change nothing.
    let edited = json(fw(&[
        "edit",
        "--tenant",
        &t,
        &id,
        "--version",
        "1.0",
        "--deployment",
        "persistent",
        "--max-deferrals",
        "3",
        "--share",
        "//fs/firmware",
        "--json",
    ]));
    for (field, want) in [
        ("name", Value::from("Voyager latest")),
        ("version", Value::from("1.0")),
        ("deployment", Value::from("persistent")),
        ("max_deferrals", Value::from(3)),
        (
            "source",
            serde_json::json!({"kind": "share", "path": "//fs/firmware"}),
        ),
    ] {
        assert_eq!(edited[field], want, "{field}");
    }
    let shown = json(fw(&["show", "--tenant", &t, &id]));
    assert_eq!(shown, edited);
    for (what, extra, want) in [
        (
            "silent on a model without it",
            vec![
                "--deployment",
                "silent",
                "--no-max-deferrals",
                "--window-cron",
                "0 2 * * *",
                "--window-duration",
                "1h",
                "--window-tz",
                "UTC",
            ],
            "not silent-capable",
        ),
        (
            "bad window",
            vec![
                "--window-cron",
                "0 25 * * *",
                "--window-duration",
                "1h",
                "--window-tz",
                "UTC",
            ],
            "invalid maintenance window",
        ),
        (
            "unknown group",
            vec!["--group", "Ghosts"],
            "no group Ghosts",
        ),
        ("unknown policy", vec![], "no firmware policy"),
    ] {
        let target = if extra.is_empty() {
            "0000"
        } else {
            id.as_str()
        };
        let args = with(
            &["policy", "firmware", "edit", "--tenant", &t, target],
            &extra,
        );
        let err = refused(&data, &args);
        assert!(err.contains(want), "{what}: {err}");
        assert_eq!(json(fw(&["show", "--tenant", &t, &id])), edited, "{what}");
    }

    // Copy: disabled, another group; then delete it.
    let copy = json(fw(&[
        "copy", "--tenant", &t, &id, "--group", &sales, "--json",
    ]));
    assert_eq!(
        (
            copy["name"].as_str(),
            copy["enabled"].as_bool(),
            copy["group"].as_str(),
            copy["version"].as_str()
        ),
        (
            Some("Copy of Voyager latest"),
            Some(false),
            Some(sales.as_str()),
            Some("1.0")
        )
    );
    assert_eq!(list().as_array().unwrap().len(), 3);
    let copy_id = copy["id"].as_str().unwrap();
    let out = run(
        &data,
        &["policy", "firmware", "delete", "--tenant", &t, copy_id],
    );
    assert!(out.status.success());
    assert_eq!(list().as_array().unwrap().len(), 2);
    let err = refused(
        &data,
        &["policy", "firmware", "delete", "--tenant", &t, copy_id],
    );
    assert!(err.contains("no firmware policy"), "{err}");
    // The table lists both policies.
    let table =
        String::from_utf8(run(&data, &["policy", "firmware", "list", "--tenant", &t]).stdout)
            .unwrap();
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(
        table.contains("1234:5678") && table.contains("persistent"),
        "{table}"
    );
}

#[test]
fn software_policies_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (t, _) = create_tenant(&data, "Acme");
    let sw = |extra: &[&str]| -> Value {
        let args = with(&["policy", "software"], extra);
        cli_json(&data, &args)
    };
    let p = sw(&[
        "create",
        "--tenant",
        &t,
        "--name",
        "Agent",
        "--platform",
        "linux",
        "--json",
    ]);
    let id = p["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (
            p["version"].as_str(),
            p["deployment"].as_str(),
            p["enabled"].as_bool()
        ),
        (Some("latest"), Some("optional"), Some(true))
    );
    let before = sw(&["list", "--tenant", &t, "--json"]);
    let create = [
        "policy", "software", "create", "--tenant", &t, "--name", "X",
    ];
    for (what, extra, want) in [
        (
            "silent",
            vec!["--platform", "windows", "--deployment", "silent"],
            "silent deployment is for firmware only",
        ),
        (
            "bad platform",
            vec!["--platform", "beos"],
            "must be windows, macos or linux",
        ),
        (
            "pin that is not a version",
            vec!["--platform", "macos", "--version", "1..2"],
            "must be `latest` or a version",
        ),
        (
            "unknown group",
            vec!["--platform", "macos", "--group", "Nope"],
            "no group Nope",
        ),
        (
            "second enabled policy for the platform",
            vec!["--platform", "linux"],
            "an enabled software policy for this platform and group exists",
        ),
        ("no platform", vec![], "--platform is required"),
    ] {
        let err = refused(&data, &with(&create, &extra));
        assert!(err.contains(want), "{what}: {err}");
        assert_eq!(sw(&["list", "--tenant", &t, "--json"]), before, "{what}");
    }
    let edited = sw(&[
        "edit",
        "--tenant",
        &t,
        &id,
        "--version",
        "0.2.0",
        "--deployment",
        "automatic",
        "--json",
    ]);
    assert_eq!(
        (edited["version"].as_str(), edited["deployment"].as_str()),
        (Some("0.2.0"), Some("automatic"))
    );
    assert_eq!(sw(&["show", "--tenant", &t, &id]), edited);
    let copy = sw(&[
        "copy",
        "--tenant",
        &t,
        &id,
        "--name",
        "Pilot agent",
        "--json",
    ]);
    assert_eq!(
        (copy["name"].as_str(), copy["enabled"].as_bool()),
        (Some("Pilot agent"), Some(false))
    );
    assert!(run(
        &data,
        &["policy", "software", "delete", "--tenant", &t, &id]
    )
    .status
    .success());
    let left = sw(&["list", "--tenant", &t, "--json"]);
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["id"], copy["id"]);

    // Settings: defaults, a change, refusals that change nothing, back to default.
    let show = || cli_json(&data, &["settings", "show", "--tenant", &t, "--json"]);
    assert_eq!(
        show(),
        serde_json::json!({"shared_accounts": [], "excluded_accounts": [],
            "all_users_poll_interval_secs": 21600, "event_retention_days": null})
    );
    let set = cli_json(
        &data,
        &[
            "settings",
            "set",
            "--tenant",
            &t,
            "--excluded-accounts",
            "svc-backup,vdi-login",
            "--shared-accounts",
            "kiosk",
            "--poll-interval-secs",
            "3600",
            "--event-retention-days",
            "90",
            "--json",
        ],
    );
    let want = serde_json::json!({"shared_accounts": ["kiosk"],
        "excluded_accounts": ["svc-backup", "vdi-login"],
        "all_users_poll_interval_secs": 3600, "event_retention_days": 90});
    assert_eq!((set, show()), (want.clone(), want.clone()));
    let set_args = ["settings", "set", "--tenant", &t];
    for (what, extra, msg) in [
        (
            "poll too short",
            ["--poll-interval-secs", "60"],
            "must be between 300",
        ),
        (
            "no retention",
            ["--event-retention-days", "0"],
            "must be between 1 and 36500 days",
        ),
        (
            "retention not a number",
            ["--event-retention-days", "forever"],
            "not a number of days or `default`",
        ),
    ] {
        let err = refused(&data, &with(&set_args, &extra));
        assert!(err.contains(msg), "{what}: {err}");
        assert_eq!(show(), want, "{what}");
    }
    let back = cli_json(
        &data,
        &[
            "settings",
            "set",
            "--tenant",
            &t,
            "--event-retention-days",
            "default",
            "--shared-accounts",
            "",
            "--json",
        ],
    );
    assert_eq!(
        (
            back["event_retention_days"].clone(),
            back["shared_accounts"].clone()
        ),
        (Value::Null, serde_json::json!([]))
    );
    let text = String::from_utf8(run(&data, &["settings", "show", "--tenant", &t]).stdout).unwrap();
    assert!(
        text.contains("event retention:       server default"),
        "{text}"
    );
}

#[test]
fn both_kinds_copy_show_list_and_name_a_missing_policy_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    import(&data, dir.path(), "Voyager", "047F:C056", "1.0");
    let (t, _) = create_tenant(&data, "Acme");
    // (kind, create fields, list header's second column)
    let kinds: [(&str, Vec<&str>, &str); 2] = [
        ("firmware", vec!["--model", "047F:C056"], "MODEL"),
        ("software", vec!["--platform", "linux"], "PLATFORM"),
    ];
    for (kind, fields, column) in kinds {
        let create = with(
            &[
                "policy", kind, "create", "--tenant", &t, "--name", "Orig", "--json",
            ],
            &fields,
        );
        let p = cli_json(&data, &create);
        let id = p["id"].as_str().unwrap().to_owned();
        let copy = cli_json(
            &data,
            &[
                "policy", kind, "copy", "--tenant", &t, &id, "--name", "Twin", "--json",
            ],
        );
        assert_eq!(copy["name"], "Twin", "{kind}");
        assert_eq!(copy["enabled"], false, "{kind}: a copy starts disabled");
        assert_ne!(copy["id"], p["id"], "{kind}");
        let shown = cli_json(&data, &["policy", kind, "show", "--tenant", &t, &id]);
        assert_eq!(shown, p, "{kind}");
        let out = run(&data, &["policy", kind, "list", "--tenant", &t]);
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{kind}: {text}");
        assert!(
            lines[0].starts_with("ID ") && lines[0].contains(column) && lines[0].ends_with("NAME"),
            "{kind}: {text}"
        );
        assert!(
            lines[1].starts_with(&id) && lines[1].ends_with("Orig"),
            "{kind}: {text}"
        );
        for verb in ["show", "delete"] {
            let err = refused(&data, &["policy", kind, verb, "--tenant", &t, "nope"]);
            assert!(
                err.contains(&format!("no {kind} policy nope in tenant {t}")),
                "{kind} {verb}: {err}"
            );
        }
        let err = refused(
            &data,
            &[
                "policy", kind, "copy", "--tenant", &t, "nope", "--name", "X",
            ],
        );
        assert!(
            err.contains(&format!("no {kind} policy nope")),
            "{kind} copy: {err}"
        );
    }
}
