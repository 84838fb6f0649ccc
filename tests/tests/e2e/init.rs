//! Initialization through the CLI: recorded schemes, symmetry, init-time statistics.

use filterlab_tests::{quick_run, read_json, trainer};

#[test]
fn the_resolved_scheme_of_every_parameter_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("r");
    quick_run(
        &run,
        &[
            "--epochs",
            "1",
            "--train-limit",
            "64",
            "--init",
            "he;fc2.weight=xavier-uniform",
        ],
    );
    let config = read_json(&run.join("config.json"));
    let params = config["init"]["params"].as_array().unwrap();
    let find = |p: &str| params.iter().find(|x| x["path"] == p).unwrap().clone();
    assert_eq!(params.len(), 8);
    assert_eq!(find("conv1.weight")["scheme"], "kaiming-normal(fan-in)");
    // He with the layer's own ReLU: std √(2/9).
    assert_eq!(
        find("conv1.weight")["law"],
        format!("N(0, {:.4e}²)", (2.0f64 / 9.0).sqrt())
    );
    assert_eq!(find("fc2.weight")["scheme"], "xavier-uniform(1)");
    assert_eq!(find("fc1.bias")["scheme"], "zeros");
    assert_eq!(find("conv2.weight")["fan_in"], 288);
}

fn distinct(run: &std::path::Path) -> Vec<(String, u64, u64)> {
    trainer(&["inspect", run.to_str().unwrap(), "--json"]).unwrap();
    let v = read_json(&run.join("inspect/inspect.json"));
    assert!(run.join("inspect/filters-first-layer.svg").is_file());
    v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["layer"].as_str().unwrap().to_string(),
                l["distinct_filters"].as_u64().unwrap(),
                l["filters"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn constant_init_never_breaks_symmetry_and_noise_does() {
    let dir = tempfile::tempdir().unwrap();
    let (sym, noisy) = (dir.path().join("sym"), dir.path().join("noisy"));
    quick_run(
        &sym,
        &[
            "--epochs",
            "1",
            "--width",
            "0.5",
            "--init",
            "constant(0.01)",
        ],
    );
    quick_run(
        &noisy,
        &[
            "--epochs",
            "1",
            "--width",
            "0.5",
            "--init",
            "constant(0.01)+noise(0.0001)",
        ],
    );
    for (layer, d, n) in distinct(&sym) {
        if layer == "fc2" {
            // The head's units are the classes: their gradients differ by construction.
            assert_eq!(d, n);
        } else {
            assert_eq!(d, 1, "{layer}: {d} distinct of {n} after constant init");
        }
    }
    for (layer, d, n) in distinct(&noisy) {
        assert_eq!(d, n, "{layer}: noise must break the symmetry");
    }
}

#[test]
fn init_stats_writes_tables_json_and_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stats");
    trainer(&[
        "init-stats",
        "--data",
        "sample",
        "--depth",
        "6",
        "--width",
        "8",
        "--batch",
        "16",
        "--init",
        "he",
        "--init",
        "xavier",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ])
    .unwrap();
    let v = read_json(&out.join("init-stats.json"));
    let schemes = v["schemes"].as_array().unwrap();
    assert_eq!(schemes.len(), 2);
    let layers = schemes[1]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 6);
    // Xavier with ReLU: predicted multiplier ½ per layer, so layer 6 is predicted at (½)^(5/2).
    assert!((layers[1]["multiplier"].as_f64().unwrap() - 0.5).abs() < 1e-12);
    assert!((layers[5]["predicted_ratio"].as_f64().unwrap() - 0.5f64.powf(2.5)).abs() < 1e-9);
    assert!(layers[5]["weight_grad_std"].as_f64().unwrap() > 0.0);
    for f in ["activation-std.svg", "gradient-std.svg"] {
        assert!(
            std::fs::read_to_string(out.join(f))
                .unwrap()
                .contains("<svg")
        );
    }
}
