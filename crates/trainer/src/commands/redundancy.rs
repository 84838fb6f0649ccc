//! `trainer redundancy`: filters of a run whose feature maps nearly coincide, and dead filters.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use model::{Classifier, hidden_layer_names, with_model};
use prune::Pruner;
use prune::redundancy::LayerRedundancy;
use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::evaluation::analysis_batches;
use crate::fsio::write_json;
use crate::plot::correlation_heatmap;
use crate::run::{FinishedRun, analysis_dir};

/// Images per batch when collecting activation statistics.
pub(crate) const STATS_BATCH: usize = 200;

/// Options of `trainer redundancy`.
#[derive(Debug, Clone, clap::Args)]
pub struct RedundancyArgs {
    /// The run directory.
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// Dataset directory, or `sample` [default: the run's own data].
    #[arg(long, value_name = "DIR")]
    pub data: Option<String>,
    /// Training images over which feature maps are correlated.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(2..=60_000))]
    pub samples: u64,
    /// |correlation| at or above which two filters are near-duplicates.
    #[arg(long, default_value_t = 0.9)]
    pub threshold: f64,
    /// Analyse the weights after this many optimizer steps (a snapshot the run kept with
    /// `train --snapshot-steps`; 0: the initial weights) instead of the final ones.
    #[arg(long, value_name = "STEP")]
    pub snapshot: Option<usize>,
    /// Layers to analyse, comma-separated [default: every hidden layer].
    #[arg(long, value_name = "L1,L2", value_delimiter = ',')]
    pub layers: Vec<String>,
    /// Where to write redundancy.json and the heatmaps [default: RUN_DIR/redundancy].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Backend [default: the run's].
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// The result of `trainer redundancy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RedundancyReport {
    /// The run.
    run: PathBuf,
    /// Images used.
    samples: usize,
    /// The snapshot analysed (optimizer steps), if not the final weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    snapshot: Option<usize>,
    /// Per layer.
    layers: Vec<LayerRedundancy>,
}

/// `trainer redundancy`.
pub(crate) fn run(args: &RedundancyArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&args.threshold) {
        bail!(
            "--threshold {} is invalid: it must be in [0, 1]",
            args.threshold
        );
    }
    let run = FinishedRun::open(&args.run)?;
    let device = run.device(args.backend)?;
    let data = run.data(args.data.as_deref())?;
    let out = analysis_dir(&args.run, args.out.as_deref(), "redundancy")?;
    let samples = (args.samples as usize).min(data.train.len());
    let layers = with_model!(&run.config.model, &device, |m| {
        let m = match args.snapshot {
            Some(step) => run.load_snapshot(m, step)?,
            None => run.load(m)?,
        };
        let names = if args.layers.is_empty() {
            hidden_layer_names(&m.layers())
        } else {
            args.layers.clone()
        };
        let mut pruner = Pruner::new(&m, &names, run.config.seed)?;
        let batches = analysis_batches(
            &data.train,
            &data.normalization,
            samples,
            STATS_BATCH,
            run.config.seed,
            &device,
        );
        pruner.collect_statistics(&m, batches);
        pruner.redundancy(args.threshold)?
    });
    let name = args.run.file_name().map_or_else(
        || args.run.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let when = match args.snapshot {
        Some(0) => "at initialization".to_string(),
        Some(step) => format!("after {step} steps"),
        None => "trained".to_string(),
    };
    for r in &layers {
        correlation_heatmap(
            &out.join(format!("correlation-{}.svg", r.layer)),
            &format!(
                "{name} ({when}), {}: feature-map correlation between filters",
                r.layer
            ),
            &r.correlation,
        )?;
    }
    let report = RedundancyReport {
        run: args.run.clone(),
        samples,
        snapshot: args.snapshot,
        layers,
    };
    write_json(&out.join("redundancy.json"), &report)?;
    crate::emit(args.json, &report, || render(&report, &out))
}

/// Render a redundancy report.
fn render(r: &RedundancyReport, out: &Path) -> String {
    use std::fmt::Write;
    let mut s = format!(
        "{}: feature maps over {} training images\n\n",
        r.run.display(),
        r.samples
    );
    let _ = writeln!(
        s,
        "{:<8} {:>7} {:>5} {:>10} {:>8} {:>9} {:>9} {:>10}",
        "layer", "filters", "dead", "dup pairs", "clusters", "redundant", "mean|ρ|", "mean cos"
    );
    for l in &r.layers {
        let (cos_mean, _) = prune::filters::off_diagonal_mean_max(&l.weight_cosine);
        let _ = writeln!(
            s,
            "{:<8} {:>7} {:>5} {:>10} {:>8} {:>9} {:>9.3} {:>10.3}",
            l.layer,
            l.filters,
            l.dead.len(),
            l.near_duplicates.len(),
            l.clusters.len(),
            l.redundant,
            l.mean_abs_correlation,
            cos_mean
        );
    }
    for l in &r.layers {
        if l.near_duplicates.is_empty() && l.dead.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\n{} (|ρ| ≥ {}):", l.layer, l.threshold);
        for (i, j, c) in l.near_duplicates.iter().take(10) {
            let _ = writeln!(
                s,
                "  filters {i:>3} and {j:>3}: ρ = {c:+.3}, weight cosine {:+.3}",
                l.weight_cosine[*i][*j]
            );
        }
        if l.near_duplicates.len() > 10 {
            let _ = writeln!(s, "  … {} more pairs", l.near_duplicates.len() - 10);
        }
        if !l.clusters.is_empty() {
            let sizes: Vec<String> = l.clusters.iter().map(|c| c.len().to_string()).collect();
            let _ = writeln!(s, "  cluster sizes: {}", sizes.join(", "));
        }
        if !l.dead.is_empty() {
            let _ = writeln!(s, "  dead filters: {:?}", l.dead);
        }
    }
    let _ = writeln!(
        s,
        "\nwrote {0}/redundancy.json and {0}/correlation-<layer>.svg (ordered by clustering)",
        out.display()
    );
    s
}
