//! `REPORT.md` of the reproducibility study: reads like a short paper, with every figure and the
//! verdict of every claim.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use crate::jobs::fmt_duration;
use crate::read_json;
use crate::repro::{StudySummary, Verdict};

fn load(out: &Path, rel: &str) -> Value {
    read_json(&out.join(rel)).unwrap_or(Value::Null)
}

fn pct(v: &Value) -> String {
    v.as_f64()
        .map_or("-".into(), |v| format!("{:.2}%", v * 100.0))
}

fn num(v: &Value, digits: usize) -> String {
    v.as_f64().map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// A figure reference, only if the file exists.
fn figure(s: &mut String, out: &Path, rel: &str, caption: &str) {
    if out.join(rel).is_file() {
        let _ = writeln!(s, "![{caption}]({rel})\n\n*{caption}*\n");
    }
}

/// Render the report.
pub fn render(sum: &StudySummary, out: &Path) -> String {
    let st = &sum.settings;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# filterlab reproducibility study ({:?} profile)\n",
        sum.profile
    );
    let passed = sum
        .claims
        .iter()
        .filter(|c| c.verdict == Verdict::Pass)
        .count();
    let failed = sum
        .claims
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .count();
    let _ = writeln!(
        s,
        "Started {} UTC, wall time {}. {passed} claim(s) pass, {failed} fail, {} not evaluated.\n",
        sum.started,
        fmt_duration(sum.wall_seconds),
        sum.claims.len() - passed - failed
    );
    let _ = writeln!(
        s,
        "Three questions about CNN filters, answered by experiment on Fashion-MNIST ({}): why \
         filters start random and from which distribution; whether different filters learn the \
         same feature map; and whether what a filter learns varies from run to run. Each claim \
         below is an experiment with a threshold fixed in advance; a failing claim is a finding, \
         not a bug to tune away.\n",
        if st.data == "sample" {
            "the committed 10,000/2,000-image sample".to_string()
        } else {
            format!("full data from `{}`", st.data)
        }
    );

    let _ = writeln!(s, "## Verdicts\n");
    let _ = writeln!(s, "| # | claim | verdict | measured | threshold |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for c in &sum.claims {
        let v = match c.verdict {
            Verdict::Pass => "**pass**",
            Verdict::Fail => "**FAIL**",
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

    // Question 1.
    let _ = writeln!(
        s,
        "\n## 1. Filters start from random weights: why random, and which distribution?\n"
    );
    let _ = writeln!(s, "### Symmetry\n");
    let _ = writeln!(
        s,
        "The reference CNN trained for {} epoch(s) from `constant(0.01)` (every weight equal, biases \
         zero), and from the same constant plus N(0, 1e-4²) noise. Identical filters receive identical \
         gradients, so they stay identical; the smallest perturbation breaks the tie.\n",
        st.epochs
    );
    let ic = load(out, "analysis/inspect-const/inspect.json");
    let ip = load(out, "analysis/inspect-perturbed/inspect.json");
    let _ = writeln!(
        s,
        "| layer | filters | distinct (constant) | distinct (perturbed) | mean cosine (constant) | mean cosine (perturbed) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for (a, b) in ic["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .zip(ip["layers"].as_array().into_iter().flatten())
    {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            a["layer"].as_str().unwrap_or(""),
            a["filters"],
            a["distinct_filters"],
            b["distinct_filters"],
            num(&a["mean_pairwise_cosine"], 4),
            num(&b["mean_pairwise_cosine"], 4)
        );
    }
    let _ = writeln!(s);
    figure(
        &mut s,
        out,
        "analysis/inspect-const/filters-first-layer.png",
        "First-layer filters after constant initialization: all the same",
    );
    figure(
        &mut s,
        out,
        "analysis/inspect-perturbed/filters-first-layer.png",
        "First-layer filters after constant + tiny noise: all different",
    );

    let _ = writeln!(s, "### Variance across depth\n");
    let _ = writeln!(
        s,
        "A {}-layer plain ReLU CNN (width {}, no normalization, no skips) at initialization. The \
         variance analysis predicts a per-layer multiplier of the pre-activation variance of \
         `fan_in·Var(w)/2`: 1 for He, ½ for Xavier, 1/6 for PyTorch's default, {} for N(0, 1) \
         (fan_in = 9·{}). The table is the median over {} weight seeds of the pre-activation std(layer {})/std(layer 1) \
         on N(0, 1) inputs.\n",
        st.init_depth,
        st.init_width,
        9 * st.init_width / 2,
        st.init_width,
        st.init_seeds,
        st.init_depth
    );
    if let Some(c5) = sum.claims.iter().find(|c| c.id == 5) {
        let _ = writeln!(
            s,
            "| scheme | median std ratio, layer {} / layer 1 |",
            st.init_depth
        );
        let _ = writeln!(s, "|---|---|");
        for (k, v) in c5.details["median_ratios"]
            .as_object()
            .into_iter()
            .flatten()
        {
            let _ = writeln!(
                s,
                "| `{k}` | {} |",
                v.as_f64().map_or("-".into(), |v| format!("{v:.3e}"))
            );
        }
        let _ = writeln!(s);
    }
    let real = load(out, "analysis/init-stats/real-images/init-stats.json");
    if let Some(schemes) = real["schemes"].as_array() {
        let _ = writeln!(
            s,
            "On real images (one seed), per layer, post-activation std:\n"
        );
        let mut header = "| layer |".to_string();
        let mut rule = "|---|".to_string();
        for sch in schemes {
            let _ = write!(header, " `{}` |", sch["spec"].as_str().unwrap_or(""));
            rule.push_str("---|");
        }
        let _ = writeln!(s, "{header}\n{rule}");
        let depth = schemes[0]["layers"].as_array().map_or(0, Vec::len);
        for i in 0..depth {
            let mut row = format!("| {} |", i + 1);
            for sch in schemes {
                let v = &sch["layers"][i]["post_std"];
                let _ = write!(
                    row,
                    " {} |",
                    v.as_f64().map_or("-".into(), |v| format!("{v:.2e}"))
                );
            }
            let _ = writeln!(s, "{row}");
        }
        let _ = writeln!(s);
    }
    figure(
        &mut s,
        out,
        "analysis/init-stats/real-images/activation-std.svg",
        "Post-activation std versus depth, one line per scheme (log scale)",
    );
    figure(
        &mut s,
        out,
        "analysis/init-stats/real-images/gradient-std.svg",
        "Weight-gradient std versus depth after one backward pass (log scale)",
    );
    let (ph, ps) = (
        load(out, "runs/plain-he/summary.json"),
        load(out, "runs/plain-small/summary.json"),
    );
    let _ = writeln!(
        s,
        "A {}-layer plain ReLU CNN of width {}, trained for one pass over {} images (a fixed step \
         budget), reaches {} test accuracy from He initialization and {} from N(0, 0.01²).\n",
        st.plain_depth,
        st.plain_width,
        st.plain_train_limit,
        pct(&ph["test_accuracy"]),
        pct(&ps["test_accuracy"])
    );

    // Question 2.
    let _ = writeln!(
        s,
        "## 2. Can different filters learn the same feature map?\n"
    );
    let red = load(out, "analysis/redundancy/redundancy.json");
    let _ = writeln!(
        s,
        "Feature maps of the seed-{} run correlated over {} training images (Pearson over images and \
         positions). Near-duplicates: |ρ| ≥ 0.9.\n",
        st.seeds[0], st.prune_samples
    );
    let _ = writeln!(
        s,
        "| layer | filters | near-duplicate pairs | clusters | redundant | dead | mean abs ρ |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for l in red["layers"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            l["layer"].as_str().unwrap_or(""),
            l["filters"],
            l["near_duplicates"].as_array().map_or(0, Vec::len),
            l["clusters"].as_array().map_or(0, Vec::len),
            l["redundant"],
            l["dead"].as_array().map_or(0, Vec::len),
            num(&l["mean_abs_correlation"], 3)
        );
    }
    let _ = writeln!(s);
    figure(
        &mut s,
        out,
        "analysis/redundancy/correlation-conv2.png",
        "Feature-map correlation between conv2's filters (red +1, white 0, blue −1)",
    );
    let sweep = load(out, "analysis/prune-sweep/sweep.json");
    if let Some(points) = sweep["points"].as_array() {
        let _ = writeln!(
            s,
            "Zeroing a fraction of conv2's filters, without fine-tuning (unpruned: {}):\n",
            pct(&sweep["baseline_accuracy"])
        );
        let mut ratios: Vec<f64> = points.iter().filter_map(|p| p["ratio"].as_f64()).collect();
        ratios.sort_by(f64::total_cmp);
        ratios.dedup();
        let _ = write!(s, "| criterion |");
        for r in &ratios {
            let _ = write!(s, " {:.0}% |", r * 100.0);
        }
        let _ = writeln!(s, "\n|---|{}", "---|".repeat(ratios.len()));
        let mut crits: Vec<&str> = points
            .iter()
            .filter_map(|p| p["criterion"].as_str())
            .collect();
        crits.dedup();
        for c in crits {
            let _ = write!(s, "| {c} |");
            for r in &ratios {
                let p = points
                    .iter()
                    .find(|p| p["criterion"] == c && p["ratio"].as_f64() == Some(*r));
                let _ = write!(s, " {} |", p.map_or("-".into(), |p| pct(&p["accuracy"])));
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
    }
    figure(
        &mut s,
        out,
        "analysis/prune-sweep/accuracy-vs-ratio.svg",
        "Test accuracy versus fraction of conv2's filters zeroed, per criterion",
    );
    if let Some(c6) = sum.claims.iter().find(|c| c.id == 6) {
        let _ = writeln!(
            s,
            "With one epoch of fine-tuning (pruned filters held at zero) at {:.0}%:\n",
            st.claim_ratio * 100.0
        );
        let _ = writeln!(s, "| criterion | zeroed | fine-tuned |");
        let _ = writeln!(s, "|---|---|---|");
        for (c, v) in c6.details["finetuned"].as_object().into_iter().flatten() {
            let _ = writeln!(
                s,
                "| {c} | {} | {} |",
                pct(&c6.details["zeroed"][c]),
                pct(v)
            );
        }
        let _ = writeln!(s);
    }

    // Question 3.
    let _ = writeln!(s, "## 3. Does what a filter learns vary from run to run?\n");
    let cmp = load(out, "analysis/compare/compare.json");
    let _ = writeln!(s, "| run | seed | test accuracy |");
    let _ = writeln!(s, "|---|---|---|");
    for r in cmp["runs"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} |",
            r["run"].as_str().unwrap_or(""),
            r["seed"],
            pct(&r["test_accuracy"])
        );
    }
    let _ = writeln!(
        s,
        "\nMean {}, standard deviation {} points, range {} – {}.\n",
        pct(&cmp["accuracy_mean"]),
        cmp["accuracy_std"]
            .as_f64()
            .map_or("-".into(), |v| format!("{:.2}", v * 100.0)),
        pct(&cmp["accuracy_min"]),
        pct(&cmp["accuracy_max"])
    );
    for p in cmp["pairs"].as_array().into_iter().flatten() {
        let name = |v: &Value| {
            Path::new(v.as_str().unwrap_or(""))
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned())
        };
        let (a, b) = (name(&p["a"]), name(&p["b"]));
        let _ = writeln!(s, "### {a} vs {b}\n");
        let _ = writeln!(
            s,
            "| layer | filters | matched ρ | identity ρ | matched ≥ 0.9 | matched ≥ 0.5 | CKA | CKA (debiased) |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for l in p["layers"].as_array().into_iter().flatten() {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                l["layer"].as_str().unwrap_or(""),
                l["filters"],
                num(&l["matched"]["mean"], 3),
                num(&l["identity"]["mean"], 3),
                l["matched"]["at_least_0_9"],
                l["matched"]["at_least_0_5"],
                num(&l["cka"], 3),
                num(&l["cka_debiased"], 3)
            );
        }
        let _ = writeln!(
            s,
            "\n| alignment | ‖θ_A − θ_B‖ | max change of B's logits | loss barrier | error barrier |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|");
        for al in ["naive", "activation_aligned", "weight_aligned"] {
            let x = &p[al];
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                x["method"].as_str().unwrap_or(al),
                num(&x["weight_distance"], 3),
                x["max_abs_logit_change"]
                    .as_f64()
                    .map_or("-".into(), |v| format!("{v:.1e}")),
                num(&x["loss_barrier"], 4),
                x["error_barrier"]
                    .as_f64()
                    .map_or("-".into(), |v| format!("{:.2} points", v * 100.0))
            );
        }
        let _ = writeln!(s);
        let dir = format!("analysis/compare/{a}-vs-{b}");
        figure(
            &mut s,
            out,
            &format!("{dir}/filters-a.png"),
            &format!("First-layer filters of {a}"),
        );
        figure(
            &mut s,
            out,
            &format!("{dir}/filters-b.png"),
            &format!("First-layer filters of {b}, raw order"),
        );
        figure(
            &mut s,
            out,
            &format!("{dir}/filters-b-aligned.png"),
            &format!("First-layer filters of {b}, reordered by weight matching onto {a}"),
        );
        figure(
            &mut s,
            out,
            &format!("{dir}/matched-correlation.svg"),
            "Correlation of paired filters: optimal matching versus identity pairing",
        );
        figure(
            &mut s,
            out,
            &format!("{dir}/cka.png"),
            "Linear CKA, every layer of A (rows) against every layer of B (columns; last: logits); red = 1",
        );
        figure(
            &mut s,
            out,
            &format!("{dir}/interpolation.svg"),
            "Test loss along the straight line between the two networks, naive and aligned",
        );
    }

    // Reproducibility.
    let _ = writeln!(s, "## Reproducibility\n");
    for c in sum.claims.iter().filter(|c| c.id == 1 || c.id == 7) {
        let _ = writeln!(s, "- **{}**: {}", c.name, c.measured);
    }
    let _ = writeln!(s, "\n## Setup\n");
    let m = &sum.machine;
    let _ = writeln!(
        s,
        "- Machine: {} ({} cores, {} GiB), {}/{}\n- Backend: {}; trainer {} on Burn {}; compiled backends: {}\n- Data: `{}`\n- Seeds: {:?}; {} epoch(s); {} job(s) at a time\n- Wall time: {}",
        m["cpu"].as_str().unwrap_or("?"),
        m["cores"],
        m["memory_gib"],
        m["os"].as_str().unwrap_or("?"),
        m["arch"].as_str().unwrap_or("?"),
        sum.backend,
        sum.trainer["filterlab_version"].as_str().unwrap_or("?"),
        sum.trainer["burn_version"].as_str().unwrap_or("?"),
        sum.trainer["backends"]
            .as_array()
            .map_or(String::new(), |b| b
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")),
        st.data,
        st.seeds,
        st.epochs,
        sum.jobs,
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
