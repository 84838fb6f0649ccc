//! How big the study is: the profiles and everything they size.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Serialize;

/// How big the study is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// The committed sample, few epochs: minutes.
    Quick,
    /// Full Fashion-MNIST: the numbers worth publishing, sized for one night on 2 cores.
    Full,
    /// The full study plus what does not fit in a night on 2 cores (the ×8 width): a cluster's.
    Cluster,
    /// A miniature study for tests: seconds, verdicts not meaningful.
    Tiny,
}

/// Training images of a fine-tuning in the width experiment's sweeps (`--full`): a fixed seeded
/// subset of the training split.
pub const FINETUNE_IMAGES: usize = 5_000;
/// Held-out training images whose loss stops a fine-tuning in the width experiment's sweeps
/// (`--full`).
pub const VALIDATION_IMAGES: usize = 1_000;

/// A smaller training than the reference runs', for the experiments that train many networks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Training {
    /// Epochs.
    pub epochs: usize,
    /// `--train-limit` (all training images if absent).
    pub train_limit: Option<usize>,
    /// `--test-limit` (all test images if absent).
    pub test_limit: Option<usize>,
}

/// How a pruned network is fine-tuned in the width experiment's sweeps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FineTune {
    /// Most epochs.
    pub epochs: usize,
    /// Fine-tune on a fixed seeded subset of this many training images (all if absent).
    pub images: Option<usize>,
    /// Stop after the first epoch whose loss on this many held-out training images does not
    /// fall (the best epoch's weights are kept); none: run every epoch.
    pub early_stop: Option<usize>,
}

/// Everything that sizes the study.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Profile name.
    pub profile: Profile,
    /// `--data` for every command.
    pub data: String,
    /// Seeds of every multi-seed experiment (`--seeds N`: 1 to N).
    pub seeds: Vec<u64>,
    /// Epochs of the reference runs (also the symmetry runs).
    pub epochs: usize,
    /// `--train-limit` of the reference runs.
    pub train_limit: Option<usize>,
    /// `--test-limit` of the reference runs.
    pub test_limit: Option<usize>,
    /// Deep plain CNN: depth.
    pub plain_depth: usize,
    /// Deep plain CNN: width.
    pub plain_width: usize,
    /// Deep plain CNN: training images (one epoch: the fixed step budget).
    pub plain_train_limit: usize,
    /// Deep plain CNN: test images.
    pub plain_test_limit: usize,
    /// init-stats: depth.
    pub init_depth: usize,
    /// init-stats: width.
    pub init_width: usize,
    /// init-stats: weight seeds whose median is compared with the theory.
    pub init_seeds: u64,
    /// compare: images.
    pub compare_samples: usize,
    /// compare: points per interpolation line.
    pub compare_alphas: usize,
    /// compare: test images for the interpolation.
    pub compare_test_limit: usize,
    /// redundancy/pruning: images for activation statistics.
    pub prune_samples: usize,
    /// prune-sweep ratios.
    pub prune_ratios: Vec<f64>,
    /// The ratio of conv2's filters at which the pruning claim is judged.
    pub claim_ratio: f64,
    /// Cross-backend runs: training images.
    pub backend_train_limit: usize,
    /// Cross-backend runs: test images.
    pub backend_test_limit: usize,
    /// Claim 2: largest acceptable standard deviation of accuracy across seeds, in points.
    pub accuracy_std_max: f64,
    /// Width experiment: the width multipliers of the reference CNN.
    pub widths: Vec<f64>,
    /// Width experiment: the training of every width.
    pub width_training: Training,
    /// Width experiment: `compare --samples`, `--alphas`, `--test-limit`.
    pub width_compare: [usize; 3],
    /// Redundancy versus width: conv2 ratios zeroed (by redundancy) and fine-tuned (the coarse
    /// pass).
    pub width_prune_ratios: Vec<f64>,
    /// Redundancy versus width: ratios added by bisection where the fine-tuned accuracy leaves
    /// the tolerance (after the coarse pass).
    pub width_refine: usize,
    /// Redundancy versus width: the fine-tuning of every point.
    pub width_finetune: FineTune,
    /// Initialization × redundancy: the training under each scheme.
    pub scheme_training: Training,
    /// Initialization × redundancy: conv2 ratios zeroed by the redundancy criterion.
    pub scheme_prune_ratios: Vec<f64>,
    /// Symmetry breaking: the noise scales σ of `constant(0.01)+noise(σ)`.
    pub noise_scales: Vec<f64>,
    /// Symmetry breaking: the training of every noise scale.
    pub breaking_training: Training,
    /// Bootstrap resamples of every interval.
    pub bootstrap_resamples: usize,
}

impl Settings {
    /// The settings of a profile; `full_data` is the full Fashion-MNIST directory.
    pub fn new(profile: Profile, full_data: Option<PathBuf>) -> Result<Self> {
        // The quick profile; the others differ from it where they say.
        let quick = Settings {
            profile: Profile::Quick,
            data: "sample".to_string(),
            seeds: vec![1, 2, 3],
            epochs: 2,
            train_limit: None,
            test_limit: None,
            plain_depth: 20,
            plain_width: 16,
            plain_train_limit: 2500,
            plain_test_limit: 1000,
            init_depth: 20,
            init_width: 32,
            init_seeds: 3,
            compare_samples: 1000,
            compare_alphas: 9,
            compare_test_limit: 1000,
            prune_samples: 1000,
            prune_ratios: vec![0.1, 0.3, 0.5, 0.7],
            claim_ratio: 0.5,
            backend_train_limit: 1000,
            backend_test_limit: 500,
            accuracy_std_max: 2.0,
            // ×4 alone would cost more than the rest of the quick study: it is in --full.
            widths: vec![0.5, 1.0, 2.0],
            width_training: Training {
                epochs: 2,
                train_limit: Some(1000),
                test_limit: Some(500),
            },
            width_compare: [300, 5, 300],
            width_prune_ratios: vec![0.25, 0.5, 0.75],
            width_refine: 0,
            width_finetune: FineTune {
                epochs: 1,
                images: None,
                early_stop: None,
            },
            scheme_training: Training {
                epochs: 2,
                train_limit: Some(1000),
                test_limit: Some(500),
            },
            scheme_prune_ratios: vec![0.3, 0.5, 0.7],
            noise_scales: vec![1e-6, 1e-4, 1e-2, 1e-1],
            breaking_training: Training {
                epochs: 2,
                train_limit: Some(1000),
                test_limit: Some(500),
            },
            bootstrap_resamples: 2000,
        };
        Ok(match profile {
            Profile::Quick => quick,
            Profile::Full | Profile::Cluster => {
                let dir = full_data.with_context(|| {
                    format!(
                        "--profile {} needs the full Fashion-MNIST: run `datasets/fetch` (or \
                         apt-get install dataset-fashion-mnist), or pass --data DIR",
                        if profile == Profile::Cluster {
                            "cluster"
                        } else {
                            "full"
                        }
                    )
                })?;
                // One night on 2 cores: ×8 alone (its trainings, sweeps and comparisons) would
                // cost more than the rest of the study, so it is the cluster profile's.
                let widths = if profile == Profile::Cluster {
                    vec![0.5, 1.0, 2.0, 4.0, 8.0]
                } else {
                    vec![0.5, 1.0, 2.0, 4.0]
                };
                Settings {
                    profile,
                    data: dir.display().to_string(),
                    seeds: vec![1, 2, 3, 4, 5],
                    epochs: 3,
                    plain_train_limit: 10_000,
                    init_seeds: 5,
                    plain_test_limit: 2000,
                    compare_alphas: 11,
                    compare_test_limit: 2000,
                    backend_train_limit: 2000,
                    backend_test_limit: 1000,
                    accuracy_std_max: 0.5,
                    widths,
                    // The reference runs' training: width ×1 is the reference runs themselves.
                    width_training: Training {
                        epochs: 3,
                        train_limit: None,
                        test_limit: None,
                    },
                    width_compare: [1000, 11, 2000],
                    // A coarse pass, then two bisections where the accuracy leaves the
                    // tolerance: the bend is located to 1/16 with 5 fine-tunings instead of 9
                    // ratios at 1/10; each on a fixed subset, stopped when it stops helping.
                    width_prune_ratios: vec![0.25, 0.5, 0.75],
                    width_refine: 2,
                    width_finetune: FineTune {
                        epochs: 3,
                        images: Some(FINETUNE_IMAGES),
                        early_stop: Some(VALIDATION_IMAGES),
                    },
                    scheme_training: Training {
                        epochs: 3,
                        train_limit: None,
                        test_limit: None,
                    },
                    noise_scales: vec![1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1],
                    // The reference runs' training: the random initialization's runs are the
                    // reference runs, and σ = 1e-4's first seed is the symmetry run.
                    breaking_training: Training {
                        epochs: 3,
                        train_limit: None,
                        test_limit: None,
                    },
                    ..quick
                }
            }
            Profile::Tiny => Settings {
                profile,
                seeds: vec![1, 2],
                train_limit: Some(192),
                test_limit: Some(128),
                plain_depth: 4,
                plain_width: 4,
                plain_train_limit: 64,
                plain_test_limit: 64,
                init_depth: 6,
                init_width: 8,
                init_seeds: 2,
                compare_samples: 64,
                compare_alphas: 3,
                compare_test_limit: 64,
                prune_samples: 64,
                prune_ratios: vec![0.5],
                backend_train_limit: 64,
                backend_test_limit: 64,
                widths: vec![0.25, 0.5],
                width_training: Training {
                    epochs: 1,
                    train_limit: Some(128),
                    test_limit: Some(64),
                },
                width_compare: [64, 3, 64],
                width_prune_ratios: vec![0.5],
                // The full profile's way of sweeping, in miniature.
                width_refine: 1,
                width_finetune: FineTune {
                    epochs: 2,
                    images: Some(64),
                    early_stop: Some(32),
                },
                scheme_training: Training {
                    epochs: 1,
                    train_limit: Some(128),
                    test_limit: Some(64),
                },
                scheme_prune_ratios: vec![0.5],
                noise_scales: vec![1e-4, 1e-1],
                breaking_training: Training {
                    epochs: 1,
                    train_limit: Some(128),
                    test_limit: Some(64),
                },
                bootstrap_resamples: 200,
                ..quick
            },
        })
    }

    /// The same settings with `n` seeds (1 to `n`) for every multi-seed experiment.
    pub fn with_seeds(mut self, n: usize) -> Result<Self> {
        if n < 2 {
            bail!("--seeds {n} is too few: comparing runs needs at least 2 seeds");
        }
        self.seeds = (1..=n as u64).collect();
        Ok(self)
    }

    /// Whether the study runs on the full Fashion-MNIST (60,000 training, 10,000 test images).
    pub fn full_data(&self) -> bool {
        matches!(self.profile, Profile::Full | Profile::Cluster)
    }

    /// The reference runs' training.
    pub fn reference_training(&self) -> Training {
        Training {
            epochs: self.epochs,
            train_limit: self.train_limit,
            test_limit: self.test_limit,
        }
    }

    /// How the width experiment's sweeps fine-tune, in words ("fine-tuned 1 epoch", …).
    pub fn width_finetune_words(&self) -> String {
        let ft = &self.width_finetune;
        let on = ft.images.map_or_else(
            || "the run's training images".to_string(),
            |n| format!("a fixed seeded subset of {n} training images"),
        );
        if let Some(held) = ft.early_stop {
            format!(
                "fine-tuned on {on} for at most {} epochs, stopped when the loss on {held} \
                 held-out training images stops falling (the best epoch kept)",
                ft.epochs,
            )
        } else if ft.images.is_some() {
            format!("fine-tuned {} epoch(s) on {on}", ft.epochs)
        } else {
            format!("fine-tuned {} epoch(s)", ft.epochs)
        }
    }

    /// The width experiment's ratios, in words.
    pub fn width_ratio_words(&self) -> String {
        if self.width_refine > 0 {
            format!(
                "{:?}, then {} more by bisection where the fine-tuned accuracy leaves the \
                 tolerance",
                self.width_prune_ratios, self.width_refine
            )
        } else {
            format!("{:?}", self.width_prune_ratios)
        }
    }

    /// The first seed (the single-run experiments use it).
    pub fn first_seed(&self) -> u64 {
        self.seeds[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_default_by_profile_and_can_be_set() {
        let quick = Settings::new(Profile::Quick, None).unwrap();
        assert_eq!(quick.seeds, vec![1, 2, 3]);
        let full = Settings::new(Profile::Full, Some("/d".into())).unwrap();
        assert_eq!(full.seeds.len(), 5);
        assert_eq!(quick.clone().with_seeds(4).unwrap().seeds, vec![1, 2, 3, 4]);
        assert!(quick.with_seeds(1).is_err());
        assert!(Settings::new(Profile::Full, None).is_err());
    }
}
