//! The simulated device follows the DFU 1.1 state diagram, transition by transition.

use std::time::Duration;

use dfu::host::{DfuMode, DfuState, DfuStatus, Request, Setup, REQUEST_TYPE_IN, REQUEST_TYPE_OUT};
use test_devices::image;
use test_devices::{Failure, ModelProfile, SimDevice};

use DfuState::*;

#[derive(Debug, Clone, Copy)]
enum Step {
    Detach,
    Dnload(usize),
    DnloadZero,
    Upload(usize),
    GetStatus,
    GetState,
    ClrStatus,
    Abort,
    Reset,
    Wait(u64),
    WaitThenGetStatus(u64),
}

struct H {
    d: SimDevice,
    now: Duration,
    img: Vec<u8>,
    sent: usize,
}

impl H {
    fn new(tolerant: bool) -> Self {
        let profile = ModelProfile {
            manifestation_tolerant: tolerant,
            ..ModelProfile::headset_tolerant()
        };
        let img = image::build(
            profile.runtime_pid,
            image::FirmwareVersion::new(3, 0, 0),
            &[7; 100],
        );
        Self {
            d: SimDevice::new(profile),
            now: Duration::ZERO,
            img,
            sent: 0,
        }
    }

    fn out(&mut self, r: Request, value: u16, data: &[u8]) -> Result<(), Failure> {
        let s = Setup {
            request_type: REQUEST_TYPE_OUT,
            request: r as u8,
            value,
            index: 0,
        };
        self.d.control_out(s, data, self.now).map(|_| ())
    }

    fn inp(&mut self, r: Request, len: usize) -> Result<Vec<u8>, Failure> {
        let s = Setup {
            request_type: REQUEST_TYPE_IN,
            request: r as u8,
            value: 0,
            index: 0,
        };
        let mut buf = vec![0; len];
        let n = self.d.control_in(s, &mut buf, self.now)?;
        buf.truncate(n);
        Ok(buf)
    }

    fn step(&mut self, step: Step) -> Result<(), Failure> {
        match step {
            Step::Detach => self.out(Request::Detach, 1000, &[]),
            Step::Dnload(n) => {
                let chunk: Vec<u8> = if self.sent < self.img.len() {
                    let end = (self.sent + n).min(self.img.len());
                    self.img[self.sent..end].to_vec()
                } else {
                    vec![0; n]
                };
                self.sent += chunk.len();
                self.out(Request::Dnload, 0, &chunk)
            }
            Step::DnloadZero => self.out(Request::Dnload, 1, &[]),
            Step::Upload(n) => self.inp(Request::Upload, n).map(|_| ()),
            Step::GetStatus => self.inp(Request::GetStatus, 6).map(|_| ()),
            Step::GetState => self.inp(Request::GetState, 1).map(|_| ()),
            Step::ClrStatus => self.out(Request::ClrStatus, 0, &[]),
            Step::Abort => self.out(Request::Abort, 0, &[]),
            Step::Reset => {
                self.d.on_reset(self.now);
                Ok(())
            }
            Step::Wait(ms) => {
                self.now += Duration::from_millis(ms);
                self.d.tick(self.now);
                Ok(())
            }
            Step::WaitThenGetStatus(ms) => {
                self.now += Duration::from_millis(ms);
                self.step(Step::GetStatus)
            }
        }
    }

    fn ok(&mut self, steps: &[Step]) {
        for s in steps {
            self.step(*s).unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        }
    }
}

/// A device (tolerant unless `ManifestWaitReset` is wanted) brought into `state`.
fn prepare(state: DfuState) -> H {
    use Step::*;
    let mut h = H::new(state != DfuManifestWaitReset);
    let to_dfu = [Detach, Reset];
    let to_dnload_idle = [Detach, Reset, Dnload(1024), GetStatus, Wait(2), GetStatus];
    match state {
        AppIdle => {}
        AppDetach => h.ok(&[Detach]),
        DfuIdle => h.ok(&to_dfu),
        DfuDnloadSync => h.ok(&[Detach, Reset, Dnload(1024)]),
        DfuDnbusy => h.ok(&[Detach, Reset, Dnload(1024), GetStatus]),
        DfuDnloadIdle => h.ok(&to_dnload_idle),
        DfuManifestSync => {
            h.ok(&to_dnload_idle);
            h.ok(&[DnloadZero]);
        }
        DfuManifest => {
            h.ok(&to_dnload_idle);
            h.ok(&[DnloadZero, GetStatus]);
        }
        DfuManifestWaitReset => {
            h.ok(&to_dnload_idle);
            h.ok(&[DnloadZero, GetStatus, Wait(100)]);
        }
        DfuUploadIdle => h.ok(&[Detach, Reset, Upload(2048)]),
        DfuError => {
            h.ok(&to_dfu);
            assert_eq!(h.step(ClrStatus), Err(Failure::Stall));
        }
    }
    assert_eq!(h.d.state(), state, "prepare {state}");
    h
}

#[test]
fn every_state_transition_of_the_dfu_1_1_diagram() {
    use Step::*;
    let stall = true;
    #[rustfmt::skip]
    let table: &[(DfuState, Step, DfuState, bool)] = &[
        (AppIdle, Detach, AppDetach, false),
        (AppIdle, GetStatus, AppIdle, false),
        (AppIdle, GetState, AppIdle, false),
        (AppIdle, Dnload(16), AppIdle, stall),
        (AppIdle, Upload(16), AppIdle, stall),
        (AppIdle, Reset, AppIdle, false),
        (AppDetach, GetStatus, AppDetach, false),
        (AppDetach, GetState, AppDetach, false),
        (AppDetach, Reset, DfuIdle, false),
        (AppDetach, Wait(1001), AppIdle, false),
        (AppDetach, Dnload(16), AppIdle, stall),
        (DfuIdle, Dnload(1024), DfuDnloadSync, false),
        (DfuIdle, DnloadZero, DfuError, stall),
        (DfuIdle, Upload(2048), DfuUploadIdle, false),
        (DfuIdle, Upload(8192), DfuIdle, false),
        (DfuIdle, Abort, DfuIdle, false),
        (DfuIdle, GetStatus, DfuIdle, false),
        (DfuIdle, GetState, DfuIdle, false),
        (DfuIdle, ClrStatus, DfuError, stall),
        (DfuIdle, Detach, DfuError, stall),
        (DfuIdle, Reset, AppIdle, false),
        (DfuDnloadSync, GetStatus, DfuDnbusy, false),
        (DfuDnloadSync, GetState, DfuDnloadSync, false),
        (DfuDnloadSync, Abort, DfuError, stall),
        (DfuDnloadSync, Dnload(16), DfuError, stall),
        (DfuDnbusy, GetStatus, DfuError, stall),
        (DfuDnbusy, Wait(2), DfuDnloadSync, false),
        (DfuDnbusy, WaitThenGetStatus(2), DfuDnloadIdle, false),
        (DfuDnloadIdle, Dnload(16), DfuDnloadSync, false),
        (DfuDnloadIdle, DnloadZero, DfuManifestSync, false),
        (DfuDnloadIdle, Abort, DfuIdle, false),
        (DfuDnloadIdle, GetStatus, DfuDnloadIdle, false),
        (DfuDnloadIdle, GetState, DfuDnloadIdle, false),
        (DfuDnloadIdle, Upload(16), DfuError, stall),
        (DfuDnloadIdle, ClrStatus, DfuError, stall),
        (DfuManifestSync, GetStatus, DfuManifest, false),
        (DfuManifestSync, GetState, DfuManifestSync, false),
        (DfuManifestSync, Abort, DfuError, stall),
        (DfuManifest, GetStatus, DfuError, stall),
        (DfuManifest, Wait(100), DfuManifestSync, false),
        (DfuManifest, WaitThenGetStatus(100), DfuIdle, false),
        (DfuManifestWaitReset, GetStatus, DfuManifestWaitReset, stall),
        (DfuManifestWaitReset, Reset, AppIdle, false),
        (DfuUploadIdle, Upload(2048), DfuUploadIdle, false),
        (DfuUploadIdle, Upload(8192), DfuIdle, false),
        (DfuUploadIdle, Abort, DfuIdle, false),
        (DfuUploadIdle, GetStatus, DfuUploadIdle, false),
        (DfuUploadIdle, GetState, DfuUploadIdle, false),
        (DfuUploadIdle, Dnload(16), DfuError, stall),
        (DfuError, GetStatus, DfuError, false),
        (DfuError, GetState, DfuError, false),
        (DfuError, ClrStatus, DfuIdle, false),
        (DfuError, Abort, DfuError, stall),
        (DfuError, Dnload(16), DfuError, stall),
    ];
    for &(from, step, to, stalled) in table {
        let mut h = prepare(from);
        let r = h.step(step);
        assert_eq!(r.is_err(), stalled, "{from} --{step:?}--> {r:?}");
        if stalled {
            assert_eq!(r, Err(Failure::Stall), "{from} --{step:?}");
        }
        h.d.tick(h.now);
        assert_eq!(h.d.state(), to, "{from} --{step:?}-->");
        if to == DfuError && from != DfuError {
            assert_eq!(h.d.status(), DfuStatus::ErrStalledPkt, "{from} --{step:?}");
        }
    }
    // Every one of the 11 states is covered as a source.
    for s in DfuState::ALL {
        assert!(table.iter().any(|r| r.0 == s), "{s} not covered");
    }
}

#[test]
fn getstatus_reports_state_status_and_poll_timeout() {
    let mut h = prepare(DfuDnloadSync);
    let resp = h.inp(Request::GetStatus, 6).unwrap();
    // OK, 2 ms, dfuDNBUSY, iString 0.
    assert_eq!(resp, vec![0, 2, 0, 0, 4, 0]);
    let mut h = prepare(DfuManifestSync);
    let resp = h.inp(Request::GetStatus, 6).unwrap();
    assert_eq!(resp, vec![0, 100, 0, 0, 7, 0]);
}

#[test]
fn reset_without_valid_application_stays_in_dfu_mode_with_errfirmware() {
    let mut h = prepare(DfuDnloadIdle);
    assert!(!h.d.has_valid_app());
    h.step(Step::Reset).unwrap();
    assert_eq!(h.d.mode(), DfuMode::Dfu);
    assert_eq!(
        (h.d.state(), h.d.status()),
        (DfuError, DfuStatus::ErrFirmware)
    );
    h.step(Step::ClrStatus).unwrap();
    assert_eq!(h.d.state(), DfuIdle);
}

#[test]
fn transitions_are_recorded_in_order() {
    let h = prepare(DfuDnloadIdle);
    assert_eq!(
        h.d.transitions(),
        &[
            (AppIdle, AppDetach),
            (AppDetach, DfuIdle),
            (DfuIdle, DfuDnloadSync),
            (DfuDnloadSync, DfuDnbusy),
            (DfuDnbusy, DfuDnloadSync),
            (DfuDnloadSync, DfuDnloadIdle),
        ]
    );
}
