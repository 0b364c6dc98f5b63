//! `updater-server settings show|set`: a tenant's fleet settings (shared and
//! excluded accounts, the All Users poll interval, event retention), over
//! the same fleet service and checks as the HTTP API.

use clap::Subcommand;

use super::policy::tenant_fleet;
use super::DataDir;
use crate::fleet::Settings;

/// Settings commands.
#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Print the tenant's settings.
    Show {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change the given settings (the others stay); nothing changes if one is invalid.
    Set {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// Accounts recorded as account@hostname, comma-separated (replaces
        /// the list; "" empties it).
        #[arg(long, value_delimiter = ',')]
        shared_accounts: Option<Vec<String>>,
        /// Accounts ignored (service accounts, VDI logins), comma-separated
        /// (replaces the list; "" empties it).
        #[arg(long, value_delimiter = ',')]
        excluded_accounts: Option<Vec<String>>,
        /// Seconds between check-ins for All Users (300 to 604800).
        #[arg(long)]
        poll_interval_secs: Option<u64>,
        /// Days events and update history are kept (1 to 36500), or
        /// `default` for the server's --event-retention-days.
        #[arg(long)]
        event_retention_days: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn list(v: Vec<String>) -> Vec<String> {
    v.into_iter()
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect()
}

fn print(s: &Settings, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{:#}", serde_json::to_value(s)?);
        return Ok(());
    }
    let none = |l: &[String]| {
        if l.is_empty() {
            "(none)".to_owned()
        } else {
            l.join(", ")
        }
    };
    println!("shared accounts:       {}", none(&s.shared_accounts));
    println!("excluded accounts:     {}", none(&s.excluded_accounts));
    println!(
        "All Users poll:        {} s",
        s.all_users_poll_interval_secs
    );
    match s.event_retention_days {
        Some(d) => println!("event retention:       {d} days"),
        None => println!("event retention:       server default"),
    }
    Ok(())
}

/// Runs a settings command.
pub(super) fn run(data: &DataDir, command: SettingsCommand) -> anyhow::Result<()> {
    match command {
        SettingsCommand::Show { tenant, json } => {
            let f = tenant_fleet(data, &tenant)?;
            print(&f.settings(&tenant)?, json)
        }
        SettingsCommand::Set {
            tenant,
            shared_accounts,
            excluded_accounts,
            poll_interval_secs,
            event_retention_days,
            json,
        } => {
            let f = tenant_fleet(data, &tenant)?;
            let mut s = f.settings(&tenant)?;
            if let Some(l) = shared_accounts {
                s.shared_accounts = list(l);
            }
            if let Some(l) = excluded_accounts {
                s.excluded_accounts = list(l);
            }
            if let Some(p) = poll_interval_secs {
                s.all_users_poll_interval_secs = p;
            }
            if let Some(d) = event_retention_days {
                s.event_retention_days = if d.eq_ignore_ascii_case("default") {
                    None
                } else {
                    Some(d.parse().map_err(|_| {
                        anyhow::anyhow!(
                            "--event-retention-days: {d:?} is not a number of days or `default`"
                        )
                    })?)
                };
            }
            f.set_settings(&tenant, &s)?;
            print(&s, json)
        }
    }
}
