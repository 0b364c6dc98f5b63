//! Which wave a device belongs to.
//!
//! - A device whose host is in a group wave's group belongs to the first
//!   such wave.
//! - Any other device of the target falls into a percentage wave by a
//!   stable hash of the rollout and device ids (a bucket in 0..10,000, the
//!   waves taking consecutive ranges of it in their order), so the choice
//!   needs no coordination and is the same on every node.
//! - A device that joins the target after a percentage wave began (a new
//!   device, a new host) joins the latest such wave instead: it is updated
//!   with the wave that is running and counts in its figures.
//!
//! The wave is then recorded with the device (see the service), so it is
//! kept even if the host changes group later.

use catalog::digest::Sha256Digest;

use super::spec::{WaveInput, WaveShare};

/// Buckets a share of devices is measured in (1 % = 100 buckets).
pub const BUCKETS: u16 = 10_000;

/// The device's bucket for a rollout, in `0..BUCKETS`.
pub fn bucket(rollout: &str, device: &str) -> u16 {
    let h = Sha256Digest::of(format!("rollout-wave\0{rollout}\0{device}").as_bytes());
    let b = h.as_bytes();
    let n = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    (n % u64::from(BUCKETS)) as u16
}

/// The wave of a device of the target at the start: its host's group's
/// wave, else the percentage wave its bucket falls in; `None` when the
/// rollout has no wave for it (group waves only, host in none of them).
pub fn initial_wave(waves: &[WaveInput], host_group: &str, bucket: u16) -> Option<usize> {
    if let Some(i) = group_wave(waves, host_group) {
        return Some(i);
    }
    let percent_buckets: u32 = waves
        .iter()
        .filter_map(|w| w.percent)
        .map(|p| u32::from(p) * 100)
        .sum();
    let mut end = 0u32;
    for (i, w) in waves.iter().enumerate() {
        let size = match w.share() {
            WaveShare::Percent(p) => u32::from(p) * 100,
            WaveShare::Rest => u32::from(BUCKETS).saturating_sub(percent_buckets),
            WaveShare::Group(_) => continue,
        };
        end += size;
        if u32::from(bucket) < end {
            return Some(i);
        }
    }
    None
}

/// The wave of a device that joined the target after `started` (the waves
/// that began) — the latest percentage wave that began, else as at the
/// start.
pub fn joining_wave(
    waves: &[WaveInput],
    started: &[bool],
    host_group: &str,
    bucket: u16,
) -> Option<usize> {
    if let Some(i) = group_wave(waves, host_group) {
        return Some(i);
    }
    waves
        .iter()
        .enumerate()
        .rev()
        .find(|(i, w)| started.get(*i) == Some(&true) && !matches!(w.share(), WaveShare::Group(_)))
        .map(|(i, _)| i)
        .or_else(|| initial_wave(waves, host_group, bucket))
}

fn group_wave(waves: &[WaveInput], host_group: &str) -> Option<usize> {
    waves
        .iter()
        .position(|w| w.group.as_deref() == Some(host_group))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave(json: &str) -> WaveInput {
        serde_json::from_str(json).unwrap()
    }

    fn staged() -> Vec<WaveInput> {
        vec![
            wave(r#"{"group":"pilot"}"#),
            wave(r#"{"percent":5}"#),
            wave(r#"{"percent":25}"#),
            wave(r#"{"rest":true}"#),
        ]
    }

    #[test]
    fn initial_wave_by_group_then_bucket() {
        let w = staged();
        for (group, bucket, expected) in [
            ("pilot", 9_999, Some(0)),
            ("sales", 0, Some(1)),
            ("sales", 499, Some(1)),
            ("sales", 500, Some(2)),
            ("sales", 2_999, Some(2)),
            ("sales", 3_000, Some(3)),
            ("sales", 9_999, Some(3)),
        ] {
            assert_eq!(
                initial_wave(&w, group, bucket),
                expected,
                "{group} {bucket}"
            );
        }
        let groups_only = vec![wave(r#"{"group":"pilot"}"#), wave(r#"{"group":"sales"}"#)];
        assert_eq!(initial_wave(&groups_only, "sales", 10), Some(1));
        assert_eq!(initial_wave(&groups_only, "all-users", 10), None);
    }

    #[test]
    fn joining_devices_take_the_latest_percentage_wave_that_began() {
        let w = staged();
        for (started, group, bucket, expected) in [
            (&[false, false, false, false][..], "sales", 9_000, Some(3)),
            (&[true, false, false, false][..], "sales", 9_000, Some(3)),
            (&[true, true, false, false][..], "sales", 9_000, Some(1)),
            (&[true, true, true, false][..], "sales", 100, Some(2)),
            (&[true, true, true, true][..], "sales", 100, Some(3)),
            (&[true, true, true, true][..], "pilot", 100, Some(0)),
        ] {
            assert_eq!(
                joining_wave(&w, started, group, bucket),
                expected,
                "{started:?} {group} {bucket}"
            );
        }
    }

    #[test]
    fn buckets_are_stable_and_spread() {
        assert_eq!(bucket("r1", "d1"), bucket("r1", "d1"));
        let n = 20_000;
        let in_first_5_percent = (0..n)
            .filter(|i| bucket("r1", &format!("device-{i}")) < 500)
            .count();
        // 5 % of 20,000 is 1,000; a fair hash stays well within ±20 %.
        assert!(
            (800..1_200).contains(&in_first_5_percent),
            "{in_first_5_percent}"
        );
        // Another rollout shuffles the devices anew.
        let same = (0..1000)
            .filter(|i| {
                let d = format!("device-{i}");
                (bucket("r1", &d) < 500) == (bucket("r2", &d) < 500)
            })
            .count();
        assert!(same < 1000);
    }
}
