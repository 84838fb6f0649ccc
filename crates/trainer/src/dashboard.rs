//! `--dashboard`: burn-train's terminal dashboard, fed by our own training loop.
//!
//! burn-train's `Learner` is not used (see the design notes); its renderer is, through its
//! public traits: our loop registers its metrics, reports progress in images, and sends each
//! step's and each epoch's values. The dashboard takes over the terminal (alternate screen, raw
//! mode) and draws from a thread of its own; nothing else may write to the terminal while it is
//! up. Quitting it (`q`, then `s`), or Ctrl-C, asks the loop to stop at the next step; the loop
//! then writes a checkpoint and returns. Its other way out, `k`, kills the process at once
//! (the last checkpoint stays).

use std::io::IsTerminal;
use std::sync::Arc;

use burn::train::Interrupter;
use burn::train::logger::TrainingProgressLogger;
use burn::train::metric::{
    MetricAttributes, MetricDefinition, MetricEntry, MetricId, NumericAttributes, NumericEntry,
    SerializedEntry,
};
use burn::train::renderer::tui::TuiMetricsRendererWrapper;
use burn::train::renderer::{MetricState, MetricsRenderer, MetricsRendererTraining};

use crate::progress::StepReport;

/// The metrics the dashboard shows, as burn-train knows them.
#[derive(Clone, Copy)]
enum Metric {
    Loss,
    Accuracy,
    Throughput,
    LearningRate,
}

impl Metric {
    const ALL: [Metric; 4] = [
        Metric::Loss,
        Metric::Accuracy,
        Metric::Throughput,
        Metric::LearningRate,
    ];

    /// Id, name, unit, whether higher is better.
    fn describe(self) -> (&'static str, &'static str, Option<&'static str>, bool) {
        match self {
            Metric::Loss => ("loss", "Loss", None, false),
            Metric::Accuracy => ("accuracy", "Accuracy", Some("%"), true),
            Metric::Throughput => ("throughput", "Throughput", Some("img/s"), true),
            Metric::LearningRate => ("lr", "Learning Rate", None, false),
        }
    }

    fn id(self) -> MetricId {
        MetricId::new(Arc::new(self.describe().0.to_string()))
    }

    fn definition(self) -> MetricDefinition {
        let (_, name, unit, higher_is_better) = self.describe();
        MetricDefinition {
            metric_id: self.id(),
            name: Arc::new(name.to_string()),
            description: None,
            attributes: MetricAttributes::Numeric(NumericAttributes {
                unit: unit.map(str::to_string),
                higher_is_better,
            }),
        }
    }

    /// A plotted `value`, shown as `text`.
    fn state(self, value: f64, text: String) -> MetricState {
        MetricState::Numeric(
            MetricEntry::new(self.id(), SerializedEntry::new(text, value.to_string())),
            Some(NumericEntry::Value(value)),
        )
    }
}

/// Why the dashboard cannot be shown in this process, if it cannot: it draws to stdout and
/// reads keys from stdin, which must both be terminals.
pub(crate) fn unavailable() -> Option<&'static str> {
    if !std::io::stdout().is_terminal() {
        Some("standard output is not a terminal")
    } else if !std::io::stdin().is_terminal() {
        Some("standard input is not a terminal")
    } else {
        None
    }
}

/// burn-train's dashboard, up: dropping it gives the terminal back.
pub(crate) struct Dashboard {
    // Fields drop in this order: the renderer restores the terminal (and waits for its thread),
    // then Ctrl-C ends the process again.
    renderer: TuiMetricsRendererWrapper,
    ctrl_c: ctrl_c::Armed,
    interrupter: Interrupter,
}

impl Dashboard {
    /// Take over the terminal for a run of `epochs` epochs of which `epochs_done` are done;
    /// `label` names the run. Call only where [`unavailable`] is `None`.
    pub(crate) fn start(epochs: usize, epochs_done: usize, label: &str) -> Self {
        let interrupter = Interrupter::new();
        let mut renderer = TuiMetricsRendererWrapper::new(interrupter.clone(), Some(epochs_done));
        for metric in Metric::ALL {
            renderer.register_metric(metric.definition());
        }
        // burn-train counts epochs from 1.
        renderer.start(epochs, epochs_done + 1, None, Some(label));
        Dashboard {
            renderer,
            interrupter,
            ctrl_c: ctrl_c::arm(),
        }
    }

    /// An epoch of `images` training images begins (`done` of them trained already: a resumed
    /// epoch).
    pub(crate) fn start_epoch(&mut self, images: usize, done: usize) {
        self.renderer.start_split("train", images);
        if done > 0 {
            self.renderer.update_split(done);
        }
    }

    /// A step finished.
    pub(crate) fn step(&mut self, s: &StepReport) {
        let r = &mut self.renderer;
        r.update_train(Metric::Loss.state(
            s.batch_loss,
            format!("epoch {:.4} - batch {:.4}", s.loss, s.batch_loss),
        ));
        r.update_train(Metric::Accuracy.state(
            s.batch_accuracy * 100.0,
            format!(
                "epoch {:.2} % - batch {:.2} %",
                s.accuracy * 100.0,
                s.batch_accuracy * 100.0
            ),
        ));
        r.update_train(
            Metric::Throughput.state(s.images_per_sec, format!("{:.0} img/s", s.images_per_sec)),
        );
        r.update_train(Metric::LearningRate.state(s.lr, format!("{:.3e}", s.lr)));
        r.update_split(s.epoch_images);
    }

    /// Training of the epoch is done; the test split of `images` images is being evaluated.
    pub(crate) fn evaluating(&mut self, images: usize) {
        self.renderer.end_split();
        self.renderer.start_split("test", images);
    }

    /// Epoch `epoch` (1-based) is done, with test loss and accuracy (0–1).
    pub(crate) fn end_epoch(&mut self, epoch: usize, images: usize, loss: f64, accuracy: f64) {
        let r = &mut self.renderer;
        r.update_split(images);
        r.update_valid(Metric::Loss.state(loss, format!("epoch {epoch}: {loss:.4}")));
        r.update_valid(Metric::Accuracy.state(
            accuracy * 100.0,
            format!("epoch {epoch}: {:.2} %", accuracy * 100.0),
        ));
        r.end_split();
        r.update_epoch(epoch);
    }

    /// Whether the user asked to stop (the dashboard's quit key, or Ctrl-C).
    pub(crate) fn stop_requested(&self) -> bool {
        self.interrupter.should_stop() || self.ctrl_c.requested()
    }
}

/// Ctrl-C while the dashboard is up. The dashboard puts the terminal in raw mode, where Ctrl-C
/// is a key press that it ignores; here the terminal is told to turn it into SIGINT again (with
/// Ctrl-\ and Ctrl-Z, which would kill or stop the process with the terminal still in raw mode,
/// switched off), and SIGINT only asks the loop to stop. Leaving raw mode restores the
/// terminal's own settings; after that, SIGINT ends the process as by default.
#[cfg(unix)]
mod ctrl_c {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, OnceLock};
    use std::time::{Duration, Instant};

    use rustix::termios::{LocalModes, OptionalActions, SpecialCodeIndex, tcgetattr, tcsetattr};
    use signal_hook::consts::SIGINT;

    /// SIGINT's two flags: whether it takes its default action (ending the process), else
    /// whether it has arrived.
    struct Flags {
        default_action: Arc<AtomicBool>,
        arrived: Arc<AtomicBool>,
    }

    /// The flags, with their handlers installed once per process (none if that failed).
    fn flags() -> Option<&'static Flags> {
        static FLAGS: OnceLock<Option<Flags>> = OnceLock::new();
        FLAGS
            .get_or_init(|| {
                let flags = Flags {
                    default_action: Arc::new(AtomicBool::new(true)),
                    arrived: Arc::new(AtomicBool::new(false)),
                };
                // In this order: while `default_action` holds, the process ends before the
                // second handler runs.
                signal_hook::flag::register_conditional_default(
                    SIGINT,
                    flags.default_action.clone(),
                )
                .ok()?;
                signal_hook::flag::register(SIGINT, flags.arrived.clone()).ok()?;
                Some(flags)
            })
            .as_ref()
    }

    /// Ctrl-C taken over for the dashboard's lifetime.
    pub(super) struct Armed(Option<&'static Flags>);

    /// Make Ctrl-C a stop request while the dashboard is up (silently nothing where the
    /// terminal or the signal handler cannot be set up).
    pub(super) fn arm() -> Armed {
        let Some(flags) = flags() else {
            return Armed(None);
        };
        flags.arrived.store(false, Ordering::SeqCst);
        flags.default_action.store(false, Ordering::SeqCst);
        if !signals_from_keys() {
            flags.default_action.store(true, Ordering::SeqCst);
            return Armed(None);
        }
        Armed(Some(flags))
    }

    /// Once the dashboard's thread has put the terminal in raw mode, turn Ctrl-C back into
    /// SIGINT. False if raw mode did not come within two seconds or the terminal refused.
    fn signals_from_keys() -> bool {
        let stdin = std::io::stdin();
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let Ok(mut mode) = tcgetattr(&stdin) else {
                return false;
            };
            if !mode.local_modes.contains(LocalModes::ICANON) {
                // NOFLSH: a Ctrl-C must not discard a frame being drawn.
                mode.local_modes |= LocalModes::ISIG | LocalModes::NOFLSH;
                mode.special_codes[SpecialCodeIndex::VQUIT] = 0;
                mode.special_codes[SpecialCodeIndex::VSUSP] = 0;
                return tcsetattr(&stdin, OptionalActions::Now, &mode).is_ok();
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    impl Armed {
        /// Whether Ctrl-C was pressed.
        pub(super) fn requested(&self) -> bool {
            self.0.is_some_and(|f| f.arrived.load(Ordering::SeqCst))
        }
    }

    impl Drop for Armed {
        /// Ctrl-C ends the process again.
        fn drop(&mut self) {
            if let Some(flags) = self.0 {
                flags.default_action.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// Elsewhere, Ctrl-C keeps its default action; the dashboard's quit key still stops cleanly.
#[cfg(not(unix))]
mod ctrl_c {
    pub(super) struct Armed;

    pub(super) fn arm() -> Armed {
        Armed
    }

    impl Armed {
        pub(super) fn requested(&self) -> bool {
            false
        }
    }
}
