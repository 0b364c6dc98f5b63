//! Turning firmware files into catalog releases: raw images, `.dfu` files,
//! DfuSe files and LVFS cabinets.
//!
//! Importers only read and check (a cabinet's payload is extracted into the
//! blob store's temp area, never memory). Everything about a release is validated
//! before a byte reaches the blob store, and a refused file changes nothing.

mod cab;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use dfu::file::{DfuFile, FileError, FileSource, FileSummary, InspectError, ANY};

use crate::blob::BlobStore;
use crate::package::{
    check_name, HardwareId, InstallCapabilities, LvfsInfo, ModelError, SourceFormat,
    UpdateProtocol, Urgency, Version, VersionFormat, MAX_NOTES_LEN,
};

pub use cab::jcat::{VendorKey, VendorKeyError, VendorSignature, VENDOR_KEY_EXTENSION};
pub use cab::CabError;

/// Largest payload extracted from an LVFS cabinet. Payloads are spooled to
/// the blob store's temp area, not memory; the limit bounds what a small,
/// highly compressed cabinet can make the server write. USB DFU devices
/// have at most a few MiB of flash.
pub const MAX_CAB_PAYLOAD_LEN: u64 = 256 << 20;

/// What the admin says about a file; fields the file itself carries may be
/// left empty and are then taken from the file.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Force a format instead of detecting it.
    pub format: Option<SourceFormat>,
    /// Vendor display name.
    pub vendor: Option<String>,
    /// Model display name.
    pub model: Option<String>,
    /// Hardware ids; for `.dfu` files they must agree with the suffix.
    pub hardware_ids: Vec<HardwareId>,
    /// Version text.
    pub version: Option<String>,
    /// Version format (default plain).
    pub version_format: Option<VersionFormat>,
    /// Anti-downgrade counter (default 0).
    pub security_counter: Option<u32>,
    /// Update protocol (default from the file: dfu, or dfuse for DfuSe files).
    pub protocol: Option<UpdateProtocol>,
    /// Needs unplug/replug after flashing.
    pub needs_replug: Option<bool>,
    /// May be installed silently.
    pub silent_capable: Option<bool>,
    /// May be installed automatically.
    pub automatic_capable: Option<bool>,
    /// Expected install time in seconds.
    pub install_duration_secs: Option<u32>,
    /// Urgency.
    pub urgency: Option<Urgency>,
    /// Release notes.
    pub release_notes: Option<String>,
    /// The file name the target gets (default: the imported file's name).
    pub file_name: Option<String>,
    /// Take a DFU suffix's `bcdDevice` as a requirement on the device's
    /// current release. Off by default: see [`suffix_ids`].
    pub require_suffix_bcd: bool,
    /// The product this model is one piece of (see
    /// [`FirmwareRelease::product_family`](crate::package::FirmwareRelease::product_family)).
    pub product_family: Option<String>,
    /// Refuse a cabinet without a vendor signature that verifies with a
    /// trusted vendor key.
    pub require_vendor_signature: bool,
    /// The vendor keys trusted for cabinet signatures (the catalog fills
    /// them in from `<catalog>/vendor-keys/`).
    pub vendor_keys: Vec<VendorKey>,
}

/// Why a file could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Reading the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A `.dfu` / DfuSe problem.
    #[error("{path}: invalid DFU file: {source}")]
    Dfu {
        /// The file.
        path: PathBuf,
        /// What the parser found.
        source: FileError,
    },
    /// An LVFS cabinet problem.
    #[error("{path}: {source}")]
    Cab {
        /// The file.
        path: PathBuf,
        /// What is wrong with the cabinet.
        source: CabError,
    },
    /// A metadata field is invalid.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A field the file does not carry and the admin did not give.
    #[error("{field} is required for {format} imports ({hint})")]
    Required {
        /// Which field.
        field: &'static str,
        /// The detected format.
        format: &'static str,
        /// The command-line option that provides it.
        hint: &'static str,
    },
    /// The admin's ids contradict the file's.
    #[error("hardware id {given} does not match the file, which is for {file}")]
    IdMismatch {
        /// What the admin gave.
        given: HardwareId,
        /// What the file says.
        file: String,
    },
    /// The file is larger than its format allows.
    #[error("{path}: {len} bytes is larger than the {limit}-byte limit for {format} files")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The limit.
        limit: u64,
        /// The format.
        format: &'static str,
    },
}

/// The payload to store, and where to read it from.
#[derive(Debug)]
pub(crate) enum Payload {
    /// The whole file, streamed.
    WholeFile(PathBuf),
    /// A copy made while checking it (a cabinet's payload), in the blob
    /// store's temp area; deleted when dropped.
    Spooled(tempfile::NamedTempFile),
}

/// A release ready to store: every field checked, payload not yet stored.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) vendor: String,
    pub(crate) model: String,
    pub(crate) hardware_ids: Vec<HardwareId>,
    pub(crate) version: Version,
    pub(crate) security_counter: u32,
    pub(crate) protocol: UpdateProtocol,
    pub(crate) capabilities: InstallCapabilities,
    pub(crate) urgency: Urgency,
    pub(crate) release_notes: String,
    pub(crate) source_format: SourceFormat,
    pub(crate) lvfs: Option<LvfsInfo>,
    pub(crate) file_name: String,
    pub(crate) product_family: Option<String>,
    pub(crate) payload: Payload,
}

/// Looks at a file's first and last bytes to tell its format.
pub fn detect_format(path: &Path) -> Result<SourceFormat, ImportError> {
    let io_err = |source| ImportError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    let mut head = [0u8; 5];
    let n = read_up_to(&mut file, &mut head).map_err(io_err)?;
    if n >= 4 && &head[..4] == b"MSCF" {
        return Ok(SourceFormat::Cab);
    }
    if n == 5 && &head == b"DfuSe" {
        return Ok(SourceFormat::Dfuse);
    }
    if len >= 16 {
        let mut tail = [0u8; 16];
        file.seek(SeekFrom::End(-16)).map_err(io_err)?;
        file.read_exact(&mut tail).map_err(io_err)?;
        if dfu::file::has_dfu_suffix(&tail) || &tail[8..11] == b"UFD" {
            return Ok(SourceFormat::Dfu);
        }
    }
    Ok(SourceFormat::Raw)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads and checks a file for import, in constant memory whatever its
/// size; a cabinet's payload is extracted into `blobs`' temp area.
pub(crate) fn prepare(
    path: &Path,
    opts: &ImportOptions,
    blobs: &BlobStore,
) -> Result<Prepared, ImportError> {
    let format = match opts.format {
        Some(f) => f,
        None => detect_format(path)?,
    };
    let default_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("firmware.bin")
        .to_owned();
    let file_name = opts.file_name.clone().unwrap_or(default_name);
    check_name("file name", &file_name)?;
    match format {
        SourceFormat::Raw => prepare_raw(path, opts, file_name),
        SourceFormat::Dfu | SourceFormat::Dfuse => {
            let summary = OnDisk::open(path)?.inspect()?;
            let payload = Payload::WholeFile(path.to_owned());
            prepare_dfu(&summary, payload, opts, file_name, None)
        }
        SourceFormat::Cab => cab::prepare_cab(path, opts, blobs),
    }
}

/// A file the DFU parser reads where it asks ([`DfuFile::inspect`]), so a
/// file of any size is checked in constant memory.
pub(crate) struct OnDisk<'p> {
    path: &'p Path,
    file: File,
    len: u64,
}

impl<'p> OnDisk<'p> {
    pub(crate) fn open(path: &'p Path) -> Result<Self, ImportError> {
        let io_err = |source| ImportError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        Ok(OnDisk { path, file, len })
    }

    /// The file checked as a `.dfu` / DfuSe file.
    pub(crate) fn inspect(&mut self) -> Result<FileSummary, ImportError> {
        DfuFile::inspect(self).map_err(|e| match e {
            InspectError::File(source) => ImportError::Dfu {
                path: self.path.to_owned(),
                source,
            },
            InspectError::Source(source) => self.io_error(source),
        })
    }

    /// A read of this file failed.
    pub(crate) fn io_error(&self, source: io::Error) -> ImportError {
        ImportError::Io {
            path: self.path.to_owned(),
            source,
        }
    }
}

impl FileSource for OnDisk<'_> {
    type Error = io::Error;

    fn file_len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.read_exact(buf)
    }
}

fn required<T: Clone>(
    value: &Option<T>,
    field: &'static str,
    format: &'static str,
    hint: &'static str,
) -> Result<T, ImportError> {
    value.clone().ok_or(ImportError::Required {
        field,
        format,
        hint,
    })
}

/// The anti-downgrade counter: the admin's; for a critical release (a
/// security fix) it must be given, never silently 0, because it is the
/// floor a device may not be taken back below; else 0.
fn security_counter(
    opts: &ImportOptions,
    urgency: Urgency,
    format: &'static str,
) -> Result<u32, ImportError> {
    match (opts.security_counter, urgency) {
        (Some(counter), _) => Ok(counter),
        (None, Urgency::Critical) => Err(ImportError::Required {
            field: "security counter",
            format,
            hint: "--security-counter: a critical release fixes a security problem, and its counter is the floor devices may not go back below",
        }),
        (None, _) => Ok(0),
    }
}

/// Fields common to every format, from options with per-format fallbacks.
pub(crate) struct Common {
    pub(crate) version: Version,
    pub(crate) capabilities: InstallCapabilities,
    pub(crate) release_notes: String,
}

pub(crate) fn common(
    opts: &ImportOptions,
    format: &'static str,
    file_version: Option<(&str, VersionFormat)>,
    file_notes: Option<String>,
    file_duration: Option<u32>,
) -> Result<Common, ImportError> {
    let version = match (&opts.version, file_version) {
        (Some(v), _) => {
            Version::parse(v, opts.version_format.unwrap_or_default()).map_err(ModelError::from)?
        }
        (None, Some((v, f))) => {
            Version::parse(v, opts.version_format.unwrap_or(f)).map_err(ModelError::from)?
        }
        (None, None) => {
            return Err(ImportError::Required {
                field: "version",
                format,
                hint: "--version",
            })
        }
    };
    let release_notes = opts
        .release_notes
        .clone()
        .or(file_notes)
        .unwrap_or_default();
    if release_notes.len() > MAX_NOTES_LEN {
        return Err(ModelError::Field {
            field: "release notes",
            why: format!("longer than {MAX_NOTES_LEN} bytes"),
        }
        .into());
    }
    Ok(Common {
        version,
        capabilities: InstallCapabilities {
            needs_replug: opts.needs_replug.unwrap_or(false),
            silent_capable: opts.silent_capable.unwrap_or(false),
            automatic_capable: opts.automatic_capable.unwrap_or(true),
            install_duration_secs: opts.install_duration_secs.or(file_duration).unwrap_or(120),
        },
        release_notes,
    })
}

fn prepare_raw(
    path: &Path,
    opts: &ImportOptions,
    file_name: String,
) -> Result<Prepared, ImportError> {
    const RAW: &str = "raw image";
    let vendor = required(&opts.vendor, "vendor", RAW, "--vendor")?;
    let model = required(&opts.model, "model", RAW, "--model")?;
    if opts.hardware_ids.is_empty() {
        return Err(ImportError::Required {
            field: "hardware id",
            format: RAW,
            hint: "--hardware-id VID:PID",
        });
    }
    let c = common(opts, RAW, None, None, None)?;
    Ok(Prepared {
        vendor,
        model,
        hardware_ids: opts.hardware_ids.clone(),
        version: c.version,
        security_counter: security_counter(opts, opts.urgency.unwrap_or_default(), RAW)?,
        protocol: opts.protocol.clone().unwrap_or_default(),
        capabilities: c.capabilities,
        urgency: opts.urgency.unwrap_or_default(),
        release_notes: c.release_notes,
        source_format: SourceFormat::Raw,
        lvfs: None,
        file_name,
        product_family: opts.product_family.clone(),
        payload: Payload::WholeFile(path.to_owned()),
    })
}

/// Hardware ids a DFU suffix names, or `None` when it says "any device".
///
/// DFU 1.1 (appendix B) calls the suffix's `bcdDevice` "the release number
/// of the device associated with this file", and vendors' tools fill it with
/// the release the file *installs* (a 2.14 image says 0x0214). Read as a
/// requirement on the device's current release, it would restrict the
/// release to devices that already run it, so by default it is not one:
/// only `require_bcd` (the admin's explicit choice) turns it into a
/// `VID:PID@bcd-bcd` range.
pub(crate) fn suffix_ids(s: &dfu::file::Suffix, require_bcd: bool) -> Option<HardwareId> {
    if !s.is_present() || s.id_vendor == ANY || s.id_product == ANY {
        return None;
    }
    let bcd_range = (require_bcd && s.bcd_device != ANY).then_some((s.bcd_device, s.bcd_device));
    Some(HardwareId {
        vid: s.id_vendor,
        pid: s.id_product,
        bcd_range,
    })
}

/// Prepares a `.dfu` or DfuSe file checked by [`DfuFile::inspect`]. `lvfs`
/// carries what a cabinet said when the file came out of one.
pub(crate) fn prepare_dfu(
    summary: &FileSummary,
    payload: Payload,
    opts: &ImportOptions,
    file_name: String,
    lvfs: Option<cab::CabRelease>,
) -> Result<Prepared, ImportError> {
    const DFU: &str = "DFU";
    let from_file = suffix_ids(&summary.suffix, opts.require_suffix_bcd);
    let hardware_ids = match (&opts.hardware_ids[..], from_file) {
        ([], Some(id)) => vec![id],
        ([], None) => match lvfs.as_ref().map(|c| c.hardware_ids.clone()) {
            Some(ids) if !ids.is_empty() => ids,
            _ => {
                return Err(ImportError::Required {
                    field: "hardware id",
                    format: "DFU files whose suffix says \"any device\"",
                    hint: "--hardware-id VID:PID",
                })
            }
        },
        (given, Some(file_id)) => {
            for g in given {
                if g.vid != file_id.vid || g.pid != file_id.pid {
                    return Err(ImportError::IdMismatch {
                        given: *g,
                        file: file_id.to_string(),
                    });
                }
            }
            given.to_vec()
        }
        (given, None) => given.to_vec(),
    };
    let protocol = opts.protocol.clone().unwrap_or(if summary.is_dfuse() {
        UpdateProtocol::Dfuse
    } else {
        UpdateProtocol::Dfu
    });
    let source_format = match (&lvfs, summary.is_dfuse()) {
        (Some(_), _) => SourceFormat::Cab,
        (None, true) => SourceFormat::Dfuse,
        (None, false) => SourceFormat::Dfu,
    };
    finish_from_file(
        opts,
        DFU,
        hardware_ids,
        protocol,
        source_format,
        lvfs,
        file_name,
        payload,
    )
}

/// Fills the remaining fields from options and (for cabinets) LVFS metadata.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish_from_file(
    opts: &ImportOptions,
    format: &'static str,
    hardware_ids: Vec<HardwareId>,
    protocol: UpdateProtocol,
    source_format: SourceFormat,
    lvfs: Option<cab::CabRelease>,
    file_name: String,
    payload: Payload,
) -> Result<Prepared, ImportError> {
    let c = common(
        opts,
        format,
        lvfs.as_ref()
            .map(|l| (l.version.as_str(), l.version_format)),
        lvfs.as_ref().map(|l| l.description.clone()),
        lvfs.as_ref().and_then(|l| l.install_duration_secs),
    )?;
    let vendor = opts
        .vendor
        .clone()
        .or_else(|| lvfs.as_ref().and_then(|l| l.vendor.clone()))
        .ok_or(ImportError::Required {
            field: "vendor",
            format,
            hint: "--vendor",
        })?;
    let model = opts
        .model
        .clone()
        .or_else(|| lvfs.as_ref().map(|l| l.name.clone()))
        .ok_or(ImportError::Required {
            field: "model",
            format,
            hint: "--model",
        })?;
    let urgency = opts
        .urgency
        .or(lvfs.as_ref().and_then(|l| l.urgency))
        .unwrap_or_default();
    Ok(Prepared {
        vendor,
        model,
        hardware_ids,
        version: c.version,
        security_counter: security_counter(opts, urgency, format)?,
        protocol,
        capabilities: c.capabilities,
        urgency,
        release_notes: c.release_notes,
        source_format,
        lvfs: lvfs.map(|l| l.info),
        file_name,
        product_family: opts.product_family.clone(),
        payload,
    })
}
