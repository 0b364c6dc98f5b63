//! Where to connect (settings, or DNS SRV discovery), how (plain, StartTLS,
//! LDAPS over rustls with ring), the bind, the base DN (rootDSE) and the
//! membership search itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use catalog::checkin::LdapServerSettings;
use ldap3::{LdapConn, LdapConnSettings, Scope, SearchEntry, SearchOptions};
use rustls::pki_types::CertificateDer;
use rustls::ClientConfig;

use super::srv::{self, SrvTarget};
use super::LdapError;

/// Plain LDAP's port.
pub const LDAP_PORT: u16 = 389;
/// LDAPS's port.
pub const LDAPS_PORT: u16 = 636;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Security {
    /// No TLS.
    Plain,
    /// `ldap://` upgraded with the StartTLS extended operation.
    StartTls,
    /// TLS from the first byte (`ldaps://`).
    Ldaps,
}

/// One server to try.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS mode.
    pub security: Security,
}

impl Endpoint {
    /// The endpoint for `host` with the settings' port and TLS flag. Port 636
    /// is always LDAPS; with TLS, 389 means StartTLS and any other port LDAPS;
    /// without a port, TLS means 636 and no TLS `default_port`.
    pub fn new(host: &str, port: Option<u16>, tls: bool, default_port: u16) -> Self {
        let port = port.unwrap_or(if tls { LDAPS_PORT } else { default_port });
        let security = match (port, tls) {
            (LDAPS_PORT, _) => Security::Ldaps,
            (_, false) => Security::Plain,
            (LDAP_PORT, true) => Security::StartTls,
            (_, true) => Security::Ldaps,
        };
        Self {
            host: host.to_owned(),
            port,
            security,
        }
    }

    /// The URL given to the client.
    pub fn url(&self) -> String {
        let scheme = match self.security {
            Security::Ldaps => "ldaps",
            Security::Plain | Security::StartTls => "ldap",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}", self.port)
    }
}

/// How servers are discovered when the settings name none.
#[derive(Debug, Clone, Default)]
pub enum Discovery {
    /// The host's `/etc/resolv.conf`.
    #[default]
    System,
    /// These name servers and search domain (tests, special setups).
    Fixed {
        /// Name servers.
        servers: Vec<SocketAddr>,
        /// The search domain.
        search_domain: Option<String>,
    },
}

/// The DNS domain of a base DN's `DC=` components (`DC=x,DC=com` → `x.com`).
pub fn domain_of_dn(dn: &str) -> Option<String> {
    let parts: Vec<&str> = dn
        .split(',')
        .filter_map(|rdn| {
            let (k, v) = rdn.split_once('=')?;
            k.trim().eq_ignore_ascii_case("dc").then(|| v.trim())
        })
        .filter(|v| !v.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join("."))
}

/// Where the servers for a group's settings are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locator {
    /// The settings name the host.
    Named(Endpoint),
    /// DNS SRV records of `_ldap._tcp.<domain>`.
    Srv {
        /// The domain: the base DN's `DC=` parts, else the search domain.
        domain: String,
        /// The host's own domain (its search domain), if it has one.
        own_domain: Option<String>,
        /// The name servers to ask.
        servers: Vec<SocketAddr>,
    },
}

/// How to find the servers for these settings (no network yet).
pub fn locate(s: &LdapServerSettings, discovery: &Discovery) -> Result<Locator, LdapError> {
    if let Some(host) = s.host.as_deref().map(str::trim).filter(|h| !h.is_empty()) {
        return Ok(Locator::Named(Endpoint::new(
            host, s.port, s.tls, LDAP_PORT,
        )));
    }
    let (servers, search_domain) = match discovery {
        Discovery::System => srv::system_config()?,
        Discovery::Fixed {
            servers,
            search_domain,
        } => (servers.clone(), search_domain.clone()),
    };
    let domain = s
        .base_dn
        .as_deref()
        .and_then(domain_of_dn)
        .or_else(|| search_domain.clone())
        .ok_or(LdapError::NoServer)?;
    Ok(Locator::Srv {
        domain,
        own_domain: search_domain,
        servers,
    })
}

impl Locator {
    /// Whether the agent's own bind password may go to the servers found
    /// here: a host the signed definition names, or SRV discovery in the
    /// host's own domain — never a domain only the definition chose.
    pub fn check_own_password_may_go(&self, dn: &str) -> Result<(), LdapError> {
        match self {
            Locator::Named(_) => Ok(()),
            Locator::Srv {
                domain, own_domain, ..
            } => {
                let own = |d: &str| d.trim_end_matches('.').to_ascii_lowercase();
                if own_domain.as_deref().map(own) == Some(own(domain)) {
                    Ok(())
                } else {
                    Err(LdapError::PasswordOutsideDomain {
                        dn: dn.to_owned(),
                        domain: domain.clone(),
                        own_domain: own_domain.clone(),
                    })
                }
            }
        }
    }

    /// The servers to try, in order (a DNS query for [`Locator::Srv`]).
    pub fn endpoints(
        &self,
        s: &LdapServerSettings,
        timeout: Duration,
    ) -> Result<Vec<Endpoint>, LdapError> {
        let (domain, servers) = match self {
            Locator::Named(ep) => return Ok(vec![ep.clone()]),
            Locator::Srv {
                domain, servers, ..
            } => (domain, servers),
        };
        let name = format!("_ldap._tcp.{domain}");
        let targets = srv::lookup(&name, servers, timeout)?;
        if targets.is_empty() {
            return Err(LdapError::NoSrvRecords { name });
        }
        Ok(targets
            .iter()
            .map(|SrvTarget { host, port, .. }| Endpoint::new(host, s.port, s.tls, *port))
            .collect())
    }
}

/// The servers to try for these settings, in order.
pub fn endpoints(
    s: &LdapServerSettings,
    discovery: &Discovery,
    timeout: Duration,
) -> Result<Vec<Endpoint>, LdapError> {
    locate(s, discovery)?.endpoints(s, timeout)
}

/// A rustls client configuration with the ring provider, trusting the
/// system's roots and `extra`.
pub fn tls_config(extra: &[CertificateDer<'static>]) -> Result<Arc<ClientConfig>, LdapError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!("system certificate store: {e}");
    }
    roots.add_parsable_certificates(native.certs);
    for c in extra {
        roots
            .add(c.clone())
            .map_err(|e| LdapError::Tls(e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LdapError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A bound connection and its search base.
pub(crate) struct Session {
    conn: LdapConn,
    url: String,
    base: String,
    timeout: Duration,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("url", &self.url)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Connects, binds (simple bind with the DN and password, or anonymous
/// without a DN) and settles the base DN.
pub(crate) fn open(
    ep: &Endpoint,
    s: &LdapServerSettings,
    password: Option<&str>,
    tls: &Arc<ClientConfig>,
    timeout: Duration,
) -> Result<Session, LdapError> {
    let url = ep.url();
    let settings = LdapConnSettings::new()
        .set_conn_timeout(timeout)
        .set_config(tls.clone())
        .set_starttls(ep.security == Security::StartTls);
    let mut conn = LdapConn::with_settings(settings, &url).map_err(|e| LdapError::Connect {
        url: url.clone(),
        message: e.to_string(),
    })?;
    let dn = s
        .bind_dn
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty());
    let bound = match dn {
        Some(dn) => {
            // An empty password would make a simple bind "unauthenticated"
            // (RFC 4513 5.1.2), which servers accept as anonymous: refuse it.
            let pw = password
                .filter(|p| !p.is_empty())
                .ok_or_else(|| LdapError::BindNeedsPassword { dn: dn.to_owned() })?;
            conn.with_timeout(timeout).simple_bind(dn, pw)
        }
        None => conn.with_timeout(timeout).simple_bind("", ""),
    };
    bound
        .and_then(ldap3::LdapResult::success)
        .map_err(|e| LdapError::Bind {
            url: url.clone(),
            dn: dn.unwrap_or("(anonymous)").to_owned(),
            message: e.to_string(),
        })?;
    let base = match s
        .base_dn
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        Some(b) => b.to_owned(),
        None => root_dse_base(&mut conn, &url, timeout)?,
    };
    Ok(Session {
        conn,
        url,
        base,
        timeout,
    })
}

/// The default search base from the rootDSE: `defaultNamingContext` (Active
/// Directory), else the first of `namingContexts` (OpenLDAP and others).
fn root_dse_base(conn: &mut LdapConn, url: &str, timeout: Duration) -> Result<String, LdapError> {
    let err = |e: ldap3::LdapError| LdapError::Search {
        url: url.to_owned(),
        message: format!("rootDSE: {e}"),
    };
    let (entries, _) = conn
        .with_timeout(timeout)
        .search(
            "",
            Scope::Base,
            "(objectClass=*)",
            vec!["defaultNamingContext", "namingContexts"],
        )
        .and_then(ldap3::SearchResult::success)
        .map_err(err)?;
    let entry = entries
        .into_iter()
        .find(|e| !e.is_ref())
        .map(SearchEntry::construct);
    let pick = |attr: &str| {
        entry.as_ref().and_then(|e| {
            e.attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(attr))
                .and_then(|(_, v)| v.iter().find(|v| !v.is_empty()).cloned())
        })
    };
    pick("defaultNamingContext")
        .or_else(|| pick("namingContexts"))
        .ok_or_else(|| LdapError::NoBaseDn {
            url: url.to_owned(),
        })
}

impl Session {
    /// Whether `filter` (already expanded) matches at least one entry under
    /// the base. Referrals do not count; a size limit hit after a match is
    /// a match.
    pub(crate) fn matches(&mut self, filter: &str) -> Result<bool, LdapError> {
        let url = self.url.clone();
        let err = |message: String| LdapError::Search {
            url: url.clone(),
            message,
        };
        let result = self
            .conn
            .with_timeout(self.timeout)
            .with_search_options(SearchOptions::new().sizelimit(1))
            .search(&self.base, Scope::Subtree, filter, vec!["1.1"])
            .map_err(|e| err(e.to_string()))?;
        let found = result.0.iter().any(|e| !e.is_ref());
        match result.1.rc {
            0 => Ok(found),
            4 if found => Ok(true),
            rc => Err(err(format!(
                "result code {rc}: {}",
                if result.1.text.is_empty() {
                    "(no message)"
                } else {
                    &result.1.text
                }
            ))),
        }
    }

    /// The base searched.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// Ends the session politely.
    pub(crate) fn close(mut self) {
        let _ = self.conn.unbind();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_ports_and_tls() {
        use Security::{Ldaps, Plain, StartTls};
        // (port, tls, default port) -> (security, URL)
        for (port, tls, default, sec, url) in [
            (None, false, 389, Plain, "ldap://dc1:389"),
            (None, true, 389, Ldaps, "ldaps://dc1:636"),
            (Some(389), true, 389, StartTls, "ldap://dc1:389"),
            (Some(389), false, 389, Plain, "ldap://dc1:389"),
            (Some(636), false, 389, Ldaps, "ldaps://dc1:636"),
            (Some(636), true, 389, Ldaps, "ldaps://dc1:636"),
            (None, false, 3268, Plain, "ldap://dc1:3268"),
            (Some(3269), true, 389, Ldaps, "ldaps://dc1:3269"),
        ] {
            let e = Endpoint::new("dc1", port, tls, default);
            assert_eq!((e.security, e.url().as_str()), (sec, url), "{port:?} {tls}");
        }
        assert_eq!(
            Endpoint::new("::1", Some(389), false, 389).url(),
            "ldap://[::1]:389"
        );
    }

    #[test]
    fn domains_from_base_dns() {
        for (dn, want) in [
            ("DC=x,DC=com", Some("x.com")),
            ("OU=Groups, dc=corp ,DC=x,DC=com", Some("corp.x.com")),
            ("o=acme", None),
            ("", None),
        ] {
            assert_eq!(domain_of_dn(dn).as_deref(), want, "{dn}");
        }
    }

    #[test]
    fn settings_host_wins_and_blank_settings_need_a_domain() {
        let s = LdapServerSettings {
            host: Some("ldap.x.example".into()),
            tls: true,
            ..Default::default()
        };
        let fixed = Discovery::Fixed {
            servers: vec![],
            search_domain: None,
        };
        let got = endpoints(&s, &fixed, Duration::from_millis(10)).unwrap();
        assert_eq!(got, vec![Endpoint::new("ldap.x.example", None, true, 389)]);
        let blank = LdapServerSettings::default();
        assert!(matches!(
            endpoints(&blank, &fixed, Duration::from_millis(10)),
            Err(LdapError::NoServer)
        ));
    }
}
