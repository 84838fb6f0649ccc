//! The run directory: the unit of exchange between commands.
//!
//! ```text
//! RUN_DIR/
//!   config.json     everything needed to rebuild the model and repeat the run
//!   metrics.jsonl   one line per finished epoch
//!   model.bpk       final weights (Burnpack)
//!   summary.json    final accuracy, loss, throughput, wall time, weights hash
//!   checkpoint/     last finished epoch (model, optimizer, state); removed when the run ends
//! ```
//! Every file is written atomically.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Device;
use data::{DataOrigin, DataSource, Dataset, DatasetIdentity, Normalization, Split};
use model::{Classifier, ModelSpec};
use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::fsio::{read_json, write_atomic};
use crate::schedule::LrSchedule;

/// Version of the run-directory format.
pub const FORMAT: u32 = 2;

/// The Burn version filterlab is built on, recorded in every run.
pub const BURN_VERSION: &str = "0.22.1";

/// Optimizer family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// Adam (β₁ 0.9, β₂ 0.999, ε 1e-8 as in PyTorch; Burn's own default ε is 1e-5).
    Adam,
    /// SGD with optional momentum.
    Sgd,
}

/// The optimizer and its hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerSpec {
    /// Adam or SGD.
    pub kind: OptimizerKind,
    /// Base learning rate: the schedule's starting point (the rate throughout if constant).
    pub lr: f64,
    /// How the learning rate changes from step to step (`--lr-schedule`); runs written before
    /// schedules existed have none, which is the constant schedule.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// SGD momentum (0 for none); unused by Adam.
    pub momentum: f64,
    /// L2 weight decay added to the gradient (0 for none).
    pub weight_decay: f64,
    /// Adam β₁.
    pub beta1: f64,
    /// Adam β₂.
    pub beta2: f64,
    /// Adam ε.
    pub epsilon: f64,
}

impl OptimizerSpec {
    /// `kind` with learning rate `lr`, SGD `momentum` (0 for Adam), `weight_decay`, and Adam's
    /// β₁ 0.9, β₂ 0.999 and ε 1e-8 (PyTorch's defaults).
    pub fn new(kind: OptimizerKind, lr: f64, momentum: f64, weight_decay: f64) -> Self {
        OptimizerSpec {
            kind,
            lr,
            lr_schedule: LrSchedule::default(),
            momentum,
            weight_decay,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        }
    }
}

/// Everything needed to rebuild the model and repeat the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Run-directory format version.
    pub format: u32,
    /// filterlab version that wrote the run.
    pub filterlab_version: String,
    /// Burn version.
    pub burn_version: String,
    /// Architecture.
    pub model: ModelSpec,
    /// Initialization: the spec, and the scheme and law of every parameter.
    pub init: InitRecord,
    /// Seed of every random draw (initialization, shuffling).
    pub seed: u64,
    /// Number of epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Optimizer.
    pub optimizer: OptimizerSpec,
    /// The data the run was trained on.
    pub data: DatasetIdentity,
    /// Input normalization: `(p / 255 − mean) / std` with the training split's statistics.
    pub normalization: Normalization,
    /// Training examples used (a prefix of the training split), if limited.
    pub train_limit: Option<usize>,
    /// Test examples used (a prefix of the test split), if limited.
    pub test_limit: Option<usize>,
    /// Backend that ran the training.
    pub backend: BackendKind,
    /// Worker threads of the CPU backends.
    pub threads: usize,
    /// Data-parallel workers each batch is split over (1: none).
    #[serde(default = "one")]
    pub workers: usize,
    /// The device that ran it, in words, where the backend has a choice (the GPU adapter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The run this one was derived from (pruning), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentRun>,
    /// How this run was pruned from its parent, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<PruneSettings>,
    /// The file the weights were imported from (`trainer import`), if they were; a run derived
    /// from an imported one (pruning) keeps its ancestor's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ImportSource>,
    /// Optimizer steps after which the weights are kept in `snapshots/` (0: the initial ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshot_steps: Vec<usize>,
    /// A fixed seeded subset of the training split to train on, and held-out validation images
    /// (after `train_limit`), if the run uses one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<TrainSubset>,
    /// Stop after the first epoch whose validation loss does not fall below the best so far,
    /// keeping the best epoch's weights (needs `subset` with validation images).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub early_stop: bool,
}

/// A fixed random subset of the training split: the split is shuffled with `seed` (a stream of
/// its own, `data::subset_order`), the first `validation_images` are held out for validation
/// and the next `train_images` (all the rest if absent) are trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainSubset {
    /// Seed of the shuffle.
    pub seed: u64,
    /// Images trained on (all that are not held out if absent).
    pub train_images: Option<usize>,
    /// Images held out for validation.
    pub validation_images: usize,
}

fn one() -> usize {
    1
}

/// The run a derived run started from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParentRun {
    /// Its directory, as given.
    pub path: String,
    /// Hash of its weights.
    pub weights_sha256: String,
    /// Its test accuracy.
    pub test_accuracy: f64,
}

/// The state-dict file an imported run's weights came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportSource {
    /// The file (absolute path).
    pub file: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// Its container.
    pub format: SourceFormat,
    /// The `--rename` rules applied to its keys, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renames: Vec<String>,
    /// Tensors stored in another floating-point type and converted to f32: key and type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub converted: Vec<(String, String)>,
}

/// The container of a state-dict file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceFormat {
    /// `torch.save`: a zip archive (PyTorch ≥ 1.6) or a bare pickle (older files).
    Pytorch,
    /// safetensors: a little-endian header length, a JSON header, the raw tensor bytes.
    Safetensors,
}

impl std::fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SourceFormat::Pytorch => "PyTorch",
            SourceFormat::Safetensors => "safetensors",
        })
    }
}

/// How a run was pruned (the mask itself is in `mask.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PruneSettings {
    /// Importance criterion.
    pub criterion: prune::Criterion,
    /// Fraction of filters pruned.
    pub ratio: f64,
    /// Per layer or global.
    pub scope: prune::Scope,
    /// The layers pruned.
    pub layers: Vec<String>,
    /// Training images used for activation statistics.
    pub samples: usize,
}

/// One finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub train_loss: f64,
    /// Training accuracy over the epoch (0–1), measured while training.
    pub train_accuracy: f64,
    /// Test loss after the epoch.
    pub test_loss: f64,
    /// Test accuracy after the epoch (0–1).
    pub test_accuracy: f64,
    /// Seconds spent training (without evaluation).
    pub train_seconds: f64,
    /// Seconds for the whole epoch, evaluation included.
    pub seconds: f64,
    /// Training throughput.
    pub train_images_per_sec: f64,
    /// Learning rate of the epoch's last optimizer step (absent in runs written before
    /// learning-rate schedules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Loss on the held-out validation images after the epoch (runs with a validation subset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_loss: Option<f64>,
}

/// The outcome of a finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Epochs trained.
    pub epochs: usize,
    /// Final test accuracy (0–1).
    pub test_accuracy: f64,
    /// Final test loss.
    pub test_loss: f64,
    /// Last epoch's training loss (none if the run trained no epoch, e.g. pruning alone).
    pub train_loss: Option<f64>,
    /// Trainable parameters.
    pub num_params: usize,
    /// Mean training throughput over all epochs.
    pub train_images_per_sec: f64,
    /// Mean seconds per epoch (training and evaluation).
    pub epoch_seconds: f64,
    /// Wall time of the whole run, including data loading (summed over resumed parts).
    pub wall_seconds: f64,
    /// SHA-256 of the final weights (parameter paths, shapes and f32 values).
    pub weights_sha256: String,
    /// Backend that ran the training.
    pub backend: BackendKind,
    /// The epoch whose weights were kept when early stopping ended the run before its last
    /// epoch (its test accuracy and loss are the ones above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
}

/// Progress of an unfinished run, saved with each epoch checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Epochs finished.
    pub epochs_done: usize,
    /// Steps finished of the next epoch (0 at an epoch's end).
    #[serde(default)]
    pub steps_done: usize,
    /// Running sums of that unfinished epoch, so its metrics come out as without the break.
    #[serde(default)]
    pub partial: PartialEpoch,
    /// Optimizer steps taken since the run began.
    #[serde(default)]
    pub global_step: usize,
    /// Wall seconds spent so far.
    pub wall_seconds: f64,
    /// Hash of the checkpointed weights.
    pub weights_sha256: String,
    /// SHA-256 of the optimizer-state file (absent in checkpoints of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer_sha256: Option<String>,
    /// The files holding the model and the optimizer state, in `checkpoint/` (older versions
    /// named them by epoch: `epoch-<n>.model.bpk`, `epoch-<n>.optimizer.bpk`).
    #[serde(default)]
    pub files: Option<[String; 2]>,
}

/// Running sums of an epoch in progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PartialEpoch {
    /// Σ batch loss × batch size.
    pub loss_sum: f64,
    /// Correct predictions.
    pub correct: i64,
    /// Images seen.
    pub seen: usize,
    /// Seconds spent training in this epoch.
    pub train_seconds: f64,
}

/// What a run records about its initialization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitRecord {
    /// The spec, in canonical form.
    pub spec: String,
    /// The scheme and law chosen for every parameter.
    pub params: Vec<init::ResolvedParam>,
    /// What LSUV did, layer by layer, if it ran.
    pub lsuv: Option<Vec<init::LsuvLayer>>,
    /// SHA-256 of the initial weights (as `summary.json`'s hash of the final ones): equal across
    /// backends for the same seed.
    #[serde(default)]
    pub initial_weights_sha256: String,
}

impl RunConfig {
    /// The dataset this run was trained on (or `override_dir`), loaded; a dataset directory that
    /// has gone is an error saying to pass `--data`.
    pub fn load_data(&self, override_dir: Option<&str>) -> Result<Dataset> {
        let source = match override_dir {
            Some(dir) => DataSource::resolve(Some(dir))?,
            None if self.data.origin == DataOrigin::Sample => DataSource::sample(),
            None => {
                let dir = PathBuf::from(&self.data.location);
                if !dir.is_dir() {
                    bail!(
                        "the run's dataset directory {} no longer exists; pass --data DIR",
                        dir.display()
                    );
                }
                DataSource {
                    origin: self.data.origin,
                    dir: Some(dir),
                }
            }
        };
        source
            .load()
            .with_context(|| format!("cannot load the dataset from {}", source.location()))
    }

    /// The test split this run was evaluated on: `data`'s, cut to the run's `--test-limit`.
    pub fn test_split(&self, data: &Dataset) -> Split {
        match self.test_limit {
            Some(n) => data.test.clone().truncated(n),
            None => data.test.clone(),
        }
    }
}

/// Paths inside a run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The directory.
    pub path: PathBuf,
}

impl RunDir {
    /// A run directory at `path` (not checked).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RunDir { path: path.into() }
    }

    /// `config.json`.
    pub fn config(&self) -> PathBuf {
        self.path.join("config.json")
    }
    /// `model.bpk`.
    pub fn model(&self) -> PathBuf {
        self.path.join("model.bpk")
    }
    /// `metrics.jsonl`.
    pub fn metrics(&self) -> PathBuf {
        self.path.join("metrics.jsonl")
    }
    /// `summary.json`.
    pub fn summary(&self) -> PathBuf {
        self.path.join("summary.json")
    }
    /// `mask.json` (pruned runs).
    pub fn mask(&self) -> PathBuf {
        self.path.join("mask.json")
    }
    /// `checkpoint/`.
    pub fn checkpoint(&self) -> PathBuf {
        self.path.join("checkpoint")
    }
    /// `snapshots/`: the weights after chosen optimizer steps (`--snapshot-steps`).
    pub fn snapshots(&self) -> PathBuf {
        self.path.join("snapshots")
    }
    /// The weights after `step` optimizer steps (0: the initial weights).
    pub fn snapshot(&self, step: usize) -> PathBuf {
        self.snapshots().join(format!("step-{step:06}.bpk"))
    }

    /// Remove what an earlier run left here (before a new run is written over it with
    /// `--force`), so nothing of it can pass for part of the new one.
    pub fn clear_outputs(&self) {
        for stale in [
            self.config(),
            self.metrics(),
            self.summary(),
            self.model(),
            self.mask(),
        ] {
            let _ = std::fs::remove_file(stale);
        }
        let _ = std::fs::remove_dir_all(self.checkpoint());
        let _ = std::fs::remove_dir_all(self.snapshots());
        // Analyses of the old run, and a pruned run's compact export, describe another model.
        for dir in ANALYSES.into_iter().chain(["compact"]) {
            let _ = std::fs::remove_dir_all(self.path.join(dir));
        }
    }

    /// Read `config.json`, with an error that says what the directory is missing.
    pub fn load_config(&self) -> Result<RunConfig> {
        let path = self.config();
        if !self.path.is_dir() {
            bail!("run directory {} does not exist", self.path.display());
        }
        if !path.is_file() {
            bail!(
                "{} is not a run directory: it has no config.json",
                self.path.display()
            );
        }
        let value: serde_json::Value = read_json(&path)?;
        let format = value.get("format").and_then(serde_json::Value::as_u64);
        if format != Some(FORMAT as u64) {
            bail!(
                "{} has run format {}, this trainer reads format {FORMAT}; retrain the run with \
                 this version",
                path.display(),
                format.map_or("(none)".to_string(), |f| f.to_string())
            );
        }
        serde_json::from_value(value)
            .with_context(|| format!("{} is not a valid run configuration", path.display()))
    }

    /// Read `summary.json` of a finished run.
    pub fn load_summary(&self) -> Result<Summary> {
        if !self.summary().is_file() {
            bail!(
                "{} has not finished training: it has no summary.json",
                self.path.display()
            );
        }
        let summary: Summary = read_json(&self.summary()).with_context(|| {
            format!("the summary of the run {} is corrupt", self.path.display())
        })?;
        let possible = (0.0..=1.0).contains(&summary.test_accuracy)
            && summary.test_loss.is_finite()
            && summary.test_loss >= 0.0;
        if !possible {
            bail!(
                "{}: test accuracy {} or loss {} is impossible; the file is corrupt",
                self.summary().display(),
                summary.test_accuracy,
                summary.test_loss
            );
        }
        Ok(summary)
    }

    /// The mask of a pruned run (one whose config records how it was pruned); `None` for any
    /// other run, whatever files its directory holds.
    pub fn load_mask(&self, config: &RunConfig) -> Result<Option<prune::Mask>> {
        if config.prune.is_none() {
            return Ok(None);
        }
        let path = self.mask();
        if !path.exists() {
            bail!(
                "{} is a pruned run but has no mask.json; prune its parent again",
                self.path.display()
            );
        }
        Ok(Some(read_json(&path)?))
    }

    /// Read every line of `metrics.jsonl` (empty if it does not exist yet).
    pub fn load_metrics(&self) -> Result<Vec<EpochMetrics>> {
        let path = self.metrics();
        if !path.exists() {
            return Ok(Vec::new());
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        text.lines()
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .with_context(|| format!("{} line {} is corrupt", path.display(), i + 1))
            })
            .collect()
    }

    /// Rewrite `metrics.jsonl` with `metrics`, atomically.
    pub fn write_metrics(&self, metrics: &[EpochMetrics]) -> Result<()> {
        let mut text = String::new();
        for m in metrics {
            text.push_str(&serde_json::to_string(m)?);
            text.push('\n');
        }
        write_atomic(&self.metrics(), text.as_bytes())
    }
}

/// A finished run, opened for analysis: every command that reads a run starts here, so they all
/// refuse the same things with the same words.
pub struct FinishedRun {
    /// Its directory.
    pub dir: RunDir,
    /// `config.json`.
    pub config: RunConfig,
    /// `summary.json`.
    pub summary: Summary,
}

impl FinishedRun {
    /// Open the run at `path`: it must exist, be a run directory of this format, and have
    /// finished (weights and summary written).
    pub fn open(path: &Path) -> Result<Self> {
        let dir = RunDir::new(path);
        let config = dir.load_config()?;
        if !dir.model().is_file() || !dir.summary().is_file() {
            bail!(
                "{} has no model.bpk: the run has not finished (resume it with `trainer train \
                 --resume {0}`)",
                path.display()
            );
        }
        let summary = dir.load_summary()?;
        Ok(FinishedRun {
            dir,
            config,
            summary,
        })
    }

    /// The backend to analyse the run on: `requested`, else the one it was trained on if this
    /// binary has it, else the default.
    pub fn backend(&self, requested: Option<BackendKind>) -> BackendKind {
        requested.unwrap_or(if self.config.backend.is_compiled() {
            self.config.backend
        } else {
            BackendKind::default_compiled()
        })
    }

    /// The device of [`FinishedRun::backend`].
    pub fn device(&self, requested: Option<BackendKind>) -> Result<Device> {
        self.backend(requested).device()
    }

    /// The run's dataset (or `override_dir`), checked to have the model's image size, with the
    /// run's input normalization (what the model was trained or imported with, not the
    /// statistics of the data loaded).
    pub fn data(&self, override_dir: Option<&str>) -> Result<Dataset> {
        let mut data = self.config.load_data(override_dir)?;
        data.normalization = self.config.normalization;
        let side = self.config.model.image_size();
        if (data.train.rows, data.train.cols) != (side, side) {
            bail!(
                "the model takes {side}×{side} images but {} has {}×{}",
                data.identity.location,
                data.train.rows,
                data.train.cols
            );
        }
        Ok(data)
    }

    /// `model` (built from the run's spec) with the run's final weights.
    pub fn load<M: Classifier>(&self, model: M) -> Result<M> {
        load_module(model, &self.dir.model(), &self.config.model)
    }

    /// `model` with the weights after `step` optimizer steps; an error names the steps the run
    /// kept if it has no snapshot there.
    pub fn load_snapshot<M: Classifier>(&self, model: M, step: usize) -> Result<M> {
        if !self.config.snapshot_steps.contains(&step) {
            bail!(
                "{} has no snapshot after step {step}; {}",
                self.dir.path.display(),
                if self.config.snapshot_steps.is_empty() {
                    "it was trained without --snapshot-steps".to_string()
                } else {
                    format!("it kept steps {:?}", self.config.snapshot_steps)
                }
            );
        }
        load_module(model, &self.dir.snapshot(step), &self.config.model)
    }
}

/// The analyses of one run that write into it by default, each in a directory named after the
/// command: `RUN/<command>/`. They never change the run's own files; `--out` puts them
/// elsewhere; overwriting the run (`--force`) removes them with it.
pub(crate) const ANALYSES: [&str; 3] = ["inspect", "redundancy", "prune-sweep"];

/// The directory the analysis `name` (one of [`ANALYSES`]) of the run at `run` writes to: `out`
/// if given, else `RUN/<name>`; created.
pub(crate) fn analysis_dir(run: &Path, out: Option<&Path>, name: &str) -> Result<PathBuf> {
    debug_assert!(ANALYSES.contains(&name), "{name} is not a known analysis");
    let dir = out.map_or_else(|| run.join(name), Path::to_path_buf);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Save a module's weights as Burnpack at `path`, atomically.
pub fn save_module<M: Module>(module: M, path: &Path) -> Result<()> {
    let bytes = module
        .into_record()
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("cannot serialize weights for {}", path.display()))?;
    write_atomic(path, &bytes)
}

/// Load the weights at `path` into `model`, refusing files whose parameters do not match the
/// architecture exactly.
pub fn load_module<M: Classifier>(model: M, path: &Path, spec: &ModelSpec) -> Result<M> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read weights {}", path.display()))?;
    let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("{} is not a valid Burnpack weights file", path.display()))?;
    let model = model
        .try_load_record(record)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| {
            format!(
                "{} does not match the architecture {} recorded in config.json",
                path.display(),
                spec.describe()
            )
        })?;
    // A NaN or infinite weight would give NaN logits everywhere downstream: refuse it here.
    for p in params::HostParams::read(&model).iter() {
        if let Some((i, v)) = p.values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            bail!(
                "{}: parameter {} {:?} holds {v} at index {i}; the weights are corrupt (a \
                 diverged training or a damaged file)",
                path.display(),
                p.path,
                p.shape
            );
        }
    }
    Ok(model)
}
