//! Catalog ingest throughput against `sha256sum` on the same file, same run.
//!
//! `cargo bench -p catalog --bench ingest [-- SIZE_MIB [ROUNDS]]`
//!
//! Ingest = streaming the file into the blob store: hashing, writing a temp
//! file, fsync, rename. The reference is `sha256sum FILE`, which only reads
//! and hashes. Both read the file from the page cache (it is read once
//! first). The result is the ratio of throughputs, ours / sha256sum; the goal
//! is >= 0.95.

use std::process::Command;
use std::time::{Duration, Instant};

use catalog::blob::BlobStore;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let size_mib: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(256);
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("firmware.bin");
    // Incompressible, deterministic content (xorshift), written once.
    let mut data = vec![0u8; (size_mib << 20) as usize];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(&file, &data).expect("write test file");
    drop(data);
    let _ = std::fs::read(&file).expect("warm the page cache");

    let mut reference = Vec::new();
    let mut ours = Vec::new();
    let mut digest_ref = String::new();
    let mut digest_ours = String::new();
    for round in 0..rounds {
        let start = Instant::now();
        let out = Command::new("sha256sum")
            .arg(&file)
            .output()
            .expect("sha256sum must be installed (coreutils)");
        reference.push(start.elapsed());
        assert!(out.status.success());
        digest_ref = String::from_utf8_lossy(&out.stdout)[..64].to_owned();

        let store_dir = dir.path().join(format!("store-{round}"));
        let store = BlobStore::open(&store_dir).expect("blob store");
        let start = Instant::now();
        let info = store.put_file(&file).expect("ingest");
        ours.push(start.elapsed());
        digest_ours = info.digest.to_hex();
        std::fs::remove_dir_all(&store_dir).expect("clean up");
    }
    assert_eq!(digest_ours, digest_ref, "both must compute the same digest");

    let (r, o) = (median(reference), median(ours));
    let mib = size_mib as f64;
    let ratio = r.as_secs_f64() / o.as_secs_f64();
    println!("file: {size_mib} MiB, {rounds} rounds, medians");
    println!(
        "sha256sum:      {:>8.1} ms  {:>7.1} MiB/s",
        r.as_secs_f64() * 1e3,
        mib / r.as_secs_f64()
    );
    println!(
        "catalog ingest: {:>8.1} ms  {:>7.1} MiB/s",
        o.as_secs_f64() * 1e3,
        mib / o.as_secs_f64()
    );
    println!("ratio (ingest throughput / sha256sum throughput): {ratio:.2} (goal >= 0.95)");
}
