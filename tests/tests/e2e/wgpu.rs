//! The wgpu backend, for real: on a GPU, or on Mesa's lavapipe (Vulkan on the CPU) where there is
//! none. Compiled with `--features wgpu` only; tiny runs on the sample.

use std::path::Path;

use filterlab_tests::{conv2, kept, read_json, trainer};

/// Options of a tiny run on wgpu.
const TINY: &[&str] = &[
    "--backend",
    "wgpu",
    "--data",
    "sample",
    "--train-limit",
    "256",
    "--test-limit",
    "128",
    "--width",
    "0.25",
    "--quiet",
];

fn train(out: &Path, extra: &[&str]) {
    let mut args = vec!["train", "--out", out.to_str().unwrap()];
    args.extend_from_slice(TINY);
    args.extend_from_slice(extra);
    trainer(&args).unwrap_or_else(|e| panic!("trainer {args:?}: {e:#}"));
}

fn hash(run: &Path) -> String {
    read_json(&run.join("summary.json"))["weights_sha256"]
        .as_str()
        .unwrap()
        .to_string()
}

fn initial_hash(run: &Path) -> String {
    read_json(&run.join("config.json"))["init"]["initial_weights_sha256"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn training_on_wgpu_matches_the_cpu_at_init_records_the_device_and_is_repeatable() {
    let dir = tempfile::tempdir().unwrap();
    let (gpu, again, cpu) = (
        dir.path().join("gpu"),
        dir.path().join("again"),
        dir.path().join("cpu"),
    );
    train(&gpu, &["--epochs", "1", "--seed", "3"]);
    train(&again, &["--epochs", "1", "--seed", "3"]);
    let mut args = vec!["train", "--out", cpu.to_str().unwrap()];
    args.extend_from_slice(&TINY[2..]);
    args.extend_from_slice(&["--epochs", "1", "--seed", "3", "--workers", "1"]);
    trainer(&args).unwrap();

    let config = read_json(&gpu.join("config.json"));
    assert_eq!(config["backend"], "wgpu");
    assert_eq!(config["workers"], 1, "one data-parallel worker on a GPU");
    assert!(config["device"].as_str().is_some_and(|d| !d.is_empty()));
    // Host-side initialization: the same initial weights as on the CPU.
    assert_eq!(initial_hash(&gpu), initial_hash(&cpu));
    // The same seed twice on the same device: the same bits.
    assert_eq!(hash(&gpu), hash(&again));
    let (a, b) = (
        read_json(&gpu.join("summary.json"))["test_accuracy"]
            .as_f64()
            .unwrap(),
        read_json(&cpu.join("summary.json"))["test_accuracy"]
            .as_f64()
            .unwrap(),
    );
    assert!((a - b).abs() <= 0.05, "wgpu {a} vs flex {b}");
}

#[test]
fn a_wgpu_run_resumes_to_the_same_bits_and_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let (full, part) = (dir.path().join("full"), dir.path().join("part"));
    train(&full, &["--epochs", "2", "--seed", "4"]);
    train(
        &part,
        &["--epochs", "2", "--seed", "4", "--stop-after", "1"],
    );
    trainer(&["train", "--resume", part.to_str().unwrap(), "--quiet"]).unwrap();
    assert_eq!(hash(&full), hash(&part));
    let ev = trainer::eval_run(&trainer::EvalArgs {
        run: part.clone(),
        data: None,
        test_limit: Some(128),
        backend: None,
        json: true,
    })
    .unwrap();
    let reported = read_json(&part.join("summary.json"))["test_accuracy"]
        .as_f64()
        .unwrap();
    assert_eq!(ev.accuracy, reported);
}

#[test]
fn every_analysis_runs_on_wgpu() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, child) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("child"),
    );
    train(&a, &["--epochs", "1", "--seed", "1"]);
    train(&b, &["--epochs", "1", "--seed", "2"]);
    let run = a.to_str().unwrap();
    trainer(&["inspect", run, "--json"]).unwrap();
    trainer(&["redundancy", run, "--json", "--samples", "64"]).unwrap();
    trainer(&[
        "prune",
        run,
        "--criterion",
        "redundancy",
        "--samples",
        "64",
        "--ratio",
        "0.5",
        "--layers",
        "conv2",
        "--finetune-epochs",
        "1",
        "--compact",
        "--quiet",
        "--out",
        child.to_str().unwrap(),
    ])
    .unwrap();
    // Pruned filters stay exactly zero through fine-tuning on the GPU.
    let report = read_json(&child.join("prune.json"));
    assert!(report["compact"]["max_abs_logit_diff"].as_f64().unwrap() < 1e-4);
    let keep = kept(&child, "conv2");
    let (weights, _) = conv2(&child);
    let len = weights.len() / keep.len();
    for (o, k) in keep.iter().enumerate() {
        let zero = weights[o * len..(o + 1) * len].iter().all(|&v| v == 0.0);
        assert_eq!(zero, !k, "filter {o}");
    }
    trainer(&[
        "prune-sweep",
        run,
        "--json",
        "--criteria",
        "l1,random",
        "--ratios",
        "0.5",
        "--layers",
        "conv2",
    ])
    .unwrap();
    let out = dir.path().join("compare");
    trainer(&[
        "compare",
        run,
        b.to_str().unwrap(),
        "--json",
        "--samples",
        "64",
        "--cka-batch",
        "32",
        "--alphas",
        "3",
        "--test-limit",
        "64",
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    let cmp = read_json(&out.join("compare.json"));
    let change = cmp["pairs"][0]["weight_aligned"]["max_abs_logit_change"]
        .as_f64()
        .unwrap();
    assert!(
        change < 1e-3,
        "permuted network changed its logits by {change}"
    );
    let stats = dir.path().join("init-stats");
    trainer(&[
        "init-stats",
        "--backend",
        "wgpu",
        "--data",
        "sample",
        "--depth",
        "4",
        "--width",
        "4",
        "--batch",
        "8",
        "--json",
        "--out",
        stats.to_str().unwrap(),
    ])
    .unwrap();
    assert!(stats.join("init-stats.json").is_file());
    trainer(&[
        "bench",
        "--backend",
        "wgpu",
        "--json",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--batch-size",
        "16",
        "--infer-batches",
        "2",
        "--infer-batch-size",
        "32",
    ])
    .unwrap();
}
