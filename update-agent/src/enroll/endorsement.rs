//! The assignment key an enrollment answer carries is taken only when the
//! catalog's targets, verified from the root just trusted, endorse it for
//! the tenant (see `catalog::assignment::KeyEndorsement`): the server alone,
//! or a man in the middle, cannot hand an agent a key of its choosing.

use catalog::assignment::check_endorsed;
use catalog::tuf::{PublicKey, TufError, Updater, UpdaterConfig};
use chrono::{DateTime, Utc};

use super::EnrollError;
use crate::fetch::HttpFetcher;

/// Refreshes the catalog metadata from `root_file` (trusted) in a scratch
/// directory, so nothing is kept unless enrollment succeeds, and checks that
/// its targets endorse `key` for `tenant`; returns the targets version. A
/// re-enrollment starts from the metadata the agent already trusts
/// (`trusted_dir`), so older targets that still endorsed a withdrawn key
/// are refused as a rollback.
pub(super) fn check_key_endorsed(
    trusted_dir: &std::path::Path,
    root_file: &[u8],
    client: &reqwest::blocking::Client,
    server_url: &str,
    tenant: &str,
    key: &PublicKey,
    now: DateTime<Utc>,
) -> Result<u64, EnrollError> {
    let scratch = tempfile::tempdir().map_err(|source| EnrollError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    for role in ["timestamp", "snapshot", "targets"] {
        let from = trusted_dir.join(format!("{role}.json"));
        if from.is_file() {
            let to = scratch.path().join(format!("{role}.json"));
            std::fs::copy(&from, &to).map_err(|source| EnrollError::Io { path: from, source })?;
        }
    }
    let root_path = scratch.path().join("root.json");
    std::fs::write(&root_path, root_file).map_err(|source| EnrollError::Io {
        path: root_path,
        source,
    })?;
    let metadata = || -> Result<_, TufError> {
        let mut updater = Updater::new(
            scratch.path(),
            &format!("{server_url}/repo/metadata"),
            HttpFetcher::with_client(client.clone()),
            UpdaterConfig::default(),
        )?;
        updater.refresh(now)?;
        updater
            .targets()
            .cloned()
            .ok_or_else(|| TufError::State("refresh() left no targets".into()))
    };
    let targets = metadata().map_err(EnrollError::Metadata)?;
    check_endorsed(&targets, tenant, key).map_err(EnrollError::KeyNotEndorsed)?;
    Ok(targets.version)
}
