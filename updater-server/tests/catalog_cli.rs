//! The catalog admin commands, run as the real binary in a scratch directory.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn data(&self) -> PathBuf {
        self.path("data")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_updater-server"));
        c.arg("--data-dir").arg(self.data()).args(args);
        c.env_remove("UPDATER_DATA_DIR");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8(out.stderr).unwrap()
    }

    fn write(&self, rel: &str, data: &[u8]) -> String {
        let p = self.path(rel);
        fs::write(&p, data).unwrap();
        p.to_str().unwrap().to_owned()
    }
}

const RAW_META: &[&str] = &[
    "--vendor",
    "Acme",
    "--model",
    "Voyager",
    "--hardware-id",
    "047F:C056",
    "--version",
    "2.14",
];

fn import_args<'a>(file: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["catalog", "import", file];
    v.extend_from_slice(RAW_META);
    v.extend_from_slice(extra);
    v
}

#[test]
fn keys_init_writes_private_keys_owner_only_and_refuses_twice() {
    let s = Scratch::new();
    s.ok(&["catalog", "keys", "init"]);
    let keys: Vec<_> = fs::read_dir(s.data().join("keys")).unwrap().collect();
    assert_eq!(keys.len(), 4);
    for k in keys {
        let mode = k.unwrap().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let err = s.fails(&["catalog", "keys", "init"]);
    assert!(err.contains("error:"), "{err}");
    let list = s.ok(&["catalog", "keys", "list"]);
    assert!(list.contains("root v1"), "{list}");
    s.ok(&["catalog", "keys", "rotate", "--role", "timestamp"]);
    assert!(s.ok(&["catalog", "keys", "list"]).contains("root v2"));
}

#[test]
fn import_list_show_remove_gc() {
    let s = Scratch::new();
    let fw = s.write("voyager.bin", &[7u8; 4096]);
    let out = s.ok(&import_args(
        &fw,
        &["--silent-capable", "--security-counter", "4"],
    ));
    assert!(
        out.contains("imported: acme/voyager/2.14/voyager.bin"),
        "{out}"
    );

    let list: serde_json::Value =
        serde_json::from_str(&s.ok(&["catalog", "list", "--json"])).unwrap();
    let r = &list[0];
    assert_eq!(r["target_name"], "acme/voyager/2.14/voyager.bin");
    assert_eq!(r["size"], 4096);
    assert_eq!(r["security_counter"], 4);
    assert_eq!(r["capabilities"]["silent_capable"], true);
    assert_eq!(r["hardware_ids"][0], "047F:C056");

    let show = s.ok(&["catalog", "show", "acme/voyager"]);
    assert!(show.contains("version:          2.14 (plain)"), "{show}");
    assert!(s
        .fails(&["catalog", "show", "nothing"])
        .contains("no release matches"));

    s.ok(&["catalog", "remove", "acme/voyager/2.14/voyager.bin"]);
    assert_eq!(s.ok(&["catalog", "list", "--json"]).trim(), "[]");
    let gc = s.ok(&["catalog", "gc"]);
    assert!(gc.starts_with("removed 1 blobs (4096 bytes)"), "{gc}");
}

#[test]
fn refused_import_exits_nonzero_with_the_reason() {
    let s = Scratch::new();
    s.ok(&["catalog", "keys", "init"]);
    let fw = s.write("x.bin", b"x");
    let cases: &[(&[&str], &str)] = &[
        (&["catalog", "import", &fw], "vendor is required"),
        (
            &[
                "catalog",
                "import",
                &fw,
                "--vendor",
                "A",
                "--model",
                "M",
                "--version",
                "1",
            ],
            "hardware id is required",
        ),
        (
            &import_args(&fw, &["--hardware-id", "zz:1"]),
            "bad hardware id",
        ),
        (&import_args("/nonexistent/fw.bin", &[]), "No such file"),
    ];
    for (args, want) in cases {
        let err = s.fails(args);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert_eq!(s.ok(&["catalog", "list", "--json"]).trim(), "[]");
}

#[test]
fn mirror_and_verify_exit_codes() {
    let s = Scratch::new();
    let fw = s.write("voyager.bin", &[9u8; 10_000]);
    s.ok(&import_args(&fw, &[]));
    let share = s.path("share");
    let share_s = share.to_str().unwrap();
    let out = s.ok(&["catalog", "mirror", share_s]);
    assert!(out.contains("1 targets copied (10000 bytes)"), "{out}");
    let out = s.ok(&["catalog", "verify", share_s]);
    assert!(out.contains("mirror OK: 1 targets verified"), "{out}");

    // Verifying with an explicit pinned root works without the catalog.
    let root = s.data().join("catalog/repo/metadata/1.root.json");
    let out = Command::new(env!("CARGO_BIN_EXE_updater-server"))
        .args([
            "--data-dir",
            "/nonexistent",
            "catalog",
            "verify",
            share_s,
            "--root",
        ])
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("mirror OK"));

    let blob = find_file(&share.join("targets"));
    let mut bytes = fs::read(&blob).unwrap();
    bytes[0] ^= 0x80;
    fs::write(&blob, bytes).unwrap();
    let err = s.fails(&["catalog", "verify", share_s]);
    assert!(err.contains("corrupt: targets/acme/voyager/2.14/"), "{err}");
    assert!(err.contains("has 1 problem(s)"), "{err}");

    // The catalog's own store: a damaged blob is reported too.
    s.ok(&["catalog", "verify"]);
    let own = find_file(&s.data().join("catalog/blobs/sha256"));
    fs::write(&own, b"rot").unwrap();
    assert!(s.fails(&["catalog", "verify"]).contains("corrupt"));
}

fn find_file(dir: &Path) -> PathBuf {
    walk(dir)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no file under {}", dir.display()))
}

/// A 600 MiB image is imported under a 256 MiB address-space limit: the
/// import streams, it never holds the image in memory.
#[test]
fn large_import_streams_under_a_memory_limit() {
    let s = Scratch::new();
    s.ok(&["catalog", "keys", "init"]);
    let big = s.path("big.bin");
    let f = fs::File::create(&big).unwrap();
    f.set_len(600 << 20).unwrap();
    drop(f);
    let mut args = vec![
        "--as=268435456".to_owned(),
        env!("CARGO_BIN_EXE_updater-server").to_owned(),
        "--data-dir".to_owned(),
        s.data().to_str().unwrap().to_owned(),
    ];
    args.extend(
        import_args(big.to_str().unwrap(), &[])
            .iter()
            .map(|a| a.to_string()),
    );
    let out = Command::new("prlimit").args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("size:             629145600 bytes"));
}

/// SIGKILL in the middle of an import leaves no blob under a final name and
/// no release; the catalog still verifies.
#[test]
fn killed_import_leaves_no_partial_blob() {
    let s = Scratch::new();
    s.ok(&["catalog", "keys", "init"]);
    let fifo = s.path("slow-source");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let mut child = s
        .cmd(&import_args(fifo.to_str().unwrap(), &["--format", "raw"]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut writer = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    // 8 MiB written means the importer has read (and written to tmp/) most of it.
    writer.write_all(&vec![0xab; 8 << 20]).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    drop(writer);

    let blobs: Vec<_> = walk(&s.data().join("catalog/blobs/sha256"));
    assert!(
        blobs.is_empty(),
        "partial blob under a final name: {blobs:?}"
    );
    assert_eq!(s.ok(&["catalog", "list", "--json"]).trim(), "[]");
    s.ok(&["catalog", "verify"]);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
