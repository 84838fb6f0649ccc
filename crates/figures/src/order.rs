//! Ordering units so that similar ones sit together.

/// The leaf order of an average-linkage hierarchical clustering of `n` units with similarity
/// matrix `sim` (distance `1 − |sim|`): units that are near-duplicates (of either sign) end up
/// next to each other, so a heatmap in this order shows them as blocks. Deterministic: ties
/// merge the lowest indices first. Non-finite entries count as unrelated.
pub fn cluster_order(sim: &[Vec<f64>]) -> Vec<usize> {
    let n = sim.len();
    let d = |i: usize, j: usize| -> f64 {
        let v = sim[i].get(j).copied().unwrap_or(0.0);
        if v.is_finite() {
            1.0 - v.abs().min(1.0)
        } else {
            1.0
        }
    };
    // Active clusters: members in leaf order; distances between clusters (Lance–Williams).
    let mut members: Vec<Option<Vec<usize>>> = (0..n).map(|i| Some(vec![i])).collect();
    let mut dist: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| d(i, j)).collect()).collect();
    for _ in 1..n {
        let mut best: Option<(usize, usize, f64)> = None;
        for i in 0..n {
            if members[i].is_none() {
                continue;
            }
            for j in i + 1..n {
                if members[j].is_none() {
                    continue;
                }
                if best.is_none_or(|(_, _, b)| dist[i][j] < b) {
                    best = Some((i, j, dist[i][j]));
                }
            }
        }
        let Some((i, j, _)) = best else { break };
        let (a, b) = (
            members[i].take().unwrap_or_default(),
            members[j].take().unwrap_or_default(),
        );
        let (na, nb) = (a.len() as f64, b.len() as f64);
        for k in 0..n {
            if members[k].is_some() && k != i {
                let v = (na * dist[i][k] + nb * dist[j][k]) / (na + nb);
                dist[i][k] = v;
                dist[k][i] = v;
            }
        }
        members[i] = Some(a.into_iter().chain(b).collect());
    }
    members.into_iter().flatten().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_come_together() {
        // Units 0, 2, 4 are near-duplicates (one anti-correlated), as are 1 and 3.
        let mut m = vec![vec![0.05; 5]; 5];
        for (i, row) in m.iter_mut().enumerate() {
            row[i] = 1.0;
        }
        for (i, j, v) in [(0, 2, 0.95), (0, 4, -0.9), (2, 4, -0.92), (1, 3, 0.97)] {
            m[i][j] = v;
            m[j][i] = v;
        }
        let order = cluster_order(&m);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![0, 1, 2, 3, 4]);
        let pos = |u: usize| order.iter().position(|&x| x == u).unwrap() as i64;
        assert_eq!((pos(1) - pos(3)).abs(), 1, "{order:?}");
        let block = [pos(0), pos(2), pos(4)];
        assert_eq!(block.iter().max().unwrap() - block.iter().min().unwrap(), 2);
        assert_eq!(cluster_order(&[]), Vec::<usize>::new());
        assert_eq!(cluster_order(&[vec![f64::NAN]]), vec![0]);
    }
}
