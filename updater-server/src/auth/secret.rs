//! Bearer tokens and password hashes.
//!
//! Tokens are `upd<kind>_<tenant>_<id>_<secret>` (enrollment tokens have no
//! id): the tenant and id locate the record with one point read, and only the
//! SHA-256 of the 256-bit random secret is stored, compared in constant time.
//! A fast hash is right for such secrets; passwords get argon2id.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

/// What a token is for (its prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An admin login session: `upds_`.
    Session,
    /// A partner application's API token: `updt_`.
    Api,
    /// A tenant's agent enrollment token: `upde_`.
    Enrollment,
    /// An enrolled agent's credential: `upda_`.
    Agent,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Session => "upds",
            TokenKind::Api => "updt",
            TokenKind::Enrollment => "upde",
            TokenKind::Agent => "upda",
        }
    }
}

/// A parsed token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedToken {
    /// Its kind.
    pub kind: TokenKind,
    /// The tenant it claims.
    pub tenant: String,
    /// The record id (empty for enrollment tokens).
    pub id: String,
    /// The secret part.
    pub secret: String,
}

/// `n` random bytes from the OS, hex encoded.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A new random id (64 bits, hex).
pub fn new_id() -> String {
    random_hex(8)
}

/// A new token for `(tenant, id)`; returns the token and its secret's hash.
pub fn new_token(kind: TokenKind, tenant: &str, id: &str) -> (String, String) {
    let secret = random_hex(32);
    let token = if kind == TokenKind::Enrollment {
        format!("{}_{tenant}_{secret}", kind.prefix())
    } else {
        format!("{}_{tenant}_{id}_{secret}", kind.prefix())
    };
    let hash = sha256_hex(&secret);
    (token, hash)
}

fn is_hex(s: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&s.len()) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parses a token of any kind; `None` for anything malformed.
pub fn parse_token(token: &str) -> Option<ParsedToken> {
    let mut parts = token.split('_');
    let prefix = parts.next()?;
    let kind = [
        TokenKind::Session,
        TokenKind::Api,
        TokenKind::Enrollment,
        TokenKind::Agent,
    ]
    .into_iter()
    .find(|k| k.prefix() == prefix)?;
    let tenant = parts.next()?;
    let id = if kind == TokenKind::Enrollment {
        ""
    } else {
        parts.next()?
    };
    let secret = parts.next()?;
    if parts.next().is_some()
        || !is_hex(tenant, 1..=32)
        || (kind != TokenKind::Enrollment && !is_hex(id, 1..=32))
        || !is_hex(secret, 64..=64)
    {
        return None;
    }
    Some(ParsedToken {
        kind,
        tenant: tenant.to_owned(),
        id: id.to_owned(),
        secret: secret.to_owned(),
    })
}

/// Hex SHA-256.
pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Whether `secret` hashes to `stored_hash`, in time independent of where they differ.
pub fn secret_matches(secret: &str, stored_hash: &str) -> bool {
    let a = sha256_hex(secret);
    let (a, b) = (a.as_bytes(), stored_hash.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hashes a password with argon2id (default parameters) into a PHC string.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Verifies a password against a PHC string; a malformed hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A valid hash of a random password, verified against when the account does
/// not exist so that a login takes as long either way.
pub fn dummy_password_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_hex(16)).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let (tok, hash) = new_token(TokenKind::Session, "0123abcd", "ff00");
        let p = parse_token(&tok).unwrap();
        assert_eq!(p.kind, TokenKind::Session);
        assert_eq!((p.tenant.as_str(), p.id.as_str()), ("0123abcd", "ff00"));
        assert!(secret_matches(&p.secret, &hash));
        let (enr, ehash) = new_token(TokenKind::Enrollment, "0123abcd", "");
        let e = parse_token(&enr).unwrap();
        assert_eq!((e.kind, e.id.as_str()), (TokenKind::Enrollment, ""));
        assert!(secret_matches(&e.secret, &ehash));

        let mut flipped = p.secret.clone().into_bytes();
        flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
        assert!(!secret_matches(&String::from_utf8(flipped).unwrap(), &hash));

        let secret = "a".repeat(64);
        for bad in [
            String::new(),
            "upds".into(),
            format!("upds_ab_cd_{secret}_x"),
            format!("upds_ab_{secret}"),
            format!("updx_ab_cd_{secret}"),
            format!("upds_AB_cd_{secret}"),
            format!("upds_ab_cd_{}", "a".repeat(63)),
            format!("upds__cd_{secret}"),
            format!("upde_ab_cd_{secret}"),
            format!("Bearer upds_ab_cd_{secret}"),
        ] {
            assert_eq!(parse_token(&bad), None, "{bad}");
        }
    }

    #[test]
    fn passwords() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horse ", &h));
        assert!(!verify_password("correct horse", "not a phc string"));
        assert!(!verify_password("", dummy_password_hash()));
    }
}
