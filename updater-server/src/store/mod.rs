//! Server state (tenants, admins, sessions, API tokens) behind the narrow
//! [`Store`] trait.
//!
//! The trait knows only tables of JSON records keyed by `(tenant, id)` and
//! atomic batches of writes, so a PostgreSQL implementation is a table with a
//! composite primary key and one transaction per [`Store::commit`]. The typed
//! view ([`Records`]) and every rule about what a record means live above it.
//!
//! The embedded default is [`RedbStore`]: one file, `<data>/server.redb`.
//! [`PgStore`] keeps the same tables in PostgreSQL, for several server nodes.
//! Blobs never go into the store.

mod group;
mod postgres;
mod records;
mod redb;

use std::fmt;

pub use self::postgres::{is_postgres_url, PgStore, DEFAULT_CONNECTIONS};
pub use self::records::{
    Admin, Agent, ApiToken, ApiTokenScope, EnrollmentToken, Records, Role, Session, Tenant,
};
pub use self::redb::RedbStore;

/// The tables of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Tenants, keyed by `(tenant id, "")`.
    Tenants,
    /// Admin accounts, keyed by `(tenant, admin id)`.
    Admins,
    /// Login sessions, keyed by `(tenant, session id)`.
    Sessions,
    /// API tokens for partner applications, keyed by `(tenant, token id)`.
    ApiTokens,
    /// Enrolled agents, keyed by `(tenant, agent id)`.
    Agents,
    /// Custom user groups, keyed by `(tenant, group id)`.
    Groups,
    /// Firmware policies, keyed by `(tenant, policy id)`.
    FirmwarePolicies,
    /// Software (agent) policies, keyed by `(tenant, policy id)`.
    SoftwarePolicies,
    /// Fleet settings (shared / excluded accounts), keyed by `(tenant, "fleet")`.
    Settings,
    /// Inventory users, keyed by `(tenant, user id)`.
    InventoryUsers,
    /// Inventory hosts, keyed by `(tenant, agent id)`.
    InventoryHosts,
    /// Inventory devices, keyed by `(tenant, device id)`.
    InventoryDevices,
    /// The last signed assignment document per agent, keyed by `(tenant, agent id)`.
    CheckIns,
    /// Agent events, keyed by `(tenant, 20-digit receive sequence number)`.
    Events,
    /// Update history (update-status events), keyed like the event they come from.
    UpdateHistory,
    /// Staged rollouts.
    Rollouts,
    /// The devices of each rollout (id `<rollout>/<device>`) with their wave
    /// and state.
    RolloutMembers,
    /// Uniqueness claims (`(tenant, "email:<address>")`, `(tenant, "primary")`,
    /// `(tenant, "system:<id>")`, `(tenant, "machine:<system id>:<fingerprint>")`,
    /// `(tenant, "event:<agent>:<event id>")`):
    /// inserting one that exists fails the whole batch with [`StoreError::Conflict`].
    Unique,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 18] = [
        Table::Tenants,
        Table::Admins,
        Table::Sessions,
        Table::ApiTokens,
        Table::Agents,
        Table::Groups,
        Table::FirmwarePolicies,
        Table::SoftwarePolicies,
        Table::Settings,
        Table::InventoryUsers,
        Table::InventoryHosts,
        Table::InventoryDevices,
        Table::CheckIns,
        Table::Events,
        Table::UpdateHistory,
        Table::Rollouts,
        Table::RolloutMembers,
        Table::Unique,
    ];

    /// The table's name in the backend.
    pub fn name(self) -> &'static str {
        match self {
            Table::Tenants => "tenants",
            Table::Admins => "admins",
            Table::Sessions => "sessions",
            Table::ApiTokens => "api_tokens",
            Table::Agents => "agents",
            Table::Groups => "groups",
            Table::FirmwarePolicies => "firmware_policies",
            Table::SoftwarePolicies => "software_policies",
            Table::Settings => "settings",
            Table::InventoryUsers => "inventory_users",
            Table::InventoryHosts => "inventory_hosts",
            Table::InventoryDevices => "inventory_devices",
            Table::CheckIns => "checkins",
            Table::Events => "events",
            Table::UpdateHistory => "update_history",
            Table::Rollouts => "rollouts",
            Table::RolloutMembers => "rollout_members",
            Table::Unique => "unique",
        }
    }
}

impl Table {
    /// Decodes a record's stored JSON text.
    pub fn decode(self, text: &str) -> Result<serde_json::Value, StoreError> {
        serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
            table: self.name(),
            why: e.to_string(),
        })
    }
}

/// A record key: the owning tenant and the record's id within it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The tenant id.
    pub tenant: String,
    /// The id within the tenant (`""` for the tenant record itself).
    pub id: String,
}

impl Key {
    /// `(tenant, id)`.
    pub fn new(tenant: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            id: id.into(),
        }
    }
}

/// One write in a batch.
#[derive(Debug, Clone)]
pub enum Op {
    /// Creates a record; the batch fails with [`StoreError::Conflict`] if it exists.
    Insert(Table, Key, serde_json::Value),
    /// Replaces a record; the batch fails with [`StoreError::NotFound`] if it is missing.
    Update(Table, Key, serde_json::Value),
    /// Deletes a record if it exists.
    Delete(Table, Key),
}

impl Op {
    /// The table and key the op writes.
    pub fn target(&self) -> (Table, &Key) {
        match self {
            Op::Insert(t, k, _) | Op::Update(t, k, _) | Op::Delete(t, k) => (*t, k),
        }
    }
}

/// What a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An [`Op::Insert`] hit an existing record.
    #[error("{table} {key:?} already exists")]
    Conflict {
        /// The table.
        table: &'static str,
        /// The key.
        key: Key,
    },
    /// An [`Op::Update`] found no record.
    #[error("{table} {key:?} does not exist")]
    NotFound {
        /// The table.
        table: &'static str,
        /// The key.
        key: Key,
    },
    /// The database is held by a process that cannot share it.
    #[error("the store {0} is in use by another process")]
    Locked(String),
    /// A stored record does not decode.
    #[error("corrupt record in {table}: {why}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// Why.
        why: String,
    },
    /// The backend failed.
    #[error("store backend: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

/// Durable storage of JSON records. Every [`Store::commit`] is one atomic,
/// durable transaction: when it returns `Ok`, the writes survive a crash.
pub trait Store: Send + Sync + fmt::Debug {
    /// One record.
    fn get(&self, table: Table, key: &Key) -> Result<Option<serde_json::Value>, StoreError>;
    /// All records of `tenant` in `table` (every record when `tenant` is `None`),
    /// ordered by key.
    fn list(
        &self,
        table: Table,
        tenant: Option<&str>,
    ) -> Result<Vec<(Key, serde_json::Value)>, StoreError>;
    /// Applies `ops` atomically and durably, or none of them.
    fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError>;

    /// The JSON text of each record `keys` name (`None` where there is
    /// none), in their order. Backends should override this with one read
    /// (a check-in reads its host, users and devices this way).
    fn get_texts(&self, keys: &[(Table, Key)]) -> Result<Vec<Option<String>>, StoreError> {
        keys.iter()
            .map(|(table, key)| Ok(self.get(*table, key)?.map(|v| v.to_string())))
            .collect()
    }

    /// Records of `tenant` in `table` whose id sorts after `after`, in key
    /// order, at most `limit` (paging). Backends should override this with a
    /// range query.
    fn list_after(
        &self,
        table: Table,
        tenant: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(Key, serde_json::Value)>, StoreError> {
        let mut all = self.list(table, Some(tenant))?;
        all.retain(|(k, _)| k.id.as_str() > after);
        all.truncate(limit);
        Ok(all)
    }

    /// Runs `job` unless another process sharing this store runs the job
    /// of the same `name` at this moment; returns whether it ran. Server
    /// nodes sharing a database so take turns at their periodic jobs
    /// (rollout evaluation, retention, session sweep, timestamp
    /// re-signing); a node that dies mid-job loses its claim with its
    /// connection, and the next tick of another node runs the job. The
    /// default (the embedded store: one serving process) always runs it.
    fn exclusively(&self, name: &str, job: &mut dyn FnMut()) -> Result<bool, StoreError> {
        let _ = name;
        job();
        Ok(true)
    }

    /// A time that every commit, by any process, moves (the embedded
    /// store's file modification time), when the backend can tell it
    /// cheaply; `None` when it cannot, and then callers re-read what they
    /// would otherwise cache.
    fn modified(&self) -> Option<std::time::SystemTime> {
        None
    }

    /// How many records `table` holds, across tenants. Backends should
    /// override this with a count that builds no records.
    fn count(&self, table: Table) -> Result<u64, StoreError> {
        Ok(self.list(table, None)?.len() as u64)
    }

    /// The record of `tenant` in `table` with the greatest id. Backends should
    /// override this with a reverse range query.
    fn last(
        &self,
        table: Table,
        tenant: &str,
    ) -> Result<Option<(Key, serde_json::Value)>, StoreError> {
        Ok(self.list(table, Some(tenant))?.pop())
    }

    /// Calls `visit` with the id and JSON text of every record of `tenant`
    /// whose id starts with `prefix`, in id order, without building JSON
    /// values (the rollout status reads a million rows this way). The
    /// default pages through [`Store::list_after`]; a backend should
    /// override it with one range read.
    fn scan_prefix(
        &self,
        table: Table,
        tenant: &str,
        prefix: &str,
        visit: &mut dyn FnMut(&str, &str) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        const PAGE: usize = 10_000;
        let mut after = prefix.to_owned();
        loop {
            let page = self.list_after(table, tenant, &after, PAGE)?;
            let full = page.len() == PAGE;
            for (k, v) in page {
                if !k.id.starts_with(prefix) {
                    return Ok(());
                }
                visit(&k.id, &v.to_string())?;
                after = k.id;
            }
            if !full {
                return Ok(());
            }
        }
    }
}

/// [`Store::exclusively`] for a job with a result: `None` when another
/// process was running the job.
pub fn run_exclusively<T>(
    store: &dyn Store,
    name: &str,
    job: impl FnOnce() -> T,
) -> Result<Option<T>, StoreError> {
    let mut job = Some(job);
    let mut outcome = None;
    store.exclusively(name, &mut || {
        if let Some(job) = job.take() {
            outcome = Some(job());
        }
    })?;
    Ok(outcome)
}

/// The records per table.
pub fn counts(
    store: &dyn Store,
) -> Result<std::collections::BTreeMap<&'static str, u64>, StoreError> {
    Table::ALL
        .iter()
        .map(|t| Ok((t.name(), store.count(*t)?)))
        .collect()
}

/// The conformance suite every [`Store`] implementation must pass.
#[cfg(test)]
pub(crate) fn conformance(store: &dyn Store) {
    use serde_json::json;
    let k = |t: &str, i: &str| Key::new(t, i);
    assert_eq!(store.get(Table::Admins, &k("a", "1")).unwrap(), None);
    store
        .commit(vec![
            Op::Insert(Table::Admins, k("a", "1"), json!({"n": 1})),
            Op::Insert(Table::Admins, k("a", "2"), json!({"n": 2})),
            Op::Insert(Table::Admins, k("ab", "1"), json!({"n": 3})),
            Op::Insert(Table::Sessions, k("a", "1"), json!({"s": 1})),
        ])
        .unwrap();
    assert_eq!(
        store.get(Table::Admins, &k("a", "2")).unwrap(),
        Some(json!({"n": 2}))
    );
    // Tenant "a" is not a prefix match for tenant "ab".
    let a: Vec<_> = store
        .list(Table::Admins, Some("a"))
        .unwrap()
        .into_iter()
        .map(|(k, _)| k.id)
        .collect();
    assert_eq!(a, ["1", "2"]);
    assert_eq!(store.list(Table::Admins, None).unwrap().len(), 3);
    assert_eq!(store.list(Table::Sessions, Some("a")).unwrap().len(), 1);

    // A failing op rolls back the whole batch.
    let err = store
        .commit(vec![
            Op::Insert(Table::Admins, k("a", "3"), json!({"n": 4})),
            Op::Insert(Table::Admins, k("a", "1"), json!({"n": 5})),
        ])
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(store.get(Table::Admins, &k("a", "3")).unwrap(), None);
    assert_eq!(
        store.get(Table::Admins, &k("a", "1")).unwrap(),
        Some(json!({"n": 1}))
    );
    let err = store
        .commit(vec![
            Op::Delete(Table::Admins, k("a", "2")),
            Op::Update(Table::Admins, k("a", "9"), json!({})),
        ])
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(store.get(Table::Admins, &k("a", "2")).unwrap().is_some());

    store
        .commit(vec![
            Op::Update(Table::Admins, k("a", "1"), json!({"n": 10})),
            Op::Delete(Table::Admins, k("a", "2")),
            Op::Delete(Table::Admins, k("a", "missing")),
        ])
        .unwrap();
    assert_eq!(
        store.get(Table::Admins, &k("a", "1")).unwrap(),
        Some(json!({"n": 10}))
    );
    assert_eq!(store.get(Table::Admins, &k("a", "2")).unwrap(), None);

    // Paging and the last record, within one tenant only.
    store
        .commit(
            ["01", "02", "03"]
                .iter()
                .map(|i| Op::Insert(Table::Events, k("p", i), json!(i)))
                .chain([
                    Op::Insert(Table::Events, k("pq", "00"), json!("other")),
                    Op::Insert(Table::Events, k("o", "99"), json!("other")),
                ])
                .collect(),
        )
        .unwrap();
    let ids =
        |v: Vec<(Key, serde_json::Value)>| v.into_iter().map(|(k, _)| k.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_after(Table::Events, "p", "", 2).unwrap()),
        ["01", "02"]
    );
    assert_eq!(
        ids(store.list_after(Table::Events, "p", "02", 10).unwrap()),
        ["03"]
    );
    assert!(store
        .list_after(Table::Events, "p", "03", 10)
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .last(Table::Events, "p")
            .unwrap()
            .map(|(k, _)| k.id)
            .as_deref(),
        Some("03")
    );
    assert_eq!(store.last(Table::Events, "none").unwrap(), None);

    // Concurrent commits (grouped into shared transactions by the
    // backends): every batch lands whole or not at all, and of the batches
    // inserting one key exactly one succeeds, the others conflict.
    let results: Vec<(usize, Result<(), StoreError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                scope.spawn(move || {
                    let mut ops = vec![Op::Insert(
                        Table::InventoryHosts,
                        k("g", &format!("own-{i:02}")),
                        json!(i),
                    )];
                    if i % 4 == 0 {
                        ops.push(Op::Insert(
                            Table::InventoryHosts,
                            k("g", "shared"),
                            json!(i),
                        ));
                    }
                    (i, store.commit(ops))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let shared = store.get(Table::InventoryHosts, &k("g", "shared")).unwrap();
    let winner = shared.as_ref().and_then(serde_json::Value::as_u64).unwrap() as usize;
    for (i, result) in &results {
        let own = store
            .get(Table::InventoryHosts, &k("g", &format!("own-{i:02}")))
            .unwrap();
        match (i % 4 == 0 && *i != winner, result) {
            (true, Err(StoreError::Conflict { key, .. })) => {
                assert_eq!(key.id, "shared");
                assert_eq!(own, None, "batch {i} was refused, so none of it is stored");
            }
            (false, Ok(())) => assert_eq!(own, Some(json!(i))),
            other => panic!("batch {i}: {other:?}"),
        }
    }

    // Several records in one read, missing ones as None, in the order asked.
    let texts = store
        .get_texts(&[
            (Table::InventoryHosts, k("g", "own-01")),
            (Table::InventoryHosts, k("g", "nothing")),
            (Table::Admins, k("a", "1")),
        ])
        .unwrap();
    let values: Vec<Option<serde_json::Value>> = texts
        .iter()
        .map(|t| t.as_deref().map(|t| serde_json::from_str(t).unwrap()))
        .collect();
    assert_eq!(values, [Some(json!(1)), None, Some(json!({"n": 10}))]);

    // Prefix scans: the backend's own, and the default over `list_after`.
    store
        .commit(
            [
                ("s", "r1/a"),
                ("s", "r1/b"),
                ("s", "r10/c"),
                ("s", "r2/d"),
                ("s2", "r1/z"),
            ]
            .iter()
            .map(|(t, i)| Op::Insert(Table::RolloutMembers, k(t, i), json!({"id": i})))
            .collect(),
        )
        .unwrap();
    #[derive(Debug)]
    struct Defaults<'a>(&'a dyn Store);
    impl Store for Defaults<'_> {
        fn get(&self, table: Table, key: &Key) -> Result<Option<serde_json::Value>, StoreError> {
            self.0.get(table, key)
        }
        fn list(
            &self,
            table: Table,
            tenant: Option<&str>,
        ) -> Result<Vec<(Key, serde_json::Value)>, StoreError> {
            self.0.list(table, tenant)
        }
        fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
            self.0.commit(ops)
        }
    }
    for (name, s) in [
        ("backend", store),
        ("default", &Defaults(store) as &dyn Store),
    ] {
        for (tenant, prefix, expected) in [
            ("s", "r1/", &["r1/a", "r1/b"][..]),
            ("s", "r2/", &["r2/d"][..]),
            ("s", "r3/", &[][..]),
            ("s2", "r1/", &["r1/z"][..]),
        ] {
            let mut seen = Vec::new();
            s.scan_prefix(Table::RolloutMembers, tenant, prefix, &mut |id, text| {
                assert_eq!(
                    serde_json::from_str::<serde_json::Value>(text).unwrap(),
                    json!({"id": id})
                );
                seen.push(id.to_owned());
                Ok(())
            })
            .unwrap();
            assert_eq!(seen, expected, "{name} {tenant} {prefix}");
        }
    }
}
