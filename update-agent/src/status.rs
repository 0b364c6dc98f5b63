//! `update-agent status`: enrollment, attached devices, staged and pending
//! updates, as a struct that prints as text or JSON. Read-only: it never
//! creates the state directory or database.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use catalog::assignment::AssignmentSet;
use catalog::protocol::DeviceReport;
use catalog::tuf::Signed;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::enroll::{self, EnrollError, Enrollment};
use crate::identity::{IdentityError, SystemId};
use crate::pipeline::not_assigned;
use crate::state::{DownloadProgress, StagedUpdate, State, StateError, UpdateStatus, STATE_FILE};

/// Why the status cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The enrollment record.
    #[error(transparent)]
    Enroll(#[from] EnrollError),
    /// The SystemID.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The state database.
    #[error(transparent)]
    State(#[from] StateError),
}

/// One attached device with what the history knows of it.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceStatus {
    /// Stable identity.
    pub identity: String,
    /// What the backend reports.
    #[serde(flatten)]
    pub report: DeviceReport,
    /// First seen by the daemon on this host, if it has scanned it.
    pub first_seen: Option<DateTime<Utc>>,
    /// Last seen by the daemon.
    pub last_seen: Option<DateTime<Utc>>,
    /// What holds its update, or why the server gave it none ("no policy:
    /// …", "up to date: …"); `None` before the first check-in about it.
    pub decision: Option<String>,
}

/// An update not installed yet, and why it is waiting.
#[derive(Debug, Clone, Serialize)]
pub struct PendingUpdate {
    /// The staged update.
    #[serde(flatten)]
    pub update: StagedUpdate,
    /// Why it waits (the stored reason, or what the status implies).
    pub waiting_for: String,
}

/// Everything `status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The state directory.
    pub state_dir: PathBuf,
    /// The SystemID, once generated.
    pub system_id: Option<String>,
    /// The enrollment, if enrolled.
    pub enrollment: Option<Enrollment>,
    /// The device backend (`hardware` or `simulated`).
    pub backend: String,
    /// Attached devices.
    pub devices: Vec<DeviceStatus>,
    /// Why devices could not be listed, if they could not.
    pub device_error: Option<String>,
    /// Every staged update.
    pub staged_updates: Vec<StagedUpdate>,
    /// The ones not installed yet, with the reason.
    pub pending_updates: Vec<PendingUpdate>,
    /// Downloads in progress.
    pub downloads: Vec<DownloadProgress>,
    /// Events spooled, not yet acknowledged by the server.
    pub pending_events: usize,
    /// Questions for the user (updates to accept, decline or defer;
    /// devices to replug), with what holds an accepted one back.
    pub prompts: Vec<crate::prompts::Prompt>,
}

fn waiting_for(u: &StagedUpdate) -> String {
    if let Some(r) = &u.reason {
        return r.clone();
    }
    match u.status {
        UpdateStatus::Staged => "not scheduled yet",
        UpdateStatus::Waiting => "waiting (no reason recorded)",
        UpdateStatus::Flashing => "being installed",
        UpdateStatus::AwaitingReplug => "awaiting replug: unplug and replug the device",
        UpdateStatus::Failed => "retried at the next window or poll",
        UpdateStatus::Installed => "installed",
    }
    .to_owned()
}

/// The server's reasons for devices without an assignment, from the stored
/// document. It was verified before it was stored in the agent's own
/// database; `status` only shows it (nothing acts on it here), so it is read
/// without the key, and expired documents still say what they said.
fn stored_reasons(state: &State) -> Result<BTreeMap<String, String>, StateError> {
    let Some(stored) = state.assignments()? else {
        return Ok(BTreeMap::new());
    };
    Ok(
        Signed::<AssignmentSet>::from_slice("assignments", stored.document.as_bytes())
            .map(|doc| not_assigned(&doc.signed))
            .unwrap_or_default(),
    )
}

impl StatusReport {
    /// Collects the status from `state_dir` and the devices `scan` returned.
    pub fn collect(
        state_dir: &Path,
        backend: &str,
        scan: Result<Vec<DeviceReport>, String>,
    ) -> Result<Self, StatusError> {
        let system_id = SystemId::load(state_dir)?.map(|s| s.to_string());
        let enrollment = enroll::load(state_dir)?;
        let state = if state_dir.join(STATE_FILE).exists() {
            Some(State::open_in(state_dir)?)
        } else {
            None
        };
        let history = state
            .as_ref()
            .map(State::devices)
            .transpose()?
            .unwrap_or_default();
        let (reports, device_error) = match scan {
            Ok(r) => (r, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let (staged_updates, downloads, pending_events, prompts) = match &state {
            Some(s) => (
                s.updates()?,
                s.downloads()?,
                s.pending_events(usize::MAX)?.len(),
                s.shown_prompts()?,
            ),
            None => (Vec::new(), Vec::new(), 0, Vec::new()),
        };
        let pending_updates: Vec<PendingUpdate> = staged_updates
            .iter()
            .filter(|u| u.status.is_pending())
            .map(|u| PendingUpdate {
                update: u.clone(),
                waiting_for: waiting_for(u),
            })
            .collect();
        let not_assigned = match &state {
            Some(s) => stored_reasons(s)?,
            None => BTreeMap::new(),
        };
        let devices = reports
            .into_iter()
            .map(|report| {
                let identity = report.identity();
                let seen = history.iter().find(|h| h.identity == identity);
                let decision = pending_updates
                    .iter()
                    .find(|p| p.update.device == identity)
                    .map(|p| format!("{}: {}", p.update.target, p.waiting_for))
                    .or_else(|| not_assigned.get(&identity).cloned());
                DeviceStatus {
                    first_seen: seen.map(|h| h.first_seen),
                    last_seen: seen.map(|h| h.last_seen),
                    decision,
                    identity,
                    report,
                }
            })
            .collect();
        Ok(Self {
            state_dir: state_dir.to_owned(),
            system_id,
            enrollment,
            backend: backend.to_owned(),
            devices,
            device_error,
            staged_updates,
            pending_updates,
            downloads,
            pending_events,
            prompts,
        })
    }

    /// The report for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let na = "-";
        let _ = writeln!(out, "state directory: {}", self.state_dir.display());
        let _ = writeln!(
            out,
            "system id:       {}",
            self.system_id.as_deref().unwrap_or(na)
        );
        match &self.enrollment {
            Some(e) => {
                let _ = writeln!(
                    out,
                    "enrolled:        agent {} in tenant {} at {}",
                    e.agent_id, e.tenant, e.server_url
                );
                let _ = writeln!(out, "pinned root:     version {}", e.pinned_root_version);
                if e.suspected_clone {
                    let _ = writeln!(
                        out,
                        "WARNING:         the server suspects this host is a clone of agent {}",
                        e.clone_of.as_deref().unwrap_or(na)
                    );
                }
            }
            None => {
                let _ = writeln!(out, "enrolled:        no (run `update-agent enroll`)");
            }
        }
        let _ = writeln!(out, "devices ({}):", self.backend);
        if let Some(e) = &self.device_error {
            let _ = writeln!(out, "  cannot list devices: {e}");
        } else if self.devices.is_empty() {
            let _ = writeln!(out, "  none attached");
        }
        for d in &self.devices {
            let r = &d.report;
            let _ = writeln!(
                out,
                "  {:<32} {:04x}:{:04x} {:<8} {}",
                d.identity,
                r.vendor_id,
                r.product_id,
                r.firmware_version.as_deref().unwrap_or(na),
                r.product.as_deref().unwrap_or(na)
            );
            if let Some(decision) = &d.decision {
                let _ = writeln!(out, "    {decision}");
            }
        }
        let _ = writeln!(out, "staged updates:  {}", self.staged_updates.len());
        for p in &self.pending_updates {
            let u = &p.update;
            let _ = writeln!(
                out,
                "  {} for {}: {:?}, {}",
                u.target, u.device, u.status, p.waiting_for
            );
        }
        let _ = writeln!(out, "prompts:         {}", self.prompts.len());
        for p in &self.prompts {
            let _ = writeln!(out, "  {} {:?}: {}", p.id, p.kind, p.message);
            if let Some(why) = &p.blocked_by {
                let _ = writeln!(out, "    waiting: {why}");
            }
        }
        let _ = writeln!(out, "downloads:       {}", self.downloads.len());
        let _ = writeln!(out, "pending events:  {}", self.pending_events);
        out
    }
}
