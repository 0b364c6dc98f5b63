use std::net::TcpListener;

use catalog::checkin::LdapServerSettings;

use super::*;

fn group(id: &str, priority: u32, host: &str, port: u16) -> LdapGroupDefinition {
    LdapGroupDefinition {
        id: id.into(),
        priority,
        filter: "(uid=$user$)".into(),
        server: LdapServerSettings {
            host: Some(host.into()),
            port: Some(port),
            ..Default::default()
        },
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn hash_ignores_order_and_sees_changes() {
    let a = group("a", 1, "h", 389);
    let b = group("b", 2, "h", 389);
    let h = definitions_sha256(&[a.clone(), b.clone()]);
    assert_eq!(h, definitions_sha256(&[b.clone(), a.clone()]));
    assert_eq!(h.len(), 64);
    let mut a2 = a.clone();
    a2.filter = "(sAMAccountName=$user$)".into();
    assert_ne!(h, definitions_sha256(&[a2, b.clone()]));
    let mut b2 = b;
    b2.server.tls = true;
    assert_ne!(h, definitions_sha256(&[a, b2]));
    assert_ne!(h, definitions_sha256(&[]));
}

#[test]
fn best_group_is_the_lowest_priority_number() {
    let groups = [
        group("g3", 3, "h", 389),
        group("g1", 1, "h", 389),
        group("g2", 2, "h", 389),
    ];
    for (matched, want) in [
        (vec!["g3", "g2"], Some("g2")),
        (vec!["g1", "g3"], Some("g1")),
        (vec!["g3"], Some("g3")),
        (vec!["other"], None),
        (vec![], None),
    ] {
        let matched: Vec<String> = matched.into_iter().map(String::from).collect();
        assert_eq!(
            best_group(&groups, &matched).map(|g| g.id.as_str()),
            want,
            "{matched:?}"
        );
    }
}

#[test]
fn unreachable_server_is_no_membership_not_a_failure() {
    let port = closed_port();
    let ev = Evaluator::new()
        .with_timeout(Duration::from_secs(2))
        .with_bind_password(None);
    let g = group("g", 1, "127.0.0.1", port);
    match ev.is_member(&g, "ann") {
        Err(LdapError::Connect { url, .. }) => assert_eq!(url, format!("ldap://127.0.0.1:{port}")),
        other => panic!("{other:?}"),
    }
    assert!(ev.evaluate(&[g], &["ann".into()]).is_empty());
}

#[test]
fn bind_dn_without_password_is_refused_before_connecting() {
    // A listener that accepts but never answers: the refusal must come
    // before any bind is sent.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut g = group("g", 1, "127.0.0.1", l.local_addr().unwrap().port());
    g.server.bind_dn = Some("cn=reader,dc=x,dc=com".into());
    let ev = Evaluator::new()
        .with_timeout(Duration::from_secs(2))
        .with_bind_password(None);
    match ev.is_member(&g, "ann") {
        Err(LdapError::BindNeedsPassword { dn }) => assert_eq!(dn, "cn=reader,dc=x,dc=com"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_agents_own_password_is_never_sent_in_clear() {
    // A listener that accepts but never answers: the refusal must come
    // before any connection is used.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut g = group("g", 1, "127.0.0.1", port);
    g.server.bind_dn = Some("cn=reader,dc=x,dc=com".into());
    let ev = Evaluator::new()
        .with_timeout(Duration::from_secs(2))
        .with_bind_password(Some("local secret".into()));
    match ev.is_member(&g, "ann") {
        Err(e @ LdapError::PasswordNeedsTls { .. }) => {
            assert!(e.to_string().contains("sent only over TLS"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let plain = Endpoint::new("127.0.0.1", Some(port), false, 389);
    assert!(matches!(
        ev.is_member_at(&plain, &g, "ann"),
        Err(LdapError::PasswordNeedsTls { .. })
    ));
    // Anonymous binds (no DN) send no password: allowed in clear.
    g.server.bind_dn = None;
    drop(l);
    assert!(!matches!(
        ev.is_member(&g, "ann"),
        Err(LdapError::PasswordNeedsTls { .. })
    ));
}

/// The agent's own password goes to a named host, or to SRV discovery in
/// the host's own (search) domain; a base DN pointing discovery at another
/// domain is refused before any DNS query.
#[test]
fn the_agents_own_password_stays_in_the_hosts_own_domain() {
    let fixed = |own: Option<&str>| Discovery::Fixed {
        // No name server: a refusal must come before any query.
        servers: vec![],
        search_domain: own.map(String::from),
    };
    let settings = |host: Option<&str>, base_dn: Option<&str>| LdapServerSettings {
        host: host.map(String::from),
        base_dn: base_dn.map(String::from),
        tls: true,
        bind_dn: Some("cn=reader,dc=x,dc=com".into()),
        ..Default::default()
    };
    for (host, base_dn, own, allowed) in [
        (Some("ldap.evil.example"), None, Some("x.com"), true),
        (
            Some("ldap.evil.example"),
            Some("dc=evil,dc=example"),
            None,
            true,
        ),
        (None, Some("dc=X,dc=Com"), Some("x.com."), true),
        (None, None, Some("x.com"), true),
        (
            None,
            Some("ou=people,dc=evil,dc=example"),
            Some("x.com"),
            false,
        ),
        (None, Some("dc=corp,dc=x,dc=com"), Some("x.com"), false),
        (None, Some("dc=x,dc=com"), None, false),
    ] {
        let case = format!("{host:?} {base_dn:?} own {own:?}");
        let locator = conn::locate(&settings(host, base_dn), &fixed(own)).unwrap();
        let verdict = locator.check_own_password_may_go("cn=reader,dc=x,dc=com");
        assert_eq!(verdict.is_ok(), allowed, "{case}: {verdict:?}");
        if let Err(e) = verdict {
            assert!(
                matches!(e, LdapError::PasswordOutsideDomain { .. }),
                "{case}: {e}"
            );
            assert!(e.to_string().contains("this host's own domain"), "{case}");
        }
    }

    // Through the evaluator: refused with the reason, before any lookup.
    let g = LdapGroupDefinition {
        id: "g".into(),
        priority: 1,
        filter: "(uid=$user$)".into(),
        server: settings(None, Some("dc=evil,dc=example")),
    };
    let own = Evaluator::new()
        .with_discovery(fixed(Some("x.com")))
        .with_bind_password(Some("local secret".into()));
    match own.is_member(&g, "ann") {
        Err(e @ LdapError::PasswordOutsideDomain { .. }) => assert!(
            e.to_string()
                .contains("(x.com); the group's base DN points discovery at evil.example"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    // A password the signed definition carries itself is not the agent's:
    // discovery goes ahead (and here finds no name server to ask).
    let mut carried = g.clone();
    carried.server.bind_password = Some("the tenant's".into());
    assert!(!matches!(
        own.is_member(&carried, "ann"),
        Err(LdapError::PasswordOutsideDomain { .. })
    ));
}

#[test]
fn definitions_are_stored_with_their_hash() {
    let dir = tempfile::tempdir().unwrap();
    let state = State::open_in(dir.path()).unwrap();
    let groups = LdapGroups::new(
        Evaluator::new()
            .with_timeout(Duration::from_secs(1))
            .with_bind_password(None),
    );
    assert_eq!(
        LdapGroups::stored(&state).unwrap(),
        StoredDirectory::default()
    );
    // No definitions: nothing to evaluate, nothing matched.
    assert!(groups
        .memberships(&state, &["ann".into()])
        .unwrap()
        .is_empty());
    let defs = vec![group("g", 1, "127.0.0.1", closed_port())];
    let rules = AccountRules {
        shared: vec!["kiosk".into()],
        excluded: vec![],
    };
    assert!(
        groups.update(&state, &defs, &rules).unwrap(),
        "first definitions"
    );
    assert!(!groups.update(&state, &defs, &rules).unwrap(), "unchanged");
    let stored = LdapGroups::stored(&state).unwrap();
    assert_eq!(
        (
            stored.sha256.as_str(),
            &stored.ldap_groups,
            &stored.accounts
        ),
        (definitions_sha256(&defs).as_str(), &defs, &rules)
    );
    // Account rules alone are stored but do not count as a definition change.
    assert!(!groups
        .update(&state, &defs, &AccountRules::default())
        .unwrap());
    assert!(LdapGroups::stored(&state).unwrap().accounts.is_empty());
    // Unreachable server: evaluated, no membership, no error.
    assert!(groups
        .memberships(&state, &["ann".into()])
        .unwrap()
        .is_empty());
    // Survives reopening.
    drop(state);
    let state = State::open_in(dir.path()).unwrap();
    assert_eq!(LdapGroups::stored(&state).unwrap().ldap_groups, defs);
}

#[test]
fn ca_file_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    for (path, want) in [
        (empty.clone(), "no certificate in the file"),
        (dir.path().join("missing.pem"), ""),
    ] {
        match Evaluator::new().with_ca_file(&path) {
            Err(LdapError::CaFile { message, .. }) => assert!(message.contains(want), "{message}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn failed_evaluations_are_tried_again_at_the_next_report() {
    let dir = tempfile::tempdir().unwrap();
    let state = State::open_in(dir.path()).unwrap();
    let groups = LdapGroups::new(
        Evaluator::new()
            .with_timeout(Duration::from_millis(500))
            .with_bind_password(None),
    );
    let port = closed_port();
    let defs = vec![group("g", 1, "127.0.0.1", port)];
    groups
        .update(&state, &defs, &AccountRules::default())
        .unwrap();
    let ann = vec!["ann".to_owned()];
    assert!(groups.memberships(&state, &ann).unwrap().is_empty());
    // Something listens now (and never answers): the next report connects
    // again rather than keeping the failed result.
    let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    l.set_nonblocking(true).unwrap();
    assert!(groups.memberships(&state, &ann).unwrap().is_empty());
    assert!(l.accept().is_ok(), "the directory was asked again");
}
