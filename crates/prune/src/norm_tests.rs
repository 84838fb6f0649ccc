//! Pruning a layer followed by a normalization: a conv → BatchNorm → ReLU → linear module that
//! is not a filterlab model, described by a hand-written layer table.

use std::collections::{BTreeMap, HashMap};

use burn::tensor::{Device, Tensor, TensorData};
use model::ConvBn;
use params::HostParams;

use crate::compact::compact_parameters;
use crate::{DeviceMask, Mask, apply_mask, effect};

/// A ConvBn whose normalization has a shift and running statistics of its own.
fn trained_like(device: &Device) -> ConvBn {
    let values = HashMap::from([
        ("bn.beta".to_string(), vec![0.5, 0.25, 0.75, 1.0]),
        ("bn.gamma".to_string(), vec![1.5, 0.5, 2.0, 1.0]),
        ("bn.running_mean".to_string(), vec![-0.2, 0.1, 0.3, -0.4]),
        ("bn.running_var".to_string(), vec![2.0, 0.5, 1.0, 3.0]),
    ]);
    params::write(ConvBn::new(4, device), values).unwrap()
}

fn input(device: &Device) -> Tensor<4> {
    let v: Vec<f32> = (0..2 * 16)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0)
        .collect();
    Tensor::<4>::from_data(TensorData::new(v, [2, 1, 4, 4]), device)
}

fn channel_max(maps: &Tensor<4>, c: usize) -> f32 {
    let v = maps.clone().into_data().try_to_vec::<f32>().unwrap();
    v.chunks(16)
        .enumerate()
        .filter(|(i, _)| i % 4 == c)
        .flat_map(|(_, m)| m.iter().map(|x| x.abs()))
        .fold(0.0, f32::max)
}

fn mask_channel_1() -> Mask {
    Mask {
        layers: BTreeMap::from([("conv".to_string(), vec![true, false, true, true])]),
    }
}

#[test]
fn the_normalization_shift_is_zeroed_with_the_filter() {
    let device = Device::flex();
    let mask = mask_channel_1();
    let base = trained_like(&device);
    // Zeroing only the conv filter leaves the channel alive: BatchNorm maps 0 to
    // beta − gamma·mean/√var = 0.25 − 0.5·0.1/√0.5 ≈ 0.18 everywhere.
    let half = apply_mask(base.clone(), &mask, &ConvBn::table(4, false)).unwrap();
    let (maps, _) = half.forward(input(&device));
    let alive = channel_max(&maps, 1);
    assert!(
        (alive - (0.25 - 0.5 * 0.1 / (0.5f32 + 1e-5).sqrt())).abs() < 1e-4,
        "{alive}"
    );
    // With the normalization in the table the channel is exactly zero, the others untouched.
    let model = apply_mask(base.clone(), &mask, &ConvBn::table(4, true)).unwrap();
    let (maps, _) = model.forward(input(&device));
    assert_eq!(channel_max(&maps, 1), 0.0);
    let (before, _) = base.forward(input(&device));
    for c in [0, 2, 3] {
        assert_eq!(
            channel_max(&maps, c),
            channel_max(&before, c),
            "channel {c}"
        );
    }
    let params = HostParams::read(&model);
    for path in ["bn.gamma", "bn.beta", "conv.bias"] {
        let v = params.values(path).unwrap();
        assert_eq!(v[1], 0.0, "{path}");
    }
    // Counted: 9 weights, the bias, gamma and beta, and fc's 16·2 weights on the dead channel.
    assert_eq!(
        effect(&mask, &ConvBn::table(4, true))
            .unwrap()
            .params_removed,
        9 + 1 + 2 + 32
    );
    // A table naming a normalization the model lacks is refused.
    let mut wrong = ConvBn::table(4, true);
    wrong[0] = wrong[0].clone().with_norm("norm1");
    let err = apply_mask(base, &mask, &wrong).unwrap_err();
    assert!(err.to_string().contains("norm1.gamma"), "{err}");
}

#[test]
fn the_device_mask_keeps_the_normalization_zeroed() {
    let device = Device::flex();
    let mask = mask_channel_1();
    let enforcer = DeviceMask::new(&mask, &ConvBn::table(4, true), &device).unwrap();
    let model = enforcer.enforce(trained_like(&device));
    let params = HostParams::read(&model);
    let get = |path: &str| params.values(path).unwrap().to_vec();
    assert_eq!(get("bn.gamma"), vec![1.5, 0.0, 2.0, 1.0]);
    assert_eq!(get("bn.beta"), vec![0.5, 0.0, 0.75, 1.0]);
    // Running statistics are buffers, not masked.
    assert_eq!(get("bn.running_var"), vec![2.0, 0.5, 1.0, 3.0]);
}

#[test]
fn the_compact_model_slices_the_normalization() {
    let device = Device::flex();
    let mask = mask_channel_1();
    let layers = ConvBn::table(4, true);
    let masked = apply_mask(trained_like(&device), &mask, &layers).unwrap();
    let values = compact_parameters(&HostParams::read(&masked), &layers, &mask).unwrap();
    assert_eq!(values["bn.running_mean"], vec![-0.2, 0.3, -0.4]);
    let small = params::write(ConvBn::new(3, &device), values).unwrap();
    let (_, a) = masked.forward(input(&device));
    let (_, b) = small.forward(input(&device));
    let (a, b) = (
        a.into_data().try_to_vec::<f32>().unwrap(),
        b.into_data().try_to_vec::<f32>().unwrap(),
    );
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
    }
}
