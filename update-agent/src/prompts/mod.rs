//! Questions for the user: "an update is available" (optional), "an update
//! is required" (persistent, with limited deferrals) and "unplug and replug
//! the device" (after a flash that needs a reset).
//!
//! A [`Prompt`] is durable in the state database (`prompts` table) before it
//! is shown, and a decision is committed there before the agent acts on it.
//! Ids are derived from (kind, device, image digest), so asking again about
//! the same update finds the same prompt, and a declined version stays
//! declined while a newer one (another digest) gets a new prompt.
//!
//! Prompts reach people through the control socket (`update-agent prompts`)
//! and, when configured, a notification command ([`CommandNotifier`]) that
//! gets the prompt as JSON on stdin, never through a shell.

use std::io::Write as _;
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a prompt asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptKind {
    /// An optional update: accept or decline.
    UpdateAvailable,
    /// A persistent update: accept now or defer (a limited number of times).
    UpdateRequired,
    /// A flashed device must be unplugged and plugged in again.
    Replug,
}

impl PromptKind {
    fn tag(self) -> &'static str {
        match self {
            Self::UpdateAvailable => "update_available",
            Self::UpdateRequired => "update_required",
            Self::Replug => "replug",
        }
    }
}

/// Where a prompt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptState {
    /// Waiting for an answer.
    Open,
    /// The user accepted (the update installs at the next pass).
    Accepted,
    /// The user declined (optional updates): this version is not offered again.
    Declined,
    /// The user deferred: asked again at the next poll or login.
    Deferred,
    /// Resolved by the agent (installed, failed, superseded): no longer shown.
    Done,
}

/// A user's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Install now (or: I have replugged the device).
    Accept,
    /// Not this version (optional updates only).
    Decline,
    /// Not now.
    Defer,
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Accept => "accept",
            Self::Decline => "decline",
            Self::Defer => "defer",
        })
    }
}

/// Why a decision was refused (the prompt is unchanged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// No prompt has this id.
    #[error("no prompt {0}")]
    NoSuchPrompt(String),
    /// The prompt was resolved already.
    #[error("prompt {id} is {state:?} already")]
    Closed {
        /// The prompt.
        id: String,
        /// Its state.
        state: PromptState,
    },
    /// The decision does not apply to this kind of prompt.
    #[error("prompt {id} ({kind:?}) cannot be answered with {decision}")]
    NotAllowed {
        /// The prompt.
        id: String,
        /// Its kind.
        kind: PromptKind,
        /// The answer.
        decision: Decision,
    },
    /// A persistent update was deferred as often as the policy allows.
    #[error("prompt {id}: no deferrals left ({used} of {max} used); the update will be installed")]
    NoDeferralsLeft {
        /// The prompt.
        id: String,
        /// Deferrals used.
        used: u32,
        /// The policy's limit.
        max: u32,
    },
}

/// One question for the user, as stored and as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// Short stable id (`accept ID`).
    pub id: String,
    /// What it asks.
    pub kind: PromptKind,
    /// Where it stands.
    pub state: PromptState,
    /// The device ([`catalog::protocol::DeviceReport::identity`]).
    pub device: String,
    /// The device's product name, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// The catalog target.
    pub target: String,
    /// The version offered.
    pub version: String,
    /// Hex SHA-256 of the image.
    pub digest: String,
    /// The text for people.
    pub message: String,
    /// Deferrals so far.
    #[serde(default)]
    pub deferrals: u32,
    /// The policy's limit on deferrals (persistent updates), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deferrals: Option<u32>,
    /// Why the update cannot start right now (a guard), if it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    /// When it was first asked.
    pub created_at: DateTime<Utc>,
    /// When it was last shown (notification or reminder).
    pub notified_at: Option<DateTime<Utc>>,
    /// When the user last answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
}

/// The id of the prompt of `kind` about `digest` on `device`: 10 hex digits
/// of SHA-256 over the three.
pub fn prompt_id(kind: PromptKind, device: &str, digest: &str) -> String {
    let mut h = Sha256::new();
    h.update(kind.tag());
    h.update([0]);
    h.update(device);
    h.update([0]);
    h.update(digest);
    hex::encode(h.finalize())[..10].to_owned()
}

impl Prompt {
    /// A new open prompt.
    pub fn new(
        kind: PromptKind,
        subject: &PromptSubject<'_>,
        max_deferrals: Option<u32>,
        now: DateTime<Utc>,
    ) -> Self {
        let what = subject.product.unwrap_or(subject.device);
        let message = match kind {
            PromptKind::UpdateAvailable => format!(
                "Firmware {} is available for {what}. Accept to install it, or decline.",
                subject.version
            ),
            PromptKind::UpdateRequired => format!(
                "Firmware {} is required for {what}. Accept to install it now, or defer{}.",
                subject.version,
                max_deferrals.map_or_else(String::new, |m| format!(" (at most {m} times)"))
            ),
            PromptKind::Replug => format!(
                "Firmware {} was written to {what}. Unplug the device and plug it in again to finish the update.",
                subject.version
            ),
        };
        Self {
            id: prompt_id(kind, subject.device, subject.digest),
            kind,
            state: PromptState::Open,
            device: subject.device.to_owned(),
            product: subject.product.map(str::to_owned),
            target: subject.target.to_owned(),
            version: subject.version.to_owned(),
            digest: subject.digest.to_owned(),
            message,
            deferrals: 0,
            max_deferrals,
            blocked_by: None,
            created_at: now,
            notified_at: None,
            decided_at: None,
        }
    }

    /// Whether the prompt is shown (open, or deferred until the next reminder).
    pub fn is_shown(&self) -> bool {
        matches!(self.state, PromptState::Open | PromptState::Deferred)
    }

    /// Deferrals left, when limited.
    pub fn deferrals_left(&self) -> Option<u32> {
        self.max_deferrals.map(|m| m.saturating_sub(self.deferrals))
    }

    /// Applies `decision` at `now` (pure: the caller commits the result).
    pub fn decide(&self, decision: Decision, now: DateTime<Utc>) -> Result<Self, DecisionError> {
        if matches!(
            self.state,
            PromptState::Done | PromptState::Declined | PromptState::Accepted
        ) {
            return Err(DecisionError::Closed {
                id: self.id.clone(),
                state: self.state,
            });
        }
        let not_allowed = || DecisionError::NotAllowed {
            id: self.id.clone(),
            kind: self.kind,
            decision,
        };
        let mut p = self.clone();
        p.decided_at = Some(now);
        match (self.kind, decision) {
            (_, Decision::Accept) => p.state = PromptState::Accepted,
            (PromptKind::UpdateAvailable, Decision::Decline) => p.state = PromptState::Declined,
            (PromptKind::UpdateRequired | PromptKind::Replug, Decision::Decline) => {
                return Err(not_allowed())
            }
            (PromptKind::UpdateRequired, Decision::Defer) => {
                if let Some(max) = self.max_deferrals.filter(|m| self.deferrals >= *m) {
                    return Err(DecisionError::NoDeferralsLeft {
                        id: self.id.clone(),
                        used: self.deferrals,
                        max,
                    });
                }
                p.deferrals += 1;
                p.state = PromptState::Deferred;
            }
            (_, Decision::Defer) => p.state = PromptState::Deferred,
        }
        Ok(p)
    }
}

/// What a prompt is about.
#[derive(Debug, Clone, Copy)]
pub struct PromptSubject<'a> {
    /// The device identity.
    pub device: &'a str,
    /// Its product name.
    pub product: Option<&'a str>,
    /// The catalog target.
    pub target: &'a str,
    /// The version.
    pub version: &'a str,
    /// Hex SHA-256 of the image.
    pub digest: &'a str,
}

/// Shows prompts to people (a desktop integration).
pub trait Notifier: Send + Sync {
    /// Shows (or reminds of) `prompt`. Must not block for long.
    fn notify(&self, prompt: &Prompt);
}

/// The default: prompts are only logged (and listed by `update-agent prompts`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn notify(&self, prompt: &Prompt) {
        tracing::info!(prompt = %prompt.id, device = %prompt.device, "prompt: {}", prompt.message);
    }
}

/// Why the notification command could not run.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The configured command is empty.
    #[error("notify_command is empty")]
    Empty,
    /// Starting it or writing its input failed.
    #[error("notify_command {program}: {source}")]
    Io {
        /// The program.
        program: String,
        /// The error.
        source: std::io::Error,
    },
    /// It exited unsuccessfully.
    #[error("notify_command {program} exited with {status}")]
    Status {
        /// The program.
        program: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
}

/// Runs a configured program for each prompt: `argv[0]` with the configured
/// arguments followed by the prompt's kind and id, and the prompt as one line
/// of JSON on stdin. No shell is involved.
#[derive(Debug, Clone)]
pub struct CommandNotifier {
    argv: Vec<String>,
}

impl CommandNotifier {
    /// A notifier running `argv` (program first).
    pub fn new(argv: Vec<String>) -> Result<Self, NotifyError> {
        if argv.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(NotifyError::Empty);
        }
        Ok(Self { argv })
    }

    /// Runs the command for `prompt` and waits for it.
    pub fn run(&self, prompt: &Prompt) -> Result<(), NotifyError> {
        let program = self.argv[0].clone();
        let io = |source| NotifyError::Io {
            program: program.clone(),
            source,
        };
        let mut child = Command::new(&program)
            .args(&self.argv[1..])
            .arg(prompt.kind.tag())
            .arg(&prompt.id)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(io)?;
        let mut line = serde_json::to_vec(prompt).unwrap_or_default();
        line.push(b'\n');
        if let Some(mut stdin) = child.stdin.take() {
            // A program that ignores its input may close it early.
            if let Err(e) = stdin.write_all(&line) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(io(e));
                }
            }
        }
        let status = child.wait().map_err(io)?;
        if !status.success() {
            return Err(NotifyError::Status { program, status });
        }
        Ok(())
    }
}

impl Notifier for CommandNotifier {
    fn notify(&self, prompt: &Prompt) {
        LogNotifier.notify(prompt);
        let me = self.clone();
        let prompt = prompt.clone();
        // In the background: a slow desktop must not hold up the daemon.
        std::thread::spawn(move || {
            if let Err(e) = me.run(&prompt) {
                tracing::warn!(prompt = %prompt.id, "notification failed: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests;
