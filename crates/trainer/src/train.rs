//! `trainer train`: train a model, evaluate it every epoch, checkpoint, resume.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use burn::tensor::{Bytes, Device};
use data::{Batches, DataOrigin, DataSource, Dataset, epoch_order};
use model::{Activation, Classifier, ModelSpec, PlainCnnConfig, RefCnnConfig, with_model};

use crate::backend::BackendKind;
use crate::eval::{batch_tensors, evaluate};
use crate::fsio::{read_json, write_atomic, write_json};
use crate::progress::EpochProgress;
use crate::run::{
    CheckpointState, EpochMetrics, FORMAT, OptimizerKind, OptimizerSpec, RunConfig, RunDir,
    Summary, load_module, save_module,
};
use crate::weights::weights_sha256;

/// Number of classes of (Fashion-)MNIST.
pub const NUM_CLASSES: usize = data::source::NUM_CLASSES;

/// Architecture choice on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    /// The reference CNN (2 conv + 2 linear layers, 421,642 parameters at width 1).
    Ref,
    /// A deep plain CNN (`--depth` conv 3×3 layers of `--width` channels, GAP, linear head).
    Plain,
}

/// Model options shared by the commands that build a model.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Architecture [default: ref; plain for init-stats].
    #[arg(long, value_enum)]
    pub model: Option<Arch>,
    /// Width: for `ref` a multiplier of its channels (default 1); for `plain` the channels of
    /// every conv layer (default 32).
    #[arg(long, value_name = "W")]
    pub width: Option<f64>,
    /// Number of conv layers of the plain CNN (2–50).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub depth: usize,
    /// Nonlinearity of the plain CNN: relu, leaky-relu, tanh or identity.
    #[arg(long, value_name = "NAME", default_value = "relu")]
    pub activation: Activation,
}

impl ModelArgs {
    /// The model these options describe, for square images of side `image_size`; `default` is
    /// the architecture when `--model` is not given.
    pub fn spec(&self, image_size: usize, default: Arch) -> Result<ModelSpec> {
        let spec = match self.model.unwrap_or(default) {
            Arch::Ref => ModelSpec::Ref(
                RefCnnConfig::new()
                    .with_width(self.width.unwrap_or(1.0))
                    .with_image_size(image_size),
            ),
            Arch::Plain => {
                let width = self.width.unwrap_or(32.0);
                if width.fract() != 0.0 || width < 1.0 {
                    bail!("--width {width} is invalid for the plain CNN: it is a channel count");
                }
                ModelSpec::Plain(
                    PlainCnnConfig::new()
                        .with_depth(self.depth)
                        .with_width(width as usize)
                        .with_activation(self.activation)
                        .with_image_size(image_size),
                )
            }
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// Options of `trainer train`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Directory to write the run to (created; refused if it already holds a run, unless --force).
    #[arg(
        long,
        short,
        value_name = "RUN_DIR",
        required_unless_present = "resume"
    )]
    pub out: Option<PathBuf>,
    /// Continue an interrupted run from its last finished epoch. Every other option is read
    /// from the run's config.json; the result is bit-identical to an uninterrupted run.
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// The model.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Seed of every random draw: initialization and shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of passes over the training data.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub epochs: u64,
    /// Images per optimizer step.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub batch_size: u64,
    /// Learning rate [default: 0.001 for adam, 0.05 for sgd].
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Optimizer.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adam)]
    pub optimizer: OptimizerKind,
    /// SGD momentum, in [0, 1).
    #[arg(long, default_value_t = 0.9, allow_negative_numbers = true)]
    pub momentum: f64,
    /// L2 weight decay added to the gradients.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub weight_decay: f64,
    /// Dataset directory with the four IDX files (raw or .gz), or `sample` for the embedded
    /// Fashion-MNIST sample [default: datasets/fashion-mnist, then
    /// /usr/share/datasets/fashion-mnist, then the sample].
    #[arg(long, value_name = "DIR")]
    pub data: Option<String>,
    /// Train on the first N training images only.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub train_limit: Option<u64>,
    /// Evaluate on the first N test images only.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub test_limit: Option<u64>,
    /// Initialization: a scheme for every weight, optionally followed by `;PATTERN=SCHEME`
    /// overrides by parameter path (e.g. `he;fc2.*=xavier-uniform`). Biases are zero unless a
    /// pattern says otherwise (the framework defaults have their own bias rule).
    #[arg(long, value_name = "SPEC", default_value = "burn-default", long_help = format!("Initialization: a scheme for every weight, optionally followed by `;PATTERN=SCHEME` overrides by parameter path, e.g. `he;fc2.*=xavier-uniform` or `constant(0.01)+noise(1e-4)`. Biases are zero unless a pattern says otherwise (pytorch-default and burn-default keep their U(±1/√fan_in) bias rule). Every value is drawn on the host from the seed and the parameter's path, so the same seed gives the same initial weights on every backend.\n\nSchemes: {}", init::SCHEME_HELP))]
    pub init: String,
    /// Backend [default: flex].
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Split every batch over this many workers, each computing its part's gradients
    /// single-threaded on its share of the cores (flex trains about twice as fast this way on 2
    /// cores as with 2 threads in one worker); gradients are summed in a fixed order, so results
    /// are bit-deterministic and independent of --threads, but differ in the last bits between
    /// worker counts.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub workers: u64,
    /// Overwrite RUN_DIR if it already holds a run.
    #[arg(long)]
    pub force: bool,
    /// Print only the final summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Stop (as if interrupted) after this many epochs; for testing resumption.
    #[arg(long, hide = true)]
    pub stop_after: Option<usize>,
}

/// How a call to [`train`] ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// All epochs done; the summary was written.
    Finished(Summary),
    /// Stopped early on request (`--stop-after`), resumable.
    Stopped {
        /// Epochs finished.
        epochs_done: usize,
    },
}

/// Everything a training session needs: new, resumed, or the fine-tuning of a pruned model.
pub(crate) struct Session {
    pub(crate) run: RunDir,
    pub(crate) config: RunConfig,
    pub(crate) data: Dataset,
    pub(crate) device: Device,
    pub(crate) train_device: Device,
    pub(crate) start_epoch: usize,
    pub(crate) prior_wall: f64,
    pub(crate) started: Instant,
    pub(crate) quiet: bool,
    pub(crate) stop_after: Option<usize>,
}

/// Train as `args` say: a new run, or the resumption of an interrupted one.
pub fn train(args: &TrainArgs) -> Result<Outcome> {
    let started = Instant::now();
    let mut session = match &args.resume {
        Some(dir) => resume_session(dir, args, started)?,
        None => new_session(args, started)?,
    };
    let spec = session.config.model.clone();
    with_model!(&spec, &session.train_device, |model| {
        let model = if session.start_epoch == 0 {
            // A new run: initialize (every value drawn on the host from the seed), then record
            // what was drawn in config.json.
            let init_spec = crate::init::parse(&session.config.init.spec)?;
            let (model, record) = crate::init::initialize(
                model,
                &init_spec,
                session.config.seed,
                &session.data.train,
                &session.data.normalization,
                &session.train_device,
            )?;
            session.config.init = record;
            write_json(&session.run.config(), &session.config)?;
            model
        } else {
            model
        };
        // A pruned run keeps its pruned filters at zero through every optimizer step.
        match crate::pruning::load_mask(&session.run, &session.config)? {
            Some(mask) => {
                let enforcer =
                    prune::DeviceMask::new(&mask, &model.layers(), &session.train_device)?;
                fit(model, &session, |m| enforcer.enforce(m))
            }
            None => fit(model, &session, |m| m),
        }
    })
}

fn validate_hyper(args: &TrainArgs, lr: f64) -> Result<()> {
    if !(lr.is_finite() && lr > 0.0) {
        bail!("--lr {lr} is invalid: the learning rate must be a positive number");
    }
    if !(0.0..1.0).contains(&args.momentum) {
        bail!(
            "--momentum {} is invalid: it must be in [0, 1)",
            args.momentum
        );
    }
    if !(args.weight_decay.is_finite() && args.weight_decay >= 0.0) {
        bail!(
            "--weight-decay {} is invalid: it must be ≥ 0",
            args.weight_decay
        );
    }
    crate::init::parse(&args.init)?;
    Ok(())
}

fn new_session(args: &TrainArgs, started: Instant) -> Result<Session> {
    let out = args
        .out
        .as_ref()
        .expect("clap requires --out without --resume");
    let lr = args.lr.unwrap_or(match args.optimizer {
        OptimizerKind::Adam => 1e-3,
        OptimizerKind::Sgd => 0.05,
    });
    validate_hyper(args, lr)?;
    let backend = args.backend.unwrap_or_else(BackendKind::default_compiled);
    let device = backend.device()?;

    let run = RunDir::new(out);
    if run.config().exists() && !args.force {
        bail!(
            "{} already holds a run; use --resume {0} to continue it, --force to overwrite it, or \
             another --out",
            out.display()
        );
    }
    prepare_dir(out)?;

    let source = DataSource::resolve(args.data.as_deref())?;
    let data = source
        .load()
        .with_context(|| format!("cannot load the dataset from {}", source.location()))?;
    if data.train.rows != data.train.cols {
        bail!(
            "images are {}×{}; the models need square images",
            data.train.rows,
            data.train.cols
        );
    }
    let spec = args.model.spec(data.train.rows, Arch::Ref)?;
    let config = RunConfig {
        format: FORMAT,
        filterlab_version: env!("CARGO_PKG_VERSION").to_string(),
        burn_version: "0.22.1".to_string(),
        model: spec,
        init: crate::init::InitRecord {
            spec: crate::init::parse(&args.init)?.to_string(),
            params: Vec::new(),
            lsuv: None,
            initial_weights_sha256: String::new(),
        },
        seed: args.seed,
        epochs: args.epochs as usize,
        batch_size: args.batch_size as usize,
        optimizer: OptimizerSpec {
            kind: args.optimizer,
            lr,
            momentum: match args.optimizer {
                OptimizerKind::Sgd => args.momentum,
                OptimizerKind::Adam => 0.0,
            },
            weight_decay: args.weight_decay,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        },
        data: data.identity.clone(),
        normalization: data.normalization,
        train_limit: args.train_limit.map(|n| n as usize),
        test_limit: args.test_limit.map(|n| n as usize),
        backend,
        threads: rayon::current_num_threads(),
        workers: args.workers as usize,
        parent: None,
        prune: None,
    };
    run.clear_outputs();
    Ok(Session {
        data: limit(data, &config),
        train_device: device.clone().autodiff(),
        device,
        run,
        config,
        start_epoch: 0,
        prior_wall: 0.0,
        started,
        quiet: args.quiet,
        stop_after: args.stop_after,
    })
}

/// Create `dir` (and parents), checking it is writable.
fn prepare_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the run directory {}", dir.display()))?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("the run directory {} is not writable", dir.display()))?;
    std::fs::remove_file(probe)?;
    Ok(())
}

/// The dataset the run's config names, checked against its recorded hash.
pub fn load_run_data(config: &RunConfig, override_dir: Option<&str>) -> Result<Dataset> {
    let source = match override_dir {
        Some(dir) => DataSource::resolve(Some(dir))?,
        None if config.data.origin == DataOrigin::Sample => DataSource::sample(),
        None => {
            let dir = PathBuf::from(&config.data.location);
            if !dir.is_dir() {
                bail!(
                    "the run's dataset directory {} no longer exists; pass --data DIR",
                    dir.display()
                );
            }
            DataSource {
                origin: config.data.origin,
                dir: Some(dir),
            }
        }
    };
    source
        .load()
        .with_context(|| format!("cannot load the dataset from {}", source.location()))
}

pub(crate) fn limit(mut data: Dataset, config: &RunConfig) -> Dataset {
    if let Some(n) = config.train_limit {
        data.train = data.train.truncated(n);
    }
    if let Some(n) = config.test_limit {
        data.test = data.test.truncated(n);
    }
    data
}

fn resume_session(dir: &Path, args: &TrainArgs, started: Instant) -> Result<Session> {
    let run = RunDir::new(dir);
    let config = run.load_config()?;
    if run.summary().exists() {
        bail!("{} has already finished training", dir.display());
    }
    let state_path = run.checkpoint().join("state.json");
    if !state_path.exists() {
        bail!(
            "{} has no checkpoint to resume from (it was interrupted during its first epoch); \
             start it again with --out {0} --force",
            dir.display()
        );
    }
    let state: CheckpointState = read_json(&state_path)?;
    let data = load_run_data(&config, args.data.as_deref())?;
    if data.identity.sha256 != config.data.sha256 {
        bail!(
            "the dataset at {} (sha256 {}) is not the one the run was trained on (sha256 {})",
            data.identity.location,
            data.identity.sha256,
            config.data.sha256
        );
    }
    let device = config.backend.device()?;
    Ok(Session {
        data: limit(data, &config),
        train_device: device.clone().autodiff(),
        device,
        start_epoch: state.epochs_done,
        prior_wall: state.wall_seconds,
        run,
        config,
        started,
        quiet: args.quiet,
        stop_after: args.stop_after,
    })
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

fn checkpoint_file(s: &Session, epoch: usize, what: &str) -> PathBuf {
    s.run.checkpoint().join(format!("epoch-{epoch}.{what}.bpk"))
}

/// Save the model and optimizer after `epochs_done` epochs. `state.json` is written last and
/// names the files, so an interruption at any moment leaves a consistent checkpoint.
fn save_checkpoint<M: Classifier>(
    s: &Session,
    model: &M,
    optim: &ModuleOptimizer,
    epochs_done: usize,
    hash: &str,
) -> Result<()> {
    std::fs::create_dir_all(s.run.checkpoint())
        .with_context(|| format!("cannot create {}", s.run.checkpoint().display()))?;
    save_module(model.clone(), &checkpoint_file(s, epochs_done, "model"))?;
    let bytes = optim
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("cannot serialize the optimizer state: {e}"))?;
    write_atomic(&checkpoint_file(s, epochs_done, "optimizer"), &bytes)?;
    write_json(
        &s.run.checkpoint().join("state.json"),
        &CheckpointState {
            epochs_done,
            wall_seconds: s.prior_wall + s.started.elapsed().as_secs_f64(),
            weights_sha256: hash.to_string(),
        },
    )?;
    if epochs_done > 1 {
        for what in ["model", "optimizer"] {
            let _ = std::fs::remove_file(checkpoint_file(s, epochs_done - 1, what));
        }
    }
    Ok(())
}

fn load_checkpoint<M: Classifier>(s: &Session, model: M) -> Result<(M, ModuleOptimizer)> {
    let epoch = s.start_epoch;
    let model = load_module(model, &checkpoint_file(s, epoch, "model"), &s.config.model)?;
    let state: CheckpointState = read_json(&s.run.checkpoint().join("state.json"))?;
    if weights_sha256(&model) != state.weights_sha256 {
        bail!(
            "the checkpoint in {} is inconsistent (weights do not match state.json); start the \
             run again with --force",
            s.run.checkpoint().display()
        );
    }
    let path = checkpoint_file(s, epoch, "optimizer");
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let optim = optimizer(&s.config.optimizer)
        .from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("{} is not a valid optimizer state", path.display()))?;
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
    let (mut model, mut optim) = if s.start_epoch > 0 {
        load_checkpoint(s, model)?
    } else {
        (model, optimizer(&cfg.optimizer))
    };
    let mut metrics = s.run.load_metrics()?;
    metrics.truncate(s.start_epoch);
    s.run.write_metrics(&metrics)?;

    if !s.quiet {
        eprintln!(
            "{} {} · {} params · {} · seed {} · {} train / {} test images from {} · {} · {} epochs",
            if s.start_epoch > 0 {
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
        );
        if s.start_epoch > 0 {
            eprintln!("  from the checkpoint after epoch {}", s.start_epoch);
        }
    }

    let loss_fn = CrossEntropyLoss::new(None, &s.train_device);
    let workers = crate::parallel::Workers::new(cfg.workers)?;
    let (mut xb, mut yb) = (Vec::new(), Vec::new());
    for epoch in s.start_epoch..cfg.epochs {
        let order = epoch_order(train.len(), cfg.seed, epoch);
        let steps = Batches::count(order.len(), cfg.batch_size);
        let mut progress = EpochProgress::new(epoch + 1, cfg.epochs, steps, s.quiet);
        let t0 = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0i64, 0usize);
        for (step, idx) in Batches::new(&order, cfg.batch_size).enumerate() {
            let n = idx.len();
            let (x, y) = batch_tensors(train, idx, norm, &s.train_device, &mut xb, &mut yb);
            let result = crate::parallel::step(&model, x, y, &loss_fn, &workers);
            let loss_value = result.loss;
            if !loss_value.is_finite() {
                progress.finish();
                bail!(
                    "the training loss became {loss_value} at epoch {}, step {}/{steps}; the \
                     learning rate ({}) is probably too high for this initialization. {}",
                    epoch + 1,
                    step + 1,
                    cfg.optimizer.lr,
                    if epoch > 0 {
                        format!(
                            "The checkpoint after epoch {epoch} is kept in {}.",
                            s.run.checkpoint().display()
                        )
                    } else {
                        "No epoch had finished, so there is no checkpoint.".to_string()
                    }
                );
            }
            model = after_step(optim.step(cfg.optimizer.lr, model, result.grads));
            loss_sum += loss_value as f64 * n as f64;
            correct += result.hits;
            seen += n;
            progress.step(
                step + 1,
                seen,
                loss_sum / seen as f64,
                correct as f64 / seen as f64,
            );
        }
        progress.finish();
        let train_seconds = t0.elapsed().as_secs_f64();
        let valid = model.valid();
        let ev = evaluate(&valid, test, norm, &s.device, NUM_CLASSES)?;
        let m = EpochMetrics {
            seconds: t0.elapsed().as_secs_f64(),
            epoch: epoch + 1,
            train_loss: loss_sum / seen as f64,
            train_accuracy: correct as f64 / seen as f64,
            test_loss: ev.loss,
            test_accuracy: ev.accuracy,
            train_seconds,
            train_images_per_sec: seen as f64 / train_seconds.max(1e-9),
        };
        if !s.quiet {
            eprintln!(
                "epoch {}/{}: train loss {:.4} acc {:.2}% | test loss {:.4} acc {:.2}% | {:.1} s, \
                 {:.0} img/s",
                m.epoch,
                cfg.epochs,
                m.train_loss,
                m.train_accuracy * 100.0,
                m.test_loss,
                m.test_accuracy * 100.0,
                m.seconds,
                m.train_images_per_sec
            );
        }
        metrics.push(m);
        s.run.write_metrics(&metrics)?;
        let hash = weights_sha256(&valid);
        if epoch + 1 < cfg.epochs {
            save_checkpoint(s, &valid, &optim, epoch + 1, &hash)?;
            if s.stop_after == Some(epoch + 1) {
                return Ok(Outcome::Stopped {
                    epochs_done: epoch + 1,
                });
            }
        } else {
            return finish(s, &valid, &metrics, hash).map(Outcome::Finished);
        }
    }
    unreachable!("the last epoch returns")
}

fn finish<M: Classifier>(
    s: &Session,
    model: &M,
    metrics: &[EpochMetrics],
    weights_sha256: String,
) -> Result<Summary> {
    save_module(model.clone(), &s.run.model())?;
    let last = metrics.last().expect("at least one epoch");
    let n = metrics.len() as f64;
    let summary = Summary {
        epochs: metrics.len(),
        test_accuracy: last.test_accuracy,
        test_loss: last.test_loss,
        train_loss: Some(last.train_loss),
        num_params: model.num_params(),
        train_images_per_sec: metrics.iter().map(|m| m.train_images_per_sec).sum::<f64>() / n,
        epoch_seconds: metrics.iter().map(|m| m.seconds).sum::<f64>() / n,
        wall_seconds: s.prior_wall + s.started.elapsed().as_secs_f64(),
        weights_sha256,
        backend: s.config.backend,
    };
    write_json(&s.run.summary(), &summary)?;
    let _ = std::fs::remove_dir_all(s.run.checkpoint());
    Ok(summary)
}
