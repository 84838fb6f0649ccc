//! Every aggregate of the study with its bootstrap 95% interval, computed once from the typed
//! [`Results`]: the claims judge these, the report and the figures show them, and `summary.json`
//! holds them. Intervals are over pairs of seeds for comparisons and over seeds otherwise.

use serde::Serialize;

use super::outputs::{Comparison, Inspection, Redundancy, Sweep};
use super::plan::{FOCUS_LAYER, SCHEMES};
use super::results::Results;
use super::settings::Settings;
use super::stats::{Estimate, bootstrap, diff_ci, mean_ci, sample_std};

/// Accuracy loss (0–1) within which a pruned and fine-tuned network counts as unharmed.
pub const PRUNE_TOLERANCE: f64 = 0.01;

/// The layers whose subspaces the study reports.
pub const SUBSPACE_LAYERS: [&str; 2] = ["conv2", "fc1"];

/// One hidden layer across the pairs of a comparison.
#[derive(Debug, Clone, Serialize)]
pub struct LayerAggregate {
    /// Name.
    pub layer: String,
    /// `conv2d` or `linear`.
    pub kind: String,
    /// Filters.
    pub filters: usize,
    /// Fraction of A's filters with a matched partner at ρ ≥ 0.5.
    pub matched_0_5: Estimate,
    /// The same at ρ ≥ 0.9.
    pub matched_0_9: Estimate,
    /// Mean correlation of matched partners.
    pub matched_rho: Estimate,
    /// |mean correlation| of the identity pairing.
    pub identity_abs_rho: Estimate,
    /// CKA of the corresponding layers.
    pub cka: Estimate,
    /// SVCCA.
    pub svcca: Estimate,
    /// PWCCA.
    pub pwcca: Estimate,
    /// Mean R² of reconstructing A's maps from `k` of B's, by `k`.
    pub reconstruction: Vec<(usize, Estimate)>,
    /// Mean R² from all of B's maps.
    pub reconstruction_all: Estimate,
    /// R² from all of B's maps minus R² from the best single one: what a basis change costs
    /// one-to-one matching.
    pub reconstruction_gain: Estimate,
}

/// A comparison of several seeds.
#[derive(Debug, Clone, Serialize)]
pub struct ComparisonAggregate {
    /// Runs compared.
    pub runs: usize,
    /// Pairs.
    pub pairs: usize,
    /// Test accuracy, over runs.
    pub accuracy: Estimate,
    /// Standard deviation of test accuracy across runs, in points.
    pub accuracy_std_points: Estimate,
    /// Per hidden layer.
    pub layers: Vec<LayerAggregate>,
    /// Loss barrier without alignment, aligned by activations, aligned by weights.
    pub loss_barrier: [Estimate; 3],
    /// Error barrier (0–1), the same three.
    pub error_barrier: [Estimate; 3],
    /// Naive minus weight-matched loss barrier, over pairs.
    pub barrier_reduction: Estimate,
    /// Largest change of any logit by any of the permutations.
    pub max_logit_change: f64,
}

impl ComparisonAggregate {
    /// Aggregate `cmp`; `key` names its intervals' resampling streams.
    pub fn new(key: &str, cmp: &Comparison, resamples: usize) -> Self {
        let ci = |name: &str, v: &[f64]| mean_ci(&format!("{key}/{name}"), v, resamples);
        let accs: Vec<f64> = cmp.runs.iter().map(|r| r.test_accuracy).collect();
        let first = cmp.pairs.first();
        let layers = first
            .map(|p| p.layers.clone())
            .unwrap_or_default()
            .iter()
            .map(|l0| {
                let name = l0.layer.as_str();
                let per_pair = |f: &dyn Fn(&super::outputs::PairLayer) -> f64| -> Vec<f64> {
                    cmp.pairs
                        .iter()
                        .filter_map(|p| p.layer(name).map(f))
                        .collect()
                };
                let n = l0.filters as f64;
                let ks: Vec<usize> = l0.subspace.reconstruction.iter().map(|r| r.k).collect();
                LayerAggregate {
                    layer: name.to_string(),
                    kind: l0.kind.clone(),
                    filters: l0.filters,
                    matched_0_5: ci(
                        &format!("{name}/matched_0_5"),
                        &per_pair(&|l| l.matched.at_least_0_5 as f64 / n),
                    ),
                    matched_0_9: ci(
                        &format!("{name}/matched_0_9"),
                        &per_pair(&|l| l.matched.at_least_0_9 as f64 / n),
                    ),
                    matched_rho: ci(
                        &format!("{name}/matched_rho"),
                        &per_pair(&|l| l.matched.mean),
                    ),
                    identity_abs_rho: ci(
                        &format!("{name}/identity"),
                        &per_pair(&|l| l.identity.mean.abs()),
                    ),
                    cka: ci(&format!("{name}/cka"), &per_pair(&|l| l.cka())),
                    svcca: ci(&format!("{name}/svcca"), &per_pair(&|l| l.subspace.svcca)),
                    pwcca: ci(&format!("{name}/pwcca"), &per_pair(&|l| l.subspace.pwcca)),
                    reconstruction: ks
                        .iter()
                        .map(|&k| {
                            let v = per_pair(&|l| l.subspace.r2_at(k).unwrap_or(f64::NAN));
                            (k, ci(&format!("{name}/r2/{k}"), &v))
                        })
                        .collect(),
                    reconstruction_all: ci(
                        &format!("{name}/r2_all"),
                        &per_pair(&|l| l.subspace.reconstruction_all),
                    ),
                    reconstruction_gain: ci(
                        &format!("{name}/r2_gain"),
                        &per_pair(&|l| {
                            l.subspace.reconstruction_all - l.subspace.r2_at(1).unwrap_or(f64::NAN)
                        }),
                    ),
                }
            })
            .collect();
        let barrier = |i: usize, loss: bool| -> Estimate {
            let v: Vec<f64> = cmp
                .pairs
                .iter()
                .map(|p| {
                    let a = p.alignments()[i];
                    (if loss {
                        a.loss_barrier
                    } else {
                        a.error_barrier
                    })
                    .unwrap_or(f64::NAN)
                })
                .collect();
            ci(
                &format!("barrier/{}/{i}", if loss { "loss" } else { "error" }),
                &v,
            )
        };
        let reduction: Vec<f64> = cmp
            .pairs
            .iter()
            .map(
                |p| match (p.naive.loss_barrier, p.weight_aligned.loss_barrier) {
                    (Some(n), Some(w)) => n - w,
                    _ => f64::NAN,
                },
            )
            .collect();
        ComparisonAggregate {
            runs: accs.len(),
            pairs: cmp.pairs.len(),
            accuracy: ci("accuracy", &accs),
            accuracy_std_points: bootstrap(&format!("{key}/accuracy_std"), &accs, resamples, |v| {
                sample_std(v) * 100.0
            }),
            layers,
            loss_barrier: [barrier(0, true), barrier(1, true), barrier(2, true)],
            error_barrier: [barrier(0, false), barrier(1, false), barrier(2, false)],
            barrier_reduction: ci("barrier_reduction", &reduction),
            max_logit_change: cmp
                .pairs
                .iter()
                .flat_map(|p| [&p.activation_aligned, &p.weight_aligned])
                .map(|a| a.max_abs_logit_change)
                .fold(0.0, f64::max),
        }
    }

    /// The hidden layer `name`.
    pub fn layer(&self, name: &str) -> Option<&LayerAggregate> {
        self.layers.iter().find(|l| l.layer == name)
    }
}

/// One width of the reference CNN.
#[derive(Debug, Clone, Serialize)]
pub struct WidthAggregate {
    /// Width multiplier.
    pub width: f64,
    /// Filters of conv2 at this width.
    pub conv2_filters: usize,
    /// The comparison of its seeds.
    pub comparison: Option<ComparisonAggregate>,
    /// Largest fraction of conv2 zeroed (by redundancy, then fine-tuned as the profile's
    /// settings say) within [`PRUNE_TOLERANCE`] of the unpruned accuracy, over seeds.
    pub prunable: Estimate,
    /// Fine-tuned accuracy minus the unpruned one, over seeds, at each ratio every seed measured
    /// (the bisected ratios differ from seed to seed and are left out).
    pub finetuned_change: Vec<(f64, Estimate)>,
}

/// The ratios at which every sweep has a fine-tuned point, ascending: the coarse ratios every
/// seed measured, without the bisected ones that differ from seed to seed (an interval over
/// seeds needs them all).
pub fn common_ratios(sweeps: &[&Sweep]) -> Vec<f64> {
    let mut ratios: Vec<f64> = sweeps
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.ratio))
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios.dedup();
    ratios.retain(|&q| {
        sweeps.iter().all(|s| {
            s.points
                .iter()
                .any(|p| (p.ratio - q).abs() < 1e-9 && p.finetuned_accuracy.is_some())
        })
    });
    ratios
}

/// The largest ratio up to which every swept ratio stays within [`PRUNE_TOLERANCE`] of the
/// unpruned accuracy after fine-tuning (0 if the smallest does not).
pub fn prunable_fraction(sweep: &Sweep) -> f64 {
    let mut points: Vec<(f64, f64)> = sweep
        .points
        .iter()
        .filter_map(|p| Some((p.ratio, p.finetuned_accuracy?)))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut best = 0.0;
    for (ratio, acc) in points {
        if acc >= sweep.baseline_accuracy - PRUNE_TOLERANCE {
            best = ratio;
        } else {
            break;
        }
    }
    best
}

/// Redundancy of conv2 under one scheme, at initialization or after training, over seeds.
#[derive(Debug, Clone, Serialize)]
pub struct RedundancyAggregate {
    /// Near-duplicate pairs (|ρ| ≥ 0.9).
    pub near_duplicates: Estimate,
    /// Mean |ρ| between live filters.
    pub mean_abs_rho: Estimate,
    /// Dead filters.
    pub dead: Estimate,
}

impl RedundancyAggregate {
    fn new(key: &str, by_seed: &[&Redundancy], resamples: usize) -> Self {
        let v = |f: &dyn Fn(&super::outputs::LayerRedundancy) -> f64| -> Vec<f64> {
            by_seed
                .iter()
                .map(|r| r.layer(FOCUS_LAYER).map_or(f64::NAN, f))
                .collect()
        };
        RedundancyAggregate {
            near_duplicates: mean_ci(
                &format!("{key}/dups"),
                &v(&|l| l.near_duplicates.len() as f64),
                resamples,
            ),
            mean_abs_rho: mean_ci(
                &format!("{key}/rho"),
                &v(&|l| l.mean_abs_correlation),
                resamples,
            ),
            dead: mean_ci(
                &format!("{key}/dead"),
                &v(&|l| l.dead.len() as f64),
                resamples,
            ),
        }
    }
}

/// One initialization scheme.
#[derive(Debug, Clone, Serialize)]
pub struct SchemeAggregate {
    /// Short name.
    pub name: String,
    /// `--init`.
    pub init: String,
    /// Test accuracy after training.
    pub accuracy: Estimate,
    /// conv2 at initialization.
    pub at_init: RedundancyAggregate,
    /// conv2 after training.
    pub trained: RedundancyAggregate,
    /// Accuracy after zeroing a ratio of conv2 by redundancy (no fine-tuning), by ratio.
    pub pruned: Vec<(f64, Estimate)>,
}

/// Orthogonal against He initialization: He's mean |ρ| of conv2 minus orthogonal's.
#[derive(Debug, Clone, Serialize)]
pub struct SchemeContrast {
    /// At initialization.
    pub at_init: Estimate,
    /// After training.
    pub trained: Estimate,
}

/// One initialization of the symmetry-breaking experiment.
#[derive(Debug, Clone, Serialize)]
pub struct BreakingAggregate {
    /// σ of `constant(0.01)+noise(σ)`; `None`: the random initialization.
    pub sigma: Option<f64>,
    /// conv2's effective rank after training.
    pub effective_rank: Estimate,
    /// conv2's groups of filters at cosine ≥ 0.99 after training.
    pub groups: Estimate,
    /// Effective rank after training relative to the random initialization's, seed by seed.
    pub relative_rank: Estimate,
    /// conv2's effective rank at every snapshot, by step.
    pub trajectory: Vec<(usize, Estimate)>,
}

/// Every aggregate of the study.
#[derive(Debug, Clone, Serialize)]
pub struct Aggregates {
    /// The reference runs' comparison.
    pub reference: Option<ComparisonAggregate>,
    /// By width.
    pub widths: Vec<WidthAggregate>,
    /// Weight-matched loss barrier at the narrowest width minus at the widest, over pairs.
    pub barrier_trend: Estimate,
    /// Prunable fraction of conv2 at the widest width minus at the narrowest, over seeds.
    pub prunable_trend: Estimate,
    /// By initialization scheme.
    pub schemes: Vec<SchemeAggregate>,
    /// Orthogonal against He.
    pub scheme_contrast: SchemeContrast,
    /// Symmetry breaking, by noise scale, the random initialization last.
    pub breaking: Vec<BreakingAggregate>,
}

fn conv2_rank(i: &Inspection) -> f64 {
    i.layer(FOCUS_LAYER).map_or(f64::NAN, |l| l.effective_rank)
}

impl Aggregates {
    /// Compute every aggregate from `r`.
    pub fn new(st: &Settings, r: &Results) -> Self {
        let n = st.bootstrap_resamples;
        let reference = r
            .comparison
            .as_ref()
            .map(|c| ComparisonAggregate::new("reference", c, n));
        let widths: Vec<WidthAggregate> = r
            .widths
            .iter()
            .map(|(w, wr)| {
                let key = format!("width/{w}");
                let sweeps: Vec<&Sweep> = wr.sweeps.values().collect();
                let prunable: Vec<f64> = sweeps.iter().map(|s| prunable_fraction(s)).collect();
                let ratios = common_ratios(&sweeps);
                WidthAggregate {
                    width: *w,
                    conv2_filters: ((64.0 * w).round() as usize).max(1),
                    comparison: wr
                        .comparison
                        .as_ref()
                        .map(|c| ComparisonAggregate::new(&key, c, n)),
                    prunable: mean_ci(&format!("{key}/prunable"), &prunable, n),
                    finetuned_change: ratios
                        .iter()
                        .map(|&q| {
                            let v: Vec<f64> = sweeps
                                .iter()
                                .map(|s| {
                                    s.points
                                        .iter()
                                        .find(|p| (p.ratio - q).abs() < 1e-9)
                                        .and_then(|p| p.finetuned_accuracy)
                                        .map_or(f64::NAN, |a| a - s.baseline_accuracy)
                                })
                                .collect();
                            (q, mean_ci(&format!("{key}/finetuned/{q}"), &v, n))
                        })
                        .collect(),
                }
            })
            .collect();
        let barriers = |i: usize| -> Vec<f64> {
            r.widths
                .get(i)
                .and_then(|(_, wr)| wr.comparison.as_ref())
                .map(|c| {
                    c.pairs
                        .iter()
                        .map(|p| p.weight_aligned.loss_barrier.unwrap_or(f64::NAN))
                        .collect()
                })
                .unwrap_or_default()
        };
        let prunables = |i: usize| -> Vec<f64> {
            r.widths
                .get(i)
                .map(|(_, wr)| wr.sweeps.values().map(prunable_fraction).collect())
                .unwrap_or_default()
        };
        let last = r.widths.len().saturating_sub(1);
        let schemes: Vec<SchemeAggregate> = r
            .schemes
            .iter()
            .map(|(name, sr)| {
                let key = format!("scheme/{name}");
                let accs: Vec<f64> = sr.runs.values().map(|s| s.test_accuracy).collect();
                let sweeps: Vec<&Sweep> = sr.sweeps.values().collect();
                SchemeAggregate {
                    name: name.clone(),
                    init: SCHEMES
                        .iter()
                        .find(|(n, _)| n == name)
                        .map_or_else(String::new, |(_, i)| i.to_string()),
                    accuracy: mean_ci(&format!("{key}/accuracy"), &accs, n),
                    at_init: RedundancyAggregate::new(
                        &format!("{key}/init"),
                        &sr.at_init.values().collect::<Vec<_>>(),
                        n,
                    ),
                    trained: RedundancyAggregate::new(
                        &format!("{key}/trained"),
                        &sr.trained.values().collect::<Vec<_>>(),
                        n,
                    ),
                    pruned: st
                        .scheme_prune_ratios
                        .iter()
                        .map(|&q| {
                            let v: Vec<f64> = sweeps
                                .iter()
                                .map(|s| s.accuracy("redundancy", q).unwrap_or(f64::NAN))
                                .collect();
                            (q, mean_ci(&format!("{key}/pruned/{q}"), &v, n))
                        })
                        .collect(),
                }
            })
            .collect();
        let rho = |name: &str, at_init: bool| -> Vec<f64> {
            r.schemes
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, sr)| {
                    let m = if at_init { &sr.at_init } else { &sr.trained };
                    m.values()
                        .map(|x| {
                            x.layer(FOCUS_LAYER)
                                .map_or(f64::NAN, |l| l.mean_abs_correlation)
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let random: Option<&std::collections::BTreeMap<u64, Inspection>> =
            r.breaking.iter().find(|(s, _)| s.is_none()).map(|(_, m)| m);
        let breaking = r
            .breaking
            .iter()
            .map(|(sigma, by_seed)| {
                let key = format!("breaking/{sigma:?}");
                let finals: Vec<f64> = by_seed.values().map(conv2_rank).collect();
                let relative: Vec<f64> = by_seed
                    .iter()
                    .map(|(seed, i)| {
                        random
                            .and_then(|m| m.get(seed))
                            .map_or(f64::NAN, |base| conv2_rank(i) / conv2_rank(base))
                    })
                    .collect();
                let mut steps: Vec<usize> = by_seed
                    .values()
                    .flat_map(|i| i.snapshots.iter().map(|s| s.step))
                    .collect();
                steps.sort_unstable();
                steps.dedup();
                BreakingAggregate {
                    sigma: *sigma,
                    effective_rank: mean_ci(&format!("{key}/rank"), &finals, n),
                    groups: mean_ci(
                        &format!("{key}/groups"),
                        &by_seed
                            .values()
                            .map(|i| {
                                i.layer(FOCUS_LAYER)
                                    .map_or(f64::NAN, |l| l.cosine_groups as f64)
                            })
                            .collect::<Vec<_>>(),
                        n,
                    ),
                    relative_rank: mean_ci(&format!("{key}/relative"), &relative, n),
                    trajectory: steps
                        .iter()
                        .map(|&step| {
                            let v: Vec<f64> = by_seed
                                .values()
                                .map(|i| {
                                    i.snapshots
                                        .iter()
                                        .find(|s| s.step == step)
                                        .and_then(|s| {
                                            s.layers.iter().find(|l| l.layer == FOCUS_LAYER)
                                        })
                                        .map_or(f64::NAN, |l| l.effective_rank)
                                })
                                .collect();
                            (step, mean_ci(&format!("{key}/step/{step}"), &v, n))
                        })
                        .collect(),
                }
            })
            .collect();
        Aggregates {
            reference,
            widths,
            barrier_trend: diff_ci("barrier_trend", &barriers(0), &barriers(last), n),
            prunable_trend: diff_ci("prunable_trend", &prunables(last), &prunables(0), n),
            schemes,
            scheme_contrast: SchemeContrast {
                at_init: diff_ci(
                    "contrast/init",
                    &rho("he", true),
                    &rho("orthogonal", true),
                    n,
                ),
                trained: diff_ci(
                    "contrast/trained",
                    &rho("he", false),
                    &rho("orthogonal", false),
                    n,
                ),
            },
            breaking,
        }
    }

    /// The symmetry-breaking aggregate of noise scale `sigma`.
    pub fn breaking_at(&self, sigma: f64) -> Option<&BreakingAggregate> {
        self.breaking
            .iter()
            .find(|b| b.sigma.is_some_and(|s| (s / sigma - 1.0).abs() < 1e-9))
    }

    /// The random initialization's symmetry-breaking aggregate.
    pub fn breaking_random(&self) -> Option<&BreakingAggregate> {
        self.breaking.iter().find(|b| b.sigma.is_none())
    }

    /// The smallest noise scale whose conv2 ends, over seeds, with at least `fraction` of the
    /// random initialization's effective rank (the interval's lower end at or above it).
    pub fn noise_to_match_random(&self, fraction: f64) -> Option<f64> {
        self.breaking
            .iter()
            .filter(|b| b.relative_rank.is_measured() && b.relative_rank.lo >= fraction)
            .filter_map(|b| b.sigma)
            .min_by(f64::total_cmp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repro::outputs::SweepPoint;

    #[test]
    fn prunable_fraction_stops_at_the_first_harmful_ratio() {
        let point = |ratio, ft| SweepPoint {
            criterion: "redundancy".into(),
            ratio,
            accuracy: 0.5,
            finetuned_accuracy: Some(ft),
        };
        let sweep = Sweep {
            baseline_accuracy: 0.90,
            points: vec![
                point(0.5, 0.895),
                point(0.25, 0.90),
                point(0.75, 0.85),
                point(0.9, 0.90),
            ],
        };
        assert_eq!(prunable_fraction(&sweep), 0.5);
        let none = Sweep {
            baseline_accuracy: 0.9,
            points: vec![point(0.25, 0.8)],
        };
        assert_eq!(prunable_fraction(&none), 0.0);
        // Two seeds that bisected to different ratios share only the coarse ones.
        let other = Sweep {
            baseline_accuracy: 0.90,
            points: vec![
                point(0.25, 0.9),
                point(0.5, 0.9),
                point(0.75, 0.8),
                point(0.625, 0.9),
            ],
        };
        assert_eq!(common_ratios(&[&sweep, &other]), vec![0.25, 0.5, 0.75]);
        assert_eq!(common_ratios(&[&sweep]), vec![0.25, 0.5, 0.75, 0.9]);
    }
}
