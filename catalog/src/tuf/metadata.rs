//! TUF metadata documents: root, targets (with delegations), snapshot, timestamp,
//! and the [`Signed`] envelope.
//!
//! Every struct keeps fields it does not know in `extra`, so a document
//! round-trips. Signatures are always checked over the canonical form of the
//! `signed` object exactly as received (see [`Signed::canonical_signed`]), never
//! over a re-serialisation of these structs.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cjson::canonical_json;
use super::error::TufError;
use super::keys::PublicKey;
use super::signer::Ed25519Signer;
use super::verify::verify_threshold;

/// The TUF specification version written by this implementation.
pub const SPEC_VERSION: &str = "1.0.31";

/// Top-level role names.
pub const TOP_LEVEL_ROLES: [&str; 4] = ["root", "targets", "snapshot", "timestamp"];

/// Serde helpers for `expires` (`YYYY-MM-DDTHH:MM:SSZ`).
pub mod expires_format {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `2030-01-02T03:04:05Z`.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
    }

    /// Reads an RFC 3339 time in UTC (`Z` suffix).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        if !s.ends_with('Z') {
            return Err(serde::de::Error::custom(format!(
                "expires {s:?} is not a UTC time ending in Z"
            )));
        }
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| serde::de::Error::custom(format!("expires {s:?}: {e}")))
    }
}

/// One signature of a [`Signed`] envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Key id of the signing key.
    pub keyid: String,
    /// Hex signature.
    pub sig: String,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Key ids and threshold of a top-level role in root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    /// Authorised key ids.
    pub keyids: Vec<String>,
    /// Number of distinct authorised keys that must sign (at least 1).
    pub threshold: u32,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Behaviour shared by the four metadata types.
pub trait Metadata: Serialize + DeserializeOwned {
    /// Value of `_type`.
    const TYPE: &'static str;
    /// The document version.
    fn version(&self) -> u64;
    /// The expiry time.
    fn expires(&self) -> DateTime<Utc>;
    /// Type-specific structural checks.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

macro_rules! common_fields {
    ($name:ident, $ty:literal) => {
        impl Metadata for $name {
            const TYPE: &'static str = $ty;
            fn version(&self) -> u64 {
                self.version
            }
            fn expires(&self) -> DateTime<Utc> {
                self.expires
            }
            fn validate(&self) -> Result<(), String> {
                self.check()
            }
        }
    };
}

/// Root metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Root {
    /// Always `root`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// Spec version, `1.x.y`.
    pub spec_version: String,
    /// Whether metadata and targets are published under versioned/hashed names.
    #[serde(default)]
    pub consistent_snapshot: bool,
    /// Version, starting at 1.
    pub version: u64,
    /// Expiry.
    #[serde(with = "expires_format")]
    pub expires: DateTime<Utc>,
    /// All keys used by top-level roles, by key id.
    pub keys: BTreeMap<String, PublicKey>,
    /// Key ids and thresholds of `root`, `targets`, `snapshot`, `timestamp`.
    pub roles: BTreeMap<String, RoleKeys>,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
common_fields!(Root, "root");

impl Root {
    fn check(&self) -> Result<(), String> {
        for name in TOP_LEVEL_ROLES {
            let r = self
                .roles
                .get(name)
                .ok_or_else(|| format!("role {name} missing from roles"))?;
            if r.threshold == 0 {
                return Err(format!("role {name} has threshold 0"));
            }
        }
        Ok(())
    }

    /// Keys and threshold of a top-level role.
    pub fn role(&self, name: &str) -> Result<&RoleKeys, TufError> {
        self.roles
            .get(name)
            .ok_or_else(|| TufError::malformed("root", format!("role {name} missing")))
    }
}

/// Version, length and hashes of a metadata file (in timestamp and snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaFile {
    /// Version of the referenced metadata.
    pub version: u64,
    /// Length in bytes, if the repository pins it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// Hashes (algorithm -> hex), if the repository pins them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Timestamp metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timestamp {
    /// Always `timestamp`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// Spec version.
    pub spec_version: String,
    /// Version.
    pub version: u64,
    /// Expiry.
    #[serde(with = "expires_format")]
    pub expires: DateTime<Utc>,
    /// The `snapshot.json` entry (other entries are kept but not used).
    pub meta: BTreeMap<String, MetaFile>,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
common_fields!(Timestamp, "timestamp");

impl Timestamp {
    fn check(&self) -> Result<(), String> {
        if !self.meta.contains_key("snapshot.json") {
            return Err("meta lacks snapshot.json".into());
        }
        Ok(())
    }

    /// The `snapshot.json` entry.
    pub fn snapshot_meta(&self) -> &MetaFile {
        // validated by `check`
        &self.meta["snapshot.json"]
    }
}

/// Snapshot metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Always `snapshot`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// Spec version.
    pub spec_version: String,
    /// Version.
    pub version: u64,
    /// Expiry.
    #[serde(with = "expires_format")]
    pub expires: DateTime<Utc>,
    /// `targets.json` and every delegated `<role>.json`.
    pub meta: BTreeMap<String, MetaFile>,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
common_fields!(Snapshot, "snapshot");

impl Snapshot {
    fn check(&self) -> Result<(), String> {
        if !self.meta.contains_key("targets.json") {
            return Err("meta lacks targets.json".into());
        }
        Ok(())
    }
}

/// A target file entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetFile {
    /// Length in bytes.
    pub length: u64,
    /// Hashes (algorithm -> lowercase hex); the catalog always includes `sha256`.
    pub hashes: BTreeMap<String, String>,
    /// Application data (the catalog's firmware fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl TargetFile {
    /// A target entry with a sha256 hash and optional custom data.
    pub fn new(length: u64, sha256: [u8; 32], custom: Option<Value>) -> Self {
        let mut hashes = BTreeMap::new();
        hashes.insert("sha256".to_string(), hex::encode(sha256));
        TargetFile {
            length,
            hashes,
            custom,
            extra: BTreeMap::new(),
        }
    }

    /// A target entry describing `data`.
    pub fn from_data(data: &[u8], custom: Option<Value>) -> Self {
        use sha2::Digest;
        Self::new(data.len() as u64, sha2::Sha256::digest(data).into(), custom)
    }
}

/// A delegated targets role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegatedRole {
    /// Role name (also its metadata file name, `<name>.json`).
    pub name: String,
    /// Authorised key ids (from [`Delegations::keys`]).
    pub keyids: Vec<String>,
    /// Required number of distinct signing keys (at least 1).
    pub threshold: u32,
    /// Stop the search after this role if it matched the path.
    #[serde(default)]
    pub terminating: bool,
    /// Shell-style patterns of target paths this role may sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Hex prefixes of sha256(target path) this role may sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The `delegations` object of a targets role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegations {
    /// Keys of the delegated roles.
    pub keys: BTreeMap<String, PublicKey>,
    /// Delegated roles, in priority order.
    pub roles: Vec<DelegatedRole>,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Targets metadata (top-level or delegated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    /// Always `targets`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// Spec version.
    pub spec_version: String,
    /// Version.
    pub version: u64,
    /// Expiry.
    #[serde(with = "expires_format")]
    pub expires: DateTime<Utc>,
    /// Target path -> file entry.
    pub targets: BTreeMap<String, TargetFile>,
    /// Delegations, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegations: Option<Delegations>,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}
common_fields!(Targets, "targets");

impl Targets {
    fn check(&self) -> Result<(), String> {
        if let Some(d) = &self.delegations {
            let mut seen = std::collections::BTreeSet::new();
            for r in &d.roles {
                if r.threshold == 0 {
                    return Err(format!("delegated role {:?} has threshold 0", r.name));
                }
                if TOP_LEVEL_ROLES.contains(&r.name.as_str()) {
                    return Err(format!(
                        "delegated role name {:?} is a top-level role",
                        r.name
                    ));
                }
                if !seen.insert(r.name.as_str()) {
                    return Err(format!("delegated role {:?} listed twice", r.name));
                }
                if r.paths.is_some() && r.path_hash_prefixes.is_some() {
                    return Err(format!(
                        "delegated role {:?} has both paths and path_hash_prefixes",
                        r.name
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Builds a new document of type `T`'s common header.
pub(crate) fn expiry_from(now: DateTime<Utc>, period: chrono::Duration) -> DateTime<Utc> {
    (now + period).trunc_subsecs(0)
}

/// A signed metadata envelope: `{"signatures": [...], "signed": {...}}`.
#[derive(Debug, Clone)]
pub struct Signed<T> {
    /// The parsed `signed` object.
    pub signed: T,
    /// The signatures, as found.
    pub signatures: Vec<Signature>,
    raw_signed: Value,
    canonical: Vec<u8>,
}

impl<T: Metadata> Signed<T> {
    /// Parses an envelope; checks `_type`, the spec major version, that no key
    /// id appears twice among the signatures, and the structure of the
    /// document. Signatures are not verified here.
    pub fn from_slice(role: &str, bytes: &[u8]) -> Result<Self, TufError> {
        let mut v: Value =
            serde_json::from_slice(bytes).map_err(|e| TufError::malformed(role, e))?;
        let obj = v
            .as_object_mut()
            .ok_or_else(|| TufError::malformed(role, "not a JSON object"))?;
        let raw_signed = obj
            .remove("signed")
            .ok_or_else(|| TufError::malformed(role, "no signed object"))?;
        let sigs = obj
            .remove("signatures")
            .ok_or_else(|| TufError::malformed(role, "no signatures list"))?;
        let signatures: Vec<Signature> =
            serde_json::from_value(sigs).map_err(|e| TufError::malformed(role, e))?;
        // Spec: "The keyid MUST be unique in the signatures array".
        let mut seen = std::collections::BTreeSet::new();
        for sig in &signatures {
            if !seen.insert(sig.keyid.as_str()) {
                return Err(TufError::malformed(
                    role,
                    format!("keyid {} appears twice in signatures", sig.keyid),
                ));
            }
        }
        let found = raw_signed
            .get("_type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if found != T::TYPE {
            return Err(TufError::WrongType {
                role: role.to_string(),
                found: found.to_string(),
                expected: T::TYPE.to_string(),
            });
        }
        let spec = raw_signed
            .get("spec_version")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if spec.split('.').next() != Some("1") {
            return Err(TufError::malformed(
                role,
                format!("unsupported spec_version {spec:?}"),
            ));
        }
        let signed: T =
            serde_json::from_value(raw_signed.clone()).map_err(|e| TufError::malformed(role, e))?;
        signed
            .validate()
            .map_err(|e| TufError::malformed(role, e))?;
        let canonical = canonical_json(&raw_signed).map_err(|e| TufError::malformed(role, e))?;
        Ok(Signed {
            signed,
            signatures,
            raw_signed,
            canonical,
        })
    }

    /// Signs `signed` with each signer (the publisher side).
    pub fn sign(signed: T, signers: &[&Ed25519Signer]) -> Result<Self, TufError> {
        let raw_signed =
            serde_json::to_value(&signed).map_err(|e| TufError::malformed(T::TYPE, e))?;
        let canonical = canonical_json(&raw_signed)?;
        let signatures = signers.iter().map(|s| s.sign(&canonical)).collect();
        Ok(Signed {
            signed,
            signatures,
            raw_signed,
            canonical,
        })
    }

    /// The canonical JSON bytes of the `signed` object as received (what signatures cover).
    pub fn canonical_signed(&self) -> &[u8] {
        &self.canonical
    }

    /// Checks that `threshold` distinct keys among `keyids` signed this document.
    pub fn verify(
        &self,
        role: &str,
        keys: &BTreeMap<String, PublicKey>,
        keyids: &[String],
        threshold: u32,
    ) -> Result<(), TufError> {
        verify_threshold(
            role,
            &self.canonical,
            &self.signatures,
            keys,
            keyids,
            threshold,
        )
    }

    /// The envelope as pretty-printed JSON (for writing files).
    pub fn to_json_bytes(&self) -> Result<Vec<u8>, TufError> {
        let env = serde_json::json!({
            "signatures": self.signatures,
            "signed": self.raw_signed,
        });
        let mut out =
            serde_json::to_vec_pretty(&env).map_err(|e| TufError::malformed(T::TYPE, e))?;
        out.push(b'\n');
        Ok(out)
    }
}

/// Checks `expires` against `now`.
pub(crate) fn check_expiry<T: Metadata>(
    role: &str,
    doc: &T,
    now: DateTime<Utc>,
) -> Result<(), TufError> {
    if doc.expires() <= now {
        return Err(TufError::Expired {
            role: role.to_string(),
            expires: doc.expires().to_rfc3339(),
            now: now.to_rfc3339(),
        });
    }
    Ok(())
}
