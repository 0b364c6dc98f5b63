//! [`Fleet`]: group, policy and settings management, and the check-in.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use catalog::assignment::{sign_assignments, AssignmentSet};
use catalog::checkin::{CheckIn, CheckInResponse};
use catalog::digest::Sha256Digest;
use catalog::package::FirmwareRelease;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::compute::{compute, host_group, Reported};
use super::explain;
use super::inventory::{self, Sighting};
use super::software::{compute_software, AgentRelease};
use super::{
    get, get_existing, list, to_value, upsert, FirmwarePolicy, FirmwarePolicyInput, FleetError,
    Settings, SoftwarePolicy, SoftwarePolicyInput, Stamps, ALL_USERS,
};
use crate::auth::secret::new_id;
use crate::auth::Accounts;
use crate::store::{Agent, Key, Op, Store, StoreError, Table};

/// An assignment document is valid for this many poll intervals.
const VALID_POLLS: i64 = 4;
/// A cached document is re-signed once less than this many intervals remain.
const RESIGN_BELOW_POLLS: i64 = 2;

/// The last answer signed for one agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckInState {
    version: u64,
    content_sha256: String,
    expires: DateTime<Utc>,
    /// The response body (JSON text of [`CheckInResponse`]).
    body: String,
}

/// A check-in answer: the body and its entity tag.
#[derive(Debug, Clone)]
pub struct CheckInAnswer {
    /// JSON of [`CheckInResponse`].
    pub body: String,
    /// `"<sha256 of body>"`.
    pub etag: String,
}

/// The fleet service (cheap to clone).
#[derive(Debug, Clone)]
pub struct Fleet {
    pub(in crate::fleet) accounts: Accounts,
    catalog_dir: PathBuf,
    keys_dir: PathBuf,
}

fn settings_key(tenant: &str) -> Key {
    Key::new(tenant, "fleet")
}

fn priority_claim(p: u32) -> String {
    format!("group-priority:{p}")
}

/// Claim changes for a record update: release `old`, take `new`.
fn claim_ops(tenant: &str, id: &str, old: Option<String>, new: Option<String>) -> Vec<Op> {
    if old == new {
        return Vec::new();
    }
    let mut ops = Vec::new();
    if let Some(o) = old {
        ops.push(Op::Delete(Table::Unique, Key::new(tenant, o)));
    }
    if let Some(n) = new {
        ops.push(Op::Insert(
            Table::Unique,
            Key::new(tenant, n),
            serde_json::Value::String(id.to_owned()),
        ));
    }
    ops
}

/// The id of the tenant's generation marker (in the settings table).
const GENERATION_ID: &str = "generation";

/// Batches committed by this process that changed what check-in answers
/// depend on (see [`commit_changing`]).
static LOCAL_CHANGES: AtomicU64 = AtomicU64::new(0);

/// Commits a batch that changes what `tenant`'s check-in answers depend on
/// (groups, policies, settings, inventory deletions): the batch also gives
/// the tenant's generation marker a fresh random value, so other processes
/// notice the change, and this process counts it once it is committed (see
/// [`Fleet::generation_marker`], [`Fleet::local_changes`]).
pub(crate) fn commit_changing(
    store: &dyn Store,
    tenant: &str,
    mut ops: Vec<Op>,
) -> Result<(), StoreError> {
    let key = Key::new(tenant, GENERATION_ID);
    ops.push(Op::Delete(Table::Settings, key.clone()));
    ops.push(Op::Insert(
        Table::Settings,
        key,
        serde_json::Value::String(new_id()),
    ));
    store.commit(ops)?;
    // After the commit: a check-in that sees the new count reads new data.
    LOCAL_CHANGES.fetch_add(1, Ordering::AcqRel);
    Ok(())
}

impl Fleet {
    /// The service over `accounts`' store, reading releases from the catalog.
    pub fn new(accounts: Accounts, catalog_dir: PathBuf, keys_dir: PathBuf) -> Self {
        Self {
            accounts,
            catalog_dir,
            keys_dir,
        }
    }

    pub(in crate::fleet) fn store(&self) -> &dyn Store {
        self.accounts.store()
    }

    pub(in crate::fleet) fn commit(
        &self,
        ops: Vec<Op>,
        conflict: impl FnOnce() -> String,
    ) -> Result<(), FleetError> {
        // Every change but a check-in's own record may change answers.
        let changed = ops.iter().find_map(|op| {
            let (table, key) = op.target();
            (table != Table::CheckIns).then(|| key.tenant.clone())
        });
        let result = match changed {
            Some(tenant) => commit_changing(self.store(), &tenant, ops),
            None => self.store().commit(ops),
        };
        match result {
            Err(StoreError::Conflict { .. }) => Err(FleetError::Conflict(conflict())),
            other => Ok(other?),
        }
    }

    /// How many batches this process committed through [`commit_changing`];
    /// a cache keyed on it notices this process's changes at once.
    pub fn local_changes() -> u64 {
        LOCAL_CHANGES.load(Ordering::Acquire)
    }

    /// The store's [`Store::modified`] stamp: the embedded store's file
    /// modification time, which every commit of any process changes; `None`
    /// for a backend without one (PostgreSQL: then callers re-read the
    /// marker every time).
    pub fn store_file_stamp(&self) -> Option<SystemTime> {
        self.store().modified()
    }

    /// The tenant's generation marker: a value that changes with every
    /// batch committed through [`commit_changing`], by any process.
    pub fn generation_marker(&self, tenant: &str) -> Result<Option<String>, FleetError> {
        let v = self
            .store()
            .get(Table::Settings, &Key::new(tenant, GENERATION_ID))?;
        Ok(v.map(|v| v.to_string()))
    }

    /// What else check-in answers of `tenant` depend on: the catalog's
    /// release index and the tenant's assignment key, as values (length,
    /// modification time) that change when either file is replaced or
    /// written (two `stat`s).
    pub fn file_stamps(&self, tenant: &str) -> [FileStamp; 2] {
        [
            file_stamp(&self.release_index()),
            file_stamp(&self.accounts.assignment_key_path(tenant)),
        ]
    }

    fn release_index(&self) -> PathBuf {
        self.catalog_dir.join("releases.json")
    }

    /// The catalog's current releases: read again when the release index
    /// changed (an import by the CLI or another node) or a second passed
    /// (file times can be coarse, e.g. on a network share), else from
    /// memory.
    pub fn releases(&self) -> Result<Vec<FirmwareRelease>, FleetError> {
        type Cached = (PathBuf, FileStamp, Instant, Vec<FirmwareRelease>);
        static CACHE: Mutex<Option<Cached>> = Mutex::new(None);
        const KEPT: Duration = Duration::from_secs(1);
        let stamp = file_stamp(&self.release_index());
        {
            let cached = CACHE.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((dir, s, read_at, releases)) = cached.as_ref() {
                let fresh = read_at.elapsed() < KEPT;
                if *dir == self.catalog_dir && *s == stamp && stamp.is_some() && fresh {
                    return Ok(releases.clone());
                }
            }
        }
        // Stamped before the read: a change during it is read next time.
        let read_at = Instant::now();
        let c = catalog::Catalog::open(&self.catalog_dir, &self.keys_dir)?;
        let releases = c.releases().to_vec();
        *CACHE.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((self.catalog_dir.clone(), stamp, read_at, releases.clone()));
        Ok(releases)
    }

    /// The tenant's settings (defaults until changed).
    pub fn settings(&self, tenant: &str) -> Result<Settings, FleetError> {
        Ok(get(self.store(), Table::Settings, tenant, "fleet")?.unwrap_or_default())
    }

    /// Replaces the tenant's settings.
    pub fn set_settings(&self, tenant: &str, s: &Settings) -> Result<(), FleetError> {
        s.validate()?;
        let exists = self
            .store()
            .get(Table::Settings, &settings_key(tenant))?
            .is_some();
        let op = upsert(Table::Settings, settings_key(tenant), to_value(s), exists);
        self.commit(vec![op], || "settings changed concurrently; retry".into())
    }

    /// The tenant's firmware policies.
    pub fn firmware_policies(&self, tenant: &str) -> Result<Vec<FirmwarePolicy>, FleetError> {
        list(self.store(), Table::FirmwarePolicies, tenant)
    }

    /// Creates (`id` = `None`) or replaces a firmware policy, refusing a
    /// deployment type the catalog release cannot do.
    pub fn put_firmware_policy(
        &self,
        tenant: &str,
        id: Option<&str>,
        mut spec: FirmwarePolicyInput,
    ) -> Result<FirmwarePolicy, FleetError> {
        spec.validate()?;
        spec.group = self.group_ref(tenant, spec.group)?;
        self.check_group(tenant, spec.group.as_deref())?;
        spec.check_catalog(&self.releases()?)?;
        let now = self.accounts.now();
        let old: Option<FirmwarePolicy> = match id {
            Some(id) => Some(get_existing(
                self.store(),
                Table::FirmwarePolicies,
                tenant,
                id,
            )?),
            None => None,
        };
        let p = FirmwarePolicy {
            tenant: tenant.to_owned(),
            id: id.map_or_else(new_id, str::to_owned),
            stamps: Stamps {
                created_at: old.as_ref().map_or(now, |o| o.stamps.created_at),
                updated_at: now,
            },
            spec,
        };
        let key = Key::new(tenant, &p.id);
        let mut ops = vec![upsert(
            Table::FirmwarePolicies,
            key,
            to_value(&p),
            old.is_some(),
        )];
        ops.extend(claim_ops(
            tenant,
            &p.id,
            old.and_then(|o| o.spec.claim()),
            p.spec.claim(),
        ));
        let model = p.spec.model.model_key();
        self.commit(ops, || {
            format!("an enabled policy for {model} and this group exists; disable it first")
        })?;
        Ok(p)
    }

    /// Copies a firmware policy (disabled, so it can be edited before use),
    /// optionally for another group.
    pub fn copy_firmware_policy(
        &self,
        tenant: &str,
        id: &str,
        name: Option<String>,
        group: Option<String>,
    ) -> Result<FirmwarePolicy, FleetError> {
        let src: FirmwarePolicy = get_existing(self.store(), Table::FirmwarePolicies, tenant, id)?;
        let mut spec = src.spec;
        spec.name = name.unwrap_or_else(|| format!("Copy of {}", spec.name));
        if group.is_some() {
            spec.group = group;
        }
        spec.enabled = false;
        self.put_firmware_policy(tenant, None, spec)
    }

    /// Deletes a firmware policy.
    pub fn delete_firmware_policy(&self, tenant: &str, id: &str) -> Result<(), FleetError> {
        let p: FirmwarePolicy = get_existing(self.store(), Table::FirmwarePolicies, tenant, id)?;
        let mut ops = vec![Op::Delete(Table::FirmwarePolicies, Key::new(tenant, id))];
        ops.extend(claim_ops(tenant, id, p.spec.claim(), None));
        self.commit(ops, String::new)
    }

    /// The tenant's software policies.
    pub fn software_policies(&self, tenant: &str) -> Result<Vec<SoftwarePolicy>, FleetError> {
        list(self.store(), Table::SoftwarePolicies, tenant)
    }

    /// Creates (`id` = `None`) or replaces a software policy.
    pub fn put_software_policy(
        &self,
        tenant: &str,
        id: Option<&str>,
        mut spec: SoftwarePolicyInput,
    ) -> Result<SoftwarePolicy, FleetError> {
        spec.validate()?;
        spec.group = self.group_ref(tenant, spec.group)?;
        self.check_group(tenant, spec.group.as_deref())?;
        let now = self.accounts.now();
        let old: Option<SoftwarePolicy> = match id {
            Some(id) => Some(get_existing(
                self.store(),
                Table::SoftwarePolicies,
                tenant,
                id,
            )?),
            None => None,
        };
        let p = SoftwarePolicy {
            tenant: tenant.to_owned(),
            id: id.map_or_else(new_id, str::to_owned),
            stamps: Stamps {
                created_at: old.as_ref().map_or(now, |o| o.stamps.created_at),
                updated_at: now,
            },
            spec,
        };
        let key = Key::new(tenant, &p.id);
        let mut ops = vec![upsert(
            Table::SoftwarePolicies,
            key,
            to_value(&p),
            old.is_some(),
        )];
        ops.extend(claim_ops(
            tenant,
            &p.id,
            old.and_then(|o| o.spec.claim()),
            p.spec.claim(),
        ));
        self.commit(ops, || {
            "an enabled software policy for this platform and group exists; disable it first".into()
        })?;
        Ok(p)
    }

    /// Copies a software policy (disabled, so it can be edited before use),
    /// optionally for another group.
    pub fn copy_software_policy(
        &self,
        tenant: &str,
        id: &str,
        name: Option<String>,
        group: Option<String>,
    ) -> Result<SoftwarePolicy, FleetError> {
        let src: SoftwarePolicy = get_existing(self.store(), Table::SoftwarePolicies, tenant, id)?;
        let mut spec = src.spec;
        spec.name = name.unwrap_or_else(|| format!("Copy of {}", spec.name));
        if group.is_some() {
            spec.group = group;
        }
        spec.enabled = false;
        self.put_software_policy(tenant, None, spec)
    }

    /// Deletes a software policy.
    pub fn delete_software_policy(&self, tenant: &str, id: &str) -> Result<(), FleetError> {
        let p: SoftwarePolicy = get_existing(self.store(), Table::SoftwarePolicies, tenant, id)?;
        let mut ops = vec![Op::Delete(Table::SoftwarePolicies, Key::new(tenant, id))];
        ops.extend(claim_ops(tenant, id, p.spec.claim(), None));
        self.commit(ops, String::new)
    }

    /// Handles one check-in: records the inventory, computes the
    /// assignments and answers with the signed document. The document is
    /// re-used (same bytes, same `ETag`) while its content is unchanged and
    /// it is not close to expiry; its version increases whenever the content
    /// changes. Check-ins of one agent (a retry while the first is still in
    /// flight, two processes sharing a credential) run one after the other:
    /// each reads what the one before wrote.
    pub fn check_in(&self, agent: &Agent, c: &CheckIn) -> Result<CheckInAnswer, FleetError> {
        let view = self.tenant_view(&agent.tenant)?;
        self.check_in_with(agent, c, &view)
    }

    /// The tenant's configuration as a check-in reads it (see [`TenantView`]).
    pub fn tenant_view(&self, tenant: &str) -> Result<TenantView, FleetError> {
        Ok(TenantView {
            settings: self.settings(tenant)?,
            groups: self.groups(tenant)?,
            policies: self.firmware_policies(tenant)?,
            software: self.software_policies(tenant)?,
            rollouts: self.rollouts(tenant)?,
        })
    }

    /// [`Fleet::check_in`] on a view of the tenant's configuration read
    /// earlier at the tenant's current generation (the HTTP layer keeps one
    /// per tenant and generation: `http::checkin_cache`).
    pub fn check_in_with(
        &self,
        agent: &Agent,
        c: &CheckIn,
        view: &TenantView,
    ) -> Result<CheckInAnswer, FleetError> {
        let _one_at_a_time = agent_lock(&agent.tenant, &agent.id);
        // The lock holds in this process only: a check-in of the same agent
        // on another node may commit between our reads and our write, and
        // ours then conflicts. Read again and write again: the later wins.
        let mut attempt = 1;
        loop {
            match self.check_in_locked(agent, c, view) {
                Err(FleetError::Conflict(_)) if attempt < CHECK_IN_ATTEMPTS => attempt += 1,
                other => return other,
            }
        }
    }

    fn check_in_locked(
        &self,
        agent: &Agent,
        c: &CheckIn,
        view: &TenantView,
    ) -> Result<CheckInAnswer, FleetError> {
        c.validate()
            .map_err(|e| FleetError::invalid("check-in", e.to_string()))?;
        let tenant = agent.tenant.as_str();
        let now = self.accounts.now();
        let TenantView {
            settings,
            groups,
            policies,
            software: software_policies,
            rollouts: all_rollouts,
        } = view;
        let releases = self.releases()?;
        let mut reported = Reported {
            devices: &c.devices,
            ..Reported::default()
        };
        for u in &c.users {
            if let Some(name) = settings.user_name(&u.account, &c.hostname) {
                if let Some(l) = c.ldap_memberships.get(&u.account) {
                    reported.ldap.insert(name.clone(), l.clone());
                }
                if !reported.users.contains(&name) {
                    reported.users.push(name);
                }
            }
        }
        for s in &c.update_states {
            if let Some(n) = s.installed_security_counter {
                reported.installed_counters.insert(s.device.clone(), n);
            }
        }
        let host_group = host_group(groups, &reported).map_or(ALL_USERS, |g| g.id.as_str());
        let (rollouts, plans) = self.rollout_plans(
            tenant,
            &agent.id,
            host_group,
            &c.devices,
            &releases,
            all_rollouts,
        )?;
        reported.rollouts = plans;
        let outcome = compute(groups, policies, &releases, &reported);
        self.record_rollout_members(
            tenant,
            &rollouts,
            &c.devices,
            &outcome.assignments,
            &c.update_states,
            &releases,
        )?;
        let custom_group = (outcome.group != ALL_USERS).then_some(outcome.group.as_str());
        let software = compute_software(
            software_policies,
            custom_group,
            &c.platform,
            &c.agent_version,
            &[AgentRelease::this_build(&c.platform)],
        )
        .ok();
        let poll = groups
            .iter()
            .find(|g| g.id == outcome.group)
            .map_or(settings.all_users_poll_interval_secs, |g| {
                g.poll_interval_secs
            });
        let mut writes = inventory::sighting_ops(
            self.store(),
            tenant,
            &Sighting {
                agent: &agent.id,
                clone_of: agent.clone_of.as_deref(),
                hostname: &c.hostname,
                platform: &c.platform,
                agent_version: &c.agent_version,
                users: &reported.users,
                devices: &c.devices,
                group: &outcome.group,
                skipped: &outcome.skipped,
                update_states: &c.update_states,
            },
            now,
        )?;
        let mut content = serde_json::json!({
            "poll": poll,
            "assignments": outcome.assignments,
            "max_deferrals": outcome.max_deferrals,
        });
        if !outcome.multi_piece_guard_off.is_empty() {
            // Only when there is one, so cached answers keep their hash.
            content["multi_piece_guard_off"] = serde_json::json!(outcome.multi_piece_guard_off);
        }
        let not_assigned = explain::not_assigned(
            &outcome,
            groups,
            policies,
            rollouts.rollouts(),
            &c.devices,
            !reported.users.is_empty(),
        );
        if !not_assigned.is_empty() {
            content["not_assigned"] = serde_json::json!(not_assigned);
        }
        if let Some(s) = &software {
            // Only when there is one, so answers cached before software
            // offers existed keep their content hash.
            content["software"] = to_value(s);
        }
        let ldap_groups = super::ldap_definitions(groups);
        if !ldap_groups.is_empty() {
            // Signed with the assignments: a changed definition re-signs.
            content["ldap_groups"] = serde_json::json!(ldap_groups);
        }
        let content_sha256 = Sha256Digest::of(content.to_string().as_bytes()).to_hex();
        let old: Option<CheckInState> = get(self.store(), Table::CheckIns, tenant, &agent.id)?;
        let poll_delta = TimeDelta::seconds(i64::try_from(poll).unwrap_or(i64::MAX / 8));
        if let Some(o) = old.as_ref().filter(|o| {
            o.content_sha256 == content_sha256
                && o.expires - now > poll_delta * RESIGN_BELOW_POLLS as i32
        }) {
            self.commit_check_in(writes)?;
            return Ok(answer(o.body.clone()));
        }
        let version = match &old {
            Some(o) if o.content_sha256 == content_sha256 => o.version,
            Some(o) => o.version + 1,
            None => 1,
        };
        let expires = now + poll_delta * VALID_POLLS as i32;
        let mut set = AssignmentSet::new(
            tenant,
            &agent.id,
            version,
            expires,
            poll,
            outcome.assignments,
        );
        set.software = software;
        set.ldap_groups = ldap_groups;
        if !not_assigned.is_empty() {
            set.extra
                .insert("not_assigned".into(), serde_json::json!(not_assigned));
        }
        if !outcome.multi_piece_guard_off.is_empty() {
            set.extra.insert(
                "multi_piece_guard_off".into(),
                serde_json::json!(outcome.multi_piece_guard_off),
            );
        }
        if !outcome.max_deferrals.is_empty() {
            set.extra.insert(
                "max_deferrals".into(),
                serde_json::json!(outcome.max_deferrals),
            );
        }
        let expires = set.expires;
        let key = catalog::tuf::Ed25519Signer::load(&self.accounts.assignment_key_path(tenant))?;
        let doc = sign_assignments(set, &key)?;
        let doc: serde_json::Value = serde_json::from_slice(&doc)
            .map_err(|e| FleetError::invalid("assignments", e.to_string()))?;
        let body = serde_json::to_string(&CheckInResponse {
            assignments: doc,
            poll_interval_secs: poll,
            // Account rules: added per request (http::checkin).
            ..CheckInResponse::default()
        })
        .map_err(|e| FleetError::invalid("assignments", e.to_string()))?;
        let state = CheckInState {
            version,
            content_sha256,
            expires,
            body: body.clone(),
        };
        let k = Key::new(tenant, &agent.id);
        writes.push(upsert(Table::CheckIns, k, to_value(&state), old.is_some()));
        self.commit_check_in(writes)?;
        Ok(answer(body))
    }

    /// Commits a check-in's inventory and answer records: one transaction,
    /// shared with concurrent check-ins (group commit), and no generation
    /// change (they change no other agent's answer).
    fn commit_check_in(&self, writes: Vec<Op>) -> Result<(), FleetError> {
        match self.store().commit(writes) {
            Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => Err(
                FleetError::Conflict("concurrent check-in of the same agent; retry".into()),
            ),
            other => Ok(other?),
        }
    }
}

/// What a check-in reads of its tenant's configuration. Every change to
/// any of it is committed through [`commit_changing`], which moves the
/// tenant's generation, so one view serves every check-in of one
/// generation.
#[derive(Debug, Clone)]
pub struct TenantView {
    /// The fleet settings.
    pub settings: Settings,
    groups: Vec<super::Group>,
    policies: Vec<super::FirmwarePolicy>,
    software: Vec<super::SoftwarePolicy>,
    rollouts: Vec<super::rollouts::Rollout>,
}

/// A file's length and modification time, `None` if it is missing.
pub(crate) type FileStamp = Option<(u64, Option<SystemTime>)>;

fn file_stamp(path: &std::path::Path) -> FileStamp {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.len(), m.modified().ok()))
}

/// How often a check-in is tried when a concurrent check-in of the same
/// agent (on another node) wrote its records first.
const CHECK_IN_ATTEMPTS: u32 = 3;

/// Stripes of the per-agent check-in lock: agents hashing to the same stripe
/// wait for each other too, which costs little (the store serialises their
/// commits anyway) and keeps the lock table fixed in size.
const CHECK_IN_STRIPES: usize = 256;

/// Holds the check-in lock of `(tenant, agent)` in this process. A check-in
/// reads the agent's records and writes them back (inserting those it did
/// not find); two at once would both insert and one would fail.
fn agent_lock(tenant: &str, agent: &str) -> std::sync::MutexGuard<'static, ()> {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    static STRIPES: [std::sync::Mutex<()>; CHECK_IN_STRIPES] =
        [const { std::sync::Mutex::new(()) }; CHECK_IN_STRIPES];
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one((tenant, agent));
    STRIPES[(hash % CHECK_IN_STRIPES as u64) as usize]
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn answer(body: String) -> CheckInAnswer {
    let etag = format!("\"{}\"", Sha256Digest::of(body.as_bytes()).to_hex());
    CheckInAnswer { body, etag }
}

mod groups;

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
