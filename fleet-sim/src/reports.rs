//! The reports the demo prints at the end, fetched over the API as an admin would.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use crate::admin::AdminClient;

/// Non-compliant devices listed by name (the rest are counted).
const LISTED: usize = 8;

/// Version Status (as CSV) and a Policy Compliance summary, by title.
pub fn fetch(admin: &AdminClient) -> anyhow::Result<Vec<(String, String)>> {
    let versions = admin.get_text("reports/versions?format=csv")?;
    let compliance = admin.get("reports/compliance")?;
    Ok(vec![
        ("Version Status".to_owned(), versions),
        (
            "Policy Compliance".to_owned(),
            summarise_compliance(&compliance),
        ),
    ])
}

/// The report's rows, whether it is an array or an object holding one.
fn rows(report: &Value) -> Vec<&Value> {
    match report {
        Value::Array(rows) => rows.iter().collect(),
        Value::Object(o) => o
            .values()
            .find_map(Value::as_array)
            .map(|rows| rows.iter().collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Devices per compliance status, then the non-compliant ones with the reason.
pub fn summarise_compliance(report: &Value) -> String {
    let rows = rows(report);
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rows {
        *by_status
            .entry(r["status"].as_str().unwrap_or("unknown").to_owned())
            .or_default() += 1;
    }
    let mut out = String::new();
    for (status, n) in &by_status {
        let _ = writeln!(out, "{status:<24} {n:>5} devices");
    }
    let failing: Vec<&&Value> = rows.iter().filter(|r| r["compliant"] == false).collect();
    for r in failing.iter().take(LISTED) {
        let detail: String = r["detail"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(110)
            .collect();
        let _ = writeln!(
            out,
            "  {} {} ({}): {}",
            r["hostname"].as_str().unwrap_or("?"),
            r["model"].as_str().unwrap_or("?"),
            r["status"].as_str().unwrap_or("?"),
            detail
        );
    }
    if failing.len() > LISTED {
        let _ = writeln!(out, "  … and {} more", failing.len() - LISTED);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compliance_summary_counts_statuses_and_lists_the_non_compliant() {
        let report = json!({"rows": [
            {"status": "compliant", "compliant": true, "hostname": "ws-1", "model": "1209:0003", "detail": ""},
            {"status": "compliant", "compliant": true, "hostname": "ws-2", "model": "1209:0003", "detail": ""},
            {"status": "waiting_for_window", "compliant": false, "hostname": "ws-3", "model": "1209:0007", "detail": "another device"},
        ]});
        assert_eq!(
            summarise_compliance(&report),
            "compliant                    2 devices\n\
             waiting_for_window           1 devices\n  \
             ws-3 1209:0007 (waiting_for_window): another device\n"
        );
        assert_eq!(summarise_compliance(&json!([])), "");
    }
}
