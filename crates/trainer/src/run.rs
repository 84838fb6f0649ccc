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
use data::{DatasetIdentity, Normalization};
use model::{Classifier, ModelSpec};
use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::fsio::{read_json, write_atomic};

/// Version of the run-directory format.
pub const FORMAT: u32 = 2;

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
    /// Constant learning rate.
    pub lr: f64,
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
    pub init: crate::init::InitRecord,
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
    /// The run this one was derived from (pruning), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentRun>,
    /// How this run was pruned from its parent, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<PruneSettings>,
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
}

/// Progress of an unfinished run, saved with each epoch checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Epochs finished.
    pub epochs_done: usize,
    /// Wall seconds spent so far.
    pub wall_seconds: f64,
    /// Hash of the checkpointed weights.
    pub weights_sha256: String,
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
        read_json(&self.summary())
            .with_context(|| format!("{} has not finished training", self.path.display()))
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
    model
        .try_load_record(record)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| {
            format!(
                "{} does not match the architecture {} recorded in config.json",
                path.display(),
                spec.describe()
            )
        })
}
