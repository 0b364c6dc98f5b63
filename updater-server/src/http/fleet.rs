//! Tenant routes for groups, policies, fleet settings and the inventory
//! (mounted through [`super::api::TENANT_ROUTES`]).

use axum::body::Bytes;
use axum::extract::{Extension, Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{
    blocking, error, internal, is_json_type, not_found, parse_json, ApiError, JsonBody,
};
use super::Shared;
use crate::auth::Principal;
use crate::fleet::{
    inventory, members_from_csv, FirmwarePolicy, FirmwarePolicyInput, Fleet, FleetError,
    GroupInput, Settings, SoftwarePolicy, SoftwarePolicyInput, ALL_USERS,
};

pub(crate) fn fleet(state: &Shared) -> Fleet {
    Fleet::new(
        state.accounts.clone(),
        state.catalog_dir.clone(),
        state.keys_dir.clone(),
    )
}

impl From<FleetError> for ApiError {
    fn from(e: FleetError) -> Self {
        ApiError::new(match &e {
            FleetError::NotFound => not_found(),
            FleetError::Invalid { .. } => error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                &e.to_string(),
            ),
            FleetError::Capability(_) => error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unsupported_deployment",
                &e.to_string(),
            ),
            FleetError::Conflict(_) => error(StatusCode::CONFLICT, "conflict", &e.to_string()),
            FleetError::Store(_) | FleetError::Catalog(_) | FleetError::Key(_) => internal(&e),
        })
    }
}

fn view<T: serde::Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::new(internal(&e)))
}

/// A policy as the API shows it: its fields flat, with id and timestamps.
fn policy_view<S: serde::Serialize>(
    id: &str,
    spec: &S,
    stamps: &crate::fleet::Stamps,
) -> Result<Value, ApiError> {
    let mut v = view(spec)?;
    v["id"] = json!(id);
    v["created_at"] = json!(stamps.created_at);
    v["updated_at"] = json!(stamps.updated_at);
    Ok(v)
}

fn fw_view(p: &FirmwarePolicy) -> Result<Value, ApiError> {
    policy_view(&p.id, &p.spec, &p.stamps)
}

fn sw_view(p: &SoftwarePolicy) -> Result<Value, ApiError> {
    policy_view(&p.id, &p.spec, &p.stamps)
}

type Id = UrlPath<(String, String)>;

fn created(v: Value) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

/// `GET …/groups`: All Users first, then custom groups by priority.
pub(crate) async fn list_groups(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let f = fleet(&s);
        let settings = f.settings(&p.tenant)?;
        let mut out = vec![json!({
            "id": ALL_USERS, "name": "All Users", "priority": null,
            "poll_interval_secs": settings.all_users_poll_interval_secs,
            "membership": {"kind": "all"},
        })];
        for g in f.groups(&p.tenant)? {
            out.push(view(&g)?);
        }
        Ok(Json(Value::Array(out)))
    })
    .await
}

/// `POST …/groups`.
pub(crate) async fn create_group(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    JsonBody(body): JsonBody<GroupInput>,
) -> Result<Response, ApiError> {
    blocking(move || Ok(created(view(&fleet(&s).create_group(&p.tenant, &body)?)?))).await
}

/// `PUT …/groups/{id}`.
pub(crate) async fn update_group(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): Id,
    JsonBody(body): JsonBody<GroupInput>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || Ok(Json(view(&fleet(&s).update_group(&p.tenant, &id, &body)?)?))).await
}

/// The most a member edit may send: a CSV of [`crate::fleet::MAX_MEMBERS`]
/// names of up to 300 bytes would be 30 MB; real exports (account names
/// of 10 to 40 bytes) fit a few MiB.
pub(crate) const MAX_MEMBER_EDIT_BYTES: usize = 8 << 20;

/// What `POST …/groups/{id}/members` adds and removes (JSON).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MemberEdit {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

/// `POST …/groups/{id}/members`: `{"add": […], "remove": […]}`, or a CSV
/// file (`Content-Type: text/csv`) whose first column is added.
pub(crate) async fn edit_members(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): Id,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let edit = if is_csv_type(content_type) {
        MemberEdit {
            add: members_from_csv(&body)?,
            remove: Vec::new(),
        }
    } else if is_json_type(content_type) {
        parse_json(&body)?
    } else {
        return Err(ApiError::new(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected JSON ({\"add\": [...], \"remove\": [...]}) or a CSV file (Content-Type: text/csv)",
        )));
    };
    blocking(move || {
        let g = fleet(&s).edit_members(&p.tenant, &id, &edit.add, &edit.remove)?;
        Ok(Json(view(&g)?))
    })
    .await
}

fn is_csv_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("text/csv")
}

/// `DELETE …/groups/{id}`.
pub(crate) async fn delete_group(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): Id,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        fleet(&s).delete_group(&p.tenant, &id)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `GET …/settings`.
pub(crate) async fn get_settings(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || Ok(Json(view(&fleet(&s).settings(&p.tenant)?)?))).await
}

/// `PUT …/settings`.
pub(crate) async fn put_settings(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    JsonBody(body): JsonBody<Settings>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        fleet(&s).set_settings(&p.tenant, &body)?;
        Ok(Json(view(&body)?))
    })
    .await
}

/// `GET …/policies/firmware`.
pub(crate) async fn list_firmware(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let all = fleet(&s).firmware_policies(&p.tenant)?;
        Ok(Json(Value::Array(
            all.iter().map(fw_view).collect::<Result<_, _>>()?,
        )))
    })
    .await
}

/// `POST …/policies/firmware`.
pub(crate) async fn create_firmware(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    JsonBody(body): JsonBody<FirmwarePolicyInput>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let pol = fleet(&s).put_firmware_policy(&p.tenant, None, body)?;
        Ok(created(fw_view(&pol)?))
    })
    .await
}

/// `PUT …/policies/firmware/{id}`.
pub(crate) async fn update_firmware(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): Id,
    JsonBody(body): JsonBody<FirmwarePolicyInput>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let pol = fleet(&s).put_firmware_policy(&p.tenant, Some(&id), body)?;
        Ok(Json(fw_view(&pol)?))
    })
    .await
}

/// Body of a copy: a new name and group, both optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CopyBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    group: Option<String>,
}

/// `POST …/policies/firmware/{id}/copy`: a disabled copy.
pub(crate) async fn copy_firmware(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): Id,
    JsonBody(body): JsonBody<CopyBody>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let pol = fleet(&s).copy_firmware_policy(&p.tenant, &id, body.name, body.group)?;
        Ok(created(fw_view(&pol)?))
    })
    .await
}

/// `DELETE …/policies/firmware/{id}`.
pub(crate) async fn delete_firmware(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): Id,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        fleet(&s).delete_firmware_policy(&p.tenant, &id)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `GET …/policies/software`.
pub(crate) async fn list_software(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let all = fleet(&s).software_policies(&p.tenant)?;
        Ok(Json(Value::Array(
            all.iter().map(sw_view).collect::<Result<_, _>>()?,
        )))
    })
    .await
}

/// `POST …/policies/software`.
pub(crate) async fn create_software(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    JsonBody(body): JsonBody<SoftwarePolicyInput>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let pol = fleet(&s).put_software_policy(&p.tenant, None, body)?;
        Ok(created(sw_view(&pol)?))
    })
    .await
}

/// `PUT …/policies/software/{id}`.
pub(crate) async fn update_software(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): Id,
    JsonBody(body): JsonBody<SoftwarePolicyInput>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let pol = fleet(&s).put_software_policy(&p.tenant, Some(&id), body)?;
        Ok(Json(sw_view(&pol)?))
    })
    .await
}

/// `DELETE …/policies/software/{id}`.
pub(crate) async fn delete_software(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): Id,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        fleet(&s).delete_software_policy(&p.tenant, &id)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `GET …/users`.
pub(crate) async fn list_users(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        Ok(Json(view(&inventory::users(
            s.accounts.store(),
            &p.tenant,
        )?)?))
    })
    .await
}

/// `GET …/hosts`.
pub(crate) async fn list_hosts(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        Ok(Json(view(&inventory::hosts(
            s.accounts.store(),
            &p.tenant,
        )?)?))
    })
    .await
}

/// `GET …/devices`.
pub(crate) async fn list_devices(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        Ok(Json(view(&inventory::devices(
            s.accounts.store(),
            &p.tenant,
        )?)?))
    })
    .await
}

/// `DELETE …/users/{id}`.
pub(crate) async fn delete_user(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): Id,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        inventory::delete_user(s.accounts.store(), &p.tenant, &id, s.accounts.now())?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `DELETE …/hosts/{id}`.
pub(crate) async fn delete_host(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): Id,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        inventory::delete_host(s.accounts.store(), &p.tenant, &id)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `DELETE …/devices/{id}`.
pub(crate) async fn delete_device(
    State(s): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): Id,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        inventory::delete_device(s.accounts.store(), &p.tenant, &id, s.accounts.now())?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}
