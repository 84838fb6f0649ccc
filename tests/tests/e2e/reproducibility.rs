//! Same seed ⇒ same bits; different seed ⇒ different weights; interrupted + resumed ⇒ same bits.

use filterlab_tests::{metrics_without_timings, quick_run, read_json, trainer};

fn hash(run: &std::path::Path) -> String {
    read_json(&run.join("summary.json"))["weights_sha256"]
        .as_str()
        .expect("hash")
        .to_string()
}

#[test]
fn same_seed_same_bits_different_seed_different_weights() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    quick_run(&a, &["--epochs", "1", "--seed", "3"]);
    quick_run(&b, &["--epochs", "1", "--seed", "3"]);
    quick_run(&c, &["--epochs", "1", "--seed", "4"]);
    assert_eq!(hash(&a), hash(&b));
    assert_eq!(metrics_without_timings(&a), metrics_without_timings(&b));
    assert_ne!(hash(&a), hash(&c));
    let acc = read_json(&a.join("summary.json"))["test_accuracy"]
        .as_f64()
        .unwrap();
    // 1,024 images, one epoch: far above chance (10%) on Fashion-MNIST.
    assert!(acc > 0.5, "accuracy {acc}");
}

#[test]
fn interrupted_and_resumed_run_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (full, part) = (dir.path().join("full"), dir.path().join("part"));
    quick_run(&full, &["--epochs", "2", "--seed", "5"]);
    quick_run(
        &part,
        &["--epochs", "2", "--seed", "5", "--stop-after", "1"],
    );
    assert!(!part.join("summary.json").exists());
    assert!(part.join("checkpoint/state.json").exists());
    trainer(&["train", "--resume", part.to_str().unwrap(), "--quiet"]).unwrap();
    assert_eq!(hash(&full), hash(&part));
    assert_eq!(
        metrics_without_timings(&full),
        metrics_without_timings(&part)
    );
    assert!(
        !part.join("checkpoint").exists(),
        "checkpoint removed at the end"
    );
    // Resuming a finished run changes nothing and succeeds (a resubmitted job must).
    trainer(&["train", "--resume", part.to_str().unwrap(), "--quiet"]).unwrap();
    assert_eq!(hash(&full), hash(&part));
}

#[test]
fn a_run_killed_before_its_first_checkpoint_resumes_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let (full, part) = (dir.path().join("full"), dir.path().join("part"));
    quick_run(&full, &["--epochs", "1", "--seed", "4", "--width", "0.25"]);
    quick_run(&part, &["--epochs", "1", "--seed", "4", "--width", "0.25"]);
    // As if killed during the first epoch: the configuration is there, nothing else.
    for f in ["summary.json", "model.bpk", "metrics.jsonl"] {
        std::fs::remove_file(part.join(f)).unwrap();
    }
    trainer(&["train", "--resume", part.to_str().unwrap(), "--quiet"]).unwrap();
    assert_eq!(hash(&full), hash(&part));
    assert_eq!(
        metrics_without_timings(&full),
        metrics_without_timings(&part)
    );
}

/// Files in a run's `checkpoint/` that its `state.json` does not name: what a kill during a
/// checkpoint write leaves (cleaned up by the next checkpoint).
fn stray_checkpoint_files(run: &std::path::Path) -> usize {
    let dir = run.join("checkpoint");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let named: Vec<String> = std::fs::read_to_string(dir.join("state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| serde_json::from_value(v["files"].clone()).ok())
        .unwrap_or_default();
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "state.json" && !named.contains(n))
        .count()
}

#[test]
fn killed_at_random_moments_and_resumed_until_done_gives_the_same_bits() {
    let dir = tempfile::tempdir().unwrap();
    let (full, killed) = (dir.path().join("full"), dir.path().join("killed"));
    let opts = [
        "--data",
        "sample",
        "--train-limit",
        "2048",
        "--test-limit",
        "256",
        "--epochs",
        "2",
        "--width",
        "0.5",
        "--seed",
        "9",
        "--quiet",
    ];
    let mut args = vec!["train", "--out", full.to_str().unwrap()];
    args.extend(opts);
    trainer(&args).unwrap();

    // Kill the trainer (SIGKILL) again and again, each time resuming, then let it finish.
    // Checkpoints after every step make kills land during checkpoint writes too; the first kill
    // lands before any checkpoint exists.
    let bin = filterlab_tests::trainer_binary();
    let mut rng = params::ParamRng::new(2026, "kill-delays");
    let (mut kills, mut during_writes, mut before_checkpoint) = (0, 0, 0);
    for attempt in 0.. {
        let mut cmd = std::process::Command::new(&bin);
        if attempt == 0 {
            cmd.args(["train", "--out", killed.to_str().unwrap()])
                .args(opts);
        } else {
            cmd.args(["train", "--resume", killed.to_str().unwrap(), "--quiet"]);
        }
        let log = dir.path().join(format!("attempt-{attempt}.log"));
        let mut child = cmd
            .args(["--checkpoint-every", "1"])
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let wait_for = |ready: &dyn Fn() -> bool, child: &mut std::process::Child| {
            while !ready() && child.try_wait().unwrap().is_none() {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        };
        if attempt == 0 {
            // The first kill comes as soon as the run directory holds its configuration, before
            // any checkpoint.
            wait_for(&|| killed.join("config.json").exists(), &mut child);
        } else if attempt <= 3 {
            // The next ones while a checkpoint is being written: as soon as a file appears that
            // the checkpoint's state.json does not name yet.
            wait_for(&|| stray_checkpoint_files(&killed) > 0, &mut child);
        } else if attempt < 12 {
            // Then at random moments once it has made progress (a checkpoint exists), so each
            // resumption goes further however slow the machine is.
            let state = killed.join("checkpoint/state.json");
            let before = std::fs::read(&state).ok();
            wait_for(&|| std::fs::read(&state).ok() != before, &mut child);
            let ms = (rng.unit() * 200.0) as u64;
            std::thread::sleep(std::time::Duration::from_millis(ms));
        } else {
            // Enough: let it finish.
            let status = child.wait().unwrap();
            assert!(
                status.success(),
                "{}",
                std::fs::read_to_string(&log).unwrap()
            );
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "attempt {attempt} failed ({status}): {}",
                std::fs::read_to_string(&log).unwrap()
            );
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        if !killed.join("checkpoint/state.json").exists() {
            before_checkpoint += 1;
        }
        if stray_checkpoint_files(&killed) > 0 {
            during_writes += 1;
        }
    }
    eprintln!(
        "{kills} kills: {before_checkpoint} before the first checkpoint, {during_writes} during a \
         checkpoint write"
    );
    assert!(kills >= 3, "only {kills} kills");
    assert!(before_checkpoint >= 1 && during_writes >= 1);
    assert_eq!(hash(&full), hash(&killed));
    assert_eq!(
        metrics_without_timings(&full),
        metrics_without_timings(&killed)
    );
}

#[test]
fn eval_reproduces_the_final_test_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("r");
    quick_run(&run, &["--epochs", "1", "--width", "0.5"]);
    let result = trainer::eval_run(&trainer::EvalArgs {
        run: run.clone(),
        data: None,
        test_limit: Some(256),
        backend: None,
        json: true,
    })
    .unwrap();
    let summary = read_json(&run.join("summary.json"));
    assert_eq!(result.accuracy, summary["test_accuracy"].as_f64().unwrap());
    assert_eq!(result.examples, 256);
    let total: usize = result.confusion.iter().flatten().sum();
    assert_eq!(total, 256);
    let config = read_json(&run.join("config.json"));
    assert_eq!(config["backend"], "flex");
    assert_eq!(config["data"]["origin"], "sample");
    assert_eq!(config["model"]["arch"], "ref");
}

#[test]
fn data_parallel_workers_are_deterministic_and_agree_with_one_worker() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two_a, two_b) = (
        dir.path().join("one"),
        dir.path().join("two-a"),
        dir.path().join("two-b"),
    );
    let run = |out: &std::path::Path, workers: &str| {
        quick_run(
            out,
            &[
                "--epochs",
                "1",
                "--width",
                "0.5",
                "--seed",
                "9",
                "--workers",
                workers,
            ],
        )
    };
    run(&one, "1");
    run(&two_a, "2");
    run(&two_b, "2");
    // Bit-identical across repetitions.
    assert_eq!(hash(&two_a), hash(&two_b));
    // The same computation summed in another order: equal up to float rounding.
    let summary =
        |r: &std::path::Path, key: &str| read_json(&r.join("summary.json"))[key].as_f64().unwrap();
    for key in ["test_accuracy", "test_loss"] {
        let (a, b) = (summary(&one, key), summary(&two_a, key));
        assert!((a - b).abs() <= 0.02, "{key}: {a} vs {b}");
    }
    assert_eq!(read_json(&two_a.join("config.json"))["workers"], 2);
}
