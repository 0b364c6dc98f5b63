//! Versioned schema migrations of the PostgreSQL store, applied at start.
//!
//! Each migration runs once, in order, recorded in `schema_migrations`. All
//! of it happens in one transaction under an advisory lock, so nodes that
//! start together apply each migration exactly once and none serves a
//! half-migrated database. A database migrated by a newer server is refused:
//! this one would not know its tables.

use tokio_postgres::Transaction;

use super::backend;
use crate::store::StoreError;

/// The advisory lock key of migrations (any constant the product owns).
const MIGRATION_LOCK: i64 = 0x7570_6461_7465_7201;

/// One schema change.
struct Migration {
    version: i32,
    what: &'static str,
    sql: fn() -> String,
}

/// Every migration, oldest first. Append only: a released migration never
/// changes, the next change is the next version.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    what: "one table per record kind: (tenant, id) -> JSON text, byte-ordered keys",
    sql: v1_tables,
}];

/// The tables of version 1 (`Table::name` of every table that existed then).
const V1_TABLES: [&str; 18] = [
    "tenants",
    "admins",
    "sessions",
    "api_tokens",
    "agents",
    "groups",
    "firmware_policies",
    "software_policies",
    "settings",
    "inventory_users",
    "inventory_hosts",
    "inventory_devices",
    "checkins",
    "events",
    "update_history",
    "rollouts",
    "rollout_members",
    "unique",
];

fn v1_tables() -> String {
    V1_TABLES
        .iter()
        .map(|name| {
            format!(
                "CREATE TABLE \"{name}\" (\
                 tenant TEXT COLLATE \"C\" NOT NULL, \
                 id TEXT COLLATE \"C\" NOT NULL, \
                 value TEXT NOT NULL, \
                 PRIMARY KEY (tenant, id));\n"
            )
        })
        .collect()
}

/// The newest schema version this server knows.
pub(super) fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Refuses a schema name that is not a plain lower-case SQL identifier (it
/// travels in the connection's options, where quoting is fragile).
pub(super) fn check_name(schema: &str) -> Result<(), StoreError> {
    let mut chars = schema.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 63;
    if plain {
        Ok(())
    } else {
        Err(StoreError::Backend(
            format!(
                "schema name {schema:?}: use 1 to 63 of a-z, 0-9 and _, not starting with a digit"
            )
            .into(),
        ))
    }
}

/// Quotes an SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The first schema of a `search_path` setting, unquoted; `None` for
/// `"$user"` (a per-role schema the operator manages) or an empty path.
pub(super) fn first_schema(search_path: &str) -> Option<String> {
    let first = search_path.split(',').next()?.trim();
    let name = match first.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => first.to_owned(),
    };
    (!name.is_empty() && name != "$user").then_some(name)
}

/// Brings the database to [`latest`]: creates the first schema of the search
/// path if missing, then applies the migrations it lacks. Returns the
/// schema the tables are in.
pub(super) async fn migrate(client: &mut deadpool_postgres::Object) -> Result<String, StoreError> {
    let txn = client.transaction().await.map_err(backend)?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(backend)?;
    let path: String = txn
        .query_one("SELECT current_setting('search_path')", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(backend)?;
    if let Some(schema) = first_schema(&path) {
        txn.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote(&schema)))
            .await
            .map_err(backend)?;
    }
    let applied = applied_version(&txn).await?;
    if applied > latest() {
        return Err(StoreError::Backend(
            format!(
                "the database's schema is version {applied}, newer than this server's ({}): \
                 run a server at least as new as the one that migrated it",
                latest()
            )
            .into(),
        ));
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > applied) {
        txn.batch_execute(&(migration.sql)())
            .await
            .map_err(backend)?;
        txn.execute(
            "INSERT INTO schema_migrations (version, what) VALUES ($1, $2)",
            &[&migration.version, &migration.what],
        )
        .await
        .map_err(backend)?;
        tracing::info!(
            version = migration.version,
            what = migration.what,
            "store schema migrated"
        );
    }
    let schema: String = txn
        .query_one("SELECT current_schema()", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(backend)?;
    txn.commit().await.map_err(backend)?;
    Ok(schema)
}

async fn applied_version(txn: &Transaction<'_>) -> Result<i32, StoreError> {
    txn.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
         version INTEGER PRIMARY KEY, \
         what TEXT NOT NULL, \
         applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .map_err(backend)?;
    let row = txn
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(backend)?;
    row.try_get(0).map_err(backend)
}
