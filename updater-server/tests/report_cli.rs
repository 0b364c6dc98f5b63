//! `updater-server report …`: refusals, and the reports of a tenant without
//! agents (headers only). The reports with data: `reports.rs`.

mod support;

use serde_json::{json, Value};
use support::{create_tenant, updater};

#[test]
fn report_cli_refusals_and_an_empty_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (a, _) = create_tenant(&data, "Acme");
    for (args, why) in [
        (
            vec!["report", "inventory", "--tenant", "nope"],
            "no tenant nope",
        ),
        (
            vec!["report", "versions", "--tenant", &a, "--from", "2026-01-01"],
            "--from and --to apply to the history report only",
        ),
        (
            vec!["report", "history", "--tenant", &a, "--to", "31/01/2026"],
            "invalid to",
        ),
        (
            vec!["report", "users", "--tenant", &a],
            "invalid value 'users'",
        ),
        (
            vec!["report", "inventory", "--tenant", &a, "--format", "xml"],
            "invalid value 'xml'",
        ),
    ] {
        let out = updater(&data).args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    }
    // A tenant without agents: headers only, and All Users in the distribution.
    for (report, header) in [
        ("inventory", "device_id,identity,model,"),
        (
            "versions",
            "model,model_name,latest_version,installed_version,status,devices",
        ),
        ("compliance", "device_id,identity,model,serial,"),
        (
            "distribution",
            "group,group_name,user,model,model_name,devices",
        ),
        (
            "history",
            "seq,at,agent,hostname,device,target,version,outcome,reason,event_id",
        ),
    ] {
        let out = updater(&data)
            .args(["report", report, "--tenant", &a, "--format", "csv"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{report}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.lines().count(), 1, "{report}: {text}");
        assert!(text.starts_with(header), "{report}: {text}");
    }
    // `--data` is accepted for `--data-dir`.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_updater-server"));
    support::store_env(&mut cmd, &data);
    let out = cmd
        .args(["report", "distribution", "--tenant", &a, "--data"])
        .arg(&data)
        .env_remove("UPDATER_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["groups"][0]["group"], "all-users");
    assert_eq!(v["users"], json!([]));
}
