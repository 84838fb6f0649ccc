//! Permuting hidden units: a symmetry of the network function, and the alignment of one
//! network onto another.
//!
//! Reordering the filters of a layer (its weights' output axis and bias) together with the
//! matching input channels of the layer that consumes its output leaves the network's function
//! unchanged. A [`Permutation`] maps, for each permuted layer, new unit `i` to old unit
//! `perm[i]`.

use std::collections::{BTreeMap, HashMap};

use init::HostParam;
use model::{LayerInfo, LayerKind, hidden_layers};
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
        LayerKind::Linear => layers
            .iter()
            .find(|p| p.consumer.as_deref() == Some(info.name.as_str()))
            .map_or(1, |p| p.consumer_inputs_per_channel),
    }
}

fn value<'a>(
    params: &'a HashMap<String, Vec<f32>>,
    path: &str,
) -> Result<&'a Vec<f32>, CompareError> {
    params
        .get(path)
        .ok_or_else(|| CompareError::Mismatch(format!("no parameter {path}")))
}

/// Host parameters by path.
pub fn by_path(params: &[HostParam]) -> HashMap<String, Vec<f32>> {
    params
        .iter()
        .map(|p| (p.path.clone(), p.values.clone()))
        .collect()
}

/// Apply `perm` to parameters (path → values): each permuted layer's outputs and its
/// consumer's matching inputs are reordered.
pub fn permute(
    params: &HashMap<String, Vec<f32>>,
    layers: &[LayerInfo],
    perm: &Permutation,
) -> Result<HashMap<String, Vec<f32>>, CompareError> {
    let mut out = params.clone();
    for (name, p) in &perm.layers {
        let info = layers
            .iter()
            .find(|l| &l.name == name)
            .ok_or_else(|| CompareError::Mismatch(format!("no layer {name}")))?;
        if p.len() != info.out_channels {
            return Err(CompareError::Mismatch(format!(
                "{name} has {} units, the permutation {}",
                info.out_channels,
                p.len()
            )));
        }
        // Outputs: new filter o = old filter p[o].
        let w = value(&out, &info.weight_path())?.clone();
        let mut nw = w.clone();
        for o in 0..info.out_channels {
            for k in 0..info.filter_len() {
                nw[info.weight_index(o, k)] = w[info.weight_index(p[o], k)];
            }
        }
        out.insert(info.weight_path(), nw);
        if let Some(b) = out.get(&info.bias_path()).cloned() {
            out.insert(info.bias_path(), p.iter().map(|&o| b[o]).collect());
        }
        // The consumer's inputs: new input block i = old block p[i].
        let cname = info
            .consumer
            .as_ref()
            .expect("hidden layers have consumers");
        let c = layers
            .iter()
            .find(|l| &l.name == cname)
            .ok_or_else(|| CompareError::Mismatch(format!("no layer {cname}")))?;
        let bs = in_block(c, layers);
        let w = value(&out, &c.weight_path())?.clone();
        let mut nw = w.clone();
        for o in 0..c.out_channels {
            for (i, &src) in p.iter().enumerate() {
                for t in 0..bs {
                    nw[c.weight_index(o, i * bs + t)] = w[c.weight_index(o, src * bs + t)];
                }
            }
        }
        out.insert(c.weight_path(), nw);
    }
    Ok(out)
}

/// Euclidean distance between two parameter sets over every parameter of `a`.
pub fn weight_distance(
    a: &HashMap<String, Vec<f32>>,
    b: &HashMap<String, Vec<f32>>,
) -> Result<f64, CompareError> {
    let mut s = 0.0f64;
    for (path, va) in a {
        let vb = value(b, path)?;
        if va.len() != vb.len() {
            return Err(CompareError::Mismatch(format!("{path} sizes differ")));
        }
        s += va
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
/// filters with inputs permuted by the producer's current permutation, its biases, and the
/// consumer's weights with outputs permuted by the consumer's current permutation), until no
/// permutation changes (at most `max_rounds` sweeps). Returns the permutation that aligns B
/// onto A and the number of sweeps.
pub fn weight_matching(
    a: &HashMap<String, Vec<f32>>,
    b: &HashMap<String, Vec<f32>>,
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
            let n = info.out_channels;
            let mut s = vec![vec![0.0f64; n]; n];
            // Own filters, B's inputs gathered by the producer's permutation.
            let producer = layers
                .iter()
                .find(|p| p.consumer.as_deref() == Some(info.name.as_str()));
            let in_perm = producer.and_then(|p| perm.layers.get(&p.name));
            let bs = in_block(info, layers);
            let (wa, wb) = (
                value(a, &info.weight_path())?,
                value(b, &info.weight_path())?,
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
            if let (Some(ba), Some(bb)) = (a.get(&info.bias_path()), b.get(&info.bias_path())) {
                for (i, row) in s.iter_mut().enumerate() {
                    for (j, cell) in row.iter_mut().enumerate() {
                        *cell += ba[i] as f64 * bb[j] as f64;
                    }
                }
            }
            // The consumer's weights reading unit i (A) and unit j (B), B's outputs permuted.
            let cname = info.consumer.as_ref().expect("hidden");
            let c = layers
                .iter()
                .find(|l| &l.name == cname)
                .expect("consumer in table");
            let out_perm = perm.layers.get(cname);
            let cbs = in_block(c, layers);
            let (ca, cb) = (value(a, &c.weight_path())?, value(b, &c.weight_path())?);
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
        let mut rng = init::ParamRng::new(seed, "perm");
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = (rng.unit() * (i + 1) as f64) as usize;
            p.swap(i, j);
        }
        p
    }

    fn model_and_params() -> (model::RefCnn, Vec<LayerInfo>, HashMap<String, Vec<f32>>) {
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
        let params = by_path(&init::read_parameters(&m));
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
        let m2 = init::write_parameters(m.clone(), permuted).unwrap();
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
}
