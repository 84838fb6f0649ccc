//! Optimal one-to-one matching of filters between two runs.

use pathfinding::kuhn_munkres::kuhn_munkres;
use pathfinding::matrix::Matrix;
use serde::{Deserialize, Serialize};

/// The assignment `perm` maximizing `Σᵢ score[i][perm[i]]` (rows ≤ columns), by the Kuhn–Munkres
/// algorithm on scores scaled to integers (resolution 1e-9).
pub fn assignment(score: &[Vec<f64>]) -> Vec<usize> {
    let rows = score.len();
    if rows == 0 {
        return Vec::new();
    }
    let cols = score[0].len();
    let scale = 1e9 / score.iter().flatten().fold(1e-12f64, |m, v| m.max(v.abs()));
    let values: Vec<i64> = score
        .iter()
        .flatten()
        .map(|v| (v * scale).round() as i64)
        .collect();
    let m = Matrix::from_vec(rows, cols, values).expect("rectangular");
    kuhn_munkres(&m).1
}

/// How well the filters of run A are matched in run B under a pairing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairingStats {
    /// Mean correlation of paired filters.
    pub mean: f64,
    /// Pairs with correlation ≥ 0.9.
    pub at_least_0_9: usize,
    /// Pairs with correlation ≥ 0.5.
    pub at_least_0_5: usize,
    /// Histogram of the paired correlations: counts in 20 bins of width 0.1 over [-1, 1].
    pub histogram: Vec<usize>,
}

/// Statistics of the pairing `i ↔ perm[i]` under correlation matrix `corr`.
pub fn pairing_stats(corr: &[Vec<f64>], perm: &[usize]) -> PairingStats {
    let values: Vec<f64> = perm.iter().enumerate().map(|(i, &j)| corr[i][j]).collect();
    let mut histogram = vec![0usize; 20];
    for &v in &values {
        let bin = (((v + 1.0) / 0.1).floor() as isize).clamp(0, 19) as usize;
        histogram[bin] += 1;
    }
    PairingStats {
        mean: values.iter().sum::<f64>() / values.len().max(1) as f64,
        at_least_0_9: values.iter().filter(|&&v| v >= 0.9).count(),
        at_least_0_5: values.iter().filter(|&&v| v >= 0.5).count(),
        histogram,
    }
}

/// Matched and identity pairings of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerMatch {
    /// Layer.
    pub layer: String,
    /// Filters.
    pub filters: usize,
    /// The optimal pairing: A's filter `i` ↔ B's `perm[i]`.
    pub perm: Vec<usize>,
    /// Statistics of the optimal pairing.
    pub matched: PairingStats,
    /// Statistics of the identity pairing (`i ↔ i`): the baseline.
    pub identity: PairingStats,
}

/// Match one layer.
pub fn match_layer(layer: &str, corr: &[Vec<f64>]) -> LayerMatch {
    let perm = assignment(corr);
    let id: Vec<usize> = (0..corr.len()).collect();
    LayerMatch {
        layer: layer.to_string(),
        filters: corr.len(),
        matched: pairing_stats(corr, &perm),
        identity: pairing_stats(corr, &id),
        perm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_planted_permutation() {
        // corr[i][j] high exactly where j = planted[i], small noise elsewhere.
        let planted = [3usize, 0, 4, 1, 2, 6, 5];
        let n = planted.len();
        let corr: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| {
                        if j == planted[i] {
                            0.8 + 0.01 * i as f64
                        } else {
                            0.3 * (((i * 7 + j * 3) % 5) as f64 / 5.0)
                        }
                    })
                    .collect()
            })
            .collect();
        let m = match_layer("x", &corr);
        assert_eq!(m.perm, planted);
        assert!(m.matched.mean > 0.8 && m.identity.mean < 0.3);
        assert_eq!(m.matched.at_least_0_5, n);
        assert_eq!(m.matched.histogram.iter().sum::<usize>(), n);
    }

    #[test]
    fn beats_greedy_where_greedy_fails() {
        // Greedy takes (0,0)=0.9 then (1,1)=0.1: total 1.0. Optimal (0,1)+(1,0) = 0.8+0.8.
        let corr = vec![vec![0.9, 0.8], vec![0.8, 0.1]];
        assert_eq!(assignment(&corr), vec![1, 0]);
    }
}
