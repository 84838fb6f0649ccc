//! Progress display: a live bar in a terminal, a few plain lines per epoch otherwise, or
//! burn-train's dashboard (`--dashboard`). [`Reporter`] is the one way the training loop writes
//! to the terminal, so nothing else writes while the dashboard owns it.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::dashboard::Dashboard;
use crate::run::EpochMetrics;

/// What one optimizer step reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepReport {
    /// Steps done in this epoch (1-based index of this step).
    pub(crate) step: usize,
    /// Images trained in this epoch so far, before a resumption included.
    pub(crate) epoch_images: usize,
    /// Mean loss of this step's batch.
    pub(crate) batch_loss: f64,
    /// Accuracy on this step's batch (0–1).
    pub(crate) batch_accuracy: f64,
    /// Mean loss over the epoch so far.
    pub(crate) loss: f64,
    /// Accuracy over the epoch so far (0–1).
    pub(crate) accuracy: f64,
    /// Images per second trained in this epoch (since this process took it up).
    pub(crate) images_per_sec: f64,
    /// Learning rate of this step.
    pub(crate) lr: f64,
}

/// Everything the training loop reports, to stderr or to the dashboard.
pub(crate) struct Reporter {
    quiet: bool,
    /// The dashboard was asked for and can be shown; up once [`Reporter::start`] ran.
    wants_dashboard: bool,
    dashboard: Option<Dashboard>,
    /// Lines written while the dashboard owns the terminal, printed once it is gone.
    held: Vec<String>,
    bar: Option<EpochProgress>,
    /// When this process took up the current epoch, and the images trained in it before.
    epoch_start: Instant,
    epoch_images_before: usize,
}

impl Reporter {
    /// Report to stderr (nothing but errors when `quiet`), or on the dashboard when
    /// `dashboard` and the terminal allows it (otherwise saying why not).
    pub(crate) fn new(quiet: bool, dashboard: bool) -> Self {
        let wants_dashboard = dashboard
            && match crate::dashboard::unavailable() {
                None => true,
                Some(why) => {
                    eprintln!("--dashboard is off: {why}; progress is reported as lines");
                    false
                }
            };
        Reporter {
            quiet,
            wants_dashboard,
            dashboard: None,
            held: Vec::new(),
            bar: None,
            epoch_start: Instant::now(),
            epoch_images_before: 0,
        }
    }

    /// Write a line (held back while the dashboard is up).
    pub(crate) fn line(&mut self, line: String) {
        if self.quiet {
            return;
        }
        if self.dashboard.is_some() {
            self.held.push(line);
        } else {
            eprintln!("{line}");
        }
    }

    /// Training begins: `epochs` in all, `epochs_done` of them done; `label` names the run on
    /// the dashboard.
    pub(crate) fn start(&mut self, epochs: usize, epochs_done: usize, label: &str) {
        if self.wants_dashboard {
            self.dashboard = Some(Dashboard::start(epochs, epochs_done, label));
        }
    }

    /// Epoch `epoch` (1-based) of `epochs` begins: `steps` steps of which `first` are done,
    /// `images` images of which `images_done` are trained.
    pub(crate) fn start_epoch(
        &mut self,
        (epoch, epochs): (usize, usize),
        (steps, first): (usize, usize),
        (images, images_done): (usize, usize),
    ) {
        self.epoch_start = Instant::now();
        self.epoch_images_before = images_done;
        match &mut self.dashboard {
            Some(d) => d.start_epoch(images, images_done),
            None => self.bar = Some(EpochProgress::new(epoch, epochs, steps, first, self.quiet)),
        }
    }

    /// Images per second trained in this epoch by this process, now that `epoch_images` are.
    pub(crate) fn images_per_sec(&self, epoch_images: usize) -> f64 {
        (epoch_images - self.epoch_images_before) as f64
            / self.epoch_start.elapsed().as_secs_f64().max(1e-9)
    }

    /// A step finished.
    pub(crate) fn step(&mut self, s: &StepReport) {
        if let Some(d) = &mut self.dashboard {
            d.step(s);
        } else if let Some(bar) = &mut self.bar {
            bar.step(s);
        }
    }

    /// The epoch's training is done; `images` test images are evaluated.
    pub(crate) fn evaluating(&mut self, images: usize) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
        if let Some(d) = &mut self.dashboard {
            d.evaluating(images);
        }
    }

    /// An epoch of a run of `epochs` ended with metrics `m` (`test_images` evaluated).
    pub(crate) fn end_epoch(&mut self, m: &EpochMetrics, epochs: usize, test_images: usize) {
        if let Some(d) = &mut self.dashboard {
            d.end_epoch(m.epoch, test_images, m.test_loss, m.test_accuracy);
        }
        self.line(format!(
            "epoch {}/{}: train loss {:.4} acc {:.2}% | test loss {:.4} acc {:.2}% | {:.1} s, \
             {:.0} img/s{}",
            m.epoch,
            epochs,
            m.train_loss,
            m.train_accuracy * 100.0,
            m.test_loss,
            m.test_accuracy * 100.0,
            m.seconds,
            m.train_images_per_sec,
            m.lr.map_or(String::new(), |lr| format!(" | lr {lr:.3e}")),
        ));
    }

    /// Whether the user asked the dashboard to stop training.
    pub(crate) fn stop_requested(&self) -> bool {
        self.dashboard
            .as_ref()
            .is_some_and(Dashboard::stop_requested)
    }
}

impl Drop for Reporter {
    /// Remove the bar, give the terminal back, then print what was held back.
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
        self.dashboard = None;
        for line in self.held.drain(..) {
            eprintln!("{line}");
        }
    }
}

/// Reports the progress of one training epoch on stderr.
struct EpochProgress {
    bar: Option<ProgressBar>,
    label: String,
    steps: usize,
    next_quarter: usize,
    quiet: bool,
}

impl EpochProgress {
    /// Start reporting epoch `epoch` (1-based) of `epochs`, `steps` batches long, `first` of them
    /// done already (a resumed epoch).
    fn new(epoch: usize, epochs: usize, steps: usize, first: usize, quiet: bool) -> Self {
        let label = format!("epoch {epoch}/{epochs}");
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(steps as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>12} [{bar:30}] {pos}/{len} {msg} ({elapsed}, ETA {eta})",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(label.clone());
            bar.set_position(first as u64);
            bar.reset_eta();
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        EpochProgress {
            bar,
            label,
            steps,
            next_quarter: 1 + 4 * first / steps.max(1),
            quiet,
        }
    }

    /// A batch finished.
    fn step(&mut self, s: &StepReport) {
        let msg = format!(
            "loss {:.4} acc {:.2}% {:.0} img/s lr {:.3e}",
            s.loss,
            s.accuracy * 100.0,
            s.images_per_sec,
            s.lr
        );
        let done = s.step;
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            bar.set_message(msg);
        } else if !self.quiet && self.steps >= 40 && done * 4 >= self.next_quarter * self.steps {
            // Without a terminal: one line at each quarter of a long epoch.
            if self.next_quarter < 4 {
                eprintln!("{}: {:>3}% {msg}", self.label, self.next_quarter * 25);
            }
            self.next_quarter += 1;
        }
    }

    /// Remove the bar.
    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
