//! Figures: drawn by the `figures` crate as SVG, written atomically.

use std::path::Path;

use anyhow::Result;
use figures::{FilterPanels, Heatmap, LineChart, Panel, Scale};
use plotters::prelude::SeriesLabelPosition;

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

/// Write a rendered figure to `path`, atomically.
pub fn save(path: &Path, svg: Result<String, figures::FigureError>) -> Result<()> {
    write_atomic(path, svg?.as_bytes())
}

/// Draw `series` as an SVG line chart at `path`.
pub fn line_chart(path: &Path, chart: &Chart, series: &[Series]) -> Result<()> {
    let mut c = LineChart::new(chart.title, chart.x_label, chart.y_label);
    c.log_y = chart.log_y;
    c.legend = chart.legend.clone();
    c.series = series
        .iter()
        .map(|s| figures::Series::plain(s.label.clone(), s.points.iter().copied()))
        .collect();
    save(path, figures::line_chart(&c))
}

/// Draw grids of filter tiles (`kernel`-sized, as [`model::LayerInfo::kernel_tiles`] makes
/// them), one panel per `(caption, tiles)`, side by side under one colour scale, 8 per row.
pub fn filter_panels(
    path: &Path,
    title: &str,
    kernel: [usize; 2],
    panels: Vec<(String, Vec<Vec<f32>>)>,
) -> Result<()> {
    let f = FilterPanels {
        title: title.to_string(),
        kernel,
        cols: 8,
        panels: panels
            .into_iter()
            .map(|(label, tiles)| Panel { label, tiles })
            .collect(),
        colour_label: "weight (mean over input channels)".into(),
    };
    save(path, figures::filter_panels(&f))
}

/// Draw a correlation matrix of a layer's filters as a heatmap, rows and columns ordered by a
/// hierarchical clustering so that groups of near-duplicates show as blocks; ticks name the
/// filters' indices.
pub fn correlation_heatmap(path: &Path, title: &str, corr: &[Vec<f64>]) -> Result<()> {
    let order = figures::cluster_order(corr);
    let labels: Vec<String> = order.iter().map(|i| i.to_string()).collect();
    let h = Heatmap {
        title: title.to_string(),
        x_label: "filter (ordered by clustering)".into(),
        y_label: "filter (ordered by clustering)".into(),
        row_labels: labels.clone(),
        col_labels: labels,
        values: order
            .iter()
            .map(|&i| order.iter().map(|&j| corr[i][j]).collect())
            .collect(),
        scale: Scale::Symmetric(1.0),
        colour_label: "Pearson correlation of feature maps".into(),
        annotate: false,
    };
    save(path, figures::heatmap(&h))
}

/// Draw a layer-by-layer similarity matrix (e.g. CKA, in [0, 1]) with its values printed.
pub fn layer_heatmap(
    path: &Path,
    title: &str,
    (rows_of, cols_of): (&str, &str),
    names: &[String],
    matrix: &[Vec<f64>],
    colour_label: &str,
) -> Result<()> {
    let h = Heatmap {
        title: title.to_string(),
        x_label: format!("layer of {cols_of}"),
        y_label: format!("layer of {rows_of}"),
        row_labels: names.to_vec(),
        col_labels: names.to_vec(),
        values: matrix.to_vec(),
        scale: Scale::Range(0.0, 1.0),
        colour_label: colour_label.to_string(),
        annotate: true,
    };
    save(path, figures::heatmap(&h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_written() {
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
        let heat = dir.path().join("h.svg");
        correlation_heatmap(&heat, "corr", &[vec![1.0, -0.5], vec![-0.5, 1.0]]).unwrap();
        assert!(std::fs::read_to_string(&heat).unwrap().contains("corr"));
        let tiles = dir.path().join("f.svg");
        filter_panels(
            &tiles,
            "filters",
            [2, 2],
            vec![("A".into(), vec![vec![1.0, -1.0, 0.0, 0.5]; 3])],
        )
        .unwrap();
        assert!(filter_panels(&tiles, "bad", [3, 3], vec![("A".into(), vec![vec![1.0]])]).is_err());
        // Nothing but the figures: no temporary files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }
}
