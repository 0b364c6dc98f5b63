//! Flashing a staged image, confirming after a replug, and recovery at start.

use catalog::assignment::running_version;
use catalog::package::{TargetFirmware, Version};
use catalog::protocol::{DeviceReport, DfuState};
use chrono::{DateTime, Utc};
use dfu::host::NoProgress;

use super::{Outcome, PassReport, Pipeline, PipelineError, Subject};
use crate::devices::DeviceBackend;
use crate::events::update_event;
use crate::flasher::{self, InstallError, Installed};
use crate::prompts::{Prompt, PromptKind, PromptSubject};
use crate::staging::StageError;
use crate::state::{StagedUpdate, StateError, UpdateStatus};

impl<B: DeviceBackend> Pipeline<B> {
    /// Flashes the staged image of `update` onto `device` and records the outcome.
    pub(super) fn flash(
        &self,
        device: &DeviceReport,
        update: StagedUpdate,
        fw: &TargetFirmware,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StateError> {
        let a = Subject::from(&update);
        let version = match Version::parse(&fw.version, fw.version_format) {
            Ok(v) => v,
            Err(e) => {
                return self.fail(
                    &a,
                    format!("version {}: {e}", fw.version),
                    None,
                    Some(fw.clone()),
                    now,
                )
            }
        };
        let digest = a.digest.parse().ok();
        let staged = digest.filter(|d| self.staging.staged(d).is_some());
        let Some(digest) = staged else {
            return self.fail(
                &a,
                "the staged image is missing".into(),
                Some("state"),
                Some(fw.clone()),
                now,
            );
        };
        // Hashed again right before flashing: what is written to the device
        // is exactly what was verified against the signed target.
        let image = match self.staging.read_verified(&digest) {
            Ok(b) => b,
            Err(e @ StageError::StagedChanged { .. }) => {
                return self.fail(&a, e.to_string(), Some("staged"), Some(fw.clone()), now)
            }
            Err(e) => return self.fail(&a, e.to_string(), None, Some(fw.clone()), now),
        };
        let mut started = update_event(
            "update_started",
            &a.device,
            &a.target,
            &fw.version,
            None,
            now,
        );
        // A downgrade (allowed by the signed assignment, or it would not
        // have come this far) is recorded with the version it replaces.
        let replaced = (device.dfu == DfuState::Runtime)
            .then(|| running_version(device, version.format()))
            .flatten()
            .filter(|running| *running > version);
        if let Some(running) = replaced {
            started.detail["downgrade_from"] = running.to_string().into();
        }
        self.record(
            &a,
            UpdateStatus::Flashing,
            None,
            Some(fw.clone()),
            Some(started),
            now,
        )?;
        tracing::info!(device = %a.device, target = %a.target, "flashing");
        let result = flasher::install(
            &self.backend,
            device,
            &image,
            fw.protocol.clone(),
            &version,
            &self.flash,
            &mut NoProgress,
        );
        match result {
            Ok(Installed::Running { version }) => {
                let e = update_event(
                    "update_succeeded",
                    &a.device,
                    &a.target,
                    &fw.version,
                    None,
                    now,
                );
                self.record_running(&a, fw, &version, Some(e), now)?;
                self.state.resolve_prompts(&a.device, &a.digest)?;
                tracing::info!(device = %a.device, %version, "installed and read back");
                Ok(Outcome::Installed { version })
            }
            Ok(Installed::AwaitingReplug) => {
                let e = update_event(
                    "awaiting_replug",
                    &a.device,
                    &a.target,
                    &fw.version,
                    None,
                    now,
                );
                let why = "awaiting replug: flashed; unplug and replug the device to finish (it did not come back by itself)".to_owned();
                self.record(
                    &a,
                    UpdateStatus::AwaitingReplug,
                    Some(why),
                    Some(fw.clone()),
                    Some(e),
                    now,
                )?;
                let subject = PromptSubject {
                    device: &a.device,
                    product: device.product.as_deref(),
                    target: &a.target,
                    version: &fw.version,
                    digest: &a.digest,
                };
                self.show(Prompt::new(PromptKind::Replug, &subject, None, now), now)?;
                Ok(Outcome::AwaitingReplug)
            }
            Err(e) => self.fail(&a, e.to_string(), None, Some(fw.clone()), now),
        }
    }

    /// A device awaiting its replug, as found by a pass (followed by serial
    /// number, else port path, whatever its PID in runtime or DFU mode):
    /// back in runtime with the new version → installed; back in runtime
    /// with another version → failed (retried like any failure); still in
    /// DFU mode → still awaiting the replug.
    pub(super) fn confirm_replug(
        &self,
        device: &DeviceReport,
        update: StagedUpdate,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StateError> {
        let Some(fw) = update.firmware.clone() else {
            return Ok(Outcome::AwaitingReplug);
        };
        let Ok(version) = Version::parse(&fw.version, fw.version_format) else {
            return Ok(Outcome::AwaitingReplug);
        };
        match flasher::confirm(&self.backend, device, &version) {
            Ok(Installed::Running { version }) => {
                let a = Subject::from(&update);
                let e = update_event(
                    "update_succeeded",
                    &a.device,
                    &a.target,
                    &fw.version,
                    None,
                    now,
                );
                self.record_running(&a, &fw, &version, Some(e), now)?;
                self.state.resolve_prompts(&a.device, &a.digest)?;
                tracing::info!(device = %a.device, %version, "replugged: installed and read back");
                Ok(Outcome::Installed { version })
            }
            Err(InstallError::WrongVersion { expected, found })
                if device.dfu == DfuState::Runtime =>
            {
                let a = Subject::from(&update);
                self.state.resolve_prompts(&a.device, &a.digest)?;
                self.fail(
                    &a,
                    format!("the device came back with version {found}, not {expected}: the update did not take"),
                    None,
                    Some(fw),
                    now,
                )
            }
            _ => Ok(Outcome::AwaitingReplug),
        }
    }

    /// At start: devices found in DFU mode (an interrupted flash) with a
    /// staged image for their identity are flashed again from it.
    pub fn recover(&mut self, now: DateTime<Utc>) -> Result<PassReport, PipelineError> {
        let mut report = PassReport::default();
        let updates = self.state.updates()?;
        let devices = self.backend.inventory()?;
        self.note_start(&devices);
        for device in devices {
            if device.dfu != DfuState::DfuMode {
                continue;
            }
            let id = device.identity();
            let candidate = updates
                .iter()
                // Not done, and not a completed flash waiting for its replug.
                .filter(|u| u.device == id)
                .filter(|u| {
                    !matches!(
                        u.status,
                        UpdateStatus::Installed | UpdateStatus::AwaitingReplug
                    )
                })
                .filter(|u| u.firmware.is_some())
                .filter(|u| {
                    u.digest
                        .parse()
                        .is_ok_and(|d| self.staging.staged(&d).is_some())
                })
                .max_by_key(|u| u.updated_at);
            let Some(u) = candidate else {
                tracing::warn!(device = %id, "device is in DFU mode and no staged image is known for it");
                continue;
            };
            tracing::info!(device = %id, target = %u.target, "device left in DFU mode: flashing the staged image again");
            let fw = u.firmware.clone().unwrap_or_else(|| unreachable!());
            let outcome = self.flash(&device, u.clone(), &fw, now)?;
            report.outcomes.insert(id, outcome);
        }
        Ok(report)
    }
}
