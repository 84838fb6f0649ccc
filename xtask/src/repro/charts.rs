//! The study's own figures, drawn from the [`Aggregates`] (every point with its 95% interval as
//! an error bar or a band) into `figures/`, each written atomically.

use anyhow::{Context, Result};
use figures::{LineChart, Point, Series, SeriesLabelPosition};

use super::aggregate::{Aggregates, SUBSPACE_LAYERS};
use super::layout::Layout;
use super::plan::FOCUS_LAYER;
use super::settings::Settings;
use super::stats::Estimate;
use crate::write_atomic;

/// Every figure of the study, with the caption the report gives it, in report order.
pub mod names {
    /// Loss barriers against width.
    pub const WIDTH_BARRIER: &str = "width-barrier.svg";
    /// Matched fractions against width, per layer.
    pub const WIDTH_MATCHING: &str = "width-matching.svg";
    /// Similarity measures of conv2 against width.
    pub const WIDTH_SIMILARITY: &str = "width-similarity.svg";
    /// Accuracy against width.
    pub const WIDTH_ACCURACY: &str = "width-accuracy.svg";
    /// Many-to-one reconstruction against k.
    pub const RECONSTRUCTION: &str = "subspace-reconstruction.svg";
    /// Mean |ρ| at initialization and after training, per scheme.
    pub const INIT_REDUNDANCY: &str = "init-redundancy.svg";
    /// Accuracy after zeroing conv2, per scheme.
    pub const INIT_PRUNING: &str = "init-pruning.svg";
    /// Prunable fraction against width.
    pub const WIDTH_PRUNABLE: &str = "width-prunable.svg";
    /// Fine-tuned accuracy change against ratio, per width.
    pub const WIDTH_FINETUNED: &str = "width-finetuned.svg";
    /// Effective rank of conv2 along training, per noise scale.
    pub const BREAKING_TRAJECTORY: &str = "breaking-trajectory.svg";
    /// Effective rank after training relative to random, against σ.
    pub const BREAKING_FINAL: &str = "breaking-final.svg";
}

/// A point from an estimate scaled by `k`.
fn point(x: f64, e: &Estimate, k: f64) -> Point {
    let e = e.scaled(k);
    Point::with_interval(x, e.value, e.lo, e.hi)
}

fn series(label: impl Into<String>, points: Vec<Point>, band: bool) -> Series {
    Series {
        label: label.into(),
        points,
        band,
    }
}

/// Draw every figure the aggregates allow into `layout`'s `figures/`.
pub fn draw(layout: &Layout, st: &Settings, a: &Aggregates) -> Result<()> {
    let dir = layout.abs(Layout::figure(""));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let save = |name: &str, chart: &LineChart| -> Result<()> {
        let svg = figures::line_chart(chart)?;
        write_atomic(&layout.abs(Layout::figure(name)), svg.as_bytes())
    };
    let ci = "(95% bootstrap intervals over pairs of seeds)";
    let widths: Vec<_> = a
        .widths
        .iter()
        .filter_map(|w| Some((w.width, w.comparison.as_ref()?)))
        .collect();
    if !widths.is_empty() {
        let mut c = LineChart::new(
            format!("Loss barrier between seeds against width {ci}"),
            "width multiplier of the reference CNN",
            "loss barrier on the straight line",
        );
        c.log_x = true;
        // The naive barrier is high at every width and the aligned ones low: the legend goes
        // between them.
        c.legend = SeriesLabelPosition::MiddleRight;
        c.references
            .push((0.05, "claim 8: 0.05 at the widest".into()));
        for (i, method) in ["naive", "aligned by activations", "aligned by weights"]
            .iter()
            .enumerate()
        {
            c.series.push(series(
                *method,
                widths
                    .iter()
                    .map(|(w, cmp)| point(*w, &cmp.loss_barrier[i], 1.0))
                    .collect(),
                false,
            ));
        }
        save(names::WIDTH_BARRIER, &c)?;

        let mut c = LineChart::new(
            format!("Filters with a partner at ρ ≥ 0.5 in another seed {ci}"),
            "width multiplier",
            "fraction of the layer's filters",
        );
        c.log_x = true;
        c.y_range = Some((0.0, 1.05));
        c.legend = SeriesLabelPosition::LowerRight;
        c.references.push((0.5, "claim 3: half the filters".into()));
        let layers: Vec<String> = widths[0].1.layers.iter().map(|l| l.layer.clone()).collect();
        for name in &layers {
            c.series.push(series(
                name.as_str(),
                widths
                    .iter()
                    .filter_map(|(w, cmp)| Some(point(*w, &cmp.layer(name)?.matched_0_5, 1.0)))
                    .collect(),
                false,
            ));
        }
        save(names::WIDTH_MATCHING, &c)?;

        let mut c = LineChart::new(
            format!("{FOCUS_LAYER} of two seeds: one-to-one versus subspace similarity {ci}"),
            "width multiplier",
            "similarity",
        );
        c.log_x = true;
        c.y_range = Some((0.0, 1.05));
        c.legend = SeriesLabelPosition::LowerRight;
        type Pick = fn(&super::aggregate::LayerAggregate) -> Estimate;
        let measures: [(&str, Pick); 6] = [
            ("matched at ρ ≥ 0.5 (fraction)", |l| l.matched_0_5),
            ("mean matched ρ", |l| l.matched_rho),
            ("linear CKA", |l| l.cka),
            ("SVCCA", |l| l.svcca),
            ("PWCCA", |l| l.pwcca),
            ("R², all of B's maps", |l| l.reconstruction_all),
        ];
        for (label, pick) in measures {
            c.series.push(series(
                label,
                widths
                    .iter()
                    .filter_map(|(w, cmp)| Some(point(*w, &pick(cmp.layer(FOCUS_LAYER)?), 1.0)))
                    .collect(),
                false,
            ));
        }
        save(names::WIDTH_SIMILARITY, &c)?;

        let mut c = LineChart::new(
            "Test accuracy against width (95% intervals over seeds)",
            "width multiplier",
            "test accuracy (%)",
        );
        c.log_x = true;
        c.legend = SeriesLabelPosition::LowerRight;
        c.series.push(series(
            "mean over seeds",
            widths
                .iter()
                .map(|(w, cmp)| point(*w, &cmp.accuracy, 100.0))
                .collect(),
            false,
        ));
        save(names::WIDTH_ACCURACY, &c)?;
    }
    if a.widths.iter().any(|w| w.prunable.is_measured()) {
        let mut c = LineChart::new(
            format!(
                "Fraction of {FOCUS_LAYER} removable at ≤ 1 point accuracy loss (95% intervals over seeds)"
            ),
            "width multiplier",
            "fraction of its filters zeroed, then fine-tuned",
        );
        c.log_x = true;
        c.y_range = Some((0.0, 1.0));
        c.series.push(series(
            "redundancy criterion",
            a.widths
                .iter()
                .map(|w| point(w.width, &w.prunable, 1.0))
                .collect(),
            false,
        ));
        save(names::WIDTH_PRUNABLE, &c)?;
        let mut c = LineChart::new(
            format!(
                "Accuracy change after zeroing {FOCUS_LAYER} and fine-tuning (95% intervals over seeds, at the ratios every seed measured)"
            ),
            "fraction of the layer's filters zeroed",
            "test accuracy minus the unpruned one (points)",
        );
        c.legend = SeriesLabelPosition::LowerLeft;
        c.references.push((
            -100.0 * super::aggregate::PRUNE_TOLERANCE,
            "−1 point".into(),
        ));
        for w in &a.widths {
            c.series.push(series(
                format!("×{} ({} filters)", w.width, w.conv2_filters),
                w.finetuned_change
                    .iter()
                    .map(|(q, e)| point(*q, e, 100.0))
                    .collect(),
                false,
            ));
        }
        save(names::WIDTH_FINETUNED, &c)?;
    }
    if let Some(agg) = &a.reference {
        let mut c = LineChart::new(
            format!("Reconstructing one seed's feature maps from k of another's {ci}"),
            "k: maps of the other network used (greedy forward selection; last point: all)",
            "mean R² (least squares on activations)",
        );
        c.log_x = true;
        c.y_range = Some((0.0, 1.05));
        c.legend = SeriesLabelPosition::LowerRight;
        for name in SUBSPACE_LAYERS {
            let Some(l) = agg.layer(name) else { continue };
            let mut pts: Vec<Point> = l
                .reconstruction
                .iter()
                .map(|(k, e)| point(*k as f64, e, 1.0))
                .collect();
            if pts.last().map(|p| p.x as usize) != Some(l.filters) {
                pts.push(point(l.filters as f64, &l.reconstruction_all, 1.0));
            }
            c.series
                .push(series(format!("{name} ({} maps)", l.filters), pts, true));
        }
        save(names::RECONSTRUCTION, &c)?;
    }
    if a.schemes
        .iter()
        .any(|s| s.trained.mean_abs_rho.is_measured())
    {
        let mut c = LineChart::new(
            format!(
                "{FOCUS_LAYER}: mean |ρ| between filters' feature maps (95% intervals over seeds)"
            ),
            "0 = at initialization, 1 = after training",
            "mean |ρ| over pairs of live filters",
        );
        c.legend = SeriesLabelPosition::UpperLeft;
        for s in &a.schemes {
            c.series.push(series(
                s.init.as_str(),
                vec![
                    point(0.0, &s.at_init.mean_abs_rho, 1.0),
                    point(1.0, &s.trained.mean_abs_rho, 1.0),
                ],
                false,
            ));
        }
        save(names::INIT_REDUNDANCY, &c)?;
        let mut c = LineChart::new(
            format!(
                "Accuracy after zeroing {FOCUS_LAYER} by redundancy, no fine-tuning (95% intervals over seeds)"
            ),
            "fraction of the layer's filters zeroed",
            "test accuracy (%)",
        );
        c.legend = SeriesLabelPosition::LowerLeft;
        for s in &a.schemes {
            let mut pts = vec![point(0.0, &s.accuracy, 100.0)];
            pts.extend(s.pruned.iter().map(|(q, e)| point(*q, e, 100.0)));
            c.series.push(series(s.init.as_str(), pts, false));
        }
        save(names::INIT_PRUNING, &c)?;
    }
    if !a.breaking.is_empty() {
        let label = |s: Option<f64>| {
            s.map_or("random init (burn-default)".to_string(), |s| {
                format!("constant(0.01) + noise({s:e})")
            })
        };
        let mut c = LineChart::new(
            format!(
                "{FOCUS_LAYER}: effective rank of the filters during training (bands: 95% over seeds)"
            ),
            "optimizer steps + 1",
            "effective rank of the filter matrix",
        );
        c.log_x = true;
        c.log_y = true;
        c.legend = SeriesLabelPosition::LowerRight;
        for b in &a.breaking {
            c.series.push(series(
                label(b.sigma),
                b.trajectory
                    .iter()
                    .map(|(step, e)| point(*step as f64 + 1.0, e, 1.0))
                    .collect(),
                true,
            ));
        }
        save(names::BREAKING_TRAJECTORY, &c)?;
        let mut c = LineChart::new(
            format!(
                "{FOCUS_LAYER} after {} epoch(s): effective rank relative to a random init (95% over seeds)",
                st.breaking_training.epochs
            ),
            "σ of constant(0.01) + noise(σ)",
            "effective rank / random init's (same seed)",
        );
        c.log_x = true;
        c.legend = SeriesLabelPosition::LowerRight;
        c.references.push((0.5, "claim 12: half of random".into()));
        c.references.push((0.9, "90% of random".into()));
        c.series.push(series(
            "relative effective rank",
            a.breaking
                .iter()
                .filter_map(|b| Some(point(b.sigma?, &b.relative_rank, 1.0)))
                .collect(),
            false,
        ));
        save(names::BREAKING_FINAL, &c)?;
    }
    Ok(())
}
