//! Tenants, admins, sessions and API tokens: the rules, over a [`Store`].
//!
//! Both the CLI and the HTTP service go through [`Accounts`]; time comes from
//! a [`Clock`] so session expiry is tested without waiting.

mod enroll;
mod passwords;
pub mod secret;
mod throttle;

use std::path::PathBuf;
use std::sync::Arc;

use catalog::tuf::Ed25519Signer;
use chrono::{DateTime, TimeDelta, Utc};

pub use self::enroll::{Enrolled, Enrollment};
use self::secret::{new_id, new_token, parse_token, secret_matches, TokenKind};
use crate::store::{
    Admin, ApiToken, ApiTokenScope, EnrollmentToken, Records, Role, Session, Store, StoreError,
    Tenant,
};

/// The current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> DateTime<Utc>;

    /// How long to wait in real time for `span` of this clock's time to
    /// pass (zero for a negative span).
    fn real_wait(&self, span: TimeDelta) -> std::time::Duration {
        span.to_std().unwrap_or_default()
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The simulation's accelerated clock (`serve --simulated-clock`), shared
/// with agents configured with the same values.
#[derive(Debug, Clone, Copy)]
pub struct AcceleratedClock(pub catalog::sim_clock::AcceleratedTime);

impl Clock for AcceleratedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }

    fn real_wait(&self, span: TimeDelta) -> std::time::Duration {
        self.0.real_wait(span)
    }
}

/// How long sessions live: `idle` after the last use, and never longer than
/// `absolute` after login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Inactivity timeout (default one hour).
    pub idle: TimeDelta,
    /// Absolute lifetime (default twelve hours).
    pub absolute: TimeDelta,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: TimeDelta::hours(1),
            absolute: TimeDelta::hours(12),
        }
    }
}

/// A session's last use is written back at most this often.
const TOUCH_EVERY: TimeDelta = TimeDelta::seconds(60);

/// Who a request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The one tenant it may see.
    pub tenant: String,
    /// Admin or application.
    pub kind: PrincipalKind,
}

/// The kinds of principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// An admin through a login session.
    Admin {
        /// The admin id.
        admin_id: String,
        /// The session id.
        session_id: String,
        /// The admin's current role.
        role: Role,
    },
    /// A partner application through an API token.
    ApiToken {
        /// The token id.
        token_id: String,
        /// Its scope.
        scope: ApiTokenScope,
    },
}

impl Principal {
    /// Whether it may change tenant data.
    pub fn can_write(&self) -> bool {
        match &self.kind {
            PrincipalKind::Admin { role, .. } => *role == Role::Full,
            PrincipalKind::ApiToken { scope, .. } => *scope == ApiTokenScope::Full,
        }
    }

    /// Whether it is a full admin (needed to manage admins and API tokens).
    pub fn is_full_admin(&self) -> bool {
        matches!(
            self.kind,
            PrincipalKind::Admin {
                role: Role::Full,
                ..
            }
        )
    }
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such tenant.
    #[error("no tenant {0}")]
    UnknownTenant(String),
    /// No such record in the tenant.
    #[error("not found")]
    NotFound,
    /// The e-mail address is taken in this tenant.
    #[error("an admin with e-mail {0} already exists in this tenant")]
    EmailTaken(String),
    /// The tenant already has a primary contact.
    #[error("the tenant already has a primary contact")]
    PrimaryExists,
    /// A field is invalid.
    #[error("invalid {field}: {why}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// Why.
        why: &'static str,
    },
    /// Too many wrong passwords for this account lately.
    #[error("too many failed logins; retry in {retry_after_secs} s")]
    TooManyAttempts {
        /// Seconds until the next attempt is accepted.
        retry_after_secs: i64,
    },
    /// Every password check slot is taken (each holds ~19 MiB of argon2
    /// memory); the attempt was not made.
    #[error("the server is busy checking passwords; retry in {retry_after_secs} s")]
    Busy {
        /// Seconds to wait.
        retry_after_secs: i64,
    },
    /// Wrong tenant, e-mail, password or token (deliberately not saying which).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// A key could not be made or saved.
    #[error("assignment key: {0}")]
    Key(#[from] catalog::tuf::TufError),
    /// The assignment key cannot be endorsed as it is.
    #[error("assignment key: {0}")]
    Endorsement(#[from] catalog::assignment::EndorsementError),
    /// The tenant's key directory could not be created.
    #[error("creating {path}: {source}")]
    KeyDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Password hashing failed.
    #[error("password hashing: {0}")]
    Password(String),
    /// Only a signed-in admin has a password (not an API token).
    #[error("only a signed-in admin can change their password")]
    NotAnAdmin,
}

/// The account service.
#[derive(Debug, Clone)]
pub struct Accounts {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    keys_dir: PathBuf,
    sessions: SessionPolicy,
    throttle: Arc<throttle::LoginThrottle>,
    password_checks: Arc<PasswordChecks>,
}

/// At most this many argon2 password checks run at once, however many
/// logins arrive: past it, a login is answered "busy" at once instead of
/// queueing memory-hungry work on the blocking pool.
#[derive(Debug)]
pub(crate) struct PasswordChecks {
    running: std::sync::atomic::AtomicUsize,
    limit: usize,
}

impl PasswordChecks {
    /// Two per core (at least four).
    fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self::with_limit((cores * 2).max(4))
    }

    pub(crate) fn with_limit(limit: usize) -> Self {
        Self {
            running: Default::default(),
            limit,
        }
    }

    /// A slot, or `Busy` when all are taken.
    pub(crate) fn start(&self) -> Result<PasswordCheck<'_>, AccountError> {
        use std::sync::atomic::Ordering;
        let took = self
            .running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            });
        match took {
            Ok(_) => Ok(PasswordCheck(self)),
            Err(_) => Err(AccountError::Busy {
                retry_after_secs: 1,
            }),
        }
    }
}

/// A running password check; frees its slot when dropped.
#[derive(Debug)]
pub(crate) struct PasswordCheck<'a>(&'a PasswordChecks);

impl Drop for PasswordCheck<'_> {
    fn drop(&mut self) {
        self.0
            .running
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Accounts {
    /// Accounts over `store`; tenant keys go under `<keys_dir>/tenants/`.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        keys_dir: PathBuf,
        sessions: SessionPolicy,
    ) -> Self {
        Self {
            store,
            clock,
            keys_dir,
            sessions,
            throttle: Arc::default(),
            password_checks: Arc::new(PasswordChecks::for_this_machine()),
        }
    }

    /// The same accounts with at most `limit` password checks at once.
    pub fn with_password_check_limit(mut self, limit: usize) -> Self {
        self.password_checks = Arc::new(PasswordChecks::with_limit(limit));
        self
    }

    /// The typed store.
    pub fn records(&self) -> Records<'_> {
        Records::new(self.store.as_ref())
    }

    /// The untyped store (for services with their own records, such as `fleet`).
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The clock itself, for background jobs that wait on it.
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.clock)
    }

    /// `<keys>/tenants/<id>/assignments.pem`.
    pub fn assignment_key_path(&self, tenant: &str) -> PathBuf {
        self.keys_dir
            .join("tenants")
            .join(tenant)
            .join("assignments.pem")
    }

    /// The document the catalog's targets role signs to vouch for the
    /// tenant's assignment key (`catalog endorse` on the signing host).
    pub fn assignment_key_endorsement(
        &self,
        tenant: &str,
    ) -> Result<catalog::assignment::KeyEndorsement, AccountError> {
        let t = self.tenant(tenant)?;
        let key = Ed25519Signer::load(&self.assignment_key_path(&t.id))?;
        Ok(catalog::assignment::KeyEndorsement::new(
            &t.id,
            key.public_key().clone(),
        )?)
    }

    fn tenant(&self, id: &str) -> Result<Tenant, AccountError> {
        self.records()
            .tenant(id)?
            .ok_or_else(|| AccountError::UnknownTenant(id.to_owned()))
    }

    /// Creates a tenant with its assignment-signing key and an enrollment
    /// token; returns the tenant and the token (shown once).
    pub fn create_tenant(&self, name: &str) -> Result<(Tenant, String), AccountError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(AccountError::Invalid {
                field: "name",
                why: "must be 1 to 200 characters",
            });
        }
        let id = new_id();
        let key = Ed25519Signer::generate()?;
        let path = self.assignment_key_path(&id);
        if let Some(dir) = path.parent() {
            create_private_dir(dir).map_err(|source| AccountError::KeyDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        key.save(&path)?;
        let (token, hash) = new_token(TokenKind::Enrollment, &id, "");
        let now = self.now();
        let tenant = Tenant {
            id,
            name: name.to_owned(),
            created_at: now,
            enrollment_token: Some(EnrollmentToken {
                secret_sha256: hash,
                issued_at: now,
            }),
            assignment_key_id: key.key_id().to_owned(),
        };
        self.records().insert_tenant(&tenant)?;
        Ok((tenant, token))
    }

    /// The id of the tenant an admin typed: its 16-hex id, or its name
    /// (trimmed, case-insensitive) when exactly one tenant has that name.
    /// `None` when nothing or several match; a login with the typed text
    /// then fails like any wrong tenant.
    pub fn tenant_id_for(&self, typed: &str) -> Result<Option<String>, AccountError> {
        let typed = typed.trim();
        if self.records().tenant(typed)?.is_some() {
            return Ok(Some(typed.to_owned()));
        }
        let mut named = self
            .records()
            .tenants()?
            .into_iter()
            .filter(|t| t.name.trim().eq_ignore_ascii_case(typed));
        match (named.next(), named.next()) {
            (Some(t), None) => Ok(Some(t.id)),
            _ => Ok(None),
        }
    }

    /// Issues a new enrollment token; the old one stops working.
    pub fn rotate_enrollment_token(&self, tenant: &str) -> Result<String, AccountError> {
        let mut t = self.tenant(tenant)?;
        let (token, hash) = new_token(TokenKind::Enrollment, &t.id, "");
        t.enrollment_token = Some(EnrollmentToken {
            secret_sha256: hash,
            issued_at: self.now(),
        });
        self.records().update_tenant(&t)?;
        Ok(token)
    }

    /// Revokes the enrollment token: no agent can enroll until the next rotation.
    pub fn revoke_enrollment_token(&self, tenant: &str) -> Result<(), AccountError> {
        let mut t = self.tenant(tenant)?;
        t.enrollment_token = None;
        self.records().update_tenant(&t)?;
        Ok(())
    }

    /// Whether `token` is the tenant's current enrollment token.
    pub fn check_enrollment_token(&self, tenant: &str, token: &str) -> Result<bool, AccountError> {
        let Some(p) = parse_token(token).filter(|p| p.kind == TokenKind::Enrollment) else {
            return Ok(false);
        };
        let Some(t) = self.records().tenant(tenant)? else {
            return Ok(false);
        };
        Ok(p.tenant == t.id
            && t.enrollment_token
                .is_some_and(|e| secret_matches(&p.secret, &e.secret_sha256)))
    }

    /// Creates an admin account.
    pub fn create_admin(
        &self,
        tenant: &str,
        email: &str,
        role: Role,
        primary: bool,
        password: &str,
    ) -> Result<Admin, AccountError> {
        self.tenant(tenant)?;
        let email = email.trim().to_lowercase();
        let valid = email.len() <= 254
            && email
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
            && !email.chars().any(char::is_whitespace);
        if !valid {
            return Err(AccountError::Invalid {
                field: "email",
                why: "must look like name@domain",
            });
        }
        let password_hash = passwords::new_password_hash(password)?;
        let admin = Admin {
            tenant: tenant.to_owned(),
            id: new_id(),
            email: email.clone(),
            role,
            primary,
            password_hash,
            created_at: self.now(),
        };
        match self.records().insert_admin(&admin) {
            Ok(()) => Ok(admin),
            Err(StoreError::Conflict { key, .. }) if key.id == "primary" => {
                Err(AccountError::PrimaryExists)
            }
            Err(StoreError::Conflict { .. }) => Err(AccountError::EmailTaken(email)),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes an admin and ends its sessions.
    pub fn delete_admin(&self, tenant: &str, id: &str) -> Result<(), AccountError> {
        let admin = self
            .records()
            .admin(tenant, id)?
            .ok_or(AccountError::NotFound)?;
        self.records().delete_admin(&admin)?;
        Ok(())
    }

    /// Checks a password and opens a session; returns it and its token.
    /// `source` is the client's address (throttling counts failures per
    /// address and account: [`throttle`]).
    pub fn login(
        &self,
        source: Option<std::net::IpAddr>,
        tenant: &str,
        email: &str,
        password: &str,
    ) -> Result<(Session, String), AccountError> {
        let email = email.trim().to_lowercase();
        let key = throttle::Attempt::new(source, tenant, &email);
        let now = self.now();
        if let Some(retry_after_secs) = self.throttle.locked(&key, now) {
            return Err(AccountError::TooManyAttempts { retry_after_secs });
        }
        let _slot = self.password_checks.start()?;
        let admin = match self.records().tenant(tenant)? {
            Some(_) => self.records().admin_by_email(tenant, &email)?,
            None => None,
        };
        let hash = admin
            .as_ref()
            .map_or(secret::dummy_password_hash(), |a| a.password_hash.as_str());
        let ok = secret::verify_password(password, hash);
        let Some(admin) = admin.filter(|_| ok) else {
            self.throttle.failed(&key, now);
            return Err(AccountError::InvalidCredentials);
        };
        self.throttle.succeeded(&key);
        let id = new_id();
        let (token, hash) = new_token(TokenKind::Session, tenant, &id);
        let expires_at = now + self.sessions.absolute;
        let session = Session {
            tenant: tenant.to_owned(),
            id,
            admin_id: admin.id,
            secret_sha256: hash,
            created_at: now,
            last_seen: now,
            idle_expires_at: (now + self.sessions.idle).min(expires_at),
            expires_at,
        };
        self.records().insert_session(&session)?;
        Ok((session, token))
    }

    /// Ends the session of `principal` (no-op for API tokens).
    pub fn logout(&self, principal: &Principal) -> Result<(), AccountError> {
        if let PrincipalKind::Admin { session_id, .. } = &principal.kind {
            self.records()
                .delete_session(&principal.tenant, session_id)?;
        }
        Ok(())
    }

    /// Resolves a bearer token to a principal; every failure (malformed,
    /// unknown, tampered, expired, revoked, admin deleted) is
    /// [`AccountError::InvalidCredentials`].
    pub fn authenticate(&self, token: &str) -> Result<Principal, AccountError> {
        let p = parse_token(token).ok_or(AccountError::InvalidCredentials)?;
        let now = self.now();
        match p.kind {
            TokenKind::Session => {
                let mut s = self
                    .records()
                    .session(&p.tenant, &p.id)?
                    .filter(|s| secret_matches(&p.secret, &s.secret_sha256))
                    .ok_or(AccountError::InvalidCredentials)?;
                if now >= s.idle_expires_at || now >= s.expires_at {
                    self.records().delete_session(&s.tenant, &s.id)?;
                    return Err(AccountError::InvalidCredentials);
                }
                let admin = self
                    .records()
                    .admin(&s.tenant, &s.admin_id)?
                    .ok_or(AccountError::InvalidCredentials)?;
                if now - s.last_seen >= TOUCH_EVERY {
                    s.last_seen = now;
                    s.idle_expires_at = (now + self.sessions.idle).min(s.expires_at);
                    self.records().update_session(&s)?;
                }
                Ok(Principal {
                    tenant: s.tenant,
                    kind: PrincipalKind::Admin {
                        admin_id: admin.id,
                        session_id: s.id,
                        role: admin.role,
                    },
                })
            }
            TokenKind::Api => {
                let t = self
                    .records()
                    .api_token(&p.tenant, &p.id)?
                    .filter(|t| t.revoked_at.is_none())
                    .filter(|t| secret_matches(&p.secret, &t.secret_sha256))
                    .ok_or(AccountError::InvalidCredentials)?;
                Ok(Principal {
                    tenant: t.tenant,
                    kind: PrincipalKind::ApiToken {
                        token_id: t.id,
                        scope: t.scope,
                    },
                })
            }
            // Enrollment tokens and agent credentials never act for an admin.
            TokenKind::Enrollment | TokenKind::Agent => Err(AccountError::InvalidCredentials),
        }
    }

    /// Deletes every expired session (the server runs this periodically);
    /// returns how many.
    pub fn sweep_sessions(&self) -> Result<usize, AccountError> {
        let now = self.now();
        let expired: Vec<Session> = self
            .records()
            .all_sessions()?
            .into_iter()
            .filter(|s| now >= s.idle_expires_at || now >= s.expires_at)
            .collect();
        if !expired.is_empty() {
            self.records().delete_sessions(&expired)?;
        }
        Ok(expired.len())
    }

    /// Creates an API token; returns it and the token (shown once).
    pub fn create_api_token(
        &self,
        tenant: &str,
        name: &str,
        scope: ApiTokenScope,
        created_by: &str,
    ) -> Result<(ApiToken, String), AccountError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(AccountError::Invalid {
                field: "name",
                why: "must be 1 to 200 characters",
            });
        }
        let id = new_id();
        let (token, hash) = new_token(TokenKind::Api, tenant, &id);
        let record = ApiToken {
            tenant: tenant.to_owned(),
            id,
            name: name.to_owned(),
            scope,
            secret_sha256: hash,
            created_at: self.now(),
            created_by: created_by.to_owned(),
            revoked_at: None,
        };
        self.records().insert_api_token(&record)?;
        Ok((record, token))
    }

    /// Revokes an API token (idempotent).
    pub fn revoke_api_token(&self, tenant: &str, id: &str) -> Result<(), AccountError> {
        let mut t = self
            .records()
            .api_token(tenant, id)?
            .ok_or(AccountError::NotFound)?;
        if t.revoked_at.is_none() {
            t.revoked_at = Some(self.now());
            self.records().update_api_token(&t)?;
        }
        Ok(())
    }
}

fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

#[cfg(test)]
mod tests;
