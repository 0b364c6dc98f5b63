//! The `prompts` table: prompt id → [`Prompt`] (JSON). A user's decision is
//! committed here (durably) before anything acts on it.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{decode, encode, spool_in, State, StateError};
use crate::events::update_event;
use crate::prompts::{Decision, DecisionError, Prompt, PromptKind, PromptState};

pub(super) const PROMPTS: TableDefinition<'static, &str, &str> = TableDefinition::new("prompts");

/// Why a decision could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// The decision was refused (nothing changed).
    #[error(transparent)]
    Refused(#[from] DecisionError),
    /// The state database.
    #[error(transparent)]
    State(#[from] StateError),
}

impl State {
    /// The prompt `id`, if any.
    pub fn prompt(&self, id: &str) -> Result<Option<Prompt>, StateError> {
        let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let t = txn.open_table(PROMPTS).map_err(|e| self.db_err(e))?;
        let v = t.get(id).map_err(|e| self.db_err(e))?;
        v.map(|v| decode("prompts", id, v.value())).transpose()
    }

    /// Every prompt (including resolved ones), by id.
    pub fn prompts(&self) -> Result<Vec<Prompt>, StateError> {
        self.read_all(PROMPTS, "prompts")
    }

    /// The prompts shown to people now (open or deferred), oldest first.
    pub fn shown_prompts(&self) -> Result<Vec<Prompt>, StateError> {
        let mut all = self.prompts()?;
        all.retain(Prompt::is_shown);
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(all)
    }

    /// Records (or replaces) a prompt.
    pub fn put_prompt(&self, prompt: &Prompt) -> Result<(), StateError> {
        self.write(|txn| {
            txn.open_table(PROMPTS)?
                .insert(prompt.id.as_str(), encode(prompt).as_str())?;
            Ok(())
        })
    }

    /// Applies a user's decision to prompt `id` in one transaction (read,
    /// check, write) and returns the prompt as committed.
    pub fn decide(
        &self,
        id: &str,
        decision: Decision,
        now: DateTime<Utc>,
    ) -> Result<Prompt, DecideError> {
        let out = self.write(|txn| {
            let mut t = txn.open_table(PROMPTS)?;
            let old = t.get(id)?.map(|v| v.value().to_owned());
            let Some(old) = old else {
                return Ok(Err(DecideError::Refused(DecisionError::NoSuchPrompt(
                    id.to_owned(),
                ))));
            };
            let prompt: Prompt = match decode("prompts", id, &old) {
                Ok(p) => p,
                Err(e) => return Ok(Err(e.into())),
            };
            match prompt.decide(decision, now) {
                Ok(p) => {
                    t.insert(id, encode(&p).as_str())?;
                    drop(t);
                    // The admin sees the user's answer (REFERENCE: declined
                    // and deferred updates are reported), committed with it.
                    // (A replug request put off is not an update deferred:
                    // the update is flashed already.)
                    let kind = match (decision, p.kind) {
                        (_, PromptKind::Replug) | (Decision::Accept, _) => None,
                        (Decision::Decline, _) => Some("user_declined"),
                        (Decision::Defer, _) => Some("user_deferred"),
                    };
                    if let Some(kind) = kind {
                        let event = update_event(kind, &p.device, &p.target, &p.version, None, now);
                        spool_in(txn, &event)?;
                    }
                    Ok(Ok(p))
                }
                Err(e) => Ok(Err(e.into())),
            }
        })?;
        out
    }

    /// Marks the prompts about (`device`, `digest`) that are still shown or
    /// accepted as done (installed, failed, superseded). Declined ones stay
    /// declined. Returns how many changed.
    pub fn resolve_prompts(&self, device: &str, digest: &str) -> Result<usize, StateError> {
        let mut n = 0;
        for mut p in self.prompts()? {
            let live = matches!(
                p.state,
                PromptState::Open | PromptState::Deferred | PromptState::Accepted
            );
            if live && p.device == device && p.digest == digest {
                p.state = PromptState::Done;
                self.put_prompt(&p)?;
                n += 1;
            }
        }
        Ok(n)
    }
}
