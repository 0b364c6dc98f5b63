//! Uploads larger than anything the server should hold in memory: a
//! 160 MiB DfuSe file and an LVFS cabinet whose payload is a 160 MiB `.dfu`
//! file (packed by the real `gcab`) go through `POST …/catalog/releases`,
//! are published, and the server's peak resident memory (`VmHWM`) grows by
//! far less than either file: the body is streamed to disk, the DFU checks
//! read the file in pieces, and the cabinet's payload is extracted to disk.

mod support;

use std::time::Duration;

use dfu::file::{DfuFile, DfuSeTarget};
use reqwest::blocking::Client;
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::{create_admin, create_tenant, gcab_cabinet, login, start};

const BIG: usize = 160 << 20;
/// What the server may grow by while taking a BIG file: its buffers and
/// allocator slack, not the file.
const GROWTH_LIMIT_KIB: u64 = 48 << 10;

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn large_dfuse_and_cabinet_uploads_do_not_grow_server_memory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (tenant, _) = create_tenant(&data, "Acme");
    create_admin(&data, &tenant, "ann@acme.example", "full");
    let server = start(
        &data,
        &["--catalog-managers", &tenant, "--max-upload-mib", "400"],
        &[],
    );
    let http = Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let token = login(&http, &server.base, &tenant, "ann@acme.example");
    let upload = |query: &str, body: Vec<u8>| -> (u16, Value) {
        let r = http
            .post(format!(
                "{}/api/v1/tenants/{tenant}/catalog/releases{query}",
                server.base
            ))
            .bearer_auth(&token)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .unwrap();
        (r.status().as_u16(), r.json().unwrap())
    };
    let dfuse = |data: Vec<u8>| {
        let target = DfuSeTarget::new(0, Some("Internal Flash"), [(0x0800_0000, data)]);
        DfuFile::new_dfuse(0x0483, 0xdf11, 0xffff, vec![target])
            .unwrap()
            .to_bytes()
    };

    // The same kinds of upload, small, first: the baseline holds every
    // code path's own buffers.
    let small = dfuse(vec![0x11; 4096]);
    let (status, body) = upload(
        "?vendor=Acme&model=Base&version=1.0&file-name=base.dfu",
        small,
    );
    assert_eq!(status, 201, "{body}");
    let small_payload = DfuFile::new_raw(0x047f, 0x0ca1, 0xffff, vec![0x22; 4096]).to_bytes();
    let small_cab = gcab_cabinet(dir.path(), &small_payload, &hex_sha256(&small_payload));
    let (status, body) = upload("?version=1.3.0", small_cab);
    assert_eq!(status, 201, "{body}");
    let before = server.peak_rss_kib();

    let big = dfuse(vec![0xa5; BIG]);
    let (status, body) = upload(
        "?vendor=Acme&model=Base&version=2.0&file-name=base.dfu",
        big.clone(),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["sha256"], hex_sha256(&big));
    assert_eq!(body["size"], big.len());
    assert_eq!(body["source_format"], "dfuse");
    assert_eq!(body["hardware_ids"], serde_json::json!(["0483:DF11"]));
    drop(big);

    // gcab compresses the payload (the cabinet is small); the server
    // extracts it to disk and checks the metainfo's checksum as it goes.
    let payload = DfuFile::new_raw(0x047f, 0x0ca1, 0xffff, vec![0x3c; BIG]).to_bytes();
    let sha256 = hex_sha256(&payload);
    let cab = gcab_cabinet(dir.path(), &payload, &sha256);
    let (status, body) = upload("?version=1.4.0", cab);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["sha256"], sha256);
    assert_eq!(body["size"], payload.len());
    assert_eq!(body["source_format"], "cab");

    let after = server.peak_rss_kib();
    assert!(
        after.saturating_sub(before) < GROWTH_LIMIT_KIB,
        "the server's peak memory grew from {before} KiB to {after} KiB taking {} MiB files",
        BIG >> 20
    );
    // Nothing left behind in the in-flight area.
    let tmp: Vec<_> = std::fs::read_dir(data.join("catalog/blobs/tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}
