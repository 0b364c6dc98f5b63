use std::collections::HashSet;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::*;

fn store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("blobs")).unwrap();
    (dir, store)
}

fn tmp_entries(store: &BlobStore) -> usize {
    fs::read_dir(store.root().join("tmp")).unwrap().count()
}

#[test]
fn put_names_blob_by_hash_with_fanout() {
    let (_d, store) = store();
    let info = store.put_bytes(b"abc").unwrap();
    let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(info.digest.to_hex(), hex);
    assert_eq!(info.len, 3);
    assert!(info.newly_stored);
    let path = store.path_of(&info.digest);
    assert!(path.ends_with(format!("sha256/ba/{hex}")));
    assert_eq!(fs::read(&path).unwrap(), b"abc");
    assert_eq!(store.len_of(&info.digest).unwrap(), 3);
    assert_eq!(tmp_entries(&store), 0);
}

#[test]
fn second_put_of_same_content_is_a_noop() {
    let (_d, store) = store();
    let first = store.put_bytes(b"firmware").unwrap();
    let mtime = fs::metadata(store.path_of(&first.digest))
        .unwrap()
        .modified()
        .unwrap();
    let second = store.put_bytes(b"firmware").unwrap();
    assert_eq!(first.digest, second.digest);
    assert!(!second.newly_stored);
    assert_eq!(
        fs::metadata(store.path_of(&first.digest))
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );
    assert_eq!(store.list().unwrap(), vec![first.digest]);
    assert_eq!(tmp_entries(&store), 0);
}

#[test]
fn concurrent_puts_of_same_content_are_safe() {
    let (_d, store) = store();
    let store = Arc::new(store);
    let content: Arc<Vec<u8>> = Arc::new((0..3_000_000u32).map(|i| (i % 251) as u8).collect());
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            let content = Arc::clone(&content);
            std::thread::spawn(move || store.put_bytes(&content).unwrap())
        })
        .collect();
    let infos: Vec<BlobInfo> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let digest = Sha256Digest::of(&content);
    assert!(infos
        .iter()
        .all(|i| i.digest == digest && i.len == 3_000_000));
    assert_eq!(store.list().unwrap(), vec![digest]);
    assert_eq!(store.verify(&digest).unwrap(), 3_000_000);
    assert_eq!(tmp_entries(&store), 0);
}

/// A reader that yields some bytes and then fails, like a source that dies mid-copy.
struct FailingReader {
    remaining: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Err(io::Error::other("source went away"));
        }
        let n = buf.len().min(self.remaining);
        buf[..n].fill(7);
        self.remaining -= n;
        Ok(n)
    }
}

#[test]
fn interrupted_put_leaves_nothing() {
    let (_d, store) = store();
    let err = store
        .put_reader(FailingReader { remaining: 3 << 20 })
        .unwrap_err();
    assert!(err.to_string().contains("source went away"), "{err}");
    assert!(store.list().unwrap().is_empty());
    assert_eq!(tmp_entries(&store), 0);
}

#[test]
fn put_expected_refuses_wrong_content_and_stores_nothing() {
    let (_d, store) = store();
    let good = Sha256Digest::of(b"good image");
    let cases: &[(&[u8], u64, &str)] = &[
        (b"evil image", 10, "content mismatch"),
        (b"good image", 9, "exceeds the allowed length of 9"),
        (b"good imag", 10, "content mismatch"),
    ];
    for (content, len, msg) in cases {
        let err = store.put_expected(*content, good, *len).unwrap_err();
        assert!(err.to_string().contains(msg), "{err}");
    }
    assert!(store.list().unwrap().is_empty());
    let ok = store.put_expected(&b"good image"[..], good, 10).unwrap();
    assert_eq!(ok.digest, good);
}

#[test]
fn verify_and_verified_reads_detect_corruption() {
    let (_d, store) = store();
    let info = store.put_bytes(b"original content").unwrap();
    assert_eq!(store.verify(&info.digest).unwrap(), 16);
    let mut out = Vec::new();
    store
        .open_verified(&info.digest)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, b"original content");

    fs::write(store.path_of(&info.digest), b"original c0ntent").unwrap();
    let err = store.verify(&info.digest).unwrap_err();
    assert!(matches!(err, BlobError::Corrupt { len: 16, .. }), "{err}");
    let err = store
        .open_verified(&info.digest)
        .unwrap()
        .read_to_end(&mut Vec::new())
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);

    let absent = Sha256Digest::of(b"absent");
    assert!(matches!(store.verify(&absent), Err(BlobError::Missing(d)) if d == absent));
    assert!(matches!(
        store.open_verified(&absent),
        Err(BlobError::Missing(_))
    ));
}

#[test]
fn gc_removes_unreferenced_blobs_and_stale_temp_files() {
    let (_d, store) = store();
    let keep = store.put_bytes(b"keep").unwrap().digest;
    let drop1 = store.put_bytes(b"drop one").unwrap().digest;
    let drop2 = store.put_bytes(b"drop two!").unwrap().digest;
    fs::write(store.root().join("tmp/put-crashed"), b"partial").unwrap();

    let referenced: HashSet<_> = [keep].into_iter().collect();
    // Soon after the crash the temp file may still belong to a live put.
    let report = store.gc(&referenced, SystemTime::now()).unwrap();
    let mut removed = report.removed.clone();
    removed.sort();
    let mut expected = vec![drop1, drop2];
    expected.sort();
    assert_eq!(removed, expected);
    assert_eq!(report.bytes_freed, 8 + 9);
    assert_eq!(report.stale_temp_files, 0);
    assert_eq!(store.list().unwrap(), vec![keep]);

    let later = SystemTime::now() + Duration::from_secs(2 * 3600);
    let report = store.gc(&referenced, later).unwrap();
    assert_eq!(report.stale_temp_files, 1);
    assert!(report.removed.is_empty());
    assert_eq!(tmp_entries(&store), 0);
}

#[test]
fn list_ignores_foreign_files() {
    let (_d, store) = store();
    let d = store.put_bytes(b"x").unwrap().digest;
    fs::write(
        store
            .root()
            .join("sha256")
            .join(&d.to_hex()[..2])
            .join("README"),
        b"",
    )
    .unwrap();
    assert_eq!(store.list().unwrap(), vec![d]);
}

#[test]
fn staged_content_is_stored_only_when_committed() {
    let (_d, store) = store();
    // Dropped: nothing under a blob name, no temp file left.
    let staged = store.stage(&b"refused image"[..]).unwrap();
    assert_eq!(staged.digest(), Sha256Digest::of(b"refused image"));
    assert_eq!(staged.len(), 13);
    assert_eq!(tmp_entries(&store), 1);
    assert!(!store.contains(&staged.digest()));
    drop(staged);
    assert!(store.list().unwrap().is_empty());
    assert_eq!(tmp_entries(&store), 0);

    // Committed: stored under its name; a second commit of the same content
    // is a no-op.
    let first = store
        .stage(&b"accepted image"[..])
        .unwrap()
        .commit()
        .unwrap();
    assert!(first.newly_stored);
    assert_eq!(store.verify(&first.digest).unwrap(), 14);
    let second = store
        .stage(&b"accepted image"[..])
        .unwrap()
        .commit()
        .unwrap();
    assert_eq!(
        (second.digest, second.len, second.newly_stored),
        (first.digest, 14, false)
    );
    assert_eq!(store.list().unwrap(), vec![first.digest]);
    assert_eq!(tmp_entries(&store), 0);

    // A failing source stages nothing.
    let err = store
        .stage(FailingReader { remaining: 2 << 20 })
        .unwrap_err();
    assert!(err.to_string().contains("source went away"), "{err}");
    assert_eq!(tmp_entries(&store), 0);
}

#[test]
fn temp_files_live_in_the_tmp_area_until_dropped() {
    let (_d, store) = store();
    let mut t = store.temp_file("upload-").unwrap();
    t.write_all(b"partial upload").unwrap();
    assert_eq!(t.path().parent().unwrap(), store.root().join("tmp"));
    assert!(t
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("upload-"));
    let staged = store.stage_file(t.path()).unwrap();
    assert_eq!(staged.digest(), Sha256Digest::of(b"partial upload"));
    drop((t, staged));
    assert_eq!(tmp_entries(&store), 0);
    assert!(store.list().unwrap().is_empty());
}
