//! Event retention: agent events and update history received more than the
//! retention period ago are deleted by a periodic job.
//!
//! The period is the tenant's `event_retention_days` setting, else the
//! server's default (`serve --event-retention-days`); with neither, events
//! are kept indefinitely (the vendor default this product follows).
//! Events are numbered in receive order, so pruning walks from the oldest
//! and stops at the first event inside the period. With an event go its
//! update-history entry and its idempotency claim (an agent retrying a batch
//! older than the period would have it stored again). The highest number
//! pruned is kept (`Table::Settings`, id [`PRUNED_THROUGH`]) so numbering
//! goes on from there even when every event was pruned: paging cursors stay
//! valid.
//!
//! Time enters only as the `now` argument (the job passes its clock's time).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::{claim, decode, seq_id, EventsError, StoredEvent};
use crate::auth::Accounts;
use crate::fleet::{check_retention_days, Settings};
use crate::store::{Key, Op, Store, StoreError, Table};

/// How often the server's job prunes.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// The id, in `Table::Settings`, of the highest event number pruned.
pub const PRUNED_THROUGH: &str = "events-pruned-through";
/// Events examined per transaction.
const CHUNK: usize = 1000;

/// What one pass removed from one tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Events deleted.
    pub events: usize,
    /// Update-history entries deleted.
    pub history: usize,
}

/// The highest event number pruned in `tenant` (0 when none).
pub fn pruned_through(store: &dyn Store, tenant: &str) -> Result<u64, EventsError> {
    match store.get(Table::Settings, &Key::new(tenant, PRUNED_THROUGH))? {
        None => Ok(0),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| EventsError::Corrupt("pruned-through mark", v.to_string())),
    }
}

/// Deletes `tenant`'s events received before `cutoff`, with their
/// update-history entries and idempotency claims, in transactions of at
/// most 1000 events.
pub fn prune(
    store: &dyn Store,
    tenant: &str,
    cutoff: DateTime<Utc>,
) -> Result<Pruned, EventsError> {
    let mut total = Pruned::default();
    loop {
        let chunk = store.list_after(Table::Events, tenant, "", CHUNK)?;
        let full = chunk.len() == CHUNK;
        let mut ops = Vec::new();
        let mut last = None;
        let mut reached_kept = false;
        for (_, v) in chunk {
            let e: StoredEvent = decode("events", v)?;
            if e.received_at >= cutoff {
                reached_kept = true;
                break;
            }
            let key = Key::new(tenant, seq_id(e.seq));
            ops.push(Op::Delete(Table::Events, key.clone()));
            if e.event.kind.update().is_some() {
                ops.push(Op::Delete(Table::UpdateHistory, key));
                total.history += 1;
            }
            ops.push(Op::Delete(
                Table::Unique,
                Key::new(tenant, claim(&e.agent, &e.event.id)),
            ));
            total.events += 1;
            last = Some(e.seq);
        }
        let Some(last) = last else {
            return Ok(total);
        };
        let mark = Key::new(tenant, PRUNED_THROUGH);
        let exists = store.get(Table::Settings, &mark)?.is_some();
        let value = serde_json::Value::from(last.max(pruned_through(store, tenant)?));
        ops.push(if exists {
            Op::Update(Table::Settings, mark, value)
        } else {
            Op::Insert(Table::Settings, mark, value)
        });
        store.commit(ops)?;
        if reached_kept || !full {
            return Ok(total);
        }
    }
}

/// The retention of `tenant` in days: its setting, else `default_days`;
/// `None`: kept indefinitely.
pub fn retention_days(
    store: &dyn Store,
    tenant: &str,
    default_days: Option<u32>,
) -> Result<Option<u32>, EventsError> {
    let settings: Option<Settings> = store
        .get(Table::Settings, &Key::new(tenant, "fleet"))?
        .map(|v| decode("settings", v))
        .transpose()?;
    Ok(settings
        .and_then(|s| s.event_retention_days)
        .or(default_days))
}

/// One pass over every tenant at `now`: prunes what each tenant's retention
/// no longer covers. Returns what was removed, per tenant that lost anything.
pub fn prune_all(
    store: &dyn Store,
    default_days: Option<u32>,
    now: DateTime<Utc>,
) -> Result<Vec<(String, Pruned)>, EventsError> {
    let mut out = Vec::new();
    for (key, _) in store.list(Table::Tenants, None)? {
        let tenant = key.tenant;
        let Some(days) = retention_days(store, &tenant, default_days)? else {
            continue;
        };
        let cutoff = now - TimeDelta::days(i64::from(days));
        let p = prune(store, &tenant, cutoff)?;
        if p.events > 0 {
            out.push((tenant, p));
        }
    }
    Ok(out)
}

/// Checks a server default retention (1 to 36500 days).
pub fn check_default_days(days: u32) -> Result<u32, String> {
    check_retention_days(days)
        .map(|()| days)
        .map_err(|e| e.to_string())
}

/// One pass of the server's job at the accounts' clock; logs what it did.
pub fn tick(accounts: &Accounts, default_days: Option<u32>) -> Result<usize, EventsError> {
    let pruned = prune_all(accounts.store(), default_days, accounts.now())?;
    for (tenant, p) in &pruned {
        tracing::info!(
            tenant = %tenant,
            events = p.events,
            history = p.history,
            "pruned events older than the retention period"
        );
    }
    Ok(pruned.iter().map(|(_, p)| p.events).sum())
}

/// The server's job: a pass every [`PRUNE_EVERY`], the first at start, one
/// node at a time ([`crate::store::Store::exclusively`]).
/// A pass that fails (another process pruning at the same time, a store
/// error) is logged and retried at the next tick.
pub async fn run(accounts: Accounts, default_days: Option<u32>) {
    let mut every = tokio::time::interval(PRUNE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let a = accounts.clone();
        let pass = tokio::task::spawn_blocking(move || {
            crate::store::run_exclusively(a.store(), "retention", || tick(&a, default_days))
        });
        match pass.await {
            Ok(Ok(None | Some(Ok(_)))) => {}
            Ok(Ok(Some(Err(EventsError::Store(StoreError::Conflict { .. }))))) => {
                tracing::info!("event pruning met a concurrent writer; next tick retries");
            }
            Ok(Ok(Some(Err(e)))) => tracing::error!(error = %e, "event pruning failed"),
            Ok(Err(e)) => tracing::error!(error = %e, "event pruning: store"),
            Err(e) => tracing::error!(error = %e, "event pruning task failed"),
        }
    }
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
