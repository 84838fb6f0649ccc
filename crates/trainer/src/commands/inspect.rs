//! `trainer inspect`: what the filters of a trained run look like, and how many are distinct.

use std::path::PathBuf;

use anyhow::{Result, bail};
use model::{Classifier, with_model};
use params::HostParams;
use prune::filters::LayerInspection;
use serde::{Deserialize, Serialize};

use crate::fsio::write_json;
use crate::plot::{Chart, Series, filter_panels, line_chart};
use crate::run::{FinishedRun, analysis_dir};
use plotters::prelude::SeriesLabelPosition;

/// Options of `trainer inspect`.
#[derive(Debug, Clone, clap::Args)]
pub struct InspectArgs {
    /// The run directory.
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// Two filters (weights and bias) count as the same if they differ by at most this
    /// fraction of their largest absolute value.
    #[arg(long, default_value_t = 1e-5)]
    pub tolerance: f64,
    /// Where to write inspect.json and the figures [default: RUN_DIR/inspect].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The result of `trainer inspect`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Inspection {
    /// The run.
    run: PathBuf,
    /// Its initialization spec.
    init: String,
    /// Tolerance used for distinct filters.
    tolerance: f64,
    /// Per layer.
    layers: Vec<LayerInspection>,
    /// The same for every snapshot the run kept (`train --snapshot-steps`), by step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    snapshots: Vec<SnapshotInspection>,
    /// The figure of the first layer's filters.
    filter_image: PathBuf,
}

/// The filters after some optimizer steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnapshotInspection {
    /// Optimizer steps taken (0: the initial weights).
    step: usize,
    /// Per layer.
    layers: Vec<LayerInspection>,
}

/// `trainer inspect`.
pub(crate) fn run(args: &InspectArgs) -> Result<()> {
    if !(args.tolerance.is_finite() && args.tolerance >= 0.0) {
        bail!("--tolerance {} is invalid: it must be ≥ 0", args.tolerance);
    }
    let run = FinishedRun::open(&args.run)?;
    let device = run.device(None)?;
    let out = analysis_dir(&args.run, args.out.as_deref(), "inspect")?;
    let filter_image = out.join("filters-first-layer.svg");
    let name = args.run.file_name().map_or_else(
        || args.run.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (layers, snapshots) = with_model!(&run.config.model, &device, |m| {
        let fresh = m.clone();
        let m = run.load(m)?;
        let table = m.layers();
        let params = HostParams::read(&m);
        if let Some(first) = table.first() {
            let tiles = first.kernel_tiles(params.values(&first.weight_path())?);
            filter_panels(
                &filter_image,
                &format!(
                    "{} filters of {name} (init {})",
                    first.name, run.config.init.spec
                ),
                first.kernel,
                vec![(format!("{} filters, index at the left", tiles.len()), tiles)],
            )?;
        }
        let mut snapshots = Vec::new();
        for &step in &run.config.snapshot_steps {
            let s = run.load_snapshot(fresh.clone(), step)?;
            snapshots.push(SnapshotInspection {
                step,
                layers: prune::filters::inspect(&table, &HostParams::read(&s), args.tolerance)?,
            });
        }
        (
            prune::filters::inspect(&table, &params, args.tolerance)?,
            snapshots,
        )
    });
    let inspection = Inspection {
        run: args.run.clone(),
        init: run.config.init.spec.clone(),
        tolerance: args.tolerance,
        layers,
        snapshots,
        filter_image,
    };
    if !inspection.snapshots.is_empty() {
        let series: Vec<Series> = inspection
            .layers
            .iter()
            .filter(|l| l.hidden)
            .map(|l| Series {
                label: format!("{} ({} filters)", l.layer, l.filters),
                points: inspection
                    .snapshots
                    .iter()
                    .filter_map(|s| {
                        let x = s.layers.iter().find(|x| x.layer == l.layer)?;
                        Some((s.step as f64, x.effective_rank))
                    })
                    .collect(),
            })
            .collect();
        line_chart(
            &out.join("effective-rank.svg"),
            &Chart {
                title: &format!("effective rank of each layer's filters during training: {name}"),
                x_label: "optimizer steps",
                y_label: "effective rank of the filter matrix",
                log_y: true,
                legend: SeriesLabelPosition::LowerRight,
            },
            &series,
        )?;
    }
    write_json(&out.join("inspect.json"), &inspection)?;
    crate::emit(args.json, &inspection, || render(&inspection))
}

/// Render as a table.
fn render(i: &Inspection) -> String {
    use std::fmt::Write;
    let mut s = format!(
        "{} (init {}), filters equal within {:e} (relative)\n\n",
        i.run.display(),
        i.init,
        i.tolerance
    );
    let _ = writeln!(
        s,
        "{:<9} {:>7} {:>9} {:>8} {:>7} {:>9} {:>9} {:>10} {:>10} {:>10}",
        "layer",
        "filters",
        "distinct",
        "groups",
        "erank",
        "mean cos",
        "max cos",
        "w mean",
        "w std",
        "‖filter‖"
    );
    for l in &i.layers {
        let _ = writeln!(
            s,
            "{:<9} {:>7} {:>9} {:>8} {:>7.2} {:>9.4} {:>9.4} {:>10.3e} {:>10.3e} {:>10.3e}",
            l.layer,
            l.filters,
            l.distinct_filters,
            l.cosine_groups,
            l.effective_rank,
            l.mean_pairwise_cosine,
            l.max_pairwise_cosine,
            l.weight_mean,
            l.weight_std,
            l.mean_filter_norm
        );
    }
    let _ = writeln!(
        s,
        "\ngroups: filters linked by cosine ≥ {}; erank: effective rank of the filter matrix",
        prune::filters::GROUP_COSINE
    );
    for snap in &i.snapshots {
        let layers: Vec<String> = snap
            .layers
            .iter()
            .map(|l| format!("{} {:.2}", l.layer, l.effective_rank))
            .collect();
        let _ = writeln!(s, "  step {:>6}: erank {}", snap.step, layers.join(", "));
    }
    let _ = writeln!(s, "\nfirst-layer filters: {}", i.filter_image.display());
    s
}
