//! What the agent decided for each attached device, in words, for
//! `check-now`: the outcome of the pass for assigned devices, the server's
//! reason for the others (`not_assigned` in the signed document: no policy
//! for the host's group, up to date, …).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{AgentCore, AgentError};
use crate::devices::DeviceBackend;
use crate::pipeline::{not_assigned, PassReport, PipelineError};

/// Said of an attached device the server's document does not mention.
pub const NO_WORD_FROM_THE_SERVER: &str =
    "no assignment (the server gave no reason; it may predate this agent's report of the device)";

impl<B: DeviceBackend> AgentCore<B> {
    /// Per device (attached, or named by `pass`), what was decided and why.
    pub fn decisions(
        &self,
        pass: &PassReport,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, String>, AgentError> {
        let reasons = self
            .stored_set(now)?
            .map(|set| not_assigned(&set))
            .unwrap_or_default();
        let attached = self
            .pipeline
            .backend()
            .inventory()
            .map_err(PipelineError::from)?;
        let mut out: BTreeMap<String, String> = pass
            .outcomes
            .iter()
            .map(|(device, outcome)| (device.clone(), outcome.to_string()))
            .collect();
        for d in attached {
            let id = d.identity();
            let why = reasons.get(&id).cloned();
            out.entry(id)
                .or_insert_with(|| why.unwrap_or_else(|| NO_WORD_FROM_THE_SERVER.to_owned()));
        }
        Ok(out)
    }
}
