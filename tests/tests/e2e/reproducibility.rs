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
}

#[test]
fn eval_reproduces_the_final_test_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("r");
    quick_run(&run, &["--epochs", "1", "--width", "0.5"]);
    let result = trainer::eval_run(&trainer::eval::EvalArgs {
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
