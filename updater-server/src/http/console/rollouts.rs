//! Staged rollouts: the list with a create form, one rollout with its waves'
//! progress, its log, and pause / resume / approve / cancel / delete.

use axum::extract::{Extension, Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

use super::forms::{from_body, WindowFields};
use super::layout::{self, Ctx, Nav};
use super::signin::DoneQuery;
use super::{blocking, changed, lines, refused, see_other, Answer, ConsoleError};
use crate::fleet::rollouts::service::RolloutAction;
use crate::fleet::rollouts::{report, Rollout, RolloutInput, RolloutState};
use crate::http::fleet::fleet;
use crate::http::rollouts::actor;
use crate::http::Shared;

/// The create form.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct RolloutForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    groups: String,
    #[serde(default)]
    deployment: String,
    #[serde(flatten)]
    window: WindowFields,
    #[serde(default)]
    waves: String,
}

impl RolloutForm {
    fn fresh() -> Self {
        RolloutForm {
            version: "latest".into(),
            deployment: "silent".into(),
            window: WindowFields::default(),
            waves: "5% error=10\n25% approval\nrest approval".into(),
            ..Default::default()
        }
    }

    fn input(&self) -> Result<RolloutInput, String> {
        let mut body = json!({
            "name": self.name.trim(),
            "model": self.model.trim(),
            "version": self.version.trim(),
            "groups": lines(&self.groups),
            "deployment": self.deployment,
            "waves": self.waves()?,
        });
        if self.window.is_set() {
            body["window"] = self.window.body()?;
        }
        from_body(body)
    }

    /// One wave per line: `N%`, `rest` or `group:NAME`, then any of
    /// `immediately`, `approval`, `after_previous`, `error=N`, `success=N`.
    fn waves(&self) -> Result<Vec<Value>, String> {
        lines(&self.waves)
            .iter()
            .enumerate()
            .map(|(i, line)| wave(line).map_err(|why| format!("invalid wave {}: {why}", i + 1)))
            .collect()
    }
}

fn wave(line: &str) -> Result<Value, String> {
    let mut words = line.split_whitespace();
    let share = words.next().unwrap_or_default();
    let mut w = if let Some(p) = share.strip_suffix('%') {
        json!({"percent": p.parse::<u8>().map_err(|_| format!("{share:?} is not a percentage"))?})
    } else if share.eq_ignore_ascii_case("rest") {
        json!({"rest": true})
    } else if let Some(g) = share.strip_prefix("group:") {
        json!({"group": g})
    } else {
        return Err(format!("start with N%, rest or group:NAME, not {share:?}"));
    };
    for word in words {
        match word.split_once('=') {
            Some(("error", n)) => w["error_threshold_percent"] = json!(threshold(n)?),
            Some(("success", n)) => w["success_threshold_percent"] = json!(threshold(n)?),
            None if ["immediately", "approval", "after_previous"].contains(&word) => {
                w["start"] = json!(word);
            }
            _ => {
                return Err(format!(
                    "{word:?} is not immediately, approval, after_previous, error=N or success=N"
                ))
            }
        }
    }
    Ok(w)
}

fn threshold(n: &str) -> Result<u8, String> {
    n.trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{n:?} is not a percentage"))
}

fn state_class(s: RolloutState) -> String {
    format!("status-{}", s.as_str())
}

fn create_form(ctx: &Ctx, f: &RolloutForm) -> Markup {
    html! {
        form.stack method="post" action="/console/rollouts" {
            (ctx.csrf_field())
            label { "Name" input name="name" required value=(f.name); }
            label { "Model" span.hint { "VID:PID" } input name="model" required value=(f.model); }
            label { "Version" span.hint { "latest, or a version" } input name="version" required value=(f.version); }
            label { "Groups (one per line, names or ids)" span.hint { "empty: All Users" } textarea name="groups" rows="2" { (f.groups) } }
            label { "Deployment type" select name="deployment" {
                @for (value, label, _) in super::policies::DEPLOYMENTS { option value=(value) selected[*value == f.deployment] { (label) } }
            } }
            fieldset {
                legend { "Maintenance window" span.hint { " (required for silent; empty cron: none)" } }
                (f.window.inputs())
                (super::policies::zone_list())
            }
            label { "Waves, one per line"
                span.hint { "N%, rest or group:NAME; then immediately, approval or after_previous (the default after the first), error=N and success=N (thresholds in %)" }
                textarea name="waves" rows="4" { (f.waves) } }
            button type="submit" { "Create rollout" }
        }
    }
}

fn list_page(
    ctx: &Ctx,
    rollouts: &[Rollout],
    form: &RolloutForm,
    error: Option<&str>,
    done: Option<&str>,
) -> axum::response::Response {
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let body = html! {
        @if rollouts.is_empty() {
            (layout::empty("No rollout yet. A rollout updates a model wave by wave (a pilot share first) and pauses itself when failures pile up.", html! {}))
        } @else {
            div.table-wrap { table #rollouts {
                thead { tr { th { "Rollout" } th { "Model" } th { "Release" } th { "State" } th { "Waves begun" } th { "Created" } } }
                tbody { @for r in rollouts { tr {
                    td { a href=(format!("/console/rollouts/{}", r.id)) { (r.spec.name) } }
                    td { (r.spec.model.model_key()) }
                    td { (r.release.version) }
                    td class=(state_class(r.state)) { (r.state.as_str()) }
                    td { (r.waves.iter().filter(|w| w.started_at.is_some()).count()) " of " (r.spec.waves.len()) }
                    td { (layout::time(r.stamps.created_at)) }
                } } }
            } }
        }
        @if ctx.can_write() {
            h2 { "Create a rollout" }
            (layout::form_error(error))
            (create_form(ctx, form))
        }
    };
    layout::page_with_status(ctx, Nav::Rollouts, "Rollouts", done, status, body)
}

/// `GET /console/rollouts`.
pub(crate) async fn list(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<DoneQuery>,
) -> Answer {
    blocking(move || {
        let rollouts = fleet(&state).rollouts(&ctx.principal.tenant)?;
        Ok(list_page(
            &ctx,
            &rollouts,
            &RolloutForm::fresh(),
            None,
            q.done.as_deref(),
        ))
    })
    .await
}

/// `POST /console/rollouts`.
pub(crate) async fn create(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<RolloutForm>,
) -> Answer {
    blocking(move || {
        let f = fleet(&state);
        let tenant = &ctx.principal.tenant;
        let error = match form.input() {
            Ok(input) => match f.create_rollout(tenant, input, &actor(&state, &ctx.principal)) {
                Ok(r) => {
                    return Ok(see_other(
                        &format!("/console/rollouts/{}", r.id),
                        "rollout-created",
                    ))
                }
                Err(e) => refused(e)?,
            },
            Err(why) => why,
        };
        let rollouts = f.rollouts(tenant)?;
        Ok(list_page(&ctx, &rollouts, &form, Some(&error), None))
    })
    .await
}

fn figures_cell(map: &std::collections::BTreeMap<String, u64>) -> Markup {
    html! {
        @if map.is_empty() { "0" } @else {
            ul { @for (reason, n) in map { li { (n) " — " (reason) } } }
        }
    }
}

/// `GET /console/rollouts/{id}`.
pub(crate) async fn show(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<DoneQuery>,
) -> Answer {
    blocking(move || {
        let f = fleet(&state);
        let r = f.rollout(&ctx.principal.tenant, &id)?;
        let figures = f.rollout_figures(&r)?;
        let status = report::build(&r, &figures);
        let groups = f.groups(&ctx.principal.tenant)?;
        // The report names a group wave by id; the page by the group's name.
        let target = |t: &str| {
            t.strip_prefix("group ")
                .and_then(|id| groups.iter().find(|g| g.id == id))
                .map_or_else(|| t.to_owned(), |g| format!("group {}", g.name))
        };
        let action = |a: &str| format!("/console/rollouts/{}/{a}", r.id);
        let body = html! {
            p { "Release " strong { (r.release.version) } " (" code { (r.release.target_name) } ") · state "
                strong class=(state_class(r.state)) { (r.state.as_str()) }
                " · " (status.installed) " of " (status.devices) " devices installed, " (status.failed) " failed" }
            @if let Some(p) = &r.pause {
                p.error role="alert" { "Paused " (layout::time(p.at)) @if let Some(by) = &p.by { " by " (by) } ": " (p.reason) }
                @if !p.failing_devices.is_empty() {
                    details { summary { "Failing devices (" (p.failing_devices.len()) ")" }
                        ul { @for d in &p.failing_devices { li { a href=(format!("/console/devices/{d}")) { (d) } } } } }
                }
            }
            @if ctx.can_write() {
                p.actions {
                    @if r.state == RolloutState::Running {
                        (ctx.button_form(&action("approve"), "Approve next wave", ""))
                        " " (ctx.button_form(&action("pause"), "Pause", "secondary"))
                    }
                    @if r.state == RolloutState::Paused { (ctx.button_form(&action("resume"), "Resume", "")) }
                    @if matches!(r.state, RolloutState::Running | RolloutState::Paused) {
                        " " form.inline method="post" action=(action("cancel")) data-confirm="Cancel this rollout? Its devices go back to their policies." {
                            (ctx.csrf_field()) button.danger type="submit" { "Cancel rollout" } }
                    } @else {
                        form.inline method="post" action=(action("delete")) data-confirm="Delete this rollout?" {
                            (ctx.csrf_field()) button.danger type="submit" { "Delete" } }
                    }
                }
            }
            h2 { "Waves" }
            div.table-wrap { table #waves {
                thead { tr { th { "Wave" } th { "Devices" } th { "Starts" } th { "Deployment" } th.num { "Pending" } th.num { "Downloading" }
                    th { "Waiting" } th.num { "Installing" } th.num { "Installed" } th { "Failed" } th { "Started" } th { "Ended" } } }
                tbody { @for w in &status.waves { tr {
                    td { (w.name) } td { (target(&w.target)) " (" (w.figures.devices) ")" } td { (w.start) }
                    td { (format!("{:?}", w.deployment).to_lowercase()) }
                    td.num { (w.figures.pending) } td.num { (w.figures.downloading) }
                    td { (figures_cell(&w.figures.waiting)) } td.num { (w.figures.installing) }
                    td.num.status-installed { (w.figures.installed) } td { (figures_cell(&w.figures.failed)) }
                    td { (w.started_at.map(layout::time).unwrap_or_default()) } td { (w.ended_at.map(layout::time).unwrap_or_default()) }
                } } }
            } }
            h2 { "Log" }
            ol.timeline { @for e in r.log.iter().rev() { li { (layout::time(e.at)) " — " (e.what) } } }
        };
        Ok(layout::page(&ctx, Nav::Rollouts, &r.spec.name, q.done.as_deref(), body))
    })
    .await
}

/// `POST /console/rollouts/{id}/{action}`: pause, resume, approve, cancel,
/// delete.
pub(crate) async fn act(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    UrlPath((id, action)): UrlPath<(String, String)>,
) -> Answer {
    let what = match action.as_str() {
        "pause" => Some(RolloutAction::Pause),
        "resume" => Some(RolloutAction::Resume),
        "approve" => Some(RolloutAction::Approve),
        "cancel" => Some(RolloutAction::Cancel),
        "delete" => None,
        _ => return Err(ConsoleError::NotFound),
    };
    blocking(move || {
        let f = fleet(&state);
        let tenant = &ctx.principal.tenant;
        let result = match what {
            Some(a) => f
                .rollout_action(tenant, &id, a, &actor(&state, &ctx.principal))
                .map(|_| ()),
            None => f.delete_rollout(tenant, &id),
        };
        let to = match what {
            Some(_) => format!("/console/rollouts/{id}"),
            None => "/console/rollouts".to_owned(),
        };
        changed(result, &to, &format!("rollout-{action}"))
    })
    .await
}
