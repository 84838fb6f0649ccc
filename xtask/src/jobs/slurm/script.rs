//! The sbatch script of one job: resources from the job's needs, the site's options, its log as
//! Slurm's output file, and the job runner executing the job's spec.

use std::fmt::Write;

use anyhow::{Result, bail};

use super::{Slurm, Staged};
use crate::jobs::{Job, Records};

/// The job name Slurm shows for job `id`.
pub fn job_name(id: &str) -> String {
    format!("filterlab-{id}")
}

/// The sbatch script of `job`, which waits for the Slurm jobs `after` (ids, or placeholders in a
/// dry run) to succeed.
pub fn script(
    job: &Job,
    after: &[String],
    slurm: &Slurm,
    staged: &Staged,
    records: &Records,
) -> Result<String> {
    let mut s = String::from("#!/bin/sh\n");
    let mut directive = |option: &str, value: &str| -> Result<()> {
        if value.contains(['\n', '\r']) {
            bail!("{option}: the value {value:?} spans lines");
        }
        let _ = writeln!(s, "#SBATCH --{option}={value}");
        Ok(())
    };
    directive("job-name", &job_name(&job.id))?;
    directive("output", &records.log(&job.id).display().to_string())?;
    directive("open-mode", "append")?;
    directive("cpus-per-task", &job.needs.cpus.to_string())?;
    directive("mem", &format!("{}M", job.needs.mem_mib))?;
    if !after.is_empty() {
        directive("dependency", &format!("afterok:{}", after.join(":")))?;
        directive("kill-on-invalid-dep", "yes")?;
    }
    for (option, value) in [
        ("partition", &slurm.partition),
        ("account", &slurm.account),
        ("time", &slurm.time),
    ] {
        if let Some(v) = value {
            directive(option, v)?;
        }
    }
    let _ = writeln!(s, "# {}", job.label.replace('\n', " "));
    let _ = writeln!(s, "# {}", job.spec.command().replace('\n', " "));
    for line in &slurm.setup {
        if line.contains('\n') {
            bail!("--job-setup {line:?} spans lines");
        }
        let _ = writeln!(s, "{line}");
    }
    // The spec is one line of JSON (strings escape their newlines), so it cannot end the
    // quoted here-document early.
    let _ = writeln!(
        s,
        "exec {} run-job --trainer {} --state {} {} <<'SPEC'\n{}\nSPEC",
        sh_quote(&staged.runner.display().to_string()),
        sh_quote(&staged.trainer.display().to_string()),
        sh_quote(&records.dir().display().to_string()),
        sh_quote(&job.id),
        serde_json::to_string(&job.spec)?
    );
    Ok(s)
}

/// `s` as one word for `sh`: as it is when that is safe, single-quoted otherwise.
pub fn sh_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::slurm::{OnInterrupt, stage};
    use crate::jobs::{JobSpec, Needs};
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    fn slurm() -> Slurm {
        Slurm {
            partition: Some("gpu".into()),
            account: None,
            time: Some("1:00:00".into()),
            sbatch_args: vec![],
            setup: vec!["module load rust".into()],
            on_interrupt: OnInterrupt::Keep,
            poll: Duration::from_secs(5),
            runner: PathBuf::from("/bin/xtask"),
        }
    }

    fn job() -> Job {
        Job {
            id: "prune-l1".into(),
            label: "prune by l1".into(),
            deps: vec!["train-s1".into()],
            cost: 1.0,
            needs: Needs {
                cpus: 2,
                mem_mib: 3000,
            },
            spec: JobSpec::Trainer {
                args: vec!["prune".into(), "it's".into()],
            },
            done: PathBuf::from("/s/runs/pruned-l1/prune.json"),
        }
    }

    #[test]
    fn a_job_script() {
        let staged = stage::paths(Path::new("/s"), Some("sample")).unwrap();
        let records = Records::at(Path::new("/s/jobs"));
        let text = script(
            &job(),
            &["12".into(), "13".into()],
            &slurm(),
            &staged,
            &records,
        )
        .unwrap();
        let expected = "#!/bin/sh
#SBATCH --job-name=filterlab-prune-l1
#SBATCH --output=/s/jobs/prune-l1.log
#SBATCH --open-mode=append
#SBATCH --cpus-per-task=2
#SBATCH --mem=3000M
#SBATCH --dependency=afterok:12:13
#SBATCH --kill-on-invalid-dep=yes
#SBATCH --partition=gpu
#SBATCH --time=1:00:00
# prune by l1
# trainer prune it's
module load rust
exec /s/slurm/bin/xtask run-job --trainer /s/slurm/bin/trainer --state /s/jobs prune-l1 <<'SPEC'
{\"kind\":\"trainer\",\"args\":[\"prune\",\"it's\"]}
SPEC
";
        assert_eq!(text, expected);
        // No dependency lines without dependencies.
        let text = script(&job(), &[], &slurm(), &staged, &records).unwrap();
        assert!(!text.contains("dependency"));
        // A value that would end the directive line is refused.
        let mut bad = slurm();
        bad.account = Some("a\n#SBATCH --x".into());
        assert!(script(&job(), &[], &bad, &staged, &records).is_err());
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("/a/b-c_d.json"), "/a/b-c_d.json");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
    }
}
