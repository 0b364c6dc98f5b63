//! The catalog: releases by vendor and model, and (for catalog managers) a
//! firmware upload with progress, through the API's own upload handler.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use catalog::package::FirmwareRelease;
use maud::html;

use super::layout::{self, Ctx, Nav};
use super::signin::DoneQuery;
use super::{blocking, Answer};
use crate::http::api::Access;
use crate::http::authz::permits;
use crate::http::fleet::fleet;
use crate::http::Shared;

fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

fn text_of<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// `GET /console/catalog`.
pub(crate) async fn list(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<DoneQuery>,
) -> Answer {
    let may_upload = permits(&state, &ctx.principal, Access::CatalogManager).is_ok();
    let max_mib = state.uploads.max_bytes >> 20;
    blocking(move || {
        let releases = fleet(&state).releases()?;
        let mut by_model: BTreeMap<(String, String), Vec<&FirmwareRelease>> = BTreeMap::new();
        for r in &releases {
            by_model
                .entry((r.vendor.clone(), r.model.clone()))
                .or_default()
                .push(r);
        }
        let body = html! {
            @if releases.is_empty() {
                (layout::empty("The catalog is empty: import firmware before creating policies.", html! {
                    p { "Upload a file below (if this server lets your tenant change the catalog), or on the server host: "
                        code { "updater-server catalog import FILE --vendor … --model … --hardware-id VID:PID --version …" } }
                }))
            }
            @for ((vendor, model), list) in &by_model {
                h2 { (vendor) " " (model) }
                div.table-wrap { table.releases {
                    thead { tr { th { "Version" } th { "Hardware ids" } th.num { "Size" } th { "Protocol" } th { "Urgency" } th { "Imported" } th { "Release notes" } } }
                    tbody { @for r in list.iter().rev() { tr {
                        td { (r.version.as_str()) }
                        td { (r.hardware_ids.iter().map(|h| crate::reports::model_key(h.vid, h.pid)).collect::<Vec<_>>().join(", ")) }
                        td.num { (size_text(r.size)) }
                        td { (text_of(&r.protocol)) }
                        td { (text_of(&r.urgency)) }
                        td { (layout::time(r.imported_at)) }
                        td { (r.release_notes) }
                    } } }
                } }
            }
            h2 { "Upload firmware" }
            @if may_upload {
                noscript { p.error { "Uploading from the browser needs JavaScript." } }
                form.stack #upload method="post" action="/console/catalog/upload" {
                    (ctx.csrf_field())
                    label { "Firmware file" span.hint { "raw image, .dfu, DfuSe or LVFS .cab; at most " (max_mib) " MiB" }
                        input type="file" name="file" required; }
                    label { "Vendor" span.hint { "empty: from the file (LVFS cabinets)" } input name="vendor"; }
                    label { "Model" input name="model"; }
                    label { "Hardware id" span.hint { "VID:PID, e.g. 047F:C056 (required for raw images)" } input name="hardware-id"; }
                    label { "Version" input name="version"; }
                    label { "Urgency" select name="urgency" {
                        option value="" { "medium" } option value="low" { "low" } option value="high" { "high" } option value="critical" { "critical" }
                    } }
                    label { "Release notes" textarea name="notes" rows="3" {} }
                    label { input type="checkbox" name="silent-capable" value="true"; " May be installed silently in a maintenance window" }
                    label { input type="checkbox" name="needs-replug" value="true"; " The device must be replugged after flashing" }
                    button type="submit" { "Upload" }
                    progress #upload-progress value="0" max="1" {}
                    p #upload-status role="status" {}
                }
            } @else {
                p.muted { "The catalog is shared by every tenant of this server; only tenants the operator names ("
                    code { "serve --catalog-managers" } ") may change it." }
            }
        };
        Ok(layout::page(&ctx, Nav::Catalog, "Firmware catalog", q.done.as_deref(), body))
    })
    .await
}

/// `POST /console/catalog/upload?<import flags>`: the API's upload (the
/// same checks, limits and answers), for the console's script.
pub(crate) async fn upload(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let p = ctx.principal.clone();
    match crate::http::releases::upload(State(state), Extension(p), query, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}
