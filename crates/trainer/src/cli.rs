//! The command line.

use clap::{Parser, Subcommand};

use crate::bench::BenchArgs;
use crate::comparing::CompareArgs;
use crate::eval::EvalArgs;
use crate::initstats::InitStatsArgs;
use crate::inspect::InspectArgs;
use crate::pruning::{PruneArgs, RedundancyArgs, SweepArgs};
use crate::train::TrainArgs;

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
    /// Measure training and inference throughput of the reference CNN on the embedded sample.
    Bench(BenchArgs),
    /// Versions, compiled backends and threads, as JSON.
    Info,
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
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        assert!(Cli::try_parse_from(["trainer", "train", "--out", "x"]).is_ok());
    }
}
