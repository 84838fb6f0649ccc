//! The `trainer` command: train, evaluate and analyse the filterlab models.
//!
//! The binary is a thin wrapper around [`run`]; the end-to-end tests call the same function.
//! This crate is the command line and its glue only: options ([`cli`]), the run-directory format
//! ([`run`]), backends ([`backend`], the only module with backend `cfg`s), learning-rate
//! schedules ([`schedule`]), PyTorch and safetensors state dicts ([`statedict`]), the training loop, progress and burn-train's dashboard, plots and
//! rendering. Analyses live in the library crates.

pub mod backend;
pub mod cli;
mod commands;
mod dashboard;
mod evaluation;
mod fsio;
mod init;
mod parallel;
mod plot;
mod progress;
pub mod run;
pub mod schedule;
pub mod statedict;
mod training;

use anyhow::{Context, Result};

pub use commands::eval::{EvalArgs, eval_run};

use crate::cli::{Cli, Command};

/// Size the CPU backends' thread pool. Only the first call in a process has an effect.
fn set_threads(threads: Option<u64>) -> Result<()> {
    if let Some(n) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n as usize)
            .build_global()
            .context("cannot size the thread pool (--threads)")?;
    }
    Ok(())
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    set_threads(cli.threads)?;
    backend::select_adapter(cli.device)?;
    match cli.command {
        Command::Train(args) => commands::train::run(&args),
        Command::Eval(args) => commands::eval::run(&args),
        Command::InitStats(args) => commands::init_stats::run(&args),
        Command::Inspect(args) => commands::inspect::run(&args),
        Command::Redundancy(args) => commands::redundancy::run(&args),
        Command::Prune(args) => commands::prune::run(&args),
        Command::PruneSweep(args) => commands::sweep::run(&args),
        Command::Compare(args) => commands::compare::run(&args),
        Command::Import(args) => commands::import::run(&args),
        Command::Export(args) => commands::export::run(&args),
        Command::Bench(args) => commands::bench::run(&args),
        Command::Info => commands::info::run(),
    }
}

/// Print `value` as JSON, or the text `render` makes of it.
fn emit<T: serde::Serialize>(json: bool, value: &T, render: impl FnOnce() -> String) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", render());
    }
    Ok(())
}
