//! What Slurm says about jobs: `sbatch --parsable` output and `squeue` lines, parsed.
//!
//! Without accounting there is no `sacct`, so states come from `squeue --states=all`, which
//! lists a finished job for `MinJobAge` (300 s by default) and then forgets it.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

/// The `squeue --format` the parser below reads: job id, state, reason, time used, command
/// (for a batch job, its script). The command goes last: it may contain the separator.
pub const SQUEUE_FORMAT: &str = "%i|%T|%r|%M|%o";

/// Where a job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Waiting for its dependencies or for resources.
    Pending,
    /// Running (or being set up or torn down on its node).
    Running,
    /// Finished with exit code 0.
    Completed,
    /// Ended any other way: `FAILED`, `CANCELLED`, `TIMEOUT`, `NODE_FAIL`, `OUT_OF_MEMORY`, ….
    Ended(String),
}

impl State {
    /// The state of a `%T` (long state name) field.
    pub fn parse(name: &str) -> State {
        match name {
            "PENDING" | "REQUEUED" | "REQUEUE_FED" | "REQUEUE_HOLD" | "RESV_DEL_HOLD"
            | "SUSPENDED" | "STOPPED" | "SPECIAL_EXIT" => State::Pending,
            "RUNNING" | "CONFIGURING" | "COMPLETING" | "RESIZING" | "SIGNALING" | "STAGE_OUT" => {
                State::Running
            }
            "COMPLETED" => State::Completed,
            other => State::Ended(other.to_string()),
        }
    }

    /// Whether the job will not change any more.
    pub fn is_final(&self) -> bool {
        matches!(self, State::Completed | State::Ended(_))
    }
}

/// One job as `squeue` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    /// State.
    pub state: State,
    /// Why it is pending, or why it ended (`None` when there is nothing to say).
    pub reason: String,
    /// Seconds it has run (so far, or in all).
    pub seconds: Option<f64>,
    /// Its command: for a batch job, the path of the script submitted.
    pub command: String,
}

/// `squeue --noheader --format=SQUEUE_FORMAT` output, by Slurm job id. Lines that do not have
/// the expected fields are ignored (`squeue` prints nothing else on stdout).
pub fn parse_squeue(text: &str) -> BTreeMap<String, Queued> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.trim_end().splitn(5, '|');
            let (id, state, reason, time, command) =
                (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
            Some((
                id.trim().to_string(),
                Queued {
                    state: State::parse(state.trim()),
                    reason: reason.trim().to_string(),
                    seconds: parse_time(time.trim()),
                    command: command.to_string(),
                },
            ))
        })
        .collect()
}

/// A Slurm duration, `[days-][hours:]minutes:seconds` (`%M` of `squeue`), in seconds.
pub fn parse_time(s: &str) -> Option<f64> {
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (d.parse::<u64>().ok()?, r),
        None => (0, s),
    };
    let parts: Vec<u64> = rest
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let (h, m, sec) = match parts[..] {
        [m, s] => (0, m, s),
        [h, m, s] => (h, m, s),
        _ => return None,
    };
    Some((((days * 24 + h) * 60 + m) * 60 + sec) as f64)
}

/// The job id in `sbatch --parsable` output (`ID` or `ID;CLUSTER`).
pub fn parse_parsable(text: &str) -> Result<String> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    let id = line.and_then(|l| l.split(';').next()).unwrap_or("");
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch printed {text:?} instead of a job id");
    }
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines() {
        let text = "12|PENDING|Dependency|0:00|/s/jobs/a.sbatch\n\
                    13|RUNNING|None|1:02|/s/jobs/b|c.sbatch\n\
                    14|COMPLETED|None|1-02:03:04|/s/jobs/c.sbatch\n\
                    15|CANCELLED|DependencyNeverSatisfied|0:00|(null)\n\
                    16|TIMEOUT|TimeLimit|10:00|x\n\
                    garbage\n";
        let q = parse_squeue(text);
        assert_eq!(q.len(), 5);
        assert_eq!(q["12"].state, State::Pending);
        assert_eq!(q["12"].reason, "Dependency");
        assert_eq!(q["13"].state, State::Running);
        assert_eq!(q["13"].command, "/s/jobs/b|c.sbatch");
        assert_eq!(q["13"].seconds, Some(62.0));
        assert_eq!(q["14"].state, State::Completed);
        assert_eq!(q["14"].seconds, Some(93_784.0));
        assert_eq!(q["15"].state, State::Ended("CANCELLED".into()));
        assert_eq!(q["15"].reason, "DependencyNeverSatisfied");
        assert!(q["16"].state.is_final() && !q["13"].state.is_final());
        assert_eq!(State::parse("COMPLETING"), State::Running);
        assert_eq!(
            State::parse("OUT_OF_MEMORY"),
            State::Ended("OUT_OF_MEMORY".into())
        );
    }

    #[test]
    fn times_and_job_ids() {
        assert_eq!(parse_time("0:07"), Some(7.0));
        assert_eq!(parse_time("2:00:00"), Some(7200.0));
        assert_eq!(parse_time("INVALID"), None);
        assert_eq!(parse_time("1:2:3:4"), None);
        assert_eq!(parse_parsable("4711\n").unwrap(), "4711");
        assert_eq!(parse_parsable("4711;cluster\n").unwrap(), "4711");
        assert!(parse_parsable("").is_err());
        assert!(parse_parsable("Submitted batch job 4711").is_err());
    }
}
