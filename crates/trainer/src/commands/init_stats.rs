//! `trainer init-stats`: how each initialization scheme propagates signals through an untrained
//! network, next to what the variance analysis predicts.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::nn::loss::CrossEntropyLoss;
use burn::tensor::{Int, Tensor, TensorData};
use data::{DataSource, epoch_order};
use init::stats::{LayerStats, grad_stds, layer_stats};
use init::{InitSpec, ParamKind};
use model::{Classifier, with_model};
use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::cli::{Arch, ModelArgs};
use crate::evaluation::batch_tensors;
use crate::fsio::write_json;
use crate::init::nonlinearity;
use crate::plot::{Chart, Series, line_chart};
use plotters::prelude::SeriesLabelPosition;

/// The schemes compared when no `--init` is given.
const DEFAULT_SCHEMES: [&str; 5] = [
    "he",
    "xavier",
    "pytorch-default",
    "normal(0, 1)",
    "normal(0, 0.01)",
];

/// What is fed to the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum InputKind {
    /// A batch of real (normalized) training images.
    Data,
    /// Independent N(0, 1) pixels.
    Gaussian,
}

/// Options of `trainer init-stats`.
#[derive(Debug, Clone, clap::Args)]
pub struct InitStatsArgs {
    /// The model (default: a 20-layer plain ReLU CNN of width 32).
    #[command(flatten)]
    pub model: ModelArgs,
    /// An initialization to compare (repeat the option) [default: he, xavier, pytorch-default,
    /// normal(0, 1), normal(0, 0.01)].
    #[arg(long = "init", value_name = "SPEC")]
    pub inits: Vec<String>,
    /// Inputs: a batch of real images, or N(0, 1) noise.
    #[arg(long, value_enum, default_value_t = InputKind::Data)]
    pub input: InputKind,
    /// Images in the batch.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub batch: u64,
    /// Seed of the weights and of the batch.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Dataset directory, or `sample` [default: discovered as for `train`].
    #[arg(long, value_name = "DIR")]
    pub data: Option<String>,
    /// Directory for init-stats.json and the SVG figures.
    #[arg(long, default_value = "init-stats")]
    pub out: PathBuf,
    /// Backend [default: flex].
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// One layer's measured statistics next to the prediction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerReport {
    /// Measured statistics.
    #[serde(flatten)]
    pub stats: LayerStats,
    /// Predicted per-layer variance multiplier of the pre-activations at this layer
    /// (`fan_in · Var(w) · E[φ(z)²]/Var(z)`, biases ignored).
    pub multiplier: Option<f64>,
    /// Predicted pre-activation std relative to layer 1: `√∏ multipliers` of layers 2…l.
    pub predicted_ratio: Option<f64>,
    /// Measured pre-activation std relative to layer 1.
    pub measured_ratio: f64,
}

/// All layers under one scheme.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchemeReport {
    /// The spec, canonical.
    pub spec: String,
    /// Per layer.
    pub layers: Vec<LayerReport>,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitStatsReport {
    /// The model.
    pub model: String,
    /// What was fed in.
    pub input: InputKind,
    /// Batch size.
    pub batch: usize,
    /// Seed.
    pub seed: u64,
    /// Data used (images or labels).
    pub data: String,
    /// Per scheme.
    pub schemes: Vec<SchemeReport>,
}

/// `trainer init-stats`.
pub(crate) fn run(args: &InitStatsArgs) -> Result<()> {
    let report = init_stats(args)?;
    crate::emit(args.json, &report, || render(&report, &args.out))
}

/// Run the comparison and write its outputs.
fn init_stats(args: &InitStatsArgs) -> Result<InitStatsReport> {
    let backend = args.backend.unwrap_or_else(BackendKind::default_compiled);
    let ad = backend.device()?.autodiff();
    let source = DataSource::resolve(args.data.as_deref())?;
    let data = source.load()?;
    let spec = args.model.spec(data.train.rows, Arch::Plain)?;
    let texts: Vec<String> = if args.inits.is_empty() {
        DEFAULT_SCHEMES.iter().map(|s| s.to_string()).collect()
    } else {
        args.inits.clone()
    };
    let specs: Vec<InitSpec> = texts
        .iter()
        .map(|t| crate::init::parse(t))
        .collect::<Result<_>>()?;
    let n = (args.batch as usize).min(data.train.len());
    let order = epoch_order(data.train.len(), args.seed, 0);
    let (mut xb, mut yb) = (Vec::new(), Vec::new());
    let (x, y) = batch_tensors(
        &data.train,
        &order[..n],
        &data.normalization,
        &ad,
        &mut xb,
        &mut yb,
    );
    let x = match args.input {
        InputKind::Data => x,
        InputKind::Gaussian => {
            let mut rng = params::ParamRng::new(args.seed, "init-stats.input");
            let side = data.train.rows;
            let v: Vec<f32> = (0..n * side * side).map(|_| rng.normal() as f32).collect();
            Tensor::<4>::from_data(TensorData::new(v, [n, 1, side, side]), &ad)
        }
    };
    let mut schemes = Vec::new();
    for init_spec in &specs {
        let layers = with_model!(&spec, &ad, |m| {
            let (m, _) = crate::init::initialize(
                m,
                init_spec,
                args.seed,
                &data.train,
                &data.normalization,
                &ad,
            )
            .with_context(|| format!("initializing with {init_spec}"))?;
            measure(&m, init_spec, x.clone(), y.clone(), &ad)?
        });
        schemes.push(SchemeReport {
            spec: init_spec.to_string(),
            layers,
        });
    }
    let report = InitStatsReport {
        model: spec.describe(),
        input: args.input,
        batch: n,
        seed: args.seed,
        data: data.identity.location.clone(),
        schemes,
    };
    write_outputs(args, &report)?;
    Ok(report)
}

fn measure<M: Classifier>(
    m: &M,
    init_spec: &InitSpec,
    x: Tensor<4>,
    y: Tensor<1, Int>,
    device: &burn::tensor::Device,
) -> Result<Vec<LayerReport>> {
    let table = m.layers();
    let (logits, taps) = m.forward_taps(x);
    let mut layers: Vec<LayerReport> = Vec::new();
    let mut predicted = 1.0f64;
    let mut first_std = None;
    for tap in &taps {
        let info = table
            .iter()
            .find(|l| l.name == tap.layer)
            .expect("every tap is in the layer table");
        let stats = layer_stats(&tap.layer, &tap.pre, &tap.post);
        let weight = info.weight_path();
        let multiplier = init_spec
            .scheme_for(&weight, ParamKind::ConvWeight)
            .variance_multiplier(info.fan_in, nonlinearity(info.activation));
        let first = *first_std.get_or_insert(stats.pre_std);
        let predicted_ratio = if layers.is_empty() {
            Some(1.0)
        } else {
            multiplier.map(|mm| {
                predicted *= mm;
                predicted.sqrt()
            })
        };
        layers.push(LayerReport {
            measured_ratio: stats.pre_std / first,
            stats,
            multiplier,
            predicted_ratio,
        });
    }
    let loss = CrossEntropyLoss::new(None, device).forward(logits, y);
    let grads = loss.backward();
    let stds = grad_stds(m, &grads);
    for l in &mut layers {
        let weight = format!("{}.weight", l.stats.layer);
        l.stats.weight_grad_std = stds.iter().find(|(p, _)| *p == weight).map(|(_, s)| *s);
    }
    Ok(layers)
}

fn write_outputs(args: &InitStatsArgs, report: &InitStatsReport) -> Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    write_json(&args.out.join("init-stats.json"), report)?;
    let series = |f: &dyn Fn(&LayerReport) -> Option<f64>| -> Vec<Series> {
        report
            .schemes
            .iter()
            .map(|s| Series {
                label: s.spec.clone(),
                points: s
                    .layers
                    .iter()
                    .enumerate()
                    .filter_map(|(i, l)| f(l).map(|v| ((i + 1) as f64, v)))
                    .collect(),
            })
            .collect()
    };
    let title = format!(
        "{}, {} input",
        report.model,
        match report.input {
            InputKind::Data => "real-image",
            InputKind::Gaussian => "N(0, 1)",
        }
    );
    line_chart(
        &args.out.join("activation-std.svg"),
        &Chart {
            title: &format!("post-activation std by layer — {title}"),
            x_label: "layer",
            y_label: "std (log scale)",
            log_y: true,
            legend: SeriesLabelPosition::UpperLeft,
        },
        &series(&|l| Some(l.stats.post_std)),
    )?;
    line_chart(
        &args.out.join("gradient-std.svg"),
        &Chart {
            title: &format!("weight-gradient std by layer — {title}"),
            x_label: "layer",
            y_label: "std (log scale)",
            log_y: true,
            legend: SeriesLabelPosition::UpperLeft,
        },
        &series(&|l| l.stats.weight_grad_std),
    )?;
    Ok(())
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.3e}"))
}

/// Render the report as tables.
fn render(report: &InitStatsReport, out: &std::path::Path) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} at initialization, {} {} images (seed {}), data {}\n",
        report.model,
        report.batch,
        match report.input {
            InputKind::Data => "real",
            InputKind::Gaussian => "N(0, 1)",
        },
        report.seed,
        report.data
    );
    for sch in &report.schemes {
        let m = sch.layers.get(1).and_then(|l| l.multiplier);
        let _ = writeln!(
            s,
            "{}  (predicted variance multiplier per layer: {})",
            sch.spec,
            m.map_or("-".into(), |m| format!("{m:.4}"))
        );
        let _ = writeln!(
            s,
            "  {:<9} {:>10} {:>10} {:>10} {:>10} {:>6} {:>10} {:>10} {:>10}",
            "layer",
            "pre mean",
            "pre std",
            "post mean",
            "post std",
            "dead%",
            "grad std",
            "std/std₁",
            "predicted"
        );
        for l in &sch.layers {
            let st = &l.stats;
            let _ = writeln!(
                s,
                "  {:<9} {:>10.3e} {:>10.3e} {:>10.3e} {:>10.3e} {:>6.1} {:>10} {:>10.3e} {:>10}",
                st.layer,
                st.pre_mean,
                st.pre_std,
                st.post_mean,
                st.post_std,
                st.dead_fraction * 100.0,
                fmt_opt(st.weight_grad_std),
                l.measured_ratio,
                fmt_opt(l.predicted_ratio)
            );
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "wrote {0}/init-stats.json, {0}/activation-std.svg, {0}/gradient-std.svg",
        out.display()
    );
    s
}
