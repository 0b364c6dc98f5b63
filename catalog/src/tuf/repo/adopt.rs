//! Adopting metadata signed on another host: the serving host, which holds
//! only the online keys, publishes roots and targets that the signing host
//! signed with the offline keys, after checking them as a client would.

use chrono::{DateTime, Utc};

use super::{meta_for, Repository, ONLINE_ROLES};
use crate::tuf::error::TufError;
use crate::tuf::metadata::{check_expiry, Root, Signed, Targets};
use crate::tuf::verify::verify_next_root;

/// Verified metadata from a signing host, ready to be published here by
/// [`Repository::adopt`]. Nothing is written while one exists.
#[derive(Debug)]
pub struct Adoption {
    roots: Vec<(Signed<Root>, Vec<u8>)>,
    targets: Option<(Signed<Targets>, Vec<u8>)>,
}

impl Adoption {
    /// The new targets metadata, if there is one.
    pub fn targets(&self) -> Option<&Targets> {
        self.targets.as_ref().map(|(t, _)| &t.signed)
    }

    /// The newest root version it brings, if any.
    pub fn root_version(&self) -> Option<u64> {
        self.roots.last().map(|(r, _)| r.signed.version)
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty() && self.targets.is_none()
    }
}

impl Repository {
    /// Checks metadata signed elsewhere: `roots` are the files of root
    /// N+1, N+2, … in order, each signed by the threshold of the root before
    /// it and by its own; `targets` must be signed by the newest root's
    /// targets threshold, be newer than the published targets (the same
    /// version with the same signed content is no change) and unexpired at
    /// `now`. The published targets must still verify under a new root
    /// unless new targets come with it, and this host must hold the newest
    /// root's snapshot and timestamp keys.
    pub fn check_adoption(
        &self,
        roots: Vec<Vec<u8>>,
        targets: Option<Vec<u8>>,
        now: DateTime<Utc>,
    ) -> Result<Adoption, TufError> {
        let mut trusted = self.root.signed.clone();
        let mut checked = Vec::new();
        for bytes in roots {
            let new = verify_next_root(&trusted, &bytes)?;
            trusted = new.signed.clone();
            checked.push((new, bytes));
        }
        check_expiry("root", &trusted, now)?;
        let targets = match targets {
            None => None,
            Some(bytes) => {
                let new = Signed::<Targets>::from_slice("targets", &bytes)?;
                let current = self.targets.signed.version;
                if new.signed.version == current
                    && new.canonical_signed() == self.targets.canonical_signed()
                {
                    None
                } else if new.signed.version <= current {
                    return Err(TufError::Rollback {
                        role: "targets".into(),
                        trusted: current,
                        new: new.signed.version,
                    });
                } else {
                    Some((new, bytes))
                }
            }
        };
        let role = trusted.role("targets")?;
        let shown = targets.as_ref().map_or(&self.targets, |(t, _)| t);
        shown.verify("targets", &trusted.keys, &role.keyids, role.threshold)?;
        check_expiry("targets", &shown.signed, now)?;
        for online in ONLINE_ROLES {
            if !self.keys.can_sign(&trusted, online) {
                let threshold = trusted.role(online)?.threshold;
                let found = self.keys.authorised(&trusted, online).len();
                return Err(self.keys.missing(&trusted, online, found, threshold));
            }
        }
        Ok(Adoption {
            roots: checked,
            targets,
        })
    }

    /// Publishes a checked adoption: each root, the targets exactly as
    /// signed, then a new snapshot and timestamp signed here.
    pub fn adopt(&mut self, adoption: Adoption, now: DateTime<Utc>) -> Result<(), TufError> {
        if adoption.is_empty() {
            return Ok(());
        }
        for (root, _bytes) in adoption.roots {
            self.root = root;
            self.write_root()?;
        }
        let meta = match adoption.targets {
            Some((targets, bytes)) => {
                let v = targets.signed.version;
                self.write(&format!("{v}.targets.json"), &bytes)?;
                self.targets = targets;
                meta_for(&bytes, v)
            }
            None => self.snapshot.signed.meta["targets.json"].clone(),
        };
        self.write_snapshot_and_timestamp(meta, now, false)
    }
}
