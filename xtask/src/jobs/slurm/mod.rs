//! The Slurm executor: every job of a graph becomes one `sbatch` submission that waits for its
//! dependencies (`afterok`), runs the job runner (this xtask binary, staged under the output
//! directory with the trainer) on a node, and keeps the same job records as the local runner.
//! Progress comes from polling `squeue` (clusters without accounting have no `sacct`).
//!
//! A re-run with the same output directory reuses finished jobs, follows jobs an earlier run
//! left queued or running (after an interrupt), and submits the rest again; a training that
//! Slurm killed resumes from its checkpoint.

pub mod queue;
pub mod script;
pub mod stage;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use super::{Job, Outcome, Progress, Records, failed_dependency, log_tail, ordered};
use crate::write_atomic;
use queue::{Queued, SQUEUE_FORMAT, State};
pub use stage::Staged;

/// What to do with submitted jobs when the study is interrupted (Ctrl-C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnInterrupt {
    /// Ask in a terminal; without one, keep them.
    Ask,
    /// Cancel them (`scancel`).
    Cancel,
    /// Leave them to run; a re-run follows them.
    Keep,
}

/// How jobs are submitted to a Slurm cluster.
#[derive(Debug, Clone)]
pub struct Slurm {
    /// `--partition` of every job.
    pub partition: Option<String>,
    /// `--account` of every job.
    pub account: Option<String>,
    /// `--time` limit of every job.
    pub time: Option<String>,
    /// More `sbatch` arguments, given before the script (they override its directives).
    pub sbatch_args: Vec<String>,
    /// Shell lines every job runs first (e.g. `module load …`).
    pub setup: Vec<String>,
    /// What an interrupt does.
    pub on_interrupt: OnInterrupt,
    /// How often to ask `squeue`.
    pub poll: Duration,
    /// The job runner to stage: this xtask binary.
    pub runner: PathBuf,
}

impl std::fmt::Display for Slurm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "on Slurm")?;
        if let Some(p) = &self.partition {
            write!(f, ", partition {p}")?;
        }
        if let Some(a) = &self.account {
            write!(f, ", account {a}")?;
        }
        Ok(())
    }
}

/// The Slurm client commands the executor runs.
const CLIENTS: [&str; 4] = ["sbatch", "squeue", "scancel", "sinfo"];

/// How long `squeue` may fail in a row before the executor gives up.
const UNREACHABLE_LIMIT: Duration = Duration::from_secs(300);

/// A job handed to Slurm.
struct Submitted {
    slurm_id: String,
    running_since: Option<Instant>,
}

impl Slurm {
    /// Check that jobs can be submitted from here and stage what they need under `out` (see
    /// [`stage::stage`]); with `write` false only decide the paths.
    pub fn stage(
        &self,
        out: &Path,
        trainer: &Path,
        data: Option<&str>,
        write: bool,
    ) -> Result<Staged> {
        if !write {
            return stage::paths(out, data);
        }
        for client in CLIENTS {
            if on_path(client).is_none() {
                bail!(
                    "{client} is not on PATH: --executor slurm runs where Slurm jobs are \
                     submitted (a cluster's login node), with Slurm's client commands ({}) on PATH",
                    CLIENTS.join(", ")
                );
            }
        }
        let partitions = slurm("sinfo", ["--noheader", "--format=%P"])
            .context("the Slurm controller does not answer")?;
        if let Some(p) = &self.partition {
            let known: Vec<&str> = partitions
                .split_whitespace()
                .map(|p| p.trim_end_matches('*'))
                .collect();
            if !known.contains(&p.as_str()) {
                bail!(
                    "--partition {p}: the cluster has the partitions {}",
                    known.join(", ")
                );
            }
        }
        let staged = stage::stage(out, trainer, &self.runner, data)?;
        eprintln!(
            "staged the trainer, the job runner{} under {} ({}); every node must see it",
            if staged.data.as_deref() != data {
                " and the data"
            } else {
                ""
            },
            staged.out.join("slurm").display(),
            stage::filesystem(&staged.out).unwrap_or_else(|| "unknown filesystem".into())
        );
        Ok(staged)
    }

    /// The dependency graph and every job's sbatch script, as a dry run prints them.
    pub fn dry_run(&self, jobs: Vec<Job>, state: &Path, staged: &Staged) -> Result<String> {
        let jobs = ordered(jobs)?;
        let records = Records::at(state);
        let reused: BTreeSet<&str> = jobs
            .iter()
            .filter(|j| records.finished(j))
            .map(|j| j.id.as_str())
            .collect();
        let mut text = format!(
            "# {} jobs ({} finished earlier with the same definition: not submitted)\n\
             # dependency graph: JOB <- the jobs it waits for\n",
            jobs.len(),
            reused.len()
        );
        for j in &jobs {
            let mark = if reused.contains(j.id.as_str()) {
                " (finished)"
            } else {
                ""
            };
            let deps = if j.deps.is_empty() {
                String::new()
            } else {
                format!(" <- {}", j.deps.join(", "))
            };
            text += &format!("{}{mark}{deps}\n", j.id);
        }
        for j in jobs.iter().filter(|j| !reused.contains(j.id.as_str())) {
            // Dependencies that will be submitted are named by placeholders; finished ones
            // are not waited for.
            let after: Vec<String> = j
                .deps
                .iter()
                .filter(|d| !reused.contains(d.as_str()))
                .map(|d| format!("<{d}>"))
                .collect();
            text += &format!(
                "\n# ---- {}: {}\n{}",
                j.id,
                self.sbatch_command(&records.file(&j.id, "sbatch"))
                    .join(" "),
                script::script(j, &after, self, staged, &records)?
            );
        }
        Ok(text)
    }

    /// Submit `jobs` and follow them until every one has ended; records and logs in `state`.
    pub fn run(
        &self,
        jobs: Vec<Job>,
        state: &Path,
        staged: &Staged,
    ) -> Result<BTreeMap<String, Outcome>> {
        let jobs = ordered(jobs)?;
        let records = Records::open(state)?;
        let interrupt = Interrupt::install()?;
        let mut progress = Progress::new(&jobs);
        let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
        let earlier = self.earlier_submissions(&jobs, &records)?;
        let mut submitted: BTreeMap<String, Submitted> = BTreeMap::new();
        let mut adopted: BTreeSet<String> = BTreeSet::new();
        // Finished jobs whose dependencies run again: reused once those succeed, as locally;
        // with the Slurm jobs they wait for in their stead.
        let mut waiting: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for job in &jobs {
            if interrupt.is_set() {
                return self.interrupted(submitted.values().map(|s| s.slurm_id.clone()).collect());
            }
            let mut after: Vec<String> = Vec::new();
            for d in &job.deps {
                match (submitted.get(d), waiting.get(d)) {
                    (Some(s), _) => after.push(s.slurm_id.clone()),
                    (None, Some(w)) => after.extend(w.iter().cloned()),
                    (None, None) => {}
                }
            }
            after.sort();
            after.dedup();
            if records.finished(job) {
                if after.is_empty() {
                    outcomes.insert(job.id.clone(), progress.reused(job));
                } else {
                    waiting.insert(job.id.clone(), after);
                }
                continue;
            }
            if let Some(id) = earlier.get(&job.id) {
                let deps_stand = job
                    .deps
                    .iter()
                    .all(|d| outcomes.contains_key(d) || adopted.contains(d));
                if deps_stand {
                    progress.say(
                        0,
                        "follow",
                        &format!("{} (slurm {id}, queued by an earlier run)", job.label),
                    );
                    adopted.insert(job.id.clone());
                    submitted.insert(job.id.clone(), Submitted::new(id));
                    continue;
                }
                // Queued by an earlier run after dependencies that run again now: replace it.
                cancel(std::slice::from_ref(id));
            }
            records.forget(&job.id);
            let id = self.submit(job, &after, staged, &records).map_err(|e| {
                let ids: Vec<&str> = submitted.values().map(|s| s.slurm_id.as_str()).collect();
                if ids.is_empty() {
                    e
                } else {
                    e.context(format!(
                        "the {} jobs submitted before go on ({}); re-run to follow them, or \
                         cancel them with `scancel {}`",
                        ids.len(),
                        ids.join(" "),
                        ids.join(" ")
                    ))
                }
            })?;
            progress.say(0, "queued", &format!("{} (slurm {id})", job.label));
            submitted.insert(job.id.clone(), Submitted::new(&id));
        }

        let mut status = String::new();
        let mut unreachable: Option<Instant> = None;
        loop {
            let active: Vec<String> = jobs
                .iter()
                .filter(|j| !outcomes.contains_key(&j.id))
                .filter_map(|j| submitted.get(&j.id).map(|s| s.slurm_id.clone()))
                .collect();
            let queued = if active.is_empty() {
                Some(BTreeMap::new())
            } else {
                match self.squeue(&active) {
                    Ok(q) => {
                        unreachable = None;
                        Some(q)
                    }
                    Err(e) => {
                        let since = *unreachable.get_or_insert_with(Instant::now);
                        if since.elapsed() > UNREACHABLE_LIMIT {
                            return Err(e.context(format!(
                                "squeue has failed for {}; the jobs may still run: re-run the \
                                 same command to follow them",
                                super::fmt_duration(since.elapsed().as_secs_f64())
                            )));
                        }
                        eprintln!("warning: {e:#} (retrying)");
                        None
                    }
                }
            };
            if let Some(queued) = queued {
                let mut doomed = Vec::new();
                for job in &jobs {
                    if outcomes.contains_key(&job.id) {
                        continue;
                    }
                    if let Some(d) = failed_dependency(job, &outcomes).cloned() {
                        // A dependent of a failed job: Slurm would keep it pending forever
                        // on clusters that do not cancel such jobs themselves.
                        doomed.extend(submitted.get(&job.id).map(|s| s.slurm_id.clone()));
                        outcomes.insert(job.id.clone(), progress.skipped(job, &d));
                    } else if waiting.contains_key(&job.id) {
                        if job
                            .deps
                            .iter()
                            .all(|d| outcomes.get(d).is_some_and(Outcome::succeeded))
                        {
                            outcomes.insert(job.id.clone(), progress.reused(job));
                        }
                    } else if let Some(s) = submitted.get_mut(&job.id)
                        && let Some(outcome) =
                            self.follow(job, s, queued.get(&s.slurm_id), &records, &mut progress)
                    {
                        outcomes.insert(job.id.clone(), outcome);
                    }
                }
                cancel(&doomed);
            }
            if outcomes.len() == jobs.len() {
                break;
            }
            let line = status_line(&jobs, &outcomes, &submitted);
            if line != status {
                eprintln!("{line}{}", progress.eta_text());
                status = line;
            }
            if interrupt.wait(self.poll) {
                let active = submitted
                    .iter()
                    .filter(|(id, _)| !outcomes.contains_key(*id))
                    .map(|(_, s)| s.slurm_id.clone())
                    .collect();
                return self.interrupted(active);
            }
        }
        Ok(outcomes)
    }

    /// Follow one submitted job: its outcome once it has ended.
    fn follow(
        &self,
        job: &Job,
        s: &mut Submitted,
        queued: Option<&Queued>,
        records: &Records,
        progress: &mut Progress,
    ) -> Option<Outcome> {
        let note = format!(" (slurm {})", s.slurm_id);
        let ran = |s: &Submitted, q: Option<&Queued>| {
            q.and_then(|q| q.seconds)
                .or_else(|| s.running_since.map(|t| t.elapsed().as_secs_f64()))
                .unwrap_or(0.0)
        };
        let result = match queued.map(|q| &q.state) {
            Some(State::Pending) => return None,
            Some(State::Running) => {
                if s.running_since.is_none() {
                    s.running_since = Some(Instant::now());
                    progress.say(0, "running", &format!("{}{note}", job.label));
                }
                return None;
            }
            Some(State::Completed) | None if records.finished(job) => Ok(()),
            Some(State::Completed) => {
                Err(self.failure(job, s, "COMPLETED without a record", records))
            }
            None => Err(self.failure(job, s, "is no longer listed by squeue", records)),
            Some(State::Ended(state)) => {
                let reason = queued.map_or("None", |q| q.reason.as_str());
                let what = if reason == "None" {
                    state.clone()
                } else {
                    format!("{state} ({reason})")
                };
                Err(self.failure(job, s, &what, records))
            }
        };
        Some(progress.ran(&job.label, &note, job.cost, ran(s, queued), result))
    }

    /// What a failed job's outcome says: its Slurm id and state, its command and its log's end.
    fn failure(&self, job: &Job, s: &Submitted, what: &str, records: &Records) -> String {
        let log = records.log(&job.id);
        format!(
            "Slurm job {} {what}: {}; log {}:\n{}",
            s.slurm_id,
            job.spec.command(),
            log.display(),
            log_tail(&log, 8)
        )
    }

    /// Submit `job` after the Slurm jobs `after`; its Slurm id.
    fn submit(
        &self,
        job: &Job,
        after: &[String],
        staged: &Staged,
        records: &Records,
    ) -> Result<String> {
        let path = records.file(&job.id, "sbatch");
        let text = script::script(job, after, self, staged, records)?;
        write_atomic(&path, text.as_bytes())?;
        let args = self.sbatch_command(&path);
        let out =
            slurm(&args[0], &args[1..]).with_context(|| format!("cannot submit {}", job.id))?;
        let id = queue::parse_parsable(&out)?;
        write_atomic(&records.file(&job.id, "submitted"), id.as_bytes())?;
        Ok(id)
    }

    /// `sbatch --parsable EXTRA… SCRIPT`.
    fn sbatch_command(&self, script: &Path) -> Vec<String> {
        let mut args = vec!["sbatch".to_string(), "--parsable".to_string()];
        args.extend(self.sbatch_args.iter().cloned());
        args.push(script.display().to_string());
        args
    }

    /// What `squeue` knows about the Slurm jobs `ids` (jobs it has forgotten are absent).
    fn squeue(&self, ids: &[String]) -> Result<BTreeMap<String, Queued>> {
        let jobs = format!("--jobs={}", ids.join(","));
        let format = format!("--format={SQUEUE_FORMAT}");
        match slurm("squeue", ["--noheader", "--states=all", &jobs, &format]) {
            Ok(text) => Ok(queue::parse_squeue(&text)),
            // Every one of them is forgotten.
            Err(e) if format!("{e}").contains("Invalid job id") => Ok(BTreeMap::new()),
            Err(e) => Err(e),
        }
    }

    /// Jobs an earlier run submitted that are still queued or running with the script this run
    /// would follow, by job id.
    fn earlier_submissions(
        &self,
        jobs: &[Job],
        records: &Records,
    ) -> Result<BTreeMap<String, String>> {
        let ids: BTreeMap<String, String> = jobs
            .iter()
            .filter(|j| !records.finished(j))
            .filter_map(|j| {
                let id = std::fs::read_to_string(records.file(&j.id, "submitted")).ok()?;
                Some((id.trim().to_string(), j.id.clone()))
            })
            .collect();
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let queued = self.squeue(&ids.keys().cloned().collect::<Vec<_>>())?;
        Ok(ids
            .into_iter()
            .filter(|(slurm_id, job)| {
                queued.get(slurm_id).is_some_and(|q| {
                    !q.state.is_final() && Path::new(&q.command) == records.file(job, "sbatch")
                })
            })
            .map(|(slurm_id, job)| (job, slurm_id))
            .collect())
    }

    /// After an interrupt: cancel or keep the jobs still queued or running, as
    /// `--on-interrupt` says, and stop with an error that says which.
    fn interrupted(&self, mut ids: Vec<String>) -> Result<BTreeMap<String, Outcome>> {
        ids.sort_by_key(|id| id.parse::<u64>().unwrap_or(u64::MAX));
        if ids.is_empty() {
            bail!("interrupted");
        }
        let list = ids.join(" ");
        let cancel_them = match self.on_interrupt {
            OnInterrupt::Cancel => true,
            OnInterrupt::Keep => false,
            OnInterrupt::Ask => {
                std::io::stdin().is_terminal() && {
                    eprint!(
                        "\ninterrupted: cancel the {} Slurm jobs still queued or running ({list})? \
                         [y/N] ",
                        ids.len()
                    );
                    let _ = std::io::stderr().flush();
                    let mut answer = String::new();
                    let _ = std::io::stdin().lock().read_line(&mut answer);
                    answer.trim().eq_ignore_ascii_case("y")
                        || answer.trim().eq_ignore_ascii_case("yes")
                }
            }
        };
        if cancel_them {
            cancel(&ids);
            bail!("interrupted; cancelled the Slurm jobs {list}");
        }
        bail!(
            "interrupted; the Slurm jobs {list} go on: re-run the same command to follow them and \
             collect the results, or cancel them with `scancel {list}`"
        )
    }
}

impl Submitted {
    fn new(slurm_id: &str) -> Self {
        Submitted {
            slurm_id: slurm_id.to_string(),
            running_since: None,
        }
    }
}

/// `slurm: 3 done · 2 running (12 13) · 18 pending · 0 failed`.
fn status_line(
    jobs: &[Job],
    outcomes: &BTreeMap<String, Outcome>,
    submitted: &BTreeMap<String, Submitted>,
) -> String {
    let failed = outcomes.values().filter(|o| !o.succeeded()).count();
    let running: Vec<&str> = jobs
        .iter()
        .filter(|j| !outcomes.contains_key(&j.id))
        .filter_map(|j| submitted.get(&j.id))
        .filter(|s| s.running_since.is_some())
        .map(|s| s.slurm_id.as_str())
        .collect();
    let ids = if running.is_empty() {
        String::new()
    } else {
        format!(" ({})", running.join(" "))
    };
    format!(
        "slurm: {} done · {} running{ids} · {} pending · {failed} failed",
        outcomes.len() - failed,
        running.len(),
        jobs.len() - outcomes.len() - running.len(),
    )
}

/// `scancel` the Slurm jobs `ids`; a failure (say, of a job that has just ended) is reported
/// and otherwise ignored.
fn cancel(ids: &[String]) {
    if !ids.is_empty()
        && let Err(e) = slurm("scancel", ids)
    {
        eprintln!("warning: {e:#}");
    }
}

/// Run the Slurm client `program` with `args`; its standard output, or an error with its
/// standard error.
fn slurm<I, S>(program: &str, args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow!("{program} is not on PATH"),
            _ => anyhow!("cannot run {program}: {e}"),
        })?;
    if !status.success() {
        bail!(
            "{program} failed ({status}): {}",
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&stdout).into_owned())
}

/// Where `program` is on PATH.
fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Ctrl-C while jobs are followed: the first sets a flag, a second one ends the process. The
/// default handling comes back when this is dropped.
struct Interrupt {
    flag: Arc<AtomicBool>,
    handlers: Vec<signal_hook::SigId>,
}

impl Interrupt {
    fn install() -> Result<Self> {
        use signal_hook::consts::SIGINT;
        let flag = Arc::new(AtomicBool::new(false));
        let handlers = vec![
            signal_hook::flag::register_conditional_default(SIGINT, flag.clone())
                .context("cannot handle Ctrl-C")?,
            signal_hook::flag::register(SIGINT, flag.clone()).context("cannot handle Ctrl-C")?,
        ];
        Ok(Interrupt { flag, handlers })
    }

    fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Wait `d`, or less if interrupted; whether interrupted.
    fn wait(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self.is_set() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
        }
        self.is_set()
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        for id in self.handlers.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
