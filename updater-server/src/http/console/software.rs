//! Software policies (which agent version each platform runs) on the
//! policies page: the list with enable, disable and delete, and a create
//! form, through the same service and checks as the API.

use axum::extract::{Extension, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;

use super::forms::from_body;
use super::layout::{self, Ctx};
use super::{blocking, changed, refused, see_other, Answer, ConsoleError};
use crate::fleet::{Group, SoftwarePolicy, SoftwarePolicyInput};
use crate::http::fleet::fleet;
use crate::http::Shared;

/// The section of the policies page.
pub(crate) fn section(ctx: &Ctx, policies: &[SoftwarePolicy], groups: &[Group]) -> Markup {
    let group_name = |id: Option<&String>| {
        id.and_then(|id| groups.iter().find(|g| g.id == *id))
            .map_or_else(|| "All Users".to_owned(), |g| g.name.clone())
    };
    html! {
        h2 #software { "Agent software policies" }
        p.muted { "Which agent version each platform runs; an agent newer than the policy is never downgraded." }
        @if policies.is_empty() { p.muted { "No software policy: agents keep the version they run." } } @else {
            div.table-wrap { table #software-policies {
                thead { tr { th { "Policy" } th { "Platform" } th { "Group" } th { "Version" } th { "Deployment" } th { "State" } @if ctx.can_write() { th { "Actions" } } } }
                tbody { @for p in policies { tr {
                    td { (p.spec.name) } td { (p.spec.platform) } td { (group_name(p.spec.group.as_ref())) }
                    td { (p.spec.version.to_string()) } td { (format!("{:?}", p.spec.deployment).to_lowercase()) }
                    td { @if p.spec.enabled { "enabled" } @else { span.muted { "disabled" } } }
                    @if ctx.can_write() { td {
                        (ctx.button_form(&format!("/console/software-policies/{}/enabled", p.id), if p.spec.enabled { "Disable" } else { "Enable" }, "secondary"))
                        " " form.inline method="post" action=(format!("/console/software-policies/{}/delete", p.id)) data-confirm=(format!("Delete the policy {}?", p.spec.name)) {
                            (ctx.csrf_field()) button.danger type="submit" { "Delete" } }
                    } }
                } } }
            } }
        }
        @if ctx.can_write() {
            h3 { "New software policy" }
            form.stack method="post" action="/console/software-policies" {
                (ctx.csrf_field())
                label { "Name" input name="name" required maxlength="200"; }
                label { "Platform" select name="platform" {
                    option value="windows" { "Windows" } option value="macos" { "macOS" } option value="linux" { "Linux" }
                } }
                label { "Group" select name="group" {
                    option value="" { "All Users" }
                    @for g in groups { option value=(g.id) { (g.name) } }
                } }
                label { "Agent version" span.hint { "latest, or a version to pin" } input name="version" required value="latest"; }
                label { "Deployment type" select name="deployment" {
                    @for (value, label, _) in super::policies::DEPLOYMENTS.iter().filter(|d| d.0 != "silent") {
                        option value=(value) { (label) }
                    }
                } }
                button type="submit" { "Create software policy" }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct NewSoftwarePolicy {
    #[serde(default)]
    name: String,
    #[serde(default)]
    platform: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    deployment: String,
}

/// `POST /console/software-policies`.
pub(crate) async fn create(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<NewSoftwarePolicy>,
) -> Answer {
    blocking(move || {
        let mut body = json!({
            "name": f.name.trim(), "platform": f.platform, "version": f.version.trim(),
            "deployment": f.deployment,
        });
        if !f.group.is_empty() {
            body["group"] = json!(f.group);
        }
        let input: Result<SoftwarePolicyInput, String> = from_body(body);
        let why = match input {
            Ok(input) => {
                match fleet(&state).put_software_policy(&ctx.principal.tenant, None, input) {
                    Ok(_) => return Ok(see_other("/console/policies", "policy-saved")),
                    Err(e) => refused(e)?,
                }
            }
            Err(why) => why,
        };
        Ok(layout::refusal(StatusCode::UNPROCESSABLE_ENTITY, &why))
    })
    .await
}

/// `POST /console/software-policies/{id}/enabled`: flips enabled.
pub(crate) async fn set_enabled(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    UrlPath(id): UrlPath<String>,
) -> Answer {
    blocking(move || {
        let f = fleet(&state);
        let tenant = &ctx.principal.tenant;
        let p = f
            .software_policies(tenant)?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or(ConsoleError::NotFound)?;
        let mut spec = p.spec;
        spec.enabled = !spec.enabled;
        let notice = if spec.enabled {
            "policy-enabled"
        } else {
            "policy-disabled"
        };
        changed(
            f.put_software_policy(tenant, Some(&id), spec),
            "/console/policies",
            notice,
        )
    })
    .await
}

/// `POST /console/software-policies/{id}/delete`.
pub(crate) async fn delete(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    UrlPath(id): UrlPath<String>,
) -> Answer {
    blocking(move || {
        changed(
            fleet(&state).delete_software_policy(&ctx.principal.tenant, &id),
            "/console/policies",
            "policy-deleted",
        )
    })
    .await
}
