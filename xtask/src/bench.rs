//! `cargo xtask bench`: training and inference throughput of the release trainer.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{build_trainer, target_dir, write_atomic};

/// Options of the benchmark.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Timed training steps per measurement.
    #[arg(long, default_value_t = 60)]
    pub steps: u32,
    /// Thread counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<u32>,
    /// Backend to measure (must be compiled into the trainer).
    #[arg(long, default_value = "flex")]
    pub backend: String,
    /// Repetitions of each measurement (the best is reported; the machines are noisy).
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Extra cargo features for the trainer build (e.g. wgpu).
    #[arg(long)]
    pub features: Option<String>,
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
) -> Result<serde_json::Value> {
    let out = Command::new(trainer)
        .args([
            "bench",
            "--json",
            "--backend",
            backend,
            "--steps",
            &steps.to_string(),
        ])
        .args(["--threads", &threads.to_string()])
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

/// Run the benchmark.
pub fn bench(args: &BenchArgs) -> Result<()> {
    let trainer = build_trainer(args.features.as_deref())?;
    let mut rows = Vec::new();
    for &threads in &args.threads {
        let mut best: Option<serde_json::Value> = None;
        for _ in 0..args.repeat.max(1) {
            let v = measure(&trainer, &args.backend, args.steps, threads)?;
            let rate = |x: &serde_json::Value| x["train_images_per_sec"].as_f64();
            if best.as_ref().is_none_or(|b| rate(&v) > rate(b)) {
                best = Some(v);
            }
        }
        rows.push(best.expect("at least one repetition"));
    }
    let report = serde_json::json!({ "backend": args.backend, "results": rows });
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
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
        "reference CNN on the embedded sample, backend {}, best of {}",
        args.backend, args.repeat
    );
    println!("threads  train img/s  infer img/s  train GFLOP/s  peak RSS MiB");
    for r in &rows {
        println!(
            "{:>7}  {:>11.0}  {:>11.0}  {:>13.1}  {:>12.0}",
            r["threads"],
            r["train_images_per_sec"].as_f64().unwrap_or(0.0),
            r["infer_images_per_sec"].as_f64().unwrap_or(0.0),
            r["train_gflops"].as_f64().unwrap_or(0.0),
            r["peak_rss_mib"].as_f64().unwrap_or(0.0),
        );
    }
    println!("(JSON: {})", path.display());
    Ok(())
}
