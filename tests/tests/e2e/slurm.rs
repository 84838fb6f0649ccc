//! The study and a sweep on a real single-node Slurm cluster (`xtask/slurm/local-cluster`): the
//! same verdicts and figures as locally, a cancelled job submitted again and the study
//! completed, Ctrl-C without a terminal, and clear errors without `sbatch` or without a
//! controller. Needs root, slurm-wlm and munge; `.ci/run` installs them and runs this.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use filterlab_tests::{read_json, trainer_binary, xtask_binary};
use serde_json::Value;

/// A running local cluster, stopped when dropped (also when a test panics).
struct Cluster {
    dir: PathBuf,
}

impl Cluster {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../xtask/slurm/local-cluster")
    }

    fn start(dir: &Path) -> Cluster {
        let cluster = Cluster {
            dir: dir.to_path_buf(),
        };
        let out = Command::new(Self::script())
            .arg("start")
            .arg(dir)
            .output()
            .expect("local-cluster runs");
        assert!(
            out.status.success(),
            "local-cluster start failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    fn conf(&self) -> PathBuf {
        self.dir.join("slurm.conf")
    }

    fn stop(&self) {
        let _ = Command::new(Self::script())
            .arg("stop")
            .arg(&self.dir)
            .stderr(Stdio::null())
            .status();
    }

    /// A Slurm client command against this cluster; its standard output.
    fn client(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program)
            .args(args)
            .env("SLURM_CONF", self.conf())
            .output()
            .expect("Slurm client runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `xtask repro --tiny` into `out` with `extra` options and environment.
fn study_command(out: &Path, extra: &[&str], env: &[(&str, &Path)]) -> Command {
    let mut cmd = Command::new(xtask_binary());
    cmd.args(["repro", "--tiny", "--trainer"])
        .arg(trainer_binary())
        .arg("--out")
        .arg(out)
        .args(extra)
        .stdin(Stdio::null());
    cmd.envs(env.iter().copied());
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The Slurm options of the test: one core per job (two jobs at a time on two cores), a fast
/// look at the queue.
const SLURM: &[&str] = &[
    "--executor",
    "slurm",
    "--poll",
    "0.3",
    "--sbatch-arg=--cpus-per-task=1",
    "--on-interrupt",
    "keep",
];

/// What must not depend on where the study ran: every claim (with the output directory written
/// as `OUT`), and every run's weights hash and accuracy.
fn figures(out: &Path) -> (Vec<String>, BTreeMap<String, (Value, Value)>) {
    let summary = read_json(&out.join("summary.json"));
    let claims = summary["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.to_string().replace(&out.display().to_string(), "OUT"))
        .collect();
    let mut runs = BTreeMap::new();
    for e in std::fs::read_dir(out.join("runs")).unwrap() {
        let dir = e.unwrap().path();
        let s = read_json(&dir.join("summary.json"));
        runs.insert(
            dir.file_name().unwrap().to_string_lossy().into_owned(),
            (s["weights_sha256"].clone(), s["test_accuracy"].clone()),
        );
    }
    (claims, runs)
}

/// Assert that two studies have the same figures, naming the first claim or run that differs.
fn assert_same_figures(a: &Path, b: &Path) {
    let ((claims_a, runs_a), (claims_b, runs_b)) = (figures(a), figures(b));
    assert_eq!(claims_a.len(), claims_b.len());
    for (x, y) in claims_a.iter().zip(&claims_b) {
        assert_eq!(
            x,
            y,
            "a claim differs between {} and {}",
            a.display(),
            b.display()
        );
    }
    assert_eq!(runs_a, runs_b);
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < limit, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs a local Slurm cluster (root, slurm-wlm, munge); .ci/run runs it"]
fn slurm_study_matches_local_resumes_and_fails_clearly() {
    // Under target/, not /tmp: the study's directory must not be node-local memory (tmpfs).
    let target = trainer_binary()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let root = tempfile::Builder::new()
        .prefix("slurm-e2e-")
        .tempdir_in(&target)
        .unwrap();
    // munged runs as user munge and must reach its socket below this directory.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = |name: &str| root.path().join(name);

    // The study on this machine, for reference.
    let t0 = Instant::now();
    let local = study_command(&path("local"), &["--jobs", "2"], &[])
        .output()
        .unwrap();
    let local_secs = t0.elapsed().as_secs_f64();
    assert!(path("local/summary.json").is_file(), "{}", stderr(&local));

    let cluster = Cluster::start(&path("cluster"));
    let conf = cluster.conf();
    let env = [("SLURM_CONF", conf.as_path())];

    // A dry run prints every script and the graph, and submits or writes nothing.
    let dry = study_command(&path("dry"), &[SLURM, &["--dry-run"]].concat(), &env)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(text.contains("compare <- train-s1, train-s2\n"), "{text}");
    assert!(text.contains("#SBATCH --dependency=afterok:<train-s1>:<train-s2>\n"));
    assert_eq!(
        text.matches("#!/bin/sh").count(),
        text.matches("# ---- ").count()
    );
    assert!(!path("dry").exists());
    assert!(
        cluster
            .client("squeue", &["-h", "-t", "all"])
            .trim()
            .is_empty()
    );

    // The study on the cluster: the same verdicts, measurements and weights, bit for bit.
    let t0 = Instant::now();
    let slurm = study_command(&path("slurm"), SLURM, &env).output().unwrap();
    let slurm_secs = t0.elapsed().as_secs_f64();
    assert_eq!(
        slurm.status.code(),
        local.status.code(),
        "{}",
        stderr(&slurm)
    );
    assert_same_figures(&path("slurm"), &path("local"));
    let log = std::fs::read_to_string(path("slurm/jobs/compare.log")).unwrap();
    assert!(log.contains("Slurm job"), "{log}");
    eprintln!("tiny study: {local_secs:.0} s locally, {slurm_secs:.0} s on the local cluster");

    // A sweep through the same executor: the same points as on this machine.
    let sweep = |out: &str, extra: &[&str], env: &[(&str, &Path)]| {
        let mut cmd = Command::new(xtask_binary());
        cmd.arg("sweep")
            .arg(path("slurm/runs/ref-s1"))
            .args([
                "--criteria",
                "l1,redundancy",
                "--ratios",
                "0.5",
                "--layers",
                "conv2",
            ])
            .args(["--samples", "64", "--trainer"])
            .arg(trainer_binary())
            .arg("--out")
            .arg(path(out))
            .args(extra)
            .stdin(Stdio::null())
            .envs(env.iter().copied());
        let status = cmd.output().unwrap();
        assert!(status.status.success(), "{}", stderr(&status));
        read_json(&path(out).join("sweep.json"))["points"].clone()
    };
    assert_eq!(
        sweep("sweep-slurm", SLURM, &env),
        sweep("sweep-local", &[], &[])
    );

    // Kill a running training with scancel and interrupt the study (no terminal: the jobs are
    // kept); the re-run follows what still runs, submits the cancelled job again, and ends
    // with the same figures.
    let resume = path("resume");
    let child = study_command(&resume, SLURM, &env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A training's run directory, from the spec in its script; whether it is checkpointed
    // and unfinished.
    let run_of = |job: &str| {
        let script = std::fs::read_to_string(resume.join(format!("jobs/{job}.sbatch"))).unwrap();
        let spec: Value =
            serde_json::from_str(script.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
        PathBuf::from(spec["out"].as_str().unwrap())
    };
    let checkpointed = |run: &Path| {
        run.join("checkpoint/state.json").is_file() && !run.join("summary.json").is_file()
    };
    // Cancel a running training, after its first checkpoint if one is caught there in time.
    let t0 = Instant::now();
    let (slurm_id, job, resumable) = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "no training was cancelled while it ran"
        );
        let queue = cluster.client("squeue", &["-h", "-t", "R", "-o", "%i %j"]);
        let running: Vec<(String, String)> = queue
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter_map(|(id, name)| Some((id.to_string(), name.strip_prefix("filterlab-")?)))
            .filter(|(_, job)| job.starts_with("train-"))
            .map(|(id, job)| (id, job.to_string()))
            .collect();
        let patient = t0.elapsed() < Duration::from_secs(20);
        let pick = running
            .iter()
            .find(|(_, job)| checkpointed(&run_of(job)))
            .or(if patient { None } else { running.first() });
        if let Some((id, job)) = pick {
            cluster.client("scancel", &[id]);
            let mut state = String::new();
            wait_until("the cancelled job ends", Duration::from_secs(60), || {
                state = cluster.client("squeue", &["-h", "-t", "all", "-j", id, "-o", "%T"]);
                ["CANCELLED", "COMPLETED", "FAILED"].contains(&state.trim())
            });
            if state.trim() == "CANCELLED" {
                break (id.clone(), job.clone(), checkpointed(&run_of(job)));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let interrupted = child.wait_with_output().unwrap();
    let err = stderr(&interrupted);
    assert!(!interrupted.status.success());
    assert!(
        err.contains("interrupted") && err.contains("scancel"),
        "{err}"
    );
    let again = study_command(&resume, SLURM, &env).output().unwrap();
    assert_eq!(
        again.status.code(),
        local.status.code(),
        "{}",
        stderr(&again)
    );
    let log = std::fs::read_to_string(resume.join(format!("jobs/{job}.log"))).unwrap();
    if resumable {
        // Cancelled after a checkpoint: the job submitted again resumed from it.
        assert!(log.contains("--resume"), "{log}");
    }
    eprintln!(
        "cancelled {job} (Slurm job {slurm_id}) {} its first checkpoint; the re-run followed {} \
         jobs still queued and submitted the rest again",
        if resumable { "after" } else { "before" },
        stderr(&again).matches("] follow ").count()
    );
    assert_same_figures(&resume, &path("local"));
    let outcomes = read_json(&resume.join("summary.json"))["job_outcomes"].clone();
    assert!(
        outcomes[&job].as_str().unwrap().starts_with("ran"),
        "{job}: {outcomes}"
    );
    assert!(
        cluster
            .client("squeue", &["-h", "-t", "PD,R,CG"])
            .trim()
            .is_empty(),
        "jobs left behind"
    );

    // Without sbatch on PATH, and without a controller: clear errors, quickly.
    let no_path = study_command(&path("nopath"), SLURM, &env)
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert!(
        stderr(&no_path).contains("sbatch is not on PATH"),
        "{}",
        stderr(&no_path)
    );
    cluster.stop();
    let t0 = Instant::now();
    let down = study_command(&path("down"), SLURM, &env).output().unwrap();
    assert_eq!(down.status.code(), Some(1));
    let err = stderr(&down);
    assert!(
        err.contains("the Slurm controller does not answer")
            && err.contains("Unable to contact slurm controller"),
        "{err}"
    );
    assert!(t0.elapsed() < Duration::from_secs(30));
}
