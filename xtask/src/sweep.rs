//! `cargo xtask sweep`: `trainer prune-sweep` with fine-tuning as a graph of jobs, so that the
//! fine-tunings run side by side, or on a cluster. One job per (criterion, ratio) runs
//! `trainer prune --finetune-epochs N` into the run directory the sweep keeps for that point;
//! the last job runs `trainer prune-sweep` itself, which finds every point's run finished,
//! reuses it, and writes the table, `sweep.json` and the figure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::jobs::{Executor, Job, JobSpec, Needs, Outcome};

/// `trainer prune`'s criteria, in `trainer prune-sweep`'s order (its default: all of them).
pub const CRITERIA: [&str; 7] = [
    "l1",
    "l2",
    "fpgm",
    "redundancy",
    "mean-activation",
    "apoz",
    "random",
];

/// The criteria that rank filters by activation statistics (`--samples` applies to them).
const DATA_CRITERIA: [&str; 3] = ["redundancy", "mean-activation", "apoz"];

/// A sweep.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// The trained run.
    pub run: PathBuf,
    /// Criteria (empty: all).
    pub criteria: Vec<String>,
    /// Pruning ratios.
    pub ratios: Vec<f64>,
    /// Layers to prune (empty: every conv layer).
    pub layers: Vec<String>,
    /// Rank over all selected layers together.
    pub global: bool,
    /// Fine-tuning epochs per point (at least 1).
    pub finetune_epochs: usize,
    /// `--samples` for the data-dependent criteria.
    pub samples: Option<u64>,
    /// `--data` of every command.
    pub data: Option<String>,
    /// `--backend` of every command.
    pub backend: Option<String>,
    /// Where the sweep writes (`trainer prune-sweep --out`); job records in `jobs/` there.
    pub out: PathBuf,
    /// The trainer binary.
    pub trainer: PathBuf,
    /// Where the jobs run.
    pub executor: Executor,
}

impl SweepOptions {
    fn criteria(&self) -> Vec<String> {
        if self.criteria.is_empty() {
            CRITERIA.map(String::from).to_vec()
        } else {
            self.criteria.clone()
        }
    }

    fn check(&self) -> Result<()> {
        if let Some(c) = self
            .criteria
            .iter()
            .find(|c| !CRITERIA.contains(&c.as_str()))
        {
            bail!(
                "--criteria: unknown criterion {c} (known: {})",
                CRITERIA.join(", ")
            );
        }
        if let Some(r) = self.ratios.iter().find(|r| !(0.0..1.0).contains(*r)) {
            bail!("--ratios: {r} is outside [0, 1)");
        }
        if self.finetune_epochs == 0 {
            bail!(
                "--finetune-epochs must be at least 1 (without fine-tuning, run `trainer prune-sweep`)"
            );
        }
        if !self.run.join("summary.json").is_file() {
            bail!(
                "{} is not a finished run (it has no summary.json)",
                self.run.display()
            );
        }
        Ok(())
    }
}

/// The options every command of the sweep shares: layers, scope, data, backend.
fn common(o: &SweepOptions) -> Vec<String> {
    let mut args = Vec::new();
    let mut push = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            args.push(format!("--{name}"));
            args.push(v);
        }
    };
    push("layers", (!o.layers.is_empty()).then(|| o.layers.join(",")));
    push("data", o.data.clone());
    push("backend", o.backend.clone());
    if o.global {
        args.push("--global".into());
    }
    args
}

/// The point run of `criterion` at `ratio`, where `trainer prune-sweep` keeps it.
pub fn point_dir(out: &Path, criterion: &str, ratio: f64) -> PathBuf {
    out.join("runs").join(format!("{criterion}-{ratio}"))
}

/// The jobs of a sweep: one fine-tuned pruning per point, then the sweep that collects them.
pub fn plan(o: &SweepOptions) -> Vec<Job> {
    let mut jobs = Vec::new();
    let criteria = o.criteria();
    let samples = |c: &str| {
        o.samples
            .filter(|_| DATA_CRITERIA.contains(&c))
            .map(|s| s.to_string())
    };
    for c in &criteria {
        for &ratio in &o.ratios {
            let dir = point_dir(&o.out, c, ratio);
            let run = o.run.display().to_string();
            let mut args: Vec<String> = ["prune", &run, "--quiet", "--force", "--criterion", c]
                .map(String::from)
                .to_vec();
            args.extend(["--ratio".into(), ratio.to_string()]);
            args.extend(common(o));
            args.extend(["--finetune-epochs".into(), o.finetune_epochs.to_string()]);
            if let Some(s) = samples(c) {
                args.extend(["--samples".into(), s]);
            }
            args.extend(["--out".into(), dir.display().to_string()]);
            jobs.push(Job {
                id: format!("prune-{c}-{ratio}"),
                label: format!(
                    "prune {}% by {c}, fine-tune {} epoch(s)",
                    ratio * 100.0,
                    o.finetune_epochs
                ),
                deps: vec![],
                cost: o.finetune_epochs as f64,
                needs: Needs::default(),
                spec: JobSpec::Trainer { args },
                done: dir.join("prune.json"),
            });
        }
    }
    let ratios: Vec<String> = o.ratios.iter().map(f64::to_string).collect();
    let mut args = vec!["prune-sweep".into(), o.run.display().to_string()];
    args.extend(common(o));
    args.extend([
        "--criteria".into(),
        criteria.join(","),
        "--ratios".into(),
        ratios.join(","),
        "--finetune-epochs".into(),
        o.finetune_epochs.to_string(),
    ]);
    if let Some(s) = o
        .samples
        .filter(|_| criteria.iter().any(|c| DATA_CRITERIA.contains(&c.as_str())))
    {
        args.extend(["--samples".into(), s.to_string()]);
    }
    args.extend(["--out".into(), o.out.display().to_string()]);
    jobs.push(Job {
        id: "prune-sweep".into(),
        label: "collect the sweep: table, sweep.json, figure".into(),
        deps: jobs.iter().map(|j| j.id.clone()).collect(),
        cost: 1.0,
        needs: Needs::default(),
        spec: JobSpec::Trainer { args },
        done: o.out.join("sweep.json"),
    });
    jobs
}

/// The options with the output directory and data as the jobs see them, the jobs, and what
/// they run with.
fn prepare(
    o: &SweepOptions,
    write: bool,
) -> Result<(SweepOptions, Vec<Job>, crate::jobs::Staging)> {
    o.check()?;
    let staging = o
        .executor
        .prepare(&o.out, &o.trainer, o.data.as_deref(), write)?;
    let mut o = o.clone();
    if let Some(s) = &staging.slurm {
        o.out = s.out.clone();
        o.run = std::path::absolute(&o.run)?;
    }
    o.data = staging.data.clone();
    let jobs = plan(&o);
    Ok((o, jobs, staging))
}

/// What `--dry-run` prints.
pub fn dry_run(o: &SweepOptions) -> Result<String> {
    let (o, jobs, staging) = prepare(o, false)?;
    o.executor.dry_run(jobs, &o.out.join("jobs"), &staging)
}

/// Run the sweep; every job's outcome, and the sweep's table if it was written.
pub fn run(o: &SweepOptions) -> Result<(BTreeMap<String, Outcome>, Option<String>)> {
    let (o, jobs, staging) = prepare(o, true)?;
    std::fs::create_dir_all(&o.out)?;
    let outcomes = o.executor.run(jobs, &o.out.join("jobs"), &staging)?;
    let table = outcomes
        .get("prune-sweep")
        .is_some_and(Outcome::succeeded)
        .then(|| std::fs::read_to_string(o.out.join("sweep.txt")).ok())
        .flatten();
    Ok((outcomes, table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_job_per_point_then_the_sweep() {
        let o = SweepOptions {
            run: PathBuf::from("/r"),
            criteria: vec!["l1".into(), "apoz".into()],
            ratios: vec![0.25, 0.5],
            layers: vec!["conv2".into()],
            global: false,
            finetune_epochs: 1,
            samples: Some(64),
            data: None,
            backend: None,
            out: PathBuf::from("/r/prune-sweep"),
            trainer: PathBuf::from("trainer"),
            executor: Executor::Local {
                parallel: 2,
                cores: 2,
            },
        };
        let jobs = plan(&o);
        assert_eq!(jobs.len(), 5);
        let args = |j: &Job| j.spec.args().join(" ");
        assert_eq!(
            args(&jobs[0]),
            "prune /r --quiet --force --criterion l1 --ratio 0.25 --layers conv2 \
             --finetune-epochs 1 --out /r/prune-sweep/runs/l1-0.25"
        );
        assert_eq!(
            args(&jobs[3]),
            "prune /r --quiet --force --criterion apoz --ratio 0.5 --layers conv2 \
             --finetune-epochs 1 --samples 64 --out /r/prune-sweep/runs/apoz-0.5"
        );
        let sweep = &jobs[4];
        assert_eq!(sweep.deps.len(), 4);
        assert_eq!(
            args(sweep),
            "prune-sweep /r --layers conv2 --criteria l1,apoz --ratios 0.25,0.5 \
             --finetune-epochs 1 --samples 64 --out /r/prune-sweep"
        );
    }
}
