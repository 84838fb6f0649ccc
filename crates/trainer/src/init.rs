//! `--init`: initialize a model with the `init` crate, LSUV included.

use anyhow::{Context, Result};
use burn::tensor::{Device, Tensor};
use data::{Normalization, Split, analysis_order};
use init::{InitSpec, Nonlinearity, Scheme};
use model::{Activation, Classifier};

use crate::evaluation::batch_tensors;
use crate::run::InitRecord;

/// Images in the batch LSUV calibrates on.
const LSUV_BATCH: usize = 256;

/// Parse `--init`, naming the option in errors.
pub(crate) fn parse(spec: &str) -> Result<InitSpec> {
    spec.parse::<InitSpec>()
        .with_context(|| format!("invalid --init '{spec}'"))
}

/// The init crate's name for the nonlinearity after a layer (the head's `None` is linear).
pub(crate) fn nonlinearity(a: Option<Activation>) -> Nonlinearity {
    match a {
        Some(Activation::Relu) => Nonlinearity::Relu,
        Some(Activation::LeakyRelu) => Nonlinearity::LeakyRelu(Activation::LEAKY_SLOPE),
        Some(Activation::Tanh) => Nonlinearity::Tanh,
        Some(Activation::Identity) | None => Nonlinearity::Linear,
    }
}

/// The nonlinearity after each layer of `model`, for Kaiming's default gain.
fn activations<M: Classifier>(model: &M) -> impl Fn(&str) -> Option<Nonlinearity> + use<M> {
    let table: Vec<(String, Nonlinearity)> = model
        .layers()
        .into_iter()
        .map(|l| (l.name, nonlinearity(l.activation)))
        .collect();
    move |layer: &str| table.iter().find(|(n, _)| n == layer).map(|(_, nl)| *nl)
}

/// Initialize `model` as `spec` says with `seed`. LSUV layers are calibrated on a batch of
/// `LSUV_BATCH` training images drawn with the run's seed.
pub(crate) fn initialize<M: Classifier>(
    model: M,
    spec: &InitSpec,
    seed: u64,
    train: &Split,
    norm: &Normalization,
    device: &Device,
) -> Result<(M, InitRecord)> {
    let lookup = activations(&model);
    let (model, params) = init::apply(model, spec, seed, &lookup)?;
    let (model, lsuv) = if spec.uses_lsuv() {
        let layers = model.layers();
        let (weights, tol, max_iter) = lsuv_targets(spec, &layers);
        let order = analysis_order(train.len(), seed);
        let idx = &order[..LSUV_BATCH.min(order.len())];
        let (x, _) = batch_tensors(train, idx, norm, device, &mut Vec::new(), &mut Vec::new());
        let positions: Vec<usize> = weights
            .iter()
            .map(|w| {
                layers
                    .iter()
                    .position(|l| l.weight_path() == *w)
                    .expect("from the table")
            })
            .collect();
        let outputs = |m: &M| -> Vec<Tensor<4>> {
            let (logits, taps) = m.forward_taps(x.clone());
            let [n, k] = logits.dims();
            let mut all: Vec<Tensor<4>> = taps.into_iter().map(|t| t.pre).collect();
            all.push(logits.reshape([n, k, 1, 1]));
            positions.iter().map(|&p| all[p].clone()).collect()
        };
        let (model, report) = init::lsuv(model, &weights, outputs, tol, max_iter)?;
        (model, Some(report))
    } else {
        (model, None)
    };
    let initial_weights_sha256 = params::weights_sha256(&model);
    Ok((
        model,
        InitRecord {
            spec: spec.to_string(),
            params,
            lsuv,
            initial_weights_sha256,
        },
    ))
}

/// The weights whose scheme is LSUV, in forward order, with the tolerance and iteration limit.
fn lsuv_targets(spec: &InitSpec, layers: &[model::LayerInfo]) -> (Vec<String>, f64, usize) {
    let (mut tol, mut max_iter) = (0.1, 10);
    let weights = layers
        .iter()
        .map(|l| l.weight_path())
        .filter(|w| {
            let kind = init::ParamKind::Other;
            match spec.scheme_for(w, kind) {
                Scheme::Lsuv {
                    tol: t,
                    max_iter: m,
                } => {
                    (tol, max_iter) = (t, m);
                    true
                }
                _ => false,
            }
        })
        .collect();
    (weights, tol, max_iter)
}
