//! Pixel figures with labels: heatmaps of matrices, and panels of filter grids, each with a
//! colour bar.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::colour::{diverging, sequential};
use crate::embed::{Pixels, insert_images};
use crate::{FONT, FigureError, tick};

/// How values map to colours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// Diverging blue–white–red, symmetric around zero: `−m` blue, `0` white, `+m` red.
    Symmetric(f64),
    /// Sequential (viridis) from `lo` to `hi`.
    Range(f64, f64),
}

impl Scale {
    /// `Symmetric(max |v|)` over `values` (1 if all are zero or not finite).
    pub fn symmetric_for<'a>(values: impl IntoIterator<Item = &'a f64>) -> Scale {
        let m = values
            .into_iter()
            .filter(|v| v.is_finite())
            .fold(0.0f64, |m, v| m.max(v.abs()));
        Scale::Symmetric(if m > 0.0 { m } else { 1.0 })
    }

    fn colour(&self, v: f64) -> [u8; 3] {
        match *self {
            Scale::Symmetric(m) => diverging(v / m),
            Scale::Range(lo, hi) => sequential((v - lo) / (hi - lo)),
        }
    }

    fn range(&self) -> (f64, f64) {
        match *self {
            Scale::Symmetric(m) => (-m, m),
            Scale::Range(lo, hi) => (lo, hi),
        }
    }

    fn valid(&self) -> bool {
        let (lo, hi) = self.range();
        lo.is_finite() && hi.is_finite() && hi > lo
    }
}

/// A matrix as a heatmap.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    /// Title.
    pub title: String,
    /// What the columns are.
    pub x_label: String,
    /// What the rows are.
    pub y_label: String,
    /// One tick label per row (row 0 at the top).
    pub row_labels: Vec<String>,
    /// One tick label per column.
    pub col_labels: Vec<String>,
    /// The values, by row.
    pub values: Vec<Vec<f64>>,
    /// Colours.
    pub scale: Scale,
    /// What the colour bar measures.
    pub colour_label: String,
    /// Print each value in its cell (small matrices).
    pub annotate: bool,
}

/// Tick labels at most per axis of a heatmap (all of them for smaller matrices).
const MAX_TICKS: usize = 20;

/// An image over a plotting area's pixel `range`, placed at its top left: pixel `(x, y)` of the
/// `width × height` area gets `colour(x, y, width, height)`.
fn area_image(
    (xr, yr): (std::ops::Range<i32>, std::ops::Range<i32>),
    colour: impl Fn(usize, usize, usize, usize) -> [u8; 3],
) -> (i32, i32, Pixels) {
    let (w, h) = (
        (xr.end - xr.start).max(1) as usize,
        (yr.end - yr.start).max(1) as usize,
    );
    let mut px = Pixels::new(w, h, [255, 255, 255]);
    for y in 0..h {
        for x in 0..w {
            px.set(x, y, colour(x, y, w, h));
        }
    }
    (xr.start, yr.start, px)
}

/// A vertical colour bar for `scale` in `area`, aligned with a plot `top..bottom` pixels high.
fn colour_bar(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    scale: Scale,
    label: &str,
    top: u32,
    bottom: u32,
    images: &mut Vec<(i32, i32, Pixels)>,
    err: &dyn Fn(&dyn std::fmt::Display) -> FigureError,
) -> Result<(), FigureError> {
    let (lo, hi) = scale.range();
    let mut bar = ChartBuilder::on(area)
        .margin_top(top)
        .margin_bottom(bottom)
        .margin_left(6)
        .margin_right(4)
        .right_y_label_area_size(86)
        .build_cartesian_2d(0.0..1.0, lo..hi)
        .map_err(|e| err(&e))?;
    bar.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc(label)
        .y_labels(7)
        // Ticks that are zero up to rounding read as 0, not as 1e-17.
        .y_label_formatter(&|v: &f64| tick(if v.abs() < 1e-9 * (hi - lo) { 0.0 } else { *v }))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(|e| err(&e))?;
    images.push(area_image(
        bar.plotting_area().get_pixel_range(),
        |_, y, _, h| scale.colour(hi - (hi - lo) * (y as f64 + 0.5) / h as f64),
    ));
    Ok(())
}

/// Draw `h` as an SVG document.
pub fn heatmap(h: &Heatmap) -> Result<String, FigureError> {
    let err = |e: &dyn std::fmt::Display| FigureError::Draw {
        title: h.title.clone(),
        message: e.to_string(),
    };
    let rows = h.values.len();
    let cols = h.values.first().map_or(0, Vec::len);
    if rows == 0 || cols == 0 || h.values.iter().any(|r| r.len() != cols) || !h.scale.valid() {
        return Err(FigureError::Data {
            title: h.title.clone(),
            message: format!(
                "a heatmap needs a non-empty rectangular matrix and a valid scale ({rows} rows, \
                 scale {:?})",
                h.scale
            ),
        });
    }
    let label =
        |labels: &[String], i: usize| labels.get(i).cloned().unwrap_or_else(|| i.to_string());
    let (width, height) = (860u32, 760u32);
    let mut svg = String::new();
    let mut images = Vec::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        let (left, right) = root.split_horizontally(width - 150);
        let mut chart = ChartBuilder::on(&left)
            .caption(&h.title, (FONT, crate::title_size(&h.title, width - 150)))
            .margin(14)
            .x_label_area_size(64)
            .y_label_area_size(90)
            // An integer range is inclusive in plotters: 0..n-1 has n segments.
            .build_cartesian_2d(
                (0..cols as i32 - 1).into_segmented(),
                (0..rows as i32 - 1).into_segmented(),
            )
            .map_err(|e| err(&e))?;
        let seg = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => Some(*i as usize),
            SegmentValue::Last => None,
        };
        let x_fmt = |v: &SegmentValue<i32>| match seg(v) {
            Some(i) if i < cols => label(&h.col_labels, i),
            _ => String::new(),
        };
        // Row 0 at the top: plotters' y grows upwards.
        let y_fmt = |v: &SegmentValue<i32>| match seg(v) {
            Some(i) if i < rows => label(&h.row_labels, rows - 1 - i),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(h.x_label.as_str())
            .y_desc(h.y_label.as_str())
            .x_labels(cols.min(MAX_TICKS))
            .y_labels(rows.min(MAX_TICKS))
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 17))
            .draw()
            .map_err(|e| err(&e))?;
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        images.push(area_image((xr, yr.clone()), |x, y, pw, ph| {
            let (r, c) = ((y * rows / ph).min(rows - 1), (x * cols / pw).min(cols - 1));
            h.scale.colour(h.values[r][c])
        }));
        if h.annotate {
            let style = TextStyle::from((FONT, 15).into_font())
                .pos(Pos::new(HPos::Center, VPos::Center))
                .color(&BLACK);
            for (r, row) in h.values.iter().enumerate() {
                for (c, v) in row.iter().enumerate() {
                    let at = (
                        SegmentValue::CenterOf(c as i32),
                        SegmentValue::CenterOf((rows - 1 - r) as i32),
                    );
                    chart
                        .draw_series(std::iter::once(Text::new(
                            format!("{v:.2}"),
                            at,
                            style.clone(),
                        )))
                        .map_err(|e| err(&e))?;
                }
            }
        }
        let top = (yr.start - root.get_pixel_range().1.start).max(0) as u32;
        let bottom = (height as i32 - yr.end).max(0) as u32;
        colour_bar(
            &right,
            h.scale,
            &h.colour_label,
            top,
            bottom,
            &mut images,
            &err,
        )?;
        root.present().map_err(|e| err(&e))?;
    }
    insert_images(&mut svg, &images).map_err(|e| err(&e))?;
    Ok(svg)
}

/// One grid of filters in a [`FilterPanels`] figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Caption above the grid.
    pub label: String,
    /// One tile per filter, `kh · kw` values, row-major.
    pub tiles: Vec<Vec<f32>>,
}

/// Grids of filters side by side under one colour scale.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPanels {
    /// Title.
    pub title: String,
    /// Tile size `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Tiles per row.
    pub cols: usize,
    /// The grids.
    pub panels: Vec<Panel>,
    /// What the colour bar measures.
    pub colour_label: String,
}

/// Draw `f` as an SVG document: every weight a square of pixels on a diverging scale symmetric
/// around zero, shared by all panels; the first filter index of each row at its left.
pub fn filter_panels(f: &FilterPanels) -> Result<String, FigureError> {
    let err = |e: &dyn std::fmt::Display| FigureError::Draw {
        title: f.title.clone(),
        message: e.to_string(),
    };
    let [kh, kw] = f.kernel;
    let n = f.panels.iter().map(|p| p.tiles.len()).max().unwrap_or(0);
    if kh == 0
        || kw == 0
        || n == 0
        || f.panels
            .iter()
            .flat_map(|p| &p.tiles)
            .any(|t| t.len() != kh * kw)
    {
        return Err(FigureError::Data {
            title: f.title.clone(),
            message: format!("filter panels need tiles of {kh}×{kw} values"),
        });
    }
    let scale = Scale::symmetric_for(
        &f.panels
            .iter()
            .flat_map(|p| p.tiles.iter().flatten())
            .map(|&v| v as f64)
            .collect::<Vec<f64>>(),
    );
    let cols = f.cols.clamp(1, n);
    let rows = n.div_ceil(cols);
    let s = (360 / (cols * kw)).clamp(4, 24);
    let gap = 5usize;
    let (tw, th) = (kw * s + gap, kh * s + gap);
    let (gw, gh) = (cols * tw + gap, rows * th + gap);
    let margin_left = 34usize;
    let panel_w = (gw + margin_left + 20).max(220);
    let top = 84usize;
    let width = (f.panels.len() * panel_w + 160) as u32;
    let height = (top + gh + 30).max(260) as u32;
    let mut svg = String::new();
    let mut images = Vec::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        let title = TextStyle::from((FONT, crate::title_size(&f.title, width)).into_font())
            .pos(Pos::new(HPos::Center, VPos::Top));
        root.draw_text(&f.title, &title, ((width / 2) as i32, 10))
            .map_err(|e| err(&e))?;
        let caption =
            TextStyle::from((FONT, 17).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
        let index = TextStyle::from((FONT, 12).into_font())
            .pos(Pos::new(HPos::Right, VPos::Center))
            .color(&RGBColor(80, 80, 80));
        for (k, p) in f.panels.iter().enumerate() {
            let x0 = k * panel_w + margin_left;
            root.draw_text(&p.label, &caption, ((x0 + gw / 2) as i32, (top - 8) as i32))
                .map_err(|e| err(&e))?;
            let mut px = Pixels::new(gw, gh, [110, 110, 110]);
            for (t, tile) in p.tiles.iter().enumerate() {
                let (ox, oy) = (gap + (t % cols) * tw, gap + (t / cols) * th);
                for y in 0..kh * s {
                    for x in 0..kw * s {
                        let v = tile[(y / s) * kw + x / s] as f64;
                        px.set(ox + x, oy + y, scale.colour(v));
                    }
                }
            }
            for r in 0..rows {
                root.draw_text(
                    &(r * cols).to_string(),
                    &index,
                    ((x0 - 4) as i32, (top + gap + r * th + (kh * s) / 2) as i32),
                )
                .map_err(|e| err(&e))?;
            }
            images.push((x0 as i32, top as i32, px));
        }
        let (_, right) = root.split_horizontally(width - 150);
        colour_bar(
            &right,
            scale,
            &f.colour_label,
            top as u32,
            height - (top + gh) as u32,
            &mut images,
            &err,
        )?;
        root.present().map_err(|e| err(&e))?;
    }
    insert_images(&mut svg, &images).map_err(|e| err(&e))?;
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heatmaps_have_titles_labels_and_a_colour_bar() {
        let h = Heatmap {
            title: "CKA".into(),
            x_label: "layer of B".into(),
            y_label: "layer of A".into(),
            row_labels: vec!["conv1".into(), "fc1".into()],
            col_labels: vec!["conv1".into(), "fc1".into()],
            values: vec![vec![1.0, 0.3], vec![0.2, 0.9]],
            scale: Scale::Range(0.0, 1.0),
            colour_label: "linear CKA".into(),
            annotate: true,
        };
        let svg = heatmap(&h).unwrap();
        for text in [
            "CKA",
            "layer of B",
            "layer of A",
            "conv1",
            "linear CKA",
            "0.30",
        ] {
            assert!(svg.contains(text), "{text}");
        }
        assert_eq!(
            svg.matches("<image").count(),
            2,
            "the matrix and the colour bar"
        );
        let bad = Heatmap {
            values: vec![vec![1.0], vec![]],
            ..h.clone()
        };
        assert!(heatmap(&bad).is_err());
        let flat = Heatmap {
            scale: Scale::Range(1.0, 1.0),
            ..h
        };
        assert!(heatmap(&flat).is_err());
        assert_eq!(
            Scale::symmetric_for(&[0.5, -2.0, f64::NAN]),
            Scale::Symmetric(2.0)
        );
        assert_eq!(Scale::symmetric_for(&[]), Scale::Symmetric(1.0));
    }

    #[test]
    fn filter_panels_share_one_scale() {
        let a = Panel {
            label: "A".into(),
            tiles: vec![vec![1.0, -1.0, 0.0, 0.5]; 5],
        };
        let b = Panel {
            label: "B aligned".into(),
            tiles: vec![vec![0.1; 4]; 5],
        };
        let f = FilterPanels {
            title: "first-layer filters".into(),
            kernel: [2, 2],
            cols: 4,
            panels: vec![a, b],
            colour_label: "weight".into(),
        };
        let svg = filter_panels(&f).unwrap();
        assert!(svg.contains("B aligned") && svg.contains("first-layer filters"));
        assert_eq!(svg.matches("<image").count(), 3);
        let mut bad = f.clone();
        bad.kernel = [3, 3];
        assert!(filter_panels(&bad).is_err());
    }
}
