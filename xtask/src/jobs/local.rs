//! The local runner: independent jobs in parallel on this machine, dependencies respected,
//! the longest chains of work started first, finished jobs with an unchanged definition reused,
//! progress with an ETA.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

use anyhow::Result;

use super::{ExecuteFn, Job, Outcome, Progress, Records, critical_first, failed_dependency};

/// Run `jobs` with `execute`, at most `parallel` at a time, keeping job records in `state`. Each
/// running job gets `max(1, cores / parallel)` threads.
pub fn run_jobs(
    jobs: Vec<Job>,
    parallel: usize,
    cores: usize,
    state: &Path,
    execute: ExecuteFn,
) -> Result<BTreeMap<String, Outcome>> {
    let records = Records::open(state)?;
    // Whenever a slot frees, the ready job with the longest chain of work ahead of it starts.
    let mut pending = critical_first(jobs)?;
    let mut progress = Progress::new(&pending);
    let parallel = parallel.max(1);
    let threads = (cores / parallel).max(1);
    let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut running: BTreeMap<String, (Job, Instant)> = BTreeMap::new();
    let (tx, rx) = mpsc::channel::<(String, Result<()>)>();
    loop {
        // Reuse, skip or start whatever is ready.
        let mut i = 0;
        while i < pending.len() {
            let j = &pending[i];
            if let Some(d) = failed_dependency(j, &outcomes).cloned() {
                let j = pending.remove(i);
                outcomes.insert(j.id.clone(), progress.skipped(&j, &d));
                continue;
            }
            let ready = j
                .deps
                .iter()
                .all(|d| outcomes.get(d).is_some_and(Outcome::succeeded));
            if ready && records.finished(j) {
                let j = pending.remove(i);
                outcomes.insert(j.id.clone(), progress.reused(&j));
                continue;
            }
            if !ready || running.len() >= parallel {
                i += 1;
                continue;
            }
            let j = pending.remove(i);
            records.forget(&j.id);
            progress.say(running.len() + 1, "start", &j.label);
            let (tx, records, execute) = (tx.clone(), records.clone(), execute.clone());
            let (id, spec) = (j.id.clone(), j.spec.clone());
            running.insert(j.id.clone(), (j, Instant::now()));
            std::thread::spawn(move || {
                let result = records.run(&id, &spec, threads, |s, ctx| execute(s, ctx));
                let _ = tx.send((id, result));
            });
        }
        if running.is_empty() {
            break;
        }
        let (id, result) = rx.recv().expect("a running job reports back");
        let (j, t0) = running.remove(&id).expect("known job");
        let secs = t0.elapsed().as_secs_f64();
        let result = result.map_err(|e| format!("{e:#}"));
        outcomes.insert(id, progress.ran(&j.label, "", j.cost, secs, result));
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{JobContext, JobSpec, Needs};
    use anyhow::bail;
    use std::sync::{Arc, Mutex};

    #[test]
    fn dependencies_reuse_and_failures() {
        let dir = tempfile::tempdir().unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let done = |id: &str| dir.path().join(format!("{id}.done"));
        let make = |id: &str, deps: &[&str], fail: bool| Job {
            id: id.into(),
            label: id.into(),
            deps: deps.iter().map(|d| d.to_string()).collect(),
            cost: 1.0,
            needs: Needs::default(),
            // The stand-in executor reads the id, and whether to fail, from the arguments.
            spec: JobSpec::Trainer {
                args: vec![
                    id.to_string(),
                    fail.to_string(),
                    done(id).display().to_string(),
                ],
            },
            done: done(id),
        };
        let executor = || -> ExecuteFn {
            let order = order.clone();
            Arc::new(move |spec: &JobSpec, _: &JobContext| {
                let [id, fail, done] = spec.args() else {
                    bail!("unexpected job");
                };
                order.lock().unwrap().push(id.clone());
                if fail == "true" {
                    bail!("boom");
                }
                std::fs::write(done, b"").unwrap();
                Ok(())
            })
        };
        let state = dir.path().join("state");
        let jobs = vec![
            make("a", &[], false),
            make("b", &["a"], false),
            make("c", &[], true),
            make("d", &["c"], false),
        ];
        let out = run_jobs(jobs, 2, 2, &state, executor()).unwrap();
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
        let out = run_jobs(jobs, 2, 2, &state, executor()).unwrap();
        assert_eq!(out["a"], Outcome::Reused);
        assert_eq!(out["b"], Outcome::Reused);
        assert!(matches!(out["d"], Outcome::Ran(_)));
    }
}
