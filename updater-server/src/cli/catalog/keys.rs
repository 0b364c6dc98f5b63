//! `catalog keys …`: creating the catalog's keys (online here, offline on a
//! medium) and the root changes of a key ceremony.

use std::path::Path;

use anyhow::{bail, Context};
use catalog::tuf::{KeyPlacement, RootChange, RootChanged};
use catalog::Catalog;
use chrono::{DateTime, Utc};

use super::KeysCommand;
use crate::cli::DataDir;

/// `keys init [--offline DIR]`.
pub(super) fn init(
    data: &DataDir,
    offline: Option<&Path>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let Some(medium) = offline else {
        let c = Catalog::init(&data.catalog(), &data.keys(), now)?;
        println!("created catalog in {}", c.root().display());
        println!(
            "every signing key is in {} (mode 0600): a test installation; `serve` needs --allow-online-root-key",
            data.keys().display()
        );
        return Ok(());
    };
    let signing_catalog = medium.join("catalog");
    if signing_catalog.exists() {
        bail!(
            "{} already exists: the medium already holds a signing copy",
            signing_catalog.display()
        );
    }
    let offline_keys = medium.join("keys");
    let placement = KeyPlacement {
        online: &data.keys(),
        offline: Some(&offline_keys),
    };
    let c = Catalog::init_with_keys(&data.catalog(), placement, now)?;
    copy_catalog(c.root(), &signing_catalog)
        .with_context(|| format!("copying the catalog to {}", signing_catalog.display()))?;
    println!("created catalog in {}", c.root().display());
    println!(
        "online keys (snapshot, timestamp) in {}",
        data.keys().display()
    );
    println!(
        "offline keys (root, targets) in {}, and the signing copy of the catalog in {}",
        offline_keys.display(),
        signing_catalog.display()
    );
    println!(
        "sign releases on the signing host: `updater-server --data-dir {} catalog import FILE …`; publish them here: `updater-server --data-dir {} catalog publish {}`",
        medium.display(),
        data.root.display(),
        signing_catalog.display()
    );
    Ok(())
}

/// Copies a catalog directory (its blobs, index and metadata; not its lock
/// or in-flight temp files) to a new directory.
fn copy_catalog(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".lock" || name == "tmp" {
            continue;
        }
        let dest = to.join(&name);
        if entry.file_type()?.is_dir() {
            copy_catalog(&entry.path(), &dest)?;
        } else {
            catalog::fsutil::copy_atomic(&entry.path(), &dest)?;
        }
    }
    Ok(())
}

/// The root changes and `keys list`.
pub(super) fn run(c: Catalog, command: KeysCommand, now: DateTime<Utc>) -> anyhow::Result<()> {
    let mut repo = c.repository()?;
    let rotated: Vec<&str>;
    let change = match &command {
        KeysCommand::Init { .. } => bail!("the catalog already exists"),
        KeysCommand::List => {
            let first = c.metadata_dir().join("1.root.json");
            let bytes =
                std::fs::read(&first).with_context(|| format!("reading {}", first.display()))?;
            let first = catalog::tuf::verify_self_signed_root("root v1", &bytes)?;
            println!(
                "CATALOG_ROOT_SHA256={} (the first root's fingerprint, for agent installers)",
                catalog::tuf::root_fingerprint(&first)
            );
            let root = repo.root();
            println!("root v{} (expires {})", root.version, root.expires);
            for (role, keys) in &root.roles {
                println!(
                    "{role:<10} threshold {} keys {}",
                    keys.threshold,
                    keys.keyids.join(", ")
                );
            }
            for role in catalog::tuf::TOP_LEVEL_ROLES {
                for (path, id, named) in repo.key_files(role) {
                    let state = if named { "in use" } else { "NOT named by root" };
                    println!(
                        "{role:<10} key file {} ({}, {state})",
                        path.display(),
                        &id[..8]
                    );
                }
            }
            return Ok(());
        }
        KeysCommand::Rotate { roles } => {
            rotated = roles.iter().map(String::as_str).collect();
            RootChange::Rotate(&rotated)
        }
        KeysCommand::Add { role, to } => RootChange::AddKey { role, dir: to },
        KeysCommand::Revoke { role, key_id } => RootChange::RevokeKey { role, key_id },
        KeysCommand::Threshold { role, threshold } => RootChange::Threshold {
            role,
            threshold: *threshold,
        },
    };
    let changed = repo.change_root(change, now)?;
    report(&changed);
    Ok(())
}

fn report(changed: &RootChanged) {
    println!("published root v{}", changed.version);
    for (role, path) in &changed.new_keys {
        println!("new {role} key: {}", path.display());
    }
    if !changed.online_roles_pending.is_empty() {
        println!(
            "move the new {} key file(s) to the serving host's keys directory, then run `catalog publish` there",
            changed.online_roles_pending.join(" and ")
        );
    }
}
