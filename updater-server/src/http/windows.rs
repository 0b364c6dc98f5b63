//! `POST /api/v1/tenants/{tenant}/windows/preview`: the admin's preview of a
//! maintenance window, the same computation the agent uses (`catalog::window`).

use axum::http::StatusCode;
use axum::Json;
use catalog::window::MaintenanceWindow;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{error, ApiError, JsonBody};

/// Most occurrences one preview returns.
const MAX_COUNT: usize = 100;

/// A window in the shape policies take (`cron`, `duration_minutes`, `tz`,
/// checked by the same rule), with where to start and how many to list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviewRequest {
    cron: String,
    duration_minutes: i64,
    tz: String,
    #[serde(default)]
    from: Option<DateTime<Utc>>,
    #[serde(default)]
    count: Option<usize>,
}

/// The same code and wording as a policy with that window gets.
fn invalid(message: &str) -> ApiError {
    ApiError::new(error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        message,
    ))
}

/// Answers `[{"start": RFC 3339 UTC, "end": …}, …]`, like `windows preview --json`.
pub(crate) async fn preview(
    JsonBody(req): JsonBody<PreviewRequest>,
) -> Result<Json<Value>, ApiError> {
    // Through the window's own deserializer: the rule policies are held to.
    let window: MaintenanceWindow = serde_json::from_value(json!({
        "cron": req.cron, "duration_minutes": req.duration_minutes, "tz": req.tz,
    }))
    .map_err(|e| invalid(&e.to_string()))?;
    let count = req.count.unwrap_or(5);
    if count == 0 || count > MAX_COUNT {
        return Err(invalid(&format!("count: must be 1 to {MAX_COUNT}")));
    }
    let from = req.from.unwrap_or_else(Utc::now);
    let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let list: Vec<Value> = window
        .occurrences(from)
        .take(count)
        .map(|o| json!({"start": rfc(o.start), "end": rfc(o.end)}))
        .collect();
    Ok(Json(Value::Array(list)))
}

/// A window edge in the window's zone: "Sun 2026-03-29 03:00 +02:00 CEST";
/// zones without an abbreviation get the offset once. The CLI's preview
/// table and the console's policy editor both print this.
pub fn local_time(tz: chrono_tz::Tz, t: DateTime<Utc>) -> String {
    let t = t.with_timezone(&tz);
    let abbr = t.format("%Z").to_string();
    match abbr.starts_with(['+', '-']) {
        true => t.format("%a %Y-%m-%d %H:%M %:z").to_string(),
        false => format!("{} {abbr}", t.format("%a %Y-%m-%d %H:%M %:z")),
    }
}
