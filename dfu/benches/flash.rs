//! Host overhead of flashing 8 MiB into a zero-latency simulated device.
//!
//! Run: `cargo bench -p dfu --bench flash`
//!
//! Three things are timed in the same process, in rotating order, on one reused device:
//! - **bare**: the minimal request sequence any DFU host must send (DETACH, reset,
//!   re-enumeration, one DNLOAD + GETSTATUS per block, zero-length DNLOAD, manifestation
//!   polls, reset; plus the UPLOAD blocks and a compare for read-back), written as a straight
//!   loop directly against the transport. This is the time the simulated device and bus spend.
//! - **host**: `dfu::host::flash()` doing the same update; `host - bare` is the overhead as a
//!   difference of two similar numbers (noisy: memory layout and cache effects of a few %).
//! - **host's own work**: `flash()` against a transport that does no work (canned replies),
//!   which measures the host directly, as a ratio to `bare`.

use std::time::{Duration, Instant};

use dfu::host::{
    flash, Backend, DeviceInfo, DeviceMatcher, DfuMode, DfuState, DfuStatus, FlashOptions,
    NoProgress, Request, Setup, StatusResponse, Transport, TransportError, REQUEST_TYPE_IN,
    REQUEST_TYPE_OUT,
};
use dfu::quirks::QuirkTable;
use test_devices::image::{self, FirmwareVersion};
use test_devices::{BusTransport, ModelProfile, SimDevice, VirtualBus};

const IMAGE_SIZE: usize = 8 << 20;
const RUNS: usize = 201;
const XFER: usize = 4096;
const T: Duration = Duration::from_secs(1);

/// Opens the (single, reused) bench device; it is back in runtime mode after every run,
/// and reusing it keeps its flash buffer allocated, so page faults do not add noise.
fn open(bus: &VirtualBus) -> BusTransport {
    bus.open(&DeviceMatcher::parse_selector("BENCH-0001"))
        .expect("attached")
}

fn out(t: &mut BusTransport, index: u16, r: Request, value: u16, data: &[u8]) {
    let s = Setup {
        request_type: REQUEST_TYPE_OUT,
        request: r as u8,
        value,
        index,
    };
    t.control_out(s, data, T).expect("out");
}

fn inp(t: &mut BusTransport, index: u16, r: Request, value: u16, buf: &mut [u8]) -> usize {
    let s = Setup {
        request_type: REQUEST_TYPE_IN,
        request: r as u8,
        value,
        index,
    };
    t.control_in(s, buf, T).expect("in")
}

/// The minimal sequence, no checks beyond what keeps it correct.
fn bare(bus: &VirtualBus, img: &[u8], verify: bool) -> Duration {
    let mut t = open(bus);
    let serial = t.device().serial.clone();
    let start = Instant::now();
    let rt_if = u16::from(t.device().interfaces[0].number);
    out(&mut t, rt_if, Request::Detach, 1000, &[]);
    t.reset().expect("reset");
    let to_dfu = DeviceMatcher {
        serial: serial.clone(),
        mode: Some(DfuMode::Dfu),
        ..DeviceMatcher::default()
    };
    t.wait_reenumeration(&to_dfu, T).expect("dfu mode");
    let i = u16::from(t.device().interfaces[0].number);
    let mut st = [0u8; 6];
    for (block, chunk) in img.chunks(XFER).enumerate() {
        out(&mut t, i, Request::Dnload, block as u16, chunk);
        inp(&mut t, i, Request::GetStatus, 0, &mut st);
    }
    out(&mut t, i, Request::Dnload, 0, &[]);
    inp(&mut t, i, Request::GetStatus, 0, &mut st);
    inp(&mut t, i, Request::GetStatus, 0, &mut st);
    if verify {
        // Any verifying host must at least compare what it reads.
        let mut buf = vec![0u8; XFER];
        let mut done = 0;
        for block in 0..img.len().div_ceil(XFER) {
            let want = (img.len() - done).min(XFER);
            let n = inp(&mut t, i, Request::Upload, block as u16, &mut buf[..want]);
            assert!(buf[..n] == img[done..done + n]);
            done += n;
        }
        out(&mut t, i, Request::Abort, 0, &[]);
        assert_eq!(done, img.len());
    }
    t.reset().expect("reset");
    let back = DeviceMatcher {
        serial,
        ..DeviceMatcher::default()
    };
    t.wait_reenumeration(&back, T).expect("runtime");
    start.elapsed()
}

fn host(bus: &VirtualBus, img: &[u8], verify: bool) -> Duration {
    let t = open(bus);
    let opts = FlashOptions {
        quirks: QuirkTable::new(),
        verify,
        ..FlashOptions::default()
    };
    let start = Instant::now();
    let report = flash(t, img, &opts, &mut NoProgress).expect("flash succeeds");
    let elapsed = start.elapsed();
    assert_eq!(report.verified, verify);
    assert!(
        bus.sleeps().is_empty(),
        "zero-latency device asks for no waits"
    );
    elapsed
}

/// A transport that does no device work at all: it answers GETSTATUS from the last request
/// and serves UPLOAD from the image. Running `flash()` against it measures the host's own
/// cost directly (an upper bound: the copies for UPLOAD are counted as host time).
#[derive(Debug)]
struct NullDevice<'a> {
    info: DeviceInfo,
    image: &'a [u8],
    state: DfuState,
    offset: usize,
    idle: [u8; 6],
    dnload_idle: [u8; 6],
}

fn status(state: DfuState) -> [u8; 6] {
    StatusResponse {
        status: DfuStatus::Ok,
        poll_timeout: Duration::ZERO,
        state,
        string_index: 0,
    }
    .to_bytes()
}

impl<'a> NullDevice<'a> {
    fn new(template: &DeviceInfo, image: &'a [u8]) -> Self {
        let mut info = template.clone();
        for i in &mut info.interfaces {
            i.mode = DfuMode::Dfu;
        }
        Self {
            info,
            image,
            state: DfuState::DfuIdle,
            offset: 0,
            idle: status(DfuState::DfuIdle),
            dnload_idle: status(DfuState::DfuDnloadIdle),
        }
    }
}

impl Transport for NullDevice<'_> {
    fn device(&self) -> &DeviceInfo {
        &self.info
    }
    fn control_in(
        &mut self,
        s: Setup,
        buf: &mut [u8],
        _: Duration,
    ) -> Result<usize, TransportError> {
        if s.request == Request::Upload as u8 {
            let n = buf.len().min(self.image.len() - self.offset);
            buf[..n].copy_from_slice(&self.image[self.offset..self.offset + n]);
            self.offset += n;
            return Ok(n);
        }
        // Canned replies: the null device does no work per request.
        let r = match self.state {
            DfuState::DfuIdle => &self.idle,
            _ => &self.dnload_idle,
        };
        buf[..6].copy_from_slice(r);
        Ok(6)
    }
    fn control_out(&mut self, s: Setup, d: &[u8], _: Duration) -> Result<usize, TransportError> {
        if s.request == Request::Dnload as u8 {
            self.state = if d.is_empty() {
                DfuState::DfuIdle
            } else {
                DfuState::DfuDnloadIdle
            };
        } else if s.request == Request::Abort as u8 {
            self.state = DfuState::DfuIdle;
        }
        Ok(d.len())
    }
    fn set_alt_setting(&mut self, _: u8, _: u8) -> Result<(), TransportError> {
        Ok(())
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        Ok(())
    }
    fn wait_reenumeration(&mut self, _: &DeviceMatcher, _: Duration) -> Result<(), TransportError> {
        for i in &mut self.info.interfaces {
            i.mode = DfuMode::Runtime;
        }
        Ok(())
    }
    fn sleep(&mut self, _: Duration) {}
}

fn host_only(bus: &VirtualBus, img: &[u8], verify: bool) -> Duration {
    let template = open(bus).device().clone();
    let t = NullDevice::new(&template, img);
    let opts = FlashOptions {
        quirks: QuirkTable::new(),
        verify,
        ..FlashOptions::default()
    };
    let start = Instant::now();
    let report = flash(t, img, &opts, &mut NoProgress).expect("flash succeeds");
    let elapsed = start.elapsed();
    assert_eq!(report.verified, verify);
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Mean of the faster half of the runs (the runs least disturbed by other processes).
fn fast_half_mean(mut v: Vec<Duration>) -> Duration {
    v.sort();
    let half = &v[..v.len() / 2];
    half.iter().sum::<Duration>() / u32::try_from(half.len()).unwrap_or(1)
}

fn report(label: &str, img: &[u8], verify: bool) {
    let bus = VirtualBus::new();
    bus.attach(SimDevice::new(ModelProfile::zero_latency(
        IMAGE_SIZE + XFER,
    )));
    bare(&bus, img, verify);
    host(&bus, img, verify);
    let mut b = Vec::new();
    let mut h = Vec::new();
    let mut n = Vec::new();
    // Rotate the order so that no kind of run always follows the same other kind
    // (cache state would otherwise bias the comparison).
    for i in 0..RUNS {
        for k in 0..3 {
            match (i + k) % 3 {
                0 => h.push(host(&bus, img, verify)),
                1 => b.push(bare(&bus, img, verify)),
                _ => n.push(host_only(&bus, img, verify)),
            }
        }
    }
    let line = |what: &str, b: Duration, h: Duration| {
        let overhead = h.as_secs_f64() - b.as_secs_f64();
        println!(
            "{label:<22} {what:<6} bare {:>7.3} ms  host {:>7.3} ms  overhead {:>+7.3} ms = {:>+6.2} %  ({:.0} MiB/s)",
            b.as_secs_f64() * 1e3,
            h.as_secs_f64() * 1e3,
            overhead * 1e3,
            overhead / b.as_secs_f64() * 100.0,
            IMAGE_SIZE as f64 / f64::from(1 << 20) / h.as_secs_f64(),
        );
    };
    line("median", median(b.clone()), median(h.clone()));
    line("fast½", fast_half_mean(b.clone()), fast_half_mean(h));
    let (bare_t, own) = (median(b), median(n));
    println!(
        "{label:<22} host's own work (null transport) {:>7.3} ms = {:>5.2} % of the bare transfer time",
        own.as_secs_f64() * 1e3,
        own.as_secs_f64() / bare_t.as_secs_f64() * 100.0
    );
}

fn main() {
    let profile = ModelProfile::zero_latency(IMAGE_SIZE + XFER);
    let img = image::build(
        profile.runtime_pid,
        FirmwareVersion::new(2, 0, 0),
        &image::test_payload(IMAGE_SIZE - image::HEADER_LEN, 9),
    );
    println!(
        "flash 8 MiB, wTransferSize {XFER}, zero-latency simulated device, {RUNS} runs of each kind in rotating order"
    );
    report("download", &img, false);
    report("download + read-back", &img, true);
}
