//! Ed25519 signing keys for the publisher side, stored as PKCS#8 PEM files
//! with mode 0600.

use std::path::Path;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer as _, SigningKey};

use super::error::TufError;
use super::fs::write_atomic;
use super::keys::PublicKey;
use super::metadata::Signature;

/// An ed25519 private key with its TUF public key object and key id.
pub struct Ed25519Signer {
    key: SigningKey,
    public: PublicKey,
    key_id: String,
}

impl std::fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print private key material.
        f.debug_struct("Ed25519Signer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Ed25519Signer {
    fn from_signing_key(key: SigningKey) -> Result<Self, TufError> {
        let public = PublicKey::ed25519(key.verifying_key().as_bytes());
        let key_id = public.key_id()?;
        Ok(Ed25519Signer {
            key,
            public,
            key_id,
        })
    }

    /// Generates a new key from the operating system's random number generator.
    pub fn generate() -> Result<Self, TufError> {
        Self::from_signing_key(SigningKey::generate(&mut rand_core::OsRng))
    }

    /// Loads a PKCS#8 PEM private key file.
    pub fn load(path: &Path) -> Result<Self, TufError> {
        let pem = std::fs::read_to_string(path).map_err(|e| TufError::io(path, e))?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| TufError::Key {
            what: path.display().to_string(),
            reason: format!("not an ed25519 PKCS#8 PEM private key: {e}"),
        })?;
        Self::from_signing_key(key)
    }

    /// Saves the private key as PKCS#8 PEM, atomically, with mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), TufError> {
        let pem = self
            .key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| TufError::Key {
                what: path.display().to_string(),
                reason: format!("cannot encode: {e}"),
            })?;
        write_atomic(path, pem.as_bytes(), 0o600)
    }

    /// The TUF public key object.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key id (hex SHA-256 of the canonical public key object).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Signs `msg` (the canonical JSON of a `signed` object).
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature {
            keyid: self.key_id.clone(),
            sig: hex::encode(self.key.sign(msg).to_bytes()),
            extra: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::keys::Verification;

    #[test]
    fn save_load_sign_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let s = Ed25519Signer::generate().unwrap();
        s.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let l = Ed25519Signer::load(&path).unwrap();
        assert_eq!(l.key_id(), s.key_id());
        assert_eq!(l.key_id().len(), 64);
        let sig = l.sign(b"msg");
        assert_eq!(sig.keyid, s.key_id());
        assert_eq!(s.public_key().verify(b"msg", &sig.sig), Verification::Valid);
        assert_eq!(
            s.public_key().verify(b"msG", &sig.sig),
            Verification::Invalid
        );
    }
}
