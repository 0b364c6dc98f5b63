//! `updater-server backup DEST` and `restore BACKUP`: a consistent copy of a
//! data directory taken while the server runs, and its return.
//!
//! The store is copied as one redb read transaction sees it (commits made
//! meanwhile are in the next backup, never half in this one); the catalog
//! under its lock; the keys as files. `BACKUP.json` records what was copied,
//! and a restore checks the copy against it — record counts per table,
//! release count, every blob's hash — before the restored directory takes
//! the data directory's name. Nothing existing is overwritten.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::DataDir;
use crate::store::{self, RedbStore};

/// The manifest's file name in a backup.
const MANIFEST: &str = "BACKUP.json";
/// The layout version of a backup.
const FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    created_at: chrono::DateTime<chrono::Utc>,
    server_version: String,
    /// Records per store table.
    store: BTreeMap<String, u64>,
    releases: usize,
    blobs: usize,
    targets_version: u64,
    key_files: usize,
}

/// `backup` and `restore` copy the embedded store; PostgreSQL has its own
/// tools, and the catalog and keys are then plain directories to copy.
fn refuse_postgres(data: &DataDir, command: &str, tool: &str) -> anyhow::Result<()> {
    if data.store_is_postgres() {
        bail!(
            "`{command}` copies the embedded store, and this store is in PostgreSQL: use {tool} for the database, and copy the catalog and keys directories as files (docs/scale.md)"
        );
    }
    Ok(())
}

/// A directory that does not exist, or is empty; otherwise an error: a
/// backup or restore never writes over something.
fn check_free(dir: &Path, what: &str) -> anyhow::Result<()> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!("{what} {} is not empty; nothing was written", dir.display());
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// Copies the files under `src` into `dest` (modes kept; directories 0700:
/// they hold private keys).
fn copy_private_tree(src: &Path, dest: &Path) -> anyhow::Result<usize> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    fs::set_permissions(dest, fs::Permissions::from_mode(0o700))?;
    let mut files = 0;
    let entries = match fs::read_dir(src) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("reading {}", src.display())),
    };
    for entry in entries {
        let entry = entry?;
        let (from, to) = (entry.path(), dest.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            bail!(
                "{} is a symbolic link: a backup holds only files and directories",
                from.display()
            );
        }
        if kind.is_dir() {
            files += copy_private_tree(&from, &to)?;
        } else {
            fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
            files += 1;
        }
    }
    Ok(files)
}

/// `backup DEST`: see the module documentation.
pub(super) fn backup(data: &DataDir, dest: &Path) -> anyhow::Result<()> {
    refuse_postgres(data, "backup", "pg_dump")?;
    check_free(dest, "the backup destination")?;
    let store = RedbStore::open(&data.store_path())
        .with_context(|| format!("opening {}", data.store_path().display()))?;
    let mut catalog = data.open_existing()?;
    // Built beside its final name, renamed when complete: a directory
    // named DEST is always a whole backup.
    let partial = sibling(dest, "partial");
    if partial.exists() {
        fs::remove_dir_all(&partial)
            .with_context(|| format!("removing the leftover {}", partial.display()))?;
    }
    let made = (|| -> anyhow::Result<Manifest> {
        fs::create_dir_all(&partial)?;
        let counts = store.snapshot_to(&partial.join("server.redb"))?;
        let c = catalog.backup_to(&partial.join("catalog"))?;
        let key_files = copy_private_tree(&data.keys(), &partial.join("keys"))?;
        let manifest = Manifest {
            format: FORMAT,
            created_at: chrono::Utc::now(),
            server_version: env!("CARGO_PKG_VERSION").into(),
            store: counts.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            releases: c.releases,
            blobs: c.blobs,
            targets_version: c.targets_version,
            key_files,
        };
        fs::write(
            partial.join(MANIFEST),
            serde_json::to_vec_pretty(&manifest)?,
        )?;
        Ok(manifest)
    })();
    let manifest = match made {
        Ok(m) => m,
        Err(e) => {
            let _ = fs::remove_dir_all(&partial);
            return Err(e.context("backup failed; nothing was kept"));
        }
    };
    if dest.exists() {
        fs::remove_dir(dest).with_context(|| format!("replacing the empty {}", dest.display()))?;
    }
    fs::rename(&partial, dest).with_context(|| format!("renaming to {}", dest.display()))?;
    let records: u64 = manifest.store.values().sum();
    println!(
        "backup in {}: {records} records, {} releases, {} blobs (targets v{}), {} key files",
        dest.display(),
        manifest.releases,
        manifest.blobs,
        manifest.targets_version,
        manifest.key_files
    );
    Ok(())
}

fn count_files(dir: &Path) -> anyhow::Result<usize> {
    let mut n = 0;
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        n += if entry.file_type()?.is_dir() {
            count_files(&entry.path())?
        } else {
            1
        };
    }
    Ok(n)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}

/// `restore BACKUP`: see the module documentation.
pub(super) fn restore(data: &DataDir, backup: &Path) -> anyhow::Result<()> {
    refuse_postgres(data, "restore", "pg_restore")?;
    let target = data.root().to_owned();
    check_free(&target, "the data directory")?;
    let manifest_path = backup.join(MANIFEST);
    let manifest: Manifest = serde_json::from_slice(
        &fs::read(&manifest_path)
            .with_context(|| format!("{} is not a backup", backup.display()))?,
    )
    .with_context(|| format!("{}: not a backup manifest", manifest_path.display()))?;
    if manifest.format != FORMAT {
        bail!(
            "{}: backup format {} is not {FORMAT}",
            manifest_path.display(),
            manifest.format
        );
    }
    let staging = sibling(&target, "restoring");
    if staging.exists() {
        fs::remove_dir_all(&staging)
            .with_context(|| format!("removing the leftover {}", staging.display()))?;
    }
    let checked = (|| -> anyhow::Result<()> {
        copy_private_tree(backup, &staging)?;
        fs::remove_file(staging.join(MANIFEST))?;
        let restored = DataDir::new(staging.clone());
        let counts = store::counts(&RedbStore::open(&restored.store_path())?)?;
        for (table, n) in &counts {
            let want = manifest.store.get(*table).copied().unwrap_or(0);
            if *n != want {
                bail!("table {table}: {n} records, the backup's manifest says {want}");
            }
        }
        let catalog = restored.open_existing()?;
        let key_files = count_files(&restored.keys())?;
        let found = [
            ("releases", catalog.releases().len() as u64),
            ("blobs", catalog.blobs().list()?.len() as u64),
            ("key files", key_files as u64),
            (
                "targets version",
                catalog.repository()?.current_targets().version,
            ),
        ];
        let said = [
            manifest.releases as u64,
            manifest.blobs as u64,
            manifest.key_files as u64,
            manifest.targets_version,
        ];
        for ((what, n), want) in found.into_iter().zip(said) {
            if n != want {
                bail!("{what}: {n}, the backup's manifest says {want}");
            }
        }
        let problems = ::catalog::mirror::verify_blob_store(catalog.blobs())?;
        if let Some(p) = problems.first() {
            bail!("{} damaged blob(s), first: {p}", problems.len());
        }
        for r in catalog.releases() {
            if !catalog.blobs().contains(&r.sha256) {
                bail!("the blob of {} is missing", r.target_name);
            }
        }
        Ok(())
    })();
    if let Err(e) = checked {
        let _ = fs::remove_dir_all(&staging);
        return Err(e.context(format!(
            "{} does not restore; nothing was written to {}",
            backup.display(),
            target.display()
        )));
    }
    if target.exists() {
        fs::remove_dir(&target)?;
    }
    fs::rename(&staging, &target).with_context(|| format!("renaming to {}", target.display()))?;
    println!(
        "restored {} (taken {}) into {}: {} records, {} releases, every blob verified",
        backup.display(),
        manifest.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
        target.display(),
        manifest.store.values().sum::<u64>(),
        manifest.releases
    );
    Ok(())
}
