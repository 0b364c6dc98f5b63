//! The check-in fast path: the last answer given to each agent, reused for
//! a repeat of the same check-in.
//!
//! A check-in's answer depends on the request (what the agent reports), on
//! the agent's record, and on the tenant's groups, policies, settings,
//! inventory, the catalog and the tenant's assignment key. The entry for an
//! agent is reused only when all of that is unchanged: the request and the
//! agent's clone flag hash to the same fingerprint, and the tenant's
//! generation ([`crate::fleet::Fleet::generation`], which changes with every
//! one of the others, even when another process changed them) is the same.
//!
//! A reused answer skips the inventory write, so the only thing it does not
//! record is a newer `last_seen`; an entry is therefore reused only within
//! [`LAST_SEEN_RESOLUTION`] of the check-in that recorded it. Poll intervals
//! are at least five minutes, so an agent on its schedule always takes the
//! full path; repeats come from `check-now`, retries and bursts.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};

use crate::fleet::{CheckInAnswer, Fleet, FleetError, TenantView};
use crate::store::Agent;

/// How stale an agent's recorded `last_seen` may get while its repeated
/// check-ins are answered from the cache.
pub(crate) const LAST_SEEN_RESOLUTION: TimeDelta = TimeDelta::seconds(60);

/// Entries kept at most (one per agent); past that, expired ones are dropped,
/// and if none are, all.
const MAX_ENTRIES: usize = 200_000;

/// How long a tenant's generation marker read from the store is trusted at
/// most. Before that, it is re-read as soon as this process changed
/// something ([`Fleet::local_changes`]) or the store's file was written
/// ([`Fleet::store_file_stamp`]), by any process.
const MARKER_TTL: Duration = Duration::from_secs(1);

/// Tenants whose configuration is kept; past it the table starts over.
const MAX_VIEWS: usize = 10_000;

/// File times are coarse (a kernel tick): a store file written less than
/// this before the marker was read may be written again without its time
/// changing, so such a reading is not trusted.
const STAMP_SETTLE: Duration = Duration::from_millis(50);

/// What a request and the agent record hash to.
pub(crate) type Fingerprint = [u8; 32];

#[derive(Debug)]
struct Marker {
    value: Option<String>,
    local: u64,
    /// The store file's time before the read, if settled.
    store_stamp: Option<SystemTime>,
    read_at: Instant,
}

#[derive(Debug)]
struct Entry {
    fingerprint: Fingerprint,
    generation: u64,
    recorded: DateTime<Utc>,
    answer: CheckInAnswer,
}

/// The last answer per agent (keyed by tenant and agent id), and each
/// tenant's generation marker as last read.
#[derive(Debug, Default)]
pub(crate) struct CheckInCache {
    entries: Mutex<HashMap<(String, String), Entry>>,
    markers: Mutex<HashMap<String, Marker>>,
    /// Each tenant's configuration as of a generation.
    views: Mutex<HashMap<String, (u64, Arc<TenantView>)>>,
}

/// The fingerprint of `agent` sending the request body `body` (raw bytes:
/// equal bytes parse to equal check-ins).
pub(crate) fn fingerprint(agent: &Agent, body: &[u8]) -> Fingerprint {
    let mut h = Sha256::new();
    for part in [
        agent.tenant.as_str(),
        agent.id.as_str(),
        agent.clone_of.as_deref().unwrap_or(""),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.update(body);
    h.finalize().into()
}

impl CheckInCache {
    /// Everything besides the request that `tenant`'s answers depend on,
    /// hashed to a value that changes when any of it does: this process's
    /// change count, the tenant's marker (re-read from the store when this
    /// process changed something, the store's file was written, or
    /// [`MARKER_TTL`] has passed) and the catalog and key files' stamps.
    pub(crate) fn generation(&self, fleet: &Fleet, tenant: &str) -> Result<u64, FleetError> {
        let local = Fleet::local_changes();
        let store_stamp = fleet.store_file_stamp();
        let known = {
            let markers = self.markers.lock().unwrap_or_else(|p| p.into_inner());
            markers
                .get(tenant)
                .filter(|m| {
                    m.local == local
                        && m.store_stamp.is_some()
                        && m.store_stamp == store_stamp
                        && m.read_at.elapsed() < MARKER_TTL
                })
                .map(|m| m.value.clone())
        };
        let value = match known {
            Some(v) => v,
            None => {
                let read_at = Instant::now();
                let settled = settled(store_stamp);
                let value = fleet.generation_marker(tenant)?;
                let mut markers = self.markers.lock().unwrap_or_else(|p| p.into_inner());
                markers.insert(
                    tenant.to_owned(),
                    Marker {
                        value: value.clone(),
                        local,
                        store_stamp: settled,
                        read_at,
                    },
                );
                value
            }
        };
        let mut h = DefaultHasher::new();
        (local, value, fleet.file_stamps(tenant)).hash(&mut h);
        Ok(h.finish())
    }

    /// The answer recorded for `agent` if the request, the generation and
    /// the recorded `last_seen` still hold at `now`.
    /// The tenant's configuration at `generation` (from
    /// [`CheckInCache::generation`]), read from the store once per
    /// generation: every change to it moves the generation.
    pub(crate) fn tenant_view(
        &self,
        fleet: &Fleet,
        tenant: &str,
        generation: u64,
    ) -> Result<Arc<TenantView>, FleetError> {
        {
            let views = self.views.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((g, view)) = views.get(tenant) {
                if *g == generation {
                    return Ok(view.clone());
                }
            }
        }
        // Read after the generation was taken: at worst newer than it, and
        // then the next generation reads again.
        let view = Arc::new(fleet.tenant_view(tenant)?);
        let mut views = self.views.lock().unwrap_or_else(|p| p.into_inner());
        if views.len() >= MAX_VIEWS {
            // A miss costs one read of the tenant's configuration.
            views.clear();
        }
        views.insert(tenant.to_owned(), (generation, view.clone()));
        Ok(view)
    }

    pub(crate) fn get(
        &self,
        agent: &Agent,
        fingerprint: &Fingerprint,
        generation: u64,
        now: DateTime<Utc>,
    ) -> Option<CheckInAnswer> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let e = entries.get(&(agent.tenant.clone(), agent.id.clone()))?;
        let fresh = now >= e.recorded && now - e.recorded < LAST_SEEN_RESOLUTION;
        (fresh && e.fingerprint == *fingerprint && e.generation == generation)
            .then(|| e.answer.clone())
    }

    /// Records the answer a full check-in computed at `now`, under the
    /// generation read before it started.
    pub(crate) fn put(
        &self,
        agent: &Agent,
        fingerprint: Fingerprint,
        generation: u64,
        now: DateTime<Utc>,
        answer: CheckInAnswer,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| now >= e.recorded && now - e.recorded < LAST_SEEN_RESOLUTION);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            (agent.tenant.clone(), agent.id.clone()),
            Entry {
                fingerprint,
                generation,
                recorded: now,
                answer,
            },
        );
    }
}

/// `stamp` if it is old enough to notice the next write (see
/// [`STAMP_SETTLE`]).
pub(crate) fn settled(stamp: Option<SystemTime>) -> Option<SystemTime> {
    stamp.filter(|t| {
        SystemTime::now()
            .duration_since(*t)
            .is_ok_and(|age| age > STAMP_SETTLE)
    })
}

#[derive(Debug)]
struct Checked {
    agent: Agent,
    store_stamp: SystemTime,
    read_at: Instant,
}

/// Agents whose credential was checked against the store, by the SHA-256 of
/// the credential. An entry answers only while the store's file is unchanged
/// since the check (any commit of any process, such as a re-enrollment that
/// replaces the credential, changes it) and for at most [`MARKER_TTL`];
/// failed checks are never kept.
#[derive(Debug, Default)]
pub(crate) struct AgentCredentials {
    entries: Mutex<HashMap<[u8; 32], Checked>>,
}

impl AgentCredentials {
    /// The agent `credential` was last checked to belong to, if still valid
    /// with the store's file at `store_stamp`.
    pub(crate) fn get(&self, credential: &str, store_stamp: Option<SystemTime>) -> Option<Agent> {
        let stamp = store_stamp?;
        let key: [u8; 32] = Sha256::digest(credential.as_bytes()).into();
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&key)
            .filter(|c| c.store_stamp == stamp && c.read_at.elapsed() < MARKER_TTL)
            .map(|c| c.agent.clone())
    }

    /// Records a successful check made with the store's file at
    /// `store_stamp` (taken before the check).
    pub(crate) fn put(&self, credential: &str, agent: Agent, store_stamp: Option<SystemTime>) {
        let Some(stamp) = settled(store_stamp) else {
            return;
        };
        let key: [u8; 32] = Sha256::digest(credential.as_bytes()).into();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            key,
            Checked {
                agent,
                store_stamp: stamp,
                read_at: Instant::now(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, clone_of: Option<&str>) -> Agent {
        let t = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        Agent {
            tenant: "t1".into(),
            id: id.into(),
            system_id: "{S}".into(),
            machine_fingerprint: "m".into(),
            hostname: "ws".into(),
            os: "Linux".into(),
            enrolled_at: t,
            credential_issued_at: t,
            credential_sha256: String::new(),
            clone_of: clone_of.map(str::to_owned),
        }
    }

    fn body(hostname: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"agent_version": "1.0",
            "platform": "linux", "hostname": hostname}))
        .unwrap()
    }

    fn answer(text: &str) -> CheckInAnswer {
        CheckInAnswer {
            body: text.into(),
            etag: format!("\"{text}\""),
        }
    }

    #[test]
    fn reuse_only_for_the_same_request_generation_and_within_the_resolution() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .to_utc();
        let a = agent("a1", None);
        let fp = fingerprint(&a, &body("ws-1"));
        let cache = CheckInCache::default();
        assert!(cache.get(&a, &fp, 1, t0).is_none(), "empty");
        cache.put(&a, fp, 1, t0, answer("x"));
        let secs = |s: i64| t0 + TimeDelta::seconds(s);
        let cases: &[(&Agent, Fingerprint, u64, DateTime<Utc>, bool)] = &[
            (&a, fp, 1, t0, true),
            (&a, fp, 1, secs(59), true),
            (&a, fp, 1, secs(60), false),
            (&a, fp, 1, secs(-1), false),
            (&a, fp, 2, secs(1), false),
            (&a, fingerprint(&a, &body("ws-2")), 1, secs(1), false),
            (&agent("a2", None), fp, 1, secs(1), false),
        ];
        for (i, (who, f, g, now, hit)) in cases.iter().enumerate() {
            let got = cache.get(who, f, *g, *now);
            assert_eq!(got.is_some(), *hit, "case {i}");
            if let Some(got) = got {
                assert_eq!((got.body.as_str(), got.etag.as_str()), ("x", "\"x\""));
            }
        }
    }

    #[test]
    fn credentials_are_reused_only_with_the_same_settled_store_file() {
        let old = SystemTime::now() - Duration::from_secs(10);
        let fresh = SystemTime::now();
        let later = old + Duration::from_millis(1);
        let c = AgentCredentials::default();
        c.put("upda_t1_secret", agent("a1", None), Some(old));
        c.put("upda_t1_other", agent("a2", None), Some(fresh));
        c.put("upda_t1_none", agent("a3", None), None);
        let cases: &[(&str, Option<SystemTime>, Option<&str>)] = &[
            ("upda_t1_secret", Some(old), Some("a1")),
            ("upda_t1_secret", Some(later), None),
            ("upda_t1_secret", None, None),
            ("upda_t1_secretx", Some(old), None),
            ("upda_t1_other", Some(fresh), None),
            ("upda_t1_none", None, None),
        ];
        for (credential, stamp, want) in cases {
            let got = c.get(credential, *stamp).map(|a| a.id);
            assert_eq!(got.as_deref(), *want, "{credential} {stamp:?}");
        }
    }

    #[test]
    fn the_fingerprint_covers_the_agent_record_and_every_reported_field() {
        let a = agent("a1", None);
        let base = fingerprint(&a, &body("ws-1"));
        assert_eq!(base, fingerprint(&a, &body("ws-1")), "deterministic");
        let with_user = serde_json::to_vec(&serde_json::json!({"agent_version": "1.0",
            "platform": "linux", "hostname": "ws-1", "users": [{"account": "ann"}]}))
        .unwrap();
        let others = [
            fingerprint(&agent("a1", Some("a0")), &body("ws-1")),
            fingerprint(&agent("a2", None), &body("ws-1")),
            fingerprint(&a, &body("ws-2")),
            fingerprint(&a, &with_user),
        ];
        for (i, f) in others.iter().enumerate() {
            assert_ne!(*f, base, "variant {i}");
        }
    }
}
