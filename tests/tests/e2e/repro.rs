//! The reproducibility study in miniature: complete, well-formed outputs with intervals; a broken
//! claim fails; a second run with the same output directory reuses everything.

use std::path::PathBuf;

use filterlab_tests::trainer_binary;
use xtask::jobs::Executor;
use xtask::repro::{Options, Profile, Settings, Verdict, run};

#[test]
fn a_miniature_study_reports_every_claim_and_a_broken_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("study");
    let options = Options {
        settings: Settings::new(Profile::Tiny, None).unwrap(),
        out: out.clone(),
        executor: Executor::Local {
            parallel: 2,
            cores: 2,
        },
        backend: "flex".into(),
        trainer: trainer_binary(),
        break_claim: Some("determinism".into()),
    };
    let summary = run(&options).unwrap();
    let ids: Vec<u32> = summary.claims.iter().map(|c| c.id).collect();
    assert_eq!(ids, (1..=12).collect::<Vec<u32>>());
    assert_eq!(
        summary.claims[0].verdict,
        Verdict::Fail,
        "{}",
        summary.claims[0].measured
    );
    assert!(summary.claims[0].measured.contains("DIFFERENT"));
    assert!(!summary.all_passed);
    for c in &summary.claims {
        assert!(
            !c.measured.is_empty() && !c.threshold.is_empty(),
            "claim {}",
            c.id
        );
        // Every claim was evaluated: all jobs ran (claim 7 has two backends by default). On so
        // little data a claim judged on an interval may be inconclusive, never skipped.
        assert_ne!(
            c.verdict,
            Verdict::Skipped,
            "claim {}: {}",
            c.id,
            c.measured
        );
    }
    // The claims on aggregates show their intervals.
    for id in [2, 3, 8, 9, 10, 11, 12] {
        let c = &summary.claims[id - 1];
        assert!(c.measured.contains('['), "claim {id}: {}", c.measured);
    }

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["claims"].as_array().unwrap().len(), 12);
    assert_eq!(json["claims"][0]["verdict"], "fail");
    assert!(json["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(json["budget"]["jobs"].as_u64().unwrap() > 20);
    // Every aggregate carries its interval: the reference comparison's conv2, every width, every
    // initialization, every noise scale.
    let conv2 = &json["aggregates"]["reference"]["layers"][1];
    assert_eq!(conv2["layer"], "conv2");
    let m = &conv2["matched_0_5"];
    let (lo, v, hi) = (
        m["lo"].as_f64().unwrap(),
        m["value"].as_f64().unwrap(),
        m["hi"].as_f64().unwrap(),
    );
    assert!(lo <= v + 1e-12 && v <= hi + 1e-12, "{m}");
    assert_eq!(json["aggregates"]["widths"].as_array().unwrap().len(), 2);
    assert_eq!(json["aggregates"]["schemes"].as_array().unwrap().len(), 5);
    assert_eq!(json["aggregates"]["breaking"].as_array().unwrap().len(), 3);
    assert!(conv2["pwcca"]["value"].as_f64().is_some(), "{conv2}");
    let report = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    for needle in [
        "## Verdicts",
        "**FAIL**",
        "Determinism",
        "Cross-backend",
        "## 3. Does what a filter",
        "### How fast does symmetry break?",
        "### Initialization × redundancy",
        "### Same filters, or the same subspace?",
        "### Width",
        "### Redundancy versus width",
        "Budget:",
    ] {
        assert!(report.contains(needle), "REPORT.md lacks {needle}");
    }
    assert!(report.matches("**What this means.**").count() >= 5);
    // Every figure the report links to exists, is an SVG with a title, and the study's own
    // figures are all there.
    for link in report.split("![").skip(1) {
        let rel = link.split("](").nth(1).unwrap().split(')').next().unwrap();
        assert!(out.join(rel).is_file(), "missing figure {rel}");
        let svg = std::fs::read_to_string(out.join(rel)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<text"), "{rel}");
    }
    assert!(report.matches("![").count() >= 20, "figures in the report");
    for f in [
        "width-barrier.svg",
        "subspace-reconstruction.svg",
        "init-redundancy.svg",
        "breaking-final.svg",
    ] {
        assert!(
            report.contains(&format!("figures/{f}")),
            "REPORT.md lacks {f}"
        );
    }

    // Again with the same output directory: everything is reused.
    let again = run(&options).unwrap();
    assert!(
        again.job_outcomes.values().all(|o| o == "reused"),
        "{:?}",
        again.job_outcomes
    );
    assert_eq!(again.claims[0].verdict, Verdict::Fail);

    // A field of a trainer output renamed: the study stops with an error naming file and field,
    // instead of judging a claim on a default.
    let summary_path = out.join("runs/ref-s1/summary.json");
    let text = std::fs::read_to_string(&summary_path).unwrap();
    std::fs::write(
        &summary_path,
        text.replace("weights_sha256", "weights_hash"),
    )
    .unwrap();
    let err = format!("{:#}", run(&options).unwrap_err());
    assert!(
        err.contains("runs/ref-s1/summary.json") && err.contains("weights_sha256"),
        "{err}"
    );
}

#[test]
fn every_planned_command_line_parses() {
    for profile in [
        Profile::Tiny,
        Profile::Quick,
        Profile::Full,
        Profile::Cluster,
    ] {
        let options = Options {
            settings: Settings::new(profile, Some(PathBuf::from("/data/fashion-mnist"))).unwrap(),
            out: PathBuf::from("/study"),
            executor: Executor::Local {
                parallel: 2,
                cores: 2,
            },
            backend: "flex".into(),
            trainer: PathBuf::from("trainer"),
            break_claim: None,
        };
        let jobs = xtask::repro::plan::plan(&options, &["ndarray", "wgpu"]);
        assert!(jobs.len() > 20);
        // --seeds N: every multi-seed experiment trains N seeds, and compare takes all N.
        let four = Options {
            settings: options.settings.clone().with_seeds(4).unwrap(),
            ..options.clone()
        };
        let planned = xtask::repro::plan::plan(&four, &["ndarray"]);
        let compare = planned.iter().find(|j| j.id == "compare").unwrap();
        assert_eq!(compare.deps.len(), 4);
        assert!(planned.iter().any(|j| j.id == "train-init-lsuv-s4"));
        assert_parse(&format!("{profile:?}"), &jobs);
    }
}

/// Every job's command line parses with the trainer's own parser.
fn assert_parse(what: &str, jobs: &[xtask::jobs::Job]) {
    use clap::Parser;
    for job in jobs {
        let args = std::iter::once("trainer")
            .chain(job.spec.args().iter().map(String::as_str))
            .chain(["--threads", "1"]);
        if let Err(e) = trainer::cli::Cli::try_parse_from(args) {
            panic!("{what} job {}: {e}", job.id);
        }
    }
}

#[test]
fn every_sweep_command_line_parses() {
    let options = xtask::sweep::SweepOptions {
        run: PathBuf::from("/runs/r"),
        criteria: vec![],
        ratios: vec![0.1, 0.5],
        layers: vec!["conv1".into(), "conv2".into()],
        global: true,
        finetune_epochs: 2,
        samples: Some(100),
        data: Some("sample".into()),
        backend: Some("flex".into()),
        out: PathBuf::from("/runs/r/prune-sweep"),
        trainer: PathBuf::from("trainer"),
        executor: Executor::Local {
            parallel: 2,
            cores: 2,
        },
    };
    let jobs = xtask::sweep::plan(&options);
    assert_eq!(jobs.len(), 7 * 2 + 1);
    assert_parse("sweep", &jobs);
}

#[test]
fn a_slurm_dry_run_prints_every_script_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("study");
    let slurm = xtask::jobs::slurm::Slurm {
        partition: Some("cpu".into()),
        account: Some("lab".into()),
        time: Some("30".into()),
        sbatch_args: vec!["--qos=short".into()],
        setup: vec!["module load gcc".into()],
        on_interrupt: xtask::jobs::slurm::OnInterrupt::Keep,
        poll: std::time::Duration::from_secs(5),
        runner: PathBuf::from("/bin/xtask"),
    };
    let options = Options {
        settings: Settings::new(Profile::Tiny, None).unwrap(),
        out: out.clone(),
        executor: Executor::Slurm(slurm),
        backend: "flex".into(),
        trainer: trainer_binary(),
        break_claim: None,
    };
    let text = xtask::repro::dry_run(&options).unwrap();
    let jobs = xtask::repro::plan::plan(&options, &["ndarray"]);
    assert_eq!(text.matches("#!/bin/sh").count(), jobs.len());
    assert!(
        text.starts_with(&format!("# budget: {} jobs, about ", jobs.len())),
        "{text}"
    );
    for needle in [
        "compare <- train-s1, train-s2\n",
        "#SBATCH --dependency=afterok:<train-s1>:<train-s2>\n",
        "#SBATCH --partition=cpu",
        "#SBATCH --account=lab",
        "#SBATCH --time=30",
        "#SBATCH --cpus-per-task=2",
        "module load gcc",
        "sbatch --parsable --qos=short ",
        "/study/slurm/bin/xtask run-job --trainer ",
        "/study/jobs/train-s1.log",
    ] {
        assert!(text.contains(needle), "the dry run lacks {needle}:\n{text}");
    }
    assert!(!out.exists(), "a dry run writes nothing");
}
