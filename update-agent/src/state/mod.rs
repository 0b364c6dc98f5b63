//! The agent's durable local state: one redb file (`<state>/state.redb`,
//! mode 0600), opened in redb's multi-writer mode so `update-agent status`
//! can read while the daemon runs.
//!
//! | table | key | value |
//! |---|---|---|
//! | `staged` | (image sha256, device identity) | [`StagedUpdate`] |
//! | `downloads` | image sha256 | [`DownloadProgress`] |
//! | `events` | event id | [`Event`] (the spool) |
//! | `devices` | device identity | [`DeviceRecord`] |
//! | `meta` | name | u64 (schema version, event sequence) |
//! | `kv` | name | text: the verified assignment document, its ETag and version; `installed/<device>` → [`InstalledFirmware`] |
//! | `prompts` | prompt id | [`crate::prompts::Prompt`] (questions for the user and their answers) |
//!
//! Values are JSON, so fields can be added without a migration. Every method
//! that changes something commits one fsynced transaction before it returns:
//! the agent acts only on state that would survive a crash.

mod prompts;
mod types;

use std::path::{Path, PathBuf};

use catalog::protocol::DeviceReport;
use chrono::{DateTime, Utc};
use redb::{
    ConcurrencyMode, Database, Durability, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use prompts::DecideError;
pub use types::{
    DeviceRecord, DownloadProgress, Event, InstalledFirmware, StagedUpdate, StoredAssignments,
    UpdateStatus,
};

const STAGED: TableDefinition<'static, (&str, &str), &str> = TableDefinition::new("staged");
const DOWNLOADS: TableDefinition<'static, &str, &str> = TableDefinition::new("downloads");
const EVENTS: TableDefinition<'static, &str, &str> = TableDefinition::new("events");
const DEVICES: TableDefinition<'static, &str, &str> = TableDefinition::new("devices");
const META: TableDefinition<'static, &str, u64> = TableDefinition::new("meta");
const KV: TableDefinition<'static, &str, &str> = TableDefinition::new("kv");

const ASSIGNMENTS_KEY: &str = "assignments";
/// The LDAP group definitions (with their hash) and account rules.
const DIRECTORY_KEY: &str = "directory";

const SCHEMA_VERSION: u64 = 1;

/// The state file's name in the state directory.
pub const STATE_FILE: &str = "state.redb";

/// Why the state could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The database failed.
    #[error("state database {path}: {source}")]
    Db {
        /// The file.
        path: PathBuf,
        /// The error.
        source: Box<redb::Error>,
    },
    /// A stored value does not decode.
    #[error("state database: corrupt {table} entry {key}: {why}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The key.
        key: String,
        /// The decoder's message.
        why: String,
    },
    /// The file was written by a newer agent.
    #[error("state database {path} has schema version {found}; this agent knows {SCHEMA_VERSION}")]
    Schema {
        /// The file.
        path: PathBuf,
        /// What it says.
        found: u64,
    },
    /// The staged update does not exist.
    #[error("no staged update of {digest} for {device}")]
    NoSuchUpdate {
        /// Image digest.
        digest: String,
        /// Device identity.
        device: String,
    },
}

/// The agent's state database.
pub struct State {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn encode<T: Serialize>(v: &T) -> String {
    // Plain structs of strings, numbers, dates and JSON values: cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

fn decode<T: DeserializeOwned>(
    table: &'static str,
    key: &str,
    text: &str,
) -> Result<T, StateError> {
    serde_json::from_str(text).map_err(|e| StateError::Corrupt {
        table,
        key: key.to_owned(),
        why: e.to_string(),
    })
}

impl State {
    /// Opens `<state_dir>/state.redb`, creating it (0600) and its tables.
    pub fn open_in(state_dir: &Path) -> Result<Self, StateError> {
        Self::open(&state_dir.join(STATE_FILE))
    }

    /// Opens (creating) the state database at `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let err = |e: redb::Error| StateError::Db {
            path: path.to_owned(),
            source: Box::new(e),
        };
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::fsutil::create_private_dir(dir).map_err(|e| err(e.into()))?;
        }
        let db = Database::builder()
            .set_concurrency_mode(ConcurrencyMode::MultiWriter)
            .create(path)
            .map_err(|e| err(e.into()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| err(e.into()))?;
        }
        let state = Self {
            db,
            path: path.to_owned(),
        };
        state.write(|txn| {
            txn.open_table(STAGED)?;
            txn.open_table(DOWNLOADS)?;
            txn.open_table(EVENTS)?;
            txn.open_table(DEVICES)?;
            txn.open_table(KV)?;
            txn.open_table(prompts::PROMPTS)?;
            let mut meta = txn.open_table(META)?;
            let found = meta.get("schema_version")?.map(|v| v.value());
            match found {
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
                Some(v) if v > SCHEMA_VERSION => {
                    return Ok(Err(StateError::Schema {
                        path: path.to_owned(),
                        found: v,
                    }))
                }
                Some(_) => {}
            }
            Ok(Ok(()))
        })??;
        Ok(state)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db_err(&self, e: impl Into<redb::Error>) -> StateError {
        StateError::Db {
            path: self.path.clone(),
            source: Box::new(e.into()),
        }
    }

    /// Runs `f` in one write transaction and commits it durably (fsynced
    /// before this returns). `f`'s redb errors abort the transaction.
    fn write<R>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<R, redb::Error>,
    ) -> Result<R, StateError> {
        let mut txn = self.db.begin_write().map_err(|e| self.db_err(e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| self.db_err(e))?;
        let out = f(&txn).map_err(|e| self.db_err(e))?;
        txn.commit().map_err(|e| self.db_err(e))?;
        Ok(out)
    }

    fn read_all<K, T>(
        &self,
        table: TableDefinition<'static, K, &'static str>,
        name: &'static str,
    ) -> Result<Vec<T>, StateError>
    where
        K: redb::Key + 'static,
        for<'a> K::SelfType<'a>: std::fmt::Debug,
        T: DeserializeOwned,
    {
        let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let t = txn.open_table(table).map_err(|e| self.db_err(e))?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(|e| self.db_err(e))? {
            let (k, v) = entry.map_err(|e| self.db_err(e))?;
            out.push(decode(name, &format!("{:?}", k.value()), v.value())?);
        }
        Ok(out)
    }

    // ---- staged updates -------------------------------------------------

    /// Records (or replaces) a staged update.
    pub fn put_update(&self, update: &StagedUpdate) -> Result<(), StateError> {
        self.write(|txn| {
            let mut t = txn.open_table(STAGED)?;
            t.insert(
                (update.digest.as_str(), update.device.as_str()),
                encode(update).as_str(),
            )?;
            Ok(())
        })
    }

    /// Moves a staged update to `status`, with a reason (why it waits or failed).
    pub fn set_update_status(
        &self,
        digest: &str,
        device: &str,
        status: UpdateStatus,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<StagedUpdate, StateError> {
        let found = self.write(|txn| {
            let mut t = txn.open_table(STAGED)?;
            let old = t.get((digest, device))?.map(|v| v.value().to_owned());
            let Some(old) = old else { return Ok(None) };
            let mut u: StagedUpdate = match decode("staged", digest, &old) {
                Ok(u) => u,
                Err(e) => return Ok(Some(Err(e))),
            };
            u.status = status;
            u.reason = reason.map(str::to_owned);
            u.updated_at = now;
            t.insert((digest, device), encode(&u).as_str())?;
            Ok(Some(Ok(u)))
        })?;
        found.unwrap_or_else(|| {
            Err(StateError::NoSuchUpdate {
                digest: digest.to_owned(),
                device: device.to_owned(),
            })
        })
    }

    /// Forgets a staged update; true if there was one.
    pub fn remove_update(&self, digest: &str, device: &str) -> Result<bool, StateError> {
        self.write(|txn| Ok(txn.open_table(STAGED)?.remove((digest, device))?.is_some()))
    }

    /// Every staged update, by digest then device.
    pub fn updates(&self) -> Result<Vec<StagedUpdate>, StateError> {
        self.read_all(STAGED, "staged")
    }

    /// The staged updates not yet installed (waiting, failed to be retried, …).
    pub fn pending_updates(&self) -> Result<Vec<StagedUpdate>, StateError> {
        let mut all = self.updates()?;
        all.retain(|u| u.status.is_pending());
        Ok(all)
    }

    /// Records (or replaces) a staged update and spools `event` in the same
    /// transaction: the state change and its report cannot be separated by a crash.
    pub fn put_update_with_event(
        &self,
        update: &StagedUpdate,
        event: Option<&Event>,
    ) -> Result<(), StateError> {
        self.write(|txn| {
            let mut t = txn.open_table(STAGED)?;
            t.insert(
                (update.digest.as_str(), update.device.as_str()),
                encode(update).as_str(),
            )?;
            drop(t);
            if let Some(e) = event {
                spool_in(txn, e)?;
            }
            Ok(())
        })
    }

    /// The staged update of `digest` for `device`, if any.
    pub fn update(&self, digest: &str, device: &str) -> Result<Option<StagedUpdate>, StateError> {
        let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let t = txn.open_table(STAGED).map_err(|e| self.db_err(e))?;
        let v = t.get((digest, device)).map_err(|e| self.db_err(e))?;
        v.map(|v| decode("staged", digest, v.value())).transpose()
    }

    // ---- assignments and installed firmware -------------------------------

    fn kv_get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StateError> {
        let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let t = txn.open_table(KV).map_err(|e| self.db_err(e))?;
        let v = t.get(key).map_err(|e| self.db_err(e))?;
        v.map(|v| decode("kv", key, v.value())).transpose()
    }

    fn kv_put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StateError> {
        self.write(|txn| {
            txn.open_table(KV)?.insert(key, encode(value).as_str())?;
            Ok(())
        })
    }

    /// The last verified assignment document (what the agent acts on).
    pub fn assignments(&self) -> Result<Option<StoredAssignments>, StateError> {
        self.kv_get(ASSIGNMENTS_KEY)
    }

    /// Persists a verified assignment document before it is acted on.
    pub fn put_assignments(&self, stored: &StoredAssignments) -> Result<(), StateError> {
        self.kv_put(ASSIGNMENTS_KEY, stored)
    }

    /// The tenant's LDAP group definitions and account rules last received.
    pub fn directory(&self) -> Result<Option<crate::ldap::StoredDirectory>, StateError> {
        self.kv_get(DIRECTORY_KEY)
    }

    /// Replaces the stored LDAP group definitions and account rules.
    pub fn put_directory(&self, d: &crate::ldap::StoredDirectory) -> Result<(), StateError> {
        self.kv_put(DIRECTORY_KEY, d)
    }

    /// What the agent installed on `device` (and read back), if anything.
    pub fn installed(&self, device: &str) -> Result<Option<InstalledFirmware>, StateError> {
        self.kv_get(&format!("installed/{device}"))
    }

    /// Records a verified install on `device`, moves its staged update to
    /// `Installed` and spools `event`, in one transaction.
    pub fn record_installed(
        &self,
        installed: &InstalledFirmware,
        update: &StagedUpdate,
        event: Option<&Event>,
    ) -> Result<(), StateError> {
        self.write(|txn| {
            txn.open_table(KV)?.insert(
                format!("installed/{}", installed.device).as_str(),
                encode(installed).as_str(),
            )?;
            txn.open_table(STAGED)?.insert(
                (update.digest.as_str(), update.device.as_str()),
                encode(update).as_str(),
            )?;
            if let Some(e) = event {
                spool_in(txn, e)?;
            }
            Ok(())
        })
    }

    // ---- download progress ----------------------------------------------

    /// Records how far a download got.
    pub fn set_download(&self, progress: &DownloadProgress) -> Result<(), StateError> {
        self.write(|txn| {
            txn.open_table(DOWNLOADS)?
                .insert(progress.digest.as_str(), encode(progress).as_str())?;
            Ok(())
        })
    }

    /// The progress of one download.
    pub fn download(&self, digest: &str) -> Result<Option<DownloadProgress>, StateError> {
        let txn = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let t = txn.open_table(DOWNLOADS).map_err(|e| self.db_err(e))?;
        let v = t.get(digest).map_err(|e| self.db_err(e))?;
        v.map(|v| decode("downloads", digest, v.value()))
            .transpose()
    }

    /// Every download in progress.
    pub fn downloads(&self) -> Result<Vec<DownloadProgress>, StateError> {
        self.read_all(DOWNLOADS, "downloads")
    }

    /// Forgets a download (finished or abandoned); true if there was one.
    pub fn remove_download(&self, digest: &str) -> Result<bool, StateError> {
        self.write(|txn| Ok(txn.open_table(DOWNLOADS)?.remove(digest)?.is_some()))
    }

    // ---- event spool ------------------------------------------------------

    /// Persists an event before anyone tries to send it. Spooling the same
    /// event id again changes nothing (returns false).
    pub fn spool(&self, event: &Event) -> Result<bool, StateError> {
        self.write(|txn| spool_in(txn, event))
    }

    /// Events not yet acknowledged by the server, oldest first, at most `limit`.
    pub fn pending_events(&self, limit: usize) -> Result<Vec<Event>, StateError> {
        let mut all: Vec<Event> = self.read_all(EVENTS, "events")?;
        all.sort_by_key(|e| e.seq);
        all.truncate(limit);
        Ok(all)
    }

    /// Removes the events the server acknowledged; ids not (or no longer)
    /// spooled are ignored. Returns how many were removed.
    pub fn acknowledge<S: AsRef<str>>(&self, ids: &[S]) -> Result<usize, StateError> {
        self.write(|txn| {
            let mut t = txn.open_table(EVENTS)?;
            let mut removed = 0;
            for id in ids {
                if t.remove(id.as_ref())?.is_some() {
                    removed += 1;
                }
            }
            Ok(removed)
        })
    }

    // ---- device history ---------------------------------------------------

    /// Records one scan: first/last seen and last version of every device in
    /// `devices`; devices seen for the first time also get a
    /// `device_discovered` event in the spool, in the same transaction.
    /// Returns the identities seen for the first time.
    pub fn record_scan(
        &self,
        devices: &[DeviceReport],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StateError> {
        let outcome = self.write(|txn| {
            let mut t = txn.open_table(DEVICES)?;
            let mut new = Vec::new();
            for d in devices {
                let identity = d.identity();
                let old = t.get(identity.as_str())?.map(|v| v.value().to_owned());
                let record = match old {
                    Some(text) => match decode::<DeviceRecord>("devices", &identity, &text) {
                        Ok(r) => r.seen_again(d, now),
                        Err(e) => return Ok(Err(e)),
                    },
                    None => {
                        new.push((identity.clone(), d));
                        DeviceRecord::first_seen(d, now)
                    }
                };
                t.insert(identity.as_str(), encode(&record).as_str())?;
            }
            drop(t);
            for (identity, d) in &new {
                let detail = serde_json::to_value(d).unwrap_or_default();
                spool_in(
                    txn,
                    &Event::new("device_discovered", Some(identity), detail, now),
                )?;
            }
            Ok(Ok(new.into_iter().map(|(id, _)| id).collect()))
        })?;
        outcome
    }

    /// Every device ever seen.
    pub fn devices(&self) -> Result<Vec<DeviceRecord>, StateError> {
        self.read_all(DEVICES, "devices")
    }
}

/// Inserts `event` unless its id is spooled already, numbering it so the
/// spool keeps its order.
fn spool_in(txn: &WriteTransaction, event: &Event) -> Result<bool, redb::Error> {
    let mut t = txn.open_table(EVENTS)?;
    if t.get(event.id.as_str())?.is_some() {
        return Ok(false);
    }
    let mut meta = txn.open_table(META)?;
    let seq = meta.get("event_seq")?.map_or(0, |v| v.value()) + 1;
    meta.insert("event_seq", seq)?;
    let mut e = event.clone();
    e.seq = seq;
    t.insert(e.id.as_str(), encode(&e).as_str())?;
    Ok(true)
}

#[cfg(test)]
mod tests;
