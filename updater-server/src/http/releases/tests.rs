//! Release ids and the pin check, as tables.

use catalog::digest::Sha256Digest;
use catalog::package::{
    HardwareId, InstallCapabilities, SourceFormat, UpdateProtocol, Urgency, Version, VersionFormat,
};
use chrono::{TimeZone, Utc};
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::fleet::{FirmwarePolicyInput, Stamps};

#[test]
fn ids_round_trip_and_nothing_else_decodes() {
    for name in [
        "acme/voyager/1.0/fw.bin",
        "a/b/c/d",
        "jabra/evolve2-85/3.2.1/-..-etc-passwd",
        "x/y/0x0214/fw.dfu.sig",
    ] {
        let id = release_id(name);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{id}"
        );
        assert_eq!(target_of(&id).as_deref(), Some(name));
    }
    let canonical = release_id("acme/voyager/1.0/fw.bin");
    let long = "A".repeat(MAX_ID_LEN + 4);
    for bad in [
        "",
        "acme/voyager/1.0/fw.bin",
        "..",
        "%2e%2e",
        // Padded, standard alphabet, non-canonical trailing bits.
        &format!("{canonical}=="),
        "YWNtZS92b3lhZ2VyLzEuMC9mdy5iaW4+",
        "YR",
        // Not UTF-8 once decoded.
        "_w",
        long.as_str(),
    ] {
        assert_eq!(target_of(bad), None, "{bad:?}");
    }
}

fn release(name: &str, model: (u16, u16), version: &str) -> FirmwareRelease {
    FirmwareRelease {
        target_name: name.into(),
        vendor: "Acme".into(),
        model: "Voyager".into(),
        hardware_ids: vec![HardwareId::new(model.0, model.1)],
        version: Version::parse(version, VersionFormat::Plain).unwrap(),
        security_counter: 0,
        protocol: UpdateProtocol::Dfu,
        capabilities: InstallCapabilities::default(),
        urgency: Urgency::Medium,
        release_notes: String::new(),
        size: 1,
        sha256: Sha256Digest::of(name.as_bytes()),
        source_format: SourceFormat::Raw,
        lvfs: None,
        product_family: None,
        imported_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    }
}

fn policy(id: &str, model: &str, version: &str, enabled: bool) -> FirmwarePolicy {
    let spec: FirmwarePolicyInput = serde_json::from_value(
        json!({"name": id, "model": model, "version": version, "enabled": enabled}),
    )
    .unwrap();
    let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    FirmwarePolicy {
        tenant: "t".into(),
        id: id.into(),
        spec,
        stamps: Stamps {
            created_at: t,
            updated_at: t,
        },
    }
}

/// Policies, releases, the release removed, the policy that blocks it.
type Case<'a> = (
    Vec<FirmwarePolicy>,
    Vec<FirmwareRelease>,
    &'a FirmwareRelease,
    Option<&'a str>,
);

#[test]
fn only_an_enabled_pin_left_without_a_release_blocks_removal() {
    let v10 = release("acme/voyager/1.0/fw.bin", (0x047f, 0xc056), "1.0");
    let v10_again = release("acme/voyager/1.0/fw-b.bin", (0x047f, 0xc056), "1.0.0");
    let v20 = release("acme/voyager/2.0/fw.bin", (0x047f, 0xc056), "2.0");
    let other = release("acme/other/1.0/fw.bin", (0x047f, 0x0001), "1.0");
    let all = [v10.clone(), v20.clone(), other.clone()];
    // (policies, releases, the release removed, the policy that blocks)
    let table: Vec<Case<'_>> = vec![
        (
            vec![policy("pin", "047F:C056", "1.0", true)],
            all.to_vec(),
            &v10,
            Some("pin"),
        ),
        // The pin is compared as a version: 1.0.0 is 1.0.
        (
            vec![policy("pin", "047F:C056", "1.0.0", true)],
            all.to_vec(),
            &v10,
            Some("pin"),
        ),
        (
            vec![policy("off", "047F:C056", "1.0", false)],
            all.to_vec(),
            &v10,
            None,
        ),
        (
            vec![policy("latest", "047F:C056", "latest", true)],
            all.to_vec(),
            &v20,
            None,
        ),
        (
            vec![policy("pin", "047F:C056", "1.0", true)],
            all.to_vec(),
            &v20,
            None,
        ),
        // Another model's pin of the same version.
        (
            vec![policy("pin", "047F:0001", "1.0", true)],
            all.to_vec(),
            &v10,
            None,
        ),
        (
            vec![policy("pin", "047F:0001", "1.0", true)],
            all.to_vec(),
            &other,
            Some("pin"),
        ),
        // Another release of the model has the pinned version.
        (
            vec![policy("pin", "047F:C056", "1.0", true)],
            vec![v10.clone(), v10_again.clone(), v20.clone()],
            &v10,
            None,
        ),
        (
            vec![
                policy("off", "047F:C056", "1.0", false),
                policy("latest", "047F:C056", "latest", true),
                policy("second", "047F:C056", "1.0", true),
            ],
            all.to_vec(),
            &v10,
            Some("second"),
        ),
        (vec![], all.to_vec(), &v10, None),
    ];
    for (policies, releases, removed, want) in &table {
        let got = pinning(removed, releases, policies).map(|p| p.id.as_str());
        assert_eq!(got, *want, "{} under {policies:?}", removed.target_name);
    }
}

/// An in-process server whose tenant "Acme" is a catalog manager, and a
/// session token of its full admin.
struct App {
    dir: tempfile::TempDir,
    router: axum::Router,
    tenant: String,
    token: String,
}

fn app(limits: crate::http::Limits, idle_timeout: Duration) -> App {
    use std::sync::Arc;

    use crate::auth::{Accounts, SessionPolicy, SystemClock};
    use crate::store::{RedbStore, Role};

    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let catalog = Catalog::init(&dir.path().join("catalog"), &keys, Utc::now()).unwrap();
    let store = Arc::new(RedbStore::open(&dir.path().join("server.redb")).unwrap());
    let accounts = Accounts::new(
        store,
        Arc::new(SystemClock),
        keys.clone(),
        SessionPolicy::default(),
    );
    let (tenant, _) = accounts.create_tenant("Acme").unwrap();
    let password = "a long enough password";
    accounts
        .create_admin(&tenant.id, "ann@acme.example", Role::Full, true, password)
        .unwrap();
    let (_, token) = accounts
        .login(None, &tenant.id, "ann@acme.example", password)
        .unwrap();
    let uploads = CatalogUploads {
        managers: [tenant.id.clone()].into(),
        max_bytes: 1 << 20,
        idle_timeout,
    };
    let state = AppState::new(&catalog, keys, accounts).with_catalog_uploads(uploads);
    App {
        router: crate::http::router(state, limits),
        dir,
        tenant: tenant.id,
        token,
    }
}

impl App {
    async fn upload(&self, body: Body) -> (StatusCode, Value) {
        use tower::ServiceExt as _;
        // The upload route, as the table mounts it.
        let route = crate::http::api::TENANT_ROUTES
            .iter()
            .find(|r| r.method == crate::http::api::Method::Post && r.path.ends_with("/releases"))
            .unwrap();
        let path = route.path.replace("{tenant}", &self.tenant);
        let req = axum::http::Request::post(format!(
            "{path}?vendor=A&model=M&hardware-id=047F:C056&version=1&file-name=fw.bin"
        ))
        .header("authorization", format!("Bearer {}", self.token))
        .header("content-type", "application/octet-stream")
        .body(body)
        .unwrap();
        let r = self.router.clone().oneshot(req).await.unwrap();
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn leftovers(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("catalog/blobs/tmp"))
            .unwrap()
            .count()
    }
}

fn chunks(n: usize) -> Vec<Result<Vec<u8>, std::io::Error>> {
    (0..n).map(|i| Ok(vec![i as u8; 100_000])).collect()
}

/// The server's response deadline bounds ordinary requests, not an upload
/// (which may take as long as its client sends): with a deadline too short
/// for anything, a login times out and an upload in pieces is imported.
#[tokio::test]
async fn an_upload_is_not_cut_by_the_response_deadline() {
    use tower::ServiceExt as _;
    let limits = crate::http::Limits {
        timeout: Duration::from_millis(1),
        ..crate::http::Limits::default()
    };
    let a = app(limits, Duration::from_secs(30));
    let login = axum::http::Request::post("/api/v1/login")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"tenant": a.tenant, "email": "ann@acme.example", "password": "a long enough password"})
                .to_string(),
        ))
        .unwrap();
    let r = a.router.clone().oneshot(login).await.unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_TIMEOUT);

    let body = Body::from_stream(futures_util::stream::iter(chunks(8)));
    let (status, v) = a.upload(body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["size"], 800_000);
    assert_eq!(a.leftovers(), 0);
}

/// A body that stops arriving is answered 408 after the idle timeout, and
/// what had arrived is deleted.
#[tokio::test]
async fn a_stalled_upload_times_out_and_leaves_nothing() {
    let a = app(crate::http::Limits::default(), Duration::from_millis(200));
    let stalled = futures_util::stream::iter(chunks(2)).chain(futures_util::stream::pending());
    let (status, v) = a.upload(Body::from_stream(stalled)).await;
    assert_eq!(
        (status, &v["code"]),
        (StatusCode::REQUEST_TIMEOUT, &json!("timeout"))
    );
    assert_eq!(a.leftovers(), 0);
    // Over the limit without a declared length: refused once counted past it.
    let (status, v) = a
        .upload(Body::from_stream(futures_util::stream::iter(chunks(11))))
        .await;
    assert_eq!(
        (status, &v["code"]),
        (StatusCode::PAYLOAD_TOO_LARGE, &json!("payload_too_large"))
    );
    assert_eq!(a.leftovers(), 0);
    let catalog = Catalog::open(&a.dir.path().join("catalog"), &a.dir.path().join("keys")).unwrap();
    assert!(catalog.releases().is_empty());
    assert!(catalog.blobs().list().unwrap().is_empty());
}
