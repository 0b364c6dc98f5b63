//! Bearer authentication, tenant isolation and roles; login and logout.
//!
//! Order of checks on a tenant-scoped route, and what each failure answers:
//! no or unusable credentials → 401; the principal belongs to another tenant
//! (or the tenant does not exist) → 404, so tenant ids do not leak; the
//! principal may not do this → 403.

use std::collections::HashMap;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::api::Access;
use super::errors::{blocking, error, not_found, unauthorized, ApiError, JsonBody};
use super::Shared;
use crate::auth::{AccountError, Principal, PrincipalKind};

/// The token of an `Authorization: Bearer <token>` header (scheme
/// case-insensitive, exactly one space); `None` for anything else.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?.to_str().ok()?;
    if values.next().is_some() {
        return None;
    }
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then_some(token)
}

async fn principal(state: &Shared, headers: &HeaderMap) -> Result<Principal, Response> {
    let Some(token) = bearer(headers) else {
        return Err(unauthorized("an Authorization: Bearer token is required"));
    };
    let token = token.to_owned();
    let state = state.clone();
    blocking(move || Ok(state.accounts.authenticate(&token)?))
        .await
        .map_err(IntoResponse::into_response)
}

/// Whether `p` (already known to belong to the tenant) may use a route
/// needing `access`; the refusal says why. The API and the console both
/// decide with this one rule.
pub(crate) fn permits(state: &Shared, p: &Principal, access: Access) -> Result<(), &'static str> {
    let allowed = match access {
        Access::Read => true,
        Access::Write => p.can_write(),
        Access::FullAdmin => p.is_full_admin(),
        Access::Admin => matches!(p.kind, PrincipalKind::Admin { .. }),
        Access::CatalogManager => p.can_write() && state.uploads.managers.contains(&p.tenant),
    };
    if allowed {
        return Ok(());
    }
    Err(match access {
        Access::FullAdmin => "only full admins may do this",
        Access::Admin => "only a signed-in admin may do this (not an API token)",
        Access::CatalogManager if p.can_write() => super::releases::NOT_A_CATALOG_MANAGER,
        _ => "read-only credentials cannot change anything",
    })
}

/// The layer on every tenant-scoped route: authenticates, checks the tenant
/// and `access`, and hands the [`Principal`] to the handler as an extension.
pub(crate) async fn authorize(
    State((state, access)): State<(Shared, Access)>,
    params: Result<UrlPath<HashMap<String, String>>, PathRejection>,
    mut req: Request,
    next: Next,
) -> Response {
    // Undecodable parameters name no tenant of anyone's.
    let Ok(UrlPath(params)) = params else {
        return not_found();
    };
    let p = match principal(&state, req.headers()).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if params.get("tenant") != Some(&p.tenant) {
        return not_found();
    }
    if let Err(why) = permits(&state, &p, access) {
        return error(StatusCode::FORBIDDEN, "forbidden", why);
    }
    req.extensions_mut().insert(p);
    next.run(req).await
}

/// The layer on every agent route (`/api/v1/agents/{agent}/…`): the bearer
/// token must be the current credential of the path's agent. No, malformed,
/// unknown or replaced credentials → 401; another agent's path → 404. Hands
/// the [`crate::store::Agent`] to the handler as an extension.
pub(crate) async fn authorize_agent(
    State(state): State<Shared>,
    params: Result<UrlPath<HashMap<String, String>>, PathRejection>,
    mut req: Request,
    next: Next,
) -> Response {
    let Ok(UrlPath(params)) = params else {
        return not_found();
    };
    let Some(token) = bearer(req.headers()).map(str::to_owned) else {
        return unauthorized("an Authorization: Bearer agent credential is required");
    };
    // Checked against the store (one read and a hash, inline: a hop to the
    // blocking pool costs more), unless the same credential was checked
    // since the store's file last changed (see `AgentCredentials`).
    let stamp = super::fleet::fleet(&state).store_file_stamp();
    let agent = match state.agent_credentials.get(&token, stamp) {
        Some(a) => a,
        None => match state.accounts.authenticate_agent(&token) {
            Ok(a) => {
                state.agent_credentials.put(&token, a.clone(), stamp);
                a
            }
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    if params.get("agent") != Some(&agent.id) {
        return not_found();
    }
    req.extensions_mut().insert(agent);
    next.run(req).await
}

/// What a refused login is told, whichever of the three was wrong.
pub(crate) const WRONG_CREDENTIALS: &str = "wrong tenant, e-mail or password";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    tenant: String,
    email: String,
    password: String,
}

/// The client's address, when the server was started with it (a router
/// driven in-process has none).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub(crate) Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// `POST /api/v1/login {tenant, email, password}` → a session token.
pub(crate) async fn login(
    State(state): State<Shared>,
    ClientAddr(source): ClientAddr,
    JsonBody(body): JsonBody<Login>,
) -> Response {
    let result = blocking(move || {
        let (session, token) = state
            .accounts
            .login(source, &body.tenant, &body.email, &body.password)
            .map_err(|e| match e {
                AccountError::InvalidCredentials => ApiError::new(error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_credentials",
                    WRONG_CREDENTIALS,
                )),
                other => other.into(),
            })?;
        Ok(Json(json!({
            "token": token,
            "token_type": "Bearer",
            "tenant": session.tenant,
            "idle_expires_at": session.idle_expires_at,
            "expires_at": session.expires_at,
        })))
    })
    .await;
    match result {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /api/v1/logout`: ends the calling session.
pub(crate) async fn logout(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let p = match principal(&state, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match blocking(move || Ok(state.accounts.logout(&p)?)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    #[test]
    fn bearer_header_formats() {
        let tok = "upds_ab_cd_ef";
        for (values, want) in [
            (vec!["Bearer upds_ab_cd_ef"], Some(tok)),
            (vec!["bearer upds_ab_cd_ef"], Some(tok)),
            (vec!["BEARER upds_ab_cd_ef"], Some(tok)),
            (vec!["upds_ab_cd_ef"], None),
            (vec!["Token upds_ab_cd_ef"], None),
            (vec!["Basic dXNlcjpwYXNz"], None),
            (vec!["Bearer"], None),
            (vec!["Bearer "], None),
            (vec!["Bearer  upds_ab_cd_ef"], None),
            (vec!["Bearer upds_ab_cd_ef extra"], None),
            (vec!["Bearer a", "Bearer b"], None),
            (vec![], None),
        ] {
            let mut h = HeaderMap::new();
            for v in &values {
                h.append("authorization", HeaderValue::from_str(v).unwrap());
            }
            assert_eq!(super::bearer(&h), want, "{values:?}");
        }
    }
}
