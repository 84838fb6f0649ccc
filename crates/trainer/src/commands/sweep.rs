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
    Child, FinetuneData, Parent, PruneArgs, Pruned, finished_child, prune_settings, samples, scope,
    scope_name, write_child,
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
    /// What the fine-tuning trains on, and when it stops.
    #[command(flatten)]
    pub tuning: FinetuneData,
    /// After the --ratios, fine-tune N more ratios by bisection, each halving the interval
    /// between the largest ratio up to which every fine-tuned point is within --tolerance of
    /// the unpruned model's test accuracy (0 if none) and the next ratio above it (1 if
    /// none): the points go where the accuracy curve bends (with --finetune-epochs).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        requires = "finetune_epochs"
    )]
    pub refine: usize,
    /// Accuracy points below the unpruned model that --refine still counts as kept.
    #[arg(
        long,
        value_name = "POINTS",
        default_value_t = 1.0,
        requires = "refine"
    )]
    pub tolerance: f64,
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
    /// Fine-tuning epochs per point (the most, with early stopping).
    pub finetune_epochs: usize,
    /// Ratios added by bisection after the given ones, and the tolerance (accuracy points)
    /// they bracket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refined: Option<(usize, f64)>,
    /// Every point, by criterion and ratio.
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

/// The next ratio of a bisection over `points` (one criterion's, any order): the middle of the
/// interval between the largest ratio up to which every point is `kept` (0 if the smallest is
/// not) and the next ratio (1 if there is none). None once the interval is narrower than one
/// part in 1024.
fn bisect(points: &[SweepPoint], kept: impl Fn(&SweepPoint) -> bool) -> Option<f64> {
    let mut sorted: Vec<&SweepPoint> = points.iter().collect();
    sorted.sort_by(|a, b| a.ratio.total_cmp(&b.ratio));
    let first_lost = sorted.iter().position(|p| !kept(p));
    let lo = match first_lost {
        Some(0) => 0.0,
        Some(i) => sorted[i - 1].ratio,
        None => sorted.last().map_or(0.0, |p| p.ratio),
    };
    let hi = first_lost.map_or(1.0, |i| sorted[i].ratio);
    (hi - lo > 1.0 / 1024.0).then_some((lo + hi) / 2.0)
}

/// Run the sweep, writing `sweep.json`, the figure and (with fine-tuning) a run per point to
/// `out`; a point whose run there is already finished with the same settings is reused.
fn sweep(args: &SweepArgs, out: &Path) -> Result<SweepReport> {
    if args.refine > 0 && args.finetune_epochs == 0 {
        bail!(
            "--refine {} bisects on fine-tuned accuracy: give --finetune-epochs 1 or more",
            args.refine
        );
    }
    for &r in &args.ratios {
        if !(0.0..1.0).contains(&r) {
            bail!("--ratios: {r} is outside [0, 1)");
        }
    }
    if !(args.tolerance.is_finite() && args.tolerance >= 0.0) {
        bail!(
            "--tolerance {}: give the accuracy points as a number ≥ 0",
            args.tolerance
        );
    }
    args.tuning.check(args.finetune_epochs)?;
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
        let point = |c: Criterion, ratio: f64| -> Result<SweepPoint> {
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
                    tuning: args.tuning.clone(),
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
                        "{c:>15} ratio {ratio:.4}: fine-tuned run {} reused",
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
                "{c:>15} ratio {ratio:.4}: {:.2}%{}",
                accuracy * 100.0,
                finetuned_accuracy.map_or(String::new(), |f| format!(
                    ", {:.2}% after fine-tuning",
                    f * 100.0
                ))
            );
            Ok(SweepPoint {
                criterion: c,
                ratio,
                accuracy,
                finetuned_accuracy,
                params_removed,
                flops_removed,
            })
        };
        let mut points = Vec::new();
        for &c in &criteria {
            let mut mine: Vec<SweepPoint> = Vec::new();
            for &ratio in &args.ratios {
                mine.push(point(c, ratio)?);
            }
            for _ in 0..args.refine {
                let kept = |p: &SweepPoint| {
                    p.finetuned_accuracy
                        .is_some_and(|a| a >= baseline.accuracy - args.tolerance / 100.0)
                };
                let Some(ratio) = bisect(&mine, kept) else {
                    break;
                };
                mine.push(point(c, ratio)?);
            }
            mine.sort_by(|a, b| a.ratio.total_cmp(&b.ratio));
            points.extend(mine);
        }
        (pruner.layers().to_vec(), baseline.accuracy, points)
    });
    let report = SweepReport {
        run: args.run.clone(),
        layers,
        scope,
        baseline_accuracy: baseline,
        finetune_epochs: args.finetune_epochs,
        refined: (args.refine > 0).then_some((args.refine, args.tolerance)),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ratio: f64, finetuned: f64) -> SweepPoint {
        SweepPoint {
            criterion: Criterion::Redundancy,
            ratio,
            accuracy: 0.0,
            finetuned_accuracy: Some(finetuned),
            params_removed: 0,
            flops_removed: 0.0,
        }
    }

    #[test]
    fn bisection_halves_the_interval_where_accuracy_is_lost() {
        let kept = |p: &SweepPoint| p.finetuned_accuracy.unwrap() >= 0.9;
        // Kept at 0.25 and 0.5, lost at 0.75: the middle of [0.5, 0.75].
        let pts = vec![at(0.75, 0.5), at(0.25, 0.95), at(0.5, 0.92)];
        assert_eq!(bisect(&pts, kept), Some(0.625));
        // Lost at once: between 0 and the smallest ratio.
        assert_eq!(bisect(&[at(0.25, 0.1)], kept), Some(0.125));
        // Kept everywhere: between the largest ratio and 1.
        assert_eq!(bisect(&[at(0.5, 0.95)], kept), Some(0.75));
        // A point lost below a kept one ends the kept range there.
        let pts = vec![at(0.25, 0.5), at(0.5, 0.95)];
        assert_eq!(bisect(&pts, kept), Some(0.125));
        // Nothing left to halve.
        let pts = vec![at(0.5, 0.95), at(0.5 + 1.0 / 2048.0, 0.1)];
        assert_eq!(bisect(&pts, kept), None);
    }
}
