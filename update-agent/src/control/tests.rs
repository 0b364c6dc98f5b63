use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;

use chrono::TimeZone;

use super::*;
use crate::clock::ManualClock;
use crate::prompts::{PromptKind, PromptState, PromptSubject};

/// Fields drop in order: the server stops before its directory goes.
struct Fx {
    handle: Option<ControlHandle>,
    dir: tempfile::TempDir,
    state: Arc<State>,
    wake: std::sync::mpsc::Receiver<Wake>,
    id: String,
}

fn fx() -> Fx {
    fx_owned_by(None)
}

/// The fixture with the server believing it runs as `owner` (default: us).
fn fx_owned_by(owner: Option<u32>) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(State::open_in(dir.path()).unwrap());
    let t0 = chrono::Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
    let p = Prompt::new(
        PromptKind::UpdateAvailable,
        &PromptSubject {
            device: "1209/serial/SN-1",
            product: Some("Headset"),
            target: "acme/headset/2.0.0/fw.dfu",
            version: "2.0.0",
            digest: "ab",
        },
        None,
        t0,
    );
    state.put_prompt(&p).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(t0 + chrono::Duration::minutes(5)));
    let (tx, rx) = std::sync::mpsc::channel();
    let mut server = ControlServer::bind(dir.path()).unwrap();
    if let Some(uid) = owner {
        server = server.owned_by(uid);
    }
    let handle = server.serve(state.clone(), clock, tx);
    Fx {
        handle: Some(handle),
        dir,
        state,
        wake: rx,
        id: p.id,
    }
}

#[test]
fn prompts_and_decisions_over_the_socket_are_durable_before_the_wake() {
    let f = fx();
    let sock = socket_path(f.dir.path());
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let r = request(f.dir.path(), &Request::Prompts).unwrap();
    assert_eq!(r.prompts.len(), 1);
    assert_eq!(r.prompts[0].id, f.id);
    assert!(f.wake.try_recv().is_err());

    let r = request(f.dir.path(), &Request::Accept { id: f.id.clone() }).unwrap();
    assert_eq!(r.prompt.unwrap().state, PromptState::Accepted);
    // The wake comes after the commit: the state has it when the daemon looks.
    assert_eq!(f.wake.recv().unwrap(), Wake::Act);
    let stored = f.state.prompt(&f.id).unwrap().unwrap();
    assert_eq!(stored.state, PromptState::Accepted);
    assert_eq!(
        stored.decided_at,
        Some(chrono::Utc.with_ymd_and_hms(2026, 11, 20, 9, 5, 0).unwrap())
    );
    // Accepted prompts are no longer listed.
    assert!(request(f.dir.path(), &Request::Prompts)
        .unwrap()
        .prompts
        .is_empty());

    // Refusals are errors with the reason, and change nothing.
    let cases = [
        (
            Request::Decline { id: f.id.clone() },
            format!("prompt {} is Accepted already", f.id),
        ),
        (
            Request::Defer { id: "nope".into() },
            "no prompt nope".to_owned(),
        ),
    ];
    for (req, want) in cases {
        match request(f.dir.path(), &req) {
            Err(ControlError::Refused(msg)) => assert_eq!(msg, want),
            other => panic!("{req:?}: {other:?}"),
        }
    }
    assert!(f.wake.try_recv().is_err());
}

#[test]
fn bad_requests_get_errors_and_the_connection_stays_usable() {
    let f = fx();
    let mut s = UnixStream::connect(socket_path(f.dir.path())).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut ask = |line: &[u8]| -> Response {
        s.write_all(line).unwrap();
        let mut answer = String::new();
        r.read_line(&mut answer).unwrap();
        serde_json::from_str(&answer).unwrap()
    };
    let cases: [(&[u8], &str); 4] = [
        (b"not json\n", "bad request"),
        (
            b"{\"command\":\"format_disk\"}\n",
            "bad request: unknown variant `format_disk`",
        ),
        (
            b"{\"command\":\"accept\"}\n",
            "bad request: missing field `id`",
        ),
        (
            b"{\"command\":\"accept\",\"id\":5}\n",
            "bad request: invalid type: integer `5`",
        ),
    ];
    for (line, want) in cases {
        let a = ask(line);
        assert!(!a.ok);
        assert!(a.error.as_deref().unwrap().starts_with(want), "{a:?}");
    }
    // Same connection, a good request.
    assert!(ask(b"{\"command\":\"prompts\"}\n").ok);
    // An endless line is cut off and the connection closed.
    let mut long = vec![b'x'; (MAX_LINE + 10) as usize];
    long.push(b'\n');
    let a = ask(&long);
    assert_eq!(a.error.as_deref(), Some("request too long"));
    assert_eq!(
        f.state.prompt(&f.id).unwrap().unwrap().state,
        PromptState::Open
    );
}

#[test]
fn one_agent_per_state_dir_stale_sockets_replaced_stop_removes_it() {
    let mut f = fx();
    let sock = socket_path(f.dir.path());
    assert!(matches!(
        ControlServer::bind(f.dir.path()),
        Err(ControlError::AlreadyRunning(_))
    ));
    f.handle.take().unwrap().stop();
    assert!(!sock.exists());
    assert!(matches!(
        request(f.dir.path(), &Request::Prompts),
        Err(ControlError::NotRunning(_))
    ));
    // A socket file nobody listens on (a crash) is replaced.
    drop(UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let server = ControlServer::bind(f.dir.path()).unwrap();
    assert_eq!(server.path(), sock);
}

/// Another user cannot use the socket even when the file and directory
/// modes would let them connect: the peer uid is checked. As root the test
/// really connects as `nobody` (with `setpriv`); any other user cannot
/// switch users, so the server is told it runs as another uid and our own
/// connection is the foreign one.
#[test]
fn another_users_connection_is_refused_by_peer_uid() {
    let me = rustix::process::getuid();
    let refusal = if me.is_root() {
        refused_as_nobody().error
    } else {
        let f = fx_owned_by(Some(me.as_raw() + 1));
        let answer = request(f.dir.path(), &Request::Accept { id: f.id.clone() });
        assert_eq!(
            f.state.prompt(&f.id).unwrap().unwrap().state,
            PromptState::Open
        );
        assert!(f.wake.try_recv().is_err());
        match answer {
            Err(ControlError::Refused(why)) => Some(why),
            other => panic!("not refused: {other:?}"),
        }
    };
    assert_eq!(
        refusal.as_deref(),
        Some("permission denied: not the agent's user")
    );
}

/// As root: `nobody` connects to a socket whose modes would let it in and
/// asks to accept the prompt.
fn refused_as_nobody() -> Response {
    let f = fx();
    let sock = socket_path(f.dir.path());
    std::fs::set_permissions(f.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    // perl-base and util-linux are essential packages on Debian.
    let script = "use IO::Socket::UNIX; $SIG{PIPE} = q(IGNORE); my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die \"connect: $!\"; \
                  print $s $ARGV[1], \"\\n\"; my $l = <$s>; print $l;";
    let req = format!("{{\"command\":\"accept\",\"id\":\"{}\"}}", f.id);
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/perl",
            "-e",
            script,
        ])
        .arg(&sock)
        .arg(&req)
        .output()
        .expect("setpriv (util-linux) and perl (perl-base) are needed for this test");
    assert!(
        out.status.success(),
        "{:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        f.state.prompt(&f.id).unwrap().unwrap().state,
        PromptState::Open
    );
    assert!(f.wake.try_recv().is_err());
    serde_json::from_slice(&out.stdout).unwrap()
}
