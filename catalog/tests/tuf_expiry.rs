//! Expired metadata of each role is refused (freeze attacks), with the
//! reference time fixed at the start of the refresh.

#[path = "interop/tuf_common.rs"]
mod common;

use catalog::tuf::TufError;
use chrono::Duration;
use common::{t0, Env};

const FW: &[u8] = b"firmware image v1 \x00\x01\x02";

fn now() -> chrono::DateTime<chrono::Utc> {
    t0() + Duration::hours(1)
}

fn short(role: &str) -> catalog::tuf::RepositoryConfig {
    let mut c = catalog::tuf::RepositoryConfig {
        root_expiry: Duration::days(30),
        targets_expiry: Duration::days(30),
        snapshot_expiry: Duration::days(30),
        timestamp_expiry: Duration::days(30),
    };
    let d = Duration::days(1);
    match role {
        "root" => c.root_expiry = d,
        "targets" => c.targets_expiry = d,
        "snapshot" => c.snapshot_expiry = d,
        _ => c.timestamp_expiry = d,
    }
    c
}

fn assert_expired(role: &str) {
    let mut env = Env::with_config(short(role));
    env.publish(&[("fw/a.bin", FW)], t0());
    assert_eq!(env.fetch_target("fw/a.bin", now()).unwrap(), FW);
    let err = env
        .fetch_target("fw/a.bin", t0() + Duration::days(2))
        .unwrap_err();
    assert!(
        matches!(&err, TufError::Expired { role: r, .. } if r == role),
        "{role}: {err}"
    );
}

#[test]
fn expired_root() {
    assert_expired("root");
}

#[test]
fn expired_timestamp() {
    assert_expired("timestamp");
}

#[test]
fn expired_snapshot() {
    assert_expired("snapshot");
}

#[test]
fn expired_targets() {
    assert_expired("targets");
}
