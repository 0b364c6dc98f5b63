//! Helpers of the report tests: importing releases, checking in, and
//! reading report answers (JSON, CSV, schemas).

#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};

use crate::support::updater;

pub fn import(data: &Path, dir: &Path, model: &str, hwid: &str, version: &str) {
    let fw = dir.join(format!("{model}-{version}.bin"));
    std::fs::write(&fw, format!("{model} firmware {version}").repeat(64)).unwrap();
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

pub fn device(serial: Option<&str>, pid: u16, vid: u16, fw: Option<&str>, dfu: &str) -> Value {
    json!({"vendor_id": vid, "product_id": pid, "bcd_device": 0x0100,
           "serial": serial, "port_path": "1-4", "manufacturer": "Acme",
           "product": "Voyager 4320", "firmware_version": fw, "dfu": dfu,
           "telephony": true, "battery": null, "in_call": false})
}

pub fn check_in(http: &Client, base: &str, agent: &(String, String), body: &Value) {
    let r = http
        .post(format!("{base}/api/v1/agents/{}/checkin", agent.0))
        .bearer_auth(&agent.1)
        .json(body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
}

pub fn events(http: &Client, base: &str, agent: &(String, String), events: Value) {
    let r = http
        .post(format!("{base}/api/v1/agents/{}/events", agent.0))
        .bearer_auth(&agent.1)
        .json(&json!({ "events": events }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
}

/// GET with a session token; the response itself.
pub fn get(http: &Client, url: &str, token: &str, accept: Option<&str>) -> Response {
    let mut r = http.get(url).bearer_auth(token);
    if let Some(a) = accept {
        r = r.header("accept", a);
    }
    r.send().unwrap()
}

pub fn json_of(r: Response) -> Value {
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().unwrap()
}

/// The CSV body parsed into rows (header first), after checking the headers.
pub fn csv_of(r: Response, file_prefix: &str) -> (String, Vec<Vec<String>>) {
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with(&format!("attachment; filename=\"{file_prefix}-"))
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    let text = r.text().unwrap();
    (text.clone(), parse_csv(&text))
}

pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// The row whose `key` column equals `value`.
pub fn row<'a>(rows: &'a [Vec<String>], key: &str, value: &str) -> &'a [String] {
    let col = rows[0].iter().position(|c| c == key).unwrap();
    rows.iter()
        .skip(1)
        .find(|r| r[col] == value)
        .unwrap_or_else(|| panic!("no row with {key}={value}: {rows:?}"))
}

pub fn cell<'a>(rows: &[Vec<String>], r: &'a [String], column: &str) -> &'a str {
    let col = rows[0].iter().position(|c| c == column).unwrap();
    &r[col]
}

/// Checks each `(schema name, answer)` against `#/components/schemas/<name>`
/// of the served OpenAPI document with `jsonschema` (JSON Schema 2020-12);
/// panics naming the package when python3 is missing; the error names the
/// first sample that does not match.
pub fn check_schemas(
    http: &Client,
    base: &str,
    dir: &Path,
    samples: &[(&str, &Value)],
) -> Result<(), String> {
    const CHECK: &str = r##"
import json, sys
from jsonschema import Draft202012Validator
doc = json.load(open(sys.argv[1]))
for name, instance in json.load(open(sys.argv[2])):
    schema = {"components": doc["components"], "$ref": "#/components/schemas/" + name}
    errors = list(Draft202012Validator(schema).iter_errors(instance))
    if errors:
        sys.exit(f"{name}: {errors[0].message} at {list(errors[0].absolute_path)}")
"##;
    let doc = http
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let doc_path = dir.join("openapi.json");
    std::fs::write(&doc_path, &doc).unwrap();
    let samples_path = dir.join("report-samples.json");
    std::fs::write(&samples_path, serde_json::to_vec(samples).unwrap()).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(CHECK)
        .arg(&doc_path)
        .arg(&samples_path)
        .output()
        .unwrap_or_else(|e| panic!("python3 with jsonschema is required (CI installs it): {e}"));
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
