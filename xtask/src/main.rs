//! `cargo xtask <task>`: project automation.
//!
//! - `bench`: training and inference throughput of the release trainer.
//! - `repro`: the reproducibility study (report, figures, a verdict per claim).

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use xtask::bench::{BenchArgs, bench};
use xtask::repro::{Options, Profile, Settings, run, timestamp};
use xtask::{build_trainer, root, target_dir};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "filterlab project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Train the reference CNN for a fixed number of steps on the sample and report images/s
    /// (training and inference) and peak memory, as a table and as JSON.
    Bench(BenchArgs),
    /// Run the reproducibility study: train and analyse the runs behind each claim, and write
    /// REPORT.md, summary.json and the figures. Exits non-zero if a claim fails.
    Repro(ReproArgs),
}

#[derive(clap::Args)]
struct ReproArgs {
    /// The embedded sample and few epochs (about 5 minutes on 2 cores). The default.
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// Full Fashion-MNIST: the numbers worth publishing (about 25 minutes on 2 cores).
    #[arg(long)]
    full: bool,
    /// A miniature study for tests (seconds; verdicts not meaningful).
    #[arg(long, hide = true, conflicts_with_all = ["quick", "full"])]
    tiny: bool,
    /// Output directory; re-running with the same one reuses finished runs whose definition
    /// has not changed [default: target/repro/<timestamp>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Trainings and analyses run at the same time [default: the number of cores].
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Backend of every run (it must be compiled in; see --features).
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Full Fashion-MNIST directory for --full [default: datasets/fashion-mnist, then
    /// /usr/share/datasets/fashion-mnist].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Extra cargo features for the trainer build (e.g. wgpu).
    #[arg(long)]
    features: Option<String>,
    /// Deliberately break a claim, to see a failure reported (`determinism`).
    #[arg(long, hide = true)]
    break_claim: Option<String>,
}

fn main() -> std::process::ExitCode {
    match run_cli(Cli::parse()) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            for c in e.chain().skip(1) {
                eprintln!("  caused by: {c}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_cli(cli: Cli) -> Result<bool> {
    match cli.task {
        Task::Bench(args) => bench(&args).map(|()| true),
        Task::Repro(args) => repro(&args),
    }
}

fn full_data(explicit: Option<PathBuf>) -> Option<PathBuf> {
    let complete = |d: &PathBuf| {
        d.join("train-images-idx3-ubyte.gz").is_file()
            || d.join("train-images-idx3-ubyte").is_file()
    };
    explicit.or_else(|| {
        [
            root().join("datasets/fashion-mnist"),
            PathBuf::from("/usr/share/datasets/fashion-mnist"),
        ]
        .into_iter()
        .find(complete)
    })
}

fn repro(args: &ReproArgs) -> Result<bool> {
    let profile = if args.full {
        Profile::Full
    } else if args.tiny {
        Profile::Tiny
    } else {
        Profile::Quick
    };
    if let Some(dir) = &args.data
        && !dir.is_dir()
    {
        bail!("--data {} is not a directory", dir.display());
    }
    let settings = Settings::new(profile, full_data(args.data.clone()))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = args.jobs.unwrap_or(cores).max(1);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| target_dir().join("repro").join(timestamp()));
    eprintln!("building the trainer (release)...");
    let trainer = build_trainer(args.features.as_deref())?;
    let summary = run(&Options {
        settings,
        out: out.clone(),
        jobs,
        cores,
        backend: args.backend.clone(),
        trainer,
        break_claim: args.break_claim.clone(),
    })?;
    println!();
    for c in &summary.claims {
        println!(
            "{:>2}. {:<30} {:?}: {}",
            c.id, c.name, c.verdict, c.measured
        );
    }
    println!(
        "\nreport: {}\nsummary: {}",
        out.join("REPORT.md").display(),
        out.join("summary.json").display()
    );
    Ok(summary.all_passed)
}
