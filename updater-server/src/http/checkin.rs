//! `POST /api/v1/agents/{agent}/checkin`: the agent reports its users,
//! devices and update states, and gets its signed assignments back. Behind
//! the agent layer (`authz::authorize_agent`), which hands over the
//! authenticated [`Agent`].

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use catalog::checkin::{AccountRules, CheckIn, CheckInResponse};

use super::checkin_cache;
use super::download::none_match;
use super::errors::{blocking, error, ApiError};
use super::fleet::fleet;
use super::Shared;
use crate::fleet::{CheckInAnswer, FleetError, Settings};
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
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // The body is parsed only when the cache cannot answer: a repeat of the
    // agent's last check-in (the same bytes) gets its last answer, without
    // writes. The fast path is a hash, a lock and two `stat`s, inline: a
    // hop to the blocking pool would cost more than all of it.
    if !json_content_type(&headers) {
        return Err(ApiError::new(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Expected request with `Content-Type: application/json`",
        )));
    }
    let raw = raw.map_err(|r| rejection(r.status(), &r.body_text()))?;
    let fingerprint = checkin_cache::fingerprint(&agent, &raw);
    let generation = s.checkins.generation(&fleet(&s), &agent.tenant)?;
    let now = s.accounts.now();
    let cached = s.checkins.get(&agent, &fingerprint, generation, now);
    let answer = match cached {
        Some(answer) => answer,
        None => {
            let Json(body) = Json::<CheckIn>::from_bytes(&raw)
                .map_err(|r| rejection(r.status(), &r.body_text()))?;
            blocking(move || {
                let f = fleet(&s);
                let view = s.checkins.tenant_view(&f, &agent.tenant, generation)?;
                let answer = f.check_in_with(&agent, &body, &view)?;
                let answer = with_directory(answer, &view.settings)?;
                s.checkins
                    .put(&agent, fingerprint, generation, now, answer.clone());
                Ok(answer)
            })
            .await?
        }
    };
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

/// `application/json` or `application/*+json`, as axum's `Json` accepts.
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(v) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A body rejection as a JSON error, with the codes `JsonBody` uses.
fn rejection(status: StatusCode, message: &str) -> ApiError {
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        _ => "invalid_request",
    };
    ApiError::new(error(status, code, message))
}

/// Adds the tenant's account rules to the fleet's answer; the `ETag` covers
/// them, so an agent sees a changed rule at its next check-in even when its
/// assignments did not change. (LDAP groups are signed into the document:
/// [`crate::fleet::ldap_definitions`].)
fn with_directory(answer: CheckInAnswer, settings: &Settings) -> Result<CheckInAnswer, FleetError> {
    let bad = |e: serde_json::Error| FleetError::invalid("check-in answer", e.to_string());
    let mut response: CheckInResponse = serde_json::from_str(&answer.body).map_err(bad)?;
    response.accounts = AccountRules {
        shared: settings.shared_accounts.clone(),
        excluded: settings.excluded_accounts.clone(),
    };
    let body = serde_json::to_string(&response).map_err(bad)?;
    let etag = format!(
        "\"{}\"",
        catalog::digest::Sha256Digest::of(body.as_bytes()).to_hex()
    );
    Ok(CheckInAnswer { body, etag })
}
