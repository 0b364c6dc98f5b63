//! The rollout status report: per wave, its devices by state (waiting and
//! failed by reason) and when it began, succeeded and ended — as a
//! serialisable view (JSON) and as CSV rows.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::spec::WaveShare;
use super::{Pause, Rollout, RolloutRelease, RolloutState, WaveFigures};

/// One wave in the report.
#[derive(Debug, Clone, Serialize)]
pub struct WaveReport {
    /// 1-based.
    pub number: usize,
    /// Its name.
    pub name: String,
    /// Which devices it holds, in words.
    pub target: String,
    /// Deployment type.
    pub deployment: catalog::assignment::DeploymentType,
    /// When it begins, in words.
    pub start: String,
    /// Success threshold (%).
    pub success_threshold_percent: u8,
    /// Error threshold (%).
    pub error_threshold_percent: u8,
    /// When it began.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached its success threshold.
    pub succeeded_at: Option<DateTime<Utc>>,
    /// When every device installed or failed.
    pub ended_at: Option<DateTime<Utc>>,
    /// Its devices by state.
    pub figures: WaveFigures,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// Rollout id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: RolloutState,
    /// Why it is paused.
    pub pause: Option<Pause>,
    /// The release.
    pub release: RolloutRelease,
    /// Devices in all waves.
    pub devices: u64,
    /// Of them installed.
    pub installed: u64,
    /// Of them failed.
    pub failed: u64,
    /// The waves.
    pub waves: Vec<WaveReport>,
}

/// Builds the report of `r` from its figures.
pub fn build(r: &Rollout, figures: &[WaveFigures]) -> StatusReport {
    let waves: Vec<WaveReport> = r
        .spec
        .waves
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let p = r.waves.get(i).cloned().unwrap_or_default();
            WaveReport {
                number: i + 1,
                name: w.display_name(i),
                target: wave_target(&w.share()),
                deployment: r.spec.deployment_of(i),
                start: w.start_condition(i).to_string(),
                success_threshold_percent: w.success_threshold_percent,
                error_threshold_percent: w.error_threshold_percent,
                started_at: p.started_at,
                succeeded_at: p.succeeded_at,
                ended_at: p.ended_at,
                figures: figures.get(i).cloned().unwrap_or_default(),
            }
        })
        .collect();
    StatusReport {
        id: r.id.clone(),
        name: r.spec.name.clone(),
        state: r.state,
        pause: r.pause.clone(),
        release: r.release.clone(),
        devices: waves.iter().map(|w| w.figures.devices).sum(),
        installed: waves.iter().map(|w| w.figures.installed).sum(),
        failed: waves.iter().map(|w| w.figures.failed_total()).sum(),
        waves,
    }
}

/// Which devices a wave holds, in words (the report's `target`).
fn wave_target(share: &WaveShare) -> String {
    match share {
        WaveShare::Percent(p) => format!("{p} % of the target"),
        WaveShare::Rest => "the rest of the target".into(),
        WaveShare::Group(g) => format!("group {g}"),
    }
}

/// CSV columns: one row per wave, state and reason.
pub const CSV_COLUMNS: &[&str] = &[
    "wave",
    "name",
    "started_at",
    "succeeded_at",
    "ended_at",
    "state",
    "reason",
    "devices",
];

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339()).unwrap_or_default()
}

/// The report as CSV rows ([`CSV_COLUMNS`]): per wave, a row for each state
/// with devices in it (waiting and failed: one per reason).
pub fn csv_rows(report: &StatusReport) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for w in &report.waves {
        let f = &w.figures;
        let mut row = |state: &str, reason: &str, n: u64| {
            rows.push(vec![
                w.number.to_string(),
                w.name.clone(),
                time(w.started_at),
                time(w.succeeded_at),
                time(w.ended_at),
                state.to_owned(),
                reason.to_owned(),
                n.to_string(),
            ]);
        };
        for (state, n) in [
            ("pending", f.pending),
            ("downloading", f.downloading),
            ("installing", f.installing),
            ("installed", f.installed),
        ] {
            if n > 0 {
                row(state, "", n);
            }
        }
        for (reason, n) in &f.waiting {
            row("waiting", reason, *n);
        }
        for (reason, n) in &f.failed {
            row("failed", reason, *n);
        }
        if f.devices == 0 {
            row("none", "", 0);
        }
    }
    rows
}
