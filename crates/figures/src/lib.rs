//! Figures for filterlab's outputs and reports, rendered to SVG text (the caller writes the file,
//! atomically): every figure has a title and labelled axes; matrices and filters carry a colour
//! bar with their scale.
//!
//! - [`line_chart`]: lines with optional 95% intervals (error bars or bands), linear or log axes,
//!   and reference lines (thresholds).
//! - [`heatmap`]: a labelled matrix with a colour bar, diverging and symmetric around zero where
//!   signs matter ([`Scale::Symmetric`]); [`cluster_order`] orders rows and columns so that blocks
//!   of similar units sit together.
//! - [`filter_panels`]: grids of small filters, upscaled, side by side under one colour scale
//!   (e.g. run A, run B, run B aligned onto A).
//!
//! Pixel data (matrix cells, filter weights) is embedded in the SVG as a PNG at the size it is
//! shown, so a 256 × 256 matrix stays a small file and every renderer shows sharp cells.

mod colour;
mod embed;
mod grid;
mod line;
mod order;

pub use grid::{FilterPanels, Heatmap, Panel, Scale, filter_panels, heatmap};
pub use line::{LineChart, Point, Series, line_chart};
pub use order::cluster_order;
/// Where a chart's legend goes (plotters' type, re-exported).
pub use plotters::prelude::SeriesLabelPosition;

/// A figure that could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    /// The drawing backend failed.
    #[error("cannot draw the figure '{title}': {message}")]
    Draw {
        /// The figure's title.
        title: String,
        /// What went wrong.
        message: String,
    },
    /// The data cannot be drawn (empty, ragged, not finite).
    #[error("cannot draw the figure '{title}': {message}")]
    Data {
        /// The figure's title.
        title: String,
        /// What is wrong with the data.
        message: String,
    },
}

/// Font family of every text.
const FONT: &str = "sans-serif";

/// Font size of a title `width` pixels wide at most: 22, smaller for long titles (down to 12).
pub(crate) fn title_size(title: &str, width: u32) -> u32 {
    // Sans-serif glyphs average a little over half the font size in width.
    let chars = title.chars().count().max(1) as f64;
    ((f64::from(width) - 24.0) / (0.56 * chars)).clamp(12.0, 22.0) as u32
}

/// `v` for an axis label: few digits, exponent notation for very small or large magnitudes.
pub fn tick(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.0e}");
        return s.replace("e-0", "e-").replace("e0", "e");
    }
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(2.0), "2");
        assert_eq!(tick(1e-4), "1e-4");
        assert_eq!(tick(0.125), "0.125");
        assert_eq!(tick(0.0), "0");
    }

    #[test]
    fn long_titles_shrink() {
        assert_eq!(title_size("short", 900), 22);
        let long = "x".repeat(100);
        assert!(title_size(&long, 900) < 22);
        assert_eq!(title_size(&"x".repeat(1000), 900), 12);
    }
}
