//! `.dfu` suffix and DfuSe container formats.
