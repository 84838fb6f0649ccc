//! Line charts with optional intervals.

use plotters::prelude::*;

use crate::{FONT, FigureError, tick};

/// One point of a series, with an optional interval (e.g. a bootstrap 95% interval).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Position.
    pub x: f64,
    /// Value.
    pub y: f64,
    /// Interval `(low, high)` around `y`, if any.
    pub interval: Option<(f64, f64)>,
}

impl Point {
    /// A point without an interval.
    pub fn new(x: f64, y: f64) -> Self {
        Point {
            x,
            y,
            interval: None,
        }
    }

    /// A point with the interval `(lo, hi)`.
    pub fn with_interval(x: f64, y: f64, lo: f64, hi: f64) -> Self {
        Point {
            x,
            y,
            interval: Some((lo, hi)),
        }
    }
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points; non-finite ones (and non-positive ones on a log axis) are skipped.
    pub points: Vec<Point>,
    /// Draw the intervals as a shaded band instead of error bars.
    pub band: bool,
}

impl Series {
    /// A series of `(x, y)` points without intervals.
    pub fn plain(label: impl Into<String>, points: impl IntoIterator<Item = (f64, f64)>) -> Self {
        Series {
            label: label.into(),
            points: points.into_iter().map(|(x, y)| Point::new(x, y)).collect(),
            band: false,
        }
    }
}

/// A line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Logarithmic x axis.
    pub log_x: bool,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// Fixed y range (otherwise fitted to the data and intervals).
    pub y_range: Option<(f64, f64)>,
    /// Tick positions of a logarithmic x axis [default: the data's x values if there are at
    /// most 12, else powers of ten].
    pub x_ticks: Option<Vec<f64>>,
    /// Horizontal reference lines `(y, label)`, e.g. a claim's threshold.
    pub references: Vec<(f64, String)>,
    /// The lines.
    pub series: Vec<Series>,
    /// Where the legend goes.
    pub legend: SeriesLabelPosition,
}

impl LineChart {
    /// A chart with linear axes, the legend at the upper right, and no series yet.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        LineChart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_x: false,
            log_y: false,
            y_range: None,
            x_ticks: None,
            references: Vec::new(),
            series: Vec::new(),
            legend: SeriesLabelPosition::UpperRight,
        }
    }
}

fn ok_x(x: f64, log: bool) -> bool {
    x.is_finite() && (!log || x > 0.0)
}

/// Draw `chart` as an SVG document.
pub fn line_chart(chart: &LineChart) -> Result<String, FigureError> {
    let draw_err = |e: &dyn std::fmt::Display| FigureError::Draw {
        title: chart.title.clone(),
        message: e.to_string(),
    };
    let visible = |p: &Point| ok_x(p.x, chart.log_x) && ok_x(p.y, chart.log_y);
    let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY);
    for p in chart
        .series
        .iter()
        .flat_map(|s| &s.points)
        .filter(|p| visible(p))
    {
        (x0, x1) = (x0.min(p.x), x1.max(p.x));
        (y0, y1) = (y0.min(p.y), y1.max(p.y));
        if let Some((lo, hi)) = p.interval {
            for v in [lo, hi] {
                if ok_x(v, chart.log_y) {
                    (y0, y1) = (y0.min(v), y1.max(v));
                }
            }
        }
    }
    for (y, _) in &chart.references {
        if ok_x(*y, chart.log_y) {
            (y0, y1) = (y0.min(*y), y1.max(*y));
        }
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (1.0, 2.0, 1.0, 2.0);
    }
    if let Some((lo, hi)) = chart.y_range {
        (y0, y1) = (lo, hi);
    }
    if chart.log_x {
        (x0, x1) = (x0 / 1.4, x1 * 1.4);
    } else {
        let pad = ((x1 - x0) * 0.04).max(1e-9);
        (x0, x1) = (x0 - pad, x1 + pad);
    }
    if chart.y_range.is_none() {
        if chart.log_y {
            (y0, y1) = (y0 / 1.6, y1 * 1.6);
        } else {
            let pad = ((y1 - y0) * 0.06).max(1e-6);
            (y0, y1) = (y0 - pad, y1 + pad);
        }
    }
    let log_ticks: Vec<f64> = chart.x_ticks.clone().unwrap_or_else(|| {
        let mut xs: Vec<f64> = chart
            .series
            .iter()
            .flat_map(|s| &s.points)
            .map(|p| p.x)
            .filter(|&x| ok_x(x, true))
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        if xs.len() <= 12 {
            xs
        } else {
            (-12..=12)
                .map(|e| 10f64.powi(e))
                .filter(|&v| v >= x0 && v <= x1)
                .collect()
        }
    });
    let x_integral = chart
        .series
        .iter()
        .flat_map(|s| &s.points)
        .all(|p| p.x.fract() == 0.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(&e))?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(&chart.title, (FONT, crate::title_size(&chart.title, 900)))
            .margin(14)
            .x_label_area_size(50)
            .y_label_area_size(80);
        macro_rules! draw {
            ($ctx:expr) => {{
                let mut ctx = $ctx;
                let x_fmt = |v: &f64| {
                    if x_integral && !chart.log_x {
                        format!("{v:.0}")
                    } else {
                        tick(*v)
                    }
                };
                let y_fmt = |v: &f64| tick(*v);
                ctx.configure_mesh()
                    .x_desc(chart.x_label.as_str())
                    .y_desc(chart.y_label.as_str())
                    .x_label_formatter(&x_fmt)
                    .y_label_formatter(&y_fmt)
                    .label_style((FONT, 15))
                    .axis_desc_style((FONT, 17))
                    .light_line_style(RGBColor(235, 235, 235))
                    .bold_line_style(RGBColor(215, 215, 215))
                    .draw()
                    .map_err(|e| draw_err(&e))?;
                for (y, label) in &chart.references {
                    if !ok_x(*y, chart.log_y) {
                        continue;
                    }
                    let style = RGBColor(90, 90, 90).stroke_width(1);
                    ctx.draw_series(std::iter::once(PathElement::new(
                        vec![(x0, *y), (x1, *y)],
                        style,
                    )))
                    .map_err(|e| draw_err(&e))?
                    .label(label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                }
                for (i, s) in chart.series.iter().enumerate() {
                    let color = Palette99::pick(i).to_rgba();
                    let points: Vec<Point> =
                        s.points.iter().copied().filter(|p| visible(p)).collect();
                    let bounded: Vec<(f64, f64, f64)> = points
                        .iter()
                        .filter_map(|p| {
                            let (lo, hi) = p.interval?;
                            (ok_x(lo, chart.log_y) && ok_x(hi, chart.log_y))
                                .then_some((p.x, lo, hi))
                        })
                        .collect();
                    if s.band && bounded.len() >= 2 {
                        let mut outline: Vec<(f64, f64)> =
                            bounded.iter().map(|&(x, lo, _)| (x, lo)).collect();
                        outline.extend(bounded.iter().rev().map(|&(x, _, hi)| (x, hi)));
                        ctx.draw_series(std::iter::once(Polygon::new(
                            outline,
                            color.mix(0.18).filled(),
                        )))
                        .map_err(|e| draw_err(&e))?;
                    } else {
                        ctx.draw_series(bounded.iter().map(|&(x, lo, hi)| {
                            PathElement::new(vec![(x, lo), (x, hi)], color.stroke_width(2))
                        }))
                        .map_err(|e| draw_err(&e))?;
                        for (x, v) in bounded.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]) {
                            ctx.draw_series(std::iter::once(
                                EmptyElement::at((x, v))
                                    + PathElement::new(
                                        vec![(-5, 0), (5, 0)],
                                        color.stroke_width(2),
                                    ),
                            ))
                            .map_err(|e| draw_err(&e))?;
                        }
                    }
                    let xy: Vec<(f64, f64)> = points.iter().map(|p| (p.x, p.y)).collect();
                    ctx.draw_series(LineSeries::new(xy.clone(), color.stroke_width(2)))
                        .map_err(|e| draw_err(&e))?
                        .label(s.label.as_str())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                        });
                    ctx.draw_series(xy.into_iter().map(|p| Circle::new(p, 4, color.filled())))
                        .map_err(|e| draw_err(&e))?;
                }
                ctx.configure_series_labels()
                    .label_font((FONT, 15))
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .position(chart.legend.clone())
                    .draw()
                    .map_err(|e| draw_err(&e))?;
            }};
        }
        match (chart.log_x, chart.log_y) {
            (false, false) => draw!(
                builder
                    .build_cartesian_2d(x0..x1, y0..y1)
                    .map_err(|e| draw_err(&e))?
            ),
            (true, false) => draw!(
                builder
                    .build_cartesian_2d((x0..x1).log_scale().with_key_points(log_ticks), y0..y1)
                    .map_err(|e| draw_err(&e))?
            ),
            (false, true) => draw!(
                builder
                    .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                    .map_err(|e| draw_err(&e))?
            ),
            (true, true) => draw!(
                builder
                    .build_cartesian_2d(
                        (x0..x1).log_scale().with_key_points(log_ticks),
                        (y0..y1).log_scale()
                    )
                    .map_err(|e| draw_err(&e))?
            ),
        }
        root.present().map_err(|e| draw_err(&e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_bands_and_log_axes() {
        let mut chart = LineChart::new("t", "width", "barrier");
        chart.log_x = true;
        chart.references.push((0.5, "threshold".into()));
        chart.series = vec![
            Series {
                label: "bars".into(),
                points: vec![
                    Point::with_interval(0.5, 1.0, 0.8, 1.2),
                    Point::with_interval(4.0, 0.2, 0.1, 0.3),
                    Point::new(f64::NAN, 1.0),
                ],
                band: false,
            },
            Series {
                label: "band".into(),
                points: vec![
                    Point::with_interval(0.5, 0.5, 0.4, 0.6),
                    Point::with_interval(2.0, 0.4, 0.3, 0.5),
                ],
                band: true,
            },
        ];
        let svg = line_chart(&chart).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("polyline") && svg.contains("polygon"));
        for text in ["barrier", "width", "threshold", "bars", "band"] {
            assert!(svg.contains(text), "{text}");
        }
        chart.log_y = true;
        chart.series.push(Series::plain("zeros", [(1.0, 0.0)]));
        assert!(line_chart(&chart).is_ok());
        assert!(line_chart(&LineChart::new("empty", "x", "y")).is_ok());
    }
}
