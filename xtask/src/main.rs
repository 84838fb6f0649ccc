//! Project automation, run as `cargo xtask <task>`.
//!
//! - `bench`: build the trainer (release) and measure training and inference throughput of the
//!   reference CNN on the embedded sample, for 1 and 2 threads.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "filterlab project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Train the reference CNN for a fixed number of steps on the sample and report images/s
    /// (training and inference) and peak memory, as a table and as JSON.
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Timed training steps per measurement.
    #[arg(long, default_value_t = 60)]
    steps: u32,
    /// Thread counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<u32>,
    /// Backend to measure (must be compiled into the trainer).
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Repetitions of each measurement (the best is reported; the machines are noisy).
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    /// Extra cargo features for the trainer build (e.g. wgpu).
    #[arg(long)]
    features: Option<String>,
    /// Print only JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for c in e.chain().skip(1) {
                eprintln!("  caused by: {c}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.task {
        Task::Bench(args) => bench(&args),
    }
}

/// The workspace root (xtask's parent directory).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Build the trainer in release mode and return the binary's path.
fn build_trainer(features: Option<&str>) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root())
        .args(["build", "--release", "--quiet", "-p", "trainer"]);
    if let Some(f) = features {
        cmd.args(["--features", f]);
    }
    let status = cmd.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("building the trainer failed");
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target"));
    Ok(target.join("release").join("trainer"))
}

fn bench(args: &BenchArgs) -> Result<()> {
    let trainer = build_trainer(args.features.as_deref())?;
    let mut rows = Vec::new();
    for &threads in &args.threads {
        let mut best: Option<serde_json::Value> = None;
        for _ in 0..args.repeat.max(1) {
            let out = Command::new(&trainer)
                .args([
                    "bench",
                    "--json",
                    "--backend",
                    &args.backend,
                    "--steps",
                    &args.steps.to_string(),
                    "--threads",
                    &threads.to_string(),
                ])
                .output()
                .with_context(|| format!("cannot run {}", trainer.display()))?;
            if !out.status.success() {
                bail!(
                    "trainer bench failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                .context("trainer bench printed invalid JSON")?;
            let better = |a: &serde_json::Value, b: &serde_json::Value| {
                a["train_images_per_sec"].as_f64() > b["train_images_per_sec"].as_f64()
            };
            if best.as_ref().is_none_or(|b| better(&v, b)) {
                best = Some(v);
            }
        }
        rows.push(best.expect("at least one repetition"));
    }
    let report = serde_json::json!({ "backend": args.backend, "results": rows });
    let dir = root().join("target").join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("latest.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
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
