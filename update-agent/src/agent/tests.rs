//! The check-in client and the agent core against an in-test HTTP server,
//! with the pipeline over a real catalog exported to directories.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Mutex;

use catalog::assignment::{sign_assignments, DeploymentType, DownloadSource};
use catalog::checkin::CheckInResponse;
use catalog::events::EventAck;
use catalog::tuf::Ed25519Signer;
use chrono::Duration;
use test_devices::ModelProfile;

use super::*;
use crate::pipeline::tests::{set, t0, Fx};
use crate::pipeline::Outcome;

/// One request as the in-test server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Handler = Box<dyn Fn(&Seen) -> (u16, Vec<(&'static str, String)>, Vec<u8>) + Send>;

/// A tiny HTTP/1.1 server: one request per connection, answers from `handler`.
fn serve(handler: Handler) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap();
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let req = Seen {
                path,
                headers,
                body,
            };
            let (status, extra, answer) = handler(&req);
            log.lock().unwrap().push(req);
            let mut out = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                answer.len()
            );
            for (k, v) in extra {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            let _ = stream.write_all(out.as_bytes());
            let _ = stream.write_all(&answer);
        }
    });
    (url, seen)
}

fn signed(signer: &Ed25519Signer, s: AssignmentSet) -> serde_json::Value {
    serde_json::from_slice(&sign_assignments(s, signer).unwrap()).unwrap()
}

fn core(fx: &Fx, url: &str, key: &Ed25519Signer) -> AgentCore<crate::devices::SimDevices> {
    let client = ServerClient::new(
        reqwest::blocking::Client::new(),
        url,
        "agent-1",
        "upda_secret",
    );
    // One key for the core and its pipeline, as enrollment pins it.
    assert_eq!(
        key.public_key(),
        &fx.assignment_key,
        "endorse the signer first (Fx::endorse)"
    );
    AgentCore::new(
        fx.state.clone(),
        client,
        key.public_key().clone(),
        fx.pipeline(),
    )
}

#[test]
fn check_in_verifies_persists_installs_and_reports() {
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let release = fx.import((2, 0, 0), 4);
    let a = fx.assignment(
        &release,
        DeploymentType::Automatic,
        DownloadSource::Server,
        false,
    );
    let signer = Ed25519Signer::generate().unwrap();
    fx.endorse(&signer);
    let mut doc = set(vec![a.clone()]);
    doc.poll_interval_secs = 900;
    let answer = serde_json::to_vec(&CheckInResponse {
        assignments: signed(&signer, doc),
        poll_interval_secs: 900,
        ..CheckInResponse::default()
    })
    .unwrap();
    let (url, seen) = serve(Box::new(move |req| {
        if req.path.ends_with("/checkin") {
            if req.header("if-none-match") == Some("\"v1\"") {
                return (304, vec![("ETag", "\"v1\"".into())], Vec::new());
            }
            return (200, vec![("ETag", "\"v1\"".into())], answer.clone());
        }
        // Events: acknowledge all but the last one sent.
        let batch: catalog::events::EventBatch = serde_json::from_slice(&req.body).unwrap();
        let mut ids: Vec<String> = batch.events.iter().map(|e| e.id.clone()).collect();
        ids.pop();
        let n = ids.len();
        let ack = EventAck {
            acknowledged: ids,
            accepted: n,
            duplicates: 0,
        };
        (200, vec![], serde_json::to_vec(&ack).unwrap())
    }));
    let mut core = core(&fx, &url, &signer);
    let report = core.check_in_and_update(t0()).unwrap();
    assert_eq!(
        report.outcomes.get(&a.device),
        Some(&Outcome::Installed {
            version: "2.0.0".into()
        })
    );
    assert_eq!(
        daemon::CheckIn::poll_interval(&core),
        Some(Duration::seconds(900))
    );
    let stored = fx.state.assignments().unwrap().unwrap();
    assert_eq!(
        (stored.version, stored.etag.as_deref()),
        (1, Some("\"v1\""))
    );
    {
        let seen = seen.lock().unwrap();
        let first = &seen[0];
        assert_eq!(first.path, "/api/v1/agents/agent-1/checkin");
        assert_eq!(first.header("authorization"), Some("Bearer upda_secret"));
        assert_eq!(first.header("if-none-match"), None);
        let body: CheckIn = serde_json::from_slice(&first.body).unwrap();
        assert_eq!(body.devices.len(), 1);
        assert_eq!(body.devices[0].identity(), a.device);
        assert!(body.validate().is_ok());
        // Events went out after the pass; the one not acknowledged stays spooled.
        assert!(seen
            .iter()
            .any(|r| r.path == "/api/v1/agents/agent-1/events"));
    }
    let left = fx.state.pending_events(100).unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].kind, "update_succeeded");

    // Next check-in: 304, the stored document is used; the report carries
    // the installed state and counter.
    let report = core
        .check_in_and_update(t0() + Duration::minutes(15))
        .unwrap();
    assert_eq!(report.outcomes.get(&a.device), Some(&Outcome::UpToDate));
    let seen = seen.lock().unwrap();
    let second = seen
        .iter()
        .filter(|r| r.path.ends_with("/checkin"))
        .nth(1)
        .unwrap();
    assert_eq!(second.header("if-none-match"), Some("\"v1\""));
    let body: CheckIn = serde_json::from_slice(&second.body).unwrap();
    let state = &body.update_states[0];
    assert_eq!(state.installed_security_counter, Some(4));
    assert_eq!(state.phase, Some(catalog::checkin::UpdatePhase::Installed));
    assert_eq!(state.target_name.as_deref(), Some(a.target_name.as_str()));
}

#[test]
fn rejected_credential_and_missing_events_endpoint() {
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let signer = Ed25519Signer::generate().unwrap();
    fx.endorse(&signer);
    let (url, _) = serve(Box::new(|_| (401, vec![], b"{}".to_vec())));
    let mut c = core(&fx, &url, &signer);
    let err = c.check_in_and_update(t0()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "agent credential rejected; re-enroll (`update-agent enroll`)"
    );
    let daemon_err = daemon::CheckIn::check_in(&mut c, t0()).unwrap_err();
    assert!(matches!(daemon_err, CheckInError::Refused(_)));

    let (url, _) = serve(Box::new(|_| (404, vec![], b"{}".to_vec())));
    fx.state
        .spool(&crate::state::Event::new(
            "agent_started",
            None,
            serde_json::Value::Null,
            t0(),
        ))
        .unwrap();
    let report = core(&fx, &url, &signer).flush().unwrap();
    assert!(report.not_available);
    assert_eq!(fx.state.pending_events(10).unwrap().len(), 1);

    // Nobody listening: unreachable, retried with backoff by the daemon.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let err = daemon::CheckIn::check_in(&mut core(&fx, &url, &signer), t0()).unwrap_err();
    assert!(matches!(err, CheckInError::Unreachable(_)), "{err}");
}

#[test]
fn foreign_expired_rolled_back_and_forged_assignments_are_refused() {
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let signer = Ed25519Signer::generate().unwrap();
    fx.endorse(&signer);
    let key = signer.public_key().clone();
    let bytes = |s: AssignmentSet, by: &Ed25519Signer| sign_assignments(s, by).unwrap();
    let mut v5 = set(vec![]);
    v5.version = 5;
    accept_assignments(&fx.state, &key, "agent-1", &bytes(v5, &signer), None, t0()).unwrap();

    let mut old = set(vec![]);
    old.version = 4;
    let mut foreign = set(vec![]);
    foreign.version = 6;
    foreign.agent = "agent-2".into();
    let mut expired = set(vec![]);
    expired.version = 6;
    expired.expires = t0() - Duration::seconds(1);
    let mut forged = set(vec![]);
    forged.version = 7;
    let other = Ed25519Signer::generate().unwrap();
    let cases = [
        (bytes(old, &signer), "older than the trusted version 5"),
        (
            bytes(foreign, &signer),
            "for agent agent-2, this is agent agent-1",
        ),
        (bytes(expired, &signer), "expired"),
        (bytes(forged, &other), "signature"),
    ];
    for (doc, want) in cases {
        let err = accept_assignments(&fx.state, &key, "agent-1", &doc, None, t0()).unwrap_err();
        assert!(err.to_string().contains(want), "{err} (want {want})");
    }
    assert_eq!(fx.state.assignments().unwrap().unwrap().version, 5);
    let events = fx.state.pending_events(100).unwrap();
    assert_eq!(events.len(), 4);
    assert!(events
        .iter()
        .all(|e| e.kind == "tamper_detected" && e.detail["source"] == "assignment"));
}

#[test]
fn signed_ldap_definitions_and_account_rules_from_the_answer_are_kept() {
    use catalog::checkin::{AccountRules, LdapGroupDefinition, LdapServerSettings};
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let signer = Ed25519Signer::generate().unwrap();
    fx.endorse(&signer);
    // A directory that cannot be reached: evaluated, no membership.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let groups = vec![LdapGroupDefinition {
        id: "g1".into(),
        priority: 1,
        filter: "(uid=$user$)".into(),
        server: LdapServerSettings {
            host: Some("127.0.0.1".into()),
            port: Some(closed),
            ..LdapServerSettings::default()
        },
    }];
    let rules = AccountRules {
        shared: vec!["kiosk".into()],
        excluded: vec!["svc".into()],
    };
    let mut with_groups = set(vec![]);
    with_groups.ldap_groups = groups.clone();
    let answer = serde_json::to_vec(&CheckInResponse {
        assignments: signed(&signer, with_groups),
        poll_interval_secs: 900,
        accounts: rules.clone(),
    })
    .unwrap();
    let (url, seen) = serve(Box::new(move |req| {
        if req.path.ends_with("/checkin") {
            return (200, vec![("ETag", "\"v1\"".into())], answer.clone());
        }
        (404, vec![], Vec::new())
    }));
    let mut core = core(&fx, &url, &signer);
    core.check_in_only(t0()).unwrap();
    let stored = fx.state.directory().unwrap().unwrap();
    assert_eq!(
        (
            &stored.ldap_groups,
            &stored.accounts,
            stored.sha256.as_str()
        ),
        (
            &groups,
            &rules,
            crate::ldap::definitions_sha256(&groups).as_str()
        )
    );
    // New definitions were evaluated at once; they matched nothing, so
    // what the server knows did not change: one check-in, no second.
    let checkins: Vec<CheckIn> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path.ends_with("/checkin"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(checkins.len(), 1);
    assert!(checkins[0].ldap_memberships.is_empty());
    // The next report applies the stored rules (an excluded account is
    // never reported).
    let body = core.report().unwrap();
    assert!(body.users.iter().all(|u| u.account != "svc"));
    assert!(body.validate().is_ok());
}

#[test]
fn ldap_definitions_outside_the_signature_are_never_used() {
    use catalog::checkin::{LdapGroupDefinition, LdapServerSettings};
    let signer = Ed25519Signer::generate().unwrap();
    let genuine = LdapGroupDefinition {
        id: "g1".into(),
        priority: 1,
        filter: "(uid=$user$)".into(),
        server: LdapServerSettings {
            host: Some("ldap.acme.example".into()),
            tls: true,
            ..LdapServerSettings::default()
        },
    };
    let mut evil = genuine.clone();
    evil.server.host = Some("ldap.attacker.example".into());
    let mut with_groups = set(vec![]);
    with_groups.ldap_groups = vec![genuine];
    let mut altered = signed(&signer, with_groups);
    altered["signed"]["ldap_groups"] = serde_json::to_value(vec![evil.clone()]).unwrap();
    // (answer, check-in refused?)
    let cases = [
        // Beside the signed document, where an older server put them.
        (
            serde_json::json!({"assignments": signed(&signer, set(vec![])),
                "poll_interval_secs": 900, "ldap_groups": [evil]}),
            false,
        ),
        // Inside it, changed after signing.
        (
            serde_json::json!({"assignments": altered, "poll_interval_secs": 900}),
            true,
        ),
    ];
    for (answer, refused) in cases {
        let mut fx = Fx::new(ModelProfile::headset_tolerant());
        fx.endorse(&signer);
        let body = serde_json::to_vec(&answer).unwrap();
        let (url, _) = serve(Box::new(move |req| {
            if req.path.ends_with("/checkin") {
                return (200, vec![("ETag", "\"v1\"".into())], body.clone());
            }
            (404, vec![], Vec::new())
        }));
        let mut core = core(&fx, &url, &signer);
        assert_eq!(core.check_in_only(t0()).is_err(), refused, "{answer}");
        let hosts: Vec<Option<String>> = fx
            .state
            .directory()
            .unwrap()
            .map(|d| d.ldap_groups)
            .unwrap_or_default()
            .into_iter()
            .map(|g| g.server.host)
            .collect();
        assert!(hosts.is_empty(), "{answer}: {hosts:?}");
    }
}

/// A new assignment document signed by a key the catalog no longer
/// endorses brings no LDAP definitions: the directory a bind goes to is
/// chosen only by an endorsed key.
#[test]
fn ldap_definitions_of_a_key_no_longer_endorsed_are_not_used() {
    use catalog::checkin::{LdapGroupDefinition, LdapServerSettings};
    let mut fx = Fx::new(ModelProfile::headset_tolerant());
    let signer = Ed25519Signer::generate().unwrap();
    fx.endorse(&signer);
    // The tenant's key rotated on the signing host: another one endorsed.
    let rotated = Ed25519Signer::generate().unwrap();
    let e = catalog::assignment::KeyEndorsement::new(
        crate::pipeline::tests::TENANT,
        rotated.public_key().clone(),
    )
    .unwrap();
    fx.catalog
        .endorse(&e, t0() - chrono::Duration::hours(1))
        .unwrap();
    fx.export();
    let mut with_groups = set(vec![]);
    with_groups.ldap_groups = vec![LdapGroupDefinition {
        id: "g1".into(),
        priority: 1,
        filter: "(uid=$user$)".into(),
        server: LdapServerSettings {
            host: Some("ldap.attacker.example".into()),
            tls: true,
            ..LdapServerSettings::default()
        },
    }];
    let body = serde_json::to_vec(&CheckInResponse {
        assignments: signed(&signer, with_groups),
        poll_interval_secs: 900,
        ..CheckInResponse::default()
    })
    .unwrap();
    let (url, _) = serve(Box::new(move |req| {
        if req.path.ends_with("/checkin") {
            return (200, vec![("ETag", "\"v1\"".into())], body.clone());
        }
        (404, vec![], Vec::new())
    }));
    core(&fx, &url, &signer).check_in_only(t0()).unwrap();
    assert!(fx
        .state
        .directory()
        .unwrap()
        .is_none_or(|d| d.ldap_groups.is_empty()));
}
