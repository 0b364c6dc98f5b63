//! Firmware uploads and removals through the tenant API, against the real
//! binary: raw, .dfu, DfuSe and LVFS .cab (packed by the real `gcab`)
//! uploads published in the signed metadata; every refusal leaving the
//! catalog directory exactly as it was; who may change the shared catalog;
//! removals refused while a policy pins the release.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use dfu::file::{DfuFile, DfuSeTarget};
use reqwest::blocking::{Body, Client, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{create_admin, create_tenant, gcab_cabinet, login, start, updater, Server};

/// The catalog as files: every path under `<data>/catalog` with its bytes
/// (the release index, blobs, blobs/tmp, every metadata version).
fn catalog_files(data: &Path) -> BTreeMap<String, Vec<u8>> {
    let root = data.join("catalog");
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(&root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// The newest signed targets: version and targets, walked from
/// `timestamp.json` as a TUF client does.
fn signed_targets(http: &Client, base: &str) -> (u64, serde_json::Map<String, Value>) {
    let get = |file: String| -> Value {
        http.get(format!("{base}/repo/metadata/{file}"))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let ts = get("timestamp.json".into());
    let sv = ts["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    let snap = get(format!("{sv}.snapshot.json"));
    let tv = snap["signed"]["meta"]["targets.json"]["version"]
        .as_u64()
        .unwrap();
    let t = get(format!("{tv}.targets.json"));
    assert_eq!(t["signed"]["version"], tv);
    // The firmware targets (the tenants' key endorsements left out).
    let firmware = t["signed"]["targets"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| !name.starts_with(catalog::assignment::ENDORSEMENT_DIR))
        .map(|(name, t)| (name.clone(), t.clone()))
        .collect();
    (tv, firmware)
}

struct Setup {
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    server: Server,
    http: Client,
    /// Tenant A: a catalog manager.
    a: String,
    /// Tenant B: not one.
    b: String,
    ann: String,
    rob: String,
    bea: String,
}

/// Tenants A (catalog manager) and B, admins ann (A, full), rob (A,
/// read-only) and bea (B, full), a server with a 1 MiB upload limit.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (a, _) = create_tenant(&data, "Acme");
    let (b, _) = create_tenant(&data, "Bravo");
    create_admin(&data, &a, "ann@acme.example", "full");
    create_admin(&data, &a, "rob@acme.example", "read-only");
    create_admin(&data, &b, "bea@bravo.example", "full");
    let server = start(
        &data,
        &["--catalog-managers", &a, "--max-upload-mib", "1"],
        &[],
    );
    // Requests refused before their body is read end their connection:
    // no pooling, so each request gets its own.
    let http = Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let ann = login(&http, &server.base, &a, "ann@acme.example");
    let rob = login(&http, &server.base, &a, "rob@acme.example");
    let bea = login(&http, &server.base, &b, "bea@bravo.example");
    Setup {
        _dir: dir,
        data,
        server,
        http,
        a,
        b,
        ann,
        rob,
        bea,
    }
}

impl Setup {
    fn releases_url(&self, tenant: &str) -> String {
        format!(
            "{}/api/v1/tenants/{tenant}/catalog/releases",
            self.server.base
        )
    }

    /// Uploads `body` to tenant A as `who`, with a declared length.
    fn upload(&self, who: &str, query: &str, body: Vec<u8>) -> (u16, Value) {
        self.upload_to(
            &self.a,
            who,
            query,
            "application/octet-stream",
            Body::from(body),
        )
    }

    fn upload_to(
        &self,
        tenant: &str,
        who: &str,
        query: &str,
        content_type: &str,
        body: Body,
    ) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{query}", self.releases_url(tenant)))
            .bearer_auth(who)
            .header("content-type", content_type)
            .body(body)
            .send()
            .unwrap();
        answer(r)
    }

    fn get(&self, path: &str, who: &str) -> (u16, Value) {
        answer(
            self.http
                .get(format!("{}{path}", self.server.base))
                .bearer_auth(who)
                .send()
                .unwrap(),
        )
    }

    fn delete(&self, id: &str, who: &str) -> (u16, Value) {
        answer(
            self.http
                .delete(format!("{}/{id}", self.releases_url(&self.a)))
                .bearer_auth(who)
                .send()
                .unwrap(),
        )
    }
}

fn answer(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let bytes = r.bytes().unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {bytes:?}"))
    };
    (status, body)
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

const RAW: &str = "?vendor=Acme%20Audio&model=Voyager%208200&hardware-id=047F:C056";
const OCTETS: &str = "application/octet-stream";
const REFUSED: &str = "import_refused";
const BAD: &str = "invalid_request";
const TOO_LARGE: &str = "payload_too_large";

/// An upload that must be refused, and how.
struct Refusal<'a> {
    who: &'a str,
    tenant: &'a str,
    query: String,
    content_type: &'a str,
    body: Body,
    status: u16,
    code: &'a str,
    /// Part of the error's message.
    part: &'a str,
}

#[test]
fn uploads_of_every_format_are_published() {
    let s = setup();
    let (v0, targets) = signed_targets(&s.http, &s.server.base);
    assert!(targets.is_empty());

    // A raw image ten times the server's default body limit (64 KiB), sent
    // without a length (chunked): the handler writes it to a temp file
    // chunk by chunk instead of buffering it.
    let image: Vec<u8> = (0..655_360u32).map(|i| (i * 31 % 251) as u8).collect();
    let query = format!(
        "{RAW}&version=2.14.0&file-name=voyager.bin&urgency=high&silent-capable&security-counter=3&notes=Fixes%20echo."
    );
    let (status, raw) = s.upload_to(
        &s.a,
        &s.ann,
        &query,
        "application/octet-stream",
        Body::new(std::io::Cursor::new(image.clone())),
    );
    assert_eq!(status, 201, "{raw}");
    let target = "acme-audio/voyager-8200/2.14.0/voyager.bin";
    assert_eq!(raw["target_name"], target);
    assert_eq!(raw["size"], image.len());
    assert_eq!(raw["sha256"], hex_sha256(&image));
    assert_eq!(raw["hardware_ids"], json!(["047F:C056"]));
    assert_eq!(
        raw["version"],
        json!({"version": "2.14.0", "format": "plain"})
    );
    assert_eq!(
        (
            &raw["urgency"],
            &raw["security_counter"],
            &raw["release_notes"]
        ),
        (&json!("high"), &json!(3), &json!("Fixes echo."))
    );
    assert_eq!(raw["capabilities"]["silent_capable"], true);
    assert_eq!(raw["capabilities"]["automatic_capable"], true);
    assert_eq!(raw["source_format"], "raw");
    let id = raw["id"].as_str().unwrap();

    // Listed, shown by id (the same view), signed into the next targets.
    let (_, list) = s.get(&format!("/api/v1/tenants/{}/catalog/releases", s.a), &s.rob);
    assert_eq!(list, json!([raw.clone()]));
    let (status, shown) = s.get(
        &format!("/api/v1/tenants/{}/catalog/releases/{id}", s.a),
        &s.rob,
    );
    assert_eq!((status, &shown), (200, &raw));
    let (v1, targets) = signed_targets(&s.http, &s.server.base);
    assert_eq!(v1, v0 + 1);
    assert_eq!(targets[target]["length"], image.len());
    assert_eq!(targets[target]["hashes"]["sha256"], hex_sha256(&image));
    assert_eq!(targets[target]["custom"]["firmware"]["urgency"], "high");
    // And downloadable as its consistent-snapshot target.
    let blob = s
        .http
        .get(format!(
            "{}/repo/targets/acme-audio/voyager-8200/2.14.0/{}.voyager.bin",
            s.server.base,
            hex_sha256(&image)
        ))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert!(blob[..] == image[..], "the served blob is the upload");

    // The same upload again: nothing changes, 200 with the same release.
    let (status, again) = s.upload(&s.ann, &query, image.clone());
    assert_eq!((status, &again), (200, &raw));
    assert_eq!(signed_targets(&s.http, &s.server.base).0, v1);

    // A .dfu file: hardware id from its suffix, no file-name default.
    let dfu_bytes = DfuFile::new_raw(0x047f, 0x0ca2, 0xffff, vec![0x5a; 3000]).to_bytes();
    let (status, dfu) = s.upload(
        &s.ann,
        "?vendor=Acme&model=Dongle&version=1.1&file-name=dongle.dfu&needs-replug=true",
        dfu_bytes.clone(),
    );
    assert_eq!(status, 201, "{dfu}");
    assert_eq!(dfu["target_name"], "acme/dongle/1.1/dongle.dfu");
    assert_eq!(dfu["hardware_ids"], json!(["047F:0CA2"]));
    assert_eq!(
        (&dfu["source_format"], &dfu["protocol"]),
        (&json!("dfu"), &json!("dfu"))
    );
    assert_eq!(dfu["capabilities"]["needs_replug"], true);

    // A DfuSe file.
    let dfuse = DfuFile::new_dfuse(
        0x0483,
        0xdf11,
        0xffff,
        vec![DfuSeTarget::new(
            0,
            Some("Internal Flash"),
            [(0x0800_0000, vec![0xaa; 4096])],
        )],
    )
    .unwrap()
    .to_bytes();
    let (status, se) = s.upload(
        &s.ann,
        "?vendor=Acme&model=Base&version=0.9&file-name=base.dfu",
        dfuse,
    );
    assert_eq!(status, 201, "{se}");
    assert_eq!(
        (&se["source_format"], &se["protocol"]),
        (&json!("dfuse"), &json!("dfuse"))
    );
    assert_eq!(se["hardware_ids"], json!(["0483:DF11"]));

    // An LVFS cabinet: everything from its metainfo, the payload's name
    // as the file name; the payload (not the cabinet) is stored.
    let payload = DfuFile::new_raw(0x047f, 0x0ca1, 0xffff, vec![0x33; 2048]).to_bytes();
    let cab = gcab_cabinet(s._dir.path(), &payload, &hex_sha256(&payload));
    let (status, c) = s.upload(&s.ann, "", cab);
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["target_name"], "acme-audio/base-30/1.4.0/firmware.bin");
    assert_eq!(
        (&c["source_format"], &c["urgency"]),
        (&json!("cab"), &json!("high"))
    );
    assert_eq!(c["sha256"], hex_sha256(&payload));
    assert_eq!(c["hardware_ids"], json!(["047F:0CA1"]));

    let (v, targets) = signed_targets(&s.http, &s.server.base);
    assert_eq!(v, v1 + 3);
    assert_eq!(targets.len(), 4);
    for r in [&raw, &dfu, &se, &c] {
        let t = &targets[r["target_name"].as_str().unwrap()];
        assert_eq!(
            (&t["length"], &t["hashes"]["sha256"]),
            (&r["size"], &r["sha256"])
        );
    }
    // The CLI sees what the API stored.
    let out = updater(&s.data)
        .args(["catalog", "list", "--json"])
        .output()
        .unwrap();
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli.as_array().unwrap().len(), 4);
}

#[test]
fn refused_uploads_store_nothing() {
    let s = setup();
    let good = b"the stored image".to_vec();
    let (status, first) = s.upload(
        &s.ann,
        &format!("{RAW}&version=1.0&file-name=fw.bin"),
        good.clone(),
    );
    assert_eq!(status, 201, "{first}");
    let before = catalog_files(&s.data);
    let (version_before, _) = signed_targets(&s.http, &s.server.base);

    let mut bad_crc = DfuFile::new_raw(0x047f, 0xc056, 0xffff, vec![1; 64]).to_bytes();
    let n = bad_crc.len();
    bad_crc[n - 1] ^= 0xff;
    let payload = DfuFile::new_raw(0x047f, 0x0ca1, 0xffff, vec![0x33; 2048]).to_bytes();
    let bad_cab = gcab_cabinet(s._dir.path(), &payload, &hex_sha256(b"something else"));
    let over = vec![0u8; (1 << 20) + 1];
    let fw = |extra: &str| format!("{RAW}&version=2.0&file-name=fw.bin{extra}");
    let many_ids: String = (0..65)
        .map(|i| format!("&hardware-id=047F:{i:04X}"))
        .collect();
    let x = || Body::from(b"x".to_vec());
    // Refused uploads by tenant A's full admin: (query, body, status, code,
    // part of the message). One line each: a table.
    #[rustfmt::skip]
    let by_ann: Vec<(String, Body, u16, &str, &str)> = vec![
        // The importers' refusals: 422 with their message.
        ("?vendor=A&model=M&version=1&file-name=x.dfu".into(), Body::from(bad_crc), 422, REFUSED, "invalid DFU file"),
        ("?format=dfu&vendor=A&model=M&version=1&file-name=x.dfu".into(), Body::from(b"not DFU".to_vec()), 422, REFUSED, "invalid DFU file"),
        (String::new(), Body::from(bad_cab), 422, REFUSED, "fails its sha256 checksum"),
        (format!("{RAW}&file-name=fw.bin"), x(), 422, REFUSED, "version is required"),
        ("?vendor=A&model=M&version=1&file-name=fw.bin".into(), x(), 422, REFUSED, "hardware id is required"),
        (format!("{RAW}&version=2.0"), x(), 422, REFUSED, "file-name is required"),
        (fw("&version-format=hex").replace("version=2.0", "version=zz"), x(), 422, REFUSED, "not a valid hex version"),
        (fw("").replace("version=2.0", "version=1.0%20beta"), x(), 422, REFUSED, "not a valid plain version"),
        (fw("").replace("version=2.0", &format!("version={}", "9".repeat(65))), x(), 422, REFUSED, "version"),
        (fw(&many_ids), x(), 422, REFUSED, "more than 64"),
        (fw(&format!("&notes={}", "n".repeat(17_000))), x(), 422, REFUSED, "release notes"),
        (fw("").replace("file-name=fw.bin", "file-name="), x(), 422, REFUSED, "must not be empty"),
        (fw("").replace("file-name=fw.bin", "file-name=a%0Ab"), x(), 422, REFUSED, "control characters"),
        (fw("").replace("file-name=fw.bin", &format!("file-name={}", "f".repeat(129))), x(), 422, REFUSED, "longer than 128"),
        (fw("").replace("vendor=Acme%20Audio", "vendor=A%00B"), x(), 422, REFUSED, "control characters"),
        (fw("&product-family=%20"), x(), 422, REFUSED, "product family"),
        // The same target name with other bytes, or other metadata: 409.
        (format!("{RAW}&version=1.0&file-name=fw.bin"), Body::from(b"other bytes".to_vec()), 409, "conflict", "different content"),
        (format!("{RAW}&version=1.0&file-name=fw.bin&urgency=high"), Body::from(good.clone()), 409, "conflict", "different urgency"),
        (format!("{RAW}&version=1.1&file-name=fw.bin&urgency=critical"), Body::from(good.clone()), 422, "import_refused", "security counter is required"),
        // The query: 400, before the body is looked at.
        (fw("").replace("hardware-id=047F:C056", "hardware-id=047F"), x(), 400, BAD, "bad hardware id"),
        (fw("&hardware-id=047F:C056,,"), x(), 400, BAD, "bad hardware id"),
        (fw("&filename=fw.bin"), x(), 400, BAD, "unknown query parameter \"filename\""),
        (fw("&security-counter=4294967296"), x(), 400, BAD, "security-counter"),
        (fw("&install-duration=-5"), x(), 400, BAD, "install-duration"),
        (fw("&urgency=urgent"), x(), 400, BAD, "urgency"),
        (fw("&version=3.0"), x(), 400, BAD, "more than once"),
        (fw("&needs-replug=yes"), x(), 400, BAD, "not true or false"),
        (fw("&format=zip"), x(), 400, BAD, "is not raw, dfu, dfuse or cab"),
        // Over `--max-upload-mib 1`, declared or streamed: 413.
        (fw(""), Body::from(over.clone()), 413, TOO_LARGE, "limited to 1048576 bytes"),
        (fw(""), Body::new(std::io::Cursor::new(over.clone())), 413, TOO_LARGE, "limited to 1048576 bytes"),
    ];
    let mut cases: Vec<Refusal<'_>> = by_ann
        .into_iter()
        .map(|(query, body, status, code, part)| Refusal {
            who: &s.ann,
            tenant: &s.a,
            query,
            content_type: OCTETS,
            body,
            status,
            code,
            part,
        })
        .collect();
    let as_ann = |content_type, status, code, part| Refusal {
        who: &s.ann,
        tenant: &s.a,
        query: fw(""),
        content_type,
        body: x(),
        status,
        code,
        part,
    };
    // The content type: 415.
    cases.push(as_ann(
        "application/json",
        415,
        "unsupported_media_type",
        OCTETS,
    ));
    cases.push(as_ann(
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
        OCTETS,
    ));
    // Who: read-only credentials, a tenant that is not a catalog manager,
    // another tenant's path, nobody.
    for (who, tenant, status, code, part) in [
        (
            s.rob.as_str(),
            s.a.as_str(),
            403,
            "forbidden",
            "read-only credentials",
        ),
        (
            s.bea.as_str(),
            s.b.as_str(),
            403,
            "forbidden",
            "serve --catalog-managers",
        ),
        (
            s.bea.as_str(),
            s.a.as_str(),
            404,
            "not_found",
            "no such tenant",
        ),
        ("", s.a.as_str(), 401, "unauthorized", "Bearer"),
    ] {
        cases.push(Refusal {
            who,
            tenant,
            ..as_ann(OCTETS, status, code, part)
        });
    }
    let data_dir = s.data.display().to_string();
    for c in cases {
        let query = c.query.clone();
        let (got, v) = s.upload_to(c.tenant, c.who, &c.query, c.content_type, c.body);
        assert_eq!(
            (got, v["code"].as_str()),
            (c.status, Some(c.code)),
            "{query}: {v}"
        );
        assert!(
            v["message"].as_str().unwrap().contains(c.part),
            "{query}: {v} lacks {:?}",
            c.part
        );
        assert!(
            !v.to_string().contains("blobs/tmp") && !v.to_string().contains(&data_dir),
            "{query}: the server's temp path leaks: {v}"
        );
        assert_eq!(
            catalog_files(&s.data),
            before,
            "{query} changed the catalog"
        );
    }
    assert_eq!(signed_targets(&s.http, &s.server.base).0, version_before);

    // The 413 tells the client the connection ends.
    let r = s
        .http
        .post(format!("{}{}", s.releases_url(&s.a), fw("")))
        .bearer_auth(&s.ann)
        .header("content-type", OCTETS)
        .body(over)
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["connection"], "close");

    // A file name that tries to climb out becomes one harmless component
    // of the target name (the CLI's rule); the blob is stored by its hash.
    let (status, v) = s.upload(
        &s.ann,
        &fw("").replace("file-name=fw.bin", "file-name=..%2F..%2Fetc%2Fpasswd"),
        b"climber".to_vec(),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        v["target_name"],
        "acme-audio/voyager-8200/2.0/-..-etc-passwd"
    );
    let after: Vec<String> = catalog_files(&s.data).into_keys().collect();
    assert!(after.iter().all(|p| !p.contains("passwd")), "{after:?}");
    assert!(after.contains(&format!(
        "blobs/sha256/{0}/{1}",
        &hex_sha256(b"climber")[..2],
        hex_sha256(b"climber")
    )));
}

#[test]
fn releases_are_shown_and_removed_unless_a_policy_pins_them() {
    let s = setup();
    let (_, one) = s.upload(
        &s.ann,
        &format!("{RAW}&version=1.0&file-name=fw.bin"),
        b"one".to_vec(),
    );
    let (_, two) = s.upload(
        &s.ann,
        &format!("{RAW}&version=2.0&file-name=fw.bin"),
        b"two".to_vec(),
    );
    let (id1, id2) = (one["id"].as_str().unwrap(), two["id"].as_str().unwrap());
    let policy = |who: &str, tenant: &str, version: &str| -> String {
        let r = s
            .http
            .post(format!(
                "{}/api/v1/tenants/{tenant}/policies/firmware",
                s.server.base
            ))
            .bearer_auth(who)
            .json(&json!({"name": format!("Pin {version}"), "model": "047F:C056", "version": version, "enabled": true}))
            .send()
            .unwrap();
        let (status, v) = answer(r);
        assert_eq!(status, 201, "{v}");
        v["id"].as_str().unwrap().to_owned()
    };
    let pin1 = policy(&s.ann, &s.a, "1.0");
    // Tenant B pins 2.0 (B may use the catalog, not change it).
    policy(&s.bea, &s.b, "2.0");
    let before = catalog_files(&s.data);

    let (status, v) = s.delete(id1, &s.ann);
    assert_eq!((status, v["code"].as_str()), (409, Some("conflict")), "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("\"Pin 1.0\""),
        "{v}"
    );
    // Another tenant's policy blocks too, without being named.
    let (status, v) = s.delete(id2, &s.ann);
    assert_eq!(status, 409, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("a firmware policy of another tenant"),
        "{v}"
    );
    assert!(!v.to_string().contains("Pin 2.0"), "{v}");
    // Not allowed at all: read-only, a tenant that is no catalog manager.
    let (status, v) = s.delete(id1, &s.rob);
    assert_eq!((status, v["code"].as_str()), (403, Some("forbidden")));
    let r = s
        .http
        .delete(format!("{}/{id1}", s.releases_url(&s.b)))
        .bearer_auth(&s.bea)
        .send()
        .unwrap();
    let (status, v) = answer(r);
    assert_eq!(status, 403);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("--catalog-managers"),
        "{v}"
    );
    assert_eq!(catalog_files(&s.data), before);

    // Disabled, the policy no longer holds the release.
    let r = s
        .http
        .put(format!(
            "{}/api/v1/tenants/{}/policies/firmware/{pin1}",
            s.server.base, s.a
        ))
        .bearer_auth(&s.ann)
        .json(&json!({"name": "Pin 1.0", "model": "047F:C056", "version": "1.0", "enabled": false}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let (v_before, _) = signed_targets(&s.http, &s.server.base);
    let (status, v) = s.delete(id1, &s.ann);
    assert_eq!((status, v), (204, Value::Null));
    let (v_after, targets) = signed_targets(&s.http, &s.server.base);
    assert_eq!(v_after, v_before + 1);
    assert!(!targets.contains_key("acme-audio/voyager-8200/1.0/fw.bin"));
    assert!(targets.contains_key("acme-audio/voyager-8200/2.0/fw.bin"));
    let releases = format!("/api/v1/tenants/{}/catalog/releases", s.a);
    let (status, v) = s.get(&format!("{releases}/{id1}"), &s.ann);
    assert_eq!((status, v["code"].as_str()), (404, Some("not_found")));
    let (_, list) = s.get(&releases, &s.ann);
    assert_eq!(list, json!([two]));
    let (status, _) = s.delete(id1, &s.ann);
    assert_eq!(status, 404);

    // Ids that name nothing, or are not ids at all.
    for bad in [
        "nope",
        "YWNtZS92b3lhZ2VyLzEuMC9mdy5iaW4=",
        "%2e%2e",
        "..%2f..%2fkeys",
        &"A".repeat(2000),
    ] {
        let (status, v) = s.get(&format!("{releases}/{bad}"), &s.ann);
        assert_eq!(
            (status, v["code"].as_str()),
            (404, Some("not_found")),
            "{bad}"
        );
        let (status, _) = s.delete(bad, &s.ann);
        assert_eq!(status, 404, "{bad}");
    }
    assert!(s.data.join("keys").is_dir());
}

#[test]
fn catalog_managers_must_be_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    create_tenant(&data, "Acme");
    let out = updater(&data)
        .args([
            "serve",
            "--allow-online-root-key",
            "--listen",
            "127.0.0.1:0",
            "--catalog-managers",
            "0123456789abcdef",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("there is no tenant \"0123456789abcdef\""),
        "{stderr}"
    );
    for bad in ["0", "70000", "x"] {
        let out = updater(&data)
            .args(["serve", "--listen", "127.0.0.1:0", "--max-upload-mib", bad])
            .output()
            .unwrap();
        assert!(!out.status.success(), "--max-upload-mib {bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--max-upload-mib"));
    }
}
