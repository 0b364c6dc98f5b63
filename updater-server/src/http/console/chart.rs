//! Charts drawn on the server as SVG. Each bar carries its number three
//! ways: a `<title>` (shown on hover), an `aria-label` read out on focus
//! (bars are focusable), and `data-value`; a table under the chart holds
//! the same figures for those who would rather read.

use maud::{html, Markup};

/// One bar segment: a label, a value and a CSS class for its colour.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub(crate) label: String,
    pub(crate) value: usize,
    pub(crate) class: &'static str,
}

/// One row of a stacked bar chart.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) label: String,
    pub(crate) segments: Vec<Segment>,
}

const WIDTH: f64 = 640.0;
const LABEL_W: f64 = 180.0;
const ROW_H: f64 = 26.0;

/// Horizontal stacked bars, one row per item, scaled to the largest total.
pub(crate) fn stacked_bars(
    id: &str,
    caption: &str,
    rows: &[Row],
    legend: &[(&str, &str)],
) -> Markup {
    let max = rows
        .iter()
        .map(|r| r.segments.iter().map(|s| s.value).sum::<usize>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let plot = WIDTH - LABEL_W - 50.0;
    let height = ROW_H * rows.len().max(1) as f64 + 8.0;
    html! {
        figure.chart id=(id) {
            figcaption { strong { (caption) } }
            div.legend aria-hidden="true" {
                @for (class, text) in legend { span class=(class) { (text) } }
            }
            svg viewBox=(format!("0 0 {WIDTH} {height}")) role="group" aria-label=(caption) {
                @for (i, row) in rows.iter().enumerate() {
                    @let y = i as f64 * ROW_H + 4.0;
                    text x="0" y=(format!("{:.1}", y + 16.0)) font-size="12" { (truncate(&row.label, 26)) }
                    @let mut x = LABEL_W;
                    @for s in &row.segments {
                        @if s.value > 0 {
                            @let w = plot * s.value as f64 / max;
                            @let text = format!("{}, {}: {}", row.label, s.label, s.value);
                            rect class=(format!("bar fill-{}", s.class)) x=(format!("{x:.1}")) y=(format!("{y:.1}"))
                                width=(format!("{w:.1}")) height=(format!("{:.1}", ROW_H - 6.0))
                                tabindex="0" role="img" aria-label=(text)
                                data-row=(row.label) data-series=(s.label) data-value=(s.value) {
                                title { (text) }
                            }
                            ({ x += w; "" })
                        }
                    }
                    text x=(format!("{:.1}", x + 6.0)) y=(format!("{:.1}", y + 16.0)) font-size="12" {
                        (row.segments.iter().map(|s| s.value).sum::<usize>())
                    }
                }
            }
            p.readout aria-live="polite" {}
        }
    }
}

/// Vertical columns (one per day, say), scaled to the largest value.
pub(crate) fn columns(id: &str, caption: &str, points: &[(String, usize)]) -> Markup {
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1) as f64;
    let n = points.len().max(1) as f64;
    let plot_h = 140.0;
    let step = (WIDTH - 40.0) / n;
    html! {
        figure.chart id=(id) {
            figcaption { strong { (caption) } }
            svg viewBox=(format!("0 0 {WIDTH} {}", plot_h + 36.0)) role="group" aria-label=(caption) {
                text x="0" y="12" font-size="11" { (max as usize) }
                line x1="36" y1=(plot_h + 4.0) x2=(WIDTH) y2=(plot_h + 4.0) stroke="#8a96a3" {}
                @for (i, (label, value)) in points.iter().enumerate() {
                    @let h = plot_h * *value as f64 / max;
                    @let x = 40.0 + i as f64 * step;
                    @let text = format!("{label}: {value}");
                    rect class="bar fill-default" x=(format!("{x:.1}")) y=(format!("{:.1}", plot_h + 4.0 - h))
                        width=(format!("{:.1}", (step - 2.0).max(1.0))) height=(format!("{h:.1}"))
                        tabindex="0" role="img" aria-label=(text) data-row=(label) data-value=(value) {
                        title { (text) }
                    }
                    @if i % 5 == 0 || i + 1 == points.len() {
                        text x=(format!("{x:.1}")) y=(plot_h + 22.0) font-size="10" { (label.get(5..).unwrap_or(label)) }
                    }
                }
            }
            p.readout aria-live="polite" {}
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}
