//! The web admin console: server-rendered pages under `/console`, served by
//! the same router as the API and authorized by the same rule
//! ([`super::authz::permits`]) with the same [`Access`] levels.
//!
//! - [`PAGES`] is the console's route table; the router mounts it, and the
//!   console's authorization test walks it like the API's auth matrix.
//! - A session is the API's login session, carried in an `HttpOnly`,
//!   `SameSite=Strict` cookie ([`session`]); every state-changing request
//!   carries a CSRF token derived from the session.
//! - Pages are maud templates (every value escaped) with one stylesheet and
//!   one small script, both compiled into the binary ([`assets`]), under a
//!   Content-Security-Policy that forbids inline scripts.
//! - Handlers call the same services as the API handlers ([`crate::fleet`],
//!   [`crate::reports`], [`crate::auth`]); the console holds no rule of its own.

mod admins;
mod assets;
mod catalog;
mod chart;
mod fleet_view;
mod forms;
mod groups;
mod home;
mod inventory;
mod layout;
mod policies;
mod reports;
mod rollouts;
mod session;
mod settings;
mod signin;
mod software;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use maud::Markup;

use super::api::{Access, Method};
use super::authz::permits;
use super::Shared;
use crate::auth::{Principal, PrincipalKind};
use crate::fleet::FleetError;

pub(crate) use self::fleet_view::ViewCache;
pub(crate) use self::layout::Ctx;

/// One console route.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Method.
    pub method: Method,
    /// Path.
    pub path: &'static str,
    /// Who may use it; `None`: anyone (sign-in, assets).
    pub access: Option<Access>,
    handler: fn() -> MethodRouter<Shared>,
}

const fn page(
    method: Method,
    path: &'static str,
    access: Option<Access>,
    handler: fn() -> MethodRouter<Shared>,
) -> Page {
    Page {
        method,
        path,
        access,
        handler,
    }
}

use Method::{Get, Post};
const READ: Option<Access> = Some(Access::Read);
const WRITE: Option<Access> = Some(Access::Write);
const FULL_ADMIN: Option<Access> = Some(Access::FullAdmin);
const ADMIN: Option<Access> = Some(Access::Admin);
const CATALOG: Option<Access> = Some(Access::CatalogManager);

/// Every console route.
pub const PAGES: &[Page] = &[
    page(Get, "/", None, || {
        get(|| async { Redirect::to("/console") })
    }),
    page(Get, "/console/assets/{file}", None, || get(assets::serve)),
    page(Get, "/console/signin", None, || get(signin::form)),
    page(Post, "/console/signin", None, || post(signin::submit)),
    page(Post, "/console/signout", READ, || post(signin::sign_out)),
    page(Get, "/console/password", ADMIN, || {
        get(signin::password_form)
    }),
    page(Post, "/console/password", ADMIN, || {
        post(signin::change_password)
    }),
    page(Get, "/console", READ, || get(home::home)),
    page(Get, "/console/devices", READ, || get(inventory::devices)),
    page(Get, "/console/devices/{id}", READ, || {
        get(inventory::device)
    }),
    page(Get, "/console/hosts", READ, || get(inventory::hosts)),
    page(Get, "/console/users", READ, || get(inventory::users)),
    page(Get, "/console/groups", READ, || get(groups::list)),
    page(Post, "/console/groups", WRITE, || post(groups::create)),
    page(Get, "/console/groups/{id}", READ, || get(groups::show)),
    page(Post, "/console/groups/{id}/members", WRITE, || {
        post(groups::edit_members)
    }),
    page(Post, "/console/groups/{id}/delete", WRITE, || {
        post(groups::delete)
    }),
    page(Get, "/console/policies", READ, || get(policies::list)),
    page(Get, "/console/policies/new", WRITE, || {
        get(policies::new_form)
    }),
    page(Post, "/console/policies", WRITE, || post(policies::create)),
    page(Post, "/console/policies/preview", READ, || {
        post(policies::preview_form)
    }),
    page(Get, "/console/policies/{id}", READ, || {
        get(policies::edit_form)
    }),
    page(Post, "/console/policies/{id}", WRITE, || {
        post(policies::update)
    }),
    page(Post, "/console/policies/{id}/copy", WRITE, || {
        post(policies::copy)
    }),
    page(Post, "/console/policies/{id}/enabled", WRITE, || {
        post(policies::set_enabled)
    }),
    page(Post, "/console/policies/{id}/delete", WRITE, || {
        post(policies::delete)
    }),
    page(Post, "/console/software-policies", WRITE, || {
        post(software::create)
    }),
    page(
        Post,
        "/console/software-policies/{id}/enabled",
        WRITE,
        || post(software::set_enabled),
    ),
    page(
        Post,
        "/console/software-policies/{id}/delete",
        WRITE,
        || post(software::delete),
    ),
    page(Get, "/console/rollouts", READ, || get(rollouts::list)),
    page(Post, "/console/rollouts", WRITE, || post(rollouts::create)),
    page(Get, "/console/rollouts/{id}", READ, || get(rollouts::show)),
    page(Post, "/console/rollouts/{id}/{action}", WRITE, || {
        post(rollouts::act)
    }),
    page(Get, "/console/catalog", READ, || get(catalog::list)),
    page(Post, "/console/catalog/upload", CATALOG, || {
        post(catalog::upload)
    }),
    page(Get, "/console/reports", READ, || get(reports::index)),
    page(Get, "/console/reports/{kind}", READ, || get(reports::show)),
    page(Get, "/console/admins", READ, || get(admins::list)),
    page(Post, "/console/admins", FULL_ADMIN, || post(admins::create)),
    page(Post, "/console/admins/{id}/delete", FULL_ADMIN, || {
        post(admins::delete)
    }),
    page(Post, "/console/api-tokens", FULL_ADMIN, || {
        post(admins::create_token)
    }),
    page(Post, "/console/api-tokens/{id}/revoke", FULL_ADMIN, || {
        post(admins::revoke_token)
    }),
    page(Get, "/console/settings", READ, || get(settings::show)),
    page(Post, "/console/settings", WRITE, || post(settings::save)),
    page(Post, "/console/enrollment-token", WRITE, || {
        post(settings::rotate_enrollment_token)
    }),
];

/// Mounts [`PAGES`], each with its authorization layer.
pub(crate) fn mount(mut r: Router<Shared>, state: &Shared) -> Router<Shared> {
    for p in PAGES {
        let mut m = (p.handler)();
        if let Some(access) = p.access {
            m = m.route_layer(from_fn_with_state(
                (Arc::clone(state), access),
                authorize_page,
            ));
        } else if p.method == Post {
            m = m.route_layer(from_fn(same_origin_only));
        }
        r = r.route(p.path, m.layer(from_fn(security_headers)));
    }
    r
}

/// The headers every console answer carries: a strict CSP (no inline
/// script or style, nothing from elsewhere, no framing), no sniffing, no
/// referrer to other sites, and no caching of pages (assets set their own).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: under it browsers send `Origin: null` with the
    // console's own forms, which the origin check must refuse.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// Refuses a state-changing request a browser marks as sent from another
/// site (`Sec-Fetch-Site`), or whose `Origin` is not this server's.
fn cross_site(req: &Request) -> bool {
    let h = req.headers();
    let fetch_site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(fetch_site, Some("cross-site" | "same-site")) {
        return true;
    }
    let origin = h.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => {
            let authority = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            authority != Some(host)
        }
        (Some(_), None) => true,
        (None, _) => false,
    }
}

async fn same_origin_only(req: Request, next: Next) -> Response {
    if cross_site(&req) {
        return layout::refusal(StatusCode::FORBIDDEN, session::CROSS_SITE);
    }
    next.run(req).await
}

/// The layer on every console route that needs a session: the session
/// cookie (none or expired: GETs go to the sign-in page, other methods get
/// 401), the [`Access`] rule the API applies (403), and for every POST the
/// origin and the session's CSRF token (403).
async fn authorize_page(
    State((state, access)): State<(Shared, Access)>,
    req: Request,
    next: Next,
) -> Response {
    let is_get = req.method() == axum::http::Method::GET;
    let Some(token) = session::cookie(req.headers()) else {
        return signed_out(is_get, req.uri());
    };
    let ctx = {
        let state = Arc::clone(&state);
        tokio::task::spawn_blocking(move || Ctx::load(&state, &token)).await
    };
    let ctx = match ctx {
        Ok(Ok(Some(ctx))) => ctx,
        Ok(Ok(None)) => return signed_out(is_get, req.uri()),
        Ok(Err(e)) => return layout::internal_error(&e),
        Err(e) => return layout::internal_error(&e),
    };
    if let Err(why) = permits(&state, &ctx.principal, access) {
        return layout::refusal(StatusCode::FORBIDDEN, why);
    }
    let req = if is_get {
        req
    } else {
        if cross_site(&req) {
            return layout::refusal(StatusCode::FORBIDDEN, session::CROSS_SITE);
        }
        match session::check_csrf(req, &ctx.csrf).await {
            Ok(req) => req,
            Err(r) => return r,
        }
    };
    let mut req = req;
    let tenant = ctx.principal.tenant.clone();
    req.extensions_mut().insert(ctx);
    let response = next.run(req).await;
    if !is_get {
        // Whatever the POST changed shows on the next page.
        state.console_views.forget(&tenant);
    }
    response
}

fn signed_out(is_get: bool, uri: &axum::http::Uri) -> Response {
    if is_get {
        let next = uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/console");
        let to = format!("/console/signin?next={}", session::url_encode(next));
        let mut r = Redirect::to(&to).into_response();
        r.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_static(session::CLEAR_COOKIE),
        );
        return r;
    }
    layout::refusal(
        StatusCode::UNAUTHORIZED,
        "your session has ended; sign in again",
    )
}

/// Why a console handler failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConsoleError {
    /// No such record in the tenant.
    #[error("not found")]
    NotFound,
    /// Anything else: logged, shown as an internal error.
    #[error("{0}")]
    Internal(String),
}

impl ConsoleError {
    fn internal(e: impl std::fmt::Display) -> Self {
        ConsoleError::Internal(e.to_string())
    }
}

impl From<FleetError> for ConsoleError {
    fn from(e: FleetError) -> Self {
        match e {
            FleetError::NotFound => ConsoleError::NotFound,
            other => ConsoleError::internal(other),
        }
    }
}

macro_rules! internal_from {
    ($($t:ty),*) => {$(
        impl From<$t> for ConsoleError {
            fn from(e: $t) -> Self {
                ConsoleError::internal(e)
            }
        }
    )*};
}
internal_from!(
    crate::store::StoreError,
    crate::auth::AccountError,
    crate::reports::ReportError,
    crate::events::EventsError,
    ::catalog::CatalogError
);

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            ConsoleError::NotFound => layout::refusal(
                StatusCode::NOT_FOUND,
                "there is no such record in this tenant",
            ),
            ConsoleError::Internal(e) => layout::internal_error(&e),
        }
    }
}

/// What a console handler answers: a page, or a redirect after a change.
pub(crate) type Answer = Result<Response, ConsoleError>;

/// Runs store work off the async threads.
pub(crate) async fn blocking<F>(f: F) -> Answer
where
    F: FnOnce() -> Answer + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ConsoleError::internal)?
}

/// A full page as a response.
pub(crate) fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// After a change: back to `to` with a notice (one of [`layout::NOTICES`]).
pub(crate) fn see_other(to: &str, notice: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{sep}done={notice}")).into_response()
}

/// The answer to a change: back to `to` with `notice` when it was made,
/// else the refusal in words (409; an internal error stays one).
pub(crate) fn changed<T>(result: Result<T, FleetError>, to: &str, notice: &str) -> Answer {
    match result {
        Ok(_) => Ok(see_other(to, notice)),
        Err(e) => Ok(layout::refusal(StatusCode::CONFLICT, &refused(e)?)),
    }
}

/// Whether a principal is a signed-in admin (the console never acts for an
/// API token, even one pasted into its cookie).
fn is_admin(p: &Principal) -> bool {
    matches!(p.kind, PrincipalKind::Admin { .. })
}

/// The server's URL as the browser reached it (for the installer
/// parameters an admin copies).
fn base_url(headers: &axum::http::HeaderMap, tls: bool) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<server>");
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// What a refused form is told: the service's own words for a mistake the
/// admin can fix (the same text the API answers with 409 or 422); any
/// other failure stays an error of the page.
pub(crate) fn refused(e: FleetError) -> Result<String, ConsoleError> {
    match e {
        FleetError::Invalid { .. } | FleetError::Conflict(_) | FleetError::Capability(_) => {
            Ok(e.to_string())
        }
        other => Err(other.into()),
    }
}

/// Lines of a text area, trimmed, without blanks.
pub(crate) fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}
