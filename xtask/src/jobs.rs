//! A small job runner: independent jobs in parallel, dependencies respected, finished jobs with
//! an unchanged definition reused, progress with an ETA.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::write_atomic;

/// What a job gets to run with.
pub struct JobContext {
    /// CPU threads the job may use.
    pub threads: usize,
    /// Its log file.
    pub log: PathBuf,
}

/// The work of a job.
pub type Work = Box<dyn FnOnce(&JobContext) -> Result<()> + Send>;

/// One unit of work.
pub struct Job {
    /// Unique, file-name-safe id.
    pub id: String,
    /// What the progress display says.
    pub label: String,
    /// Jobs that must finish first.
    pub deps: Vec<String>,
    /// Relative cost (≈ seconds on the reference machine), for the ETA.
    pub cost: f64,
    /// Everything that defines the job's result; a finished job with the same definition is
    /// reused instead of run again.
    pub definition: serde_json::Value,
    /// The file whose existence means the job finished.
    pub done: PathBuf,
    /// The work.
    pub work: Work,
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

/// Run `jobs` with at most `parallel` at a time, keeping job records in `state`. Each running
/// job gets `max(1, cores / parallel)` threads.
pub fn run_jobs(
    jobs: Vec<Job>,
    parallel: usize,
    cores: usize,
    state: &Path,
) -> Result<BTreeMap<String, Outcome>> {
    std::fs::create_dir_all(state).with_context(|| format!("cannot create {}", state.display()))?;
    let ids: BTreeSet<String> = jobs.iter().map(|j| j.id.clone()).collect();
    for j in &jobs {
        for d in &j.deps {
            if !ids.contains(d) {
                bail!("job {} depends on unknown job {d}", j.id);
            }
        }
    }
    let total = jobs.len();
    let total_cost: f64 = jobs.iter().map(|j| j.cost).sum();
    let parallel = parallel.max(1);
    let threads = (cores / parallel).max(1);
    let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut pending: Vec<Job> = jobs;
    let mut running: BTreeMap<String, (String, f64, Instant)> = BTreeMap::new();
    let (tx, rx) = mpsc::channel::<(String, Result<()>)>();
    let started = Instant::now();
    let (mut done_cost, mut ran_cost) = (0.0f64, 0.0f64);
    let mut finished = 0usize;

    let record = |j: &Job| state.join(format!("{}.json", j.id));
    loop {
        // Reuse, skip or start whatever is ready.
        let mut i = 0;
        while i < pending.len() {
            let failed_dep = pending[i]
                .deps
                .iter()
                .find(|d| {
                    matches!(
                        outcomes.get(*d),
                        Some(Outcome::Failed(_) | Outcome::Skipped(_))
                    )
                })
                .cloned();
            if let Some(d) = failed_dep {
                let j = pending.remove(i);
                finished += 1;
                done_cost += j.cost;
                eprintln!(
                    "[{finished:>2}/{total}] skipped  {} (needs {d}, which failed)",
                    j.label
                );
                outcomes.insert(j.id, Outcome::Skipped(d.clone()));
                continue;
            }
            let ready = pending[i]
                .deps
                .iter()
                .all(|d| matches!(outcomes.get(d), Some(Outcome::Ran(_) | Outcome::Reused)));
            if !ready {
                i += 1;
                continue;
            }
            let definition = serde_json::to_string_pretty(&pending[i].definition)?;
            let reusable = pending[i].done.exists()
                && std::fs::read_to_string(record(&pending[i])).is_ok_and(|s| s == definition);
            if reusable {
                let j = pending.remove(i);
                finished += 1;
                done_cost += j.cost;
                eprintln!("[{finished:>2}/{total}] reused   {}", j.label);
                outcomes.insert(j.id, Outcome::Reused);
                continue;
            }
            if running.len() >= parallel {
                i += 1;
                continue;
            }
            let j = pending.remove(i);
            let _ = std::fs::remove_file(record(&j));
            let ctx = JobContext {
                threads,
                log: state.join(format!("{}.log", j.id)),
            };
            eprintln!(
                "[{:>2}/{total}] start    {}",
                finished + running.len() + 1,
                j.label
            );
            running.insert(j.id.clone(), (j.label.clone(), j.cost, Instant::now()));
            let tx = tx.clone();
            let rec = record(&j);
            let (id, work, def) = (j.id.clone(), j.work, definition);
            std::thread::spawn(move || {
                let result = work(&ctx).and_then(|()| write_atomic(&rec, def.as_bytes()));
                let _ = tx.send((id, result));
            });
        }
        if running.is_empty() {
            break;
        }
        let (id, result) = rx.recv().expect("a running job reports back");
        let (label, cost, t0) = running.remove(&id).expect("known job");
        let secs = t0.elapsed().as_secs_f64();
        finished += 1;
        done_cost += cost;
        ran_cost += cost;
        let elapsed = started.elapsed().as_secs_f64();
        let eta = if ran_cost > 0.0 {
            let rate = ran_cost / elapsed.max(1e-9);
            format!(" · ETA {}", fmt_duration((total_cost - done_cost) / rate))
        } else {
            String::new()
        };
        match result {
            Ok(()) => {
                eprintln!(
                    "[{finished:>2}/{total}] done     {label} ({}){eta}",
                    fmt_duration(secs)
                );
                outcomes.insert(id, Outcome::Ran(secs));
            }
            Err(e) => {
                eprintln!("[{finished:>2}/{total}] FAILED   {label}: {e:#}");
                outcomes.insert(id, Outcome::Failed(format!("{e:#}")));
            }
        }
    }
    Ok(outcomes)
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
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(6).collect();
    bail!(
        "trainer {} failed ({status}); log {}:\n{}",
        args.first().map_or("", String::as_str),
        log.display(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn dependencies_reuse_and_failures() {
        let dir = tempfile::tempdir().unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let make = |id: &str, deps: &[&str], fail: bool| {
            let order = order.clone();
            let done = dir.path().join(format!("{id}.done"));
            let id2 = id.to_string();
            Job {
                id: id.into(),
                label: id.into(),
                deps: deps.iter().map(|d| d.to_string()).collect(),
                cost: 1.0,
                definition: serde_json::json!({ "id": id }),
                done: done.clone(),
                work: Box::new(move |_| {
                    order.lock().unwrap().push(id2);
                    if fail {
                        bail!("boom");
                    }
                    std::fs::write(done, b"").unwrap();
                    Ok(())
                }),
            }
        };
        let state = dir.path().join("state");
        let jobs = vec![
            make("a", &[], false),
            make("b", &["a"], false),
            make("c", &[], true),
            make("d", &["c"], false),
        ];
        let out = run_jobs(jobs, 2, 2, &state).unwrap();
        assert!(matches!(out["a"], Outcome::Ran(_)) && matches!(out["b"], Outcome::Ran(_)));
        assert!(matches!(out["c"], Outcome::Failed(_)));
        assert_eq!(out["d"], Outcome::Skipped("c".into()));
        let ran = order.lock().unwrap().clone();
        assert!(ran.iter().position(|x| x == "a") < ran.iter().position(|x| x == "b"));
        // Again: a and b are reused, c runs again.
        let jobs = vec![
            make("a", &[], false),
            make("b", &["a"], false),
            make("c", &[], false),
            make("d", &["c"], false),
        ];
        let out = run_jobs(jobs, 2, 2, &state).unwrap();
        assert_eq!(out["a"], Outcome::Reused);
        assert_eq!(out["b"], Outcome::Reused);
        assert!(matches!(out["d"], Outcome::Ran(_)));
        assert_eq!(fmt_duration(3725.0), "1h02m");
        assert_eq!(fmt_duration(250.0), "4m10s");
    }
}
