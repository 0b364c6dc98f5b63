//! ST DfuSe images (UM0391): prefix, targets, elements.

use super::source::{FileSource, InspectError, Reader};
use super::FileError;

/// Size of the DfuSe prefix: `szSignature` "DfuSe", `bVersion`, `DFUImageSize`, `bTargets`.
pub(crate) const PREFIX_LEN: usize = 11;
/// Size of a target prefix: "Target", alt, `bTargetNamed`, name[255], size, count.
pub(crate) const TARGET_PREFIX_LEN: usize = 274;
/// Size of an element header: `dwElementAddress`, `dwElementSize`.
pub(crate) const ELEMENT_HEADER_LEN: usize = 8;
/// Size of the `szTargetName` field.
const NAME_FIELD_LEN: usize = 255;

/// The image inside a DfuSe file: one or more targets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DfuSeImage {
    /// The targets in file order. Several may share an alternate setting.
    pub targets: Vec<DfuSeTarget>,
}

/// One DfuSe target: the data for one alternate setting of the DFU interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DfuSeTarget {
    /// `bAlternateSetting`: the alternate setting to download to.
    pub alt_setting: u8,
    /// `szTargetName`, if the file carries a non-empty one. Read whatever
    /// `bTargetNamed` says (tools disagree about that flag); written with
    /// `bTargetNamed = 1` when `Some` and non-empty, else 0 and an all-zero field.
    pub name: Option<String>,
    /// The elements in file order.
    pub elements: Vec<DfuSeElement>,
}

/// One DfuSe element: bytes to be written at an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DfuSeElement {
    /// `dwElementAddress`: where `data` starts in the device's memory.
    pub address: u32,
    /// The element data (`dwElementSize` bytes).
    pub data: Vec<u8>,
}

impl DfuSeTarget {
    /// A target for alternate setting `alt_setting` with an optional name and
    /// elements given as `(address, data)` pairs.
    pub fn new(
        alt_setting: u8,
        name: Option<&str>,
        elements: impl IntoIterator<Item = (u32, Vec<u8>)>,
    ) -> Self {
        DfuSeTarget {
            alt_setting,
            name: name.map(str::to_owned),
            elements: elements
                .into_iter()
                .map(|(address, data)| DfuSeElement { address, data })
                .collect(),
        }
    }

    /// Total number of data bytes in this target's elements.
    pub fn data_len(&self) -> u64 {
        self.elements.iter().map(|e| e.data.len() as u64).sum()
    }
}

/// Whether `body` starts with the DfuSe signature.
pub(crate) fn starts_with_dfuse(body: &[u8]) -> bool {
    body.starts_with(b"DfuSe")
}

/// Whether the source's first `body_len` bytes start with the DfuSe signature.
pub(crate) fn has_dfuse_prefix<S: FileSource>(
    src: &mut S,
    body_len: usize,
) -> Result<bool, InspectError<S::Error>> {
    let mut b = [0; 5];
    if body_len < b.len() {
        return Ok(false);
    }
    src.read_at(0, &mut b).map_err(InspectError::Source)?;
    Ok(starts_with_dfuse(&b))
}

/// The image of targets read with their data.
pub(crate) fn image(targets: Vec<ReadTarget>) -> DfuSeImage {
    DfuSeImage {
        targets: targets
            .into_iter()
            .map(|t| DfuSeTarget {
                alt_setting: t.alt_setting,
                name: t.name,
                elements: t
                    .elements
                    .into_iter()
                    .map(|e| DfuSeElement {
                        address: e.address,
                        data: e.data,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// The layout of a DfuSe image, as [`DfuFile::inspect`](super::DfuFile::inspect)
/// reads it: every target and element, without the element data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DfuSeLayout {
    /// The targets in file order.
    pub targets: Vec<TargetLayout>,
}

/// A DfuSe target without its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetLayout {
    /// `bAlternateSetting`.
    pub alt_setting: u8,
    /// `szTargetName`, if non-empty.
    pub name: Option<String>,
    /// `(dwElementAddress, dwElementSize)` of each element, in file order.
    pub elements: Vec<(u32, u32)>,
}

/// The layout of targets read without their data.
pub(crate) fn layout(targets: Vec<ReadTarget>) -> DfuSeLayout {
    DfuSeLayout {
        targets: targets
            .into_iter()
            .map(|t| TargetLayout {
                alt_setting: t.alt_setting,
                name: t.name,
                elements: t.elements.iter().map(|e| (e.address, e.size)).collect(),
            })
            .collect(),
    }
}

/// A target as read.
pub(crate) struct ReadTarget {
    alt_setting: u8,
    name: Option<String>,
    elements: Vec<ReadElement>,
}

struct ReadElement {
    /// Where the element header starts in the file.
    at: usize,
    address: u32,
    size: u32,
    /// The data, when the caller keeps it; else empty.
    data: Vec<u8>,
}

/// The one reading of a DfuSe image in the source's first `body_len` bytes
/// (the file without its suffix; `file_len` is the whole file's, which
/// dfuse-pack writes into `DFUImageSize`), with the element data when
/// `keep_data`. Offsets in errors are offsets into the file.
pub(crate) fn read<S: FileSource>(
    src: &mut S,
    body_len: usize,
    file_len: usize,
    keep_data: bool,
) -> Result<Vec<ReadTarget>, InspectError<S::Error>> {
    let mut r = Reader {
        src,
        pos: 0,
        end: body_len,
    };
    r.signature("szSignature", "DfuSe")?;
    let version_at = r.pos;
    let version = r.u8("bVersion")?;
    if version != 1 {
        return Err(FileError::invalid(
            "bVersion",
            version_at,
            format!("{version} is not a known DfuSe version (expected 1)"),
        )
        .into());
    }
    let size_at = r.pos;
    let image_size = r.u32("DFUImageSize")?;
    // UM0391 and fwupd: the file without its suffix. dfuse-pack: the whole file.
    if image_size as usize != body_len && image_size as usize != file_len {
        return Err(FileError::invalid(
            "DFUImageSize",
            size_at,
            format!(
                "{image_size} matches neither the file without suffix ({body_len}) nor the whole file ({file_len})"
            ),
        )
        .into());
    }
    let count_at = r.pos;
    let target_count = r.u8("bTargets")?;
    if target_count == 0 {
        return Err(
            FileError::invalid("bTargets", count_at, "is 0: the file carries no firmware").into(),
        );
    }
    let mut targets = Vec::new();
    for _ in 0..target_count {
        targets.push(read_target(&mut r, keep_data)?);
    }
    if r.pos != body_len {
        return Err(FileError::invalid(
            "bTargets",
            count_at,
            format!(
                "{target_count} targets end at offset {:#x}, but {} more bytes follow before the suffix",
                r.pos,
                body_len - r.pos
            ),
        )
        .into());
    }
    Ok(targets)
}

fn read_target<S: FileSource>(
    r: &mut Reader<'_, S>,
    keep_data: bool,
) -> Result<ReadTarget, InspectError<S::Error>> {
    r.signature("szSignature (target)", "Target")?;
    let alt_setting = r.u8("bAlternateSetting")?;
    let _named = r.u32("bTargetNamed")?;
    let name_field = r.take("szTargetName", NAME_FIELD_LEN)?;
    let Some(name_len) = name_field.iter().position(|&b| b == 0) else {
        return Err(FileError::invalid(
            "szTargetName",
            r.pos - NAME_FIELD_LEN,
            "is not NUL-terminated within its 255 bytes",
        )
        .into());
    };
    // dfuse-pack writes 1 and "ST...", fwupd writes 1 or 0 with an empty name,
    // other tools write other non-zero values or 0 with a name: use the name
    // whenever there is one.
    let name = (name_len > 0).then(|| decode_name(&name_field[..name_len]));
    let size_at = r.pos;
    let target_size = r.u32("dwTargetSize")?;
    let count_at = r.pos;
    let element_count = r.u32("dwNbElements")?;
    if element_count == 0 {
        return Err(FileError::invalid(
            "dwNbElements",
            count_at,
            "is 0: a target needs at least one element (fwupd refuses it too)",
        )
        .into());
    }
    let available = r.left();
    if target_size as u64 > available as u64 {
        return Err(FileError::Truncated {
            field: "dwTargetSize",
            offset: size_at,
            needed: target_size.into(),
            available,
        }
        .into());
    }
    let start = r.pos;
    let end = start + target_size as usize;
    let mut inner = Reader {
        src: &mut *r.src,
        pos: start,
        end,
    };
    let mut elements: Vec<ReadElement> = Vec::new();
    for _ in 0..element_count {
        if inner.pos == end {
            return Err(FileError::invalid(
                "dwNbElements",
                count_at,
                format!(
                    "declares {element_count} elements but dwTargetSize ({target_size}) holds only {}",
                    elements.len()
                ),
            )
            .into());
        }
        let at = inner.pos;
        let address = inner.u32("dwElementAddress")?;
        let elem_size_at = inner.pos;
        let size = inner.u32("dwElementSize")?;
        let left = inner.left();
        if size as u64 > left as u64 {
            return Err(FileError::invalid(
                "dwElementSize",
                elem_size_at,
                format!("{size} bytes exceed the {left} bytes left in the target (dwTargetSize {target_size})"),
            )
            .into());
        }
        if size > 0 && u64::from(address) + u64::from(size) - 1 > u64::from(u32::MAX) {
            return Err(FileError::invalid(
                "dwElementSize",
                elem_size_at,
                format!(
                    "{size} bytes at {address:#010x} run past the end of the 32-bit address space"
                ),
            )
            .into());
        }
        let data = if keep_data {
            inner.take("element data", size as usize)?
        } else {
            inner.skip("element data", size as usize)?;
            Vec::new()
        };
        elements.push(ReadElement {
            at,
            address,
            size,
            data,
        });
    }
    if inner.pos != end {
        return Err(FileError::invalid(
            "dwTargetSize",
            size_at,
            format!(
                "declares {target_size} bytes but the {element_count} elements occupy {}",
                inner.pos - start
            ),
        )
        .into());
    }
    r.pos = end;
    if let Some((a, b)) = first_overlap(elements.iter().map(|e| (e.address, e.size as usize))) {
        let (a_el, b_el) = (&elements[a], &elements[b]);
        return Err(FileError::invalid(
            "dwElementAddress",
            b_el.at,
            format!(
                "element {b} ({:#010x}, {} bytes) overlaps element {a} ({:#010x}, {} bytes) of the same target",
                b_el.address, b_el.size, a_el.address, a_el.size
            ),
        )
        .into());
    }
    Ok(ReadTarget {
        alt_setting,
        name,
        elements,
    })
}

/// The name as text: invalid UTF-8 becomes U+FFFD, and the result is cut (at
/// a character boundary) to the 254 bytes a name can have when written.
fn decode_name(raw: &[u8]) -> String {
    let mut name = String::from_utf8_lossy(raw).into_owned();
    let mut end = name.len().min(NAME_FIELD_LEN - 1);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.truncate(end);
    name
}

/// Indices `(earlier, later)` of two non-empty elements whose address ranges
/// overlap, if any.
fn first_overlap(elements: impl Iterator<Item = (u32, usize)>) -> Option<(usize, usize)> {
    let mut ranges: Vec<(u64, u64, usize)> = elements
        .enumerate()
        .filter(|(_, (_, len))| *len > 0)
        .map(|(i, (addr, len))| (u64::from(addr), u64::from(addr) + len as u64, i))
        .collect();
    ranges.sort_unstable();
    ranges.windows(2).find(|w| w[1].0 < w[0].1).map(|w| {
        let (x, y) = (w[0].2, w[1].2);
        (x.min(y), x.max(y))
    })
}

/// Checks that `image` can be written to the specification, and that fwupd
/// and dfu-util will take it.
pub(crate) fn validate(image: &DfuSeImage) -> Result<(), FileError> {
    let n = image.targets.len();
    if n == 0 || n > 255 {
        return Err(FileError::unwritable(
            "targets",
            format!("a DfuSe file holds 1 to 255 targets, not {n}"),
        ));
    }
    let mut total = PREFIX_LEN as u64 + super::suffix::SUFFIX_LEN as u64;
    for (t, target) in image.targets.iter().enumerate() {
        if let Some(name) = &target.name {
            if name.len() >= NAME_FIELD_LEN {
                return Err(FileError::unwritable(
                    format!("targets[{t}].name"),
                    format!(
                        "{} bytes; at most {} fit with the terminating NUL",
                        name.len(),
                        NAME_FIELD_LEN - 1
                    ),
                ));
            }
            if name.contains('\0') {
                return Err(FileError::unwritable(
                    format!("targets[{t}].name"),
                    "contains a NUL byte",
                ));
            }
        }
        if target.elements.is_empty() {
            return Err(FileError::unwritable(
                format!("targets[{t}].elements"),
                "a target needs at least one element (fwupd refuses empty targets)",
            ));
        }
        let mut size = 0u64;
        for (e, element) in target.elements.iter().enumerate() {
            let len = element.data.len() as u64;
            if len > u64::from(u32::MAX)
                || len > 0 && u64::from(element.address) + len - 1 > u64::from(u32::MAX)
            {
                return Err(FileError::unwritable(
                    format!("targets[{t}].elements[{e}]"),
                    format!(
                        "{len} bytes at {:#010x} do not fit the 32-bit address space",
                        element.address
                    ),
                ));
            }
            size += ELEMENT_HEADER_LEN as u64 + len;
        }
        if size > u64::from(u32::MAX) {
            return Err(FileError::unwritable(
                format!("targets[{t}]"),
                format!("{size} bytes of elements exceed dwTargetSize's 32 bits"),
            ));
        }
        if let Some((a, b)) =
            first_overlap(target.elements.iter().map(|e| (e.address, e.data.len())))
        {
            return Err(FileError::unwritable(
                format!("targets[{t}].elements[{b}]"),
                format!("overlaps elements[{a}]"),
            ));
        }
        total += TARGET_PREFIX_LEN as u64 + size;
    }
    if total > u64::from(u32::MAX) {
        return Err(FileError::unwritable(
            "DFUImageSize",
            format!("the file would be {total} bytes, more than 32 bits can describe"),
        ));
    }
    Ok(())
}

/// Appends the DfuSe prefix, targets and elements (no suffix) to `out`.
/// `DFUImageSize` is the length of exactly these bytes. Call [`validate`] first.
pub(crate) fn write(image: &DfuSeImage, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(b"DfuSe");
    out.push(1);
    let size_at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(image.targets.len() as u8);
    for target in &image.targets {
        out.extend_from_slice(b"Target");
        out.push(target.alt_setting);
        let name = target.name.as_deref().unwrap_or("").as_bytes();
        out.extend_from_slice(&u32::from(!name.is_empty()).to_le_bytes());
        let mut field = [0u8; NAME_FIELD_LEN];
        field[..name.len()].copy_from_slice(name);
        out.extend_from_slice(&field);
        let size: usize = target
            .elements
            .iter()
            .map(|e| ELEMENT_HEADER_LEN + e.data.len())
            .sum();
        out.extend_from_slice(&(size as u32).to_le_bytes());
        out.extend_from_slice(&(target.elements.len() as u32).to_le_bytes());
        for element in &target.elements {
            out.extend_from_slice(&element.address.to_le_bytes());
            out.extend_from_slice(&(element.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&element.data);
        }
    }
    let image_size = (out.len() - start) as u32;
    out[size_at..size_at + 4].copy_from_slice(&image_size.to_le_bytes());
}
