//! Public keys, key ids and signature verification.
//!
//! Supported for verification:
//! - `ed25519` / scheme `ed25519`: `keyval.public` is 32 bytes hex, signatures are
//!   64 bytes hex, checked with `verify_strict`.
//! - `ecdsa` (or the legacy keytype `ecdsa-sha2-nistp256`) / scheme
//!   `ecdsa-sha2-nistp256`: `keyval.public` is a PEM SubjectPublicKeyInfo, signatures
//!   are hex of an ASN.1 DER `Ecdsa-Sig-Value` over SHA-256 of the message, as
//!   securesystemslib's `CryptoSigner` writes them.
//! - `rsa` / scheme `rsassa-pss-sha256`: `keyval.public` is a PEM
//!   SubjectPublicKeyInfo, signatures are hex of the raw RSASSA-PSS signature
//!   (MGF1-SHA-256) over SHA-256 of the message. Salt lengths accepted: the
//!   digest length (what securesystemslib, python-tuf and go-tuf sign with)
//!   and the largest the key allows (OpenSSL's default when signing). Keys
//!   under 2048 bits are invalid.
//!
//! Any other key type or scheme is [`Verification::Unsupported`]: such keys never
//! count towards a threshold but do not make the metadata invalid.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::cjson::to_canonical_json;
use super::error::TufError;

/// The `keyval` object of a public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVal {
    /// The public key (hex for ed25519, PEM for ECDSA). Absent for key types
    /// without one (e.g. `sigstore-oidc`), which are then never verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<String>,
    /// Fields this implementation does not interpret, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A TUF public key object as it appears in root and delegations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    /// Key type, e.g. `ed25519` or `ecdsa`.
    pub keytype: String,
    /// Signature scheme, e.g. `ed25519` or `ecdsa-sha2-nistp256`.
    pub scheme: String,
    /// Key material.
    pub keyval: KeyVal,
    /// Fields this implementation does not interpret (e.g. `keyid_hash_algorithms`).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Outcome of checking one signature with one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The signature is valid.
    Valid,
    /// The signature (or the key material) is invalid.
    Invalid,
    /// Key type or scheme not supported; ignored for threshold counting.
    Unsupported,
}

impl PublicKey {
    /// An ed25519 public key object for the 32 raw key bytes.
    pub fn ed25519(public: &[u8; 32]) -> Self {
        PublicKey {
            keytype: "ed25519".into(),
            scheme: "ed25519".into(),
            keyval: KeyVal {
                public: Some(hex::encode(public)),
                extra: BTreeMap::new(),
            },
            extra: BTreeMap::new(),
        }
    }

    /// The key id: lowercase hex SHA-256 of the canonical JSON of this key object.
    pub fn key_id(&self) -> Result<String, TufError> {
        Ok(hex::encode(Sha256::digest(to_canonical_json(self)?)))
    }

    /// Verifies `sig_hex` (a hex signature from a metadata file) over `msg`.
    pub fn verify(&self, msg: &[u8], sig_hex: &str) -> Verification {
        let public = self.keyval.public.as_deref();
        match (self.keytype.as_str(), self.scheme.as_str(), public) {
            ("ed25519", "ed25519", Some(pk)) => verify_ed25519(pk, msg, sig_hex),
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256", Some(pk)) => {
                verify_p256(pk, msg, sig_hex)
            }
            ("rsa", "rsassa-pss-sha256", Some(pk)) => verify_rsa_pss(pk, msg, sig_hex),
            ("ed25519", "ed25519", None)
            | ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256", None)
            | ("rsa", "rsassa-pss-sha256", None) => Verification::Invalid,
            _ => Verification::Unsupported,
        }
    }

    /// A value identifying the key material, used to refuse one key listed under
    /// two key ids counting twice.
    pub(crate) fn material(&self) -> (String, String) {
        let public = match &self.keyval.public {
            Some(p) => p.trim().to_string(),
            None => serde_json::to_string(&self.keyval.extra).unwrap_or_default(),
        };
        (self.keytype.clone(), public)
    }
}

fn verify_ed25519(public_hex: &str, msg: &[u8], sig_hex: &str) -> Verification {
    use ed25519_dalek::{Signature, VerifyingKey};
    let Ok(pk_bytes) = hex::decode(public_hex) else {
        return Verification::Invalid;
    };
    let Ok(pk_arr) = <[u8; 32]>::try_from(pk_bytes.as_slice()) else {
        return Verification::Invalid;
    };
    let Ok(vk) = VerifyingKey::from_bytes(&pk_arr) else {
        return Verification::Invalid;
    };
    let Ok(sig_bytes) = hex::decode(sig_hex) else {
        return Verification::Invalid;
    };
    let Ok(sig) = Signature::from_slice(&sig_bytes) else {
        return Verification::Invalid;
    };
    if vk.verify_strict(msg, &sig).is_ok() {
        Verification::Valid
    } else {
        Verification::Invalid
    }
}

fn verify_p256(public_pem: &str, msg: &[u8], sig_hex: &str) -> Verification {
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::{Signature, VerifyingKey};
    use p256::pkcs8::DecodePublicKey;
    let Ok(vk) = VerifyingKey::from_public_key_pem(public_pem.trim()) else {
        return Verification::Invalid;
    };
    let Ok(sig_bytes) = hex::decode(sig_hex) else {
        return Verification::Invalid;
    };
    let Ok(sig) = Signature::from_der(&sig_bytes) else {
        return Verification::Invalid;
    };
    if vk.verify(msg, &sig).is_ok() {
        Verification::Valid
    } else {
        Verification::Invalid
    }
}

/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

fn verify_rsa_pss(public_pem: &str, msg: &[u8], sig_hex: &str) -> Verification {
    use rsa::pkcs8::DecodePublicKey;
    use rsa::pss::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    use rsa::traits::PublicKeyParts;
    let Ok(key) = rsa::RsaPublicKey::from_public_key_pem(public_pem.trim()) else {
        return Verification::Invalid;
    };
    let bits = key.n().bits();
    if bits < MIN_RSA_BITS {
        return Verification::Invalid;
    }
    let Ok(sig_bytes) = hex::decode(sig_hex) else {
        return Verification::Invalid;
    };
    let Ok(sig) = Signature::try_from(sig_bytes.as_slice()) else {
        return Verification::Invalid;
    };
    // RFC 8017 9.1: emLen = ceil((modBits - 1) / 8); the largest salt leaves
    // room for the hash and two bytes.
    let em_len = (bits - 1).div_ceil(8);
    let max_salt = em_len.saturating_sub(32 + 2);
    for salt in [32, max_salt] {
        let vk = VerifyingKey::<Sha256>::new_with_salt_len(key.clone(), salt);
        if vk.verify(msg, &sig).is_ok() {
            return Verification::Valid;
        }
    }
    Verification::Invalid
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_id_vectors() {
        // Key ids computed by securesystemslib 1.6 (`SSlibKey.keyid` of these objects).
        let ed: PublicKey = serde_json::from_value(json!({
            "keytype": "ed25519", "scheme": "ed25519",
            "keyval": {"public": "3d62209875393b3980945ec3d4cc45aa9a0bb92b7eeb6f9e77163b473932d667"}
        }))
        .unwrap();
        assert_eq!(
            ed.key_id().unwrap(),
            "9a75b33ec65f6a1abb781933dd5a4c72a5b812df5945074f3ef8deb2ec3e66cd"
        );
        let ec: PublicKey = serde_json::from_value(json!({
            "keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256",
            "keyval": {"public": "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEnbbek2bTcx4hWqq2s130dPzUfR0i\n5KlL3QWI1TUMAVg4il+Aw7MC6uGQ09kE7eblsXzX1cvWIHHHeWilSowymQ==\n-----END PUBLIC KEY-----\n"}
        }))
        .unwrap();
        assert_eq!(
            ec.key_id().unwrap(),
            "a1281a4480818bf095aae400eeae75a0a5aaf188ed9a24ce9a02ef8eb7973847"
        );
    }

    #[test]
    fn ecdsa_der_signature_from_securesystemslib() {
        // Signature over b"hello" produced by securesystemslib CryptoSigner (ECDSA P-256).
        let ec: PublicKey = serde_json::from_value(json!({
            "keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256",
            "keyval": {"public": "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEnbbek2bTcx4hWqq2s130dPzUfR0i\n5KlL3QWI1TUMAVg4il+Aw7MC6uGQ09kE7eblsXzX1cvWIHHHeWilSowymQ==\n-----END PUBLIC KEY-----\n"}
        }))
        .unwrap();
        let sig = "3045022100bb05fe9bc498797040b9f812b069611d1c663274d5eaa8141ef7ba6c8880d01602205192bab01d17e29fc66113aa0a4b3d1672737e4be9df134119234b6a9ed9e9cc";
        assert_eq!(ec.verify(b"hello", sig), Verification::Valid);
        assert_eq!(ec.verify(b"hellO", sig), Verification::Invalid);
        assert_eq!(ec.verify(b"hello", "zz"), Verification::Invalid);
    }

    #[test]
    fn keys_without_public_value_parse_and_are_ignored() {
        let k: PublicKey = serde_json::from_value(json!({
            "keytype": "sigstore-oidc", "scheme": "Fulcio",
            "keyval": {"identity": "a@example.com", "issuer": "https://issuer.example"},
            "x-unknown": 1
        }))
        .unwrap();
        assert_eq!(k.keyval.public, None);
        assert_eq!(k.verify(b"x", "00"), Verification::Unsupported);
        // Round-trips exactly, so its key id is stable.
        let v = serde_json::to_value(&k).unwrap();
        assert_eq!(v["keyval"]["issuer"], "https://issuer.example");
        assert_eq!(v["x-unknown"], 1);
        assert!(v["keyval"].get("public").is_none());
    }

    #[test]
    fn unsupported_schemes() {
        let mut k = PublicKey::ed25519(&[7; 32]);
        k.scheme = "rsassa-pss-sha256".into();
        assert_eq!(k.verify(b"x", "00"), Verification::Unsupported);
        k.keytype = "rsa".into();
        k.scheme = "rsa-pkcs1v15-sha256".into();
        assert_eq!(k.verify(b"x", "00"), Verification::Unsupported);
        // A supported scheme with unusable key material is invalid.
        k.scheme = "rsassa-pss-sha256".into();
        assert_eq!(k.verify(b"x", "00"), Verification::Invalid);
    }

    #[test]
    fn rsa_pss_vectors_from_python_cryptography() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("testdata/rsa_pss.json")).unwrap();
        let key = |pem: &str| -> PublicKey {
            serde_json::from_value(json!({
                "keytype": "rsa", "scheme": "rsassa-pss-sha256",
                "keyval": {"public": pem}
            }))
            .unwrap()
        };
        let k = key(v["pem"].as_str().unwrap());
        let sig = |name: &str| v[name].as_str().unwrap().to_owned();
        // (message, signature, expected)
        let table = [
            (&b"hello"[..], sig("s32"), Verification::Valid),
            (b"hello", sig("smax"), Verification::Valid),
            (b"hellO", sig("s32"), Verification::Invalid),
            (b"hellO", sig("smax"), Verification::Invalid),
            // Salt lengths other than the digest's and the largest.
            (b"hello", sig("s20"), Verification::Invalid),
            // PKCS#1 v1.5 under the PSS scheme.
            (b"hello", sig("pkcs1"), Verification::Invalid),
            (b"hello", sig("s32")[2..].to_owned(), Verification::Invalid),
            (b"hello", "zz".into(), Verification::Invalid),
            (b"hello", String::new(), Verification::Invalid),
        ];
        for (msg, s, want) in table {
            assert_eq!(
                k.verify(msg, &s),
                want,
                "{:?} {}",
                msg,
                &s[..s.len().min(16)]
            );
        }
        // Below 2048 bits: refused even with a valid signature.
        let small = key(v["pem1024"].as_str().unwrap());
        assert_eq!(small.verify(b"hello", &sig("small")), Verification::Invalid);
        assert_eq!(
            key("not a pem").verify(b"hello", &sig("s32")),
            Verification::Invalid
        );
    }
}
