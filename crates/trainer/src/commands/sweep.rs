//! `trainer prune-sweep`: test accuracy against the pruning ratio for several criteria.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use model::with_model;
use plotters::prelude::SeriesLabelPosition;
use prune::{Criterion, Scope};
use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::commands::prune::{
    Child, Parent, PruneArgs, Pruned, finished_child, prune_settings, samples, scope, scope_name,
    write_child,
};
use crate::fsio::{write_atomic, write_json};
use crate::plot::{Chart, Series, line_chart};
use crate::run::analysis_dir;

/// Options of `trainer prune-sweep`.
#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    /// The trained run.
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// Criteria, comma-separated [default: all seven].
    #[arg(long, value_delimiter = ',')]
    pub criteria: Vec<Criterion>,
    /// Pruning ratios, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.3,0.5,0.7")]
    pub ratios: Vec<f64>,
    /// Layers to prune, comma-separated [default: every conv layer].
    #[arg(long, value_name = "L1,L2", value_delimiter = ',')]
    pub layers: Vec<String>,
    /// Rank filters over all selected layers together.
    #[arg(long)]
    pub global: bool,
    /// Also fine-tune each pruned model for this many epochs (slow; writes a run per point to
    /// OUT/runs/CRITERION-RATIO, and reuses a run finished there with the same settings, so an
    /// interrupted sweep resumes and `cargo xtask sweep` can fine-tune the points as separate
    /// jobs).
    #[arg(long, default_value_t = 0)]
    pub finetune_epochs: usize,
    /// Training images for the activation statistics of the data-dependent criteria
    /// (redundancy, mean-activation, apoz) [default: 1000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..=60_000))]
    pub samples: Option<u64>,
    /// Where to write sweep.json and accuracy-vs-ratio.svg [default: RUN_DIR/prune-sweep].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Dataset directory, or `sample` [default: the run's own data].
    #[arg(long, value_name = "DIR")]
    pub data: Option<String>,
    /// Backend [default: the run's].
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One point of the sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SweepPoint {
    /// Criterion.
    pub criterion: Criterion,
    /// Ratio.
    pub ratio: f64,
    /// Accuracy after zeroing.
    pub accuracy: f64,
    /// Accuracy after fine-tuning, if done.
    pub finetuned_accuracy: Option<f64>,
    /// Parameters removed.
    pub params_removed: usize,
    /// FLOPs per image removed.
    pub flops_removed: f64,
}

/// The whole sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SweepReport {
    /// The run.
    pub run: PathBuf,
    /// Layers pruned.
    pub layers: Vec<String>,
    /// Per layer or global.
    pub scope: Scope,
    /// Accuracy of the unpruned model.
    pub baseline_accuracy: f64,
    /// Fine-tuning epochs per point.
    pub finetune_epochs: usize,
    /// Every point.
    pub points: Vec<SweepPoint>,
}

/// `trainer prune-sweep`.
pub(crate) fn run(args: &SweepArgs) -> Result<()> {
    let out = analysis_dir(&args.run, args.out.as_deref(), "prune-sweep")?;
    let report = sweep(args, &out)?;
    let table = render(&report);
    write_atomic(&out.join("sweep.txt"), table.as_bytes())?;
    crate::emit(args.json, &report, || {
        format!(
            "{table}\nwrote {0}/sweep.json, {0}/sweep.txt and {0}/accuracy-vs-ratio.svg\n",
            out.display()
        )
    })
}

/// Run the sweep, writing `sweep.json`, the figure and (with fine-tuning) a run per point to
/// `out`; a point whose run there is already finished with the same settings is reused.
fn sweep(args: &SweepArgs, out: &Path) -> Result<SweepReport> {
    for &r in &args.ratios {
        if !(0.0..1.0).contains(&r) {
            bail!("--ratios: {r} is outside [0, 1)");
        }
    }
    let criteria: Vec<Criterion> = if args.criteria.is_empty() {
        Criterion::ALL.to_vec()
    } else {
        args.criteria.clone()
    };
    let parent = Parent::open(&args.run, args.data.as_deref(), args.backend)?;
    let scope = scope(args.global);
    let needs_stats = criteria.iter().any(|c| c.needs_activations());
    if args.samples.is_some() && !needs_stats {
        bail!(
            "--samples applies to the data-dependent criteria (redundancy, mean-activation, \
             apoz), and none of them is swept"
        );
    }
    let samples = samples(args.samples, &parent);
    let (layers, baseline, points) = with_model!(&parent.run.config.model, &parent.device, |m| {
        let m = parent.run.load(m)?;
        let pruner = parent.pruner(&m, &args.layers, samples, needs_stats)?;
        let baseline = parent.evaluate(&m)?;
        let mut points = Vec::new();
        for &c in &criteria {
            for &ratio in &args.ratios {
                let pruning = pruner.prune(c, ratio, scope)?;
                let masked = pruning.apply(m.clone())?;
                let after = parent.evaluate(&masked)?;
                let accuracy = after.accuracy;
                let (params_removed, flops_removed) =
                    (pruning.effect.params_removed, pruning.effect.flops_removed);
                let finetuned_accuracy = if args.finetune_epochs > 0 {
                    // The child run `trainer prune` would write for this point, from what the
                    // sweep has already computed; or that run, finished earlier.
                    let prune_args = PruneArgs {
                        run: args.run.clone(),
                        criterion: c,
                        ratio,
                        global: args.global,
                        layers: pruner.layers().to_vec(),
                        finetune_epochs: args.finetune_epochs,
                        lr: None,
                        lr_schedule: None,
                        samples: c.needs_activations().then_some(samples as u64),
                        compact: false,
                        out: out.join("runs").join(format!("{c}-{ratio}")),
                        force: true,
                        data: args.data.clone(),
                        backend: args.backend,
                        quiet: true,
                        dashboard: false,
                    };
                    let settings = prune_settings(&prune_args, &pruner, samples, scope);
                    if let Some(done) = finished_child(&parent, &prune_args, &settings) {
                        eprintln!(
                            "{c:>15} ratio {ratio:.2}: fine-tuned run {} reused",
                            prune_args.out.display()
                        );
                        Some(done.accuracy)
                    } else {
                        let pruned = Pruned {
                            pruner: &pruner,
                            samples,
                            scope,
                            pruning,
                            masked,
                            before: baseline.clone(),
                            after,
                        };
                        match write_child(&parent, &prune_args, pruned, Instant::now())? {
                            Child::Written(report) => report.finetuned.map(|f| f.accuracy),
                            Child::Stopped(_) => bail!("the fine-tuning stopped before its end"),
                        }
                    }
                } else {
                    None
                };
                eprintln!(
                    "{c:>15} ratio {ratio:.2}: {:.2}%{}",
                    accuracy * 100.0,
                    finetuned_accuracy.map_or(String::new(), |f| format!(
                        ", {:.2}% after fine-tuning",
                        f * 100.0
                    ))
                );
                points.push(SweepPoint {
                    criterion: c,
                    ratio,
                    accuracy,
                    finetuned_accuracy,
                    params_removed,
                    flops_removed,
                });
            }
        }
        (pruner.layers().to_vec(), baseline.accuracy, points)
    });
    let report = SweepReport {
        run: args.run.clone(),
        layers,
        scope,
        baseline_accuracy: baseline,
        finetune_epochs: args.finetune_epochs,
        points,
    };
    write_json(&out.join("sweep.json"), &report)?;
    let mut series: Vec<Series> = criteria
        .iter()
        .map(|c| Series {
            label: c.to_string(),
            points: report
                .points
                .iter()
                .filter(|p| p.criterion == *c)
                .map(|p| (p.ratio, p.accuracy * 100.0))
                .collect(),
        })
        .collect();
    if args.finetune_epochs > 0 {
        series.extend(criteria.iter().map(|c| {
            Series {
                label: format!("{c} + fine-tune"),
                points: report
                    .points
                    .iter()
                    .filter(|p| p.criterion == *c)
                    .filter_map(|p| p.finetuned_accuracy.map(|a| (p.ratio, a * 100.0)))
                    .collect(),
            }
        }));
    }
    let mut ratios = args.ratios.clone();
    ratios.sort_by(f64::total_cmp);
    series.push(Series {
        label: "unpruned".into(),
        points: ratios.iter().map(|&r| (r, baseline * 100.0)).collect(),
    });
    line_chart(
        &out.join("accuracy-vs-ratio.svg"),
        &Chart {
            title: &format!(
                "test accuracy after pruning {} ({})",
                report.layers.join(", "),
                if args.global { "global" } else { "per layer" }
            ),
            x_label: "fraction of filters pruned",
            y_label: "test accuracy (%)",
            log_y: false,
            legend: SeriesLabelPosition::LowerLeft,
        },
        &series,
    )?;
    Ok(report)
}

/// Render a sweep as a table: rows criteria, columns ratios.
fn render(r: &SweepReport) -> String {
    use std::fmt::Write;
    let mut ratios: Vec<f64> = r.points.iter().map(|p| p.ratio).collect();
    ratios.sort_by(f64::total_cmp);
    ratios.dedup();
    let mut s = format!(
        "{}: test accuracy (%) after pruning {} ({}); unpruned {:.2}%\n\n",
        r.run.display(),
        r.layers.join(", "),
        scope_name(r.scope),
        r.baseline_accuracy * 100.0
    );
    let _ = write!(s, "{:<22}", "criterion");
    for q in &ratios {
        let _ = write!(s, "{:>9}", format!("{:.0}%", q * 100.0));
    }
    s.push('\n');
    let mut criteria: Vec<Criterion> = r.points.iter().map(|p| p.criterion).collect();
    criteria.dedup();
    for c in criteria {
        let row = |f: &dyn Fn(&SweepPoint) -> Option<f64>| -> String {
            ratios
                .iter()
                .map(|q| {
                    r.points
                        .iter()
                        .find(|p| p.criterion == c && p.ratio == *q)
                        .and_then(f)
                        .map_or(format!("{:>9}", "-"), |a| format!("{:>9.2}", a * 100.0))
                })
                .collect()
        };
        let _ = writeln!(s, "{:<22}{}", c.to_string(), row(&|p| Some(p.accuracy)));
        if r.finetune_epochs > 0 {
            let _ = writeln!(
                s,
                "{:<22}{}",
                format!("  + {} epoch(s) ft", r.finetune_epochs),
                row(&|p| p.finetuned_accuracy)
            );
        }
    }
    s
}
