//! Spooled events and their wire form, and sending the spool.
//!
//! The spool ([`crate::state::Event`]) keeps a kind name and a JSON `detail`;
//! for kinds with fields of their own (`update_*`, `awaiting_replug`,
//! `tamper_detected`) those fields (`target`, `version`, `reason`, `source`)
//! sit in `detail` and move to the top level of the wire event
//! ([`catalog::events::Event`]). Only what the server acknowledged is removed.

use catalog::events::{self as wire, EventBatch};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::client::{ClientError, ServerClient};
use crate::state::{Event, State, StateError};

/// Events per batch (well under the server's limits).
pub const BATCH: usize = 200;

/// An update-status event for the spool.
pub fn update_event(
    kind: &str,
    device: &str,
    target: &str,
    version: &str,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> Event {
    let mut detail = json!({"target": target, "version": version});
    if let Some(r) = reason {
        detail["reason"] = Value::String(clip(r));
    }
    Event::new(kind, Some(device), detail, at)
}

/// A `tamper_detected` event: `source` is what was checked (`image`,
/// `assignment`, `metadata`), `reason` what was wrong.
pub fn tamper_event(source: &str, device: Option<&str>, reason: &str, at: DateTime<Utc>) -> Event {
    Event::new(
        "tamper_detected",
        device,
        json!({"source": source, "reason": clip(reason)}),
        at,
    )
}

fn clip(s: &str) -> String {
    clip_to(s, wire::MAX_TEXT_BYTES)
}

/// `s` without control characters, cut at a character boundary to at most
/// `max` bytes (the wire's text limits count bytes).
pub(crate) fn clip_to(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

const LIFTED: [&str; 4] = ["target", "version", "reason", "source"];

/// The wire form of a spooled event, or why it cannot be sent.
pub fn to_wire(e: &Event) -> Result<wire::Event, String> {
    let mut obj = Map::new();
    obj.insert("id".into(), json!(e.id));
    obj.insert("at".into(), json!(e.at));
    obj.insert("kind".into(), json!(e.kind));
    if let Some(d) = &e.device {
        obj.insert("device".into(), json!(d));
    }
    let mut detail = e.detail.clone();
    let lifts = !matches!(
        e.kind.as_str(),
        "agent_started" | "device_discovered" | "device_attached" | "device_detached"
    );
    if let (true, Value::Object(map)) = (lifts, &mut detail) {
        for k in LIFTED {
            if let Some(v) = map.remove(k) {
                obj.insert(k.into(), v);
            }
        }
    }
    obj.insert("detail".into(), detail);
    let event: wire::Event =
        serde_json::from_value(Value::Object(obj)).map_err(|e| e.to_string())?;
    event.validate(0).map_err(|e| e.to_string())?;
    Ok(event)
}

/// What one [`flush`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Events the server acknowledged (removed from the spool).
    pub acknowledged: usize,
    /// Events dropped because they can never be sent (logged).
    pub dropped: usize,
    /// The server has no events endpoint yet: everything stays spooled.
    pub not_available: bool,
}

/// Why the spool could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    /// The state database.
    #[error(transparent)]
    State(#[from] StateError),
    /// The server.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Sends the spool in batches until it is empty, the server stops
/// acknowledging, or it has no endpoint (404).
pub fn flush(state: &State, client: &ServerClient) -> Result<FlushReport, FlushError> {
    let mut report = FlushReport::default();
    loop {
        let pending = state.pending_events(BATCH)?;
        if pending.is_empty() {
            return Ok(report);
        }
        let mut events = Vec::new();
        let mut unsendable = Vec::new();
        for e in &pending {
            match to_wire(e) {
                Ok(w) => events.push(w),
                Err(why) => {
                    tracing::warn!(event = %e.id, kind = %e.kind, "dropping an event that cannot be sent: {why}");
                    unsendable.push(e.id.clone());
                }
            }
        }
        report.dropped += state.acknowledge(&unsendable)?;
        if events.is_empty() {
            continue;
        }
        let sent: std::collections::HashSet<String> = events.iter().map(|e| e.id.clone()).collect();
        let Some(ack) = client.send_events(&EventBatch { events })? else {
            report.not_available = true;
            return Ok(report);
        };
        let ids: Vec<&String> = ack
            .acknowledged
            .iter()
            .filter(|id| sent.contains(*id))
            .collect();
        let removed = state.acknowledge(&ids)?;
        for id in &ids {
            tracing::debug!(event = %id, "acknowledged");
        }
        report.acknowledged += removed;
        if removed == 0 {
            return Ok(report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-20T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn spooled_events_become_wire_events() {
        let e = update_event(
            "update_failed",
            "1209/serial/S1",
            "acme/h/2.0.0/fw.dfu",
            "2.0.0",
            Some("bad\nthing"),
            at(),
        );
        let w = to_wire(&e).unwrap();
        assert_eq!(
            w.kind,
            wire::EventKind::UpdateFailed {
                target: "acme/h/2.0.0/fw.dfu".into(),
                version: "2.0.0".into(),
                reason: "badthing".into()
            }
        );
        assert_eq!(w.device.as_deref(), Some("1209/serial/S1"));
        assert_eq!(w.detail, json!({}));
        let t = to_wire(&tamper_event("image", None, "share: hash mismatch", at())).unwrap();
        assert_eq!(
            t.kind,
            wire::EventKind::TamperDetected {
                source: "image".into(),
                reason: "share: hash mismatch".into()
            }
        );
        // Device registrations keep their detail as it is.
        let d = Event::new(
            "device_discovered",
            Some("1209/serial/S1"),
            json!({"target": "x"}),
            at(),
        );
        let w = to_wire(&d).unwrap();
        assert_eq!(w.kind, wire::EventKind::DeviceDiscovered);
        assert_eq!(w.detail, json!({"target": "x"}));
        // Unknown kinds cannot be sent.
        assert!(to_wire(&Event::new("no_such_kind", None, Value::Null, at())).is_err());
    }
}
