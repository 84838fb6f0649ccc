//! Filter importance criteria: each maps a layer's filters (and, where needed, activation
//! statistics) to one score per filter. Higher is more important; the lowest are pruned first.

use serde::{Deserialize, Serialize};

use crate::PruneError;
use crate::stats::ChannelStats;

/// How to rank a layer's filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Criterion {
    /// L1 norm of the filter's weights, `Σ|w|` (Li et al. 2017, "Pruning Filters for Efficient
    /// ConvNets").
    L1,
    /// L2 norm of the filter's weights, `√Σw²`.
    L2,
    /// Filter pruning via the geometric median (He et al. 2019): `Σⱼ ‖Fᵢ − Fⱼ‖₂`, the total
    /// distance to the other filters of the layer. Filters near the geometric median are the
    /// most replaceable by the others and are pruned first.
    Fpgm,
    /// Feature-map redundancy: dead filters first, then repeatedly the less active member of the
    /// most correlated remaining pair of feature maps (|Pearson| over real images). The score is
    /// the order of removal.
    Redundancy,
    /// Mean post-activation value over real images.
    MeanActivation,
    /// Average percentage of zeros of the post-ReLU output (Hu et al. 2016, "Network
    /// Trimming"); the score is `1 − APoZ`.
    Apoz,
    /// Seeded random scores: the baseline every criterion should beat.
    Random,
}

impl Criterion {
    /// Every criterion.
    pub const ALL: [Criterion; 7] = [
        Criterion::L1,
        Criterion::L2,
        Criterion::Fpgm,
        Criterion::Redundancy,
        Criterion::MeanActivation,
        Criterion::Apoz,
        Criterion::Random,
    ];

    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Criterion::L1 => "l1",
            Criterion::L2 => "l2",
            Criterion::Fpgm => "fpgm",
            Criterion::Redundancy => "redundancy",
            Criterion::MeanActivation => "mean-activation",
            Criterion::Apoz => "apoz",
            Criterion::Random => "random",
        }
    }

    /// Whether the criterion needs activation statistics.
    pub fn needs_activations(self) -> bool {
        matches!(
            self,
            Criterion::Redundancy | Criterion::MeanActivation | Criterion::Apoz
        )
    }

    /// One score per filter (higher = more important). `filters` are the layer's filters (one
    /// weight vector per output channel); `stats` its activation statistics; `seed` and `layer`
    /// key the random baseline.
    pub fn scores(
        self,
        filters: &[Vec<f32>],
        stats: Option<&ChannelStats>,
        seed: u64,
        layer: &str,
    ) -> Result<Vec<f64>, PruneError> {
        let norm = |p: i32| -> Vec<f64> {
            filters
                .iter()
                .map(|f| {
                    let s: f64 = f.iter().map(|&w| (w as f64).abs().powi(p)).sum();
                    if p == 2 { s.sqrt() } else { s }
                })
                .collect()
        };
        let stats = || stats.ok_or_else(|| PruneError::NeedsActivations(self.name().into()));
        Ok(match self {
            Criterion::L1 => norm(1),
            Criterion::L2 => norm(2),
            Criterion::Fpgm => filters
                .iter()
                .map(|a| filters.iter().map(|b| distance(a, b)).sum())
                .collect(),
            Criterion::MeanActivation => stats()?.mean_activation(),
            Criterion::Apoz => stats()?.apoz().iter().map(|z| 1.0 - z).collect(),
            Criterion::Redundancy => {
                let s = stats()?;
                redundancy_order(&s.correlation(), &s.mean_activation(), &s.dead())
            }
            Criterion::Random => {
                let mut rng = params::ParamRng::new(seed, &format!("prune.random.{layer}"));
                filters.iter().map(|_| rng.unit()).collect()
            }
        })
    }
}

fn distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Removal order as scores: dead channels first (lowest activation first), then repeatedly the
/// less active member of the most correlated remaining pair; the last survivor scores highest.
pub fn redundancy_order(corr: &[Vec<f64>], activity: &[f64], dead: &[bool]) -> Vec<f64> {
    let n = activity.len();
    let mut alive: Vec<bool> = vec![true; n];
    let mut score = vec![0.0; n];
    let mut rank = 0.0;
    let mut remove = |i: usize, alive: &mut Vec<bool>| {
        alive[i] = false;
        score[i] = rank;
        rank += 1.0;
    };
    let mut dead_idx: Vec<usize> = (0..n).filter(|&i| dead[i]).collect();
    dead_idx.sort_by(|&a, &b| activity[a].total_cmp(&activity[b]).then(a.cmp(&b)));
    for i in dead_idx {
        if alive.iter().filter(|&&a| a).count() > 1 {
            remove(i, &mut alive);
        }
    }
    while alive.iter().filter(|&&a| a).count() > 1 {
        let mut best: Option<(f64, usize, usize)> = None;
        for i in 0..n {
            for j in i + 1..n {
                if alive[i] && alive[j] {
                    let c = corr[i][j].abs();
                    if best.is_none_or(|(b, _, _)| c > b) {
                        best = Some((c, i, j));
                    }
                }
            }
        }
        let (_, i, j) = best.expect("two alive channels");
        let weaker = if activity[i] <= activity[j] { i } else { j };
        remove(weaker, &mut alive);
    }
    if let Some(last) = alive.iter().position(|&a| a) {
        score[last] = rank;
    }
    score
}

impl std::fmt::Display for Criterion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Criterion {
    type Err = PruneError;

    fn from_str(s: &str) -> Result<Self, PruneError> {
        Criterion::ALL
            .into_iter()
            .find(|c| c.name() == s || (s == "mean_activation" && *c == Criterion::MeanActivation))
            .ok_or_else(|| PruneError::UnknownCriterion(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ranking (ascending score = pruning order) of a score vector.
    fn order(scores: &[f64]) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..scores.len()).collect();
        idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
        idx
    }

    /// Four 2-weight filters: a = (1, 0), b = (0, -3), c = (2, 2), d = (1, 0.1).
    fn filters() -> Vec<Vec<f32>> {
        vec![
            vec![1.0, 0.0],
            vec![0.0, -3.0],
            vec![2.0, 2.0],
            vec![1.0, 0.1],
        ]
    }

    #[test]
    fn norm_rankings_match_hand_computation() {
        // L1: a 1, b 3, c 4, d 1.1 → a, d, b, c.
        let l1 = Criterion::L1.scores(&filters(), None, 0, "x").unwrap();
        assert_eq!(l1, vec![1.0, 3.0, 4.0, 1.0 + 0.1f32 as f64]);
        assert_eq!(order(&l1), vec![0, 3, 1, 2]);
        // L2: a 1, b 3, c √8 ≈ 2.83, d √1.01 → a, d, c, b.
        let l2 = Criterion::L2.scores(&filters(), None, 0, "x").unwrap();
        assert_eq!(order(&l2), vec![0, 3, 2, 1]);
        assert!((l2[2] - 8f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn fpgm_ranks_the_filters_nearest_the_others_first() {
        // Total distances (computed by hand):
        // a: |a-b| √10 + |a-c| √5 + |a-d| 0.1            = 3.1623 + 2.2361 + 0.1    = 5.4984
        // b: √10 + |b-c| √29 + |b-d| √(1 + 9.61)         = 3.1623 + 5.3852 + 3.2573 = 11.8048
        // c: √5 + √29 + |c-d| √(1 + 3.61)                = 2.2361 + 5.3852 + 2.1471 = 9.7684
        // d: 0.1 + 3.2573 + 2.1471                                                 = 5.5044
        let s = Criterion::Fpgm.scores(&filters(), None, 0, "x").unwrap();
        let expect = [5.4984, 11.8048, 9.7684, 5.5044];
        for (got, want) in s.iter().zip(expect) {
            assert!((got - want).abs() < 1e-3, "{got} vs {want}");
        }
        assert_eq!(order(&s), vec![0, 3, 2, 1]);
    }

    #[test]
    fn redundancy_drops_dead_then_the_weaker_of_the_closest_pair() {
        // Channels 0 and 1 are near duplicates (0.95), 2 is independent, 3 is dead.
        let corr = vec![
            vec![1.0, 0.95, 0.1, 0.0],
            vec![0.95, 1.0, 0.2, 0.0],
            vec![0.1, 0.2, 1.0, 0.0],
            vec![0.0, 0.0, 0.0, 0.0],
        ];
        let activity = [0.5, 0.7, 0.3, 0.0];
        let s = redundancy_order(&corr, &activity, &[false, false, false, true]);
        // Removal: 3 (dead), then 0 (weaker of 0–1), then of {1, 2} (corr 0.2) the weaker, 2;
        // 1 survives.
        assert_eq!(s, vec![1.0, 3.0, 2.0, 0.0]);
    }

    #[test]
    fn random_is_seeded_and_data_criteria_need_statistics() {
        let a = Criterion::Random
            .scores(&filters(), None, 1, "conv2")
            .unwrap();
        assert_eq!(
            a,
            Criterion::Random
                .scores(&filters(), None, 1, "conv2")
                .unwrap()
        );
        assert_ne!(
            a,
            Criterion::Random
                .scores(&filters(), None, 2, "conv2")
                .unwrap()
        );
        assert!(Criterion::Apoz.scores(&filters(), None, 0, "x").is_err());
        assert_eq!(
            "mean-activation".parse::<Criterion>().unwrap(),
            Criterion::MeanActivation
        );
        assert!("nope".parse::<Criterion>().is_err());
    }
}
