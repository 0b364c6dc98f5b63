//! The check-in's caching and versioning, with an injected clock.

use std::sync::{Arc, Mutex};

use catalog::assignment::verify_assignments;
use catalog::checkin::{CheckIn, CheckInResponse};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;
use crate::auth::{Clock, Enrollment, SessionPolicy};
use crate::store::RedbStore;

#[derive(Debug)]
struct ManualClock(Mutex<DateTime<Utc>>);

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn signed(
    answer: &CheckInAnswer,
    key: &catalog::tuf::PublicKey,
    agent: &str,
    now: DateTime<Utc>,
) -> AssignmentSet {
    let r: CheckInResponse = serde_json::from_str(&answer.body).unwrap();
    let doc = serde_json::to_vec(&r.assignments).unwrap();
    verify_assignments(&doc, key, agent, 0, now).unwrap()
}

#[test]
fn versions_bump_on_change_and_documents_are_reused_until_near_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
    let clock = Arc::new(ManualClock(Mutex::new(start)));
    let store = Arc::new(RedbStore::open(&dir.path().join("s.redb")).unwrap());
    let keys = dir.path().join("keys");
    let accounts = Accounts::new(store, clock.clone(), keys.clone(), SessionPolicy::default());
    catalog::Catalog::init(&dir.path().join("catalog"), &keys, start).unwrap();
    let (t, token) = accounts.create_tenant("Acme").unwrap();
    let enrolled = accounts
        .enroll(&Enrollment {
            tenant: t.id.clone(),
            token,
            system_id: "SYS-1".into(),
            machine_fingerprint: "m1".into(),
            hostname: "ws-1".into(),
            os: "Linux".into(),
        })
        .unwrap();
    let agent = enrolled.agent;
    let signer = catalog::tuf::Ed25519Signer::load(&accounts.assignment_key_path(&t.id)).unwrap();
    let key = signer.public_key().clone();
    let fleet = Fleet::new(accounts, dir.path().join("catalog"), keys);
    let body: CheckIn = serde_json::from_str(
        r#"{"agent_version":"0.1.0","platform":"linux","hostname":"ws-1","users":[{"account":"ann"}]}"#,
    )
    .unwrap();

    let first = fleet.check_in(&agent, &body).unwrap();
    let set = signed(&first, &key, &agent.id, start);
    assert_eq!((set.version, set.poll_interval_secs), (1, 21600));
    assert_eq!(set.expires, start + TimeDelta::hours(24));

    // Unchanged and far from expiry: the very same document.
    *clock.0.lock().unwrap() = start + TimeDelta::hours(11);
    let again = fleet.check_in(&agent, &body).unwrap();
    assert_eq!(
        (again.etag.as_str(), again.body.as_str()),
        (first.etag.as_str(), first.body.as_str())
    );

    // Less than two intervals left: signed again, same version, new expiry.
    let later = start + TimeDelta::hours(13);
    *clock.0.lock().unwrap() = later;
    let resigned = fleet.check_in(&agent, &body).unwrap();
    assert_ne!(resigned.etag, first.etag);
    let set = signed(&resigned, &key, &agent.id, later);
    assert_eq!(
        (set.version, set.expires),
        (1, later + TimeDelta::hours(24))
    );

    // A content change (the poll interval) bumps the version.
    let mut s = fleet.settings(&t.id).unwrap();
    s.all_users_poll_interval_secs = 3600;
    fleet.set_settings(&t.id, &s).unwrap();
    let changed = fleet.check_in(&agent, &body).unwrap();
    let set = signed(&changed, &key, &agent.id, later);
    assert_eq!((set.version, set.poll_interval_secs), (2, 3600));
    assert_eq!(set.expires, later + TimeDelta::hours(4));

    // The host and user are in the inventory, seen first at the first check-in.
    let hosts = inventory::hosts(fleet.accounts.store(), &t.id).unwrap();
    assert_eq!((hosts[0].first_seen, hosts[0].last_seen), (start, later));
    assert_eq!(
        inventory::users(fleet.accounts.store(), &t.id).unwrap()[0].name,
        "ann"
    );
}
