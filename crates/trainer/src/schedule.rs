//! Learning-rate schedules (`--lr-schedule`): a small grammar over the schedulers Burn ships
//! (`burn::lr_scheduler`).
//!
//! Every scheduler is a fixed function of the number of steps taken, so the learning rate at any
//! point of a run is rebuilt from the schedule, the base learning rate and the run's length,
//! then advanced by the steps already taken: a resumed run uses the same learning rates, bit for
//! bit, as an uninterrupted one, and checkpoints need no scheduler state.

use anyhow::{Result, bail};
use burn::lr_scheduler::LrSchedulerConfig;
use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::lr_scheduler::exponential::ExponentialLrSchedulerConfig;
use burn::lr_scheduler::linear::LinearLrSchedulerConfig;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::lr_scheduler::sequential::SequentialLrSchedulerConfig;
use burn::lr_scheduler::step::StepLrSchedulerConfig;

/// `--lr-schedule`'s help: the grammar.
pub(crate) const SCHEDULE_HELP: &str = "\
How the learning rate changes from step to step: one phase, or a warm-up, `+` and one phase.

  constant               --lr throughout
  step(EPOCHS[, GAMMA])  --lr, multiplied by GAMMA (default 0.1) every EPOCHS epochs
  exponential(GAMMA)     --lr, multiplied by GAMMA after every step (GAMMA in (0, 1])
  cosine[(MIN_LR)]       cosine annealing from --lr down to MIN_LR (default 0) over the run
  linear[(FINAL_LR)]     a straight line from --lr to FINAL_LR (default 0) over the run
  linear-warmup(STEPS)   rising in a straight line from --lr/STEPS to --lr over the first STEPS
                         steps; then constant, or the phase after `+`

Examples: cosine, linear-warmup(500)+cosine, step(2, 0.5), linear-warmup(200)+linear(1e-5).
After a warm-up, the next phase counts its steps and epochs from the warm-up's end, and cosine
and linear span the rest of the run. cosine, linear, exponential and warm-ups need --lr ≤ 1
(Burn's schedulers refuse more). The schedule is recorded in config.json and a resumed run
follows it to the same bits; the learning rate of every epoch's last step is in metrics.jsonl.";

/// The phase after an optional warm-up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    /// The base learning rate throughout.
    Constant,
    /// Multiplied by `gamma` every `epochs` epochs (Burn's `StepLrScheduler`).
    Step {
        /// Epochs between decays (≥ 1).
        epochs: usize,
        /// Factor, in (0, 1].
        gamma: f64,
    },
    /// Multiplied by `gamma` after every step (Burn's `ExponentialLrScheduler`).
    Exponential {
        /// Factor, in (0, 1].
        gamma: f64,
    },
    /// Cosine annealing to `min_lr` over the rest of the run (Burn's
    /// `CosineAnnealingLrScheduler`).
    Cosine {
        /// The learning rate after the run's last step.
        min_lr: f64,
    },
    /// A straight line to `final_lr` over the rest of the run (Burn's `LinearLrScheduler`).
    Linear {
        /// The learning rate after the run's last step.
        final_lr: f64,
    },
}

/// A learning-rate schedule: `--lr-schedule`, recorded in `config.json` in its canonical text
/// form (which parses back to the same value).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LrSchedule {
    /// Steps of linear warm-up before `phase` (none: 0).
    pub warmup: usize,
    /// What follows the warm-up.
    pub phase: Phase,
}

impl Default for LrSchedule {
    /// The base learning rate at every step.
    fn default() -> Self {
        LrSchedule {
            warmup: 0,
            phase: Phase::Constant,
        }
    }
}

impl LrSchedule {
    /// Whether this is the constant schedule.
    pub fn is_constant(&self) -> bool {
        *self == LrSchedule::default()
    }

    /// Burn's scheduler for a run of `total_steps` optimizer steps, `steps_per_epoch` per epoch,
    /// with base learning rate `lr`, before its first step.
    fn scheduler(
        &self,
        lr: f64,
        steps_per_epoch: usize,
        total_steps: usize,
    ) -> Result<ModuleLrScheduler> {
        if self.warmup > 0 && self.warmup >= total_steps {
            bail!(
                "--lr-schedule {self}: the warm-up of {} steps is not shorter than the run ({} \
                 steps)",
                self.warmup,
                total_steps
            );
        }
        // Steps left for the phase after the warm-up.
        let rest = total_steps - self.warmup;
        let phase: LrSchedulerConfig = match self.phase {
            Phase::Constant => LrSchedulerConfig::Constant(lr),
            Phase::Step { epochs, gamma } => {
                StepLrSchedulerConfig::new(lr, epochs.saturating_mul(steps_per_epoch).max(1))
                    .with_gamma(gamma)
                    .into()
            }
            Phase::Exponential { gamma } => ExponentialLrSchedulerConfig::new(lr, gamma).into(),
            Phase::Cosine { min_lr } => CosineAnnealingLrSchedulerConfig::new(lr, rest)
                .with_min_lr(min_lr)
                .into(),
            Phase::Linear { final_lr } => LinearLrSchedulerConfig::new(lr, final_lr, rest).into(),
        };
        let (schedulers, milestones) = if self.warmup > 0 {
            let warmup = LinearLrSchedulerConfig::new(lr / self.warmup as f64, lr, self.warmup);
            (vec![warmup.into(), phase], vec![self.warmup])
        } else {
            (vec![phase], Vec::new())
        };
        SequentialLrSchedulerConfig::new(schedulers, milestones)
            .init()
            .map_err(|why| {
                anyhow::anyhow!("--lr-schedule {self} cannot be used with --lr {lr}: {why}")
            })
    }
}

/// The learning rate of each optimizer step of a run.
pub(crate) struct LearningRates {
    scheduler: ModuleLrScheduler,
    last: Option<f64>,
}

impl LearningRates {
    /// The learning rates of a run of `total_steps` steps (`steps_per_epoch` per epoch) with
    /// base learning rate `lr`, after `steps_taken` of them.
    pub(crate) fn at(
        schedule: &LrSchedule,
        lr: f64,
        steps_per_epoch: usize,
        total_steps: usize,
        steps_taken: usize,
    ) -> Result<Self> {
        let mut rates = LearningRates {
            scheduler: schedule.scheduler(lr, steps_per_epoch, total_steps)?,
            last: None,
        };
        for _ in 0..steps_taken {
            rates.next();
        }
        Ok(rates)
    }

    /// The learning rate of the next step.
    pub(crate) fn next(&mut self) -> f64 {
        let lr = self.scheduler.step().base();
        self.last = Some(lr);
        lr
    }

    /// The learning rate of the last step taken, if any.
    pub(crate) fn last(&self) -> Option<f64> {
        self.last
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Phase::Constant => write!(f, "constant"),
            Phase::Step { epochs, gamma } => write!(f, "step({epochs}, {gamma})"),
            Phase::Exponential { gamma } => write!(f, "exponential({gamma})"),
            Phase::Cosine { min_lr: 0.0 } => write!(f, "cosine"),
            Phase::Cosine { min_lr } => write!(f, "cosine({min_lr})"),
            Phase::Linear { final_lr: 0.0 } => write!(f, "linear"),
            Phase::Linear { final_lr } => write!(f, "linear({final_lr})"),
        }
    }
}

impl std::fmt::Display for LrSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.warmup, self.phase) {
            (0, phase) => write!(f, "{phase}"),
            (steps, Phase::Constant) => write!(f, "linear-warmup({steps})"),
            (steps, phase) => write!(f, "linear-warmup({steps})+{phase}"),
        }
    }
}

/// One `name[(args)]` term of a schedule, split.
fn term(text: &str) -> Result<(&str, Vec<&str>), String> {
    let text = text.trim();
    match text.split_once('(') {
        Some((name, rest)) => {
            let inner = rest
                .trim_end()
                .strip_suffix(')')
                .ok_or_else(|| format!("'{text}' lacks its closing parenthesis"))?;
            let args = inner.split(',').map(str::trim).collect::<Vec<_>>();
            if args.iter().any(|a| a.is_empty()) {
                return Err(format!("'{text}' has an empty argument"));
            }
            Ok((name.trim(), args))
        }
        None => Ok((text, Vec::new())),
    }
}

/// Parse `term`'s arguments: between `min` and `max` of them.
fn arity(name: &str, args: &[&str], min: usize, max: usize) -> Result<(), String> {
    if (min..=max).contains(&args.len()) {
        return Ok(());
    }
    let wanted = match (min, max) {
        (0, 0) => "no arguments".to_string(),
        (a, b) if a == b => format!("{a} argument(s)"),
        (a, b) => format!("{a} to {b} arguments"),
    };
    Err(format!("{name} takes {wanted}, got {}", args.len()))
}

fn count(name: &str, what: &str, text: &str) -> Result<usize, String> {
    text.parse::<usize>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{name}: {what} must be a whole number ≥ 1, not '{text}'"))
}

fn factor(name: &str, text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|g| *g > 0.0 && *g <= 1.0)
        .ok_or_else(|| format!("{name}: GAMMA must be a number in (0, 1], not '{text}'"))
}

fn rate(name: &str, what: &str, text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("{name}: {what} must be a learning rate ≥ 0, not '{text}'"))
}

fn phase(text: &str) -> Result<Phase, String> {
    let (name, args) = term(text)?;
    Ok(match name {
        "constant" => {
            arity(name, &args, 0, 0)?;
            Phase::Constant
        }
        "step" => {
            arity(name, &args, 1, 2)?;
            Phase::Step {
                epochs: count(name, "EPOCHS", args[0])?,
                gamma: args.get(1).map_or(Ok(0.1), |g| factor(name, g))?,
            }
        }
        "exponential" => {
            arity(name, &args, 1, 1)?;
            Phase::Exponential {
                gamma: factor(name, args[0])?,
            }
        }
        "cosine" => {
            arity(name, &args, 0, 1)?;
            Phase::Cosine {
                min_lr: args.first().map_or(Ok(0.0), |v| rate(name, "MIN_LR", v))?,
            }
        }
        "linear" => {
            arity(name, &args, 0, 1)?;
            Phase::Linear {
                final_lr: args
                    .first()
                    .map_or(Ok(0.0), |v| rate(name, "FINAL_LR", v))?,
            }
        }
        "linear-warmup" => {
            return Err(
                "linear-warmup(STEPS) can only come first, followed by `+` and one \
                        phase"
                    .to_string(),
            );
        }
        "" => return Err("a phase is missing".to_string()),
        other => {
            return Err(format!(
                "unknown phase '{other}': expected constant, step(EPOCHS[, GAMMA]), \
                 exponential(GAMMA), cosine[(MIN_LR)], linear[(FINAL_LR)] or \
                 linear-warmup(STEPS)"
            ));
        }
    })
}

impl std::str::FromStr for LrSchedule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: String| format!("'{text}' is not a learning-rate schedule: {why}");
        let (first, rest) = match text.split_once('+') {
            Some((first, rest)) => (first, Some(rest)),
            None => (text, None),
        };
        let (name, args) = term(first).map_err(bad)?;
        if name != "linear-warmup" {
            if rest.is_some() {
                return Err(bad(
                    "phases are joined with `+` only after a warm-up: linear-warmup(STEPS)+PHASE"
                        .to_string(),
                ));
            }
            return phase(text)
                .map(|phase| LrSchedule { warmup: 0, phase })
                .map_err(bad);
        }
        arity(name, &args, 1, 1).map_err(bad)?;
        let warmup = count(name, "STEPS", args[0]).map_err(bad)?;
        let phase = match rest {
            Some(rest) => phase(rest).map_err(bad)?,
            None => Phase::Constant,
        };
        Ok(LrSchedule { warmup, phase })
    }
}

impl TryFrom<String> for LrSchedule {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<LrSchedule> for String {
    fn from(schedule: LrSchedule) -> String {
        schedule.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LrSchedule, String> {
        text.parse()
    }

    fn rates(schedule: &str, lr: f64, per_epoch: usize, total: usize) -> Vec<f64> {
        let mut r = LearningRates::at(&parse(schedule).unwrap(), lr, per_epoch, total, 0).unwrap();
        (0..total).map(|_| r.next()).collect()
    }

    #[test]
    fn the_grammar_parses_and_prints_back() {
        for (text, canonical) in [
            ("constant", "constant"),
            (" cosine ", "cosine"),
            ("cosine(0)", "cosine"),
            ("cosine(1e-5)", "cosine(0.00001)"),
            ("linear", "linear"),
            ("linear(0.0001)", "linear(0.0001)"),
            ("step(2)", "step(2, 0.1)"),
            ("step( 3 , 0.5 )", "step(3, 0.5)"),
            ("exponential(0.999)", "exponential(0.999)"),
            ("linear-warmup(100)", "linear-warmup(100)"),
            ("linear-warmup(100)+constant", "linear-warmup(100)"),
            ("linear-warmup(500)+cosine", "linear-warmup(500)+cosine"),
            (
                "linear-warmup(10) + step(1, 0.7)",
                "linear-warmup(10)+step(1, 0.7)",
            ),
        ] {
            let s = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(s.to_string(), canonical, "{text}");
            assert_eq!(parse(canonical), Ok(s), "{canonical} parses back");
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<LrSchedule>(&json).unwrap(), s);
        }
        assert!(parse("constant").unwrap().is_constant());
    }

    #[test]
    fn bad_schedules_are_refused_with_the_reason() {
        for (text, why) in [
            ("", "a phase is missing"),
            ("cosin", "unknown phase 'cosin'"),
            ("cosine(", "lacks its closing parenthesis"),
            ("cosine(-1)", "MIN_LR must be a learning rate ≥ 0"),
            ("cosine(nan)", "MIN_LR must be a learning rate ≥ 0"),
            ("cosine(1, 2)", "cosine takes 0 to 1 arguments, got 2"),
            ("step", "step takes 1 to 2 arguments, got 0"),
            ("step(0)", "EPOCHS must be a whole number ≥ 1"),
            ("step(1.5)", "EPOCHS must be a whole number ≥ 1"),
            ("step(2, 1.5)", "GAMMA must be a number in (0, 1]"),
            ("step(2,)", "has an empty argument"),
            ("exponential(0)", "GAMMA must be a number in (0, 1]"),
            ("constant(3)", "constant takes no arguments"),
            ("linear-warmup", "linear-warmup takes 1 argument(s)"),
            (
                "linear-warmup(0)+cosine",
                "STEPS must be a whole number ≥ 1",
            ),
            ("linear-warmup(10)+", "a phase is missing"),
            ("cosine+linear", "joined with `+` only after a warm-up"),
            ("linear-warmup(5)+linear-warmup(5)", "can only come first"),
            (
                "linear-warmup(5)+cosine+linear",
                "unknown phase 'cosine+linear'",
            ),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
            assert!(err.contains("is not a learning-rate schedule"), "{err}");
        }
    }

    #[test]
    fn each_phase_follows_its_formula() {
        let lr = 0.1;
        assert_eq!(rates("constant", lr, 3, 6), vec![lr; 6]);
        // × 0.5 every 2 epochs of 3 steps.
        let step = rates("step(2, 0.5)", lr, 3, 12);
        assert_eq!(&step[..6], &[lr; 6]);
        assert_eq!(&step[6..], &[lr * 0.5; 6]);
        let exp = rates("exponential(0.5)", lr, 3, 3);
        assert!((exp[2] - lr * 0.25).abs() < 1e-15, "{exp:?}");
        // Cosine over 10 steps: from lr, halfway at step 5, decreasing.
        let cos = rates("cosine", lr, 5, 10);
        assert_eq!(cos[0], lr);
        assert!((cos[5] - lr / 2.0).abs() < 1e-12, "{cos:?}");
        assert!(cos.windows(2).all(|w| w[1] < w[0]), "{cos:?}");
        let lin = rates("linear(0.02)", lr, 5, 4);
        assert!((lin[2] - 0.06).abs() < 1e-12, "{lin:?}");
        // Warm-up: from lr/4 in equal steps towards lr, which the cosine starts from.
        let warm = rates("linear-warmup(4)+cosine", lr, 5, 10);
        for (k, want) in [0.025, 0.04375, 0.0625, 0.08125, 0.1].iter().enumerate() {
            assert!((warm[k] - want).abs() < 1e-12, "{warm:?}");
        }
        assert!(warm[5] < warm[4] && warm[9] < warm[5], "{warm:?}");
    }

    #[test]
    fn resuming_at_any_step_gives_the_same_rates() {
        let schedule = parse("linear-warmup(7)+cosine(0.001)").unwrap();
        let all = rates(&schedule.to_string(), 0.05, 10, 40);
        for taken in 0..40 {
            let mut r = LearningRates::at(&schedule, 0.05, 10, 40, taken).unwrap();
            assert_eq!(r.last(), taken.checked_sub(1).map(|i| all[i]));
            let rest: Vec<f64> = (taken..40).map(|_| r.next()).collect();
            assert_eq!(rest, all[taken..], "resumed after {taken} steps");
        }
    }

    #[test]
    fn schedules_that_do_not_fit_the_run_are_refused() {
        let at = |s: &str, lr: f64, total: usize| {
            LearningRates::at(&parse(s).unwrap(), lr, 10, total, 0).map(|_| ())
        };
        let err = at("linear-warmup(50)+cosine", 0.01, 50)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not shorter than the run (50 steps"), "{err}");
        let err = at("cosine", 2.0, 50).unwrap_err().to_string();
        assert!(err.contains("cannot be used with --lr 2"), "{err}");
        let err = at("cosine(0.5)", 0.1, 50).unwrap_err().to_string();
        assert!(err.contains("Minimum learning rate"), "{err}");
        at("step(1, 0.5)", 2.0, 50).unwrap();
        at("constant", 5.0, 1).unwrap();
    }
}
