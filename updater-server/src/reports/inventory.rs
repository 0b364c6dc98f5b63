//! Device Inventory: every device the tenant's agents reported, deleted ones
//! included (flagged), sorted by model, then serial, then id.

use serde::Serialize;
use serde_json::json;

use super::{identity, model_key, opt_time, time, user_names, Built, ReportKind, Snapshot};

/// One device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InventoryRow {
    /// Inventory id.
    pub device_id: String,
    /// The identity agents use (`047f/serial/SN1`).
    pub identity: String,
    /// `VID:PID`.
    pub model: String,
    /// Model name (catalog, else the product string).
    pub model_name: String,
    /// USB idVendor, 4 hex digits.
    pub vendor_id: String,
    /// USB idProduct, 4 hex digits.
    pub product_id: String,
    /// Manufacturer string.
    pub manufacturer: Option<String>,
    /// Product string.
    pub product: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// Firmware version last reported.
    pub firmware_version: Option<String>,
    /// The host (agent id) it was last seen on.
    pub host: String,
    /// That host's name (empty when the host was deleted).
    pub hostname: String,
    /// Users it was attributed to.
    pub users: Vec<String>,
    /// First seen.
    pub first_seen: chrono::DateTime<chrono::Utc>,
    /// Last seen.
    pub last_seen: chrono::DateTime<chrono::Utc>,
    /// Marked deleted (devices with a serial are never erased).
    pub deleted: bool,
    /// When it was deleted.
    pub deleted_at: Option<chrono::DateTime<chrono::Utc>>,
    /// No catalog release is for its vendor id: another vendor's device.
    pub other_vendor: bool,
    /// Exposes HID telephony.
    pub telephony: bool,
    /// Can be flashed by the agent.
    pub updatable: bool,
}

/// The CSV columns.
pub const COLUMNS: &[&str] = &[
    "device_id",
    "identity",
    "model",
    "model_name",
    "vendor_id",
    "product_id",
    "manufacturer",
    "product",
    "serial",
    "firmware_version",
    "host",
    "hostname",
    "users",
    "first_seen",
    "last_seen",
    "deleted",
    "deleted_at",
    "other_vendor",
    "telephony",
    "updatable",
];

/// The rows.
pub fn rows(s: &Snapshot) -> Vec<InventoryRow> {
    let hosts = s.hosts_by_id();
    let users = s.users_by_id();
    let mut rows: Vec<InventoryRow> = s
        .devices
        .iter()
        .map(|d| InventoryRow {
            device_id: d.id.clone(),
            identity: identity(d).to_owned(),
            model: model_key(d.vendor_id, d.product_id),
            model_name: s.model_name(d.vendor_id, d.product_id),
            vendor_id: format!("{:04x}", d.vendor_id),
            product_id: format!("{:04x}", d.product_id),
            manufacturer: d.manufacturer.clone(),
            product: d.product.clone(),
            serial: d.serial.clone(),
            firmware_version: d.firmware_version.clone(),
            host: d.host.clone(),
            hostname: hosts
                .get(d.host.as_str())
                .map(|h| h.hostname.clone())
                .unwrap_or_default(),
            users: user_names(&users, &d.users),
            first_seen: d.first_seen,
            last_seen: d.last_seen,
            deleted: d.deleted_at.is_some(),
            deleted_at: d.deleted_at,
            other_vendor: s.other_vendor(d.vendor_id),
            telephony: d.telephony,
            updatable: d.dfu != catalog::protocol::DfuState::None,
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.model, &a.serial, &a.device_id).cmp(&(&b.model, &b.serial, &b.device_id))
    });
    rows
}

fn cells(r: &InventoryRow) -> Vec<String> {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    vec![
        r.device_id.clone(),
        r.identity.clone(),
        r.model.clone(),
        r.model_name.clone(),
        r.vendor_id.clone(),
        r.product_id.clone(),
        o(&r.manufacturer),
        o(&r.product),
        o(&r.serial),
        o(&r.firmware_version),
        r.host.clone(),
        r.hostname.clone(),
        r.users.join("; "),
        time(r.first_seen),
        time(r.last_seen),
        r.deleted.to_string(),
        opt_time(r.deleted_at),
        r.other_vendor.to_string(),
        r.telephony.to_string(),
        r.updatable.to_string(),
    ]
}

/// The report.
pub fn build(s: &Snapshot) -> Built {
    let rows = rows(s);
    let summary = json!({
        "report": ReportKind::Inventory,
        "tenant": s.tenant,
        "generated_at": s.now,
        "devices": rows.len(),
        "deleted": rows.iter().filter(|r| r.deleted).count(),
    });
    Built::listed(ReportKind::Inventory, COLUMNS, summary, "rows", rows, cells)
}

#[cfg(test)]
mod tests {
    use catalog::protocol::DfuState;

    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn rows_carry_hosts_users_and_flags() {
        let mut s = snapshot();
        s.releases = vec![release(VOYAGER, "Voyager", "2.0")];
        s.hosts = vec![host("h1", "=ws-1", "all-users", day(10))];
        let mut headset = device("d1", VOYAGER, Some("SN1"), Some("1.0"));
        headset.users = ["ann", "kiosk@ws-1"]
            .iter()
            .map(|n| crate::fleet::inventory::user_id(n))
            .collect();
        let mut gone = device("d2", VOYAGER, Some("SN0"), Some("0.9"));
        gone.deleted_at = Some(day(11));
        gone.host = "h-deleted".into();
        let mut other = device("d3", OTHER, None, None);
        other.dfu = DfuState::None;
        other.manufacturer = Some("Other, Inc.".into());
        s.devices = vec![headset, gone, other];
        s.users = vec![
            user("ann", &["h1"], &["d1"]),
            user("kiosk@ws-1", &["h1"], &["d1"]),
        ];

        let rows = rows(&s);
        // (device, model, name, serial, hostname, users, deleted, other vendor, updatable)
        type Want<'a> = (
            &'a str,
            &'a str,
            &'a str,
            &'a str,
            &'a str,
            String,
            bool,
            bool,
            bool,
        );
        let want: [Want<'_>; 3] = [
            (
                "d2",
                "047F:C056",
                "Voyager",
                "SN0",
                "",
                "".into(),
                true,
                false,
                true,
            ),
            (
                "d1",
                "047F:C056",
                "Voyager",
                "SN1",
                "=ws-1",
                "ann; kiosk@ws-1".into(),
                false,
                false,
                true,
            ),
            (
                "d3",
                "0B0E:0422",
                "Product d3",
                "",
                "=ws-1",
                "".into(),
                false,
                true,
                false,
            ),
        ];
        let got: Vec<Want<'_>> = rows
            .iter()
            .map(|r| {
                (
                    r.device_id.as_str(),
                    r.model.as_str(),
                    r.model_name.as_str(),
                    r.serial.as_deref().unwrap_or(""),
                    r.hostname.as_str(),
                    r.users.join("; "),
                    r.deleted,
                    r.other_vendor,
                    r.updatable,
                )
            })
            .collect();
        assert_eq!(got, want);
        assert_eq!(rows[2].identity, "0b0e/port/1-d3");
        assert_eq!(rows[0].deleted_at, Some(day(11)));

        let built = build(&s);
        assert_eq!(built.json()["devices"], 3);
        assert_eq!(built.json()["deleted"], 1);
        assert_eq!(built.json()["rows"][1]["vendor_id"], "047f");
        assert_eq!(built.rows()[1].len(), COLUMNS.len());
        assert_eq!(
            built.rows()[1],
            [
                "d1",
                "047f/serial/SN1",
                "047F:C056",
                "Voyager",
                "047f",
                "c056",
                "Acme",
                "Product d1",
                "SN1",
                "1.0",
                "h1",
                "=ws-1",
                "ann; kiosk@ws-1",
                "2026-01-02T00:00:00Z",
                "2026-01-10T00:00:00Z",
                "false",
                "",
                "false",
                "true",
                "true",
            ]
        );
        // The agent-supplied host name cannot become a formula in the file.
        let csv = String::from_utf8(built.render(super::super::Format::Csv).unwrap()).unwrap();
        assert!(csv.contains(",'=ws-1,"), "{csv}");
        assert!(csv.contains("\"Other, Inc.\""), "{csv}");
    }

    #[test]
    fn an_empty_inventory() {
        let built = build(&snapshot());
        assert_eq!(built.json()["rows"], serde_json::json!([]));
        assert!(built.rows().is_empty());
    }
}
