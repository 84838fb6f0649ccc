//! Figures: SVG line charts (plotters) and PNG image grids, written atomically.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use crate::fsio::write_atomic;

/// One line of a chart.
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points `(x, y)`; non-finite points (and non-positive ones on a log axis) are skipped.
    pub points: Vec<(f64, f64)>,
}

/// Axis setup of a line chart.
pub struct Chart<'a> {
    /// Title.
    pub title: &'a str,
    /// X axis label.
    pub x_label: &'a str,
    /// Y axis label.
    pub y_label: &'a str,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// Where the legend goes.
    pub legend: SeriesLabelPosition,
}

fn visible(p: &(f64, f64), log_y: bool) -> bool {
    p.0.is_finite() && p.1.is_finite() && (!log_y || p.1 > 0.0)
}

/// Draw `series` as an SVG line chart at `path`.
pub fn line_chart(path: &Path, chart: &Chart, series: &[Series]) -> Result<()> {
    let pts = || {
        series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|p| visible(p, chart.log_y))
    };
    let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in pts() {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 1.0, 10.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if chart.log_y {
        (y0, y1) = (y0 / 2.0, y1 * 2.0);
    } else {
        let pad = ((y1 - y0) * 0.05).max(1e-9);
        (y0, y1) = (y0 - pad, y1 + pad);
    }
    let x_integral = pts().all(|p| p.0.fract() == 0.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(chart.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(75);
        macro_rules! draw {
            ($ctx:expr) => {{
                let mut ctx = $ctx;
                let y_fmt = |v: &f64| {
                    if chart.log_y {
                        format!("{v:.0e}")
                    } else {
                        format!("{v:.2}")
                    }
                };
                let x_fmt = |v: &f64| {
                    if x_integral {
                        format!("{v:.0}")
                    } else {
                        format!("{v:.2}")
                    }
                };
                ctx.configure_mesh()
                    .x_desc(chart.x_label)
                    .y_desc(chart.y_label)
                    .x_label_formatter(&x_fmt)
                    .y_label_formatter(&y_fmt)
                    .draw()
                    .map_err(|e| anyhow!("{e}"))?;
                for (i, s) in series.iter().enumerate() {
                    let color = Palette99::pick(i).to_rgba();
                    let points: Vec<(f64, f64)> = s
                        .points
                        .iter()
                        .copied()
                        .filter(|p| visible(p, chart.log_y))
                        .collect();
                    ctx.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                        .map_err(|e| anyhow!("{e}"))?
                        .label(s.label.as_str())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                        });
                    ctx.draw_series(
                        points
                            .into_iter()
                            .map(|p| Circle::new(p, 3, color.filled())),
                    )
                    .map_err(|e| anyhow!("{e}"))?;
                }
                ctx.configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .position(chart.legend.clone())
                    .draw()
                    .map_err(|e| anyhow!("{e}"))?;
            }};
        }
        if chart.log_y {
            draw!(
                builder
                    .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                    .map_err(|e| anyhow!("{e}"))?
            );
        } else {
            draw!(
                builder
                    .build_cartesian_2d(x0..x1, y0..y1)
                    .map_err(|e| anyhow!("{e}"))?
            );
        }
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    write_atomic(path, svg.as_bytes())
}

/// A diverging colour for `v` in `[-1, 1]`: blue (negative), white (0), red (positive).
fn diverging(v: f32) -> [u8; 3] {
    let t = v.clamp(-1.0, 1.0);
    let fade = |c: f32| (255.0 * (1.0 - t.abs()) + c * t.abs()).round() as u8;
    if t >= 0.0 {
        [fade(178.0), fade(24.0), fade(43.0)]
    } else {
        [fade(33.0), fade(102.0), fade(172.0)]
    }
}

/// Write `filters` (each `kh × kw` values, row-major) as a PNG grid, `cols` filters per row,
/// every value a `scale × scale` block coloured on a diverging scale symmetric around 0
/// (`±max |value|` over all filters), with a 2-pixel grey gutter.
pub fn filter_grid_png(
    path: &Path,
    filters: &[Vec<f32>],
    kh: usize,
    kw: usize,
    cols: usize,
    scale: usize,
) -> Result<()> {
    let max = filters
        .iter()
        .flatten()
        .fold(0.0f32, |m, v| m.max(v.abs()))
        .max(f32::MIN_POSITIVE);
    let cols = cols.max(1).min(filters.len().max(1));
    let rows = filters.len().div_ceil(cols).max(1);
    let gap = 2;
    let (cw, ch) = (kw * scale + gap, kh * scale + gap);
    let (width, height) = (cols * cw + gap, rows * ch + gap);
    let mut pixels = vec![160u8; width * height * 3];
    for (f, filter) in filters.iter().enumerate() {
        let (ox, oy) = (gap + (f % cols) * cw, gap + (f / cols) * ch);
        for y in 0..kh * scale {
            for x in 0..kw * scale {
                let v = filter[(y / scale) * kw + x / scale] / max;
                let at = ((oy + y) * width + ox + x) * 3;
                pixels[at..at + 3].copy_from_slice(&diverging(v));
            }
        }
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, width as u32, height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&pixels)?;
    }
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_and_grids_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("c.svg");
        line_chart(
            &svg,
            &Chart {
                title: "t",
                x_label: "x",
                y_label: "y",
                log_y: true,
                legend: SeriesLabelPosition::UpperRight,
            },
            &[Series {
                label: "a".into(),
                points: vec![(1.0, 1.0), (2.0, 0.01), (3.0, f64::NAN), (4.0, 0.0)],
            }],
        )
        .unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg") && text.contains("polyline"));
        let png_path = dir.path().join("g.png");
        filter_grid_png(&png_path, &vec![vec![1.0, -1.0, 0.0, 0.5]; 3], 2, 2, 2, 4).unwrap();
        let bytes = std::fs::read(&png_path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert_eq!(diverging(0.0), [255, 255, 255]);
        assert_eq!(diverging(1.0), [178, 24, 43]);
    }
}
