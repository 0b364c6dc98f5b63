//! Assignments are acted on only while the signed catalog endorses the key
//! they were verified with, for their tenant (the endorsed key installs:
//! every other pipeline test runs with it).

use catalog::assignment::{DownloadSource, KeyEndorsement};
use catalog::tuf::Ed25519Signer;
use chrono::Duration;
use test_devices::ModelProfile;

use super::tests::{set, t0, Fx, TENANT};
use super::*;

#[test]
fn a_key_the_catalog_does_not_endorse_installs_nothing() {
    let rotate = |fx: &mut Fx| {
        let other_key = Ed25519Signer::generate().unwrap().public_key().clone();
        let e = KeyEndorsement::new(TENANT, other_key).unwrap();
        assert!(fx
            .catalog
            .endorse(&e, t0() - Duration::minutes(30))
            .unwrap());
        fx.export();
    };
    let withdraw = |fx: &mut Fx| {
        fx.catalog
            .withdraw_endorsement(TENANT, t0() - Duration::minutes(30))
            .unwrap();
        fx.export();
    };
    let other_tenant = |fx: &mut Fx| {
        let e = KeyEndorsement::new("00000000000000b2", fx.assignment_key.clone()).unwrap();
        fx.catalog
            .withdraw_endorsement(TENANT, t0() - Duration::minutes(30))
            .unwrap();
        fx.catalog
            .endorse(&e, t0() - Duration::minutes(30))
            .unwrap();
        fx.export();
    };
    type Change = Box<dyn Fn(&mut Fx)>;
    for (case, change, needle) in [
        (
            "rotated to another key",
            Box::new(rotate) as Change,
            "they endorse key",
        ),
        (
            "withdrawn",
            Box::new(withdraw),
            "they list no assignment-keys/00000000000000a1.json",
        ),
        (
            "endorsed for another tenant only",
            Box::new(other_tenant),
            "they list no assignment-keys/00000000000000a1.json",
        ),
    ] {
        let mut fx = Fx::new(ModelProfile::headset_tolerant());
        let release = fx.import((2, 0, 0), 3);
        change(&mut fx);
        let a = fx.assignment(
            &release,
            DeploymentType::Automatic,
            DownloadSource::Server,
            false,
        );
        let mut p = fx.pipeline();
        let report = p.run(&set(vec![a.clone()]), t0()).unwrap();
        let Some(Outcome::Failed(reason)) = report.outcomes.get(&a.device) else {
            panic!("{case}: {report:?}");
        };
        assert!(
            reason.contains("do not endorse assignment key") && reason.contains(needle),
            "{case}: {reason}"
        );
        assert_eq!(fx.version_on_bus(), "1.0.0", "{case}");
        let events = fx.state.pending_events(100).unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["tamper_detected", "update_failed"], "{case}");
        assert_eq!(events[0].detail["source"], "assignment", "{case}");
        assert!(p.staging.staged(&a.sha256).is_none(), "{case}");
    }
}
