//! Helpers for the end-to-end tests in `tests/`: run `trainer` commands in-process on the
//! committed Fashion-MNIST sample.

use std::path::{Path, PathBuf};

use clap::Parser;

/// Run a `trainer` command line (without the program name) in this process.
pub fn trainer(args: &[&str]) -> anyhow::Result<()> {
    let cli =
        trainer::cli::Cli::try_parse_from(std::iter::once("trainer").chain(args.iter().copied()))?;
    trainer::run(cli)
}

/// The error chain of a failed command on one line, causes joined with `: `.
pub fn error_chain(err: &anyhow::Error) -> String {
    format!("{err:#}")
}

/// The error chain of a command that must fail.
pub fn trainer_err(args: &[&str]) -> String {
    error_chain(&trainer(args).expect_err("the command must fail"))
}

/// Options for a fast training run on a slice of the sample.
pub const QUICK: &[&str] = &[
    "--data",
    "sample",
    "--train-limit",
    "1024",
    "--test-limit",
    "256",
    "--quiet",
];

/// Train a quick run into `out` with extra options; panics on failure.
pub fn quick_run(out: &Path, extra: &[&str]) {
    let out = out.to_str().expect("utf-8 path");
    let mut args = vec!["train", "--out", out];
    args.extend_from_slice(QUICK);
    args.extend_from_slice(extra);
    if let Err(e) = trainer(&args) {
        panic!("trainer {args:?} failed: {}", error_chain(&e));
    }
}

/// Read a JSON file of a run.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("readable")).expect("valid JSON")
}

/// The metrics of a run without the timing fields, for exact comparison.
pub fn metrics_without_timings(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("valid line");
            let o = v.as_object_mut().expect("object");
            for k in ["train_seconds", "seconds", "train_images_per_sec"] {
                o.remove(k);
            }
            v
        })
        .collect()
}

/// The release trainer binary built by `cargo test --release --workspace` (the trainer
/// package's own integration tests make cargo build it), next to this test executable's
/// directory.
pub fn trainer_binary() -> PathBuf {
    release_binary("trainer")
}

/// The release xtask binary, built by `cargo test --release --workspace` like the trainer's.
pub fn xtask_binary() -> PathBuf {
    release_binary("xtask")
}

/// The binary `name` in `target/<profile>`, the parent of this test executable's directory.
fn release_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .join(name);
    assert!(
        bin.is_file(),
        "{} is missing: run the tests with `cargo test --release --workspace`, which builds it",
        bin.display()
    );
    bin
}

/// conv2's weights and biases of a finished run, read on flex.
pub fn conv2(run: &Path) -> (Vec<f32>, Vec<f32>) {
    let config = read_json(&run.join("config.json"));
    let spec: model::ModelSpec = serde_json::from_value(config["model"].clone()).unwrap();
    let device = burn::tensor::Device::flex();
    let params = model::with_model!(&spec, &device, |m| {
        let m = trainer::run::load_module(m, &run.join("model.bpk"), &spec).unwrap();
        params::HostParams::read(&m)
    });
    let get = |p: &str| params.values(p).unwrap().to_vec();
    (get("conv2.weight"), get("conv2.bias"))
}

/// The kept flags of `layer` in a pruned run's mask.
pub fn kept(run: &Path, layer: &str) -> Vec<bool> {
    serde_json::from_value(read_json(&run.join("mask.json"))["layers"][layer].clone()).unwrap()
}
