//! Project automation behind `cargo xtask`: the benchmark and the reproducibility study. Both
//! drive the release `trainer` binary and read the JSON it writes.

pub mod bench;
pub mod jobs;
pub mod repro;
pub mod sweep;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The workspace root (xtask's parent directory).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The target directory cargo uses.
pub fn target_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target"))
}

/// Build the trainer in release mode (with extra `features`) and return the binary's path.
pub fn build_trainer(features: Option<&str>) -> Result<PathBuf> {
    build_trainer_in(&root(), &target_dir(), features)
}

/// The cargo features the trainer needs for `backend` plus the extra ones asked for.
pub fn features_for(backend: &str, extra: Option<&str>) -> Option<String> {
    let mut f: Vec<&str> = extra
        .into_iter()
        .flat_map(|e| e.split([',', ' ']))
        .filter(|s| !s.is_empty())
        .collect();
    if backend == "wgpu" && !f.contains(&backend) {
        f.push(backend);
    }
    (!f.is_empty()).then(|| f.join(","))
}

/// Build the trainer of the checkout at `tree` into the target directory `target`.
pub fn build_trainer_in(tree: &Path, target: &Path, features: Option<&str>) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(tree).env("CARGO_TARGET_DIR", target).args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "trainer",
    ]);
    if let Some(f) = features {
        cmd.args(["--features", f]);
    }
    let status = cmd.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("building the trainer in {} failed", tree.display());
    }
    Ok(target.join("release").join("trainer"))
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}
