//! Retention tests: every instant is given, nothing reads the system clock.

use std::sync::Arc;

use catalog::events::{Event, EventBatch, EventKind};
use chrono::TimeZone;

use super::*;
use crate::auth::{Clock, SessionPolicy};
use crate::events::{ingest, list_events, list_history, Filter};
use crate::store::RedbStore;

fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + TimeDelta::days(n)
}

fn event(id: &str, update: bool) -> Event {
    Event {
        id: id.into(),
        at: day(0),
        kind: if update {
            EventKind::UpdateFailed {
                target: "acme/v/1.2/fw.bin".into(),
                version: "1.2".into(),
                reason: "verify".into(),
            }
        } else {
            EventKind::DeviceAttached
        },
        device: Some("047f/serial/SN1".into()),
        detail: serde_json::Value::Null,
    }
}

fn store() -> (tempfile::TempDir, RedbStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
    for t in ["t", "other"] {
        store
            .commit(vec![Op::Insert(
                Table::Tenants,
                Key::new(t, ""),
                serde_json::json!({}),
            )])
            .unwrap();
    }
    (dir, store)
}

/// Tenant `t` gets one event on each of `days` (those on even positions are
/// update-status events); `other` one event on day 300.
fn seed(store: &RedbStore, days: &[i64]) {
    for (i, d) in days.iter().enumerate() {
        let batch = EventBatch {
            events: vec![event(&format!("e{i}"), i % 2 == 0)],
        };
        ingest(store, "t", "a1", &batch, day(*d)).unwrap();
    }
    let batch = EventBatch {
        events: vec![event("o", true)],
    };
    ingest(store, "other", "a9", &batch, day(300)).unwrap();
}

fn set_retention(store: &RedbStore, tenant: &str, days: u32) {
    let s = Settings {
        event_retention_days: Some(days),
        ..Settings::default()
    };
    store
        .commit(vec![Op::Insert(
            Table::Settings,
            Key::new(tenant, "fleet"),
            serde_json::to_value(&s).unwrap(),
        )])
        .unwrap();
}

fn received_days(store: &RedbStore, tenant: &str) -> Vec<i64> {
    list_events(store, tenant, None, 1000, &Filter::default())
        .unwrap()
        .items
        .iter()
        .map(|e| (e.received_at - day(0)).num_days())
        .collect()
}

#[test]
fn prunes_by_tenant_or_server_retention_at_the_given_now() {
    // (what, tenant t's setting, server default, now (day), t's days kept)
    type Case<'a> = (&'a str, Option<u32>, u32, i64, &'a [i64]);
    let cases: &[Case<'_>] = &[
        (
            "exactly 365 days old is kept",
            None,
            365,
            365,
            &[0, 100, 200, 300],
        ),
        (
            "366 days: the oldest goes",
            None,
            365,
            366,
            &[100, 200, 300],
        ),
        ("a tenant's 30 days win", Some(30), 365, 366, &[]),
        ("a tenant's 200 days", Some(200), 365, 400, &[200, 300]),
        (
            "a long server default keeps everything",
            None,
            36_500,
            10_000,
            &[0, 100, 200, 300],
        ),
    ];
    for (what, setting, default, now, kept) in cases {
        let (_dir, store) = store();
        seed(&store, &[0, 100, 200, 300]);
        if let Some(d) = setting {
            set_retention(&store, "t", *d);
        }
        let before_history = list_history(&store, "t", None, 100, &Filter::default())
            .unwrap()
            .items
            .len();
        let removed = prune_all(&store, Some(*default), day(*now)).unwrap();
        assert_eq!(received_days(&store, "t"), *kept, "{what}");
        let gone = 4 - kept.len();
        let history_left = list_history(&store, "t", None, 100, &Filter::default())
            .unwrap()
            .items;
        // Update events sit on days 0 and 200 (positions 0 and 2).
        let want_history: Vec<u64> = [1u64, 3]
            .into_iter()
            .filter(|seq| *seq as usize > gone)
            .collect();
        assert_eq!(
            history_left.iter().map(|h| h.seq).collect::<Vec<_>>(),
            want_history,
            "{what}"
        );
        let want_removed: Vec<(String, Pruned)> = (gone > 0)
            .then(|| {
                (
                    "t".to_owned(),
                    Pruned {
                        events: gone,
                        history: before_history - history_left.len(),
                    },
                )
            })
            .into_iter()
            .collect();
        assert_eq!(removed, want_removed, "{what}");
        // The other tenant (day 300, default retention) is untouched.
        assert_eq!(received_days(&store, "other"), [300], "{what}");
        // A second pass at the same instant removes nothing.
        assert_eq!(
            prune_all(&store, Some(*default), day(*now)).unwrap(),
            [],
            "{what}"
        );
    }
}

#[test]
fn numbering_goes_on_after_everything_was_pruned_and_claims_go_too() {
    let (_dir, store) = store();
    seed(&store, &[0, 1, 2]);
    assert_eq!(pruned_through(&store, "t").unwrap(), 0);
    let p = prune(&store, "t", day(10)).unwrap();
    assert_eq!(
        p,
        Pruned {
            events: 3,
            history: 2
        }
    );
    assert_eq!(pruned_through(&store, "t").unwrap(), 3);
    assert_eq!(received_days(&store, "t"), Vec::<i64>::new());
    // The cursor a reader holds (3) still leads to what comes next.
    let batch = EventBatch {
        events: vec![event("e0", true), event("new", false)],
    };
    let ack = ingest(&store, "t", "a1", &batch, day(11)).unwrap();
    assert_eq!(
        (ack.accepted, ack.duplicates),
        (2, 0),
        "the pruned id e0 was released with its event"
    );
    let after = list_events(&store, "t", Some(3), 10, &Filter::default()).unwrap();
    assert_eq!(
        after.items.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [4, 5]
    );
    let h = list_history(&store, "t", Some(3), 10, &Filter::default()).unwrap();
    assert_eq!(h.items.iter().map(|r| r.seq).collect::<Vec<_>>(), [4]);
    // A later partial prune keeps the mark at the highest number pruned.
    assert_eq!(prune(&store, "t", day(11)).unwrap(), Pruned::default());
    assert_eq!(pruned_through(&store, "t").unwrap(), 3);
}

#[test]
fn prunes_in_chunks() {
    let (_dir, store) = store();
    for b in 0..3 {
        let batch = EventBatch {
            events: (0..900)
                .map(|i| event(&format!("b{b}-{i}"), false))
                .collect(),
        };
        ingest(&store, "t", "a1", &batch, day(b)).unwrap();
    }
    // Days 0 and 1 (1800 events, two transactions) go; day 2 stays.
    let p = prune(&store, "t", day(2)).unwrap();
    assert_eq!(p.events, 1800);
    assert_eq!(pruned_through(&store, "t").unwrap(), 1800);
    let left = list_events(&store, "t", None, 1000, &Filter::default()).unwrap();
    assert_eq!(
        (left.items.len(), left.items[0].seq, left.next_since),
        (900, 1801, 2700)
    );
}

#[derive(Debug)]
struct FixedClock(DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

#[test]
fn the_job_uses_the_accounts_clock() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(&dir.path().join("s.redb")).unwrap());
    store
        .commit(vec![Op::Insert(
            Table::Tenants,
            Key::new("t", ""),
            serde_json::json!({}),
        )])
        .unwrap();
    seed(&store, &[0, 100]);
    // (clock, server default days, events removed by the pass); no default
    // and no tenant setting: kept indefinitely.
    for (now, default, removed) in [
        (1000, None, 0),
        (50, Some(365), 0),
        (366, Some(365), 1),
        (400, Some(250), 1),
    ] {
        let accounts = Accounts::new(
            store.clone(),
            Arc::new(FixedClock(day(now))),
            dir.path().join("keys"),
            SessionPolicy::default(),
        );
        assert_eq!(tick(&accounts, default).unwrap(), removed, "day {now}");
    }
    assert_eq!(received_days(&store, "t"), Vec::<i64>::new());
    assert_eq!(
        check_default_days(0).unwrap_err(),
        "invalid event_retention_days: must be between 1 and 36500 days"
    );
    assert_eq!(check_default_days(365), Ok(365));
}
