//! `POST /api/v1/tenants/{tenant}/windows/preview`: the admin's preview of a
//! maintenance window, the same computation the agent uses (`catalog::window`).

use axum::http::StatusCode;
use axum::Json;
use catalog::window::{parse_duration, MaintenanceWindow};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{error, ApiError, JsonBody};

/// Most occurrences one preview returns.
const MAX_COUNT: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviewRequest {
    cron: String,
    duration: String,
    tz: String,
    #[serde(default)]
    from: Option<DateTime<Utc>>,
    #[serde(default)]
    count: Option<usize>,
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_window",
        message,
    ))
}

/// Answers `[{"start": RFC 3339 UTC, "end": …}, …]`, like `windows preview --json`.
pub(crate) async fn preview(
    JsonBody(req): JsonBody<PreviewRequest>,
) -> Result<Json<Value>, ApiError> {
    let duration = parse_duration(&req.duration).map_err(|e| invalid(&e.to_string()))?;
    let window = MaintenanceWindow::new(&req.cron, duration, &req.tz)
        .map_err(|e| invalid(&format!("invalid maintenance window: {e}")))?;
    let count = req.count.unwrap_or(5);
    if count == 0 || count > MAX_COUNT {
        return Err(invalid(&format!("count must be 1 to {MAX_COUNT}")));
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
