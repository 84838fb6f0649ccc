//! The xtask binary's command line: help texts, and the errors it gives before any work.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("xtask runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_names_the_tasks_and_the_shared_filesystem() {
    let out = xtask(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for task in ["bench", "repro", "sweep"] {
        assert!(text.contains(task), "{text}");
    }
    assert!(
        !text.contains("run-job"),
        "the job runner is hidden: {text}"
    );
    for task in ["repro", "sweep"] {
        let out = xtask(&[task, "--help"]);
        let text = String::from_utf8_lossy(&out.stdout);
        for needle in [
            "--executor",
            "--partition",
            "--sbatch-arg",
            "--dry-run",
            "every node",
        ] {
            assert!(
                text.contains(needle),
                "{task} --help lacks {needle}: {text}"
            );
        }
    }
}

#[test]
fn executor_options_are_checked_before_any_work() {
    let out = xtask(&[
        "repro",
        "--tiny",
        "--executor",
        "slurm",
        "--trainer",
        "/bin/sh",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--executor slurm needs --out"),
        "{}",
        stderr(&out)
    );

    let out = xtask(&["repro", "--tiny", "--partition", "gpu"]);
    assert!(
        stderr(&out).contains("--partition applies to --executor slurm"),
        "{}",
        stderr(&out)
    );
    let out = xtask(&["sweep", "/r", "--executor", "slurm", "--jobs", "2"]);
    assert!(
        stderr(&out).contains("--jobs applies to the local executor"),
        "{}",
        stderr(&out)
    );
    let out = xtask(&["sweep", "/no/such/run", "--trainer", "/bin/sh"]);
    assert!(
        stderr(&out).contains("is not a finished run"),
        "{}",
        stderr(&out)
    );
    let out = xtask(&["sweep", "/r", "--criteria", "l7", "--trainer", "/bin/sh"]);
    assert!(
        stderr(&out).contains("unknown criterion l7"),
        "{}",
        stderr(&out)
    );
}

/// `xtask run-job` of job `j` in `state` with a trainer that always fails, given `spec`.
fn run_job(state: &str, spec: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["run-job", "--trainer", "/bin/false", "--state", state, "j"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(spec).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_job_runner_refuses_a_bad_spec() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let out = run_job(state, b"{\"kind\":\"nothing\"}");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("spec"), "{}", stderr(&out));

    // A failing trainer: the job fails, its log says so, and no record is written.
    let out = run_job(state, b"{\"kind\":\"trainer\",\"args\":[\"eval\"]}");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("trainer eval failed"),
        "{}",
        stderr(&out)
    );
    assert!(dir.path().join("j.log").is_file());
    assert!(!dir.path().join("j.json").exists());
}
