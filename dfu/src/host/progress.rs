//! Progress reporting for the agent and the CLI.

use std::fmt;

/// The phase of an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Switching from runtime to DFU mode.
    Detach,
    /// Erasing flash pages (DfuSe).
    Erase,
    /// Sending the firmware.
    Download,
    /// The device is installing the firmware.
    Manifest,
    /// Reading firmware back.
    Upload,
    /// Comparing the read-back firmware with the image.
    Verify,
    /// Returning the device to its application.
    Attach,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Detach => "detaching",
            Self::Erase => "erasing",
            Self::Download => "downloading",
            Self::Manifest => "installing",
            Self::Upload => "reading",
            Self::Verify => "verifying",
            Self::Attach => "restarting",
        })
    }
}

/// Receives progress reports: `done` of `total` bytes (or steps) in `phase`.
pub trait Progress {
    /// Called at the start of a phase (`done == 0`) and as work completes.
    fn report(&mut self, phase: Phase, done: u64, total: u64);
}

impl<F: FnMut(Phase, u64, u64)> Progress for F {
    fn report(&mut self, phase: Phase, done: u64, total: u64) {
        self(phase, done, total);
    }
}

/// Ignores progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&mut self, _: Phase, _: u64, _: u64) {}
}
