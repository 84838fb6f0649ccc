//! `trainer train`: a new run, or the resumption of an interrupted one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use data::{DataSource, Dataset, Split};
use model::{Classifier, with_model};

use crate::backend::BackendKind;
use crate::cli::{Arch, ModelArgs};
use crate::fsio::{read_json, write_json};
use crate::run::{
    BURN_VERSION, CheckpointState, FORMAT, InitRecord, OptimizerKind, OptimizerSpec, RunConfig,
    RunDir,
};
use crate::schedule::{LearningRates, LrSchedule, SCHEDULE_HELP};
use crate::training::{CheckpointEvery, DEFAULT_BATCH_SIZE, Outcome, STATE, Session, fit, limit};

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
    /// Continue an interrupted run from its last checkpoint (from the start if it has none). The
    /// run's options are read from its config.json, so only --data, --quiet, --dashboard and
    /// --checkpoint-every may be given; the result is bit-identical to an uninterrupted run.
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// The model.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Seed of every random draw: initialization and shuffling.
    #[arg(long, default_value_t = 0, conflicts_with = "resume")]
    pub seed: u64,
    /// Number of passes over the training data.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=10_000), conflicts_with = "resume")]
    pub epochs: u64,
    /// Images per optimizer step.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH_SIZE, value_parser = clap::value_parser!(u64).range(1..=65_536), conflicts_with = "resume")]
    pub batch_size: u64,
    /// Learning rate [default: 0.001 for adam, 0.05 for sgd].
    #[arg(long, allow_negative_numbers = true, conflicts_with = "resume")]
    pub lr: Option<f64>,
    /// How the learning rate changes: constant, step(EPOCHS[, GAMMA]), exponential(GAMMA),
    /// cosine[(MIN_LR)], linear[(FINAL_LR)], optionally after linear-warmup(STEPS)+ (see --help).
    #[arg(long, value_name = "SCHEDULE", default_value = "constant", conflicts_with = "resume", long_help = SCHEDULE_HELP)]
    pub lr_schedule: LrSchedule,
    /// Optimizer.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adam, conflicts_with = "resume")]
    pub optimizer: OptimizerKind,
    /// SGD momentum, in [0, 1) (`--optimizer sgd` only) [default: 0.9].
    #[arg(long, allow_negative_numbers = true, conflicts_with = "resume")]
    pub momentum: Option<f64>,
    /// L2 weight decay added to the gradients.
    #[arg(
        long,
        default_value_t = 0.0,
        allow_negative_numbers = true,
        conflicts_with = "resume"
    )]
    pub weight_decay: f64,
    /// Dataset directory with the four IDX files (raw or .gz), or `sample` for the embedded
    /// Fashion-MNIST sample [default: datasets/fashion-mnist, then
    /// /usr/share/datasets/fashion-mnist, then the sample].
    #[arg(long, value_name = "DIR")]
    pub data: Option<String>,
    /// Train on the first N training images only.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "resume")]
    pub train_limit: Option<u64>,
    /// Evaluate on the first N test images only.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "resume")]
    pub test_limit: Option<u64>,
    /// Initialization: a scheme for every weight, optionally followed by `;PATTERN=SCHEME`
    /// overrides by parameter path (e.g. `he;fc2.*=xavier-uniform`). Biases are zero unless a
    /// pattern says otherwise (the framework defaults have their own bias rule).
    #[arg(long, value_name = "SPEC", default_value = "burn-default", conflicts_with = "resume", long_help = format!("Initialization: a scheme for every weight, optionally followed by `;PATTERN=SCHEME` overrides by parameter path, e.g. `he;fc2.*=xavier-uniform` or `constant(0.01)+noise(1e-4)`. Biases are zero unless a pattern says otherwise (pytorch-default and burn-default keep their U(±1/√fan_in) bias rule). Every value is drawn on the host from the seed and the parameter's path, so the same seed gives the same initial weights on every backend.\n\nSchemes: {}", init::SCHEME_HELP))]
    pub init: String,
    /// Backend [default: flex].
    #[arg(long, value_enum, conflicts_with = "resume")]
    pub backend: Option<BackendKind>,
    /// Split every batch over this many workers, each computing its part's gradients
    /// single-threaded on its share of the cores (flex trains about 10% faster this way on 2
    /// cores than with 2 threads in one worker); gradients are summed in a fixed order, so results
    /// are bit-deterministic and independent of --threads, but differ in the last bits between
    /// worker counts [default: 2 on the CPU backends, 1 on a GPU].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64), conflicts_with = "resume")]
    pub workers: Option<u64>,
    /// Overwrite RUN_DIR if it already holds a run.
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Print only the final summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Show burn-train's terminal dashboard while training (live loss, accuracy, throughput,
    /// learning rate, progress and ETA), where standard output and input are a terminal. Its
    /// quit key (q, then s) or Ctrl-C stops training at the next step with a checkpoint to
    /// --resume from.
    #[arg(long, conflicts_with = "quiet")]
    pub dashboard: bool,
    /// Write a checkpoint inside an epoch after every N steps (e.g. 500), or when this much time
    /// has passed (90s, 5m, 1h); `epoch` for epochs' ends only. An interrupted run resumes from
    /// its last checkpoint (`--resume`) with the same bits as an uninterrupted one.
    #[arg(long, value_name = "N|TIME|epoch", default_value = "5m")]
    pub checkpoint_every: CheckpointEvery,
    /// Keep the weights after these optimizer steps (comma-separated; 0 is the initial weights)
    /// in RUN_DIR/snapshots/, for `trainer inspect` (how the filters evolve) and
    /// `trainer redundancy --snapshot`. Every step must be within the run.
    #[arg(
        long,
        value_name = "STEPS",
        value_delimiter = ',',
        conflicts_with = "resume"
    )]
    pub snapshot_steps: Vec<u64>,
    /// Stop (as if interrupted) after this many epochs; for testing resumption.
    #[arg(long, hide = true)]
    pub stop_after: Option<usize>,
    /// Stop (as if interrupted, with a checkpoint, as the dashboard's quit key does) once this
    /// many optimizer steps of the run are done; for testing resumption.
    #[arg(long, hide = true)]
    pub stop_after_steps: Option<usize>,
}

/// `trainer train`: train, and print one line about the result.
pub(crate) fn run(args: &TrainArgs) -> Result<()> {
    let run = args
        .resume
        .as_ref()
        .or(args.out.as_ref())
        .expect("clap requires one");
    match train(args)? {
        Outcome::Finished(s) => {
            println!(
                "{}: test accuracy {:.2}%, loss {:.4}, {:.0} img/s, {:.1} s; weights sha256 {}",
                run.display(),
                s.test_accuracy * 100.0,
                s.test_loss,
                s.train_images_per_sec,
                s.wall_seconds,
                &s.weights_sha256[..16]
            );
        }
        stopped @ Outcome::Stopped { .. } => {
            println!(
                "{}: {}; continue with `trainer train --resume {0}`",
                run.display(),
                stopped.stopped_at()
            );
        }
    }
    Ok(())
}

/// Train as `args` say: a new run, or the resumption of an interrupted one.
fn train(args: &TrainArgs) -> Result<Outcome> {
    let started = Instant::now();
    let mut session = match &args.resume {
        Some(dir) => {
            if args.model.any() {
                bail!(
                    "--model, --width, --depth and --activation cannot be given with --resume: \
                     the run's model is read from its config.json"
                );
            }
            let run = RunDir::new(dir);
            if run.summary().exists() && run.model().exists() {
                // Finished (perhaps killed while removing its checkpoint): nothing to resume,
                // which a scheduler that resubmits the same command must see as success.
                if !args.quiet {
                    eprintln!(
                        "{} has already finished training; nothing to resume",
                        dir.display()
                    );
                }
                let _ = std::fs::remove_dir_all(run.checkpoint());
                return Ok(Outcome::Finished(run.load_summary()?));
            }
            resume_session(dir, args, started)?
        }
        None => new_session(args, started)?,
    };
    let spec = session.config.model.clone();
    with_model!(&spec, &session.train_device, |model| {
        let model = if session.starts_fresh() {
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
        match session.run.load_mask(&session.config)? {
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
    if let Some(m) = args.momentum {
        if args.optimizer != OptimizerKind::Sgd {
            bail!("--momentum applies to --optimizer sgd only; Adam has no momentum option");
        }
        if !(0.0..1.0).contains(&m) {
            bail!("--momentum {m} is invalid: it must be in [0, 1)");
        }
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

    let data = load_square_data(args.data.as_deref())?;
    let spec = args.model.spec(data.train.rows, Arch::Ref)?;
    let mut config = RunConfig {
        format: FORMAT,
        filterlab_version: env!("CARGO_PKG_VERSION").to_string(),
        burn_version: BURN_VERSION.to_string(),
        model: spec,
        init: InitRecord {
            spec: crate::init::parse(&args.init)?.to_string(),
            params: Vec::new(),
            lsuv: None,
            initial_weights_sha256: String::new(),
        },
        seed: args.seed,
        epochs: args.epochs as usize,
        batch_size: args.batch_size as usize,
        optimizer: OptimizerSpec {
            lr_schedule: args.lr_schedule,
            ..OptimizerSpec::new(
                args.optimizer,
                lr,
                match args.optimizer {
                    OptimizerKind::Sgd => args.momentum.unwrap_or(0.9),
                    OptimizerKind::Adam => 0.0,
                },
                args.weight_decay,
            )
        },
        data: data.identity.clone(),
        normalization: data.normalization,
        train_limit: args.train_limit.map(|n| n as usize),
        test_limit: args.test_limit.map(|n| n as usize),
        backend,
        threads: rayon::current_num_threads(),
        workers: args
            .workers
            .map_or_else(|| backend.default_workers(), |w| w as usize),
        device: backend.device_description(),
        parent: None,
        prune: None,
        source: None,
        snapshot_steps: Vec::new(),
        subset: None,
        early_stop: false,
    };
    let (data, validation) = limit(data, &config)?;
    check_schedule(
        &config.optimizer,
        data.train.len(),
        config.batch_size,
        config.epochs,
    )?;
    config.snapshot_steps = snapshot_steps(args, &config, data.train.len())?;
    run.clear_outputs();
    Ok(session(
        args,
        run,
        config,
        (data, validation),
        device,
        None,
        started,
    ))
}

/// The training session of `args` over `run`, fresh (`resume` none) or resumed.
fn session(
    args: &TrainArgs,
    run: RunDir,
    config: RunConfig,
    (data, validation): (Dataset, Option<Split>),
    device: Device,
    resume: Option<CheckpointState>,
    started: Instant,
) -> Session {
    Session {
        data,
        validation,
        train_device: device.clone().autodiff(),
        device,
        run,
        config,
        resume,
        started,
        quiet: args.quiet,
        dashboard: args.dashboard,
        stop_after: args.stop_after,
        stop_after_steps: args.stop_after_steps,
        checkpoint_every: args.checkpoint_every,
    }
}

/// Refuse a learning-rate schedule that does not fit a run of `epochs` epochs over
/// `train_images` images in batches of `batch_size` (a warm-up longer than the run, a base rate
/// Burn's scheduler refuses), before anything is written.
pub(crate) fn check_schedule(
    optimizer: &OptimizerSpec,
    train_images: usize,
    batch_size: usize,
    epochs: usize,
) -> Result<()> {
    let steps = data::Batches::count(train_images, batch_size);
    LearningRates::at(
        &optimizer.lr_schedule,
        optimizer.lr,
        steps,
        steps * epochs,
        0,
    )?;
    Ok(())
}

/// `--snapshot-steps`, sorted and without repeats; a step beyond the run's last is refused.
fn snapshot_steps(args: &TrainArgs, config: &RunConfig, train_len: usize) -> Result<Vec<usize>> {
    let total = config.epochs * data::Batches::count(train_len, config.batch_size);
    let mut steps: Vec<usize> = args.snapshot_steps.iter().map(|&s| s as usize).collect();
    steps.sort_unstable();
    steps.dedup();
    if let Some(&last) = steps.last()
        && last > total
    {
        bail!(
            "--snapshot-steps {last} is beyond the run's last step: {} epoch(s) of {} images in \
             batches of {} make {total} steps",
            config.epochs,
            train_len,
            config.batch_size
        );
    }
    Ok(steps)
}

/// The dataset `--data` names (the sample by default), refused unless its images are square,
/// as the models need.
pub(crate) fn load_square_data(data: Option<&str>) -> Result<Dataset> {
    let source = DataSource::resolve(data)?;
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
    Ok(data)
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

fn resume_session(dir: &Path, args: &TrainArgs, started: Instant) -> Result<Session> {
    let run = RunDir::new(dir);
    let config = run.load_config()?;
    let state_path = run.checkpoint().join(STATE);
    let resume = if state_path.exists() {
        Some(read_json::<CheckpointState>(&state_path)?)
    } else if config.prune.is_some() {
        bail!(
            "{} is a pruned run interrupted before its first checkpoint; prune its parent again \
             (trainer prune … --out {0} --force)",
            dir.display()
        );
    } else {
        if !args.quiet {
            eprintln!(
                "{} has no checkpoint yet: training it from the beginning, as configured (the \
                 result is the same as without the interruption)",
                dir.display()
            );
        }
        None
    };
    let data = config.load_data(args.data.as_deref())?;
    if data.identity.sha256 != config.data.sha256 {
        bail!(
            "the dataset at {} (sha256 {}) is not the one the run was trained on (sha256 {})",
            data.identity.location,
            data.identity.sha256,
            config.data.sha256
        );
    }
    let device = config.backend.device()?;
    let data = limit(data, &config)?;
    Ok(session(args, run, config, data, device, resume, started))
}
