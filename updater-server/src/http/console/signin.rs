//! Sign in (tenant by name or id), sign out, and an admin's own password.
//! Sign-in goes through the API's login ([`crate::auth::Accounts::login`]):
//! the same throttle, the same session, the same words when refused.

use axum::extract::{Extension, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

use super::layout::{self, Ctx, Nav};
use super::{blocking, see_other, session, Answer, ConsoleError};
use crate::auth::AccountError;
use crate::http::authz::WRONG_CREDENTIALS;
use crate::http::Shared;

#[derive(Debug, Deserialize)]
pub(crate) struct SignInQuery {
    next: Option<String>,
    done: Option<String>,
}

fn sign_in_page(
    status: StatusCode,
    tenant: &str,
    email: &str,
    next: &str,
    error: Option<&str>,
    notice: Option<&str>,
) -> Response {
    layout::bare(
        status,
        "Sign in",
        html! {
            @if let Some(n) = notice { p.notice role="status" { (n) } }
            (layout::form_error(error))
            form.stack method="post" action="/console/signin" {
                input type="hidden" name="next" value=(next);
                label {
                    "Tenant"
                    span.hint { "Your organisation's name, or its 16-character id" }
                    input name="tenant" required autocomplete="organization" value=(tenant);
                }
                label {
                    "E-mail"
                    input name="email" type="email" required autocomplete="username" value=(email);
                }
                label {
                    "Password"
                    input name="password" type="password" required autocomplete="current-password";
                }
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// `GET /console/signin`.
pub(crate) async fn form(Query(q): Query<SignInQuery>) -> Response {
    let next = session::safe_next(q.next.as_deref());
    let notice = (q.done.as_deref() == Some("signed-out")).then_some("You are signed out.");
    sign_in_page(StatusCode::OK, "", "", next, None, notice)
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignIn {
    tenant: String,
    email: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /console/signin`: the session cookie and a redirect, or the form
/// again with the API's message (401 wrong credentials, 429 throttled).
pub(crate) async fn submit(
    State(state): State<Shared>,
    crate::http::authz::ClientAddr(source): crate::http::authz::ClientAddr,
    Form(f): Form<SignIn>,
) -> Response {
    let secure = state.console_secure_cookies;
    let typed_tenant = f.tenant.clone();
    let email = f.email.clone();
    let next = session::safe_next(f.next.as_deref()).to_owned();
    let result = tokio::task::spawn_blocking(move || {
        let tenant = state
            .accounts
            .tenant_id_for(&f.tenant)?
            .unwrap_or_else(|| f.tenant.trim().to_owned());
        state.accounts.login(source, &tenant, &f.email, &f.password)
    })
    .await;
    let refused =
        |status, why: &str| sign_in_page(status, &typed_tenant, &email, &next, Some(why), None);
    match result {
        Ok(Ok((_, token))) => {
            let mut r = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&token, secure)) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Ok(Err(AccountError::InvalidCredentials)) => {
            refused(StatusCode::UNAUTHORIZED, WRONG_CREDENTIALS)
        }
        Ok(Err(e @ AccountError::TooManyAttempts { .. })) => {
            refused(StatusCode::TOO_MANY_REQUESTS, &e.to_string())
        }
        Ok(Err(e @ AccountError::Busy { .. })) => {
            refused(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
        }
        Ok(Err(e)) => layout::internal_error(&e),
        Err(e) => layout::internal_error(&e),
    }
}

/// `POST /console/signout`: ends the session (the API's logout) and clears
/// the cookie.
pub(crate) async fn sign_out(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
) -> Answer {
    blocking(move || {
        state.accounts.logout(&ctx.principal)?;
        let mut r = Redirect::to("/console/signin?done=signed-out").into_response();
        r.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_static(session::CLEAR_COOKIE),
        );
        Ok(r)
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct DoneQuery {
    pub(crate) done: Option<String>,
}

fn password_page(
    ctx: &Ctx,
    status: StatusCode,
    error: Option<&str>,
    done: Option<&str>,
) -> Response {
    layout::page_with_status(
        ctx,
        Nav::Account,
        "Change your password",
        done,
        status,
        html! {
            (layout::form_error(error))
            form.stack method="post" action="/console/password" {
                (ctx.csrf_field())
                label { "Current password"
                    input name="current_password" type="password" required autocomplete="current-password"; }
                label { "New password"
                    span.hint { "Your other sessions end when it changes." }
                    input name="new_password" type="password" required minlength="12" autocomplete="new-password"; }
                button type="submit" { "Change password" }
            }
        },
    )
}

/// `GET /console/password`.
pub(crate) async fn password_form(
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<DoneQuery>,
) -> Response {
    password_page(&ctx, StatusCode::OK, None, q.done.as_deref())
}

#[derive(Debug, Deserialize)]
pub(crate) struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `POST /console/password`.
pub(crate) async fn change_password(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<PasswordChange>,
) -> Answer {
    blocking(move || {
        let result = state.accounts.change_own_password(
            &ctx.principal,
            &f.current_password,
            &f.new_password,
        );
        let why = match result {
            Ok(()) => return Ok(see_other("/console/password", "password-changed")),
            Err(AccountError::InvalidCredentials) => "the current password is wrong".to_owned(),
            Err(e @ (AccountError::Invalid { .. } | AccountError::TooManyAttempts { .. })) => {
                e.to_string()
            }
            Err(e) => return Err(ConsoleError::from(e)),
        };
        Ok(password_page(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(&why),
            None,
        ))
    })
    .await
}
