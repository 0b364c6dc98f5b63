//! Length and hash checks against signed values.

use std::collections::BTreeMap;
use std::io::Write;

use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::tuf::error::TufError;

/// Incremental digests for the algorithms a signed entry lists.
pub(crate) struct MultiHasher {
    sha256: Option<Sha256>,
    sha384: Option<Sha384>,
    sha512: Option<Sha512>,
}

impl MultiHasher {
    pub(crate) fn new(hashes: &BTreeMap<String, String>) -> Self {
        MultiHasher {
            sha256: hashes.contains_key("sha256").then(Sha256::new),
            sha384: hashes.contains_key("sha384").then(Sha384::new),
            sha512: hashes.contains_key("sha512").then(Sha512::new),
        }
    }

    /// Checks every supported listed hash; at least one must be supported.
    pub(crate) fn check(
        self,
        what: &str,
        hashes: &BTreeMap<String, String>,
    ) -> Result<(), TufError> {
        let mut got = BTreeMap::new();
        if let Some(h) = self.sha256 {
            got.insert("sha256", hex::encode(h.finalize()));
        }
        if let Some(h) = self.sha384 {
            got.insert("sha384", hex::encode(h.finalize()));
        }
        if let Some(h) = self.sha512 {
            got.insert("sha512", hex::encode(h.finalize()));
        }
        if got.is_empty() {
            return Err(TufError::mismatch(
                what,
                format!(
                    "no supported hash algorithm among {:?}",
                    hashes.keys().collect::<Vec<_>>()
                ),
            ));
        }
        for (alg, actual) in got {
            let expected = &hashes[alg];
            if !expected.eq_ignore_ascii_case(&actual) {
                return Err(TufError::mismatch(
                    what,
                    format!("{alg} mismatch: signed {expected}, got {actual}"),
                ));
            }
        }
        Ok(())
    }
}

impl Write for MultiHasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(h) = &mut self.sha256 {
            h.update(buf);
        }
        if let Some(h) = &mut self.sha384 {
            h.update(buf);
        }
        if let Some(h) = &mut self.sha512 {
            h.update(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checks `data` against an optional signed length and optional hashes.
pub(crate) fn check_bytes(
    what: &str,
    data: &[u8],
    length: Option<u64>,
    hashes: Option<&BTreeMap<String, String>>,
) -> Result<(), TufError> {
    if let Some(len) = length {
        if data.len() as u64 != len {
            return Err(TufError::mismatch(
                what,
                format!("length {} differs from signed length {len}", data.len()),
            ));
        }
    }
    if let Some(hashes) = hashes {
        let mut h = MultiHasher::new(hashes);
        h.write_all(data)
            .map_err(|e| TufError::mismatch(what, e.to_string()))?;
        h.check(what, hashes)?;
    }
    Ok(())
}
