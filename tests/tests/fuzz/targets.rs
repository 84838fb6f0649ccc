//! The fuzz targets: for each parser, its seed inputs (made from real files) and what it must do
//! with any input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use filterlab_tests::{error_chain, trainer};

use super::engine::Target;

/// Every target, by name.
pub const NAMES: [&str; 12] = [
    "idx-images",
    "idx-labels",
    "idx-gzip",
    "run-config",
    "run-summary",
    "run-metrics",
    "run-model",
    "checkpoint-state",
    "checkpoint-optimizer",
    "import-pytorch",
    "import-safetensors",
    "option-strings",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A scratch directory for this process, kept until it ends.
fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// A fresh empty directory under the scratch directory, unique to this call.
fn fresh_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = scratch().join(format!("{tag}-{}", N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The first `n` images and labels of the committed sample, as raw IDX files.
fn small_idx(n: usize) -> (Vec<u8>, Vec<u8>) {
    let dir = root().join("datasets/sample");
    let images = data::idx::read_images(&dir.join("train-images-idx3-ubyte.gz")).unwrap();
    let labels = data::idx::read_labels(&dir.join("train-labels-idx1-ubyte.gz"), 10).unwrap();
    let size = images.rows * images.cols;
    let small = data::idx::IdxImages {
        count: n,
        rows: images.rows,
        cols: images.cols,
        pixels: images.pixels[..n * size].to_vec(),
    };
    (
        data::idx::encode_images(&small),
        data::idx::encode_labels(&labels[..n]),
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// An error must say which file it is about.
fn names(err: &str, what: &Path) -> Result<bool, String> {
    let name = what
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if err.contains(&what.display().to_string()) || (!name.is_empty() && err.contains(&name)) {
        if std::env::var_os("FILTERLAB_FUZZ_VERBOSE").is_some() {
            eprintln!("refused: {err}");
        }
        Ok(false)
    } else {
        Err(format!("the error does not name {}: {err}", what.display()))
    }
}

fn idx_target(name: &'static str, seed: Vec<u8>, fields: Vec<usize>, labels: bool) -> Target {
    Target {
        name,
        seeds: vec![(seed, fields)],
        alloc_per_byte: 4,
        check: Box::new(move |input| {
            let path = Path::new("/fuzz/input-idx3-ubyte");
            if labels {
                match data::idx::parse_labels(path, input, 10) {
                    Ok(l) if l.iter().all(|&x| x < 10) => Ok(true),
                    Ok(_) => Err("accepted a label ≥ 10".into()),
                    Err(e) => names(&e.to_string(), path),
                }
            } else {
                match data::idx::parse_images(path, input) {
                    Ok(i) if i.pixels.len() == i.count * i.rows * i.cols => Ok(true),
                    Ok(i) => Err(format!(
                        "accepted {} pixels for {}×{}×{}",
                        i.pixels.len(),
                        i.count,
                        i.rows,
                        i.cols
                    )),
                    Err(e) => names(&e.to_string(), path),
                }
            }
        }),
    }
}

/// The IDX header: magic bytes, then each 4-byte dimension.
fn idx_fields(dims: usize) -> Vec<usize> {
    (0..=4 + 4 * dims).collect()
}

/// A finished run and an interrupted one (a checkpoint after epoch 1 of 2), trained once.
fn runs() -> &'static (PathBuf, PathBuf) {
    static RUNS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    RUNS.get_or_init(|| {
        let dir = scratch().join("seed-runs");
        let (finished, stopped) = (dir.join("finished"), dir.join("stopped"));
        let common = [
            "--data",
            "sample",
            "--train-limit",
            "64",
            "--test-limit",
            "32",
            "--width",
            "0.25",
            "--quiet",
        ];
        let mut a = vec![
            "train",
            "--epochs",
            "1",
            "--out",
            finished.to_str().unwrap(),
        ];
        a.extend(common);
        trainer(&a).unwrap();
        let mut a = vec![
            "train",
            "--epochs",
            "2",
            "--stop-after",
            "1",
            "--out",
            stopped.to_str().unwrap(),
        ];
        a.extend(common);
        trainer(&a).unwrap();
        (finished, stopped)
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// JSON-aware seeds: the file itself; every value of it replaced, one at a time, by values of
/// other types and extreme sizes (the tree's structure kept); deep nesting; invalid UTF-8 in a
/// string. The byte mutations then work on these. A JSON-lines file varies its first line.
fn json_seeds(text: &[u8]) -> Vec<(Vec<u8>, Vec<usize>)> {
    let mut seeds = vec![(text.to_vec(), vec![])];
    let newline = text.iter().position(|&b| b == b'\n').unwrap_or(text.len());
    let (first, rest) = if text.ends_with(b"}\n") && newline + 1 < text.len() {
        (&text[..newline], &text[newline..])
    } else {
        (text, &b""[..])
    };
    let Ok(tree) = serde_json::from_slice::<serde_json::Value>(first) else {
        return seeds;
    };
    let with = |v: &serde_json::Value| {
        let mut b = serde_json::to_vec(v).unwrap();
        b.extend_from_slice(rest);
        (b, vec![])
    };
    let replacements = [
        serde_json::Value::Null,
        serde_json::json!(-1),
        serde_json::json!(0),
        serde_json::json!(1e300),
        serde_json::json!(u64::MAX),
        serde_json::json!(""),
        serde_json::json!("x"),
        serde_json::json!([]),
        serde_json::json!({}),
        serde_json::json!(true),
        serde_json::json!(1_000_000_000),
    ];
    // Every leaf's JSON pointer.
    fn leaves(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    leaves(
                        x,
                        format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
            }
            serde_json::Value::Array(a) if !a.is_empty() => {
                for (i, x) in a.iter().enumerate().take(4) {
                    leaves(x, format!("{at}/{i}"), out);
                }
            }
            _ => out.push(at),
        }
    }
    let mut pointers = Vec::new();
    leaves(&tree, String::new(), &mut pointers);
    for (i, p) in pointers.iter().enumerate() {
        let mut v = tree.clone();
        if let Some(leaf) = v.pointer_mut(p) {
            *leaf = replacements[i % replacements.len()].clone();
            seeds.push(with(&v));
        }
        // The key removed.
        let mut v = tree.clone();
        if let Some((parent, key)) = p.rsplit_once('/')
            && let Some(serde_json::Value::Object(m)) = v.pointer_mut(parent)
        {
            m.remove(&key.replace("~1", "/").replace("~0", "~"));
            seeds.push(with(&v));
        }
    }
    // Deep nesting, and a string with invalid UTF-8.
    let compact = serde_json::to_string(&tree).unwrap();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    seeds.push((
        compact
            .replacen(':', &format!(":{deep},\"x\":"), 1)
            .into_bytes(),
        vec![],
    ));
    let mut bad = compact.into_bytes();
    if let Some(q) = bad.iter().rposition(|&b| b == b'"') {
        bad.splice(q..q, [0xff, 0xfe, 0xc3]);
    }
    seeds.push((bad, vec![]));
    seeds
}

/// A target that replaces `file` of a copy of `run` and runs `check` on the copy.
fn run_file_target(
    name: &'static str,
    run: &'static Path,
    file: &'static str,
    alloc_per_byte: usize,
    check: fn(&Path) -> anyhow::Result<()>,
) -> Target {
    let original = std::fs::read(run.join(file)).unwrap();
    let seeds = if file.ends_with(".json") || file.ends_with(".jsonl") {
        json_seeds(&original)
    } else {
        // Burnpack: a header, then a JSON table of tensors, then the data.
        let fields = (0..64).chain([original.len() / 2]).collect();
        vec![(original, fields)]
    };
    Target {
        name,
        seeds,
        alloc_per_byte,
        check: Box::new(move |input| {
            let dir = fresh_dir(name);
            copy_dir(run, &dir);
            let path = dir.join(file);
            std::fs::write(&path, input).unwrap();
            let out = match check(&dir) {
                Ok(()) => Ok(true),
                Err(e) => {
                    let chain = error_chain(&e);
                    names(&chain, &dir).or_else(|_| names(&chain, &path))
                }
            };
            let _ = std::fs::remove_dir_all(&dir);
            out
        }),
    }
}

fn eval(dir: &Path) -> anyhow::Result<()> {
    let ev = trainer::eval_run(&trainer::EvalArgs {
        run: dir.to_path_buf(),
        data: None,
        test_limit: Some(16),
        backend: None,
        json: true,
    })?;
    anyhow::ensure!(
        (0.0..=1.0).contains(&ev.accuracy) && ev.loss.is_finite(),
        "evaluation of {} gave accuracy {} and loss {}",
        dir.display(),
        ev.accuracy,
        ev.loss
    );
    Ok(())
}

fn open_run(dir: &Path) -> anyhow::Result<()> {
    let run = trainer::run::FinishedRun::open(dir)?;
    trainer::run::RunDir::new(dir).load_metrics()?;
    anyhow::ensure!(
        run.summary.test_accuracy.is_finite(),
        "{} accepted a non-finite accuracy",
        dir.display()
    );
    Ok(())
}

fn resume(dir: &Path) -> anyhow::Result<()> {
    trainer(&["train", "--resume", dir.to_str().unwrap(), "--quiet"])
}

/// [`resume`] with `state.json` recording the SHA-256 of the (mutated) optimizer state, so the
/// input reaches the optimizer state's parser instead of stopping at the hash check (which a
/// checkpoint written before the hash was recorded does not have either).
fn resume_past_the_hash(dir: &Path) -> anyhow::Result<()> {
    let state_path = dir.join("checkpoint/state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    let optimizer = std::fs::read(dir.join("checkpoint/e1-s0.optimizer.bpk")).unwrap();
    state["optimizer_sha256"] = trainer::statedict::sha256_hex(&optimizer).into();
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();
    resume(dir)
}

/// A state dict with the extension `ext`, read as `trainer import` reads it.
fn state_dict_target(name: &'static str, fixture: &str, ext: &'static str) -> Target {
    let bytes = std::fs::read(root().join("tests/fixtures/pytorch").join(fixture)).unwrap();
    let mut fields: Vec<usize> = (0..16).collect();
    if ext == "safetensors" {
        let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        fields.extend([8 + header / 2, 8 + header, 8 + header + 4]);
    } else {
        // A zip archive: the end of the local header of the first entry, and the central
        // directory at the end.
        fields.extend([30, 64, bytes.len() - 22, bytes.len() - 1]);
    }
    let mut seeds = vec![(bytes.clone(), fields.clone())];
    if ext == "safetensors" {
        // Structure-aware variants of the JSON header (same length, so the data stays where
        // it was): other dtypes, shapes and offsets.
        let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let text = String::from_utf8_lossy(&bytes[8..header]).into_owned();
        for (from, to) in [
            ("\"F32\"", "\"I32\""),
            ("\"F32\"", "\"F16\""),
            ("\"F32\"", "\"F64\""),
            ("\"F32\"", "\"U8\" "),
            ("[32]", "[99]"),
            ("[32,1,3,3]", "[32,1,3,9]"),
            ("[0,128]", "[0,999]"),
            ("[128,1280]", "[1280,128]"),
            ("[64]", "[0] "),
        ] {
            for k in 0..2 {
                let changed = if k == 0 {
                    text.replacen(from, to, 1)
                } else {
                    text.replace(from, to)
                };
                if changed.len() == text.len() && changed != text {
                    let mut b = bytes.clone();
                    b[8..header].copy_from_slice(changed.as_bytes());
                    seeds.push((b, fields.clone()));
                }
            }
        }
    }
    Target {
        name,
        seeds,
        alloc_per_byte: 16,
        check: Box::new(move |input| {
            let dir = fresh_dir(name);
            let path = dir.join(format!("model.{ext}"));
            std::fs::write(&path, input).unwrap();
            let out = match trainer::statedict::read(&path) {
                Ok(sd) => {
                    let mut out = Ok(true);
                    for t in &sd.tensors {
                        let n: usize = t.shape.iter().product();
                        if n != t.values.len() {
                            out = Err(format!(
                                "tensor {} of shape {:?} came with {} values",
                                t.key,
                                t.shape,
                                t.values.len()
                            ));
                        }
                    }
                    out
                }
                Err(e) => names(&error_chain(&e), &path),
            };
            let _ = std::fs::remove_dir_all(&dir);
            out
        }),
    }
}

/// Option values: each input is split at its first byte below 0x20 into an option's index
/// and its value, and parsed as the command line would.
fn option_target() -> Target {
    /// Each option with a real value for it.
    const OPTIONS: [(&str, &str, &str); 16] = [
        ("train", "--lr-schedule", "linear-warmup(500)+cosine"),
        ("train", "--lr-schedule", "step(2, 0.5)"),
        ("train", "--lr-schedule", "exponential(0.99)"),
        ("train", "--init", "he;fc2.*=xavier-uniform"),
        ("train", "--init", "constant(0.01)+noise(1e-4)"),
        ("train", "--init", "variance-scaling(2, fan-avg, truncated)"),
        ("import", "--normalize", "0.2860,0.3530"),
        ("import", "--rename", "module="),
        ("import", "--rename", "features.0=conv1"),
        ("import", "--channels", "16,32,64"),
        ("train", "--checkpoint-every", "90s"),
        ("train", "--snapshot-steps", "0,1,2,4,8"),
        ("train", "--width", "0.5"),
        ("prune", "--ratio", "0.3"),
        ("prune", "--layers", "conv1,conv2"),
        ("prune-sweep", "--ratios", "0.1,0.5"),
    ];
    let seeds = OPTIONS
        .iter()
        .enumerate()
        .map(|(i, (_, _, v))| {
            let mut b = vec![i as u8];
            b.extend_from_slice(v.as_bytes());
            (b, vec![1])
        })
        .collect();
    Target {
        name: "option-strings",
        seeds,
        alloc_per_byte: 1024,
        check: Box::new(|input| {
            // The first byte picks the option, the rest is its value.
            let (which, value) = input.split_first().unwrap_or((&0, &[]));
            let value = String::from_utf8_lossy(value).into_owned();
            // The parsers behind the options: an error is fine, a panic is not.
            let _ = value.parse::<trainer::schedule::LrSchedule>();
            let _ = value.parse::<init::InitSpec>();
            let (command, flag, _) = OPTIONS[*which as usize % OPTIONS.len()];
            let mut args = vec!["trainer", command];
            let extra: &[&str] = match command {
                "train" => &[],
                "prune" => &["/fuzz/run", "--criterion", "l1", "--ratio", "0.5"],
                _ => &["/fuzz/run"],
            };
            args.extend(extra);
            args.extend([flag, &value, "--out", "/fuzz/out"]);
            let parsed = <trainer::cli::Cli as clap::Parser>::try_parse_from(args).is_ok();
            Ok(parsed)
        }),
    }
}

/// The target called `name`.
pub fn target(name: &str) -> Target {
    match name {
        "idx-images" => idx_target("idx-images", small_idx(16).0, idx_fields(3), false),
        "idx-labels" => idx_target("idx-labels", small_idx(64).1, idx_fields(1), true),
        "idx-gzip" => {
            let (images, _) = small_idx(8);
            let gz = gzip(&images);
            let fields = (0..20).chain([gz.len() - 8, gz.len() - 4]).collect();
            Target {
                name: "idx-gzip",
                seeds: vec![(gz, fields)],
                // Deflate inflates at most about 1032:1.
                alloc_per_byte: 1100,
                check: Box::new(|input| {
                    let dir = fresh_dir("gz");
                    let path = dir.join("train-images-idx3-ubyte.gz");
                    std::fs::write(&path, input).unwrap();
                    let out = match data::idx::read_images(&path) {
                        Ok(_) => Ok(true),
                        Err(e) => names(&e.to_string(), &path),
                    };
                    let _ = std::fs::remove_dir_all(&dir);
                    out
                }),
            }
        }
        "run-config" => run_file_target(name_of(name), &runs().0, "config.json", 1024, eval),
        "run-summary" => run_file_target(name_of(name), &runs().0, "summary.json", 1024, open_run),
        "run-metrics" => run_file_target(name_of(name), &runs().0, "metrics.jsonl", 1024, open_run),
        "run-model" => run_file_target(name_of(name), &runs().0, "model.bpk", 16, eval),
        "checkpoint-state" => run_file_target(
            name_of(name),
            &runs().1,
            "checkpoint/state.json",
            1024,
            resume,
        ),
        "checkpoint-optimizer" => run_file_target(
            name_of(name),
            &runs().1,
            "checkpoint/e1-s0.optimizer.bpk",
            16,
            resume_past_the_hash,
        ),
        "import-pytorch" => state_dict_target("import-pytorch", "ref_cnn.pt", "pt"),
        "import-safetensors" => {
            state_dict_target("import-safetensors", "ref_cnn.safetensors", "safetensors")
        }
        "option-strings" => option_target(),
        _ => panic!("no fuzz target {name}"),
    }
}

fn name_of(name: &str) -> &'static str {
    NAMES.iter().find(|n| **n == name).unwrap()
}
