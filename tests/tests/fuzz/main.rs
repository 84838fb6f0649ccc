//! Every parser of user-supplied input, fuzzed: IDX files (raw and gzip), a run's
//! `config.json`, `summary.json`, `metrics.jsonl`, `model.bpk` and checkpoint, PyTorch `.pt` and
//! safetensors state dicts, and the option strings (`--lr-schedule`, `--init`, `--normalize`,
//! `--rename`, …).
//!
//! Each target mutates real files (the committed sample, a run directory trained here, the
//! PyTorch fixtures) and requires a correct result or an error that names the file; a panic, an
//! allocation out of proportion to the input, or an input that takes too long is a finding.
//! `FILTERLAB_FUZZ_CASES=N` sets the inputs per target (the defaults keep the whole binary
//! near 30 seconds on 2 cores); `FILTERLAB_FUZZ_SEED` another campaign. Inputs that once failed
//! are replayed from `tests/fixtures/fuzz/<target>/`.

mod alloc;
mod engine;
mod targets;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

use engine::{cases, fuzz, replay};

macro_rules! fuzz_tests {
    ($($name:ident: $target:literal, $cases:expr;)*) => {
        $(
            #[test]
            fn $name() {
                let t = targets::target($target);
                replay(&t);
                fuzz(&t, cases($cases));
            }
        )*

        #[test]
        fn every_target_has_a_test() {
            let mut tested = vec![$($target),*];
            tested.sort_unstable();
            let mut all = targets::NAMES.to_vec();
            all.sort_unstable();
            assert_eq!(tested, all);
        }
    };
}

fuzz_tests! {
    idx_images: "idx-images", 3000;
    idx_labels: "idx-labels", 3000;
    idx_gzip: "idx-gzip", 600;
    run_config: "run-config", 150;
    run_summary: "run-summary", 150;
    run_metrics: "run-metrics", 150;
    run_model: "run-model", 150;
    checkpoint_state: "checkpoint-state", 80;
    checkpoint_optimizer: "checkpoint-optimizer", 80;
    import_pytorch: "import-pytorch", 400;
    import_safetensors: "import-safetensors", 400;
    option_strings: "option-strings", 3000;
}
