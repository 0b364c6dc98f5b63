//! `.dfu` suffix and DfuSe container formats.
//!
//! A `.dfu` file is firmware followed by the 16-byte DFU suffix of USB DFU 1.1
//! (appendix B): `bcdDevice`, `idProduct`, `idVendor`, `bcdDFU`, the signature
//! `UFD`, `bLength` and a CRC. When the firmware starts with the `DfuSe`
//! prefix it is an ST DfuSe image (UM0391): targets, one per alternate
//! setting, each a list of `(address, bytes)` elements.
//!
//! Reading is lenient where the common tools (dfu-util's `dfu-suffix` and
//! `dfuse-pack`, fwupd) disagree with each other and strict everywhere else:
//! anything inconsistent is refused with a [`FileError`] naming the field and
//! its byte offset. Parsing never panics and allocates no more than the input
//! size justifies. Writing always follows the specifications. See
//! `docs/dfu-files.md` for the list of tolerated disagreements.
//!
//! ```
//! use dfu::file::{DfuFile, DfuSeTarget, Firmware};
//!
//! let file = DfuFile::new_raw(0x047f, 0xc056, 0x0102, b"firmware".to_vec());
//! let bytes = file.to_bytes();
//! assert!(dfu::file::has_dfu_suffix(&bytes));
//! let back = DfuFile::parse(&bytes).unwrap();
//! assert_eq!(back.suffix.id_vendor, 0x047f);
//! assert_eq!(back.firmware, Firmware::Raw(b"firmware".to_vec()));
//!
//! let target = DfuSeTarget::new(0, Some("Internal Flash"), [(0x0800_0000, vec![1, 2, 3])]);
//! let dfuse = DfuFile::new_dfuse(0x0483, 0xdf11, 0xffff, vec![target]).unwrap();
//! assert!(DfuFile::parse(&dfuse.to_bytes()).unwrap().is_dfuse());
//! ```

mod dfuse;
mod error;
mod source;
mod suffix;

pub use dfuse::{DfuSeElement, DfuSeImage, DfuSeLayout, DfuSeTarget, TargetLayout};
pub use error::FileError;
pub use source::{FileSource, InspectError};
pub use suffix::{
    dfu_crc, has_dfu_suffix, has_dfu_suffix_in, Suffix, ANY, BCD_DFU_1_0, BCD_DFU_DFUSE, SUFFIX_LEN,
};

/// What a `.dfu` file carries in front of its suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Firmware {
    /// Plain DFU: the bytes to download as they are.
    Raw(Vec<u8>),
    /// An ST DfuSe image.
    DfuSe(DfuSeImage),
}

/// A parsed (or to-be-written) `.dfu` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DfuFile {
    /// The DFU suffix. [`Suffix::absent`] when the file had none.
    pub suffix: Suffix,
    /// The content before the suffix.
    pub firmware: Firmware,
}

impl DfuFile {
    /// Parses a `.dfu` file: plain DFU or DfuSe, with a valid DFU suffix.
    ///
    /// Accepts what dfu-util and fwupd write, including where they disagree:
    /// `DFUImageSize` with or without the suffix, any `bTargetNamed`, a DfuSe
    /// image with `bcdDFU` 0x0100 (as `dfu-suffix -a` writes), a `bLength`
    /// above 16, and a DfuSe image with no suffix at all (ids are then
    /// [`ANY`]). A plain image without a suffix is refused
    /// ([`FileError::MissingSuffix`]); see [`DfuFile::parse_lenient`].
    pub fn parse(bytes: &[u8]) -> Result<Self, FileError> {
        Self::parse_inner(bytes, false)
    }

    /// Like [`DfuFile::parse`], but a file without any DFU suffix is taken as
    /// a raw image for any device, as `dfu-util -D` does (with a warning).
    /// A file that has a `UFD` signature but a bad CRC is still refused.
    pub fn parse_lenient(bytes: &[u8]) -> Result<Self, FileError> {
        Self::parse_inner(bytes, true)
    }

    fn parse_inner(bytes: &[u8], allow_raw: bool) -> Result<Self, FileError> {
        let (suffix, content) =
            read(&mut &bytes[..], allow_raw, true).map_err(InspectError::into_file_error)?;
        let firmware = match content {
            Content::Raw { data, .. } => Firmware::Raw(data),
            Content::DfuSe(targets) => Firmware::DfuSe(dfuse::image(targets)),
        };
        Ok(DfuFile { suffix, firmware })
    }

    /// Checks a file as [`DfuFile::parse`] does (the same code, the same
    /// errors) without holding it in memory: reads the suffix and the DfuSe
    /// headers where they are, computes the CRC chunk by chunk, and skips
    /// the firmware bytes. For files too large to read whole, from any
    /// [`FileSource`].
    pub fn inspect<S: FileSource>(src: &mut S) -> Result<FileSummary, InspectError<S::Error>> {
        let (suffix, content) = read(src, false, false)?;
        let content = match content {
            Content::Raw { len, .. } => ContentSummary::Raw { len },
            Content::DfuSe(targets) => ContentSummary::DfuSe(dfuse::layout(targets)),
        };
        Ok(FileSummary { suffix, content })
    }

    /// A plain DFU file for the given ids ([`ANY`] = any) with `payload`.
    pub fn new_raw(id_vendor: u16, id_product: u16, bcd_device: u16, payload: Vec<u8>) -> Self {
        DfuFile {
            suffix: Suffix::new(id_vendor, id_product, bcd_device, BCD_DFU_1_0),
            firmware: Firmware::Raw(payload),
        }
    }

    /// A DfuSe file for the given ids with `targets` (see [`DfuSeTarget::new`]).
    /// Fails if the targets cannot be written (see [`DfuFile::validate`]).
    pub fn new_dfuse(
        id_vendor: u16,
        id_product: u16,
        bcd_device: u16,
        targets: Vec<DfuSeTarget>,
    ) -> Result<Self, FileError> {
        let file = DfuFile {
            suffix: Suffix::new(id_vendor, id_product, bcd_device, BCD_DFU_DFUSE),
            firmware: Firmware::DfuSe(DfuSeImage { targets }),
        };
        file.validate()?;
        Ok(file)
    }

    /// Whether the firmware is a DfuSe image.
    pub fn is_dfuse(&self) -> bool {
        matches!(self.firmware, Firmware::DfuSe(_))
    }

    /// Checks that [`DfuFile::to_bytes`] can write this file: a raw payload
    /// does not start with `DfuSe`; a DfuSe image
    /// has 1 to 255 targets, each with at least one element; names are at
    /// most 254 bytes without NUL; elements fit the 32-bit address space and
    /// do not overlap within a target; every size fits its 32-bit field.
    pub fn validate(&self) -> Result<(), FileError> {
        match &self.firmware {
            Firmware::Raw(data) if dfuse::starts_with_dfuse(data) => Err(FileError::unwritable(
                "firmware",
                "a raw payload starting with \"DfuSe\" would be read back as a DfuSe image",
            )),
            Firmware::Raw(_) => Ok(()),
            Firmware::DfuSe(image) => dfuse::validate(image),
        }
    }

    /// Writes the file to the specification, or says why it cannot.
    ///
    /// The suffix gets the ids from [`DfuFile::suffix`], `bcdDFU` 0x0100 for
    /// plain DFU or 0x011A for DfuSe, `bLength` 16 and the CRC (whatever
    /// `suffix.bcd_dfu`, `length` and `crc` hold). `DFUImageSize` counts the
    /// file without its suffix; `bTargetNamed` is 1 for a named target, else 0.
    pub fn try_to_bytes(&self) -> Result<Vec<u8>, FileError> {
        self.validate()?;
        let mut out = Vec::new();
        let bcd_dfu = match &self.firmware {
            Firmware::Raw(data) => {
                out.reserve_exact(data.len() + SUFFIX_LEN);
                out.extend_from_slice(data);
                BCD_DFU_1_0
            }
            Firmware::DfuSe(image) => {
                dfuse::write(image, &mut out);
                BCD_DFU_DFUSE
            }
        };
        self.suffix.append_to(&mut out, bcd_dfu);
        Ok(out)
    }

    /// Writes the file to the specification (see [`DfuFile::try_to_bytes`]).
    ///
    /// # Panics
    ///
    /// If [`DfuFile::validate`] fails. Files from [`DfuFile::parse`],
    /// [`DfuFile::new_raw`] and [`DfuFile::new_dfuse`] always validate.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self.try_to_bytes() {
            Ok(bytes) => bytes,
            Err(e) => panic!("DfuFile::to_bytes on an unwritable file: {e}"),
        }
    }
}

/// What [`DfuFile::inspect`] found: the suffix, and the content's shape
/// without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    /// The DFU suffix ([`Suffix::absent`] for a DfuSe image without one).
    pub suffix: Suffix,
    /// What the file carries in front of its suffix.
    pub content: ContentSummary,
}

/// The shape of a file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentSummary {
    /// Plain DFU: `len` bytes to download as they are.
    Raw {
        /// The firmware's length (the file without its suffix).
        len: u64,
    },
    /// An ST DfuSe image.
    DfuSe(DfuSeLayout),
}

impl FileSummary {
    /// Whether the content is a DfuSe image.
    pub fn is_dfuse(&self) -> bool {
        matches!(self.content, ContentSummary::DfuSe(_))
    }
}

/// A file's content as read, with its bytes only when kept.
enum Content {
    Raw { len: u64, data: Vec<u8> },
    DfuSe(Vec<dfuse::ReadTarget>),
}

/// The one reading of a `.dfu` file, for [`DfuFile::parse`] (`keep_data`)
/// and [`DfuFile::inspect`] (not); see [`DfuFile::parse`] for the rules.
fn read<S: FileSource>(
    src: &mut S,
    allow_raw: bool,
    keep_data: bool,
) -> Result<(Suffix, Content), InspectError<S::Error>> {
    let file_len = usize::try_from(src.file_len())
        .map_err(|_| FileError::invalid("file", 0, "is larger than this machine can address"))?;
    let suffix = match Suffix::read(src) {
        Ok(suffix) => suffix,
        Err(InspectError::File(
            e @ (FileError::MissingSuffix { .. } | FileError::Truncated { .. }),
        )) => return read_unsuffixed(src, file_len, allow_raw, keep_data, e),
        Err(e) => return Err(e),
    };
    let body_len = file_len - usize::from(suffix.length);
    let content = if dfuse::has_dfuse_prefix(&mut *src, body_len)? {
        Content::DfuSe(dfuse::read(src, body_len, file_len, keep_data)?)
    } else if suffix.bcd_dfu == BCD_DFU_DFUSE {
        return Err(FileError::invalid(
            "bcdDFU",
            file_len - SUFFIX_LEN + 6,
            "0x011a marks a DfuSe file, but the content does not start with \"DfuSe\"",
        )
        .into());
    } else {
        raw(src, body_len, keep_data)?
    };
    Ok((suffix, content))
}

fn read_unsuffixed<S: FileSource>(
    src: &mut S,
    file_len: usize,
    allow_raw: bool,
    keep_data: bool,
    missing: FileError,
) -> Result<(Suffix, Content), InspectError<S::Error>> {
    if dfuse::has_dfuse_prefix(&mut *src, file_len)? {
        match dfuse::read(src, file_len, file_len, keep_data) {
            Ok(targets) => return Ok((Suffix::absent(), Content::DfuSe(targets))),
            // A DfuSe image that says it is the whole file, or one that
            // may not be taken as raw: its own error explains best.
            // Otherwise the suffix is what is missing.
            Err(InspectError::File(e))
                if allow_raw || declared_image_size(src)? == Some(file_len) =>
            {
                return Err(e.into())
            }
            Err(InspectError::Source(e)) => return Err(InspectError::Source(e)),
            Err(InspectError::File(_)) => {}
        }
    }
    if allow_raw && file_len > 0 {
        return Ok((Suffix::absent(), raw(src, file_len, keep_data)?));
    }
    Err(missing.into())
}

fn raw<S: FileSource>(
    src: &mut S,
    len: usize,
    keep_data: bool,
) -> Result<Content, InspectError<S::Error>> {
    let mut data = vec![0; if keep_data { len } else { 0 }];
    src.read_at(0, &mut data).map_err(InspectError::Source)?;
    Ok(Content::Raw {
        len: len as u64,
        data,
    })
}

/// `DFUImageSize` of a DfuSe prefix, if the file is long enough to hold one.
fn declared_image_size<S: FileSource>(
    src: &mut S,
) -> Result<Option<usize>, InspectError<S::Error>> {
    if src.file_len() < 10 {
        return Ok(None);
    }
    let mut b = [0; 4];
    src.read_at(6, &mut b).map_err(InspectError::Source)?;
    Ok(Some(u32::from_le_bytes(b) as usize))
}
