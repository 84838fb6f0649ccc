//! Every output of the study, loaded once and typed, for the claims and the report. An output
//! whose job failed is absent (the claims that need it are not evaluated); an output whose job
//! succeeded but that cannot be read as expected is an error naming the file and the field.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use super::layout::{self, Layout, files};
use super::outputs::{
    Comparison, InitStats, Inspection, Killed, Pruned, Redundancy, Run, RunSummary, Sweep, read,
};
use super::plan::{
    CLAIM_CRITERIA, PLAIN, RANDOM, RANDOM_INIT, SCHEMES, noise_kind, width_compare, width_run,
};
use super::settings::Settings;
use crate::jobs::Outcome;

/// What the study's jobs produced.
#[derive(Debug, Clone)]
pub struct Results {
    /// The reference runs, by seed.
    pub references: BTreeMap<u64, Run>,
    /// The repeat of the first seed.
    pub repeat: Option<Run>,
    /// The first seed killed and resumed, and whether the kill happened.
    pub killed: Option<(Run, Killed)>,
    /// The constant-init run.
    pub constant: Option<RunSummary>,
    /// Inspections of the constant and perturbed runs.
    pub inspect_constant: Option<Inspection>,
    /// The perturbed run's inspection.
    pub inspect_perturbed: Option<Inspection>,
    /// The deep plain CNN runs (He, small), by kind.
    pub plain: BTreeMap<String, RunSummary>,
    /// init-stats on N(0, 1) inputs, per weight seed (absent seeds failed).
    pub init_stats: BTreeMap<u64, InitStats>,
    /// Whether every init-stats job succeeded.
    pub init_stats_complete: bool,
    /// init-stats on real images.
    pub init_stats_real: Option<InitStats>,
    /// Redundancy of the first seed.
    pub redundancy: Option<Redundancy>,
    /// The pruning sweep of the first seed.
    pub sweep: Option<Sweep>,
    /// The pruned and fine-tuned runs, by criterion.
    pub pruned: BTreeMap<String, Pruned>,
    /// The comparison of the seeds.
    pub comparison: Option<Comparison>,
    /// The cross-backend runs, by backend.
    pub backends: BTreeMap<String, Run>,
    /// The width experiment, by width (in the settings' order).
    pub widths: Vec<(f64, WidthResult)>,
    /// Initialization × redundancy, by scheme (in [`SCHEMES`] order).
    pub schemes: Vec<(String, SchemeResult)>,
    /// Symmetry breaking: each noise scale (`None`: the random initialization) and its
    /// inspections by seed.
    pub breaking: Vec<(Option<f64>, BTreeMap<u64, Inspection>)>,
}

/// The runs of one width.
#[derive(Debug, Clone, Default)]
pub struct WidthResult {
    /// Runs by seed.
    pub runs: BTreeMap<u64, RunSummary>,
    /// The comparison of the seeds.
    pub comparison: Option<Comparison>,
    /// conv2 zeroed and fine-tuned, by seed.
    pub sweeps: BTreeMap<u64, Sweep>,
}

/// The runs of one initialization scheme.
#[derive(Debug, Clone, Default)]
pub struct SchemeResult {
    /// Runs by seed.
    pub runs: BTreeMap<u64, RunSummary>,
    /// Redundancy at initialization, by seed.
    pub at_init: BTreeMap<u64, Redundancy>,
    /// Redundancy after training, by seed.
    pub trained: BTreeMap<u64, Redundancy>,
    /// conv2 zeroed by the redundancy criterion, by seed.
    pub sweeps: BTreeMap<u64, Sweep>,
}

/// Loads outputs of the jobs that succeeded.
struct Loader<'a> {
    layout: &'a Layout,
    outcomes: &'a BTreeMap<String, Outcome>,
}

impl Loader<'_> {
    fn succeeded(&self, job: &str) -> bool {
        matches!(
            self.outcomes.get(job),
            Some(Outcome::Ran(_) | Outcome::Reused)
        )
    }

    /// `f(path)` if `job` succeeded.
    fn load<T>(&self, job: &str, rel: &Path, f: impl Fn(&Path) -> Result<T>) -> Result<Option<T>> {
        if !self.succeeded(job) {
            return Ok(None);
        }
        f(&self.layout.abs(rel)).map(Some)
    }
}

impl Results {
    /// Load what the jobs in `outcomes` produced under `layout`.
    pub fn load(
        layout: &Layout,
        settings: &Settings,
        outcomes: &BTreeMap<String, Outcome>,
        backends: &[&str],
    ) -> Result<Results> {
        let l = Loader { layout, outcomes };
        let s1 = settings.first_seed();
        let mut references = BTreeMap::new();
        for &seed in &settings.seeds {
            if let Some(r) = l.load(
                &format!("train-s{seed}"),
                &Layout::reference(seed),
                Run::read,
            )? {
                references.insert(seed, r);
            }
        }
        let killed = match l.load("train-killed", &Layout::killed(s1), Run::read)? {
            Some(run) => Some((
                run,
                read(&layout.abs(Layout::killed(s1)).join(layout::KILLED))?,
            )),
            None => None,
        };
        let summary = |dir: &Path| read::<RunSummary>(&dir.join(layout::SUMMARY));
        let mut plain = BTreeMap::new();
        for (kind, _) in PLAIN {
            if let Some(s) = l.load(
                &format!("train-plain-{kind}"),
                &Layout::plain(kind),
                summary,
            )? {
                plain.insert(kind.to_string(), s);
            }
        }
        let mut init_stats = BTreeMap::new();
        for seed in 0..settings.init_seeds {
            let rel = Layout::init_stats(seed).join(files::INIT_STATS);
            if let Some(s) = l.load(&format!("init-stats-{seed}"), &rel, read::<InitStats>)? {
                init_stats.insert(seed, s);
            }
        }
        let mut pruned = BTreeMap::new();
        for c in CLAIM_CRITERIA.into_iter().chain([RANDOM]) {
            let rel = Layout::pruned(c).join(layout::PRUNE);
            if let Some(p) = l.load(&format!("prune-{c}"), &rel, read::<Pruned>)? {
                pruned.insert(c.to_string(), p);
            }
        }
        let mut runs_by_backend = BTreeMap::new();
        for b in backends {
            if let Some(r) = l.load(
                &format!("train-backend-{b}"),
                &Layout::backend(b),
                Run::read,
            )? {
                runs_by_backend.insert(b.to_string(), r);
            }
        }
        let mut widths = Vec::new();
        for &w in &settings.widths {
            let mut r = WidthResult::default();
            for &seed in &settings.seeds {
                let (job, run) = width_run(settings, w, seed);
                if let Some(s) = l.load(&job, &run, summary)? {
                    r.runs.insert(seed, s);
                }
                let tag = Layout::width_tag(w);
                let rel = Layout::width_sweep(w, seed).join(files::SWEEP);
                if let Some(s) = l.load(&format!("prune-{tag}-s{seed}"), &rel, read::<Sweep>)? {
                    r.sweeps.insert(seed, s);
                }
            }
            let (job, dir) = width_compare(settings, w);
            r.comparison = l.load(&job, &dir.join(files::COMPARE), read)?;
            widths.push((w, r));
        }
        let mut schemes = Vec::new();
        for (name, _) in SCHEMES {
            let mut r = SchemeResult::default();
            for &seed in &settings.seeds {
                if let Some(s) = l.load(
                    &format!("train-init-{name}-s{seed}"),
                    &Layout::scheme_run(name, seed),
                    summary,
                )? {
                    r.runs.insert(seed, s);
                }
                for (at_init, map) in [(true, &mut r.at_init), (false, &mut r.trained)] {
                    let when = if at_init { "init" } else { "trained" };
                    let rel =
                        Layout::scheme_redundancy(name, seed, at_init).join(files::REDUNDANCY);
                    let job = format!("redundancy-init-{name}-s{seed}-{when}");
                    if let Some(x) = l.load(&job, &rel, read::<Redundancy>)? {
                        map.insert(seed, x);
                    }
                }
                let rel = Layout::scheme_sweep(name, seed).join(files::SWEEP);
                if let Some(x) =
                    l.load(&format!("prune-init-{name}-s{seed}"), &rel, read::<Sweep>)?
                {
                    r.sweeps.insert(seed, x);
                }
            }
            schemes.push((name.to_string(), r));
        }
        let mut breaking = Vec::new();
        let kinds = settings
            .noise_scales
            .iter()
            .map(|&s| (Some(s), noise_kind(s).0))
            .chain([(None, RANDOM_INIT.to_string())]);
        for (sigma, kind) in kinds {
            let mut by_seed = BTreeMap::new();
            for &seed in &settings.seeds {
                let rel = Layout::breaking_inspect(&kind, seed).join(files::INSPECT);
                let job = format!("inspect-breaking-{kind}-s{seed}");
                if let Some(x) = l.load(&job, &rel, read::<Inspection>)? {
                    by_seed.insert(seed, x);
                }
            }
            breaking.push((sigma, by_seed));
        }
        Ok(Results {
            widths,
            schemes,
            breaking,
            references,
            repeat: l.load("train-repeat", &Layout::repeat(s1), Run::read)?,
            killed,
            constant: l.load("train-const", &Layout::symmetry("const"), summary)?,
            inspect_constant: l.load(
                "inspect-const",
                &Layout::inspect("const").join(files::INSPECT),
                read,
            )?,
            inspect_perturbed: l.load(
                "inspect-perturbed",
                &Layout::inspect("perturbed").join(files::INSPECT),
                read,
            )?,
            plain,
            init_stats_complete: init_stats.len() as u64 == settings.init_seeds,
            init_stats,
            init_stats_real: l.load(
                "init-stats-real",
                &Layout::init_stats_real().join(files::INIT_STATS),
                read,
            )?,
            redundancy: l.load(
                "redundancy",
                &Layout::redundancy().join(files::REDUNDANCY),
                read,
            )?,
            sweep: l.load("prune-sweep", &Layout::sweep().join(files::SWEEP), read)?,
            pruned,
            comparison: l.load("compare", &Layout::compare().join(files::COMPARE), read)?,
            backends: runs_by_backend,
        })
    }
}
