//! `cargo xtask <task>`: project automation.
//!
//! - `bench`: training and inference throughput of the release trainer.
//! - `repro`: the reproducibility study (report, figures, a verdict per claim).
//! - `sweep`: `trainer prune-sweep` with fine-tuning, one job per point.
//!
//! `repro` and `sweep` run their jobs on this machine or on a Slurm cluster (`--executor`).

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use xtask::bench::{BenchArgs, bench};
use xtask::jobs::slurm::{OnInterrupt, Slurm};
use xtask::jobs::{Executor, JobSpec, Outcome, run_one};
use xtask::repro::{Options, Profile, Settings, dry_run, run, timestamp};
use xtask::sweep::SweepOptions;
use xtask::{build_trainer, features_for, root, target_dir};

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
    /// Run the reproducibility study: train and analyse the runs behind each claim, and write
    /// REPORT.md, summary.json and the figures. Exits non-zero if a claim fails.
    Repro(ReproArgs),
    /// `trainer prune-sweep --finetune-epochs N` as a graph of jobs: one `trainer prune`
    /// with fine-tuning per (criterion, ratio), side by side or on a Slurm cluster, then the
    /// sweep's table, sweep.json and figure from their runs.
    Sweep(SweepArgs),
    /// The README's Findings section from a study's summary.json: publish the study's
    /// summary, report and figures into the repository (--publish), then print the section,
    /// write it into the README (--write) or check that the README's is up to date (--check).
    Findings(FindingsArgs),
    /// Run one job's spec (read from standard input) with the trainer and record its success:
    /// what every job of `--executor slurm` runs on its node.
    #[command(hide = true)]
    RunJob(RunJobArgs),
}

/// Where the jobs run, and the options of a Slurm cluster.
#[derive(clap::Args)]
struct ExecutorArgs {
    /// Where the jobs run: this machine, or a Slurm cluster (each job one sbatch submission
    /// that waits for its dependencies; --out must then be on a filesystem every node sees).
    #[arg(long, value_enum, default_value_t = ExecutorKind::Local)]
    executor: ExecutorKind,
    /// Jobs run at the same time by the local executor [default: the number of cores].
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Slurm partition of every job.
    #[arg(long, help_heading = SLURM)]
    partition: Option<String>,
    /// Slurm account of every job.
    #[arg(long, help_heading = SLURM)]
    account: Option<String>,
    /// Time limit of every job (sbatch --time: MINUTES, HH:MM:SS, D-HH:MM…). A training that
    /// reaches it resumes from its checkpoint when the study is run again.
    #[arg(long, help_heading = SLURM)]
    time: Option<String>,
    /// Another sbatch argument for every job, e.g. --sbatch-arg=--qos=long (repeatable;
    /// overrides the scripts' own directives, such as --mem or --cpus-per-task).
    #[arg(long, value_name = "ARG", allow_hyphen_values = true, help_heading = SLURM)]
    sbatch_arg: Vec<String>,
    /// A shell line every job runs before the job itself, e.g. 'module load foo' (repeatable).
    #[arg(long, value_name = "LINE", help_heading = SLURM)]
    job_setup: Vec<String>,
    /// What Ctrl-C does with the submitted jobs: ask (in a terminal; without one, keep), cancel
    /// them with scancel, or keep them running (a re-run follows them) [default: ask].
    #[arg(long, value_enum, help_heading = SLURM)]
    on_interrupt: Option<OnInterrupt>,
    /// Seconds between two looks at the queue (squeue) [default: 5].
    #[arg(long, value_name = "SECONDS", help_heading = SLURM)]
    poll: Option<f64>,
    /// Print the budget and every job with its command line (with --executor slurm: every
    /// job's sbatch script and the dependency graph); run nothing.
    #[arg(long)]
    dry_run: bool,
}

const SLURM: &str = "Slurm (--executor slurm)";

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExecutorKind {
    /// This machine.
    Local,
    /// A Slurm cluster, from a machine that can submit jobs to it.
    Slurm,
}

impl ExecutorArgs {
    fn executor(&self, cores: usize) -> Result<Executor> {
        let given = [
            ("--partition", self.partition.is_some()),
            ("--account", self.account.is_some()),
            ("--time", self.time.is_some()),
            ("--sbatch-arg", !self.sbatch_arg.is_empty()),
            ("--job-setup", !self.job_setup.is_empty()),
            ("--on-interrupt", self.on_interrupt.is_some()),
            ("--poll", self.poll.is_some()),
        ];
        match self.executor {
            ExecutorKind::Local => {
                if let Some((name, _)) = given.iter().find(|(_, g)| *g) {
                    bail!("{name} applies to --executor slurm");
                }
                Ok(Executor::Local {
                    parallel: self.jobs.unwrap_or(cores).max(1),
                    cores,
                })
            }
            ExecutorKind::Slurm => {
                if self.jobs.is_some() {
                    bail!(
                        "--jobs applies to the local executor: on Slurm every job is a submission of its own"
                    );
                }
                let poll = self.poll.unwrap_or(5.0);
                if !(poll.is_finite() && poll > 0.0) {
                    bail!("--poll {poll}: give a positive number of seconds");
                }
                Ok(Executor::Slurm(Slurm {
                    partition: self.partition.clone(),
                    account: self.account.clone(),
                    time: self.time.clone(),
                    sbatch_args: self.sbatch_arg.clone(),
                    setup: self.job_setup.clone(),
                    on_interrupt: self.on_interrupt.unwrap_or(OnInterrupt::Ask),
                    poll: Duration::from_secs_f64(poll),
                    runner: std::env::current_exe()
                        .context("cannot find this program, to stage it as the job runner")?,
                }))
            }
        }
    }
}

/// Which trainer the jobs run.
#[derive(clap::Args)]
struct TrainerArgs {
    /// Extra cargo features for the trainer build (e.g. wgpu, to include the GPU backend in the
    /// cross-backend claim of a CPU study; `--backend wgpu` adds it itself).
    #[arg(long, conflicts_with = "trainer")]
    features: Option<String>,
    /// Run this trainer binary instead of building one.
    #[arg(long, value_name = "PATH")]
    trainer: Option<PathBuf>,
}

impl TrainerArgs {
    /// The trainer binary: the one given, or one built with what `backend` needs.
    fn binary(&self, backend: &str) -> Result<PathBuf> {
        match &self.trainer {
            Some(t) if t.is_file() => Ok(t.clone()),
            Some(t) => bail!("--trainer {} is not a file", t.display()),
            None => {
                eprintln!("building the trainer (release)...");
                build_trainer(features_for(backend, self.features.as_deref()).as_deref())
            }
        }
    }
}

/// `--profile`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProfileArg {
    /// The embedded sample, few epochs: under 10 minutes on 2 cores.
    Quick,
    /// Full Fashion-MNIST, widths up to ×4: one night on 2 cores.
    Full,
    /// Full Fashion-MNIST, widths up to ×8: for a cluster.
    Cluster,
}

#[derive(clap::Args)]
struct ReproArgs {
    /// The study's size: quick (the embedded sample, few epochs: under 10 minutes on 2 cores),
    /// full (the full Fashion-MNIST, 5 seeds, widths ×0.5 to ×4: one night on 2 cores) or
    /// cluster (full plus the ×8 width: a cluster's). `--dry-run` prints each one's budget.
    #[arg(long, value_enum, conflicts_with_all = ["quick", "full"])]
    profile: Option<ProfileArg>,
    /// The same as --profile quick (the default).
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// The same as --profile full.
    #[arg(long)]
    full: bool,
    /// A miniature study for tests (seconds; verdicts not meaningful).
    #[arg(long, hide = true, conflicts_with_all = ["quick", "full", "profile"])]
    tiny: bool,
    /// Output directory; re-running with the same one reuses finished runs whose definition
    /// has not changed [default: target/repro/<timestamp>]. With --executor slurm it is
    /// required and must be on a filesystem that every node of the cluster sees: the trainer,
    /// the job runner and the data are staged there, and every job writes there.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Seeds of every multi-seed experiment (1 to N; at least 2) [default: 3, or 5 on full
    /// data].
    #[arg(long, value_name = "N")]
    seeds: Option<usize>,
    /// Backend of every run (`wgpu` adds its cargo feature to the build; the cross-backend
    /// claim compares the study's backend with every other compiled one).
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Full Fashion-MNIST directory for the full and cluster profiles [default: datasets/fashion-mnist, then
    /// /usr/share/datasets/fashion-mnist].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    #[command(flatten)]
    trainer: TrainerArgs,
    #[command(flatten)]
    exec: ExecutorArgs,
    /// Deliberately break a claim, to see a failure reported (`determinism`).
    #[arg(long, hide = true)]
    break_claim: Option<String>,
}

#[derive(clap::Args)]
struct FindingsArgs {
    /// The study: an output directory of `cargo xtask repro` (or its published copy).
    #[arg(value_name = "STUDY_DIR")]
    study: PathBuf,
    /// Copy the study's summary.json, REPORT.md and figures (SVG/PNG up to 1 MiB each) here
    /// first, and link the section to this copy (a path relative to the repository root, e.g.
    /// results/full).
    #[arg(long, value_name = "DIR")]
    publish: Option<PathBuf>,
    /// Replace the section in this README (or add it before `## Commands`).
    #[arg(long, value_name = "README", conflicts_with = "check")]
    write: Option<PathBuf>,
    /// Exit non-zero unless this README's section is what the study generates.
    #[arg(long, value_name = "README")]
    check: Option<PathBuf>,
}

#[derive(clap::Args)]
struct SweepArgs {
    /// The trained run (with --executor slurm, on a filesystem every node sees).
    #[arg(value_name = "RUN_DIR")]
    run: PathBuf,
    /// Criteria, comma-separated [default: all seven].
    #[arg(long, value_delimiter = ',')]
    criteria: Vec<String>,
    /// Pruning ratios, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.3,0.5,0.7")]
    ratios: Vec<f64>,
    /// Layers to prune, comma-separated [default: every conv layer].
    #[arg(long, value_name = "L1,L2", value_delimiter = ',')]
    layers: Vec<String>,
    /// Rank filters over all selected layers together.
    #[arg(long)]
    global: bool,
    /// Fine-tuning epochs of every pruned model.
    #[arg(long, default_value_t = 1)]
    finetune_epochs: usize,
    /// Training images for the activation statistics of the data-dependent criteria.
    #[arg(long)]
    samples: Option<u64>,
    /// Dataset directory, or `sample` [default: the run's own data].
    #[arg(long, value_name = "DIR")]
    data: Option<String>,
    /// Backend [default: the run's].
    #[arg(long)]
    backend: Option<String>,
    /// Where to write sweep.json, sweep.txt, the figure, a run per point (runs/) and the jobs'
    /// records and logs (jobs/) [default: RUN_DIR/prune-sweep]. With --executor slurm, on a
    /// filesystem every node sees; the trainer and the job runner are staged there.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    trainer: TrainerArgs,
    #[command(flatten)]
    exec: ExecutorArgs,
}

#[derive(clap::Args)]
struct RunJobArgs {
    /// The trainer binary.
    #[arg(long)]
    trainer: PathBuf,
    /// The directory of the job records and logs.
    #[arg(long)]
    state: PathBuf,
    /// The job's id.
    id: String,
}

fn main() -> std::process::ExitCode {
    match run_cli(Cli::parse()) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            for c in e.chain().skip(1) {
                eprintln!("  caused by: {c}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_cli(cli: Cli) -> Result<bool> {
    match cli.task {
        Task::Bench(args) => bench(&args).map(|()| true),
        Task::Repro(args) => repro(&args),
        Task::Sweep(args) => sweep(&args),
        Task::Findings(args) => findings(&args),
        Task::RunJob(args) => run_job(&args).map(|()| true),
    }
}

fn findings(args: &FindingsArgs) -> Result<bool> {
    use xtask::repro::findings;
    if args.write.is_some() {
        // The README links the published files by this relative path.
        match &args.publish {
            None => bail!(
                "--write needs --publish DIR: the README links the study's files, so they must be \
                 published inside the repository first (e.g. --publish results/full)"
            ),
            Some(to)
                if to.is_absolute()
                    || to
                        .components()
                        .any(|c| !matches!(c, std::path::Component::Normal(_))) =>
            {
                bail!(
                    "--publish {}: give a plain relative path from the repository root (e.g. \
                     results/full), which the README's links can use",
                    to.display()
                )
            }
            Some(_) => {}
        }
    }
    let (study, prefix) = match &args.publish {
        Some(to) => {
            let copied = findings::publish(&args.study, to)?;
            eprintln!("published {} files to {}", copied.len(), to.display());
            (to.clone(), to.clone())
        }
        None => (args.study.clone(), args.study.clone()),
    };
    let generated = findings::render(
        &findings::Study::open(&study)?,
        &prefix.display().to_string(),
    );
    if let Some(readme) = &args.write {
        let text = std::fs::read_to_string(readme)
            .with_context(|| format!("cannot read {}", readme.display()))?;
        xtask::write_atomic(readme, findings::splice(&text, &generated)?.as_bytes())?;
        eprintln!("wrote the Findings section of {}", readme.display());
    } else if let Some(readme) = &args.check {
        let text = std::fs::read_to_string(readme)
            .with_context(|| format!("cannot read {}", readme.display()))?;
        if findings::section(&text) != Some(generated.as_str()) {
            eprintln!(
                "the Findings section of {} is not what {} generates: run `cargo xtask findings {} \
                 --write {}`",
                readme.display(),
                study.display(),
                study.display(),
                readme.display()
            );
            return Ok(false);
        }
        eprintln!("the Findings section of {} is up to date", readme.display());
    } else {
        print!("{generated}");
    }
    Ok(true)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn full_data(explicit: Option<PathBuf>) -> Option<PathBuf> {
    let complete = |d: &PathBuf| {
        d.join("train-images-idx3-ubyte.gz").is_file()
            || d.join("train-images-idx3-ubyte").is_file()
    };
    explicit.or_else(|| {
        [
            root().join("datasets/fashion-mnist"),
            PathBuf::from("/usr/share/datasets/fashion-mnist"),
        ]
        .into_iter()
        .find(complete)
    })
}

fn repro(args: &ReproArgs) -> Result<bool> {
    let profile = if let Some(p) = args.profile {
        match p {
            ProfileArg::Quick => Profile::Quick,
            ProfileArg::Full => Profile::Full,
            ProfileArg::Cluster => Profile::Cluster,
        }
    } else if args.full {
        Profile::Full
    } else if args.tiny {
        Profile::Tiny
    } else {
        Profile::Quick
    };
    if let Some(dir) = &args.data
        && !dir.is_dir()
    {
        bail!("--data {} is not a directory", dir.display());
    }
    let mut settings = Settings::new(profile, full_data(args.data.clone()))?;
    if let Some(n) = args.seeds {
        settings = settings.with_seeds(n)?;
    }
    let executor = args.exec.executor(cores())?;
    let out = match (&args.out, &executor) {
        (Some(out), _) => out.clone(),
        (None, Executor::Slurm(_)) => bail!(
            "--executor slurm needs --out DIR, a directory on a filesystem that every node of \
             the cluster sees"
        ),
        (None, Executor::Local { .. }) => target_dir().join("repro").join(timestamp()),
    };
    let options = Options {
        settings,
        out: out.clone(),
        executor,
        backend: args.backend.clone(),
        trainer: args.trainer.binary(&args.backend)?,
        break_claim: args.break_claim.clone(),
    };
    if args.exec.dry_run {
        print!("{}", dry_run(&options)?);
        return Ok(true);
    }
    let summary = run(&options)?;
    println!();
    for c in &summary.claims {
        println!(
            "{:>2}. {:<30} {:?}: {}",
            c.id, c.name, c.verdict, c.measured
        );
    }
    println!(
        "\nreport: {}\nsummary: {}",
        out.join("REPORT.md").display(),
        out.join("summary.json").display()
    );
    Ok(summary.all_passed)
}

fn sweep(args: &SweepArgs) -> Result<bool> {
    let options = SweepOptions {
        run: args.run.clone(),
        criteria: args.criteria.clone(),
        ratios: args.ratios.clone(),
        layers: args.layers.clone(),
        global: args.global,
        finetune_epochs: args.finetune_epochs,
        samples: args.samples,
        data: args.data.clone(),
        backend: args.backend.clone(),
        out: args
            .out
            .clone()
            .unwrap_or_else(|| args.run.join("prune-sweep")),
        executor: args.exec.executor(cores())?,
        trainer: args
            .trainer
            .binary(args.backend.as_deref().unwrap_or("flex"))?,
    };
    if args.exec.dry_run {
        print!("{}", xtask::sweep::dry_run(&options)?);
        return Ok(true);
    }
    let (outcomes, table) = xtask::sweep::run(&options)?;
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|(_, o)| !o.succeeded())
        .map(|(id, o)| format!("{id}: {o}"))
        .collect();
    if let Some(table) = table {
        println!(
            "\n{table}\nsweep: {}",
            options.out.join("sweep.json").display()
        );
    }
    for f in &failed {
        eprintln!("{f}");
    }
    Ok(failed.is_empty() && outcomes.values().all(Outcome::succeeded))
}

fn run_job(args: &RunJobArgs) -> Result<()> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the job's spec from standard input")?;
    let spec: JobSpec =
        serde_json::from_str(&text).context("the job's spec (standard input) is not valid")?;
    if let (Ok(job), Ok(node)) = (
        std::env::var("SLURM_JOB_ID"),
        std::env::var("SLURMD_NODENAME"),
    ) {
        eprintln!("--- {}: Slurm job {job} on {node}", args.id);
    }
    // The cores Slurm allocated (--cpus-per-task, which --sbatch-arg may override).
    let threads = std::env::var("SLURM_CPUS_PER_TASK")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    run_one(&args.state, &args.id, &spec, &args.trainer, threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
