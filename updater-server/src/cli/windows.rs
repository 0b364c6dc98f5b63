//! `updater-server windows`: maintenance windows (see `docs/maintenance-windows.md`).

use ::catalog::window::{format_duration, parse_duration, MaintenanceWindow, Occurrence};
use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use serde::Serialize;

/// Maintenance-window commands.
#[derive(Debug, Subcommand)]
pub enum WindowsCommand {
    /// Print the next openings of a maintenance window, in local time and UTC.
    Preview(PreviewArgs),
}

/// Arguments of `windows preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// Start times: a 5-field crontab(5) expression, minute hour day-of-month month
    /// day-of-week, read in --tz (e.g. "0 1 * * 1-5").
    #[arg(long)]
    pub cron: String,
    /// How long each opening lasts, in elapsed time: 4h, 90m, 1h30m, 2d (at most 7d).
    #[arg(long)]
    pub duration: String,
    /// IANA time zone of the start times (e.g. Europe/Berlin).
    #[arg(long)]
    pub tz: String,
    /// List openings starting at or after this instant (RFC 3339) [default: now].
    #[arg(long)]
    pub from: Option<String>,
    /// How many openings to list.
    #[arg(long, default_value_t = 5)]
    pub count: usize,
    /// Print `[{"start": ..., "end": ...}]` with RFC 3339 UTC instants instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct JsonOccurrence {
    start: String,
    end: String,
}

/// Runs a `windows` command.
pub(crate) fn run(command: WindowsCommand) -> anyhow::Result<()> {
    match command {
        WindowsCommand::Preview(args) => {
            let out = preview(&args, Utc::now())?;
            println!("{out}");
            Ok(())
        }
    }
}

fn preview(args: &PreviewArgs, now: DateTime<Utc>) -> anyhow::Result<String> {
    let from = match &args.from {
        None => now,
        Some(s) => DateTime::parse_from_rfc3339(s)
            .with_context(|| {
                format!("--from: {s:?} is not an RFC 3339 instant (e.g. 2026-03-29T00:00:00Z)")
            })?
            .with_timezone(&Utc),
    };
    let duration = parse_duration(&args.duration).context("invalid maintenance window")?;
    let window = MaintenanceWindow::new(&args.cron, duration, &args.tz)
        .context("invalid maintenance window")?;
    let list: Vec<Occurrence> = window.occurrences(from).take(args.count).collect();
    if args.json {
        let json: Vec<JsonOccurrence> = list
            .iter()
            .map(|o| JsonOccurrence {
                start: o.start.to_rfc3339_opts(SecondsFormat::Secs, true),
                end: o.end.to_rfc3339_opts(SecondsFormat::Secs, true),
            })
            .collect();
        return Ok(serde_json::to_string(&json)?);
    }
    Ok(table(&window, from, &list))
}

fn table(window: &MaintenanceWindow, from: DateTime<Utc>, list: &[Occurrence]) -> String {
    let tz = window.tz();
    let local = |t: DateTime<Utc>| crate::http::local_time(tz, t);
    let utc = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M").to_string();
    let mut rows = vec![[
        "#".to_owned(),
        format!("opens ({})", tz.name()),
        "closes".to_owned(),
        "opens (UTC)".to_owned(),
        "closes (UTC)".to_owned(),
    ]];
    for (i, o) in list.iter().enumerate() {
        rows.push([
            (i + 1).to_string(),
            local(o.start),
            local(o.end),
            utc(o.start),
            utc(o.end),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!(
        "\"{}\" for {} in {}, from {}\n",
        window.cron(),
        format_duration(window.duration()),
        tz.name(),
        from.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    if let Some(open) = window.active_at(from).filter(|o| o.start < from) {
        out.push_str(&format!(
            "open at that instant since {} until {}\n",
            local(open.start),
            local(open.end)
        ));
    }
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, w))| match c {
                0 => format!("{cell:>w$}"),
                _ => format!("{cell:<w$}"),
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    if list.is_empty() {
        out.push_str("(no openings)\n");
    }
    out.truncate(out.trim_end().len());
    out
}
