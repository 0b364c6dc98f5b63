//! Admins and API tokens: lists for everyone; create, delete and revoke for
//! full admins. A new token is shown once, on the page that answers its
//! creation.

use axum::extract::{Extension, Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{self, Ctx, Nav};
use super::signin::DoneQuery;
use super::{blocking, see_other, Answer, ConsoleError};
use crate::auth::{AccountError, PrincipalKind};
use crate::http::Shared;
use crate::store::{ApiTokenScope, Role};

fn page(
    state: &Shared,
    ctx: &Ctx,
    status: StatusCode,
    error: Option<&str>,
    done: Option<&str>,
    new_token: Option<(&str, &str)>,
) -> Result<Response, ConsoleError> {
    let records = state.accounts.records();
    let admins = records.admins(&ctx.principal.tenant)?;
    let tokens = records.api_tokens(&ctx.principal.tenant)?;
    let me = match &ctx.principal.kind {
        PrincipalKind::Admin { admin_id, .. } => admin_id.as_str(),
        PrincipalKind::ApiToken { .. } => "",
    };
    let body = html! {
        (layout::form_error(error))
        @if let Some((name, token)) = new_token {
            div.notice role="status" {
                p { "API token " strong { (name) } " created. Copy it now: it is not shown again." }
                pre.copy #new-token { (token) }
            }
        }
        h2 { "Admins" }
        div.table-wrap { table #admins {
            thead { tr { th { "E-mail" } th { "Role" } th { "Created" } @if ctx.is_full_admin() { th { "Actions" } } } }
            tbody { @for a in &admins { tr {
                td { (a.email) @if a.primary { " (primary)" } @if a.id == me { " (you)" } }
                td { (role_text(a.role)) }
                td { (layout::time(a.created_at)) }
                @if ctx.is_full_admin() { td {
                    @if a.id != me && !a.primary {
                        form.inline method="post" action=(format!("/console/admins/{}/delete", a.id)) data-confirm=(format!("Delete the admin {}?", a.email)) {
                            (ctx.csrf_field()) button.danger type="submit" { "Delete" } }
                    }
                } }
            } } }
        } }
        @if ctx.is_full_admin() { (admin_form(ctx)) }
        h2 { "API tokens" }
        @if tokens.is_empty() { p.muted { "No API token. Partner applications use one to read or change this tenant's data." } } @else {
            div.table-wrap { table #tokens {
                thead { tr { th { "Name" } th { "Scope" } th { "Created" } th { "State" } @if ctx.is_full_admin() { th { "Actions" } } } }
                tbody { @for t in &tokens { tr {
                    td { (t.name) } td { (if t.scope == ApiTokenScope::Full { "full" } else { "read" }) }
                    td { (layout::time(t.created_at)) }
                    td { @if let Some(at) = t.revoked_at { "revoked " (layout::time(at)) } @else { "active" } }
                    @if ctx.is_full_admin() { td { @if t.revoked_at.is_none() {
                        form.inline method="post" action=(format!("/console/api-tokens/{}/revoke", t.id)) data-confirm=(format!("Revoke the token {}?", t.name)) {
                            (ctx.csrf_field()) button.danger type="submit" { "Revoke" } }
                    } } }
                } } }
            } }
        }
        @if ctx.is_full_admin() { (token_form(ctx)) }
    };
    Ok(layout::page_with_status(
        ctx,
        Nav::Admins,
        "Admins & API tokens",
        done,
        status,
        body,
    ))
}

fn role_text(r: Role) -> &'static str {
    match r {
        Role::Full => "full admin",
        Role::ReadOnly => "read-only",
    }
}

fn admin_form(ctx: &Ctx) -> Markup {
    html! {
        h3 { "Add an admin" }
        form.stack method="post" action="/console/admins" {
            (ctx.csrf_field())
            label { "E-mail" input name="email" type="email" required; }
            label { "Role" select name="role" {
                option value="read-only" { "Read-only: sees everything, changes nothing" }
                option value="full" { "Full: changes everything in this tenant" }
            } }
            label { "Initial password" span.hint { "at least 12 characters; tell them to change it" }
                input name="password" type="password" required minlength="12" autocomplete="new-password"; }
            button type="submit" { "Add admin" }
        }
    }
}

fn token_form(ctx: &Ctx) -> Markup {
    html! {
        h3 { "Create an API token" }
        form.stack method="post" action="/console/api-tokens" {
            (ctx.csrf_field())
            label { "Name" input name="name" required maxlength="200"; }
            label { "Scope" select name="scope" {
                option value="read" { "Read" } option value="full" { "Full" }
            } }
            button type="submit" { "Create token" }
        }
    }
}

/// `GET /console/admins`.
pub(crate) async fn list(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<DoneQuery>,
) -> Answer {
    blocking(move || page(&state, &ctx, StatusCode::OK, None, q.done.as_deref(), None)).await
}

/// Words for a refused account change; other failures stay errors.
fn account_refusal(e: AccountError) -> Result<String, ConsoleError> {
    match e {
        AccountError::EmailTaken(_)
        | AccountError::PrimaryExists
        | AccountError::Invalid { .. }
        | AccountError::NotAnAdmin => Ok(e.to_string()),
        AccountError::NotFound => Err(ConsoleError::NotFound),
        other => Err(other.into()),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewAdmin {
    email: String,
    role: String,
    password: String,
}

/// `POST /console/admins`.
pub(crate) async fn create(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<NewAdmin>,
) -> Answer {
    blocking(move || {
        let role = if f.role == "full" {
            Role::Full
        } else {
            Role::ReadOnly
        };
        match state
            .accounts
            .create_admin(&ctx.principal.tenant, &f.email, role, false, &f.password)
        {
            Ok(_) => Ok(see_other("/console/admins", "admin-created")),
            Err(e) => page(
                &state,
                &ctx,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&account_refusal(e)?),
                None,
                None,
            ),
        }
    })
    .await
}

/// `POST /console/admins/{id}/delete`.
pub(crate) async fn delete(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    UrlPath(id): UrlPath<String>,
) -> Answer {
    blocking(
        move || match state.accounts.delete_admin(&ctx.principal.tenant, &id) {
            Ok(()) => Ok(see_other("/console/admins", "admin-deleted")),
            Err(e) => page(
                &state,
                &ctx,
                StatusCode::CONFLICT,
                Some(&account_refusal(e)?),
                None,
                None,
            ),
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewToken {
    name: String,
    scope: String,
}

/// `POST /console/api-tokens`: the page again, with the token shown once.
pub(crate) async fn create_token(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<NewToken>,
) -> Answer {
    blocking(move || {
        let PrincipalKind::Admin { admin_id, .. } = &ctx.principal.kind else {
            return Err(ConsoleError::Internal("token without admin".into()));
        };
        let scope = if f.scope == "full" {
            ApiTokenScope::Full
        } else {
            ApiTokenScope::Read
        };
        match state
            .accounts
            .create_api_token(&ctx.principal.tenant, &f.name, scope, admin_id)
        {
            Ok((record, token)) => page(
                &state,
                &ctx,
                StatusCode::CREATED,
                None,
                None,
                Some((&record.name, &token)),
            ),
            Err(e) => page(
                &state,
                &ctx,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&account_refusal(e)?),
                None,
                None,
            ),
        }
    })
    .await
}

/// `POST /console/api-tokens/{id}/revoke`.
pub(crate) async fn revoke_token(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    UrlPath(id): UrlPath<String>,
) -> Answer {
    blocking(move || {
        state
            .accounts
            .revoke_api_token(&ctx.principal.tenant, &id)
            .map_err(|e| match e {
                AccountError::NotFound => ConsoleError::NotFound,
                other => other.into(),
            })?;
        Ok(see_other("/console/admins", "token-revoked"))
    })
    .await
}
