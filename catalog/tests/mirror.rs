//! Mirror export and verification: incremental copies, a mirror that is
//! consistent at every moment of an export, and every kind of damage reported.

use std::fs;
use std::path::{Path, PathBuf};

use catalog::import::ImportOptions;
use catalog::mirror::{self, ExportFilter, Problem, VerifyOptions};
use catalog::Catalog;
use chrono::{Duration, TimeZone, Utc};

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

    fn import(&mut self, model: &str, hwid: &str, version: &str, content: &[u8]) -> String {
        let path = self.dir.path().join(format!("{model}-{version}.bin"));
        fs::write(&path, content).unwrap();
        let opts = ImportOptions {
            vendor: Some("Acme".into()),
            model: Some(model.into()),
            hardware_ids: vec![hwid.parse().unwrap()],
            version: Some(version.into()),
            ..Default::default()
        };
        self.catalog
            .import(&path, &opts, now())
            .unwrap()
            .release
            .target_name
    }

    fn mirror(&self) -> PathBuf {
        self.dir.path().join("share")
    }

    fn root(&self) -> Vec<u8> {
        fs::read(self.catalog.metadata_dir().join("1.root.json")).unwrap()
    }

    fn snapshot_version(&self) -> u64 {
        self.catalog.repository().unwrap().snapshot().version
    }

    fn verify_at(&self, mirror: &Path, at: chrono::DateTime<Utc>) -> mirror::VerifyReport {
        let root = self.root();
        let opts = VerifyOptions {
            trusted_root: &root,
            now: at,
            catalog_snapshot: Some(self.snapshot_version()),
            filter: ExportFilter::default(),
        };
        mirror::verify(mirror, &opts, &mut |_| {}).unwrap()
    }

    fn verify(&self) -> mirror::VerifyReport {
        self.verify_at(&self.mirror(), now())
    }

    fn export(&self) -> mirror::ExportReport {
        mirror::export(
            &self.catalog,
            &self.mirror(),
            &ExportFilter::default(),
            &mut |_| {},
        )
        .unwrap()
    }

    fn target_file(&self, name: &str) -> PathBuf {
        let targets = self
            .catalog
            .repository()
            .unwrap()
            .current_targets()
            .targets
            .clone();
        let rel = catalog::tuf::consistent_target_path(name, &targets[name]).unwrap();
        self.mirror().join("targets").join(rel)
    }
}

#[test]
fn export_then_verify_is_clean_and_incremental() {
    let mut f = Fixture::new();
    let a = f.import("Voyager", "047F:C056", "1.0", &[1; 5000]);
    f.import("Blackwire", "047F:C0A1", "3.1", &[2; 7000]);

    let first = f.export();
    assert_eq!((first.targets_copied, first.targets_present), (2, 0));
    assert_eq!(first.bytes_copied, 12_000);
    let report = f.verify();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.targets_ok, 2);
    assert!(f.target_file(&a).is_file());

    // Nothing new: only timestamp.json is rewritten.
    let second = f.export();
    assert_eq!((second.targets_copied, second.targets_present), (0, 2));
    assert_eq!(second.metadata_copied, 1);

    // One new release: one blob copied.
    f.import("Voyager", "047F:C056", "1.1", &[3; 3000]);
    let third = f.export();
    assert_eq!(
        (
            third.targets_copied,
            third.targets_present,
            third.bytes_copied
        ),
        (1, 2, 3000)
    );
    assert!(f.verify().is_ok());
}

#[test]
fn mirror_is_consistent_at_every_step_of_an_export() {
    let mut f = Fixture::new();
    f.import("Voyager", "047F:C056", "1.0", &[1; 5000]);
    f.export();
    for i in 0..4u8 {
        f.import("Voyager", "047F:C056", &format!("2.{i}"), &[10 + i; 4000]);
    }
    let root = f.root();
    let mirror_dir = f.mirror();
    let mut checks = 0;
    mirror::export(
        &f.catalog,
        &mirror_dir,
        &ExportFilter::default(),
        &mut |_| {
            // A reader arriving mid-export sees the old snapshot, complete.
            let opts = VerifyOptions {
                trusted_root: &root,
                now: now(),
                catalog_snapshot: None,
                filter: ExportFilter::default(),
            };
            let r = mirror::verify(&mirror_dir, &opts, &mut |_| {}).unwrap();
            let only_new_extras = r.problems.iter().all(|p| matches!(p, Problem::Extra(_)));
            assert!(only_new_extras, "{:?}", r.problems);
            assert_eq!(r.targets_ok, 1);
            checks += 1;
        },
    )
    .unwrap();
    assert_eq!(checks, 6, "progress before and after each of 5 targets");
    let r = f.verify();
    assert!(r.is_ok(), "{:?}", r.problems);
    assert_eq!(r.targets_ok, 5);
}

#[test]
fn every_kind_of_damage_is_reported() {
    let mut f = Fixture::new();
    let a = f.import("Voyager", "047F:C056", "1.0", &[1; 5000]);
    let b = f.import("Blackwire", "047F:C0A1", "3.1", &[2; 7000]);
    let c = f.import("Calisto", "047F:C0B2", "7.0", &[3; 100]);
    f.export();

    // Bit flip, truncation, deletion, an extra file.
    let pa = f.target_file(&a);
    let mut bytes = fs::read(&pa).unwrap();
    bytes[100] ^= 1;
    fs::write(&pa, &bytes).unwrap();
    let pb = f.target_file(&b);
    fs::write(&pb, &fs::read(&pb).unwrap()[..6000]).unwrap();
    fs::remove_file(f.target_file(&c)).unwrap();
    fs::write(f.mirror().join("targets/acme/planted.bin"), b"evil").unwrap();

    let problems: Vec<String> = f.verify().problems.iter().map(|p| p.to_string()).collect();
    let want = [
        "corrupt: targets/acme/voyager/1.0/",
        "corrupt: targets/acme/blackwire/3.1/",
        "missing: targets/acme/calisto/7.0/",
        "extra: targets/acme/planted.bin",
    ];
    assert_eq!(problems.len(), want.len(), "{problems:#?}");
    for w in want {
        assert!(
            problems.iter().any(|p| p.starts_with(w)),
            "no {w:?} in {problems:#?}"
        );
    }
    assert!(
        problems.iter().any(|p| p.contains("sha256 is")),
        "{problems:#?}"
    );
    assert!(problems
        .iter()
        .any(|p| p.contains("6000 bytes, signed length is 7000")));
}

#[test]
fn stale_expired_and_tampered_metadata_are_reported() {
    let mut f = Fixture::new();
    f.import("Voyager", "047F:C056", "1.0", &[1; 5000]);
    f.export();
    let stale_copy = f.dir.path().join("stale");
    copy_dir(&f.mirror(), &stale_copy);

    f.import("Voyager", "047F:C056", "1.1", &[2; 5000]);
    let r = f.verify_at(&stale_copy, now());
    assert!(
        matches!(r.problems[..], [Problem::Stale { mirror_snapshot, catalog_snapshot }] if mirror_snapshot + 1 == catalog_snapshot),
        "{:?}",
        r.problems
    );

    // Timestamp past its expiry.
    let r = f.verify_at(&stale_copy, now() + Duration::days(400));
    assert!(
        matches!(&r.problems[..], [Problem::Metadata(m)] if m.contains("expired")),
        "{:?}",
        r.problems
    );

    // A targets file altered after signing.
    let meta = stale_copy.join("metadata");
    let targets_file = fs::read_dir(&meta)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".targets.json") && !p.ends_with("1.targets.json"))
        .unwrap();
    let text = fs::read_to_string(&targets_file).unwrap();
    fs::write(&targets_file, text.replacen("5000", "5001", 1)).unwrap();
    let r = f.verify_at(&stale_copy, now());
    assert!(
        matches!(&r.problems[..], [Problem::Metadata(_)]),
        "{:?}",
        r.problems
    );
}

#[test]
fn filtered_export_copies_only_chosen_models() {
    let mut f = Fixture::new();
    f.import("Voyager", "047F:C056", "1.0", &[1; 5000]);
    f.import("Blackwire", "047F:C0A1", "3.1", &[2; 7000]);
    let filter = ExportFilter {
        models: vec!["047F:C056".parse().unwrap()],
    };
    let report = mirror::export(&f.catalog, &f.mirror(), &filter, &mut |_| {}).unwrap();
    assert_eq!((report.targets_copied, report.targets_filtered), (1, 1));

    let root = f.root();
    let opts = VerifyOptions {
        trusted_root: &root,
        now: now(),
        catalog_snapshot: None,
        filter,
    };
    let r = mirror::verify(&f.mirror(), &opts, &mut |_| {}).unwrap();
    assert!(r.is_ok(), "{:?}", r.problems);
    assert_eq!((r.targets_ok, r.targets_skipped), (1, 1));
    // Without the filter the same mirror is incomplete.
    assert!(matches!(&f.verify().problems[..], [Problem::Missing(_)]));
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), dest).unwrap();
        }
    }
}
