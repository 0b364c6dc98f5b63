//! `GET /api/v1/tenants/{tenant}/reports/{inventory,versions,compliance,distribution,history}`
//! (mounted through [`super::api::TENANT_ROUTES`], read access).
//!
//! JSON by default; CSV with `?format=csv` or `Accept: text/csv` (the query
//! wins), as `text/csv; charset=utf-8` with a `Content-Disposition` file
//! name. The reports themselves are built in [`crate::reports`].

use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::errors::{blocking, error, internal, ApiError};
use super::fleet::fleet;
use super::Shared;
use crate::auth::Principal;
use crate::events::Filter;
use crate::reports::{self, history, Built, Format, ReportError, ReportKind, Snapshot};

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::Invalid { .. } => ApiError::new(error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &e.to_string(),
            )),
            ReportError::Fleet(f) => f.into(),
            ReportError::Events(ev) => ev.into(),
            ReportError::Csv(_) => ApiError::new(internal(&e)),
        }
    }
}

pub(crate) fn bad_query(r: &QueryRejection) -> ApiError {
    ApiError::new(error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        &r.body_text(),
    ))
}

/// `?format=json|csv`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FormatQuery {
    format: Option<String>,
}

impl FormatQuery {
    /// `?format=`, if given.
    pub(crate) fn format(&self) -> Option<&str> {
        self.format.as_deref()
    }
}

/// `?format=&from=&to=&agent=&device=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryQuery {
    format: Option<String>,
    from: Option<String>,
    to: Option<String>,
    agent: Option<String>,
    device: Option<String>,
}

/// The format: `?format=` when given, else the first of `text/csv` and
/// `application/json` the `Accept` header names, else JSON.
pub(crate) fn negotiate(format: Option<&str>, headers: &HeaderMap) -> Result<Format, ReportError> {
    if let Some(f) = format {
        return f.parse();
    }
    for accept in headers.get_all(header::ACCEPT) {
        let Ok(accept) = accept.to_str() else {
            continue;
        };
        for range in accept.split(',') {
            let media = range.split(';').next().unwrap_or("").trim();
            if media.eq_ignore_ascii_case("text/csv") {
                return Ok(Format::Csv);
            }
            if media.eq_ignore_ascii_case("application/json") {
                return Ok(Format::Json);
            }
        }
    }
    Ok(Format::Json)
}

/// `device-inventory-<tenant>-<YYYY-MM-DD>.csv`, with only file-name-safe
/// characters of the tenant id.
pub(crate) fn file_name(kind: ReportKind, tenant: &str, day: chrono::NaiveDate) -> String {
    let tenant: String = tenant
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect();
    format!("{}-{tenant}-{day}.csv", kind.file_stem())
}

pub(crate) fn respond(
    built: &Built,
    format: Format,
    tenant: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Response, ApiError> {
    let body = built.render(format)?;
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    match format {
        Format::Json => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        Format::Csv => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            let name = file_name(built.kind, tenant, now.date_naive());
            let value = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
                .map_err(|e| ApiError::new(internal(&e)))?;
            h.insert(header::CONTENT_DISPOSITION, value);
        }
    }
    Ok(r)
}

async fn fleet_report(
    kind: ReportKind,
    state: Shared,
    p: Principal,
    q: Result<Query<FormatQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|r| bad_query(&r))?;
    let format = negotiate(q.format.as_deref(), &headers)?;
    blocking(move || {
        let now = state.accounts.now();
        let snapshot = Snapshot::load(state.accounts.store(), &fleet(&state), &p.tenant, now)?;
        let built = reports::build(kind, &snapshot)
            .ok_or_else(|| ApiError::new(internal(&"history is not a fleet report")))?;
        respond(&built, format, &p.tenant, now)
    })
    .await
}

/// `GET …/reports/inventory`.
pub(crate) async fn inventory(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    q: Result<Query<FormatQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    fleet_report(ReportKind::Inventory, s, p, q, headers).await
}

/// `GET …/reports/versions`.
pub(crate) async fn versions(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    q: Result<Query<FormatQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    fleet_report(ReportKind::Versions, s, p, q, headers).await
}

/// `GET …/reports/compliance`.
pub(crate) async fn compliance(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    q: Result<Query<FormatQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    fleet_report(ReportKind::Compliance, s, p, q, headers).await
}

/// `GET …/reports/distribution`.
pub(crate) async fn distribution(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    q: Result<Query<FormatQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    fleet_report(ReportKind::Distribution, s, p, q, headers).await
}

/// `GET …/reports/history?from=&to=&agent=&device=`.
pub(crate) async fn update_history(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|r| bad_query(&r))?;
    let format = negotiate(q.format.as_deref(), &headers)?;
    let range = history::Range::parse(
        q.from.as_deref(),
        q.to.as_deref(),
        Filter {
            agent: q.agent,
            device: q.device,
        },
    )?;
    blocking(move || {
        let now = state.accounts.now();
        let store = state.accounts.store();
        let (records, truncated) = history::read(store, &p.tenant, &range, history::MAX_ROWS)?;
        let hosts = crate::fleet::inventory::hosts(store, &p.tenant)?;
        let built = history::build(&p.tenant, now, &range, records, truncated, &hosts);
        respond(&built, format, &p.tenant, now)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_negotiation() {
        let accept = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
            h
        };
        let none = HeaderMap::new();
        for (query, headers, want) in [
            (None, &none, Some(Format::Json)),
            (Some("csv"), &none, Some(Format::Csv)),
            (Some("json"), &accept("text/csv"), Some(Format::Json)),
            (None, &accept("text/csv"), Some(Format::Csv)),
            (None, &accept("text/csv; charset=utf-8"), Some(Format::Csv)),
            (
                None,
                &accept("application/json, text/csv"),
                Some(Format::Json),
            ),
            (
                None,
                &accept("text/html, TEXT/CSV;q=0.9"),
                Some(Format::Csv),
            ),
            (None, &accept("*/*"), Some(Format::Json)),
            (Some("xlsx"), &none, None),
        ] {
            assert_eq!(
                negotiate(query, headers).ok(),
                want,
                "{query:?} {headers:?}"
            );
        }
    }

    #[test]
    fn file_names_carry_only_safe_characters() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
        assert_eq!(
            file_name(ReportKind::Compliance, "3f2a9c", day),
            "policy-compliance-3f2a9c-2026-01-31.csv"
        );
        assert_eq!(
            file_name(ReportKind::Inventory, "a\"; filename=x/../b", day),
            "device-inventory-afilenamexb-2026-01-31.csv"
        );
    }
}
