//! Every route outside the tenant table ([`super::api::TENANT_ROUTES`]): public
//! ones, the session-only logout, and the agent routes. The router mounts
//! exactly these two tables, and the OpenAPI document ([`super::openapi`])
//! describes them; a test keeps the three in agreement.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post, MethodRouter};

use super::api::Method;
use super::{agents, authz, checkin, events, metrics, openapi, Shared};

/// How a route outside the tenant table authenticates its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Anyone.
    Public,
    /// An admin's login session (checked by the handler).
    Session,
    /// An agent credential whose agent is the path's `{agent}`; checked by
    /// the agent layer (wrong or replaced credential: 401, another agent: 404).
    Agent,
}

/// One route outside the tenant table.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    /// Method.
    pub method: Method,
    /// Path (axum syntax: `{param}`, `{*rest}`).
    pub path: &'static str,
    /// Who may call it.
    pub auth: Auth,
    /// The status of a successful call.
    pub success: u16,
    /// A larger request-body limit than the server's default, for this route.
    pub body_limit: Option<usize>,
    handler: fn() -> MethodRouter<Shared>,
}

/// The public, session and agent routes.
pub const ROUTES: &[Endpoint] = &[
    Endpoint {
        method: Method::Get,
        path: "/healthz",
        auth: Auth::Public,
        success: 200,
        body_limit: None,
        handler: || get(super::healthz),
    },
    Endpoint {
        method: Method::Get,
        path: "/metrics",
        auth: Auth::Public,
        success: 200,
        body_limit: None,
        handler: || get(metrics::metrics),
    },
    Endpoint {
        method: Method::Get,
        path: "/repo/metadata/{file}",
        auth: Auth::Public,
        success: 200,
        body_limit: None,
        handler: || get(super::metadata),
    },
    Endpoint {
        method: Method::Get,
        path: "/repo/targets/{*path}",
        auth: Auth::Public,
        success: 200,
        body_limit: None,
        handler: || get(super::target),
    },
    Endpoint {
        method: Method::Get,
        path: "/api/v1/openapi.json",
        auth: Auth::Public,
        success: 200,
        body_limit: None,
        handler: || get(openapi::serve),
    },
    Endpoint {
        method: Method::Post,
        path: "/api/v1/login",
        auth: Auth::Public,
        success: 200,
        body_limit: None,
        handler: || post(authz::login),
    },
    Endpoint {
        method: Method::Post,
        path: "/api/v1/logout",
        auth: Auth::Session,
        success: 204,
        body_limit: None,
        handler: || post(authz::logout),
    },
    Endpoint {
        method: Method::Post,
        path: "/api/v1/enroll",
        auth: Auth::Public,
        success: 201,
        body_limit: None,
        handler: || post(agents::enroll),
    },
    Endpoint {
        method: Method::Post,
        path: "/api/v1/agents/{agent}/events",
        auth: Auth::Agent,
        success: 200,
        body_limit: Some(catalog::events::MAX_BATCH_BYTES),
        handler: || post(events::post_events),
    },
    Endpoint {
        method: Method::Post,
        path: "/api/v1/agents/{agent}/checkin",
        auth: Auth::Agent,
        success: 200,
        body_limit: Some(checkin::MAX_CHECKIN_BYTES),
        handler: || post(checkin::check_in),
    },
];

impl Endpoint {
    /// The route's method router with its body limit and, for agent
    /// routes, the agent layer.
    pub(crate) fn method_router(&self, state: &Shared) -> MethodRouter<Shared> {
        let mut r = (self.handler)();
        if let Some(limit) = self.body_limit {
            r = r.layer(DefaultBodyLimit::max(limit));
        }
        if self.auth == Auth::Agent {
            r = r.route_layer(from_fn_with_state(
                Arc::clone(state),
                authz::authorize_agent,
            ));
        }
        r
    }
}

/// The body limit of the route matched as `path` (`None`: the default).
pub(crate) fn body_limit(path: &str) -> Option<usize> {
    ROUTES
        .iter()
        .find(|e| e.path == path)
        .and_then(|e| e.body_limit)
        .or_else(|| {
            super::api::TENANT_ROUTES
                .iter()
                .find(|r| r.path == path)
                .and_then(super::api::Route::body_limit)
        })
}

/// Every mounted `(method, path)`: [`ROUTES`] and the tenant table.
pub fn mounted() -> Vec<(Method, &'static str)> {
    ROUTES
        .iter()
        .map(|e| (e.method, e.path))
        .chain(super::api::TENANT_ROUTES.iter().map(|r| (r.method, r.path)))
        .collect()
}
