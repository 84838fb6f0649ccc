//! Jobs and the two ways to run a graph of them: [`local`], a small runner on this machine
//! (independent jobs in parallel, dependencies respected), and [`slurm`], which hands the graph
//! to a Slurm cluster. Both keep the same job records ([`Records`]): a finished job with an
//! unchanged definition is reused instead of run again, and both report the same [`Outcome`]s.

pub mod local;
pub mod slurm;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::write_atomic;

pub use local::run_jobs;

/// What a job gets to run with.
pub struct JobContext {
    /// CPU threads the job may use.
    pub threads: usize,
    /// Its log file.
    pub log: PathBuf,
}

/// What a job does: one trainer command line, run in one of three ways. Everything a job does
/// is in here, so it can be written down, compared with an earlier run's, and run anywhere the
/// trainer binary is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum JobSpec {
    /// A training that writes the run `out`; an earlier attempt that was interrupted after a
    /// checkpoint is resumed instead of started again.
    Train {
        /// `trainer` arguments.
        args: Vec<String>,
        /// The run directory.
        out: PathBuf,
    },
    /// A training that is killed (SIGKILL) as soon as its first checkpoint exists, then
    /// resumed; records in `out/killed.json` whether the kill happened.
    TrainKilled {
        /// `trainer` arguments.
        args: Vec<String>,
        /// The run directory.
        out: PathBuf,
    },
    /// Any other trainer command.
    Trainer {
        /// `trainer` arguments.
        args: Vec<String>,
    },
}

impl JobSpec {
    /// The trainer arguments.
    pub fn args(&self) -> &[String] {
        match self {
            JobSpec::Train { args, .. }
            | JobSpec::TrainKilled { args, .. }
            | JobSpec::Trainer { args } => args,
        }
    }

    /// The command line, as a log shows it.
    pub fn command(&self) -> String {
        format!("trainer {}", self.args().join(" "))
    }

    /// Run the job with the trainer binary `trainer`.
    pub fn execute(&self, trainer: &Path, ctx: &JobContext) -> Result<()> {
        match self {
            JobSpec::Trainer { args } => run_trainer(trainer, args, ctx),
            JobSpec::Train { args, out } => {
                if out.join("checkpoint/state.json").exists()
                    && !out.join("summary.json").exists()
                    && run_trainer(trainer, &resume_args(out), ctx).is_ok()
                {
                    return Ok(());
                }
                run_trainer(trainer, args, ctx)
            }
            JobSpec::TrainKilled { args, out } => {
                let _ = std::fs::remove_dir_all(out);
                let mut child = spawn_trainer(trainer, args, ctx)?;
                let state = out.join("checkpoint/state.json");
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
                    check_status(status, args, &ctx.log)?;
                }
                let was_interrupted = killed && !out.join("summary.json").exists();
                if was_interrupted {
                    run_trainer(trainer, &resume_args(out), ctx)?;
                }
                let record = serde_json::json!({ "killed_after_checkpoint": was_interrupted });
                write_atomic(
                    &out.join(crate::repro::layout::KILLED),
                    record.to_string().as_bytes(),
                )
            }
        }
    }
}

/// `trainer train --resume` of the run in `out`.
fn resume_args(out: &Path) -> Vec<String> {
    ["train", "--quiet", "--resume", &out.display().to_string()]
        .map(String::from)
        .to_vec()
}

/// How a job's spec is run by the local runner: by the trainer, or a stand-in in tests.
pub type ExecuteFn = Arc<dyn Fn(&JobSpec, &JobContext) -> Result<()> + Send + Sync>;

/// What a job needs from a cluster node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// CPU cores (the trainer's data-parallel workers each use one).
    pub cpus: usize,
    /// Memory in MiB.
    pub mem_mib: u64,
}

impl Default for Needs {
    /// Two cores (the trainer's default worker count) and 2 GiB.
    fn default() -> Self {
        Needs {
            cpus: 2,
            mem_mib: 2048,
        }
    }
}

/// One unit of work.
#[derive(Debug)]
pub struct Job {
    /// Unique, file-name-safe id.
    pub id: String,
    /// What the progress display says.
    pub label: String,
    /// Jobs that must finish first.
    pub deps: Vec<String>,
    /// Relative cost (≈ seconds on the reference machine), for the ETA.
    pub cost: f64,
    /// What it needs on a cluster node.
    pub needs: Needs,
    /// What it does; a finished job with the same spec is reused instead of run again.
    pub spec: JobSpec,
    /// The file whose existence means the job finished.
    pub done: PathBuf,
}

/// `jobs` in an order where every job comes after its dependencies; an unknown dependency, a
/// repeated id or a cycle is an error.
pub fn ordered(jobs: Vec<Job>) -> Result<Vec<Job>> {
    let ids: BTreeSet<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    if ids.len() != jobs.len() {
        bail!("two jobs have the same id");
    }
    for j in &jobs {
        if let Some(d) = j.deps.iter().find(|d| !ids.contains(d.as_str())) {
            bail!("job {} depends on unknown job {d}", j.id);
        }
    }
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut rest = jobs;
    let mut order = Vec::with_capacity(rest.len());
    while !rest.is_empty() {
        let (ready, blocked): (Vec<Job>, Vec<Job>) = rest
            .into_iter()
            .partition(|j| j.deps.iter().all(|d| placed.contains(d)));
        if ready.is_empty() {
            let ids: Vec<&str> = blocked.iter().map(|j| j.id.as_str()).collect();
            bail!(
                "the jobs {} depend on each other in a cycle",
                ids.join(", ")
            );
        }
        placed.extend(ready.iter().map(|j| j.id.clone()));
        order.extend(ready);
        rest = blocked;
    }
    Ok(order)
}

/// `jobs` in the order a list scheduler should start them: the job with the longest chain of
/// work still ahead of it first (its own cost plus the costliest chain of jobs that wait for
/// it, the "bottom level"), ties in [`ordered`]'s order. Every job still comes after its
/// dependencies (costs are positive). Starting the long chains first keeps every core busy to
/// the end instead of leaving one long job alone at the tail.
pub fn critical_first(jobs: Vec<Job>) -> Result<Vec<Job>> {
    let jobs = ordered(jobs)?;
    let index: BTreeMap<&str, usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.id.as_str(), i))
        .collect();
    // Walk backwards through the topological order: every dependent is done before its
    // dependencies.
    let mut level = vec![0.0f64; jobs.len()];
    for i in (0..jobs.len()).rev() {
        level[i] += jobs[i].cost.max(0.0);
        for d in &jobs[i].deps {
            let k = index[d.as_str()];
            level[k] = level[k].max(level[i]);
        }
    }
    let mut keyed: Vec<(f64, usize, Job)> = jobs
        .into_iter()
        .enumerate()
        .map(|(i, j)| (level[i], i, j))
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    Ok(keyed.into_iter().map(|(_, _, j)| j).collect())
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Ran and succeeded, in this many seconds.
    Ran(f64),
    /// Reused from an earlier study with the same definition.
    Reused,
    /// Failed with this error.
    Failed(String),
    /// Not run because a dependency failed.
    Skipped(String),
}

impl Outcome {
    /// Whether the job's output is there to use.
    pub fn succeeded(&self) -> bool {
        matches!(self, Outcome::Ran(_) | Outcome::Reused)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Ran(s) => write!(f, "ran in {}", fmt_duration(*s)),
            Outcome::Reused => write!(f, "reused"),
            Outcome::Failed(e) => write!(f, "failed: {e}"),
            Outcome::Skipped(d) => write!(f, "skipped ({d} failed)"),
        }
    }
}

/// The first dependency of `job` that failed or was skipped, if any.
pub fn failed_dependency<'a>(
    job: &'a Job,
    outcomes: &BTreeMap<String, Outcome>,
) -> Option<&'a String> {
    job.deps.iter().find(|d| {
        matches!(
            outcomes.get(*d),
            Some(Outcome::Failed(_) | Outcome::Skipped(_))
        )
    })
}

/// The job records of a study, in one directory: for job `ID`, `ID.json` (the definition of
/// its last successful run), `ID.time` (how long that run took, with how many threads, and
/// when it finished: a [`Timing`]) and `ID.log` (the output of every attempt); the Slurm
/// executor adds `ID.sbatch` (the script it submitted) and `ID.submitted` (the Slurm job id).
#[derive(Debug, Clone)]
pub struct Records {
    dir: PathBuf,
}

impl Records {
    /// The records in `dir`, created if needed.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Records {
            dir: dir.to_path_buf(),
        })
    }

    /// The records in `dir`, without touching the file system.
    pub fn at(dir: &Path) -> Self {
        Records {
            dir: dir.to_path_buf(),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of job `id` with extension `ext`.
    pub fn file(&self, id: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{id}.{ext}"))
    }

    /// Job `id`'s log.
    pub fn log(&self, id: &str) -> PathBuf {
        self.file(id, "log")
    }

    /// Whether `job` finished earlier with the same definition: its output exists and its
    /// record holds its spec.
    pub fn finished(&self, job: &Job) -> bool {
        job.done.exists()
            && std::fs::read_to_string(self.file(&job.id, "json"))
                .is_ok_and(|s| Some(s) == definition(&job.spec).ok())
    }

    /// Forget that job `id` finished, before it runs again.
    pub fn forget(&self, id: &str) {
        let _ = std::fs::remove_file(self.file(id, "json"));
        let _ = std::fs::remove_file(self.file(id, "time"));
    }

    /// How long job `id`'s last successful run took, if it was timed (records written before
    /// jobs were timed have none).
    pub fn timing(&self, id: &str) -> Option<Timing> {
        let text = std::fs::read_to_string(self.file(id, "time")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Run job `id` with `execute` and `threads` threads, its output appended to its log, and
    /// record its definition when it succeeds.
    pub fn run(
        &self,
        id: &str,
        spec: &JobSpec,
        threads: usize,
        execute: impl FnOnce(&JobSpec, &JobContext) -> Result<()>,
    ) -> Result<()> {
        let ctx = JobContext {
            threads,
            log: self.log(id),
        };
        let started = Instant::now();
        execute(spec, &ctx)?;
        let timing = Timing {
            seconds: started.elapsed().as_secs_f64(),
            threads,
            finished_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        };
        write_atomic(
            &self.file(id, "time"),
            (serde_json::to_string(&timing)? + "\n").as_bytes(),
        )?;
        write_atomic(&self.file(id, "json"), definition(spec)?.as_bytes())
    }
}

/// How long a job's successful run took.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Wall-clock seconds of the run (of its last attempt, where it resumed an interrupted one).
    pub seconds: f64,
    /// Threads it ran with.
    pub threads: usize,
    /// When it finished, in seconds since the Unix epoch.
    pub finished_unix: f64,
}

impl Timing {
    /// Core-hours: seconds × threads.
    pub fn core_hours(&self) -> f64 {
        self.seconds * self.threads as f64 / 3600.0
    }
}

/// The time during which at least one of the jobs ran: the length of the union of their
/// intervals `[finished − seconds, finished]`. Gaps between invocations of a resumed study,
/// when nothing ran, are not counted.
pub fn busy_seconds(timings: &[Timing]) -> f64 {
    let mut spans: Vec<(f64, f64)> = timings
        .iter()
        .map(|t| (t.finished_unix - t.seconds, t.finished_unix))
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut current: Option<(f64, f64)> = None;
    for (start, end) in spans {
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    total + current.map_or(0.0, |(s, e)| e - s)
}

/// A spec as its record holds it.
fn definition(spec: &JobSpec) -> Result<String> {
    Ok(serde_json::to_string_pretty(spec)?)
}

/// Progress lines of a run of jobs: `[ n/N] what label`, with an ETA from the cost of the jobs
/// that ran so far.
pub struct Progress {
    total: usize,
    total_cost: f64,
    done: usize,
    done_cost: f64,
    ran_cost: f64,
    started: Instant,
}

impl Progress {
    /// Progress over `jobs`.
    pub fn new(jobs: &[Job]) -> Self {
        Progress {
            total: jobs.len(),
            total_cost: jobs.iter().map(|j| j.cost).sum(),
            done: 0,
            done_cost: 0.0,
            ran_cost: 0.0,
            started: Instant::now(),
        }
    }

    /// How many jobs have ended.
    pub fn done(&self) -> usize {
        self.done
    }

    /// Print `[ n/N] what text`, `n` being the jobs ended so far plus `ahead`.
    pub fn say(&self, ahead: usize, what: &str, text: &str) {
        eprintln!("[{:>2}/{}] {what:<8} {text}", self.done + ahead, self.total);
    }

    /// Seconds left at the rate of the jobs that ran so far.
    pub fn eta(&self) -> Option<f64> {
        (self.ran_cost > 0.0).then(|| {
            let rate = self.ran_cost / self.started.elapsed().as_secs_f64().max(1e-9);
            (self.total_cost - self.done_cost) / rate
        })
    }

    /// ` · ETA 4m10s`, or nothing before the first job has run.
    pub fn eta_text(&self) -> String {
        self.eta()
            .map_or(String::new(), |s| format!(" · ETA {}", fmt_duration(s)))
    }

    /// `job` is reused.
    pub fn reused(&mut self, job: &Job) -> Outcome {
        self.end(job.cost, false);
        self.say(0, "reused", &job.label);
        Outcome::Reused
    }

    /// `job` is skipped because `dep` failed.
    pub fn skipped(&mut self, job: &Job, dep: &str) -> Outcome {
        self.end(job.cost, false);
        self.say(
            0,
            "skipped",
            &format!("{} (needs {dep}, which failed)", job.label),
        );
        Outcome::Skipped(dep.to_string())
    }

    /// A job of `cost` and `label` ran for `secs` with `result`; `note` follows the label.
    pub fn ran(
        &mut self,
        label: &str,
        note: &str,
        cost: f64,
        secs: f64,
        result: Result<(), String>,
    ) -> Outcome {
        self.end(cost, true);
        match result {
            Ok(()) => {
                self.say(
                    0,
                    "done",
                    &format!("{label}{note} ({}){}", fmt_duration(secs), self.eta_text()),
                );
                Outcome::Ran(secs)
            }
            Err(e) => {
                self.say(0, "FAILED", &format!("{label}{note}: {e}"));
                Outcome::Failed(e)
            }
        }
    }

    fn end(&mut self, cost: f64, ran: bool) {
        self.done += 1;
        self.done_cost += cost;
        if ran {
            self.ran_cost += cost;
        }
    }
}

/// `1h02m`, `4m10s`, `12s`.
pub fn fmt_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

/// Run `trainer` with `args` and `--threads`, appending its output to `log`; an error carries
/// the end of the log.
pub fn run_trainer(trainer: &Path, args: &[String], ctx: &JobContext) -> Result<()> {
    let mut child = spawn_trainer(trainer, args, ctx)?;
    let status = child.wait().context("waiting for the trainer")?;
    check_status(status, args, &ctx.log)
}

/// Start `trainer` with `args` and `--threads`, its output appended to the job's log.
pub fn spawn_trainer(
    trainer: &Path,
    args: &[String],
    ctx: &JobContext,
) -> Result<std::process::Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&ctx.log)
        .with_context(|| format!("cannot open {}", ctx.log.display()))?;
    use std::io::Write;
    writeln!(
        &log,
        "$ trainer {} --threads {}",
        args.join(" "),
        ctx.threads
    )?;
    Command::new(trainer)
        .args(args)
        .args(["--threads", &ctx.threads.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot run {}", trainer.display()))
}

/// Turn a finished trainer's status into a result naming the command and the log's tail.
pub fn check_status(status: std::process::ExitStatus, args: &[String], log: &Path) -> Result<()> {
    if status.success() {
        return Ok(());
    }
    bail!(
        "trainer {} failed ({status}); log {}:\n{}",
        args.first().map_or("", String::as_str),
        log.display(),
        log_tail(log, 6)
    )
}

/// The last `lines` lines of the file at `log` (nothing if it cannot be read).
pub fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(lines).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Where a graph of jobs runs.
#[derive(Debug, Clone)]
pub enum Executor {
    /// On this machine, `parallel` jobs at a time sharing `cores` cores.
    Local {
        /// Jobs at a time.
        parallel: usize,
        /// Cores to share among them.
        cores: usize,
    },
    /// On a Slurm cluster.
    Slurm(slurm::Slurm),
}

impl std::fmt::Display for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Executor::Local { parallel, .. } => {
                write!(f, "locally, {parallel} job(s) at a time")
            }
            Executor::Slurm(s) => write!(f, "{s}"),
        }
    }
}

/// What the jobs run with, once an executor is [prepared](Executor::prepare).
#[derive(Debug, Clone)]
pub struct Staging {
    /// The trainer binary the jobs run.
    pub trainer: PathBuf,
    /// The `--data` the jobs use.
    pub data: Option<String>,
    /// On Slurm, what was staged.
    pub slurm: Option<slurm::Staged>,
}

impl Executor {
    /// Check that jobs can run and put what they need where they run: on Slurm, the trainer,
    /// the job runner and the data directory `data` (if it is one) under `out`. With `write`
    /// false, nothing is checked or written (a dry run): only the paths are decided.
    pub fn prepare(
        &self,
        out: &Path,
        trainer: &Path,
        data: Option<&str>,
        write: bool,
    ) -> Result<Staging> {
        match self {
            Executor::Local { .. } => Ok(Staging {
                trainer: trainer.to_path_buf(),
                data: data.map(str::to_string),
                slurm: None,
            }),
            Executor::Slurm(s) => {
                let staged = s.stage(out, trainer, data, write)?;
                Ok(Staging {
                    trainer: staged.trainer.clone(),
                    data: staged.data.clone(),
                    slurm: Some(staged),
                })
            }
        }
    }

    /// Run `jobs`, keeping their records and logs in `state`.
    pub fn run(
        &self,
        jobs: Vec<Job>,
        state: &Path,
        staging: &Staging,
    ) -> Result<BTreeMap<String, Outcome>> {
        match (self, &staging.slurm) {
            (Executor::Local { parallel, cores }, _) => {
                let trainer = staging.trainer.clone();
                let execute: ExecuteFn =
                    Arc::new(move |spec: &JobSpec, ctx: &JobContext| spec.execute(&trainer, ctx));
                run_jobs(jobs, *parallel, *cores, state, execute)
            }
            (Executor::Slurm(s), Some(staged)) => s.run(jobs, state, staged),
            (Executor::Slurm(_), None) => bail!("the Slurm executor was not prepared"),
        }
    }

    /// On Slurm, the sbatch script of every job and the dependency graph, without submitting
    /// anything; locally, an error.
    pub fn dry_run(&self, jobs: Vec<Job>, state: &Path, staging: &Staging) -> Result<String> {
        match (self, &staging.slurm) {
            (Executor::Slurm(s), Some(staged)) => s.dry_run(jobs, state, staged),
            _ => {
                // Locally: every job in the order the runner considers them, with what it
                // waits for and its command line.
                let mut out = String::new();
                for j in critical_first(jobs)? {
                    out.push_str(&format!(
                        "{}  [{:.0} core-s]  {}{}\n    {}\n",
                        j.id,
                        j.cost,
                        j.label,
                        if j.deps.is_empty() {
                            String::new()
                        } else {
                            format!(" (after {})", j.deps.join(", "))
                        },
                        j.spec.command()
                    ));
                }
                Ok(out)
            }
        }
    }
}

/// Run one job where it was sent (the Slurm job runner): execute `spec` with `trainer` and
/// `threads` threads, its output appended to its log in `state`, and record its success there,
/// exactly as the local runner does.
pub fn run_one(
    state: &Path,
    id: &str,
    spec: &JobSpec,
    trainer: &Path,
    threads: usize,
) -> Result<()> {
    Records::at(state).run(id, spec, threads, |spec, ctx| spec.execute(trainer, ctx))
}

#[cfg(test)]
mod tests {
    #[test]
    fn busy_time_is_the_union_of_the_jobs_intervals() {
        let t = |start: f64, seconds: f64| Timing {
            seconds,
            threads: 1,
            finished_unix: start + seconds,
        };
        // Two overlapping jobs (0–10, 5–12), one inside them (6–8), and after a gap of an hour
        // (a resumed study) one more (3612–3632): 12 + 20 seconds.
        let timings = [t(0.0, 10.0), t(5.0, 7.0), t(6.0, 2.0), t(3612.0, 20.0)];
        assert_eq!(busy_seconds(&timings), 32.0);
        assert_eq!(busy_seconds(&[]), 0.0);
        assert_eq!(t(0.0, 1800.0).core_hours(), 0.5);
    }

    #[test]
    fn a_finished_job_is_timed_and_forgetting_it_drops_the_timing() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::open(dir.path()).unwrap();
        let spec = JobSpec::Trainer {
            args: vec!["info".into()],
        };
        records.run("a", &spec, 3, |_, _| Ok(())).unwrap();
        let timing = records.timing("a").expect("timed");
        assert_eq!(timing.threads, 3);
        assert!(timing.seconds >= 0.0 && timing.finished_unix > 1.7e9);
        records.forget("a");
        assert_eq!(records.timing("a"), None);
    }

    use super::*;

    fn job(id: &str, deps: &[&str]) -> Job {
        Job {
            id: id.into(),
            label: id.into(),
            deps: deps.iter().map(|d| d.to_string()).collect(),
            cost: 1.0,
            needs: Needs::default(),
            spec: JobSpec::Trainer { args: vec![] },
            done: PathBuf::from("/nonexistent"),
        }
    }

    #[test]
    fn jobs_are_ordered_after_their_dependencies() {
        let ids = |jobs: Vec<Job>| -> Vec<String> { jobs.into_iter().map(|j| j.id).collect() };
        let jobs = vec![
            job("c", &["b"]),
            job("b", &["a"]),
            job("a", &[]),
            job("d", &[]),
        ];
        assert_eq!(ids(ordered(jobs).unwrap()), ["a", "d", "b", "c"]);
        let err = ordered(vec![job("a", &["b"]), job("b", &["a"])]).unwrap_err();
        assert!(err.to_string().contains("cycle"), "{err}");
        let err = ordered(vec![job("a", &["x"])]).unwrap_err();
        assert!(err.to_string().contains("unknown job x"), "{err}");
        assert!(ordered(vec![job("a", &[]), job("a", &[])]).is_err());
    }

    #[test]
    fn the_longest_chain_starts_first_and_dependencies_still_come_first() {
        let ids = |jobs: Vec<Job>| -> Vec<String> { jobs.into_iter().map(|j| j.id).collect() };
        let with_cost = |id: &str, deps: &[&str], cost: f64| Job {
            cost,
            ..job(id, deps)
        };
        // Chains: a(1) → b(1) → c(10): 12 ahead of a; d(5): 5; e(2) → f(2): 4; g(5) ties d.
        let jobs = vec![
            with_cost("d", &[], 5.0),
            with_cost("e", &[], 2.0),
            with_cost("f", &["e"], 2.0),
            with_cost("a", &[], 1.0),
            with_cost("b", &["a"], 1.0),
            with_cost("c", &["b"], 10.0),
            with_cost("g", &[], 5.0),
        ];
        assert_eq!(
            ids(critical_first(jobs).unwrap()),
            ["a", "b", "c", "d", "g", "e", "f"]
        );
        // A zero-cost dependent ties its dependency and stays after it.
        let jobs = vec![with_cost("y", &["x"], 0.0), with_cost("x", &[], 0.0)];
        assert_eq!(ids(critical_first(jobs).unwrap()), ["x", "y"]);
    }

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(3725.0), "1h02m");
        assert_eq!(fmt_duration(250.0), "4m10s");
        assert_eq!(fmt_duration(12.4), "12s");
    }
}
