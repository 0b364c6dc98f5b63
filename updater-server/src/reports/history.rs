//! Update History: the update-status events agents sent (the data of
//! `GET …/update-history`), whole or within a date range, with host names.
//!
//! The range applies to when the update happened (the agent's clock, the
//! event's `at`): `from` is inclusive, `to` exclusive. A bare date
//! (`2026-01-31`) means midnight UTC starting that day for `from`, and the
//! end of that day for `to`, so `from=2026-01-01&to=2026-01-31` is all of
//! January. At most [`MAX_ROWS`] entries are returned (`truncated` says so);
//! narrow the range to see the rest.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;
use serde_json::json;

use super::{time, Built, ReportError, ReportKind};
use crate::events::{self, Filter, UpdateRecord, MAX_PAGE};
use crate::fleet::inventory::Host;
use crate::store::Store;

/// Most entries one report holds.
pub const MAX_ROWS: usize = 100_000;

/// Which entries to report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Range {
    /// Inclusive start.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive end.
    pub to: Option<DateTime<Utc>>,
    /// Only this agent's and / or device's.
    pub filter: Filter,
}

/// Which end of a range a date bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// `from`: the day's start.
    From,
    /// `to`: the next day's start (the whole day is included).
    To,
}

/// Parses an RFC 3339 time or a `YYYY-MM-DD` date (UTC) for one end.
pub fn parse_bound(
    field: &'static str,
    text: &str,
    end: End,
) -> Result<DateTime<Utc>, ReportError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ReportError::invalid(field, "must be a date (YYYY-MM-DD) or an RFC 3339 time")
    })?;
    let start = day.and_time(chrono::NaiveTime::MIN).and_utc();
    Ok(match end {
        End::From => start,
        End::To => start + TimeDelta::days(1),
    })
}

impl Range {
    /// A range from optional texts; refuses `from` after `to`.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        filter: Filter,
    ) -> Result<Self, ReportError> {
        let from = from
            .map(|f| parse_bound("from", f, End::From))
            .transpose()?;
        let to = to.map(|t| parse_bound("to", t, End::To)).transpose()?;
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                return Err(ReportError::invalid("to", "must be after from"));
            }
        }
        Ok(Range { from, to, filter })
    }

    /// Whether `at` is inside.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| at >= f) && self.to.is_none_or(|t| at < t)
    }
}

/// One entry, with its host's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryRow {
    /// The entry as stored.
    #[serde(flatten)]
    pub record: UpdateRecord,
    /// The agent's host name (empty when the host was deleted).
    pub hostname: String,
}

/// The CSV columns.
pub const COLUMNS: &[&str] = &[
    "seq", "at", "agent", "hostname", "device", "target", "version", "outcome", "reason",
    "event_id",
];

/// The entries in `range`, in receive order, at most `max`; and whether
/// more matched.
pub fn read(
    store: &dyn Store,
    tenant: &str,
    range: &Range,
    max: usize,
) -> Result<(Vec<UpdateRecord>, bool), ReportError> {
    let mut out = Vec::new();
    let mut since = None;
    loop {
        let page = events::list_history(store, tenant, since, MAX_PAGE, &range.filter)?;
        let moved = since != Some(page.next_since);
        for r in page.items {
            if range.contains(r.at) {
                if out.len() == max {
                    return Ok((out, true));
                }
                out.push(r);
            }
        }
        if !moved {
            return Ok((out, false));
        }
        since = Some(page.next_since);
    }
}

fn outcome_name(r: &UpdateRecord) -> String {
    serde_json::to_value(r.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The report from entries already read.
pub fn build(
    tenant: &str,
    now: DateTime<Utc>,
    range: &Range,
    records: Vec<UpdateRecord>,
    truncated: bool,
    hosts: &[Host],
) -> Built {
    let names: std::collections::BTreeMap<&str, &str> = hosts
        .iter()
        .map(|h| (h.id.as_str(), h.hostname.as_str()))
        .collect();
    let name = |agent: &str| names.get(agent).copied().unwrap_or_default().to_owned();
    let rows: Vec<HistoryRow> = records
        .into_iter()
        .map(|record| HistoryRow {
            hostname: name(&record.agent),
            record,
        })
        .collect();
    let summary = json!({
        "report": ReportKind::History,
        "tenant": tenant,
        "generated_at": now,
        "from": range.from,
        "to": range.to,
        "entries": rows.len(),
        "truncated": truncated,
    });
    Built::listed(ReportKind::History, COLUMNS, summary, "rows", rows, cells)
}

/// A row's CSV cells.
fn cells(r: &HistoryRow) -> Vec<String> {
    let e = &r.record;
    vec![
        e.seq.to_string(),
        time(e.at),
        e.agent.clone(),
        r.hostname.clone(),
        e.device.clone().unwrap_or_default(),
        e.target.clone(),
        e.version.clone(),
        outcome_name(e),
        e.reason.clone().unwrap_or_default(),
        e.event_id.clone(),
    ]
}

#[cfg(test)]
mod tests {
    use catalog::events::{Event, EventBatch, EventKind};

    use super::super::fixtures::*;
    use super::*;
    use crate::store::RedbStore;

    #[test]
    fn bounds_and_ranges() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        for (text, end, want) in [
            ("2026-01-31", End::From, "2026-01-31T00:00:00Z"),
            ("2026-01-31", End::To, "2026-02-01T00:00:00Z"),
            ("2026-01-31T10:00:00+02:00", End::To, "2026-01-31T08:00:00Z"),
            ("2026-01-31T08:00:00Z", End::From, "2026-01-31T08:00:00Z"),
        ] {
            assert_eq!(parse_bound("from", text, end).unwrap(), at(want), "{text}");
        }
        for bad in ["", "31.01.2026", "2026-02-30", "yesterday", "=1+1"] {
            assert!(
                matches!(
                    parse_bound("from", bad, End::From),
                    Err(ReportError::Invalid { field: "from", .. })
                ),
                "{bad}"
            );
        }
        let jan = Range::parse(Some("2026-01-01"), Some("2026-01-31"), Filter::default()).unwrap();
        for (t, inside) in [
            ("2025-12-31T23:59:59Z", false),
            ("2026-01-01T00:00:00Z", true),
            ("2026-01-31T23:59:59Z", true),
            ("2026-02-01T00:00:00Z", false),
        ] {
            assert_eq!(jan.contains(at(t)), inside, "{t}");
        }
        assert!(Range::default().contains(at("1999-01-01T00:00:00Z")));
        assert!(matches!(
            Range::parse(Some("2026-02-01"), Some("2026-01-31"), Filter::default()),
            Err(ReportError::Invalid { field: "to", .. })
        ));
    }

    fn event(id: &str, d: u32, kind: EventKind) -> Event {
        Event {
            id: id.into(),
            at: day(d),
            kind,
            device: Some("047f/serial/S1".into()),
            detail: serde_json::Value::Null,
        }
    }

    #[test]
    fn reads_a_range_across_pages_with_a_cap() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        // 1500 entries over days 1..=15 (more than one page), plus an
        // event that is not an update.
        let events: Vec<Event> = (0..1500u32)
            .map(|i| {
                let kind = if i % 2 == 0 {
                    EventKind::UpdateSucceeded {
                        target: "acme/v/2.0/fw.bin".into(),
                        version: "2.0".into(),
                    }
                } else {
                    EventKind::UpdateFailed {
                        target: "acme/v/2.0/fw.bin".into(),
                        version: "2.0".into(),
                        reason: "=HYPERLINK(\"x\")".into(),
                    }
                };
                event(&format!("e{i}"), 1 + i / 100, kind)
            })
            .chain([event("start", 3, EventKind::AgentStarted)])
            .collect();
        for chunk in events.chunks(catalog::events::MAX_EVENTS_PER_BATCH) {
            let batch = EventBatch {
                events: chunk.to_vec(),
            };
            events::ingest(&store, "t", "h1", &batch, day(20)).unwrap();
        }
        let all = Range::default();
        let (rows, truncated) = read(&store, "t", &all, MAX_ROWS).unwrap();
        assert_eq!((rows.len(), truncated), (1500, false));
        // Days 3 to 4 inclusive: entries 200..400.
        let r = Range::parse(Some("2026-01-03"), Some("2026-01-04"), Filter::default()).unwrap();
        let (rows, truncated) = read(&store, "t", &r, MAX_ROWS).unwrap();
        assert_eq!((rows.len(), truncated), (200, false));
        assert_eq!(rows[0].event_id, "e200");
        assert_eq!(rows[199].event_id, "e399");
        let (rows, truncated) = read(&store, "t", &r, 150).unwrap();
        assert_eq!((rows.len(), truncated), (150, true));
        // Exactly the cap: not truncated.
        let (_, truncated) = read(&store, "t", &r, 200).unwrap();
        assert!(!truncated);
        // Another tenant sees nothing.
        let (rows, _) = read(&store, "u", &all, MAX_ROWS).unwrap();
        assert!(rows.is_empty());

        let (rows, _) = read(&store, "t", &r, 2).unwrap();
        let built = build(
            "t",
            day(20),
            &r,
            rows,
            true,
            &[host("h1", "ws-1", "all-users", day(10))],
        );
        assert_eq!(built.json()["entries"], 2);
        assert_eq!(built.json()["truncated"], true);
        assert_eq!(built.json()["from"], "2026-01-03T00:00:00Z");
        assert_eq!(built.json()["rows"][1]["hostname"], "ws-1");
        assert_eq!(built.json()["rows"][1]["outcome"], "failed");
        assert_eq!(
            built.rows()[1],
            [
                "202", // seq: e201 is the 202nd event stored
                "2026-01-03T00:00:00Z",
                "h1",
                "ws-1",
                "047f/serial/S1",
                "acme/v/2.0/fw.bin",
                "2.0",
                "failed",
                "=HYPERLINK(\"x\")",
                "e201",
            ]
        );
        let csv = String::from_utf8(built.render(super::super::Format::Csv).unwrap()).unwrap();
        assert!(csv.contains(",\"'=HYPERLINK(\"\"x\"\")\",e201"), "{csv}");
    }
}
