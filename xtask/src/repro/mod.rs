//! `cargo xtask repro`: the reproducibility study. It trains and analyses the runs behind each
//! claim with the release `trainer`, evaluates every claim against a stated threshold, and
//! writes `REPORT.md`, `summary.json` and the figures.
//!
//! - [`settings`]: the profiles; [`layout`]: where every output lives;
//! - [`plan`]: the jobs (trainer command lines) and their dependencies;
//! - [`outputs`] and [`results`]: the trainer's outputs, typed and loaded once;
//! - [`stats`] and [`aggregate`]: every aggregate with a seeded bootstrap 95% interval;
//! - [`claims`]: one function per claim; [`charts`]: the study's figures; [`report`]: `REPORT.md`.

pub mod aggregate;
pub mod charts;
pub mod claims;
pub mod findings;
pub mod layout;
pub mod outputs;
pub mod plan;
pub mod report;
pub mod results;
pub mod settings;
pub mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};

pub use claims::{Claim, Verdict};
pub use settings::{Profile, Settings};

use crate::jobs::{Executor, Job, Outcome, Staging};
use crate::write_atomic;
use layout::Layout;
use outputs::TrainerInfo;
use results::Results;

/// Options of the study.
#[derive(Debug, Clone)]
pub struct Options {
    /// Size.
    pub settings: Settings,
    /// Output directory.
    pub out: PathBuf,
    /// Where the jobs run.
    pub executor: Executor,
    /// Backend of every run.
    pub backend: String,
    /// The trainer binary.
    pub trainer: PathBuf,
    /// Deliberately break a claim (to check that failures are reported).
    pub break_claim: Option<String>,
}

/// `YYYYMMDD-HHMMSS` (UTC) of the current time.
pub fn timestamp() -> String {
    utc(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()))
}

/// `secs` since the Unix epoch as a UTC `YYYYMMDD-HHMMSS`.
fn utc(secs: u64) -> String {
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

/// The git commit of the checkout xtask was built from, and whether its tree had changes.
fn source() -> Value {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(crate::root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    json!({
        "commit": git(&["rev-parse", "HEAD"]),
        "dirty": git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty()),
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
    /// Wall time: how long jobs were running, over every invocation that ran them (a resumed
    /// study counts its earlier invocations, not the gaps between them; see
    /// [`crate::jobs::busy_seconds`]).
    pub wall_seconds: f64,
    /// Wall time of the invocation that wrote this summary.
    pub invocation_seconds: f64,
    /// Jobs used without a timing record (run by a version that did not time its jobs): not in
    /// the wall time or the core-hours.
    pub untimed_jobs: usize,
    /// Machine.
    pub machine: Value,
    /// `trainer info`.
    pub trainer: TrainerInfo,
    /// Backend of the runs.
    pub backend: String,
    /// Where the jobs ran.
    pub executor: String,
    /// The source the study was run from: its git commit, and whether the tree had changes.
    pub source: Value,
    /// The planned jobs and their estimated cost.
    pub budget: plan::Budget,
    /// Core-hours the jobs took (seconds × threads), over every invocation that ran them.
    pub measured_core_hours: f64,
    /// Every claim.
    pub claims: Vec<Claim>,
    /// Every aggregate, with its bootstrap 95% interval.
    pub aggregates: aggregate::Aggregates,
    /// How every job ended.
    pub job_outcomes: BTreeMap<String, String>,
    /// Whether every claim passed.
    pub all_passed: bool,
}

/// `trainer info` of the binary at `trainer`.
fn trainer_info(trainer: &std::path::Path) -> Result<TrainerInfo> {
    let out = std::process::Command::new(trainer)
        .arg("info")
        .output()
        .with_context(|| format!("cannot run {}", trainer.display()))?;
    serde_json::from_slice(&out.stdout).context("trainer info printed unexpected JSON")
}

/// The backends of the study: `backend` first, then, for the cross-backend claim, every other
/// backend compiled into the trainer.
fn study_backends(info: &TrainerInfo, backend: &str) -> Result<Vec<String>> {
    if !info.backends.iter().any(|b| b == backend) {
        bail!(
            "the trainer was built without the {backend} backend (it has {}); pass --backend one \
             of those or build with --features {backend}",
            info.backends.join(", ")
        );
    }
    let others = info.backends.iter().filter(|b| *b != backend).cloned();
    Ok(std::iter::once(backend.to_string()).chain(others).collect())
}

/// The study ready to run: its jobs, and what they run with.
struct Prepared {
    /// The options, with the output directory and data as the jobs see them.
    o: Options,
    info: TrainerInfo,
    backends: Vec<String>,
    jobs: Vec<Job>,
    staging: Staging,
}

/// Check the trainer, stage what the jobs need (with `write`; a dry run only decides paths)
/// and plan the jobs.
fn prepare(o: &Options, write: bool) -> Result<Prepared> {
    let info = trainer_info(&o.trainer)?;
    let backends = study_backends(&info, &o.backend)?;
    let staging = o
        .executor
        .prepare(&o.out, &o.trainer, Some(&o.settings.data), write)?;
    let mut o = o.clone();
    if let Some(s) = &staging.slurm {
        o.out = s.out.clone();
    }
    if let Some(data) = &staging.data {
        o.settings.data = data.clone();
    }
    let others: Vec<&str> = backends[1..].iter().map(String::as_str).collect();
    let jobs = plan::plan(&o, &others);
    Ok(Prepared {
        o,
        info,
        backends,
        jobs,
        staging,
    })
}

/// What `--dry-run` prints: the sbatch script of every job and the dependency graph.
pub fn dry_run(o: &Options) -> Result<String> {
    let p = prepare(o, false)?;
    let layout = Layout {
        out: p.o.out.clone(),
    };
    let budget = plan::budget(&p.jobs);
    let others: Vec<&str> = p.backends[1..].iter().map(String::as_str).collect();
    let table: String = plan::budget_table(&p.o, &others)
        .lines()
        .map(|l| format!("# {l}\n"))
        .collect();
    let script = p.o.executor.dry_run(p.jobs, &layout.jobs(), &p.staging)?;
    Ok(format!(
        "# budget: {} jobs, about {:.2} core-hours\n{table}{script}",
        budget.jobs, budget.core_hours
    ))
}

/// Run the study.
pub fn run(o: &Options) -> Result<StudySummary> {
    let started = Instant::now();
    let started_at = timestamp();
    // The source as it is when the jobs are planned, not after a night of running them.
    let source = source();
    let Prepared {
        o,
        info,
        backends,
        jobs,
        staging,
    } = prepare(o, true)?;
    std::fs::create_dir_all(&o.out)
        .with_context(|| format!("cannot create {}", o.out.display()))?;
    let backends: Vec<&str> = backends.iter().map(String::as_str).collect();
    eprintln!(
        "reproducibility study, {:?} profile: {} on {}, {}; writing {}",
        o.settings.profile,
        o.settings.data,
        o.backend,
        o.executor,
        o.out.display()
    );
    let layout = Layout { out: o.out.clone() };
    let budget = plan::budget(&jobs);
    match &o.executor {
        Executor::Local { parallel, cores } => eprintln!(
            "budget: {} jobs, about {:.2} core-hours (about {} on {} cores)",
            budget.jobs,
            budget.core_hours,
            crate::jobs::fmt_duration(
                budget.core_hours * 3600.0 / (*parallel.min(cores)).max(1) as f64
            ),
            cores
        ),
        Executor::Slurm(_) => eprintln!(
            "budget: {} jobs, about {:.2} core-hours",
            budget.jobs, budget.core_hours
        ),
    }
    eprint!("{}", plan::budget_table(&o, &backends[1..]));
    let outcomes = o.executor.run(jobs, &layout.jobs(), &staging)?;
    let results = Results::load(&layout, &o.settings, &outcomes, &backends)?;
    let aggregates = aggregate::Aggregates::new(&o.settings, &results);
    let claims = claims::evaluate(&o.settings, &results, &aggregates, &backends);
    charts::draw(&layout, &o.settings, &aggregates)?;
    // Every job whose output the study used, timed when it ran, in this invocation or an
    // earlier one that was interrupted and resumed.
    let records = crate::jobs::Records::at(&layout.jobs());
    let used: Vec<&String> = outcomes
        .iter()
        .filter(|(_, x)| x.succeeded())
        .map(|(k, _)| k)
        .collect();
    let timings: Vec<crate::jobs::Timing> = used.iter().filter_map(|k| records.timing(k)).collect();
    let untimed_jobs = used.len() - timings.len();
    let measured_core_hours = timings.iter().map(|t| t.core_hours()).sum::<f64>();
    let all_passed = claims.iter().all(|c| c.verdict != Verdict::Fail)
        && claims.iter().any(|c| c.verdict == Verdict::Pass)
        && outcomes.values().all(Outcome::succeeded);
    let summary = StudySummary {
        profile: o.settings.profile,
        settings: o.settings.clone(),
        // A resumed study started when its first job did.
        started: timings
            .iter()
            .map(|t| t.finished_unix - t.seconds)
            .min_by(f64::total_cmp)
            .map_or(started_at, |s| utc(s.max(0.0) as u64)),
        wall_seconds: crate::jobs::busy_seconds(&timings),
        invocation_seconds: started.elapsed().as_secs_f64(),
        untimed_jobs,
        machine: machine(),
        trainer: info,
        backend: o.backend.clone(),
        executor: o.executor.to_string(),
        source,
        job_outcomes: outcomes
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
        budget,
        measured_core_hours,
        claims,
        aggregates,
        all_passed,
    };
    write_atomic(
        &o.out.join("summary.json"),
        (serde_json::to_string_pretty(&summary)? + "\n").as_bytes(),
    )?;
    let report = report::render(&summary, &results, &layout);
    write_atomic(&o.out.join("REPORT.md"), report.as_bytes())?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let t = timestamp();
        assert_eq!(t.len(), 15);
        assert!(t.starts_with("20"));
        assert_eq!(utc(0), "19700101-000000");
        // 2026-12-07 05:55:59 UTC, checked with `date -u -d @1796622959`.
        assert_eq!(utc(1_796_622_959), "20261207-055559");
    }
}
