//! `catalog endorse`: the targets role vouches for a tenant's assignment key
//! (see [`KeyEndorsement`]). Like an import, it needs the targets key, so
//! with the key offline it is done on the signing host and published.

use chrono::{DateTime, Utc};

use super::{lock, Catalog, CatalogError};
use crate::assignment::KeyEndorsement;

impl Catalog {
    /// The endorsed assignment keys, one per tenant.
    pub fn endorsements(&self) -> &[KeyEndorsement] {
        &self.index.assignment_keys
    }

    /// Endorses `endorsement`'s key for its tenant, replacing (and so
    /// revoking) the key endorsed before; returns false when exactly this
    /// key was endorsed already (nothing changes then).
    pub fn endorse(
        &mut self,
        endorsement: &KeyEndorsement,
        now: DateTime<Utc>,
    ) -> Result<bool, CatalogError> {
        let _lock = lock(&self.root)?;
        self.reload()?;
        let mut repo = self.signing_targets()?;
        let signed = repo
            .current_targets()
            .targets
            .get(&endorsement.target_name())
            .and_then(|t| KeyEndorsement::from_target(&endorsement.target_name(), t));
        let keys = &mut self.index.assignment_keys;
        // Already recorded *and* signed; recorded only (a publish that
        // failed after the index was written) is signed now.
        if keys.contains(endorsement) && matches!(signed, Some(Ok(ref s)) if s == endorsement) {
            return Ok(false);
        }
        keys.retain(|e| e.tenant != endorsement.tenant);
        keys.push(endorsement.clone());
        keys.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        self.blobs.put_bytes(&endorsement.to_bytes()?)?;
        self.write_index()?;
        repo.publish_targets(self.targets()?, now)?;
        Ok(true)
    }

    /// Withdraws the endorsement of `tenant`'s key (a deleted tenant, or a
    /// key that must stop working before its replacement is ready); returns
    /// the endorsement removed.
    pub fn withdraw_endorsement(
        &mut self,
        tenant: &str,
        now: DateTime<Utc>,
    ) -> Result<KeyEndorsement, CatalogError> {
        let _lock = lock(&self.root)?;
        self.reload()?;
        let mut repo = self.signing_targets()?;
        let keys = &mut self.index.assignment_keys;
        let pos = keys
            .iter()
            .position(|e| e.tenant == tenant)
            .ok_or_else(|| CatalogError::NotFound(KeyEndorsement::target_name_for(tenant)))?;
        let removed = keys.remove(pos);
        self.write_index()?;
        repo.publish_targets(self.targets()?, now)?;
        Ok(removed)
    }
}
