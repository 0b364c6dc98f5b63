//! Reports built from the server's own records, as JSON and CSV.
//!
//! - [`inventory`]: every device with its model, ids, serial, firmware,
//!   host, users, first / last seen, deleted and other-vendor flags.
//! - [`versions`]: per model, the latest release in the catalog and how many
//!   devices run each installed version (up to date, outdated, unknown).
//! - [`compliance`]: per device under an enabled firmware policy, the
//!   target version against the installed one, and why a device is not
//!   compliant (from the update states agents report at check-in).
//! - [`distribution`]: per effective group (All Users included), its users
//!   and their devices per model; users without a device are listed.
//! - [`history`]: the update history (update-status events), optionally
//!   limited to a date range.
//!
//! Building is pure: [`Snapshot`] holds what the reports read (loaded once
//! from the store and the catalog, with the `now` the caller fixes), and each
//! report is a function of it. [`csv::write`] turns a report's rows into CSV
//! with spreadsheet formula injection neutralised.

pub mod compliance;
pub mod csv;
pub mod distribution;
pub mod history;
pub mod inventory;
pub mod versions;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use catalog::package::FirmwareRelease;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::events::EventsError;
use crate::fleet::inventory::{self as fleet_inventory, Device, Host, User};
use crate::fleet::{FirmwarePolicy, Fleet, FleetError, Group};
use crate::store::Store;

/// Why a report could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Reading the fleet records or the catalog failed.
    #[error(transparent)]
    Fleet(#[from] FleetError),
    /// Reading the update history failed.
    #[error(transparent)]
    Events(#[from] EventsError),
    /// Writing CSV failed.
    #[error("writing CSV: {0}")]
    Csv(#[from] ::csv::Error),
    /// A parameter is invalid (unknown report or format, bad date).
    #[error("invalid {field}: {why}")]
    Invalid {
        /// Which parameter.
        field: &'static str,
        /// Why.
        why: String,
    },
}

impl ReportError {
    pub(crate) fn invalid(field: &'static str, why: impl Into<String>) -> Self {
        ReportError::Invalid {
            field,
            why: why.into(),
        }
    }
}

/// The five reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// Device Inventory.
    Inventory,
    /// Version Status.
    Versions,
    /// Policy Compliance.
    Compliance,
    /// Device Distribution.
    Distribution,
    /// Update History.
    History,
}

impl ReportKind {
    /// Every report, in documentation order.
    pub const ALL: [ReportKind; 5] = [
        ReportKind::Inventory,
        ReportKind::Versions,
        ReportKind::Compliance,
        ReportKind::Distribution,
        ReportKind::History,
    ];

    /// The name in URLs and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Inventory => "inventory",
            ReportKind::Versions => "versions",
            ReportKind::Compliance => "compliance",
            ReportKind::Distribution => "distribution",
            ReportKind::History => "history",
        }
    }

    /// The stem of a downloaded file's name.
    pub fn file_stem(self) -> &'static str {
        match self {
            ReportKind::Inventory => "device-inventory",
            ReportKind::Versions => "version-status",
            ReportKind::Compliance => "policy-compliance",
            ReportKind::Distribution => "device-distribution",
            ReportKind::History => "update-history",
        }
    }
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReportKind {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReportKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                ReportError::invalid(
                    "report",
                    "must be inventory, versions, compliance, distribution or history",
                )
            })
    }
}

/// JSON or CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// A JSON document (the default).
    #[default]
    Json,
    /// CSV with a header row, UTF-8.
    Csv,
}

impl FromStr for Format {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            _ => Err(ReportError::invalid("format", "must be json or csv")),
        }
    }
}

/// A built report, rendered on demand in the one format asked: a report
/// over a million devices holds its typed rows once, never a JSON value
/// tree or a table of cells beside them.
pub struct Built {
    /// Which report.
    pub kind: ReportKind,
    /// The CSV header.
    pub columns: &'static [&'static str],
    content: Box<dyn Content>,
}

impl fmt::Debug for Built {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Built")
            .field("kind", &self.kind)
            .field("rows", &self.row_count())
            .finish()
    }
}

/// What a report holds, type-erased: its JSON document and its CSV rows.
trait Content: Send + Sync {
    fn to_json(&self) -> serde_json::Result<Vec<u8>>;
    fn row_count(&self) -> usize;
    fn row(&self, i: usize) -> Vec<String>;
}

/// Summary fields and a list of typed items under `key`, one CSV row each.
struct Listed<T> {
    summary: serde_json::Map<String, serde_json::Value>,
    key: &'static str,
    items: Vec<T>,
    cells: fn(&T) -> Vec<String>,
}

impl<T: Serialize> Serialize for Listed<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.summary.len() + 1))?;
        for (k, v) in &self.summary {
            map.serialize_entry(k, v)?;
        }
        map.serialize_entry(self.key, &self.items)?;
        map.end()
    }
}

impl<T: Serialize + Send + Sync> Content for Listed<T> {
    fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec_pretty(self)
    }
    fn row_count(&self) -> usize {
        self.items.len()
    }
    fn row(&self, i: usize) -> Vec<String> {
        (self.cells)(&self.items[i])
    }
}

/// A small document and its table, both built (per-model and per-group
/// reports: their size follows the catalog and the groups, not the fleet).
struct Tabled {
    json: serde_json::Value,
    rows: Vec<Vec<String>>,
}

impl Content for Tabled {
    fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec_pretty(&self.json)
    }
    fn row_count(&self) -> usize {
        self.rows.len()
    }
    fn row(&self, i: usize) -> Vec<String> {
        self.rows[i].clone()
    }
}

impl Built {
    /// A report of summary fields (a JSON object) and `items` under `key`,
    /// each item a CSV row by `cells`.
    pub(crate) fn listed<T: Serialize + Send + Sync + 'static>(
        kind: ReportKind,
        columns: &'static [&'static str],
        summary: serde_json::Value,
        key: &'static str,
        items: Vec<T>,
        cells: fn(&T) -> Vec<String>,
    ) -> Self {
        let summary = match summary {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        Built {
            kind,
            columns,
            content: Box::new(Listed {
                summary,
                key,
                items,
                cells,
            }),
        }
    }

    /// A report whose document and table are both small, built as given.
    pub(crate) fn tabled(
        kind: ReportKind,
        columns: &'static [&'static str],
        json: serde_json::Value,
        rows: Vec<Vec<String>>,
    ) -> Self {
        Built {
            kind,
            columns,
            content: Box::new(Tabled { json, rows }),
        }
    }

    /// The report in `format`: JSON (pretty) or CSV bytes.
    pub fn render(&self, format: Format) -> Result<Vec<u8>, ReportError> {
        match format {
            Format::Json => Ok(self.content.to_json().unwrap_or_else(|_| b"null".to_vec())),
            Format::Csv => csv::write(
                self.columns,
                (0..self.row_count()).map(|i| self.content.row(i)),
            ),
        }
    }

    /// How many CSV rows.
    pub fn row_count(&self) -> usize {
        self.content.row_count()
    }

    /// The CSV cells of row `i` (< [`Built::row_count`]), before formula
    /// neutralisation.
    pub fn row(&self, i: usize) -> Vec<String> {
        self.content.row(i)
    }

    /// Every CSV row (a copy: for small reports and tests).
    pub fn rows(&self) -> Vec<Vec<String>> {
        (0..self.row_count()).map(|i| self.row(i)).collect()
    }

    /// The JSON document as a value (a copy: for small reports and tests).
    pub fn json(&self) -> serde_json::Value {
        self.content
            .to_json()
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::Value::Null)
    }
}

/// Everything the fleet reports read, loaded at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The tenant.
    pub tenant: String,
    /// When the snapshot was taken (the report's `generated_at`).
    pub now: DateTime<Utc>,
    /// Inventory devices (deleted ones included, flagged).
    pub devices: Vec<Device>,
    /// Inventory hosts.
    pub hosts: Vec<Host>,
    /// Inventory users.
    pub users: Vec<User>,
    /// Custom groups by priority.
    pub groups: Vec<Group>,
    /// Firmware policies.
    pub policies: Vec<FirmwarePolicy>,
    /// The catalog's releases.
    pub releases: Vec<FirmwareRelease>,
    /// Model names by `(vid, pid)`, computed at first use.
    names: OnceLock<BTreeMap<(u16, u16), String>>,
}

impl Snapshot {
    /// Reads the tenant's inventory, groups, policies and the catalog.
    pub fn load(
        store: &dyn Store,
        fleet: &Fleet,
        tenant: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, ReportError> {
        // The devices on one thread, hosts and users on another: decoding
        // the records is most of a large report's time.
        let (devices, hosts, users) = std::thread::scope(|scope| {
            let others = scope.spawn(|| {
                Ok::<_, FleetError>((
                    fleet_inventory::hosts(store, tenant)?,
                    fleet_inventory::users(store, tenant)?,
                ))
            });
            let devices = fleet_inventory::devices(store, tenant);
            let others = others
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            others.and_then(|(hosts, users)| Ok((devices?, hosts, users)))
        })?;
        Ok(Snapshot {
            tenant: tenant.to_owned(),
            now,
            devices,
            hosts,
            users,
            groups: fleet.groups(tenant)?,
            policies: fleet.firmware_policies(tenant)?,
            releases: fleet.releases()?,
            names: OnceLock::new(),
        })
    }

    pub(crate) fn hosts_by_id(&self) -> HashMap<&str, &Host> {
        self.hosts.iter().map(|h| (h.id.as_str(), h)).collect()
    }

    pub(crate) fn users_by_id(&self) -> HashMap<&str, &User> {
        self.users.iter().map(|u| (u.id.as_str(), u)).collect()
    }

    /// The display name of a model: the catalog's model name when a release
    /// is for it, else the product string a device reported.
    pub(crate) fn model_name(&self, vid: u16, pid: u16) -> String {
        let names = self.names.get_or_init(|| {
            // One pass each (reports call this per row): the product string
            // of the device seen last, then the catalog's names over them.
            let mut seen: BTreeMap<(u16, u16), (DateTime<Utc>, String)> = BTreeMap::new();
            for d in &self.devices {
                let Some(p) = &d.product else { continue };
                let e = seen
                    .entry((d.vendor_id, d.product_id))
                    .or_insert((d.last_seen, p.clone()));
                if d.last_seen > e.0 {
                    *e = (d.last_seen, p.clone());
                }
            }
            let mut names: BTreeMap<(u16, u16), String> =
                seen.into_iter().map(|(k, (_, p))| (k, p)).collect();
            for r in self.releases.iter().rev() {
                for h in &r.hardware_ids {
                    names.insert((h.vid, h.pid), r.model.clone());
                }
            }
            names
        });
        names.get(&(vid, pid)).cloned().unwrap_or_default()
    }

    /// Whether no release of the catalog is for this vendor id: the device
    /// is another vendor's (inventoried for its telephony interface).
    pub(crate) fn other_vendor(&self, vid: u16) -> bool {
        !self
            .releases
            .iter()
            .any(|r| r.hardware_ids.iter().any(|h| h.vid == vid))
    }
}

/// `VID:PID` as policies and the catalog write it (`047F:C056`).
pub fn model_key(vid: u16, pid: u16) -> String {
    format!("{vid:04X}:{pid:04X}")
}

/// The identity agents use for a device in update states and events
/// (`DeviceReport::identity`), from its inventory key.
pub(crate) fn identity(d: &Device) -> &str {
    d.key
        .strip_prefix(d.host.as_str())
        .and_then(|k| k.strip_prefix('/'))
        .filter(|_| d.serial.is_none())
        .unwrap_or(&d.key)
}

/// Inventory user names of `ids`, sorted, joined with `; `.
pub(crate) fn user_names<'a>(
    users: &HashMap<&str, &User>,
    ids: impl IntoIterator<Item = &'a String>,
) -> Vec<String> {
    let mut names: Vec<String> = ids
        .into_iter()
        .filter_map(|id| users.get(id.as_str()).map(|u| u.name.clone()))
        .collect();
    names.sort();
    names
}

/// RFC 3339 in UTC with seconds (`2026-01-02T03:04:05Z`), for CSV cells.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An optional time as a CSV cell (empty when absent).
pub(crate) fn opt_time(t: Option<DateTime<Utc>>) -> String {
    t.map(time).unwrap_or_default()
}

/// Builds a fleet report (every report but the history) from a snapshot.
pub fn build(kind: ReportKind, s: &Snapshot) -> Option<Built> {
    Some(match kind {
        ReportKind::Inventory => inventory::build(s),
        ReportKind::Versions => versions::build(s),
        ReportKind::Compliance => compliance::build(s),
        ReportKind::Distribution => distribution::build(s),
        ReportKind::History => return None,
    })
}

#[cfg(test)]
mod agreement_tests;
#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_round_trip() {
        for k in ReportKind::ALL {
            assert_eq!(k.as_str().parse::<ReportKind>().unwrap(), k);
        }
        for (text, want) in [
            ("json", Some(Format::Json)),
            ("CSV", Some(Format::Csv)),
            ("xml", None),
            ("", None),
        ] {
            assert_eq!(text.parse::<Format>().ok(), want, "{text}");
        }
        assert!(matches!(
            "users".parse::<ReportKind>(),
            Err(ReportError::Invalid {
                field: "report",
                ..
            })
        ));
    }

    #[test]
    fn identity_from_the_inventory_key() {
        let mut d = fixtures::device("d1", (0x047f, 0xc056), Some("SN1"), Some("1.0"));
        assert_eq!(identity(&d), "047f/serial/SN1");
        d.serial = None;
        d.key = format!("{}/047f/port/1-2", d.host);
        assert_eq!(identity(&d), "047f/port/1-2");
    }
}
