//! Downloading from the assigned source, with fallback to the server.
//!
//! A share or web mirror is trusted for nothing: before an image is taken
//! from it, its own TUF metadata (`<mirror>/metadata/`, written by the
//! mirror export) is refreshed against the agent's trusted root and state,
//! so a mirror whose metadata is rolled back (older than trusted), expired,
//! or badly signed is refused with the reason, as is one whose signed entry
//! for the target differs from the server's. A refusal is reported as
//! `tamper_detected` (once per distinct reason) and the server is used when
//! the assignment allows it.
//!
//! Progress is recorded in the state's `downloads` table at each staging
//! checkpoint, so a download interrupted by anything (a dropped connection,
//! a crash) resumes from the recorded offset with `Range`.

use catalog::assignment::{Assignment, DownloadSource};
use catalog::tuf::{
    consistent_target_path, FetchError, Fetcher, TargetFile, Updater, UpdaterConfig,
};
use chrono::{DateTime, Utc};

use super::{Pipeline, PipelineError};
use crate::devices::DeviceBackend;
use crate::events::tamper_event;
use crate::fetch::{RangeFetch, ShareFetcher};
use crate::staging::{Resume, StageError};
use crate::state::{DownloadProgress, UpdateStatus};

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

/// Errors that stop the pass (local IO, the state database) rather than
/// count against one source.
fn is_local(e: &StageError) -> bool {
    matches!(e, StageError::Io { .. } | StageError::Checkpoint(_))
}

/// Why a mirror was not used.
enum MirrorRefusal {
    /// Its metadata did not verify (or does not sign this target as the server does).
    Metadata(String),
    /// The image did not stage.
    Image(StageError),
}

/// Refreshes the mirror's metadata (`base`, through `fetcher`) against the
/// trusted metadata and compares its entry for the target with `target`.
fn check_mirror_metadata<B: DeviceBackend>(
    p: &Pipeline<B>,
    fetcher: &dyn Fetcher,
    base: &str,
    a: &Assignment,
    target: &TargetFile,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let mut updater = Updater::new(&p.metadata_dir, base, fetcher, UpdaterConfig::default())
        .map_err(|e| format!("metadata: {e}"))?;
    updater.refresh(now).map_err(|e| format!("metadata: {e}"))?;
    match updater.target_info(&a.target_name) {
        Ok(Some(t)) if t.length == target.length && t.hashes == target.hashes => Ok(()),
        Ok(Some(t)) => Err(format!(
            "metadata: signs {} as {} bytes with other hashes than the server's catalog ({} bytes)",
            a.target_name, t.length, target.length
        )),
        Ok(None) => Err(format!("metadata: {} is not listed", a.target_name)),
        Err(e) => Err(format!("metadata: {e}")),
    }
}

/// Stages from `source`, resuming at the offset the state recorded and
/// recording each checkpoint; the record goes when the image is staged or
/// its partial download was discarded.
fn stage_recorded<B: DeviceBackend>(
    p: &Pipeline<B>,
    source: &dyn RangeFetch,
    url: &str,
    a: &Assignment,
    target: &TargetFile,
    now: DateTime<Utc>,
) -> Result<std::path::PathBuf, StageError> {
    let digest = a.sha256.to_hex();
    let recorded = p
        .state
        .download(&digest)
        .map_err(|e| StageError::Checkpoint(e.to_string()))?
        .filter(|d| d.length == target.length)
        .map_or(0, |d| d.received);
    let mut record = |received: u64| {
        p.state
            .set_download(&DownloadProgress {
                digest: digest.clone(),
                target: a.target_name.clone(),
                length: target.length,
                received,
                updated_at: now,
            })
            .map_err(|e| e.to_string())
    };
    // Without a record nothing received is known to be durable: from 0.
    let mut resume = Resume {
        recorded: Some(recorded),
        checkpoint: &mut record,
    };
    if recorded > 0 {
        tracing::info!(target = %a.target_name, offset = recorded, "resuming the download");
    }
    let result = p.staging.stage_resumable(source, url, target, &mut resume);
    let discarded = matches!(
        &result,
        Err(StageError::HashMismatch { .. })
            | Err(StageError::Interrupted {
                source: FetchError::TooLong { .. },
                ..
            })
    );
    if result.is_ok() || discarded {
        p.state
            .remove_download(&digest)
            .map_err(|e| StageError::Checkpoint(e.to_string()))?;
    }
    result
}

/// A failure reason without the parts that change from pass to pass (the
/// reference time of an expiry check, `(now …)`), for "same reason" checks.
pub(super) fn reason_key(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut rest = reason;
    while let Some(i) = rest.find(" (now ") {
        out.push_str(&rest[..i]);
        rest = rest[i..].find(')').map_or("", |j| &rest[i + j + 1..]);
    }
    out.push_str(rest);
    out
}

/// Whether `reason` was already reported for this update (its record failed
/// with it): a pass that fails the same way again reports nothing new.
fn already_reported<B: DeviceBackend>(
    p: &Pipeline<B>,
    a: &Assignment,
    reason: &str,
) -> Result<bool, PipelineError> {
    Ok(p.state
        .update(&a.sha256.to_hex(), &a.device)?
        .is_some_and(|u| {
            u.status == UpdateStatus::Failed
                && u.reason
                    .as_deref()
                    .is_some_and(|r| reason_key(r).starts_with(&reason_key(reason)))
        }))
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
    let from_server =
        |p: &Pipeline<B>| stage_recorded(p, &*p.remote.server, &server_url, a, target, now);
    let already_staged = p.staging.staged(&a.sha256).is_some();
    let (label, result) = match &a.source {
        DownloadSource::Server => (
            "the server".to_owned(),
            from_server(p).map_err(MirrorRefusal::Image),
        ),
        _ if already_staged => return Ok(Ok(None)),
        DownloadSource::Share { path } => {
            let share = ShareFetcher::new(path);
            let result = check_mirror_metadata(p, &share, "metadata", a, target, now)
                .map_err(MirrorRefusal::Metadata)
                .and_then(|()| {
                    stage_recorded(p, &share, &rel, a, target, now).map_err(MirrorRefusal::Image)
                });
            (format!("share {path}"), result)
        }
        DownloadSource::Web { url } => {
            let web = &*p.remote.web;
            let metadata_base = join(url, "metadata");
            let result = check_mirror_metadata(p, web, &metadata_base, a, target, now)
                .map_err(MirrorRefusal::Metadata)
                .and_then(|()| {
                    stage_recorded(p, web, &join(url, &rel), a, target, now)
                        .map_err(MirrorRefusal::Image)
                });
            (format!("mirror {url}"), result)
        }
    };
    // (reason, what was tampered with, if verification failed)
    let (reason, tampered) = match result {
        Ok(_) => return Ok(Ok(None)),
        Err(MirrorRefusal::Image(e)) if is_local(&e) => return Err(e.into()),
        Err(MirrorRefusal::Image(e)) => (
            format!("{label}: {e}"),
            failed_verification(&e).then_some("image"),
        ),
        Err(MirrorRefusal::Metadata(why)) => (format!("{label}: {why}"), Some("metadata")),
    };
    if matches!(a.source, DownloadSource::Server) {
        return Ok(Err(reason));
    }
    if let Some(what) = tampered {
        tracing::warn!(device = %a.device, "refused {reason}");
        if !already_reported(p, a, &reason)? {
            p.state
                .spool(&tamper_event(what, Some(&a.device), &reason, now))?;
        }
    }
    if !a.fallback_to_server {
        return Ok(Err(format!("{reason} (no fallback to the server)")));
    }
    match from_server(p) {
        Ok(_) => Ok(Ok(Some(format!(
            "downloaded from the server after {reason}"
        )))),
        Err(e) if is_local(&e) => Err(e.into()),
        Err(e) => Ok(Err(format!("{reason}; fallback to the server: {e}"))),
    }
}

#[cfg(test)]
#[path = "download_tests.rs"]
mod tests;
