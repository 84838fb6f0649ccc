//! The study's job plan: every training and analysis behind the claims, as trainer command
//! lines with their dependencies and relative costs.

use std::path::Path;

use crate::jobs::{Job, JobSpec, Needs};

use super::Options;
use super::layout::{self, Layout, files};
use super::settings::{FineTune, Profile, Settings, Training};

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
    width == 1.0 && st.width_training == st.reference_training()
}

/// The noise scale of the symmetry claim's perturbed run (`SYMMETRY`'s second init).
pub const PERTURBED_SIGMA: f64 = 1e-4;

/// Whether the symmetry-breaking runs train exactly like the reference runs: then the random
/// initialization's runs are the reference runs, and σ = [`PERTURBED_SIGMA`]'s run of the first
/// seed is the symmetry claim's perturbed run (both keep the snapshots the experiment needs).
fn breaking_is_reference(st: &Settings) -> bool {
    st.breaking_training == st.reference_training()
}

/// Where the symmetry-breaking run of `kind` and `seed` is, and the job that writes it: a
/// reference or symmetry run when that run is the same training, else a run of its own.
pub fn breaking_run(st: &Settings, kind: &str, seed: u64) -> (String, std::path::PathBuf) {
    if breaking_is_reference(st) {
        if kind == RANDOM_INIT {
            return (format!("train-s{seed}"), Layout::reference(seed));
        }
        if kind == noise_kind(PERTURBED_SIGMA).0 && seed == st.first_seed() {
            return ("train-perturbed".into(), Layout::symmetry("perturbed"));
        }
    }
    (
        format!("train-breaking-{kind}-s{seed}"),
        Layout::breaking_run(kind, seed),
    )
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

    /// A reference-CNN training of `seed` at the profile's epochs and limits; when the
    /// symmetry-breaking experiment reuses these runs, they keep its snapshots.
    fn reference(&self, out: &Path, seed: u64) -> Args {
        let st = self.settings();
        let args = self
            .train(out, &self.o.backend)
            .opt("seed", seed)
            .opt("epochs", st.epochs)
            .opt_if("train-limit", st.train_limit)
            .opt_if("test-limit", st.test_limit);
        if breaking_is_reference(st) {
            args.opt("snapshot-steps", self.breaking_steps().join(","))
        } else {
            args
        }
    }

    /// The steps at which a symmetry-breaking run keeps its weights.
    fn breaking_steps(&self) -> Vec<String> {
        let t = &self.settings().breaking_training;
        snapshot_steps(total_steps(self.train_images(t.train_limit), t.epochs))
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// What every job needs on a cluster node.
    fn needs(&self) -> Needs {
        Needs::default()
    }

    /// Training images behind a `--train-limit` of `limit`.
    fn train_images(&self, limit: Option<usize>) -> usize {
        let all = if self.settings().full_data() {
            60_000
        } else {
            10_000
        };
        limit.map_or(all, |l| l.min(all))
    }

    /// Test images behind a `--test-limit` of `limit`.
    fn test_images(&self, limit: Option<usize>) -> usize {
        let all = if self.settings().full_data() {
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
        self.settings().reference_training()
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
    /// (conv2 zeroed by the redundancy criterion at several ratios, each fine-tuned as the
    /// settings' `width_finetune` says).
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
                let ft = &st.width_finetune;
                let images = ft.images.map_or(self.train_images(t.train_limit), |n| {
                    n.min(self.train_images(None))
                }) as f64;
                let tests = self.test_images(t.test_limit) as f64;
                let validation = ft.early_stop.unwrap_or(0) as f64;
                // At most: every fine-tuning runs all its epochs.
                let per_point = (ft.epochs as f64
                    * (images / TRAIN_IMAGES_PER_SEC
                        + (tests + validation) / INFER_IMAGES_PER_SEC)
                    + tests / INFER_IMAGES_PER_SEC)
                    * width_cost(w);
                let points = st.width_prune_ratios.len() + st.width_refine;
                let mut args = Args::new("prune-sweep")
                    .arg(show(&self.l.abs(out)))
                    .flag("json")
                    .opt("criteria", "redundancy")
                    .opt("layers", FOCUS_LAYER)
                    .opt("ratios", ratios.join(","))
                    .opt("finetune-epochs", ft.epochs)
                    .opt_if("finetune-images", ft.images);
                if let Some(held) = ft.early_stop {
                    args = args.flag("early-stop").opt("validation-images", held);
                }
                if st.width_refine > 0 {
                    args = args
                        .opt("refine", st.width_refine)
                        .opt("tolerance", super::aggregate::PRUNE_TOLERANCE * 100.0);
                }
                jobs.push(
                    self.analysis(
                        format!("prune-{}-s{seed}", Layout::width_tag(w)),
                        format!(
                            "prune conv2 of width ×{w}, seed {seed}, fine-tune {points} ratios{}",
                            if st.width_refine > 0 {
                                format!(" ({} by bisection)", st.width_refine)
                            } else {
                                String::new()
                            }
                        ),
                        vec![id.clone()],
                        args.opt("samples", st.prune_samples)
                            .opt("out", show(&self.l.abs(&sweep))),
                        &sweep.join(files::SWEEP),
                        per_point * points as f64 + STARTUP_SECONDS,
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
        let steps = self.breaking_steps();
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
                let (train, run) = breaking_run(st, &kind, seed);
                if train.starts_with("train-breaking-") {
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
                }
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

/// Training throughput of the reference CNN on one core (images/s) with the study's settings:
/// the cost model behind the ETA and the budget. Measured on the 2-core reference machine (AMD
/// EPYC, no AVX-512) with two single-threaded trainings side by side, as the local runner runs
/// them: 933 and 940 images/s at width ×1 (×2: 266, ×4: 69, faster than [`width_cost`] predicts:
/// its budget for the wide runs is an upper bound).
pub const TRAIN_IMAGES_PER_SEC: f64 = 930.0;
/// Inference throughput on one core (images/s), same machine and setting (about 3,000).
pub const INFER_IMAGES_PER_SEC: f64 = 3000.0;
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

/// The study's experiments, each with its jobs, in the order they are planned.
fn experiments(o: &Options, other_backends: &[&str]) -> Vec<(&'static str, Vec<Job>)> {
    let p = Planner {
        o,
        l: Layout { out: o.out.clone() },
    };
    let mut all = vec![
        ("reference runs (claims 1-3)", p.references()),
        ("symmetry (claim 4)", p.symmetry()),
        ("variance (claim 5)", p.variance()),
    ];
    if !other_backends.is_empty() {
        all.push(("cross-backend (claim 7)", p.backends(other_backends)));
    }
    all.extend([
        ("pruning (claim 6)", p.pruning()),
        ("seed comparison (claims 2, 3, 9)", vec![p.comparison()]),
        ("width (claims 8, 11)", p.widths()),
        ("init x redundancy (claim 10)", p.schemes()),
        ("symmetry breaking (claim 12)", p.breaking()),
    ]);
    all
}

/// Build the job list; `other_backends` are compared with the study's backend (claim 7).
pub fn plan(o: &Options, other_backends: &[&str]) -> Vec<Job> {
    experiments(o, other_backends)
        .into_iter()
        .flat_map(|(_, jobs)| jobs)
        .collect()
}

/// The budget as a table: every experiment's jobs and estimated core-hours, then what the
/// design saves against training every experiment's runs itself, fine-tuning every pruned point
/// for a whole epoch of the full training split at nine ratios, and (outside the cluster
/// profile) what was left to `--profile cluster`.
pub fn budget_table(o: &Options, other_backends: &[&str]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let by = experiments(o, other_backends);
    let total = Budget {
        jobs: by.iter().map(|(_, j)| j.len()).sum(),
        core_hours: by.iter().map(|(_, j)| budget(j).core_hours).sum(),
    };
    let _ = writeln!(s, "{:<34} {:>5} {:>11}", "experiment", "jobs", "core-hours");
    for (name, jobs) in &by {
        let b = budget(jobs);
        let _ = writeln!(s, "{name:<34} {:>5} {:>11.2}", b.jobs, b.core_hours);
    }
    let _ = writeln!(
        s,
        "{:<34} {:>5} {:>11.2}",
        "total", total.jobs, total.core_hours
    );
    let saved = savings(o);
    if !saved.is_empty() {
        let _ = writeln!(s, "saved by the design:");
        for (what, hours) in &saved {
            let _ = writeln!(s, "  {hours:>7.2} core-hours  {what}");
        }
    }
    s
}

/// What the plan of `o` saves, each saving with its core-hours.
fn savings(o: &Options) -> Vec<(String, f64)> {
    let p = Planner {
        o,
        l: Layout { out: o.out.clone() },
    };
    let st = p.settings();
    let mut out = Vec::new();
    let hours = |secs: f64| secs / 3600.0;
    // Trainings shared by two experiments.
    let one = p.training_cost(&st.reference_training(), 1.0);
    let mut shared = Vec::new();
    if st.widths.contains(&1.0) && width_is_reference(st, 1.0) {
        shared.push(format!("width ×1: {} seeds", st.seeds.len()));
    }
    let mut reused = if shared.is_empty() { 0 } else { st.seeds.len() };
    if breaking_is_reference(st) {
        reused += st.seeds.len();
        shared.push(format!("random init: {} seeds", st.seeds.len()));
        if st.noise_scales.contains(&PERTURBED_SIGMA) {
            reused += 1;
            shared.push(format!("σ = {PERTURBED_SIGMA:e}, seed {}", st.first_seed()));
        }
    }
    if reused > 0 {
        out.push((
            format!(
                "{reused} trainings shared with the reference and symmetry runs ({})",
                shared.join("; ")
            ),
            hours(reused as f64 * one),
        ));
    }
    // The width sweeps against nine ratios, each fine-tuned for a whole epoch of all images.
    let naive_ft = FineTune {
        epochs: 1,
        images: None,
        early_stop: None,
    };
    if st.width_finetune != naive_ft || st.width_refine > 0 {
        let naive_points = 9.0;
        let planned_points = (st.width_prune_ratios.len() + st.width_refine) as f64;
        let (images, tests) = (
            p.train_images(st.width_training.train_limit) as f64,
            p.test_images(st.width_training.test_limit) as f64,
        );
        let per_epoch = |n: f64| n / TRAIN_IMAGES_PER_SEC + tests / INFER_IMAGES_PER_SEC;
        let naive: f64 = st
            .widths
            .iter()
            .map(|&w| naive_points * per_epoch(images) * width_cost(w) * st.seeds.len() as f64)
            .sum();
        let planned: f64 = p
            .widths()
            .iter()
            .filter(|j| j.id.starts_with("prune-"))
            .map(|j| j.cost)
            .sum();
        out.push((
            format!(
                "width sweeps: {planned_points} fine-tunings per run ({} coarse ratios, {} by \
                 bisection) of at most {} epochs on {} images{} instead of 9 ratios × 1 epoch \
                 on {images}",
                st.width_prune_ratios.len(),
                st.width_refine,
                st.width_finetune.epochs,
                st.width_finetune
                    .images
                    .map_or_else(|| images.to_string(), |n| format!("a fixed subset of {n}")),
                if st.width_finetune.early_stop.is_some() {
                    ", stopped when the validation loss stops falling"
                } else {
                    ""
                },
            ),
            hours(naive - planned).max(0.0),
        ));
    }
    if st.profile == Profile::Full {
        let mut c = o.clone();
        c.settings.widths = vec![8.0];
        let cluster = Planner {
            o: &c,
            l: Layout { out: o.out.clone() },
        };
        let eight = budget(&cluster.widths()).core_hours;
        out.push((
            "width ×8 (trainings, sweeps, comparison): in --profile cluster".into(),
            eight,
        ));
    }
    out
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

    #[test]
    fn full_fits_one_night_on_two_cores_and_the_cluster_profile_holds_the_rest() {
        let full = options(Profile::Full);
        let b = budget(&plan(&full, &["ndarray"]));
        assert!(
            b.core_hours <= 16.0,
            "full: {} jobs, {:.1} core-hours\n{}",
            b.jobs,
            b.core_hours,
            budget_table(&full, &["ndarray"])
        );
        let cluster = budget(&plan(&options(Profile::Cluster), &["ndarray"]));
        assert!(cluster.core_hours > b.core_hours && cluster.jobs > b.jobs);
        // The table names every experiment and what the design saves.
        let table = budget_table(&full, &["ndarray"]);
        for what in [
            "width (claims 8, 11)",
            "trainings shared",
            "bisection",
            "cluster",
        ] {
            assert!(table.contains(what), "{what} missing from\n{table}");
        }
    }

    #[test]
    fn shared_trainings_are_planned_once() {
        let o = options(Profile::Full);
        let jobs = plan(&o, &["ndarray"]);
        let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
        // The random initialization's symmetry-breaking runs are the reference runs, and
        // σ = 1e-4's first seed is the symmetry run, which keep the snapshots the experiment reads.
        assert!(!ids.iter().any(|i| i.starts_with("train-breaking-random")));
        assert!(!ids.contains(&"train-breaking-noise-1e-4-s1"));
        assert!(ids.contains(&"train-breaking-noise-1e-4-s2"));
        let inspect = jobs
            .iter()
            .find(|j| j.id == "inspect-breaking-random-s3")
            .unwrap();
        assert_eq!(inspect.deps, vec!["train-s3".to_string()]);
        for id in ["train-s1", "train-perturbed", "train-repeat"] {
            let j = jobs.iter().find(|j| j.id == id).unwrap();
            assert!(
                j.spec.args().iter().any(|a| a == "--snapshot-steps"),
                "{id}"
            );
        }
        // The same training is never planned twice, but for the determinism claim's repeat and
        // killed-and-resumed run, which repeat the first seed's on purpose.
        let mut seen = std::collections::BTreeSet::new();
        for j in jobs.iter().filter(|j| {
            matches!(j.spec, crate::jobs::JobSpec::Train { .. }) && j.id != "train-repeat"
        }) {
            let mut args = j.spec.args().to_vec();
            if let Some(i) = args.iter().position(|a| a == "--out") {
                args.drain(i..i + 2);
            }
            assert!(seen.insert(args), "{} repeats another job", j.id);
        }
        // The quick profile trains the symmetry-breaking runs on a subset: nothing shared.
        let quick = plan(&options(Profile::Quick), &["ndarray"]);
        assert!(quick.iter().any(|j| j.id == "train-breaking-random-s1"));
    }
}
