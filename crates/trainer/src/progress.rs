//! Progress display: a live bar in a terminal, a few plain lines per epoch otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Reports the progress of one training epoch.
pub struct EpochProgress {
    bar: Option<ProgressBar>,
    label: String,
    steps: usize,
    next_quarter: usize,
    start: Instant,
    quiet: bool,
}

impl EpochProgress {
    /// Start reporting epoch `epoch` (1-based) of `epochs`, `steps` batches long.
    pub fn new(epoch: usize, epochs: usize, steps: usize, quiet: bool) -> Self {
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
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        EpochProgress {
            bar,
            label,
            steps,
            next_quarter: 1,
            start: Instant::now(),
            quiet,
        }
    }

    /// Batch `done` (1-based) finished, with running mean loss and accuracy.
    pub fn step(&mut self, done: usize, images: usize, loss: f64, accuracy: f64) {
        let rate = images as f64 / self.start.elapsed().as_secs_f64().max(1e-9);
        let msg = format!(
            "loss {loss:.4} acc {:.2}% {rate:.0} img/s",
            accuracy * 100.0
        );
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
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
