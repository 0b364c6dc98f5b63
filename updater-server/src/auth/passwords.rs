//! Passwords of admin accounts: the rule for new ones, an admin changing
//! their own, a full admin's (or the host's) reset.

use super::{secret, AccountError, Accounts, Principal, PrincipalKind};

/// The one rule for new passwords, and their hash.
pub(super) fn new_password_hash(password: &str) -> Result<String, AccountError> {
    if password.chars().count() < 12 {
        return Err(AccountError::Invalid {
            field: "password",
            why: "must be at least 12 characters",
        });
    }
    secret::hash_password(password).map_err(|e| AccountError::Password(e.to_string()))
}

impl Accounts {
    /// Sets another admin's password (a full admin's reset, or the CLI on
    /// the server host): every session of that admin ends.
    pub fn reset_password(
        &self,
        tenant: &str,
        admin_id: &str,
        password: &str,
    ) -> Result<(), AccountError> {
        let mut admin = self
            .records()
            .admin(tenant, admin_id)?
            .ok_or(AccountError::NotFound)?;
        admin.password_hash = new_password_hash(password)?;
        self.records().update_admin_ending_sessions(&admin, None)?;
        Ok(())
    }

    /// A signed-in admin changes their own password: the current one must
    /// be right (wrong ones count towards the login lock-out, as at login),
    /// and their other sessions end; this one goes on.
    pub fn change_own_password(
        &self,
        principal: &Principal,
        current: &str,
        new: &str,
    ) -> Result<(), AccountError> {
        let PrincipalKind::Admin {
            admin_id,
            session_id,
            ..
        } = &principal.kind
        else {
            return Err(AccountError::NotAnAdmin);
        };
        let tenant = principal.tenant.as_str();
        let mut admin = self
            .records()
            .admin(tenant, admin_id)?
            .ok_or(AccountError::NotFound)?;
        // Signed in: the account's own count, whatever the address.
        let key = super::throttle::Attempt::new(None, tenant, &admin.email);
        let now = self.now();
        if let Some(retry_after_secs) = self.throttle.locked(&key, now) {
            return Err(AccountError::TooManyAttempts { retry_after_secs });
        }
        let _slot = self.password_checks.start()?;
        if !secret::verify_password(current, &admin.password_hash) {
            self.throttle.failed(&key, now);
            return Err(AccountError::Invalid {
                field: "current_password",
                why: "is not your current password",
            });
        }
        admin.password_hash = new_password_hash(new)?;
        self.records()
            .update_admin_ending_sessions(&admin, Some(session_id))?;
        Ok(())
    }
}
