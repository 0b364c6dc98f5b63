//! Who this host is: the SystemID (random, generated once per host and kept
//! in the state directory) and the machine fingerprint (what the machine
//! itself is, so the server can tell a cloned image from a re-enrollment).
//!
//! The fingerprint is the hex SHA-256 of `update-agent machine fingerprint v1\n`
//! followed by the contents of `/etc/machine-id` (trimmed) when that file
//! exists and is not empty, else followed by `hostname:` and the host name.
//! The prefix keeps the raw machine id from being derivable or matched against
//! other applications' hashes of it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::fsutil;

/// Name of the SystemID file in the state directory.
pub const SYSTEM_ID_FILE: &str = "system_id";
/// Where systemd keeps the machine id.
pub const MACHINE_ID_PATH: &str = "/etc/machine-id";

/// 128 random bits as 32 lowercase hex digits (SystemIDs, event ids).
pub fn random_hex128() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The host's SystemID: 128 random bits, hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemId(String);

/// Why the SystemID cannot be read or kept.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Local IO.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The stored SystemID is not 32 hex digits.
    #[error("{path} does not hold a SystemID (32 hex digits); remove it to generate a new one")]
    Corrupt {
        /// The file.
        path: PathBuf,
    },
}

impl SystemId {
    /// A new random SystemID (not stored).
    pub fn generate() -> Self {
        Self(random_hex128())
    }

    /// Reads the SystemID stored in `state_dir`, if there is one.
    pub fn load(state_dir: &Path) -> Result<Option<Self>, IdentityError> {
        let path = state_dir.join(SYSTEM_ID_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let id = text.trim();
                if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(Some(Self(id.to_ascii_lowercase())))
                } else {
                    Err(IdentityError::Corrupt { path })
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(IdentityError::Io { path, source }),
        }
    }

    /// Stores the SystemID in `state_dir` (atomically, mode 0600).
    pub fn store(&self, state_dir: &Path) -> Result<(), IdentityError> {
        let io = |source| IdentityError::Io {
            path: state_dir.to_owned(),
            source,
        };
        fsutil::create_private_dir(state_dir).map_err(io)?;
        let path = state_dir.join(SYSTEM_ID_FILE);
        fsutil::write_atomic(&path, format!("{}\n", self.0).as_bytes(), fsutil::PRIVATE)
            .map_err(|source| IdentityError::Io { path, source })
    }

    /// The stored SystemID, generating and storing one on first use.
    pub fn load_or_create(state_dir: &Path) -> Result<Self, IdentityError> {
        if let Some(id) = Self::load(state_dir)? {
            return Ok(id);
        }
        let id = Self::generate();
        id.store(state_dir)?;
        Ok(id)
    }

    /// The hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SystemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The fingerprint for a machine id (if any) and a host name.
pub fn fingerprint_from(machine_id: Option<&str>, hostname: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"update-agent machine fingerprint v1\n");
    match machine_id.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => h.update(m.as_bytes()),
        None => {
            h.update(b"hostname:");
            h.update(hostname.as_bytes());
        }
    }
    hex::encode(h.finalize())
}

/// This machine's fingerprint (see the module documentation).
pub fn machine_fingerprint() -> String {
    let machine_id = std::fs::read_to_string(MACHINE_ID_PATH).ok();
    fingerprint_from(machine_id.as_deref(), &hostname())
}

/// The host name (kernel's, else `$HOSTNAME`, else `localhost`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The operating system: `PRETTY_NAME` from os-release, else the family.
pub fn os_name() -> String {
    ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| pretty_name(&text))
        .unwrap_or_else(|| std::env::consts::OS.to_owned())
}

fn pretty_name(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|line| {
        let value = line.strip_prefix("PRETTY_NAME=")?;
        let value = value.trim().trim_matches('"').trim_matches('\'');
        (!value.is_empty()).then(|| value.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_id_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        assert_eq!(SystemId::load(&state).unwrap(), None);
        let first = SystemId::load_or_create(&state).unwrap();
        assert_eq!(first.as_str().len(), 32);
        assert!(first.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        for _ in 0..3 {
            assert_eq!(SystemId::load_or_create(&state).unwrap(), first);
        }
        assert_eq!(SystemId::load(&state).unwrap(), Some(first.clone()));
        assert_ne!(SystemId::generate(), first, "random, not derived");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(state.join(SYSTEM_ID_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(state.join(SYSTEM_ID_FILE), "not-an-id\n").unwrap();
        let e = SystemId::load(&state).unwrap_err().to_string();
        assert!(e.contains("does not hold a SystemID"), "{e}");
    }

    #[test]
    fn fingerprint_table() {
        let id = "4c4c4544004d3510804cb4c04f4e5a31";
        let a = fingerprint_from(Some(id), "ws-1");
        // The machine id decides, not the host name; whitespace is ignored.
        assert_eq!(a, fingerprint_from(Some(&format!("{id}\n")), "ws-2"));
        assert_eq!(a.len(), 64);
        // Not the bare hash of the machine id.
        assert_ne!(a, hex::encode(Sha256::digest(id.as_bytes())));
        assert_ne!(a, fingerprint_from(Some("0000"), "ws-1"));
        // Without a machine id, the host name.
        let h1 = fingerprint_from(None, "ws-1");
        assert_eq!(h1, fingerprint_from(Some("  \n"), "ws-1"));
        assert_ne!(h1, fingerprint_from(None, "ws-2"));
        assert_ne!(h1, a);
        // Known value, so the definition in the docs cannot drift.
        let mut h = Sha256::new();
        h.update(b"update-agent machine fingerprint v1\nhostname:ws-1");
        assert_eq!(h1, hex::encode(h.finalize()));
        assert_eq!(machine_fingerprint(), machine_fingerprint());
    }

    #[test]
    fn os_release_pretty_name() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\n";
        assert_eq!(
            pretty_name(text).as_deref(),
            Some("Debian GNU/Linux 13 (trixie)")
        );
        assert_eq!(pretty_name("NAME=x\n"), None);
        assert!(!os_name().is_empty());
        assert!(!hostname().is_empty());
    }
}
