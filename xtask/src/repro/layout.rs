//! Where every output of the study lives, defined once: the plan writes there, the claims and
//! the report read from there. Paths are relative to the study's output directory (the report
//! links to them as they are).

use std::path::{Path, PathBuf};

/// A run directory's files.
pub const SUMMARY: &str = "summary.json";
/// A run's configuration.
pub const CONFIG: &str = "config.json";
/// A run's per-epoch metrics.
pub const METRICS: &str = "metrics.jsonl";
/// What the killed-and-resumed job records.
pub const KILLED: &str = "killed.json";
/// `trainer prune`'s report in the pruned run.
pub const PRUNE: &str = "prune.json";

/// The study's output directory and the paths inside it.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The output directory.
    pub out: PathBuf,
}

impl Layout {
    /// The absolute path of `rel`.
    pub fn abs(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.out.join(rel)
    }

    /// A run directory.
    pub fn run(name: &str) -> PathBuf {
        Path::new("runs").join(name)
    }

    /// An analysis directory.
    pub fn analysis(name: &str) -> PathBuf {
        Path::new("analysis").join(name)
    }

    /// The reference run of `seed`.
    pub fn reference(seed: u64) -> PathBuf {
        Self::run(&format!("ref-s{seed}"))
    }

    /// The repeat of the first seed's run (determinism).
    pub fn repeat(seed: u64) -> PathBuf {
        Self::run(&format!("ref-s{seed}-repeat"))
    }

    /// The first seed's run, killed after its first epoch and resumed.
    pub fn killed(seed: u64) -> PathBuf {
        Self::run(&format!("ref-s{seed}-killed"))
    }

    /// A symmetry run (`const` or `perturbed`).
    pub fn symmetry(kind: &str) -> PathBuf {
        Self::run(&format!("ref-{kind}"))
    }

    /// A deep plain CNN run (`he` or `small`).
    pub fn plain(kind: &str) -> PathBuf {
        Self::run(&format!("plain-{kind}"))
    }

    /// The cross-backend run on `backend`.
    pub fn backend(backend: &str) -> PathBuf {
        Self::run(&format!("backend-{backend}"))
    }

    /// The first seed's run pruned by `criterion` and fine-tuned.
    pub fn pruned(criterion: &str) -> PathBuf {
        Self::run(&format!("pruned-{criterion}"))
    }

    /// `trainer inspect` of a symmetry run.
    pub fn inspect(kind: &str) -> PathBuf {
        Self::analysis(&format!("inspect-{kind}"))
    }

    /// `trainer init-stats` on N(0, 1) inputs with weight seed `seed`.
    pub fn init_stats(seed: u64) -> PathBuf {
        Self::analysis(&format!("init-stats/seed-{seed}"))
    }

    /// `trainer init-stats` on real images (figures).
    pub fn init_stats_real() -> PathBuf {
        Self::analysis("init-stats/real-images")
    }

    /// `trainer redundancy` of the first seed's run.
    pub fn redundancy() -> PathBuf {
        Self::analysis("redundancy")
    }

    /// `trainer prune-sweep` of the first seed's run.
    pub fn sweep() -> PathBuf {
        Self::analysis("prune-sweep")
    }

    /// `trainer compare` of the seeds.
    pub fn compare() -> PathBuf {
        Self::analysis("compare")
    }

    /// The directory `trainer compare` writes into `compare` for the pair of runs `a` and `b`
    /// (their paths).
    pub fn compare_pair(compare: &Path, a: &Path, b: &Path) -> PathBuf {
        let name = |p: &Path| {
            p.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        };
        compare.join(format!("{}-vs-{}", name(a), name(b)))
    }

    /// A width multiplier as a file-name part: `0.5` → `w0.5`, `4` → `w4`.
    pub fn width_tag(width: f64) -> String {
        format!("w{width}")
    }

    /// A run of the width experiment.
    pub fn width_run(width: f64, seed: u64) -> PathBuf {
        Self::run(&format!("width-{}-s{seed}", Self::width_tag(width)))
    }

    /// `trainer compare` of one width's seeds.
    pub fn width_compare(width: f64) -> PathBuf {
        Self::analysis(&format!("width-{}/compare", Self::width_tag(width)))
    }

    /// `trainer prune-sweep` (with fine-tuning) of one width's run.
    pub fn width_sweep(width: f64, seed: u64) -> PathBuf {
        Self::analysis(&format!(
            "width-{}/prune-sweep-s{seed}",
            Self::width_tag(width)
        ))
    }

    /// An initialization scheme's name as a file-name part.
    pub fn scheme_tag(scheme: &str) -> String {
        scheme
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .trim_matches('-')
            .to_string()
    }

    /// A run of the initialization × redundancy experiment.
    pub fn scheme_run(name: &str, seed: u64) -> PathBuf {
        Self::run(&format!("init-{name}-s{seed}"))
    }

    /// `trainer redundancy` of a scheme's run, at initialization or trained.
    pub fn scheme_redundancy(name: &str, seed: u64, at_init: bool) -> PathBuf {
        Self::analysis(&format!(
            "init-{name}/s{seed}/redundancy-{}",
            if at_init { "at-init" } else { "trained" }
        ))
    }

    /// `trainer prune-sweep` of a scheme's run.
    pub fn scheme_sweep(name: &str, seed: u64) -> PathBuf {
        Self::analysis(&format!("init-{name}/s{seed}/prune-sweep"))
    }

    /// A run of the symmetry-breaking experiment (`noise-1e-4`, or `random`).
    pub fn breaking_run(kind: &str, seed: u64) -> PathBuf {
        Self::run(&format!("breaking-{kind}-s{seed}"))
    }

    /// `trainer inspect` (with its snapshots) of a symmetry-breaking run.
    pub fn breaking_inspect(kind: &str, seed: u64) -> PathBuf {
        Self::analysis(&format!("breaking-{kind}/s{seed}"))
    }

    /// A figure the study draws from all its outputs.
    pub fn figure(name: &str) -> PathBuf {
        Path::new("figures").join(name)
    }

    /// Job records and logs.
    pub fn jobs(&self) -> PathBuf {
        self.out.join("jobs")
    }
}

/// Files the analyses write, relative to their directories.
pub mod files {
    /// `trainer inspect`.
    pub const INSPECT: &str = "inspect.json";
    /// First-layer filters (`trainer inspect`).
    pub const FIRST_LAYER: &str = "filters-first-layer.svg";
    /// Effective rank of every layer over the snapshots (`trainer inspect`).
    pub const EFFECTIVE_RANK: &str = "effective-rank.svg";
    /// `trainer init-stats`.
    pub const INIT_STATS: &str = "init-stats.json";
    /// Activation std figure (`trainer init-stats`).
    pub const ACTIVATION_STD: &str = "activation-std.svg";
    /// Gradient std figure (`trainer init-stats`).
    pub const GRADIENT_STD: &str = "gradient-std.svg";
    /// `trainer redundancy`.
    pub const REDUNDANCY: &str = "redundancy.json";
    /// `trainer prune-sweep`.
    pub const SWEEP: &str = "sweep.json";
    /// Accuracy figure (`trainer prune-sweep`).
    pub const SWEEP_FIGURE: &str = "accuracy-vs-ratio.svg";
    /// `trainer compare`.
    pub const COMPARE: &str = "compare.json";
    /// Correlation heatmap of a layer (`trainer redundancy`).
    pub fn correlation(layer: &str) -> String {
        format!("correlation-{layer}.svg")
    }
    /// First-layer filters of A, B and B aligned onto A, side by side (`trainer compare`).
    pub const PAIR_FILTERS: &str = "filters.svg";
    /// Matched correlation histogram.
    pub const PAIR_MATCHED: &str = "matched-correlation.svg";
    /// CKA heatmap.
    pub const PAIR_CKA: &str = "cka.svg";
    /// Many-to-one reconstruction: R² against the number of B's maps.
    pub const PAIR_RECONSTRUCTION: &str = "reconstruction.svg";
    /// Interpolation curves.
    pub const PAIR_INTERPOLATION: &str = "interpolation.svg";
}
