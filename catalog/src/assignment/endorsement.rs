//! The offline targets role vouches for each tenant's online assignment key.
//!
//! An assignment key sits on the serving host (it signs at every check-in),
//! so an agent must not take it on the server's word alone: a man in the
//! middle at re-enrollment, or a server that swapped keys, would otherwise
//! decide what every agent installs. The key is therefore published as a
//! catalog target, `assignment-keys/<tenant>.json`, signed by the targets
//! role like a release: its file is the [`KeyEndorsement`] in canonical JSON,
//! and its `custom` field carries the same document so an agent can check it
//! from the verified targets metadata without a download.
//!
//! An agent accepts a key at enrollment only when the targets it verified
//! from its pinned root endorse it for its tenant, and acts on assignments
//! only while they still do ([`check_endorsed`]); endorsing another key for
//! the tenant (a rotation) or removing the target revokes the old one.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Sha256Digest;
use crate::tuf::{to_canonical_json, PublicKey, TargetFile, Targets, TufError};

/// The target directory of the endorsements.
pub const ENDORSEMENT_DIR: &str = "assignment-keys";

/// The `custom` field of an endorsement target.
const CUSTOM_FIELD: &str = "assignment_key";

/// A tenant's assignment key, as the targets role endorses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEndorsement {
    /// The tenant the key signs for.
    pub tenant: String,
    /// The TUF key id of `key`.
    pub keyid: String,
    /// The public key.
    pub key: PublicKey,
}

/// Why an endorsement document or an endorsed key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndorsementError {
    /// The document does not parse or does not hold together.
    #[error("not an assignment key endorsement: {0}")]
    Invalid(String),
    /// The verified targets do not vouch for this key.
    #[error("the catalog's signed targets do not endorse assignment key {keyid} for tenant {tenant} ({found}); an administrator endorses it on the signing host with `catalog endorse` (docs/security.md, key ceremony)")]
    NotEndorsed {
        /// The tenant.
        tenant: String,
        /// The key offered.
        keyid: String,
        /// What the targets say instead.
        found: String,
    },
}

/// Tenant ids are 16 lower-case hex digits; anything else cannot name a
/// target file safely.
fn check_tenant(tenant: &str) -> Result<(), EndorsementError> {
    if tenant.len() == 16
        && tenant
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(EndorsementError::Invalid(format!(
            "tenant id {tenant:?} is not 16 lower-case hex digits"
        )))
    }
}

impl KeyEndorsement {
    /// The endorsement of `key` for `tenant`.
    pub fn new(tenant: &str, key: PublicKey) -> Result<Self, EndorsementError> {
        check_tenant(tenant)?;
        let keyid = key
            .key_id()
            .map_err(|e| EndorsementError::Invalid(e.to_string()))?;
        Ok(Self {
            tenant: tenant.to_owned(),
            keyid,
            key,
        })
    }

    /// Parses and checks a document: a valid tenant id, and a key id that is
    /// the key's.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EndorsementError> {
        let e: Self =
            serde_json::from_slice(bytes).map_err(|e| EndorsementError::Invalid(e.to_string()))?;
        e.checked()
    }

    fn checked(self) -> Result<Self, EndorsementError> {
        let again = Self::new(&self.tenant, self.key.clone())?;
        if again.keyid != self.keyid {
            return Err(EndorsementError::Invalid(format!(
                "key id {} is not the id of its key ({})",
                self.keyid, again.keyid
            )));
        }
        Ok(self)
    }

    /// The target name of `tenant`'s endorsement.
    pub fn target_name_for(tenant: &str) -> String {
        format!("{ENDORSEMENT_DIR}/{tenant}.json")
    }

    /// This endorsement's target name.
    pub fn target_name(&self) -> String {
        Self::target_name_for(&self.tenant)
    }

    /// The target file's bytes: the document in canonical JSON.
    pub fn to_bytes(&self) -> Result<Vec<u8>, TufError> {
        to_canonical_json(self)
    }

    /// The signed target entry for these bytes.
    pub fn target_file(&self) -> Result<TargetFile, TufError> {
        let bytes = self.to_bytes()?;
        let custom = serde_json::json!({ CUSTOM_FIELD: self });
        Ok(TargetFile::new(
            bytes.len() as u64,
            *Sha256Digest::of(&bytes).as_bytes(),
            Some(custom),
        ))
    }

    /// The endorsement a target entry carries, if it is one. A target under
    /// [`ENDORSEMENT_DIR`] whose custom field is not a valid endorsement of
    /// its own tenant is an error, not "none".
    pub fn from_target(name: &str, target: &TargetFile) -> Option<Result<Self, EndorsementError>> {
        let tenant = name
            .strip_prefix(ENDORSEMENT_DIR)?
            .strip_prefix('/')?
            .strip_suffix(".json")?;
        let parsed = target
            .custom
            .as_ref()
            .and_then(|c| c.get(CUSTOM_FIELD))
            .cloned()
            .ok_or_else(|| EndorsementError::Invalid(format!("{name} has no {CUSTOM_FIELD}")))
            .and_then(|v: Value| {
                serde_json::from_value::<Self>(v)
                    .map_err(|e| EndorsementError::Invalid(format!("{name}: {e}")))
            })
            .and_then(Self::checked)
            .and_then(|e| {
                if e.tenant == tenant {
                    Ok(e)
                } else {
                    Err(EndorsementError::Invalid(format!(
                        "{name} endorses a key for tenant {}",
                        e.tenant
                    )))
                }
            })
            .and_then(|e| match e.target_file() {
                Ok(own) if own.length == target.length && own.hashes == target.hashes => Ok(e),
                _ => Err(EndorsementError::Invalid(format!(
                    "{name}: the signed length and hashes are not those of the endorsement"
                ))),
            });
        Some(parsed)
    }
}

/// Whether the verified `targets` endorse `key` for `tenant`.
pub fn check_endorsed(
    targets: &Targets,
    tenant: &str,
    key: &PublicKey,
) -> Result<(), EndorsementError> {
    let keyid = key
        .key_id()
        .map_err(|e| EndorsementError::Invalid(e.to_string()))?;
    let not = |found: String| EndorsementError::NotEndorsed {
        tenant: tenant.to_owned(),
        keyid: keyid.clone(),
        found,
    };
    let name = KeyEndorsement::target_name_for(tenant);
    let Some(target) = targets.targets.get(&name) else {
        return Err(not(format!("they list no {name}")));
    };
    match KeyEndorsement::from_target(&name, target) {
        Some(Ok(e)) if e.key == *key => Ok(()),
        Some(Ok(e)) => Err(not(format!("they endorse key {} instead", e.keyid))),
        Some(Err(e)) => Err(not(e.to_string())),
        None => Err(not(format!("{name} is not an endorsement"))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::tuf::Ed25519Signer;

    const TENANT: &str = "0123456789abcdef";

    fn targets_with(entries: Vec<(String, TargetFile)>) -> Targets {
        Targets {
            type_: "targets".into(),
            spec_version: crate::tuf::SPEC_VERSION.into(),
            version: 1,
            expires: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
            targets: entries.into_iter().collect::<BTreeMap<_, _>>(),
            delegations: None,
            extra: BTreeMap::new(),
        }
    }

    #[test]
    fn only_the_endorsed_key_of_the_tenant_passes() {
        let key = Ed25519Signer::generate().unwrap().public_key().clone();
        let other = Ed25519Signer::generate().unwrap().public_key().clone();
        let e = KeyEndorsement::new(TENANT, key.clone()).unwrap();
        let own = (e.target_name(), e.target_file().unwrap());
        assert_eq!(own.0, "assignment-keys/0123456789abcdef.json");
        assert_eq!(
            KeyEndorsement::from_json(&e.to_bytes().unwrap()).unwrap(),
            e
        );

        let mut foreign_tenant = e.target_file().unwrap();
        let theirs = KeyEndorsement::new("fedcba9876543210", key.clone()).unwrap();
        foreign_tenant.custom = theirs.target_file().unwrap().custom;
        let mut wrong_hash = e.target_file().unwrap();
        wrong_hash.length += 1;
        let mut no_custom = e.target_file().unwrap();
        no_custom.custom = None;
        let rotated = KeyEndorsement::new(TENANT, other.clone()).unwrap();
        let ok = |targets: &Targets, key: &PublicKey| check_endorsed(targets, TENANT, key);

        assert_eq!(ok(&targets_with(vec![own.clone()]), &key), Ok(()));
        for (entries, key, needle) in [
            (
                vec![],
                &key,
                "they list no assignment-keys/0123456789abcdef.json",
            ),
            (vec![own.clone()], &other, "they endorse key"),
            (
                vec![(e.target_name(), rotated.target_file().unwrap())],
                &key,
                &format!("they endorse key {} instead", rotated.keyid),
            ),
            (
                vec![(e.target_name(), foreign_tenant)],
                &key,
                "endorses a key for tenant fedcba9876543210",
            ),
            (
                vec![(e.target_name(), wrong_hash)],
                &key,
                "the signed length and hashes are not those",
            ),
            (
                vec![(e.target_name(), no_custom)],
                &key,
                "has no assignment_key",
            ),
            (
                vec![(theirs.target_name(), theirs.target_file().unwrap())],
                &key,
                "they list no",
            ),
        ] {
            let err = ok(&targets_with(entries), key).unwrap_err();
            assert!(matches!(err, EndorsementError::NotEndorsed { .. }), "{err}");
            assert!(err.to_string().contains(needle), "{err} / {needle}");
        }
    }

    #[test]
    fn malformed_documents_are_refused() {
        let key = Ed25519Signer::generate().unwrap().public_key().clone();
        let good = KeyEndorsement::new(TENANT, key.clone()).unwrap();
        let mut lying = good.clone();
        lying.keyid = "00".repeat(32);
        let lying = serde_json::to_vec(&lying).unwrap();
        let mut extra = serde_json::to_value(&good).unwrap();
        extra["expires"] = "never".into();
        for (bytes, needle) in [
            (b"{}".to_vec(), "missing field"),
            (lying, "is not the id of its key"),
            (serde_json::to_vec(&extra).unwrap(), "unknown field"),
        ] {
            let err = KeyEndorsement::from_json(&bytes).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} / {needle}");
        }
        for tenant in ["", "../../etc", "0123456789ABCDEF", "0123456789abcdef0"] {
            assert!(
                KeyEndorsement::new(tenant, key.clone()).is_err(),
                "{tenant:?}"
            );
        }
    }
}
