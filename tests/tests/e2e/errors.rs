//! Bad input gets a clear error naming the file or value, never a panic.

use std::path::Path;

use filterlab_tests::{QUICK, quick_run, trainer_err};

fn train_err(out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["train", "--out", out.to_str().unwrap()];
    args.extend_from_slice(QUICK);
    args.extend_from_slice(extra);
    trainer_err(&args)
}

/// Copy the embedded sample's four files into `dir` as raw IDX (decompressed).
fn write_sample_copy(dir: &Path) {
    let ds = data::DataSource::sample().load().unwrap();
    let imgs = |s: &data::source::Dataset, train: bool| {
        let split = if train { &s.train } else { &s.test };
        data::idx::encode_images(&data::idx::IdxImages {
            count: split.len(),
            rows: 28,
            cols: 28,
            pixels: split.pixels.clone(),
        })
    };
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("train-images-idx3-ubyte"), imgs(&ds, true)).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), imgs(&ds, false)).unwrap();
    std::fs::write(
        dir.join("train-labels-idx1-ubyte"),
        data::idx::encode_labels(&ds.train.labels),
    )
    .unwrap();
    std::fs::write(
        dir.join("t10k-labels-idx1-ubyte"),
        data::idx::encode_labels(&ds.test.labels),
    )
    .unwrap();
}

#[test]
fn missing_and_corrupt_data_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let err = train_err(&out, &["--data", "/no/such/dataset"]);
    assert!(err.contains("/no/such/dataset"), "{err}");

    let data = dir.path().join("data");
    write_sample_copy(&data);
    let path = data.join("t10k-images-idx3-ubyte");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let err = train_err(&out, &["--data", data.to_str().unwrap()]);
    assert!(
        err.contains("t10k-images-idx3-ubyte") && err.contains("truncated"),
        "{err}"
    );

    std::fs::write(&path, b"not an idx file at all").unwrap();
    let err = train_err(&out, &["--data", data.to_str().unwrap()]);
    assert!(
        err.contains("t10k-images-idx3-ubyte") && err.contains("magic"),
        "{err}"
    );

    std::fs::remove_file(&path).unwrap();
    let err = train_err(&out, &["--data", data.to_str().unwrap()]);
    assert!(err.contains("no t10k-images-idx3-ubyte"), "{err}");

    let labels = data.join("train-labels-idx1-ubyte");
    let mut bytes = std::fs::read(&labels).unwrap();
    bytes[8 + 17] = 42;
    std::fs::write(&labels, &bytes).unwrap();
    write_sample_copy(&dir.path().join("unused"));
    std::fs::copy(
        dir.path().join("unused/t10k-images-idx3-ubyte"),
        data.join("t10k-images-idx3-ubyte"),
    )
    .unwrap();
    let err = train_err(&out, &["--data", data.to_str().unwrap()]);
    assert!(err.contains("label 42 at index 17"), "{err}");
}

#[test]
fn mismatched_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (small, big) = (dir.path().join("small"), dir.path().join("big"));
    quick_run(
        &small,
        &["--epochs", "1", "--width", "0.25", "--train-limit", "64"],
    );
    quick_run(
        &big,
        &["--epochs", "1", "--width", "0.5", "--train-limit", "64"],
    );
    std::fs::copy(small.join("model.bpk"), big.join("model.bpk")).unwrap();
    let err = trainer_err(&["eval", big.to_str().unwrap()]);
    assert!(
        err.contains("model.bpk") && err.contains("does not match"),
        "{err}"
    );

    std::fs::write(big.join("model.bpk"), b"garbage").unwrap();
    let err = trainer_err(&["eval", big.to_str().unwrap()]);
    assert!(err.contains("model.bpk"), "{err}");

    let err = trainer_err(&["eval", dir.path().to_str().unwrap()]);
    assert!(err.contains("no config.json"), "{err}");
}

#[test]
fn bad_options_and_outputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    assert!(
        train_err(&out, &["--init", "bogus"]).contains("unknown initialization scheme 'bogus'")
    );
    assert!(train_err(&out, &["--lr", "-1"]).contains("--lr -1"));
    assert!(train_err(&out, &["--model", "plain", "--depth", "60"]).contains("depth"));
    assert!(train_err(&out, &["--epochs", "0"]).contains("--epochs"));
    if !trainer::backend::BackendKind::Wgpu.is_compiled() {
        assert!(train_err(&out, &["--backend", "wgpu"]).contains("--features wgpu"));
    }
    // A file where the run directory should be.
    let file = dir.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let err = train_err(&file.join("run"), &[]);
    assert!(err.contains("cannot create the run directory"), "{err}");
    // An existing run is not overwritten without --force.
    quick_run(
        &out,
        &["--epochs", "1", "--train-limit", "64", "--width", "0.25"],
    );
    assert!(train_err(&out, &["--epochs", "1"]).contains("already holds a run"));
}

#[test]
fn options_that_would_do_nothing_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let err = train_err(&out, &["--depth", "1000"]);
    assert!(
        err.contains("--depth applies to the plain CNN only"),
        "{err}"
    );
    let err = train_err(&out, &["--activation", "tanh"]);
    assert!(
        err.contains("--activation applies to the plain CNN only"),
        "{err}"
    );
    let err = train_err(&out, &["--momentum", "0.5"]);
    assert!(
        err.contains("--momentum applies to --optimizer sgd"),
        "{err}"
    );
    assert!(!out.join("config.json").exists(), "nothing written");

    quick_run(
        &out,
        &["--epochs", "1", "--train-limit", "64", "--width", "0.25"],
    );
    let run = out.to_str().unwrap();
    let child = dir.path().join("child");
    let child = child.to_str().unwrap();
    let prune = |extra: &[&str]| {
        let mut args = vec!["prune", run, "--out", child, "--ratio", "0.5"];
        args.extend_from_slice(extra);
        trainer_err(&args)
    };
    let err = prune(&["--criterion", "l1", "--lr", "0.01"]);
    assert!(err.contains("give it with --finetune-epochs"), "{err}");
    let err = prune(&["--criterion", "l1", "--samples", "100"]);
    assert!(
        err.contains("--samples applies to the data-dependent criteria"),
        "{err}"
    );
    let err = trainer_err(&[
        "prune-sweep",
        run,
        "--criteria",
        "l1,fpgm",
        "--samples",
        "50",
    ]);
    assert!(err.contains("none of them is swept"), "{err}");
    let err = trainer_err(&["train", "--resume", run, "--width", "2"]);
    assert!(err.contains("cannot be given with --resume"), "{err}");
}

#[test]
fn nan_loss_stops_with_epoch_and_step() {
    let dir = tempfile::tempdir().unwrap();
    let err = train_err(&dir.path().join("run"), &["--init", "normal(0, 1e12)"]);
    assert!(err.contains("epoch 1, step 1/"), "{err}");
}

#[test]
fn weights_with_nan_or_infinity_are_refused_with_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("r");
    quick_run(&run, &["--epochs", "1", "--width", "0.5"]);
    let (w, _) = filterlab_tests::conv2(&run);
    let path = run.join("model.bpk");
    let clean = std::fs::read(&path).unwrap();
    // The bytes of conv2.weight's values, found by their first eight, then one value replaced.
    let needle: Vec<u8> = w[..2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let at = clean
        .windows(needle.len())
        .position(|x| x == needle.as_slice())
        .expect("conv2.weight's values are in model.bpk");
    for bad in [f32::NAN, f32::INFINITY] {
        let mut bytes = clean.clone();
        bytes[at + 4..at + 8].copy_from_slice(&bad.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let err = trainer_err(&["eval", run.to_str().unwrap()]);
        assert!(
            err.contains("model.bpk") && err.contains("conv2.weight") && err.contains("index 1"),
            "{err}"
        );
    }
}
