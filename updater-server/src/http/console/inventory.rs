//! Inventory pages: devices (search, filters, sorting, pages), one device
//! with its timeline and why it is not on its target version, hosts, users.

use std::collections::BTreeMap;

use axum::extract::{Extension, Path as UrlPath, Query, State};
use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup};
use serde::Deserialize;

use super::fleet_view::{DeviceRow, FleetView};
use super::layout::{self, Ctx, Nav};
use super::{blocking, Answer, ConsoleError};
use crate::events::{self, Filter};
use crate::fleet::inventory::Device;
use crate::http::Shared;
use crate::reports::versions::VersionStatus;
use crate::reports::{identity, model_key, Snapshot};

/// Rows per page.
pub(crate) const PAGE_SIZE: usize = 50;

/// `?q=&model=&version=&group=&status=&seen=&sort=&page=`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DeviceQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    seen: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    page: Option<usize>,
    #[serde(default)]
    done: Option<String>,
}

fn status_name(s: VersionStatus) -> &'static str {
    match s {
        VersionStatus::UpToDate => "up_to_date",
        VersionStatus::Outdated => "outdated",
        VersionStatus::Unknown => "unknown",
        VersionStatus::NoRelease => "no_release",
    }
}

fn status_label(s: &str) -> &'static str {
    super::home::STATUS_SERIES
        .iter()
        .find(|(k, _)| *k == s)
        .map_or("", |(_, l)| *l)
}

/// Last-seen filters: (value, label, predicate on age).
const SEEN: &[(&str, &str)] = &[
    ("1", "in the last day"),
    ("7", "in the last 7 days"),
    ("30", "in the last 30 days"),
    ("older", "more than 30 days ago"),
];

fn seen_matches(filter: &str, last_seen: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    let age = now - last_seen;
    match filter {
        "1" => age <= Duration::days(1),
        "7" => age <= Duration::days(7),
        "30" => age <= Duration::days(30),
        "older" => age > Duration::days(30),
        _ => true,
    }
}

/// One listed device with what the filters and columns need.
struct Listed<'a> {
    device: &'a Device,
    status: VersionStatus,
    row: &'a DeviceRow,
}

/// The devices the query selects, in its order.
fn select<'a>(view: &'a FleetView, q: &DeviceQuery) -> Vec<Listed<'a>> {
    let s = &view.snapshot;
    let rows = view.rows();
    let needle = q.q.trim().to_lowercase();
    let model: Option<catalog::package::HardwareId> = q.model.parse().ok();
    let mut out: Vec<Listed<'a>> = Vec::new();
    for &i in view.order(&q.sort).iter() {
        let (d, status, row) = (&s.devices[i], view.status[i], &rows[i]);
        if d.deleted_at.is_some() {
            continue;
        }
        if !q.model.is_empty()
            && model.is_none_or(|m| (m.vid, m.pid) != (d.vendor_id, d.product_id))
        {
            continue;
        }
        if !q.version.is_empty() && d.firmware_version.as_deref() != Some(q.version.as_str()) {
            continue;
        }
        if !seen_matches(&q.seen, d.last_seen, s.now) {
            continue;
        }
        if !q.group.is_empty() && row.group != q.group {
            continue;
        }
        if !q.status.is_empty() && status_name(status) != q.status {
            continue;
        }
        if !needle.is_empty() && !row.haystack.contains(&needle) {
            continue;
        }
        out.push(Listed {
            device: d,
            status,
            row,
        });
    }
    out
}

fn model_label(s: &Snapshot, d: &Device) -> String {
    format!(
        "{} ({})",
        s.model_name(d.vendor_id, d.product_id),
        model_key(d.vendor_id, d.product_id)
    )
}

/// `GET /console/devices`.
pub(crate) async fn devices(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<DeviceQuery>,
) -> Answer {
    blocking(move || {
        let view = state.console_views.get(&state, &ctx.principal.tenant)?;
        let s = &view.snapshot;
        let listed = select(&view, &q);
        let (page, pages) = layout::page_of(listed.len(), q.page, PAGE_SIZE);
        let shown = listed.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE);
        let mut models: BTreeMap<String, String> = BTreeMap::new();
        let mut versions: std::collections::BTreeSet<&str> = Default::default();
        for d in s.devices.iter().filter(|d| d.deleted_at.is_none()) {
            models
                .entry(model_key(d.vendor_id, d.product_id))
                .or_insert_with(|| model_label(s, d));
            if let Some(v) = d.firmware_version.as_deref() {
                versions.insert(v);
            }
        }
        let query = [
            ("q", q.q.clone()),
            ("model", q.model.clone()),
            ("version", q.version.clone()),
            ("group", q.group.clone()),
            ("status", q.status.clone()),
            ("seen", q.seen.clone()),
            ("sort", q.sort.clone()),
        ];
        let body = html! {
            form.filters method="get" action="/console/devices" role="search" {
                label { "Search" input type="search" name="q" value=(q.q) placeholder="serial, product, host, user"; }
                label { "Model" select name="model" {
                    option value="" { "Any" }
                    @for (key, label) in &models { option value=(key) selected[*key == q.model] { (label) } }
                } }
                label { "Version" select name="version" {
                    option value="" { "Any" }
                    @for v in &versions { option value=(v) selected[*v == q.version] { (v) } }
                } }
                label { "Group" select name="group" {
                    option value="" { "Any" }
                    option value=(crate::fleet::ALL_USERS) selected[q.group == crate::fleet::ALL_USERS] { "All Users" }
                    @for g in &s.groups { option value=(g.id) selected[g.id == q.group] { (g.name) } }
                } }
                label { "Status" select name="status" {
                    option value="" { "Any" }
                    @for (k, l) in super::home::STATUS_SERIES { option value=(k) selected[*k == q.status] { (l) } }
                } }
                label { "Last seen" select name="seen" {
                    option value="" { "Any time" }
                    @for (k, l) in SEEN { option value=(k) selected[*k == q.seen] { (l) } }
                } }
                label { "Sort by" select name="sort" {
                    @for (k, l) in [("", "Last seen"), ("model", "Model"), ("version", "Version"), ("serial", "Serial"), ("host", "Host")] {
                        option value=(k) selected[k == q.sort] { (l) }
                    }
                } }
                button type="submit" { "Apply" }
            }
            p.muted #device-count { (listed.len()) " devices" }
            @if listed.is_empty() {
                (layout::empty("No device matches.", html! {
                    @if s.devices.is_empty() { p { "Devices appear here when an enrolled agent checks in. " a href="/console" { "How to enroll the first agent" } } }
                }))
            } @else {
                div.table-wrap { table #devices {
                    thead { tr { th { "Device" } th { "Model" } th { "Version" } th { "Status" } th { "Host" } th { "Users" } th { "Last seen" } } }
                    tbody { @for l in shown { tr {
                        td { a href=(format!("/console/devices/{}", l.device.id)) { (l.device.serial.as_deref().unwrap_or(identity(l.device))) } }
                        td { (model_label(s, l.device)) }
                        td { (l.device.firmware_version.as_deref().unwrap_or("—")) }
                        td class=(format!("status-{}", status_name(l.status))) { (status_label(status_name(l.status))) }
                        td { (l.row.hostname) }
                        td { (l.row.users) }
                        td { (layout::time(l.device.last_seen)) }
                    } } }
                } }
                (layout::pager("/console/devices", &query, page, pages))
            }
        };
        Ok(layout::page(&ctx, Nav::Devices, "Devices", q.done.as_deref(), body))
    })
    .await
}

/// `GET /console/devices/{id}`: the device, why it is (not) on its target
/// version, and its timeline.
pub(crate) async fn device(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    UrlPath(id): UrlPath<String>,
) -> Answer {
    blocking(move || {
        let store = state.accounts.store();
        let view = state.console_views.get(&state, &ctx.principal.tenant)?;
        let s = &view.snapshot;
        let (index, d) = s
            .devices
            .iter()
            .enumerate()
            .find(|(_, d)| d.id == id)
            .ok_or(ConsoleError::NotFound)?;
        let hosts = s.hosts_by_id();
        let users = s.users_by_id();
        let host = hosts.get(d.host.as_str());
        let row = view.compliance().iter().find(|r| r.device_id == d.id);
        let filter = Filter {
            agent: None,
            device: Some(identity(d).to_owned()),
        };
        let history: Vec<&crate::events::UpdateRecord> = view
            .recent_updates(&state)?
            .iter()
            .filter(|r| r.device.as_deref() == Some(identity(d)))
            .collect();
        let evts = events::list_events(store, &ctx.principal.tenant, None, events::MAX_PAGE, &filter)?;
        let mut timeline: Vec<(DateTime<Utc>, String)> = evts
            .items
            .iter()
            .map(|e| (e.event.at, describe_event(&e.event)))
            .collect();
        timeline.sort_by_key(|e| std::cmp::Reverse(e.0));
        let status = view.status[index];
        let title = format!(
            "{} {}",
            s.model_name(d.vendor_id, d.product_id),
            d.serial.as_deref().unwrap_or(identity(d))
        );
        let body = html! {
            div.cards {
                div.card {
                    h2 { "Device" }
                    dl {
                        dt { "Model" } dd { (model_label(s, d)) }
                        dt { "Serial" } dd { (d.serial.as_deref().unwrap_or("none (identified by port)")) }
                        dt { "Firmware" } dd { (d.firmware_version.as_deref().unwrap_or("not reported")) " "
                            span class=(format!("status-{}", status_name(status))) { "(" (status_label(status_name(status))) ")" } }
                        dt { "Host" } dd { (host.map_or("deleted host", |h| h.hostname.as_str())) }
                        dt { "Users" } dd { (crate::reports::user_names(&users, &d.users).join(", ")) }
                        dt { "First seen" } dd { (layout::time(d.first_seen)) }
                        dt { "Last seen" } dd { (layout::time(d.last_seen)) }
                    }
                }
                div.card #why {
                    h2 { "Target version" }
                    @match row {
                        Some(r) if r.compliant => p.status-compliant { "On its target version " (r.target_version.as_deref().unwrap_or("")) " (policy " (r.policy_name.as_deref().unwrap_or("")) ")." },
                        Some(r) => {
                            p { "Target: " strong { (r.target_version.as_deref().unwrap_or("none")) }
                                @if let Some(p) = &r.policy_name { " by policy " (p) } }
                            p { "Why it is not there now: " strong { (r.status.as_str().replace('_', " ")) } }
                            p { (r.detail) }
                        },
                        None => p { "The device is not covered by the compliance report." },
                    }
                }
            }
            h2 { "Update history (last 30 days)" }
            @if history.is_empty() { p.muted { "No update has been reported for this device in the last 30 days." } } @else {
                div.table-wrap { table #history {
                    thead { tr { th { "When" } th { "Release" } th { "Outcome" } th { "Reason" } } }
                    tbody { @for r in history.iter().rev() { tr {
                        td { (layout::time(r.at)) } td { code { (r.target) } " " (r.version) }
                        td { (format!("{:?}", r.outcome).to_lowercase()) } td { (r.reason.as_deref().unwrap_or("")) }
                    } } }
                } }
            }
            p { a #all-history href=(format!("/console/reports/history?{}", serde_urlencoded::to_string([("device", identity(d))]).unwrap_or_default())) {
                "Its whole update history (report, CSV)" } }
            h2 { "Timeline" }
            @if timeline.is_empty() { p.muted { "No event has been reported for this device." } } @else {
                ol.timeline { @for (at, what) in &timeline { li { time { (layout::time(*at)) } " — " (what) } } }
            }
        };
        Ok(layout::page(&ctx, Nav::Devices, &title, None, body))
    })
    .await
}

fn describe_event(e: &catalog::events::Event) -> String {
    let kind = serde_json::to_value(&e.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
        .replace('_', " ");
    let detail = ["message", "reason", "version"]
        .iter()
        .find_map(|k| e.detail.get(*k).and_then(|v| v.as_str()))
        .unwrap_or("");
    if detail.is_empty() {
        kind
    } else {
        format!("{kind}: {detail}")
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<usize>,
}

/// `GET /console/hosts`.
pub(crate) async fn hosts(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<ListQuery>,
) -> Answer {
    blocking(move || {
        let view = state.console_views.get(&state, &ctx.principal.tenant)?;
        let groups = &view.snapshot.groups;
        let group_name = |id: &str| {
            groups
                .iter()
                .find(|g| g.id == id)
                .map_or_else(|| "All Users".to_owned(), |g| g.name.clone())
        };
        let needle = q.q.trim().to_lowercase();
        let mut hosts: Vec<&crate::fleet::inventory::Host> = view
            .snapshot
            .hosts
            .iter()
            .filter(|h| needle.is_empty() || h.hostname.to_lowercase().contains(&needle))
            .collect();
        hosts.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        let (page, pages) = layout::page_of(hosts.len(), q.page, PAGE_SIZE);
        let body = html! {
            (search_form("/console/hosts", &q.q, "host name"))
            @if hosts.is_empty() { (layout::empty("No host yet: hosts appear when their agent first checks in.", html!{})) } @else {
                div.table-wrap { table #hosts {
                    thead { tr { th { "Host" } th { "Platform" } th { "Agent" } th { "Group" } th.num { "Devices" } th { "Last check-in" } th { "Note" } } }
                    tbody { @for h in hosts.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE) { tr {
                        td { (h.hostname) } td { (h.platform) } td { (h.agent_version) } td { (group_name(&h.group)) }
                        td.num { (h.devices.len()) } td { (layout::time(h.last_seen)) }
                        td { @if h.suspected_clone_of.is_some() { span.warn { "suspected clone of another agent" } } }
                    } } }
                } }
                (layout::pager("/console/hosts", &[("q", q.q.clone())], page, pages))
            }
        };
        Ok(layout::page(&ctx, Nav::Hosts, "Hosts", None, body))
    })
    .await
}

/// `GET /console/users`.
pub(crate) async fn users(
    State(state): State<Shared>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<ListQuery>,
) -> Answer {
    blocking(move || {
        let view = state.console_views.get(&state, &ctx.principal.tenant)?;
        let needle = q.q.trim().to_lowercase();
        let mut users: Vec<&crate::fleet::inventory::User> = view
            .snapshot
            .users
            .iter()
            .filter(|u| needle.is_empty() || u.name.to_lowercase().contains(&needle))
            .collect();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        let (page, pages) = layout::page_of(users.len(), q.page, PAGE_SIZE);
        let body = html! {
            (search_form("/console/users", &q.q, "account name"))
            @if users.is_empty() { (layout::empty("No user yet: users appear when an agent reports who is logged in.", html!{})) } @else {
                div.table-wrap { table #users {
                    thead { tr { th { "User" } th.num { "Hosts" } th.num { "Devices" } th { "First seen" } th { "Last seen" } } }
                    tbody { @for u in users.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE) { tr {
                        td { (u.name) } td.num { (u.hosts.len()) } td.num { (u.devices.len()) }
                        td { (layout::time(u.first_seen)) } td { (layout::time(u.last_seen)) }
                    } } }
                } }
                (layout::pager("/console/users", &[("q", q.q.clone())], page, pages))
            }
        };
        Ok(layout::page(&ctx, Nav::Users, "Users", None, body))
    })
    .await
}

fn search_form(action: &str, q: &str, what: &str) -> Markup {
    html! {
        form.filters method="get" action=(action) role="search" {
            label { "Search" input type="search" name="q" value=(q) placeholder=(what); }
            button type="submit" { "Search" }
        }
    }
}
