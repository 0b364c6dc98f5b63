//! Reports: each with its filters, a chart where one helps, the table, and
//! the CSV the API would give (the same builder, [`crate::reports::build`]).

use std::collections::BTreeMap;

use axum::extract::{Extension, Path as UrlPath, Query, State};
use chrono::Duration;
use maud::{html, Markup};
use serde::Deserialize;

use super::chart::{self, Row, Segment};
use super::fleet_view::FleetView;
use super::layout::{self, Ctx, Nav};
use super::{blocking, Answer, ConsoleError};
use crate::events::Filter;
use crate::http::Shared;
use crate::reports::history::{self, Range};
use crate::reports::{Built, Format, ReportKind};

/// Rows a report page shows; the CSV has them all.
pub(crate) const SHOWN_ROWS: usize = 500;

fn title(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::Inventory => "Device Inventory",
        ReportKind::Versions => "Version Status",
        ReportKind::Compliance => "Policy Compliance",
        ReportKind::Distribution => "Device Distribution",
        ReportKind::History => "Update History",
    }
}

fn summary(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::Inventory => "Every device with its model, firmware, host and users.",
        ReportKind::Versions => {
            "Per model, the latest release and how many devices run each version."
        }
        ReportKind::Compliance => {
            "Per device under a policy: its target version and why it is not there yet."
        }
        ReportKind::Distribution => "Devices per model, group and host platform.",
        ReportKind::History => "Every update attempt agents reported, with its outcome.",
    }
}

/// `GET /console/reports`.
pub(crate) async fn index(Extension(ctx): Extension<Ctx>) -> Answer {
    let body = html! {
        ul { @for k in ReportKind::ALL {
            li { a href=(format!("/console/reports/{k}")) { (title(k)) } " — " (summary(k)) }
        } }
    };
    Ok(layout::page(&ctx, Nav::Reports, "Reports", None, body))
}

/// `?format=csv&from=&to=&device=&agent=` (the range and filters apply to
/// the update history, as in the API).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReportQuery {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    agent: Option<String>,
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// `GET /console/reports/{kind}`.
pub(crate) async fn show(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    UrlPath(kind): UrlPath<String>,
    Query(q): Query<ReportQuery>,
) -> Answer {
    let kind: ReportKind = kind.parse().map_err(|_| ConsoleError::NotFound)?;
    blocking(move || {
        let now = state.accounts.now();
        let store = state.accounts.store();
        let tenant = &ctx.principal.tenant;
        let mut error = None;
        let mut chart_markup = html! {};
        let built: std::sync::Arc<Built> = if kind == ReportKind::History {
            let filter = Filter {
                agent: nonempty(&q.agent).map(str::to_owned),
                device: nonempty(&q.device).map(str::to_owned),
            };
            let range = match Range::parse(nonempty(&q.from), nonempty(&q.to), filter) {
                Ok(r) => r,
                Err(e) => {
                    error = Some(e.to_string());
                    Range::default()
                }
            };
            let (records, truncated) = history::read(store, tenant, &range, history::MAX_ROWS)?;
            let hosts = crate::fleet::inventory::hosts(store, tenant)?;
            chart_markup = history_chart(&records, now);
            std::sync::Arc::new(history::build(tenant, now, &range, records, truncated, &hosts))
        } else {
            let view = state.console_views.get(&state, tenant)?;
            chart_markup = fleet_chart(kind, &view);
            view.report(kind)?
        };
        if q.format.as_deref() == Some("csv") && error.is_none() {
            return crate::http::reports::respond(&built, Format::Csv, tenant, now)
                .map_err(|_| ConsoleError::Internal("the CSV could not be written".into()));
        }
        let csv_link = {
            let mut pairs = vec![("format", "csv".to_owned())];
            for (name, value) in [("from", &q.from), ("to", &q.to), ("device", &q.device), ("agent", &q.agent)] {
                if let Some(v) = nonempty(value) { pairs.push((name, v.to_owned())); }
            }
            format!("/console/reports/{kind}?{}", serde_urlencoded::to_string(&pairs).unwrap_or_default())
        };
        let body = html! {
            p { (summary(kind)) }
            @if kind == ReportKind::History {
                form.filters method="get" action=(format!("/console/reports/{kind}")) {
                    label { "From" input type="date" name="from" value=(q.from.as_deref().unwrap_or("")); }
                    label { "To" input type="date" name="to" value=(q.to.as_deref().unwrap_or("")); }
                    label { "Device" input name="device" placeholder="e.g. 1209/serial/VH5200-0001" value=(q.device.as_deref().unwrap_or("")); }
                    label { "Agent id" input name="agent" value=(q.agent.as_deref().unwrap_or("")); }
                    button type="submit" { "Apply" }
                }
                (layout::form_error(error.as_deref()))
            }
            p { a.button #download-csv href=(csv_link) download { "Download CSV" } }
            (chart_markup)
            (table(&built))
        };
        Ok(layout::page(&ctx, Nav::Reports, title(kind), None, body))
    })
    .await
}

fn table(built: &Built) -> Markup {
    html! {
        p.muted #row-count { (built.row_count()) " rows"
            @if built.row_count() > SHOWN_ROWS { "; the first " (SHOWN_ROWS) " are shown, the CSV has them all" } }
        div.table-wrap { table #report {
            thead { tr { @for c in built.columns { th { (c.replace('_', " ")) } } } }
            tbody { @for row in (0..built.row_count().min(SHOWN_ROWS)).map(|i| built.row(i)) { tr { @for cell in row { td { (cell) } } } } }
        } }
    }
}

fn fleet_chart(kind: ReportKind, view: &FleetView) -> Markup {
    match kind {
        ReportKind::Versions => super::home::version_chart(view.models()),
        ReportKind::Compliance => {
            let mut by_status: BTreeMap<&'static str, usize> = BTreeMap::new();
            for r in view.compliance() {
                *by_status.entry(r.status.as_str()).or_default() += 1;
            }
            let rows: Vec<Row> = by_status
                .into_iter()
                .map(|(status, n)| Row {
                    label: status.replace('_', " "),
                    segments: vec![Segment {
                        label: "devices".into(),
                        value: n,
                        class: if status == "compliant" {
                            "up_to_date"
                        } else if status == "failed" {
                            "bad"
                        } else {
                            "default"
                        },
                    }],
                })
                .collect();
            chart::stacked_bars(
                "compliance-chart",
                "Devices by compliance status",
                &rows,
                &[],
            )
        }
        _ => html! {},
    }
}

fn history_chart(
    records: &[crate::events::UpdateRecord],
    now: chrono::DateTime<chrono::Utc>,
) -> Markup {
    let recent: Vec<_> = records
        .iter()
        .filter(|r| r.at >= now - Duration::days(super::home::NIGHTS + 1))
        .cloned()
        .collect();
    chart::columns(
        "history-chart",
        "Successful updates per night, last 30 nights",
        &super::home::updates_per_night(&recent, now),
    )
}
