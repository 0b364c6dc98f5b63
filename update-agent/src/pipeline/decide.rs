//! Whether a staged update may start now: the deployment type's rule
//! (prompt answered, window open with time enough, model capable), then the
//! guards (host awake, device not in a call, no other piece of the same
//! multi-piece product for a silent update: `pieces`). Every "not now" is a sentence for people; it is
//! stored as the update's reason, shown by `status`, sent at check-in and
//! attached to the prompt.

use std::cell::Cell;
use std::collections::BTreeMap;

use catalog::assignment::{Assignment, AssignmentSet, DeploymentType};
use catalog::package::TargetFirmware;
use catalog::protocol::DeviceReport;
use catalog::window::{format_duration, MaintenanceWindow};
use chrono::{DateTime, Duration, Utc};

use super::Pipeline;
use crate::devices::DeviceBackend;
use crate::prompts::{prompt_id, Prompt, PromptKind, PromptState, PromptSubject};
use crate::state::StateError;

/// The install time assumed when the signed target gives none: a fixed
/// minute (detach, re-enumeration, manifestation) plus the image at 16 KiB/s,
/// a slow full-speed DFU download.
pub fn estimated_install_duration(length: u64) -> Duration {
    Duration::seconds(60 + i64::try_from(length / 16_384).unwrap_or(i64::MAX / 2))
}

/// How long installing `fw` (an image of `length` bytes) takes: the signed
/// `install_duration_secs` of the release, else [`estimated_install_duration`].
pub fn install_duration(fw: &TargetFirmware, length: u64) -> Duration {
    match fw.install_duration_secs {
        0 => estimated_install_duration(length),
        s => Duration::seconds(i64::from(s)),
    }
}

/// The silent rule at `now`: inside a window with at least `install` left.
/// `None` means it may start.
pub fn silent_rule(
    window: Option<&MaintenanceWindow>,
    install: Duration,
    now: DateTime<Utc>,
) -> Option<String> {
    let Some(w) = window else {
        return Some("silent update without a maintenance window".into());
    };
    match w.active_at(now) {
        None => Some(format!(
            "silent update: outside the maintenance window (next opens {})",
            w.next_or_current(now).start.to_rfc3339()
        )),
        Some(o) if o.end - now < install => {
            let next = w
                .occurrences(now)
                .find(|n| n.start > now)
                .map_or_else(|| "-".to_owned(), |n| n.start.to_rfc3339());
            Some(format!(
                "silent update: {} left in the maintenance window, the install takes about {}; retried in the next window (opens {next})",
                format_duration(o.end - now),
                format_duration(install)
            ))
        }
        Some(_) => None,
    }
}

/// Why the server gave attached devices no assignment, by device (the
/// signed document's `not_assigned` object: "no policy: …", "up to date: …").
/// The text is the server's; control characters are dropped and each
/// reason is clipped, since it is printed on the host's terminal.
pub fn not_assigned(set: &AssignmentSet) -> BTreeMap<String, String> {
    set.extra
        .get("not_assigned")
        .and_then(|v| v.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(device, why)| {
                    let text: String = why.as_str()?.chars().filter(|c| !c.is_control()).collect();
                    Some((device.clone(), crate::events::clip_to(&text, MAX_REASON)))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The longest reason [`not_assigned`] keeps.
const MAX_REASON: usize = 512;

/// The deferral limits of persistent assignments, by device (the signed
/// document's `max_deferrals` object, filled by the server from the policy).
pub fn max_deferrals(set: &AssignmentSet) -> BTreeMap<String, u32> {
    set.extra
        .get("max_deferrals")
        .and_then(|v| v.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), u32::try_from(v.as_u64()?).ok()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// What one pass knows beyond the assignment.
#[derive(Debug)]
pub(super) struct PassContext {
    /// A poll (or a login): persistent prompts are shown again.
    pub(super) remind: bool,
    /// Everything attached at the start of the pass.
    pub(super) devices: Vec<DeviceReport>,
    /// Deferral limits by device.
    pub(super) max_deferrals: BTreeMap<String, u32>,
    /// Devices whose policy lets a silent update run beside another piece.
    pub(super) multi_piece_guard_off: std::collections::BTreeSet<String>,
    /// Product families from the verified catalog.
    pub(super) families: super::pieces::ProductFamilies,
    /// Set when an update is held back only by a guard (retry soon).
    pub(super) guarded: Cell<bool>,
}

/// The guards for flashing `device` now; the first that holds it back.
/// `other_piece`: another attached piece of the same multi-piece product
/// ([`super::pieces::other_piece`]), which holds back a silent update.
pub fn guard(
    deployment: DeploymentType,
    device: &DeviceReport,
    other_piece: Option<&DeviceReport>,
    power: crate::schedule::host::PowerState,
) -> Option<String> {
    if let Some(why) = power.guard() {
        return Some(why.to_owned());
    }
    if device.in_call {
        return Some("the device is in a call; no update starts during a call".into());
    }
    if deployment == DeploymentType::Silent {
        if let Some(other) = other_piece {
            return Some(format!(
                "another piece of the same product is attached ({}, {}); a silent update of a multi-piece product waits until it is the only one, and is retried when it is unplugged (schedule the pieces in different windows, or turn the policy's multi-piece guard off)",
                other.identity(),
                other.product.as_deref().unwrap_or("unknown product")
            ));
        }
    }
    None
}

impl<B> Pipeline<B> {
    /// Uses `host` (power guard) and `notifier` (prompts) from now on.
    pub fn set_hooks(
        &mut self,
        host: std::sync::Arc<dyn crate::schedule::host::HostState>,
        notifier: std::sync::Arc<dyn crate::prompts::Notifier>,
    ) {
        self.host = host;
        self.notifier = notifier;
    }
}

/// The automatic rule: only on models that support it, and only for
/// devices attached when the agent started (`started_with`: the devices of
/// the first pass; `None` before it, when everything attached counts).
pub(super) fn automatic_rule(
    fw: &TargetFirmware,
    started_with: Option<&std::collections::HashSet<String>>,
    device: &str,
) -> Option<String> {
    if !fw.automatic_capable {
        return Some(format!(
            "{} {} does not support automatic updates; skipped",
            fw.vendor, fw.model
        ));
    }
    if started_with.is_some_and(|s| !s.contains(device)) {
        return Some(
            "automatic updates apply to devices attached when the agent starts; this one was \
             plugged in later and is updated at the next start"
                .into(),
        );
    }
    None
}

impl<B: DeviceBackend> Pipeline<B> {
    /// `None` when `a` may be flashed onto `device` now, else why not.
    pub(super) fn gate(
        &self,
        a: &Assignment,
        fw: &TargetFirmware,
        device: &DeviceReport,
        ctx: &PassContext,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StateError> {
        let digest = a.sha256.to_hex();
        if let Some(why) = self.rule(a, fw, device, ctx, now)? {
            return Ok(Some(why));
        }
        // The devices as they are now (a call may have started during the download).
        let current = self
            .backend
            .inventory()
            .unwrap_or_else(|_| ctx.devices.clone());
        let me = device.identity();
        let device = current
            .iter()
            .find(|d| d.identity() == me)
            .unwrap_or(device);
        let other_piece = if ctx.multi_piece_guard_off.contains(&a.device) {
            None
        } else {
            super::pieces::other_piece(
                device,
                fw.product_family.as_deref(),
                &current,
                &ctx.families,
            )
        };
        let blocked = guard(a.deployment, device, other_piece, self.host.power());
        for kind in [PromptKind::UpdateAvailable, PromptKind::UpdateRequired] {
            if let Some(mut p) = self.state.prompt(&prompt_id(kind, &a.device, &digest))? {
                if p.blocked_by != blocked {
                    p.blocked_by.clone_from(&blocked);
                    self.state.put_prompt(&p)?;
                }
            }
        }
        if blocked.is_some() {
            ctx.guarded.set(true);
        }
        Ok(blocked)
    }

    /// The deployment type's rule.
    fn rule(
        &self,
        a: &Assignment,
        fw: &TargetFirmware,
        device: &DeviceReport,
        ctx: &PassContext,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StateError> {
        let kind = match a.deployment {
            DeploymentType::Automatic => {
                return Ok(automatic_rule(
                    fw,
                    self.started_with.as_ref(),
                    &device.identity(),
                ))
            }
            DeploymentType::Silent => {
                let install = install_duration(fw, a.length);
                return Ok(silent_rule(a.window.as_ref(), install, now));
            }
            DeploymentType::Optional => PromptKind::UpdateAvailable,
            DeploymentType::Persistent => PromptKind::UpdateRequired,
        };
        let digest = a.sha256.to_hex();
        let max = (kind == PromptKind::UpdateRequired)
            .then(|| ctx.max_deferrals.get(&a.device).copied())
            .flatten();
        let label = match kind {
            PromptKind::UpdateAvailable => "optional",
            _ => "persistent",
        };
        let waiting = format!("waiting for user consent ({label} update)");
        let existing = self.state.prompt(&prompt_id(kind, &a.device, &digest))?;
        let mut p = match existing {
            None => {
                let subject = PromptSubject {
                    device: &a.device,
                    product: device.product.as_deref(),
                    target: &a.target_name,
                    version: &fw.version,
                    digest: &digest,
                };
                let p = Prompt::new(kind, &subject, max, now);
                self.show(p, now)?;
                return Ok(Some(waiting));
            }
            Some(p) => p,
        };
        match p.state {
            PromptState::Accepted => return Ok(None),
            PromptState::Declined => {
                return Ok(Some(
                    "declined by the user; this version is not offered again".into(),
                ))
            }
            PromptState::Open | PromptState::Deferred | PromptState::Done => {}
        }
        if p.max_deferrals != max {
            p.max_deferrals = max;
            self.state.put_prompt(&p)?;
        }
        // Deferred as often as allowed: installed at the next poll.
        if let Some(m) = max.filter(|m| p.deferrals >= *m && ctx.remind) {
            tracing::info!(device = %a.device, "deferred {m} times, the limit: installing");
            return Ok(None);
        }
        let deferred = p.deferrals;
        // Asked again at the next poll when deferred; a persistent one at every poll.
        let again =
            ctx.remind && (p.state != PromptState::Open || kind == PromptKind::UpdateRequired);
        if again {
            p.state = PromptState::Open;
            self.show(p, now)?;
        }
        Ok(Some(match (kind, max) {
            (PromptKind::UpdateRequired, Some(m)) if deferred > 0 => {
                format!("{waiting}: deferred {deferred} of {m} times")
            }
            (PromptKind::UpdateRequired, None) if deferred > 0 => {
                format!("{waiting}: deferred {deferred} times")
            }
            _ => waiting,
        }))
    }

    /// Commits `p` as shown at `now`, then notifies.
    pub(super) fn show(&self, mut p: Prompt, now: DateTime<Utc>) -> Result<(), StateError> {
        p.notified_at = Some(now);
        self.state.put_prompt(&p)?;
        self.notifier.notify(&p);
        Ok(())
    }

    /// Shows every open prompt again (a user logged in): persistent updates
    /// and replug requests.
    pub fn remind(&self, now: DateTime<Utc>) -> Result<usize, StateError> {
        let mut n = 0;
        for p in self.state.shown_prompts()? {
            if matches!(p.kind, PromptKind::UpdateRequired | PromptKind::Replug) {
                let mut p = p;
                p.state = PromptState::Open;
                self.show(p, now)?;
                n += 1;
            }
        }
        Ok(n)
    }
}
