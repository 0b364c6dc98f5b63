//! JSON errors with stable codes, and the JSON body extractor that uses them.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;

use crate::auth::AccountError;

/// A JSON error body with a stable machine-readable `code`.
pub(crate) fn error(status: StatusCode, code: &'static str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "code": code, "message": message })),
    )
        .into_response()
}

/// 401 with the `WWW-Authenticate` challenge.
pub(crate) fn unauthorized(message: &str) -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

/// 404 that says nothing about whether the tenant exists.
pub(crate) fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such tenant or resource",
    )
}

/// 413 with `Connection: close`: the rest of the body is left unread, so
/// the connection cannot carry another request; saying so keeps clients from
/// sending their next request into a socket about to close.
pub(crate) fn payload_too_large(message: &str) -> Response {
    let mut r = error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message);
    r.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    r
}

/// An API failure; converts into the JSON error response.
#[derive(Debug)]
pub(crate) struct ApiError(Box<Response>);

impl ApiError {
    /// Wraps an error response.
    pub(crate) fn new(r: Response) -> Self {
        Self(Box::new(r))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        ApiError::new(match &e {
            AccountError::InvalidCredentials => unauthorized("invalid credentials"),
            AccountError::UnknownTenant(_) | AccountError::NotFound => not_found(),
            AccountError::EmailTaken(_) => {
                error(StatusCode::CONFLICT, "email_taken", &e.to_string())
            }
            AccountError::PrimaryExists => {
                error(StatusCode::CONFLICT, "primary_exists", &e.to_string())
            }
            AccountError::Invalid { .. } => {
                error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string())
            }
            AccountError::TooManyAttempts { retry_after_secs } => {
                let mut r = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    &e.to_string(),
                );
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    header::HeaderValue::from(*retry_after_secs),
                );
                r
            }
            AccountError::Busy { retry_after_secs } => {
                let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "busy", &e.to_string());
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    header::HeaderValue::from(*retry_after_secs),
                );
                r
            }
            AccountError::NotAnAdmin => error(StatusCode::FORBIDDEN, "forbidden", &e.to_string()),
            AccountError::Store(_)
            | AccountError::Key(_)
            | AccountError::Endorsement(_)
            | AccountError::KeyDir { .. }
            | AccountError::Password(_) => internal(&e),
        })
    }
}

/// Logs `e` and answers 500 without details.
pub(crate) fn internal(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "request failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
}

/// Runs blocking store work off the async threads.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(internal(&e)))?
}

/// A JSON request body, deserialized here rather than by `axum::Json` so
/// that every refusal is a documented JSON error whose message names the
/// field and the problem ("name: missing field `model`"), without the
/// parser's own prefix.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json_type);
        if !is_json {
            return Err(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a JSON body (Content-Type: application/json)",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            let status = r.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "payload_too_large"
            } else {
                "invalid_request"
            };
            error(status, code, &r.body_text())
        })?;
        parse_json(&bytes)
            .map(JsonBody)
            .map_err(IntoResponse::into_response)
    }
}

/// Deserializes a JSON body: 400 when it is not JSON, 422 (with the path
/// to the bad field) when it is JSON of the wrong shape.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let not_json = |e: serde_json::Error| {
        ApiError::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("the body is not valid JSON: {e}"),
        ))
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    if value.is_ok() {
        de.end().map_err(not_json)?;
    }
    value.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if !inner.is_data() {
            return not_json(inner);
        }
        let what = without_position(&inner);
        let message = if path == "." {
            format!("invalid request: {what}")
        } else {
            format!("{path}: {what}")
        };
        ApiError::new(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            &message,
        ))
    })
}

/// A JSON data error without serde_json's " at line L column C": the
/// path in front says where, and bodies are rarely written by hand.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&position).unwrap_or(&text).to_owned()
}

/// `application/json` or `application/<anything>+json`, any parameters.
pub(crate) fn is_json_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}
