//! The last assignment document this process verified, remembered by its
//! content digest.
//!
//! The daemon reads the stored assignment document on every tick (to plan
//! wake-ups for maintenance windows) and on every pass, and checks it again
//! each time: the state database could have been changed under it. The
//! signature check is the expensive part (about three quarters of a
//! simulated fleet's CPU time went to it), and its answer depends only on the
//! bytes and the pinned key: a document byte for byte equal to one verified
//! before needs no second signature check. The cheap checks — for this
//! agent, unexpired now, not older than the trusted version — run at every
//! use ([`check_assignment_set`]).

use std::sync::Mutex;

use catalog::assignment::{
    check_assignment_set, verify_assignments, AssignmentError, AssignmentSet,
};
use catalog::tuf::PublicKey;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// See the module documentation. One per agent (one pinned key).
#[derive(Debug, Default)]
pub(crate) struct VerifiedDocument {
    last: Mutex<Option<([u8; 32], AssignmentSet)>>,
}

impl VerifiedDocument {
    /// [`verify_assignments`] of `document`, with the signature check
    /// skipped when `document` is the one verified last.
    pub(crate) fn verify(
        &self,
        document: &[u8],
        key: &PublicKey,
        agent: &str,
        trusted_version: u64,
        now: DateTime<Utc>,
    ) -> Result<AssignmentSet, AssignmentError> {
        let digest: [u8; 32] = Sha256::digest(document).into();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, set)) = last.as_ref() {
            if *seen == digest {
                return check_assignment_set(set.clone(), agent, trusted_version, now);
            }
        }
        let set = verify_assignments(document, key, agent, trusted_version, now)?;
        *last = Some((digest, set.clone()));
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use catalog::assignment::{sign_assignments, AssignmentError, AssignmentSet};
    use catalog::tuf::Ed25519Signer;
    use chrono::{Duration, TimeZone, Utc};

    use super::VerifiedDocument;

    #[test]
    fn a_remembered_document_still_gets_every_check_but_the_signature() {
        let now = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap();
        let signer = Ed25519Signer::generate().unwrap();
        let key = signer.public_key();
        let set = AssignmentSet::new("t-1", "agent-1", 7, now + Duration::days(1), 3600, vec![]);
        let doc = sign_assignments(set.clone(), &signer).unwrap();
        let cache = VerifiedDocument::default();
        assert_eq!(cache.verify(&doc, key, "agent-1", 7, now).unwrap(), set);

        // The same bytes again: the checks that depend on the use still refuse.
        let refused = |agent: &str, trusted: u64, at| cache.verify(&doc, key, agent, trusted, at);
        assert!(matches!(
            refused("agent-2", 7, now),
            Err(AssignmentError::WrongAgent { .. })
        ));
        assert!(matches!(
            refused("agent-1", 7, now + Duration::days(1)),
            Err(AssignmentError::Expired(_))
        ));
        assert!(matches!(
            refused("agent-1", 8, now),
            Err(AssignmentError::Rollback { .. })
        ));

        // Other bytes are verified in full: a changed poll interval (which
        // passes every other check), another key's signature over the same set.
        let mut tampered = doc.clone();
        let at = tampered
            .windows(4)
            .position(|w| w == b"3600")
            .expect("the poll interval");
        tampered[at + 3] = b'1';
        assert!(matches!(
            cache.verify(&tampered, key, "agent-1", 7, now),
            Err(AssignmentError::Envelope(_))
        ));
        let other = Ed25519Signer::generate().unwrap();
        let foreign = sign_assignments(set.clone(), &other).unwrap();
        assert!(matches!(
            cache.verify(&foreign, key, "agent-1", 7, now),
            Err(AssignmentError::Envelope(_))
        ));
        // A refusal does not replace what was verified.
        assert_eq!(cache.verify(&doc, key, "agent-1", 7, now).unwrap(), set);
    }
}
