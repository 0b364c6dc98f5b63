//! Agent enrollment (`POST /api/v1/enroll`) and the admin view of agents.

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use catalog::protocol::{AssignmentKey, CatalogRootRef, EnrollRequest, EnrollResponse};
use serde_json::{json, Value};

use super::api::catalog_root;
use super::errors::{blocking, error, internal, ApiError, JsonBody};
use super::Shared;
use crate::auth::{AccountError, Enrollment, Principal};
use crate::store::Agent;

fn agent_view(a: &Agent) -> Value {
    json!({
        "id": a.id,
        "system_id": a.system_id,
        "hostname": a.hostname,
        "os": a.os,
        "enrolled_at": a.enrolled_at,
        "credential_issued_at": a.credential_issued_at,
        "suspected_clone": a.clone_of.is_some(),
        "clone_of": a.clone_of,
    })
}

/// `POST /api/v1/enroll`: the enrollment token buys a per-agent credential;
/// the answer also carries the catalog root the agent pins and the tenant's
/// assignment-signing key. Both bodies are the shared wire types
/// ([`EnrollRequest`], [`EnrollResponse`]) the agent uses.
pub(crate) async fn enroll(
    State(state): State<Shared>,
    JsonBody(body): JsonBody<EnrollRequest>,
) -> Response {
    let result = blocking(move || {
        let req = Enrollment {
            tenant: body.tenant,
            token: body.token,
            system_id: body.system_id,
            machine_fingerprint: body.machine_fingerprint,
            hostname: body.hostname,
            os: body.os,
        };
        let enrolled = state.accounts.enroll(&req).map_err(|e| match e {
            AccountError::InvalidCredentials => ApiError::new(error(
                StatusCode::UNAUTHORIZED,
                "invalid_enrollment_token",
                "wrong tenant or enrollment token",
            )),
            other => other.into(),
        })?;
        let key_path = state.accounts.assignment_key_path(&req.tenant);
        let key = catalog::tuf::Ed25519Signer::load(&key_path)
            .map_err(|e| ApiError::new(internal(&e)))?;
        let root_path = state.metadata_dir.join("root.json");
        let root: Value = std::fs::read(&root_path)
            .map_err(|e| ApiError::new(internal(&e)))
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| ApiError::new(internal(&e))))?;
        let catalog_root: CatalogRootRef = serde_json::from_value(catalog_root(&state)?)
            .map_err(|e| ApiError::new(internal(&e)))?;
        let status = if enrolled.reenrolled {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        let a = enrolled.agent;
        let view = EnrollResponse {
            id: a.id,
            system_id: a.system_id,
            hostname: a.hostname,
            os: a.os,
            enrolled_at: a.enrolled_at,
            credential_issued_at: a.credential_issued_at,
            suspected_clone: a.clone_of.is_some(),
            clone_of: a.clone_of,
            credential: enrolled.credential,
            reenrolled: enrolled.reenrolled,
            tenant: a.tenant,
            assignment_key: AssignmentKey {
                keyid: key.key_id().to_owned(),
                key: key.public_key().clone(),
            },
            catalog_root,
            root,
        };
        Ok((status, Json(view)).into_response())
    })
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /api/v1/tenants/{tenant}/agents`.
pub(crate) async fn list_agents(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let agents = state
            .accounts
            .records()
            .agents(&p.tenant)
            .map_err(|e| ApiError::new(internal(&e)))?;
        Ok(Json(Value::Array(agents.iter().map(agent_view).collect())))
    })
    .await
}
