//! The page shell: navigation, the signed-in admin, notices; and the small
//! pieces every page uses (forms with their CSRF field, empty states).

use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup, DOCTYPE};

use super::{html as respond, is_admin, session};
use crate::auth::{Principal, PrincipalKind};
use crate::store::Role;

use super::super::Shared;

/// Who is looking at the page, and the session's CSRF token.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// The principal the API would see for the same session.
    pub(crate) principal: Principal,
    /// The CSRF token for this session's forms.
    pub(crate) csrf: String,
    /// The tenant's name.
    pub(crate) tenant_name: String,
    /// The admin's e-mail.
    pub(crate) email: String,
}

impl Ctx {
    /// The context of a session token; `None` when the token is not a live
    /// admin session.
    pub(crate) fn load(state: &Shared, token: &str) -> Result<Option<Ctx>, String> {
        let principal = match state.accounts.authenticate(token) {
            Ok(p) if is_admin(&p) => p,
            Ok(_) | Err(crate::auth::AccountError::InvalidCredentials) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let records = state.accounts.records();
        let tenant_name = records
            .tenant(&principal.tenant)
            .map_err(|e| e.to_string())?
            .map(|t| t.name)
            .unwrap_or_default();
        let email = match &principal.kind {
            PrincipalKind::Admin { admin_id, .. } => records
                .admin(&principal.tenant, admin_id)
                .map_err(|e| e.to_string())?
                .map(|a| a.email)
                .unwrap_or_default(),
            PrincipalKind::ApiToken { .. } => String::new(),
        };
        Ok(Some(Ctx {
            csrf: session::csrf_token(token),
            principal,
            tenant_name,
            email,
        }))
    }

    /// Whether write controls are shown (the server checks again on POST).
    pub(crate) fn can_write(&self) -> bool {
        self.principal.can_write()
    }

    /// Whether admin and token controls are shown.
    pub(crate) fn is_full_admin(&self) -> bool {
        self.principal.is_full_admin()
    }

    fn role(&self) -> &'static str {
        match &self.principal.kind {
            PrincipalKind::Admin {
                role: Role::Full, ..
            } => "full admin",
            _ => "read-only admin",
        }
    }

    /// The hidden CSRF field every form carries.
    pub(crate) fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }

    /// A one-button form posting to `action` (delete, pause, copy…).
    pub(crate) fn button_form(&self, action: &str, label: &str, class: &str) -> Markup {
        html! {
            form.inline method="post" action=(action) {
                (self.csrf_field())
                button type="submit" class=(class) { (label) }
            }
        }
    }
}

/// The sections of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Home,
    Devices,
    Hosts,
    Users,
    Groups,
    Policies,
    Rollouts,
    Catalog,
    Reports,
    Admins,
    Settings,
    Account,
}

const NAV: &[(Nav, &str, &str)] = &[
    (Nav::Home, "/console", "Home"),
    (Nav::Devices, "/console/devices", "Devices"),
    (Nav::Hosts, "/console/hosts", "Hosts"),
    (Nav::Users, "/console/users", "Users"),
    (Nav::Groups, "/console/groups", "Groups"),
    (Nav::Policies, "/console/policies", "Policies"),
    (Nav::Rollouts, "/console/rollouts", "Rollouts"),
    (Nav::Catalog, "/console/catalog", "Catalog"),
    (Nav::Reports, "/console/reports", "Reports"),
    (Nav::Admins, "/console/admins", "Admins & tokens"),
    (Nav::Settings, "/console/settings", "Settings"),
];

/// The notices a change redirects with (`?done=`); anything else shows
/// nothing, so a link cannot put words on the page.
pub(crate) const NOTICES: &[(&str, &str)] = &[
    ("group-created", "Group created."),
    ("group-deleted", "Group deleted."),
    ("members-changed", "Members changed."),
    ("policy-saved", "Policy saved."),
    (
        "policy-copied",
        "Policy copied; the copy is disabled until you enable it.",
    ),
    ("policy-deleted", "Policy deleted."),
    ("policy-enabled", "Policy enabled."),
    ("policy-disabled", "Policy disabled."),
    ("rollout-created", "Rollout created."),
    ("rollout-pause", "Rollout paused."),
    ("rollout-resume", "Rollout resumed."),
    ("rollout-approve", "Wave approved."),
    ("rollout-cancel", "Rollout cancelled."),
    ("rollout-delete", "Rollout deleted."),
    ("admin-created", "Admin created."),
    ("admin-deleted", "Admin deleted."),
    ("token-revoked", "API token revoked."),
    ("settings-saved", "Settings saved."),
    ("password-changed", "Password changed."),
    ("uploaded", "Release imported."),
];

fn notice(done: Option<&str>) -> Option<&'static str> {
    let done = done?;
    NOTICES.iter().find(|(k, _)| *k == done).map(|(_, v)| *v)
}

/// A page inside the shell, answered 200.
pub(crate) fn page(ctx: &Ctx, nav: Nav, title: &str, done: Option<&str>, body: Markup) -> Response {
    page_with_status(ctx, nav, title, done, StatusCode::OK, body)
}

/// A page inside the shell with another status (a form refused: 422).
pub(crate) fn page_with_status(
    ctx: &Ctx,
    nav: Nav,
    title: &str,
    done: Option<&str>,
    status: StatusCode,
    body: Markup,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/console" { "Updater" }
                    span.tenant { (ctx.tenant_name) }
                    nav aria-label="Account" {
                        span.who { (ctx.email) " · " (ctx.role()) }
                        a href="/console/password" aria-current=[(nav == Nav::Account).then_some("page")] { "Change password" }
                        form.inline method="post" action="/console/signout" {
                            (ctx.csrf_field())
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                div.shell {
                    nav.side aria-label="Sections" {
                        ul {
                            @for (n, href, label) in NAV {
                                li { a href=(href) aria-current=[(*n == nav).then_some("page")] { (label) } }
                            }
                        }
                    }
                    main #main {
                        h1 { (title) }
                        @if let Some(text) = notice(done) {
                            p.notice role="status" { (text) }
                        }
                        (body)
                    }
                }
            }
        }
    };
    respond(status, markup)
}

/// The `<head>`: title, viewport, the stylesheet and the script.
pub(crate) fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Updater console" }
            link rel="icon" href=(super::assets::ICON_URL) type="image/svg+xml";
            link rel="stylesheet" href=(super::assets::CSS_URL);
            script src=(super::assets::JS_URL) defer {}
        }
    }
}

/// A bare page (signed out, or an error before the shell can be drawn).
pub(crate) fn bare(status: StatusCode, title: &str, body: Markup) -> Response {
    respond(
        status,
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body.bare {
                    main #main {
                        h1 { (title) }
                        (body)
                    }
                }
            }
        },
    )
}

/// A refusal (403, 404, 401…) with its reason and a way back.
pub(crate) fn refusal(status: StatusCode, why: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Refused");
    bare(
        status,
        title,
        html! {
            p.error role="alert" { (why) }
            p { a href="/console" { "Back to the console" } }
        },
    )
}

/// A failure of the server's own: logged, shown without details.
pub(crate) fn internal_error(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console request failed");
    refusal(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the server could not complete this request; the details are in its log",
    )
}

/// An error message above a form.
pub(crate) fn form_error(message: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = message {
            p.error role="alert" { (m) }
        }
    }
}

/// What a new tenant sees where a list is empty: what to do next.
pub(crate) fn empty(text: &str, next: Markup) -> Markup {
    html! {
        div.empty {
            p { (text) }
            (next)
        }
    }
}

/// The page of `rows` rows to show (the requested one, kept within the
/// pages there are) and how many pages there are.
pub(crate) fn page_of(rows: usize, requested: Option<usize>, page_size: usize) -> (usize, usize) {
    let pages = rows.div_ceil(page_size);
    (requested.unwrap_or(1).clamp(1, pages.max(1)), pages)
}

/// A pager: previous / next links keeping the other query parameters.
pub(crate) fn pager(base: &str, query: &[(&str, String)], page: usize, pages: usize) -> Markup {
    let link = |p: usize| {
        let mut q: Vec<(&str, String)> = query
            .iter()
            .filter(|(k, v)| *k != "page" && !v.is_empty())
            .cloned()
            .collect();
        q.push(("page", p.to_string()));
        format!(
            "{base}?{}",
            serde_urlencoded::to_string(&q).unwrap_or_default()
        )
    };
    html! {
        nav.pager aria-label="Pages" {
            @if page > 1 { a rel="prev" href=(link(page - 1)) { "← Previous" } }
            span { "Page " (page) " of " (pages.max(1)) }
            @if page < pages { a rel="next" href=(link(page + 1)) { "Next →" } }
        }
    }
}

/// Text for a time: `2026-12-02 03:14 UTC`.
pub(crate) fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}
