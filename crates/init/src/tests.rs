//! Statistical and structural tests of every scheme, and of applying them to real models.
//!
//! Sample statistics are compared with the formulas. With n ≥ 10,000 draws the standard error
//! of a sample mean is σ/√n ≤ 0.01σ and of a sample standard deviation ≈ σ/√(2n) ≤ 0.7% of σ;
//! the tolerances below are ≥ 4 standard errors (means) and 3% (standard deviations).

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use model::{Classifier, PlainCnnConfig, RefCnnConfig};

use crate::scheme::{Law, Nonlinearity, ParamKind, ParamShape, Scheme, TRUNC2_STD};
use crate::{InitSpec, apply, lsuv, semi_orthogonal};
use params::ParamRng;

/// A conv weight `[64, 32, 3, 3]`: 18,432 values, fan_in 288, fan_out 576.
fn conv() -> ParamShape {
    ParamShape::weight(ParamKind::ConvWeight, vec![64, 32, 3, 3])
}

fn draw(scheme: &str, p: &ParamShape) -> Vec<f64> {
    let s: Scheme = scheme.parse().unwrap();
    let law = s.resolve(p, None).unwrap();
    law.sample(p, &mut ParamRng::new(42, scheme))
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

fn stats(v: &[f64]) -> (f64, f64, f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    (mean, std, lo, hi)
}

/// Check mean and std against the formula, and, for bounded laws, the support.
fn check(scheme: &str, p: &ParamShape, mean: f64, std: f64, bound: Option<(f64, f64)>) {
    let v = draw(scheme, p);
    assert!(v.len() >= 10_000);
    let (m, s, lo, hi) = stats(&v);
    let se = std / (v.len() as f64).sqrt();
    assert!(
        (m - mean).abs() <= 4.0 * se + 1e-12,
        "{scheme}: mean {m} vs {mean}"
    );
    assert!(
        (s - std).abs() <= 0.03 * std + 1e-12,
        "{scheme}: std {s} vs {std}"
    );
    if let Some((a, b)) = bound {
        let eps = 1e-6 * (b - a).abs().max(1e-12);
        assert!(
            lo >= a - eps && hi <= b + eps,
            "{scheme}: [{lo}, {hi}] ⊄ [{a}, {b}]"
        );
        // And the support is used: the extremes come close to the bounds.
        assert!(
            lo < a + 0.05 * (b - a) && hi > b - 0.05 * (b - a),
            "{scheme}: [{lo}, {hi}]"
        );
    }
}

fn uniform_std(a: f64) -> f64 {
    a / 3.0f64.sqrt()
}

#[test]
fn elementwise_schemes_match_their_formulas() {
    let p = conv();
    let (fi, fo) = (288.0f64, 576.0f64);
    let eq = |scheme: &str, v: f64| {
        assert!(draw(scheme, &p).iter().all(|&x| x == v), "{scheme}");
    };
    eq("zeros", 0.0);
    eq("ones", 1.0);
    eq("constant(0.25)", 0.25);
    check(
        "uniform(-0.5, 1.5)",
        &p,
        0.5,
        2.0 / 12f64.sqrt(),
        Some((-0.5, 1.5)),
    );
    check("normal(0.3, 0.02)", &p, 0.3, 0.02, None);
    check(
        "truncated-normal(0, 0.1)",
        &p,
        0.0,
        0.1,
        Some((-0.2 / TRUNC2_STD, 0.2 / TRUNC2_STD)),
    );
    check(
        "truncated-normal(0, 0.1, uncorrected)",
        &p,
        0.0,
        0.1 * TRUNC2_STD,
        Some((-0.2, 0.2)),
    );
    check("lecun-normal", &p, 0.0, (1.0 / fi).sqrt(), None);
    let a = (3.0 / fi).sqrt();
    check("lecun-uniform", &p, 0.0, uniform_std(a), Some((-a, a)));
    check("xavier-normal", &p, 0.0, (2.0 / (fi + fo)).sqrt(), None);
    check(
        "xavier-normal(2)",
        &p,
        0.0,
        2.0 * (2.0 / (fi + fo)).sqrt(),
        None,
    );
    let a = (6.0 / (fi + fo)).sqrt();
    check("xavier-uniform", &p, 0.0, uniform_std(a), Some((-a, a)));
    check("kaiming-normal(relu)", &p, 0.0, (2.0 / fi).sqrt(), None);
    check(
        "kaiming-normal(relu, fan-out)",
        &p,
        0.0,
        (2.0 / fo).sqrt(),
        None,
    );
    check("kaiming-normal(tanh)", &p, 0.0, 5.0 / 3.0 / fi.sqrt(), None);
    check("kaiming-normal(selu)", &p, 0.0, 0.75 / fi.sqrt(), None);
    check(
        "kaiming-normal(leaky-relu=0.2)",
        &p,
        0.0,
        (2.0 / 1.04f64).sqrt() / fi.sqrt(),
        None,
    );
    // Without a nonlinearity and without layer information: ReLU.
    check("he", &p, 0.0, (2.0 / fi).sqrt(), None);
    let a = 2f64.sqrt() * (3.0 / fi).sqrt();
    check(
        "kaiming-uniform(relu)",
        &p,
        0.0,
        uniform_std(a),
        Some((-a, a)),
    );
    let a = (3.0 / fo).sqrt();
    check(
        "kaiming-uniform(linear, fan-out)",
        &p,
        0.0,
        uniform_std(a),
        Some((-a, a)),
    );
    check(
        "variance-scaling(2, fan-avg, normal)",
        &p,
        0.0,
        (2.0 / 432.0f64).sqrt(),
        None,
    );
    let s = (1.0 / fi).sqrt();
    check(
        "variance-scaling(1, fan-in, truncated)",
        &p,
        0.0,
        s,
        Some((-2.0 * s / TRUNC2_STD, 2.0 * s / TRUNC2_STD)),
    );
    let a = 3f64.sqrt() * (0.5 / fo).sqrt();
    check(
        "variance-scaling(0.5, fan-out, uniform)",
        &p,
        0.0,
        uniform_std(a),
        Some((-a, a)),
    );
    let a = 1.0 / fi.sqrt();
    check("pytorch-default", &p, 0.0, uniform_std(a), Some((-a, a)));
    check("burn-default", &p, 0.0, uniform_std(a), Some((-a, a)));
    check("constant(0.1)+noise(0.001)", &p, 0.1, 0.001, None);
}

#[test]
fn gains_match_pytorch_calculate_gain() {
    assert_eq!(Nonlinearity::Linear.gain(), 1.0);
    assert_eq!(Nonlinearity::Sigmoid.gain(), 1.0);
    assert!((Nonlinearity::Tanh.gain() - 5.0 / 3.0).abs() < 1e-15);
    assert!((Nonlinearity::Relu.gain() - std::f64::consts::SQRT_2).abs() < 1e-15);
    // torch.nn.init.calculate_gain('leaky_relu', 0.01) = 1.4141428569978354
    assert!((Nonlinearity::LeakyRelu(0.01).gain() - 1.414_142_856_997_835_4).abs() < 1e-15);
    assert_eq!(Nonlinearity::Selu.gain(), 0.75);
}

#[test]
fn framework_defaults_give_biases_their_layer_fan() {
    let spec: InitSpec = "pytorch-default".parse().unwrap();
    let device = Device::flex();
    let model = RefCnnConfig::new().init(&device);
    let (model, resolved) = apply(model, &spec, 1, &|_| None).unwrap();
    let bias = resolved.iter().find(|r| r.path == "conv2.bias").unwrap();
    assert_eq!(bias.fan_in, 288);
    let b: Vec<f32> = model
        .conv2
        .bias
        .unwrap()
        .val()
        .into_data()
        .try_into_vec_as()
        .unwrap();
    let bound = 1.0 / 288f32.sqrt();
    assert!(b.iter().all(|x| x.abs() <= bound) && b.iter().any(|x| *x != 0.0));
    let he: InitSpec = "he".parse().unwrap();
    let (model, _) = apply(RefCnnConfig::new().init(&device), &he, 1, &|_| None).unwrap();
    let b: Vec<f32> = model
        .fc1
        .bias
        .unwrap()
        .val()
        .into_data()
        .try_into_vec_as()
        .unwrap();
    assert!(b.iter().all(|x| *x == 0.0), "biases default to zeros");
}

#[test]
fn orthogonal_rows_or_columns_times_gain() {
    // Conv [32, 16, 3, 3] as a 32 × 144 matrix: W·Wᵀ = gain²·I₃₂.
    let p = ParamShape::weight(ParamKind::ConvWeight, vec![32, 16, 3, 3]);
    let w = Law::Orthogonal { gain: 1.5 }
        .sample(&p, &mut ParamRng::new(3, "w"))
        .unwrap();
    let m = nalgebra::DMatrix::from_row_slice(
        32,
        144,
        &w.iter().map(|&x| x as f64).collect::<Vec<_>>(),
    );
    let g = &m * m.transpose();
    assert!((g - nalgebra::DMatrix::identity(32, 32) * 2.25).abs().max() < 1e-5);
    // Linear stored [in 64, out 128]: W (128 × 64) has orthonormal columns, Wᵀ·W = I₆₄.
    let p = ParamShape::weight(ParamKind::LinearWeight, vec![64, 128]);
    let w = Law::Orthogonal { gain: 1.0 }
        .sample(&p, &mut ParamRng::new(3, "w"))
        .unwrap();
    let stored = nalgebra::DMatrix::from_row_slice(
        64,
        128,
        &w.iter().map(|&x| x as f64).collect::<Vec<_>>(),
    );
    let g = &stored * stored.transpose(); // = Wᵀ·W
    assert!((g - nalgebra::DMatrix::identity(64, 64)).abs().max() < 1e-5);
    // A bias cannot be orthogonal.
    let bias = ParamShape {
        kind: ParamKind::Bias,
        shape: vec![8],
        fan_in: 8,
        fan_out: 8,
    };
    assert!(
        Law::Orthogonal { gain: 1.0 }
            .sample(&bias, &mut ParamRng::new(0, "b"))
            .is_err()
    );
    // Both orientations of the raw helper.
    assert_eq!(semi_orthogonal(3, 5, &mut ParamRng::new(0, "x")).len(), 15);
}

#[test]
fn dirac_is_an_identity_convolution() {
    let device = Device::flex();
    let spec: InitSpec = "dirac".parse().unwrap();
    let model = PlainCnnConfig::new()
        .with_depth(3)
        .with_width(4)
        .init(&device);
    let (model, _) = apply(model, &spec, 0, &|_| None).unwrap();
    // Non-negative input through identity convs with ReLU: channel 0 carries the image.
    let x = Tensor::<4>::ones([1, 1, 28, 28], &device);
    let (_, taps) = model.forward_taps(x.clone());
    let c0 = taps[2].post.clone().narrow(1, 0, 1);
    assert_eq!(c0.into_data(), x.into_data());
}

#[test]
fn variance_multipliers_are_the_textbook_values() {
    let relu = Nonlinearity::Relu;
    let m = |s: &str| {
        s.parse::<Scheme>()
            .unwrap()
            .variance_multiplier(144, relu)
            .unwrap()
    };
    assert!((m("he") - 1.0).abs() < 1e-12);
    assert!((m("kaiming-uniform(relu)") - 1.0).abs() < 1e-12);
    assert!((m("xavier-normal") - 0.5).abs() < 1e-12);
    assert!((m("pytorch-default") - 1.0 / 6.0).abs() < 1e-12);
    assert!((m("normal(0, 0.1)") - 144.0 * 0.01 / 2.0).abs() < 1e-12);
    assert!((m("orthogonal(1.4142135623730951)") - 1.0).abs() < 1e-12);
}

fn weights_bits(model: &impl Module) -> Vec<(String, Vec<u32>)> {
    let mut out = Vec::new();
    for slot in crate::collect_params(model) {
        out.push((slot.path, Vec::new()));
    }
    struct V<'a>(&'a mut Vec<(String, Vec<u32>)>, usize);
    impl burn::module::ModuleVisitor for V<'_> {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
            let v: Vec<f32> = p.val().into_data().try_into_vec_as().unwrap();
            self.0[self.1].1 = v.into_iter().map(f32::to_bits).collect();
            self.1 += 1;
        }
    }
    model.visit(&mut V(&mut out, 0));
    out
}

#[test]
#[allow(deprecated)]
fn same_seed_same_bits_across_backends_orders_and_threads() {
    let spec: InitSpec = "he;fc2.*=xavier-uniform;*.bias=normal(0, 0.1)"
        .parse()
        .unwrap();
    let cfg = RefCnnConfig::new().with_width(0.5);
    let init = |device: &Device| {
        let (m, _) = apply(cfg.init(device), &spec, 7, &|_| None).unwrap();
        weights_bits(&m)
    };
    let flex = init(&Device::flex());
    assert_eq!(flex, init(&Device::ndarray()), "flex and ndarray differ");
    assert_eq!(
        flex,
        init(&Device::flex().autodiff()),
        "autodiff device differs"
    );
    // Touch Burn's lazy parameters in another order first: no effect.
    let device = Device::flex();
    let m = cfg.init(&device);
    let _ = (
        m.fc2.weight.val(),
        m.conv2.weight.val(),
        m.conv1.weight.val(),
    );
    assert_eq!(
        flex,
        weights_bits(&apply(m, &spec, 7, &|_| None).unwrap().0)
    );
    // Concurrently from several threads.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let spec: InitSpec = "he;fc2.*=xavier-uniform;*.bias=normal(0, 0.1)"
                    .parse()
                    .unwrap();
                let m = RefCnnConfig::new().with_width(0.5).init(&Device::flex());
                weights_bits(&apply(m, &spec, 7, &|_| None).unwrap().0)
            })
        })
        .collect();
    for h in handles {
        assert_eq!(flex, h.join().unwrap());
    }
    // A different seed changes every parameter with randomness.
    let (other, _) = apply(cfg.init(&device), &spec, 8, &|_| None).unwrap();
    let other = weights_bits(&other);
    for (a, b) in flex.iter().zip(&other) {
        assert_ne!(a.1, b.1, "{}", a.0);
    }
}

/// Standard deviation of the post-activations (after the ReLU) of layer 20 over that of layer 1
/// in a 20-layer plain ReLU CNN (width 32, 28×28, zero padding) at init, on 8 N(0, 1) images:
/// the median over 5 weight seeds. (One finite-width network drifts randomly by a factor of 2–3 over 20 layers;
/// the theory describes the typical network, so the median of a few is what is compared.)
fn depth_ratio(scheme: &str) -> f64 {
    let device = Device::flex();
    let mut rng = ParamRng::new(0, "input");
    let x: Vec<f32> = (0..8 * 28 * 28).map(|_| rng.normal() as f32).collect();
    let x = Tensor::<4>::from_data(burn::tensor::TensorData::new(x, [8, 1, 28, 28]), &device);
    let spec: InitSpec = scheme.parse().unwrap();
    let mut ratios: Vec<f64> = (0..5)
        .map(|seed| {
            let model = PlainCnnConfig::new()
                .with_depth(20)
                .with_width(32)
                .init(&device);
            let (model, _) = apply(model, &spec, seed, &|_| Some(Nonlinearity::Relu)).unwrap();
            let (_, taps) = model.forward_taps(x.clone());
            crate::stats::mean_std(&taps[19].post).1 / crate::stats::mean_std(&taps[0].post).1
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[2]
}

#[test]
fn he_preserves_depth_xavier_and_pytorch_default_shrink() {
    // Theory (zero biases): per-layer variance factor 1 (He), 1/2 (Xavier), 1/6 (PyTorch's
    // default weights), i.e. ratios 1, 2^-9.5 ≈ 1.4e-3 and 6^-9.5 ≈ 4e-8 over 19 layers. Zero
    // padding at the borders costs a further few percent per layer.
    let he = depth_ratio("he");
    assert!((0.25..=4.0).contains(&he), "He ratio {he}");
    let xavier = depth_ratio("xavier");
    assert!(xavier < 0.01, "Xavier ratio {xavier}");
    let torch = depth_ratio("pytorch-default;*.bias=zeros");
    assert!(torch < 0.01, "PyTorch-default ratio {torch}");
    // With PyTorch's own biases, U(±1/√fan_in), the signal shrinks until the biases dominate
    // and then stays at their scale: a floor far above the zero-bias prediction.
    let torch_biased = depth_ratio("pytorch-default");
    assert!(torch_biased > 100.0 * torch, "{torch_biased} vs {torch}");
}

#[test]
fn lsuv_reaches_unit_variance() {
    let device = Device::flex();
    let model = PlainCnnConfig::new()
        .with_depth(6)
        .with_width(8)
        .init(&device);
    let spec: InitSpec = "lsuv".parse().unwrap();
    let (model, _) = apply(model, &spec, 0, &|_| None).unwrap();
    let mut rng = ParamRng::new(1, "x");
    let x: Vec<f32> = (0..8 * 28 * 28)
        .map(|_| (rng.normal() * 3.0 + 1.0) as f32)
        .collect();
    let x = Tensor::<4>::from_data(burn::tensor::TensorData::new(x, [8, 1, 28, 28]), &device);
    let weights: Vec<String> = (0..6).map(|i| format!("convs.{i}.weight")).collect();
    let (model, report) = lsuv(
        model,
        &weights,
        |m| {
            m.forward_taps(x.clone())
                .1
                .into_iter()
                .map(|t| t.pre)
                .collect()
        },
        0.05,
        10,
    )
    .unwrap();
    assert_eq!(report.len(), 6);
    for r in &report {
        assert!((r.final_variance - 1.0).abs() < 0.05, "{r:?}");
    }
    // Measured again, independently of the report.
    let (_, taps) = model.forward_taps(x);
    for t in &taps {
        let (_, std) = crate::stats::mean_std(&t.pre);
        assert!(
            (std * std - 1.0).abs() < 0.05,
            "{} variance {}",
            t.layer,
            std * std
        );
    }
}
