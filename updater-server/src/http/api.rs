//! The tenant-scoped API. [`TENANT_ROUTES`] is the one table the router is
//! built from, and that the auth-matrix test walks.

use axum::extract::{DefaultBodyLimit, Extension, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Json;
use catalog::digest::Sha256Digest;
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{blocking, internal, ApiError, JsonBody};
use super::{admins, fleet, releases, rollouts, AppState, Shared};
use crate::auth::{Principal, PrincipalKind};
use crate::store::{ApiToken, ApiTokenScope};

/// Who may call a route (on top of belonging to the route's tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any principal of the tenant.
    Read,
    /// Full admins and full-scope API tokens.
    Write,
    /// Full admins only (managing admins and API tokens).
    FullAdmin,
    /// Any signed-in admin, not API tokens (their own password).
    Admin,
    /// What [`Access::Write`] allows, for a tenant the server operator made
    /// a catalog manager (`serve --catalog-managers`): changing the firmware
    /// catalog every tenant shares.
    CatalogManager,
}

/// An HTTP method of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// DELETE.
    Delete,
    /// PUT (replace a record).
    Put,
}

impl Method {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
            Method::Put => "PUT",
        }
    }
}

/// One tenant-scoped route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// Method.
    pub method: Method,
    /// Path with `{tenant}` and optionally `{id}` parameters.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The status of a successful call.
    pub success: u16,
    /// A valid request body (empty for none): documentation, and what the
    /// auth-matrix test sends.
    pub example_body: &'static str,
    handler: fn() -> MethodRouter<Shared>,
}

/// A staged rollout: 5 % first, then the rest once 95 % of those run the
/// release.
const ROLLOUT_EXAMPLE: &str = r#"{"name":"Voyager 1.0","model":"047F:C056","version":"1.0","deployment":"persistent","waves":[{"percent":5,"error_threshold_percent":10},{"rest":true,"start":"after_previous","success_threshold_percent":95}]}"#;

/// Every route under `/api/v1/tenants/{tenant}`.
pub const TENANT_ROUTES: &[Route] = &[
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(tenant_info),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/admins",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(admins::list_admins),
    },
    Route {
        method: Method::Post,
        path: "/api/v1/tenants/{tenant}/admins",
        access: Access::FullAdmin,
        success: 201,
        example_body: r#"{"email":"new-admin@example.com","role":"read-only","password":"a long enough password"}"#,
        handler: || post(admins::create_admin),
    },
    Route {
        method: Method::Put,
        path: "/api/v1/tenants/{tenant}/admins/{id}/password",
        access: Access::FullAdmin,
        success: 204,
        example_body: r#"{"password":"a new long enough password"}"#,
        handler: || put(admins::reset_password),
    },
    Route {
        method: Method::Delete,
        path: "/api/v1/tenants/{tenant}/admins/{id}",
        access: Access::FullAdmin,
        success: 204,
        example_body: "",
        handler: || delete(admins::delete_admin),
    },
    Route {
        method: Method::Post,
        path: "/api/v1/tenants/{tenant}/password",
        access: Access::Admin,
        success: 204,
        example_body: r#"{"current_password":"the current password","new_password":"a new long enough password"}"#,
        handler: || post(admins::change_own_password),
    },
    Route {
        method: Method::Post,
        path: "/api/v1/tenants/{tenant}/enrollment-token/rotate",
        access: Access::Write,
        success: 200,
        example_body: "",
        handler: || post(rotate_enrollment_token),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/api-tokens",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(list_api_tokens),
    },
    Route {
        method: Method::Post,
        path: "/api/v1/tenants/{tenant}/api-tokens",
        access: Access::FullAdmin,
        success: 201,
        example_body: r#"{"name":"example app","scope":"read"}"#,
        handler: || post(create_api_token),
    },
    Route {
        method: Method::Delete,
        path: "/api/v1/tenants/{tenant}/api-tokens/{id}",
        access: Access::FullAdmin,
        success: 204,
        example_body: "",
        handler: || delete(revoke_api_token),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/catalog/releases",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(releases::list),
    },
    // The body is the firmware file (application/octet-stream) and the
    // options are the query: see `http::releases`.
    Route {
        method: Method::Post,
        path: "/api/v1/tenants/{tenant}/catalog/releases",
        access: Access::CatalogManager,
        success: 201,
        example_body: "",
        handler: || post(releases::upload),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/catalog/releases/{id}",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(releases::show),
    },
    Route {
        method: Method::Delete,
        path: "/api/v1/tenants/{tenant}/catalog/releases/{id}",
        access: Access::CatalogManager,
        success: 204,
        example_body: "",
        handler: || delete(releases::remove),
    },
    Route {
        method: Method::Post,
        path: "/api/v1/tenants/{tenant}/windows/preview",
        access: Access::Read,
        success: 200,
        example_body: r#"{"cron":"30 2 * * *","duration_minutes":90,"tz":"Europe/Berlin","from":"2026-03-28T00:00:00Z","count":2}"#,
        handler: || post(super::windows::preview),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/agents",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(super::agents::list_agents),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/events",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(super::events::list_events),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/update-history",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(super::events::update_history),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/groups",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(fleet::list_groups),
    },
    Route {
        method: Method::Post,
        path: "/api/v1/tenants/{tenant}/groups",
        access: Access::Write,
        success: 201,
        example_body: r#"{"name":"Example group","membership":{"kind":"manual","members":["ann"]}}"#,
        handler: || post(fleet::create_group),
    },
    Route {
        method: Method::Post,
        path: "/api/v1/tenants/{tenant}/groups/{id}/members",
        access: Access::Write,
        success: 200,
        example_body: r#"{"add":["ann","kiosk@ws-17"],"remove":["bob"]}"#,
        handler: || post(fleet::edit_members),
    },
    Route {
        method: Method::Put,
        path: "/api/v1/tenants/{tenant}/groups/{id}",
        access: Access::Write,
        success: 200,
        example_body: r#"{"name":"Renamed group","poll_interval_secs":3600,"membership":{"kind":"ldap","filter":"(uid=$user$)"}}"#,
        handler: || put(fleet::update_group),
    },
    Route {
        method: Method::Delete,
        path: "/api/v1/tenants/{tenant}/groups/{id}",
        access: Access::Write,
        success: 204,
        example_body: "",
        handler: || delete(fleet::delete_group),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/settings",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(fleet::get_settings),
    },
    Route {
        method: Method::Put,
        path: "/api/v1/tenants/{tenant}/settings",
        access: Access::Write,
        success: 200,
        example_body: r#"{"shared_accounts":["kiosk"],"excluded_accounts":["svc-backup"],"all_users_poll_interval_secs":21600}"#,
        handler: || put(fleet::put_settings),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/policies/firmware",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(fleet::list_firmware),
    },
    Route {
        method: Method::Post,
        path: "/api/v1/tenants/{tenant}/policies/firmware",
        access: Access::Write,
        success: 201,
        example_body: r#"{"name":"Example policy","model":"047F:C056","version":"latest","enabled":false}"#,
        handler: || post(fleet::create_firmware),
    },
    Route {
        method: Method::Put,
        path: "/api/v1/tenants/{tenant}/policies/firmware/{id}",
        access: Access::Write,
        success: 200,
        example_body: r#"{"name":"Edited policy","model":"047F:C056","version":"1.0","deployment":"persistent","max_deferrals":3,"enabled":false}"#,
        handler: || put(fleet::update_firmware),
    },
    Route {
        method: Method::Post,
        path: "/api/v1/tenants/{tenant}/policies/firmware/{id}/copy",
        access: Access::Write,
        success: 201,
        example_body: r#"{"name":"Copied policy"}"#,
        handler: || post(fleet::copy_firmware),
    },
    Route {
        method: Method::Delete,
        path: "/api/v1/tenants/{tenant}/policies/firmware/{id}",
        access: Access::Write,
        success: 204,
        example_body: "",
        handler: || delete(fleet::delete_firmware),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/policies/software",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(fleet::list_software),
    },
    Route {
        method: Method::Post,
        path: "/api/v1/tenants/{tenant}/policies/software",
        access: Access::Write,
        success: 201,
        example_body: r#"{"name":"Agent rollout","platform":"windows","version":"latest","enabled":false}"#,
        handler: || post(fleet::create_software),
    },
    Route {
        method: Method::Put,
        path: "/api/v1/tenants/{tenant}/policies/software/{id}",
        access: Access::Write,
        success: 200,
        example_body: r#"{"name":"Agent pinned","platform":"windows","version":"1.2.0","enabled":false}"#,
        handler: || put(fleet::update_software),
    },
    Route {
        method: Method::Delete,
        path: "/api/v1/tenants/{tenant}/policies/software/{id}",
        access: Access::Write,
        success: 204,
        example_body: "",
        handler: || delete(fleet::delete_software),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/devices",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(fleet::list_devices),
    },
    Route {
        method: Method::Delete,
        path: "/api/v1/tenants/{tenant}/devices/{id}",
        access: Access::Write,
        success: 204,
        example_body: "",
        handler: || delete(fleet::delete_device),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/hosts",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(fleet::list_hosts),
    },
    Route {
        method: Method::Delete,
        path: "/api/v1/tenants/{tenant}/hosts/{id}",
        access: Access::Write,
        success: 204,
        example_body: "",
        handler: || delete(fleet::delete_host),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/users",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(fleet::list_users),
    },
    Route {
        method: Method::Delete,
        path: "/api/v1/tenants/{tenant}/users/{id}",
        access: Access::Write,
        success: 204,
        example_body: "",
        handler: || delete(fleet::delete_user),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/reports/inventory",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(super::reports::inventory),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/reports/versions",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(super::reports::versions),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/reports/compliance",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(super::reports::compliance),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/reports/distribution",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(super::reports::distribution),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/reports/history",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(super::reports::update_history),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/rollouts",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(rollouts::list_rollouts),
    },
    Route {
        method: Method::Post,
        path: "/api/v1/tenants/{tenant}/rollouts",
        access: Access::Write,
        success: 201,
        example_body: ROLLOUT_EXAMPLE,
        handler: || post(rollouts::create_rollout),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/rollouts/{id}",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(rollouts::show_rollout),
    },
    Route {
        method: Method::Get,
        path: "/api/v1/tenants/{tenant}/rollouts/{id}/status",
        access: Access::Read,
        success: 200,
        example_body: "",
        handler: || get(rollouts::rollout_status),
    },
    Route {
        method: Method::Post,
        path: "/api/v1/tenants/{tenant}/rollouts/{id}/pause",
        access: Access::Write,
        success: 200,
        example_body: "",
        handler: || post(rollouts::pause_rollout),
    },
    Route {
        method: Method::Post,
        path: "/api/v1/tenants/{tenant}/rollouts/{id}/resume",
        access: Access::Write,
        success: 200,
        example_body: "",
        handler: || post(rollouts::resume_rollout),
    },
    Route {
        method: Method::Post,
        path: "/api/v1/tenants/{tenant}/rollouts/{id}/approve",
        access: Access::Write,
        success: 200,
        example_body: "",
        handler: || post(rollouts::approve_rollout),
    },
    Route {
        method: Method::Post,
        path: "/api/v1/tenants/{tenant}/rollouts/{id}/cancel",
        access: Access::Write,
        success: 200,
        example_body: "",
        handler: || post(rollouts::cancel_rollout),
    },
    Route {
        method: Method::Delete,
        path: "/api/v1/tenants/{tenant}/rollouts/{id}",
        access: Access::Write,
        success: 204,
        example_body: "",
        handler: || delete(rollouts::delete_rollout),
    },
];

/// Tenant routes whose bodies may exceed the default limit: (path, bytes).
const BODY_LIMITS: &[(&str, usize)] = &[(
    "/api/v1/tenants/{tenant}/groups/{id}/members",
    fleet::MAX_MEMBER_EDIT_BYTES,
)];

/// Tenant routes that read their body as a stream and bound it themselves
/// (size and the wait for each piece): the server's default body limit and
/// response deadline do not apply to them.
const STREAMED_BODIES: &[(Method, &str)] = &[
    (Method::Post, "/api/v1/tenants/{tenant}/catalog/releases"),
    (Method::Post, "/console/catalog/upload"),
];

/// Whether the route matched as `path` streams its body for `method`.
pub(crate) fn streams_body(method: &axum::http::Method, path: &str) -> bool {
    STREAMED_BODIES
        .iter()
        .any(|(m, p)| *p == path && m.as_str() == method.as_str())
}

impl Route {
    /// The route's method router (without the auth layer), with its body
    /// limit when it has its own.
    pub(crate) fn method_router(&self) -> MethodRouter<Shared> {
        let r = (self.handler)();
        match self.body_limit() {
            Some(limit) => r.layer(DefaultBodyLimit::max(limit)),
            None => r,
        }
    }

    /// Its own body limit, if it has one (else the server's default).
    pub(crate) fn body_limit(&self) -> Option<usize> {
        BODY_LIMITS
            .iter()
            .find(|(path, _)| *path == self.path)
            .map(|(_, limit)| *limit)
    }
}

fn token_view(t: &ApiToken) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "scope": t.scope,
        "created_at": t.created_at,
        "created_by": t.created_by,
        "revoked_at": t.revoked_at,
    })
}

/// The catalog's current root (what agents pin at enrollment): version and
/// the SHA-256 of `root.json` as served under `/repo/metadata/`.
pub(crate) fn catalog_root(state: &AppState) -> Result<Value, ApiError> {
    let path = state.metadata_dir.join("root.json");
    let bytes = std::fs::read(&path).map_err(|e| ApiError::new(internal(&e)))?;
    let root: Value = serde_json::from_slice(&bytes).map_err(|e| ApiError::new(internal(&e)))?;
    Ok(json!({
        "version": root["signed"]["version"],
        "sha256": Sha256Digest::of(&bytes).to_string(),
        "url": format!("/repo/metadata/{}.root.json", root["signed"]["version"]),
    }))
}

async fn tenant_info(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let t = state
            .accounts
            .records()
            .tenant(&p.tenant)
            .map_err(|e| ApiError::new(internal(&e)))?
            .ok_or_else(|| ApiError::new(super::errors::not_found()))?;
        Ok(Json(json!({
            "id": t.id,
            "name": t.name,
            "created_at": t.created_at,
            "enrollment_token": {
                "active": t.enrollment_token.is_some(),
                "issued_at": t.enrollment_token.as_ref().map(|e| e.issued_at),
            },
            "assignment_key_id": t.assignment_key_id,
            "catalog_root": catalog_root(&state)?,
        })))
    })
    .await
}

async fn rotate_enrollment_token(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let token = state.accounts.rotate_enrollment_token(&p.tenant)?;
        Ok(Json(json!({ "token": token })))
    })
    .await
}

async fn list_api_tokens(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let tokens = state
            .accounts
            .records()
            .api_tokens(&p.tenant)
            .map_err(|e| ApiError::new(internal(&e)))?;
        Ok(Json(Value::Array(tokens.iter().map(token_view).collect())))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewApiToken {
    name: String,
    scope: ApiTokenScope,
}

async fn create_api_token(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    JsonBody(body): JsonBody<NewApiToken>,
) -> Result<Response, ApiError> {
    let PrincipalKind::Admin { admin_id, .. } = p.kind.clone() else {
        // The route is FullAdmin: the auth layer lets only admins through.
        return Err(ApiError::new(internal(&"api token without admin")));
    };
    blocking(move || {
        let (record, token) = state
            .accounts
            .create_api_token(&p.tenant, &body.name, body.scope, &admin_id)?;
        let mut view = token_view(&record);
        view["token"] = Value::String(token);
        Ok((StatusCode::CREATED, Json(view)).into_response())
    })
    .await
}

async fn revoke_api_token(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): UrlPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        state.accounts.revoke_api_token(&p.tenant, &id)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}
