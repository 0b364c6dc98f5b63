//! JSON errors with stable codes, and the JSON body extractor that uses them.

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
            AccountError::Store(_)
            | AccountError::Key(_)
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

/// `Json<T>` whose rejections are JSON errors too.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(r) => {
                let status = r.status();
                let code = match status {
                    StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                    _ => "invalid_request",
                };
                Err(error(status, code, &r.body_text()))
            }
        }
    }
}
