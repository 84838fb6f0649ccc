//! A small conv → BatchNorm → ReLU → linear network that is not a filterlab model, with a
//! hand-written layer table: how a model of one's own plugs into pruning and comparison, and the
//! fixture of the tests that must honour a normalization after a layer.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::{Activation, LayerInfo, LayerKind};

/// `1×4×4 → conv 1→C 3×3 pad 1 (conv) → BatchNorm (bn) → ReLU → linear C·16→2 (fc)`.
#[derive(Module, Debug)]
pub struct ConvBn {
    /// The convolution.
    pub conv: Conv2d,
    /// Its normalization.
    pub bn: BatchNorm,
    /// The head, reading the flattened `[C, 4, 4]` maps.
    pub fc: Linear,
}

impl ConvBn {
    /// A network with `channels` filters, Burn's default initialization.
    pub fn new(channels: usize, device: &Device) -> Self {
        ConvBn {
            conv: Conv2dConfig::new([1, channels], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            bn: BatchNormConfig::new(channels).init(device),
            fc: LinearConfig::new(channels * 16, 2).init(device),
        }
    }

    /// Feature maps after the normalization and the ReLU, and the logits.
    ///
    /// # Shapes
    /// - `x`: `[N, 1, 4, 4]`
    /// - returns `[N, C, 4, 4]` and `[N, 2]`
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<2>) {
        let maps = relu(self.bn.forward(self.conv.forward(x)));
        let logits = self.fc.forward(maps.clone().flatten(1, 3));
        (maps, logits)
    }

    /// The layer table of a network with `channels` filters; with `norm`, the conv entry names
    /// the normalization that follows it (as it should), without it the table is incomplete.
    pub fn table(channels: usize, norm: bool) -> Vec<LayerInfo> {
        let conv = LayerInfo {
            name: "conv".into(),
            kind: LayerKind::Conv2d,
            weight_shape: vec![channels, 1, 3, 3],
            in_channels: 1,
            out_channels: channels,
            kernel: [3, 3],
            fan_in: 9,
            fan_out: channels * 9,
            output_hw: [4, 4],
            activation: Some(Activation::Relu),
            consumer: Some("fc".into()),
            consumer_inputs_per_channel: 16,
            norm: None,
        };
        let fc = LayerInfo {
            name: "fc".into(),
            kind: LayerKind::Linear,
            weight_shape: vec![channels * 16, 2],
            in_channels: channels * 16,
            out_channels: 2,
            kernel: [1, 1],
            fan_in: channels * 16,
            fan_out: 2,
            output_hw: [1, 1],
            activation: None,
            consumer: None,
            consumer_inputs_per_channel: 0,
            norm: None,
        };
        vec![if norm { conv.with_norm("bn") } else { conv }, fc]
    }
}
