//! The reproducibility study in miniature: complete, well-formed outputs; a broken claim fails;
//! a second run with the same output directory reuses everything.

use std::path::PathBuf;

use xtask::repro::{Options, Profile, Settings, Verdict, run};

/// The release trainer built by `cargo test --release --workspace` (the trainer package's own
/// integration tests make cargo build it), next to this test executable's directory.
fn trainer_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .join("trainer");
    assert!(
        bin.is_file(),
        "{} is missing: run the tests with `cargo test --release --workspace`, which builds it",
        bin.display()
    );
    bin
}

#[test]
fn a_miniature_study_reports_every_claim_and_a_broken_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("study");
    let options = Options {
        settings: Settings::new(Profile::Tiny, None).unwrap(),
        out: out.clone(),
        jobs: 2,
        cores: 2,
        backend: "flex".into(),
        trainer: trainer_binary(),
        break_claim: Some("determinism".into()),
    };
    let summary = run(&options).unwrap();
    let ids: Vec<u32> = summary.claims.iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5, 6, 7]);
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
        // Every claim was evaluated: all jobs ran (claim 7 has two backends by default).
        assert_ne!(
            c.verdict,
            Verdict::Skipped,
            "claim {}: {}",
            c.id,
            c.measured
        );
    }

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["claims"].as_array().unwrap().len(), 7);
    assert_eq!(json["claims"][0]["verdict"], "fail");
    assert!(json["machine"]["cores"].as_u64().unwrap() >= 1);
    let report = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    for needle in [
        "## Verdicts",
        "**FAIL**",
        "Determinism",
        "Cross-backend",
        "## 3. Does what a filter",
    ] {
        assert!(report.contains(needle), "REPORT.md lacks {needle}");
    }
    // Every figure the report links to exists.
    for link in report.split("![").skip(1) {
        let rel = link.split("](").nth(1).unwrap().split(')').next().unwrap();
        assert!(out.join(rel).is_file(), "missing figure {rel}");
    }
    assert!(report.matches("![").count() >= 10, "figures in the report");

    // Again with the same output directory: everything is reused.
    let again = run(&options).unwrap();
    assert!(
        again.job_outcomes.values().all(|o| o == "reused"),
        "{:?}",
        again.job_outcomes
    );
    assert_eq!(again.claims[0].verdict, Verdict::Fail);
}
