//! `updater-server policy firmware …`: firmware per device model and group.

use ::catalog::assignment::{DeploymentType, DownloadSource};
use ::catalog::package::HardwareId;
use ::catalog::window::{parse_duration, MaintenanceWindow};
use anyhow::Context;
use clap::Args;

use super::{deployment_name, group_field, parse_deployment, parse_version, PolicyKind};
use crate::fleet::{FirmwarePolicy, FirmwarePolicyInput, Fleet, FleetError, Stamps, VersionSpec};

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
    /// Let a silent update of one piece of a multi-piece product run while
    /// another piece of it is attached.
    #[arg(long, conflicts_with = "multi_piece_guard")]
    pub no_multi_piece_guard: bool,
    /// Edit: hold a silent update while another piece of the product is
    /// attached again (the default).
    #[arg(long)]
    pub multi_piece_guard: bool,
    /// Install the pinned version even on devices that run a newer one (a
    /// rollback; never below a device's security counter).
    #[arg(long, conflicts_with = "no_allow_downgrade")]
    pub allow_downgrade: bool,
    /// Edit: refuse older versions again (the default).
    #[arg(long)]
    pub no_allow_downgrade: bool,
    /// Disable the policy (only enabled policies apply).
    #[arg(long, conflicts_with = "enable")]
    pub disable: bool,
    /// Edit: enable the policy.
    #[arg(long)]
    pub enable: bool,
}

impl FirmwareFields {
    /// Applies the given fields to `spec` (a new policy starts from defaults).
    fn apply_to(
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
                multi_piece_guard: true,
                allow_downgrade: false,
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
        if self.allow_downgrade {
            spec.allow_downgrade = true;
        }
        if self.no_allow_downgrade {
            spec.allow_downgrade = false;
        }
        if self.no_multi_piece_guard {
            spec.multi_piece_guard = false;
        }
        if self.multi_piece_guard {
            spec.multi_piece_guard = true;
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

/// Firmware policies for the shared commands.
pub(super) struct Firmware;

impl PolicyKind for Firmware {
    type Policy = FirmwarePolicy;
    type Spec = FirmwarePolicyInput;
    type Fields = FirmwareFields;
    const NAME: &'static str = "firmware";
    const HEADER: &'static str =
        "ID                 MODEL      GROUP              VERSION    DEPLOY     ENABLED NAME";

    fn parts(p: &FirmwarePolicy) -> (&str, &FirmwarePolicyInput, &Stamps) {
        (&p.id, &p.spec, &p.stamps)
    }

    fn name(p: &FirmwarePolicy) -> &str {
        &p.spec.name
    }

    fn list(f: &Fleet, tenant: &str) -> Result<Vec<FirmwarePolicy>, FleetError> {
        f.firmware_policies(tenant)
    }

    fn put(
        f: &Fleet,
        tenant: &str,
        id: Option<&str>,
        spec: FirmwarePolicyInput,
    ) -> Result<FirmwarePolicy, FleetError> {
        f.put_firmware_policy(tenant, id, spec)
    }

    fn copy(
        f: &Fleet,
        tenant: &str,
        id: &str,
        name: Option<String>,
        group: Option<String>,
    ) -> Result<FirmwarePolicy, FleetError> {
        f.copy_firmware_policy(tenant, id, name, group)
    }

    fn delete(f: &Fleet, tenant: &str, id: &str) -> Result<(), FleetError> {
        f.delete_firmware_policy(tenant, id)
    }

    fn apply(
        fields: FirmwareFields,
        f: &Fleet,
        tenant: &str,
        old: Option<FirmwarePolicyInput>,
    ) -> anyhow::Result<FirmwarePolicyInput> {
        fields.apply_to(f, tenant, old)
    }

    fn line(p: &FirmwarePolicy) -> String {
        firmware_line(p)
    }
}
