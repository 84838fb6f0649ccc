//! The claims, one function each: what is measured, the threshold fixed in advance, and the
//! verdict. Each reads the typed [`Results`] and the [`Aggregates`] with their bootstrap
//! intervals; a claim on an aggregate passes when its whole 95% interval is on the passing side
//! of the threshold, fails when none of it is, and is inconclusive when the threshold lies inside
//! the interval. A claim whose inputs are missing (a job failed) is not evaluated.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Value, json};

use super::aggregate::{Aggregates, PRUNE_TOLERANCE, SUBSPACE_LAYERS};
use super::plan::{CLAIM_CRITERIA, FOCUS_LAYER, RANDOM};
use super::results::Results;
use super::settings::Settings;
use super::stats::{Estimate, Passes, all, judge};

/// A claim's verdict.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Measured within the threshold.
    Pass,
    /// Measured outside the threshold: a finding.
    Fail,
    /// The threshold lies inside the 95% interval: the data cannot tell.
    Inconclusive,
    /// Not evaluated (e.g. only one backend compiled, or a job failed).
    Skipped,
}

/// One claim's result.
#[derive(Debug, Clone, Serialize)]
pub struct Claim {
    /// 1–12.
    pub id: u32,
    /// Short name.
    pub name: String,
    /// Pass, fail or skipped.
    pub verdict: Verdict,
    /// What was measured, in words and numbers.
    pub measured: String,
    /// The threshold it is judged against.
    pub threshold: String,
    /// Structured details.
    pub details: Value,
}

impl Claim {
    fn judged(
        id: u32,
        name: &str,
        pass: bool,
        measured: String,
        threshold: &str,
        details: Value,
    ) -> Claim {
        let verdict = if pass { Verdict::Pass } else { Verdict::Fail };
        Claim::with_verdict(id, name, verdict, measured, threshold, details)
    }

    fn with_verdict(
        id: u32,
        name: &str,
        verdict: Verdict,
        measured: String,
        threshold: &str,
        details: Value,
    ) -> Claim {
        Claim {
            id,
            name: name.into(),
            verdict,
            measured,
            threshold: threshold.into(),
            details,
        }
    }

    /// A claim that could not be evaluated, and why.
    fn not_evaluated(id: u32, name: &str, why: impl Into<String>) -> Claim {
        Claim {
            id,
            name: name.into(),
            verdict: Verdict::Skipped,
            measured: why.into(),
            threshold: "-".into(),
            details: Value::Null,
        }
    }
}

/// `0.8734` → `87.34%`.
pub fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

/// "identical" or "DIFFERENT".
fn same(ok: bool) -> &'static str {
    if ok { "identical" } else { "DIFFERENT" }
}

/// The median (NaN of nothing).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Every claim, in order. `backends` are the study's backend and the other compiled ones.
pub fn evaluate(st: &Settings, r: &Results, a: &Aggregates, backends: &[&str]) -> Vec<Claim> {
    vec![
        determinism(st, r),
        seeds(st, r, a),
        permutation(a),
        symmetry(st, r),
        variance(st, r),
        redundancy(st, r),
        cross_backend(r, backends),
        width(a),
        subspaces(a),
        init_redundancy(a),
        width_redundancy(st, a),
        symmetry_breaking(a),
    ]
}

/// `name value [lo, hi]` for the measured strings.
fn est(name: &str, e: &Estimate, digits: usize) -> String {
    format!("{name} {}", e.show(digits))
}

/// 1. The same seed and backend twice gives bit-identical weights and metrics; killed after its
///    first epoch and resumed, the same bits.
fn determinism(st: &Settings, r: &Results) -> Claim {
    const NAME: &str = "Determinism";
    let s1 = st.first_seed();
    let (Some(a), Some(b), Some((k, killed))) = (r.references.get(&s1), &r.repeat, &r.killed)
    else {
        return Claim::not_evaluated(1, NAME, "a training job failed");
    };
    let ha = &a.summary.weights_sha256;
    let same_hash = *ha == b.summary.weights_sha256;
    let same_metrics = a.metrics == b.metrics;
    let resumed = *ha == k.summary.weights_sha256;
    let interrupted = killed.killed_after_checkpoint;
    Claim::judged(
        1,
        NAME,
        same_hash && same_metrics && resumed && interrupted,
        format!(
            "repeat: weights {}, metrics {}; killed after epoch 1{} and resumed: weights {}",
            same(same_hash),
            same(same_metrics),
            if interrupted {
                ""
            } else {
                " (NOT interrupted)"
            },
            same(resumed)
        ),
        "bit-identical weights (SHA-256) and metrics",
        json!({ "weights_sha256": ha, "repeat_identical": same_hash, "metrics_identical": same_metrics,
                "killed_and_resumed_identical": resumed, "was_interrupted": interrupted }),
    )
}

/// 2. Different seeds give different weights and unrelated filter orders, but similar accuracy.
fn seeds(st: &Settings, r: &Results, a: &Aggregates) -> Claim {
    const NAME: &str = "Seeds matter, results do not";
    let (Some(cmp), Some(agg), true) = (
        &r.comparison,
        &a.reference,
        r.references.len() == st.seeds.len(),
    ) else {
        return Claim::not_evaluated(2, NAME, "a training or the comparison failed");
    };
    let inits: Vec<&str> = r
        .references
        .values()
        .map(|run| run.config.init.initial_weights_sha256.as_str())
        .collect();
    let finals: Vec<&str> = r
        .references
        .values()
        .map(|run| run.summary.weights_sha256.as_str())
        .collect();
    let distinct = |v: &[&str]| v.iter().collect::<BTreeSet<_>>().len() == v.len();
    let exact = if distinct(&inits) && distinct(&finals) {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    let identity: Vec<Verdict> = agg
        .layers
        .iter()
        .map(|l| judge(&l.identity_abs_rho, Passes::Below(0.3)))
        .collect();
    let worst_identity = agg.layers.iter().max_by(|x, y| {
        x.identity_abs_rho
            .value
            .total_cmp(&y.identity_abs_rho.value)
    });
    let std_verdict = judge(
        &agg.accuracy_std_points,
        Passes::AtMost(st.accuracy_std_max),
    );
    let all_different = |ok: bool| {
        if ok {
            "all different"
        } else {
            "NOT all different"
        }
    };
    Claim::with_verdict(
        2,
        NAME,
        all([exact, std_verdict].into_iter().chain(identity)),
        format!(
            "initial weights {} across {} seeds, final weights {}; largest mean |identity-pairing \
             ρ| over pairs: {}; accuracy {} %, its std over seeds {} points (min {}, max {})",
            all_different(distinct(&inits)),
            st.seeds.len(),
            all_different(distinct(&finals)),
            worst_identity.map_or("-".into(), |l| est(&l.layer, &l.identity_abs_rho, 3)),
            agg.accuracy.show_pct(2),
            agg.accuracy_std_points.show(2),
            pct(cmp.accuracy_min),
            pct(cmp.accuracy_max),
        ),
        &format!(
            "different initial and final weights; mean |identity ρ| < 0.3 in every layer; \
             accuracy std ≤ {} points; on 95% intervals over pairs and seeds",
            st.accuracy_std_max
        ),
        json!({ "initial_hashes": inits, "final_hashes": finals,
                "identity_abs_rho": agg.layers.iter().map(|l| json!({ "layer": l.layer, "estimate": l.identity_abs_rho })).collect::<Vec<_>>(),
                "accuracy_std_points": agg.accuracy_std_points, "accuracy": agg.accuracy,
                "runs": cmp.runs.iter().map(|r| json!({ "run": r.run, "seed": r.seed, "test_accuracy": r.test_accuracy })).collect::<Vec<_>>() }),
    )
}

/// 3. Networks from different seeds are the same up to a permutation of their filters.
fn permutation(a: &Aggregates) -> Claim {
    const NAME: &str = "Permutation equivalence";
    let Some(agg) = &a.reference else {
        return Claim::not_evaluated(3, NAME, "the comparison failed");
    };
    let mut verdicts = Vec::new();
    let mut matched = Vec::new();
    for l in &agg.layers {
        if l.kind == "conv2d" {
            verdicts.push(judge(&l.matched_0_5, Passes::AtLeast(0.5)));
            matched.push(est(&l.layer, &l.matched_0_5.scaled(100.0), 0));
        }
        verdicts.push(judge(&l.cka, Passes::AtLeast(0.8)));
    }
    let same_fn = agg.max_logit_change <= 1e-3;
    verdicts.push(if same_fn {
        Verdict::Pass
    } else {
        Verdict::Fail
    });
    verdicts.push(judge(&agg.barrier_reduction, Passes::Above(0.0)));
    let lowest_cka = agg
        .layers
        .iter()
        .min_by(|x, y| x.cka.value.total_cmp(&y.cka.value));
    Claim::with_verdict(
        3,
        NAME,
        all(verdicts),
        format!(
            "% of conv filters with a matched partner at ρ ≥ 0.5: {}; lowest CKA of \
             corresponding layers: {}; permuted networks change logits by ≤ {:.1e}; naive minus \
             weight-matched loss barrier {} ({} pairs)",
            matched.join(", "),
            lowest_cka.map_or("-".into(), |l| est(&l.layer, &l.cka, 3)),
            agg.max_logit_change,
            agg.barrier_reduction.show(3),
            agg.pairs
        ),
        "≥ 50% of every conv layer's filters matched at ρ ≥ 0.5; CKA ≥ 0.8 per corresponding \
         layer; |Δ logit| ≤ 1e-3 after permuting; weight-matched loss barrier below the naive \
         one; on 95% intervals over pairs",
        json!({ "layers": agg.layers.iter().map(|l| json!({ "layer": l.layer, "matched_0_5": l.matched_0_5, "cka": l.cka })).collect::<Vec<_>>(),
                "barriers": agg.loss_barrier, "barrier_reduction": agg.barrier_reduction,
                "max_logit_change": agg.max_logit_change }),
    )
}

/// 4. Constant initialization never breaks symmetry; a little noise does.
fn symmetry(st: &Settings, r: &Results) -> Claim {
    const NAME: &str = "Symmetry";
    let (Some(ic), Some(ip), Some(sc), Some(sr)) = (
        &r.inspect_constant,
        &r.inspect_perturbed,
        &r.constant,
        r.references.get(&st.seeds[0]),
    ) else {
        return Claim::not_evaluated(4, NAME, "a training or inspection failed");
    };
    let sym = ic
        .layers
        .iter()
        .filter(|l| l.hidden)
        .all(|l| l.distinct_filters == 1);
    let broken = ip.layers.iter().all(|l| l.distinct_filters == l.filters);
    let (ac, ar) = (sc.test_accuracy, sr.summary.test_accuracy);
    let far_below = ac <= ar - 0.20;
    let fmt = |v: &super::outputs::Inspection| {
        v.layers
            .iter()
            .map(|l| format!("{} {}/{}", l.layer, l.distinct_filters, l.filters))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let layers = |v: &super::outputs::Inspection| -> Vec<Value> {
        v.layers
            .iter()
            .map(|l| json!({ "layer": l.layer, "filters": l.filters, "distinct_filters": l.distinct_filters }))
            .collect()
    };
    Claim::judged(
        4,
        NAME,
        sym && broken && far_below,
        format!(
            "constant init: distinct filters {}; accuracy {} vs {} with random init; with noise \
             1e-4: {}",
            fmt(ic),
            pct(ac),
            pct(ar),
            fmt(ip)
        ),
        "constant init: 1 distinct filter in every hidden layer and accuracy ≥ 20 points below \
         random init; perturbed: every filter distinct",
        json!({ "constant": layers(ic), "perturbed": layers(ip), "constant_accuracy": ac, "random_accuracy": ar }),
    )
}

/// The median over weight seeds of the last layer's pre-activation std ratio, per scheme.
pub fn median_ratios(r: &Results) -> BTreeMap<String, f64> {
    let mut per_scheme: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for stats in r.init_stats.values() {
        for sch in &stats.schemes {
            let last = sch.layers.last().map_or(f64::NAN, |l| l.measured_ratio);
            per_scheme.entry(sch.spec.clone()).or_default().push(last);
        }
    }
    per_scheme
        .into_iter()
        .map(|(k, v)| (k, median(v)))
        .collect()
}

/// 5. He initialization preserves the variance across depth; the others shrink or explode it.
fn variance(st: &Settings, r: &Results) -> Claim {
    const NAME: &str = "Variance preservation";
    let (true, Some(ph), Some(ps)) = (
        r.init_stats_complete,
        r.plain.get("he"),
        r.plain.get("small"),
    ) else {
        return Claim::not_evaluated(5, NAME, "an init-stats or plain-CNN job failed");
    };
    let med = median_ratios(r);
    let get = |prefix: &str| {
        med.iter()
            .find(|(k, _)| k.starts_with(prefix))
            .map_or(f64::NAN, |(_, v)| *v)
    };
    let (he, xa, pt, n1) = (
        get("kaiming-normal"),
        get("xavier-normal"),
        get("pytorch-default"),
        get("normal(0, 1)"),
    );
    let (ah, asm) = (ph.test_accuracy, ps.test_accuracy);
    let pass =
        (0.25..=4.0).contains(&he) && xa < 0.01 && pt < 0.01 && n1 > 100.0 && ah >= asm + 0.10;
    Claim::judged(
        5,
        NAME,
        pass,
        format!(
            "pre-activation std(layer {d})/std(layer 1), median of {} weight seeds: He {he:.3}, \
             Xavier {xa:.2e}, PyTorch default {pt:.2e}, N(0, 1) {n1:.2e}; {d}-layer plain CNN \
             after a fixed budget: He {} vs N(0, 0.01²) {}",
            st.init_seeds,
            pct(ah),
            pct(asm),
            d = st.init_depth,
        ),
        "He within [1/4, 4]; Xavier and PyTorch default (zero biases) < 1/100; N(0, 1) > 100; He \
         trains ≥ 10 points better than N(0, 0.01²)",
        json!({ "median_ratios": med, "plain_he_accuracy": ah, "plain_small_accuracy": asm }),
    )
}

/// 6. Trained layers hold near-duplicate filters, and pruning by redundancy, FPGM or L1 keeps
///    accuracy.
fn redundancy(st: &Settings, r: &Results) -> Claim {
    const NAME: &str = "Redundancy";
    let all = || CLAIM_CRITERIA.into_iter().chain([RANDOM]);
    let (Some(red), Some(sweep), true) = (
        &r.redundancy,
        &r.sweep,
        all().all(|c| r.pruned.contains_key(c)),
    ) else {
        return Claim::not_evaluated(6, NAME, "a redundancy or pruning job failed");
    };
    let dup: Vec<(String, usize, usize)> = red
        .layers
        .iter()
        .map(|l| (l.layer.clone(), l.near_duplicates.len(), l.dead.len()))
        .collect();
    let has_dups = dup.iter().any(|(_, d, _)| *d > 0);
    let base = sweep.baseline_accuracy;
    let at = |c: &str| sweep.accuracy(c, st.claim_ratio).unwrap_or(f64::NAN);
    let ft = |c: &str| r.pruned[c].finetuned.map_or(f64::NAN, |s| s.accuracy);
    let beats_random = CLAIM_CRITERIA.iter().all(|c| at(c) >= at(RANDOM));
    let within = CLAIM_CRITERIA.iter().all(|c| ft(c) >= base - 0.01);
    let fmt = |f: &dyn Fn(&str) -> f64| {
        all()
            .map(|c| format!("{c} {}", pct(f(c))))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let by_criterion = |f: &dyn Fn(&str) -> f64| -> BTreeMap<String, f64> {
        all().map(|c| (c.to_string(), f(c))).collect()
    };
    Claim::judged(
        6,
        NAME,
        has_dups && beats_random && within,
        format!(
            "near-duplicate pairs (|ρ| ≥ 0.9) per layer: {}; pruning {:.0}% of conv2 (unpruned \
             {}): zeroed {}; after 1 epoch of fine-tuning {}",
            dup.iter()
                .map(|(n, d, dead)| format!("{n} {d} ({dead} dead)"))
                .collect::<Vec<_>>()
                .join(", "),
            st.claim_ratio * 100.0,
            pct(base),
            fmt(&at),
            fmt(&ft),
        ),
        &format!(
            "at least one near-duplicate pair; at {:.0}% of conv2, zeroing by redundancy, FPGM \
             and L1 each keeps at least random's accuracy, and after 1 epoch of fine-tuning each \
             is within 1 point of the unpruned model",
            st.claim_ratio * 100.0
        ),
        json!({ "near_duplicates": dup, "baseline": base, "zeroed": by_criterion(&at),
                "finetuned": by_criterion(&ft) }),
    )
}

/// 7. The same seed on every compiled backend: identical initial weights, similar accuracy.
fn cross_backend(r: &Results, backends: &[&str]) -> Claim {
    const NAME: &str = "Cross-backend";
    let [first, others @ ..] = backends else {
        return Claim::not_evaluated(7, NAME, "no backend");
    };
    if others.is_empty() {
        return Claim::not_evaluated(7, NAME, format!("only the {first} backend is compiled in"));
    }
    let Some(runs) = backends
        .iter()
        .map(|b| r.backends.get(*b).map(|run| (*b, run)))
        .collect::<Option<Vec<_>>>()
    else {
        return Claim::not_evaluated(7, NAME, "a backend run failed");
    };
    let (_, base) = runs[0];
    let mut pass = true;
    let mut parts = Vec::new();
    let mut details = Vec::new();
    for &(b, run) in &runs[1..] {
        let same_init =
            base.config.init.initial_weights_sha256 == run.config.init.initial_weights_sha256;
        let (aa, ab) = (base.summary.test_accuracy, run.summary.test_accuracy);
        let same_final = base.summary.weights_sha256 == run.summary.weights_sha256;
        pass &= same_init && (aa - ab).abs() <= 0.02;
        parts.push(format!(
            "{first} vs {b}: initial weights {}; test accuracy {} vs {} (final weights {})",
            if same_init {
                "bit-identical"
            } else {
                "DIFFERENT"
            },
            pct(aa),
            pct(ab),
            if same_final {
                "bit-identical"
            } else {
                "differ in the last bits, as float sums are ordered differently"
            }
        ));
        details.push(
            json!({ "backends": [first, b], "initial_identical": same_init,
                             "accuracy": { *first: aa, b: ab }, "final_identical": same_final }),
        );
    }
    Claim::judged(
        7,
        NAME,
        pass,
        parts.join("; "),
        "identical initial weights; final accuracy within 2 points, every backend",
        Value::Array(details),
    )
}

/// 8. Entezari et al. (2022): wider networks from different seeds are closer to one basin
///    after aligning their filters.
fn width(a: &Aggregates) -> Claim {
    const NAME: &str = "Wider is closer to one basin";
    let (Some(first), Some(last)) = (a.widths.first(), a.widths.last()) else {
        return Claim::not_evaluated(8, NAME, "no width was compared");
    };
    let (Some(c0), Some(c1)) = (&first.comparison, &last.comparison) else {
        return Claim::not_evaluated(8, NAME, "a width's comparison failed");
    };
    if a.widths.len() < 2 {
        return Claim::not_evaluated(8, NAME, "only one width");
    }
    let widest = &c1.loss_barrier[2];
    let verdict = all([
        judge(&a.barrier_trend, Passes::Above(0.0)),
        judge(widest, Passes::AtMost(0.05)),
    ]);
    let by_width: Vec<String> = a
        .widths
        .iter()
        .filter_map(|w| {
            Some(format!(
                "×{} {}",
                w.width,
                w.comparison.as_ref()?.loss_barrier[2].show(3)
            ))
        })
        .collect();
    Claim::with_verdict(
        8,
        NAME,
        verdict,
        format!(
            "weight-matched loss barrier by width: {}; narrowest minus widest {}; naive barrier \
             ×{} {} vs ×{} {}",
            by_width.join(", "),
            a.barrier_trend.show(3),
            first.width,
            c0.loss_barrier[0].show(3),
            last.width,
            c1.loss_barrier[0].show(3),
        ),
        "the weight-matched loss barrier falls from the narrowest to the widest width (difference \
         > 0) and is at most 0.05 at the widest; on 95% intervals over pairs",
        json!({ "barrier_trend": a.barrier_trend,
                "by_width": a.widths.iter().map(|w| json!({ "width": w.width, "loss_barrier": w.comparison.as_ref().map(|c| c.loss_barrier) })).collect::<Vec<_>>() }),
    )
}

/// 9. Networks from different seeds span the same subspace in different bases (Li et al. 2016;
///    Raghu et al. 2017; Morcos et al. 2018).
fn subspaces(a: &Aggregates) -> Claim {
    const NAME: &str = "Same subspace, different basis";
    let Some(agg) = &a.reference else {
        return Claim::not_evaluated(9, NAME, "the comparison failed");
    };
    let layers: Vec<_> = SUBSPACE_LAYERS
        .iter()
        .filter_map(|name| agg.layer(name))
        .collect();
    if layers.len() != SUBSPACE_LAYERS.len() {
        return Claim::not_evaluated(9, NAME, "the compared model lacks conv2 or fc1");
    }
    let verdict = all(layers.iter().flat_map(|l| {
        [
            judge(&l.reconstruction_all, Passes::AtLeast(0.8)),
            judge(&l.reconstruction_gain, Passes::AtLeast(0.1)),
        ]
    }));
    let describe = |l: &&super::aggregate::LayerAggregate| {
        format!(
            "{}: R² from all of B's maps {}, from the best single one {}, gain {}; SVCCA {}, \
             PWCCA {}; matched at ρ ≥ 0.5 {} %",
            l.layer,
            l.reconstruction_all.show(3),
            l.reconstruction
                .first()
                .map_or("-".into(), |(_, e)| e.show(3)),
            l.reconstruction_gain.show(3),
            l.svcca.show(3),
            l.pwcca.show(3),
            l.matched_0_5.show_pct(0)
        )
    };
    Claim::with_verdict(
        9,
        NAME,
        verdict,
        layers.iter().map(describe).collect::<Vec<_>>().join("; "),
        "in conv2 and fc1, B's feature maps reconstruct A's with mean R² ≥ 0.8 (least squares on \
         all of them), and using all of them gains ≥ 0.1 of R² over the best single map; on 95% \
         intervals over pairs",
        json!({ "layers": layers.iter().map(|l| json!({ "layer": l.layer, "reconstruction_all": l.reconstruction_all,
                "reconstruction": l.reconstruction, "gain": l.reconstruction_gain, "svcca": l.svcca, "pwcca": l.pwcca,
                "matched_0_5": l.matched_0_5 })).collect::<Vec<_>>() }),
    )
}

/// 10. Does an initialization that starts with decorrelated filters end with fewer redundant
///     ones? Orthogonal against He (the same scale).
fn init_redundancy(a: &Aggregates) -> Claim {
    const NAME: &str = "Decorrelated starts end less redundant";
    let c = &a.scheme_contrast;
    if !c.at_init.is_measured() || !c.trained.is_measured() {
        return Claim::not_evaluated(10, NAME, "an orthogonal or He run or analysis failed");
    }
    let verdict = all([
        judge(&c.at_init, Passes::Above(0.0)),
        judge(&c.trained, Passes::Above(0.0)),
    ]);
    let per_scheme: Vec<String> = a
        .schemes
        .iter()
        .map(|s| {
            format!(
                "{} {} → {}",
                s.name,
                s.at_init.mean_abs_rho.show(3),
                s.trained.mean_abs_rho.show(3)
            )
        })
        .collect();
    Claim::with_verdict(
        10,
        NAME,
        verdict,
        format!(
            "{FOCUS_LAYER}'s mean |ρ| between filters, He minus orthogonal: at init {}, after \
             training {}; per scheme, at init → trained: {}",
            c.at_init.show(3),
            c.trained.show(3),
            per_scheme.join("; ")
        ),
        "orthogonal initialization (gain √2) gives conv2 a lower mean |ρ| between filters' \
         feature maps than He, both at initialization and after training (difference > 0 on the \
         95% interval over seeds)",
        json!({ "contrast": c, "schemes": a.schemes }),
    )
}

/// 11. Wider layers are more redundant: more of conv2 can be removed at no cost.
fn width_redundancy(st: &Settings, a: &Aggregates) -> Claim {
    const NAME: &str = "Wider layers are more redundant";
    if a.widths.len() < 2 || !a.prunable_trend.is_measured() {
        return Claim::not_evaluated(11, NAME, "fewer than two widths were pruned");
    }
    let by_width: Vec<String> = a
        .widths
        .iter()
        .map(|w| format!("×{} {}", w.width, w.prunable.show_pct(0)))
        .collect();
    Claim::with_verdict(
        11,
        NAME,
        judge(&a.prunable_trend, Passes::Above(0.0)),
        format!(
            "% of {FOCUS_LAYER} zeroed (redundancy criterion, {}) within {} point of the \
             unpruned accuracy, by width: {}; widest minus narrowest {} points",
            st.width_finetune_words(),
            PRUNE_TOLERANCE * 100.0,
            by_width.join(", "),
            a.prunable_trend.show_pct(0)
        ),
        "the prunable fraction of conv2 is larger at the widest width than at the narrowest \
         (difference > 0 on the 95% interval over seeds)",
        json!({ "trend": a.prunable_trend,
                "by_width": a.widths.iter().map(|w| json!({ "width": w.width, "prunable": w.prunable })).collect::<Vec<_>>() }),
    )
}

/// 12. A tiny perturbation makes every filter distinct (claim 4) but leaves the layer
///     effectively one filter.
fn symmetry_breaking(a: &Aggregates) -> Claim {
    const NAME: &str = "Tiny noise breaks symmetry only nominally";
    let (Some(small), Some(random)) = (a.breaking_at(1e-4), a.breaking_random()) else {
        return Claim::not_evaluated(12, NAME, "the σ = 1e-4 or the random runs failed");
    };
    let per_sigma: Vec<String> = a
        .breaking
        .iter()
        .filter_map(|b| Some(format!("{:e} {}", b.sigma?, b.relative_rank.show(2))))
        .collect();
    Claim::with_verdict(
        12,
        NAME,
        judge(&small.relative_rank, Passes::Below(0.5)),
        format!(
            "{FOCUS_LAYER}'s effective rank after training: random init {}, σ = 1e-4 {} ({} of \
             random); relative to random by σ: {}; smallest σ reaching 90% of random: {}",
            random.effective_rank.show(1),
            small.effective_rank.show(1),
            small.relative_rank.show(2),
            per_sigma.join(", "),
            a.noise_to_match_random(0.9)
                .map_or("none of those tried".into(), |s| format!("{s:e}"))
        ),
        "after constant(0.01)+noise(1e-4), conv2's effective rank after training is below half \
         of a random initialization's (ratio, seed by seed, < 0.5 on the 95% interval)",
        json!({ "breaking": a.breaking, "noise_to_reach_90_percent": a.noise_to_match_random(0.9) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
