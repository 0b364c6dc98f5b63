//! The host's recovery from every DFU state it can meet (table-driven).

mod host_common;

use std::time::Duration;

use dfu::host::{
    DfuError, DfuHost, DfuState, DfuStatus, NoProgress, Request, Setup, Transport, TransportError,
    REQUEST_TYPE_IN, REQUEST_TYPE_OUT,
};
use dfu::quirks::QuirkTable;
use host_common::*;
use test_devices::{BusTransport, ModelProfile, VirtualBus};

const T: Duration = Duration::from_secs(1);

fn out(
    h: &mut DfuHost<BusTransport>,
    r: Request,
    value: u16,
    data: &[u8],
) -> Result<usize, TransportError> {
    let s = Setup {
        request_type: REQUEST_TYPE_OUT,
        request: r as u8,
        value,
        index: 0,
    };
    h.transport_mut().control_out(s, data, T)
}

fn inp(h: &mut DfuHost<BusTransport>, r: Request, len: usize) -> Result<usize, TransportError> {
    let s = Setup {
        request_type: REQUEST_TYPE_IN,
        request: r as u8,
        value: 0,
        index: 0,
    };
    let mut buf = vec![0; len];
    h.transport_mut().control_in(s, &mut buf, T)
}

/// A host on a device (tolerant unless `tolerant` is false) brought into `state`.
fn host_in(state: DfuState, tolerant: bool) -> (VirtualBus, DfuHost<BusTransport>) {
    let profile = ModelProfile {
        manifestation_tolerant: tolerant,
        ..ModelProfile::headset_tolerant()
    };
    let small = image_for(&profile, V2, 100);
    let (bus, id) = bus_with(profile);
    let mut h = DfuHost::new(bus.open_id(id).unwrap(), QuirkTable::new()).unwrap();
    if state == DfuState::AppIdle {
        return (bus, h);
    }
    h.enter_dfu_mode(&mut NoProgress).unwrap();
    let ms2 = Duration::from_millis(2);
    match state {
        DfuState::DfuIdle => {}
        DfuState::DfuDnloadSync => {
            out(&mut h, Request::Dnload, 0, &small).unwrap();
        }
        DfuState::DfuDnbusy => {
            out(&mut h, Request::Dnload, 0, &small).unwrap();
            inp(&mut h, Request::GetStatus, 6).unwrap();
        }
        DfuState::DfuDnloadIdle | DfuState::DfuManifestSync | DfuState::DfuManifestWaitReset => {
            out(&mut h, Request::Dnload, 0, &small).unwrap();
            inp(&mut h, Request::GetStatus, 6).unwrap();
            h.transport_mut().sleep(ms2);
            inp(&mut h, Request::GetStatus, 6).unwrap();
            if state != DfuState::DfuDnloadIdle {
                out(&mut h, Request::Dnload, 1, &[]).unwrap();
            }
            if state == DfuState::DfuManifestWaitReset {
                inp(&mut h, Request::GetStatus, 6).unwrap();
                h.transport_mut().sleep(Duration::from_millis(100));
            }
        }
        DfuState::DfuUploadIdle => {
            inp(&mut h, Request::Upload, 2048).unwrap();
        }
        DfuState::DfuError => {
            assert_eq!(
                out(&mut h, Request::ClrStatus, 0, &[]),
                Err(TransportError::Stall)
            );
        }
        other => panic!("not prepared: {other}"),
    }
    (bus, h)
}

#[test]
fn recover_reaches_dfu_idle_from_every_recoverable_state() {
    // (state, status cleared, host requests the device saw as too early)
    let cases = [
        (DfuState::DfuIdle, None, 0),
        (DfuState::DfuDnloadSync, None, 0),
        // Recovering without knowing the last poll timeout, the first GETSTATUS comes too
        // early; the device stalls it (errSTALLEDPKT) and the host clears that.
        (DfuState::DfuDnbusy, Some(DfuStatus::ErrStalledPkt), 1),
        (DfuState::DfuDnloadIdle, None, 0),
        (DfuState::DfuManifestSync, None, 0),
        (DfuState::DfuUploadIdle, None, 0),
        (DfuState::DfuError, Some(DfuStatus::ErrStalledPkt), 0),
    ];
    for (state, cleared, early) in cases {
        let (bus, mut h) = host_in(state, true);
        let id = h.transport().id();
        assert_eq!(bus.device(id).unwrap().state(), state);
        assert_eq!(h.recover().unwrap(), cleared, "{state}");
        assert_eq!(h.get_state().unwrap(), DfuState::DfuIdle, "{state}");
        assert_eq!(bus.device(id).unwrap().violations().len(), early, "{state}");
    }
}

#[test]
fn states_recover_cannot_leave_are_reported() {
    let (_bus, mut h) = host_in(DfuState::AppIdle, true);
    assert_eq!(
        h.recover().unwrap_err(),
        DfuError::UnexpectedState {
            during: "recovering to dfuIDLE",
            state: DfuState::AppIdle
        }
    );
    let (bus, mut h) = host_in(DfuState::DfuManifestWaitReset, false);
    let id = h.transport().id();
    h.transport_mut().sleep(Duration::ZERO);
    let now = bus.now();
    bus.with_device(id, |d| d.tick(now));
    assert_eq!(
        bus.device(id).unwrap().state(),
        DfuState::DfuManifestWaitReset
    );
    // The device no longer answers; only a reset helps.
    assert_eq!(
        h.recover().unwrap_err(),
        DfuError::Transport {
            op: "GETSTATUS",
            source: TransportError::Stall
        }
    );
    assert!(h.reset_to_runtime(&mut NoProgress).unwrap());
    assert_eq!(h.device().bcd_device, 0x020E);
}

#[test]
fn download_from_a_dirty_state_recovers_first() {
    for state in [
        DfuState::DfuError,
        DfuState::DfuUploadIdle,
        DfuState::DfuDnloadIdle,
    ] {
        let (bus, mut h) = host_in(state, true);
        let img = image_for(
            h.transport()
                .bus()
                .device(h.transport().id())
                .unwrap()
                .profile(),
            V2,
            3000,
        );
        assert_eq!(
            h.download(&img, &mut NoProgress).unwrap(),
            dfu::host::ManifestOutcome::Complete,
            "{state}"
        );
        assert_eq!(
            bus.device(h.transport().id()).unwrap().firmware_version(),
            Some(V2)
        );
    }
}

#[test]
fn download_and_upload_refuse_runtime_mode() {
    let (_bus, mut h) = host_in(DfuState::AppIdle, true);
    let expected = |during| DfuError::UnexpectedState {
        during,
        state: DfuState::AppIdle,
    };
    assert_eq!(
        h.download(&[1, 2, 3], &mut NoProgress).unwrap_err(),
        expected("starting a download")
    );
    assert_eq!(
        h.upload(None, &mut NoProgress).unwrap_err(),
        expected("reading firmware")
    );
}
