//! `trainer prune`: zero whole filters of a run, optionally fine-tune with the zeros enforced,
//! and write the result as a new run (with an optional physically smaller copy).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use data::{Dataset, Split};
use model::{Classifier, with_model};
use params::{HostParams, weights_sha256};
use prune::{Criterion, Mask, PruneEffect, Pruner, Pruning, Scope};
use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::commands::redundancy::STATS_BATCH;
use crate::commands::train::check_schedule;
use crate::evaluation::{EVAL_BATCH, EvalResult, analysis_batches, batch_tensors, evaluate};
use crate::fsio::{read_json, write_json};
use crate::run::{
    FinishedRun, ParentRun, PruneSettings, RunConfig, RunDir, Summary, TrainSubset, save_module,
};
use crate::schedule::{LrSchedule, SCHEDULE_HELP};
use crate::training::{CheckpointEvery, NUM_CLASSES, Outcome, Session, fit, limit};

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
    #[arg(long, value_name = "L1,L2", value_delimiter = ',')]
    pub layers: Vec<String>,
    /// Epochs of fine-tuning with the pruned filters held at zero.
    #[arg(long, default_value_t = 0)]
    pub finetune_epochs: usize,
    /// What the fine-tuning trains on, and when it stops.
    #[command(flatten)]
    pub tuning: FinetuneData,
    /// Learning rate of the fine-tuning (with --finetune-epochs) [default: a tenth of the run's].
    #[arg(long)]
    pub lr: Option<f64>,
    /// How the fine-tuning's learning rate changes (with --finetune-epochs): as `trainer train
    /// --lr-schedule` [default: constant].
    #[arg(long, value_name = "SCHEDULE", long_help = SCHEDULE_HELP)]
    pub lr_schedule: Option<LrSchedule>,
    /// Training images for the activation statistics of the data-dependent criteria
    /// (redundancy, mean-activation, apoz) [default: 1000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..=60_000))]
    pub samples: Option<u64>,
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
    /// Show burn-train's terminal dashboard during fine-tuning, as `trainer train --dashboard`
    /// (its quit key stops the fine-tuning with a checkpoint: `trainer train --resume NEW_RUN`
    /// finishes it).
    #[arg(long, conflicts_with = "quiet", requires = "finetune_epochs")]
    pub dashboard: bool,
}

/// What a fine-tuning trains on, and when it stops (`prune` and `prune-sweep`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FinetuneData {
    /// Fine-tune on N training images, a fixed random subset drawn with the run's seed
    /// (with --finetune-epochs) [default: all of the run's training images].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub finetune_images: Option<u64>,
    /// Stop the fine-tuning after the first epoch whose loss on held-out training images (never
    /// fine-tuned on, though the parent run trained on them; --validation-images) does not
    /// fall, and keep the best epoch's weights; --finetune-epochs is then the most epochs.
    #[arg(long)]
    pub early_stop: bool,
    /// Training images held out for --early-stop's validation loss, drawn with the run's seed
    /// before the fine-tuning's subset.
    #[arg(long, value_name = "N", default_value_t = 2000, requires = "early_stop",
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub validation_images: u64,
}

impl FinetuneData {
    /// The child run's training subset, drawn with the parent's `seed` (none: all of its
    /// training images, as the parent had them).
    pub(crate) fn subset(&self, seed: u64) -> Option<TrainSubset> {
        (self.finetune_images.is_some() || self.early_stop).then(|| TrainSubset {
            seed,
            train_images: self.finetune_images.map(|n| n as usize),
            validation_images: if self.early_stop {
                self.validation_images as usize
            } else {
                0
            },
        })
    }

    /// Refuse the options without fine-tuning.
    pub(crate) fn check(&self, finetune_epochs: usize) -> Result<()> {
        if finetune_epochs == 0 && (self.finetune_images.is_some() || self.early_stop) {
            bail!(
                "--finetune-images and --early-stop shape the fine-tuning: give them with --finetune-epochs"
            );
        }
        Ok(())
    }
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
    /// Fine-tuning epochs (the most, with early stopping).
    pub finetune_epochs: usize,
    /// Fine-tuning epochs that ran, and the one whose weights were kept (early stopping keeps
    /// the best; otherwise the last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetune_ran: Option<(usize, usize)>,
    /// The fine-tuning's training subset and validation images, if it used one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetune_subset: Option<TrainSubset>,
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

/// `trainer prune`.
pub(crate) fn run(args: &PruneArgs) -> Result<()> {
    match prune_run(args)? {
        Child::Written(report) => print!("{}", render(&report, &args.out)),
        Child::Stopped(stopped) => println!(
            "{}: fine-tuning {}; finish it with `trainer train --resume {0}` (prune.json{} \
             are written only when prune itself finishes)",
            args.out.display(),
            stopped.stopped_at(),
            if args.compact { " and compact/" } else { "" }
        ),
    }
    Ok(())
}

/// What became of the child run.
pub(crate) enum Child {
    /// Written in full: weights, summary, `prune.json` (and `compact/`).
    Written(Box<PruneReport>),
    /// Its fine-tuning was stopped from the dashboard; it holds a checkpoint.
    Stopped(Outcome),
}

/// Training images for activation statistics: `--samples` or 1000, at most the training split.
pub(crate) fn samples(requested: Option<u64>, parent: &Parent) -> usize {
    (requested.unwrap_or(1000) as usize).min(parent.data.train.len())
}

/// `--global` as a scope.
pub(crate) fn scope(global: bool) -> Scope {
    if global {
        Scope::Global
    } else {
        Scope::PerLayer
    }
}

/// A finished run loaded for pruning: the run, its device, its data and the test split it was
/// evaluated on.
pub(crate) struct Parent {
    pub(crate) run: FinishedRun,
    pub(crate) device: Device,
    pub(crate) data: Dataset,
    pub(crate) test: Split,
}

impl Parent {
    /// Open the run at `path` on `backend` (default: its own), with its data or `data`.
    pub(crate) fn open(
        path: &Path,
        data: Option<&str>,
        backend: Option<BackendKind>,
    ) -> Result<Self> {
        let run = FinishedRun::open(path)?;
        let device = run.device(backend)?;
        let data = run.data(data)?;
        let test = run.config.test_split(&data);
        Ok(Parent {
            run,
            device,
            data,
            test,
        })
    }

    /// A pruner for `layers` of `model` (the parent's weights), with activation statistics over
    /// `samples` training images when `with_statistics`.
    pub(crate) fn pruner<M: Classifier>(
        &self,
        model: &M,
        layers: &[String],
        samples: usize,
        with_statistics: bool,
    ) -> Result<Pruner> {
        let seed = self.run.config.seed;
        let mut pruner = Pruner::new(model, layers, seed)?;
        if with_statistics {
            let batches = analysis_batches(
                &self.data.train,
                &self.data.normalization,
                samples,
                STATS_BATCH,
                seed,
                &self.device,
            );
            pruner.collect_statistics(model, batches);
        }
        Ok(pruner)
    }

    /// `model`'s test accuracy and loss.
    pub(crate) fn evaluate<M: Classifier>(&self, model: &M) -> Result<EvalResult> {
        evaluate(
            model,
            &self.test,
            &self.run.config.normalization,
            &self.device,
            NUM_CLASSES,
        )
    }
}

/// Run `trainer prune`.
fn prune_run(args: &PruneArgs) -> Result<Child> {
    let started = Instant::now();
    if !(0.0..1.0).contains(&args.ratio) {
        bail!("--ratio {} is invalid: it must be in [0, 1)", args.ratio);
    }
    if args.lr_schedule.is_some() && args.finetune_epochs == 0 {
        bail!("--lr-schedule is the fine-tuning's schedule: give it with --finetune-epochs");
    }
    args.tuning.check(args.finetune_epochs)?;
    if let Some(lr) = args.lr {
        if args.finetune_epochs == 0 {
            bail!("--lr is the fine-tuning's learning rate: give it with --finetune-epochs");
        }
        if !(lr.is_finite() && lr > 0.0) {
            bail!("--lr {lr} is invalid: the learning rate must be a positive number");
        }
    }
    if args.samples.is_some() && !args.criterion.needs_activations() {
        bail!(
            "--samples applies to the data-dependent criteria (redundancy, mean-activation, apoz); \
             {} uses the weights alone",
            args.criterion
        );
    }
    if args.out.canonicalize().ok() == args.run.canonicalize().ok() {
        bail!(
            "--out must differ from the run being pruned ({})",
            args.run.display()
        );
    }
    let parent = Parent::open(&args.run, args.data.as_deref(), args.backend)?;
    let child = RunDir::new(&args.out);
    if child.config().exists() && !args.force {
        bail!(
            "{} already holds a run; use --force to overwrite it",
            args.out.display()
        );
    }
    let samples = samples(args.samples, &parent);
    let scope = scope(args.global);

    with_model!(&parent.run.config.model, &parent.device, |m| {
        let m = parent.run.load(m)?;
        let pruner = parent.pruner(
            &m,
            &args.layers,
            samples,
            args.criterion.needs_activations(),
        )?;
        let pruning = pruner.prune(args.criterion, args.ratio, scope)?;
        let before = parent.evaluate(&m)?;
        let masked = pruning.apply(m)?;
        let after = parent.evaluate(&masked)?;
        if !args.quiet {
            eprintln!(
                "{} by {} at ratio {} ({}): test accuracy {:.2}% → {:.2}% after zeroing; {} of {} \
                 parameters and {:.1}% of FLOPs removed",
                pruner.layers().join(", "),
                args.criterion,
                args.ratio,
                scope_name(scope),
                before.accuracy * 100.0,
                after.accuracy * 100.0,
                pruning.effect.params_removed,
                pruning.effect.total_params,
                100.0 * pruning.effect.flops_removed / pruning.effect.total_flops
            );
        }
        write_child(
            &parent,
            args,
            Pruned {
                pruner: &pruner,
                samples,
                scope,
                pruning,
                masked,
                before,
                after,
            },
            started,
        )
    })
}

/// "per layer" or "global".
pub(crate) fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::PerLayer => "per layer",
        Scope::Global => "global",
    }
}

/// What pruning a loaded run computed, before the child run is written.
pub(crate) struct Pruned<'a, M> {
    pub(crate) pruner: &'a Pruner,
    pub(crate) samples: usize,
    pub(crate) scope: Scope,
    pub(crate) pruning: Pruning,
    pub(crate) masked: M,
    pub(crate) before: EvalResult,
    pub(crate) after: EvalResult,
}

/// The settings a pruning records in its child run.
pub(crate) fn prune_settings(
    args: &PruneArgs,
    pruner: &Pruner,
    samples: usize,
    scope: Scope,
) -> PruneSettings {
    PruneSettings {
        criterion: args.criterion,
        ratio: args.ratio,
        scope,
        layers: pruner.layers().to_vec(),
        samples,
    }
}

/// The fine-tuning's learning rate: `--lr`, or a tenth of the parent run's.
fn finetune_lr(parent: &Parent, args: &PruneArgs) -> f64 {
    args.lr.unwrap_or(parent.run.config.optimizer.lr / 10.0)
}

/// The fine-tuned score of the child run at `args.out` if it is finished and was written by a
/// fine-tuning of the same parent weights with `settings`, `args.finetune_epochs` and the same
/// learning rate and schedule (the activation statistics' sample count matters only to criteria that read
/// them). Nothing if any of that differs or cannot be read.
pub(crate) fn finished_child(
    parent: &Parent,
    args: &PruneArgs,
    settings: &PruneSettings,
) -> Option<Score> {
    let child = RunDir::new(&args.out);
    let report: PruneReport = read_json(&child.path.join("prune.json")).ok()?;
    let config: RunConfig = read_json(&child.config()).ok()?;
    let recorded = &report.settings;
    let same_settings = recorded.criterion == settings.criterion
        && recorded.ratio == settings.ratio
        && recorded.scope == settings.scope
        && recorded.layers == settings.layers
        && (recorded.samples == settings.samples || !settings.criterion.needs_activations());
    let same_parent = config.parent.is_some_and(|p| {
        p.weights_sha256 == parent.run.summary.weights_sha256
            && p.path == args.run.display().to_string()
    });
    let same_training = report.finetune_epochs == args.finetune_epochs
        && config.subset == args.tuning.subset(parent.run.config.seed)
        && config.early_stop == args.tuning.early_stop
        && config.optimizer.lr == finetune_lr(parent, args)
        && config.optimizer.lr_schedule == args.lr_schedule.unwrap_or_default();
    (same_settings && same_parent && same_training && child.summary().is_file())
        .then_some(report.finetuned)
        .flatten()
}

/// Write the child run of a pruning into `args.out`: mask, config, the zeroed (and, with
/// `--finetune-epochs`, fine-tuned) weights, the optional compact export and `prune.json`.
pub(crate) fn write_child<M: Classifier>(
    parent: &Parent,
    args: &PruneArgs,
    p: Pruned<'_, M>,
    started: Instant,
) -> Result<Child> {
    let l = &parent.run;
    let child = RunDir::new(&args.out);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the run directory {}", args.out.display()))?;
    let settings = prune_settings(args, p.pruner, p.samples, p.scope);
    let mut config = l.config.clone();
    config.epochs = args.finetune_epochs;
    config.optimizer.lr = finetune_lr(parent, args);
    // The parent's schedule spanned its own run; the fine-tuning has its own.
    config.optimizer.lr_schedule = args.lr_schedule.unwrap_or_default();
    config.parent = Some(ParentRun {
        path: args.run.display().to_string(),
        weights_sha256: l.summary.weights_sha256.clone(),
        test_accuracy: l.summary.test_accuracy,
    });
    config.prune = Some(settings.clone());
    config.subset = args.tuning.subset(l.config.seed);
    config.early_stop = args.tuning.early_stop;
    let (data, validation) = limit(parent.data.clone(), &config).with_context(|| {
        format!(
            "--finetune-images and --validation-images do not fit the training split of {}",
            args.run.display()
        )
    })?;
    if args.finetune_epochs > 0 {
        check_schedule(
            &config.optimizer,
            data.train.len(),
            config.batch_size,
            config.epochs,
        )?;
    }
    // Only now that the options are known to work: a finished run there is replaced.
    child.clear_outputs();
    // The parent's snapshots describe its own training, not the fine-tuning.
    config.snapshot_steps.clear();
    let mask = &p.pruning.mask;
    write_json(&child.mask(), mask)?;
    write_json(&child.config(), &config)?;

    let mut finetune_ran = None;
    let (final_model, finetuned) = if args.finetune_epochs > 0 {
        let train_device = parent.device.clone().autodiff();
        let session = Session {
            run: child.clone(),
            data,
            validation,
            config: config.clone(),
            device: parent.device.clone(),
            train_device: train_device.clone(),
            resume: None,
            started,
            quiet: args.quiet,
            dashboard: args.dashboard,
            stop_after: None,
            stop_after_steps: None,
            checkpoint_every: CheckpointEvery::DEFAULT,
        };
        let enforcer = prune::DeviceMask::new(mask, p.pruner.table(), &train_device)?;
        let trainable = enforcer.enforce(p.masked.clone().fork(&train_device).train());
        let summary = match fit(trainable, &session, |m| enforcer.enforce(m))? {
            Outcome::Finished(s) => s,
            stopped @ Outcome::Stopped { .. } => return Ok(Child::Stopped(stopped)),
        };
        finetune_ran = Some((summary.epochs, summary.best_epoch.unwrap_or(summary.epochs)));
        let tuned = crate::run::load_module(p.masked.clone(), &child.model(), &l.config.model)?;
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
                best_epoch: None,
            },
        )?;
        (p.masked, None)
    };

    let compact = if args.compact {
        Some(export_compact(
            &final_model,
            p.pruner.table(),
            mask,
            &config,
            &child,
            &parent.test,
            &parent.device,
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
        finetune_ran,
        finetune_subset: config.subset,
        effect: p.pruning.effect,
        compact,
    };
    write_json(&child.path.join("prune.json"), &report)?;
    Ok(Child::Written(Box::new(report)))
}

/// Write the compact model to `child/compact` and check it against the zeroed one.
fn export_compact<M: Classifier>(
    zeroed: &M,
    table: &[model::LayerInfo],
    mask: &Mask,
    config: &RunConfig,
    child: &RunDir,
    test: &Split,
    device: &Device,
) -> Result<CompactReport> {
    let spec = prune::compact::compact_spec(&config.model, mask, table)?;
    let values = prune::compact::compact_parameters(&HostParams::read(zeroed), table, mask)?;
    let dir = child.path.join("compact");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let run = RunDir::new(&dir);
    let norm = &config.normalization;
    let (params, diff, accuracy) = with_model!(&spec, device, |small| {
        let small = params::write(small, values)?;
        let mut diff = 0.0f64;
        let order: Vec<u32> = (0..test.len() as u32).collect();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for idx in order.chunks(EVAL_BATCH) {
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
                best_epoch: None,
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
fn render(r: &PruneReport, out: &Path) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} → {}: {} filters of {} by {}, ratio {} ({})",
        r.parent,
        out.display(),
        r.effect.layers.iter().map(|l| l.pruned).sum::<usize>(),
        r.settings.layers.join(", "),
        r.settings.criterion,
        r.settings.ratio,
        scope_name(r.settings.scope)
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
        let (ran, kept) = r
            .finetune_ran
            .unwrap_or((r.finetune_epochs, r.finetune_epochs));
        let _ = writeln!(
            s,
            "  after {kept} fine-tuning epoch(s) {:>6.2}%{}",
            f.accuracy * 100.0,
            if ran != r.finetune_epochs || kept != ran {
                format!(
                    " (early stopping: {ran} of at most {} epochs ran, epoch {kept} kept)",
                    r.finetune_epochs
                )
            } else {
                String::new()
            }
        );
    }
    if let Some(sub) = &r.finetune_subset {
        let _ = writeln!(
            s,
            "  fine-tuned on {} training images{}, drawn with seed {}",
            sub.train_images
                .map_or_else(|| "all remaining".to_string(), |n| n.to_string()),
            if sub.validation_images > 0 {
                format!(", {} more held out for validation", sub.validation_images)
            } else {
                String::new()
            },
            sub.seed
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
            "  {}: {} of {} filters pruned, {} of {} inputs dead; {} parameters removed",
            l.layer, l.pruned, l.filters, l.dead_inputs, l.inputs, l.params_removed
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
