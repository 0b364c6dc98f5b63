//! `updater-server admin …`: admin accounts.

use std::io::BufRead;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::json;

use super::DataDir;
use crate::auth::SessionPolicy;
use crate::store::Role;

/// Admin commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin. The password comes from standard input
    /// (--password-stdin) or UPDATER_ADMIN_PASSWORD, never the command line.
    Create {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// Login e-mail address.
        #[arg(long)]
        email: String,
        /// Role.
        #[arg(long, value_enum)]
        role: Role,
        /// Make this admin the tenant's primary contact (one per tenant).
        #[arg(long)]
        primary: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List a tenant's admins.
    List {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set an admin's password (a forgotten one, or the first admin's); its
    /// sessions end. The password comes as for `create`.
    SetPassword {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// The admin: id or e-mail address.
        admin: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete an admin; its sessions end at once.
    Delete {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// The admin id.
        id: String,
    },
}

fn password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let pw = line.trim_end_matches(['\r', '\n']).to_owned();
        if pw.is_empty() {
            bail!("no password on standard input");
        }
        return Ok(pw);
    }
    match std::env::var("UPDATER_ADMIN_PASSWORD") {
        Ok(pw) if !pw.is_empty() => Ok(pw),
        _ => bail!("give the password with --password-stdin or UPDATER_ADMIN_PASSWORD"),
    }
}

/// Runs an admin command.
pub(super) fn run(data: &DataDir, command: AdminCommand) -> anyhow::Result<()> {
    let accounts = data.accounts(SessionPolicy::default())?;
    match command {
        AdminCommand::Create {
            tenant,
            email,
            role,
            primary,
            password_stdin,
            json,
        } => {
            let pw = password(password_stdin)?;
            let a = accounts.create_admin(&tenant, &email, role, primary, &pw)?;
            if json {
                println!(
                    "{:#}",
                    json!({ "id": a.id, "tenant": a.tenant, "email": a.email, "role": a.role, "primary": a.primary })
                );
            } else {
                println!(
                    "admin {} ({}) created in tenant {}",
                    a.id, a.email, a.tenant
                );
            }
        }
        AdminCommand::List { tenant, json } => {
            if accounts.records().tenant(&tenant)?.is_none() {
                bail!("no tenant {tenant}");
            }
            let admins = accounts.records().admins(&tenant)?;
            if json {
                let out: Vec<_> = admins
                    .iter()
                    .map(|a| json!({ "id": a.id, "email": a.email, "role": a.role, "primary": a.primary, "created_at": a.created_at }))
                    .collect();
                println!("{:#}", serde_json::Value::Array(out));
            } else {
                println!("{:<18} {:<10} {:<8} EMAIL", "ID", "ROLE", "PRIMARY");
                for a in admins {
                    let role = match a.role {
                        Role::Full => "full",
                        Role::ReadOnly => "read-only",
                    };
                    let primary = if a.primary { "yes" } else { "" };
                    println!("{:<18} {:<10} {:<8} {}", a.id, role, primary, a.email);
                }
            }
        }
        AdminCommand::SetPassword {
            tenant,
            admin,
            password_stdin,
        } => {
            let found = match accounts.records().admin(&tenant, &admin)? {
                Some(a) => Some(a),
                None => accounts
                    .records()
                    .admin_by_email(&tenant, &admin.trim().to_lowercase())?,
            };
            let Some(a) = found else {
                bail!("no admin {admin} in tenant {tenant}");
            };
            let pw = password(password_stdin)?;
            accounts.reset_password(&tenant, &a.id, &pw)?;
            println!("password of {} set; their sessions have ended", a.email);
        }
        AdminCommand::Delete { tenant, id } => {
            accounts.delete_admin(&tenant, &id)?;
            println!("admin {id} deleted");
        }
    }
    Ok(())
}
