//! The OpenAPI 3.1 document of the whole API, `GET /api/v1/openapi.json`.
//!
//! Operations come from the mounted route tables ([`super::routes::ROUTES`]
//! and [`super::api::TENANT_ROUTES`]: method, path, authentication, success
//! status); [`DOCS`] adds what a person needs (summary, query parameters,
//! request and response schema names), and [`schemas`] the schemas. The test
//! `openapi_documents_exactly_the_mounted_routes` fails for a mounted route
//! without a [`DOCS`] row and for a row without a mounted route.
//!
//! Hand-written rather than derived (e.g. `utoipa`): no proc-macro
//! dependency, and the routes stay plain tables the router is built from.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use self::Out::{Binary, Empty, Json, Report, Text};
use super::api::{Access, Method, TENANT_ROUTES};
use super::routes::{Auth, ROUTES};

/// What a successful call answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// JSON of the named schema (in `components.schemas`).
    Json(&'static str),
    /// No body.
    Empty,
    /// Plain text.
    Text,
    /// Bytes (firmware images).
    Binary,
    /// A report: JSON of the named schema, or CSV (`?format=csv` or
    /// `Accept: text/csv`).
    Report(&'static str),
}

/// The human part of one operation.
#[derive(Debug, Clone, Copy)]
pub struct Doc {
    /// Method.
    pub method: Method,
    /// Path as mounted (axum syntax).
    pub path: &'static str,
    /// One line.
    pub summary: &'static str,
    /// Query parameters: name, type (`integer` / `string`), description.
    pub query: &'static [(&'static str, &'static str, &'static str)],
    /// The JSON request body's schema, if any.
    pub request: Option<&'static str>,
    /// The request body is a file, sent as `application/octet-stream`.
    pub file_body: bool,
    /// The success answer.
    pub response: Out,
}

/// Every mounted operation: method, path, security requirement names, an
/// access note, and the success status.
fn operations() -> Vec<(Method, &'static str, Vec<&'static str>, &'static str, u16)> {
    let mut ops = Vec::new();
    for e in ROUTES {
        let (security, note) = match e.auth {
            Auth::Public => (vec![], "public"),
            Auth::Session => (vec!["adminSession"], "the calling admin session"),
            Auth::Agent => (vec!["agentCredential"], "the agent named in the path"),
        };
        ops.push((e.method, e.path, security, note, e.success));
    }
    for r in TENANT_ROUTES {
        let (security, note) = match r.access {
            Access::Read => (
                vec!["adminSession", "apiToken"],
                "any admin or API token of the tenant",
            ),
            Access::Write => (
                vec!["adminSession", "apiToken"],
                "full admins and full-scope API tokens",
            ),
            Access::FullAdmin => (vec!["adminSession"], "full admins only"),
            Access::Admin => (
                vec!["adminSession"],
                "any signed-in admin of the tenant (not API tokens)",
            ),
            Access::CatalogManager => (
                vec!["adminSession", "apiToken"],
                "full admins and full-scope API tokens of a tenant the server operator made a catalog manager (`serve --catalog-managers`)",
            ),
        };
        ops.push((r.method, r.path, security, note, r.success));
    }
    ops
}

/// `{*rest}` (axum) → `{rest}` (OpenAPI).
pub fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

/// The `{name}` parameters of a path.
fn path_params(path: &str) -> Vec<&str> {
    path.split('{')
        .skip(1)
        .filter_map(|p| {
            p.split_once('}')
                .map(|(name, _)| name.trim_start_matches('*'))
        })
        .collect()
}

pub(crate) fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn operation(method: Method, path: &str, security: &[&str], note: &str, success: u16) -> Value {
    let d = DOCS.iter().find(|d| d.method == method && d.path == path);
    let mut parameters: Vec<Value> = path_params(path)
        .into_iter()
        .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    let mut op = json!({
        "operationId": format!("{}{}", method.as_str().to_lowercase(), path.replace(['/', '{', '}', '*', '-', '.'], "_")),
        "summary": d.map_or("(undocumented)", |d| d.summary),
        "description": format!("Who may call: {note}."),
        "security": security.iter().map(|s| json!({ *s: [] })).collect::<Vec<_>>(),
    });
    if let Some(d) = d {
        parameters.extend(d.query.iter().map(|(name, ty, description)| {
            json!({"name": name, "in": "query", "required": false,
                   "description": description, "schema": {"type": ty}})
        }));
        if let Some(req) = d.request {
            op["requestBody"] = json!({"required": true,
                "content": {"application/json": {"schema": schema_ref(req)}}});
        }
        if d.file_body {
            op["requestBody"] = json!({"required": true,
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}});
        }
    }
    op["parameters"] = Value::Array(parameters);
    let ok = match d.map(|d| d.response) {
        Some(Json(name)) => json!({"description": "success",
            "content": {"application/json": {"schema": schema_ref(name)}}}),
        Some(Text) => json!({"description": "success",
            "content": {"text/plain": {"schema": {"type": "string"}}}}),
        Some(Binary) => json!({"description": "success",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}),
        Some(Report(name)) => {
            json!({"description": "success: JSON, or CSV with a header row (`Content-Disposition: attachment`)",
            "content": {"application/json": {"schema": schema_ref(name)},
                        "text/csv": {"schema": {"type": "string"}}}})
        }
        Some(Empty) | None => json!({"description": "success"}),
    };
    op["responses"] = json!({
        success.to_string(): ok,
        "default": {"description": "an error",
            "content": {"application/json": {"schema": schema_ref("Error")}}},
    });
    op
}

/// The document (built once).
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut paths = Map::new();
        for (method, path, security, note, success) in operations() {
            let item = paths
                .entry(openapi_path(path))
                .or_insert_with(|| json!({}));
            item[method.as_str().to_lowercase()] = operation(method, path, &security, note, success);
        }
        let bearer = |what: &str| json!({"type": "http", "scheme": "bearer", "description": what});
        json!({
            "openapi": "3.1.0",
            "info": {
                "title": "updater-server API",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "Firmware update service: catalog repository, tenant administration, agent enrollment and events. Errors are JSON `{code, message}`.",
            },
            "paths": paths,
            "components": {
                "schemas": schemas(),
                "securitySchemes": {
                    "adminSession": bearer("An admin session token (`upds_…`) from POST /api/v1/login."),
                    "apiToken": bearer("A partner application's API token (`updt_…`)."),
                    "agentCredential": bearer("An agent credential (`upda_…`) from POST /api/v1/enroll."),
                },
            },
        })
    })
}

/// `GET /api/v1/openapi.json`.
pub(crate) async fn serve() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document().to_string(),
    )
        .into_response()
}

mod docs;
mod schemas;

pub use self::docs::DOCS;
pub use self::schemas::schemas;

#[cfg(test)]
mod tests;
