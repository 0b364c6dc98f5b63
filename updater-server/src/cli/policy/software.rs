//! `updater-server policy software …`: the agent's own version per platform
//! and group.

use ::catalog::assignment::DeploymentType;
use anyhow::Context;
use clap::Args;

use super::{deployment_name, group_field, parse_deployment, parse_version, PolicyKind};
use crate::fleet::{Fleet, FleetError, SoftwarePolicy, SoftwarePolicyInput, Stamps, VersionSpec};

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

impl SoftwareFields {
    /// Applies the given fields to `spec` (a new policy starts from defaults).
    fn apply_to(
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

/// Software policies for the shared commands.
pub(super) struct Software;

impl PolicyKind for Software {
    type Policy = SoftwarePolicy;
    type Spec = SoftwarePolicyInput;
    type Fields = SoftwareFields;
    const NAME: &'static str = "software";
    const HEADER: &'static str =
        "ID                 PLATFORM GROUP              VERSION    DEPLOY     ENABLED NAME";

    fn parts(p: &SoftwarePolicy) -> (&str, &SoftwarePolicyInput, &Stamps) {
        (&p.id, &p.spec, &p.stamps)
    }

    fn name(p: &SoftwarePolicy) -> &str {
        &p.spec.name
    }

    fn list(f: &Fleet, tenant: &str) -> Result<Vec<SoftwarePolicy>, FleetError> {
        f.software_policies(tenant)
    }

    fn put(
        f: &Fleet,
        tenant: &str,
        id: Option<&str>,
        spec: SoftwarePolicyInput,
    ) -> Result<SoftwarePolicy, FleetError> {
        f.put_software_policy(tenant, id, spec)
    }

    fn copy(
        f: &Fleet,
        tenant: &str,
        id: &str,
        name: Option<String>,
        group: Option<String>,
    ) -> Result<SoftwarePolicy, FleetError> {
        f.copy_software_policy(tenant, id, name, group)
    }

    fn delete(f: &Fleet, tenant: &str, id: &str) -> Result<(), FleetError> {
        f.delete_software_policy(tenant, id)
    }

    fn apply(
        fields: SoftwareFields,
        f: &Fleet,
        tenant: &str,
        old: Option<SoftwarePolicyInput>,
    ) -> anyhow::Result<SoftwarePolicyInput> {
        fields.apply_to(f, tenant, old)
    }

    fn line(p: &SoftwarePolicy) -> String {
        software_line(p)
    }
}
