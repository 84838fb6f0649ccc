//! The binary's exit status and error output.

use std::process::Command;

fn trainer(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(args)
        .output()
        .expect("trainer runs")
}

#[test]
fn help_and_version() {
    let out = trainer(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["train", "eval", "bench"] {
        assert!(text.contains(cmd), "{text}");
    }
    assert!(trainer(&["train", "--help"]).status.success());
    assert!(trainer(&["--version"]).status.success());
}

#[test]
fn errors_exit_non_zero_with_the_chain() {
    let out = trainer(&["eval", "/no/such/run"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: run directory /no/such/run does not exist"),
        "{err}"
    );

    let out = trainer(&["train", "--out", "/tmp/x", "--epochs", "0"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--epochs"));
}

#[test]
fn bench_runs_with_the_smallest_settings() {
    let out = trainer(&[
        "bench",
        "--json",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--batch-size",
        "8",
        "--infer-batches",
        "1",
        "--infer-batch-size",
        "8",
        "--threads",
        "1",
        "--workers",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert!(v["train_images_per_sec"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["infer_images_per_sec"].as_f64().unwrap() > 0.0, "{v}");
}

/// The weights hash of a short two-worker training with `threads` CPU threads.
fn two_worker_run(dir: &std::path::Path, threads: &str) -> serde_json::Value {
    let out_dir = dir.join(format!("t{threads}"));
    let out = trainer(&[
        "train",
        "--data",
        "sample",
        "--train-limit",
        "512",
        "--test-limit",
        "128",
        "--epochs",
        "1",
        "--width",
        "0.25",
        "--workers",
        "2",
        "--threads",
        threads,
        "--quiet",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = std::fs::read(out_dir.join("summary.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&summary).unwrap();
    summary["weights_sha256"].clone()
}

#[test]
fn two_workers_give_the_same_bits_on_one_thread_or_two() {
    let dir = tempfile::tempdir().unwrap();
    let one = two_worker_run(dir.path(), "1");
    assert!(one.is_string(), "{one}");
    assert_eq!(one, two_worker_run(dir.path(), "2"));
}
