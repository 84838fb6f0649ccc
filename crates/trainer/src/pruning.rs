//! `trainer redundancy`, `trainer prune` and `trainer prune-sweep`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use data::{Dataset, Normalization, Split, analysis_order};
use model::{Classifier, LayerInfo, LayerKind, hidden_layers, with_model};
use plotters::prelude::SeriesLabelPosition;
use prune::redundancy::LayerRedundancy;
use prune::stats::ChannelStats;
use prune::{Criterion, Mask, PruneEffect, Scope};
use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::eval::{EvalResult, batch_tensors, evaluate};
use crate::fsio::{read_json, write_json};
use crate::plot::{Chart, Series, filter_grid_png, line_chart};
use crate::run::{ParentRun, PruneSettings, RunConfig, RunDir, Summary, load_module, save_module};
use crate::train::{NUM_CLASSES, Outcome, Session, fit, limit, load_run_data};
use crate::weights::weights_sha256;

/// Images per batch when collecting activation statistics.
const STATS_BATCH: usize = 200;

/// The mask of a pruned run (one whose config records how it was pruned); `None` for any
/// other run, whatever files its directory holds.
pub fn load_mask(run: &RunDir, config: &RunConfig) -> Result<Option<Mask>> {
    if config.prune.is_none() {
        return Ok(None);
    }
    let path = run.mask();
    if !path.exists() {
        bail!(
            "{} is a pruned run but has no mask.json; prune its parent again",
            run.path.display()
        );
    }
    Ok(Some(read_json(&path)?))
}

/// A finished run, loaded: its config, data and device.
struct Loaded {
    run: RunDir,
    config: RunConfig,
    data: Dataset,
    device: Device,
    summary: Summary,
}

impl Loaded {
    /// The test split the run was evaluated on (its `--test-limit` applied).
    fn test_split(&self) -> Split {
        match self.config.test_limit {
            Some(n) => self.data.test.clone().truncated(n),
            None => self.data.test.clone(),
        }
    }
}

/// `--global` as a scope.
fn scope(global: bool) -> Scope {
    if global {
        Scope::Global
    } else {
        Scope::PerLayer
    }
}

fn load(run: &Path, data: Option<&str>, backend: Option<BackendKind>) -> Result<Loaded> {
    let run = RunDir::new(run);
    let config = run.load_config()?;
    if !run.model().is_file() {
        bail!(
            "{} has no model.bpk: the run has not finished training",
            run.path.display()
        );
    }
    let summary = run.load_summary()?;
    let backend = backend.unwrap_or(if config.backend.is_compiled() {
        config.backend
    } else {
        BackendKind::default_compiled()
    });
    let device = backend.device()?;
    let data = load_run_data(&config, data)?;
    if data.train.rows != config.model.image_size() {
        bail!(
            "the model takes {0}×{0} images but {1} has {2}×{2}",
            config.model.image_size(),
            data.identity.location,
            data.train.rows
        );
    }
    Ok(Loaded {
        run,
        config,
        data,
        device,
        summary,
    })
}

/// Batches of `n` training images drawn with `seed` (the same images for every criterion).
fn stat_batches(
    split: &Split,
    norm: &Normalization,
    n: usize,
    seed: u64,
    device: &Device,
) -> Vec<Tensor<4>> {
    let order = analysis_order(split.len(), seed);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    order[..n.min(order.len())]
        .chunks(STATS_BATCH)
        .map(|idx| batch_tensors(split, idx, norm, device, &mut x, &mut y).0)
        .collect()
}

/// The layers to prune: those named, or every conv layer.
fn select_layers(layers: &[LayerInfo], names: &[String]) -> Result<Vec<String>> {
    if names.is_empty() {
        return Ok(hidden_layers(layers)
            .into_iter()
            .filter(|l| l.kind == LayerKind::Conv2d)
            .map(|l| l.name.clone())
            .collect());
    }
    let prunable: Vec<&str> = hidden_layers(layers)
        .into_iter()
        .map(|l| l.name.as_str())
        .collect();
    for n in names {
        if !prunable.contains(&n.as_str()) {
            bail!(
                "unknown or unprunable layer '{n}' (prunable layers: {})",
                prunable.join(", ")
            );
        }
    }
    Ok(names.to_vec())
}

/// Filters per layer from the model's parameters.
fn layer_filters(
    layers: &[LayerInfo],
    params: &[init::HostParam],
    names: &[String],
) -> BTreeMap<String, Vec<Vec<f32>>> {
    names
        .iter()
        .filter_map(|n| {
            let info = layers.iter().find(|l| &l.name == n)?;
            let w = params.iter().find(|p| p.path == info.weight_path())?;
            Some((n.clone(), info.filters(&w.values)))
        })
        .collect()
}

/// Scores of every layer under `criterion`.
fn scores(
    criterion: Criterion,
    filters: &BTreeMap<String, Vec<Vec<f32>>>,
    stats: &BTreeMap<String, ChannelStats>,
    seed: u64,
) -> Result<BTreeMap<String, Vec<f64>>> {
    filters
        .iter()
        .map(|(layer, f)| {
            Ok((
                layer.clone(),
                criterion.scores(f, stats.get(layer), seed, layer)?,
            ))
        })
        .collect()
}

fn parse_layers(s: &str) -> Vec<String> {
    s.split(',')
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// trainer redundancy

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
    /// Layers to analyse, comma-separated [default: every hidden layer].
    #[arg(long, value_name = "L1,L2")]
    pub layers: Option<String>,
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
pub struct RedundancyReport {
    /// The run.
    pub run: PathBuf,
    /// Images used.
    pub samples: usize,
    /// Per layer.
    pub layers: Vec<LayerRedundancy>,
}

impl RedundancyArgs {
    /// Where the outputs go.
    pub fn out_dir(&self) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| self.run.join("redundancy"))
    }
}

impl SweepArgs {
    /// Where the outputs go.
    pub fn out_dir(&self) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| self.run.join("prune-sweep"))
    }
}

/// Run `trainer redundancy`.
pub fn redundancy(args: &RedundancyArgs) -> Result<RedundancyReport> {
    if !(0.0..=1.0).contains(&args.threshold) {
        bail!(
            "--threshold {} is invalid: it must be in [0, 1]",
            args.threshold
        );
    }
    let l = load(&args.run, args.data.as_deref(), args.backend)?;
    let out = args.out_dir();
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let samples = (args.samples as usize).min(l.data.train.len());
    let layers = with_model!(&l.config.model, &l.device, |m| {
        let m = load_module(m, &l.run.model(), &l.config.model)?;
        let table = m.layers();
        let names = match &args.layers {
            Some(s) => select_layers(&table, &parse_layers(s))?,
            None => hidden_layers(&table)
                .into_iter()
                .map(|t| t.name.clone())
                .collect(),
        };
        let batches = stat_batches(
            &l.data.train,
            &l.data.normalization,
            samples,
            l.config.seed,
            &l.device,
        );
        let stats = prune::stats::collect(&m, batches, &names);
        let filters = layer_filters(&table, &init::read_parameters(&m), &names);
        names
            .iter()
            .map(|n| prune::redundancy::analyze(n, &filters[n], &stats[n], args.threshold))
            .collect::<Vec<_>>()
    });
    for r in &layers {
        let flat: Vec<f32> = r.correlation.iter().flatten().map(|&v| v as f32).collect();
        let scale = (480 / r.filters.max(1)).clamp(2, 16);
        filter_grid_png(
            &out.join(format!("correlation-{}.png", r.layer)),
            &[flat],
            r.filters,
            r.filters,
            1,
            scale,
        )?;
    }
    let report = RedundancyReport {
        run: args.run.clone(),
        samples,
        layers,
    };
    write_json(&out.join("redundancy.json"), &report)?;
    Ok(report)
}

/// Render a redundancy report.
pub fn render_redundancy(r: &RedundancyReport, out: &Path) -> String {
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
        let n = l.filters;
        let cos_mean = if n > 1 {
            let sum: f64 = (0..n)
                .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
                .map(|(i, j)| l.weight_cosine[i][j])
                .sum();
            sum / (n * (n - 1) / 2) as f64
        } else {
            1.0
        };
        let _ = writeln!(
            s,
            "{:<8} {:>7} {:>5} {:>10} {:>8} {:>9} {:>9.3} {:>10.3}",
            l.layer,
            n,
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
        "\nwrote {0}/redundancy.json and {0}/correlation-<layer>.png",
        out.display()
    );
    s
}

// ---------------------------------------------------------------------------------------------
// trainer prune

/// Options of `trainer prune`.
#[derive(Debug, Clone, clap::Args)]
pub struct PruneArgs {
    /// The trained run to prune (never modified).
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// Importance criterion: l1, l2, fpgm, redundancy, mean-activation, apoz or random.
    #[arg(long)]
    pub criterion: Criterion,
    /// Fraction of the filters to prune, in [0, 1).
    #[arg(long)]
    pub ratio: f64,
    /// Prune the lowest-scoring filters over all selected layers together (default: the same
    /// fraction of each layer).
    #[arg(long)]
    pub global: bool,
    /// Layers to prune, comma-separated [default: every conv layer].
    #[arg(long, value_name = "L1,L2")]
    pub layers: Option<String>,
    /// Epochs of fine-tuning with the pruned filters held at zero.
    #[arg(long, default_value_t = 0)]
    pub finetune_epochs: usize,
    /// Learning rate of the fine-tuning [default: a tenth of the run's].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Training images for the data-dependent criteria.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(2..=60_000))]
    pub samples: u64,
    /// Also write a physically smaller model (pruned channels removed) to NEW_RUN/compact.
    #[arg(long)]
    pub compact: bool,
    /// Where to write the pruned run.
    #[arg(long, short, value_name = "NEW_RUN")]
    pub out: PathBuf,
    /// Overwrite NEW_RUN if it exists.
    #[arg(long)]
    pub force: bool,
    /// Dataset directory, or `sample` [default: the run's own data].
    #[arg(long, value_name = "DIR")]
    pub data: Option<String>,
    /// Backend [default: the run's].
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Print only the final line.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Accuracy and loss at one point of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Test accuracy (0–1).
    pub accuracy: f64,
    /// Test loss.
    pub loss: f64,
}

impl From<&EvalResult> for Score {
    fn from(e: &EvalResult) -> Self {
        Score {
            accuracy: e.accuracy,
            loss: e.loss,
        }
    }
}

/// What `trainer prune` did, written to `NEW_RUN/prune.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PruneReport {
    /// The parent run.
    pub parent: String,
    /// Settings.
    pub settings: PruneSettings,
    /// Before pruning.
    pub before: Score,
    /// After zeroing, before fine-tuning.
    pub after: Score,
    /// After fine-tuning, if any.
    pub finetuned: Option<Score>,
    /// Fine-tuning epochs.
    pub finetune_epochs: usize,
    /// Parameters and FLOPs removed, per layer.
    pub effect: PruneEffect,
    /// The compact model, if exported: its directory and the largest logit difference from
    /// the zeroed model on the test images.
    pub compact: Option<CompactReport>,
}

/// The physically smaller model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompactReport {
    /// Its run directory.
    pub dir: PathBuf,
    /// Its architecture.
    pub model: String,
    /// Its parameters.
    pub params: usize,
    /// Largest |logit difference| from the zeroed model over the test images.
    pub max_abs_logit_diff: f64,
    /// Its test accuracy.
    pub accuracy: f64,
}

/// Run `trainer prune`.
pub fn prune_run(args: &PruneArgs) -> Result<PruneReport> {
    let started = Instant::now();
    if !(0.0..1.0).contains(&args.ratio) {
        bail!("--ratio {} is invalid: it must be in [0, 1)", args.ratio);
    }
    if let Some(lr) = args.lr
        && !(lr.is_finite() && lr > 0.0)
    {
        bail!("--lr {lr} is invalid: the learning rate must be a positive number");
    }
    if args.out.canonicalize().ok() == args.run.canonicalize().ok() {
        bail!(
            "--out must differ from the run being pruned ({})",
            args.run.display()
        );
    }
    let l = load(&args.run, args.data.as_deref(), args.backend)?;
    let child = RunDir::new(&args.out);
    if child.config().exists() && !args.force {
        bail!(
            "{} already holds a run; use --force to overwrite it",
            args.out.display()
        );
    }
    let samples = (args.samples as usize).min(l.data.train.len());
    let scope = scope(args.global);
    let test = l.test_split();

    with_model!(&l.config.model, &l.device, |m| {
        let m = load_module(m, &l.run.model(), &l.config.model)?;
        let table = m.layers();
        let names = select_layers(
            &table,
            &args.layers.as_deref().map(parse_layers).unwrap_or_default(),
        )?;
        let stats = if args.criterion.needs_activations() {
            let batches = stat_batches(
                &l.data.train,
                &l.data.normalization,
                samples,
                l.config.seed,
                &l.device,
            );
            prune::stats::collect(&m, batches, &names)
        } else {
            BTreeMap::new()
        };
        let params = init::read_parameters(&m);
        let filters = layer_filters(&table, &params, &names);
        let mask = prune::plan(
            &scores(args.criterion, &filters, &stats, l.config.seed)?,
            args.ratio,
            scope,
        )?;
        let effect = prune::effect(&mask, &table)?;
        let norm = &l.config.normalization;
        let before = evaluate(&m, &test, norm, &l.device, NUM_CLASSES)?;
        let masked = init::write_parameters(m, prune::masked_values(&params, &mask, &table)?)?;
        let after = evaluate(&masked, &test, norm, &l.device, NUM_CLASSES)?;
        if !args.quiet {
            eprintln!(
                "{} by {} at ratio {} ({}): test accuracy {:.2}% → {:.2}% after zeroing; {} of {} \
                 parameters and {:.1}% of FLOPs removed",
                names.join(", "),
                args.criterion,
                args.ratio,
                if args.global { "global" } else { "per layer" },
                before.accuracy * 100.0,
                after.accuracy * 100.0,
                effect.params_removed,
                effect.total_params,
                100.0 * effect.flops_removed / effect.total_flops
            );
        }

        write_child(
            &l,
            args,
            &test,
            Pruned {
                table: &table,
                names,
                samples,
                scope,
                mask,
                effect,
                masked,
                before,
                after,
            },
            started,
        )
    })
}

/// What pruning a loaded run computed, before the child run is written.
struct Pruned<'a, M> {
    table: &'a [LayerInfo],
    names: Vec<String>,
    samples: usize,
    scope: Scope,
    mask: Mask,
    effect: prune::PruneEffect,
    masked: M,
    before: EvalResult,
    after: EvalResult,
}

/// Write the child run of a pruning into `args.out`: mask, config, the zeroed (and, with
/// `--finetune-epochs`, fine-tuned) weights, the optional compact export and `prune.json`.
fn write_child<M: Classifier>(
    l: &Loaded,
    args: &PruneArgs,
    test: &Split,
    p: Pruned<'_, M>,
    started: Instant,
) -> Result<PruneReport> {
    let child = RunDir::new(&args.out);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the run directory {}", args.out.display()))?;
    child.clear_outputs();
    let settings = PruneSettings {
        criterion: args.criterion,
        ratio: args.ratio,
        scope: p.scope,
        layers: p.names,
        samples: p.samples,
    };
    let mut config = l.config.clone();
    config.epochs = args.finetune_epochs;
    config.optimizer.lr = args.lr.unwrap_or(l.config.optimizer.lr / 10.0);
    config.parent = Some(ParentRun {
        path: args.run.display().to_string(),
        weights_sha256: l.summary.weights_sha256.clone(),
        test_accuracy: l.summary.test_accuracy,
    });
    config.prune = Some(settings.clone());
    write_json(&child.mask(), &p.mask)?;
    write_json(&child.config(), &config)?;

    let (final_model, finetuned) = if args.finetune_epochs > 0 {
        let train_device = l.device.clone().autodiff();
        let session = Session {
            run: child.clone(),
            data: limit(l.data.clone(), &config),
            config: config.clone(),
            device: l.device.clone(),
            train_device: train_device.clone(),
            start_epoch: 0,
            prior_wall: 0.0,
            started,
            quiet: args.quiet,
            stop_after: None,
        };
        let enforcer = prune::DeviceMask::new(&p.mask, p.table, &train_device)?;
        let trainable = enforcer.enforce(p.masked.clone().fork(&train_device).train());
        let summary = match fit(trainable, &session, |m| enforcer.enforce(m))? {
            Outcome::Finished(s) => s,
            Outcome::Stopped { .. } => unreachable!("no stop requested"),
        };
        let tuned = load_module(p.masked.clone(), &child.model(), &l.config.model)?;
        let score = Score {
            accuracy: summary.test_accuracy,
            loss: summary.test_loss,
        };
        (tuned, Some(score))
    } else {
        save_module(p.masked.clone(), &child.model())?;
        child.write_metrics(&[])?;
        write_json(
            &child.summary(),
            &Summary {
                epochs: 0,
                test_accuracy: p.after.accuracy,
                test_loss: p.after.loss,
                train_loss: None,
                num_params: p.masked.num_params(),
                train_images_per_sec: 0.0,
                epoch_seconds: 0.0,
                wall_seconds: started.elapsed().as_secs_f64(),
                weights_sha256: weights_sha256(&p.masked),
                backend: l.config.backend,
            },
        )?;
        (p.masked, None)
    };

    let compact = if args.compact {
        Some(export_compact(
            &final_model,
            p.table,
            &p.mask,
            &config,
            &child,
            test,
            &l.device,
        )?)
    } else {
        None
    };
    let report = PruneReport {
        parent: args.run.display().to_string(),
        settings,
        before: Score::from(&p.before),
        after: Score::from(&p.after),
        finetuned,
        finetune_epochs: args.finetune_epochs,
        effect: p.effect,
        compact,
    };
    write_json(&child.path.join("prune.json"), &report)?;
    Ok(report)
}

/// Write the compact model to `child/compact` and check it against the zeroed one.
fn export_compact<M: Classifier>(
    zeroed: &M,
    table: &[LayerInfo],
    mask: &Mask,
    config: &RunConfig,
    child: &RunDir,
    test: &Split,
    device: &Device,
) -> Result<CompactReport> {
    let spec = prune::compact::compact_spec(&config.model, mask, table)?;
    let values = prune::compact::compact_parameters(&init::read_parameters(zeroed), table, mask)?;
    let dir = child.path.join("compact");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let run = RunDir::new(&dir);
    let norm = &config.normalization;
    let (params, diff, accuracy) = with_model!(&spec, device, |small| {
        let small = init::write_parameters(small, values)?;
        let mut diff = 0.0f64;
        let order: Vec<u32> = (0..test.len() as u32).collect();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for idx in order.chunks(crate::eval::EVAL_BATCH) {
            let (images, _) = batch_tensors(test, idx, norm, device, &mut x, &mut y);
            let d: f32 = (zeroed.forward(images.clone()) - small.forward(images))
                .abs()
                .max()
                .into_scalar();
            diff = diff.max(d as f64);
        }
        let ev = evaluate(&small, test, norm, device, NUM_CLASSES)?;
        save_module(small.clone(), &run.model())?;
        let mut compact_config = config.clone();
        compact_config.model = spec.clone();
        write_json(&run.config(), &compact_config)?;
        write_json(
            &run.summary(),
            &Summary {
                epochs: 0,
                test_accuracy: ev.accuracy,
                test_loss: ev.loss,
                train_loss: None,
                num_params: small.num_params(),
                train_images_per_sec: 0.0,
                epoch_seconds: 0.0,
                wall_seconds: 0.0,
                weights_sha256: weights_sha256(&small),
                backend: config.backend,
            },
        )?;
        (small.num_params(), diff, ev.accuracy)
    });
    Ok(CompactReport {
        dir,
        model: spec.describe(),
        params,
        max_abs_logit_diff: diff,
        accuracy,
    })
}

/// Render a prune report.
pub fn render_prune(r: &PruneReport, out: &Path) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} → {}: {} filters of {} by {}, ratio {} ({:?})",
        r.parent,
        out.display(),
        r.effect.layers.iter().map(|l| l.pruned).sum::<usize>(),
        r.settings.layers.join(", "),
        r.settings.criterion,
        r.settings.ratio,
        r.settings.scope
    );
    let _ = writeln!(
        s,
        "  test accuracy before        {:>7.2}%",
        r.before.accuracy * 100.0
    );
    let _ = writeln!(
        s,
        "  after zeroing               {:>7.2}%",
        r.after.accuracy * 100.0
    );
    if let Some(f) = r.finetuned {
        let _ = writeln!(
            s,
            "  after {} fine-tuning epoch(s) {:>6.2}%",
            r.finetune_epochs,
            f.accuracy * 100.0
        );
    }
    let _ = writeln!(
        s,
        "  removed {} of {} parameters ({:.1}%), {:.2} of {:.2} MFLOP per image ({:.1}%)",
        r.effect.params_removed,
        r.effect.total_params,
        100.0 * r.effect.params_removed as f64 / r.effect.total_params as f64,
        r.effect.flops_removed / 1e6,
        r.effect.total_flops / 1e6,
        100.0 * r.effect.flops_removed / r.effect.total_flops
    );
    for l in &r.effect.layers {
        let _ = writeln!(
            s,
            "  {}: {} of {} filters pruned; {} inputs of {} now dead",
            l.layer, l.pruned, l.filters, l.dead_consumer_inputs, l.consumer
        );
    }
    if let Some(c) = &r.compact {
        let _ = writeln!(
            s,
            "  compact model {} in {}: {} parameters, accuracy {:.2}%, max |Δ logit| vs zeroed {:.2e}",
            c.model,
            c.dir.display(),
            c.params,
            c.accuracy * 100.0,
            c.max_abs_logit_diff
        );
    }
    s
}

// ---------------------------------------------------------------------------------------------
// trainer prune-sweep

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
    #[arg(long, value_name = "L1,L2")]
    pub layers: Option<String>,
    /// Rank filters over all selected layers together.
    #[arg(long)]
    pub global: bool,
    /// Also fine-tune each pruned model for this many epochs (slow; writes a run per point).
    #[arg(long, default_value_t = 0)]
    pub finetune_epochs: usize,
    /// Training images for the data-dependent criteria.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(2..=60_000))]
    pub samples: u64,
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
pub struct SweepPoint {
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
pub struct SweepReport {
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

/// Run `trainer prune-sweep`.
pub fn sweep(args: &SweepArgs) -> Result<SweepReport> {
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
    let out = args.out_dir();
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let l = load(&args.run, args.data.as_deref(), args.backend)?;
    let scope = scope(args.global);
    let test = l.test_split();
    let samples = (args.samples as usize).min(l.data.train.len());
    let norm = l.config.normalization;
    let (layers, baseline, points) = with_model!(&l.config.model, &l.device, |m| {
        let m = load_module(m, &l.run.model(), &l.config.model)?;
        let table = m.layers();
        let names = select_layers(
            &table,
            &args.layers.as_deref().map(parse_layers).unwrap_or_default(),
        )?;
        let stats = if criteria.iter().any(|c| c.needs_activations()) {
            let batches = stat_batches(
                &l.data.train,
                &l.data.normalization,
                samples,
                l.config.seed,
                &l.device,
            );
            prune::stats::collect(&m, batches, &names)
        } else {
            BTreeMap::new()
        };
        let params = init::read_parameters(&m);
        let filters = layer_filters(&table, &params, &names);
        let baseline = evaluate(&m, &test, &norm, &l.device, NUM_CLASSES)?;
        let mut points = Vec::new();
        for &c in &criteria {
            let sc = scores(c, &filters, &stats, l.config.seed)?;
            for &ratio in &args.ratios {
                let mask = prune::plan(&sc, ratio, scope)?;
                let effect = prune::effect(&mask, &table)?;
                let masked = init::write_parameters(
                    m.clone(),
                    prune::masked_values(&params, &mask, &table)?,
                )?;
                let after = evaluate(&masked, &test, &norm, &l.device, NUM_CLASSES)?;
                let accuracy = after.accuracy;
                let finetuned_accuracy = if args.finetune_epochs > 0 {
                    // The child run `trainer prune` would write for this point, from what the
                    // sweep has already computed.
                    let dir = out.join("runs").join(format!("{c}-{ratio}"));
                    let prune_args = PruneArgs {
                        run: args.run.clone(),
                        criterion: c,
                        ratio,
                        global: args.global,
                        layers: Some(names.join(",")),
                        finetune_epochs: args.finetune_epochs,
                        lr: None,
                        samples: samples as u64,
                        compact: false,
                        out: dir,
                        force: true,
                        data: args.data.clone(),
                        backend: args.backend,
                        quiet: true,
                    };
                    let pruned = Pruned {
                        table: &table,
                        names: names.clone(),
                        samples,
                        scope,
                        mask,
                        effect: effect.clone(),
                        masked,
                        before: baseline.clone(),
                        after,
                    };
                    let report = write_child(&l, &prune_args, &test, pruned, Instant::now())?;
                    report.finetuned.map(|f| f.accuracy)
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
                    params_removed: effect.params_removed,
                    flops_removed: effect.flops_removed,
                });
            }
        }
        (names, baseline.accuracy, points)
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
pub fn render_sweep(r: &SweepReport, out: &Path) -> String {
    use std::fmt::Write;
    let mut ratios: Vec<f64> = r.points.iter().map(|p| p.ratio).collect();
    ratios.sort_by(f64::total_cmp);
    ratios.dedup();
    let mut s = format!(
        "{}: test accuracy (%) after pruning {} ({:?}); unpruned {:.2}%\n\n",
        r.run.display(),
        r.layers.join(", "),
        r.scope,
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
    let _ = writeln!(
        s,
        "\nwrote {0}/sweep.json and {0}/accuracy-vs-ratio.svg",
        out.display()
    );
    s
}
