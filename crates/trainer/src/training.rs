//! The training loop shared by `trainer train` and the fine-tuning of `trainer prune`: epochs
//! of data-parallel steps, evaluation after each, checkpoints, resumption, and the summary.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use burn::tensor::{Bytes, Device};
use data::{Batches, Dataset, Split, epoch_order};
use model::Classifier;
use params::weights_sha256;

use crate::evaluation::{batch_tensors, evaluate};
use crate::fsio::{write_atomic, write_json};
use crate::progress::{Reporter, StepReport};
use crate::run::{
    CheckpointState, EpochMetrics, OptimizerKind, OptimizerSpec, PartialEpoch, RunConfig, RunDir,
    Summary, load_module, save_module,
};
use crate::schedule::LearningRates;

/// Number of classes of (Fashion-)MNIST.
pub(crate) const NUM_CLASSES: usize = data::source::NUM_CLASSES;

/// Images per optimizer step unless a run says otherwise.
pub(crate) const DEFAULT_BATCH_SIZE: u64 = 64;

/// How a call to [`fit`] ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// All epochs done; the summary was written.
    Finished(Summary),
    /// Stopped early on request (the dashboard, `--stop-after`, `--stop-after-steps`), with a
    /// checkpoint to resume from.
    Stopped {
        /// Epochs finished.
        epochs_done: usize,
        /// Steps finished of the next epoch, of `steps` (0: at an epoch's end).
        steps_done: usize,
        /// Steps per epoch.
        steps: usize,
    },
}

impl Outcome {
    /// Where a stopped run stands, in words (empty for a finished run).
    pub(crate) fn stopped_at(&self) -> String {
        match *self {
            Outcome::Finished(_) => String::new(),
            Outcome::Stopped {
                epochs_done,
                steps_done: 0,
                ..
            } => format!("stopped after epoch {epochs_done}"),
            Outcome::Stopped {
                epochs_done,
                steps_done,
                steps,
            } => format!(
                "stopped after step {steps_done} of {steps} of epoch {}",
                epochs_done + 1
            ),
        }
    }
}

/// When to write a checkpoint inside an epoch (one is always written at an epoch's end).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CheckpointEvery {
    /// After every `n` steps of an epoch (counted from the epoch's start).
    Steps(usize),
    /// When this much time has passed since the last checkpoint (or the start).
    Time(Duration),
    /// Only at epochs' ends.
    Never,
}

impl CheckpointEvery {
    /// Five minutes of training: little work is lost, and writing costs nothing noticeable.
    pub(crate) const DEFAULT: CheckpointEvery = CheckpointEvery::Time(Duration::from_secs(300));

    /// Whether a checkpoint is due after `steps` steps of the epoch, the last one `since` ago.
    fn due(self, steps: usize, since: Duration) -> bool {
        match self {
            CheckpointEvery::Steps(n) => steps.is_multiple_of(n),
            CheckpointEvery::Time(d) => since >= d,
            CheckpointEvery::Never => false,
        }
    }
}

impl std::str::FromStr for CheckpointEvery {
    type Err = String;

    /// `N` (steps), `Ns`, `Nm`, `Nh` (time), or `epoch` (only at epochs' ends).
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "'{s}' is not a checkpoint interval: give a number of steps (500), a time (90s, \
                 5m, 1h) or 'epoch'"
            )
        };
        if s == "epoch" {
            return Ok(CheckpointEvery::Never);
        }
        let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
        let n: u64 = num.parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(bad());
        }
        let secs = match unit {
            "" => return Ok(CheckpointEvery::Steps(n as usize)),
            "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            _ => return Err(bad()),
        };
        Ok(CheckpointEvery::Time(Duration::from_secs(secs)))
    }
}

/// Everything a training session needs: new, resumed, or the fine-tuning of a pruned model.
pub(crate) struct Session {
    pub(crate) run: RunDir,
    pub(crate) config: RunConfig,
    pub(crate) data: Dataset,
    /// Held-out validation images (early stopping watches their loss).
    pub(crate) validation: Option<Split>,
    pub(crate) device: Device,
    pub(crate) train_device: Device,
    /// The checkpoint to continue from (none: from the start).
    pub(crate) resume: Option<CheckpointState>,
    pub(crate) started: Instant,
    pub(crate) quiet: bool,
    /// Show burn-train's dashboard where the terminal allows it.
    pub(crate) dashboard: bool,
    /// Stop (resumably) after this many epochs.
    pub(crate) stop_after: Option<usize>,
    /// Stop (resumably) once this many optimizer steps of the run are done.
    pub(crate) stop_after_steps: Option<usize>,
    pub(crate) checkpoint_every: CheckpointEvery,
}

impl Session {
    /// Whether the model must be initialized (a fresh start) rather than read from a checkpoint.
    pub(crate) fn starts_fresh(&self) -> bool {
        self.resume.is_none()
    }

    /// Wall seconds spent before this session.
    fn prior_wall(&self) -> f64 {
        self.resume.as_ref().map_or(0.0, |c| c.wall_seconds)
    }
}

/// `data` as the run `config` uses it: cut to its limits, pixels normalized as it records,
/// and the training split replaced by the run's subset, if it has one; with the validation
/// images that subset holds out (none without one).
pub(crate) fn limit(mut data: Dataset, config: &RunConfig) -> Result<(Dataset, Option<Split>)> {
    data.normalization = config.normalization;
    if let Some(n) = config.train_limit {
        data.train = data.train.truncated(n);
    }
    if let Some(n) = config.test_limit {
        data.test = data.test.truncated(n);
    }
    let mut validation = None;
    if let Some(sub) = config.subset {
        let n = data.train.len();
        let held = sub.validation_images;
        let train = sub.train_images.unwrap_or(n.saturating_sub(held));
        if held.checked_add(train).is_none_or(|total| total > n) || train == 0 {
            bail!(
                "the training split has {n} images: too few for {held} validation images and \
                 {} training images; ask for fewer",
                sub.train_images
                    .map_or("any".to_string(), |t| t.to_string())
            );
        }
        let order = data::subset_order(n, sub.seed);
        if held > 0 {
            validation = Some(data.train.select(&order[..held]));
        }
        data.train = data.train.select(&order[held..held + train]);
    }
    if config.early_stop && validation.is_none() {
        bail!(
            "early stopping needs held-out validation images (a subset with validation_images > 0)"
        );
    }
    Ok((data, validation))
}

fn optimizer(spec: &OptimizerSpec) -> ModuleOptimizer {
    let decay = (spec.weight_decay > 0.0).then(|| WeightDecayConfig::new(spec.weight_decay as f32));
    match spec.kind {
        OptimizerKind::Adam => AdamConfig::new()
            .with_beta_1(spec.beta1 as f32)
            .with_beta_2(spec.beta2 as f32)
            .with_epsilon(spec.epsilon as f32)
            .with_weight_decay(decay)
            .init(),
        OptimizerKind::Sgd => SgdConfig::new()
            .with_weight_decay(decay)
            .with_momentum((spec.momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(spec.momentum)
                    .with_dampening(0.0)
            }))
            .init(),
    }
}

/// Where a checkpoint stands: `epochs_done` epochs and `steps_done` steps of the next.
struct Position {
    epochs_done: usize,
    steps_done: usize,
    global_step: usize,
    partial: PartialEpoch,
}

/// Save the model and optimizer at `at`. Each file is written atomically, `state.json` last,
/// naming the files; files it does not name (an older checkpoint, or the remains of a write
/// that was interrupted) are removed only after it, so a kill at any moment leaves a
/// consistent checkpoint.
fn save_checkpoint<M: Classifier>(
    s: &Session,
    model: &M,
    optim: &ModuleOptimizer,
    at: Position,
) -> Result<()> {
    let dir = s.run.checkpoint();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tag = format!("e{}-s{}", at.epochs_done, at.steps_done);
    let files = [format!("{tag}.model.bpk"), format!("{tag}.optimizer.bpk")];
    save_module(model.clone(), &dir.join(&files[0]))?;
    let bytes = optim
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("cannot serialize the optimizer state: {e}"))?;
    write_atomic(&dir.join(&files[1]), &bytes)?;
    write_json(
        &dir.join(STATE),
        &CheckpointState {
            epochs_done: at.epochs_done,
            steps_done: at.steps_done,
            partial: at.partial,
            global_step: at.global_step,
            wall_seconds: s.prior_wall() + s.started.elapsed().as_secs_f64(),
            weights_sha256: weights_sha256(model),
            optimizer_sha256: Some(crate::statedict::sha256_hex(&bytes)),
            files: Some(files.clone()),
        },
    )?;
    for entry in std::fs::read_dir(&dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != STATE && !files.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Keep the weights after `step` optimizer steps in `snapshots/` (written again, with the same
/// bits, if a resumed run passes the same step).
fn save_snapshot<M: Classifier>(s: &Session, model: &M, step: usize) -> Result<()> {
    let dir = s.run.snapshots();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    save_module(model.valid(), &s.run.snapshot(step))
}

/// `checkpoint/state.json`.
pub(crate) const STATE: &str = "state.json";

/// The model and optimizer files a checkpoint names.
fn checkpoint_files(s: &Session, state: &CheckpointState) -> Result<[PathBuf; 2]> {
    let dir = s.run.checkpoint();
    match &state.files {
        Some(names) => {
            for n in names {
                // Plain names of files in `checkpoint/`: nothing that leads out of it.
                let plain = std::path::Path::new(n)
                    .file_name()
                    .is_some_and(|f| f == n.as_str());
                if !plain || n.starts_with('.') {
                    bail!(
                        "{}: the checkpoint file name {n:?} is not a plain file name in {}; the \
                         checkpoint is corrupt: start the run again with --force",
                        dir.join(STATE).display(),
                        dir.display()
                    );
                }
            }
            Ok(names.clone().map(|n| dir.join(n)))
        }
        None => Ok(["model", "optimizer"]
            .map(|what| dir.join(format!("epoch-{}.{what}.bpk", state.epochs_done)))),
    }
}

fn load_checkpoint<M: Classifier>(
    s: &Session,
    state: &CheckpointState,
    model: M,
) -> Result<(M, ModuleOptimizer)> {
    let [model_path, optim_path] = checkpoint_files(s, state)?;
    let model = load_module(model, &model_path, &s.config.model)?;
    if weights_sha256(&model) != state.weights_sha256 {
        bail!(
            "the checkpoint in {} is inconsistent (weights do not match state.json); start the \
             run again with --force",
            s.run.checkpoint().display()
        );
    }
    let bytes = std::fs::read(&optim_path)
        .with_context(|| format!("cannot read {}", optim_path.display()))?;
    if let Some(expected) = &state.optimizer_sha256
        && *expected != crate::statedict::sha256_hex(&bytes)
    {
        bail!(
            "{} is not the optimizer state that {} records (its SHA-256 differs): the checkpoint \
             is corrupt; start the run again with --force",
            optim_path.display(),
            s.run.checkpoint().join(STATE).display()
        );
    }
    let optim = optimizer(&s.config.optimizer)
        .from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("{} is not a valid optimizer state", optim_path.display()))?;
    Ok((model, optim))
}

/// Train `model` for the session's remaining epochs, calling `after_step` on the model after
/// every optimizer step.
pub(crate) fn fit<M: Classifier>(
    model: M,
    s: &Session,
    after_step: impl Fn(M) -> M,
) -> Result<Outcome> {
    let cfg = &s.config;
    let (train, test, norm) = (&s.data.train, &s.data.test, &s.data.normalization);
    let (mut model, mut optim) = match &s.resume {
        Some(state) => load_checkpoint(s, state, model)?,
        None => (model, optimizer(&cfg.optimizer)),
    };
    let (start_epoch, start_step, start_partial, mut global_step) = s
        .resume
        .as_ref()
        .map_or((0, 0, PartialEpoch::default(), 0), |c| {
            (c.epochs_done, c.steps_done, c.partial, c.global_step)
        });
    let steps = Batches::count(train.len(), cfg.batch_size);
    let spec = &cfg.optimizer;
    let mut rates = LearningRates::at(
        &spec.lr_schedule,
        spec.lr,
        steps,
        steps * cfg.epochs,
        global_step,
    )?;
    let mut metrics = s.run.load_metrics()?;
    metrics.truncate(start_epoch);
    s.run.write_metrics(&metrics)?;

    let mut report = Reporter::new(s.quiet, s.dashboard);
    report.line(format!(
        "{} {} · {} params · {} · seed {} · {} train / {} test images from {} · {} · {} epochs{}",
        if s.resume.is_some() {
            "resuming"
        } else {
            "training"
        },
        cfg.model.describe(),
        model.num_params(),
        cfg.init.spec,
        cfg.seed,
        train.len(),
        test.len(),
        cfg.data.location,
        cfg.backend,
        cfg.epochs,
        if spec.lr_schedule.is_constant() {
            String::new()
        } else {
            format!(" · lr {} {}", spec.lr, spec.lr_schedule)
        }
    ));
    if let Some(c) = &s.resume {
        report.line(format!(
            "  from the checkpoint after epoch {}{}",
            c.epochs_done,
            if c.steps_done > 0 {
                format!(" and {} steps of epoch {}", c.steps_done, c.epochs_done + 1)
            } else {
                String::new()
            }
        ));
    }
    report.start(
        cfg.epochs,
        start_epoch,
        &format!("{} · {}", s.run.path.display(), cfg.model.describe()),
    );

    if s.resume.is_none() && cfg.snapshot_steps.contains(&0) {
        save_snapshot(s, &model, 0)?;
    }
    let loss_fn = CrossEntropyLoss::new(None, &s.train_device);
    let workers = crate::parallel::Workers::new(cfg.workers)?;
    let (mut xb, mut yb) = (Vec::new(), Vec::new());
    let mut last_checkpoint = Instant::now();
    for epoch in start_epoch..cfg.epochs {
        let order = epoch_order(train.len(), cfg.seed, epoch);
        let (first, prior) = if epoch == start_epoch {
            (start_step, start_partial)
        } else {
            (0, PartialEpoch::default())
        };
        report.start_epoch(
            (epoch + 1, cfg.epochs),
            (steps, first),
            (order.len(), prior.seen),
        );
        let t0 = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (prior.loss_sum, prior.correct, prior.seen);
        let train_seconds = || prior.train_seconds + t0.elapsed().as_secs_f64();
        for (step, idx) in Batches::new(&order, cfg.batch_size).enumerate().skip(first) {
            let n = idx.len();
            let (x, y) = batch_tensors(train, idx, norm, &s.train_device, &mut xb, &mut yb);
            let result = crate::parallel::step(&model, x, y, &loss_fn, &workers);
            let loss_value = result.loss;
            let lr = rates.next();
            if !loss_value.is_finite() {
                bail!(
                    "the training loss became {loss_value} at epoch {}, step {}/{steps}; the \
                     learning rate ({lr}) is probably too high for this initialization. {}",
                    epoch + 1,
                    step + 1,
                    if s.run.checkpoint().join(STATE).exists() {
                        format!(
                            "The last checkpoint is kept in {}.",
                            s.run.checkpoint().display()
                        )
                    } else {
                        "There is no checkpoint.".to_string()
                    }
                );
            }
            model = after_step(optim.step(lr, model, result.grads));
            global_step += 1;
            if cfg.snapshot_steps.contains(&global_step) {
                save_snapshot(s, &model, global_step)?;
            }
            loss_sum += loss_value as f64 * n as f64;
            correct += result.hits;
            seen += n;
            report.step(&StepReport {
                step: step + 1,
                epoch_images: seen,
                batch_loss: loss_value as f64,
                batch_accuracy: result.hits as f64 / n as f64,
                loss: loss_sum / seen as f64,
                accuracy: correct as f64 / seen as f64,
                images_per_sec: report.images_per_sec(seen),
                lr,
            });
            let stop = report.stop_requested() || s.stop_after_steps == Some(global_step);
            if stop
                || (step + 1 < steps && s.checkpoint_every.due(step + 1, last_checkpoint.elapsed()))
            {
                let at = Position {
                    epochs_done: epoch,
                    steps_done: step + 1,
                    global_step,
                    partial: PartialEpoch {
                        loss_sum,
                        correct,
                        seen,
                        train_seconds: train_seconds(),
                    },
                };
                save_checkpoint(s, &model.valid(), &optim, at)?;
                last_checkpoint = Instant::now();
                if stop {
                    return Ok(Outcome::Stopped {
                        epochs_done: epoch,
                        steps_done: step + 1,
                        steps,
                    });
                }
            }
        }
        let train_seconds = train_seconds();
        report.evaluating(test.len());
        let valid = model.valid();
        // A failure here names the run, and a resumed one its checkpoint's optimizer state.
        let evaluating = |what: &str| {
            format!(
                "evaluating the {what} of {} after epoch {}{}",
                s.run.path.display(),
                epoch + 1,
                if s.resume.is_some() {
                    format!(
                        " (resumed from {}: if the weights became NaN, its optimizer state may be \
                         corrupt)",
                        s.run.checkpoint().display()
                    )
                } else {
                    String::new()
                }
            )
        };
        let ev = evaluate(&valid, test, norm, &s.device, NUM_CLASSES)
            .with_context(|| evaluating("test split"))?;
        let validation_loss = match &s.validation {
            Some(v) => Some(
                evaluate(&valid, v, norm, &s.device, NUM_CLASSES)
                    .with_context(|| evaluating("validation images"))?
                    .loss,
            ),
            None => None,
        };
        // The epoch (index into `metrics`) with the lowest validation loss so far.
        let best = (0..metrics.len())
            .filter(|&i| metrics[i].validation_loss.is_some())
            .min_by(|&a, &b| {
                let loss = |i: usize| metrics[i].validation_loss.unwrap_or(f64::INFINITY);
                loss(a).total_cmp(&loss(b))
            });
        let stop_early = cfg.early_stop
            && best.is_some_and(|b| {
                validation_loss.is_some_and(|v| {
                    let best = metrics[b].validation_loss.unwrap_or(v);
                    v.partial_cmp(&best) != Some(std::cmp::Ordering::Less)
                })
            });
        let m = EpochMetrics {
            seconds: t0.elapsed().as_secs_f64(),
            epoch: epoch + 1,
            train_loss: loss_sum / seen as f64,
            train_accuracy: correct as f64 / seen as f64,
            test_loss: ev.loss,
            test_accuracy: ev.accuracy,
            train_seconds,
            train_images_per_sec: seen as f64 / train_seconds.max(1e-9),
            lr: rates.last(),
            validation_loss,
        };
        report.end_epoch(&m, cfg.epochs, test.len());
        metrics.push(m);
        s.run.write_metrics(&metrics)?;
        if let Some(b) = best.filter(|_| stop_early) {
            // The validation loss stopped falling: keep the best epoch's weights, which were
            // written when that epoch ended.
            report.line(format!(
                "  validation loss did not fall after epoch {}: stopping, keeping epoch {}",
                epoch + 1,
                b + 1
            ));
            let kept = crate::run::load_module(valid, &s.run.model(), &cfg.model)?;
            let hash = weights_sha256(&kept);
            return finish(s, &kept, &metrics, b, hash).map(Outcome::Finished);
        }
        if cfg.early_stop && epoch + 1 < cfg.epochs {
            // The best so far: kept in case a later epoch is worse.
            save_module(valid.clone(), &s.run.model())?;
        }
        if epoch + 1 < cfg.epochs {
            let at = Position {
                epochs_done: epoch + 1,
                steps_done: 0,
                global_step,
                partial: PartialEpoch::default(),
            };
            save_checkpoint(s, &valid, &optim, at)?;
            last_checkpoint = Instant::now();
            if s.stop_after == Some(epoch + 1) || report.stop_requested() {
                return Ok(Outcome::Stopped {
                    epochs_done: epoch + 1,
                    steps_done: 0,
                    steps,
                });
            }
        } else {
            let hash = weights_sha256(&valid);
            let last = metrics.len() - 1;
            return finish(s, &valid, &metrics, last, hash).map(Outcome::Finished);
        }
    }
    unreachable!("the last epoch returns")
}

/// Write the finished run: `model` (the weights of epoch `kept`, an index into `metrics`) and
/// its summary, and remove the checkpoint.
fn finish<M: Classifier>(
    s: &Session,
    model: &M,
    metrics: &[EpochMetrics],
    kept: usize,
    weights_sha256: String,
) -> Result<Summary> {
    save_module(model.clone(), &s.run.model())?;
    let last = &metrics[kept];
    let n = metrics.len() as f64;
    let summary = Summary {
        epochs: metrics.len(),
        test_accuracy: last.test_accuracy,
        test_loss: last.test_loss,
        train_loss: Some(last.train_loss),
        num_params: model.num_params(),
        train_images_per_sec: metrics.iter().map(|m| m.train_images_per_sec).sum::<f64>() / n,
        epoch_seconds: metrics.iter().map(|m| m.seconds).sum::<f64>() / n,
        wall_seconds: s.prior_wall() + s.started.elapsed().as_secs_f64(),
        weights_sha256,
        backend: s.config.backend,
        best_epoch: (kept + 1 < metrics.len()).then_some(kept + 1),
    };
    write_json(&s.run.summary(), &summary)?;
    let _ = std::fs::remove_dir_all(s.run.checkpoint());
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_intervals() {
        let parse = |s: &str| s.parse::<CheckpointEvery>();
        assert_eq!(parse("500"), Ok(CheckpointEvery::Steps(500)));
        assert_eq!(
            parse("90s"),
            Ok(CheckpointEvery::Time(Duration::from_secs(90)))
        );
        assert_eq!(
            parse("5m"),
            Ok(CheckpointEvery::Time(Duration::from_secs(300)))
        );
        assert_eq!(
            parse("1h"),
            Ok(CheckpointEvery::Time(Duration::from_secs(3600)))
        );
        assert_eq!(parse("epoch"), Ok(CheckpointEvery::Never));
        for bad in ["0", "5x", "m", "", "-3", "1.5m"] {
            assert!(
                parse(bad)
                    .unwrap_err()
                    .contains("not a checkpoint interval"),
                "{bad}"
            );
        }
        let every = CheckpointEvery::Steps(3);
        assert!(every.due(6, Duration::ZERO) && !every.due(7, Duration::ZERO));
        let every = CheckpointEvery::Time(Duration::from_secs(60));
        assert!(every.due(1, Duration::from_secs(61)) && !every.due(1, Duration::from_secs(59)));
        assert!(!CheckpointEvery::Never.due(1, Duration::from_secs(1_000_000)));
    }
}
