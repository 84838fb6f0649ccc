//! `trainer eval`: test accuracy, loss, per-class accuracy and the confusion matrix of a run.

use std::path::PathBuf;

use anyhow::Result;
use model::with_model;

use crate::evaluation::{EvalResult, evaluate};
use crate::run::FinishedRun;
use crate::training::NUM_CLASSES;

/// Options of `trainer eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// The run directory to evaluate.
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// Dataset directory, or `sample` for the embedded sample [default: the run's own data].
    #[arg(long, value_name = "DIR")]
    pub data: Option<String>,
    /// Evaluate only the first N test images.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub test_limit: Option<u64>,
    /// Backend to evaluate on [default: the run's backend if compiled in, else flex].
    #[arg(long, value_enum)]
    pub backend: Option<crate::backend::BackendKind>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Render an evaluation as text: totals, per-class accuracy, confusion matrix.
fn render(result: &EvalResult, class_names: &[&str]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "test accuracy {:.2}%  loss {:.4}  ({} images)\n",
        result.accuracy * 100.0,
        result.loss,
        result.examples
    );
    let _ = writeln!(s, "per-class accuracy:");
    for (c, acc) in result.per_class_accuracy.iter().enumerate() {
        let name = class_names.get(c).copied().unwrap_or("?");
        let _ = writeln!(s, "  {c} {name:<12} {:>6.2}%", acc * 100.0);
    }
    let _ = writeln!(
        s,
        "\nconfusion matrix (rows: true class, columns: predicted):"
    );
    let _ = write!(s, "     ");
    for c in 0..result.confusion.len() {
        let _ = write!(s, "{c:>6}");
    }
    s.push('\n');
    for (t, row) in result.confusion.iter().enumerate() {
        let _ = write!(s, "  {t:>2} ");
        for v in row {
            let _ = write!(s, "{v:>6}");
        }
        s.push('\n');
    }
    s
}

/// `trainer eval`.
pub(crate) fn run(args: &EvalArgs) -> Result<()> {
    let result = eval_run(args)?;
    crate::emit(args.json, &result, || {
        render(&result, &data::FASHION_CLASSES)
    })
}

/// Load a finished run and evaluate it.
pub fn eval_run(args: &EvalArgs) -> Result<EvalResult> {
    let run = FinishedRun::open(&args.run)?;
    let device = run.device(args.backend)?;
    let mut data = run.data(args.data.as_deref())?;
    if let Some(n) = args.test_limit {
        data.test = data.test.truncated(n as usize);
    }
    with_model!(&run.config.model, &device, |m| {
        let m = run.load(m)?;
        evaluate(
            &m,
            &data.test,
            &run.config.normalization,
            &device,
            NUM_CLASSES,
        )
    })
}
