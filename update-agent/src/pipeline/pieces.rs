//! Multi-piece products: a base station, its headset and its USB dongle are
//! pieces of one product, and flashing one while another is attached can
//! leave the pair unable to talk (the reference consoles schedule the
//! pieces in different windows). Which models are pieces of one product is
//! signed in the catalog (`product_family` of their releases); devices of
//! the same vendor that are not pieces of one product never hold each other
//! back.

use std::collections::BTreeSet;

use catalog::assignment::AssignmentSet;
use catalog::package::{HardwareId, TargetFirmware};
use catalog::protocol::DeviceReport;
use catalog::tuf::Targets;

/// The product family of every model the signed catalog names one for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductFamilies(Vec<(HardwareId, String)>);

impl ProductFamilies {
    /// Reads the families from verified targets metadata.
    pub fn from_targets(targets: &Targets) -> Self {
        let mut out = Vec::new();
        for t in targets.targets.values() {
            let Some(fw) = t.custom.as_ref().and_then(TargetFirmware::from_custom) else {
                continue;
            };
            if let Some(family) = fw.product_family {
                out.extend(fw.hardware_ids.into_iter().map(|h| (h, family.clone())));
            }
        }
        out.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.to_string().cmp(&b.0.to_string())));
        out.dedup();
        Self(out)
    }

    /// The family of an attached device, if a release for its model has one.
    pub fn of(&self, d: &DeviceReport) -> Option<&str> {
        self.0
            .iter()
            .find(|(h, _)| h.matches(d.vendor_id, d.product_id, d.bcd_device))
            .map(|(_, f)| f.as_str())
    }
}

/// Another attached piece of the product `device` belongs to (`family`:
/// that of the release being installed, else the device's own), if any.
pub fn other_piece<'a>(
    device: &DeviceReport,
    family: Option<&str>,
    attached: &'a [DeviceReport],
    families: &ProductFamilies,
) -> Option<&'a DeviceReport> {
    let family = family.or_else(|| families.of(device))?;
    let me = device.identity();
    attached
        .iter()
        .find(|d| d.identity() != me && families.of(d) == Some(family))
}

/// The devices whose policy turned the guard off (the signed document's
/// `multi_piece_guard_off` list, filled by the server from the policy).
pub fn multi_piece_guard_off(set: &AssignmentSet) -> BTreeSet<String> {
    set.extra
        .get("multi_piece_guard_off")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use catalog::protocol::DfuState;

    use super::*;

    fn device(vid: u16, pid: u16, serial: &str) -> DeviceReport {
        DeviceReport {
            vendor_id: vid,
            product_id: pid,
            bcd_device: 0x0100,
            serial: Some(serial.into()),
            port_path: None,
            manufacturer: None,
            product: None,
            firmware_version: None,
            dfu: DfuState::Runtime,
            telephony: true,
            battery: None,
            in_call: false,
        }
    }

    /// (device, release family, attached, the piece named).
    type Row<'a> = (
        &'a DeviceReport,
        Option<&'a str>,
        Vec<&'a DeviceReport>,
        Option<&'a str>,
    );

    #[test]
    fn only_pieces_of_the_same_product_hold_each_other_back() {
        let families = ProductFamilies(vec![
            ("1209:0010".parse().unwrap(), "Orbit".into()),
            ("1209:0011".parse().unwrap(), "Orbit".into()),
            ("1209:0020".parse().unwrap(), "Voyage".into()),
        ]);
        let base = device(0x1209, 0x0010, "B1");
        let dongle = device(0x1209, 0x0011, "D1");
        let second_base = device(0x1209, 0x0010, "B2");
        let voyage = device(0x1209, 0x0020, "V1");
        let speaker = device(0x1209, 0x0030, "S1");
        // (device, release family, attached, the piece named)
        let table: Vec<Row<'_>> = vec![
            (&base, None, vec![&base, &dongle], Some("1209/serial/D1")),
            (
                &base,
                Some("Orbit"),
                vec![&base, &dongle],
                Some("1209/serial/D1"),
            ),
            (&dongle, None, vec![&base, &dongle], Some("1209/serial/B1")),
            // Two of the same model are two products' pieces of one family.
            (
                &base,
                None,
                vec![&base, &second_base],
                Some("1209/serial/B2"),
            ),
            // Same vendor, other products: nothing waits.
            (&voyage, None, vec![&voyage, &base], None),
            (&voyage, None, vec![&voyage, &speaker], None),
            (&speaker, None, vec![&speaker, &voyage, &dongle], None),
            (&base, None, vec![&base, &voyage, &speaker], None),
            // The release's family counts for a device the catalog does not name.
            (
                &speaker,
                Some("Orbit"),
                vec![&speaker, &dongle],
                Some("1209/serial/D1"),
            ),
            (&base, None, vec![&base], None),
        ];
        for (d, family, attached, want) in table {
            let attached: Vec<DeviceReport> = attached.into_iter().cloned().collect();
            let got = other_piece(d, family, &attached, &families).map(DeviceReport::identity);
            assert_eq!(got.as_deref(), want, "{} {family:?}", d.identity());
        }
    }

    #[test]
    fn guard_off_list_is_read_from_the_signed_document() {
        let mut set = AssignmentSet::new("t", "a", 1, chrono::Utc::now(), 60, vec![]);
        assert!(multi_piece_guard_off(&set).is_empty());
        set.extra.insert(
            "multi_piece_guard_off".into(),
            serde_json::json!(["1209/serial/B1", 7]),
        );
        assert_eq!(
            multi_piece_guard_off(&set),
            BTreeSet::from(["1209/serial/B1".to_owned()])
        );
    }
}
