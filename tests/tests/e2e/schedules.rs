//! Learning-rate schedules: recorded in the run, reported per epoch, and followed to the same
//! bits by a run that is stopped mid-epoch and resumed.

use filterlab_tests::{QUICK, metrics_without_timings, quick_run, read_json, trainer, trainer_err};

fn hash(run: &std::path::Path) -> String {
    read_json(&run.join("summary.json"))["weights_sha256"]
        .as_str()
        .expect("hash")
        .to_string()
}

fn epoch_lrs(run: &std::path::Path) -> Vec<f64> {
    metrics_without_timings(run)
        .iter()
        .map(|m| m["lr"].as_f64().expect("lr in metrics.jsonl"))
        .collect()
}

#[test]
fn a_scheduled_run_stopped_mid_epoch_and_resumed_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (full, part) = (dir.path().join("full"), dir.path().join("part"));
    // 1,024 images in batches of 64: 16 steps per epoch, 48 in all; the warm-up ends in the
    // first epoch, the stops fall inside the first and the second epoch.
    let opts = [
        "--epochs",
        "3",
        "--seed",
        "11",
        "--width",
        "0.5",
        "--lr",
        "0.003",
        "--lr-schedule",
        "linear-warmup(6)+cosine(0.0001)",
    ];
    quick_run(&full, &opts);
    let config = read_json(&full.join("config.json"));
    assert_eq!(
        config["optimizer"]["lr_schedule"], "linear-warmup(6)+cosine(0.0001)",
        "the schedule is recorded"
    );
    let lrs = epoch_lrs(&full);
    assert!(
        lrs[0] < 0.003 && lrs[1] < lrs[0] && lrs[2] < lrs[1],
        "{lrs:?}"
    );
    // Cosine annealing ends one step short of its minimum.
    assert!((lrs[2] - 0.0001).abs() < 1e-5, "{lrs:?}");

    quick_run(
        &part,
        &[&opts[..], &["--stop-after-steps", "9"][..]].concat(),
    );
    let state = read_json(&part.join("checkpoint/state.json"));
    assert_eq!(
        (state["epochs_done"].as_u64(), state["steps_done"].as_u64()),
        (Some(0), Some(9))
    );
    assert!(!part.join("summary.json").exists());
    let run = part.to_str().unwrap();
    trainer(&[
        "train",
        "--resume",
        run,
        "--quiet",
        "--stop-after-steps",
        "27",
    ])
    .unwrap();
    let state = read_json(&part.join("checkpoint/state.json"));
    assert_eq!(
        (state["epochs_done"].as_u64(), state["steps_done"].as_u64()),
        (Some(1), Some(11))
    );
    trainer(&["train", "--resume", run, "--quiet"]).unwrap();
    assert_eq!(hash(&full), hash(&part));
    assert_eq!(
        metrics_without_timings(&full),
        metrics_without_timings(&part)
    );
}

#[test]
fn the_constant_schedule_is_the_default_and_keeps_the_learning_rate() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, constant) = (dir.path().join("plain"), dir.path().join("constant"));
    let opts = ["--epochs", "1", "--width", "0.25", "--train-limit", "256"];
    quick_run(&plain, &opts);
    quick_run(
        &constant,
        &[&opts[..], &["--lr-schedule", "constant"][..]].concat(),
    );
    assert_eq!(hash(&plain), hash(&constant));
    assert_eq!(
        read_json(&plain.join("config.json"))["optimizer"]["lr_schedule"],
        "constant"
    );
    assert_eq!(epoch_lrs(&plain), vec![0.001]);
}

#[test]
fn schedules_that_cannot_work_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--out", out.to_str().unwrap()];
        args.extend_from_slice(QUICK);
        args.extend_from_slice(&["--epochs", "1", "--train-limit", "256"]);
        args.extend_from_slice(extra);
        trainer_err(&args)
    };
    let err = train(&["--lr-schedule", "cosine(-1)"]);
    assert!(
        err.contains("'cosine(-1)' is not a learning-rate schedule")
            && err.contains("MIN_LR must be a learning rate ≥ 0"),
        "{err}"
    );
    let err = train(&["--lr-schedule", "warmup(5)"]);
    assert!(err.contains("unknown phase 'warmup'"), "{err}");
    // 256 images in batches of 64: 4 steps.
    let err = train(&["--lr-schedule", "linear-warmup(4)+cosine"]);
    assert!(
        err.contains("warm-up of 4 steps is not shorter than the run (4 steps)"),
        "{err}"
    );
    let err = train(&["--lr-schedule", "cosine", "--lr", "1.5"]);
    assert!(
        err.contains("--lr-schedule cosine cannot be used with --lr 1.5")
            && err.contains("at most 1"),
        "{err}"
    );
    assert!(!out.join("config.json").exists(), "nothing written");

    quick_run(
        &out,
        &["--epochs", "1", "--width", "0.25", "--train-limit", "64"],
    );
    let run = out.to_str().unwrap();
    let err = trainer_err(&["train", "--resume", run, "--lr-schedule", "cosine"]);
    assert!(err.contains("--lr-schedule"), "{err}");
    let child = dir.path().join("child");
    let err = trainer_err(&[
        "prune",
        run,
        "--out",
        child.to_str().unwrap(),
        "--criterion",
        "l1",
        "--ratio",
        "0.5",
        "--lr-schedule",
        "cosine",
    ]);
    assert!(err.contains("give it with --finetune-epochs"), "{err}");
}

#[test]
fn fine_tuning_follows_its_own_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let (parent, child) = (dir.path().join("parent"), dir.path().join("child"));
    quick_run(
        &parent,
        &[
            "--epochs",
            "1",
            "--width",
            "0.25",
            "--train-limit",
            "256",
            "--lr-schedule",
            "linear-warmup(2)",
        ],
    );
    trainer(&[
        "prune",
        parent.to_str().unwrap(),
        "--out",
        child.to_str().unwrap(),
        "--criterion",
        "l1",
        "--ratio",
        "0.25",
        "--finetune-epochs",
        "2",
        "--lr-schedule",
        "step(1, 0.5)",
        "--quiet",
    ])
    .unwrap();
    let config = read_json(&child.join("config.json"));
    assert_eq!(config["optimizer"]["lr_schedule"], "step(1, 0.5)");
    // A tenth of the parent's 0.001, halved after the first epoch.
    let lrs = epoch_lrs(&child);
    assert_eq!(lrs.len(), 2);
    assert!((lrs[0] - 1e-4).abs() < 1e-15, "{lrs:?}");
    assert_eq!(lrs[1], lrs[0] * 0.5);
}
