//! `updater-server report <inventory|versions|compliance|distribution|history>
//! --tenant ID [--format json|csv]`: the reports of the API, read from the
//! data directory (the store may be shared with a running server).

use std::io::Write;

use anyhow::bail;
use clap::{Args, ValueEnum};

use super::DataDir;
use crate::auth::SessionPolicy;
use crate::events::Filter;
use crate::fleet::{inventory, Fleet};
use crate::reports::{self, history, Format, ReportKind, Snapshot};

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Which {
    /// Device Inventory.
    Inventory,
    /// Version Status.
    Versions,
    /// Policy Compliance.
    Compliance,
    /// Device Distribution.
    Distribution,
    /// Update History.
    History,
}

impl From<Which> for ReportKind {
    fn from(w: Which) -> Self {
        match w {
            Which::Inventory => ReportKind::Inventory,
            Which::Versions => ReportKind::Versions,
            Which::Compliance => ReportKind::Compliance,
            Which::Distribution => ReportKind::Distribution,
            Which::History => ReportKind::History,
        }
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// A JSON document.
    #[default]
    Json,
    /// CSV with a header row.
    Csv,
}

/// `report` arguments.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The report.
    #[arg(value_enum)]
    pub report: Which,
    /// The tenant id.
    #[arg(long)]
    pub tenant: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    pub format: OutputFormat,
    /// History only: updates at or after this time (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long)]
    pub from: Option<String>,
    /// History only: updates before this time (YYYY-MM-DD includes that day).
    #[arg(long)]
    pub to: Option<String>,
}

/// Prints the report on standard output.
pub(super) fn run(data: &DataDir, args: ReportArgs) -> anyhow::Result<()> {
    let kind = ReportKind::from(args.report);
    if kind != ReportKind::History && (args.from.is_some() || args.to.is_some()) {
        bail!("--from and --to apply to the history report only");
    }
    let accounts = data.accounts(SessionPolicy::default())?;
    if accounts.records().tenant(&args.tenant)?.is_none() {
        bail!("no tenant {}", args.tenant);
    }
    let now = accounts.now();
    let built = if kind == ReportKind::History {
        let range =
            history::Range::parse(args.from.as_deref(), args.to.as_deref(), Filter::default())?;
        let (records, truncated) =
            history::read(accounts.store(), &args.tenant, &range, history::MAX_ROWS)?;
        if truncated {
            eprintln!(
                "warning: more than {} entries; narrow the range with --from / --to",
                history::MAX_ROWS
            );
        }
        let hosts = inventory::hosts(accounts.store(), &args.tenant)?;
        history::build(&args.tenant, now, &range, records, truncated, &hosts)
    } else {
        let fleet = Fleet::new(accounts.clone(), data.catalog(), data.keys());
        let snapshot = Snapshot::load(accounts.store(), &fleet, &args.tenant, now)?;
        match reports::build(kind, &snapshot) {
            Some(built) => built,
            None => bail!("{kind} is not built from the fleet snapshot"),
        }
    };
    let format = match args.format {
        OutputFormat::Json => Format::Json,
        OutputFormat::Csv => Format::Csv,
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&built.render(format)?)?;
    if format == Format::Json {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
