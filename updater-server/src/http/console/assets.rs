//! The stylesheet and the script, compiled into the binary. Their URLs carry
//! the server's version, so browsers may cache them for a day.

use axum::extract::Path as UrlPath;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");
const ICON: &str = include_str!("assets/icon.svg");

/// The stylesheet's URL.
pub(crate) const CSS_URL: &str =
    concat!("/console/assets/console.css?v=", env!("CARGO_PKG_VERSION"));
/// The script's URL.
pub(crate) const JS_URL: &str = concat!("/console/assets/console.js?v=", env!("CARGO_PKG_VERSION"));

/// The icon's URL.
pub(crate) const ICON_URL: &str = concat!("/console/assets/icon.svg?v=", env!("CARGO_PKG_VERSION"));

/// `GET /console/assets/{file}`.
pub(crate) async fn serve(UrlPath(file): UrlPath<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        "icon.svg" => (ICON, "image/svg+xml"),
        _ => return super::layout::refusal(StatusCode::NOT_FOUND, "no such file"),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}
