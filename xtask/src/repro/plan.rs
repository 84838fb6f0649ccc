//! The study's job plan: every training and analysis behind the claims, as trainer command
//! lines with their dependencies and relative costs.

use std::path::Path;

use crate::jobs::{Job, JobSpec, Needs};

use super::Options;
use super::layout::{self, Layout, files};
use super::settings::{Profile, Settings, Training};

/// The criteria whose pruning claim 6 judges, and the random baseline they must beat.
pub const CLAIM_CRITERIA: [&str; 3] = ["redundancy", "fpgm", "l1"];
/// The baseline of claim 6.
pub const RANDOM: &str = "random";
/// The criteria that rank filters by activation statistics (the others by weights alone).
const DATA_CRITERIA: [&str; 3] = ["redundancy", "mean-activation", "apoz"];
/// The symmetry runs: constant initialization, and the same with tiny noise.
pub const SYMMETRY: [(&str, &str); 2] = [
    ("const", "constant(0.01)"),
    ("perturbed", "constant(0.01)+noise(0.0001)"),
];
/// The deep plain CNN runs: He, and a too-small normal initialization.
pub const PLAIN: [(&str, &str); 2] = [("he", "he"), ("small", "normal(0, 0.01)")];
/// The schemes of the variance claim, on N(0, 1) inputs.
pub const VARIANCE_SCHEMES: [&str; 4] = [
    "he",
    "xavier",
    "pytorch-default;*.bias=zeros",
    "normal(0, 1)",
];

/// The initialization schemes of the initialization × redundancy experiment: a short name and
/// the `--init` spec. Orthogonal has He's gain (√2), so it differs from He only in starting with
/// orthonormal filters; LSUV starts orthogonal and rescales each layer to unit output variance.
pub const SCHEMES: [(&str, &str); 5] = [
    ("he", "he"),
    ("xavier", "xavier"),
    ("orthogonal", "orthogonal(1.4142135623730951)"),
    ("pytorch-default", "pytorch-default"),
    ("lsuv", "lsuv"),
];
/// The layer whose redundancy the initialization, width and symmetry-breaking experiments
/// measure and prune.
pub const FOCUS_LAYER: &str = "conv2";
/// The symmetry-breaking baseline: the reference CNN's own random initialization.
pub const RANDOM_INIT: &str = "random";

/// The symmetry-breaking run of noise scale `sigma` (its kind and `--init`).
pub fn noise_kind(sigma: f64) -> (String, String) {
    (
        format!("noise-{sigma:e}"),
        format!("constant(0.01)+noise({sigma:e})"),
    )
}

/// Optimizer steps of a training of `images` images (batch 64) for `epochs` epochs.
pub fn total_steps(images: usize, epochs: usize) -> usize {
    images.div_ceil(64) * epochs
}

/// Steps at which a symmetry-breaking run keeps its weights: 0, then doubling, and the last.
pub fn snapshot_steps(total: usize) -> Vec<usize> {
    let mut steps = vec![0];
    let mut s = 1;
    while s < total {
        steps.push(s);
        s *= 2;
    }
    steps.push(total);
    steps.dedup();
    steps
}

/// Multiply-adds per image of the reference CNN at `width`, relative to width 1 (conv1 grows
/// linearly, conv2 and fc1 quadratically): the cost model of its trainings and analyses.
pub fn width_cost(width: f64) -> f64 {
    let (conv1, conv2, fc1) = (225_792.0, 3_612_672.0, 401_408.0);
    (conv1 * width + (conv2 + fc1) * width * width) / (conv1 + conv2 + fc1)
}

/// Where the width experiment's run of `width` and `seed` is, and the job that writes it: the
/// reference run itself at width 1 when the width experiment trains exactly like the reference
/// runs (full data), else a run of its own.
pub fn width_run(st: &Settings, width: f64, seed: u64) -> (String, std::path::PathBuf) {
    if width_is_reference(st, width) {
        (format!("train-s{seed}"), Layout::reference(seed))
    } else {
        (
            format!("train-{}-s{seed}", Layout::width_tag(width)),
            Layout::width_run(width, seed),
        )
    }
}

/// The comparison of one width's seeds, and its job (the reference comparison at width 1 when
/// the width experiment repeats it exactly).
pub fn width_compare(st: &Settings, width: f64) -> (String, std::path::PathBuf) {
    if width_is_reference(st, width)
        && st.width_compare == [st.compare_samples, st.compare_alphas, st.compare_test_limit]
    {
        ("compare".into(), Layout::compare())
    } else {
        (
            format!("compare-{}", Layout::width_tag(width)),
            Layout::width_compare(width),
        )
    }
}

fn width_is_reference(st: &Settings, width: f64) -> bool {
    width == 1.0
        && st.width_training
            == Training {
                epochs: st.epochs,
                train_limit: st.train_limit,
                test_limit: st.test_limit,
            }
}

/// A trainer command line under construction.
#[derive(Debug, Clone)]
struct Args(Vec<String>);

impl Args {
    fn new(command: &str) -> Self {
        Args(vec![command.to_string()])
    }
    fn flag(mut self, flag: &str) -> Self {
        self.0.push(format!("--{flag}"));
        self
    }
    fn opt(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        self.0.push(format!("--{name}"));
        self.0.push(value.to_string());
        self
    }
    fn opt_if(self, name: &str, value: Option<impl std::fmt::Display>) -> Self {
        match value {
            Some(v) => self.opt(name, v),
            None => self,
        }
    }
    fn arg(mut self, value: impl std::fmt::Display) -> Self {
        self.0.push(value.to_string());
        self
    }
}

fn show(p: &Path) -> String {
    p.display().to_string()
}

/// Builds the jobs of one study: command lines with the study's settings and paths.
struct Planner<'a> {
    o: &'a Options,
    l: Layout,
}

impl Planner<'_> {
    fn settings(&self) -> &Settings {
        &self.o.settings
    }

    /// `trainer train` into `out` on `backend`, quietly, overwriting.
    fn train(&self, out: &Path, backend: &str) -> Args {
        Args::new("train")
            .flag("quiet")
            .flag("force")
            .opt("data", &self.settings().data)
            .opt("backend", backend)
            .opt("out", show(&self.l.abs(out)))
    }

    /// A reference-CNN training of `seed` at the profile's epochs and limits.
    fn reference(&self, out: &Path, seed: u64) -> Args {
        let st = self.settings();
        self.train(out, &self.o.backend)
            .opt("seed", seed)
            .opt("epochs", st.epochs)
            .opt_if("train-limit", st.train_limit)
            .opt_if("test-limit", st.test_limit)
    }

    /// What every job needs on a cluster node.
    fn needs(&self) -> Needs {
        Needs::default()
    }

    /// Training images behind a `--train-limit` of `limit`.
    fn train_images(&self, limit: Option<usize>) -> usize {
        let all = if self.settings().profile == Profile::Full {
            60_000
        } else {
            10_000
        };
        limit.map_or(all, |l| l.min(all))
    }

    /// Test images behind a `--test-limit` of `limit`.
    fn test_images(&self, limit: Option<usize>) -> usize {
        let all = if self.settings().profile == Profile::Full {
            10_000
        } else {
            2_000
        };
        limit.map_or(all, |l| l.min(all))
    }

    /// Cost (seconds of one core, measured on the reference machine) of training the reference
    /// CNN at `width` as `t` says, with an evaluation after every epoch.
    fn training_cost(&self, t: &Training, width: f64) -> f64 {
        let train = (self.train_images(t.train_limit) * t.epochs) as f64 / TRAIN_IMAGES_PER_SEC;
        let test = (self.test_images(t.test_limit) * t.epochs) as f64 / INFER_IMAGES_PER_SEC;
        (train + test) * width_cost(width) + STARTUP_SECONDS
    }

    /// Cost of one reference training.
    fn reference_cost(&self) -> f64 {
        self.training_cost(&self.reference_training(), 1.0)
    }

    /// The reference runs' training.
    fn reference_training(&self) -> Training {
        let st = self.settings();
        Training {
            epochs: st.epochs,
            train_limit: st.train_limit,
            test_limit: st.test_limit,
        }
    }

    /// A training of the reference CNN as `t` says, with `seed`, into `out`.
    fn small_training(&self, out: &Path, seed: u64, t: &Training) -> Args {
        self.train(out, &self.o.backend)
            .opt("seed", seed)
            .opt("epochs", t.epochs)
            .opt_if("train-limit", t.train_limit)
            .opt_if("test-limit", t.test_limit)
    }

    /// A training job writing the run `out`.
    fn train_job(&self, id: String, label: String, args: Args, out: &Path, cost: f64) -> Job {
        Job {
            id,
            label,
            deps: vec![],
            cost,
            needs: self.needs(),
            done: self.l.abs(out).join(layout::SUMMARY),
            spec: JobSpec::Train {
                args: args.0,
                out: self.l.abs(out),
            },
        }
    }

    /// An analysis job, done when `done` exists.
    fn analysis(
        &self,
        id: String,
        label: String,
        deps: Vec<String>,
        args: Args,
        done: &Path,
        cost: f64,
    ) -> Job {
        Job {
            id,
            label,
            deps,
            cost,
            needs: self.needs(),
            done: self.l.abs(done),
            spec: JobSpec::Trainer { args: args.0 },
        }
    }

    /// The three seeds of the reference CNN, the repeat and the killed-and-resumed run.
    fn references(&self) -> Vec<Job> {
        let st = self.settings();
        let mut jobs: Vec<Job> = st
            .seeds
            .iter()
            .enumerate()
            .map(|(k, &seed)| {
                let out = Layout::reference(seed);
                self.train_job(
                    format!("train-s{seed}"),
                    format!(
                        "train reference CNN, seed {seed} ({} of {})",
                        k + 1,
                        st.seeds.len()
                    ),
                    self.reference(&out, seed),
                    &out,
                    self.reference_cost(),
                )
            })
            .collect();
        let s1 = st.seeds[0];
        let repeat_seed = if self.o.break_claim.as_deref() == Some("determinism") {
            s1 + 1000
        } else {
            s1
        };
        let out = Layout::repeat(s1);
        jobs.push(self.train_job(
            "train-repeat".into(),
            format!("train seed {s1} again (determinism)"),
            self.reference(&out, repeat_seed),
            &out,
            self.reference_cost(),
        ));
        let out = Layout::killed(s1);
        jobs.push(Job {
            id: "train-killed".into(),
            label: format!("train seed {s1}, kill it after epoch 1, resume"),
            deps: vec![],
            cost: self.reference_cost(),
            needs: self.needs(),
            done: self.l.abs(&out).join(layout::KILLED),
            spec: JobSpec::TrainKilled {
                args: self.reference(&out, s1).0,
                out: self.l.abs(&out),
            },
        });
        jobs
    }

    /// Symmetry: constant init and constant init with tiny noise, each inspected.
    fn symmetry(&self) -> Vec<Job> {
        let s1 = self.settings().seeds[0];
        let mut jobs = Vec::new();
        for (kind, init) in SYMMETRY {
            let run = Layout::symmetry(kind);
            jobs.push(self.train_job(
                format!("train-{kind}"),
                format!("train with --init {init}"),
                self.reference(&run, s1).opt("init", init),
                &run,
                self.reference_cost(),
            ));
            let out = Layout::inspect(kind);
            jobs.push(
                self.analysis(
                    format!("inspect-{kind}"),
                    format!("inspect the {kind}-init run"),
                    vec![format!("train-{kind}")],
                    Args::new("inspect")
                        .arg(show(&self.l.abs(&run)))
                        .flag("json")
                        .opt("out", show(&self.l.abs(&out))),
                    &out.join(files::INSPECT),
                    1.0,
                ),
            );
        }
        jobs
    }

    /// Variance preservation: the deep plain CNN trained under He and a too-small init, and its
    /// signal propagation at init.
    fn variance(&self) -> Vec<Job> {
        let st = self.settings();
        let mut jobs = Vec::new();
        let plain_cost = (st.plain_train_limit * st.plain_depth * st.plain_width) as f64 / 20_000.0;
        for (kind, init) in PLAIN {
            let out = Layout::plain(kind);
            let args = self
                .train(&out, &self.o.backend)
                .opt("model", "plain")
                .opt("depth", st.plain_depth)
                .opt("width", st.plain_width)
                .opt("init", init)
                .opt("seed", st.seeds[0])
                .opt("epochs", 1)
                .opt("train-limit", st.plain_train_limit)
                .opt("test-limit", st.plain_test_limit);
            jobs.push(self.train_job(
                format!("train-plain-{kind}"),
                format!(
                    "train {}-layer plain CNN with --init {init}",
                    st.plain_depth
                ),
                args,
                &out,
                plain_cost,
            ));
        }
        // `trainer init-stats` of the deep plain CNN into `out`.
        let init_stats = |out: &Path| {
            Args::new("init-stats")
                .flag("json")
                .opt("data", &st.data)
                .opt("backend", &self.o.backend)
                .opt("depth", st.init_depth)
                .opt("width", st.init_width)
                .opt("out", show(&self.l.abs(out)))
        };
        for seed in 0..st.init_seeds {
            let out = Layout::init_stats(seed);
            let mut args = init_stats(&out)
                .opt("input", "gaussian")
                .opt("batch", 8)
                .opt("seed", seed);
            for scheme in VARIANCE_SCHEMES {
                args = args.opt("init", scheme);
            }
            jobs.push(self.analysis(
                format!("init-stats-{seed}"),
                format!("signal propagation at init, weight seed {seed}"),
                vec![],
                args,
                &out.join(files::INIT_STATS),
                (st.init_depth * st.init_width) as f64 / 60.0,
            ));
        }
        let out = Layout::init_stats_real();
        jobs.push(self.analysis(
            "init-stats-real".into(),
            "signal propagation at init on real images (figures)".into(),
            vec![],
            init_stats(&out),
            &out.join(files::INIT_STATS),
            (st.init_depth * st.init_width) as f64 / 10.0,
        ));
        jobs
    }

    /// Cross-backend: the same seed on the study's backend and on each of `others`.
    fn backends(&self, others: &[&str]) -> Vec<Job> {
        let st = self.settings();
        std::iter::once(self.o.backend.as_str())
            .chain(others.iter().copied())
            .map(|b| {
                let out = Layout::backend(b);
                let args = self
                    .train(&out, b)
                    .opt("seed", st.seeds[0])
                    .opt("epochs", 1)
                    .opt("width", 0.5)
                    .opt("train-limit", st.backend_train_limit)
                    .opt("test-limit", st.backend_test_limit);
                // Images per second, roughly: ndarray's training and a GPU emulated on the CPU
                // are slow.
                let rate = match b {
                    "ndarray" => 40.0,
                    "wgpu" => 60.0,
                    _ => 1000.0,
                };
                let cost = st.backend_train_limit as f64 / rate;
                self.train_job(
                    format!("train-backend-{b}"),
                    format!("train on the {b} backend"),
                    args,
                    &out,
                    cost,
                )
            })
            .collect()
    }

    /// Redundancy and pruning of the first seed's run.
    fn pruning(&self) -> Vec<Job> {
        let st = self.settings();
        let s1 = st.seeds[0];
        let s1_run = show(&self.l.abs(Layout::reference(s1)));
        let s1_job = format!("train-s{s1}");
        let mut jobs = Vec::new();
        let out = Layout::redundancy();
        jobs.push(
            self.analysis(
                "redundancy".into(),
                format!("redundancy of seed {s1}'s filters"),
                vec![s1_job.clone()],
                Args::new("redundancy")
                    .arg(&s1_run)
                    .flag("json")
                    .opt("samples", st.prune_samples)
                    .opt("out", show(&self.l.abs(&out))),
                &out.join(files::REDUNDANCY),
                10.0,
            ),
        );
        let out = Layout::sweep();
        let ratios: Vec<String> = st.prune_ratios.iter().map(|r| r.to_string()).collect();
        jobs.push(
            self.analysis(
                "prune-sweep".into(),
                "accuracy versus pruning ratio, 7 criteria".into(),
                vec![s1_job.clone()],
                Args::new("prune-sweep")
                    .arg(&s1_run)
                    .flag("json")
                    .opt("layers", "conv2")
                    .opt("ratios", ratios.join(","))
                    .opt("samples", st.prune_samples)
                    .opt("out", show(&self.l.abs(&out))),
                &out.join(files::SWEEP),
                30.0,
            ),
        );
        for c in CLAIM_CRITERIA.into_iter().chain([RANDOM]) {
            let out = Layout::pruned(c);
            let samples = DATA_CRITERIA.contains(&c).then_some(st.prune_samples);
            jobs.push(
                self.analysis(
                    format!("prune-{c}"),
                    format!(
                        "prune {}% of conv2 by {c}, fine-tune 1 epoch",
                        st.claim_ratio * 100.0
                    ),
                    vec![s1_job.clone()],
                    Args::new("prune")
                        .arg(&s1_run)
                        .flag("quiet")
                        .flag("force")
                        .opt("criterion", c)
                        .opt("ratio", st.claim_ratio)
                        .opt("layers", "conv2")
                        .opt("finetune-epochs", 1)
                        .opt_if("samples", samples)
                        .opt("out", show(&self.l.abs(&out))),
                    &out.join(layout::PRUNE),
                    self.reference_cost() / st.epochs as f64,
                ),
            );
        }
        jobs
    }

    /// `trainer compare` of `runs` (with the jobs that train them) into `out`.
    #[allow(clippy::too_many_arguments)]
    fn compare_job(
        &self,
        id: String,
        label: String,
        runs: Vec<(String, std::path::PathBuf)>,
        [samples, alphas, test_limit]: [usize; 3],
        width: f64,
        out: &Path,
    ) -> Job {
        let mut args = Args::new("compare");
        for (_, run) in &runs {
            args = args.arg(show(&self.l.abs(run)));
        }
        let n = runs.len();
        let pairs = (n * (n - 1) / 2) as f64;
        let test = self.test_images(Some(test_limit));
        // Per pair: 3 interpolation lines of `alphas` evaluations, feature maps of both runs.
        let cost = pairs
            * width_cost(width)
            * ((test * alphas * 3) as f64 / INFER_IMAGES_PER_SEC + samples as f64 / 250.0)
            + STARTUP_SECONDS;
        self.analysis(
            id,
            label,
            runs.into_iter().map(|(job, _)| job).collect(),
            args.flag("json")
                .opt("samples", samples)
                .opt("alphas", alphas)
                .opt("test-limit", test_limit)
                .opt("out", show(&self.l.abs(out))),
            &out.join(files::COMPARE),
            cost,
        )
    }

    /// The comparison of the seeds.
    fn comparison(&self) -> Job {
        let st = self.settings();
        self.compare_job(
            "compare".into(),
            format!("compare the {} seeds", st.seeds.len()),
            st.seeds
                .iter()
                .map(|&s| (format!("train-s{s}"), Layout::reference(s)))
                .collect(),
            [st.compare_samples, st.compare_alphas, st.compare_test_limit],
            1.0,
            &Layout::compare(),
        )
    }

    /// Width: every seed at every width, their comparison, and the redundancy of each run
    /// (conv2 zeroed by the redundancy criterion at several ratios, each fine-tuned an epoch).
    fn widths(&self) -> Vec<Job> {
        let st = self.settings();
        let mut jobs = Vec::new();
        let t = &st.width_training;
        for &w in &st.widths {
            let runs: Vec<(String, std::path::PathBuf)> =
                st.seeds.iter().map(|&s| width_run(st, w, s)).collect();
            for (&seed, (id, out)) in st.seeds.iter().zip(&runs) {
                if !id.starts_with("train-s") {
                    jobs.push(self.train_job(
                        id.clone(),
                        format!("train the reference CNN at width ×{w}, seed {seed}"),
                        self.small_training(out, seed, t).opt("width", w),
                        out,
                        self.training_cost(t, w),
                    ));
                }
                let sweep = Layout::width_sweep(w, seed);
                let ratios: Vec<String> = st
                    .width_prune_ratios
                    .iter()
                    .map(|r| r.to_string())
                    .collect();
                let images = self.train_images(t.train_limit) as f64;
                let tests = self.test_images(t.test_limit) as f64;
                let per_point = (images / TRAIN_IMAGES_PER_SEC
                    + 2.0 * tests / INFER_IMAGES_PER_SEC)
                    * width_cost(w);
                jobs.push(
                    self.analysis(
                        format!("prune-{}-s{seed}", Layout::width_tag(w)),
                        format!(
                            "prune conv2 of width ×{w}, seed {seed}, fine-tune each ratio 1 epoch"
                        ),
                        vec![id.clone()],
                        Args::new("prune-sweep")
                            .arg(show(&self.l.abs(out)))
                            .flag("json")
                            .opt("criteria", "redundancy")
                            .opt("layers", FOCUS_LAYER)
                            .opt("ratios", ratios.join(","))
                            .opt("finetune-epochs", 1)
                            .opt("samples", st.prune_samples)
                            .opt("out", show(&self.l.abs(&sweep))),
                        &sweep.join(files::SWEEP),
                        per_point * st.width_prune_ratios.len() as f64 + STARTUP_SECONDS,
                    ),
                );
            }
            let (id, out) = width_compare(st, w);
            if id != "compare" {
                jobs.push(self.compare_job(
                    id,
                    format!("compare the seeds at width ×{w}"),
                    runs,
                    st.width_compare,
                    w,
                    &out,
                ));
            }
        }
        jobs
    }

    /// Initialization × redundancy: every scheme and seed trained (keeping the initial
    /// weights), the redundancy at initialization and after training, and conv2 zeroed by the
    /// redundancy criterion.
    fn schemes(&self) -> Vec<Job> {
        let st = self.settings();
        let t = &st.scheme_training;
        let mut jobs = Vec::new();
        for (name, init) in SCHEMES {
            for &seed in &st.seeds {
                let run = Layout::scheme_run(name, seed);
                let train = format!("train-init-{name}-s{seed}");
                jobs.push(
                    self.train_job(
                        train.clone(),
                        format!("train with --init {init}, seed {seed}"),
                        self.small_training(&run, seed, t)
                            .opt("init", init)
                            .opt("snapshot-steps", 0),
                        &run,
                        self.training_cost(t, 1.0),
                    ),
                );
                for at_init in [true, false] {
                    let out = Layout::scheme_redundancy(name, seed, at_init);
                    let mut args = Args::new("redundancy")
                        .arg(show(&self.l.abs(&run)))
                        .flag("json")
                        .opt("samples", st.prune_samples)
                        .opt("out", show(&self.l.abs(&out)));
                    if at_init {
                        args = args.opt("snapshot", 0);
                    }
                    let when = if at_init { "init" } else { "trained" };
                    jobs.push(self.analysis(
                        format!("redundancy-init-{name}-s{seed}-{when}"),
                        format!("redundancy under {name}, seed {seed}, {when}"),
                        vec![train.clone()],
                        args,
                        &out.join(files::REDUNDANCY),
                        st.prune_samples as f64 / 500.0 + STARTUP_SECONDS,
                    ));
                }
                let out = Layout::scheme_sweep(name, seed);
                let ratios: Vec<String> = st
                    .scheme_prune_ratios
                    .iter()
                    .map(|r| r.to_string())
                    .collect();
                jobs.push(
                    self.analysis(
                        format!("prune-init-{name}-s{seed}"),
                        format!("prune conv2 of the {name} run, seed {seed}"),
                        vec![train],
                        Args::new("prune-sweep")
                            .arg(show(&self.l.abs(&run)))
                            .flag("json")
                            .opt("criteria", "redundancy")
                            .opt("layers", FOCUS_LAYER)
                            .opt("ratios", ratios.join(","))
                            .opt("samples", st.prune_samples)
                            .opt("out", show(&self.l.abs(&out))),
                        &out.join(files::SWEEP),
                        (st.prune_samples as f64 / 500.0)
                            + (self.test_images(t.test_limit) * (1 + ratios.len())) as f64
                                / INFER_IMAGES_PER_SEC
                            + STARTUP_SECONDS,
                    ),
                );
            }
        }
        jobs
    }

    /// Symmetry breaking: `constant(0.01)+noise(σ)` for every σ and the random initialization,
    /// every seed, with snapshots along the training, inspected.
    fn breaking(&self) -> Vec<Job> {
        let st = self.settings();
        let t = &st.breaking_training;
        let steps = snapshot_steps(total_steps(self.train_images(t.train_limit), t.epochs));
        let steps: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
        let kinds = st
            .noise_scales
            .iter()
            .map(|&sigma| {
                let (kind, init) = noise_kind(sigma);
                (kind, Some(init))
            })
            .chain([(RANDOM_INIT.to_string(), None)]);
        let mut jobs = Vec::new();
        for (kind, init) in kinds {
            for &seed in &st.seeds {
                let run = Layout::breaking_run(&kind, seed);
                let train = format!("train-breaking-{kind}-s{seed}");
                let mut args = self
                    .small_training(&run, seed, t)
                    .opt("snapshot-steps", steps.join(","));
                if let Some(init) = &init {
                    args = args.opt("init", init);
                }
                jobs.push(self.train_job(
                    train.clone(),
                    format!(
                        "train with --init {}, seed {seed}, keeping {} snapshots",
                        init.as_deref().unwrap_or("burn-default"),
                        steps.len()
                    ),
                    args,
                    &run,
                    self.training_cost(t, 1.0),
                ));
                let out = Layout::breaking_inspect(&kind, seed);
                jobs.push(
                    self.analysis(
                        format!("inspect-breaking-{kind}-s{seed}"),
                        format!("inspect the {kind} run's snapshots, seed {seed}"),
                        vec![train],
                        Args::new("inspect")
                            .arg(show(&self.l.abs(&run)))
                            .flag("json")
                            .opt("out", show(&self.l.abs(&out))),
                        &out.join(files::INSPECT),
                        0.3 * steps.len() as f64 + STARTUP_SECONDS,
                    ),
                );
            }
        }
        jobs
    }
}

/// Training throughput of the reference CNN on one core (images/s), measured on the 2-core
/// reference machine with the study's settings: the cost model behind the ETA and the budget.
pub const TRAIN_IMAGES_PER_SEC: f64 = 700.0;
/// Inference throughput on one core (images/s), same machine.
pub const INFER_IMAGES_PER_SEC: f64 = 1500.0;
/// Start-up of a trainer process (loading data, building the model), seconds.
pub const STARTUP_SECONDS: f64 = 1.0;

/// What a study will cost: its jobs and the core-seconds they are estimated to take.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Budget {
    /// Jobs planned.
    pub jobs: usize,
    /// Estimated core-hours.
    pub core_hours: f64,
}

/// The budget of `jobs`.
pub fn budget(jobs: &[Job]) -> Budget {
    Budget {
        jobs: jobs.len(),
        core_hours: jobs.iter().map(|j| j.cost).sum::<f64>() / 3600.0,
    }
}

/// Build the job list; `other_backends` are compared with the study's backend (claim 7).
pub fn plan(o: &Options, other_backends: &[&str]) -> Vec<Job> {
    let p = Planner {
        o,
        l: Layout { out: o.out.clone() },
    };
    let mut jobs = p.references();
    jobs.extend(p.symmetry());
    jobs.extend(p.variance());
    if !other_backends.is_empty() {
        jobs.extend(p.backends(other_backends));
    }
    jobs.extend(p.pruning());
    jobs.push(p.comparison());
    jobs.extend(p.widths());
    jobs.extend(p.schemes());
    jobs.extend(p.breaking());
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repro::{Options, Profile, Settings};

    fn options(profile: Profile) -> Options {
        Options {
            settings: Settings::new(profile, Some("/d".into())).unwrap(),
            out: "/tmp/out".into(),
            executor: crate::jobs::Executor::Local {
                parallel: 2,
                cores: 2,
            },
            backend: "flex".into(),
            trainer: "trainer".into(),
            break_claim: None,
        }
    }

    #[test]
    fn quick_fits_ten_minutes_on_two_cores() {
        let o = options(Profile::Quick);
        let jobs = plan(&o, &["ndarray"]);
        let b = budget(&jobs);
        let minutes = b.core_hours * 60.0 / 2.0;
        let mut by_kind = std::collections::BTreeMap::<&str, f64>::new();
        for j in &jobs {
            *by_kind
                .entry(
                    j.id.trim_end_matches(char::is_numeric)
                        .trim_end_matches("-s"),
                )
                .or_default() += j.cost / 120.0;
        }
        assert!(
            minutes < 10.0,
            "quick: {} jobs, {minutes:.1} minutes on 2 cores: {by_kind:.1?}",
            b.jobs
        );
        // Every job has a positive cost, and the full profile costs more.
        assert!(jobs.iter().all(|j| j.cost > 0.0));
        let full = budget(&plan(&options(Profile::Full), &["ndarray"]));
        assert!(full.core_hours > b.core_hours);
    }
}
