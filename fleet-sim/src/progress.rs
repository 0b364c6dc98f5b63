//! Progress bars on stderr (hidden when disabled or not a terminal).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The demo's progress display.
#[derive(Debug)]
pub struct Progress {
    multi: Option<MultiProgress>,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Progress {
    /// Bars on stderr, or none.
    pub fn new(enabled: bool) -> Self {
        Self {
            multi: enabled.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    fn bar(&self, len: u64, template: &str) -> ProgressBar {
        match &self.multi {
            Some(m) => m.add(ProgressBar::new(len).with_style(style(template))),
            None => ProgressBar::hidden(),
        }
    }

    /// A counter of `len` steps.
    pub fn counter(&self, title: &str, len: usize) -> ProgressBar {
        self.bar(len as u64, "{msg:>20} [{bar:40}] {pos}/{len}")
            .with_message(title.to_owned())
    }

    /// Two bars for a night: the clock, and devices on the new firmware.
    pub fn night(&self, title: &str, minutes: u64, devices: u64) -> NightBars {
        let clock = self
            .bar(minutes, "{msg:>32} [{bar:40}]")
            .with_message(title.to_owned());
        let updated = self
            .bar(devices, "{msg:>32} [{bar:40}] {pos}/{len}")
            .with_message("devices on new firmware");
        NightBars {
            title: title.to_owned(),
            clock,
            updated,
            shown: self.multi.is_some(),
        }
    }
}

/// The bars of one night.
#[derive(Debug)]
pub struct NightBars {
    title: String,
    clock: ProgressBar,
    updated: ProgressBar,
    shown: bool,
}

impl NightBars {
    /// Moves the bars: minutes elapsed, devices updated, the local time.
    pub fn update(&self, minute: u64, updated: u64, local_time: &str) {
        self.clock.set_position(minute);
        self.clock
            .set_message(format!("{} · {local_time}", self.title));
        self.updated.set_position(updated);
    }

    /// Prints a line above the bars.
    pub fn note(&self, line: &str) {
        if self.shown {
            self.clock.println(line);
        } else {
            println!("{line}");
        }
    }

    /// Leaves the bars drawn at their last state.
    pub fn finish(&self) {
        self.clock.finish();
        self.updated.finish();
    }
}
