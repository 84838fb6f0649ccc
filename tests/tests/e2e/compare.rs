//! Cross-run comparison through the CLI.

use std::path::Path;

use compare::permute::{Permutation, permute};
use filterlab_tests::{quick_run, read_json, trainer, trainer_err};
use model::Classifier;

/// Write a copy of `run` whose hidden units are permuted (a different parameterization of the
/// same function) to `out`.
fn permuted_copy(run: &Path, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    for f in ["config.json", "summary.json", "metrics.jsonl"] {
        std::fs::copy(run.join(f), out.join(f)).unwrap();
    }
    let config = read_json(&run.join("config.json"));
    let spec: model::ModelSpec = serde_json::from_value(config["model"].clone()).unwrap();
    let device = burn::tensor::Device::flex();
    model::with_model!(&spec, &device, |m| {
        let m = trainer::run::load_module(m, &run.join("model.bpk"), &spec).unwrap();
        let layers = m.layers();
        let perm = Permutation {
            layers: model::hidden_layers(&layers)
                .into_iter()
                .map(|l| (l.name.clone(), (0..l.out_channels).rev().collect()))
                .collect(),
        };
        let params = params::HostParams::read(&m);
        let p = permute(&params, &layers, &perm).unwrap();
        let m = params::write(m, p).unwrap();
        trainer::run::save_module(m, &out.join("model.bpk")).unwrap();
    });
}

/// `trainer compare A B` on 64 test images into `out` with `--samples`, `--cka-batch` and
/// `--alphas` as given; its compare.json.
fn compare_json(
    a: &Path,
    b: &Path,
    out: &Path,
    [samples, cka_batch, alphas]: [&str; 3],
) -> serde_json::Value {
    trainer(&[
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--samples",
        samples,
        "--cka-batch",
        cka_batch,
        "--alphas",
        alphas,
        "--test-limit",
        "64",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    read_json(&out.join("compare.json"))
}

#[test]
fn a_permuted_copy_is_matched_back_exactly_and_has_no_barrier() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    quick_run(&a, &["--epochs", "1", "--width", "0.5"]);
    permuted_copy(&a, &b);
    let out = dir.path().join("cmp");
    let r = compare_json(&a, &b, &out, ["64", "32", "5"]);
    let pair = &r["pairs"][0];
    for l in pair["layers"].as_array().unwrap() {
        // Every live filter finds its twin with correlation 1; dead ones (constant) have none.
        let n = l["filters"].as_u64().unwrap();
        let hist: Vec<u64> = serde_json::from_value(l["matched"]["histogram"].clone()).unwrap();
        let at_one = hist[19];
        let at_zero = hist[10];
        assert_eq!(at_one + at_zero, n, "{}: {hist:?}", l["layer"]);
        assert!(at_one > 0);
        // CKA is permutation invariant.
        assert!(
            (l["cka"].as_f64().unwrap() - 1.0).abs() < 1e-6,
            "{}",
            l["cka"]
        );
    }
    let wm = &pair["weight_aligned"];
    assert_eq!(wm["weight_distance"].as_f64().unwrap(), 0.0);
    assert!(wm["max_abs_logit_change"].as_f64().unwrap() < 1e-4);
    assert!(wm["loss_barrier"].as_f64().unwrap() < 1e-6);
    assert!(pair["weight_distance"].as_f64().unwrap() > 1.0);
    assert!(out.join("a-vs-b/interpolation.svg").is_file() && out.join("a-vs-b/cka.svg").is_file());
}

#[test]
fn the_barrier_between_a_network_and_itself_is_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    quick_run(&a, &["--epochs", "1", "--width", "0.25", "--seed", "1"]);
    quick_run(&b, &["--epochs", "1", "--width", "0.25", "--seed", "1"]);
    let out = dir.path().join("cmp");
    let pair = &compare_json(&a, &b, &out, ["32", "16", "3"])["pairs"][0];
    assert_eq!(pair["weight_distance"].as_f64().unwrap(), 0.0);
    assert_eq!(pair["naive"]["loss_barrier"].as_f64().unwrap(), 0.0);
    assert_eq!(pair["naive"]["error_barrier"].as_f64().unwrap(), 0.0);
    for l in pair["layers"].as_array().unwrap() {
        assert_eq!(l["identity"]["mean"], l["matched"]["mean"]);
    }
}

#[test]
fn runs_of_different_architectures_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    quick_run(
        &a,
        &["--epochs", "1", "--width", "0.25", "--train-limit", "64"],
    );
    quick_run(
        &b,
        &["--epochs", "1", "--width", "0.5", "--train-limit", "64"],
    );
    let err = trainer_err(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(err.contains("same architecture"), "{err}");
}
