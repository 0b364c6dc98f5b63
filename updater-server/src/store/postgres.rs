//! The [`Store`] on PostgreSQL, for several server nodes sharing one
//! database.
//!
//! Each [`Table`] is a SQL table `(tenant, id, value)` with the primary key
//! `(tenant, id)` in the `"C"` collation, so key order is byte order, as in
//! the embedded store. Values are the records' JSON text. Every
//! [`Store::commit`] is one transaction; PostgreSQL's default
//! `synchronous_commit` makes it durable before the commit returns.
//!
//! The trait is synchronous (the embedded store is), the client is not: the
//! store owns a small tokio runtime of its own and each call waits for its
//! query there. That works from any thread, inside the server's runtime or
//! not, and never nests runtimes.

use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use super::group::GroupCommit;
use super::{Key, Op, Store, StoreError, Table};

mod schema;

/// Connections the pool opens at most, unless the caller says otherwise.
pub const DEFAULT_CONNECTIONS: usize = 16;
/// Rows one round trip of [`Store::scan_prefix`] fetches.
const SCAN_PAGE: i64 = 10_000;
/// Attempts of a commit that PostgreSQL aborted as a deadlock or a
/// serialization failure (both mean: run the same transaction again).
const COMMIT_ATTEMPTS: usize = 4;
/// How long a call waits for a connection, and a new connection for the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// The table's name as a quoted SQL identifier (`unique` is a keyword).
fn ident(table: Table) -> String {
    format!("\"{}\"", table.name())
}

/// Whether `url` names a PostgreSQL store rather than a path.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The PostgreSQL-backed store.
pub struct PgStore {
    pool: Pool,
    /// Always `Some` until drop, which shuts it down without blocking (a
    /// store may be dropped inside another runtime).
    runtime: Option<tokio::runtime::Runtime>,
    /// `host:port/dbname`, for messages (never the password).
    target: String,
    /// Concurrent commits of this process share a transaction.
    group: GroupCommit,
    /// The schema holding the tables: part of every job lock's key, so
    /// installations sharing a database do not exclude each other's jobs.
    schema: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Describes where `config` connects, without credentials.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`, libpq's
    /// parameters allowed), with the tables in `schema` if given (else the
    /// first schema of the database's search path), creates that schema if
    /// it does not exist, and brings the tables to this version (see
    /// `schema`). `connections` bounds the pool.
    pub fn open(url: &str, schema: Option<&str>, connections: usize) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Backend(format!("not a PostgreSQL connection URL: {e}").into())
        })?;
        if let Some(schema) = schema {
            schema::check_name(schema)?;
            let options = config.get_options().unwrap_or_default();
            config.options(format!("{options} -csearch_path={schema}").trim_start());
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("updater-server");
        }
        let target = describe(&config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("store-postgres")
            .enable_all()
            .build()
            .map_err(backend)?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(backend)?;
        let mut store = Self {
            pool,
            runtime: Some(runtime),
            target,
            schema: String::new(),
            group: GroupCommit::default(),
        };
        let pool = store.pool.clone();
        store.schema = store
            .block(async move {
                let mut client = pool.get().await.map_err(backend)?;
                schema::migrate(&mut client).await
            })
            .map_err(|e| match e {
                StoreError::Backend(why) => StoreError::Backend(
                    format!("PostgreSQL store at {}: {why}", store.target).into(),
                ),
                other => other,
            })?;
        Ok(store)
    }

    /// Runs `fut` on the store's runtime and waits for it on this thread.
    fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.start(fut)?.wait()
    }

    /// Starts `fut` on the store's runtime; its result is waited for later.
    fn start<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<Started<T>, StoreError> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| StoreError::Backend("the store is closed".into()))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            // One send into a channel of one: never blocks the runtime. The
            // receiver is gone only if the caller stopped waiting (its
            // thread died, or a scan ended early), and then nobody needs
            // the answer.
            let _ = tx.send(fut.await);
        });
        Ok(Started(rx))
    }

    /// Rows `(tenant, id, value)` of one query.
    fn rows(
        &self,
        table: Table,
        sql: String,
        params: Vec<String>,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        self.rows_started(sql, params)?
            .wait()
            .map_err(|e| in_table(table, e))
    }

    /// [`PgStore::rows`], started: the caller does something else meanwhile.
    fn rows_started(
        &self,
        sql: String,
        params: Vec<String>,
    ) -> Result<Started<Vec<Row>>, StoreError> {
        let pool = self.pool.clone();
        self.start(async move {
            let client = pool.get().await.map_err(backend)?;
            let statement = client.prepare_cached(&sql).await.map_err(backend)?;
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            let rows = client.query(&statement, &refs).await.map_err(backend)?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()
                .map_err(backend)
        })
    }

    fn records(
        &self,
        table: Table,
        sql: String,
        params: Vec<String>,
    ) -> Result<Vec<(Key, serde_json::Value)>, StoreError> {
        self.rows(table, sql, params)?
            .into_iter()
            .map(|(tenant, id, value)| Ok((Key { tenant, id }, table.decode(&value)?)))
            .collect()
    }
}

/// The advisory lock key of job `name` in `schema` (the first 8 bytes of a
/// SHA-256; the migration lock is a constant far from any such key's odds).
fn job_lock_key(schema: &str, name: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("updater-server job {schema} {name}"));
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// Names the table in a backend error.
/// A record as queried: tenant, id, value.
type Row = (String, String, String);

/// The result of work started on the store's runtime ([`PgStore::start`]).
struct Started<T>(std::sync::mpsc::Receiver<Result<T, StoreError>>);

impl<T> Started<T> {
    /// Waits for the result.
    fn wait(self) -> Result<T, StoreError> {
        self.0
            .recv()
            .map_err(|_| StoreError::Backend("the store's runtime stopped".into()))?
    }
}

fn in_table(table: Table, e: StoreError) -> StoreError {
    match e {
        StoreError::Backend(why) => {
            StoreError::Backend(format!("table {}: {why}", table.name()).into())
        }
        other => other,
    }
}

/// The least string greater than every string that starts with `prefix`, in
/// byte order (UTF-8 byte order is code point order), or `None` when no
/// such bound exists (empty, or only `char::MAX`).
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// What one [`Op`] did not find or found in the way.
enum Refusal {
    Conflict(Table, Key),
    NotFound(Table, Key),
}

/// Writes `ops` into `txn`; a refusal leaves the caller to roll back. The
/// statements go out pipelined (one round trip for the batch, not one per
/// op); the server runs them in order.
async fn apply(
    txn: &deadpool_postgres::Transaction<'_>,
    ops: &[Op],
) -> Result<Result<(), Refusal>, tokio_postgres::Error> {
    let mut statements = Vec::with_capacity(ops.len());
    for op in ops {
        let (table, _) = op.target();
        let name = ident(table);
        let sql = match op {
            Op::Insert(..) => format!(
                "INSERT INTO {name} (tenant, id, value) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING"
            ),
            Op::Update(..) => {
                format!("UPDATE {name} SET value = $3 WHERE tenant = $1 AND id = $2")
            }
            Op::Delete(..) => format!("DELETE FROM {name} WHERE tenant = $1 AND id = $2"),
        };
        // Prepared once per connection and table (cached).
        statements.push(txn.prepare_cached(&sql).await?);
    }
    let texts: Vec<Option<String>> = ops
        .iter()
        .map(|op| match op {
            Op::Insert(_, _, value) | Op::Update(_, _, value) => Some(value.to_string()),
            Op::Delete(..) => None,
        })
        .collect();
    let changed = futures_util::future::try_join_all(ops.iter().zip(&statements).zip(&texts).map(
        |((op, statement), text)| {
            let (_, key) = op.target();
            async move {
                match text {
                    Some(text) => txn.execute(statement, &[&key.tenant, &key.id, text]).await,
                    None => txn.execute(statement, &[&key.tenant, &key.id]).await,
                }
            }
        },
    ))
    .await?;
    for (op, changed) in ops.iter().zip(changed) {
        let (table, key) = op.target();
        debug_assert!(changed <= 1, "a primary key names one row");
        // An insert that met an existing key or an update that met none.
        match op {
            Op::Insert(..) if changed == 0 => {
                return Ok(Err(Refusal::Conflict(table, key.clone())))
            }
            Op::Update(..) if changed == 0 => {
                return Ok(Err(Refusal::NotFound(table, key.clone())))
            }
            _ => {}
        }
    }
    Ok(Ok(()))
}

/// Writes a group of batches in one transaction (one WAL flush at
/// commit): each batch under a savepoint, rolled back alone when refused.
/// A group of one needs no savepoint: its refusal rolls back the whole.
async fn write_group(
    client: &mut deadpool_postgres::Object,
    batches: &[Vec<Op>],
) -> Result<Vec<Option<Refusal>>, tokio_postgres::Error> {
    let mut txn = client.transaction().await?;
    let mut outcomes = Vec::with_capacity(batches.len());
    if let [ops] = batches {
        if let Err(refusal) = apply(&txn, ops).await? {
            // Dropping the transaction rolls it back.
            return Ok(vec![Some(refusal)]);
        }
        outcomes.push(None);
    } else {
        for ops in batches {
            let batch = txn.savepoint("batch").await?;
            match apply(&batch, ops).await? {
                Ok(()) => {
                    batch.commit().await?;
                    outcomes.push(None);
                }
                Err(refusal) => {
                    batch.rollback().await?;
                    outcomes.push(Some(refusal));
                }
            }
        }
    }
    txn.commit().await?;
    Ok(outcomes)
}

fn retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

impl PgStore {
    /// One transaction for the batches of a group (see [`write_group`]),
    /// tried again on a deadlock or serialization failure.
    fn write_group(&self, batches: Vec<Vec<Op>>) -> Vec<Result<(), StoreError>> {
        let count = batches.len();
        let pool = self.pool.clone();
        let outcome = self.block(async move {
            let mut client = pool.get().await.map_err(backend)?;
            let mut attempt = 1;
            loop {
                match write_group(&mut client, &batches).await {
                    Ok(outcomes) => return Ok(outcomes),
                    Err(e) if retryable(&e) && attempt < COMMIT_ATTEMPTS => attempt += 1,
                    Err(e) => return Err(backend(e)),
                }
            }
        });
        match outcome {
            Ok(outcomes) => outcomes
                .into_iter()
                .map(|refused| match refused {
                    None => Ok(()),
                    Some(Refusal::Conflict(table, key)) => Err(StoreError::Conflict {
                        table: table.name(),
                        key,
                    }),
                    Some(Refusal::NotFound(table, key)) => Err(StoreError::NotFound {
                        table: table.name(),
                        key,
                    }),
                })
                .collect(),
            Err(e) => {
                let why = e.to_string();
                (0..count)
                    .map(|_| Err(StoreError::Backend(why.clone().into())))
                    .collect()
            }
        }
    }
}

impl Store for PgStore {
    fn get(&self, table: Table, key: &Key) -> Result<Option<serde_json::Value>, StoreError> {
        let sql = format!(
            "SELECT tenant, id, value FROM {} WHERE tenant = $1 AND id = $2",
            ident(table)
        );
        Ok(self
            .records(table, sql, vec![key.tenant.clone(), key.id.clone()])?
            .pop()
            .map(|(_, v)| v))
    }

    fn list(
        &self,
        table: Table,
        tenant: Option<&str>,
    ) -> Result<Vec<(Key, serde_json::Value)>, StoreError> {
        let name = ident(table);
        match tenant {
            Some(tenant) => self.records(
                table,
                format!("SELECT tenant, id, value FROM {name} WHERE tenant = $1 ORDER BY id"),
                vec![tenant.to_owned()],
            ),
            None => self.records(
                table,
                format!("SELECT tenant, id, value FROM {name} ORDER BY tenant, id"),
                Vec::new(),
            ),
        }
    }

    fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        self.group.commit(ops, |batches| self.write_group(batches))
    }

    fn get_texts(&self, keys: &[(Table, Key)]) -> Result<Vec<Option<String>>, StoreError> {
        let keys: Vec<(Table, Key)> = keys.to_vec();
        let pool = self.pool.clone();
        // One connection and one task for all of them (one hop to the
        // store's runtime instead of one per record).
        self.block(async move {
            let client = pool.get().await.map_err(backend)?;
            let mut statements = Vec::with_capacity(keys.len());
            for (table, _) in &keys {
                let sql = format!(
                    "SELECT value FROM {} WHERE tenant = $1 AND id = $2",
                    ident(*table)
                );
                statements.push(client.prepare_cached(&sql).await.map_err(backend)?);
            }
            // Pipelined: one round trip for all of them.
            let rows = futures_util::future::try_join_all(keys.iter().zip(&statements).map(
                |((_, key), statement)| {
                    let client = &client;
                    async move { client.query_opt(statement, &[&key.tenant, &key.id]).await }
                },
            ))
            .await
            .map_err(backend)?;
            rows.into_iter()
                .map(|row| row.map(|r| r.try_get(0)).transpose().map_err(backend))
                .collect()
        })
    }

    fn list_after(
        &self,
        table: Table,
        tenant: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(Key, serde_json::Value)>, StoreError> {
        let sql = format!(
            "SELECT tenant, id, value FROM {} WHERE tenant = $1 AND id > $2 \
             ORDER BY id LIMIT {}",
            ident(table),
            limit.min(i64::MAX as usize)
        );
        self.records(table, sql, vec![tenant.to_owned(), after.to_owned()])
    }

    fn last(
        &self,
        table: Table,
        tenant: &str,
    ) -> Result<Option<(Key, serde_json::Value)>, StoreError> {
        let sql = format!(
            "SELECT tenant, id, value FROM {} WHERE tenant = $1 ORDER BY id DESC LIMIT 1",
            ident(table)
        );
        Ok(self.records(table, sql, vec![tenant.to_owned()])?.pop())
    }

    fn scan_prefix(
        &self,
        table: Table,
        tenant: &str,
        prefix: &str,
        visit: &mut dyn FnMut(&str, &str) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // Pages of ids in [prefix, prefix_end): the index bounds the range
        // at both ends, so a scan never reads the tenant's other records.
        let name = ident(table);
        let (bound, end) = match prefix_end(prefix) {
            Some(end) => ("AND id < $4", end),
            None => ("", String::new()),
        };
        let sql = format!(
            "SELECT tenant, id, value FROM {name} WHERE tenant = $1 AND id >= $3 AND id > $2 \
             AND starts_with(id, $3) {bound} ORDER BY id LIMIT {SCAN_PAGE}"
        );
        let params = |after: &str| {
            let mut params = vec![tenant.to_owned(), after.to_owned(), prefix.to_owned()];
            if !bound.is_empty() {
                params.push(end.clone());
            }
            params
        };
        // The next page is fetched while this one is visited: PostgreSQL
        // producing rows and the visitor decoding them overlap.
        let mut pending = self.rows_started(sql.clone(), params(""))?;
        loop {
            let page = pending.wait().map_err(|e| in_table(table, e))?;
            let next = match page.last() {
                Some((_, id, _)) if page.len() as i64 == SCAN_PAGE => {
                    Some(self.rows_started(sql.clone(), params(id))?)
                }
                _ => None,
            };
            for (_, id, value) in &page {
                visit(id, value)?;
            }
            match next {
                Some(next) => pending = next,
                None => return Ok(()),
            }
        }
    }

    fn exclusively(&self, name: &str, job: &mut dyn FnMut()) -> Result<bool, StoreError> {
        let key = job_lock_key(&self.schema, name);
        let pool = self.pool.clone();
        let holder = self.block(async move {
            let client = pool.get().await.map_err(backend)?;
            let got: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .await
                .and_then(|row| row.try_get(0))
                .map_err(backend)?;
            // The claim lives with this session, which leaves the pool: if
            // the job panics, dropping it closes the connection and the
            // database releases the claim (a pooled one would keep it).
            Ok(got.then(|| deadpool_postgres::Object::take(client)))
        })?;
        let Some(session) = holder else {
            return Ok(false);
        };
        job();
        self.block(async move {
            session
                .execute("SELECT pg_advisory_unlock($1)", &[&key])
                .await
                .map_err(backend)
        })?;
        Ok(true)
    }

    fn count(&self, table: Table) -> Result<u64, StoreError> {
        let pool = self.pool.clone();
        let sql = format!("SELECT count(*) FROM {}", ident(table));
        self.block(async move {
            let client = pool.get().await.map_err(backend)?;
            let row = client.query_one(&sql, &[]).await.map_err(backend)?;
            let n: i64 = row.try_get(0).map_err(backend)?;
            Ok(n.max(0) as u64)
        })
        .map_err(|e| in_table(table, e))
    }
}

#[cfg(test)]
mod tests;
