//! Downloading from the assigned source, with fallback to the server.

use catalog::assignment::{Assignment, DownloadSource};
use catalog::tuf::{consistent_target_path, FetchError, TargetFile};
use chrono::{DateTime, Utc};

use super::{Pipeline, PipelineError};
use crate::devices::DeviceBackend;
use crate::events::tamper_event;
use crate::fetch::{RangeFetch, ShareFetcher};
use crate::staging::StageError;

fn join(base: &str, rel: &str) -> String {
    if base.is_empty() {
        rel.to_owned()
    } else {
        format!("{}/{rel}", base.trim_end_matches('/'))
    }
}

/// Whether a failure means the source holds something other than the
/// signed image (rather than being unreachable).
fn failed_verification(e: &StageError) -> bool {
    match e {
        StageError::HashMismatch { .. } | StageError::Short { .. } => true,
        StageError::Interrupted { source, .. } => matches!(
            source,
            FetchError::NotFound { .. }
                | FetchError::TooLong { .. }
                | FetchError::InvalidUrl { .. }
        ),
        _ => false,
    }
}

/// Stages the assignment's image. `Ok(Ok(note))` when staged (`note` says
/// why it came from the server instead of the assigned mirror), `Ok(Err(reason))`
/// when no source delivered it.
pub(super) fn stage<B: DeviceBackend>(
    p: &Pipeline<B>,
    a: &Assignment,
    target: &TargetFile,
    now: DateTime<Utc>,
) -> Result<Result<Option<String>, String>, PipelineError> {
    let rel = match consistent_target_path(&a.target_name, target) {
        Ok(path) => format!("targets/{path}"),
        Err(e) => return Ok(Err(format!("target path: {e}"))),
    };
    let server_url = join(&p.remote.server_base, &rel);
    let from_server = |p: &Pipeline<B>| p.staging.stage(&*p.remote.server, &server_url, target);
    let (label, result) = match &a.source {
        DownloadSource::Server => ("the server".to_owned(), from_server(p)),
        DownloadSource::Share { path } => {
            let share = ShareFetcher::new(path);
            (
                format!("share {path}"),
                p.staging.stage(&share, &rel, target),
            )
        }
        DownloadSource::Web { url } => {
            let mirror: &dyn RangeFetch = &*p.remote.web;
            (
                format!("mirror {url}"),
                p.staging.stage(mirror, &join(url, &rel), target),
            )
        }
    };
    let err = match result {
        Ok(_) => return Ok(Ok(None)),
        Err(e @ StageError::Io { .. }) => return Err(e.into()),
        Err(e) => e,
    };
    let reason = format!("{label}: {err}");
    if matches!(a.source, DownloadSource::Server) {
        return Ok(Err(reason));
    }
    if failed_verification(&err) {
        tracing::warn!(device = %a.device, "refused the image from {reason}");
        p.state
            .spool(&tamper_event("image", Some(&a.device), &reason, now))?;
    }
    if !a.fallback_to_server {
        return Ok(Err(format!("{reason} (no fallback to the server)")));
    }
    match from_server(p) {
        Ok(_) => Ok(Ok(Some(format!(
            "downloaded from the server after {reason}"
        )))),
        Err(e @ StageError::Io { .. }) => Err(e.into()),
        Err(e) => Ok(Err(format!("{reason}; fallback to the server: {e}"))),
    }
}
