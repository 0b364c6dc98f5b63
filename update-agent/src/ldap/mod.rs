//! LDAP groups: the agent evaluates the tenant's LDAP group filters for each
//! logged-in account and reports the matching group ids at check-in
//! ([`catalog::checkin::CheckIn::ldap_memberships`]); the server picks the
//! highest-priority group.
//!
//! - `$user$` is replaced by the account name escaped per RFC 4515
//!   ([`filter`]), so a name cannot change the filter.
//! - The server is the group's `host`, else discovered by DNS SRV
//!   `_ldap._tcp.<domain>` ([`srv`]), the domain being the `DC=` parts of the
//!   group's base DN or the host's search domain. Port 636 is LDAPS, 389
//!   plain or StartTLS with the TLS flag ([`conn::Endpoint`]); TLS is rustls
//!   with ring, trusting the system's roots and the agent's CA file.
//! - Simple bind with the bind DN and password (a DN without a password is
//!   refused, never sent as an unauthenticated bind), anonymous without a DN.
//!   The agent's own password ([`BIND_PASSWORD_ENV`]) is sent only over TLS
//!   and only to a host the signed definition names or one found by SRV in
//!   the host's own (search) domain, never in a domain the definition chose.
//! - The base DN is the group's, else the rootDSE's `defaultNamingContext`
//!   (Active Directory) or first `namingContexts` (OpenLDAP).
//! - Active Directory and OpenLDAP differ in attributes (`sAMAccountName` /
//!   `userPrincipalName` / `memberOf` vs `uid` / `groupOfNames` `member`):
//!   the admin's filter names them; the agent only substitutes `$user$`.
//! - Evaluated at agent start and whenever the definitions change (their
//!   SHA-256 is kept with them in the state), and for accounts that log in
//!   later. Any error (no server, refused bind, bad filter) is logged with
//!   its reason and counts as no membership.

pub mod conn;
pub mod filter;
pub mod srv;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use catalog::checkin::{AccountRules, LdapGroupDefinition};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use conn::{Discovery, Endpoint, Security};

use crate::state::{State, StateError};

/// The environment variable holding the bind password used when a group
/// names a bind DN and the server sent no password.
pub const BIND_PASSWORD_ENV: &str = "UPDATE_AGENT_LDAP_BIND_PASSWORD";

/// Why one group could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    /// No host in the settings and no domain to discover one in.
    #[error("no LDAP server: the group names no host, its base DN no DC= domain, and the host has no search domain")]
    NoServer,
    /// DNS SRV discovery found nothing.
    #[error("no LDAP server found: {name} has no SRV records")]
    NoSrvRecords {
        /// The name looked up.
        name: String,
    },
    /// DNS SRV discovery failed.
    #[error(transparent)]
    Discovery(#[from] srv::SrvError),
    /// The server cannot be reached (or TLS failed).
    #[error("cannot connect to {url}: {message}")]
    Connect {
        /// The server.
        url: String,
        /// Why.
        message: String,
    },
    /// A bind DN without a password.
    #[error("bind DN {dn} has no password (set {BIND_PASSWORD_ENV}); an empty password would bind anonymously")]
    BindNeedsPassword {
        /// The DN.
        dn: String,
    },
    /// The agent's own bind password would cross the network in clear.
    #[error("bind as {dn} to {url}: the agent's bind password ({BIND_PASSWORD_ENV}) is sent only over TLS; the group's signed server settings say plain LDAP (set tls: StartTLS on 389 or LDAPS)")]
    PasswordNeedsTls {
        /// The server.
        url: String,
        /// Who.
        dn: String,
    },
    /// The agent's own bind password would go to servers of a domain the
    /// signed definition chose rather than the host's own.
    #[error("bind as {dn}: the agent's bind password ({BIND_PASSWORD_ENV}) goes only to a server the group names or one found by DNS SRV in this host's own domain ({}); the group's base DN points discovery at {domain}", own_domain.as_deref().unwrap_or("none: no search domain"))]
    PasswordOutsideDomain {
        /// Who.
        dn: String,
        /// The domain discovery would search.
        domain: String,
        /// The host's own (search) domain.
        own_domain: Option<String>,
    },
    /// The server refused the bind.
    #[error("bind as {dn} to {url} refused: {message}")]
    Bind {
        /// The server.
        url: String,
        /// Who.
        dn: String,
        /// Why.
        message: String,
    },
    /// The search failed (bad filter, no such base, no access).
    #[error("search on {url} failed: {message}")]
    Search {
        /// The server.
        url: String,
        /// Why.
        message: String,
    },
    /// No base DN given and the rootDSE names none.
    #[error("no base DN: the group names none and the rootDSE of {url} has no naming context")]
    NoBaseDn {
        /// The server.
        url: String,
    },
    /// The TLS configuration.
    #[error("TLS: {0}")]
    Tls(String),
    /// The CA file.
    #[error("CA file {path}: {message}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// Evaluates LDAP group filters against directory servers.
#[derive(Debug, Clone)]
pub struct Evaluator {
    extra_roots: Vec<CertificateDer<'static>>,
    timeout: Duration,
    bind_password: Option<String>,
    discovery: Discovery,
    tls: Arc<OnceLock<Result<Arc<rustls::ClientConfig>, String>>>,
}

impl Default for Evaluator {
    fn default() -> Self {
        Self::new()
    }
}

impl Evaluator {
    /// System roots, system DNS, 10 s timeouts, the bind password from
    /// [`BIND_PASSWORD_ENV`] when set.
    pub fn new() -> Self {
        Self {
            extra_roots: Vec::new(),
            timeout: Duration::from_secs(10),
            bind_password: std::env::var(BIND_PASSWORD_ENV)
                .ok()
                .filter(|p| !p.is_empty()),
            discovery: Discovery::System,
            tls: Arc::default(),
        }
    }

    /// Also trusts the certificates of a PEM file (the agent's `ca_cert`).
    pub fn with_ca_file(self, path: &Path) -> Result<Self, LdapError> {
        let err = |message: String| LdapError::CaFile {
            path: path.display().to_string(),
            message,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| err(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| err(e.to_string()))?;
        if certs.is_empty() {
            return Err(err("no certificate in the file".into()));
        }
        Ok(self.with_roots(certs))
    }

    /// Also trusts these certificates.
    pub fn with_roots(mut self, certs: Vec<CertificateDer<'static>>) -> Self {
        self.extra_roots.extend(certs);
        self.tls = Arc::default();
        self
    }

    /// Connect and operation timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The bind password for groups whose settings carry none.
    pub fn with_bind_password(mut self, password: Option<String>) -> Self {
        self.bind_password = password.filter(|p| !p.is_empty());
        self
    }

    /// How servers are discovered.
    pub fn with_discovery(mut self, discovery: Discovery) -> Self {
        self.discovery = discovery;
        self
    }

    fn tls(&self) -> Result<Arc<rustls::ClientConfig>, LdapError> {
        self.tls
            .get_or_init(|| conn::tls_config(&self.extra_roots).map_err(|e| e.to_string()))
            .clone()
            .map_err(LdapError::Tls)
    }

    /// The DN the agent's own password would be sent for: the group names a
    /// bind DN but no password of its own.
    fn own_password_dn<'a>(&self, g: &'a LdapGroupDefinition) -> Option<&'a str> {
        let dn = g.server.bind_dn.as_deref().map(str::trim).unwrap_or("");
        (g.server.bind_password.is_none() && self.bind_password.is_some() && !dn.is_empty())
            .then_some(dn)
    }

    /// The password to bind to `ep` with: the definition's, else the
    /// agent's own, which is sent only over TLS (refused before any
    /// connection otherwise).
    fn password_for<'a>(
        &'a self,
        g: &'a LdapGroupDefinition,
        ep: &Endpoint,
    ) -> Result<Option<&'a str>, LdapError> {
        if let Some(p) = g.server.bind_password.as_deref() {
            return Ok(Some(p));
        }
        match self.own_password_dn(g) {
            Some(dn) if ep.security == conn::Security::Plain => Err(LdapError::PasswordNeedsTls {
                url: ep.url(),
                dn: dn.to_owned(),
            }),
            _ => Ok(self.bind_password.as_deref()),
        }
    }

    /// Opens a bound session for the group's settings, trying each
    /// discovered server in turn. The agent's own password goes only to a
    /// named host or to SRV discovery in the host's own domain (refused
    /// before any DNS query otherwise).
    fn session(&self, g: &LdapGroupDefinition) -> Result<conn::Session, LdapError> {
        let tls = self.tls()?;
        let mut last = LdapError::NoServer;
        let locator = conn::locate(&g.server, &self.discovery)?;
        if let Some(dn) = self.own_password_dn(g) {
            locator.check_own_password_may_go(dn)?;
        }
        for ep in locator.endpoints(&g.server, self.timeout)? {
            let password = self.password_for(g, &ep)?;
            match conn::open(&ep, &g.server, password, &tls, self.timeout) {
                Ok(s) => return Ok(s),
                // Another server will not accept what this one refused.
                Err(e @ (LdapError::Bind { .. } | LdapError::BindNeedsPassword { .. })) => {
                    return Err(e)
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Whether `account` is in the group (one connection, one search).
    pub fn is_member(&self, g: &LdapGroupDefinition, account: &str) -> Result<bool, LdapError> {
        let mut s = self.session(g)?;
        let found = s.matches(&filter::expand(&g.filter, account));
        s.close();
        found
    }

    /// Whether `account` is in the group, asking `endpoint` (whatever the
    /// group's host and port say; e.g. StartTLS on a port other than 389).
    pub fn is_member_at(
        &self,
        endpoint: &Endpoint,
        g: &LdapGroupDefinition,
        account: &str,
    ) -> Result<bool, LdapError> {
        let password = self.password_for(g, endpoint)?;
        let mut s = conn::open(endpoint, &g.server, password, &self.tls()?, self.timeout)?;
        let found = s.matches(&filter::expand(&g.filter, account));
        s.close();
        found
    }

    /// The ids of the groups each account is in (accounts with none are
    /// left out). Groups sharing server settings share one connection;
    /// every failure is logged and counts as no membership.
    pub fn evaluate(
        &self,
        groups: &[LdapGroupDefinition],
        accounts: &[String],
    ) -> BTreeMap<String, Vec<String>> {
        self.evaluate_all(groups, accounts).0
    }

    /// [`Self::evaluate`], and whether every group could be evaluated.
    fn evaluate_all(
        &self,
        groups: &[LdapGroupDefinition],
        accounts: &[String],
    ) -> (BTreeMap<String, Vec<String>>, bool) {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut complete = true;
        if accounts.is_empty() {
            return (out, complete);
        }
        let mut sessions: HashMap<String, Option<conn::Session>> = HashMap::new();
        for g in groups {
            let key = serde_json::to_string(&g.server).unwrap_or_default();
            let session = sessions
                .entry(key)
                .or_insert_with(|| match self.session(g) {
                    Ok(s) => {
                        tracing::debug!("LDAP group {}: searching under {}", g.id, s.base());
                        Some(s)
                    }
                    Err(e) => {
                        tracing::warn!("LDAP group {}: no membership evaluated: {e}", g.id);
                        None
                    }
                });
            let Some(s) = session.as_mut() else {
                complete = false;
                continue;
            };
            for account in accounts {
                match s.matches(&filter::expand(&g.filter, account)) {
                    Ok(true) => out.entry(account.clone()).or_default().push(g.id.clone()),
                    Ok(false) => {}
                    Err(e) => {
                        complete = false;
                        tracing::warn!("LDAP group {} for {account}: no membership: {e}", g.id)
                    }
                }
            }
        }
        for s in sessions.into_values().flatten() {
            s.close();
        }
        (out, complete)
    }
}

/// The best (lowest priority number) of the groups an account matched.
pub fn best_group<'g>(
    groups: &'g [LdapGroupDefinition],
    matched: &[String],
) -> Option<&'g LdapGroupDefinition> {
    groups
        .iter()
        .filter(|g| matched.contains(&g.id))
        .min_by_key(|g| g.priority)
}

/// The tenant's directory settings as last received, kept in the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StoredDirectory {
    /// SHA-256 (hex) of the LDAP group definitions.
    pub sha256: String,
    /// The LDAP groups.
    pub ldap_groups: Vec<LdapGroupDefinition>,
    /// Shared and excluded accounts.
    pub accounts: AccountRules,
}

/// SHA-256 (hex) of the definitions, independent of their order.
pub fn definitions_sha256(groups: &[LdapGroupDefinition]) -> String {
    let mut sorted: Vec<&LdapGroupDefinition> = groups.iter().collect();
    sorted.sort_by(|a, b| (a.priority, &a.id).cmp(&(b.priority, &b.id)));
    hex::encode(Sha256::digest(
        serde_json::to_vec(&sorted).unwrap_or_default(),
    ))
}

#[derive(Debug, Default)]
struct Evaluated {
    sha256: Option<String>,
    accounts: BTreeSet<String>,
    memberships: BTreeMap<String, Vec<String>>,
}

/// The agent's LDAP memberships: evaluated once per process for the
/// definitions in the state (so at agent start), again when they change,
/// and for accounts seen for the first time. An evaluation with errors
/// (directory unreachable, …) is tried again at the next report.
#[derive(Debug)]
pub struct LdapGroups {
    evaluator: Evaluator,
    evaluated: Mutex<Evaluated>,
}

impl LdapGroups {
    /// Nothing evaluated yet.
    pub fn new(evaluator: Evaluator) -> Self {
        Self {
            evaluator,
            evaluated: Mutex::default(),
        }
    }

    /// The stored directory settings (empty before the first check-in).
    pub fn stored(state: &State) -> Result<StoredDirectory, StateError> {
        Ok(state.directory()?.unwrap_or_default())
    }

    /// Stores the definitions and account rules of a check-in answer; true
    /// when the LDAP definitions changed (memberships are then evaluated
    /// again at the next report).
    pub fn update(
        &self,
        state: &State,
        groups: &[LdapGroupDefinition],
        accounts: &AccountRules,
    ) -> Result<bool, StateError> {
        let old = state.directory()?;
        let sha256 = definitions_sha256(groups);
        let changed = old.as_ref().map(|o| o.sha256.as_str()) != Some(sha256.as_str());
        let new = StoredDirectory {
            sha256,
            ldap_groups: groups.to_vec(),
            accounts: accounts.clone(),
        };
        if old.as_ref() != Some(&new) {
            state.put_directory(&new)?;
        }
        Ok(changed)
    }

    /// The memberships of `accounts` under the stored definitions.
    pub fn memberships(
        &self,
        state: &State,
        accounts: &[String],
    ) -> Result<BTreeMap<String, Vec<String>>, StateError> {
        let dir = Self::stored(state)?;
        let mut ev = self.evaluated.lock().unwrap_or_else(|p| p.into_inner());
        if ev.sha256.as_deref() != Some(dir.sha256.as_str()) {
            *ev = Evaluated {
                sha256: Some(dir.sha256.clone()),
                ..Evaluated::default()
            };
        }
        let new: Vec<String> = accounts
            .iter()
            .filter(|a| !ev.accounts.contains(*a))
            .cloned()
            .collect();
        if !new.is_empty() && !dir.ldap_groups.is_empty() {
            tracing::info!(
                "evaluating {} LDAP group(s) for {} account(s)",
                dir.ldap_groups.len(),
                new.len()
            );
            let (found, complete) = self.evaluator.evaluate_all(&dir.ldap_groups, &new);
            for a in &new {
                ev.memberships.remove(a);
            }
            ev.memberships.extend(found);
            if !complete {
                // Not marked as evaluated: asked again at the next report.
                return Ok(pick(&ev.memberships, accounts));
            }
        }
        ev.accounts.extend(new);
        Ok(pick(&ev.memberships, accounts))
    }
}

fn pick(
    memberships: &BTreeMap<String, Vec<String>>,
    accounts: &[String],
) -> BTreeMap<String, Vec<String>> {
    accounts
        .iter()
        .filter_map(|a| memberships.get(a).map(|g| (a.clone(), g.clone())))
        .collect()
}

#[cfg(test)]
mod tests;
