//! `updater-server rollout …`: a tenant's staged rollouts, read from and
//! written to the data directory (the store may be shared with a running
//! server, whose evaluation job advances the waves).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;

use super::report::OutputFormat;
use super::DataDir;
use crate::auth::SessionPolicy;
use crate::fleet::rollouts::service::RolloutAction;
use crate::fleet::rollouts::{report, Rollout, RolloutInput};
use crate::fleet::Fleet;

/// Rollout commands.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Start a rollout described by a JSON file (the API's body: name,
    /// model, version, groups, deployment, window, waves; `-` reads
    /// standard input).
    Create {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// The JSON file.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List a tenant's rollouts, newest first.
    List {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A rollout's status: per wave, devices by state, and its log.
    Status {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// The rollout id.
        id: String,
        /// Output format (default: a table).
        #[arg(long, value_enum)]
        format: Option<OutputFormat>,
    },
    /// Pause a running rollout.
    Pause {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// The rollout id.
        id: String,
    },
    /// Resume a paused rollout (the failures seen now are acknowledged).
    Resume {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// The rollout id.
        id: String,
    },
    /// Approve the next wave (one that starts on approval).
    Approve {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// The rollout id.
        id: String,
    },
    /// Cancel a rollout: its devices go back to the policies.
    Cancel {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// The rollout id.
        id: String,
    },
    /// Delete a cancelled or completed rollout.
    Delete {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// The rollout id.
        id: String,
    },
}

/// Who CLI actions are recorded as.
const CLI_ACTOR: &str = "the server's command line";

pub(super) fn run(data: &DataDir, command: RolloutCommand) -> anyhow::Result<()> {
    let accounts = data.accounts(SessionPolicy::default())?;
    let tenant = match &command {
        RolloutCommand::Create { tenant, .. }
        | RolloutCommand::List { tenant, .. }
        | RolloutCommand::Status { tenant, .. }
        | RolloutCommand::Pause { tenant, .. }
        | RolloutCommand::Resume { tenant, .. }
        | RolloutCommand::Approve { tenant, .. }
        | RolloutCommand::Cancel { tenant, .. }
        | RolloutCommand::Delete { tenant, .. } => tenant.clone(),
    };
    if accounts.records().tenant(&tenant)?.is_none() {
        bail!("no tenant {tenant}");
    }
    let fleet = Fleet::new(accounts, data.catalog(), data.keys());
    let action = |id: &str, a: RolloutAction| -> anyhow::Result<()> {
        let r = fleet.rollout_action(&tenant, id, a, CLI_ACTOR)?;
        print_summary(&r);
        Ok(())
    };
    match command {
        RolloutCommand::Create { file, json, .. } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let spec: RolloutInput = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a rollout", file.display()))?;
            let r = fleet.create_rollout(&tenant, spec, CLI_ACTOR)?;
            if json {
                println!("{:#}", serde_json::to_value(&r)?);
            } else {
                println!("rollout {} ({}) created", r.id, r.spec.name);
                print_summary(&r);
            }
        }
        RolloutCommand::List { json, .. } => {
            let all = fleet.rollouts(&tenant)?;
            if json {
                println!("{:#}", serde_json::to_value(&all)?);
            } else {
                println!(
                    "{:<18} {:<10} {:>5} {:<40} NAME",
                    "ID", "STATE", "WAVES", "RELEASE"
                );
                for r in all {
                    let begun = r.waves.iter().filter(|w| w.started_at.is_some()).count();
                    println!(
                        "{:<18} {:<10} {:>5} {:<40} {}",
                        r.id,
                        r.state.as_str(),
                        format!("{begun}/{}", r.waves.len()),
                        r.release.target_name,
                        r.spec.name
                    );
                }
            }
        }
        RolloutCommand::Status { id, format, .. } => {
            let r = fleet.rollout(&tenant, &id)?;
            let built = report::build(&r, &fleet.rollout_figures(&r)?);
            let mut out = std::io::stdout().lock();
            match format {
                Some(OutputFormat::Json) => {
                    writeln!(out, "{:#}", serde_json::to_value(&built)?)?;
                }
                Some(OutputFormat::Csv) => {
                    out.write_all(&crate::reports::csv::write(
                        report::CSV_COLUMNS,
                        report::csv_rows(&built),
                    )?)?;
                }
                None => {
                    print_summary(&r);
                    print_waves(&mut out, &built)?;
                    writeln!(out, "log:")?;
                    for l in &r.log {
                        writeln!(out, "  {} {}", l.at.to_rfc3339(), l.what)?;
                    }
                }
            }
            out.flush()?;
        }
        RolloutCommand::Pause { id, .. } => action(&id, RolloutAction::Pause)?,
        RolloutCommand::Resume { id, .. } => action(&id, RolloutAction::Resume)?,
        RolloutCommand::Approve { id, .. } => action(&id, RolloutAction::Approve)?,
        RolloutCommand::Cancel { id, .. } => action(&id, RolloutAction::Cancel)?,
        RolloutCommand::Delete { id, .. } => {
            fleet.delete_rollout(&tenant, &id)?;
            println!("rollout {id} deleted");
        }
    }
    Ok(())
}

fn print_summary(r: &Rollout) {
    println!(
        "rollout {}: {} of {}",
        r.id,
        r.state.as_str(),
        r.release.target_name
    );
    if let Some(p) = &r.pause {
        println!("paused: {}", p.reason);
        if !p.failing_devices.is_empty() {
            println!("failing devices: {}", p.failing_devices.join(", "));
        }
    }
}

fn print_waves(out: &mut impl Write, built: &report::StatusReport) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<4} {:<16} {:>7} {:>7} {:>11} {:>7} {:>10} {:>9} {:>6}  BEGAN",
        "WAVE",
        "NAME",
        "DEVICES",
        "PENDING",
        "DOWNLOADING",
        "WAITING",
        "INSTALLING",
        "INSTALLED",
        "FAILED"
    )?;
    for w in &built.waves {
        let f = &w.figures;
        writeln!(
            out,
            "{:<4} {:<16} {:>7} {:>7} {:>11} {:>7} {:>10} {:>9} {:>6}  {}",
            w.number,
            w.name,
            f.devices,
            f.pending,
            f.downloading,
            f.waiting_total(),
            f.installing,
            f.installed,
            f.failed_total(),
            w.started_at
                .map_or_else(|| format!("not yet ({})", w.start), |t| t.to_rfc3339())
        )?;
        for (reason, n) in &f.waiting {
            writeln!(out, "       waiting {n}: {reason}")?;
        }
        for (reason, n) in &f.failed {
            writeln!(out, "       failed {n}: {reason}")?;
        }
    }
    Ok(())
}
