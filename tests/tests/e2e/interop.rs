//! Import from and export to PyTorch's formats, against fixtures made once with PyTorch by
//! `python/make_fixtures.py` (`tests/fixtures/pytorch/`, see its README): no PyTorch here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use filterlab_tests::{quick_run, read_json, trainer, trainer_err};
use model::Classifier;
use serde_json::{Value, json};
use trainer::run::FinishedRun;

/// The fixtures' input standardization, `(p/255 − 0.2860)/0.3530` (their README).
const FIXTURE_NORM: &str = "0.2860,0.3530";

/// SHA-256 of the fixture files, from their README.
const PT_SHA256: &str = "2c89dcbcf073ead77e5e81a925b8f3a217c729b7b8203d99d2ec366e113bcc94";
const ST_SHA256: &str = "e27a2187a92f18ac32722ac4f33183c5b0bc45941f511cedaecaca8d76ea955c";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/pytorch")
        .join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The arguments of `trainer import FILE --out OUT --data sample --quiet` with `extra`.
fn import_args<'a>(file: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "import",
        s(file),
        "--out",
        s(out),
        "--data",
        "sample",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    args
}

/// `trainer import FILE --out OUT --data sample --quiet` with `extra`; panics on failure.
fn import(file: &Path, out: &Path, extra: &[&str]) {
    let args = import_args(file, out, extra);
    if let Err(e) = trainer(&args) {
        panic!("trainer {args:?} failed: {e:#}");
    }
}

/// The error of an import that must fail.
fn import_err(file: &Path, out: &Path, extra: &[&str]) -> String {
    trainer_err(&import_args(file, out, extra))
}

/// `trainer export RUN --out FILE`; panics on failure.
fn export(run: &Path, file: &Path) {
    trainer(&[
        "export",
        s(run),
        "--format",
        "safetensors",
        "--out",
        s(file),
    ])
    .unwrap_or_else(|e| panic!("export of {} failed: {e:#}", run.display()));
}

fn summary(run: &Path) -> Value {
    read_json(&run.join("summary.json"))
}

fn weights_hash(run: &Path) -> String {
    summary(run)["weights_sha256"]
        .as_str()
        .expect("a hash")
        .to_string()
}

/// Every parameter of a run's model, by path.
fn host_params(run: &Path) -> params::HostParams {
    let run = FinishedRun::open(run).unwrap();
    let device = Device::flex();
    model::with_model!(&run.config.model, &device, |m| {
        params::HostParams::read(&run.load(m).unwrap())
    })
}

/// A safetensors file's header: every tensor's dtype and shape, and its raw bytes.
fn safetensors_tensors(path: &Path) -> BTreeMap<String, (String, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: BTreeMap<String, Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    header
        .into_iter()
        .filter(|(k, _)| k != "__metadata__")
        .map(|(k, v)| {
            let [a, b]: [usize; 2] = serde_json::from_value(v["data_offsets"].clone()).unwrap();
            let shape: Vec<usize> = serde_json::from_value(v["shape"].clone()).unwrap();
            let dtype = v["dtype"].as_str().unwrap().to_string();
            (k, (dtype, shape, data[a..b].to_vec()))
        })
        .collect()
}

/// A tensor for [`write_safetensors`]: key, dtype, shape, little-endian bytes.
type RawTensor = (String, &'static str, Vec<usize>, Vec<u8>);

fn f32_tensor(key: &str, shape: &[usize], f: impl Fn(usize) -> f32) -> RawTensor {
    let n: usize = shape.iter().product();
    let bytes = (0..n).flat_map(|i| f(i).to_le_bytes()).collect();
    (key.to_string(), "F32", shape.to_vec(), bytes)
}

/// Write a safetensors file by hand (header length, JSON header, data), as the format's
/// specification describes it.
fn write_safetensors(path: &Path, tensors: &[RawTensor]) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (key, dtype, shape, bytes) in tensors {
        let start = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            key.clone(),
            json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut h = serde_json::to_vec(&Value::Object(header)).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    std::fs::write(path, out).unwrap();
}

/// The state dict of a plain CNN of depth 2 and width 2, with `prefix` before every key.
fn tiny_plain(prefix: &str) -> Vec<RawTensor> {
    let v = |i: usize| ((i as f32) * 0.37).sin() * 0.3;
    vec![
        f32_tensor(&format!("{prefix}convs.0.weight"), &[2, 1, 3, 3], v),
        f32_tensor(&format!("{prefix}convs.0.bias"), &[2], v),
        f32_tensor(&format!("{prefix}convs.1.weight"), &[2, 2, 3, 3], v),
        f32_tensor(&format!("{prefix}convs.1.bias"), &[2], v),
        f32_tensor(&format!("{prefix}head.weight"), &[10, 2], v),
        f32_tensor(&format!("{prefix}head.bias"), &[10], v),
    ]
}

const TINY_PLAIN: &[&str] = &["--model", "plain", "--depth", "2", "--width", "2"];

#[test]
fn imported_logits_equal_pytorchs() {
    let inputs = read_json(&fixture("ref_cnn_inputs.json"));
    let expected = read_json(&fixture("ref_cnn_logits.json"));
    let shape: [usize; 4] = serde_json::from_value(inputs["shape"].clone()).unwrap();
    let x: Vec<f32> = serde_json::from_value(inputs["values"].clone()).unwrap();
    let want: Vec<f32> = serde_json::from_value(expected["values"].clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut hashes = Vec::new();
    for (file, format, sha) in [
        ("ref_cnn.pt", "pytorch", PT_SHA256),
        ("ref_cnn.safetensors", "safetensors", ST_SHA256),
    ] {
        let out = dir.path().join(format);
        import(&fixture(file), &out, &["--normalize", FIXTURE_NORM]);
        let config = read_json(&out.join("config.json"));
        assert_eq!(config["source"]["format"], format);
        assert_eq!(config["source"]["sha256"], sha);
        assert_eq!(
            config["normalization"],
            json!({"mean": 0.286, "std": 0.353})
        );
        assert_eq!(config["model"]["arch"], "ref");
        assert_eq!(
            std::fs::read_to_string(out.join("metrics.jsonl")).unwrap(),
            ""
        );

        let run = FinishedRun::open(&out).unwrap();
        let device = Device::flex();
        let got: Vec<f32> = model::with_model!(&run.config.model, &device, |m| {
            let m = run.load(m).unwrap();
            let x = Tensor::<4>::from_data(TensorData::new(x.clone(), shape), &device);
            m.forward(x).into_data().try_into_vec_as::<f32>().unwrap()
        });
        assert_eq!(got.len(), want.len());
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst <= 1e-5,
            "{file}: logits differ from PyTorch's by {worst}"
        );

        // PyTorch measured this accuracy on the sample's test split with the same inputs.
        let accuracy = summary(&out)["test_accuracy"].as_f64().unwrap();
        assert_eq!(accuracy, expected["sample_test_accuracy"].as_f64().unwrap());
        // Later commands read the recorded normalization.
        let eval = trainer::eval_run(&trainer::EvalArgs {
            run: out.clone(),
            data: None,
            test_limit: None,
            backend: None,
            json: true,
        })
        .unwrap();
        assert_eq!(eval.accuracy, accuracy);
        hashes.push(weights_hash(&out));
    }
    assert_eq!(
        hashes[0], hashes[1],
        ".pt and .safetensors hold the same weights"
    );
}

#[test]
fn export_then_import_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    import(&fixture("ref_cnn.pt"), &a, &["--normalize", FIXTURE_NORM]);
    let file = dir.path().join("exported/ref.safetensors");
    export(&a, &file);
    // Names, dtypes, shapes and bytes of every tensor as PyTorch wrote them.
    let ours = safetensors_tensors(&file);
    let theirs = safetensors_tensors(&fixture("ref_cnn.safetensors"));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for (key, t) in &theirs {
        assert_eq!(ours[key].0, t.0, "{key} dtype");
        assert_eq!(ours[key].1, t.1, "{key} shape");
        assert!(ours[key].2 == t.2, "{key}: values differ from PyTorch's");
    }
    import(&file, &b, &["--normalize", FIXTURE_NORM]);
    assert_eq!(weights_hash(&a), weights_hash(&b));
    assert_eq!(summary(&a)["test_accuracy"], summary(&b)["test_accuracy"]);

    // A plain CNN trained here, with the default normalization (the training split's).
    let (plain, back) = (dir.path().join("plain"), dir.path().join("plain-back"));
    quick_run(
        &plain,
        &[
            "--epochs", "1", "--model", "plain", "--depth", "3", "--width", "4",
        ],
    );
    let file = dir.path().join("plain.safetensors");
    export(&plain, &file);
    let keys: Vec<String> = safetensors_tensors(&file).into_keys().collect();
    assert_eq!(
        keys,
        [
            "convs.0.bias",
            "convs.0.weight",
            "convs.1.bias",
            "convs.1.weight",
            "convs.2.bias",
            "convs.2.weight",
            "head.bias",
            "head.weight"
        ]
    );
    assert_eq!(safetensors_tensors(&file)["head.weight"].1, [10, 4]);
    import(
        &file,
        &back,
        &["--model", "plain", "--depth", "3", "--width", "4"],
    );
    assert_eq!(weights_hash(&plain), weights_hash(&back));
    let (c1, c2) = (
        read_json(&plain.join("config.json")),
        read_json(&back.join("config.json")),
    );
    assert_eq!(c1["normalization"], c2["normalization"]);
}

#[test]
fn a_pruned_run_exported_and_reimported_keeps_its_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let (parent, pruned) = (dir.path().join("parent"), dir.path().join("pruned"));
    import(
        &fixture("ref_cnn.safetensors"),
        &parent,
        &["--normalize", FIXTURE_NORM],
    );
    trainer(&[
        "prune",
        s(&parent),
        "--criterion",
        "l1",
        "--ratio",
        "0.5",
        "--layers",
        "conv2",
        "--compact",
        "--quiet",
        "--out",
        s(&pruned),
    ])
    .unwrap();
    let config = read_json(&pruned.join("config.json"));
    assert_eq!(
        config["normalization"],
        json!({"mean": 0.286, "std": 0.353})
    );
    assert_eq!(config["source"]["sha256"], ST_SHA256);

    let file = dir.path().join("pruned.safetensors");
    export(&pruned, &file);
    let back = dir.path().join("back");
    import(&file, &back, &["--normalize", FIXTURE_NORM]);
    assert_eq!(weights_hash(&pruned), weights_hash(&back));
    let p = host_params(&back);
    let (w, bias) = (
        p.values("conv2.weight").unwrap(),
        p.values("conv2.bias").unwrap(),
    );
    let zero = (0..64)
        .filter(|&f| w[f * 288..(f + 1) * 288].iter().all(|&v| v == 0.0) && bias[f] == 0.0)
        .count();
    assert_eq!(zero, 32, "half of conv2's filters are zero");
    assert_eq!(
        summary(&pruned)["test_accuracy"],
        summary(&back)["test_accuracy"]
    );

    // The compact model: fewer channels, named and shaped as PyTorch's.
    let compact = pruned.join("compact");
    let file = dir.path().join("compact.safetensors");
    export(&compact, &file);
    let tensors = safetensors_tensors(&file);
    assert_eq!(tensors["conv2.weight"].1, [32, 32, 3, 3]);
    assert_eq!(tensors["fc1.weight"].1, [128, 32 * 49]);
    let back = dir.path().join("compact-back");
    import(
        &file,
        &back,
        &["--normalize", FIXTURE_NORM, "--channels", "32,32,128"],
    );
    assert_eq!(weights_hash(&compact), weights_hash(&back));
    assert_eq!(
        summary(&compact)["test_accuracy"],
        summary(&back)["test_accuracy"]
    );
}

#[test]
fn keys_can_be_renamed_and_other_dtypes_are_converted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prefixed.safetensors");
    write_safetensors(&file, &tiny_plain("module."));
    let out = dir.path().join("run");
    let err = import_err(&file, &out, TINY_PLAIN);
    assert!(
        err.contains("missing convs.0.weight [2, 1, 3, 3]")
            && err.contains("unexpected module.convs.0.bias [2]"),
        "{err}"
    );
    let mut args = TINY_PLAIN.to_vec();
    args.extend(["--rename", "module=", "--pixels", "0-1"]);
    import(&file, &out, &args);
    let config = read_json(&out.join("config.json"));
    assert_eq!(config["source"]["renames"], json!(["module="]));
    assert_eq!(config["normalization"], json!({"mean": 0.0, "std": 1.0}));
    let imported = host_params(&out);

    // The same values stored as F64 load as the same f32 values, and are recorded as converted.
    let mut wide = tiny_plain("");
    for t in &mut wide {
        t.1 = "F64";
        t.3 =
            t.3.chunks(4)
                .flat_map(|c| (f32::from_le_bytes(c.try_into().unwrap()) as f64).to_le_bytes())
                .collect();
    }
    let file = dir.path().join("f64.safetensors");
    write_safetensors(&file, &wide);
    let out = dir.path().join("f64");
    import(&file, &out, TINY_PLAIN);
    assert_eq!(host_params(&out).sha256(), imported.sha256());
    let converted = &read_json(&out.join("config.json"))["source"]["converted"];
    assert_eq!(converted.as_array().unwrap().len(), 6, "{converted}");

    let err = import_err(&file, &dir.path().join("x"), &["--rename", "modul="]);
    assert!(
        err.contains("modul=") && err.contains("matches no tensor"),
        "{err}"
    );
}

#[test]
fn corrupt_truncated_and_mismatched_files_are_named_and_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let bad = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };

    let missing = dir.path().join("nope.pt");
    let err = import_err(&missing, &out, &[]);
    assert!(
        err.contains("cannot read") && err.contains("nope.pt"),
        "{err}"
    );

    let f = bad("empty.pt", b"");
    let err = import_err(&f, &out, &[]);
    assert!(err.contains("empty.pt is empty"), "{err}");

    let f = bad("text.pt", b"this is not a model at all");
    let err = import_err(&f, &out, &[]);
    assert!(
        err.contains("text.pt is neither a PyTorch file") && err.contains("safetensors"),
        "{err}"
    );

    for name in ["ref_cnn.pt", "ref_cnn.safetensors"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        for cut in [bytes.len() / 2, bytes.len() - 10, 100] {
            let f = bad(&format!("cut-{cut}-{name}"), &bytes[..cut]);
            let err = import_err(&f, &out, &[]);
            assert!(
                err.contains(&format!("cut-{cut}-{name}")) && err.contains("truncated or corrupt"),
                "{err}"
            );
        }
    }

    // A PyTorch file of another width: every mis-shaped tensor, both lists.
    let err = import_err(&fixture("ref_cnn.pt"), &out, &["--width", "0.5"]);
    for part in [
        "ref_cnn.pt does not match the model ref (width ×0.5)",
        "conv1.weight has shape [32, 1, 3, 3], expected [16, 1, 3, 3]",
        "fc1.weight has shape [128, 3136], expected [64, 1568]",
        "expected (PyTorch names and layout): conv1.weight [16, 1, 3, 3], conv1.bias [16]",
        "found: conv1.bias [32], conv1.weight [32, 1, 3, 3]",
    ] {
        assert!(err.contains(part), "{part} not in: {err}");
    }

    // Missing and extra tensors, a linear weight in Burn's layout, a non-float tensor, a NaN.
    let mut t = tiny_plain("");
    t.pop();
    t.push(f32_tensor("extra", &[3], |_| 0.0));
    let f = dir.path().join("gaps.safetensors");
    write_safetensors(&f, &t);
    let err = import_err(&f, &out, TINY_PLAIN);
    assert!(
        err.contains("gaps.safetensors does not match the model plain (depth 2, width 2, relu)")
            && err.contains("missing head.bias [10]")
            && err.contains("unexpected extra [3]"),
        "{err}"
    );

    let mut t = tiny_plain("");
    t[4] = f32_tensor("head.weight", &[2, 10], |_| 0.0);
    let f = dir.path().join("layout.safetensors");
    write_safetensors(&f, &t);
    let err = import_err(&f, &out, TINY_PLAIN);
    assert!(
        err.contains("head.weight has shape [2, 10], expected [10, 2]")
            && err.contains("PyTorch's is [out, in]"),
        "{err}"
    );

    let mut t = tiny_plain("");
    t[1] = ("convs.0.bias".into(), "I64", vec![2], vec![0; 16]);
    let f = dir.path().join("int.safetensors");
    write_safetensors(&f, &t);
    let err = import_err(&f, &out, TINY_PLAIN);
    assert!(
        err.contains("int.safetensors: tensor convs.0.bias") && err.contains("floating point"),
        "{err}"
    );

    let mut t = tiny_plain("");
    t[1] = f32_tensor("convs.0.bias", &[2], |_| f32::NAN);
    let f = dir.path().join("nan.safetensors");
    write_safetensors(&f, &t);
    let err = import_err(&f, &out, TINY_PLAIN);
    assert!(
        err.contains("nan.safetensors: tensor convs.0.bias holds a non-finite"),
        "{err}"
    );

    // Nothing was written by any of the failures.
    assert!(!out.exists());
}

#[test]
fn existing_runs_and_files_are_not_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiny.safetensors");
    write_safetensors(&file, &tiny_plain(""));
    let out = dir.path().join("run");
    import(&file, &out, TINY_PLAIN);
    let before = std::fs::read(out.join("summary.json")).unwrap();
    let err = import_err(&file, &out, TINY_PLAIN);
    assert!(
        err.contains("already holds a run") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(out.join("summary.json")).unwrap(), before);
    let mut args = TINY_PLAIN.to_vec();
    args.push("--force");
    import(&file, &out, &args);

    let target = dir.path().join("out.safetensors");
    std::fs::write(&target, b"keep me").unwrap();
    let err = trainer_err(&["export", s(&out), "--out", s(&target)]);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
    trainer(&["export", s(&out), "--out", s(&target), "--force"]).unwrap();
    assert_eq!(safetensors_tensors(&target).len(), 6);

    let err = trainer_err(&["export", s(&dir.path().join("no-run")), "--out", s(&target)]);
    assert!(
        err.contains("no-run") && err.contains("does not exist"),
        "{err}"
    );
}
