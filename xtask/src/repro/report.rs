//! `REPORT.md` of the reproducibility study: reads like a short paper, with every figure and the
//! verdict of every claim.

use std::fmt::Write;
use std::path::Path;

use super::StudySummary;
use super::aggregate::{
    Aggregates, ComparisonAggregate, LayerAggregate, PRUNE_TOLERANCE, SUBSPACE_LAYERS,
};
use super::charts::names;
use super::claims::{Verdict, median_ratios, pct};
use super::layout::{Layout, files};
use super::outputs::Pair;
use super::plan::{CLAIM_CRITERIA, FOCUS_LAYER, RANDOM};
use super::results::Results;
use super::stats::Estimate;
use crate::jobs::fmt_duration;

/// `v` with `digits` decimals, `-` if not finite.
fn num(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "-".into()
    }
}

/// `v` as a percentage, `-` if absent.
fn pct_or_dash(v: Option<f64>) -> String {
    v.map_or("-".into(), pct)
}

/// A figure reference, only if the file exists.
fn figure(s: &mut String, layout: &Layout, rel: &Path, caption: &str) {
    if layout.abs(rel).is_file() {
        let _ = writeln!(s, "![{caption}]({})\n\n*{caption}*\n", rel.display());
    }
}

/// Render the report.
pub fn render(sum: &StudySummary, r: &Results, layout: &Layout) -> String {
    let st = &sum.settings;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# filterlab reproducibility study ({:?} profile)\n",
        sum.profile
    );
    let count = |v: Verdict| sum.claims.iter().filter(|c| c.verdict == v).count();
    let (passed, failed, open) = (
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Inconclusive),
    );
    let _ = writeln!(
        s,
        "Started {} UTC, wall time {} (while jobs ran, over every invocation){}. {passed} \
         claim(s) pass, {failed} fail, {open} inconclusive, {} not evaluated. Budget: {} jobs, \
         estimated {:.2} core-hours; the jobs took {:.2} core-hours.\n",
        sum.started,
        fmt_duration(sum.wall_seconds),
        if sum.untimed_jobs > 0 {
            format!(" ({} jobs untimed, not counted)", sum.untimed_jobs)
        } else {
            String::new()
        },
        sum.claims.len() - passed - failed - open,
        sum.budget.jobs,
        sum.budget.core_hours,
        sum.measured_core_hours
    );
    let _ = writeln!(
        s,
        "Three questions about CNN filters, answered by experiment on Fashion-MNIST ({}): why \
         filters start random and from which distribution; whether different filters learn the \
         same feature map; and whether what a filter learns varies from run to run. Each claim \
         below is an experiment with a threshold fixed in advance; a failing claim is a finding, \
         not a bug to tune away. Aggregates over several seeds carry a 95% interval `[lo, hi]` \
         (percentile bootstrap over seeds, or over pairs of seeds for comparisons, {} resamples, \
         seeded); a claim on an aggregate passes when the whole interval is on the passing side \
         of its threshold, fails when none of it is, and is *inconclusive* when the threshold \
         lies inside the interval. Seeds: {:?}.\n",
        if st.data == "sample" {
            "the committed 10,000/2,000-image sample".to_string()
        } else {
            format!("full data from `{}`", st.data)
        },
        st.bootstrap_resamples,
        st.seeds
    );

    let _ = writeln!(s, "## Verdicts\n");
    let _ = writeln!(s, "| # | claim | verdict | measured | threshold |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for c in &sum.claims {
        let v = match c.verdict {
            Verdict::Pass => "**pass**",
            Verdict::Fail => "**FAIL**",
            Verdict::Inconclusive => "*inconclusive*",
            Verdict::Skipped => "not evaluated",
        };
        let _ = writeln!(
            s,
            "| {} | {} | {v} | {} | {} |",
            c.id,
            c.name,
            c.measured.replace('|', "\\|"),
            c.threshold.replace('|', "\\|")
        );
    }

    let a = &sum.aggregates;
    question1(&mut s, sum, r, layout);
    breaking(&mut s, sum, a, layout);
    question2(&mut s, sum, r, layout);
    schemes(&mut s, sum, a, layout);
    question3(&mut s, r, a, layout);
    subspaces(&mut s, a, layout);
    widths(&mut s, sum, a, layout);

    // Reproducibility.
    let _ = writeln!(s, "## Reproducibility\n");
    for c in sum.claims.iter().filter(|c| c.id == 1 || c.id == 7) {
        let _ = writeln!(s, "- **{}**: {}", c.name, c.measured);
    }
    let _ = writeln!(s, "\n## Setup\n");
    let m = &sum.machine;
    let _ = writeln!(
        s,
        "- Machine: {} ({} cores, {} GiB), {}/{}\n- Backend: {}; trainer {} on Burn {}; compiled \
         backends: {}\n- Data: `{}`\n- Seeds: {:?}; {} epoch(s) for the reference runs; jobs run \
         {}\n- Wall time: {}",
        m["cpu"].as_str().unwrap_or("?"),
        m["cores"],
        m["memory_gib"],
        m["os"].as_str().unwrap_or("?"),
        m["arch"].as_str().unwrap_or("?"),
        sum.backend,
        sum.trainer.filterlab_version,
        sum.trainer.burn_version,
        sum.trainer.backends.join(", "),
        st.data,
        st.seeds,
        st.epochs,
        sum.executor,
        fmt_duration(sum.wall_seconds)
    );
    let _ = writeln!(s, "\n| job | outcome |\n|---|---|");
    for (k, v) in &sum.job_outcomes {
        let _ = writeln!(s, "| {k} | {} |", v.replace('|', "\\|").replace('\n', " "));
    }
    let _ = writeln!(
        s,
        "\nEvery run directory is under `runs/`, every analysis under `analysis/`, the commands and \
         their output in `jobs/<job>.log`. `summary.json` holds all of the above as data."
    );
    s
}

/// Question 1: why random initialization, and which distribution.
fn question1(s: &mut String, sum: &StudySummary, r: &Results, layout: &Layout) {
    let st = &sum.settings;
    let _ = writeln!(
        s,
        "\n## 1. Filters start from random weights: why random, and which distribution?\n"
    );
    let _ = writeln!(s, "### Symmetry\n");
    let _ = writeln!(
        s,
        "The reference CNN trained for {} epoch(s) from `constant(0.01)` (every weight equal, \
         biases zero), and from the same constant plus N(0, 1e-4²) noise. Identical filters \
         receive identical gradients, so they stay identical; the smallest perturbation breaks \
         the tie.\n",
        st.epochs
    );
    let _ = writeln!(
        s,
        "| layer | filters | distinct (constant) | distinct (perturbed) | mean cosine (constant) \
         | mean cosine (perturbed) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    if let (Some(ic), Some(ip)) = (&r.inspect_constant, &r.inspect_perturbed) {
        for (a, b) in ic.layers.iter().zip(&ip.layers) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                a.layer,
                a.filters,
                a.distinct_filters,
                b.distinct_filters,
                num(a.mean_pairwise_cosine, 4),
                num(b.mean_pairwise_cosine, 4)
            );
        }
    }
    let _ = writeln!(s);
    figure(
        s,
        layout,
        &Layout::inspect("const").join(files::FIRST_LAYER),
        "First-layer filters after constant initialization: all the same",
    );
    figure(
        s,
        layout,
        &Layout::inspect("perturbed").join(files::FIRST_LAYER),
        "First-layer filters after constant + tiny noise: all different",
    );

    let _ = writeln!(s, "### Variance across depth\n");
    let _ = writeln!(
        s,
        "A {}-layer plain ReLU CNN (width {}, no normalization, no skips) at initialization. The \
         variance analysis predicts a per-layer multiplier of the pre-activation variance of \
         `fan_in·Var(w)/2`: 1 for He, ½ for Xavier, 1/6 for PyTorch's default, {} for N(0, 1) \
         (fan_in = 9·{}). The table is the median over {} weight seeds of the pre-activation \
         std(layer {})/std(layer 1) on N(0, 1) inputs.\n",
        st.init_depth,
        st.init_width,
        9 * st.init_width / 2,
        st.init_width,
        st.init_seeds,
        st.init_depth
    );
    let _ = writeln!(
        s,
        "| scheme | median std ratio, layer {} / layer 1 |",
        st.init_depth
    );
    let _ = writeln!(s, "|---|---|");
    for (k, v) in median_ratios(r) {
        let shown = if v.is_finite() {
            format!("{v:.3e}")
        } else {
            "-".into()
        };
        let _ = writeln!(s, "| `{k}` | {shown} |");
    }
    let _ = writeln!(s);
    if let Some(real) = &r.init_stats_real {
        let _ = writeln!(
            s,
            "On real images (one seed), per layer, post-activation std:\n"
        );
        let mut header = "| layer |".to_string();
        let mut rule = "|---|".to_string();
        for sch in &real.schemes {
            let _ = write!(header, " `{}` |", sch.spec);
            rule.push_str("---|");
        }
        let _ = writeln!(s, "{header}\n{rule}");
        let depth = real.schemes.first().map_or(0, |sch| sch.layers.len());
        for i in 0..depth {
            let mut row = format!("| {} |", i + 1);
            for sch in &real.schemes {
                let v = sch.layers.get(i).map_or(f64::NAN, |l| l.post_std);
                let shown = if v.is_finite() {
                    format!("{v:.2e}")
                } else {
                    "-".into()
                };
                let _ = write!(row, " {shown} |");
            }
            let _ = writeln!(s, "{row}");
        }
        let _ = writeln!(s);
    }
    figure(
        s,
        layout,
        &Layout::init_stats_real().join(files::ACTIVATION_STD),
        "Post-activation std versus depth, one line per scheme (log scale)",
    );
    figure(
        s,
        layout,
        &Layout::init_stats_real().join(files::GRADIENT_STD),
        "Weight-gradient std versus depth after one backward pass (log scale)",
    );
    let acc = |kind: &str| r.plain.get(kind).map(|x| x.test_accuracy);
    let _ = writeln!(
        s,
        "A {}-layer plain ReLU CNN of width {}, trained for one pass over {} images (a fixed step \
         budget), reaches {} test accuracy from He initialization and {} from N(0, 0.01²).\n",
        st.plain_depth,
        st.plain_width,
        st.plain_train_limit,
        pct_or_dash(acc("he")),
        pct_or_dash(acc("small"))
    );
}

/// Question 2: redundant filters and pruning.
fn question2(s: &mut String, sum: &StudySummary, r: &Results, layout: &Layout) {
    let st = &sum.settings;
    let _ = writeln!(
        s,
        "## 2. Can different filters learn the same feature map?\n"
    );
    let _ = writeln!(
        s,
        "Feature maps of the seed-{} run correlated over {} training images (Pearson over images \
         and positions). Near-duplicates: |ρ| ≥ 0.9.\n",
        st.seeds[0], st.prune_samples
    );
    let _ = writeln!(
        s,
        "| layer | filters | near-duplicate pairs | clusters | redundant | dead | mean abs ρ |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for l in r.redundancy.iter().flat_map(|red| &red.layers) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            l.layer,
            l.filters,
            l.near_duplicates.len(),
            l.clusters.len(),
            l.redundant,
            l.dead.len(),
            num(l.mean_abs_correlation, 3)
        );
    }
    let _ = writeln!(s);
    figure(
        s,
        layout,
        &Layout::redundancy().join(files::correlation("conv2")),
        "Feature-map correlation between conv2's filters (red +1, white 0, blue −1)",
    );
    if let Some(sweep) = &r.sweep {
        let _ = writeln!(
            s,
            "Zeroing a fraction of conv2's filters, without fine-tuning (unpruned: {}):\n",
            pct(sweep.baseline_accuracy)
        );
        let mut ratios: Vec<f64> = sweep.points.iter().map(|p| p.ratio).collect();
        ratios.sort_by(f64::total_cmp);
        ratios.dedup();
        let _ = write!(s, "| criterion |");
        for q in &ratios {
            let _ = write!(s, " {:.0}% |", q * 100.0);
        }
        let _ = writeln!(s, "\n|---|{}", "---|".repeat(ratios.len()));
        let mut crits: Vec<&str> = sweep.points.iter().map(|p| p.criterion.as_str()).collect();
        crits.dedup();
        for c in crits {
            let _ = write!(s, "| {c} |");
            for &q in &ratios {
                let _ = write!(s, " {} |", pct_or_dash(sweep.accuracy(c, q)));
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
    }
    figure(
        s,
        layout,
        &Layout::sweep().join(files::SWEEP_FIGURE),
        "Test accuracy versus fraction of conv2's filters zeroed, per criterion",
    );
    if !r.pruned.is_empty() {
        let _ = writeln!(
            s,
            "With one epoch of fine-tuning (pruned filters held at zero) at {:.0}%:\n",
            st.claim_ratio * 100.0
        );
        let _ = writeln!(s, "| criterion | zeroed | fine-tuned |");
        let _ = writeln!(s, "|---|---|---|");
        for c in CLAIM_CRITERIA.into_iter().chain([RANDOM]) {
            let zeroed = r
                .sweep
                .as_ref()
                .and_then(|sw| sw.accuracy(c, st.claim_ratio));
            let tuned = r
                .pruned
                .get(c)
                .and_then(|p| p.finetuned)
                .map(|f| f.accuracy);
            let _ = writeln!(
                s,
                "| {c} | {} | {} |",
                pct_or_dash(zeroed),
                pct_or_dash(tuned)
            );
        }
        let _ = writeln!(s);
    }
}

/// Question 3: runs from different seeds.
fn question3(s: &mut String, r: &Results, a: &Aggregates, layout: &Layout) {
    let _ = writeln!(s, "## 3. Does what a filter learns vary from run to run?\n");
    let _ = writeln!(s, "| run | seed | test accuracy |");
    let _ = writeln!(s, "|---|---|---|");
    let (Some(cmp), Some(agg)) = (&r.comparison, &a.reference) else {
        return;
    };
    for run in &cmp.runs {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} |",
            run.run.display(),
            run.seed,
            pct(run.test_accuracy)
        );
    }
    let _ = writeln!(
        s,
        "\nMean {} %, standard deviation {} points, range {} – {}.\n",
        agg.accuracy.show_pct(2),
        agg.accuracy_std_points.show(2),
        pct(cmp.accuracy_min),
        pct(cmp.accuracy_max)
    );
    let _ = writeln!(
        s,
        "Every pair of seeds compared on {} test images; each cell is the mean over the {} pairs \
         with its 95% interval.\n",
        sample_count(r),
        agg.pairs
    );
    layer_table(s, agg);
    barrier_table(s, agg);
    let _ = writeln!(
        s,
        "| pair | conv2 matched ≥ 0.5 | conv2 CKA | naive loss barrier | weight-matched loss \
         barrier |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for p in &cmp.pairs {
        let l = p.layer(FOCUS_LAYER);
        let _ = writeln!(
            s,
            "| {} vs {} | {} | {} | {} | {} |",
            name_of(&p.a),
            name_of(&p.b),
            l.map_or("-".into(), |l| format!(
                "{}/{}",
                l.matched.at_least_0_5, l.filters
            )),
            l.map_or("-".into(), |l| num(l.cka(), 3)),
            p.naive.loss_barrier.map_or("-".into(), |v| num(v, 3)),
            p.weight_aligned
                .loss_barrier
                .map_or("-".into(), |v| num(v, 3))
        );
    }
    let _ = writeln!(s);
    if let Some(first) = cmp.pairs.first() {
        pair(s, first, &Layout::compare(), layout);
    }
}

/// Images the reference comparison compared feature maps on.
fn sample_count(r: &Results) -> usize {
    r.comparison
        .as_ref()
        .and_then(|c| c.pairs.first())
        .map_or(0, |p| p.samples)
}

/// A run directory's name.
fn name_of(p: &Path) -> String {
    p.file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned())
}

/// Per hidden layer: one-to-one matching, CKA and the subspace measures, with intervals.
fn layer_table(s: &mut String, agg: &ComparisonAggregate) {
    let _ = writeln!(
        s,
        "| layer | filters | matched ≥ 0.5 | matched ≥ 0.9 | matched ρ | \\|identity ρ\\| | CKA \
         | SVCCA | PWCCA | R² best single map | R² all maps |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    for l in &agg.layers {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            l.layer,
            l.filters,
            l.matched_0_5.show(2),
            l.matched_0_9.show(2),
            l.matched_rho.show(3),
            l.identity_abs_rho.show(3),
            l.cka.show(3),
            l.svcca.show(3),
            l.pwcca.show(3),
            l.reconstruction
                .first()
                .map_or("-".into(), |(_, e)| e.show(3)),
            l.reconstruction_all.show(3)
        );
    }
    let _ = writeln!(s);
}

/// Loss and error barriers of the three alignments, with intervals.
fn barrier_table(s: &mut String, agg: &ComparisonAggregate) {
    let _ = writeln!(s, "| alignment | loss barrier | error barrier (points) |");
    let _ = writeln!(s, "|---|---|---|");
    for (i, method) in ["none", "activation matching", "weight matching"]
        .iter()
        .enumerate()
    {
        let _ = writeln!(
            s,
            "| {method} | {} | {} |",
            agg.loss_barrier[i].show(3),
            agg.error_barrier[i].show_pct(2)
        );
    }
    let _ = writeln!(
        s,
        "\nPermuting B onto A changes no logit by more than {:.1e} (the function is unchanged).\n",
        agg.max_logit_change
    );
}

/// The smallest `k` whose mean R² reaches `fraction` of the R² from all maps.
fn k_to_reach(l: &LayerAggregate, fraction: f64) -> Option<usize> {
    let target = fraction * l.reconstruction_all.value;
    l.reconstruction
        .iter()
        .find(|(_, e)| e.value >= target)
        .map(|(k, _)| *k)
}

/// Subspaces: SVCCA, PWCCA and the many-to-one reconstruction, and what they say about claim 3.
fn subspaces(s: &mut String, a: &Aggregates, layout: &Layout) {
    let Some(agg) = &a.reference else {
        return;
    };
    let _ = writeln!(s, "### Same filters, or the same subspace?\n");
    let _ = writeln!(
        s,
        "One-to-one matching asks whether each filter of one seed has a twin in another. Two \
         layers can instead compute the same subspace in different bases, each filter of A a \
         mixture of several of B's. SVCCA (Raghu et al. 2017: top principal directions holding \
         99% of the variance, then canonical correlations), PWCCA (Morcos et al. 2018: canonical \
         correlations weighted by how much of the layer they account for) and the many-to-one \
         reconstruction (after Li et al. 2016: least squares of each of A's feature maps on k of \
         B's, chosen greedily; every image and position an observation) tell the two apart.\n"
    );
    let _ = writeln!(s, "| layer | k | mean R² |");
    let _ = writeln!(s, "|---|---|---|");
    for name in SUBSPACE_LAYERS {
        let Some(l) = agg.layer(name) else { continue };
        for (k, e) in &l.reconstruction {
            let _ = writeln!(s, "| {name} | {k} | {} |", e.show(3));
        }
        let _ = writeln!(
            s,
            "| {name} | all {} | {} |",
            l.filters,
            l.reconstruction_all.show(3)
        );
    }
    let _ = writeln!(s);
    figure(
        s,
        layout,
        &Layout::figure(names::RECONSTRUCTION),
        "Mean R² of reconstructing one seed's feature maps from k of another's (bands: 95% \
         intervals over pairs of seeds)",
    );
    let _ = writeln!(s, "**What this means.** {}\n", subspace_meaning(agg));
}

/// A paragraph on what matching, CKA and the subspace measures say together, from the numbers.
fn subspace_meaning(agg: &ComparisonAggregate) -> String {
    let mut out = Vec::new();
    for name in SUBSPACE_LAYERS {
        let Some(l) = agg.layer(name) else { continue };
        let single = l
            .reconstruction
            .first()
            .map_or(Estimate::MISSING, |(_, e)| *e);
        let mut p = format!(
            "In {name}, {} % of the filters have a partner at ρ ≥ 0.5 in another seed, while \
             CKA is {} and all of B's maps reconstruct A's with R² {}; the best single map of B \
             gives R² {}",
            l.matched_0_5.show_pct(0),
            l.cka.show(2),
            l.reconstruction_all.show(2),
            single.show(2)
        );
        if let Some(k) = k_to_reach(l, 0.9) {
            let _ = write!(p, ", and {k} maps reach 90% of the full reconstruction");
        }
        p.push_str(". ");
        let verdict = if !l.reconstruction_all.is_measured() {
            "Nothing can be said about its subspace."
        } else if l.reconstruction_all.lo >= 0.8 && l.reconstruction_gain.lo >= 0.1 {
            "So the two seeds span (nearly) the same subspace in different bases: their filters \
             are mixtures of each other's, which one-to-one matching cannot see."
        } else if l.reconstruction_all.hi < 0.8 {
            "So a substantial part of A's layer is not linearly available from B's: the seeds \
             learned partly different features, not only a different basis."
        } else if l.reconstruction_gain.hi < 0.1 {
            "So single filters already reconstruct A's maps about as well as the whole layer: \
             here the layers differ by little more than a permutation."
        } else {
            "The intervals are too wide to say whether the difference is one of basis or of \
             features."
        };
        out.push(p + verdict);
    }
    out.join(" ")
}

/// Width: matching, CKA, barriers and accuracy against width; redundancy against width.
fn widths(s: &mut String, sum: &StudySummary, a: &Aggregates, layout: &Layout) {
    let st = &sum.settings;
    if a.widths.is_empty() {
        return;
    }
    let _ = writeln!(s, "### Width\n");
    let t = &st.width_training;
    let _ = writeln!(
        s,
        "The reference CNN at widths {:?} (every hidden layer's channels multiplied), {} seeds \
         each, {} epoch(s) on {} training images; every pair of seeds compared as above. \
         Entezari et al. (2022) conjecture that, once permutations are accounted for, the loss \
         barrier between independently trained networks vanishes as width grows.\n",
        st.widths,
        st.seeds.len(),
        t.epochs,
        t.train_limit.map_or("all".into(), |n| n.to_string())
    );
    let _ = writeln!(
        s,
        "| width | conv2 filters | accuracy (%) | conv2 matched ≥ 0.5 | conv2 CKA | conv2 PWCCA \
         | conv2 R² all maps | naive loss barrier | weight-matched loss barrier |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for w in &a.widths {
        let Some(c) = &w.comparison else { continue };
        let l = c.layer(FOCUS_LAYER);
        let show =
            |f: &dyn Fn(&LayerAggregate) -> Estimate, d| l.map_or("-".into(), |l| f(l).show(d));
        let _ = writeln!(
            s,
            "| ×{} | {} | {} | {} | {} | {} | {} | {} | {} |",
            w.width,
            w.conv2_filters,
            c.accuracy.show_pct(2),
            show(&|l| l.matched_0_5, 2),
            show(&|l| l.cka, 3),
            show(&|l| l.pwcca, 3),
            show(&|l| l.reconstruction_all, 3),
            c.loss_barrier[0].show(3),
            c.loss_barrier[2].show(3)
        );
    }
    let _ = writeln!(s);
    for (name, caption) in [
        (
            names::WIDTH_BARRIER,
            "Loss barrier on the line between two seeds, against width: naive and aligned",
        ),
        (
            names::WIDTH_MATCHING,
            "Fraction of each layer's filters with a one-to-one partner at ρ ≥ 0.5, against width",
        ),
        (
            names::WIDTH_SIMILARITY,
            "conv2 of two seeds: one-to-one matching against CKA, SVCCA, PWCCA and the \
             many-to-one reconstruction, against width",
        ),
        (names::WIDTH_ACCURACY, "Test accuracy against width"),
    ] {
        figure(s, layout, &Layout::figure(name), caption);
    }
    let _ = writeln!(s, "**What this means.** {}\n", width_meaning(a));

    let _ = writeln!(s, "### Redundancy versus width\n");
    let _ = writeln!(
        s,
        "Each run's {FOCUS_LAYER} zeroed by the redundancy criterion at ratios {}, each \
         {} with the zeros held; the prunable fraction is the largest ratio up to which every \
         ratio stays within {} point of the unpruned accuracy.\n",
        st.width_ratio_words(),
        st.width_finetune_words(),
        PRUNE_TOLERANCE * 100.0
    );
    let _ = writeln!(s, "| width | conv2 filters | prunable fraction |");
    let _ = writeln!(s, "|---|---|---|");
    for w in &a.widths {
        let _ = writeln!(
            s,
            "| ×{} | {} | {} |",
            w.width,
            w.conv2_filters,
            w.prunable.show(2)
        );
    }
    let _ = writeln!(s);
    figure(
        s,
        layout,
        &Layout::figure(names::WIDTH_PRUNABLE),
        "Fraction of conv2 removable at ≤ 1 point accuracy loss, against width",
    );
    figure(
        s,
        layout,
        &Layout::figure(names::WIDTH_FINETUNED),
        "Accuracy change after zeroing conv2 and fine-tuning, per width",
    );
    let (first, last) = (&a.widths[0], &a.widths[a.widths.len() - 1]);
    let direction = if a.prunable_trend.lo > 0.0 {
        "more of the wider layer can be removed at no cost: wider layers are more redundant"
    } else if a.prunable_trend.hi < 0.0 {
        "less of the wider layer can be removed: the narrower layer is the more redundant one"
    } else {
        "the interval of the difference contains zero: this study cannot tell whether width \
         changes redundancy"
    };
    let _ = writeln!(
        s,
        "**What this means.** At ×{} about {} % of conv2 can be zeroed within {} point of the \
         unpruned accuracy, at ×{} about {} % (difference {} points): {direction}.\n",
        first.width,
        first.prunable.show_pct(0),
        PRUNE_TOLERANCE * 100.0,
        last.width,
        last.prunable.show_pct(0),
        a.prunable_trend.show_pct(0)
    );
}

/// A paragraph on the width experiment, from the numbers.
fn width_meaning(a: &Aggregates) -> String {
    let with: Vec<_> = a
        .widths
        .iter()
        .filter_map(|w| Some((w.width, w.comparison.as_ref()?)))
        .collect();
    let (Some((w0, c0)), Some((w1, c1))) = (with.first(), with.last()) else {
        return "No width was compared.".into();
    };
    let m = |c: &ComparisonAggregate| {
        c.layer(FOCUS_LAYER)
            .map_or(Estimate::MISSING, |l| l.matched_0_5)
    };
    let mut p = format!(
        "From ×{w0} to ×{w1} the weight-matched loss barrier goes from {} to {} (narrowest minus \
         widest {}), the naive one from {} to {}, and the fraction of conv2's filters with a \
         partner at ρ ≥ 0.5 from {} to {}. ",
        c0.loss_barrier[2].show(3),
        c1.loss_barrier[2].show(3),
        a.barrier_trend.show(3),
        c0.loss_barrier[0].show(3),
        c1.loss_barrier[0].show(3),
        m(c0).show(2),
        m(c1).show(2)
    );
    p.push_str(
        if a.barrier_trend.lo > 0.0 && c1.loss_barrier[2].hi <= 0.05 {
            "The aligned barrier falls with width and is near zero at the widest: consistent with \
         Entezari et al.'s conjecture."
        } else if a.barrier_trend.lo > 0.0 {
            "The aligned barrier falls with width but has not vanished at the widest width tried: \
         consistent with the conjecture's direction, not yet with its limit."
        } else if a.barrier_trend.hi < 0.0 {
            "The aligned barrier grows with width here, against the conjecture's prediction (at \
         these widths and this training budget)."
        } else {
            "The interval of the change contains zero: this study cannot tell whether the aligned \
         barrier shrinks with width."
        },
    );
    let (f0, f1) = (m(c0), m(c1));
    if f0.is_measured() && f1.is_measured() {
        // Apart only when the intervals do not overlap.
        p.push_str(if f1.lo > f0.hi {
            " One-to-one matching of conv2 improves with width."
        } else if f1.hi < f0.lo {
            " One-to-one matching of conv2 gets worse with width."
        } else {
            " One-to-one matching of conv2 does not change with width beyond the intervals."
        });
        let cka = c1.layer(FOCUS_LAYER).map_or(Estimate::MISSING, |l| l.cka);
        let _ = write!(
            p,
            " At ×{w1}, {} % of conv2's filters have a partner (claim 3 asks for ≥ 50 %) while its CKA is {}: ",
            f1.show_pct(0),
            cka.show(2)
        );
        p.push_str(if f1.hi < 0.5 && cka.lo >= 0.8 {
            "claim 3's one-to-one criterion fails even where the representations agree, so what the seeds share is not individual filters (see the subspace measures above)."
        } else if f1.lo >= 0.5 {
            "at this width single filters do have partners at claim 3's threshold."
        } else if f1.hi < 0.5 {
            "neither single filters nor the representation as a whole agree closely at this width."
        } else {
            "the matched fraction's interval contains claim 3's threshold: width does not settle it here."
        });
    }
    p
}

/// Initialization × redundancy.
fn schemes(s: &mut String, sum: &StudySummary, a: &Aggregates, layout: &Layout) {
    if a.schemes.is_empty() {
        return;
    }
    let st = &sum.settings;
    let t = &st.scheme_training;
    let _ = writeln!(s, "### Initialization × redundancy\n");
    let _ = writeln!(
        s,
        "The reference CNN under five initializations ({} seeds each, {} epoch(s) on {} training \
         images); conv2's feature maps correlated over {} training images at initialization and \
         after training (near-duplicates: |ρ| ≥ 0.9), and conv2 zeroed by the redundancy \
         criterion at {:?} without fine-tuning.\n",
        st.seeds.len(),
        t.epochs,
        t.train_limit.map_or("all".into(), |n| n.to_string()),
        st.prune_samples,
        st.scheme_prune_ratios
    );
    let _ = write!(
        s,
        "| init | accuracy (%) | mean \\|ρ\\| at init | mean \\|ρ\\| trained | near-duplicate \
         pairs at init | trained | dead at init | dead trained |"
    );
    for q in &st.scheme_prune_ratios {
        let _ = write!(s, " acc. {:.0}% zeroed |", q * 100.0);
    }
    let _ = writeln!(s, "\n|{}", "---|".repeat(8 + st.scheme_prune_ratios.len()));
    for x in &a.schemes {
        let _ = write!(
            s,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
            x.init,
            x.accuracy.show_pct(2),
            x.at_init.mean_abs_rho.show(3),
            x.trained.mean_abs_rho.show(3),
            x.at_init.near_duplicates.show(1),
            x.trained.near_duplicates.show(1),
            x.at_init.dead.show(1),
            x.trained.dead.show(1)
        );
        for (_, e) in &x.pruned {
            let _ = write!(s, " {} |", e.show_pct(1));
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s);
    figure(
        s,
        layout,
        &Layout::figure(names::INIT_REDUNDANCY),
        "Mean |ρ| between conv2's feature maps at initialization and after training, per \
         initialization",
    );
    figure(
        s,
        layout,
        &Layout::figure(names::INIT_PRUNING),
        "Accuracy after zeroing conv2 by the redundancy criterion, per initialization",
    );
    let by = |f: &dyn Fn(&super::aggregate::SchemeAggregate) -> f64| {
        let mut v: Vec<(&str, f64)> = a.schemes.iter().map(|x| (x.name.as_str(), f(x))).collect();
        v.retain(|(_, x)| x.is_finite());
        v.sort_by(|x, y| x.1.total_cmp(&y.1));
        v
    };
    let init = by(&|x| x.at_init.mean_abs_rho.value);
    let trained = by(&|x| x.trained.mean_abs_rho.value);
    let c = &a.scheme_contrast;
    let range = |v: &[(&str, f64)]| match (v.first(), v.last()) {
        (Some(lo), Some(hi)) => format!("from {:.3} ({}) to {:.3} ({})", lo.1, lo.0, hi.1, hi.0),
        _ => "-".into(),
    };
    let conclusion = match (c.at_init.lo > 0.0, c.trained.lo > 0.0, c.trained.hi < 0.0) {
        (true, true, _) => {
            "orthogonal filters start less correlated than He's and stay so after \
                            training"
        }
        (true, false, false) => {
            "orthogonal filters start less correlated than He's, but after \
                                 training the difference is within the noise of the seeds"
        }
        (true, false, true) => {
            "orthogonal filters start less correlated than He's but end more \
                                correlated"
        }
        (false, _, _) => {
            "on real images, orthogonal weights do not even start with less \
                          correlated feature maps than He's (the input patches are correlated, \
                          so orthogonal filters need not give uncorrelated maps)"
        }
    };
    let _ = writeln!(
        s,
        "**What this means.** At initialization the mean |ρ| of conv2 ranges {}; after training \
         {}. He minus orthogonal: {} at initialization, {} after training: {conclusion}.\n",
        range(&init),
        range(&trained),
        c.at_init.show(3),
        c.trained.show(3)
    );
}

/// How fast symmetry breaks: the effective rank of conv2 along training for each noise scale.
fn breaking(s: &mut String, sum: &StudySummary, a: &Aggregates, layout: &Layout) {
    if a.breaking.is_empty() {
        return;
    }
    let st = &sum.settings;
    let t = &st.breaking_training;
    let _ = writeln!(s, "### How fast does symmetry break?\n");
    let _ = writeln!(
        s,
        "Claim 4 counts filters as distinct within a relative tolerance of 1e-5, so any noise \
         makes them all \"distinct\". Here the reference CNN starts from `constant(0.01)+noise(σ)` \
         for σ in {:?}, and from its random initialization, {} seeds each, {} epoch(s) on {} \
         training images, with its weights kept at doubling step counts. Two measures of how \
         many different filters conv2 really has: the effective rank of its filter matrix (Roy \
         and Vetterli 2007: exp of the entropy of the normalized singular values; 1 for one \
         filter repeated, up to 64) and the number of groups of filters at cosine ≥ 0.99.\n",
        st.noise_scales,
        st.seeds.len(),
        t.epochs,
        t.train_limit.map_or("all".into(), |n| n.to_string())
    );
    let _ = writeln!(
        s,
        "| init | effective rank at init | after training | relative to random (same seed) | \
         groups at cosine ≥ 0.99 |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for b in &a.breaking {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            b.sigma.map_or("random (burn-default)".into(), |x| format!(
                "`constant(0.01)+noise({x:e})`"
            )),
            b.trajectory.first().map_or("-".into(), |(_, e)| e.show(2)),
            b.effective_rank.show(2),
            b.relative_rank.show(3),
            b.groups.show(1)
        );
    }
    let _ = writeln!(s);
    figure(
        s,
        layout,
        &Layout::figure(names::BREAKING_TRAJECTORY),
        "Effective rank of conv2's filters along training, per initialization",
    );
    figure(
        s,
        layout,
        &Layout::figure(names::BREAKING_FINAL),
        "Effective rank of conv2 after training relative to a random initialization, against σ",
    );
    let needed = a.noise_to_match_random(0.9);
    let random = a
        .breaking_random()
        .map_or(Estimate::MISSING, |b| b.effective_rank);
    let smallest = a.breaking.iter().find(|b| b.sigma.is_some());
    let _ = writeln!(
        s,
        "**What this means.** After training, conv2 from a random initialization has an \
         effective rank of {}{}. {}\n",
        random.show(1),
        smallest.map_or(String::new(), |b| format!(
            "; from σ = {:e} it has {} ({} groups at cosine ≥ 0.99)",
            b.sigma.unwrap_or(f64::NAN),
            b.effective_rank.show(1),
            b.groups.show(1)
        )),
        match needed {
            Some(sigma) => format!(
                "The smallest noise that ends within 90% of the random initialization's effective \
                 rank (lower end of the interval) is σ = {sigma:e}: below it the filters are \
                 distinct in name only, little more than copies of one filter."
            ),
            None => "None of the noise scales tried ends within 90% of the random \
                     initialization's effective rank: noise added to a constant is no substitute \
                     for a proper random initialization at this training budget."
                .into(),
        }
    );
}

/// One compared pair: tables and figures (`compare` is the comparison's directory).
fn pair(s: &mut String, p: &Pair, compare: &Path, layout: &Layout) {
    let (a, b) = (name_of(&p.a), name_of(&p.b));
    let _ = writeln!(s, "#### One pair in detail: {a} vs {b}\n");
    let _ = writeln!(
        s,
        "| layer | filters | matched ρ | identity ρ | matched ≥ 0.9 | matched ≥ 0.5 | CKA | CKA \
         (debiased) | SVCCA | PWCCA |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for l in &p.layers {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            l.layer,
            l.filters,
            num(l.matched.mean, 3),
            num(l.identity.mean, 3),
            l.matched.at_least_0_9,
            l.matched.at_least_0_5,
            l.cka.map_or("-".into(), |c| num(c, 3)),
            num(l.cka_debiased, 3),
            num(l.subspace.svcca, 3),
            num(l.subspace.pwcca, 3)
        );
    }
    let _ = writeln!(
        s,
        "\n| alignment | ‖θ_A − θ_B‖ | max change of B's logits | loss barrier | error barrier |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for x in p.alignments() {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            x.method,
            num(x.weight_distance, 3),
            if x.max_abs_logit_change.is_finite() {
                format!("{:.1e}", x.max_abs_logit_change)
            } else {
                "-".into()
            },
            x.loss_barrier.map_or("-".into(), |v| num(v, 4)),
            x.error_barrier
                .map_or("-".into(), |v| format!("{:.2} points", v * 100.0))
        );
    }
    let _ = writeln!(s);
    let dir = Layout::compare_pair(compare, &p.a, &p.b);
    for (file, caption) in [
        (
            files::PAIR_FILTERS,
            format!(
                "First-layer filters of {a}, of {b}, and of {b} reordered by weight matching onto {a} (one colour scale)"
            ),
        ),
        (
            files::PAIR_MATCHED,
            "Correlation of paired filters: optimal matching versus identity pairing".into(),
        ),
        (
            files::PAIR_CKA,
            format!("Linear CKA between every layer of {a} and every layer of {b}"),
        ),
        (
            files::PAIR_RECONSTRUCTION,
            format!("Reconstructing each of {a}'s feature maps from k of {b}'s"),
        ),
        (
            files::PAIR_INTERPOLATION,
            "Test loss along the straight line between the two networks, naive and aligned".into(),
        ),
    ] {
        figure(s, layout, &dir.join(file), &caption);
    }
}
