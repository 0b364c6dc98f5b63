//! Fault injection for simulated DFU devices. Each fault fires once.

use dfu::host::Request;

/// A fault to inject into a [`SimDevice`](crate::SimDevice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Power is lost once this many image bytes of a download were received: the device
    /// drops off the bus and comes back (after its re-enumeration delay) in DFU mode with
    /// no valid application. Re-flashing recovers it.
    PowerLossAfter {
        /// Bytes received before the power loss.
        bytes: usize,
    },
    /// The `nth` (1-based) request of this kind, counted from when the fault was injected,
    /// is stalled: the device enters dfuERROR with errSTALLEDPKT.
    Stall {
        /// Which request.
        request: Request,
        /// Which occurrence.
        nth: usize,
    },
    /// A bit flips while writing: the image fails the device's check (errVERIFY).
    CorruptWrite,
    /// The device drops off the bus when manifestation starts; it comes back running the
    /// new firmware after its re-enumeration delay if `comes_back`, else never.
    VanishDuringManifest {
        /// Whether it re-appears.
        comes_back: bool,
    },
    /// UPLOAD is refused (stalled) even though the device advertises it.
    RefuseUpload,
}
