//! Agent events: durable, idempotent ingestion, paging, and the update history.
//!
//! Each new event gets the tenant's next receive sequence number and is
//! stored under it (`Table::Events`, id = the number as 20 digits, so key
//! order is receive order). A claim `event:<agent>:<event id>` in
//! `Table::Unique`, inserted in the same transaction, makes a second copy
//! impossible: a retried batch finds its ids claimed and stores nothing
//! again. Update-status events are also written to `Table::UpdateHistory`
//! under the same number, in the same transaction. The transaction is durable
//! before [`ingest`] returns, and the HTTP answer is sent only after that.
//!
//! [`retention`] prunes what is older than the tenant's retention period.

use std::collections::HashSet;
use std::sync::Mutex;

use catalog::events::{Event, EventAck, EventBatch, EventError, UpdateOutcome};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{Key, Op, Store, StoreError, Table};

pub mod retention;

/// Most items one page of [`list_events`] / [`list_history`] returns.
pub const MAX_PAGE: usize = 1000;
/// Items per page when the caller does not say.
pub const DEFAULT_PAGE: usize = 100;
/// Optimistic retries when another writer took the same sequence numbers.
const ATTEMPTS: usize = 32;

/// Serialises this process's ingestion, so its commits take sequence numbers
/// in order (other processes sharing the store are handled by retrying on
/// conflicts).
static INGEST: Mutex<()> = Mutex::new(());

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// The tenant's receive sequence number (the paging cursor).
    pub seq: u64,
    /// The agent that sent it.
    pub agent: String,
    /// When the server stored it.
    pub received_at: DateTime<Utc>,
    /// The event as sent.
    pub event: Event,
}

/// One update-history entry (from an update-status event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateRecord {
    /// The sequence number of the event it comes from.
    pub seq: u64,
    /// The agent.
    pub agent: String,
    /// The device (`DeviceReport::identity`), if the event named one.
    pub device: Option<String>,
    /// The TUF target.
    pub target: String,
    /// The target's version.
    pub version: String,
    /// What happened.
    pub outcome: UpdateOutcome,
    /// Why it failed.
    pub reason: Option<String>,
    /// When it happened (agent clock).
    pub at: DateTime<Utc>,
    /// The event id.
    pub event_id: String,
}

/// Why ingestion or a query failed.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The batch breaks a bound.
    #[error(transparent)]
    Invalid(#[from] EventError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Other writers kept taking the same sequence numbers.
    #[error("event ingestion kept conflicting with other writers; retry")]
    Busy,
    /// A stored record does not decode.
    #[error("corrupt {0} record: {1}")]
    Corrupt(&'static str, String),
}

fn seq_id(seq: u64) -> String {
    format!("{seq:020}")
}

fn claim(agent: &str, id: &str) -> String {
    format!("event:{agent}:{id}")
}

fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    v: serde_json::Value,
) -> Result<T, EventsError> {
    serde_json::from_value(v).map_err(|e| EventsError::Corrupt(what, e.to_string()))
}

fn encode<T: Serialize>(v: &T) -> serde_json::Value {
    // Plain structs of strings, numbers, dates and JSON values: cannot fail.
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Stores the new events of `batch` from `agent` durably, exactly once each.
/// The answer acknowledges every distinct id of the batch; sending the same
/// batch again stores nothing and acknowledges the same ids.
pub fn ingest(
    store: &dyn Store,
    tenant: &str,
    agent: &str,
    batch: &EventBatch,
    now: DateTime<Utc>,
) -> Result<EventAck, EventsError> {
    batch.validate()?;
    let _serial = INGEST.lock().unwrap_or_else(|p| p.into_inner());
    for _ in 0..ATTEMPTS {
        let mut seen = HashSet::new();
        let mut acknowledged = Vec::new();
        let mut fresh = Vec::new();
        for e in &batch.events {
            if !seen.insert(e.id.as_str()) {
                continue;
            }
            acknowledged.push(e.id.clone());
            if store
                .get(Table::Unique, &Key::new(tenant, claim(agent, &e.id)))?
                .is_none()
            {
                fresh.push(e);
            }
        }
        let ack = EventAck {
            accepted: fresh.len(),
            duplicates: batch.events.len() - fresh.len(),
            acknowledged,
        };
        if fresh.is_empty() {
            return Ok(ack);
        }
        let last = match store.last(Table::Events, tenant)? {
            Some((k, _)) => {
                k.id.parse::<u64>()
                    .map_err(|e| EventsError::Corrupt("event key", e.to_string()))?
            }
            // Every event pruned: go on after the last number handed out.
            None => retention::pruned_through(store, tenant)?,
        };
        let mut ops = Vec::with_capacity(fresh.len() * 3);
        for (seq, e) in (last + 1..).zip(fresh) {
            let key = Key::new(tenant, seq_id(seq));
            let stored = StoredEvent {
                seq,
                agent: agent.to_owned(),
                received_at: now,
                event: e.clone(),
            };
            ops.push(Op::Insert(Table::Events, key.clone(), encode(&stored)));
            ops.push(Op::Insert(
                Table::Unique,
                Key::new(tenant, claim(agent, &e.id)),
                serde_json::Value::from(seq),
            ));
            if let Some(u) = e.kind.update() {
                let record = UpdateRecord {
                    seq,
                    agent: agent.to_owned(),
                    device: e.device.clone(),
                    target: u.target.to_owned(),
                    version: u.version.to_owned(),
                    outcome: u.outcome,
                    reason: u.reason.map(str::to_owned),
                    at: e.at,
                    event_id: e.id.clone(),
                };
                ops.push(Op::Insert(Table::UpdateHistory, key, encode(&record)));
            }
        }
        match store.commit(ops) {
            Ok(()) => return Ok(ack),
            // Another writer took these numbers or stored one of these ids
            // first: look again.
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(EventsError::Busy)
}

/// A page of records after the cursor `since` (a sequence number; 0 or
/// `None` for the start), and the cursor for the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The records, in receive order.
    pub items: Vec<T>,
    /// Pass as `since` to get what follows (new records appear there later).
    pub next_since: u64,
}

/// Records examined at most per filtered page (the page may then hold
/// fewer than `limit` items; `next_since` says where to go on).
pub const MAX_SCAN: usize = 10 * MAX_PAGE;

fn page<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    table: Table,
    tenant: &str,
    since: Option<u64>,
    limit: usize,
    seq_of: fn(&T) -> u64,
    keep: &dyn Fn(&T) -> bool,
) -> Result<Page<T>, EventsError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut next_since = since.unwrap_or(0);
    let mut items = Vec::new();
    let mut scanned = 0;
    'scan: while scanned < MAX_SCAN {
        let after = if next_since == 0 {
            String::new()
        } else {
            seq_id(next_since)
        };
        let chunk = store.list_after(table, tenant, &after, MAX_PAGE.min(MAX_SCAN - scanned))?;
        if chunk.is_empty() {
            break;
        }
        for (_, v) in chunk {
            let record: T = decode(table.name(), v)?;
            next_since = seq_of(&record);
            scanned += 1;
            if keep(&record) {
                items.push(record);
                if items.len() == limit {
                    break 'scan;
                }
            }
        }
    }
    Ok(Page { items, next_since })
}

/// Which events or update-history entries to return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this agent's.
    pub agent: Option<String>,
    /// Only this device's (`DeviceReport::identity`).
    pub device: Option<String>,
}

impl Filter {
    fn keeps(&self, agent: &str, device: Option<&String>) -> bool {
        self.agent.as_ref().is_none_or(|a| a == agent)
            && self.device.as_ref().is_none_or(|d| device == Some(d))
    }
}

/// The tenant's events after `since`, at most `limit` (clamped to
/// 1..=[`MAX_PAGE`]), filtered. Without a filter a short page is the end;
/// with one, a page stops after [`MAX_SCAN`] records examined, so follow
/// `next_since` until a page is empty and `next_since` stays put.
pub fn list_events(
    store: &dyn Store,
    tenant: &str,
    since: Option<u64>,
    limit: usize,
    filter: &Filter,
) -> Result<Page<StoredEvent>, EventsError> {
    page(
        store,
        Table::Events,
        tenant,
        since,
        limit,
        |e| e.seq,
        &|e| filter.keeps(&e.agent, e.event.device.as_ref()),
    )
}

/// The tenant's update history, like [`list_events`].
pub fn list_history(
    store: &dyn Store,
    tenant: &str,
    since: Option<u64>,
    limit: usize,
    filter: &Filter,
) -> Result<Page<UpdateRecord>, EventsError> {
    page(
        store,
        Table::UpdateHistory,
        tenant,
        since,
        limit,
        |r| r.seq,
        &|r| filter.keeps(&r.agent, r.device.as_ref()),
    )
}

#[cfg(test)]
mod tests {
    use catalog::events::EventKind;

    use super::*;
    use crate::store::RedbStore;

    fn ev(id: &str, kind: EventKind) -> Event {
        Event {
            id: id.into(),
            at: "2026-01-02T03:04:05Z".parse().unwrap(),
            kind,
            device: Some("047f/serial/SN1".into()),
            detail: serde_json::Value::Null,
        }
    }

    #[test]
    fn idempotent_ingestion_history_and_paging() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        let now = Utc::now();
        let failed = EventKind::UpdateFailed {
            target: "acme/v/1.2/fw.bin".into(),
            version: "1.2".into(),
            reason: "verify".into(),
        };
        let batch = EventBatch {
            events: vec![
                ev("a", EventKind::AgentStarted),
                ev("b", failed.clone()),
                ev("a", EventKind::DeviceAttached),
            ],
        };
        let ack = ingest(&store, "t", "ag1", &batch, now).unwrap();
        assert_eq!(
            ack,
            EventAck {
                acknowledged: vec!["a".into(), "b".into()],
                accepted: 2,
                duplicates: 1
            }
        );
        // The retry: same acknowledgement, nothing stored twice.
        let again = ingest(&store, "t", "ag1", &batch, now).unwrap();
        assert_eq!(again.acknowledged, ack.acknowledged);
        assert_eq!((again.accepted, again.duplicates), (0, 3));
        // The same id from another agent, or in another tenant, is another event.
        assert_eq!(ingest(&store, "t", "ag2", &batch, now).unwrap().accepted, 2);
        assert_eq!(ingest(&store, "u", "ag1", &batch, now).unwrap().accepted, 2);

        let all = list_events(&store, "t", None, 10, &Filter::default()).unwrap();
        let seen: Vec<(u64, &str, &str)> = all
            .items
            .iter()
            .map(|e| (e.seq, e.agent.as_str(), e.event.id.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (1, "ag1", "a"),
                (2, "ag1", "b"),
                (3, "ag2", "a"),
                (4, "ag2", "b")
            ]
        );
        assert_eq!(all.next_since, 4);
        assert_eq!(all.items[0].event.kind, EventKind::AgentStarted);
        let p1 = list_events(&store, "t", Some(1), 2, &Filter::default()).unwrap();
        assert_eq!(p1.items.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(p1.next_since, 3);
        let end = list_events(&store, "t", Some(4), 2, &Filter::default()).unwrap();
        assert_eq!((end.items.len(), end.next_since), (0, 4));

        let h = list_history(&store, "t", None, 10, &Filter::default()).unwrap();
        assert_eq!(h.items.len(), 2);
        assert_eq!(
            h.items[0],
            UpdateRecord {
                seq: 2,
                agent: "ag1".into(),
                device: Some("047f/serial/SN1".into()),
                target: "acme/v/1.2/fw.bin".into(),
                version: "1.2".into(),
                outcome: UpdateOutcome::Failed,
                reason: Some("verify".into()),
                at: "2026-01-02T03:04:05Z".parse().unwrap(),
                event_id: "b".into(),
            }
        );

        // Filters: by agent, by device; paging goes on past what they skip.
        let by_agent = Filter {
            agent: Some("ag2".into()),
            device: None,
        };
        let h = list_history(&store, "t", None, 10, &by_agent).unwrap();
        assert_eq!((h.items.len(), h.items[0].seq, h.next_since), (1, 4, 4));
        let h = list_history(&store, "t", None, 1, &Filter::default()).unwrap();
        assert_eq!((h.items[0].seq, h.next_since), (2, 2));
        let ev2 = list_events(&store, "t", Some(1), 10, &by_agent).unwrap();
        assert_eq!(ev2.items.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
        let other_device = Filter {
            agent: None,
            device: Some("047f/serial/SN2".into()),
        };
        let h = list_history(&store, "t", None, 10, &other_device).unwrap();
        assert_eq!((h.items.len(), h.next_since), (0, 4));

        // An invalid batch stores nothing.
        let bad = EventBatch {
            events: vec![ev("c", EventKind::AgentStarted), ev("bad id", failed)],
        };
        assert!(matches!(
            ingest(&store, "t", "ag1", &bad, now),
            Err(EventsError::Invalid(EventError::BadId { index: 1 }))
        ));
        assert_eq!(
            list_events(&store, "t", None, 100, &Filter::default())
                .unwrap()
                .items
                .len(),
            4
        );
    }

    #[test]
    fn two_handles_share_numbers_and_claims() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let stores: Vec<RedbStore> = (0..2).map(|_| RedbStore::open(&path).unwrap()).collect();
        let batch = |n: usize| EventBatch {
            events: (0..10)
                .map(|i| ev(&format!("e{n}-{i}"), EventKind::DeviceAttached))
                .collect(),
        };
        // Interleave two handles (as two processes would): each sees the
        // other's numbers, and retried batches are duplicates.
        for n in 0..6 {
            let s = &stores[n % 2];
            assert_eq!(
                ingest(s, "t", "a", &batch(n), Utc::now()).unwrap().accepted,
                10
            );
            let other = &stores[(n + 1) % 2];
            assert_eq!(
                ingest(other, "t", "a", &batch(n), Utc::now())
                    .unwrap()
                    .duplicates,
                10
            );
        }
        let all = list_events(&stores[0], "t", None, 1000, &Filter::default()).unwrap();
        assert_eq!(all.items.len(), 60);
        let seqs: Vec<u64> = all.items.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=60).collect::<Vec<_>>());
    }
}
