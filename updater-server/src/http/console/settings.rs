//! Settings: All Users' check-in interval, event retention, shared and
//! excluded accounts, and the enrollment token (rotated here and shown
//! once, with the installer parameters to copy).

use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use maud::html;
use serde::Deserialize;

use super::layout::{self, Ctx, Nav};
use super::signin::DoneQuery;
use super::{blocking, lines, refused, see_other, Answer, ConsoleError};
use crate::fleet::Settings;
use crate::http::fleet::fleet;
use crate::http::Shared;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SettingsForm {
    #[serde(default)]
    poll_minutes: String,
    #[serde(default)]
    retention_days: String,
    #[serde(default)]
    shared_accounts: String,
    #[serde(default)]
    excluded_accounts: String,
}

fn page(
    state: &Shared,
    ctx: &Ctx,
    base_url: &str,
    status: StatusCode,
    error: Option<&str>,
    done: Option<&str>,
    new_token: Option<&str>,
) -> Result<Response, ConsoleError> {
    let s = fleet(state).settings(&ctx.principal.tenant)?;
    let tenant = state.accounts.records().tenant(&ctx.principal.tenant)?;
    let token_issued = tenant
        .as_ref()
        .and_then(|t| t.enrollment_token.as_ref())
        .map(|e| e.issued_at);
    let body = html! {
        (layout::form_error(error))
        form.stack method="post" action="/console/settings" {
            (ctx.csrf_field())
            label { "All Users: check-in interval (minutes)" span.hint { "5 minutes to 7 days" }
                input name="poll_minutes" inputmode="numeric" required value=(s.all_users_poll_interval_secs / 60) disabled[!ctx.can_write()]; }
            label { "Keep events and update history (days)" span.hint { "empty: the server's default" }
                input name="retention_days" inputmode="numeric" value=(s.event_retention_days.map(|d| d.to_string()).unwrap_or_default()) disabled[!ctx.can_write()]; }
            label { "Shared accounts (one per line)" span.hint { "recorded as account@hostname: one user per workstation" }
                textarea name="shared_accounts" rows="3" disabled[!ctx.can_write()] { (s.shared_accounts.join("\n")) } }
            label { "Excluded accounts (one per line)" span.hint { "never recorded nor used for groups (service accounts)" }
                textarea name="excluded_accounts" rows="3" disabled[!ctx.can_write()] { (s.excluded_accounts.join("\n")) } }
            @if ctx.can_write() { button type="submit" { "Save settings" } }
        }
        h2 { "Enrolling agents" }
        p { "Tenant id: " code #tenant-id { (ctx.principal.tenant) } }
        p { @match token_issued {
            Some(at) => { "The enrollment token in use was issued " (layout::time(at)) "." }
            None => { "There is no enrollment token: no agent can enroll until one is issued." }
        } }
        @if let Some(token) = new_token {
            div.notice role="status" {
                p { "New enrollment token (the old one no longer works). Copy it now: it is not shown again. The installer parameters:" }
                pre.copy #installer { "update-agent enroll --server-url " (base_url) " --tenant-id " (ctx.principal.tenant) " --tenant-token " (token) }
            }
        }
        @if ctx.can_write() {
            form.inline method="post" action="/console/enrollment-token" data-confirm="Issue a new enrollment token? Installers carrying the old one stop working." {
                (ctx.csrf_field()) button.secondary type="submit" { "Issue a new enrollment token" } }
        }
    };
    Ok(layout::page_with_status(
        ctx,
        Nav::Settings,
        "Settings",
        done,
        status,
        body,
    ))
}

/// `GET /console/settings`.
pub(crate) async fn show(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<DoneQuery>,
    headers: HeaderMap,
) -> Answer {
    let base = super::base_url(&headers, state.console_secure_cookies);
    blocking(move || {
        page(
            &state,
            &ctx,
            &base,
            StatusCode::OK,
            None,
            q.done.as_deref(),
            None,
        )
    })
    .await
}

fn settings_of(f: &SettingsForm) -> Result<Settings, String> {
    let minutes: u64 =
        f.poll_minutes.trim().parse().map_err(|_| {
            "invalid check-in interval: must be a whole number of minutes".to_owned()
        })?;
    let retention = match f.retention_days.trim() {
        "" => None,
        d => Some(
            d.parse::<u32>()
                .map_err(|_| "invalid retention: must be a whole number of days".to_owned())?,
        ),
    };
    Ok(Settings {
        shared_accounts: lines(&f.shared_accounts),
        excluded_accounts: lines(&f.excluded_accounts),
        all_users_poll_interval_secs: minutes.saturating_mul(60),
        event_retention_days: retention,
    })
}

/// `POST /console/settings`.
pub(crate) async fn save(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    Form(f): Form<SettingsForm>,
) -> Answer {
    let base = super::base_url(&headers, state.console_secure_cookies);
    blocking(move || {
        let error = match settings_of(&f) {
            Ok(s) => match fleet(&state).set_settings(&ctx.principal.tenant, &s) {
                Ok(()) => return Ok(see_other("/console/settings", "settings-saved")),
                Err(e) => refused(e)?,
            },
            Err(why) => why,
        };
        page(
            &state,
            &ctx,
            &base,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(&error),
            None,
            None,
        )
    })
    .await
}

/// `POST /console/enrollment-token`: rotates it and shows the new one once.
pub(crate) async fn rotate_enrollment_token(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
) -> Answer {
    let base = super::base_url(&headers, state.console_secure_cookies);
    blocking(move || {
        let token = state
            .accounts
            .rotate_enrollment_token(&ctx.principal.tenant)?;
        page(
            &state,
            &ctx,
            &base,
            StatusCode::OK,
            None,
            None,
            Some(&token),
        )
    })
    .await
}
