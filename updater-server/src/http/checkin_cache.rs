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

/// Bytes of answers kept at most (bodies, ETags and keys). An answer is
/// reused for a minute ([`LAST_SEEN_RESOLUTION`]): this holds a minute of
/// check-ins at more than 500 a second of 4 KiB answers. Past it, expired
/// entries are dropped, and if that is not enough, all.
const MAX_ANSWER_BYTES: usize = 128 << 20;

/// Checked credentials kept at most; each is used for [`MARKER_TTL`] only,
/// and expired ones are swept as often.
const MAX_CREDENTIALS: usize = 200_000;

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

/// The last answers per agent (keyed by tenant and agent id) and the bytes
/// they hold.
#[derive(Debug, Default)]
struct Answers {
    entries: HashMap<(String, String), Entry>,
    bytes: usize,
    /// When expired entries were last dropped.
    swept: Option<DateTime<Utc>>,
}

impl Entry {
    /// What the entry holds in bytes, besides the map's own overhead.
    fn size(&self, key: &(String, String)) -> usize {
        key.0.len() + key.1.len() + self.answer.body.len() + self.answer.etag.len()
    }

    fn fresh(&self, now: DateTime<Utc>) -> bool {
        now >= self.recorded && now - self.recorded < LAST_SEEN_RESOLUTION
    }
}

/// The last answer per agent (keyed by tenant and agent id), and each
/// tenant's generation marker as last read.
#[derive(Debug)]
pub(crate) struct CheckInCache {
    answers: Mutex<Answers>,
    /// [`MAX_ANSWER_BYTES`], or less in tests.
    answer_budget: usize,
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

impl Default for CheckInCache {
    fn default() -> Self {
        Self::with_budget(MAX_ANSWER_BYTES)
    }
}

impl CheckInCache {
    /// A cache keeping at most `answer_budget` bytes of answers.
    fn with_budget(answer_budget: usize) -> Self {
        Self {
            answers: Mutex::default(),
            answer_budget,
            markers: Mutex::default(),
            views: Mutex::default(),
        }
    }

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
        let answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        let e = answers
            .entries
            .get(&(agent.tenant.clone(), agent.id.clone()))?;
        (e.fresh(now) && e.fingerprint == *fingerprint && e.generation == generation)
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
        let key = (agent.tenant.clone(), agent.id.clone());
        let entry = Entry {
            fingerprint,
            generation,
            recorded: now,
            answer,
        };
        let size = entry.size(&key);
        let mut answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        let a = &mut *answers;
        // Expired entries go once a resolution, or when the budget is hit.
        let due = a
            .swept
            .is_none_or(|t| now < t || now - t >= LAST_SEEN_RESOLUTION);
        if due || a.bytes + size > self.answer_budget {
            a.entries.retain(|_, e| e.fresh(now));
            a.bytes = a.entries.iter().map(|(k, e)| e.size(k)).sum();
            a.swept = Some(now);
            if a.bytes + size > self.answer_budget {
                a.entries.clear();
                a.bytes = 0;
            }
        }
        // A replaced entry had the same key: its size is computed with it.
        let replaced = a.entries.get(&key).map(|old| old.size(&key));
        a.entries.insert(key, entry);
        a.bytes = a.bytes - replaced.unwrap_or(0) + size;
    }

    /// Answers kept, and their bytes.
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        (answers.entries.len(), answers.bytes)
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
    /// When expired entries were last dropped.
    swept: Mutex<Option<Instant>>,
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
        self.put_at(credential, agent, store_stamp, Instant::now());
    }

    /// [`AgentCredentials::put`] at `now`.
    fn put_at(
        &self,
        credential: &str,
        agent: Agent,
        store_stamp: Option<SystemTime>,
        now: Instant,
    ) {
        let Some(stamp) = settled(store_stamp) else {
            return;
        };
        let key: [u8; 32] = Sha256::digest(credential.as_bytes()).into();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        {
            // Entries are good for MARKER_TTL: sweep the expired as often.
            let mut swept = self.swept.lock().unwrap_or_else(|p| p.into_inner());
            if swept.is_none_or(|t| now.saturating_duration_since(t) >= MARKER_TTL) {
                entries.retain(|_, c| now.saturating_duration_since(c.read_at) < MARKER_TTL);
                *swept = Some(now);
            }
        }
        if entries.len() >= MAX_CREDENTIALS {
            entries.clear();
        }
        entries.insert(
            key,
            Checked {
                agent,
                store_stamp: stamp,
                read_at: now,
            },
        );
    }

    /// Credentials kept.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
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
    fn answers_are_bounded_by_bytes_and_expired_ones_swept_each_resolution() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .to_utc();
        let secs = |s: i64| t0 + TimeDelta::seconds(s);
        let a = |i: usize| agent(&format!("a{i}"), None);
        let fp = |i: usize| fingerprint(&a(i), &body("ws"));
        let big = |c: char| answer(&c.to_string().repeat(1000));
        // Each entry: "t1" + "aN" + 1000 body bytes + 1002 ETag bytes.
        let size = 2 + 2 + 1000 + 1002;
        let cache = CheckInCache::with_budget(3 * size);
        cache.put(&a(1), fp(1), 1, t0, big('x'));
        cache.put(&a(2), fp(2), 1, secs(10), big('y'));
        assert_eq!(cache.held(), (2, 2 * size));
        // The same agent again replaces its entry.
        cache.put(&a(2), fp(2), 1, secs(20), big('z'));
        assert_eq!(cache.held(), (2, 2 * size));
        cache.put(&a(3), fp(3), 1, secs(30), big('w'));
        assert_eq!(cache.held(), (3, 3 * size));
        // Over budget: a1 has not expired (40 s old), so all go.
        cache.put(&a(4), fp(4), 1, secs(40), big('v'));
        assert_eq!(cache.held(), (1, size));
        assert!(cache.get(&a(1), &fp(1), 1, secs(41)).is_none());
        assert!(cache.get(&a(4), &fp(4), 1, secs(41)).is_some());
        cache.put(&a(5), fp(5), 1, secs(50), big('u'));
        // A resolution after the last sweep (at 40 s): the expired go, the
        // fresh stay, though the budget is not reached.
        cache.put(&a(6), fp(6), 1, secs(105), big('t'));
        assert_eq!(cache.held(), (2, 2 * size), "a4 expired at 100 s");
        assert!(cache.get(&a(5), &fp(5), 1, secs(106)).is_some());
        assert!(cache.get(&a(6), &fp(6), 1, secs(106)).is_some());
    }

    #[test]
    fn expired_credentials_are_swept() {
        let old = SystemTime::now() - Duration::from_secs(10);
        let c = AgentCredentials::default();
        let t0 = Instant::now();
        c.put_at("upda_t1_a", agent("a1", None), Some(old), t0);
        c.put_at(
            "upda_t1_b",
            agent("a2", None),
            Some(old),
            t0 + MARKER_TTL / 2,
        );
        assert_eq!(c.held(), 2);
        // A TTL after the first sweep: a1 is expired, a2 is not.
        c.put_at("upda_t1_c", agent("a3", None), Some(old), t0 + MARKER_TTL);
        assert_eq!(c.held(), 2);
        assert!(c.get("upda_t1_c", Some(old)).is_some());
        assert!(c.get("upda_t1_a", Some(old)).is_none());
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
