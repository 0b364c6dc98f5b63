use std::cell::Cell;
use std::io::Write;

use catalog::tuf::TargetFile;

use super::*;

/// A source serving `data`, optionally dying after `fail_after` bytes of one
/// request, and recording the offsets it was asked for.
struct FlakySource {
    data: Vec<u8>,
    fail_after: Cell<Option<u64>>,
    offsets: std::cell::RefCell<Vec<u64>>,
}

impl FlakySource {
    fn new(data: &[u8], fail_after: Option<u64>) -> Self {
        Self {
            data: data.to_vec(),
            fail_after: Cell::new(fail_after),
            offsets: Default::default(),
        }
    }
}

impl RangeFetch for FlakySource {
    fn fetch_from(
        &self,
        url: &str,
        offset: u64,
        max_len: u64,
        out: &mut dyn Write,
    ) -> Result<u64, FetchError> {
        self.offsets.borrow_mut().push(offset);
        let rest = &self.data[(offset as usize).min(self.data.len())..];
        if rest.len() as u64 > max_len {
            return Err(FetchError::TooLong {
                url: url.into(),
                max_len,
            });
        }
        let fail_at = self.fail_after.take();
        let n = fail_at.map_or(rest.len(), |k| (k as usize).min(rest.len()));
        out.write_all(&rest[..n])
            .map_err(|e| FetchError::Transport {
                url: url.into(),
                message: format!("writing: {e}"),
            })?;
        if fail_at.is_some() && n < rest.len() {
            return Err(FetchError::Transport {
                url: url.into(),
                message: "connection reset".into(),
            });
        }
        Ok(n as u64)
    }
}

fn image() -> Vec<u8> {
    (0..50_000u32).map(|i| (i % 241) as u8).collect()
}

#[test]
fn interrupted_download_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let staging = Staging::open(dir.path()).unwrap();
    let data = image();
    let target = TargetFile::from_data(&data, None);
    let digest = Sha256Digest::of(&data);
    let source = FlakySource::new(&data, Some(20_000));

    let err = staging.stage(&source, "fw", &target).unwrap_err();
    assert!(
        matches!(
            err,
            StageError::Interrupted {
                received: 20_000,
                length: 50_000,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(staging.partial_len(&digest), 20_000);
    assert!(
        staging.staged(&digest).is_none(),
        "nothing counts as staged before verification"
    );

    // A new Staging (agent restart) resumes from byte 20 000.
    let staging = Staging::open(dir.path()).unwrap();
    let path = staging.stage(&source, "fw", &target).unwrap();
    assert_eq!(*source.offsets.borrow(), vec![0, 20_000]);
    assert_eq!(fs::read(&path).unwrap(), data);
    assert_eq!(staging.staged(&digest), Some(path.clone()));

    // Staged images are not fetched again.
    staging.stage(&source, "fw", &target).unwrap();
    assert_eq!(source.offsets.borrow().len(), 2);
}

#[test]
fn tampered_content_is_discarded_not_staged() {
    let dir = tempfile::tempdir().unwrap();
    let staging = Staging::open(dir.path()).unwrap();
    let data = image();
    let target = TargetFile::from_data(&data, None);
    let digest = Sha256Digest::of(&data);
    let mut evil = data.clone();
    evil[777] ^= 1;
    let err = staging
        .stage(&FlakySource::new(&evil, None), "fw", &target)
        .unwrap_err();
    assert!(matches!(err, StageError::HashMismatch { .. }), "{err}");
    assert_eq!(
        staging.partial_len(&digest),
        0,
        "a poisoned prefix is not kept"
    );
    assert!(staging.staged(&digest).is_none());
    // The next attempt from an honest source works from scratch.
    staging
        .stage(&FlakySource::new(&data, None), "fw", &target)
        .unwrap();
}

#[test]
fn more_than_the_signed_length_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let staging = Staging::open(dir.path()).unwrap();
    let data = image();
    let target = TargetFile::from_data(&data, None);
    let mut longer = data.clone();
    longer.extend_from_slice(b"trailing");
    let err = staging
        .stage(&FlakySource::new(&longer, None), "fw", &target)
        .unwrap_err();
    assert!(err.to_string().contains("endless data"), "{err}");
    assert_eq!(staging.partial_len(&Sha256Digest::of(&data)), 0);

    let short = &data[..100];
    let err = staging
        .stage(&FlakySource::new(short, None), "fw", &target)
        .unwrap_err();
    assert!(
        matches!(err, StageError::Short { received: 100, .. }),
        "{err}"
    );
}

#[test]
fn retain_removes_superseded_images() {
    let dir = tempfile::tempdir().unwrap();
    let staging = Staging::open(dir.path()).unwrap();
    let a = image();
    let b = b"newer image".to_vec();
    for data in [&a, &b] {
        staging
            .stage(
                &FlakySource::new(data, None),
                "fw",
                &TargetFile::from_data(data, None),
            )
            .unwrap();
    }
    fs::write(dir.path().join("README"), b"not ours").unwrap();
    let keep: HashSet<_> = [Sha256Digest::of(&b)].into_iter().collect();
    assert_eq!(staging.retain(&keep).unwrap(), 1);
    assert!(staging.staged(&Sha256Digest::of(&a)).is_none());
    assert!(staging.staged(&Sha256Digest::of(&b)).is_some());
    assert!(dir.path().join("README").exists());
}

#[test]
fn checkpoints_record_durable_offsets_and_a_resume_starts_at_the_recorded_one() {
    let dir = tempfile::tempdir().unwrap();
    let staging = Staging::open(dir.path()).unwrap();
    let data = image();
    let target = TargetFile::from_data(&data, None);
    let digest = Sha256Digest::of(&data);
    // (bytes delivered before the connection drops, checkpoints reported)
    let source = FlakySource::new(&data, Some(40_000));
    let mut seen = Vec::new();
    let mut record = |n| {
        seen.push(n);
        Ok(())
    };
    let mut resume = Resume {
        recorded: None,
        checkpoint: &mut record,
    };
    let err = staging
        .stage_resumable(&source, "fw", &target, &mut resume)
        .unwrap_err();
    assert!(
        matches!(
            err,
            StageError::Interrupted {
                received: 40_000,
                ..
            }
        ),
        "{err}"
    );
    // Every 16 KiB, then what was held when the source failed.
    assert_eq!(seen, [16_384, 32_768, 40_000]);

    // After a crash the state knew only 32 768 bytes as durable (the last
    // checkpoint it committed): the bytes past it are cut, and the download
    // goes on from there with a Range.
    let mut seen = Vec::new();
    let mut record = |n| {
        seen.push(n);
        Ok(())
    };
    let mut resume = Resume {
        recorded: Some(32_768),
        checkpoint: &mut record,
    };
    let path = staging
        .stage_resumable(&source, "fw", &target, &mut resume)
        .unwrap();
    assert_eq!(*source.offsets.borrow(), [0, 32_768]);
    assert_eq!(seen, [49_152, 50_000]);
    assert_eq!(fs::read(&path).unwrap(), data);
    assert_eq!(staging.staged(&digest), Some(path));
}

#[test]
fn a_recorded_offset_past_the_partial_file_is_not_trusted() {
    // (partial bytes on disk, recorded offset, expected resume offset)
    let cases: [(u64, Option<u64>, u64); 4] = [
        (20_000, Some(16_384), 16_384),
        (20_000, Some(30_000), 20_000),
        (20_000, None, 20_000),
        (0, Some(16_384), 0),
    ];
    for (on_disk, recorded, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::open(dir.path()).unwrap();
        let data = image();
        let target = TargetFile::from_data(&data, None);
        if on_disk > 0 {
            staging
                .stage(&FlakySource::new(&data, Some(on_disk)), "fw", &target)
                .unwrap_err();
        }
        let source = FlakySource::new(&data, None);
        let mut record = |_| Ok(());
        let mut resume = Resume {
            recorded,
            checkpoint: &mut record,
        };
        staging
            .stage_resumable(&source, "fw", &target, &mut resume)
            .unwrap();
        assert_eq!(*source.offsets.borrow(), [want], "{on_disk} {recorded:?}");
    }
}

#[test]
fn a_checkpoint_that_cannot_be_recorded_stops_the_download() {
    let dir = tempfile::tempdir().unwrap();
    let staging = Staging::open(dir.path()).unwrap();
    let data = image();
    let target = TargetFile::from_data(&data, None);
    let mut record = |_| Err("state database is read-only".to_owned());
    let mut resume = Resume {
        recorded: None,
        checkpoint: &mut record,
    };
    let err = staging
        .stage_resumable(&FlakySource::new(&data, None), "fw", &target, &mut resume)
        .unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    assert!(staging.staged(&Sha256Digest::of(&data)).is_none());
}
