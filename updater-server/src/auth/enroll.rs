//! Agent enrollment: a tenant's enrollment token buys a per-agent credential.
//!
//! Hosts are identified by the SystemID their installer gave them, and
//! machines by a fingerprint the agent derives from the hardware / OS install.
//! The same SystemID from the same machine is a re-enrollment (new credential,
//! same agent); from a different machine it is a suspected clone (an agent
//! baked into a base image): a separate agent with `clone_of` set, never
//! merged into the first one.

use super::secret::{new_id, new_token, parse_token, secret_matches, TokenKind};
use super::{AccountError, Accounts};
use crate::store::{Agent, StoreError};

/// An enrollment request.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// The tenant id (`TENANT_ID` of the installer).
    pub tenant: String,
    /// The enrollment token (`TENANT_TOKEN`).
    pub token: String,
    /// The host's SystemID.
    pub system_id: String,
    /// The machine's fingerprint.
    pub machine_fingerprint: String,
    /// Host name.
    pub hostname: String,
    /// Operating system.
    pub os: String,
}

/// The outcome of an enrollment.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The agent as stored.
    pub agent: Agent,
    /// Its credential (shown once).
    pub credential: String,
    /// The same machine enrolled before: the old credential was replaced.
    pub reenrolled: bool,
}

fn id_like(field: &'static str, s: &str) -> Result<(), AccountError> {
    let ok = (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'{' | b'}'));
    if ok {
        Ok(())
    } else {
        Err(AccountError::Invalid {
            field,
            why: "must be 1 to 128 characters of A-Z a-z 0-9 - _ . { }",
        })
    }
}

fn text(field: &'static str, s: &str, max: usize) -> Result<(), AccountError> {
    if s.is_empty() || s.len() > max || s.chars().any(char::is_control) {
        return Err(AccountError::Invalid {
            field,
            why: "must be non-empty printable text of bounded length",
        });
    }
    Ok(())
}

impl Accounts {
    /// Enrolls an agent (see the module docs for re-enrollment and clones).
    /// A wrong tenant or token is [`AccountError::InvalidCredentials`].
    pub fn enroll(&self, req: &Enrollment) -> Result<Enrolled, AccountError> {
        id_like("system_id", &req.system_id)?;
        id_like("machine_fingerprint", &req.machine_fingerprint)?;
        text("hostname", &req.hostname, 255)?;
        text("os", &req.os, 200)?;
        if !self.check_enrollment_token(&req.tenant, &req.token)? {
            return Err(AccountError::InvalidCredentials);
        }
        match self.enroll_once(req) {
            // Another enrollment of the same SystemID committed in between:
            // decide again on the new state.
            Err(AccountError::Store(StoreError::Conflict { .. })) => self.enroll_once(req),
            other => other,
        }
    }

    fn enroll_once(&self, req: &Enrollment) -> Result<Enrolled, AccountError> {
        let tenant = req.tenant.as_str();
        let records = self.records();
        let machine_claim = format!("machine:{}:{}", req.system_id, req.machine_fingerprint);
        let system_claim = format!("system:{}", req.system_id);
        let now = self.now();
        if let Some(id) = records.claim(tenant, &machine_claim)? {
            let mut agent = records.agent(tenant, &id)?.ok_or(AccountError::NotFound)?;
            let (credential, hash) = new_token(TokenKind::Agent, tenant, &agent.id);
            agent.credential_sha256 = hash;
            agent.credential_issued_at = now;
            agent.hostname.clone_from(&req.hostname);
            agent.os.clone_from(&req.os);
            records.update_agent(&agent)?;
            return Ok(Enrolled {
                agent,
                credential,
                reenrolled: true,
            });
        }
        let first = records.claim(tenant, &system_claim)?;
        let id = new_id();
        let (credential, hash) = new_token(TokenKind::Agent, tenant, &id);
        let agent = Agent {
            tenant: tenant.to_owned(),
            id,
            system_id: req.system_id.clone(),
            machine_fingerprint: req.machine_fingerprint.clone(),
            hostname: req.hostname.clone(),
            os: req.os.clone(),
            enrolled_at: now,
            credential_issued_at: now,
            credential_sha256: hash,
            clone_of: first.clone(),
        };
        let mut claims = vec![machine_claim];
        if first.is_none() {
            claims.push(system_claim);
        }
        records.insert_agent(&agent, &claims)?;
        if let Some(original) = &agent.clone_of {
            tracing::warn!(
                tenant,
                agent = %agent.id,
                original = %original,
                system_id = %agent.system_id,
                "suspected clone: SystemID already enrolled from another machine"
            );
        }
        Ok(Enrolled {
            agent,
            credential,
            reenrolled: false,
        })
    }

    /// Resolves an agent credential to its agent.
    pub fn authenticate_agent(&self, token: &str) -> Result<Agent, AccountError> {
        let p = parse_token(token)
            .filter(|p| p.kind == TokenKind::Agent)
            .ok_or(AccountError::InvalidCredentials)?;
        self.records()
            .agent(&p.tenant, &p.id)?
            .filter(|a| secret_matches(&p.secret, &a.credential_sha256))
            .ok_or(AccountError::InvalidCredentials)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::auth::{SessionPolicy, SystemClock};
    use crate::store::RedbStore;

    fn req(tenant: &str, token: &str, system: &str, machine: &str) -> Enrollment {
        Enrollment {
            tenant: tenant.into(),
            token: token.into(),
            system_id: system.into(),
            machine_fingerprint: machine.into(),
            hostname: "ws-17".into(),
            os: "Windows 11 23H2".into(),
        }
    }

    #[test]
    fn reenrollment_clones_and_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::open(&dir.path().join("s.redb")).unwrap());
        let accounts = Accounts::new(
            store,
            Arc::new(SystemClock),
            dir.path().join("keys"),
            SessionPolicy::default(),
        );
        let (t, token) = accounts.create_tenant("Acme").unwrap();
        let (other, other_token) = accounts.create_tenant("Other").unwrap();

        let first = accounts
            .enroll(&req(&t.id, &token, "{SYS-1}", "m1"))
            .unwrap();
        assert!(!first.reenrolled);
        assert_eq!(first.agent.clone_of, None);
        assert_eq!(
            accounts.authenticate_agent(&first.credential).unwrap().id,
            first.agent.id
        );
        // An agent credential is not an admin credential.
        assert!(accounts.authenticate(&first.credential).is_err());

        // Same machine again: same agent, new credential, old one dead.
        let again = accounts
            .enroll(&req(&t.id, &token, "{SYS-1}", "m1"))
            .unwrap();
        assert!(again.reenrolled);
        assert_eq!(again.agent.id, first.agent.id);
        assert!(accounts.authenticate_agent(&first.credential).is_err());
        assert!(accounts.authenticate_agent(&again.credential).is_ok());

        // Same SystemID from two other machines: two suspected clones of the first.
        let c1 = accounts
            .enroll(&req(&t.id, &token, "{SYS-1}", "m2"))
            .unwrap();
        let c2 = accounts
            .enroll(&req(&t.id, &token, "{SYS-1}", "m3"))
            .unwrap();
        for c in [&c1, &c2] {
            assert!(!c.reenrolled);
            assert_ne!(c.agent.id, first.agent.id);
            assert_eq!(c.agent.clone_of.as_deref(), Some(first.agent.id.as_str()));
        }
        assert_eq!(accounts.records().agents(&t.id).unwrap().len(), 3);
        // The same SystemID in another tenant is unrelated.
        let o = accounts
            .enroll(&req(&other.id, &other_token, "{SYS-1}", "m2"))
            .unwrap();
        assert_eq!(o.agent.clone_of, None);

        // Wrong, rotated, revoked or other-tenant tokens enroll nothing.
        let rotated = accounts.rotate_enrollment_token(&t.id).unwrap();
        for (tenant, tok) in [
            (t.id.as_str(), token.as_str()),
            (t.id.as_str(), other_token.as_str()),
            ("ffffffffffffffff", rotated.as_str()),
            (t.id.as_str(), first.credential.as_str()),
        ] {
            assert!(matches!(
                accounts.enroll(&req(tenant, tok, "{SYS-2}", "m9")),
                Err(AccountError::InvalidCredentials)
            ));
        }
        accounts
            .enroll(&req(&t.id, &rotated, "{SYS-2}", "m9"))
            .unwrap();
        accounts.revoke_enrollment_token(&t.id).unwrap();
        assert!(accounts
            .enroll(&req(&t.id, &rotated, "{SYS-3}", "m9"))
            .is_err());

        for bad in [
            req(&t.id, &rotated, "", "m1"),
            req(&t.id, &rotated, "a:b", "m1"),
            req(&t.id, &rotated, "ok", &"f".repeat(129)),
        ] {
            assert!(matches!(
                accounts.enroll(&bad),
                Err(AccountError::Invalid { .. })
            ));
        }
    }
}
