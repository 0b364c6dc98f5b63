use chrono::TimeZone;

use super::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap()
}

fn subject() -> PromptSubject<'static> {
    PromptSubject {
        device: "1209/serial/SN-1",
        product: Some("Voyage 5200 USB headset"),
        target: "acme/headset/2.0.0/fw.dfu",
        version: "2.0.0",
        digest: "ab12",
    }
}

#[test]
fn ids_are_stable_and_differ_by_kind_device_and_digest() {
    let a = prompt_id(PromptKind::UpdateAvailable, "d1", "x");
    assert_eq!(a, prompt_id(PromptKind::UpdateAvailable, "d1", "x"));
    assert_eq!(a.len(), 10);
    for other in [
        prompt_id(PromptKind::UpdateRequired, "d1", "x"),
        prompt_id(PromptKind::UpdateAvailable, "d2", "x"),
        prompt_id(PromptKind::UpdateAvailable, "d1", "y"),
        // The separator keeps ("d1","x") and ("d","1x") apart.
        prompt_id(PromptKind::UpdateAvailable, "d", "1x"),
    ] {
        assert_ne!(a, other);
    }
}

#[test]
fn decisions_table() {
    use Decision::*;
    use PromptKind::*;
    use PromptState::*;
    // (kind, state, deferrals, max, decision) -> Ok(new state, deferrals) or the error's message
    type Case = (
        PromptKind,
        PromptState,
        u32,
        Option<u32>,
        Decision,
        Result<(PromptState, u32), &'static str>,
    );
    let cases: Vec<Case> = vec![
        (UpdateAvailable, Open, 0, None, Accept, Ok((Accepted, 0))),
        (UpdateAvailable, Open, 0, None, Decline, Ok((Declined, 0))),
        (UpdateAvailable, Open, 0, None, Defer, Ok((Deferred, 0))),
        (
            UpdateAvailable,
            Deferred,
            0,
            None,
            Decline,
            Ok((Declined, 0)),
        ),
        (
            UpdateAvailable,
            Declined,
            0,
            None,
            Accept,
            Err("is Declined already"),
        ),
        (UpdateRequired, Open, 0, Some(2), Defer, Ok((Deferred, 1))),
        (
            UpdateRequired,
            Deferred,
            1,
            Some(2),
            Defer,
            Ok((Deferred, 2)),
        ),
        (
            UpdateRequired,
            Open,
            2,
            Some(2),
            Defer,
            Err("no deferrals left (2 of 2 used)"),
        ),
        (UpdateRequired, Open, 7, None, Defer, Ok((Deferred, 8))),
        (UpdateRequired, Open, 2, Some(2), Accept, Ok((Accepted, 2))),
        (
            UpdateRequired,
            Open,
            0,
            Some(2),
            Decline,
            Err("cannot be answered with decline"),
        ),
        (
            Replug,
            Open,
            0,
            None,
            Decline,
            Err("cannot be answered with decline"),
        ),
        (Replug, Open, 0, None, Accept, Ok((Accepted, 0))),
        (Replug, Open, 0, None, Defer, Ok((Deferred, 0))),
        (Replug, Done, 0, None, Accept, Err("is Done already")),
    ];
    for (kind, state, deferrals, max, decision, want) in cases {
        let mut p = Prompt::new(kind, &subject(), max, t0());
        p.state = state;
        p.deferrals = deferrals;
        let got = p.decide(decision, t0() + chrono::Duration::minutes(1));
        match (got, want) {
            (Ok(q), Ok((s, n))) => {
                assert_eq!(
                    (q.state, q.deferrals),
                    (s, n),
                    "{kind:?} {state:?} {decision}"
                );
                assert_eq!(q.decided_at, Some(t0() + chrono::Duration::minutes(1)));
            }
            (Err(e), Err(msg)) => assert!(e.to_string().contains(msg), "{e} / {msg}"),
            (got, want) => panic!("{kind:?} {state:?} {decision}: {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn messages_name_the_product_version_and_limit() {
    let p = Prompt::new(PromptKind::UpdateRequired, &subject(), Some(3), t0());
    assert_eq!(
        p.message,
        "Firmware 2.0.0 is required for Voyage 5200 USB headset. Accept to install it now, or defer (at most 3 times)."
    );
    assert_eq!(p.deferrals_left(), Some(3));
    let r = Prompt::new(PromptKind::Replug, &subject(), None, t0());
    assert!(r.message.contains("Unplug the device and plug it in again"));
    assert!(r.is_shown());
}

#[cfg(unix)]
#[test]
fn the_command_gets_kind_id_and_json_without_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("seen");
    // `sh -c SCRIPT NAME ARGS…`: the script sees kind and id as $1 and $2;
    // the prompt's text ("$(…)" included) is data on stdin, never evaluated.
    let script = format!(
        "printf '%s %s\\n' \"$1\" \"$2\" > {0}; cat >> {0}",
        out.display()
    );
    let n = CommandNotifier::new(vec!["sh".into(), "-c".into(), script, "notify".into()]).unwrap();
    let mut p = Prompt::new(PromptKind::UpdateAvailable, &subject(), None, t0());
    p.message = "$(touch pwned) `touch pwned`".into();
    n.run(&p).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let (first, json) = text.split_once('\n').unwrap();
    assert_eq!(first, format!("update_available {}", p.id));
    let back: Prompt = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(back, p);
    assert!(!dir.path().join("pwned").exists());
    assert!(!std::path::Path::new("pwned").exists());

    let fails = CommandNotifier::new(vec!["false".into()]).unwrap();
    assert!(matches!(fails.run(&p), Err(NotifyError::Status { .. })));
    let missing = CommandNotifier::new(vec!["/nonexistent/notify".into()]).unwrap();
    assert!(matches!(missing.run(&p), Err(NotifyError::Io { .. })));
    assert!(matches!(
        CommandNotifier::new(vec![]),
        Err(NotifyError::Empty)
    ));
    assert!(matches!(
        CommandNotifier::new(vec![" ".into()]),
        Err(NotifyError::Empty)
    ));
}
