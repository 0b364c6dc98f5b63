//! Descriptor, status and memory-layout parsing; the 16 status codes as typed errors.

use std::time::Duration;

use dfu::host::{
    DescriptorError, DeviceError, DeviceInfo, DeviceMatcher, DfuAttributes, DfuError, DfuHost,
    DfuInterface, DfuMode, DfuState, DfuStatus, FunctionalDescriptor, LayoutError, MemoryLayout,
    Setup, StatusResponse, Transport, TransportError,
};
use dfu::quirks::Quirks;

#[test]
fn functional_descriptor_parses_all_fields() {
    let cases: [(&[u8], u8, u16, u16, u16); 3] = [
        (
            &[9, 0x21, 0x0B, 0xE8, 0x03, 0x00, 0x08, 0x1A, 0x01],
            0x0B,
            1000,
            2048,
            0x011A,
        ),
        (
            &[9, 0x21, 0x07, 0xFF, 0x00, 0x40, 0x00, 0x10, 0x01],
            0x07,
            255,
            64,
            0x0110,
        ),
        // DFU 1.0: 7 bytes, no bcdDFUVersion.
        (
            &[7, 0x21, 0x01, 0x00, 0x00, 0x00, 0x01],
            0x01,
            0,
            256,
            0x0100,
        ),
    ];
    for (bytes, attrs, detach, size, version) in cases {
        let d = FunctionalDescriptor::parse(bytes).unwrap();
        assert_eq!(d.attributes, DfuAttributes::from_bits(attrs));
        assert_eq!(d.attributes.bits(), attrs);
        assert_eq!(
            (d.detach_timeout_ms, d.transfer_size, d.dfu_version),
            (detach, size, version)
        );
        assert_eq!(d.is_dfuse(), version == 0x011A);
    }
    let d =
        FunctionalDescriptor::parse(&[9, 0x21, 0x0B, 0xE8, 0x03, 0x00, 0x08, 0x1A, 0x01]).unwrap();
    assert_eq!(
        d.attributes,
        DfuAttributes {
            can_download: true,
            can_upload: true,
            manifestation_tolerant: false,
            will_detach: true
        }
    );
    assert_eq!(FunctionalDescriptor::parse(&d.to_bytes()).unwrap(), d);
}

#[test]
fn functional_descriptor_errors() {
    assert_eq!(
        FunctionalDescriptor::parse(&[9, 0x21, 0]),
        Err(DescriptorError::TooShort(3))
    );
    assert_eq!(
        FunctionalDescriptor::parse(&[9, 0x24, 0, 0, 0, 0, 0, 0, 0]),
        Err(DescriptorError::WrongType(0x24))
    );
    // Found after another class descriptor among the interface's extra bytes.
    let extra = [5, 0x24, 1, 2, 3, 9, 0x21, 0x04, 0, 0, 0, 4, 0x10, 0x01];
    let d = FunctionalDescriptor::find_in(&extra).unwrap();
    assert_eq!(
        (d.transfer_size, d.attributes.manifestation_tolerant),
        (1024, true)
    );
    assert_eq!(
        FunctionalDescriptor::find_in(&[5, 0x24, 1, 2, 3]),
        Err(DescriptorError::Missing)
    );
}

#[test]
fn interface_class_subclass_protocol() {
    let cases = [
        ((0xFE, 0x01, 1), Some(DfuMode::Runtime)),
        ((0xFE, 0x01, 2), Some(DfuMode::Dfu)),
        ((0xFE, 0x01, 0), None),
        ((0xFE, 0x02, 1), None),
        ((0x03, 0x01, 2), None),
    ];
    for ((c, s, p), mode) in cases {
        assert_eq!(DfuMode::from_interface(c, s, p), mode, "{c:#x}/{s:#x}/{p}");
    }
}

#[test]
fn status_response_roundtrip() {
    let bytes = [0x07, 0x10, 0x27, 0x00, 10, 3];
    let st = StatusResponse::parse(&bytes).unwrap();
    assert_eq!(st.status, DfuStatus::ErrVerify);
    assert_eq!(st.poll_timeout, Duration::from_millis(10_000));
    assert_eq!(st.state, DfuState::DfuError);
    assert_eq!(st.string_index, 3);
    assert_eq!(st.to_bytes(), bytes);
    assert_eq!(StatusResponse::parse(&bytes[..5]), None);
    assert_eq!(StatusResponse::parse(&[0x10, 0, 0, 0, 2, 0]), None);
    assert_eq!(StatusResponse::parse(&[0, 0, 0, 0, 11, 0]), None);
}

#[test]
fn memory_layout_strings() {
    let l = MemoryLayout::parse("@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg").unwrap();
    assert_eq!(l.name, "Internal Flash");
    assert_eq!(l.sectors.len(), 12);
    assert_eq!(l.total_size(), 1024 * 1024);
    assert_eq!(
        (l.sectors[4].address, l.sectors[4].size),
        (0x0801_0000, 64 * 1024)
    );
    assert_eq!(l.sectors[11].address, 0x080E_0000);
    assert!(l
        .sectors
        .iter()
        .all(|s| s.readable && s.erasable && s.writable));
    let touched = l.sectors_for(0x0800_3000, 0x2000).unwrap();
    assert_eq!(
        touched.iter().map(|s| s.address).collect::<Vec<_>>(),
        vec![0x0800_0000, 0x0800_4000]
    );
    assert_eq!(l.sectors_for(0x0810_0000, 1), None);

    let multi =
        MemoryLayout::parse("@Option Bytes  /0x1FFFC000/01*016 e/0x1FFEC000/01*016 a").unwrap();
    assert_eq!(multi.sectors.len(), 2);
    assert_eq!(
        (
            multi.sectors[0].size,
            multi.sectors[0].writable,
            multi.sectors[0].erasable
        ),
        (16, true, false)
    );
    assert_eq!(
        (multi.sectors[1].address, multi.sectors[1].writable),
        (0x1FFE_C000, false)
    );
    let mb = MemoryLayout::parse("@SPI /0x90000000/2*1Mg").unwrap();
    assert_eq!(mb.total_size(), 2 << 20);

    let bad = [
        ("Internal/0x0/1*1Kg", LayoutError::MissingAt),
        (
            "@X/08000000/1*1Kg",
            LayoutError::BadAddress("08000000".into()),
        ),
        (
            "@X/0x08000000/1*1Kz",
            LayoutError::BadSectors("1*1Kz".into()),
        ),
        (
            "@X/0x08000000/x*1Kg",
            LayoutError::BadSectors("x*1Kg".into()),
        ),
        ("@X", LayoutError::Empty),
    ];
    for (s, e) in bad {
        assert_eq!(MemoryLayout::parse(s), Err(e), "{s}");
    }
}

#[test]
fn selector_parsing() {
    let m = DeviceMatcher::parse_selector("1209:0003");
    assert_eq!(
        (m.vendor_id, m.product_id, m.serial),
        (Some(0x1209), Some(0x0003), None)
    );
    let m = DeviceMatcher::parse_selector("VH5200-0001");
    assert_eq!(m.serial.as_deref(), Some("VH5200-0001"));
    assert_eq!(m.vendor_id, None);
}

/// A transport that answers every GETSTATUS with a fixed status in dfuERROR.
#[derive(Debug)]
struct FixedStatus {
    info: DeviceInfo,
    status: DfuStatus,
}

impl Transport for FixedStatus {
    fn device(&self) -> &DeviceInfo {
        &self.info
    }
    fn control_in(
        &mut self,
        _: Setup,
        buf: &mut [u8],
        _: Duration,
    ) -> Result<usize, TransportError> {
        let r = StatusResponse {
            status: self.status,
            poll_timeout: Duration::ZERO,
            state: DfuState::DfuError,
            string_index: 0,
        }
        .to_bytes();
        buf[..6].copy_from_slice(&r);
        Ok(6)
    }
    fn control_out(&mut self, _: Setup, d: &[u8], _: Duration) -> Result<usize, TransportError> {
        Ok(d.len())
    }
    fn set_alt_setting(&mut self, _: u8, _: u8) -> Result<(), TransportError> {
        Ok(())
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        Ok(())
    }
    fn wait_reenumeration(&mut self, _: &DeviceMatcher, _: Duration) -> Result<(), TransportError> {
        Err(TransportError::Timeout)
    }
    fn sleep(&mut self, _: Duration) {}
}

fn dfu_info() -> DeviceInfo {
    DeviceInfo {
        vendor_id: 0x1209,
        product_id: 1,
        bcd_device: 0,
        serial: None,
        product: None,
        port_path: None,
        interfaces: vec![DfuInterface {
            number: 0,
            alt_setting: 0,
            mode: DfuMode::Dfu,
            name: None,
            functional: FunctionalDescriptor::parse(&[9, 0x21, 0x0F, 0, 0, 0, 4, 0x10, 0x01])
                .unwrap(),
        }],
    }
}

#[test]
fn all_sixteen_status_codes_become_typed_errors_with_help_desk_messages() {
    let mut messages = std::collections::HashSet::new();
    for (i, status) in DfuStatus::ALL.into_iter().enumerate() {
        assert_eq!(status as usize, i);
        assert_eq!(DfuStatus::from_u8(i as u8), Some(status));
        let t = FixedStatus {
            info: dfu_info(),
            status,
        };
        let mut host = DfuHost::with_quirks(t, Quirks::default()).unwrap();
        let err = host.get_status_checked().unwrap_err();
        // dfuERROR with OK status is reported as errUNKNOWN.
        let expected = if status == DfuStatus::Ok {
            DfuStatus::ErrUnknown
        } else {
            status
        };
        assert_eq!(
            err,
            DfuError::Device(DeviceError {
                status: expected,
                state: DfuState::DfuError,
                description: None,
            })
        );
        let msg = err.to_string();
        assert!(msg.contains(expected.help()), "{msg}");
        assert!(msg.contains(expected.name()), "{msg}");
        assert!(!status.help().is_empty());
        messages.insert(status.help());
    }
    assert_eq!(messages.len(), 16, "every status has its own message");
    assert_eq!(DfuStatus::from_u8(16), None);
}

#[test]
fn state_codes_and_names() {
    for (i, s) in DfuState::ALL.into_iter().enumerate() {
        assert_eq!(DfuState::from_u8(i as u8), Some(s));
    }
    assert_eq!(
        DfuState::DfuManifestWaitReset.to_string(),
        "dfuMANIFEST-WAIT-RESET"
    );
    assert_eq!(DfuState::from_u8(11), None);
}

#[cfg(feature = "usb")]
#[test]
fn usb_descriptor_conversion_is_pure() {
    use dfu::usb::{interfaces_from_raw, port_path, RawInterface};
    let func = vec![9, 0x21, 0x0B, 0xE8, 0x03, 0x00, 0x08, 0x1A, 0x01];
    let raw = vec![
        RawInterface {
            number: 0,
            alt_setting: 0,
            class: 0x01,
            subclass: 0x01,
            protocol: 0,
            name: None,
            extra: vec![],
        },
        RawInterface {
            number: 3,
            alt_setting: 0,
            class: 0xFE,
            subclass: 0x01,
            protocol: 1,
            name: None,
            extra: func.clone(),
        },
        RawInterface {
            number: 0,
            alt_setting: 1,
            class: 0xFE,
            subclass: 0x01,
            protocol: 2,
            name: Some("@Flash/0x08000000/4*16Kg".into()),
            extra: func,
        },
        RawInterface {
            number: 4,
            alt_setting: 0,
            class: 0xFE,
            subclass: 0x01,
            protocol: 2,
            name: None,
            extra: vec![5, 0x24, 0, 0, 0],
        },
    ];
    let ifaces = interfaces_from_raw(&raw);
    assert_eq!(ifaces.len(), 2);
    assert_eq!((ifaces[0].number, ifaces[0].mode), (3, DfuMode::Runtime));
    assert_eq!((ifaces[1].alt_setting, ifaces[1].mode), (1, DfuMode::Dfu));
    assert!(ifaces[1].functional.is_dfuse());
    assert_eq!(port_path(3, &[1, 4, 2]), "3-1.4.2");
}
