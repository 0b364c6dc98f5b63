//! `updater-server policy firmware|software …`: a tenant's policies, over
//! the same fleet service (and the same checks) as the HTTP API.

use ::catalog::assignment::{DeploymentType, DownloadSource};
use ::catalog::package::HardwareId;
use ::catalog::window::{parse_duration, MaintenanceWindow};
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

mod software;

pub use self::software::SoftwareCommand;
use super::DataDir;
use crate::auth::SessionPolicy;
use crate::fleet::{FirmwarePolicy, FirmwarePolicyInput, Fleet, Stamps, VersionSpec};

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

/// Fields of a firmware policy; on `edit`, only those given change.
#[derive(Debug, Clone, Default, Args)]
pub struct FirmwareFields {
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
    /// The device model, VID:PID (hex), e.g. 047F:C056; a model nobody has yet is fine.
    #[arg(long)]
    pub model: Option<HardwareId>,
    /// A custom group (id or name) [default: All Users].
    #[arg(long, conflicts_with = "all_users")]
    pub group: Option<String>,
    /// Apply to All Users (edit: drop the group).
    #[arg(long)]
    pub all_users: bool,
    /// `latest` or a pinned version [create default: latest].
    #[arg(long)]
    pub version: Option<String>,
    /// optional, persistent, automatic or silent [create default: optional].
    #[arg(long, value_parser = parse_deployment)]
    pub deployment: Option<DeploymentType>,
    /// Maintenance window start times: 5-field crontab(5), read in --window-tz.
    #[arg(long, requires_all = ["window_duration", "window_tz"])]
    pub window_cron: Option<String>,
    /// How long the window stays open: 4h, 90m, 1h30m (at most 7d).
    #[arg(long, requires = "window_cron")]
    pub window_duration: Option<String>,
    /// IANA time zone of the window (e.g. Europe/Berlin).
    #[arg(long, requires = "window_cron")]
    pub window_tz: Option<String>,
    /// Edit: drop the maintenance window.
    #[arg(long, conflicts_with = "window_cron")]
    pub no_window: bool,
    /// Download from a mirror on a network share (mounted or UNC path).
    #[arg(long, conflicts_with_all = ["web_url", "server_source"])]
    pub share: Option<String>,
    /// Download from a mirror on an internal web server.
    #[arg(long, conflicts_with = "server_source")]
    pub web_url: Option<String>,
    /// Download from this server (the default; edit: back from a mirror).
    #[arg(long)]
    pub server_source: bool,
    /// Do not fall back to the server when the mirror fails.
    #[arg(long, conflicts_with = "fallback")]
    pub no_fallback: bool,
    /// Edit: fall back to the server again.
    #[arg(long)]
    pub fallback: bool,
    /// How often a user may defer a persistent update.
    #[arg(long)]
    pub max_deferrals: Option<u32>,
    /// Edit: drop the deferral limit.
    #[arg(long, conflicts_with = "max_deferrals")]
    pub no_max_deferrals: bool,
    /// Disable the policy (only enabled policies apply).
    #[arg(long, conflicts_with = "enable")]
    pub disable: bool,
    /// Edit: enable the policy.
    #[arg(long)]
    pub enable: bool,
}

/// Firmware policy commands.
#[derive(Debug, Subcommand)]
pub enum FirmwareCommand {
    /// Create a firmware policy (refused: a deployment type the model's
    /// release cannot do, an unknown group, an invalid window).
    Create {
        /// The tenant and output.
        #[command(flatten)]
        common: Common,
        /// The policy.
        #[command(flatten)]
        fields: FirmwareFields,
    },
    /// Change the given fields of a firmware policy (same checks as create).
    Edit {
        /// The policy.
        #[command(flatten)]
        target: Target,
        /// The fields to change.
        #[command(flatten)]
        fields: FirmwareFields,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy a firmware policy (the copy is disabled until enabled).
    Copy(CopyArgs),
    /// Delete a firmware policy.
    Delete(Target),
    /// List a tenant's firmware policies.
    List(Common),
    /// Print one firmware policy as JSON.
    Show(Target),
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

/// A group id from an id or a unique name; anything else is passed on (and
/// refused by the fleet service as an unknown group).
fn resolve_group(fleet: &Fleet, tenant: &str, g: String) -> anyhow::Result<String> {
    let groups = fleet.groups(tenant)?;
    if groups.iter().any(|x| x.id == g) {
        return Ok(g);
    }
    let named: Vec<_> = groups
        .iter()
        .filter(|x| x.name.eq_ignore_ascii_case(&g))
        .collect();
    match named.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Ok(g),
        _ => bail!("several groups are named {g:?}: give the group id"),
    }
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

impl FirmwareFields {
    /// Applies the given fields to `spec` (a new policy starts from defaults).
    fn apply(
        self,
        fleet: &Fleet,
        tenant: &str,
        spec: Option<FirmwarePolicyInput>,
    ) -> anyhow::Result<FirmwarePolicyInput> {
        let mut spec = match spec {
            Some(s) => s,
            None => FirmwarePolicyInput {
                name: self.name.clone().context("--name is required")?,
                model: self.model.context("--model is required")?,
                group: None,
                version: VersionSpec::Latest,
                deployment: DeploymentType::Optional,
                window: None,
                source: DownloadSource::Server,
                fallback_to_server: true,
                enabled: true,
                max_deferrals: None,
            },
        };
        if let Some(n) = self.name {
            spec.name = n;
        }
        if let Some(m) = self.model {
            spec.model = m;
        }
        spec.group = group_field(fleet, tenant, self.group, self.all_users, spec.group)?;
        if let Some(v) = &self.version {
            spec.version = parse_version(v)?;
        }
        if let Some(d) = self.deployment {
            spec.deployment = d;
        }
        if let (Some(cron), Some(duration), Some(tz)) =
            (&self.window_cron, &self.window_duration, &self.window_tz)
        {
            let d = parse_duration(duration).context("invalid maintenance window")?;
            spec.window =
                Some(MaintenanceWindow::new(cron, d, tz).context("invalid maintenance window")?);
        }
        if self.no_window {
            spec.window = None;
        }
        if let Some(path) = self.share {
            spec.source = DownloadSource::Share { path };
        } else if let Some(url) = self.web_url {
            spec.source = DownloadSource::Web { url };
        } else if self.server_source {
            spec.source = DownloadSource::Server;
        }
        if self.no_fallback {
            spec.fallback_to_server = false;
        }
        if self.fallback {
            spec.fallback_to_server = true;
        }
        if self.max_deferrals.is_some() {
            spec.max_deferrals = self.max_deferrals;
        }
        if self.no_max_deferrals {
            spec.max_deferrals = None;
        }
        if self.disable {
            spec.enabled = false;
        }
        if self.enable {
            spec.enabled = true;
        }
        Ok(spec)
    }
}

fn firmware_line(p: &FirmwarePolicy) -> String {
    let s = &p.spec;
    format!(
        "{:<18} {:<10} {:<18} {:<10} {:<10} {:<7} {}",
        p.id,
        s.model.model_key(),
        s.group.as_deref().unwrap_or(crate::fleet::ALL_USERS),
        s.version,
        deployment_name(s.deployment),
        if s.enabled { "yes" } else { "no" },
        s.name
    )
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
        PolicyCommand::Firmware { command } => firmware(data, command),
        PolicyCommand::Software { command } => software::run(data, command),
    }
}

fn fw_out(p: &FirmwarePolicy, json: bool, done: &str) -> anyhow::Result<()> {
    if json {
        print_json(&view(&p.id, &p.spec, &p.stamps)?);
    } else {
        println!("firmware policy {} ({}) {done}", p.id, p.spec.name);
    }
    Ok(())
}

fn firmware(data: &DataDir, command: FirmwareCommand) -> anyhow::Result<()> {
    let find = |f: &Fleet, t: &Target| -> anyhow::Result<FirmwarePolicy> {
        f.firmware_policies(&t.tenant)?
            .into_iter()
            .find(|p| p.id == t.id)
            .with_context(|| format!("no firmware policy {} in tenant {}", t.id, t.tenant))
    };
    match command {
        FirmwareCommand::Create { common, fields } => {
            let f = tenant_fleet(data, &common.tenant)?;
            let spec = fields.apply(&f, &common.tenant, None)?;
            let p = f.put_firmware_policy(&common.tenant, None, spec)?;
            fw_out(&p, common.json, "created")
        }
        FirmwareCommand::Edit {
            target,
            fields,
            json,
        } => {
            let f = tenant_fleet(data, &target.tenant)?;
            let old = find(&f, &target)?;
            let spec = fields.apply(&f, &target.tenant, Some(old.spec))?;
            let p = f.put_firmware_policy(&target.tenant, Some(&target.id), spec)?;
            fw_out(&p, json, "changed")
        }
        FirmwareCommand::Copy(c) => {
            let f = tenant_fleet(data, &c.target.tenant)?;
            find(&f, &c.target)?;
            let group = match c.group {
                Some(g) => Some(resolve_group(&f, &c.target.tenant, g)?),
                None => None,
            };
            let p = f.copy_firmware_policy(&c.target.tenant, &c.target.id, c.name, group)?;
            fw_out(&p, c.json, "created (disabled) as a copy")
        }
        FirmwareCommand::Delete(t) => {
            let f = tenant_fleet(data, &t.tenant)?;
            find(&f, &t)?;
            f.delete_firmware_policy(&t.tenant, &t.id)?;
            println!("firmware policy {} deleted", t.id);
            Ok(())
        }
        FirmwareCommand::List(c) => {
            let f = tenant_fleet(data, &c.tenant)?;
            let mut all = f.firmware_policies(&c.tenant)?;
            all.sort_by_key(|p| p.stamps.created_at);
            if c.json {
                let v: Vec<Value> = all
                    .iter()
                    .map(|p| view(&p.id, &p.spec, &p.stamps))
                    .collect::<anyhow::Result<_>>()?;
                print_json(&Value::Array(v));
            } else {
                println!(
                    "{:<18} {:<10} {:<18} {:<10} {:<10} {:<7} NAME",
                    "ID", "MODEL", "GROUP", "VERSION", "DEPLOY", "ENABLED"
                );
                for p in &all {
                    println!("{}", firmware_line(p));
                }
            }
            Ok(())
        }
        FirmwareCommand::Show(t) => {
            let f = tenant_fleet(data, &t.tenant)?;
            let p = find(&f, &t)?;
            print_json(&view(&p.id, &p.spec, &p.stamps)?);
            Ok(())
        }
    }
}
