//! DFU interface and functional descriptors (DFU 1.1 §4.1.3, §4.2.4) and the
//! device description a [`Transport`](super::Transport) exposes.

use thiserror::Error;

/// USB interface class of DFU (application specific).
pub const DFU_CLASS: u8 = 0xFE;
/// USB interface subclass of DFU.
pub const DFU_SUBCLASS: u8 = 0x01;
/// Descriptor type of the DFU functional descriptor.
pub const DFU_FUNCTIONAL_DESCRIPTOR_TYPE: u8 = 0x21;
/// `bcdDFUVersion` of plain DFU 1.1.
pub const DFU_VERSION_1_1: u16 = 0x0110;
/// `bcdDFUVersion` of ST's DfuSe extension.
pub const DFU_VERSION_DFUSE: u16 = 0x011A;

/// Which side of DFU an interface speaks (its `bInterfaceProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DfuMode {
    /// Protocol 1: the application is running; DETACH switches to DFU mode.
    Runtime,
    /// Protocol 2: the DFU bootloader is running.
    Dfu,
}

impl DfuMode {
    /// Classifies an interface by class/subclass/protocol; `None` if it is not DFU.
    pub fn from_interface(class: u8, subclass: u8, protocol: u8) -> Option<Self> {
        if class != DFU_CLASS || subclass != DFU_SUBCLASS {
            return None;
        }
        match protocol {
            1 => Some(Self::Runtime),
            2 => Some(Self::Dfu),
            _ => None,
        }
    }

    /// The `bInterfaceProtocol` value.
    pub fn protocol(self) -> u8 {
        match self {
            Self::Runtime => 1,
            Self::Dfu => 2,
        }
    }
}

/// `bmAttributes` of the functional descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DfuAttributes {
    /// bitCanDnload.
    pub can_download: bool,
    /// bitCanUpload.
    pub can_upload: bool,
    /// bitManifestationTolerant: talks to the host after manifestation.
    pub manifestation_tolerant: bool,
    /// bitWillDetach: detaches and re-attaches by itself on DETACH.
    pub will_detach: bool,
}

impl DfuAttributes {
    /// Decodes the bitmap.
    pub fn from_bits(b: u8) -> Self {
        Self {
            can_download: b & 0x01 != 0,
            can_upload: b & 0x02 != 0,
            manifestation_tolerant: b & 0x04 != 0,
            will_detach: b & 0x08 != 0,
        }
    }

    /// Encodes the bitmap.
    pub fn bits(self) -> u8 {
        u8::from(self.can_download)
            | u8::from(self.can_upload) << 1
            | u8::from(self.manifestation_tolerant) << 2
            | u8::from(self.will_detach) << 3
    }
}

/// The DFU functional descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionalDescriptor {
    /// bmAttributes.
    pub attributes: DfuAttributes,
    /// wDetachTimeOut in milliseconds.
    pub detach_timeout_ms: u16,
    /// wTransferSize: bytes per DNLOAD/UPLOAD block.
    pub transfer_size: u16,
    /// bcdDFUVersion (0x0110, or 0x011A for DfuSe).
    pub dfu_version: u16,
}

/// Errors from descriptor parsing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DescriptorError {
    /// Fewer bytes than the descriptor needs.
    #[error("DFU functional descriptor too short ({0} bytes)")]
    TooShort(usize),
    /// Not a functional descriptor.
    #[error("descriptor type {0:#04x} is not a DFU functional descriptor")]
    WrongType(u8),
    /// No DFU functional descriptor among the interface's extra descriptors.
    #[error("no DFU functional descriptor found")]
    Missing,
}

impl FunctionalDescriptor {
    /// Encoded length (DFU 1.1; DFU 1.0 devices send 7 bytes without bcdDFUVersion).
    pub const LEN: usize = 9;

    /// Parses one functional descriptor. A 7-byte DFU 1.0 descriptor yields version 0x0100.
    pub fn parse(b: &[u8]) -> Result<Self, DescriptorError> {
        if b.len() < 7 {
            return Err(DescriptorError::TooShort(b.len()));
        }
        if b[1] != DFU_FUNCTIONAL_DESCRIPTOR_TYPE {
            return Err(DescriptorError::WrongType(b[1]));
        }
        let len = usize::from(b[0]).min(b.len());
        if len < 7 {
            return Err(DescriptorError::TooShort(len));
        }
        let dfu_version = if len >= 9 {
            u16::from_le_bytes([b[7], b[8]])
        } else {
            0x0100
        };
        Ok(Self {
            attributes: DfuAttributes::from_bits(b[2]),
            detach_timeout_ms: u16::from_le_bytes([b[3], b[4]]),
            transfer_size: u16::from_le_bytes([b[5], b[6]]),
            dfu_version,
        })
    }

    /// Finds and parses the functional descriptor in an interface's "extra" descriptor bytes
    /// (a concatenation of `bLength, bDescriptorType, ...` descriptors).
    pub fn find_in(extra: &[u8]) -> Result<Self, DescriptorError> {
        let mut rest = extra;
        while rest.len() >= 2 {
            let len = usize::from(rest[0]);
            if len < 2 || len > rest.len() {
                break;
            }
            if rest[1] == DFU_FUNCTIONAL_DESCRIPTOR_TYPE {
                return Self::parse(&rest[..len]);
            }
            rest = &rest[len..];
        }
        Err(DescriptorError::Missing)
    }

    /// Encodes the 9-byte descriptor.
    pub fn to_bytes(&self) -> [u8; 9] {
        let d = self.detach_timeout_ms.to_le_bytes();
        let t = self.transfer_size.to_le_bytes();
        let v = self.dfu_version.to_le_bytes();
        [
            9,
            DFU_FUNCTIONAL_DESCRIPTOR_TYPE,
            self.attributes.bits(),
            d[0],
            d[1],
            t[0],
            t[1],
            v[0],
            v[1],
        ]
    }

    /// True for ST DfuSe (bcdDFUVersion 0x011A).
    pub fn is_dfuse(&self) -> bool {
        self.dfu_version == DFU_VERSION_DFUSE
    }
}

/// One DFU interface alternate setting of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DfuInterface {
    /// bInterfaceNumber.
    pub number: u8,
    /// bAlternateSetting (a DfuSe target / memory).
    pub alt_setting: u8,
    /// Runtime or DFU mode.
    pub mode: DfuMode,
    /// The interface string (for DfuSe, the memory layout string).
    pub name: Option<String>,
    /// The functional descriptor.
    pub functional: FunctionalDescriptor,
}

/// What the host knows about an enumerated device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
    /// bcdDevice (many devices report their firmware version here).
    pub bcd_device: u16,
    /// Serial number string, if any.
    pub serial: Option<String>,
    /// Product string, if any.
    pub product: Option<String>,
    /// Physical port path, e.g. `1-4.2` (bus-ports).
    pub port_path: Option<String>,
    /// The DFU interfaces (all alternate settings).
    pub interfaces: Vec<DfuInterface>,
}

impl DeviceInfo {
    /// The device's DFU mode, taken from its first DFU interface.
    pub fn mode(&self) -> Option<DfuMode> {
        self.interfaces.first().map(|i| i.mode)
    }

    /// `VID:PID` in the usual lowercase hex form.
    pub fn vid_pid(&self) -> String {
        format!("{:04x}:{:04x}", self.vendor_id, self.product_id)
    }
}

/// How to find a device again, e.g. after it re-enumerated in another mode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceMatcher {
    /// Required idVendor.
    pub vendor_id: Option<u16>,
    /// Required idProduct.
    pub product_id: Option<u16>,
    /// Required serial number.
    pub serial: Option<String>,
    /// Required port path.
    pub port_path: Option<String>,
    /// Required mode.
    pub mode: Option<DfuMode>,
}

impl DeviceMatcher {
    /// Whether `dev` satisfies every given criterion.
    pub fn matches(&self, dev: &DeviceInfo) -> bool {
        self.vendor_id.is_none_or(|v| v == dev.vendor_id)
            && self.product_id.is_none_or(|p| p == dev.product_id)
            && self
                .serial
                .as_ref()
                .is_none_or(|s| dev.serial.as_ref() == Some(s))
            && self
                .port_path
                .as_ref()
                .is_none_or(|p| dev.port_path.as_ref() == Some(p))
            && self.mode.is_none_or(|m| dev.mode() == Some(m))
    }

    /// Parses a CLI selector: `VID:PID` (hex), otherwise a serial number.
    pub fn parse_selector(s: &str) -> Self {
        if let Some((v, p)) = s.split_once(':') {
            if let (Ok(v), Ok(p)) = (u16::from_str_radix(v, 16), u16::from_str_radix(p, 16)) {
                return Self {
                    vendor_id: Some(v),
                    product_id: Some(p),
                    ..Self::default()
                };
            }
        }
        Self {
            serial: Some(s.to_owned()),
            ..Self::default()
        }
    }
}
