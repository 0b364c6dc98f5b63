//! The enrolled agent's conversation with the server: check in (reporting
//! users, devices and update states), verify and persist the signed
//! assignments, run the update [`Pipeline`], send the event spool.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use catalog::assignment::{verify_assignments, AssignmentError, AssignmentSet};
use catalog::checkin::{CheckIn, UpdatePhase, UpdateState, UserReport, MAX_TEXT};
use catalog::protocol::DeviceReport;
use catalog::tuf::PublicKey;
use chrono::{DateTime, Utc};
use dfu::host::FlashOptions;

use crate::client::{CheckInAnswer, ClientError, ServerClient};
use crate::daemon::{self, CheckInError};
use crate::devices::DeviceBackend;
use crate::enroll::{self, EnrollError};
use crate::events::{self, tamper_event, FlushError, FlushReport};
use crate::fetch::HttpFetcher;
use crate::ldap::LdapGroups;
use crate::pipeline::{PassReport, Pipeline, PipelineError, Remote};
use crate::staging::{StageError, Staging};
use crate::state::{State, StateError, StoredAssignments, UpdateStatus};

/// The staging directory, relative to the state directory.
pub const STAGING_DIR: &str = "staging";
/// The TUF client's metadata directory, relative to the state directory.
pub const METADATA_DIR: &str = "metadata";

/// Why a check-in and update pass failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The server conversation.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The assignment document was refused (nothing was acted on).
    #[error("assignments refused: {0}")]
    Assignments(#[from] AssignmentError),
    /// The server's answer had no assignment document, and none is stored.
    #[error("no assignments received yet")]
    NoAssignments,
    /// The state database.
    #[error(transparent)]
    State(#[from] StateError),
    /// The pipeline.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// Enrollment files.
    #[error(transparent)]
    Enrollment(#[from] EnrollError),
    /// The staging directory.
    #[error(transparent)]
    Staging(#[from] StageError),
}

/// Verifies an assignment document and persists it before anything acts on
/// it. A refused document is reported as `tamper_detected` and changes nothing.
pub fn accept_assignments(
    state: &State,
    key: &PublicKey,
    agent: &str,
    document: &[u8],
    etag: Option<String>,
    now: DateTime<Utc>,
) -> Result<AssignmentSet, AgentError> {
    let trusted = state.assignments()?.map_or(0, |s| s.version);
    match verify_assignments(document, key, agent, trusted, now) {
        Ok(set) => {
            state.put_assignments(&StoredAssignments {
                document: String::from_utf8_lossy(document).into_owned(),
                version: set.version,
                etag,
                poll_interval_secs: set.poll_interval_secs,
            })?;
            Ok(set)
        }
        Err(e) => {
            state.spool(&tamper_event("assignment", None, &e.to_string(), now))?;
            Err(e.into())
        }
    }
}

fn clip(s: &str) -> String {
    crate::events::clip_to(s, MAX_TEXT)
}

/// The agent core for one device backend.
pub struct AgentCore<B> {
    state: Arc<State>,
    client: ServerClient,
    key: PublicKey,
    pipeline: Pipeline<B>,
    poll_interval: Option<chrono::Duration>,
    host: Option<SimulatedHost>,
    ldap: LdapGroups,
    /// The last pass held an update back only by a guard.
    retry_soon: bool,
    /// The update states the last successful check-in reported.
    reported_states: Option<Vec<UpdateState>>,
    /// The last pass changed them: report again soon, not at the next poll.
    report_due: bool,
    /// The stored assignment document, verified once per content.
    verified: verified::VerifiedDocument,
}

/// The host name and logged-in accounts a simulated host reports instead of
/// this machine's (many simulated agents share one process in the fleet simulator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedHost {
    /// The host name sent at check-in.
    pub hostname: String,
    /// The accounts logged in.
    pub users: Vec<UserReport>,
}

impl<B> std::fmt::Debug for AgentCore<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCore")
            .field("client", &self.client)
            .field("pipeline", &self.pipeline)
            .finish_non_exhaustive()
    }
}

impl<B: DeviceBackend> AgentCore<B> {
    /// The core of the agent enrolled in `state_dir`, downloading over HTTP
    /// from the server (and web mirrors) and from shares.
    pub fn open(
        state_dir: &Path,
        state: Arc<State>,
        backend: B,
        ca_cert: Option<&Path>,
        flash: FlashOptions,
    ) -> Result<Self, AgentError> {
        let http = enroll::http_client(ca_cert)?;
        let mut core = Self::open_with_http(state_dir, state, backend, http, flash)?;
        // LDAPS / StartTLS also trust the agent's CA file.
        if let Some(ca) = ca_cert {
            match crate::ldap::Evaluator::new().with_ca_file(ca) {
                Ok(e) => core.ldap = LdapGroups::new(e),
                Err(e) => tracing::warn!("LDAP groups: {e}; using the system's roots only"),
            }
        }
        Ok(core)
    }

    /// [`Self::open`] over a given HTTP client (the fleet simulator shares
    /// one among thousands of simulated agents in one process).
    pub fn open_with_http(
        state_dir: &Path,
        state: Arc<State>,
        backend: B,
        http: reqwest::blocking::Client,
        flash: FlashOptions,
    ) -> Result<Self, AgentError> {
        let client = ServerClient::from_state_dir_with(state_dir, http)?;
        let http = HttpFetcher::with_client(client.http().clone());
        let repo = format!("{}/repo", client.server_url());
        let remote = Remote {
            metadata: Box::new(http.clone()),
            metadata_base: format!("{repo}/metadata"),
            server: Box::new(http.clone()),
            server_base: repo,
            web: Box::new(http),
        };
        let key = enroll::assignment_key(state_dir)?;
        let staging = Staging::open(state_dir.join(STAGING_DIR))?;
        let pipeline = Pipeline::new(
            state.clone(),
            backend,
            staging,
            state_dir.join(METADATA_DIR),
            remote,
            flash,
            key.clone(),
        );
        Ok(Self::new(state, client, key, pipeline))
    }

    /// A core from its parts.
    pub fn new(
        state: Arc<State>,
        client: ServerClient,
        key: PublicKey,
        pipeline: Pipeline<B>,
    ) -> Self {
        Self {
            state,
            client,
            key,
            pipeline,
            poll_interval: None,
            host: None,
            ldap: LdapGroups::new(crate::ldap::Evaluator::new()),
            retry_soon: false,
            reported_states: None,
            report_due: false,
            verified: verified::VerifiedDocument::default(),
        }
    }

    /// Reports `host` at check-in instead of this machine's host name and users.
    pub fn with_simulated_host(mut self, host: SimulatedHost) -> Self {
        self.host = Some(host);
        self
    }

    /// The check-in body: this host, its devices and their update states.
    pub fn report(&self) -> Result<CheckIn, AgentError> {
        let devices = self
            .pipeline
            .backend()
            .inventory()
            .map_err(PipelineError::from)?;
        let update_states = self.update_states(&devices)?;
        let mut devices = devices;
        devices.truncate(catalog::checkin::MAX_DEVICES);
        let (hostname, users, ldap_memberships) = match &self.host {
            Some(h) => (clip(&h.hostname), h.users.clone(), Default::default()),
            None => self.users()?,
        };
        Ok(CheckIn {
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            platform: std::env::consts::OS.to_owned(),
            hostname,
            users,
            devices,
            ldap_memberships,
            update_states,
        })
    }

    /// The update states reported at check-in for `devices` (every staged
    /// update, and the installed security counter of attached devices).
    fn update_states(&self, devices: &[DeviceReport]) -> Result<Vec<UpdateState>, AgentError> {
        let mut states: std::collections::BTreeMap<String, UpdateState> = Default::default();
        let mut updates = self.state.updates()?;
        updates.sort_by_key(|u| u.updated_at);
        for u in updates {
            let phase = match u.status {
                UpdateStatus::Installed => UpdatePhase::Installed,
                UpdateStatus::Failed => UpdatePhase::Failed,
                UpdateStatus::AwaitingReplug => UpdatePhase::AwaitingReplug,
                UpdateStatus::Flashing => UpdatePhase::Flashing,
                UpdateStatus::Waiting => UpdatePhase::Waiting,
                UpdateStatus::Staged => UpdatePhase::Staged,
            };
            let (deferrals, deferred) = scheduling::prompt_view(&self.state, &u.device, &u.digest)?;
            let phase = match phase {
                UpdatePhase::Staged | UpdatePhase::Waiting if deferred => UpdatePhase::Deferred,
                other => other,
            };
            states.insert(
                u.device.clone(),
                UpdateState {
                    device: u.device.clone(),
                    installed_security_counter: None,
                    target_name: Some(u.target.clone()),
                    phase: Some(phase),
                    deferrals,
                    message: u.reason.as_deref().map(clip).filter(|m| !m.is_empty()),
                },
            );
        }
        for d in devices {
            if let Some(i) = self.state.installed(&d.identity())? {
                let s = states.entry(i.device.clone()).or_insert(UpdateState {
                    device: i.device.clone(),
                    installed_security_counter: None,
                    target_name: None,
                    phase: None,
                    deferrals: 0,
                    message: None,
                });
                s.installed_security_counter = Some(i.security_counter);
            }
        }
        let mut update_states: Vec<UpdateState> = states.into_values().collect();
        update_states.truncate(catalog::checkin::MAX_UPDATE_STATES);
        Ok(update_states)
    }

    /// Whether the update states differ from what the last check-in
    /// reported (a pass installed, failed or started waiting since).
    pub fn states_changed(&self) -> Result<bool, AgentError> {
        let Some(reported) = &self.reported_states else {
            return Ok(false);
        };
        let devices = self
            .pipeline
            .backend()
            .inventory()
            .map_err(PipelineError::from)?;
        Ok(self.update_states(&devices)? != *reported)
    }

    /// This host's name, its logged-in accounts after the tenant's rules
    /// (excluded dropped, shared as `account@hostname`), and their LDAP
    /// groups (evaluated for the account, reported under the recorded name).
    #[allow(clippy::type_complexity)]
    fn users(
        &self,
    ) -> Result<(String, Vec<UserReport>, BTreeMap<String, Vec<String>>), AgentError> {
        let hostname = Some(clip(&crate::identity::hostname()))
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".into());
        let rules = LdapGroups::stored(&self.state)?.accounts;
        let sessions =
            crate::users::session_users(&crate::users::logged_in_accounts(), &rules, &hostname);
        let accounts: Vec<String> = sessions.iter().map(|u| u.account.clone()).collect();
        let mut found = self.ldap.memberships(&self.state, &accounts)?;
        let ldap = sessions
            .iter()
            .filter_map(|u| found.remove(&u.account).map(|g| (u.name.clone(), g)))
            .collect();
        let users = sessions
            .into_iter()
            .map(|u| UserReport {
                account: u.name,
                display_name: None,
            })
            .collect();
        Ok((hostname, users, ldap))
    }

    /// One check-in: the verified assignments (new, or the stored ones when
    /// the server answers 304).
    pub fn check_in_only(&mut self, now: DateTime<Utc>) -> Result<AssignmentSet, AgentError> {
        let (set, reported) = self.check_in_once(now)?;
        // New LDAP group definitions: evaluated now; when that changes what
        // the server was told, check in again (once).
        match reported {
            Some(old) if self.report()?.ldap_memberships != old => Ok(self.check_in_once(now)?.0),
            _ => Ok(set),
        }
    }

    /// One check-in; with the memberships it reported when the answer
    /// brought changed LDAP group definitions.
    #[allow(clippy::type_complexity)]
    fn check_in_once(
        &mut self,
        now: DateTime<Utc>,
    ) -> Result<(AssignmentSet, Option<BTreeMap<String, Vec<String>>>), AgentError> {
        let body = self.report()?;
        let mut changed = false;
        let stored = self.state.assignments()?;
        let etag = stored.as_ref().and_then(|s| s.etag.clone());
        let set = match self.client.check_in(&body, etag.as_deref())? {
            CheckInAnswer::NotModified => {
                let stored = stored.ok_or(AgentError::NoAssignments)?;
                self.verified.verify(
                    stored.document.as_bytes(),
                    &self.key,
                    self.client.agent(),
                    stored.version,
                    now,
                )?
            }
            CheckInAnswer::New { response, etag } => {
                let bytes = serde_json::to_vec(&response.assignments).unwrap_or_default();
                let set = accept_assignments(
                    &self.state,
                    &self.key,
                    self.client.agent(),
                    &bytes,
                    etag,
                    now,
                )?;
                // LDAP definitions only from the verified document, signed
                // by a key the catalog still endorses: the directory a bind
                // goes to is the one the tenant's key signed.
                match self.pipeline.check_assignment_key(&set.tenant, now) {
                    Ok(()) => {
                        changed =
                            self.ldap
                                .update(&self.state, &set.ldap_groups, &response.accounts)?;
                    }
                    Err(why) => tracing::warn!(
                        "LDAP group definitions of the new assignments not used: {why}"
                    ),
                }
                set
            }
        };
        self.poll_interval = i64::try_from(set.poll_interval_secs)
            .ok()
            .map(chrono::Duration::seconds);
        self.reported_states = Some(body.update_states);
        Ok((set, changed.then_some(body.ldap_memberships)))
    }

    /// A check-in followed by one pipeline pass and the event spool.
    pub fn check_in_and_update(&mut self, now: DateTime<Utc>) -> Result<PassReport, AgentError> {
        let set = self.check_in_only(now)?;
        let report = self.pipeline.run(&set, now)?;
        self.flush_logged();
        Ok(report)
    }

    /// Recovery at start (devices left in DFU mode), then the event spool.
    pub fn recover(&mut self, now: DateTime<Utc>) -> Result<PassReport, AgentError> {
        let report = self.pipeline.recover(now)?;
        self.flush_logged();
        Ok(report)
    }

    /// Sends the event spool.
    pub fn flush(&self) -> Result<FlushReport, FlushError> {
        events::flush(&self.state, &self.client)
    }

    /// Logs what a check-in's pass did and says how the check-in went.
    fn after_check_in(&mut self, pass: Result<PassReport, AgentError>) -> Result<(), CheckInError> {
        match pass {
            Ok(report) => {
                self.retry_soon = report.retry_soon;
                self.note_state_changes();
                for f in report.failures() {
                    tracing::warn!("update failed: {f}");
                }
                Ok(())
            }
            Err(AgentError::Client(ClientError::Unreachable { url, message })) => {
                Err(CheckInError::Unreachable(format!("{url}: {message}")))
            }
            Err(e) => Err(CheckInError::Refused(e.to_string())),
        }
    }

    /// Remembers whether the last pass changed what the server was told.
    fn note_state_changes(&mut self) {
        self.report_due = self.states_changed().unwrap_or_else(|e| {
            tracing::warn!("comparing update states: {e}");
            false
        });
    }

    fn flush_logged(&self) {
        match self.flush() {
            Ok(r) if r.not_available => {
                tracing::info!("the server has no events endpoint yet; events stay spooled")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("sending events failed (kept spooled): {e}"),
        }
    }
}

impl<B: DeviceBackend + Send> daemon::CheckIn for AgentCore<B> {
    fn check_in(&mut self, now: DateTime<Utc>) -> Result<(), CheckInError> {
        let pass = self.check_in_and_update(now);
        self.after_check_in(pass)
    }

    fn report(&mut self, now: DateTime<Utc>) -> Result<(), CheckInError> {
        // A pass without reminders: the user is reminded at polls and
        // logins, not because the agent reported something.
        let pass = self
            .check_in_only(now)
            .and_then(|_| AgentCore::act(self, now));
        self.after_check_in(pass)
    }

    fn start(&mut self, now: DateTime<Utc>) {
        if let Err(e) = self.recover(now) {
            tracing::warn!("recovery at start failed: {e}");
        }
    }

    fn send_events(&mut self, _now: DateTime<Utc>) {
        self.flush_logged();
    }

    fn poll_interval(&self) -> Option<chrono::Duration> {
        self.poll_interval
    }

    fn act(&mut self, now: DateTime<Utc>) {
        match AgentCore::act(self, now) {
            Ok(report) => {
                self.note_state_changes();
                for f in report.failures() {
                    tracing::warn!("update failed: {f}");
                }
            }
            Err(e) => tracing::warn!("pass on the stored assignments failed: {e}"),
        }
    }

    fn windows(&self, now: DateTime<Utc>) -> Vec<catalog::window::MaintenanceWindow> {
        self.pending_windows(now).unwrap_or_else(|e| {
            tracing::warn!("maintenance windows: {e}");
            Vec::new()
        })
    }

    fn retry_soon(&self) -> bool {
        self.retry_soon
    }

    fn report_due(&self) -> bool {
        self.report_due
    }

    fn user_session(&mut self, now: DateTime<Utc>) {
        match self.remind(now) {
            Ok(n) => tracing::info!("user session started: {n} prompt(s) shown again"),
            Err(e) => tracing::warn!("reminders at login failed: {e}"),
        }
    }
}

/// Where the staged images of the agent in `state_dir` live.
pub fn staging_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(STAGING_DIR)
}

mod decisions;
mod scheduling;
mod verified;

pub use decisions::NO_WORD_FROM_THE_SERVER;

#[cfg(test)]
mod tests;
