//! Permuting hidden units: a symmetry of the network function, and the alignment of one
//! network onto another.
//!
//! Reordering the filters of a layer (its weights' output axis and bias) together with the
//! matching input channels of the layer that consumes its output leaves the network's function
//! unchanged. A [`Permutation`] maps, for each permuted layer, new unit `i` to old unit
//! `perm[i]`.

use std::collections::BTreeMap;

use model::{LayerInfo, LayerKind, find_hidden_layer, find_layer, hidden_layers, producer};
use params::HostParams;
use serde::{Deserialize, Serialize};

use crate::CompareError;
use crate::matching::assignment;

/// New unit `i` of each permuted layer is old unit `perm[i]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permutation {
    /// Layer → permutation of its output units.
    pub layers: BTreeMap<String, Vec<usize>>,
}

/// Size of one input channel's block within a filter of `info`: `kh·kw` for a conv; for a
/// linear layer, the features per channel its producer writes (1 if none).
fn in_block(info: &LayerInfo, layers: &[LayerInfo]) -> usize {
    match info.kind {
        LayerKind::Conv2d => info.kernel[0] * info.kernel[1],
        LayerKind::Linear => {
            producer(layers, &info.name).map_or(1, |p| p.consumer_inputs_per_channel)
        }
    }
}

/// The layer `name` can be permuted: a hidden layer, with its consumer in the table.
fn permutable<'a>(
    layers: &'a [LayerInfo],
    name: &str,
) -> Result<(&'a LayerInfo, &'a LayerInfo), CompareError> {
    let info = find_hidden_layer(layers, name)?;
    let consumer = find_layer(layers, info.consumer.as_deref().unwrap_or_default())?;
    Ok((info, consumer))
}

/// The per-channel vectors that move with a layer's units: its bias, and a following
/// normalization's `gamma`, `beta` (required) and running statistics (when present).
fn per_channel_paths(info: &LayerInfo, params: &HostParams) -> Result<Vec<String>, CompareError> {
    let mut paths: Vec<String> = Vec::new();
    if params.get(&info.bias_path()).is_some() {
        paths.push(info.bias_path());
    }
    for path in info.norm_paths() {
        params.values(&path)?;
        paths.push(path);
    }
    paths.extend(
        info.norm_buffer_paths()
            .into_iter()
            .filter(|p| params.get(p).is_some()),
    );
    Ok(paths)
}

/// Apply `perm` to parameters: each permuted layer's outputs (weights, bias, and a following
/// normalization's per-channel parameters and statistics) and its consumer's matching inputs
/// are reordered. Errors name a layer that cannot be permuted (unknown, or the classifier head)
/// or a permutation that is not one.
pub fn permute(
    params: &HostParams,
    layers: &[LayerInfo],
    perm: &Permutation,
) -> Result<HostParams, CompareError> {
    let mut out = params.clone();
    for (name, p) in &perm.layers {
        let (info, c) = permutable(layers, name)?;
        let mut seen = vec![false; info.out_channels];
        if p.len() != info.out_channels
            || !p
                .iter()
                .all(|&i| i < seen.len() && !std::mem::replace(&mut seen[i], true))
        {
            return Err(CompareError::Mismatch(format!(
                "the permutation of {name} is not a permutation of its {} units: {p:?}",
                info.out_channels
            )));
        }
        // Outputs: new filter o = old filter p[o].
        let w = out.values(&info.weight_path())?.to_vec();
        let mut nw = w.clone();
        for o in 0..info.out_channels {
            for k in 0..info.filter_len() {
                nw[info.weight_index(o, k)] = w[info.weight_index(p[o], k)];
            }
        }
        out.set(&info.weight_path(), nw)?;
        for path in per_channel_paths(info, &out)? {
            let v = out.values(&path)?;
            let nv = p.iter().map(|&o| v[o]).collect();
            out.set(&path, nv)?;
        }
        // The consumer's inputs: new input block i = old block p[i].
        let bs = in_block(c, layers);
        let w = out.values(&c.weight_path())?.to_vec();
        let mut nw = w.clone();
        for o in 0..c.out_channels {
            for (i, &src) in p.iter().enumerate() {
                for t in 0..bs {
                    nw[c.weight_index(o, i * bs + t)] = w[c.weight_index(o, src * bs + t)];
                }
            }
        }
        out.set(&c.weight_path(), nw)?;
    }
    Ok(out)
}

/// Euclidean distance between two parameter sets over every parameter of `a` (summed in `a`'s
/// traversal order, so the result is the same bits every time).
pub fn weight_distance(a: &HostParams, b: &HostParams) -> Result<f64, CompareError> {
    let mut s = 0.0f64;
    for pa in a {
        let vb = b.values(&pa.path)?;
        if pa.values.len() != vb.len() {
            return Err(CompareError::Mismatch(format!("{} sizes differ", pa.path)));
        }
        s += pa
            .values
            .iter()
            .zip(vb)
            .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
            .sum::<f64>();
    }
    Ok(s.sqrt())
}

/// Weight matching (Ainsworth et al. 2023, "Git Re-Basin", Algorithm 1): coordinate descent
/// over the hidden layers, each step solving the linear assignment that maximizes
/// `Σ ⟨A's weights, permuted B's weights⟩` over everything touching that layer's units (its
/// filters with inputs permuted by the producer's current permutation, its per-channel vectors
/// — bias and normalization — and the consumer's weights with outputs permuted by the
/// consumer's current permutation), until no permutation changes (at most `max_rounds` sweeps).
/// Returns the permutation that aligns B onto A and the number of sweeps.
pub fn weight_matching(
    a: &HostParams,
    b: &HostParams,
    layers: &[LayerInfo],
    max_rounds: usize,
) -> Result<(Permutation, usize), CompareError> {
    let hidden = hidden_layers(layers);
    let mut perm = Permutation {
        layers: hidden
            .iter()
            .map(|l| (l.name.clone(), (0..l.out_channels).collect()))
            .collect(),
    };
    let mut rounds = 0;
    while rounds < max_rounds {
        rounds += 1;
        let mut changed = false;
        for info in &hidden {
            let (_, c) = permutable(layers, &info.name)?;
            let n = info.out_channels;
            let mut s = vec![vec![0.0f64; n]; n];
            // Own filters, B's inputs gathered by the producer's permutation.
            let in_perm = producer(layers, &info.name).and_then(|p| perm.layers.get(&p.name));
            let bs = in_block(info, layers);
            let (wa, wb) = (
                a.values(&info.weight_path())?,
                b.values(&info.weight_path())?,
            );
            let blocks = info.filter_len() / bs;
            for (i, row) in s.iter_mut().enumerate() {
                for (j, cell) in row.iter_mut().enumerate() {
                    let mut dot = 0.0;
                    for blk in 0..blocks {
                        let src = in_perm.map_or(blk, |p| p[blk]);
                        for t in 0..bs {
                            dot += wa[info.weight_index(i, blk * bs + t)] as f64
                                * wb[info.weight_index(j, src * bs + t)] as f64;
                        }
                    }
                    *cell += dot;
                }
            }
            for path in per_channel_paths(info, a)? {
                let (va, vb) = (a.values(&path)?, b.values(&path)?);
                for (i, row) in s.iter_mut().enumerate() {
                    for (j, cell) in row.iter_mut().enumerate() {
                        *cell += va[i] as f64 * vb[j] as f64;
                    }
                }
            }
            // The consumer's weights reading unit i (A) and unit j (B), B's outputs permuted.
            let out_perm = perm.layers.get(&c.name);
            let cbs = in_block(c, layers);
            let (ca, cb) = (a.values(&c.weight_path())?, b.values(&c.weight_path())?);
            for (i, row) in s.iter_mut().enumerate() {
                for (j, cell) in row.iter_mut().enumerate() {
                    let mut dot = 0.0;
                    for o in 0..c.out_channels {
                        let ob = out_perm.map_or(o, |p| p[o]);
                        for t in 0..cbs {
                            dot += ca[c.weight_index(o, i * cbs + t)] as f64
                                * cb[c.weight_index(ob, j * cbs + t)] as f64;
                        }
                    }
                    *cell += dot;
                }
            }
            let new = assignment(&s);
            let old = perm.layers.get_mut(&info.name).expect("initialized");
            // Only accept an improvement (guards against ties flipping back and forth).
            let score = |p: &[usize]| p.iter().enumerate().map(|(i, &j)| s[i][j]).sum::<f64>();
            if new != *old && score(&new) > score(old) + 1e-9 * score(old).abs().max(1.0) {
                *old = new;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    Ok((perm, rounds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Tensor};
    use model::{Classifier, RefCnnConfig};

    fn shuffled(n: usize, seed: u64) -> Vec<usize> {
        let mut rng = params::ParamRng::new(seed, "perm");
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = (rng.unit() * (i + 1) as f64) as usize;
            p.swap(i, j);
        }
        p
    }

    fn model_and_params() -> (model::RefCnn, Vec<LayerInfo>, HostParams) {
        let device = Device::flex();
        let spec: init::InitSpec = "he;*.bias=normal(0, 0.1)".parse().unwrap();
        let (m, _) = init::apply(
            RefCnnConfig::new().with_width(0.25).init(&device),
            &spec,
            5,
            &|_| None,
        )
        .unwrap();
        let layers = m.layers();
        let params = HostParams::read(&m);
        (m, layers, params)
    }

    fn planted(layers: &[LayerInfo]) -> Permutation {
        Permutation {
            layers: hidden_layers(layers)
                .iter()
                .enumerate()
                .map(|(k, l)| (l.name.clone(), shuffled(l.out_channels, k as u64)))
                .collect(),
        }
    }

    #[test]
    fn a_permuted_network_computes_the_same_function() {
        let (m, layers, params) = model_and_params();
        let p = planted(&layers);
        let permuted = permute(&params, &layers, &p).unwrap();
        assert!(weight_distance(&params, &permuted).unwrap() > 1.0);
        let m2 = params::write(m.clone(), permuted).unwrap();
        let x = Tensor::<4>::random(
            [4, 1, 28, 28],
            burn::tensor::Distribution::Default,
            &Device::flex(),
        );
        let d: f32 = (m.forward(x.clone()) - m2.forward(x))
            .abs()
            .max()
            .into_scalar();
        assert!(d < 1e-4, "logits differ by {d}");
    }

    #[test]
    fn weight_matching_undoes_a_planted_permutation() {
        let (_, layers, params) = model_and_params();
        let p = planted(&layers);
        let b = permute(&params, &layers, &p).unwrap();
        let (found, rounds) = weight_matching(&params, &b, &layers, 50).unwrap();
        assert!(rounds <= 50);
        let aligned = permute(&b, &layers, &found).unwrap();
        assert_eq!(weight_distance(&params, &aligned).unwrap(), 0.0);
        // Aligning B onto A inverts the planted permutation: found[i] = p⁻¹[i].
        for (name, planted) in &p.layers {
            let f = &found.layers[name];
            for (i, &j) in f.iter().enumerate() {
                assert_eq!(planted[j], i, "{name}");
            }
        }
    }

    #[test]
    fn permutations_move_a_following_normalization_and_refuse_the_head() {
        use burn::tensor::TensorData;
        use model::ConvBn;
        let device = Device::flex();
        let spec: init::InitSpec = "he;*.bias=normal(0, 0.1)".parse().unwrap();
        let (m, _) = init::apply(ConvBn::new(4, &device), &spec, 2, &|_| None).unwrap();
        // A normalization with a shift, a scale and running statistics of its own.
        let m = params::write(
            m,
            [
                ("bn.gamma", vec![1.5, 0.5, 2.0, 1.0]),
                ("bn.beta", vec![0.5, 0.25, -0.75, 1.0]),
                ("bn.running_mean", vec![-0.2, 0.1, 0.3, -0.4]),
                ("bn.running_var", vec![2.0, 0.5, 1.0, 3.0]),
            ]
            .map(|(p, v)| (p.to_string(), v)),
        )
        .unwrap();
        let table = ConvBn::table(4, true);
        let params = HostParams::read(&m);
        let perm = Permutation {
            layers: BTreeMap::from([("conv".to_string(), vec![2, 0, 3, 1])]),
        };
        let permuted = permute(&params, &table, &perm).unwrap();
        assert_eq!(
            permuted.values("bn.running_var").unwrap(),
            [1.0, 2.0, 3.0, 0.5]
        );
        // A fresh module: Burn shares running statistics between clones.
        let m2 = params::write(ConvBn::new(4, &device), permuted).unwrap();
        let x: Vec<f32> = (0..32).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
        let x = Tensor::<4>::from_data(TensorData::new(x, [2, 1, 4, 4]), &device);
        let d: f32 = (m.forward(x.clone()).1 - m2.forward(x).1)
            .abs()
            .max()
            .into_scalar();
        assert!(d < 1e-5, "logits differ by {d}");
        // Weight matching undoes it, normalization included.
        let b = permute(&params, &table, &perm).unwrap();
        let (found, _) = weight_matching(&params, &b, &table, 10).unwrap();
        let aligned = permute(&b, &table, &found).unwrap();
        assert_eq!(weight_distance(&params, &aligned).unwrap(), 0.0);

        // Errors, not panics: the head, an unknown layer, a non-permutation.
        let bad = |layer: &str, p: Vec<usize>| {
            let perm = Permutation {
                layers: BTreeMap::from([(layer.to_string(), p)]),
            };
            permute(&params, &table, &perm).unwrap_err().to_string()
        };
        assert!(bad("fc", vec![1, 0]).contains("produces the logits"));
        assert!(bad("conv9", vec![0]).contains("no layer 'conv9'"));
        assert!(bad("conv", vec![0, 0, 1, 2]).contains("not a permutation"));
        assert!(bad("conv", vec![0, 1]).contains("not a permutation"));
    }
}
