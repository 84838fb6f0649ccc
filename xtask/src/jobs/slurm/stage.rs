//! What a cluster's nodes need, put under the output directory, which they all see: the trainer,
//! the job runner (this xtask binary) and the data directory, if the jobs read one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::write_atomic;

/// What was staged, and where.
#[derive(Debug, Clone)]
pub struct Staged {
    /// The output directory, absolute.
    pub out: PathBuf,
    /// The trainer binary the jobs run.
    pub trainer: PathBuf,
    /// The job runner: this xtask binary, which runs one job's spec on a node.
    pub runner: PathBuf,
    /// `--data` of the jobs: the staged copy of a data directory, or the value as it was.
    pub data: Option<String>,
}

/// The paths under `out` where things are staged, for `data` (a `--data` value).
pub fn paths(out: &Path, data: Option<&str>) -> Result<Staged> {
    let out = std::path::absolute(out)
        .with_context(|| format!("cannot make {} absolute", out.display()))?;
    if let Some(bad) = out
        .to_str()
        .and_then(|s| {
            s.chars()
                .find(|c| c.is_whitespace() || "'\"\\".contains(*c))
        })
        .or(out.to_str().is_none().then_some('?'))
    {
        bail!(
            "--out {}: with --executor slurm the path must be UTF-8 without whitespace, quotes or \
             backslashes ({bad:?}), since sbatch script lines carry it",
            out.display()
        );
    }
    let bin = out.join("slurm/bin");
    let data = data.map(|d| match Path::new(d).file_name() {
        Some(name) if d != "sample" && Path::new(d).is_dir() => {
            out.join("slurm/data").join(name).display().to_string()
        }
        _ => d.to_string(),
    });
    Ok(Staged {
        trainer: bin.join("trainer"),
        runner: bin.join("xtask"),
        data,
        out,
    })
}

/// Check that `out` can hold a study that every node sees, then copy `trainer`, `runner` and the
/// data directory `data` (if it is one) to their places under it (a copy is rewritten only if
/// it differs).
pub fn stage(out: &Path, trainer: &Path, runner: &Path, data: Option<&str>) -> Result<Staged> {
    check_out(out)?;
    let staged = paths(out, data)?;
    copy_if_changed(trainer, &staged.trainer)?;
    copy_if_changed(runner, &staged.runner)?;
    if let (Some(src), Some(dst)) = (data, &staged.data)
        && src != dst
    {
        copy_tree(Path::new(src), Path::new(dst))?;
    }
    Ok(staged)
}

/// Refuse an output directory whose parent is missing, which cannot be written, or which lives
/// in this machine's memory (tmpfs), where no other node can see it.
pub fn check_out(out: &Path) -> Result<()> {
    let abs = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    let parent = abs.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        bail!(
            "--out {}: the directory {} does not exist; --out must be on a filesystem that every \
             node of the cluster sees",
            out.display(),
            parent.display()
        );
    }
    std::fs::create_dir_all(&abs)
        .with_context(|| format!("cannot create --out {}", out.display()))?;
    let probe = abs.join(format!(".write-test-{}", std::process::id()));
    write_atomic(&probe, b"")
        .with_context(|| format!("--out {} is not writable", out.display()))?;
    let _ = std::fs::remove_file(&probe);
    if let Some(fs) = filesystem(&abs)
        && ["tmpfs", "ramfs"].contains(&fs.as_str())
    {
        bail!(
            "--out {} is on {fs}, this machine's memory, which the cluster's nodes cannot see; \
             pick a directory on a filesystem every node mounts (a home, project or scratch \
             space)",
            out.display()
        );
    }
    Ok(())
}

/// The type of the filesystem holding `path`, from `/proc/self/mountinfo` (Linux).
pub fn filesystem(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines()
        .filter_map(|l| {
            // ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER
            let fields: Vec<&str> = l.split(' ').collect();
            let mount = unescape_mount(fields.get(4)?);
            let dash = fields.iter().position(|f| *f == "-")?;
            let fs = fields.get(dash + 1)?;
            path.starts_with(&mount)
                .then(|| (mount.as_os_str().len(), fs.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, fs)| fs)
}

/// A mount point as mountinfo writes it (space, tab, newline and backslash as `\ooo`).
fn unescape_mount(s: &str) -> PathBuf {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(c as char);
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    PathBuf::from(out)
}

/// Copy the file `src` to `dst` (same permissions) through a temporary file and a rename,
/// unless `dst` already holds the same bytes. A process still running the old `dst` keeps it.
fn copy_if_changed(src: &Path, dst: &Path) -> Result<()> {
    let bytes = std::fs::read(src).with_context(|| format!("cannot read {}", src.display()))?;
    if std::fs::read(dst).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    if let Some(dir) = dst.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_atomic(dst, &bytes)?;
    let permissions = std::fs::metadata(src)?.permissions();
    std::fs::set_permissions(dst, permissions)
        .with_context(|| format!("cannot set the permissions of {}", dst.display()))
}

/// Copy the directory tree `src` to `dst`, file by file.
fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let entries =
        std::fs::read_dir(src).with_context(|| format!("cannot read {}", src.display()))?;
    for entry in entries {
        let entry = entry?;
        let to = dst.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &to)?;
        } else {
            copy_if_changed(&entry.path(), &to)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_paths_and_copies() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("fashion");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("a.gz"), b"a").unwrap();
        std::fs::write(data.join("sub/b"), b"b").unwrap();
        let trainer = dir.path().join("trainer");
        std::fs::write(&trainer, b"binary").unwrap();
        let out = dir.path().join("study");
        let data_arg = data.display().to_string();
        let s = stage(&out, &trainer, &trainer, Some(&data_arg)).unwrap();
        assert_eq!(s.trainer, out.join("slurm/bin/trainer"));
        assert_eq!(std::fs::read(&s.runner).unwrap(), b"binary");
        let staged_data = PathBuf::from(s.data.unwrap());
        assert_eq!(staged_data, out.join("slurm/data/fashion"));
        assert_eq!(std::fs::read(staged_data.join("sub/b")).unwrap(), b"b");
        // `sample` is embedded in the trainer: nothing to stage.
        assert_eq!(paths(&out, Some("sample")).unwrap().data.unwrap(), "sample");
        // Paths sbatch lines cannot carry, and missing parents, are refused.
        assert!(paths(Path::new("/a b/c"), None).is_err());
        let err = check_out(&dir.path().join("missing/study")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn mount_points_unescape() {
        assert_eq!(unescape_mount("/a\\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape_mount("/plain"), PathBuf::from("/plain"));
        assert!(filesystem(Path::new("/")).is_some());
    }
}
