//! A physically smaller model: pruned channels removed rather than zeroed.

use std::collections::HashMap;

use model::{LayerInfo, LayerKind, ModelSpec};
use params::HostParams;

use crate::{Mask, PruneError};

/// The spec of the model with `mask`'s pruned channels removed.
pub fn compact_spec(
    spec: &ModelSpec,
    mask: &Mask,
    layers: &[LayerInfo],
) -> Result<ModelSpec, PruneError> {
    mask.validate(layers)?;
    let channels = mask
        .layers
        .iter()
        .map(|(name, keep)| (name.clone(), keep.iter().filter(|&&k| k).count()))
        .collect();
    Ok(spec.with_out_channels(&channels)?)
}

/// The compact model's parameters, sliced from the full model's: every layer keeps its kept
/// outputs and the inputs its producer kept.
pub fn compact_parameters(
    params: &HostParams,
    layers: &[LayerInfo],
    mask: &Mask,
) -> Result<HashMap<String, Vec<f32>>, PruneError> {
    mask.validate(layers)?;
    let mut out = HashMap::new();
    for info in layers {
        let out_keep = mask.kept(&info.name, info.out_channels);
        let in_keep: Vec<usize> = match model::producer(layers, &info.name) {
            Some(p) => {
                let g = p.consumer_inputs_per_channel;
                mask.kept(&p.name, p.out_channels)
                    .into_iter()
                    .flat_map(|c| c * g..(c + 1) * g)
                    .collect()
            }
            None => (0..info.in_channels).collect(),
        };
        let find = |path: String| {
            params
                .get(&path)
                .ok_or_else(|| PruneError::Mask(format!("no parameter {path}")))
        };
        let w = find(info.weight_path())?;
        let sliced = match info.kind {
            LayerKind::Conv2d => {
                let (inp, k) = (w.shape[1], w.shape[2] * w.shape[3]);
                let mut v = Vec::with_capacity(out_keep.len() * in_keep.len() * k);
                for &o in &out_keep {
                    for &i in &in_keep {
                        let at = (o * inp + i) * k;
                        v.extend_from_slice(&w.values[at..at + k]);
                    }
                }
                v
            }
            LayerKind::Linear => {
                let d_out = w.shape[1];
                let mut v = Vec::with_capacity(in_keep.len() * out_keep.len());
                for &i in &in_keep {
                    for &o in &out_keep {
                        v.push(w.values[i * d_out + o]);
                    }
                }
                v
            }
        };
        out.insert(info.weight_path(), sliced);
        // Per-channel vectors: the bias, and a following normalization's affine parameters
        // (required) and running statistics (present in Burn's BatchNorm).
        let mut per_channel: Vec<(String, bool)> = vec![(info.bias_path(), false)];
        per_channel.extend(info.norm_paths().into_iter().map(|p| (p, true)));
        per_channel.extend(info.norm_buffer_paths().into_iter().map(|p| (p, false)));
        for (path, required) in per_channel {
            match find(path.clone()) {
                Ok(p) => {
                    out.insert(path, out_keep.iter().map(|&o| p.values[o]).collect());
                }
                Err(e) if required => return Err(e),
                Err(_) => {}
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use burn::tensor::{Device, Tensor};
    use model::{Classifier, ModelSpec, PlainCnnConfig, RefCnnConfig, with_model};

    use super::*;

    fn check(spec: ModelSpec, mask_layers: Vec<(&str, Vec<bool>)>) {
        let device = Device::flex();
        let mask = Mask {
            layers: mask_layers
                .into_iter()
                .map(|(l, k)| (l.to_string(), k))
                .collect::<BTreeMap<_, _>>(),
        };
        let x = Tensor::<4>::random([3, 1, 28, 28], burn::tensor::Distribution::Default, &device);
        let (masked_logits, params, layers) = with_model!(&spec, &device, |m| {
            let spec_init: init::InitSpec = "he;*.bias=normal(0, 0.1)".parse().unwrap();
            let (m, _) = init::apply(m, &spec_init, 3, &|_| None).unwrap();
            let layers = m.layers();
            let m = crate::apply_mask(m, &mask, &layers).unwrap();
            (m.forward(x.clone()), HostParams::read(&m), layers)
        });
        let small = compact_spec(&spec, &mask, &layers).unwrap();
        let values = compact_parameters(&params, &layers, &mask).unwrap();
        let compact_logits = with_model!(&small, &device, |m| {
            let m = params::write(m, values).unwrap();
            m.forward(x.clone())
        });
        let diff: f32 = (masked_logits - compact_logits).abs().max().into_scalar();
        assert!(diff < 1e-4, "max |Δ logit| = {diff}");
    }

    #[test]
    fn compact_reference_cnn_matches_the_zeroed_one() {
        let mut k1 = vec![true; 8];
        k1[2] = false;
        let mut k2 = vec![true; 16];
        k2[0] = false;
        k2[15] = false;
        let mut k3 = vec![true; 32];
        k3[7] = false;
        check(
            ModelSpec::Ref(RefCnnConfig::new().with_width(0.25)),
            vec![("conv1", k1), ("conv2", k2), ("fc1", k3)],
        );
    }

    #[test]
    fn compact_plain_cnn_matches_the_zeroed_one() {
        let mut k = vec![true; 6];
        k[1] = false;
        k[4] = false;
        check(
            ModelSpec::Plain(PlainCnnConfig::new().with_depth(3).with_width(6)),
            vec![("convs.0", k.clone()), ("convs.2", k)],
        );
    }

    /// The compact model is the check of the accounting: over random masks on every hidden layer
    /// (single filters kept, nothing pruned, per layer and global plans), what `effect` says is
    /// removed is exactly what the compact model lacks, in parameters and in FLOPs.
    #[test]
    fn effects_equal_what_the_compact_model_lacks() {
        use crate::{Scope, effect, layer_flops, plan};
        use burn::module::Module;
        let device = Device::flex();
        let specs = [
            ModelSpec::Ref(RefCnnConfig::new().with_width(0.25)),
            ModelSpec::Plain(PlainCnnConfig::new().with_depth(4).with_width(5)),
        ];
        for spec in specs {
            let (table, full_params) =
                with_model!(&spec, &device, |m| (m.layers(), m.num_params()));
            let hidden = model::hidden_layers(&table);
            let mut rng = params::ParamRng::new(7, "effect-test");
            for trial in 0..60 {
                let mask = if trial % 3 == 2 {
                    // A plan from random scores over all hidden layers, global or per layer.
                    let scores = hidden
                        .iter()
                        .map(|l| {
                            (
                                l.name.clone(),
                                (0..l.out_channels).map(|_| rng.unit()).collect(),
                            )
                        })
                        .collect();
                    let scope = if trial % 2 == 0 {
                        Scope::Global
                    } else {
                        Scope::PerLayer
                    };
                    plan(&scores, rng.unit() * 0.95, scope).unwrap()
                } else {
                    // Random keep flags, at least one kept; every third layer keeps one filter.
                    let mut layers = BTreeMap::new();
                    for (i, l) in hidden.iter().enumerate() {
                        if rng.unit() >= 0.8 {
                            continue;
                        }
                        let n = l.out_channels;
                        let mut keep: Vec<bool> = if (i + trial) % 3 == 0 {
                            vec![false; n]
                        } else {
                            (0..n).map(|_| rng.unit() < 0.5).collect()
                        };
                        keep[(rng.unit() * n as f64) as usize] = true;
                        layers.insert(l.name.clone(), keep);
                    }
                    Mask { layers }
                };
                let e = effect(&mask, &table).unwrap();
                let small = compact_spec(&spec, &mask, &table).unwrap();
                let (small_table, small_params) =
                    with_model!(&small, &device, |m| (m.layers(), m.num_params()));
                assert_eq!(e.total_params, full_params, "{spec:?}");
                assert_eq!(
                    e.params_removed,
                    full_params - small_params,
                    "{spec:?}, mask {mask:?}"
                );
                let small_flops: f64 = small_table.iter().map(layer_flops).sum();
                assert_eq!(
                    e.flops_removed,
                    e.total_flops - small_flops,
                    "{spec:?}, mask {mask:?}"
                );
            }
        }
    }
}
