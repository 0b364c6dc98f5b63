//! Tenant routes for admin accounts: list, create, delete, and passwords
//! (an admin's own change, a full admin's reset). Mounted through
//! [`super::api::TENANT_ROUTES`].

use axum::extract::{Extension, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{blocking, internal, ApiError, JsonBody};
use super::Shared;
use crate::auth::Principal;
use crate::store::{Admin, Role};

fn admin_view(a: &Admin) -> Value {
    json!({
        "id": a.id,
        "email": a.email,
        "role": a.role,
        "primary": a.primary,
        "created_at": a.created_at,
    })
}

pub(crate) async fn list_admins(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let admins = state
            .accounts
            .records()
            .admins(&p.tenant)
            .map_err(|e| ApiError::new(internal(&e)))?;
        Ok(Json(Value::Array(admins.iter().map(admin_view).collect())))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAdmin {
    email: String,
    role: Role,
    password: String,
    #[serde(default)]
    primary: bool,
}

pub(crate) async fn create_admin(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    JsonBody(body): JsonBody<NewAdmin>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let a = state.accounts.create_admin(
            &p.tenant,
            &body.email,
            body.role,
            body.primary,
            &body.password,
        )?;
        Ok((StatusCode::CREATED, Json(admin_view(&a))).into_response())
    })
    .await
}

pub(crate) async fn delete_admin(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): UrlPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        state.accounts.delete_admin(&p.tenant, &id)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPassword {
    password: String,
}

/// A full admin sets another admin's password; that admin's sessions end.
pub(crate) async fn reset_password(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): UrlPath<(String, String)>,
    JsonBody(body): JsonBody<NewPassword>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        state
            .accounts
            .reset_password(&p.tenant, &id, &body.password)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// A signed-in admin changes their own password; their other sessions end.
pub(crate) async fn change_own_password(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    JsonBody(body): JsonBody<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        state
            .accounts
            .change_own_password(&p, &body.current_password, &body.new_password)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}
