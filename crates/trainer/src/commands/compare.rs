//! `trainer compare`: do runs from different seeds learn the same filters, up to a permutation?

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor};
use compare::interpolate::alphas;
use compare::{PairComparison, PairSettings, compare_pair};
use data::{Dataset, analysis_order};
use model::with_model;
use plotters::prelude::SeriesLabelPosition;
use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::evaluation::{batch_tensors, evaluate};
use crate::fsio::write_json;
use crate::plot::{Chart, Series, filter_panels, layer_heatmap, line_chart};
use crate::run::FinishedRun;
use crate::training::NUM_CLASSES;

/// Options of `trainer compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// Two or more finished runs of the same architecture.
    #[arg(value_name = "RUN", num_args = 2.., required = true)]
    pub runs: Vec<PathBuf>,
    /// Dataset directory, or `sample` [default: the first run's data].
    #[arg(long, value_name = "DIR")]
    pub data: Option<String>,
    /// Test images on which feature maps are compared (CKA uses the exact estimator up to 2,000
    /// images, and the debiased minibatch estimator always).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(8..=10_000))]
    pub samples: u64,
    /// Images per minibatch of the debiased CKA estimator.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(4..=2_000))]
    pub cka_batch: u64,
    /// Points on each interpolation line (11 to 25 is typical).
    #[arg(long, default_value_t = 11, value_parser = clap::value_parser!(u64).range(3..=101))]
    pub alphas: u64,
    /// Evaluate interpolated networks on the first N test images only (faster).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub test_limit: Option<u64>,
    /// Skip the interpolation curves (the slowest part).
    #[arg(long, conflicts_with_all = ["alphas", "test_limit"])]
    pub no_interpolation: bool,
    /// Where to write the reports and figures.
    #[arg(long, value_name = "DIR", default_value = "compare")]
    pub out: PathBuf,
    /// Backend [default: the first run's].
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Everything about one pair of runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PairReport {
    /// Run A.
    a: PathBuf,
    /// Run B.
    b: PathBuf,
    /// The comparison.
    #[serde(flatten)]
    comparison: PairComparison,
}

/// Accuracy of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunAccuracy {
    /// Run.
    pub run: PathBuf,
    /// Seed.
    pub seed: u64,
    /// Final test accuracy from its summary.
    pub test_accuracy: f64,
}

/// The comparison of all runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CompareReport {
    /// Architecture.
    pub model: String,
    /// Per run.
    pub runs: Vec<RunAccuracy>,
    /// Mean test accuracy.
    pub accuracy_mean: f64,
    /// Standard deviation of test accuracy (sample, n−1).
    pub accuracy_std: f64,
    /// Lowest.
    pub accuracy_min: f64,
    /// Highest.
    pub accuracy_max: f64,
    /// Every pair (i < j).
    pub pairs: Vec<PairReport>,
}

/// `trainer compare`.
pub(crate) fn run(args: &CompareArgs) -> Result<()> {
    let report = compare_runs(args)?;
    crate::emit(args.json, &report, || render(&report, &args.out))
}

/// Compare every pair of the runs, writing the outputs.
fn compare_runs(args: &CompareArgs) -> Result<CompareReport> {
    let runs: Vec<FinishedRun> = args
        .runs
        .iter()
        .map(|p| FinishedRun::open(p))
        .collect::<Result<_>>()?;
    let spec = runs[0].config.model.clone();
    for r in &runs[1..] {
        if r.config.model != spec {
            bail!(
                "{} is {} but {} is {}: compare runs of the same architecture",
                r.dir.path.display(),
                r.config.model.describe(),
                runs[0].dir.path.display(),
                spec.describe()
            );
        }
    }
    let device = runs[0].device(args.backend)?;
    let data = runs[0].data(args.data.as_deref())?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut pairs = Vec::new();
    for i in 0..runs.len() {
        for j in i + 1..runs.len() {
            let pair = PairReport {
                a: runs[i].dir.path.clone(),
                b: runs[j].dir.path.clone(),
                comparison: compare_runs_pair(&runs[i], &runs[j], &data, &device, args)?,
            };
            write_pair_outputs(&pair, &args.out)?;
            pairs.push(pair);
        }
    }
    let accs: Vec<f64> = runs.iter().map(|r| r.summary.test_accuracy).collect();
    let n = accs.len() as f64;
    let mean = accs.iter().sum::<f64>() / n;
    let std = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let report = CompareReport {
        model: spec.describe(),
        runs: runs
            .iter()
            .map(|r| RunAccuracy {
                run: r.dir.path.clone(),
                seed: r.config.seed,
                test_accuracy: r.summary.test_accuracy,
            })
            .collect(),
        accuracy_mean: mean,
        accuracy_std: std,
        accuracy_min: accs.iter().cloned().fold(f64::INFINITY, f64::min),
        accuracy_max: accs.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        pairs,
    };
    write_json(&args.out.join("compare.json"), &report)?;
    Ok(report)
}

/// A short name for a run directory, for file names.
fn short(p: &Path) -> String {
    p.file_name()
        .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned())
}

/// The comparison of runs `a` and `b` on the same test images (each normalized as its run was
/// trained), interpolations evaluated on the test split (cut to `--test-limit`).
fn compare_runs_pair(
    a: &FinishedRun,
    b: &FinishedRun,
    data: &Dataset,
    device: &Device,
    args: &CompareArgs,
) -> Result<PairComparison> {
    let spec = &a.config.model;
    let n = (args.samples as usize).min(data.test.len());
    let order = analysis_order(data.test.len(), 0);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let mut upload =
        |idx: &[u32], norm| batch_tensors(&data.test, idx, norm, device, &mut x, &mut y).0;
    let batches: Vec<(Tensor<4>, Tensor<4>)> = order[..n]
        .chunks(args.cka_batch as usize)
        .map(|idx| {
            (
                upload(idx, &a.config.normalization),
                upload(idx, &b.config.normalization),
            )
        })
        .collect();
    let mut test = data.test.clone();
    if let Some(l) = args.test_limit {
        test = test.truncated(l as usize);
    }
    let settings = PairSettings {
        alphas: if args.no_interpolation {
            Vec::new()
        } else {
            alphas(args.alphas as usize)
        },
        ..PairSettings::default()
    };
    let norm = &a.config.normalization;
    with_model!(spec, device, |ma| {
        let ma = a.load(ma)?;
        let mb = b.load(ma.clone())?;
        compare_pair(&ma, &mb, &batches, &settings, |m| {
            let ev = evaluate(m, &test, norm, device, NUM_CLASSES)?;
            Ok::<_, anyhow::Error>((ev.loss, ev.accuracy))
        })
    })
}

fn write_pair_outputs(pair: &PairReport, out: &Path) -> Result<()> {
    let p = &pair.comparison;
    let dir = out.join(format!("{}-vs-{}", short(&pair.a), short(&pair.b)));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_json(&dir.join("pair.json"), pair)?;
    let (a, b) = (short(&pair.a), short(&pair.b));
    let (matrix, estimator) = match &p.cka_matrix {
        Some(m) => (m, "linear CKA"),
        None => (&p.cka_matrix_debiased, "debiased minibatch CKA"),
    };
    layer_heatmap(
        &dir.join("cka.svg"),
        &format!("{estimator}: every layer of {a} against every layer of {b}"),
        (&a, &b),
        &p.cka_layers,
        matrix,
        estimator,
    )?;
    if let Some((kernel, [fa, fb, fb_aligned])) = &p.first_layer {
        filter_panels(
            &dir.join("filters.svg"),
            &format!("first-layer filters: {a}, {b}, and {b} aligned onto {a}"),
            *kernel,
            vec![
                (format!("A: {a}"), fa.clone()),
                (format!("B: {b}, own order"), fb.clone()),
                ("B reordered by weight matching".into(), fb_aligned.clone()),
            ],
        )?;
    }
    let series: Vec<Series> = p
        .layers
        .iter()
        .map(|l| {
            let sub = &l.subspace;
            let mut points: Vec<(f64, f64)> = sub
                .reconstruction
                .iter()
                .map(|r| (r.k as f64, r.r2))
                .collect();
            if points.last().map(|&(k, _)| k as usize) != Some(sub.live[1]) {
                points.push((sub.live[1] as f64, sub.reconstruction_all));
            }
            Series {
                label: format!(
                    "{} (last point: all {} live maps)",
                    l.matching.layer, sub.live[1]
                ),
                points,
            }
        })
        .collect();
    line_chart(
        &dir.join("reconstruction.svg"),
        &Chart {
            title: &format!("reconstructing each of {a}'s feature maps from k of {b}'s"),
            x_label: "k: maps of B used (greedy forward selection, least squares)",
            y_label: "mean R² over A's maps",
            log_y: false,
            legend: SeriesLabelPosition::LowerRight,
        },
        &series,
    )?;
    if !p.naive.curve.is_empty() {
        let series: Vec<Series> = [&p.naive, &p.activation_aligned, &p.weight_aligned]
            .iter()
            .map(|al| Series {
                label: al.method.clone(),
                points: al.curve.iter().map(|c| (c.alpha, c.loss)).collect(),
            })
            .collect();
        line_chart(
            &dir.join("interpolation.svg"),
            &Chart {
                title: &format!(
                    "test loss on the line from {} to {}",
                    short(&pair.a),
                    short(&pair.b)
                ),
                x_label: "α  (θ = (1−α)·θ_A + α·θ_B)",
                y_label: "test loss",
                log_y: false,
                legend: SeriesLabelPosition::UpperRight,
            },
            &series,
        )?;
    }
    let bins: Vec<f64> = (0..20).map(|b| -1.0 + 0.1 * b as f64 + 0.05).collect();
    let mut series = Vec::new();
    for l in &p.layers {
        for (what, stats) in [
            ("matched", &l.matching.matched),
            ("identity", &l.matching.identity),
        ] {
            series.push(Series {
                label: format!("{} {what}", l.matching.layer),
                points: bins
                    .iter()
                    .zip(&stats.histogram)
                    .map(|(&x, &c)| (x, c as f64 / l.matching.filters as f64))
                    .collect(),
            });
        }
    }
    line_chart(
        &dir.join("matched-correlation.svg"),
        &Chart {
            title: "feature-map correlation of paired filters: optimal matching vs identity",
            x_label: "correlation (bins of 0.1)",
            y_label: "fraction of filters",
            log_y: false,
            legend: SeriesLabelPosition::UpperLeft,
        },
        &series,
    )?;
    Ok(())
}

/// Render the comparison as tables.
fn render(r: &CompareReport, out: &Path) -> String {
    use std::fmt::Write;
    let mut s = format!("{}: {} runs\n", r.model, r.runs.len());
    for run in &r.runs {
        let _ = writeln!(
            s,
            "  {} (seed {}): test accuracy {:.2}%",
            run.run.display(),
            run.seed,
            run.test_accuracy * 100.0
        );
    }
    let _ = writeln!(
        s,
        "  accuracy mean {:.2}%, std {:.2} points, min {:.2}%, max {:.2}%\n",
        r.accuracy_mean * 100.0,
        r.accuracy_std * 100.0,
        r.accuracy_min * 100.0,
        r.accuracy_max * 100.0
    );
    for pair in &r.pairs {
        let p = &pair.comparison;
        let _ = writeln!(
            s,
            "{} vs {} ({} test images)",
            short(&pair.a),
            short(&pair.b),
            p.samples
        );
        let _ = writeln!(
            s,
            "  {:<8} {:>7} {:>12} {:>12} {:>9} {:>9} {:>8} {:>9}",
            "layer", "filters", "matched ρ", "identity ρ", "≥0.9", "≥0.5", "CKA", "CKA(deb)"
        );
        for l in &p.layers {
            let m = &l.matching;
            let _ = writeln!(
                s,
                "  {:<8} {:>7} {:>12.3} {:>12.3} {:>9} {:>9} {:>8} {:>9.3}",
                m.layer,
                m.filters,
                m.matched.mean,
                m.identity.mean,
                format!("{}/{}", m.matched.at_least_0_9, m.filters),
                format!("{}/{}", m.matched.at_least_0_5, m.filters),
                l.cka.map_or("-".into(), |c| format!("{c:.3}")),
                l.cka_debiased
            );
        }
        let _ = writeln!(
            s,
            "  {:<8} {:>8} {:>8} {:>9} {:>9} {:>9}   (subspaces)",
            "layer", "SVCCA", "PWCCA", "R² k=1", "R² k=8", "R² all"
        );
        for l in &p.layers {
            let sub = &l.subspace;
            let at = |k: usize| {
                sub.reconstruction
                    .iter()
                    .find(|r| r.k == k)
                    .map_or("-".into(), |r| format!("{:.3}", r.r2))
            };
            let _ = writeln!(
                s,
                "  {:<8} {:>8.3} {:>8.3} {:>9} {:>9} {:>9.3}",
                l.matching.layer,
                sub.svcca,
                sub.pwcca,
                at(1),
                at(8),
                sub.reconstruction_all
            );
        }
        let _ = writeln!(
            s,
            "  {:<22} {:>12} {:>14} {:>13} {:>13}",
            "alignment", "‖θA−θB‖", "max |Δlogit|", "loss barrier", "error barrier"
        );
        for al in [&p.naive, &p.activation_aligned, &p.weight_aligned] {
            let _ = writeln!(
                s,
                "  {:<22} {:>12.3} {:>14.2e} {:>13} {:>13}",
                al.method,
                al.weight_distance,
                al.max_abs_logit_change,
                al.loss_barrier.map_or("-".into(), |b| format!("{b:.4}")),
                al.error_barrier
                    .map_or("-".into(), |b| format!("{:.2} pts", b * 100.0))
            );
        }
        let _ = writeln!(
            s,
            "  (weight matching converged in {} sweep(s))\n",
            p.weight_matching_rounds
        );
    }
    let _ = writeln!(
        s,
        "wrote {0}/compare.json and, per pair, pair.json, cka.svg, interpolation.svg, \
         matched-correlation.svg, reconstruction.svg and the first-layer filters of A, B and B \
         aligned (filters.svg) under {0}/",
        out.display()
    );
    s
}
