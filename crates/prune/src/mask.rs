//! Which filters are kept, zeroing the others, and what that removes.

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use model::{LayerInfo, LayerKind, ModelError, find_hidden_layer};
use params::{HostParam, HostParams, ParamMapper};
use serde::{Deserialize, Serialize};

use crate::PruneError;

/// Kept (`true`) and pruned (`false`) filters of each pruned layer. Layers not listed are kept
/// whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mask {
    /// Layer name → kept flag per output channel.
    pub layers: BTreeMap<String, Vec<bool>>,
}

impl Mask {
    /// The pruned channel indices of `layer`.
    pub fn pruned(&self, layer: &str) -> Vec<usize> {
        self.layers.get(layer).map_or_else(Vec::new, |k| {
            k.iter()
                .enumerate()
                .filter_map(|(i, &keep)| (!keep).then_some(i))
                .collect()
        })
    }

    /// The kept channel indices of a layer with `n` outputs.
    pub fn kept(&self, layer: &str, n: usize) -> Vec<usize> {
        match self.layers.get(layer) {
            Some(k) => (0..n).filter(|&i| k[i]).collect(),
            None => (0..n).collect(),
        }
    }

    /// Check that every masked layer exists in `layers`, is not the head, has the right number
    /// of channels, and keeps at least one.
    pub fn validate(&self, layers: &[LayerInfo]) -> Result<(), PruneError> {
        for (name, keep) in &self.layers {
            let info = find(layers, name)?;
            if keep.len() != info.out_channels {
                return Err(PruneError::Mask(format!(
                    "{name} has {} filters, the mask {}",
                    info.out_channels,
                    keep.len()
                )));
            }
            if !keep.contains(&true) {
                return Err(PruneError::Mask(format!("{name} keeps no filter")));
            }
        }
        Ok(())
    }
}

/// A prunable layer by name: a hidden layer of the table, not the classifier head.
pub(crate) fn find<'a>(layers: &'a [LayerInfo], name: &str) -> Result<&'a LayerInfo, PruneError> {
    find_hidden_layer(layers, name).map_err(|e| match e {
        ModelError::NotHidden {
            layer,
            exists: true,
            ..
        } => PruneError::NotPrunable(layer),
        ModelError::NotHidden { layer, hidden, .. } => PruneError::UnknownLayer {
            layer,
            available: hidden,
        },
        other => PruneError::Layer(other),
    })
}

/// How the ratio applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Prune `⌊ratio·n⌋` filters of each layer.
    PerLayer,
    /// Prune `⌊ratio·total⌋` filters over all the layers together, lowest scores first after
    /// dividing each layer's scores by their mean absolute value (so layers of different scales
    /// compete fairly), keeping at least one filter per layer.
    Global,
}

/// A mask pruning `ratio` of the filters of the layers in `scores` (layer → one score per
/// filter; the lowest go first; ties broken by channel index).
pub fn plan(
    scores: &BTreeMap<String, Vec<f64>>,
    ratio: f64,
    scope: Scope,
) -> Result<Mask, PruneError> {
    if !(0.0..1.0).contains(&ratio) {
        return Err(PruneError::Ratio(ratio));
    }
    let mut mask = Mask::default();
    match scope {
        Scope::PerLayer => {
            for (layer, s) in scores {
                let n = s.len();
                let prune = ((ratio * n as f64).floor() as usize).min(n.saturating_sub(1));
                let mut idx: Vec<usize> = (0..n).collect();
                idx.sort_by(|&a, &b| s[a].total_cmp(&s[b]).then(a.cmp(&b)));
                let mut keep = vec![true; n];
                for &i in &idx[..prune] {
                    keep[i] = false;
                }
                mask.layers.insert(layer.clone(), keep);
            }
        }
        Scope::Global => {
            let mut all: Vec<(f64, &str, usize)> = Vec::new();
            for (layer, s) in scores {
                let scale = s.iter().map(|v| v.abs()).sum::<f64>() / s.len().max(1) as f64;
                let scale = if scale > 0.0 { scale } else { 1.0 };
                all.extend(
                    s.iter()
                        .enumerate()
                        .map(|(i, v)| (v / scale, layer.as_str(), i)),
                );
                mask.layers.insert(layer.clone(), vec![true; s.len()]);
            }
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)).then(a.2.cmp(&b.2)));
            let mut budget = (ratio * all.len() as f64).floor() as usize;
            for (_, layer, i) in all {
                if budget == 0 {
                    break;
                }
                let keep = mask.layers.get_mut(layer).expect("inserted above");
                if keep.iter().filter(|&&k| k).count() > 1 {
                    keep[i] = false;
                    budget -= 1;
                }
            }
        }
    }
    Ok(mask)
}

/// Zero the pruned filters of `module`, on the host: the weight slice and the bias of each,
/// and the `gamma` and `beta` of a normalization that follows the layer (else its shift would
/// keep the channel alive). Returns the module with the same parameter ids.
pub fn apply_mask<M: Module>(
    module: M,
    mask: &Mask,
    layers: &[LayerInfo],
) -> Result<M, PruneError> {
    let values = masked_values(&HostParams::read(&module), mask, layers)?;
    Ok(params::write(module, values)?)
}

/// The parameters [`apply_mask`] changes, with their pruned entries zeroed, from the module's
/// host parameters `params` (so a caller that already holds them reads them only once).
pub fn masked_values(
    params: &HostParams,
    mask: &Mask,
    layers: &[LayerInfo],
) -> Result<HashMap<String, Vec<f32>>, PruneError> {
    mask.validate(layers)?;
    let get = |path: &str| params.get(path);
    let missing = |path: String| PruneError::Mask(format!("the model has no parameter {path}"));
    let mut values = HashMap::new();
    for name in mask.layers.keys() {
        let info = find(layers, name)?;
        let pruned = mask.pruned(name);
        let w = get(&info.weight_path()).ok_or_else(|| missing(info.weight_path()))?;
        let mut v = w.values.clone();
        for &o in &pruned {
            for k in 0..info.filter_len() {
                v[info.weight_index(o, k)] = 0.0;
            }
        }
        values.insert(w.path.clone(), v);
        for p in per_channel_params(info, get)? {
            let mut v = p.values.clone();
            for &o in &pruned {
                v[o] = 0.0;
            }
            values.insert(p.path.clone(), v);
        }
    }
    Ok(values)
}

/// The per-channel parameters zeroed with a layer's filters, looked up by `get`: the bias if the
/// layer has one, and the normalization's `gamma` and `beta`, which must exist when the table
/// names a normalization.
fn per_channel_params<'a>(
    info: &LayerInfo,
    get: impl Fn(&str) -> Option<&'a HostParam>,
) -> Result<Vec<&'a HostParam>, PruneError> {
    let mut out: Vec<_> = get(&info.bias_path()).into_iter().collect();
    for path in info.norm_paths() {
        let p = get(&path).ok_or_else(|| {
            PruneError::Mask(format!(
                "{} is followed by normalization {}, but the model has no parameter {path}",
                info.name,
                info.norm.as_deref().unwrap_or_default()
            ))
        })?;
        out.push(p);
    }
    Ok(out)
}

/// The mask as 0/1 tensors on a device, to re-zero the pruned filters after every optimizer
/// step of a fine-tuning (the optimizer would otherwise revive them).
pub struct DeviceMask {
    factors: HashMap<String, Tensor<1>>,
}

impl DeviceMask {
    /// Upload `mask` for a model with `layers` to `device`.
    pub fn new(mask: &Mask, layers: &[LayerInfo], device: &Device) -> Result<Self, PruneError> {
        mask.validate(layers)?;
        let mut factors = HashMap::new();
        for name in mask.layers.keys() {
            let info = find(layers, name)?;
            let keep = &mask.layers[name];
            let n: usize = info.weight_shape.iter().product();
            let mut w = vec![1.0f32; n];
            for o in mask.pruned(name) {
                for k in 0..info.filter_len() {
                    w[info.weight_index(o, k)] = 0.0;
                }
            }
            let b: Vec<f32> = keep.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect();
            let upload = |v: Vec<f32>| {
                let len = v.len();
                Tensor::<1>::from_data(TensorData::new(v, [len]), device)
            };
            factors.insert(info.weight_path(), upload(w));
            // Per-channel vectors; a path the model lacks (a layer without bias) never matches.
            for path in std::iter::once(info.bias_path()).chain(info.norm_paths()) {
                factors.insert(path, upload(b.clone()));
            }
        }
        Ok(DeviceMask { factors })
    }

    /// Multiply the masked parameters by their 0/1 factors: pruned entries become exactly 0.
    pub fn enforce<M: Module>(&self, module: M) -> M {
        struct Enforce<'a> {
            factors: &'a HashMap<String, Tensor<1>>,
        }
        impl ParamMapper for Enforce<'_> {
            fn map<const D: usize>(
                &mut self,
                path: &str,
                param: Param<Tensor<D>>,
            ) -> Param<Tensor<D>> {
                let Some(f) = self.factors.get(path) else {
                    return param;
                };
                let id = param.id;
                let value = param.val();
                let f = f.clone().reshape(value.shape()).to_device(&value.device());
                // A new leaf: compute, detach from the graph, then mark trainable again.
                let mut p = Param::from_tensor(value.mul(f).detach());
                p.id = id;
                p
            }
        }
        params::map(
            module,
            &mut Enforce {
                factors: &self.factors,
            },
        )
    }
}

/// How FLOPs are counted: what every `flops` figure of this crate (and the benchmark) means.
pub const FLOP_CONVENTION: &str = "forward pass per image; a multiply-add of a conv or linear \
    layer counts 2 FLOPs; biases, activations, pooling and normalization are not counted";

/// What a mask removes from one layer: its pruned filters, and its inputs that only ever read
/// a pruned filter of the layer before (each weight counted once, even when it belongs to both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerEffect {
    /// The layer.
    pub layer: String,
    /// Its filters (output channels or units).
    pub filters: usize,
    /// Filters pruned.
    pub pruned: usize,
    /// The pruned channel indices.
    pub pruned_channels: Vec<usize>,
    /// Its input channels (features for a linear layer).
    pub inputs: usize,
    /// Inputs that now only see zeros (they read a pruned filter of the producing layer).
    pub dead_inputs: usize,
    /// Parameters effectively removed: weights of pruned filters or dead inputs, and the bias
    /// and normalization entries of pruned filters.
    pub params_removed: usize,
    /// Forward FLOPs per image effectively removed (see [`FLOP_CONVENTION`]).
    pub flops_removed: f64,
}

/// What a mask removes from a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PruneEffect {
    /// Every layer that loses something.
    pub layers: Vec<LayerEffect>,
    /// Parameters of the conv and linear layers (and their normalizations) of the whole model.
    pub total_params: usize,
    /// Parameters effectively removed: exactly what a physically smaller model lacks.
    pub params_removed: usize,
    /// Forward FLOPs per image of the whole model.
    pub total_flops: f64,
    /// Forward FLOPs per image effectively removed.
    pub flops_removed: f64,
    /// How FLOPs are counted.
    pub flop_convention: String,
}

/// Forward FLOPs per image of a layer (see [`FLOP_CONVENTION`]).
pub fn layer_flops(l: &LayerInfo) -> f64 {
    2.0 * (l.fan_in * l.out_channels) as f64 * positions(l)
}

/// Output positions per image at which a layer's weights are applied.
fn positions(l: &LayerInfo) -> f64 {
    match l.kind {
        LayerKind::Conv2d => (l.output_hw[0] * l.output_hw[1]) as f64,
        LayerKind::Linear => 1.0,
    }
}

/// Parameters of a layer: its weights, and a bias and normalization entries per filter.
fn layer_params(l: &LayerInfo) -> usize {
    l.weight_shape.iter().product::<usize>() + l.out_channels * (1 + l.norm_paths().len())
}

/// Count what `mask` removes: in every layer, the weights that belong to a pruned filter or read
/// a dead input (counted once), and the bias and normalization entries of pruned filters. This
/// equals the difference between the model and its compact export, parameter for parameter.
pub fn effect(mask: &Mask, layers: &[LayerInfo]) -> Result<PruneEffect, PruneError> {
    mask.validate(layers)?;
    let mut out = Vec::new();
    for info in layers {
        let kept_out = mask.kept(&info.name, info.out_channels).len();
        let dead_inputs = model::producer(layers, &info.name).map_or(0, |p| {
            mask.pruned(&p.name).len() * p.consumer_inputs_per_channel
        });
        let pruned = info.out_channels - kept_out;
        if pruned == 0 && dead_inputs == 0 {
            continue;
        }
        let kept_in = info.in_channels - dead_inputs;
        // Weights per (output, input) pair: the kernel area of a conv, 1 for a linear layer.
        let per_pair =
            info.weight_shape.iter().product::<usize>() / (info.out_channels * info.in_channels);
        let weights_removed =
            (info.out_channels * info.in_channels - kept_out * kept_in) * per_pair;
        out.push(LayerEffect {
            layer: info.name.clone(),
            filters: info.out_channels,
            pruned,
            pruned_channels: mask.pruned(&info.name),
            inputs: info.in_channels,
            dead_inputs,
            params_removed: weights_removed + pruned * (1 + info.norm_paths().len()),
            flops_removed: 2.0 * weights_removed as f64 * positions(info),
        });
    }
    Ok(PruneEffect {
        params_removed: out.iter().map(|e| e.params_removed).sum(),
        flops_removed: out.iter().map(|e| e.flops_removed).sum(),
        layers: out,
        total_params: layers.iter().map(layer_params).sum(),
        total_flops: layers.iter().map(layer_flops).sum(),
        flop_convention: FLOP_CONVENTION.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use model::{Classifier, RefCnnConfig};

    fn scores() -> BTreeMap<String, Vec<f64>> {
        BTreeMap::from([
            ("a".to_string(), vec![4.0, 1.0, 3.0, 2.0]),
            ("b".to_string(), vec![10.0, 30.0]),
        ])
    }

    #[test]
    fn per_layer_and_global_plans() {
        let m = plan(&scores(), 0.5, Scope::PerLayer).unwrap();
        assert_eq!(m.layers["a"], vec![true, false, true, false]);
        assert_eq!(m.layers["b"], vec![false, true]);
        // Global over 6 filters: 3 pruned. Normalized: a/2.5 = 1.6 0.4 1.2 0.8; b/20 = 0.5 1.5.
        let g = plan(&scores(), 0.5, Scope::Global).unwrap();
        assert_eq!(g.layers["a"], vec![true, false, true, false]);
        assert_eq!(g.layers["b"], vec![false, true]);
        let g = plan(&scores(), 0.7, Scope::Global).unwrap();
        // 4 pruned: 0.4, 0.5, 0.8, then 1.2 (b keeps its last filter).
        assert_eq!(g.layers["a"], vec![true, false, false, false]);
        assert_eq!(g.layers["b"], vec![false, true]);
        assert!(plan(&scores(), 1.0, Scope::PerLayer).is_err());
        assert!(plan(&scores(), -0.1, Scope::PerLayer).is_err());
    }

    #[test]
    fn zeroing_is_exact_and_effects_are_counted() {
        let device = Device::flex();
        let model = RefCnnConfig::new().init(&device);
        let layers = model.layers();
        let mut keep = vec![true; 64];
        keep[3] = false;
        keep[60] = false;
        let mask = Mask {
            layers: BTreeMap::from([("conv2".to_string(), keep)]),
        };
        let model = apply_mask(model, &mask, &layers).unwrap();
        let params = HostParams::read(&model);
        let w = params.values("conv2.weight").unwrap();
        let b = params.values("conv2.bias").unwrap();
        for o in 0..64 {
            let zero = w[o * 288..(o + 1) * 288].iter().all(|&v| v == 0.0) && b[o] == 0.0;
            assert_eq!(zero, o == 3 || o == 60, "filter {o}");
        }
        let e = effect(&mask, &layers).unwrap();
        // Each conv2 filter: 32·9 weights + 1 bias; fc1 reads 49 features per channel, each
        // with 128 weights.
        assert_eq!(e.params_removed, 2 * (288 + 1) + 2 * 49 * 128);
        assert_eq!(e.layers[1].layer, "fc1");
        assert_eq!(e.layers[1].dead_inputs, 98);
        // conv2 FLOPs per filter: 2·288·14·14; fc1 per input feature: 2·128.
        let want = 2.0 * (2.0 * 288.0 * 196.0) + 98.0 * 256.0;
        assert!((e.flops_removed - want).abs() < 1e-6);
        assert_eq!(e.total_params, 421_642);
        let head = Mask {
            layers: BTreeMap::from([("fc2".to_string(), vec![true; 10])]),
        };
        assert!(matches!(
            head.validate(&layers),
            Err(PruneError::NotPrunable(_))
        ));
        let bogus = Mask {
            layers: BTreeMap::from([("conv9".to_string(), vec![true])]),
        };
        assert!(
            bogus
                .validate(&layers)
                .unwrap_err()
                .to_string()
                .contains("conv1, conv2, fc1")
        );
    }

    #[test]
    fn device_mask_keeps_pruned_filters_at_zero() {
        let device = Device::flex().autodiff();
        let model = RefCnnConfig::new().with_width(0.25).init(&device);
        let layers = model.layers();
        let mut keep = vec![true; 8];
        keep[0] = false;
        let mask = Mask {
            layers: BTreeMap::from([("conv1".to_string(), keep)]),
        };
        let enforcer = DeviceMask::new(&mask, &layers, &device).unwrap();
        // Perturb every weight, then enforce.
        let perturbed =
            params::write(model, [("conv1.weight".to_string(), vec![0.5f32; 72])]).unwrap();
        let masked = enforcer.enforce(perturbed);
        let w = HostParams::read(&masked);
        let w = w.values("conv1.weight").unwrap();
        assert!(w[..9].iter().all(|&v| v == 0.0));
        assert!(w[9..].iter().all(|&v| v == 0.5));
        // Still trainable: a backward pass reaches conv1.
        let x = Tensor::<4>::ones([1, 1, 28, 28], &device);
        let grads = masked.forward(x).sum().backward();
        assert!(masked.conv1.weight.val().grad(&grads).is_some());
    }
}
