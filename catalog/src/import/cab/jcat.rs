//! Vendor signatures in a cabinet's `*.jcat` (the libjcat format LVFS and
//! fwupd use): gzip-compressed JSON, items named by the cabinet file they
//! vouch for, each with blobs — checksums (hex text) and signatures.
//!
//! Only ed25519 signatures can be checked against a key the admin trusts
//! (`<catalog>/vendor-keys/<name>.ed25519`, the raw 32-byte public key
//! `jcat-tool` writes); PKCS#7 and GPG blobs are chains to LVFS's own
//! certificates, not a vendor key, and are ignored. An ed25519 blob signs
//! the file's bytes, or with `Target` the text of the item's checksum blob
//! of that kind (which must then match the file). Every checksum blob of
//! the payload's item must match the payload, signed or not: a catalog that
//! disagrees with the file is refused.

use std::io::Read;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::Digests;

/// Largest decompressed `.jcat` accepted.
const MAX_JCAT_LEN: u64 = 1 << 20;

const KIND_SHA256: u32 = 1;
const KIND_SHA1: u32 = 4;
const KIND_ED25519: u32 = 9;
const KIND_SHA512: u32 = 10;
/// `Flags` bit: `Data` is UTF-8 text, not base64.
const FLAG_UTF8: u32 = 1;

/// The file extension of a trusted vendor key.
pub const VENDOR_KEY_EXTENSION: &str = "ed25519";

/// A vendor's ed25519 public key the admin trusts for cabinet signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorKey {
    /// Its name (the file stem), recorded with what it verified.
    pub name: String,
    /// The key.
    pub key: VerifyingKey,
}

impl VendorKey {
    /// The keys in `dir` (`<name>.ed25519`, raw 32 bytes each); none when
    /// the directory does not exist.
    pub fn load_dir(dir: &Path) -> Result<Vec<Self>, VendorKeyError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(VendorKeyError::Io {
                    path: dir.to_owned(),
                    source,
                })
            }
        };
        let mut keys = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| VendorKeyError::Io {
                    path: dir.to_owned(),
                    source,
                })?
                .path();
            if path.extension().and_then(|e| e.to_str()) == Some(VENDOR_KEY_EXTENSION) {
                keys.push(Self::load(&path)?);
            }
        }
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(keys)
    }

    /// One key file.
    pub fn load(path: &Path) -> Result<Self, VendorKeyError> {
        let bytes = std::fs::read(path).map_err(|source| VendorKeyError::Io {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |why: String| VendorKeyError::Invalid {
            path: path.to_owned(),
            why,
        };
        let raw: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            invalid(format!(
                "{} bytes; a vendor key is the raw 32-byte ed25519 public key (as `jcat-tool` writes it)",
                bytes.len()
            ))
        })?;
        let key = VerifyingKey::from_bytes(&raw).map_err(|e| invalid(e.to_string()))?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("no file name".into()))?
            .to_owned();
        Ok(Self { name, key })
    }
}

/// Why a vendor key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum VendorKeyError {
    /// The file or directory.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Not a key.
    #[error("vendor key {path}: {why}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

/// A vendor signature that verified, as recorded with the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorSignature {
    /// The trusted key's name.
    pub key: String,
    /// What the signature covers: `payload` (the file's bytes) or the
    /// checksum kind it signs (`sha256`, `sha512`, `sha1`).
    pub covers: String,
}

#[derive(Debug, Deserialize)]
struct JcatFile {
    #[serde(rename = "JcatVersionMajor")]
    major: u32,
    #[serde(rename = "Items")]
    items: Vec<JcatItem>,
}

#[derive(Debug, Deserialize)]
struct JcatItem {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "AliasIds", default)]
    alias_ids: Vec<String>,
    #[serde(rename = "Blobs")]
    blobs: Vec<JcatBlob>,
}

#[derive(Debug, Deserialize)]
struct JcatBlob {
    #[serde(rename = "Kind")]
    kind: u32,
    #[serde(rename = "Flags")]
    flags: u32,
    #[serde(rename = "Data")]
    data: String,
    #[serde(rename = "Target", default)]
    target: Option<u32>,
}

fn kind_name(kind: u32) -> &'static str {
    match kind {
        KIND_SHA256 => "sha256",
        KIND_SHA1 => "sha1",
        KIND_SHA512 => "sha512",
        KIND_ED25519 => "ed25519",
        _ => "other",
    }
}

impl JcatBlob {
    fn bytes(&self) -> Result<Vec<u8>, String> {
        use base64::Engine as _;
        if self.flags & FLAG_UTF8 != 0 {
            Ok(self.data.as_bytes().to_vec())
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(self.data.trim())
                .map_err(|e| format!("{} blob: {e}", kind_name(self.kind)))
        }
    }
}

fn parse(name: &str, compressed: &[u8]) -> Result<JcatFile, String> {
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(compressed)
        .take(MAX_JCAT_LEN + 1)
        .read_to_end(&mut json)
        .map_err(|e| format!("{name}: not a gzip-compressed jcat: {e}"))?;
    if json.len() as u64 > MAX_JCAT_LEN {
        return Err(format!("{name}: larger than {MAX_JCAT_LEN} bytes"));
    }
    let file: JcatFile =
        serde_json::from_slice(&json).map_err(|e| format!("{name}: malformed jcat: {e}"))?;
    if file.major != 0 {
        return Err(format!(
            "{name}: jcat version {}.x is not supported",
            file.major
        ));
    }
    if file.items.len() > MAX_ITEMS || file.items.iter().any(|i| i.blobs.len() > MAX_BLOBS) {
        return Err(format!(
            "{name}: more than {MAX_ITEMS} items or {MAX_BLOBS} blobs in an item"
        ));
    }
    Ok(file)
}

/// Items per jcat file and blobs per item accepted: a vendor signs a handful
/// of files with a few blobs each; more is an attempt to make the import
/// hash and verify without end.
const MAX_ITEMS: usize = 64;
const MAX_BLOBS: usize = 16;

/// One cabinet file whose signatures are checked.
pub(super) struct SignedFile<'a> {
    /// Its name in the cabinet (the jcat item id).
    pub(super) name: &'a str,
    /// Its digests.
    pub(super) digests: &'a Digests,
    /// Reads its bytes (needed only for a signature over them; read once).
    pub(super) read: &'a mut dyn FnMut() -> Result<Vec<u8>, String>,
}

/// What the cabinet's jcat files say about `files`, checked: the vendor
/// signature when one trusted key signs *every* file (the payload first,
/// then the metainfo that says what the payload is — a signed payload
/// relabelled by another metainfo is not signed); `Ok(None)` when no key
/// does; an error when a jcat is malformed or a checksum disagrees with its
/// file. `covers` says what the payload's signature covers.
pub(super) fn verify(
    jcats: &[(String, Vec<u8>)],
    files: &mut [SignedFile<'_>],
    keys: &[VendorKey],
) -> Result<Option<VendorSignature>, String> {
    let parsed: Vec<(&str, JcatFile)> = jcats
        .iter()
        .map(|(name, bytes)| Ok((name.as_str(), parse(name, bytes)?)))
        .collect::<Result<_, String>>()?;
    // For each file: the keys that signed it, and what they signed.
    let mut signers: Vec<Vec<(usize, &'static str)>> = Vec::new();
    for file in files.iter_mut() {
        let mut bytes: Option<Vec<u8>> = None;
        let mut by = Vec::new();
        let name = file.name;
        for (jcat, parsed) in &parsed {
            let items = parsed
                .items
                .iter()
                .filter(|i| i.id == name || i.alias_ids.iter().any(|a| a == name));
            for item in items {
                check_checksums(jcat, item, name, file.digests)?;
                signed_by(jcat, item, file, &mut bytes, keys, &mut by)?;
            }
        }
        signers.push(by);
    }
    let Some((payload, rest)) = signers.split_first() else {
        return Ok(None);
    };
    Ok(payload
        .iter()
        .find(|(key, _)| rest.iter().all(|other| other.iter().any(|(k, _)| k == key)))
        .map(|(key, covers)| VendorSignature {
            key: keys[*key].name.clone(),
            covers: (*covers).to_owned(),
        }))
}

fn check_checksums(
    jcat: &str,
    item: &JcatItem,
    file: &str,
    digests: &Digests,
) -> Result<(), String> {
    for b in &item.blobs {
        let actual = match b.kind {
            KIND_SHA256 => &digests.sha256,
            KIND_SHA1 => &digests.sha1,
            KIND_SHA512 => &digests.sha512,
            _ => continue,
        };
        let said = String::from_utf8(b.bytes()?).unwrap_or_default();
        if !said.trim().eq_ignore_ascii_case(actual) {
            return Err(format!(
                "{jcat}: the {} checksum of {} is {}, the file's is {actual}",
                kind_name(b.kind),
                file,
                said.trim()
            ));
        }
    }
    Ok(())
}

/// Adds to `by` the trusted keys (by index) whose ed25519 blob in `item`
/// verifies: over the file's bytes, or with `Target` over its sha256 or
/// sha512 checksum text (checked against the file before). A signature over
/// a SHA-1 checksum counts for nothing: SHA-1 collides.
fn signed_by(
    jcat: &str,
    item: &JcatItem,
    file: &mut SignedFile<'_>,
    bytes: &mut Option<Vec<u8>>,
    keys: &[VendorKey],
    by: &mut Vec<(usize, &'static str)>,
) -> Result<(), String> {
    for b in item.blobs.iter().filter(|b| b.kind == KIND_ED25519) {
        let raw = b.bytes()?;
        let Ok(signature) = Signature::from_slice(&raw) else {
            return Err(format!(
                "{jcat}: an ed25519 blob of {} is {} bytes, not 64",
                item.id,
                raw.len()
            ));
        };
        let target;
        let (message, covers): (&[u8], &'static str) = match b.target {
            None => {
                if bytes.is_none() {
                    *bytes = Some((file.read)()?);
                }
                (bytes.as_deref().unwrap_or_default(), "payload")
            }
            Some(kind) => {
                let Some(t) = item.blobs.iter().find(|t| t.kind == kind) else {
                    return Err(format!(
                        "{jcat}: an ed25519 blob of {} signs its {} blob, which it lacks",
                        item.id,
                        kind_name(kind)
                    ));
                };
                if !matches!(kind, KIND_SHA256 | KIND_SHA512) {
                    continue;
                }
                target = t.bytes()?;
                (&target, kind_name(kind))
            }
        };
        for (i, k) in keys.iter().enumerate() {
            if k.key.verify_strict(message, &signature).is_ok() && !by.iter().any(|(j, _)| *j == i)
            {
                by.push((i, covers));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    fn gz(json: &serde_json::Value) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(json.to_string().as_bytes()).unwrap();
        e.finish().unwrap()
    }

    fn digests(bytes: &[u8]) -> Digests {
        Digests::of(bytes)
    }

    fn b64(b: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    #[test]
    fn signatures_and_checksums_table() {
        let payload = b"firmware image".to_vec();
        let d = digests(&payload);
        let vendor = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let keys = [VendorKey {
            name: "acme".into(),
            key: vendor.verifying_key(),
        }];
        let sig = |k: &SigningKey, m: &[u8]| b64(&k.sign(m).to_bytes());
        let sha256 = serde_json::json!({"Kind": 1, "Flags": 1, "Data": d.sha256});
        let item = |blobs: serde_json::Value| {
            serde_json::json!({"JcatVersionMajor": 0, "JcatVersionMinor": 1,
                "Items": [{"Id": "firmware.bin", "Blobs": blobs}]})
        };
        let signed_payload =
            |k: &SigningKey| serde_json::json!({"Kind": 9, "Flags": 0, "Data": sig(k, &payload)});
        let signed_sha256 = |k: &SigningKey| {
            serde_json::json!({"Kind": 9, "Flags": 0, "Target": 1,
                "Data": sig(k, d.sha256.as_bytes())})
        };
        let accepted = |key: &str, covers: &str| {
            Ok(Some(VendorSignature {
                key: key.into(),
                covers: covers.into(),
            }))
        };
        /// (case, the jcat file, what verifying gives or words of the error)
        type Case<'a> = (&'a str, Vec<u8>, Result<Option<VendorSignature>, &'a str>);
        let cases: Vec<Case<'_>> = vec![
            (
                "ed25519 over the payload",
                gz(&item(serde_json::json!([sha256, signed_payload(&vendor)]))),
                accepted("acme", "payload"),
            ),
            (
                "ed25519 over the sha256 blob",
                gz(&item(serde_json::json!([sha256, signed_sha256(&vendor)]))),
                accepted("acme", "sha256"),
            ),
            (
                "signed by another key",
                gz(&item(serde_json::json!([sha256, signed_payload(&other)]))),
                Ok(None),
            ),
            (
                "no signature at all",
                gz(&item(serde_json::json!([sha256]))),
                Ok(None),
            ),
            (
                "a signature over another file's bytes",
                gz(&item(serde_json::json!([{"Kind": 9, "Flags": 0,
                    "Data": sig(&vendor, b"other image")}]))),
                Ok(None),
            ),
            (
                "a checksum that disagrees",
                gz(&item(
                    serde_json::json!([{"Kind": 1, "Flags": 1, "Data": "00".repeat(32)},
                    signed_payload(&vendor)]),
                )),
                Err("the sha256 checksum of firmware.bin is 0000"),
            ),
            (
                "a signed checksum that disagrees",
                gz(&item(serde_json::json!([
                    {"Kind": 10, "Flags": 1, "Data": "ab".repeat(64)},
                    {"Kind": 9, "Flags": 0, "Target": 10,
                        "Data": sig(&vendor, "ab".repeat(64).as_bytes())}]))),
                Err("the sha512 checksum of firmware.bin is abab"),
            ),
            (
                "a target blob that is missing",
                gz(&item(serde_json::json!([signed_sha256(&vendor)]))),
                Err("signs its sha256 blob, which it lacks"),
            ),
            (
                "a truncated signature",
                gz(&item(
                    serde_json::json!([{"Kind": 9, "Flags": 0, "Data": b64(&[1; 10])}]),
                )),
                Err("is 10 bytes, not 64"),
            ),
            (
                "not gzip",
                b"{}".to_vec(),
                Err("not a gzip-compressed jcat"),
            ),
            (
                "not a jcat",
                gz(&serde_json::json!({"Items": []})),
                Err("malformed jcat"),
            ),
            (
                "a signature over the sha1 checksum (SHA-1 collides)",
                gz(&item(serde_json::json!([
                    {"Kind": 4, "Flags": 1, "Data": d.sha1},
                    {"Kind": 9, "Flags": 0, "Target": 4, "Data": sig(&vendor, d.sha1.as_bytes())}]))),
                Ok(None),
            ),
            (
                "an item with too many blobs (work without end)",
                gz(&item(serde_json::Value::Array(vec![
                    signed_payload(&other);
                    17
                ]))),
                Err("more than 64 items or 16 blobs in an item"),
            ),
            (
                "one item signed twice: read once",
                gz(&item(serde_json::json!([
                    signed_payload(&other),
                    signed_payload(&vendor)
                ]))),
                accepted("acme", "payload"),
            ),
            (
                "an item for another file only",
                gz(&serde_json::json!({"JcatVersionMajor": 0, "Items": [
                    {"Id": "firmware.metainfo.xml", "Blobs": [signed_payload(&vendor)]}]})),
                Ok(None),
            ),
        ];
        for (case, jcat, expected) in cases {
            let mut reads = 0;
            let mut read = || {
                reads += 1;
                Ok(payload.clone())
            };
            let mut files = [SignedFile {
                name: "firmware.bin",
                digests: &d,
                read: &mut read,
            }];
            let got = verify(&[("firmware.jcat".into(), jcat)], &mut files, &keys);
            match (got, expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{case}"),
                (Err(e), Err(needle)) => assert!(e.contains(needle), "{case}: {e}"),
                (got, want) => panic!("{case}: got {got:?}, expected {want:?}"),
            }
            assert!(reads <= 1, "{case}: the payload is read at most once");
        }
    }

    /// A signed payload counts only with a metainfo signed by the same key:
    /// otherwise another metainfo could relabel it (version, hardware).
    #[test]
    fn every_file_must_be_signed_by_the_same_key() {
        let payload = b"firmware image".to_vec();
        let meta = b"<component/>".to_vec();
        let (dp, dm) = (digests(&payload), digests(&meta));
        let acme = SigningKey::from_bytes(&[7; 32]);
        let globex = SigningKey::from_bytes(&[9; 32]);
        let keys = [
            VendorKey {
                name: "acme".into(),
                key: acme.verifying_key(),
            },
            VendorKey {
                name: "globex".into(),
                key: globex.verifying_key(),
            },
        ];
        let blob = |k: &SigningKey, m: &[u8]| serde_json::json!({"Kind": 9, "Flags": 0, "Data": b64(&k.sign(m).to_bytes())});
        let jcat = |meta_signer: Option<&SigningKey>| {
            let mut items = vec![serde_json::json!({"Id": "firmware.bin",
                "Blobs": [blob(&acme, &payload)]})];
            if let Some(k) = meta_signer {
                items.push(serde_json::json!({"Id": "firmware.metainfo.xml",
                    "Blobs": [blob(k, &meta)]}));
            }
            gz(&serde_json::json!({"JcatVersionMajor": 0, "Items": items}))
        };
        for (case, signer, want) in [
            ("both by acme", Some(&acme), Some("acme")),
            ("metainfo unsigned", None, None),
            ("metainfo by another trusted key", Some(&globex), None),
        ] {
            let (mut rp, mut rm) = (|| Ok(payload.clone()), || Ok(meta.clone()));
            let mut files = [
                SignedFile {
                    name: "firmware.bin",
                    digests: &dp,
                    read: &mut rp,
                },
                SignedFile {
                    name: "firmware.metainfo.xml",
                    digests: &dm,
                    read: &mut rm,
                },
            ];
            let got = verify(&[("firmware.jcat".into(), jcat(signer))], &mut files, &keys).unwrap();
            assert_eq!(got.map(|s| s.key), want.map(String::from), "{case}");
        }
    }

    #[test]
    fn vendor_key_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(VendorKey::load_dir(&dir.path().join("none"))
            .unwrap()
            .is_empty());
        let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
        std::fs::write(dir.path().join("acme.ed25519"), key.as_bytes()).unwrap();
        std::fs::write(dir.path().join("README"), b"not a key").unwrap();
        let keys = VendorKey::load_dir(dir.path()).unwrap();
        assert_eq!(
            keys,
            [VendorKey {
                name: "acme".into(),
                key
            }]
        );
        std::fs::write(dir.path().join("bad.ed25519"), [1u8; 31]).unwrap();
        let err = VendorKey::load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("31 bytes; a vendor key is the raw 32-byte"),
            "{err}"
        );
    }
}
