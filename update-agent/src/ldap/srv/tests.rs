use std::net::UdpSocket;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::SRV;
use hickory_proto::rr::{Name, RData, Record};

use super::*;

/// A one-shot name server on loopback: answers the first query with
/// `records` (after a datagram with a wrong id, which must be ignored).
fn name_server(code: ResponseCode, records: Vec<(u16, u16, u16, &'static str)>) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        let (n, peer) = sock.recv_from(&mut buf).unwrap();
        let q = Message::from_vec(&buf[..n]).unwrap();
        let mut wrong = Message::response(q.metadata.id.wrapping_add(1), OpCode::Query);
        wrong.add_query(q.queries[0].clone());
        wrong.add_answer(Record::from_rdata(
            q.queries[0].name().clone(),
            60,
            RData::SRV(SRV::new(
                0,
                0,
                389,
                Name::from_ascii("evil.example.").unwrap(),
            )),
        ));
        sock.send_to(&wrong.to_vec().unwrap(), peer).unwrap();
        let mut m = Message::response(q.metadata.id, OpCode::Query);
        m.metadata.response_code = code;
        m.add_query(q.queries[0].clone());
        for (priority, weight, port, host) in records {
            m.add_answer(Record::from_rdata(
                q.queries[0].name().clone(),
                60,
                RData::SRV(SRV::new(
                    priority,
                    weight,
                    port,
                    Name::from_ascii(host).unwrap(),
                )),
            ));
        }
        sock.send_to(&m.to_vec().unwrap(), peer).unwrap();
    });
    addr
}

#[test]
fn srv_targets_sorted_and_foreign_answers_ignored() {
    let server = name_server(
        ResponseCode::NoError,
        vec![
            (10, 5, 389, "dc2.x.example."),
            (0, 10, 389, "dc1.x.example."),
            (10, 50, 3268, "dc3.x.example."),
            (0, 0, 0, "."),
        ],
    );
    let got = lookup("_ldap._tcp.x.example", &[server], Duration::from_secs(5)).unwrap();
    let got: Vec<(u16, u16, &str)> = got
        .iter()
        .map(|t| (t.priority, t.port, t.host.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, 389, "dc1.x.example"),
            (10, 3268, "dc3.x.example"),
            (10, 389, "dc2.x.example"),
        ]
    );
}

#[test]
fn nxdomain_is_empty_and_servfail_is_an_error() {
    let server = name_server(ResponseCode::NXDomain, vec![]);
    let got = lookup("_ldap._tcp.none.example", &[server], Duration::from_secs(5)).unwrap();
    assert_eq!(got, vec![]);
    let server = name_server(ResponseCode::ServFail, vec![]);
    match lookup("_ldap._tcp.x.example", &[server], Duration::from_secs(5)) {
        Err(SrvError::Refused { code, .. }) => assert!(code.contains("Server Failure"), "{code}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn silent_servers_time_out_in_turn() {
    // Bound but never answering.
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let servers = [a.local_addr().unwrap(), b.local_addr().unwrap()];
    match lookup("_ldap._tcp.x.example", &servers, Duration::from_millis(100)) {
        Err(SrvError::NoAnswer { last, .. }) => {
            assert!(last.starts_with(&servers[1].to_string()), "{last}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        lookup("bad..name", &servers, Duration::from_millis(10)),
        Err(SrvError::Name { .. })
    ));
}

#[test]
fn resolv_conf_servers_and_search_domain() {
    for (text, servers, domain) in [
        (
            "nameserver 10.0.0.2\nnameserver 10.0.0.3\nsearch corp.x.example x.example\n",
            vec!["10.0.0.2:53", "10.0.0.3:53"],
            Some("corp.x.example"),
        ),
        (
            "domain x.example.\nnameserver 10.0.0.2\n",
            vec!["10.0.0.2:53"],
            Some("x.example"),
        ),
        ("", vec!["127.0.0.1:53", "[::1]:53"], None),
    ] {
        let (s, d) = parse_resolv_conf(text.as_bytes()).unwrap();
        let s: Vec<String> = s.iter().map(ToString::to_string).collect();
        assert_eq!(
            (s, d.as_deref()),
            (servers.iter().map(|s| s.to_string()).collect(), domain),
            "{text}"
        );
    }
}
