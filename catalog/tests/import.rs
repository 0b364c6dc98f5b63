//! Importing firmware files into a catalog: every format, and every way a
//! bad file is refused without changing the catalog.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use catalog::import::ImportOptions;
use catalog::package::{HardwareId, SourceFormat, UpdateProtocol, Urgency, VersionFormat};
use catalog::{Catalog, CatalogError};
use chrono::{TimeZone, Utc};
use dfu::file::{DfuFile, DfuSeTarget};
use sha2::{Digest, Sha256};

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
    catalog: Catalog,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let catalog =
            Catalog::init(&dir.path().join("catalog"), &dir.path().join("keys"), now()).unwrap();
        Self { dir, catalog }
    }

    fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::write(&p, data).unwrap();
        p
    }

    /// Everything that makes up the catalog's state, to prove a refusal
    /// changed nothing: releases, blobs, metadata files, and leftovers in
    /// the blob store's temp area.
    fn state(&self) -> (Vec<String>, usize, Vec<PathBuf>, usize) {
        let names = self
            .catalog
            .releases()
            .iter()
            .map(|r| r.target_name.clone())
            .collect();
        let blobs = self.catalog.blobs().list().unwrap().len();
        let mut meta: Vec<PathBuf> = fs::read_dir(self.catalog.metadata_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        meta.sort();
        let tmp = fs::read_dir(self.catalog.blobs().root().join("tmp"))
            .unwrap()
            .count();
        (names, blobs, meta, tmp)
    }
}

fn raw_opts() -> ImportOptions {
    ImportOptions {
        vendor: Some("Acme Audio".into()),
        model: Some("Voyager 8200".into()),
        hardware_ids: vec!["047F:C056".parse().unwrap()],
        version: Some("2.14.0".into()),
        security_counter: Some(3),
        silent_capable: Some(true),
        needs_replug: Some(true),
        urgency: Some(Urgency::High),
        release_notes: Some("Fixes echo.".into()),
        ..Default::default()
    }
}

#[test]
fn raw_image_with_command_line_metadata() {
    let mut f = Fixture::new();
    let image: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    let path = f.write("voyager-2.14.0.bin", &image);
    let imported = f.catalog.import(&path, &raw_opts(), now()).unwrap();
    assert!(imported.added);
    let r = imported.release;
    assert_eq!(
        r.target_name,
        "acme-audio/voyager-8200/2.14.0/voyager-2.14.0.bin"
    );
    assert_eq!(r.sha256.as_bytes()[..], Sha256::digest(&image)[..]);
    assert_eq!(r.size, 100_000);
    assert_eq!(r.security_counter, 3);
    assert_eq!(r.source_format, SourceFormat::Raw);
    assert_eq!(r.protocol, UpdateProtocol::Dfu);
    assert!(r.capabilities.silent_capable && r.capabilities.needs_replug);
    assert_eq!(r.urgency, Urgency::High);
    assert_eq!(f.catalog.blobs().verify(&r.sha256).unwrap(), 100_000);

    // Published: the signed targets carry the firmware fields.
    let targets = f
        .catalog
        .repository()
        .unwrap()
        .current_targets()
        .targets
        .clone();
    let t = &targets[&r.target_name];
    assert_eq!(t.length, 100_000);
    assert_eq!(t.hashes["sha256"], r.sha256.to_hex());
    let fw = catalog::package::TargetFirmware::from_custom(t.custom.as_ref().unwrap()).unwrap();
    assert_eq!(fw.hardware_ids, vec![HardwareId::new(0x047f, 0xc056)]);
    assert_eq!((fw.version.as_str(), fw.security_counter), ("2.14.0", 3));
    assert!(fw.needs_replug && fw.silent_capable);

    // Re-importing the same thing is a no-op; the index survives a reopen.
    let again = f.catalog.import(&path, &raw_opts(), now()).unwrap();
    assert!(!again.added);
    let reopened = Catalog::open(f.catalog.root(), &f.dir.path().join("keys")).unwrap();
    assert_eq!(reopened.releases().len(), 1);
    assert_eq!(reopened.find("acme-audio/voyager").unwrap().size, 100_000);
    assert_eq!(
        reopened.find(&r.sha256.to_hex()[..12]).unwrap().target_name,
        r.target_name
    );
}

/// The suffix's VID:PID become the release's hardware ids; its bcdDevice
/// (here 0x0214, the release the file installs) restricts nothing unless
/// the admin asks for it.
#[test]
fn dfu_file_takes_ids_from_its_suffix() {
    let bytes = DfuFile::new_raw(0x047f, 0xc056, 0x0214, b"headset image".to_vec()).to_bytes();
    // (require_suffix_bcd, hardware ids, fits a device at 1.00, fits one at 2.14)
    let table = [
        (false, "047F:C056", true, true),
        (true, "047F:C056@0214-0214", false, true),
    ];
    for (require_suffix_bcd, ids, fits_100, fits_214) in table {
        let mut f = Fixture::new();
        let path = f.write("fw.dfu", &bytes);
        let opts = ImportOptions {
            hardware_ids: vec![],
            require_suffix_bcd,
            ..raw_opts()
        };
        let r = f.catalog.import(&path, &opts, now()).unwrap().release;
        assert_eq!(r.source_format, SourceFormat::Dfu);
        assert_eq!(r.hardware_ids, vec![ids.parse().unwrap()]);
        assert_eq!(r.fits(0x047f, 0xc056, 0x0100), fits_100, "{ids}");
        assert_eq!(r.fits(0x047f, 0xc056, 0x0214), fits_214, "{ids}");
        assert_eq!(r.size, bytes.len() as u64, "the whole .dfu file is stored");
        assert_eq!(r.protocol, UpdateProtocol::Dfu);
    }
}

#[test]
fn dfuse_file_is_a_dfuse_release() {
    let mut f = Fixture::new();
    let target = DfuSeTarget::new(0, Some("Internal Flash"), [(0x0800_0000, vec![0xaa; 4096])]);
    let bytes = DfuFile::new_dfuse(0x0483, 0xdf11, 0xffff, vec![target])
        .unwrap()
        .to_bytes();
    let path = f.write("base.dfu", &bytes);
    let opts = ImportOptions {
        hardware_ids: vec![],
        ..raw_opts()
    };
    let r = f.catalog.import(&path, &opts, now()).unwrap().release;
    assert_eq!(r.source_format, SourceFormat::Dfuse);
    assert_eq!(r.protocol, UpdateProtocol::Dfuse);
    assert_eq!(r.hardware_ids, vec![HardwareId::new(0x0483, 0xdf11)]);
}

fn metainfo(version: &str, checksum: Option<(&str, &str)>) -> String {
    let sum = checksum
        .map(|(kind, value)| {
            format!(r#"<checksum filename="firmware.bin" target="content" type="{kind}">{value}</checksum>"#)
        })
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<component type="firmware">
  <id>com.acme.voyager8200.firmware</id>
  <name>Voyager 8200</name>
  <developer_name>Acme Audio</developer_name>
  <provides><firmware type="flashed">2082b5e0-7a64-478a-b1b2-e3404fab6dad</firmware></provides>
  <releases>
    <release version="{version}" urgency="critical" install_duration="45">
      {sum}
      <description><p>Security fix.</p></description>
    </release>
  </releases>
  <custom><value key="LVFS::VersionFormat">triplet</value></custom>
</component>"#
    )
}

fn build_cab(path: &Path, files: &[(&str, &[u8])]) {
    let mut builder = cab::CabinetBuilder::new();
    let folder = builder.add_folder(cab::CompressionType::MsZip);
    for (name, _) in files {
        folder.add_file(*name);
    }
    let mut writer = builder.build(fs::File::create(path).unwrap()).unwrap();
    let mut i = 0;
    while let Some(mut w) = writer.next_file().unwrap() {
        w.write_all(files[i].1).unwrap();
        i += 1;
    }
    writer.finish().unwrap();
}

#[test]
fn lvfs_cabinet_with_verified_checksum() {
    let mut f = Fixture::new();
    let payload = b"voyager firmware payload".repeat(100);
    let sha = hex::encode(Sha256::digest(&payload));
    let sha1 = hex::encode(sha1::Sha1::digest(&payload));
    let xml = metainfo("33554435", Some(("sha256", &sha)));
    let xml = xml.replace(
        "</checksum>",
        &format!(r#"</checksum><checksum filename="firmware.bin" target="content" type="sha1">{sha1}</checksum>"#),
    );
    let path = f.dir.path().join("voyager.cab");
    build_cab(
        &path,
        &[
            ("firmware.metainfo.xml", xml.as_bytes()),
            ("firmware.bin", &payload),
        ],
    );
    let mut opts = ImportOptions {
        hardware_ids: vec!["047F:C056".parse().unwrap()],
        ..Default::default()
    };
    // A critical (security) release without a counter is refused, unchanged.
    let before = f.state();
    let err = f
        .catalog
        .import(&path, &opts, now())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("security counter is required for cabinet imports (--security-counter"),
        "{err}"
    );
    assert_eq!(f.state(), before);
    opts.security_counter = Some(4);
    let r = f.catalog.import(&path, &opts, now()).unwrap().release;
    assert_eq!(r.security_counter, 4);
    assert_eq!(r.source_format, SourceFormat::Cab);
    assert_eq!(
        r.version.as_str(),
        "2.0.3",
        "triplet integer version printed dotted"
    );
    assert_eq!(r.version.format(), VersionFormat::Plain);
    assert_eq!(
        (r.vendor.as_str(), r.model.as_str()),
        ("Acme Audio", "Voyager 8200")
    );
    assert_eq!(r.urgency, Urgency::Critical);
    assert_eq!(r.capabilities.install_duration_secs, 45);
    assert_eq!(r.release_notes, "Security fix.");
    assert_eq!(
        r.size,
        payload.len() as u64,
        "the payload, not the cabinet, is stored"
    );
    let lvfs = r.lvfs.unwrap();
    assert_eq!(lvfs.component_id, "com.acme.voyager8200.firmware");
    assert_eq!(lvfs.guids, vec!["2082b5e0-7a64-478a-b1b2-e3404fab6dad"]);
    assert_eq!(lvfs.payload_name, "firmware.bin");
}

#[test]
fn cabinet_made_by_gcab_with_a_dfu_payload() {
    let mut f = Fixture::new();
    let dfu_bytes = DfuFile::new_raw(0x047f, 0x0ca1, 0xffff, vec![0x5a; 2048]).to_bytes();
    let src = f.dir.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("firmware.bin"), &dfu_bytes).unwrap();
    let sha = hex::encode(Sha256::digest(&dfu_bytes));
    fs::write(
        src.join("firmware.metainfo.xml"),
        metainfo("1.4.0", Some(("sha256", &sha))),
    )
    .unwrap();
    let cab_path = f.dir.path().join("gcab-made.cab");
    let status = Command::new("gcab")
        .args(["--create", "--zip", "--nopath"])
        .arg(&cab_path)
        .arg(src.join("firmware.metainfo.xml"))
        .arg(src.join("firmware.bin"))
        .status()
        .expect("gcab must be installed (Debian package gcab; .ci/run installs it)");
    assert!(status.success());
    let r = f
        .catalog
        .import(
            &cab_path,
            &ImportOptions {
                security_counter: Some(1),
                ..Default::default()
            },
            now(),
        )
        .unwrap()
        .release;
    assert_eq!(r.hardware_ids, vec![HardwareId::new(0x047f, 0x0ca1)]);
    assert_eq!(r.version.as_str(), "1.4.0");
    assert_eq!(r.source_format, SourceFormat::Cab);
    assert_eq!(r.size, dfu_bytes.len() as u64);
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let mut f = Fixture::new();
    let good = f.write("good.bin", b"good");
    f.catalog.import(&good, &raw_opts(), now()).unwrap();
    let before = f.state();

    let payload = b"payload bytes".to_vec();
    let wrong_sum = hex::encode(Sha256::digest(b"something else"));
    let cab_bad_sum = f.dir.path().join("bad-sum.cab");
    build_cab(
        &cab_bad_sum,
        &[
            (
                "firmware.metainfo.xml",
                metainfo("1.0.0", Some(("sha256", &wrong_sum))).as_bytes(),
            ),
            ("firmware.bin", &payload),
        ],
    );
    let cab_bad_xml = f.dir.path().join("bad-xml.cab");
    build_cab(
        &cab_bad_xml,
        &[
            (
                "firmware.metainfo.xml",
                b"<component type=\"firmware\"><id>",
            ),
            ("firmware.bin", &payload),
        ],
    );
    let cab_no_meta = f.dir.path().join("no-meta.cab");
    build_cab(&cab_no_meta, &[("firmware.bin", &payload)]);
    let mut dfu_bad_crc = DfuFile::new_raw(0x047f, 0xc056, 0xffff, b"x".repeat(64)).to_bytes();
    let n = dfu_bad_crc.len();
    dfu_bad_crc[n - 1] ^= 0xff;
    let dfu_bad_crc = f.write("bad-crc.dfu", &dfu_bad_crc);
    let dfu_any = f.write(
        "any.dfu",
        &DfuFile::new_raw(0xffff, 0xffff, 0xffff, b"x".repeat(64)).to_bytes(),
    );
    let dfu_other_ids = f.write(
        "other.dfu",
        &DfuFile::new_raw(0x1234, 0x5678, 0xffff, b"x".repeat(64)).to_bytes(),
    );
    let truncated_cab = f.write("truncated.cab", &fs::read(&cab_bad_sum).unwrap()[..40]);
    let conflicting = f.write("good.bin", b"different content, same version");

    let no_ids = ImportOptions {
        hardware_ids: vec![],
        ..raw_opts()
    };
    let long_notes = ImportOptions {
        release_notes: Some("n".repeat(20_000)),
        ..raw_opts()
    };
    let bad_version = ImportOptions {
        version: Some("1.2 beta".into()),
        ..raw_opts()
    };
    let bad_vendor = ImportOptions {
        vendor: Some("x".repeat(500)),
        ..raw_opts()
    };
    // Same target name and bytes as the stored release, other metadata.
    fs::create_dir(f.dir.path().join("again")).unwrap();
    let good_again = f.write("again/good.bin", b"good");
    let other_urgency = ImportOptions {
        urgency: Some(Urgency::Low),
        ..raw_opts()
    };
    // Refused by the release's own bounds, checked after the payload is
    // hashed: the payload must still not be stored.
    let too_many_ids = ImportOptions {
        version: Some("9.0".into()),
        hardware_ids: (0..65u16).map(|pid| HardwareId::new(0x047f, pid)).collect(),
        ..raw_opts()
    };
    let unstored = f.write("unstored.bin", b"bytes no release may keep");
    let cases: Vec<(&Path, ImportOptions, &str)> = vec![
        (&cab_bad_sum, no_ids.clone(), "fails its sha256 checksum"),
        (&cab_bad_xml, no_ids.clone(), "malformed XML"),
        (&cab_no_meta, no_ids.clone(), "no *.metainfo.xml"),
        (&truncated_cab, no_ids.clone(), "not a valid cabinet"),
        (&dfu_bad_crc, no_ids.clone(), "invalid DFU file"),
        (&dfu_any, no_ids.clone(), "--hardware-id"),
        (&dfu_other_ids, raw_opts(), "does not match the file"),
        (&good, no_ids, "hardware id is required"),
        (&good, long_notes, "release notes"),
        (&good, bad_version, "not a valid plain version"),
        (&good, bad_vendor, "bad vendor"),
        (
            &conflicting,
            raw_opts(),
            "already in the catalog with different content",
        ),
        (
            &good_again,
            other_urgency,
            "already in the catalog with the same content but a different urgency",
        ),
        (&unstored, too_many_ids, "more than 64"),
    ];
    for (path, opts, want) in cases {
        let err = f.catalog.import(path, &opts, now()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(want),
            "{}: {msg:?} lacks {want:?}",
            path.display()
        );
        assert_eq!(f.state(), before, "{} changed the catalog", path.display());
    }
    assert!(matches!(
        f.catalog
            .import(Path::new("/nonexistent/x.bin"), &raw_opts(), now()),
        Err(CatalogError::Import(_))
    ));
}

#[test]
fn remove_target_takes_exactly_that_release_and_publishes() {
    let mut f = Fixture::new();
    let one = f.write("fw.bin", b"one");
    let two = f.write("fw-2.bin", b"two");
    let a = f.catalog.import(&one, &raw_opts(), now()).unwrap().release;
    // A second file of the same version: its name extends the first's.
    let b_opts = ImportOptions {
        file_name: Some("fw.bin.sig".into()),
        ..raw_opts()
    };
    let b = f.catalog.import(&two, &b_opts, now()).unwrap().release;
    assert_eq!(b.target_name, format!("{}.sig", a.target_name));
    assert_eq!(f.catalog.get(&a.target_name), Some(&a));
    assert_eq!(f.catalog.get("acme-audio/voyager-8200"), None);
    let version = |c: &Catalog| c.repository().unwrap().current_targets().version;
    let before = version(&f.catalog);

    // A prefix names nothing; the exact name removes only that release.
    assert!(matches!(
        f.catalog
            .remove_target("acme-audio/voyager-8200/2.14.0/fw", now()),
        Err(CatalogError::NotFound(_))
    ));
    assert_eq!(version(&f.catalog), before);
    let removed = f.catalog.remove_target(&a.target_name, now()).unwrap();
    assert_eq!(removed, a);
    let names: Vec<&str> = f
        .catalog
        .releases()
        .iter()
        .map(|r| r.target_name.as_str())
        .collect();
    assert_eq!(names, [b.target_name.as_str()]);
    let repo = f.catalog.repository().unwrap();
    let targets = repo.current_targets();
    assert_eq!(targets.version, before + 1);
    assert!(!targets.targets.contains_key(&a.target_name));
    assert!(targets.targets.contains_key(&b.target_name));
    // The blob stays until gc; a second removal finds nothing.
    assert!(f.catalog.blobs().contains(&a.sha256));
    assert!(matches!(
        f.catalog.remove_target(&a.target_name, now()),
        Err(CatalogError::NotFound(n)) if n == a.target_name
    ));
    let report = f.catalog.gc(std::time::SystemTime::now()).unwrap();
    assert_eq!(report.removed, vec![a.sha256]);
}
