//! `cargo xtask bench`: training and inference throughput of the release trainer, optionally
//! against another commit built and measured in the same run (the machines are noisy, so only
//! ratios measured side by side are meaningful).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{build_trainer, build_trainer_in, root, target_dir, write_atomic};

/// Options of the benchmark.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Timed training steps per measurement.
    #[arg(long, default_value_t = 60)]
    pub steps: u32,
    /// Configurations to measure, as THREADSxWORKERS (threads of the process, data-parallel
    /// workers per step), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1x1,2x1,2x2")]
    pub configs: Vec<String>,
    /// Backend to measure (must be compiled into the trainer).
    #[arg(long, default_value = "flex")]
    pub backend: String,
    /// Repetitions of each measurement (the best is reported; the machines are noisy).
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Extra cargo features for the trainer build (e.g. wgpu).
    #[arg(long)]
    pub features: Option<String>,
    /// Also build this git revision (in a worktree) and report every figure as a ratio to it,
    /// measured interleaved in this run.
    #[arg(long, value_name = "REV")]
    pub baseline: Option<String>,
    /// The machine's peak fp32 throughput, for the fraction-of-peak column (234 GFLOP/s: two
    /// AVX-512 cores of the reference machine).
    #[arg(long, default_value_t = 234.0)]
    pub peak_gflops: f64,
    /// Print only JSON.
    #[arg(long)]
    pub json: bool,
}

/// One `trainer bench --json` measurement.
pub fn measure(
    trainer: &Path,
    backend: &str,
    steps: u32,
    threads: u32,
    workers: u32,
) -> Result<Value> {
    let out = Command::new(trainer)
        .args([
            "bench",
            "--json",
            "--backend",
            backend,
            "--steps",
            &steps.to_string(),
        ])
        .args([
            "--threads",
            &threads.to_string(),
            "--workers",
            &workers.to_string(),
        ])
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
    Ok((t.trim().parse()?, w.trim().parse()?))
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

/// Run the benchmark.
pub fn bench(args: &BenchArgs) -> Result<()> {
    let configs: Vec<(u32, u32)> = args
        .configs
        .iter()
        .map(|c| parse_config(c))
        .collect::<Result<_>>()?;
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let baseline = match &args.baseline {
        Some(rev) => Some(build_baseline(&dir, rev, args.features.as_deref())?),
        None => None,
    };
    let current = dir.join("trainer-current");
    std::fs::copy(build_trainer(args.features.as_deref())?, &current)?;
    let mut rows = Vec::new();
    for &(threads, workers) in &configs {
        let (mut best, mut best_base): (Option<Value>, Option<Value>) = (None, None);
        for _ in 0..args.repeat.max(1) {
            // Interleaved: baseline, then current, each repetition.
            if let Some(b) = &baseline {
                let v = measure(b, &args.backend, args.steps, threads, workers)?;
                best_base = Some(better(best_base, v));
            }
            let v = measure(&current, &args.backend, args.steps, threads, workers)?;
            best = Some(better(best, v));
        }
        let cur = best.expect("at least one repetition");
        let train = cur["train_images_per_sec"].as_f64().unwrap_or(0.0);
        let mut row = json!({
            "threads": threads,
            "workers": workers,
            "current": cur,
            "fraction_of_peak": cur["train_gflops"].as_f64().unwrap_or(0.0) / args.peak_gflops,
        });
        if let Some(b) = best_base {
            let bt = b["train_images_per_sec"].as_f64().unwrap_or(f64::NAN);
            let bi = b["infer_images_per_sec"].as_f64().unwrap_or(f64::NAN);
            row["train_ratio"] = json!(train / bt);
            row["infer_ratio"] = json!(cur["infer_images_per_sec"].as_f64().unwrap_or(0.0) / bi);
            row["baseline"] = b;
        }
        rows.push(row);
    }
    let report = json!({
        "backend": args.backend,
        "repeat": args.repeat,
        "steps": args.steps,
        "baseline": args.baseline,
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
        "reference CNN on the embedded sample, backend {}, batch 64 (training) / 256 (inference), best of {}",
        args.backend, args.repeat
    );
    let with_base = args.baseline.is_some();
    println!(
        "threads workers  train img/s  infer img/s  GFLOP/s  of peak  peak RSS MiB{}",
        if with_base {
            "   train ×base  infer ×base"
        } else {
            ""
        }
    );
    for r in &rows {
        let c = &r["current"];
        print!(
            "{:>7} {:>7}  {:>11.0}  {:>11.0}  {:>7.1}  {:>6.1}%  {:>12.0}",
            r["threads"],
            r["workers"],
            c["train_images_per_sec"].as_f64().unwrap_or(0.0),
            c["infer_images_per_sec"].as_f64().unwrap_or(0.0),
            c["train_gflops"].as_f64().unwrap_or(0.0),
            r["fraction_of_peak"].as_f64().unwrap_or(0.0) * 100.0,
            c["peak_rss_mib"].as_f64().unwrap_or(0.0),
        );
        if with_base {
            print!(
                "   {:>11.2}  {:>11.2}",
                r["train_ratio"].as_f64().unwrap_or(f64::NAN),
                r["infer_ratio"].as_f64().unwrap_or(f64::NAN)
            );
        }
        println!();
    }
    println!("(JSON: {})", path.display());
    Ok(())
}

fn better(best: Option<Value>, v: Value) -> Value {
    match best {
        Some(b) if b["train_images_per_sec"].as_f64() >= v["train_images_per_sec"].as_f64() => b,
        _ => v,
    }
}
