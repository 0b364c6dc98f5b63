//! The Update Framework (TUF 1.0.x) for the catalog: canonical JSON, keys,
//! metadata, the publishing [`Repository`] and the client verification core
//! ([`Updater`]).
//!
//! This module does no networking: clients fetch bytes through the [`Fetcher`]
//! trait that callers implement ([`FileFetcher`] reads a directory).

mod cjson;
mod client;
mod error;
mod fs;
mod keys;
mod metadata;
mod paths;
mod repo;
mod signer;
mod verify;

pub use cjson::{canonical_json, to_canonical_json};
pub use client::{copy_bounded, Fetcher, FileFetcher, Updater, UpdaterConfig};
pub use error::{FetchError, TufError};
pub use keys::{KeyVal, PublicKey, Verification};
pub use metadata::{
    expires_format, DelegatedRole, Delegations, MetaFile, Metadata, RoleKeys, Root, Signature,
    Signed, Snapshot, TargetFile, Targets, Timestamp, SPEC_VERSION, TOP_LEVEL_ROLES,
};
pub use paths::{
    consistent_target_path, path_matches, quote, role_file_name, role_matches, validate_role_name,
    validate_target_name,
};
pub use repo::{
    Adoption, KeyPlacement, Repository, RepositoryConfig, RootChange, RootChanged, ONLINE_ROLES,
};
pub use signer::Ed25519Signer;
pub use verify::{root_fingerprint, verify_next_root, verify_self_signed_root, verify_threshold};
