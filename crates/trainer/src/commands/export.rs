//! `trainer export`: a run's weights as a safetensors file in PyTorch's names and layout, so
//! `model.load_state_dict(safetensors.torch.load_file(FILE))` loads them into the matching
//! PyTorch module.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use model::with_model;
use params::HostParams;
use serde::Serialize;

use crate::fsio::write_atomic;
use crate::run::FinishedRun;
use crate::statedict;

/// File formats `trainer export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExportFormat {
    /// safetensors, as `safetensors.torch.save_file` writes it.
    Safetensors,
}

/// Options of `trainer export`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// The run to export: trained, imported or pruned (zeroed filters stay zero), or a pruned
    /// run's compact/ model.
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// File format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Safetensors)]
    pub format: ExportFormat,
    /// The file to write (refused if it exists, unless --force).
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
    /// Overwrite FILE if it exists.
    #[arg(long)]
    pub force: bool,
}

/// What `trainer export` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// The run.
    pub run: PathBuf,
    /// The file.
    pub out: PathBuf,
    /// Its format.
    pub format: ExportFormat,
    /// The architecture.
    pub model: String,
    /// Each tensor's key and PyTorch shape, in the model's order.
    pub tensors: Vec<(String, Vec<usize>)>,
    /// Parameters.
    pub num_params: usize,
    /// SHA-256 of the weights (as the run's `summary.json`).
    pub weights_sha256: String,
}

/// `trainer export`.
pub(crate) fn run(args: &ExportArgs) -> Result<()> {
    let r = export(args)?;
    println!(
        "{} → {}: {}, {} tensors ({}), {} parameters in PyTorch's names and layout; load with \
         model.load_state_dict(safetensors.torch.load_file(\"{}\"))",
        r.run.display(),
        r.out.display(),
        r.model,
        r.tensors.len(),
        r.tensors
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        r.num_params,
        r.out.display()
    );
    Ok(())
}

/// Load the run and write the file.
pub(crate) fn export(args: &ExportArgs) -> Result<ExportReport> {
    let run = FinishedRun::open(&args.run)?;
    let out = &args.out;
    if out.is_dir() {
        bail!("--out {} is a directory; give a file name", out.display());
    }
    if out.exists() && !args.force {
        bail!(
            "{} already exists; use --force to overwrite it",
            out.display()
        );
    }
    let device = run.device(None)?;
    let spec = &run.config.model;
    let norm = run.config.normalization;
    let (bytes, tensors, num_params, hash) = with_model!(spec, &device, |m| {
        let m = run.load(m)?;
        let layout = statedict::layout(&m)?;
        let host = HostParams::read(&m);
        let hash = host.sha256();
        let metadata = [
            ("filterlab.model", serde_json::to_string(spec)?),
            ("filterlab.normalization", serde_json::to_string(&norm)?),
            ("filterlab.weights_sha256", hash.clone()),
        ];
        let bytes = statedict::safetensors_bytes(&m, &layout, &host, &metadata)
            .with_context(|| format!("cannot export {}", args.run.display()))?;
        let tensors: Vec<(String, Vec<usize>)> =
            layout.into_iter().map(|p| (p.key, p.shape)).collect();
        (bytes, tensors, host.num_values(), hash)
    });
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    write_atomic(out, &bytes)?;
    Ok(ExportReport {
        run: args.run.clone(),
        out: out.clone(),
        format: args.format,
        model: spec.describe(),
        tensors,
        num_params,
        weights_sha256: hash,
    })
}
