//! `cargo xtask repro`: the reproducibility study. It trains and analyses the runs behind each
//! claim with the release `trainer`, evaluates every claim against a stated threshold, and
//! writes `REPORT.md`, `summary.json` and the figures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};

use crate::jobs::{Job, JobContext, Outcome, check_status, run_jobs, run_trainer, spawn_trainer};
use crate::{read_json, write_atomic};

/// How big the study is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// The committed sample, few epochs: minutes.
    Quick,
    /// Full Fashion-MNIST: the numbers worth publishing.
    Full,
    /// A miniature study for tests: seconds, verdicts not meaningful.
    Tiny,
}

/// Everything that sizes the study.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Profile name.
    pub profile: Profile,
    /// `--data` for every command.
    pub data: String,
    /// Seeds of the three reference runs.
    pub seeds: [u64; 3],
    /// Epochs of the reference runs (also the symmetry runs).
    pub epochs: usize,
    /// `--train-limit` of the reference runs.
    pub train_limit: Option<usize>,
    /// `--test-limit` of the reference runs.
    pub test_limit: Option<usize>,
    /// Deep plain CNN: depth.
    pub plain_depth: usize,
    /// Deep plain CNN: width.
    pub plain_width: usize,
    /// Deep plain CNN: training images (one epoch: the fixed step budget).
    pub plain_train_limit: usize,
    /// Deep plain CNN: test images.
    pub plain_test_limit: usize,
    /// init-stats: depth.
    pub init_depth: usize,
    /// init-stats: width.
    pub init_width: usize,
    /// init-stats: weight seeds whose median is compared with the theory.
    pub init_seeds: u64,
    /// compare: images.
    pub compare_samples: usize,
    /// compare: points per interpolation line.
    pub compare_alphas: usize,
    /// compare: test images for the interpolation.
    pub compare_test_limit: usize,
    /// redundancy/pruning: images for activation statistics.
    pub prune_samples: usize,
    /// prune-sweep ratios.
    pub prune_ratios: Vec<f64>,
    /// The ratio of conv2's filters at which the pruning claim is judged.
    pub claim_ratio: f64,
    /// Cross-backend runs: training images.
    pub backend_train_limit: usize,
    /// Cross-backend runs: test images.
    pub backend_test_limit: usize,
    /// Claim 2: largest acceptable standard deviation of accuracy across seeds, in points.
    pub accuracy_std_max: f64,
}

impl Settings {
    /// The settings of a profile; `full_data` is the full Fashion-MNIST directory.
    pub fn new(profile: Profile, full_data: Option<PathBuf>) -> Result<Self> {
        // The quick profile; the others differ from it where they say.
        let quick = Settings {
            profile: Profile::Quick,
            data: "sample".to_string(),
            seeds: [1, 2, 3],
            epochs: 2,
            train_limit: None,
            test_limit: None,
            plain_depth: 20,
            plain_width: 16,
            plain_train_limit: 4000,
            plain_test_limit: 1000,
            init_depth: 20,
            init_width: 32,
            init_seeds: 5,
            compare_samples: 1000,
            compare_alphas: 11,
            compare_test_limit: 1000,
            prune_samples: 1000,
            prune_ratios: vec![0.1, 0.3, 0.5, 0.7],
            claim_ratio: 0.5,
            backend_train_limit: 1000,
            backend_test_limit: 500,
            accuracy_std_max: 2.0,
        };
        Ok(match profile {
            Profile::Quick => quick,
            Profile::Full => {
                let dir = full_data.context(
                    "--full needs the full Fashion-MNIST: run `datasets/fetch` (or apt-get install \
                     dataset-fashion-mnist), or pass --data DIR",
                )?;
                Settings {
                    profile,
                    data: dir.display().to_string(),
                    epochs: 3,
                    plain_train_limit: 10_000,
                    plain_test_limit: 2000,
                    compare_test_limit: 2000,
                    backend_train_limit: 2000,
                    backend_test_limit: 1000,
                    accuracy_std_max: 0.5,
                    ..quick
                }
            }
            Profile::Tiny => Settings {
                profile,
                train_limit: Some(192),
                test_limit: Some(128),
                plain_depth: 4,
                plain_width: 4,
                plain_train_limit: 64,
                plain_test_limit: 64,
                init_depth: 6,
                init_width: 8,
                init_seeds: 2,
                compare_samples: 64,
                compare_alphas: 3,
                compare_test_limit: 64,
                prune_samples: 64,
                prune_ratios: vec![0.5],
                backend_train_limit: 64,
                backend_test_limit: 64,
                ..quick
            },
        })
    }
}

/// Options of the study.
#[derive(Debug, Clone)]
pub struct Options {
    /// Size.
    pub settings: Settings,
    /// Output directory.
    pub out: PathBuf,
    /// Concurrent jobs.
    pub jobs: usize,
    /// CPU cores to share among them.
    pub cores: usize,
    /// Backend of every run.
    pub backend: String,
    /// The trainer binary.
    pub trainer: PathBuf,
    /// Deliberately break a claim (to check that failures are reported).
    pub break_claim: Option<String>,
}

/// A claim's verdict.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Measured within the threshold.
    Pass,
    /// Measured outside the threshold: a finding.
    Fail,
    /// Not evaluated (e.g. only one backend compiled, or a job failed).
    Skipped,
}

/// One claim's result.
#[derive(Debug, Clone, Serialize)]
pub struct Claim {
    /// 1–7.
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

/// Paths of the study's outputs.
struct Layout {
    out: PathBuf,
}

impl Layout {
    fn run(&self, name: &str) -> PathBuf {
        self.out.join("runs").join(name)
    }
    fn analysis(&self, name: &str) -> PathBuf {
        self.out.join("analysis").join(name)
    }
}

fn str_args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Build the job list.
fn plan(o: &Options, other_backend: Option<&str>) -> Vec<Job> {
    let st = &o.settings;
    let l = Layout { out: o.out.clone() };
    let mut jobs = Vec::new();
    let tr = o.trainer.clone();
    let base = |out: &Path, backend: &str| -> Vec<String> {
        str_args(&[
            "train",
            "--quiet",
            "--force",
            "--data",
            &st.data,
            "--backend",
            backend,
            "--out",
            &out.display().to_string(),
        ])
    };
    // A reference-CNN training of `seed` with `extra` options, at the profile's limits.
    let ref_args = |out: &Path, seed: u64, extra: &[&str]| -> Vec<String> {
        let mut a = base(out, &o.backend);
        a.extend(str_args(&[
            "--seed",
            &seed.to_string(),
            "--epochs",
            &st.epochs.to_string(),
        ]));
        a.extend(str_args(extra));
        if let Some(n) = st.train_limit {
            a.extend(str_args(&["--train-limit", &n.to_string()]));
        }
        if let Some(n) = st.test_limit {
            a.extend(str_args(&["--test-limit", &n.to_string()]));
        }
        a
    };
    let ref_cost = (st.train_limit.unwrap_or(if st.profile == Profile::Full {
        60_000
    } else {
        10_000
    }) * st.epochs) as f64
        / 700.0;
    // A training job: resumes an interrupted run with the same definition.
    let train_job = |id: &str, label: String, args: Vec<String>, out: PathBuf, cost: f64| -> Job {
        let tr = tr.clone();
        let done = out.join("summary.json");
        Job {
            id: id.into(),
            label,
            deps: vec![],
            cost,
            definition: json!({ "args": args }),
            done,
            work: Box::new(move |ctx: &JobContext| {
                if out.join("checkpoint/state.json").exists()
                    && !out.join("summary.json").exists()
                    && run_trainer(&tr, &resume_args(&out), ctx).is_ok()
                {
                    return Ok(());
                }
                run_trainer(&tr, &args, ctx)
            }),
        }
    };

    // 1–3: three seeds of the reference CNN.
    for (k, seed) in st.seeds.iter().enumerate() {
        let out = l.run(&format!("ref-s{seed}"));
        let a = ref_args(&out, *seed, &[]);
        jobs.push(train_job(
            &format!("train-s{seed}"),
            format!("train reference CNN, seed {seed} ({} of 3)", k + 1),
            a,
            out,
            ref_cost,
        ));
    }
    let s1 = st.seeds[0];
    // Determinism: the same run again, and the same run killed and resumed.
    {
        let out = l.run(&format!("ref-s{s1}-repeat"));
        let seed = if o.break_claim.as_deref() == Some("determinism") {
            s1 + 1000
        } else {
            s1
        };
        let a = ref_args(&out, seed, &[]);
        jobs.push(train_job(
            "train-repeat",
            format!("train seed {s1} again (determinism)"),
            a,
            out,
            ref_cost,
        ));
    }
    {
        let out = l.run(&format!("ref-s{s1}-killed"));
        let a = ref_args(&out, s1, &[]);
        let tr = tr.clone();
        let args = a.clone();
        let out2 = out.clone();
        jobs.push(Job {
            id: "train-killed".into(),
            label: format!("train seed {s1}, kill it after epoch 1, resume"),
            deps: vec![],
            cost: ref_cost,
            definition: json!({ "args": a, "kill-after-epoch": 1 }),
            done: out.join("killed.json"),
            work: Box::new(move |ctx: &JobContext| {
                let _ = std::fs::remove_dir_all(&out2);
                let mut child = spawn_trainer(&tr, &args, ctx)?;
                let state = out2.join("checkpoint/state.json");
                let mut killed = false;
                while child.try_wait()?.is_none() {
                    if state.exists() {
                        child.kill().context("cannot kill the trainer")?;
                        killed = true;
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let status = child.wait()?;
                if !killed {
                    check_status(status, &args, &ctx.log)?;
                }
                let was_interrupted = killed && !out2.join("summary.json").exists();
                if was_interrupted {
                    run_trainer(&tr, &resume_args(&out2), ctx)?;
                }
                write_atomic(
                    &out2.join("killed.json"),
                    json!({ "killed_after_checkpoint": was_interrupted })
                        .to_string()
                        .as_bytes(),
                )
            }),
        });
    }
    // Symmetry: constant init, and constant init with tiny noise.
    for (id, init) in [
        ("const", "constant(0.01)"),
        ("perturbed", "constant(0.01)+noise(0.0001)"),
    ] {
        let out = l.run(&format!("ref-{id}"));
        let a = ref_args(&out, s1, &["--init", init]);
        jobs.push(train_job(
            &format!("train-{id}"),
            format!("train with --init {init}"),
            a,
            out,
            ref_cost,
        ));
    }
    // Variance preservation: a deep plain ReLU CNN under He and under a too-small init.
    let plain_cost = (st.plain_train_limit * st.plain_depth * st.plain_width) as f64 / 20_000.0;
    for (id, init) in [("he", "he"), ("small", "normal(0, 0.01)")] {
        let out = l.run(&format!("plain-{id}"));
        let mut a = base(&out, &o.backend);
        a.extend(str_args(&[
            "--model",
            "plain",
            "--depth",
            &st.plain_depth.to_string(),
            "--width",
            &st.plain_width.to_string(),
            "--init",
            init,
            "--seed",
            &s1.to_string(),
            "--epochs",
            "1",
            "--train-limit",
            &st.plain_train_limit.to_string(),
            "--test-limit",
            &st.plain_test_limit.to_string(),
        ]));
        jobs.push(train_job(
            &format!("train-plain-{id}"),
            format!(
                "train {}-layer plain CNN with --init {init}",
                st.plain_depth
            ),
            a,
            out,
            plain_cost,
        ));
    }
    // Cross-backend: the same seed on two backends.
    if let Some(other) = other_backend {
        for b in [o.backend.as_str(), other] {
            let out = l.run(&format!("backend-{b}"));
            let mut a = base(&out, b);
            a.extend(str_args(&[
                "--seed",
                &s1.to_string(),
                "--epochs",
                "1",
                "--width",
                "0.5",
                "--train-limit",
                &st.backend_train_limit.to_string(),
                "--test-limit",
                &st.backend_test_limit.to_string(),
            ]));
            let cost = st.backend_train_limit as f64 / if b == "ndarray" { 40.0 } else { 1000.0 };
            jobs.push(train_job(
                &format!("train-backend-{b}"),
                format!("train on the {b} backend"),
                a,
                out,
                cost,
            ));
        }
    }
    // Analyses.
    let analysis = |id: &str,
                    label: String,
                    deps: Vec<String>,
                    args: Vec<String>,
                    done: PathBuf,
                    cost: f64|
     -> Job {
        let tr = tr.clone();
        Job {
            id: id.into(),
            label,
            deps,
            cost,
            definition: json!({ "args": args }),
            done,
            work: Box::new(move |ctx: &JobContext| run_trainer(&tr, &args, ctx)),
        }
    };
    for id in ["const", "perturbed"] {
        let run = l.run(&format!("ref-{id}"));
        let out = l.analysis(&format!("inspect-{id}"));
        jobs.push(analysis(
            &format!("inspect-{id}"),
            format!("inspect the {id}-init run"),
            vec![format!("train-{id}")],
            str_args(&[
                "inspect",
                &run.display().to_string(),
                "--json",
                "--out",
                &out.display().to_string(),
            ]),
            out.join("inspect.json"),
            1.0,
        ));
    }
    // `trainer init-stats` of the 20-layer plain CNN with `extra` options, into `out`.
    let init_stats_args = |extra: &[&str], out: &Path| -> Vec<String> {
        let mut a = str_args(&["init-stats", "--json"]);
        a.extend(str_args(extra));
        a.extend(str_args(&[
            "--data",
            &st.data,
            "--backend",
            &o.backend,
            "--depth",
            &st.init_depth.to_string(),
            "--width",
            &st.init_width.to_string(),
            "--out",
            &out.display().to_string(),
        ]));
        a
    };
    let schemes = [
        "he",
        "xavier",
        "pytorch-default;*.bias=zeros",
        "normal(0, 1)",
    ];
    for seed in 0..st.init_seeds {
        let out = l.analysis(&format!("init-stats/seed-{seed}"));
        let mut a = init_stats_args(
            &[
                "--input",
                "gaussian",
                "--batch",
                "8",
                "--seed",
                &seed.to_string(),
            ],
            &out,
        );
        for sch in schemes {
            a.extend(str_args(&["--init", sch]));
        }
        jobs.push(analysis(
            &format!("init-stats-{seed}"),
            format!("signal propagation at init, weight seed {seed}"),
            vec![],
            a,
            out.join("init-stats.json"),
            (st.init_depth * st.init_width) as f64 / 60.0,
        ));
    }
    {
        let out = l.analysis("init-stats/real-images");
        let a = init_stats_args(&[], &out);
        jobs.push(analysis(
            "init-stats-real",
            "signal propagation at init on real images (figures)".into(),
            vec![],
            a,
            out.join("init-stats.json"),
            (st.init_depth * st.init_width) as f64 / 10.0,
        ));
    }
    let s1_run = l.run(&format!("ref-s{s1}")).display().to_string();
    {
        let out = l.analysis("redundancy");
        jobs.push(analysis(
            "redundancy",
            format!("redundancy of seed {s1}'s filters"),
            vec![format!("train-s{s1}")],
            str_args(&[
                "redundancy",
                &s1_run,
                "--json",
                "--samples",
                &st.prune_samples.to_string(),
                "--out",
                &out.display().to_string(),
            ]),
            out.join("redundancy.json"),
            10.0,
        ));
    }
    {
        let out = l.analysis("prune-sweep");
        let ratios: Vec<String> = st.prune_ratios.iter().map(|r| r.to_string()).collect();
        jobs.push(analysis(
            "prune-sweep",
            "accuracy versus pruning ratio, 7 criteria".into(),
            vec![format!("train-s{s1}")],
            str_args(&[
                "prune-sweep",
                &s1_run,
                "--json",
                "--layers",
                "conv2",
                "--ratios",
                &ratios.join(","),
                "--samples",
                &st.prune_samples.to_string(),
                "--out",
                &out.display().to_string(),
            ]),
            out.join("sweep.json"),
            30.0,
        ));
    }
    for c in ["l1", "fpgm", "redundancy", "random"] {
        let out = l.run(&format!("pruned-{c}"));
        jobs.push(analysis(
            &format!("prune-{c}"),
            format!(
                "prune {}% of conv2 by {c}, fine-tune 1 epoch",
                st.claim_ratio * 100.0
            ),
            vec![format!("train-s{s1}")],
            str_args(&[
                "prune",
                &s1_run,
                "--quiet",
                "--force",
                "--criterion",
                c,
                "--ratio",
                &st.claim_ratio.to_string(),
                "--layers",
                "conv2",
                "--finetune-epochs",
                "1",
                "--samples",
                &st.prune_samples.to_string(),
                "--out",
                &out.display().to_string(),
            ]),
            out.join("prune.json"),
            ref_cost / st.epochs as f64,
        ));
    }
    {
        let out = l.analysis("compare");
        let mut a = vec!["compare".to_string()];
        for seed in st.seeds {
            a.push(l.run(&format!("ref-s{seed}")).display().to_string());
        }
        a.extend(str_args(&[
            "--json",
            "--samples",
            &st.compare_samples.to_string(),
            "--alphas",
            &st.compare_alphas.to_string(),
            "--test-limit",
            &st.compare_test_limit.to_string(),
            "--out",
            &out.display().to_string(),
        ]));
        jobs.push(analysis(
            "compare",
            "compare the three seeds".into(),
            st.seeds.iter().map(|s| format!("train-s{s}")).collect(),
            a,
            out.join("compare.json"),
            (st.compare_test_limit * st.compare_alphas * 9 + st.compare_samples * 30) as f64
                / 2000.0,
        ));
    }
    jobs
}

/// `trainer train --resume` of the run in `out`.
fn resume_args(out: &Path) -> Vec<String> {
    str_args(&["train", "--quiet", "--resume", &out.display().to_string()])
}

/// Load a JSON output if its job succeeded.
fn load(path: &Path) -> Option<Value> {
    read_json(path).ok()
}

fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

fn metrics_without_timings(run: &Path) -> Option<Vec<Value>> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).ok()?;
    text.lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).ok()?;
            let o = v.as_object_mut()?;
            for k in ["train_seconds", "seconds", "train_images_per_sec"] {
                o.remove(k);
            }
            Some(v)
        })
        .collect()
}

fn claim(
    id: u32,
    name: &str,
    pass: Option<bool>,
    measured: String,
    threshold: &str,
    details: Value,
) -> Claim {
    Claim {
        id,
        name: name.into(),
        verdict: match pass {
            Some(true) => Verdict::Pass,
            Some(false) => Verdict::Fail,
            None => Verdict::Skipped,
        },
        measured,
        threshold: threshold.into(),
        details,
    }
}

/// A claim that could not be evaluated, and why.
fn not_evaluated(id: u32, name: &str, why: impl Into<String>) -> Claim {
    claim(id, name, None, why.into(), "-", Value::Null)
}

fn median(mut v: Vec<f64>) -> f64 {
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

/// Evaluate the seven claims from the outputs.
fn evaluate(o: &Options, other_backend: Option<&str>) -> Vec<Claim> {
    let st = &o.settings;
    let l = Layout { out: o.out.clone() };
    let s1 = st.seeds[0];
    let summary = |name: &str| load(&l.run(name).join("summary.json"));
    let config = |name: &str| load(&l.run(name).join("config.json"));
    let mut claims = Vec::new();

    // 1. Determinism.
    {
        let a = summary(&format!("ref-s{s1}"));
        let b = summary(&format!("ref-s{s1}-repeat"));
        let k = summary(&format!("ref-s{s1}-killed"));
        let killed = load(&l.run(&format!("ref-s{s1}-killed")).join("killed.json"));
        let c = match (a, b, k, killed) {
            (Some(a), Some(b), Some(k), Some(killed)) => {
                let ha = a["weights_sha256"].as_str().unwrap_or_default().to_string();
                let same_hash = ha == b["weights_sha256"].as_str().unwrap_or_default();
                let same_metrics = metrics_without_timings(&l.run(&format!("ref-s{s1}")))
                    == metrics_without_timings(&l.run(&format!("ref-s{s1}-repeat")));
                let resumed = ha == k["weights_sha256"].as_str().unwrap_or_default();
                let interrupted = killed["killed_after_checkpoint"].as_bool().unwrap_or(false);
                claim(
                    1,
                    "Determinism",
                    Some(same_hash && same_metrics && resumed && interrupted),
                    format!(
                        "repeat: weights {}, metrics {}; killed after epoch 1{} and resumed: weights {}",
                        if same_hash { "identical" } else { "DIFFERENT" },
                        if same_metrics {
                            "identical"
                        } else {
                            "DIFFERENT"
                        },
                        if interrupted {
                            ""
                        } else {
                            " (NOT interrupted)"
                        },
                        if resumed { "identical" } else { "DIFFERENT" }
                    ),
                    "bit-identical weights (SHA-256) and metrics",
                    json!({ "weights_sha256": ha, "repeat_identical": same_hash, "metrics_identical": same_metrics,
                            "killed_and_resumed_identical": resumed, "was_interrupted": interrupted }),
                )
            }
            _ => not_evaluated(1, "Determinism", "a training job failed"),
        };
        claims.push(c);
    }

    let compare = load(&l.analysis("compare").join("compare.json"));
    // 2. Seeds matter, results do not.
    {
        let inits: Vec<Option<String>> = st
            .seeds
            .iter()
            .map(|s| {
                config(&format!("ref-s{s}")).and_then(|c| {
                    c["init"]["initial_weights_sha256"]
                        .as_str()
                        .map(String::from)
                })
            })
            .collect();
        let finals: Vec<Option<String>> = st
            .seeds
            .iter()
            .map(|s| {
                summary(&format!("ref-s{s}"))
                    .and_then(|c| c["weights_sha256"].as_str().map(String::from))
            })
            .collect();
        let c = match (
            &compare,
            inits.iter().all(Option::is_some) && finals.iter().all(Option::is_some),
        ) {
            (Some(cmp), true) => {
                let distinct = |v: &[Option<String>]| {
                    let set: std::collections::BTreeSet<_> = v.iter().collect();
                    set.len() == v.len()
                };
                let max_identity = cmp["pairs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|p| p["layers"].as_array().into_iter().flatten())
                    .map(|l| l["identity"]["mean"].as_f64().unwrap_or(1.0).abs())
                    .fold(0.0, f64::max);
                let std_pp = cmp["accuracy_std"].as_f64().unwrap_or(f64::NAN) * 100.0;
                let pass = distinct(&inits)
                    && distinct(&finals)
                    && max_identity < 0.3
                    && std_pp <= st.accuracy_std_max;
                claim(
                    2,
                    "Seeds matter, results do not",
                    Some(pass),
                    format!(
                        "initial weights {} across seeds, final weights {}; largest |mean identity-pairing ρ| {:.3}; accuracy {} ± {:.2} points (min {}, max {})",
                        if distinct(&inits) {
                            "all different"
                        } else {
                            "NOT all different"
                        },
                        if distinct(&finals) {
                            "all different"
                        } else {
                            "NOT all different"
                        },
                        max_identity,
                        pct(cmp["accuracy_mean"].as_f64().unwrap_or(0.0)),
                        std_pp,
                        pct(cmp["accuracy_min"].as_f64().unwrap_or(0.0)),
                        pct(cmp["accuracy_max"].as_f64().unwrap_or(0.0)),
                    ),
                    &format!(
                        "different initial and final weights; |identity ρ| < 0.3 in every layer; accuracy std ≤ {} points over 3 seeds",
                        st.accuracy_std_max
                    ),
                    json!({ "initial_hashes": inits, "final_hashes": finals, "max_abs_identity_correlation": max_identity,
                            "accuracy_std_points": std_pp, "runs": cmp["runs"] }),
                )
            }
            _ => not_evaluated(
                2,
                "Seeds matter, results do not",
                "a training or the comparison failed",
            ),
        };
        claims.push(c);
    }

    // 3. Permutation equivalence.
    {
        let c = match &compare {
            Some(cmp) => {
                let mut rows = Vec::new();
                let (mut strong_ok, mut cka_ok, mut same_fn, mut barrier_ok) =
                    (true, true, true, true);
                let mut worst_strong: f64 = 1.0;
                let mut worst_cka: f64 = 1.0;
                let mut worst_change: f64 = 0.0;
                for p in cmp["pairs"].as_array().into_iter().flatten() {
                    for lay in p["layers"].as_array().into_iter().flatten() {
                        let n = lay["filters"].as_f64().unwrap_or(1.0);
                        let frac = lay["matched"]["at_least_0_5"].as_f64().unwrap_or(0.0) / n;
                        let cka = lay["cka"]
                            .as_f64()
                            .unwrap_or(lay["cka_debiased"].as_f64().unwrap_or(0.0));
                        let name = lay["layer"].as_str().unwrap_or("").to_string();
                        if name.starts_with("conv") {
                            worst_strong = worst_strong.min(frac);
                            strong_ok &= frac >= 0.5;
                        }
                        worst_cka = worst_cka.min(cka);
                        cka_ok &= cka >= 0.8;
                        rows.push(json!({ "a": p["a"], "b": p["b"], "layer": name, "strong_partner_fraction": frac, "cka": cka }));
                    }
                    for al in ["activation_aligned", "weight_aligned"] {
                        let ch = p[al]["max_abs_logit_change"]
                            .as_f64()
                            .unwrap_or(f64::INFINITY);
                        worst_change = worst_change.max(ch);
                        same_fn &= ch <= 1e-3;
                    }
                    let naive = p["naive"]["loss_barrier"].as_f64().unwrap_or(0.0);
                    let aligned = p["weight_aligned"]["loss_barrier"]
                        .as_f64()
                        .unwrap_or(f64::INFINITY);
                    barrier_ok &= aligned < naive;
                }
                let barriers: Vec<Value> = cmp["pairs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        json!({ "a": p["a"], "b": p["b"], "naive": p["naive"]["loss_barrier"],
                                      "activation_aligned": p["activation_aligned"]["loss_barrier"],
                                      "weight_aligned": p["weight_aligned"]["loss_barrier"] })
                    })
                    .collect();
                claim(
                    3,
                    "Permutation equivalence",
                    Some(strong_ok && cka_ok && same_fn && barrier_ok),
                    format!(
                        "smallest fraction of conv filters with a matched partner at ρ ≥ 0.5: {:.0}%; smallest CKA of corresponding layers {:.3}; permuted networks change logits by ≤ {:.1e}; aligned barrier below naive in {} pairs",
                        worst_strong * 100.0,
                        worst_cka,
                        worst_change,
                        if barrier_ok { "all" } else { "NOT all" }
                    ),
                    "≥ 50% of every conv layer's filters matched at ρ ≥ 0.5; CKA ≥ 0.8 per corresponding layer; |Δ logit| ≤ 1e-3 after permuting; weight-matched loss barrier < naive, every pair",
                    json!({ "layers": rows, "barriers": barriers }),
                )
            }
            None => not_evaluated(3, "Permutation equivalence", "the comparison failed"),
        };
        claims.push(c);
    }

    // 4. Symmetry.
    {
        let ic = load(&l.analysis("inspect-const").join("inspect.json"));
        let ip = load(&l.analysis("inspect-perturbed").join("inspect.json"));
        let (sc, sr) = (summary("ref-const"), summary(&format!("ref-s{s1}")));
        let c = match (ic, ip, sc, sr) {
            (Some(ic), Some(ip), Some(sc), Some(sr)) => {
                let layers = |v: &Value| -> Vec<(String, u64, u64)> {
                    v["layers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|l| {
                            (
                                l["layer"].as_str().unwrap_or("").to_string(),
                                l["distinct_filters"].as_u64().unwrap_or(0),
                                l["filters"].as_u64().unwrap_or(0),
                            )
                        })
                        .collect()
                };
                let (lc, lp) = (layers(&ic), layers(&ip));
                let hidden = |v: &[(String, u64, u64)]| -> Vec<(String, u64, u64)> {
                    v.iter().filter(|(n, _, _)| n != "fc2").cloned().collect()
                };
                let sym = hidden(&lc).iter().all(|(_, d, _)| *d == 1);
                let broken = lp.iter().all(|(_, d, n)| d == n);
                let (ac, ar) = (
                    sc["test_accuracy"].as_f64().unwrap_or(1.0),
                    sr["test_accuracy"].as_f64().unwrap_or(0.0),
                );
                let far_below = ac <= ar - 0.20;
                let fmt = |v: &[(String, u64, u64)]| {
                    v.iter()
                        .map(|(n, d, t)| format!("{n} {d}/{t}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                claim(
                    4,
                    "Symmetry",
                    Some(sym && broken && far_below),
                    format!(
                        "constant init: distinct filters {}; accuracy {} vs {} with random init; with noise 1e-4: {}",
                        fmt(&lc),
                        pct(ac),
                        pct(ar),
                        fmt(&lp)
                    ),
                    "constant init: 1 distinct filter in every hidden layer and accuracy ≥ 20 points below random init; perturbed: every filter distinct",
                    json!({ "constant": ic["layers"], "perturbed": ip["layers"], "constant_accuracy": ac, "random_accuracy": ar }),
                )
            }
            _ => not_evaluated(4, "Symmetry", "a training or inspection failed"),
        };
        claims.push(c);
    }

    // 5. Variance preservation.
    {
        let mut per_scheme: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut ok = true;
        for seed in 0..st.init_seeds {
            match load(
                &l.analysis(&format!("init-stats/seed-{seed}"))
                    .join("init-stats.json"),
            ) {
                Some(v) => {
                    for sch in v["schemes"].as_array().into_iter().flatten() {
                        let last = sch["layers"]
                            .as_array()
                            .and_then(|l| l.last())
                            .map(|l| l["measured_ratio"].as_f64().unwrap_or(f64::NAN));
                        per_scheme
                            .entry(sch["spec"].as_str().unwrap_or("").into())
                            .or_default()
                            .push(last.unwrap_or(f64::NAN));
                    }
                }
                None => ok = false,
            }
        }
        let (ph, ps) = (summary("plain-he"), summary("plain-small"));
        let c = match (ok, ph, ps) {
            (true, Some(ph), Some(ps)) => {
                let med: BTreeMap<String, f64> = per_scheme
                    .into_iter()
                    .map(|(k, v)| (k, median(v)))
                    .collect();
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
                let (ah, asm) = (
                    ph["test_accuracy"].as_f64().unwrap_or(0.0),
                    ps["test_accuracy"].as_f64().unwrap_or(1.0),
                );
                let pass = (0.25..=4.0).contains(&he)
                    && xa < 0.01
                    && pt < 0.01
                    && n1 > 100.0
                    && ah >= asm + 0.10;
                claim(
                    5,
                    "Variance preservation",
                    Some(pass),
                    format!(
                        "pre-activation std(layer {d})/std(layer 1), median of {} weight seeds: He {he:.3}, Xavier {xa:.2e}, PyTorch default {pt:.2e}, N(0, 1) {n1:.2e}; {d}-layer plain CNN after a fixed budget: He {} vs N(0, 0.01²) {}",
                        st.init_seeds,
                        pct(ah),
                        pct(asm),
                        d = st.init_depth,
                    ),
                    "He within [1/4, 4]; Xavier and PyTorch default (zero biases) < 1/100; N(0, 1) > 100; He trains ≥ 10 points better than N(0, 0.01²)",
                    json!({ "median_ratios": med, "plain_he_accuracy": ah, "plain_small_accuracy": asm }),
                )
            }
            _ => not_evaluated(
                5,
                "Variance preservation",
                "an init-stats or plain-CNN job failed",
            ),
        };
        claims.push(c);
    }

    // 6. Redundancy and pruning.
    {
        let red = load(&l.analysis("redundancy").join("redundancy.json"));
        let sweep = load(&l.analysis("prune-sweep").join("sweep.json"));
        let pruned: BTreeMap<&str, Option<Value>> = ["l1", "fpgm", "redundancy", "random"]
            .iter()
            .map(|c| (*c, load(&l.run(&format!("pruned-{c}")).join("prune.json"))))
            .collect();
        let c = match (red, sweep, pruned.values().all(Option::is_some)) {
            (Some(red), Some(sweep), true) => {
                let dup: Vec<(String, usize, usize)> = red["layers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|l| {
                        (
                            l["layer"].as_str().unwrap_or("").to_string(),
                            l["near_duplicates"].as_array().map_or(0, Vec::len),
                            l["dead"].as_array().map_or(0, Vec::len),
                        )
                    })
                    .collect();
                let has_dups = dup.iter().any(|(_, d, _)| *d > 0);
                let base = sweep["baseline_accuracy"].as_f64().unwrap_or(0.0);
                let at = |c: &str| -> f64 {
                    sweep["points"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|p| {
                            p["criterion"] == c
                                && (p["ratio"].as_f64().unwrap_or(-1.0) - st.claim_ratio).abs()
                                    < 1e-9
                        })
                        .and_then(|p| p["accuracy"].as_f64())
                        .unwrap_or(f64::NAN)
                };
                let ft = |c: &str| {
                    pruned[c]
                        .as_ref()
                        .and_then(|v| v["finetuned"]["accuracy"].as_f64())
                        .unwrap_or(f64::NAN)
                };
                let crits = ["redundancy", "fpgm", "l1"];
                let beats_random = crits.iter().all(|c| at(c) >= at("random"));
                let within = crits.iter().all(|c| ft(c) >= base - 0.01);
                let fmt = |f: &dyn Fn(&str) -> f64| {
                    crits
                        .iter()
                        .chain(["random"].iter())
                        .map(|c| format!("{c} {}", pct(f(c))))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                claim(
                    6,
                    "Redundancy",
                    Some(has_dups && beats_random && within),
                    format!(
                        "near-duplicate pairs (|ρ| ≥ 0.9) per layer: {}; pruning {:.0}% of conv2 (unpruned {}): zeroed {}; after 1 epoch of fine-tuning {}",
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
                        "at least one near-duplicate pair; at {:.0}% of conv2, zeroing by redundancy, FPGM and L1 each keeps at least random's accuracy, and after 1 epoch of fine-tuning each is within 1 point of the unpruned model",
                        st.claim_ratio * 100.0
                    ),
                    json!({ "near_duplicates": dup, "baseline": base, "zeroed": crits.iter().chain(["random"].iter()).map(|c| (c.to_string(), at(c))).collect::<BTreeMap<_,_>>(),
                            "finetuned": crits.iter().chain(["random"].iter()).map(|c| (c.to_string(), ft(c))).collect::<BTreeMap<_,_>>() }),
                )
            }
            _ => not_evaluated(6, "Redundancy", "a redundancy or pruning job failed"),
        };
        claims.push(c);
    }

    // 7. Cross-backend.
    {
        let c = match other_backend {
            None => not_evaluated(
                7,
                "Cross-backend",
                format!("only the {} backend is compiled in", o.backend),
            ),
            Some(other) => {
                let (ca, cb) = (
                    config(&format!("backend-{}", o.backend)),
                    config(&format!("backend-{other}")),
                );
                let (sa, sb) = (
                    summary(&format!("backend-{}", o.backend)),
                    summary(&format!("backend-{other}")),
                );
                match (ca, cb, sa, sb) {
                    (Some(ca), Some(cb), Some(sa), Some(sb)) => {
                        let same_init = ca["init"]["initial_weights_sha256"]
                            == cb["init"]["initial_weights_sha256"];
                        let (aa, ab) = (
                            sa["test_accuracy"].as_f64().unwrap_or(0.0),
                            sb["test_accuracy"].as_f64().unwrap_or(1.0),
                        );
                        let same_final = sa["weights_sha256"] == sb["weights_sha256"];
                        claim(
                            7,
                            "Cross-backend",
                            Some(same_init && (aa - ab).abs() <= 0.02),
                            format!(
                                "{} vs {other}: initial weights {}; test accuracy {} vs {} (final weights {})",
                                o.backend,
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
                            ),
                            "identical initial weights; final accuracy within 2 points",
                            json!({ "initial_identical": same_init, "accuracy": { o.backend.clone(): aa, other: ab }, "final_identical": same_final }),
                        )
                    }
                    _ => not_evaluated(7, "Cross-backend", "a backend run failed"),
                }
            }
        };
        claims.push(c);
    }
    claims
}

/// `YYYYMMDD-HHMMSS` (UTC) of the current time.
pub fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "memory_gib": (mem * 10.0).round() / 10.0,
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    })
}

/// The study's result.
#[derive(Debug, Clone, Serialize)]
pub struct StudySummary {
    /// Profile.
    pub profile: Profile,
    /// Settings.
    pub settings: Settings,
    /// When it started (UTC).
    pub started: String,
    /// Wall time.
    pub wall_seconds: f64,
    /// Machine.
    pub machine: Value,
    /// `trainer info`.
    pub trainer: Value,
    /// Backend of the runs.
    pub backend: String,
    /// Concurrent jobs.
    pub jobs: usize,
    /// Every claim.
    pub claims: Vec<Claim>,
    /// How every job ended.
    pub job_outcomes: BTreeMap<String, String>,
    /// Whether every claim passed.
    pub all_passed: bool,
}

/// Run the study.
pub fn run(o: &Options) -> Result<StudySummary> {
    let started = Instant::now();
    let started_at = timestamp();
    std::fs::create_dir_all(&o.out)
        .with_context(|| format!("cannot create {}", o.out.display()))?;
    let info_out = std::process::Command::new(&o.trainer)
        .arg("info")
        .output()
        .with_context(|| format!("cannot run {}", o.trainer.display()))?;
    let info: Value =
        serde_json::from_slice(&info_out.stdout).context("trainer info printed invalid JSON")?;
    let compiled: Vec<String> = info["backends"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b.as_str().map(String::from))
        .collect();
    if !compiled.contains(&o.backend) {
        bail!(
            "the trainer was built without the {0} backend (it has {1}); pass --backend one of those or build with --features {0}",
            o.backend,
            compiled.join(", ")
        );
    }
    let other = compiled
        .iter()
        .find(|b| **b != o.backend && b.as_str() != "wgpu")
        .or_else(|| compiled.iter().find(|b| **b != o.backend))
        .cloned();
    eprintln!(
        "reproducibility study, {:?} profile: {} on {} ({} jobs at a time); writing {}",
        o.settings.profile,
        o.settings.data,
        o.backend,
        o.jobs,
        o.out.display()
    );
    let jobs = plan(o, other.as_deref());
    let outcomes = run_jobs(jobs, o.jobs, o.cores, &o.out.join("jobs"))?;
    let claims = evaluate(o, other.as_deref());
    let all_passed = claims.iter().all(|c| c.verdict != Verdict::Fail)
        && claims.iter().any(|c| c.verdict == Verdict::Pass)
        && outcomes
            .values()
            .all(|x| matches!(x, Outcome::Ran(_) | Outcome::Reused));
    let summary = StudySummary {
        profile: o.settings.profile,
        settings: o.settings.clone(),
        started: started_at,
        wall_seconds: started.elapsed().as_secs_f64(),
        machine: machine(),
        trainer: info,
        backend: o.backend.clone(),
        jobs: o.jobs,
        job_outcomes: outcomes
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
        claims,
        all_passed,
    };
    write_atomic(
        &o.out.join("summary.json"),
        (serde_json::to_string_pretty(&summary)? + "\n").as_bytes(),
    )?;
    let report = crate::repro_report::render(&summary, &o.out);
    write_atomic(&o.out.join("REPORT.md"), report.as_bytes())?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_medians() {
        let t = timestamp();
        assert_eq!(t.len(), 15);
        assert!(t.starts_with("20"));
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
