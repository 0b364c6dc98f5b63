//! Agent events: what an agent reports to `POST /api/v1/agents/{agent}/events`.
//!
//! Events are spooled by the agent and sent in batches; the server
//! de-duplicates on `(agent, event id)`, so a batch may be sent again until it
//! is acknowledged. Update-status kinds also become the tenant's update
//! history ([`EventKind::update`]).
//!
//! Wire shape: the kind is a `kind` field beside the others, and its own
//! fields (if any) sit at the top level of the event:
//!
//! ```json
//! {"id": "9f0c…", "at": "2026-01-02T03:04:05Z", "kind": "update_failed",
//!  "target": "acme/voyager/1.2/fw.bin", "version": "1.2", "reason": "verify failed",
//!  "device": "047f/serial/SN1", "detail": {"attempt": 2}}
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// At most this many events in one batch.
pub const MAX_EVENTS_PER_BATCH: usize = 1000;
/// A batch's JSON body is at most this many bytes (the server answers 413 above it).
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// An event's `detail`, serialised, is at most this many bytes.
pub const MAX_DETAIL_BYTES: usize = 2048;
/// Text fields (`reason`, `source`, `target`, `device`) are at most this many bytes.
pub const MAX_TEXT_BYTES: usize = 512;

/// One thing that happened on an agent's host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Agent-generated unique id: 1 to 64 characters of `A-Z a-z 0-9 _ -`.
    pub id: String,
    /// When it happened (agent clock).
    pub at: DateTime<Utc>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
    /// The device concerned (`DeviceReport::identity`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Free-form details, at most [`MAX_DETAIL_BYTES`] serialised.
    #[serde(default)]
    pub detail: serde_json::Value,
}

/// The kinds of event, with the fields each carries. `target` is the TUF
/// target name (`vendor/model/version/file`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The agent process started.
    AgentStarted,
    /// A device was seen for the first time.
    DeviceDiscovered,
    /// A device was plugged in.
    DeviceAttached,
    /// A device was unplugged.
    DeviceDetached,
    /// A newer firmware is assigned to a device.
    UpdateAvailable {
        /// The target.
        target: String,
        /// Its version.
        version: String,
    },
    /// The image is downloaded, verified and stored on the host.
    UpdateStaged {
        /// The target.
        target: String,
        /// Its version.
        version: String,
    },
    /// Flashing began.
    UpdateStarted {
        /// The target.
        target: String,
        /// Its version.
        version: String,
    },
    /// The device runs the new version (read back).
    UpdateSucceeded {
        /// The target.
        target: String,
        /// Its version.
        version: String,
    },
    /// The update failed.
    UpdateFailed {
        /// The target.
        target: String,
        /// Its version.
        version: String,
        /// Why.
        reason: String,
    },
    /// Flashed; the user must unplug and replug the device to finish.
    AwaitingReplug {
        /// The target.
        target: String,
        /// Its version.
        version: String,
    },
    /// The user declined an optional update.
    UserDeclined {
        /// The target.
        target: String,
        /// Its version.
        version: String,
    },
    /// The user postponed an update.
    UserDeferred {
        /// The target.
        target: String,
        /// Its version.
        version: String,
    },
    /// Something did not verify (metadata, assignment, image, local state).
    TamperDetected {
        /// What was checked (`metadata`, `assignment`, `image`, `state`, …).
        source: String,
        /// What was wrong.
        reason: String,
    },
}

/// How an update-status event ends up in the update history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateOutcome {
    /// [`EventKind::UpdateAvailable`].
    Available,
    /// [`EventKind::UpdateStaged`].
    Staged,
    /// [`EventKind::UpdateStarted`].
    Started,
    /// [`EventKind::UpdateSucceeded`].
    Succeeded,
    /// [`EventKind::UpdateFailed`].
    Failed,
    /// [`EventKind::AwaitingReplug`].
    AwaitingReplug,
    /// [`EventKind::UserDeclined`].
    Declined,
    /// [`EventKind::UserDeferred`].
    Deferred,
}

/// The update-history view of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateStatus<'a> {
    /// The outcome.
    pub outcome: UpdateOutcome,
    /// The target.
    pub target: &'a str,
    /// Its version.
    pub version: &'a str,
    /// Why it failed.
    pub reason: Option<&'a str>,
}

impl EventKind {
    /// The kind's wire name.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::AgentStarted => "agent_started",
            EventKind::DeviceDiscovered => "device_discovered",
            EventKind::DeviceAttached => "device_attached",
            EventKind::DeviceDetached => "device_detached",
            EventKind::UpdateAvailable { .. } => "update_available",
            EventKind::UpdateStaged { .. } => "update_staged",
            EventKind::UpdateStarted { .. } => "update_started",
            EventKind::UpdateSucceeded { .. } => "update_succeeded",
            EventKind::UpdateFailed { .. } => "update_failed",
            EventKind::AwaitingReplug { .. } => "awaiting_replug",
            EventKind::UserDeclined { .. } => "user_declined",
            EventKind::UserDeferred { .. } => "user_deferred",
            EventKind::TamperDetected { .. } => "tamper_detected",
        }
    }

    /// The update status this kind reports, for the update history; `None`
    /// for kinds that are not about an update.
    pub fn update(&self) -> Option<UpdateStatus<'_>> {
        use UpdateOutcome as O;
        let (outcome, target, version, reason) = match self {
            EventKind::UpdateAvailable { target, version } => (O::Available, target, version, None),
            EventKind::UpdateStaged { target, version } => (O::Staged, target, version, None),
            EventKind::UpdateStarted { target, version } => (O::Started, target, version, None),
            EventKind::UpdateSucceeded { target, version } => (O::Succeeded, target, version, None),
            EventKind::UpdateFailed {
                target,
                version,
                reason,
            } => (O::Failed, target, version, Some(reason.as_str())),
            EventKind::AwaitingReplug { target, version } => {
                (O::AwaitingReplug, target, version, None)
            }
            EventKind::UserDeclined { target, version } => (O::Declined, target, version, None),
            EventKind::UserDeferred { target, version } => (O::Deferred, target, version, None),
            EventKind::AgentStarted
            | EventKind::DeviceDiscovered
            | EventKind::DeviceAttached
            | EventKind::DeviceDetached
            | EventKind::TamperDetected { .. } => return None,
        };
        Some(UpdateStatus {
            outcome,
            target,
            version,
            reason,
        })
    }

    fn texts(&self) -> Vec<(&'static str, &str)> {
        match self {
            EventKind::TamperDetected { source, reason } => {
                vec![("source", source), ("reason", reason)]
            }
            other => match other.update() {
                Some(u) => {
                    let mut v = vec![("target", u.target), ("version", u.version)];
                    v.extend(u.reason.map(|r| ("reason", r)));
                    v
                }
                None => Vec::new(),
            },
        }
    }
}

/// Why an event or batch is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// More than [`MAX_EVENTS_PER_BATCH`] events.
    #[error("a batch holds at most {MAX_EVENTS_PER_BATCH} events, not {0}")]
    TooMany(usize),
    /// An event id is not 1 to 64 characters of `A-Z a-z 0-9 _ -`.
    #[error("event {index}: the id must be 1 to 64 characters of A-Z a-z 0-9 _ -")]
    BadId {
        /// Position in the batch.
        index: usize,
    },
    /// A text field is empty, too long or holds control characters.
    #[error("event {index}: {field} must be 1 to {MAX_TEXT_BYTES} bytes of printable text")]
    BadText {
        /// Position in the batch.
        index: usize,
        /// Which field.
        field: &'static str,
    },
    /// `detail` is too large.
    #[error("event {index}: detail is over {MAX_DETAIL_BYTES} bytes")]
    DetailTooLarge {
        /// Position in the batch.
        index: usize,
    },
}

/// Whether `id` is a valid event id.
pub fn valid_event_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn valid_text(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_TEXT_BYTES && !s.chars().any(char::is_control)
}

impl Event {
    /// Checks the bounds (`index` only names the event in errors).
    pub fn validate(&self, index: usize) -> Result<(), EventError> {
        if !valid_event_id(&self.id) {
            return Err(EventError::BadId { index });
        }
        let device = self.device.as_deref().map(|d| ("device", d));
        for (field, text) in self.kind.texts().into_iter().chain(device) {
            if !valid_text(text) {
                return Err(EventError::BadText { index, field });
            }
        }
        if self.detail.to_string().len() > MAX_DETAIL_BYTES {
            return Err(EventError::DetailTooLarge { index });
        }
        Ok(())
    }
}

/// `POST /api/v1/agents/{agent}/events`: the body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    /// The events, oldest first; at most [`MAX_EVENTS_PER_BATCH`].
    pub events: Vec<Event>,
}

impl EventBatch {
    /// Checks the batch and every event in it.
    pub fn validate(&self) -> Result<(), EventError> {
        if self.events.len() > MAX_EVENTS_PER_BATCH {
            return Err(EventError::TooMany(self.events.len()));
        }
        self.events
            .iter()
            .enumerate()
            .try_for_each(|(i, e)| e.validate(i))
    }
}

/// `POST /api/v1/agents/{agent}/events`: the answer (200). Sending the same
/// batch again answers the same `acknowledged` list (with the events counted
/// as duplicates); the agent may drop exactly the acknowledged ids from its
/// spool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventAck {
    /// Every distinct event id of the batch, in batch order: each is stored
    /// durably (now or by an earlier send).
    pub acknowledged: Vec<String>,
    /// How many were stored by this request.
    pub accepted: usize,
    /// How many were already stored (or repeated within the batch).
    pub duplicates: usize,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at() -> DateTime<Utc> {
        "2026-01-02T03:04:05Z".parse().unwrap()
    }

    #[test]
    fn wire_format_round_trips() {
        let cases = [
            (
                EventKind::AgentStarted,
                json!({"id": "e1", "at": "2026-01-02T03:04:05Z", "kind": "agent_started", "detail": null}),
            ),
            (
                EventKind::UpdateFailed {
                    target: "acme/voyager/1.2/fw.bin".into(),
                    version: "1.2".into(),
                    reason: "verify failed".into(),
                },
                json!({"id": "e1", "at": "2026-01-02T03:04:05Z", "kind": "update_failed",
                       "target": "acme/voyager/1.2/fw.bin", "version": "1.2",
                       "reason": "verify failed", "detail": null}),
            ),
            (
                EventKind::TamperDetected {
                    source: "image".into(),
                    reason: "hash mismatch".into(),
                },
                json!({"id": "e1", "at": "2026-01-02T03:04:05Z", "kind": "tamper_detected",
                       "source": "image", "reason": "hash mismatch", "detail": null}),
            ),
        ];
        for (kind, wire) in cases {
            let e = Event {
                id: "e1".into(),
                at: at(),
                kind,
                device: None,
                detail: serde_json::Value::Null,
            };
            assert_eq!(serde_json::to_value(&e).unwrap(), wire);
            assert_eq!(serde_json::from_value::<Event>(wire).unwrap(), e);
        }
    }

    #[test]
    fn agent_spool_shape_is_accepted() {
        // The agent's spool adds `seq`; unknown kinds and missing kind fields are refused.
        let e: Event = serde_json::from_value(json!({
            "id": "ab12", "kind": "device_discovered", "at": "2026-01-02T03:04:05Z",
            "device": "047f/serial/SN1", "detail": {"serial": "SN1"}, "seq": 4}))
        .unwrap();
        assert_eq!(e.kind, EventKind::DeviceDiscovered);
        assert_eq!(e.device.as_deref(), Some("047f/serial/SN1"));
        for bad in [
            json!({"id": "a", "at": "2026-01-02T03:04:05Z", "kind": "no_such_kind"}),
            json!({"id": "a", "at": "2026-01-02T03:04:05Z", "kind": "update_failed", "target": "t", "version": "1"}),
            json!({"id": "a", "kind": "agent_started"}),
        ] {
            assert!(
                serde_json::from_value::<Event>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn bounds() {
        let ok = Event {
            id: "A-z_09".into(),
            at: at(),
            kind: EventKind::UpdateSucceeded {
                target: "t".into(),
                version: "1".into(),
            },
            device: Some("d".into()),
            detail: json!({"k": "v"}),
        };
        assert_eq!(ok.validate(0), Ok(()));
        let with = |f: &dyn Fn(&mut Event)| {
            let mut e = ok.clone();
            f(&mut e);
            e.validate(3)
        };
        assert_eq!(
            with(&|e| e.id = String::new()),
            Err(EventError::BadId { index: 3 })
        );
        assert_eq!(
            with(&|e| e.id = "x".repeat(65)),
            Err(EventError::BadId { index: 3 })
        );
        assert_eq!(
            with(&|e| e.id = "a.b".into()),
            Err(EventError::BadId { index: 3 })
        );
        assert_eq!(with(&|e| e.id = "x".repeat(64)), Ok(()));
        assert_eq!(
            with(&|e| e.device = Some("a\nb".into())),
            Err(EventError::BadText {
                index: 3,
                field: "device"
            })
        );
        assert_eq!(
            with(&|e| e.kind = EventKind::UpdateFailed {
                target: "t".into(),
                version: "1".into(),
                reason: "r".repeat(MAX_TEXT_BYTES + 1),
            }),
            Err(EventError::BadText {
                index: 3,
                field: "reason"
            })
        );
        assert_eq!(
            with(&|e| e.detail = json!("x".repeat(MAX_DETAIL_BYTES))),
            Err(EventError::DetailTooLarge { index: 3 })
        );
        let batch = EventBatch {
            events: vec![ok.clone(); MAX_EVENTS_PER_BATCH + 1],
        };
        assert_eq!(
            batch.validate(),
            Err(EventError::TooMany(MAX_EVENTS_PER_BATCH + 1))
        );
        let batch = EventBatch {
            events: vec![ok; MAX_EVENTS_PER_BATCH],
        };
        assert_eq!(batch.validate(), Ok(()));
    }

    #[test]
    fn update_history_view() {
        let k = EventKind::UpdateFailed {
            target: "t".into(),
            version: "2".into(),
            reason: "r".into(),
        };
        let u = k.update().unwrap();
        assert_eq!(
            (u.outcome, u.target, u.version, u.reason),
            (UpdateOutcome::Failed, "t", "2", Some("r"))
        );
        assert_eq!(k.name(), "update_failed");
        assert_eq!(EventKind::DeviceAttached.update(), None);
        assert_eq!(
            serde_json::to_value(UpdateOutcome::AwaitingReplug).unwrap(),
            json!("awaiting_replug")
        );
    }
}
