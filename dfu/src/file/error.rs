//! Why a file was refused.

/// A `.dfu` or DfuSe file is malformed, or a [`DfuFile`](super::DfuFile) cannot
/// be written.
///
/// Every parse error names the offending field (with the name the USB DFU 1.1
/// specification or ST's UM0391 gives it) and the byte offset of that field in
/// the input, so a message reads like
/// `dwCRC at offset 0x20: stored 0x3e7da9c2, computed 0xcfa7ac68`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The input ends before a field does.
    #[error("{field} at offset {offset:#x}: needs {needed} bytes but only {available} are left")]
    Truncated {
        /// The field that does not fit.
        field: &'static str,
        /// Where the field starts.
        offset: usize,
        /// How many bytes the field (or the data it announces) needs.
        needed: u64,
        /// How many bytes are left in the input (or enclosing structure).
        available: usize,
    },

    /// A magic value is wrong.
    #[error("{field} at offset {offset:#x}: expected {expected:?}, found {found:?}")]
    BadSignature {
        /// The signature field.
        field: &'static str,
        /// Where the field starts.
        offset: usize,
        /// The signature the format requires.
        expected: &'static str,
        /// What the input holds there (lossy text).
        found: String,
    },

    /// The file ends without a DFU suffix (no `UFD` signature), and is not a
    /// self-describing DfuSe image either.
    #[error("no DFU suffix: ucDfuSignature at offset {offset:#x} is {found:?}, not \"UFD\"")]
    MissingSuffix {
        /// Where the signature would be.
        offset: usize,
        /// What the input holds there (lossy text).
        found: String,
    },

    /// The suffix CRC does not match the content.
    #[error("dwCRC at offset {offset:#x}: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// Where the CRC field starts.
        offset: usize,
        /// The CRC in the file.
        stored: u32,
        /// The CRC of the bytes before it.
        computed: u32,
    },

    /// A field holds a value that contradicts the rest of the file.
    #[error("{field} at offset {offset:#x}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Where the field starts.
        offset: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// A [`DfuFile`](super::DfuFile) cannot be written: a value does not fit
    /// the format (for example more than 255 targets or a 300-byte name).
    #[error("cannot write {field}: {reason}")]
    Unwritable {
        /// The field that cannot be written, e.g. `targets[1].name`.
        field: String,
        /// Why.
        reason: String,
    },
}

impl FileError {
    /// The byte offset the error refers to, if it comes from parsing.
    pub fn offset(&self) -> Option<usize> {
        match self {
            FileError::Truncated { offset, .. }
            | FileError::BadSignature { offset, .. }
            | FileError::MissingSuffix { offset, .. }
            | FileError::CrcMismatch { offset, .. }
            | FileError::Invalid { offset, .. } => Some(*offset),
            FileError::Unwritable { .. } => None,
        }
    }

    /// The name of the field the error refers to (`dwCRC`, `DFUImageSize`, ...).
    pub fn field(&self) -> &str {
        match self {
            FileError::Truncated { field, .. }
            | FileError::BadSignature { field, .. }
            | FileError::Invalid { field, .. } => field,
            FileError::MissingSuffix { .. } => "ucDfuSignature",
            FileError::CrcMismatch { .. } => "dwCRC",
            FileError::Unwritable { field, .. } => field,
        }
    }

    pub(crate) fn invalid(field: &'static str, offset: usize, reason: impl Into<String>) -> Self {
        FileError::Invalid {
            field,
            offset,
            reason: reason.into(),
        }
    }

    pub(crate) fn unwritable(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FileError::Unwritable {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
