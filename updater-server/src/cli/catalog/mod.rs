//! `updater-server catalog …`: the firmware catalog's admin commands.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{bail, Context};
use catalog::mirror::{self, ExportFilter, Progress, VerifyOptions};
use catalog::package::{FirmwareRelease, HardwareId};
use catalog::Catalog;
use clap::{Args, Subcommand};

use super::DataDir;
use crate::import_flags::ImportFlags;

mod keys;

/// Catalog commands.
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Import a firmware file: a raw image, a .dfu or DfuSe file, or an LVFS .cab.
    Import(ImportArgs),
    /// List releases.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one release (by target name, name prefix or sha256 prefix).
    Show {
        /// What to show.
        query: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a release (its blob is deleted by `gc`).
    Remove {
        /// Which release.
        query: String,
    },
    /// Export the signed repository to a directory (network share or web root).
    Mirror {
        /// Destination directory.
        dest: PathBuf,
        /// Only firmware for these models (VID:PID); repeatable.
        #[arg(long = "model")]
        models: Vec<HardwareId>,
    },
    /// Verify a mirror (signatures, expiry, staleness, every blob), or with no
    /// mirror the catalog's own blob store. Exits non-zero on any problem.
    Verify {
        /// The mirror directory.
        mirror: Option<PathBuf>,
        /// Trusted root.json (default: the catalog's version 1 root).
        #[arg(long)]
        root: Option<PathBuf>,
        /// The mirror was exported for these models only.
        #[arg(long = "model")]
        models: Vec<HardwareId>,
    },
    /// Signing keys.
    Keys {
        /// What to do with them.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Adopt what the signing host signed: new roots, its newest targets, the
    /// release records and the blobs this catalog lacks, all verified first.
    Publish {
        /// The signing host's catalog directory (`<signing data>/catalog`).
        from: PathBuf,
    },
    /// Vouch for a tenant's assignment key (the file `tenant assignment-key`
    /// prints on the server): agents take only an endorsed key. Replaces the
    /// tenant's previously endorsed key. Needs the targets key.
    Endorse {
        /// The endorsement document.
        file: PathBuf,
    },
    /// Withdraw the endorsement of a tenant's assignment key: its agents
    /// stop acting on assignments once they see the new targets.
    Unendorse {
        /// The tenant id.
        tenant: String,
    },
    /// List the endorsed assignment keys.
    Endorsements,
    /// The vendor keys trusted for LVFS cabinet signatures (.jcat, ed25519).
    VendorKeys {
        /// What to do with them.
        #[command(subcommand)]
        command: VendorKeysCommand,
    },
    /// Delete blobs that no release references, and leftovers of interrupted imports.
    Gc,
    /// Re-sign the timestamp (and snapshot/targets) if close to expiry.
    RefreshTimestamp,
}

/// Vendor key commands.
#[derive(Debug, Subcommand)]
pub enum VendorKeysCommand {
    /// Trust a vendor's ed25519 public key (the raw 32-byte file `jcat-tool`
    /// writes) under NAME; imported cabinets record which key verified them.
    Add {
        /// The name recorded with the releases it verifies ([A-Za-z0-9._-]).
        name: String,
        /// The key file.
        file: PathBuf,
    },
    /// Stop trusting a key (releases imported before keep their record).
    Remove {
        /// Its name.
        name: String,
    },
    /// List the trusted keys.
    List,
}

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create the catalog and its signing keys (one ed25519 key per role).
    Init {
        /// Put the root and targets keys on this (removable) medium as
        /// `<DIR>/keys`, with a copy of the new catalog as `<DIR>/catalog`:
        /// the signing host's data directory. Only snapshot and timestamp
        /// stay in this data directory.
        #[arg(long, value_name = "DIR")]
        offline: Option<PathBuf>,
    },
    /// Publish root N+1 with new keys for the given roles, signed by old and new root keys.
    Rotate {
        /// Roles whose key to replace: root, targets, snapshot, timestamp (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Add a key to a role (root N+1); the new key is written to `<DIR>/<role>.pem`.
    Add {
        /// root, targets, snapshot or timestamp.
        #[arg(long)]
        role: String,
        /// The new holder's medium.
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
    /// Stop trusting a key for a role (root N+1).
    Revoke {
        /// root, targets, snapshot or timestamp.
        #[arg(long)]
        role: String,
        /// The key id, or 8 or more of its first hex digits.
        key_id: String,
    },
    /// Set how many of a role's keys must sign (root N+1).
    Threshold {
        /// root, targets, snapshot or timestamp.
        #[arg(long)]
        role: String,
        /// At least 1, at most the role's number of keys.
        threshold: u32,
    },
    /// Print the key ids of the current root, and the key files on this host.
    List,
}

/// An import: the file, and metadata the file does not carry.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The firmware file.
    pub file: PathBuf,
    /// What the file does not say (the same options as an upload's query).
    #[command(flatten)]
    pub flags: ImportFlags,
}

/// Runs a catalog command.
pub(super) fn run(
    data: &DataDir,
    signing_keys: &[PathBuf],
    command: CatalogCommand,
) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let open_existing =
        || -> anyhow::Result<Catalog> { Ok(data.open_existing()?.with_signing_keys(signing_keys)) };
    match command {
        CatalogCommand::Keys {
            command: KeysCommand::Init { offline },
        } => keys::init(data, offline.as_deref(), now),
        CatalogCommand::Keys { command } => keys::run(open_existing()?, command, now),
        CatalogCommand::Publish { from } => {
            let mut c = open_existing()?;
            let p = c
                .publish_from(&from, now)
                .with_context(|| format!("publishing {}", from.display()))?;
            if p == catalog::Published::default() {
                println!(
                    "nothing to publish: {} is already published",
                    from.display()
                );
                return Ok(());
            }
            if let Some(v) = p.root_version {
                println!("root v{v}");
            }
            if let Some(v) = p.targets_version {
                println!("targets v{v}");
            }
            for name in &p.added {
                println!("added: {name}");
            }
            for name in &p.removed {
                println!("removed: {name}");
            }
            Ok(())
        }
        CatalogCommand::Endorse { file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let endorsement = catalog::assignment::KeyEndorsement::from_json(&bytes)
                .with_context(|| file.display().to_string())?;
            let mut c = open_existing()?;
            let verb = if c.endorse(&endorsement, now)? {
                "endorsed"
            } else {
                "already endorsed"
            };
            println!(
                "{verb}: assignment key {} for tenant {} (targets v{})",
                endorsement.keyid,
                endorsement.tenant,
                c.repository()?.current_targets().version
            );
            Ok(())
        }
        CatalogCommand::Unendorse { tenant } => {
            let removed = open_existing()?.withdraw_endorsement(&tenant, now)?;
            println!(
                "withdrawn: assignment key {} of tenant {}",
                removed.keyid, removed.tenant
            );
            Ok(())
        }
        CatalogCommand::Endorsements => {
            let c = open_existing()?;
            println!("{:<18} KEY", "TENANT");
            for e in c.endorsements() {
                println!("{:<18} {}", e.tenant, e.keyid);
            }
            Ok(())
        }
        CatalogCommand::VendorKeys { command } => vendor_keys(&open_existing()?, command),
        CatalogCommand::Import(args) => {
            let mut c = data.open_catalog(now)?.with_signing_keys(signing_keys);
            let imported = c.import(&args.file, &args.flags.options(), now)?;
            let verb = if imported.added {
                "imported"
            } else {
                "already present"
            };
            println!("{verb}: {}", imported.release.target_name);
            print_release(&imported.release);
            for h in &imported.release.hardware_ids {
                if let Some((lo, hi)) = h.bcd_range {
                    eprintln!(
                        "note: {:04X}:{:04X} devices are updated only while their current release (bcdDevice) is {lo:04X}..{hi:04X}",
                        h.vid, h.pid
                    );
                }
            }
            Ok(())
        }
        CatalogCommand::List { json } => {
            let c = data.open_existing()?;
            if json {
                println!("{}", serde_json::to_string_pretty(c.releases())?);
                return Ok(());
            }
            println!(
                "{:<52} {:<12} {:<20} {:>10}  SHA256",
                "TARGET", "VERSION", "HARDWARE IDS", "SIZE"
            );
            for r in c.releases() {
                let ids: Vec<String> = r.hardware_ids.iter().map(|h| h.to_string()).collect();
                println!(
                    "{:<52} {:<12} {:<20} {:>10}  {}",
                    r.target_name,
                    r.version.as_str(),
                    ids.join(","),
                    r.size,
                    &r.sha256.to_hex()[..16]
                );
            }
            Ok(())
        }
        CatalogCommand::Show { query, json } => {
            let c = data.open_existing()?;
            let r = c.find(&query)?;
            if json {
                println!("{}", serde_json::to_string_pretty(r)?);
            } else {
                println!("{}", r.target_name);
                print_release(r);
            }
            Ok(())
        }
        CatalogCommand::Remove { query } => {
            let mut c = open_existing()?;
            let r = c.remove(&query, now)?;
            println!(
                "removed {} (run `catalog gc` to delete its blob)",
                r.target_name
            );
            Ok(())
        }
        CatalogCommand::Mirror { dest, models } => {
            let c = data.open_existing()?;
            let bar = progress_bar("exporting");
            let report =
                mirror::export(&c, &dest, &ExportFilter { models }, &mut |p| show(&bar, p))?;
            bar.finish_and_clear();
            println!(
                "mirror {}: {} targets copied ({} bytes), {} already present, {} filtered out, {} metadata files written",
                dest.display(),
                report.targets_copied,
                report.bytes_copied,
                report.targets_present,
                report.targets_filtered,
                report.metadata_copied
            );
            Ok(())
        }
        CatalogCommand::Verify { mirror: None, .. } => {
            let c = data.open_existing()?;
            let problems = mirror::verify_blob_store(c.blobs())?;
            let referenced: HashSet<_> = c.releases().iter().map(|r| r.sha256).collect();
            let mut missing = 0;
            for r in c.releases() {
                if !c.blobs().contains(&r.sha256) {
                    eprintln!("missing: blob {} of {}", r.sha256, r.target_name);
                    missing += 1;
                }
            }
            for p in &problems {
                eprintln!("{p}");
            }
            if !problems.is_empty() || missing > 0 {
                bail!("catalog has {} problem(s)", problems.len() + missing);
            }
            println!(
                "catalog OK: {} releases, {} blobs verified",
                c.releases().len(),
                referenced.len()
            );
            Ok(())
        }
        CatalogCommand::Verify {
            mirror: Some(dir),
            root,
            models,
        } => {
            let (trusted_root, catalog_snapshot) = match root {
                Some(p) => (
                    std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?,
                    None,
                ),
                None => {
                    let c = data.open_existing()?;
                    let root = std::fs::read(c.metadata_dir().join("1.root.json"))?;
                    (root, Some(c.repository()?.snapshot().version))
                }
            };
            let opts = VerifyOptions {
                trusted_root: &trusted_root,
                now,
                catalog_snapshot,
                filter: ExportFilter { models },
            };
            let bar = progress_bar("verifying");
            let report = mirror::verify(&dir, &opts, &mut |p| show(&bar, p))?;
            bar.finish_and_clear();
            for p in &report.problems {
                eprintln!("{p}");
            }
            if !report.is_ok() {
                bail!(
                    "mirror {} has {} problem(s)",
                    dir.display(),
                    report.problems.len()
                );
            }
            println!(
                "mirror OK: {} targets verified, {} not mirrored by choice",
                report.targets_ok, report.targets_skipped
            );
            Ok(())
        }
        CatalogCommand::Gc => {
            let mut c = data.open_existing()?;
            let report = c.gc(std::time::SystemTime::now())?;
            println!(
                "removed {} blobs ({} bytes) and {} stale temp files",
                report.removed.len(),
                report.bytes_freed,
                report.stale_temp_files
            );
            Ok(())
        }
        CatalogCommand::RefreshTimestamp => {
            let mut c = open_existing()?;
            let did = c.refresh_timestamp(now)?;
            println!("{}", if did { "re-signed" } else { "nothing due" });
            Ok(())
        }
    }
}

fn vendor_keys(c: &Catalog, command: VendorKeysCommand) -> anyhow::Result<()> {
    use catalog::import::{VendorKey, VENDOR_KEY_EXTENSION};
    let dir = c.vendor_keys_dir();
    let path_of = |name: &str| -> anyhow::Result<PathBuf> {
        let ok = !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok {
            bail!("vendor key name {name:?}: use letters, digits, '.', '_' and '-'");
        }
        Ok(dir.join(format!("{name}.{VENDOR_KEY_EXTENSION}")))
    };
    match command {
        VendorKeysCommand::Add { name, file } => {
            let key = VendorKey::load(&file)?;
            let dest = path_of(&name)?;
            if dest.exists() {
                bail!("a vendor key named {name} is trusted already (remove it first)");
            }
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::write(&dest, key.key.as_bytes())
                .with_context(|| format!("writing {}", dest.display()))?;
            println!(
                "trusted vendor key {name}: {}",
                hex::encode(key.key.as_bytes())
            );
        }
        VendorKeysCommand::Remove { name } => {
            let path = path_of(&name)?;
            std::fs::remove_file(&path)
                .with_context(|| format!("no trusted vendor key {name} ({})", path.display()))?;
            println!("removed vendor key {name}");
        }
        VendorKeysCommand::List => {
            for k in c.vendor_keys()? {
                println!("{:<24} {}", k.name, hex::encode(k.key.as_bytes()));
            }
        }
    }
    Ok(())
}

fn print_release(r: &FirmwareRelease) {
    let ids: Vec<String> = r.hardware_ids.iter().map(|h| h.to_string()).collect();
    println!("  vendor:           {}", r.vendor);
    println!("  model:            {}", r.model);
    println!("  hardware ids:     {}", ids.join(", "));
    println!("  version:          {} ({})", r.version, r.version.format());
    println!("  security counter: {}", r.security_counter);
    println!("  protocol:         {}", r.protocol);
    println!(
        "  install:          replug={} silent={} automatic={} ~{}s",
        r.capabilities.needs_replug,
        r.capabilities.silent_capable,
        r.capabilities.automatic_capable,
        r.capabilities.install_duration_secs
    );
    println!("  urgency:          {:?}", r.urgency);
    if let Some(family) = &r.product_family {
        println!("  product family:   {family}");
    }
    if let Some(lvfs) = &r.lvfs {
        match &lvfs.vendor_signature {
            Some(sig) => println!(
                "  vendor signature: verified with {} (over the {})",
                sig.key, sig.covers
            ),
            None => println!("  vendor signature: none verified"),
        }
    }
    println!("  size:             {} bytes", r.size);
    println!("  sha256:           {}", r.sha256);
    if !r.release_notes.is_empty() {
        println!(
            "  notes:            {}",
            r.release_notes.replace('\n', "\n                    ")
        );
    }
}

fn progress_bar(what: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(what);
    bar
}

fn show(bar: &indicatif::ProgressBar, p: Progress) {
    bar.set_length(p.bytes_total);
    bar.set_position(p.bytes_done);
}
