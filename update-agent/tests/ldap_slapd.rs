//! LDAP groups against a real OpenLDAP `slapd` started on loopback ports:
//! REFERENCE.md's filters (an Active Directory style filter on a small
//! AD-like schema, and OpenLDAP `uid` / `memberOf` / `memberUid` filters),
//! the best group by priority, bind failures, LDAPS and StartTLS with a
//! certificate made here, DNS SRV and rootDSE discovery, re-evaluation when
//! the definitions change, and hostile account names.
//!
//! Needs `slapd` and `ldap-utils` (`apt-get install slapd ldap-utils`); fails
//! when they are missing.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use catalog::checkin::{AccountRules, DirectoryKind, LdapGroupDefinition, LdapServerSettings};
use rustls::pki_types::CertificateDer;
use update_agent::ldap::{
    best_group, Discovery, Endpoint, Evaluator, LdapError, LdapGroups, Security,
};
use update_agent::state::State;

const INSTALL: &str = "apt-get install slapd ldap-utils";
const SUFFIX: &str = "dc=x,dc=com";
const ADMIN: &str = "cn=admin,dc=x,dc=com";
const ADMIN_PW: &str = "admin-secret";
const READER: &str = "cn=reader,dc=x,dc=com";
const READER_PW: &str = "reader-secret";

/// REFERENCE.md's Active Directory example.
const AD_SALES: &str = "(&(objectCategory=person)(objectClass=user)(sAMAccountName=$user$)(memberof=CN=Sales,OU=Groups,DC=x,DC=com))";
/// The OpenLDAP equivalents: memberOf (overlay) and posixGroup memberUid.
const OL_ENG: &str =
    "(&(objectClass=inetOrgPerson)(uid=$user$)(memberOf=cn=eng,ou=groups,dc=x,dc=com))";
const OL_POSIX_OPS: &str = "(&(objectClass=posixGroup)(cn=ops)(memberUid=$user$))";
const UPN: &str = "(&(objectClass=user)(userPrincipalName=$user$@x.com))";

/// A small AD-like schema (test OIDs under the example arc): the attributes
/// REFERENCE.md's filter names, with equality rules so they can be searched.
const AD_SCHEMA: &str = "\
attributetype ( 1.3.6.1.4.1.55555.1.1 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.2 NAME 'objectCategory'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.3 NAME 'userPrincipalName'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.55555.2.1 NAME 'user' SUP inetOrgPerson STRUCTURAL
  MAY ( sAMAccountName $ objectCategory $ userPrincipalName ) )
";

fn person(uid: &str, rdn: &str) -> String {
    format!(
        "dn: {rdn},ou=people,dc=x,dc=com\nobjectClass: user\ncn: {uid}\nsn: {uid}\nuid: {uid}\n\
         sAMAccountName: {uid}\nuserPrincipalName: {uid}@x.com\nobjectCategory: person\n\n"
    )
}

/// The directory: people first, then groups (the memberOf overlay fills
/// the people's memberOf when the groups are added over the protocol).
fn directory_ldif() -> String {
    let mut l = format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: x\no: X\n\n\
         dn: {READER}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\nuserPassword: {READER_PW}\n\n\
         dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n"
    );
    for uid in ["ann", "bob", "carl", "admin"] {
        l += &person(uid, &format!("uid={uid}"));
    }
    // A real account whose name holds a backslash.
    l += &person("a\\b", "cn=odd");
    l += "dn: cn=Sales,ou=groups,dc=x,dc=com\nobjectClass: groupOfNames\ncn: Sales\n\
          member: uid=ann,ou=people,dc=x,dc=com\nmember: uid=admin,ou=people,dc=x,dc=com\n\
          member: cn=odd,ou=people,dc=x,dc=com\n\n";
    l += "dn: cn=eng,ou=groups,dc=x,dc=com\nobjectClass: groupOfNames\ncn: eng\n\
          member: uid=ann,ou=people,dc=x,dc=com\nmember: uid=bob,ou=people,dc=x,dc=com\n\n";
    l += "dn: cn=ops,ou=groups,dc=x,dc=com\nobjectClass: posixGroup\ncn: ops\ngidNumber: 500\n\
          memberUid: carl\nmemberUid: bob\n\n";
    l
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn program(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} not found: {INSTALL}");
}

struct Tls {
    ca: CertificateDer<'static>,
}

/// A CA and a server certificate for 127.0.0.1 / localhost, written for slapd.
fn make_certs(dir: &Path) -> Tls {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test LDAP CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    Tls {
        ca: ca.der().clone(),
    }
}

/// slapd running as a child; stopped on drop.
struct Slapd {
    child: Child,
    ldap: u16,
    ldaps: u16,
    dir: tempfile::TempDir,
    tls: Tls,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Slapd {
    fn start() -> Self {
        let slapd = program("slapd");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("db")).unwrap();
        std::fs::write(d.join("ad.schema"), AD_SCHEMA).unwrap();
        let tls = make_certs(d);
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             include {d}/ad.schema\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             moduleload memberof\n\
             pidfile {d}/slapd.pid\n\
             TLSCACertificateFile {d}/ca.pem\n\
             TLSCertificateFile {d}/cert.pem\n\
             TLSCertificateKeyFile {d}/key.pem\n\
             database mdb\n\
             maxsize 16777216\n\
             suffix \"{SUFFIX}\"\n\
             rootdn \"{ADMIN}\"\n\
             rootpw {ADMIN_PW}\n\
             directory {d}/db\n\
             overlay memberof\n\
             access to attrs=userPassword by anonymous auth by * none\n\
             access to * by * read\n",
            d = d.display()
        );
        std::fs::write(d.join("slapd.conf"), conf).unwrap();
        let (ldap, ldaps) = (free_port(), free_port());
        let child = Command::new(slapd)
            .arg("-d")
            .arg("0")
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-h")
            .arg(format!(
                "ldap://127.0.0.1:{ldap}/ ldaps://127.0.0.1:{ldaps}/"
            ))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("slapd.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start slapd ({e}): {INSTALL}"));
        let mut s = Slapd {
            child,
            ldap,
            ldaps,
            dir,
            tls,
        };
        s.wait_ready();
        s.load(&directory_ldif());
        s
    }

    /// Polls both ports until they accept, failing if slapd exits.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in [self.ldap, self.ldaps] {
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    let log = std::fs::read_to_string(self.dir.path().join("slapd.log"));
                    panic!("slapd exited ({status}): {}", log.unwrap_or_default());
                }
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    break;
                }
                assert!(Instant::now() < deadline, "slapd did not listen on {port}");
                std::thread::yield_now();
            }
        }
    }

    /// `ldapadd` / `ldapmodify` as the admin.
    fn ldap_tool(&self, tool: &str, ldif: &str) {
        let mut c = Command::new(program(tool))
            .args(["-x", "-H", &format!("ldap://127.0.0.1:{}", self.ldap)])
            .args(["-D", ADMIN, "-w", ADMIN_PW])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {tool} ({e}): {INSTALL}"));
        c.stdin.take().unwrap().write_all(ldif.as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn load(&self, ldif: &str) {
        self.ldap_tool("ldapadd", ldif);
    }

    fn group(&self, id: &str, priority: u32, filter: &str) -> LdapGroupDefinition {
        LdapGroupDefinition {
            id: id.into(),
            priority,
            filter: filter.into(),
            server: LdapServerSettings {
                host: Some("127.0.0.1".into()),
                port: Some(self.ldap),
                tls: false,
                base_dn: Some(SUFFIX.into()),
                bind_dn: Some(READER.into()),
                bind_password: Some(READER_PW.into()),
                directory: DirectoryKind::OpenLdap,
            },
        }
    }

    fn evaluator(&self) -> Evaluator {
        Evaluator::new()
            .with_timeout(Duration::from_secs(10))
            .with_bind_password(None)
            .with_roots(vec![self.tls.ca.clone()])
    }
}

fn accounts(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn ldap_groups_against_slapd() {
    let s = Slapd::start();
    let ev = s.evaluator();
    let sales = s.group("sales", 3, AD_SALES);
    let eng = s.group("eng", 2, OL_ENG);
    let ops = s.group("ops", 1, OL_POSIX_OPS);
    let upn = s.group("upn", 4, UPN);

    // REFERENCE.md's filters, one account at a time.
    for (g, account, want) in [
        (&sales, "ann", true),
        (&sales, "ANN", true), // sAMAccountName compares ignoring case
        (&sales, "bob", false),
        (&sales, "admin", true),
        (&sales, "nobody", false),
        (&eng, "ann", true),
        (&eng, "bob", true),
        (&eng, "carl", false),
        (&ops, "carl", true),
        (&ops, "ann", false),
        (&upn, "bob", true),
        (&upn, "nobody", false),
    ] {
        assert_eq!(
            ev.is_member(g, account).unwrap(),
            want,
            "{} / {account}",
            g.id
        );
    }

    // All groups, all accounts in one pass; the best group by priority.
    let groups = vec![sales.clone(), eng.clone(), ops.clone()];
    let found = ev.evaluate(&groups, &accounts(&["ann", "bob", "carl", "dora"]));
    let want = [
        ("ann", vec!["sales", "eng"], "eng"),
        ("bob", vec!["eng", "ops"], "ops"),
        ("carl", vec!["ops"], "ops"),
    ];
    assert_eq!(found.len(), want.len(), "{found:?}");
    for (account, ids, best) in want {
        assert_eq!(found[account], accounts(&ids), "{account}");
        assert_eq!(
            best_group(&groups, &found[account]).map(|g| g.id.as_str()),
            Some(best),
            "{account}"
        );
    }

    hostile_account_names(&s, &ev, &sales, &eng);
    bind_failures(&s, &ev, &eng);
    tls(&s, &eng);
    discovery(&s, &eng);
    reevaluated_when_definitions_change(&s, &eng);
}

/// Names that would widen or break an unescaped filter match nothing they
/// should not; a real name with a backslash still matches itself.
fn hostile_account_names(
    s: &Slapd,
    ev: &Evaluator,
    sales: &LdapGroupDefinition,
    eng: &LdapGroupDefinition,
) {
    for (account, want_sales, want_eng) in [
        ("*", false, false),
        ("a*", false, false),
        ("admin)(uid=*", false, false),
        ("*)(uid=*))(|(uid=*", false, false),
        ("(", false, false),
        (")", false, false),
        ("a\\b", true, false),
        ("a\\5cb", false, false),
        ("ann\0", false, false),
        ("\0", false, false),
    ] {
        for (g, want) in [(sales, want_sales), (eng, want_eng)] {
            let got = ev.is_member(g, account);
            assert!(
                matches!(got, Ok(w) if w == want),
                "{} / {account:?}: {got:?}",
                g.id
            );
        }
    }
    // The test has teeth: the same names pasted unescaped would match.
    let mut raw = s.group("raw", 9, &AD_SALES.replace("$user$", "*"));
    assert!(ev.is_member(&raw, "unused").unwrap(), "unescaped * matches");
    // In an OR, an unescaped `)(` adds a component that matches everyone.
    let or = "(|(sAMAccountName=$user$)(cn=nobody-at-all))";
    raw.filter = or.replace("$user$", "nobody)(uid=*");
    assert!(
        ev.is_member(&raw, "unused").unwrap(),
        "unescaped )( matches"
    );
    let escaped = s.group("or", 9, or);
    assert!(!ev.is_member(&escaped, "nobody)(uid=*").unwrap());
    assert!(ev.is_member(&escaped, "carl").unwrap());
}

fn bind_failures(s: &Slapd, ev: &Evaluator, eng: &LdapGroupDefinition) {
    let mut wrong = eng.clone();
    wrong.server.bind_password = Some("not-the-password".into());
    match ev.is_member(&wrong, "ann") {
        Err(LdapError::Bind { dn, message, .. }) => {
            assert_eq!(dn, READER);
            assert!(message.contains("49"), "invalid credentials: {message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(ev.evaluate(&[wrong], &accounts(&["ann"])).is_empty());
    let mut unknown = eng.clone();
    unknown.server.bind_dn = Some("cn=ghost,dc=x,dc=com".into());
    assert!(matches!(
        ev.is_member(&unknown, "ann"),
        Err(LdapError::Bind { .. })
    ));
    // A DN without a password is never sent (it would bind anonymously).
    let mut no_pw = eng.clone();
    no_pw.server.bind_password = None;
    assert!(matches!(
        ev.is_member(&no_pw, "ann"),
        Err(LdapError::BindNeedsPassword { .. })
    ));
    // … unless the agent has one configured, which it sends only over TLS.
    let with_pw = s.evaluator().with_bind_password(Some(READER_PW.into()));
    assert!(matches!(
        with_pw.is_member(&no_pw, "ann"),
        Err(LdapError::PasswordNeedsTls { .. })
    ));
    let mut no_pw_tls = no_pw.clone();
    no_pw_tls.server.port = Some(s.ldaps);
    no_pw_tls.server.tls = true;
    assert!(with_pw.is_member(&no_pw_tls, "ann").unwrap());
    // Anonymous (no bind DN) works where the directory allows it.
    let mut anon = eng.clone();
    anon.server.bind_dn = None;
    anon.server.bind_password = None;
    assert!(ev.is_member(&anon, "ann").unwrap());
    // A bad filter is an error for that group only.
    let bad = s.group("bad", 5, "(&(uid=$user$)(memberOf=");
    let found = ev.evaluate(&[bad, eng.clone()], &accounts(&["ann"]));
    assert_eq!(found["ann"], accounts(&["eng"]));
    // A base that does not exist.
    let mut nobase = eng.clone();
    nobase.server.base_dn = Some("dc=missing,dc=com".into());
    assert!(matches!(
        ev.is_member(&nobase, "ann"),
        Err(LdapError::Search { .. })
    ));
}

fn tls(s: &Slapd, eng: &LdapGroupDefinition) {
    // LDAPS on its own port (TLS flag with a port other than 389).
    let mut ldaps = eng.clone();
    ldaps.server.port = Some(s.ldaps);
    ldaps.server.tls = true;
    assert!(s.evaluator().is_member(&ldaps, "ann").unwrap());
    assert!(!s.evaluator().is_member(&ldaps, "carl").unwrap());
    // Without the CA the certificate is refused: no membership, a reason.
    let untrusting = Evaluator::new()
        .with_timeout(Duration::from_secs(10))
        .with_bind_password(None);
    match untrusting.is_member(&ldaps, "ann") {
        Err(LdapError::Connect { message, .. }) => {
            assert!(message.to_lowercase().contains("certificate"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(untrusting
        .evaluate(&[ldaps], &accounts(&["ann"]))
        .is_empty());
    // The agent's CA file.
    let from_file = Evaluator::new()
        .with_ca_file(&s.dir.path().join("ca.pem"))
        .unwrap();
    let mut at_ldaps = eng.clone();
    at_ldaps.server.port = Some(s.ldaps);
    at_ldaps.server.tls = true;
    assert!(from_file.is_member(&at_ldaps, "bob").unwrap());
    // StartTLS on the plain port.
    let ep = Endpoint {
        host: "127.0.0.1".into(),
        port: s.ldap,
        security: Security::StartTls,
    };
    assert!(s.evaluator().is_member_at(&ep, eng, "ann").unwrap());
    assert!(untrusting.is_member_at(&ep, eng, "ann").is_err());
}

/// A loopback name server answering `_ldap._tcp.x.com` with slapd's port.
fn srv_server(port: u16) -> SocketAddr {
    use hickory_proto::op::{Message, OpCode};
    use hickory_proto::rr::rdata::SRV;
    use hickory_proto::rr::{Name, RData, Record};
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            let q = Message::from_vec(&buf[..n]).unwrap();
            let mut m = Message::response(q.metadata.id, OpCode::Query);
            m.add_query(q.queries[0].clone());
            if q.queries[0].name().to_ascii() == "_ldap._tcp.x.com." {
                m.add_answer(Record::from_rdata(
                    q.queries[0].name().clone(),
                    60,
                    RData::SRV(SRV::new(
                        0,
                        100,
                        port,
                        Name::from_ascii("127.0.0.1.").unwrap(),
                    )),
                ));
            }
            sock.send_to(&m.to_vec().unwrap(), peer).unwrap();
        }
    });
    addr
}

/// Blank server settings: the domain from the base DN (or the search
/// domain), the server from DNS SRV, the base DN from the rootDSE.
fn discovery(s: &Slapd, eng: &LdapGroupDefinition) {
    let dns = srv_server(s.ldap);
    let ev = s.evaluator().with_discovery(Discovery::Fixed {
        servers: vec![dns],
        search_domain: Some("x.com".into()),
    });
    let mut blank = eng.clone();
    blank.server.host = None;
    blank.server.port = None;
    blank.server.base_dn = None;
    assert!(ev.is_member(&blank, "ann").unwrap(), "SRV + rootDSE");
    assert!(!ev.is_member(&blank, "carl").unwrap());
    let mut by_dn = blank.clone();
    by_dn.server.base_dn = Some(SUFFIX.into());
    let no_search = s.evaluator().with_discovery(Discovery::Fixed {
        servers: vec![dns],
        search_domain: None,
    });
    assert!(
        no_search.is_member(&by_dn, "bob").unwrap(),
        "domain from DC="
    );
    let mut elsewhere = by_dn.clone();
    elsewhere.server.base_dn = Some("dc=other,dc=org".into());
    match no_search.is_member(&elsewhere, "bob") {
        Err(LdapError::NoSrvRecords { name }) => assert_eq!(name, "_ldap._tcp.other.org"),
        other => panic!("{other:?}"),
    }
}

/// Memberships are evaluated once per definitions (kept in the state with
/// their hash) and again when the definitions change.
fn reevaluated_when_definitions_change(s: &Slapd, eng: &LdapGroupDefinition) {
    let dir = tempfile::tempdir().unwrap();
    let state = State::open_in(dir.path()).unwrap();
    let groups = LdapGroups::new(s.evaluator());
    let rules = AccountRules::default();
    assert!(groups
        .update(&state, std::slice::from_ref(eng), &rules)
        .unwrap());
    let who = accounts(&["ann", "carl"]);
    let got = groups.memberships(&state, &who).unwrap();
    assert_eq!(got.keys().collect::<Vec<_>>(), vec!["ann"]);
    // carl joins eng in the directory: the same definitions are not asked again.
    s.ldap_tool(
        "ldapmodify",
        "dn: cn=eng,ou=groups,dc=x,dc=com\nchangetype: modify\nadd: member\nmember: uid=carl,ou=people,dc=x,dc=com\n",
    );
    let got = groups.memberships(&state, &who).unwrap();
    assert_eq!(got.keys().collect::<Vec<_>>(), vec!["ann"], "cached");
    // An account seen for the first time is evaluated.
    let got = groups.memberships(&state, &accounts(&["bob"])).unwrap();
    assert_eq!(got["bob"], accounts(&["eng"]));
    // Changed definitions: evaluated again.
    let mut eng2 = eng.clone();
    eng2.priority = 7;
    assert!(groups.update(&state, &[eng2.clone()], &rules).unwrap());
    assert!(!groups.update(&state, &[eng2], &rules).unwrap());
    let got = groups.memberships(&state, &who).unwrap();
    assert_eq!(got.keys().collect::<Vec<_>>(), vec!["ann", "carl"]);
    // A new process (agent start) evaluates the stored definitions again.
    s.ldap_tool(
        "ldapmodify",
        "dn: cn=eng,ou=groups,dc=x,dc=com\nchangetype: modify\ndelete: member\nmember: uid=ann,ou=people,dc=x,dc=com\n",
    );
    let restarted = LdapGroups::new(s.evaluator());
    let got = restarted.memberships(&state, &who).unwrap();
    assert_eq!(got.keys().collect::<Vec<_>>(), vec!["carl"]);
}
