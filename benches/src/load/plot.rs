//! `--plot FILE.png`: the per-second series of a run drawn with `plotters` (bitmap backend):
//! throughput on top, latency percentiles below when the mode measures them. Text needs a
//! TrueType font from the system (DejaVu or Liberation Sans); without one the lines are
//! drawn without labels.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::meter::Series;

const FONT: &str = "sans-serif";
const CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
];

/// Registers the first system font found, once; whether text can be drawn.
fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        CANDIDATES.iter().any(|path| {
            let Ok(bytes) = std::fs::read(path) else {
                return false;
            };
            // The registry keeps fonts for the whole process: leak one file's bytes.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            register_font(FONT, FontStyle::Normal, bytes).is_ok()
        })
    })
}

/// Draws `series` into the PNG at `path`.
pub fn draw(path: &Path, title: &str, series: &Series) -> Result<(), String> {
    draw_with(path, title, series, font_ready())
}

fn draw_with(path: &Path, title: &str, series: &Series, text: bool) -> Result<(), String> {
    let latency = series.has_latency();
    let height = if latency { 760 } else { 420 };
    let root = BitMapBackend::new(path, (1000, height)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("plot {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    // A margin right of the last sample, so its marker is not cut.
    let t_max = series.rows.last().map_or(1.0, |r| r.t).max(1.0) * 1.04;
    let rates: Vec<(String, Vec<(f64, f64)>)> = series
        .names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let points = series
                .rows
                .iter()
                .filter_map(|r| r.rates.get(k).map(|v| (r.t, *v)))
                .collect();
            (format!("{name}/s"), points)
        })
        .collect();
    if latency {
        let (top, bottom) = root.split_vertically(height / 2);
        panel(&top, title, "per second", t_max, &rates, text).map_err(|e| err(&e))?;
        let lat = ["p50 ms", "p99 ms"].iter().enumerate().map(|(k, name)| {
            let points = series
                .rows
                .iter()
                .filter_map(|r| if k == 0 { r.p50_ms } else { r.p99_ms }.map(|v| (r.t, v)))
                .collect();
            ((*name).to_owned(), points)
        });
        let lat: Vec<_> = lat.collect();
        panel(&bottom, "latency", "ms", t_max, &lat, text).map_err(|e| err(&e))?;
    } else {
        panel(&root, title, "per second", t_max, &rates, text).map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}

fn panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    caption: &str,
    unit: &str,
    t_max: f64,
    lines: &[(String, Vec<(f64, f64)>)],
    text: bool,
) -> Result<(), String> {
    let y_max = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(0.0f64, f64::max);
    let y_max = if y_max > 0.0 { y_max * 1.15 } else { 1.0 };
    let mut builder = ChartBuilder::on(area);
    builder.margin(12);
    if text {
        builder
            .caption(caption, (FONT, 22))
            .x_label_area_size(36)
            .y_label_area_size(80);
    }
    let mut chart = builder
        .build_cartesian_2d(0.0..t_max, 0.0..y_max)
        .map_err(|e| e.to_string())?;
    let short_y = |v: &f64| short(*v);
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("seconds")
            .y_desc(unit)
            .label_style((FONT, 14))
            .y_label_formatter(&short_y);
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(|e| e.to_string())?;
    for (k, (name, points)) in lines.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        // Markers, so that a run of one or two samples still shows.
        let dots = points.iter().map(|p| Circle::new(*p, 3, color.filled()));
        chart.draw_series(dots).map_err(|e| e.to_string())?;
        let line = LineSeries::new(points.iter().copied(), color.stroke_width(2));
        let drawn = chart.draw_series(line).map_err(|e| e.to_string())?;
        if text {
            drawn.label(name.as_str()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
    }
    if text {
        chart
            .configure_series_labels()
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// An axis label: `12k`, `1.5M`, `250`, `2.5`, `0.25`.
fn short(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".to_owned()
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::meter::Row;
    use super::*;

    fn series() -> Series {
        let rows = (1..=5)
            .map(|s| Row {
                t: f64::from(s),
                rates: vec![1000.0 * f64::from(s), 10.0],
                p50_ms: Some(0.5),
                p99_ms: Some(f64::from(s)),
            })
            .collect();
        Series {
            names: vec!["round_trips", "failures"],
            rows,
        }
    }

    #[test]
    fn short_labels() {
        let got: Vec<_> = [2_500_000.0, 40_000.0, 250.0, 2.5, 0.25, 0.0]
            .into_iter()
            .map(short)
            .collect();
        assert_eq!(got, ["2.5M", "40k", "250", "2.5", "0.25", "0"]);
    }

    #[test]
    fn draws_with_and_without_text() {
        let dir = std::env::temp_dir().join(format!("netsvr-load-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (text, name) in [(font_ready(), "text.png"), (false, "plain.png")] {
            let path = dir.join(name);
            draw_with(&path, "test", &series(), text).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert!(bytes.starts_with(b"\x89PNG"), "{name}");
        }
        let mut empty = series();
        empty.rows.clear();
        draw_with(&dir.join("empty.png"), "empty", &empty, false).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
