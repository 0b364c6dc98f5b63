//! The console's session cookie and CSRF tokens.
//!
//! The cookie holds the API's session token (the same session the API's
//! login opens: one expiry rule, one sign-out). It is `HttpOnly` (no script
//! reads it), `SameSite=Strict` (no other site's page sends it) and `Secure`
//! when the server speaks TLS.
//!
//! The CSRF token is a keyed hash of the session token: a page can embed it
//! without exposing the session, another site cannot compute it, and it
//! needs no storage. A POST carries it in the form field `csrf` or, from the
//! console's script, the `X-CSRF-Token` header.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::layout;

/// The cookie's name.
pub(crate) const COOKIE: &str = "updater_session";

/// A `Set-Cookie` value that removes the cookie.
pub(crate) const CLEAR_COOKIE: &str =
    "updater_session=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0";

/// What a refused cross-site request is told.
pub(crate) const CROSS_SITE: &str =
    "this request came from another site; the console only accepts its own forms";

/// What a POST without the right CSRF token is told.
pub(crate) const BAD_CSRF: &str =
    "this form is out of date or did not come from this console; reload the page and try again";

/// Largest form body the CSRF check reads (forms are small; bulk member
/// lists go up to the group-members limit).
const MAX_FORM_BYTES: usize = 9 * 1024 * 1024;

/// The session token from the request's cookie.
pub(crate) fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value that starts a console session.
pub(crate) fn set_cookie(token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict{secure}")
}

/// The CSRF token of the session whose token is `session_token`.
pub(crate) fn csrf_token(session_token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"updater-console-csrf\0");
    h.update(session_token.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Equal without an early exit (the token is a secret of the session).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Passes `req` on when it carries `expected` in the `X-CSRF-Token` header
/// or (for a form) in the field `csrf`; the form body is read and put back.
pub(crate) async fn check_csrf(req: Request, expected: &str) -> Result<Request, Response> {
    let refuse = || layout::refusal(StatusCode::FORBIDDEN, BAD_CSRF);
    if let Some(v) = req.headers().get("x-csrf-token") {
        return match v.to_str() {
            Ok(v) if same(v, expected) => Ok(req),
            _ => Err(refuse()),
        };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(refuse());
    }
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BYTES).await.map_err(|_| {
        layout::refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the form is larger than the console accepts",
        )
    })?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
        .map_err(|_| layout::refusal(StatusCode::BAD_REQUEST, "the form could not be read"))?;
    let ok = fields
        .iter()
        .filter(|(k, _)| k == "csrf")
        .map(|(_, v)| same(v, expected))
        .collect::<Vec<_>>()
        == [true];
    if !ok {
        return Err(refuse());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Percent-encodes a query value (the sign-in page's `next`).
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where to go after signing in: a console path only (never another site,
/// never a scheme-relative `//host`).
pub(crate) fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if (n == "/console" || n.starts_with("/console/") || n.starts_with("/console?"))
                && !n.contains("//")
                && !n.contains('\\') =>
        {
            n
        }
        _ => "/console",
    }
}
