//! The trainer's outputs the study reads, as typed records. Only the fields the study uses are
//! declared; a missing or renamed one is an error naming the file and the field (never a
//! default), so a change to the trainer's output cannot quietly turn a claim into a failure.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// Read a JSON file as `T`; errors name the file and, for a missing field, the field.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not as expected", path.display()))
}

/// A number the trainer writes as `null` when it is not finite (JSON has no NaN or infinity).
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// `summary.json` of a run.
#[derive(Debug, Clone, Deserialize)]
pub struct RunSummary {
    /// Final test accuracy (0–1).
    pub test_accuracy: f64,
    /// Hash of the final weights.
    pub weights_sha256: String,
}

/// `config.json` of a run (what the study reads of it).
#[derive(Debug, Clone, Deserialize)]
pub struct RunConfig {
    /// The initialization record.
    pub init: InitRecord,
}

/// What a run records about its initialization.
#[derive(Debug, Clone, Deserialize)]
pub struct InitRecord {
    /// Hash of the initial weights.
    pub initial_weights_sha256: String,
}

/// One line of `metrics.jsonl`, without the timings (which differ between identical runs).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Training loss.
    pub train_loss: f64,
    /// Training accuracy.
    pub train_accuracy: f64,
    /// Test loss.
    pub test_loss: f64,
    /// Test accuracy.
    pub test_accuracy: f64,
}

/// A finished run: its summary, configuration and metrics.
#[derive(Debug, Clone)]
pub struct Run {
    /// `summary.json`.
    pub summary: RunSummary,
    /// `config.json`.
    pub config: RunConfig,
    /// `metrics.jsonl`.
    pub metrics: Vec<EpochMetrics>,
}

impl Run {
    /// Read the run in `dir`.
    pub fn read(dir: &Path) -> Result<Run> {
        let metrics_path = dir.join(super::layout::METRICS);
        let text = std::fs::read_to_string(&metrics_path)
            .with_context(|| format!("cannot read {}", metrics_path.display()))?;
        let metrics = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l).with_context(|| {
                    format!(
                        "{} line {} is not as expected",
                        metrics_path.display(),
                        i + 1
                    )
                })
            })
            .collect::<Result<_>>()?;
        Ok(Run {
            summary: read(&dir.join(super::layout::SUMMARY))?,
            config: read(&dir.join(super::layout::CONFIG))?,
            metrics,
        })
    }
}

/// What the killed-and-resumed job records.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Killed {
    /// Whether the trainer was really killed after a checkpoint (and then resumed).
    pub killed_after_checkpoint: bool,
}

/// `trainer inspect --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Inspection {
    /// Per layer.
    pub layers: Vec<LayerInspection>,
    /// Per snapshot the run kept; the trainer leaves the field out when there is none.
    #[serde(default)]
    pub snapshots: Vec<SnapshotInspection>,
}

/// The filters of one snapshot (`trainer inspect` of a run trained with `--snapshot-steps`).
#[derive(Debug, Clone, Deserialize)]
pub struct SnapshotInspection {
    /// Optimizer steps taken.
    pub step: usize,
    /// Per layer.
    pub layers: Vec<LayerInspection>,
}

impl Inspection {
    /// The layer `name` of the final weights.
    pub fn layer(&self, name: &str) -> Option<&LayerInspection> {
        self.layers.iter().find(|l| l.layer == name)
    }
}

/// One layer of an inspection.
#[derive(Debug, Clone, Deserialize)]
pub struct LayerInspection {
    /// Name.
    pub layer: String,
    /// Whether it is a hidden layer (not the classifier head).
    pub hidden: bool,
    /// Filters.
    pub filters: usize,
    /// Distinct filters.
    pub distinct_filters: usize,
    /// Mean pairwise cosine similarity.
    #[serde(deserialize_with = "number")]
    pub mean_pairwise_cosine: f64,
    /// Groups of filters linked by cosine similarity ≥ 0.99.
    pub cosine_groups: usize,
    /// Effective rank of the filter matrix.
    #[serde(deserialize_with = "number")]
    pub effective_rank: f64,
}

/// `trainer init-stats --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct InitStats {
    /// Per scheme.
    pub schemes: Vec<SchemeStats>,
}

/// One scheme of init-stats.
#[derive(Debug, Clone, Deserialize)]
pub struct SchemeStats {
    /// The spec, canonical.
    pub spec: String,
    /// Per layer.
    pub layers: Vec<InitLayer>,
}

/// One layer of one scheme.
#[derive(Debug, Clone, Deserialize)]
pub struct InitLayer {
    /// Post-activation std.
    #[serde(deserialize_with = "number")]
    pub post_std: f64,
    /// Pre-activation std relative to layer 1.
    #[serde(deserialize_with = "number")]
    pub measured_ratio: f64,
}

/// `trainer redundancy --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Redundancy {
    /// Per layer.
    pub layers: Vec<LayerRedundancy>,
}

impl Redundancy {
    /// The layer `name`.
    pub fn layer(&self, name: &str) -> Option<&LayerRedundancy> {
        self.layers.iter().find(|l| l.layer == name)
    }
}

/// One layer's redundancy.
#[derive(Debug, Clone, Deserialize)]
pub struct LayerRedundancy {
    /// Name.
    pub layer: String,
    /// Filters.
    pub filters: usize,
    /// Near-duplicate pairs `(i, j, ρ)`.
    pub near_duplicates: Vec<(usize, usize, f64)>,
    /// Clusters of near-duplicates.
    pub clusters: Vec<Vec<usize>>,
    /// Redundant filters.
    pub redundant: usize,
    /// Dead filters.
    pub dead: Vec<usize>,
    /// Mean |ρ| over live pairs.
    #[serde(deserialize_with = "number")]
    pub mean_abs_correlation: f64,
}

/// `trainer prune-sweep --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Sweep {
    /// Accuracy of the unpruned model.
    pub baseline_accuracy: f64,
    /// Every point.
    pub points: Vec<SweepPoint>,
}

/// One point of a sweep.
#[derive(Debug, Clone, Deserialize)]
pub struct SweepPoint {
    /// Criterion.
    pub criterion: String,
    /// Ratio.
    pub ratio: f64,
    /// Accuracy after zeroing.
    pub accuracy: f64,
    /// Accuracy after fine-tuning (absent without fine-tuning).
    pub finetuned_accuracy: Option<f64>,
}

impl Sweep {
    /// The accuracy after zeroing `ratio` by `criterion`, if the sweep has that point.
    pub fn accuracy(&self, criterion: &str, ratio: f64) -> Option<f64> {
        self.points
            .iter()
            .find(|p| p.criterion == criterion && (p.ratio - ratio).abs() < 1e-9)
            .map(|p| p.accuracy)
    }
}

/// `prune.json` of a pruned run.
#[derive(Debug, Clone, Deserialize)]
pub struct Pruned {
    /// After zeroing.
    pub after: Score,
    /// After fine-tuning (absent without fine-tuning).
    pub finetuned: Option<Score>,
}

/// Accuracy at one point of a pruning.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Score {
    /// Test accuracy (0–1).
    pub accuracy: f64,
}

/// `trainer compare --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Comparison {
    /// Per run.
    pub runs: Vec<RunAccuracy>,
    /// Mean accuracy.
    pub accuracy_mean: f64,
    /// Standard deviation of accuracy.
    #[serde(deserialize_with = "number")]
    pub accuracy_std: f64,
    /// Lowest accuracy.
    pub accuracy_min: f64,
    /// Highest accuracy.
    pub accuracy_max: f64,
    /// Every pair.
    pub pairs: Vec<Pair>,
}

/// One compared run.
#[derive(Debug, Clone, Deserialize)]
pub struct RunAccuracy {
    /// Its directory.
    pub run: PathBuf,
    /// Its seed.
    pub seed: u64,
    /// Its test accuracy.
    pub test_accuracy: f64,
}

/// One compared pair.
#[derive(Debug, Clone, Deserialize)]
pub struct Pair {
    /// Run A.
    pub a: PathBuf,
    /// Run B.
    pub b: PathBuf,
    /// Images whose feature maps were compared.
    pub samples: usize,
    /// Hidden layers.
    pub layers: Vec<PairLayer>,
    /// No alignment.
    pub naive: Alignment,
    /// Aligned by activations.
    pub activation_aligned: Alignment,
    /// Aligned by weights.
    pub weight_aligned: Alignment,
}

impl Pair {
    /// The hidden layer `name`.
    pub fn layer(&self, name: &str) -> Option<&PairLayer> {
        self.layers.iter().find(|l| l.layer == name)
    }

    /// The three alignments, naive first.
    pub fn alignments(&self) -> [&Alignment; 3] {
        [&self.naive, &self.activation_aligned, &self.weight_aligned]
    }
}

/// One hidden layer of a pair.
#[derive(Debug, Clone, Deserialize)]
pub struct PairLayer {
    /// Name.
    pub layer: String,
    /// `conv2d` or `linear`.
    pub kind: String,
    /// Filters.
    pub filters: usize,
    /// Optimal matching.
    pub matched: Pairing,
    /// Identity pairing.
    pub identity: Pairing,
    /// Exact linear CKA (absent above the exact estimator's image limit).
    pub cka: Option<f64>,
    /// Debiased minibatch CKA.
    #[serde(deserialize_with = "number")]
    pub cka_debiased: f64,
    /// Subspace similarity.
    pub subspace: Subspace,
}

/// SVCCA, PWCCA and the many-to-one reconstruction of a layer of A from the same layer of B.
#[derive(Debug, Clone, Deserialize)]
pub struct Subspace {
    /// SVCCA.
    #[serde(deserialize_with = "number")]
    pub svcca: f64,
    /// PWCCA.
    #[serde(deserialize_with = "number")]
    pub pwcca: f64,
    /// Mean R² from `k` of B's maps, by `k`.
    pub reconstruction: Vec<Reconstruction>,
    /// Mean R² from all of B's maps.
    #[serde(deserialize_with = "number")]
    pub reconstruction_all: f64,
    /// Live maps `[A, B]`.
    pub live: [usize; 2],
}

/// One point of the many-to-one reconstruction.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Reconstruction {
    /// Maps of B used.
    pub k: usize,
    /// Mean R².
    #[serde(deserialize_with = "number")]
    pub r2: f64,
}

impl Subspace {
    /// The mean R² from `k` of B's maps, if measured.
    pub fn r2_at(&self, k: usize) -> Option<f64> {
        self.reconstruction.iter().find(|r| r.k == k).map(|r| r.r2)
    }
}

impl PairLayer {
    /// CKA: exact where computed, else the debiased estimate.
    pub fn cka(&self) -> f64 {
        self.cka.unwrap_or(self.cka_debiased)
    }
}

/// Statistics of a pairing of filters.
#[derive(Debug, Clone, Deserialize)]
pub struct Pairing {
    /// Mean correlation.
    #[serde(deserialize_with = "number")]
    pub mean: f64,
    /// Pairs at ρ ≥ 0.9.
    pub at_least_0_9: usize,
    /// Pairs at ρ ≥ 0.5.
    pub at_least_0_5: usize,
}

/// One alignment of a pair.
#[derive(Debug, Clone, Deserialize)]
pub struct Alignment {
    /// How it was found.
    pub method: String,
    /// Largest change of B's logits.
    #[serde(deserialize_with = "number")]
    pub max_abs_logit_change: f64,
    /// Weight distance after alignment.
    pub weight_distance: f64,
    /// Loss barrier (absent without interpolation).
    pub loss_barrier: Option<f64>,
    /// Error barrier.
    pub error_barrier: Option<f64>,
}

/// `trainer info`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct TrainerInfo {
    /// filterlab version.
    pub filterlab_version: String,
    /// Burn version.
    pub burn_version: String,
    /// Compiled backends.
    pub backends: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_field_names_the_file_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("summary.json");
        std::fs::write(&p, r#"{"test_accuracy": 0.9, "weights_sha": "x"}"#).unwrap();
        let err = format!("{:#}", read::<RunSummary>(&p).unwrap_err());
        assert!(
            err.contains("summary.json") && err.contains("weights_sha256"),
            "{err}"
        );
        std::fs::write(
            &p,
            r#"{"spec": "he", "layers": [{"post_std": null, "measured_ratio": 2}]}"#,
        )
        .unwrap();
        let s: SchemeStats = read(&p).unwrap();
        assert!(s.layers[0].post_std.is_nan());
    }
}
