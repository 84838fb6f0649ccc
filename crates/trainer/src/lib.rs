//! The `trainer` command: train, evaluate and benchmark the filterlab models.
//!
//! The binary is a thin wrapper around [`run`]; the end-to-end tests call the same functions.
//! [`backend`] is the only module that knows which Burn backends were compiled in.

pub mod backend;
pub mod bench;
pub mod cli;
pub mod comparing;
pub mod eval;
pub mod fsio;
pub mod init;
pub mod initstats;
pub mod inspect;
pub mod parallel;
pub mod plot;
pub mod progress;
pub mod pruning;
pub mod run;
pub mod train;
pub mod weights;

use anyhow::{Context, Result};

use crate::cli::{Cli, Command};
use crate::run::RunDir;

/// Size the CPU backends' thread pool. Only the first call in a process has an effect.
pub fn set_threads(threads: Option<u64>) -> Result<()> {
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
    match cli.command {
        Command::Train(args) => match train::train(&args)? {
            train::Outcome::Finished(s) => {
                let run = args.resume.or(args.out).expect("clap requires one");
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
            train::Outcome::Stopped { epochs_done } => {
                println!("stopped after epoch {epochs_done}; continue with --resume");
            }
        },
        Command::Eval(args) => {
            let result = eval_run(&args)?;
            emit(args.json, &result, || {
                eval::render(&result, &data::FASHION_CLASSES)
            })?;
        }
        Command::InitStats(args) => {
            let report = initstats::init_stats(&args)?;
            emit(args.json, &report, || initstats::render(&report, &args.out))?;
        }
        Command::Inspect(args) => {
            let inspection = inspect::inspect(&args)?;
            emit(args.json, &inspection, || inspect::render(&inspection))?;
        }
        Command::Redundancy(args) => {
            let report = pruning::redundancy(&args)?;
            emit(args.json, &report, || {
                pruning::render_redundancy(&report, &args.out_dir())
            })?;
        }
        Command::Prune(args) => {
            let report = pruning::prune_run(&args)?;
            print!("{}", pruning::render_prune(&report, &args.out));
        }
        Command::PruneSweep(args) => {
            let report = pruning::sweep(&args)?;
            emit(args.json, &report, || {
                pruning::render_sweep(&report, &args.out_dir())
            })?;
        }
        Command::Compare(args) => {
            let report = comparing::compare_runs(&args)?;
            emit(args.json, &report, || comparing::render(&report, &args.out))?;
        }
        Command::Info => {
            let info = serde_json::json!({
                "filterlab_version": env!("CARGO_PKG_VERSION"),
                "burn_version": "0.22.1",
                "backends": backend::BackendKind::compiled(),
                "default_backend": backend::BackendKind::default_compiled(),
                "threads": rayon::current_num_threads(),
            });
            println!("{}", serde_json::to_string_pretty(&info)?);
        }
        Command::Bench(args) => {
            let r = bench::bench(&args)?;
            emit(args.json, &r, || bench::render(&r))?;
        }
    }
    Ok(())
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

/// `trainer eval`: load a finished run and evaluate it.
pub fn eval_run(args: &eval::EvalArgs) -> Result<eval::EvalResult> {
    let run = RunDir::new(&args.run);
    let config = run.load_config()?;
    if !run.model().is_file() {
        anyhow::bail!(
            "{} has no model.bpk: the run has not finished (resume it with `trainer train --resume {0}`)",
            args.run.display()
        );
    }
    let backend = args.backend.unwrap_or(if config.backend.is_compiled() {
        config.backend
    } else {
        backend::BackendKind::default_compiled()
    });
    let device = backend.device()?;
    let mut data = train::load_run_data(&config, args.data.as_deref())?;
    if let Some(n) = args.test_limit {
        data.test = data.test.truncated(n as usize);
    }
    let side = config.model.image_size();
    if (data.test.rows, data.test.cols) != (side, side) {
        anyhow::bail!(
            "the model takes {side}×{side} images but {} has {}×{}",
            data.identity.location,
            data.test.rows,
            data.test.cols
        );
    }
    model::with_model!(&config.model, &device, |m| {
        let m = run::load_module(m, &run.model(), &config.model)?;
        eval::evaluate(
            &m,
            &data.test,
            &config.normalization,
            &device,
            train::NUM_CLASSES,
        )
    })
}
