//! The insight charts, drawn as SVG on the server: no chart library reaches the browser, and the
//! charts read before the wasm loads. Each has a `<title>` and `<desc>` (named by `aria-labelledby`)
//! and a `<title>` per bar or point for pointer users; the console puts a table of the same series
//! beside each.

use crate::domain::insights::{format_ms, SeriesPoint, Window};
use std::fmt::Write;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 200.0;
/// Room for the axis labels.
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 12.0;

/// Escapes text for SVG content and attribute values.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A bar's time as its label: the hour over a day, the date (and hour) over longer windows.
pub fn slot_label(window: Window, point: &SeriesPoint) -> String {
    match window {
        Window::Day => point.start.format("%H:00").to_string(),
        Window::Week => point.start.format("%b %-d %H:00").to_string(),
        Window::Month => point.start.format("%b %-d").to_string(),
    }
}

/// A round axis maximum at or above `max` (1, 2 or 5 times a power of ten).
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&v| v >= max)
        .unwrap_or(10.0 * power)
}

struct Frame {
    svg: String,
}

impl Frame {
    fn new(id: &str, title: &str, desc: &str) -> Self {
        let mut svg = String::with_capacity(8_192);
        let _ = write!(
            svg,
            r##"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id}-title {id}-desc"><title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"##,
            esc(title),
            esc(desc)
        );
        Self { svg }
    }

    /// Grid lines and labels at 0, half and the top of the y axis, and a few time labels.
    fn axes(&mut self, top: f64, label: impl Fn(f64) -> String, times: &[(f64, String)]) {
        for frac in [0.0, 0.5, 1.0] {
            let y = HEIGHT - BOTTOM - frac * (HEIGHT - BOTTOM - TOP);
            let _ = write!(
                self.svg,
                r##"<line class="grid" x1="{LEFT}" x2="{WIDTH}" y1="{y:.1}" y2="{y:.1}" stroke="#d0d5dd" stroke-width="1"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"##,
                LEFT - 6.0,
                y + 4.0,
                esc(&label(top * frac))
            );
        }
        for (x, text) in times {
            let _ = write!(
                self.svg,
                r##"<text class="axis" x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"##,
                HEIGHT - 6.0,
                esc(text)
            );
        }
    }

    fn finish(mut self) -> String {
        self.svg.push_str("</svg>");
        self.svg
    }
}

/// Which bars get a time label: about five, evenly spread.
fn time_labels(
    window: Window,
    series: &[SeriesPoint],
    x_of: impl Fn(usize) -> f64,
) -> Vec<(f64, String)> {
    let every = (series.len() / 5).max(1);
    series
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, p)| (x_of(i), slot_label(window, p)))
        .collect()
}

fn per(window: Window) -> &'static str {
    match window {
        Window::Day => "per hour",
        Window::Week => "per 6 hours",
        Window::Month => "per day",
    }
}

/// Deliveries per step by outcome: succeeded (bottom) and failed (on top), stacked.
pub fn deliveries_chart(id: &str, window: Window, series: &[SeriesPoint]) -> String {
    let succeeded: i64 = series.iter().map(|p| p.succeeded).sum();
    let failed: i64 = series.iter().map(|p| p.failed).sum();
    let title = format!("Attempts {}, {}, by outcome", per(window), window.label());
    let desc = format!(
        "{succeeded} succeeded and {failed} failed over the {} (times in UTC).",
        window.label()
    );
    let mut frame = Frame::new(id, &title, &desc);
    let top = nice_max(
        series
            .iter()
            .map(|p| (p.succeeded + p.failed) as f64)
            .fold(0.0, f64::max),
    );
    let slot = (WIDTH - LEFT) / series.len().max(1) as f64;
    let x_of = |i: usize| LEFT + slot * (i as f64 + 0.5);
    let times = time_labels(window, series, x_of);
    frame.axes(
        top,
        |v| {
            if v.fract() == 0.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        },
        &times,
    );
    let plot = HEIGHT - BOTTOM - TOP;
    let bar = (slot * 0.8).max(1.0);
    for (i, p) in series.iter().enumerate() {
        if p.succeeded + p.failed == 0 {
            continue;
        }
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let ok_h = p.succeeded as f64 / top * plot;
        let fail_h = p.failed as f64 / top * plot;
        let base = HEIGHT - BOTTOM;
        let _ = write!(
            frame.svg,
            r##"<g><title>{}: {} succeeded, {} failed</title><rect class="bar-ok" x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{ok_h:.1}" fill="#12b76a"/><rect class="bar-fail" x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{fail_h:.1}" fill="#f04438"/></g>"##,
            esc(&slot_label(window, p)),
            p.succeeded,
            p.failed,
            base - ok_h,
            base - ok_h - fail_h,
        );
    }
    frame.finish()
}

/// Latency p50 and p95 per step as two lines; steps without attempts break the lines.
pub fn latency_chart(id: &str, window: Window, series: &[SeriesPoint]) -> String {
    let worst = series
        .iter()
        .filter_map(|p| p.p95_latency_ms)
        .fold(0.0, f64::max);
    let title = format!("Latency p50 and p95 {}, {}", per(window), window.label());
    let desc = if worst > 0.0 {
        format!(
            "The slowest step's p95 was {} (times in UTC).",
            format_ms(worst)
        )
    } else {
        "No attempts in this window.".to_owned()
    };
    let mut frame = Frame::new(id, &title, &desc);
    // At least 2 ms, so the mid-axis label is a whole millisecond (sub-millisecond tops read
    // "0 ms" twice).
    let top = nice_max(worst).max(2.0);
    let slot = (WIDTH - LEFT) / series.len().max(1) as f64;
    let x_of = |i: usize| LEFT + slot * (i as f64 + 0.5);
    let times = time_labels(window, series, x_of);
    // The axis starts at a true zero, not at "< 1 ms".
    let axis = |ms: f64| {
        if ms == 0.0 {
            "0 ms".to_owned()
        } else {
            format_ms(ms)
        }
    };
    frame.axes(top, axis, &times);
    let plot = HEIGHT - BOTTOM - TOP;
    let y_of = |ms: f64| HEIGHT - BOTTOM - ms / top * plot;
    for (class, colour, pick) in [
        (
            "line-p50",
            "#2e90fa",
            (|p: &SeriesPoint| p.p50_latency_ms) as fn(&SeriesPoint) -> Option<f64>,
        ),
        ("line-p95", "#f79009", |p: &SeriesPoint| p.p95_latency_ms),
    ] {
        // One polyline per unbroken run of steps with data.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (i, p) in series.iter().enumerate() {
            match pick(p) {
                Some(ms) => runs
                    .last_mut()
                    .into_iter()
                    .for_each(|r| r.push((x_of(i), y_of(ms)))),
                None => runs.push(Vec::new()),
            }
        }
        for run in runs.into_iter().filter(|r| !r.is_empty()) {
            let points: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let _ = write!(
                frame.svg,
                r##"<polyline class="{class}" points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"##,
                points.join(" ")
            );
            for (x, y) in &run {
                let _ = write!(
                    frame.svg,
                    r##"<circle class="{class}" cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{colour}"/>"##
                );
            }
        }
    }
    for (i, p) in series.iter().enumerate() {
        if let (Some(p50), Some(p95)) = (p.p50_latency_ms, p.p95_latency_ms) {
            let _ = write!(
                frame.svg,
                r##"<rect class="hit" x="{:.1}" y="{TOP}" width="{slot:.1}" height="{plot:.1}" fill="transparent"><title>{}: p50 {}, p95 {}</title></rect>"##,
                LEFT + slot * i as f64,
                esc(&slot_label(window, p)),
                format_ms(p50),
                format_ms(p95)
            );
        }
    }
    frame.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn point(hour: u32, succeeded: i64, failed: i64, p95: Option<f64>) -> SeriesPoint {
        SeriesPoint {
            start: Utc.with_ymd_and_hms(2026, 12, 1, hour, 0, 0).unwrap(),
            succeeded,
            failed,
            p50_latency_ms: p95.map(|v| v / 2.0),
            p95_latency_ms: p95,
        }
    }

    #[test]
    fn deliveries_chart_draws_one_stack_per_busy_hour_with_an_accessible_name() {
        let series = vec![
            point(0, 8, 2, Some(100.0)),
            point(1, 0, 0, None),
            point(2, 5, 0, Some(50.0)),
        ];
        let svg = deliveries_chart("d", Window::Day, &series);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains(r##"aria-labelledby="d-title d-desc""##));
        assert!(svg.contains("13 succeeded and 2 failed"));
        assert_eq!(
            svg.matches("class=\"bar-ok\"").count(),
            2,
            "the empty hour draws nothing"
        );
        assert!(svg.contains("<title>00:00: 8 succeeded, 2 failed</title>"));
        assert_eq!(nice_max(13.0), 20.0);
        assert_eq!(nice_max(0.0), 1.0);
    }

    #[test]
    fn latency_chart_breaks_its_lines_where_there_is_no_data() {
        let series = vec![
            point(0, 1, 0, Some(100.0)),
            point(1, 0, 0, None),
            point(2, 1, 0, Some(300.0)),
        ];
        let svg = latency_chart("l", Window::Day, &series);
        assert_eq!(svg.matches("<polyline class=\"line-p95\"").count(), 2);
        assert!(svg.contains("p95 was 300 ms"));
        assert!(svg.contains("02:00: p50 150 ms, p95 300 ms"));
    }

    #[test]
    fn sub_millisecond_latencies_get_distinct_axis_labels() {
        let svg = latency_chart("l", Window::Day, &[point(0, 1, 0, Some(0.8))]);
        let labels: Vec<&str> = svg
            .split(r#"font-size="11">"#)
            .skip(1)
            .filter_map(|t| t.split('<').next())
            .filter(|t| t.ends_with(" ms"))
            .collect();
        assert_eq!(labels, ["0 ms", "1 ms", "2 ms"]);
    }
}
