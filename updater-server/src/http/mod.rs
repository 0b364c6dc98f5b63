//! The HTTP service: health, and the signed repository (metadata and
//! firmware blobs) that agents and web mirrors read.

mod download;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use catalog::blob::BlobStore;
use catalog::digest::Sha256Digest;
use catalog::Catalog;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    metadata_dir: PathBuf,
    blobs: BlobStore,
}

impl AppState {
    /// State serving `catalog`'s repository.
    pub fn new(catalog: &Catalog) -> Self {
        Self {
            metadata_dir: catalog.metadata_dir(),
            blobs: catalog.blobs().clone(),
        }
    }
}

/// A JSON error body with a stable machine-readable `code`.
pub(crate) fn error(status: StatusCode, code: &'static str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "code": code, "message": message })),
    )
        .into_response()
}

/// The service's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/repo/metadata/{file}", get(metadata))
        .route("/repo/targets/{*path}", get(target))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .with_state(Arc::new(state))
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

/// Serves until Ctrl-C / SIGTERM, re-signing the timestamp before it expires.
pub async fn serve(catalog: Catalog, listen: SocketAddr) -> anyhow::Result<()> {
    let state = AppState::new(&catalog);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    println!("updater-server listening on http://{addr}");
    let refresher = tokio::spawn(refresh_timestamps(catalog));
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    refresher.abort();
    Ok(())
}

async fn refresh_timestamps(catalog: Catalog) {
    let catalog = Arc::new(std::sync::Mutex::new(catalog));
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        let c = Arc::clone(&catalog);
        let result = tokio::task::spawn_blocking(move || {
            let mut c = c.lock().unwrap_or_else(|p| p.into_inner());
            c.refresh_timestamp(chrono::Utc::now())
        })
        .await;
        match result {
            Ok(Ok(true)) => tracing::info!("re-signed timestamp"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "timestamp refresh failed"),
            Err(e) => tracing::error!(error = %e, "timestamp refresh task failed"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
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
