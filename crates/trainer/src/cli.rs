//! The command line.

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use model::{Activation, ModelSpec, PlainCnnConfig, RefCnnConfig};

use crate::commands::bench::BenchArgs;
use crate::commands::compare::CompareArgs;
use crate::commands::eval::EvalArgs;
use crate::commands::export::ExportArgs;
use crate::commands::import::ImportArgs;
use crate::commands::init_stats::InitStatsArgs;
use crate::commands::inspect::InspectArgs;
use crate::commands::prune::PruneArgs;
use crate::commands::redundancy::RedundancyArgs;
use crate::commands::sweep::SweepArgs;
use crate::commands::train::TrainArgs;

/// Train small CNNs on (Fashion-)MNIST and study their filters.
///
/// Every run is a directory (config.json, metrics.jsonl, model.bpk, summary.json) that the other
/// commands read. The same seed on the same backend gives bit-identical weights.
#[derive(Debug, Parser)]
#[command(
    name = "trainer",
    version,
    propagate_version = true,
    args_override_self = true
)]
pub struct Cli {
    /// Worker threads of the CPU backends [default: one per core].
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: Option<u64>,
    /// GPU adapter for `--backend wgpu`: its index in the list `trainer info` prints (or the
    /// environment variable FILTERLAB_WGPU_DEVICE) [default: the best one: a discrete GPU, then
    /// an integrated one, then a CPU emulation such as Mesa's lavapipe].
    #[arg(long, global = true, value_name = "INDEX")]
    pub device: Option<usize>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model and write a run directory.
    Train(TrainArgs),
    /// Evaluate a run on the test split: accuracy, loss, per-class accuracy, confusion matrix.
    Eval(EvalArgs),
    /// Compare initialization schemes on an untrained network: activation and gradient
    /// statistics per layer next to the variance analysis (table, JSON, SVG).
    InitStats(InitStatsArgs),
    /// Per-layer filter statistics of a run: distinct filters, pairwise cosine similarity,
    /// weight statistics, and an image of the first layer's filters.
    Inspect(InspectArgs),
    /// Within-layer redundancy of a run: filters whose weights or feature maps nearly coincide,
    /// clusters of near-duplicates, dead filters (table, JSON, correlation heatmaps).
    Redundancy(RedundancyArgs),
    /// Zero whole filters of a run by an importance criterion, optionally fine-tune with the
    /// zeros enforced, and write the result as a new run.
    Prune(PruneArgs),
    /// Test accuracy versus pruning ratio for several criteria (table, JSON, SVG).
    PruneSweep(SweepArgs),
    /// Compare runs from different seeds: filter matching, CKA, permutation alignment and
    /// interpolation barriers (tables, JSON, figures).
    Compare(CompareArgs),
    /// Import a PyTorch (.pt/.pth) or safetensors state dict as a run directory, evaluated on
    /// the test split, for every command that reads runs.
    Import(ImportArgs),
    /// Write a run's weights as safetensors in PyTorch's names and layout, for
    /// `model.load_state_dict(safetensors.torch.load_file(FILE))`.
    Export(ExportArgs),
    /// Measure training and inference throughput of the reference CNN on the embedded sample.
    Bench(BenchArgs),
    /// Versions, compiled backends and threads, as JSON.
    Info,
}

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
    /// Number of conv layers of the plain CNN (2–50) [default: 20].
    #[arg(long, value_name = "N")]
    pub depth: Option<usize>,
    /// Nonlinearity of the plain CNN: relu, leaky-relu, tanh or identity [default: relu].
    #[arg(long, value_name = "NAME")]
    pub activation: Option<Activation>,
}

impl ModelArgs {
    /// The model these options describe, for square images of side `image_size`; `default` is
    /// the architecture when `--model` is not given.
    pub(crate) fn spec(&self, image_size: usize, default: Arch) -> Result<ModelSpec> {
        let spec = match self.model.unwrap_or(default) {
            Arch::Ref => {
                for (given, option) in [
                    (self.depth.is_some(), "--depth"),
                    (self.activation.is_some(), "--activation"),
                ] {
                    if given {
                        bail!(
                            "{option} applies to the plain CNN only (--model plain); the reference \
                             CNN has a fixed depth and ReLU activations"
                        );
                    }
                }
                ModelSpec::Ref(
                    RefCnnConfig::new()
                        .with_width(self.width.unwrap_or(1.0))
                        .with_image_size(image_size),
                )
            }
            Arch::Plain => {
                let width = self.width.unwrap_or(32.0);
                if width.fract() != 0.0 || width < 1.0 {
                    bail!("--width {width} is invalid for the plain CNN: it is a channel count");
                }
                ModelSpec::Plain(
                    PlainCnnConfig::new()
                        .with_depth(self.depth.unwrap_or(20))
                        .with_width(width as usize)
                        .with_activation(self.activation.unwrap_or_default())
                        .with_image_size(image_size),
                )
            }
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Whether any model option was given.
    pub(crate) fn any(&self) -> bool {
        self.model.is_some()
            || self.width.is_some()
            || self.depth.is_some()
            || self.activation.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn out_of_range_options_are_refused() {
        for args in [
            &["trainer", "train", "--out", "x", "--epochs", "0"][..],
            &["trainer", "train", "--out", "x", "--batch-size", "0"],
            &["trainer", "train", "--out", "x", "--activation", "swish"],
            &["trainer", "train"],
            &["trainer", "train", "--out", "x", "--resume", "y"],
            // Options read from the run's config.json cannot be given when resuming.
            &["trainer", "train", "--resume", "y", "--epochs", "5"],
            &["trainer", "train", "--resume", "y", "--seed", "1"],
            &["trainer", "train", "--resume", "y", "--init", "he"],
            &[
                "trainer",
                "compare",
                "a",
                "b",
                "--no-interpolation",
                "--alphas",
                "5",
            ],
            &["trainer", "import", "f.pt"],
            &[
                "trainer", "import", "f.pt", "--out", "r", "--pixels", "0-255",
            ],
            &[
                "trainer",
                "import",
                "f.pt",
                "--out",
                "r",
                "--normalize",
                "0.5",
            ],
            &["trainer", "import", "f.pt", "--out", "r", "--rename", "=x"],
            &[
                "trainer",
                "import",
                "f.pt",
                "--out",
                "r",
                "--channels",
                "4,0",
            ],
            &[
                "trainer",
                "import",
                "f.pt",
                "--out",
                "r",
                "--pixels",
                "0-1",
                "--normalize",
                "0.5,0.5",
            ],
            &["trainer", "export", "r"],
            &["trainer", "export", "r", "--out", "f", "--format", "pt"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        assert!(Cli::try_parse_from(["trainer", "train", "--out", "x"]).is_ok());
        let resume = [
            "trainer", "train", "--resume", "y", "--data", "sample", "--quiet",
        ];
        assert!(Cli::try_parse_from(resume).is_ok());
        let import = [
            "trainer",
            "import",
            "f.pt",
            "--out",
            "r",
            "--rename",
            "module=",
            "--rename",
            "features.0=conv1",
            "--normalize",
            "-0.5,2",
            "--channels",
            "8,16,32",
        ];
        assert!(Cli::try_parse_from(import).is_ok());
        assert!(Cli::try_parse_from(["trainer", "export", "r", "--out", "f.safetensors"]).is_ok());
    }
}
