//! The firmware catalog over the tenant API: list, upload, show and remove
//! releases.
//!
//! Every tenant of a server shares one catalog, so changing it
//! ([`Access::CatalogManager`](super::api::Access::CatalogManager)) takes
//! full credentials of a tenant the server operator named in
//! `serve --catalog-managers`.
//!
//! An upload is the firmware file as the raw body and the flags of
//! `catalog import` as the query ([`ImportFlags::from_query`], the same
//! translation into import options the CLI uses). The body is written chunk
//! by chunk to a temp file in the blob store's in-flight area (`blobs/tmp/`,
//! on the blobs' filesystem), so memory does not grow with the file; bytes
//! are counted as they arrive and reading stops once they pass
//! `serve --max-upload-mib`. Then [`Catalog::import`] makes every check the
//! CLI makes, all of them before anything is stored.
//!
//! A release's `id` is its target name (`vendor/model/version/file`, which
//! holds `/`) in unpadded base64url: one path segment whatever the name,
//! with no `%2F` for a proxy to decode on the way.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use catalog::import::{detect_format, ImportError};
use catalog::package::{FirmwareRelease, SourceFormat};
use catalog::tuf::TufError;
use catalog::{Catalog, CatalogError};
use futures_util::StreamExt as _;
use serde_json::Value;
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt as _;

use super::errors::{blocking, error, internal, payload_too_large, ApiError};
use super::{AppState, Shared};
use crate::auth::Principal;
use crate::fleet::{FirmwarePolicy, VersionSpec};
use crate::import_flags::ImportFlags;

/// The 403 of a tenant that is not a catalog manager.
pub(crate) const NOT_A_CATALOG_MANAGER: &str = "this tenant may not change the firmware catalog, which every tenant of the server shares; the server operator grants that with `updater-server serve --catalog-managers <tenant id>`";

/// The default of `serve --max-upload-mib`.
pub const DEFAULT_MAX_UPLOAD_MIB: u32 = 512;

/// Longest release id accepted (the longest target name is under 460
/// characters, about 610 in base64).
const MAX_ID_LEN: usize = 1024;

/// What an upload's body is written through: one buffer per upload.
const WRITE_BUFFER: usize = 1 << 20;

/// Who may change the catalog over the API, and how large an upload may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogUploads {
    /// Tenants whose full admins and full-scope API tokens may upload and
    /// remove releases (`serve --catalog-managers`).
    pub managers: BTreeSet<String>,
    /// The largest upload, in bytes (`serve --max-upload-mib`).
    pub max_bytes: u64,
    /// The longest wait for the next piece of an upload's body.
    pub idle_timeout: Duration,
}

impl Default for CatalogUploads {
    /// No catalog managers; 512 MiB; 30 seconds.
    fn default() -> Self {
        Self {
            managers: BTreeSet::new(),
            max_bytes: u64::from(DEFAULT_MAX_UPLOAD_MIB) << 20,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// A release's API id: its target name in unpadded base64url.
pub(crate) fn release_id(target_name: &str) -> String {
    URL_SAFE_NO_PAD.encode(target_name)
}

/// The target name an id names; `None` for anything that is not exactly
/// the canonical id of some name.
pub(crate) fn target_of(id: &str) -> Option<String> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return None;
    }
    let name = String::from_utf8(URL_SAFE_NO_PAD.decode(id).ok()?).ok()?;
    (release_id(&name) == id).then_some(name)
}

/// A release as the API shows it: the catalog's record and its `id`.
fn view(r: &FirmwareRelease) -> Result<Value, ApiError> {
    let mut v = serde_json::to_value(r).map_err(|e| ApiError::new(internal(&e)))?;
    v["id"] = Value::String(release_id(&r.target_name));
    Ok(v)
}

fn open(state: &AppState) -> Result<Catalog, ApiError> {
    // Opened per request: the CLI may have changed the catalog since.
    Catalog::open(&state.catalog_dir, &state.keys_dir).map_err(|e| ApiError::new(internal(&e)))
}

/// 409 when this server cannot sign releases: its targets key is offline,
/// so releases enter through the signing host and `catalog publish`.
fn signed_offline() -> ApiError {
    ApiError::new(error(
        StatusCode::CONFLICT,
        "signed_offline",
        "this server does not hold the catalog's targets key: releases are imported and removed on the signing host and published here with `updater-server catalog publish` (docs/security.md)",
    ))
}

/// [`signed_offline`] unless this server holds the targets key.
fn check_can_sign(state: &AppState) -> Result<(), ApiError> {
    let repo = open(state)?
        .repository()
        .map_err(|e| ApiError::new(internal(&e)))?;
    if repo.can_sign("targets") {
        Ok(())
    } else {
        Err(signed_offline())
    }
}

fn no_release() -> ApiError {
    ApiError::new(error(StatusCode::NOT_FOUND, "not_found", "no such release"))
}

fn bad_request(message: &str) -> ApiError {
    ApiError::new(error(StatusCode::BAD_REQUEST, "invalid_request", message))
}

fn refused(message: &str) -> ApiError {
    ApiError::new(error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "import_refused",
        message,
    ))
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(payload_too_large(&format!(
        "uploads are limited to {limit} bytes (serve --max-upload-mib)"
    )))
}

/// `GET …/catalog/releases`: every release, in import order.
pub(crate) async fn list(State(state): State<Shared>) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let catalog = open(&state)?;
        let releases = catalog.releases().iter().map(view);
        Ok(Json(Value::Array(releases.collect::<Result<_, _>>()?)))
    })
    .await
}

/// `GET …/catalog/releases/{id}`.
pub(crate) async fn show(
    State(state): State<Shared>,
    UrlPath((_, id)): UrlPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let name = target_of(&id).ok_or_else(no_release)?;
    blocking(move || {
        let catalog = open(&state)?;
        Ok(Json(view(catalog.get(&name).ok_or_else(no_release)?)?))
    })
    .await
}

/// `DELETE …/catalog/releases/{id}`: removes the release and publishes new
/// metadata, unless an enabled policy pins it ([`pinning`]).
pub(crate) async fn remove(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    UrlPath((_, id)): UrlPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let name = target_of(&id).ok_or_else(no_release)?;
    blocking(move || {
        let mut catalog = open(&state)?;
        let release = catalog.get(&name).cloned().ok_or_else(no_release)?;
        check_not_pinned(&state, &p.tenant, &release, catalog.releases())?;
        match catalog.remove_target(&name, state.accounts.now()) {
            Ok(_) => {
                tracing::info!(tenant = %p.tenant, target = %name, "release removed");
                Ok(StatusCode::NO_CONTENT)
            }
            Err(CatalogError::NotFound(_)) => Err(no_release()),
            Err(CatalogError::SignedElsewhere(_)) => Err(signed_offline()),
            Err(e) => Err(ApiError::new(internal(&e))),
        }
    })
    .await
}

/// 409 if an enabled firmware policy of any tenant pins `release` (the
/// catalog is shared); the caller's own policy is named, another tenant's
/// is not.
fn check_not_pinned(
    state: &Shared,
    caller: &str,
    release: &FirmwareRelease,
    releases: &[FirmwareRelease],
) -> Result<(), ApiError> {
    let fleet = super::fleet::fleet(state);
    let tenants = state
        .accounts
        .records()
        .tenants()
        .map_err(|e| ApiError::new(internal(&e)))?;
    for t in tenants {
        let policies = fleet.firmware_policies(&t.id)?;
        if let Some(p) = pinning(release, releases, &policies) {
            let whose = if t.id == caller {
                format!("firmware policy {:?} ({})", p.spec.name, p.id)
            } else {
                "a firmware policy of another tenant".to_owned()
            };
            return Err(ApiError::new(error(
                StatusCode::CONFLICT,
                "conflict",
                &format!(
                    "{} is pinned by {whose}, which is enabled, and no other release of {} has version {}; disable the policy or pin another version first",
                    release.target_name,
                    p.spec.model.model_key(),
                    p.spec.version
                ),
            )));
        }
    }
    Ok(())
}

/// The first enabled policy that pins exactly `release`: it selects a
/// release of its model today and would select none once `release` is gone.
/// A policy on `latest` never does (it moves to the highest remaining
/// version).
pub(crate) fn pinning<'a>(
    release: &FirmwareRelease,
    releases: &[FirmwareRelease],
    policies: &'a [FirmwarePolicy],
) -> Option<&'a FirmwarePolicy> {
    policies.iter().find(|p| {
        if !p.spec.enabled || p.spec.version == VersionSpec::Latest {
            return false;
        }
        let with = crate::fleet::releases_of_model(releases, p.spec.model);
        let without: Vec<&FirmwareRelease> = with
            .iter()
            .copied()
            .filter(|r| r.target_name != release.target_name)
            .collect();
        p.spec.version.select(&with).is_some() && p.spec.version.select(&without).is_none()
    })
}

/// `POST …/catalog/releases`: the upload. Checks in order, each before the
/// body is read further: the query (400), the content type (415), the
/// declared length (413); then the body, counted as it arrives (413 once
/// over, 408 when it stalls); then the import (422, 409).
pub(crate) async fn upload(
    State(state): State<Shared>,
    Extension(p): Extension<Principal>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Query(pairs) =
        query.map_err(|e| bad_request(&format!("the query does not parse: {}", e.body_text())))?;
    let flags = ImportFlags::from_query(&pairs).map_err(|e| bad_request(&e.to_string()))?;
    let octets = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/octet-stream"));
    if !octets {
        return Err(ApiError::new(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the firmware file as the body, with Content-Type: application/octet-stream",
        )));
    }
    let max = state.uploads.max_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let checked = std::sync::Arc::clone(&state);
    blocking(move || check_can_sign(&checked)).await?;
    let upload = receive(&state, body).await?;
    blocking(move || {
        let result = import(&state, &p.tenant, &flags, &upload);
        // The temp file goes here, off the async threads, whatever happened.
        drop(upload);
        result
    })
    .await
}

/// Writes the body to a temp file in the blob store's in-flight area, chunk
/// by chunk through one buffer, stopping once it is over the limit or
/// stalls. The file is deleted when the returned handle is dropped, and on
/// any failure here.
async fn receive(state: &Shared, body: Body) -> Result<NamedTempFile, ApiError> {
    let blobs = state.blobs.clone();
    let (tmp, file) = blocking(move || {
        let tmp = blobs
            .temp_file("upload-")
            .map_err(|e| ApiError::new(internal(&e)))?;
        let file = tmp
            .as_file()
            .try_clone()
            .map_err(|e| ApiError::new(internal(&e)))?;
        Ok((tmp, file))
    })
    .await?;
    let written = write_body(state, body, tokio::fs::File::from_std(file)).await;
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            // Unlinking is blocking work too.
            let _ = tokio::task::spawn_blocking(move || drop(tmp)).await;
            Err(e)
        }
    }
}

async fn write_body(state: &Shared, body: Body, file: tokio::fs::File) -> Result<(), ApiError> {
    let max = state.uploads.max_bytes;
    let idle = state.uploads.idle_timeout;
    let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    loop {
        let next = tokio::time::timeout(idle, stream.next())
            .await
            .map_err(|_| {
                ApiError::new(error(
                    StatusCode::REQUEST_TIMEOUT,
                    "timeout",
                    &format!(
                        "the upload stalled: nothing arrived for {} seconds",
                        idle.as_secs()
                    ),
                ))
            })?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| bad_request(&format!("the upload broke off: {e}")))?;
        received += chunk.len() as u64;
        if received > max {
            return Err(too_large(max));
        }
        out.write_all(&chunk)
            .await
            .map_err(|e| ApiError::new(internal(&e)))?;
    }
    out.flush().await.map_err(|e| ApiError::new(internal(&e)))
}

/// Imports the received file with the query's options (blocking).
fn import(
    state: &AppState,
    tenant: &str,
    flags: &ImportFlags,
    upload: &NamedTempFile,
) -> Result<Response, ApiError> {
    let path = upload.path();
    if flags.file_name.is_none() {
        // The CLI's default is the file's own name; an upload's temp name
        // is nobody's, so only a cabinet (which names its payload) may go
        // without one.
        let format = match flags.format {
            Some(f) => f,
            None => detect_format(path).map_err(|e| import_error(&e))?,
        };
        if format != SourceFormat::Cab {
            return Err(refused(
                "file-name is required: the body of a raw or DFU upload carries no file name (an LVFS cabinet names its payload)",
            ));
        }
    }
    let mut catalog = open(state)?;
    let imported = catalog
        .import(path, &flags.options(), state.accounts.now())
        .map_err(catalog_error)?;
    let r = &imported.release;
    let status = if imported.added {
        tracing::info!(tenant, target = %r.target_name, sha256 = %r.sha256, size = r.size, "release uploaded");
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(r)?)).into_response())
}

fn catalog_error(e: CatalogError) -> ApiError {
    match &e {
        CatalogError::Import(i) => import_error(i),
        CatalogError::Conflict { .. } => {
            ApiError::new(error(StatusCode::CONFLICT, "conflict", &e.to_string()))
        }
        CatalogError::Tuf(TufError::UnsafeName { .. }) => refused(&e.to_string()),
        CatalogError::SignedElsewhere(_) => signed_offline(),
        _ => ApiError::new(internal(&e)),
    }
}

/// The importer's refusal in its own words, without the server's temp path.
fn import_error(e: &ImportError) -> ApiError {
    let message = match e {
        ImportError::Io { .. } => return ApiError::new(internal(e)),
        ImportError::Dfu { source, .. } => format!("invalid DFU file: {source}"),
        ImportError::Cab { source, .. } => source.to_string(),
        ImportError::TooLarge {
            len, limit, format, ..
        } => format!("{len} bytes is larger than the {limit}-byte limit for {format} files"),
        other => other.to_string(),
    };
    refused(&message)
}

#[cfg(test)]
mod tests;
