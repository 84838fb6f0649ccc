//! `--dashboard`: burn-train's dashboard in a real terminal (a tmux pane), and today's output
//! where there is no terminal.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use filterlab_tests::{metrics_without_timings, read_json, trainer, trainer_binary};

fn hash(run: &Path) -> String {
    read_json(&run.join("summary.json"))["weights_sha256"]
        .as_str()
        .expect("hash")
        .to_string()
}

/// A run that lasts a few seconds on 2 cores: long enough to watch and to stop.
const RUN: &[&str] = &[
    "--data",
    "sample",
    "--train-limit",
    "6144",
    "--test-limit",
    "500",
    "--epochs",
    "2",
    "--width",
    "0.5",
    "--seed",
    "21",
    "--lr-schedule",
    "linear-warmup(20)+cosine",
];

/// `trainer train --out OUT RUN… --quiet`, in this process: the run to compare with.
fn plain_run(out: &Path) {
    let mut args = vec!["train", "--out", out.to_str().unwrap()];
    args.extend_from_slice(RUN);
    args.push("--quiet");
    trainer(&args).unwrap();
}

#[test]
fn without_a_terminal_the_dashboard_is_off_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = Command::new(trainer_binary())
        .args(["train", "--out", out.to_str().unwrap(), "--dashboard"])
        .args([
            "--data",
            "sample",
            "--train-limit",
            "256",
            "--test-limit",
            "100",
        ])
        .args(["--epochs", "1", "--width", "0.25"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--dashboard is off: standard output is not a terminal"),
        "{stderr}"
    );
    // Today's log lines.
    assert!(stderr.contains("epoch 1/1: train loss"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("weights sha256"));
}

/// A tmux server of its own, with one 160×50 pane running a command; killed when dropped.
struct Pane {
    socket: String,
}

impl Pane {
    /// Run `trainer ARGS` in a new pane, in `dir`. The shell prints `[exit status N]` when the
    /// trainer ends and keeps the pane open; it survives Ctrl-C (its trap runs afterwards).
    fn trainer(dir: &Path, args: &[&str]) -> Pane {
        let quote = |a: &str| {
            assert!(!a.contains('\''), "{a}");
            format!("'{a}'")
        };
        let bin = trainer_binary();
        let command = std::iter::once(quote(bin.to_str().unwrap()))
            .chain(args.iter().map(|a| quote(a)))
            .collect::<Vec<_>>()
            .join(" ");
        let script =
            format!("trap true INT; {command}; echo \"[exit status $?]\"; exec sleep 3600");
        let pane = Pane {
            socket: format!("filterlab-test-{}-{}", std::process::id(), unique()),
        };
        let status = pane
            .tmux()
            .args([
                "new-session",
                "-d",
                "-x",
                "160",
                "-y",
                "50",
                "-s",
                "t",
                "-c",
            ])
            .arg(dir)
            .args(["sh", "-c", &script])
            .status()
            .expect("tmux runs (apt-get install tmux)");
        assert!(status.success(), "tmux new-session failed");
        pane
    }

    fn tmux(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket]);
        cmd
    }

    /// What the pane shows, wrapped lines joined.
    fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-J", "-t", "t"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Type `keys` (tmux key names).
    fn keys(&self, keys: &[&str]) {
        let status = self
            .tmux()
            .args(["send-keys", "-t", "t"])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The screen, once `ready` holds for it (panics with the last screen after `secs`).
    fn wait_for(&self, what: &str, secs: u64, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} after {secs} s; the pane shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The screen once the trainer has ended, checked to have ended well.
    fn wait_for_exit(&self) -> String {
        let screen = self.wait_for("exit", 600, |s| s.contains("[exit status"));
        assert!(screen.contains("[exit status 0]"), "{screen}");
        screen
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
    }
}

/// A number not used before in this process.
fn unique() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The dashboard with every metric and a test-split value on it.
fn shows_the_metrics(screen: &str) -> bool {
    [
        "Loss",
        "Accuracy",
        "Throughput",
        "Learning Rate",
        "Progress",
    ]
    .iter()
    .all(|m| screen.contains(m))
        && screen.contains("img/s")
}

#[test]
#[ignore = "needs tmux; .ci/run runs it"]
fn dashboard_shows_the_metrics_live_and_changes_no_bits() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, shown) = (dir.path().join("plain"), dir.path().join("shown"));
    plain_run(&plain);

    let mut args = vec!["train", "--out", shown.to_str().unwrap(), "--dashboard"];
    args.extend_from_slice(RUN);
    let pane = Pane::trainer(dir.path(), &args);
    // While training: the metrics, then the first epoch's test values ("Valid" on the
    // dashboard), before the run ends.
    pane.wait_for("dashboard", 120, shows_the_metrics);
    let screen = pane.wait_for("test metrics", 300, |s| {
        (shows_the_metrics(s) && s.contains("Valid") && s.contains("epoch 1:"))
            || s.contains("[exit status")
    });
    assert!(
        !screen.contains("[exit status"),
        "the run ended before the dashboard showed the test metrics"
    );
    let saved = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screen.txt");
    std::fs::write(&saved, &screen).unwrap();
    eprintln!("dashboard screen saved to {}", saved.display());

    // Afterwards: the terminal is back, with the usual lines and the summary.
    let screen = pane.wait_for_exit();
    assert!(screen.contains("epoch 2/2: train loss"), "{screen}");
    assert!(screen.contains("weights sha256"), "{screen}");
    assert_eq!(hash(&plain), hash(&shown));
    assert_eq!(
        metrics_without_timings(&plain),
        metrics_without_timings(&shown)
    );
}

#[test]
#[ignore = "needs tmux; .ci/run runs it"]
fn quitting_the_dashboard_or_ctrl_c_stops_resumably_with_the_same_bits() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, stopped) = (dir.path().join("plain"), dir.path().join("stopped"));
    plain_run(&plain);
    let run = stopped.to_str().unwrap();
    let resume = format!("continue with `trainer train --resume {run}`");

    // The dashboard's own way out: q, then s (stop the training).
    let mut args = vec!["train", "--out", run, "--dashboard"];
    args.extend_from_slice(RUN);
    let pane = Pane::trainer(dir.path(), &args);
    pane.wait_for("dashboard", 120, shows_the_metrics);
    pane.keys(&["q"]);
    pane.wait_for("quit popup", 30, |s| s.contains("Stop the training"));
    pane.keys(&["s"]);
    let screen = pane.wait_for_exit();
    assert!(screen.contains(&resume), "{screen}");
    assert!(stopped.join("checkpoint/state.json").exists());
    assert!(!stopped.join("summary.json").exists(), "{screen}");
    drop(pane);

    // Ctrl-C, in a resumed run.
    let pane = Pane::trainer(dir.path(), &["train", "--resume", run, "--dashboard"]);
    pane.wait_for("dashboard", 120, shows_the_metrics);
    pane.keys(&["C-c"]);
    let screen = pane.wait_for_exit();
    assert!(screen.contains(&resume), "{screen}");
    assert!(!stopped.join("summary.json").exists(), "{screen}");
    drop(pane);

    trainer(&["train", "--resume", run, "--quiet"]).unwrap();
    assert_eq!(hash(&plain), hash(&stopped));
    assert_eq!(
        metrics_without_timings(&plain),
        metrics_without_timings(&stopped)
    );
}
