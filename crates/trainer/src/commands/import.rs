//! `trainer import`: a PyTorch (`.pt`/`.pth`) or safetensors state dict as an ordinary run
//! directory, evaluated on the test split, so every command that reads runs reads it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use data::Normalization;
use model::pytorch::{Rename, match_state_dict, rename_keys};
use model::{ModelSpec, with_model};
use params::weights_sha256;
use serde::Serialize;

use crate::backend::BackendKind;
use crate::cli::{Arch, ModelArgs};
use crate::commands::train::load_square_data;
use crate::evaluation::evaluate;
use crate::fsio::write_json;
use crate::run::{
    BURN_VERSION, FORMAT, ImportSource, InitRecord, OptimizerKind, OptimizerSpec, RunConfig,
    RunDir, SourceFormat, Summary, save_module,
};
use crate::statedict;
use crate::training::{DEFAULT_BATCH_SIZE, NUM_CLASSES};

/// Options of `trainer import`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The state dict: a PyTorch file (`torch.save(model.state_dict())`, .pt/.pth) or a
    /// .safetensors file, recognized by content. Keys follow the model's module paths
    /// (conv1.weight … fc2.bias for ref; convs.0.weight … head.bias for plain), linear weights
    /// in PyTorch's [out, in] layout; see --rename for other names.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The model the file holds.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output channels of each hidden layer, comma-separated, instead of --width: for a
    /// physically pruned model (ref: conv1,conv2,fc1; plain: one per conv layer).
    #[arg(long, value_name = "C1,C2,...", value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub channels: Vec<u64>,
    /// Rename the file's keys before matching them: FROM=TO, where FROM is a whole key or its
    /// leading dot-separated components (`module=` strips a leading `module.`,
    /// `features.0=conv1` turns `features.0.weight` into `conv1.weight`). Repeatable; each key
    /// is renamed by the first rule that matches it, and a rule matching nothing is an error.
    #[arg(long, value_name = "FROM=TO")]
    pub rename: Vec<Rename>,
    /// The input standardization the model was trained with: pixels become
    /// (p/255 − MEAN)/STD [default: the training split's mean and std, as `train` uses].
    #[arg(long, value_name = "MEAN,STD", value_parser = parse_normalization, allow_hyphen_values = true)]
    pub normalize: Option<Normalization>,
    /// Plain pixels p/255 in [0, 1], without standardization (the model was trained on
    /// `ToTensor()` images alone).
    #[arg(long, value_name = "RANGE", value_parser = ["0-1"], conflicts_with = "normalize")]
    pub pixels: Option<String>,
    /// Directory to write the run to (created; refused if it already holds a run, unless
    /// --force).
    #[arg(long, short, value_name = "RUN_DIR")]
    pub out: PathBuf,
    /// Overwrite RUN_DIR if it already holds a run.
    #[arg(long)]
    pub force: bool,
    /// Dataset the accuracy is measured on at import, and the later analyses' default: a
    /// directory with the four IDX files, or `sample` [default: as `train`:
    /// datasets/fashion-mnist, then /usr/share/datasets/fashion-mnist, then the sample].
    #[arg(long, value_name = "DIR")]
    pub data: Option<String>,
    /// Seed of the run's later random draws (analysis images, random pruning, the shuffling
    /// of a fine-tuning).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Backend [default: flex].
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Print only the final line.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--normalize MEAN,STD`.
fn parse_normalization(s: &str) -> Result<Normalization, String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [mean, std] = parts.as_slice() else {
        return Err(format!("expected MEAN,STD (e.g. 0.2860,0.3530), got '{s}'"));
    };
    let number = |v: &str| {
        v.parse::<f32>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("'{v}' is not a finite number"))
    };
    let (mean, std) = (number(mean)?, number(std)?);
    if std <= 0.0 {
        return Err(format!(
            "the standard deviation must be positive, got {std}"
        ));
    }
    Ok(Normalization { mean, std })
}

/// What `trainer import` did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The file.
    pub file: PathBuf,
    /// Its container.
    pub format: SourceFormat,
    /// The run written.
    pub out: PathBuf,
    /// The architecture.
    pub model: String,
    /// Tensors read.
    pub tensors: usize,
    /// Parameters.
    pub num_params: usize,
    /// Test accuracy (0–1) on the dataset's test split.
    pub test_accuracy: f64,
    /// Test loss.
    pub test_loss: f64,
    /// Test images.
    pub test_images: usize,
    /// The dataset.
    pub data: String,
    /// The input normalization recorded.
    pub normalization: Normalization,
    /// SHA-256 of the weights.
    pub weights_sha256: String,
}

/// `trainer import`.
pub(crate) fn run(args: &ImportArgs) -> Result<()> {
    let r = import(args)?;
    println!(
        "{} ({}, {} tensors) → {}: {}, {} parameters; test accuracy {:.2}%, loss {:.4} on {} \
         images of {}, pixels (p/255 − {})/{}; weights sha256 {}",
        r.file.display(),
        r.format,
        r.tensors,
        r.out.display(),
        r.model,
        r.num_params,
        r.test_accuracy * 100.0,
        r.test_loss,
        r.test_images,
        r.data,
        r.normalization.mean,
        r.normalization.std,
        &r.weights_sha256[..16]
    );
    Ok(())
}

/// The architecture `args` describe, for images of side `side`.
fn model_spec(args: &ImportArgs, side: usize) -> Result<ModelSpec> {
    let spec = args.model.spec(side, Arch::Ref)?;
    if args.channels.is_empty() {
        return Ok(spec);
    }
    if args.model.width.is_some() {
        bail!("--channels gives every hidden layer's width: give it without --width");
    }
    let names = spec.hidden_layer_names();
    if args.channels.len() != names.len() {
        bail!(
            "--channels has {} values; the model has {} hidden layers ({})",
            args.channels.len(),
            names.len(),
            names.join(", ")
        );
    }
    let channels: BTreeMap<String, usize> = names
        .into_iter()
        .zip(args.channels.iter().map(|&c| c as usize))
        .collect();
    Ok(spec.with_out_channels(&channels)?)
}

/// Read, check and evaluate the file, then write the run.
pub(crate) fn import(args: &ImportArgs) -> Result<ImportReport> {
    let started = Instant::now();
    let out = RunDir::new(&args.out);
    if out.config().exists() && !args.force {
        bail!(
            "{} already holds a run; use --force to overwrite it, or another --out",
            args.out.display()
        );
    }
    let backend = args.backend.unwrap_or_else(BackendKind::default_compiled);
    let device = backend.device()?;
    let data = load_square_data(args.data.as_deref())?;
    let spec = model_spec(args, data.train.rows)?;
    let normalization = match (args.normalize, args.pixels.as_deref()) {
        (Some(n), _) => n,
        (None, Some(_)) => Normalization {
            mean: 0.0,
            std: 1.0,
        },
        (None, None) => data.normalization,
    };

    let file = statedict::read(&args.file)?;
    let shown = args.file.display();
    let keys: Vec<String> = file.tensors.iter().map(|t| t.key.clone()).collect();
    let renamed = rename_keys(&keys, &args.rename)
        .with_context(|| format!("cannot rename the tensors of {shown}"))?;
    let found: Vec<(String, Vec<usize>)> = renamed
        .iter()
        .zip(&file.tensors)
        .map(|(k, t)| (k.clone(), t.shape.clone()))
        .collect();

    with_model!(&spec, &device, |m| {
        let layout = statedict::layout(&m)?;
        let order = match_state_dict(&layout, &found).with_context(|| {
            format!(
                "{shown} does not match the model {} (choose it with --model, --width, --depth \
                 or --channels; rename keys with --rename)",
                spec.describe()
            )
        })?;
        let mut values = Vec::with_capacity(layout.len());
        for (p, &i) in layout.iter().zip(&order) {
            let t = &file.tensors[i];
            if let Some(bad) = t.values.iter().find(|v| !v.is_finite()) {
                bail!("{shown}: tensor {} holds a non-finite value ({bad})", t.key);
            }
            values.push((p.key.clone(), p.to_burn(t.values.clone())));
        }
        let m = params::write(m, values)?;
        let test = evaluate(&m, &data.test, &normalization, &device, NUM_CLASSES)?;
        let hash = weights_sha256(&m);
        let converted: Vec<(String, String)> = file
            .tensors
            .iter()
            .filter(|t| t.dtype != burn::tensor::DType::F32)
            .map(|t| (t.key.clone(), format!("{:?}", t.dtype)))
            .collect();
        if !args.quiet {
            for (key, dtype) in &converted {
                eprintln!("{shown}: {key} is {dtype}; converted to F32");
            }
        }
        let config = RunConfig {
            format: FORMAT,
            filterlab_version: env!("CARGO_PKG_VERSION").to_string(),
            burn_version: BURN_VERSION.to_string(),
            model: spec.clone(),
            init: InitRecord {
                spec: "imported".to_string(),
                params: Vec::new(),
                lsuv: None,
                initial_weights_sha256: hash.clone(),
            },
            seed: args.seed,
            epochs: 0,
            batch_size: DEFAULT_BATCH_SIZE as usize,
            optimizer: OptimizerSpec::new(OptimizerKind::Adam, 1e-3, 0.0, 0.0),
            data: data.identity.clone(),
            normalization,
            train_limit: None,
            test_limit: None,
            backend,
            threads: rayon::current_num_threads(),
            workers: backend.default_workers(),
            device: backend.device_description(),
            parent: None,
            prune: None,
            snapshot_steps: Vec::new(),
            subset: None,
            early_stop: false,
            source: Some(ImportSource {
                file: std::fs::canonicalize(&args.file)
                    .unwrap_or_else(|_| args.file.clone())
                    .display()
                    .to_string(),
                sha256: file.sha256.clone(),
                format: file.format,
                renames: args.rename.iter().map(Rename::to_string).collect(),
                converted,
            }),
        };
        let summary = Summary {
            epochs: 0,
            test_accuracy: test.accuracy,
            test_loss: test.loss,
            train_loss: None,
            num_params: m.num_params(),
            train_images_per_sec: 0.0,
            epoch_seconds: 0.0,
            wall_seconds: started.elapsed().as_secs_f64(),
            weights_sha256: hash.clone(),
            backend,
            best_epoch: None,
        };
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("cannot create the run directory {}", args.out.display()))?;
        out.clear_outputs();
        // The summary last: until it exists the directory is not a finished run.
        save_module(m.clone(), &out.model())?;
        out.write_metrics(&[])?;
        write_json(&out.config(), &config)?;
        write_json(&out.summary(), &summary)?;
        Ok(ImportReport {
            file: args.file.clone(),
            format: file.format,
            out: args.out.clone(),
            model: spec.describe(),
            tensors: file.tensors.len(),
            num_params: summary.num_params,
            test_accuracy: test.accuracy,
            test_loss: test.loss,
            test_images: test.examples,
            data: data.identity.location.clone(),
            normalization,
            weights_sha256: hash,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_is_two_finite_numbers_with_a_positive_std() {
        let n = parse_normalization("0.2860, 0.3530").unwrap();
        assert_eq!((n.mean, n.std), (0.286, 0.353));
        assert_eq!(parse_normalization("-0.5,2").unwrap().mean, -0.5);
        for bad in ["0.5", "0.5,0", "0.5,-1", "a,1", "1,2,3", "nan,1", "0.1,inf"] {
            assert!(parse_normalization(bad).is_err(), "{bad}");
        }
    }
}
