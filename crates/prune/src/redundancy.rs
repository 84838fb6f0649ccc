//! Within-layer redundancy: filters that look alike, and filters that make the same feature map.

use serde::{Deserialize, Serialize};

use crate::filters::{cosine_matrix, root};
use crate::stats::ChannelStats;

/// Redundancy of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRedundancy {
    /// The layer.
    pub layer: String,
    /// Number of filters.
    pub filters: usize,
    /// Threshold on |correlation| for near-duplicates.
    pub threshold: f64,
    /// Pairwise cosine similarity of the filters' weights.
    pub weight_cosine: Vec<Vec<f64>>,
    /// Pairwise Pearson correlation of the filters' feature maps over the images.
    pub correlation: Vec<Vec<f64>>,
    /// Mean |correlation| over pairs of live filters.
    pub mean_abs_correlation: f64,
    /// Pairs `(i, j, corr)` of live filters with |corr| ≥ threshold, most correlated first.
    pub near_duplicates: Vec<(usize, usize, f64)>,
    /// Groups of two or more filters linked by near-duplicate pairs.
    pub clusters: Vec<Vec<usize>>,
    /// Filters never active (≤ 0 on every image at every position).
    pub dead: Vec<usize>,
    /// Filters a greedy pass could drop with every remaining one keeping a near-duplicate
    /// partner: `Σ (cluster size − 1)`.
    pub redundant: usize,
}

/// Analyse one layer from its filters and activation statistics.
pub fn analyze(
    layer: &str,
    filters: &[Vec<f32>],
    stats: &ChannelStats,
    threshold: f64,
) -> LayerRedundancy {
    let n = filters.len();
    let correlation = stats.correlation();
    let dead_flags = stats.dead();
    let dead: Vec<usize> = (0..n).filter(|&i| dead_flags[i]).collect();
    let live: Vec<usize> = (0..n).filter(|&i| !dead_flags[i]).collect();
    let mut pairs = Vec::new();
    let (mut sum, mut count) = (0.0, 0usize);
    for (a, &i) in live.iter().enumerate() {
        for &j in &live[a + 1..] {
            let c = correlation[i][j];
            sum += c.abs();
            count += 1;
            if c.abs() >= threshold {
                pairs.push((i, j, c));
            }
        }
    }
    pairs.sort_by(|a, b| b.2.abs().total_cmp(&a.2.abs()));
    // Connected components of the near-duplicate graph.
    let mut parent: Vec<usize> = (0..n).collect();
    for &(i, j, _) in &pairs {
        let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
        if ri != rj {
            parent[ri.max(rj)] = ri.min(rj);
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for i in 0..n {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let clusters: Vec<Vec<usize>> = groups.into_values().filter(|g| g.len() > 1).collect();
    LayerRedundancy {
        layer: layer.to_string(),
        filters: n,
        threshold,
        weight_cosine: cosine_matrix(filters),
        mean_abs_correlation: if count > 0 { sum / count as f64 } else { 0.0 },
        redundant: clusters.iter().map(|c| c.len() - 1).sum(),
        correlation,
        near_duplicates: pairs,
        clusters,
        dead,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Tensor, TensorData};

    #[test]
    fn duplicates_clusters_and_dead_filters() {
        // 4 channels over 6 positions: 0 and 1 proportional, 2 = -0 (anti-correlated), 3 dead.
        let base = [0.0f32, 1.0, 3.0, 2.0, 5.0, 4.0];
        let mut v = Vec::new();
        for c in 0..4 {
            for &x in &base {
                v.push(match c {
                    0 => x,
                    1 => 2.0 * x,
                    2 => 5.0 - x,
                    _ => 0.0,
                });
            }
        }
        let t = Tensor::<4>::from_data(TensorData::new(v, [1, 4, 2, 3]), &Device::flex());
        let mut s = ChannelStats::new(4);
        s.update(&t);
        let filters = vec![
            vec![1.0, 0.0],
            vec![2.0, 0.0],
            vec![0.0, 1.0],
            vec![0.0, 0.0],
        ];
        let r = analyze("x", &filters, &s, 0.9);
        assert_eq!(r.dead, vec![3]);
        assert_eq!(r.clusters, vec![vec![0, 1, 2]]);
        assert_eq!(r.redundant, 2);
        assert_eq!(r.near_duplicates.len(), 3);
        assert!((r.weight_cosine[0][1] - 1.0).abs() < 1e-12 && r.weight_cosine[0][2] == 0.0);
        assert!((r.mean_abs_correlation - 1.0).abs() < 1e-9);
        assert_eq!(s.apoz()[3], 1.0);
        assert!((s.apoz()[0] - 1.0 / 6.0).abs() < 1e-12);
    }
}
