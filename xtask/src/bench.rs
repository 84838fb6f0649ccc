//! `cargo xtask bench`: training and inference throughput of the release trainer, optionally
//! against another commit built and measured in the same run (the machines are noisy, so only
//! ratios measured side by side are meaningful).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{build_trainer, build_trainer_in, features_for, root, target_dir, write_atomic};

/// Options of the benchmark.
#[derive(clap::Args, Debug, Clone)]
#[command(
    after_long_help = "How it is measured: each model and configuration runs `trainer bench` \
(the model on the bundled sample, Adam with ε 1e-8, lr 1e-3, cross-entropy; 5 untimed warm-up \
steps, then --steps timed steps; inference in batches of 256) --repeat times; with --baseline or \
--pytorch the other sides run interleaved with ours in every repetition (baseline, PyTorch, \
ours, baseline, PyTorch, ours, ...), so all see the same machine load; both options together \
give a before/after/PyTorch table from one run. Figures are medians over the repetitions; ratios \
are ours divided by the other side's median.\n\n\
--pytorch installs PyTorch from PyPI on first use into a virtual environment \
(python/setup-venv: ~/.cache/filterlab/pytorch-venv, or FILTERLAB_TORCH_VENV; the Linux wheel \
is the CUDA build, about 5.5 GB, and runs on the CPU) and runs python/bench.py: the same model, \
data, batch, optimizer and step counts, with torch.set_num_threads(THREADS) of each \
configuration (PyTorch has no data-parallel workers; it uses its threads inside each \
operation). The FLOPs behind GFLOP/s and the fraction of peak are each model's own forward \
pass, counted from its layer table, times 3 for a training step."
)]
pub struct BenchArgs {
    /// Timed training steps per measurement.
    #[arg(long, default_value_t = 60)]
    pub steps: u32,
    /// Configurations to measure, as THREADSxWORKERS (threads of the process, data-parallel
    /// workers per step), comma-separated [default: 1x1,2x1,2x2 on the CPU backends, 1x1 on
    /// wgpu].
    #[arg(long, value_delimiter = ',')]
    pub configs: Option<Vec<String>>,
    /// Models to measure, comma-separated: `ref` or `ref:W` (the reference CNN at width ×W),
    /// `plain` (the study's 20-layer plain CNN of 16 channels), `plain:C` or `plain:C:D` (D conv
    /// layers of C channels).
    #[arg(long, value_delimiter = ',', default_value = "ref")]
    pub models: Vec<BenchModel>,
    /// Training batch sizes to measure, comma-separated (a GPU wants large ones, e.g.
    /// 64,256,1024).
    #[arg(long, value_delimiter = ',', default_value = "64")]
    pub batch_sizes: Vec<u32>,
    /// Backend to measure (built into the trainer: `wgpu` adds the cargo feature itself).
    #[arg(long, default_value = "flex")]
    pub backend: String,
    /// Repetitions of each measurement (the median is reported; the machines are noisy).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Extra cargo features for the trainer build (e.g. ndarray).
    #[arg(long)]
    pub features: Option<String>,
    /// Also build this git revision (in a worktree) and report every figure as a ratio to it,
    /// measured interleaved in this run.
    #[arg(long, value_name = "REV")]
    pub baseline: Option<String>,
    /// Measure PyTorch side by side (same model, batch, optimizer and threads; see below) and
    /// report every figure as a ratio to it.
    #[arg(long)]
    pub pytorch: bool,
    /// The machine's peak fp32 throughput, for the fraction-of-peak column (234 GFLOP/s: two
    /// AVX-512 cores of the reference machine).
    #[arg(long, default_value_t = 234.0)]
    pub peak_gflops: f64,
    /// Print only JSON.
    #[arg(long)]
    pub json: bool,
}

/// A model measured: the reference CNN at a width, or a plain CNN of `depth` layers of `width`
/// channels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BenchModel {
    /// The reference CNN at width ×`0`.
    Ref(f64),
    /// The plain CNN: channels, layers.
    Plain(u32, u32),
}

impl std::str::FromStr for BenchModel {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = |why: &str| format!("'{s}': {why} (ref, ref:W, plain, plain:C or plain:C:D)");
        let mut parts = s.trim().split(':');
        let kind = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        let count = |v: &str| match v.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(bad(&format!("'{v}' is not a positive count"))),
        };
        match (kind, rest.as_slice()) {
            ("ref", []) => Ok(BenchModel::Ref(1.0)),
            ("ref", [w]) => match w.parse::<f64>() {
                Ok(w) if w.is_finite() && w > 0.0 && w <= 16.0 => Ok(BenchModel::Ref(w)),
                _ => Err(bad(&format!("'{w}' is not a width multiplier in (0, 16]"))),
            },
            ("plain", []) => Ok(BenchModel::Plain(16, 20)),
            ("plain", [c]) => Ok(BenchModel::Plain(count(c)?, 20)),
            ("plain", [c, d]) => match count(d)? {
                d @ 2..=50 => Ok(BenchModel::Plain(count(c)?, d)),
                d => Err(bad(&format!("{d} layers is outside 2–50"))),
            },
            ("ref" | "plain", _) => Err(bad("too many ':' fields")),
            _ => Err(bad(&format!("unknown model '{kind}'"))),
        }
    }
}

impl BenchModel {
    /// The model options of `trainer bench` and `python/bench.py` (they are the same): none
    /// for the reference CNN at width ×1, both sides' default, so that a baseline built before
    /// the model options existed measures it too.
    fn args(&self) -> Vec<String> {
        let opts: Vec<(&str, String)> = match *self {
            BenchModel::Ref(1.0) => vec![],
            BenchModel::Ref(w) => vec![("--model", "ref".into()), ("--width", w.to_string())],
            BenchModel::Plain(c, d) => vec![
                ("--model", "plain".into()),
                ("--width", c.to_string()),
                ("--depth", d.to_string()),
            ],
        };
        opts.into_iter()
            .flat_map(|(k, v)| [k.to_string(), v])
            .collect()
    }

    /// A short name for tables: `ref×1`, `plain 20×16`.
    fn label(&self) -> String {
        match *self {
            BenchModel::Ref(w) => format!("ref×{w}"),
            BenchModel::Plain(c, d) => format!("plain {d}×{c}"),
        }
    }
}

/// One measurement: what to run and with which settings.
#[derive(Debug, Clone, Copy)]
struct Point {
    model: BenchModel,
    threads: u32,
    workers: u32,
    batch: u32,
}

/// What a measurement runs: a trainer binary, or PyTorch's side.
enum Runner {
    Trainer(PathBuf),
    Pytorch(PathBuf),
}

impl Runner {
    fn measure(&self, backend: &str, steps: u32, p: Point) -> Result<Value> {
        match self {
            Runner::Trainer(bin) => measure(bin, backend, steps, p),
            Runner::Pytorch(python) => {
                let out = Command::new(python)
                    .arg(root().join("python/bench.py"))
                    .args(p.model.args())
                    .args(["--threads", &p.threads.to_string()])
                    .args(["--steps", &steps.to_string()])
                    .args(["--batch-size", &p.batch.to_string()])
                    .output()
                    .with_context(|| format!("cannot run {}", python.display()))?;
                if !out.status.success() {
                    bail!(
                        "python/bench.py failed:\n{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                serde_json::from_slice(&out.stdout).context("python/bench.py printed invalid JSON")
            }
        }
    }
}

/// The PyTorch virtual environment's interpreter, made on first use by `python/setup-venv`.
fn pytorch_python() -> Result<PathBuf> {
    eprintln!("preparing PyTorch (python/setup-venv; the first time downloads ~5.5 GB from PyPI)");
    let out = Command::new(root().join("python/setup-venv"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run python/setup-venv")?;
    if !out.status.success() {
        bail!("python/setup-venv failed: PyTorch is not available for --pytorch");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let py = stdout
        .lines()
        .last()
        .context("python/setup-venv printed no interpreter path")?;
    Ok(PathBuf::from(py.trim()))
}

/// The arguments of one `trainer bench --json` measurement: the subcommand first, then its
/// options, the model's among them.
fn bench_args(backend: &str, steps: u32, p: Point) -> Vec<String> {
    let mut args: Vec<String> = [
        "bench",
        "--json",
        "--backend",
        backend,
        "--steps",
        &steps.to_string(),
        "--batch-size",
        &p.batch.to_string(),
        "--threads",
        &p.threads.to_string(),
        "--workers",
        &p.workers.to_string(),
    ]
    .map(String::from)
    .to_vec();
    args.extend(p.model.args());
    args
}

/// One `trainer bench --json` measurement.
fn measure(trainer: &Path, backend: &str, steps: u32, p: Point) -> Result<Value> {
    let out = Command::new(trainer)
        .args(bench_args(backend, steps, p))
        .output()
        .with_context(|| format!("cannot run {}", trainer.display()))?;
    if !out.status.success() {
        bail!(
            "trainer bench failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).context("trainer bench printed invalid JSON")
}

fn parse_config(c: &str) -> Result<(u32, u32)> {
    let (t, w) = c
        .split_once('x')
        .with_context(|| format!("--configs: '{c}' is not THREADSxWORKERS"))?;
    let parse = |v: &str| -> Result<u32> {
        match v.trim().parse::<u32>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => bail!("--configs: '{c}': '{v}' is not a positive count"),
        }
    };
    Ok((parse(t)?, parse(w)?))
}

/// Build `rev` in a git worktree, return a copy of its trainer binary.
///
/// The build gets a target directory of its own (`target/bench/baseline-target`, kept between
/// runs, so only the first build compiles Burn): cargo judges workspace crates by file times, so
/// artifacts of `rev` built in the main target directory would later pass for the current
/// sources, and the current build would silently be `rev`.
fn build_baseline(dir: &Path, rev: &str, features: Option<&str>) -> Result<PathBuf> {
    let tree = dir.join("baseline-worktree");
    remove_worktree(&tree);
    let status = Command::new("git")
        .current_dir(root())
        .args(["worktree", "add", "--detach"])
        .arg(&tree)
        .arg(rev)
        .status()
        .context("cannot run git")?;
    if !status.success() {
        bail!("cannot check out {rev} into {}", tree.display());
    }
    let target = dir.join("baseline-target");
    eprintln!(
        "building {rev} in {} (the first time also compiles Burn: ~10 minutes on 2 cores)",
        target.display()
    );
    let built =
        build_trainer_in(&tree, &target, features).with_context(|| format!("building {rev}"));
    let bin = dir.join(format!("trainer-{}", rev.replace('/', "_")));
    let copied = built.and_then(|b| {
        std::fs::copy(b, &bin).with_context(|| format!("cannot write {}", bin.display()))
    });
    remove_worktree(&tree);
    copied.map(|_| bin)
}

/// Remove the git worktree at `tree`, if there is one.
fn remove_worktree(tree: &Path) {
    let _ = Command::new("git")
        .current_dir(root())
        .args(["worktree", "remove", "--force"])
        .arg(tree)
        .output();
}

/// The median of the measurements by training throughput (the upper one of an even count).
fn median(mut vs: Vec<Value>) -> Value {
    vs.sort_by(|a, b| {
        let key = |v: &Value| v["train_images_per_sec"].as_f64().unwrap_or(0.0);
        key(a).total_cmp(&key(b))
    });
    vs.swap_remove(vs.len() / 2)
}

fn rate(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

/// Run the benchmark.
pub fn bench(args: &BenchArgs) -> Result<()> {
    let default_configs = if args.backend == "wgpu" {
        vec!["1x1".to_string()]
    } else {
        ["1x1", "2x1", "2x2"].map(String::from).to_vec()
    };
    let configs: Vec<(u32, u32)> = args
        .configs
        .as_ref()
        .unwrap_or(&default_configs)
        .iter()
        .map(|c| parse_config(c))
        .collect::<Result<_>>()?;
    if let Some(b) = args.batch_sizes.iter().find(|&&b| b == 0) {
        bail!("--batch-sizes: {b} is not a batch size");
    }
    let points: Vec<Point> = args
        .models
        .iter()
        .flat_map(|&model| {
            configs.iter().flat_map(move |&(threads, workers)| {
                args.batch_sizes.iter().map(move |&batch| Point {
                    model,
                    threads,
                    workers,
                    batch,
                })
            })
        })
        .collect();
    let features = features_for(&args.backend, args.features.as_deref());
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    // The other sides, each with its name and the short name of its columns.
    let mut others: Vec<(Runner, String, String)> = Vec::new();
    if let Some(rev) = &args.baseline {
        let bin = build_baseline(&dir, rev, features.as_deref())?;
        others.push((Runner::Trainer(bin), rev.clone(), "base".to_string()));
    }
    if args.pytorch {
        let python = pytorch_python()?;
        others.push((Runner::Pytorch(python), "PyTorch".into(), "torch".into()));
    }
    let current = dir.join("trainer-current");
    std::fs::copy(build_trainer(features.as_deref())?, &current)?;
    let current = Runner::Trainer(current);
    let mut rows = Vec::new();
    for (i, &p) in points.iter().enumerate() {
        if !args.json {
            eprintln!(
                "[{}/{}] {}, {} thread(s) × {} worker(s), batch {}",
                i + 1,
                points.len(),
                p.model.label(),
                p.threads,
                p.workers,
                p.batch
            );
        }
        let mut ours = Vec::new();
        let mut theirs: Vec<Vec<Value>> = vec![Vec::new(); others.len()];
        for _ in 0..args.repeat {
            // Interleaved: the other sides, then ours, each repetition.
            for ((o, _, _), t) in others.iter().zip(&mut theirs) {
                t.push(o.measure(&args.backend, args.steps, p)?);
            }
            ours.push(current.measure(&args.backend, args.steps, p)?);
        }
        let cur = median(ours);
        let mut row = json!({
            "model": p.model.label(),
            "threads": p.threads,
            "workers": p.workers,
            "batch_size": p.batch,
            "current": cur,
            "fraction_of_peak": cur["train_gflops"].as_f64().unwrap_or(0.0) / args.peak_gflops,
        });
        let mut compared = serde_json::Map::new();
        for ((_, name, _), t) in others.iter().zip(theirs) {
            let b = median(t);
            compared.insert(
                name.clone(),
                json!({
                    "train_ratio": rate(&cur, "train_images_per_sec") / rate(&b, "train_images_per_sec"),
                    "infer_ratio": rate(&cur, "infer_images_per_sec") / rate(&b, "infer_images_per_sec"),
                    "measured": b,
                }),
            );
        }
        if !compared.is_empty() {
            row["compared"] = Value::Object(compared);
        }
        rows.push(row);
    }
    let report = json!({
        "backend": args.backend,
        "repeat": args.repeat,
        "steps": args.steps,
        "compared_with": others.iter().map(|(_, name, _)| name).collect::<Vec<_>>(),
        "peak_gflops": args.peak_gflops,
        "results": rows,
    });
    let path = dir.join("latest.json");
    write_atomic(
        &path,
        (serde_json::to_string_pretty(&report)? + "\n").as_bytes(),
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "the bundled sample, backend {}, inference batch 256, median of {}",
        args.backend, args.repeat
    );
    if let Some(d) = rows.first().and_then(|r| r["current"]["device"].as_str()) {
        println!("device: {d}");
    }
    let mut header =
        "model         threads workers  batch  train img/s  infer img/s  GFLOP/s  of peak  peak RSS MiB"
            .to_string();
    for (_, _, short) in &others {
        header += &format!(
            "  {short:>5} train  {short:>5} infer  {short:>5} RSS  train ×{short}  infer ×{short}"
        );
    }
    println!("{header}");
    for r in &rows {
        let c = &r["current"];
        print!(
            "{:<12} {:>7} {:>7}  {:>5}  {:>11.0}  {:>11.0}  {:>7.1}  {:>6.1}%  {:>12.0}",
            r["model"].as_str().unwrap_or_default(),
            r["threads"].as_u64().unwrap_or(0),
            r["workers"].as_u64().unwrap_or(0),
            r["batch_size"].as_u64().unwrap_or(0),
            rate(c, "train_images_per_sec"),
            rate(c, "infer_images_per_sec"),
            c["train_gflops"].as_f64().unwrap_or(0.0),
            r["fraction_of_peak"].as_f64().unwrap_or(0.0) * 100.0,
            c["peak_rss_mib"].as_f64().unwrap_or(0.0),
        );
        for (_, name, _) in &others {
            let o = &r["compared"][name];
            print!(
                "  {:>11.0}  {:>11.0}  {:>9.0}  {:>11.2}  {:>11.2}",
                rate(&o["measured"], "train_images_per_sec"),
                rate(&o["measured"], "infer_images_per_sec"),
                o["measured"]["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
                o["train_ratio"].as_f64().unwrap_or(f64::NAN),
                o["infer_ratio"].as_f64().unwrap_or(f64::NAN)
            );
        }
        println!();
    }
    for (_, name, short) in &others {
        println!("(×{short}: ours divided by {name}'s median, measured interleaved)");
    }
    println!("(JSON: {})", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{BenchModel, Point, bench_args};

    #[test]
    fn the_model_options_follow_the_subcommand() {
        let p = Point {
            model: BenchModel::Plain(16, 20),
            threads: 2,
            workers: 2,
            batch: 64,
        };
        let args = bench_args("flex", 40, p);
        assert_eq!(args[0], "bench");
        let tail: Vec<&str> = args[args.len() - 6..].iter().map(String::as_str).collect();
        assert_eq!(tail, ["--model", "plain", "--width", "16", "--depth", "20"]);
    }

    #[test]
    fn models_parse_with_the_study_defaults() {
        let parse = |s: &str| s.parse::<BenchModel>();
        assert_eq!(parse("ref"), Ok(BenchModel::Ref(1.0)));
        assert_eq!(parse("ref:4"), Ok(BenchModel::Ref(4.0)));
        assert_eq!(parse("plain"), Ok(BenchModel::Plain(16, 20)));
        assert_eq!(parse("plain:32"), Ok(BenchModel::Plain(32, 20)));
        assert_eq!(parse("plain:8:4"), Ok(BenchModel::Plain(8, 4)));
        for bad in [
            "",
            "vgg",
            "ref:0",
            "ref:x",
            "ref:1:2",
            "plain:0",
            "plain:8:1",
            "plain:8:4:2",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains(bad), "{bad}: {err}");
        }
        assert_eq!(
            BenchModel::Ref(2.0).args(),
            ["--model", "ref", "--width", "2"]
        );
        assert_eq!(BenchModel::Plain(16, 20).label(), "plain 20×16");
    }
}
