//! Accounts over a real redb store with a hand-driven clock.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::*;
use crate::store::RedbStore;

#[derive(Debug)]
struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    fn advance(&self, d: TimeDelta) {
        *self.0.lock().unwrap() += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    accounts: Accounts,
    tenant: String,
}

const PASSWORD: &str = "correct horse battery";

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(&dir.path().join("server.redb")).unwrap());
    let clock = Arc::new(ManualClock(Mutex::new(
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
    )));
    let accounts = Accounts::new(
        store,
        clock.clone(),
        dir.path().join("keys"),
        SessionPolicy::default(),
    );
    let (tenant, _) = accounts.create_tenant("Acme").unwrap();
    Fixture {
        _dir: dir,
        clock,
        accounts,
        tenant: tenant.id,
    }
}

#[test]
fn tenant_gets_a_key_file_and_a_hashed_enrollment_token() {
    let f = fixture();
    let t = f.accounts.records().tenant(&f.tenant).unwrap().unwrap();
    let key_path = f.accounts.assignment_key_path(&t.id);
    let key = Ed25519Signer::load(&key_path).unwrap();
    assert_eq!(key.key_id(), t.assignment_key_id);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let old = f.accounts.rotate_enrollment_token(&f.tenant).unwrap();
    assert!(f.accounts.check_enrollment_token(&f.tenant, &old).unwrap());
    // The stored record never contains the token itself.
    let stored = serde_json::to_string(&t).unwrap();
    assert!(!stored.contains(old.rsplit('_').next().unwrap()));
    let new = f.accounts.rotate_enrollment_token(&f.tenant).unwrap();
    assert!(!f.accounts.check_enrollment_token(&f.tenant, &old).unwrap());
    assert!(f.accounts.check_enrollment_token(&f.tenant, &new).unwrap());
    let (other, other_token) = f.accounts.create_tenant("Other").unwrap();
    assert!(!f
        .accounts
        .check_enrollment_token(&f.tenant, &other_token)
        .unwrap());
    assert!(f
        .accounts
        .check_enrollment_token(&other.id, &other_token)
        .unwrap());
    f.accounts.revoke_enrollment_token(&f.tenant).unwrap();
    assert!(!f.accounts.check_enrollment_token(&f.tenant, &new).unwrap());
}

#[test]
fn admins_unique_email_and_one_primary() {
    let f = fixture();
    let a = f
        .accounts
        .create_admin(&f.tenant, " Ann@Example.com", Role::Full, true, PASSWORD)
        .unwrap();
    assert_eq!(a.email, "ann@example.com");
    assert!(matches!(
        f.accounts.create_admin(
            &f.tenant,
            "ann@example.COM",
            Role::ReadOnly,
            false,
            PASSWORD
        ),
        Err(AccountError::EmailTaken(_))
    ));
    assert!(matches!(
        f.accounts
            .create_admin(&f.tenant, "bob@example.com", Role::Full, true, PASSWORD),
        Err(AccountError::PrimaryExists)
    ));
    // The failed batch left nothing behind: bob can still be created.
    f.accounts
        .create_admin(&f.tenant, "bob@example.com", Role::Full, false, PASSWORD)
        .unwrap();
    for (email, pw) in [("no-at-sign", PASSWORD), ("c@example.com", "short")] {
        assert!(matches!(
            f.accounts
                .create_admin(&f.tenant, email, Role::Full, false, pw),
            Err(AccountError::Invalid { .. })
        ));
    }
    assert!(matches!(
        f.accounts
            .create_admin("0000", "x@example.com", Role::Full, false, PASSWORD),
        Err(AccountError::UnknownTenant(_))
    ));
    // Deleting the primary frees the claim.
    f.accounts.delete_admin(&f.tenant, &a.id).unwrap();
    f.accounts
        .create_admin(&f.tenant, "carol@example.com", Role::Full, true, PASSWORD)
        .unwrap();
}

#[test]
fn login_fails_the_same_way_for_every_wrong_input() {
    let f = fixture();
    f.accounts
        .create_admin(&f.tenant, "ann@example.com", Role::Full, false, PASSWORD)
        .unwrap();
    let (other, _) = f.accounts.create_tenant("Other").unwrap();
    for (tenant, email, pw) in [
        (f.tenant.as_str(), "ann@example.com", "wrong password!"),
        (f.tenant.as_str(), "nobody@example.com", PASSWORD),
        (other.id.as_str(), "ann@example.com", PASSWORD),
        ("ffff", "ann@example.com", PASSWORD),
    ] {
        assert!(
            matches!(
                f.accounts.login(None, tenant, email, pw),
                Err(AccountError::InvalidCredentials)
            ),
            "{tenant} {email} {pw}"
        );
    }
    let (_, token) = f
        .accounts
        .login(None, &f.tenant, "ANN@example.com", PASSWORD)
        .unwrap();
    assert!(f.accounts.authenticate(&token).unwrap().is_full_admin());
}

#[test]
fn sessions_expire_after_an_idle_hour_and_after_twelve_hours() {
    let f = fixture();
    f.accounts
        .create_admin(
            &f.tenant,
            "ann@example.com",
            Role::ReadOnly,
            false,
            PASSWORD,
        )
        .unwrap();
    let (_, token) = f
        .accounts
        .login(None, &f.tenant, "ann@example.com", PASSWORD)
        .unwrap();
    let p = f.accounts.authenticate(&token).unwrap();
    assert_eq!(p.tenant, f.tenant);
    assert!(!p.can_write());
    // Used every 50 minutes, it stays alive up to the absolute limit.
    for _ in 0..14 {
        f.clock.advance(TimeDelta::minutes(50));
        assert!(f.accounts.authenticate(&token).is_ok());
    }
    f.clock.advance(TimeDelta::minutes(50)); // 12 h 30 min after login
    assert!(matches!(
        f.accounts.authenticate(&token),
        Err(AccountError::InvalidCredentials)
    ));

    let (_, idle) = f
        .accounts
        .login(None, &f.tenant, "ann@example.com", PASSWORD)
        .unwrap();
    f.clock.advance(TimeDelta::minutes(59));
    assert!(f.accounts.authenticate(&idle).is_ok());
    f.clock.advance(TimeDelta::minutes(61));
    assert!(f.accounts.authenticate(&idle).is_err());
    // Once expired, it stays expired (the record is gone).
    f.clock.advance(TimeDelta::minutes(-120));
    assert!(f.accounts.authenticate(&idle).is_err());
}

#[test]
fn tokens_cannot_be_reused_after_logout_revocation_or_admin_deletion() {
    let f = fixture();
    let ann = f
        .accounts
        .create_admin(&f.tenant, "ann@example.com", Role::Full, false, PASSWORD)
        .unwrap();
    let (_, s1) = f
        .accounts
        .login(None, &f.tenant, "ann@example.com", PASSWORD)
        .unwrap();
    let (_, s2) = f
        .accounts
        .login(None, &f.tenant, "ann@example.com", PASSWORD)
        .unwrap();
    let p1 = f.accounts.authenticate(&s1).unwrap();
    f.accounts.logout(&p1).unwrap();
    assert!(f.accounts.authenticate(&s1).is_err());
    assert!(f.accounts.authenticate(&s2).is_ok());

    let (rec, api) = f
        .accounts
        .create_api_token(&f.tenant, "crm", ApiTokenScope::Read, &ann.id)
        .unwrap();
    let p = f.accounts.authenticate(&api).unwrap();
    assert!(!p.can_write() && !p.is_full_admin());
    // A token moved to another tenant, or with another id, is unknown.
    let (other, _) = f.accounts.create_tenant("Other").unwrap();
    for forged in [
        api.replacen(&f.tenant, &other.id, 1),
        api.replacen(&rec.id, "00000000000000aa", 1),
        api.replacen("updt_", "upds_", 1),
    ] {
        assert!(f.accounts.authenticate(&forged).is_err(), "{forged}");
    }
    f.accounts.revoke_api_token(&f.tenant, &rec.id).unwrap();
    assert!(f.accounts.authenticate(&api).is_err());
    assert!(matches!(
        f.accounts.revoke_api_token(&other.id, &rec.id),
        Err(AccountError::NotFound)
    ));

    f.accounts.delete_admin(&f.tenant, &ann.id).unwrap();
    assert!(f.accounts.authenticate(&s2).is_err());
    // Enrollment tokens are not bearer credentials.
    let enroll = f.accounts.rotate_enrollment_token(&f.tenant).unwrap();
    assert!(f.accounts.authenticate(&enroll).is_err());
}

#[test]
fn sweeping_removes_only_expired_sessions() {
    let f = fixture();
    f.accounts
        .create_admin(&f.tenant, "ann@example.com", Role::Full, false, PASSWORD)
        .unwrap();
    let login = || {
        f.accounts
            .login(None, &f.tenant, "ann@example.com", PASSWORD)
            .unwrap()
            .1
    };
    let (old1, old2) = (login(), login());
    f.clock.advance(TimeDelta::minutes(45));
    let fresh = login();
    assert_eq!(f.accounts.sweep_sessions().unwrap(), 0);
    f.clock.advance(TimeDelta::minutes(20)); // old ones idle 65 min, fresh 20
    assert_eq!(f.accounts.sweep_sessions().unwrap(), 2);
    assert_eq!(f.accounts.records().all_sessions().unwrap().len(), 1);
    assert!(f.accounts.authenticate(&fresh).is_ok());
    for t in [old1, old2] {
        assert!(f.accounts.authenticate(&t).is_err());
    }
}

#[test]
fn repeated_wrong_passwords_lock_the_account_for_a_while() {
    let f = fixture();
    f.accounts
        .create_admin(&f.tenant, "ann@example.com", Role::Full, false, PASSWORD)
        .unwrap();
    f.accounts
        .create_admin(&f.tenant, "bob@example.com", Role::Full, false, PASSWORD)
        .unwrap();
    let attempt = |email: &str, pw: &str| f.accounts.login(None, &f.tenant, email, pw).map(|_| ());
    // A success resets the count.
    for _ in 0..throttle::MAX_FAILURES - 1 {
        assert!(matches!(
            attempt("ann@example.com", "wrong password!!"),
            Err(AccountError::InvalidCredentials)
        ));
    }
    attempt("ann@example.com", PASSWORD).unwrap();
    for _ in 0..throttle::MAX_FAILURES {
        assert!(matches!(
            attempt("ANN@example.com", "wrong password!!"),
            Err(AccountError::InvalidCredentials)
        ));
    }
    // Locked: even the right password is refused, for the rest of the window.
    assert!(matches!(
        attempt("ann@example.com", PASSWORD),
        Err(AccountError::TooManyAttempts {
            retry_after_secs: 900
        })
    ));
    // Other accounts are not affected.
    attempt("bob@example.com", PASSWORD).unwrap();
    f.clock.advance(TimeDelta::minutes(14));
    assert!(matches!(
        attempt("ann@example.com", PASSWORD),
        Err(AccountError::TooManyAttempts {
            retry_after_secs: 60
        })
    ));
    f.clock.advance(TimeDelta::minutes(1));
    attempt("ann@example.com", PASSWORD).unwrap();
}

/// Password checks past the limit are answered "busy" at once, without
/// running argon2 and without counting as a failure.
#[test]
fn password_checks_past_the_limit_are_refused_as_busy() {
    let f = fixture();
    f.accounts
        .create_admin(&f.tenant, "ann@example.com", Role::Full, false, PASSWORD)
        .unwrap();
    let accounts = f.accounts.clone().with_password_check_limit(2);
    let first = accounts.password_checks.start().unwrap();
    let second = accounts.password_checks.start().unwrap();
    for _ in 0..throttle::MAX_FAILURES + 1 {
        assert!(matches!(
            accounts.login(None, &f.tenant, "ann@example.com", "wrong password!!"),
            Err(AccountError::Busy {
                retry_after_secs: 1
            })
        ));
    }
    drop(first);
    // A slot is free again, and the refusals above locked nothing.
    accounts
        .login(None, &f.tenant, "ann@example.com", PASSWORD)
        .unwrap();
    drop(second);
    assert!(accounts.password_checks.start().is_ok());
}
