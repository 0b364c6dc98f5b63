//! Every refusal as the documented JSON error, and the server's log
//! formats, with the real binary.

mod support;

use std::process::Stdio;

use reqwest::blocking::Client;
use serde_json::Value;
use support::{create_admin, create_tenant, login, start, updater};

/// Every refusal is the documented JSON error: a wrong method, a body that
/// is not JSON or of the wrong shape (the message names the field, without
/// the parser's prefix), another content type, an unknown route.
#[test]
fn every_refusal_is_a_documented_json_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (a, _) = create_tenant(&data, "Acme");
    create_admin(&data, &a, "ann@acme.example", "full");
    let server = start(&data, &[], &[]);
    let http = Client::new();
    let token = login(&http, &server.base, &a, "ann@acme.example");
    let groups = format!("/api/v1/tenants/{a}/groups");
    let json = "application/json";
    // (method, path, content type, body, status, code, the message contains)
    let cases: [(&str, &str, &str, &str, u16, &str, &str); 7] = [
        (
            "DELETE",
            "/api/v1/login",
            json,
            "",
            405,
            "method_not_allowed",
            "does not answer that method",
        ),
        (
            "POST",
            &groups,
            json,
            "{\"name\": ",
            400,
            "invalid_request",
            "the body is not valid JSON: EOF while parsing",
        ),
        (
            "POST",
            &groups,
            json,
            r#"{"name": "Sales", "membership": {"kind": "manual"}} trailing"#,
            400,
            "invalid_request",
            "the body is not valid JSON: trailing characters",
        ),
        (
            "POST",
            &groups,
            json,
            r#"{"name": 5, "membership": {"kind": "manual"}}"#,
            422,
            "invalid_request",
            "name: invalid type: integer `5`, expected a string",
        ),
        (
            "POST",
            &groups,
            json,
            r#"{"name": "Sales", "colour": "red", "membership": {"kind": "manual"}}"#,
            422,
            "invalid_request",
            "unknown field `colour`",
        ),
        (
            "POST",
            &groups,
            "text/plain",
            r#"{"name": "Sales"}"#,
            415,
            "unsupported_media_type",
            "Content-Type: application/json",
        ),
        (
            "GET",
            "/api/v1/nowhere",
            json,
            "",
            404,
            "not_found",
            "no such route",
        ),
    ];
    for (method, path, content_type, body, status, code, says) in cases {
        let r = http
            .request(method.parse().unwrap(), format!("{}{path}", server.base))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .unwrap();
        let got_status = r.status().as_u16();
        let v: Value = r.json().unwrap();
        assert_eq!(
            (got_status, v["code"].as_str().unwrap()),
            (status, code),
            "{method} {path} {body}: {v}"
        );
        let message = v["message"].as_str().unwrap();
        assert!(message.contains(says), "{method} {path} {body}: {message}");
        assert!(!message.starts_with("Failed to"), "{message}");
    }
}

/// Server logs: no escape codes when standard error is not a terminal;
/// `UPDATER_LOG_FORMAT=json` gives one JSON object per line; an unknown
/// format is refused at start.
#[test]
fn logs_are_plain_text_or_json_lines() {
    use std::io::{BufRead, BufReader, Read};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve_logs = |format: Option<&str>| {
        let mut cmd = updater(&data);
        cmd.args([
            "serve",
            "--allow-online-root-key",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        if let Some(f) = format {
            cmd.env("UPDATER_LOG_FORMAT", f);
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("updater-server listening on "), "{line}");
        child.kill().unwrap();
        child.wait().unwrap();
        let mut logs = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut logs)
            .unwrap();
        logs
    };
    let text = serve_logs(None);
    assert!(text.contains("listening"), "{text}");
    assert!(!text.contains('\u{1b}'), "escape codes in {text:?}");
    let json_lines = serve_logs(Some("json"));
    let events: Vec<Value> = json_lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let listening = events
        .iter()
        .find(|e| e["fields"]["message"] == "listening")
        .unwrap_or_else(|| panic!("{json_lines}"));
    assert_eq!(listening["level"], "INFO");
    assert!(listening["fields"]["addr"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));

    let out = updater(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("UPDATER_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: UPDATER_LOG_FORMAT=\"xml\" is not a log format: use text or json\n"
    );
}
