//! `POST /api/v1/agents/{agent}/checkin`: the agent reports its users,
//! devices and update states, and gets its signed assignments back. Behind
//! the agent layer (`authz::authorize_agent`), which hands over the
//! authenticated [`Agent`].

use axum::body::Bytes;
use axum::extract::{Extension, Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use catalog::checkin::CheckIn;

use super::authz::bearer;
use super::download::none_match;
use super::errors::{blocking, error, not_found, unauthorized, ApiError};
use super::fleet::fleet;
use super::Shared;
use crate::store::Agent;

/// Largest check-in body accepted (256 devices fit comfortably).
pub(crate) const MAX_CHECKIN_BYTES: usize = 256 * 1024;

/// The agent: handed over by the agent layer when the route has one,
/// else authenticated here (same answers: 401 for a missing, wrong or
/// replaced credential, 404 for another agent's path).
async fn agent(
    s: &Shared,
    layer: Option<Extension<Agent>>,
    path_agent: &str,
    headers: &HeaderMap,
) -> Result<Agent, ApiError> {
    let agent = match layer {
        Some(Extension(a)) => a,
        None => {
            let Some(token) = bearer(headers).map(str::to_owned) else {
                return Err(ApiError::new(unauthorized(
                    "an Authorization: Bearer agent credential is required",
                )));
            };
            let s = s.clone();
            blocking(move || Ok(s.accounts.authenticate_agent(&token)?)).await?
        }
    };
    if agent.id != path_agent {
        return Err(ApiError::new(not_found()));
    }
    Ok(agent)
}

/// Answers 200 with the `CheckInResponse` and an `ETag`, or 304 when the
/// agent's `If-None-Match` names the current answer.
pub(crate) async fn check_in(
    State(s): State<Shared>,
    UrlPath(path_agent): UrlPath<String>,
    layer: Option<Extension<Agent>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let agent = agent(&s, layer, &path_agent, &headers).await?;
    let body: CheckIn = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            &format!("check-in body: {e}"),
        ))
    })?;
    let answer = blocking(move || Ok(fleet(&s).check_in(&agent, &body)?)).await?;
    let cache = (header::CACHE_CONTROL, "no-cache".to_owned());
    if none_match(&headers, &answer.etag) {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, answer.etag), cache],
        )
            .into_response());
    }
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::ETAG, answer.etag),
            cache,
        ],
        answer.body,
    )
        .into_response())
}
