//! `updater-server policy software …`: the agent's own version per platform
//! and group.

use ::catalog::assignment::DeploymentType;
use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::{
    deployment_name, group_field, parse_deployment, parse_version, print_json, resolve_group,
    tenant_fleet, view, Common, CopyArgs, Target,
};
use crate::cli::DataDir;
use crate::fleet::{Fleet, SoftwarePolicy, SoftwarePolicyInput, VersionSpec};

/// Fields of a software policy; on `edit`, only those given change.
#[derive(Debug, Clone, Default, Args)]
pub struct SoftwareFields {
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
    /// windows, macos or linux.
    #[arg(long)]
    pub platform: Option<String>,
    /// A custom group (id or name) [default: All Users].
    #[arg(long, conflicts_with = "all_users")]
    pub group: Option<String>,
    /// Apply to All Users (edit: drop the group).
    #[arg(long)]
    pub all_users: bool,
    /// `latest` (this server's agent version) or a pinned version; a running
    /// agent at or above it is never downgraded [create default: latest].
    #[arg(long)]
    pub version: Option<String>,
    /// optional, persistent or automatic (silent is firmware-only).
    #[arg(long, value_parser = parse_deployment)]
    pub deployment: Option<DeploymentType>,
    /// Disable the policy.
    #[arg(long, conflicts_with = "enable")]
    pub disable: bool,
    /// Edit: enable the policy.
    #[arg(long)]
    pub enable: bool,
}

/// Software policy commands.
#[derive(Debug, Subcommand)]
pub enum SoftwareCommand {
    /// Create a software policy.
    Create {
        /// The tenant and output.
        #[command(flatten)]
        common: Common,
        /// The policy.
        #[command(flatten)]
        fields: SoftwareFields,
    },
    /// Change the given fields of a software policy.
    Edit {
        /// The policy.
        #[command(flatten)]
        target: Target,
        /// The fields to change.
        #[command(flatten)]
        fields: SoftwareFields,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy a software policy (the copy is disabled until enabled).
    Copy(CopyArgs),
    /// Delete a software policy.
    Delete(Target),
    /// List a tenant's software policies.
    List(Common),
    /// Print one software policy as JSON.
    Show(Target),
}

impl SoftwareFields {
    /// Applies the given fields to `spec` (a new policy starts from defaults).
    fn apply(
        self,
        fleet: &Fleet,
        tenant: &str,
        spec: Option<SoftwarePolicyInput>,
    ) -> anyhow::Result<SoftwarePolicyInput> {
        let mut spec = match spec {
            Some(s) => s,
            None => SoftwarePolicyInput {
                name: self.name.clone().context("--name is required")?,
                platform: self.platform.clone().context("--platform is required")?,
                group: None,
                version: VersionSpec::Latest,
                deployment: DeploymentType::Optional,
                enabled: true,
            },
        };
        if let Some(n) = self.name {
            spec.name = n;
        }
        if let Some(p) = self.platform {
            spec.platform = p;
        }
        spec.group = group_field(fleet, tenant, self.group, self.all_users, spec.group)?;
        if let Some(v) = &self.version {
            spec.version = parse_version(v)?;
        }
        if let Some(d) = self.deployment {
            spec.deployment = d;
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

fn software_line(p: &SoftwarePolicy) -> String {
    let s = &p.spec;
    format!(
        "{:<18} {:<8} {:<18} {:<10} {:<10} {:<7} {}",
        p.id,
        s.platform,
        s.group.as_deref().unwrap_or(crate::fleet::ALL_USERS),
        s.version,
        deployment_name(s.deployment),
        if s.enabled { "yes" } else { "no" },
        s.name
    )
}

fn sw_out(p: &SoftwarePolicy, json: bool, done: &str) -> anyhow::Result<()> {
    if json {
        print_json(&view(&p.id, &p.spec, &p.stamps)?);
    } else {
        println!("software policy {} ({}) {done}", p.id, p.spec.name);
    }
    Ok(())
}

pub(super) fn run(data: &DataDir, command: SoftwareCommand) -> anyhow::Result<()> {
    let find = |f: &Fleet, t: &Target| -> anyhow::Result<SoftwarePolicy> {
        f.software_policies(&t.tenant)?
            .into_iter()
            .find(|p| p.id == t.id)
            .with_context(|| format!("no software policy {} in tenant {}", t.id, t.tenant))
    };
    match command {
        SoftwareCommand::Create { common, fields } => {
            let f = tenant_fleet(data, &common.tenant)?;
            let spec = fields.apply(&f, &common.tenant, None)?;
            let p = f.put_software_policy(&common.tenant, None, spec)?;
            sw_out(&p, common.json, "created")
        }
        SoftwareCommand::Edit {
            target,
            fields,
            json,
        } => {
            let f = tenant_fleet(data, &target.tenant)?;
            let old = find(&f, &target)?;
            let spec = fields.apply(&f, &target.tenant, Some(old.spec))?;
            let p = f.put_software_policy(&target.tenant, Some(&target.id), spec)?;
            sw_out(&p, json, "changed")
        }
        SoftwareCommand::Copy(c) => {
            let f = tenant_fleet(data, &c.target.tenant)?;
            find(&f, &c.target)?;
            let group = match c.group {
                Some(g) => Some(resolve_group(&f, &c.target.tenant, g)?),
                None => None,
            };
            let p = f.copy_software_policy(&c.target.tenant, &c.target.id, c.name, group)?;
            sw_out(&p, c.json, "created (disabled) as a copy")
        }
        SoftwareCommand::Delete(t) => {
            let f = tenant_fleet(data, &t.tenant)?;
            find(&f, &t)?;
            f.delete_software_policy(&t.tenant, &t.id)?;
            println!("software policy {} deleted", t.id);
            Ok(())
        }
        SoftwareCommand::List(c) => {
            let f = tenant_fleet(data, &c.tenant)?;
            let mut all = f.software_policies(&c.tenant)?;
            all.sort_by_key(|p| p.stamps.created_at);
            if c.json {
                let v: Vec<Value> = all
                    .iter()
                    .map(|p| view(&p.id, &p.spec, &p.stamps))
                    .collect::<anyhow::Result<_>>()?;
                print_json(&Value::Array(v));
            } else {
                println!(
                    "{:<18} {:<8} {:<18} {:<10} {:<10} {:<7} NAME",
                    "ID", "PLATFORM", "GROUP", "VERSION", "DEPLOY", "ENABLED"
                );
                for p in &all {
                    println!("{}", software_line(p));
                }
            }
            Ok(())
        }
        SoftwareCommand::Show(t) => {
            let f = tenant_fleet(data, &t.tenant)?;
            let p = find(&f, &t)?;
            print_json(&view(&p.id, &p.spec, &p.stamps)?);
            Ok(())
        }
    }
}
