//! `updater-server policy firmware|software …`: a tenant's policies, over
//! the same fleet service (and the same checks) as the HTTP API.

use ::catalog::assignment::DeploymentType;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

mod firmware;
mod software;

use self::firmware::Firmware;
pub use self::firmware::FirmwareFields;
use self::software::Software;
pub use self::software::SoftwareFields;
use super::DataDir;
use crate::auth::SessionPolicy;
use crate::fleet::{Fleet, FleetError, Stamps, VersionSpec};

/// `policy` commands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Firmware policies (per device model and group).
    Firmware {
        /// The firmware policy command.
        #[command(subcommand)]
        command: FirmwareCommand,
    },
    /// Software policies (the agent's own version, per platform and group).
    Software {
        /// The software policy command.
        #[command(subcommand)]
        command: SoftwareCommand,
    },
}

/// The tenant, and JSON output.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// The tenant id.
    #[arg(long)]
    pub tenant: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A policy picked by id.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The tenant id.
    #[arg(long)]
    pub tenant: String,
    /// The policy id.
    pub id: String,
}

/// Copy options.
#[derive(Debug, Clone, Args)]
pub struct CopyArgs {
    /// The tenant id and the policy to copy.
    #[command(flatten)]
    pub target: Target,
    /// The copy's name [default: "Copy of <name>"].
    #[arg(long)]
    pub name: Option<String>,
    /// The copy's group (id or name) [default: the same].
    #[arg(long)]
    pub group: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The commands of either kind of policy (`F`: its fields).
#[derive(Debug, Subcommand)]
pub enum PolicyAction<F: Args> {
    /// Create a policy (refused when a check fails: an unknown group; for
    /// firmware also a deployment type the model's release cannot do or an
    /// invalid window).
    Create {
        /// The tenant and output.
        #[command(flatten)]
        common: Common,
        /// The policy.
        #[command(flatten)]
        fields: F,
    },
    /// Change the given fields of a policy (same checks as create).
    Edit {
        /// The policy.
        #[command(flatten)]
        target: Target,
        /// The fields to change.
        #[command(flatten)]
        fields: F,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy a policy (the copy is disabled until enabled).
    Copy(CopyArgs),
    /// Delete a policy.
    Delete(Target),
    /// List a tenant's policies.
    List(Common),
    /// Print one policy as JSON.
    Show(Target),
}

/// Firmware policy commands.
pub type FirmwareCommand = PolicyAction<FirmwareFields>;
/// Software policy commands.
pub type SoftwareCommand = PolicyAction<SoftwareFields>;

/// What differs between firmware and software policies; the commands are
/// the same ([`run_kind`]).
pub(super) trait PolicyKind {
    /// A stored policy.
    type Policy;
    /// The policy as the admin wrote it.
    type Spec: serde::Serialize + Clone;
    /// The command-line fields.
    type Fields;
    /// `firmware` or `software`, for messages.
    const NAME: &'static str;
    /// The `list` table's header.
    const HEADER: &'static str;
    /// Id, spec and timestamps.
    fn parts(p: &Self::Policy) -> (&str, &Self::Spec, &Stamps);
    /// The display name.
    fn name(p: &Self::Policy) -> &str;
    /// A tenant's policies.
    fn list(f: &Fleet, tenant: &str) -> Result<Vec<Self::Policy>, FleetError>;
    /// Creates (`id` = `None`) or replaces a policy.
    fn put(
        f: &Fleet,
        tenant: &str,
        id: Option<&str>,
        spec: Self::Spec,
    ) -> Result<Self::Policy, FleetError>;
    /// Copies a policy.
    fn copy(
        f: &Fleet,
        tenant: &str,
        id: &str,
        name: Option<String>,
        group: Option<String>,
    ) -> Result<Self::Policy, FleetError>;
    /// Deletes a policy.
    fn delete(f: &Fleet, tenant: &str, id: &str) -> Result<(), FleetError>;
    /// The given fields applied to `old` (a new policy starts from defaults).
    fn apply(
        fields: Self::Fields,
        f: &Fleet,
        tenant: &str,
        old: Option<Self::Spec>,
    ) -> anyhow::Result<Self::Spec>;
    /// One `list` row.
    fn line(p: &Self::Policy) -> String;
}

fn parse_deployment(s: &str) -> Result<DeploymentType, String> {
    serde_json::from_value(Value::String(s.to_ascii_lowercase()))
        .map_err(|_| format!("{s:?}: expected optional, persistent, automatic or silent"))
}

fn parse_version(s: &str) -> anyhow::Result<VersionSpec> {
    serde_json::from_value(Value::String(s.to_owned()))
        .map_err(|e| anyhow::anyhow!("--version: {e}"))
}

/// The fleet service of an existing tenant.
pub(super) fn tenant_fleet(data: &DataDir, tenant: &str) -> anyhow::Result<Fleet> {
    let accounts = data.accounts(SessionPolicy::default())?;
    if accounts.records().tenant(tenant)?.is_none() {
        bail!("no tenant {tenant}");
    }
    Ok(Fleet::new(accounts, data.catalog(), data.keys()))
}

/// A group id from an id or a unique name ([`Fleet::group_id`]).
fn resolve_group(fleet: &Fleet, tenant: &str, g: String) -> anyhow::Result<String> {
    Ok(fleet.group_id(tenant, &g)?)
}

/// The group field after `--group` / `--all-users`.
fn group_field(
    fleet: &Fleet,
    tenant: &str,
    group: Option<String>,
    all_users: bool,
    old: Option<String>,
) -> anyhow::Result<Option<String>> {
    Ok(match (group, all_users) {
        (Some(g), _) => Some(resolve_group(fleet, tenant, g)?),
        (None, true) => None,
        (None, false) => old,
    })
}

/// A policy as the API shows it: its fields flat, with id and timestamps.
fn view<S: serde::Serialize>(id: &str, spec: &S, stamps: &Stamps) -> anyhow::Result<Value> {
    let mut v = serde_json::to_value(spec)?;
    v["id"] = json!(id);
    v["created_at"] = json!(stamps.created_at);
    v["updated_at"] = json!(stamps.updated_at);
    Ok(v)
}

fn print_json(v: &Value) {
    println!("{v:#}");
}

fn deployment_name(d: DeploymentType) -> &'static str {
    match d {
        DeploymentType::Optional => "optional",
        DeploymentType::Persistent => "persistent",
        DeploymentType::Automatic => "automatic",
        DeploymentType::Silent => "silent",
    }
}

/// Runs a `policy` command.
pub(super) fn run(data: &DataDir, command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Firmware { command } => run_kind::<Firmware>(data, command),
        PolicyCommand::Software { command } => run_kind::<Software>(data, command),
    }
}

fn out<K: PolicyKind>(p: &K::Policy, json: bool, done: &str) -> anyhow::Result<()> {
    let (id, spec, stamps) = K::parts(p);
    if json {
        print_json(&view(id, spec, stamps)?);
    } else {
        println!("{} policy {id} ({}) {done}", K::NAME, K::name(p));
    }
    Ok(())
}

fn find<K: PolicyKind>(f: &Fleet, t: &Target) -> anyhow::Result<K::Policy> {
    K::list(f, &t.tenant)?
        .into_iter()
        .find(|p| K::parts(p).0 == t.id)
        .with_context(|| format!("no {} policy {} in tenant {}", K::NAME, t.id, t.tenant))
}

/// The one dispatcher of both kinds of policy.
fn run_kind<K: PolicyKind>(data: &DataDir, action: PolicyAction<K::Fields>) -> anyhow::Result<()>
where
    K::Fields: Args,
{
    match action {
        PolicyAction::Create { common, fields } => {
            let f = tenant_fleet(data, &common.tenant)?;
            let spec = K::apply(fields, &f, &common.tenant, None)?;
            let p = K::put(&f, &common.tenant, None, spec)?;
            out::<K>(&p, common.json, "created")
        }
        PolicyAction::Edit {
            target,
            fields,
            json,
        } => {
            let f = tenant_fleet(data, &target.tenant)?;
            let old = find::<K>(&f, &target)?;
            let spec = K::apply(fields, &f, &target.tenant, Some(K::parts(&old).1.clone()))?;
            let p = K::put(&f, &target.tenant, Some(&target.id), spec)?;
            out::<K>(&p, json, "changed")
        }
        PolicyAction::Copy(c) => {
            let f = tenant_fleet(data, &c.target.tenant)?;
            find::<K>(&f, &c.target)?;
            let group = match c.group {
                Some(g) => Some(resolve_group(&f, &c.target.tenant, g)?),
                None => None,
            };
            let p = K::copy(&f, &c.target.tenant, &c.target.id, c.name, group)?;
            out::<K>(&p, c.json, "created (disabled) as a copy")
        }
        PolicyAction::Delete(t) => {
            let f = tenant_fleet(data, &t.tenant)?;
            find::<K>(&f, &t)?;
            K::delete(&f, &t.tenant, &t.id)?;
            println!("{} policy {} deleted", K::NAME, t.id);
            Ok(())
        }
        PolicyAction::List(c) => {
            let f = tenant_fleet(data, &c.tenant)?;
            let mut all = K::list(&f, &c.tenant)?;
            all.sort_by_key(|p| K::parts(p).2.created_at);
            if c.json {
                let v: Vec<Value> = all
                    .iter()
                    .map(|p| {
                        let (id, spec, stamps) = K::parts(p);
                        view(id, spec, stamps)
                    })
                    .collect::<anyhow::Result<_>>()?;
                print_json(&Value::Array(v));
            } else {
                println!("{}", K::HEADER);
                for p in &all {
                    println!("{}", K::line(p));
                }
            }
            Ok(())
        }
        PolicyAction::Show(t) => {
            let f = tenant_fleet(data, &t.tenant)?;
            let p = find::<K>(&f, &t)?;
            let (id, spec, stamps) = K::parts(&p);
            print_json(&view(id, spec, stamps)?);
            Ok(())
        }
    }
}
