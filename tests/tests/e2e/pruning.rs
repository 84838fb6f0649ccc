//! Pruning through the CLI: zeroing, masks through fine-tuning, compact export, refusals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use filterlab_tests::{conv2, kept, quick_run, read_json, trainer, trainer_err};

/// Every file of a directory (recursively) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            out.insert(p.display().to_string(), std::fs::read(&p).unwrap());
        }
    }
    out
}

/// A one-epoch half-width run in `dir/parent`, pruned with `prune_args` into `dir/child`.
fn parent_and_child(dir: &Path, prune_args: &[&str]) -> (PathBuf, PathBuf) {
    let (parent, child) = (dir.join("parent"), dir.join("child"));
    quick_run(&parent, &["--epochs", "1", "--width", "0.5"]);
    let mut args = vec!["prune", parent.to_str().unwrap()];
    args.extend_from_slice(prune_args);
    args.extend(["--quiet", "--out", child.to_str().unwrap()]);
    trainer(&args).unwrap();
    (parent, child)
}

#[test]
fn pruned_filters_are_zero_and_stay_zero_through_fine_tuning() {
    let dir = tempfile::tempdir().unwrap();
    let (parent, child) = (dir.path().join("parent"), dir.path().join("child"));
    quick_run(&parent, &["--epochs", "1", "--width", "0.5"]);
    let before = snapshot(&parent);
    trainer(&[
        "prune",
        parent.to_str().unwrap(),
        "--criterion",
        "l1",
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
    assert_eq!(before, snapshot(&parent), "the parent run must not change");

    let keep = kept(&child, "conv2");
    assert_eq!(keep.iter().filter(|k| !**k).count(), 16);
    // The 16 lowest-L1 filters of the parent are the pruned ones.
    let (pw, _) = conv2(&parent);
    let len = pw.len() / keep.len();
    let l1: Vec<f32> = pw
        .chunks(len)
        .map(|f| f.iter().map(|v| v.abs()).sum())
        .collect();
    let mut order: Vec<usize> = (0..32).collect();
    order.sort_by(|&a, &b| l1[a].total_cmp(&l1[b]));
    for &i in &order[..16] {
        assert!(!keep[i], "filter {i} (L1 {}) should be pruned", l1[i]);
    }
    // After fine-tuning: pruned filters exactly zero, kept ones trained.
    let (w, b) = conv2(&child);
    for (o, &k) in keep.iter().enumerate() {
        let filter = &w[o * len..(o + 1) * len];
        if k {
            assert!(filter.iter().any(|&v| v != 0.0));
            assert_ne!(
                filter,
                &pw[o * len..(o + 1) * len],
                "kept filter {o} was fine-tuned"
            );
        } else {
            assert!(
                filter.iter().all(|&v| v == 0.0) && b[o] == 0.0,
                "filter {o}"
            );
        }
    }
    let report = read_json(&child.join("prune.json"));
    assert!(report["finetuned"]["accuracy"].as_f64().unwrap() > 0.5);
    assert!(report["compact"]["max_abs_logit_diff"].as_f64().unwrap() < 1e-4);
    let compact = read_json(&child.join("compact/config.json"));
    assert_eq!(
        compact["model"]["channels"],
        serde_json::json!([16, 16, 64])
    );
    // The child run is an ordinary run: it evaluates to its reported accuracy.
    let ev = trainer::eval_run(&trainer::EvalArgs {
        run: child.clone(),
        data: None,
        test_limit: Some(256),
        backend: None,
        json: true,
    })
    .unwrap();
    assert_eq!(
        ev.accuracy,
        report["finetuned"]["accuracy"].as_f64().unwrap()
    );
}

#[test]
fn zeroing_without_fine_tuning_matches_the_reported_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let (_, child) = parent_and_child(
        dir.path(),
        &["--criterion", "apoz", "--ratio", "0.3", "--samples", "64"],
    );
    let report = read_json(&child.join("prune.json"));
    let summary = read_json(&child.join("summary.json"));
    assert_eq!(report["after"]["accuracy"], summary["test_accuracy"]);
    // Both conv layers are pruned by default: 30% of 16 and of 32.
    for (layer, n) in [("conv1", 4), ("conv2", 9)] {
        let keep = kept(&child, layer);
        assert_eq!(keep.iter().filter(|k| !**k).count(), n, "{layer}");
    }
}

#[test]
fn bad_pruning_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().join("parent");
    quick_run(
        &parent,
        &["--epochs", "1", "--width", "0.25", "--train-limit", "64"],
    );
    let out = dir.path().join("child");
    let prune = |extra: &[&str]| {
        let mut args = vec![
            "prune",
            parent.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        trainer_err(&args)
    };
    assert!(prune(&["--criterion", "l1", "--ratio", "1.0"]).contains("--ratio 1"));
    assert!(prune(&["--criterion", "l1", "--ratio", "0.5", "--layers", "conv7"]).contains("conv7"));
    assert!(prune(&["--criterion", "l1", "--ratio", "0.5", "--layers", "fc2"]).contains("fc2"));
    assert!(prune(&["--criterion", "magic", "--ratio", "0.5"]).contains("magic"));
    // A checkpoint from another architecture.
    let other = dir.path().join("other");
    quick_run(
        &other,
        &["--epochs", "1", "--width", "0.5", "--train-limit", "64"],
    );
    std::fs::copy(other.join("model.bpk"), parent.join("model.bpk")).unwrap();
    assert!(prune(&["--criterion", "l1", "--ratio", "0.5"]).contains("does not match"));
}

#[test]
fn redundancy_and_sweep_write_their_reports() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("r");
    quick_run(&run, &["--epochs", "1", "--width", "0.5"]);
    trainer(&[
        "redundancy",
        run.to_str().unwrap(),
        "--samples",
        "64",
        "--json",
    ])
    .unwrap();
    let r = read_json(&run.join("redundancy/redundancy.json"));
    let layers = r["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    assert_eq!(layers[1]["correlation"].as_array().unwrap().len(), 32);
    assert!(run.join("redundancy/correlation-conv2.svg").is_file());
    trainer(&[
        "prune-sweep",
        run.to_str().unwrap(),
        "--criteria",
        "l1,random",
        "--ratios",
        "0.25,0.5",
        "--layers",
        "conv2",
        "--json",
    ])
    .unwrap();
    let s = read_json(&run.join("prune-sweep/sweep.json"));
    assert_eq!(s["points"].as_array().unwrap().len(), 4);
    let table = std::fs::read_to_string(run.join("prune-sweep/sweep.txt")).unwrap();
    assert!(table.contains("random") && table.contains("50%"), "{table}");
    assert!(
        std::fs::read_to_string(run.join("prune-sweep/accuracy-vs-ratio.svg"))
            .unwrap()
            .contains("<svg")
    );
}

#[test]
fn pruned_logits_equal_those_of_a_model_zeroed_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let (parent, child) = parent_and_child(
        dir.path(),
        &["--criterion", "l1", "--ratio", "0.5", "--layers", "conv2"],
    );
    let keep = kept(&child, "conv2");
    assert_eq!(keep.iter().filter(|k| !**k).count(), 16);

    let config = read_json(&parent.join("config.json"));
    let spec: model::ModelSpec = serde_json::from_value(config["model"].clone()).unwrap();
    let device = burn::tensor::Device::flex();
    let x: Vec<f32> = (0..4 * 28 * 28)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
        .collect();
    let x = burn::tensor::Tensor::<4>::from_data(
        burn::tensor::TensorData::new(x, [4, 1, 28, 28]),
        &device,
    );
    let (by_hand, pruned) = model::with_model!(&spec, &device, |m| {
        use model::Classifier;
        let parent_model =
            trainer::run::load_module(m.clone(), &parent.join("model.bpk"), &spec).unwrap();
        // conv2.weight is [out, in, 3, 3]: output filter o is one contiguous run of in·9 values.
        let params = params::HostParams::read(&parent_model);
        let get = |p: &str| params.get(p).unwrap();
        let (w, b) = (get("conv2.weight"), get("conv2.bias"));
        let len = w.shape[1] * w.shape[2] * w.shape[3];
        let (mut w, mut b) = (w.values.clone(), b.values.clone());
        for (o, _) in keep.iter().enumerate().filter(|(_, k)| !**k) {
            w[o * len..(o + 1) * len].fill(0.0);
            b[o] = 0.0;
        }
        let zeroed = params::write(
            parent_model,
            [
                ("conv2.weight".to_string(), w),
                ("conv2.bias".to_string(), b),
            ],
        )
        .unwrap();
        let child_model = trainer::run::load_module(m, &child.join("model.bpk"), &spec).unwrap();
        let logits = |m: &_| -> Vec<f32> {
            Classifier::forward(m, x.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        (logits(&zeroed), logits(&child_model))
    });
    assert_eq!(
        by_hand, pruned,
        "pruned logits differ from the hand-zeroed model's"
    );
}

#[test]
fn a_fresh_training_over_a_pruned_run_does_not_inherit_its_mask() {
    let dir = tempfile::tempdir().unwrap();
    let (_, child) = parent_and_child(
        dir.path(),
        &["--criterion", "l1", "--ratio", "0.5", "--layers", "conv2"],
    );
    let keep = kept(&child, "conv2");
    quick_run(&child, &["--epochs", "1", "--width", "0.5", "--force"]);
    assert!(!child.join("mask.json").exists(), "stale mask.json kept");
    let (w, _) = conv2(&child);
    let len = w.len() / keep.len();
    for (o, _) in keep.iter().enumerate().filter(|(_, k)| !**k) {
        assert!(
            w[o * len..(o + 1) * len].iter().any(|&v| v != 0.0),
            "filter {o} held at zero by the old mask"
        );
    }
}

#[test]
fn a_sweep_run_as_jobs_equals_the_sweep_in_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("r");
    quick_run(&run, &["--epochs", "1", "--width", "0.5"]);
    let run_arg = run.to_str().unwrap();
    let whole = dir.path().join("whole");
    trainer(&[
        "prune-sweep",
        run_arg,
        "--criteria",
        "l1,apoz",
        "--ratios",
        "0.5",
        "--layers",
        "conv2",
        "--samples",
        "64",
        "--finetune-epochs",
        "1",
        "--json",
        "--out",
        whole.to_str().unwrap(),
    ])
    .unwrap();
    let options = xtask::sweep::SweepOptions {
        run: run.clone(),
        criteria: vec!["l1".into(), "apoz".into()],
        ratios: vec![0.5],
        layers: vec!["conv2".into()],
        global: false,
        finetune_epochs: 1,
        samples: Some(64),
        data: None,
        backend: None,
        out: dir.path().join("jobs"),
        trainer: filterlab_tests::trainer_binary(),
        executor: xtask::jobs::Executor::Local {
            parallel: 2,
            cores: 2,
        },
    };
    let (outcomes, table) = xtask::sweep::run(&options).unwrap();
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert!(outcomes.values().all(|o| o.succeeded()), "{outcomes:?}");
    assert!(table.unwrap().contains("+ 1 epoch(s) ft"));
    // The sweep found both points fine-tuned by their own jobs, and reused them.
    let log = std::fs::read_to_string(options.out.join("jobs/prune-sweep.log")).unwrap();
    assert_eq!(log.matches("reused").count(), 2, "{log}");
    // The same points, bit for bit.
    let points = |d: &Path| read_json(&d.join("sweep.json"))["points"].clone();
    assert_eq!(points(&whole), points(&options.out));
    assert!(options.out.join("accuracy-vs-ratio.svg").is_file());
}

#[test]
fn an_early_stopped_fine_tuning_on_a_subset_keeps_its_best_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--criterion",
        "l1",
        "--ratio",
        "0.5",
        "--layers",
        "conv2",
        "--finetune-epochs",
        "6",
        "--finetune-images",
        "384",
        "--early-stop",
        "--validation-images",
        "256",
    ];
    let (parent, child) = parent_and_child(dir.path(), &args);
    let report = read_json(&child.join("prune.json"));
    let sub = &report["finetune_subset"];
    assert_eq!(sub["train_images"], 384);
    assert_eq!(sub["validation_images"], 256);
    let (ran, kept_epoch) = (
        report["finetune_ran"][0].as_u64().unwrap() as usize,
        report["finetune_ran"][1].as_u64().unwrap() as usize,
    );
    // Every epoch records its validation loss; the run stops at the first epoch that does not
    // improve on the best, and keeps the best.
    let metrics: Vec<serde_json::Value> = std::fs::read_to_string(child.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(metrics.len(), ran);
    let val: Vec<f64> = metrics
        .iter()
        .map(|m| m["validation_loss"].as_f64().unwrap())
        .collect();
    for i in 1..ran - 1 {
        assert!(
            val[i] < val[..i].iter().copied().fold(f64::INFINITY, f64::min),
            "epoch {} did not improve but training went on: {val:?}",
            i + 1
        );
    }
    let best = (0..ran).min_by(|&a, &b| val[a].total_cmp(&val[b])).unwrap();
    assert_eq!(kept_epoch, best + 1, "{val:?}");
    if ran < 6 {
        assert_eq!(
            kept_epoch,
            ran - 1,
            "stopped early, so the last epoch was worse: {val:?}"
        );
    }
    // The kept weights are the best epoch's: they evaluate to its test accuracy.
    let finetuned = report["finetuned"]["accuracy"].as_f64().unwrap();
    assert_eq!(
        finetuned,
        metrics[kept_epoch - 1]["test_accuracy"].as_f64().unwrap()
    );
    let ev = trainer::eval_run(&trainer::EvalArgs {
        run: child.clone(),
        data: None,
        test_limit: Some(256),
        backend: None,
        json: true,
    })
    .unwrap();
    assert_eq!(ev.accuracy, finetuned);
    // Pruned filters are still zero, and the subset is the same draw every time.
    let keep = kept(&child, "conv2");
    let (w, b) = conv2(&child);
    let len = w.len() / keep.len();
    for (o, &k) in keep.iter().enumerate() {
        if !k {
            assert!(w[o * len..(o + 1) * len].iter().all(|&v| v == 0.0) && b[o] == 0.0);
        }
    }
    let again = dir.path().join("again");
    let mut a = vec!["prune", parent.to_str().unwrap()];
    a.extend_from_slice(&args);
    a.extend(["--quiet", "--out", again.to_str().unwrap()]);
    trainer(&a).unwrap();
    assert_eq!(
        read_json(&child.join("summary.json"))["weights_sha256"],
        read_json(&again.join("summary.json"))["weights_sha256"]
    );
    // Without fine-tuning the options mean nothing, and say so.
    let err = trainer_err(&[
        "prune",
        parent.to_str().unwrap(),
        "--criterion",
        "l1",
        "--ratio",
        "0.5",
        "--early-stop",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(err.contains("--finetune-epochs"), "{err}");
}

#[test]
fn a_refined_sweep_bisects_where_the_accuracy_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("r");
    quick_run(&run, &["--epochs", "1", "--width", "0.5"]);
    trainer(&[
        "prune-sweep",
        run.to_str().unwrap(),
        "--criteria",
        "l1",
        "--ratios",
        "0.25,0.75",
        "--layers",
        "conv2",
        "--finetune-epochs",
        "1",
        "--finetune-images",
        "256",
        "--refine",
        "2",
        "--tolerance",
        "1",
        "--json",
    ])
    .unwrap();
    let s = read_json(&run.join("prune-sweep/sweep.json"));
    let base = s["baseline_accuracy"].as_f64().unwrap();
    let points: Vec<(f64, f64)> = s["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["ratio"].as_f64().unwrap(),
                p["finetuned_accuracy"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(points.len(), 4, "{points:?}");
    assert!(
        points.windows(2).all(|w| w[0].0 < w[1].0),
        "sorted: {points:?}"
    );
    // Replay the bisection from the two coarse points.
    let kept = |acc: f64| acc >= base - 0.01;
    let mut known: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|p| p.0 == 0.25 || p.0 == 0.75)
        .collect();
    for _ in 0..2 {
        known.sort_by(|a, b| a.0.total_cmp(&b.0));
        let lost = known.iter().position(|p| !kept(p.1));
        let lo = match lost {
            Some(0) => 0.0,
            Some(i) => known[i - 1].0,
            None => known.last().unwrap().0,
        };
        let hi = lost.map_or(1.0, |i| known[i].0);
        let mid = (lo + hi) / 2.0;
        let p = points.iter().find(|p| p.0 == mid);
        assert!(p.is_some(), "expected ratio {mid} in {points:?}");
        known.push(*p.unwrap());
    }
    assert_eq!(s["refined"], serde_json::json!([2, 1.0]));
}
