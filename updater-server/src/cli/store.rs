//! `updater-server store migrate --from DATA --to postgres://…`: copies an
//! embedded store into an empty PostgreSQL database, then checks the copy.
//!
//! The source is read as one redb read transaction sees it (a consistent
//! snapshot); stop the servers on it first, or what they write afterwards
//! stays behind. The target must hold no record, so a migration never mixes
//! two fleets. After the copy, the record count of every table and a sample
//! of records spread over each table are compared; any difference fails the
//! command.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde::Serialize;

use super::{DataDir, PostgresStore};
use crate::store::{self, is_postgres_url, Key, Op, PgStore, RedbStore, Store, Table};

/// Records written per PostgreSQL transaction while copying.
const BATCH: usize = 1000;
/// Records compared per table after the copy, spread evenly over it.
const SAMPLE_PER_TABLE: u64 = 200;

/// Store commands.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy the embedded store of a data directory into an empty PostgreSQL
    /// database (schema migrations applied first), then compare counts and
    /// a sample of records. Prints a JSON summary.
    Migrate {
        /// The data directory whose `server.redb` is copied.
        #[arg(long, value_name = "DATA_DIR")]
        from: PathBuf,
        /// The PostgreSQL store, `postgres://USER:PASSWORD@HOST:PORT/DB`
        /// (the tables go into `--store-schema` if given).
        #[arg(long, value_name = "URL", env = "UPDATER_STORE_MIGRATE_TO")]
        to: String,
    },
}

/// What a migration copied and checked.
#[derive(Debug, Serialize)]
struct Summary {
    /// Records per table, equal in source and target.
    tables: BTreeMap<&'static str, u64>,
    /// Records compared field by field after the copy.
    sampled: u64,
}

/// Runs a store command.
pub(super) fn run(
    command: StoreCommand,
    schema: Option<String>,
    connections: usize,
) -> anyhow::Result<()> {
    match command {
        StoreCommand::Migrate { from, to } => {
            let target = PostgresStore {
                url: to,
                schema,
                connections,
            };
            let summary = migrate(&DataDir::new(from), &target)?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(())
        }
    }
}

fn migrate(from: &DataDir, to: &PostgresStore) -> anyhow::Result<Summary> {
    let path = from.store_path();
    if !path.is_file() {
        bail!("{} does not exist: nothing to migrate", path.display());
    }
    if !is_postgres_url(&to.url) {
        bail!("--to takes a postgres:// URL");
    }
    let source = RedbStore::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let target = PgStore::open(&to.url, to.schema.as_deref(), to.connections)?;
    let held: Vec<String> = store::counts(&target)?
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(t, n)| format!("{t}: {n}"))
        .collect();
    if !held.is_empty() {
        bail!(
            "the target store is not empty ({}): migrate into an empty database or schema",
            held.join(", ")
        );
    }

    let mut batch = Vec::with_capacity(BATCH);
    source.visit_all(&mut |table, key, text| {
        batch.push(Op::Insert(table, key, table.decode(text)?));
        if batch.len() == BATCH {
            target.commit(std::mem::take(&mut batch))?;
        }
        Ok(())
    })?;
    target.commit(batch)?;

    let tables = store::counts(&source)?;
    let copied = store::counts(&target)?;
    for (table, n) in &tables {
        let m = copied.get(table).copied().unwrap_or(0);
        if *n != m {
            bail!("table {table}: {n} records in the source, {m} in PostgreSQL after the copy");
        }
    }
    let sampled = compare_sample(&source, &target, &tables)?;
    Ok(Summary { tables, sampled })
}

/// Compares about [`SAMPLE_PER_TABLE`] records of each table, evenly spread,
/// between the source and the target; returns how many were compared.
fn compare_sample(
    source: &RedbStore,
    target: &dyn Store,
    counts: &BTreeMap<&'static str, u64>,
) -> anyhow::Result<u64> {
    let mut index: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut mismatch: Option<(Table, Key)> = None;
    let mut sampled = 0;
    source.visit_all(&mut |table, key, text| {
        let n = counts.get(table.name()).copied().unwrap_or(0);
        let step = (n / SAMPLE_PER_TABLE).max(1);
        let i = index.entry(table.name()).or_default();
        *i += 1;
        if !(*i - 1).is_multiple_of(step) || mismatch.is_some() {
            return Ok(());
        }
        sampled += 1;
        if target.get(table, &key)? != Some(table.decode(text)?) {
            mismatch = Some((table, key));
        }
        Ok(())
    })?;
    if let Some((table, key)) = mismatch {
        bail!(
            "table {}: record ({}, {}) differs in PostgreSQL after the copy",
            table.name(),
            key.tenant,
            key.id
        );
    }
    Ok(sampled)
}
