//! The rollout state machine: pure functions of a [`Rollout`], its per-wave
//! [`WaveFigures`] and a `now` the caller passes, so a test runs a month of
//! rollout in microseconds.
//!
//! [`step`] is what the server's evaluation runs (periodically and after
//! every action):
//! 1. Nothing moves while the rollout is paused or cancelled.
//! 2. A wave that began is checked against its error threshold first: for
//!    each failure reason, the failures beyond those acknowledged at the last
//!    resume, as a share of the wave's devices; reaching the threshold pauses
//!    the rollout with the reason and the failing devices.
//! 3. A wave that began records when it reached its success threshold
//!    (installed share; an empty wave at once) and when it ended (every
//!    device installed or failed).
//! 4. The first wave that has not begun begins when its condition holds:
//!    at once, at its time, once approved, or once the wave before it
//!    succeeded — and so on, so several waves may begin in one step.
//! 5. When every wave began and succeeded, the rollout is completed.
//!
//! The admin's actions ([`pause`], [`resume`], [`approve`], [`cancel`]) are
//! here too, refusing what the state does not allow.

use chrono::{DateTime, Utc};

use super::spec::StartCondition;
use super::{Pause, Rollout, RolloutState, WaveFigures};
use crate::fleet::FleetError;

/// Advances `r` given its figures; returns whether anything changed.
pub fn step(r: &mut Rollout, figures: &[WaveFigures], now: DateTime<Utc>) -> bool {
    if matches!(r.state, RolloutState::Paused | RolloutState::Cancelled) {
        return false;
    }
    let empty = WaveFigures::default();
    let figure = |i: usize| figures.get(i).unwrap_or(&empty);
    if r.state == RolloutState::Running {
        for i in 0..r.waves.len() {
            if r.waves[i].started_at.is_some() && over_error_threshold(r, i, figure(i), now) {
                return true;
            }
        }
    }
    let mut changed = false;
    loop {
        for i in 0..r.waves.len() {
            changed |= record_progress(r, i, figure(i), now);
        }
        if r.state != RolloutState::Running || !begin_next(r, now) {
            break;
        }
        changed = true;
    }
    if r.state == RolloutState::Running
        && r.waves
            .iter()
            .all(|w| w.started_at.is_some() && w.succeeded_at.is_some())
    {
        r.state = RolloutState::Completed;
        r.note(now, "completed: every wave reached its success threshold");
        changed = true;
    }
    changed
}

fn wave_name(r: &Rollout, i: usize) -> String {
    r.spec
        .waves
        .get(i)
        .map_or_else(|| format!("Wave {}", i + 1), |w| w.display_name(i))
}

/// Pauses `r` when wave `i`'s new failures for one reason reach its error
/// threshold.
fn over_error_threshold(r: &mut Rollout, i: usize, f: &WaveFigures, now: DateTime<Utc>) -> bool {
    let Some(threshold) = r.spec.waves.get(i).map(|w| w.error_threshold_percent) else {
        return false;
    };
    if f.devices == 0 {
        return false;
    }
    let acknowledged = &r.waves[i].acknowledged_failures;
    let crossing = f.failed.iter().find_map(|(reason, &n)| {
        let new = n.saturating_sub(acknowledged.get(reason).copied().unwrap_or(0));
        (new > 0 && new * 100 >= u64::from(threshold) * f.devices).then(|| (reason.clone(), new))
    });
    let Some((reason, failed)) = crossing else {
        return false;
    };
    let share = failed * 100 / f.devices;
    let why = format!(
        "{}: {failed} of {} devices failed with \"{reason}\" ({share} %, error threshold {threshold} %)",
        wave_name(r, i),
        f.devices
    );
    r.state = RolloutState::Paused;
    r.pause = Some(Pause {
        at: now,
        by: None,
        reason: why.clone(),
        wave: Some(i),
        failure: Some(reason.clone()),
        failing_devices: f.failing_devices.get(&reason).cloned().unwrap_or_default(),
    });
    r.note(now, format!("paused automatically: {why}"));
    true
}

fn record_progress(r: &mut Rollout, i: usize, f: &WaveFigures, now: DateTime<Utc>) -> bool {
    let Some(success) = r.spec.waves.get(i).map(|w| w.success_threshold_percent) else {
        return false;
    };
    let name = wave_name(r, i);
    let w = &mut r.waves[i];
    if w.started_at.is_none() {
        return false;
    }
    let mut notes = Vec::new();
    if w.succeeded_at.is_none() && f.installed * 100 >= u64::from(success) * f.devices {
        w.succeeded_at = Some(now);
        notes.push(format!(
            "{name} reached its success threshold: {} of {} devices installed",
            f.installed, f.devices
        ));
    }
    if w.ended_at.is_none() && f.settled() {
        w.ended_at = Some(now);
        notes.push(format!(
            "{name} ended: {} installed, {} failed",
            f.installed,
            f.failed_total()
        ));
    }
    let changed = !notes.is_empty();
    for n in notes {
        r.note(now, n);
    }
    changed
}

/// Begins the first wave that has not begun if its condition holds.
fn begin_next(r: &mut Rollout, now: DateTime<Utc>) -> bool {
    let Some(i) = r.waves.iter().position(|w| w.started_at.is_none()) else {
        return false;
    };
    let condition = r.spec.waves[i].start_condition(i);
    let go = match condition {
        StartCondition::Immediately => true,
        StartCondition::At(t) => now >= t,
        StartCondition::Approval => r.waves[i].approved_at.is_some(),
        StartCondition::AfterPrevious => i == 0 || r.waves[i - 1].succeeded_at.is_some(),
    };
    if go {
        r.waves[i].started_at = Some(now);
        let name = wave_name(r, i);
        r.note(now, format!("{name} began ({condition})"));
    }
    go
}

fn refuse(r: &Rollout, action: &str) -> FleetError {
    FleetError::Conflict(format!(
        "the rollout is {}: it cannot be {action}",
        r.state.as_str()
    ))
}

/// An admin pauses a running rollout.
pub fn pause(r: &mut Rollout, by: &str, now: DateTime<Utc>) -> Result<(), FleetError> {
    if r.state != RolloutState::Running {
        return Err(refuse(r, "paused"));
    }
    r.state = RolloutState::Paused;
    r.pause = Some(Pause {
        at: now,
        by: Some(by.to_owned()),
        reason: format!("paused by {by}"),
        wave: None,
        failure: None,
        failing_devices: Vec::new(),
    });
    r.note(now, format!("paused by {by}"));
    Ok(())
}

/// An admin resumes a paused rollout: the failures seen now are
/// acknowledged, so only new ones count against the error thresholds.
pub fn resume(
    r: &mut Rollout,
    by: &str,
    figures: &[WaveFigures],
    now: DateTime<Utc>,
) -> Result<(), FleetError> {
    if r.state != RolloutState::Paused {
        return Err(refuse(r, "resumed"));
    }
    for (w, f) in r.waves.iter_mut().zip(figures) {
        if w.started_at.is_some() {
            w.acknowledged_failures = f.failed.clone();
        }
    }
    r.state = RolloutState::Running;
    r.pause = None;
    r.note(now, format!("resumed by {by}"));
    Ok(())
}

/// An admin approves the next wave (one that starts on approval); returns
/// its index.
pub fn approve(r: &mut Rollout, by: &str, now: DateTime<Utc>) -> Result<usize, FleetError> {
    if matches!(r.state, RolloutState::Cancelled | RolloutState::Completed) {
        return Err(refuse(r, "approved"));
    }
    let next = r.waves.iter().position(|w| w.started_at.is_none());
    let Some(i) = next.filter(|&i| r.spec.waves[i].start_condition(i) == StartCondition::Approval)
    else {
        return Err(FleetError::Conflict(match next {
            Some(i) => format!(
                "the next wave, {}, starts {}, not on approval",
                wave_name(r, i),
                r.spec.waves[i].start_condition(i)
            ),
            None => "every wave has begun: nothing to approve".into(),
        }));
    };
    if r.waves[i].approved_at.is_some() {
        return Err(FleetError::Conflict(format!(
            "{} is already approved",
            wave_name(r, i)
        )));
    }
    r.waves[i].approved_at = Some(now);
    r.waves[i].approved_by = Some(by.to_owned());
    let name = wave_name(r, i);
    r.note(now, format!("{name} approved by {by}"));
    Ok(i)
}

/// An admin cancels a rollout (its devices go back to the policies).
pub fn cancel(r: &mut Rollout, by: &str, now: DateTime<Utc>) -> Result<(), FleetError> {
    if r.state == RolloutState::Cancelled {
        return Err(refuse(r, "cancelled"));
    }
    r.state = RolloutState::Cancelled;
    r.pause = None;
    r.note(now, format!("cancelled by {by}"));
    Ok(())
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
