use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn file_with(tenant: Option<&str>, state: Option<&str>) -> FileConfig {
    FileConfig {
        tenant_id: tenant.map(Into::into),
        state_dir: state.map(PathBuf::from),
        ..FileConfig::default()
    }
}

#[test]
fn precedence_table_args_env_file_default() {
    // (arg, env, file, expected) for TENANT_ID and the state directory alike.
    type Case<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
    );
    let cases: [Case<'_>; 8] = [
        (Some("a"), Some("e"), Some("f"), Some("a")),
        (Some("a"), None, Some("f"), Some("a")),
        (None, Some("e"), Some("f"), Some("e")),
        (None, None, Some("f"), Some("f")),
        (None, Some("e"), None, Some("e")),
        (None, None, None, None),
        // Empty values count as unset.
        (Some(""), Some("e"), Some("f"), Some("e")),
        (None, Some("  "), Some("f"), Some("f")),
    ];
    for (arg, env_value, file, expected) in cases {
        let args = Overrides {
            tenant_id: arg.map(Into::into),
            state_dir: arg.map(PathBuf::from),
            ..Overrides::default()
        };
        let env: HashMap<&str, String> = env_value
            .map(|v| {
                [
                    (env::TENANT_ID, v.to_owned()),
                    (env::STATE_DIR, v.to_owned()),
                ]
                .into_iter()
                .collect()
            })
            .unwrap_or_default();
        let c = Config::resolve(&args, |n| env.get(n).cloned(), file_with(file, file));
        assert_eq!(
            c.tenant_id.as_deref(),
            expected,
            "{arg:?} {env_value:?} {file:?}"
        );
        let state = expected.unwrap_or(DEFAULT_STATE_DIR);
        assert_eq!(
            c.state_dir,
            PathBuf::from(state),
            "{arg:?} {env_value:?} {file:?}"
        );
    }
}

#[test]
fn parses_an_installer_file_with_simulated_devices() {
    let text = r#"
tenant_id = "3f2a9c0d4e5b6a71"
server_url = "http://127.0.0.1:8080/"
tenant_token = "upde_x"
backend = "simulated"
poll_interval_secs = 3600

[[simulated.devices]]
profile = "headset_tolerant"
serial = "SN-9"

[[simulated.devices]]
hid = "other_vendor_headset"
"#;
    let file = FileConfig::parse(Path::new("agent.toml"), text).unwrap();
    let c = Config::resolve(&Overrides::default(), |_| None, file);
    assert_eq!(c.backend, BackendKind::Simulated);
    assert_eq!(c.poll_interval, Duration::from_secs(3600));
    assert_eq!(c.scan_interval, Duration::from_secs(60));
    assert_eq!(c.simulated.len(), 2);
    assert_eq!(c.simulated[0].profile.as_deref(), Some("headset_tolerant"));
    assert_eq!(c.simulated[0].serial.as_deref(), Some("SN-9"));
    assert_eq!(c.simulated[1].hid.as_deref(), Some("other_vendor_headset"));
    let p = c.installer().unwrap();
    assert_eq!(
        p.server_url, "http://127.0.0.1:8080",
        "trailing slash trimmed"
    );
    assert_eq!(p.tenant_id, "3f2a9c0d4e5b6a71");
    assert!(
        !format!("{p:?}").contains("upde_x"),
        "the token is not logged"
    );
}

#[test]
fn defaults_and_errors() {
    let c = Config::resolve(&Overrides::default(), |_| None, FileConfig::default());
    assert_eq!(c.backend, BackendKind::Hardware);
    assert_eq!(c.poll_interval, Duration::from_secs(6 * 3600));
    assert_eq!(c.state_dir, PathBuf::from("/var/lib/update-agent"));
    let e = c.installer().unwrap_err().to_string();
    assert!(
        e.contains("TENANT_ID is not set") && e.contains("--tenant-id"),
        "{e}"
    );

    let bad = [
        "tenant = \"typo\"",
        "backend = \"usb\"",
        "[[simulated.devices]]\nprofil = \"x\"",
        "poll_interval_secs = \"6h\"",
    ];
    for text in bad {
        let e = FileConfig::parse(Path::new("agent.toml"), text).unwrap_err();
        assert!(
            e.to_string().starts_with("invalid config file agent.toml"),
            "{e}"
        );
    }

    let mut c = c;
    c.tenant_id = Some("t".into());
    c.tenant_token = Some("upde_x".into());
    c.server_url = Some("ftp://x".into());
    let e = c.installer().unwrap_err().to_string();
    assert!(e.contains("not an http:// or https:// URL"), "{e}");
    let e = FileConfig::read(Path::new("/nonexistent/agent.toml")).unwrap_err();
    assert!(e.to_string().contains("cannot read config file"), "{e}");
}

#[test]
fn an_accelerated_clock_runs_only_the_simulated_backend() {
    let clock = "[simulated.clock]\nstart = \"2027-03-27T22:00:00Z\"\nreal_start = \"2026-11-23T04:00:00Z\"\nspeed = 600\n";
    let resolve = |backend: &str| {
        let text = format!("backend = \"{backend}\"\n{clock}");
        let file = FileConfig::parse(Path::new("agent.toml"), &text).unwrap();
        Config::resolve(&Overrides::default(), |_| None, file)
    };
    let sim = resolve("simulated");
    assert_eq!(sim.simulated_clock.map(|c| c.speed()), Some(600));
    let c = sim.clock().unwrap();
    assert_eq!(
        c.real_wait(chrono::Duration::hours(1)),
        Duration::from_secs(6)
    );
    let e = resolve("hardware").clock().err().unwrap().to_string();
    assert!(e.contains("needs backend = \"simulated\""), "{e}");
    let plain = Config::resolve(&Overrides::default(), |_| None, FileConfig::default());
    assert_eq!(
        plain.clock().unwrap().real_wait(chrono::Duration::hours(1)),
        Duration::from_secs(3600)
    );
    for bad in ["speed = 0", "speed = 600\nstart_real = 1"] {
        let text = format!(
            "[simulated.clock]\nstart = \"2027-03-27T22:00:00Z\"\nreal_start = \"2026-11-23T04:00:00Z\"\n{bad}\n"
        );
        let e = FileConfig::parse(Path::new("agent.toml"), &text).unwrap_err();
        assert!(
            e.to_string().starts_with("invalid config file"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn server_url_must_be_https_beyond_loopback() {
    // (SERVER_URL, accepted)
    let table = [
        ("https://updates.example.com", true),
        ("https://10.0.0.5:8443", true),
        ("http://127.0.0.1:8080", true),
        ("http://127.9.9.9", true),
        ("http://localhost:8080", true),
        ("http://[::1]:8080", true),
        ("http://updates.example.com", false),
        ("http://10.0.0.5:8080", false),
        ("http://localhost.evil.example", false),
        ("http://[::ffff:10.0.0.1]", false),
        ("ftp://127.0.0.1", false),
        ("127.0.0.1:8080", false),
    ];
    for (url, ok) in table {
        assert_eq!(check_server_url(url).is_ok(), ok, "{url}");
    }
}

#[test]
fn catalog_root_pin_is_64_hex_digits() {
    let base = |pin: Option<&str>| Config {
        tenant_id: Some("t".into()),
        server_url: Some("https://updates.example.com".into()),
        tenant_token: Some("upde_x".into()),
        catalog_root_sha256: pin.map(str::to_owned),
        ..Config::resolve(&Overrides::default(), |_| None, FileConfig::default())
    };
    let pin = "AB".repeat(32);
    assert_eq!(
        base(Some(&pin)).installer().unwrap().catalog_root_sha256,
        Some("ab".repeat(32))
    );
    assert_eq!(base(None).installer().unwrap().catalog_root_sha256, None);
    for bad in ["ab", "zz".repeat(32).as_str(), &"a".repeat(65)] {
        let e = base(Some(bad)).installer().unwrap_err().to_string();
        assert!(e.contains("CATALOG_ROOT_SHA256"), "{bad}: {e}");
    }
}

#[test]
fn server_certificate_pin_is_64_hex_digits_and_needs_https() {
    let base = |url: &str, pin: Option<&str>| Config {
        tenant_id: Some("t".into()),
        server_url: Some(url.into()),
        tenant_token: Some("upde_x".into()),
        server_cert_sha256: pin.map(str::to_owned),
        ..Config::resolve(&Overrides::default(), |_| None, FileConfig::default())
    };
    let https = "https://updates.example.com";
    assert_eq!(
        base(https, Some(&format!(" {} ", "CD".repeat(32))))
            .installer()
            .unwrap()
            .server_cert_sha256,
        Some("cd".repeat(32))
    );
    assert_eq!(
        base(https, None).installer().unwrap().server_cert_sha256,
        None
    );
    for (url, pin, needle) in [
        (https, "cd", "is not 64 hexadecimal digits"),
        (https, &"g".repeat(64)[..], "is not 64 hexadecimal digits"),
        (
            "http://127.0.0.1:8080",
            &"cd".repeat(32)[..],
            "needs an https SERVER_URL",
        ),
    ] {
        let e = base(url, Some(pin)).installer().unwrap_err().to_string();
        assert!(
            e.contains("SERVER_CERT_SHA256") && e.contains(needle),
            "{pin}: {e}"
        );
    }
    // The environment and the config file give it too.
    let from_env = Config::resolve(
        &Overrides::default(),
        |name| (name == "SERVER_CERT_SHA256").then(|| "ab".repeat(32)),
        FileConfig::default(),
    );
    assert_eq!(from_env.server_cert_sha256, Some("ab".repeat(32)));
    let file = FileConfig::parse(
        Path::new("agent.toml"),
        &format!("server_cert_sha256 = \"{}\"\n", "ef".repeat(32)),
    )
    .unwrap();
    let from_file = Config::resolve(&Overrides::default(), |_| None, file);
    assert_eq!(from_file.server_cert_sha256, Some("ef".repeat(32)));
}
