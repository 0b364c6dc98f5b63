//! The update pipeline: for each verified assignment whose device is
//! attached, the signed catalog target (TUF refresh), the agreement check
//! between assignment and target, a verified download from the assigned
//! source (with fallback to the server), staging, the deployment rule, the
//! flash and the version read-back. Every state change is committed (with
//! its event) before the next step, so a crash at any point leaves a state
//! the next start can act on: [`Pipeline::recover`] re-flashes devices left
//! in DFU mode from their staged image.

mod decide;
mod download;
mod install;
pub mod pieces;

use decide::PassContext;
pub use decide::{
    estimated_install_duration, guard, install_duration, max_deferrals, not_assigned, silent_rule,
};

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

#[cfg(test)]
use catalog::assignment::DeploymentType;
use catalog::assignment::{
    check_against_target, check_endorsed, check_not_older, Assignment, AssignmentSet,
    EndorsementError,
};
use catalog::package::TargetFirmware;
use catalog::protocol::{DeviceReport, DfuState};
use catalog::tuf::{Fetcher, PublicKey, TargetFile, TufError, Updater, UpdaterConfig};
use chrono::{DateTime, Utc};
use dfu::host::FlashOptions;

use crate::devices::{BackendError, DeviceBackend};
use crate::events::{tamper_event, update_event};
use crate::fetch::RangeFetch;
use crate::flasher;
use crate::prompts::{LogNotifier, Notifier};
use crate::schedule::host::{AlwaysAwake, HostState};
use crate::staging::{StageError, Staging};
use crate::state::{InstalledFirmware, StagedUpdate, State, StateError, UpdateStatus};

/// Where metadata and images come from.
pub struct Remote {
    /// The repository's metadata.
    pub metadata: Box<dyn Fetcher + Send>,
    /// Its base URL (`{server}/repo/metadata`).
    pub metadata_base: String,
    /// The server's targets.
    pub server: Box<dyn RangeFetch + Send>,
    /// The repository base (`{server}/repo`): targets are `{base}/targets/<consistent path>`.
    pub server_base: String,
    /// Web mirrors (HTTP): images and their mirrored metadata.
    pub web: Box<dyn crate::fetch::MirrorFetch + Send>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("metadata_base", &self.metadata_base)
            .field("server_base", &self.server_base)
            .finish_non_exhaustive()
    }
}

/// What became of one assignment in a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Flashed and read back.
    Installed {
        /// The version the device reports.
        version: String,
    },
    /// Already done earlier (or the device already runs it).
    UpToDate,
    /// Flashed; waiting for the user to unplug and replug the device.
    AwaitingReplug,
    /// Staged; waiting (see the reason).
    Waiting(String),
    /// Refused or failed (see the reason); recorded and retried at the next pass.
    Failed(String),
    /// The device is not attached.
    NotAttached,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Installed { version } => write!(f, "installed {version} (read back)"),
            Outcome::UpToDate => f.write_str("up to date"),
            Outcome::AwaitingReplug => {
                f.write_str("flashed; unplug and replug the device to finish")
            }
            Outcome::Waiting(why) => write!(f, "waiting: {why}"),
            Outcome::Failed(why) => write!(f, "failed: {why}"),
            Outcome::NotAttached => f.write_str("not attached"),
        }
    }
}

/// What a pass did, per device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Device identity → outcome.
    pub outcomes: BTreeMap<String, Outcome>,
    /// Some update was held back only by a guard (call, power, another
    /// piece): worth another pass soon rather than at the next poll.
    pub retry_soon: bool,
}

impl PassReport {
    /// The failures, as `device: reason`.
    pub fn failures(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .filter_map(|(d, o)| match o {
                Outcome::Failed(why) => Some(format!("{d}: {why}")),
                _ => None,
            })
            .collect()
    }
}

/// Why the signed targets of a pass could not be used.
#[derive(Debug, thiserror::Error)]
enum SignedTargetsError {
    /// The metadata did not refresh.
    #[error(transparent)]
    Metadata(#[from] TufError),
    /// The verified targets no longer vouch for the assignment key.
    #[error(transparent)]
    NotEndorsed(#[from] EndorsementError),
}

/// Why a pass could not run at all (per-assignment failures are outcomes).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The state database: nothing may go on without it.
    #[error(transparent)]
    State(#[from] StateError),
    /// Devices could not be listed.
    #[error("device scan failed: {0}")]
    Backend(#[from] BackendError),
    /// The staging directory.
    #[error(transparent)]
    Staging(#[from] StageError),
}

/// The pipeline over one device backend.
pub struct Pipeline<B> {
    state: Arc<State>,
    backend: B,
    staging: Staging,
    metadata_dir: PathBuf,
    remote: Remote,
    flash: FlashOptions,
    host: Arc<dyn HostState>,
    notifier: Arc<dyn Notifier>,
    /// Devices attached at this process's first pass (its start): automatic
    /// updates apply to them only.
    started_with: Option<HashSet<String>>,
    /// The key the assignment sets are verified with: acted on only while
    /// the signed catalog endorses it for the set's tenant.
    assignment_key: PublicKey,
}

impl<B> std::fmt::Debug for Pipeline<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("state", &self.state)
            .field("staging", &self.staging)
            .field("metadata_dir", &self.metadata_dir)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

/// Which update a record is about.
#[derive(Debug, Clone)]
struct Subject {
    digest: String,
    device: String,
    target: String,
}

impl From<&Assignment> for Subject {
    fn from(a: &Assignment) -> Self {
        Self {
            digest: a.sha256.to_hex(),
            device: a.device.clone(),
            target: a.target_name.clone(),
        }
    }
}

impl From<&StagedUpdate> for Subject {
    fn from(u: &StagedUpdate) -> Self {
        Self {
            digest: u.digest.clone(),
            device: u.device.clone(),
            target: u.target.clone(),
        }
    }
}

/// The version part of a target name (`vendor/model/version/file`).
fn version_of(target: &str) -> &str {
    target
        .split('/')
        .nth(2)
        .filter(|v| !v.is_empty())
        .unwrap_or("unknown")
}

impl<B: DeviceBackend> Pipeline<B> {
    /// A pipeline staging into `staging`, with the TUF client's metadata in
    /// `metadata_dir` (the pinned root is there).
    pub fn new(
        state: Arc<State>,
        backend: B,
        staging: Staging,
        metadata_dir: PathBuf,
        remote: Remote,
        flash: FlashOptions,
        assignment_key: PublicKey,
    ) -> Self {
        Self {
            state,
            backend,
            staging,
            metadata_dir,
            remote,
            flash,
            host: Arc::new(AlwaysAwake),
            notifier: Arc::new(LogNotifier),
            started_with: None,
            assignment_key,
        }
    }

    /// Remembers the devices of the first pass after the agent started.
    pub(super) fn note_start(&mut self, devices: &[DeviceReport]) {
        if self.started_with.is_none() {
            self.started_with = Some(devices.iter().map(DeviceReport::identity).collect());
        }
    }

    /// Uses `host` for the power guard (default: always awake).
    pub fn with_host(mut self, host: Arc<dyn HostState>) -> Self {
        self.host = host;
        self
    }

    /// Shows prompts through `notifier` (default: the log).
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = notifier;
        self
    }

    /// The device backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Refreshes the catalog metadata and checks that it still endorses the
    /// key `tenant`'s assignments are verified with (before anything else
    /// in a new assignment document is used, e.g. its LDAP definitions).
    pub fn check_assignment_key(&self, tenant: &str, now: DateTime<Utc>) -> Result<(), String> {
        self.signed_targets(tenant, &[], now)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Refreshes the catalog metadata, checks that it still endorses the
    /// key `tenant`'s assignments were verified with, and looks up `names`.
    fn signed_targets(
        &self,
        tenant: &str,
        names: &[&str],
        now: DateTime<Utc>,
    ) -> Result<
        (
            BTreeMap<String, Option<TargetFile>>,
            pieces::ProductFamilies,
        ),
        SignedTargetsError,
    > {
        let fetcher: &dyn Fetcher = &*self.remote.metadata;
        let mut updater = Updater::new(
            &self.metadata_dir,
            &self.remote.metadata_base,
            fetcher,
            UpdaterConfig::default(),
        )?;
        updater.refresh(now)?;
        let signed = updater
            .targets()
            .ok_or_else(|| TufError::State("refresh() left no targets".into()))?;
        check_endorsed(signed, tenant, &self.assignment_key)?;
        let families = pieces::ProductFamilies::from_targets(signed);
        let targets = names
            .iter()
            .map(|n| Ok(((*n).to_owned(), updater.target_info(n)?)))
            .collect::<Result<_, TufError>>()?;
        Ok((targets, families))
    }

    fn record(
        &self,
        a: &Subject,
        status: UpdateStatus,
        reason: Option<String>,
        firmware: Option<TargetFirmware>,
        event: Option<crate::state::Event>,
        now: DateTime<Utc>,
    ) -> Result<StagedUpdate, StateError> {
        let u = StagedUpdate {
            digest: a.digest.clone(),
            target: a.target.clone(),
            device: a.device.clone(),
            status,
            reason,
            updated_at: now,
            firmware,
        };
        self.state.put_update_with_event(&u, event.as_ref())?;
        Ok(u)
    }

    /// Records a failure (with an `update_failed` event, and a
    /// `tamper_detected` one when `tamper` names what did not verify).
    fn fail(
        &self,
        a: &Subject,
        reason: String,
        tamper: Option<&str>,
        firmware: Option<TargetFirmware>,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StateError> {
        tracing::warn!(device = %a.device, target = %a.target, "update refused or failed: {reason}");
        // The same failure again (e.g. a catalog refresh failing at every
        // pass) was reported already: no new events.
        let repeated = self.state.update(&a.digest, &a.device)?.is_some_and(|u| {
            u.status == UpdateStatus::Failed
                && u.reason.as_deref().map(download::reason_key)
                    == Some(download::reason_key(&reason))
        });
        if repeated {
            return Ok(Outcome::Failed(reason));
        }
        if let Some(source) = tamper {
            self.state
                .spool(&tamper_event(source, Some(&a.device), &reason, now))?;
        }
        let version = firmware
            .as_ref()
            .map_or_else(|| version_of(&a.target).to_owned(), |f| f.version.clone());
        let event = update_event(
            "update_failed",
            &a.device,
            &a.target,
            &version,
            Some(&reason),
            now,
        );
        self.record(
            a,
            UpdateStatus::Failed,
            Some(reason.clone()),
            firmware,
            Some(event),
            now,
        )?;
        Ok(Outcome::Failed(reason))
    }

    /// One pass at a poll over a verified assignment set at `now`:
    /// persistent prompts are shown again, deferred ones re-opened.
    pub fn run(
        &mut self,
        set: &AssignmentSet,
        now: DateTime<Utc>,
    ) -> Result<PassReport, PipelineError> {
        self.pass(set, now, true)
    }

    /// One pass without reminders (after a user's decision, in a window,
    /// or to retry what a guard held back).
    pub fn act(
        &mut self,
        set: &AssignmentSet,
        now: DateTime<Utc>,
    ) -> Result<PassReport, PipelineError> {
        self.pass(set, now, false)
    }

    fn pass(
        &mut self,
        set: &AssignmentSet,
        now: DateTime<Utc>,
        remind: bool,
    ) -> Result<PassReport, PipelineError> {
        let devices = self.backend.inventory()?;
        self.note_start(&devices);
        let mut ctx = PassContext {
            remind,
            devices: devices.clone(),
            max_deferrals: max_deferrals(set),
            multi_piece_guard_off: pieces::multi_piece_guard_off(set),
            families: pieces::ProductFamilies::default(),
            guarded: std::cell::Cell::new(false),
        };
        let mut report = PassReport::default();
        let mut todo = Vec::new();
        for a in &set.assignments {
            let Some(device) = devices.iter().find(|d| d.identity() == a.device) else {
                report
                    .outcomes
                    .insert(a.device.clone(), Outcome::NotAttached);
                continue;
            };
            let existing = self.state.update(&a.sha256.to_hex(), &a.device)?;
            match existing.as_ref().map(|u| u.status) {
                Some(UpdateStatus::Installed) => {
                    report.outcomes.insert(a.device.clone(), Outcome::UpToDate);
                }
                Some(UpdateStatus::AwaitingReplug) => {
                    let u = existing.unwrap_or_else(|| unreachable!());
                    let outcome = self.confirm_replug(device, u, now)?;
                    report.outcomes.insert(a.device.clone(), outcome);
                }
                _ => todo.push((a, device.clone())),
            }
        }
        if !todo.is_empty() {
            let names: Vec<&str> = todo.iter().map(|(a, _)| a.target_name.as_str()).collect();
            let targets = self
                .signed_targets(&set.tenant, &names, now)
                .map(|(t, families)| {
                    ctx.families = families;
                    t
                });
            for (a, device) in todo {
                let outcome = match &targets {
                    Err(SignedTargetsError::Metadata(e)) => {
                        self.fail(&a.into(), format!("catalog metadata: {e}"), None, None, now)?
                    }
                    Err(SignedTargetsError::NotEndorsed(e)) => {
                        self.fail(&a.into(), e.to_string(), Some("assignment"), None, now)?
                    }
                    Ok(t) => match t.get(&a.target_name).cloned().flatten() {
                        None => self.fail(
                            &a.into(),
                            format!("{} is not in the signed catalog", a.target_name),
                            Some("assignment"),
                            None,
                            now,
                        )?,
                        Some(target) => self.process(a, &device, &target, &ctx, now)?,
                    },
                };
                report.outcomes.insert(a.device.clone(), outcome);
            }
        }
        self.confirm_unassigned_replugs(set, &devices, &mut report, now)?;
        self.forget_superseded(set)?;
        let keep: HashSet<_> = set.assignments.iter().map(|a| a.sha256).collect();
        self.staging.retain(&keep)?;
        report.retry_soon = ctx.guarded.get();
        Ok(report)
    }

    /// Confirms flashed devices waiting for their replug that the current
    /// assignments no longer name: the server stops assigning an update
    /// once the device reports its DFU-mode id or the new version, so the
    /// stored record, not the set, says what to read back. A device the set
    /// assigns anything to is left to that assignment (a newer release
    /// flashed over the old one must not fail the old record).
    fn confirm_unassigned_replugs(
        &self,
        set: &AssignmentSet,
        devices: &[DeviceReport],
        report: &mut PassReport,
        now: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let assigned: HashSet<&str> = set.assignments.iter().map(|a| a.device.as_str()).collect();
        for u in self.state.updates()? {
            if u.status != UpdateStatus::AwaitingReplug || assigned.contains(u.device.as_str()) {
                continue;
            }
            // Something else was installed on the device since: that
            // flash is history, not a failure.
            if let Some(later) = self
                .state
                .installed(&u.device)?
                .filter(|i| i.at > u.updated_at)
            {
                tracing::info!(device = %u.device, superseded = %u.target, installed = %later.target, "a newer install replaces an update awaiting its replug");
                self.state.resolve_prompts(&u.device, &u.digest)?;
                self.state.remove_update(&u.digest, &u.device)?;
                continue;
            }
            if let Some(device) = devices.iter().find(|d| d.identity() == u.device) {
                let id = u.device.clone();
                let outcome = self.confirm_replug(device, u, now)?;
                report.outcomes.entry(id).or_insert(outcome);
            }
        }
        Ok(())
    }

    /// Drops pending records (staged, waiting, failed) of updates no longer
    /// assigned, so `status` does not show superseded updates as pending.
    /// Installed ones stay (history); flashing and awaiting-replug ones
    /// describe a device's state and stay until resolved.
    fn forget_superseded(&self, set: &AssignmentSet) -> Result<(), StateError> {
        let current: HashSet<(String, &str)> = set
            .assignments
            .iter()
            .map(|a| (a.sha256.to_hex(), a.device.as_str()))
            .collect();
        for u in self.state.updates()? {
            let stale = matches!(
                u.status,
                UpdateStatus::Staged | UpdateStatus::Waiting | UpdateStatus::Failed
            );
            if stale && !current.contains(&(u.digest.clone(), u.device.as_str())) {
                self.state.remove_update(&u.digest, &u.device)?;
                self.state.resolve_prompts(&u.device, &u.digest)?;
            }
        }
        Ok(())
    }

    fn process(
        &self,
        a: &Assignment,
        device: &DeviceReport,
        target: &TargetFile,
        ctx: &PassContext,
        now: DateTime<Utc>,
    ) -> Result<Outcome, PipelineError> {
        let subject = Subject::from(a);
        let installed_counter = self
            .state
            .installed(&a.device)?
            .map_or(0, |i| i.security_counter);
        let (fw, version) = match check_against_target(a, target, device, installed_counter) {
            Ok(ok) => ok,
            Err(e @ catalog::assignment::AssignmentError::Downgrade { .. }) => {
                return Ok(self.fail(&subject, e.to_string(), None, None, now)?)
            }
            Err(e) => {
                return Ok(self.fail(&subject, e.to_string(), Some("assignment"), None, now)?)
            }
        };
        if device.dfu == DfuState::Runtime
            && flasher::version_matches(
                &version,
                device.firmware_version.as_deref(),
                device.bcd_device,
            )
        {
            // A flash the agent was killed in the middle of, which the device
            // finished: it succeeded, and is reported as such.
            let interrupted = self
                .state
                .update(&subject.digest, &a.device)?
                .map(|u| u.status)
                == Some(UpdateStatus::Flashing);
            let event = interrupted.then(|| {
                update_event(
                    "update_succeeded",
                    &a.device,
                    &a.target_name,
                    &fw.version,
                    None,
                    now,
                )
            });
            let u = self.record_running(&subject, &fw, &version.to_string(), event, now)?;
            tracing::info!(device = %u.device, version = %fw.version, "already runs the assigned firmware");
            return Ok(Outcome::UpToDate);
        }
        if device.dfu == DfuState::Runtime {
            // No downgrade by version unless the signed assignment allows it
            // (the security counter above is a floor even then).
            if let Err(e) = check_not_older(a, &version, device) {
                return Ok(self.fail(&subject, e.to_string(), None, Some(fw), now)?);
            }
        }
        if !flasher::supports(&fw.protocol) {
            // Nothing to download: no agent build of ours can flash it.
            let why = flasher::unsupported_protocol(&fw.protocol);
            self.record(
                &subject,
                UpdateStatus::Waiting,
                Some(why.clone()),
                Some(fw),
                None,
                now,
            )?;
            return Ok(Outcome::Waiting(why));
        }
        let was_staged = self.staging.staged(&a.sha256).is_some();
        // `update_staged` goes out once per device and image: not again when
        // the record shows it was (a crash between staging the file and
        // committing the record still reports it).
        let reported_staged = match self
            .state
            .update(&subject.digest, &a.device)?
            .map(|u| u.status)
        {
            None => false,
            Some(UpdateStatus::Failed) => was_staged,
            Some(_) => true,
        };
        let note = match download::stage(self, a, target, now)? {
            Ok(note) => note,
            Err(reason) => return Ok(self.fail(&subject, reason, None, Some(fw), now)?),
        };
        let staged_event = (!reported_staged).then(|| {
            update_event(
                "update_staged",
                &a.device,
                &a.target_name,
                &fw.version,
                None,
                now,
            )
        });
        // One committed record per step: waiting (with the reason), or staged
        // right before the flash.
        let waiting = self.gate(a, &fw, device, ctx, now)?;
        let (status, reason) = match &waiting {
            Some(why) => (UpdateStatus::Waiting, Some(why.clone())),
            None => (UpdateStatus::Staged, note),
        };
        let update = self.record(
            &subject,
            status,
            reason,
            Some(fw.clone()),
            staged_event,
            now,
        )?;
        if let Some(why) = waiting {
            tracing::info!(device = %update.device, target = %update.target, "waiting: {why}");
            return Ok(Outcome::Waiting(why));
        }
        Ok(self.flash(device, update, &fw, now)?)
    }

    fn record_running(
        &self,
        a: &Subject,
        fw: &TargetFirmware,
        version: &str,
        event: Option<crate::state::Event>,
        now: DateTime<Utc>,
    ) -> Result<StagedUpdate, StateError> {
        let update = StagedUpdate {
            digest: a.digest.clone(),
            target: a.target.clone(),
            device: a.device.clone(),
            status: UpdateStatus::Installed,
            reason: None,
            updated_at: now,
            firmware: Some(fw.clone()),
        };
        let installed = InstalledFirmware {
            device: a.device.clone(),
            target: a.target.clone(),
            version: version.to_owned(),
            security_counter: fw.security_counter,
            at: now,
        };
        self.state
            .record_installed(&installed, &update, event.as_ref())?;
        Ok(update)
    }
}

#[cfg(test)]
mod endorsement_tests;
#[cfg(test)]
mod schedule_tests;
#[cfg(test)]
pub(crate) mod tests;
