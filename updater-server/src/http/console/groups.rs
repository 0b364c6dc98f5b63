//! Groups: the list with a create form (manual or LDAP), one group with its
//! members (add, remove, bulk from CSV) or its LDAP filter and the users
//! the server last saw in it.

use axum::extract::{Extension, Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{self, Ctx, Nav};
use super::signin::DoneQuery;
use super::{blocking, lines, refused, see_other, Answer};
use crate::fleet::{
    members_from_csv, DirectoryKind, Group, GroupInput, LdapServer, Membership, ALL_USERS,
};
use crate::http::fleet::fleet;
use crate::http::Shared;

/// The create form's fields.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct NewGroup {
    #[serde(default)]
    name: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    poll_minutes: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    members: String,
    #[serde(default)]
    filter: String,
    #[serde(default)]
    ldap_host: String,
    #[serde(default)]
    base_dn: String,
    #[serde(default)]
    directory: String,
}

fn poll_text(secs: u64) -> String {
    match secs {
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s => format!("{} min", s / 60),
    }
}

fn membership_text(m: &Membership) -> String {
    match m {
        Membership::Manual { members } => format!("manual, {} members", members.len()),
        Membership::Ldap { filter, .. } => format!("LDAP: {filter}"),
    }
}

fn list_page(
    ctx: &Ctx,
    groups: &[Group],
    all_users_poll: u64,
    form: &NewGroup,
    error: Option<&str>,
    done: Option<&str>,
) -> axum::response::Response {
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let body = html! {
        div.table-wrap { table #groups {
            thead { tr { th.num { "Priority" } th { "Group" } th { "Membership" } th { "Check-in every" } } }
            tbody {
                @for g in groups { tr {
                    td.num { (g.priority) }
                    td { a href=(format!("/console/groups/{}", g.id)) { (g.name) } }
                    td { (membership_text(&g.membership)) }
                    td { (poll_text(g.poll_interval_secs)) }
                } }
                tr { td.num { "last" } td { "All Users" } td { "everyone not in a group above" } td { (poll_text(all_users_poll)) } }
            }
        } }
        @if groups.is_empty() {
            p.muted { "Every user is in All Users. Create a group to give some users their own policies (a pilot group first, say)." }
        }
        @if ctx.can_write() {
            h2 { "Create a group" }
            (layout::form_error(error))
            (create_form(ctx, form))
        }
    };
    layout::page_with_status(ctx, Nav::Groups, "Groups", done, status, body)
}

fn create_form(ctx: &Ctx, f: &NewGroup) -> Markup {
    html! {
        form.stack method="post" action="/console/groups" {
            (ctx.csrf_field())
            label { "Name" input name="name" required maxlength="200" value=(f.name); }
            label { "Priority" span.hint { "1 is the highest; empty: after every existing group" }
                input name="priority" inputmode="numeric" value=(f.priority); }
            label { "Check-in interval (minutes)" span.hint { "5 minutes to 7 days; empty: 6 hours" }
                input name="poll_minutes" inputmode="numeric" value=(f.poll_minutes); }
            fieldset {
                legend { "Members" }
                label { input type="radio" name="kind" value="manual" checked[f.kind != "ldap"]; " Listed users" }
                label { "Users (one per line: account, or account@hostname)"
                    textarea name="members" rows="4" { (f.members) } }
                label { input type="radio" name="kind" value="ldap" checked[f.kind == "ldap"]; " Users matching an LDAP filter" }
                label { "LDAP filter" span.hint { "$user$ stands for the logged-in account, e.g. (&(sAMAccountName=$user$)(memberOf=CN=Sales,OU=Groups,DC=example,DC=com))" }
                    input name="filter" value=(f.filter); }
                label { "Directory server" span.hint { "empty: the agent finds it" } input name="ldap_host" value=(f.ldap_host); }
                label { "Search base" input name="base_dn" value=(f.base_dn); }
                label { "Directory" select name="directory" {
                    option value="active_directory" selected[f.directory != "open_ldap"] { "Active Directory" }
                    option value="open_ldap" selected[f.directory == "open_ldap"] { "OpenLDAP" }
                } }
            }
            button type="submit" { "Create group" }
        }
    }
}

/// `GET /console/groups`.
pub(crate) async fn list(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<DoneQuery>,
) -> Answer {
    blocking(move || {
        let f = fleet(&state);
        let groups = f.groups(&ctx.principal.tenant)?;
        let poll = f
            .settings(&ctx.principal.tenant)?
            .all_users_poll_interval_secs;
        Ok(list_page(
            &ctx,
            &groups,
            poll,
            &NewGroup::default(),
            None,
            q.done.as_deref(),
        ))
    })
    .await
}

fn number<T: std::str::FromStr>(field: &str, text: &str) -> Result<Option<T>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse()
        .map(Some)
        .map_err(|_| format!("invalid {field}: must be a whole number"))
}

fn input_of(f: &NewGroup) -> Result<GroupInput, String> {
    let membership = if f.kind == "ldap" {
        Membership::Ldap {
            filter: f.filter.trim().to_owned(),
            server: LdapServer {
                host: Some(f.ldap_host.trim().to_owned()).filter(|s| !s.is_empty()),
                base_dn: Some(f.base_dn.trim().to_owned()).filter(|s| !s.is_empty()),
                directory: if f.directory == "open_ldap" {
                    DirectoryKind::OpenLdap
                } else {
                    DirectoryKind::ActiveDirectory
                },
                ..LdapServer::default()
            },
        }
    } else {
        Membership::Manual {
            members: lines(&f.members),
        }
    };
    Ok(GroupInput {
        name: f.name.clone(),
        priority: number("priority", &f.priority)?,
        poll_interval_secs: number::<u64>("check-in interval", &f.poll_minutes)?
            .map(|m| m.saturating_mul(60)),
        membership,
    })
}

/// `POST /console/groups`.
pub(crate) async fn create(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<NewGroup>,
) -> Answer {
    blocking(move || {
        let f = fleet(&state);
        let tenant = &ctx.principal.tenant;
        let error = match input_of(&form) {
            Ok(input) => match f.create_group(tenant, &input) {
                Ok(g) => {
                    return Ok(see_other(
                        &format!("/console/groups/{}", g.id),
                        "group-created",
                    ))
                }
                Err(e) => refused(e)?,
            },
            Err(why) => why,
        };
        let groups = f.groups(tenant)?;
        let poll = f.settings(tenant)?.all_users_poll_interval_secs;
        Ok(list_page(&ctx, &groups, poll, &form, Some(&error), None))
    })
    .await
}

fn group_page(
    state: &Shared,
    ctx: &Ctx,
    id: &str,
    error: Option<&str>,
    done: Option<&str>,
) -> Answer {
    let f = fleet(state);
    let tenant = &ctx.principal.tenant;
    let id = f.group_id(tenant, id)?;
    let g = f
        .groups(tenant)?
        .into_iter()
        .find(|g| g.id == id)
        .ok_or(super::ConsoleError::NotFound)?;
    let store = state.accounts.store();
    let hosts = crate::fleet::inventory::hosts(store, tenant)?;
    let users = crate::fleet::inventory::users(store, tenant)?;
    // Where the server can tell: the users of hosts whose last check-in
    // put them in this group.
    let mut seen: Vec<&str> = users
        .iter()
        .filter(|u| {
            u.hosts
                .iter()
                .any(|h| hosts.iter().any(|x| x.id == *h && x.group == g.id))
        })
        .map(|u| u.name.as_str())
        .collect();
    seen.sort_unstable();
    let body = html! {
        p { "Priority " (g.priority) " · check-in every " (poll_text(g.poll_interval_secs)) }
        (layout::form_error(error))
        @match &g.membership {
            Membership::Manual { members } => {
                h2 { "Members (" (members.len()) ")" }
                @if members.is_empty() { p.muted { "No member yet." } } @else {
                    ul #members { @for m in members { li { (m) } } }
                }
                @if ctx.can_write() {
                    form.stack method="post" action=(format!("/console/groups/{}/members", g.id)) {
                        (ctx.csrf_field())
                        label { "Add users (one per line)" textarea name="add" rows="3" {} }
                        label { "Remove users (one per line)" textarea name="remove" rows="2" {} }
                        label { "Add from CSV" span.hint { "paste a CSV whose first column is the account" }
                            textarea name="csv" rows="3" {} }
                        button type="submit" { "Change members" }
                    }
                }
            }
            Membership::Ldap { filter, server } => {
                h2 { "LDAP filter" }
                p { code { (filter) } }
                p.muted { "Server: " (server.host.as_deref().unwrap_or("found by the agent"))
                    " · base: " (server.base_dn.as_deref().unwrap_or("the directory's default")) }
                h2 { "Users the server last saw in this group (" (seen.len()) ")" }
                p.muted { "Agents evaluate the filter against the directory at each check-in; the server knows a user's group from their host's last check-in." }
                @if seen.is_empty() { p.muted { "None yet." } } @else { ul #ldap-preview { @for u in &seen { li { (u) } } } }
            }
        }
        @if ctx.can_write() {
            h2 { "Delete" }
            form.inline method="post" action=(format!("/console/groups/{}/delete", g.id)) data-confirm=(format!("Delete the group {}?", g.name)) {
                (ctx.csrf_field())
                button.danger type="submit" { "Delete group" }
            }
        }
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(layout::page_with_status(
        ctx,
        Nav::Groups,
        &g.name,
        done,
        status,
        body,
    ))
}

/// `GET /console/groups/{id}`.
pub(crate) async fn show(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<DoneQuery>,
) -> Answer {
    if id == ALL_USERS {
        return Ok(axum::response::Redirect::to("/console/groups").into_response());
    }
    blocking(move || group_page(&state, &ctx, &id, None, q.done.as_deref())).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct MemberEdit {
    #[serde(default)]
    add: String,
    #[serde(default)]
    remove: String,
    #[serde(default)]
    csv: String,
}

/// `POST /console/groups/{id}/members`.
pub(crate) async fn edit_members(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    UrlPath(id): UrlPath<String>,
    Form(form): Form<MemberEdit>,
) -> Answer {
    blocking(move || {
        let mut add = lines(&form.add);
        let error = match members_from_csv(form.csv.as_bytes()) {
            Ok(from_csv) => {
                add.extend(from_csv);
                match fleet(&state).edit_members(
                    &ctx.principal.tenant,
                    &id,
                    &add,
                    &lines(&form.remove),
                ) {
                    Ok(g) => {
                        return Ok(see_other(
                            &format!("/console/groups/{}", g.id),
                            "members-changed",
                        ))
                    }
                    Err(e) => refused(e)?,
                }
            }
            Err(e) => refused(e)?,
        };
        group_page(&state, &ctx, &id, Some(&error), None)
    })
    .await
}

/// `POST /console/groups/{id}/delete`.
pub(crate) async fn delete(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    UrlPath(id): UrlPath<String>,
) -> Answer {
    blocking(
        move || match fleet(&state).delete_group(&ctx.principal.tenant, &id) {
            Ok(()) => Ok(see_other("/console/groups", "group-deleted")),
            Err(e) => {
                let why = refused(e)?;
                group_page(&state, &ctx, &id, Some(&why), None)
            }
        },
    )
    .await
}
