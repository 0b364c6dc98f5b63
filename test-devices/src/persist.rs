//! Durable simulated devices: what a real device keeps when the host crashes
//! (its mode, its flash, the firmware version it would boot, how far a
//! download got) written to one file per device on every change, and loaded
//! when the device is attached again by a new process.
//!
//! A [`DeviceStore`] on a [`VirtualBus`](crate::VirtualBus) (see
//! [`VirtualBus::with_store`](crate::VirtualBus::with_store)) snapshots each
//! device it knows after every bus operation that changed its durable state.
//! Files are replaced atomically (temp file, fsync, rename, fsync of the
//! directory), so a process killed at any instant leaves either the previous
//! or the new state, never a torn one.
//!
//! File format (`<dir>/<key>.simdev`): a text header, a blank line, then the
//! raw bytes it announces:
//!
//! ```text
//! test-devices sim-device 1
//! mode dfu                 # or runtime
//! app 2.0.0                # or none (no valid application)
//! received 4096            # image bytes of the current/last download
//! written 16384            # bytes written to flash over the device's life
//! flash 4128               # DFU 1.1 flash length; its bytes come first
//! dfuse 2 65536 2048       # DfuSe memories: count, then each length
//!
//! <flash bytes><memory 0 bytes><memory 1 bytes>…
//! ```
//!
//! A test hook, [`DeviceStore::freeze_after_bytes_written`], makes the bus
//! stop (the calling thread blocks for good, holding the bus) right after
//! the state in which the devices' lifetime bytes written reach a threshold
//! was persisted, and writes a marker file first: a crash test waits for the
//! marker and kills the process at that exact point.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use dfu::host::DfuMode;

use crate::device::SimDevice;
use crate::image::FirmwareVersion;

/// The file name suffix of a device state.
pub const SUFFIX: &str = "simdev";
/// The marker file a frozen bus writes into the store's directory.
pub const FROZEN_MARKER: &str = "frozen";

const MAGIC: &str = "test-devices sim-device 1";

/// Why a device state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Filesystem error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The file is not a device state this version understands.
    #[error("{path}: not a simulated device state: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The saved state does not fit the device it is loaded into.
    #[error("{path}: saved for another device: {why}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        why: String,
    },
}

/// What a device keeps across a host crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSnapshot {
    /// Runtime or DFU (bootloader) mode.
    pub mode: DfuMode,
    /// The valid application it boots, `None` if the flash holds none.
    pub app: Option<FirmwareVersion>,
    /// Image bytes received by the current (or last) download.
    pub received: u64,
    /// Bytes written to flash over the device's life.
    pub bytes_written: u64,
    /// DFU 1.1 flash contents.
    pub flash: Vec<u8>,
    /// DfuSe memories, one per alternate setting (empty for DFU 1.1 devices).
    pub dfuse: Vec<Vec<u8>>,
}

fn parse_version(s: &str) -> Option<FirmwareVersion> {
    let mut p = s.split('.');
    let v = FirmwareVersion::new(
        p.next()?.parse().ok()?,
        p.next()?.parse().ok()?,
        p.next()?.parse().ok()?,
    );
    p.next().is_none().then_some(v)
}

impl DeviceSnapshot {
    /// The durable part of `device`.
    pub fn of(device: &SimDevice) -> Self {
        Self {
            mode: device.mode,
            app: device.app.as_ref().map(|a| a.version),
            received: device.received as u64,
            bytes_written: device.bytes_written_total,
            flash: device.flash.clone(),
            dfuse: device
                .dfuse
                .as_ref()
                .map(|m| m.memories().to_vec())
                .unwrap_or_default(),
        }
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mode = match self.mode {
            DfuMode::Runtime => "runtime",
            DfuMode::Dfu => "dfu",
        };
        let app = self
            .app
            .map_or_else(|| "none".to_owned(), |v| v.to_string());
        let mut dfuse = format!("dfuse {}", self.dfuse.len());
        for m in &self.dfuse {
            dfuse.push_str(&format!(" {}", m.len()));
        }
        let mut out = format!(
            "{MAGIC}\nmode {mode}\napp {app}\nreceived {}\nwritten {}\nflash {}\n{dfuse}\n\n",
            self.received,
            self.bytes_written,
            self.flash.len()
        )
        .into_bytes();
        out.extend_from_slice(&self.flash);
        for m in &self.dfuse {
            out.extend_from_slice(m);
        }
        out
    }

    /// Parses a file's bytes (`path` only names the file in errors).
    pub fn decode(path: &Path, bytes: &[u8]) -> Result<Self, PersistError> {
        let bad = |why: &str| PersistError::Corrupt {
            path: path.to_owned(),
            why: why.to_owned(),
        };
        let split = bytes
            .windows(2)
            .position(|w| w == b"\n\n")
            .ok_or_else(|| bad("no end of header"))?;
        let header = std::str::from_utf8(&bytes[..split]).map_err(|_| bad("header not UTF-8"))?;
        let body = &bytes[split + 2..];
        let mut lines = header.lines();
        if lines.next() != Some(MAGIC) {
            return Err(bad("unknown format (first line)"));
        }
        let mut field = |name: &str| -> Result<&str, PersistError> {
            let line = lines
                .next()
                .ok_or_else(|| bad(&format!("missing {name}")))?;
            line.strip_prefix(name)
                .and_then(|r| r.strip_prefix(' '))
                .ok_or_else(|| bad(&format!("expected {name}, found {line:?}")))
        };
        let mode = match field("mode")? {
            "runtime" => DfuMode::Runtime,
            "dfu" => DfuMode::Dfu,
            other => return Err(bad(&format!("unknown mode {other:?}"))),
        };
        let app = match field("app")? {
            "none" => None,
            v => Some(parse_version(v).ok_or_else(|| bad(&format!("bad version {v:?}")))?),
        };
        let number = |what: &str, v: &str| -> Result<u64, PersistError> {
            v.parse().map_err(|_| bad(&format!("bad {what} {v:?}")))
        };
        let received = number("received", field("received")?)?;
        let bytes_written = number("written", field("written")?)?;
        let flash_len = number("flash", field("flash")?)?;
        let mut dfuse_words = field("dfuse")?.split(' ');
        let count = number("dfuse count", dfuse_words.next().unwrap_or(""))?;
        let lens = dfuse_words
            .map(|w| number("dfuse length", w))
            .collect::<Result<Vec<u64>, _>>()?;
        if lens.len() as u64 != count {
            return Err(bad("dfuse lengths do not match their count"));
        }
        let total = lens.iter().try_fold(flash_len, |a, l| a.checked_add(*l));
        if total != Some(body.len() as u64) {
            return Err(bad(&format!(
                "header announces {} bytes, file holds {}",
                total.map_or_else(|| "too many".to_owned(), |t| t.to_string()),
                body.len()
            )));
        }
        let mut rest = body;
        let mut take = |n: u64| {
            let (a, b) = rest.split_at(n as usize);
            rest = b;
            a.to_vec()
        };
        let flash = take(flash_len);
        let dfuse = lens.iter().map(|l| take(*l)).collect();
        Ok(Self {
            mode,
            app,
            received,
            bytes_written,
            flash,
            dfuse,
        })
    }

    /// Reads a device state file.
    pub fn read(path: &Path) -> Result<Self, PersistError> {
        let bytes = fs::read(path).map_err(|source| PersistError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::decode(path, &bytes)
    }

    /// Writes the state to `path` atomically and durably.
    pub fn write(&self, path: &Path) -> Result<(), PersistError> {
        write_atomic(path, &self.encode())
    }

    /// Puts this state into `device`, as the device is found when a new host
    /// process enumerates it: in DFU mode (dfuIDLE, or dfuERROR/errFIRMWARE
    /// without a valid application) when it was left in DFU mode or has no
    /// application, else running its application.
    pub fn apply(&self, path: &Path, device: &mut SimDevice) -> Result<(), PersistError> {
        let mismatch = |why: String| PersistError::Mismatch {
            path: path.to_owned(),
            why,
        };
        let memories = device.dfuse.as_ref().map_or(0, |m| m.memories().len());
        if memories != self.dfuse.len() {
            return Err(mismatch(format!(
                "{} DfuSe memories saved, the device has {memories}",
                self.dfuse.len()
            )));
        }
        if let Some(m) = device.dfuse.as_mut() {
            for (alt, (mem, saved)) in m.memories_mut().iter_mut().zip(&self.dfuse).enumerate() {
                if mem.len() != saved.len() {
                    return Err(mismatch(format!(
                        "memory {alt} is {} bytes, saved {}",
                        mem.len(),
                        saved.len()
                    )));
                }
                mem.copy_from_slice(saved);
            }
        }
        device.flash = self.flash.clone();
        device.received = usize::try_from(self.received).unwrap_or(usize::MAX);
        device.bytes_written_total = self.bytes_written;
        device.app = self.app.map(|version| crate::device::Installed { version });
        if device.app.is_none() || self.mode == DfuMode::Dfu {
            device.restore_in_dfu_mode();
        }
        Ok(())
    }
}

/// The part of a device's state whose change triggers a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    mode: DfuMode,
    app: Option<FirmwareVersion>,
    received: usize,
    written: u64,
    flash_len: usize,
    erases: (usize, usize),
}

impl Fingerprint {
    pub(crate) fn of(d: &SimDevice) -> Self {
        Self {
            mode: d.mode,
            app: d.app.as_ref().map(|a| a.version),
            received: d.received,
            written: d.bytes_written_total,
            flash_len: d.flash.len(),
            erases: d
                .dfuse
                .as_ref()
                .map_or((0, 0), |m| (m.erase_log().len(), m.mass_erases())),
        }
    }
}

/// Where a bus keeps its devices' states.
#[derive(Debug, Clone)]
pub struct DeviceStore {
    dir: PathBuf,
    freeze_after: Option<u64>,
}

impl DeviceStore {
    /// A store in `dir` (created if missing).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, PersistError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| PersistError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Self {
            dir,
            freeze_after: None,
        })
    }

    /// Test hook: once the persisted devices' lifetime bytes written reach
    /// `bytes`, the bus writes [`FROZEN_MARKER`] into the directory and then
    /// blocks the thread using it for good (a crash test kills the process).
    pub fn freeze_after_bytes_written(mut self, bytes: u64) -> Self {
        self.freeze_after = Some(bytes);
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of the device with `key`.
    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{}.{SUFFIX}", file_key(key)))
    }

    /// The saved state of `key`, if any.
    pub fn load(&self, key: &str) -> Result<Option<DeviceSnapshot>, PersistError> {
        let path = self.path(key);
        if !path.exists() {
            return Ok(None);
        }
        DeviceSnapshot::read(&path).map(Some)
    }

    /// Every saved device state, by key.
    pub fn all(&self) -> Result<Vec<(String, DeviceSnapshot)>, PersistError> {
        let io = |source| PersistError::Io {
            path: self.dir.clone(),
            source,
        };
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let Some(key) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(&format!(".{SUFFIX}")))
            else {
                continue;
            };
            out.push((key.to_owned(), DeviceSnapshot::read(&path)?));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    pub(crate) fn freeze_after(&self) -> Option<u64> {
        self.freeze_after
    }

    /// Writes the marker and blocks the calling thread for good.
    pub(crate) fn freeze(&self, written: u64) -> ! {
        let marker = self.dir.join(FROZEN_MARKER);
        // Best effort: if the marker cannot be written the test times out
        // waiting for it, which names the problem.
        let _ = write_atomic(&marker, format!("{written}\n").as_bytes());
        loop {
            std::thread::park();
        }
    }
}

/// A key as a file name: ASCII letters, digits, `.`, `_` and `-` kept, the
/// rest replaced by `_`.
pub fn file_key(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `data` to `path` through a temp file, fsyncs it, renames it into
/// place and fsyncs the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), PersistError> {
    let io = |p: &Path| {
        let p = p.to_owned();
        move |source| PersistError::Io { path: p, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(data).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io(path))?;
    if let Ok(d) = fs::File::open(dir) {
        d.sync_all().map_err(io(dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
