//! The HTTP service: health, metrics, the signed repository (metadata and
//! firmware blobs) that agents and web mirrors read, and the tenant API.

mod admins;
mod agents;
pub mod api;
mod authz;
mod checkin;
mod checkin_cache;
pub mod console;
mod download;
mod errors;
mod events;
mod fleet;
mod mapped_files;
mod metrics;
pub mod openapi;
mod read_buffers;
mod releases;
mod reports;
mod rollouts;
pub mod routes;
mod serve;
mod windows;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Path as UrlPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use catalog::blob::BlobStore;
use catalog::digest::Sha256Digest;
use catalog::Catalog;

pub(crate) use self::errors::error;
pub use self::releases::{CatalogUploads, DEFAULT_MAX_UPLOAD_MIB};
pub use self::serve::{serve, ServeOptions, TlsFiles};
pub use self::windows::local_time;
use crate::auth::Accounts;

/// What the handlers share.
#[derive(Debug)]
pub struct AppState {
    metadata_dir: PathBuf,
    catalog_dir: PathBuf,
    keys_dir: PathBuf,
    blobs: BlobStore,
    accounts: Accounts,
    metrics: metrics::Metrics,
    checkins: checkin_cache::CheckInCache,
    agent_credentials: checkin_cache::AgentCredentials,
    uploads: CatalogUploads,
    /// The console's session cookie carries `Secure` (the server speaks TLS).
    console_secure_cookies: bool,
    /// The console's fleet views, shared by its pages.
    console_views: console::ViewCache,
}

pub(crate) type Shared = Arc<AppState>;

impl AppState {
    /// State serving `catalog`'s repository and the tenants of `accounts`;
    /// `keys_dir` holds the catalog's signing keys.
    pub fn new(catalog: &Catalog, keys_dir: PathBuf, accounts: Accounts) -> Self {
        Self {
            metadata_dir: catalog.metadata_dir(),
            catalog_dir: catalog.root().to_owned(),
            keys_dir,
            blobs: catalog.blobs().clone(),
            accounts,
            metrics: metrics::Metrics::new(),
            checkins: checkin_cache::CheckInCache::default(),
            agent_credentials: checkin_cache::AgentCredentials::default(),
            uploads: CatalogUploads::default(),
            console_secure_cookies: false,
            console_views: console::ViewCache::default(),
        }
    }

    /// Marks the console's session cookie `Secure` (set when serving TLS).
    pub fn with_secure_cookies(mut self, secure: bool) -> Self {
        self.console_secure_cookies = secure;
        self
    }

    /// Who may change the catalog over the API, and how large an upload
    /// may be (default: nobody; [`CatalogUploads::default`]).
    pub fn with_catalog_uploads(mut self, uploads: CatalogUploads) -> Self {
        self.uploads = uploads;
        self
    }
}

/// Request limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted request body.
    pub body_bytes: usize,
    /// Longest time to produce a response's head (a download's body may
    /// stream for longer).
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: 64 * 1024,
            timeout: Duration::from_secs(30),
        }
    }
}

/// The service's routes.
pub fn router(state: AppState, limits: Limits) -> Router {
    let state = Arc::new(state);
    // Only the tables are mounted: the API's two (the OpenAPI test relies
    // on it) and the console's pages.
    let mut r = Router::new();
    for e in routes::ROUTES {
        r = r.route(e.path, e.method_router(&state));
    }
    for route in api::TENANT_ROUTES {
        r = r.route(
            route.path,
            route.method_router().route_layer(from_fn_with_state(
                (Arc::clone(&state), route.access),
                authz::authorize,
            )),
        );
    }
    let r = console::mount(r, &state);
    r.fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not answer that method",
            )
        })
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(from_fn_with_state(limits, hygiene))
        .layer(from_fn_with_state(Arc::clone(&state), metrics::track))
        .with_state(state)
}

/// Refuses declared bodies over the limit and bounds the time to answer.
/// Routes that stream their body ([`api::streams_body`]) bound it themselves.
async fn hygiene(State(limits): State<Limits>, req: Request, next: Next) -> Response {
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    if matched.is_some_and(|p| api::streams_body(req.method(), p)) {
        return next.run(req).await;
    }
    let limit = matched
        .and_then(routes::body_limit)
        .unwrap_or(limits.body_bytes);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return errors::payload_too_large(&format!("request bodies are limited to {limit} bytes"));
    }
    match tokio::time::timeout(limits.timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => error(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "the request took too long",
        ),
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Metadata file names are `[A-Za-z0-9._-]+.json`, never hidden files.
fn valid_metadata_name(name: &str) -> bool {
    name.ends_with(".json")
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

async fn metadata(
    State(state): State<Arc<AppState>>,
    UrlPath(file): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if !valid_metadata_name(&file) {
        return error(StatusCode::NOT_FOUND, "not_found", "no such metadata file");
    }
    let path = state.metadata_dir.join(&file);
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return error(StatusCode::NOT_FOUND, "not_found", "no such metadata file")
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "metadata read failed");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "io",
                "cannot read metadata",
            );
        }
    };
    let etag = format!("\"{}\"", Sha256Digest::of(&bytes));
    // Unversioned names (timestamp.json, root.json) change; versioned ones never do.
    let versioned = file
        .split('.')
        .next()
        .is_some_and(|v| v.parse::<u64>().is_ok());
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    if download::none_match(&headers, &etag) {
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag),
                (header::CACHE_CONTROL, cache.to_owned()),
            ],
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache.to_owned()),
        ],
        bytes,
    )
        .into_response()
}

/// `targets/<dirs>/<sha256>.<name>`: the consistent-snapshot path. The blob is
/// found by the hash prefix; clients verify length and hash themselves.
async fn target(
    State(state): State<Arc<AppState>>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let base = path.rsplit('/').next().unwrap_or("");
    let digest = base
        .split_once('.')
        .and_then(|(hash, _)| hash.parse::<Sha256Digest>().ok());
    let Some(digest) = digest else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "target paths are <dirs>/<sha256>.<name>",
        );
    };
    let etag = format!("\"{digest}\"");
    download::serve_file(
        &state.blobs.path_of(&digest),
        &etag,
        "application/octet-stream",
        "public, max-age=31536000, immutable",
        &headers,
    )
    .await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::{get, post};
    use tower::ServiceExt as _;

    use super::*;

    fn limited(timeout: Duration) -> Router {
        Router::new()
            .route("/slow", get(std::future::pending::<&'static str>))
            .route(
                "/echo",
                post(|errors::JsonBody(v): errors::JsonBody<serde_json::Value>| async move {
                    Json(v)
                }),
            )
            .layer(DefaultBodyLimit::max(1024))
            .layer(from_fn_with_state(
                Limits {
                    body_bytes: 1024,
                    timeout,
                },
                hygiene,
            ))
    }

    async fn call(app: Router, req: axum::http::Request<Body>) -> (StatusCode, serde_json::Value) {
        let r = app.oneshot(req).await.unwrap();
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn slow_handlers_time_out_with_a_json_error() {
        let req = axum::http::Request::get("/slow")
            .body(Body::empty())
            .unwrap();
        let (status, body) = call(limited(Duration::from_millis(20)), req).await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(body["code"], "timeout");
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused_declared_or_not() {
        let big = format!("\"{}\"", "x".repeat(2000));
        let declared = axum::http::Request::post("/echo")
            .header("content-type", "application/json")
            .header("content-length", big.len().to_string())
            .body(Body::from(big.clone()))
            .unwrap();
        let (status, body) = call(limited(Duration::from_secs(5)), declared).await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::PAYLOAD_TOO_LARGE, &"payload_too_large".into())
        );
        // Streamed without a length: the extractor stops at the limit.
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            big.as_bytes().chunks(100).map(|c| Ok(c.to_vec())).collect();
        let stream = Body::from_stream(futures_util::stream::iter(chunks));
        let undeclared = axum::http::Request::post("/echo")
            .header("content-type", "application/json")
            .body(stream)
            .unwrap();
        let (status, body) = call(limited(Duration::from_secs(5)), undeclared).await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::PAYLOAD_TOO_LARGE, &"payload_too_large".into())
        );
        let small = axum::http::Request::post("/echo")
            .header("content-type", "application/json")
            .body(Body::from(r#"{"a":1}"#))
            .unwrap();
        let (status, body) = call(limited(Duration::from_secs(5)), small).await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, serde_json::json!({"a": 1}))
        );
    }

    /// The auth matrix walks `api::TENANT_ROUTES`; a tenant route registered
    /// anywhere else would escape it (and the auth layer).
    #[test]
    fn tenant_routes_are_only_defined_in_the_route_table() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![dir];
        let mut offenders = Vec::new();
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("http/api.rs")
                    // The OpenAPI rows, checked against the table by their own test.
                    && !path.ends_with("http/openapi/docs.rs")
                    && !path.ends_with("http/openapi/tests.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    if text.contains(concat!("\"/api/v1/", "tenants/")) {
                        offenders.push(path);
                    }
                }
            }
        }
        assert!(offenders.is_empty(), "{offenders:?}");
    }

    #[test]
    fn metadata_names() {
        for ok in [
            "timestamp.json",
            "1.root.json",
            "12.targets.json",
            "role-a.json",
        ] {
            assert!(super::valid_metadata_name(ok), "{ok}");
        }
        for bad in [
            "..json",
            ".tmp-x.json",
            "../keys.json",
            "a/b.json",
            "root.pem",
            "x%2f.json",
        ] {
            assert!(!super::valid_metadata_name(bad), "{bad}");
        }
    }
}
