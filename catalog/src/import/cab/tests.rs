use super::*;

const META: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<component type="firmware">
  <id>com.acme.voyager8200.firmware</id>
  <name>Voyager 8200</name>
  <developer_name>Acme Audio</developer_name>
  <provides>
    <firmware type="flashed">2082b5e0-7a64-478a-b1b2-e3404fab6dad</firmware>
    <firmware type="runtime">ignored</firmware>
  </provides>
  <releases>
    <release version="2.14.0" urgency="high" install_duration="90">
      <checksum filename="firmware.bin" target="content" type="sha256">ABCD</checksum>
      <description><p>Fixes echo.</p><ul><li>Better <em>battery</em></li></ul></description>
    </release>
    <release version="2.13.0"/>
  </releases>
  <custom><value key="LVFS::VersionFormat">triplet</value></custom>
</component>"#;

#[test]
fn metainfo_fields() {
    let r = parse_metainfo("x.metainfo.xml", META).unwrap();
    assert_eq!(r.info.component_id, "com.acme.voyager8200.firmware");
    assert_eq!(r.info.guids, vec!["2082b5e0-7a64-478a-b1b2-e3404fab6dad"]);
    assert_eq!(r.name, "Voyager 8200");
    assert_eq!(r.vendor.as_deref(), Some("Acme Audio"));
    assert_eq!(r.version, "2.14.0");
    assert_eq!(r.version_format, VersionFormat::Plain);
    assert_eq!(r.urgency, Some(Urgency::High));
    assert_eq!(r.install_duration_secs, Some(90));
    assert_eq!(r.description, "Fixes echo.\n- Better battery");
    assert_eq!(
        r.checksums,
        vec![ContentChecksum {
            file: "firmware.bin".into(),
            kind: "sha256".into(),
            value: Some("ABCD".into()),
        }]
    );
}

#[test]
fn metainfo_rejects_with_reason() {
    let cases: &[(&str, &str)] = &[
        ("<component", "malformed XML"),
        ("<foo type=\"firmware\"/>", "root element is <foo>"),
        ("<component type=\"desktop\"/>", "not of type=\"firmware\""),
        (
            "<component type=\"firmware\"><name>n</name></component>",
            "missing <id>",
        ),
        (
            "<component type=\"firmware\"><id>a</id><name>n</name></component>",
            "missing <releases><release>",
        ),
        (
            "<component type=\"firmware\"><id>a</id><name>n</name><releases><release/></releases></component>",
            "no version attribute",
        ),
        (
            "<component type=\"firmware\"><id>a</id><name>n</name><releases><release version=\"1\" urgency=\"asap\"/></releases></component>",
            "\"asap\" is not low",
        ),
        (
            "<component type=\"firmware\"><id>a</id><name>n</name><provides><firmware type=\"flashed\">nope</firmware></provides><releases><release version=\"1\"/></releases></component>",
            "is not a GUID",
        ),
        (
            "<component type=\"firmware\"><id>a</id><name>n</name><releases><release version=\"1\"><checksum target=\"content\" type=\"sha1\">xyz</checksum></release></releases></component>",
            "not a hex digest",
        ),
        (
            "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><component type=\"firmware\"/>",
            "malformed XML",
        ),
    ];
    for (xml, want) in cases {
        let err = parse_metainfo("m.metainfo.xml", xml)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{xml}\n=> {err}\nwanted {want}");
        assert!(err.starts_with("m.metainfo.xml: "), "{err}");
    }
}

#[test]
fn integer_versions_are_printed_in_their_format() {
    let cases = [
        ("16908291", Some("triplet"), "1.2.3"),
        ("16909060", Some("quad"), "1.2.3.4"),
        ("65539", Some("pair"), "1.3"),
        ("532", Some("bcd"), "2.14"),
        ("1.2.3", Some("triplet"), "1.2.3"),
        ("42", None, "42"),
    ];
    for (v, f, want) in cases {
        assert_eq!(normalise_version(v, f), want, "{v} {f:?}");
    }
}
