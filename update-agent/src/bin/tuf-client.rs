//! `tuf-client`: a TUF client following the tuf-conformance client-under-test
//! contract (theupdateframework/tuf-conformance, CLIENT-CLI.md).
//!
//! ```text
//! tuf-client --metadata-dir D init TRUSTED_ROOT
//! tuf-client --metadata-dir D --metadata-url U refresh
//! tuf-client --metadata-dir D --metadata-url U --target-name P \
//!            --target-base-url T --target-dir O download
//! ```
//!
//! Exit status 0 on success, 1 on any failure (errors on stderr). Downloaded
//! targets are stored in O under the URL-encoded target path (as python-tuf
//! does), and are not fetched again if the stored file already matches.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use catalog::tuf::{Root, Signed, Updater, UpdaterConfig};
use clap::{Parser, Subcommand};
use update_agent::fetch::HttpFetcher;

#[derive(Debug, Parser)]
#[command(
    name = "tuf-client",
    about = "TUF client (tuf-conformance CLI contract)"
)]
struct Cli {
    /// Local directory of trusted metadata.
    #[arg(long)]
    metadata_dir: PathBuf,
    /// Base URL of the repository's metadata.
    #[arg(long)]
    metadata_url: Option<String>,
    /// TUF target path to download.
    #[arg(long)]
    target_name: Option<String>,
    /// Base URL of the repository's targets.
    #[arg(long)]
    target_base_url: Option<String>,
    /// Directory to store downloaded targets in.
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Pretend the current time is this many days in the future.
    #[arg(long, default_value_t = 0, hide = true)]
    days_in_future: i64,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Install TRUSTED_ROOT as the trusted root.json (no network access).
    Init {
        /// File with the initial root metadata.
        trusted_root: PathBuf,
    },
    /// Update local metadata from the repository.
    Refresh,
    /// Refresh, then download and verify one target.
    Download,
}

fn init(metadata_dir: &Path, trusted_root: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(metadata_dir)
        .with_context(|| format!("creating {}", metadata_dir.display()))?;
    let data = std::fs::read(trusted_root)
        .with_context(|| format!("reading {}", trusted_root.display()))?;
    // Only a root that parses and carries its own threshold of signatures is trusted.
    let root = Signed::<Root>::from_slice("trusted root", &data)?;
    let role = root.signed.role("root")?;
    root.verify(
        "trusted root",
        &root.signed.keys,
        &role.keyids,
        role.threshold,
    )?;
    let dest = metadata_dir.join("root.json");
    let tmp = metadata_dir.join(".root.json.tmp");
    std::fs::write(&tmp, &data).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &dest).with_context(|| format!("writing {}", dest.display()))?;
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let now = chrono::Utc::now() + chrono::Duration::days(cli.days_in_future);
    if let Cmd::Init { trusted_root } = &cli.command {
        return init(&cli.metadata_dir, trusted_root);
    }
    let Some(metadata_url) = cli.metadata_url.as_deref() else {
        bail!("--metadata-url is required");
    };
    let mut updater = Updater::new(
        &cli.metadata_dir,
        metadata_url,
        HttpFetcher::new()?,
        UpdaterConfig::default(),
    )?;
    updater.refresh(now)?;
    if let Cmd::Download = cli.command {
        let (Some(name), Some(base), Some(dir)) = (
            cli.target_name.as_deref(),
            cli.target_base_url.as_deref(),
            cli.target_dir.as_deref(),
        ) else {
            bail!("download needs --target-name, --target-base-url and --target-dir");
        };
        let Some(info) = updater.target_info(name)? else {
            bail!("target {name:?} is not in the trusted targets metadata");
        };
        let path = updater.download_target(name, &info, base, dir)?;
        eprintln!(
            "tuf-client: {name} verified and stored at {}",
            path.display()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tuf-client: error: {}", error_report::Report(e.as_ref()));
            ExitCode::from(1)
        }
    }
}
