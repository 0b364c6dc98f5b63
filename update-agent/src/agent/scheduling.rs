//! What the daemon asks of the enrolled agent between check-ins: a pass on
//! the stored (verified) assignments after a user's decision, at a window's
//! opening or to retry what a guard held back; the windows of pending silent
//! updates; reminders at a login; and the prompt view of the check-in report.

use std::sync::Arc;

use catalog::assignment::{AssignmentSet, DeploymentType};
use catalog::window::MaintenanceWindow;
use chrono::{DateTime, Utc};

use super::{AgentCore, AgentError};
use crate::devices::DeviceBackend;
use crate::pipeline::PassReport;
use crate::prompts::{prompt_id, Notifier, PromptKind, PromptState};
use crate::schedule::host::HostState;
use crate::state::{State, StateError, UpdateStatus};

/// The prompt side of one update for the check-in report: deferrals so far,
/// and whether the user deferred or declined it.
pub(super) fn prompt_view(
    state: &State,
    device: &str,
    digest: &str,
) -> Result<(u32, bool), StateError> {
    let mut deferrals = 0;
    let mut deferred = false;
    for kind in [PromptKind::UpdateAvailable, PromptKind::UpdateRequired] {
        if let Some(p) = state.prompt(&prompt_id(kind, device, digest))? {
            deferrals = deferrals.max(p.deferrals);
            deferred |= matches!(p.state, PromptState::Deferred | PromptState::Declined);
        }
    }
    Ok((deferrals, deferred))
}

impl<B: DeviceBackend> AgentCore<B> {
    /// Uses `host` (power guard) and `notifier` (prompts) in the pipeline.
    pub fn set_hooks(&mut self, host: Arc<dyn HostState>, notifier: Arc<dyn Notifier>) {
        self.pipeline.set_hooks(host, notifier);
    }

    /// The stored assignment document, verified again (signature — once per
    /// content, see `verified` —, agent, expiry), without asking the server.
    pub fn stored_set(&self, now: DateTime<Utc>) -> Result<Option<AssignmentSet>, AgentError> {
        let Some(stored) = self.state.assignments()? else {
            return Ok(None);
        };
        Ok(Some(self.verified.verify(
            stored.document.as_bytes(),
            &self.key,
            self.client.agent(),
            stored.version,
            now,
        )?))
    }

    /// A pass on the stored assignments without reminders, then the event spool.
    pub fn act(&mut self, now: DateTime<Utc>) -> Result<PassReport, AgentError> {
        let Some(set) = self.stored_set(now)? else {
            return Ok(PassReport::default());
        };
        let report = self.pipeline.act(&set, now)?;
        self.retry_soon = report.retry_soon;
        self.flush_logged();
        Ok(report)
    }

    /// The windows of silent assignments not installed yet.
    pub fn pending_windows(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<MaintenanceWindow>, AgentError> {
        let Some(set) = self.stored_set(now)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for a in set.assignments {
            if a.deployment != DeploymentType::Silent {
                continue;
            }
            let done = self
                .state
                .update(&a.sha256.to_hex(), &a.device)?
                .is_some_and(|u| u.status == UpdateStatus::Installed);
            if let (false, Some(w)) = (done, a.window) {
                if !out.contains(&w) {
                    out.push(w);
                }
            }
        }
        Ok(out)
    }

    /// A user logged in: open persistent prompts and replug requests are
    /// shown again.
    pub fn remind(&mut self, now: DateTime<Utc>) -> Result<usize, AgentError> {
        Ok(self.pipeline.remind(now)?)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::prompts::{Decision, Prompt, PromptSubject};

    /// What the check-in reports per update: deferrals, and "deferred" while
    /// the user deferred or declined it.
    #[test]
    fn prompt_view_gives_deferrals_and_the_deferred_phase() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open_in(dir.path()).unwrap();
        let t = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
        let subject = |device| PromptSubject {
            device,
            product: None,
            target: "acme/headset/2.0.0/fw.dfu",
            version: "2.0.0",
            digest: "ab",
        };
        let required = Prompt::new(PromptKind::UpdateRequired, &subject("d1"), Some(3), t);
        let optional = Prompt::new(PromptKind::UpdateAvailable, &subject("d2"), None, t);
        state.put_prompt(&required).unwrap();
        state.put_prompt(&optional).unwrap();
        assert_eq!(prompt_view(&state, "d1", "ab").unwrap(), (0, false));
        state.decide(&required.id, Decision::Defer, t).unwrap();
        state.decide(&required.id, Decision::Defer, t).unwrap();
        state.decide(&optional.id, Decision::Decline, t).unwrap();
        let cases = [
            ("d1", "ab", (2, true)),
            ("d2", "ab", (0, true)),
            ("d1", "other image", (0, false)),
            ("d3", "ab", (0, false)),
        ];
        for (device, digest, want) in cases {
            assert_eq!(
                prompt_view(&state, device, digest).unwrap(),
                want,
                "{device} {digest}"
            );
        }
        state.decide(&required.id, Decision::Accept, t).unwrap();
        assert_eq!(prompt_view(&state, "d1", "ab").unwrap(), (2, false));
    }
}
