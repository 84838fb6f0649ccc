//! `trainer bench` measures the model its options describe.

use std::process::Command;

use filterlab_tests::trainer_binary;

/// `trainer bench --json` with a tiny run, parsed.
fn bench(model: &[&str]) -> serde_json::Value {
    let out = Command::new(trainer_binary())
        .args(["bench", "--json", "--threads", "1", "--workers", "1"])
        .args(["--steps", "1", "--warmup", "0", "--batch-size", "8"])
        .args(["--infer-batches", "1", "--infer-batch-size", "8"])
        .args(model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn bench_measures_the_plain_and_the_wide_models_with_their_own_flops() {
    let plain = bench(&["--model", "plain", "--width", "4", "--depth", "3"]);
    assert_eq!(plain["model"], "plain (depth 3, width 4, relu)");
    // Three 3×3 convolutions on 28×28 maps (1→4, 4→4, 4→4) and the 4→10 head, a multiply-add
    // counted as 2 FLOPs.
    let expected = 2.0 * ((9 * 4 + 2 * 36 * 4) * 28 * 28 + 4 * 10) as f64;
    assert_eq!(plain["forward_flops_per_image"].as_f64(), Some(expected));
    let wide = bench(&["--width", "2"]);
    assert_eq!(wide["model"], "ref (width ×2)");
    // conv1 1→64 at 28×28, conv2 64→128 at 14×14, fc1 6272→256, fc2 256→10.
    let expected = 2.0 * (9 * 64 * 784 + 576 * 128 * 196 + 6272 * 256 + 256 * 10) as f64;
    assert_eq!(wide["forward_flops_per_image"].as_f64(), Some(expected));
    for r in [&plain, &wide] {
        for key in ["train_images_per_sec", "infer_images_per_sec"] {
            assert!(r[key].as_f64().unwrap() > 0.0, "{key}: {r}");
        }
    }
}
