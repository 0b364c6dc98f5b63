//! `POST /api/v1/agents/{agent}/checkin`: the agent reports its users,
//! devices and update states, and gets its signed assignments back. Behind
//! the agent layer (`authz::authorize_agent`), which hands over the
//! authenticated [`Agent`].

use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use catalog::checkin::CheckIn;

use super::download::none_match;
use super::errors::{blocking, ApiError, JsonBody};
use super::fleet::fleet;
use super::Shared;
use crate::store::Agent;

/// Largest check-in body accepted (256 devices fit comfortably).
pub(crate) const MAX_CHECKIN_BYTES: usize = 256 * 1024;

/// Answers 200 with the `CheckInResponse` and an `ETag`, or 304 when the
/// agent's `If-None-Match` names the current answer. The agent layer has
/// already checked the credential against the path's agent.
pub(crate) async fn check_in(
    State(s): State<Shared>,
    Extension(agent): Extension<Agent>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CheckIn>,
) -> Result<Response, ApiError> {
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
