//! Everything about one pair of networks of the same architecture: filter matching and CKA per
//! layer, three alignments of B onto A (none, by activations, by weights), and the interpolation
//! between A and each aligned B.

use burn::tensor::Tensor;
use model::features::CrossMoments;
use model::{Classifier, LayerKind};
use params::HostParams;
use serde::{Deserialize, Serialize};

use crate::CompareError;
use crate::cka::{MinibatchCka, linear_cka};
use crate::interpolate::{CurvePoint, barrier, lerp};
use crate::matching::{LayerMatch, match_layer};
use crate::permute::{Permutation, permute, weight_distance, weight_matching};
use crate::subspace::{DEFAULT_KS, JointCovariance, Subspace, subspace};

/// How a pair is compared.
#[derive(Debug, Clone, PartialEq)]
pub struct PairSettings {
    /// Use the exact CKA estimator (all images' Gram matrices at once) up to this many images;
    /// the debiased minibatch estimator is computed always.
    pub exact_cka_limit: usize,
    /// Points α of the interpolation lines (empty: no interpolation, the slowest part).
    pub alphas: Vec<f64>,
    /// Sweeps of weight matching at most.
    pub max_matching_rounds: usize,
    /// Numbers of B's feature maps from which each of A's is reconstructed (many-to-one).
    pub reconstruction_ks: Vec<usize>,
}

impl Default for PairSettings {
    fn default() -> Self {
        PairSettings {
            exact_cka_limit: 2000,
            alphas: crate::interpolate::alphas(11),
            max_matching_rounds: 100,
            reconstruction_ks: DEFAULT_KS.to_vec(),
        }
    }
}

/// First-layer filters of A, B and B aligned (one `kh × kw` tile per filter, averaged over input
/// channels), and the kernel size.
pub type FirstLayer = ([usize; 2], [Vec<Vec<f32>>; 3]);

/// One hidden layer of a pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerComparison {
    /// Conv or linear.
    pub kind: LayerKind,
    /// Matched and identity pairings.
    #[serde(flatten)]
    pub matching: LayerMatch,
    /// Linear CKA of the layer with the same layer of the other network (exact estimator).
    pub cka: Option<f64>,
    /// Debiased minibatch CKA of the same.
    pub cka_debiased: f64,
    /// Subspace similarity with the same layer of B: SVCCA, PWCCA, many-to-one reconstruction.
    pub subspace: Subspace,
}

/// An alignment of B onto A.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alignment {
    /// How it was found.
    pub method: String,
    /// The permutation applied to B.
    pub permutation: Permutation,
    /// Largest |logit difference| between B and permuted B on the compared images.
    pub max_abs_logit_change: f64,
    /// ‖θ_A − θ_B(permuted)‖₂.
    pub weight_distance: f64,
    /// Interpolation from A to permuted B.
    pub curve: Vec<CurvePoint>,
    /// Loss barrier of the curve.
    pub loss_barrier: Option<f64>,
    /// Error barrier (in accuracy points, 0–1) of the curve.
    pub error_barrier: Option<f64>,
}

/// The comparison of one pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairComparison {
    /// Images compared.
    pub samples: usize,
    /// Hidden layers.
    pub layers: Vec<LayerComparison>,
    /// Layer names of the CKA matrix (hidden layers, then `logits`).
    pub cka_layers: Vec<String>,
    /// Linear CKA of every layer of A (rows) with every layer of B (columns).
    pub cka_matrix: Option<Vec<Vec<f64>>>,
    /// Debiased minibatch CKA, same layout.
    pub cka_matrix_debiased: Vec<Vec<f64>>,
    /// ‖θ_A − θ_B‖₂ without alignment.
    pub weight_distance: f64,
    /// Naive interpolation (no alignment).
    pub naive: Alignment,
    /// B aligned by matching feature-map correlations.
    pub activation_aligned: Alignment,
    /// B aligned by weight matching (Git Re-Basin).
    pub weight_aligned: Alignment,
    /// Sweeps of weight matching until it converged.
    pub weight_matching_rounds: usize,
    /// First-layer filters of A, of B, and of B aligned onto A by weight matching, for figures.
    #[serde(skip)]
    pub first_layer: Option<FirstLayer>,
}

/// Row-major `XXᵀ` of a `[n, d]` tensor, on the host.
fn gram_of(x: Tensor<2>) -> Vec<f64> {
    x.clone()
        .matmul(x.transpose())
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("float")
        .into_iter()
        .map(f64::from)
        .collect()
}

/// `[N, C, H, W]` → `[N, C·H·W]`.
fn flat(t: Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = t.dims();
    t.reshape([n, c * h * w])
}

/// Compare networks `a` and `b` (the same architecture, on a device without autodiff) on
/// `batches` of the same images, each as normalized for A and for B (`[n, 1, H, W]`, n ≥ 4;
/// smaller batches are skipped). `evaluate` measures a network's test loss and accuracy (0–1),
/// for the interpolation curves.
pub fn compare_pair<M: Classifier, E: From<CompareError>>(
    a: &M,
    b: &M,
    batches: &[(Tensor<4>, Tensor<4>)],
    settings: &PairSettings,
    evaluate: impl Fn(&M) -> Result<(f64, f64), E>,
) -> Result<PairComparison, E> {
    let table = a.layers();
    if b.layers() != table {
        return Err(
            CompareError::Mismatch("the two networks have different layer tables".into()).into(),
        );
    }
    let hidden = model::hidden_layers(&table);
    let mut names: Vec<String> = hidden.iter().map(|l| l.name.clone()).collect();
    names.push("logits".into());
    let nl = names.len();
    let batches: Vec<&(Tensor<4>, Tensor<4>)> =
        batches.iter().filter(|(x, _)| x.dims()[0] >= 4).collect();
    let rows: usize = batches.iter().map(|(x, _)| x.dims()[0]).sum();
    if batches.is_empty() {
        return Err(
            CompareError::Mismatch("no batch of at least 4 images to compare on".into()).into(),
        );
    }
    let exact = rows <= settings.exact_cka_limit;
    let mut moments: Vec<Option<CrossMoments>> = vec![None; hidden.len()];
    let mut feats_a: Vec<Vec<Tensor<2>>> = vec![Vec::new(); nl];
    let mut feats_b: Vec<Vec<Tensor<2>>> = vec![Vec::new(); nl];
    let mut minibatch = vec![vec![MinibatchCka::default(); nl]; nl];
    let mut logits_b = Vec::new();
    for (xa, xb) in &batches {
        let n = xa.dims()[0];
        let (la, ta) = a.forward_taps(xa.clone());
        let (lb, tb) = b.forward_taps(xb.clone());
        logits_b.push((xb.clone(), lb.clone()));
        let mut fa: Vec<Tensor<2>> = ta.iter().map(|t| flat(t.post.clone())).collect();
        let mut fb: Vec<Tensor<2>> = tb.iter().map(|t| flat(t.post.clone())).collect();
        fa.push(la);
        fb.push(lb);
        for (k, (pa, pb)) in ta.iter().zip(&tb).enumerate() {
            // The joint moments of A's and B's channels: the A×B block gives the matching, the
            // whole matrix the subspace measures.
            let both = Tensor::cat(vec![pa.post.clone(), pb.post.clone()], 1);
            let [_, c, _, _] = both.dims();
            moments[k]
                .get_or_insert_with(|| CrossMoments::new(c, c))
                .update(&both, &both);
        }
        let ga: Vec<Vec<f64>> = fa.iter().map(|f| gram_of(f.clone())).collect();
        let gb: Vec<Vec<f64>> = fb.iter().map(|f| gram_of(f.clone())).collect();
        for r in 0..nl {
            for c in 0..nl {
                minibatch[r][c].update(&ga[r], &gb[c], n);
            }
        }
        if exact {
            for k in 0..nl {
                feats_a[k].push(fa[k].clone());
                feats_b[k].push(fb[k].clone());
            }
        }
    }
    let cka_matrix = exact.then(|| {
        let ga: Vec<Vec<f64>> = feats_a
            .iter()
            .map(|f| gram_of(Tensor::cat(f.clone(), 0)))
            .collect();
        let gb: Vec<Vec<f64>> = feats_b
            .iter()
            .map(|f| gram_of(Tensor::cat(f.clone(), 0)))
            .collect();
        (0..nl)
            .map(|r| (0..nl).map(|c| linear_cka(&ga[r], &gb[c], rows)).collect())
            .collect::<Vec<Vec<f64>>>()
    });
    let layers: Vec<LayerComparison> = hidden
        .iter()
        .enumerate()
        .map(|(k, info)| {
            let joint = moments[k].as_ref().expect("at least one batch");
            let c = info.out_channels;
            let corr: Vec<Vec<f64>> = joint
                .correlation()
                .into_iter()
                .take(c)
                .map(|row| row[c..].to_vec())
                .collect();
            let cov = JointCovariance::new(c, c, &joint.covariance())?;
            Ok(LayerComparison {
                kind: info.kind,
                matching: match_layer(&info.name, &corr),
                cka: cka_matrix.as_ref().map(|m| m[k][k]),
                cka_debiased: minibatch[k][k].value(),
                subspace: subspace(&cov, &settings.reconstruction_ks),
            })
        })
        .collect::<Result<_, CompareError>>()?;

    let pa = HostParams::read(a);
    let pb = HostParams::read(b);
    let activation_perm = Permutation {
        layers: layers
            .iter()
            .map(|l| (l.matching.layer.clone(), l.matching.perm.clone()))
            .collect(),
    };
    let (weight_perm, rounds) = weight_matching(&pa, &pb, &table, settings.max_matching_rounds)?;
    let align = |method: &str, perm: &Permutation| -> Result<Alignment, E> {
        let pb2 = permute(&pb, &table, perm)?;
        let change = params::with_values(b, pb2.clone(), |permuted| {
            let mut change = 0.0f64;
            for (xb, lb) in &logits_b {
                let d: f32 = (permuted.forward(xb.clone()) - lb.clone())
                    .abs()
                    .max()
                    .into_scalar();
                change = change.max(d as f64);
            }
            change
        })
        .map_err(CompareError::from)?;
        let curve = settings
            .alphas
            .iter()
            .map(|&alpha| {
                let mixed = lerp(&pa, &pb2, alpha)?;
                let (loss, accuracy) =
                    params::with_values(a, mixed, &evaluate).map_err(CompareError::from)??;
                Ok(CurvePoint {
                    alpha,
                    loss,
                    accuracy,
                })
            })
            .collect::<Result<Vec<_>, E>>()?;
        let b_loss: Vec<(f64, f64)> = curve.iter().map(|p| (p.alpha, p.loss)).collect();
        let b_err: Vec<(f64, f64)> = curve.iter().map(|p| (p.alpha, 1.0 - p.accuracy)).collect();
        Ok(Alignment {
            method: method.to_string(),
            permutation: perm.clone(),
            max_abs_logit_change: change,
            weight_distance: weight_distance(&pa, &pb2)?,
            loss_barrier: (!curve.is_empty()).then(|| barrier(&b_loss)),
            error_barrier: (!curve.is_empty()).then(|| barrier(&b_err)),
            curve,
        })
    };
    let first_layer = match table.first() {
        Some(info) => {
            let aligned = permute(&pb, &table, &weight_perm)?;
            let tiles = |p: &HostParams| -> Result<Vec<Vec<f32>>, CompareError> {
                Ok(info.kernel_tiles(p.values(&info.weight_path())?))
            };
            Some((info.kernel, [tiles(&pa)?, tiles(&pb)?, tiles(&aligned)?]))
        }
        None => None,
    };
    Ok(PairComparison {
        first_layer,
        samples: rows,
        weight_distance: weight_distance(&pa, &pb)?,
        naive: align("none", &Permutation::default())?,
        activation_aligned: align("activation matching", &activation_perm)?,
        weight_aligned: align("weight matching", &weight_perm)?,
        weight_matching_rounds: rounds,
        layers,
        cka_layers: names,
        cka_matrix,
        cka_matrix_debiased: minibatch
            .iter()
            .map(|row| row.iter().map(MinibatchCka::value).collect())
            .collect(),
    })
}
