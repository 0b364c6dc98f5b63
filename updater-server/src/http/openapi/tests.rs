//! The document against the mounted routes, and its structure.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use serde_json::Value;
use tower::ServiceExt as _;

use super::*;
use crate::auth::{Accounts, SessionPolicy, SystemClock};
use crate::http::{router, routes, AppState, Limits};
use crate::store::RedbStore;

fn key(method: Method, path: &str) -> (String, String) {
    (method.as_str().to_owned(), path.to_owned())
}

#[test]
fn openapi_documents_exactly_the_mounted_routes() {
    let mounted: Vec<_> = routes::mounted()
        .into_iter()
        .map(|(m, p)| key(m, p))
        .collect();
    let mounted_set: BTreeSet<_> = mounted.iter().cloned().collect();
    assert_eq!(mounted.len(), mounted_set.len(), "a route is mounted twice");
    let documented: Vec<_> = DOCS.iter().map(|d| key(d.method, d.path)).collect();
    let documented_set: BTreeSet<_> = documented.iter().cloned().collect();
    assert_eq!(
        documented.len(),
        documented_set.len(),
        "a DOCS row is repeated"
    );
    let undocumented: Vec<_> = mounted_set.difference(&documented_set).collect();
    assert!(
        undocumented.is_empty(),
        "mounted without a row in http::openapi::DOCS: {undocumented:?}"
    );
    let unmounted: Vec<_> = documented_set.difference(&mounted_set).collect();
    assert!(
        unmounted.is_empty(),
        "documented but not mounted: {unmounted:?}"
    );

    // The served document has exactly these operations.
    let doc = document();
    let mut in_doc = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            in_doc.insert((method.to_uppercase(), path.clone()));
        }
    }
    let want: BTreeSet<_> = mounted_set
        .iter()
        .map(|(m, p)| (m.clone(), openapi_path(p)))
        .collect();
    assert_eq!(in_doc, want);
    for must in [
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/repo/targets/{path}"),
        ("POST", "/api/v1/login"),
        ("POST", "/api/v1/logout"),
        ("POST", "/api/v1/enroll"),
        ("POST", "/api/v1/agents/{agent}/events"),
        ("GET", "/api/v1/tenants/{tenant}/update-history"),
    ] {
        assert!(
            in_doc.contains(&(must.0.to_owned(), must.1.to_owned())),
            "{must:?}"
        );
    }
}

/// The router answers every documented operation with its own handler (or
/// auth layer), never with the fallback or 405.
#[tokio::test]
async fn every_documented_operation_reaches_a_handler() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let catalog =
        catalog::Catalog::init(&dir.path().join("catalog"), &keys, chrono::Utc::now()).unwrap();
    let store = Arc::new(RedbStore::open(&dir.path().join("server.redb")).unwrap());
    let accounts = Accounts::new(
        store,
        Arc::new(SystemClock),
        keys.clone(),
        SessionPolicy::default(),
    );
    let app = router(AppState::new(&catalog, keys, accounts), Limits::default());
    for d in DOCS {
        let path = d.path.replace("{*path}", "x/y").replace(['{', '}'], "");
        let req = Request::builder()
            .method(d.method.as_str())
            .uri(&path)
            .header("content-type", "application/json")
            .body(Body::from(if d.method == Method::Get { "" } else { "{}" }))
            .unwrap();
        let r = app.clone().oneshot(req).await.unwrap();
        let status = r.status().as_u16();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 24).await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_ne!(status, 405, "{} {path}", d.method.as_str());
        assert_ne!(
            body["message"],
            "no such route",
            "{} {path}",
            d.method.as_str()
        );
    }
}

/// The router mounts only the two tables: a route added any other way would
/// escape the document (and this test).
#[test]
fn routes_are_mounted_only_from_the_tables() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![dir];
    let mut offenders = Vec::new();
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("openapi/tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Test modules build their own small routers.
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for needle in [
                ".route(\"",
                ".route_service(",
                ".nest(",
                ".nest_service(",
                ".merge(",
            ] {
                if code.contains(needle) {
                    offenders.push(format!("{}: {needle}", path.display()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "mount routes through http::routes::ROUTES, api::TENANT_ROUTES or console::PAGES: {offenders:?}"
    );
}

fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r);
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn document_structure() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "updater-server API");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with('/'), "{path}");
        for (method, op) in item.as_object().unwrap() {
            assert!(["get", "post", "put", "patch", "delete"].contains(&method.as_str()));
            assert!(
                ids.insert(op["operationId"].as_str().unwrap().to_owned()),
                "{path}"
            );
            assert_ne!(op["summary"], "(undocumented)", "{method} {path}");
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            let in_path: BTreeSet<&str> = path_params(path).into_iter().collect();
            assert_eq!(declared, in_path, "{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|k| k.starts_with('2')),
                "{method} {path}"
            );
            for req in op["security"].as_array().unwrap() {
                for name in req.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(name), "{name}");
                }
            }
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut all = Vec::new();
    refs(doc, &mut all);
    assert!(all.len() > 30);
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(schemas.contains_key(name), "dangling $ref {r}");
    }
    // The public routes ask for no credentials; the agent route for the agent's.
    let healthz = &doc["paths"]["/healthz"]["get"];
    assert_eq!(healthz["security"], serde_json::json!([]));
    let events = &doc["paths"]["/api/v1/agents/{agent}/events"]["post"];
    assert_eq!(
        events["security"],
        serde_json::json!([{"agentCredential": []}])
    );
    assert_eq!(
        events["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/EventBatch"
    );
}
