//! Threshold signature verification.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use super::error::TufError;
use super::keys::{PublicKey, Verification};
use super::metadata::{Root, Signature, Signed};

/// One step of the root chain (TUF 5.3.4–5.3.5): `bytes` must be root
/// version `trusted.version + 1`, signed by the threshold of `trusted`'s
/// root keys and by its own. The one rule the client, the serving host's
/// adoption of offline-signed roots and the agent's enrollment all apply.
pub fn verify_next_root(trusted: &Root, bytes: &[u8]) -> Result<Signed<Root>, TufError> {
    let next = trusted.version + 1;
    let what = format!("root v{next}");
    let new = Signed::<Root>::from_slice(&what, bytes)?;
    let old_role = trusted.role("root")?;
    new.verify(
        &format!("{what} (by trusted root v{})", trusted.version),
        &trusted.keys,
        &old_role.keyids,
        old_role.threshold,
    )?;
    let new_role = new.signed.role("root")?;
    new.verify(
        &format!("{what} (by itself)"),
        &new.signed.keys,
        &new_role.keyids,
        new_role.threshold,
    )?;
    if new.signed.version != next {
        return Err(TufError::WrongVersion {
            role: format!("{next}.root.json"),
            found: new.signed.version,
            expected: next,
        });
    }
    Ok(new)
}

/// A root's fingerprint: lowercase hex SHA-256 of the canonical JSON of its
/// `signed` object (what its signatures cover, whatever the file's layout).
/// Installers pin the catalog's first root by it.
pub fn root_fingerprint(root: &Signed<Root>) -> String {
    hex::encode(Sha256::digest(root.canonical_signed()))
}

/// Parses a root file and checks it is signed by its own threshold.
pub fn verify_self_signed_root(what: &str, bytes: &[u8]) -> Result<Signed<Root>, TufError> {
    let root = Signed::<Root>::from_slice(what, bytes)?;
    let role = root.signed.role("root")?;
    root.verify(what, &root.signed.keys, &role.keyids, role.threshold)?;
    Ok(root)
}

/// Counts distinct authorised keys with a valid signature over `msg` and fails
/// unless at least `threshold` are found.
///
/// - Only key ids listed in `keyids` (and present in `keys`) count.
/// - Each key id counts once, however many signatures name it.
/// - One key's material listed under two key ids counts once.
/// - Unsupported key types/schemes never count but are not an error.
/// - `threshold` 0 is an error (it would accept unsigned metadata).
pub fn verify_threshold(
    role: &str,
    msg: &[u8],
    signatures: &[Signature],
    keys: &BTreeMap<String, PublicKey>,
    keyids: &[String],
    threshold: u32,
) -> Result<(), TufError> {
    if threshold == 0 {
        return Err(TufError::malformed(role, "threshold 0 is invalid"));
    }
    let authorised: BTreeSet<&str> = keyids.iter().map(String::as_str).collect();
    let mut counted_ids: BTreeSet<&str> = BTreeSet::new();
    let mut counted_material = BTreeSet::new();
    for sig in signatures {
        let id = sig.keyid.as_str();
        if !authorised.contains(id) || counted_ids.contains(id) {
            continue;
        }
        let Some(key) = keys.get(id) else { continue };
        if key.verify(msg, &sig.sig) != Verification::Valid {
            continue;
        }
        if !counted_material.insert(key.material()) {
            continue;
        }
        counted_ids.insert(id);
    }
    if counted_ids.len() < threshold as usize {
        return Err(TufError::Threshold {
            role: role.to_string(),
            valid: counted_ids.len(),
            threshold,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::signer::Ed25519Signer;

    struct Fixture {
        a: Ed25519Signer,
        b: Ed25519Signer,
        keys: BTreeMap<String, PublicKey>,
        ids: Vec<String>,
    }

    fn fixture() -> Fixture {
        let a = Ed25519Signer::generate().unwrap();
        let b = Ed25519Signer::generate().unwrap();
        let mut keys = BTreeMap::new();
        keys.insert(a.key_id().to_string(), a.public_key().clone());
        keys.insert(b.key_id().to_string(), b.public_key().clone());
        let ids = vec![a.key_id().to_string(), b.key_id().to_string()];
        Fixture { a, b, keys, ids }
    }

    fn count(f: &Fixture, sigs: &[Signature], threshold: u32) -> Result<(), TufError> {
        verify_threshold("t", b"m", sigs, &f.keys, &f.ids, threshold)
    }

    #[test]
    fn threshold_counting_table() {
        let f = fixture();
        let sa = f.a.sign(b"m");
        let sb = f.b.sign(b"m");
        let mut bad = f.b.sign(b"m");
        bad.sig = f.b.sign(b"other").sig;
        let cases: Vec<(Vec<Signature>, u32, Option<usize>)> = vec![
            (vec![sa.clone()], 1, None),
            (vec![sa.clone(), sb.clone()], 2, None),
            (vec![sa.clone(), sa.clone()], 2, Some(1)),
            (vec![sa.clone(), sa.clone(), sa.clone()], 3, Some(1)),
            (vec![sa.clone(), bad.clone()], 2, Some(1)),
            (vec![bad.clone(), sb.clone()], 1, None),
            (vec![], 1, Some(0)),
        ];
        for (sigs, threshold, expect_fail) in cases {
            match (count(&f, &sigs, threshold), expect_fail) {
                (Ok(()), None) => {}
                (Err(TufError::Threshold { valid, .. }), Some(n)) => assert_eq!(valid, n),
                (r, e) => panic!("sigs {sigs:?} threshold {threshold}: got {r:?}, wanted {e:?}"),
            }
        }
    }

    #[test]
    fn threshold_zero_is_invalid() {
        let f = fixture();
        let r = count(&f, &[f.a.sign(b"m")], 0);
        assert!(matches!(r, Err(TufError::Malformed { .. })), "{r:?}");
    }

    #[test]
    fn same_key_under_two_ids_counts_once() {
        let f = fixture();
        let mut keys = f.keys.clone();
        keys.insert("alias".into(), f.a.public_key().clone());
        let ids = vec![f.a.key_id().to_string(), "alias".to_string()];
        let sa = f.a.sign(b"m");
        let mut alias = sa.clone();
        alias.keyid = "alias".into();
        let r = verify_threshold("t", b"m", &[sa, alias], &keys, &ids, 2);
        assert!(
            matches!(r, Err(TufError::Threshold { valid: 1, .. })),
            "{r:?}"
        );
    }

    #[test]
    fn unauthorised_and_unsupported_keys_do_not_count() {
        let f = fixture();
        let c = Ed25519Signer::generate().unwrap();
        let mut keys = f.keys.clone();
        let mut weird = c.public_key().clone();
        weird.scheme = "future-scheme".into();
        keys.insert(c.key_id().to_string(), weird);
        let ids = vec![f.a.key_id().to_string(), c.key_id().to_string()];
        // c's key is unsupported, b is not authorised: only a counts.
        let sigs = [f.a.sign(b"m"), f.b.sign(b"m"), c.sign(b"m")];
        assert!(verify_threshold("t", b"m", &sigs, &keys, &ids, 1).is_ok());
        let r = verify_threshold("t", b"m", &sigs, &keys, &ids, 2);
        assert!(
            matches!(r, Err(TufError::Threshold { valid: 1, .. })),
            "{r:?}"
        );
    }
}
