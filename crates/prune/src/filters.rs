//! A layer's filters as vectors: similarity between them, how many are distinct, how many
//! effectively different directions they span, and summary statistics of a whole model's filters.

use model::{LayerInfo, LayerKind};
use params::HostParams;
use serde::{Deserialize, Serialize};

use crate::PruneError;

/// The filters of a layer (one weight vector per output channel) and its biases (zeros for a
/// layer without bias), from the model's parameters.
pub fn layer_filters(
    info: &LayerInfo,
    params: &HostParams,
) -> Result<(Vec<Vec<f32>>, Vec<f32>), PruneError> {
    let weight = params.values(&info.weight_path())?;
    let bias = params
        .get(&info.bias_path())
        .map_or_else(|| vec![0.0; info.out_channels], |b| b.values.clone());
    Ok((info.filters(weight), bias))
}

/// Cosine similarity of two vectors (0 if either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64, y as f64);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa * bb).sqrt()
    }
}

/// Cosine similarity of every pair of `filters`.
pub fn cosine_matrix(filters: &[Vec<f32>]) -> Vec<Vec<f64>> {
    filters
        .iter()
        .map(|a| filters.iter().map(|b| cosine(a, b)).collect())
        .collect()
}

/// Mean and largest of the off-diagonal entries of a symmetric matrix (1 and 1 for fewer than
/// two rows: a single filter is the same as itself).
pub fn off_diagonal_mean_max(m: &[Vec<f64>]) -> (f64, f64) {
    let n = m.len();
    if n < 2 {
        return (1.0, 1.0);
    }
    let (mut sum, mut max) = (0.0, f64::NEG_INFINITY);
    for (i, row) in m.iter().enumerate() {
        for &v in &row[i + 1..] {
            sum += v;
            max = f64::max(max, v);
        }
    }
    (sum / (n * (n - 1) / 2) as f64, max)
}

/// The number of groups of filters equal within `tol` (relative to the larger max-abs of the
/// two, weights and bias together): 1 when every filter is the same.
pub fn distinct_count(filters: &[Vec<f32>], bias: &[f32], tol: f64) -> usize {
    let n = filters.len();
    let mut parent: Vec<usize> = (0..n).collect();
    let full: Vec<Vec<f64>> = filters
        .iter()
        .zip(bias)
        .map(|(f, b)| {
            f.iter()
                .chain(std::iter::once(b))
                .map(|&v| v as f64)
                .collect()
        })
        .collect();
    let scale: Vec<f64> = full
        .iter()
        .map(|f| f.iter().fold(0.0f64, |m, v| m.max(v.abs())))
        .collect();
    for i in 0..n {
        for j in i + 1..n {
            let limit = tol * scale[i].max(scale[j]);
            if full[i]
                .iter()
                .zip(&full[j])
                .all(|(a, b)| (a - b).abs() <= limit)
            {
                let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
                parent[ri] = rj;
            }
        }
    }
    (0..n).filter(|&i| root(&mut parent, i) == i).count()
}

/// Cosine similarity at or above which two filters count as the same direction for
/// [`cosine_groups`].
pub const GROUP_COSINE: f64 = 0.99;

/// The number of groups of filters linked by cosine similarity ≥ `threshold` (connected
/// components of that graph, weights only): the effective number of distinct filters. Unlike
/// [`distinct_count`], filters that differ by a tiny perturbation count as one.
pub fn cosine_groups(cos: &[Vec<f64>], threshold: f64) -> usize {
    let n = cos.len();
    let mut parent: Vec<usize> = (0..n).collect();
    for (i, row) in cos.iter().enumerate() {
        for (j, &c) in row.iter().enumerate().take(n).skip(i + 1) {
            if c >= threshold {
                let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
                parent[ri] = rj;
            }
        }
    }
    (0..n).filter(|&i| root(&mut parent, i) == i).count()
}

/// The effective rank (Roy and Vetterli 2007) of the filter matrix (one row per filter):
/// `exp(−Σ pᵢ ln pᵢ)` with `pᵢ = σᵢ / Σσ` over its singular values. 1 when every filter is a
/// multiple of one; `n` for `n` orthogonal filters of equal norm; 0 when all are zero.
pub fn effective_rank(filters: &[Vec<f32>]) -> f64 {
    let n = filters.len();
    if n == 0 {
        return 0.0;
    }
    // Singular values from the eigenvalues of the n × n Gram matrix.
    let gram = nalgebra::DMatrix::from_fn(n, n, |i, j| {
        filters[i]
            .iter()
            .zip(&filters[j])
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum::<f64>()
    });
    let sigma: Vec<f64> = nalgebra::SymmetricEigen::new(gram)
        .eigenvalues
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .collect();
    // Singular values below the eigensolver's rounding (relative to the largest) are zeros.
    let floor = 1e-7 * sigma.iter().fold(0.0f64, |m, &s| m.max(s));
    let sigma: Vec<f64> = sigma.into_iter().filter(|&s| s > floor).collect();
    let total: f64 = sigma.iter().sum();
    if total.is_nan() || total <= 0.0 {
        return 0.0;
    }
    let entropy: f64 = sigma
        .iter()
        .map(|s| s / total)
        .filter(|&p| p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    entropy.exp()
}

/// The root of `i` in a union-find forest, compressing the path.
pub(crate) fn root(p: &mut [usize], mut i: usize) -> usize {
    while p[i] != i {
        p[i] = p[p[i]];
        i = p[i];
    }
    i
}

/// One layer's filters, summarized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerInspection {
    /// Layer name.
    pub layer: String,
    /// Conv or linear.
    pub kind: LayerKind,
    /// Whether another layer reads its output (every layer but the classifier head).
    pub hidden: bool,
    /// Number of filters (output channels or units).
    pub filters: usize,
    /// Values per filter (weights, plus the bias).
    pub filter_len: usize,
    /// Filters that differ from every other by more than the tolerance, counted as groups of
    /// identical filters.
    pub distinct_filters: usize,
    /// Mean cosine similarity over all pairs of filters (weights only).
    pub mean_pairwise_cosine: f64,
    /// Largest cosine similarity between two different filters.
    pub max_pairwise_cosine: f64,
    /// Mean of the weights.
    pub weight_mean: f64,
    /// Standard deviation of the weights.
    pub weight_std: f64,
    /// Smallest weight.
    pub weight_min: f64,
    /// Largest weight.
    pub weight_max: f64,
    /// Mean L2 norm of a filter's weights.
    pub mean_filter_norm: f64,
    /// Groups of filters linked by cosine similarity ≥ [`GROUP_COSINE`].
    pub cosine_groups: usize,
    /// Effective rank of the filter matrix.
    pub effective_rank: f64,
}

/// Summarize every layer of `table` from the model's parameters; filters are the same when they
/// differ by at most `tol` (relative).
pub fn inspect(
    table: &[LayerInfo],
    params: &HostParams,
    tol: f64,
) -> Result<Vec<LayerInspection>, PruneError> {
    table
        .iter()
        .map(|info| {
            let (filters, bias) = layer_filters(info, params)?;
            let n = filters.len();
            let cos = cosine_matrix(&filters);
            let (mean_cos, max_cos) = off_diagonal_mean_max(&cos);
            let all: Vec<f64> = filters.iter().flatten().map(|&v| v as f64).collect();
            let mean = all.iter().sum::<f64>() / all.len() as f64;
            let std =
                (all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / all.len() as f64).sqrt();
            let norms: f64 = filters
                .iter()
                .map(|f| f.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt())
                .sum();
            Ok(LayerInspection {
                layer: info.name.clone(),
                kind: info.kind,
                hidden: info.consumer.is_some(),
                filters: n,
                filter_len: filters.first().map_or(0, Vec::len) + 1,
                distinct_filters: distinct_count(&filters, &bias, tol),
                mean_pairwise_cosine: mean_cos,
                max_pairwise_cosine: max_cos,
                weight_mean: mean,
                weight_std: std,
                weight_min: all.iter().cloned().fold(f64::INFINITY, f64::min),
                weight_max: all.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                mean_filter_norm: norms / n.max(1) as f64,
                cosine_groups: cosine_groups(&cos, GROUP_COSINE),
                effective_rank: effective_rank(&filters),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_counts_groups() {
        let f = vec![
            vec![1.0, 2.0],
            vec![1.0, 2.0],
            vec![1.0, 2.000001],
            vec![-1.0, 0.0],
        ];
        assert_eq!(distinct_count(&f, &[0.0; 4], 0.0), 3);
        assert_eq!(distinct_count(&f, &[0.0; 4], 1e-5), 2);
        // Biases count too.
        assert_eq!(distinct_count(&f[..2], &[0.0, 1.0], 1e-5), 2);
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - 0.5f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn pairwise_summaries() {
        let m = cosine_matrix(&[vec![1.0, 0.0], vec![1.0, 1.0], vec![0.0, 0.0]]);
        assert_eq!(m[2], vec![0.0, 0.0, 0.0]);
        let (mean, max) = off_diagonal_mean_max(&m);
        assert!((max - 0.5f64.sqrt()).abs() < 1e-12);
        assert!((mean - 0.5f64.sqrt() / 3.0).abs() < 1e-12);
        assert_eq!(off_diagonal_mean_max(&[vec![1.0]]), (1.0, 1.0));
    }

    #[test]
    fn groups_of_nearly_parallel_filters() {
        // 0 and 1 differ by a tiny perturbation (distinct, but one direction); 2 is a multiple of
        // 0; 3 points elsewhere; 4 is zero (its own group).
        let f = vec![
            vec![1.0, 2.0, 3.0],
            vec![1.0, 2.0, 3.0001],
            vec![2.0, 4.0, 6.0],
            vec![3.0, -1.0, 0.0],
            vec![0.0, 0.0, 0.0],
        ];
        assert_eq!(distinct_count(&f, &[0.0; 5], 1e-6), 5);
        assert_eq!(cosine_groups(&cosine_matrix(&f), GROUP_COSINE), 3);
        assert_eq!(cosine_groups(&cosine_matrix(&f), 1.1), 5);
    }

    #[test]
    fn effective_rank_of_hand_cases() {
        // n orthogonal filters of equal norm: n.
        let eye: Vec<Vec<f32>> = (0..4)
            .map(|i| (0..6).map(|j| if i == j { 2.0 } else { 0.0 }).collect())
            .collect();
        assert!((effective_rank(&eye) - 4.0).abs() < 1e-9);
        // Every filter a multiple of one: 1.
        let same: Vec<Vec<f32>> = (1..5)
            .map(|k| vec![k as f32, -(k as f32), 0.5 * k as f32])
            .collect();
        let r = effective_rank(&same);
        assert!((r - 1.0).abs() < 1e-6, "{r}");
        // Two orthogonal directions with singular values 3 and 1: p = (3/4, 1/4).
        let two = vec![vec![3.0, 0.0], vec![0.0, 1.0]];
        let want = (-(0.75f64 * 0.75f64.ln() + 0.25 * 0.25f64.ln())).exp();
        assert!((effective_rank(&two) - want).abs() < 1e-9);
        assert_eq!(effective_rank(&vec![vec![0.0; 3]; 2]), 0.0);
        assert_eq!(effective_rank(&[]), 0.0);
    }
}
