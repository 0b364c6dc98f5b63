//! `updater-server tenant …`: tenants and their enrollment tokens.

use clap::Subcommand;
use serde_json::json;

use super::DataDir;
use crate::auth::SessionPolicy;

/// Tenant commands.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant: prints its id and enrollment token (shown once).
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List tenants.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Issue a new enrollment token (shown once); the old one stops working.
    RotateToken {
        /// The tenant id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke the enrollment token: no agent enrolls until the next rotation.
    RevokeToken {
        /// The tenant id.
        id: String,
    },
    /// Print the tenant's assignment key as the document the signing host
    /// endorses (`catalog endorse FILE` there, then `catalog publish` here).
    AssignmentKey {
        /// The tenant id.
        id: String,
    },
}

/// Runs a tenant command.
pub(super) fn run(data: &DataDir, command: TenantCommand) -> anyhow::Result<()> {
    let accounts = data.accounts(SessionPolicy::default())?;
    match command {
        TenantCommand::Create { name, json } => {
            // The tenant's agents pin the catalog's root, so the catalog must
            // exist; one created here holds every key (a test installation).
            if data.open_existing().is_err() {
                eprintln!(
                    "note: no catalog yet: creating one with every signing key in {} (a test installation; for production first run `catalog keys init --offline MEDIUM`)",
                    data.keys().display()
                );
            }
            let mut catalog = data.open_catalog(accounts.now())?;
            let (tenant, token) = accounts.create_tenant(&name)?;
            // With the targets key on this host (a test installation) the key
            // is endorsed now; otherwise on the signing host (said below).
            // The token is printed below whatever happens here: it is shown
            // once, and the tenant exists already.
            let endorsed = catalog.repository()?.can_sign("targets")
                && match accounts
                    .assignment_key_endorsement(&tenant.id)
                    .map_err(anyhow::Error::from)
                    .and_then(|e| Ok(catalog.endorse(&e, accounts.now())?))
                {
                    Ok(_) => true,
                    Err(e) => {
                        eprintln!("warning: the assignment key was not endorsed: {e:#}");
                        false
                    }
                };
            let first = std::fs::read(catalog.metadata_dir().join("1.root.json"))?;
            let first = ::catalog::tuf::verify_self_signed_root("root v1", &first)?;
            let root_sha256 = ::catalog::tuf::root_fingerprint(&first);
            if json {
                let out = json!({
                    "id": tenant.id,
                    "name": tenant.name,
                    "enrollment_token": token,
                    "assignment_key_id": tenant.assignment_key_id,
                    "assignment_key_endorsed": endorsed,
                    "catalog_root_sha256": root_sha256,
                });
                println!("{out:#}");
            } else {
                println!("tenant:           {}", tenant.id);
                println!("name:             {}", tenant.name);
                println!("enrollment token: {token}");
                println!(
                    "                  (shown once: put it in the agent installer as TENANT_TOKEN)"
                );
                println!("assignment key:   {}", tenant.assignment_key_id);
                if endorsed {
                    println!("                  (endorsed in the catalog's signed targets)");
                } else {
                    println!("                  (NOT endorsed yet: agents refuse to enroll until the offline targets key");
                    println!("                  endorses it. Here: `updater-server tenant assignment-key {} > {0}.key.json`;", tenant.id);
                    println!("                  on the signing host: `updater-server --data-dir <signing copy> catalog endorse {}.key.json`;", tenant.id);
                    println!("                  then here: `updater-server catalog publish <signing copy>/catalog`)");
                }
                println!("catalog root:     {root_sha256}");
                println!(
                    "                  (put it in the agent installer as CATALOG_ROOT_SHA256)"
                );
            }
        }
        TenantCommand::List { json } => {
            let tenants = accounts.records().tenants()?;
            if json {
                let out: Vec<_> = tenants
                    .iter()
                    .map(|t| {
                        json!({
                            "id": t.id,
                            "name": t.name,
                            "created_at": t.created_at,
                            "enrollment_token_active": t.enrollment_token.is_some(),
                            "assignment_key_id": t.assignment_key_id,
                        })
                    })
                    .collect();
                println!("{:#}", serde_json::Value::Array(out));
            } else {
                println!("{:<18} {:<8} {:<25} NAME", "ID", "TOKEN", "CREATED");
                for t in tenants {
                    let token = if t.enrollment_token.is_some() {
                        "active"
                    } else {
                        "revoked"
                    };
                    println!(
                        "{:<18} {:<8} {:<25} {}",
                        t.id,
                        token,
                        t.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
                        t.name
                    );
                }
            }
        }
        TenantCommand::RotateToken { id, json } => {
            let token = accounts.rotate_enrollment_token(&id)?;
            if json {
                println!("{:#}", json!({ "id": id, "enrollment_token": token }));
            } else {
                println!("enrollment token: {token}");
                println!("                  (shown once; the previous token no longer works)");
            }
        }
        TenantCommand::RevokeToken { id } => {
            accounts.revoke_enrollment_token(&id)?;
            println!("enrollment token of {id} revoked");
        }
        TenantCommand::AssignmentKey { id } => {
            let endorsement = accounts.assignment_key_endorsement(&id)?;
            println!("{}", serde_json::to_string_pretty(&endorsement)?);
        }
    }
    Ok(())
}
