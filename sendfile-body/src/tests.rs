use std::io::{IoSlice, Write};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// A file of `len` bytes that differ from their neighbours.
fn file_of(len: usize) -> (tempfile::NamedTempFile, Vec<u8>) {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&data).unwrap();
    f.flush().unwrap();
    (f, data)
}

fn open(f: &tempfile::NamedTempFile) -> File {
    File::open(f.path()).unwrap()
}

#[test]
fn slices_of_a_mapping_lead_to_their_file_offsets() {
    let (f, data) = file_of(3 * 4096 + 17);
    // (mapped offset, mapped length, slice start, slice end)
    let cases = [
        (0, 4096, 0, 4096),
        (0, 4096, 100, 200),
        (4095, 2, 0, 2),
        (5000, 7000, 0, 7000),
        (5000, 7000, 6999, 7000),
        (12000, 305, 1, 305),
    ];
    for (offset, len, from, to) in cases {
        let body = map(open(&f), offset, len).map_err(|(e, _)| e).unwrap();
        assert_eq!(body.len(), len);
        assert_eq!(&body[..], &data[offset as usize..offset as usize + len]);
        let slice = &body[from..to];
        let (_, at, held) = lookup(slice).expect("a mapped slice");
        assert_eq!(
            (at, held),
            (offset + from as u64, to - from),
            "{offset} {len} {from}..{to}"
        );
    }
    let plain = data.clone();
    assert!(lookup(&plain[..10]).is_none(), "heap bytes are not mapped");
    assert!(lookup(&[]).is_none());
    let body = map(open(&f), 0, 10).map_err(|(e, _)| e).unwrap();
    assert!(
        lookup(&body[10..]).is_none(),
        "an empty slice sends nothing"
    );
}

#[test]
fn a_dropped_mapping_is_forgotten_and_its_file_closed() {
    let (f, _) = file_of(10_000);
    let body = map(open(&f), 0, 10_000).map_err(|(e, _)| e).unwrap();
    let also = body.slice(100..200);
    let file = Arc::downgrade(&lookup(&also).unwrap().0);
    drop(body);
    assert!(file.upgrade().is_some(), "a slice keeps the mapping");
    drop(also);
    assert!(file.upgrade().is_none(), "unregistered and closed");
}

#[test]
fn mapping_beyond_the_end_or_an_unmappable_file_gives_the_file_back() {
    let (f, _) = file_of(100);
    let dir = tempfile::tempdir().unwrap();
    // A directory cannot be mapped.
    let (e, _file) = map(File::open(dir.path()).unwrap(), 0, 10).unwrap_err();
    assert!(e.raw_os_error().is_some(), "{e}");
    // An empty range maps nothing.
    assert!(map(open(&f), 50, 0).map_err(|(e, _)| e).unwrap().is_empty());
}

/// Writes every slice as hyper does: vectored writes, advancing past what
/// each call wrote.
async fn write_all(stream: &mut SendfileStream, parts: &[&[u8]]) -> io::Result<()> {
    let mut parts: Vec<&[u8]> = parts.to_vec();
    while !parts.is_empty() {
        let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
        let mut n = stream.write_vectored(&slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let take = n.min(parts[0].len());
            parts[0] = &parts[0][take..];
            n -= take;
            if parts[0].is_empty() {
                parts.remove(0);
            }
        }
    }
    stream.flush().await
}

/// A connected pair: (server side wrapped, client side).
async fn pair() -> (SendfileStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap());
    let (accepted, client) = tokio::join!(listener.accept(), client);
    (SendfileStream::new(accepted.unwrap().0), client.unwrap())
}

#[tokio::test]
async fn mapped_bytes_go_by_sendfile_among_ordinary_ones() {
    let (f, data) = file_of(8 << 20);
    let (mut server, mut client) = pair().await;
    let (a, b) = (12_345u64, 5_000_000usize);
    let first = map(open(&f), a, b).map_err(|(e, _)| e).unwrap();
    let second = map(open(&f), 1, 70_000).map_err(|(e, _)| e).unwrap();
    let head = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    let between = b"--between--".to_vec();
    let before = bytes_sent();
    // The client reads while the server writes: 8 MiB does not fit in the
    // socket buffers, so the server meets a full socket and waits.
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        got
    });
    write_all(
        &mut server,
        &[
            &head,
            &first,
            &between,
            &second[..40_000],
            &second[40_000..],
        ],
    )
    .await
    .unwrap();
    server.shutdown().await.unwrap();
    drop(server);
    let got = reader.await.unwrap();
    let mut want = head.clone();
    want.extend_from_slice(&data[a as usize..a as usize + b]);
    want.extend_from_slice(&between);
    want.extend_from_slice(&data[1..70_001]);
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the bytes received differ from the file's");
    assert!(
        bytes_sent() - before >= (b + 70_000) as u64,
        "the mapped bytes went by sendfile"
    );
}

#[tokio::test]
async fn a_file_truncated_under_its_mapping_fails_the_connection_without_reading_it() {
    let (f, _) = file_of(1 << 20);
    let (mut server, mut client) = pair().await;
    let body = map(open(&f), 0, 1 << 20).map_err(|(e, _)| e).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(f.path())
        .unwrap()
        .set_len(100_000)
        .unwrap();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        let _ = client.read_to_end(&mut got).await;
        got.len()
    });
    let e = write_all(&mut server, &[&body]).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    drop(server);
    assert_eq!(reader.await.unwrap(), 100_000, "what the file still held");
}
