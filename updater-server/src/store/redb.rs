//! The embedded [`Store`]: one redb file, tables of `(tenant, id) -> JSON`.

use std::path::{Path, PathBuf};

use redb::{
    ConcurrencyMode, Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};

use super::group::GroupCommit;
use super::{Key, Op, Store, StoreError, Table};

type Def = TableDefinition<'static, (&'static str, &'static str), &'static str>;

fn def(table: Table) -> Def {
    TableDefinition::new(table.name())
}

fn backend(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Backend(Box::new(e.into()))
}

/// The redb-backed store. Opened in redb's multi-writer mode, so the admin CLI
/// can write while a server has the same file open.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
    /// Concurrent commits of this process share a transaction.
    group: GroupCommit,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// redb's own page cache (its default is 1 GiB). The kernel's page cache
/// holds the file as well, so a miss here costs a read from memory, not the
/// disk; a server with a million agents stays within its memory budget
/// (docs/benchmarks.md, "Server memory with a million agents").
const CACHE_BYTES: usize = 256 << 20;

impl RedbStore {
    /// Opens `path`, creating the file and its tables on first use.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Backend(Box::new(e)))?;
        }
        let db = Database::builder()
            .set_concurrency_mode(ConcurrencyMode::MultiWriter)
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen
                | redb::DatabaseError::LockProtocolMismatch => {
                    StoreError::Locked(path.display().to_string())
                }
                other => backend(other),
            })?;
        // Password and token hashes: readable by the service account only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| StoreError::Backend(Box::new(e)))?;
        }
        let txn = db.begin_write().map_err(backend)?;
        for table in Table::ALL {
            txn.open_table(def(table)).map_err(backend)?;
        }
        txn.commit().map_err(backend)?;
        Ok(Self {
            db,
            path: path.to_owned(),
            group: GroupCommit::default(),
        })
    }
}

impl RedbStore {
    /// Writes every record, as one read transaction sees them (a consistent
    /// snapshot, whatever commits meanwhile), into a new store file at
    /// `dest`, which must not exist; returns the records copied per table.
    pub fn snapshot_to(
        &self,
        dest: &Path,
    ) -> Result<std::collections::BTreeMap<&'static str, u64>, StoreError> {
        if dest.exists() {
            return Err(StoreError::Backend(
                format!("{} exists", dest.display()).into(),
            ));
        }
        let copy = RedbStore::open(dest)?;
        let read = self.db.begin_read().map_err(backend)?;
        let mut write = copy.db.begin_write().map_err(backend)?;
        write
            .set_durability(Durability::Immediate)
            .map_err(backend)?;
        let mut counts = std::collections::BTreeMap::new();
        for table in Table::ALL {
            let src = read.open_table(def(table)).map_err(backend)?;
            let mut dst = write.open_table(def(table)).map_err(backend)?;
            let mut n = 0;
            for entry in src.iter().map_err(backend)? {
                let (k, v) = entry.map_err(backend)?;
                dst.insert(k.value(), v.value()).map_err(backend)?;
                n += 1;
            }
            counts.insert(table.name(), n);
        }
        write.commit().map_err(backend)?;
        Ok(counts)
    }
}

impl RedbStore {
    /// Calls `visit` with every record (table, key, JSON text), table by
    /// table in key order, as one read transaction sees them: a consistent
    /// snapshot, whatever commits meanwhile.
    pub fn visit_all(
        &self,
        visit: &mut dyn FnMut(Table, Key, &str) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let read = self.db.begin_read().map_err(backend)?;
        for table in Table::ALL {
            let t = read.open_table(def(table)).map_err(backend)?;
            for entry in t.iter().map_err(backend)? {
                let (k, v) = entry.map_err(backend)?;
                let (tenant, id) = k.value();
                visit(table, Key::new(tenant, id), v.value())?;
            }
        }
        Ok(())
    }
}

impl RedbStore {
    /// Writes a group of batches in one durable transaction: each batch is
    /// checked against the records as the batches before it left them and
    /// applied whole, or not at all (its result says why).
    fn write_group(&self, batches: Vec<Vec<Op>>) -> Vec<Result<(), StoreError>> {
        let failed = |e: &dyn std::fmt::Display, n: usize| -> Vec<Result<(), StoreError>> {
            (0..n)
                .map(|_| Err(StoreError::Backend(e.to_string().into())))
                .collect()
        };
        let mut txn = match self.db.begin_write() {
            Ok(t) => t,
            Err(e) => return failed(&e, batches.len()),
        };
        // Fsynced before commit returns (redb's default, stated here on purpose).
        if let Err(e) = txn.set_durability(Durability::Immediate) {
            return failed(&e, batches.len());
        }
        let results: Vec<Result<(), StoreError>> = batches
            .iter()
            .map(|ops| check(&txn, ops).and_then(|()| apply(&txn, ops)))
            .collect();
        if let Some(Err(StoreError::Backend(e))) = results
            .iter()
            .find(|r| matches!(r, Err(StoreError::Backend(_))))
        {
            // A failed write leaves the transaction unusable: drop it (abort).
            let e = e.to_string();
            return failed(&e, batches.len());
        }
        match txn.commit() {
            Ok(()) => results,
            Err(e) => failed(&e, batches.len()),
        }
    }
}

/// Whether `ops` may be applied to the records `txn` holds: no insert over
/// a record, no update of a missing one, each op seeing the batch's earlier
/// ops (a delete then an insert of one key is allowed).
fn check(txn: &redb::WriteTransaction, ops: &[Op]) -> Result<(), StoreError> {
    let mut seen: std::collections::HashMap<(Table, &Key), bool> = std::collections::HashMap::new();
    for op in ops {
        let (table, key) = op.target();
        let exists = match seen.get(&(table, key)) {
            Some(e) => *e,
            None => {
                let t = txn.open_table(def(table)).map_err(backend)?;
                let found = t
                    .get((key.tenant.as_str(), key.id.as_str()))
                    .map_err(backend)?
                    .is_some();
                found
            }
        };
        match op {
            Op::Insert(..) if exists => {
                return Err(StoreError::Conflict {
                    table: table.name(),
                    key: key.clone(),
                })
            }
            Op::Update(..) if !exists => {
                return Err(StoreError::NotFound {
                    table: table.name(),
                    key: key.clone(),
                })
            }
            _ => {}
        }
        seen.insert((table, key), !matches!(op, Op::Delete(..)));
    }
    Ok(())
}

/// Writes `ops` (already [`check`]ed) into `txn`.
fn apply(txn: &redb::WriteTransaction, ops: &[Op]) -> Result<(), StoreError> {
    for op in ops {
        let (table, key) = op.target();
        let mut t = txn.open_table(def(table)).map_err(backend)?;
        let k = (key.tenant.as_str(), key.id.as_str());
        match op {
            Op::Insert(_, _, value) | Op::Update(_, _, value) => {
                t.insert(k, value.to_string().as_str()).map_err(backend)?;
            }
            Op::Delete(..) => {
                t.remove(k).map_err(backend)?;
            }
        }
    }
    Ok(())
}

impl Store for RedbStore {
    fn get(&self, table: Table, key: &Key) -> Result<Option<serde_json::Value>, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let t = txn.open_table(def(table)).map_err(backend)?;
        let found = t
            .get((key.tenant.as_str(), key.id.as_str()))
            .map_err(backend)?;
        found.map(|v| table.decode(v.value())).transpose()
    }

    fn list(
        &self,
        table: Table,
        tenant: Option<&str>,
    ) -> Result<Vec<(Key, serde_json::Value)>, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let t = txn.open_table(def(table)).map_err(backend)?;
        let start = tenant.unwrap_or("");
        let mut out = Vec::new();
        for entry in t.range((start, "")..).map_err(backend)? {
            let (k, v) = entry.map_err(backend)?;
            let (kt, kid) = k.value();
            if tenant.is_some_and(|want| want != kt) {
                break;
            }
            out.push((Key::new(kt, kid), table.decode(v.value())?));
        }
        Ok(out)
    }

    fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.group.commit(ops, |batches| self.write_group(batches))
    }

    fn list_after(
        &self,
        table: Table,
        tenant: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(Key, serde_json::Value)>, StoreError> {
        use std::ops::Bound;
        let txn = self.db.begin_read().map_err(backend)?;
        let t = txn.open_table(def(table)).map_err(backend)?;
        let range = (Bound::Excluded((tenant, after)), Bound::Unbounded);
        let mut out = Vec::new();
        for entry in t.range::<(&str, &str)>(range).map_err(backend)? {
            let (k, v) = entry.map_err(backend)?;
            let (kt, kid) = k.value();
            if kt != tenant || out.len() >= limit {
                break;
            }
            out.push((Key::new(kt, kid), table.decode(v.value())?));
        }
        Ok(out)
    }

    fn scan_prefix(
        &self,
        table: Table,
        tenant: &str,
        prefix: &str,
        visit: &mut dyn FnMut(&str, &str) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let t = txn.open_table(def(table)).map_err(backend)?;
        for entry in t
            .range::<(&str, &str)>((tenant, prefix)..)
            .map_err(backend)?
        {
            let (k, v) = entry.map_err(backend)?;
            let (kt, kid) = k.value();
            if kt != tenant || !kid.starts_with(prefix) {
                break;
            }
            visit(kid, v.value())?;
        }
        Ok(())
    }

    fn get_texts(&self, keys: &[(Table, Key)]) -> Result<Vec<Option<String>>, StoreError> {
        // One read transaction: in multi-writer mode each costs file locks.
        let txn = self.db.begin_read().map_err(backend)?;
        keys.iter()
            .map(|(table, key)| {
                let t = txn.open_table(def(*table)).map_err(backend)?;
                let found = t
                    .get((key.tenant.as_str(), key.id.as_str()))
                    .map_err(backend)?;
                Ok(found.map(|v| v.value().to_owned()))
            })
            .collect()
    }

    fn modified(&self) -> Option<std::time::SystemTime> {
        std::fs::metadata(&self.path).ok()?.modified().ok()
    }

    fn count(&self, table: Table) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let t = txn.open_table(def(table)).map_err(backend)?;
        t.len().map_err(backend)
    }

    fn last(
        &self,
        table: Table,
        tenant: &str,
    ) -> Result<Option<(Key, serde_json::Value)>, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let t = txn.open_table(def(table)).map_err(backend)?;
        // Every id of `tenant` sorts before `(tenant + "\0", "")`.
        let end = format!("{tenant}\0");
        let mut range = t
            .range::<(&str, &str)>((tenant, "")..(end.as_str(), ""))
            .map_err(backend)?;
        match range.next_back() {
            Some(entry) => {
                let (k, v) = entry.map_err(backend)?;
                let (kt, kid) = k.value();
                Ok(Some((Key::new(kt, kid), table.decode(v.value())?)))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("server.redb")).unwrap();
        super::super::conformance(&store);
    }

    #[test]
    fn survives_reopen_and_is_shared_between_handles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.redb");
        let a = RedbStore::open(&path).unwrap();
        let b = RedbStore::open(&path).unwrap();
        a.commit(vec![Op::Insert(
            Table::Tenants,
            Key::new("t1", ""),
            serde_json::json!({"name": "x"}),
        )])
        .unwrap();
        // A second handle (as the CLI beside a running server) sees the commit.
        assert_eq!(
            b.get(Table::Tenants, &Key::new("t1", "")).unwrap(),
            Some(serde_json::json!({"name": "x"}))
        );
        drop((a, b));
        let c = RedbStore::open(&path).unwrap();
        assert_eq!(c.list(Table::Tenants, None).unwrap().len(), 1);
    }
}
