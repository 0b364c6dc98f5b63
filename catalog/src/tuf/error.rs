//! Typed errors of the TUF module.

use std::path::PathBuf;

/// Errors returned by a [`Fetcher`](super::Fetcher).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The resource does not exist (HTTP 404/403 or a missing file).
    #[error("{url}: not found")]
    NotFound {
        /// The URL or relative path asked for.
        url: String,
    },
    /// The resource is longer than the caller's bound.
    #[error("{url}: endless data: more than {max_len} bytes")]
    TooLong {
        /// The URL or relative path asked for.
        url: String,
        /// The bound the caller gave.
        max_len: u64,
    },
    /// The URL is not acceptable to this fetcher (e.g. escapes its base directory).
    #[error("{url}: invalid url: {reason}")]
    InvalidUrl {
        /// The URL or relative path asked for.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// Transport failure (I/O, HTTP status, TLS, ...).
    #[error("{url}: {message}")]
    Transport {
        /// The URL or relative path asked for.
        url: String,
        /// What went wrong.
        message: String,
    },
}

/// Errors of TUF metadata handling, publishing and client verification.
#[derive(Debug, thiserror::Error)]
pub enum TufError {
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Fetching a file failed.
    #[error("fetching {what}: {source}")]
    Fetch {
        /// Which role or target was being fetched.
        what: String,
        /// The underlying error.
        #[source]
        source: FetchError,
    },
    /// A document could not be parsed or has the wrong shape.
    #[error("{role}: malformed metadata: {reason}")]
    Malformed {
        /// The role (or file) the document belongs to.
        role: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value cannot be represented as canonical JSON (floats).
    #[error("canonical JSON: {0}")]
    CanonicalJson(String),
    /// Not enough valid signatures from distinct authorised keys.
    #[error("{role}: signature threshold not met: {valid} valid of {threshold} required")]
    Threshold {
        /// The role whose signatures were checked.
        role: String,
        /// Distinct authorised keys with valid signatures.
        valid: usize,
        /// Required number.
        threshold: u32,
    },
    /// The `_type` field is not the expected role type.
    #[error("{role}: wrong metadata type {found:?}, expected {expected:?}")]
    WrongType {
        /// The role being loaded.
        role: String,
        /// `_type` found.
        found: String,
        /// `_type` expected.
        expected: String,
    },
    /// A version number is not the expected one.
    #[error("{role}: version {found}, expected {expected}")]
    WrongVersion {
        /// The role being loaded.
        role: String,
        /// Version found in the document.
        found: u64,
        /// Version required.
        expected: u64,
    },
    /// A version number went backwards.
    #[error("{role}: rollback: version {new} is lower than trusted version {trusted}")]
    Rollback {
        /// The role (or snapshot meta entry) that went backwards.
        role: String,
        /// Trusted version.
        trusted: u64,
        /// Newly offered version.
        new: u64,
    },
    /// Metadata expired (freeze attack or stale repository).
    #[error("{role}: expired at {expires} (now {now})")]
    Expired {
        /// The expired role.
        role: String,
        /// Its expiry.
        expires: String,
        /// The reference time of the refresh.
        now: String,
    },
    /// Length or hash of a file does not match the signed value.
    #[error("{what}: {reason}")]
    Mismatch {
        /// The file checked (role metadata or target).
        what: String,
        /// Which check failed.
        reason: String,
    },
    /// Too many root versions to chain in one refresh.
    #[error("root: more than {0} root rotations in one refresh")]
    TooManyRootRotations(u32),
    /// The target is not listed by any (delegated) targets role.
    #[error("target {0:?}: not found in trusted targets metadata")]
    TargetNotFound(String),
    /// A target name or role name is unsafe to use as a path.
    #[error("{kind} {name:?}: refused: {reason}")]
    UnsafeName {
        /// "target" or "role".
        kind: &'static str,
        /// The offending name.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A key could not be parsed, saved or used.
    #[error("key {what}: {reason}")]
    Key {
        /// Which key (file, key id or role).
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// Fewer of a role's keys on this host than its threshold: the role is
    /// signed elsewhere (an offline key), or a holder's key is not mounted.
    #[error("signing {role} metadata needs {threshold} {role} key(s) named by root; {found} found in [{searched}]{foreign}")]
    MissingKeys {
        /// The role to sign.
        role: String,
        /// Authorised keys found.
        found: usize,
        /// Keys required.
        threshold: u32,
        /// The key directories searched.
        searched: String,
        /// Key files found for the role that root does not name (with a
        /// leading "; "), or empty.
        foreign: String,
    },
    /// The client was used in a wrong order or state.
    #[error("{0}")]
    State(String),
}

impl TufError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TufError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn malformed(role: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        TufError::Malformed {
            role: role.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn mismatch(what: impl Into<String>, reason: impl Into<String>) -> Self {
        TufError::Mismatch {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
