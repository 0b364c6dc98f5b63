//! Firmware policies: the list (enable, disable, copy, delete) and the
//! editor, whose maintenance-window preview lists the next openings in the
//! chosen zone and calls out clock changes before the policy is saved.
//!
//! The form becomes the API's JSON body and is read by the same
//! deserializer and checks ([`crate::fleet::Fleet::put_firmware_policy`]).

use axum::extract::{Extension, Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use catalog::window::{MaintenanceWindow, Occurrence};
use chrono::{DateTime, Offset, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

use super::forms::{from_body, WindowFields};
use super::layout::{self, Ctx, Nav};
use super::signin::DoneQuery;
use super::{blocking, changed, refused, see_other, Answer, ConsoleError};
use crate::fleet::{FirmwarePolicy, FirmwarePolicyInput, Group};
use crate::http::fleet::fleet;
use crate::http::Shared;

/// Deployment types with their one-line explanation.
pub(crate) const DEPLOYMENTS: &[(&str, &str, &str)] = &[
    (
        "optional",
        "Optional",
        "The user is told an update exists and installs it when they choose.",
    ),
    (
        "persistent",
        "Persistent",
        "The user is asked until they install; they may defer a limited number of times.",
    ),
    (
        "automatic",
        "Automatic",
        "Installed without asking as soon as the device is idle; the user sees a notice.",
    ),
    (
        "silent",
        "Silent",
        "Installed without any prompt, only inside the maintenance window.",
    ),
];

/// Zones offered in the editor's list (any IANA zone may be typed).
const ZONES: &[&str] = &[
    "UTC",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Amsterdam",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Europe/Helsinki",
    "Europe/Athens",
    "Europe/Istanbul",
    "Europe/Moscow",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
    "America/Sao_Paulo",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
];

/// The editor's fields, as the browser sends them.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct PolicyForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    deployment: String,
    #[serde(flatten)]
    window: WindowFields,
    #[serde(default)]
    source: String,
    #[serde(default)]
    source_location: String,
    #[serde(default)]
    max_deferrals: String,
    #[serde(default)]
    fallback_to_server: Option<String>,
    #[serde(default)]
    multi_piece_guard: Option<String>,
    #[serde(default)]
    allow_downgrade: Option<String>,
    #[serde(default)]
    enabled: Option<String>,
    /// The day the preview starts (`YYYY-MM-DD`, UTC); empty: now.
    #[serde(default)]
    preview_from: String,
}

impl PolicyForm {
    fn of(p: &FirmwarePolicy) -> Self {
        let spec = serde_json::to_value(&p.spec).unwrap_or(Value::Null);
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let source = &spec["source"];
        let on = |v: bool| v.then(|| "on".to_owned());
        PolicyForm {
            id: p.id.clone(),
            name: p.spec.name.clone(),
            model: text(&spec["model"]),
            group: p.spec.group.clone().unwrap_or_default(),
            version: text(&spec["version"]),
            deployment: text(&spec["deployment"]),
            window: WindowFields::of(&spec["window"]),
            source: text(&source["kind"]),
            source_location: text(if source["path"].is_null() {
                &source["url"]
            } else {
                &source["path"]
            }),
            max_deferrals: text(&spec["max_deferrals"]),
            fallback_to_server: on(p.spec.fallback_to_server),
            multi_piece_guard: on(p.spec.multi_piece_guard),
            allow_downgrade: on(p.spec.allow_downgrade),
            enabled: on(p.spec.enabled),
            preview_from: String::new(),
        }
    }

    fn fresh() -> Self {
        PolicyForm {
            version: "latest".into(),
            deployment: "optional".into(),
            source: "server".into(),
            fallback_to_server: Some("on".into()),
            multi_piece_guard: Some("on".into()),
            enabled: Some("on".into()),
            ..Default::default()
        }
    }

    fn has_window(&self) -> bool {
        self.window.is_set()
    }

    /// The API body this form stands for.
    fn body(&self) -> Result<Value, String> {
        let mut v = json!({
            "name": self.name.trim(),
            "model": self.model.trim(),
            "version": self.version.trim(),
            "deployment": self.deployment,
            "fallback_to_server": self.fallback_to_server.is_some(),
            "multi_piece_guard": self.multi_piece_guard.is_some(),
            "allow_downgrade": self.allow_downgrade.is_some(),
            "enabled": self.enabled.is_some(),
        });
        if !self.group.is_empty() && self.group != crate::fleet::ALL_USERS {
            v["group"] = json!(self.group);
        }
        if self.has_window() {
            v["window"] = self.window.body()?;
        }
        v["source"] = match self.source.as_str() {
            "share" => json!({"kind": "share", "path": self.source_location.trim()}),
            "web" => json!({"kind": "web", "url": self.source_location.trim()}),
            _ => json!({"kind": "server"}),
        };
        if !self.max_deferrals.trim().is_empty() {
            let n: u32 = self
                .max_deferrals
                .trim()
                .parse()
                .map_err(|_| "invalid max_deferrals: must be a whole number".to_owned())?;
            v["max_deferrals"] = json!(n);
        }
        Ok(v)
    }

    fn input(&self) -> Result<FirmwarePolicyInput, String> {
        from_body(self.body()?)
    }
}

/// The next openings of the form's window, with clock changes called out.
fn preview(form: &PolicyForm, now: DateTime<Utc>) -> Markup {
    let window: Result<MaintenanceWindow, String> = form
        .window
        .body()
        .and_then(|w| serde_json::from_value(w).map_err(|e| format!("invalid window: {e}")));
    let window = match window {
        Ok(w) => w,
        Err(why) => return html! { div #window-preview { p.error role="alert" { (why) } } },
    };
    let tz = window.tz();
    let now = chrono::NaiveDate::parse_from_str(form.preview_from.trim(), "%Y-%m-%d")
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        .unwrap_or(now);
    let list: Vec<Occurrence> = window.occurrences(now).take(8).collect();
    let offset = |t: DateTime<Utc>| t.with_timezone(&tz).offset().fix().local_minus_utc();
    let mut previous = offset(now);
    html! {
        div #window-preview {
            h3 { "Next openings in " (tz.name()) }
            table #openings {
                thead { tr { th { "Opens" } th { "Closes" } th { "Opens (UTC)" } th { "Note" } } }
                tbody { @for o in &list {
                    @let (start, end) = (offset(o.start), offset(o.end));
                    @let note = clock_note(previous, start, end, o);
                    ({ previous = end; "" })
                    tr class=[note.as_ref().map(|_| "dst")] {
                        td { (crate::http::local_time(tz, o.start)) }
                        td { (crate::http::local_time(tz, o.end)) }
                        td { (o.start.format("%Y-%m-%d %H:%M")) }
                        td { @if let Some(n) = &note { span.warn { (n) } } }
                    }
                } }
            }
            @if list.is_empty() { p.error { "This window never opens." } }
        }
    }
}

/// Words for a clock change before or during an opening.
fn clock_note(before: i32, start: i32, end: i32, o: &Occurrence) -> Option<String> {
    let hours = |secs: i32| format!("UTC{:+}", f64::from(secs) / 3600.0);
    let minutes = (o.end - o.start).num_minutes();
    if start != end {
        Some(format!(
            "clocks change during this window ({} → {}): it lasts {minutes} real minutes",
            hours(start),
            hours(end)
        ))
    } else if before != start {
        Some(format!(
            "clocks changed before this opening ({} → {})",
            hours(before),
            hours(start)
        ))
    } else {
        None
    }
}

/// The zones offered by the window's time-zone input.
pub(crate) fn zone_list() -> Markup {
    html! { datalist #zones { @for z in ZONES { option value=(z) {} } } }
}

struct Choices {
    groups: Vec<Group>,
    models: Vec<(String, String)>,
}

fn choices(state: &Shared, tenant: &str) -> Result<Choices, ConsoleError> {
    let f = fleet(state);
    let mut models: Vec<(String, String)> = Vec::new();
    for r in f.releases()? {
        for h in &r.hardware_ids {
            let key = crate::reports::model_key(h.vid, h.pid);
            if !models.iter().any(|(k, _)| *k == key) {
                let name = format!("{} {}", r.vendor, r.model);
                models.push((key, name));
            }
        }
    }
    models.sort();
    Ok(Choices {
        groups: f.groups(tenant)?,
        models,
    })
}

fn editor(ctx: &Ctx, c: &Choices, f: &PolicyForm, preview_box: Option<Markup>) -> Markup {
    let action = if f.id.is_empty() {
        "/console/policies".to_owned()
    } else {
        format!("/console/policies/{}", f.id)
    };
    html! {
        form.stack #policy-form method="post" action=(action) {
            (ctx.csrf_field())
            input type="hidden" name="id" value=(f.id);
            label { "Name" input name="name" required maxlength="200" value=(f.name); }
            label { "Model" span.hint { "VID:PID; the catalog's models are listed" }
                input name="model" required list="models" value=(f.model) pattern="[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}"; }
            datalist #models { @for (k, n) in &c.models { option value=(k) { (n) } } }
            label { "Group" select name="group" {
                option value="" { "All Users" }
                @for g in &c.groups { option value=(g.id) selected[g.id == f.group] { (g.name) } }
            } }
            label { "Version" span.hint { "latest, or a version to pin" } input name="version" required value=(f.version); }
            fieldset {
                legend { "Deployment type" }
                @for (value, label, why) in DEPLOYMENTS {
                    label { input type="radio" name="deployment" value=(value) checked[*value == f.deployment];
                        " " (label) span.hint { (why) } }
                }
            }
            fieldset {
                legend { "Maintenance window" span.hint { " (required for silent; empty cron: none)" } }
                (f.window.inputs())
                (zone_list())
                label { "Preview from" span.hint { "empty: now" } input type="date" name="preview_from" value=(f.preview_from); }
                button.secondary type="submit" formaction="/console/policies/preview" { "Preview window" }
                @if let Some(p) = preview_box { (p) }
            }
            fieldset {
                legend { "Download source" }
                label { select name="source" {
                    option value="server" selected[f.source == "server" || f.source.is_empty()] { "This server" }
                    option value="share" selected[f.source == "share"] { "Network share (path)" }
                    option value="web" selected[f.source == "web"] { "Internal web mirror (URL)" }
                } }
                label { "Share path or mirror URL" input name="source_location" value=(f.source_location); }
                label { input type="checkbox" name="fallback_to_server" checked[f.fallback_to_server.is_some()]; " Fall back to this server when the share or mirror fails" }
            }
            label { "Deferrals allowed (persistent only)" input name="max_deferrals" inputmode="numeric" value=(f.max_deferrals); }
            label { input type="checkbox" name="multi_piece_guard" checked[f.multi_piece_guard.is_some()]; " Wait while another piece of the same product is attached" }
            label { input type="checkbox" name="allow_downgrade" checked[f.allow_downgrade.is_some()]; " Allow a downgrade: install this version on devices that run a newer one" }
            label { input type="checkbox" name="enabled" checked[f.enabled.is_some()]; " Enabled" }
            button type="submit" { "Save policy" }
        }
    }
}

fn editor_page(
    ctx: &Ctx,
    c: &Choices,
    f: &PolicyForm,
    status: StatusCode,
    error: Option<&str>,
    preview_box: Option<Markup>,
) -> Response {
    let title = if f.id.is_empty() {
        "New firmware policy"
    } else {
        "Edit firmware policy"
    };
    layout::page_with_status(
        ctx,
        Nav::Policies,
        title,
        None,
        status,
        html! { (layout::form_error(error)) (editor(ctx, c, f, preview_box)) },
    )
}

/// `GET /console/policies`.
pub(crate) async fn list(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<DoneQuery>,
) -> Answer {
    blocking(move || {
        let f = fleet(&state);
        let tenant = &ctx.principal.tenant;
        let policies = f.firmware_policies(tenant)?;
        let groups = f.groups(tenant)?;
        let group_name = |id: Option<&String>| {
            id.and_then(|id| groups.iter().find(|g| g.id == *id))
                .map_or_else(|| "All Users".to_owned(), |g| g.name.clone())
        };
        let body = html! {
            @if ctx.can_write() { p { a.button href="/console/policies/new" { "New firmware policy" } } }
            @if policies.is_empty() {
                (layout::empty("No firmware policy yet: devices get no update until a policy names their model.", html! {}))
            } @else {
                div.table-wrap { table #policies {
                    thead { tr { th { "Policy" } th { "Model" } th { "Group" } th { "Version" } th { "Deployment" } th { "Window" } th { "State" } @if ctx.can_write() { th { "Actions" } } } }
                    tbody { @for p in &policies { tr {
                        td { a href=(format!("/console/policies/{}", p.id)) { (p.spec.name) } }
                        td { (p.spec.model.model_key()) }
                        td { (group_name(p.spec.group.as_ref())) }
                        td { (serde_json::to_value(&p.spec.version).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()) }
                        td { (format!("{:?}", p.spec.deployment).to_lowercase()) }
                        td { @if let Some(w) = &p.spec.window { (w.cron().as_str()) " for " (catalog::window::format_duration(w.duration())) " " (w.tz().name()) } @else { "—" } }
                        td { @if p.spec.enabled { "enabled" } @else { span.muted { "disabled" } } }
                        @if ctx.can_write() { td {
                            (ctx.button_form(&format!("/console/policies/{}/enabled", p.id), if p.spec.enabled { "Disable" } else { "Enable" }, "secondary"))
                            " " (ctx.button_form(&format!("/console/policies/{}/copy", p.id), "Copy", "secondary"))
                            " " form.inline method="post" action=(format!("/console/policies/{}/delete", p.id)) data-confirm=(format!("Delete the policy {}?", p.spec.name)) {
                                (ctx.csrf_field()) button.danger type="submit" { "Delete" } }
                        } }
                    } } }
                } }
            }
            (super::software::section(&ctx, &f.software_policies(tenant)?, &groups))
            h2 { "What each deployment type does" }
            dl { @for (_, label, why) in DEPLOYMENTS { dt { (label) } dd { (why) } } }
        };
        Ok(layout::page(&ctx, Nav::Policies, "Policies", q.done.as_deref(), body))
    })
    .await
}

/// `GET /console/policies/new`.
pub(crate) async fn new_form(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
) -> Answer {
    blocking(move || {
        let c = choices(&state, &ctx.principal.tenant)?;
        Ok(editor_page(
            &ctx,
            &c,
            &PolicyForm::fresh(),
            StatusCode::OK,
            None,
            None,
        ))
    })
    .await
}

/// `GET /console/policies/{id}`.
pub(crate) async fn edit_form(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    UrlPath(id): UrlPath<String>,
) -> Answer {
    blocking(move || {
        let tenant = &ctx.principal.tenant;
        let p = fleet(&state)
            .firmware_policies(tenant)?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or(ConsoleError::NotFound)?;
        let c = choices(&state, tenant)?;
        Ok(editor_page(
            &ctx,
            &c,
            &PolicyForm::of(&p),
            StatusCode::OK,
            None,
            None,
        ))
    })
    .await
}

/// `POST /console/policies/preview`: the editor again, as filled in, with
/// the window's next openings (nothing is saved).
pub(crate) async fn preview_form(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<PolicyForm>,
) -> Answer {
    blocking(move || {
        let c = choices(&state, &ctx.principal.tenant)?;
        let p = preview(&f, state.accounts.now());
        Ok(editor_page(&ctx, &c, &f, StatusCode::OK, None, Some(p)))
    })
    .await
}

fn save(state: &Shared, ctx: &Ctx, id: Option<&str>, f: &PolicyForm) -> Answer {
    let tenant = &ctx.principal.tenant;
    let error = match f.input() {
        Ok(input) => match fleet(state).put_firmware_policy(tenant, id, input) {
            Ok(_) => return Ok(see_other("/console/policies", "policy-saved")),
            Err(e) => refused(e)?,
        },
        Err(why) => why,
    };
    let c = choices(state, tenant)?;
    let p = f.has_window().then(|| preview(f, state.accounts.now()));
    Ok(editor_page(
        ctx,
        &c,
        f,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(&error),
        p,
    ))
}

/// `POST /console/policies`.
pub(crate) async fn create(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<PolicyForm>,
) -> Answer {
    blocking(move || save(&state, &ctx, None, &f)).await
}

/// `POST /console/policies/{id}`.
pub(crate) async fn update(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    UrlPath(id): UrlPath<String>,
    Form(f): Form<PolicyForm>,
) -> Answer {
    blocking(move || save(&state, &ctx, Some(&id), &f)).await
}

/// `POST /console/policies/{id}/copy`.
pub(crate) async fn copy(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    UrlPath(id): UrlPath<String>,
) -> Answer {
    blocking(move || {
        match fleet(&state).copy_firmware_policy(&ctx.principal.tenant, &id, None, None) {
            Ok(p) => Ok(see_other(
                &format!("/console/policies/{}", p.id),
                "policy-copied",
            )),
            Err(e) => Ok(layout::refusal(StatusCode::CONFLICT, &refused(e)?)),
        }
    })
    .await
}

/// `POST /console/policies/{id}/enabled`: flips enabled.
pub(crate) async fn set_enabled(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    UrlPath(id): UrlPath<String>,
) -> Answer {
    blocking(move || {
        let f = fleet(&state);
        let tenant = &ctx.principal.tenant;
        let p = f
            .firmware_policies(tenant)?
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
            f.put_firmware_policy(tenant, Some(&id), spec),
            "/console/policies",
            notice,
        )
    })
    .await
}

/// `POST /console/policies/{id}/delete`.
pub(crate) async fn delete(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    UrlPath(id): UrlPath<String>,
) -> Answer {
    blocking(move || {
        changed(
            fleet(&state).delete_firmware_policy(&ctx.principal.tenant, &id),
            "/console/policies",
            "policy-deleted",
        )
    })
    .await
}
