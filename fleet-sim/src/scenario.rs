//! Who is in the demo fleet: the hosts, their devices, and what each kind
//! of host must end with for the rollout to count as converged.

use crate::firmware::{models, Model};
use crate::host::HostSpec;

/// The kinds of host the demo mixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostKind {
    /// An ordinary desk: one or two devices, updated in the window.
    Desk,
    /// A two-piece product (base station + USB dongle): the multi-piece
    /// guard keeps a silent update waiting.
    TwoPiece,
    /// In a call when the window opens: waits for the call to end.
    InCall,
    /// A branch office whose share holds a tampered image: refused, then
    /// fetched from the server.
    TamperedShare,
}

impl HostKind {
    /// How the demo's summary names the kind.
    pub fn label(self) -> &'static str {
        match self {
            Self::Desk => "desk",
            Self::TwoPiece => "two-piece product",
            Self::InCall => "in a call at window start",
            Self::TamperedShare => "branch office, tampered share",
        }
    }
}

/// One planned host.
#[derive(Debug, Clone)]
pub struct PlannedHost {
    /// Its spec.
    pub spec: HostSpec,
    /// Its kind.
    pub kind: HostKind,
    /// In the pilot group (updated in the first night).
    pub pilot: bool,
}

/// The fleet of `count` hosts: a pilot 5 % (at least three), a few special hosts right
/// after it, and desks with a mix of the single-piece models.
pub fn plan(count: usize) -> anyhow::Result<Vec<PlannedHost>> {
    let all = models();
    let by = |profile: &str| -> Model {
        all.iter()
            .find(|m| m.profile == profile)
            .cloned()
            .unwrap_or_else(|| unreachable!("{profile} is one of the demo models"))
    };
    let (tolerant, replug, dfuse) = (
        by("headset_tolerant"),
        by("headset_needs_replug"),
        by("dfuse_speakerphone"),
    );
    let two_piece = vec![by("base_station"), by("usb_dongle")];
    let pilots = (count / 20).max(3);
    let specials = [
        HostKind::TwoPiece,
        HostKind::InCall,
        HostKind::TamperedShare,
        HostKind::TwoPiece,
        HostKind::TwoPiece,
    ];
    if count < pilots + specials.len() + 2 {
        anyhow::bail!(
            "a demo fleet needs at least {} hosts",
            pilots + specials.len() + 2
        );
    }
    // One device of ours per desk: a second one would make every silent
    // update wait (the multi-piece guard), which only the two-piece hosts show.
    let desk_mixes = [
        vec![tolerant.clone()],
        vec![replug.clone()],
        vec![dfuse.clone()],
        vec![tolerant.clone()],
    ];
    Ok((0..count)
        .map(|i| {
            let kind = i
                .checked_sub(pilots)
                .and_then(|k| specials.get(k))
                .copied()
                .unwrap_or(HostKind::Desk);
            let models = match kind {
                HostKind::Desk => desk_mixes[i % desk_mixes.len()].clone(),
                HostKind::TwoPiece => two_piece.clone(),
                HostKind::InCall | HostKind::TamperedShare => vec![tolerant.clone()],
            };
            PlannedHost {
                spec: HostSpec {
                    name: format!("ws-{:04}", i + 1),
                    user: format!("user{:04}", i + 1),
                    models,
                },
                kind,
                pilot: i < pilots,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_has_pilots_specials_and_every_model() {
        let p = plan(300).unwrap();
        assert_eq!(p.len(), 300);
        assert_eq!(p.iter().filter(|h| h.pilot).count(), 15);
        let count = |k| p.iter().filter(|h| h.kind == k).count();
        assert_eq!(
            (
                count(HostKind::TwoPiece),
                count(HostKind::InCall),
                count(HostKind::TamperedShare)
            ),
            (3, 1, 1)
        );
        assert!(p
            .iter()
            .filter(|h| h.pilot)
            .all(|h| h.kind == HostKind::Desk));
        for m in models() {
            assert!(
                p.iter()
                    .any(|h| h.spec.models.iter().any(|x| x.profile == m.profile)),
                "{} missing",
                m.profile
            );
        }
        let names: std::collections::HashSet<_> = p.iter().map(|h| &h.spec.name).collect();
        assert_eq!(names.len(), 300);
    }

    #[test]
    fn too_small_a_fleet_is_refused() {
        assert!(plan(8).is_err());
        assert!(plan(10).is_ok());
    }
}
