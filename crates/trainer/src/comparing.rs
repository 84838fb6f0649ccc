//! `trainer compare`: do runs from different seeds learn the same filters, up to a permutation?

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor};
use compare::cka::{MinibatchCka, linear_cka};
use compare::interpolate::{CurvePoint, alphas, barrier, lerp};
use compare::matching::{LayerMatch, match_layer};
use compare::permute::{Permutation, by_path, permute, weight_distance, weight_matching};
use data::{Dataset, analysis_order};
use model::features::CrossMoments;
use model::{Classifier, with_model};
use plotters::prelude::SeriesLabelPosition;
use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::eval::{batch_tensors, evaluate};
use crate::fsio::write_json;
use crate::plot::{Chart, Series, filter_grid_png, line_chart};
use crate::run::{RunConfig, RunDir, Summary, load_module};
use crate::train::{NUM_CLASSES, load_run_data};

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
    #[arg(long)]
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

/// First-layer filters of A, B and B aligned (one tile per filter), and the kernel size.
pub type FirstLayer = ([usize; 2], [Vec<Vec<f32>>; 3]);

/// One hidden layer of a pair of runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerComparison {
    /// Matched and identity pairings.
    #[serde(flatten)]
    pub matching: LayerMatch,
    /// Linear CKA of the layer with the same layer of the other run.
    pub cka: Option<f64>,
    /// Debiased minibatch CKA of the same.
    pub cka_debiased: f64,
}

/// An alignment of B onto A.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alignment {
    /// How it was found.
    pub method: String,
    /// The permutation applied to B.
    pub permutation: Permutation,
    /// Largest |logit difference| between B and permuted B on the compared images.
    pub max_abs_logit_change: f64,
    /// ‖θ_A − θ_B(permuted)‖₂.
    pub weight_distance: f64,
    /// Interpolation from A to permuted B.
    pub curve: Vec<CurvePoint>,
    /// Loss barrier of the curve.
    pub loss_barrier: Option<f64>,
    /// Error barrier (in accuracy points, 0–1) of the curve.
    pub error_barrier: Option<f64>,
}

/// Everything about one pair of runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairReport {
    /// Run A.
    pub a: PathBuf,
    /// Run B.
    pub b: PathBuf,
    /// Images compared.
    pub samples: usize,
    /// Hidden layers.
    pub layers: Vec<LayerComparison>,
    /// Layer names of the CKA matrix (hidden layers, then `logits`).
    pub cka_layers: Vec<String>,
    /// Linear CKA of every layer of A (rows) with every layer of B (columns).
    pub cka_matrix: Option<Vec<Vec<f64>>>,
    /// Debiased minibatch CKA, same layout.
    pub cka_matrix_debiased: Vec<Vec<f64>>,
    /// ‖θ_A − θ_B‖₂ without alignment.
    pub weight_distance: f64,
    /// Naive interpolation (no alignment).
    pub naive: Alignment,
    /// B aligned by matching feature-map correlations.
    pub activation_aligned: Alignment,
    /// B aligned by weight matching (Git Re-Basin).
    pub weight_aligned: Alignment,
    /// Sweeps of weight matching until it converged.
    pub weight_matching_rounds: usize,
    /// First-layer filters of A, of B, and of B aligned onto A by weight matching (each
    /// averaged over input channels), with the kernel size, for the figures.
    #[serde(skip)]
    pub first_layer: Option<FirstLayer>,
}

/// Accuracy of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunAccuracy {
    /// Run.
    pub run: PathBuf,
    /// Seed.
    pub seed: u64,
    /// Final test accuracy from its summary.
    pub test_accuracy: f64,
}

/// The comparison of all runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompareReport {
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

struct Run {
    dir: RunDir,
    config: RunConfig,
    summary: Summary,
}

fn open(path: &Path) -> Result<Run> {
    let dir = RunDir::new(path);
    let config = dir.load_config()?;
    let summary = dir.load_summary()?;
    if !dir.model().is_file() {
        bail!("{} has no model.bpk", path.display());
    }
    Ok(Run {
        dir,
        config,
        summary,
    })
}

/// Run `trainer compare`.
pub fn compare_runs(args: &CompareArgs) -> Result<CompareReport> {
    let runs: Vec<Run> = args.runs.iter().map(|p| open(p)).collect::<Result<_>>()?;
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
    let backend = args
        .backend
        .unwrap_or(if runs[0].config.backend.is_compiled() {
            runs[0].config.backend
        } else {
            BackendKind::default_compiled()
        });
    let device = backend.device()?;
    let data = load_run_data(&runs[0].config, args.data.as_deref())?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut pairs = Vec::new();
    for i in 0..runs.len() {
        for j in i + 1..runs.len() {
            let pair = compare_pair(&runs[i], &runs[j], &data, &device, args)?;
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

/// Row-major `XXᵀ` of a `[n, d]` tensor, on the host.
fn gram_of(x: Tensor<2>) -> Vec<f64> {
    x.clone()
        .matmul(x.transpose())
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("float")
        .into_iter()
        .map(f64::from)
        .collect()
}

/// `[N, C, H, W]` → `[N, C·H·W]`.
fn flat(t: Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = t.dims();
    t.reshape([n, c * h * w])
}

fn compare_pair(
    a: &Run,
    b: &Run,
    data: &Dataset,
    device: &Device,
    args: &CompareArgs,
) -> Result<PairReport> {
    let spec = &a.config.model;
    let n = (args.samples as usize).min(data.test.len());
    let order = analysis_order(data.test.len(), 0);
    let order = &order[..n];
    let mb = args.cka_batch as usize;
    let exact = n <= 2000;
    let mut test = data.test.clone();
    if let Some(l) = args.test_limit {
        test = test.truncated(l as usize);
    }
    with_model!(spec, device, |ma| {
        let ma = load_module(ma, &a.dir.model(), spec)?;
        let mb_model = load_module(ma.clone(), &b.dir.model(), spec)?;
        let table = ma.layers();
        let hidden: Vec<String> = model::hidden_layers(&table)
            .into_iter()
            .map(|l| l.name.clone())
            .collect();
        let mut names = hidden.clone();
        names.push("logits".into());
        let nl = names.len();
        let mut moments: Vec<Option<CrossMoments>> = vec![None; hidden.len()];
        let mut feats_a: Vec<Vec<Tensor<2>>> = vec![Vec::new(); nl];
        let mut feats_b: Vec<Vec<Tensor<2>>> = vec![Vec::new(); nl];
        let mut minibatch = vec![vec![MinibatchCka::default(); nl]; nl];
        let (mut x, mut y) = (Vec::new(), Vec::new());
        let mut max_logit_b = Vec::new();
        for idx in order.chunks(mb) {
            if idx.len() < 4 {
                continue;
            }
            let (xa, _) = batch_tensors(
                &data.test,
                idx,
                &a.config.normalization,
                device,
                &mut x,
                &mut y,
            );
            let (xb, _) = batch_tensors(
                &data.test,
                idx,
                &b.config.normalization,
                device,
                &mut x,
                &mut y,
            );
            let (la, ta) = ma.forward_taps(xa);
            let (lb, tb) = mb_model.forward_taps(xb.clone());
            max_logit_b.push((xb, lb.clone()));
            let mut fa: Vec<Tensor<2>> = ta.iter().map(|t| flat(t.post.clone())).collect();
            let mut fb: Vec<Tensor<2>> = tb.iter().map(|t| flat(t.post.clone())).collect();
            fa.push(la);
            fb.push(lb);
            for (k, (pa, pb)) in ta.iter().zip(&tb).enumerate() {
                let [_, c, _, _] = pa.post.dims();
                moments[k]
                    .get_or_insert_with(|| CrossMoments::new(c, c))
                    .update(&pa.post, &pb.post);
            }
            let ga: Vec<Vec<f64>> = fa.iter().map(|f| gram_of(f.clone())).collect();
            let gb: Vec<Vec<f64>> = fb.iter().map(|f| gram_of(f.clone())).collect();
            for r in 0..nl {
                for c in 0..nl {
                    minibatch[r][c].update(&ga[r], &gb[c], idx.len());
                }
            }
            if exact {
                for k in 0..nl {
                    feats_a[k].push(fa[k].clone());
                    feats_b[k].push(fb[k].clone());
                }
            }
        }
        let cka_matrix = exact.then(|| {
            let ga: Vec<Vec<f64>> = feats_a
                .iter()
                .map(|f| gram_of(Tensor::cat(f.clone(), 0)))
                .collect();
            let gb: Vec<Vec<f64>> = feats_b
                .iter()
                .map(|f| gram_of(Tensor::cat(f.clone(), 0)))
                .collect();
            let m = ga.len();
            let rows = order
                .chunks(mb)
                .filter(|c| c.len() >= 4)
                .map(<[u32]>::len)
                .sum();
            (0..m)
                .map(|r| (0..m).map(|c| linear_cka(&ga[r], &gb[c], rows)).collect())
                .collect::<Vec<Vec<f64>>>()
        });
        let layers: Vec<LayerComparison> = hidden
            .iter()
            .enumerate()
            .map(|(k, name)| LayerComparison {
                matching: match_layer(
                    name,
                    &moments[k]
                        .as_ref()
                        .expect("at least one batch")
                        .correlation(),
                ),
                cka: cka_matrix.as_ref().map(|m| m[k][k]),
                cka_debiased: minibatch[k][k].value(),
            })
            .collect();

        let pa = by_path(&init::read_parameters(&ma));
        let pb = by_path(&init::read_parameters(&mb_model));
        let activation_perm = Permutation {
            layers: layers
                .iter()
                .map(|l| (l.matching.layer.clone(), l.matching.perm.clone()))
                .collect(),
        };
        let (weight_perm, rounds) = weight_matching(&pa, &pb, &table, 100)?;
        let norm = &a.config.normalization;
        let alpha_list = alphas(args.alphas as usize);
        let align = |method: &str, perm: &Permutation| -> Result<Alignment> {
            let pb2 = permute(&pb, &table, perm)?;
            let permuted = init::write_parameters(mb_model.clone(), pb2.clone())?;
            let mut change = 0.0f64;
            for (xb, lb) in &max_logit_b {
                let d: f32 = (permuted.forward(xb.clone()) - lb.clone())
                    .abs()
                    .max()
                    .into_scalar();
                change = change.max(d as f64);
            }
            let curve = if args.no_interpolation {
                Vec::new()
            } else {
                alpha_list
                    .iter()
                    .map(|&alpha| {
                        let m = init::write_parameters(ma.clone(), lerp(&pa, &pb2, alpha)?)?;
                        let ev = evaluate(&m, &test, norm, device, NUM_CLASSES)?;
                        Ok(CurvePoint {
                            alpha,
                            loss: ev.loss,
                            accuracy: ev.accuracy,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?
            };
            let b_loss: Vec<(f64, f64)> = curve.iter().map(|p| (p.alpha, p.loss)).collect();
            let b_err: Vec<(f64, f64)> =
                curve.iter().map(|p| (p.alpha, 1.0 - p.accuracy)).collect();
            Ok(Alignment {
                method: method.to_string(),
                permutation: perm.clone(),
                max_abs_logit_change: change,
                weight_distance: weight_distance(&pa, &pb2)?,
                loss_barrier: (!curve.is_empty()).then(|| barrier(&b_loss)),
                error_barrier: (!curve.is_empty()).then(|| barrier(&b_err)),
                curve,
            })
        };
        let identity = Permutation::default();
        let first_layer = table.first().and_then(|info| {
            let aligned = permute(&pb, &table, &weight_perm).ok()?;
            let tiles =
                |params: &std::collections::HashMap<String, Vec<f32>>| -> Option<Vec<Vec<f32>>> {
                    let w = params.get(&info.weight_path())?;
                    let k = info.kernel[0] * info.kernel[1];
                    Some(
                        info.filters(w)
                            .iter()
                            .map(|f| {
                                let ch = f.len() / k;
                                (0..k)
                                    .map(|t| (0..ch).map(|c| f[c * k + t]).sum::<f32>() / ch as f32)
                                    .collect()
                            })
                            .collect(),
                    )
                };
            Some((info.kernel, [tiles(&pa)?, tiles(&pb)?, tiles(&aligned)?]))
        });
        Ok(PairReport {
            first_layer,
            a: a.dir.path.clone(),
            b: b.dir.path.clone(),
            samples: n,
            weight_distance: weight_distance(&pa, &pb)?,
            naive: align("none", &identity)?,
            activation_aligned: align("activation matching", &activation_perm)?,
            weight_aligned: align("weight matching", &weight_perm)?,
            weight_matching_rounds: rounds,
            layers,
            cka_layers: names,
            cka_matrix,
            cka_matrix_debiased: minibatch
                .iter()
                .map(|row| row.iter().map(MinibatchCka::value).collect())
                .collect(),
        })
    })
}

fn write_pair_outputs(p: &PairReport, out: &Path) -> Result<()> {
    let dir = out.join(format!("{}-vs-{}", short(&p.a), short(&p.b)));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_json(&dir.join("pair.json"), p)?;
    let matrix = p.cka_matrix.as_ref().unwrap_or(&p.cka_matrix_debiased);
    let m = matrix.len();
    let flat: Vec<f32> = matrix.iter().flatten().map(|&v| v as f32).collect();
    filter_grid_png(&dir.join("cka.png"), &[flat], m, m, 1, 60)?;
    if let Some(([kh, kw], [fa, fb, fb_aligned])) = &p.first_layer {
        filter_grid_png(&dir.join("filters-a.png"), fa, *kh, *kw, 8, 12)?;
        filter_grid_png(&dir.join("filters-b.png"), fb, *kh, *kw, 8, 12)?;
        filter_grid_png(
            &dir.join("filters-b-aligned.png"),
            fb_aligned,
            *kh,
            *kw,
            8,
            12,
        )?;
    }
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
                    short(&p.a),
                    short(&p.b)
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
pub fn render(r: &CompareReport, out: &Path) -> String {
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
    for p in &r.pairs {
        let _ = writeln!(
            s,
            "{} vs {} ({} test images)",
            short(&p.a),
            short(&p.b),
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
        "wrote {0}/compare.json and, per pair, pair.json, cka.png, interpolation.svg, \
         matched-correlation.svg and first-layer filter grids (filters-a.png, filters-b.png, \
         filters-b-aligned.png) under {0}/",
        out.display()
    );
    s
}
