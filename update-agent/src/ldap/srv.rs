//! DNS SRV discovery of the directory (`_ldap._tcp.<domain>`).
//!
//! Why not `hickory-resolver`: it is async only (a tokio runtime per lookup
//! in this synchronous agent), always carries its own cache (`moka`) and
//! several more crates, for one lookup at start and when the group
//! definitions change. This module uses the same project's message codec
//! (`hickory-proto`) and `resolv.conf` parser (`resolv-conf`) and does the
//! exchange itself: UDP to each configured name server in turn, the same
//! query over TCP when the answer is truncated, answers accepted only with
//! our random id and our question.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

/// Where the host's resolver configuration lives.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Why a SRV lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum SrvError {
    /// The name is not a valid DNS name.
    #[error("invalid DNS name {name:?}: {message}")]
    Name {
        /// The name.
        name: String,
        /// Why.
        message: String,
    },
    /// No name server answered.
    #[error("no name server answered for {name}: {last}")]
    NoAnswer {
        /// The name looked up.
        name: String,
        /// The last error.
        last: String,
    },
    /// The name server answered with an error code.
    #[error("DNS lookup of {name} failed: {code}")]
    Refused {
        /// The name looked up.
        name: String,
        /// The response code.
        code: String,
    },
    /// The resolver configuration cannot be read.
    #[error("cannot read {path}: {message}")]
    Config {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// One SRV target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvTarget {
    /// Lower is tried first.
    pub priority: u16,
    /// Higher is preferred among equal priorities.
    pub weight: u16,
    /// The port.
    pub port: u16,
    /// The host (no trailing dot).
    pub host: String,
}

/// The host's name servers and search domain (first `search` entry, else
/// `domain`), from `resolv.conf` text.
pub fn parse_resolv_conf(text: &[u8]) -> Result<(Vec<SocketAddr>, Option<String>), SrvError> {
    let c = resolv_conf::Config::parse(text).map_err(|e| SrvError::Config {
        path: RESOLV_CONF.into(),
        message: e.to_string(),
    })?;
    let servers = c
        .get_nameservers_or_local()
        .iter()
        .map(|ip| SocketAddr::new(IpAddr::from(ip), 53))
        .collect();
    let domain = c
        .get_search()
        .and_then(|s| s.first().cloned())
        .or_else(|| c.get_domain().cloned())
        .map(|d| d.trim_end_matches('.').to_owned())
        .filter(|d| !d.is_empty());
    Ok((servers, domain))
}

/// The host's resolver configuration (`/etc/resolv.conf`).
pub fn system_config() -> Result<(Vec<SocketAddr>, Option<String>), SrvError> {
    let text = std::fs::read(RESOLV_CONF).map_err(|e| SrvError::Config {
        path: RESOLV_CONF.into(),
        message: e.to_string(),
    })?;
    parse_resolv_conf(&text)
}

/// Looks up the SRV records of `name`, asking `servers` in turn; targets
/// sorted by priority, then higher weight first. An empty answer (or
/// NXDOMAIN) is an empty list.
pub fn lookup(
    name: &str,
    servers: &[SocketAddr],
    timeout: Duration,
) -> Result<Vec<SrvTarget>, SrvError> {
    let qname = Name::from_ascii(format!("{}.", name.trim_end_matches('.'))).map_err(|e| {
        SrvError::Name {
            name: name.into(),
            message: e.to_string(),
        }
    })?;
    let mut last = String::from("no name server configured");
    for server in servers {
        match exchange(&qname, *server, timeout) {
            Ok(answer) => return targets(name, answer),
            Err(e) => last = format!("{server}: {e}"),
        }
    }
    Err(SrvError::NoAnswer {
        name: name.into(),
        last,
    })
}

fn targets(name: &str, answer: Message) -> Result<Vec<SrvTarget>, SrvError> {
    match answer.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return Ok(Vec::new()),
        code => {
            return Err(SrvError::Refused {
                name: name.into(),
                code: code.to_string(),
            })
        }
    }
    let mut out: Vec<SrvTarget> = answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some(SrvTarget {
                priority: srv.priority,
                weight: srv.weight,
                port: srv.port,
                host: srv.target.to_ascii().trim_end_matches('.').to_owned(),
            }),
            _ => None,
        })
        // RFC 2782: a target of "." means the service is not available.
        .filter(|t| !t.host.is_empty() && t.port != 0)
        .collect();
    out.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.weight.cmp(&a.weight))
            .then(a.host.cmp(&b.host))
    });
    Ok(out)
}

/// One query to one server: UDP, then TCP when truncated.
fn exchange(qname: &Name, server: SocketAddr, timeout: Duration) -> Result<Message, String> {
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(qname.clone(), RecordType::SRV));
    let id = query.metadata.id;
    let bytes = query.to_vec().map_err(|e| e.to_string())?;
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    sock.connect(server).map_err(|e| e.to_string())?;
    sock.send(&bytes).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    let answer = loop {
        let n = sock.recv(&mut buf).map_err(|e| e.to_string())?;
        // Datagrams that are not the answer to this query are ignored.
        if let Some(m) = matching(&buf[..n], id, qname) {
            break m;
        }
    };
    if !answer.metadata.truncation {
        return Ok(answer);
    }
    let mut tcp = TcpStream::connect_timeout(&server, timeout).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let len = u16::try_from(bytes.len()).map_err(|e| e.to_string())?;
    tcp.write_all(&len.to_be_bytes())
        .and_then(|()| tcp.write_all(&bytes))
        .map_err(|e| e.to_string())?;
    let mut len = [0u8; 2];
    tcp.read_exact(&mut len).map_err(|e| e.to_string())?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tcp.read_exact(&mut body).map_err(|e| e.to_string())?;
    matching(&body, id, qname).ok_or_else(|| "the TCP answer does not match the query".into())
}

fn matching(bytes: &[u8], id: u16, qname: &Name) -> Option<Message> {
    let m = Message::from_vec(bytes).ok()?;
    let ours = m.metadata.id == id
        && m.metadata.message_type == MessageType::Response
        && m.queries.len() == 1
        && m.queries[0].name() == qname
        && m.queries[0].query_type() == RecordType::SRV;
    ours.then_some(m)
}

#[cfg(test)]
mod tests;
