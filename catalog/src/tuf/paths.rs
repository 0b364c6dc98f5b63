//! Target names, role names, delegation path patterns and consistent-snapshot
//! target paths.

use sha2::{Digest, Sha256};

use super::error::TufError;
use super::metadata::{DelegatedRole, TargetFile};

/// Refuses target names that could escape a target directory or be ambiguous:
/// empty names, absolute paths, backslashes, NUL, empty, `.` or `..` components.
pub fn validate_target_name(name: &str) -> Result<(), TufError> {
    let refuse = |reason| {
        Err(TufError::UnsafeName {
            kind: "target",
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return refuse("empty name");
    }
    if name.starts_with('/') {
        return refuse("absolute path");
    }
    if name.contains('\\') {
        return refuse("contains a backslash");
    }
    if name.contains('\0') {
        return refuse("contains NUL");
    }
    for comp in name.split('/') {
        match comp {
            "" => return refuse("empty path component"),
            "." | ".." => return refuse("`.` or `..` path component"),
            _ => {}
        }
    }
    Ok(())
}

/// Refuses delegated role names that are unusable as metadata file names.
/// (File names are percent-encoded with [`quote`], so `/` cannot escape.)
pub fn validate_role_name(name: &str) -> Result<(), TufError> {
    let refuse = |reason| {
        Err(TufError::UnsafeName {
            kind: "role",
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return refuse("empty name");
    }
    if name == "." || name == ".." {
        return refuse("`.` or `..`");
    }
    if name.chars().any(char::is_control) {
        return refuse("contains a control character");
    }
    Ok(())
}

/// Percent-encodes everything except ASCII letters, digits and `_.-~`
/// (like Python's `urllib.parse.quote(s, safe="")`).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The file name under which a role's metadata is stored locally and requested
/// remotely (without version prefix): `quote(role) + ".json"`.
pub fn role_file_name(role: &str) -> String {
    format!("{}.json", quote(role))
}

/// The consistent-snapshot path of a target, relative to the targets directory:
/// `<dirs>/<sha256hex>.<basename>`, e.g. `fw/acme/0123…ef.image.bin` for
/// `fw/acme/image.bin`. The catalog stores blobs by sha256, so the entry must
/// carry a `sha256` hash. This is the path the mirror exporter and the server
/// must serve the blob under, and the path clients request.
pub fn consistent_target_path(name: &str, target: &TargetFile) -> Result<String, TufError> {
    validate_target_name(name)?;
    let sha = target
        .hashes
        .get("sha256")
        .ok_or_else(|| TufError::malformed(name, "target has no sha256 hash"))?;
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TufError::malformed(name, "sha256 is not 64 hex digits"));
    }
    Ok(prefixed(name, sha))
}

fn prefixed(name: &str, hash: &str) -> String {
    match name.rsplit_once('/') {
        Some((dir, base)) => format!("{dir}/{hash}.{base}"),
        None => format!("{hash}.{name}"),
    }
}

/// The path a client requests for a target: hash-prefixed with the sha256 (or
/// else the alphabetically first) hash when `consistent`, the name otherwise.
pub(crate) fn target_request_path(
    name: &str,
    target: &TargetFile,
    consistent: bool,
) -> Result<String, TufError> {
    validate_target_name(name)?;
    if !consistent {
        return Ok(name.to_string());
    }
    let hash = target
        .hashes
        .get("sha256")
        .or_else(|| target.hashes.values().next())
        .ok_or_else(|| TufError::malformed(name, "target has no hashes"))?;
    if hash.is_empty() || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TufError::malformed(name, "hash is not hex"));
    }
    Ok(prefixed(name, hash))
}

/// Whether `role` is trusted for `target` (its `paths` or `path_hash_prefixes`).
pub fn role_matches(role: &DelegatedRole, target: &str) -> bool {
    if let Some(patterns) = &role.paths {
        return patterns.iter().any(|p| path_matches(p, target));
    }
    if let Some(prefixes) = &role.path_hash_prefixes {
        let h = hex::encode(Sha256::digest(target.as_bytes()));
        return prefixes.iter().any(|p| h.starts_with(p.as_str()));
    }
    false
}

/// Shell-style match of a delegation pattern against a target path. Both are
/// split on `/` and must have the same number of components; each component is
/// matched with `*` (any run), `?` (one char) and `[...]`/`[!...]` classes, so a
/// wildcard never crosses a `/`.
pub fn path_matches(pattern: &str, target: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let t: Vec<&str> = target.split('/').collect();
    p.len() == t.len()
        && p.iter().zip(&t).all(|(p, t)| {
            let p: Vec<char> = p.chars().collect();
            let t: Vec<char> = t.chars().collect();
            glob(&p, &t)
        })
}

fn glob(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') => (0..=t.len()).any(|i| glob(&p[1..], &t[i..])),
        Some('?') => !t.is_empty() && glob(&p[1..], &t[1..]),
        Some('[') => match (class(&p[1..], t.first().copied()), t.is_empty()) {
            (Some((true, rest)), false) => glob(rest, &t[1..]),
            (Some(_), _) => false,
            // no closing bracket: a literal '['
            (None, _) => t.first() == Some(&'[') && glob(&p[1..], &t[1..]),
        },
        Some(c) => t.first() == Some(c) && glob(&p[1..], &t[1..]),
    }
}

/// Parses a class body after `[`; returns (matched, rest after `]`).
fn class(p: &[char], c: Option<char>) -> Option<(bool, &[char])> {
    let (negate, mut i) = match p.first() {
        Some('!') => (true, 1),
        _ => (false, 0),
    };
    let start = i;
    let mut hit = false;
    while i < p.len() {
        if p[i] == ']' && i > start {
            return Some((hit != negate && c.is_some(), &p[i + 1..]));
        }
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if let Some(c) = c {
                hit |= p[i] <= c && c <= p[i + 2];
            }
            i += 3;
        } else {
            hit |= Some(p[i]) == c;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_name_table() {
        let ok = [
            "a",
            "a/b.bin",
            "fw/acme/image-1.0.bin",
            "..a",
            "a..",
            "a/.b",
        ];
        let bad = [
            "", "/abs", "a//b", "a/", "../x", "a/../b", "a/..", ".", "./a", "a\\b", "a\0b",
        ];
        for n in ok {
            assert!(validate_target_name(n).is_ok(), "{n:?} should be accepted");
        }
        for n in bad {
            assert!(validate_target_name(n).is_err(), "{n:?} should be refused");
        }
    }

    #[test]
    fn role_names_and_quote() {
        assert!(validate_role_name("").is_err());
        assert!(validate_role_name("..").is_err());
        assert!(validate_role_name("a\nb").is_err());
        assert!(validate_role_name("ok-role").is_ok());
        assert_eq!(role_file_name("a/../b"), "a%2F..%2Fb.json");
        assert_eq!(quote("x y~_.-é"), "x%20y~_.-%C3%A9");
    }

    #[test]
    fn consistent_paths() {
        let t = TargetFile::from_data(b"abc", None);
        let h = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(
            consistent_target_path("fw/a/img.bin", &t).unwrap(),
            format!("fw/a/{h}.img.bin")
        );
        assert_eq!(
            consistent_target_path("img.bin", &t).unwrap(),
            format!("{h}.img.bin")
        );
        assert!(consistent_target_path("../img.bin", &t).is_err());
        assert_eq!(target_request_path("a/b", &t, false).unwrap(), "a/b");
    }

    #[test]
    fn pattern_table() {
        let cases = [
            ("*", "a", true),
            ("*", "a/b", false),
            ("*/*", "a/b", true),
            ("fw/*.bin", "fw/x.bin", true),
            ("fw/*.bin", "fw/x.txt", false),
            ("fw/*.bin", "fw/sub/x.bin", false),
            ("foo-version-?.tgz", "foo-version-2.tgz", true),
            ("foo-version-?.tgz", "foo-version-10.tgz", false),
            ("[ab]*", "bx", true),
            ("[!ab]*", "bx", false),
            ("[a-c]", "b", true),
            ("[a-c]", "d", false),
            ("a[", "a[", true),
            ("", "", true),
        ];
        for (p, t, want) in cases {
            assert_eq!(path_matches(p, t), want, "pattern {p:?} target {t:?}");
        }
    }

    #[test]
    fn hash_prefixes() {
        let mut r: DelegatedRole = serde_json::from_value(serde_json::json!({
            "name": "r", "keyids": [], "threshold": 1,
            "path_hash_prefixes": ["ba78"]
        }))
        .unwrap();
        // sha256("abc") starts with ba78
        assert!(role_matches(&r, "abc"));
        assert!(!role_matches(&r, "abd"));
        r.path_hash_prefixes = None;
        assert!(!role_matches(&r, "abc"));
    }

    proptest::proptest! {
        #[test]
        fn accepted_target_names_stay_inside(
            parts in proptest::collection::vec(
                proptest::sample::select(vec!["a", ".", "..", "/", "\\", "\0", "é", "b.bin", ""]),
                0..8,
            )
        ) {
            let name: String = parts.concat();
            if validate_target_name(&name).is_ok() {
                let p = std::path::Path::new(&name);
                proptest::prop_assert!(p
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_))));
                let q = quote(&name);
                proptest::prop_assert!(!q.contains('/') && q != "." && q != "..");
            }
        }
    }
}
