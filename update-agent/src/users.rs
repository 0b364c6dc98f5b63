//! The accounts with sessions on this host, and the names the check-in
//! reports for them.
//!
//! Sources, first that yields anything: systemd-logind's session files
//! (`/run/systemd/sessions/*`, sessions of class `user…` that are not
//! closing), the utmp file (`USER_PROCESS` records), then the agent's own
//! `USER` / `LOGNAME`. The tenant's rules then drop excluded accounts and
//! record shared ones as `account@hostname`, as the server does.

use std::collections::BTreeSet;
use std::path::Path;

use catalog::checkin::{AccountRules, MAX_TEXT, MAX_USERS};

/// systemd-logind's runtime session files.
pub const LOGIND_SESSIONS: &str = "/run/systemd/sessions";
/// The utmp file.
pub const UTMP: &str = "/var/run/utmp";

/// Size of one glibc `struct utmp` record on Linux (32- and 64-bit alike).
pub const UTMP_RECORD: usize = 384;
/// `ut_type` of a user's login.
const USER_PROCESS: i16 = 7;
/// Offset and size of `ut_user`.
const UT_USER: (usize, usize) = (44, 32);

/// One logged-in account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    /// The account as the OS knows it (what LDAP filters get as `$user$`).
    pub account: String,
    /// The name reported at check-in (`account@hostname` for shared accounts).
    pub name: String,
}

/// Whether a name can be reported (non-empty, short, no control characters).
fn usable(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_TEXT && !name.chars().any(char::is_control)
}

/// The user of one logind session file, if it is a live user session.
pub fn parse_logind_session(text: &str) -> Option<String> {
    let mut user = None;
    let mut class = None;
    let mut state = None;
    for line in text.lines() {
        match line.split_once('=') {
            Some(("USER", v)) => user = Some(v.trim()),
            Some(("CLASS", v)) => class = Some(v.trim()),
            Some(("STATE", v)) => state = Some(v.trim()),
            _ => {}
        }
    }
    // Classes: user, user-early, user-incomplete, user-light are people;
    // greeter, lock-screen, background, manager are not.
    let person = class.is_none_or(|c| c.starts_with("user"));
    let live = state != Some("closing");
    user.filter(|u| person && live && usable(u))
        .map(str::to_owned)
}

/// The users of every live session under a logind sessions directory.
pub fn logind_accounts(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        // Session files are small; anything else (`*.ref` pipes) is skipped.
        if !entry.file_type()?.is_file() || entry.metadata()?.len() > 64 * 1024 {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        out.extend(parse_logind_session(&text));
    }
    Ok(out.into_iter().collect())
}

/// The users of the `USER_PROCESS` records of utmp bytes (native byte
/// order; a trailing partial record is ignored).
pub fn utmp_accounts(bytes: &[u8]) -> Vec<String> {
    let mut out = BTreeSet::new();
    for rec in bytes.chunks_exact(UTMP_RECORD) {
        let ut_type = i16::from_ne_bytes([rec[0], rec[1]]);
        if ut_type != USER_PROCESS {
            continue;
        }
        let raw = &rec[UT_USER.0..UT_USER.0 + UT_USER.1];
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        if let Ok(user) = std::str::from_utf8(&raw[..end]) {
            if usable(user) {
                out.insert(user.to_owned());
            }
        }
    }
    out.into_iter().collect()
}

/// The account the agent runs as, from `USER` / `LOGNAME`.
pub fn env_account() -> Option<String> {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .filter(|u| usable(u))
}

/// The accounts with sessions on this host, sorted, without duplicates.
pub fn logged_in_accounts() -> Vec<String> {
    logged_in_accounts_from(Path::new(LOGIND_SESSIONS), Path::new(UTMP))
}

/// [`logged_in_accounts`] with the sources' paths given.
pub fn logged_in_accounts_from(logind: &Path, utmp: &Path) -> Vec<String> {
    if let Ok(a) = logind_accounts(logind) {
        if !a.is_empty() {
            return a;
        }
    }
    if let Ok(bytes) = std::fs::read(utmp) {
        let a = utmp_accounts(&bytes);
        if !a.is_empty() {
            return a;
        }
    }
    env_account().into_iter().collect()
}

/// Applies the tenant's rules: excluded accounts are dropped, shared ones
/// named `account@hostname`. At most [`MAX_USERS`] are kept.
pub fn session_users(
    accounts: &[String],
    rules: &AccountRules,
    hostname: &str,
) -> Vec<SessionUser> {
    let mut out: Vec<SessionUser> = Vec::new();
    for a in accounts {
        let Some(name) = rules.user_name(a, hostname).filter(|n| usable(n)) else {
            continue;
        };
        if !out.iter().any(|u| u.name == name) {
            out.push(SessionUser {
                account: a.clone(),
                name,
            });
        }
    }
    out.truncate(MAX_USERS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logind(user: &str, class: &str, state: &str) -> String {
        format!(
            "# This is private data. Do not parse.\nUID=1000\nUSER={user}\nACTIVE=1\nIS_DISPLAY=1\nSTATE={state}\nREMOTE=0\nTYPE=x11\nCLASS={class}\nSEAT=seat0\n"
        )
    }

    #[test]
    fn logind_session_files() {
        for (text, want) in [
            (logind("ann", "user", "active"), Some("ann")),
            (logind("bob", "user-early", "online"), Some("bob")),
            (logind("gdm", "greeter", "active"), None),
            (logind("ann", "manager", "active"), None),
            (logind("ann", "background", "online"), None),
            (logind("carl", "user", "closing"), None),
            ("UID=0\nSTATE=active\n".to_owned(), None),
            ("USER=dora\n".to_owned(), Some("dora")),
            ("USER=\nCLASS=user\n".to_owned(), None),
        ] {
            assert_eq!(parse_logind_session(&text).as_deref(), want, "{text}");
        }
    }

    #[test]
    fn logind_directory_fixture() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path();
        std::fs::write(s.join("2"), logind("ann", "user", "active")).unwrap();
        std::fs::write(s.join("3"), logind("ann", "user", "online")).unwrap();
        std::fs::write(s.join("c1"), logind("gdm", "greeter", "active")).unwrap();
        std::fs::write(s.join("7"), logind("kiosk", "user", "active")).unwrap();
        std::fs::create_dir(s.join("sub")).unwrap();
        assert_eq!(logind_accounts(s).unwrap(), vec!["ann", "kiosk"]);
        assert!(logind_accounts(&s.join("missing")).is_err());
    }

    fn utmp_record(ut_type: i16, user: &[u8]) -> Vec<u8> {
        let mut r = vec![0u8; UTMP_RECORD];
        r[..2].copy_from_slice(&ut_type.to_ne_bytes());
        r[8..13].copy_from_slice(b"tty1\0");
        r[UT_USER.0..UT_USER.0 + user.len()].copy_from_slice(user);
        r
    }

    #[test]
    fn utmp_fixture() {
        let mut bytes = Vec::new();
        bytes.extend(utmp_record(2, b"reboot")); // BOOT_TIME
        bytes.extend(utmp_record(6, b"LOGIN")); // LOGIN_PROCESS
        bytes.extend(utmp_record(USER_PROCESS, b"bob"));
        bytes.extend(utmp_record(USER_PROCESS, b"ann"));
        bytes.extend(utmp_record(USER_PROCESS, b"bob"));
        bytes.extend(utmp_record(8, b"carl")); // DEAD_PROCESS
        bytes.extend(utmp_record(USER_PROCESS, b"bad\x01name"));
        bytes.extend(utmp_record(USER_PROCESS, &[b'x'; 32])); // no NUL: all 32
        bytes.extend(utmp_record(USER_PROCESS, b"\xff\xfe"));
        bytes.extend(&utmp_record(USER_PROCESS, b"partial")[..100]);
        assert_eq!(
            utmp_accounts(&bytes),
            vec!["ann".to_owned(), "bob".to_owned(), "x".repeat(32)]
        );
        assert!(utmp_accounts(&[]).is_empty());
    }

    #[test]
    fn sources_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = dir.path().join("sessions");
        std::fs::create_dir(&sessions).unwrap();
        let utmp = dir.path().join("utmp");
        std::fs::write(&utmp, utmp_record(USER_PROCESS, b"bob")).unwrap();
        // logind has no user session: utmp.
        std::fs::write(sessions.join("c1"), logind("gdm", "greeter", "active")).unwrap();
        assert_eq!(logged_in_accounts_from(&sessions, &utmp), vec!["bob"]);
        // logind first.
        std::fs::write(sessions.join("2"), logind("ann", "user", "active")).unwrap();
        assert_eq!(logged_in_accounts_from(&sessions, &utmp), vec!["ann"]);
        // Neither: the environment (whatever it says, at most one usable name).
        let none = dir.path().join("none");
        let env = logged_in_accounts_from(&none, &none);
        assert_eq!(env, env_account().into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn excluded_and_shared_accounts() {
        let rules = AccountRules {
            shared: vec!["Kiosk".into()],
            excluded: vec!["svc-backup".into()],
        };
        let accounts: Vec<String> = ["ann", "kiosk", "SVC-BACKUP", "bob"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let got = session_users(&accounts, &rules, "ws-1");
        let got: Vec<(&str, &str)> = got
            .iter()
            .map(|u| (u.account.as_str(), u.name.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![("ann", "ann"), ("kiosk", "kiosk@ws-1"), ("bob", "bob")]
        );
        // A shared name that would be too long is dropped, not cut.
        let long = "k".repeat(MAX_TEXT);
        let rules = AccountRules {
            shared: vec![long.clone()],
            excluded: vec![],
        };
        assert!(session_users(&[long], &rules, "ws-1").is_empty());
    }
}
