//! What the console's fleet pages read, loaded once and shared: a tenant's
//! report [`Snapshot`] and what is derived from it (version status per
//! device, the Policy Compliance rows, each report), reused by every page
//! until it is too old.
//!
//! Reading and decoding a large inventory is the dominant cost of every
//! fleet page (seconds for 100,000 devices, see docs/benchmarks.md); a
//! console that re-read it per page would be unusable at that size. A view
//! is reused while the store file is unchanged. After the store changed
//! (agents check in all the time), it is reused for five times as long as
//! it took to load, at most [`MAX_AGE`], so loading takes at most a sixth
//! of the time. Past that, a small tenant's view is loaded again before
//! the page (its pages are always fresh), a large tenant's is refreshed in
//! the background while the pages go on with the old one (they never wait
//! for the inventory; see [`plan`]). Every change made through the console
//! drops the tenant's view at once, so an admin always sees their own
//! change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use crate::events::UpdateRecord;
use crate::fleet::rollouts::Rollout;
use crate::http::fleet::fleet;
use crate::http::Shared;
use crate::reports::compliance::{self, ComplianceRow};
use crate::reports::history::{self, Range};
use crate::reports::versions::{self, ModelStatus, VersionStatus};
use crate::reports::{self, Built, ReportKind, Snapshot};

use super::ConsoleError;

/// Longest a view is used after the store changed before a new one loads.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(10);

/// How far back [`FleetView::recent_updates`] reads: the home page's
/// nights and the day before the first.
pub(crate) const RECENT_DAYS: i64 = super::home::NIGHTS + 1;

/// A view that loads faster than this is loaded again before the page
/// once it is stale; a slower one is refreshed in the background.
pub(crate) const INLINE_LOAD: Duration = Duration::from_millis(100);

/// A tenant's fleet as the console shows it.
#[derive(Debug)]
pub(crate) struct FleetView {
    /// The report snapshot (inventory, groups, policies, catalog).
    pub(crate) snapshot: Snapshot,
    /// Version status of `snapshot.devices[i]`.
    pub(crate) status: Vec<VersionStatus>,
    models: OnceLock<Vec<ModelStatus>>,
    compliance: OnceLock<Vec<ComplianceRow>>,
    recent_updates: OnceLock<Vec<UpdateRecord>>,
    rollouts: OnceLock<Vec<Rollout>>,
    reports: Mutex<HashMap<&'static str, Arc<Built>>>,
    rows: OnceLock<Vec<DeviceRow>>,
    orders: Mutex<HashMap<String, Arc<Vec<usize>>>>,
}

/// What the device list shows and searches for `snapshot.devices[i]`,
/// worked out once per view.
#[derive(Debug)]
pub(crate) struct DeviceRow {
    /// The host's name.
    pub(crate) hostname: String,
    /// The host's group at its last check-in.
    pub(crate) group: String,
    /// The device's users, joined.
    pub(crate) users: String,
    /// Serial, product, host, users and key, lower-case, for the search.
    pub(crate) haystack: String,
}

impl FleetView {
    fn load(state: &Shared, tenant: &str) -> Result<Self, ConsoleError> {
        let now = state.accounts.now();
        let snapshot = Snapshot::load(state.accounts.store(), &fleet(state), tenant, now)?;
        let status = snapshot
            .devices
            .iter()
            .map(|d| versions::status(&snapshot.releases, d))
            .collect();
        Ok(FleetView {
            snapshot,
            status,
            models: OnceLock::new(),
            compliance: OnceLock::new(),
            recent_updates: OnceLock::new(),
            rollouts: OnceLock::new(),
            reports: Mutex::new(HashMap::new()),
            rows: OnceLock::new(),
            orders: Mutex::new(HashMap::new()),
        })
    }

    /// Works out now what `old` had worked out by the time it was
    /// replaced, so that the pages that used it find it ready instead of
    /// paying for it on their next request.
    fn warm_like(&self, old: &FleetView, state: &Shared) {
        if old.rows.get().is_some() {
            self.rows();
        }
        let sorts: Vec<String> = lock(&old.orders).keys().cloned().collect();
        for sort in sorts {
            self.order(&sort);
        }
        if old.models.get().is_some() {
            self.models();
        }
        if old.compliance.get().is_some() {
            self.compliance();
        }
        let kinds: Vec<ReportKind> = ReportKind::ALL
            .into_iter()
            .filter(|k| lock(&old.reports).contains_key(k.as_str()))
            .collect();
        for kind in kinds {
            // A failure shows again on the page that asks for it.
            let _ = self.report(kind);
        }
        if old.rollouts.get().is_some() {
            let _ = self.rollouts(state);
        }
        if old.recent_updates.get().is_some() {
            let _ = self.recent_updates(state);
        }
    }

    /// The device list's row of each device.
    pub(crate) fn rows(&self) -> &[DeviceRow] {
        self.rows.get_or_init(|| {
            let s = &self.snapshot;
            let hosts = s.hosts_by_id();
            let users = s.users_by_id();
            s.devices
                .iter()
                .map(|d| {
                    let host = hosts.get(d.host.as_str());
                    let hostname = host.map_or(String::new(), |h| h.hostname.clone());
                    let users = reports::user_names(&users, &d.users).join(", ");
                    let haystack = [
                        d.serial.as_deref().unwrap_or(""),
                        d.product.as_deref().unwrap_or(""),
                        &hostname,
                        &users,
                        &d.key,
                    ]
                    .join("\n")
                    .to_lowercase();
                    DeviceRow {
                        group: host.map_or(String::new(), |h| h.group.clone()),
                        hostname,
                        users,
                        haystack,
                    }
                })
                .collect()
        })
    }

    /// Device indices in the order of `sort` (`model`, `version`,
    /// `serial`, `host`; anything else: last seen, newest first), worked
    /// out once per view and sort.
    pub(crate) fn order(&self, sort: &str) -> Arc<Vec<usize>> {
        let key = match sort {
            "model" | "version" | "serial" | "host" => sort,
            _ => "",
        };
        let mut orders = lock(&self.orders);
        if let Some(o) = orders.get(key) {
            return Arc::clone(o);
        }
        let d = &self.snapshot.devices;
        let rows = self.rows();
        let mut order: Vec<usize> = (0..d.len()).collect();
        match key {
            "model" => order.sort_by(|&a, &b| {
                (d[a].vendor_id, d[a].product_id, &d[a].key).cmp(&(
                    d[b].vendor_id,
                    d[b].product_id,
                    &d[b].key,
                ))
            }),
            "version" => order.sort_by(|&a, &b| {
                (&d[a].firmware_version, &d[a].key).cmp(&(&d[b].firmware_version, &d[b].key))
            }),
            "serial" => {
                order.sort_by(|&a, &b| (&d[a].serial, &d[a].key).cmp(&(&d[b].serial, &d[b].key)))
            }
            "host" => order.sort_by(|&a, &b| {
                (&rows[a].hostname, &d[a].key).cmp(&(&rows[b].hostname, &d[b].key))
            }),
            _ => order.sort_by(|&a, &b| {
                d[b].last_seen
                    .cmp(&d[a].last_seen)
                    .then_with(|| d[a].key.cmp(&d[b].key))
            }),
        }
        let order = Arc::new(order);
        orders.insert(key.to_owned(), Arc::clone(&order));
        order
    }

    /// Version Status per model.
    pub(crate) fn models(&self) -> &[ModelStatus] {
        self.models.get_or_init(|| versions::models(&self.snapshot))
    }

    /// The Policy Compliance rows.
    pub(crate) fn compliance(&self) -> &[ComplianceRow] {
        self.compliance
            .get_or_init(|| compliance::rows(&self.snapshot))
    }

    /// Update history of the last [`RECENT_DAYS`] days (read on first
    /// use).
    pub(crate) fn recent_updates(&self, state: &Shared) -> Result<&[UpdateRecord], ConsoleError> {
        if let Some(r) = self.recent_updates.get() {
            return Ok(r);
        }
        let range = Range {
            from: Some(self.snapshot.now - chrono::Duration::days(RECENT_DAYS)),
            to: None,
            filter: Default::default(),
        };
        let (records, _) = history::read(
            state.accounts.store(),
            &self.snapshot.tenant,
            &range,
            history::MAX_ROWS,
        )?;
        Ok(self.recent_updates.get_or_init(|| records))
    }

    /// The tenant's rollouts.
    pub(crate) fn rollouts(&self, state: &Shared) -> Result<&[Rollout], ConsoleError> {
        if let Some(r) = self.rollouts.get() {
            return Ok(r);
        }
        let list = fleet(state).rollouts(&self.snapshot.tenant)?;
        Ok(self.rollouts.get_or_init(|| list))
    }

    /// A fleet report (not the update history, which takes a range).
    pub(crate) fn report(&self, kind: ReportKind) -> Result<Arc<Built>, ConsoleError> {
        let mut built = lock(&self.reports);
        if let Some(b) = built.get(kind.as_str()) {
            return Ok(Arc::clone(b));
        }
        let b = Arc::new(
            reports::build(kind, &self.snapshot)
                .ok_or_else(|| ConsoleError::Internal(format!("{kind} is not a fleet report")))?,
        );
        built.insert(kind.as_str(), Arc::clone(&b));
        Ok(b)
    }
}

/// A lock, even one a panicking thread left behind (what it guards is
/// always whole: values are inserted complete).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Entry {
    loaded_at: Instant,
    /// How long loading took.
    load_took: Duration,
    /// The store file's stamp before loading, if settled (see
    /// [`crate::http::checkin_cache::settled`]).
    store_stamp: Option<SystemTime>,
    view: Arc<FleetView>,
}

impl Entry {
    /// How long the view may be used after the store changed.
    fn grace(&self) -> Duration {
        (self.load_took * 5).min(MAX_AGE)
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("loaded_at", &self.loaded_at)
            .field("load_took", &self.load_took)
            .finish_non_exhaustive()
    }
}

/// A tenant's cached view and what is being done about it.
#[derive(Debug, Default)]
struct Slot {
    entry: Option<Entry>,
    /// Bumped by [`ViewCache::forget`]: a background load that started
    /// before an admin's change must not put its older view back.
    generation: u64,
    /// A background load is running.
    refreshing: bool,
}

/// What [`ViewCache::get`] does with a tenant's slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Serve the cached view.
    Serve,
    /// Load now and serve the new view (the page waits).
    Load,
    /// Serve the cached view, and load a new one in the background.
    ServeAndRefresh,
}

/// The rule: a view is served while the store is unchanged or within its
/// grace; past that, a view that loads within [`INLINE_LOAD`] is loaded
/// again before the page (small tenants always see fresh data), a slower
/// one is served as it is while its successor loads in the background
/// (a large tenant's pages never wait for the inventory; what they show
/// is at most the grace plus one load time old). No view, or one dropped
/// by an admin's change, is always loaded before the page.
fn plan(entry: Option<&Entry>, store_unchanged: bool, refreshing: bool) -> Plan {
    let Some(e) = entry else {
        return Plan::Load;
    };
    if store_unchanged || e.loaded_at.elapsed() < e.grace() {
        Plan::Serve
    } else if e.load_took < INLINE_LOAD {
        Plan::Load
    } else if refreshing {
        Plan::Serve
    } else {
        Plan::ServeAndRefresh
    }
}

/// The views, one slot per tenant (a slot's lock is held while a page
/// loads a view, so concurrent pages wait for one load instead of each
/// doing it; a background load does not hold it).
#[derive(Debug, Default)]
pub(crate) struct ViewCache {
    slots: Mutex<HashMap<String, Arc<Mutex<Slot>>>>,
}

impl ViewCache {
    fn slot(&self, tenant: &str) -> Arc<Mutex<Slot>> {
        let mut slots = lock(&self.slots);
        Arc::clone(slots.entry(tenant.to_owned()).or_default())
    }

    /// The tenant's view, as [`plan`] decides.
    pub(crate) fn get(&self, state: &Shared, tenant: &str) -> Result<Arc<FleetView>, ConsoleError> {
        let slot_lock = self.slot(tenant);
        let mut slot = lock(&slot_lock);
        let stamp = fleet(state).store_file_stamp();
        let unchanged = slot
            .entry
            .as_ref()
            .is_some_and(|e| stamp.is_some() && e.store_stamp == stamp);
        match plan(slot.entry.as_ref(), unchanged, slot.refreshing) {
            Plan::Serve => {}
            Plan::Load => slot.entry = Some(load(state, tenant, stamp)?),
            Plan::ServeAndRefresh => {
                slot.refreshing = true;
                let generation = slot.generation;
                let (state, tenant, slot_lock) =
                    (Arc::clone(state), tenant.to_owned(), Arc::clone(&slot_lock));
                let spawned = std::thread::Builder::new()
                    .name("console-view".into())
                    .spawn(move || refresh(&state, &tenant, &slot_lock, generation));
                if let Err(e) = spawned {
                    slot.refreshing = false;
                    tracing::warn!("console view refresh not started: {e}");
                }
            }
        }
        let entry = slot
            .entry
            .as_ref()
            .ok_or_else(|| ConsoleError::Internal("console view missing after its load".into()))?;
        Ok(Arc::clone(&entry.view))
    }

    /// Drops the tenant's view (after a change through the console).
    pub(crate) fn forget(&self, tenant: &str) {
        let slot = self.slot(tenant);
        let mut slot = lock(&slot);
        slot.entry = None;
        slot.generation += 1;
    }
}

fn load(state: &Shared, tenant: &str, stamp: Option<SystemTime>) -> Result<Entry, ConsoleError> {
    let started = Instant::now();
    let view = Arc::new(FleetView::load(state, tenant)?);
    Ok(Entry {
        loaded_at: Instant::now(),
        load_took: started.elapsed(),
        store_stamp: crate::http::checkin_cache::settled(stamp),
        view,
    })
}

/// A background load: the new view replaces the old one unless an
/// admin's change dropped the slot meanwhile.
fn refresh(state: &Shared, tenant: &str, slot: &Mutex<Slot>, generation: u64) {
    let stamp = fleet(state).store_file_stamp();
    let old = lock(slot).entry.as_ref().map(|e| Arc::clone(&e.view));
    let started = Instant::now();
    let loaded = load(state, tenant, stamp).map(|mut entry| {
        if let Some(old) = &old {
            entry.view.warm_like(old, state);
            // The grace counts the whole work of a refresh.
            entry.load_took = started.elapsed();
        }
        entry
    });
    let mut slot = lock(slot);
    slot.refreshing = false;
    match loaded {
        Ok(entry) if slot.generation == generation => slot.entry = Some(entry),
        Ok(_) => {}
        Err(e) => tracing::warn!(tenant, "console view refresh failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{plan, Entry, FleetView, Plan, MAX_AGE};
    use std::time::{Duration, Instant};

    fn entry(age: Duration, took: Duration) -> Entry {
        Entry {
            loaded_at: Instant::now() - age,
            load_took: took,
            store_stamp: None,
            view: std::sync::Arc::new(FleetView {
                snapshot: Default::default(),
                status: Vec::new(),
                models: Default::default(),
                compliance: Default::default(),
                recent_updates: Default::default(),
                rollouts: Default::default(),
                reports: Default::default(),
                rows: Default::default(),
                orders: Default::default(),
            }),
        }
    }

    #[test]
    fn grace_is_five_loads_at_most_max_age() {
        for (took, grace) in [
            (Duration::from_millis(2), Duration::from_millis(10)),
            (Duration::from_millis(500), Duration::from_millis(2500)),
            (Duration::from_secs(2), MAX_AGE),
            (Duration::from_secs(30), MAX_AGE),
        ] {
            assert_eq!(entry(Duration::ZERO, took).grace(), grace, "{took:?}");
        }
    }

    #[test]
    fn plan_serves_loads_or_refreshes_in_the_background() {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        // (cached: age and load time, store unchanged, refreshing) → plan
        for (cached, unchanged, refreshing, expected) in [
            (None, false, false, Plan::Load),
            (None, true, true, Plan::Load),
            // Within the grace, or the store unchanged: served.
            (Some((ms(0), ms(2))), false, false, Plan::Serve),
            (Some((s(1), ms(2))), true, false, Plan::Serve),
            (Some((s(5), s(2))), false, false, Plan::Serve),
            (Some((s(3600), s(2))), true, false, Plan::Serve),
            // Stale and quick to load: loaded before the page.
            (Some((s(1), ms(2))), false, false, Plan::Load),
            (Some((s(1), ms(99))), false, false, Plan::Load),
            (Some((s(1), ms(99))), false, true, Plan::Load),
            // Stale and slow to load: served, refreshed once in the background.
            (Some((s(1), ms(100))), false, false, Plan::ServeAndRefresh),
            (Some((s(11), s(2))), false, false, Plan::ServeAndRefresh),
            (Some((s(11), s(2))), false, true, Plan::Serve),
            (Some((s(60), s(30))), false, false, Plan::ServeAndRefresh),
        ] {
            let e = cached.map(|(age, took)| entry(age, took));
            assert_eq!(
                plan(e.as_ref(), unchanged, refreshing),
                expected,
                "{cached:?} unchanged={unchanged} refreshing={refreshing}"
            );
        }
    }
}
