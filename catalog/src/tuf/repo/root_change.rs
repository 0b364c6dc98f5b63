//! Root changes: rotate, add and revoke keys, set thresholds. Each publishes
//! root N+1 signed by the threshold of root N's root keys and of its own, the
//! chain every client (ours, python-tuf) walks.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::keyring::{key_file, short};
use super::{expiry_from, Repository, ONLINE_ROLES};
use crate::tuf::error::TufError;
use crate::tuf::metadata::{Root, Signed, TOP_LEVEL_ROLES};
use crate::tuf::signer::Ed25519Signer;

/// One change to the root of trust.
#[derive(Debug, Clone, Copy)]
pub enum RootChange<'a> {
    /// New keys for these roles: each of the role's keys on this host is
    /// replaced in its file (the old file kept as
    /// `<role>.pem.retired-v<N>`); a role with none of its keys here gets
    /// one new key, written to the first key directory, which replaces all
    /// of its keys (threshold 1). No roles: root is re-signed with a new
    /// expiry.
    Rotate(&'a [&'a str]),
    /// A new key for `role`, generated into `<dir>/<role>.pem` (the holder's
    /// own medium). The threshold is unchanged.
    AddKey {
        /// The role.
        role: &'a str,
        /// Where the new key is written.
        dir: &'a Path,
    },
    /// A key no longer trusted for `role` (a key id or a unique prefix of at
    /// least 8 hex digits).
    RevokeKey {
        /// The role.
        role: &'a str,
        /// The key.
        key_id: &'a str,
    },
    /// How many of a role's keys must sign.
    Threshold {
        /// The role.
        role: &'a str,
        /// At least 1, at most the role's number of keys.
        threshold: u32,
    },
}

/// What a root change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootChanged {
    /// The version of the new root.
    pub version: u64,
    /// New key files written, by role.
    pub new_keys: Vec<(String, PathBuf)>,
    /// Online roles whose keys changed and that this host could not re-sign:
    /// the serving host re-signs them when it adopts this root (with the new
    /// key files moved to it first).
    pub online_roles_pending: Vec<String>,
}

fn check_role(role: &str) -> Result<(), TufError> {
    if TOP_LEVEL_ROLES.contains(&role) {
        Ok(())
    } else {
        Err(TufError::State(format!(
            "unknown role {role:?}: one of root, targets, snapshot, timestamp"
        )))
    }
}

/// A key file to write once the new root is known to verify.
struct NewKey {
    role: String,
    path: PathBuf,
    retire: bool,
    signer: Ed25519Signer,
}

impl Repository {
    /// Root rotation: [`RootChange::Rotate`] of `rotate`.
    pub fn rotate_root(&mut self, rotate: &[&str], now: DateTime<Utc>) -> Result<(), TufError> {
        self.change_root(RootChange::Rotate(rotate), now)
            .map(|_| ())
    }

    /// Publishes root N+1 with `change` applied, signed by the old and the
    /// new root thresholds (both checked before anything is written), then
    /// re-signs the roles whose keys or threshold changed. Refused, with
    /// nothing written, when the targets metadata would no longer verify
    /// and its keys are not here to re-sign it.
    pub fn change_root(
        &mut self,
        change: RootChange<'_>,
        now: DateTime<Utc>,
    ) -> Result<RootChanged, TufError> {
        let old = self.root.signed.clone();
        let mut root = old.clone();
        root.version += 1;
        root.expires = expiry_from(now, self.config.root_expiry);
        let new_keys = self.apply(&mut root, change)?;
        for s in &new_keys {
            root.keys
                .insert(s.signer.key_id().into(), s.signer.public_key().clone());
        }
        let used: Vec<String> = root.roles.values().flat_map(|r| r.keyids.clone()).collect();
        root.keys.retain(|id, _| used.contains(id));
        for role in TOP_LEVEL_ROLES {
            let r = root.role(role)?;
            if r.threshold == 0 || r.threshold as usize > r.keyids.len() {
                return Err(TufError::State(format!(
                    "{role} would need {} signatures from {} key(s)",
                    r.threshold,
                    r.keyids.len()
                )));
            }
        }
        let changed: Vec<&str> = TOP_LEVEL_ROLES
            .into_iter()
            .filter(|r| old.roles.get(*r) != root.roles.get(*r))
            .collect();
        let signed = self.sign_root(&old, root, &new_keys)?;
        let targets_stale = changed.contains(&"targets");
        let can_resign_targets = self.can_sign_with(&signed.signed, "targets", &new_keys);
        if targets_stale && !can_resign_targets {
            return Err(self.keys.missing(
                &signed.signed,
                "targets",
                0,
                signed.signed.role("targets")?.threshold,
            ));
        }
        let old_version = old.version;
        let mut written = Vec::new();
        for k in new_keys {
            if k.retire && k.path.exists() {
                let retired = k
                    .path
                    .with_file_name(format!("{}.pem.retired-v{old_version}", k.role));
                std::fs::rename(&k.path, &retired).map_err(|e| TufError::io(&k.path, e))?;
            } else if k.path.exists() {
                return Err(TufError::State(format!(
                    "{}: key file already exists",
                    k.path.display()
                )));
            }
            if let Some(dir) = k.path.parent() {
                crate::fsutil::create_private_dir(dir).map_err(|e| TufError::io(dir, e))?;
            }
            k.signer.save(&k.path)?;
            written.push((k.role.clone(), k.path.clone()));
            self.keys.add(&k.role, k.path, k.signer);
        }
        self.root = signed;
        self.write_root()?;
        let online_ready = ONLINE_ROLES.iter().all(|r| self.can_sign(r));
        if targets_stale {
            self.commit_targets(self.targets.signed.clone(), now)?;
        } else if online_ready && changed.contains(&"snapshot") {
            let m = self.snapshot.signed.meta["targets.json"].clone();
            self.write_snapshot_and_timestamp(m, now, false)?;
        } else if online_ready && changed.contains(&"timestamp") {
            self.write_timestamp(now)?;
        }
        let online_roles_pending = if online_ready {
            Vec::new()
        } else {
            changed
                .iter()
                .filter(|r| ONLINE_ROLES.contains(r))
                .map(|r| r.to_string())
                .collect()
        };
        Ok(RootChanged {
            version: self.root.signed.version,
            new_keys: written,
            online_roles_pending,
        })
    }

    /// Applies `change` to `root`, returning the keys it generates.
    fn apply(&self, root: &mut Root, change: RootChange<'_>) -> Result<Vec<NewKey>, TufError> {
        let mut new_keys = Vec::new();
        match change {
            RootChange::Rotate(roles) => {
                for role in roles {
                    check_role(role)?;
                    let here = self.keys.authorised(&self.root.signed, role);
                    let entry = root.roles.get_mut(*role).expect("checked role");
                    if here.is_empty() {
                        let dir = self.keys.home().ok_or_else(|| {
                            TufError::State("no key directory to write a new key to".into())
                        })?;
                        let signer = Ed25519Signer::generate()?;
                        entry.keyids = vec![signer.key_id().into()];
                        entry.threshold = 1;
                        new_keys.push(NewKey {
                            role: role.to_string(),
                            path: key_file(dir, role),
                            retire: true,
                            signer,
                        });
                        continue;
                    }
                    for f in here {
                        let signer = Ed25519Signer::generate()?;
                        for id in entry.keyids.iter_mut() {
                            if id == f.signer.key_id() {
                                *id = signer.key_id().into();
                            }
                        }
                        new_keys.push(NewKey {
                            role: role.to_string(),
                            path: f.path.clone(),
                            retire: true,
                            signer,
                        });
                    }
                }
            }
            RootChange::AddKey { role, dir } => {
                check_role(role)?;
                let path = key_file(dir, role);
                if path.exists() {
                    return Err(TufError::State(format!(
                        "{}: key file already exists (one key per role per directory)",
                        path.display()
                    )));
                }
                let signer = Ed25519Signer::generate()?;
                root.roles
                    .get_mut(role)
                    .expect("checked role")
                    .keyids
                    .push(signer.key_id().into());
                new_keys.push(NewKey {
                    role: role.to_owned(),
                    path,
                    retire: false,
                    signer,
                });
            }
            RootChange::RevokeKey { role, key_id } => {
                check_role(role)?;
                let entry = root.roles.get_mut(role).expect("checked role");
                let matching: Vec<String> = entry
                    .keyids
                    .iter()
                    .filter(|id| key_id.len() >= 8 && id.starts_with(key_id))
                    .cloned()
                    .collect();
                let [id] = matching.as_slice() else {
                    return Err(TufError::State(format!(
                        "{role} has {} key(s) matching {key_id:?} (give 8 or more hex digits of one of: {})",
                        matching.len(),
                        entry.keyids.iter().map(|k| short(k)).collect::<Vec<_>>().join(", ")
                    )));
                };
                entry.keyids.retain(|k| k != id);
            }
            RootChange::Threshold { role, threshold } => {
                check_role(role)?;
                root.roles.get_mut(role).expect("checked role").threshold = threshold;
            }
        }
        Ok(new_keys)
    }

    /// Signs `root` with every root key here of the old or the new root, and
    /// checks both thresholds are met.
    fn sign_root(
        &self,
        old: &Root,
        root: Root,
        new_keys: &[NewKey],
    ) -> Result<Signed<Root>, TufError> {
        // Old root keys first, then new ones: the order clients see them in.
        let candidates = self.keys.files("root").iter().map(|f| &f.signer).chain(
            new_keys
                .iter()
                .filter(|k| k.role == "root")
                .map(|k| &k.signer),
        );
        let mut wanted: Vec<&Ed25519Signer> = Vec::new();
        for s in candidates {
            let named = [old, &root].iter().any(|r| {
                r.role("root")
                    .is_ok_and(|k| k.keyids.iter().any(|id| id == s.key_id()))
            });
            if named && !wanted.iter().any(|w| w.key_id() == s.key_id()) {
                wanted.push(s);
            }
        }
        let signed = Signed::sign(root, &wanted)?;
        for (which, trusted) in [("old", old), ("new", &signed.signed)] {
            let r = trusted.role("root")?;
            if let Err(TufError::Threshold {
                valid, threshold, ..
            }) = signed.verify("root", &trusted.keys, &r.keyids, r.threshold)
            {
                let mut e = self.keys.missing(trusted, "root", valid, threshold);
                if let TufError::MissingKeys { role, .. } = &mut e {
                    *role = format!("root v{} (by the {which} root)", signed.signed.version);
                }
                return Err(e);
            }
        }
        Ok(signed)
    }

    /// Whether `root`'s threshold of `role` keys is here once `new_keys`
    /// are written: asked before they are.
    fn can_sign_with(&self, root: &Root, role: &str, new_keys: &[NewKey]) -> bool {
        let Ok(r) = root.role(role) else {
            return false;
        };
        let here = self.keys.files(role).iter().map(|f| f.signer.key_id());
        let new = new_keys
            .iter()
            .filter(|k| k.role == role)
            .map(|k| k.signer.key_id());
        let named: std::collections::BTreeSet<&str> = here
            .chain(new)
            .filter(|id| r.keyids.iter().any(|k| k == id))
            .collect();
        named.len() >= r.threshold as usize
    }
}
