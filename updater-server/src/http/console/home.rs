//! Home: the fleet at a glance. Every figure comes from the report the API
//! serves for it (Version Status, Policy Compliance, the update history),
//! so the chart and `GET …/reports/…` cannot disagree.

use std::collections::BTreeMap;

use axum::extract::{Extension, Query, State};
use catalog::events::UpdateOutcome;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use maud::{html, Markup};

use super::chart::{self, Row, Segment};
use super::layout::{self, Ctx, Nav};
use super::signin::DoneQuery;
use super::{blocking, Answer};
use crate::events::UpdateRecord;
use crate::fleet::rollouts::{Rollout, RolloutState};
use crate::http::fleet::fleet;
use crate::http::Shared;
use crate::reports::versions::ModelStatus;
use crate::reports::{compliance, Snapshot};

/// Days the "updates per night" chart covers.
pub(crate) const NIGHTS: i64 = 30;

/// The version-status series, in drawing order: (JSON field, label).
pub(crate) const STATUS_SERIES: &[(&str, &str)] = &[
    ("up_to_date", "Up to date"),
    ("outdated", "Outdated"),
    ("unknown", "Unknown version"),
    ("no_release", "No release"),
];

fn status_count(m: &ModelStatus, field: &str) -> usize {
    match field {
        "up_to_date" => m.up_to_date,
        "outdated" => m.outdated,
        "unknown" => m.unknown,
        _ => m.no_release,
    }
}

/// The version-status chart: one row per model.
pub(crate) fn version_chart(models: &[ModelStatus]) -> Markup {
    let rows: Vec<Row> = models
        .iter()
        .map(|m| Row {
            label: format!("{} ({})", m.model_name, m.model),
            segments: STATUS_SERIES
                .iter()
                .map(|(field, label)| Segment {
                    label: (*label).to_owned(),
                    value: status_count(m, field),
                    class: field,
                })
                .collect(),
        })
        .collect();
    let legend: Vec<(&str, &str)> = STATUS_SERIES.to_vec();
    chart::stacked_bars(
        "versions-chart",
        "Devices by version status",
        &rows,
        &legend,
    )
}

/// The night an update belongs to: a night starting on day D runs from
/// D 12:00 to D+1 12:00 UTC, so one night's window is never split.
pub(crate) fn night_of(at: DateTime<Utc>) -> NaiveDate {
    (at - Duration::hours(12)).date_naive()
}

/// Successful updates per night over the last [`NIGHTS`] nights.
pub(crate) fn updates_per_night(
    records: &[UpdateRecord],
    now: DateTime<Utc>,
) -> Vec<(String, usize)> {
    let last = night_of(now);
    let first = last - Duration::days(NIGHTS - 1);
    let mut counts: BTreeMap<NaiveDate, usize> = BTreeMap::new();
    for r in records {
        let night = night_of(r.at);
        if r.outcome == UpdateOutcome::Succeeded && night >= first && night <= last {
            *counts.entry(night).or_default() += 1;
        }
    }
    (0..NIGHTS)
        .map(|i| {
            let day = first + Duration::days(i);
            (day.to_string(), counts.get(&day).copied().unwrap_or(0))
        })
        .collect()
}

/// `GET /console`.
pub(crate) async fn home(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<DoneQuery>,
    headers: axum::http::HeaderMap,
) -> Answer {
    let base_url = super::base_url(&headers, state.console_secure_cookies);
    blocking(move || {
        let view = state.console_views.get(&state, &ctx.principal.tenant)?;
        let snapshot = &view.snapshot;
        let body = if snapshot.devices.is_empty() {
            first_steps(&state, &ctx, &base_url)?
        } else {
            at_a_glance(
                snapshot,
                view.models(),
                view.compliance(),
                view.recent_updates(&state)?,
                view.rollouts(&state)?,
                snapshot.now,
            )
        };
        Ok(layout::page(
            &ctx,
            Nav::Home,
            "Fleet at a glance",
            q.done.as_deref(),
            body,
        ))
    })
    .await
}

fn at_a_glance(
    snapshot: &Snapshot,
    models: &[ModelStatus],
    rows: &[compliance::ComplianceRow],
    records: &[UpdateRecord],
    rollouts: &[Rollout],
    now: DateTime<Utc>,
) -> Markup {
    let devices: usize = models.iter().map(|m| m.devices).sum();
    let outdated: usize = models.iter().map(|m| m.outdated).sum();
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rows {
        *by_status.entry(r.status.as_str()).or_default() += 1;
    }
    let compliant = by_status.get("compliant").copied().unwrap_or(0);
    let week_ago = now - Duration::days(7);
    let mut failures: BTreeMap<(String, String), (usize, DateTime<Utc>)> = BTreeMap::new();
    for r in records
        .iter()
        .filter(|r| r.outcome == UpdateOutcome::Failed && r.at >= week_ago)
    {
        let e = failures
            .entry((r.target.clone(), r.reason.clone().unwrap_or_default()))
            .or_insert((0, r.at));
        e.0 += 1;
        e.1 = e.1.max(r.at);
    }
    let paused: Vec<_> = rollouts
        .iter()
        .filter(|r| r.state == RolloutState::Paused)
        .collect();
    let nights = updates_per_night(records, now);
    html! {
        div.cards {
            div.card { h2 { "Devices" } p.big { (devices) } p.muted { (snapshot.hosts.len()) " hosts, " (snapshot.users.len()) " users" } }
            div.card { h2 { "Outdated" } p.big { (outdated) } p { a href="/console/devices?status=outdated" { "See outdated devices" } } }
            div.card { h2 { "Compliant with policy" } p.big { (compliant) " of " (rows.len()) }
                p { a href="/console/reports/compliance" { "Policy compliance report" } } }
            div.card { h2 { "Failures in the last 7 days" } p.big { (failures.values().map(|f| f.0).sum::<usize>()) } }
        }
        h2 { "Version status" }
        (version_chart(models))
        (figures_table(models))
        h2 { "Updates per night" }
        (chart::columns("nights-chart", "Successful updates per night, last 30 nights", &nights))
        details {
            summary { "The numbers" }
            div.table-wrap { table {
                thead { tr { th { "Night of" } th.num { "Updates" } } }
                tbody { @for (night, n) in &nights { tr { td { (night) } td.num { (n) } } } }
            } }
        }
        h2 { "Needs attention" }
        @if failures.is_empty() && paused.is_empty() {
            p.muted { "Nothing: no failed update in the last 7 days and no paused rollout." }
        } @else {
            ul {
                @for r in &paused {
                    li.status-paused { "Rollout " a href=(format!("/console/rollouts/{}", r.id)) { (r.spec.name) } " is paused"
                        @if let Some(p) = &r.pause { ": " (p.reason) } }
                }
                @for ((target, reason), (n, last)) in &failures {
                    li { span.status-failed { (n) " failed" } " · " code { (target) } " · " (reason) " · last " (layout::time(*last)) }
                }
            }
        }
        h2 { "New firmware for your devices" }
        @let newer: Vec<&ModelStatus> = models.iter().filter(|m| m.outdated > 0).collect();
        @if newer.is_empty() {
            p.muted { "Every device with a release in the catalog runs the latest one." }
        } @else {
            ul { @for m in newer {
                li { (m.model_name) " (" (m.model) "): " strong { (m.latest_version.as_deref().unwrap_or("?")) }
                    " is available; " (m.outdated) " device(s) run an older version. "
                    a href="/console/policies/new" { "Create a policy" } " or " a href="/console/rollouts" { "a rollout" } }
            } }
        }
    }
}

/// The version-status figures as a table (the chart's numbers).
pub(crate) fn figures_table(models: &[ModelStatus]) -> Markup {
    html! {
        details {
            summary { "The numbers" }
            div.table-wrap { table #versions-table {
                thead { tr { th { "Model" } th { "Latest" }
                    @for (_, label) in STATUS_SERIES { th.num { (label) } } th.num { "Devices" } } }
                tbody { @for m in models { tr {
                    td { (m.model_name) " (" (m.model) ")" } td { (m.latest_version.as_deref().unwrap_or("—")) }
                    @for (field, _) in STATUS_SERIES { td.num { (status_count(m, field)) } }
                    td.num { (m.devices) }
                } } }
            } }
        }
    }
}

/// A new tenant's first steps: firmware, then the first agent.
fn first_steps(state: &Shared, ctx: &Ctx, base_url: &str) -> Result<Markup, super::ConsoleError> {
    let releases = fleet(state).releases()?;
    let tenant = &ctx.principal.tenant;
    Ok(html! {
        (layout::empty("No device has checked in yet. Three steps bring the first headset under management:", html! {
            ol {
                li { @if releases.is_empty() {
                        "Import firmware: " a href="/console/catalog" { "the catalog" } " is empty."
                    } @else {
                        "Firmware is in " a href="/console/catalog" { "the catalog" } " (" (releases.len()) " releases)."
                    } }
                li { "Install the agent on a workstation and enroll it with these parameters "
                    "(the enrollment token is shown once, when it is created or rotated in "
                    a href="/console/settings" { "Settings" } "):"
                    pre.copy { "update-agent enroll --server-url " (base_url) " --tenant-id " (tenant) " --tenant-token <enrollment token>" } }
                li { "Create a " a href="/console/policies/new" { "firmware policy" } " for the model." }
            }
        }))
    })
}
