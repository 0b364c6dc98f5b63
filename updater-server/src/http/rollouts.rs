//! Tenant routes for staged rollouts (mounted through
//! [`super::api::TENANT_ROUTES`]).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::errors::{blocking, internal, ApiError, JsonBody};
use super::fleet::fleet;
use super::reports::{bad_query, negotiate, FormatQuery};
use super::Shared;
use crate::auth::{Principal, PrincipalKind};
use crate::fleet::rollouts::service::RolloutAction;
use crate::fleet::rollouts::{report, Rollout, RolloutInput};
use crate::fleet::Fleet;
use crate::reports::Format;

type Id = UrlPath<(String, String)>;

/// Who an action is recorded as: the admin's e-mail, or the API token.
pub(crate) fn actor(s: &Shared, p: &Principal) -> String {
    match &p.kind {
        PrincipalKind::Admin { admin_id, .. } => s
            .accounts
            .records()
            .admin(&p.tenant, admin_id)
            .ok()
            .flatten()
            .map_or_else(|| format!("admin {admin_id}"), |a| a.email),
        PrincipalKind::ApiToken { token_id, .. } => format!("API token {token_id}"),
    }
}

fn with_status(f: &Fleet, r: &Rollout) -> Result<Value, ApiError> {
    let figures = f.rollout_figures(r)?;
    let mut v = serde_json::to_value(r).map_err(|e| ApiError::new(internal(&e)))?;
    v["status"] = serde_json::to_value(report::build(r, &figures))
        .map_err(|e| ApiError::new(internal(&e)))?;
    Ok(v)
}

fn summary(r: &Rollout) -> Value {
    json!({
        "id": r.id,
        "name": r.spec.name,
        "model": r.spec.model,
        "release": r.release,
        "state": r.state,
        "groups": r.spec.groups,
        "waves": r.spec.waves.len(),
        "waves_begun": r.waves.iter().filter(|w| w.started_at.is_some()).count(),
        "pause": r.pause,
        "created_at": r.stamps.created_at,
        "updated_at": r.stamps.updated_at,
    })
}

/// `GET …/rollouts`: newest first.
pub(crate) async fn list_rollouts(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let all = fleet(&s).rollouts(&p.tenant)?;
        Ok(Json(Value::Array(all.iter().map(summary).collect())))
    })
    .await
}

/// `POST …/rollouts`.
pub(crate) async fn create_rollout(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    JsonBody(body): JsonBody<RolloutInput>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let f = fleet(&s);
        let r = f.create_rollout(&p.tenant, body, &actor(&s, &p))?;
        Ok((StatusCode::CREATED, Json(with_status(&f, &r)?)).into_response())
    })
    .await
}

/// `GET …/rollouts/{id}`: the rollout with its status.
pub(crate) async fn show_rollout(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): Id,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let f = fleet(&s);
        let r = f.rollout(&p.tenant, &id)?;
        Ok(Json(with_status(&f, &r)?))
    })
    .await
}

/// `GET …/rollouts/{id}/status`: the status report, JSON or CSV
/// (`?format=csv` or `Accept: text/csv`).
pub(crate) async fn rollout_status(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): Id,
    headers: HeaderMap,
    q: Result<Query<FormatQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|r| bad_query(&r))?;
    let format = negotiate(q.format(), &headers)?;
    blocking(move || {
        let f = fleet(&s);
        let r = f.rollout(&p.tenant, &id)?;
        let built = report::build(&r, &f.rollout_figures(&r)?);
        let mut resp = match format {
            Format::Json => Json(built).into_response(),
            Format::Csv => {
                let body =
                    crate::reports::csv::write(report::CSV_COLUMNS, report::csv_rows(&built))?;
                let mut resp = (StatusCode::OK, body).into_response();
                let h = resp.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/csv; charset=utf-8"),
                );
                let name = format!("rollout-status-{}.csv", r.id);
                let value = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
                    .map_err(|e| ApiError::new(internal(&e)))?;
                h.insert(header::CONTENT_DISPOSITION, value);
                resp
            }
        };
        let h = resp.headers_mut();
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(resp)
    })
    .await
}

async fn act(
    s: Shared,
    p: Principal,
    id: String,
    action: RolloutAction,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let f = fleet(&s);
        let r = f.rollout_action(&p.tenant, &id, action, &actor(&s, &p))?;
        Ok(Json(with_status(&f, &r)?))
    })
    .await
}

/// `POST …/rollouts/{id}/pause`.
pub(crate) async fn pause_rollout(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): Id,
) -> Result<Json<Value>, ApiError> {
    act(s, p, id, RolloutAction::Pause).await
}

/// `POST …/rollouts/{id}/resume`.
pub(crate) async fn resume_rollout(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): Id,
) -> Result<Json<Value>, ApiError> {
    act(s, p, id, RolloutAction::Resume).await
}

/// `POST …/rollouts/{id}/approve`.
pub(crate) async fn approve_rollout(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): Id,
) -> Result<Json<Value>, ApiError> {
    act(s, p, id, RolloutAction::Approve).await
}

/// `POST …/rollouts/{id}/cancel`.
pub(crate) async fn cancel_rollout(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): Id,
) -> Result<Json<Value>, ApiError> {
    act(s, p, id, RolloutAction::Cancel).await
}

/// `DELETE …/rollouts/{id}` (cancelled or completed ones).
pub(crate) async fn delete_rollout(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): Id,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        fleet(&s).delete_rollout(&p.tenant, &id)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}
